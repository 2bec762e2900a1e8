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

/// A batch that fails part-way writes nothing, and leaves no transaction open behind it: the next
/// batch on the same connection commits. (The failure comes from a trigger added for the test.)
#[tokio::test]
async fn a_failed_issuance_batch_writes_nothing_and_the_next_commits() {
    use mandate_core::{AuditEvent, AuditKind};
    use mandate_store::{AuditStore, IssuanceRecord, LineageStore, TokenRecord};

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
    let record = |jti: &str, subject: &str| {
        let mut event = AuditEvent::new(1000, AuditKind::TokenIssued, "ok");
        event.jti = Some(jti.to_owned());
        IssuanceRecord {
            event,
            lineage: TokenRecord {
                jti: jti.to_owned(),
                kind: "access_token".into(),
                parent_jti: None,
                actor_jti: None,
                grant_id: None,
                subject: subject.to_owned(),
                client_id: "agent".into(),
                audience: "https://mcp.example/mcp".into(),
                scope: None,
                act: None,
                issued_at: 1000,
                expires_at: 1300,
            },
        }
    };

    let failed = store.record_issuances(&[record("first", "alice"), record("second", "poison")]).await;
    assert!(failed.is_err(), "the poisoned batch fails");
    assert!(store.audit_by_jti("first").await.unwrap().is_empty(), "nothing of the failed batch is written");
    assert!(store.get_token_record("first").await.unwrap().is_none());

    store.record_issuances(&[record("third", "alice")]).await.unwrap();
    assert_eq!(store.audit_by_jti("third").await.unwrap().len(), 1);
    assert!(store.get_token_record("third").await.unwrap().is_some());
}
