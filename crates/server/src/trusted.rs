//! JWTs from the configured `[[trusted_issuers]]`: ID-JAGs and identity-chaining grants (the
//! jwt-bearer grant) and subject tokens of a token exchange. Both uses get the same checks
//! (RFC 7521 §5.2, RFC 7523 §3, as updated by RFC 10070):
//!
//! - the issuer is listed; its keys are inline or fetched from its `jwks_uri` through the
//!   SSRF-safe fetcher (cached, refetched for an unknown `kid` at most once per interval, the old
//!   keys kept when a refetch fails); the algorithm is asymmetric (never `none`, never HMAC);
//! - the profile is decided by `typ` alone: `oauth-id-jag+jwt` an ID-JAG, `JWT` an
//!   identity-chaining grant; no `typ` only where the issuer is configured with
//!   `untyped_grants`; `at+jwt` (the issuer's access tokens, made for its own APIs) only as
//!   subject tokens and only where configured with `accept_access_tokens`;
//! - `aud` is this server's issuer, alone; `exp` at most the issuer's `max_lifetime` ahead;
//!   a `jti` of bounded size, recorded once per issuer for both uses ([`consume`]);
//! - the issuer's `sub`, `act` and client ids are its namespace, not this server's: they are
//!   qualified, mapped or refused ([`local_subject`], [`foreign_chain`],
//!   `TrustedIssuer::local_client`).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mandate_core::assertion::{GrantClaims, check_grant_claims, parse_client_jwks, select_key};
use mandate_core::jose::MAX_TOKEN_BYTES;
use mandate_core::{Actor, OAuthError, UnixTime, act::foreign_name};
use serde_json::Value;

use crate::config::custody::{IssuerKeys, SubjectNamespace, TrustedIssuer};
use crate::error::store_error;
use crate::state::AppState;

const ALGORITHMS: [Algorithm; 4] = [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256];
/// The ID-JAG `typ` (draft-ietf-oauth-identity-assertion-authz-grant §3).
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

/// What the JWT is presented as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// The `assertion` of the jwt-bearer grant (RFC 7523 §2.1).
    Assertion,
    /// The `subject_token` of a token exchange (RFC 8693 §2.1).
    SubjectToken,
}

/// The profile a JWT's `typ` (or its issuer's configuration) puts it under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `typ: oauth-id-jag+jwt`.
    IdJag,
    /// `typ: JWT`, or none where the issuer has `untyped_grants`.
    Chaining,
    /// `typ: at+jwt`, where the issuer has `accept_access_tokens`.
    AccessToken,
}

/// A verified JWT of a trusted issuer.
#[derive(Debug, Clone)]
pub struct TrustedJwt<'a> {
    pub trusted: &'a TrustedIssuer,
    pub profile: Profile,
    pub grant: GrantClaims,
    pub claims: Value,
}

/// The `iss` a JWT claims, read before verification (to pick the keys); `None` if unreadable.
pub fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// The profile of a JWT with header `typ` (lowercase, `application/` stripped), or why none.
pub fn profile(typ: Option<&str>, trusted: &TrustedIssuer, usage: Use) -> Result<Profile, String> {
    match (typ, usage) {
        (Some(ID_JAG_TYP), Use::Assertion) => Ok(Profile::IdJag),
        (Some(ID_JAG_TYP), Use::SubjectToken) => {
            Err("an ID-JAG is redeemed with the jwt-bearer grant, not exchanged".to_owned())
        }
        (Some("jwt"), _) => Ok(Profile::Chaining),
        (None, _) if trusted.untyped_grants => Ok(Profile::Chaining),
        (None, _) => Err(format!(
            "it has no typ; {} sends typ oauth-id-jag+jwt or JWT (or is configured with untyped_grants)",
            trusted.issuer
        )),
        (Some("at+jwt"), Use::SubjectToken) if trusted.accept_access_tokens => Ok(Profile::AccessToken),
        (Some("at+jwt"), _) => {
            Err(format!("typ at+jwt: an access token {} issued for its own APIs is not a grant here", trusted.issuer))
        }
        (Some(other), _) => Err(format!("typ {other:?} is not accepted here")),
    }
}

/// Verifies `token` as a JWT of one of the trusted issuers presented as `usage`: signature,
/// profile, audience, times, lifetime and `jti` shape. The caller checks what its grant adds
/// and then [`consume`]s the `jti`.
pub async fn verify<'a>(state: &'a AppState, token: &str, usage: Use) -> Result<TrustedJwt<'a>, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err("the JWT is too large".into());
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| "not a well-formed JWT".to_owned())?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(format!("algorithm {:?} is not accepted", header.alg));
    }
    let issuer = unverified_issuer(token).ok_or("the JWT names no issuer")?;
    let trusted =
        state.settings.custody.trusted_issuer(&issuer).ok_or_else(|| format!("issuer {issuer} is not trusted"))?;
    let typ = header.typ.as_deref().map(|t| {
        let t = t.to_ascii_lowercase();
        t.strip_prefix("application/").map(str::to_owned).unwrap_or(t)
    });
    let profile = profile(typ.as_deref(), trusted, usage)?;
    let mut keys = keys_of(state, trusted, false).await?;
    if select_key(&keys, header.kid.as_deref(), header.alg).is_none() && matches!(trusted.keys, IssuerKeys::Uri(_)) {
        // The issuer may have rotated: fetch once more (at most once per interval; a failed
        // fetch keeps the keys we had).
        keys = keys_of(state, trusted, true).await?;
    }
    let jwk = select_key(&keys, header.kid.as_deref(), header.alg)
        .ok_or_else(|| format!("no key of {issuer} matches kid {:?} and {:?}", header.kid, header.alg))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("the issuer's key is unusable: {e}"))?;
    let mut validation = Validation::new(header.alg);
    // Times and audience are checked by check_grant_claims, against the injected clock.
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[&issuer]);
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| format!("the JWT is invalid: {e}"))?;
    let grant = check_grant_claims(&data.claims, state.settings.issuer.as_str(), state.now(), trusted.max_lifetime)
        .map_err(|e| e.to_string())?;
    Ok(TrustedJwt { trusted, profile, grant, claims: data.claims })
}

/// Records the `jti` of `issuer`'s JWT until `exp`, across every instance; `false` if it was
/// recorded already. One record per issuer and `jti` for the jwt-bearer grant and token exchange
/// alike, so a grant redeemed once cannot be exchanged, nor the reverse.
pub async fn consume(state: &AppState, issuer: &str, jti: &str, exp: UnixTime) -> Result<bool, OAuthError> {
    state.store.record_once(&format!("jwt-grant:{issuer}:{jti}"), exp, state.now()).await.map_err(store_error)
}

/// The subject of this server that the issuer's `sub` stands for: the `subject_map` entry;
/// otherwise, by `subjects`, `<issuer>#<sub>` (refused if a person here has that name), the
/// person of this server named `sub`, or nobody. A mapped or local person must exist and not be
/// disabled.
pub async fn local_subject(state: &AppState, trusted: &TrustedIssuer, sub: &str) -> Result<String, String> {
    let person = |username: String| async move {
        match state.store.get_user(&username).await {
            Ok(Some(user)) if !user.disabled => Ok(username),
            Ok(Some(_)) => Err(format!("the account of {username} is disabled")),
            Ok(None) => Err(format!("{username} is not a person of this server")),
            Err(e) => {
                tracing::error!(error = %e, "looking up a person failed");
                Err("the subject could not be looked up".to_owned())
            }
        }
    };
    if let Some(local) = trusted.subject_map.get(sub) {
        return person(local.clone()).await;
    }
    match trusted.subjects {
        SubjectNamespace::Local => person(sub.to_owned()).await,
        SubjectNamespace::Mapped => Err(format!("{} does not map subject {sub:?} to a person here", trusted.issuer)),
        SubjectNamespace::Qualified => {
            let qualified = foreign_name(&trusted.issuer, sub);
            match state.store.get_user(&qualified).await {
                Ok(None) => Ok(qualified),
                Ok(Some(_)) => Err(format!("the subject {qualified} collides with a person of this server")),
                Err(e) => {
                    tracing::error!(error = %e, "looking up a person failed");
                    Err("the subject could not be looked up".to_owned())
                }
            }
        }
    }
}

/// The issuer's `act` claim as kept here: at most `max_delegation_depth` actors, each without an
/// `iss` marked as the issuer's; a chain naming an actor of this server is refused (only this
/// server records its own clients as actors).
pub fn foreign_chain(
    state: &AppState,
    trusted: &TrustedIssuer,
    claim: Option<&Value>,
) -> Result<Option<Actor>, String> {
    let Some(claim) = claim.filter(|v| !v.is_null()) else { return Ok(None) };
    let limit = state.settings.custody.max_delegation_depth;
    let chain = Actor::from_claim(claim, limit).map_err(|e| format!("its act claim is refused: {e}"))?;
    if chain.names_issuer(state.settings.issuer.as_str()) {
        return Err("its act claim names an actor of this server; only this server records its own actors".into());
    }
    Ok(Some(chain.from_issuer(&trusted.issuer)))
}

async fn keys_of(state: &AppState, trusted: &TrustedIssuer, refetch: bool) -> Result<JwkSet, String> {
    let uri = match &trusted.keys {
        IssuerKeys::Inline(set) => return Ok(set.clone()),
        IssuerKeys::Uri(uri) => uri,
    };
    let accept = mandate_fetch::Accept::json();
    let fetched =
        if refetch { state.fetcher.refresh(uri, accept).await } else { state.fetcher.get_cached(uri, accept).await };
    let text = fetched
        .map_err(|e| format!("the keys of {} are unavailable: {e}", trusted.issuer))
        .and_then(|f| String::from_utf8(f.body.to_vec()).map_err(|_| "the key set is not UTF-8".to_owned()))?;
    parse_client_jwks(&text).map_err(|e| format!("the key set of {} {e}", trusted.issuer))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn issuer(untyped_grants: bool, accept_access_tokens: bool) -> TrustedIssuer {
        TrustedIssuer {
            issuer: "https://partner.example".into(),
            keys: IssuerKeys::Uri("https://partner.example/jwks".into()),
            subjects: SubjectNamespace::Qualified,
            subject_map: BTreeMap::new(),
            client_ids: BTreeMap::new(),
            max_lifetime: 300,
            untyped_grants,
            accept_access_tokens,
        }
    }

    #[test]
    fn the_profile_comes_from_typ_or_configuration() {
        let strict = issuer(false, false);
        assert_eq!(profile(Some(ID_JAG_TYP), &strict, Use::Assertion), Ok(Profile::IdJag));
        assert!(profile(Some(ID_JAG_TYP), &strict, Use::SubjectToken).is_err());
        assert_eq!(profile(Some("jwt"), &strict, Use::Assertion), Ok(Profile::Chaining));
        assert!(profile(None, &strict, Use::Assertion).is_err());
        assert!(profile(Some("at+jwt"), &strict, Use::SubjectToken).is_err());
        assert!(profile(Some("dpop+jwt"), &strict, Use::Assertion).is_err());
        let lenient = issuer(true, true);
        assert_eq!(profile(None, &lenient, Use::Assertion), Ok(Profile::Chaining));
        assert_eq!(profile(Some("at+jwt"), &lenient, Use::SubjectToken), Ok(Profile::AccessToken));
        assert!(profile(Some("at+jwt"), &lenient, Use::Assertion).is_err(), "an access token is never a grant");
    }

    proptest! {
        #[test]
        fn any_text_yields_an_issuer_or_none_without_panicking(token in ".{0,200}") {
            let _ = unverified_issuer(&token);
            let _ = jsonwebtoken::decode_header(&token);
        }

        #[test]
        fn any_header_yields_a_profile_or_a_refusal(typ in proptest::option::of(".{0,20}"), untyped: bool, at: bool) {
            let trusted = issuer(untyped, at);
            for usage in [Use::Assertion, Use::SubjectToken] {
                if let Ok(p) = profile(typ.as_deref(), &trusted, usage) {
                    prop_assert!(p != Profile::AccessToken || (at && usage == Use::SubjectToken));
                    prop_assert!(typ.is_some() || untyped);
                }
            }
        }

        #[test]
        fn any_base64_payload_is_read_without_panicking(payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            use base64::Engine as _;
            let token = format!("e30.{}.sig", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload));
            let _ = unverified_issuer(&token);
        }
    }
}
