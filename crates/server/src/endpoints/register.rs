//! Dynamic client registration (RFC 7591) and its management (RFC 7592), for clients that need
//! it (MCP prefers client ID metadata documents). Open, or behind an initial access token;
//! throttled per address; a public client registering the same metadata again gets the same
//! client, so clients that register on every connect do not fill the table; unused
//! registrations expire.
//!
//! A public registration may be shared by anyone who sends the same metadata, so nobody gets
//! management rights over it (no registration access token): otherwise the first registrant could
//! change the redirect URIs of everyone's client (issue #15 item 4). A public client changes its
//! metadata by registering again. Whenever a managed client's redirect URIs change, its remembered
//! consents, waiting requests and unredeemed codes are dropped.

use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mandate_core::secret::generate_client_secret;
use mandate_core::software_statement::{StatementRejected, verify_software_statement};
use mandate_core::{AuditEvent, AuditKind, Client, ErrorCode, OAuthError, SecretDigest, TokenEndpointAuthMethod};
use mandate_store::Registration;
use serde_json::{Map, Value, json};

use crate::audit::record_issuance;
use crate::client_address::ClientAddress;
use crate::clients::document::{ClientMetadata, MetadataError, MetadataErrorCode, Origin};
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
    Extension(ClientAddress(from)): Extension<ClientAddress>,
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
    let throttle_key = format!("register:{from}");
    // Counted before the work, in one atomic step: concurrent registrations cannot all pass a
    // count none of them is in yet.
    let taken = state
        .store
        .take_event(&throttle_key, now, WINDOW_SECONDS, policy.max_registrations_per_address)
        .await
        .map_err(store_error)?;
    if !taken {
        return Err(Failure(
            OAuthError::temporarily_unavailable("too many registrations from this address; try again later")
                .with_status(429),
        ));
    }
    let mut fields = json_object(&headers, &body)?;
    if fields.contains_key("client_id") {
        return Err(OAuthError::invalid_request("client_id is assigned by the server").into());
    }
    let publisher = apply_software_statement(&state, &mut fields)?;
    let metadata = client_metadata(fields)?;

    let client_id = format!("{CLIENT_ID_PREFIX}{}", state.rng.token(16));
    let (mut client, normalised) =
        metadata.into_client(&state, &client_id, Origin::Registration).map_err(metadata_error)?;

    // Identical public registrations share one client (no secret to tell them apart).
    let metadata_hash = public_metadata_hash(&client, &normalised);
    if let Some(hash) = &metadata_hash
        && let Some(existing) = state.store.find_registration_by_metadata(hash).await.map_err(store_error)?
    {
        tracing::info!(client_id = %existing.client_id, "identical public registration: returning the existing client");
        let body = response_body(&state, &existing.client_id, existing.created_at, &normalised, None, None);
        return Ok(json_response(StatusCode::CREATED, body));
    }
    // A shared (public) registration is managed by nobody: its token is made and thrown away.

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
        metadata: Some(serde_json::to_string(&normalised).unwrap_or_default()),
        software_publisher: publisher.clone(),
    };
    state.store.register_client(&client, &registration).await.map_err(store_error)?;
    crate::clients::logo::prefetch(&state, &client);
    let mut event = AuditEvent::new(now, AuditKind::ClientRegistered, "ok");
    event.client_id = Some(client_id.clone());
    event.detail = Some(audit_detail(&client, publisher.as_deref(), from));
    record_issuance(state.store.as_ref(), &event).await?;
    tracing::info!(%client_id, method = %client.token_endpoint_auth_method, publisher = ?publisher, "client registered");
    let management = registration.metadata_hash.is_none().then_some(access_token.as_str());
    let body = response_body(&state, &client_id, now, &normalised, secret.as_deref(), management);
    Ok(json_response(StatusCode::CREATED, body))
}

fn audit_detail(client: &Client, publisher: Option<&str>, from: IpAddr) -> String {
    let vouched = publisher.map(|p| format!(", statement by {p}")).unwrap_or_default();
    format!("{} from {from}{vouched}", client.token_endpoint_auth_method)
}

/// The request body as a JSON object (RFC 7591 §3.1: `application/json`, bounded in size).
fn json_object(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Failure> {
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
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) if fields.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)) => {
            Err(OAuthError::invalid_request("the registration request contains a NUL character").into())
        }
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(invalid_metadata("the request is not a JSON object of client metadata".into())),
        Err(e) => Err(invalid_metadata(format!("the request is not valid JSON ({e})"))),
    }
}

/// Whether any key or string in `value` holds NUL (`\u0000`), which no metadata needs and
/// PostgreSQL cannot store.
fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

fn invalid_metadata(message: String) -> Failure {
    metadata_error(MetadataError { code: MetadataErrorCode::InvalidClientMetadata, message })
}

fn client_metadata(fields: Map<String, Value>) -> Result<ClientMetadata, Failure> {
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| invalid_metadata(format!("the request is not valid client metadata ({e})")))
}

/// RFC 7591 §2.3: a software statement from a configured publisher is verified and its claims
/// replace the same fields sent in plain JSON. Returns the publisher's name when it vouches for
/// the client's redirect URIs too.
fn apply_software_statement(state: &AppState, fields: &mut Map<String, Value>) -> Result<Option<String>, Failure> {
    let policy = &state.settings.registration;
    let statement_error = |code, message: String| metadata_error(MetadataError { code, message });
    let Some(statement) = fields.get("software_statement") else {
        if policy.require_software_statement {
            return Err(statement_error(
                MetadataErrorCode::InvalidSoftwareStatement,
                "this server registers only software with a statement signed by a publisher it trusts".into(),
            ));
        }
        return Ok(None);
    };
    let Some(jwt) = statement.as_str().map(str::to_owned) else {
        return Err(statement_error(
            MetadataErrorCode::InvalidSoftwareStatement,
            "software_statement is not a JWT string".into(),
        ));
    };
    let verified = verify_software_statement(&jwt, &policy.software_publishers, state.now()).map_err(|e| {
        let code = match e {
            StatementRejected::Unapproved(_) => MetadataErrorCode::UnapprovedSoftwareStatement,
            _ => MetadataErrorCode::InvalidSoftwareStatement,
        };
        statement_error(code, e.to_string())
    })?;
    // The publisher vouches for where codes go only if it signed the redirect URIs: a statement
    // without them could be replayed by anyone with their own (issue #15 item 14), so its
    // metadata applies but no verified badge is earned.
    let binds_redirects = verified.metadata.contains_key("redirect_uris");
    let publisher = verified.publisher.name.clone();
    fields.extend(verified.metadata);
    if !binds_redirects && fields.get("redirect_uris").is_some_and(|r| r.as_array().is_some_and(|a| !a.is_empty())) {
        tracing::info!(publisher = ?publisher, "software statement without redirect_uris: the client's name is not shown as verified");
        return Ok(None);
    }
    Ok(Some(publisher))
}

/// Digest of a public client's canonical metadata, by which identical registrations are shared.
fn public_metadata_hash(client: &Client, normalised: &ClientMetadata) -> Option<String> {
    (client.token_endpoint_auth_method == TokenEndpointAuthMethod::None)
        .then(|| SecretDigest::of(&serde_json::to_string(normalised).unwrap_or_default()).encode())
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
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
async fn authorized(state: &AppState, headers: &HeaderMap, client_id: &str) -> Result<Registration, Failure> {
    let presented = bearer(headers).ok_or_else(|| invalid_token("the registration access token is required"))?;
    let registration = state.store.get_registration(client_id).await.map_err(store_error)?;
    let registration = registration
        .filter(|r| SecretDigest::parse(&r.access_token_hash).is_ok_and(|d| d.verify(presented)))
        .ok_or_else(|| invalid_token("the registration access token is not valid for this client"))?;
    if registration.metadata_hash.is_some() {
        // Registered before shared registrations lost their tokens: the holder may not be the
        // only one using this client.
        return Err(invalid_token(
            "this public registration is shared by every client that registered the same metadata and cannot be managed; register new metadata instead",
        ));
    }
    Ok(registration)
}

/// RFC 7592 §2.1: read the current registration: the metadata as registered or last updated.
pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Result<Response, Failure> {
    let registration = authorized(&state, &headers, &client_id).await?;
    let client = state
        .store
        .get_client(&client_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| invalid_token("the registration access token is not valid for this client"))?;
    let metadata = registration
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<ClientMetadata>(m).ok())
        .unwrap_or_else(|| ClientMetadata::describing(&client));
    let body = response_body(&state, &client_id, registration.created_at, &metadata, None, None);
    Ok(super::no_store_json(with_management_uri(&state, body, &client_id)))
}

/// RFC 7592 §2.2: the client replaces its metadata. Fields it leaves out are removed; it cannot
/// choose its secret (one it sends must be its current one); a change to a secret-based method
/// gets a new secret, returned once.
pub async fn update(
    State(state): State<AppState>,
    Extension(ClientAddress(from)): Extension<ClientAddress>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Failure> {
    let registration = authorized(&state, &headers, &client_id).await?;
    let current = state
        .store
        .get_client(&client_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| invalid_token("the registration access token is not valid for this client"))?;
    let mut fields = json_object(&headers, &body)?;
    if fields.get("client_id").and_then(Value::as_str) != Some(client_id.as_str()) {
        return Err(OAuthError::invalid_request("the request must carry this client's client_id").into());
    }
    if let Some(sent) = fields.get("client_secret") {
        let matches = sent.as_str().zip(current.secret.as_ref()).is_some_and(|(s, digest)| digest.verify(s));
        if !matches {
            return Err(invalid_metadata(
                "client_secret is not this client's current secret; it cannot be chosen".into(),
            ));
        }
    }
    // Values only the server sets; clients echoing a read response send them back.
    for name in [
        "client_id",
        "client_secret",
        "client_secret_expires_at",
        "client_id_issued_at",
        "registration_access_token",
        "registration_client_uri",
    ] {
        fields.remove(name);
    }
    let publisher = apply_software_statement(&state, &mut fields)?;
    let metadata = client_metadata(fields)?;
    let (mut client, normalised) =
        metadata.into_client(&state, &client_id, Origin::Registration).map_err(metadata_error)?;
    client.disabled = current.disabled;
    let mut new_secret = None;
    if client.token_endpoint_auth_method.needs_secret() {
        match current.secret {
            Some(digest) => client.secret = Some(digest),
            None => {
                let (secret, digest) = generate_client_secret(state.rng.as_ref());
                client.secret = Some(digest);
                new_secret = Some(secret);
            }
        }
    }
    let now = state.now();
    let updated = Registration {
        // A managed client is its holder's alone: never shared, whatever its method becomes.
        metadata_hash: None,
        metadata: Some(serde_json::to_string(&normalised).unwrap_or_default()),
        software_publisher: publisher.clone(),
        ..registration
    };
    let changed = state.store.update_registered_client(&client, &updated, now).await.map_err(store_error)?;
    state.lookups.forget_client(&client.client_id).await;
    if !changed {
        return Err(invalid_token("the registration access token is not valid for this client"));
    }
    if client.redirect_uris != current.redirect_uris {
        // Nothing a person decided for the old redirect URIs may reach the new ones.
        let dropped = state.store.forget_client_authorizations(&client_id).await.map_err(store_error)?;
        tracing::info!(%client_id, dropped, "redirect URIs changed: remembered consents, waiting requests and codes dropped");
    }
    let mut event = AuditEvent::new(now, AuditKind::ClientUpdated, "ok");
    event.client_id = Some(client_id.clone());
    event.detail = Some(audit_detail(&client, publisher.as_deref(), from));
    record_issuance(state.store.as_ref(), &event).await?;
    tracing::info!(%client_id, method = %client.token_endpoint_auth_method, "registered client updated itself");
    let body = response_body(&state, &client_id, updated.created_at, &normalised, new_secret.as_deref(), None);
    Ok(super::no_store_json(with_management_uri(&state, body, &client_id)))
}

fn with_management_uri(state: &AppState, mut body: Value, client_id: &str) -> Value {
    body["registration_client_uri"] = json!(state.settings.issuer.endpoint(&format!("/register/{client_id}")));
    body
}

/// RFC 7592 §2.3: the client deletes itself; its tokens stop at their next refresh.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Result<Response, Failure> {
    authorized(&state, &headers, &client_id).await?;
    state.store.delete_registered_client(&client_id).await.map_err(store_error)?;
    state.lookups.forget_client(&client_id).await;
    let mut event = AuditEvent::new(state.now(), AuditKind::ClientDeleted, "ok");
    event.client_id = Some(client_id.clone());
    record_issuance(state.store.as_ref(), &event).await?;
    tracing::info!(%client_id, "registered client deleted itself");
    Ok(StatusCode::NO_CONTENT.into_response())
}
