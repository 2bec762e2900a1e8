//! Checking an authorization request (RFC 6749 §4.1.1, OAuth 2.1, RFC 7636, RFC 8707, OpenID
//! Connect Core §3.1.2.1). Until the client and its redirect URI are verified, errors are shown
//! on a page; after that, they go back to the client.

use mandate_core::client::Client;
use mandate_core::{GrantType, OAuthError, ResourceUri, ScopeSet, oidc, pkce};
use mandate_store::AuthorizationRequest;

use crate::error::store_error;
use crate::form::OAuthForm;
use crate::state::AppState;

/// Why a request was refused, and where the answer goes.
#[derive(Debug)]
pub enum Refusal {
    /// The client or the redirect URI is unknown: show a page, never redirect.
    Page(OAuthError),
    /// Sent back to the verified redirect URI.
    Redirect { redirect_uri: String, state: Option<String>, error: OAuthError },
}

impl Refusal {
    pub fn error(&self) -> &OAuthError {
        match self {
            Self::Page(e) | Self::Redirect { error: e, .. } => e,
        }
    }

    pub fn into_error(self) -> OAuthError {
        match self {
            Self::Page(e) | Self::Redirect { error: e, .. } => e,
        }
    }
}

impl From<OAuthError> for Refusal {
    fn from(e: OAuthError) -> Self {
        Self::Page(e)
    }
}

const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;
const PROMPTS: &[&str] = &["none", "login", "consent", "select_account"];

/// The client named by `client_id`, enabled, or a page error.
pub async fn client_of(state: &AppState, form: &OAuthForm) -> Result<Client, OAuthError> {
    let client_id = form.require("client_id")?;
    // On a page, an unusable metadata document is a bad request, not an HTTP authentication failure.
    let client = crate::clients::find(state, client_id).await.map_err(|e| e.with_status(400))?;
    match client {
        Some(c) if !c.disabled => Ok(c),
        _ => Err(OAuthError::invalid_request(format!("client {client_id:?} is not registered here"))),
    }
}

/// Checks every parameter; `pushed` when it came through `/par` (already authenticated).
pub async fn check(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
    pushed: bool,
) -> Result<AuthorizationRequest, Refusal> {
    let redirect_uri = match form.get("redirect_uri") {
        Some(uri) if client.accepts_redirect_uri(uri) => uri.to_owned(),
        Some(uri) => {
            return Err(Refusal::Page(OAuthError::invalid_request(format!(
                "redirect_uri {uri:?} is not registered for this client (redirect URIs must match exactly)"
            ))));
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(Refusal::Page(OAuthError::invalid_request("parameter redirect_uri is required"))),
    };
    let client_state = form.get("state").map(str::to_owned);
    // RFC 9700 §4.11.2: anyone can register a redirect URI, so sending a self-registered client's
    // errors there before the person has seen anything would make this server an open redirector.
    let self_described = crate::clients::unattended::is_self_described(&client.client_id);
    let back = |error: OAuthError| {
        if self_described {
            return Refusal::Page(error);
        }
        Refusal::Redirect { redirect_uri: redirect_uri.clone(), state: client_state.clone(), error }
    };
    if client_state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(Refusal::Page(OAuthError::invalid_request(format!("state is longer than {MAX_STATE} characters"))));
    }
    if form.get("request").is_some() {
        return Err(back(OAuthError::invalid_request("request objects (JAR) are not supported; use /par")));
    }
    if pushed && form.get("request_uri").is_some() {
        return Err(back(OAuthError::invalid_request("request_uri must not be sent to the PAR endpoint")));
    }
    match form.get("response_type") {
        None => return Err(back(OAuthError::invalid_request("parameter response_type is required"))),
        Some("code") => {}
        Some(other) => {
            return Err(back(OAuthError::unsupported_response_type(format!(
                "response_type {other:?} is not supported; only \"code\" is (OAuth 2.1)"
            ))));
        }
    }
    if let Some(mode) = form.get("response_mode")
        && mode != "query"
    {
        return Err(back(OAuthError::invalid_request(format!(
            "response_mode {mode:?} is not supported; only query is"
        ))));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(back(OAuthError::unauthorized_client("this client is not allowed the authorization code grant")));
    }
    if client.require_pushed_authorization_requests && !pushed {
        return Err(back(OAuthError::invalid_request(
            "this client must push its authorization requests to the PAR endpoint first (RFC 9126)",
        )));
    }
    let code_challenge = check_pkce(form).map_err(&back)?;
    let resources = check_resources(state, client, form).await.map_err(&back)?;
    let scope = check_scope(client, &resources, form).map_err(&back)?;
    let nonce = form.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(back(OAuthError::invalid_request(format!("nonce is longer than {MAX_NONCE} characters"))));
    }
    let prompt = check_prompt(form).map_err(&back)?;
    let max_age = match form.get("max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<u32>().map_err(|_| back(OAuthError::invalid_request("max_age must be a number of seconds")))?
                as i64,
        ),
    };
    let now = state.now();
    Ok(AuthorizationRequest {
        handle_hash: String::new(),
        client_id: client.client_id.clone(),
        redirect_uri,
        scope: scope.to_string(),
        resources: resources.iter().map(|r| r.uri.as_str()).collect::<Vec<_>>().join(" "),
        state: client_state,
        nonce,
        code_challenge,
        prompt,
        max_age,
        pushed,
        client_registration: None,
        created_at: now,
        expires_at: now,
    })
}

/// RFC 7636 with OAuth 2.1: a challenge is required and the method must be S256.
fn check_pkce(form: &OAuthForm) -> Result<String, OAuthError> {
    let challenge = form.get("code_challenge").ok_or_else(|| {
        OAuthError::invalid_request("code_challenge is required: this server requires PKCE with S256")
    })?;
    match form.get("code_challenge_method") {
        Some("S256") => {}
        Some("plain") => {
            return Err(OAuthError::invalid_request("code_challenge_method plain is not allowed; use S256"));
        }
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "code_challenge_method {other:?} is not supported; use S256"
            )));
        }
        None => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method is required and must be S256 (the default, plain, is not allowed)",
            ));
        }
    }
    if !pkce::is_valid_challenge(challenge) {
        return Err(OAuthError::invalid_request("code_challenge is not a base64url SHA-256 digest (43 characters)"));
    }
    Ok(challenge.to_owned())
}

/// RFC 8707: one or more registered resources this client may use, sorted and without duplicates.
async fn check_resources(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
) -> Result<Vec<mandate_core::Resource>, OAuthError> {
    let raw = form.all("resource");
    if raw.is_empty() && asks_only_for_identity(form) {
        // OpenID Connect sign-in: no resource, so the access token is only for UserInfo.
        return Ok(Vec::new());
    }
    if raw.is_empty() {
        return Err(OAuthError::invalid_target(
            "the resource parameter is required (RFC 8707): name the protected resource (MCP server) to authorize",
        ));
    }
    let mut resources: Vec<mandate_core::Resource> = Vec::new();
    for value in raw {
        let uri = ResourceUri::parse(value).map_err(|e| OAuthError::invalid_target(format!("resource {e}")))?;
        let resource = state
            .store
            .get_resource(&uri)
            .await
            .map_err(store_error)?
            .ok_or_else(|| OAuthError::invalid_target(format!("{uri} is not a registered resource")))?;
        if !client.allows_resource(&uri) {
            return Err(OAuthError::invalid_target(format!("this client may not obtain tokens for {uri}")));
        }
        if !resources.iter().any(|r| r.uri == uri) {
            resources.push(resource);
        }
    }
    resources.sort_by(|a, b| a.uri.as_str().cmp(b.uri.as_str()));
    Ok(resources)
}

/// A plain OpenID Connect sign-in ("Sign in with mandate", the enterprise SSO step before an
/// ID-JAG): `openid` and only OpenID Connect scopes, so RFC 8707's `resource` is not needed.
fn asks_only_for_identity(form: &OAuthForm) -> bool {
    let Some(Ok(requested)) = form.get("scope").map(ScopeSet::parse) else { return false };
    let identity = ScopeSet::from_tokens(oidc::SCOPES).unwrap_or_default();
    requested.contains(oidc::OPENID) && requested.difference(&identity).is_empty()
}

/// What the client may ask for on these resources: its scopes that the resources offer, and the
/// OpenID Connect scopes it was given. Without `scope`, the resource scopes. A pushed client's
/// `offline_access` is dropped, not refused (RFC 6749 §3.3: the token response says what was
/// granted): many clients ask for it whenever it is advertised, and a pushed client gets no
/// refresh token anyway.
fn check_scope(
    client: &Client,
    resources: &[mandate_core::Resource],
    form: &OAuthForm,
) -> Result<ScopeSet, OAuthError> {
    let offered = resources.iter().fold(ScopeSet::default(), |acc, r| acc.union(&r.scopes));
    let resource_scopes = client.scopes.intersection(&offered);
    let oidc_scopes = client.scopes.intersection(&ScopeSet::from_tokens(oidc::SCOPES).unwrap_or_default());
    let allowed = resource_scopes.union(&oidc_scopes);
    let granted = match form.get("scope") {
        None => resource_scopes,
        Some(raw) => {
            let mut requested = ScopeSet::parse(raw).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            if crate::clients::pushed::is_pushed_client_id(&client.client_id) {
                requested = requested.difference(&ScopeSet::from_tokens([oidc::OFFLINE_ACCESS]).unwrap_or_default());
            }
            let refused = requested.difference(&allowed);
            if !refused.is_empty() {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {refused} is not available to this client on the requested resource"
                )));
            }
            requested
        }
    };
    if granted.is_empty() {
        return Err(OAuthError::invalid_scope("this client has no scopes on the requested resource"));
    }
    Ok(granted)
}

fn check_prompt(form: &OAuthForm) -> Result<Option<String>, OAuthError> {
    let Some(raw) = form.get("prompt") else { return Ok(None) };
    let values: Vec<&str> = raw.split(' ').filter(|v| !v.is_empty()).collect();
    if let Some(unknown) = values.iter().find(|v| !PROMPTS.contains(v)) {
        return Err(OAuthError::invalid_request(format!("prompt value {unknown:?} is not supported")));
    }
    if values.contains(&"none") && values.len() > 1 {
        return Err(OAuthError::invalid_request("prompt=none cannot be combined with other values"));
    }
    Ok(Some(values.join(" ")))
}

/// Whether the request's `prompt` contains `value`.
pub fn prompts(request: &AuthorizationRequest, value: &str) -> bool {
    request.prompt.as_deref().is_some_and(|p| p.split(' ').any(|v| v == value))
}
