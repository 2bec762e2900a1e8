//! One structured line per request: method, path, status, who (the token's client and subject,
//! when one was verified) and how long until the answer started. Never a token, a query string
//! (it is the agent's) or the upstream's credential.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use mandate_resource::VerifiedToken;

/// Who made a request, carried from the proxy to the log line in the response's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    client_id: String,
    subject: String,
}

impl From<&VerifiedToken> for Caller {
    fn from(token: &VerifiedToken) -> Self {
        Self { client_id: token.client_id.clone(), subject: token.subject.clone() }
    }
}

pub(crate) async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let caller = response.extensions().get::<Caller>();
    tracing::info!(
        method = %method,
        // Escaped (Debug): a token's claims come from the issuer's partners too, and a newline in
        // one must not forge a line of a text log.
        path = ?path,
        status = response.status().as_u16(),
        client_id = caller.map(|c| tracing::field::debug(c.client_id.as_str())),
        subject = caller.map(|c| tracing::field::debug(c.subject.as_str())),
        duration_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}
