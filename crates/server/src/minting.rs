//! Minting JWT access tokens (RFC 9068) with the active key: `aud` is the resource (RFC 8707).

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

pub fn mint_access_token(
    state: &AppState,
    subject: &str,
    client_id: &str,
    audience: &ResourceUri,
    scope: &ScopeSet,
) -> Result<MintedAccessToken, OAuthError> {
    let now = state.now();
    let claims = AccessTokenClaims {
        iss: state.settings.issuer.as_str().to_owned(),
        sub: subject.to_owned(),
        aud: audience.as_str().to_owned(),
        client_id: client_id.to_owned(),
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        jti: state.rng.token(JTI_BYTES),
        iat: now,
        exp: now + state.settings.access_token_ttl.as_secs() as i64,
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
