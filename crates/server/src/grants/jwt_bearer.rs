//! The JWT bearer grant (RFC 7523 §2.1) for assertions of `[[trusted_issuers]]`: identity
//! assertion grants (ID-JAG, `typ: oauth-id-jag+jwt`) from an enterprise identity provider, and
//! identity-chaining authorization grants (`typ: JWT`) from another trust domain's authorization
//! server.
//!
//! Checks (RFC 7521 §5.2, the ID-JAG profile of MCP), the shared ones in `trusted.rs`: a trusted
//! issuer, an accepted algorithm and an explicit profile; `aud` this server's issuer, alone;
//! `exp` within the issuer's `max_lifetime`; `client_id` (the client's id here, required by both
//! profiles) equal to the authenticated client; `jti` used once per issuer across every instance
//! until `exp`; `resource` and the assertion's `resource` naming the same registered resource;
//! scopes the intersection of what was asked, what the assertion grants, and what the client and
//! resource allow. The issuer's `sub` becomes a subject of this server only as configured
//! (qualified, local or mapped); its `act` chain is kept with every actor marked as the issuer's,
//! the redeeming client outermost, within `max_delegation_depth`. No refresh token: the client
//! presents a new assertion.

use async_trait::async_trait;
use mandate_core::{Actor, OAuthError, ScopeSet};

use super::{GrantHandler, Issued, lookup_resource, resolve_resource};
use crate::client_auth::AuthenticatedClient;
use crate::form::OAuthForm;
use crate::minting::{Issuance, mint_access_token};
use crate::state::AppState;
use crate::trusted::{self, Profile, Use};

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
        let refused = |e: String| OAuthError::invalid_grant(format!("the assertion is not acceptable: {e}"));
        let jwt = trusted::verify(state, assertion, Use::Assertion).await.map_err(refused)?;
        let g = &jwt.grant;
        // draft-ietf-oauth-identity-assertion-authz-grant §3: iat is required in an ID-JAG.
        if jwt.profile == Profile::IdJag && jwt.claims.get("iat").and_then(serde_json::Value::as_i64).is_none() {
            return Err(OAuthError::invalid_grant("the identity assertion has no iat"));
        }
        match g.client_id.as_deref() {
            Some(id) if id == client.client_id => {}
            Some(id) => {
                return Err(OAuthError::invalid_grant(format!(
                    "the assertion was issued for client {id}, not this one"
                )));
            }
            None => {
                return Err(OAuthError::invalid_grant(
                    "the assertion names no client_id; a grant must name the client that may redeem it",
                ));
            }
        }
        let subject = trusted::local_subject(state, jwt.trusted, &g.sub).await.map_err(refused)?;

        // The assertion's resource and the request's must name the same resource.
        let claimed: Vec<&str> = g.resources.iter().map(String::as_str).collect();
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
        let granted = g
            .scope
            .as_deref()
            .map(ScopeSet::parse)
            .transpose()
            .map_err(|e| OAuthError::invalid_grant(e.to_string()))?;
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

        // RFC 8693 §4.1: the redeeming client acts now, after the issuer's actors (marked as its).
        let prior = trusted::foreign_chain(state, jwt.trusted, jwt.claims.get("act")).map_err(refused)?;
        let act = prior.map(|chain| Actor::after(Actor::new(client.client_id.clone(), None), Some(chain)));
        if let Some(act) = &act {
            let limit = state.settings.custody.max_delegation_depth;
            if act.depth() > limit {
                return Err(OAuthError::invalid_grant(format!(
                    "the delegation chain would be {} actors long ({}); the limit is {limit}",
                    act.depth(),
                    act.chain().join(" ← ")
                )));
            }
        }

        // Used once per issuer, across every instance, and only by a request that passed every check.
        if !trusted::consume(state, &jwt.trusted.issuer, &g.jti, g.exp).await? {
            return Err(OAuthError::invalid_grant("the assertion has been used already"));
        }
        let minted = mint_access_token(
            state,
            &Issuance {
                subject: &subject,
                client_id: &client.client_id,
                audience: &resource.uri,
                scope: &scope,
                attestation: client.attestation.as_ref().map(|a| &a.claim),
                act: act.as_ref(),
                not_after: None,
            },
        )?;
        let kind = if jwt.profile == Profile::IdJag { "identity assertion" } else { "authorization grant" };
        Ok(Issued {
            // The issuer's jti, qualified: it can never pass for (and hang under) a token of ours.
            parent_jti: Some(mandate_core::act::foreign_name(&jwt.trusted.issuer, &g.jti)),
            audit_detail: Some(format!("{kind} from {} for {subject}", jwt.trusted.issuer)),
            ..Issued::access_token(minted, scope, resource.uri)
        })
    }
}
