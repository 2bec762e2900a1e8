//! The knobs of outbound fetches: address policy, timeouts, size cap and cache lifetimes.

use std::time::Duration;

/// How outbound fetches behave. `Default` is the production policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    /// The only switch that allows loopback/private/reserved addresses, IP-literal hosts and plain
    /// `http://` URLs. For local tests and development; never in production.
    pub allow_private_networks: bool,
    /// Time to establish a connection (DNS + TCP + TLS). Default 3 s.
    pub connect_timeout: Duration,
    /// Time for the whole fetch, body included. Default 5 s.
    pub total_timeout: Duration,
    /// Largest body accepted, checked against `Content-Length` up front and while streaming.
    /// Default 256 KiB.
    pub max_bytes: usize,
    /// Shortest cache lifetime, whatever `Cache-Control` says (also for `no-store`/`no-cache`, so a
    /// client cannot turn the server into a request amplifier). Default 60 s.
    pub min_ttl: Duration,
    /// Longest cache lifetime. Default 24 h.
    pub max_ttl: Duration,
    /// [`CachedFetcher::refresh`](crate::CachedFetcher::refresh) refetches only entries older than
    /// this, so unknown `kid`s cannot force a fetch per request. Default 30 s.
    pub min_refresh_interval: Duration,
    /// Bound of the cache, in bytes of bodies and URLs. Default 32 MiB.
    pub cache_max_bytes: u64,
    /// Certificates (DER) trusted as roots in addition to the platform's: a private CA, or a
    /// test's throwaway one (the platform store can only be changed through the environment,
    /// which a running process cannot safely do). Default none.
    pub extra_root_certificates: Vec<Vec<u8>>,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            connect_timeout: Duration::from_secs(3),
            total_timeout: Duration::from_secs(5),
            max_bytes: 256 * 1024,
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 60 * 60),
            min_refresh_interval: Duration::from_secs(30),
            cache_max_bytes: 32 * 1024 * 1024,
            extra_root_certificates: Vec::new(),
        }
    }
}
