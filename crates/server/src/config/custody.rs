//! Chain of custody settings: `[token_exchange]` (RFC 8693 delegation), `[[trusted_issuers]]`
//! (other servers whose JWTs mandate accepts: subject tokens, ID-JAGs, identity-chaining grants)
//! and `[[chaining_targets]]` (authorization servers mandate issues ID-JAGs and JWT grants for);
//! plus which client is each resource's own (`[[resources]] client_id`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTokenExchange {
    /// The most actors an `act` chain may hold.
    pub max_delegation_depth: usize,
    /// Clients whose exchanges impersonate (no `act`) instead of delegating.
    pub impersonation_clients: Vec<String>,
}

impl Default for RawTokenExchange {
    fn default() -> Self {
        Self { max_delegation_depth: 4, impersonation_clients: Vec::new() }
    }
}

/// Another authorization server or identity provider whose signed JWTs mandate accepts.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawTrustedIssuer {
    pub issuer: String,
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    /// Whose namespace the issuer's `sub` is in: `qualified` (default), `local` or `mapped`.
    pub subjects: Option<String>,
    /// The issuer's `sub` → a person of this server; consulted first, whatever `subjects` says.
    pub subject_map: BTreeMap<String, String>,
    /// The issuer's client ids → this server's: how a subject token's `client_id`/`azp` and
    /// `may_act` name a local client. Unlisted ids name nobody here.
    pub client_ids: BTreeMap<String, String>,
    /// The longest an assertion or subject token of this issuer may still be valid; default 5m.
    pub max_lifetime: Option<String>,
    /// Whether a JWT without `typ` is taken as an identity-chaining grant; default false.
    pub untyped_grants: bool,
    /// Whether its access tokens (`typ: at+jwt`) are accepted as subject tokens; default false.
    pub accept_access_tokens: bool,
}

/// An authorization server mandate issues identity assertion grants (ID-JAG) and JWT
/// authorization grants for.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawChainingTarget {
    pub issuer: String,
    /// The client's `client_id` at that server, by its `client_id` here; the same when absent.
    pub client_ids: BTreeMap<String, String>,
}

/// Where a trusted issuer's keys come from.
#[derive(Debug, Clone)]
pub enum IssuerKeys {
    Inline(jsonwebtoken::jwk::JwkSet),
    Uri(String),
}

/// Whose namespace a trusted issuer's `sub` is in (after `subject_map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectNamespace {
    /// The issuer's own: its `sub` X becomes `<issuer>#X` here, never one of this server's people.
    Qualified,
    /// This server's: the issuer names this server's people (an enterprise identity provider
    /// they sign in with); the person must exist here and not be disabled.
    Local,
    /// Only the subjects `subject_map` lists are accepted.
    Mapped,
}

#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    pub issuer: String,
    pub keys: IssuerKeys,
    pub subjects: SubjectNamespace,
    pub subject_map: BTreeMap<String, String>,
    pub client_ids: BTreeMap<String, String>,
    /// Seconds.
    pub max_lifetime: i64,
    pub untyped_grants: bool,
    pub accept_access_tokens: bool,
}

impl TrustedIssuer {
    /// The local client a client id of this issuer names, if the mapping lists it.
    pub fn local_client(&self, foreign: &str) -> Option<&str> {
        self.client_ids.get(foreign).map(String::as_str)
    }
}

/// The default `max_lifetime` of a trusted issuer's assertions and subject tokens.
pub const DEFAULT_MAX_LIFETIME: &str = "5m";

#[derive(Debug, Clone)]
pub struct ChainingTarget {
    pub issuer: String,
    pub client_ids: BTreeMap<String, String>,
}

impl ChainingTarget {
    /// The client's id at the target server.
    pub fn client_id_for<'a>(&'a self, local: &'a str) -> &'a str {
        self.client_ids.get(local).map_or(local, String::as_str)
    }
}

/// The checked custody settings.
#[derive(Debug, Clone, Default)]
pub struct CustodySettings {
    pub max_delegation_depth: usize,
    pub impersonation_clients: BTreeSet<String>,
    /// The client each resource server acts as, by resource URI: it may exchange tokens issued
    /// for its resource (to call what lies behind it).
    pub resource_clients: BTreeMap<String, String>,
    pub trusted_issuers: Vec<TrustedIssuer>,
    pub chaining_targets: Vec<ChainingTarget>,
}

impl CustodySettings {
    pub fn trusted_issuer(&self, issuer: &str) -> Option<&TrustedIssuer> {
        self.trusted_issuers.iter().find(|t| t.issuer == issuer)
    }

    pub fn chaining_target(&self, issuer: &str) -> Option<&ChainingTarget> {
        self.chaining_targets.iter().find(|t| t.issuer == issuer)
    }
}

fn absolute_url(key: &str, value: &str, allow_http: bool) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(value).map_err(|_| invalid(key, format!("{value:?} is not an absolute URL")))?;
    if parsed.scheme() != "https" && !(allow_http && parsed.scheme() == "http") {
        return Err(invalid(key, format!("{value:?} must use https (http only on loopback, for local setups)")));
    }
    if parsed.fragment().is_some() {
        return Err(invalid(key, format!("{value:?} must not have a fragment")));
    }
    Ok(())
}

/// An issuer identifier on a loopback host may be plain http (it is only compared, not fetched);
/// fetched URLs need `registration.allow_private_networks` for that.
fn is_loopback(value: &str) -> bool {
    url::Url::parse(value).ok().is_some_and(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    })
}

/// Checks the custody sections against the resources' `client_id`s and the known clients.
pub fn check_custody(
    raw: &RawTokenExchange,
    trusted: &[RawTrustedIssuer],
    targets: &[RawChainingTarget],
    resource_clients: BTreeMap<String, String>,
    client_ids: &BTreeSet<String>,
    issuer: &str,
    allow_private_networks: bool,
) -> Result<CustodySettings, ConfigError> {
    if !(1..=16).contains(&raw.max_delegation_depth) {
        return Err(invalid("token_exchange.max_delegation_depth", "must be between 1 and 16"));
    }
    for (i, c) in raw.impersonation_clients.iter().enumerate() {
        if !client_ids.contains(c) {
            return Err(invalid(
                format!("token_exchange.impersonation_clients[{i}]"),
                format!("{c:?} is not a [[clients]] entry"),
            ));
        }
    }
    for (uri, c) in &resource_clients {
        if !client_ids.contains(c) {
            return Err(invalid("resources.client_id", format!("{c:?} (for {uri}) is not a [[clients]] entry")));
        }
    }
    let mut seen = BTreeSet::new();
    let trusted_issuers = trusted
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let key = |field: &str| format!("trusted_issuers[{i}].{field}");
            absolute_url(&key("issuer"), &t.issuer, is_loopback(&t.issuer))?;
            if t.issuer == issuer {
                return Err(invalid(key("issuer"), "is this server's own issuer; its tokens are trusted already"));
            }
            if !seen.insert(t.issuer.clone()) {
                return Err(invalid(key("issuer"), format!("{:?} is listed twice", t.issuer)));
            }
            let keys = match (&t.jwks, &t.jwks_uri) {
                (Some(_), Some(_)) => return Err(invalid(key("jwks"), "give jwks or jwks_uri, not both")),
                (None, None) => return Err(invalid(key("jwks"), "a trusted issuer needs jwks or jwks_uri")),
                (Some(set), None) => IssuerKeys::Inline(
                    mandate_core::assertion::parse_client_jwks(&set.to_string())
                        .map_err(|e| invalid(key("jwks"), e))?,
                ),
                (None, Some(uri)) => {
                    absolute_url(&key("jwks_uri"), uri, allow_private_networks)?;
                    IssuerKeys::Uri(uri.clone())
                }
            };
            let subjects = match t.subjects.as_deref().unwrap_or("qualified") {
                "qualified" => SubjectNamespace::Qualified,
                "local" => SubjectNamespace::Local,
                "mapped" => SubjectNamespace::Mapped,
                other => {
                    return Err(invalid(key("subjects"), format!("{other:?} is not qualified, local or mapped")));
                }
            };
            for (foreign, local) in &t.subject_map {
                if foreign.is_empty() || local.trim().is_empty() {
                    return Err(invalid(key("subject_map"), "subjects and usernames must not be empty"));
                }
            }
            if subjects == SubjectNamespace::Mapped && t.subject_map.is_empty() {
                return Err(invalid(key("subject_map"), "subjects = \"mapped\" needs at least one mapped subject"));
            }
            for (foreign, local) in &t.client_ids {
                if !client_ids.contains(local) {
                    return Err(invalid(
                        key("client_ids"),
                        format!("{local:?} (for the issuer's {foreign:?}) is not a [[clients]] entry"),
                    ));
                }
            }
            let max_lifetime = super::duration(
                &key("max_lifetime"),
                t.max_lifetime.as_deref().unwrap_or(DEFAULT_MAX_LIFETIME),
                std::time::Duration::from_secs(10),
                std::time::Duration::from_secs(24 * 3600),
            )?
            .as_secs() as i64;
            Ok(TrustedIssuer {
                issuer: t.issuer.clone(),
                keys,
                subjects,
                subject_map: t.subject_map.clone(),
                client_ids: t.client_ids.clone(),
                max_lifetime,
                untyped_grants: t.untyped_grants,
                accept_access_tokens: t.accept_access_tokens,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = BTreeSet::new();
    let chaining_targets = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let key = |field: &str| format!("chaining_targets[{i}].{field}");
            absolute_url(&key("issuer"), &t.issuer, is_loopback(&t.issuer))?;
            if t.issuer == issuer {
                return Err(invalid(key("issuer"), "is this server's own issuer; it does not redeem its own grants"));
            }
            if !seen.insert(t.issuer.clone()) {
                return Err(invalid(key("issuer"), format!("{:?} is listed twice", t.issuer)));
            }
            for local in t.client_ids.keys() {
                if !client_ids.contains(local) {
                    return Err(invalid(key("client_ids"), format!("{local:?} is not a [[clients]] entry")));
                }
            }
            Ok(ChainingTarget { issuer: t.issuer.clone(), client_ids: t.client_ids.clone() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CustodySettings {
        max_delegation_depth: raw.max_delegation_depth,
        impersonation_clients: raw.impersonation_clients.iter().cloned().collect(),
        resource_clients,
        trusted_issuers,
        chaining_targets,
    })
}

#[cfg(test)]
mod tests {
    use super::super::from_toml;
    use super::SubjectNamespace;

    const AGENT: &str =
        "[[clients]]\nclient_id = \"agent\"\nclient_secret = \"agent-secret-0123456789abcdefghijklmnopq\"\n";
    const JWKS: &str = r#"{ keys = [{ kty = "EC", crv = "P-256", x = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM" }] }"#;

    fn issuer(extra: &str) -> String {
        format!("{AGENT}[[trusted_issuers]]\nissuer = \"https://idp.example\"\njwks = {JWKS}\n{extra}\n")
    }

    #[test]
    fn trusted_issuer_namespaces_and_bounds_name_the_offending_key() {
        for (extra, key) in [
            ("subjects = \"shared\"", "trusted_issuers[0].subjects"),
            ("subjects = \"mapped\"", "trusted_issuers[0].subject_map"),
            ("subject_map = { \"x\" = \"\" }", "trusted_issuers[0].subject_map"),
            ("client_ids = { \"theirs\" = \"ghost\" }", "trusted_issuers[0].client_ids"),
            ("max_lifetime = \"1s\"", "trusted_issuers[0].max_lifetime"),
            ("max_lifetime = \"30d\"", "trusted_issuers[0].max_lifetime"),
            ("max_lifetime = \"soon\"", "trusted_issuers[0].max_lifetime"),
        ] {
            let e = from_toml(&issuer(extra)).unwrap_err().to_string();
            assert!(e.starts_with(key), "{extra}: {e}");
        }
        let defaults = from_toml(&issuer("")).unwrap();
        let t = defaults.custody.trusted_issuer("https://idp.example").unwrap();
        assert_eq!(
            (t.subjects, t.max_lifetime, t.untyped_grants, t.accept_access_tokens),
            (SubjectNamespace::Qualified, 300, false, false)
        );
        let set = from_toml(&issuer(
            "subjects = \"mapped\"\nsubject_map = { \"00u1\" = \"alice\" }\nclient_ids = { \"theirs\" = \"agent\" }\n\
             max_lifetime = \"1h\"\nuntyped_grants = true\naccept_access_tokens = true",
        ))
        .unwrap();
        let t = set.custody.trusted_issuer("https://idp.example").unwrap();
        assert_eq!(
            (t.subjects, t.max_lifetime, t.local_client("theirs"), t.local_client("agent")),
            (SubjectNamespace::Mapped, 3600, Some("agent"), None)
        );
        assert!(t.untyped_grants && t.accept_access_tokens);
    }
}
