//! The resource server: what it is (issuer, resource URI, scopes), how it verifies, and the
//! pieces an application mounts (the layer, the metadata routes).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::response::Response;
use serde_json::Value;

use crate::challenge::Rejection;
use crate::claims::VerifiedToken;
use crate::delegation::DelegationPolicy;
use crate::introspect::Introspection;
use crate::keys::KeySource;
use crate::layer::RequireBearerLayer;
use crate::metadata;
use crate::scopes::ScopePolicy;
use crate::verify::{Expectations, Failure, verify_jwt};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the issuer {0:?} is not an absolute http(s) URL")]
    Issuer(String),
    #[error("the resource {0:?} is not an absolute http(s) URL without a fragment")]
    Resource(String),
    #[error("the HTTP client could not be built: {0}")]
    Http(String),
    #[error("refusing delegated tokens contradicts a maximum delegation depth or a list of allowed actors")]
    Delegation,
}

/// Settings of a [`ResourceServer`]; see [`ResourceServer::builder`].
pub struct Builder {
    issuer: String,
    resource: String,
    scopes_supported: Vec<String>,
    resource_name: Option<String>,
    leeway: Duration,
    min_refresh: Duration,
    max_age: Duration,
    introspection: Option<(String, String)>,
    introspection_ttl: Duration,
    delegation: DelegationPolicy,
}

impl Builder {
    /// The scopes published in the metadata: what a client asks for first.
    pub fn scopes_supported<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// A name for people, in the metadata (`resource_name`).
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Tolerated clock difference for `exp`, `nbf` and `iat` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The shortest time between two key refetches for unknown `kid`s (default 30 s).
    pub fn min_key_refresh(mut self, interval: Duration) -> Self {
        self.min_refresh = interval;
        self
    }

    /// Verify by introspection (RFC 7662) with these client credentials instead of offline, so
    /// revocations take effect at once; answers are cached for `ttl` (default 10 s) at most.
    pub fn introspection(mut self, client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        self.introspection = Some((client_id.into(), client_secret.into()));
        self
    }

    pub fn introspection_cache(mut self, ttl: Duration) -> Self {
        self.introspection_ttl = ttl;
        self
    }

    /// Refuse delegated tokens: those with an `act` claim (RFC 8693 §4.1), used by an agent for
    /// someone else. They get 403 `invalid_token` saying why.
    pub fn refuse_delegation(mut self) -> Self {
        self.delegation.refuse = true;
        self
    }

    /// Refuse delegated tokens whose chain has more than `actors` actors (`0` refuses every
    /// delegated token).
    pub fn max_delegation_depth(mut self, actors: usize) -> Self {
        self.delegation.max_depth = Some(actors);
        self
    }

    /// Accept delegated tokens only when every actor of the chain is one of these clients (by the
    /// actor's `sub`; an actor from another issuer never matches). Repeatable; tokens without
    /// `act` are not affected.
    pub fn allowed_actors<I: IntoIterator<Item = S>, S: Into<String>>(mut self, client_ids: I) -> Self {
        self.delegation.allowed_actors.get_or_insert_default().extend(client_ids.into_iter().map(Into::into));
        self
    }

    /// Checks the settings and starts loading the issuer's keys in the background (call within
    /// a Tokio runtime). An unreachable issuer is retried with backoff; until its keys are
    /// loaded, requests get 503.
    pub fn build(self) -> Result<ResourceServer, BuildError> {
        let d = &self.delegation;
        if d.refuse && (d.max_depth.is_some() || d.allowed_actors.is_some()) {
            return Err(BuildError::Delegation);
        }
        let web_url = |s: &str| url::Url::parse(s).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
        web_url(&self.issuer).ok_or_else(|| BuildError::Issuer(self.issuer.clone()))?;
        let resource = web_url(&self.resource)
            .filter(|u| u.fragment().is_none())
            .ok_or_else(|| BuildError::Resource(self.resource.clone()))?;
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BuildError::Http(e.to_string()))?;
        let keys = KeySource::new(http.clone(), self.issuer.clone(), self.min_refresh, self.max_age);
        keys.spawn_keeper();
        let document =
            metadata::document(&self.resource, &self.issuer, &self.scopes_supported, self.resource_name.as_deref());
        Ok(ResourceServer {
            inner: Arc::new(Inner {
                expect: Expectations {
                    issuer: self.issuer,
                    resource: self.resource,
                    leeway: self.leeway.as_secs() as i64,
                },
                metadata_url: metadata::url(&resource),
                resource_url: resource,
                document,
                keys,
                http,
                introspection: self
                    .introspection
                    .map(|(id, secret)| Introspection::new(id, secret, self.introspection_ttl)),
                delegation: self.delegation,
            }),
        })
    }
}

/// A protected resource. Cheap to clone; share one per resource URI.
#[derive(Clone)]
pub struct ResourceServer {
    inner: Arc<Inner>,
}

struct Inner {
    expect: Expectations,
    resource_url: url::Url,
    metadata_url: String,
    document: Value,
    keys: Arc<KeySource>,
    http: reqwest::Client,
    introspection: Option<Introspection>,
    delegation: DelegationPolicy,
}

impl std::fmt::Debug for ResourceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceServer")
            .field("issuer", &self.inner.expect.issuer)
            .field("resource", &self.inner.expect.resource)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

impl ResourceServer {
    /// A resource server for `resource` (its canonical URI, the `aud` of its tokens) trusting
    /// the authorization server `issuer`.
    pub fn builder(issuer: impl Into<String>, resource: impl Into<String>) -> Builder {
        Builder {
            issuer: issuer.into(),
            resource: resource.into(),
            scopes_supported: Vec::new(),
            resource_name: None,
            leeway: Duration::from_secs(30),
            min_refresh: Duration::from_secs(30),
            max_age: Duration::from_secs(3600),
            introspection: None,
            introspection_ttl: Duration::from_secs(10),
            delegation: DelegationPolicy::default(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.inner.expect.issuer
    }

    pub fn resource(&self) -> &str {
        &self.inner.expect.resource
    }

    /// The protected resource metadata URL that challenges name.
    pub fn metadata_url(&self) -> &str {
        &self.inner.metadata_url
    }

    /// Whether the issuer's keys (and endpoints) are loaded: a readiness probe.
    pub fn is_ready(&self) -> bool {
        self.inner.keys.current().is_some()
    }

    /// Verifies a bearer token for this resource, and that its delegation chain is one this
    /// resource accepts.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, Rejection> {
        let loaded = self.inner.keys.current().ok_or_else(|| {
            Rejection::Unavailable("the authorization server's keys are not loaded yet; try again shortly".into())
        })?;
        let claims = match &self.inner.introspection {
            Some(introspection) => {
                let endpoint = loaded.metadata.introspection_endpoint.as_deref().ok_or_else(|| {
                    Rejection::Unavailable("the authorization server publishes no introspection endpoint".into())
                })?;
                introspection.check(&self.inner.http, endpoint, token, &self.inner.expect, now()).await?
            }
            None => match verify_jwt(token, &loaded.keys, &self.inner.expect, now()) {
                Err(Failure::UnknownKey) => {
                    // The issuer may have rotated its keys since they were loaded.
                    let refreshed = self.inner.keys.refresh().await.unwrap_or(loaded);
                    verify_jwt(token, &refreshed.keys, &self.inner.expect, now())
                }
                other => other,
            }
            .map_err(|f| match f {
                Failure::UnknownKey => {
                    Rejection::InvalidToken("the access token is signed by a key the issuer does not publish".into())
                }
                Failure::Invalid(m) => Rejection::InvalidToken(m.into()),
            })?,
        };
        let token = VerifiedToken::from_claims(claims)
            .ok_or_else(|| Rejection::InvalidToken("the access token lacks sub, client_id or exp".into()))?;
        self.inner.delegation.check(token.act.as_ref(), &self.inner.expect.issuer)?;
        Ok(token)
    }

    /// The RFC 9728 document.
    pub fn metadata_document(&self) -> &Value {
        &self.inner.document
    }

    /// Routes serving the metadata at its well-known URLs; merge into the application's router.
    pub fn metadata_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        metadata::router(&self.inner.resource_url, self.inner.document.clone())
    }

    /// The layer requiring a valid token with the scopes `policy` names.
    pub fn layer(&self, policy: ScopePolicy) -> RequireBearerLayer {
        RequireBearerLayer::new(self.clone(), policy)
    }

    /// The response for a refusal: status, `WWW-Authenticate` naming the metadata and `scopes`.
    pub fn reject(&self, rejection: &Rejection, scopes: &[String]) -> Response {
        rejection.response(self.metadata_url(), scopes)
    }
}
