//! Token lineage on SQLite: one row per issued token, found by its `jti`, its
//! parents' or its grant.

use async_trait::async_trait;
use mandate_core::{AuditEvent, UnixTime};
use mandate_store::{IssuanceRecord, LineageStore, StoreResult, TokenRecord, batch};
use sqlx::QueryBuilder;

use crate::SqliteStore;

macro_rules! columns {
    () => {
        "jti, kind, parent_jti, actor_jti, grant_id, subject, client_id, audience, scope, act, issued_at, expires_at"
    };
}

async fn insert_lineage<'e, E: sqlx::Executor<'e, Database = sqlx::Sqlite>>(
    executor: E,
    r: &TokenRecord,
) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO token_lineage (",
        columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (jti) DO NOTHING"
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

#[async_trait]
impl LineageStore for SqliteStore {
    async fn record_token(&self, r: &TokenRecord) -> StoreResult<()> {
        insert_lineage(&self.pool, r).await
    }

    async fn record_issuances(&self, batch: &[IssuanceRecord]) -> StoreResult<()> {
        // One transaction, one commit (one fsync) for the whole batch: the group commit of
        // issuances under load. Sent as one script, so the commit costs one trip to the
        // connection's thread rather than one per statement.
        let events: Vec<&AuditEvent> = batch.iter().map(|r| &r.event).collect();
        let tokens: Vec<&TokenRecord> = batch.iter().filter_map(|r| r.lineage.as_ref()).collect();
        let mut script = QueryBuilder::<sqlx::Sqlite>::new("BEGIN IMMEDIATE; ");
        for chunk in batch::chunks(&events) {
            batch::push_audit_insert(&mut script, chunk);
            script.push("; ");
        }
        for chunk in batch::chunks(&tokens) {
            batch::push_lineage_insert(&mut script, chunk);
            script.push("; ");
        }
        script.push("COMMIT");
        let mut conn = self.issuances.acquire().await?;
        if let Err(e) = script.build().execute(&mut *conn).await {
            // Whatever failed, leave no transaction open on the connection.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(e.into());
        }
        Ok(())
    }

    async fn get_token_record(&self, jti: &str) -> StoreResult<Option<TokenRecord>> {
        Ok(sqlx::query_as(concat!("SELECT ", columns!(), " FROM token_lineage WHERE jti = ?"))
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn purge_lineage(&self, before: UnixTime, limit: u32) -> StoreResult<u64> {
        // Rowids follow insertion, and expiry nearly does: the expired rows are among the oldest
        // `limit`, found without an index on expires_at and without reading the whole table.
        let done = sqlx::query(
            "DELETE FROM token_lineage WHERE rowid IN
             (SELECT rowid FROM token_lineage ORDER BY rowid LIMIT ?) AND expires_at < ?",
        )
        .bind(i64::from(limit))
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn token_children(&self, jti: &str) -> StoreResult<Vec<TokenRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM token_lineage WHERE parent_jti = ? OR actor_jti = ? ORDER BY issued_at, jti"
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
            " FROM token_lineage WHERE grant_id = ? ORDER BY issued_at, jti"
        ))
        .bind(grant_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn recent_tokens_of_subject(&self, subject: &str, limit: u32) -> StoreResult<Vec<TokenRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM token_lineage WHERE subject = ? ORDER BY issued_at DESC, jti LIMIT ?"
        ))
        .bind(subject)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
