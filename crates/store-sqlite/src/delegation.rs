//! The delegation path on SQLite: authorization requests, grants with their codes and refresh
//! tokens, consents, browser sessions and login throttling. Single-use consumption is one
//! `UPDATE … RETURNING` / `DELETE … RETURNING` statement; SQLite serialises writers, so of two
//! racing callers (in one process or two sharing the file) exactly one changes the row.

use async_trait::async_trait;
use mandate_core::UnixTime;
use mandate_core::attestation::AttestationBinding;
use mandate_store::rows::{
    AuthorizationCodeRow, AuthorizationRequestRow, BrowserSessionRow, ConsentRow, GrantRow, RefreshTokenRow,
    RefreshTokenStateRow, attestation_json,
};
use mandate_store::{
    AuthorizationCode, AuthorizationRequest, AuthorizationRequestStore, BrowserSession, CodeRedemption, Consent,
    ConsentStore, Grant, GrantStore, RateCounterStore, RefreshToken, RefreshUse, SessionStore, StoreResult,
};

use crate::SqliteStore;

/// Rate events are kept this long at most, whatever window the caller counts over.
const RATE_EVENT_RETENTION: i64 = 86_400;

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[async_trait]
impl RateCounterStore for SqliteStore {
    async fn record_event(&self, key: &str, now: UnixTime, window: i64) -> StoreResult<u32> {
        // One row per failure: the count is exact over a sliding window, and concurrent failures
        // from several instances are all counted.
        sqlx::query("INSERT INTO rate_events (throttle_key, occurred_at) VALUES (?, ?)")
            .bind(key)
            .bind(now)
            .execute(&self.pool)
            .await?;
        self.recent_events(key, now, window).await
    }

    async fn recent_events(&self, key: &str, now: UnixTime, window: i64) -> StoreResult<u32> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rate_events WHERE throttle_key = ? AND occurred_at > ?")
            .bind(key)
            .bind(now.saturating_sub(window))
            .fetch_one(&self.pool)
            .await?;
        Ok(count(n))
    }

    async fn clear_events(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM rate_events WHERE throttle_key = ?").bind(key).execute(&self.pool).await?;
        Ok(())
    }

    async fn take_event(&self, key: &str, now: UnixTime, window: i64, limit: u32) -> StoreResult<bool> {
        // One statement: a write statement takes SQLite's write lock before it reads, so no other
        // connection (or process on the same file) can insert between the count and the insert.
        let done = sqlx::query(
            "INSERT INTO rate_events (throttle_key, occurred_at)
             SELECT ?, ? WHERE (SELECT COUNT(*) FROM rate_events WHERE throttle_key = ? AND occurred_at > ?) < ?",
        )
        .bind(key)
        .bind(now)
        .bind(key)
        .bind(now.saturating_sub(window))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn return_event(&self, key: &str, at: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM rate_events WHERE rowid IN
             (SELECT rowid FROM rate_events WHERE throttle_key = ? AND occurred_at = ? LIMIT 1)",
        )
        .bind(key)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl AuthorizationRequestStore for SqliteStore {
    async fn put_authorization_request(&self, r: &AuthorizationRequest) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO authorization_requests (handle_hash, client_id, redirect_uri, scope, resources, state, nonce,
                                                 code_challenge, prompt, max_age, pushed, client_registration,
                                                 created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.handle_hash)
        .bind(&r.client_id)
        .bind(&r.redirect_uri)
        .bind(&r.scope)
        .bind(&r.resources)
        .bind(&r.state)
        .bind(&r.nonce)
        .bind(&r.code_challenge)
        .bind(&r.prompt)
        .bind(r.max_age)
        .bind(r.pushed)
        .bind(&r.client_registration)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_authorization_request(
        &self,
        handle_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<AuthorizationRequest>> {
        Ok(sqlx::query_as::<_, AuthorizationRequestRow>(
            "SELECT handle_hash, client_id, redirect_uri, scope, resources, state, nonce, code_challenge, prompt, max_age,
                    pushed, client_registration, created_at, expires_at
             FROM authorization_requests WHERE handle_hash = ? AND expires_at > ?",
        )
        .bind(handle_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        .map(AuthorizationRequest::from))
    }

    async fn take_authorization_request(
        &self,
        handle_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<AuthorizationRequest>> {
        // An expired request is left for the purge and reported as absent.
        Ok(sqlx::query_as::<_, AuthorizationRequestRow>(
            "DELETE FROM authorization_requests WHERE handle_hash = ? AND expires_at > ?
             RETURNING handle_hash, client_id, redirect_uri, scope, resources, state, nonce, code_challenge, prompt,
                       max_age, pushed, client_registration, created_at, expires_at",
        )
        .bind(handle_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        .map(AuthorizationRequest::from))
    }
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn put_grant(&self, g: &Grant) -> StoreResult<()> {
        // A plain insert: re-putting a grant must not clear its revocation.
        sqlx::query(
            "INSERT INTO grants (grant_id, client_id, username, scope, resources, auth_time, created_at, revoked_at,
                                 unverified_client_name, attestation)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&g.grant_id)
        .bind(&g.client_id)
        .bind(&g.username)
        .bind(&g.scope)
        .bind(&g.resources)
        .bind(g.auth_time)
        .bind(g.created_at)
        .bind(g.revoked_at)
        .bind(&g.unverified_client_name)
        .bind(g.attestation.as_ref().map(attestation_json))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_grant(&self, grant_id: &str) -> StoreResult<Option<Grant>> {
        sqlx::query_as::<_, GrantRow>(
            "SELECT grant_id, client_id, username, scope, resources, auth_time, created_at, revoked_at,
                    unverified_client_name, attestation
             FROM grants WHERE grant_id = ?",
        )
        .bind(grant_id)
        .fetch_optional(&self.pool)
        .await?
        .map(GrantRow::into_grant)
        .transpose()
    }

    async fn bind_grant_attestation(&self, grant_id: &str, binding: &AttestationBinding) -> StoreResult<bool> {
        // The first binding wins; a later one (there is one code per grant) never replaces it.
        let done = sqlx::query("UPDATE grants SET attestation = ? WHERE grant_id = ? AND attestation IS NULL")
            .bind(attestation_json(binding))
            .bind(grant_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE grants SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(grant_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_grants_of(&self, username: &str, client_id: &str, now: UnixTime) -> StoreResult<u64> {
        let done =
            sqlx::query("UPDATE grants SET revoked_at = ? WHERE username = ? AND client_id = ? AND revoked_at IS NULL")
                .bind(now)
                .bind(username)
                .bind(client_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    async fn put_code(&self, c: &AuthorizationCode) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, code_challenge, nonce,
                                              created_at, expires_at, used_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.code_hash)
        .bind(&c.grant_id)
        .bind(&c.client_id)
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(&c.nonce)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.used_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Only an unused, unexpired code of a live grant is `Redeemed`. A used code is `AlreadyUsed`
    /// even after it expired (until purged), so a late replay still revokes what it issued
    /// (RFC 6749 §4.1.2, RFC 9700 §4.5). An unused code that expired, or whose grant was revoked,
    /// is `Unknown`: the caller answers `invalid_grant` either way.
    async fn redeem_code(&self, code_hash: &str, client_id: &str, now: UnixTime) -> StoreResult<CodeRedemption> {
        let redeemed = sqlx::query_as::<_, AuthorizationCodeRow>(
            "UPDATE authorization_codes SET used_at = ?
             WHERE code_hash = ? AND client_id = ? AND used_at IS NULL AND expires_at > ?
               AND grant_id IN (SELECT grant_id FROM grants WHERE revoked_at IS NULL)
             RETURNING code_hash, grant_id, client_id, redirect_uri, code_challenge, nonce, created_at, expires_at,
                       used_at",
        )
        .bind(now)
        .bind(code_hash)
        .bind(client_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = redeemed {
            return Ok(CodeRedemption::Redeemed(row.into()));
        }
        let seen = sqlx::query_as::<_, AuthorizationCodeRow>(
            "SELECT code_hash, grant_id, client_id, redirect_uri, code_challenge, nonce, created_at, expires_at, used_at
             FROM authorization_codes WHERE code_hash = ? AND client_id = ?",
        )
        .bind(code_hash)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match seen {
            Some(row) if row.used_at.is_some() => CodeRedemption::AlreadyUsed(row.into()),
            _ => CodeRedemption::Unknown,
        })
    }

    async fn put_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, parent_hash, scope, created_at, expires_at,
                                         used_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.token_hash)
        .bind(&t.grant_id)
        .bind(&t.client_id)
        .bind(&t.parent_hash)
        .bind(&t.scope)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.used_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A token of a revoked grant is `Unknown`, used or not: its family is already revoked. An
    /// unused token past `expires_at` is `Unknown`; a used one stays `AlreadyUsed` until purged, so
    /// replaying a rotated token still revokes the family (RFC 9700 §4.14.2).
    async fn use_refresh_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<RefreshUse> {
        let rotated = sqlx::query_as::<_, RefreshTokenRow>(
            "UPDATE refresh_tokens SET used_at = ?
             WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
               AND grant_id IN (SELECT grant_id FROM grants WHERE revoked_at IS NULL)
             RETURNING token_hash, grant_id, client_id, parent_hash, scope, created_at, expires_at, used_at",
        )
        .bind(now)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = rotated {
            return Ok(RefreshUse::Rotated(row.into()));
        }
        let seen = sqlx::query_as::<_, RefreshTokenStateRow>(
            "SELECT t.token_hash, t.grant_id, t.client_id, t.parent_hash, t.scope, t.created_at, t.expires_at,
                    t.used_at, g.revoked_at AS grant_revoked_at
             FROM refresh_tokens t JOIN grants g ON g.grant_id = t.grant_id
             WHERE t.token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match seen {
            Some(s) if s.grant_revoked_at.is_none() && s.token.used_at.is_some() => {
                RefreshUse::AlreadyUsed(s.token.into())
            }
            _ => RefreshUse::Unknown,
        })
    }

    async fn get_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
        Ok(sqlx::query_as::<_, RefreshTokenRow>(
            "SELECT token_hash, grant_id, client_id, parent_hash, scope, created_at, expires_at, used_at
             FROM refresh_tokens WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        .map(RefreshToken::from))
    }

    async fn record_access_token(&self, jti: &str, grant_id: &str, expires_at: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO issued_access_tokens (jti, grant_id, expires_at) VALUES (?, ?, ?) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(grant_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn purge_expired_delegation(&self, now: UnixTime) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let mut purged = 0;
        for sql in [
            "DELETE FROM authorization_requests WHERE expires_at <= ?",
            "DELETE FROM authorization_codes WHERE expires_at <= ?",
            "DELETE FROM refresh_tokens WHERE expires_at <= ?",
            "DELETE FROM issued_access_tokens WHERE expires_at <= ?",
            "DELETE FROM browser_sessions WHERE expires_at <= ?",
            "DELETE FROM used_jtis WHERE expires_at <= ?",
            "DELETE FROM attestation_challenges WHERE expires_at <= ?",
        ] {
            purged += sqlx::query(sql).bind(now).execute(&mut *tx).await?.rows_affected();
        }
        purged += sqlx::query("DELETE FROM rate_events WHERE occurred_at <= ?")
            .bind(now.saturating_sub(RATE_EVENT_RETENTION))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(purged)
    }
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn get_consent(&self, username: &str, client_id: &str, resources: &str) -> StoreResult<Option<Consent>> {
        Ok(sqlx::query_as::<_, ConsentRow>(
            "SELECT username, client_id, resources, scope, granted_at FROM consents
             WHERE username = ? AND client_id = ? AND resources = ?",
        )
        .bind(username)
        .bind(client_id)
        .bind(resources)
        .fetch_optional(&self.pool)
        .await?
        .map(Consent::from))
    }

    async fn put_consent(&self, c: &Consent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (username, client_id, resources, scope, granted_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (username, client_id, resources) DO UPDATE SET
                scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(&c.username)
        .bind(&c.client_id)
        .bind(&c.resources)
        .bind(&c.scope)
        .bind(c.granted_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_consents(&self, username: &str) -> StoreResult<Vec<Consent>> {
        Ok(sqlx::query_as::<_, ConsentRow>(
            "SELECT username, client_id, resources, scope, granted_at FROM consents
             WHERE username = ? ORDER BY client_id, resources",
        )
        .bind(username)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Consent::from)
        .collect())
    }

    async fn delete_consent(&self, username: &str, client_id: &str, resources: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM consents WHERE username = ? AND client_id = ? AND resources = ?")
            .bind(username)
            .bind(client_id)
            .bind(resources)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn forget_client_authorizations(&self, client_id: &str) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let mut gone = 0;
        for statement in [
            "DELETE FROM consents WHERE client_id = ?",
            "DELETE FROM authorization_requests WHERE client_id = ?",
            "DELETE FROM authorization_codes WHERE client_id = ? AND used_at IS NULL",
        ] {
            gone += sqlx::query(statement).bind(client_id).execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(gone)
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn put_session(&self, s: &BrowserSession) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO browser_sessions (session_hash, username, auth_time, expires_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (session_hash) DO UPDATE SET
                username = excluded.username, auth_time = excluded.auth_time, expires_at = excluded.expires_at",
        )
        .bind(&s.session_hash)
        .bind(&s.username)
        .bind(s.auth_time)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_session(&self, session_hash: &str, now: UnixTime) -> StoreResult<Option<BrowserSession>> {
        Ok(sqlx::query_as::<_, BrowserSessionRow>(
            "SELECT session_hash, username, auth_time, expires_at FROM browser_sessions
             WHERE session_hash = ? AND expires_at > ?",
        )
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        .map(BrowserSession::from))
    }

    async fn delete_session(&self, session_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM browser_sessions WHERE session_hash = ?")
            .bind(session_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
