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

/// A batch that fails part-way writes nothing, and the next one commits.
#[tokio::test]
async fn a_failed_issuance_batch_writes_nothing_and_the_next_commits() {
    let url = mandate_store_pg::testing::fresh_database().await;
    let store = mandate_store_pg::PgStore::open(&url, Default::default()).await.unwrap();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'poisoned for the test'; END $$;
         CREATE TRIGGER poison BEFORE INSERT ON token_lineage FOR EACH ROW
         WHEN (NEW.subject = 'poison') EXECUTE FUNCTION poison();",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    mandate_store::contract::a_failed_issuance_batch_writes_nothing(&store).await;
}

/// Two instances on one database: throttle takes never pass the limit between them.
#[tokio::test]
async fn racing_event_takes_across_instances() {
    let url = mandate_store_pg::testing::fresh_database().await;
    let a = mandate_store_pg::PgStore::open(&url, Default::default()).await.unwrap();
    let b = mandate_store_pg::PgStore::open(&url, Default::default()).await.unwrap();
    mandate_store::contract::racing_event_takes_across_instances(&a, &b).await;
}
