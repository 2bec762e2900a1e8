//! What a verified access token says, handed to handlers: who (subject), which agent (client),
//! what it may do (scopes, authorization details), on whose behalf through which chain (`act`,
//! RFC 8693), and what runtime attested it.

use std::collections::BTreeSet;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Serialize;
use serde_json::{Map, Value};

/// The claims of a verified token (a JWT's payload, or an active introspection response).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifiedToken {
    pub issuer: String,
    /// The person (or, for client credentials, the agent) the token acts for.
    pub subject: String,
    /// The agent holding the token.
    pub client_id: String,
    pub scopes: BTreeSet<String>,
    pub expires_at: i64,
    pub jti: Option<String>,
    /// RFC 8693 `act`: the current actor, whose own `act` is the one before it.
    pub act: Option<Value>,
    /// RFC 9396 rich authorization requests.
    pub authorization_details: Option<Value>,
    /// What the agent's runtime attested (mandate's `attestation` claim).
    pub attestation: Option<Value>,
    /// Every claim, for what the fields above do not cover.
    pub claims: Map<String, Value>,
}

impl VerifiedToken {
    /// Reads the standard fields from a claims object; `None` when one that must be there is not.
    pub(crate) fn from_claims(claims: Map<String, Value>) -> Option<Self> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let scopes = text("scope").map(|s| s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect());
        Some(Self {
            issuer: text("iss")?,
            subject: text("sub")?,
            client_id: text("client_id")?,
            scopes: scopes.unwrap_or_default(),
            expires_at: claims.get("exp").and_then(Value::as_i64)?,
            jti: text("jti"),
            act: claims.get("act").cloned(),
            authorization_details: claims.get("authorization_details").cloned(),
            attestation: claims.get("attestation").cloned(),
            claims,
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// The delegation chain, from the current actor back to the first one: each actor's `sub`
    /// (or `client_id`). Empty when the token was issued directly.
    pub fn delegation_chain(&self) -> Vec<String> {
        let mut chain = Vec::new();
        let mut actor = self.act.as_ref();
        while let Some(Value::Object(a)) = actor {
            let name = a.get("sub").or_else(|| a.get("client_id")).and_then(Value::as_str);
            chain.push(name.unwrap_or("(unnamed actor)").to_owned());
            actor = a.get("act");
            if chain.len() > 32 {
                break;
            }
        }
        chain
    }
}

/// Extractor for handlers behind [`crate::RequireBearerLayer`]: the verified token.
#[derive(Debug, Clone)]
pub struct Token(pub VerifiedToken);

impl<S: Send + Sync> FromRequestParts<S> for Token {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Without the layer there is nothing verified: a wiring mistake, not the client's.
        parts
            .extensions
            .get::<VerifiedToken>()
            .cloned()
            .map(Token)
            .ok_or((StatusCode::INTERNAL_SERVER_ERROR, "this route is not behind mandate_resource::RequireBearerLayer"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_delegation_chain_follows_nested_act() {
        let claims = json!({
            "iss": "https://as", "sub": "alice", "client_id": "agent-b", "exp": 10, "scope": "a b",
            "act": { "sub": "agent-b", "act": { "client_id": "agent-a" } },
        });
        let Value::Object(map) = claims else { unreachable!() };
        let t = VerifiedToken::from_claims(map).unwrap();
        assert_eq!(t.delegation_chain(), vec!["agent-b", "agent-a"]);
        assert!(t.has_scope("b") && !t.has_scope("c"));
        let Value::Object(no_sub) = json!({ "iss": "x", "client_id": "c", "exp": 1 }) else { unreachable!() };
        assert!(VerifiedToken::from_claims(no_sub).is_none());
    }
}
