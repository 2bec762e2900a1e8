//! Assertions for other authorization servers, issued by token exchange:
//!
//! - **ID-JAG** (draft-ietf-oauth-identity-assertion-authz-grant, the MCP enterprise-managed
//!   authorization profile): mandate as the enterprise identity provider turns an ID token it
//!   issued to the requesting client into an identity assertion for the resource authorization
//!   server named by `audience`. `typ: oauth-id-jag+jwt`, with `iss`, `sub`, `aud`, `client_id`
//!   (the client's id there), `jti`, `iat`, `exp`, and `resource`, `scope`, `auth_time`, `email`
//!   when known. Response `token_type=N_A`, no refresh token.
//! - **JWT authorization grant** (draft-ietf-oauth-identity-chaining): an access token of this
//!   server becomes a grant for another trust domain's authorization server, carrying the
//!   delegation chain in `act`.
//!
//! Targets must be configured (`[[chaining_targets]]`); unknown ones are `invalid_target`.

use mandate_core::{Actor, OAuthError, ResourceUri, ScopeSet, UnixTime};
use serde::Serialize;

use super::Issued;
use super::presented::{self, Kind};
use super::token_exchange::{Exchange, check_depth, check_holder, current_actor, narrowed, prior_chain};
use crate::client_auth::AuthenticatedClient;
use crate::config::custody::ChainingTarget;
use crate::form::OAuthForm;
use crate::state::AppState;

pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";
/// How long an assertion for another server lives: long enough to be redeemed at once.
const ASSERTION_LIFETIME: i64 = 300;

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    jti: String,
    iat: UnixTime,
    exp: UnixTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a Actor>,
}

/// The configured server named by `audience` (or, for identity chaining, `resource`).
fn target<'a>(
    state: &'a AppState,
    form: &OAuthForm,
    resource_may_name_it: bool,
) -> Result<&'a ChainingTarget, OAuthError> {
    let one = |name: &str| match form.all(name) {
        [] => Ok(None),
        [value] => Ok(Some(value.as_str())),
        _ => Err(OAuthError::invalid_target(format!("send one {name}: a grant is for one authorization server"))),
    };
    let named = match one("audience")? {
        Some(audience) => Some(audience),
        None if resource_may_name_it => one("resource")?,
        None => None,
    };
    let issuer = named.ok_or_else(|| {
        OAuthError::invalid_request("audience is required: the issuer of the authorization server the grant is for")
    })?;
    state.settings.custody.chaining_target(issuer).ok_or_else(|| {
        OAuthError::invalid_target(format!("{issuer} is not an authorization server this server issues grants for"))
    })
}

fn requested_scope(form: &OAuthForm) -> Result<Option<ScopeSet>, OAuthError> {
    form.get("scope").map(|raw| ScopeSet::parse(raw).map_err(|e| OAuthError::invalid_scope(e.to_string()))).transpose()
}

fn sign(state: &AppState, typ: &str, claims: &AssertionClaims<'_>) -> Result<String, OAuthError> {
    let keys = state.keyring.current();
    keys.active.sign(typ, claims).map_err(|e| {
        tracing::error!(error = %e, kid = %keys.active.kid, "signing an assertion failed");
        OAuthError::server_error()
    })
}

#[allow(clippy::too_many_arguments)]
fn assertion_issued(
    token: String,
    claims: &AssertionClaims<'_>,
    scope: ScopeSet,
    issued_token_type: &'static str,
    parent_jti: Option<String>,
    actor_jti: Option<String>,
    act: Option<Actor>,
    detail: String,
) -> Result<Issued, OAuthError> {
    let audience = ResourceUri::parse(claims.aud).map_err(|_| OAuthError::server_error())?;
    Ok(Issued {
        access_token: token,
        expires_in: claims.exp - claims.iat,
        scope,
        jti: claims.jti.clone(),
        subject: claims.sub.to_owned(),
        audience,
        parent_jti,
        refresh_token: None,
        id_token: None,
        audit_detail: Some(detail),
        attestation: None,
        actor_jti,
        grant_id: None,
        act,
        issued_token_type,
        token_type: "N_A",
        issued_at: claims.iat,
        expires_at: claims.exp,
    })
}

/// `requested_token_type=urn:ietf:params:oauth:token-type:id-jag`.
pub async fn identity_assertion(
    state: &AppState,
    client: &AuthenticatedClient,
    form: &OAuthForm,
    exchange: &Exchange,
) -> Result<Issued, OAuthError> {
    let subject = &exchange.subject;
    if subject.kind != Kind::IdToken || subject.iss.is_some() {
        return Err(OAuthError::invalid_request(
            "an identity assertion is issued for an ID token of this server (subject_token_type id_token)",
        ));
    }
    if subject.client_id.as_deref() != Some(client.client_id.as_str()) {
        return Err(OAuthError::invalid_request("the ID token was issued to another client"));
    }
    let target = target(state, form, false)?;
    let resource = match form.all("resource") {
        [] => None,
        [one] => Some(one.as_str()),
        _ => return Err(OAuthError::invalid_target("send at most one resource")),
    };
    let scope = requested_scope(form)?.unwrap_or_default();
    let now = state.now();
    let claims = AssertionClaims {
        iss: state.settings.issuer.as_str(),
        sub: &subject.sub,
        aud: &target.issuer,
        client_id: target.client_id_for(&client.client_id),
        jti: crate::minting::new_jti(state),
        iat: now,
        exp: now + ASSERTION_LIFETIME,
        resource,
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        auth_time: subject.auth_time,
        email: subject.email.as_deref(),
        act: None,
    };
    let token = sign(state, ID_JAG_TYP, &claims)?;
    let detail = format!("identity assertion for {} at {}", claims.client_id, target.issuer);
    assertion_issued(token, &claims, scope, presented::ID_JAG, None, None, None, detail)
}

/// `requested_token_type=urn:ietf:params:oauth:token-type:jwt`: identity chaining.
pub async fn authorization_grant(
    state: &AppState,
    client: &AuthenticatedClient,
    form: &OAuthForm,
    exchange: &Exchange,
) -> Result<Issued, OAuthError> {
    let subject = &exchange.subject;
    if subject.kind != Kind::AccessToken || subject.iss.is_some() {
        return Err(OAuthError::invalid_request(
            "a JWT authorization grant is issued for an access token of this server",
        ));
    }
    check_holder(state, client, subject)?;
    let target = target(state, form, true)?;
    let scope = narrowed(form, subject)?.unwrap_or_else(|| subject.scope.clone());
    let current = current_actor(client, exchange.actor.as_ref())?;
    let prior = prior_chain(subject, &current);
    let act = Actor::after(current, prior);
    check_depth(state, &act)?;
    let now = state.now();
    let claims = AssertionClaims {
        iss: state.settings.issuer.as_str(),
        sub: &subject.sub,
        aud: &target.issuer,
        client_id: target.client_id_for(&client.client_id),
        jti: crate::minting::new_jti(state),
        iat: now,
        exp: (now + ASSERTION_LIFETIME).min(subject.exp),
        resource: None,
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        auth_time: None,
        email: None,
        act: Some(&act),
    };
    let token = sign(state, "JWT", &claims)?;
    let detail = format!("authorization grant for {} ({})", target.issuer, act.chain().join(" ← "));
    let actor_jti = exchange.actor.as_ref().and_then(|a| a.jti.clone());
    assertion_issued(token, &claims, scope, presented::JWT, subject.jti.clone(), actor_jti, Some(act.clone()), detail)
}
