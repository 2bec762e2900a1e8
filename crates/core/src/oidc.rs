//! OpenID Connect Core on top of OAuth: the scopes it defines, ID token claims and `at_hash`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::jose::SigningAlgorithm;

pub const OPENID: &str = "openid";
pub const OFFLINE_ACCESS: &str = "offline_access";
/// Scopes OpenID Connect defines (Core §5.4, §11); they concern the person and the grant, not a
/// resource, so any client allowed the code grant may ask for them.
pub const SCOPES: &[&str] = &[OPENID, "profile", "email", OFFLINE_ACCESS];

pub fn is_oidc_scope(scope: &str) -> bool {
    SCOPES.contains(&scope)
}

/// Claims of an ID token (Core §2), signed with the server's active key and `typ: JWT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub auth_time: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

/// Core §3.1.3.6: the left half of the hash of the access token, with the hash of the JWS
/// algorithm (SHA-256 for ES256 and RS256; SHA-512 for Ed25519, as the OpenID Foundation settled).
pub fn at_hash(alg: SigningAlgorithm, access_token: &str) -> String {
    let algorithm = match alg {
        SigningAlgorithm::ES256 | SigningAlgorithm::RS256 => &aws_lc_rs::digest::SHA256,
        SigningAlgorithm::EdDSA => &aws_lc_rs::digest::SHA512,
    };
    let digest = aws_lc_rs::digest::digest(algorithm, access_token.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OpenID Connect Core appendix A.3 pairs this access token with this at_hash (RS256).
        assert_eq!(
            at_hash(SigningAlgorithm::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash(SigningAlgorithm::EdDSA, "x").len(), 43);
    }
}
