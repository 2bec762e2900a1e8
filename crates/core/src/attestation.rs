//! Attestation-based client authentication (draft-ietf-oauth-attestation-based-client-auth): the
//! Client Attestation JWT, signed by a trusted Client Attester and naming the client (`sub`) and
//! its instance key (`cnf.jwk`), and the Client Attestation PoP JWT that this key signs for one
//! audience. Also the agent-runtime facts mandate reads from an attestation (`llm`, `runtime`) and
//! records on what it issues, as the `attestation` claim.
//!
//! Algorithms are those of `private_key_jwt` ([`ALGORITHMS`]): never `none`, never HMAC, the key's
//! type and curve fitting the algorithm. Recording the PoP `jti` and checking a `challenge` need
//! storage, so they are the caller's.

use std::collections::BTreeMap;

use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::assertion::ALGORITHMS;
use crate::assertion::{fits_algorithm, parse_client_jwks, select_key};
use crate::clock::UnixTime;
use crate::error::{ErrorCode, OAuthError};
use crate::jose::{CLOCK_SKEW_SECONDS, MAX_TOKEN_BYTES};

/// §4: the `typ` of a Client Attestation JWT.
pub const ATTESTATION_TYP: &str = "oauth-client-attestation+jwt";
/// §5.1: the `typ` of a Client Attestation PoP JWT.
pub const POP_TYP: &str = "oauth-client-attestation-pop+jwt";
/// Request header carrying the Client Attestation JWT (exactly one).
pub const ATTESTATION_HEADER: &str = "oauth-client-attestation";
/// Request header carrying the Client Attestation PoP JWT (exactly one).
pub const POP_HEADER: &str = "oauth-client-attestation-pop";
/// Response header carrying a fresh challenge (§6.2).
pub const CHALLENGE_HEADER: &str = "oauth-client-attestation-challenge";
/// The `token_endpoint_auth_method` of attestation with a PoP JWT (§10).
pub const AUTH_METHOD: &str = "attest_jwt_client_auth";
/// The PoP method of `client_attestation_pop_methods_supported` this server accepts.
pub const POP_METHOD: &str = "attestation_pop_jwt";
/// How old a PoP's `iat` may be (§7.2: "within an acceptable window per local policy").
pub const POP_MAX_AGE_SECONDS: i64 = 60;
/// The claims holding agent-runtime facts, each a small JSON object of strings.
pub const FACT_CLAIMS: [&str; 2] = ["llm", "runtime"];
/// Bounds on each fact claim: members, and characters per name and per value.
pub const MAX_FACTS: usize = 16;
pub const MAX_FACT_NAME_CHARS: usize = 64;
pub const MAX_FACT_VALUE_CHARS: usize = 256;

/// A Client Attester this server trusts, with its verification keys.
#[derive(Debug, Clone, Copy)]
pub struct TrustedAttester<'a> {
    /// As configured; shown in audit events and in the `attestation` claim.
    pub name: &'a str,
    /// When set, the attestation's `iss` must equal it.
    pub issuer: Option<&'a str>,
    pub keys: &'a JwkSet,
}

/// The `attestation` claim of access tokens and introspection responses: who attested the client
/// instance, and what it attested about the agent's runtime (which model receives data, where).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationClaim {
    pub attester: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<BTreeMap<String, String>>,
}

/// What a grant keeps of the attestation presented when its code was redeemed: the facts its
/// tokens carry, and the instance key its refresh tokens are bound to (§11.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationBinding {
    pub claim: AttestationClaim,
    /// RFC 7638 SHA-256 thumbprint of the client instance key (`cnf.jwk`).
    pub instance_jkt: String,
}

/// A verified Client Attestation JWT.
#[derive(Debug, Clone)]
pub struct VerifiedAttestation {
    /// The client it attests (`sub`).
    pub client_id: String,
    pub iss: Option<String>,
    pub exp: UnixTime,
    pub iat: Option<UnixTime>,
    /// The client instance key (`cnf.jwk`): public and asymmetric.
    pub instance_key: Jwk,
    pub instance_jkt: String,
    pub claim: AttestationClaim,
}

impl VerifiedAttestation {
    pub fn binding(&self) -> AttestationBinding {
        AttestationBinding { claim: self.claim.clone(), instance_jkt: self.instance_jkt.clone() }
    }
}

/// The claims of a verified PoP JWT that the caller still has to check against storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopClaims {
    pub jti: String,
    pub iat: UnixTime,
    pub challenge: Option<String>,
}

/// Why an attestation or its PoP was refused; the text is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationRejected {
    #[error("the {0} is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge(&'static str),
    #[error("the {0} is not a well-formed JWS")]
    Malformed(&'static str),
    #[error("the {what}'s alg {alg} is not accepted (ES256, EdDSA, RS256, PS256)")]
    Algorithm { what: &'static str, alg: String },
    #[error("the {what}'s typ must be {expected}")]
    Type { what: &'static str, expected: &'static str },
    #[error("the client attestation is not signed by a trusted attester")]
    Untrusted,
    #[error("the client attestation's iss is not the issuer configured for its attester")]
    Issuer,
    #[error("the client attestation's claims are malformed: {0}")]
    Claims(String),
    #[error("the client attestation has expired")]
    Expired,
    #[error("the client attestation is not valid yet")]
    NotYetValid,
    #[error("the client attestation is older than this server accepts; get a fresh one from the attester")]
    Stale,
    #[error("the client attestation's cnf.jwk {0}")]
    Confirmation(String),
    #[error("the client attestation's {claim} claim must be a JSON object of at most {MAX_FACTS} string members")]
    Facts { claim: &'static str },
    #[error("the attestation PoP is not signed by the key in the attestation's cnf.jwk")]
    PopSignature,
    #[error("the attestation PoP's aud must be this server's issuer identifier, alone")]
    PopAudience,
    #[error("the attestation PoP needs a jti of 1 to 256 characters")]
    PopJti,
    #[error("the attestation PoP needs an iat")]
    PopIat,
    #[error("the attestation PoP is more than {POP_MAX_AGE_SECONDS} seconds old; sign a fresh one")]
    PopStale,
    #[error("the attestation PoP is not valid yet")]
    PopNotYetValid,
    #[error("the attestation PoP's challenge must be a string of at most 256 characters")]
    PopChallenge,
}

impl AttestationRejected {
    /// §8: a stale attestation asks for a fresh one; anything else failed verification.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Stale => ErrorCode::UseFreshAttestation,
            _ => ErrorCode::InvalidClientAttestation,
        }
    }
}

impl From<AttestationRejected> for OAuthError {
    fn from(e: AttestationRejected) -> Self {
        OAuthError::new(e.code(), e.to_string())
    }
}

const ATTESTATION: &str = "client attestation";
const POP: &str = "attestation PoP";

#[derive(Deserialize)]
struct RawAttestation {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<UnixTime>,
    #[serde(default)]
    iat: Option<UnixTime>,
    #[serde(default)]
    nbf: Option<UnixTime>,
    #[serde(default)]
    cnf: Option<Value>,
}

/// Verifies a Client Attestation JWT (§4, §7.1): signed by one of `attesters` (whose `issuer`, if
/// set, must be its `iss`), with `sub`, an `exp` still ahead, and a public `cnf.jwk`. With
/// `max_age`, an attestation issued longer ago, or without `iat`, is [`AttestationRejected::Stale`].
/// The caller checks `sub` against the client the request names.
pub fn verify_attestation(
    jwt: &str,
    attesters: &[TrustedAttester<'_>],
    now: UnixTime,
    max_age: Option<i64>,
) -> Result<VerifiedAttestation, AttestationRejected> {
    let header = checked_header(jwt, ATTESTATION, ATTESTATION_TYP)?;
    let alg = header.alg;
    let mut issuer_mismatch = false;
    let mut verified = None;
    for attester in attesters {
        let Some(jwk) = select_key(attester.keys, header.kid.as_deref(), alg) else { continue };
        let Some(claims) = verify_signature(jwt, jwk, alg) else { continue };
        let iss = claims.get("iss").and_then(Value::as_str);
        if attester.issuer.is_some_and(|expected| iss != Some(expected)) {
            issuer_mismatch = true;
            continue;
        }
        verified = Some((attester.name, claims));
        break;
    }
    let (attester, claims) = match verified {
        Some(found) => found,
        None if issuer_mismatch => return Err(AttestationRejected::Issuer),
        None => return Err(AttestationRejected::Untrusted),
    };
    let raw: RawAttestation = serde_json::from_value(claims.clone())
        .map_err(|e| AttestationRejected::Claims(format!("a registered claim has the wrong type ({e})")))?;
    let client_id = raw
        .sub
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AttestationRejected::Claims("sub (the client_id) is required".into()))?;
    let exp = raw.exp.ok_or_else(|| AttestationRejected::Claims("exp is required".into()))?;
    if exp <= now - CLOCK_SKEW_SECONDS {
        return Err(AttestationRejected::Expired);
    }
    if raw.nbf.is_some_and(|t| t > now + CLOCK_SKEW_SECONDS) || raw.iat.is_some_and(|t| t > now + CLOCK_SKEW_SECONDS) {
        return Err(AttestationRejected::NotYetValid);
    }
    if let Some(max_age) = max_age
        && raw.iat.is_none_or(|iat| iat < now - max_age)
    {
        return Err(AttestationRejected::Stale);
    }
    let instance_key = confirmation_key(raw.cnf.as_ref())?;
    let instance_jkt = instance_key
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| AttestationRejected::Confirmation("cannot be thumbprinted".into()))?;
    let claim = AttestationClaim {
        attester: attester.to_owned(),
        llm: facts(&claims, FACT_CLAIMS[0])?,
        runtime: facts(&claims, FACT_CLAIMS[1])?,
    };
    Ok(VerifiedAttestation { client_id, iss: raw.iss, exp, iat: raw.iat, instance_key, instance_jkt, claim })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawPop {
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    iat: Option<UnixTime>,
    #[serde(default)]
    exp: Option<UnixTime>,
    #[serde(default)]
    nbf: Option<UnixTime>,
    #[serde(default)]
    challenge: Option<Value>,
}

/// Verifies a Client Attestation PoP JWT (§5.1, §7.2): signed by the attested instance key, for
/// `audience` (this server's issuer) alone, with a `jti` and an `iat` within the last
/// [`POP_MAX_AGE_SECONDS`]. The caller records the `jti` and checks any `challenge`.
pub fn verify_pop(
    jwt: &str,
    attestation: &VerifiedAttestation,
    audience: &str,
    now: UnixTime,
) -> Result<PopClaims, AttestationRejected> {
    // Only the attested key verifies a PoP: any `jwk` or `kid` in its header is ignored.
    let alg = checked_header(jwt, POP, POP_TYP)?.alg;
    if !fits_algorithm(&attestation.instance_key, alg) {
        return Err(AttestationRejected::PopSignature);
    }
    let claims = verify_signature(jwt, &attestation.instance_key, alg).ok_or(AttestationRejected::PopSignature)?;
    let raw: RawPop = serde_json::from_value(claims).map_err(|_| AttestationRejected::PopAudience)?;
    let audience_ok = match &raw.aud {
        Some(Audience::One(aud)) => aud == audience,
        Some(Audience::Many(list)) => list.len() == 1 && list[0] == audience,
        None => false,
    };
    if !audience_ok {
        return Err(AttestationRejected::PopAudience);
    }
    let jti = raw.jti.filter(|j| !j.is_empty() && j.chars().count() <= 256).ok_or(AttestationRejected::PopJti)?;
    let iat = raw.iat.ok_or(AttestationRejected::PopIat)?;
    if iat > now + CLOCK_SKEW_SECONDS || raw.nbf.is_some_and(|t| t > now + CLOCK_SKEW_SECONDS) {
        return Err(AttestationRejected::PopNotYetValid);
    }
    if iat < now - POP_MAX_AGE_SECONDS - CLOCK_SKEW_SECONDS || raw.exp.is_some_and(|t| t <= now - CLOCK_SKEW_SECONDS) {
        return Err(AttestationRejected::PopStale);
    }
    let challenge = match raw.challenge {
        None => None,
        Some(Value::String(c)) if !c.is_empty() && c.chars().count() <= 256 => Some(c),
        Some(_) => return Err(AttestationRejected::PopChallenge),
    };
    Ok(PopClaims { jti, iat, challenge })
}

/// Size, `typ` (case-insensitive, `application/` optional) and `alg` from the allow-list.
fn checked_header(jwt: &str, what: &'static str, typ: &'static str) -> Result<Header, AttestationRejected> {
    if jwt.len() > MAX_TOKEN_BYTES {
        return Err(AttestationRejected::TooLarge(what));
    }
    // `alg: none` has no variant in jsonwebtoken, so such a header does not even parse.
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| AttestationRejected::Malformed(what))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(AttestationRejected::Algorithm { what, alg: format!("{:?}", header.alg) });
    }
    let got = header.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
    if got.strip_prefix("application/").unwrap_or(&got) != typ {
        return Err(AttestationRejected::Type { what, expected: typ });
    }
    Ok(header)
}

/// The claims, if `jwk` verifies the signature. Times are checked by the caller, against the
/// injected clock.
fn verify_signature(jwt: &str, jwk: &Jwk, alg: Algorithm) -> Option<Value> {
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation).ok()?.claims;
    claims.is_object().then_some(claims)
}

/// `cnf.jwk` (RFC 7800 §3.2): one public, asymmetric key that can sign with an accepted algorithm.
fn confirmation_key(cnf: Option<&Value>) -> Result<Jwk, AttestationRejected> {
    let jwk = cnf.and_then(|c| c.get("jwk")).ok_or_else(|| AttestationRejected::Confirmation("is required".into()))?;
    if !jwk.is_object() {
        return Err(AttestationRejected::Confirmation("must be a JWK object".into()));
    }
    if ["dp", "dq", "qi", "oth"].iter().any(|m| jwk.get(m).is_some()) {
        return Err(AttestationRejected::Confirmation("contains private key material".into()));
    }
    // The same rules as a client's registered keys: public members only, no symmetric keys.
    let set = serde_json::json!({ "keys": [jwk] }).to_string();
    let mut keys = parse_client_jwks(&set)
        .map_err(|e| AttestationRejected::Confirmation(format!("is not a usable public key (it {e})")))?;
    let key = keys.keys.remove(0);
    if !ALGORITHMS.iter().any(|alg| fits_algorithm(&key, *alg)) {
        return Err(AttestationRejected::Confirmation("is not a signing key for ES256, EdDSA, RS256 or PS256".into()));
    }
    Ok(key)
}

/// An agent-runtime fact claim: absent, or an object of at most [`MAX_FACTS`] short strings.
fn facts(claims: &Value, claim: &'static str) -> Result<Option<BTreeMap<String, String>>, AttestationRejected> {
    let Some(value) = claims.get(claim) else { return Ok(None) };
    let bad = || AttestationRejected::Facts { claim };
    let object = value.as_object().ok_or_else(bad)?;
    if object.len() > MAX_FACTS {
        return Err(bad());
    }
    object
        .iter()
        .map(|(name, v)| match v {
            Value::String(s)
                if !name.is_empty()
                    && name.chars().count() <= MAX_FACT_NAME_CHARS
                    && s.chars().count() <= MAX_FACT_VALUE_CHARS =>
            {
                Ok((name.clone(), s.clone()))
            }
            _ => Err(bad()),
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jose::{SigningAlgorithm, SigningKey};
    use crate::test_keys::{key, set};

    const ISSUER: &str = "https://as.example";
    const NOW: UnixTime = 1_800_000_000;

    fn attestation_claims(instance: &SigningKey) -> Value {
        json!({
            "iss": "https://attester.example", "sub": "agent", "iat": NOW - 10, "exp": NOW + 3600,
            "cnf": { "jwk": instance.public_jwk },
            "llm": { "provider": "acme", "model": "acme-large" }, "extra": [1, 2, 3],
        })
    }

    fn patched(mut claims: Value, patch: Value) -> Value {
        for (name, value) in patch.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    fn pop_claims() -> Value {
        json!({ "aud": ISSUER, "jti": "p-1", "iat": NOW - 5 })
    }

    struct Fixture {
        attester: SigningKey,
        keys: JwkSet,
        instance: SigningKey,
    }

    impl Fixture {
        fn new() -> Self {
            let attester = key(SigningAlgorithm::ES256);
            let keys = set(&attester);
            Self { attester, keys, instance: key(SigningAlgorithm::EdDSA) }
        }

        fn trusted(&self, issuer: Option<&'static str>) -> [TrustedAttester<'_>; 1] {
            [TrustedAttester { name: "Acme runtime", issuer, keys: &self.keys }]
        }

        fn attestation(&self, patch: Value) -> String {
            self.attester.sign(ATTESTATION_TYP, &patched(attestation_claims(&self.instance), patch)).unwrap()
        }

        fn verify(&self, jwt: &str) -> Result<VerifiedAttestation, AttestationRejected> {
            verify_attestation(jwt, &self.trusted(None), NOW, None)
        }
    }

    #[test]
    fn a_good_attestation_and_pop_verify_and_yield_the_facts() {
        let f = Fixture::new();
        let verified =
            verify_attestation(&f.attestation(json!({})), &f.trusted(Some("https://attester.example")), NOW, None)
                .unwrap();
        assert_eq!(verified.client_id, "agent");
        assert_eq!(verified.claim.attester, "Acme runtime");
        assert_eq!(verified.claim.llm.as_ref().unwrap()["model"], "acme-large");
        assert_eq!(verified.claim.runtime, None);
        assert_eq!(verified.instance_jkt, f.instance.kid, "the thumbprint of cnf.jwk");
        let pop = f.instance.sign(POP_TYP, &pop_claims()).unwrap();
        let claims = verify_pop(&pop, &verified, ISSUER, NOW).unwrap();
        assert_eq!((claims.jti.as_str(), claims.challenge), ("p-1", None));
        let with_challenge = f.instance.sign(POP_TYP, &patched(pop_claims(), json!({ "challenge": "c-1" }))).unwrap();
        assert_eq!(verify_pop(&with_challenge, &verified, ISSUER, NOW).unwrap().challenge.as_deref(), Some("c-1"));
    }

    #[test]
    fn attestations_that_are_not_trusted_or_not_valid_are_refused() {
        let f = Fixture::new();
        let stranger = key(SigningAlgorithm::ES256);
        let forged = stranger.sign(ATTESTATION_TYP, &attestation_claims(&f.instance)).unwrap();
        assert_eq!(f.verify(&forged).unwrap_err(), AttestationRejected::Untrusted);
        let wrong_iss = f.attestation(json!({ "iss": "https://elsewhere.example" }));
        let trusted = f.trusted(Some("https://attester.example"));
        assert_eq!(verify_attestation(&wrong_iss, &trusted, NOW, None).unwrap_err(), AttestationRejected::Issuer);
        assert_eq!(f.verify(&f.attestation(json!({ "exp": NOW - 60 }))).unwrap_err(), AttestationRejected::Expired);
        assert!(f.verify(&f.attestation(json!({ "exp": NOW - 10 }))).is_ok(), "within the clock skew");
        assert_eq!(
            f.verify(&f.attestation(json!({ "iat": NOW + 600 }))).unwrap_err(),
            AttestationRejected::NotYetValid
        );
        assert!(matches!(f.verify(&f.attestation(json!({ "exp": null }))), Err(AttestationRejected::Claims(_))));
        assert!(matches!(f.verify(&f.attestation(json!({ "sub": null }))), Err(AttestationRejected::Claims(_))));
        assert!(matches!(f.verify(&f.attestation(json!({ "exp": "later" }))), Err(AttestationRejected::Claims(_))));
        assert!(matches!(f.verify(&f.attestation(json!({ "cnf": null }))), Err(AttestationRejected::Confirmation(_))));
        let wrong_typ = f.attester.sign("JWT", &attestation_claims(&f.instance)).unwrap();
        assert!(matches!(f.verify(&wrong_typ), Err(AttestationRejected::Type { .. })));
        let pop_as_attestation = f.attester.sign(POP_TYP, &attestation_claims(&f.instance)).unwrap();
        assert!(matches!(f.verify(&pop_as_attestation), Err(AttestationRejected::Type { .. })));
    }

    #[test]
    fn freshness_is_judged_by_iat_when_a_max_age_is_set() {
        let f = Fixture::new();
        let trusted = f.trusted(None);
        let old = f.attestation(json!({ "iat": NOW - 7200 }));
        assert!(verify_attestation(&old, &trusted, NOW, None).is_ok());
        let stale = verify_attestation(&old, &trusted, NOW, Some(3600)).unwrap_err();
        assert_eq!(stale, AttestationRejected::Stale);
        assert_eq!(OAuthError::from(stale).code, ErrorCode::UseFreshAttestation);
        let undated = f.attestation(json!({ "iat": null }));
        assert_eq!(verify_attestation(&undated, &trusted, NOW, Some(3600)).unwrap_err(), AttestationRejected::Stale);
        assert!(verify_attestation(&f.attestation(json!({})), &trusted, NOW, Some(3600)).is_ok());
    }

    #[test]
    fn the_instance_key_must_be_public_and_asymmetric() {
        let f = Fixture::new();
        let mut private = serde_json::to_value(&f.instance.public_jwk).unwrap();
        private["d"] = json!("c2VjcmV0");
        let cases = [
            json!({ "jwk": private }),
            json!({ "jwk": { "kty": "oct", "k": "c2VjcmV0" } }),
            json!({ "jwk": "not an object" }),
            json!({ "jkt": "a thumbprint is not a key" }),
        ];
        for cnf in cases {
            let jwt = f.attestation(json!({ "cnf": cnf }));
            assert!(matches!(f.verify(&jwt), Err(AttestationRejected::Confirmation(_))), "{cnf}");
        }
    }

    #[test]
    fn fact_claims_are_small_objects_of_strings() {
        let f = Fixture::new();
        let many: serde_json::Map<String, Value> = (0..=MAX_FACTS).map(|i| (format!("k{i}"), json!("v"))).collect();
        for bad in [json!("acme"), json!({ "model": 4 }), json!({ "nested": { "a": "b" } }), Value::Object(many)] {
            let jwt = f.attestation(json!({ "runtime": bad }));
            assert_eq!(f.verify(&jwt).unwrap_err(), AttestationRejected::Facts { claim: "runtime" });
        }
        let long = "x".repeat(MAX_FACT_VALUE_CHARS + 1);
        assert!(f.verify(&f.attestation(json!({ "llm": { "model": long } }))).is_err());
        let runtime = json!({ "name": "agentd", "version": "1.2.0", "region": "eu-west-1" });
        let verified = f.verify(&f.attestation(json!({ "runtime": runtime }))).unwrap();
        assert_eq!(verified.claim.runtime.unwrap()["region"], "eu-west-1");
    }

    #[test]
    fn pops_must_be_signed_by_the_instance_key_for_this_server_and_fresh() {
        let f = Fixture::new();
        let verified = f.verify(&f.attestation(json!({}))).unwrap();
        let other = key(SigningAlgorithm::EdDSA);
        let sign = |patch: Value| f.instance.sign(POP_TYP, &patched(pop_claims(), patch)).unwrap();
        let check = |jwt: &str| verify_pop(jwt, &verified, ISSUER, NOW).unwrap_err();
        assert_eq!(check(&other.sign(POP_TYP, &pop_claims()).unwrap()), AttestationRejected::PopSignature);
        assert_eq!(check(&f.attester.sign(POP_TYP, &pop_claims()).unwrap()), AttestationRejected::PopSignature);
        assert_eq!(check(&sign(json!({ "aud": "https://as.example/token" }))), AttestationRejected::PopAudience);
        assert_eq!(check(&sign(json!({ "aud": [ISSUER, "https://rs.example"] }))), AttestationRejected::PopAudience);
        assert_eq!(check(&sign(json!({ "aud": null }))), AttestationRejected::PopAudience);
        assert_eq!(check(&sign(json!({ "jti": null }))), AttestationRejected::PopJti);
        assert_eq!(check(&sign(json!({ "jti": "" }))), AttestationRejected::PopJti);
        assert_eq!(check(&sign(json!({ "iat": null }))), AttestationRejected::PopIat);
        assert_eq!(check(&sign(json!({ "iat": NOW - 300 }))), AttestationRejected::PopStale);
        assert_eq!(check(&sign(json!({ "iat": NOW + 300 }))), AttestationRejected::PopNotYetValid);
        assert_eq!(check(&sign(json!({ "challenge": 42 }))), AttestationRejected::PopChallenge);
        let wrong_typ = f.instance.sign("dpop+jwt", &pop_claims()).unwrap();
        assert!(matches!(check(&wrong_typ), AttestationRejected::Type { .. }));
        assert!(verify_pop(&sign(json!({ "aud": [ISSUER] })), &verified, ISSUER, NOW).is_ok());
    }

    #[test]
    fn none_and_hmac_are_refused() {
        let f = Fixture::new();
        let claims = attestation_claims(&f.instance);
        // HS256 "signed" with bytes of the attester's public key: the classic confusion attack.
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.typ = Some(ATTESTATION_TYP.into());
        let secret = jsonwebtoken::EncodingKey::from_secret(f.attester.kid.as_bytes()).unwrap();
        let hs = jsonwebtoken::encode(&header, &claims, &secret).unwrap();
        assert!(matches!(f.verify(&hs), Err(AttestationRejected::Algorithm { .. })));
        let none = format!(
            "{}.{}.",
            b64(&json!({ "alg": "none", "typ": ATTESTATION_TYP }).to_string()),
            b64(&claims.to_string())
        );
        assert_eq!(f.verify(&none).unwrap_err(), AttestationRejected::Malformed(ATTESTATION));
        let verified = f.verify(&f.attestation(json!({}))).unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.typ = Some(POP_TYP.into());
        let hs_pop = jsonwebtoken::encode(&header, &pop_claims(), &secret).unwrap();
        assert!(matches!(verify_pop(&hs_pop, &verified, ISSUER, NOW), Err(AttestationRejected::Algorithm { .. })));
    }

    fn b64(s: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }
}
