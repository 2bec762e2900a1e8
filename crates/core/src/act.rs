//! RFC 8693 §4.1 `act` (actor) and §4.4 `may_act`: who acts for the token's subject. The outermost
//! `act` is the current actor; earlier actors nest inside it, oldest innermost, so a token carries
//! its chain of custody from the person through every agent.

use serde::{Deserialize, Serialize};

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

impl Actor {
    pub fn new(sub: impl Into<String>, iss: Option<String>) -> Self {
        Self { sub: sub.into(), iss, act: None }
    }

    /// `actor` acting now, after the chain `prior` (if any).
    pub fn after(mut actor: Actor, prior: Option<Actor>) -> Self {
        actor.act = prior.map(Box::new);
        actor
    }

    /// How many actors the chain holds.
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |a| a.depth())
    }

    /// The actors' subjects, current first.
    pub fn chain(&self) -> Vec<&str> {
        let mut out = vec![self.sub.as_str()];
        let mut next = self.act.as_deref();
        while let Some(a) = next {
            out.push(a.sub.as_str());
            next = a.act.as_deref();
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
        let back: Actor = serde_json::from_value(json).unwrap();
        assert_eq!(back, third);
    }

    #[test]
    fn may_act_matches_subject_and_issuer_when_given() {
        let may = Actor::new("mcp-b", Some("https://as.example".into()));
        assert!(may.permits("mcp-b", Some("https://as.example")));
        assert!(!may.permits("mcp-b", None));
        assert!(!may.permits("other", Some("https://as.example")));
        assert!(Actor::new("mcp-b", None).permits("mcp-b", Some("https://anyone")));
    }
}
