//! The single-flight cache of fetched documents: one fetch per URL however many callers miss at
//! once, lifetimes from `Cache-Control` (RFC 9111 §4.2).
//!
//! A cached answer is replaced only by a successful fetch. When refetching it fails (an outage,
//! an HTML error page, a redirect, a huge or slow body), the answer we had is kept and served
//! stale (RFC 5861's `stale-if-error`, for at most the policy's `max_ttl` past its freshness),
//! and the failure is remembered for the policy's `min_refresh_interval`, so that callers do not
//! each wait for a fetch that just failed. A URL
//! that has never been fetched successfully has nothing to keep: its errors are returned and
//! never stored (CIMD: no cached errors), and the next call fetches again.

use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};

use crate::accept::Accept;
use crate::error::FetchError;
use crate::fetcher::{Fetched, Fetcher, content_type_error};

#[derive(Debug, Clone)]
struct Entry {
    fetched: Fetched,
    host: String,
    fetched_at: Instant,
    /// `fetched_at` + the answer's ttl.
    fresh_until: Instant,
    /// When the cache drops the answer even if no fetch has replaced it: `fresh_until` +
    /// `max_ttl`.
    evict_at: Instant,
    /// The last failed attempt to replace this answer, if any.
    failed_at: Option<Instant>,
}

impl Entry {
    fn failed_within(&self, interval: Duration) -> bool {
        self.failed_at.is_some_and(|at| at.elapsed() < interval)
    }
}

/// Each entry lives until its `evict_at`; a kept entry keeps its original eviction time.
struct UntilEviction;

impl Expiry<String, Entry> for UntilEviction {
    fn expire_after_create(&self, _url: &String, entry: &Entry, at: Instant) -> Option<Duration> {
        Some(entry.evict_at.saturating_duration_since(at))
    }

    fn expire_after_update(
        &self,
        _url: &String,
        entry: &Entry,
        at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.evict_at.saturating_duration_since(at))
    }
}

/// A [`Fetcher`] behind a cache keyed by URL. Concurrent misses of one URL share a single fetch
/// (and its error, which is not stored: the next call fetches again); concurrent refetches of one
/// URL are one fetch too.
#[derive(Clone)]
pub struct CachedFetcher {
    fetcher: Fetcher,
    cache: Cache<String, Entry>,
}

impl std::fmt::Debug for CachedFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedFetcher")
            .field("fetcher", &self.fetcher)
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl CachedFetcher {
    /// Caches what `fetcher` fetches, bounded by its policy's `cache_max_bytes`.
    pub fn new(fetcher: Fetcher) -> Self {
        let cache = Cache::builder()
            .max_capacity(fetcher.policy().cache_max_bytes)
            .weigher(|url: &String, entry: &Entry| {
                let bytes = url.len() + entry.fetched.body.len() + entry.fetched.content_type.len();
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .expire_after(UntilEviction)
            .build();
        Self { fetcher, cache }
    }

    /// The uncached fetcher underneath.
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The cached answer for `url`, fetching it on a miss, and refetching it once it is no longer
    /// fresh (the stale answer is served if that fails). The content type is checked against
    /// `accept` on hits too (the entry may have been fetched by a caller accepting other types).
    pub async fn get_cached(&self, url: &str, accept: Accept) -> Result<Fetched, FetchError> {
        let interval = self.fetcher.policy().min_refresh_interval;
        if let Some(entry) = self.cache.get(url).await {
            if Instant::now() < entry.fresh_until || entry.failed_within(interval) {
                return Self::accepted(entry, accept);
            }
            let entry =
                self.revalidate(url, accept, |e| Instant::now() >= e.fresh_until && !e.failed_within(interval)).await?;
            return Self::accepted(entry, accept);
        }
        let entry = self
            .cache
            .try_get_with_by_ref(url, self.load(url, accept))
            .await
            .map_err(|shared| FetchError::clone(&shared))?;
        Self::accepted(entry, accept)
    }

    /// Like [`get_cached`](Self::get_cached), but refetches an entry older than the policy's
    /// `min_refresh_interval`. For the "unknown `kid`" case: a key rotated at the source shows up
    /// after one refetch, and a stream of made-up `kid`s costs at most one fetch per interval. If
    /// the refetch fails, the entry is kept (and returned) and the failure remembered for the
    /// interval: an outage at the source does not throw away the keys we have.
    pub async fn refresh(&self, url: &str, accept: Accept) -> Result<Fetched, FetchError> {
        let interval = self.fetcher.policy().min_refresh_interval;
        let due = move |e: &Entry| e.fetched_at.elapsed() >= interval && !e.failed_within(interval);
        match self.cache.get(url).await {
            Some(entry) if !due(&entry) => Self::accepted(entry, accept),
            Some(_) => {
                let entry = self.revalidate(url, accept, due).await?;
                Self::accepted(entry, accept)
            }
            None => self.get_cached(url, accept).await,
        }
    }

    /// Drops the cached answer for `url`, if any.
    pub async fn invalidate(&self, url: &str) {
        self.cache.invalidate(url).await;
    }

    /// Refetches `url` if its entry still `needs` it once this caller holds the URL's lock (so
    /// concurrent callers share one fetch): a success replaces the entry, a failure is noted on
    /// the entry, which is kept. Returns the entry as it then is.
    async fn revalidate(&self, url: &str, accept: Accept, needs: impl Fn(&Entry) -> bool) -> Result<Entry, FetchError> {
        let mut failure = None;
        let failure_slot = &mut failure;
        let result = self
            .cache
            .entry_by_ref(url)
            .and_compute_with(|current| async move {
                match current {
                    Some(current) if !needs(current.value()) => Op::Nop,
                    Some(current) => match self.load(url, accept).await {
                        Ok(fresh) => Op::Put(fresh),
                        Err(e) => {
                            let mut kept = current.into_value();
                            tracing::warn!(host = %kept.host, error = %e, "refetch failed; keeping the cached answer");
                            kept.failed_at = Some(Instant::now());
                            Op::Put(kept)
                        }
                    },
                    None => match self.load(url, accept).await {
                        Ok(fresh) => Op::Put(fresh),
                        Err(e) => {
                            *failure_slot = Some(e);
                            Op::Nop
                        }
                    },
                }
            })
            .await;
        match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) | CompResult::Unchanged(e) => Ok(e.into_value()),
            CompResult::StillNone(_) | CompResult::Removed(_) => Err(failure.unwrap_or(FetchError::InvalidUrl)),
        }
    }

    async fn load(&self, url: &str, accept: Accept) -> Result<Entry, FetchError> {
        let fetched = self.fetcher.get(url, accept).await?;
        let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        let fetched_at = Instant::now();
        let fresh_until = fetched_at + fetched.ttl;
        let evict_at = fresh_until + self.fetcher.policy().max_ttl;
        Ok(Entry { fetched, host, fetched_at, fresh_until, evict_at, failed_at: None })
    }

    fn accepted(entry: Entry, accept: Accept) -> Result<Fetched, FetchError> {
        if accept.matches(&entry.fetched.content_type) {
            Ok(entry.fetched)
        } else {
            Err(content_type_error(&entry.host, Some(entry.fetched.content_type), accept))
        }
    }
}
