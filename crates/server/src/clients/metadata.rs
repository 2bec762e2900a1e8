//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document; MCP 2026-07-28
//! prefers them to dynamic registration): the `client_id` is an https URL whose document
//! describes the client. Fetched through the SSRF-safe fetcher (no redirects, only 200, JSON,
//! 5 KB, cached within bounds, errors never cached) and checked against every rule of the draft
//! and the operator's registration policy. Nothing is stored: the document is the registration.

use mandate_core::client::Client;
use mandate_core::{OAuthError, ResourceUri};

use super::document::{ClientMetadata, Origin};
use crate::state::AppState;

/// CIMD-7: documents are small.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;

/// Whether a `client_id` is a URL (a metadata document) rather than a registered id.
pub fn is_url_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
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
    let fetched = state.metadata_fetcher.get_cached(url, mandate_fetch::Accept::json()).await.map_err(|e| {
        tracing::info!(client_id = ?url, error = ?e.to_string(), "client ID metadata document fetch failed");
        refused(e.public_message())
    })?;
    let doc: ClientMetadata =
        serde_json::from_slice(&fetched.body).map_err(|e| refused(format!("it is not valid ({e})")))?;
    if doc.client_id.as_deref() != Some(url) {
        return Err(refused(format!("its client_id {:?} is not the URL it was fetched from", doc.client_id)));
    }
    doc.into_client(state, url, Origin::MetadataDocument).map(|(client, _)| client).map_err(|e| refused(e.message))
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

/// Accepts the resource URIs in a policy list.
pub fn parse_resources(list: &[String]) -> Result<Vec<ResourceUri>, String> {
    list.iter().map(|u| ResourceUri::parse(u).map_err(|e| format!("{u:?} {e}"))).collect()
}
