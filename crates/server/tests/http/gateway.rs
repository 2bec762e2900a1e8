//! `mandate gateway` (mandate-gateway) in front of a tiny upstream that records what it receives,
//! with tokens from this authorization server: the agent's token never reaches the upstream, the
//! upstream's own credential does; MCP session headers cross both ways; SSE events and request
//! bodies stream instead of being buffered; refusals carry challenges and never reach the
//! upstream; an upstream that is down, refuses the gateway or redirects gets a clear answer.
//! With scopes per method or tool, a body the gateway cannot read exactly as the upstream would
//! is refused, never forwarded; no path climbs out of the upstream's; delegated tokens are
//! refused as configured.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use mandate_gateway::{Gateway, GatewayConfig, Introspection, Running, UpstreamHeader};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::common::{AGENT_SECRET, Backend, MCP, Options, RS_SECRET, TestServer, base_config, fresh_database};

const UPSTREAM_KEY: &str = "upstream-api-key-0123456789";

/// What the upstream saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A stand-in for an MCP server nobody can change: records every request, answers by path.
#[derive(Clone, Default)]
struct Upstream {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Lets the SSE stream at /mcp/events send its second event and end.
    finish_events: Arc<Notify>,
    /// /mcp/upload tells the test when the first chunk of the body has arrived.
    first_chunk: Arc<Mutex<Option<oneshot::Sender<Bytes>>>>,
}

impl Upstream {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn handle(self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let mut seen = Seen {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts.headers.clone(),
            body: Bytes::new(),
        };
        let response = Response::builder();
        match parts.uri.path() {
            "/mcp/events" => {
                self.seen.lock().unwrap().push(seen);
                let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
                let finish = self.finish_events.clone();
                tokio::spawn(async move {
                    let _ = tx.send(Ok(Bytes::from("id: 1\ndata: {\"event\":1}\n\n"))).await;
                    finish.notified().await;
                    let _ = tx.send(Ok(Bytes::from("id: 2\ndata: {\"event\":2}\n\n"))).await;
                });
                let events = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
                response
                    .header("content-type", "text/event-stream")
                    .header("mcp-session-id", "upstream-session-1")
                    .body(Body::from_stream(events))
                    .unwrap()
            }
            "/mcp/upload" => {
                let mut body = body.into_data_stream();
                let mut received = Vec::new();
                let mut first = true;
                while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
                    let chunk = chunk.unwrap();
                    received.extend_from_slice(&chunk);
                    if std::mem::take(&mut first)
                        && let Some(tell) = self.first_chunk.lock().unwrap().take()
                    {
                        let _ = tell.send(chunk);
                    }
                }
                seen.body = Bytes::from(received.clone());
                self.seen.lock().unwrap().push(seen);
                response.body(Body::from(received)).unwrap()
            }
            "/mcp/refuse" => {
                self.seen.lock().unwrap().push(seen);
                response
                    .status(401)
                    .header("www-authenticate", "Bearer realm=\"upstream\"")
                    .body(Body::from("{\"error\":\"bad key\"}"))
                    .unwrap()
            }
            "/mcp/moved" => {
                self.seen.lock().unwrap().push(seen);
                response.status(302).header("location", "/elsewhere").body(Body::empty()).unwrap()
            }
            _ => {
                seen.body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                let echo = json!({ "received": String::from_utf8_lossy(&seen.body) });
                self.seen.lock().unwrap().push(seen);
                response
                    .header("content-type", "application/json")
                    .header("mcp-session-id", "upstream-session-1")
                    .header("connection", "x-upstream-hop")
                    .header("x-upstream-hop", "1")
                    .header("www-authenticate", "Basic realm=\"upstream\"")
                    .body(Body::from(echo.to_string()))
                    .unwrap()
            }
        }
    }
}

async fn start_upstream() -> (Upstream, String) {
    let upstream = Upstream::default();
    let handler = upstream.clone();
    let app = Router::new().fallback(any(move |request: Request| handler.clone().handle(request)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (upstream, base)
}

/// A gateway for the resource `MCP` in front of `upstream`: tools:read for everything,
/// tools:call besides for `tools/call`, and the upstream's key in X-Api-Key.
async fn start_gateway(server: &TestServer, upstream: &str) -> (Running, String) {
    start_gateway_with(server, upstream, |config| {
        config.method_scopes = vec![("tools/call".into(), "tools:call".into())];
    })
    .await
}

async fn start_gateway_with(
    server: &TestServer,
    upstream: &str,
    change: impl FnOnce(&mut GatewayConfig),
) -> (Running, String) {
    let mut config = GatewayConfig::new(format!("{upstream}/mcp").parse().unwrap(), server.issuer.as_str(), MCP);
    config.scopes = vec!["tools:read".into()];
    config.upstream_headers = vec![UpstreamHeader::parse(&format!("X-Api-Key: {UPSTREAM_KEY}")).unwrap()];
    change(&mut config);
    let gateway = Gateway::new(config).unwrap();
    for _ in 0..100 {
        if gateway.resource_server().is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gateway.resource_server().is_ready(), "the gateway never loaded the issuer's keys");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    (gateway.serve(listener).unwrap(), base)
}

async fn token_with(server: &TestServer, scope: &str) -> String {
    let res = server
        .post_form(
            "/token",
            Some(("build-agent", AGENT_SECRET)),
            &[("grant_type", "client_credentials"), ("resource", MCP), ("scope", scope)],
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

fn rpc(method: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"name": "echo", "arguments": {}}})
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn the_upstream_gets_its_own_credential_and_never_the_agents_token() {
    let server = TestServer::start(crate::common::Backend::Sqlite).await;
    let (upstream, upstream_base) = start_upstream().await;
    let (_gateway, base) = start_gateway(&server, &upstream_base).await;
    let token = server.agent_token().await;

    let res = reqwest::Client::new()
        .post(format!("{base}/mcp?trace=1"))
        .bearer_auth(&token)
        .header("x-api-key", "what-the-agent-thinks-the-key-is")
        .header("mcp-session-id", "upstream-session-1")
        .header("mcp-protocol-version", "2026-07-28")
        .header("accept", "application/json, text/event-stream")
        .header("dpop", "a-proof-for-the-gateway")
        .json(&rpc("tools/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(res.headers(), "mcp-session-id"), Some("upstream-session-1"), "the session id comes back");
    assert_eq!(header(res.headers(), "x-upstream-hop"), None, "a header the upstream's Connection names stays behind");
    assert_eq!(header(res.headers(), "www-authenticate"), None, "the upstream's challenges stay behind");
    let echo: Value = res.json().await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(echo["received"].as_str().unwrap()).unwrap(), rpc("tools/list"));

    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!((request.method.as_str(), request.uri.as_str()), ("POST", "/mcp?trace=1"));
    let h = &request.headers;
    assert_eq!(header(h, "authorization"), None, "no token passthrough");
    assert_eq!(header(h, "dpop"), None);
    assert!(h.values().all(|v| !v.to_str().unwrap_or_default().contains(&token)), "the token is in no header");
    assert_eq!(header(h, "x-api-key"), Some(UPSTREAM_KEY), "the gateway's credential, not the agent's");
    assert_eq!(h.get_all("x-api-key").iter().count(), 1);
    assert_eq!(header(h, "mcp-session-id"), Some("upstream-session-1"));
    assert_eq!(header(h, "mcp-protocol-version"), Some("2026-07-28"));
    assert_eq!(header(h, "accept"), Some("application/json, text/event-stream"));
    assert_eq!(header(h, "host"), upstream_base.strip_prefix("http://"), "Host is the upstream's");

    // Other methods pass too: the DELETE that ends an MCP session, with the session id.
    let res = reqwest::Client::new()
        .delete(format!("{base}/mcp"))
        .bearer_auth(&token)
        .header("mcp-session-id", "upstream-session-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let deleted = upstream.seen().pop().unwrap();
    assert_eq!(deleted.method, "DELETE");
    assert_eq!(header(&deleted.headers, "mcp-session-id"), Some("upstream-session-1"));
    assert_eq!(header(&deleted.headers, "transfer-encoding"), None, "a request without a body is sent without one");
}

#[tokio::test]
async fn sse_events_reach_the_agent_as_the_upstream_sends_them() {
    let server = TestServer::start(crate::common::Backend::Sqlite).await;
    let (upstream, upstream_base) = start_upstream().await;
    let (_gateway, base) = start_gateway(&server, &upstream_base).await;
    let token = server.agent_token().await;

    let request = reqwest::Client::new()
        .get(format!("{base}/mcp/events"))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .header("last-event-id", "0")
        .send();
    // The headers come at once, before the body ends.
    let mut res = tokio::time::timeout(Duration::from_secs(5), request).await.expect("headers at once").unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(res.headers(), "content-type"), Some("text/event-stream"));
    assert_eq!(header(res.headers(), "mcp-session-id"), Some("upstream-session-1"));
    // The upstream holds its second event until told: the first must arrive before that.
    let first = tokio::time::timeout(Duration::from_secs(5), res.chunk()).await.expect("the first event, unbuffered");
    assert_eq!(first.unwrap().unwrap(), "id: 1\ndata: {\"event\":1}\n\n");
    upstream.finish_events.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), res.chunk()).await.unwrap().unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(String::from_utf8(rest).unwrap(), "id: 2\ndata: {\"event\":2}\n\n");
    assert_eq!(header(&upstream.seen()[0].headers, "last-event-id"), Some("0"));
}

#[tokio::test]
async fn request_bodies_stream_to_the_upstream() {
    let server = TestServer::start(crate::common::Backend::Sqlite).await;
    let (upstream, upstream_base) = start_upstream().await;
    // Scopes per MCP method need the JSON-RPC body read first; without them, bodies stream.
    let (_gateway, base) = start_gateway_with(&server, &upstream_base, |_| {}).await;
    let token = server.agent_token().await;

    let (arrived, first_chunk) = oneshot::channel();
    *upstream.first_chunk.lock().unwrap() = Some(arrived);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let send = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{base}/mcp/upload"))
            .bearer_auth(&token)
            .body(reqwest::Body::wrap_stream(chunks))
            .send(),
    );
    tx.send(Ok(Bytes::from("first half, "))).await.unwrap();
    // A gateway that buffered the body would wait for the end, which never comes before this.
    let first = tokio::time::timeout(Duration::from_secs(5), first_chunk).await.expect("streamed, not buffered");
    assert_eq!(first.unwrap(), "first half, ");
    tx.send(Ok(Bytes::from("second half"))).await.unwrap();
    drop(tx);
    let res = send.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "first half, second half");
    assert_eq!(upstream.seen()[0].body, "first half, second half");
}

#[tokio::test]
async fn refusals_carry_challenges_and_never_reach_the_upstream() {
    let server = TestServer::start(crate::common::Backend::Sqlite).await;
    let (upstream, upstream_base) = start_upstream().await;
    let (_gateway, base) = start_gateway(&server, &upstream_base).await;
    let http = reqwest::Client::new();
    let prm = "resource_metadata=\"http://127.0.0.1:9090/.well-known/oauth-protected-resource/mcp\"";
    let challenge = |res: &reqwest::Response| header(res.headers(), "www-authenticate").unwrap().to_owned();

    let res = http.post(format!("{base}/mcp")).json(&rpc("tools/list")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(challenge(&res), format!("Bearer {prm}, scope=\"tools:read\""));

    // The challenge for a tool call names every scope it needs, so the client steps up once.
    let res = http.post(format!("{base}/mcp")).json(&rpc("tools/call")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(challenge(&res), format!("Bearer {prm}, scope=\"tools:call tools:read\""));

    let read_only = token_with(&server, "tools:read").await;
    let res = http.post(format!("{base}/mcp")).bearer_auth(&read_only).json(&rpc("tools/call")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let c = challenge(&res);
    assert!(c.contains("error=\"insufficient_scope\"") && c.contains("scope=\"tools:call tools:read\""), "{c}");

    let call_only = token_with(&server, "tools:call").await;
    let res = http.get(format!("{base}/mcp/events")).bearer_auth(&call_only).send().await.unwrap();
    assert_eq!(res.status(), 403, "tools:read is needed for every request");

    let res = http.get(format!("{base}/mcp")).bearer_auth("not-a-jwt").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).contains("error=\"invalid_token\""));

    let res = http.get(format!("{base}/mcp?access_token={read_only}")).send().await.unwrap();
    assert_eq!(res.status(), 401, "tokens in the query string are refused");

    assert!(upstream.seen().is_empty(), "nothing refused reached the upstream: {:?}", upstream.seen());

    // RFC 9728 metadata from the gateway itself, at both well-known URLs.
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let doc: Value = http.get(format!("{base}{path}")).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["resource"], MCP);
        assert_eq!(doc["authorization_servers"], json!([server.issuer.as_str()]));
        assert_eq!(doc["scopes_supported"], json!(["tools:read"]));
    }
    // Paths that are not the resource's are not forwarded, with or without a token.
    let res = http.get(format!("{base}/admin")).bearer_auth(&read_only).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = http.get(format!("{base}/mcpx")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn upstream_trouble_gets_a_clear_answer() {
    let server = TestServer::start(crate::common::Backend::Sqlite).await;
    let (upstream, upstream_base) = start_upstream().await;
    let (_gateway, base) = start_gateway(&server, &upstream_base).await;
    let token = server.agent_token().await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // The upstream refuses the gateway's credential: a 502, not a 401 the agent would answer by
    // authorizing again, and not the upstream's challenge.
    let res = http.get(format!("{base}/mcp/refuse")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 502);
    assert_eq!(header(res.headers(), "www-authenticate"), None);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "upstream_credentials_refused");

    // Redirects are the agent's to follow, not the gateway's.
    let res = http.get(format!("{base}/mcp/moved")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(header(res.headers(), "location"), Some("/elsewhere"));
    assert_eq!(upstream.seen().iter().filter(|s| s.uri == "/elsewhere").count(), 0);

    // Nobody listens at the upstream's address any more.
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let (_down, down_base) = start_gateway(&server, &closed).await;
    let res = http.post(format!("{down_base}/mcp")).bearer_auth(&token).json(&rpc("tools/list")).send().await.unwrap();
    assert_eq!(res.status(), 502);
    assert_eq!(header(res.headers(), "content-type"), Some("application/json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "upstream_unreachable");
    assert!(!body.to_string().contains(&closed), "the upstream's address is not shown: {body}");
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let server = TestServer::start(crate::common::Backend::Sqlite).await;
    let (_upstream, upstream_base) = start_upstream().await;
    let (gateway, base) = start_gateway(&server, &upstream_base).await;
    let token = server.agent_token().await;
    let request = reqwest::Client::new().get(format!("{base}/mcp/events")).bearer_auth(&token).send();
    let mut res = tokio::time::timeout(Duration::from_secs(5), request).await.expect("headers at once").unwrap();
    assert_eq!(res.chunk().await.unwrap().unwrap(), "id: 1\ndata: {\"event\":1}\n\n");
    // The upstream would keep this stream open for ever; a graceful shutdown still finishes.
    tokio::time::timeout(Duration::from_secs(5), gateway.stop()).await.expect("shutdown waits for no stream");
    let end = tokio::time::timeout(Duration::from_secs(5), res.chunk()).await.expect("the stream ends");
    assert!(matches!(end, Ok(None)), "{end:?}");
}

#[tokio::test]
async fn introspection_mode_refuses_a_token_revoked_at_mandate() {
    let server = TestServer::start(crate::common::Backend::Sqlite).await;
    let (upstream, upstream_base) = start_upstream().await;
    let (_gateway, base) = start_gateway_with(&server, &upstream_base, |config| {
        config.introspection = Some(Introspection {
            client_id: "resource-server".into(),
            client_secret: RS_SECRET.into(),
            cache: Duration::from_secs(1),
        });
    })
    .await;
    let token = server.agent_token().await;
    let http = reqwest::Client::new();
    let res = http.post(format!("{base}/mcp")).bearer_auth(&token).json(&rpc("tools/list")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = server.post_form("/revoke", Some(("build-agent", AGENT_SECRET)), &[("token", &token)]).await;
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = http.post(format!("{base}/mcp")).bearer_auth(&token).json(&rpc("tools/list")).send().await.unwrap();
    assert_eq!(res.status(), 401, "revoked at mandate, refused at the gateway once the short cache expires");
    assert!(header(res.headers(), "www-authenticate").unwrap().contains("error=\"invalid_token\""));
    assert_eq!(upstream.seen().len(), 1, "only the request before the revocation reached the upstream");
    assert!(
        !format!(
            "{:?}",
            Introspection { client_id: "c".into(), client_secret: RS_SECRET.into(), cache: Duration::ZERO }
        )
        .contains(RS_SECRET)
    );
}

/// A request written byte for byte (reqwest would clean up a path like `/mcp/../admin`); the
/// status and body of the answer.
async fn raw_request(base: &str, head: &str, body: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// `bytes` as a gzip member of stored (uncompressed) deflate blocks (RFC 1952, RFC 1951 §3.2.4).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let crc = bytes.iter().fold(!0u32, |crc, b| {
        (0..8).fold(crc ^ u32::from(*b), |c, _| if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 })
    }) ^ !0;
    let len = bytes.len() as u16;
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out
}

/// A refusal of the body: first of all nothing reached the upstream; then the status, an
/// OAuth-style JSON error naming `why`, and a challenge.
async fn assert_body_refused(upstream: &Upstream, res: reqwest::Response, status: u16, why: &str) {
    assert!(upstream.seen().is_empty(), "{why}: forwarded to the upstream: {:?}", upstream.seen());
    assert_eq!(res.status(), status, "{why}");
    let challenge = header(res.headers(), "www-authenticate").unwrap_or_default().to_owned();
    assert!(challenge.contains("error=\"invalid_request\""), "{why}: {challenge}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{why}: {body}");
    assert!(body["error_description"].as_str().unwrap().contains(why), "{body} should say {why:?}");
}

const CALL_ECHO: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;

#[tokio::test]
async fn a_body_in_another_encoding_is_refused_not_forwarded() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (upstream, upstream_base) = start_upstream().await;
    let (_gateway, base) = start_gateway(&server, &upstream_base).await;
    let read_only = token_with(&server, "tools:read").await;
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        http.post(format!("{base}/mcp")).bearer_auth(&read_only).header("content-type", "application/json").body(body)
    };

    // The same tools/call the gateway refuses to a tools:read token as plain JSON; a lenient
    // upstream reads each of these as that tools/call, sent with the gateway's credential.
    assert_eq!(post(CALL_ECHO.into()).send().await.unwrap().status(), 403);
    let bom = [b"\xEF\xBB\xBF", CALL_ECHO.as_bytes()].concat();
    assert_body_refused(&upstream, post(bom).send().await.unwrap(), 400, "byte order mark").await;
    let utf16le: Vec<u8> = CALL_ECHO.encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_body_refused(&upstream, post(utf16le).send().await.unwrap(), 400, "not UTF-8").await;
    let utf16be: Vec<u8> = [vec![0xFE, 0xFF], CALL_ECHO.encode_utf16().flat_map(u16::to_be_bytes).collect()].concat();
    assert_body_refused(&upstream, post(utf16be).send().await.unwrap(), 400, "not UTF-8").await;
    assert_body_refused(&upstream, post(b"tools/call echo".to_vec()).send().await.unwrap(), 400, "not JSON").await;
    assert_body_refused(&upstream, post(Vec::new()).send().await.unwrap(), 400, "empty").await;
    assert!(upstream.seen().is_empty(), "nothing unclassified reached the upstream: {:?}", upstream.seen());
}

#[tokio::test]
async fn a_content_coding_or_another_charset_is_refused_not_forwarded() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (upstream, upstream_base) = start_upstream().await;
    let (_gateway, base) = start_gateway(&server, &upstream_base).await;
    let read_only = token_with(&server, "tools:read").await;
    let http = reqwest::Client::new();
    let list = rpc("tools/list").to_string();

    for (encoding, body) in
        [("gzip", list.clone().into_bytes()), ("br", list.clone().into_bytes()), ("gzip", gzip(CALL_ECHO.as_bytes()))]
    {
        // The first two: plain JSON the gateway could read, but the upstream would decode first.
        let res = http
            .post(format!("{base}/mcp"))
            .bearer_auth(&read_only)
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body)
            .send()
            .await
            .unwrap();
        let accept_encoding = header(res.headers(), "accept-encoding").map(str::to_owned);
        assert_body_refused(&upstream, res, 415, "Content-Encoding").await;
        assert_eq!(accept_encoding.as_deref(), Some("identity"), "RFC 9110 §12.5.3");
    }
    // UTF-7 can hide a `"` as +ACI-: what the gateway reads as one string, the upstream reads as
    // several members.
    let res = http
        .post(format!("{base}/mcp"))
        .bearer_auth(&read_only)
        .header("content-type", "application/json; charset=utf-7")
        .body(list.clone())
        .send()
        .await
        .unwrap();
    assert_body_refused(&upstream, res, 415, "charset").await;
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
    let res = http
        .post(format!("{base}/mcp"))
        .bearer_auth(&read_only)
        .header("content-type", "application/json; charset=UTF-8")
        .body(list)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "UTF-8 named as such is fine");
}

#[tokio::test]
async fn a_body_on_another_method_than_post_is_refused_not_forwarded() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (upstream, upstream_base) = start_upstream().await;
    let (_gateway, base) = start_gateway(&server, &upstream_base).await;
    let read_only = token_with(&server, "tools:read").await;
    let http = reqwest::Client::new();
    for method in ["PUT", "PATCH", "GET", "DELETE"] {
        let res = http
            .request(method.parse().unwrap(), format!("{base}/mcp"))
            .bearer_auth(&read_only)
            .header("content-type", "application/json")
            .body(CALL_ECHO)
            .send()
            .await
            .unwrap();
        assert_body_refused(&upstream, res, 400, &format!("a {method} request may not carry a body")).await;
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
    // Without a body they pass as before: the GET of an SSE stream, the DELETE ending a session.
    let res = http.delete(format!("{base}/mcp")).bearer_auth(&read_only).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test]
async fn json_another_parser_reads_differently_is_refused_and_batches_are_checked_whole() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (upstream, upstream_base) = start_upstream().await;
    let (_gateway, base) = start_gateway_with(&server, &upstream_base, |config| {
        config.method_scopes = vec![("tools/call".into(), "tools:call".into())];
        config.tool_scopes = vec![("wipe".into(), "admin".into())];
    })
    .await;
    let both = token_with(&server, "tools:read tools:call").await;
    let http = reqwest::Client::new();
    let post = |body: &str| http.post(format!("{base}/mcp")).bearer_auth(&both).body(body.to_owned()).send();

    // serde_json keeps the last of two keys, some parsers the first; Go's encoding/json matches
    // METHOD, and paramſ (long s) to Params, and keeps the last.
    let cases = [
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list","params":{"name":"wipe"}}"#,
            "same key twice",
        ),
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"wipe"}}"#, "same key twice"),
        (r#"{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","params":{"name":"wipe"}}"#, "only in letter case"),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"paramſ":{"name":"wipe"}}"#,
            "only in letter case",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"wipe"}}"#,
            "only in letter case",
        ),
        (r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}, "tools/call"]"#, "batch of them"),
        ("[]", "batch is empty"),
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["wipe"]}"#, "does not name its tool"),
    ];
    for (body, why) in cases {
        assert_body_refused(&upstream, post(body).await.unwrap(), 400, why).await;
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());

    // Every message of a batch counts: a wipe among harmless calls needs admin.
    let batch =
        json!([rpc("tools/list"), {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "wipe"}}]);
    let res = post(&batch.to_string()).await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(header(res.headers(), "www-authenticate").unwrap().contains("scope=\"admin tools:call tools:read\""));
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn the_bytes_checked_are_the_bytes_forwarded() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (upstream, upstream_base) = start_upstream().await;
    let (_gateway, base) = start_gateway(&server, &upstream_base).await;
    let both = token_with(&server, "tools:read tools:call").await;
    // Odd but valid: escapes, spacing, a response and a notification in a batch, arguments whose
    // keys differ in case (the checks do not read them).
    let body = "[ {\"jsonrpc\":\"2.0\",\"id\":1,\"\\u006dethod\" :\t\"tools/call\",\"params\":{\"name\":\"echo\",\
                \"arguments\":{\"Text\":\"a\",\"text\":\"\\u00e9\"}}},\n{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}},\
                {\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\"} ]\n";
    let res = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .bearer_auth(&both)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(upstream.seen()[0].body, body.as_bytes(), "byte for byte");
}

#[tokio::test]
async fn dot_segments_never_reach_the_upstream() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (upstream, upstream_base) = start_upstream().await;
    let (_gateway, base) = start_gateway_with(&server, &format!("{upstream_base}/v1"), |_| {}).await;
    let token = server.agent_token().await;
    let auth = format!("Authorization: Bearer {token}");

    // With upstream http://host/v1/mcp, these reached /v1/admin/secrets and /admin/secrets.
    for (path, why) in [
        ("/mcp/..;/admin/secrets", "dot segment"),
        ("/mcp/%252e%252e/admin/secrets", "dot segment"),
        ("/mcp/../admin/secrets", "dot segment"),
        ("/mcp/%2e%2e/%2e%2e/admin/secrets", "dot segment"),
        ("/mcp/%2E./admin/secrets", "dot segment"),
        ("/mcp/./../admin/secrets", "dot segment"),
        ("/mcp/..%2fadmin/secrets", "separator"),
        ("/mcp/..%5cadmin%5csecrets", "separator"),
        ("/mcp/..\\admin\\secrets", "separator"),
    ] {
        let (status, body) = raw_request(&base, &format!("GET {path} HTTP/1.1\r\n{auth}"), b"").await;
        assert!(upstream.seen().is_empty(), "{path} reached the upstream as {:?}", upstream.seen()[0].uri);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], "invalid_request", "{path}");
        assert!(body["error_description"].as_str().unwrap().contains(why), "{path}: {body}");
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());

    // Dots within a name are a name; the path maps below the upstream's.
    let (status, _) = raw_request(&base, &format!("GET /mcp/a..b/..c HTTP/1.1\r\n{auth}"), b"").await;
    assert_eq!(status, 200);
    assert_eq!(upstream.seen()[0].uri, "/v1/mcp/a..b/..c");
}

/// A resource the orchestrator serves, so it may exchange tokens issued for it (RFC 8693).
const DELEGATED: &str = "http://127.0.0.1:9091/mcp";
const ORCHESTRATOR_SECRET: &str = "orchestrator-secret-0123456789abcdefghijkl";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

async fn exchanged(server: &TestServer, subject: &str) -> String {
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("resource", DELEGATED),
    ];
    let res = server.post_form("/token", Some(("orchestrator", ORCHESTRATOR_SECRET)), &form).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

/// Claims like the server's for `DELEGATED`, with `act` as given, signed with its real key.
fn signed_with_act(server: &TestServer, act: Value) -> String {
    let now = mandate_core::Clock::now(&mandate_core::SystemClock);
    let claims = json!({
        "iss": server.issuer.as_str(), "sub": "build-agent", "aud": DELEGATED, "client_id": "orchestrator",
        "scope": "tools:read", "jti": "signed-with-act", "iat": now, "exp": now + 300, "act": act,
    });
    server.state().keyring.current().active.sign(mandate_core::jose::ACCESS_TOKEN_TYP, &claims).unwrap()
}

async fn delegated_tokens_are_refused_as_configured(backend: Backend) {
    let config = format!(
        r#"{base}
[[resources]]
uri = "{DELEGATED}"
scopes = ["tools:read", "tools:call"]
client_id = "orchestrator"

[[clients]]
client_id = "orchestrator"
client_secret = "{ORCHESTRATOR_SECRET}"
grant_types = ["{TOKEN_EXCHANGE}"]
scopes = ["tools:read", "tools:call"]
"#,
        base = base_config()
    );
    let server = TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await;
    let (upstream, upstream_base) = start_upstream().await;
    let direct = {
        let form = [("grant_type", "client_credentials"), ("resource", DELEGATED), ("scope", "tools:read")];
        let res = server.post_form("/token", Some(("build-agent", AGENT_SECRET)), &form).await;
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    };
    // The orchestrator uses the agent's token for it, once and then again: chains of 1 and 2.
    let once = exchanged(&server, &direct).await;
    assert_eq!(crate::common::decode_unverified(&once).1["act"], json!({"sub": "orchestrator"}));
    let twice = exchanged(&server, &once).await;
    assert_eq!(crate::common::decode_unverified(&twice).1["act"]["act"], json!({"sub": "orchestrator"}));
    let http = reqwest::Client::new();

    let gateway = |change: fn(&mut GatewayConfig)| {
        let upstream_base = upstream_base.clone();
        let server = &server;
        async move {
            start_gateway_with(server, &upstream_base, |config| {
                config.resource = DELEGATED.into();
                config.method_scopes = Vec::new();
                change(config);
            })
            .await
        }
    };
    let status = |base: String, token: String| {
        let http = http.clone();
        async move {
            let res =
                http.post(format!("{base}/mcp")).bearer_auth(token).json(&rpc("tools/list")).send().await.unwrap();
            let status = res.status().as_u16();
            let challenge = header(res.headers(), "www-authenticate").unwrap_or_default().to_owned();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (status, challenge, body["error_description"].as_str().unwrap_or_default().to_owned())
        }
    };
    let refused = |(status, challenge, description): (u16, String, String), why: &str| {
        assert_eq!(status, 403, "{why}: {description}");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(description.contains(why), "{description} should say {why:?}");
    };

    let (_none, base) = gateway(|c| c.refuse_delegation = true).await;
    assert_eq!(status(base.clone(), direct.clone()).await.0, 200, "a token without act");
    refused(status(base.clone(), once.clone()).await, "accepts no delegated tokens");

    let (_depth, base) = gateway(|c| c.max_delegation_depth = Some(1)).await;
    assert_eq!(status(base.clone(), once.clone()).await.0, 200);
    refused(status(base.clone(), twice.clone()).await, "has 2 actors (orchestrator <- orchestrator)");

    let (_listed, base) = gateway(|c| c.allowed_actors = vec!["orchestrator".into()]).await;
    assert_eq!(status(base.clone(), direct.clone()).await.0, 200);
    assert_eq!(status(base.clone(), twice.clone()).await.0, 200);
    // The same name from another issuer is someone else.
    let foreign = signed_with_act(&server, json!({"sub": "orchestrator", "iss": "https://partner.example"}));
    refused(status(base.clone(), foreign).await, "of another issuer");
    let malformed = signed_with_act(&server, json!("orchestrator"));
    let (code, challenge, _) = status(base.clone(), malformed).await;
    assert_eq!((code, challenge.contains("error=\"invalid_token\"")), (401, true), "a malformed act");

    let (_others, base) = gateway(|c| c.allowed_actors = vec!["someone-else".into()]).await;
    refused(status(base.clone(), once.clone()).await, "actor \"orchestrator\"");
    assert_eq!(upstream.seen().len(), 4, "only the accepted requests reached the upstream");
}

crate::on_both_backends!(delegated_tokens_are_refused_as_configured);
