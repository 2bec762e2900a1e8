//! `private_key_jwt` (RFC 7523, RFC 10070) at the token endpoint: keys inline or from a
//! `jwks_uri` served on loopback, every forged or replayed assertion refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mandate_core::jose::{SigningAlgorithm, SigningKey, generate_private_key};
use serde_json::{Value, json};

use crate::common::{Backend, MCP, Options, TestServer, assert_oauth_error, fresh_database};

const TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn key(alg: SigningAlgorithm) -> SigningKey {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    SigningKey::from_pkcs8(alg, &generate_private_key(alg).unwrap()).unwrap()
}

fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| serde_json::to_value(&k.public_jwk).unwrap()).collect::<Vec<_>>() })
}

/// An assertion for `client` with `claims` patched over the good ones.
fn assertion(key: &SigningKey, client: &str, issuer: &str, patch: Value) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut claims = json!({
        "iss": client, "sub": client, "aud": issuer, "iat": now, "exp": now + 60,
        "jti": format!("jti-{}", rand_suffix()),
    });
    for (k, v) in patch.as_object().unwrap() {
        claims[k] = v.clone();
    }
    key.sign("client-authentication+jwt", &claims).unwrap()
}

fn rand_suffix() -> u128 {
    static N: AtomicUsize = AtomicUsize::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    t + N.fetch_add(1, Ordering::Relaxed) as u128
}

async fn token(server: &TestServer, jwt: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("resource", MCP),
        ("client_assertion_type", TYPE),
        ("client_assertion", jwt),
    ];
    form.extend_from_slice(extra);
    server.post_form("/token", None, &form).await
}

/// A loopback server publishing a JWK Set, counting requests.
async fn jwks_server(set: Value) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let set = set.clone();
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(set)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("127.0.0.1:{port}"), hits)
}

async fn start(backend: Backend, clients: &str, private_networks: bool) -> TestServer {
    let registration = if private_networks { "[registration]\nallow_private_networks = true\n" } else { "" };
    let config = format!("{registration}{}{clients}", crate::common::base_config());
    TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await
}

fn inline_client(id: &str, set: &Value) -> String {
    format!(
        "\n[[clients]]\nclient_id = \"{id}\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\njwks = {}\nscopes = [\"tools:read\"]\n",
        toml_inline(set)
    )
}

/// A JSON value as a TOML inline value (objects → inline tables).
pub(crate) fn toml_inline(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let fields: Vec<String> = map.iter().map(|(k, v)| format!("{k} = {}", toml_inline(v))).collect();
            format!("{{ {} }}", fields.join(", "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(toml_inline).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

async fn inline_keys_authenticate_and_forgeries_fail(backend: Backend) {
    let es = key(SigningAlgorithm::ES256);
    let ed = key(SigningAlgorithm::EdDSA);
    let server = start(backend, &inline_client("key-agent", &jwks(&[&es, &ed])), false).await;
    let issuer = server.issuer.clone();

    for k in [&es, &ed] {
        let res = token(&server, &assertion(k, "key-agent", &issuer, json!({})), &[]).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
    }
    // Replay: the same assertion twice.
    let once = assertion(&es, "key-agent", &issuer, json!({}));
    assert_eq!(token(&server, &once, &[]).await.status(), 200);
    let body = assert_oauth_error(token(&server, &once, &[]).await, 401, "invalid_client").await;
    assert!(body["error_description"].as_str().unwrap().contains("already used"), "{body}");

    let stranger = key(SigningAlgorithm::ES256);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let forged = [
        ("signed by another key", assertion(&stranger, "key-agent", &issuer, json!({}))),
        ("aud is the token endpoint", assertion(&es, "key-agent", &issuer, json!({ "aud": server.url("/token") }))),
        ("two audiences", assertion(&es, "key-agent", &issuer, json!({ "aud": [issuer, "https://other.example"] }))),
        ("expired", assertion(&es, "key-agent", &issuer, json!({ "exp": now - 120 }))),
        ("a week long", assertion(&es, "key-agent", &issuer, json!({ "exp": now + 7 * 86400 }))),
        ("iss is someone else", assertion(&es, "key-agent", &issuer, json!({ "iss": "build-agent" }))),
        ("no jti", assertion(&es, "key-agent", &issuer, json!({ "jti": null }))),
    ];
    for (what, jwt) in forged {
        let res = token(&server, &jwt, &[]).await;
        assert_eq!(res.status(), 401, "{what}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{what}: {body}");
    }
    // Claiming to be a secret-based client with an assertion: the same answer as for a client
    // that does not exist, so assertions cannot probe which clients use which method (item 11).
    let res = token(&server, &assertion(&es, "build-agent", &issuer, json!({})), &[]).await;
    let secret_based = assert_oauth_error(res, 401, "invalid_client").await;
    let res = token(&server, &assertion(&es, "no-such-client", &issuer, json!({})), &[]).await;
    let unknown = assert_oauth_error(res, 401, "invalid_client").await;
    assert_eq!(secret_based["error_description"], unknown["error_description"]);
    // Malformed requests.
    let good = assertion(&es, "key-agent", &issuer, json!({}));
    let res = server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("resource", MCP),
                ("client_assertion_type", "urn:example:other"),
                ("client_assertion", &good),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = token(&server, &good, &[("client_secret", "also-a-secret")]).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = token(&server, &good, &[("client_id", "build-agent")]).await;
    assert_oauth_error(res, 401, "invalid_client").await;
}

async fn replay_is_refused_across_instances(backend: Backend) {
    let es = key(SigningAlgorithm::ES256);
    let first = start(backend, &inline_client("key-agent", &jwks(&[&es])), false).await;
    let config = format!("{}{}", crate::common::base_config(), inline_client("key-agent", &jwks(&[&es])));
    let second = TestServer::start_on(
        first.database.clone(),
        Options { config, issuer: Some(first.issuer.clone()), ..Options::default() },
    )
    .await;
    let jwt = assertion(&es, "key-agent", &first.issuer, json!({}));
    let (a, b) = tokio::join!(token(&first, &jwt, &[]), token(&second, &jwt, &[]));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 401], "one assertion, one token, whichever instance sees it");
}

async fn keys_from_jwks_uri_on_loopback_only_when_allowed(backend: Backend) {
    let rs = key(SigningAlgorithm::RS256);
    let (host, hits) = jwks_server(jwks(&[&rs])).await;
    let client = |uri: &str| {
        format!(
            "\n[[clients]]\nclient_id = \"uri-agent\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\njwks_uri = \"{uri}\"\nscopes = [\"tools:read\"]\n"
        )
    };
    let server = start(backend, &client(&format!("http://{host}/jwks.json")), true).await;
    for _ in 0..3 {
        let res = token(&server, &assertion(&rs, "uri-agent", &server.issuer, json!({})), &[]).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the JWK Set is cached");

    // Without allow_private_networks, an https loopback URI is never fetched.
    let (host, hits) = jwks_server(jwks(&[&rs])).await;
    let server = start(Backend::Sqlite, &client(&format!("https://{host}/jwks.json")), false).await;
    let res = token(&server, &assertion(&rs, "uri-agent", &server.issuer, json!({})), &[]).await;
    let body = assert_oauth_error(res, 401, "invalid_client").await;
    assert!(body["error_description"].as_str().unwrap().contains("jwks_uri"), "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the fetch never left the server");
}

/// Issue #15 item 1: a client ID metadata document may declare `client_credentials` with its own
/// keys, but anyone can publish one: no token without a person unless the unattended policy
/// allows it, and then only on the resources and scopes it names.
async fn metadata_document_clients_get_no_client_credentials_unless_allowed(backend: Backend) {
    let es = key(SigningAlgorithm::ES256);
    let set = jwks(&[&es]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client_id = format!("http://127.0.0.1:{}/agent", listener.local_addr().unwrap().port());
    let doc = json!({
        "client_id": client_id, "client_name": "Self-declared bot", "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"], "jwks": set,
    });
    let app = axum::Router::new().route("/agent", axum::routing::get(move || async move { axum::Json(doc) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let db = fresh_database(backend).await;
    let config = |policy: &str| {
        format!("[registration]\nallow_private_networks = true\n{policy}\n{}", crate::common::base_config())
    };
    let server = TestServer::start_on(db, Options { config: config(""), ..Options::default() }).await;
    let res = token(&server, &assertion(&es, &client_id, &server.issuer, json!({})), &[]).await;
    assert_oauth_error(res, 400, "unauthorized_client").await;
    let db = server.stop().await;

    let policy = format!(
        "unattended_grant_types = [\"client_credentials\"]\nunattended_resources = [\"{MCP}\"]\nunattended_scopes = [\"tools:read\"]"
    );
    let server = TestServer::start_on(db, Options { config: config(&policy), ..Options::default() }).await;
    let res = token(&server, &assertion(&es, &client_id, &server.issuer, json!({})), &[]).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    assert_eq!(res.json::<Value>().await.unwrap()["scope"], "tools:read");
    let jwt = assertion(&es, &client_id, &server.issuer, json!({}));
    let res = server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("resource", crate::common::API),
                ("client_assertion_type", TYPE),
                ("client_assertion", &jwt),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_target").await;
}

crate::on_both_backends!(
    metadata_document_clients_get_no_client_credentials_unless_allowed,
    inline_keys_authenticate_and_forgeries_fail,
    replay_is_refused_across_instances,
    keys_from_jwks_uri_on_loopback_only_when_allowed,
);
