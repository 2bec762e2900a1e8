//! Client logos (RFC 7591 `logo_uri`), shown on the consent page. CIMD-7: fetched through the
//! SSRF-safe fetcher (prefetched when a client is resolved or registers, then cached), raster
//! images only (never SVG, which can carry script), small, and served from mandate's own origin so
//! the page's `img-src 'self'` holds and the person's browser never contacts the client's host.

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_core::Client;
use mandate_fetch::Accept;

use crate::state::AppState;

/// Logos larger than this are not shown.
pub const MAX_LOGO_BYTES: usize = 64 * 1024;
const IMAGES: Accept = Accept::only(&["image/png", "image/jpeg", "image/gif", "image/webp"]);

/// Starts fetching the client's logo into the cache, so the consent page shows it at once.
pub fn prefetch(state: &AppState, client: &Client) {
    let Some(uri) = client.logo_uri.clone() else { return };
    let fetcher = state.logo_fetcher.clone();
    tokio::spawn(async move {
        if let Err(e) = fetcher.get_cached(&uri, IMAGES).await {
            tracing::info!(logo_uri = %uri, error = %e, "client logo could not be fetched");
        }
    });
}

/// The client's logo as a response: the image bytes with its media type, or 404.
pub async fn response(state: &AppState, client: &Client) -> Response {
    let Some(uri) = &client.logo_uri else { return StatusCode::NOT_FOUND.into_response() };
    match state.logo_fetcher.get_cached(uri, IMAGES).await {
        Ok(fetched) => image(&fetched.content_type, fetched.body),
        Err(e) => {
            tracing::info!(client_id = %client.client_id, error = %e, "client logo could not be fetched");
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

fn image(content_type: &str, body: Bytes) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    let media_type =
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, media_type);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
    response
}
