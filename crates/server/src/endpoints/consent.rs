//! The consent page: who is asking (client name, redirect host, a warning for localhost-only
//! redirects), for which resources, and each scope in plain words; Allow or Deny. A pushed
//! client's name is its own claim, shown as unverified, and its consent is never remembered.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use mandate_core::{OAuthError, ResourceUri, ScopeSet};
use minijinja::context;
use serde::Serialize;

use crate::authorization::flow;
use crate::error::{Failure, store_error};
use crate::form::OAuthForm;
use crate::state::AppState;
use crate::web::{csrf, error_page, page, see_other, session, templates};

pub async fn get(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    show(&state, &headers, uri.query()).await.unwrap_or_else(|e| error_page(&e))
}

/// The logo of the client asking, for the consent page: only while its request is pending.
pub async fn logo(State(state): State<AppState>, uri: Uri) -> Response {
    let client = async {
        let form = OAuthForm::from_query(uri.query())?;
        let request = flow::pending(&state, form.require("request")?).await?;
        crate::clients::of_request(&state, &request).await?.ok_or_else(flow::expired)
    };
    match client.await {
        Ok(client) => crate::clients::logo::response(&state, &client).await,
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn show(state: &AppState, headers: &HeaderMap, query: Option<&str>) -> Result<Response, OAuthError> {
    let form = OAuthForm::from_query(query)?;
    let handle = form.require("request")?;
    let request = flow::pending(state, handle).await?;
    let session = session::current(state, headers).await?;
    let Some(session) = session.filter(|s| !flow::needs_login(&request, Some(s), state.now())) else {
        return Ok(see_other(&flow::login_url(state, handle)));
    };
    let client = crate::clients::of_request(state, &request).await?.ok_or_else(flow::expired)?;
    let pushed = crate::clients::pushed::is_pushed_client_id(&client.client_id);
    let mut resources = Vec::new();
    for uri in request.resources.split(' ').filter(|r| !r.is_empty()) {
        let parsed = ResourceUri::parse(uri).map_err(|_| flow::expired())?;
        let name = state.store.get_resource(&parsed).await.map_err(store_error)?.map_or(uri.to_owned(), |r| r.name);
        resources.push(ResourceView { name, uri: uri.to_owned() });
    }
    let host = url::Url::parse(&request.redirect_uri).ok().and_then(|u| u.host_str().map(str::to_owned));
    let host = host.unwrap_or_else(|| request.redirect_uri.clone());
    let localhost_only = is_local(&host);
    // A URL client proved its web address by serving its metadata document there.
    let verified_host = crate::clients::metadata::is_url_client_id(&client.client_id)
        .then(|| url::Url::parse(&client.client_id).ok().and_then(|u| u.host_str().map(str::to_owned)))
        .flatten();
    // The verified host vouches for the client, not for where the code goes: say so when the
    // redirect URI is elsewhere (issue #15 item 14).
    let redirect_elsewhere = verified_host.as_ref().is_some_and(|v| !v.eq_ignore_ascii_case(&host) && !localhost_only);
    // A self-registered client's name is its own claim unless a trusted publisher signed it.
    let self_registered = client.client_id.starts_with(crate::endpoints::register::CLIENT_ID_PREFIX);
    let software_publisher = match self_registered {
        true => state
            .store
            .get_registration(&client.client_id)
            .await
            .map_err(store_error)?
            .and_then(|r| r.software_publisher),
        false => None,
    };
    let scopes = ScopeSet::parse(&request.scope).unwrap_or_default();
    let scopes: Vec<ScopeView> = scopes.iter().map(|s| describe(state, s, &resources)).collect();
    let csrf = csrf::token(state, headers);
    let html = templates::render(
        "consent.html",
        context! {
            action => state.settings.issuer.endpoint("/consent"),
            account_url => state.settings.issuer.endpoint("/account"),
            csrf => &csrf.value,
            request => handle,
            username => &session.username,
            client_name => if pushed {
                crate::clients::display_name_of_request(state, &request).await
            } else {
                client.client_name.clone().unwrap_or_else(|| client.client_id.clone())
            },
            unverified_name => pushed,
            can_remember => !pushed,
            redirect_host => &host,
            localhost_only => localhost_only,
            verified_host => verified_host,
            redirect_elsewhere => redirect_elsewhere,
            logo_url => client.logo_uri.is_some().then(|| format!("{}?request={handle}", state.settings.issuer.endpoint("/consent/logo"))),
            software_publisher => software_publisher,
            self_registered => self_registered,
            resources => minijinja::value::Serde(&resources),
            scopes => minijinja::value::Serde(&scopes),
        },
    )?;
    let mut response = page(StatusCode::OK, html);
    if let Some(cookie) = csrf.set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

pub async fn post(State(state): State<AppState>, headers: HeaderMap, form: Result<OAuthForm, Failure>) -> Response {
    let result = async {
        let form = form.map_err(|f| f.0)?;
        csrf::check(&headers, form.get("csrf"))?;
        let handle = form.require("request")?;
        let request = flow::pending(&state, handle).await?;
        let session = session::current(&state, &headers).await?;
        // The session ended while the page was open: sign in again, then decide.
        let Some(session) = session.filter(|s| !flow::needs_login(&request, Some(s), state.now())) else {
            return Ok(see_other(&flow::login_url(&state, handle)));
        };
        match form.get("decision") {
            Some("approve") => flow::approve(&state, handle, &session, form.get("remember") == Some("yes")).await,
            Some("deny") => flow::deny(&state, handle, &session).await,
            _ => Err(OAuthError::invalid_request("choose Allow or Deny")),
        }
    };
    result.await.unwrap_or_else(|e| error_page(&e))
}

#[derive(Serialize)]
struct ResourceView {
    name: String,
    uri: String,
}

#[derive(Serialize)]
struct ScopeView {
    scope: String,
    text: String,
}

fn describe(state: &AppState, scope: &str, resources: &[ResourceView]) -> ScopeView {
    let text = match scope {
        "openid" => "Know who you are (your account identifier)".to_owned(),
        "profile" => "See your username".to_owned(),
        "email" => "See your email address".to_owned(),
        "offline_access" => "Keep this access while you are away, until you revoke it".to_owned(),
        _ => {
            let configured = resources
                .iter()
                .find_map(|r| state.settings.scope_descriptions.get(&r.uri).and_then(|d| d.get(scope)).cloned());
            configured.unwrap_or_else(|| {
                let names: Vec<&str> = resources.iter().map(|r| r.name.as_str()).collect();
                format!("Use “{scope}” on {}", names.join(", "))
            })
        }
    };
    ScopeView { scope: scope.to_owned(), text }
}

/// Redirects that stay on the person's own machine (MCP AS-6: warn about them).
fn is_local(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
