//! Writing audit events, and deleting them after `[audit] retention`. An issuance is returned only
//! after its audit row is committed; a failed write for a refusal is logged and does not change
//! the answer.

use std::sync::Arc;

use mandate_core::{AuditEvent, OAuthError};
use mandate_store::{IssuanceRecord, Store};
use tokio::sync::{mpsc, oneshot};

use crate::error::store_error;

pub async fn record_issuance(store: &dyn Store, event: &AuditEvent) -> Result<(), OAuthError> {
    store.append_audit(&event.clone().cleaned()).await.map_err(store_error)
}

/// An audit row whose failed write does not change the answer: refusals, sign-ins. It shares the
/// group commit of issuances, so a flood of bad requests costs a share of a commit each, not a
/// commit (an fsync on SQLite) each.
pub async fn record_event(state: &crate::state::AppState, event: AuditEvent) {
    let kind = event.kind.as_str();
    if let Err(e) = state.issuances.record(IssuanceRecord { event, lineage: None }).await {
        tracing::error!(event = kind, error = %e.description, "could not write an audit event");
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

/// Rows deleted per statement by the retention purge, so a long backlog never holds SQLite's
/// write lock (or a PostgreSQL transaction) for long.
const PURGE_CHUNK: u32 = 5_000;

/// `[audit] retention`: deletes audit rows older than the retention and the lineage rows of tokens
/// expired longer ago than that, in chunks, yielding to other writers between them. Returns the
/// rows deleted (audit, lineage); nothing without a retention.
pub async fn apply_retention(state: &crate::state::AppState) -> Result<(u64, u64), mandate_store::StoreError> {
    let Some(retention) = state.settings.audit_retention else { return Ok((0, 0)) };
    let before = state.now() - i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    let audit = in_chunks(|| state.store.purge_audit(before, PURGE_CHUNK)).await?;
    let lineage = in_chunks(|| state.store.purge_lineage(before, PURGE_CHUNK)).await?;
    Ok((audit, lineage))
}

/// Runs `purge` until it deletes less than a full chunk, letting other tasks in between; the total.
async fn in_chunks<F, Fut>(mut purge: F) -> Result<u64, mandate_store::StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, mandate_store::StoreError>>,
{
    let mut total = 0;
    loop {
        let n = purge().await?;
        total += n;
        if n < u64::from(PURGE_CHUNK) {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// Most issuances committed in one transaction.
const MAX_BATCH: usize = 256;

type Pending = (IssuanceRecord, oneshot::Sender<Result<(), OAuthError>>);

/// Group commit of issuances (and other audit events): each token's audit and lineage rows are
/// committed before it is answered, but issuances that arrive while a commit is in progress share
/// the next one. Under load that is one transaction (one fsync on SQLite) for many tokens; alone,
/// a request waits for exactly its own commit, with no added delay.
#[derive(Clone)]
pub struct IssuanceLog {
    queue: mpsc::Sender<Pending>,
}

impl IssuanceLog {
    /// Starts `writers` writers on the current runtime; they end when every handle is dropped.
    /// With more than one, a batch can start committing while the previous one waits for its
    /// fsync: worth it where commits run in parallel (PostgreSQL), not where one writer holds a
    /// lock (SQLite).
    pub fn start(store: Arc<dyn Store>, writers: usize) -> Self {
        let (queue, incoming) = mpsc::channel::<Pending>(4 * MAX_BATCH);
        let incoming = Arc::new(tokio::sync::Mutex::new(incoming));
        for _ in 0..writers.max(1) {
            let (store, incoming) = (store.clone(), incoming.clone());
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&incoming).await {
                    let (records, replies): (Vec<IssuanceRecord>, Vec<_>) = batch.into_iter().unzip();
                    metrics::histogram!("mandate_issuance_batch_size").record(records.len() as f64);
                    let started = std::time::Instant::now();
                    let result = store.record_issuances(&records).await.map_err(store_error);
                    metrics::histogram!("mandate_issuance_commit_seconds").record(started.elapsed().as_secs_f64());
                    if result.is_err() && records.len() > 1 {
                        // One bad record must not fail the others: each alone decides its answer.
                        metrics::counter!("mandate_issuance_batch_retries_total").increment(1);
                        for (record, reply) in records.iter().zip(replies) {
                            let alone = store.record_issuances(std::slice::from_ref(record)).await.map_err(store_error);
                            let _ = reply.send(alone);
                        }
                        continue;
                    }
                    for reply in replies {
                        let _ = reply.send(result.clone());
                    }
                }
            });
        }
        Self { queue }
    }

    /// Returns once `record` is committed (or the commit failed).
    pub async fn record(&self, mut record: IssuanceRecord) -> Result<(), OAuthError> {
        record.event = record.event.cleaned();
        let (reply, committed) = oneshot::channel();
        self.queue.send((record, reply)).await.map_err(|_| OAuthError::server_error())?;
        committed.await.map_err(|_| OAuthError::server_error())?
    }
}

/// Waits for one pending record, then takes whatever else is already queued (up to a batch);
/// `None` once every sender is gone.
async fn next_batch(incoming: &tokio::sync::Mutex<mpsc::Receiver<Pending>>) -> Option<Vec<Pending>> {
    let mut incoming = incoming.lock().await;
    let mut batch = vec![incoming.recv().await?];
    while batch.len() < MAX_BATCH {
        match incoming.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    Some(batch)
}
