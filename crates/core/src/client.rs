//! Registered OAuth clients (RFC 6749 §2, RFC 7591 §2 metadata names).

use std::fmt;
use std::str::FromStr;

use crate::resource::ResourceUri;
use crate::scope::ScopeSet;
use crate::secret::SecretDigest;

/// The grant types mandate implements; a client may be allowed a subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
    /// RFC 8693 token exchange.
    TokenExchange,
    /// RFC 7523 §2.1: a JWT authorization grant (ID-JAGs, identity chaining).
    JwtBearer,
}

impl GrantType {
    pub const ALL: &'static [GrantType] =
        &[Self::AuthorizationCode, Self::ClientCredentials, Self::RefreshToken, Self::TokenExchange, Self::JwtBearer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            Self::JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer",
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported grant type {0:?} (supported: authorization_code, client_credentials, refresh_token, urn:ietf:params:oauth:grant-type:token-exchange, urn:ietf:params:oauth:grant-type:jwt-bearer)"
)]
pub struct UnknownGrantType(pub String);

impl FromStr for GrantType {
    type Err = UnknownGrantType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|g| g.as_str() == s).ok_or_else(|| UnknownGrantType(s.to_owned()))
    }
}

/// How a client authenticates at the token, introspection and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenEndpointAuthMethod {
    /// RFC 6749 §2.3.1: HTTP Basic with the form-urlencoded client_id and secret.
    ClientSecretBasic,
    /// RFC 6749 §2.3.1: `client_id` and `client_secret` in the request body.
    ClientSecretPost,
    /// A public client (RFC 6749 §2.1): no credentials, PKCE binds its codes.
    None,
    /// RFC 7523 §2.2: a JWT signed with one of the client's keys (`jwks` or `jwks_uri`).
    PrivateKeyJwt,
    /// draft-ietf-oauth-attestation-based-client-auth: a Client Attestation JWT from a trusted
    /// attester and a PoP JWT signed by the client instance's key, in two request headers.
    AttestJwtClientAuth,
}

impl TokenEndpointAuthMethod {
    pub const ALL: &'static [TokenEndpointAuthMethod] =
        &[Self::ClientSecretBasic, Self::ClientSecretPost, Self::PrivateKeyJwt, Self::AttestJwtClientAuth, Self::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::AttestJwtClientAuth => crate::attestation::AUTH_METHOD,
        }
    }

    pub fn needs_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

impl fmt::Display for TokenEndpointAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported token_endpoint_auth_method {0:?} (supported: client_secret_basic, client_secret_post, private_key_jwt, attest_jwt_client_auth, none)"
)]
pub struct UnknownAuthMethod(pub String);

impl FromStr for TokenEndpointAuthMethod {
    type Err = UnknownAuthMethod;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|m| m.as_str() == s).ok_or_else(|| UnknownAuthMethod(s.to_owned()))
    }
}

/// RFC 7591 §2 / OpenID Dynamic Registration: native apps may use loopback redirects on any port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApplicationType {
    #[default]
    Web,
    Native,
}

impl ApplicationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Native => "native",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "web" => Some(Self::Web),
            "native" => Some(Self::Native),
            _ => None,
        }
    }
}

/// Where a client's registration came from; config-seeded clients follow the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSource {
    Config,
    /// Registered itself at `/register` (RFC 7591).
    Dynamic,
}

impl ClientSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Dynamic => "dynamic",
        }
    }
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub client_name: Option<String>,
    pub secret: Option<SecretDigest>,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    pub grant_types: Vec<GrantType>,
    /// The most this client may ever be granted, on any resource.
    pub scopes: ScopeSet,
    /// The resources this client may get tokens for; `None` means every registered resource.
    pub resources: Option<Vec<ResourceUri>>,
    /// Registered redirect URIs, matched exactly (RFC 9700 §4.1.3).
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub application_type: ApplicationType,
    /// RFC 9126 §6: this client's authorization requests must come through `/par`.
    pub require_pushed_authorization_requests: bool,
    /// The client's public keys as a JWK Set document (JSON text), for `private_key_jwt`.
    pub jwks: Option<String>,
    /// Where the client publishes its JWK Set (fetched through the SSRF-safe fetcher).
    pub jwks_uri: Option<String>,
    /// RFC 7591 `logo_uri`: shown on the consent page, fetched through the SSRF-safe fetcher.
    pub logo_uri: Option<String>,
    pub disabled: bool,
}

impl Client {
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    pub fn allows_resource(&self, uri: &ResourceUri) -> bool {
        self.resources.as_ref().is_none_or(|list| list.contains(uri))
    }

    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == TokenEndpointAuthMethod::None
    }

    /// Exact match against a registered redirect URI; for native clients a loopback redirect
    /// (`http://127.0.0.1`, `http://[::1]`) also matches on any port (RFC 8252 §7.3).
    pub fn accepts_redirect_uri(&self, candidate: &str) -> bool {
        if self.redirect_uris.iter().any(|r| r == candidate) {
            return true;
        }
        if self.application_type != ApplicationType::Native {
            return false;
        }
        let Some(candidate) = loopback_without_port(candidate) else { return false };
        self.redirect_uris.iter().filter_map(|r| loopback_without_port(r)).any(|r| r == candidate)
    }
}

/// `http://127.0.0.1:PORT/path?q` → `http://127.0.0.1/path?q`, for loopback IP literals only
/// (RFC 8252 §8.3: not `localhost`). The string must already be in the form a browser sends.
fn loopback_without_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let (host_port, path) = rest.find('/').map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
    let host = if let Some(v6) = host_port.strip_prefix("[::1]") {
        (v6.is_empty() || is_port(v6)).then_some("[::1]")?
    } else if let Some(v4) = host_port.strip_prefix("127.0.0.1") {
        (v4.is_empty() || is_port(v4)).then_some("127.0.0.1")?
    } else {
        return None;
    };
    Some(format!("http://{host}{path}"))
}

fn is_port(s: &str) -> bool {
    s.strip_prefix(':').is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(redirects: &[&str]) -> Client {
        Client {
            client_id: "cli".into(),
            client_name: None,
            secret: None,
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: ScopeSet::default(),
            resources: None,
            redirect_uris: redirects.iter().map(|s| s.to_string()).collect(),
            post_logout_redirect_uris: vec![],
            application_type: ApplicationType::Native,
            require_pushed_authorization_requests: false,
            jwks: None,
            jwks_uri: None,
            logo_uri: None,
            disabled: false,
        }
    }

    #[test]
    fn native_loopback_redirects_match_on_any_port_only() {
        let c = native(&["http://127.0.0.1/callback", "http://[::1]/cb"]);
        assert!(c.accepts_redirect_uri("http://127.0.0.1:53127/callback"));
        assert!(c.accepts_redirect_uri("http://127.0.0.1/callback"));
        assert!(c.accepts_redirect_uri("http://[::1]:8000/cb"));
        assert!(!c.accepts_redirect_uri("http://127.0.0.1:53127/callback/extra"));
        assert!(!c.accepts_redirect_uri("http://127.0.0.1:53127/callback?x=1"));
        assert!(!c.accepts_redirect_uri("http://localhost:53127/callback"));
        assert!(!c.accepts_redirect_uri("http://127.0.0.1.evil.example:80/callback"));
        assert!(!c.accepts_redirect_uri("HTTP://127.0.0.1:1/callback"));
        assert!(!c.accepts_redirect_uri("http://127.0.0.1:abc/callback"));
    }

    proptest::proptest! {
        /// RFC 9700 §4.1.3: a candidate is accepted only if it is a registered URI exactly, or (for
        /// native clients) that URI on a loopback IP literal with a port added and nothing else.
        #[test]
        fn redirect_uris_match_exactly_or_by_loopback_port_only(
            candidate in "(https?://)?(127\\.0\\.0\\.1|\\[::1\\]|localhost|app\\.example)(:[0-9a-z]{0,6})?(/[a-z]{0,4}){0,2}(\\?[a-z=]{0,4})?",
            is_native in proptest::bool::ANY,
        ) {
            let mut c = native(&["http://127.0.0.1/callback", "http://[::1]/cb", "https://app.example/cb"]);
            if !is_native {
                c.application_type = ApplicationType::Web;
            }
            if c.accepts_redirect_uri(&candidate) && !c.redirect_uris.contains(&candidate) {
                proptest::prop_assert!(is_native, "{candidate}");
                let (host, rest) = candidate
                    .strip_prefix("http://127.0.0.1:")
                    .map(|r| ("http://127.0.0.1", r))
                    .or_else(|| candidate.strip_prefix("http://[::1]:").map(|r| ("http://[::1]", r)))
                    .expect("only a loopback literal may differ");
                let digits = rest.find('/').unwrap_or(rest.len());
                proptest::prop_assert!(rest[..digits].bytes().all(|b| b.is_ascii_digit()) && digits > 0);
                let without_port = format!("{host}{}", &rest[digits..]);
                proptest::prop_assert!(c.redirect_uris.contains(&without_port), "{candidate}");
            }
        }
    }

    #[test]
    fn web_clients_match_exactly() {
        let mut c = native(&["https://app.example/cb", "http://127.0.0.1/cb"]);
        c.application_type = ApplicationType::Web;
        assert!(c.accepts_redirect_uri("https://app.example/cb"));
        assert!(!c.accepts_redirect_uri("https://app.example/cb/"));
        assert!(!c.accepts_redirect_uri("https://APP.example/cb"));
        assert!(!c.accepts_redirect_uri("http://127.0.0.1:9/cb"));
    }
}
