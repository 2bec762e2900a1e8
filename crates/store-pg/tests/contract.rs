//! The storage contract on PostgreSQL, each check on a fresh database.

async fn fresh() -> mandate_store_pg::PgStore {
    let url = mandate_store_pg::testing::fresh_database().await;
    mandate_store_pg::PgStore::open(&url, Default::default()).await.unwrap()
}

mandate_store::contract_tests!(fresh());
