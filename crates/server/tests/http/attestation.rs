//! Attestation-based client authentication (draft-ietf-oauth-attestation-based-client-auth): a
//! trusted attester vouches for an agent instance and its runtime, the instance proves its key,
//! and what was attested ends up in the access token, in introspection and on the grant.

use std::sync::atomic::{AtomicUsize, Ordering};

use mandate_core::jose::{SigningAlgorithm, SigningKey, generate_private_key};
use serde_json::{Value, json};

use crate::common::browser::*;
use crate::common::{Backend, MCP, Options, TestServer, assert_oauth_error, decode_unverified, fresh_database};

const ATTESTER_ISS: &str = "https://attester.acme.example";
const ATTESTER_NAME: &str = "Acme agent runtime";
const ATTESTATION_TYP: &str = "oauth-client-attestation+jwt";
const POP_TYP: &str = "oauth-client-attestation-pop+jwt";

fn key(alg: SigningAlgorithm) -> SigningKey {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    SigningKey::from_pkcs8(alg, &generate_private_key(alg).unwrap()).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn unique() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{}-{}", now(), N.fetch_add(1, Ordering::Relaxed))
}

/// `claims` with `patch` laid over them; a null removes a claim.
fn patched(mut claims: Value, patch: &Value) -> Value {
    for (name, value) in patch.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

/// An attester, an agent instance with its key, and the server that trusts the attester.
struct Setup {
    server: TestServer,
    attester: SigningKey,
    instance: SigningKey,
}

impl Setup {
    /// A Client Attestation JWT for `client_id` and the instance key, with `patch`.
    fn attestation(&self, client_id: &str, patch: Value) -> String {
        let claims = json!({
            "iss": ATTESTER_ISS, "sub": client_id, "iat": now(), "exp": now() + 3600,
            "cnf": { "jwk": self.instance.public_jwk },
            "llm": { "provider": "acme", "model": "acme-large-2", "region": "eu-west-1" },
            "runtime": { "name": "agentd", "version": "1.4.2" },
        });
        self.attester.sign(ATTESTATION_TYP, &patched(claims, &patch)).unwrap()
    }

    /// A PoP JWT signed by the instance key for this server, with `patch`.
    fn pop(&self, patch: Value) -> String {
        let claims = json!({ "aud": self.server.issuer, "jti": unique(), "iat": now() });
        self.instance.sign(POP_TYP, &patched(claims, &patch)).unwrap()
    }

    /// POSTs `form` to `path` with the attestation headers (each given value once).
    async fn post(&self, path: &str, attestations: &[&str], pops: &[&str], form: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.server.http.post(self.server.url(path)).form(form);
        for a in attestations {
            req = req.header("OAuth-Client-Attestation", *a);
        }
        for p in pops {
            req = req.header("OAuth-Client-Attestation-PoP", *p);
        }
        req.send().await.unwrap()
    }

    /// A client-credentials request of attested-agent with a fresh attestation and PoP.
    async fn client_credentials(&self, attestation: &str, pop: &str) -> reqwest::Response {
        let form = [("grant_type", "client_credentials"), ("resource", MCP), ("client_id", "attested-agent")];
        self.post("/token", &[attestation], &[pop], &form).await
    }
}

/// A TOML inline value for a JSON value (objects → inline tables).
fn toml_inline(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let fields: Vec<String> = map.iter().map(|(k, v)| format!("{k} = {}", toml_inline(v))).collect();
            format!("{{ {} }}", fields.join(", "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(toml_inline).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn attester_config(attester: &SigningKey, extra: &str) -> String {
    let jwks = json!({ "keys": [attester.public_jwk] });
    format!(
        r#"{delegation}
{extra}
[[attesters]]
name = "{ATTESTER_NAME}"
issuer = "{ATTESTER_ISS}"
jwks = {jwks}

[[clients]]
client_id = "attested-agent"
client_name = "Attested agent"
token_endpoint_auth_method = "attest_jwt_client_auth"
grant_types = ["client_credentials"]
scopes = ["tools:read"]

[[clients]]
client_id = "attested-desktop"
client_name = "Attested Desktop"
token_endpoint_auth_method = "attest_jwt_client_auth"
application_type = "native"
redirect_uris = ["{NATIVE_REDIRECT}"]
scopes = ["tools:read", "openid", "offline_access"]
"#,
        delegation = delegation_config(),
        jwks = toml_inline(&jwks),
    )
}

async fn setup_with(backend: Backend, extra: &str) -> Setup {
    let attester = key(SigningAlgorithm::ES256);
    let config = attester_config(&attester, extra);
    let server = TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await;
    Setup { server, attester, instance: key(SigningAlgorithm::EdDSA) }
}

async fn setup(backend: Backend) -> Setup {
    setup_with(backend, "").await
}

fn expected_claim() -> Value {
    json!({
        "attester": ATTESTER_NAME,
        "llm": { "provider": "acme", "model": "acme-large-2", "region": "eu-west-1" },
        "runtime": { "name": "agentd", "version": "1.4.2" },
    })
}

async fn client_credentials_token_carries_the_attestation(backend: Backend) {
    let s = setup(backend).await;
    let res = s.client_credentials(&s.attestation("attested-agent", json!({})), &s.pop(json!({}))).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    assert!(res.headers().get("oauth-client-attestation-challenge").is_none(), "no challenges unless required");
    let body: Value = res.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let (_, claims) = decode_unverified(token);
    assert_eq!(claims["sub"], "attested-agent");
    assert_eq!(claims["attestation"], expected_claim(), "unknown attestation claims are not copied");

    let introspected = s.server.introspect(token).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["attestation"], expected_claim());

    let events = s.server.state().store.audit_by_jti(claims["jti"].as_str().unwrap()).await.unwrap();
    assert!(
        events.iter().any(|e| e.detail.as_deref().is_some_and(|d| d.contains(ATTESTER_NAME))),
        "the audit log names the attester: {events:?}"
    );

    // client_id may be left out: the attestation's sub names the client (§7.4).
    let res = s
        .post(
            "/token",
            &[&s.attestation("attested-agent", json!({}))],
            &[&s.pop(json!({}))],
            &[("grant_type", "client_credentials"), ("resource", MCP)],
        )
        .await;
    assert_eq!(res.status(), 200);

    // A token without attestation has no such claim, in the token or at introspection.
    let plain = s.server.agent_token().await;
    assert!(decode_unverified(&plain).1.get("attestation").is_none());
    assert!(s.server.introspect(&plain).await.get("attestation").is_none());
}

async fn refusals(backend: Backend) {
    let s = setup(backend).await;
    let issuer = s.server.issuer.clone();
    let good = s.attestation("attested-agent", json!({}));
    let stranger = key(SigningAlgorithm::ES256);
    let other_instance = key(SigningAlgorithm::EdDSA);
    let forged = {
        let claims = decode_unverified(&good).1;
        stranger.sign(ATTESTATION_TYP, &claims).unwrap()
    };
    let hs256 = |typ: &str, claims: &Value| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some(typ.into());
        let secret = jsonwebtoken::EncodingKey::from_secret(s.attester.kid.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &secret).unwrap()
    };
    let b64 = |v: &Value| b64(v.to_string().as_bytes());
    let attestation_claims = decode_unverified(&good).1;
    let none = format!("{}.{}.", b64(&json!({ "alg": "none", "typ": ATTESTATION_TYP })), b64(&attestation_claims));

    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        ("signed by an untrusted key", forged, s.pop(json!({})), 401, "invalid_client_attestation"),
        (
            "expired attestation",
            s.attestation("attested-agent", json!({ "exp": now() - 120 })),
            s.pop(json!({})),
            401,
            "invalid_client_attestation",
        ),
        (
            "another attester's iss",
            s.attestation("attested-agent", json!({ "iss": "https://elsewhere.example" })),
            s.pop(json!({})),
            401,
            "invalid_client_attestation",
        ),
        (
            "PoP signed by a key other than cnf",
            good.clone(),
            other_instance.sign(POP_TYP, &json!({ "aud": issuer, "jti": unique(), "iat": now() })).unwrap(),
            401,
            "invalid_client_attestation",
        ),
        (
            "PoP for the token endpoint, not the issuer",
            good.clone(),
            s.pop(json!({ "aud": s.server.url("/token") })),
            401,
            "invalid_client_attestation",
        ),
        ("stale PoP", good.clone(), s.pop(json!({ "iat": now() - 600 })), 401, "invalid_client_attestation"),
        ("PoP without jti", good.clone(), s.pop(json!({ "jti": null })), 401, "invalid_client_attestation"),
        (
            "sub is another client than client_id",
            s.attestation("build-agent", json!({})),
            s.pop(json!({})),
            401,
            "invalid_client",
        ),
        ("alg none", none, s.pop(json!({})), 401, "invalid_client_attestation"),
        (
            "HS256 attestation keyed with public bytes",
            hs256(ATTESTATION_TYP, &attestation_claims),
            s.pop(json!({})),
            401,
            "invalid_client_attestation",
        ),
        (
            "HS256 PoP",
            good.clone(),
            hs256(POP_TYP, &json!({ "aud": issuer, "jti": unique(), "iat": now() })),
            401,
            "invalid_client_attestation",
        ),
        (
            "a PoP presented as the attestation",
            s.pop(json!({ "sub": "attested-agent" })),
            s.pop(json!({})),
            401,
            "invalid_client_attestation",
        ),
    ];
    for (what, attestation, pop, status, error) in cases {
        let res = s.client_credentials(&attestation, &pop).await;
        assert_eq!(res.status().as_u16(), status, "{what}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], error, "{what}: {body}");
        assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{what}");
    }

    // A replayed PoP: the same jti twice.
    let pop = s.pop(json!({}));
    assert_eq!(s.client_credentials(&good, &pop).await.status(), 200);
    let body = assert_oauth_error(s.client_credentials(&good, &pop).await, 401, "invalid_client_attestation").await;
    assert!(body["error_description"].as_str().unwrap().contains("already used"), "{body}");

    // Header shapes: one of each, exactly.
    let form = [("grant_type", "client_credentials"), ("resource", MCP), ("client_id", "attested-agent")];
    let res = s.post("/token", &[&good], &[], &form).await;
    let body = assert_oauth_error(res, 401, "invalid_client_attestation").await;
    assert!(body["error_description"].as_str().unwrap().contains("PoP header is missing"), "{body}");
    let res = s.post("/token", &[], &[&s.pop(json!({}))], &form).await;
    assert_oauth_error(res, 401, "invalid_client_attestation").await;
    let res = s.post("/token", &[&good, &good], &[&s.pop(json!({}))], &form).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = s.post("/token", &[&good], &[&s.pop(json!({})), &s.pop(json!({}))], &form).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    // The body's client_id must be the attestation's sub.
    let res = s
        .post(
            "/token",
            &[&good],
            &[&s.pop(json!({}))],
            &[("grant_type", "client_credentials"), ("client_id", "build-agent")],
        )
        .await;
    assert_oauth_error(res, 401, "invalid_client").await;
    // An attest_jwt_client_auth client cannot leave the attestation out.
    let res = s.server.post_form("/token", None, &form).await;
    assert_oauth_error(res, 401, "invalid_client").await;
}

async fn code_flow_binds_the_grant_and_refresh_keeps_it(backend: Backend) {
    let s = setup(backend).await;
    // PAR with an attestation, then the front channel as alice.
    let challenge = mandate_core::pkce::s256(VERIFIER);
    let par_form = [
        ("client_id", "attested-desktop"),
        ("response_type", "code"),
        ("redirect_uri", NATIVE_REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("resource", MCP),
        ("scope", "tools:read openid offline_access"),
        ("state", "st-123"),
    ];
    let attestation = s.attestation("attested-desktop", json!({}));
    let res = s.post("/par", &[&attestation], &[&s.pop(json!({}))], &par_form).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"].as_str().unwrap().to_owned();
    let mut b = Browser::new();
    let mut step = b
        .get(&s.server.url(&format!("/authorize?client_id=attested-desktop&request_uri={}", urlencode(&request_uri))))
        .await;
    step = b.sign_in(step.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    step = b.decide(step.location.as_deref().unwrap(), "approve", false).await;
    assert!(step.redirects_to(NATIVE_REDIRECT), "{:?} {}", step.location, step.body);
    let code = step.param("code").unwrap();

    let redeem = [
        ("grant_type", "authorization_code"),
        ("client_id", "attested-desktop"),
        ("code", code.as_str()),
        ("redirect_uri", NATIVE_REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let res = s.post("/token", &[&attestation], &[&s.pop(json!({}))], &redeem).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let body: Value = res.json().await.unwrap();
    let (_, at) = decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], "alice");
    assert_eq!(at["attestation"], expected_claim());

    // The grant records the attestation and the instance key.
    let events = s.server.state().store.audit_by_jti(at["jti"].as_str().unwrap()).await.unwrap();
    let grant_id = events[0].parent_jti.as_deref().unwrap().strip_prefix("grant:").unwrap().to_owned();
    let grant = s.server.state().store.get_grant(&grant_id).await.unwrap().unwrap();
    let bound = grant.attestation.expect("the grant records the attestation");
    assert_eq!(serde_json::to_value(&bound.claim).unwrap(), expected_claim());
    assert_eq!(bound.instance_jkt, s.instance.kid, "bound to the instance key's thumbprint");

    // A refresh by another instance of the same client (a valid attestation for another key) is
    // refused, and does not spend the refresh token.
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    let refresh =
        [("grant_type", "refresh_token"), ("client_id", "attested-desktop"), ("refresh_token", &refresh_token)];
    let other = Setup { server: s.server, attester: s.attester, instance: key(SigningAlgorithm::ES256) };
    let res = other
        .post("/token", &[&other.attestation("attested-desktop", json!({}))], &[&other.pop(json!({}))], &refresh)
        .await;
    let body = assert_oauth_error(res, 400, "invalid_grant").await;
    assert!(body["error_description"].as_str().unwrap().contains("another client instance"), "{body}");
    assert_unspent(&other.server, &refresh_token).await;
    let s = Setup { server: other.server, attester: other.attester, instance: s.instance };

    // The instance itself refreshes; the new token keeps the attested facts, even when the new
    // attestation says something else: the grant's record stands.
    let fresh = s.attestation("attested-desktop", json!({ "llm": { "model": "something-else" } }));
    let res = s.post("/token", &[&fresh], &[&s.pop(json!({}))], &refresh).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let body: Value = res.json().await.unwrap();
    let (_, refreshed) = decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(refreshed["attestation"], expected_claim());
    assert_eq!(s.server.introspect(body["access_token"].as_str().unwrap()).await["attestation"], expected_claim());
}

/// The refresh token has not been rotated: a refused attempt did not spend it.
async fn assert_unspent(server: &TestServer, refresh_token: &str) {
    let hash = mandate_core::SecretDigest::of(refresh_token).encode();
    let stored = server.state().store.get_refresh_token(&hash).await.unwrap().unwrap();
    assert_eq!(stored.used_at, None, "a refusal for the wrong instance leaves the refresh token unused");
}

/// An attestation may come with another method as an extra signal: from a public client, it
/// binds the grant all the same, and then every refresh must attest.
async fn a_public_client_may_attest_and_is_then_bound(backend: Backend) {
    let s = setup(backend).await;
    let mut b = Browser::new();
    let code = authorize_as_alice(
        &s.server,
        &mut b,
        "desktop-agent",
        NATIVE_REDIRECT,
        &[("scope", "tools:read offline_access")],
    )
    .await;
    let redeem = [
        ("grant_type", "authorization_code"),
        ("client_id", "desktop-agent"),
        ("code", code.as_str()),
        ("redirect_uri", NATIVE_REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let res = s.post("/token", &[&s.attestation("desktop-agent", json!({}))], &[&s.pop(json!({}))], &redeem).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let body: Value = res.json().await.unwrap();
    assert_eq!(decode_unverified(body["access_token"].as_str().unwrap()).1["attestation"], expected_claim());
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    let refresh = [("grant_type", "refresh_token"), ("client_id", "desktop-agent"), ("refresh_token", &refresh_token)];
    let res = s.server.post_form("/token", None, &refresh).await;
    let body = assert_oauth_error(res, 400, "invalid_grant").await;
    assert!(body["error_description"].as_str().unwrap().contains("attested client instance"), "{body}");
    assert_unspent(&s.server, &refresh_token).await;
    let res = s.post("/token", &[&s.attestation("desktop-agent", json!({}))], &[&s.pop(json!({}))], &refresh).await;
    assert_eq!(res.status(), 200, "the refresh token was not spent by the refused attempt");
    // A bad attestation from a public client is refused, not ignored.
    let res = s
        .post(
            "/token",
            &[&s.attestation("desktop-agent", json!({ "exp": now() - 120 }))],
            &[&s.pop(json!({}))],
            &refresh,
        )
        .await;
    assert_oauth_error(res, 401, "invalid_client_attestation").await;
}

async fn challenges_when_required(backend: Backend) {
    let s = setup_with(backend, "[attestation]\nrequire_challenge = true\n").await;
    let attestation = s.attestation("attested-agent", json!({}));

    // No challenge in the PoP: use_attestation_challenge, with one to use.
    let res = s.client_credentials(&attestation, &s.pop(json!({}))).await;
    let challenge = res.headers()["oauth-client-attestation-challenge"].to_str().unwrap().to_owned();
    assert!(challenge.len() >= 40, "a random challenge");
    assert_oauth_error(res, 400, "use_attestation_challenge").await;

    let res = s.client_credentials(&attestation, &s.pop(json!({ "challenge": challenge }))).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let next = res.headers()["oauth-client-attestation-challenge"].to_str().unwrap().to_owned();
    assert_ne!(next, challenge, "a fresh challenge for the next PoP");

    // A challenge is used once, and must be one this server issued.
    for used in [challenge.as_str(), "made-up-challenge"] {
        let res = s.client_credentials(&attestation, &s.pop(json!({ "challenge": used }))).await;
        assert!(res.headers().get("oauth-client-attestation-challenge").is_some());
        let body = assert_oauth_error(res, 400, "use_attestation_challenge").await;
        assert!(body["error_description"].as_str().unwrap().contains("already used"), "{body}");
    }
    let res = s.client_credentials(&attestation, &s.pop(json!({ "challenge": next }))).await;
    assert_eq!(res.status(), 200, "the challenge from the last response works");

    // The challenge endpoint, and its challenges valid on another instance.
    let res = s.server.http.post(s.server.url("/challenge")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    let from_endpoint = body["attestation_challenge"].as_str().unwrap().to_owned();
    let config = attester_config(&s.attester, "[attestation]\nrequire_challenge = true\n");
    let second = TestServer::start_on(
        s.server.database.clone(),
        Options { config, issuer: Some(s.server.issuer.clone()), ..Options::default() },
    )
    .await;
    let s2 = Setup { server: second, attester: key(SigningAlgorithm::ES256), instance: s.instance };
    let res = s2.client_credentials(&attestation, &s2.pop(json!({ "challenge": from_endpoint }))).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let res = s.server.http.get(s.server.url("/challenge")).send().await.unwrap();
    assert_eq!(res.status(), 405, "POST only");
}

async fn metadata_and_freshness(backend: Backend) {
    let s = setup_with(backend, "[attestation]\nmax_age = \"1h\"\n").await;
    let m = s.server.metadata().await;
    let methods = m["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&json!("attest_jwt_client_auth")), "{m}");
    assert_eq!(m["challenge_endpoint"], s.server.url("/challenge"));
    for key in
        ["client_attestation_signing_alg_values_supported", "client_attestation_pop_signing_alg_values_supported"]
    {
        let algs = m[key].as_array().unwrap();
        assert!(algs.contains(&json!("ES256")) && algs.contains(&json!("EdDSA")), "{key}: {m}");
        assert!(!algs.iter().any(|a| a.as_str().unwrap().starts_with("HS") || a == "none"), "{key}");
    }
    assert_eq!(m["client_attestation_pop_methods_supported"], json!(["attestation_pop_jwt", "none"]));

    // max_age: an attestation issued two hours ago asks for a fresh one.
    let old = s.attestation("attested-agent", json!({ "iat": now() - 7200 }));
    let res = s.client_credentials(&old, &s.pop(json!({}))).await;
    assert_oauth_error(res, 400, "use_fresh_attestation").await;
    let res = s.client_credentials(&s.attestation("attested-agent", json!({})), &s.pop(json!({}))).await;
    assert_eq!(res.status(), 200);

    // Without attesters, nothing of this is offered.
    let plain = TestServer::start(backend).await;
    let m = plain.metadata().await;
    assert!(!m["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("attest_jwt_client_auth")));
    assert!(m.get("challenge_endpoint").is_none() && m.get("client_attestation_pop_methods_supported").is_none());
    assert_eq!(plain.http.post(plain.url("/challenge")).send().await.unwrap().status(), 404);
}

/// A dynamically registered client may choose attestation as its authentication method; with no
/// attester trusted, the method is refused at registration.
async fn registered_clients_may_attest(backend: Backend) {
    let s = setup_with(backend, "[registration]\ndynamic = true\nunattended_grant_types = [\"client_credentials\"]\nunattended_resources = [\"http://127.0.0.1:9090/mcp\"]\nunattended_scopes = [\"tools:read\"]\n").await;
    let metadata = json!({
        "client_name": "Attested build bot", "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "attest_jwt_client_auth",
    });
    let res = s.server.http.post(s.server.url("/register")).json(&metadata).send().await.unwrap();
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let registered: Value = res.json().await.unwrap();
    assert!(registered.get("client_secret").is_none(), "the attestation is the credential");
    let client_id = registered["client_id"].as_str().unwrap();
    let form = [("grant_type", "client_credentials"), ("resource", MCP), ("client_id", client_id)];
    let res = s.post("/token", &[&s.attestation(client_id, json!({}))], &[&s.pop(json!({}))], &form).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let (_, at) = decode_unverified(res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap());
    assert_eq!(at["attestation"], expected_claim());
    let res = s.server.post_form("/token", None, &form).await;
    assert_oauth_error(res, 401, "invalid_client").await;

    let config = format!(
        "[registration]\ndynamic = true\nunattended_grant_types = [\"client_credentials\"]\nunattended_resources = [\"http://127.0.0.1:9090/mcp\"]\nunattended_scopes = [\"tools:read\"]\n{}",
        crate::common::base_config()
    );
    let plain = TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await;
    let res = plain.http.post(plain.url("/register")).json(&metadata).send().await.unwrap();
    let body = assert_oauth_error(res, 400, "invalid_client_metadata").await;
    assert!(body["error_description"].as_str().unwrap().contains("trusts no client attester"), "{body}");
}

/// Attester keys from a `jwks_uri`, fetched through the SSRF-safe fetcher (loopback allowed here).
async fn attester_keys_from_a_jwks_uri(backend: Backend) {
    let attester = key(SigningAlgorithm::RS256);
    let set = json!({ "keys": [attester.public_jwk] });
    let app = axum::Router::new().route("/jwks.json", axum::routing::get(move || async move { axum::Json(set) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = format!(
        "[registration]\nallow_private_networks = true\n{}\n[[attesters]]\nname = \"Remote attester\"\njwks_uri = \"http://127.0.0.1:{port}/jwks.json\"\n\n[[clients]]\nclient_id = \"attested-agent\"\ntoken_endpoint_auth_method = \"attest_jwt_client_auth\"\nscopes = [\"tools:read\"]\n",
        crate::common::base_config()
    );
    let server = TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await;
    let s = Setup { server, attester, instance: key(SigningAlgorithm::ES256) };
    let res = s.client_credentials(&s.attestation("attested-agent", json!({ "llm": null })), &s.pop(json!({}))).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let (_, at) = decode_unverified(res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap());
    assert_eq!(at["attestation"]["attester"], "Remote attester");
    assert!(at["attestation"].get("llm").is_none());
}

crate::on_both_backends!(
    client_credentials_token_carries_the_attestation,
    refusals,
    code_flow_binds_the_grant_and_refresh_keeps_it,
    a_public_client_may_attest_and_is_then_bound,
    challenges_when_required,
    metadata_and_freshness,
    registered_clients_may_attest,
    attester_keys_from_a_jwks_uri,
);
