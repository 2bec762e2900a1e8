//! Pushed client registration (draft-richer-oauth-pushed-client-registration-00; experimental,
//! behind `registration.pushed`): an ephemeral public client, of which the server keeps nothing,
//! pushes its authorization request to `/par` with the static client id [`PUSHED_CLIENT_ID`] and,
//! in `client_registration`, its RFC 7591 metadata, checked by the rules of a client ID metadata
//! document. The pushed request is the registration: the code it leads to is bound to its PKCE
//! challenge and redirect URI, so one client id shared by every such client is safe at the token
//! endpoint. Nothing is remembered between requests: consent is asked every time, and no refresh
//! token is issued (there is no client state to bind a long-lived token to; the client pushes a
//! new request instead).

use mandate_core::client::{ApplicationType, Client};
use mandate_core::{GrantType, OAuthError, ScopeSet, TokenEndpointAuthMethod, oidc};
use mandate_store::AuthorizationRequest;

use super::document::{ClientMetadata, MetadataError, Origin, bad, bad_redirect};
use crate::state::AppState;

/// The static client id of the draft (§3); never the id of a registered client.
pub const PUSHED_CLIENT_ID: &str = "urn:ietf:oauth:parameters:dynamic";
/// The largest `client_registration` accepted, as for metadata documents (CIMD-7).
pub const MAX_REGISTRATION_BYTES: usize = 5 * 1024;
/// What the consent and sign-in pages call a pushed client that gave no name.
const UNNAMED: &str = "An app that did not give its name";

pub fn is_pushed_client_id(client_id: &str) -> bool {
    client_id == PUSHED_CLIENT_ID
}

/// The scopes a pushed client may ask for: `registration.pushed_scopes` (by default every resource
/// scope and the OpenID scopes), never `offline_access`.
pub fn allowed_scopes(state: &AppState) -> ScopeSet {
    let oidc_scopes = ScopeSet::from_tokens(oidc::SCOPES).unwrap_or_default();
    let scopes = state
        .settings
        .registration
        .pushed_scopes
        .clone()
        .unwrap_or_else(|| state.settings.offered_scopes.union(&oidc_scopes));
    scopes.difference(&ScopeSet::from_tokens([oidc::OFFLINE_ACCESS]).unwrap_or_default())
}

/// What the static client id names where no pushed request is at hand (`/par` before the
/// registration is read, `/authorize`, `/token`, `/revoke`): a public client allowed only the code
/// grant, within the pushed-client policy, with no redirect URI of its own.
pub fn shared_client(state: &AppState) -> Client {
    Client {
        client_id: PUSHED_CLIENT_ID.to_owned(),
        client_name: None,
        secret: None,
        token_endpoint_auth_method: TokenEndpointAuthMethod::None,
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: allowed_scopes(state),
        resources: state.settings.registration.pushed_resources.clone(),
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        application_type: ApplicationType::Web,
        require_pushed_authorization_requests: true,
        jwks: None,
        jwks_uri: None,
        logo_uri: None,
        disabled: false,
    }
}

/// Checks a pushed registration and returns the client it describes with the normalised metadata
/// to keep with the request. Without `client_registration`, the client is the one the request
/// implies: public, unnamed, its `redirect_uri` as its sole redirect URI (checked by the same
/// rules). With it, `redirect_uri` must be one of its `redirect_uris`.
pub fn register(
    state: &AppState,
    registration: Option<&str>,
    redirect_uri: &str,
) -> Result<(Client, String), MetadataError> {
    let metadata = match registration {
        None => ClientMetadata { redirect_uris: vec![redirect_uri.to_owned()], ..ClientMetadata::default() },
        Some(text) if text.len() > MAX_REGISTRATION_BYTES => {
            return Err(bad(format!("client_registration is larger than {} KB", MAX_REGISTRATION_BYTES / 1024)));
        }
        Some(text) => serde_json::from_str::<ClientMetadata>(text)
            .map_err(|e| bad(format!("client_registration is not RFC 7591 client metadata as JSON ({e})")))?,
    };
    if metadata.client_id.as_deref().is_some_and(|id| !is_pushed_client_id(id)) {
        return Err(bad(format!("client_id in client_registration may only be {PUSHED_CLIENT_ID}")));
    }
    let (client, normalised) = metadata.into_client(state, PUSHED_CLIENT_ID, Origin::PushedRegistration)?;
    if !client.accepts_redirect_uri(redirect_uri) {
        return Err(bad_redirect(format!(
            "redirect_uri {redirect_uri:?} is not one of the client_registration's redirect_uris (they must match exactly)"
        )));
    }
    let text = serde_json::to_string(&normalised).map_err(|e| bad(e.to_string()))?;
    Ok((client, text))
}

/// The client a kept pushed request describes, checked again by today's policy.
pub fn from_request(state: &AppState, request: &AuthorizationRequest) -> Result<Client, OAuthError> {
    let unusable = || OAuthError::invalid_request("this pushed registration can no longer be used; start again");
    let text = request.client_registration.as_deref().ok_or_else(unusable)?;
    let (client, _) = register(state, Some(text), &request.redirect_uri).map_err(|_| unusable())?;
    Ok(client)
}

/// The self-asserted name of a kept pushed request's client, if it gave one.
pub fn unverified_name(request: &AuthorizationRequest) -> Option<String> {
    let text = request.client_registration.as_deref()?;
    let metadata: ClientMetadata = serde_json::from_str(text).ok()?;
    metadata.client_name.filter(|n| !n.trim().is_empty())
}

/// The name pages show: the client's own words, marked as unverified.
pub fn display_name(name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{name} (unverified name)"),
        None => UNNAMED.to_owned(),
    }
}

/// The audit log's `detail` for a pushed client: marked as such, with its unverified name.
pub fn audit_detail(name: Option<&str>) -> String {
    match name {
        Some(name) => format!("pushed client registration; unverified client_name {name:?}"),
        None => "pushed client registration; no client_name given".to_owned(),
    }
}
