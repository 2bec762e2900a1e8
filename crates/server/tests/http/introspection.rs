//! Introspection (RFC 7662) and revocation (RFC 7009), on one instance and across two.

use serde_json::Value;

use crate::common::{
    AGENT_SECRET, API, Backend, MCP, Options, POST_SECRET, RS_SECRET, TestServer, assert_oauth_error, fresh_database,
};
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

/// Issue #15 item 12: introspection is not a validity oracle for every confidential client. The
/// resource's own client, the token's client and configured resource servers learn about a token;
/// any other client (a self-registered one, or another agent) is told it is inactive.
async fn only_the_audience_the_owner_and_resource_servers_may_introspect(backend: Backend) {
    let config = format!(
        "[registration]\ndynamic = true\n{}\n[[clients]]\nclient_id = \"mcp-rs\"\nclient_secret = \"{RS_SECRET}\"\nscopes = [\"tools:read\"]\n\n[[clients]]\nclient_id = \"api-agent\"\nclient_secret = \"{AGENT_SECRET}\"\nscopes = [\"admin\"]\n",
        crate::common::base_config().replacen(
            "scopes = [\"tools:read\", \"tools:call\"]\n",
            "scopes = [\"tools:read\", \"tools:call\"]\nclient_id = \"mcp-rs\"\n",
            1
        )
    );
    let s = TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await;
    let mcp_token = s.agent_token().await;
    let res = s
        .post_form(
            "/token",
            Some(("api-agent", AGENT_SECRET)),
            &[("grant_type", "client_credentials"), ("resource", API)],
        )
        .await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let api_token = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let registered: Value = s
        .http
        .post(s.url("/register"))
        .json(&serde_json::json!({ "client_name": "Curious", "token_endpoint_auth_method": "client_secret_basic",
                                   "redirect_uris": ["https://curious.example/cb"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let curious = (registered["client_id"].as_str().unwrap(), registered["client_secret"].as_str().unwrap());
    async fn active(s: &TestServer, who: (&str, &str), token: &str) -> bool {
        let res = s.post_form("/introspect", Some(who), &[("token", token)]).await;
        assert_eq!(res.status(), 200, "{who:?}: {:?}", res.text().await);
        res.json::<Value>().await.unwrap()["active"].as_bool().unwrap()
    }
    assert!(active(&s, ("resource-server", RS_SECRET), &mcp_token).await, "a configured resource server");
    assert!(active(&s, ("mcp-rs", RS_SECRET), &mcp_token).await, "the audience's own client");
    assert!(!active(&s, ("mcp-rs", RS_SECRET), &api_token).await, "not another resource's token");
    assert!(active(&s, ("build-agent", AGENT_SECRET), &mcp_token).await, "the token's own client");
    assert!(!active(&s, ("api-agent", AGENT_SECRET), &mcp_token).await, "another agent");
    assert!(!active(&s, curious, &mcp_token).await, "a self-registered client");
}

on_both_backends!(
    only_the_audience_the_owner_and_resource_servers_may_introspect,
    introspection_describes_an_active_token,
    introspection_of_anything_else_is_inactive_and_nothing_more,
    introspection_requires_client_authentication,
    revoked_token_is_inactive_on_every_instance,
    revocation_errors,
);
