//! Pushed client registration (draft-richer-oauth-pushed-client-registration-00, behind
//! `registration.pushed`): the static client id, PAR with `client_registration`, a consent page
//! that names the client as unverified and never remembers, tokens without refresh, and every
//! way the static id is refused.

use mandate_core::{AuditKind, pkce};
use serde_json::{Value, json};

use crate::common::browser::*;
use crate::common::{API, Backend, MCP, Options, TestServer, assert_oauth_error, decode_unverified, fresh_database};

const STATIC_ID: &str = "urn:ietf:oauth:parameters:dynamic";
/// Registered without a port: a native client's loopback redirect matches on any port (RFC 8252).
const LOOPBACK: &str = "http://127.0.0.1/callback";
const LOOPBACK_WITH_PORT: &str = "http://127.0.0.1:53127/callback";
const NAME: &str = "Ephemeral Agent";

fn pushed_config() -> String {
    format!(
        "{}\n[registration]\npushed = true\npushed_scopes = [\"tools:read\", \"openid\", \"profile\"]\npushed_resources = [\"{MCP}\"]\n",
        delegation_config()
    )
}

async fn server(backend: Backend) -> TestServer {
    TestServer::start_on(fresh_database(backend).await, Options { config: pushed_config(), ..Options::default() }).await
}

fn registration() -> String {
    json!({ "client_name": NAME, "redirect_uris": [LOOPBACK], "application_type": "native" }).to_string()
}

/// POSTs to `/par` as a pushed client: the static id, `state`, PKCE over [`VERIFIER`], the MCP
/// resource; `extra` replaces those (an empty value removes one) and adds the rest.
async fn push(server: &TestServer, extra: &[(&str, &str)]) -> reqwest::Response {
    let challenge = pkce::s256(VERIFIER);
    let mut form: Vec<(&str, &str)> = vec![
        ("client_id", STATIC_ID),
        ("response_type", "code"),
        ("redirect_uri", LOOPBACK_WITH_PORT),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("resource", MCP),
        ("scope", "tools:read"),
        ("state", "st-123"),
    ];
    form.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    form.extend(extra.iter().filter(|(_, v)| !v.is_empty()));
    server.post_form("/par", None, &form).await
}

async fn pushed_uri(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    body["request_uri"].as_str().unwrap().to_owned()
}

fn authorize_with(server: &TestServer, request_uri: &str) -> String {
    server.url(&format!("/authorize?client_id={}&request_uri={}", urlencode(STATIC_ID), urlencode(request_uri)))
}

async fn redeem_pushed(server: &TestServer, code: &str, redirect_uri: &str) -> reqwest::Response {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", STATIC_ID),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("redirect_uri", redirect_uri),
    ];
    server.post_form("/token", None, &form).await
}

async fn discovery_advertises_the_flag_only_when_on(backend: Backend) {
    let on = server(backend).await;
    assert_eq!(on.metadata().await["pushed_client_registration_supported"], true);
    assert!(on.metadata().await["pushed_authorization_request_endpoint"].as_str().is_some());
    let off = TestServer::start(backend).await;
    assert_eq!(off.metadata().await["pushed_client_registration_supported"], false);
}

async fn full_flow_names_the_client_as_unverified_and_issues_no_refresh_token(backend: Backend) {
    let server = server(backend).await;
    let res = push(&server, &pushed_params(&registration())).await;
    let request_uri = pushed_uri(res).await;

    let mut b = Browser::new();
    let start = b.get(&authorize_with(&server, &request_uri)).await;
    assert!(start.redirects_to(&server.url("/login?request=")), "{} {:?} {}", start.status, start.location, start.body);
    let login_page = b.get(start.location.as_deref().unwrap()).await;
    assert!(login_page.body.contains("Ephemeral Agent (unverified name)"), "{}", login_page.body);
    let after_login = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    assert!(after_login.redirects_to(&server.url("/consent?request=")), "{:?}", after_login.location);
    let consent = b.get(after_login.location.as_deref().unwrap()).await;
    assert_eq!(consent.status, 200);
    for shown in
        ["Ephemeral Agent (unverified name)", "id=\"unverified-client\"", "127.0.0.1", "id=\"localhost-warning\""]
    {
        assert!(consent.body.contains(shown), "consent page lacks {shown:?}: {}", consent.body);
    }
    assert!(!consent.body.contains("Remember this decision"), "consent to a pushed client is never remembered");
    assert!(!consent.body.contains("offline_access"), "offline_access is dropped for pushed clients");
    // Even a forged remember=yes is ignored.
    let done = b.decide(after_login.location.as_deref().unwrap(), "approve", true).await;
    assert!(done.redirects_to(LOOPBACK_WITH_PORT), "{} {:?} {}", done.status, done.location, done.body);
    assert_eq!(done.param("state").as_deref(), Some("st-123"));
    assert_eq!(done.param("iss").as_deref(), Some(server.issuer.as_str()));
    let code = done.param("code").unwrap();

    // The code is bound to the pushed request's redirect URI (and PKCE verifier).
    let res = redeem_pushed(&server, &code, "http://127.0.0.1:1/callback").await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    let code = second_code(&server, &mut b, &registration()).await;
    let res = redeem_pushed(&server, &code, LOOPBACK_WITH_PORT).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "no refresh token for a pushed client: {body}");
    assert_eq!(body["scope"], "openid tools:read");
    let (_, at) = decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(at["client_id"], STATIC_ID);
    assert_eq!(at["aud"], MCP);
    assert_eq!(at["sub"], "alice");
    let (_, id) = decode_unverified(body["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], STATIC_ID);
    assert_eq!(id["nonce"], "n-1");

    let introspected = server.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["client_id"], STATIC_ID);
    assert_eq!(introspected["sub"], "alice");

    // The static client id has only the code grant.
    let res = server
        .post_form("/token", None, &[("grant_type", "client_credentials"), ("client_id", STATIC_ID), ("resource", MCP)])
        .await;
    assert_oauth_error(res, 400, "unauthorized_client").await;
    let res = server
        .post_form("/token", None, &[("grant_type", "refresh_token"), ("client_id", STATIC_ID), ("refresh_token", "x")])
        .await;
    assert_oauth_error(res, 400, "unauthorized_client").await;

    // The audit log names the client as pushed, with its self-asserted name.
    let events = server.state().store.recent_audit(50).await.unwrap();
    for kind in [AuditKind::ConsentGranted, AuditKind::TokenIssued] {
        let event = events
            .iter()
            .find(|e| e.kind == kind && e.outcome == "ok")
            .unwrap_or_else(|| panic!("no {kind:?} event: {events:?}"));
        assert_eq!(event.client_id.as_deref(), Some(STATIC_ID));
        let detail = event.detail.as_deref().unwrap_or_default();
        assert!(detail.contains("pushed client registration") && detail.contains(NAME), "{kind:?}: {detail}");
    }

    // Nothing remembered: the account page lists no consent, the store holds none.
    let account = b.get(&server.url("/account")).await;
    assert!(account.body.contains("id=\"no-consents\""), "{}", account.body);
    assert!(server.state().store.list_consents("alice").await.unwrap().is_empty());
}

/// The registration, with `offline_access` (to be dropped) and a nonce.
fn pushed_params(registration: &str) -> [(&str, &str); 3] {
    [("client_registration", registration), ("scope", "tools:read openid offline_access"), ("nonce", "n-1")]
}

/// Another pushed flow in the same browser (already signed in); returns the code.
async fn second_code(server: &TestServer, b: &mut Browser, registration: &str) -> String {
    let request_uri = pushed_uri(push(server, &pushed_params(registration)).await).await;
    let start = b.get(&authorize_with(server, &request_uri)).await;
    assert!(start.redirects_to(&server.url("/consent?request=")), "consent is asked again: {:?}", start.location);
    let done = b.decide(start.location.as_deref().unwrap(), "approve", true).await;
    assert!(done.redirects_to(LOOPBACK_WITH_PORT), "{:?}", done.location);
    done.param("code").unwrap()
}

async fn consent_is_asked_every_time(backend: Backend) {
    let server = server(backend).await;
    let mut b = Browser::new();
    let request_uri = pushed_uri(push(&server, &[("client_registration", &registration())]).await).await;
    let start = b.get(&authorize_with(&server, &request_uri)).await;
    let after_login = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    let done = b.decide(after_login.location.as_deref().unwrap(), "approve", true).await;
    assert!(done.redirects_to(LOOPBACK_WITH_PORT));

    // The same registration again, and then another app under the same static id: both asked.
    second_code(&server, &mut b, &registration()).await;
    let other = json!({ "client_name": "Someone Else", "redirect_uris": [LOOPBACK], "application_type": "native" });
    let request_uri = pushed_uri(push(&server, &[("client_registration", &other.to_string())]).await).await;
    let start = b.get(&authorize_with(&server, &request_uri)).await;
    assert!(start.redirects_to(&server.url("/consent?request=")), "{:?}", start.location);
    let page = b.get(start.location.as_deref().unwrap()).await;
    assert!(page.body.contains("Someone Else (unverified name)"));

    // prompt=none cannot skip the question either.
    let request_uri =
        pushed_uri(push(&server, &[("client_registration", &registration()), ("prompt", "none")]).await).await;
    let answer = b.get(&authorize_with(&server, &request_uri)).await;
    assert!(answer.redirects_to(LOOPBACK_WITH_PORT), "{:?}", answer.location);
    assert_eq!(answer.param("error").as_deref(), Some("consent_required"));
}

async fn authorize_without_par_is_refused_on_a_page(backend: Backend) {
    let server = server(backend).await;
    let mut b = Browser::new();
    let seen = b.get(&authorize_url(&server, STATIC_ID, LOOPBACK_WITH_PORT, &[])).await;
    assert_eq!(seen.status, 400, "{}", seen.body);
    assert!(seen.location.is_none(), "the redirect URI is unverified: never redirect");
    assert!(seen.body.contains("<code id=\"error-code\">invalid_request</code>"), "{}", seen.body);
    assert!(seen.body.contains("PAR endpoint"), "{}", seen.body);
    // A request_uri pushed by a registered client is not the static id's.
    let challenge = pkce::s256(VERIFIER);
    let form = [
        ("client_id", "desktop-agent"),
        ("response_type", "code"),
        ("redirect_uri", NATIVE_REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("resource", MCP),
    ];
    let desktop_uri = pushed_uri(server.post_form("/par", None, &form).await).await;
    let seen = b.get(&authorize_with(&server, &desktop_uri)).await;
    assert_eq!(seen.status, 400);
    assert!(seen.location.is_none());
}

async fn the_static_id_is_unknown_when_the_flag_is_off(backend: Backend) {
    let server = TestServer::start_on(
        fresh_database(backend).await,
        Options { config: delegation_config(), ..Options::default() },
    )
    .await;
    let res = push(&server, &[("client_registration", &registration())]).await;
    assert_oauth_error(res, 401, "invalid_client").await;
    let seen = Browser::new().get(&authorize_url(&server, STATIC_ID, LOOPBACK_WITH_PORT, &[])).await;
    assert_eq!(seen.status, 400);
    assert!(seen.location.is_none());
    let res = redeem_pushed(&server, "some-code", LOOPBACK_WITH_PORT).await;
    assert_oauth_error(res, 401, "invalid_client").await;
}

async fn bad_registrations_are_refused(backend: Backend) {
    let server = server(backend).await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({ "client_name": NAME, "redirect_uris": [LOOPBACK], "client_secret": "s3cret" }),
            "invalid_client_metadata",
            "secret",
        ),
        (
            json!({ "redirect_uris": [LOOPBACK], "token_endpoint_auth_method": "client_secret_basic" }),
            "invalid_client_metadata",
            "auth method",
        ),
        (
            json!({ "redirect_uris": [LOOPBACK], "jwks_uri": "https://keys.example/jwks" }),
            "invalid_client_metadata",
            "keys",
        ),
        (
            json!({ "redirect_uris": [LOOPBACK], "client_name": "x".repeat(201) }),
            "invalid_client_metadata",
            "long name",
        ),
        (
            json!({ "redirect_uris": [LOOPBACK], "grant_types": ["client_credentials"] }),
            "invalid_client_metadata",
            "grant",
        ),
        (json!({ "redirect_uris": [LOOPBACK], "client_id": "desktop-agent" }), "invalid_client_metadata", "client_id"),
        (json!({ "redirect_uris": "not a list" }), "invalid_client_metadata", "shape"),
        (json!({ "redirect_uris": ["https://other.example/cb"] }), "invalid_redirect_uri", "not among them"),
        (json!({ "redirect_uris": [LOOPBACK, "http://evil.example/cb"] }), "invalid_redirect_uri", "plain http"),
        (json!({ "redirect_uris": [] }), "invalid_redirect_uri", "none"),
    ];
    for (registration, error, why) in cases {
        let res = push(&server, &[("client_registration", &registration.to_string())]).await;
        let body = assert_oauth_error(res, 400, error).await;
        assert!(!body.to_string().contains("s3cret"), "{why}: the secret is not echoed");
    }
    let res = push(&server, &[("client_registration", "{not json")]).await;
    assert_oauth_error(res, 400, "invalid_client_metadata").await;
    let huge = json!({ "redirect_uris": [LOOPBACK], "client_name": NAME, "logo_uri": "x".repeat(6000) });
    let res = push(&server, &[("client_registration", &huge.to_string())]).await;
    assert_oauth_error(res, 400, "invalid_client_metadata").await;

    // Redirect URI: required, and the sole registered one when no registration is sent.
    let res = push(&server, &[("redirect_uri", "")]).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = push(&server, &[("redirect_uri", "http://evil.example/cb")]).await;
    assert_oauth_error(res, 400, "invalid_redirect_uri").await;
    let res = push(&server, &[("redirect_uri", "https://app.example/cb")]).await;
    assert_eq!(res.status(), 201, "without client_registration, an https redirect_uri is its registration");
    let res = push(&server, &[("state", "")]).await;
    assert_oauth_error(res, 400, "invalid_request").await;

    // A public client: no secret or assertion, and only what the pushed policy allows.
    let registration = registration();
    let res = push(&server, &[("client_registration", &registration), ("client_secret", "s3cret")]).await;
    let body = assert_oauth_error(res, 401, "invalid_client").await;
    assert!(body["error_description"].as_str().unwrap().contains("public client"), "{body}");
    let res = push(&server, &[("client_registration", &registration), ("scope", "tools:call")]).await;
    assert_oauth_error(res, 400, "invalid_scope").await;
    let res = push(&server, &[("client_registration", &registration), ("resource", API)]).await;
    assert_oauth_error(res, 400, "invalid_target").await;
    let res = push(&server, &[("client_registration", &registration), ("code_challenge_method", "plain")]).await;
    assert_oauth_error(res, 400, "invalid_request").await;

    // client_registration belongs to the static id only.
    let challenge = pkce::s256(VERIFIER);
    let form = [
        ("client_id", "desktop-agent"),
        ("response_type", "code"),
        ("redirect_uri", NATIVE_REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("resource", MCP),
        ("client_registration", registration.as_str()),
    ];
    assert_oauth_error(server.post_form("/par", None, &form).await, 400, "invalid_request").await;
}

#[test]
fn a_config_client_with_the_static_id_stops_the_start() {
    let text = format!(
        "{}\n[[clients]]\nclient_id = \"{STATIC_ID}\"\ntoken_endpoint_auth_method = \"none\"\nredirect_uris = [\"{LOOPBACK}\"]\n",
        delegation_config()
    );
    let e = mandate_server::config::from_toml(&text).unwrap_err().to_string();
    assert!(e.contains(".client_id:") && e.contains("pushed client registration"), "{e}");
    let text = format!(
        "{}\n[registration]\npushed = true\npushed_scopes = [\"tools:read\", \"offline_access\"]\n",
        delegation_config()
    );
    let e = mandate_server::config::from_toml(&text).unwrap_err().to_string();
    assert!(e.starts_with("registration.pushed_scopes:"), "{e}");
}

crate::on_both_backends!(
    discovery_advertises_the_flag_only_when_on,
    full_flow_names_the_client_as_unverified_and_issues_no_refresh_token,
    consent_is_asked_every_time,
    authorize_without_par_is_refused_on_a_page,
    the_static_id_is_unknown_when_the_flag_is_off,
    bad_registrations_are_refused,
);
