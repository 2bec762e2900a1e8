//! What operators rely on: health, readiness, metrics and the audit log.

use std::sync::Arc;

use mandate_core::{AuditKind, MockClock};
use serde_json::Value;

use crate::common::{AGENT_SECRET, Backend, MCP, Options, TestServer, base_config, decode_unverified, fresh_database};
use crate::on_both_backends;

async fn health_and_readiness(backend: Backend) {
    let s = TestServer::start(backend).await;
    let res = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["database"],
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
}

async fn metrics_count_requests_and_issued_tokens(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.agent_token().await;
    s.post_form("/token", Some(("build-agent", "wrong")), &[("grant_type", "client_credentials"), ("resource", MCP)])
        .await;
    let text = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("mandate_tokens_issued_total{grant_type=\"client_credentials\"} 1"), "{text}");
    assert!(text.contains("mandate_http_requests_total{endpoint=\"/token\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("mandate_http_requests_total{endpoint=\"/token\",status=\"401\"} 1"), "{text}");
    assert!(text.contains("error=\"invalid_client\""), "{text}");
    assert!(text.contains("mandate_http_request_duration_seconds_bucket"), "{text}");
}

async fn every_issuance_refusal_and_revocation_is_audited(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.agent_token().await;
    s.post_form(
        "/token",
        Some(("build-agent", AGENT_SECRET)),
        &[("grant_type", "client_credentials"), ("resource", MCP), ("scope", "admin")],
    )
    .await;
    s.post_form("/token", Some(("build-agent", "wrong")), &[("grant_type", "client_credentials"), ("resource", MCP)])
        .await;
    s.post_form("/revoke", Some(("build-agent", AGENT_SECRET)), &[("token", &token)]).await;

    let events = s.state().store.recent_audit(10).await.unwrap();
    let kinds: Vec<(AuditKind, &str)> = events.iter().rev().map(|e| (e.kind, e.outcome.as_str())).collect();
    assert_eq!(
        kinds,
        vec![
            (AuditKind::TokenIssued, "ok"),
            (AuditKind::TokenRefused, "invalid_scope"),
            (AuditKind::TokenRefused, "invalid_client"),
            (AuditKind::TokenRevoked, "ok"),
        ]
    );
    let issued = events.last().unwrap();
    assert_eq!(issued.client_id.as_deref(), Some("build-agent"));
    assert_eq!(issued.resource.as_deref(), Some(MCP));
    assert_eq!(issued.scope.as_deref(), Some("tools:call tools:read"));
    assert_eq!(issued.grant_type.as_deref(), Some("client_credentials"));
    let jti = issued.jti.clone().unwrap();
    assert_eq!(crate::common::decode_unverified(&token).1["jti"], jti.as_str());
    assert_eq!(s.state().store.audit_by_jti(&jti).await.unwrap().len(), 2, "issuance and revocation share the jti");
    // Refusals name the client that tried, never its secret.
    let refused = &events[1];
    assert_eq!(refused.client_id.as_deref(), Some("build-agent"));
    assert!(events.iter().all(|e| !format!("{e:?}").contains(AGENT_SECRET) && !format!("{e:?}").contains(&token)));
}

/// `[audit] retention`: after the retention has passed, the purge deletes an old token's audit and
/// lineage rows and keeps a recent token's; without a retention nothing is ever deleted.
async fn retention_deletes_old_audit_and_lineage_rows_only(backend: Backend) {
    let clock = Arc::new(MockClock::new(1_800_000_000));
    let options = Options {
        config: format!("{}\n[audit]\nretention = \"2d\"\n", base_config()),
        clock: clock.clone(),
        ..Options::default()
    };
    let s = TestServer::start_on(fresh_database(backend).await, options).await;
    let old = jti(&s.agent_token().await);
    clock.advance(3 * 24 * 3600);
    let recent = jti(&s.agent_token().await);
    let store = s.state().store.clone();

    // The hourly maintenance may get there first (its first round runs at start-up, on its own
    // task); either way, the old rows are gone and the recent ones stay.
    mandate_server::audit::apply_retention(s.state()).await.unwrap();
    assert!(store.audit_by_jti(&old).await.unwrap().is_empty());
    assert!(store.get_token_record(&old).await.unwrap().is_none());
    assert_eq!(store.audit_by_jti(&recent).await.unwrap().len(), 1);
    assert!(store.get_token_record(&recent).await.unwrap().is_some());

    // Without [audit] retention, rows are kept however old.
    let keeping = Options { clock: clock.clone(), ..Options::default() };
    let s = TestServer::start_on(fresh_database(backend).await, keeping).await;
    let old = jti(&s.agent_token().await);
    clock.advance(3650 * 24 * 3600);
    assert_eq!(mandate_server::audit::apply_retention(s.state()).await.unwrap(), (0, 0));
    assert_eq!(s.state().store.audit_by_jti(&old).await.unwrap().len(), 1);
}

fn jti(token: &str) -> String {
    decode_unverified(token).1["jti"].as_str().unwrap().to_owned()
}

on_both_backends!(
    health_and_readiness,
    metrics_count_requests_and_issued_tokens,
    every_issuance_refusal_and_revocation_is_audited,
    retention_deletes_old_audit_and_lineage_rows_only
);
