//! RFC 8693 token exchange. For an access token (the default `requested_token_type`) the result is
//! a **delegated** token: `sub` stays the person, `act` names the current actor with the earlier
//! actors nested inside (oldest innermost), unless the client is configured to impersonate. For
//! `id-jag` and `jwt` the result is an assertion for another authorization server
//! (`chaining.rs`).
//!
//! Who may exchange a subject token: the client it was issued to, the client that is the resource
//! server it was issued for (`[[resources]] client_id`), or an actor its `may_act` names; and never
//! a token that is revoked, or derives from one that is. The new token's audience is a registered
//! resource the client may use, its scope a subset of the subject token's, its lifetime within
//! the subject's and the actor's, and its chain no deeper than `token_exchange.max_delegation_depth`.

use async_trait::async_trait;
use mandate_core::{Actor, OAuthError, ScopeSet};

use super::presented::{self, Presented};
use super::{GrantHandler, Issued, resolve_target};
use crate::client_auth::AuthenticatedClient;
use crate::form::OAuthForm;
use crate::minting::{Issuance, mint_access_token};
use crate::state::AppState;

pub struct TokenExchange;

/// The request's tokens, read and verified.
pub struct Exchange {
    pub subject: Presented,
    pub actor: Option<Presented>,
}

#[async_trait]
impl GrantHandler for TokenExchange {
    async fn handle(
        &self,
        state: &AppState,
        client: &AuthenticatedClient,
        form: &OAuthForm,
    ) -> Result<Issued, OAuthError> {
        let exchange = read_tokens(state, form).await?;
        match form.get("requested_token_type").unwrap_or(presented::ACCESS_TOKEN) {
            presented::ACCESS_TOKEN => delegate(state, client, form, &exchange).await,
            presented::ID_JAG => super::chaining::identity_assertion(state, client, form, &exchange).await,
            presented::JWT => super::chaining::authorization_grant(state, client, form, &exchange).await,
            other => Err(OAuthError::invalid_request(format!(
                "requested_token_type {other:?} is not issued here (access_token, id-jag or jwt)"
            ))),
        }
    }
}

async fn read_tokens(state: &AppState, form: &OAuthForm) -> Result<Exchange, OAuthError> {
    let subject_token = form.require("subject_token")?;
    let subject_type = form.require("subject_token_type")?;
    let subject = presented::read(state, "subject token", subject_token, subject_type).await?;
    let actor = match (form.get("actor_token"), form.get("actor_token_type")) {
        (Some(token), Some(token_type)) => Some(presented::read(state, "actor token", token, token_type).await?),
        (Some(_), None) => {
            return Err(OAuthError::invalid_request(
                "actor_token_type is required with an actor_token (RFC 8693 §2.1)",
            ));
        }
        (None, Some(_)) => return Err(OAuthError::invalid_request("actor_token_type was sent without an actor_token")),
        (None, None) => None,
    };
    Ok(Exchange { subject, actor })
}

/// The client may exchange the subject token: it was issued to it, or for the resource it serves,
/// or the token's `may_act` names it.
pub fn check_holder(state: &AppState, client: &AuthenticatedClient, subject: &Presented) -> Result<(), OAuthError> {
    let own = subject.client_id.as_deref() == Some(client.client_id.as_str());
    let serves =
        subject.audiences.iter().any(|aud| state.settings.custody.resource_clients.get(aud) == Some(&client.client_id));
    let named = subject.may_act.as_ref().is_some_and(|m| m.permits(&client.client_id, None));
    if own || serves || named {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "the subject token was issued neither to this client nor for a resource it serves; only they may exchange it",
        ))
    }
}

/// The requested scope, which must lie within the subject token's; `None` when none was asked.
pub(super) fn narrowed(form: &OAuthForm, subject: &Presented) -> Result<Option<ScopeSet>, OAuthError> {
    let Some(raw) = form.get("scope") else { return Ok(None) };
    let requested = ScopeSet::parse(raw).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
    let beyond = requested.difference(&subject.scope);
    if !beyond.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "scope {beyond} is not in the subject token; an exchange can only narrow"
        )));
    }
    Ok(Some(requested))
}

/// `token_exchange.max_delegation_depth`.
pub(super) fn check_depth(state: &AppState, act: &Actor) -> Result<(), OAuthError> {
    let limit = state.settings.custody.max_delegation_depth;
    if act.depth() > limit {
        return Err(OAuthError::invalid_request(format!(
            "the delegation chain would be {} actors long ({}); the limit is {limit}",
            act.depth(),
            act.chain().join(" ← ")
        )));
    }
    Ok(())
}

/// Who acts now: the actor token's subject, or else the client itself.
pub(super) fn current_actor(client: &AuthenticatedClient, actor: Option<&Presented>) -> Result<Actor, OAuthError> {
    match actor {
        Some(a) => {
            if a.client_id.as_deref() != Some(client.client_id.as_str()) && a.sub != client.client_id {
                return Err(OAuthError::invalid_request(
                    "the actor token belongs to another client; an actor token must be this client's own",
                ));
            }
            Ok(Actor::new(a.sub.clone(), a.iss.clone()))
        }
        None => Ok(Actor::new(client.client_id.clone(), None)),
    }
}

/// The chain before the current actor: the subject token's `act`; or, for a token a client got for
/// a person (no `act`), that client as the first actor, unless it is the current actor itself.
pub(super) fn prior_chain(subject: &Presented, current: &Actor) -> Option<Actor> {
    if let Some(act) = &subject.act {
        return Some(act.clone());
    }
    let client = subject.client_id.as_deref()?;
    (client != subject.sub && client != current.sub).then(|| Actor::new(client.to_owned(), subject.iss.clone()))
}

async fn delegate(
    state: &AppState,
    client: &AuthenticatedClient,
    form: &OAuthForm,
    exchange: &Exchange,
) -> Result<Issued, OAuthError> {
    let subject = &exchange.subject;
    if subject.kind == presented::Kind::IdToken {
        return Err(OAuthError::invalid_request(
            "an ID token is exchanged for an identity assertion (requested_token_type id-jag), not an access token",
        ));
    }
    check_holder(state, client, subject)?;
    let current = current_actor(client, exchange.actor.as_ref())?;
    if let Some(may_act) = &subject.may_act
        && !may_act.permits(&current.sub, current.iss.as_deref())
    {
        return Err(OAuthError::invalid_request(format!(
            "the subject token's may_act does not allow {} to act for {}",
            current.sub, subject.sub
        )));
    }
    let impersonate = state.settings.custody.impersonation_clients.contains(&client.client_id);
    let prior = prior_chain(subject, &current);
    // A client narrowing its own token (no one before it, acting for itself) delegates to nobody.
    let own_token = prior.is_none() && current.sub == subject.sub;
    let act = (!impersonate && !own_token).then(|| Actor::after(current, prior));
    if let Some(act) = &act {
        check_depth(state, act)?;
    }

    let resource = resolve_target(state, client, form).await?;
    let offered = resource.scopes.intersection(&client.scopes);
    let scope = match narrowed(form, subject)? {
        Some(requested) => {
            let beyond_offer = requested.difference(&offered);
            if !beyond_offer.is_empty() {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {beyond_offer} is not available to this client on {}",
                    resource.uri
                )));
            }
            requested
        }
        None => subject.scope.intersection(&offered),
    };
    if scope.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "none of the subject token's scopes ({}) applies to {} for this client",
            subject.scope, resource.uri
        )));
    }
    let not_after = exchange.actor.as_ref().map_or(subject.exp, |a| a.exp.min(subject.exp));
    let minted = mint_access_token(
        state,
        &Issuance {
            subject: &subject.sub,
            client_id: &client.client_id,
            audience: &resource.uri,
            scope: &scope,
            attestation: client.attestation.as_ref().map(|a| &a.claim),
            act: act.as_ref(),
            not_after: Some(not_after),
        },
    )?;
    let detail = match &act {
        Some(act) => format!("delegation: {} for {}", act.chain().join(" ← "), subject.sub),
        None => format!("impersonation of {} by {}", subject.sub, client.client_id),
    };
    Ok(Issued {
        parent_jti: subject.jti.clone(),
        actor_jti: exchange.actor.as_ref().and_then(|a| a.jti.clone()),
        audit_detail: Some(detail),
        ..Issued::access_token(minted, scope, resource.uri)
    })
}
