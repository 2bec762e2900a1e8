//! The person's account page: the consents they remembered, each revocable. Revoking one also
//! revokes every grant (refresh and access tokens) that app holds for them.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use mandate_core::{AuditEvent, AuditKind, OAuthError};
use minijinja::context;
use serde::Serialize;

use crate::audit::record_issuance;
use crate::error::{Failure, store_error};
use crate::form::OAuthForm;
use crate::state::AppState;
use crate::web::{csrf, error_page, page, see_other, session, templates};

#[derive(Serialize)]
struct TokenView {
    href: String,
    client_id: String,
    actors: String,
    audience: String,
    scope: String,
    state: &'static str,
}

#[derive(Serialize)]
struct ConsentView {
    client_id: String,
    client_name: String,
    scope: String,
    resources: String,
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let result = async {
        let Some(session) = session::current(&state, &headers).await? else {
            return Ok(see_other(&state.settings.issuer.endpoint("/login")));
        };
        let mut consents = Vec::new();
        let remembered = state.store.list_consents(&session.username).await.map_err(store_error)?;
        // Consent to a pushed client is never remembered; a stray row would name no one app.
        for c in remembered.into_iter().filter(|c| !crate::clients::pushed::is_pushed_client_id(&c.client_id)) {
            let client_name = crate::clients::display_name(&state, &c.client_id).await;
            consents.push(ConsentView { client_id: c.client_id, client_name, scope: c.scope, resources: c.resources });
        }
        let now = state.now();
        let mut activity = Vec::new();
        for t in state.store.recent_tokens_of_subject(&session.username, 20).await.map_err(store_error)? {
            let revoked = state.store.is_access_token_revoked(&t.jti).await.map_err(store_error)?;
            let actors = t
                .act
                .as_deref()
                .and_then(|a| serde_json::from_str::<mandate_core::Actor>(a).ok())
                .map(|a| a.chain().join(" ← "))
                .unwrap_or_default();
            activity.push(TokenView {
                href: state.settings.issuer.endpoint(&format!("/account/lineage/{}", t.jti)),
                client_id: t.client_id,
                actors,
                audience: t.audience,
                scope: t.scope.unwrap_or_default(),
                state: if revoked {
                    "revoked"
                } else if t.expires_at <= now {
                    "expired"
                } else {
                    "active"
                },
            });
        }
        let csrf = csrf::token(&state, &headers);
        let html = templates::render(
            "account.html",
            context! {
                username => &session.username,
                activity => minijinja::value::Serde(&activity),
                consents => minijinja::value::Serde(&consents),
                csrf => &csrf.value,
                revoke_action => state.settings.issuer.endpoint("/account/consents/revoke"),
                logout_action => state.settings.issuer.endpoint("/logout"),
            },
        )?;
        let mut response = page(StatusCode::OK, html);
        if let Some(cookie) = csrf.set_cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        Ok::<_, OAuthError>(response)
    };
    result.await.unwrap_or_else(|e| error_page(&e))
}

pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, form: Result<OAuthForm, Failure>) -> Response {
    let result = async {
        let form = form.map_err(|f| f.0)?;
        csrf::check(&headers, form.get("csrf"))?;
        let Some(session) = session::current(&state, &headers).await? else {
            return Ok(see_other(&state.settings.issuer.endpoint("/login")));
        };
        let client_id = form.require("client_id")?;
        let resources = form.require("resources")?;
        let now = state.now();
        state.store.delete_consent(&session.username, client_id, resources).await.map_err(store_error)?;
        let revoked = state.store.revoke_grants_of(&session.username, client_id, now).await.map_err(store_error)?;
        let mut event = AuditEvent::new(now, AuditKind::GrantRevoked, "ok");
        event.client_id = Some(client_id.to_owned());
        event.subject = Some(session.username.clone());
        event.resource = Some(resources.to_owned());
        event.detail = Some(format!("consent withdrawn; {revoked} grant(s) revoked"));
        record_issuance(state.store.as_ref(), &event).await?;
        tracing::info!(client_id, grants = revoked, "consent withdrawn");
        Ok(see_other(&state.settings.issuer.endpoint("/account")))
    };
    result.await.unwrap_or_else(|e: OAuthError| error_page(&e))
}
