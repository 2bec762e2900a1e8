//! The authorization code flow end to end: pages, PKCE, code, tokens, OpenID Connect, and every
//! misuse of a code. The real-browser and third-party-client versions live in interop/.

use std::sync::Arc;

use mandate_core::MockClock;
use serde_json::Value;

use crate::common::browser::*;
use crate::common::{Backend, MCP, Options, TestServer, assert_oauth_error, decode_unverified, fresh_database};

pub async fn server(backend: Backend) -> TestServer {
    TestServer::start_on(fresh_database(backend).await, Options { config: delegation_config(), ..Options::default() })
        .await
}

pub async fn server_with_clock(backend: Backend, clock: Arc<MockClock>) -> TestServer {
    TestServer::start_on(
        fresh_database(backend).await,
        Options { config: delegation_config(), clock, ..Options::default() },
    )
    .await
}

const ALL: &str = "tools:read openid profile email offline_access";

async fn full_flow_issues_tokens_and_an_id_token(backend: Backend) {
    let server = server(backend).await;
    let mut browser = Browser::new();
    let start = browser
        .get(&authorize_url(&server, "desktop-agent", NATIVE_REDIRECT, &[("scope", ALL), ("nonce", "n-42")]))
        .await;
    assert!(start.redirects_to(&server.url("/login?request=")), "{:?}", start.location);
    let after_login = browser.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    assert!(after_login.redirects_to(&server.url("/consent?request=")), "{:?}", after_login.location);
    let consent = browser.get(after_login.location.as_deref().unwrap()).await;
    assert_eq!(consent.status, 200);
    for shown in [
        "Desktop Agent",
        "127.0.0.1",
        "only to this computer",
        "Example MCP server",
        "See your email address",
        "tools:read",
    ] {
        assert!(consent.body.contains(shown), "consent page lacks {shown:?}");
    }
    let done = browser.decide(after_login.location.as_deref().unwrap(), "approve", false).await;
    assert_eq!(done.status, 303);
    assert!(done.redirects_to(NATIVE_REDIRECT), "{:?}", done.location);
    assert_eq!(done.param("iss").as_deref(), Some(server.issuer.as_str()));
    assert_eq!(done.param("state").as_deref(), Some("st-123"));
    let code = done.param("code").unwrap();

    let res = redeem(&server, "desktop-agent", &code, NATIVE_REDIRECT).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    let (_, at) = decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], MCP);
    assert_eq!(at["sub"], "alice");
    assert_eq!(at["client_id"], "desktop-agent");
    assert_eq!(at["scope"], "email openid profile tools:read");
    assert!(body["refresh_token"].as_str().is_some_and(|t| t.len() >= 43), "offline_access gives a refresh token");
    let (header, id) = decode_unverified(body["id_token"].as_str().unwrap());
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(id["iss"], server.issuer.as_str());
    assert_eq!(id["aud"], "desktop-agent");
    assert_eq!(id["azp"], "desktop-agent");
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["nonce"], "n-42");
    assert_eq!(id["email"], "alice@example.com");
    assert!(id["auth_time"].as_i64().is_some());
    // The hash itself is checked against OpenID's example in mandate-core's unit tests.
    let at_hash = mandate_core::oidc::at_hash(
        mandate_core::jose::SigningAlgorithm::ES256,
        body["access_token"].as_str().unwrap(),
    );
    assert_eq!(id["at_hash"], at_hash);

    // UserInfo answers for this token; introspection sees it active.
    let info: Value = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(server.introspect(body["access_token"].as_str().unwrap()).await["active"], true);
}

async fn without_offline_access_there_is_no_refresh_token(backend: Backend) {
    let server = server(backend).await;
    let mut browser = Browser::new();
    let code = authorize_as_alice(&server, &mut browser, "web-agent", WEB_REDIRECT, &[("scope", "tools:read")]).await;
    let body: Value = redeem(&server, "web-agent", &code, WEB_REDIRECT).await.json().await.unwrap();
    assert!(body["access_token"].is_string());
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body.get("id_token").is_none(), "no openid, no ID token: {body}");
}

async fn code_misuse_is_refused(backend: Backend) {
    let clock = Arc::new(MockClock::new(1_800_000_000));
    let server = server_with_clock(backend, clock.clone()).await;
    let mut browser = Browser::new();

    // Tampered verifier.
    let code = authorize_as_alice(&server, &mut browser, "desktop-agent", NATIVE_REDIRECT, &[]).await;
    let res = server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "desktop-agent"),
                ("code", &code),
                ("redirect_uri", NATIVE_REDIRECT),
                ("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX"),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_grant").await;

    // Missing verifier.
    let code = authorize_as_alice(&server, &mut browser, "desktop-agent", NATIVE_REDIRECT, &[]).await;
    let res = server
        .post_form(
            "/token",
            None,
            &[("grant_type", "authorization_code"), ("client_id", "desktop-agent"), ("code", &code)],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_request").await;

    // Another client presents alice's code, twice: refused, and neither uses it up nor counts as
    // a reuse that would revoke alice's grant (issue #15 item 13).
    let code = authorize_as_alice(&server, &mut browser, "desktop-agent", NATIVE_REDIRECT, &[]).await;
    for _ in 0..2 {
        let res = server
            .post_form(
                "/token",
                Some(("web-agent", WEB_SECRET)),
                &[("grant_type", "authorization_code"), ("code", &code), ("code_verifier", VERIFIER)],
            )
            .await;
        assert_oauth_error(res, 400, "invalid_grant").await;
    }
    let res = redeem(&server, "desktop-agent", &code, NATIVE_REDIRECT).await;
    assert_eq!(res.status(), 200, "the right client still redeems it");
    let issued: Value = res.json().await.unwrap();
    let res = server
        .post_form(
            "/token",
            Some(("web-agent", WEB_SECRET)),
            &[("grant_type", "authorization_code"), ("code", &code), ("code_verifier", VERIFIER)],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    let access = issued["access_token"].as_str().unwrap();
    assert_eq!(server.introspect(access).await["active"], true, "another client's try is not a reuse");

    // A different redirect_uri at the token endpoint.
    let code = authorize_as_alice(&server, &mut browser, "web-agent", WEB_REDIRECT, &[]).await;
    let res = redeem(&server, "web-agent", &code, "https://agent.example/cb/extra").await;
    assert_oauth_error(res, 400, "invalid_grant").await;

    // Expired: codes live 60 seconds.
    let code = authorize_as_alice(&server, &mut browser, "desktop-agent", NATIVE_REDIRECT, &[]).await;
    clock.advance(61);
    assert_oauth_error(redeem(&server, "desktop-agent", &code, NATIVE_REDIRECT).await, 400, "invalid_grant").await;

    // Replayed: the second use fails and revokes what the first one issued.
    let code = authorize_as_alice(
        &server,
        &mut browser,
        "desktop-agent",
        NATIVE_REDIRECT,
        &[("scope", "tools:read offline_access")],
    )
    .await;
    let first: Value = redeem(&server, "desktop-agent", &code, NATIVE_REDIRECT).await.json().await.unwrap();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(server.introspect(access).await["active"], true);
    let body =
        assert_oauth_error(redeem(&server, "desktop-agent", &code, NATIVE_REDIRECT).await, 400, "invalid_grant").await;
    assert!(body["error_description"].as_str().unwrap().contains("already used"), "{body}");
    assert_eq!(server.introspect(access).await["active"], false, "the first use's access token is revoked");
    let res = server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "desktop-agent"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

async fn two_instances_redeem_one_code_at_most_once(backend: Backend) {
    let first = server(backend).await;
    let second = TestServer::start_on(
        first.database.clone(),
        Options { config: delegation_config(), issuer: Some(first.issuer.clone()), ..Options::default() },
    )
    .await;
    let mut browser = Browser::new();
    let code = authorize_as_alice(&first, &mut browser, "desktop-agent", NATIVE_REDIRECT, &[]).await;
    let (a, b) = tokio::join!(
        redeem(&first, "desktop-agent", &code, NATIVE_REDIRECT),
        redeem(&second, "desktop-agent", &code, NATIVE_REDIRECT)
    );
    // A code presented twice is a replay (RFC 9700 §4.5): at most one answer carries tokens, and
    // those are revoked by the second presentation, whichever instance saw it. (The loser may
    // revoke the grant before the winner has minted, so both may fail.)
    let mut issued = Vec::new();
    let mut refused = 0;
    for res in [a, b] {
        match res.status().as_u16() {
            200 => issued.push(res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()),
            400 => {
                assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(refused >= 1 && issued.len() <= 1, "one code, at most one token response");
    for token in issued {
        assert_eq!(first.introspect(&token).await["active"], false, "the replay revoked the first use's token");
    }
}

/// Issue #15 item 18: a plain OpenID Connect sign-in ("Sign in with mandate", the SSO step before
/// an ID-JAG) names no resource: the person signs in, the client gets an ID token and an access
/// token for UserInfo only. Asking for a tool scope still needs a resource.
async fn a_plain_openid_sign_in_needs_no_resource(backend: Backend) {
    let server = server(backend).await;
    let mut b = Browser::new();
    let start = b
        .get(&authorize_url(
            &server,
            "web-agent",
            WEB_REDIRECT,
            &[("resource", ""), ("scope", "openid email"), ("nonce", "n-1")],
        ))
        .await;
    assert!(start.redirects_to(&server.url("/login")), "{:?} {}", start.location, start.body);
    let consent_at = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    let page = b.get(consent_at.location.as_deref().unwrap()).await;
    assert!(page.body.contains("id=\"sign-in-only\""), "{}", page.body);
    let done = b.decide(consent_at.location.as_deref().unwrap(), "approve", false).await;
    assert!(done.redirects_to(WEB_REDIRECT), "{:?}", done.location);
    let res = redeem(&server, "web-agent", &done.param("code").unwrap(), WEB_REDIRECT).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let body: Value = res.json().await.unwrap();
    let (_, id) = decode_unverified(body["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["nonce"], "n-1");
    let access = body["access_token"].as_str().unwrap();
    let (_, at) = decode_unverified(access);
    assert_eq!(at["aud"], server.url("/userinfo"), "for UserInfo only, never a resource server");
    assert_eq!(at["scope"], "email openid");
    let info: Value =
        server.http.get(server.url("/userinfo")).bearer_auth(access).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["email"], "alice@example.com");

    // A tool scope without a resource is still refused (RFC 8707), at the client's redirect URI.
    let seen = b
        .get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[("resource", ""), ("scope", "openid tools:read")]))
        .await;
    assert!(seen.redirects_to(WEB_REDIRECT), "{:?}", seen.location);
    assert_eq!(seen.param("error").as_deref(), Some("invalid_target"));
}

crate::on_both_backends!(
    a_plain_openid_sign_in_needs_no_resource,
    full_flow_issues_tokens_and_an_id_token,
    without_offline_access_there_is_no_refresh_token,
    code_misuse_is_refused,
    two_instances_redeem_one_code_at_most_once,
);
