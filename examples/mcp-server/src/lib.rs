//! An MCP server protected by mandate, as small as one can be while doing everything MCP
//! authorization 2026-07-28 (§1a) asks of a resource server: rmcp serves two tools over Streamable
//! HTTP at the resource's path, and mandate-resource's layer in front of it verifies every request's
//! token (issuer, audience = this resource, expiry, signature against the issuer's published keys),
//! answers 401/403 with `WWW-Authenticate` challenges that name the RFC 9728 metadata and the
//! scopes needed, and hands the verified claims, never the token, to the tools.
//!
//! The MCP endpoint is stateless (no `Mcp-Session-Id`; the 2026-07-28 revision drops sessions):
//! each request is authorized on its own, and nothing ties one client's requests together but
//! its token.

mod tools;

use axum::Router;
use axum::http::{Method, Request, StatusCode, header};
use axum::routing::get;
use mandate_resource::{BuildError, ResourceServer, ScopePolicy};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
};
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowHeaders, Any, CorsLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use tools::{ECHO, Tools, WHOAMI};

/// Every request needs this scope: listing tools, calling `whoami`, any other method.
pub const READ_SCOPE: &str = "tools:read";
/// Calling `echo` needs this one as well (a step-up from `tools:read`).
pub const CALL_SCOPE: &str = "tools:call";

/// The scopes each operation needs, enforced before rmcp sees the request.
pub fn policy() -> ScopePolicy {
    ScopePolicy::new().require([READ_SCOPE]).tool(ECHO, [CALL_SCOPE])
}

/// The resource server for `resource` (the canonical URI of the MCP endpoint, the `aud` of its
/// tokens) trusting `issuer`. Starts loading the issuer's keys in the background, retrying with
/// backoff while it is unreachable (requests get 503 until then); call within a Tokio runtime.
pub fn resource_server(issuer: &str, resource: &str) -> Result<ResourceServer, BuildError> {
    ResourceServer::builder(issuer, resource)
        .scopes_supported([READ_SCOPE, CALL_SCOPE])
        .resource_name("Example MCP server")
        .build()
}

/// The application: the MCP endpoint at the resource's path behind the token check, the RFC 9728
/// metadata at its well-known URLs, and `/healthz` and `/readyz` (ready once the issuer's keys are
/// loaded). Open requests end when `shutdown` is cancelled.
pub fn app(rs: &ResourceServer, shutdown: CancellationToken) -> Router {
    let resource = url::Url::parse(rs.resource()).expect("the builder checked the resource URL");
    let mcp = StreamableHttpService::new(
        || Ok(Tools),
        NeverSessionManager::default().into(),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_allowed_hosts(allowed_hosts(&resource))
            .with_cancellation_token(shutdown),
    );
    let ready = rs.clone();
    Router::new()
        .route_service(resource.path(), mcp)
        .layer(rs.layer(policy()))
        .merge(rs.metadata_router())
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                match ready.is_ready() {
                    true => (StatusCode::OK, "ready"),
                    false => (StatusCode::SERVICE_UNAVAILABLE, "the authorization server's keys are not loaded yet"),
                }
            }),
        )
        // Method, path and status in the log: no query string, no headers; the token is marked
        // sensitive besides.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(
                    |req: &Request<_>| tracing::info_span!("request", method = %req.method(), path = %req.uri().path()),
                )
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION]))
        .layer(cors())
}

/// Browser-based MCP hosts (the MCP Inspector, web apps) call from another origin. Any origin may:
/// no cookies are involved, so a page can only present a token it already holds. Preflight
/// requests are answered here, before the token check.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([header::WWW_AUTHENTICATE, header::HeaderName::from_static("mcp-session-id")])
}

/// `Host` values rmcp accepts (its defence against DNS rebinding): the resource's own authority,
/// and loopback for local checks.
fn allowed_hosts(resource: &url::Url) -> Vec<String> {
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if let Some(host) = resource.host_str() {
        hosts.push(match resource.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        });
    }
    hosts
}
