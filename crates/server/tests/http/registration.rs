//! Dynamic client registration (RFC 7591) and management (RFC 7592): open or behind an initial
//! access token, metadata checked, identical public registrations shared, throttled per address.

use serde_json::{Value, json};

use crate::common::browser::*;
use crate::common::{Backend, MCP, Options, TestServer, assert_oauth_error, fresh_database};

async fn server(backend: Backend, registration: &str) -> TestServer {
    let config = format!("[registration]\ndynamic = true\n{registration}\n{}", delegation_config());
    TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await
}

async fn register(server: &TestServer, body: Value, token: Option<&str>) -> reqwest::Response {
    let mut req = server.http.post(server.url("/register")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

fn native_app() -> Value {
    json!({
        "client_name": "Registered CLI", "application_type": "native", "token_endpoint_auth_method": "none",
        "redirect_uris": [NATIVE_REDIRECT], "grant_types": ["authorization_code", "refresh_token"], "scope": "tools:read",
    })
}

async fn public_clients_register_once_and_complete_the_flow(backend: Backend) {
    let server = server(backend, "").await;
    let meta = server.metadata().await;
    assert_eq!(meta["registration_endpoint"], server.url("/register"));

    let res = register(&server, native_app(), None).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let first: Value = res.json().await.unwrap();
    let client_id = first["client_id"].as_str().unwrap().to_owned();
    assert!(first.get("client_secret").is_none(), "public clients get no secret");
    assert_eq!(first["application_type"], "native");
    assert!(first.get("registration_access_token").is_none(), "a shared public registration is managed by nobody");
    // The same metadata again: the same client, not a new row.
    let again: Value = register(&server, native_app(), None).await.json().await.unwrap();
    assert_eq!(again["client_id"], client_id.as_str());

    // The registered scope is not a ceiling: a step-up to another resource scope works.
    let mut b = Browser::new();
    let code = authorize_as_alice(
        &server,
        &mut b,
        &client_id,
        "http://127.0.0.1:61000/callback",
        &[("scope", "tools:read tools:call")],
    )
    .await;
    let res = server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", &code),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "tools:call tools:read");

    // No RFC 7592 management: whatever token is tried.
    let uri = server.url(&format!("/register/{client_id}"));
    assert_eq!(server.http.get(&uri).bearer_auth("wrong").send().await.unwrap().status(), 401);
    assert_eq!(server.http.delete(&uri).bearer_auth("wrong").send().await.unwrap().status(), 401);
}

/// The policy of the tests that let self-registered clients act for themselves.
const UNATTENDED: &str = "unattended_grant_types = [\"client_credentials\"]\nunattended_resources = [\"http://127.0.0.1:9090/mcp\"]\nunattended_scopes = [\"tools:read\"]";

async fn confidential_clients_get_a_secret(backend: Backend) {
    let server = server(backend, UNATTENDED).await;
    let body = json!({ "client_name": "Build bot", "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic" });
    let res = register(&server, body.clone(), None).await;
    assert_eq!(res.status(), 201);
    let reg: Value = res.json().await.unwrap();
    let (id, secret) = (reg["client_id"].as_str().unwrap(), reg["client_secret"].as_str().unwrap());
    assert_eq!(reg["client_secret_expires_at"], 0);
    let res = server
        .post_form(
            "/token",
            Some((id, secret)),
            &[("grant_type", "client_credentials"), ("resource", MCP), ("scope", "tools:read")],
        )
        .await;
    assert_eq!(res.status(), 200);
    // Confidential registrations are never merged: each gets its own client and secret.
    let other: Value = register(&server, body, None).await.json().await.unwrap();
    assert_ne!(other["client_id"], reg["client_id"]);
}

/// Issue #15 item 1: anyone can register, so a self-registered client gets no token nobody
/// consented to unless `registration.unattended_*` allows it, and then only on what it names.
async fn self_registered_clients_get_no_unattended_grants_unless_allowed(backend: Backend) {
    let db = fresh_database(backend).await;
    let start = |registration: &'static str, db| async move {
        let config = format!("[registration]\ndynamic = true\n{registration}\n{}", delegation_config());
        TestServer::start_on(db, Options { config, ..Options::default() }).await
    };
    let server = start("", db).await;
    let body = json!({ "client_name": "Bot", "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic" });
    let refused = assert_oauth_error(register(&server, body.clone(), None).await, 400, "invalid_client_metadata").await;
    assert!(
        refused["error_description"].as_str().unwrap().contains("registration.unattended_grant_types"),
        "{refused}"
    );
    let jwt_bearer = json!({ "grant_types": ["urn:ietf:params:oauth:grant-type:jwt-bearer"], "token_endpoint_auth_method": "client_secret_basic" });
    assert_oauth_error(register(&server, jwt_bearer, None).await, 400, "invalid_client_metadata").await;
    let db = server.stop().await;

    // Allowed: only the named resource and scopes, whatever the client would otherwise reach.
    let server = start(UNATTENDED, db).await;
    let reg: Value = register(&server, body, None).await.json().await.unwrap();
    let (id, secret) =
        (reg["client_id"].as_str().unwrap().to_owned(), reg["client_secret"].as_str().unwrap().to_owned());
    let cc = |resource: &'static str, scope: &'static str| {
        let (server, id, secret) = (&server, id.clone(), secret.clone());
        async move {
            let mut form = vec![("grant_type", "client_credentials"), ("resource", resource)];
            if !scope.is_empty() {
                form.push(("scope", scope));
            }
            server.post_form("/token", Some((&id, &secret)), &form).await
        }
    };
    let ok: Value = cc(MCP, "").await.json().await.unwrap();
    assert_eq!(ok["scope"], "tools:read", "no scope asked: the policy's, not every scope of the resource");
    assert_oauth_error(cc(MCP, "tools:call").await, 400, "invalid_scope").await;
    assert_oauth_error(cc(crate::common::API, "admin").await, 400, "invalid_target").await;
    let db = server.stop().await;

    // The policy withdrawn: a client registered under it gets nothing more.
    let server = start("", db).await;
    let body = assert_oauth_error(cc_again(&server, &id, &secret).await, 400, "unauthorized_client").await;
    assert!(body["error_description"].as_str().unwrap().contains("nobody's consent"), "{body}");
}

async fn cc_again(server: &TestServer, id: &str, secret: &str) -> reqwest::Response {
    server.post_form("/token", Some((id, secret)), &[("grant_type", "client_credentials"), ("resource", MCP)]).await
}

async fn bad_metadata_is_refused(backend: Backend) {
    let server = server(backend, "").await;
    let cases = [
        (
            json!({ "redirect_uris": ["http://app.example/cb"], "token_endpoint_auth_method": "none" }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["https://app.example/cb#x"], "token_endpoint_auth_method": "none" }),
            "invalid_redirect_uri",
        ),
        (json!({ "token_endpoint_auth_method": "none" }), "invalid_redirect_uri"),
        (
            json!({ "redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_jwt" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://app.example/cb"], "grant_types": ["password"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://app.example/cb"], "grant_types": ["implicit"], "response_types": ["token"] }),
            "invalid_client_metadata",
        ),
        (json!({ "redirect_uris": ["https://app.example/cb"], "client_secret": "mine" }), "invalid_client_metadata"),
        (
            json!({ "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "private_key_jwt" }),
            "invalid_client_metadata",
        ),
        // Token exchange is for clients an administrator registered; JWT grants need authentication.
        (
            json!({ "grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"], "token_endpoint_auth_method": "client_secret_basic" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "grant_types": ["urn:ietf:params:oauth:grant-type:jwt-bearer"], "token_endpoint_auth_method": "none" }),
            "invalid_client_metadata",
        ),
    ];
    for (body, error) in cases {
        let res = register(&server, body.clone(), None).await;
        assert_oauth_error(res, 400, error).await;
    }
    let res = server
        .http
        .post(server.url("/register"))
        .body("not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_client_metadata").await;
    let res = server.http.post(server.url("/register")).form(&[("client_name", "x")]).send().await.unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
}

async fn initial_access_token_and_throttling(backend: Backend) {
    let digest = mandate_core::SecretDigest::of("initial-token-0123456789").encode();
    let server =
        server(backend, &format!("initial_access_token_hash = \"{digest}\"\nmax_registrations_per_address = 3")).await;
    let res = register(&server, native_app(), None).await;
    assert_eq!(res.status(), 401);
    assert_eq!(register(&server, native_app(), Some("wrong")).await.status(), 401);
    for i in 0..3 {
        let mut body = native_app();
        body["client_name"] = json!(format!("CLI {i}"));
        assert_eq!(register(&server, body, Some("initial-token-0123456789")).await.status(), 201);
    }
    let res = register(&server, native_app(), Some("initial-token-0123456789")).await;
    assert_eq!(res.status(), 429, "a fourth registration within the hour from one address");
}

async fn registration_is_off_by_default(backend: Backend) {
    let server = TestServer::start_on(
        fresh_database(backend).await,
        Options { config: delegation_config(), ..Options::default() },
    )
    .await;
    assert_eq!(register(&server, native_app(), None).await.status(), 404);
}

/// Issue #15 item 9 (RFC 9700 §4.11.2): a bad authorization request of a self-registered client is
/// answered on a page, not by a redirect to the URI anyone could register; a configured client's
/// goes back to its redirect URI as RFC 6749 §4.1.2.1 says.
async fn errors_of_self_registered_clients_are_not_redirected(backend: Backend) {
    let server = server(backend, "").await;
    let evil = "https://attacker.example/cb";
    let reg: Value = register(
        &server,
        json!({ "client_name": "Not evil", "token_endpoint_auth_method": "none", "redirect_uris": [evil] }),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let id = reg["client_id"].as_str().unwrap();
    let mut b = Browser::new();
    for bad in [[("response_type", "token")], [("scope", "no-such-scope")], [("code_challenge_method", "plain")]] {
        let seen = b.get(&authorize_url(&server, id, evil, &bad)).await;
        assert_eq!(seen.status, 400, "{bad:?}: {:?}", seen.location);
        assert!(seen.location.is_none(), "{bad:?}: no redirect to {:?}", seen.location);
    }
    let seen = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[("response_type", "token")])).await;
    assert!(seen.redirects_to(WEB_REDIRECT), "{:?}", seen.location);
    assert_eq!(seen.param("error").as_deref(), Some("unsupported_response_type"));
}

crate::on_both_backends!(
    errors_of_self_registered_clients_are_not_redirected,
    public_clients_register_once_and_complete_the_flow,
    confidential_clients_get_a_secret,
    self_registered_clients_get_no_unattended_grants_unless_allowed,
    bad_metadata_is_refused,
    initial_access_token_and_throttling,
    registration_is_off_by_default,
);
