//! Authorization server metadata (RFC 8414) and OpenID Connect discovery, the same document at
//! every well-known form (specs AS-1), listing exactly what this server supports.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mandate_core::{TokenEndpointAuthMethod, oidc};
use serde_json::{Value, json};

use crate::error::Failure;
use crate::state::AppState;

pub async fn handle(State(state): State<AppState>) -> Result<Response, Failure> {
    Ok(axum::Json(metadata(&state).await?).into_response())
}

pub async fn metadata(state: &AppState) -> Result<Value, Failure> {
    let issuer = &state.settings.issuer;
    let mut scopes: Vec<String> = state.store.list_resources().await?.iter().flat_map(|r| r.scopes.to_vec()).collect();
    scopes.sort();
    scopes.dedup();
    scopes.extend(oidc::SCOPES.iter().map(|s| (*s).to_owned()));
    scopes.sort();
    scopes.dedup();
    // Algorithms accepted in private_key_jwt assertions, named as JOSE names them.
    let assertion_algs: Vec<String> = mandate_core::assertion::ALGORITHMS.iter().map(|a| format!("{a:?}")).collect();
    let attestation = &state.settings.attestation;
    // Attestation is offered only while some attester is trusted.
    let auth_methods: Vec<&str> = TokenEndpointAuthMethod::ALL
        .iter()
        .filter(|m| attestation.enabled() || **m != TokenEndpointAuthMethod::AttestJwtClientAuth)
        .map(|m| m.as_str())
        .collect();
    // Introspection needs a confidential client: no `none` there.
    let confidential: Vec<&str> = auth_methods.iter().copied().filter(|m| *m != "none").collect();
    let mut document = json!({
        "issuer": issuer.as_str(),
        "authorization_endpoint": issuer.endpoint("/authorize"),
        "pushed_authorization_request_endpoint": issuer.endpoint("/par"),
        "require_pushed_authorization_requests": false,
        "token_endpoint": issuer.endpoint("/token"),
        "userinfo_endpoint": issuer.endpoint("/userinfo"),
        "end_session_endpoint": issuer.endpoint("/logout"),
        "jwks_uri": issuer.endpoint("/jwks.json"),
        "introspection_endpoint": issuer.endpoint("/introspect"),
        "revocation_endpoint": issuer.endpoint("/revoke"),
        "grant_types_supported": grant_types_supported(state),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": confidential,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        // RFC 8414 §2: required once private_key_jwt is offered.
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "scopes_supported": scopes,
        // MCP authorization: S256 must be listed in both the OAuth and the OpenID documents.
        "code_challenge_methods_supported": ["S256"],
        // RFC 9207: `iss` in every authorization response, errors included.
        "authorization_response_iss_parameter_supported": true,
        // MCP 2026-07-28: URL client ids whose metadata document is the registration.
        "client_id_metadata_document_supported": state.settings.registration.metadata_documents,
        // draft-richer-oauth-pushed-client-registration-00 (experimental, off by default).
        "pushed_client_registration_supported": state.settings.registration.pushed,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [state.keyring.current().active.alg.as_str()],
        "claims_supported": ["iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "at_hash", "email", "email_verified", "preferred_username"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    let custody = &state.settings.custody;
    if !custody.chaining_targets.is_empty() {
        // As identity provider and as the source of identity-chaining grants.
        document["identity_chaining_requested_token_types_supported"] =
            json!([crate::grants::presented::ID_JAG, crate::grants::presented::JWT]);
    }
    if !custody.trusted_issuers.is_empty() {
        // As resource authorization server: ID-JAGs redeemed with the jwt-bearer grant. The
        // trusted issuers themselves are not revealed.
        document["authorization_grant_profiles_supported"] = json!(["urn:ietf:params:oauth:grant-profile:id-jag"]);
    }
    if state.settings.registration.dynamic {
        document["registration_endpoint"] = json!(issuer.endpoint("/register"));
    }
    if attestation.enabled() {
        // draft-ietf-oauth-attestation-based-client-auth §10; `none` in the PoP methods: a client
        // may leave the attestation out (it is required only of attest_jwt_client_auth clients).
        let algs: Vec<String> = mandate_core::attestation::ALGORITHMS.iter().map(|a| format!("{a:?}")).collect();
        document["challenge_endpoint"] = json!(issuer.endpoint(crate::app::CHALLENGE_PATH));
        document["client_attestation_signing_alg_values_supported"] = json!(algs);
        document["client_attestation_pop_signing_alg_values_supported"] = json!(algs);
        document["client_attestation_pop_methods_supported"] = json!([mandate_core::attestation::POP_METHOD, "none"]);
    }
    Ok(document)
}

/// Every grant the server implements, but the JWT bearer grant only when some issuer is trusted
/// for it.
fn grant_types_supported(state: &AppState) -> Vec<&'static str> {
    let jwt_bearer = mandate_core::GrantType::JwtBearer.as_str();
    let offered = !state.settings.custody.trusted_issuers.is_empty();
    state.grants.supported().into_iter().filter(|g| *g != jwt_bearer || offered).collect()
}
