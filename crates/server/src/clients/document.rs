//! Client metadata (RFC 7591 §2) as a client describes itself, in a client ID metadata document,
//! a registration request or a pushed registration, checked into a [`Client`] by one set of
//! rules. What differs by origin: metadata documents may not use shared secrets (CIMD-4) and must
//! name themselves; pushed registrations are public clients with nothing to authenticate with.

use mandate_core::client::{ApplicationType, Client};
use mandate_core::{GrantType, ScopeSet, TokenEndpointAuthMethod, oidc};
use serde::{Deserialize, Serialize};

use crate::config::check_redirect_uri;
use crate::state::AppState;

/// Where the metadata came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    MetadataDocument,
    Registration,
    /// The `client_registration` of a pushed authorization request (see [`super::pushed`]).
    PushedRegistration,
}

/// RFC 7591 §3.2.2 error codes for metadata that cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataErrorCode {
    InvalidRedirectUri,
    InvalidClientMetadata,
    InvalidSoftwareStatement,
    UnapprovedSoftwareStatement,
}

impl MetadataErrorCode {
    pub fn error_code(self) -> mandate_core::ErrorCode {
        match self {
            Self::InvalidRedirectUri => mandate_core::ErrorCode::InvalidRedirectUri,
            Self::InvalidClientMetadata => mandate_core::ErrorCode::InvalidClientMetadata,
            Self::InvalidSoftwareStatement => mandate_core::ErrorCode::InvalidSoftwareStatement,
            Self::UnapprovedSoftwareStatement => mandate_core::ErrorCode::UnapprovedSoftwareStatement,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MetadataError {
    pub code: MetadataErrorCode,
    pub message: String,
}

pub(crate) fn bad(message: impl Into<String>) -> MetadataError {
    MetadataError { code: MetadataErrorCode::InvalidClientMetadata, message: message.into() }
}

pub(crate) fn bad_redirect(message: impl Into<String>) -> MetadataError {
    MetadataError { code: MetadataErrorCode::InvalidRedirectUri, message: message.into() }
}

/// The client metadata fields mandate reads; others are ignored.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct ClientMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    /// What the client expects to ask for; not a ceiling (see [`ClientMetadata::into_client`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// RFC 7591 §2: the software's identity across registrations, usually from a statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// RFC 7591 §2.3: returned as sent when it was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_statement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<serde_json::Value>,
}

impl ClientMetadata {
    /// The metadata a stored client stands for (registrations kept before their metadata was).
    pub fn describing(client: &Client) -> ClientMetadata {
        let uses_redirects = client.grant_types.contains(&GrantType::AuthorizationCode);
        ClientMetadata {
            client_name: client.client_name.clone(),
            redirect_uris: client.redirect_uris.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            token_endpoint_auth_method: Some(client.token_endpoint_auth_method.as_str().to_owned()),
            grant_types: Some(client.grant_types.iter().map(|g| g.as_str().to_owned()).collect()),
            response_types: uses_redirects.then(|| vec!["code".to_owned()]),
            application_type: Some(client.application_type.as_str().to_owned()),
            jwks: client.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            jwks_uri: client.jwks_uri.clone(),
            logo_uri: client.logo_uri.clone(),
            ..ClientMetadata::default()
        }
    }

    /// Checks the metadata and builds the client `client_id` (without a secret: the registration
    /// endpoint makes one for secret-based methods). Returns the normalised metadata too.
    pub fn into_client(
        self,
        state: &AppState,
        client_id: &str,
        origin: Origin,
    ) -> Result<(Client, ClientMetadata), MetadataError> {
        let policy = &state.settings.registration;
        let pushed = origin == Origin::PushedRegistration;
        if self.client_secret.is_some() || self.client_secret_expires_at.is_some() {
            if pushed {
                return Err(bad(
                    "a pushed client is public: client_secret and client_secret_expires_at are not allowed",
                ));
            }
            return Err(bad("a client_secret cannot be supplied; the server makes secrets"));
        }
        let method = match self.token_endpoint_auth_method.as_deref() {
            None | Some("none") if origin != Origin::Registration => TokenEndpointAuthMethod::None,
            Some(m) if pushed => {
                return Err(bad(format!(
                    "token_endpoint_auth_method {m:?} is not allowed: a pushed client is public (none)"
                )));
            }
            None => TokenEndpointAuthMethod::ClientSecretBasic,
            Some(m) => {
                let method: TokenEndpointAuthMethod =
                    m.parse().map_err(|_| bad(format!("token_endpoint_auth_method {m:?} is not supported")))?;
                if origin == Origin::MetadataDocument && method.needs_secret() {
                    return Err(bad(format!(
                        "token_endpoint_auth_method {m:?} is not allowed (none, private_key_jwt or attest_jwt_client_auth)"
                    )));
                }
                if method == TokenEndpointAuthMethod::AttestJwtClientAuth && !state.settings.attestation.enabled() {
                    return Err(bad(
                        "token_endpoint_auth_method attest_jwt_client_auth is not offered: this server trusts no client attester",
                    ));
                }
                method
            }
        };
        if pushed && (self.jwks.is_some() || self.jwks_uri.is_some()) {
            return Err(bad("a pushed client is public: jwks and jwks_uri are not allowed"));
        }
        if pushed && !self.post_logout_redirect_uris.is_empty() {
            return Err(bad_redirect(
                "post_logout_redirect_uris are not allowed: nothing of a pushed client is kept to sign out with",
            ));
        }
        let jwks = match (&self.jwks, &self.jwks_uri) {
            (Some(_), Some(_)) => return Err(bad("give jwks or jwks_uri, not both")),
            (Some(set), None) => {
                let text = set.to_string();
                mandate_core::assertion::parse_client_jwks(&text).map_err(|e| bad(format!("jwks {e}")))?;
                Some(text)
            }
            _ => None,
        };
        let private = state.settings.allow_private_networks;
        if let Some(uri) = &self.jwks_uri {
            super::check_fetch_url(uri, private).map_err(|e| bad(format!("jwks_uri {e}")))?;
        }
        if let Some(uri) = &self.logo_uri {
            super::check_fetch_url(uri, private).map_err(|e| bad(format!("logo_uri {e}")))?;
        }
        if method == TokenEndpointAuthMethod::PrivateKeyJwt && jwks.is_none() && self.jwks_uri.is_none() {
            return Err(bad("private_key_jwt needs jwks or jwks_uri"));
        }
        let client_name = self.client_name.clone().filter(|n| !n.trim().is_empty());
        if origin == Origin::MetadataDocument && client_name.is_none() {
            return Err(bad("it has no client_name"));
        }
        if client_name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            return Err(bad("client_name is longer than 200 characters"));
        }
        let application_type = match self.application_type.as_deref() {
            None => ApplicationType::Web,
            Some(t) => {
                ApplicationType::parse(t).ok_or_else(|| bad(format!("application_type {t:?} is not web or native")))?
            }
        };
        let mut grant_types = Vec::new();
        let requested = self.grant_types.clone().unwrap_or_else(|| vec!["authorization_code".into()]);
        for g in &requested {
            let grant: GrantType = g.parse().map_err(|_| bad(format!("grant type {g:?} is not supported")))?;
            if grant == GrantType::ClientCredentials && method == TokenEndpointAuthMethod::None {
                return Err(bad("a public client cannot use client_credentials"));
            }
            if grant == GrantType::TokenExchange {
                return Err(bad("token exchange is for clients an administrator registered"));
            }
            if grant == GrantType::JwtBearer && method == TokenEndpointAuthMethod::None {
                return Err(bad("the JWT bearer grant needs an authenticated client (private_key_jwt)"));
            }
            // Grants with nobody's consent: only as the unattended policy allows. A metadata
            // document serves many servers, so its other grants stay usable here.
            if matches!(grant, GrantType::ClientCredentials | GrantType::JwtBearer) && !policy.unattended.allows(grant)
            {
                if origin == Origin::MetadataDocument {
                    continue;
                }
                return Err(bad(format!(
                    "grant type {g:?} acts with nobody's consent and is not offered to self-registered clients (an administrator can allow it with registration.unattended_grant_types)"
                )));
            }
            if !grant_types.contains(&grant) {
                grant_types.push(grant);
            }
        }
        if pushed {
            // Only the code grant: a pushed client has no refresh tokens (it pushes a new request).
            if !grant_types.contains(&GrantType::AuthorizationCode) {
                return Err(bad("a pushed client uses the authorization_code grant"));
            }
            grant_types = vec![GrantType::AuthorizationCode];
        }
        if let Some(types) = &self.response_types
            && types.iter().any(|t| t != "code")
        {
            return Err(bad("only the response type \"code\" is supported"));
        }
        let uses_redirects = grant_types.contains(&GrantType::AuthorizationCode);
        if uses_redirects && self.redirect_uris.is_empty() {
            return Err(bad_redirect("redirect_uris are required for the authorization_code grant"));
        }
        let origin_of_id = url::Url::parse(client_id).ok().map(|u| u.origin());
        for uri in self.redirect_uris.iter().chain(&self.post_logout_redirect_uris) {
            check_redirect_uri(uri, application_type).map_err(|m| bad_redirect(format!("redirect URI {uri:?} {m}")))?;
            let same_origin = url::Url::parse(uri).ok().map(|u| u.origin()) == origin_of_id;
            if origin == Origin::MetadataDocument && policy.metadata_same_origin_redirects && !same_origin {
                return Err(bad_redirect(format!(
                    "redirect URI {uri:?} is not on the client_id's origin, as this server requires"
                )));
            }
        }
        // The `scope` a client declares is what it expects to ask for first, not a ceiling: MCP
        // clients register with the scope of their first challenge and step up later. What it may
        // get is bounded by the registration policy, the resource's scopes and the person's consent.
        let oidc_scopes = ScopeSet::from_tokens(oidc::SCOPES).unwrap_or_default();
        let (scopes, resources) = if pushed {
            (super::pushed::allowed_scopes(state), policy.pushed_resources.clone())
        } else {
            let scopes =
                policy.metadata_scopes.clone().unwrap_or_else(|| state.settings.offered_scopes.union(&oidc_scopes));
            (scopes, policy.metadata_resources.clone())
        };
        let client = Client {
            client_id: client_id.to_owned(),
            client_name,
            secret: None,
            token_endpoint_auth_method: method,
            grant_types,
            scopes,
            resources,
            redirect_uris: self.redirect_uris.clone(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            application_type,
            require_pushed_authorization_requests: false,
            jwks,
            jwks_uri: self.jwks_uri.clone(),
            logo_uri: self.logo_uri.clone(),
            disabled: false,
        };
        let normalised = ClientMetadata {
            client_id: None,
            token_endpoint_auth_method: Some(method.as_str().to_owned()),
            grant_types: Some(client.grant_types.iter().map(|g| g.as_str().to_owned()).collect()),
            response_types: uses_redirects.then(|| vec!["code".to_owned()]),
            application_type: Some(application_type.as_str().to_owned()),
            client_secret: None,
            client_secret_expires_at: None,
            ..self
        };
        Ok((client, normalised))
    }
}
