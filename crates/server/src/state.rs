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
    /// Every outbound fetch goes through the SSRF-safe fetcher: this one for `jwks_uri`…
    pub fetcher: Arc<mandate_fetch::CachedFetcher>,
    /// …and this one, capped at 5 KB while streaming, for client ID metadata documents.
    pub metadata_fetcher: Arc<mandate_fetch::CachedFetcher>,
    /// …and this one for client logos (images, [`crate::clients::logo::MAX_LOGO_BYTES`]).
    pub logo_fetcher: Arc<mandate_fetch::CachedFetcher>,
    /// Issued tokens' audit and lineage rows, group-committed.
    pub issuances: crate::audit::IssuanceLog,
    /// Clients and resources reused for a moment between requests.
    pub lookups: crate::lookups::Lookups,
}

impl AppState {
    pub fn now(&self) -> mandate_core::UnixTime {
        self.clock.now()
    }
}
