//! The UserInfo endpoint (OpenID Connect Core §5.3): claims about the person behind an access
//! token that carries `openid`, by the scopes it carries. Bearer token in the header only.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use mandate_core::{ErrorCode, OAuthError, ScopeSet, oidc};
use serde_json::{Map, Value, json};

use super::introspect::verified_access_token;
use super::no_store_json;
use crate::error::{Failure, store_error};
use crate::state::AppState;

pub async fn handle(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Failure> {
    let invalid =
        || OAuthError::new(ErrorCode::InvalidToken, "the access token is missing, invalid, expired or revoked");
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(invalid)?;
    let claims = verified_access_token(&state, token).await.ok_or_else(invalid)?;
    if state.store.is_access_token_revoked(&claims.jti).await.map_err(store_error)? {
        return Err(invalid().into());
    }
    let scope = ScopeSet::parse(claims.scope.as_deref().unwrap_or_default()).unwrap_or_default();
    if !scope.contains(oidc::OPENID) {
        return Err(
            OAuthError::new(ErrorCode::InsufficientScope, "the access token was not granted the openid scope").into()
        );
    }
    let user = state.store.get_user(&claims.sub).await.map_err(store_error)?;
    let user = user.filter(|u| !u.disabled).ok_or_else(invalid)?;
    let mut body = Map::new();
    body.insert("sub".into(), json!(user.username));
    if scope.contains("profile") {
        body.insert("preferred_username".into(), json!(user.username));
    }
    if scope.contains("email")
        && let Some(email) = &user.email
    {
        body.insert("email".into(), json!(email));
        body.insert("email_verified".into(), json!(false));
    }
    Ok(no_store_json(Value::Object(body)))
}
