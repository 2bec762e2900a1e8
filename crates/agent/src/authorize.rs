//! The authorization code flow with PKCE S256 and a loopback redirect: build the request, let the
//! person approve it, check the response (`iss` per RFC 9207 as MCP 2026-07-28 requires, then
//! `state`, then `error`), and redeem the code with the same `resource`.

use std::collections::HashMap;
use std::time::Duration;

use url::Url;

use crate::browser::Browser;
use crate::client::ClientIdentity;
use crate::discovery::Discovery;
use crate::error::{AgentError, OAuthError};
use crate::grant::{self, Code, TokenSet};
use crate::loopback::Loopback;

/// One authorization request's secrets, kept until its response arrives.
#[derive(Debug)]
pub struct Pending {
    pub url: Url,
    pub state: String,
    pub code_verifier: String,
    /// The issuer the response must name (stored with the verifier and state, per MCP).
    pub issuer: String,
    pub iss_required: bool,
}

/// Builds the authorization URL for `client` at the discovered server.
pub fn authorization_request(
    discovery: &Discovery,
    client: &ClientIdentity,
    redirect_uri: &Url,
    scope: Option<&str>,
) -> Result<Pending, AgentError> {
    let metadata = &discovery.metadata;
    // MCP: refuse to proceed when the server does not advertise S256, except for the
    // 2025-03-26 default endpoints, for which there is no metadata at all.
    if !metadata.supports_s256() && !discovery.synthesized {
        return Err(AgentError::PkceNotSupported { issuer: metadata.issuer.clone() });
    }
    let code_verifier = crate::random_token();
    let state = crate::random_token();
    let mut url = metadata.authorization_endpoint()?;
    crate::http::ensure_secure(&url)?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("code_challenge", &crate::s256(&code_verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state)
            .append_pair("resource", &discovery.resource);
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            query.append_pair("scope", scope);
        }
    }
    Ok(Pending {
        url,
        state,
        code_verifier,
        issuer: metadata.issuer.clone(),
        iss_required: metadata.authorization_response_iss_parameter_supported,
    })
}

/// Checks an authorization response and returns its code.
pub fn check_response(pending: &Pending, params: &HashMap<String, String>) -> Result<String, AgentError> {
    // RFC 9207 / MCP 2026-07-28: (advertised, present) compare; (advertised, absent) reject;
    // (not advertised, present) compare; (not advertised, absent) proceed. Exact comparison; on a
    // mismatch nothing else in the response (not even `error`) is trusted.
    match params.get("iss") {
        Some(iss) if *iss != pending.issuer => {
            return Err(AgentError::IssMismatch { expected: pending.issuer.clone(), found: Some(iss.clone()) });
        }
        None if pending.iss_required => {
            return Err(AgentError::IssMismatch { expected: pending.issuer.clone(), found: None });
        }
        _ => {}
    }
    if params.get("state") != Some(&pending.state) {
        return Err(AgentError::StateMismatch);
    }
    if let Some(error) = params.get("error") {
        return Err(AgentError::AuthorizationDenied(OAuthError {
            error: error.clone(),
            description: params.get("error_description").cloned(),
        }));
    }
    params.get("code").filter(|c| !c.is_empty()).cloned().ok_or(AgentError::MissingCode)
}

/// Runs the whole flow: the person approves in `browser`, the response reaches `loopback`.
pub async fn run(
    http: &reqwest::Client,
    discovery: &Discovery,
    client: &ClientIdentity,
    scope: Option<&str>,
    browser: &dyn Browser,
    loopback: &mut Loopback,
    timeout: Duration,
) -> Result<TokenSet, AgentError> {
    let redirect_uri = loopback.redirect_uri().clone();
    let pending = authorization_request(discovery, client, &redirect_uri, scope)?;
    browser.open(&pending.url).await?;
    let params = loopback.wait(timeout).await?;
    let code = check_response(&pending, &params)?;
    let code = Code { code: &code, code_verifier: &pending.code_verifier, redirect_uri: redirect_uri.as_str() };
    grant::authorization_code(http, &discovery.metadata, client, &code, &discovery.resource, scope).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(iss_required: bool) -> Pending {
        Pending {
            url: Url::parse("https://as.example/authorize").unwrap(),
            state: "s".into(),
            code_verifier: "v".into(),
            issuer: "https://as.example".into(),
            iss_required,
        }
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn iss_rules_of_rfc9207_as_mcp_profiles_them() {
        let ok = params(&[("code", "c"), ("state", "s"), ("iss", "https://as.example")]);
        assert_eq!(check_response(&pending(true), &ok).unwrap(), "c");
        assert_eq!(check_response(&pending(false), &ok).unwrap(), "c");

        let missing = params(&[("code", "c"), ("state", "s")]);
        assert!(matches!(check_response(&pending(true), &missing), Err(AgentError::IssMismatch { found: None, .. })));
        assert_eq!(check_response(&pending(false), &missing).unwrap(), "c");

        for wrong in ["https://evil.example", "https://as.example/", "HTTPS://as.example"] {
            let p = params(&[("code", "c"), ("state", "s"), ("iss", wrong)]);
            assert!(matches!(check_response(&pending(false), &p), Err(AgentError::IssMismatch { .. })), "{wrong}");
        }
        // On an iss mismatch the error in the response is not believed either.
        let forged = params(&[("error", "access_denied"), ("state", "s"), ("iss", "https://evil.example")]);
        assert!(matches!(check_response(&pending(false), &forged), Err(AgentError::IssMismatch { .. })));
    }

    #[test]
    fn state_then_error_then_code() {
        let p = pending(false);
        assert!(matches!(
            check_response(&p, &params(&[("code", "c"), ("state", "other")])),
            Err(AgentError::StateMismatch)
        ));
        assert!(matches!(check_response(&p, &params(&[("code", "c")])), Err(AgentError::StateMismatch)));
        let denied =
            check_response(&p, &params(&[("error", "access_denied"), ("error_description", "no"), ("state", "s")]));
        assert!(
            matches!(denied, Err(AgentError::AuthorizationDenied(OAuthError { ref error, .. })) if error == "access_denied")
        );
        assert!(matches!(check_response(&p, &params(&[("state", "s")])), Err(AgentError::MissingCode)));
    }
}
