//! The agent as a [`reqwest_middleware::Middleware`]: every request through a
//! `ClientWithMiddleware` gets the agent's token for its server, and 401 and 403
//! `insufficient_scope` answers are handled as [`Agent::authorized`] handles them (one new
//! authorization, at most `max_step_ups` step-ups), then the request is replayed.
//!
//! ```no_run
//! # async fn demo(agent: mandate_agent::Agent) -> Result<(), reqwest_middleware::Error> {
//! use std::sync::Arc;
//! let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(mandate_agent::middleware::AgentMiddleware::new(Arc::new(agent)))
//!     .build();
//! let answer = http.get("https://mcp.example.com/mcp").send().await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Request, Response};
use reqwest_middleware::{Error, Middleware, Next};
use url::Url;

use crate::agent::{Agent, Attempt, CallError};
use crate::error::AgentError;

/// Attaches the agent's tokens to requests and answers their challenges.
#[derive(Clone)]
pub struct AgentMiddleware {
    agent: Arc<Agent>,
    server: Option<Url>,
}

impl AgentMiddleware {
    /// Each request is authorized for its own URL (without query or fragment): right for an MCP
    /// endpoint, whose protected resource metadata is found from that URL.
    pub fn new(agent: Arc<Agent>) -> Self {
        Self { agent, server: None }
    }

    /// Every request is authorized for `server_url`, whatever path it goes to: for a REST API
    /// whose many paths are one protected resource.
    pub fn for_server(agent: Arc<Agent>, server_url: Url) -> Self {
        Self { agent, server: Some(server_url) }
    }

    fn server_of(&self, request: &Request) -> Url {
        self.server.clone().unwrap_or_else(|| {
            let mut url = request.url().clone();
            url.set_query(None);
            url.set_fragment(None);
            url
        })
    }
}

#[async_trait::async_trait]
impl Middleware for AgentMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if request.try_clone().is_none() {
            return Err(Error::middleware(AgentError::RequestNotReplayable));
        }
        let server = self.server_of(&request);
        // Each attempt gets its own copy of the extensions: the request may be sent again.
        let extensions = &*extensions;
        let outcome = self
            .agent
            .authorized(&server, |token| {
                let mut request = request.try_clone().expect("checked above");
                let next = next.clone();
                let mut extensions = extensions.clone();
                async move {
                    if let Some(token) = token {
                        match HeaderValue::from_str(&format!("Bearer {token}")) {
                            Ok(mut value) => {
                                value.set_sensitive(true);
                                request.headers_mut().insert(AUTHORIZATION, value);
                            }
                            Err(_) => {
                                let unusable =
                                    AgentError::InvalidTokenResponse("the access token is not a header value".into());
                                return Attempt::Failed(Error::middleware(unusable));
                            }
                        }
                    }
                    let response = match next.run(request, &mut extensions).await {
                        Ok(response) => response,
                        Err(e) => return Attempt::Failed(e),
                    };
                    let challenge =
                        response.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    match (response.status().as_u16(), challenge) {
                        (401, Some(header)) => Attempt::Unauthorized(header),
                        (403, Some(header)) => Attempt::Forbidden(header),
                        _ => Attempt::Done(response),
                    }
                }
            })
            .await;
        match outcome {
            Ok(response) => Ok(response),
            Err(CallError::Call(e)) => Err(e),
            Err(CallError::Agent(e)) => Err(Error::middleware(e)),
            Err(other) => Err(Error::middleware(Refused(other.to_string()))),
        }
    }
}

/// A server that still refuses after the agent did what its challenge asked.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);
