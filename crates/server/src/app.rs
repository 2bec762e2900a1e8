//! Assembling and running the server: open storage, seed, load keys, build the router, serve
//! until shut down, with background reloads of keys and purges of expired revocations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mandate_core::{Clock, OAuthError, Random, SystemClock, SystemRandom};
use mandate_store::Store;
use mandate_store_pg::PgStore;
use mandate_store_sqlite::SqliteStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::config::{DatabaseUrl, Settings};
use crate::endpoints::{
    account, account_lineage, admin, authorize, challenge, consent, discovery, health, introspect, jwks, login, logout,
    metrics, par, register, revoke, token, userinfo,
};
use crate::error::Failure;
use crate::grants::GrantRegistry;
use crate::keyring::Keyring;
use crate::seed::seed;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Sqlite(#[from] mandate_store_sqlite::OpenError),
    #[error(transparent)]
    Postgres(#[from] mandate_store_pg::OpenError),
    #[error("seeding the configured users, resources and clients failed: {0}")]
    Seed(mandate_store::StoreError),
    #[error("loading signing keys failed: {0}")]
    Keys(#[from] crate::keyring::KeyringError),
    #[error("cannot set up outbound HTTP: {0}")]
    Fetcher(#[from] mandate_fetch::BuildError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

/// Opens the configured database, running its migrations.
pub async fn open_store(database: &DatabaseUrl) -> Result<Arc<dyn Store>, StartError> {
    Ok(match database {
        DatabaseUrl::Sqlite(url) => Arc::new(SqliteStore::open(url).await?),
        DatabaseUrl::Postgres(url) => Arc::new(PgStore::open(url, Default::default()).await?),
    })
}

/// What a server is built from; tests swap the clock and the random source.
pub struct Parts {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Random>,
}

impl Parts {
    pub async fn new(settings: Settings) -> Result<Self, StartError> {
        let store = open_store(&settings.database).await?;
        Ok(Self { settings, store, clock: Arc::new(SystemClock), rng: Arc::new(SystemRandom::new()) })
    }
}

/// Seeds the configuration and loads keys: everything before the router.
pub async fn prepare(parts: Parts) -> Result<AppState, StartError> {
    metrics::install();
    for warning in &parts.settings.warnings {
        tracing::warn!("{warning}");
    }
    let report = seed(parts.store.as_ref(), &parts.settings, parts.clock.as_ref(), parts.rng.as_ref())
        .await
        .map_err(StartError::Seed)?;
    for (what, list) in [("created", &report.created), ("updated", &report.updated), ("disabled", &report.disabled)] {
        for item in list {
            tracing::info!("seeded from config: {what} {item}");
        }
    }
    let keyring = Keyring::load(parts.store.as_ref(), parts.settings.signing_algorithm, parts.clock.now()).await?;
    if parts.settings.allow_private_networks {
        tracing::warn!(
            "registration.allow_private_networks is on: outbound fetches may reach loopback and private networks (development only)"
        );
    }
    let policy = mandate_fetch::FetchPolicy {
        allow_private_networks: parts.settings.allow_private_networks,
        ..Default::default()
    };
    let metadata_policy =
        mandate_fetch::FetchPolicy { max_bytes: crate::clients::metadata::MAX_DOCUMENT_BYTES, ..policy.clone() };
    let logo_policy = mandate_fetch::FetchPolicy { max_bytes: crate::clients::logo::MAX_LOGO_BYTES, ..policy.clone() };
    let fetcher = mandate_fetch::CachedFetcher::new(mandate_fetch::Fetcher::new(policy)?);
    let metadata_fetcher = mandate_fetch::CachedFetcher::new(mandate_fetch::Fetcher::new(metadata_policy)?);
    let logo_fetcher = mandate_fetch::CachedFetcher::new(mandate_fetch::Fetcher::new(logo_policy)?);
    // SQLite has one writer at a time, so a second batch would only queue for its lock.
    let writers = if parts.store.backend() == "postgres" { 2 } else { 1 };
    let issuances = crate::audit::IssuanceLog::start(parts.store.clone(), writers);
    Ok(AppState {
        settings: Arc::new(parts.settings),
        store: parts.store,
        issuances,
        lookups: crate::lookups::Lookups::default(),
        clock: parts.clock,
        rng: parts.rng,
        keyring: Arc::new(keyring),
        grants: Arc::new(GrantRegistry::standard()),
        fetcher: Arc::new(fetcher),
        metadata_fetcher: Arc::new(metadata_fetcher),
        logo_fetcher: Arc::new(logo_fetcher),
    })
}

/// The attestation challenge endpoint, relative to the issuer.
pub const CHALLENGE_PATH: &str = "/challenge";

pub fn router(state: AppState) -> Router {
    let mut issuer_routes = Router::new()
        .route("/authorize", get(authorize::get).post(authorize::post))
        .route("/par", post(par::handle))
        .route("/login", get(login::get).post(login::post))
        .route("/consent", get(consent::get).post(consent::post))
        .route("/consent/logo", get(consent::logo))
        .route("/account", get(account::get))
        .route("/account/consents/revoke", post(account::revoke))
        .route("/account/lineage/{jti}", get(account_lineage::get))
        .route("/account/lineage/{jti}/revoke", post(account_lineage::revoke))
        .route("/logout", get(logout::get).post(logout::post))
        .route("/userinfo", get(userinfo::handle).post(userinfo::handle))
        .route("/token", post(token::handle))
        .route("/introspect", post(introspect::handle))
        .route("/revoke", post(revoke::handle))
        .route("/admin/tokens", get(admin::tokens))
        .route("/admin/lineage/{jti}", get(admin::lineage))
        .route("/admin/lineage/{jti}/revoke", post(admin::revoke))
        .route("/admin/grants/revoke", post(admin::revoke_grants))
        .route("/jwks.json", get(jwks::handle))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::handle));
    if state.settings.registration.dynamic {
        issuer_routes = issuer_routes
            .route("/register", post(register::register))
            .route("/register/{client_id}", get(register::read).put(register::update).delete(register::delete));
    }
    if state.settings.attestation.enabled() {
        issuer_routes = issuer_routes.route(CHALLENGE_PATH, post(challenge::handle));
    }
    let path = state.settings.issuer.path().to_owned();
    let mut app = if path.is_empty() { issuer_routes } else { Router::new().nest(&path, issuer_routes) };
    for well_known in state.settings.issuer.discovery_paths() {
        app = app.route(&well_known, get(discovery::handle));
    }
    let request_id = HeaderName::from_static("x-request-id");
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::client_address::attach))
        .with_state(state)
        .layer(axum::middleware::from_fn(refuse_encoded_nul))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(CatchPanicLayer::custom(|_| Failure(OAuthError::server_error()).into_response()))
        .layer(
            TraceLayer::new_for_http()
                // The path only: a query string could carry a secret.
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = ?req.uri().path(), request_id = ?id, client = tracing::field::Empty)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            HeaderName::from_static(mandate_core::attestation::ATTESTATION_HEADER),
            HeaderName::from_static(mandate_core::attestation::POP_HEADER),
        ]))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// A percent-encoded NUL in the path or query (`%00`) never names anything, and would reach
/// storage that cannot hold it (PostgreSQL text): refused before any handler runs.
async fn refuse_encoded_nul(req: Request<axum::body::Body>, next: axum::middleware::Next) -> Response {
    let uri = req.uri();
    let has_nul = |s: &str| s.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0');
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return Failure(OAuthError::invalid_request("the request contains a NUL character (%00)")).into_response();
    }
    next.run(req).await
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": "not_found" }))).into_response()
}

async fn method_not_allowed() -> Response {
    Failure(OAuthError::invalid_request("this endpoint does not accept that HTTP method").with_status(405))
        .into_response()
}

/// A running server.
pub struct Running {
    pub local_addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub state: AppState,
}

impl Running {
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Serves on `listener` until `shutdown` is cancelled.
pub fn serve(state: AppState, listener: TcpListener) -> std::io::Result<Running> {
    let local_addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    spawn_maintenance(state.clone(), shutdown.clone());
    let app = router(state.clone());
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        // The peer address feeds the per-address sign-in throttle.
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    tracing::info!(%local_addr, issuer = %state.settings.issuer.as_str(), database = state.store.backend(), "mandate is serving");
    Ok(Running { local_addr, shutdown, task, state })
}

/// Binds `settings.listen` and serves.
pub async fn start(parts: Parts) -> Result<Running, StartError> {
    let listen = parts.settings.listen;
    let state = prepare(parts).await?;
    let listener = TcpListener::bind(listen).await.map_err(|e| StartError::Listen(listen, e))?;
    serve(state, listener).map_err(|e| StartError::Listen(listen, e))
}

fn spawn_maintenance(state: AppState, shutdown: CancellationToken) {
    let interval = state.settings.key_refresh_interval;
    tokio::spawn(async move {
        let mut keys = tokio::time::interval(interval);
        let mut purge = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = keys.tick() => {
                    if let Err(e) = state.keyring.reload(state.store.as_ref(), state.now()).await {
                        tracing::warn!(error = %e, "periodic signing key reload failed");
                    }
                }
                _ = purge.tick() => {
                    match state.store.purge_expired_revocations(state.now()).await {
                        Ok(n) if n > 0 => tracing::info!(purged = n, "expired revocations purged"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "purging expired revocations failed"),
                    }
                    let unused_since = state.now() - state.settings.registration.unused_registration_expiry.as_secs() as i64;
                    match state.store.purge_unused_registrations(unused_since).await {
                        Ok(n) if n > 0 => tracing::info!(purged = n, "unused self-registered clients deleted"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "purging unused registrations failed"),
                    }
                    match state.store.purge_expired_delegation(state.now()).await {
                        Ok(n) if n > 0 => tracing::info!(purged = n, "expired codes, requests, refresh tokens and sessions purged"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "purging expired delegation records failed"),
                    }
                    match crate::audit::apply_retention(&state).await {
                        Ok((0, 0)) => {}
                        Ok((audit, lineage)) => tracing::info!(audit, lineage, "audit and lineage rows past [audit] retention deleted"),
                        Err(e) => tracing::warn!(error = %e, "applying [audit] retention failed"),
                    }
                }
            }
        }
    });
}
