//! Token lineage on PostgreSQL: one row per issued token, found by its `jti`, its
//! parents' or its grant.

use async_trait::async_trait;
use mandate_core::{AuditEvent, UnixTime};
use mandate_store::{IssuanceRecord, LineageStore, StoreResult, TokenRecord};

use crate::PgStore;

macro_rules! columns {
    () => {
        "jti, kind, parent_jti, actor_jti, grant_id, subject, client_id, audience, scope, act, issued_at, expires_at"
    };
}

async fn insert_lineage<'e, E: sqlx::Executor<'e, Database = sqlx::Postgres>>(
    executor: E,
    r: &TokenRecord,
) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO token_lineage (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (jti) DO NOTHING"
    ))
    .bind(&r.jti)
    .bind(&r.kind)
    .bind(&r.parent_jti)
    .bind(&r.actor_jti)
    .bind(&r.grant_id)
    .bind(&r.subject)
    .bind(&r.client_id)
    .bind(&r.audience)
    .bind(&r.scope)
    .bind(&r.act)
    .bind(r.issued_at)
    .bind(r.expires_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// A batch of audit rows and lineage rows in one statement (see `record_issuances`).
const RECORD_ISSUANCES: &str = "
WITH audit AS (
    INSERT INTO audit_log (at, event, grant_type, client_id, subject, resource, scope, outcome, jti, parent_jti, detail)
    SELECT at, event, grant_type, client_id, subject, resource, scope, outcome, jti, parent_jti, detail
    FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[],
                $9::TEXT[], $10::TEXT[], $11::TEXT[])
         WITH ORDINALITY AS e(at, event, grant_type, client_id, subject, resource, scope, outcome, jti, parent_jti, detail, n)
    ORDER BY n
), lineage AS (
    INSERT INTO token_lineage (jti, kind, parent_jti, actor_jti, grant_id, subject, client_id, audience, scope, act, issued_at, expires_at)
    SELECT * FROM UNNEST($12::TEXT[], $13::TEXT[], $14::TEXT[], $15::TEXT[], $16::TEXT[], $17::TEXT[], $18::TEXT[],
                         $19::TEXT[], $20::TEXT[], $21::TEXT[], $22::BIGINT[], $23::BIGINT[])
    ON CONFLICT (jti) DO NOTHING
)
SELECT 1";

/// One column of a batch, as the array bound to its UNNEST parameter.
fn each<'a, T, V>(rows: &[&'a T], column: impl Fn(&'a T) -> V) -> Vec<V> {
    rows.iter().map(|row| column(row)).collect()
}

#[async_trait]
impl LineageStore for PgStore {
    async fn record_token(&self, r: &TokenRecord) -> StoreResult<()> {
        insert_lineage(&self.pool, r).await
    }

    async fn record_issuances(&self, batch: &[IssuanceRecord]) -> StoreResult<()> {
        // The group commit of issuances under load: the whole batch in one statement, so one
        // round trip and one commit (one fsync), atomic without BEGIN and COMMIT. Columns go as
        // arrays, so the statement has one shape (prepared once per connection) for any batch
        // size; WITH ORDINALITY keeps the audit rows in the batch's order.
        if batch.is_empty() {
            return Ok(());
        }
        let events: Vec<&AuditEvent> = batch.iter().map(|r| &r.event).collect();
        let tokens: Vec<&TokenRecord> = batch.iter().filter_map(|r| r.lineage.as_ref()).collect();
        sqlx::query(RECORD_ISSUANCES)
            .bind(each(&events, |e| e.at))
            .bind(each(&events, |e| e.kind.as_str()))
            .bind(each(&events, |e| e.grant_type.as_deref()))
            .bind(each(&events, |e| e.client_id.as_deref()))
            .bind(each(&events, |e| e.subject.as_deref()))
            .bind(each(&events, |e| e.resource.as_deref()))
            .bind(each(&events, |e| e.scope.as_deref()))
            .bind(each(&events, |e| e.outcome.as_str()))
            .bind(each(&events, |e| e.jti.as_deref()))
            .bind(each(&events, |e| e.parent_jti.as_deref()))
            .bind(each(&events, |e| e.detail.as_deref()))
            .bind(each(&tokens, |t| t.jti.as_str()))
            .bind(each(&tokens, |t| t.kind.as_str()))
            .bind(each(&tokens, |t| t.parent_jti.as_deref()))
            .bind(each(&tokens, |t| t.actor_jti.as_deref()))
            .bind(each(&tokens, |t| t.grant_id.as_deref()))
            .bind(each(&tokens, |t| t.subject.as_str()))
            .bind(each(&tokens, |t| t.client_id.as_str()))
            .bind(each(&tokens, |t| t.audience.as_str()))
            .bind(each(&tokens, |t| t.scope.as_deref()))
            .bind(each(&tokens, |t| t.act.as_deref()))
            .bind(each(&tokens, |t| t.issued_at))
            .bind(each(&tokens, |t| t.expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_token_record(&self, jti: &str) -> StoreResult<Option<TokenRecord>> {
        Ok(sqlx::query_as(concat!("SELECT ", columns!(), " FROM token_lineage WHERE jti = $1"))
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn purge_lineage(&self, before: UnixTime, limit: u32) -> StoreResult<u64> {
        // Found through the BRIN index on expires_at (migration 0012): rows arrive in nearly
        // increasing expiry, which is what BRIN summarises, at almost no cost per insert.
        let done = sqlx::query(
            "DELETE FROM token_lineage WHERE ctid IN
             (SELECT ctid FROM token_lineage WHERE expires_at < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn token_children(&self, jti: &str) -> StoreResult<Vec<TokenRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM token_lineage WHERE parent_jti = $1 OR actor_jti = $2 ORDER BY issued_at, jti"
        ))
        .bind(jti)
        .bind(jti)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn tokens_of_grant(&self, grant_id: &str) -> StoreResult<Vec<TokenRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM token_lineage WHERE grant_id = $1 ORDER BY issued_at, jti"
        ))
        .bind(grant_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn recent_tokens_of_subject(&self, subject: &str, limit: u32) -> StoreResult<Vec<TokenRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM token_lineage WHERE subject = $1 ORDER BY issued_at DESC, jti LIMIT $2"
        ))
        .bind(subject)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
