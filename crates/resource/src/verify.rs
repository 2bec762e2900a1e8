//! Offline verification of a JWT access token (RFC 9068 §4) against the issuer's public keys: the
//! size, `typ`, an algorithm allow-list (never `none`, never HMAC, so a public key can never be
//! used as a shared secret), the key by `kid` and of the algorithm's type, the signature, then
//! `iss`, `aud` and the times with a small leeway.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Larger tokens are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Asymmetric algorithms only.
pub const ALGORITHMS: &[Algorithm] =
    &[Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256];

/// What a token must say to be for this resource.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub issuer: String,
    pub resource: String,
    pub leeway: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No key with this `kid`: the issuer may have rotated; refetch (rate-limited) and retry.
    UnknownKey,
    Invalid(&'static str),
}

pub fn verify_jwt(token: &str, keys: &JwkSet, expect: &Expectations, now: i64) -> Result<Map<String, Value>, Failure> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Failure::Invalid("the access token is too large"));
    }
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| Failure::Invalid("the access token is not a valid JWT"))?;
    let typ = header.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
    if typ != "at+jwt" && typ != "application/at+jwt" {
        return Err(Failure::Invalid("the token is not an access token (typ at+jwt)"));
    }
    if !ALGORITHMS.contains(&header.alg) {
        return Err(Failure::Invalid("the access token's algorithm is not accepted"));
    }
    let kid = header.kid.as_deref().ok_or(Failure::Invalid("the access token names no key (kid)"))?;
    let jwk = keys.keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid)).ok_or(Failure::UnknownKey)?;
    if !fits(jwk, header.alg) {
        return Err(Failure::Invalid("the access token's algorithm does not fit its key"));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| Failure::Invalid("the issuer's key cannot be used"))?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|_| Failure::Invalid("the access token's signature does not verify"))?
        .claims;
    check_claims(&claims, expect, now)?;
    Ok(claims)
}

/// `iss`, `aud`, `exp`, `nbf`, `iat`: shared by JWTs and introspection responses.
pub fn check_claims(claims: &Map<String, Value>, expect: &Expectations, now: i64) -> Result<(), Failure> {
    if claims.get("iss").and_then(Value::as_str) != Some(expect.issuer.as_str()) {
        return Err(Failure::Invalid("the access token was issued by another authorization server"));
    }
    let for_us = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == expect.resource,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expect.resource.as_str())),
        _ => false,
    };
    if !for_us {
        return Err(Failure::Invalid("the access token is for another resource (aud)"));
    }
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    let exp = time("exp").ok_or(Failure::Invalid("the access token has no expiry"))?;
    if exp <= now - expect.leeway {
        return Err(Failure::Invalid("the access token has expired"));
    }
    if time("nbf").is_some_and(|t| t > now + expect.leeway) || time("iat").is_some_and(|t| t > now + expect.leeway) {
        return Err(Failure::Invalid("the access token is not valid yet"));
    }
    Ok(())
}

/// The key is for signatures, of the algorithm's family and curve, and its own `alg`, if any,
/// is the header's.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return false;
    }
    if let Some(declared) = jwk.common.key_algorithm
        && format!("{declared:?}") != format!("{alg:?}")
    {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => p.curve == EllipticCurve::Ed25519,
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::PS256) => true,
        _ => false,
    }
}
