//! The subject and actor tokens of a token exchange (RFC 8693 §2.1), read into one shape: mandate's
//! own access and ID tokens (signature, times, the person's account, and revocation of the token,
//! of everything it derives from, and of the grant it came from), or JWTs of a
//! `[[trusted_issuers]]` entry (the checks of `trusted.rs`, the issuer's subject mapped into this
//! server's namespace and its actors marked as its). Anything else is `invalid_request`, as
//! RFC 8693 §2.2.2 asks for tokens that are invalid or unacceptable.

use mandate_core::jose::verify_id_token_hint;
use mandate_core::{Actor, OAuthError, ScopeSet, SecretDigest, UnixTime};
use serde_json::Value;

use crate::endpoints::introspect::verified_access_token;
use crate::error::store_error;
use crate::state::AppState;
use crate::trusted::{self, Use};

pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";

/// A verified subject or actor token.
#[derive(Debug, Clone)]
pub struct Presented {
    /// Whose token it is.
    pub sub: String,
    /// `None` for mandate's own tokens.
    pub iss: Option<String>,
    /// The client it was issued to (an access token's `client_id`, an ID token's `aud`).
    pub client_id: Option<String>,
    pub scope: ScopeSet,
    pub audiences: Vec<String>,
    /// Our own tokens' `jti` (their lineage); `None` for ID tokens and foreign JWTs.
    pub jti: Option<String>,
    pub exp: UnixTime,
    pub act: Option<Actor>,
    pub may_act: Option<Actor>,
    pub kind: Kind,
    /// An ID token's `auth_time`, `email`: claims an ID-JAG may carry on.
    pub auth_time: Option<UnixTime>,
    pub email: Option<String>,
    /// A foreign JWT's `resource` claim: the targets it may be exchanged for (any when empty).
    pub resources: Vec<String>,
    /// A foreign JWT's `jti`, recorded once per issuer when the exchange succeeds ([`consume`]).
    pub foreign_jti: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AccessToken,
    IdToken,
    ForeignJwt,
}

fn unacceptable(which: &str, why: impl std::fmt::Display) -> OAuthError {
    OAuthError::invalid_request(format!("the {which} is not acceptable: {why}"))
}

/// Reads `token` of RFC 8693 type `token_type` as the `which` ("subject token", "actor token").
pub async fn read(state: &AppState, which: &str, token: &str, token_type: &str) -> Result<Presented, OAuthError> {
    let ours = trusted::unverified_issuer(token).is_some_and(|iss| iss == state.settings.issuer.as_str());
    match token_type {
        ACCESS_TOKEN | JWT if ours => own_access_token(state, which, token).await,
        ID_TOKEN if ours => own_id_token(state, which, token).await,
        ACCESS_TOKEN | JWT | ID_TOKEN => foreign(state, which, token).await,
        other => Err(OAuthError::invalid_request(format!(
            "{which} type {other:?} is not supported (access_token, id_token or jwt)"
        ))),
    }
}

async fn own_access_token(state: &AppState, which: &str, token: &str) -> Result<Presented, OAuthError> {
    let claims = verified_access_token(state, token)
        .await
        .ok_or_else(|| unacceptable(which, "not a valid, unexpired access token of this server"))?;
    if state.store.is_access_token_revoked(&claims.jti).await.map_err(store_error)? {
        return Err(unacceptable(which, "it has been revoked (or a token it was exchanged from has)"));
    }
    check_account(state, which, &claims.sub).await?;
    Ok(Presented {
        sub: claims.sub,
        iss: None,
        client_id: Some(claims.client_id),
        scope: claims.scope.as_deref().and_then(|s| ScopeSet::parse(s).ok()).unwrap_or_default(),
        audiences: vec![claims.aud],
        jti: Some(claims.jti),
        exp: claims.exp,
        act: claims.act,
        may_act: None,
        kind: Kind::AccessToken,
        auth_time: None,
        email: None,
        resources: Vec::new(),
        foreign_jti: None,
    })
}

/// A disabled person's tokens are not exchanged (their grants stop at the next refresh too).
/// A subject that is no person here (a client's own token) passes.
async fn check_account(state: &AppState, which: &str, sub: &str) -> Result<(), OAuthError> {
    match state.store.get_user(sub).await.map_err(store_error)? {
        Some(user) if user.disabled => Err(unacceptable(which, "the person's account is disabled")),
        _ => Ok(()),
    }
}

/// The key under which an ID token is remembered with the grant it came from: its digest (the
/// store never sees the token), in the table of access tokens by grant, so that revoking the grant
/// revokes the ID token for exchanges as it does the access tokens.
pub fn id_token_record(id_token: &str) -> String {
    format!("id_token:{}", SecretDigest::of(id_token).encode())
}

async fn own_id_token(state: &AppState, which: &str, token: &str) -> Result<Presented, OAuthError> {
    let keys = state.keyring.current();
    let claims = verify_id_token_hint(token, &keys.published, state.settings.issuer.as_str())
        .map_err(|e| unacceptable(which, e))?;
    if claims.exp <= state.now() {
        return Err(unacceptable(which, "the ID token has expired"));
    }
    // The person must still be one, and the grant the ID token came with still live.
    match state.store.get_user(&claims.sub).await.map_err(store_error)? {
        Some(user) if !user.disabled => {}
        Some(_) => return Err(unacceptable(which, "the person's account is disabled")),
        None => return Err(unacceptable(which, "the person is no longer known here")),
    }
    if state.store.is_access_token_revoked(&id_token_record(token)).await.map_err(store_error)? {
        return Err(unacceptable(which, "the grant it was issued with has been revoked"));
    }
    Ok(Presented {
        sub: claims.sub,
        iss: None,
        client_id: Some(claims.aud.clone()),
        scope: ScopeSet::default(),
        audiences: vec![claims.aud],
        jti: None,
        exp: claims.exp,
        act: None,
        may_act: None,
        kind: Kind::IdToken,
        auth_time: Some(claims.auth_time),
        email: claims.email,
        resources: Vec::new(),
        foreign_jti: None,
    })
}

async fn foreign(state: &AppState, which: &str, token: &str) -> Result<Presented, OAuthError> {
    let jwt = trusted::verify(state, token, Use::SubjectToken).await.map_err(|e| unacceptable(which, e))?;
    let g = jwt.grant;
    let sub = trusted::local_subject(state, jwt.trusted, &g.sub).await.map_err(|e| unacceptable(which, e))?;
    let act = trusted::foreign_chain(state, jwt.trusted, jwt.claims.get("act")).map_err(|e| unacceptable(which, e))?;
    let limit = state.settings.custody.max_delegation_depth;
    let may_act = match jwt.claims.get("may_act").filter(|v| !v.is_null()) {
        Some(claim) => Some(Actor::from_claim(claim, limit).map_err(|e| unacceptable(which, format!("may_act: {e}")))?),
        None => None,
    };
    Ok(Presented {
        sub,
        iss: Some(jwt.trusted.issuer.clone()),
        // The issuer's client ids: they name a client here only through its client_ids mapping.
        client_id: g.client_id.or(g.azp),
        scope: g.scope.as_deref().and_then(|s| ScopeSet::parse(s).ok()).unwrap_or_default(),
        audiences: Vec::new(),
        jti: None,
        exp: g.exp,
        act,
        may_act,
        kind: Kind::ForeignJwt,
        auth_time: jwt.claims.get("auth_time").and_then(Value::as_i64),
        email: jwt.claims.get("email").and_then(Value::as_str).map(str::to_owned),
        resources: g.resources,
        foreign_jti: Some(g.jti),
    })
}

/// Records a foreign subject token's `jti` (a no-op for this server's own tokens): called once
/// every check of the exchange has passed, so a refused request does not use it up.
pub async fn consume(state: &AppState, presented: &Presented) -> Result<(), OAuthError> {
    let (Some(iss), Some(jti)) = (&presented.iss, &presented.foreign_jti) else { return Ok(()) };
    if !trusted::consume(state, iss, jti, presented.exp).await? {
        return Err(OAuthError::invalid_request("the subject token has been used already (its jti is single-use)"));
    }
    Ok(())
}
