//! mandate-store: the storage traits, one per aggregate, and the contract every backend passes.
//!
//! Lookups return `Result<Option<T>, StoreError>`; nothing secret is stored in the clear (client
//! secrets as digests, signing keys as PKCS#8 that a later key-encryption key will wrap).

pub mod batch;
pub mod contract;
pub mod delegation;
mod error;
pub mod rows;

use async_trait::async_trait;
use mandate_core::attestation::AttestationBinding;
use mandate_core::client::ClientSource;
use mandate_core::{AuditEvent, Client, Resource, ResourceUri, UnixTime, User};

pub use delegation::{
    AuthorizationCode, AuthorizationRequest, BrowserSession, CodeRedemption, Consent, Grant, RefreshToken, RefreshUse,
};
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
    /// Every user, ordered by username.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
}

/// Events counted per key over a sliding window, shared by every instance: failed sign-ins
/// (`user:<name>`, `ip:<address>`) and registrations (`register:<address>`).
#[async_trait]
pub trait RateCounterStore: Send + Sync {
    /// Counts an event; events older than `window` seconds are forgotten. Returns the count
    /// within the window, this one included.
    async fn record_event(&self, key: &str, now: UnixTime, window: i64) -> StoreResult<u32>;
    /// Events within the last `window` seconds.
    async fn recent_events(&self, key: &str, now: UnixTime, window: i64) -> StoreResult<u32>;
    /// Forgets the events of `key` (a successful sign-in clears its account's failures).
    async fn clear_events(&self, key: &str) -> StoreResult<()>;
    /// Counts an event only while fewer than `limit` are within the last `window` seconds, as one
    /// atomic step across every instance: of racing callers with room for k more, exactly k get
    /// `true`. Taken before the work it limits (a password check, a registration), so a burst of
    /// concurrent requests cannot all slip past a check made before any of them was counted.
    async fn take_event(&self, key: &str, now: UnixTime, window: i64, limit: u32) -> StoreResult<bool>;
    /// Gives back one event of `key` counted at `at` (an attempt that turned out not to count,
    /// such as a sign-in with the right password).
    async fn return_event(&self, key: &str, at: UnixTime) -> StoreResult<()>;
}

#[async_trait]
pub trait AuthorizationRequestStore: Send + Sync {
    async fn put_authorization_request(&self, request: &AuthorizationRequest) -> StoreResult<()>;
    /// The request if it exists and has not expired at `now`.
    async fn get_authorization_request(
        &self,
        handle_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<AuthorizationRequest>>;
    /// Removes and returns it, atomically: of two racing callers, one gets it.
    async fn take_authorization_request(
        &self,
        handle_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<AuthorizationRequest>>;
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn put_grant(&self, grant: &Grant) -> StoreResult<()>;
    async fn get_grant(&self, grant_id: &str) -> StoreResult<Option<Grant>>;
    /// Marks the grant revoked (idempotent); every refresh token and recorded access token of it
    /// becomes invalid. Returns whether it was live before.
    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<bool>;
    /// Revokes every live grant of this person for this client (consent withdrawn).
    async fn revoke_grants_of(&self, username: &str, client_id: &str, now: UnixTime) -> StoreResult<u64>;

    async fn put_code(&self, code: &AuthorizationCode) -> StoreResult<()>;
    /// Consumes the code in one atomic statement (`UPDATE … WHERE used_at IS NULL`), only for the
    /// client it was issued to: for any other client the code is `Unknown` and stays as it was, so
    /// a wrong client can neither use it up nor trigger the revocation of a reused code.
    async fn redeem_code(&self, code_hash: &str, client_id: &str, now: UnixTime) -> StoreResult<CodeRedemption>;

    async fn put_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    /// Marks the token used in one atomic statement; reports whether this call did.
    async fn use_refresh_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<RefreshUse>;
    async fn get_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>>;

    /// Records the client attestation on a grant that has none yet (the first redemption binds it);
    /// `false` when the grant already has one, or does not exist.
    async fn bind_grant_attestation(&self, grant_id: &str, binding: &AttestationBinding) -> StoreResult<bool>;

    /// Remembers that access token `jti` came from `grant_id`, so revoking the grant revokes it.
    async fn record_access_token(&self, jti: &str, grant_id: &str, expires_at: UnixTime) -> StoreResult<()>;

    /// Drops expired authorization requests, codes, refresh tokens, access-token records, sessions,
    /// recorded `jti`s and attestation challenges (and login failures older than a day); returns
    /// how many rows went.
    async fn purge_expired_delegation(&self, now: UnixTime) -> StoreResult<u64>;
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    async fn get_consent(&self, username: &str, client_id: &str, resources: &str) -> StoreResult<Option<Consent>>;
    /// Inserts or replaces.
    async fn put_consent(&self, consent: &Consent) -> StoreResult<()>;
    async fn list_consents(&self, username: &str) -> StoreResult<Vec<Consent>>;
    async fn delete_consent(&self, username: &str, client_id: &str, resources: &str) -> StoreResult<bool>;
    /// The client's redirect URIs changed: every remembered consent, waiting authorization request
    /// and unredeemed code of the client goes, in one transaction, so nothing decided for the old
    /// redirect URIs reaches the new ones. Returns how many rows went.
    async fn forget_client_authorizations(&self, client_id: &str) -> StoreResult<u64>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn put_session(&self, session: &BrowserSession) -> StoreResult<()>;
    /// The session if it exists and has not expired at `now`.
    async fn get_session(&self, session_hash: &str, now: UnixTime) -> StoreResult<Option<BrowserSession>>;
    async fn delete_session(&self, session_hash: &str) -> StoreResult<()>;
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
    /// Revoked itself; issued from a grant that has been revoked since; or exchanged (RFC 8693)
    /// from a subject or actor token for which either holds, however far up the chain.
    async fn is_access_token_revoked(&self, jti: &str) -> StoreResult<bool>;
    /// Drops revocations of tokens that have expired; returns how many.
    async fn purge_expired_revocations(&self, now: UnixTime) -> StoreResult<u64>;
}

/// One issued token in its chain of custody (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenRecord {
    pub jti: String,
    /// `access_token`, or the token type of an assertion issued for another server.
    pub kind: String,
    /// The subject token of a token exchange.
    pub parent_jti: Option<String>,
    /// The actor token of a token exchange.
    pub actor_jti: Option<String>,
    /// The grant of a code or refresh.
    pub grant_id: Option<String>,
    pub subject: String,
    pub client_id: String,
    pub audience: String,
    pub scope: Option<String>,
    /// The `act` claim, as JSON text.
    pub act: Option<String>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
}

/// An audit row and, for an issued token, its lineage row, committed together. A refusal has no
/// lineage row.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuanceRecord {
    pub event: AuditEvent,
    pub lineage: Option<TokenRecord>,
}

/// Where every token came from: the lineage shown by `mandate audit lineage` and the admin API,
/// and followed by revocation (a token is inactive when anything it derives from is revoked).
#[async_trait]
pub trait LineageStore: Send + Sync {
    async fn record_token(&self, record: &TokenRecord) -> StoreResult<()>;
    /// The audit rows (and lineage rows) of several issuances and refusals, in one transaction:
    /// all or none, the audit rows in the order given.
    async fn record_issuances(&self, batch: &[IssuanceRecord]) -> StoreResult<()>;
    async fn get_token_record(&self, jti: &str) -> StoreResult<Option<TokenRecord>>;
    /// Deletes the lineage rows of tokens that expired before `before`, at most `limit` of them
    /// (SQLite looks among the oldest `limit` rows only, as `purge_audit` does); the number
    /// deleted.
    async fn purge_lineage(&self, before: UnixTime, limit: u32) -> StoreResult<u64>;
    /// Tokens exchanged from `jti`, as subject token or as actor token, oldest first.
    async fn token_children(&self, jti: &str) -> StoreResult<Vec<TokenRecord>>;
    /// Tokens issued from a grant (codes and refreshes), oldest first.
    async fn tokens_of_grant(&self, grant_id: &str) -> StoreResult<Vec<TokenRecord>>;
    /// The newest `limit` tokens issued for `subject` (a person), newest first.
    async fn recent_tokens_of_subject(&self, subject: &str, limit: u32) -> StoreResult<Vec<TokenRecord>>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// The newest `limit` events, newest first.
    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditEvent>>;
    async fn audit_by_jti(&self, jti: &str) -> StoreResult<Vec<AuditEvent>>;
    /// Deletes audit rows written before `before`, oldest first, at most `limit` of them, and
    /// stops at the first newer row in write order (so it never scans the whole log); the number
    /// deleted. Rows a little out of order (instances' clocks) go on a later call.
    async fn purge_audit(&self, before: UnixTime, limit: u32) -> StoreResult<u64>;
}

/// One-time identifiers (the `jti` of client assertions, RFC 7523 §3), remembered by every
/// instance until they expire.
#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records `key` until `expires_at`, atomically. `false` when it is already recorded and not
    /// yet expired at `now` (a replay); an expired record is replaced.
    async fn record_once(&self, key: &str, expires_at: UnixTime, now: UnixTime) -> StoreResult<bool>;
}

/// Challenges handed out for client attestation PoPs (draft-ietf-oauth-attestation-based-client-auth
/// §6), stored only as digests, each usable once, on any instance, until it expires.
#[async_trait]
pub trait AttestationChallengeStore: Send + Sync {
    async fn put_attestation_challenge(&self, challenge_hash: &str, expires_at: UnixTime) -> StoreResult<()>;
    /// Consumes the challenge in one atomic statement: `true` for exactly one caller, and only if
    /// it was issued and has not expired at `now`.
    async fn take_attestation_challenge(&self, challenge_hash: &str, now: UnixTime) -> StoreResult<bool>;
}

/// A client that registered itself (RFC 7591), with what managing it needs (RFC 7592).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub client_id: String,
    /// SHA-256 digest (`SecretDigest::encode`) of the registration access token.
    pub access_token_hash: String,
    /// Digest of a public client's canonical metadata: identical registrations share one client.
    pub metadata_hash: Option<String>,
    pub created_at: UnixTime,
    /// When a token was last issued to it; unused registrations expire.
    pub last_used_at: UnixTime,
    /// The normalised client metadata as JSON text, returned by RFC 7592 reads.
    pub metadata: Option<String>,
    /// The configured publisher whose software statement vouched for this client's metadata.
    pub software_publisher: Option<String>,
}

#[async_trait]
pub trait RegistrationStore: Send + Sync {
    /// Stores a self-registered client (source `Dynamic`) and its registration, in one transaction.
    async fn register_client(&self, client: &Client, registration: &Registration) -> StoreResult<()>;
    async fn get_registration(&self, client_id: &str) -> StoreResult<Option<Registration>>;
    /// The registration of an enabled client with this metadata digest, if any.
    async fn find_registration_by_metadata(&self, metadata_hash: &str) -> StoreResult<Option<Registration>>;
    /// Replaces a self-registered client and its metadata (RFC 7592 §2.2), in one transaction,
    /// keeping the access token, creation and last-use times. `false` when there is no such
    /// self-registered client (config clients are never changed here).
    async fn update_registered_client(
        &self,
        client: &Client,
        registration: &Registration,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Deletes a self-registered client and its registration (RFC 7592 §2.3); whether it existed.
    /// Config clients are never deleted here.
    async fn delete_registered_client(&self, client_id: &str) -> StoreResult<bool>;
    /// Records a use (a token issued) at `now`.
    async fn touch_registration(&self, client_id: &str, now: UnixTime) -> StoreResult<()>;
    /// Deletes self-registered clients last used before `before`; returns how many.
    async fn purge_unused_registrations(&self, before: UnixTime) -> StoreResult<u64>;
}

/// Everything the server needs from storage.
#[async_trait]
pub trait Store:
    ClientStore
    + ResourceStore
    + UserStore
    + KeyStore
    + RevocationStore
    + AuditStore
    + RateCounterStore
    + AuthorizationRequestStore
    + GrantStore
    + ConsentStore
    + SessionStore
    + ReplayStore
    + AttestationChallengeStore
    + RegistrationStore
    + LineageStore
{
    /// Cheap round trip for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
    fn backend(&self) -> &'static str;
}
