//! The loopback redirect listener (RFC 8252 §7.3): `http://127.0.0.1:<port>/callback` receives
//! the authorization response once, answers the browser with a short page, and stops.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::extract::Query;
use axum::response::Html;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use url::Url;

use crate::error::AgentError;

/// A bound listener waiting for one authorization response.
pub struct Loopback {
    redirect_uri: Url,
    responses: mpsc::Receiver<HashMap<String, String>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.server.abort();
    }
}

const PAGE: &str = "<!doctype html><meta charset=utf-8><title>mandate</title>\
<meta name=referrer content=no-referrer>\
<p>The authorization response reached the agent. You can close this window.</p>";

impl Loopback {
    /// Binds `127.0.0.1:<port>` (0 = any free port) and serves `path`.
    pub async fn bind(port: u16, path: &str) -> Result<Self, AgentError> {
        let listener =
            TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await.map_err(AgentError::Listener)?;
        let port = listener.local_addr().map_err(AgentError::Listener)?.port();
        let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        let redirect_uri = Url::parse(&format!("http://127.0.0.1:{port}{path}"))
            .map_err(|e| AgentError::InvalidUrl { url: path.clone(), reason: e.to_string() })?;
        let (tx, responses) = mpsc::channel(1);
        let app = axum::Router::new().route(
            &path,
            axum::routing::get(move |Query(params): Query<HashMap<String, String>>| {
                let tx = tx.clone();
                async move {
                    // Only the first response counts; later ones (reloads) are answered and dropped.
                    let _ = tx.try_send(params);
                    (
                        [
                            ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
                            ("cache-control", "no-store"),
                        ],
                        Html(PAGE),
                    )
                }
            }),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { redirect_uri, responses, server })
    }

    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Waits for the authorization response's query parameters.
    pub async fn wait(&mut self, timeout: Duration) -> Result<HashMap<String, String>, AgentError> {
        match tokio::time::timeout(timeout, self.responses.recv()).await {
            Ok(Some(params)) => Ok(params),
            _ => Err(AgentError::CallbackTimeout {
                redirect_uri: self.redirect_uri.to_string(),
                seconds: timeout.as_secs(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_response_wins_and_the_page_forbids_framing() {
        let mut loopback = Loopback::bind(0, "/callback").await.unwrap();
        let uri = loopback.redirect_uri().clone();
        assert_eq!(uri.host_str(), Some("127.0.0.1"));
        let http = reqwest::Client::new();
        let first = http.get(format!("{uri}?code=abc&state=s1")).send().await.unwrap();
        assert_eq!(first.status(), 200);
        assert!(first.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        http.get(format!("{uri}?code=second&state=s2")).send().await.unwrap();
        let params = loopback.wait(Duration::from_secs(5)).await.unwrap();
        assert_eq!(params["code"], "abc");
        assert_eq!(params["state"], "s1");
    }

    #[tokio::test]
    async fn times_out_with_the_redirect_uri_named() {
        let mut loopback = Loopback::bind(0, "cb").await.unwrap();
        let err = loopback.wait(Duration::from_millis(50)).await.unwrap_err();
        assert!(err.to_string().contains("/cb"), "{err}");
    }
}
