//! The client credentials grant (RFC 6749 §4.4): a confidential client acting for itself, so
//! `sub` is the client (RFC 9068 §2.2).

use async_trait::async_trait;
use mandate_core::OAuthError;

use super::{GrantHandler, Issued, grant_scope, resolve_resource};
use crate::client_auth::AuthenticatedClient;
use crate::form::OAuthForm;
use crate::minting::{Issuance, mint_access_token};
use crate::state::AppState;

pub struct ClientCredentials;

#[async_trait]
impl GrantHandler for ClientCredentials {
    async fn handle(
        &self,
        state: &AppState,
        client: &AuthenticatedClient,
        form: &OAuthForm,
    ) -> Result<Issued, OAuthError> {
        if client.is_public() {
            return Err(OAuthError::unauthorized_client("a public client cannot use client_credentials"));
        }
        let resource = resolve_resource(state, client, form).await?;
        let scope = grant_scope(client, &resource, form)?;
        let attestation = client.attestation.as_ref().map(|a| &a.claim);
        let minted = mint_access_token(
            state,
            &Issuance {
                subject: &client.client_id,
                client_id: &client.client_id,
                audience: &resource.uri,
                scope: &scope,
                attestation,
                act: None,
                not_after: None,
            },
        )?;
        Ok(Issued::access_token(minted, scope, resource.uri))
    }
}
