//! The challenge endpoint (draft-ietf-oauth-attestation-based-client-auth §6.1): `POST` gives a
//! fresh, single-use `attestation_challenge` for the next client attestation PoP. Only served
//! while some attester is trusted.

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::no_store_json;
use crate::client_auth::attestation::issue_challenge;
use crate::error::Failure;
use crate::state::AppState;

pub async fn handle(State(state): State<AppState>) -> Result<Response, Failure> {
    let challenge = issue_challenge(&state).await?;
    // §6.1: the response must not be cached.
    Ok(no_store_json(json!({ "attestation_challenge": challenge })))
}
