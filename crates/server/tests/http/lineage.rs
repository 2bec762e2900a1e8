//! A chain's lineage and its kill switch: the admin API (JSON tree, subtree revocation seen by a
//! second instance on the same database), and the person's account page (the activity list, the
//! graph, the CSRF-protected kill switch, nobody else's chains).

use serde_json::{Value, json};

use crate::common::browser::{
    ALICE_PASSWORD, Browser, NATIVE_REDIRECT, VERIFIER, authorize_as_alice, delegation_config,
};
use crate::common::{Backend, Options, TestServer, assert_oauth_error, decode_unverified, fresh_database};

const SECRET: &str = "lineage-test-secret-0123456789abcdefghijklm";
const B: &str = "https://b.example/mcp";
const C: &str = "https://c.example/api";
const REDIRECT: &str = "https://agent-a.example/cb";
const TE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";

fn config() -> String {
    format!(
        r#"{base}
[admin]
clients = ["ops"]

[[resources]]
uri = "{B}"
scopes = ["data:read"]
client_id = "mcp-b"

[[resources]]
uri = "{C}"
scopes = ["data:read"]

[[clients]]
client_id = "agent-a"
client_secret = "{SECRET}"
redirect_uris = ["{REDIRECT}"]
grant_types = ["authorization_code"]
scopes = ["data:read"]

[[clients]]
client_id = "mcp-b"
client_secret = "{SECRET}"
grant_types = ["{TE}"]
scopes = ["data:read"]

[[clients]]
client_id = "ops"
client_secret = "{SECRET}"
grant_types = []
"#,
        base = delegation_config()
    )
}

/// alice → agent-a (for B) → mcp-b (for C, twice: a chain and a sibling). Returns the three tokens.
async fn chain(server: &TestServer) -> (String, String, String) {
    let mut browser = Browser::new();
    let code =
        authorize_as_alice(server, &mut browser, "agent-a", REDIRECT, &[("resource", B), ("scope", "data:read")]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", crate::common::browser::VERIFIER),
        ("resource", B),
    ];
    let t0: Value = server.post_form("/token", Some(("agent-a", SECRET)), &form).await.json().await.unwrap();
    let t0 = t0["access_token"].as_str().unwrap().to_owned();
    let exchange = |subject: String| async move {
        let form =
            [("grant_type", TE), ("subject_token", subject.as_str()), ("subject_token_type", AT), ("resource", C)];
        let body: Value = server.post_form("/token", Some(("mcp-b", SECRET)), &form).await.json().await.unwrap();
        body["access_token"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned()
    };
    let t1 = exchange(t0.clone()).await;
    let sibling = exchange(t0.clone()).await;
    (t0, t1, sibling)
}

fn jti(token: &str) -> String {
    decode_unverified(token).1["jti"].as_str().unwrap().to_owned()
}

async fn the_admin_api_shows_the_tree_and_revokes_a_subtree_everywhere(backend: Backend) {
    let db = fresh_database(backend).await;
    let a = TestServer::start_on(db.clone(), Options { config: config(), ..Options::default() }).await;
    let b =
        TestServer::start_on(db, Options { config: config(), issuer: Some(a.issuer.clone()), ..Options::default() })
            .await;
    let (t0, t1, sibling) = chain(&a).await;

    let res = a
        .http
        .get(a.url(&format!("/admin/lineage/{}", jti(&t1))))
        .basic_auth("ops", Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tree: Value = res.json().await.unwrap();
    assert_eq!(tree["grant"]["username"], "alice");
    assert_eq!(tree["grant"]["client_id"], "agent-a");
    assert_eq!(tree["focus"], jti(&t1));
    assert_eq!(tree["root"]["jti"], jti(&t0));
    let children = tree["root"]["children"].as_array().unwrap();
    assert_eq!(children.len(), 2, "{tree}");
    assert_eq!(children[0]["actors"], serde_json::json!(["mcp-b", "agent-a"]));
    assert_eq!(children[0]["audience"], C);

    // Not an admin client: refused; unknown jti: 404.
    let res = a
        .http
        .get(a.url(&format!("/admin/lineage/{}", jti(&t1))))
        .basic_auth("agent-a", Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = a.http.get(a.url(&format!("/admin/lineage/{}", jti(&t1)))).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = a.http.get(a.url("/admin/lineage/nope")).basic_auth("ops", Some(SECRET)).send().await.unwrap();
    assert_eq!(res.status(), 404);

    // A person's tokens, newest first, all live; bad queries are invalid_request, strangers 403.
    let tokens_of_alice = |server: &TestServer| {
        server.http.get(server.url("/admin/tokens?subject=alice&limit=10")).basic_auth("ops", Some(SECRET)).send()
    };
    let res = tokens_of_alice(&a).await.unwrap();
    assert_eq!(res.status(), 200);
    let listed: Value = res.json().await.unwrap();
    let jtis: Vec<&str> = listed["tokens"].as_array().unwrap().iter().map(|t| t["jti"].as_str().unwrap()).collect();
    let mut expected = vec![jti(&t0), jti(&t1), jti(&sibling)];
    expected.sort();
    let mut found: Vec<String> = jtis.iter().map(|j| j.to_string()).collect();
    found.sort();
    assert_eq!(found, expected, "{listed}");
    assert!(listed["tokens"].as_array().unwrap().iter().all(|t| t["live"] == true && t["revoked"] == false));
    let first = &listed["tokens"][0];
    assert!(first["issued_at"].as_i64() >= listed["tokens"][2]["issued_at"].as_i64(), "newest first: {listed}");
    for (query, status) in [
        ("/admin/tokens", 400),
        ("/admin/tokens?subject=alice&limit=0", 400),
        ("/admin/tokens?subject=alice&limit=x", 400),
    ] {
        let res = a.http.get(a.url(query)).basic_auth("ops", Some(SECRET)).send().await.unwrap();
        assert_eq!(res.status(), status, "{query}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_request", "{query}");
    }
    let res =
        a.http.get(a.url("/admin/tokens?subject=alice")).basic_auth("agent-a", Some(SECRET)).send().await.unwrap();
    assert_eq!(res.status(), 403);

    // The kill switch on instance A: the root and everything from it, seen at once by instance B.
    let res = a
        .http
        .post(a.url(&format!("/admin/lineage/{}/revoke", jti(&t0))))
        .basic_auth("ops", Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["live_tokens_revoked"], 3, "{body}");
    for token in [&t0, &t1, &sibling] {
        assert_eq!(b.introspect(token).await["active"], false, "revoked on the other instance too");
    }
    let listed: Value = tokens_of_alice(&b).await.unwrap().json().await.unwrap();
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 3, "{listed}");
    assert!(tokens.iter().all(|t| t["live"] == false && t["revoked"] == true), "{listed}");
    let audit = a.state().store.audit_by_jti(&jti(&t0)).await.unwrap();
    assert!(
        audit.iter().any(|e| e.detail.as_deref().is_some_and(|d| d.contains("subtree revoked by admin client ops"))),
        "{audit:?}"
    );
}

async fn the_person_sees_the_graph_and_can_pull_the_kill_switch(backend: Backend) {
    let server =
        TestServer::start_on(fresh_database(backend).await, Options { config: config(), ..Options::default() }).await;
    let (t0, t1, sibling) = chain(&server).await;

    let mut alice = Browser::new();
    let login = alice.get(&server.url("/account")).await;
    let signed_in = alice.sign_in(login.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    assert!(signed_in.status == 303 || signed_in.status == 302, "{}", signed_in.body);
    let account = alice.get(&server.url("/account")).await;
    assert_eq!(account.status, 200);
    let link = format!("/account/lineage/{}", jti(&t1));
    let escaped = link.replace('/', "&#x2f;");
    assert!(account.body.contains(&escaped), "the activity list links each token: {}", account.body);
    assert!(account.body.contains("mcp-b ← agent-a"), "{}", account.body);

    let graph = alice.get(&server.url(&link)).await;
    assert_eq!(graph.status, 200);
    assert!(graph.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert!(graph.body.contains("<svg class=\"lineage\""), "{}", graph.body);
    assert_eq!(graph.body.matches("<rect").count(), 3, "three tokens: {}", graph.body);
    assert!(graph.body.contains("acting: mcp-b ← agent-a"), "{}", graph.body);
    let csrf = graph.field("csrf").expect("a CSRF field on the kill switch");

    // mallory sees none of it.
    let mut mallory = Browser::new();
    let login = mallory.get(&server.url("/account")).await;
    mallory.sign_in(login.location.as_deref().unwrap(), "mallory", "mallory-password-123").await;
    let theirs = mallory.get(&server.url(&link)).await;
    assert_ne!(theirs.status, 200);
    assert!(!theirs.body.contains("<svg"), "{}", theirs.body);

    // Without the CSRF token nothing happens; with it, t1 and only t1's subtree is revoked.
    let forged = alice.post(&server.url(&format!("{link}/revoke")), &[]).await;
    assert_ne!(forged.status, 303);
    assert_eq!(server.introspect(&t1).await["active"], true);
    let done = alice.post(&server.url(&format!("{link}/revoke")), &[("csrf", csrf.as_str())]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(server.introspect(&t1).await["active"], false);
    assert_eq!(server.introspect(&sibling).await["active"], true, "the sibling lives on");
    assert_eq!(server.introspect(&t0).await["active"], true, "the parent lives on");
    let after = alice.get(&server.url(&link)).await;
    assert!(after.body.contains("class=\"revoked\"") && !after.body.contains("revoke-subtree"), "{}", after.body);
}

/// Issue 15, item 20: a partner's subject and actors are told apart from this server's people and
/// clients in the lineage (and in the token, where a resource sees them).
async fn a_partners_people_and_actors_are_told_apart_in_the_lineage(backend: Backend) {
    use crate::identity_assertion::{PARTNER, Partner};
    let partner = Partner::new(PARTNER);
    let jwt_bearer = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let redeemer = format!(
        "\n[[clients]]\nclient_id = \"redeemer\"\nclient_secret = \"{SECRET}\"\ngrant_types = [\"{jwt_bearer}\"]\nscopes = [\"data:read\"]\n"
    );
    let config = format!("{}{redeemer}{}", config(), partner.trusted(""));
    let server = TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await;
    let now = mandate_core::Clock::now(&mandate_core::SystemClock);
    let claims = serde_json::json!({
        "iss": PARTNER, "sub": "alice", "aud": server.issuer, "client_id": "redeemer", "jti": "g-1",
        "iat": now, "exp": now + 120, "resource": B, "act": { "sub": "agent-a" },
    });
    let assertion = partner.sign(Some("JWT"), &claims);
    let form = [("grant_type", jwt_bearer), ("assertion", assertion.as_str()), ("resource", B)];
    let res = server.post_form("/token", Some(("redeemer", SECRET)), &form).await;
    assert_eq!(res.status(), 200);
    let issued: Value = res.json().await.unwrap();
    let at = issued["access_token"].as_str().unwrap();
    let partners_alice = format!("{PARTNER}#alice");

    let tree: Value = server
        .http
        .get(server.url(&format!("/admin/lineage/{}", jti(at))))
        .basic_auth("ops", Some(SECRET))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tree["grant"].is_null(), "no grant of a person here: {tree}");
    assert_eq!(tree["root"]["subject"], partners_alice.as_str());
    assert_eq!(tree["root"]["actors"], serde_json::json!(["redeemer", format!("{PARTNER}#agent-a")]), "{tree}");

    // alice's own tokens do not include it; the partner's alice has her own.
    let list = |subject: String| {
        let url = server.url(&format!(
            "/admin/tokens?subject={}",
            form_urlencoded::byte_serialize(subject.as_bytes()).collect::<String>()
        ));
        server.http.get(url).basic_auth("ops", Some(SECRET)).send()
    };
    let alices: Value = list("alice".into()).await.unwrap().json().await.unwrap();
    assert!(alices["tokens"].as_array().unwrap().iter().all(|t| t["jti"] != jti(at).as_str()), "{alices}");
    let theirs: Value = list(partners_alice).await.unwrap().json().await.unwrap();
    assert_eq!(theirs["tokens"][0]["jti"], jti(at).as_str(), "{theirs}");
}

/// desktop-agent signs alice in and gets an access and a refresh token (a new grant each time).
async fn desktop_tokens(server: &TestServer) -> (String, String) {
    let mut browser = Browser::new();
    let extra = [("scope", "tools:read offline_access"), ("resource", crate::common::MCP)];
    let code = authorize_as_alice(server, &mut browser, "desktop-agent", NATIVE_REDIRECT, &extra).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "desktop-agent"),
        ("code", code.as_str()),
        ("code_verifier", VERIFIER),
        ("resource", crate::common::MCP),
    ];
    let body: Value = server.post_form("/token", None, &form).await.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    (access, body["refresh_token"].as_str().expect("a refresh token").to_owned())
}

async fn refresh(server: &TestServer, refresh_token: &str) -> reqwest::Response {
    let form = [("grant_type", "refresh_token"), ("client_id", "desktop-agent"), ("refresh_token", refresh_token)];
    server.post_form("/token", None, &form).await
}

/// Issue 15 item 17: revoking a token's subtree leaves its grant, so the client refreshes; revoking
/// the grant, by the id the lineage shows or as every grant of a person for a client, stops it.
async fn revoking_a_grant_through_the_admin_api_stops_its_refresh_tokens(backend: Backend) {
    let server =
        TestServer::start_on(fresh_database(backend).await, Options { config: config(), ..Options::default() }).await;
    let admin = |path: String, form: Vec<(&'static str, String)>| {
        server.http.post(server.url(&path)).basic_auth("ops", Some(SECRET)).form(&form).send()
    };
    let (access, r0) = desktop_tokens(&server).await;
    let tree: Value = server
        .http
        .get(server.url(&format!("/admin/lineage/{}", jti(&access))))
        .basic_auth("ops", Some(SECRET))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grant_id = tree["grant"]["grant_id"].as_str().unwrap_or_else(|| panic!("{tree}")).to_owned();

    // The token's subtree: the answer names the grant that still lets the client refresh.
    let res = admin(format!("/admin/lineage/{}/revoke", jti(&access)), vec![]).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["live_grant_id"], grant_id.as_str(), "{body}");
    let res = refresh(&server, &r0).await;
    assert_eq!(res.status(), 200, "the grant is live: the client refreshes");
    let refreshed: Value = res.json().await.unwrap();
    let (a1, r1) = (refreshed["access_token"].as_str().unwrap(), refreshed["refresh_token"].as_str().unwrap());

    // The grant, by the id the lineage printed: refreshes are refused, its tokens inactive.
    let res = admin(format!("/admin/lineage/{grant_id}/revoke"), vec![]).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (&body["grant_id"], &body["username"], &body["client_id"]),
        (&json!(grant_id), &json!("alice"), &json!("desktop-agent"))
    );
    assert_eq!(body["was_live"], true, "{body}");
    assert_oauth_error(refresh(&server, r1).await, 400, "invalid_grant").await;
    assert_eq!(server.introspect(a1).await["active"], false);
    let again: Value =
        admin(format!("/admin/lineage/grant:{grant_id}/revoke"), vec![]).await.unwrap().json().await.unwrap();
    assert_eq!(again["was_live"], false, "{again}");
    let audit = server.state().store.audit_by_jti(&format!("grant:{grant_id}")).await.unwrap();
    assert!(audit.iter().any(|e| e.detail.as_deref() == Some("grant revoked by admin client ops")), "{audit:?}");

    // Every grant of alice for desktop-agent: two new ones, both cut off.
    let (a2, r2) = desktop_tokens(&server).await;
    let (_, r3) = desktop_tokens(&server).await;
    let form = |user: &str, client: &str| vec![("username", user.to_owned()), ("client", client.to_owned())];
    let res = admin("/admin/grants/revoke".into(), form("alice", "desktop-agent")).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["grants_revoked"], 2, "{body}");
    for r in [&r2, &r3] {
        assert_oauth_error(refresh(&server, r).await, 400, "invalid_grant").await;
    }
    assert_eq!(server.introspect(&a2).await["active"], false);
    let body: Value =
        admin("/admin/grants/revoke".into(), form("alice", "desktop-agent")).await.unwrap().json().await.unwrap();
    assert_eq!(body["grants_revoked"], 0, "nothing left: {body}");

    // Misspelt names and unknown ids are told apart from "nothing left"; strangers are refused.
    for (user, client, needle) in [
        ("alicia", "desktop-agent", "no user named alicia"),
        ("alice", "desktop-agnet", "no client with id desktop-agnet"),
    ] {
        let res = admin("/admin/grants/revoke".into(), form(user, client)).await.unwrap();
        assert_eq!(res.status(), 404);
        let body: Value = res.json().await.unwrap();
        assert!(body["error_description"].as_str().unwrap().contains(needle), "{body}");
    }
    let res = admin("/admin/grants/revoke".into(), vec![("username", "alice".into())]).await.unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = admin("/admin/lineage/no-such-id/revoke".into(), vec![]).await.unwrap();
    assert_eq!(res.status(), 404);
    let res = server
        .http
        .post(server.url("/admin/grants/revoke"))
        .basic_auth("agent-a", Some(SECRET))
        .form(&form("alice", "desktop-agent"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

crate::on_both_backends!(
    the_admin_api_shows_the_tree_and_revokes_a_subtree_everywhere,
    the_person_sees_the_graph_and_can_pull_the_kill_switch,
    a_partners_people_and_actors_are_told_apart_in_the_lineage,
    revoking_a_grant_through_the_admin_api_stops_its_refresh_tokens,
);
