//! Every way getting a token can fail, each with what went wrong and where.

use url::Url;

/// An OAuth error response (RFC 6749 §5.2) from a token, registration or authorization endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: String,
    pub description: Option<String>,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.description {
            Some(description) => write!(f, "{}: {description}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url}: unexpected HTTP {status}: {detail}")]
    UnexpectedStatus { url: String, status: u16, detail: String },
    #[error("{url}: the response is not valid JSON for {what}: {reason}")]
    InvalidJson { url: String, what: &'static str, reason: String },
    #[error("{0} must use https (http is allowed for loopback hosts only)")]
    InsecureUrl(String),
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "the protected resource metadata names resource {advertised}, which does not cover {requested}; refusing to send credentials"
    )]
    ResourceMismatch { requested: String, advertised: String },
    #[error("protected resource metadata at {url} names no authorization server")]
    NoAuthorizationServer { url: String },
    #[error("no authorization server metadata found for {issuer} (tried {tried})")]
    NoAuthorizationServerMetadata { issuer: String, tried: String },
    #[error("authorization server metadata from {url} names issuer {found}, expected {expected} (RFC 8414 §3.3)")]
    IssuerMismatch { url: String, expected: String, found: String },
    #[error(
        "the authorization server {issuer} does not advertise PKCE S256 (code_challenge_methods_supported); refusing to proceed"
    )]
    PkceNotSupported { issuer: String },
    #[error(
        "the authorization server {issuer} offers no way to identify this client: no pre-registered credentials, no client ID metadata document support, no registration endpoint"
    )]
    NoClientIdentity { issuer: String },
    #[error("the authorization server {issuer} supports none of this client's authentication methods ({methods})")]
    NoCommonAuthMethod { issuer: String, methods: String },
    #[error("the authorization server {issuer} does not support the {grant} grant")]
    GrantNotSupported { issuer: String, grant: &'static str },
    #[error("{endpoint} refused the request (HTTP {status}): {error}")]
    Endpoint { endpoint: String, status: u16, error: OAuthError },
    #[error("the authorization was refused: {0}")]
    AuthorizationDenied(OAuthError),
    #[error("the authorization response's state does not match the request; possible CSRF, ignoring it")]
    StateMismatch,
    #[error("the authorization response carries iss {found:?}, expected {expected} (RFC 9207); ignoring it")]
    IssMismatch { expected: String, found: Option<String> },
    #[error("the authorization response carries no code")]
    MissingCode,
    #[error("no authorization response arrived at {redirect_uri} within {seconds} s")]
    CallbackTimeout { redirect_uri: String, seconds: u64 },
    #[error("the loopback redirect listener failed: {0}")]
    Listener(std::io::Error),
    #[error("could not open a browser: {0}")]
    Browser(String),
    #[error("the token response is unusable: {0}")]
    InvalidTokenResponse(String),
    #[error("the server still refuses after {attempts} authorizations for more scope ({scope}); giving up")]
    StepUpLimit { attempts: u32, scope: String },
    #[error("client key: {0}")]
    Key(String),
    #[error("token cache {path}: {reason}")]
    Store { path: String, reason: String },
    #[error(
        "no usable token for {resource} from {issuer}, and signing in needs a person: run `mandate agent login {resource}` first"
    )]
    LoginRequired { issuer: String, resource: String },
    #[error("the request has a streaming body, which cannot be sent again after an authorization")]
    RequestNotReplayable,
    #[error("token: {0}")]
    Token(String),
}

impl AgentError {
    pub(crate) fn http(url: &Url, source: reqwest::Error) -> Self {
        Self::Http { url: url.to_string(), source: source.without_url() }
    }

    /// The OAuth error code, when the failure is an OAuth error response.
    pub fn oauth_error(&self) -> Option<&OAuthError> {
        match self {
            Self::Endpoint { error, .. } | Self::AuthorizationDenied(error) => Some(error),
            _ => None,
        }
    }
}
