//! CSRF protection for every form: a random token in an `HttpOnly` cookie and the same value in a
//! hidden field (double submit), compared in constant time, on top of `SameSite=Lax`.

use axum::http::{HeaderMap, HeaderValue};
use mandate_core::{ErrorCode, OAuthError};
use subtle::ConstantTimeEq as _;

use super::cookies;
use crate::state::AppState;

const TOKEN_BYTES: usize = 32;

/// The token a page embeds, and the cookie to set when the browser had none.
pub struct CsrfToken {
    pub value: String,
    pub set_cookie: Option<HeaderValue>,
}

pub fn token(state: &AppState, headers: &HeaderMap) -> CsrfToken {
    match cookies::get(headers, cookies::CSRF) {
        Some(existing) if existing.len() == 43 => CsrfToken { value: existing.to_owned(), set_cookie: None },
        _ => {
            let value = state.rng.token(TOKEN_BYTES);
            let set_cookie = Some(cookies::set(state, cookies::CSRF, &value, None));
            CsrfToken { value, set_cookie }
        }
    }
}

/// Checks a submitted form's `csrf` field against the cookie.
pub fn check(headers: &HeaderMap, submitted: Option<&str>) -> Result<(), OAuthError> {
    let refused = || {
        OAuthError::new(
            ErrorCode::InvalidRequest,
            "this form has expired or was not sent from this site; go back, reload the page and try again",
        )
        .with_status(403)
    };
    let cookie = cookies::get(headers, cookies::CSRF).ok_or_else(refused)?;
    let submitted = submitted.ok_or_else(refused)?;
    if bool::from(cookie.as_bytes().ct_eq(submitted.as_bytes())) { Ok(()) } else { Err(refused()) }
}
