//! The admin API: a token's lineage as JSON, a person's tokens, and the kill switches: a token's
//! chain, a grant (by id), every grant of a person for a client. Callers are
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
use crate::lineage::{GrantRevocation, GrantsOf, Revocation};
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
    not_found(format!("no token with jti {jti} is on record"))
}

fn not_found(description: String) -> Response {
    let body = json!({ "error": "not_found", "error_description": description });
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

/// `POST /admin/lineage/{id}/revoke`: a token's jti revokes it and everything exchanged from it;
/// a grant id (as the lineage shows it) revokes the grant, so its refresh tokens stop working too.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<OAuthForm, Failure>,
) -> Result<Response, Failure> {
    let form = form.unwrap_or_default();
    let caller = admin(&state, &headers, &form).await?;
    let by = format!("admin client {caller}");
    Ok(match crate::lineage::revoke(state.store.as_ref(), &id, &by, state.now()).await? {
        Some(Revocation::Subtree { jti, live_tokens_revoked, live_grant }) => no_store_json(json!({
            "jti": jti,
            "revoked": true,
            "live_tokens_revoked": live_tokens_revoked,
            // The chain's grant is untouched: its client can still refresh until it is revoked.
            "live_grant_id": live_grant.map(|g| g.grant_id),
        })),
        Some(Revocation::Grant(grant)) => grant_revoked(&grant),
        None => not_found(format!("no token with jti {id} and no grant with id {id} is on record")),
    })
}

fn grant_revoked(grant: &GrantRevocation) -> Response {
    no_store_json(json!({
        "grant_id": grant.grant_id,
        "username": grant.username,
        "client_id": grant.client_id,
        "revoked": true,
        "was_live": grant.was_live,
    }))
}

/// `POST /admin/grants/revoke` with `username` and `client` in the form: every grant the person
/// gave that client, with its refresh tokens and everything issued from it. (`client`, not
/// `client_id`: that field authenticates the admin client.)
pub async fn revoke_grants(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<OAuthForm, Failure>,
) -> Result<Response, Failure> {
    let form = form?;
    let caller = admin(&state, &headers, &form).await?;
    let field = |name: &str| {
        form.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter {name} is required")))
    };
    let (username, client) = (field("username")?, field("client")?);
    let by = format!("admin client {caller}");
    Ok(match crate::lineage::revoke_grants_of(state.store.as_ref(), username, client, &by, state.now()).await? {
        GrantsOf::Revoked(n) => no_store_json(json!({ "username": username, "client": client, "grants_revoked": n })),
        GrantsOf::NoSuchUser => not_found(format!("no user named {username} is on record")),
        GrantsOf::NoSuchClient => not_found(format!("no client with id {client} is on record")),
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
