//! Why a request was refused, and the answer that tells an MCP client what to do next (RFC 6750
//! §3, RFC 9728 §5.1, MCP 2026-07-28): `WWW-Authenticate: Bearer resource_metadata="…"` so the
//! client can discover the authorization server, `scope="…"` naming what the operation needs, and
//! `error="insufficient_scope"` with 403 for a step-up.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A refused request. The description is safe to show the client; it never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No credentials: 401 with a bare challenge (RFC 6750 §3.1: no error code).
    #[error("an access token is required")]
    Missing,
    /// The request carries credentials in a way that is not accepted (two Authorization headers,
    /// a token in the query string, another scheme): 401 `invalid_request`.
    #[error("{0}")]
    BadRequest(String),
    /// Expired, forged, for another audience or issuer, malformed: 401 `invalid_token`.
    #[error("{0}")]
    InvalidToken(String),
    /// A valid token without every scope the operation needs: 403 `insufficient_scope`.
    #[error("the access token lacks a scope this operation needs")]
    InsufficientScope,
    /// A valid token this resource refuses for its delegation chain (`act`, RFC 8693 §4.1): 403
    /// `invalid_token`. Not 401, which tells an MCP client to authorize again and would get it
    /// a token with the same chain; not `insufficient_scope`, which asks for a step-up to scopes
    /// the token already has.
    #[error("{0}")]
    DelegationRefused(String),
    /// The scopes depend on the JSON-RPC body and it cannot be read as one (another encoding, a
    /// byte order mark, a body on a method other than POST, …): 400 `invalid_request` (RFC 6750
    /// §3.1), and the request goes no further.
    #[error("{0}")]
    UnclassifiableBody(String),
    /// The body has a `Content-Encoding` or a charset other than UTF-8: 415 with
    /// `Accept-Encoding: identity` (RFC 9110 §15.5.16, §12.5.3).
    #[error("{0}")]
    UnsupportedBody(String),
    /// The body is larger than the JSON-RPC body limit: 413.
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The issuer's keys (or its introspection endpoint) cannot be reached: 503, retry later.
    #[error("{0}")]
    Unavailable(String),
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::BadRequest(_) | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope | Self::DelegationRefused(_) => StatusCode::FORBIDDEN,
            Self::UnclassifiableBody(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedBody(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Missing | Self::Unavailable(_) => None,
            Self::BadRequest(_) | Self::UnclassifiableBody(_) | Self::UnsupportedBody(_) | Self::BodyTooLarge(_) => {
                Some("invalid_request")
            }
            Self::InvalidToken(_) | Self::DelegationRefused(_) => Some("invalid_token"),
            Self::InsufficientScope => Some("insufficient_scope"),
        }
    }

    /// The `WWW-Authenticate` value: `resource_metadata`, the scopes the operation needs, and the
    /// error with its description when there is one.
    pub fn challenge(&self, resource_metadata: &str, scopes: &[String]) -> String {
        let mut params = vec![format!("resource_metadata=\"{}\"", quoted(resource_metadata))];
        if !scopes.is_empty() {
            params.push(format!("scope=\"{}\"", quoted(&scopes.join(" "))));
        }
        if let Some(code) = self.code() {
            params.push(format!("error=\"{code}\""));
            params.push(format!("error_description=\"{}\"", quoted(&self.to_string())));
        }
        format!("Bearer {}", params.join(", "))
    }

    /// The whole response: status, challenge, and a JSON body for people reading it.
    pub fn response(&self, resource_metadata: &str, scopes: &[String]) -> Response {
        let body = json!({
            "error": self.code().unwrap_or(if matches!(self, Self::Unavailable(_)) { "temporarily_unavailable" } else { "unauthorized" }),
            "error_description": self.to_string(),
        });
        let mut response = (self.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&self.challenge(resource_metadata, scopes)) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if matches!(self, Self::Unavailable(_)) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if matches!(self, Self::UnsupportedBody(_)) {
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// RFC 9110 §5.6.4 quoted-string content: backslash-escape `"` and `\`, drop control characters,
/// and put `?` for what is not ASCII (a header value with it would not be sent at all).
fn quoted(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c if !c.is_ascii() => vec!['?'],
            _ => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRM: &str = "https://mcp.example/.well-known/oauth-protected-resource/mcp";

    #[test]
    fn challenges_carry_metadata_scope_and_error() {
        let scopes = vec!["tools:read".to_owned(), "tools:call".to_owned()];
        assert_eq!(
            Rejection::Missing.challenge(PRM, &scopes),
            format!("Bearer resource_metadata=\"{PRM}\", scope=\"tools:read tools:call\"")
        );
        let c = Rejection::InsufficientScope.challenge(PRM, &scopes);
        assert!(c.contains("error=\"insufficient_scope\"") && c.contains("scope=\"tools:read tools:call\""), "{c}");
        let c = Rejection::InvalidToken("it says \"no\"".into()).challenge(PRM, &[]);
        assert!(c.ends_with("error=\"invalid_token\", error_description=\"it says \\\"no\\\"\""), "{c}");
        assert!(!c.contains("scope="));
        let c = Rejection::DelegationRefused("actor \"bé\" is not allowed".into()).challenge(PRM, &[]);
        assert!(c.ends_with("error=\"invalid_token\", error_description=\"actor \\\"b?\\\" is not allowed\""), "{c}");
        assert_eq!(Rejection::DelegationRefused(String::new()).status(), StatusCode::FORBIDDEN);
        assert!(HeaderValue::from_str(&c).is_ok());
    }
}
