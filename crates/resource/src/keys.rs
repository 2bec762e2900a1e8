//! The issuer's keys: found by discovery (RFC 8414, then OpenID Connect), fetched from its
//! `jwks_uri`, kept in memory and never fetched per request. An unknown `kid` (the issuer rotated)
//! triggers one refetch, at most once per `min_refresh`, shared by concurrent requests. When the
//! issuer cannot be reached at start-up a background task retries with backoff; meanwhile
//! requests get 503, never a crash.

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use serde::Deserialize;

/// What discovery tells a resource server.
#[derive(Debug, Clone, Deserialize)]
pub struct IssuerMetadata {
    pub issuer: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
}

#[derive(Debug)]
pub struct Loaded {
    pub metadata: IssuerMetadata,
    pub keys: JwkSet,
}

pub struct KeySource {
    http: reqwest::Client,
    issuer: String,
    current: RwLock<Option<Arc<Loaded>>>,
    /// When an unknown `kid` last caused a refetch; the lock makes concurrent refetches one.
    last_forced: tokio::sync::Mutex<Option<Instant>>,
    min_refresh: Duration,
    max_age: Duration,
}

impl KeySource {
    pub fn new(http: reqwest::Client, issuer: String, min_refresh: Duration, max_age: Duration) -> Arc<Self> {
        Arc::new(Self {
            http,
            issuer,
            current: RwLock::new(None),
            last_forced: tokio::sync::Mutex::new(None),
            min_refresh,
            max_age,
        })
    }

    pub fn current(&self) -> Option<Arc<Loaded>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Loads the keys now and keeps them fresh: retries with backoff (1 s doubling to 60 s) until
    /// the issuer answers, then refreshes every `max_age`. Stops when the source is dropped.
    pub fn spawn_keeper(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let Some(source) = weak.upgrade() else { return };
                let wait = match source.fetch().await {
                    Ok(()) => {
                        backoff = Duration::from_secs(1);
                        source.max_age
                    }
                    Err(e) => {
                        tracing::warn!(issuer = %source.issuer, error = %e, retry_in = ?backoff, "the issuer's keys could not be loaded");
                        let wait = backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                        wait
                    }
                };
                drop(source);
                tokio::time::sleep(wait).await;
            }
        });
    }

    /// For an unknown `kid`: refetch unless that happened within `min_refresh`. Returns the keys
    /// as they are afterwards.
    pub async fn refresh(&self) -> Option<Arc<Loaded>> {
        let seen = self.current();
        let mut last = self.last_forced.lock().await;
        let changed = !same(&seen, &self.current());
        let recent = last.is_some_and(|t| t.elapsed() < self.min_refresh);
        if !changed && !recent {
            *last = Some(Instant::now());
            if let Err(e) = self.load_and_store().await {
                tracing::warn!(issuer = %self.issuer, error = %e, "refetching the issuer's keys failed");
            }
        }
        self.current()
    }

    async fn fetch(&self) -> Result<(), String> {
        self.load_and_store().await
    }

    async fn load_and_store(&self) -> Result<(), String> {
        let loaded = self.load().await?;
        tracing::debug!(issuer = %self.issuer, keys = loaded.keys.keys.len(), "issuer keys loaded");
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(loaded));
        Ok(())
    }

    async fn load(&self) -> Result<Loaded, String> {
        let mut last_error = String::new();
        let mut found = None;
        for url in discovery_urls(&self.issuer)? {
            match self.get_json::<IssuerMetadata>(&url).await {
                Ok(m) if m.issuer == self.issuer => {
                    found = Some(m);
                    break;
                }
                Ok(m) => last_error = format!("{url} names issuer {:?}, not {:?}", m.issuer, self.issuer),
                Err(e) => last_error = e,
            }
        }
        let metadata = found.ok_or(last_error)?;
        let mut keys: JwkSet = self.get_json(&metadata.jwks_uri).await?;
        // Public asymmetric keys only: a symmetric key would let anyone who has it mint tokens.
        keys.keys.retain(|k| !matches!(k.algorithm, AlgorithmParameters::OctetKey(_)));
        if keys.keys.is_empty() {
            return Err(format!("{} has no usable keys", metadata.jwks_uri));
        }
        Ok(Loaded { metadata, keys })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let res =
            self.http.get(url).header("accept", "application/json").send().await.map_err(|e| format!("{url}: {e}"))?;
        if res.status() != reqwest::StatusCode::OK {
            return Err(format!("{url} answered {}", res.status()));
        }
        res.json::<T>().await.map_err(|e| format!("{url} is not the expected JSON: {e}"))
    }
}

fn same(a: &Option<Arc<Loaded>>, b: &Option<Arc<Loaded>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// RFC 8414 §3.1 (the well-known path inserted before the issuer's path), then OpenID Connect
/// Discovery in both of its forms.
pub fn discovery_urls(issuer: &str) -> Result<Vec<String>, String> {
    let url = url::Url::parse(issuer).map_err(|_| format!("the issuer {issuer:?} is not a URL"))?;
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    Ok(vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
        format!("{origin}{path}/.well-known/openid-configuration"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls_insert_the_well_known_path() {
        assert_eq!(
            discovery_urls("https://auth.example/tenant1").unwrap(),
            vec![
                "https://auth.example/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example/.well-known/openid-configuration/tenant1",
                "https://auth.example/tenant1/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            discovery_urls("http://127.0.0.1:8080").unwrap()[0],
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server"
        );
    }
}
