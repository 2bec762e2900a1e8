//! Dynamic client registration (RFC 7591) and its management (RFC 7592), for clients that need
//! it (MCP prefers client ID metadata documents). Open, or behind an initial access token;
//! throttled per address; a public client registering the same metadata again gets the same
//! client, so clients that register on every connect do not fill the table; unused
//! registrations expire.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_core::secret::generate_client_secret;
use mandate_core::{AuditEvent, AuditKind, ErrorCode, OAuthError, SecretDigest, TokenEndpointAuthMethod};
use mandate_store::Registration;
use serde_json::{Value, json};

use crate::audit::record_issuance;
use crate::clients::document::{ClientMetadata, MetadataError, Origin};
use crate::error::{Failure, store_error};
use crate::state::AppState;

/// Prefix of the client ids this endpoint makes (never `https://`: those are metadata documents).
pub const CLIENT_ID_PREFIX: &str = "dcr_";
const MAX_BODY_BYTES: usize = 16 * 1024;
const WINDOW_SECONDS: i64 = 3600;

/// RFC 7591 §3.2.2: `invalid_redirect_uri` or `invalid_client_metadata`, 400.
fn metadata_error(e: MetadataError) -> Failure {
    Failure(OAuthError::new(e.code.error_code(), e.message))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

fn invalid_token(description: &str) -> Failure {
    Failure(OAuthError::new(ErrorCode::InvalidToken, description))
}

pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Failure> {
    let policy = &state.settings.registration;
    if let Some(expected) = &policy.initial_access_token {
        let presented = bearer(&headers).ok_or_else(|| invalid_token("registration needs an initial access token"))?;
        if !expected.verify(presented) {
            return Err(invalid_token("the initial access token is not valid"));
        }
    }
    let now = state.now();
    let throttle_key = format!("register:{}", peer.ip());
    let recent = state.store.login_failures(&throttle_key, now, WINDOW_SECONDS).await.map_err(store_error)?;
    if recent >= policy.max_registrations_per_address {
        return Err(Failure(
            OAuthError::temporarily_unavailable("too many registrations from this address; try again later")
                .with_status(429),
        ));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(OAuthError::invalid_request("the registration request must be application/json").into());
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(OAuthError::invalid_request("the registration request is too large").with_status(413).into());
    }
    let metadata: ClientMetadata = serde_json::from_slice(&body).map_err(|e| {
        metadata_error(MetadataError {
            code: crate::clients::document::MetadataErrorCode::InvalidClientMetadata,
            message: format!("the request is not valid client metadata ({e})"),
        })
    })?;
    if metadata.client_id.is_some() {
        return Err(OAuthError::invalid_request("client_id is assigned by the server").into());
    }
    state.store.record_login_failure(&throttle_key, now, WINDOW_SECONDS).await.map_err(store_error)?;

    let client_id = format!("{CLIENT_ID_PREFIX}{}", state.rng.token(16));
    let (mut client, normalised) =
        metadata.into_client(&state, &client_id, Origin::Registration).map_err(metadata_error)?;

    // Identical public registrations share one client (no secret to tell them apart).
    let metadata_hash = (client.token_endpoint_auth_method == TokenEndpointAuthMethod::None)
        .then(|| SecretDigest::of(&serde_json::to_string(&normalised).unwrap_or_default()).encode());
    if let Some(hash) = &metadata_hash
        && let Some(existing) = state.store.find_registration_by_metadata(hash).await.map_err(store_error)?
    {
        tracing::info!(client_id = %existing.client_id, "identical public registration: returning the existing client");
        let body = response_body(&state, &existing.client_id, existing.created_at, &normalised, None, None);
        return Ok(created(body));
    }

    let secret = client.token_endpoint_auth_method.needs_secret().then(|| {
        let (secret, digest) = generate_client_secret(state.rng.as_ref());
        client.secret = Some(digest);
        secret
    });
    let access_token = state.rng.token(32);
    let registration = Registration {
        client_id: client_id.clone(),
        access_token_hash: SecretDigest::of(&access_token).encode(),
        metadata_hash,
        created_at: now,
        last_used_at: now,
    };
    state.store.register_client(&client, &registration).await.map_err(store_error)?;
    let mut event = AuditEvent::new(now, AuditKind::ClientRegistered, "ok");
    event.client_id = Some(client_id.clone());
    event.detail = Some(format!("{} from {}", client.token_endpoint_auth_method, peer.ip()));
    record_issuance(state.store.as_ref(), &event).await?;
    tracing::info!(%client_id, method = %client.token_endpoint_auth_method, "client registered");
    let body = response_body(&state, &client_id, now, &normalised, secret.as_deref(), Some(&access_token));
    Ok(created(body))
}

fn created(body: Value) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn response_body(
    state: &AppState,
    client_id: &str,
    issued_at: i64,
    metadata: &ClientMetadata,
    secret: Option<&str>,
    access_token: Option<&str>,
) -> Value {
    let mut body = serde_json::to_value(metadata).unwrap_or_else(|_| json!({}));
    body["client_id"] = json!(client_id);
    body["client_id_issued_at"] = json!(issued_at);
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    if let Some(token) = access_token {
        body["registration_access_token"] = json!(token);
        body["registration_client_uri"] = json!(state.settings.issuer.endpoint(&format!("/register/{client_id}")));
    }
    body
}

/// RFC 7592 §2: the registration access token of exactly this client.
async fn authorized(state: &AppState, headers: &HeaderMap, client_id: &str) -> Result<(), Failure> {
    let presented = bearer(headers).ok_or_else(|| invalid_token("the registration access token is required"))?;
    let registration = state.store.get_registration(client_id).await.map_err(store_error)?;
    let ok = registration.is_some_and(|r| SecretDigest::parse(&r.access_token_hash).is_ok_and(|d| d.verify(presented)));
    if ok { Ok(()) } else { Err(invalid_token("the registration access token is not valid for this client")) }
}

/// RFC 7592 §2.1: read the current registration.
pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Result<Response, Failure> {
    authorized(&state, &headers, &client_id).await?;
    let client = state
        .store
        .get_client(&client_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| invalid_token("the registration access token is not valid for this client"))?;
    let body = json!({
        "client_id": client.client_id,
        "client_name": client.client_name,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": client.token_endpoint_auth_method.as_str(),
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "application_type": client.application_type.as_str(),
        "registration_client_uri": state.settings.issuer.endpoint(&format!("/register/{client_id}")),
    });
    Ok(super::no_store_json(body))
}

/// RFC 7592 §2.3: the client deletes itself; its tokens stop at their next refresh.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Result<Response, Failure> {
    authorized(&state, &headers, &client_id).await?;
    state.store.delete_registered_client(&client_id).await.map_err(store_error)?;
    let mut event = AuditEvent::new(state.now(), AuditKind::ClientDeleted, "ok");
    event.client_id = Some(client_id.clone());
    record_issuance(state.store.as_ref(), &event).await?;
    tracing::info!(%client_id, "registered client deleted itself");
    Ok(StatusCode::NO_CONTENT.into_response())
}
