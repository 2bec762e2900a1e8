//! mandate-store-sqlite: the default, embedded backend (SQLite in WAL mode) of the storage traits.

use std::path::Path;
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
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Connection as _, Sqlite};

/// The statement adding one client row, its values bound by `bind_client`. `put_client` appends an
/// upsert; registration does not, so a self-registered client never takes over an existing one.
macro_rules! insert_client_sql {
    () => {
        "INSERT INTO clients (client_id, client_name, secret_digest, token_endpoint_auth_method, grant_types, scopes,
                              resources, redirect_uris, post_logout_redirect_uris, application_type,
                              require_pushed_authorization_requests, jwks, jwks_uri, logo_uri, disabled, source,
                              created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
    query: Query<'q, Sqlite, SqliteArguments>,
    client: &Client,
    source: ClientSource,
    now: UnixTime,
) -> Query<'q, Sqlite, SqliteArguments> {
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

mod delegation;
mod lineage;
mod registration;
mod replay;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection of its own for the group commit of issuances: SQLite has one writer at a
    /// time anyway, and a connection that wrote last keeps its page cache, where any pooled
    /// connection would start each commit by reading back what another one wrote.
    issuances: SqlitePool,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("database URL {0:?} is not a valid sqlite:// URL: {1}")]
    Url(String, String),
    #[error("cannot create the directory {0}: {1}")]
    Directory(String, std::io::Error),
    #[error("cannot open SQLite database {0}: {1}")]
    Open(String, sqlx::Error),
    #[error("cannot apply migrations to SQLite database {0}: {1}")]
    Migrate(String, sqlx::migrate::MigrateError),
    #[error("there is no SQLite database at {0}")]
    Missing(String),
    #[error("{0} is not a mandate database (it has no record of mandate's migrations)")]
    NotMandate(String),
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path/to/file.db`) and migrates it.
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| OpenError::Url(url.to_owned(), e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed issuance or audit row survives a crash or power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let file = options.get_filename().to_path_buf();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::create_dir_all(dir).map_err(|e| OpenError::Directory(dir.display().to_string(), e))?;
        }
        let shown = display(&file);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await
            .map_err(|e| OpenError::Open(shown.clone(), e))?;
        MIGRATOR.run(&pool).await.map_err(|e| OpenError::Migrate(shown.clone(), e))?;
        let issuances = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| OpenError::Open(shown, e))?;
        Ok(Self { pool, issuances })
    }

    pub async fn close(&self) {
        self.issuances.close().await;
        self.pool.close().await;
    }

    /// Opens the database at `url` only if it is already mandate's: the file exists and records
    /// mandate's first migration. For the commands that must never create a database (an admin
    /// command pointed at the wrong place would otherwise report on a fresh, empty one).
    pub async fn open_existing(url: &str) -> Result<Self, OpenError> {
        let file = database_file(url)?;
        let shown = display(&file);
        if !file.is_file() {
            return Err(OpenError::Missing(shown));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| OpenError::Url(url.to_owned(), e.to_string()))?
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(5));
        let mut probe = options.connect().await.map_err(|e| OpenError::Open(shown.clone(), e))?;
        let first = MIGRATOR.iter().next().map_or(1, |m| m.version);
        let ours: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
        )
        .fetch_one(&mut probe)
        .await
        .map_err(|e| OpenError::Open(shown.clone(), e))?;
        let ours = ours
            && sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = ?)")
                .bind(first)
                .fetch_one(&mut probe)
                .await
                .map_err(|e| OpenError::Open(shown.clone(), e))?;
        probe.close().await.ok();
        if !ours {
            return Err(OpenError::NotMandate(shown));
        }
        Self::open(url).await
    }
}

/// The file a `sqlite://` URL names, as given (relative paths are relative to the working directory).
pub fn database_file(url: &str) -> Result<std::path::PathBuf, OpenError> {
    let options = SqliteConnectOptions::from_str(url).map_err(|e| OpenError::Url(url.to_owned(), e.to_string()))?;
    Ok(options.get_filename().to_path_buf())
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        sqlx::query_as::<_, ClientRow>(
            "SELECT client_id, client_name, secret_digest, token_endpoint_auth_method, grant_types, scopes, resources,
                    redirect_uris, post_logout_redirect_uris, application_type, require_pushed_authorization_requests,
                    jwks, jwks_uri, logo_uri, disabled
             FROM clients WHERE client_id = ?",
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
        Ok(sqlx::query_scalar("SELECT client_id FROM clients WHERE source = ? ORDER BY client_id")
            .bind(source.as_str())
            .fetch_all(&self.pool)
            .await?)
    }

    async fn set_client_disabled(&self, client_id: &str, disabled: bool, now: UnixTime) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE clients SET disabled = ?, updated_at = ? WHERE client_id = ?")
            .bind(disabled)
            .bind(now)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl ResourceStore for SqliteStore {
    async fn get_resource(&self, uri: &ResourceUri) -> StoreResult<Option<Resource>> {
        sqlx::query_as::<_, ResourceRow>("SELECT uri, name, scopes FROM resources WHERE uri = ?")
            .bind(uri.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(ResourceRow::into_resource)
            .transpose()
    }

    async fn put_resource(&self, resource: &Resource, now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO resources (uri, name, scopes, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
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
impl UserStore for SqliteStore {
    async fn get_user(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(sqlx::query_as::<_, UserRow>(
            "SELECT username, password_hash, email, disabled FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?
        .map(User::from))
    }

    async fn put_user(&self, user: &User, now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (username, password_hash, email, disabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
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
impl KeyStore for SqliteStore {
    async fn published_keys(&self, now: UnixTime) -> StoreResult<Vec<StoredKey>> {
        Ok(sqlx::query_as::<_, KeyRow>(
            "SELECT kid, alg, private_key, created_at, retired_at, publish_until FROM signing_keys
             WHERE retired_at IS NULL OR publish_until > ? ORDER BY created_at DESC, kid DESC",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(StoredKey::from)
        .collect())
    }

    async fn insert_first_key(&self, key: &StoredKey) -> StoreResult<bool> {
        // One statement, so two instances starting together cannot both add a first key.
        let done = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key, created_at)
             SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_key)
        .bind(key.created_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotate_key(&self, key: &StoredKey, now: UnixTime, publish_until: UnixTime) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = ?, publish_until = ? WHERE retired_at IS NULL")
            .bind(now)
            .bind(publish_until)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO signing_keys (kid, alg, private_key, created_at) VALUES (?, ?, ?, ?)")
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
impl RevocationStore for SqliteStore {
    async fn revoke_access_token(&self, jti: &str, expires_at: UnixTime, now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES (?, ?, ?) ON CONFLICT (jti) DO NOTHING",
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
                 SELECT CAST(?1 AS TEXT)
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
            sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= ?").bind(now).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}

/// One audit row, on the pool or inside a transaction.
pub(crate) async fn insert_audit<'e, E: sqlx::Executor<'e, Database = sqlx::Sqlite>>(
    executor: E,
    e: &AuditEvent,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, event, grant_type, client_id, subject, resource, scope, outcome, jti, parent_jti, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
impl AuditStore for SqliteStore {
    async fn append_audit(&self, e: &AuditEvent) -> StoreResult<()> {
        insert_audit(&self.pool, e).await
    }

    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        sqlx::query_as::<_, AuditRow>(
            "SELECT at, event, grant_type, client_id, subject, resource, scope, outcome, jti, parent_jti, detail
             FROM audit_log ORDER BY id DESC LIMIT ?",
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
             FROM audit_log WHERE jti = ? ORDER BY id",
        )
        .bind(jti)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(AuditRow::into_event)
        .collect()
    }

    async fn purge_audit(&self, before: UnixTime, limit: u32) -> StoreResult<u64> {
        let done =
            sqlx::query("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log ORDER BY id LIMIT ?) AND at < ?")
                .bind(i64::from(limit))
                .bind(before)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
