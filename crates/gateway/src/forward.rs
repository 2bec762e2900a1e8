//! The proxy itself: a request the layer admitted goes to the upstream with its method, path,
//! query, end-to-end headers and body (streamed, not buffered), plus the gateway's credential;
//! the upstream's answer comes back the same way. Redirects are not followed: a 3xx goes back to
//! the agent.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_resource::VerifiedToken;
use tokio_util::sync::CancellationToken;

use crate::access_log::Caller;
use crate::credential::UpstreamHeader;
use crate::failure::{UpstreamFailure, not_found, refused_path};
use crate::headers;
use crate::stream::{UpstreamBody, error_chain};
use crate::target::{Target, Unmapped};

pub(crate) struct Proxy {
    pub(crate) http: reqwest::Client,
    pub(crate) target: Target,
    pub(crate) credentials: Vec<UpstreamHeader>,
    pub(crate) shutdown: CancellationToken,
}

pub(crate) async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let caller = request.extensions().get::<VerifiedToken>().map(Caller::from);
    // The layer admits a request only with a verified token, and takes the token out of it.
    debug_assert!(caller.is_some() && !request.headers().contains_key(header::AUTHORIZATION));
    let mut response = send(&proxy, request).await;
    if let Some(caller) = caller {
        response.extensions_mut().insert(caller);
    }
    response
}

async fn send(proxy: &Proxy, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let url = match proxy.target.map(&parts.uri) {
        Ok(url) => url,
        Err(Unmapped::Elsewhere) => return not_found().await,
        Err(refused) => {
            tracing::warn!(reason = %refused, "a path that could leave the upstream's path was refused");
            return refused_path(&refused);
        }
    };

    let mut upstream =
        proxy.http.request(parts.method, url).headers(headers::to_upstream(&parts.headers, &proxy.credentials));
    // A request without a body (a GET, most DELETEs) is sent without one, not as an empty chunked
    // body some servers refuse.
    if !HttpBody::is_end_stream(&body) {
        upstream = upstream.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }

    match upstream.send().await {
        Ok(answer) if answer.status() == StatusCode::UNAUTHORIZED => {
            tracing::warn!("the upstream answered 401 to the gateway: check its --upstream-header credentials");
            UpstreamFailure::CredentialRefused.into_response()
        }
        Ok(answer) => {
            let status = answer.status();
            let headers = headers::to_agent(answer.headers());
            let mut response =
                Response::new(Body::from_stream(UpstreamBody::new(answer, proxy.shutdown.clone(), started)));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(e) => {
            let failure = UpstreamFailure::from_reqwest(&e);
            tracing::warn!(error = %error_chain(&e), "{failure}");
            failure.into_response()
        }
    }
}
