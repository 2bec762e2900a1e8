//! [`Agent`]: give it an MCP server URL, get back a working token. It discovers the authorization
//! server, picks the client identity, runs the grant the identity and the server allow, caches
//! and refreshes tokens, and answers 401 and 403 `insufficient_scope` challenges (with a limit).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use url::Url;

use crate::browser::{Browser, SystemBrowser};
use crate::challenge::{Challenge, split_scopes};
use crate::client::{self, ClientIdentity, PreRegistered, RegistrationRequest, Source};
use crate::discovery::{self, AuthorizationServerMetadata, Discovery};
use crate::error::AgentError;
use crate::grant::{self, Exchange, TokenSet};
use crate::key::ClientKey;
use crate::loopback::Loopback;
use crate::store::{CredentialStore, MemoryStore, Store, TokenKey};

/// Which grant the agent uses with a person-less or person-present identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Client credentials when the agent has credentials for a server that offers that grant and
    /// either does not offer the authorization code or no person is there
    /// ([`AgentBuilder::interactive`] off); otherwise the authorization code flow.
    #[default]
    Auto,
    /// The authorization code flow: a person approves in a browser.
    Interactive,
    /// Client credentials (RFC 6749 §4.4): the agent acts for itself.
    ClientCredentials,
}

/// Enterprise-managed authorization (ID-JAG): the person's ID token from the enterprise identity
/// provider is exchanged there for an identity assertion grant, which the MCP server's
/// authorization server redeems with the JWT bearer grant.
#[derive(Debug, Clone)]
pub struct IdentityAssertion {
    /// The identity provider's issuer.
    pub idp_issuer: String,
    /// Its token endpoint; discovered from the issuer when not given.
    pub idp_token_endpoint: Option<String>,
    /// The agent's client at the identity provider.
    pub idp_client: PreRegistered,
    /// The ID token the identity provider issued to that client.
    pub id_token: String,
}

/// Builds an [`Agent`].
pub struct AgentBuilder {
    client_name: String,
    client_uri: Option<String>,
    preregistered: Vec<PreRegistered>,
    metadata_document: Option<Url>,
    key: Option<ClientKey>,
    redirect_port: u16,
    redirect_path: String,
    browser: Arc<dyn Browser>,
    store: Box<dyn CredentialStore>,
    mode: Mode,
    scope: Option<String>,
    want_refresh_tokens: bool,
    max_step_ups: u32,
    callback_timeout: Duration,
    extra_root_certificates: Vec<Vec<u8>>,
    identity_assertion: Option<IdentityAssertion>,
    interactive: bool,
}

impl AgentBuilder {
    /// Whether a person may be asked to authorize (on by default). Off, a flow that needs a
    /// person fails with [`AgentError::LoginRequired`] instead: for scripts.
    pub fn interactive(mut self, interactive: bool) -> Self {
        self.interactive = interactive;
        self
    }

    /// The name the person sees on the consent page when the agent registers itself.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    pub fn client_uri(mut self, uri: impl Into<String>) -> Self {
        self.client_uri = Some(uri.into());
        self
    }

    /// Credentials registered ahead of time: used first, wherever they apply.
    pub fn pre_registered(mut self, client: PreRegistered) -> Self {
        self.preregistered.push(client);
        self
    }

    /// The URL of this agent's client ID metadata document, used as its `client_id` where the
    /// server supports them.
    pub fn metadata_document(mut self, url: Url) -> Self {
        self.metadata_document = Some(url);
        self
    }

    /// The private key of the metadata document's `jwks` (for `private_key_jwt`).
    pub fn key(mut self, key: ClientKey) -> Self {
        self.key = Some(key);
        self
    }

    /// The loopback port for redirects (0, the default, takes any free port).
    pub fn redirect_port(mut self, port: u16) -> Self {
        self.redirect_port = port;
        self
    }

    pub fn redirect_path(mut self, path: impl Into<String>) -> Self {
        self.redirect_path = path.into();
        self
    }

    pub fn browser(mut self, browser: impl Browser + 'static) -> Self {
        self.browser = Arc::new(browser);
        self
    }

    pub fn store(mut self, store: impl CredentialStore + 'static) -> Self {
        self.store = Box::new(store);
        self
    }

    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Scopes to ask for instead of what the challenge and the metadata suggest.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Ask for refresh tokens (`offline_access` where the server lists it); on by default.
    pub fn refresh_tokens(mut self, want: bool) -> Self {
        self.want_refresh_tokens = want;
        self
    }

    /// How many times one request may be re-authorized for more scope (default 2).
    pub fn max_step_ups(mut self, n: u32) -> Self {
        self.max_step_ups = n;
        self
    }

    pub fn callback_timeout(mut self, timeout: Duration) -> Self {
        self.callback_timeout = timeout;
        self
    }

    /// Extra trusted root certificates (DER) for https, e.g. a private CA.
    pub fn extra_root_certificate(mut self, der: Vec<u8>) -> Self {
        self.extra_root_certificates.push(der);
        self
    }

    pub fn identity_assertion(mut self, assertion: IdentityAssertion) -> Self {
        self.identity_assertion = Some(assertion);
        self
    }

    pub fn build(mut self) -> Result<Agent, AgentError> {
        let store = std::mem::replace(&mut self.store, Box::new(MemoryStore::default()));
        Ok(Agent {
            http: crate::http::client(&self.extra_root_certificates)?,
            store: Store::new(store),
            sessions: Mutex::new(HashMap::new()),
            config: self,
        })
    }
}

/// What the agent knows about one MCP server during this process.
#[derive(Debug, Clone)]
struct Session {
    discovery: Discovery,
    client: Option<ClientIdentity>,
    /// The scope last asked for, the base of the next step-up.
    requested_scope: Option<String>,
}

/// The agent's OAuth client. Cheap to share behind an `Arc`.
pub struct Agent {
    http: reqwest::Client,
    store: Store,
    sessions: Mutex<HashMap<String, Session>>,
    config: AgentBuilder,
}

/// What an authorized call came back with.
pub enum Attempt<T, E> {
    Done(T),
    /// 401 with this `WWW-Authenticate` value.
    Unauthorized(String),
    /// 403 with this `WWW-Authenticate` value.
    Forbidden(String),
    Failed(E),
}

/// Why an authorized call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("the server still answers 401 after a new authorization: {0}")]
    StillUnauthorized(String),
    #[error("the server refuses with 403: {0}")]
    Forbidden(String),
    #[error(transparent)]
    Call(E),
}

impl Agent {
    pub fn builder() -> AgentBuilder {
        AgentBuilder {
            client_name: "mandate agent".into(),
            client_uri: None,
            preregistered: Vec::new(),
            metadata_document: None,
            key: None,
            redirect_port: 0,
            redirect_path: "/callback".into(),
            browser: Arc::new(SystemBrowser),
            store: Box::new(MemoryStore::default()),
            mode: Mode::Auto,
            scope: None,
            want_refresh_tokens: true,
            max_step_ups: 2,
            callback_timeout: Duration::from_secs(300),
            extra_root_certificates: Vec::new(),
            identity_assertion: None,
            interactive: true,
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Everything in the token cache.
    pub fn cached(&self) -> Result<Vec<(TokenKey, TokenSet)>, AgentError> {
        self.store.all_tokens()
    }

    /// Discovery for `server_url`, remembered for this process.
    pub async fn discover(&self, server_url: &Url, challenge: Option<&Challenge>) -> Result<Discovery, AgentError> {
        if let Some(session) = self.sessions.lock().await.get(server_url.as_str()) {
            let same_metadata_url = challenge.and_then(|c| c.resource_metadata.as_ref()).is_none();
            if same_metadata_url {
                return Ok(session.discovery.clone());
            }
        }
        let discovery = discovery::discover(&self.http, server_url, challenge).await?;
        let mut sessions = self.sessions.lock().await;
        let session = sessions.entry(server_url.to_string()).or_insert_with(|| Session {
            discovery: discovery.clone(),
            client: None,
            requested_scope: None,
        });
        session.discovery = discovery.clone();
        Ok(discovery)
    }

    /// A valid access token for `server_url` from the cache (refreshed when it is about to
    /// expire), without any interaction; `None` when there is none.
    pub async fn cached_token(&self, server_url: &Url) -> Result<Option<String>, AgentError> {
        let Some(session) = self.sessions.lock().await.get(server_url.as_str()).cloned() else {
            return Ok(None);
        };
        let Some(client) = session.client.clone().or(self.existing_identity(&session.discovery)?) else {
            return Ok(None);
        };
        Ok(self.usable_tokens(&session.discovery, &client).await?.map(|t| t.access_token))
    }

    /// A token for `server_url`: the cached one, a refreshed one, or a new authorization.
    pub async fn token(&self, server_url: &Url) -> Result<TokenSet, AgentError> {
        let discovery = self.discover(server_url, None).await?;
        if let Some(client) = self.existing_identity(&discovery)?
            && let Some(tokens) = self.usable_tokens(&discovery, &client).await?
        {
            self.remember(server_url, &client, tokens.scope.clone()).await;
            return Ok(tokens);
        }
        let scope = self.select_scope(&discovery, None);
        self.obtain(server_url, &discovery, scope).await
    }

    /// Answers a 401: discovery from the challenge, then a refresh or a new authorization for the
    /// scope the challenge names.
    /// `rejected` is the token the server refused, if one was sent: it is not offered again.
    pub async fn on_unauthorized(
        &self,
        server_url: &Url,
        challenge: &Challenge,
        rejected: Option<&str>,
    ) -> Result<TokenSet, AgentError> {
        let discovery = self.discover(server_url, Some(challenge)).await?;
        if let Some(client) = self.existing_identity(&discovery)?
            && let Some(tokens) = self.replacement_tokens(&discovery, &client, rejected).await?
        {
            self.remember(server_url, &client, tokens.scope.clone()).await;
            return Ok(tokens);
        }
        let scope = self.select_scope(&discovery, Some(challenge));
        self.obtain(server_url, &discovery, scope).await
    }

    /// Cached tokens other than `rejected`: the cached ones if they differ, else one refresh.
    async fn replacement_tokens(
        &self,
        discovery: &Discovery,
        client: &ClientIdentity,
        rejected: Option<&str>,
    ) -> Result<Option<TokenSet>, AgentError> {
        let key = token_key(discovery, client);
        let Some(tokens) = self.store.tokens(&key)? else { return Ok(None) };
        if Some(tokens.access_token.as_str()) != rejected && tokens.fresh_for(crate::now_unix(), 30) {
            return Ok(Some(tokens));
        }
        if tokens.refresh_token.is_none() {
            return Ok(None);
        }
        match grant::refresh(&self.http, &discovery.metadata, client, &tokens, &discovery.resource).await {
            Ok(fresh) if Some(fresh.access_token.as_str()) != rejected => {
                self.store.put_tokens(&key, &fresh)?;
                Ok(Some(fresh))
            }
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::info!(error = %e, "refresh failed; a new authorization is needed");
                self.store.remove_tokens(|k| *k == key)?;
                Ok(None)
            }
        }
    }

    /// Answers a 403 `insufficient_scope`: a new authorization for the scopes already asked for
    /// plus those the challenge names.
    pub async fn step_up(&self, server_url: &Url, challenge: &Challenge) -> Result<TokenSet, AgentError> {
        let discovery = self.discover(server_url, Some(challenge)).await?;
        let previous = self.sessions.lock().await.get(server_url.as_str()).and_then(|s| s.requested_scope.clone());
        let mut scopes = previous.as_deref().map(split_scopes).unwrap_or_default();
        for s in challenge.scopes() {
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        let scope = (!scopes.is_empty()).then(|| scopes.join(" "));
        tracing::info!(server = %server_url, scope = scope.as_deref().unwrap_or(""), "stepping up");
        self.obtain(server_url, &discovery, self.with_offline_access(&discovery, scope)).await
    }

    /// Runs `call` with the current token, answering 401 with one new authorization and 403
    /// `insufficient_scope` with at most [`AgentBuilder::max_step_ups`] step-ups.
    pub async fn authorized<T, E, F, Fut>(&self, server_url: &Url, call: F) -> Result<T, CallError<E>>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
    {
        let mut token = self.cached_token(server_url).await?;
        let mut reauthorized = false;
        let mut step_ups = 0;
        loop {
            match call(token.clone()).await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Failed(e) => return Err(CallError::Call(e)),
                Attempt::Unauthorized(header) => {
                    if reauthorized {
                        return Err(CallError::StillUnauthorized(header));
                    }
                    reauthorized = true;
                    let challenge = Challenge::parse(&header);
                    token = Some(self.on_unauthorized(server_url, &challenge, token.as_deref()).await?.access_token);
                }
                Attempt::Forbidden(header) => {
                    let challenge = Challenge::parse(&header);
                    if !challenge.is_insufficient_scope() {
                        return Err(CallError::Forbidden(header));
                    }
                    if step_ups >= self.config.max_step_ups {
                        return Err(AgentError::StepUpLimit {
                            attempts: step_ups,
                            scope: challenge.scope.unwrap_or_default(),
                        }
                        .into());
                    }
                    step_ups += 1;
                    token = Some(self.step_up(server_url, &challenge).await?.access_token);
                }
            }
        }
    }

    /// Sends `request` (to the MCP server or any resource at `server_url`) with the agent's token
    /// as `Authorization: Bearer`, answering 401 and 403 `insufficient_scope` as
    /// [`Agent::authorized`] does; the request is replayed after a new authorization, so its body
    /// must not be a stream.
    pub async fn send(
        &self,
        server_url: &Url,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CallError<reqwest::Error>> {
        if request.try_clone().is_none() {
            return Err(AgentError::RequestNotReplayable.into());
        }
        self.authorized(server_url, |token| {
            let request = request.try_clone().expect("checked above");
            async move {
                let request = match token {
                    Some(token) => request.bearer_auth(token),
                    None => request,
                };
                let response = match request.send().await {
                    Ok(response) => response,
                    Err(e) => return Attempt::Failed(e),
                };
                let challenge = response
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                match (response.status().as_u16(), challenge) {
                    (401, Some(header)) => Attempt::Unauthorized(header),
                    (403, Some(header)) => Attempt::Forbidden(header),
                    _ => Attempt::Done(response),
                }
            }
        })
        .await
    }

    /// Token exchange (RFC 8693) at the authorization server `issuer`, as the pre-registered
    /// client that applies there.
    pub async fn exchange(&self, issuer: &str, exchange: &Exchange<'_>) -> Result<TokenSet, AgentError> {
        let metadata = discovery::discover_authorization_server(&self.http, issuer).await?;
        if metadata.grant_types_supported.is_some() && !metadata.supports_grant(grant::GRANT_TOKEN_EXCHANGE) {
            return Err(AgentError::GrantNotSupported { issuer: metadata.issuer.clone(), grant: "token-exchange" });
        }
        let client = self
            .config
            .preregistered
            .iter()
            .find(|p| p.applies_to(&metadata.issuer))
            .ok_or_else(|| AgentError::NoClientIdentity { issuer: metadata.issuer.clone() })?
            .identity(&metadata)?;
        grant::token_exchange(&self.http, &metadata, &client, exchange).await
    }

    /// Drops the cached tokens for `server_url` (all of them when `None`); revokes refresh
    /// tokens at servers that publish a revocation endpoint. Returns how many were dropped.
    pub async fn logout(&self, server_url: Option<&Url>) -> Result<usize, AgentError> {
        let resource = match server_url {
            Some(url) => Some(self.discover(url, None).await?),
            None => None,
        };
        let removed = self.store.remove_tokens(|k| {
            resource.as_ref().is_none_or(|d| k.issuer == d.metadata.issuer && k.resource == d.resource)
        })?;
        for (key, tokens) in &removed {
            if let Err(e) = self.revoke(key, tokens).await {
                tracing::warn!(issuer = %key.issuer, error = %e, "revocation failed; the tokens were dropped locally");
            }
        }
        self.sessions.lock().await.clear();
        Ok(removed.len())
    }

    async fn revoke(&self, key: &TokenKey, tokens: &TokenSet) -> Result<(), AgentError> {
        let Some(refresh_token) = &tokens.refresh_token else { return Ok(()) };
        let metadata = discovery::discover_authorization_server(&self.http, &key.issuer).await?;
        let Some(endpoint) = metadata.revocation_endpoint.as_deref() else { return Ok(()) };
        let Some(client) = self.identity_for_key(&metadata, &key.client_id)? else { return Ok(()) };
        let endpoint = discovery::parse_url(endpoint)?;
        let mut form = vec![("token", refresh_token.clone()), ("token_type_hint", "refresh_token".to_owned())];
        let request = client.authenticate(self.http.post(endpoint.clone()), &mut form, &metadata.issuer)?;
        let response = request.form(&form).send().await.map_err(|e| AgentError::http(&endpoint, e))?;
        if !response.status().is_success() {
            return Err(AgentError::UnexpectedStatus {
                url: endpoint.to_string(),
                status: response.status().as_u16(),
                detail: "revocation".into(),
            });
        }
        Ok(())
    }

    fn identity_for_key(
        &self,
        metadata: &AuthorizationServerMetadata,
        client_id: &str,
    ) -> Result<Option<ClientIdentity>, AgentError> {
        if let Some(p) = self.config.preregistered.iter().find(|p| p.client_id == client_id) {
            return p.identity(metadata).map(Some);
        }
        Ok(self.store.client(&metadata.issuer)?.filter(|c| c.client_id == client_id).or_else(|| {
            self.config
                .metadata_document
                .as_ref()
                .filter(|u| u.as_str() == client_id)
                .map(|u| client::metadata_document_identity(u, self.config.key.as_ref(), metadata))
        }))
    }

    /// The scope to ask for: configured, else the challenge's, else the resource's
    /// `scopes_supported`, else none; plus `offline_access` where the server lists it.
    fn select_scope(&self, discovery: &Discovery, challenge: Option<&Challenge>) -> Option<String> {
        let base = self
            .config
            .scope
            .clone()
            .or_else(|| challenge.and_then(|c| c.scope.clone()).filter(|s| !s.trim().is_empty()))
            .or_else(|| {
                discovery
                    .resource_metadata
                    .as_ref()
                    .and_then(|p| p.scopes_supported.as_ref())
                    .filter(|s| !s.is_empty())
                    .map(|s| s.join(" "))
            });
        self.with_offline_access(discovery, base)
    }

    /// SEP-2207: a client that wants refresh tokens adds `offline_access` when the authorization
    /// server lists it in `scopes_supported`, and never otherwise.
    fn with_offline_access(&self, discovery: &Discovery, scope: Option<String>) -> Option<String> {
        let listed =
            discovery.metadata.scopes_supported.as_ref().is_some_and(|s| s.iter().any(|s| s == "offline_access"));
        match scope {
            Some(scope)
                if self.config.want_refresh_tokens
                    && listed
                    && !split_scopes(&scope).iter().any(|s| s == "offline_access") =>
            {
                Some(format!("{scope} offline_access"))
            }
            other => other,
        }
    }

    /// An identity that needs no registration: pre-registered, a metadata document, or one
    /// registered earlier and stored.
    fn existing_identity(&self, discovery: &Discovery) -> Result<Option<ClientIdentity>, AgentError> {
        let metadata = &discovery.metadata;
        if let Some(p) = self.config.preregistered.iter().find(|p| p.applies_to(&metadata.issuer)) {
            return p.identity(metadata).map(Some);
        }
        if metadata.client_id_metadata_document_supported
            && let Some(url) = &self.config.metadata_document
        {
            return Ok(Some(client::metadata_document_identity(url, self.config.key.as_ref(), metadata)));
        }
        self.store.client(&metadata.issuer)
    }

    async fn usable_tokens(
        &self,
        discovery: &Discovery,
        client: &ClientIdentity,
    ) -> Result<Option<TokenSet>, AgentError> {
        self.replacement_tokens(discovery, client, None).await
    }

    async fn remember(&self, server_url: &Url, client: &ClientIdentity, scope: Option<String>) {
        if let Some(session) = self.sessions.lock().await.get_mut(server_url.as_str()) {
            session.client = Some(client.clone());
            session.requested_scope = scope;
        }
    }

    /// Gets new tokens by the grant the configuration and the server allow, and caches them.
    async fn obtain(
        &self,
        server_url: &Url,
        discovery: &Discovery,
        scope: Option<String>,
    ) -> Result<TokenSet, AgentError> {
        let metadata = &discovery.metadata;
        let (client, tokens) = if let Some(assertion) = &self.config.identity_assertion {
            self.identity_assertion_grant(discovery, assertion, scope.as_deref()).await?
        } else if self.uses_client_credentials(metadata)? {
            let client = self
                .config
                .preregistered
                .iter()
                .find(|p| p.applies_to(&metadata.issuer))
                .ok_or_else(|| AgentError::NoClientIdentity { issuer: metadata.issuer.clone() })?
                .identity(metadata)?;
            let scope = scope.as_deref().map(strip_offline_access).filter(|s| !s.is_empty());
            let tokens =
                grant::client_credentials(&self.http, metadata, &client, &discovery.resource, scope.as_deref()).await?;
            (client, tokens)
        } else {
            self.authorization_code_grant(discovery, scope.as_deref()).await?
        };
        self.store.put_tokens(&token_key(discovery, &client), &tokens)?;
        self.remember(server_url, &client, scope.or_else(|| tokens.scope.clone())).await;
        Ok(tokens)
    }

    fn uses_client_credentials(&self, metadata: &AuthorizationServerMetadata) -> Result<bool, AgentError> {
        let has_credentials = self
            .config
            .preregistered
            .iter()
            .any(|p| p.applies_to(&metadata.issuer) && (p.client_secret.is_some() || p.key.is_some()));
        Ok(match self.config.mode {
            Mode::ClientCredentials => {
                if !metadata.supports_grant("client_credentials") && metadata.grant_types_supported.is_some() {
                    return Err(AgentError::GrantNotSupported {
                        issuer: metadata.issuer.clone(),
                        grant: "client_credentials",
                    });
                }
                true
            }
            Mode::Interactive => false,
            // Without a person (not interactive) a confidential client acts for itself.
            Mode::Auto => {
                has_credentials
                    && metadata.grant_types_supported.is_some()
                    && metadata.supports_grant("client_credentials")
                    && (!metadata.supports_grant("authorization_code") || !self.config.interactive)
            }
        })
    }

    async fn authorization_code_grant(
        &self,
        discovery: &Discovery,
        scope: Option<&str>,
    ) -> Result<(ClientIdentity, TokenSet), AgentError> {
        let metadata = &discovery.metadata;
        if !self.config.interactive {
            return Err(AgentError::LoginRequired {
                issuer: metadata.issuer.clone(),
                resource: discovery.resource.clone(),
            });
        }
        // Refuse before registering anything at a server that does not advertise PKCE S256.
        if !metadata.supports_s256() && !discovery.synthesized {
            return Err(AgentError::PkceNotSupported { issuer: metadata.issuer.clone() });
        }
        let stored = self.store.client(&metadata.issuer)?;
        let port = stored
            .as_ref()
            .and_then(|c| c.redirect_uri.as_deref())
            .and_then(|u| Url::parse(u).ok())
            .and_then(|u| u.port())
            .unwrap_or(self.config.redirect_port);
        let mut loopback = match Loopback::bind(port, &self.config.redirect_path).await {
            Ok(l) => l,
            Err(_) if port != 0 => Loopback::bind(0, &self.config.redirect_path).await?,
            Err(e) => return Err(e),
        };
        let client = match self.existing_identity(discovery)? {
            Some(client) => client,
            None if metadata.registration_endpoint.is_some() => {
                let request = RegistrationRequest {
                    client_name: &self.config.client_name,
                    redirect_uri: loopback.redirect_uri().as_str(),
                    want_refresh_tokens: self.config.want_refresh_tokens,
                    client_uri: self.config.client_uri.as_deref(),
                    software_statement: None,
                };
                let client = client::register(&self.http, metadata, &request).await?;
                self.store.put_client(&metadata.issuer, &client)?;
                client
            }
            None => return Err(AgentError::NoClientIdentity { issuer: metadata.issuer.clone() }),
        };
        let result = crate::authorize::run(
            &self.http,
            discovery,
            &client,
            scope,
            self.config.browser.as_ref(),
            &mut loopback,
            self.config.callback_timeout,
        )
        .await;
        match result {
            Ok(tokens) => Ok((client, tokens)),
            Err(e) => {
                if client.source == Source::Dynamic && e.oauth_error().is_some_and(|o| o.error == "invalid_client") {
                    // The registration is gone at the server; the next attempt registers again.
                    self.store.forget_client(&metadata.issuer)?;
                }
                Err(e)
            }
        }
    }

    async fn identity_assertion_grant(
        &self,
        discovery: &Discovery,
        assertion: &IdentityAssertion,
        scope: Option<&str>,
    ) -> Result<(ClientIdentity, TokenSet), AgentError> {
        let metadata = &discovery.metadata;
        if metadata.grant_types_supported.is_some() && !metadata.supports_grant(grant::GRANT_JWT_BEARER) {
            return Err(AgentError::GrantNotSupported { issuer: metadata.issuer.clone(), grant: "jwt-bearer" });
        }
        let idp = match &assertion.idp_token_endpoint {
            Some(endpoint) => AuthorizationServerMetadata {
                issuer: assertion.idp_issuer.clone(),
                token_endpoint: Some(endpoint.clone()),
                ..Default::default()
            },
            None => discovery::discover_authorization_server(&self.http, &assertion.idp_issuer).await?,
        };
        let idp_client = assertion.idp_client.identity(&idp)?;
        let scope = scope.map(strip_offline_access).filter(|s| !s.is_empty());
        let id_jag = grant::token_exchange(
            &self.http,
            &idp,
            &idp_client,
            &Exchange {
                subject_token: &assertion.id_token,
                subject_token_type: grant::TOKEN_TYPE_ID_TOKEN,
                requested_token_type: Some(grant::TOKEN_TYPE_ID_JAG),
                audience: Some(&metadata.issuer),
                resource: Some(&discovery.resource),
                scope: scope.as_deref(),
                ..Default::default()
            },
        )
        .await?;
        let client = self
            .config
            .preregistered
            .iter()
            .find(|p| p.applies_to(&metadata.issuer))
            .ok_or_else(|| AgentError::NoClientIdentity { issuer: metadata.issuer.clone() })?
            .identity(metadata)?;
        let tokens = grant::jwt_bearer(
            &self.http,
            metadata,
            &client,
            &id_jag.access_token,
            &discovery.resource,
            id_jag.scope.as_deref().or(scope.as_deref()),
        )
        .await?;
        Ok((client, tokens))
    }
}

fn token_key(discovery: &Discovery, client: &ClientIdentity) -> TokenKey {
    TokenKey {
        issuer: discovery.metadata.issuer.clone(),
        resource: discovery.resource.clone(),
        client_id: client.client_id.clone(),
    }
}

fn strip_offline_access(scope: &str) -> String {
    split_scopes(scope).into_iter().filter(|s| s != "offline_access").collect::<Vec<_>>().join(" ")
}
