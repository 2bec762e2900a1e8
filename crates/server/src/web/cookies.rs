//! The two cookies the pages use: the browser session and the CSRF token. Both `HttpOnly`,
//! `SameSite=Lax`, scoped to the issuer's path, and `Secure` when the issuer is https.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::state::AppState;

pub const SESSION: &str = "mandate_session";
pub const CSRF: &str = "mandate_csrf";

/// The value of cookie `name`, if the browser sent it.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value; `max_age` of `None` makes a cookie that ends with the browser session.
pub fn set(state: &AppState, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let issuer = &state.settings.issuer;
    let path = if issuer.path().is_empty() { "/" } else { issuer.path() };
    let mut cookie = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if issuer.as_str().starts_with("https://") {
        cookie.push_str("; Secure");
    }
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    // Values are base64url, so the header is always valid.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("invalid=1; Max-Age=0"))
}

pub fn clear(state: &AppState, name: &str) -> HeaderValue {
    set(state, name, "", Some(0))
}
