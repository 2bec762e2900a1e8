//! Protected resources and their canonical URIs (RFC 8707 §2, MCP authorization "canonical server URI").

use std::fmt;

use crate::scope::ScopeSet;

/// A resource indicator in canonical form: absolute http(s) URI, lowercase scheme and host, no
/// default port, no fragment, and no trailing slash on an empty path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceUri(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidResourceUri {
    #[error("is not an absolute URI")]
    NotAbsolute,
    #[error("must use http or https")]
    Scheme,
    #[error("must not contain a fragment (RFC 8707 §2)")]
    Fragment,
    #[error("must not contain user information")]
    UserInfo,
}

impl ResourceUri {
    pub fn parse(input: &str) -> Result<Self, InvalidResourceUri> {
        let url = url::Url::parse(input).map_err(|_| InvalidResourceUri::NotAbsolute)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InvalidResourceUri::Scheme);
        }
        if url.fragment().is_some() || input.contains('#') {
            return Err(InvalidResourceUri::Fragment);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidResourceUri::UserInfo);
        }
        let host = url.host_str().ok_or(InvalidResourceUri::NotAbsolute)?;
        let mut canonical = format!("{}://{}", url.scheme(), host);
        if let Some(port) = url.port() {
            canonical.push_str(&format!(":{port}"));
        }
        if url.path() != "/" {
            canonical.push_str(url.path());
        }
        if let Some(query) = url.query() {
            canonical.push('?');
            canonical.push_str(query);
        }
        Ok(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A protected resource (an MCP server, an API) tokens can be issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub uri: ResourceUri,
    pub name: String,
    pub scopes: ScopeSet,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_case_default_port_and_root_slash() {
        let a = ResourceUri::parse("HTTPS://MCP.Example.com:443/").unwrap();
        assert_eq!(a.as_str(), "https://mcp.example.com");
        let b = ResourceUri::parse("http://127.0.0.1:9090/mcp").unwrap();
        assert_eq!(b.as_str(), "http://127.0.0.1:9090/mcp");
    }

    #[test]
    fn refuses_fragments_relative_and_other_schemes() {
        assert_eq!(ResourceUri::parse("https://a.example/x#f"), Err(InvalidResourceUri::Fragment));
        assert_eq!(ResourceUri::parse("/mcp"), Err(InvalidResourceUri::NotAbsolute));
        assert_eq!(ResourceUri::parse("urn:x:y"), Err(InvalidResourceUri::Scheme));
    }
}
