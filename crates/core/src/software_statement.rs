//! Software statements (RFC 7591 §2.3): a JWT in which a software publisher vouches for a client's
//! metadata. Only publishers the operator configured, each with its own public keys, are trusted;
//! the statement's claims then take precedence over the same fields sent in plain JSON.
//!
//! Asymmetric algorithms only (the client-assertion allow-list), `iss` names the publisher, and
//! `exp`, `nbf` and `iat`, when present, must hold now. The statement must name the software
//! (`client_name`): that name is what a verified registration shows people.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::assertion::{ALGORITHMS, select_key};
use crate::clock::UnixTime;
use crate::jose::{CLOCK_SKEW_SECONDS, MAX_TOKEN_BYTES};

/// A publisher the operator trusts to vouch for software.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// The `iss` of its statements.
    pub issuer: String,
    /// Shown to people: "verified by …".
    pub name: String,
    pub keys: JwkSet,
}

/// Why a statement was refused; the text is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementRejected {
    #[error("the software statement is not a well-formed JWS")]
    Malformed,
    #[error("the software statement's alg {0} is not accepted (ES256, EdDSA, RS256, PS256)")]
    Algorithm(String),
    /// RFC 7591 §3.2.2 `unapproved_software_statement`.
    #[error("the software statement's issuer {0:?} is not a publisher this server trusts")]
    Unapproved(String),
    #[error("no key of the publisher matches the software statement's kid and alg")]
    UnknownKey,
    #[error("the software statement's signature does not verify with the publisher's keys")]
    BadSignature,
    #[error("the software statement has expired")]
    Expired,
    #[error("the software statement is not valid yet")]
    NotYetValid,
    #[error("the software statement must name the software (client_name)")]
    Unnamed,
}

/// A verified statement: who vouched, and the client metadata it asserts (registered claims of
/// the JWT itself removed).
#[derive(Debug, Clone)]
pub struct VerifiedStatement<'a> {
    pub publisher: &'a Publisher,
    pub metadata: Map<String, Value>,
}

/// JWT claims that describe the statement, not the client.
const ENVELOPE_CLAIMS: &[&str] = &["iss", "exp", "nbf", "iat", "jti", "aud", "sub"];

pub fn verify_software_statement<'a>(
    jwt: &str,
    publishers: &'a [Publisher],
    now: UnixTime,
) -> Result<VerifiedStatement<'a>, StatementRejected> {
    if jwt.len() > MAX_TOKEN_BYTES {
        return Err(StatementRejected::Malformed);
    }
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| StatementRejected::Malformed)?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(StatementRejected::Algorithm(format!("{:?}", header.alg)));
    }
    let issuer = unverified_issuer(jwt).ok_or(StatementRejected::Malformed)?;
    let publisher =
        publishers.iter().find(|p| p.issuer == issuer).ok_or_else(|| StatementRejected::Unapproved(issuer.clone()))?;
    let jwk = select_key(&publisher.keys, header.kid.as_deref(), header.alg).ok_or(StatementRejected::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| StatementRejected::UnknownKey)?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut claims = jsonwebtoken::decode::<Map<String, Value>>(jwt, &key, &validation)
        .map_err(|_| StatementRejected::BadSignature)?
        .claims;
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    if time("exp").is_some_and(|exp| exp <= now - CLOCK_SKEW_SECONDS) {
        return Err(StatementRejected::Expired);
    }
    if time("nbf").is_some_and(|t| t > now + CLOCK_SKEW_SECONDS)
        || time("iat").is_some_and(|t| t > now + CLOCK_SKEW_SECONDS)
    {
        return Err(StatementRejected::NotYetValid);
    }
    if claims.get("client_name").and_then(Value::as_str).is_none_or(|n| n.trim().is_empty()) {
        return Err(StatementRejected::Unnamed);
    }
    for name in ENVELOPE_CLAIMS {
        claims.remove(*name);
    }
    Ok(VerifiedStatement { publisher, metadata: claims })
}

/// The `iss` of a JWT before verification, only to choose the publisher's keys.
fn unverified_issuer(jwt: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["iss"].as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jose::{SigningAlgorithm, SigningKey, public_jwks};

    const NOW: UnixTime = 1_800_000_000;

    fn publisher(key: &SigningKey) -> Publisher {
        Publisher {
            issuer: "https://publisher.example".into(),
            name: "Example Publisher".into(),
            keys: public_jwks([key]),
        }
    }

    fn key() -> SigningKey {
        crate::test_keys::key(SigningAlgorithm::ES256)
    }

    #[test]
    fn a_statement_from_a_trusted_publisher_gives_its_metadata() {
        let signer = key();
        let publishers = [publisher(&signer)];
        let jwt = signer
            .sign("JWT", &json!({"iss": "https://publisher.example", "iat": NOW, "client_name": "Acme Agent", "software_id": "acme"}))
            .unwrap();
        let verified = verify_software_statement(&jwt, &publishers, NOW).unwrap();
        assert_eq!(verified.publisher.name, "Example Publisher");
        assert_eq!(Value::Object(verified.metadata), json!({"client_name": "Acme Agent", "software_id": "acme"}));
    }

    #[test]
    fn untrusted_forged_expired_and_unnamed_statements_are_refused() {
        let signer = key();
        let publishers = [publisher(&signer)];
        let sign = |k: &SigningKey, claims: Value| k.sign("JWT", &claims).unwrap();
        let other = sign(&signer, json!({"iss": "https://other.example", "client_name": "X"}));
        assert!(matches!(verify_software_statement(&other, &publishers, NOW), Err(StatementRejected::Unapproved(_))));
        let forged = sign(&key(), json!({"iss": "https://publisher.example", "client_name": "X"}));
        assert!(matches!(
            verify_software_statement(&forged, &publishers, NOW),
            Err(StatementRejected::BadSignature | StatementRejected::UnknownKey)
        ));
        let expired = sign(&signer, json!({"iss": "https://publisher.example", "client_name": "X", "exp": NOW - 60}));
        assert_eq!(verify_software_statement(&expired, &publishers, NOW).err(), Some(StatementRejected::Expired));
        let unnamed = sign(&signer, json!({"iss": "https://publisher.example"}));
        assert_eq!(verify_software_statement(&unnamed, &publishers, NOW).err(), Some(StatementRejected::Unnamed));
        assert_eq!(verify_software_statement("not.a.jwt", &publishers, NOW).err(), Some(StatementRejected::Malformed));
    }
}
