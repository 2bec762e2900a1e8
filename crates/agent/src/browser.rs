//! How the person reaches the authorization URL: the system browser, a URL printed for them to
//! open anywhere, or (for authorization servers that answer without a person, such as test
//! servers and pre-approved clients) an HTTP client that follows the redirects itself.

use async_trait::async_trait;
use url::Url;

use crate::error::AgentError;

/// Shows the person the authorization URL. The response arrives at the loopback listener.
#[async_trait]
pub trait Browser: Send + Sync {
    async fn open(&self, authorization_url: &Url) -> Result<(), AgentError>;
}

/// Opens the system browser (`xdg-open`, `open` or `start`), and prints the URL too, in case the
/// browser is on another screen or does not start.
#[derive(Debug, Default, Clone)]
pub struct SystemBrowser;

#[async_trait]
impl Browser for SystemBrowser {
    async fn open(&self, authorization_url: &Url) -> Result<(), AgentError> {
        eprintln!("Opening your browser to authorize. If it does not open, visit:\n\n  {authorization_url}\n");
        let (program, args): (&str, Vec<&str>) = if cfg!(target_os = "macos") {
            ("open", vec![])
        } else if cfg!(windows) {
            ("cmd", vec!["/C", "start", ""])
        } else {
            ("xdg-open", vec![])
        };
        let spawned = std::process::Command::new(program)
            .args(args)
            .arg(authorization_url.as_str())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Err(e) = spawned {
            tracing::info!(error = %e, "{program} is not available; waiting for the URL to be opened by hand");
        }
        Ok(())
    }
}

/// Prints the URL on stderr and waits: for machines without a browser (`--no-browser`).
#[derive(Debug, Default, Clone)]
pub struct PrintUrl;

#[async_trait]
impl Browser for PrintUrl {
    async fn open(&self, authorization_url: &Url) -> Result<(), AgentError> {
        eprintln!("Open this URL in a browser to authorize:\n\n  {authorization_url}\n");
        Ok(())
    }
}

/// Follows the authorization server's redirects with plain HTTP GETs until the loopback redirect
/// is reached. Only useful where no person needs to act: test servers, and authorization servers
/// that approve this client without a page.
#[derive(Debug, Clone)]
pub struct FollowRedirects {
    http: reqwest::Client,
}

impl FollowRedirects {
    pub fn new() -> Result<Self, AgentError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(10))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| AgentError::Browser(e.to_string()))?;
        Ok(Self { http })
    }
}

#[async_trait]
impl Browser for FollowRedirects {
    async fn open(&self, authorization_url: &Url) -> Result<(), AgentError> {
        let response =
            self.http.get(authorization_url.clone()).send().await.map_err(|e| AgentError::Browser(e.to_string()))?;
        if !response.status().is_success() || !crate::http::is_loopback(response.url()) {
            return Err(AgentError::Browser(format!(
                "the authorization server answered HTTP {} at {} instead of redirecting back: a person has to act there, so use a real browser",
                response.status(),
                response.url().origin().ascii_serialization()
            )));
        }
        Ok(())
    }
}
