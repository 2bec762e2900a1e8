//! `/jwks.json`: the public keys of every published signing key, with `kid`, `use` and `alg`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mandate_core::jose::public_jwks;

use crate::state::AppState;

pub async fn handle(State(state): State<AppState>) -> Response {
    let keys = state.keyring.current();
    let mut response = axum::Json(public_jwks(&keys.published)).into_response();
    // Short enough that verifiers see a rotation quickly; they also refetch on an unknown kid.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    response
}
