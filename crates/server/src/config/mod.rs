//! `mandate serve` configuration: the TOML file of DESIGN.md with `MANDATE_*` environment
//! overrides (nested keys with `__`, e.g. `MANDATE_TOKENS__ACCESS_TOKEN_TTL`), checked into
//! `Settings`. Unknown keys, bad values and contradictions are refused with the key named.

pub mod custody;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use mandate_core::client::ApplicationType;
use mandate_core::jose::SigningAlgorithm;
use mandate_core::password::check_password_hash;
use mandate_core::software_statement::Publisher;
use mandate_core::{GrantType, ResourceUri, ScopeSet, SecretDigest, TokenEndpointAuthMethod, oidc};

pub use custody::CustodySettings;
use serde::{Deserialize, Serialize};

use crate::issuer::Issuer;

/// The file as written, before checking.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub issuer: Option<String>,
    pub listen: String,
    pub database: String,
    /// `text` (default) or `json` log lines.
    pub log_format: String,
    pub server: RawServer,
    pub tokens: RawTokens,
    pub keys: RawKeys,
    pub login: RawLogin,
    pub registration: RawRegistration,
    pub users: Vec<RawUser>,
    pub resources: Vec<RawResource>,
    pub clients: Vec<RawClient>,
    /// Client Attesters whose attestations authenticate clients (`attest_jwt_client_auth`).
    pub attesters: Vec<RawAttester>,
    pub attestation: RawAttestation,
    /// RFC 8693 token exchange policy.
    pub token_exchange: custody::RawTokenExchange,
    /// Other servers whose JWTs mandate accepts (subject tokens, ID-JAGs, JWT grants).
    pub trusted_issuers: Vec<custody::RawTrustedIssuer>,
    /// Servers mandate issues ID-JAGs and JWT authorization grants for.
    pub chaining_targets: Vec<custody::RawChainingTarget>,
    /// Who may use the admin API.
    pub admin: RawAdmin,
    /// How long audit and lineage rows are kept.
    pub audit: RawAudit,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// Reverse proxies (CIDR ranges) whose `Forwarded` / `X-Forwarded-For` headers name the
    /// client; empty: those headers are ignored and the connection's peer is the client.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawAudit {
    /// Audit rows older than this, and lineage rows of tokens expired longer ago, are deleted
    /// (hourly). Empty: kept forever.
    pub retention: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    /// Confidential clients allowed to call /admin/… (lineage, the kill switch).
    pub clients: Vec<String>,
}

/// A trusted Client Attester (draft-ietf-oauth-attestation-based-client-auth): the backend that
/// vouches for agent instances and their runtime.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawAttester {
    /// Shown in audit events and in the `attestation` claim of tokens.
    pub name: String,
    /// When set, an attestation's `iss` must equal it.
    pub issuer: Option<String>,
    /// The attester's public keys as a JWK Set, inline.
    pub jwks: Option<serde_json::Value>,
    /// Where the attester publishes its JWK Set (fetched through the SSRF-safe fetcher).
    pub jwks_uri: Option<String>,
}

/// How attestations are checked.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawAttestation {
    /// Whether every attestation PoP must carry a challenge from this server.
    pub require_challenge: bool,
    /// Refuse attestations issued (`iat`) longer ago than this with `use_fresh_attestation`;
    /// unset: an attestation is good until its `exp`.
    pub max_age: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTokens {
    pub access_token_ttl: String,
    pub refresh_token_ttl: String,
    pub id_token_ttl: String,
    /// How long a rotated refresh token presented again by its client still gets a successor
    /// (lost responses, concurrent refreshes) before reuse counts as theft.
    pub refresh_reuse_grace: String,
}

impl Default for RawTokens {
    fn default() -> Self {
        Self {
            access_token_ttl: "5m".into(),
            refresh_token_ttl: "30d".into(),
            id_token_ttl: "5m".into(),
            refresh_reuse_grace: "30s".into(),
        }
    }
}

/// Sign-in: how long a browser session lasts, and when failed attempts lock out.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLogin {
    pub session_lifetime: String,
    pub max_failures_per_account: u32,
    pub max_failures_per_address: u32,
    pub failure_window: String,
}

impl Default for RawLogin {
    fn default() -> Self {
        Self {
            session_lifetime: "12h".into(),
            max_failures_per_account: 5,
            max_failures_per_address: 20,
            failure_window: "15m".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawKeys {
    /// Algorithm of newly generated signing keys: ES256 (default), EdDSA or RS256.
    pub algorithm: String,
    /// How often each instance reloads the published keys from the database.
    pub refresh_interval: String,
}

impl Default for RawKeys {
    fn default() -> Self {
        Self { algorithm: "ES256".into(), refresh_interval: "30s".into() }
    }
}

/// How clients that are not in the config come to exist: client ID metadata documents (URL
/// client ids), dynamic registration, and pushed client registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRegistration {
    pub dynamic: bool,
    pub client_id_metadata_documents: bool,
    pub allow_private_networks: bool,
    /// Host patterns whose URL client ids are accepted: `agent.example`, `*.example.com`, `*`.
    pub client_metadata_allowed_hosts: Vec<String>,
    /// Host patterns refused even when allowed above.
    pub client_metadata_denied_hosts: Vec<String>,
    /// Whether a URL client's redirect URIs must share the origin of its client_id.
    pub client_metadata_same_origin_redirects: bool,
    /// The scopes URL clients may get; unset: every resource scope and the OpenID scopes.
    pub client_metadata_scopes: Option<Vec<String>>,
    /// The resources URL clients may get tokens for; unset: every registered resource.
    pub client_metadata_resources: Option<Vec<String>>,
    /// Dynamic registration needs this bearer token when set (its `sha256:` digest, from
    /// `mandate secret generate`); unset: open registration.
    pub initial_access_token_hash: Option<String>,
    /// Registrations accepted per client address per hour.
    pub max_registrations_per_address: u32,
    /// Self-registered clients unused for this long are deleted.
    pub unused_registration_expiry: String,
    /// Pushed client registration (draft-richer-oauth-pushed-client-registration-00, experimental):
    /// ephemeral public clients describe themselves in their pushed authorization request.
    pub pushed: bool,
    /// The scopes pushed clients may get; unset: those of URL clients (`client_metadata_scopes`).
    pub pushed_scopes: Option<Vec<String>>,
    /// The resources pushed clients may get tokens for; unset: those of URL clients.
    pub pushed_resources: Option<Vec<String>>,
    /// Dynamic registration needs a software statement signed by one of `software_publishers`.
    pub require_software_statement: bool,
    /// Publishers whose software statements (RFC 7591 §2.3) are trusted: a registration carrying
    /// one gets the metadata it signs and a verified name.
    pub software_publishers: Vec<RawSoftwarePublisher>,
    /// Grants with no person behind them (`client_credentials`, the JWT bearer grant) that clients
    /// which describe themselves (dynamic registration, metadata documents) may use; default none.
    pub unattended_grant_types: Vec<String>,
    /// The resources those grants may reach; required with `unattended_grant_types`.
    pub unattended_resources: Vec<String>,
    /// The scopes those grants may carry; required with `unattended_grant_types`.
    pub unattended_scopes: Vec<String>,
}

/// `[[registration.software_publishers]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSoftwarePublisher {
    /// The `iss` of its statements.
    pub issuer: String,
    /// Shown on the consent page: "verified by …".
    pub name: String,
    /// Its public keys: a JWK Set as a table (`{ keys = [ … ] }`) or as JSON text.
    pub jwks: serde_json::Value,
}

impl Default for RawRegistration {
    fn default() -> Self {
        Self {
            dynamic: false,
            client_id_metadata_documents: true,
            allow_private_networks: false,
            client_metadata_allowed_hosts: vec!["*".into()],
            client_metadata_denied_hosts: Vec::new(),
            client_metadata_same_origin_redirects: false,
            client_metadata_scopes: None,
            client_metadata_resources: None,
            initial_access_token_hash: None,
            max_registrations_per_address: 20,
            unused_registration_expiry: "30d".into(),
            require_software_statement: false,
            software_publishers: Vec::new(),
            pushed: false,
            pushed_scopes: None,
            pushed_resources: None,
            unattended_grant_types: Vec::new(),
            unattended_resources: Vec::new(),
            unattended_scopes: Vec::new(),
        }
    }
}

/// Where a trusted attester's keys come from.
#[derive(Debug, Clone)]
pub enum AttesterKeys {
    Inline(jsonwebtoken::jwk::JwkSet),
    Uri(String),
}

#[derive(Debug, Clone)]
pub struct Attester {
    pub name: String,
    pub issuer: Option<String>,
    pub keys: AttesterKeys,
}

/// The checked attestation settings.
#[derive(Debug, Clone, Default)]
pub struct AttestationSettings {
    pub attesters: Vec<Attester>,
    pub require_challenge: bool,
    pub max_age: Option<Duration>,
}

impl AttestationSettings {
    /// Attestation-based client authentication is offered once some attester is trusted.
    pub fn enabled(&self) -> bool {
        !self.attesters.is_empty()
    }
}

/// The checked registration policy.
#[derive(Debug, Clone)]
pub struct RegistrationSettings {
    /// RFC 7591 registration at `/register`.
    pub dynamic: bool,
    pub initial_access_token: Option<SecretDigest>,
    pub max_registrations_per_address: u32,
    pub unused_registration_expiry: Duration,
    pub metadata_documents: bool,
    pub metadata_allowed_hosts: Vec<String>,
    pub metadata_denied_hosts: Vec<String>,
    pub metadata_same_origin_redirects: bool,
    pub metadata_scopes: Option<ScopeSet>,
    pub metadata_resources: Option<Vec<ResourceUri>>,
    pub require_software_statement: bool,
    pub software_publishers: Vec<Publisher>,
    /// Pushed client registration with the static client id (experimental, off by default).
    pub pushed: bool,
    /// The most a pushed client may get: these scopes (`None`: every resource scope and the
    /// OpenID scopes but `offline_access`) ...
    pub pushed_scopes: Option<ScopeSet>,
    /// ... on these resources (`None`: every registered resource).
    pub pushed_resources: Option<Vec<ResourceUri>>,
    /// What self-registered and metadata-document clients may get with no person behind the
    /// grant; nothing unless configured.
    pub unattended: UnattendedPolicy,
}

/// `registration.unattended_*`: the grants without a person (`client_credentials`, JWT bearer)
/// that clients nobody configured may use, and on which resources and scopes.
#[derive(Debug, Clone, Default)]
pub struct UnattendedPolicy {
    pub grant_types: Vec<GrantType>,
    pub resources: Vec<ResourceUri>,
    pub scopes: ScopeSet,
}

impl UnattendedPolicy {
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

impl RegistrationSettings {
    /// Whether URL clients on `host` may register: allowed by a pattern and denied by none.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let matches = |pattern: &String| match pattern.strip_prefix("*.") {
            _ if pattern == "*" => true,
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => host == *pattern,
        };
        self.metadata_allowed_hosts.iter().any(matches) && !self.metadata_denied_hosts.iter().any(matches)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawUser {
    pub username: String,
    pub password: Option<String>,
    pub password_hash: Option<String>,
    pub email: Option<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawResource {
    pub uri: String,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    /// Plain words for each scope, shown on the consent page.
    pub scope_descriptions: BTreeMap<String, String>,
    /// The client this resource server acts as: it may exchange tokens issued for the resource
    /// (RFC 8693) to call what lies behind it.
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawClient {
    pub client_id: String,
    pub client_name: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_hash: Option<String>,
    /// Defaults to `["client_credentials"]`; `[]` for a client that only introspects or revokes.
    pub grant_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub scopes: Vec<String>,
    pub resources: Option<Vec<String>>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// `web` (default) or `native` (loopback redirects match on any port, RFC 8252).
    pub application_type: Option<String>,
    pub require_pushed_authorization_requests: bool,
    /// For private_key_jwt: the client's public keys as a JWK Set, inline.
    pub jwks: Option<serde_json::Value>,
    /// For private_key_jwt: where the client publishes its JWK Set.
    pub jwks_uri: Option<String>,
    /// Shown on the consent page.
    pub logo_uri: Option<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    /// The URL without any password, for messages.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(u) => u.clone(),
            // Neither the password nor a query, which may carry `password=` too.
            Self::Postgres(u) => match url::Url::parse(u) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        let _ = parsed.set_password(Some("***"));
                    }
                    if parsed.query().is_some() {
                        parsed.set_query(Some("***"));
                    }
                    parsed.to_string()
                }
                Err(_) => "postgres://(unparsable URL, not shown)".into(),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct SeedUser {
    pub username: String,
    pub password: Option<String>,
    pub password_hash: Option<String>,
    pub email: Option<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone)]
pub struct LoginSettings {
    pub session_lifetime: Duration,
    pub max_failures_per_account: u32,
    pub max_failures_per_address: u32,
    pub failure_window: Duration,
}

/// Checked configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: Issuer,
    pub listen: SocketAddr,
    pub database: DatabaseUrl,
    pub log_format: LogFormat,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub id_token_ttl: Duration,
    pub refresh_reuse_grace: Duration,
    pub login: LoginSettings,
    pub signing_algorithm: SigningAlgorithm,
    pub key_refresh_interval: Duration,
    pub users: Vec<SeedUser>,
    pub resources: Vec<mandate_core::Resource>,
    pub clients: Vec<mandate_core::Client>,
    /// Plain words for scopes by resource URI, then scope (consent page).
    pub scope_descriptions: BTreeMap<String, BTreeMap<String, String>>,
    /// `registration.allow_private_networks`: outbound fetches may reach loopback and private
    /// addresses, and plain http (local tests and development only).
    pub allow_private_networks: bool,
    pub registration: RegistrationSettings,
    /// `[[attesters]]` and `[attestation]`.
    pub attestation: AttestationSettings,
    /// Every scope some resource offers (URL clients may ask for any of them by default).
    pub offered_scopes: ScopeSet,
    /// Token exchange, trusted issuers and chaining targets.
    pub custody: CustodySettings,
    /// `[admin] clients`: the confidential clients allowed to use the admin API.
    pub admin_clients: BTreeSet<String>,
    /// `[audit] retention`: `None` keeps audit and lineage rows forever.
    pub audit_retention: Option<Duration>,
    /// `[server] trusted_proxies`: whose forwarding headers name the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Non-fatal remarks to log at start (e.g. short secrets).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(Box<figment::Error>),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), message: message.into() }
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_DATABASE: &str = "sqlite://mandate-data/mandate.db";

/// Reads the file (if any) and the `MANDATE_*` environment, then checks the result.
///
/// `MANDATE_CONFIG` (the file's path), `MANDATE_AGENT_*` and `MANDATE_GATEWAY_*` belong to other
/// commands of the binary and are skipped, so one environment can hold every command's settings;
/// any other `MANDATE_*` variable must name a key, so a misspelt one still stops the start.
pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
    if let Some(path) = path {
        if !path.is_file() {
            return Err(invalid("--config", format!("{} does not exist or is not a file", path.display())));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let known: BTreeSet<String> = match serde_json::to_value(RawConfig::default()) {
        Ok(serde_json::Value::Object(keys)) => keys.into_iter().map(|(k, _)| k).collect(),
        _ => BTreeSet::new(),
    };
    let env = Env::prefixed("MANDATE_").filter(move |key| {
        let key = key.as_str().to_ascii_lowercase();
        let top = key.split("__").next().unwrap_or_default();
        let elsewhere = top == "config" || top.starts_with("agent_") || top.starts_with("gateway_");
        known.contains(top) || !elsewhere
    });
    figment = figment.merge(env.split("__"));
    let raw: RawConfig = figment.extract().map_err(|e| ConfigError::Load(Box::new(e)))?;
    check(raw)
}

/// Parses TOML text alone (no environment): for tests and `check-config` of inline text.
pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
    let raw: RawConfig = Figment::from(Serialized::defaults(RawConfig::default()))
        .merge(Toml::string(text))
        .extract()
        .map_err(|e| ConfigError::Load(Box::new(e)))?;
    check(raw)
}

fn duration(key: &str, value: &str, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(value)
        .map_err(|e| invalid(key, format!("{value:?} is not a duration like \"300s\", \"5m\" or \"30d\" ({e})")))?;
    if d < min || d > max {
        return Err(invalid(
            key,
            format!(
                "{value} is out of range ({} to {})",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(d)
}

fn scopes(key: &str, tokens: &[String]) -> Result<ScopeSet, ConfigError> {
    ScopeSet::from_tokens(tokens).map_err(|e| invalid(key, e.to_string()))
}

pub fn check(raw: RawConfig) -> Result<Settings, ConfigError> {
    let mut warnings = Vec::new();
    let listen_text = if raw.listen.is_empty() { DEFAULT_LISTEN } else { raw.listen.as_str() };
    let listen: SocketAddr = listen_text
        .parse()
        .map_err(|_| invalid("listen", format!("{listen_text:?} is not an address like 127.0.0.1:8080")))?;

    // Without an issuer, the server names itself after where it listens (loopback if unspecified).
    let issuer_text = match raw.issuer.as_deref() {
        Some(i) => i.to_owned(),
        None => {
            let ip = if listen.ip().is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { listen.ip() };
            format!("http://{}", SocketAddr::new(ip, listen.port()))
        }
    };
    let issuer = Issuer::parse(&issuer_text).map_err(|e| invalid("issuer", e))?;

    let database_text = if raw.database.is_empty() { DEFAULT_DATABASE } else { raw.database.as_str() };
    let database = if database_text.starts_with("sqlite:") {
        DatabaseUrl::Sqlite(database_text.to_owned())
    } else if database_text.starts_with("postgres://") || database_text.starts_with("postgresql://") {
        DatabaseUrl::Postgres(database_text.to_owned())
    } else {
        return Err(invalid("database", "must start with sqlite:// or postgres://"));
    };

    let log_format = match raw.log_format.as_str() {
        "" | "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(invalid("log_format", format!("{other:?} is not text or json")));
        }
    };

    let access_token_ttl = duration(
        "tokens.access_token_ttl",
        &raw.tokens.access_token_ttl,
        Duration::from_secs(10),
        Duration::from_secs(24 * 3600),
    )?;
    let refresh_token_ttl = duration(
        "tokens.refresh_token_ttl",
        &raw.tokens.refresh_token_ttl,
        Duration::from_secs(60),
        Duration::from_secs(400 * 24 * 3600),
    )?;
    if refresh_token_ttl < access_token_ttl {
        return Err(invalid("tokens.refresh_token_ttl", "must not be shorter than tokens.access_token_ttl"));
    }
    let id_token_ttl = duration(
        "tokens.id_token_ttl",
        &raw.tokens.id_token_ttl,
        Duration::from_secs(10),
        Duration::from_secs(24 * 3600),
    )?;
    let refresh_reuse_grace = duration(
        "tokens.refresh_reuse_grace",
        &raw.tokens.refresh_reuse_grace,
        Duration::ZERO,
        Duration::from_secs(300),
    )?;
    let login = LoginSettings {
        session_lifetime: duration(
            "login.session_lifetime",
            &raw.login.session_lifetime,
            Duration::from_secs(60),
            Duration::from_secs(30 * 24 * 3600),
        )?,
        max_failures_per_account: raw.login.max_failures_per_account.max(1),
        max_failures_per_address: raw.login.max_failures_per_address.max(1),
        failure_window: duration(
            "login.failure_window",
            &raw.login.failure_window,
            Duration::from_secs(1),
            Duration::from_secs(24 * 3600),
        )?,
    };
    let signing_algorithm: SigningAlgorithm = raw
        .keys
        .algorithm
        .parse()
        .map_err(|e: mandate_core::jose::UnknownAlgorithm| invalid("keys.algorithm", e.to_string()))?;
    let key_refresh_interval = duration(
        "keys.refresh_interval",
        &raw.keys.refresh_interval,
        Duration::from_secs(1),
        Duration::from_secs(3600),
    )?;

    let attestation = check_attestation(&raw.attesters, &raw.attestation, raw.registration.allow_private_networks)?;
    let resources = check_resources(&raw.resources)?;
    let offered: ScopeSet = resources.iter().fold(ScopeSet::default(), |acc, r| acc.union(&r.scopes));
    let clients = check_clients(
        &raw.clients,
        &resources,
        &offered,
        raw.registration.allow_private_networks,
        attestation.enabled(),
        &mut warnings,
    )?;
    let users = check_users(&raw.users)?;
    let registration = check_registration(&raw.registration, &resources, &offered)?;
    let resource_clients = raw
        .resources
        .iter()
        .zip(&resources)
        .filter_map(|(r, checked)| r.client_id.clone().map(|c| (checked.uri.to_string(), c)))
        .collect();
    let client_ids = clients.iter().map(|c| c.client_id.clone()).collect();
    let audit_retention = match raw.audit.retention.as_str() {
        "" => None,
        text => Some(duration(
            "audit.retention",
            text,
            Duration::from_secs(24 * 3600),
            Duration::from_secs(100 * 366 * 24 * 3600),
        )?),
    };
    let mut admin_clients = BTreeSet::new();
    for (i, id) in raw.admin.clients.iter().enumerate() {
        match clients.iter().find(|c| &c.client_id == id) {
            Some(c) if !c.is_public() => {
                admin_clients.insert(id.clone());
            }
            Some(_) => {
                return Err(invalid(
                    format!("admin.clients[{i}]"),
                    format!("{id:?} is a public client; admin clients authenticate"),
                ));
            }
            None => return Err(invalid(format!("admin.clients[{i}]"), format!("{id:?} is not a [[clients]] entry"))),
        }
    }
    let custody = custody::check_custody(
        &raw.token_exchange,
        &raw.trusted_issuers,
        &raw.chaining_targets,
        resource_clients,
        &client_ids,
        issuer.as_str(),
        raw.registration.allow_private_networks,
    )?;
    let mut scope_descriptions = BTreeMap::new();
    for (i, (raw_resource, resource)) in raw.resources.iter().zip(&resources).enumerate() {
        for scope in raw_resource.scope_descriptions.keys() {
            if !resource.scopes.contains(scope) {
                return Err(invalid(
                    format!("resources[{i}].scope_descriptions"),
                    format!("{scope:?} is not one of this resource's scopes"),
                ));
            }
        }
        scope_descriptions.insert(resource.uri.to_string(), raw_resource.scope_descriptions.clone());
    }

    let trusted_proxies = raw
        .server
        .trusted_proxies
        .iter()
        .map(|n| {
            // A bare address is a one-address range.
            n.parse::<ipnet::IpNet>().or_else(|_| n.parse::<IpAddr>().map(ipnet::IpNet::from)).map_err(|_| {
                invalid("server.trusted_proxies", format!("{n:?} is not an address or CIDR range like \"10.0.0.0/8\""))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Settings {
        issuer,
        listen,
        database,
        log_format,
        access_token_ttl,
        refresh_token_ttl,
        id_token_ttl,
        refresh_reuse_grace,
        login,
        signing_algorithm,
        key_refresh_interval,
        users,
        resources,
        clients,
        scope_descriptions,
        allow_private_networks: raw.registration.allow_private_networks,
        registration,
        attestation,
        offered_scopes: offered,
        custody,
        admin_clients,
        audit_retention,
        trusted_proxies,
        warnings,
    })
}

fn check_attestation(
    raw: &[RawAttester],
    settings: &RawAttestation,
    allow_private_networks: bool,
) -> Result<AttestationSettings, ConfigError> {
    let mut names = BTreeSet::new();
    let attesters = raw
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let key = |field: &str| format!("attesters[{i}].{field}");
            if a.name.trim().is_empty() || a.name.trim() != a.name || a.name.chars().count() > 100 {
                return Err(invalid(key("name"), "must be 1 to 100 characters without surrounding spaces"));
            }
            if !names.insert(a.name.clone()) {
                return Err(invalid(key("name"), format!("{:?} is listed twice", a.name)));
            }
            if a.issuer.as_deref().is_some_and(|i| i.trim().is_empty()) {
                return Err(invalid(key("issuer"), "must not be empty; leave it out to accept any iss"));
            }
            let keys = match (&a.jwks, &a.jwks_uri) {
                (Some(_), Some(_)) => return Err(invalid(key("jwks"), "give jwks or jwks_uri, not both")),
                (None, None) => return Err(invalid(key("jwks"), "an attester needs jwks or jwks_uri")),
                (Some(set), None) => AttesterKeys::Inline(
                    mandate_core::assertion::parse_client_jwks(&set.to_string())
                        .map_err(|e| invalid(key("jwks"), e))?,
                ),
                (None, Some(uri)) => {
                    let parsed = url::Url::parse(uri)
                        .map_err(|_| invalid(key("jwks_uri"), format!("{uri:?} is not an absolute URL")))?;
                    let plain_ok = allow_private_networks && parsed.scheme() == "http";
                    if parsed.scheme() != "https" && !plain_ok {
                        return Err(invalid(key("jwks_uri"), format!("{uri:?} must use https")));
                    }
                    AttesterKeys::Uri(uri.clone())
                }
            };
            Ok(Attester { name: a.name.clone(), issuer: a.issuer.clone(), keys })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let max_age = settings
        .max_age
        .as_deref()
        .map(|v| duration("attestation.max_age", v, Duration::from_secs(60), Duration::from_secs(400 * 24 * 3600)))
        .transpose()?;
    Ok(AttestationSettings { attesters, require_challenge: settings.require_challenge, max_age })
}

/// `registration.unattended_*`: grants without a person for clients nobody configured, bounded by
/// resources and scopes named explicitly (no "everything" default).
fn check_unattended(
    raw: &RawRegistration,
    resources: &[mandate_core::Resource],
) -> Result<UnattendedPolicy, ConfigError> {
    const KEY: &str = "registration.unattended_grant_types";
    let mut grant_types = Vec::new();
    for g in &raw.unattended_grant_types {
        let grant: GrantType =
            g.parse().map_err(|e: mandate_core::client::UnknownGrantType| invalid(KEY, e.to_string()))?;
        if !matches!(grant, GrantType::ClientCredentials | GrantType::JwtBearer) {
            return Err(invalid(
                KEY,
                format!(
                    "{g:?} is not a grant without a person; list client_credentials or urn:ietf:params:oauth:grant-type:jwt-bearer"
                ),
            ));
        }
        if !grant_types.contains(&grant) {
            grant_types.push(grant);
        }
    }
    let named_resources = crate::clients::metadata::parse_resources(&raw.unattended_resources)
        .map_err(|e| invalid("registration.unattended_resources", e))?;
    let mut offered = ScopeSet::default();
    for uri in &named_resources {
        let resource = resources.iter().find(|r| &r.uri == uri).ok_or_else(|| {
            invalid("registration.unattended_resources", format!("{uri} is not a registered resource"))
        })?;
        offered = offered.union(&resource.scopes);
    }
    let scope_set = scopes("registration.unattended_scopes", &raw.unattended_scopes)?;
    let unknown = scope_set.difference(&offered);
    if !unknown.is_empty() {
        return Err(invalid(
            "registration.unattended_scopes",
            format!("no resource in registration.unattended_resources offers {unknown}"),
        ));
    }
    if !grant_types.is_empty() && (named_resources.is_empty() || scope_set.is_empty()) {
        return Err(invalid(
            KEY,
            "name the resources and scopes these grants may reach in registration.unattended_resources and registration.unattended_scopes",
        ));
    }
    Ok(UnattendedPolicy { grant_types, resources: named_resources, scopes: scope_set })
}

fn check_registration(
    raw: &RawRegistration,
    resources: &[mandate_core::Resource],
    offered: &ScopeSet,
) -> Result<RegistrationSettings, ConfigError> {
    let host_patterns = |key: &str, list: &[String]| -> Result<Vec<String>, ConfigError> {
        list.iter()
            .map(|p| {
                let bare = p.strip_prefix("*.").unwrap_or(p);
                let ok = p == "*" || (!bare.is_empty() && !bare.contains(['*', '/', ':', ' ']));
                if ok {
                    Ok(p.to_ascii_lowercase())
                } else {
                    Err(invalid(
                        key,
                        format!("{p:?} is not a host pattern like \"agent.example\" or \"*.example.com\""),
                    ))
                }
            })
            .collect()
    };
    let oidc_scopes = ScopeSet::from_tokens(oidc::SCOPES).unwrap_or_default();
    let scope_policy = |key: &str, list: &Option<Vec<String>>| -> Result<Option<ScopeSet>, ConfigError> {
        let Some(list) = list else { return Ok(None) };
        let set = scopes(key, list)?;
        let unknown = set.difference(&offered.union(&oidc_scopes));
        if !unknown.is_empty() {
            return Err(invalid(key, format!("no resource offers {unknown}")));
        }
        Ok(Some(set))
    };
    let resource_policy = |key: &str, list: &Option<Vec<String>>| -> Result<Option<Vec<ResourceUri>>, ConfigError> {
        let Some(list) = list else { return Ok(None) };
        let uris = crate::clients::metadata::parse_resources(list).map_err(|e| invalid(key, e))?;
        if let Some(unknown) = uris.iter().find(|u| !resources.iter().any(|r| &r.uri == *u)) {
            return Err(invalid(key, format!("{unknown} is not a registered resource")));
        }
        Ok(Some(uris))
    };
    let metadata_scopes = scope_policy("registration.client_metadata_scopes", &raw.client_metadata_scopes)?;
    let metadata_resources = resource_policy("registration.client_metadata_resources", &raw.client_metadata_resources)?;
    // A pushed client is at most as trusted as a URL client: it inherits their policy unless set.
    let pushed_scopes = scope_policy("registration.pushed_scopes", &raw.pushed_scopes)?;
    if pushed_scopes.as_ref().is_some_and(|s| s.contains(oidc::OFFLINE_ACCESS)) {
        return Err(invalid(
            "registration.pushed_scopes",
            "offline_access cannot be offered: pushed clients get no refresh tokens (they push a new request instead)",
        ));
    }
    let pushed_scopes = pushed_scopes.or_else(|| metadata_scopes.clone());
    let pushed_resources =
        resource_policy("registration.pushed_resources", &raw.pushed_resources)?.or_else(|| metadata_resources.clone());
    let unattended = check_unattended(raw, resources)?;
    let initial_access_token = raw
        .initial_access_token_hash
        .as_deref()
        .map(SecretDigest::parse)
        .transpose()
        .map_err(|e| invalid("registration.initial_access_token_hash", e.to_string()))?;
    Ok(RegistrationSettings {
        dynamic: raw.dynamic,
        initial_access_token,
        max_registrations_per_address: raw.max_registrations_per_address.max(1),
        unused_registration_expiry: duration(
            "registration.unused_registration_expiry",
            &raw.unused_registration_expiry,
            Duration::from_secs(3600),
            Duration::from_secs(400 * 24 * 3600),
        )?,
        metadata_documents: raw.client_id_metadata_documents,
        metadata_allowed_hosts: host_patterns(
            "registration.client_metadata_allowed_hosts",
            &raw.client_metadata_allowed_hosts,
        )?,
        metadata_denied_hosts: host_patterns(
            "registration.client_metadata_denied_hosts",
            &raw.client_metadata_denied_hosts,
        )?,
        metadata_same_origin_redirects: raw.client_metadata_same_origin_redirects,
        metadata_scopes,
        metadata_resources,
        require_software_statement: raw.require_software_statement,
        software_publishers: check_publishers(&raw.software_publishers)?,
        pushed: raw.pushed,
        pushed_scopes,
        pushed_resources,
        unattended,
    })
}

fn check_publishers(raw: &[RawSoftwarePublisher]) -> Result<Vec<Publisher>, ConfigError> {
    let mut seen = BTreeSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, p)| {
            let key = |field: &str| format!("registration.software_publishers[{i}].{field}");
            if p.issuer.trim().is_empty() {
                return Err(invalid(key("issuer"), "is empty"));
            }
            if !seen.insert(p.issuer.clone()) {
                return Err(invalid(key("issuer"), format!("{:?} is configured twice", p.issuer)));
            }
            if p.name.trim().is_empty() {
                return Err(invalid(key("name"), "is empty; it is shown to people as \"verified by …\""));
            }
            // A table, or the JWK Set's JSON text as published.
            let text = match &p.jwks {
                serde_json::Value::String(json) => json.clone(),
                table => table.to_string(),
            };
            let keys = mandate_core::assertion::parse_client_jwks(&text).map_err(|e| invalid(key("jwks"), e))?;
            Ok(Publisher { issuer: p.issuer.clone(), name: p.name.clone(), keys })
        })
        .collect()
}

fn check_resources(raw: &[RawResource]) -> Result<Vec<mandate_core::Resource>, ConfigError> {
    let mut seen = BTreeSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, r)| {
            let key = |field: &str| format!("resources[{i}].{field}");
            let uri = ResourceUri::parse(&r.uri).map_err(|e| invalid(key("uri"), format!("{:?} {e}", r.uri)))?;
            if !seen.insert(uri.clone()) {
                return Err(invalid(key("uri"), format!("{uri} is listed twice")));
            }
            let scopes = scopes(&key("scopes"), &r.scopes)?;
            if scopes.is_empty() {
                return Err(invalid(key("scopes"), "a resource needs at least one scope"));
            }
            Ok(mandate_core::Resource { name: r.name.clone().unwrap_or_else(|| uri.to_string()), uri, scopes })
        })
        .collect()
}

fn check_clients(
    raw: &[RawClient],
    resources: &[mandate_core::Resource],
    offered: &ScopeSet,
    allow_private_networks: bool,
    attestation_enabled: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<mandate_core::Client>, ConfigError> {
    let mut seen = BTreeSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, c)| {
            let key = |field: &str| format!("clients[{i}].{field}");
            // RFC 6749 appendix A.1: client_id = *VSCHAR.
            if c.client_id.is_empty() || !c.client_id.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
                return Err(invalid(key("client_id"), "must be non-empty printable ASCII"));
            }
            if crate::clients::metadata::is_url_client_id(&c.client_id) {
                return Err(invalid(
                    key("client_id"),
                    "URL client ids are client ID metadata documents, fetched on demand; pick a plain id",
                ));
            }
            if c.client_id.starts_with(crate::endpoints::register::CLIENT_ID_PREFIX) {
                return Err(invalid(
                    key("client_id"),
                    format!(
                        "ids starting with {:?} are those dynamic registration makes; pick another id",
                        crate::endpoints::register::CLIENT_ID_PREFIX
                    ),
                ));
            }
            if crate::clients::pushed::is_pushed_client_id(&c.client_id) {
                return Err(invalid(
                    key("client_id"),
                    "urn:ietf:oauth:parameters:dynamic is the static client id of pushed client registration and never names a real client; pick another id",
                ));
            }
            if !seen.insert(c.client_id.clone()) {
                return Err(invalid(key("client_id"), format!("{:?} is listed twice", c.client_id)));
            }
            let method: TokenEndpointAuthMethod =
                c.token_endpoint_auth_method.as_deref().unwrap_or("client_secret_basic").parse().map_err(
                    |e: mandate_core::client::UnknownAuthMethod| {
                        invalid(key("token_endpoint_auth_method"), e.to_string())
                    },
                )?;
            let secret = match (&c.client_secret, &c.client_secret_hash) {
                (Some(_), Some(_)) => {
                    return Err(invalid(key("client_secret"), "give client_secret or client_secret_hash, not both"));
                }
                (Some(s), None) => {
                    if s.len() < 32 {
                        warnings.push(format!(
                            "{}: client {:?} has a secret of {} characters; use `mandate secret generate` for 256 bits",
                            key("client_secret"),
                            c.client_id,
                            s.len()
                        ));
                    }
                    Some(SecretDigest::of(s))
                }
                (None, Some(h)) => {
                    Some(SecretDigest::parse(h).map_err(|e| invalid(key("client_secret_hash"), e.to_string()))?)
                }
                (None, None) => None,
            };
            if method == TokenEndpointAuthMethod::None && secret.is_some() {
                return Err(invalid(
                    key("client_secret"),
                    "a public client (token_endpoint_auth_method = \"none\") has no secret",
                ));
            }
            let logo_uri = c.logo_uri.clone();
            if let Some(uri) = &logo_uri {
                crate::clients::check_fetch_url(uri, allow_private_networks)
                    .map_err(|e| invalid(key("logo_uri"), e))?;
            }
            if method == TokenEndpointAuthMethod::AttestJwtClientAuth {
                if !attestation_enabled {
                    return Err(invalid(
                        key("token_endpoint_auth_method"),
                        "attest_jwt_client_auth needs at least one trusted [[attesters]] entry",
                    ));
                }
                if secret.is_some() {
                    return Err(invalid(key("client_secret"), "an attest_jwt_client_auth client has no secret"));
                }
            }
            let (jwks, jwks_uri) = check_client_keys(c, method, secret.is_some(), allow_private_networks)
                .map_err(|(field, message)| invalid(key(field), message))?;
            if method.needs_secret() && secret.is_none() {
                return Err(invalid(
                    key("client_secret"),
                    format!("{method} needs client_secret or client_secret_hash"),
                ));
            }
            let application_type = match c.application_type.as_deref() {
                None => ApplicationType::Web,
                Some(t) => ApplicationType::parse(t)
                    .ok_or_else(|| invalid(key("application_type"), format!("{t:?} is not web or native")))?,
            };
            for (field, list) in
                [("redirect_uris", &c.redirect_uris), ("post_logout_redirect_uris", &c.post_logout_redirect_uris)]
            {
                for uri in list {
                    check_redirect_uri(uri, application_type)
                        .map_err(|m| invalid(key(field), format!("{uri:?} {m}")))?;
                }
            }
            // Without grant_types: the code grant (with refresh) for clients with redirect URIs,
            // client credentials for the rest.
            let grant_types: Vec<GrantType> = match &c.grant_types {
                None if !c.redirect_uris.is_empty() => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                None => vec![GrantType::ClientCredentials],
                Some(list) => list
                    .iter()
                    .map(|g| {
                        g.parse().map_err(|e: mandate_core::client::UnknownGrantType| {
                            invalid(key("grant_types"), e.to_string())
                        })
                    })
                    .collect::<Result<_, _>>()?,
            };
            if grant_types.contains(&GrantType::AuthorizationCode) && c.redirect_uris.is_empty() {
                return Err(invalid(
                    key("redirect_uris"),
                    "the authorization_code grant needs at least one redirect URI",
                ));
            }
            if method == TokenEndpointAuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
                return Err(invalid(key("grant_types"), "a public client cannot use client_credentials"));
            }
            if method == TokenEndpointAuthMethod::None
                && (grant_types.contains(&GrantType::TokenExchange) || grant_types.contains(&GrantType::JwtBearer))
            {
                return Err(invalid(key("grant_types"), "token exchange and JWT grants need an authenticated client"));
            }
            let client_scopes = scopes(&key("scopes"), &c.scopes)?;
            let oidc_scopes = ScopeSet::from_tokens(oidc::SCOPES).unwrap_or_default();
            let unknown = client_scopes.difference(&offered.union(&oidc_scopes));
            if !unknown.is_empty() {
                return Err(invalid(key("scopes"), format!("no resource offers {unknown}")));
            }
            let allowed_resources = c
                .resources
                .as_ref()
                .map(|list| {
                    list.iter()
                        .map(|u| {
                            let uri =
                                ResourceUri::parse(u).map_err(|e| invalid(key("resources"), format!("{u:?} {e}")))?;
                            if resources.iter().any(|r| r.uri == uri) {
                                Ok(uri)
                            } else {
                                Err(invalid(key("resources"), format!("{uri} is not a registered resource")))
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            Ok(mandate_core::Client {
                client_id: c.client_id.clone(),
                client_name: c.client_name.clone(),
                secret,
                token_endpoint_auth_method: method,
                grant_types,
                scopes: client_scopes,
                resources: allowed_resources,
                redirect_uris: c.redirect_uris.clone(),
                post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
                application_type,
                require_pushed_authorization_requests: c.require_pushed_authorization_requests,
                jwks,
                jwks_uri,
                logo_uri,
                disabled: c.disabled,
            })
        })
        .collect()
}

/// `jwks` / `jwks_uri`: exactly one of them for private_key_jwt, neither otherwise. Returns the
/// JWK Set as JSON text and the URI.
type Keys = (Option<String>, Option<String>);
fn check_client_keys(
    c: &RawClient,
    method: TokenEndpointAuthMethod,
    has_secret: bool,
    allow_private_networks: bool,
) -> Result<Keys, (&'static str, String)> {
    let uses_keys = method == TokenEndpointAuthMethod::PrivateKeyJwt;
    match (&c.jwks, &c.jwks_uri) {
        (Some(_), Some(_)) => Err(("jwks", "give jwks or jwks_uri, not both".into())),
        (None, None) if uses_keys => Err(("jwks", "private_key_jwt needs jwks or jwks_uri".into())),
        (None, None) => Ok((None, None)),
        _ if !uses_keys => {
            Err(("jwks", "keys are used only with token_endpoint_auth_method = \"private_key_jwt\"".into()))
        }
        _ if has_secret => Err(("client_secret", "a private_key_jwt client has no secret".into())),
        (Some(set), None) => {
            let text = set.to_string();
            mandate_core::assertion::parse_client_jwks(&text).map_err(|e| ("jwks", e))?;
            Ok((Some(text), None))
        }
        (None, Some(uri)) => {
            crate::clients::check_fetch_url(uri, allow_private_networks).map_err(|e| ("jwks_uri", e))?;
            Ok((None, Some(uri.clone())))
        }
    }
}

/// RFC 9700 §2.1 and RFC 8252: an absolute URI without fragment; https, or http to a loopback
/// host; native apps may also use a private-use scheme in reverse-DNS form (`com.example.app:/cb`).
pub(crate) fn check_redirect_uri(uri: &str, application_type: ApplicationType) -> Result<(), &'static str> {
    let parsed = url::Url::parse(uri).map_err(|_| "is not an absolute URI")?;
    if parsed.fragment().is_some() {
        return Err("must not have a fragment");
    }
    if parsed.as_str() != uri && parsed.as_str() != format!("{uri}/") {
        return Err("is not in normalised form (lower-case scheme and host); write it as a browser sends it");
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Domain("localhost")) => Ok(()),
            _ => Err("uses http to a host that is not loopback; use https"),
        },
        scheme if application_type == ApplicationType::Native && scheme.contains('.') => Ok(()),
        _ => Err("must use https (or http to loopback; native apps also a reverse-DNS private-use scheme)"),
    }
}

fn check_users(raw: &[RawUser]) -> Result<Vec<SeedUser>, ConfigError> {
    let mut seen = BTreeSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, u)| {
            let key = |field: &str| format!("users[{i}].{field}");
            if u.username.trim().is_empty() || u.username.trim() != u.username {
                return Err(invalid(key("username"), "must be non-empty without surrounding spaces"));
            }
            if !seen.insert(u.username.clone()) {
                return Err(invalid(key("username"), format!("{:?} is listed twice", u.username)));
            }
            match (&u.password, &u.password_hash) {
                (Some(_), Some(_)) => {
                    return Err(invalid(key("password"), "give password or password_hash, not both"));
                }
                (None, None) => {
                    return Err(invalid(key("password"), "give password or password_hash"));
                }
                (None, Some(h)) => check_password_hash(h).map_err(|e| invalid(key("password_hash"), e.to_string()))?,
                (Some(p), None) if p.is_empty() => {
                    return Err(invalid(key("password"), "must not be empty"));
                }
                (Some(_), None) => {}
            }
            Ok(SeedUser {
                username: u.username.clone(),
                password: u.password.clone(),
                password_hash: u.password_hash.clone(),
                email: u.email.clone(),
                disabled: u.disabled,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_database_urls_show_no_password() {
        let url = DatabaseUrl::Postgres(
            "postgres://mandate:hunter2@db.internal/mandate?password=hunter3&sslmode=require".into(),
        );
        let shown = url.redacted();
        assert!(!shown.contains("hunter2") && !shown.contains("hunter3"), "{shown}");
        assert!(shown.starts_with("postgres://mandate:***@db.internal/mandate"), "{shown}");
    }

    fn err(text: &str) -> String {
        from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn custody_and_admin_sections_name_the_offending_key() {
        let agent = "[[resources]]\nuri = \"https://b.example/mcp\"\nscopes = [\"r\"]\n\
                     [[clients]]\nclient_id = \"agent\"\nclient_secret = \"agent-secret-0123456789abcdefghijklmnopq\"\nscopes = [\"r\"]\n\
                     [[clients]]\nclient_id = \"public\"\ntoken_endpoint_auth_method = \"none\"\nredirect_uris = [\"https://p.example/cb\"]\nscopes = [\"r\"]\n";
        let jwks = r#"{ keys = [{ kty = "EC", crv = "P-256", x = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM" }] }"#;
        let cases = [
            ("[token_exchange]\nmax_delegation_depth = 0\n".to_owned(), "token_exchange.max_delegation_depth"),
            (
                "[token_exchange]\nimpersonation_clients = [\"ghost\"]\n".to_owned(),
                "token_exchange.impersonation_clients[0]",
            ),
            (
                "[[resources]]\nuri = \"https://c.example/\"\nscopes = [\"r\"]\nclient_id = \"ghost\"\n".to_owned(),
                "resources.client_id",
            ),
            ("[[trusted_issuers]]\nissuer = \"https://idp.example\"\n".to_owned(), "trusted_issuers[0].jwks"),
            (
                format!(
                    "[[trusted_issuers]]\nissuer = \"https://idp.example\"\njwks = {jwks}\njwks_uri = \"https://idp.example/jwks\"\n"
                ),
                "trusted_issuers[0].jwks",
            ),
            (
                format!("[[trusted_issuers]]\nissuer = \"http://idp.example\"\njwks = {jwks}\n"),
                "trusted_issuers[0].issuer",
            ),
            (
                format!("[[trusted_issuers]]\nissuer = \"http://127.0.0.1:8080\"\njwks = {jwks}\n"),
                "trusted_issuers[0].issuer",
            ),
            (
                "[[trusted_issuers]]\nissuer = \"https://idp.example\"\njwks_uri = \"http://idp.example/jwks\"\n"
                    .to_owned(),
                "trusted_issuers[0].jwks_uri",
            ),
            (
                "[[chaining_targets]]\nissuer = \"https://as.example\"\nclient_ids = { ghost = \"x\" }\n".to_owned(),
                "chaining_targets[0].client_ids",
            ),
            ("[[chaining_targets]]\nissuer = \"https://as.example#x\"\n".to_owned(), "chaining_targets[0].issuer"),
            ("[admin]\nclients = [\"public\"]\n".to_owned(), "admin.clients[0]"),
            ("[admin]\nclients = [\"ghost\"]\n".to_owned(), "admin.clients[0]"),
            ("[audit]\nretention = \"1h\"\n".to_owned(), "audit.retention"),
            ("[audit]\nretention = \"forever\"\n".to_owned(), "audit.retention"),
        ];
        for (section, key) in cases {
            let e = err(&format!("{agent}{section}"));
            assert!(e.starts_with(key), "{section}: {e}");
        }
        let ok = from_toml(&format!(
            "{agent}[admin]\nclients = [\"agent\"]\n[[trusted_issuers]]\nissuer = \"https://idp.example\"\njwks = {jwks}\n\
             [[chaining_targets]]\nissuer = \"http://127.0.0.1:9999\"\nclient_ids = {{ agent = \"agent-there\" }}\n"
        ))
        .unwrap();
        assert!(ok.admin_clients.contains("agent"));
        assert_eq!(ok.custody.chaining_target("http://127.0.0.1:9999").unwrap().client_id_for("agent"), "agent-there");
        assert_eq!(ok.custody.max_delegation_depth, 4, "the default");
        assert_eq!(ok.audit_retention, None, "kept forever by default");
        let kept = from_toml(&format!("{agent}[audit]\nretention = \"400d\"\n")).unwrap();
        assert_eq!(kept.audit_retention, Some(std::time::Duration::from_secs(400 * 24 * 3600)));
    }

    #[test]
    fn empty_config_gives_working_defaults() {
        let s = from_toml("").unwrap();
        assert_eq!(s.issuer.as_str(), "http://127.0.0.1:8080");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database, DatabaseUrl::Sqlite("sqlite://mandate-data/mandate.db".into()));
        assert_eq!(s.access_token_ttl, Duration::from_secs(300));
        assert_eq!(s.signing_algorithm, SigningAlgorithm::ES256);
    }

    #[test]
    fn issuer_follows_listen_when_unset() {
        let s = from_toml("listen = \"0.0.0.0:9000\"").unwrap();
        assert_eq!(s.issuer.as_str(), "http://127.0.0.1:9000");
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err("bogus = 1").contains("bogus"), "{}", err("bogus = 1"));
        assert!(err("[tokens]\naccess_token_ttl = \"soon\"").starts_with("tokens.access_token_ttl:"));
        assert!(err("[keys]\nalgorithm = \"HS256\"").starts_with("keys.algorithm:"));
        assert!(err("issuer = \"http://auth.example.com\"").starts_with("issuer:"));
        assert!(err("database = \"mysql://x\"").starts_with("database:"));
        let contradiction = "[[resources]]\nuri = \"https://mcp.example\"\nscopes = [\"read\"]\n[[clients]]\nclient_id = \"a\"\nscopes = [\"read\"]";
        assert!(err(contradiction).starts_with("clients[0].client_secret:"), "{}", err(contradiction));
        let unknown_scope = "[[resources]]\nuri = \"https://mcp.example\"\nscopes = [\"read\"]\n[[clients]]\nclient_id = \"a\"\nclient_secret = \"x\"\nscopes = [\"write\"]";
        assert!(err(unknown_scope).contains("no resource offers write"));
    }

    #[test]
    fn software_publishers_are_checked() {
        let publisher = |fields: &str| format!("[[registration.software_publishers]]\n{fields}");
        let secret_key = r#"jwks = '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}'"#;
        let e = err(&publisher(&format!("issuer = \"https://p.example\"\nname = \"P\"\n{secret_key}")));
        assert!(e.starts_with("registration.software_publishers[0].jwks:"), "{e}");
        let e = err(&publisher("issuer = \"\"\nname = \"P\"\njwks = '{\"keys\":[]}'"));
        assert!(e.starts_with("registration.software_publishers[0].issuer:"), "{e}");
        let e = err(&publisher("issuer = \"https://p.example\"\njwks = '{}'"));
        assert!(e.contains("name"), "{e}");
    }

    #[test]
    fn attester_mistakes_stop_the_start_naming_the_key() {
        let jwks = r#"{ keys = [{ kty = "EC", crv = "P-256", x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] }"#;
        let ok = format!("[[attesters]]\nname = \"Acme\"\njwks = {jwks}\n");
        let s = from_toml(&ok).unwrap();
        assert!(s.attestation.enabled());
        assert!(!s.attestation.require_challenge && s.attestation.max_age.is_none());
        assert!(!from_toml("").unwrap().attestation.enabled());
        let cases = [
            ("[[attesters]]\nname = \"Acme\"\n".to_owned(), "attesters[0].jwks:"),
            (format!("[[attesters]]\nname = \"\"\njwks = {jwks}\n"), "attesters[0].name:"),
            (format!("{ok}{ok}"), "attesters[1].name:"),
            (
                format!("[[attesters]]\nname = \"Acme\"\njwks = {jwks}\njwks_uri = \"https://a.example/jwks\"\n"),
                "attesters[0].jwks:",
            ),
            ("[[attesters]]\nname = \"Acme\"\njwks_uri = \"http://a.example/jwks\"\n".to_owned(), "attesters[0].jwks_uri:"),
            (
                "[[attesters]]\nname = \"Acme\"\njwks = { keys = [{ kty = \"oct\", k = \"c2VjcmV0\" }] }\n".to_owned(),
                "attesters[0].jwks:",
            ),
            (format!("{ok}[attestation]\nmax_age = \"soon\"\n"), "attestation.max_age:"),
            ("[attestation]\nrequire_challange = true\n".to_owned(), "require_challange"),
            (
                "[[resources]]\nuri = \"https://mcp.example\"\nscopes = [\"read\"]\n[[clients]]\nclient_id = \"a\"\ntoken_endpoint_auth_method = \"attest_jwt_client_auth\"\nscopes = [\"read\"]\n".to_owned(),
                "clients[0].token_endpoint_auth_method:",
            ),
            (
                format!("{ok}[[resources]]\nuri = \"https://mcp.example\"\nscopes = [\"read\"]\n[[clients]]\nclient_id = \"a\"\nclient_secret = \"x\"\ntoken_endpoint_auth_method = \"attest_jwt_client_auth\"\nscopes = [\"read\"]\n"),
                "clients[0].client_secret:",
            ),
        ];
        for (text, key) in cases {
            let e = err(&text);
            assert!(e.contains(key), "{text}\n→ {e}");
        }
    }
}
