//! JOSE for mandate's own tokens: signing-key generation (ES256 default, EdDSA, RS256), the
//! public JWK set, and minting and verifying JWT access tokens (RFC 9068) with a fixed `typ`, an
//! algorithm allow-list tied to the key, a size cap and times checked against the injected clock.

use std::fmt;
use std::str::FromStr;

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

/// RFC 9068 §2.1: the `typ` of a JWT access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Longest token we parse; anything larger is refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Algorithms mandate signs with. Never `none`, never HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    ES256,
    EdDSA,
    RS256,
}

impl SigningAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
        }
    }

    fn jwt_alg(self) -> Algorithm {
        match self {
            Self::ES256 => Algorithm::ES256,
            Self::EdDSA => Algorithm::EdDSA,
            Self::RS256 => Algorithm::RS256,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported signing algorithm {0:?} (supported: ES256, EdDSA, RS256)")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for SigningAlgorithm {
    type Err = UnknownAlgorithm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ES256" => Ok(Self::ES256),
            "EdDSA" => Ok(Self::EdDSA),
            "RS256" => Ok(Self::RS256),
            other => Err(UnknownAlgorithm(other.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("stored key for {alg} is not a usable PKCS#8 key: {reason}")]
    Load { alg: SigningAlgorithm, reason: String },
}

/// Generates a new private key for `alg`, as PKCS#8 DER.
pub fn generate_private_key(alg: SigningAlgorithm) -> Result<Vec<u8>, KeyError> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let der = match alg {
        SigningAlgorithm::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Generate)?
            .as_ref()
            .to_vec(),
        // jsonwebtoken reads Ed25519 keys as PKCS#8 v1 (RFC 5208), without the public key.
        SigningAlgorithm::EdDSA => {
            Ed25519KeyPair::generate_pkcs8v1(&rng).map_err(|_| KeyError::Generate)?.as_ref().to_vec()
        }
        SigningAlgorithm::RS256 => {
            let pair =
                aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> = pair.as_der().map_err(|_| KeyError::Generate)?;
            der.as_ref().to_vec()
        }
    };
    Ok(der)
}

/// A private key parsed once, when loaded: jsonwebtoken's `encode` parses the PKCS#8 again for
/// every token, which cost more than the ES256 signature itself.
#[derive(Clone)]
enum KeyPair {
    Ecdsa(Arc<signature::EcdsaKeyPair>),
    Ed25519(Arc<signature::Ed25519KeyPair>),
    Rsa(Arc<signature::RsaKeyPair>),
}

impl KeyPair {
    fn from_pkcs8(alg: SigningAlgorithm, der: &[u8]) -> Result<Self, String> {
        Ok(match alg {
            SigningAlgorithm::ES256 => Self::Ecdsa(Arc::new(
                signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| e.to_string())?,
            )),
            SigningAlgorithm::EdDSA => {
                Self::Ed25519(Arc::new(signature::Ed25519KeyPair::from_pkcs8(der).map_err(|e| e.to_string())?))
            }
            SigningAlgorithm::RS256 => {
                Self::Rsa(Arc::new(signature::RsaKeyPair::from_pkcs8(der).map_err(|e| e.to_string())?))
            }
        })
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, jsonwebtoken::errors::Error> {
        let failed = |e: aws_lc_rs::error::Unspecified| ErrorKind::Signing(e.to_string());
        let rng = SystemRandom::new();
        Ok(match self {
            Self::Ecdsa(pair) => pair.sign(&rng, message).map_err(failed)?.as_ref().to_vec(),
            Self::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Self::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut signature).map_err(failed)?;
                signature
            }
        })
    }
}

/// A signing key ready to sign and verify: parsed once, when loaded from storage.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlgorithm,
    pair: KeyPair,
    decoding: DecodingKey,
    /// The public JWK with `kid`, `use` and `alg`.
    pub public_jwk: Jwk,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a PKCS#8 DER private key. The `kid` is the key's RFC 7638 thumbprint.
    pub fn from_pkcs8(alg: SigningAlgorithm, pkcs8_der: &[u8]) -> Result<Self, KeyError> {
        let load_err = |reason: String| KeyError::Load { alg, reason };
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8_der.to_vec()));
        let encoding = match alg {
            SigningAlgorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
            SigningAlgorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
            SigningAlgorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .map_err(|e| load_err(e.to_string()))?;
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.jwt_alg()).map_err(|e| load_err(e.to_string()))?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| load_err(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(match alg {
            SigningAlgorithm::ES256 => KeyAlgorithm::ES256,
            SigningAlgorithm::EdDSA => KeyAlgorithm::EdDSA,
            SigningAlgorithm::RS256 => KeyAlgorithm::RS256,
        });
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| load_err(e.to_string()))?;
        let pair = KeyPair::from_pkcs8(alg, pkcs8_der).map_err(load_err)?;
        Ok(Self { kid, alg, pair, decoding, public_jwk: jwk })
    }

    /// Signs `claims` as a compact JWS (RFC 7515 §7.1) with `typ` and this key's `kid`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(self.alg.jwt_alg());
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        let mut jws = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut jws);
        let signature = self.pair.sign(jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(jws)
    }
}

/// The public JWK set of the given keys, as served at `/jwks.json`.
pub fn public_jwks<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> JwkSet {
    JwkSet { keys: keys.into_iter().map(|k| k.public_jwk.clone()).collect() }
}

/// Claims of a JWT access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub jti: String,
    pub iat: UnixTime,
    pub exp: UnixTime,
    /// Who attested the client instance and what about its runtime (attestation-based client
    /// authentication); absent when the client presented no attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<crate::attestation::AttestationClaim>,
    /// RFC 8693 §4.1: the chain of actors of a delegated token (token exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<crate::act::Actor>,
}

/// Why a token is not one of ours, or no longer valid. Never shown to clients in detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejected {
    #[error("token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("token is not a well-formed JWS")]
    Malformed,
    #[error("token typ is not {0}")]
    WrongType(&'static str),
    #[error("token kid is unknown")]
    UnknownKey,
    #[error("token alg does not match its key")]
    AlgorithmMismatch,
    #[error("token signature or claims are invalid")]
    BadSignature,
    #[error("token was issued by someone else")]
    WrongIssuer,
    #[error("token has expired")]
    Expired,
    #[error("token was issued in the future")]
    NotYetValid,
}

/// Leeway for clocks of instances that share a database.
pub const CLOCK_SKEW_SECONDS: i64 = 30;

/// Verifies one of our own access tokens: `typ`, signature by one of `keys` (alg fixed by the key),
/// `iss` and times. The caller checks `aud` against what it expects.
pub fn verify_access_token(
    token: &str,
    keys: &[SigningKey],
    issuer: &str,
    now: UnixTime,
) -> Result<AccessTokenClaims, TokenRejected> {
    let claims: AccessTokenClaims = decode_own(token, keys, &[ACCESS_TOKEN_TYP, "application/at+jwt"])?;
    if claims.iss != issuer {
        return Err(TokenRejected::WrongIssuer);
    }
    if claims.exp <= now {
        return Err(TokenRejected::Expired);
    }
    if claims.iat > now + CLOCK_SKEW_SECONDS {
        return Err(TokenRejected::NotYetValid);
    }
    Ok(claims)
}

/// The `typ` of the ID tokens we sign (OpenID Connect Core §16.14 leaves it to the issuer).
pub const ID_TOKEN_TYP: &str = "JWT";

/// Verifies an ID token we issued, as `id_token_hint` (RP-initiated logout §2): signature, `typ`
/// and `iss`, but not `exp`, since a hint may have expired.
pub fn verify_id_token_hint(
    token: &str,
    keys: &[SigningKey],
    issuer: &str,
) -> Result<crate::oidc::IdTokenClaims, TokenRejected> {
    let claims: crate::oidc::IdTokenClaims = decode_own(token, keys, &["jwt"])?;
    if claims.iss != issuer {
        return Err(TokenRejected::WrongIssuer);
    }
    Ok(claims)
}

/// Size cap, `typ` (case-insensitive, one of `typs`), `kid` among `keys`, `alg` fixed by that key,
/// signature. Times and issuer are the caller's to check.
fn decode_own<T: serde::de::DeserializeOwned>(
    token: &str,
    keys: &[SigningKey],
    typs: &[&'static str],
) -> Result<T, TokenRejected> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenRejected::TooLarge);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejected::Malformed)?;
    let typ = header.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
    if !typs.contains(&typ.as_str()) {
        return Err(TokenRejected::WrongType(typs[0]));
    }
    let kid = header.kid.as_deref().ok_or(TokenRejected::UnknownKey)?;
    let key = keys.iter().find(|k| k.kid == kid).ok_or(TokenRejected::UnknownKey)?;
    if header.alg != key.alg.jwt_alg() {
        return Err(TokenRejected::AlgorithmMismatch);
    }
    let mut validation = Validation::new(key.alg.jwt_alg());
    // Times are checked by the caller against the injected clock, not the system clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<T>(token, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|_| TokenRejected::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install_provider() {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    }

    fn claims(now: UnixTime) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://as.example".into(),
            sub: "agent".into(),
            aud: "https://mcp.example".into(),
            client_id: "agent".into(),
            scope: Some("tools:read".into()),
            jti: "j1".into(),
            iat: now,
            exp: now + 300,
            attestation: None,
            act: None,
        }
    }

    #[test]
    fn every_algorithm_signs_verifies_and_publishes_kid_use_alg() {
        install_provider();
        for alg in [SigningAlgorithm::ES256, SigningAlgorithm::EdDSA, SigningAlgorithm::RS256] {
            let der = generate_private_key(alg).unwrap();
            let key = SigningKey::from_pkcs8(alg, &der).unwrap();
            let jwk = serde_json::to_value(&key.public_jwk).unwrap();
            assert_eq!(jwk["kid"], key.kid.as_str());
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], alg.as_str());
            assert!(jwk.get("d").is_none(), "private part must not be published");
            let token = key.sign(ACCESS_TOKEN_TYP, &claims(1000)).unwrap();
            let got = verify_access_token(&token, std::slice::from_ref(&key), "https://as.example", 1001).unwrap();
            assert_eq!(got, claims(1000));
        }
    }

    #[test]
    fn rejects_expired_wrong_issuer_wrong_typ_and_unknown_key() {
        install_provider();
        let key =
            SigningKey::from_pkcs8(SigningAlgorithm::ES256, &generate_private_key(SigningAlgorithm::ES256).unwrap())
                .unwrap();
        let other =
            SigningKey::from_pkcs8(SigningAlgorithm::ES256, &generate_private_key(SigningAlgorithm::ES256).unwrap())
                .unwrap();
        let keys = std::slice::from_ref(&key);
        let token = key.sign(ACCESS_TOKEN_TYP, &claims(1000)).unwrap();
        assert_eq!(verify_access_token(&token, keys, "https://as.example", 1300), Err(TokenRejected::Expired));
        assert_eq!(verify_access_token(&token, keys, "https://other.example", 1001), Err(TokenRejected::WrongIssuer));
        assert_eq!(
            verify_access_token(&token, std::slice::from_ref(&other), "https://as.example", 1001),
            Err(TokenRejected::UnknownKey)
        );
        let jwt = key.sign("JWT", &claims(1000)).unwrap();
        assert_eq!(
            verify_access_token(&jwt, keys, "https://as.example", 1001),
            Err(TokenRejected::WrongType(ACCESS_TOKEN_TYP))
        );
        let mut tampered = token.clone();
        tampered.replace_range(token.len() - 4.., "AAAA");
        assert_eq!(verify_access_token(&tampered, keys, "https://as.example", 1001), Err(TokenRejected::BadSignature));
    }
}
