//! Moving a stored authorization request along: sign-in, then consent (or a remembered one), then
//! the code. `/authorize`, the sign-in page and the consent page all end here.

use axum::response::Response;
use mandate_core::{AuditEvent, AuditKind, ErrorCode, OAuthError, ScopeSet, SecretDigest};
use mandate_store::{AuthorizationCode, AuthorizationRequest, BrowserSession, Consent, Grant};

use super::request::prompts;
use super::{CODE_TTL, HANDLE_BYTES, response};
use crate::audit::{record_event, record_issuance};
use crate::clients::pushed;
use crate::error::store_error;
use crate::state::AppState;
use crate::web::{error_page, see_other};

pub fn digest(value: &str) -> String {
    SecretDigest::of(value).encode()
}

/// Keeps a checked request while the person is asked; returns its handle (a secret: only its
/// digest is stored).
pub async fn keep(
    state: &AppState,
    mut request: AuthorizationRequest,
    ttl: i64,
) -> Result<(String, AuthorizationRequest), OAuthError> {
    let handle = state.rng.token(HANDLE_BYTES);
    let now = state.now();
    request.handle_hash = digest(&handle);
    request.created_at = now;
    request.expires_at = now + ttl;
    state.store.put_authorization_request(&request).await.map_err(store_error)?;
    Ok((handle, request))
}

/// The request a page names, if it is still waiting.
pub async fn pending(state: &AppState, handle: &str) -> Result<AuthorizationRequest, OAuthError> {
    state
        .store
        .get_authorization_request(&digest(handle), state.now())
        .await
        .map_err(store_error)?
        .filter(|r| !r.pushed)
        .ok_or_else(expired)
}

pub fn expired() -> OAuthError {
    OAuthError::invalid_request("this sign-in has expired or was already answered; go back to the app and start again")
}

/// OpenID Connect Core §3.1.2.1: a new sign-in is needed without a session, for `prompt=login`
/// or `max_age=0` (until the person signs in for this request, see [`signed_in_for`]), or when
/// `max_age` has passed since the last sign-in.
pub fn needs_login(request: &AuthorizationRequest, session: Option<&BrowserSession>, now: i64) -> bool {
    let Some(session) = session else { return true };
    if prompts(request, "login") || request.max_age == Some(0) {
        return true;
    }
    request.max_age.is_some_and(|max_age| now - session.auth_time > max_age)
}

/// The person just signed in for this request: `prompt=login` and `max_age` are satisfied, so the
/// stored request drops them (the consent page must not ask for another sign-in).
pub async fn signed_in_for(
    state: &AppState,
    request: AuthorizationRequest,
) -> Result<AuthorizationRequest, OAuthError> {
    if !prompts(&request, "login") && request.max_age.is_none() {
        return Ok(request);
    }
    let now = state.now();
    let mut request = state
        .store
        .take_authorization_request(&request.handle_hash, now)
        .await
        .map_err(store_error)?
        .ok_or_else(expired)?;
    let remaining: Vec<&str> =
        request.prompt.as_deref().unwrap_or_default().split(' ').filter(|p| !p.is_empty() && *p != "login").collect();
    request.prompt = (!remaining.is_empty()).then(|| remaining.join(" "));
    request.max_age = None;
    state.store.put_authorization_request(&request).await.map_err(store_error)?;
    Ok(request)
}

pub fn login_url(state: &AppState, handle: &str) -> String {
    super::response::with_query(&state.settings.issuer.endpoint("/login"), &[("request", handle)])
}

pub fn consent_url(state: &AppState, handle: &str) -> String {
    super::response::with_query(&state.settings.issuer.endpoint("/consent"), &[("request", handle)])
}

/// The next step for a waiting request: the sign-in page, the consent page, or the code.
pub async fn advance(
    state: &AppState,
    session: Option<BrowserSession>,
    handle: &str,
    request: AuthorizationRequest,
) -> Result<Response, OAuthError> {
    let now = state.now();
    let user_ok = match &session {
        Some(s) => state.store.get_user(&s.username).await.map_err(store_error)?.is_some_and(|u| !u.disabled),
        None => false,
    };
    let session = session.filter(|_| user_ok);
    if needs_login(&request, session.as_ref(), now) {
        if prompts(&request, "none") {
            return Ok(refuse(state, handle, ErrorCode::LoginRequired, "the person must sign in").await);
        }
        return Ok(see_other(&login_url(state, handle)));
    }
    let Some(session) = session else { return Ok(see_other(&login_url(state, handle))) };
    // A pushed client id is shared by every such client: consent to one is never consent to another.
    let remembered = if pushed::is_pushed_client_id(&request.client_id) {
        None
    } else {
        state.store.get_consent(&session.username, &request.client_id, &request.resources).await.map_err(store_error)?
    };
    let requested = ScopeSet::parse(&request.scope).unwrap_or_default();
    let covered =
        remembered.is_some_and(|c| requested.difference(&ScopeSet::parse(&c.scope).unwrap_or_default()).is_empty());
    if covered && !prompts(&request, "consent") {
        return approve(state, handle, &session, false).await;
    }
    if prompts(&request, "none") {
        return Ok(refuse(state, handle, ErrorCode::ConsentRequired, "the person must consent to this request").await);
    }
    Ok(see_other(&consent_url(state, handle)))
}

/// Answers `prompt=none` requests that would need the person.
async fn refuse(state: &AppState, handle: &str, code: ErrorCode, description: &str) -> Response {
    match state.store.take_authorization_request(&digest(handle), state.now()).await {
        Ok(Some(request)) => {
            response::error(state, &request.redirect_uri, &OAuthError::new(code, description), request.state.as_deref())
        }
        Ok(None) => error_page(&expired()),
        Err(e) => error_page(&store_error(e)),
    }
}

/// Takes the waiting request to answer it: once, whatever the number of clicks or instances.
async fn answer(state: &AppState, handle: &str) -> Result<AuthorizationRequest, OAuthError> {
    state
        .store
        .take_authorization_request(&digest(handle), state.now())
        .await
        .map_err(store_error)?
        .filter(|r| !r.pushed)
        .ok_or_else(expired)
}

/// The person allowed the request: a grant, a one-minute code, and the redirect.
pub async fn approve(
    state: &AppState,
    handle: &str,
    session: &BrowserSession,
    remember: bool,
) -> Result<Response, OAuthError> {
    let now = state.now();
    let request = answer(state, handle).await?;
    let pushed_name = pushed_client(&request);
    let grant = Grant {
        grant_id: state.rng.token(HANDLE_BYTES),
        client_id: request.client_id.clone(),
        username: session.username.clone(),
        scope: request.scope.clone(),
        resources: request.resources.clone(),
        auth_time: session.auth_time,
        created_at: now,
        revoked_at: None,
        unverified_client_name: pushed_name.clone().flatten(),
        attestation: None,
    };
    state.store.put_grant(&grant).await.map_err(store_error)?;
    let code = state.rng.token(HANDLE_BYTES);
    state
        .store
        .put_code(&AuthorizationCode {
            code_hash: digest(&code),
            grant_id: grant.grant_id.clone(),
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            created_at: now,
            expires_at: now + CODE_TTL,
            used_at: None,
        })
        .await
        .map_err(store_error)?;
    if remember && pushed_name.is_none() {
        state
            .store
            .put_consent(&Consent {
                username: session.username.clone(),
                client_id: request.client_id.clone(),
                resources: request.resources.clone(),
                scope: request.scope.clone(),
                granted_at: now,
            })
            .await
            .map_err(store_error)?;
    }
    let mut event = AuditEvent::new(now, AuditKind::ConsentGranted, "ok");
    event.grant_type = Some("authorization_code".into());
    event.client_id = Some(request.client_id.clone());
    event.subject = Some(session.username.clone());
    event.resource = Some(request.resources.clone());
    event.scope = Some(request.scope.clone());
    event.jti = Some(format!("grant:{}", grant.grant_id));
    event.detail = pushed_name.map(|name| pushed::audit_detail(name.as_deref()));
    record_issuance(state.store.as_ref(), &event).await?;
    tracing::info!(client_id = %request.client_id, grant_id = %grant.grant_id, "authorization granted");
    Ok(response::code(state, &request.redirect_uri, &code, request.state.as_deref()))
}

/// For a pushed client's request, its unverified name (if it gave one); `None` for others.
fn pushed_client(request: &AuthorizationRequest) -> Option<Option<String>> {
    pushed::is_pushed_client_id(&request.client_id).then(|| pushed::unverified_name(request))
}

/// The person said no: `access_denied` at the redirect URI.
pub async fn deny(state: &AppState, handle: &str, session: &BrowserSession) -> Result<Response, OAuthError> {
    let now = state.now();
    let request = answer(state, handle).await?;
    let mut event = AuditEvent::new(now, AuditKind::ConsentDenied, "access_denied");
    event.client_id = Some(request.client_id.clone());
    event.subject = Some(session.username.clone());
    event.resource = Some(request.resources.clone());
    event.scope = Some(request.scope.clone());
    event.detail = pushed_client(&request).map(|name| pushed::audit_detail(name.as_deref()));
    record_event(state, event).await;
    let e = OAuthError::access_denied("the person denied the request");
    Ok(response::error(state, &request.redirect_uri, &e, request.state.as_deref()))
}
