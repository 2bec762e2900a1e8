//! The refresh token grant (OAuth 2.1 §4.3) with rotation and reuse detection (RFC 9700 §4.14).
//!
//! Every use returns a new refresh token. Real MCP clients refresh concurrently or lose responses,
//! so a rotated token presented again by the same client within `tokens.refresh_reuse_grace`
//! (default 30 s) gets a sibling: a fresh refresh token of the same family, and the family stays
//! alive. Presented after the window, or by another client, it is taken as stolen: the whole
//! grant, with every refresh and access token from it, is revoked.

use async_trait::async_trait;
use mandate_core::{OAuthError, ScopeSet, SecretDigest};
use mandate_store::RefreshUse;

use super::delegated::{Source, check_instance, issue, live_grant};
use super::{GrantHandler, Issued};
use crate::audit::revoke_grant;
use crate::client_auth::AuthenticatedClient;
use crate::error::store_error;
use crate::form::OAuthForm;
use crate::state::AppState;

pub struct RefreshTokenGrant;

#[async_trait]
impl GrantHandler for RefreshTokenGrant {
    async fn handle(
        &self,
        state: &AppState,
        client: &AuthenticatedClient,
        form: &OAuthForm,
    ) -> Result<Issued, OAuthError> {
        let presented = form.require("refresh_token")?;
        let now = state.now();
        let hash = SecretDigest::of(presented).encode();
        // §11.3 of the attestation draft: a token bound to a client instance is not even rotated
        // for another instance of its client, so a copy without the instance key cannot spend it.
        // (Another client presenting it is theft, handled below.)
        if let Some(token) = state.store.get_refresh_token(&hash).await.map_err(store_error)?
            && token.client_id == client.client_id
            && let Some(grant) = state.store.get_grant(&token.grant_id).await.map_err(store_error)?
        {
            check_instance(&grant, client)?;
        }
        let token = match state.store.use_refresh_token(&hash, now).await.map_err(store_error)? {
            RefreshUse::Rotated(token) => token,
            RefreshUse::AlreadyUsed(token) => {
                let grace = state.settings.refresh_reuse_grace.as_secs() as i64;
                // Whole seconds: `<` keeps the window at most `grace` long.
                let within = token.used_at.is_some_and(|used| now - used < grace);
                if !(within && token.client_id == client.client_id) {
                    revoke_grant(state, &token.grant_id, &token.client_id, "rotated refresh token reused").await?;
                    return Err(OAuthError::invalid_grant(
                        "the refresh token was already used; as a precaution every token of this grant is revoked",
                    ));
                }
                tracing::info!(client_id = %client.client_id, "rotated refresh token presented again within the grace window; issuing a sibling");
                token
            }
            RefreshUse::Unknown => {
                return Err(OAuthError::invalid_grant("the refresh token is invalid, expired or revoked"));
            }
        };
        if token.client_id != client.client_id {
            revoke_grant(state, &token.grant_id, &token.client_id, "refresh token presented by another client").await?;
            return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
        }
        let grant = live_grant(state, &token.grant_id).await?;
        let scope = ScopeSet::parse(&token.scope).map_err(|_| OAuthError::server_error())?;
        issue(state, client, form, Source { grant: &grant, scope, parent: Some(&token), nonce: None }).await
    }
}
