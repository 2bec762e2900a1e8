//! The storage contract on SQLite, each check on a fresh database file.

async fn fresh() -> mandate_store_sqlite::SqliteStore {
    let dir = tempfile::tempdir().unwrap().keep();
    let url = format!("sqlite://{}/mandate.db", dir.display());
    mandate_store_sqlite::SqliteStore::open(&url).await.unwrap()
}

mandate_store::contract_tests!(fresh());

/// Two instances (two pools) on one database file: single-use consumption holds between them.
#[tokio::test]
async fn racing_redemptions_across_instances() {
    let dir = tempfile::tempdir().unwrap().keep();
    let url = format!("sqlite://{}/mandate.db", dir.display());
    let a = mandate_store_sqlite::SqliteStore::open(&url).await.unwrap();
    let b = mandate_store_sqlite::SqliteStore::open(&url).await.unwrap();
    mandate_store::contract::racing_redemptions_across_instances(&a, &b).await;
}

/// Two instances on one database: a client assertion's `jti` is recorded by one of them only.
#[tokio::test]
async fn racing_jti_records_across_instances() {
    let dir = tempfile::tempdir().unwrap().keep();
    let url = format!("sqlite://{}/mandate.db", dir.display());
    let a = mandate_store_sqlite::SqliteStore::open(&url).await.unwrap();
    let b = mandate_store_sqlite::SqliteStore::open(&url).await.unwrap();
    mandate_store::contract::racing_jti_records_across_instances(&a, &b).await;
}

/// Two instances on one database: an attestation challenge is taken by one of them only.
#[tokio::test]
async fn racing_challenge_takes_across_instances() {
    let dir = tempfile::tempdir().unwrap().keep();
    let url = format!("sqlite://{}/mandate.db", dir.display());
    let a = mandate_store_sqlite::SqliteStore::open(&url).await.unwrap();
    let b = mandate_store_sqlite::SqliteStore::open(&url).await.unwrap();
    mandate_store::contract::racing_challenge_takes_across_instances(&a, &b).await;
}

/// A batch that fails part-way writes nothing, and leaves no transaction open behind it.
#[tokio::test]
async fn a_failed_issuance_batch_writes_nothing_and_the_next_commits() {
    let dir = tempfile::tempdir().unwrap().keep();
    let url = format!("sqlite://{}/mandate.db", dir.display());
    let store = mandate_store_sqlite::SqliteStore::open(&url).await.unwrap();
    let mut admin = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON token_lineage WHEN NEW.subject = 'poison'
         BEGIN SELECT RAISE(ABORT, 'poisoned for the test'); END",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    mandate_store::contract::a_failed_issuance_batch_writes_nothing(&store).await;
}

/// Two instances on one database: throttle takes never pass the limit between them.
#[tokio::test]
async fn racing_event_takes_across_instances() {
    let dir = tempfile::tempdir().unwrap().keep();
    let url = format!("sqlite://{}/mandate.db", dir.display());
    let a = mandate_store_sqlite::SqliteStore::open(&url).await.unwrap();
    let b = mandate_store_sqlite::SqliteStore::open(&url).await.unwrap();
    mandate_store::contract::racing_event_takes_across_instances(&a, &b).await;
}
