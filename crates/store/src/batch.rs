//! Multi-row INSERTs for a group commit of issuances, shared by both backends: a batch of n
//! issuances is written with a few statements per table instead of n, which is what keeps a
//! commit short when hundreds of tokens share it.

use sqlx::{Database, Encode, QueryBuilder, Type};

use mandate_core::AuditEvent;

use crate::TokenRecord;

/// The most rows in one INSERT: 12 columns × 128 rows stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters.
const MAX_ROWS: usize = 128;

/// Splits rows into chunks whose lengths are powers of two (128, 64, … 1), so each connection's
/// statement cache sees at most eight shapes of each INSERT rather than one per batch size.
pub fn chunks<T>(batch: &[T]) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut rest = batch;
    while !rest.is_empty() {
        let size = MAX_ROWS.min(1 << rest.len().ilog2());
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// Appends `INSERT INTO audit_log …` for every event of `chunk` to `insert`.
pub fn push_audit_insert<'a, DB>(insert: &mut QueryBuilder<DB>, chunk: &[&'a AuditEvent])
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
{
    insert.push(
        "INSERT INTO audit_log (at, event, grant_type, client_id, subject, resource, scope, outcome, jti, parent_jti, detail) ",
    );
    insert.push_values(chunk, |mut row, e| {
        row.push_bind(e.at)
            .push_bind(e.kind.as_str())
            .push_bind(e.grant_type.as_deref())
            .push_bind(e.client_id.as_deref())
            .push_bind(e.subject.as_deref())
            .push_bind(e.resource.as_deref())
            .push_bind(e.scope.as_deref())
            .push_bind(e.outcome.as_str())
            .push_bind(e.jti.as_deref())
            .push_bind(e.parent_jti.as_deref())
            .push_bind(e.detail.as_deref());
    });
}

/// Appends `INSERT INTO token_lineage …` for every token of `chunk` to `insert`; a `jti` already
/// on record is kept.
pub fn push_lineage_insert<'a, DB>(insert: &mut QueryBuilder<DB>, chunk: &[&'a TokenRecord])
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
{
    insert.push(
        "INSERT INTO token_lineage (jti, kind, parent_jti, actor_jti, grant_id, subject, client_id, audience, scope, act, issued_at, expires_at) ",
    );
    insert.push_values(chunk, |mut row, r| {
        row.push_bind(r.jti.as_str())
            .push_bind(r.kind.as_str())
            .push_bind(r.parent_jti.as_deref())
            .push_bind(r.actor_jti.as_deref())
            .push_bind(r.grant_id.as_deref())
            .push_bind(r.subject.as_str())
            .push_bind(r.client_id.as_str())
            .push_bind(r.audience.as_str())
            .push_bind(r.scope.as_deref())
            .push_bind(r.act.as_deref())
            .push_bind(r.issued_at)
            .push_bind(r.expires_at);
    });
    insert.push(" ON CONFLICT (jti) DO NOTHING");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_in_order_and_cover_the_batch() {
        for n in [0, 1, 2, 3, 7, 128, 129, 255, 256, 300] {
            let batch: Vec<usize> = (0..n).collect();
            let chunks = chunks(&batch);
            assert!(chunks.iter().all(|c| c.len().is_power_of_two() && c.len() <= MAX_ROWS), "{n}");
            assert_eq!(chunks.concat(), batch, "{n}");
        }
        let batch: Vec<usize> = (0..13).collect();
        assert_eq!(chunks(&batch).iter().map(|c| c.len()).collect::<Vec<_>>(), [8, 4, 1]);
    }
}
