//! Clients and resources as read on every token request, kept for a moment in memory so a burst
//! of requests does not read the same rows again and again. Only found rows are kept, for
//! [`TTL`]; a change made through this instance (a registration updated or deleted) drops its
//! entry at once, and other instances see it within the TTL.

use std::time::Duration;

use mandate_core::{Client, OAuthError, Resource, ResourceUri};

use crate::error::store_error;
use crate::state::AppState;

/// How long a client or resource read is reused.
pub const TTL: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Lookups {
    clients: moka::future::Cache<String, Client>,
    resources: moka::future::Cache<ResourceUri, Resource>,
}

impl Default for Lookups {
    fn default() -> Self {
        Self {
            clients: moka::future::Cache::builder().max_capacity(10_000).time_to_live(TTL).build(),
            resources: moka::future::Cache::builder().max_capacity(1_000).time_to_live(TTL).build(),
        }
    }
}

impl Lookups {
    pub async fn client(&self, state: &AppState, client_id: &str) -> Result<Option<Client>, OAuthError> {
        if let Some(client) = self.clients.get(client_id).await {
            return Ok(Some(client));
        }
        let found = state.store.get_client(client_id).await.map_err(store_error)?;
        if let Some(client) = &found {
            self.clients.insert(client_id.to_owned(), client.clone()).await;
        }
        Ok(found)
    }

    pub async fn resource(&self, state: &AppState, uri: &ResourceUri) -> Result<Option<Resource>, OAuthError> {
        if let Some(resource) = self.resources.get(uri).await {
            return Ok(Some(resource));
        }
        let found = state.store.get_resource(uri).await.map_err(store_error)?;
        if let Some(resource) = &found {
            self.resources.insert(uri.clone(), resource.clone()).await;
        }
        Ok(found)
    }

    /// Forgets a client changed or deleted through this instance.
    pub async fn forget_client(&self, client_id: &str) {
        self.clients.invalidate(client_id).await;
    }
}
