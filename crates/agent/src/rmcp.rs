//! The rmcp hook: a Streamable HTTP client that attaches the agent's token to every MCP request
//! and answers 401 and 403 `insufficient_scope` through [`Agent::authorized`].
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use rmcp::ServiceExt as _;
//! use rmcp::transport::StreamableHttpClientTransport;
//! use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
//! let url = url::Url::parse("https://mcp.example/mcp")?;
//! let agent = Arc::new(mandate_agent::Agent::builder().client_name("my agent").build()?);
//! let client = mandate_agent::rmcp::AuthorizedHttpClient::new(agent, url.clone());
//! let transport = StreamableHttpClientTransport::with_client(client, StreamableHttpClientTransportConfig::with_uri(url.as_str()));
//! let service = ().serve(transport).await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::stream::BoxStream;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use sse_stream::Sse;
use url::Url;

use crate::agent::{Agent, Attempt, CallError};

/// Wraps an rmcp HTTP client (reqwest's by default) with the agent's authorization.
#[derive(Clone)]
pub struct AuthorizedHttpClient<C = reqwest::Client> {
    inner: C,
    agent: Arc<Agent>,
    server_url: Url,
}

impl AuthorizedHttpClient<reqwest::Client> {
    pub fn new(agent: Arc<Agent>, server_url: Url) -> Self {
        let inner = agent.http().clone();
        Self { inner, agent, server_url }
    }
}

impl<C> AuthorizedHttpClient<C> {
    pub fn with_client(inner: C, agent: Arc<Agent>, server_url: Url) -> Self {
        Self { inner, agent, server_url }
    }
}

type Result<T, E> = std::result::Result<T, StreamableHttpError<E>>;

impl<C: StreamableHttpClient + Send + Sync> AuthorizedHttpClient<C> {
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, C::Error>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: Future<Output = Result<T, C::Error>>,
    {
        let outcome = self
            .agent
            .authorized(&self.server_url, |token| {
                let attempt = call(token);
                async move {
                    match attempt.await {
                        Ok(value) => Attempt::Done(value),
                        Err(StreamableHttpError::AuthRequired(e)) => Attempt::Unauthorized(e.www_authenticate_header),
                        Err(StreamableHttpError::InsufficientScope(e)) => Attempt::Forbidden(e.www_authenticate_header),
                        Err(other) => Attempt::Failed(other),
                    }
                }
            })
            .await;
        outcome.map_err(|e| match e {
            CallError::Call(inner) => inner,
            other => StreamableHttpError::UnexpectedServerResponse(format!("authorization failed: {other}").into()),
        })
    }
}

impl<C: StreamableHttpClient + Send + Sync> StreamableHttpClient for AuthorizedHttpClient<C> {
    type Error = C::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, C::Error> {
        self.call(|token| {
            self.inner.post_message(uri.clone(), message.clone(), session_id.clone(), token, custom_headers.clone())
        })
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, C::Error> {
        self.call(|token| {
            self.inner.post_message_with_max_sse_event_size(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                token,
                custom_headers.clone(),
                max_sse_event_size,
            )
        })
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, C::Error> {
        self.call(|token| {
            self.inner.post_message_with_response_limits(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                token,
                custom_headers.clone(),
                limits,
            )
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), C::Error> {
        self.call(|token| self.inner.delete_session(uri.clone(), session_id.clone(), token, custom_headers.clone()))
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, std::result::Result<Sse, SseError>>, C::Error> {
        self.call(|token| {
            self.inner.get_stream(uri.clone(), session_id.clone(), last_event_id.clone(), token, custom_headers.clone())
        })
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, std::result::Result<Sse, SseError>>, C::Error> {
        self.call(|token| {
            self.inner.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                token,
                custom_headers.clone(),
                max_sse_event_size,
            )
        })
        .await
    }
}
