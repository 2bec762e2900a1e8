//! Tokens from a person's grant, shared by the code and refresh grants: one access token for one
//! of the granted resources, a rotated refresh token when `offline_access` was granted, and an
//! ID token when `openid` was.

use mandate_core::{Client, GrantType, OAuthError, ResourceUri, ScopeSet, SecretDigest, oidc};
use mandate_store::{Grant, RefreshToken};

use super::Issued;
use crate::clients::pushed;
use crate::error::store_error;
use crate::form::OAuthForm;
use crate::minting::{mint_access_token, mint_id_token};
use crate::state::AppState;

/// Bytes of randomness in a refresh token.
const REFRESH_TOKEN_BYTES: usize = 32;

/// What the new tokens descend from.
pub struct Source<'a> {
    pub grant: &'a Grant,
    /// The scope the presented code or refresh token carries (the grant's, or narrower).
    pub scope: ScopeSet,
    /// The refresh token being rotated, if any.
    pub parent: Option<&'a RefreshToken>,
    pub nonce: Option<&'a str>,
}

/// A grant that is still live, or `invalid_grant`.
pub async fn live_grant(state: &AppState, grant_id: &str) -> Result<Grant, OAuthError> {
    let grant = state.store.get_grant(grant_id).await.map_err(store_error)?;
    grant
        .filter(|g| g.revoked_at.is_none())
        .ok_or_else(|| OAuthError::invalid_grant("the grant behind this token has been revoked"))
}

pub async fn issue(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
    source: Source<'_>,
) -> Result<Issued, OAuthError> {
    let grant = source.grant;
    // A disabled account stops every grant at its next refresh.
    let user = state.store.get_user(&grant.username).await.map_err(store_error)?;
    let user =
        user.filter(|u| !u.disabled).ok_or_else(|| OAuthError::invalid_grant("the person's account is disabled"))?;
    let resource = pick_resource(state, grant, form).await?;
    // RFC 6749 §6: a refresh may narrow the scope of the access token, never widen it.
    let scope = match form.get("scope") {
        None => source.scope.clone(),
        Some(raw) => {
            let requested = ScopeSet::parse(raw).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            let wider = requested.difference(&source.scope);
            if !wider.is_empty() {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {wider} was not granted; a token request cannot widen the grant (ask the person again at /authorize)"
                )));
            }
            requested
        }
    };
    // The access token carries the scopes its audience offers, plus the OpenID scopes for UserInfo.
    let identity = ScopeSet::from_tokens(["openid", "profile", "email"]).unwrap_or_default();
    let token_scope = scope.intersection(&resource.scopes.union(&identity));
    if token_scope.is_empty() {
        return Err(OAuthError::invalid_scope(format!("none of the requested scopes applies to {}", resource.uri)));
    }
    let minted = mint_access_token(state, &grant.username, &client.client_id, &resource.uri, &token_scope)?;
    state
        .store
        .record_access_token(&minted.claims.jti, &grant.grant_id, minted.claims.exp)
        .await
        .map_err(store_error)?;

    let now = state.now();
    let refresh_token = if source.scope.contains(oidc::OFFLINE_ACCESS) && client.allows_grant(GrantType::RefreshToken) {
        let token = state.rng.token(REFRESH_TOKEN_BYTES);
        state
            .store
            .put_refresh_token(&RefreshToken {
                token_hash: SecretDigest::of(&token).encode(),
                grant_id: grant.grant_id.clone(),
                client_id: client.client_id.clone(),
                parent_hash: source.parent.map(|p| p.token_hash.clone()),
                // RFC 6749 §6: the new refresh token keeps the scope of the one presented.
                scope: source.scope.to_string(),
                created_at: now,
                expires_at: now + state.settings.refresh_token_ttl.as_secs() as i64,
                used_at: None,
            })
            .await
            .map_err(store_error)?;
        Some(token)
    } else {
        None
    };
    let id_token = if source.scope.contains(oidc::OPENID) {
        Some(mint_id_token(state, &user, client, grant, &source.scope, source.nonce, &minted.token)?)
    } else {
        None
    };
    Ok(Issued {
        expires_in: minted.claims.exp - minted.claims.iat,
        access_token: minted.token,
        scope: token_scope,
        jti: minted.claims.jti,
        subject: minted.claims.sub,
        audience: resource.uri,
        parent_jti: Some(format!("grant:{}", grant.grant_id)),
        refresh_token,
        id_token,
        audit_detail: pushed::is_pushed_client_id(&client.client_id)
            .then(|| pushed::audit_detail(grant.unverified_client_name.as_deref())),
    })
}

/// RFC 8707 §2.2: one of the granted resources; without `resource`, the granted one (when only one
/// was granted).
async fn pick_resource(
    state: &AppState,
    grant: &Grant,
    form: &OAuthForm,
) -> Result<mandate_core::Resource, OAuthError> {
    let granted: Vec<&str> = grant.resources.split(' ').filter(|r| !r.is_empty()).collect();
    let chosen = match form.all("resource") {
        [] if granted.len() == 1 => granted[0].to_owned(),
        [] => {
            return Err(OAuthError::invalid_target(
                "this grant covers several resources; name one with the resource parameter",
            ));
        }
        [one] => {
            let uri = ResourceUri::parse(one).map_err(|e| OAuthError::invalid_target(format!("resource {e}")))?;
            if !granted.contains(&uri.as_str()) {
                return Err(OAuthError::invalid_target(format!("{uri} was not part of this grant")));
            }
            uri.as_str().to_owned()
        }
        _ => {
            return Err(OAuthError::invalid_target("send one resource per token request; each token has one audience"));
        }
    };
    let uri = ResourceUri::parse(&chosen).map_err(|_| OAuthError::server_error())?;
    state
        .store
        .get_resource(&uri)
        .await
        .map_err(store_error)?
        .ok_or_else(|| OAuthError::invalid_target(format!("{uri} is no longer a registered resource")))
}
