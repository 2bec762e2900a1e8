//! Row shapes shared by both backends, and their conversion to and from domain values. Lists are
//! stored as space-separated text: scope tokens, grant types, canonical URIs and redirect URIs hold
//! no spaces.

use mandate_core::client::{ApplicationType, ClientSource};
use mandate_core::{AuditEvent, AuditKind, Client, Resource, ResourceUri, ScopeSet, SecretDigest, User};

use crate::delegation::{AuthorizationCode, AuthorizationRequest, BrowserSession, Consent, Grant, RefreshToken};
use crate::{Registration, StoreError, StoredKey};

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub fn join<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    items.into_iter().map(|s| s.as_ref().to_owned()).collect::<Vec<_>>().join(" ")
}

#[derive(Debug, sqlx::FromRow)]
pub struct ClientRow {
    pub client_id: String,
    pub client_name: Option<String>,
    pub secret_digest: Option<String>,
    pub token_endpoint_auth_method: String,
    pub grant_types: String,
    pub scopes: String,
    pub resources: Option<String>,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub application_type: String,
    pub require_pushed_authorization_requests: bool,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub disabled: bool,
}

impl ClientRow {
    pub fn from_client(c: &Client) -> Self {
        Self {
            client_id: c.client_id.clone(),
            client_name: c.client_name.clone(),
            secret_digest: c.secret.as_ref().map(SecretDigest::encode),
            token_endpoint_auth_method: c.token_endpoint_auth_method.as_str().to_owned(),
            grant_types: join(c.grant_types.iter().map(|g| g.as_str())),
            scopes: c.scopes.to_string(),
            resources: c.resources.as_ref().map(|r| join(r.iter().map(ResourceUri::as_str))),
            redirect_uris: join(&c.redirect_uris),
            post_logout_redirect_uris: join(&c.post_logout_redirect_uris),
            application_type: c.application_type.as_str().to_owned(),
            require_pushed_authorization_requests: c.require_pushed_authorization_requests,
            jwks: c.jwks.clone(),
            jwks_uri: c.jwks_uri.clone(),
            logo_uri: c.logo_uri.clone(),
            disabled: c.disabled,
        }
    }

    pub fn into_client(self) -> Result<Client, StoreError> {
        let id = self.client_id.clone();
        let ctx = |field: &str| format!("client {id:?} {field}");
        Ok(Client {
            secret: self
                .secret_digest
                .as_deref()
                .map(SecretDigest::parse)
                .transpose()
                .map_err(|e| corrupt(&ctx("secret_digest"), e))?,
            token_endpoint_auth_method: self
                .token_endpoint_auth_method
                .parse()
                .map_err(|e| corrupt(&ctx("token_endpoint_auth_method"), e))?,
            grant_types: self
                .grant_types
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|e| corrupt(&ctx("grant_types"), e))?,
            scopes: ScopeSet::parse(&self.scopes).map_err(|e| corrupt(&ctx("scopes"), e))?,
            resources: self
                .resources
                .as_deref()
                .map(|r| r.split_whitespace().map(ResourceUri::parse).collect::<Result<Vec<_>, _>>())
                .transpose()
                .map_err(|e| corrupt(&ctx("resources"), e))?,
            redirect_uris: self.redirect_uris.split_whitespace().map(str::to_owned).collect(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.split_whitespace().map(str::to_owned).collect(),
            application_type: ApplicationType::parse(&self.application_type)
                .ok_or_else(|| corrupt(&ctx("application_type"), &self.application_type))?,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            client_id: self.client_id,
            client_name: self.client_name,
            jwks: self.jwks,
            jwks_uri: self.jwks_uri,
            logo_uri: self.logo_uri,
            disabled: self.disabled,
        })
    }
}

pub fn source_str(source: ClientSource) -> &'static str {
    source.as_str()
}

#[derive(Debug, sqlx::FromRow)]
pub struct ResourceRow {
    pub uri: String,
    pub name: String,
    pub scopes: String,
}

impl ResourceRow {
    pub fn into_resource(self) -> Result<Resource, StoreError> {
        Ok(Resource {
            uri: ResourceUri::parse(&self.uri).map_err(|e| corrupt(&format!("resource {:?} uri", self.uri), e))?,
            scopes: ScopeSet::parse(&self.scopes)
                .map_err(|e| corrupt(&format!("resource {:?} scopes", self.uri), e))?,
            name: self.name,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    pub username: String,
    pub password_hash: String,
    pub email: Option<String>,
    pub disabled: bool,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User { username: r.username, password_hash: r.password_hash, email: r.email, disabled: r.disabled }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub private_key: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

impl From<KeyRow> for StoredKey {
    fn from(r: KeyRow) -> Self {
        StoredKey {
            kid: r.kid,
            alg: r.alg,
            private_key: r.private_key,
            created_at: r.created_at,
            retired_at: r.retired_at,
            publish_until: r.publish_until,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub at: i64,
    pub event: String,
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub subject: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
    pub outcome: String,
    pub jti: Option<String>,
    pub parent_jti: Option<String>,
    pub detail: Option<String>,
}

impl AuditRow {
    pub fn into_event(self) -> Result<AuditEvent, StoreError> {
        Ok(AuditEvent {
            at: self.at,
            kind: AuditKind::parse(&self.event).ok_or_else(|| corrupt("audit event", &self.event))?,
            grant_type: self.grant_type,
            client_id: self.client_id,
            subject: self.subject,
            resource: self.resource,
            scope: self.scope,
            outcome: self.outcome,
            jti: self.jti,
            parent_jti: self.parent_jti,
            detail: self.detail,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct AuthorizationRequestRow {
    pub handle_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub resources: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Option<String>,
    pub max_age: Option<i64>,
    pub pushed: bool,
    pub client_registration: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl From<AuthorizationRequestRow> for AuthorizationRequest {
    fn from(r: AuthorizationRequestRow) -> Self {
        AuthorizationRequest {
            handle_hash: r.handle_hash,
            client_id: r.client_id,
            redirect_uri: r.redirect_uri,
            scope: r.scope,
            resources: r.resources,
            state: r.state,
            nonce: r.nonce,
            code_challenge: r.code_challenge,
            prompt: r.prompt,
            max_age: r.max_age,
            pushed: r.pushed,
            client_registration: r.client_registration,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct GrantRow {
    pub grant_id: String,
    pub client_id: String,
    pub username: String,
    pub scope: String,
    pub resources: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub unverified_client_name: Option<String>,
    /// JSON of an `AttestationBinding`.
    pub attestation: Option<String>,
}

impl GrantRow {
    pub fn into_grant(self) -> Result<Grant, StoreError> {
        let attestation = self
            .attestation
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(&format!("grant {} attestation", self.grant_id), e))?;
        Ok(Grant {
            grant_id: self.grant_id,
            client_id: self.client_id,
            username: self.username,
            scope: self.scope,
            resources: self.resources,
            auth_time: self.auth_time,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            unverified_client_name: self.unverified_client_name,
            attestation,
        })
    }
}

/// The text stored in `grants.attestation`.
pub fn attestation_json(binding: &mandate_core::attestation::AttestationBinding) -> String {
    serde_json::to_string(binding).unwrap_or_default()
}

#[derive(Debug, sqlx::FromRow)]
pub struct AuthorizationCodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

impl From<AuthorizationCodeRow> for AuthorizationCode {
    fn from(r: AuthorizationCodeRow) -> Self {
        AuthorizationCode {
            code_hash: r.code_hash,
            grant_id: r.grant_id,
            client_id: r.client_id,
            redirect_uri: r.redirect_uri,
            code_challenge: r.code_challenge,
            nonce: r.nonce,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct RefreshTokenRow {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub parent_hash: Option<String>,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

impl From<RefreshTokenRow> for RefreshToken {
    fn from(r: RefreshTokenRow) -> Self {
        RefreshToken {
            token_hash: r.token_hash,
            grant_id: r.grant_id,
            client_id: r.client_id,
            parent_hash: r.parent_hash,
            scope: r.scope,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
        }
    }
}

/// A refresh token as seen by `use_refresh_token` after losing (or not finding) the atomic update.
#[derive(Debug, sqlx::FromRow)]
pub struct RefreshTokenStateRow {
    #[sqlx(flatten)]
    pub token: RefreshTokenRow,
    pub grant_revoked_at: Option<i64>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct ConsentRow {
    pub username: String,
    pub client_id: String,
    pub resources: String,
    pub scope: String,
    pub granted_at: i64,
}

impl From<ConsentRow> for Consent {
    fn from(r: ConsentRow) -> Self {
        Consent {
            username: r.username,
            client_id: r.client_id,
            resources: r.resources,
            scope: r.scope,
            granted_at: r.granted_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct BrowserSessionRow {
    pub session_hash: String,
    pub username: String,
    pub auth_time: i64,
    pub expires_at: i64,
}

impl From<BrowserSessionRow> for BrowserSession {
    fn from(r: BrowserSessionRow) -> Self {
        BrowserSession {
            session_hash: r.session_hash,
            username: r.username,
            auth_time: r.auth_time,
            expires_at: r.expires_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct RegistrationRow {
    pub client_id: String,
    pub access_token_hash: String,
    pub metadata_hash: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
    pub metadata: Option<String>,
    pub software_publisher: Option<String>,
}

impl From<RegistrationRow> for Registration {
    fn from(r: RegistrationRow) -> Self {
        Registration {
            client_id: r.client_id,
            access_token_hash: r.access_token_hash,
            metadata_hash: r.metadata_hash,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            metadata: r.metadata,
            software_publisher: r.software_publisher,
        }
    }
}
