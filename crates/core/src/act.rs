//! RFC 8693 §4.1 `act` (actor) and §4.4 `may_act`: who acts for the token's subject. The outermost
//! `act` is the current actor; earlier actors nest inside it, oldest innermost, so a token carries
//! its chain of custody from the person through every agent.
//!
//! An actor with an `iss` is another server's principal: its `sub` is in that issuer's namespace,
//! never one of this server's clients. Such names are written `<iss>#<sub>` wherever a chain is
//! shown ([`Actor::chain`], [`foreign_name`]); an issuer identifier has no fragment, so the form is
//! unambiguous.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest `sub` or `iss` accepted in an actor from another server.
pub const MAX_ACTOR_FIELD_BYTES: usize = 512;

/// One actor, and the actors before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
    /// The actor's issuer, when it is not this server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

/// Why an `act` or `may_act` claim from another server was refused; the text is client-safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActRejected {
    #[error("each actor must be a JSON object with a string sub")]
    Malformed,
    #[error("an actor's sub or iss is empty or longer than {MAX_ACTOR_FIELD_BYTES} bytes")]
    BadField,
    #[error("the chain holds more than {0} actors")]
    TooDeep(usize),
}

/// How another server's principal is named here: `<iss>#<sub>`.
pub fn foreign_name(iss: &str, sub: &str) -> String {
    format!("{iss}#{sub}")
}

impl Actor {
    pub fn new(sub: impl Into<String>, iss: Option<String>) -> Self {
        Self { sub: sub.into(), iss, act: None }
    }

    /// `actor` acting now, after the chain `prior` (if any).
    pub fn after(mut actor: Actor, prior: Option<Actor>) -> Self {
        actor.act = prior.map(Box::new);
        actor
    }

    /// Reads an `act` (or `may_act`) claim of an untrusted JWT: every actor an object with a
    /// non-empty `sub` and optional `iss` (strings of at most [`MAX_ACTOR_FIELD_BYTES`]), at most
    /// `max_depth` actors. Other members are ignored (RFC 8693 §4.1). The walk is iterative, so
    /// no input can exhaust the stack.
    pub fn from_claim(value: &Value, max_depth: usize) -> Result<Actor, ActRejected> {
        let field = |v: Option<&Value>, required: bool| -> Result<Option<String>, ActRejected> {
            match v {
                None | Some(Value::Null) if !required => Ok(None),
                Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ACTOR_FIELD_BYTES => Ok(Some(s.clone())),
                Some(Value::String(_)) => Err(ActRejected::BadField),
                _ => Err(ActRejected::Malformed),
            }
        };
        let mut links = Vec::new();
        let mut next = Some(value);
        while let Some(v) = next {
            if links.len() == max_depth {
                return Err(ActRejected::TooDeep(max_depth));
            }
            let obj = v.as_object().ok_or(ActRejected::Malformed)?;
            let sub = field(obj.get("sub"), true)?.ok_or(ActRejected::Malformed)?;
            let iss = field(obj.get("iss"), false)?;
            links.push((sub, iss));
            next = match obj.get("act") {
                None | Some(Value::Null) => None,
                Some(inner) => Some(inner),
            };
        }
        let mut chain: Option<Actor> = None;
        for (sub, iss) in links.into_iter().rev() {
            chain = Some(Actor::after(Actor::new(sub, iss), chain));
        }
        chain.ok_or(ActRejected::Malformed)
    }

    /// The same chain, every actor without an issuer marked as `iss`'s: how another server's
    /// chain is kept here, so that none of its actors can pass for one of this server's clients.
    pub fn from_issuer(mut self, iss: &str) -> Actor {
        let mut link = Some(&mut self);
        while let Some(actor) = link {
            if actor.iss.is_none() {
                actor.iss = Some(iss.to_owned());
            }
            link = actor.act.as_deref_mut();
        }
        self
    }

    /// Whether an actor of the chain claims issuer `iss`.
    pub fn names_issuer(&self, iss: &str) -> bool {
        let mut link = Some(self);
        while let Some(actor) = link {
            if actor.iss.as_deref() == Some(iss) {
                return true;
            }
            link = actor.act.as_deref();
        }
        false
    }

    /// How many actors the chain holds.
    pub fn depth(&self) -> usize {
        let mut depth = 0;
        let mut link = Some(self);
        while let Some(actor) = link {
            depth += 1;
            link = actor.act.as_deref();
        }
        depth
    }

    /// The actors, current first: this server's clients by their `sub`, other servers' principals
    /// as `<iss>#<sub>`, so that the two never look alike in the lineage or the audit log.
    pub fn chain(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut link = Some(self);
        while let Some(actor) = link {
            out.push(match &actor.iss {
                Some(iss) => foreign_name(iss, &actor.sub),
                None => actor.sub.clone(),
            });
            link = actor.act.as_deref();
        }
        out
    }

    /// Whether `self` (a `may_act` claim) names this actor: the same `sub`, and the same `iss`
    /// when `may_act` gives one.
    pub fn permits(&self, sub: &str, iss: Option<&str>) -> bool {
        self.sub == sub && self.iss.as_deref().is_none_or(|i| Some(i) == iss)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn nesting_keeps_the_oldest_innermost() {
        let first = Actor::new("agent-a", None);
        let second = Actor::after(Actor::new("mcp-b", None), Some(first));
        let third = Actor::after(Actor::new("api-c", None), Some(second));
        assert_eq!(third.chain(), ["api-c", "mcp-b", "agent-a"]);
        assert_eq!(third.depth(), 3);
        let json = serde_json::to_value(&third).unwrap();
        assert_eq!(json, serde_json::json!({"sub": "api-c", "act": {"sub": "mcp-b", "act": {"sub": "agent-a"}}}));
        let back: Actor = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, third);
        assert_eq!(Actor::from_claim(&json, 3).unwrap(), third);
    }

    #[test]
    fn may_act_matches_subject_and_issuer_when_given() {
        let may = Actor::new("mcp-b", Some("https://as.example".into()));
        assert!(may.permits("mcp-b", Some("https://as.example")));
        assert!(!may.permits("mcp-b", None));
        assert!(!may.permits("other", Some("https://as.example")));
        assert!(Actor::new("mcp-b", None).permits("mcp-b", Some("https://anyone")));
    }

    #[test]
    fn a_foreign_chain_is_marked_with_its_issuer_and_shown_qualified() {
        let claim = json!({ "sub": "desktop", "act": { "sub": "mcp-b", "iss": "https://third.example" } });
        let chain = Actor::from_claim(&claim, 4).unwrap().from_issuer("https://partner.example");
        assert_eq!(chain.chain(), ["https://partner.example#desktop", "https://third.example#mcp-b"]);
        assert!(chain.names_issuer("https://third.example"));
        assert!(!chain.names_issuer("https://as.example"));
    }

    #[test]
    fn malformed_claims_are_refused() {
        for bad in [json!("alice"), json!({}), json!({ "sub": 7 }), json!({ "sub": "a", "act": [] })] {
            assert_eq!(Actor::from_claim(&bad, 4), Err(ActRejected::Malformed), "{bad}");
        }
        assert_eq!(Actor::from_claim(&json!({ "sub": "" }), 4), Err(ActRejected::BadField));
        assert_eq!(Actor::from_claim(&json!({ "sub": "a", "iss": "" }), 4), Err(ActRejected::BadField));
        let long = "x".repeat(MAX_ACTOR_FIELD_BYTES + 1);
        assert_eq!(Actor::from_claim(&json!({ "sub": long }), 4), Err(ActRejected::BadField));
    }

    /// A JSON chain of `n` actors, innermost `act` last.
    fn nested(n: usize) -> Value {
        let mut v = json!({ "sub": format!("actor-{n}") });
        for i in (1..n).rev() {
            v = json!({ "sub": format!("actor-{i}"), "act": v });
        }
        v
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(8, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![Just("sub".to_owned()), Just("iss".to_owned()), Just("act".to_owned()), ".{0,4}"],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_is_read_or_refused_without_panicking(value in arbitrary_json(), limit in 0usize..20) {
            if let Ok(actor) = Actor::from_claim(&value, limit) {
                prop_assert!(actor.depth() <= limit);
                prop_assert!(actor.chain().iter().all(|s| !s.is_empty()));
            }
        }

        #[test]
        fn a_chain_deeper_than_the_limit_is_always_refused(limit in 1usize..17, extra in 1usize..40) {
            let claim = nested(limit + extra);
            prop_assert_eq!(Actor::from_claim(&claim, limit), Err(ActRejected::TooDeep(limit)));
            let within = Actor::from_claim(&nested(limit), limit).unwrap();
            prop_assert_eq!(within.depth(), limit);
        }

        #[test]
        fn marking_keeps_the_depth_and_qualifies_every_unmarked_actor(n in 1usize..16) {
            let chain = Actor::from_claim(&nested(n), 16).unwrap().from_issuer("https://p.example");
            prop_assert_eq!(chain.depth(), n);
            prop_assert!(chain.chain().iter().all(|s| s.starts_with("https://p.example#")));
        }
    }
}
