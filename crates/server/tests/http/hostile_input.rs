//! Issue #15 item 2: request values that storage cannot hold (NUL) or that would forge lines in a
//! text log (control characters) are refused or cleaned, and one bad audit record never fails
//! another request's commit.

use futures_util::StreamExt as _;
use mandate_core::{AuditEvent, AuditKind};
use mandate_store::{IssuanceRecord, TokenRecord};

use crate::common::{AGENT_SECRET, Backend, MCP, Options, TestServer, assert_oauth_error};

/// 200 requests carrying NUL sent while 400 valid client-credentials requests run, spread over
/// three instances on one database: every valid one gets its token, every bad one a 400
/// `invalid_request` (measured before the fix on PostgreSQL: 52 valid requests failed with 500,
/// and every bad one got 500).
async fn nul_requests_under_load_fail_alone(backend: Backend) {
    let first = TestServer::start(backend).await;
    let mut instances = vec![];
    for _ in 0..2 {
        let options = Options { issuer: Some(first.issuer.clone()), ..Options::default() };
        instances.push(TestServer::start_on(first.database.clone(), options).await);
    }
    instances.push(first);
    // 600 requests, every third one bad: 400 valid, 200 with NUL.
    let order: Vec<(usize, bool)> = (0..600).map(|i| (i, i % 3 != 2)).collect();
    let outcomes: Vec<(bool, u16, String)> = futures_util::stream::iter(order)
        .map(|(i, ok)| {
            // Bad and valid requests alike on every instance.
            let s = &instances[(i + i / 3) % 3];
            async move {
                let res = if ok {
                    s.post_form(
                        "/token",
                        Some(("build-agent", AGENT_SECRET)),
                        &[("grant_type", "client_credentials"), ("resource", MCP)],
                    )
                    .await
                } else {
                    s.http
                        .post(s.url("/token"))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body("grant_type=%00&client_id=x%00")
                        .send()
                        .await
                        .unwrap()
                };
                let status = res.status().as_u16();
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                (ok, status, body["error"].as_str().unwrap_or_default().to_owned())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let failed_valid: Vec<_> = outcomes.iter().filter(|(ok, status, _)| *ok && *status != 200).collect();
    assert!(failed_valid.is_empty(), "valid requests failed: {failed_valid:?}");
    let wrong_bad: Vec<_> =
        outcomes.iter().filter(|(ok, status, error)| !*ok && (*status != 400 || error != "invalid_request")).collect();
    assert!(wrong_bad.is_empty(), "bad requests not answered 400 invalid_request: {wrong_bad:?}");
}

/// NUL anywhere a request reaches storage: a form, a query, a path, a registration document.
async fn nul_is_refused_everywhere_before_storage(backend: Backend) {
    let config = format!("[registration]\ndynamic = true\n{}", crate::common::base_config());
    let s = TestServer::start_on(
        crate::common::fresh_database(backend).await,
        crate::common::Options { config, ..Default::default() },
    )
    .await;
    let res = s
        .post_form(
            "/token",
            Some(("build-agent", AGENT_SECRET)),
            &[("grant_type", "client_credentials"), ("resource", "http://x\0")],
        )
        .await;
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("NUL"), "{body}");
    for path in ["/authorize?client_id=a%00b&response_type=code", "/register/dcr_%00", "/admin/lineage/a%00"] {
        let res = s.http.get(s.url(path)).send().await.unwrap();
        assert_oauth_error(res, 400, "invalid_request").await;
    }
    let res = s
        .http
        .post(s.url("/register"))
        .json(&serde_json::json!({ "client_name": "a\u{0}b", "redirect_uris": ["https://a.example/cb"] }))
        .send()
        .await
        .unwrap();
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("NUL"), "{body}");
    // The server still serves.
    assert_eq!(s.agent_token().await.split('.').count(), 3);
}

/// Audit text is cleaned where events are stored: control characters from a request cannot forge
/// a line in an exported log, and long values are cut.
async fn audit_text_is_cleaned(backend: Backend) {
    let s = TestServer::start(backend).await;
    let long_scope = "s".repeat(2000);
    let res = s
        .post_form(
            "/token",
            Some(("build-agent", AGENT_SECRET)),
            &[("grant_type", "client_credentials\n2026-12-06 INFO token issued\u{1b}[0m"), ("scope", &long_scope)],
        )
        .await;
    assert_oauth_error(res, 400, "unsupported_grant_type").await;
    let events = s.state().store.recent_audit(1).await.unwrap();
    let refused = &events[0];
    assert_eq!(refused.kind, AuditKind::TokenRefused);
    let grant_type = refused.grant_type.as_deref().unwrap();
    assert!(!grant_type.chars().any(char::is_control), "{grant_type:?}");
    assert!(grant_type.starts_with("client_credentials\u{FFFD}2026-12-06"), "{grant_type:?}");
    assert_eq!(refused.scope.as_deref().unwrap().chars().count(), mandate_core::audit::MAX_AUDIT_TEXT);
}

/// A batch whose commit fails is retried record by record: the one record storage refuses fails
/// alone, and the others are committed. Storage refuses it by a trigger on the lineage subject
/// `poison`, installed for the test on both backends.
async fn a_failing_record_does_not_fail_its_batch(backend: Backend) {
    let s = TestServer::start(backend).await;
    poison_lineage(&s.database).await;
    let now = s.state().now();
    let record = |jti: &str, subject: &str| IssuanceRecord {
        event: {
            let mut e = AuditEvent::new(now, AuditKind::TokenIssued, "ok");
            e.jti = Some(jti.to_owned());
            e
        },
        lineage: Some(TokenRecord {
            jti: jti.to_owned(),
            kind: "access_token".into(),
            parent_jti: None,
            actor_jti: None,
            grant_id: None,
            subject: subject.into(),
            client_id: "build-agent".into(),
            audience: MCP.into(),
            scope: None,
            act: None,
            issued_at: now,
            expires_at: now + 300,
        }),
    };
    let log = s.state().issuances.clone();
    // Many records at once, so they share commits; one of them cannot be stored on PostgreSQL.
    let results = futures_util::future::join_all((0..64).map(|i| {
        let log = log.clone();
        let r = if i == 31 { record("poisoned", "poison") } else { record(&format!("fresh-{i}"), "build-agent") };
        async move { log.record(r).await }
    }))
    .await;
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.is_ok(), i != 31, "record {i}: {result:?}");
    }
    for i in [0, 30, 32, 63] {
        assert_eq!(
            s.state().store.audit_by_jti(&format!("fresh-{i}")).await.unwrap().len(),
            1,
            "fresh-{i} is on record"
        );
    }
}

/// Makes storage refuse any lineage row whose subject is `poison`.
async fn poison_lineage(database: &mandate_server::config::DatabaseUrl) {
    use sqlx::Connection as _;
    match database {
        mandate_server::config::DatabaseUrl::Sqlite(url) => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query(
                "CREATE TRIGGER poison BEFORE INSERT ON token_lineage WHEN NEW.subject = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned for the test'); END",
            )
            .execute(&mut c)
            .await
            .unwrap();
        }
        mandate_server::config::DatabaseUrl::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'poisoned for the test'; END $$;
                 CREATE TRIGGER poison BEFORE INSERT ON token_lineage FOR EACH ROW
                 WHEN (NEW.subject = 'poison') EXECUTE FUNCTION poison();",
            )
            .execute(&mut c)
            .await
            .unwrap();
        }
    }
}

crate::on_both_backends!(
    nul_requests_under_load_fail_alone,
    nul_is_refused_everywhere_before_storage,
    audit_text_is_cleaned,
    a_failing_record_does_not_fail_its_batch,
);
