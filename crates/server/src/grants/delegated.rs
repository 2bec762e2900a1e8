//! Tokens from a person's grant, shared by the code and refresh grants: one access token for one
//! of the granted resources, a rotated refresh token when `offline_access` was granted, and an
//! ID token when `openid` was.
//!
//! A grant is bound to the client instance whose attestation first came with it (when the code
//! was redeemed): its tokens carry that attestation's facts, and only that instance key may
//! refresh it (draft-ietf-oauth-attestation-based-client-auth §11.3).

use mandate_core::attestation::AttestationClaim;
use mandate_core::{GrantType, OAuthError, ResourceUri, ScopeSet, SecretDigest, oidc};
use mandate_store::{Grant, RefreshToken};

use super::Issued;
use crate::client_auth::AuthenticatedClient;
use crate::clients::pushed;
use crate::error::store_error;
use crate::form::OAuthForm;
use crate::minting::{Issuance, mint_access_token, mint_id_token};
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

/// Whether `client` may use `grant`: a grant bound to a client instance needs an attestation for
/// the same instance key.
pub fn check_instance(grant: &Grant, client: &AuthenticatedClient) -> Result<(), OAuthError> {
    let Some(bound) = &grant.attestation else { return Ok(()) };
    match &client.attestation {
        Some(presented) if presented.instance_jkt == bound.instance_jkt => Ok(()),
        Some(_) => Err(OAuthError::invalid_grant(
            "this grant is bound to another client instance: attest with the key that redeemed the code",
        )),
        None => Err(OAuthError::invalid_grant(
            "this grant is bound to an attested client instance: send its client attestation and PoP",
        )),
    }
}

/// The `attestation` claim of the grant's tokens; the first attestation presented binds the grant.
async fn attestation_of(
    state: &AppState,
    grant: &Grant,
    client: &AuthenticatedClient,
) -> Result<Option<AttestationClaim>, OAuthError> {
    check_instance(grant, client)?;
    if let Some(bound) = &grant.attestation {
        return Ok(Some(bound.claim.clone()));
    }
    let Some(presented) = &client.attestation else { return Ok(None) };
    let binding = presented.binding();
    if !state.store.bind_grant_attestation(&grant.grant_id, &binding).await.map_err(store_error)? {
        // Bound meanwhile, by a concurrent request: that binding stands.
        let current = live_grant(state, &grant.grant_id).await?;
        check_instance(&current, client)?;
        return Ok(current.attestation.map(|b| b.claim));
    }
    tracing::info!(grant_id = %grant.grant_id, attester = %binding.claim.attester, "grant bound to an attested client instance");
    Ok(Some(binding.claim))
}

pub async fn issue(
    state: &AppState,
    client: &AuthenticatedClient,
    form: &OAuthForm,
    source: Source<'_>,
) -> Result<Issued, OAuthError> {
    let grant = source.grant;
    let attestation = attestation_of(state, grant, client).await?;
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
    let minted = mint_access_token(
        state,
        &Issuance {
            subject: &grant.username,
            client_id: &client.client_id,
            audience: &resource.uri,
            scope: &token_scope,
            attestation: attestation.as_ref(),
            act: None,
            not_after: None,
        },
    )?;
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
        let id_token = mint_id_token(state, &user, &client.client, grant, &source.scope, source.nonce, &minted.token)?;
        // Remembered (by digest) with its grant: revoking the grant stops it being exchanged.
        let expires_at = now + state.settings.id_token_ttl.as_secs() as i64;
        state
            .store
            .record_access_token(&super::presented::id_token_record(&id_token), &grant.grant_id, expires_at)
            .await
            .map_err(store_error)?;
        Some(id_token)
    } else {
        None
    };
    Ok(Issued {
        parent_jti: Some(format!("grant:{}", grant.grant_id)),
        grant_id: Some(grant.grant_id.clone()),
        refresh_token,
        id_token,
        audit_detail: pushed::is_pushed_client_id(&client.client_id)
            .then(|| pushed::audit_detail(grant.unverified_client_name.as_deref())),
        ..Issued::access_token(minted, token_scope, resource.uri)
    })
}

/// The audience of an OpenID Connect sign-in's access token, granted no resource: this server's
/// UserInfo endpoint, with the identity scopes only (no resource server accepts it).
fn userinfo_audience(state: &AppState) -> mandate_core::Resource {
    let endpoint = state.settings.issuer.endpoint("/userinfo");
    mandate_core::Resource {
        uri: ResourceUri::parse(&endpoint).unwrap_or_else(|_| unreachable!("the issuer is an http(s) URL")),
        name: "UserInfo".into(),
        scopes: ScopeSet::from_tokens(["openid", "profile", "email"]).unwrap_or_default(),
    }
}

/// RFC 8707 §2.2: one of the granted resources; without `resource`, the granted one (when only one
/// was granted).
async fn pick_resource(
    state: &AppState,
    grant: &Grant,
    form: &OAuthForm,
) -> Result<mandate_core::Resource, OAuthError> {
    let granted: Vec<&str> = grant.resources.split(' ').filter(|r| !r.is_empty()).collect();
    if granted.is_empty() && form.all("resource").is_empty() {
        return Ok(userinfo_audience(state));
    }
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
        .lookups
        .resource(state, &uri)
        .await?
        .ok_or_else(|| OAuthError::invalid_target(format!("{uri} is no longer a registered resource")))
}
