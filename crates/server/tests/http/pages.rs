//! The pages themselves: security headers and cookies, CSRF, sign-in throttling, expired
//! sessions, the account page, logout and UserInfo errors.

use std::sync::Arc;

use mandate_core::MockClock;
use serde_json::Value;

use crate::code_flow::{server, server_with_clock};
use crate::common::browser::*;
use crate::common::{Backend, Options, TestServer, fresh_database};

async fn pages_send_security_headers_and_strict_cookies(backend: Backend) {
    let server = server(backend).await;
    let mut b = Browser::new();
    let start = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[])).await;
    let login = b.get(start.location.as_deref().unwrap()).await;
    for seen in [&start, &login] {
        let csp = seen.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(seen.headers["x-frame-options"], "DENY");
        assert_eq!(seen.headers["cache-control"], "no-store");
    }
    b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    let session = b.set_cookie_headers.iter().find(|c| c.starts_with("mandate_session=")).expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    assert!(!session.contains("Secure"), "plain-http loopback issuer: no Secure flag ({session})");
    let csrf = b.set_cookie_headers.iter().find(|c| c.starts_with("mandate_csrf=")).expect("a CSRF cookie");
    assert!(csrf.contains("HttpOnly") && csrf.contains("SameSite=Lax"), "{csrf}");
}

async fn https_issuer_sets_secure_cookies(backend: Backend) {
    let db = fresh_database(backend).await;
    let server = TestServer::start_on(
        db,
        Options { config: delegation_config(), issuer: Some("https://auth.example.com".into()), ..Options::default() },
    )
    .await;
    let mut b = Browser::new();
    // The pages still work when reached directly on loopback; only the cookie flags matter here.
    let login = b.get(&server.url("/login")).await;
    assert_eq!(login.status, 200);
    let csrf = b.set_cookie_headers.iter().find(|c| c.starts_with("mandate_csrf=")).unwrap();
    assert!(csrf.contains("; Secure"), "{csrf}");
}

async fn forms_need_the_csrf_token(backend: Backend) {
    let server = server(backend).await;
    let mut b = Browser::new();
    let start = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[])).await;
    let page = b.get(start.location.as_deref().unwrap()).await;
    let request = page.field("request").unwrap();
    let login_url = server.url("/login");
    let base = [("request", request.as_str()), ("username", "alice"), ("password", ALICE_PASSWORD)];
    // Missing, forged, and a valid token without its cookie (another browser's page).
    let missing = b.post(&login_url, &base).await;
    let forged = b
        .post(&login_url, &[base.as_slice(), &[("csrf", "forged-value-000000000000000000000000000000")]].concat())
        .await;
    let mut other = Browser::new();
    let real = page.field("csrf").unwrap();
    let cross_site = other.post(&login_url, &[base.as_slice(), &[("csrf", real.as_str())]].concat()).await;
    for seen in [missing, forged, cross_site] {
        assert_eq!(seen.status, 403, "{}", seen.body);
        assert!(seen.location.is_none());
        assert!(!b.set_cookie_headers.iter().any(|c| c.starts_with("mandate_session=")), "no session without CSRF");
    }
    // The consent form too.
    let signed_in = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    let consent = b.get(signed_in.location.as_deref().unwrap()).await;
    let request = consent.field("request").unwrap();
    let res = b.post(&server.url("/consent"), &[("request", request.as_str()), ("decision", "approve")]).await;
    assert_eq!(res.status, 403);
    assert!(res.location.is_none(), "no code without CSRF");
}

async fn sign_in_failures_are_throttled(backend: Backend) {
    let server = server(backend).await;
    let mut b = Browser::new();
    let login = server.url("/login");
    for _ in 0..5 {
        let seen = b.sign_in(&login, "alice", "wrong password").await;
        assert_eq!(seen.status, 401);
        assert!(seen.body.contains("Incorrect username or password"));
    }
    let locked = b.sign_in(&login, "alice", ALICE_PASSWORD).await;
    assert_eq!(locked.status, 429, "the right password is refused while the account is locked");
    assert!(locked.body.contains("Too many failed sign-ins"));
    // Another account from the same address still signs in (per-address limit is higher).
    let other = b.sign_in(&login, "mallory", "mallory-password-123").await;
    assert_eq!(other.status, 303, "{}", other.body);
    // Unknown users get the same answer as wrong passwords.
    let unknown = Browser::new().sign_in(&login, "nobody", "whatever").await;
    assert_eq!(unknown.status, 401);
    assert!(unknown.body.contains("Incorrect username or password"));
}

async fn expired_sessions_and_requests_send_the_person_back(backend: Backend) {
    let clock = Arc::new(MockClock::new(1_800_000_000));
    let server = server_with_clock(backend, clock.clone()).await;
    let mut b = Browser::new();
    let start = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[])).await;
    let consent_at = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    let consent_url = consent_at.location.clone().unwrap();
    let page = b.get(&consent_url).await;
    // The session lasts 12 hours by default; the request was kept for 15 minutes.
    clock.advance(10 * 60);
    let session_ok = b.get(&consent_url).await;
    assert_eq!(session_ok.status, 200);
    clock.advance(13 * 3600);
    let form = [
        ("csrf", page.field("csrf").unwrap()),
        ("request", page.field("request").unwrap()),
        ("decision", "approve".into()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let expired = b.post(&server.url("/consent"), &form).await;
    assert_eq!(expired.status, 400, "an expired request is shown as such, never redirected: {:?}", expired.location);
    assert!(expired.body.contains("expired"), "{}", expired.body);

    // A fresh request with a session that has expired goes to the sign-in page.
    let again = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[])).await;
    assert!(again.redirects_to(&server.url("/login")), "{:?}", again.location);
}

async fn account_page_revokes_remembered_consent(backend: Backend) {
    let server = server(backend).await;
    let mut b = Browser::new();
    let start = b
        .get(&authorize_url(&server, "desktop-agent", NATIVE_REDIRECT, &[("scope", "tools:read offline_access")]))
        .await;
    let consent = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    let done = b.decide(consent.location.as_deref().unwrap(), "approve", true).await;
    let body: Value =
        redeem(&server, "desktop-agent", &done.param("code").unwrap(), NATIVE_REDIRECT).await.json().await.unwrap();
    // Remembered: the next request skips the page.
    let next = b
        .get(&authorize_url(&server, "desktop-agent", NATIVE_REDIRECT, &[("scope", "tools:read offline_access")]))
        .await;
    assert!(next.redirects_to(NATIVE_REDIRECT), "{:?}", next.location);
    // A wider request is asked again.
    let wider =
        b.get(&authorize_url(&server, "desktop-agent", NATIVE_REDIRECT, &[("scope", "tools:read tools:call")])).await;
    assert!(wider.redirects_to(&server.url("/consent")), "{:?}", wider.location);

    let account = b.get(&server.url("/account")).await;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("Desktop Agent"));
    let form = [
        ("csrf", account.field("csrf").unwrap()),
        ("client_id", account.field("client_id").unwrap()),
        ("resources", account.field("resources").unwrap()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let revoked = b.post(&server.url("/account/consents/revoke"), &form).await;
    assert!(revoked.redirects_to(&server.url("/account")));
    assert!(b.get(&server.url("/account")).await.body.contains("id=\"no-consents\""));
    // The consent page is back, and the tokens of that app are revoked.
    let after = b
        .get(&authorize_url(&server, "desktop-agent", NATIVE_REDIRECT, &[("scope", "tools:read offline_access")]))
        .await;
    assert!(after.redirects_to(&server.url("/consent")), "{:?}", after.location);
    assert_eq!(server.introspect(body["access_token"].as_str().unwrap()).await["active"], false);
    let res = server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "desktop-agent"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(res.status(), 400);
}

async fn logout_ends_the_session(backend: Backend) {
    let server = server(backend).await;
    let mut b = Browser::new();
    let code = authorize_as_alice(&server, &mut b, "web-agent", WEB_REDIRECT, &[("scope", "openid tools:read")]).await;
    let body: Value = redeem(&server, "web-agent", &code, WEB_REDIRECT).await.json().await.unwrap();
    let id_token = body["id_token"].as_str().unwrap();

    // An unregistered post-logout URI is refused on a page.
    let bad = b
        .get(&server.url(&format!(
            "/logout?id_token_hint={id_token}&post_logout_redirect_uri={}",
            urlencode("https://evil.example/")
        )))
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.location.is_none());
    // A forged hint is refused.
    let forged = b.get(&server.url("/logout?id_token_hint=eyJhbGciOiJFUzI1NiJ9.e30.AAAA")).await;
    assert_eq!(forged.status, 400);

    let out = b
        .get(&server.url(&format!(
            "/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye-1",
            urlencode("https://agent.example/bye")
        )))
        .await;
    assert!(out.redirects_to("https://agent.example/bye?state=bye-1"), "{:?}", out.location);
    let again = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[])).await;
    assert!(again.redirects_to(&server.url("/login")), "signed out: {:?}", again.location);

    // Someone else's ID token as the hint does not sign alice out without her confirmation.
    let mut mallory = Browser::new();
    let code = authorize_as(&server, &mut mallory, "mallory", "mallory-password-123").await;
    let mallory_tokens: Value = redeem(&server, "web-agent", &code, WEB_REDIRECT).await.json().await.unwrap();
    authorize_as_alice(&server, &mut b, "web-agent", WEB_REDIRECT, &[]).await;
    let foreign =
        b.get(&server.url(&format!("/logout?id_token_hint={}", mallory_tokens["id_token"].as_str().unwrap()))).await;
    assert_eq!(foreign.status, 200, "a confirmation page, not a sign-out");
    assert!(foreign.body.contains("Sign out?"));
    assert_eq!(b.get(&server.url("/account")).await.status, 200, "alice is still signed in");

    // Without a hint, the person confirms (with CSRF).
    let confirm = b.get(&server.url("/logout")).await;
    assert_eq!(confirm.status, 200);
    let no_csrf = b.post(&server.url("/logout"), &[]).await;
    assert_eq!(no_csrf.status, 403);
    let csrf = confirm.field("csrf").unwrap();
    let done = b.post(&server.url("/logout"), &[("csrf", csrf.as_str())]).await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("signed out"));
    assert!(b.get(&server.url("/account")).await.redirects_to(&server.url("/login")));
}

/// The front channel for another user, with openid.
async fn authorize_as(server: &TestServer, b: &mut Browser, user: &str, password: &str) -> String {
    let start = b.get(&authorize_url(server, "web-agent", WEB_REDIRECT, &[("scope", "openid tools:read")])).await;
    let consent = b.sign_in(start.location.as_deref().unwrap(), user, password).await;
    let done = b.decide(consent.location.as_deref().unwrap(), "approve", false).await;
    done.param("code").unwrap()
}

async fn userinfo_refuses_what_it_should(backend: Backend) {
    let server = server(backend).await;
    let call = |token: &str| server.http.get(server.url("/userinfo")).bearer_auth(token).send();
    let res = call("not-a-token").await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    let res = server.http.get(server.url("/userinfo")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // A client-credentials token has no person behind it and no openid scope.
    let res = call(&server.agent_token().await).await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
}

crate::on_both_backends!(
    pages_send_security_headers_and_strict_cookies,
    https_issuer_sets_secure_cookies,
    forms_need_the_csrf_token,
    sign_in_failures_are_throttled,
    expired_sessions_and_requests_send_the_person_back,
    account_page_revokes_remembered_consent,
    logout_ends_the_session,
    userinfo_refuses_what_it_should,
);
