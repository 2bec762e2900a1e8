//! The example MCP server (examples/mcp-server: rmcp behind mandate-resource) against this
//! authorization server, with rmcp's own MCP client where a client speaks: the 401 challenge
//! and RFC 9728 metadata that start discovery, a client-credentials agent listing tools and
//! calling `whoami` and `echo`, the 403 step-up challenge for `echo` without `tools:call`, the
//! delegation chain of an `act` claim, and unknown JSON-RPC methods answered with JSON-RPC errors.

use mandate_core::jose::ACCESS_TOKEN_TYP;
use rmcp::model::{CallToolRequestParams, ClientRequest, CustomRequest};
use rmcp::service::{RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::common::{AGENT_SECRET, Backend, MCP, Options, TestServer, base_config, fresh_database, serve_example_mcp};

/// mandate, and the example server in-process on its own port, configured for each other.
struct Setup {
    server: TestServer,
    /// The example's MCP endpoint: its resource URI.
    mcp: String,
    origin: String,
    http: reqwest::Client,
    _stop: tokio_util::sync::DropGuard,
}

async fn setup(backend: Backend) -> Setup {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let mcp = format!("{origin}/mcp");
    // The example's resource, besides the usual ones; build-agent may use it.
    let config = format!(
        "{}\n[[resources]]\nuri = \"{mcp}\"\nname = \"Example MCP server\"\nscopes = [\"tools:read\", \"tools:call\"]\n",
        base_config()
    );
    let server = TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await;

    let stop = serve_example_mcp(listener, &server.issuer, &mcp).await;
    let http = reqwest::Client::new();
    Setup { server, mcp, origin, http, _stop: stop }
}

impl Setup {
    /// A client-credentials token of build-agent for `resource` with `scope`.
    async fn token(&self, resource: &str, scope: &str) -> String {
        let form = [("grant_type", "client_credentials"), ("resource", resource), ("scope", scope)];
        let res = self.server.post_form("/token", Some(("build-agent", AGENT_SECRET)), &form).await;
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    }

    /// One JSON-RPC message POSTed as a Streamable HTTP client would, with `headers` added.
    async fn post(&self, token: Option<&str>, message: Value, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.post(&self.mcp).header("accept", "application/json, text/event-stream").json(&message);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.unwrap()
    }

    /// rmcp's MCP client, connected with `token`.
    async fn client(&self, token: &str) -> RunningService<RoleClient, ()> {
        let config = StreamableHttpClientTransportConfig::with_uri(self.mcp.as_str()).auth_header(token);
        ().serve(StreamableHttpClientTransport::from_config(config)).await.expect("rmcp connects with the token")
    }
}

fn challenge(res: &reqwest::Response) -> String {
    res.headers().get("www-authenticate").expect("a WWW-Authenticate challenge").to_str().unwrap().to_owned()
}

fn call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": tool, "arguments": arguments } })
}

async fn requests_without_a_valid_token_are_challenged_toward_the_metadata(backend: Backend) {
    let s = setup(backend).await;
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp", s.origin);

    // No token: 401 naming the metadata (RFC 9728 §5.1) and the scope every request needs.
    let list = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" });
    let res = s.post(None, list.clone(), &[]).await;
    assert_eq!(res.status(), 401);
    assert_eq!(challenge(&res), format!("Bearer resource_metadata=\"{metadata_url}\", scope=\"tools:read\""));

    // The metadata names mandate, which a client then discovers.
    let doc: Value = s.http.get(&metadata_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["resource"], s.mcp.as_str());
    assert_eq!(doc["authorization_servers"], json!([s.server.issuer.as_str()]));
    assert_eq!(doc["scopes_supported"], json!(["tools:read", "tools:call"]));
    assert_eq!(doc["resource_name"], "Example MCP server");
    let root: Value = s
        .http
        .get(format!("{}/.well-known/oauth-protected-resource", s.origin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root, doc);

    // Browser-based hosts: the preflight is answered before the token check, and the challenge
    // is readable from another origin.
    let preflight = s
        .http
        .request(reqwest::Method::OPTIONS, &s.mcp)
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type,mcp-protocol-version")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert_eq!(preflight.headers()["access-control-allow-headers"], "authorization,content-type,mcp-protocol-version");
    let res = s.http.post(&s.mcp).header("origin", "http://localhost:6274").json(&list).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert!(res.headers()["access-control-expose-headers"].to_str().unwrap().contains("www-authenticate"));

    // A valid token of mandate's, but for another resource (RFC 8707 audience): refused too.
    let elsewhere = s.token(MCP, "tools:read").await;
    let res = s.post(Some(&elsewhere), list.clone(), &[]).await;
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).contains("error=\"invalid_token\""), "{}", challenge(&res));
    // rmcp's client sees the same refusal and hands the challenge to its OAuth machinery.
    let Err(refused) = ().serve(StreamableHttpClientTransport::from_uri(s.mcp.as_str())).await else {
        panic!("connecting without a token must fail");
    };
    assert!(refused.auth_challenge().is_some_and(|c| c.contains(&metadata_url)), "{refused:?}");
}

async fn an_agent_lists_the_tools_and_calls_whoami_and_echo(backend: Backend) {
    let s = setup(backend).await;
    let token = s.token(&s.mcp, "tools:read tools:call").await;
    let client = s.client(&token).await;
    let tools: Vec<String> = client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.into()).collect();
    assert_eq!(tools, ["whoami", "echo"]);

    let me = client.call_tool(CallToolRequestParams::new("whoami")).await.unwrap();
    let me = me.structured_content.expect("whoami answers with structured content");
    let claims = s.server.introspect(&token).await;
    assert_eq!(me["subject"], "build-agent");
    assert_eq!(me["client_id"], "build-agent");
    assert_eq!(me["scopes"], json!(["tools:call", "tools:read"]));
    assert_eq!(me["delegation_chain"], json!([]), "a token issued directly has no chain");
    assert_eq!(me["jti"], claims["jti"], "the tool saw this very token's claims");
    assert_eq!(me["expires_at"], claims["exp"]);

    let echoed = client
        .call_tool(
            CallToolRequestParams::new("echo")
                .with_arguments(json!({ "text": "hello, mandate" }).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_eq!(echoed.is_error, Some(false));
    assert_eq!(echoed.content[0].as_text().unwrap().text, "hello, mandate");
    // Without its argument, a tool-level error the caller can read, not a protocol failure.
    let missing = client.call_tool(CallToolRequestParams::new("echo")).await.unwrap();
    assert_eq!(missing.is_error, Some(true));
    client.cancel().await.unwrap();
}

async fn echo_without_tools_call_gets_a_step_up_challenge(backend: Backend) {
    let s = setup(backend).await;
    let read_only = s.token(&s.mcp, "tools:read").await;

    let res = s.post(Some(&read_only), call(1, "echo", json!({ "text": "hi" })), &[]).await;
    assert_eq!(res.status(), 403);
    let header = challenge(&res);
    assert!(header.contains("error=\"insufficient_scope\""), "{header}");
    // Every scope the operation needs, in one challenge, so the client steps up once.
    assert!(header.contains("scope=\"tools:call tools:read\""), "{header}");
    assert!(header.contains(&format!("resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"", s.origin)));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    // The same token may still do what tools:read allows.
    let res = s.post(Some(&read_only), call(2, "whoami", json!({})), &[]).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["result"]["structuredContent"]["scopes"], json!(["tools:read"]));

    // With tools:call granted, the same call goes through.
    let full = s.token(&s.mcp, "tools:read tools:call").await;
    let res = s.post(Some(&full), call(3, "echo", json!({ "text": "hi" })), &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["result"]["content"][0]["text"], "hi");
}

async fn whoami_shows_the_delegation_chain(backend: Backend) {
    let s = setup(backend).await;
    // mandate does not issue delegated tokens yet (RFC 8693 exchange is to come), so this one is
    // signed with its real key: alice, through agent-b, which got it from agent-a.
    let now = mandate_core::Clock::now(&mandate_core::SystemClock);
    let claims = json!({
        "iss": s.server.issuer.as_str(), "sub": "alice", "aud": s.mcp.as_str(), "client_id": "agent-b",
        "scope": "tools:read", "jti": "delegated-1", "iat": now, "exp": now + 300,
        "act": { "sub": "agent-b", "act": { "sub": "agent-a" } },
    });
    let token = s.server.state().keyring.current().active.sign(ACCESS_TOKEN_TYP, &claims).unwrap();
    let client = s.client(&token).await;
    let me = client.call_tool(CallToolRequestParams::new("whoami")).await.unwrap().structured_content.unwrap();
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["client_id"], "agent-b");
    assert_eq!(me["delegation_chain"], json!(["agent-b", "agent-a"]));
    client.cancel().await.unwrap();
}

async fn unknown_methods_get_a_json_rpc_error(backend: Backend) {
    let s = setup(backend).await;
    let token = s.token(&s.mcp, "tools:read").await;

    // A client of the revisions before 2026-07-28 (no per-request version): an error in band.
    let res = s.post(Some(&token), json!({ "jsonrpc": "2.0", "id": 7, "method": "vendor/unknown" }), &[]).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["error"]["code"], -32601, "method not found: {answer}");

    // A 2026-07-28 client probing with server/discover (as the Python SDK does first) gets an
    // answer, and an unknown method a JSON-RPC error (with HTTP 404 in that revision).
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let modern = [("mcp-protocol-version", "2026-07-28")];
    let discover = json!({ "jsonrpc": "2.0", "id": 8, "method": "server/discover", "params": { "_meta": meta } });
    let res = s.post(Some(&token), discover, &[modern[0], ("mcp-method", "server/discover")]).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert!(
        answer["result"]["supportedVersions"].as_array().is_some_and(|v| v.contains(&json!("2026-07-28"))),
        "{answer}"
    );
    assert!(answer["result"]["capabilities"]["tools"].is_object(), "{answer}");
    let unknown = json!({ "jsonrpc": "2.0", "id": 9, "method": "vendor/unknown", "params": { "_meta": meta } });
    let res = s.post(Some(&token), unknown, &[modern[0], ("mcp-method", "vendor/unknown")]).await;
    assert_eq!(res.headers().get("content-type").unwrap(), "application/json");
    let answer: Value = res.json().await.unwrap();
    assert_eq!((answer["id"].clone(), answer["error"]["code"].clone()), (json!(9), json!(-32601)), "{answer}");

    // rmcp's client sending a method the server does not know: an error, and the connection
    // goes on working.
    let client = s.client(&token).await;
    let refused = client.send_request(ClientRequest::CustomRequest(CustomRequest::new("vendor/unknown", None))).await;
    match refused {
        Err(ServiceError::McpError(e)) => assert_eq!(e.code.0, -32601),
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
    let me = client.call_tool(CallToolRequestParams::new("whoami")).await.unwrap();
    assert_eq!(me.structured_content.unwrap()["subject"], "build-agent");
    client.cancel().await.unwrap();
}

crate::on_both_backends!(
    requests_without_a_valid_token_are_challenged_toward_the_metadata,
    an_agent_lists_the_tools_and_calls_whoami_and_echo,
    echo_without_tools_call_gets_a_step_up_challenge,
    whoami_shows_the_delegation_chain,
    unknown_methods_get_a_json_rpc_error
);
