//! The storage contract on SQLite, each check on a fresh database file.

async fn fresh() -> mandate_store_sqlite::SqliteStore {
    let dir = tempfile::tempdir().unwrap().keep();
    let url = format!("sqlite://{}/mandate.db", dir.display());
    mandate_store_sqlite::SqliteStore::open(&url).await.unwrap()
}

mandate_store::contract_tests!(fresh());
