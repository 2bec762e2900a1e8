//! Writing audit events. An issuance is returned only after its audit row is committed; a failed
//! write for a refusal is logged and does not change the answer.

use mandate_core::{AuditEvent, OAuthError};
use mandate_store::Store;

use crate::error::store_error;

pub async fn record_issuance(store: &dyn Store, event: &AuditEvent) -> Result<(), OAuthError> {
    store.append_audit(event).await.map_err(store_error)
}

pub async fn record_refusal(store: &dyn Store, event: &AuditEvent) {
    if let Err(e) = store.append_audit(event).await {
        tracing::error!(error = %e, "could not write audit event for a refusal");
    }
}

/// Revokes a grant and everything issued from it, on record before the caller answers.
pub async fn revoke_grant(
    state: &crate::state::AppState,
    grant_id: &str,
    client_id: &str,
    reason: &str,
) -> Result<(), OAuthError> {
    let now = state.now();
    let was_live = state.store.revoke_grant(grant_id, now).await.map_err(store_error)?;
    let mut event = AuditEvent::new(now, mandate_core::AuditKind::GrantRevoked, "ok");
    event.client_id = Some(client_id.to_owned());
    event.jti = Some(format!("grant:{grant_id}"));
    event.detail = Some(reason.to_owned());
    record_issuance(state.store.as_ref(), &event).await?;
    tracing::warn!(client_id, was_live, reason, "grant revoked with every token issued from it");
    Ok(())
}
