//! Introspection (RFC 7662) and revocation (RFC 7009), on one instance and across two.

use serde_json::Value;

use crate::common::{AGENT_SECRET, Backend, MCP, Options, POST_SECRET, RS_SECRET, TestServer, assert_oauth_error};
use crate::on_both_backends;

async fn introspection_describes_an_active_token(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.agent_token().await;
    let res = s
        .post_form(
            "/introspect",
            Some(("resource-server", RS_SECRET)),
            &[("token", &token), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "build-agent");
    assert_eq!(body["sub"], "build-agent");
    assert_eq!(body["aud"], MCP);
    assert_eq!(body["iss"], s.base.as_str());
    assert_eq!(body["scope"], "tools:call tools:read");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());
}

async fn introspection_of_anything_else_is_inactive_and_nothing_more(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.agent_token().await;
    let mut tampered = token.clone();
    tampered.replace_range(token.len() - 6.., "AAAAAA");
    let other = TestServer::start(backend).await.agent_token().await; // another issuer's token
    for t in ["not-a-token", tampered.as_str(), other.as_str(), "a.b.c"] {
        assert_eq!(s.introspect(t).await, serde_json::json!({ "active": false }), "{t}");
    }
}

async fn introspection_requires_client_authentication(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.agent_token().await;
    let res = s.post_form("/introspect", None, &[("token", &token)]).await;
    assert_oauth_error(res, 401, "invalid_client").await;
    let res = s.post_form("/introspect", Some(("resource-server", "wrong")), &[("token", &token)]).await;
    assert_oauth_error(res, 401, "invalid_client").await;
    let res = s.post_form("/introspect", Some(("resource-server", RS_SECRET)), &[]).await;
    assert_oauth_error(res, 400, "invalid_request").await;
}

async fn revoked_token_is_inactive_on_every_instance(backend: Backend) {
    let a = TestServer::start(backend).await;
    // A second instance on another port, with the same issuer and database.
    let b =
        TestServer::start_on(a.database.clone(), Options { issuer: Some(a.base.clone()), ..Options::default() }).await;
    let token = a.agent_token().await;
    assert_eq!(b.introspect(&token).await["active"], true);
    let res = a
        .post_form(
            "/revoke",
            Some(("build-agent", AGENT_SECRET)),
            &[("token", &token), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(a.introspect(&token).await, serde_json::json!({ "active": false }));
    assert_eq!(b.introspect(&token).await, serde_json::json!({ "active": false }));
    // Revoking again, or revoking garbage, is still 200 (RFC 7009 §2.2).
    let res = b.post_form("/revoke", Some(("build-agent", AGENT_SECRET)), &[("token", &token)]).await;
    assert_eq!(res.status(), 200);
    let res = b.post_form("/revoke", Some(("build-agent", AGENT_SECRET)), &[("token", "garbage")]).await;
    assert_eq!(res.status(), 200);
}

async fn revocation_errors(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.agent_token().await;
    // Only the client the token was issued to may revoke it.
    let res = s
        .post_form("/revoke", None, &[("token", &token), ("client_id", "post-agent"), ("client_secret", POST_SECRET)])
        .await;
    assert_oauth_error(res, 400, "invalid_request").await;
    assert_eq!(s.introspect(&token).await["active"], true);
    let res = s
        .post_form("/revoke", Some(("build-agent", AGENT_SECRET)), &[("token", &token), ("token_type_hint", "saml2")])
        .await;
    assert_oauth_error(res, 400, "unsupported_token_type").await;
    let res = s.post_form("/revoke", None, &[("token", &token)]).await;
    assert_oauth_error(res, 401, "invalid_client").await;
    let res = s.post_form("/revoke", Some(("build-agent", AGENT_SECRET)), &[]).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    assert_eq!(s.introspect(&token).await["active"], true);
}

on_both_backends!(
    introspection_describes_an_active_token,
    introspection_of_anything_else_is_inactive_and_nothing_more,
    introspection_requires_client_authentication,
    revoked_token_is_inactive_on_every_instance,
    revocation_errors,
);
