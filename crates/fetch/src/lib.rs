//! SSRF-safe outbound HTTP fetches for the authorization server: client ID metadata documents
//! (draft-ietf-oauth-client-id-metadata-document), clients' `jwks_uri`, trusted issuers' JWKS,
//! logos. Every outbound request of mandate goes through a [`Fetcher`].
//!
//! # What a fetch guarantees
//!
//! * **https only**; IP-literal hosts are refused before any connection (reqwest would connect to
//!   them without asking the resolver).
//! * Names are resolved by a [`HostResolver`] and every address for which [`is_blocked`] holds is
//!   dropped; reqwest connects only to what is left, so a DNS answer cannot change between check
//!   and connect (no rebinding gap). A host with nothing left fails with
//!   [`FetchError::PrivateAddress`] ("… resolves only to private or reserved addresses").
//! * No proxy, no redirects (a 3xx is [`FetchError::Redirect`]), only HTTP 200 succeeds.
//! * Connect and total timeouts; the body is capped at [`FetchPolicy::max_bytes`], checked against
//!   `Content-Length` up front and counted while streaming; the `Content-Type` must be one the
//!   caller [`Accept`]s.
//! * [`FetchPolicy::allow_private_networks`] is the only way to reach loopback/private addresses,
//!   and the only case in which `http://` URLs and IP literals are fetched. Tests and development
//!   only.
//!
//! [`CachedFetcher`] adds a single-flight cache: concurrent misses of a URL share one request,
//! entries live for `Cache-Control: max-age` clamped to [`FetchPolicy::min_ttl`]..=
//! [`FetchPolicy::max_ttl`], errors are never cached. A cached answer is replaced only by a
//! successful fetch: if refetching fails, it is kept and served stale (for at most `max_ttl` past
//! its freshness) and the failure is remembered for [`FetchPolicy::min_refresh_interval`].
//!
//! # Errors
//!
//! [`FetchError`]'s `Display` is client-safe (fit for an `invalid_client` `error_description`):
//! it names the host, a status or a limit, never a response body or a resolved address. The
//! `source()` chain carries the transport details for the log.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mandate_fetch::{Accept, CachedFetcher, FetchPolicy, Fetcher};
//!
//! let fetcher = CachedFetcher::new(Fetcher::new(FetchPolicy::default())?);
//! let jwks = fetcher
//!     .get_cached("https://client.example/jwks.json", Accept::json())
//!     .await?;
//! // Signature by an unknown `kid`: the client may have rotated; look once more.
//! let jwks = fetcher
//!     .refresh("https://client.example/jwks.json", Accept::json())
//!     .await?;
//! # let _ = jwks; Ok(()) }
//! ```

mod accept;
mod address;
mod cache;
mod error;
mod fetcher;
mod policy;
mod resolve;

pub use accept::Accept;
pub use address::is_blocked;
pub use cache::CachedFetcher;
pub use error::{BuildError, FetchError};
pub use fetcher::{Fetched, Fetcher};
pub use policy::FetchPolicy;
pub use resolve::{HostResolver, SystemResolver};
