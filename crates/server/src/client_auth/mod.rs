//! Client authentication at the token, PAR, introspection and revocation endpoints (RFC 6749
//! §2.3): `client_secret_basic`, `client_secret_post`, `private_key_jwt` (see [`assertion`]),
//! `attest_jwt_client_auth` (see [`attestation`]), or `none` for public clients (which only name
//! themselves), exactly one method per request, secrets compared as digests in constant time, one
//! answer for every failure so clients can't be probed.
//!
//! A client attestation may also come along with another method (or none, for a public client) as
//! an extra signal (draft-ietf-oauth-attestation-based-client-auth §9): it is then verified just
//! the same, and its facts recorded on what is issued.

use std::ops::Deref;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mandate_core::assertion::CLIENT_ASSERTION_TYPE;
use mandate_core::attestation::VerifiedAttestation;
use mandate_core::{Client, OAuthError, SecretDigest, TokenEndpointAuthMethod};

use crate::error::Failure;
use crate::form::OAuthForm;
use crate::state::AppState;

pub mod assertion;
pub mod attestation;

/// Credentials as presented, before they are checked.
#[derive(Debug)]
pub struct PresentedCredentials {
    pub client_id: String,
    secret: Option<String>,
    /// The JWT of `private_key_jwt`.
    assertion: Option<String>,
    /// The client attestation and its PoP.
    attestation: Option<attestation::PresentedAttestation>,
    method: TokenEndpointAuthMethod,
}

/// A client whose credentials checked out, with the client attestation it presented, if any.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client: Client,
    /// Verified: the authentication itself (`attest_jwt_client_auth`), or an extra signal.
    pub attestation: Option<VerifiedAttestation>,
}

impl Deref for AuthenticatedClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

/// Reads the client's credentials from the `Authorization` header, the body and the attestation
/// headers. An attestation's `sub` names the client; any other client_id sent must agree.
pub fn presented(headers: &HeaderMap, form: &OAuthForm) -> Result<PresentedCredentials, OAuthError> {
    let attestation = attestation::presented(headers)?;
    let mut creds = presented_without_attestation(headers, form, attestation.as_ref().map(|a| a.subject.as_str()))?;
    if let Some(a) = &attestation
        && a.subject != creds.client_id
    {
        return Err(OAuthError::invalid_client("client_id differs from the client attestation's sub"));
    }
    creds.attestation = attestation;
    Ok(creds)
}

fn presented_without_attestation(
    headers: &HeaderMap,
    form: &OAuthForm,
    attested: Option<&str>,
) -> Result<PresentedCredentials, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(parse_basic(value.to_str().unwrap_or_default())?),
    };
    let body_id = form.get("client_id");
    let body_secret = form.get("client_secret");
    if let Some(jwt) = form.get("client_assertion") {
        if basic.is_some() || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "the client authenticated with more than one method (client_assertion and a secret)",
            ));
        }
        if form.get("client_assertion_type") != Some(CLIENT_ASSERTION_TYPE) {
            return Err(OAuthError::invalid_request(format!("client_assertion_type must be {CLIENT_ASSERTION_TYPE}")));
        }
        // RFC 7523 §3: the client is the assertion's subject; a client_id sent along must agree.
        let subject = assertion::unverified_subject(jwt)
            .ok_or_else(|| OAuthError::invalid_client("the client assertion is not a well-formed JWT with a sub"))?;
        if body_id.is_some_and(|id| id != subject) {
            return Err(OAuthError::invalid_client("client_id differs from the client assertion's subject"));
        }
        return Ok(PresentedCredentials {
            client_id: subject,
            secret: None,
            assertion: Some(jwt.to_owned()),
            attestation: None,
            method: TokenEndpointAuthMethod::PrivateKeyJwt,
        });
    }
    match (basic, body_secret) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "the client authenticated with more than one method (Authorization header and client_secret)",
        )),
        (Some((id, secret)), None) => {
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_client("client_id in the body differs from the Authorization header"));
            }
            Ok(PresentedCredentials {
                client_id: id,
                secret: Some(secret),
                assertion: None,
                attestation: None,
                method: TokenEndpointAuthMethod::ClientSecretBasic,
            })
        }
        (None, Some(secret)) => {
            let id = body_id.ok_or_else(|| OAuthError::invalid_request("client_secret was sent without client_id"))?;
            Ok(PresentedCredentials {
                client_id: id.to_owned(),
                secret: Some(secret.to_owned()),
                assertion: None,
                attestation: None,
                method: TokenEndpointAuthMethod::ClientSecretPost,
            })
        }
        // Only the attestation headers: the attestation is the authentication, and client_id
        // optional (draft-ietf-oauth-attestation-based-client-auth §7.4).
        (None, None) if attested.is_some() => Ok(PresentedCredentials {
            client_id: body_id.or(attested).unwrap_or_default().to_owned(),
            secret: None,
            assertion: None,
            attestation: None,
            method: TokenEndpointAuthMethod::AttestJwtClientAuth,
        }),
        // A public client (RFC 6749 §2.1) names itself and proves nothing; PKCE binds its codes.
        (None, None) => match body_id {
            Some(id) => Ok(PresentedCredentials {
                client_id: id.to_owned(),
                secret: None,
                assertion: None,
                attestation: None,
                method: TokenEndpointAuthMethod::None,
            }),
            None => Err(OAuthError::invalid_client("client authentication is required")),
        },
    }
}

/// RFC 6749 §2.3.1: both parts are form-urlencoded before being joined and base64-encoded.
fn parse_basic(value: &str) -> Result<(String, String), OAuthError> {
    let malformed = || OAuthError::invalid_client("the Authorization header is not valid HTTP Basic credentials");
    let (scheme, encoded) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client("only the Basic scheme is accepted for client authentication"));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| -> Result<String, OAuthError> {
        let plus_as_space = s.replace('+', " ");
        url::form_urlencoded::parse(format!("v={plus_as_space}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .ok_or_else(malformed)
    };
    let (id, secret) = (unescape(id)?, unescape(secret)?);
    if id.is_empty() {
        return Err(malformed());
    }
    Ok((id, secret))
}

/// Checks presented credentials against the registered client.
pub async fn verify(state: &AppState, creds: &PresentedCredentials) -> Result<AuthenticatedClient, Failure> {
    const FAILED: &str = "client authentication failed";
    // A digest of nothing, compared when the client is unknown, so both paths cost the same.
    static DECOY: std::sync::OnceLock<SecretDigest> = std::sync::OnceLock::new();
    let client = crate::clients::find(state, &creds.client_id).await?;
    let presented = creds.secret.as_deref().unwrap_or_default();
    let Some(client) = client else {
        DECOY.get_or_init(|| SecretDigest::of("")).verify(presented);
        return Err(OAuthError::invalid_client(FAILED).into());
    };
    if client.disabled {
        return Err(OAuthError::invalid_client(FAILED).into());
    }
    // An attestation alone authenticates an attest_jwt_client_auth client; from a public client,
    // which has nothing to prove, it is an extra signal.
    let method = match creds.method {
        TokenEndpointAuthMethod::AttestJwtClientAuth if client.is_public() => TokenEndpointAuthMethod::None,
        other => other,
    };
    if crate::clients::pushed::is_pushed_client_id(&client.client_id) && method != TokenEndpointAuthMethod::None {
        return Err(OAuthError::invalid_client(format!(
            "{} is a public client: send no client_secret, Authorization header or client_assertion",
            client.client_id
        ))
        .into());
    }
    let secret_ok = match method {
        TokenEndpointAuthMethod::None => client.is_public(),
        // Verified below, once the method is known to be the registered one.
        TokenEndpointAuthMethod::AttestJwtClientAuth => true,
        TokenEndpointAuthMethod::PrivateKeyJwt => {
            if client.token_endpoint_auth_method != TokenEndpointAuthMethod::PrivateKeyJwt {
                // The same answer as for an unknown client: nothing proven yet, nothing revealed.
                tracing::info!(client_id = ?client.client_id, method = %client.token_endpoint_auth_method, "client assertion for a client registered for another method");
                return Err(OAuthError::invalid_client(FAILED).into());
            }
            let jwt = creds.assertion.as_deref().unwrap_or_default();
            assertion::verify(state, &client, jwt).await?;
            true
        }
        _ => client.secret.as_ref().is_some_and(|d| d.verify(presented)),
    };
    if !secret_ok {
        return Err(OAuthError::invalid_client(FAILED).into());
    }
    if client.token_endpoint_auth_method != method {
        return Err(OAuthError::invalid_client(format!(
            "this client is registered for {}, not {}",
            client.token_endpoint_auth_method, method
        ))
        .into());
    }
    let attestation = match &creds.attestation {
        Some(presented) => Some(attestation::verify(state, &client, presented).await?),
        None => None,
    };
    Ok(AuthenticatedClient { client, attestation })
}

/// Reads and checks the client's credentials in one step.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<AuthenticatedClient, Failure> {
    let creds = presented(headers, form)?;
    verify(state, &creds).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%3Aclient:p%40ss+word"));
        assert_eq!(parse_basic(&header).unwrap(), ("my:client".to_owned(), "p@ss word".to_owned()));
        assert!(parse_basic("Basic !!!").is_err());
        assert!(parse_basic("Bearer abc").is_err());
    }
}
