//! RFC 8693 token exchange. For an access token (the default `requested_token_type`) the result is
//! a **delegated** token: `sub` stays the person, `act` names the current actor with the earlier
//! actors nested inside (oldest innermost), unless the client is configured to impersonate. For
//! `id-jag` and `jwt` the result is an assertion for another authorization server
//! (`chaining.rs`).
//!
//! Who may exchange a subject token: the client it was issued to, the client that is the resource
//! server it was issued for (`[[resources]] client_id`), or an actor its `may_act` names; and never
//! a token that is revoked, or derives from one that is, or is a disabled person's. The new
//! token's audience is a registered resource the client may use, its scope a subset of the
//! subject token's, its lifetime within the subject's and the actor's, and its chain no deeper
//! than `token_exchange.max_delegation_depth`.
//!
//! The authenticated client is always the current (outermost) actor; an actor token only proves
//! it, and must be the client's own token about itself. A trusted issuer's JWT passes the checks
//! of the jwt-bearer grant (`trusted.rs`): its `jti` is used up by the exchange, its `resource`
//! claim bounds the target, and its client ids and `may_act` name clients here only through the
//! issuer's `client_ids` mapping.

use async_trait::async_trait;
use mandate_core::{Actor, OAuthError, ResourceUri, ScopeSet};

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
/// or the token's `may_act` names it. A trusted issuer's token names a client here only through
/// that issuer's `client_ids` mapping: its client ids are another namespace.
pub fn check_holder(state: &AppState, client: &AuthenticatedClient, subject: &Presented) -> Result<(), OAuthError> {
    let held = match &subject.iss {
        None => {
            let own = subject.client_id.as_deref() == Some(client.client_id.as_str());
            let serves = subject
                .audiences
                .iter()
                .any(|aud| state.settings.custody.resource_clients.get(aud) == Some(&client.client_id));
            own || serves
        }
        Some(iss) => {
            let trusted = state.settings.custody.trusted_issuer(iss);
            let foreign = subject.client_id.as_deref();
            trusted.zip(foreign).and_then(|(t, c)| t.local_client(c)) == Some(client.client_id.as_str())
        }
    };
    if held || may_act_names(state, subject, &client.client_id) {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "the subject token was issued neither to this client nor for a resource it serves; only they may exchange it",
        ))
    }
}

/// Whether the subject token's `may_act` names this server's client `client_id`. In a trusted
/// issuer's token it names one of the issuer's clients (mapped through `client_ids`), unless its
/// `iss` is this server's.
fn may_act_names(state: &AppState, subject: &Presented, client_id: &str) -> bool {
    let Some(may) = &subject.may_act else { return false };
    let Some(iss) = &subject.iss else { return may.permits(client_id, None) };
    match may.iss.as_deref() {
        Some(named) if named == state.settings.issuer.as_str() => may.sub == client_id,
        Some(named) if named != iss => false,
        _ => {
            let trusted = state.settings.custody.trusted_issuer(iss);
            trusted.and_then(|t| t.local_client(&may.sub)) == Some(client_id)
        }
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

/// Who acts now: always the authenticated client (RFC 8693 §4.1: the outermost `act`). An actor
/// token, when sent, must be this client's own token about itself (`sub` and `client_id` both the
/// client, no `act`, from this server): a token the client holds for a person cannot make the
/// person the actor.
pub(super) fn current_actor(client: &AuthenticatedClient, actor: Option<&Presented>) -> Result<Actor, OAuthError> {
    if let Some(a) = actor {
        let me = client.client_id.as_str();
        if a.iss.is_some() || a.kind != presented::Kind::AccessToken {
            return Err(OAuthError::invalid_request(
                "the actor token must be an access token of this server issued to this client about itself",
            ));
        }
        if a.client_id.as_deref() != Some(me) {
            return Err(OAuthError::invalid_request(
                "the actor token belongs to another client; an actor token must be this client's own",
            ));
        }
        if a.sub != me || a.act.is_some() {
            return Err(OAuthError::invalid_request(format!(
                "the actor token is about {}, not this client itself; a token held for someone cannot make them the actor",
                a.sub
            )));
        }
    }
    Ok(Actor::new(client.client_id.clone(), None))
}

/// The chain before the current actor: the subject token's `act`; or, for a token a client got for
/// a person (no `act`), that client as the first actor, unless it is the current actor itself. A
/// trusted issuer's client is marked as the issuer's.
pub(super) fn prior_chain(subject: &Presented, current: &Actor) -> Option<Actor> {
    if let Some(act) = &subject.act {
        return Some(act.clone());
    }
    let client = subject.client_id.as_deref()?;
    match &subject.iss {
        None => (client != subject.sub && client != current.sub).then(|| Actor::new(client.to_owned(), None)),
        Some(iss) => (mandate_core::act::foreign_name(iss, client) != subject.sub)
            .then(|| Actor::new(client.to_owned(), Some(iss.clone()))),
    }
}

/// A trusted issuer's `resource` claim limits what its token may be exchanged for.
fn check_claimed_resources(subject: &Presented, target: &ResourceUri) -> Result<(), OAuthError> {
    if subject.resources.is_empty() {
        return Ok(());
    }
    let named = subject.resources.iter().any(|r| ResourceUri::parse(r).is_ok_and(|r| &r == target));
    if named {
        Ok(())
    } else {
        Err(OAuthError::invalid_target(format!(
            "the subject token is for {}, not {target}",
            subject.resources.join(", ")
        )))
    }
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
    if subject.may_act.is_some() && !may_act_names(state, subject, &current.sub) {
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
    check_claimed_resources(subject, &resource.uri)?;
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
    presented::consume(state, subject).await?;
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
