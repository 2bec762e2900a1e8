//! Server-rendered pages (sign-in, consent, account, sign-out): templates, cookies, CSRF and the
//! browser session. Every page and every redirect from a page carries the same security headers.

pub mod cookies;
pub mod csrf;
pub mod session;
pub mod templates;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_core::OAuthError;

/// No script, no framing, no referrer: the pages need nothing but their own inline style.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An HTML page with the security headers.
pub fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    secure(response)
}

/// RFC 9700 §4.11: 303 after a form post, so the browser does not re-send it.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
            secure(response)
        }
        Err(_) => error_page(&OAuthError::server_error()),
    }
}

/// The error page: for requests whose client or redirect URI could not be verified, and for
/// problems with the pages themselves. Never a redirect.
pub fn error_page(e: &OAuthError) -> Response {
    let status = match e.status() {
        500 => StatusCode::INTERNAL_SERVER_ERROR,
        503 => StatusCode::SERVICE_UNAVAILABLE,
        s => StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST),
    };
    let html =
        templates::render("error.html", minijinja::context! { code => e.code.as_str(), description => &e.description });
    match html {
        Ok(html) => page(status, html),
        Err(_) => {
            page(status, format!("<!doctype html><title>Error</title><p id=\"error-code\">{}</p>", e.code.as_str()))
        }
    }
}
