//! `mandate agent inspect`: what a JWT access token says (scopes, audience, expiry, the `act`
//! delegation chain) and whether its issuer's published keys verify it.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::discovery;
use crate::error::AgentError;
use crate::http::{Fetched, get_metadata};

/// Asymmetric algorithms only: never `none`, never HMAC (a public key is not a shared secret).
const ALLOWED: [Algorithm; 6] =
    [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256, Algorithm::RS384];

#[derive(Debug, Clone)]
pub struct Inspection {
    pub header: Value,
    pub claims: Value,
    /// `Ok(kid)` when the issuer's JWKS verifies the signature, else why not.
    pub signature: Result<String, String>,
}

impl Inspection {
    /// The `act` chain, newest actor first (RFC 8693 §4.1: the outermost `act` is the current actor).
    pub fn delegation_chain(&self) -> Vec<String> {
        let mut chain = Vec::new();
        let mut act = self.claims.get("act");
        while let Some(a) = act {
            chain.push(a.get("sub").and_then(Value::as_str).unwrap_or("?").to_owned());
            act = a.get("act");
        }
        chain
    }

    /// A human-readable summary.
    pub fn render(&self, now: u64) -> String {
        let c = &self.claims;
        let s = |k: &str| c.get(k).map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k:<12} {v}\n"));
        line("issuer", s("iss").unwrap_or_default());
        line("subject", s("sub").unwrap_or_default());
        line("client", s("client_id").unwrap_or_default());
        line("audience", s("aud").unwrap_or_default());
        line("scope", s("scope").unwrap_or_default());
        if let Some(exp) = c.get("exp").and_then(Value::as_u64) {
            let state = if exp > now { format!("in {} s", exp - now) } else { format!("EXPIRED {} s ago", now - exp) };
            line("expires", format!("{exp} ({state})"));
        }
        let chain = self.delegation_chain();
        if !chain.is_empty() {
            line("acting", chain.join(" ← "));
        }
        line("jti", s("jti").unwrap_or_default());
        line(
            "signature",
            match &self.signature {
                Ok(kid) => format!("valid (key {kid} of the issuer's JWKS)"),
                Err(why) => format!("NOT VERIFIED: {why}"),
            },
        );
        out
    }
}

fn decode_part(part: &str) -> Result<Value, AgentError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| AgentError::Token("not base64url".into()))?;
    serde_json::from_slice(&bytes).map_err(|_| AgentError::Token("not JSON".into()))
}

/// Decodes `token` and checks its signature against the JWKS of the issuer it names.
pub async fn inspect(http: &reqwest::Client, token: &str) -> Result<Inspection, AgentError> {
    let token = token.trim();
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(AgentError::Token("not a JWS compact serialization (three dot-separated parts)".into()));
    }
    let header = decode_part(parts[0])?;
    let claims = decode_part(parts[1])?;
    let signature = verify(http, token, &claims).await;
    Ok(Inspection { header, claims, signature })
}

async fn verify(http: &reqwest::Client, token: &str, claims: &Value) -> Result<String, String> {
    let issuer = claims.get("iss").and_then(Value::as_str).ok_or("the token names no issuer")?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if !ALLOWED.contains(&header.alg) {
        return Err(format!("algorithm {:?} is not accepted", header.alg));
    }
    let metadata = discovery::discover_authorization_server(http, issuer).await.map_err(|e| e.to_string())?;
    let jwks_uri = metadata.jwks_uri.as_deref().ok_or("the issuer publishes no jwks_uri")?;
    let jwks_url = discovery::parse_url(jwks_uri).map_err(|e| e.to_string())?;
    let jwks: JwkSet = match get_metadata(http, &jwks_url, "a JWK set").await.map_err(|e| e.to_string())? {
        Fetched::Found(jwks) => jwks,
        Fetched::Absent(status) => return Err(format!("{jwks_url} answered {status}")),
    };
    let kid = header.kid.as_deref().ok_or("the token has no kid")?;
    let jwk = jwks.find(kid).ok_or_else(|| format!("the issuer does not publish key {kid} (rotated out?)"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| e.to_string())?;
    Ok(kid.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegation_chain_newest_first() {
        let inspection = Inspection {
            header: Value::Null,
            claims: serde_json::json!({"sub": "alice", "act": {"sub": "agent-b", "act": {"sub": "agent-a"}}}),
            signature: Err("not checked".into()),
        };
        assert_eq!(inspection.delegation_chain(), ["agent-b", "agent-a"]);
        let text = inspection.render(0);
        assert!(text.contains("agent-b ← agent-a"), "{text}");
        assert!(text.contains("NOT VERIFIED"), "{text}");
    }

    #[tokio::test]
    async fn garbage_is_a_clear_error() {
        let http = reqwest::Client::new();
        for junk in ["", "a.b", "a.b.c", "!!.??.xx"] {
            assert!(matches!(inspect(&http, junk).await, Err(AgentError::Token(_))), "{junk:?}");
        }
    }
}
