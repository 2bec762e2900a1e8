//! Who the agent is at an authorization server, in the order the MCP spec prefers: credentials
//! registered ahead of time, a client ID metadata document URL, dynamic registration (RFC 7591);
//! and how it authenticates at the token endpoint (`none`, `client_secret_basic`,
//! `client_secret_post`, `private_key_jwt`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::discovery::AuthorizationServerMetadata;
use crate::error::AgentError;
use crate::key::{CLIENT_ASSERTION_TYPE, ClientKey};

/// A client registered ahead of time (by an administrator, or by `mandate clients add`).
#[derive(Debug, Clone)]
pub struct PreRegistered {
    /// The authorization server it is registered at; `None` = whichever the resource names.
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub key: Option<ClientKey>,
}

/// Where a client identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    PreRegistered,
    MetadataDocument,
    Dynamic,
}

/// The agent's identity at one authorization server.
#[derive(Clone, Serialize, Deserialize)]
pub struct ClientIdentity {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub token_endpoint_auth_method: String,
    pub source: Source,
    /// The redirect URI registered with dynamic registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(skip)]
    pub key: Option<ClientKey>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("token_endpoint_auth_method", &self.token_endpoint_auth_method)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    pub fn is_confidential(&self) -> bool {
        self.token_endpoint_auth_method != "none"
    }

    /// Adds client authentication to a token-endpoint request whose form is `form`.
    pub fn authenticate(
        &self,
        request: reqwest::RequestBuilder,
        form: &mut Vec<(&'static str, String)>,
        issuer: &str,
    ) -> Result<reqwest::RequestBuilder, AgentError> {
        let secret = || {
            self.client_secret.clone().ok_or_else(|| {
                AgentError::Key(format!(
                    "{} needs a client secret and none is configured",
                    self.token_endpoint_auth_method
                ))
            })
        };
        match self.token_endpoint_auth_method.as_str() {
            "client_secret_basic" => {
                // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
                let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let credentials = STANDARD.encode(format!("{}:{}", encode(&self.client_id), encode(&secret()?)));
                return Ok(request.header(reqwest::header::AUTHORIZATION, format!("Basic {credentials}")));
            }
            "client_secret_post" => {
                form.push(("client_id", self.client_id.clone()));
                form.push(("client_secret", secret()?));
            }
            "private_key_jwt" => {
                let key = self.key.as_ref().ok_or_else(|| {
                    AgentError::Key("private_key_jwt needs the client's private key and none is configured".into())
                })?;
                form.push(("client_id", self.client_id.clone()));
                form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE.to_owned()));
                form.push(("client_assertion", key.client_assertion(&self.client_id, issuer)?));
            }
            _ => form.push(("client_id", self.client_id.clone())),
        }
        Ok(request)
    }
}

/// The authentication method for credentials the agent was given, among those the server
/// supports: a key first (`private_key_jwt`), then a secret (`client_secret_basic`, then
/// `client_secret_post`), else none.
pub fn method_for(
    metadata: &AuthorizationServerMetadata,
    has_secret: bool,
    has_key: bool,
) -> Result<&'static str, AgentError> {
    let supports = |m| metadata.supports_auth_method(m);
    let listed = metadata.token_endpoint_auth_methods_supported.is_some();
    let chosen = if has_key && supports("private_key_jwt") {
        "private_key_jwt"
    } else if has_secret && supports("client_secret_basic") {
        "client_secret_basic"
    } else if has_secret && supports("client_secret_post") {
        "client_secret_post"
    } else if has_key && !listed {
        "private_key_jwt"
    } else if !has_secret && !has_key {
        "none"
    } else {
        let mut methods = Vec::new();
        if has_key {
            methods.push("private_key_jwt");
        }
        if has_secret {
            methods.extend(["client_secret_basic", "client_secret_post"]);
        }
        return Err(AgentError::NoCommonAuthMethod { issuer: metadata.issuer.clone(), methods: methods.join(", ") });
    };
    Ok(chosen)
}

impl PreRegistered {
    pub fn applies_to(&self, issuer: &str) -> bool {
        self.issuer.as_deref().is_none_or(|i| i == issuer)
    }

    pub fn identity(&self, metadata: &AuthorizationServerMetadata) -> Result<ClientIdentity, AgentError> {
        let method = method_for(metadata, self.client_secret.is_some(), self.key.is_some())?;
        Ok(ClientIdentity {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            token_endpoint_auth_method: method.to_owned(),
            source: Source::PreRegistered,
            redirect_uri: None,
            key: self.key.clone(),
        })
    }
}

/// The identity of a client whose `client_id` is the URL of its metadata document: public, or
/// `private_key_jwt` when the agent holds the key the document publishes.
pub fn metadata_document_identity(
    url: &Url,
    key: Option<&ClientKey>,
    metadata: &AuthorizationServerMetadata,
) -> ClientIdentity {
    let key = key.filter(|_| metadata.supports_auth_method("private_key_jwt"));
    ClientIdentity {
        client_id: url.to_string(),
        client_secret: None,
        token_endpoint_auth_method: if key.is_some() { "private_key_jwt" } else { "none" }.to_owned(),
        source: Source::MetadataDocument,
        redirect_uri: None,
        key: key.cloned(),
    }
}

/// What the agent tells the server about itself in a dynamic registration.
#[derive(Debug, Clone)]
pub struct RegistrationRequest<'a> {
    pub client_name: &'a str,
    pub redirect_uri: &'a str,
    pub want_refresh_tokens: bool,
    pub client_uri: Option<&'a str>,
    pub software_statement: Option<&'a str>,
}

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: String,
    client_secret: Option<String>,
    token_endpoint_auth_method: Option<String>,
}

/// RFC 7591 dynamic registration as a native application (`application_type: native`, as MCP
/// 2026-07-28 requires), public when the server allows it.
pub async fn register(
    http: &reqwest::Client,
    metadata: &AuthorizationServerMetadata,
    request: &RegistrationRequest<'_>,
) -> Result<ClientIdentity, AgentError> {
    let endpoint = crate::discovery::parse_url(metadata.registration_endpoint.as_deref().unwrap_or_default())?;
    let requested = ["none", "client_secret_basic", "client_secret_post"]
        .into_iter()
        .find(|m| {
            metadata.supports_auth_method(m)
                || (*m == "none" && metadata.token_endpoint_auth_methods_supported.is_none())
        })
        .unwrap_or("none");
    let mut grant_types = vec!["authorization_code"];
    if request.want_refresh_tokens {
        grant_types.push("refresh_token");
    }
    let mut body = serde_json::json!({
        "client_name": request.client_name,
        "redirect_uris": [request.redirect_uri],
        "grant_types": grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": requested,
        "application_type": "native",
    });
    if let Some(uri) = request.client_uri {
        body["client_uri"] = uri.into();
    }
    if let Some(statement) = request.software_statement {
        body["software_statement"] = statement.into();
    }
    let response: RegistrationResponse =
        crate::http::post_oauth(http.post(endpoint.clone()).json(&body), &endpoint, "a client registration").await?;
    let method = match (response.token_endpoint_auth_method, &response.client_secret) {
        (Some(method), _) => method,
        (None, Some(_)) if requested != "none" => requested.to_owned(),
        (None, Some(_)) => "client_secret_basic".to_owned(),
        (None, None) => "none".to_owned(),
    };
    tracing::info!(issuer = %metadata.issuer, client_id = %response.client_id, method = %method, "registered dynamically");
    Ok(ClientIdentity {
        client_id: response.client_id,
        client_secret: response.client_secret,
        token_endpoint_auth_method: method,
        source: Source::Dynamic,
        redirect_uri: Some(request.redirect_uri.to_owned()),
        key: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(methods: Option<&[&str]>) -> AuthorizationServerMetadata {
        AuthorizationServerMetadata {
            issuer: "https://as.example".into(),
            token_endpoint_auth_methods_supported: methods.map(|m| m.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn method_choice_follows_the_server() {
        assert_eq!(method_for(&metadata(Some(&["client_secret_post"])), true, false).unwrap(), "client_secret_post");
        assert_eq!(
            method_for(&metadata(Some(&["client_secret_basic", "client_secret_post"])), true, false).unwrap(),
            "client_secret_basic"
        );
        assert_eq!(method_for(&metadata(None), true, false).unwrap(), "client_secret_basic");
        assert_eq!(method_for(&metadata(Some(&["private_key_jwt"])), false, true).unwrap(), "private_key_jwt");
        assert_eq!(method_for(&metadata(Some(&["none"])), false, false).unwrap(), "none");
        assert!(matches!(
            method_for(&metadata(Some(&["private_key_jwt"])), true, false),
            Err(AgentError::NoCommonAuthMethod { .. })
        ));
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        let identity = ClientIdentity {
            client_id: "a b".into(),
            client_secret: Some("p:ss%".into()),
            token_endpoint_auth_method: "client_secret_basic".into(),
            source: Source::PreRegistered,
            redirect_uri: None,
            key: None,
        };
        let http = reqwest::Client::new();
        let mut form = Vec::new();
        let request =
            identity.authenticate(http.post("https://as.example/token"), &mut form, "https://as.example").unwrap();
        let request = request.build().unwrap();
        let header = request.headers()["authorization"].to_str().unwrap();
        assert_eq!(header, format!("Basic {}", STANDARD.encode("a+b:p%3Ass%25")));
        assert!(form.is_empty(), "basic puts nothing in the body");
        assert!(!format!("{identity:?}").contains("p:ss"), "Debug never shows the secret");
    }
}
