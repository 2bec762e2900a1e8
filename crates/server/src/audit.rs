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
