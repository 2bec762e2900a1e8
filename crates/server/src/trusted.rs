//! JWTs from the configured `[[trusted_issuers]]`: subject tokens of a token exchange, ID-JAGs and
//! identity-chaining grants. The issuer must be listed; its keys are inline or fetched from its
//! `jwks_uri` through the SSRF-safe fetcher (cached, refetched once for an unknown `kid`); the
//! algorithm is asymmetric (never `none`, never HMAC); the signature, `exp`, `nbf` and `iat` are
//! checked here, the audience and the rest by the caller.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mandate_core::assertion::{parse_client_jwks, select_key};
use mandate_core::jose::{CLOCK_SKEW_SECONDS, MAX_TOKEN_BYTES};
use serde_json::Value;

use crate::config::custody::{IssuerKeys, TrustedIssuer};
use crate::state::AppState;

const ALGORITHMS: [Algorithm; 4] = [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256];

/// A verified JWT of a trusted issuer.
#[derive(Debug, Clone)]
pub struct TrustedJwt {
    pub issuer: String,
    pub typ: Option<String>,
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

/// Verifies `token` as a JWT of one of the trusted issuers; `typs` (lowercase) are the accepted
/// `typ` headers (`None` in the list accepts a missing `typ`).
pub async fn verify(state: &AppState, token: &str, typs: &[Option<&str>]) -> Result<TrustedJwt, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err("the JWT is too large".into());
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| "not a well-formed JWT".to_owned())?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(format!("algorithm {:?} is not accepted", header.alg));
    }
    let typ = header.typ.as_deref().map(|t| {
        let t = t.to_ascii_lowercase();
        t.strip_prefix("application/").map(str::to_owned).unwrap_or(t)
    });
    if !typs.contains(&typ.as_deref()) {
        return Err(format!("typ {typ:?} is not accepted here"));
    }
    let issuer = unverified_issuer(token).ok_or("the JWT names no issuer")?;
    let trusted =
        state.settings.custody.trusted_issuer(&issuer).ok_or_else(|| format!("issuer {issuer} is not trusted"))?;
    let mut keys = keys_of(state, trusted, false).await?;
    if select_key(&keys, header.kid.as_deref(), header.alg).is_none() && matches!(trusted.keys, IssuerKeys::Uri(_)) {
        // The issuer may have rotated: fetch once more (rate-limited by the fetcher).
        keys = keys_of(state, trusted, true).await?;
    }
    let jwk = select_key(&keys, header.kid.as_deref(), header.alg)
        .ok_or_else(|| format!("no key of {issuer} matches kid {:?} and {:?}", header.kid, header.alg))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("the issuer's key is unusable: {e}"))?;
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.validate_nbf = true;
    validation.leeway = CLOCK_SKEW_SECONDS as u64;
    validation.set_required_spec_claims(&["exp", "iss"]);
    validation.set_issuer(&[&issuer]);
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| format!("the JWT is invalid: {e}"))?;
    if data.claims.get("iat").and_then(Value::as_i64).is_some_and(|iat| iat > state.now() + CLOCK_SKEW_SECONDS) {
        return Err("the JWT was issued in the future".into());
    }
    Ok(TrustedJwt { issuer, typ, claims: data.claims })
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
