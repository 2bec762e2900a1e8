//! The sign-in page. Failed attempts are counted per account and per address in the database
//! (so every instance sees them) and lock out for a while past a threshold.

use std::net::IpAddr;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use mandate_core::password::verify_password;
use mandate_core::{AuditEvent, AuditKind, OAuthError};
use minijinja::context;

use crate::audit::record_event;
use crate::authorization::flow;
use crate::client_address::ClientAddress;
use crate::error::{Failure, store_error};
use crate::form::OAuthForm;
use crate::state::AppState;
use crate::web::{csrf, error_page, page, see_other, session, templates};

/// Verified when the username is unknown, so that both paths take the same time. Made once, on
/// the blocking pool like every argon2 call.
fn decoy_hash(rng: &dyn mandate_core::Random) -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| mandate_core::password::hash_password("decoy password", rng))
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let form = match OAuthForm::from_query(uri.query()) {
        Ok(form) => form,
        Err(e) => return error_page(&e),
    };
    let handle = form.get("request");
    let client_name = match client_name_for(&state, handle).await {
        Ok(name) => name,
        Err(e) => return error_page(&e),
    };
    render(&state, &headers, StatusCode::OK, handle, client_name.as_deref(), "", None)
}

pub async fn post(
    State(state): State<AppState>,
    Extension(ClientAddress(client)): Extension<ClientAddress>,
    headers: HeaderMap,
    form: Result<OAuthForm, Failure>,
) -> Response {
    let form = match form {
        Ok(form) => form,
        Err(Failure(e)) => return error_page(&e),
    };
    if let Err(e) = csrf::check(&headers, form.get("csrf")) {
        return error_page(&e);
    }
    match sign_in(&state, client, &headers, &form).await {
        Ok(response) => response,
        Err(e) => error_page(&e),
    }
}

async fn sign_in(
    state: &AppState,
    client: IpAddr,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<Response, OAuthError> {
    let handle = form.get("request");
    let client_name = client_name_for(state, handle).await?;
    let username = form.get("username").unwrap_or_default().trim().to_owned();
    let Some(password) = form.get("password").filter(|_| !username.is_empty()) else {
        return Ok(render(
            state,
            headers,
            StatusCode::BAD_REQUEST,
            handle,
            client_name.as_deref(),
            &username,
            Some("Enter your username and password."),
        ));
    };
    let login = &state.settings.login;
    let window = login.failure_window.as_secs() as i64;
    let now = state.now();
    let user_key = format!("user:{username}");
    let ip_key = format!("ip:{client}");
    // Every attempt is counted before the password is checked, in one atomic step per key, so a
    // burst of concurrent guesses cannot all be checked against a count none of them is in yet.
    // An attempt that succeeds is given back.
    let store = &state.store;
    let account_ok =
        store.take_event(&user_key, now, window, login.max_failures_per_account).await.map_err(store_error)?;
    let address_ok = account_ok
        && store.take_event(&ip_key, now, window, login.max_failures_per_address).await.map_err(store_error)?;
    if account_ok && !address_ok {
        store.return_event(&user_key, now).await.map_err(store_error)?;
    }
    if !address_ok {
        let minutes = (window + 59) / 60;
        let message =
            format!("Too many failed sign-ins. Try again in {minutes} minute{}.", if minutes == 1 { "" } else { "s" });
        audit_failure(state, &username, client, "throttled").await;
        return Ok(render(
            state,
            headers,
            StatusCode::TOO_MANY_REQUESTS,
            handle,
            client_name.as_deref(),
            &username,
            Some(&message),
        ));
    }
    let user = state.store.get_user(&username).await.map_err(store_error)?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password = password.to_owned();
    let rng = state.rng.clone();
    let verified = tokio::task::spawn_blocking(move || {
        let hash = hash.as_deref().unwrap_or_else(|| decoy_hash(rng.as_ref()));
        verify_password(&password, hash)
    })
    .await
    .unwrap_or(false);
    let user = user.filter(|u| verified && !u.disabled);
    let Some(user) = user else {
        audit_failure(state, &username, client, "invalid_credentials").await;
        tracing::info!(username = ?username, %client, "sign-in failed");
        return Ok(render(
            state,
            headers,
            StatusCode::UNAUTHORIZED,
            handle,
            client_name.as_deref(),
            &username,
            Some("Incorrect username or password."),
        ));
    };
    state.store.clear_events(&user_key).await.map_err(store_error)?;
    state.store.return_event(&ip_key, now).await.map_err(store_error)?;
    let (signed_in, cookie) = session::start(state, &user.username).await?;
    let mut event = AuditEvent::new(now, AuditKind::SignedIn, "ok");
    event.subject = Some(user.username.clone());
    event.detail = Some(format!("from {client}"));
    record_event(state, event).await;
    tracing::info!(username = ?user.username, %client, "signed in");
    let mut response = match handle {
        Some(handle) => {
            let request = flow::pending(state, handle).await?;
            let request = flow::signed_in_for(state, request).await?;
            flow::advance(state, Some(signed_in), handle, request).await?
        }
        None => see_other(&state.settings.issuer.endpoint("/account")),
    };
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

async fn audit_failure(state: &AppState, username: &str, client: IpAddr, outcome: &str) {
    let mut event = AuditEvent::new(state.now(), AuditKind::SignInFailed, outcome);
    event.subject = Some(username.chars().take(128).collect());
    event.detail = Some(format!("from {client}"));
    record_event(state, event).await;
}

async fn client_name_for(state: &AppState, handle: Option<&str>) -> Result<Option<String>, OAuthError> {
    let Some(handle) = handle else { return Ok(None) };
    let request = flow::pending(state, handle).await?;
    Ok(Some(crate::clients::display_name_of_request(state, &request).await))
}

fn render(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    handle: Option<&str>,
    client_name: Option<&str>,
    username: &str,
    error: Option<&str>,
) -> Response {
    let csrf = csrf::token(state, headers);
    let html = templates::render(
        "login.html",
        context! {
            action => state.settings.issuer.endpoint("/login"),
            csrf => &csrf.value,
            request => handle,
            client_name => client_name,
            username => username,
            error => error,
        },
    );
    let mut response = match html {
        Ok(html) => page(status, html),
        Err(e) => return error_page(&e),
    };
    if let Some(cookie) = csrf.set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
