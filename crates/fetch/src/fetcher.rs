//! One guarded GET: URL checks, the guarded resolver, no proxy, no redirects, timeouts, a streamed
//! size cap, a content-type check and the cache lifetime of the answer (RFC 9111 §4.2).

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{ACCEPT, AGE, CACHE_CONTROL, CONTENT_TYPE, HeaderMap};
use reqwest::{StatusCode, redirect};
use url::{Host, Url};

use crate::accept::{Accept, essence};
use crate::error::{BuildError, FetchError};
use crate::policy::FetchPolicy;
use crate::resolve::{GuardedResolver, HostResolver, Refusal, SystemResolver};

/// A successful (HTTP 200) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The whole body, at most [`FetchPolicy::max_bytes`].
    pub body: Bytes,
    /// The media type essence of `Content-Type` (`type/subtype`, lower case, no parameters).
    pub content_type: String,
    /// How long the answer may be cached: `Cache-Control: max-age` less `Age`, clamped to
    /// [`FetchPolicy::min_ttl`]..=[`FetchPolicy::max_ttl`] (`no-store`, `no-cache` or no
    /// `max-age` give the minimum).
    pub ttl: Duration,
}

/// The one HTTP client for outbound fetches. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: Arc<FetchPolicy>,
}

impl Fetcher {
    /// A fetcher resolving names with the operating system's resolver.
    pub fn new(policy: FetchPolicy) -> Result<Self, BuildError> {
        Self::with_resolver(policy, Arc::new(SystemResolver))
    }

    /// A fetcher resolving names with `resolver` (tests play hostile DNS with it). Blocked
    /// addresses are dropped from its answers all the same.
    pub fn with_resolver(policy: FetchPolicy, resolver: Arc<dyn HostResolver>) -> Result<Self, BuildError> {
        if policy.min_ttl > policy.max_ttl {
            return Err(BuildError::InvalidPolicy("min_ttl exceeds max_ttl"));
        }
        if policy.connect_timeout.is_zero() || policy.total_timeout.is_zero() {
            return Err(BuildError::InvalidPolicy("timeouts must not be zero"));
        }
        let guarded = GuardedResolver { inner: resolver, allow_private_networks: policy.allow_private_networks };
        let roots = policy
            .extra_root_certificates
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(BuildError::Client)?;
        let client = reqwest::Client::builder()
            .tls_certs_merge(roots)
            .dns_resolver(Arc::new(guarded))
            // A proxy would resolve and connect on our behalf, past the address filter.
            .no_proxy()
            // CIMD: never follow redirects; each hop would also need the URL and address checks.
            .redirect(redirect::Policy::none())
            .https_only(!policy.allow_private_networks)
            .connect_timeout(policy.connect_timeout)
            .user_agent(concat!("mandate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(BuildError::Client)?;
        Ok(Self { client, policy: Arc::new(policy) })
    }

    /// The policy this fetcher enforces.
    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// GETs `url`. Succeeds only on HTTP 200 with an accepted content type and a body within
    /// the size cap, all within the total timeout.
    pub async fn get(&self, url: &str, accept: Accept) -> Result<Fetched, FetchError> {
        let url = self.check_url(url)?;
        let host = url.host_str().unwrap_or_default().to_owned();
        // One deadline for connect, headers and the whole body.
        let total = self.policy.total_timeout;
        match tokio::time::timeout(total, self.fetch(url, &host, accept)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(FetchError::Timeout { host, timeout: total }),
        }
    }

    fn check_url(&self, raw: &str) -> Result<Url, FetchError> {
        let allow_private = self.policy.allow_private_networks;
        let url = Url::parse(raw).map_err(|_| FetchError::InvalidUrl)?;
        match url.scheme() {
            "https" => {}
            "http" if allow_private => {}
            _ => return Err(FetchError::InsecureScheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::CredentialsInUrl);
        }
        match url.host() {
            None => Err(FetchError::InvalidUrl),
            Some(Host::Domain(_)) => Ok(url),
            // reqwest connects to IP literals without asking the resolver, so they are
            // refused here.
            Some(Host::Ipv4(_) | Host::Ipv6(_)) if allow_private => Ok(url),
            Some(Host::Ipv4(_) | Host::Ipv6(_)) => {
                Err(FetchError::IpLiteralHost { host: url.host_str().unwrap_or_default().to_owned() })
            }
        }
    }

    async fn fetch(&self, url: Url, host: &str, accept: Accept) -> Result<Fetched, FetchError> {
        let mut response = self
            .client
            .get(url)
            .header(ACCEPT, accept.header_value())
            .send()
            .await
            .map_err(|e| self.classify(e, host))?;

        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect { host: host.to_owned(), status: status.as_u16() });
        }
        if status != StatusCode::OK {
            return Err(FetchError::Status { host: host.to_owned(), status: status.as_u16() });
        }

        let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !accept.matches(content_type) {
            return Err(content_type_error(host, essence(content_type), accept));
        }
        let content_type = essence(content_type).unwrap_or_default();

        let max_bytes = self.policy.max_bytes;
        let too_large = || FetchError::TooLarge { host: host.to_owned(), max_bytes };
        let declared = response.content_length();
        if declared.is_some_and(|len| len > max_bytes as u64) {
            return Err(too_large());
        }
        let ttl = cache_ttl(response.headers(), self.policy.min_ttl, self.policy.max_ttl);

        let capacity = declared.map_or(0, |len| len as usize);
        let mut body = BytesMut::with_capacity(capacity);
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e, host))? {
            // Counted while streaming: a chunked body declares no length.
            if body.len() + chunk.len() > max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(%host, bytes = body.len(), ?ttl, "fetched");
        Ok(Fetched { body: body.freeze(), content_type, ttl })
    }

    /// Maps a reqwest error to a client-safe one, finding the resolver's refusal in the chain.
    fn classify(&self, err: reqwest::Error, host: &str) -> FetchError {
        let host = host.to_owned();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = err.source();
        while let Some(e) = cause {
            if let Some(refusal) = e.downcast_ref::<Refusal>() {
                return match refusal {
                    Refusal::OnlyBlocked { .. } => FetchError::PrivateAddress { host },
                    Refusal::Failed { source, .. } => FetchError::Resolve { host, source: source.clone() },
                };
            }
            cause = e.source();
        }
        if err.is_timeout() {
            let timeout = if err.is_connect() { self.policy.connect_timeout } else { self.policy.total_timeout };
            return FetchError::Timeout { host, timeout };
        }
        let source = Arc::new(err);
        if source.is_connect() { FetchError::Connect { host, source } } else { FetchError::Transport { host, source } }
    }
}

pub(crate) fn content_type_error(host: &str, found: Option<String>, accept: Accept) -> FetchError {
    FetchError::ContentType {
        host: host.to_owned(),
        found: found.filter(|essence| essence.len() <= 100),
        expected: accept.description(),
    }
}

/// RFC 9111 §4.2.1: `max-age` less `Age` (§4.2.3), clamped; `no-store`/`no-cache` or no
/// `max-age` give `min`.
pub(crate) fn cache_ttl(headers: &HeaderMap, min: Duration, max: Duration) -> Duration {
    let mut max_age = None;
    let mut uncacheable = false;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((name, arg)) => (name.trim(), Some(arg.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                uncacheable = true;
            } else if name.eq_ignore_ascii_case("max-age") && max_age.is_none() {
                max_age = arg.and_then(delta_seconds);
            }
        }
    }
    let age = headers.get(AGE).and_then(|v| v.to_str().ok()).and_then(delta_seconds).unwrap_or(0);
    let fresh = match max_age {
        Some(max_age) if !uncacheable => Duration::from_secs(max_age.saturating_sub(age)),
        _ => Duration::ZERO,
    };
    fresh.clamp(min, max)
}

/// RFC 9111 §1.2.2 delta-seconds; values too large for u64 saturate.
fn delta_seconds(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::cache_ttl;
    use reqwest::header::{AGE, CACHE_CONTROL, HeaderMap, HeaderValue};
    use std::time::Duration;

    const MIN: Duration = Duration::from_secs(60);
    const MAX: Duration = Duration::from_secs(86_400);

    fn ttl(cache_control: &[&'static str], age: Option<&'static str>) -> u64 {
        let mut headers = HeaderMap::new();
        for value in cache_control {
            headers.append(CACHE_CONTROL, HeaderValue::from_static(value));
        }
        if let Some(age) = age {
            headers.insert(AGE, HeaderValue::from_static(age));
        }
        cache_ttl(&headers, MIN, MAX).as_secs()
    }

    #[test]
    fn max_age_is_clamped_to_the_policy_bounds() {
        assert_eq!(ttl(&["max-age=300"], None), 300);
        assert_eq!(ttl(&["public, max-age=3600"], None), 3600);
        assert_eq!(ttl(&["max-age=\"600\""], None), 600);
        assert_eq!(ttl(&["max-age=5"], None), 60);
        assert_eq!(ttl(&["max-age=0"], None), 60);
        assert_eq!(ttl(&["max-age=31536000"], None), 86_400);
        assert_eq!(ttl(&["max-age=99999999999999999999999"], None), 86_400);
    }

    #[test]
    fn age_is_subtracted() {
        assert_eq!(ttl(&["max-age=600"], Some("100")), 500);
        assert_eq!(ttl(&["max-age=600"], Some("590")), 60);
        assert_eq!(ttl(&["max-age=600"], Some("9000")), 60);
    }

    #[test]
    fn uncacheable_or_unspecified_gets_the_minimum() {
        assert_eq!(ttl(&[], None), 60);
        assert_eq!(ttl(&["no-store"], None), 60);
        assert_eq!(ttl(&["max-age=3600, no-cache"], None), 60);
        assert_eq!(ttl(&["max-age=3600", "No-Store"], None), 60);
        assert_eq!(ttl(&["max-age=abc"], None), 60);
        assert_eq!(ttl(&["max-age=-5"], None), 60);
    }

    #[test]
    fn first_max_age_wins() {
        assert_eq!(ttl(&["max-age=120", "max-age=9000"], None), 120);
    }
}
