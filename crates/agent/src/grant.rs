//! Token-endpoint grants, one function each: authorization code, refresh, client credentials,
//! token exchange (RFC 8693) and the JWT bearer grant (RFC 7523 §2.1, used for ID-JAGs). Every
//! request carries `resource` where one is known, and client authentication.

use serde::{Deserialize, Serialize};

use crate::client::ClientIdentity;
use crate::discovery::AuthorizationServerMetadata;
use crate::error::AgentError;

pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const TOKEN_TYPE_ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";

/// Tokens for one resource, as cached.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The scope granted (or, when the server did not say, the scope requested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("token_type", &self.token_type)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenSet {
    /// Whether the access token is still good for at least `margin` seconds.
    pub fn fresh_for(&self, now: u64, margin: u64) -> bool {
        self.expires_at.is_none_or(|exp| exp > now + margin)
    }

    pub fn scopes(&self) -> Vec<String> {
        self.scope.as_deref().map(crate::challenge::split_scopes).unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    scope: Option<String>,
    issued_token_type: Option<String>,
}

/// Sends `form` with client authentication to the token endpoint.
async fn request(
    http: &reqwest::Client,
    metadata: &AuthorizationServerMetadata,
    client: &ClientIdentity,
    mut form: Vec<(&'static str, String)>,
    requested_scope: Option<&str>,
) -> Result<TokenSet, AgentError> {
    let endpoint = metadata.token_endpoint()?;
    let builder = client.authenticate(http.post(endpoint.clone()), &mut form, &metadata.issuer)?;
    let response: TokenResponse = crate::http::post_oauth(builder.form(&form), &endpoint, "a token response").await?;
    let is_id_jag = response.issued_token_type.as_deref() == Some(TOKEN_TYPE_ID_JAG);
    let usable = response.token_type.eq_ignore_ascii_case("bearer") || (is_id_jag && response.token_type == "N_A");
    if !usable {
        return Err(AgentError::InvalidTokenResponse(format!(
            "token_type {:?}; this agent uses Bearer tokens",
            response.token_type
        )));
    }
    if response.access_token.is_empty() {
        return Err(AgentError::InvalidTokenResponse("empty access_token".into()));
    }
    Ok(TokenSet {
        access_token: response.access_token,
        token_type: response.token_type,
        refresh_token: response.refresh_token,
        expires_at: response.expires_in.map(|s| crate::now_unix() + s),
        scope: response.scope.or_else(|| requested_scope.map(str::to_owned)),
        issued_token_type: response.issued_token_type,
    })
}

fn push_opt(form: &mut Vec<(&'static str, String)>, name: &'static str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        form.push((name, v.to_owned()));
    }
}

/// An authorization code with what redeeming it needs.
#[derive(Debug)]
pub struct Code<'a> {
    pub code: &'a str,
    pub code_verifier: &'a str,
    pub redirect_uri: &'a str,
}

/// Redeems an authorization code (RFC 6749 §4.1.3 with PKCE and RFC 8707 `resource`).
pub async fn authorization_code(
    http: &reqwest::Client,
    metadata: &AuthorizationServerMetadata,
    client: &ClientIdentity,
    code: &Code<'_>,
    resource: &str,
    requested_scope: Option<&str>,
) -> Result<TokenSet, AgentError> {
    let form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.code.to_owned()),
        ("code_verifier", code.code_verifier.to_owned()),
        ("redirect_uri", code.redirect_uri.to_owned()),
        ("resource", resource.to_owned()),
    ];
    request(http, metadata, client, form, requested_scope).await
}

/// Refreshes (RFC 6749 §6), with `resource` again; a rotated refresh token replaces the old one.
pub async fn refresh(
    http: &reqwest::Client,
    metadata: &AuthorizationServerMetadata,
    client: &ClientIdentity,
    current: &TokenSet,
    resource: &str,
) -> Result<TokenSet, AgentError> {
    let refresh_token =
        current.refresh_token.clone().ok_or_else(|| AgentError::Token("no refresh token to refresh with".into()))?;
    let form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.clone()),
        ("resource", resource.to_owned()),
    ];
    let mut fresh = request(http, metadata, client, form, current.scope.as_deref()).await?;
    fresh.refresh_token = fresh.refresh_token.or(Some(refresh_token));
    Ok(fresh)
}

/// Client credentials (RFC 6749 §4.4; the MCP client-credentials extension).
pub async fn client_credentials(
    http: &reqwest::Client,
    metadata: &AuthorizationServerMetadata,
    client: &ClientIdentity,
    resource: &str,
    scope: Option<&str>,
) -> Result<TokenSet, AgentError> {
    let mut form = vec![("grant_type", "client_credentials".to_owned()), ("resource", resource.to_owned())];
    push_opt(&mut form, "scope", scope);
    request(http, metadata, client, form, scope).await
}

/// An RFC 8693 token exchange request.
#[derive(Debug, Clone, Default)]
pub struct Exchange<'a> {
    pub subject_token: &'a str,
    pub subject_token_type: &'a str,
    pub actor_token: Option<&'a str>,
    pub actor_token_type: Option<&'a str>,
    pub requested_token_type: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub scope: Option<&'a str>,
}

/// Token exchange (RFC 8693 §2.1).
pub async fn token_exchange(
    http: &reqwest::Client,
    metadata: &AuthorizationServerMetadata,
    client: &ClientIdentity,
    exchange: &Exchange<'_>,
) -> Result<TokenSet, AgentError> {
    let mut form = vec![
        ("grant_type", GRANT_TOKEN_EXCHANGE.to_owned()),
        ("subject_token", exchange.subject_token.to_owned()),
        ("subject_token_type", exchange.subject_token_type.to_owned()),
    ];
    push_opt(&mut form, "actor_token", exchange.actor_token);
    push_opt(&mut form, "actor_token_type", exchange.actor_token_type);
    push_opt(&mut form, "requested_token_type", exchange.requested_token_type);
    push_opt(&mut form, "audience", exchange.audience);
    push_opt(&mut form, "resource", exchange.resource);
    push_opt(&mut form, "scope", exchange.scope);
    let tokens = request(http, metadata, client, form, exchange.scope).await?;
    if let Some(requested) = exchange.requested_token_type
        && tokens.issued_token_type.as_deref() != Some(requested)
    {
        return Err(AgentError::InvalidTokenResponse(format!(
            "asked for {requested}, the server issued {:?}",
            tokens.issued_token_type
        )));
    }
    Ok(tokens)
}

/// The JWT bearer grant (RFC 7523 §2.1): an assertion (such as an ID-JAG) for an access token.
pub async fn jwt_bearer(
    http: &reqwest::Client,
    metadata: &AuthorizationServerMetadata,
    client: &ClientIdentity,
    assertion: &str,
    resource: &str,
    scope: Option<&str>,
) -> Result<TokenSet, AgentError> {
    let mut form = vec![
        ("grant_type", GRANT_JWT_BEARER.to_owned()),
        ("assertion", assertion.to_owned()),
        ("resource", resource.to_owned()),
    ];
    push_opt(&mut form, "scope", scope);
    request(http, metadata, client, form, scope).await
}
