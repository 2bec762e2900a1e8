//! RFC 8693 token exchange and the chain of custody: alice → agent A → MCP server B → internal
//! API C → third party D, each hop exchanging, the last token carrying the whole `act` chain;
//! every refusal with its RFC 8693 error; revocation reaching exactly the subtree; impersonation
//! where configured.

use serde_json::{Value, json};

use crate::common::browser::{Browser, authorize_as_alice, delegation_config};
use crate::common::{Backend, Options, TestServer, assert_oauth_error, decode_unverified, fresh_database};
use crate::identity_assertion::{PARTNER, Partner};

const SECRET: &str = "exchange-test-secret-0123456789abcdefghijkl";
const B: &str = "https://b.example/mcp";
const C: &str = "https://c.example/api";
const D: &str = "https://d.example/api";
const E: &str = "https://e.example/api";
const REDIRECT: &str = "https://agent-a.example/cb";
const TE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";

fn config() -> String {
    let te = format!("\"{TE}\"");
    format!(
        r#"{base}
[token_exchange]
max_delegation_depth = 3
impersonation_clients = ["api-d"]

[[resources]]
uri = "{B}"
name = "MCP server B"
scopes = ["data:read", "data:write"]
client_id = "mcp-b"

[[resources]]
uri = "{C}"
name = "Internal API C"
scopes = ["data:read"]
client_id = "api-c"

[[resources]]
uri = "{D}"
name = "Third party D"
scopes = ["data:read"]
client_id = "api-d"

[[resources]]
uri = "{E}"
scopes = ["data:read"]

[[clients]]
client_id = "agent-a"
client_secret = "{SECRET}"
redirect_uris = ["{REDIRECT}"]
grant_types = ["authorization_code", {te}]
scopes = ["data:read", "data:write"]

[[clients]]
client_id = "mcp-b"
client_secret = "{SECRET}"
grant_types = ["client_credentials", {te}]
scopes = ["data:read"]

[[clients]]
client_id = "api-c"
client_secret = "{SECRET}"
grant_types = [{te}]
scopes = ["data:read"]

[[clients]]
client_id = "api-d"
client_secret = "{SECRET}"
grant_types = [{te}]
scopes = ["data:read"]

[[clients]]
client_id = "stranger"
client_secret = "{SECRET}"
grant_types = [{te}]
scopes = ["data:read"]
"#,
        base = delegation_config()
    )
}

async fn start(backend: Backend) -> TestServer {
    TestServer::start_on(fresh_database(backend).await, Options { config: config(), ..Options::default() }).await
}

/// alice's token for agent A on B, with data:read and data:write.
async fn alices_token(server: &TestServer) -> String {
    let mut browser = Browser::new();
    let extra = [("resource", B), ("scope", "data:read data:write")];
    let code = authorize_as_alice(server, &mut browser, "agent-a", REDIRECT, &extra).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", crate::common::browser::VERIFIER),
        ("resource", B),
    ];
    let res = server.post_form("/token", Some(("agent-a", SECRET)), &form).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn exchange(server: &TestServer, client: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let mut full = vec![("grant_type", TE)];
    full.extend_from_slice(form);
    server.post_form("/token", Some((client, SECRET)), &full).await
}

async fn exchanged(server: &TestServer, client: &str, subject: &str, target: &str, extra: &[(&str, &str)]) -> Value {
    let mut form = vec![("subject_token", subject), ("subject_token_type", AT), ("resource", target)];
    form.extend_from_slice(extra);
    let res = exchange(server, client, &form).await;
    assert_eq!(res.status(), 200, "{client} exchanging for {target}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["issued_token_type"], AT);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none(), "an exchange issues no refresh token");
    body
}

fn token(body: &Value) -> &str {
    body["access_token"].as_str().unwrap()
}

async fn a_three_hop_chain_carries_every_actor(backend: Backend) {
    let server = start(backend).await;
    let t0 = alices_token(&server).await;

    // Hop 1: agent A narrows alice's token to what B needs; it now acts for her, on record.
    let t0a = exchanged(&server, "agent-a", &t0, B, &[("scope", "data:read")]).await;
    let (_, c0a) = decode_unverified(token(&t0a));
    assert_eq!(c0a["sub"], "alice");
    assert_eq!(c0a["act"], json!({ "sub": "agent-a" }));
    assert_eq!(t0a["scope"], "data:read");

    // Hop 2: B, with its own token as actor token, calls C for alice.
    let b_own = server
        .post_form("/token", Some(("mcp-b", SECRET)), &[("grant_type", "client_credentials"), ("resource", C)])
        .await
        .json::<Value>()
        .await
        .unwrap();
    let t1 =
        exchanged(&server, "mcp-b", token(&t0a), C, &[("actor_token", token(&b_own)), ("actor_token_type", AT)]).await;
    let (_, c1) = decode_unverified(token(&t1));
    assert_eq!(c1["sub"], "alice");
    assert_eq!(c1["aud"], C);
    assert_eq!(c1["client_id"], "mcp-b");
    assert_eq!(c1["act"], json!({ "sub": "mcp-b", "act": { "sub": "agent-a" } }));

    // Hop 3: C calls D, naming it by `audience`.
    let form = [("subject_token", token(&t1)), ("subject_token_type", AT), ("audience", D)];
    let res = exchange(&server, "api-c", &form).await;
    assert_eq!(res.status(), 200);
    let t2: Value = res.json().await.unwrap();
    let (_, c2) = decode_unverified(token(&t2));
    assert_eq!(c2["sub"], "alice", "delegation: the subject stays the person");
    assert_eq!(c2["aud"], D);
    assert_eq!(c2["scope"], "data:read");
    assert_eq!(c2["act"], json!({ "sub": "api-c", "act": { "sub": "mcp-b", "act": { "sub": "agent-a" } } }));
    let (_, c0) = decode_unverified(&t0);
    assert!(c2["exp"].as_i64() <= c0["exp"].as_i64(), "never outlives the token it came from");

    // Introspection shows the chain; the lineage records each parent and the actor token.
    let introspected = server.introspect(token(&t2)).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["act"], c2["act"]);
    let store = &server.state().store;
    let r2 = store.get_token_record(c2["jti"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(r2.parent_jti.as_deref(), c1["jti"].as_str());
    let r1 = store.get_token_record(c1["jti"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(r1.parent_jti.as_deref(), c0a["jti"].as_str());
    let (_, c_own) = decode_unverified(token(&b_own));
    assert_eq!(r1.actor_jti.as_deref(), c_own["jti"].as_str());
    let r0a = store.get_token_record(c0a["jti"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(r0a.parent_jti.as_deref(), c0["jti"].as_str());
    let r0 = store.get_token_record(c0["jti"].as_str().unwrap()).await.unwrap().unwrap();
    assert!(r0.grant_id.is_some() && r0.parent_jti.is_none(), "the first token comes from alice's grant");
    let audit = store.audit_by_jti(c2["jti"].as_str().unwrap()).await.unwrap();
    assert!(
        audit.iter().any(|e| e.detail.as_deref() == Some("delegation: api-c ← mcp-b ← agent-a for alice")),
        "{audit:?}"
    );

    // A fourth actor would exceed max_delegation_depth = 3.
    let deeper =
        exchange(&server, "api-c", &[("subject_token", token(&t2)), ("subject_token_type", AT), ("resource", E)]).await;
    let body = assert_oauth_error(deeper, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("limit is 3"), "{body}");

    // api-d impersonates (configured so): the token for E names alice and no actor.
    let impersonated = exchanged(&server, "api-d", token(&t2), E, &[]).await;
    let (_, ci) = decode_unverified(token(&impersonated));
    assert_eq!(ci["sub"], "alice");
    assert!(ci.get("act").is_none(), "{ci}");
}

/// Client, form, status, error code, and words the description must contain.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str, &'a str);

async fn every_refusal_has_its_error(backend: Backend) {
    let server = start(backend).await;
    let t0 = alices_token(&server).await;
    let narrowed = exchanged(&server, "agent-a", &t0, B, &[("scope", "data:read")]).await;
    let subject = token(&narrowed);

    let cases: Vec<Case> = vec![
        ("mcp-b", vec![("subject_token", subject), ("resource", C)], 400, "invalid_request", "subject_token_type"),
        ("mcp-b", vec![("subject_token_type", AT), ("resource", C)], 400, "invalid_request", "subject_token"),
        (
            "mcp-b",
            vec![
                ("subject_token", subject),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:saml2"),
                ("resource", C),
            ],
            400,
            "invalid_request",
            "not supported",
        ),
        (
            "mcp-b",
            vec![("subject_token", "not.a.token"), ("subject_token_type", AT), ("resource", C)],
            400,
            "invalid_request",
            "not acceptable",
        ),
        (
            "mcp-b",
            vec![("subject_token", subject), ("subject_token_type", AT), ("resource", C), ("actor_token", subject)],
            400,
            "invalid_request",
            "actor_token_type",
        ),
        (
            "mcp-b",
            vec![
                ("subject_token", subject),
                ("subject_token_type", AT),
                ("resource", C),
                ("actor_token", &t0),
                ("actor_token_type", AT),
            ],
            400,
            "invalid_request",
            "another client",
        ),
        ("mcp-b", vec![("subject_token", subject), ("subject_token_type", AT)], 400, "invalid_target", "resource"),
        (
            "mcp-b",
            vec![("subject_token", subject), ("subject_token_type", AT), ("resource", "https://nowhere.example/")],
            400,
            "invalid_target",
            "not a registered resource",
        ),
        (
            "mcp-b",
            vec![("subject_token", subject), ("subject_token_type", AT), ("resource", C), ("audience", D)],
            400,
            "invalid_target",
            "one target",
        ),
        (
            "mcp-b",
            vec![("subject_token", subject), ("subject_token_type", AT), ("resource", B), ("scope", "data:write")],
            400,
            "invalid_scope",
            "only narrow",
        ),
        (
            "stranger",
            vec![("subject_token", subject), ("subject_token_type", AT), ("resource", C)],
            400,
            "invalid_request",
            "only they may",
        ),
        (
            "mcp-b",
            vec![
                ("subject_token", subject),
                ("subject_token_type", AT),
                ("resource", C),
                ("requested_token_type", "urn:ietf:params:oauth:token-type:saml1"),
            ],
            400,
            "invalid_request",
            "requested_token_type",
        ),
    ];
    for (client, form, status, error, says) in cases {
        let res = exchange(&server, client, &form).await;
        let body = assert_oauth_error(res, status, error).await;
        assert!(body["error_description"].as_str().unwrap().contains(says), "{form:?}: {body}");
    }
    // A client without the grant.
    let form = [("grant_type", TE), ("subject_token", subject), ("subject_token_type", AT), ("resource", C)];
    let res = server.post_form("/token", Some(("build-agent", crate::common::AGENT_SECRET)), &form).await;
    assert_oauth_error(res, 400, "unauthorized_client").await;
}

async fn revoking_a_token_kills_its_subtree_and_spares_siblings(backend: Backend) {
    let server = start(backend).await;
    let t0 = alices_token(&server).await;
    let t0a = exchanged(&server, "agent-a", &t0, B, &[("scope", "data:read")]).await;
    let t1 = exchanged(&server, "mcp-b", token(&t0a), C, &[]).await;
    let t2 = exchanged(&server, "api-c", token(&t1), D, &[]).await;
    let sibling = exchanged(&server, "mcp-b", token(&t0a), D, &[]).await;

    // B's token for C is revoked by B (RFC 7009): it and what C exchanged it for die, everywhere.
    let res = server.post_form("/revoke", Some(("mcp-b", SECRET)), &[("token", token(&t1))]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(server.introspect(token(&t1)).await["active"], false);
    assert_eq!(server.introspect(token(&t2)).await["active"], false, "exchanged from a revoked token");
    assert_eq!(server.introspect(token(&sibling)).await["active"], true, "a sibling lives on");
    assert_eq!(server.introspect(token(&t0a)).await["active"], true, "the parent lives on");
    let again =
        exchange(&server, "api-d", &[("subject_token", token(&t2)), ("subject_token_type", AT), ("resource", E)]).await;
    let body = assert_oauth_error(again, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("revoked"), "{body}");
}

/// A partner's JWT (a trusted issuer) as subject token, naming who may act for its subject. Until
/// issue 15 (item 19) the partner's `may_act` was compared with local client ids, and its `aud`
/// could be a resource here; now `aud` is this server and `may_act` names a client here only
/// through the issuer's `client_ids` mapping (or with this server's `iss`).
async fn may_act_in_a_trusted_subject_token_decides_who_may_act(backend: Backend) {
    let partner = Partner::new(PARTNER);
    let config = format!("{}{}", config(), partner.trusted("client_ids = { \"partner-mcp\" = \"mcp-b\" }"));
    let server = TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await;
    let now = mandate_core::Clock::now(&mandate_core::SystemClock);
    let partner_token = |jti: &str, extra: Value| {
        let mut claims = json!({
            "iss": PARTNER, "sub": "bob", "aud": server.issuer, "scope": "data:read", "jti": jti,
            "iat": now, "exp": now + 120,
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        partner.sign(Some("JWT"), &claims)
    };
    let jwt = "urn:ietf:params:oauth:token-type:jwt";
    let srv = &server;
    let send = |token: String| async move {
        exchange(srv, "mcp-b", &[("subject_token", &token), ("subject_token_type", jwt), ("resource", C)]).await
    };

    // may_act names the partner's client that the mapping makes mcp-b here.
    let res = send(partner_token("t-1", json!({ "may_act": { "sub": "partner-mcp" } }))).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let (_, claims) = decode_unverified(token(&body));
    assert_eq!(claims["sub"], format!("{PARTNER}#bob"), "the partner's bob, not a person here");
    assert_eq!(claims["act"], json!({ "sub": "mcp-b" }));
    assert!(claims["exp"].as_i64().unwrap() <= now + 120, "within the partner token's life");
    // Or names mcp-b in this server's namespace, with this server's iss.
    let res = send(partner_token("t-2", json!({ "may_act": { "sub": "mcp-b", "iss": server.issuer } }))).await;
    assert_eq!(res.status(), 200);

    // "mcp-b" in the partner's namespace is not mcp-b here.
    let res = send(partner_token("t-3", json!({ "may_act": { "sub": "mcp-b" } }))).await;
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("only they may"), "{body}");
    // Issued to the partner's client mapped to mcp-b, but may_act names another of its clients.
    let res =
        send(partner_token("t-4", json!({ "client_id": "partner-mcp", "may_act": { "sub": "partner-other" } }))).await;
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("may_act does not allow mcp-b"), "{body}");

    // Signed by a key the partner does not publish: refused.
    let stranger = Partner::new(PARTNER);
    let forged = stranger
        .sign(Some("JWT"), &json!({ "iss": PARTNER, "sub": "bob", "aud": server.issuer, "exp": now + 60, "jti": "f" }));
    let res = send(forged).await;
    assert_oauth_error(res, 400, "invalid_request").await;
}

/// Issue 15, item 19: a partner's JWT used to be exchanged after a check of its signature and
/// times only: addressed to another server, exchanged again and again, already redeemed through
/// jwt-bearer, for a target outside its `resource`, a year-long access token for the partner's own
/// APIs, and a `client_id` of the partner's taken for a client here.
async fn a_partner_token_is_exchanged_once_and_only_as_a_grant_for_this_server(backend: Backend) {
    let partner = Partner::new(PARTNER);
    let bridge = format!(
        "\n[[clients]]\nclient_id = \"bridge\"\nclient_secret = \"{SECRET}\"\ngrant_types = [\"{TE}\", \"urn:ietf:params:oauth:grant-type:jwt-bearer\"]\nscopes = [\"data:read\"]\n"
    );
    let mapping = "client_ids = { \"partner-mcp\" = \"mcp-b\", \"bridge\" = \"bridge\" }";
    let config = format!("{}{bridge}{}", config(), partner.trusted(mapping));
    let server = TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await;
    let now = mandate_core::Clock::now(&mandate_core::SystemClock);
    let claims = |jti: &str, client_id: &str| {
        json!({ "iss": PARTNER, "sub": "bob", "aud": server.issuer, "client_id": client_id, "scope": "data:read",
                "jti": jti, "iat": now, "exp": now + 120 })
    };
    let jwt = "urn:ietf:params:oauth:token-type:jwt";
    let send = |client: &'static str, token: String, target: &'static str| {
        let server = &server;
        async move {
            exchange(server, client, &[("subject_token", &token), ("subject_token_type", jwt), ("resource", target)])
                .await
        }
    };
    let says = |body: Value, words: &str| {
        assert!(body["error_description"].as_str().unwrap().contains(words), "expected {words:?}: {body}");
    };

    // Addressed to another authorization server: refused.
    let mut elsewhere = claims("elsewhere", "partner-mcp");
    elsewhere["aud"] = json!("https://as.other.example");
    let res = send("mcp-b", partner.sign(Some("JWT"), &elsewhere), C).await;
    says(assert_oauth_error(res, 400, "invalid_request").await, "aud");

    // Exchanged once; the second time its jti is used up.
    let once = partner.sign(Some("JWT"), &claims("once", "partner-mcp"));
    let res = send("mcp-b", once.clone(), C).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let (_, c) = decode_unverified(token(&body));
    assert_eq!(c["act"], json!({ "sub": "mcp-b", "act": { "sub": "partner-mcp", "iss": PARTNER } }));
    let res = send("mcp-b", once, C).await;
    says(assert_oauth_error(res, 400, "invalid_request").await, "used already");

    // Redeemed through jwt-bearer first: the exchange finds its jti used.
    let mut grant = claims("grant", "bridge");
    grant["resource"] = json!(B);
    let grant = partner.sign(Some("JWT"), &grant);
    let form =
        [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", grant.as_str()), ("resource", B)];
    let res = server.post_form("/token", Some(("bridge", SECRET)), &form).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = send("bridge", grant, B).await;
    says(assert_oauth_error(res, 400, "invalid_request").await, "used already");

    // Its resource claim bounds the target.
    let mut for_b = claims("for-b", "partner-mcp");
    for_b["resource"] = json!(B);
    let res = send("mcp-b", partner.sign(Some("JWT"), &for_b), C).await;
    says(assert_oauth_error(res, 400, "invalid_target").await, "is for");

    // The partner's access token for its own API, valid a year: refused (not configured).
    let mut access = claims("access", "partner-mcp");
    access["aud"] = json!(server.issuer);
    access["exp"] = json!(now + 365 * 86_400);
    let res = send("mcp-b", partner.sign(Some("at+jwt"), &access), C).await;
    says(assert_oauth_error(res, 400, "invalid_request").await, "at+jwt");
    let res = send("mcp-b", partner.sign(Some("JWT"), &access), C).await;
    says(assert_oauth_error(res, 400, "invalid_request").await, "limit is 300 seconds");

    // Its client "mcp-b" is the partner's mcp-b, not ours: only the mapping names a client here.
    let res = send("mcp-b", partner.sign(Some("JWT"), &claims("theirs", "mcp-b")), C).await;
    says(assert_oauth_error(res, 400, "invalid_request").await, "only they may");
}

/// Issue 15, item 7: a client put the person in its place in the `act` chain by sending, as actor
/// token, a token it held for the person. The actor token must be its own token about itself.
async fn an_actor_token_held_for_a_person_cannot_make_them_the_actor(backend: Backend) {
    let server = start(backend).await;
    let t0 = alices_token(&server).await;
    let form = [
        ("subject_token", t0.as_str()),
        ("subject_token_type", AT),
        ("resource", B),
        ("actor_token", &t0),
        ("actor_token_type", AT),
    ];
    let res = exchange(&server, "agent-a", &form).await;
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("is about alice"), "{body}");

    // mcp-b's delegated token for alice is not mcp-b's own token either.
    let t1 = exchanged(&server, "mcp-b", &t0, C, &[]).await;
    let form = [
        ("subject_token", t0.as_str()),
        ("subject_token_type", AT),
        ("resource", C),
        ("actor_token", token(&t1)),
        ("actor_token_type", AT),
    ];
    let res = exchange(&server, "mcp-b", &form).await;
    assert_oauth_error(res, 400, "invalid_request").await;

    // Its client-credentials token is: the client is the outermost actor, the person stays sub.
    let own: Value = server
        .post_form("/token", Some(("mcp-b", SECRET)), &[("grant_type", "client_credentials"), ("resource", C)])
        .await
        .json()
        .await
        .unwrap();
    let form = [
        ("subject_token", t0.as_str()),
        ("subject_token_type", AT),
        ("resource", C),
        ("actor_token", token(&own)),
        ("actor_token_type", AT),
    ];
    let res = exchange(&server, "mcp-b", &form).await;
    assert_eq!(res.status(), 200);
    let (_, c) = decode_unverified(token(&res.json::<Value>().await.unwrap()));
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["act"], json!({ "sub": "mcp-b", "act": { "sub": "agent-a" } }));
}

/// A disabled person's tokens are not exchanged (as their grants stop at the next refresh).
async fn a_disabled_persons_token_is_not_exchanged(backend: Backend) {
    let server = start(backend).await;
    let t0 = alices_token(&server).await;
    let store = &server.state().store;
    let mut alice = store.get_user("alice").await.unwrap().unwrap();
    alice.disabled = true;
    store.put_user(&alice, server.state().now()).await.unwrap();
    let res =
        exchange(&server, "agent-a", &[("subject_token", &t0), ("subject_token_type", AT), ("resource", B)]).await;
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("disabled"), "{body}");
}

crate::on_both_backends!(
    a_disabled_persons_token_is_not_exchanged,
    may_act_in_a_trusted_subject_token_decides_who_may_act,
    a_partner_token_is_exchanged_once_and_only_as_a_grant_for_this_server,
    an_actor_token_held_for_a_person_cannot_make_them_the_actor,
    a_three_hop_chain_carries_every_actor,
    every_refusal_has_its_error,
    revoking_a_token_kills_its_subtree_and_spares_siblings
);
