//! Discovery in the order the MCP authorization spec gives: the 401 challenge's
//! `resource_metadata`, then RFC 9728 protected resource metadata at the path-inserted and the root
//! well-known URLs, then the authorization server's RFC 8414 / OpenID metadata with the
//! path-insertion variants; and, for servers of the 2025-03-26 revision that have no resource
//! metadata, the authorization server at the MCP server's origin or its default endpoints.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::challenge::Challenge;
use crate::error::AgentError;
use crate::http::{Fetched, get_metadata};

/// RFC 9728 §2: what the MCP server says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

/// RFC 8414 §2 / OpenID Discovery: the fields an agent uses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl AuthorizationServerMetadata {
    /// RFC 8414 §2: without `grant_types_supported` the default is authorization code (and
    /// implicit, which nobody should use).
    pub fn supports_grant(&self, grant: &str) -> bool {
        match &self.grant_types_supported {
            Some(grants) => grants.iter().any(|g| g == grant),
            None => grant == "authorization_code",
        }
    }

    /// RFC 8414 §2: without `token_endpoint_auth_methods_supported` the default is
    /// `client_secret_basic`.
    pub fn supports_auth_method(&self, method: &str) -> bool {
        match &self.token_endpoint_auth_methods_supported {
            Some(methods) => methods.iter().any(|m| m == method),
            None => method == "client_secret_basic",
        }
    }

    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported.as_ref().is_some_and(|m| m.iter().any(|m| m == "S256"))
    }

    pub fn token_endpoint(&self) -> Result<Url, AgentError> {
        endpoint(&self.issuer, "token_endpoint", self.token_endpoint.as_deref())
    }

    pub fn authorization_endpoint(&self) -> Result<Url, AgentError> {
        endpoint(&self.issuer, "authorization_endpoint", self.authorization_endpoint.as_deref())
    }
}

fn endpoint(issuer: &str, name: &str, value: Option<&str>) -> Result<Url, AgentError> {
    let value = value.ok_or_else(|| AgentError::InvalidUrl {
        url: issuer.to_owned(),
        reason: format!("the authorization server metadata has no {name}"),
    })?;
    parse_url(value)
}

pub(crate) fn parse_url(value: &str) -> Result<Url, AgentError> {
    Url::parse(value).map_err(|e| AgentError::InvalidUrl { url: value.to_owned(), reason: e.to_string() })
}

/// Where an MCP server's authorization comes from.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The MCP server URL the agent was given.
    pub server_url: Url,
    /// The RFC 8707 `resource` sent on every authorization and token request: the protected
    /// resource metadata's `resource`, else the canonical server URL.
    pub resource: String,
    pub resource_metadata: Option<ProtectedResourceMetadata>,
    pub metadata: AuthorizationServerMetadata,
    /// The metadata came from the 2025-03-26 fallback (no protected resource metadata).
    pub legacy: bool,
    /// The metadata was not published at all: default endpoints at the server's origin.
    pub synthesized: bool,
}

impl Discovery {
    pub fn issuer(&self) -> &str {
        &self.metadata.issuer
    }
}

/// Runs discovery for `server_url`, starting from the challenge of its 401 when there is one.
pub async fn discover(
    http: &reqwest::Client,
    server_url: &Url,
    challenge: Option<&Challenge>,
) -> Result<Discovery, AgentError> {
    match discover_resource(http, server_url, challenge).await? {
        Some(prm) => {
            let mut last_error = None;
            for issuer in &prm.authorization_servers {
                match discover_authorization_server(http, issuer).await {
                    Ok(metadata) => {
                        return Ok(Discovery {
                            server_url: server_url.clone(),
                            resource: prm.resource.clone(),
                            resource_metadata: Some(prm),
                            metadata,
                            legacy: false,
                            synthesized: false,
                        });
                    }
                    Err(e) => {
                        tracing::warn!(issuer = %issuer, error = %e, "authorization server discovery failed");
                        last_error = Some(e);
                    }
                }
            }
            Err(last_error.unwrap_or(AgentError::NoAuthorizationServer { url: prm.resource.clone() }))
        }
        None => discover_legacy(http, server_url).await,
    }
}

/// The RFC 9728 locations to try, in order: the challenge's `resource_metadata`, the path-inserted
/// well-known URL, the root well-known URL.
pub fn resource_metadata_candidates(server_url: &Url, challenge: Option<&Challenge>) -> Vec<Url> {
    let mut out = Vec::new();
    if let Some(url) = challenge.and_then(|c| c.resource_metadata.as_deref()).and_then(|u| Url::parse(u).ok()) {
        out.push(url);
    }
    let path = server_url.path().trim_end_matches('/');
    let mut root = server_url.clone();
    root.set_query(None);
    root.set_fragment(None);
    if !path.is_empty() {
        let mut inserted = root.clone();
        inserted.set_path(&format!("/.well-known/oauth-protected-resource{path}"));
        out.push(inserted);
    }
    root.set_path("/.well-known/oauth-protected-resource");
    out.push(root);
    out.dedup();
    out
}

async fn discover_resource(
    http: &reqwest::Client,
    server_url: &Url,
    challenge: Option<&Challenge>,
) -> Result<Option<ProtectedResourceMetadata>, AgentError> {
    for candidate in resource_metadata_candidates(server_url, challenge) {
        match get_metadata::<ProtectedResourceMetadata>(http, &candidate, "protected resource metadata").await? {
            Fetched::Found(prm) => {
                check_resource_covers(server_url, &prm.resource)?;
                if prm.authorization_servers.is_empty() {
                    return Err(AgentError::NoAuthorizationServer { url: candidate.to_string() });
                }
                return Ok(Some(prm));
            }
            Fetched::Absent(status) => {
                tracing::debug!(url = %candidate, status, "no protected resource metadata here");
            }
        }
    }
    Ok(None)
}

/// RFC 9728 §3.3 and the MCP spec: the metadata's `resource` must identify the server the agent
/// is talking to: the same origin, and a path equal to the server URL's or a parent of it.
pub fn check_resource_covers(server_url: &Url, advertised: &str) -> Result<(), AgentError> {
    let mismatch =
        || AgentError::ResourceMismatch { requested: server_url.to_string(), advertised: advertised.to_owned() };
    let resource = Url::parse(advertised).map_err(|_| mismatch())?;
    if resource.origin() != server_url.origin() || resource.fragment().is_some() {
        return Err(mismatch());
    }
    let parent = resource.path().trim_end_matches('/');
    let path = server_url.path();
    let covered = parent.is_empty()
        || path.trim_end_matches('/') == parent
        || path.strip_prefix(parent).is_some_and(|rest| rest.starts_with('/'));
    if covered { Ok(()) } else { Err(mismatch()) }
}

/// The metadata URLs for `issuer` in the order the MCP spec gives: RFC 8414 path-inserted, OpenID
/// path-inserted, OpenID path-appended; or, without a path, RFC 8414 then OpenID at the root.
pub fn authorization_server_metadata_candidates(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let at = |p: String| {
        let mut u = issuer.clone();
        u.set_query(None);
        u.set_fragment(None);
        u.set_path(&p);
        u
    };
    if path.is_empty() {
        vec![at("/.well-known/oauth-authorization-server".into()), at("/.well-known/openid-configuration".into())]
    } else {
        vec![
            at(format!("/.well-known/oauth-authorization-server{path}")),
            at(format!("/.well-known/openid-configuration{path}")),
            at(format!("{path}/.well-known/openid-configuration")),
        ]
    }
}

/// Fetches the metadata of `issuer`, whose `issuer` must be exactly the one asked for
/// (RFC 8414 §3.3).
pub async fn discover_authorization_server(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<AuthorizationServerMetadata, AgentError> {
    let issuer_url = parse_url(issuer)?;
    let candidates = authorization_server_metadata_candidates(&issuer_url);
    for candidate in &candidates {
        if let Fetched::Found(metadata) =
            get_metadata::<AuthorizationServerMetadata>(http, candidate, "authorization server metadata").await?
        {
            if metadata.issuer != issuer {
                return Err(AgentError::IssuerMismatch {
                    url: candidate.to_string(),
                    expected: issuer.to_owned(),
                    found: metadata.issuer,
                });
            }
            return Ok(metadata);
        }
    }
    Err(AgentError::NoAuthorizationServerMetadata {
        issuer: issuer.to_owned(),
        tried: candidates.iter().map(Url::as_str).collect::<Vec<_>>().join(", "),
    })
}

/// MCP 2025-03-26: no protected resource metadata, so the authorization server is the MCP
/// server's origin; its RFC 8414 metadata there, else `/authorize`, `/token` and `/register`.
async fn discover_legacy(http: &reqwest::Client, server_url: &Url) -> Result<Discovery, AgentError> {
    let origin = server_url.origin().ascii_serialization();
    let base = parse_url(&origin)?;
    tracing::info!(server = %server_url, "no protected resource metadata; using the 2025-03-26 discovery at {origin}");
    let mut found = None;
    for candidate in authorization_server_metadata_candidates(&base) {
        if let Fetched::Found(metadata) =
            get_metadata::<AuthorizationServerMetadata>(http, &candidate, "authorization server metadata").await?
        {
            found = Some((candidate, metadata));
            break;
        }
    }
    let synthesized = found.is_none();
    let metadata = match found {
        Some((url, metadata)) => {
            if metadata.issuer != origin {
                // Accepted only on this deprecated path: 2025-03-26 servers often publish an
                // issuer with a path at the origin's well-known URL. The endpoints used are the
                // ones in the document, and `iss` in the authorization response is compared with
                // the issuer it names.
                tracing::warn!(
                    url = %url, expected = %origin, found = %metadata.issuer,
                    "2025-03-26 fallback: the metadata's issuer differs from the server's origin; accepting it on this deprecated path only"
                );
            }
            metadata
        }
        None => AuthorizationServerMetadata {
            issuer: origin.clone(),
            authorization_endpoint: Some(format!("{origin}/authorize")),
            token_endpoint: Some(format!("{origin}/token")),
            registration_endpoint: Some(format!("{origin}/register")),
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            grant_types_supported: Some(vec!["authorization_code".into(), "refresh_token".into()]),
            token_endpoint_auth_methods_supported: Some(vec!["none".into()]),
            ..Default::default()
        },
    };
    Ok(Discovery {
        server_url: server_url.clone(),
        resource: canonical_resource(server_url),
        resource_metadata: None,
        metadata,
        legacy: true,
        synthesized,
    })
}

/// RFC 8707 / MCP: the canonical URI of an MCP server: no fragment, lowercase scheme and host (the
/// URL parser does that), no trailing slash on an empty path.
pub fn canonical_resource(server_url: &Url) -> String {
    let mut u = server_url.clone();
    u.set_fragment(None);
    let s = u.to_string();
    if u.path() == "/" && u.query().is_none() { s.trim_end_matches('/').to_owned() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn resource_metadata_order_challenge_then_path_then_root() {
        let challenge =
            Challenge { resource_metadata: Some("https://rs.example/custom.json".into()), ..Default::default() };
        let got = resource_metadata_candidates(&url("https://rs.example/tools/mcp?x=1"), Some(&challenge));
        let got: Vec<_> = got.iter().map(Url::as_str).collect();
        assert_eq!(
            got,
            [
                "https://rs.example/custom.json",
                "https://rs.example/.well-known/oauth-protected-resource/tools/mcp",
                "https://rs.example/.well-known/oauth-protected-resource",
            ]
        );
        let root_only = resource_metadata_candidates(&url("https://rs.example/"), None);
        assert_eq!(root_only, [url("https://rs.example/.well-known/oauth-protected-resource")]);
    }

    #[test]
    fn authorization_server_metadata_order() {
        let with_path: Vec<_> = authorization_server_metadata_candidates(&url("https://as.example/tenant1"))
            .iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(
            with_path,
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant1",
                "https://as.example/.well-known/openid-configuration/tenant1",
                "https://as.example/tenant1/.well-known/openid-configuration",
            ]
        );
        let root: Vec<_> = authorization_server_metadata_candidates(&url("https://as.example"))
            .iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(
            root,
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn resource_must_cover_the_server() {
        let server = url("http://127.0.0.1:3000/mcp");
        for ok in [
            "http://127.0.0.1:3000/mcp",
            "http://127.0.0.1:3000",
            "http://127.0.0.1:3000/",
            "http://127.0.0.1:3000/mcp/",
        ] {
            assert!(check_resource_covers(&server, ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://evil.example.com/mcp",
            "http://127.0.0.1:3001/mcp",
            "https://127.0.0.1:3000/mcp",
            "http://127.0.0.1:3000/mc",
            "http://127.0.0.1:3000/mcp/deeper",
            "not a url",
        ] {
            assert!(matches!(check_resource_covers(&server, bad), Err(AgentError::ResourceMismatch { .. })), "{bad}");
        }
    }

    #[test]
    fn canonical_resource_drops_fragment_and_root_slash() {
        assert_eq!(canonical_resource(&url("HTTPS://RS.Example/mcp#x")), "https://rs.example/mcp");
        assert_eq!(canonical_resource(&url("https://rs.example/")), "https://rs.example");
        assert_eq!(canonical_resource(&url("http://127.0.0.1:9/mcp/")), "http://127.0.0.1:9/mcp/");
    }

    #[test]
    fn grant_and_auth_method_defaults_follow_rfc8414() {
        let m = AuthorizationServerMetadata { issuer: "https://as.example".into(), ..Default::default() };
        assert!(m.supports_grant("authorization_code"));
        assert!(!m.supports_grant("client_credentials"));
        assert!(m.supports_auth_method("client_secret_basic"));
        assert!(!m.supports_auth_method("none"));
        assert!(!m.supports_s256(), "no code_challenge_methods_supported means no PKCE support advertised");
    }
}
