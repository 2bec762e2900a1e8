//! RFC 7592 reads and updates of a dynamic registration, and software statements (RFC 7591 §2.3)
//! from configured publishers giving a client a verified name.

use mandate_core::jose::{SigningAlgorithm, SigningKey, generate_private_key, public_jwks};
use serde_json::{Value, json};

use crate::common::browser::*;
use crate::common::{Backend, MCP, Options, TestServer, assert_oauth_error, fresh_database};

const PUBLISHER: &str = "https://publisher.example";

async fn server(backend: Backend, registration: &str) -> TestServer {
    let config = format!(
        "[registration]\ndynamic = true\nunattended_grant_types = [\"client_credentials\"]\nunattended_resources = [\"http://127.0.0.1:9090/mcp\"]\nunattended_scopes = [\"tools:read\"]\n{registration}\n{}",
        delegation_config()
    );
    TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await
}

async fn register(server: &TestServer, body: &Value) -> reqwest::Response {
    server.http.post(server.url("/register")).json(body).send().await.unwrap()
}

fn key() -> SigningKey {
    SigningKey::from_pkcs8(SigningAlgorithm::ES256, &generate_private_key(SigningAlgorithm::ES256).unwrap()).unwrap()
}

/// `[[registration.software_publishers]]` trusting `key`, with the JWK Set as JSON text.
fn publisher_config(key: &SigningKey, require: bool) -> String {
    let jwks = serde_json::to_string(&public_jwks([key])).unwrap();
    format!(
        "require_software_statement = {require}\n\n[[registration.software_publishers]]\nissuer = \"{PUBLISHER}\"\nname = \"Example Publisher\"\njwks = '{jwks}'\n"
    )
}

async fn consent_page(server: &TestServer, client_id: &str) -> String {
    let mut b = Browser::new();
    let start = b.get(&authorize_url(server, client_id, NATIVE_REDIRECT, &[("scope", "tools:read")])).await;
    let consent_at = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    b.get(consent_at.location.as_deref().unwrap()).await.body
}

async fn clients_read_and_replace_their_registration(backend: Backend) {
    let server = server(backend, "").await;
    let res = register(
        &server,
        &json!({
            "client_name": "Report bot", "grant_types": ["client_credentials", "authorization_code"],
            "token_endpoint_auth_method": "client_secret_basic", "redirect_uris": ["https://bot.example/cb"],
            "post_logout_redirect_uris": ["https://bot.example/bye"], "scope": "tools:read", "software_id": "report-bot",
        }),
    )
    .await;
    assert_eq!(res.status(), 201);
    let reg: Value = res.json().await.unwrap();
    let (id, secret) = (reg["client_id"].as_str().unwrap(), reg["client_secret"].as_str().unwrap());
    let (token, uri) =
        (reg["registration_access_token"].as_str().unwrap(), reg["registration_client_uri"].as_str().unwrap());

    // The read gives back everything registered, without the secret.
    let read = server.http.get(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["cache-control"], "no-store");
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["client_name"], "Report bot");
    assert_eq!(read["post_logout_redirect_uris"], json!(["https://bot.example/bye"]));
    assert_eq!(read["scope"], "tools:read");
    assert_eq!(read["software_id"], "report-bot");
    assert_eq!(read["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(read["client_id_issued_at"], reg["client_id_issued_at"]);
    assert!(read.get("client_secret").is_none() && read.get("registration_access_token").is_none());

    // An update echoing the read with changes: fields left out are removed, the secret is kept.
    let mut changed = read.clone();
    changed["client_name"] = json!("Report bot v2");
    changed["redirect_uris"] = json!(["https://bot.example/cb2"]);
    changed.as_object_mut().unwrap().remove("post_logout_redirect_uris");
    let res = server.http.put(uri).bearer_auth(token).json(&changed).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["client_name"], "Report bot v2");
    assert_eq!(updated["client_id"], id);
    assert!(updated.get("client_secret").is_none(), "the secret stays the same and is not sent again");
    let reread: Value = server.http.get(uri).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(reread["redirect_uris"], json!(["https://bot.example/cb2"]));
    assert!(reread.get("post_logout_redirect_uris").is_none(), "left out means removed");
    let res = server
        .post_form("/token", Some((id, secret)), &[("grant_type", "client_credentials"), ("resource", MCP)])
        .await;
    assert_eq!(res.status(), 200, "the unchanged secret still authenticates");
    let mut b = Browser::new();
    let old = b.get(&authorize_url(&server, id, "https://bot.example/cb", &[])).await;
    assert_eq!(old.status, 400, "the replaced redirect URI no longer matches");
    let new = b.get(&authorize_url(&server, id, "https://bot.example/cb2", &[])).await;
    assert!(new.redirects_to(&server.url("/login")), "{:?}", new.location);

    // Refusals: another token, another client_id, a chosen secret, bad metadata.
    let res = server.http.put(uri).bearer_auth("not-the-token").json(&changed).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_token").await;
    let mut other_id = changed.clone();
    other_id["client_id"] = json!("dcr_someone_else");
    let res = server.http.put(uri).bearer_auth(token).json(&other_id).send().await.unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    let mut chosen = changed.clone();
    chosen["client_secret"] = json!("my-own-secret-0123456789abcdefghijkl");
    let res = server.http.put(uri).bearer_auth(token).json(&chosen).send().await.unwrap();
    assert_oauth_error(res, 400, "invalid_client_metadata").await;
    let mut same = changed.clone();
    same["client_secret"] = json!(secret);
    assert_eq!(server.http.put(uri).bearer_auth(token).json(&same).send().await.unwrap().status(), 200);
    let mut bad = changed.clone();
    bad["redirect_uris"] = json!(["http://bot.example/plain-http"]);
    let res = server.http.put(uri).bearer_auth(token).json(&bad).send().await.unwrap();
    assert_oauth_error(res, 400, "invalid_redirect_uri").await;
    let unchanged: Value = server.http.get(uri).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(unchanged["redirect_uris"], json!(["https://bot.example/cb2"]), "a refused update changes nothing");
    let audit = server.state().store.recent_audit(20).await.unwrap();
    assert!(
        audit.iter().any(|e| e.kind == mandate_core::AuditKind::ClientUpdated && e.client_id.as_deref() == Some(id))
    );
}

async fn a_keyed_client_moving_to_a_secret_gets_one(backend: Backend) {
    let server = server(backend, "").await;
    let jwks = public_jwks([&key()]);
    let body = json!({ "client_name": "CLI", "application_type": "native", "token_endpoint_auth_method": "private_key_jwt",
                       "jwks": jwks, "redirect_uris": [NATIVE_REDIRECT] });
    let reg: Value = register(&server, &body).await.json().await.unwrap();
    assert!(reg.get("client_secret").is_none());
    let (id, token, uri) = (
        reg["client_id"].as_str().unwrap(),
        reg["registration_access_token"].as_str().unwrap(),
        reg["registration_client_uri"].as_str().unwrap(),
    );
    let mut changed = body.clone();
    changed.as_object_mut().unwrap().remove("jwks");
    changed["client_id"] = json!(id);
    changed["token_endpoint_auth_method"] = json!("client_secret_post");
    changed["grant_types"] = json!(["client_credentials"]);
    let updated: Value =
        server.http.put(uri).bearer_auth(token).json(&changed).send().await.unwrap().json().await.unwrap();
    let secret = updated["client_secret"].as_str().expect("a new secret, returned once");
    let res = server
        .post_form(
            "/token",
            None,
            &[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret), ("resource", MCP)],
        )
        .await;
    assert_eq!(res.status(), 200);
    // A managed client is never shared: public metadata identical to what it moves to makes a new client.
    let mut public = changed.clone();
    public["token_endpoint_auth_method"] = json!("none");
    public["grant_types"] = json!(["authorization_code"]);
    let moved: Value =
        server.http.put(uri).bearer_auth(token).json(&public).send().await.unwrap().json().await.unwrap();
    assert_eq!(moved["client_id"], id);
    public.as_object_mut().unwrap().remove("client_id");
    let again: Value = register(&server, &public).await.json().await.unwrap();
    assert_ne!(again["client_id"], id);
}

/// Issue #15 item 4, as reproduced: an attacker registers first, the real app registers the same
/// public metadata and gets the same client, alice approves it with "remember". The attacker must
/// hold no management right to change the redirect URIs (or delete the client) under everyone.
async fn a_shared_public_registration_cannot_be_hijacked(backend: Backend) {
    let server = server(backend, "").await;
    let app = json!({ "client_name": "Real app", "application_type": "native", "token_endpoint_auth_method": "none",
                      "redirect_uris": [NATIVE_REDIRECT], "grant_types": ["authorization_code"] });
    let attacker: Value = register(&server, &app).await.json().await.unwrap();
    let real: Value = register(&server, &app).await.json().await.unwrap();
    assert_eq!(attacker["client_id"], real["client_id"]);
    for reg in [&attacker, &real] {
        assert!(reg.get("registration_access_token").is_none() && reg.get("registration_client_uri").is_none());
    }
    // A token a registration received before this fix is refused for a shared client.
    let id = real["client_id"].as_str().unwrap();
    let old_token = "registration-token-from-before-0123456789";
    let store = &server.state().store;
    let mut legacy = store.get_registration(id).await.unwrap().unwrap();
    legacy.client_id = "dcr_legacy_shared".into();
    legacy.access_token_hash = mandate_core::SecretDigest::of(old_token).encode();
    let mut legacy_client = store.get_client(id).await.unwrap().unwrap();
    legacy_client.client_id = legacy.client_id.clone();
    store.register_client(&legacy_client, &legacy).await.unwrap();
    let uri = server.url("/register/dcr_legacy_shared");
    let mut hijack = app.clone();
    hijack["client_id"] = json!("dcr_legacy_shared");
    hijack["redirect_uris"] = json!(["https://attacker.example/cb"]);
    let res = server.http.put(&uri).bearer_auth(old_token).json(&hijack).send().await.unwrap();
    let body = assert_oauth_error(res, 401, "invalid_token").await;
    assert!(body["error_description"].as_str().unwrap().contains("shared"), "{body}");
    assert_eq!(server.http.delete(&uri).bearer_auth(old_token).send().await.unwrap().status(), 401);
}

/// Issue #15 item 4: when a client's redirect URIs change, what a person decided for the old ones
/// is forgotten: the remembered consent (prompt=none no longer answers with a code) and the
/// outstanding code (refused at the token endpoint).
async fn changed_redirect_uris_drop_consents_and_outstanding_codes(backend: Backend) {
    let server = server(backend, "").await;
    let body = json!({ "client_name": "Web bot", "token_endpoint_auth_method": "client_secret_basic",
                       "redirect_uris": ["https://bot.example/cb"], "grant_types": ["authorization_code"] });
    let reg: Value = register(&server, &body).await.json().await.unwrap();
    let (id, secret) = (reg["client_id"].as_str().unwrap(), reg["client_secret"].as_str().unwrap());
    let (token, uri) =
        (reg["registration_access_token"].as_str().unwrap(), reg["registration_client_uri"].as_str().unwrap());
    let mut b = Browser::new();
    let start = b.get(&authorize_url(&server, id, "https://bot.example/cb", &[("scope", "tools:read")])).await;
    let consent_at = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    let done = b.decide(consent_at.location.as_deref().unwrap(), "approve", true).await;
    let outstanding = done.param("code").expect("a code");
    // Remembered: prompt=none answers with a code at once.
    let silent = b
        .get(&authorize_url(&server, id, "https://bot.example/cb", &[("scope", "tools:read"), ("prompt", "none")]))
        .await;
    assert!(silent.param("code").is_some(), "{:?}", silent.location);

    let mut moved = body.clone();
    moved["client_id"] = json!(id);
    moved["redirect_uris"] = json!(["https://elsewhere.example/cb"]);
    assert_eq!(server.http.put(uri).bearer_auth(token).json(&moved).send().await.unwrap().status(), 200);

    let silent = b
        .get(&authorize_url(
            &server,
            id,
            "https://elsewhere.example/cb",
            &[("scope", "tools:read"), ("prompt", "none")],
        ))
        .await;
    assert!(silent.param("code").is_none(), "no code without asking alice again: {:?}", silent.location);
    assert_eq!(silent.param("error").as_deref(), Some("consent_required"), "{:?}", silent.location);
    let res = server
        .post_form(
            "/token",
            Some((id, secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &outstanding),
                ("redirect_uri", "https://bot.example/cb"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

async fn a_signed_statement_gives_a_verified_name(backend: Backend) {
    let publisher = key();
    let server = server(backend, &publisher_config(&publisher, false)).await;
    let now = mandate_core::Clock::now(&mandate_core::SystemClock);
    let statement = publisher
        .sign(
            "JWT",
            &json!({ "iss": PUBLISHER, "iat": now, "exp": now + 3600, "client_name": "Signed Agent",
                              "software_id": "signed-agent", "token_endpoint_auth_method": "none",
                              "redirect_uris": [NATIVE_REDIRECT] }),
        )
        .unwrap();
    let body = json!({ "client_name": "Totally Official Agent", "application_type": "native",
                       "redirect_uris": [NATIVE_REDIRECT], "software_statement": statement });
    let res = register(&server, &body).await;
    assert_eq!(res.status(), 201);
    let reg: Value = res.json().await.unwrap();
    assert_eq!(reg["client_name"], "Signed Agent", "the statement's values win over plain JSON");
    assert_eq!(reg["software_id"], "signed-agent");
    assert_eq!(reg["software_statement"], statement.as_str());
    let page = consent_page(&server, reg["client_id"].as_str().unwrap()).await;
    assert!(page.contains("id=\"verified-publisher\"") && page.contains("Example Publisher"), "{page}");
    assert!(page.contains("Signed Agent") && !page.contains("Totally Official"));

    // Issue #15 item 14: a statement that does not sign the redirect URIs can be replayed by anyone
    // with their own, so it earns no badge (its metadata still applies).
    let unbound = publisher
        .sign(
            "JWT",
            &json!({ "iss": PUBLISHER, "iat": now, "exp": now + 3600, "client_name": "Signed Agent",
                     "software_id": "signed-agent", "token_endpoint_auth_method": "none" }),
        )
        .unwrap();
    let replayed: Value = register(
        &server,
        &json!({ "application_type": "native", "redirect_uris": [NATIVE_REDIRECT], "software_statement": unbound }),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(replayed["client_name"], "Signed Agent");
    let page = consent_page(&server, replayed["client_id"].as_str().unwrap()).await;
    assert!(page.contains("id=\"unverified-name\"") && !page.contains("id=\"verified-publisher\""), "{page}");

    // Without a statement the name is the client's own claim, and the page says so.
    let plain: Value = register(
        &server,
        &json!({ "client_name": "Plain Agent", "application_type": "native",
        "token_endpoint_auth_method": "none", "redirect_uris": [NATIVE_REDIRECT] }),
    )
    .await
    .json()
    .await
    .unwrap();
    let page = consent_page(&server, plain["client_id"].as_str().unwrap()).await;
    assert!(page.contains("id=\"unverified-name\"") && !page.contains("id=\"verified-publisher\""), "{page}");
}

async fn bad_statements_are_refused(backend: Backend) {
    let publisher = key();
    let server = server(backend, &publisher_config(&publisher, true)).await;
    let now = mandate_core::Clock::now(&mandate_core::SystemClock);
    let with = |statement: String| {
        json!({ "application_type": "native", "token_endpoint_auth_method": "none",
                "redirect_uris": [NATIVE_REDIRECT], "software_statement": statement })
    };
    let claims = json!({ "iss": PUBLISHER, "iat": now, "client_name": "Agent" });
    let cases = [
        (with(key().sign("JWT", &claims).unwrap()), "invalid_software_statement"),
        (
            with(publisher.sign("JWT", &json!({ "iss": "https://other.example", "client_name": "Agent" })).unwrap()),
            "unapproved_software_statement",
        ),
        (
            with(
                publisher.sign("JWT", &json!({ "iss": PUBLISHER, "exp": now - 600, "client_name": "Agent" })).unwrap(),
            ),
            "invalid_software_statement",
        ),
        (with(publisher.sign("JWT", &json!({ "iss": PUBLISHER })).unwrap()), "invalid_software_statement"),
        (with("not-a-jwt".into()), "invalid_software_statement"),
        // Required here: a registration without one is refused.
        (
            json!({ "client_name": "Agent", "application_type": "native", "token_endpoint_auth_method": "none",
                    "redirect_uris": [NATIVE_REDIRECT] }),
            "invalid_software_statement",
        ),
    ];
    for (body, error) in cases {
        let description = assert_oauth_error(register(&server, &body).await, 400, error).await;
        assert!(description["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let ok = register(&server, &with(publisher.sign("JWT", &claims).unwrap())).await;
    assert_eq!(ok.status(), 201);
}

/// The same for a configured client whose redirect URIs an operator changes: after the restart,
/// alice is asked again.
async fn a_config_client_with_new_redirect_uris_asks_again(backend: Backend) {
    let config = delegation_config();
    let server =
        TestServer::start_on(fresh_database(backend).await, Options { config: config.clone(), ..Options::default() })
            .await;
    let mut b = Browser::new();
    let start = b.get(&authorize_url(&server, "web-agent", WEB_REDIRECT, &[("scope", "tools:read")])).await;
    let consent_at = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    b.decide(consent_at.location.as_deref().unwrap(), "approve", true).await;
    let db = server.stop().await;

    let moved = config
        .replace(&format!("redirect_uris = [\"{WEB_REDIRECT}\"]"), "redirect_uris = [\"https://moved.example/cb\"]");
    assert_ne!(moved, config);
    let server = TestServer::start_on(db, Options { config: moved, ..Options::default() }).await;
    let mut b = Browser::new();
    let start =
        b.get(&authorize_url(&server, "web-agent", "https://moved.example/cb", &[("scope", "tools:read")])).await;
    let next = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    assert!(next.redirects_to(&server.url("/consent")), "asked again: {:?}", next.location);
}

crate::on_both_backends!(
    a_config_client_with_new_redirect_uris_asks_again,
    clients_read_and_replace_their_registration,
    a_keyed_client_moving_to_a_secret_gets_one,
    a_shared_public_registration_cannot_be_hijacked,
    changed_redirect_uris_drop_consents_and_outstanding_codes,
    a_signed_statement_gives_a_verified_name,
    bad_statements_are_refused,
);
