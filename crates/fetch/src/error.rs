//! Errors of outbound fetches. `Display` texts are client-safe: they name the host, a status or a
//! limit, never a response body or an internal address; the `source` chain is for server logs.

use std::sync::Arc;
use std::time::Duration;

/// Why a fetch failed. Cheap to clone, so that the single-flight cache can hand one error to every
/// waiting caller.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL does not parse or has no host.
    #[error("the URL is not a valid absolute URL")]
    InvalidUrl,
    /// Only `https` is fetched (plain `http` only with `allow_private_networks`).
    #[error("only https URLs are fetched")]
    InsecureScheme,
    /// `user:password@` in the URL.
    #[error("the URL must not contain credentials")]
    CredentialsInUrl,
    /// The host is an IP address; a DNS name is required so that the address can be checked.
    #[error("the URL host {host} is an IP address; a DNS name is required")]
    IpLiteralHost { host: String },
    /// Every address the host resolves to is loopback, private, link-local or otherwise reserved.
    #[error("{host} resolves only to private or reserved addresses")]
    PrivateAddress { host: String },
    /// DNS resolution failed or returned no address.
    #[error("{host} could not be resolved")]
    Resolve {
        host: String,
        #[source]
        source: Option<Arc<std::io::Error>>,
    },
    /// TCP or TLS connection failed.
    #[error("could not connect to {host}")]
    Connect {
        host: String,
        #[source]
        source: Arc<reqwest::Error>,
    },
    /// The total (or connect) timeout elapsed.
    #[error("fetching from {host} timed out after {} ms", timeout.as_millis())]
    Timeout { host: String, timeout: Duration },
    /// A 3xx answer. Redirects are never followed (CIMD forbids it; every hop would need the
    /// address check again).
    #[error("{host} answered with a redirect (HTTP {status}); redirects are not followed")]
    Redirect { host: String, status: u16 },
    /// Any status other than 200.
    #[error("{host} answered with HTTP {status}; expected 200")]
    Status { host: String, status: u16 },
    /// The `Content-Type` is missing or not one the caller accepts.
    #[error("{host} answered with content type {}; expected {expected}", found.as_deref().unwrap_or("(none)"))]
    ContentType {
        host: String,
        /// The media type essence (`type/subtype`), only when it is a well-formed one.
        found: Option<String>,
        expected: String,
    },
    /// The body (declared or streamed) exceeds `max_bytes`.
    #[error("the response from {host} exceeds {max_bytes} bytes")]
    TooLarge { host: String, max_bytes: usize },
    /// The connection failed while sending the request or reading the response.
    #[error("the response from {host} could not be read")]
    Transport {
        host: String,
        #[source]
        source: Arc<reqwest::Error>,
    },
}

impl FetchError {
    /// What may be told to whoever chose the URL (a client's `jwks_uri`, a metadata document):
    /// "could not be reached" whether the host does not resolve, resolves only to private
    /// addresses or refuses the connection, so that a client cannot map the server's internal
    /// network (DNS names, live hosts) through error messages. The full `Display` is for logs.
    pub fn public_message(&self) -> String {
        match self {
            Self::PrivateAddress { host } | Self::Resolve { host, .. } | Self::Connect { host, .. } => {
                format!("{host} could not be reached")
            }
            other => other.to_string(),
        }
    }
}

/// Why a [`Fetcher`](crate::Fetcher) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The policy is inconsistent (e.g. `min_ttl > max_ttl`).
    #[error("invalid fetch policy: {0}")]
    InvalidPolicy(&'static str),
    /// The HTTP client (TLS roots, …) could not be set up.
    #[error("could not build the HTTP client")]
    Client(#[source] reqwest::Error),
}
