//! mandate-gateway: OAuth in front of an HTTP MCP server (or any HTTP API) that nobody can
//! change. A reverse proxy that
//!
//! - checks every request exactly as an MCP server embedding `mandate-resource` would (MCP
//!   authorization 2026-07-28, RS-1..RS-5): a token from the issuer, for this resource URI, with
//!   the required scopes; 401/403 with `WWW-Authenticate` challenges otherwise;
//! - refuses delegated tokens (RFC 8693 `act`), long chains or unlisted actors when told to;
//! - when scopes depend on the JSON-RPC method or tool, refuses a body it cannot read exactly as
//!   the upstream would, and forwards the very bytes it checked;
//! - serves the RFC 9728 protected resource metadata for its resource URL;
//! - forwards what it admits to the upstream without the agent's token (no token passthrough),
//!   with the upstream's own credential added instead, streaming both ways (SSE event by event),
//!   and only below the upstream's path (no dot segments, no encoded separators).
//!
//! One module per job: [`credential`] (the upstream's credential, never printed), `headers`
//! (what crosses), `target` (the path mapping), `forward` (the proxy), `stream` (the response
//! body), `failure` (502/504), `access_log`.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use mandate_gateway::{Gateway, GatewayConfig, UpstreamHeader};
//! let mut config = GatewayConfig::new(
//!     "http://127.0.0.1:3001/mcp".parse()?,
//!     "https://auth.example.com",
//!     "https://mcp.example.com/mcp",
//! );
//! config.scopes = vec!["tools:read".into()];
//! config.upstream_headers = vec![UpstreamHeader::from_env("X-Api-Key=UPSTREAM_API_KEY", |v| std::env::var(v).ok())?];
//! let gateway = Gateway::new(config)?;
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
//! let running = gateway.serve(listener)?;
//! # running.stop().await; Ok(()) }
//! ```

mod access_log;
pub mod credential;
mod failure;
mod forward;
mod headers;
mod stream;
mod target;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use mandate_resource::{BuildError, ResourceServer, ScopePolicy};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

pub use credential::{CredentialError, Introspection, UpstreamHeader};

use crate::forward::Proxy;
use crate::target::Target;

/// What a gateway protects and where it forwards.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The MCP server the gateway forwards to, e.g. `http://127.0.0.1:3001/mcp`.
    pub upstream: Url,
    /// The authorization server whose tokens are accepted (mandate's issuer).
    pub issuer: String,
    /// The gateway's own public URL: the resource URI tokens must be issued for (their `aud`),
    /// and the path the gateway answers on.
    pub resource: String,
    /// Scopes every request needs; also published as `scopes_supported`.
    pub scopes: Vec<String>,
    /// More scopes for a JSON-RPC method (`tools/call`) or one tool: `(name, scope)` pairs.
    pub method_scopes: Vec<(String, String)>,
    pub tool_scopes: Vec<(String, String)>,
    /// A name for people, in the metadata.
    pub resource_name: Option<String>,
    /// Check tokens by introspection at the issuer instead of offline against its keys.
    pub introspection: Option<Introspection>,
    /// Refuse delegated tokens (with an RFC 8693 `act` claim).
    pub refuse_delegation: bool,
    /// Refuse delegated tokens whose chain has more actors than this.
    pub max_delegation_depth: Option<usize>,
    /// When not empty, accept a delegated token only if every actor of its chain is one of these
    /// clients (by the actor's `sub`).
    pub allowed_actors: Vec<String>,
    /// Headers sent to the upstream with every request (its own credential).
    pub upstream_headers: Vec<UpstreamHeader>,
    /// How long connecting to the upstream may take.
    pub connect_timeout: Duration,
    /// How long the upstream may stay silent, before answering or within a body. There is no
    /// total timeout: an SSE stream may last as long as it keeps sending.
    pub idle_timeout: Duration,
}

impl GatewayConfig {
    pub fn new(upstream: Url, issuer: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            upstream,
            issuer: issuer.into(),
            resource: resource.into(),
            scopes: Vec::new(),
            method_scopes: Vec::new(),
            tool_scopes: Vec::new(),
            resource_name: None,
            introspection: None,
            refuse_delegation: false,
            max_delegation_depth: None,
            allowed_actors: Vec::new(),
            upstream_headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "the upstream {0} is not an absolute http(s) URL without credentials, query or fragment (put a credential in an upstream header)"
    )]
    Upstream(String),
    #[error(transparent)]
    ResourceServer(#[from] BuildError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error("the upstream HTTP client could not be built: {0}")]
    Http(String),
}

/// A configured gateway: its router, and the shutdown signal its streams follow.
pub struct Gateway {
    rs: ResourceServer,
    router: Router,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("resource_server", &self.rs).finish_non_exhaustive()
    }
}

impl Gateway {
    /// Checks the configuration and starts loading the issuer's keys (call within a Tokio
    /// runtime; until the keys are loaded, requests with a token get 503).
    pub fn new(config: GatewayConfig) -> Result<Self, ConfigError> {
        let upstream = config.upstream;
        let plain = matches!(upstream.scheme(), "http" | "https")
            && upstream.has_host()
            && upstream.username().is_empty()
            && upstream.password().is_none()
            && upstream.query().is_none()
            && upstream.fragment().is_none();
        if !plain {
            return Err(ConfigError::Upstream(redacted(&upstream)));
        }
        credential::check_unique(&config.upstream_headers)?;

        let mut builder =
            ResourceServer::builder(config.issuer, config.resource.clone()).scopes_supported(config.scopes.clone());
        if let Some(name) = config.resource_name {
            builder = builder.resource_name(name);
        }
        if let Some(i) = config.introspection {
            builder = builder.introspection(i.client_id, i.client_secret).introspection_cache(i.cache);
        }
        if config.refuse_delegation {
            builder = builder.refuse_delegation();
        }
        if let Some(actors) = config.max_delegation_depth {
            builder = builder.max_delegation_depth(actors);
        }
        if !config.allowed_actors.is_empty() {
            builder = builder.allowed_actors(config.allowed_actors);
        }
        let rs = builder.build()?;
        let mut policy = ScopePolicy::new().require(config.scopes);
        for (method, scope) in &config.method_scopes {
            policy = policy.method(method, [scope.as_str()]);
        }
        for (tool, scope) in &config.tool_scopes {
            policy = policy.tool(tool, [scope.as_str()]);
        }

        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.idle_timeout)
            // Node's and uvicorn's servers close idle connections after 5 s: reusing one just as it
            // closes would fail a request the agent sent only once.
            .pool_idle_timeout(Duration::from_secs(4))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        // The resource URL parsed: the builder above accepted it.
        let resource = Url::parse(&config.resource).map_err(|_| BuildError::Resource(config.resource.clone()))?;
        let target = Target::new(&resource, &upstream);
        let shutdown = CancellationToken::new();
        let proxy = Arc::new(Proxy {
            http,
            target: target.clone(),
            credentials: config.upstream_headers,
            shutdown: shutdown.clone(),
        });

        let mut forwarded = Router::new();
        for path in target.routes() {
            forwarded = forwarded.route(&path, any(forward::forward));
        }
        let router = forwarded
            .route_layer(rs.layer(policy))
            .with_state(proxy)
            .merge(rs.metadata_router())
            .fallback(failure::not_found)
            .layer(axum::middleware::from_fn(access_log::access_log));
        Ok(Self { rs, router, shutdown })
    }

    /// The gateway as an axum router, to serve or to nest in another application.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    pub fn resource_server(&self) -> &ResourceServer {
        &self.rs
    }

    /// Serves on `listener` until [`Running::stop`].
    pub fn serve(self, listener: TcpListener) -> std::io::Result<Running> {
        let local_addr = listener.local_addr()?;
        let shutdown = self.shutdown.clone();
        let stop = shutdown.clone();
        let app = self.router;
        let task = tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await
        });
        tracing::info!(%local_addr, resource = self.rs.resource(), issuer = self.rs.issuer(), "mandate gateway is serving");
        Ok(Running { local_addr, shutdown, task })
    }
}

/// A running gateway.
pub struct Running {
    pub local_addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting connections, ends open response streams, and waits for requests in
    /// flight to finish.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// A URL for messages: scheme, host, port and path only.
fn redacted(url: &Url) -> String {
    match url.host_str() {
        Some(host) => format!(
            "{}://{}{}{}",
            url.scheme(),
            host,
            url.port().map(|p| format!(":{p}")).unwrap_or_default(),
            url.path()
        ),
        None => format!("{}:…", url.scheme()),
    }
}
