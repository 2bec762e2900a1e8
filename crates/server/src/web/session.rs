//! The browser session after sign-in: a random id in a cookie, only its digest in the database,
//! shared by every instance.

use axum::http::{HeaderMap, HeaderValue};
use mandate_core::SecretDigest;
use mandate_store::BrowserSession;

use super::cookies;
use crate::error::store_error;
use crate::state::AppState;

const SESSION_ID_BYTES: usize = 32;

pub fn digest(value: &str) -> String {
    SecretDigest::of(value).encode()
}

/// The signed-in person, if the cookie names a live session.
pub async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<BrowserSession>, mandate_core::OAuthError> {
    let Some(id) = cookies::get(headers, cookies::SESSION) else { return Ok(None) };
    state.store.get_session(&digest(id), state.now()).await.map_err(store_error)
}

/// Starts a session for `username`; returns it and the cookie to set.
pub async fn start(
    state: &AppState,
    username: &str,
) -> Result<(BrowserSession, HeaderValue), mandate_core::OAuthError> {
    let id = state.rng.token(SESSION_ID_BYTES);
    let now = state.now();
    let lifetime = state.settings.login.session_lifetime.as_secs();
    let session = BrowserSession {
        session_hash: digest(&id),
        username: username.to_owned(),
        auth_time: now,
        expires_at: now + lifetime as i64,
    };
    state.store.put_session(&session).await.map_err(store_error)?;
    Ok((session, cookies::set(state, cookies::SESSION, &id, Some(lifetime))))
}

/// Ends the session the cookie names, if any; returns the cookie-clearing header.
pub async fn end(state: &AppState, headers: &HeaderMap) -> Result<HeaderValue, mandate_core::OAuthError> {
    if let Some(id) = cookies::get(headers, cookies::SESSION) {
        state.store.delete_session(&digest(id)).await.map_err(store_error)?;
    }
    Ok(cookies::clear(state, cookies::SESSION))
}
