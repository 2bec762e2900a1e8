//! The single-flight cache of fetched documents: one fetch per URL however many callers miss at
//! once, lifetimes from `Cache-Control` (RFC 9111 §4.2), errors never stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;

use crate::accept::Accept;
use crate::error::FetchError;
use crate::fetcher::{Fetched, Fetcher, content_type_error};

#[derive(Debug, Clone)]
struct Entry {
    fetched: Fetched,
    host: String,
    fetched_at: Instant,
    /// Distinguishes successive fetches of one URL, so `refresh` removes only the entry it saw.
    generation: u64,
}

/// Each entry lives for the `ttl` computed from its response.
struct ResponseTtl;

impl Expiry<String, Entry> for ResponseTtl {
    fn expire_after_create(&self, _url: &String, entry: &Entry, _at: Instant) -> Option<Duration> {
        Some(entry.fetched.ttl)
    }

    fn expire_after_update(
        &self,
        _url: &String,
        entry: &Entry,
        _at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.fetched.ttl)
    }
}

/// A [`Fetcher`] behind a cache keyed by URL. Concurrent misses of one URL share a single fetch
/// (and its error, which is not stored: the next call fetches again).
#[derive(Clone)]
pub struct CachedFetcher {
    fetcher: Fetcher,
    cache: Cache<String, Entry>,
    generation: Arc<AtomicU64>,
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
            .expire_after(ResponseTtl)
            .build();
        Self { fetcher, cache, generation: Arc::new(AtomicU64::new(0)) }
    }

    /// The uncached fetcher underneath.
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The cached answer for `url`, fetching it on a miss. The content type is checked against
    /// `accept` on hits too (the entry may have been fetched by a caller accepting other types).
    pub async fn get_cached(&self, url: &str, accept: Accept) -> Result<Fetched, FetchError> {
        let entry = self
            .cache
            .try_get_with_by_ref(url, self.load(url, accept))
            .await
            .map_err(|shared| FetchError::clone(&shared))?;
        Self::accepted(entry, accept)
    }

    /// Like [`get_cached`](Self::get_cached), but refetches an entry older than the policy's
    /// `min_refresh_interval`. For the "unknown `kid`" case: a key rotated at the source shows up
    /// after one refetch, and a stream of made-up `kid`s costs at most one fetch per interval.
    pub async fn refresh(&self, url: &str, accept: Accept) -> Result<Fetched, FetchError> {
        if let Some(entry) = self.cache.get(url).await {
            if entry.fetched_at.elapsed() < self.fetcher.policy().min_refresh_interval {
                return Self::accepted(entry, accept);
            }
            let seen = entry.generation;
            self.cache
                .entry_by_ref(url)
                .and_compute_with(|current| {
                    // Another caller may already have replaced it; keep theirs.
                    let op = match current {
                        Some(current) if current.value().generation == seen => Op::Remove,
                        _ => Op::Nop,
                    };
                    std::future::ready(op)
                })
                .await;
        }
        self.get_cached(url, accept).await
    }

    /// Drops the cached answer for `url`, if any.
    pub async fn invalidate(&self, url: &str) {
        self.cache.invalidate(url).await;
    }

    async fn load(&self, url: &str, accept: Accept) -> Result<Entry, FetchError> {
        let fetched = self.fetcher.get(url, accept).await?;
        let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        Ok(Entry {
            fetched,
            host,
            fetched_at: Instant::now(),
            generation: self.generation.fetch_add(1, Ordering::Relaxed),
        })
    }

    fn accepted(entry: Entry, accept: Accept) -> Result<Fetched, FetchError> {
        if accept.matches(&entry.fetched.content_type) {
            Ok(entry.fetched)
        } else {
            Err(content_type_error(&entry.host, Some(entry.fetched.content_type), accept))
        }
    }
}
