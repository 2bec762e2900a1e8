//! One-time identifiers on PostgreSQL (the `jti` of client assertions, RFC 7523 §3, and of client
//! attestation PoPs) and attestation challenges. Recording is one `INSERT … ON CONFLICT DO UPDATE
//! … WHERE` that replaces only an expired row: the second of two racing inserts waits for the
//! first to commit, then finds the row live and changes nothing, so exactly one caller, on any
//! instance, records a key. A challenge is consumed by one `DELETE`.

use async_trait::async_trait;
use mandate_core::UnixTime;
use mandate_store::{AttestationChallengeStore, ReplayStore, StoreResult};

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

#[async_trait]
impl AttestationChallengeStore for PgStore {
    async fn put_attestation_challenge(&self, challenge_hash: &str, expires_at: UnixTime) -> StoreResult<()> {
        sqlx::query("INSERT INTO attestation_challenges (challenge_hash, expires_at) VALUES ($1, $2)")
            .bind(challenge_hash)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_attestation_challenge(&self, challenge_hash: &str, now: UnixTime) -> StoreResult<bool> {
        // One DELETE: of two racing callers, on any instance, one removes the row.
        let done = sqlx::query("DELETE FROM attestation_challenges WHERE challenge_hash = $1 AND expires_at > $2")
            .bind(challenge_hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
