//! mandate-store: the storage traits, one per aggregate, and the contract every backend passes.
//!
//! Lookups return `Result<Option<T>, StoreError>`; nothing secret is stored in the clear (client
//! secrets as digests, signing keys as PKCS#8 that a later key-encryption key will wrap).

pub mod contract;
mod error;
pub mod rows;

use async_trait::async_trait;
use mandate_core::client::ClientSource;
use mandate_core::{AuditEvent, Client, Resource, ResourceUri, UnixTime, User};

pub use error::StoreError;

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<Client>>;
    /// Inserts or replaces a client, keeping its `created_at`.
    async fn put_client(&self, client: &Client, source: ClientSource, now: UnixTime) -> StoreResult<()>;
    async fn list_client_ids(&self, source: ClientSource) -> StoreResult<Vec<String>>;
    async fn set_client_disabled(&self, client_id: &str, disabled: bool, now: UnixTime) -> StoreResult<bool>;
}

#[async_trait]
pub trait ResourceStore: Send + Sync {
    async fn get_resource(&self, uri: &ResourceUri) -> StoreResult<Option<Resource>>;
    async fn put_resource(&self, resource: &Resource, now: UnixTime) -> StoreResult<()>;
    async fn list_resources(&self) -> StoreResult<Vec<Resource>>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn get_user(&self, username: &str) -> StoreResult<Option<User>>;
    async fn put_user(&self, user: &User, now: UnixTime) -> StoreResult<()>;
}

/// A signing key as stored: the private key is PKCS#8 DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub private_key: Vec<u8>,
    pub created_at: UnixTime,
    /// When it stopped signing; `None` while active.
    pub retired_at: Option<UnixTime>,
    /// Published in the JWKS until then, so every token it signed can still be verified.
    pub publish_until: Option<UnixTime>,
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Keys still published at `now`: the active ones and retired ones within `publish_until`,
    /// newest first.
    async fn published_keys(&self, now: UnixTime) -> StoreResult<Vec<StoredKey>>;
    /// Adds a key only if no active key exists; returns whether it was added (first start).
    async fn insert_first_key(&self, key: &StoredKey) -> StoreResult<bool>;
    /// Retires every active key (published until `publish_until`) and adds `key`, atomically.
    async fn rotate_key(&self, key: &StoredKey, now: UnixTime, publish_until: UnixTime) -> StoreResult<()>;
}

#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Records a revoked access token until it would have expired anyway. Idempotent.
    async fn revoke_access_token(&self, jti: &str, expires_at: UnixTime, now: UnixTime) -> StoreResult<()>;
    async fn is_access_token_revoked(&self, jti: &str) -> StoreResult<bool>;
    /// Drops revocations of tokens that have expired; returns how many.
    async fn purge_expired_revocations(&self, now: UnixTime) -> StoreResult<u64>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// The newest `limit` events, newest first.
    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditEvent>>;
    async fn audit_by_jti(&self, jti: &str) -> StoreResult<Vec<AuditEvent>>;
}

/// Everything the server needs from storage.
#[async_trait]
pub trait Store: ClientStore + ResourceStore + UserStore + KeyStore + RevocationStore + AuditStore {
    /// Cheap round trip for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
    fn backend(&self) -> &'static str;
}
