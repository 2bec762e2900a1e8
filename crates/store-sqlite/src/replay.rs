//! One-time identifiers on SQLite (the `jti` of client assertions, RFC 7523 §3). Recording is one
//! upsert that replaces only an expired row; SQLite serialises writers, so of two racing callers
//! (in one process or two sharing the file) exactly one records a key.

use async_trait::async_trait;
use mandate_core::UnixTime;
use mandate_store::{ReplayStore, StoreResult};

use crate::SqliteStore;

#[async_trait]
impl ReplayStore for SqliteStore {
    async fn record_once(&self, key: &str, expires_at: UnixTime, now: UnixTime) -> StoreResult<bool> {
        // A live row blocks the update: no row changes, and the key is a replay.
        let done = sqlx::query(
            "INSERT INTO used_jtis (jti_key, expires_at) VALUES (?, ?)
             ON CONFLICT (jti_key) DO UPDATE SET expires_at = excluded.expires_at WHERE used_jtis.expires_at <= ?",
        )
        .bind(key)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
