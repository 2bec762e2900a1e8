//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): with a valid `id_token_hint` the
//! session ends at once; otherwise the person confirms on a page. `post_logout_redirect_uri` must
//! be registered for the client, exactly.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use mandate_core::OAuthError;
use mandate_core::jose::verify_id_token_hint;
use minijinja::context;

use crate::authorization::response::with_query;
use crate::error::Failure;
use crate::form::OAuthForm;
use crate::state::AppState;
use crate::web::{csrf, error_page, page, see_other, session, templates};

pub async fn get(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let result = async {
        let form = OAuthForm::from_query(uri.query())?;
        let target = Target::check(&state, &form).await?;
        if target.vouches_for(&state, &headers).await? {
            return sign_out(&state, &headers, &target).await;
        }
        let csrf = csrf::token(&state, &headers);
        let html = templates::render(
            "logout.html",
            context! {
                action => state.settings.issuer.endpoint("/logout"),
                csrf => &csrf.value,
                client_name => target.client_name.as_deref(),
                client_id => target.client_id.as_deref(),
                post_logout_redirect_uri => target.redirect.as_deref(),
                state => target.state.as_deref(),
            },
        )?;
        let mut response = page(StatusCode::OK, html);
        if let Some(cookie) = csrf.set_cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        Ok(response)
    };
    result.await.unwrap_or_else(|e: OAuthError| error_page(&e))
}

pub async fn post(State(state): State<AppState>, headers: HeaderMap, form: Result<OAuthForm, Failure>) -> Response {
    let result = async {
        let form = form.map_err(|f| f.0)?;
        let target = Target::check(&state, &form).await?;
        if !target.vouches_for(&state, &headers).await? {
            csrf::check(&headers, form.get("csrf"))?;
        }
        sign_out(&state, &headers, &target).await
    };
    result.await.unwrap_or_else(|e: OAuthError| error_page(&e))
}

/// Where the browser goes after signing out, once checked.
struct Target {
    /// The `sub` of a valid `id_token_hint`.
    hint_subject: Option<String>,
    client_id: Option<String>,
    client_name: Option<String>,
    redirect: Option<String>,
    state: Option<String>,
}

impl Target {
    /// A valid hint for the person signed in here (or for nobody signed in) stands for their
    /// intent; anyone else's ID token does not, so a cross-site link cannot sign a person out.
    async fn vouches_for(&self, state: &AppState, headers: &HeaderMap) -> Result<bool, OAuthError> {
        let Some(subject) = &self.hint_subject else { return Ok(false) };
        let current = session::current(state, headers).await?;
        Ok(current.is_none_or(|s| &s.username == subject))
    }

    async fn check(state: &AppState, form: &OAuthForm) -> Result<Self, OAuthError> {
        let hint = match form.get("id_token_hint") {
            None => None,
            Some(token) => {
                let keys = state.keyring.current();
                let claims = verify_id_token_hint(token, &keys.published, state.settings.issuer.as_str())
                    .map_err(|_| OAuthError::invalid_request("id_token_hint is not an ID token this server issued"))?;
                Some(claims)
            }
        };
        let client_id = match (form.get("client_id"), hint.as_ref()) {
            (Some(id), Some(claims)) if id != claims.aud => {
                return Err(OAuthError::invalid_request("client_id does not match the id_token_hint's audience"));
            }
            (Some(id), _) => Some(id.to_owned()),
            (None, Some(claims)) => Some(claims.aud.clone()),
            (None, None) => None,
        };
        let client = match &client_id {
            Some(id) => crate::clients::find(state, id).await?,
            None => None,
        };
        let redirect = match form.get("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let registered = client.as_ref().is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
                if !registered {
                    return Err(OAuthError::invalid_request(
                        "post_logout_redirect_uri is not registered for this client (send client_id or id_token_hint)",
                    ));
                }
                Some(uri.to_owned())
            }
        };
        Ok(Self {
            hint_subject: hint.as_ref().map(|h| h.sub.clone()),
            client_name: client.as_ref().map(|c| c.client_name.clone().unwrap_or_else(|| c.client_id.clone())),
            client_id,
            redirect,
            state: form.get("state").map(str::to_owned),
        })
    }
}

async fn sign_out(state: &AppState, headers: &HeaderMap, target: &Target) -> Result<Response, OAuthError> {
    let clear = session::end(state, headers).await?;
    let mut response = match &target.redirect {
        Some(uri) => {
            let params: Vec<(&str, &str)> = target.state.as_deref().map(|s| ("state", s)).into_iter().collect();
            see_other(&if params.is_empty() { uri.clone() } else { with_query(uri, &params) })
        }
        None => page(
            StatusCode::OK,
            templates::render("message.html", context! { title => "Signed out", message => "You are signed out." })?,
        ),
    };
    response.headers_mut().append(header::SET_COOKIE, clear);
    tracing::info!(client_id = target.client_id.as_deref().unwrap_or("-"), "signed out");
    Ok(response)
}
