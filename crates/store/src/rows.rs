//! Row shapes shared by both backends, and their conversion to and from domain values. Lists are
//! stored as space-separated text: scope tokens, grant types and canonical URIs hold no spaces.

use mandate_core::client::ClientSource;
use mandate_core::{AuditEvent, AuditKind, Client, Resource, ResourceUri, ScopeSet, SecretDigest, User};

use crate::{StoreError, StoredKey};

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
            client_id: self.client_id,
            client_name: self.client_name,
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
