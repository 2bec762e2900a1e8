//! The one source of time: logic takes a `Clock` so tests can move time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as stored in the database and in JWT `iat`/`exp`.
pub type UnixTime = i64;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixTime;

    /// Milliseconds since the Unix epoch, for ordering identifiers (not for claims, which are in
    /// whole seconds). Clocks without a finer reading give `now()` × 1000.
    fn now_millis(&self) -> u64 {
        u64::try_from(self.now()).unwrap_or(0).saturating_mul(1000)
    }
}

/// Wall-clock time; the only place the process reads the system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }

    fn now_millis(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// A clock tests set and advance by hand; clones share the same time.
#[derive(Debug, Clone)]
pub struct MockClock(Arc<AtomicI64>);

impl MockClock {
    pub fn new(start: UnixTime) -> Self {
        Self(Arc::new(AtomicI64::new(start)))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }

    pub fn set(&self, now: UnixTime) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for MockClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_agree_with_seconds() {
        let mock = MockClock::new(1_764_900_000);
        assert_eq!(mock.now_millis(), 1_764_900_000_000, "a clock without milliseconds gives now() x 1000");
        let (seconds, millis) = (SystemClock.now(), SystemClock.now_millis());
        assert!(millis / 1000 >= seconds as u64 && millis / 1000 <= seconds as u64 + 1, "{seconds} s vs {millis} ms");
    }
}
