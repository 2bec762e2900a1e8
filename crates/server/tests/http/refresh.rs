//! Refresh tokens: rotation on every use, the grace window for lost responses and concurrent
//! refreshes (a sibling), theft detection after it (the family is revoked), narrowing, resources.

use std::sync::Arc;

use mandate_core::MockClock;
use serde_json::Value;

use crate::code_flow::server_with_clock;
use crate::common::browser::*;
use crate::common::{API, Backend, MCP, TestServer, assert_oauth_error, decode_unverified};

async fn refresh(server: &TestServer, token: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("client_id", "desktop-agent"), ("refresh_token", token)];
    form.extend_from_slice(extra);
    server.post_form("/token", None, &form).await
}

async fn tokens(server: &TestServer, scope: &str, resources: &[&str]) -> Value {
    let mut b = Browser::new();
    let mut extra = vec![("scope", scope)];
    extra.extend(resources.iter().map(|r| ("resource", *r)));
    let code = authorize_as_alice(server, &mut b, "desktop-agent", NATIVE_REDIRECT, &extra).await;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", "desktop-agent"),
        ("code", code.as_str()),
        ("code_verifier", VERIFIER),
    ];
    if let Some(first) = resources.first() {
        form.push(("resource", first));
    }
    let res = server.post_form("/token", None, &form).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn rt(body: &Value) -> String {
    body["refresh_token"].as_str().expect("a refresh token").to_owned()
}

async fn rotation_grace_and_theft(backend: Backend) {
    let clock = Arc::new(MockClock::new(1_800_000_000));
    let server = server_with_clock(backend, clock.clone()).await;
    let first = tokens(&server, "tools:read tools:call offline_access", &[]).await;
    let r0 = rt(&first);

    // Rotation: a new refresh token and a new access token each time.
    let res = refresh(&server, &r0, &[]).await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    let r1 = rt(&second);
    assert_ne!(r1, r0);
    assert_ne!(second["access_token"], first["access_token"]);

    // r0 again within the grace window (a lost response): a sibling, and the family stays alive.
    clock.advance(10);
    let res = refresh(&server, &r0, &[]).await;
    assert_eq!(res.status(), 200, "reuse within the grace window gets a successor");
    let sibling = rt(&res.json::<Value>().await.unwrap());
    let res = refresh(&server, &r1, &[]).await;
    assert_eq!(res.status(), 200, "the first successor still works");
    let r2 = rt(&res.json::<Value>().await.unwrap());
    let res = refresh(&server, &sibling, &[]).await;
    assert_eq!(res.status(), 200, "the sibling works too");
    let r3 = rt(&res.json::<Value>().await.unwrap());

    // r1 again after the window (30 s by default): theft. Everything of the grant is revoked.
    clock.advance(31);
    let live_access = {
        let res = refresh(&server, &r2, &[]).await;
        let body: Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    };
    assert_eq!(server.introspect(&live_access).await["active"], true);
    let body = assert_oauth_error(refresh(&server, &r1, &[]).await, 400, "invalid_grant").await;
    assert!(body["error_description"].as_str().unwrap().contains("already used"), "{body}");
    assert_eq!(server.introspect(&live_access).await["active"], false, "access tokens of the family are revoked");
    assert_oauth_error(refresh(&server, &r3, &[]).await, 400, "invalid_grant").await;
}

async fn concurrent_refreshes_both_succeed(backend: Backend) {
    let clock = Arc::new(MockClock::new(1_800_000_000));
    let server = server_with_clock(backend, clock).await;
    let r0 = rt(&tokens(&server, "tools:read offline_access", &[]).await);
    let (a, b) = tokio::join!(refresh(&server, &r0, &[]), refresh(&server, &r0, &[]));
    assert_eq!(
        (a.status().as_u16(), b.status().as_u16()),
        (200, 200),
        "a client refreshing twice at once keeps working"
    );
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_ne!(rt(&a), rt(&b));
    for next in [rt(&a), rt(&b)] {
        assert_eq!(refresh(&server, &next, &[]).await.status(), 200);
    }
}

async fn refresh_narrows_never_widens(backend: Backend) {
    let clock = Arc::new(MockClock::new(1_800_000_000));
    let server = server_with_clock(backend, clock).await;
    let r0 = rt(&tokens(&server, "tools:read tools:call offline_access", &[MCP, API]).await);

    // Narrowing: the access token carries less; the refresh token keeps the grant's scope.
    let res = refresh(&server, &r0, &[("scope", "tools:read"), ("resource", MCP)]).await;
    assert_eq!(res.status(), 200);
    let narrowed: Value = res.json().await.unwrap();
    assert_eq!(narrowed["scope"], "tools:read");
    let res = refresh(&server, &rt(&narrowed), &[("scope", "tools:call"), ("resource", MCP)]).await;
    assert_eq!(res.status(), 200, "the next refresh may still use the granted tools:call");

    // Widening is refused.
    let r = rt(&res.json::<Value>().await.unwrap());
    let res = refresh(&server, &r, &[("scope", "tools:read admin"), ("resource", MCP)]).await;
    assert_oauth_error(res, 400, "invalid_scope").await;

    // Choosing among granted resources; another resource is refused; with two granted, one must be named.
    let res = refresh(&server, &r, &[("resource", "https://other.example/mcp")]).await;
    assert_oauth_error(res, 400, "invalid_target").await;
    let res = refresh(&server, &r, &[]).await;
    assert_oauth_error(res, 400, "invalid_target").await;
    let res = refresh(&server, &r, &[("resource", MCP)]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(decode_unverified(body["access_token"].as_str().unwrap()).1["aud"], MCP);

    // Only the client it was issued to may use it, and a wrong client revokes it.
    let res = server
        .post_form(
            "/token",
            Some(("web-agent", WEB_SECRET)),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt(&body))],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    assert_oauth_error(refresh(&server, &rt(&body), &[]).await, 400, "invalid_grant").await;
}

async fn without_resource_the_granted_audience_stays(backend: Backend) {
    let clock = Arc::new(MockClock::new(1_800_000_000));
    let server = server_with_clock(backend, clock.clone()).await;
    let r0 = rt(&tokens(&server, "tools:read offline_access", &[]).await);
    let body: Value = refresh(&server, &r0, &[]).await.json().await.unwrap();
    assert_eq!(decode_unverified(body["access_token"].as_str().unwrap()).1["aud"], MCP);
    // Refresh tokens expire (refresh_token_ttl, 30 days by default).
    clock.advance(31 * 24 * 3600);
    assert_oauth_error(refresh(&server, &rt(&body), &[]).await, 400, "invalid_grant").await;
}

async fn revoking_a_refresh_token_revokes_the_grant(backend: Backend) {
    let clock = Arc::new(MockClock::new(1_800_000_000));
    let server = server_with_clock(backend, clock).await;
    let body = tokens(&server, "tools:read offline_access", &[]).await;
    let access = body["access_token"].as_str().unwrap();
    let res = server.post_form("/revoke", None, &[("client_id", "desktop-agent"), ("token", &rt(&body))]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(server.introspect(access).await["active"], false);
    assert_oauth_error(refresh(&server, &rt(&body), &[]).await, 400, "invalid_grant").await;
}

async fn a_disabled_account_cannot_refresh(backend: Backend) {
    let clock = Arc::new(MockClock::new(1_800_000_000));
    let server = server_with_clock(backend, clock).await;
    let r0 = rt(&tokens(&server, "tools:read offline_access", &[]).await);
    let store = server.state().store.clone();
    let mut alice = store.get_user("alice").await.unwrap().unwrap();
    alice.disabled = true;
    store.put_user(&alice, 1_800_000_001).await.unwrap();
    let body = assert_oauth_error(refresh(&server, &r0, &[]).await, 400, "invalid_grant").await;
    assert!(body["error_description"].as_str().unwrap().contains("disabled"), "{body}");
}

crate::on_both_backends!(
    a_disabled_account_cannot_refresh,
    rotation_grace_and_theft,
    concurrent_refreshes_both_succeed,
    refresh_narrows_never_widens,
    without_resource_the_granted_audience_stays,
    revoking_a_refresh_token_revokes_the_grant,
);
