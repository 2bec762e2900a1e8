//! Authorization server metadata (RFC 8414) and OpenID Connect discovery, the same document at
//! every well-known form (specs AS-1), listing exactly what this server supports.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mandate_core::TokenEndpointAuthMethod;
use serde_json::{Value, json};

use crate::error::Failure;
use crate::state::AppState;

pub async fn handle(State(state): State<AppState>) -> Result<Response, Failure> {
    Ok(axum::Json(metadata(&state).await?).into_response())
}

pub async fn metadata(state: &AppState) -> Result<Value, Failure> {
    let issuer = &state.settings.issuer;
    let mut scopes: Vec<String> = state.store.list_resources().await?.iter().flat_map(|r| r.scopes.to_vec()).collect();
    scopes.sort();
    scopes.dedup();
    let auth_methods: Vec<&str> = TokenEndpointAuthMethod::ALL.iter().map(|m| m.as_str()).collect();
    Ok(json!({
        "issuer": issuer.as_str(),
        "token_endpoint": issuer.endpoint("/token"),
        "jwks_uri": issuer.endpoint("/jwks.json"),
        "introspection_endpoint": issuer.endpoint("/introspect"),
        "revocation_endpoint": issuer.endpoint("/revoke"),
        "grant_types_supported": state.grants.supported(),
        // No authorization endpoint yet, so no response types; the list is required (RFC 8414 §2).
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "scopes_supported": scopes,
        // MCP authorization: S256 must be listed in both the OAuth and the OpenID documents.
        "code_challenge_methods_supported": ["S256"],
    }))
}
