//! Scopes (RFC 6749 §3.3): a set of scope tokens, parsed from and printed as a space-delimited string.

use std::collections::BTreeSet;
use std::fmt;

/// A set of valid scope tokens, ordered so that printed scopes are stable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope token {0:?} contains characters RFC 6749 §3.3 does not allow")]
pub struct InvalidScopeToken(pub String);

impl ScopeSet {
    /// Parses `scope` as sent by a client: tokens separated by single or repeated spaces.
    pub fn parse(scope: &str) -> Result<Self, InvalidScopeToken> {
        scope.split(' ').filter(|t| !t.is_empty()).map(Self::check).collect::<Result<_, _>>().map(Self)
    }

    /// Builds a set from configured tokens, checking each one.
    pub fn from_tokens<I, S>(tokens: I) -> Result<Self, InvalidScopeToken>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        tokens.into_iter().map(|t| Self::check(t.as_ref())).collect::<Result<_, _>>().map(Self)
    }

    fn check(token: &str) -> Result<String, InvalidScopeToken> {
        // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
        let ok = !token.is_empty()
            && token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if ok { Ok(token.to_owned()) } else { Err(InvalidScopeToken(token.to_owned())) }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.union(&other.0).cloned().collect())
    }

    /// The tokens of `self` that `allowed` lacks.
    pub fn difference(&self, allowed: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.difference(&allowed.0).cloned().collect())
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeated_spaces_and_prints_sorted() {
        let s = ScopeSet::parse("tools:call  tools:read").unwrap();
        assert_eq!(s.to_string(), "tools:call tools:read");
    }

    #[test]
    fn refuses_quotes_and_backslashes() {
        assert!(ScopeSet::parse("a\"b").is_err());
        assert!(ScopeSet::parse("a\\b").is_err());
        assert!(ScopeSet::parse("tab\there").is_err());
    }
}
