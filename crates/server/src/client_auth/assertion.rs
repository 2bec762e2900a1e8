//! `private_key_jwt` (RFC 7523 §2.2, RFC 10070): the client's keys come from its registration
//! (`jwks`) or its `jwks_uri` (fetched through the SSRF-safe fetcher, cached, refetched once for
//! an unknown `kid`), the assertion is verified by mandate-core, and its `jti` is recorded in the
//! database until it expires, so a replay fails on every instance.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use mandate_core::assertion::{AssertionRejected, parse_client_jwks, verify_client_assertion};
use mandate_core::jose::CLOCK_SKEW_SECONDS;
use mandate_core::{Client, OAuthError};

use crate::error::store_error;
use crate::state::AppState;

/// The `sub` of a JWT, read before verification only to know which client's keys to use.
pub fn unverified_subject(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["sub"].as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

pub async fn verify(state: &AppState, client: &Client, jwt: &str) -> Result<(), OAuthError> {
    let issuer = state.settings.issuer.as_str();
    let now = state.now();
    let keys = keys_of(state, client, false).await?;
    let claims = match verify_client_assertion(jwt, &keys, &client.client_id, issuer, now) {
        Err(AssertionRejected::UnknownKey) if client.jwks_uri.is_some() => {
            // The client may have rotated its keys since they were cached.
            let keys = keys_of(state, client, true).await?;
            verify_client_assertion(jwt, &keys, &client.client_id, issuer, now)
        }
        other => other,
    }
    .map_err(|e| OAuthError::invalid_client(e.to_string()))?;
    let jti = claims.jti.unwrap_or_default();
    let key = format!("client_assertion:{}:{jti}", client.client_id);
    let fresh = state.store.record_once(&key, claims.exp + CLOCK_SKEW_SECONDS, now).await.map_err(store_error)?;
    if !fresh {
        return Err(OAuthError::invalid_client("this client assertion was already used (its jti was seen before)"));
    }
    Ok(())
}

async fn keys_of(state: &AppState, client: &Client, refetch: bool) -> Result<JwkSet, OAuthError> {
    if let Some(json) = &client.jwks {
        return parse_client_jwks(json).map_err(|e| {
            tracing::warn!(client_id = %client.client_id, "registered jwks {e}");
            OAuthError::invalid_client(format!("this client's registered jwks {e}"))
        });
    }
    let Some(uri) = &client.jwks_uri else {
        return Err(OAuthError::invalid_client("this client has no keys registered (jwks or jwks_uri)"));
    };
    let accept = mandate_fetch::Accept::json();
    let fetched = if refetch {
        // Rate-limited by the fetcher, so unknown kids cannot force a fetch per request.
        state.fetcher.refresh(uri, accept).await
    } else {
        state.fetcher.get_cached(uri, accept).await
    };
    let fetched = fetched.map_err(|e| {
        tracing::info!(client_id = ?client.client_id, error = ?e.to_string(), "fetching jwks_uri failed");
        OAuthError::invalid_client(format!("this client's jwks_uri could not be used: {}", e.public_message()))
    })?;
    let text = std::str::from_utf8(&fetched.body)
        .map_err(|_| OAuthError::invalid_client("this client's jwks_uri did not return UTF-8 JSON"))?;
    parse_client_jwks(text).map_err(|e| OAuthError::invalid_client(format!("this client's jwks_uri document {e}")))
}
