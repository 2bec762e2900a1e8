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
    ClientCredentials,
}

impl GrantType {
    pub const ALL: &'static [GrantType] = &[GrantType::ClientCredentials];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported grant type {0:?} (supported: client_credentials)")]
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
}

impl TokenEndpointAuthMethod {
    pub const ALL: &'static [TokenEndpointAuthMethod] = &[Self::ClientSecretBasic, Self::ClientSecretPost];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
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
#[error("unsupported token_endpoint_auth_method {0:?} (supported: client_secret_basic, client_secret_post)")]
pub struct UnknownAuthMethod(pub String);

impl FromStr for TokenEndpointAuthMethod {
    type Err = UnknownAuthMethod;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|m| m.as_str() == s).ok_or_else(|| UnknownAuthMethod(s.to_owned()))
    }
}

/// Where a client's registration came from; config-seeded clients follow the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSource {
    Config,
}

impl ClientSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
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
    pub disabled: bool,
}

impl Client {
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    pub fn allows_resource(&self, uri: &ResourceUri) -> bool {
        self.resources.as_ref().is_none_or(|list| list.contains(uri))
    }
}
