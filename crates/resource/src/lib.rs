//! mandate-resource: what an MCP server (or any HTTP API) needs to accept mandate's access tokens,
//! and nothing more. An MCP server is a plain OAuth resource server (MCP authorization 2026-07-28):
//!
//! - tokens are verified offline (RFC 9068 JWTs) against the issuer's keys, found by discovery,
//!   cached, and refetched (rate-limited) only for an unknown `kid`; or by introspection (RFC 7662)
//!   with a short cache, when revocation must take effect at once;
//! - `typ`, an algorithm allow-list, `iss`, `aud` (this resource, RFC 8707), `exp`/`nbf`/`iat`
//!   with a small leeway, and the scopes each route or MCP method/tool needs;
//! - RFC 9728 protected resource metadata at both well-known URLs;
//! - `WWW-Authenticate` challenges: 401 with `resource_metadata` and `scope`, 403
//!   `insufficient_scope` naming every scope the operation needs (step-up);
//! - delegated tokens (RFC 8693 `act`) refused, capped in chain length, or limited to listed
//!   actors, when the resource says so;
//! - when scopes depend on the JSON-RPC method or tool, a body that cannot be read as plain UTF-8
//!   JSON-RPC (another encoding, a `Content-Encoding`, a body on another method than POST, keys
//!   other parsers would read differently) is refused, and the bytes checked are the bytes passed
//!   on;
//! - the verified claims handed to handlers; the token itself is removed from the request, so it
//!   cannot be passed on (no token passthrough).
//!
//! ```no_run
//! # async fn example() -> Result<(), mandate_resource::BuildError> {
//! use mandate_resource::{ResourceServer, ScopePolicy};
//! let rs = ResourceServer::builder("https://auth.example.com", "https://mcp.example.com/mcp")
//!     .scopes_supported(["tools:read", "tools:call"])
//!     .build()?;
//! let policy = ScopePolicy::new().require(["tools:read"]).tool("echo", ["tools:call"]);
//! let app = axum::Router::new()
//!     .route("/mcp", axum::routing::post(|| async { "…" }))
//!     .layer(rs.layer(policy))
//!     .merge(rs.metadata_router());
//! # let _ = app; Ok(()) }
//! ```

mod challenge;
mod claims;
mod delegation;
mod introspect;
mod jsonrpc;
mod keys;
mod layer;
mod metadata;
mod scopes;
mod server;
mod verify;

pub use challenge::Rejection;
pub use claims::{Token, VerifiedToken};
pub use layer::{RequireBearer, RequireBearerLayer};
pub use scopes::ScopePolicy;
pub use server::{BuildError, Builder, ResourceServer};
