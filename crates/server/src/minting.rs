//! Minting JWT access tokens (RFC 9068) with the active key: `aud` is the resource (RFC 8707).

use mandate_core::attestation::AttestationClaim;
use mandate_core::jose::{ACCESS_TOKEN_TYP, AccessTokenClaims, ID_TOKEN_TYP};
use mandate_core::oidc::{self, IdTokenClaims};
use mandate_core::{OAuthError, ResourceUri, ScopeSet};

use crate::state::AppState;

/// Bytes of randomness in a `jti`.
const JTI_BYTES: usize = 16;

pub struct MintedAccessToken {
    pub token: String,
    pub claims: AccessTokenClaims,
}

/// What an access token is issued for, decided by a grant handler: who, through which client, for
/// which audience and scope, and on what evidence about the client. Everything a policy decision
/// before minting would read.
#[derive(Debug, Clone, Copy)]
pub struct Issuance<'a> {
    pub subject: &'a str,
    pub client_id: &'a str,
    pub audience: &'a ResourceUri,
    pub scope: &'a ScopeSet,
    /// The verified client attestation (its attester and attested runtime), if the client
    /// presented one; it becomes the token's `attestation` claim.
    pub attestation: Option<&'a AttestationClaim>,
    /// RFC 8693: the chain of actors, for a delegated token.
    pub act: Option<&'a mandate_core::Actor>,
    /// The token may not outlive this (an exchanged token, its subject token).
    pub not_after: Option<mandate_core::UnixTime>,
}

/// A fresh `jti`: 48 bits of the clock's milliseconds, then 80 random bits (see
/// [`mandate_core::random::Random::time_ordered_token`]).
pub fn new_jti(state: &AppState) -> String {
    state.rng.time_ordered_token(state.clock.now_millis(), JTI_BYTES)
}

pub fn mint_access_token(state: &AppState, issuance: &Issuance<'_>) -> Result<MintedAccessToken, OAuthError> {
    let now = state.now();
    let claims = AccessTokenClaims {
        iss: state.settings.issuer.as_str().to_owned(),
        sub: issuance.subject.to_owned(),
        aud: issuance.audience.as_str().to_owned(),
        client_id: issuance.client_id.to_owned(),
        scope: (!issuance.scope.is_empty()).then(|| issuance.scope.to_string()),
        jti: new_jti(state),
        iat: now,
        exp: issuance.not_after.unwrap_or(i64::MAX).min(now + state.settings.access_token_ttl.as_secs() as i64),
        attestation: issuance.attestation.cloned(),
        act: issuance.act.cloned(),
    };
    let keys = state.keyring.current();
    let token = keys.active.sign(ACCESS_TOKEN_TYP, &claims).map_err(|e| {
        tracing::error!(error = %e, kid = %keys.active.kid, "signing failed");
        OAuthError::server_error()
    })?;
    Ok(MintedAccessToken { token, claims })
}

/// An ID token (OpenID Connect Core §2, §3.1.3.6) for the person behind `grant`.
pub fn mint_id_token(
    state: &AppState,
    user: &mandate_core::User,
    client: &mandate_core::Client,
    grant: &mandate_store::Grant,
    scope: &ScopeSet,
    nonce: Option<&str>,
    access_token: &str,
) -> Result<String, OAuthError> {
    let now = state.now();
    let keys = state.keyring.current();
    let email = user.email.clone().filter(|_| scope.contains("email"));
    let claims = IdTokenClaims {
        iss: state.settings.issuer.as_str().to_owned(),
        sub: user.username.clone(),
        aud: client.client_id.clone(),
        azp: client.client_id.clone(),
        exp: now + state.settings.id_token_ttl.as_secs() as i64,
        iat: now,
        auth_time: grant.auth_time,
        nonce: nonce.map(str::to_owned),
        at_hash: Some(oidc::at_hash(keys.active.alg, access_token)),
        email_verified: email.as_ref().map(|_| false),
        email,
        preferred_username: scope.contains("profile").then(|| user.username.clone()),
    };
    keys.active.sign(ID_TOKEN_TYP, &claims).map_err(|e| {
        tracing::error!(error = %e, kid = %keys.active.kid, "signing an ID token failed");
        OAuthError::server_error()
    })
}
