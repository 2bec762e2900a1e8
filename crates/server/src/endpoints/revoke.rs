//! Token revocation (RFC 7009). Unknown or invalid tokens get 200 (§2.2); a client may revoke
//! only tokens issued to it. Revoking a refresh token revokes its grant and every token from it. A revoked access token stays on record until it would have expired,
//! so every instance sharing the database sees it as inactive.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mandate_core::{AuditEvent, AuditKind, OAuthError, SecretDigest};

use super::introspect::verified_access_token;
use crate::audit::{record_issuance, revoke_grant};
use crate::client_auth;
use crate::error::{Failure, store_error};
use crate::form::OAuthForm;
use crate::state::AppState;

pub async fn handle(State(state): State<AppState>, headers: HeaderMap, form: OAuthForm) -> Result<Response, Failure> {
    let client = client_auth::authenticate(&state, &headers, &form).await?;
    let token = form.require("token")?;
    if let Some(hint) = form.get("token_type_hint")
        && !matches!(hint, "access_token" | "refresh_token")
    {
        return Err(OAuthError::new(
            mandate_core::ErrorCode::UnsupportedTokenType,
            format!("token_type_hint {hint} is not a token type this server issues"),
        )
        .into());
    }
    let ok = || ([(axum::http::header::CACHE_CONTROL, "no-store")], StatusCode::OK).into_response();
    let Some(claims) = verified_access_token(&state, token).await else {
        // Not an access token: a refresh token revokes its whole grant (RFC 7009 §2.1).
        let refresh = state.store.get_refresh_token(&SecretDigest::of(token).encode()).await.map_err(store_error)?;
        if let Some(refresh) = refresh {
            if refresh.client_id != client.client_id {
                return Err(OAuthError::invalid_request("the token was not issued to this client").into());
            }
            revoke_grant(&state, &refresh.grant_id, &client.client_id, "refresh token revoked by its client").await?;
        }
        return Ok(ok());
    };
    if claims.client_id != client.client_id {
        return Err(OAuthError::invalid_request("the token was not issued to this client").into());
    }
    let now = state.now();
    state.store.revoke_access_token(&claims.jti, claims.exp, now).await.map_err(store_error)?;
    let mut event = AuditEvent::new(now, AuditKind::TokenRevoked, "ok");
    event.client_id = Some(client.client_id.clone());
    event.subject = Some(claims.sub);
    event.resource = Some(claims.aud);
    event.scope = claims.scope;
    event.jti = Some(claims.jti.clone());
    record_issuance(state.store.as_ref(), &event).await?;
    tracing::info!(jti = %claims.jti, client_id = %client.client_id, "access token revoked");
    Ok(ok())
}
