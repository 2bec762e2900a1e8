//! Token introspection (RFC 7662) for authenticated clients (resource servers). A token that is
//! not ours, expired or revoked is `{"active": false}` and nothing else (§2.2).
//!
//! Who may ask about a token (§4: otherwise introspection is a token-validity oracle for anyone
//! who can register a client): the client its audience names in `[[resources]] client_id`, the
//! client the token was issued to, and configured clients with no grant types (resource servers,
//! such as the quickstart's MCP server). Anyone else is told `{"active": false}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use mandate_core::OAuthError;
use mandate_core::jose::{TokenRejected, verify_access_token};
use serde_json::json;

use super::no_store_json;
use crate::client_auth;
use crate::error::{Failure, store_error};
use crate::form::OAuthForm;
use crate::state::AppState;

pub async fn handle(State(state): State<AppState>, headers: HeaderMap, form: OAuthForm) -> Result<Response, Failure> {
    let caller = client_auth::authenticate(&state, &headers, &form).await?;
    if caller.is_public() {
        return Err(OAuthError::invalid_client("introspection needs an authenticated (confidential) client").into());
    }
    let token = form.require("token")?;
    // token_type_hint is only a hint (§2.1); mandate looks the token up by its form alone.
    let Some(claims) = verified_access_token(&state, token).await else {
        return Ok(no_store_json(json!({ "active": false })));
    };
    if !may_introspect(&state, &caller, &claims) {
        tracing::info!(client_id = ?caller.client_id, aud = ?claims.aud, "introspection of another client's token for another resource refused");
        return Ok(no_store_json(json!({ "active": false })));
    }
    if state.store.is_access_token_revoked(&claims.jti).await.map_err(store_error)? {
        return Ok(no_store_json(json!({ "active": false })));
    }
    let mut body = json!({
        "active": true,
        "token_type": "Bearer",
        "scope": claims.scope,
        "client_id": claims.client_id,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "exp": claims.exp,
        "iat": claims.iat,
        "jti": claims.jti,
    });
    // Who attested the client instance, and its runtime: as in the token itself.
    if let Some(attestation) = claims.attestation {
        body["attestation"] = json!(attestation);
    }
    // RFC 8693 §4.1: who acts for the subject, and who before them.
    if let Some(act) = claims.act {
        body["act"] = json!(act);
    }
    Ok(no_store_json(body))
}

fn may_introspect(
    state: &AppState,
    caller: &mandate_core::Client,
    claims: &mandate_core::jose::AccessTokenClaims,
) -> bool {
    let resource_server = state.settings.custody.resource_clients.get(&claims.aud) == Some(&caller.client_id);
    let own = claims.client_id == caller.client_id;
    let configured_rs = caller.grant_types.is_empty()
        && !crate::clients::unattended::is_self_described(&caller.client_id)
        && state.settings.clients.iter().any(|c| c.client_id == caller.client_id);
    resource_server || own || configured_rs
}

/// Our own access token, signature and times checked; a `kid` we don't know yet triggers one
/// reload, since another instance may have rotated keys.
pub async fn verified_access_token(state: &AppState, token: &str) -> Option<mandate_core::jose::AccessTokenClaims> {
    let issuer = state.settings.issuer.as_str();
    let keys = state.keyring.current();
    match verify_access_token(token, &keys.published, issuer, state.now()) {
        Ok(claims) => Some(claims),
        Err(TokenRejected::UnknownKey) => {
            if state.keyring.reload_for_unknown_kid(state.store.as_ref(), state.now()).await {
                verify_access_token(token, &state.keyring.current().published, issuer, state.now()).ok()
            } else {
                None
            }
        }
        Err(_) => None,
    }
}
