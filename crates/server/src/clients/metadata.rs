//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document; MCP 2026-07-28
//! prefers them to dynamic registration): the `client_id` is an https URL whose document
//! describes the client. Fetched through the SSRF-safe fetcher (no redirects, only 200, JSON,
//! 5 KB, cached within bounds, errors never cached) and checked against every rule of the draft
//! and the operator's registration policy. Nothing is stored: the document is the registration.

use mandate_core::client::{ApplicationType, Client};
use mandate_core::{GrantType, OAuthError, ResourceUri, ScopeSet, TokenEndpointAuthMethod, oidc};
use serde::Deserialize;

use crate::config::check_redirect_uri;
use crate::state::AppState;

/// CIMD-7: documents are small.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;

/// Whether a `client_id` is a URL (a metadata document) rather than a registered id.
pub fn is_url_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

#[derive(Debug, Deserialize)]
struct Document {
    client_id: String,
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    application_type: Option<String>,
    jwks: Option<serde_json::Value>,
    jwks_uri: Option<String>,
    client_secret: Option<serde_json::Value>,
    client_secret_expires_at: Option<serde_json::Value>,
}

fn refused(message: impl std::fmt::Display) -> OAuthError {
    OAuthError::invalid_client(format!("the client ID metadata document cannot be used: {message}"))
}

/// Fetches, checks and turns the document at `url` into a client.
pub async fn resolve(state: &AppState, url: &str) -> Result<Client, OAuthError> {
    let policy = &state.settings.registration;
    let host = check_url(url, state.settings.allow_private_networks).map_err(refused)?;
    if !policy.allows_host(&host) {
        return Err(refused(format!("{host} is not allowed to register by URL here")));
    }
    let fetched = state.fetcher.get_cached(url, mandate_fetch::Accept::json()).await.map_err(|e| {
        tracing::info!(client_id = url, error = %e, "client ID metadata document fetch failed");
        refused(e)
    })?;
    if fetched.body.len() > MAX_DOCUMENT_BYTES {
        return Err(refused(format!("it is larger than {MAX_DOCUMENT_BYTES} bytes")));
    }
    let doc: Document = serde_json::from_slice(&fetched.body).map_err(|e| refused(format!("it is not valid ({e})")))?;
    client_from(state, url, doc).map_err(refused)
}

/// CIMD-1: https, a path, no dot segments, fragment or userinfo. Returns the host.
fn check_url(url: &str, allow_private_networks: bool) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|_| "the client_id is not a URL".to_owned())?;
    let scheme_ok = parsed.scheme() == "https" || (allow_private_networks && parsed.scheme() == "http");
    if !scheme_ok {
        return Err("the client_id URL must use https".into());
    }
    if parsed.as_str() != url {
        return Err("the client_id URL is not in normalised form (lower-case scheme and host, no dot segments)".into());
    }
    if parsed.path() == "/" || parsed.path().is_empty() {
        return Err("the client_id URL must have a path".into());
    }
    if parsed.fragment().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the client_id URL must not have a fragment or user information".into());
    }
    parsed.host_str().map(str::to_owned).ok_or_else(|| "the client_id URL has no host".into())
}

fn client_from(state: &AppState, url: &str, doc: Document) -> Result<Client, String> {
    let policy = &state.settings.registration;
    if doc.client_id != url {
        return Err(format!("its client_id {:?} is not the URL it was fetched from", doc.client_id));
    }
    if doc.client_secret.is_some() || doc.client_secret_expires_at.is_some() {
        return Err("it must not carry a client_secret".into());
    }
    let method = match doc.token_endpoint_auth_method.as_deref() {
        None | Some("none") => TokenEndpointAuthMethod::None,
        Some("private_key_jwt") => TokenEndpointAuthMethod::PrivateKeyJwt,
        Some(other) => {
            return Err(format!("token_endpoint_auth_method {other:?} is not allowed (none or private_key_jwt)"));
        }
    };
    let jwks = match (&doc.jwks, &doc.jwks_uri) {
        (Some(_), Some(_)) => return Err("give jwks or jwks_uri, not both".into()),
        (Some(set), None) => {
            let text = set.to_string();
            mandate_core::assertion::parse_client_jwks(&text).map_err(|e| format!("its jwks {e}"))?;
            Some(text)
        }
        _ => None,
    };
    if method == TokenEndpointAuthMethod::PrivateKeyJwt && jwks.is_none() && doc.jwks_uri.is_none() {
        return Err("private_key_jwt needs jwks or jwks_uri".into());
    }
    let client_name = doc.client_name.filter(|n| !n.trim().is_empty()).ok_or("it has no client_name")?;
    if client_name.chars().count() > 200 {
        return Err("its client_name is longer than 200 characters".into());
    }
    let application_type = match doc.application_type.as_deref() {
        None => ApplicationType::Web,
        Some(t) => ApplicationType::parse(t).ok_or_else(|| format!("application_type {t:?} is not web or native"))?,
    };
    if doc.redirect_uris.is_empty() {
        return Err("it has no redirect_uris".into());
    }
    let origin = url::Url::parse(url).map(|u| u.origin()).map_err(|e| e.to_string())?;
    for uri in doc.redirect_uris.iter().chain(&doc.post_logout_redirect_uris) {
        check_redirect_uri(uri, application_type).map_err(|m| format!("redirect URI {uri:?} {m}"))?;
        if policy.metadata_same_origin_redirects
            && url::Url::parse(uri).map(|u| u.origin()).ok() != Some(origin.clone())
        {
            return Err(format!("redirect URI {uri:?} is not on the client_id's origin, as this server requires"));
        }
    }
    let mut grant_types = Vec::new();
    for g in doc.grant_types.unwrap_or_else(|| vec!["authorization_code".into()]) {
        match g.parse::<GrantType>() {
            Ok(GrantType::AuthorizationCode) => grant_types.push(GrantType::AuthorizationCode),
            Ok(GrantType::RefreshToken) => grant_types.push(GrantType::RefreshToken),
            Ok(GrantType::ClientCredentials) if method == TokenEndpointAuthMethod::PrivateKeyJwt => {
                grant_types.push(GrantType::ClientCredentials)
            }
            _ => return Err(format!("grant type {g:?} is not available to URL clients")),
        }
    }
    // A document's `scope` says what the client expects to ask for, not a ceiling: what it may get
    // is bounded by the registration policy, the resource's scopes and the person's consent.
    let oidc_scopes = ScopeSet::from_tokens(oidc::SCOPES).unwrap_or_default();
    let scopes = policy.metadata_scopes.clone().unwrap_or_else(|| state.settings.offered_scopes.union(&oidc_scopes));
    Ok(Client {
        client_id: url.to_owned(),
        client_name: Some(client_name),
        secret: None,
        token_endpoint_auth_method: method,
        grant_types,
        scopes,
        resources: policy.metadata_resources.clone(),
        redirect_uris: doc.redirect_uris,
        post_logout_redirect_uris: doc.post_logout_redirect_uris,
        application_type,
        require_pushed_authorization_requests: false,
        jwks,
        jwks_uri: doc.jwks_uri,
        disabled: false,
    })
}

/// Accepts the resource URIs in a policy list.
pub fn parse_resources(list: &[String]) -> Result<Vec<ResourceUri>, String> {
    list.iter().map(|u| ResourceUri::parse(u).map_err(|e| format!("{u:?} {e}"))).collect()
}
