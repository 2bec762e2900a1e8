//! The authorization code grant (OAuth 2.1 §4.1.3): the code is used once, atomically, by the
//! client it was issued to, within a minute, with the PKCE verifier and the same redirect URI.
//! A second use revokes everything the first one issued (RFC 9700 §4.5).

use async_trait::async_trait;
use mandate_core::{OAuthError, ScopeSet, SecretDigest, pkce};
use mandate_store::CodeRedemption;

use super::delegated::{Source, issue, live_grant};
use super::{GrantHandler, Issued};
use crate::audit::revoke_grant;
use crate::client_auth::AuthenticatedClient;
use crate::error::store_error;
use crate::form::OAuthForm;
use crate::state::AppState;

pub struct AuthorizationCodeGrant;

#[async_trait]
impl GrantHandler for AuthorizationCodeGrant {
    async fn handle(
        &self,
        state: &AppState,
        client: &AuthenticatedClient,
        form: &OAuthForm,
    ) -> Result<Issued, OAuthError> {
        let code = form.require("code")?;
        let verifier = form
            .get("code_verifier")
            .ok_or_else(|| OAuthError::invalid_request("code_verifier is required: this server requires PKCE"))?;
        let now = state.now();
        // Only the client the code was issued to can use it up, or reuse it (RFC 9700 §4.5).
        let hash = SecretDigest::of(code).encode();
        let redeemed = match state.store.redeem_code(&hash, &client.client_id, now).await.map_err(store_error)? {
            CodeRedemption::Redeemed(c) => c,
            CodeRedemption::AlreadyUsed(c) => {
                revoke_grant(state, &c.grant_id, &c.client_id, "authorization code used twice").await?;
                return Err(OAuthError::invalid_grant(
                    "the authorization code was already used; every token issued with it is revoked",
                ));
            }
            CodeRedemption::Unknown => {
                return Err(OAuthError::invalid_grant("the authorization code is invalid or has expired"));
            }
        };
        if redeemed.expires_at <= now {
            return Err(OAuthError::invalid_grant("the authorization code has expired"));
        }
        if let Some(uri) = form.get("redirect_uri")
            && uri != redeemed.redirect_uri
        {
            return Err(OAuthError::invalid_grant("redirect_uri differs from the one in the authorization request"));
        }
        if !pkce::verify_s256(verifier, &redeemed.code_challenge) {
            return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge (PKCE)"));
        }
        let grant = live_grant(state, &redeemed.grant_id).await?;
        let scope = ScopeSet::parse(&grant.scope).map_err(|_| OAuthError::server_error())?;
        issue(state, client, form, Source { grant: &grant, scope, parent: None, nonce: redeemed.nonce.as_deref() })
            .await
    }
}
