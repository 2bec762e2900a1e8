//! The `Bearer` challenge of a `WWW-Authenticate` header (RFC 6750 §3, RFC 9728 §5.1): the
//! `resource_metadata` URL, the `scope` the operation needs and the `error`.

use std::collections::HashMap;

/// The parameters of the `Bearer` challenge in a `WWW-Authenticate` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl Challenge {
    /// Parses the `Bearer` challenge of `header`; other schemes (e.g. `DPoP`) are skipped. A header
    /// without a `Bearer` challenge gives an empty [`Challenge`].
    pub fn parse(header: &str) -> Self {
        let mut params = HashMap::new();
        for (scheme, challenge_params) in parse_challenges(header) {
            if scheme.eq_ignore_ascii_case("bearer") {
                params = challenge_params;
                break;
            }
        }
        let mut take = |name: &str| params.remove(name).filter(|v| !v.is_empty());
        Self {
            resource_metadata: take("resource_metadata"),
            scope: take("scope"),
            error: take("error"),
            error_description: take("error_description"),
        }
    }

    /// The scopes the challenge asks for, split on spaces.
    pub fn scopes(&self) -> Vec<String> {
        self.scope.as_deref().map(split_scopes).unwrap_or_default()
    }

    pub fn is_insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some("insufficient_scope")
    }
}

pub(crate) fn split_scopes(scope: &str) -> Vec<String> {
    scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Splits a `WWW-Authenticate` value into `(scheme, params)` pairs (RFC 9110 §11.6.1). Parameter
/// names are lowercased; `token68` credentials are ignored.
fn parse_challenges(header: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut out: Vec<(String, HashMap<String, String>)> = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        let token_end = rest.find(|c: char| !is_tchar(c)).unwrap_or(rest.len());
        if token_end == 0 {
            // Not a token: skip one character so malformed input cannot loop.
            let mut chars = rest.chars();
            chars.next();
            rest = chars.as_str();
            continue;
        }
        let token = &rest[..token_end];
        let after = rest[token_end..].trim_start_matches([' ', '\t']);
        if let Some(value_part) = after.strip_prefix('=').filter(|_| !out.is_empty()) {
            // An auth-param of the current challenge.
            let value_part = value_part.trim_start_matches([' ', '\t']);
            let (value, remaining) = parse_value(value_part);
            if let Some((_, params)) = out.last_mut() {
                params.insert(token.to_ascii_lowercase(), value);
            }
            rest = remaining;
        } else {
            // A new scheme.
            out.push((token.to_owned(), HashMap::new()));
            rest = after;
        }
    }
    out
}

fn parse_value(input: &str) -> (String, &str) {
    if let Some(quoted) = input.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, &quoted[i + 1..]),
                c => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = input.find([',', ' ', '\t']).unwrap_or(input.len());
        (input[..end].to_owned(), &input[end..])
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parameters_quoted_and_bare() {
        let c = Challenge::parse(
            r#"Bearer error="insufficient_scope", scope="mcp:basic mcp:write", resource_metadata="http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp", error_description="needs \"write\"""#,
        );
        assert!(c.is_insufficient_scope());
        assert_eq!(c.scopes(), ["mcp:basic", "mcp:write"]);
        assert_eq!(c.resource_metadata.as_deref(), Some("http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp"));
        assert_eq!(c.error_description.as_deref(), Some(r#"needs "write""#));

        let bare = Challenge::parse("Bearer realm=mcp, error=invalid_token");
        assert_eq!(bare.error.as_deref(), Some("invalid_token"));
    }

    #[test]
    fn bearer_found_among_other_schemes() {
        let c = Challenge::parse(r#"DPoP algs="ES256", scope="other", Bearer scope="mcp:read""#);
        assert_eq!(c.scope.as_deref(), Some("mcp:read"));
        assert_eq!(Challenge::parse(r#"Basic realm="x""#), Challenge::default());
        assert_eq!(Challenge::parse("Bearer"), Challenge::default());
    }

    proptest::proptest! {
        /// Any header text parses without panicking or looping; a Bearer challenge written by a
        /// well-behaved server round-trips whatever else surrounds it.
        #[test]
        fn any_header_parses_and_bearer_parameters_round_trip(
            junk in "\\PC{0,80}",
            scope in "[a-z:]{1,10}( [a-z:]{1,10}){0,3}",
            other in "[A-Za-z]{1,8}",
        ) {
            let _ = Challenge::parse(&junk);
            let header = format!(r#"{other} realm="x", Bearer error="insufficient_scope", scope="{scope}""#);
            let c = Challenge::parse(&header);
            if !other.eq_ignore_ascii_case("bearer") {
                proptest::prop_assert_eq!(c.scope.as_deref(), Some(scope.as_str()));
                proptest::prop_assert!(c.is_insufficient_scope());
            }
        }
    }

    #[test]
    fn malformed_headers_do_not_panic() {
        for junk in ["", "=", "Bearer scope=\"unterminated", ",,,", "Bearer ==", "\u{1F600} x=y", "Bearer a=\"\\"] {
            let _ = Challenge::parse(junk);
        }
    }
}
