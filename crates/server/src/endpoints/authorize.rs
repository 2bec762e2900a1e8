//! The authorization endpoint (RFC 6749 §3.1, OAuth 2.1 §4.1.1), by GET or POST: check the request
//! (or redeem a pushed one, RFC 9126 §4), keep it, and send the browser to sign-in or consent.

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use mandate_core::OAuthError;
use mandate_core::client::Client;
use mandate_store::AuthorizationRequest;

use crate::authorization::request::{Refusal, check, client_of};
use crate::authorization::{INTERACTION_TTL, REQUEST_URI_PREFIX, flow, response};
use crate::clients::pushed;
use crate::error::{Failure, store_error};
use crate::form::OAuthForm;
use crate::state::AppState;
use crate::web::{error_page, session};

pub async fn get(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    match OAuthForm::from_query(uri.query()) {
        Ok(form) => authorize(&state, &headers, form).await,
        Err(e) => error_page(&e),
    }
}

pub async fn post(State(state): State<AppState>, headers: HeaderMap, form: Result<OAuthForm, Failure>) -> Response {
    match form {
        Ok(form) => authorize(&state, &headers, form).await,
        Err(Failure(e)) => error_page(&e),
    }
}

async fn authorize(state: &AppState, headers: &HeaderMap, form: OAuthForm) -> Response {
    let client = match client_of(state, &form).await {
        Ok(client) => client,
        Err(e) => return error_page(&e),
    };
    let request = match form.get("request_uri") {
        Some(request_uri) => redeem_pushed(state, &client, request_uri).await.map_err(Refusal::Page),
        // Draft §3: the static client id starts at /par; here its redirect URI is unverified.
        None if pushed::is_pushed_client_id(&client.client_id) => {
            Err(Refusal::Page(OAuthError::invalid_request(format!(
                "client_id {} must push its authorization request, with its registration, to the PAR endpoint first and come here with the request_uri",
                pushed::PUSHED_CLIENT_ID
            ))))
        }
        None => check(state, &client, &form, false).await,
    };
    let request = match request {
        Ok(request) => request,
        Err(Refusal::Page(e)) => return error_page(&e),
        Err(Refusal::Redirect { redirect_uri, state: client_state, error }) => {
            tracing::info!(client_id = %client.client_id, error = error.code.as_str(), description = ?error.description, "authorization request refused");
            return response::error(state, &redirect_uri, &error, client_state.as_deref());
        }
    };
    let result = async {
        let (handle, request) = flow::keep(state, request, INTERACTION_TTL).await?;
        crate::clients::logo::prefetch(state, &client);
        let session = session::current(state, headers).await?;
        flow::advance(state, session, &handle, request).await
    };
    result.await.unwrap_or_else(|e| error_page(&e))
}

/// RFC 9126 §4: a `request_uri` from `/par`, used once, by the client that pushed it; the pushed
/// parameters are the whole request.
async fn redeem_pushed(
    state: &AppState,
    client: &Client,
    request_uri: &str,
) -> Result<AuthorizationRequest, OAuthError> {
    let unusable = || {
        OAuthError::invalid_request(
            "request_uri is unknown, expired or already used; push the authorization request to /par again",
        )
    };
    let handle = request_uri.strip_prefix(REQUEST_URI_PREFIX).ok_or_else(unusable)?;
    let key = flow::digest(handle);
    // Whose it is is checked before it is used up: another client's attempt leaves it in place.
    let theirs = state.store.get_authorization_request(&key, state.now()).await.map_err(store_error)?;
    if !theirs.is_some_and(|r| r.pushed && r.client_id == client.client_id) {
        return Err(unusable());
    }
    let mut request = state
        .store
        .take_authorization_request(&key, state.now())
        .await
        .map_err(store_error)?
        .filter(|r| r.pushed && r.client_id == client.client_id)
        .ok_or_else(unusable)?;
    request.pushed = false;
    Ok(request)
}
