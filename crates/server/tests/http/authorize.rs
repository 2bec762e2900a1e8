//! `/authorize` and `/par`: what is checked, where each error goes (a page when the client or
//! redirect URI is unverified, the redirect URI with `iss` otherwise), PAR and `prompt`.

use serde_json::Value;

use crate::code_flow::server;
use crate::common::browser::*;
use crate::common::{API, Backend, assert_oauth_error};

/// Asserts an error page: HTML, the status, the code, and no redirect anywhere.
fn assert_error_page(seen: &Seen, status: u16, code: &str) {
    assert_eq!(seen.status, status, "{}", seen.body);
    assert!(seen.location.is_none(), "an unverified request must never redirect: {:?}", seen.location);
    assert!(seen.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(seen.body.contains(&format!("<code id=\"error-code\">{code}</code>")), "{}", seen.body);
}

/// Asserts an error sent back to the client with `iss` and `state`.
fn assert_error_redirect(seen: &Seen, redirect_uri: &str, code: &str, issuer: &str) {
    assert_eq!(seen.status, 303, "{}", seen.body);
    assert!(seen.redirects_to(redirect_uri), "{:?}", seen.location);
    assert_eq!(seen.param("error").as_deref(), Some(code), "{:?}", seen.location);
    assert!(seen.param("error_description").is_some_and(|d| !d.is_empty()));
    assert_eq!(seen.param("iss").as_deref(), Some(issuer));
    assert_eq!(seen.param("state").as_deref(), Some("st-123"));
}

async fn unverified_requests_get_a_page(backend: Backend) {
    let server = server(backend).await;
    let mut b = Browser::new();
    let unknown_client = b.get(&authorize_url(&server, "nobody", WEB_REDIRECT, &[])).await;
    assert_error_page(&unknown_client, 400, "invalid_request");
    for bad in [
        "https://agent.example/cb/extra",
        "https://agent.example/cb?x=1",
        "https://agent.example/cb#frag",
        "HTTPS://agent.example/cb",
        "https://AGENT.example/cb",
        "https://agent.example.evil.com/cb",
        "https://agent.example/c",
    ] {
        let seen = b.get(&authorize_url(&server, "web-agent", bad, &[])).await;
        assert_error_page(&seen, 400, "invalid_request");
    }
    // A web client's loopback redirect does not float over ports; only native ones do.
    let native_other_port =
        b.get(&authorize_url(&server, "desktop-agent", "http://127.0.0.1:53127/callback", &[])).await;
    assert!(native_other_port.redirects_to(&server.url("/login")), "RFC 8252: any port for native loopback");
    let native_other_path = b.get(&authorize_url(&server, "desktop-agent", "http://127.0.0.1:53127/other", &[])).await;
    assert_error_page(&native_other_path, 400, "invalid_request");
    let localhost_name = b.get(&authorize_url(&server, "desktop-agent", "http://localhost:53127/callback", &[])).await;
    assert_error_page(&localhost_name, 400, "invalid_request");
}

async fn verified_requests_get_errors_at_the_redirect_uri(backend: Backend) {
    let server = server(backend).await;
    let mut b = Browser::new();
    let issuer = server.issuer.clone();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "too-short")], "invalid_request"),
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("resource", "https://unknown.example/mcp")], "invalid_target"),
        (vec![("resource", "")], "invalid_target"),
        (vec![("resource", API)], "invalid_target"),
        (vec![("scope", "tools:read admin")], "invalid_scope"),
        (vec![("prompt", "none login")], "invalid_request"),
        (vec![("max_age", "soon")], "invalid_request"),
        (vec![("response_mode", "fragment")], "invalid_request"),
        (vec![("request", "eyJhbGciOiJub25lIn0.e30.")], "invalid_request"),
    ];
    for (extra, code) in cases {
        let url = authorize_url(&server, "web-agent", WEB_REDIRECT, &extra);
        let seen = b.get(&url).await;
        assert_error_redirect(&seen, WEB_REDIRECT, code, &issuer);
    }
    // A client without the code grant.
    let seen = b.get(&authorize_url(&server, "build-agent", WEB_REDIRECT, &[])).await;
    assert_error_page(&seen, 400, "invalid_request");
}

async fn pushed_requests_are_used_once_by_their_client(backend: Backend) {
    let server = server(backend).await;
    let challenge = mandate_core::pkce::s256(VERIFIER);
    let push = |client: &'static str, secret: Option<&'static str>, redirect: &'static str| {
        let challenge = challenge.clone();
        let server = &server;
        async move {
            let mut form = vec![
                ("response_type", "code"),
                ("redirect_uri", redirect),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("resource", crate::common::MCP),
                ("scope", "tools:read"),
                ("state", "st-123"),
            ];
            match secret {
                Some(s) => server.post_form("/par", Some((client, s)), &form).await,
                None => {
                    form.push(("client_id", client));
                    server.post_form("/par", None, &form).await
                }
            }
        }
    };
    let res = push("par-agent", Some(WEB_SECRET), "https://par.example/cb").await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    let request_uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert!(body["expires_in"].as_i64().unwrap() > 0);

    let mut b = Browser::new();
    // Another client cannot use it, and its attempt does not use it up (issue #15 item 13).
    let url = server.url(&format!("/authorize?client_id=web-agent&request_uri={}", urlencode(&request_uri)));
    assert_error_page(&b.get(&url).await, 400, "invalid_request");
    let url = server.url(&format!("/authorize?client_id=par-agent&request_uri={}", urlencode(&request_uri)));
    let first = b.get(&url).await;
    assert!(first.redirects_to(&server.url("/login")), "{:?}", first.location);
    assert_error_page(&b.get(&url).await, 400, "invalid_request");

    // par-agent must push; its plain requests are refused at its redirect URI.
    let direct = b.get(&authorize_url(&server, "par-agent", "https://par.example/cb", &[])).await;
    assert_error_redirect(&direct, "https://par.example/cb", "invalid_request", &server.issuer);

    // PAR checks everything /authorize checks, and answers in JSON.
    let res = server
        .post_form(
            "/par",
            Some(("par-agent", WEB_SECRET)),
            &[
                ("response_type", "code"),
                ("redirect_uri", "https://evil.example/cb"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("resource", crate::common::MCP),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = server.post_form("/par", Some(("par-agent", "wrong-secret")), &[("response_type", "code")]).await;
    assert_oauth_error(res, 401, "invalid_client").await;

    // A public client may push too; the whole flow then completes.
    let res = push("desktop-agent", None, NATIVE_REDIRECT).await;
    assert_eq!(res.status(), 201);
    let request_uri: String = res.json::<Value>().await.unwrap()["request_uri"].as_str().unwrap().to_owned();
    let start = b
        .get(&server.url(&format!("/authorize?client_id=desktop-agent&request_uri={}", urlencode(&request_uri))))
        .await;
    let login = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    let done = b.decide(login.location.as_deref().unwrap(), "approve", false).await;
    assert!(done.redirects_to(NATIVE_REDIRECT));
    assert_eq!(done.param("state").as_deref(), Some("st-123"));
    let res = redeem(&server, "desktop-agent", &done.param("code").unwrap(), NATIVE_REDIRECT).await;
    assert_eq!(res.status(), 200);
}

async fn prompt_and_max_age_are_honoured(backend: Backend) {
    let server = server(backend).await;
    let mut b = Browser::new();
    // prompt=none without a session: login_required, back to the client.
    let seen = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[("prompt", "none")])).await;
    assert_error_redirect(&seen, WEB_REDIRECT, "login_required", &server.issuer);
    // Signed in, without a remembered consent: consent_required.
    authorize_as_alice(&server, &mut b, "web-agent", WEB_REDIRECT, &[]).await;
    let seen = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[("prompt", "none")])).await;
    assert_error_redirect(&seen, WEB_REDIRECT, "consent_required", &server.issuer);
    // Remember it: prompt=none now answers with a code, no page.
    let start = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[])).await;
    b.decide(start.location.as_deref().unwrap(), "approve", true).await;
    let seen = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[("prompt", "none")])).await;
    assert!(seen.redirects_to(WEB_REDIRECT) && seen.param("code").is_some(), "{:?}", seen.location);
    // prompt=consent asks again despite the remembered consent.
    let seen = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[("prompt", "consent")])).await;
    assert!(seen.redirects_to(&server.url("/consent")), "{:?}", seen.location);
    // prompt=login and max_age=0 send a signed-in person back to the sign-in page.
    for extra in [("prompt", "login"), ("max_age", "0"), ("prompt", "login consent")] {
        let seen = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[extra])).await;
        assert!(seen.redirects_to(&server.url("/login")), "{extra:?}: {:?}", seen.location);
        // After signing in again, the remembered consent completes the request (unless the
        // request also asks for consent); the consent page does not ask for another sign-in.
        let mut done = b.sign_in(seen.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
        if extra.1.contains("consent") {
            assert!(done.redirects_to(&server.url("/consent")), "{:?}", done.location);
            done = b.decide(done.location.as_deref().unwrap(), "approve", false).await;
        }
        assert!(done.redirects_to(WEB_REDIRECT) && done.param("code").is_some(), "{extra:?}: {:?}", done.location);
    }
    // max_age: a sign-in older than max_age seconds is not enough.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let seen = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[("max_age", "1")])).await;
    assert!(seen.redirects_to(&server.url("/login")), "{:?}", seen.location);
    let seen = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[("max_age", "3600")])).await;
    assert!(seen.redirects_to(WEB_REDIRECT), "{:?}", seen.location);
}

crate::on_both_backends!(
    unverified_requests_get_a_page,
    verified_requests_get_errors_at_the_redirect_uri,
    pushed_requests_are_used_once_by_their_client,
    prompt_and_max_age_are_honoured,
);
