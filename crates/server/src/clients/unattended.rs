//! Grants with no person behind them (`client_credentials`, the JWT bearer grant, token exchange)
//! for clients nobody configured: dynamically registered ones, client ID metadata documents and
//! pushed registrations. Anyone can make such a client, so none of them gets a token nobody
//! consented to unless `registration.unattended_*` allows that grant, and then only on the
//! resources and scopes named there (RFC 9700 §2.3: least privilege; issue #15 item 1).

use std::borrow::Cow;

use mandate_core::{GrantType, OAuthError};

use crate::client_auth::AuthenticatedClient;
use crate::state::AppState;

/// Whether `client_id` names a client that described itself rather than one from the config.
pub fn is_self_described(client_id: &str) -> bool {
    client_id.starts_with(crate::endpoints::register::CLIENT_ID_PREFIX)
        || super::metadata::is_url_client_id(client_id)
        || super::pushed::is_pushed_client_id(client_id)
}

fn is_unattended(grant: GrantType) -> bool {
    matches!(grant, GrantType::ClientCredentials | GrantType::JwtBearer | GrantType::TokenExchange)
}

/// The client as the grant may use it: unchanged for configured clients and grants with a person
/// behind them; for a self-described client, bounded by the unattended policy, or refused.
pub fn bounded<'a>(
    state: &AppState,
    client: &'a AuthenticatedClient,
    grant: GrantType,
) -> Result<Cow<'a, AuthenticatedClient>, OAuthError> {
    if !is_unattended(grant) || !is_self_described(&client.client_id) {
        return Ok(Cow::Borrowed(client));
    }
    let policy = &state.settings.registration.unattended;
    if !policy.allows(grant) {
        return Err(OAuthError::unauthorized_client(format!(
            "the {grant} grant acts with nobody's consent, and this server does not allow it to clients that registered themselves (an administrator can, with registration.unattended_grant_types)"
        )));
    }
    let mut narrowed = client.clone();
    narrowed.client.scopes = client.scopes.intersection(&policy.scopes);
    let resources = policy.resources.iter().filter(|r| client.allows_resource(r)).cloned().collect();
    narrowed.client.resources = Some(resources);
    Ok(Cow::Owned(narrowed))
}
