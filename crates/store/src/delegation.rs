//! Records of the delegation path (a person authorizes an agent): pending authorization requests,
//! codes, grants with their refresh-token families, remembered consents, browser sessions and
//! login throttling. Every secret (code, refresh token, session id, request handle) is stored only
//! as its SHA-256 digest, here called `*_hash`.

use mandate_core::UnixTime;
use mandate_core::attestation::AttestationBinding;

/// An authorization request between `/authorize` (or `/par`) and the code: waiting for the person
/// to sign in and consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub handle_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// Space-separated scopes, already limited to what the client and resource allow.
    pub scope: String,
    /// Space-separated canonical resource URIs (RFC 8707), each registered; at least one.
    pub resources: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    /// Space-separated `prompt` values (OpenID Connect Core §3.1.2.1).
    pub prompt: Option<String>,
    pub max_age: Option<i64>,
    /// Made by `/par` and not yet used at `/authorize` (RFC 9126).
    pub pushed: bool,
    /// Pushed client registration: the client's self-asserted RFC 7591 metadata (normalised JSON),
    /// which is all the server knows of it. `None` for registered clients.
    pub client_registration: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A grant: what a person allowed a client, from which codes and refresh tokens descend. Revoking
/// it revokes every token issued from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grant_id: String,
    pub client_id: String,
    pub username: String,
    pub scope: String,
    /// Space-separated canonical resource URIs granted; a token names one of them as `aud`.
    pub resources: String,
    pub auth_time: UnixTime,
    pub created_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    /// A pushed client's self-asserted `client_name`, kept for the audit log; never verified.
    /// `None` for registered clients, whose name is in their registration.
    pub unverified_client_name: Option<String>,
    /// The client attestation presented when the code was redeemed: its facts go into every token
    /// of the grant, and its instance key must authenticate every refresh.
    pub attestation: Option<AttestationBinding>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
}

/// The outcome of presenting a code: it is used exactly once, across every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// This call consumed it.
    Redeemed(AuthorizationCode),
    /// Consumed before (RFC 9700 §4.5: revoke what the first use issued).
    AlreadyUsed(AuthorizationCode),
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    /// The token this one replaced, if any.
    pub parent_hash: Option<String>,
    /// Scope carried by this token: the grant's, or narrower after a narrowing refresh.
    pub scope: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// This call rotated it (it was unused).
    Rotated(RefreshToken),
    /// Presented again after rotation; `used_at` says when it was first used.
    AlreadyUsed(RefreshToken),
    Unknown,
}

/// A remembered consent: the person need not be asked again for these scopes on this resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub username: String,
    pub client_id: String,
    /// Space-separated canonical resource URIs, sorted: the key together with user and client.
    pub resources: String,
    pub scope: String,
    pub granted_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSession {
    pub session_hash: String,
    pub username: String,
    pub auth_time: UnixTime,
    pub expires_at: UnixTime,
}
