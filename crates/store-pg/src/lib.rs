//! mandate-store-pg: the PostgreSQL backend of the storage traits, for several instances sharing one database.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use mandate_core::client::ClientSource;
use mandate_core::{AuditEvent, Client, Resource, ResourceUri, UnixTime, User};
use mandate_store::rows::{AuditRow, ClientRow, KeyRow, ResourceRow, UserRow};
use mandate_store::{
    AuditStore, ClientStore, KeyStore, ResourceStore, RevocationStore, Store, StoreError, StoreResult, StoredKey,
    UserStore,
};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::query::Query;
use sqlx::{ConnectOptions as _, Connection as _, Postgres};

/// The statement adding one client row, its values bound by `bind_client`. `put_client` appends an
/// upsert; registration does not, so a self-registered client never takes over an existing one.
macro_rules! insert_client_sql {
    () => {
        "INSERT INTO clients (client_id, client_name, secret_digest, token_endpoint_auth_method, grant_types, scopes,
                              resources, redirect_uris, post_logout_redirect_uris, application_type,
                              require_pushed_authorization_requests, jwks, jwks_uri, logo_uri, disabled, source,
                              created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    };
}

/// `insert_client_sql!()` replacing the row of an existing client (config reloads, RFC 7592 updates).
macro_rules! upsert_client_sql {
    () => {
        concat!(
            insert_client_sql!(),
            "
             ON CONFLICT (client_id) DO UPDATE SET
                client_name = excluded.client_name, secret_digest = excluded.secret_digest,
                token_endpoint_auth_method = excluded.token_endpoint_auth_method, grant_types = excluded.grant_types,
                scopes = excluded.scopes, resources = excluded.resources, redirect_uris = excluded.redirect_uris,
                post_logout_redirect_uris = excluded.post_logout_redirect_uris,
                application_type = excluded.application_type,
                require_pushed_authorization_requests = excluded.require_pushed_authorization_requests,
                jwks = excluded.jwks, jwks_uri = excluded.jwks_uri, logo_uri = excluded.logo_uri,
                disabled = excluded.disabled, source = excluded.source, updated_at = excluded.updated_at"
        )
    };
}

/// Binds a client's row, its source and `now` (created and updated) to `insert_client_sql!()`.
fn bind_client<'q>(
    query: Query<'q, Postgres, PgArguments>,
    client: &Client,
    source: ClientSource,
    now: UnixTime,
) -> Query<'q, Postgres, PgArguments> {
    let r = ClientRow::from_client(client);
    query
        .bind(r.client_id)
        .bind(r.client_name)
        .bind(r.secret_digest)
        .bind(r.token_endpoint_auth_method)
        .bind(r.grant_types)
        .bind(r.scopes)
        .bind(r.resources)
        .bind(r.redirect_uris)
        .bind(r.post_logout_redirect_uris)
        .bind(r.application_type)
        .bind(r.require_pushed_authorization_requests)
        .bind(r.jwks)
        .bind(r.jwks_uri)
        .bind(r.logo_uri)
        .bind(r.disabled)
        .bind(source.as_str())
        .bind(now)
        .bind(now)
}

#[cfg(feature = "testing")]
pub mod testing;

mod delegation;
mod lineage;
mod registration;
mod replay;

/// Migrations take `pg_advisory_lock`, so instances starting together migrate once.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Advisory lock key serialising signing-key changes across instances.
const KEY_LOCK: i64 = 0x6d61_6e64_6b65_7973; // "mandkeys"

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("database URL is not a valid postgres:// URL: {0}")]
    Url(String),
    #[error("cannot connect to PostgreSQL at {0}: {1}")]
    Connect(String, sqlx::Error),
    #[error("cannot apply migrations to PostgreSQL database {0}: {1}")]
    Migrate(String, sqlx::migrate::MigrateError),
    #[error("PostgreSQL database {0} is not a mandate database (it has no record of mandate's migrations)")]
    NotMandate(String),
}

#[derive(Debug, Clone, Copy)]
pub struct PoolSize {
    pub max_connections: u32,
}

impl Default for PoolSize {
    fn default() -> Self {
        Self { max_connections: 16 }
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and migrates the database.
    pub async fn open(url: &str, size: PoolSize) -> Result<Self, OpenError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| OpenError::Url(e.to_string()))?;
        // Name the server and database, never the password.
        let shown =
            format!("{}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or("(default)"));
        // One direct connection first: its error names the cause (refused, unknown database,
        // authentication), where the pool would only report a timeout.
        let probe = tokio::time::timeout(Duration::from_secs(10), options.connect())
            .await
            .map_err(|_| OpenError::Connect(shown.clone(), sqlx::Error::PoolTimedOut))?
            .map_err(|e| OpenError::Connect(shown.clone(), e))?;
        probe.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(size.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| OpenError::Connect(shown.clone(), e))?;
        MIGRATOR.run(&pool).await.map_err(|e| OpenError::Migrate(shown, e))?;
        Ok(Self { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Opens the database at `url` only if it is already mandate's: it records mandate's first
    /// migration. For the commands that must never create a schema (an admin command pointed at
    /// the wrong database would otherwise report on a fresh, empty one).
    pub async fn open_existing(url: &str, size: PoolSize) -> Result<Self, OpenError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| OpenError::Url(e.to_string()))?;
        let shown =
            format!("{}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or("(default)"));
        let mut probe = tokio::time::timeout(Duration::from_secs(10), options.connect())
            .await
            .map_err(|_| OpenError::Connect(shown.clone(), sqlx::Error::PoolTimedOut))?
            .map_err(|e| OpenError::Connect(shown.clone(), e))?;
        let first = MIGRATOR.iter().next().map_or(1, |m| m.version);
        // to_regclass: NULL rather than an error when the table is not there.
        let ours: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&mut probe)
            .await
            .map_err(|e| OpenError::Connect(shown.clone(), e))?;
        let ours = ours
            && sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = $1)")
                .bind(first)
                .fetch_one(&mut probe)
                .await
                .map_err(|e| OpenError::Connect(shown.clone(), e))?;
        probe.close().await.ok();
        if !ours {
            return Err(OpenError::NotMandate(shown));
        }
        Self::open(url, size).await
    }
}

#[async_trait]
impl ClientStore for PgStore {
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        sqlx::query_as::<_, ClientRow>(
            "SELECT client_id, client_name, secret_digest, token_endpoint_auth_method, grant_types, scopes, resources,
                    redirect_uris, post_logout_redirect_uris, application_type, require_pushed_authorization_requests,
                    jwks, jwks_uri, logo_uri, disabled
             FROM clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?
        .map(ClientRow::into_client)
        .transpose()
    }

    async fn put_client(&self, client: &Client, source: ClientSource, now: UnixTime) -> StoreResult<()> {
        let query = sqlx::query(upsert_client_sql!());
        bind_client(query, client, source, now).execute(&self.pool).await?;
        Ok(())
    }

    async fn list_client_ids(&self, source: ClientSource) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT client_id FROM clients WHERE source = $1 ORDER BY client_id")
            .bind(source.as_str())
            .fetch_all(&self.pool)
            .await?)
    }

    async fn set_client_disabled(&self, client_id: &str, disabled: bool, now: UnixTime) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE clients SET disabled = $1, updated_at = $2 WHERE client_id = $3")
            .bind(disabled)
            .bind(now)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl ResourceStore for PgStore {
    async fn get_resource(&self, uri: &ResourceUri) -> StoreResult<Option<Resource>> {
        sqlx::query_as::<_, ResourceRow>("SELECT uri, name, scopes FROM resources WHERE uri = $1")
            .bind(uri.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(ResourceRow::into_resource)
            .transpose()
    }

    async fn put_resource(&self, resource: &Resource, now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO resources (uri, name, scopes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (uri) DO UPDATE SET name = excluded.name, scopes = excluded.scopes, updated_at = excluded.updated_at",
        )
        .bind(resource.uri.as_str())
        .bind(&resource.name)
        .bind(resource.scopes.to_string())
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_resources(&self) -> StoreResult<Vec<Resource>> {
        sqlx::query_as::<_, ResourceRow>("SELECT uri, name, scopes FROM resources ORDER BY uri")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(ResourceRow::into_resource)
            .collect()
    }
}

#[async_trait]
impl UserStore for PgStore {
    async fn get_user(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(sqlx::query_as::<_, UserRow>(
            "SELECT username, password_hash, email, disabled FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?
        .map(User::from))
    }

    async fn put_user(&self, user: &User, now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (username, password_hash, email, disabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, email = excluded.email,
                disabled = excluded.disabled, updated_at = excluded.updated_at",
        )
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.email)
        .bind(user.disabled)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        Ok(sqlx::query_as::<_, UserRow>("SELECT username, password_hash, email, disabled FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(User::from)
            .collect())
    }
}

#[async_trait]
impl KeyStore for PgStore {
    async fn published_keys(&self, now: UnixTime) -> StoreResult<Vec<StoredKey>> {
        Ok(sqlx::query_as::<_, KeyRow>(
            "SELECT kid, alg, private_key, created_at, retired_at, publish_until FROM signing_keys
             WHERE retired_at IS NULL OR publish_until > $1 ORDER BY created_at DESC, kid DESC",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(StoredKey::from)
        .collect())
    }

    async fn insert_first_key(&self, key: &StoredKey) -> StoreResult<bool> {
        // READ COMMITTED lets two inserts both see "no key"; the advisory lock serialises them.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(KEY_LOCK).execute(&mut *tx).await?;
        let done = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key, created_at)
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_key)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotate_key(&self, key: &StoredKey, now: UnixTime, publish_until: UnixTime) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(KEY_LOCK).execute(&mut *tx).await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1, publish_until = $2 WHERE retired_at IS NULL")
            .bind(now)
            .bind(publish_until)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO signing_keys (kid, alg, private_key, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.private_key)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl RevocationStore for PgStore {
    async fn revoke_access_token(&self, jti: &str, expires_at: UnixTime, now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn is_access_token_revoked(&self, jti: &str) -> StoreResult<bool> {
        // The token and everything it was exchanged from (subject and actor tokens, all the way
        // up): revoked itself, or issued from a revoked grant.
        let found: Option<i64> = sqlx::query_scalar(
            "WITH RECURSIVE ancestors(jti) AS (
                 SELECT CAST($1 AS TEXT)
                 UNION
                 SELECT CASE WHEN n.k = 0 THEN l.parent_jti ELSE l.actor_jti END
                 FROM token_lineage l
                 JOIN ancestors a ON l.jti = a.jti
                 JOIN (SELECT 0 AS k UNION ALL SELECT 1) n ON TRUE
                 WHERE (CASE WHEN n.k = 0 THEN l.parent_jti ELSE l.actor_jti END) IS NOT NULL
             )
             SELECT CAST(1 AS BIGINT) FROM ancestors a JOIN revoked_tokens r ON r.jti = a.jti
             UNION ALL
             SELECT CAST(1 AS BIGINT) FROM ancestors a
             JOIN issued_access_tokens t ON t.jti = a.jti
             JOIN grants g ON g.grant_id = t.grant_id
             WHERE g.revoked_at IS NOT NULL
             LIMIT 1",
        )
        .bind(jti)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn purge_expired_revocations(&self, now: UnixTime) -> StoreResult<u64> {
        let done =
            sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1").bind(now).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}

/// One audit row, on the pool or inside a transaction.
pub(crate) async fn insert_audit<'e, E: sqlx::Executor<'e, Database = sqlx::Postgres>>(
    executor: E,
    e: &AuditEvent,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, event, grant_type, client_id, subject, resource, scope, outcome, jti, parent_jti, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(e.at)
    .bind(e.kind.as_str())
    .bind(&e.grant_type)
    .bind(&e.client_id)
    .bind(&e.subject)
    .bind(&e.resource)
    .bind(&e.scope)
    .bind(&e.outcome)
    .bind(&e.jti)
    .bind(&e.parent_jti)
    .bind(&e.detail)
    .execute(executor)
    .await?;
    Ok(())
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, e: &AuditEvent) -> StoreResult<()> {
        insert_audit(&self.pool, e).await
    }

    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        sqlx::query_as::<_, AuditRow>(
            "SELECT at, event, grant_type, client_id, subject, resource, scope, outcome, jti, parent_jti, detail
             FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(AuditRow::into_event)
        .collect()
    }

    async fn audit_by_jti(&self, jti: &str) -> StoreResult<Vec<AuditEvent>> {
        sqlx::query_as::<_, AuditRow>(
            "SELECT at, event, grant_type, client_id, subject, resource, scope, outcome, jti, parent_jti, detail
             FROM audit_log WHERE jti = $1 ORDER BY id",
        )
        .bind(jti)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(AuditRow::into_event)
        .collect()
    }

    async fn purge_audit(&self, before: UnixTime, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log ORDER BY id LIMIT $1) AND at < $2",
        )
        .bind(i64::from(limit))
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
