//! mandate-resource (the library MCP servers embed) against this authorization server: offline
//! verification with keys found by discovery, each bad token refused with the right challenge,
//! scopes per MCP method and tool (step-up), key rotation, introspection mode, RFC 9728 metadata;
//! bodies the scope checks cannot read refused before the handler; delegated tokens refused as
//! the builder says.

use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mandate_core::jose::{ACCESS_TOKEN_TYP, SigningAlgorithm, SigningKey, generate_private_key};
use mandate_resource::{ResourceServer, ScopePolicy, Token};
use serde_json::{Value, json};

use crate::common::{AGENT_SECRET, Backend, MCP, POST_SECRET, RS_SECRET, TestServer};

/// An MCP-like endpoint behind the layer: echoes what the handler sees.
async fn protected(rs: &ResourceServer) -> String {
    let policy =
        ScopePolicy::new().require(["tools:read"]).method("tools/call", ["tools:call"]).tool("wipe", ["admin"]);
    let app = Router::new()
        .route(
            "/mcp",
            post(|Token(token): Token, headers: HeaderMap| async move {
                axum::Json(json!({
                    "sub": token.subject, "client_id": token.client_id, "scopes": token.scopes,
                    "authorization_header_seen": headers.contains_key("authorization"),
                }))
            }),
        )
        .layer(rs.layer(policy))
        .merge(rs.metadata_router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// A server, a resource server built on it (adjusted by `configure`) with its keys loaded, the
/// protected endpoint's base URL and a client.
async fn setup(
    configure: impl FnOnce(mandate_resource::Builder) -> mandate_resource::Builder,
) -> (TestServer, ResourceServer, String, reqwest::Client) {
    let server = TestServer::start(Backend::Sqlite).await;
    let rs = configure(ResourceServer::builder(server.issuer.as_str(), MCP)).build().unwrap();
    let base = protected(&rs).await;
    ready(&rs).await;
    (server, rs, base, reqwest::Client::new())
}

async fn ready(rs: &ResourceServer) {
    for _ in 0..100 {
        if rs.is_ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the resource server never loaded the issuer's keys");
}

async fn call(http: &reqwest::Client, base: &str, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = http.post(format!("{base}/mcp")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

fn rpc(method: &str, tool: Option<&str>) -> Value {
    match tool {
        Some(name) => json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"name": name, "arguments": {}}}),
        None => json!({"jsonrpc": "2.0", "id": 1, "method": method}),
    }
}

fn challenge(res: &reqwest::Response) -> String {
    res.headers().get("www-authenticate").expect("a challenge").to_str().unwrap().to_owned()
}

async fn token(server: &TestServer, client: (&str, &str), scope: &str) -> String {
    let res = server
        .post_form("/token", Some(client), &[("grant_type", "client_credentials"), ("resource", MCP), ("scope", scope)])
        .await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

/// Claims like the server's, signed with its real key, for tokens it would never issue.
fn forged(server: &TestServer, change: impl FnOnce(&mut Value)) -> String {
    let now = mandate_core::Clock::now(&mandate_core::SystemClock);
    let mut claims = json!({
        "iss": server.issuer.as_str(), "sub": "build-agent", "aud": MCP, "client_id": "build-agent",
        "scope": "tools:read tools:call", "jti": "forged-1", "iat": now, "exp": now + 300,
    });
    change(&mut claims);
    server.state().keyring.current().active.sign(ACCESS_TOKEN_TYP, &claims).unwrap()
}

fn unsigned(header: Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.", part(&header), part(claims))
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler_without_the_token() {
    let (server, rs, base, http) = setup(|b| b.scopes_supported(["tools:read", "tools:call"])).await;
    let t = server.agent_token().await;
    let res = call(&http, &base, Some(&t), rpc("tools/list", None)).await;
    assert_eq!(res.status(), 200);
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["client_id"], "build-agent");
    assert_eq!(seen["scopes"], json!(["tools:call", "tools:read"]));
    assert_eq!(seen["authorization_header_seen"], false, "no token passthrough");

    // RFC 9728 metadata at the path-inserted and root well-known URLs.
    assert_eq!(rs.metadata_url(), "http://127.0.0.1:9090/.well-known/oauth-protected-resource/mcp");
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let doc: Value = http.get(format!("{base}{path}")).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["resource"], MCP);
        assert_eq!(doc["authorization_servers"], json!([server.issuer.as_str()]));
        assert_eq!(doc["scopes_supported"], json!(["tools:read", "tools:call"]));
    }
}

#[tokio::test]
async fn every_bad_token_gets_a_401_challenge() {
    let (server, _rs, base, http) = setup(|b| b).await;
    let prm = "resource_metadata=\"http://127.0.0.1:9090/.well-known/oauth-protected-resource/mcp\"";

    let res = call(&http, &base, None, rpc("tools/list", None)).await;
    assert_eq!(res.status(), 401);
    assert_eq!(challenge(&res), format!("Bearer {prm}, scope=\"tools:read\""), "no token: a bare challenge");

    let now = mandate_core::Clock::now(&mandate_core::SystemClock);
    let stranger = {
        let der = generate_private_key(SigningAlgorithm::ES256).unwrap();
        let key = SigningKey::from_pkcs8(SigningAlgorithm::ES256, &der).unwrap();
        let claims = json!({"iss": server.issuer.as_str(), "sub": "x", "aud": MCP, "client_id": "x", "exp": now + 60});
        key.sign(ACCESS_TOKEN_TYP, &claims).unwrap()
    };
    let public_jwk = serde_json::to_vec(&server.state().keyring.current().active.public_jwk).unwrap();
    let hs256_with_public_key = {
        let claims = json!({"iss": server.issuer.as_str(), "sub": "x", "aud": MCP, "client_id": "x", "exp": now + 60});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(server.state().keyring.current().active.kid.clone());
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&public_jwk).unwrap()).unwrap()
    };
    let cases: Vec<(&str, String)> = vec![
        ("expired", forged(&server, |c| c["exp"] = json!(now - 120))),
        ("not yet valid", forged(&server, |c| c["nbf"] = json!(now + 600))),
        ("issued in the future", forged(&server, |c| c["iat"] = json!(now + 600))),
        ("another audience", forged(&server, |c| c["aud"] = json!("https://api.example.com"))),
        ("another issuer", forged(&server, |c| c["iss"] = json!("https://evil.example"))),
        (
            "alg none",
            unsigned(json!({"alg": "none", "typ": "at+jwt"}), &json!({"iss": server.issuer.as_str(), "aud": MCP})),
        ),
        ("HS256 keyed with the public key", hs256_with_public_key),
        ("unknown kid", stranger),
        ("garbage", "not-a-jwt-at-all".to_owned()),
    ];
    for (what, bad) in cases {
        let res = call(&http, &base, Some(&bad), rpc("tools/list", None)).await;
        assert_eq!(res.status(), 401, "{what}");
        let c = challenge(&res);
        assert!(c.starts_with(&format!("Bearer {prm}")) && c.contains("error=\"invalid_token\""), "{what}: {c}");
    }

    let t = server.agent_token().await;
    let res = http.post(format!("{base}/mcp?access_token={t}")).json(&rpc("tools/list", None)).send().await.unwrap();
    assert_eq!(res.status(), 401, "a token in the query string");
    assert!(challenge(&res).contains("error=\"invalid_request\""));
    let res = http
        .post(format!("{base}/mcp"))
        .header("authorization", format!("Bearer {t}"))
        .header("authorization", format!("Bearer {t}"))
        .json(&rpc("tools/list", None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "two Authorization headers");
    assert!(challenge(&res).contains("error=\"invalid_request\""));
}

#[tokio::test]
async fn a_missing_scope_is_a_403_naming_every_scope_needed() {
    let (server, _rs, base, http) = setup(|b| b).await;
    let read_only = token(&server, ("build-agent", AGENT_SECRET), "tools:read").await;
    assert_eq!(call(&http, &base, Some(&read_only), rpc("tools/list", None)).await.status(), 200);
    let res = call(&http, &base, Some(&read_only), rpc("tools/call", Some("echo"))).await;
    assert_eq!(res.status(), 403);
    let c = challenge(&res);
    assert!(c.contains("error=\"insufficient_scope\"") && c.contains("scope=\"tools:call tools:read\""), "{c}");
    let both = token(&server, ("build-agent", AGENT_SECRET), "tools:read tools:call").await;
    assert_eq!(call(&http, &base, Some(&both), rpc("tools/call", Some("echo"))).await.status(), 200, "after step-up");
    let res = call(&http, &base, Some(&both), rpc("tools/call", Some("wipe"))).await;
    assert_eq!(res.status(), 403);
    assert!(challenge(&res).contains("scope=\"admin tools:call tools:read\""), "one challenge with every scope");
    // post-agent may not have tools:call at all; it is refused the same way.
    let post = server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "post-agent"),
                ("client_secret", POST_SECRET),
                ("resource", MCP),
            ],
        )
        .await;
    let post: Value = post.json().await.unwrap();
    let res = call(&http, &base, post["access_token"].as_str(), rpc("tools/call", Some("echo"))).await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_trusted() {
    let (server, _rs, base, http) = setup(|b| b).await;
    let before = server.agent_token().await;
    assert_eq!(call(&http, &base, Some(&before), rpc("tools/list", None)).await.status(), 200);
    server.rotate_keys().await;
    let after = server.agent_token().await;
    assert_eq!(
        call(&http, &base, Some(&after), rpc("tools/list", None)).await.status(),
        200,
        "new kid: keys refetched"
    );
    assert_eq!(
        call(&http, &base, Some(&before), rpc("tools/list", None)).await.status(),
        200,
        "the old key is still published"
    );
}

#[tokio::test]
async fn an_unreachable_issuer_means_503_not_a_crash() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rs = ResourceServer::builder(format!("http://127.0.0.1:{port}"), MCP).build().unwrap();
    let base = protected(&rs).await;
    let http = reqwest::Client::new();
    let res = call(&http, &base, Some("whatever"), rpc("tools/list", None)).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert!(!rs.is_ready());
}

#[tokio::test]
async fn introspection_mode_sees_a_revocation() {
    let (server, _rs, base, http) =
        setup(|b| b.introspection("resource-server", RS_SECRET).introspection_cache(Duration::from_secs(1))).await;
    let t = server.agent_token().await;
    assert_eq!(call(&http, &base, Some(&t), rpc("tools/list", None)).await.status(), 200);
    let res = server.post_form("/revoke", Some(("build-agent", AGENT_SECRET)), &[("token", &t)]).await;
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = call(&http, &base, Some(&t), rpc("tools/list", None)).await;
    assert_eq!(res.status(), 401, "revoked at the server, refused here once the short cache expires");
    assert!(challenge(&res).contains("error=\"invalid_token\""));
}

fn body_refusal(what: &str, res: &reqwest::Response, status: u16) {
    assert_eq!(res.status(), status, "{what}");
    assert!(challenge(res).contains("error=\"invalid_request\""), "{what}: {}", challenge(res));
}

#[tokio::test]
async fn a_body_the_scope_checks_cannot_read_never_reaches_the_handler() {
    let (server, _rs, base, http) = setup(|b| b).await;
    let read_only = token(&server, ("build-agent", AGENT_SECRET), "tools:read").await;
    let echo = rpc("tools/call", Some("echo")).to_string();
    let send = |body: Vec<u8>, headers: &[(&str, &str)]| {
        let mut req = http.post(format!("{base}/mcp")).bearer_auth(&read_only).body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send()
    };
    let json = [("content-type", "application/json")];
    assert_eq!(send(echo.clone().into(), &json).await.unwrap().status(), 403, "plain: step-up needed");

    let utf16: Vec<u8> = echo.encode_utf16().flat_map(u16::to_le_bytes).collect();
    type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>, u16);
    let cases: Vec<Case> = vec![
        ("byte order mark", [b"\xEF\xBB\xBF", echo.as_bytes()].concat(), json.to_vec(), 400),
        ("UTF-16", utf16, json.to_vec(), 400),
        ("gzip", echo.clone().into(), vec![("content-type", "application/json"), ("content-encoding", "gzip")], 415),
        ("UTF-7", echo.clone().into(), vec![("content-type", "application/json; charset=utf-7")], 415),
        (
            "twice",
            r#"{"method":"tools/call","method":"tools/list","params":{"name":"echo"}}"#.into(),
            json.to_vec(),
            400,
        ),
        ("case", r#"{"METHOD":"tools/call","params":{"name":"echo"}}"#.into(), json.to_vec(), 400),
    ];
    for (what, body, headers, status) in cases {
        let res = send(body, &headers).await.unwrap();
        body_refusal(what, &res, status);
    }
    // A body on another method: the route answers POST only, and the layer refuses first.
    let res = http.put(format!("{base}/mcp")).bearer_auth(&read_only).body(echo).send().await.unwrap();
    body_refusal("PUT with a body", &res, 400);
    // Without a valid token the answer is the 401 that starts authorization, whatever the body:
    // MCP clients and readiness probes send a bare POST first.
    for (what, req) in [
        ("no token, no body", http.post(format!("{base}/mcp"))),
        ("a bad token, no body", http.post(format!("{base}/mcp")).bearer_auth("not-a-token")),
        ("no token, a BOM", http.post(format!("{base}/mcp")).body(b"\xEF\xBB\xBF{}".to_vec())),
    ] {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{what}");
        assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer "), "{what}");
    }
}

#[tokio::test]
async fn delegated_tokens_are_refused_as_the_builder_says() {
    let (server, _rs, base, http) = setup(|b| b.refuse_delegation()).await;
    let direct = server.agent_token().await;
    let one = forged(&server, |c| c["act"] = json!({"sub": "agent-a"}));
    let two = forged(&server, |c| c["act"] = json!({"sub": "mcp-b", "act": {"sub": "agent-a"}}));
    assert_eq!(call(&http, &base, Some(&direct), rpc("tools/list", None)).await.status(), 200);
    let res = call(&http, &base, Some(&one), rpc("tools/list", None)).await;
    assert_eq!(res.status(), 403);
    assert!(challenge(&res).contains("error=\"invalid_token\""), "{}", challenge(&res));
    let body: Value = res.json().await.unwrap();
    assert!(body["error_description"].as_str().unwrap().contains("accepts no delegated tokens"), "{body}");

    let rs = ResourceServer::builder(server.issuer.as_str(), MCP).max_delegation_depth(1).build().unwrap();
    let (depth, _) = (protected(&rs).await, ready(&rs).await);
    assert_eq!(call(&http, &depth, Some(&one), rpc("tools/list", None)).await.status(), 200);
    assert_eq!(call(&http, &depth, Some(&two), rpc("tools/list", None)).await.status(), 403);

    let rs = ResourceServer::builder(server.issuer.as_str(), MCP).allowed_actors(["mcp-b"]).build().unwrap();
    let (listed, _) = (protected(&rs).await, ready(&rs).await);
    assert_eq!(call(&http, &listed, Some(&direct), rpc("tools/list", None)).await.status(), 200);
    let res = call(&http, &listed, Some(&two), rpc("tools/list", None)).await;
    assert_eq!(res.status(), 403, "agent-a, earlier in the chain, is not listed");
    assert!(challenge(&res).contains("actor \\\"agent-a\\\""), "{}", challenge(&res));

    let contradiction = ResourceServer::builder(server.issuer.as_str(), MCP).refuse_delegation().allowed_actors(["x"]);
    assert!(matches!(contradiction.build(), Err(mandate_resource::BuildError::Delegation)));
}
