//! Token introspection (RFC 7662) for authenticated clients (resource servers). A token that is
//! not ours, expired or revoked is `{"active": false}` and nothing else (§2.2).

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
