//! Answers at the client's redirect URI (RFC 6749 §4.1.2), always with `iss` (RFC 9207).

use axum::response::Response;
use mandate_core::OAuthError;

use crate::state::AppState;
use crate::web::see_other;

/// `redirect_uri` with `params` added to its query (keeping any query it already has).
pub fn with_query(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut encoded = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        encoded.append_pair(k, v);
    }
    let query = encoded.finish();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{query}")
}

pub fn code(state: &AppState, redirect_uri: &str, code: &str, client_state: Option<&str>) -> Response {
    let mut params = vec![("code", code)];
    if let Some(s) = client_state {
        params.push(("state", s));
    }
    params.push(("iss", state.settings.issuer.as_str()));
    see_other(&with_query(redirect_uri, &params))
}

pub fn error(state: &AppState, redirect_uri: &str, e: &OAuthError, client_state: Option<&str>) -> Response {
    let mut params = vec![("error", e.code.as_str()), ("error_description", e.description.as_str())];
    if let Some(s) = client_state {
        params.push(("state", s));
    }
    params.push(("iss", state.settings.issuer.as_str()));
    see_other(&with_query(redirect_uri, &params))
}
