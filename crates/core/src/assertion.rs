//! Client authentication with a signed JWT: `private_key_jwt` (RFC 7523 §2.2 and §3, as updated by
//! RFC 10070: the audience is the authorization server's issuer identifier, single-valued).
//!
//! Asymmetric algorithms only (ES256, EdDSA, RS256, PS256), the key's type and curve must fit the
//! algorithm, `iss` = `sub` = the client, a short `exp`, and a `jti` the caller records so that a
//! replay fails on every instance.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::clock::UnixTime;
use crate::jose::{CLOCK_SKEW_SECONDS, MAX_TOKEN_BYTES};

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// RFC 10070: an explicit type for client assertions; plain `JWT` (or none) is also accepted.
pub const CLIENT_ASSERTION_TYP: &str = "client-authentication+jwt";
/// Algorithms accepted in client assertions. Never `none`, never HMAC.
pub const ALGORITHMS: &[Algorithm] = &[Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256];
/// The longest an assertion may remain valid (`exp` − now).
pub const MAX_LIFETIME_SECONDS: i64 = 300;
/// The longest `jti` accepted in an assertion or a trusted issuer's grant.
pub const MAX_JTI_BYTES: usize = 256;
/// The longest `sub` accepted from a trusted issuer.
pub const MAX_SUBJECT_BYTES: usize = 512;

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The claims of a verified assertion.
#[derive(Debug, Clone, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    aud: Audience,
    pub exp: UnixTime,
    #[serde(default)]
    pub nbf: Option<UnixTime>,
    #[serde(default)]
    pub iat: Option<UnixTime>,
    #[serde(default)]
    pub jti: Option<String>,
}

/// Why an assertion was refused; the text is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionRejected {
    #[error("the client assertion is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("the client assertion is not a well-formed JWS")]
    Malformed,
    #[error("the client assertion's alg {0} is not accepted (ES256, EdDSA, RS256, PS256)")]
    Algorithm(String),
    #[error("the client assertion's typ {0:?} is not accepted (client-authentication+jwt or JWT)")]
    Type(String),
    #[error("no key of this client matches the assertion's kid and alg")]
    UnknownKey,
    #[error("the client assertion's signature does not verify")]
    BadSignature,
    #[error("the client assertion's iss and sub must both be the client_id")]
    Subject,
    #[error("the client assertion's aud must be this server's issuer identifier, alone")]
    Audience,
    #[error("the client assertion has expired")]
    Expired,
    #[error("the client assertion is valid for more than {MAX_LIFETIME_SECONDS} seconds")]
    TooLong,
    #[error("the client assertion is not valid yet")]
    NotYetValid,
    #[error("the client assertion has no jti")]
    MissingJti,
}

/// Verifies `assertion` for `client_id` against the client's keys. The caller must still record
/// the returned `jti` until `exp` and refuse it if already recorded.
pub fn verify_client_assertion(
    assertion: &str,
    keys: &JwkSet,
    client_id: &str,
    issuer: &str,
    now: UnixTime,
) -> Result<AssertionClaims, AssertionRejected> {
    if assertion.len() > MAX_TOKEN_BYTES {
        return Err(AssertionRejected::TooLarge);
    }
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| AssertionRejected::Malformed)?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(AssertionRejected::Algorithm(format!("{:?}", header.alg)));
    }
    if let Some(typ) = header.typ.as_deref() {
        let typ = typ.to_ascii_lowercase();
        let typ = typ.strip_prefix("application/").unwrap_or(&typ);
        if typ != CLIENT_ASSERTION_TYP && typ != "jwt" {
            return Err(AssertionRejected::Type(typ.to_owned()));
        }
    }
    let jwk = select_key(keys, header.kid.as_deref(), header.alg).ok_or(AssertionRejected::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| AssertionRejected::UnknownKey)?;
    let mut validation = Validation::new(header.alg);
    // Times and audience are checked below, against the injected clock and RFC 10070's rule.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
        .map_err(|_| AssertionRejected::BadSignature)?
        .claims;
    if claims.iss != client_id || claims.sub != client_id {
        return Err(AssertionRejected::Subject);
    }
    let audience_ok = match &claims.aud {
        Audience::One(aud) => aud == issuer,
        Audience::Many(list) => list.len() == 1 && list[0] == issuer,
    };
    if !audience_ok {
        return Err(AssertionRejected::Audience);
    }
    if claims.exp <= now - CLOCK_SKEW_SECONDS {
        return Err(AssertionRejected::Expired);
    }
    if claims.exp > now + MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS {
        return Err(AssertionRejected::TooLong);
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + CLOCK_SKEW_SECONDS)
        || claims.iat.is_some_and(|iat| iat > now + CLOCK_SKEW_SECONDS)
    {
        return Err(AssertionRejected::NotYetValid);
    }
    if claims.jti.as_deref().is_none_or(|j| j.is_empty() || j.len() > MAX_JTI_BYTES) {
        return Err(AssertionRejected::MissingJti);
    }
    Ok(claims)
}

/// The claims mandate relies on in a trusted issuer's JWT (an ID-JAG, a JWT authorization grant,
/// or the subject token of an exchange), each checked by [`check_grant_claims`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantClaims {
    pub sub: String,
    pub jti: String,
    pub exp: UnixTime,
    /// `client_id`: for an assertion, the client's id at this server; for a subject token, at
    /// the issuer.
    pub client_id: Option<String>,
    /// `azp`, the subject token's client at its issuer when `client_id` is absent.
    pub azp: Option<String>,
    /// `resource` (string or array), empty when absent.
    pub resources: Vec<String>,
    pub scope: Option<String>,
}

/// Why a trusted issuer's JWT was refused; the text is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantRejected {
    #[error("its aud must be this server's issuer identifier, alone")]
    Audience,
    #[error("it names no subject (sub of 1 to {MAX_SUBJECT_BYTES} bytes)")]
    Subject,
    #[error("it needs a jti of 1 to {MAX_JTI_BYTES} bytes (each is accepted once)")]
    Jti,
    #[error("it has no integer exp")]
    NoExpiry,
    #[error("it has expired")]
    Expired,
    #[error("it is valid for {0} more seconds; this issuer's limit is {1} seconds")]
    TooLong(i64, i64),
    #[error("it is not valid yet (nbf or iat in the future)")]
    NotYetValid,
    #[error("its {0} claim is malformed")]
    Malformed(&'static str),
}

/// RFC 7521 §5.2 and RFC 7523 §3 for a trusted issuer's JWT whose signature has been verified:
/// `aud` is `audience` alone (RFC 10070), `sub` and `jti` present and bounded, `exp` present and
/// at most `max_lifetime` seconds ahead of `now` (so that the replay record of its `jti` is
/// bounded too), `nbf` and `iat` not in the future, and `client_id`, `azp`, `resource` and
/// `scope` well-formed when present. Times allow [`CLOCK_SKEW_SECONDS`].
pub fn check_grant_claims(
    claims: &Value,
    audience: &str,
    now: UnixTime,
    max_lifetime: i64,
) -> Result<GrantClaims, GrantRejected> {
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.len() == 1 && auds[0].as_str() == Some(audience),
        _ => false,
    };
    if !audience_ok {
        return Err(GrantRejected::Audience);
    }
    let text = |name: &'static str| -> Result<Option<String>, GrantRejected> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(GrantRejected::Malformed(name)),
        }
    };
    let sub = text("sub")
        .ok()
        .flatten()
        .filter(|s| !s.is_empty() && s.len() <= MAX_SUBJECT_BYTES)
        .ok_or(GrantRejected::Subject)?;
    let jti =
        text("jti").ok().flatten().filter(|j| !j.is_empty() && j.len() <= MAX_JTI_BYTES).ok_or(GrantRejected::Jti)?;
    let time = |name: &'static str| -> Result<Option<UnixTime>, GrantRejected> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or(GrantRejected::Malformed(name)),
        }
    };
    let exp = match claims.get("exp") {
        Some(v) => v.as_i64().ok_or(GrantRejected::NoExpiry)?,
        None => return Err(GrantRejected::NoExpiry),
    };
    if exp <= now.saturating_sub(CLOCK_SKEW_SECONDS) {
        return Err(GrantRejected::Expired);
    }
    let remaining = exp.saturating_sub(now);
    if remaining > max_lifetime.saturating_add(CLOCK_SKEW_SECONDS) {
        return Err(GrantRejected::TooLong(remaining, max_lifetime));
    }
    let future = |t: Option<UnixTime>| t.is_some_and(|t| t > now.saturating_add(CLOCK_SKEW_SECONDS));
    if future(time("nbf")?) || future(time("iat")?) {
        return Err(GrantRejected::NotYetValid);
    }
    let resources = match claims.get("resource") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(r)) => vec![r.clone()],
        Some(Value::Array(rs)) => rs
            .iter()
            .map(|r| r.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(GrantRejected::Malformed("resource"))?,
        Some(_) => return Err(GrantRejected::Malformed("resource")),
    };
    Ok(GrantClaims {
        sub,
        jti,
        exp,
        client_id: text("client_id")?,
        azp: text("azp")?,
        resources,
        scope: text("scope")?,
    })
}

/// The signing key for `alg`: by `kid` when given, else the only key that fits. The key must be
/// of the algorithm's type and curve, not marked for encryption, and its own `alg`, if any, equal.
/// Shared with client attestations (see [`crate::attestation`]).
pub fn select_key<'a>(keys: &'a JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<&'a Jwk> {
    let fits = |k: &&Jwk| fits_algorithm(k, alg);
    match kid {
        Some(kid) => keys.keys.iter().filter(|k| k.common.key_id.as_deref() == Some(kid)).find(fits),
        None => {
            let mut candidates = keys.keys.iter().filter(fits);
            let only = candidates.next()?;
            candidates.next().is_none().then_some(only)
        }
    }
}

/// Whether `jwk` may verify a signature made with `alg` (one of [`ALGORITHMS`]): right key type
/// and curve, not an encryption key, and its own `alg`, if declared, the same.
pub fn fits_algorithm(jwk: &Jwk, alg: Algorithm) -> bool {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return false;
    }
    let declared = jwk.common.key_algorithm;
    let expected = match alg {
        Algorithm::ES256 => KeyAlgorithm::ES256,
        Algorithm::EdDSA => KeyAlgorithm::EdDSA,
        Algorithm::RS256 => KeyAlgorithm::RS256,
        Algorithm::PS256 => KeyAlgorithm::PS256,
        _ => return false,
    };
    if declared.is_some_and(|d| d != expected) {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => p.curve == EllipticCurve::Ed25519,
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::PS256) => true,
        _ => false,
    }
}

/// Parses a JWK Set as a client registers it, keeping only public asymmetric keys.
pub fn parse_client_jwks(json: &str) -> Result<JwkSet, String> {
    let raw: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("is not JSON ({e})"))?;
    let private = raw["keys"]
        .as_array()
        .is_some_and(|keys| keys.iter().any(|k| ["d", "p", "q", "k"].iter().any(|f| k.get(f).is_some())));
    if private {
        return Err("contains private or secret key material; publish public keys only".into());
    }
    let set: JwkSet = serde_json::from_str(json).map_err(|e| format!("is not a JWK Set ({e})"))?;
    if set.keys.is_empty() {
        return Err("has no keys".into());
    }
    for key in &set.keys {
        match &key.algorithm {
            AlgorithmParameters::OctetKey(_) => return Err("contains a symmetric (oct) key; only public keys".into()),
            AlgorithmParameters::EllipticCurve(p) if p.curve != EllipticCurve::P256 => {
                return Err("contains an EC key on a curve other than P-256".into());
            }
            _ => {}
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jose::{SigningAlgorithm, SigningKey};
    use crate::test_keys::{key, set};

    const ISSUER: &str = "https://as.example";
    const NOW: UnixTime = 1_800_000_000;

    fn sign(k: &SigningKey, claims: serde_json::Value) -> String {
        k.sign(CLIENT_ASSERTION_TYP, &claims).unwrap()
    }

    fn good() -> serde_json::Value {
        json!({ "iss": "agent", "sub": "agent", "aud": ISSUER, "exp": NOW + 60, "iat": NOW, "jti": "j-1" })
    }

    #[test]
    fn every_algorithm_verifies_with_the_right_key_only() {
        for alg in [SigningAlgorithm::ES256, SigningAlgorithm::EdDSA, SigningAlgorithm::RS256] {
            let k = key(alg);
            let claims = verify_client_assertion(&sign(&k, good()), &set(&k), "agent", ISSUER, NOW).unwrap();
            assert_eq!(claims.jti.as_deref(), Some("j-1"));
            let other = key(alg);
            assert!(verify_client_assertion(&sign(&k, good()), &set(&other), "agent", ISSUER, NOW).is_err());
        }
    }

    #[test]
    fn claims_are_checked() {
        let k = key(SigningAlgorithm::ES256);
        let keys = set(&k);
        let with = |patch: serde_json::Value| {
            let mut c = good();
            for (name, value) in patch.as_object().unwrap() {
                if value.is_null() {
                    c.as_object_mut().unwrap().remove(name);
                } else {
                    c[name] = value.clone();
                }
            }
            verify_client_assertion(&sign(&k, c), &keys, "agent", ISSUER, NOW).unwrap_err()
        };
        assert_eq!(with(json!({ "iss": "someone" })), AssertionRejected::Subject);
        assert_eq!(with(json!({ "sub": "someone" })), AssertionRejected::Subject);
        assert_eq!(with(json!({ "aud": "https://as.example/token" })), AssertionRejected::Audience);
        assert_eq!(with(json!({ "aud": [ISSUER, "https://other"] })), AssertionRejected::Audience);
        assert_eq!(with(json!({ "exp": NOW - 60 })), AssertionRejected::Expired);
        assert_eq!(with(json!({ "exp": NOW + 3600 })), AssertionRejected::TooLong);
        assert_eq!(with(json!({ "nbf": NOW + 600 })), AssertionRejected::NotYetValid);
        assert_eq!(with(json!({ "jti": null })), AssertionRejected::MissingJti);
        let single = json!({ "iss": "agent", "sub": "agent", "aud": [ISSUER], "exp": NOW + 60, "jti": "x" });
        assert!(verify_client_assertion(&sign(&k, single), &keys, "agent", ISSUER, NOW).is_ok());
    }

    #[test]
    fn hmac_none_and_symmetric_keys_are_refused() {
        let k = key(SigningAlgorithm::ES256);
        // An HS256 assertion "signed" with the public key's bytes: the classic confusion attack.
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &good(),
            &jsonwebtoken::EncodingKey::from_secret(b"public").unwrap(),
        )
        .unwrap();
        assert!(matches!(
            verify_client_assertion(&hs, &set(&k), "agent", ISSUER, NOW),
            Err(AssertionRejected::Algorithm(_))
        ));
        let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&good().to_string()));
        assert!(verify_client_assertion(&none, &set(&k), "agent", ISSUER, NOW).is_err());
        let oct = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
        assert!(parse_client_jwks(oct).is_err());
        let private = json!({ "keys": [{ "kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c" }] }).to_string();
        assert!(parse_client_jwks(&private).unwrap_err().contains("private"));
    }

    fn b64(s: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn grant() -> serde_json::Value {
        json!({ "iss": "https://idp.example", "sub": "alice", "aud": ISSUER, "exp": NOW + 120, "iat": NOW,
                "jti": "g-1", "client_id": "agent", "resource": "https://mcp.example/", "scope": "tools:read" })
    }

    fn grant_with(patch: serde_json::Value) -> Result<GrantClaims, GrantRejected> {
        let mut c = grant();
        for (name, value) in patch.as_object().unwrap() {
            if value.is_null() {
                c.as_object_mut().unwrap().remove(name);
            } else {
                c[name] = value.clone();
            }
        }
        check_grant_claims(&c, ISSUER, NOW, 300)
    }

    #[test]
    fn grant_claims_are_bounded() {
        let ok = grant_with(json!({})).unwrap();
        assert_eq!((ok.sub.as_str(), ok.jti.as_str(), ok.client_id.as_deref()), ("alice", "g-1", Some("agent")));
        assert_eq!(ok.resources, ["https://mcp.example/"]);
        assert_eq!(grant_with(json!({ "aud": "https://other.example" })), Err(GrantRejected::Audience));
        assert_eq!(grant_with(json!({ "aud": [ISSUER, ISSUER] })), Err(GrantRejected::Audience));
        assert!(grant_with(json!({ "aud": [ISSUER] })).is_ok());
        assert_eq!(
            grant_with(json!({ "exp": NOW + 100 * 366 * 86_400 })).unwrap_err().to_string().split(';').nth(1),
            Some(" this issuer's limit is 300 seconds")
        );
        assert_eq!(grant_with(json!({ "exp": null })), Err(GrantRejected::NoExpiry));
        assert_eq!(grant_with(json!({ "exp": 1.5e9 })), Err(GrantRejected::NoExpiry));
        assert_eq!(grant_with(json!({ "exp": NOW - 120 })), Err(GrantRejected::Expired));
        assert_eq!(grant_with(json!({ "jti": "" })), Err(GrantRejected::Jti));
        assert_eq!(grant_with(json!({ "jti": null })), Err(GrantRejected::Jti));
        assert_eq!(grant_with(json!({ "jti": "j".repeat(MAX_JTI_BYTES + 1) })), Err(GrantRejected::Jti));
        assert_eq!(grant_with(json!({ "sub": "" })), Err(GrantRejected::Subject));
        assert_eq!(grant_with(json!({ "iat": NOW + 600 })), Err(GrantRejected::NotYetValid));
        assert_eq!(grant_with(json!({ "nbf": NOW + 600 })), Err(GrantRejected::NotYetValid));
        assert_eq!(grant_with(json!({ "resource": ["a", 7] })), Err(GrantRejected::Malformed("resource")));
        assert_eq!(grant_with(json!({ "client_id": 7 })), Err(GrantRejected::Malformed("client_id")));
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(serde_json::Value::String),
            Just(json!(ISSUER)),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            let key = prop_oneof![
                Just("aud".to_owned()),
                Just("sub".to_owned()),
                Just("jti".to_owned()),
                Just("exp".to_owned()),
                Just("iat".to_owned()),
                Just("nbf".to_owned()),
                Just("resource".to_owned()),
                Just("scope".to_owned()),
                Just("client_id".to_owned()),
                ".{0,6}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map(key, inner, 0..10)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_claims_are_checked_without_panicking(claims in arbitrary_json(), now in proptest::num::i64::ANY, max in proptest::num::i64::ANY) {
            if let Ok(ok) = check_grant_claims(&claims, ISSUER, now, max) {
                proptest::prop_assert!(!ok.jti.is_empty() && ok.jti.len() <= MAX_JTI_BYTES);
                proptest::prop_assert!(ok.exp.saturating_sub(now) <= max.saturating_add(CLOCK_SKEW_SECONDS));
            }
        }

        #[test]
        fn an_assertion_living_past_the_cap_is_always_refused(ahead in 361i64..i64::MAX / 4) {
            let claims = json!({ "sub": "alice", "aud": ISSUER, "exp": NOW + ahead, "jti": "j" });
            proptest::prop_assert!(matches!(check_grant_claims(&claims, ISSUER, NOW, 300), Err(GrantRejected::TooLong(..))));
        }

        #[test]
        fn any_text_as_a_client_assertion_is_refused_without_panicking(token in ".{0,300}") {
            let k = key(SigningAlgorithm::ES256);
            proptest::prop_assert!(verify_client_assertion(&token, &set(&k), "agent", ISSUER, NOW).is_err());
        }

        #[test]
        fn any_three_part_token_is_refused_without_panicking(header in ".{0,80}", body in ".{0,80}", sig in "[A-Za-z0-9_-]{0,40}") {
            let k = key(SigningAlgorithm::ES256);
            let token = format!("{}.{}.{sig}", b64(&header), b64(&body));
            let _ = jsonwebtoken::decode_header(&token);
            proptest::prop_assert!(verify_client_assertion(&token, &set(&k), "agent", ISSUER, NOW).is_err());
        }
    }
}
