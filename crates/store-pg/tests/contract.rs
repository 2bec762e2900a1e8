//! The storage contract on PostgreSQL, each check on a fresh database.

async fn fresh() -> mandate_store_pg::PgStore {
    let url = mandate_store_pg::testing::fresh_database().await;
    mandate_store_pg::PgStore::open(&url, Default::default()).await.unwrap()
}

mandate_store::contract_tests!(fresh());

/// Two instances (two pools) on one database: single-use consumption holds between them.
#[tokio::test]
async fn racing_redemptions_across_instances() {
    let url = mandate_store_pg::testing::fresh_database().await;
    let a = mandate_store_pg::PgStore::open(&url, Default::default()).await.unwrap();
    let b = mandate_store_pg::PgStore::open(&url, Default::default()).await.unwrap();
    mandate_store::contract::racing_redemptions_across_instances(&a, &b).await;
}

/// Two instances on one database: a client assertion's `jti` is recorded by one of them only.
#[tokio::test]
async fn racing_jti_records_across_instances() {
    let url = mandate_store_pg::testing::fresh_database().await;
    let a = mandate_store_pg::PgStore::open(&url, Default::default()).await.unwrap();
    let b = mandate_store_pg::PgStore::open(&url, Default::default()).await.unwrap();
    mandate_store::contract::racing_jti_records_across_instances(&a, &b).await;
}

/// Two instances on one database: an attestation challenge is taken by one of them only.
#[tokio::test]
async fn racing_challenge_takes_across_instances() {
    let url = mandate_store_pg::testing::fresh_database().await;
    let a = mandate_store_pg::PgStore::open(&url, Default::default()).await.unwrap();
    let b = mandate_store_pg::PgStore::open(&url, Default::default()).await.unwrap();
    mandate_store::contract::racing_challenge_takes_across_instances(&a, &b).await;
}
