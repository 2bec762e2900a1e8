//! Which delegated tokens a resource accepts. A token with `act` (RFC 8693 §4.1) is used by an
//! actor for its subject, the current actor outermost and earlier ones nested inside. A resource
//! may refuse such tokens, cap the chain's length, or accept only actors it lists, by `sub` (a
//! client id at the issuer). An actor with its own `iss` (RFC 8693 §4.1: an identity from another
//! issuer) is never taken for a listed client of the same name.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::challenge::Rejection;

/// Deeper chains are refused as malformed whatever the policy (the issuer caps them far lower).
const MAX_READ_DEPTH: usize = 32;

/// What a resource accepts of delegation chains; the default accepts every token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DelegationPolicy {
    pub(crate) refuse: bool,
    pub(crate) max_depth: Option<usize>,
    pub(crate) allowed_actors: Option<BTreeSet<String>>,
}

/// One actor of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Actor<'a> {
    sub: &'a str,
    iss: Option<&'a str>,
}

impl DelegationPolicy {
    /// Whether this policy accepts every token, so `act` need not even be read.
    pub(crate) fn accepts_all(&self) -> bool {
        !self.refuse && self.max_depth.is_none() && self.allowed_actors.is_none()
    }

    /// Checks the `act` claim of a token issued by `issuer`.
    pub(crate) fn check(&self, act: Option<&Value>, issuer: &str) -> Result<(), Rejection> {
        if self.accepts_all() {
            return Ok(());
        }
        let chain = actors(act).ok_or_else(|| {
            Rejection::InvalidToken("the access token's act claim is malformed (each actor needs a string sub)".into())
        })?;
        if chain.is_empty() {
            return Ok(());
        }
        let names = chain.iter().map(|a| a.sub).collect::<Vec<_>>().join(" <- ");
        if self.refuse {
            return Err(Rejection::DelegationRefused(format!(
                "this resource accepts no delegated tokens, and this one is used by {names} for its subject (act)"
            )));
        }
        if let Some(max) = self.max_depth
            && chain.len() > max
        {
            return Err(Rejection::DelegationRefused(format!(
                "the access token's delegation chain has {} actors ({names}); this resource accepts at most {max}",
                chain.len()
            )));
        }
        if let Some(allowed) = &self.allowed_actors
            && let Some(stranger) =
                chain.iter().find(|a| !(allowed.contains(a.sub) && a.iss.is_none_or(|iss| iss == issuer)))
        {
            let whose = match stranger.iss {
                Some(iss) if iss != issuer => " (of another issuer)",
                _ => "",
            };
            return Err(Rejection::DelegationRefused(format!(
                "actor {:?}{whose} in the access token's delegation chain ({names}) is not one this resource accepts",
                stranger.sub
            )));
        }
        Ok(())
    }
}

/// The chain, current actor first; `None` when `act` is not a chain of objects with a string
/// `sub` (and a string `iss`, if any).
fn actors(act: Option<&Value>) -> Option<Vec<Actor<'_>>> {
    let mut chain = Vec::new();
    let mut next = act;
    while let Some(actor) = next {
        let actor = actor.as_object()?;
        if chain.len() == MAX_READ_DEPTH {
            return None;
        }
        let iss = match actor.get("iss") {
            None => None,
            Some(iss) => Some(iss.as_str()?),
        };
        chain.push(Actor { sub: actor.get("sub")?.as_str()?, iss });
        next = actor.get("act");
    }
    Some(chain)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const AS: &str = "https://as.example";

    fn policy(refuse: bool, max_depth: Option<usize>, allowed: Option<&[&str]>) -> DelegationPolicy {
        DelegationPolicy {
            refuse,
            max_depth,
            allowed_actors: allowed.map(|a| a.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn refused(p: &DelegationPolicy, act: Value) -> Option<String> {
        match p.check(if act.is_null() { None } else { Some(&act) }, AS) {
            Ok(()) => None,
            Err(Rejection::DelegationRefused(m) | Rejection::InvalidToken(m)) => Some(m),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_rule_refuses_what_it_names() {
        let one = json!({"sub": "agent-a"});
        let two = json!({"sub": "mcp-b", "act": {"sub": "agent-a"}});
        let any = DelegationPolicy::default();
        assert!(any.accepts_all());
        assert_eq!(refused(&any, json!("not an actor")), None, "no policy, nothing read");

        let refuse = policy(true, None, None);
        assert_eq!(refused(&refuse, Value::Null), None, "a direct token");
        assert!(refused(&refuse, one.clone()).unwrap().contains("accepts no delegated tokens"));

        let depth = policy(false, Some(1), None);
        assert_eq!(refused(&depth, one.clone()), None);
        assert!(refused(&depth, two.clone()).unwrap().contains("2 actors (mcp-b <- agent-a)"));

        let listed = policy(false, None, Some(&["mcp-b", "agent-a"]));
        assert_eq!(refused(&listed, two.clone()), None);
        let only_b = policy(false, None, Some(&["mcp-b"]));
        assert!(refused(&only_b, two).unwrap().contains("actor \"agent-a\""), "every actor, not just the current");
        let foreign = json!({"sub": "agent-a", "iss": "https://partner.example"});
        assert!(refused(&listed, foreign).unwrap().contains("of another issuer"));
        assert_eq!(refused(&listed, json!({"sub": "agent-a", "iss": AS})), None);
    }

    #[test]
    fn a_malformed_chain_is_refused_once_there_is_a_policy() {
        let p = policy(false, Some(5), None);
        for act in [
            json!("agent-a"),
            json!({"client_id": "agent-a"}),
            json!({"sub": 7}),
            json!({"sub": "a", "iss": 1}),
            json!({"sub": "a", "act": "b"}),
        ] {
            assert!(refused(&p, act.clone()).unwrap().contains("malformed"), "{act}");
        }
        let mut deep = json!({"sub": "a"});
        for _ in 0..MAX_READ_DEPTH {
            deep = json!({"sub": "a", "act": deep});
        }
        assert!(refused(&policy(false, Some(100), None), deep).unwrap().contains("malformed"));
    }
}
