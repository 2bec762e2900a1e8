//! Finding the client a request names: a registered client from the database, or, for an https
//! URL, a client ID metadata document fetched and checked on demand (see [`metadata`]).

pub mod document;
pub mod logo;
pub mod metadata;

use mandate_core::{Client, OAuthError};

use crate::error::store_error;
use crate::state::AppState;

/// The client `client_id` names, enabled or not; `None` when there is no such client. A metadata
/// document that cannot be used is an `invalid_client` error saying why.
pub async fn find(state: &AppState, client_id: &str) -> Result<Option<Client>, OAuthError> {
    if metadata::is_url_client_id(client_id) {
        if !state.settings.registration.metadata_documents {
            return Ok(None);
        }
        return metadata::resolve(state, client_id).await.map(Some);
    }
    state.store.get_client(client_id).await.map_err(store_error)
}

/// A URL in client metadata that mandate will fetch (`jwks_uri`, `logo_uri`): absolute, https
/// (plain http only when private networks are allowed, for development).
pub fn check_fetch_url(uri: &str, allow_private_networks: bool) -> Result<(), String> {
    let parsed = url::Url::parse(uri).map_err(|_| format!("{uri:?} is not an absolute URL"))?;
    let plain_ok = allow_private_networks && parsed.scheme() == "http";
    if parsed.scheme() != "https" && !plain_ok {
        return Err(format!("{uri:?} must use https"));
    }
    if uri.len() > 2048 {
        return Err("is longer than 2048 characters".into());
    }
    Ok(())
}

/// The name to show for a client: its `client_name`, else its id.
pub async fn display_name(state: &AppState, client_id: &str) -> String {
    match find(state, client_id).await {
        Ok(Some(c)) => c.client_name.unwrap_or(c.client_id),
        _ => client_id.to_owned(),
    }
}
