//! Test harness: a real server on a loopback port, on a fresh SQLite file or PostgreSQL database.
#![allow(dead_code)]

use std::sync::Arc;

use mandate_core::{Clock, SystemClock, SystemRandom};
use mandate_server::config::{self, DatabaseUrl};
use mandate_server::{AppState, Parts, Running};
use serde_json::Value;
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per backend from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name($crate::common::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name($crate::common::Backend::Postgres).await } )*
        }
    };
}

pub const MCP: &str = "http://127.0.0.1:9090/mcp";
pub const API: &str = "https://api.example.com";
pub const AGENT_SECRET: &str = "build-agent-secret-0123456789abcdefghijkl";
pub const POST_SECRET: &str = "post-agent-secret-0123456789abcdefghijklm";
pub const RS_SECRET: &str = "resource-server-secret-0123456789abcdefgh";

/// Resources and clients most tests use.
pub fn base_config() -> String {
    format!(
        r#"
[[resources]]
uri = "{MCP}"
name = "Example MCP server"
scopes = ["tools:read", "tools:call"]

[[resources]]
uri = "{API}"
name = "Admin API"
scopes = ["admin"]

[[clients]]
client_id = "build-agent"
client_name = "Build agent"
client_secret = "{AGENT_SECRET}"
scopes = ["tools:read", "tools:call"]

[[clients]]
client_id = "post-agent"
client_secret = "{POST_SECRET}"
token_endpoint_auth_method = "client_secret_post"
scopes = ["tools:read", "admin"]
resources = ["{MCP}"]

[[clients]]
client_id = "resource-server"
client_secret = "{RS_SECRET}"
grant_types = []
"#
    )
}

pub async fn fresh_database(backend: Backend) -> DatabaseUrl {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap().keep();
            DatabaseUrl::Sqlite(format!("sqlite://{}/mandate.db", dir.display()))
        }
        Backend::Postgres => DatabaseUrl::Postgres(mandate_store_pg::testing::fresh_database().await),
    }
}

fn database_toml(db: &DatabaseUrl) -> String {
    match db {
        DatabaseUrl::Sqlite(u) | DatabaseUrl::Postgres(u) => u.clone(),
    }
}

pub struct TestServer {
    pub running: Running,
    /// Where this instance is reached (issuer path included).
    pub base: String,
    pub issuer: String,
    pub http: reqwest::Client,
    pub database: DatabaseUrl,
}

pub struct Options {
    pub config: String,
    pub issuer_path: String,
    pub clock: Arc<dyn Clock>,
    pub port: Option<u16>,
    /// Another instance's issuer, for several instances serving as one.
    pub issuer: Option<String>,
    /// Certificates (DER) the outbound fetcher trusts besides the platform's (a test CA).
    pub trusted_roots: Vec<Vec<u8>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: base_config(),
            issuer_path: String::new(),
            clock: Arc::new(SystemClock),
            port: None,
            issuer: None,
            trusted_roots: Vec::new(),
        }
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        let db = fresh_database(backend).await;
        Self::start_on(db, Options::default()).await
    }

    /// Starts a server on an existing database (a restart, or a second instance).
    pub async fn start_on(database: DatabaseUrl, options: Options) -> Self {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let listener = TcpListener::bind(("127.0.0.1", options.port.unwrap_or(0))).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer =
            options.issuer.clone().unwrap_or_else(|| format!("http://127.0.0.1:{port}{}", options.issuer_path));
        // Reload keys every second unless the test configures [keys] itself.
        let keys = if options.config.contains("[keys]") { "" } else { "[keys]\nrefresh_interval = \"1s\"\n" };
        let text =
            format!("issuer = \"{issuer}\"\ndatabase = \"{}\"\n{keys}{}", database_toml(&database), options.config);
        let settings = config::from_toml(&text).unwrap_or_else(|e| panic!("test config: {e}"));
        let store = mandate_server::app::open_store(&settings.database).await.unwrap();
        let parts = Parts { settings, store, clock: options.clock, rng: Arc::new(SystemRandom::new()) };
        let mut state = mandate_server::prepare(parts).await.unwrap();
        if !options.trusted_roots.is_empty() {
            state.fetcher = trusting(&state.fetcher, &options.trusted_roots);
            state.metadata_fetcher = trusting(&state.metadata_fetcher, &options.trusted_roots);
        }
        let running = mandate_server::serve(state, listener).unwrap();
        let base = format!("http://127.0.0.1:{port}{}", options.issuer_path);
        Self { running, base, issuer, http: reqwest::Client::new(), database }
    }

    pub fn state(&self) -> &AppState {
        &self.running.state
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn stop(self) -> DatabaseUrl {
        let db = self.database.clone();
        self.running.stop().await;
        db
    }

    /// POSTs a form, with HTTP Basic credentials when `basic` is given.
    pub async fn post_form(&self, path: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.unwrap()
    }

    /// A client-credentials token for build-agent on the MCP resource.
    pub async fn agent_token(&self) -> String {
        let res = self
            .post_form(
                "/token",
                Some(("build-agent", AGENT_SECRET)),
                &[("grant_type", "client_credentials"), ("resource", MCP)],
            )
            .await;
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    }

    /// Rotates the signing key (as `mandate keys rotate` does) and reloads this instance's
    /// keyring; returns the new `kid`.
    pub async fn rotate_keys(&self) -> String {
        let state = self.state().clone();
        let kid = mandate_server::keyring::rotate(
            state.store.as_ref(),
            state.settings.signing_algorithm,
            state.now(),
            state.settings.access_token_ttl,
        )
        .await
        .unwrap();
        state.keyring.reload(state.store.as_ref(), state.now()).await.unwrap();
        kid
    }

    /// The authorization server metadata (RFC 8414).
    pub async fn metadata(&self) -> Value {
        let res = self.http.get(self.url("/.well-known/oauth-authorization-server")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let res = self.post_form("/introspect", Some(("resource-server", RS_SECRET)), &[("token", token)]).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }
}

/// The same fetcher, also trusting `roots`.
fn trusting(fetcher: &mandate_fetch::CachedFetcher, roots: &[Vec<u8>]) -> Arc<mandate_fetch::CachedFetcher> {
    let policy =
        mandate_fetch::FetchPolicy { extra_root_certificates: roots.to_vec(), ..fetcher.fetcher().policy().clone() };
    Arc::new(mandate_fetch::CachedFetcher::new(mandate_fetch::Fetcher::new(policy).unwrap()))
}

/// Asserts an RFC 6749 error response: status, `error` code, JSON body, no caching.
pub async fn assert_oauth_error(res: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status for expected {error}");
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    body
}

/// Decodes a JWT's header and claims without verifying (the tests verify separately).
pub fn decode_unverified(token: &str) -> (Value, Value) {
    use base64::Engine as _;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS has three parts");
    let decode = |p: &str| -> Value {
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    };
    (decode(parts[0]), decode(parts[1]))
}
pub mod browser;

/// Serves the example MCP server (examples/mcp-server) in-process on `listener` for the resource
/// `mcp`, trusting `issuer`, until the returned guard drops; returns once /readyz says it has
/// loaded the issuer's keys.
pub async fn serve_example_mcp(listener: TcpListener, issuer: &str, mcp: &str) -> tokio_util::sync::DropGuard {
    let rs = example_mcp_server::resource_server(issuer, mcp).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let app = example_mcp_server::app(&rs, stop.clone());
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await.unwrap()
    });
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if http.get(format!("{origin}/readyz")).send().await.unwrap().status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "the example server never loaded mandate's keys");
    stop.drop_guard()
}
