//! OAuth errors (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8707 §2): one typed value with a code, a
//! client-safe description and the HTTP status it maps to. Internal causes never go in here.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    UnsupportedTokenType,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    /// RFC 6749 §4.1.2.1.
    UnsupportedResponseType,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` could not be honoured.
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    /// RFC 6750 §3.1: at the UserInfo endpoint.
    InvalidToken,
    InsufficientScope,
    /// RFC 7591 §3.2.2.
    InvalidRedirectUri,
    InvalidClientMetadata,
    InvalidSoftwareStatement,
    UnapprovedSoftwareStatement,
    /// draft-ietf-oauth-attestation-based-client-auth §8: the client attestation or its PoP does
    /// not verify.
    InvalidClientAttestation,
    /// The PoP lacks a challenge this server issued; comes with a fresh one in a header.
    UseAttestationChallenge,
    /// The client attestation is older than this server accepts.
    UseFreshAttestation,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidSoftwareStatement => "invalid_software_statement",
            Self::UnapprovedSoftwareStatement => "unapproved_software_statement",
            Self::InvalidClientAttestation => "invalid_client_attestation",
            Self::UseAttestationChallenge => "use_attestation_challenge",
            Self::UseFreshAttestation => "use_fresh_attestation",
        }
    }

    /// RFC 6749 §5.2: 400 by default, 401 for a failed client authentication.
    pub fn http_status(self) -> u16 {
        match self {
            // A failed attestation is a failed client authentication.
            Self::InvalidClient | Self::InvalidToken | Self::InvalidClientAttestation => 401,
            Self::InsufficientScope => 403,
            Self::AccessDenied => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// An error an OAuth endpoint returns to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// 413 for oversized bodies, 405 for a wrong method; otherwise the code's own status.
    pub status_override: Option<u16>,
    /// A fresh attestation challenge for the `OAuth-Client-Attestation-Challenge` header;
    /// required with `use_attestation_challenge`.
    pub attestation_challenge: Option<String>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self { code, description: description.into(), status_override: None, attestation_challenge: None }
    }

    pub fn with_attestation_challenge(mut self, challenge: String) -> Self {
        self.attestation_challenge = Some(challenge);
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status_override = Some(status);
        self
    }

    pub fn status(&self) -> u16 {
        self.status_override.unwrap_or(self.code.http_status())
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedGrantType, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn access_denied(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::AccessDenied, d)
    }
    pub fn unsupported_response_type(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedResponseType, d)
    }
    pub fn server_error() -> Self {
        Self::new(ErrorCode::ServerError, "the authorization server hit an internal error; see its log")
    }
    pub fn temporarily_unavailable(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::TemporarilyUnavailable, d)
    }
}
