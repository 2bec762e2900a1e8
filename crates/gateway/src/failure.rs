//! When the upstream cannot answer: the agent gets a 502 (or 504) with a JSON body saying so, the
//! log gets the cause. Nothing here echoes the upstream's URL or the gateway's credential.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamFailure {
    /// No connection (refused, no route, DNS, TLS).
    #[error("the upstream server could not be reached")]
    Unreachable,
    /// Connected, but nothing came back within the idle timeout.
    #[error("the upstream server did not answer in time")]
    Timeout,
    /// The connection broke, or the answer was not HTTP.
    #[error("the upstream server did not answer properly")]
    Broken,
    /// The upstream answered 401: it refused the gateway's own credential. Passed on as it is,
    /// the agent would try to authorize again with mandate, in a loop.
    #[error("the upstream server refused the gateway's credentials")]
    CredentialRefused,
}

impl UpstreamFailure {
    pub(crate) fn from_reqwest(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else if e.is_connect() {
            Self::Unreachable
        } else {
            Self::Broken
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Unreachable | Self::Broken | Self::CredentialRefused => StatusCode::BAD_GATEWAY,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unreachable => "upstream_unreachable",
            Self::Timeout => "upstream_timeout",
            Self::Broken => "upstream_error",
            Self::CredentialRefused => "upstream_credentials_refused",
        }
    }
}

impl IntoResponse for UpstreamFailure {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code(), "error_description": self.to_string() });
        let mut response = (self.status(), axum::Json(body)).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// 400 for a path below the resource that could leave the upstream's path once mapped (a dot
/// segment, an encoded separator): it is refused, not cleaned up, so what the agent asked for is
/// never silently something else.
pub(crate) fn refused_path(reason: &impl std::fmt::Display) -> Response {
    let body = json!({ "error": "invalid_request", "error_description": reason.to_string() });
    let mut response = (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 404 for paths that are neither the resource nor its metadata.
pub(crate) async fn not_found() -> Response {
    let body = json!({
        "error": "not_found",
        "error_description": "this gateway serves only its resource's path and its protected resource metadata",
    });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
