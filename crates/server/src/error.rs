//! The one place errors become HTTP: OAuth errors as RFC 6749 §5.2 JSON with the right status,
//! `WWW-Authenticate` on 401, `Retry-After` on 503, `OAuth-Client-Attestation-Challenge` with a
//! fresh attestation challenge, and internal causes only in the log.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_core::{ErrorCode, OAuthError};
use mandate_store::StoreError;
use serde_json::json;

/// An error an endpoint answers with.
#[derive(Debug)]
pub struct Failure(pub OAuthError);

impl From<OAuthError> for Failure {
    fn from(e: OAuthError) -> Self {
        Self(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self(store_error(e))
    }
}

/// Maps a storage failure to what the client may know: retry later, or an internal error.
pub fn store_error(e: StoreError) -> OAuthError {
    match e {
        StoreError::Unavailable(cause) => {
            tracing::warn!(%cause, "database unavailable");
            OAuthError::temporarily_unavailable("the authorization server's database is unavailable; retry shortly")
        }
        other => {
            tracing::error!(error = %other, "storage error");
            OAuthError::server_error()
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({ "error": e.code.as_str(), "error_description": e.description });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if e.code == ErrorCode::InvalidClient {
            // RFC 6749 §5.2: a 401 names the authentication scheme the client may use.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mandate\", charset=\"UTF-8\""),
            );
        }
        if matches!(e.code, ErrorCode::InvalidToken | ErrorCode::InsufficientScope) {
            // RFC 6750 §3: a resource (here UserInfo) names the Bearer scheme and the error.
            let challenge = format!("Bearer realm=\"mandate\", error=\"{}\"", e.code.as_str());
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Some(challenge) = e.attestation_challenge.as_deref()
            && let Ok(value) = HeaderValue::from_str(challenge)
        {
            // draft-ietf-oauth-attestation-based-client-auth §8: with use_attestation_challenge.
            headers.insert(mandate_core::attestation::CHALLENGE_HEADER, value);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
