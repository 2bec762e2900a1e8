//! The agent's own key for `private_key_jwt` (RFC 7523 §2.2): ES256 (P-256) or EdDSA (Ed25519),
//! read from a PKCS#8 PEM file or a private JWK, and the client assertions it signs.

use std::fmt;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::error::AgentError;

/// RFC 7523 §2.2.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A private signing key. Debug output never shows key material.
#[derive(Clone)]
pub struct ClientKey {
    alg: Algorithm,
    encoding: EncodingKey,
    /// The public JWK (with `kid` = its RFC 7638 thumbprint), for registering the client.
    pub public_jwk: Jwk,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey").field("alg", &self.alg).field("kid", &self.kid()).finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Reads a key from a PEM (`PRIVATE KEY`, PKCS#8) or a private JWK (`{"kty":"EC",...,"d":...}`).
    pub fn from_text(text: &str) -> Result<Self, AgentError> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') { Self::from_jwk_json(trimmed) } else { Self::from_pem(trimmed) }
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, AgentError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AgentError::Key(format!("cannot read {}: {e}", path.display())))?;
        Self::from_text(&text)
    }

    pub fn from_pem(pem_text: &str) -> Result<Self, AgentError> {
        let block = pem::parse(pem_text).map_err(|e| AgentError::Key(format!("not a PEM key: {e}")))?;
        if block.tag() != "PRIVATE KEY" {
            return Err(AgentError::Key(format!(
                "PEM block {:?}: expected a PKCS#8 \"PRIVATE KEY\" (convert with `openssl pkcs8 -topk8 -nocrypt`)",
                block.tag()
            )));
        }
        Self::from_pkcs8(block.contents())
    }

    /// A PKCS#8 DER key: P-256 (ES256) or Ed25519 (EdDSA).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, AgentError> {
        if EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).is_ok() {
            return Self::build(Algorithm::ES256, EncodingKey::from_ec_der(der));
        }
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            // jsonwebtoken signs with PKCS#8 v1 Ed25519 keys.
            let v1 = pair.to_pkcs8v1().map_err(|_| AgentError::Key("cannot re-encode the Ed25519 key".into()))?;
            return Self::build(Algorithm::EdDSA, EncodingKey::from_ed_der(v1.as_ref()));
        }
        Err(AgentError::Key("unsupported key: only P-256 (ES256) and Ed25519 (EdDSA) private keys".into()))
    }

    fn from_jwk_json(json: &str) -> Result<Self, AgentError> {
        #[derive(serde::Deserialize)]
        struct PrivateJwk {
            kty: String,
            crv: Option<String>,
            x: Option<String>,
            y: Option<String>,
            d: Option<String>,
        }
        let jwk: PrivateJwk = serde_json::from_str(json).map_err(|e| AgentError::Key(format!("not a JWK: {e}")))?;
        let b64 = |field: &str, v: Option<String>| {
            v.ok_or_else(|| AgentError::Key(format!("the JWK has no {field:?}"))).and_then(|v| {
                URL_SAFE_NO_PAD.decode(v).map_err(|_| AgentError::Key(format!("JWK {field:?} is not base64url")))
            })
        };
        let bad = |_| AgentError::Key("the JWK's private and public parts do not form a valid key".into());
        let der = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("EC", Some("P-256")) => {
                let d = b64("d", jwk.d)?;
                let mut point = vec![4u8];
                point.extend(b64("x", jwk.x)?);
                point.extend(b64("y", jwk.y)?);
                let pair = EcdsaKeyPair::from_private_key_and_public_key(&ECDSA_P256_SHA256_FIXED_SIGNING, &d, &point)
                    .map_err(bad)?;
                pair.to_pkcs8v1().map_err(|_| AgentError::Key("cannot encode the key".into()))?.as_ref().to_vec()
            }
            ("OKP", Some("Ed25519")) => {
                let pair =
                    Ed25519KeyPair::from_seed_and_public_key(&b64("d", jwk.d)?, &b64("x", jwk.x)?).map_err(bad)?;
                pair.to_pkcs8v1().map_err(|_| AgentError::Key("cannot encode the key".into()))?.as_ref().to_vec()
            }
            (kty, crv) => {
                return Err(AgentError::Key(format!(
                    "unsupported JWK kty {kty:?} crv {crv:?}: only EC P-256 and OKP Ed25519"
                )));
            }
        };
        Self::from_pkcs8(&der)
    }

    /// A new random ES256 key, e.g. for a client ID metadata document the agent publishes.
    pub fn generate_es256() -> Result<Self, AgentError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| AgentError::Key("key generation failed".into()))?;
        Self::from_pkcs8(doc.as_ref())
    }

    fn build(alg: Algorithm, encoding: EncodingKey) -> Result<Self, AgentError> {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(|e| AgentError::Key(e.to_string()))?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| AgentError::Key(e.to_string()))?;
        jwk.common.key_id = Some(kid);
        Ok(Self { alg, encoding, public_jwk: jwk })
    }

    pub fn algorithm(&self) -> &'static str {
        match self.alg {
            Algorithm::EdDSA => "EdDSA",
            _ => "ES256",
        }
    }

    pub fn kid(&self) -> Option<&str> {
        self.public_jwk.common.key_id.as_deref()
    }

    /// Signs `claims` with this key's `alg`, `kid` and the given `typ`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, AgentError> {
        let mut header = Header::new(self.alg);
        header.typ = Some(typ.to_owned());
        header.kid = self.kid().map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| AgentError::Key(format!("signing failed: {e}")))
    }

    /// An RFC 7523 client assertion: `iss` = `sub` = the client, `aud` = the authorization
    /// server's issuer identifier (RFC 10070), one minute of life and a fresh `jti`.
    pub fn client_assertion(&self, client_id: &str, issuer: &str) -> Result<String, AgentError> {
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            jti: String,
            iat: u64,
            exp: u64,
        }
        let now = crate::now_unix();
        self.sign(
            "JWT",
            &Claims {
                iss: client_id,
                sub: client_id,
                aud: issuer,
                jti: crate::random_token(),
                iat: now,
                exp: now + 60,
            },
        )
    }

    /// The public key as PEM-free JSON (a JWK set with this one key), for `jwks` in client metadata.
    pub fn public_jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.public_jwk] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn verify(key: &ClientKey, token: &str, alg: Algorithm) -> serde_json::Value {
        let decoding = DecodingKey::from_jwk(&key.public_jwk).unwrap();
        let mut validation = Validation::new(alg);
        validation.set_audience(&["https://as.example"]);
        jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation).unwrap().claims
    }

    #[test]
    fn es256_pem_signs_assertions_the_public_jwk_verifies() {
        let generated = ClientKey::generate_es256().unwrap();
        let assertion = generated.client_assertion("agent-1", "https://as.example").unwrap();
        let claims = verify(&generated, &assertion, Algorithm::ES256);
        assert_eq!(claims["iss"], "agent-1");
        assert_eq!(claims["sub"], "agent-1");
        assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());
        let header = jsonwebtoken::decode_header(&assertion).unwrap();
        assert_eq!(header.kid.as_deref(), generated.kid());
    }

    #[test]
    fn ed25519_and_jwk_inputs() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", ed.as_ref().to_vec()));
        let key = ClientKey::from_text(&pem).unwrap();
        assert_eq!(key.algorithm(), "EdDSA");
        let token = key.client_assertion("agent-2", "https://as.example").unwrap();
        assert_eq!(verify(&key, &token, Algorithm::EdDSA)["sub"], "agent-2");
    }

    #[test]
    fn private_jwk_rfc7517_example() {
        // RFC 7517 Appendix A.2, the example EC P-256 private key.
        let jwk = r#"{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE","use":"enc","kid":"1"}"#;
        let key = ClientKey::from_text(jwk).unwrap();
        assert_eq!(key.algorithm(), "ES256");
        let token = key.client_assertion("agent-3", "https://as.example").unwrap();
        assert_eq!(verify(&key, &token, Algorithm::ES256)["iss"], "agent-3");
        let tampered = jwk.replace("870MB6", "970MB6");
        assert!(ClientKey::from_text(&tampered).is_err(), "a private part that does not match x/y is refused");
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for junk in [
            "",
            "{}",
            r#"{"kty":"RSA"}"#,
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
            "garbage",
        ] {
            assert!(matches!(ClientKey::from_text(junk), Err(AgentError::Key(_))), "{junk:?}");
        }
    }
}
