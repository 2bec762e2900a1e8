//! One-time identifiers on PostgreSQL (the `jti` of client assertions, RFC 7523 §3). Recording is
//! one `INSERT … ON CONFLICT DO UPDATE … WHERE` that replaces only an expired row: the second of
//! two racing inserts waits for the first to commit, then finds the row live and changes nothing,
//! so exactly one caller, on any instance, records a key.

use async_trait::async_trait;
use mandate_core::UnixTime;
use mandate_store::{ReplayStore, StoreResult};

use crate::PgStore;

#[async_trait]
impl ReplayStore for PgStore {
    async fn record_once(&self, key: &str, expires_at: UnixTime, now: UnixTime) -> StoreResult<bool> {
        // A live row blocks the update: no row changes, and the key is a replay.
        let done = sqlx::query(
            "INSERT INTO used_jtis (jti_key, expires_at) VALUES ($1, $2)
             ON CONFLICT (jti_key) DO UPDATE SET expires_at = excluded.expires_at WHERE used_jtis.expires_at <= $3",
        )
        .bind(key)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
