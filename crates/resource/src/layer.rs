//! The tower layer in front of protected routes: reads the bearer token (only from the
//! `Authorization` header, exactly one), works out the scopes the operation needs (reading the
//! JSON-RPC body when the policy depends on the MCP method or tool), verifies, and passes the
//! request on with the verified token in its extensions and the token itself removed.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tower::{Layer, Service};

use crate::challenge::Rejection;
use crate::scopes::ScopePolicy;
use crate::server::ResourceServer;

/// JSON-RPC bodies read to find the method are at most this large.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone)]
pub struct RequireBearerLayer {
    rs: ResourceServer,
    policy: Arc<ScopePolicy>,
}

impl RequireBearerLayer {
    pub fn new(rs: ResourceServer, policy: ScopePolicy) -> Self {
        Self { rs, policy: Arc::new(policy) }
    }
}

impl<S> Layer<S> for RequireBearerLayer {
    type Service = RequireBearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireBearer { inner, rs: self.rs.clone(), policy: self.policy.clone() }
    }
}

#[derive(Clone)]
pub struct RequireBearer<S> {
    inner: S,
    rs: ResourceServer,
    policy: Arc<ScopePolicy>,
}

impl<S> Service<Request<Body>> for RequireBearer<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's usual swap).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let (rs, policy) = (self.rs.clone(), self.policy.clone());
        Box::pin(async move {
            match admit(&rs, &policy, request).await {
                Ok(request) => inner.call(request).await,
                Err(response) => Ok(response),
            }
        })
    }
}

async fn admit(rs: &ResourceServer, policy: &ScopePolicy, request: Request<Body>) -> Result<Request<Body>, Response> {
    let (mut parts, body) = request.into_parts();
    let baseline: Vec<String> = policy.baseline().into_iter().collect();
    let token = credentials(&parts).map_err(|r| rs.reject(&r, &baseline))?;
    let (body, message) = if policy.reads_body() && parts.method == Method::POST {
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large").into_response())?;
        let message = serde_json::from_slice::<Value>(&bytes).ok();
        (Body::from(bytes), message)
    } else {
        (body, None)
    };
    let required: Vec<String> = policy.required(message.as_ref()).into_iter().collect();
    let Some(token) = token else {
        return Err(rs.reject(&Rejection::Missing, &required));
    };
    let verified = rs.verify(&token).await.map_err(|r| {
        tracing::info!(error = %r, "access token refused");
        rs.reject(&r, &required)
    })?;
    if !required.iter().all(|s| verified.has_scope(s)) {
        tracing::info!(client_id = %verified.client_id, needed = ?required, "access token lacks a scope");
        return Err(rs.reject(&Rejection::InsufficientScope, &required));
    }
    // No token passthrough: what comes after sees the verified claims, never the token.
    parts.headers.remove(header::AUTHORIZATION);
    parts.extensions.insert(verified);
    Ok(Request::from_parts(parts, body))
}

/// The bearer token of the `Authorization` header, if any (RFC 6750 §2.1; the query-string and
/// form methods are refused: tokens in URLs end up in logs).
fn credentials(parts: &Parts) -> Result<Option<String>, Rejection> {
    let in_query =
        parts.uri.query().is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token"));
    if in_query {
        return Err(Rejection::BadRequest(
            "access tokens are accepted only in the Authorization header, never in the query string".into(),
        ));
    }
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Rejection::BadRequest("the request has more than one Authorization header".into()));
    }
    let value = value.to_str().map_err(|_| Rejection::BadRequest("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim().to_owned()))
        }
        Some((scheme, _)) if !scheme.eq_ignore_ascii_case("bearer") => {
            Err(Rejection::BadRequest(format!("the {scheme} scheme is not accepted; send a Bearer token")))
        }
        _ => Err(Rejection::BadRequest("the Authorization header has no token".into())),
    }
}
