//! Signing keys in memory: the active key signs, every published key verifies and is served at
//! `/jwks.json`. Loaded from the database at start and reloaded periodically, so a key rotated
//! through one instance is used and published by all within `keys.refresh_interval`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use mandate_core::UnixTime;
use mandate_core::jose::{KeyError, SigningAlgorithm, SigningKey, generate_private_key};
use mandate_store::{Store, StoreError, StoredKey};
use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct KeySet {
    pub active: SigningKey,
    /// Active key first, then retired keys still within their publication window.
    pub published: Vec<SigningKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid}: {source}")]
    Key { kid: String, source: KeyError },
    #[error("signing key {kid} has unknown algorithm {alg:?}")]
    Algorithm { kid: String, alg: String },
    #[error("no active signing key in the database")]
    NoActiveKey,
    #[error(transparent)]
    Generate(KeyError),
}

pub struct Keyring {
    current: RwLock<Arc<KeySet>>,
    /// When an unknown `kid` last forced a reload; bounds reloads to one per second.
    last_forced: Mutex<Option<Instant>>,
}

impl Keyring {
    /// Loads the published keys, generating the first one if the database has none.
    pub async fn load(store: &dyn Store, alg: SigningAlgorithm, now: UnixTime) -> Result<Self, KeyringError> {
        if !store.published_keys(now).await?.iter().any(|k| k.retired_at.is_none()) {
            let key = new_stored_key(alg, now)?;
            if store.insert_first_key(&key).await? {
                tracing::info!(kid = %key.kid, %alg, "generated the first signing key");
            }
        }
        let set = read(store, now).await?;
        Ok(Self { current: RwLock::new(Arc::new(set)), last_forced: Mutex::new(None) })
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub async fn reload(&self, store: &dyn Store, now: UnixTime) -> Result<(), KeyringError> {
        let set = read(store, now).await?;
        let changed = {
            let old = self.current();
            old.active.kid != set.active.kid || old.published.len() != set.published.len()
        };
        if changed {
            tracing::info!(active = %set.active.kid, published = set.published.len(), "signing keys reloaded");
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
        Ok(())
    }

    /// Reloads after meeting a `kid` we don't know (another instance may have rotated), at most
    /// once a second. Returns whether a reload happened.
    pub async fn reload_for_unknown_kid(&self, store: &dyn Store, now: UnixTime) -> bool {
        let mut last = self.last_forced.lock().await;
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(Instant::now());
        match self.reload(store, now).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not reload signing keys");
                false
            }
        }
    }
}

async fn read(store: &dyn Store, now: UnixTime) -> Result<KeySet, KeyringError> {
    let stored = store.published_keys(now).await?;
    let mut published = Vec::with_capacity(stored.len());
    let mut active = None;
    for k in &stored {
        let alg: SigningAlgorithm =
            k.alg.parse().map_err(|_| KeyringError::Algorithm { kid: k.kid.clone(), alg: k.alg.clone() })?;
        let key = SigningKey::from_pkcs8(alg, &k.private_key)
            .map_err(|source| KeyringError::Key { kid: k.kid.clone(), source })?;
        // Newest first: the first unretired key is the one that signs.
        if k.retired_at.is_none() && active.is_none() {
            active = Some(key.clone());
        }
        published.push(key);
    }
    let active = active.ok_or(KeyringError::NoActiveKey)?;
    published.sort_by_key(|k| k.kid != active.kid);
    Ok(KeySet { active, published })
}

fn new_stored_key(alg: SigningAlgorithm, now: UnixTime) -> Result<StoredKey, KeyringError> {
    let der = generate_private_key(alg).map_err(KeyringError::Generate)?;
    let key = SigningKey::from_pkcs8(alg, &der).map_err(KeyringError::Generate)?;
    Ok(StoredKey {
        kid: key.kid,
        alg: alg.as_str().to_owned(),
        private_key: der,
        created_at: now,
        retired_at: None,
        publish_until: None,
    })
}

/// Adds a new active key; the old ones stay published until every token they signed has expired
/// (`longest_token_ttl` from now, plus clock skew). Returns the new `kid`.
pub async fn rotate(
    store: &dyn Store,
    alg: SigningAlgorithm,
    now: UnixTime,
    longest_token_ttl: Duration,
) -> Result<String, KeyringError> {
    let key = new_stored_key(alg, now)?;
    let publish_until = now + longest_token_ttl.as_secs() as i64 + mandate_core::jose::CLOCK_SKEW_SECONDS;
    store.rotate_key(&key, now, publish_until).await?;
    tracing::info!(kid = %key.kid, %alg, publish_until, "rotated signing key");
    Ok(key.kid)
}
