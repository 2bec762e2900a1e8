//! The tower layer in front of protected routes: reads the bearer token (only from the
//! `Authorization` header, exactly one), works out the scopes the operation needs (reading the
//! JSON-RPC body when the policy depends on the MCP method or tool, and refusing a body it cannot
//! read exactly as the server behind would), verifies, and passes the request on with the
//! verified token in its extensions, the token itself removed, and the body it checked.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Request, header};
use axum::response::Response;
use tower::{Layer, Service};

use crate::challenge::Rejection;
use crate::jsonrpc::{self, Message};
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
    // The body is read first, so that a 401's challenge can name the scopes its method needs; but
    // a body that cannot be checked is refused only once the token is known good: without a valid
    // token the answer is always the 401 that starts authorization (MCP clients and readiness
    // probes send a bare POST). Either way nothing unchecked is passed on.
    let (body, messages, unreadable) = if policy.reads_body() {
        match read_body(&parts, body).await {
            Ok((body, messages)) => (body, messages, None),
            Err(r) => (Body::empty(), Vec::new(), Some(r)),
        }
    } else {
        (body, Vec::new(), None)
    };
    let required: Vec<String> = policy.required(&messages).into_iter().collect();
    let Some(token) = token else {
        return Err(rs.reject(&Rejection::Missing, &required));
    };
    let verified = rs.verify(&token).await.map_err(|r| {
        tracing::info!(error = ?r.to_string(), "access token refused");
        rs.reject(&r, &required)
    })?;
    if let Some(r) = unreadable {
        tracing::info!(error = ?r.to_string(), client_id = ?verified.client_id, "request body refused");
        return Err(rs.reject(&r, &baseline));
    }
    if !required.iter().all(|s| verified.has_scope(s)) {
        tracing::info!(client_id = ?verified.client_id, needed = ?required, "access token lacks a scope");
        return Err(rs.reject(&Rejection::InsufficientScope, &required));
    }
    // No token passthrough: what comes after sees the verified claims, never the token.
    parts.headers.remove(header::AUTHORIZATION);
    parts.extensions.insert(verified);
    Ok(Request::from_parts(parts, body))
}

/// When the scopes depend on the JSON-RPC method or tool: the body, read and classified, to pass
/// on exactly as it was checked. Fail closed: a body the server behind could read as something
/// else (another content coding or charset, a body on a method whose body is not checked, JSON
/// that is not plain UTF-8 JSON-RPC) is refused, never passed on unchecked.
async fn read_body(parts: &Parts, body: Body) -> Result<(Body, Vec<Message>), Rejection> {
    if parts.headers.contains_key(header::CONTENT_ENCODING) {
        return Err(Rejection::UnsupportedBody(
            "the request has a Content-Encoding; send the body unencoded, so the JSON-RPC method it carries can be checked"
                .into(),
        ));
    }
    if !utf8_or_no_charset(&parts.headers) {
        return Err(Rejection::UnsupportedBody(
            "the request body's Content-Type names a charset other than UTF-8 (RFC 8259 §8.1), or is not one header"
                .into(),
        ));
    }
    if parts.method != Method::POST {
        if HttpBody::is_end_stream(&body) {
            return Ok((body, Vec::new()));
        }
        // A chunked body may still turn out to be empty.
        if !read(parts, body).await?.is_empty() {
            return Err(Rejection::UnclassifiableBody(format!(
                "a {} request may not carry a body here: the scopes a request needs are read from the JSON-RPC body of a POST",
                parts.method
            )));
        }
        return Ok((Body::empty(), Vec::new()));
    }
    let classified =
        jsonrpc::classify(read(parts, body).await?).map_err(|e| Rejection::UnclassifiableBody(e.to_string()))?;
    let messages = classified.messages().to_vec();
    Ok((classified.into_body(), messages))
}

async fn read(parts: &Parts, body: Body) -> Result<Bytes, Rejection> {
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(Rejection::BodyTooLarge(MAX_BODY_BYTES));
    }
    // Past the limit, or cut off by the client (who then reads no answer).
    axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| Rejection::BodyTooLarge(MAX_BODY_BYTES))
}

/// At most one `Content-Type`, and its `charset` parameter, if any, is UTF-8.
fn utf8_or_no_charset(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let Some(value) = values.next() else { return true };
    if values.next().is_some() {
        return false;
    }
    let Ok(value) = value.to_str() else { return false };
    value.split(';').skip(1).filter_map(|p| p.split_once('=')).all(|(name, charset)| {
        !name.trim().eq_ignore_ascii_case("charset") || charset.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    })
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
