//! One-time identifiers on SQLite (the `jti` of client assertions, RFC 7523 §3, and of client
//! attestation PoPs) and attestation challenges. Recording is one upsert that replaces only an
//! expired row, taking a challenge one `DELETE`; SQLite serialises writers, so of two racing
//! callers (in one process or two sharing the file) exactly one records a key or takes a challenge.

use async_trait::async_trait;
use mandate_core::UnixTime;
use mandate_store::{AttestationChallengeStore, ReplayStore, StoreResult};

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

#[async_trait]
impl AttestationChallengeStore for SqliteStore {
    async fn put_attestation_challenge(&self, challenge_hash: &str, expires_at: UnixTime) -> StoreResult<()> {
        sqlx::query("INSERT INTO attestation_challenges (challenge_hash, expires_at) VALUES (?, ?)")
            .bind(challenge_hash)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_attestation_challenge(&self, challenge_hash: &str, now: UnixTime) -> StoreResult<bool> {
        // One DELETE: of two racing callers, on any instance, one removes the row.
        let done = sqlx::query("DELETE FROM attestation_challenges WHERE challenge_hash = ? AND expires_at > ?")
            .bind(challenge_hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
