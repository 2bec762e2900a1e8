//! The JWT bearer grant (RFC 7523 §2.1) for assertions of `[[trusted_issuers]]`: identity
//! assertion grants (ID-JAG, `typ: oauth-id-jag+jwt`) from an enterprise identity provider, and
//! identity-chaining authorization grants (`typ: JWT`) from another trust domain's authorization
//! server.
//!
//! Checks (RFC 7521 §5.2, the ID-JAG profile of MCP): a trusted issuer and an accepted algorithm;
//! `aud` this server's issuer, alone; `client_id` equal to the authenticated client (required for
//! ID-JAGs); `jti` used once across every instance until `exp`; `resource` and the assertion's
//! `resource` naming the same registered resource; scopes the intersection of what was asked, what
//! the assertion grants, and what the client and resource allow. No refresh token: the client
//! presents a new assertion.

use async_trait::async_trait;
use mandate_core::{Actor, OAuthError, ScopeSet};
use serde_json::Value;

use super::{GrantHandler, Issued, lookup_resource, resolve_resource};
use crate::client_auth::AuthenticatedClient;
use crate::error::store_error;
use crate::form::OAuthForm;
use crate::minting::{Issuance, mint_access_token};
use crate::state::AppState;

pub struct JwtBearer;

#[async_trait]
impl GrantHandler for JwtBearer {
    async fn handle(
        &self,
        state: &AppState,
        client: &AuthenticatedClient,
        form: &OAuthForm,
    ) -> Result<Issued, OAuthError> {
        let assertion = form.require("assertion")?;
        let jwt = crate::trusted::verify(state, assertion, &[Some(super::chaining::ID_JAG_TYP), Some("jwt"), None])
            .await
            .map_err(|e| OAuthError::invalid_grant(format!("the assertion is not acceptable: {e}")))?;
        let is_id_jag = jwt.typ.as_deref() == Some(super::chaining::ID_JAG_TYP);
        let c = &jwt.claims;
        let text = |k: &str| c.get(k).and_then(Value::as_str);

        let ours = state.settings.issuer.as_str();
        let audience_ok = match c.get("aud") {
            Some(Value::String(aud)) => aud == ours,
            Some(Value::Array(auds)) => auds.len() == 1 && auds[0].as_str() == Some(ours),
            _ => false,
        };
        if !audience_ok {
            return Err(OAuthError::invalid_grant(format!("the assertion's aud must be {ours}, alone")));
        }
        match text("client_id") {
            Some(id) if id != client.client_id => {
                return Err(OAuthError::invalid_grant(format!(
                    "the assertion was issued for client {id}, not this one"
                )));
            }
            None if is_id_jag => return Err(OAuthError::invalid_grant("the identity assertion names no client_id")),
            _ => {}
        }
        let subject = text("sub").ok_or_else(|| OAuthError::invalid_grant("the assertion names no subject"))?;
        let jti = text("jti").ok_or_else(|| OAuthError::invalid_grant("the assertion has no jti"))?;

        // The assertion's resource and the request's must name the same resource.
        let claimed: Vec<&str> = match c.get("resource") {
            Some(Value::String(r)) => vec![r.as_str()],
            Some(Value::Array(rs)) => rs.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let resource = match (form.all("resource"), claimed.as_slice()) {
            ([], [one]) => lookup_resource(state, client, one).await?,
            ([], _) => {
                return Err(OAuthError::invalid_target("name the resource: the assertion does not name exactly one"));
            }
            ([asked], claimed) if !claimed.is_empty() && !claimed.contains(&asked.as_str()) => {
                return Err(OAuthError::invalid_grant(format!("the assertion is not for resource {asked}")));
            }
            _ => resolve_resource(state, client, form).await?,
        };

        let offered = resource.scopes.intersection(&client.scopes);
        let granted =
            text("scope").map(ScopeSet::parse).transpose().map_err(|e| OAuthError::invalid_grant(e.to_string()))?;
        let requested =
            form.get("scope").map(ScopeSet::parse).transpose().map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
        let mut scope = offered;
        if let Some(granted) = &granted {
            scope = scope.intersection(granted);
        }
        if let Some(requested) = &requested {
            scope = scope.intersection(requested);
        }
        if scope.is_empty() {
            return Err(OAuthError::invalid_scope(format!(
                "no scope is left on {} once the request, the assertion and this client's allowance meet",
                resource.uri
            )));
        }
        // Used once, across every instance, and only by a request that passed every check.
        let exp = c.get("exp").and_then(Value::as_i64).unwrap_or_default();
        let fresh = state
            .store
            .record_once(&format!("jwt-grant:{}:{jti}", jwt.issuer), exp, state.now())
            .await
            .map_err(store_error)?;
        if !fresh {
            return Err(OAuthError::invalid_grant("the assertion has been used already"));
        }
        let act = c.get("act").and_then(|a| serde_json::from_value::<Actor>(a.clone()).ok());
        let minted = mint_access_token(
            state,
            &Issuance {
                subject,
                client_id: &client.client_id,
                audience: &resource.uri,
                scope: &scope,
                attestation: client.attestation.as_ref().map(|a| &a.claim),
                act: act.as_ref(),
                not_after: None,
            },
        )?;
        let kind = if is_id_jag { "identity assertion" } else { "authorization grant" };
        Ok(Issued {
            parent_jti: Some(jti.to_owned()),
            audit_detail: Some(format!("{kind} from {} for {subject}", jwt.issuer)),
            ..Issued::access_token(minted, scope, resource.uri)
        })
    }
}
