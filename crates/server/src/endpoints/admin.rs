//! The admin API: a token's lineage as JSON, a person's tokens, and the kill switch for a chain.
//! Callers are
//! confidential clients listed in `[admin] clients`, authenticated as at the token endpoint
//! (HTTP Basic, or `private_key_jwt` in a form body on POST).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mandate_core::{ErrorCode, OAuthError};
use serde_json::json;

use super::no_store_json;
use crate::client_auth;
use crate::error::Failure;
use crate::form::OAuthForm;
use crate::state::AppState;

async fn admin(state: &AppState, headers: &HeaderMap, form: &OAuthForm) -> Result<String, Failure> {
    let caller = client_auth::authenticate(state, headers, form).await?;
    if caller.is_public() || !state.settings.admin_clients.contains(&caller.client_id) {
        return Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "this client may not use the admin API ([admin] clients)",
        )
        .into());
    }
    Ok(caller.client_id.clone())
}

fn unknown(jti: &str) -> Response {
    let body = json!({ "error": "not_found", "error_description": format!("no token with jti {jti} is on record") });
    let mut response = no_store_json(body);
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// `GET /admin/lineage/{jti}`.
pub async fn lineage(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(jti): Path<String>,
) -> Result<Response, Failure> {
    admin(&state, &headers, &OAuthForm::default()).await?;
    Ok(match crate::lineage::of(state.store.as_ref(), &jti).await? {
        Some(lineage) => no_store_json(json!(lineage)),
        None => unknown(&jti),
    })
}

/// `POST /admin/lineage/{jti}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(jti): Path<String>,
    form: Result<OAuthForm, Failure>,
) -> Result<Response, Failure> {
    let form = form.unwrap_or_default();
    let caller = admin(&state, &headers, &form).await?;
    let by = format!("admin client {caller}");
    Ok(match crate::lineage::revoke_subtree(state.store.as_ref(), &jti, &by, state.now()).await? {
        Some(affected) => no_store_json(json!({ "jti": jti, "revoked": true, "live_tokens_revoked": affected })),
        None => unknown(&jti),
    })
}

/// Most tokens `GET /admin/tokens` lists at once.
const MAX_LISTED: u32 = 500;

#[derive(Debug, serde::Deserialize)]
pub struct TokensQuery {
    subject: Option<String>,
    limit: Option<String>,
}

/// `GET /admin/tokens?subject=…&limit=…`: the newest tokens issued for a person (or a client acting
/// for itself), each with its state; the place to start when an agent misbehaves on someone's behalf.
pub async fn tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<TokensQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    admin(&state, &headers, &OAuthForm::default()).await?;
    let Ok(Query(query)) = query else {
        return Err(OAuthError::invalid_request("the query string is malformed").into());
    };
    let subject = query
        .subject
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("parameter subject is required"))?;
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LISTED).contains(n))
            .ok_or_else(|| OAuthError::invalid_request(format!("limit must be a number from 1 to {MAX_LISTED}")))?,
    };
    let tokens = crate::lineage::tokens_of(state.store.as_ref(), &subject, limit, state.now()).await?;
    Ok(no_store_json(json!({ "subject": subject, "tokens": tokens })))
}
