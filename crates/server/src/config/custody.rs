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

#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    pub issuer: String,
    pub keys: IssuerKeys,
}

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
            Ok(TrustedIssuer { issuer: t.issuer.clone(), keys })
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
