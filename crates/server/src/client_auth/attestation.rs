//! Attestation-based client authentication (draft-ietf-oauth-attestation-based-client-auth): the
//! `OAuth-Client-Attestation` and `OAuth-Client-Attestation-PoP` headers, verified by
//! mandate-core against the configured attesters' keys (inline, or from a `jwks_uri` fetched
//! through the SSRF-safe fetcher); the PoP's `jti` recorded in the database until the PoP is too
//! old anyway, so a replay fails on every instance; and challenges, issued at `/challenge`,
//! stored as digests and taken once.

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use jsonwebtoken::jwk::JwkSet;
use mandate_core::assertion::parse_client_jwks;
use mandate_core::attestation::{
    ATTESTATION_HEADER, AttestationRejected, CHALLENGE_HEADER, POP_HEADER, POP_MAX_AGE_SECONDS, TrustedAttester,
    VerifiedAttestation, verify_attestation, verify_pop,
};
use mandate_core::jose::CLOCK_SKEW_SECONDS;
use mandate_core::{Client, ErrorCode, OAuthError, SecretDigest, UnixTime};

use super::assertion::unverified_subject;
use crate::config::AttesterKeys;
use crate::error::store_error;
use crate::state::AppState;

/// How long a challenge from `/challenge` (or a response header) may be used.
pub const CHALLENGE_TTL_SECONDS: i64 = 300;
/// Bytes of randomness in a challenge.
const CHALLENGE_BYTES: usize = 32;

/// The two headers as sent, before verification.
#[derive(Debug)]
pub struct PresentedAttestation {
    attestation: String,
    pop: String,
    /// The attestation's `sub`, read before verification to know which client is meant.
    pub subject: String,
}

fn invalid(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientAttestation, description)
}

/// §7.1, §7.2: exactly one of each header, or neither.
pub fn presented(headers: &HeaderMap) -> Result<Option<PresentedAttestation>, OAuthError> {
    let single = |name: &str| -> Result<Option<String>, OAuthError> {
        let mut values = headers.get_all(name).iter();
        let Some(first) = values.next() else { return Ok(None) };
        if values.next().is_some() {
            return Err(OAuthError::invalid_request(format!("send exactly one {} header", display(name))));
        }
        let text = first.to_str().map_err(|_| invalid(format!("the {} header is not a JWT", display(name))))?;
        Ok(Some(text.trim().to_owned()))
    };
    match (single(ATTESTATION_HEADER)?, single(POP_HEADER)?) {
        (None, None) => Ok(None),
        (Some(_), None) => {
            Err(invalid("the OAuth-Client-Attestation-PoP header is missing: sign a PoP with the attested key"))
        }
        (None, Some(_)) => Err(invalid("the OAuth-Client-Attestation header is missing: a PoP alone proves nothing")),
        (Some(attestation), Some(pop)) => {
            let subject = unverified_subject(&attestation)
                .ok_or_else(|| invalid("the client attestation is not a well-formed JWT with a sub"))?;
            Ok(Some(PresentedAttestation { attestation, pop, subject }))
        }
    }
}

fn display(header: &str) -> &'static str {
    if header == ATTESTATION_HEADER { "OAuth-Client-Attestation" } else { "OAuth-Client-Attestation-PoP" }
}

/// Verifies the attestation and its PoP for `client`: a trusted attester's signature, `sub` = the
/// client, the PoP signed by the attested key for this issuer, its `jti` never seen before, and a
/// challenge when one is sent or required.
pub async fn verify(
    state: &AppState,
    client: &Client,
    presented: &PresentedAttestation,
) -> Result<VerifiedAttestation, OAuthError> {
    let now = state.now();
    let attestation = verify_with_attesters(state, &presented.attestation, now).await?;
    if attestation.client_id != client.client_id {
        return Err(invalid("the client attestation's sub is not this client_id"));
    }
    let pop = verify_pop(&presented.pop, &attestation, state.settings.issuer.as_str(), now)?;
    // §12.1: the jti is remembered for as long as the PoP's iat would be accepted.
    let key = format!("attestation_pop:{}:{}", attestation.instance_jkt, pop.jti);
    let expires_at = pop.iat + POP_MAX_AGE_SECONDS + CLOCK_SKEW_SECONDS + 1;
    if !state.store.record_once(&key, expires_at, now).await.map_err(store_error)? {
        return Err(invalid("this attestation PoP was already used (its jti was seen before); sign a new one"));
    }
    match pop.challenge.as_deref() {
        Some(challenge) => {
            let hash = SecretDigest::of(challenge).encode();
            if !state.store.take_attestation_challenge(&hash, now).await.map_err(store_error)? {
                return Err(use_challenge(
                    state,
                    "the PoP's challenge was not issued by this server, has expired or was already used",
                )
                .await);
            }
        }
        None if state.settings.attestation.require_challenge => {
            return Err(use_challenge(state, "this server requires a challenge in the attestation PoP").await);
        }
        None => {}
    }
    tracing::info!(
        client_id = %client.client_id,
        attester = %attestation.claim.attester,
        instance_jkt = %attestation.instance_jkt,
        "client attestation verified"
    );
    Ok(attestation)
}

/// §8: `use_attestation_challenge` comes with a fresh challenge in a header.
async fn use_challenge(state: &AppState, why: &str) -> OAuthError {
    let error = OAuthError::new(
        ErrorCode::UseAttestationChallenge,
        format!("{why}; put the challenge from the OAuth-Client-Attestation-Challenge header in a new PoP"),
    );
    match issue_challenge(state).await {
        Ok(challenge) => error.with_attestation_challenge(challenge),
        Err(e) => e,
    }
}

/// A new challenge, remembered (as its digest) by every instance for [`CHALLENGE_TTL_SECONDS`].
pub async fn issue_challenge(state: &AppState) -> Result<String, OAuthError> {
    let challenge = state.rng.token(CHALLENGE_BYTES);
    let expires_at = state.now() + CHALLENGE_TTL_SECONDS;
    state
        .store
        .put_attestation_challenge(&SecretDigest::of(&challenge).encode(), expires_at)
        .await
        .map_err(store_error)?;
    Ok(challenge)
}

/// §6.2: when challenges are required, a response to an attested client carries the challenge
/// for its next PoP, sparing it a round trip to `/challenge`.
pub async fn add_next_challenge(
    state: &AppState,
    attestation: Option<&VerifiedAttestation>,
    response: &mut Response,
) -> Result<(), OAuthError> {
    if attestation.is_none() || !state.settings.attestation.require_challenge {
        return Ok(());
    }
    let challenge = issue_challenge(state).await?;
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(CHALLENGE_HEADER, value);
    }
    Ok(())
}

/// Verifies against every attester; when none verifies and some publish their keys at a URI,
/// those are fetched again once (the attester may have rotated its keys since they were cached).
async fn verify_with_attesters(state: &AppState, jwt: &str, now: UnixTime) -> Result<VerifiedAttestation, OAuthError> {
    let max_age = state.settings.attestation.max_age.map(|d| d.as_secs() as i64);
    let fetched = fetch_keys(state, false).await;
    let result = verify_attestation(jwt, &trusted(state, &fetched), now, max_age);
    let has_uri = fetched.iter().any(Option::is_some);
    let result = match result {
        Err(AttestationRejected::Untrusted | AttestationRejected::Issuer) if has_uri => {
            let fetched = fetch_keys(state, true).await;
            verify_attestation(jwt, &trusted(state, &fetched), now, max_age)
        }
        other => other,
    };
    result.map_err(|e| {
        tracing::info!(error = ?e.to_string(), "client attestation refused");
        OAuthError::from(e)
    })
}

/// The configured attesters with their keys; `fetched[i]` holds attester `i`'s keys from its URI.
fn trusted<'a>(state: &'a AppState, fetched: &'a [Option<JwkSet>]) -> Vec<TrustedAttester<'a>> {
    state
        .settings
        .attestation
        .attesters
        .iter()
        .zip(fetched)
        .filter_map(|(attester, fetched)| {
            let keys = match &attester.keys {
                AttesterKeys::Inline(keys) => keys,
                AttesterKeys::Uri(_) => fetched.as_ref()?,
            };
            Some(TrustedAttester { name: &attester.name, issuer: attester.issuer.as_deref(), keys })
        })
        .collect()
}

/// Keys of the attesters that publish them at a URI (`None` for inline keys, or a failed fetch,
/// which is logged: the other attesters still count).
async fn fetch_keys(state: &AppState, refetch: bool) -> Vec<Option<JwkSet>> {
    let mut out = Vec::new();
    for attester in &state.settings.attestation.attesters {
        let AttesterKeys::Uri(uri) = &attester.keys else {
            out.push(None);
            continue;
        };
        let accept = mandate_fetch::Accept::json();
        let fetched = if refetch {
            // Rate-limited by the fetcher, so forged attestations cannot force a fetch per request.
            state.fetcher.refresh(uri, accept).await
        } else {
            state.fetcher.get_cached(uri, accept).await
        };
        let keys = fetched
            .map_err(|e| e.to_string())
            .and_then(|f| String::from_utf8(f.body.to_vec()).map_err(|_| "the document is not UTF-8".to_owned()))
            .and_then(|text| parse_client_jwks(&text).map_err(|e| format!("the document {e}")));
        match keys {
            Ok(keys) => out.push(Some(keys)),
            Err(e) => {
                tracing::warn!(attester = %attester.name, jwks_uri = %uri, error = %e, "attester keys unavailable");
                out.push(None);
            }
        }
    }
    out
}
