//! The issuer identifier (RFC 8414 §2) and the URLs derived from it: endpoints live under the
//! issuer's path, discovery documents at every well-known form MCP clients probe (specs AS-1).

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    url: String,
    /// The issuer's path without a trailing slash: "" or e.g. "/tenant1".
    path: String,
}

impl Issuer {
    /// An https URL without query or fragment; plain http only for loopback development.
    pub fn parse(input: &str) -> Result<Self, String> {
        let url = url::Url::parse(input).map_err(|e| format!("{input:?} is not an absolute URL ({e})"))?;
        if url.query().is_some() || url.fragment().is_some() || input.contains('?') || input.contains('#') {
            return Err("must not have a query or fragment (RFC 8414 §2)".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain user information".into());
        }
        let host = url.host_str().ok_or("must have a host")?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => {
                return Err("must use https (plain http is accepted only for localhost and loopback addresses)".into());
            }
            other => return Err(format!("scheme {other} is not https")),
        }
        if input.ends_with('/') {
            return Err("must not end with a slash".into());
        }
        let path = url.path().trim_end_matches('/').to_owned();
        let url = format!("{}{}", url.origin().ascii_serialization(), path);
        Ok(Self { url, path })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The path prefix the issuer's endpoints are mounted under ("" at the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The absolute URL of an endpoint, e.g. `endpoint("/token")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Paths (relative to the host) at which the discovery documents are served.
    pub fn discovery_paths(&self) -> Vec<String> {
        let p = &self.path;
        let mut paths = vec![
            format!("/.well-known/oauth-authorization-server{p}"),
            format!("/.well-known/openid-configuration{p}"),
        ];
        if !p.is_empty() {
            // Path-appended forms: OpenID Connect Discovery §4, and RFC 8414 clients that append.
            paths.push(format!("{p}/.well-known/openid-configuration"));
            paths.push(format!("{p}/.well-known/oauth-authorization-server"));
        }
        paths
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_with_path_has_every_well_known_form() {
        let i = Issuer::parse("https://auth.example.com/t1").unwrap();
        assert_eq!(i.endpoint("/token"), "https://auth.example.com/t1/token");
        assert_eq!(
            i.discovery_paths(),
            vec![
                "/.well-known/oauth-authorization-server/t1",
                "/.well-known/openid-configuration/t1",
                "/t1/.well-known/openid-configuration",
                "/t1/.well-known/oauth-authorization-server",
            ]
        );
    }

    #[test]
    fn refuses_plain_http_off_loopback_and_queries() {
        assert!(Issuer::parse("http://127.0.0.1:8080").is_ok());
        assert!(Issuer::parse("http://[::1]:8080").is_ok());
        assert!(Issuer::parse("http://auth.example.com").is_err());
        assert!(Issuer::parse("https://auth.example.com/?a=b").is_err());
        assert!(Issuer::parse("https://auth.example.com/").is_err());
    }
}
