//! Token lineage on PostgreSQL: one row per issued token, found by its `jti`, its
//! parents' or its grant.

use async_trait::async_trait;
use mandate_store::{IssuanceRecord, LineageStore, StoreResult, TokenRecord, batch};
use sqlx::QueryBuilder;

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

#[async_trait]
impl LineageStore for PgStore {
    async fn record_token(&self, r: &TokenRecord) -> StoreResult<()> {
        insert_lineage(&self.pool, r).await
    }

    async fn record_issuances(&self, batch: &[IssuanceRecord]) -> StoreResult<()> {
        // One transaction, one commit (one fsync) for the whole batch: the group commit of
        // issuances under load.
        let mut tx = self.pool.begin().await?;
        for chunk in batch::chunks(batch) {
            let mut audit = QueryBuilder::<sqlx::Postgres>::default();
            batch::push_audit_insert(&mut audit, chunk);
            audit.build().execute(&mut *tx).await?;
            let mut lineage = QueryBuilder::<sqlx::Postgres>::default();
            batch::push_lineage_insert(&mut lineage, chunk);
            lineage.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_token_record(&self, jti: &str) -> StoreResult<Option<TokenRecord>> {
        Ok(sqlx::query_as(concat!("SELECT ", columns!(), " FROM token_lineage WHERE jti = $1"))
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?)
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
