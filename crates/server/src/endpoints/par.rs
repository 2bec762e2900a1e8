//! Pushed authorization requests (RFC 9126): the client authenticates and sends the request
//! directly; the browser then carries only `client_id` and the one-time `request_uri`. With the
//! static client id of pushed client registration, the request also carries the client's own
//! description (`client_registration`), kept with it (see [`crate::clients::pushed`]).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_core::{Client, OAuthError};
use serde_json::json;

use crate::authorization::request::check;
use crate::authorization::{PUSHED_REQUEST_TTL, REQUEST_URI_PREFIX, flow};
use crate::client_auth;
use crate::clients::pushed;
use crate::error::Failure;
use crate::form::OAuthForm;
use crate::state::AppState;

pub async fn handle(State(state): State<AppState>, headers: HeaderMap, form: OAuthForm) -> Result<Response, Failure> {
    let authenticated = client_auth::authenticate(&state, &headers, &form).await?;
    let attestation = authenticated.attestation.clone();
    let (client, registration) = if pushed::is_pushed_client_id(&authenticated.client_id) {
        let (client, registration) = register(&state, &form).inspect_err(|e| {
            tracing::info!(client_id = pushed::PUSHED_CLIENT_ID, error = e.code.as_str(), description = ?e.description, "pushed client registration refused");
        })?;
        (client, Some(registration))
    } else if form.get("client_registration").is_some() {
        return Err(OAuthError::invalid_request(format!(
            "client_registration is only for client_id={} (pushed client registration)",
            pushed::PUSHED_CLIENT_ID
        ))
        .into());
    } else {
        (authenticated.client, None)
    };
    let mut request = check(&state, &client, &form, true).await.map_err(|refusal| {
        let e = refusal.into_error();
        tracing::info!(client_id = %client.client_id, error = e.code.as_str(), description = ?e.description, "pushed authorization request refused");
        Failure(e)
    })?;
    request.client_registration = registration;
    let (handle, _) = flow::keep(&state, request, PUSHED_REQUEST_TTL).await?;
    crate::clients::logo::prefetch(&state, &client);
    let body = json!({ "request_uri": format!("{REQUEST_URI_PREFIX}{handle}"), "expires_in": PUSHED_REQUEST_TTL });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The client attests again when it redeems the code; that attestation binds the grant.
    client_auth::attestation::add_next_challenge(&state, attestation.as_ref(), &mut response).await?;
    Ok(response)
}

/// Draft §3: a random `state` and the `redirect_uri` are required; the registration (RFC 7591
/// §3.2.2 errors, 400) becomes the client the rest of the request is checked against.
fn register(state: &AppState, form: &OAuthForm) -> Result<(Client, String), OAuthError> {
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required with pushed client registration"))?;
    if form.get("state").is_none() {
        return Err(OAuthError::invalid_request("state is required with pushed client registration"));
    }
    pushed::register(state, form.get("client_registration"), redirect_uri)
        .map_err(|e| OAuthError::new(e.code.error_code(), e.message))
}
