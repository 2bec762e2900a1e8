//! HTTP endpoints of the authorization server, one module each.

pub mod account;
pub mod account_lineage;
pub mod admin;
pub mod authorize;
pub mod challenge;
pub mod consent;
pub mod discovery;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod metrics;
pub mod par;
pub mod register;
pub mod revoke;
pub mod token;
pub mod userinfo;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// A JSON answer that must not be cached (RFC 6749 §5.1): tokens and token metadata.
pub fn no_store_json(body: serde_json::Value) -> Response {
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Client input copied into the audit log, bounded in length.
pub fn bounded(value: Option<&str>) -> Option<String> {
    value.map(|v| v.chars().take(512).collect())
}
