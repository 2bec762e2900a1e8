//! The agent's HTTP: one reqwest client that follows no redirects, https required except on
//! loopback, bounded JSON bodies, and OAuth error bodies turned into [`OAuthError`]s.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{AgentError, OAuthError};

/// Largest metadata or token response read.
const MAX_BODY: usize = 256 * 1024;

/// Builds the client the agent uses for discovery, registration and token requests.
pub fn client(extra_root_certificates: &[Vec<u8>]) -> Result<reqwest::Client, AgentError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("mandate-agent/", env!("CARGO_PKG_VERSION")));
    if !extra_root_certificates.is_empty() {
        let roots = extra_root_certificates
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AgentError::Key(format!("extra root certificate: {e}")))?;
        builder = builder.tls_certs_merge(roots);
    }
    builder.build().map_err(|e| AgentError::Browser(format!("HTTP client: {e}")))
}

/// https, or http to a loopback host (local development, tests, the loopback redirect).
pub fn ensure_secure(url: &Url) -> Result<(), AgentError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => Err(AgentError::InsecureUrl(url.to_string())),
    }
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// What a metadata GET found.
pub enum Fetched<T> {
    Found(T),
    /// 4xx: nothing at this location; the caller tries the next one.
    Absent(u16),
}

/// GETs JSON metadata. 2xx parses into `T`; 4xx is [`Fetched::Absent`]; anything else is an error.
pub async fn get_metadata<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &Url,
    what: &'static str,
) -> Result<Fetched<T>, AgentError> {
    ensure_secure(url)?;
    let response =
        http.get(url.clone()).header(ACCEPT, "application/json").send().await.map_err(|e| AgentError::http(url, e))?;
    let status = response.status();
    if status.is_client_error() {
        return Ok(Fetched::Absent(status.as_u16()));
    }
    if !status.is_success() {
        return Err(AgentError::UnexpectedStatus {
            url: url.to_string(),
            status: status.as_u16(),
            detail: format!("expected {what}"),
        });
    }
    let body = read_body(url, response).await?;
    serde_json::from_slice(&body).map(Fetched::Found).map_err(|e| AgentError::InvalidJson {
        url: url.to_string(),
        what,
        reason: e.to_string(),
    })
}

/// Sends a prepared POST to an OAuth endpoint; 2xx parses into `T`, an error body becomes
/// [`AgentError::Endpoint`] with the RFC 6749 error code.
pub async fn post_oauth<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    url: &Url,
    what: &'static str,
) -> Result<T, AgentError> {
    ensure_secure(url)?;
    let response = request.header(ACCEPT, "application/json").send().await.map_err(|e| AgentError::http(url, e))?;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    let body = read_body(url, response).await?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| AgentError::InvalidJson {
            url: url.to_string(),
            what,
            reason: e.to_string(),
        });
    }
    let error = is_json.then(|| serde_json::from_slice::<ErrorBody>(&body).ok()).flatten();
    match error {
        Some(ErrorBody { error: Some(error), error_description }) => Err(AgentError::Endpoint {
            endpoint: url.to_string(),
            status: status.as_u16(),
            error: OAuthError { error, description: error_description },
        }),
        _ => Err(AgentError::UnexpectedStatus {
            url: url.to_string(),
            status: status.as_u16(),
            detail: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        }),
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

async fn read_body(url: &Url, mut response: reqwest::Response) -> Result<Vec<u8>, AgentError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| AgentError::http(url, e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(AgentError::UnexpectedStatus {
                url: url.to_string(),
                status: response.status().as_u16(),
                detail: format!("response body over {MAX_BODY} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_everywhere_but_loopback() {
        for ok in ["https://as.example/token", "http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]:9/x"] {
            assert!(ensure_secure(&Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for bad in ["http://as.example/token", "http://10.0.0.1/x", "ftp://localhost/x"] {
            assert!(matches!(ensure_secure(&Url::parse(bad).unwrap()), Err(AgentError::InsecureUrl(_))), "{bad}");
        }
    }
}
