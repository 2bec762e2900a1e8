//! Pushed authorization requests (RFC 9126): the client authenticates and sends the request
//! directly; the browser then carries only `client_id` and the one-time `request_uri`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::authorization::request::check;
use crate::authorization::{PUSHED_REQUEST_TTL, REQUEST_URI_PREFIX, flow};
use crate::client_auth;
use crate::error::Failure;
use crate::form::OAuthForm;
use crate::state::AppState;

pub async fn handle(State(state): State<AppState>, headers: HeaderMap, form: OAuthForm) -> Result<Response, Failure> {
    let client = client_auth::authenticate(&state, &headers, &form).await?;
    let request = check(&state, &client, &form, true).await.map_err(|refusal| {
        let e = refusal.into_error();
        tracing::info!(client_id = %client.client_id, error = e.code.as_str(), description = %e.description, "pushed authorization request refused");
        Failure(e)
    })?;
    let (handle, _) = flow::keep(&state, request, PUSHED_REQUEST_TTL).await?;
    let body = json!({ "request_uri": format!("{REQUEST_URI_PREFIX}{handle}"), "expires_in": PUSHED_REQUEST_TTL });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The client attests again when it redeems the code; that attestation binds the grant.
    client_auth::attestation::add_next_challenge(&state, client.attestation.as_ref(), &mut response).await?;
    Ok(response)
}
