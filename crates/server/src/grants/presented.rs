//! The subject and actor tokens of a token exchange (RFC 8693 §2.1), read into one shape: mandate's
//! own access and ID tokens (signature, times, and revocation of the token and everything it
//! derives from), or JWTs of a `[[trusted_issuers]]` entry. Anything else is `invalid_request`,
//! as RFC 8693 §2.2.2 asks for tokens that are invalid or unacceptable.

use mandate_core::jose::verify_id_token_hint;
use mandate_core::{Actor, OAuthError, ScopeSet, UnixTime};
use serde_json::Value;

use crate::endpoints::introspect::verified_access_token;
use crate::error::store_error;
use crate::state::AppState;
use crate::trusted;

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
        ID_TOKEN if ours => own_id_token(state, which, token),
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
    })
}

fn own_id_token(state: &AppState, which: &str, token: &str) -> Result<Presented, OAuthError> {
    let keys = state.keyring.current();
    let claims = verify_id_token_hint(token, &keys.published, state.settings.issuer.as_str())
        .map_err(|e| unacceptable(which, e))?;
    if claims.exp <= state.now() {
        return Err(unacceptable(which, "the ID token has expired"));
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
    })
}

async fn foreign(state: &AppState, which: &str, token: &str) -> Result<Presented, OAuthError> {
    let jwt = trusted::verify(state, token, &[None, Some("jwt"), Some("at+jwt")])
        .await
        .map_err(|e| unacceptable(which, e))?;
    let c = &jwt.claims;
    let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
    let sub = text("sub").ok_or_else(|| unacceptable(which, "it names no subject"))?;
    let audiences = match c.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let actor = |k: &str| c.get(k).and_then(|v| serde_json::from_value::<Actor>(v.clone()).ok());
    Ok(Presented {
        sub,
        iss: Some(jwt.issuer.clone()),
        client_id: text("client_id").or_else(|| text("azp")),
        scope: text("scope").and_then(|s| ScopeSet::parse(&s).ok()).unwrap_or_default(),
        audiences,
        jti: None,
        exp: c.get("exp").and_then(Value::as_i64).unwrap_or_default(),
        act: actor("act"),
        may_act: actor("may_act"),
        kind: Kind::ForeignJwt,
        auth_time: c.get("auth_time").and_then(Value::as_i64),
        email: text("email"),
    })
}
