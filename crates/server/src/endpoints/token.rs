//! The token endpoint (RFC 6749 §3.2): parse, authenticate the client, dispatch on `grant_type`,
//! audit, answer. Every outcome, issued or refused, is written to the audit log.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use mandate_core::{AuditEvent, AuditKind, GrantType, OAuthError};
use mandate_store::{IssuanceRecord, TokenRecord};
use serde_json::json;

use super::{bounded, no_store_json};
use crate::audit::record_event;
use crate::client_auth::{self, AuthenticatedClient};
use crate::error::Failure;
use crate::form::OAuthForm;
use crate::state::AppState;

pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<OAuthForm, Failure>,
) -> Result<Response, Failure> {
    let form = match form {
        Ok(form) => form,
        Err(failure) => {
            refuse(&state, None, None, &failure.0).await;
            return Err(failure);
        }
    };
    let grant_type = form.get("grant_type");
    let presented = client_auth::presented(&headers, &form);
    let attempted = presented.as_ref().ok().map(|c| c.client_id.clone());
    let verified = match presented {
        Ok(creds) => client_auth::verify(&state, &creds).await,
        Err(e) => Err(e.into()),
    };
    let client = match verified {
        Ok(client) => client,
        Err(failure) => {
            refuse(&state, Some(&form), attempted.as_deref(), &failure.0).await;
            return Err(failure);
        }
    };
    match issue(&state, &client, &form, grant_type).await {
        Ok(response) => Ok(response),
        Err(e) => {
            refuse(&state, Some(&form), Some(&client.client_id), &e).await;
            Err(e.into())
        }
    }
}

async fn issue(
    state: &AppState,
    client: &AuthenticatedClient,
    form: &OAuthForm,
    grant_type: Option<&str>,
) -> Result<Response, OAuthError> {
    let grant_type = grant_type.ok_or_else(|| OAuthError::invalid_request("parameter grant_type is required"))?;
    let (grant, handler) = state.grants.get(grant_type).ok_or_else(|| {
        OAuthError::unsupported_grant_type(format!("grant_type {grant_type} is not supported by this server"))
    })?;
    if !client.allows_grant(grant) {
        return Err(OAuthError::unauthorized_client(format!("this client is not allowed the {grant_type} grant")));
    }
    let bounded = crate::clients::unattended::bounded(state, client, grant)?;
    let issued = handler.handle(state, &bounded, form).await?;

    let mut event = AuditEvent::new(state.now(), AuditKind::TokenIssued, "ok");
    event.grant_type = Some(grant_type.to_owned());
    event.client_id = Some(client.client_id.clone());
    event.subject = Some(issued.subject.clone());
    event.resource = Some(issued.audience.to_string());
    event.scope = Some(issued.scope.to_string());
    event.jti = Some(issued.jti.clone());
    event.parent_jti = issued.parent_jti.clone();
    let attested = issued.attestation.as_ref().map(|a| format!("client instance attested by {}", a.attester));
    event.detail = match (issued.audit_detail.clone(), attested) {
        (Some(pushed), Some(attested)) => Some(format!("{pushed}; {attested}")),
        (pushed, attested) => pushed.or(attested),
    };
    // No token leaves before its issuance and its lineage are on record (group-committed).
    let lineage = lineage_of(&issued, &client.client_id);
    state.issuances.record(IssuanceRecord { event, lineage: Some(lineage) }).await?;
    if client.client_id.starts_with(super::register::CLIENT_ID_PREFIX) {
        // Self-registered clients expire when unused; this one is in use.
        state.store.touch_registration(&client.client_id, state.now()).await.map_err(crate::error::store_error)?;
    }
    metrics::counter!("mandate_tokens_issued_total", "grant_type" => grant.as_str()).increment(1);
    let attester = issued.attestation.as_ref().map(|a| a.attester.as_str()).unwrap_or("-");
    tracing::info!(grant_type, client_id = %client.client_id, jti = %issued.jti, aud = %issued.audience, attester, "token issued");

    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": issued.token_type,
        "expires_in": issued.expires_in,
    });
    if !issued.scope.is_empty() {
        body["scope"] = json!(issued.scope.to_string());
    }
    if grant == GrantType::TokenExchange {
        body["issued_token_type"] = json!(issued.issued_token_type);
    }
    if let Some(refresh_token) = issued.refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    if let Some(id_token) = issued.id_token {
        body["id_token"] = json!(id_token);
    }
    let mut response = no_store_json(body);
    client_auth::attestation::add_next_challenge(state, client.attestation.as_ref(), &mut response).await?;
    Ok(response)
}

/// The lineage row of an issued token: its parents (RFC 8693 subject and actor tokens) or its grant.
fn lineage_of(issued: &crate::grants::Issued, client_id: &str) -> TokenRecord {
    TokenRecord {
        jti: issued.jti.clone(),
        kind: issued.issued_token_type.rsplit(':').next().unwrap_or("access_token").to_owned(),
        parent_jti: issued.parent_jti.clone().filter(|p| !p.starts_with("grant:")),
        actor_jti: issued.actor_jti.clone(),
        grant_id: issued.grant_id.clone(),
        subject: issued.subject.clone(),
        client_id: client_id.to_owned(),
        audience: issued.audience.to_string(),
        scope: (!issued.scope.is_empty()).then(|| issued.scope.to_string()),
        act: issued.act.as_ref().and_then(|a| serde_json::to_string(a).ok()),
        issued_at: issued.issued_at,
        expires_at: issued.expires_at,
    }
}

async fn refuse(state: &AppState, form: Option<&OAuthForm>, client_id: Option<&str>, e: &OAuthError) {
    let mut event = AuditEvent::new(state.now(), AuditKind::TokenRefused, e.code.as_str());
    event.grant_type = bounded(form.and_then(|f| f.get("grant_type")));
    event.client_id = bounded(client_id.or_else(|| form.and_then(|f| f.get("client_id"))));
    event.resource = bounded(form.and_then(|f| f.all("resource").first().map(String::as_str)));
    event.scope = bounded(form.and_then(|f| f.get("scope")));
    event.detail = Some(e.description.clone());
    let grant_type = event.grant_type.as_deref().unwrap_or("none");
    let grant_label = state.grants.get(grant_type).map_or("other", |(g, _)| g.as_str());
    metrics::counter!("mandate_token_refusals_total", "grant_type" => grant_label, "error" => e.code.as_str())
        .increment(1);
    tracing::info!(error = e.code.as_str(), description = ?e.description, client_id = ?event.client_id.as_deref().unwrap_or("-"), "token refused");
    record_event(state, event).await;
}
