//! Minting JWT access tokens (RFC 9068) with the active key: `aud` is the resource (RFC 8707).

use mandate_core::jose::{ACCESS_TOKEN_TYP, AccessTokenClaims};
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
