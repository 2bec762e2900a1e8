//! Grant handlers, one per `grant_type`, behind one signature; the registry dispatches to them.
//! Adding a grant is a new module and one line in `GrantRegistry::standard`.

mod authorization_code;
mod chaining;
mod client_credentials;
mod delegated;
mod jwt_bearer;
pub mod presented;
mod refresh_token;
mod token_exchange;

use std::collections::HashMap;

use async_trait::async_trait;
use mandate_core::attestation::AttestationClaim;
use mandate_core::{Actor, Client, GrantType, OAuthError, ResourceUri, ScopeSet, UnixTime};

use crate::client_auth::AuthenticatedClient;
use crate::form::OAuthForm;
use crate::minting::MintedAccessToken;
use crate::state::AppState;

/// What a grant issued: the token response and what the audit log needs.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: ScopeSet,
    pub jti: String,
    pub subject: String,
    pub audience: ResourceUri,
    /// The token or grant this one derives from (RFC 8693 chains, refresh families).
    pub parent_jti: Option<String>,
    /// Rotated with every use; only when `offline_access` was granted.
    pub refresh_token: Option<String>,
    /// OpenID Connect: when `openid` was granted.
    pub id_token: Option<String>,
    /// What the audit row adds: for a pushed client, its unverified name.
    pub audit_detail: Option<String>,
    /// The access token's `attestation` claim, if any.
    pub attestation: Option<AttestationClaim>,
    /// RFC 8693: the actor token of an exchange.
    pub actor_jti: Option<String>,
    /// The grant of a code or refresh.
    pub grant_id: Option<String>,
    /// The `act` claim of a delegated token.
    pub act: Option<Actor>,
    /// RFC 8693 `issued_token_type`: an access token, or an assertion for another server.
    pub issued_token_type: &'static str,
    /// `Bearer` for access tokens; `N_A` for assertions (RFC 8693 §2.2.1).
    pub token_type: &'static str,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
}

/// RFC 8693 §3: the token type of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

impl Issued {
    /// A freshly minted access token for `audience` with `scope`; the grant adds the rest.
    pub fn access_token(minted: MintedAccessToken, scope: ScopeSet, audience: ResourceUri) -> Self {
        let claims = minted.claims;
        Self {
            access_token: minted.token,
            expires_in: claims.exp - claims.iat,
            scope,
            jti: claims.jti,
            subject: claims.sub,
            audience,
            parent_jti: None,
            refresh_token: None,
            id_token: None,
            audit_detail: None,
            attestation: claims.attestation,
            actor_jti: None,
            grant_id: None,
            act: claims.act,
            issued_token_type: ACCESS_TOKEN_TYPE,
            token_type: "Bearer",
            issued_at: claims.iat,
            expires_at: claims.exp,
        }
    }
}

#[async_trait]
pub trait GrantHandler: Send + Sync {
    async fn handle(
        &self,
        state: &AppState,
        client: &AuthenticatedClient,
        form: &OAuthForm,
    ) -> Result<Issued, OAuthError>;
}

pub struct GrantRegistry {
    handlers: HashMap<&'static str, (GrantType, Box<dyn GrantHandler>)>,
}

impl GrantRegistry {
    /// Every grant this server implements.
    pub fn standard() -> Self {
        let mut handlers: HashMap<&'static str, (GrantType, Box<dyn GrantHandler>)> = HashMap::new();
        handlers.insert(
            GrantType::ClientCredentials.as_str(),
            (GrantType::ClientCredentials, Box::new(client_credentials::ClientCredentials)),
        );
        handlers.insert(
            GrantType::AuthorizationCode.as_str(),
            (GrantType::AuthorizationCode, Box::new(authorization_code::AuthorizationCodeGrant)),
        );
        handlers.insert(
            GrantType::RefreshToken.as_str(),
            (GrantType::RefreshToken, Box::new(refresh_token::RefreshTokenGrant)),
        );
        handlers.insert(
            GrantType::TokenExchange.as_str(),
            (GrantType::TokenExchange, Box::new(token_exchange::TokenExchange)),
        );
        handlers.insert(GrantType::JwtBearer.as_str(), (GrantType::JwtBearer, Box::new(jwt_bearer::JwtBearer)));
        Self { handlers }
    }

    pub fn get(&self, grant_type: &str) -> Option<(GrantType, &dyn GrantHandler)> {
        self.handlers.get(grant_type).map(|(g, h)| (*g, h.as_ref()))
    }

    /// The `grant_types_supported` of the discovery document.
    pub fn supported(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.handlers.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

/// RFC 8707: exactly one registered resource the client may use; it becomes `aud`.
pub async fn resolve_resource(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
) -> Result<mandate_core::Resource, OAuthError> {
    match form.all("resource") {
        [] => Err(OAuthError::invalid_target(
            "the resource parameter is required (RFC 8707): name the protected resource the token is for",
        )),
        [one] => lookup_resource(state, client, one).await,
        _ => Err(OAuthError::invalid_target("send one resource per token request; each token has a single audience")),
    }
}

/// RFC 8693 §2.1: the target of an exchange, named by `resource` or by `audience` (a registered
/// resource's URI); both may be sent only if they agree.
pub async fn resolve_target(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
) -> Result<mandate_core::Resource, OAuthError> {
    let audiences = form.all("audience");
    match (form.all("resource"), audiences) {
        ([], []) => {
            Err(OAuthError::invalid_target("name the target with resource (its URI) or audience (RFC 8693 §2.1)"))
        }
        (resources, []) if !resources.is_empty() => resolve_resource(state, client, form).await,
        ([], [one]) => lookup_resource(state, client, one).await,
        ([resource], [audience]) if resource == audience => lookup_resource(state, client, resource).await,
        _ => Err(OAuthError::invalid_target("name one target: one resource or one audience, and the same if both")),
    }
}

pub(super) async fn lookup_resource(
    state: &AppState,
    client: &Client,
    raw: &str,
) -> Result<mandate_core::Resource, OAuthError> {
    let uri = ResourceUri::parse(raw).map_err(|e| OAuthError::invalid_target(format!("resource {e}")))?;
    let resource = state
        .lookups
        .resource(state, &uri)
        .await?
        .ok_or_else(|| OAuthError::invalid_target(format!("{uri} is not a registered resource")))?;
    if !client.allows_resource(&uri) {
        return Err(OAuthError::invalid_target(format!("this client may not obtain tokens for {uri}")));
    }
    Ok(resource)
}

/// RFC 6749 §3.3: the requested scopes, all of which the client and the resource must allow; with
/// none requested, everything the client may have on the resource.
pub fn grant_scope(
    client: &Client,
    resource: &mandate_core::Resource,
    form: &OAuthForm,
) -> Result<ScopeSet, OAuthError> {
    let allowed = client.scopes.intersection(&resource.scopes);
    let granted = match form.get("scope") {
        Some(raw) => {
            let requested = ScopeSet::parse(raw).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            let refused = requested.difference(&allowed);
            if !refused.is_empty() {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {refused} is not available to this client on {}",
                    resource.uri
                )));
            }
            requested
        }
        None => allowed,
    };
    if granted.is_empty() {
        return Err(OAuthError::invalid_scope(format!("this client has no scopes on {}", resource.uri)));
    }
    Ok(granted)
}
