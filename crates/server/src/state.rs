//! What every handler shares: settings, storage, clock, randomness, keys and the grant registry.

use std::sync::Arc;

use mandate_core::{Clock, Random};
use mandate_store::Store;

use crate::config::Settings;
use crate::grants::GrantRegistry;
use crate::keyring::Keyring;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Random>,
    pub keyring: Arc<Keyring>,
    pub grants: Arc<GrantRegistry>,
    /// Every outbound fetch (jwks_uri, client metadata documents) goes through this.
    pub fetcher: Arc<mandate_fetch::CachedFetcher>,
}

impl AppState {
    pub fn now(&self) -> mandate_core::UnixTime {
        self.clock.now()
    }
}
