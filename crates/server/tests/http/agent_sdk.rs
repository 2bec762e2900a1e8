//! mandate-agent, the agents' SDK, as an rmcp host uses it (through its transport hook) against
//! this server and the example MCP server (rmcp behind mandate-resource): a person's
//! authorization through mandate's real sign-in and consent pages after dynamic registration,
//! then a step-up for `echo`; client credentials with a secret and with `private_key_jwt`, each
//! stepping up by asking again; and a refresh when a token is rejected.

use std::sync::Arc;
use std::sync::Mutex as StdMutex;

use mandate_agent::rmcp::AuthorizedHttpClient;
use mandate_agent::{Agent, AgentError, ClientKey, MemoryStore, Mode, PreRegistered};
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use url::Url;

use crate::common::browser::{ALICE_PASSWORD, Browser, delegation_config};
use crate::common::{AGENT_SECRET, Backend, Options, TestServer, fresh_database, serve_example_mcp};

struct Setup {
    server: TestServer,
    mcp: Url,
    _stop: tokio_util::sync::DropGuard,
}

async fn setup(backend: Backend, extra_config: &str) -> Setup {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mcp = format!("http://{}/mcp", listener.local_addr().unwrap());
    let config = format!(
        "[registration]\ndynamic = true\n{}\n[[resources]]\nuri = \"{mcp}\"\nname = \"Example MCP server\"\n\
         scopes = [\"tools:read\", \"tools:call\"]\n{extra_config}",
        delegation_config()
    );
    let server = TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await;
    let stop = serve_example_mcp(listener, &server.issuer, &mcp).await;
    Setup { server, mcp: Url::parse(&mcp).unwrap(), _stop: stop }
}

/// alice at a browser: signs in when asked, approves every consent page, and lets the redirect
/// reach the agent's loopback listener. Records each authorization URL it was shown.
struct Alice {
    browser: tokio::sync::Mutex<Browser>,
    issuer: String,
    shown: Arc<StdMutex<Vec<Url>>>,
}

#[async_trait::async_trait]
impl mandate_agent::Browser for Alice {
    async fn open(&self, url: &Url) -> Result<(), AgentError> {
        self.shown.lock().unwrap().push(url.clone());
        let mut browser = self.browser.lock().await;
        let mut step = browser.get(url.as_str()).await;
        if step.redirects_to(&format!("{}/login", self.issuer)) {
            step = browser.sign_in(step.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
        }
        if step.redirects_to(&format!("{}/consent", self.issuer)) {
            step = browser.decide(step.location.as_deref().unwrap(), "approve", false).await;
        }
        assert!(
            step.redirects_to("http://127.0.0.1:"),
            "expected the loopback redirect: {} {:?}",
            step.status,
            step.location
        );
        let delivered = reqwest::get(step.location.unwrap()).await.unwrap();
        assert_eq!(delivered.status(), 200);
        Ok(())
    }
}

async fn connect(agent: Arc<Agent>, mcp: &Url) -> RunningService<RoleClient, ()> {
    let client = AuthorizedHttpClient::new(agent, mcp.clone());
    let transport =
        StreamableHttpClientTransport::with_client(client, StreamableHttpClientTransportConfig::with_uri(mcp.as_str()));
    ().serve(transport).await.expect("initialize, authorizing on the 401")
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> rmcp::model::CallToolResult {
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(args.as_object().unwrap().clone());
    client.call_tool(params).await.unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// An agent (dynamically registered, tokens in memory) whose person is [`Alice`]; and the
/// authorization URLs she is shown.
fn for_alice(s: &Setup) -> (Arc<Agent>, Arc<StdMutex<Vec<Url>>>) {
    let shown = Arc::new(StdMutex::new(Vec::new()));
    let alice = Alice {
        browser: tokio::sync::Mutex::new(Browser::new()),
        issuer: s.server.issuer.to_string(),
        shown: shown.clone(),
    };
    let agent = Agent::builder().client_name("SDK test agent").browser(alice).store(MemoryStore::default());
    (Arc::new(agent.build().unwrap()), shown)
}

fn scope_of(url: &Url) -> String {
    url.query_pairs().find(|(k, _)| k == "scope").map(|(_, v)| v.into_owned()).unwrap_or_default()
}

async fn a_person_authorizes_through_the_pages_and_steps_up_for_echo(backend: Backend) {
    let s = setup(backend, "").await;
    let (agent, shown) = for_alice(&s);
    let client = connect(agent.clone(), &s.mcp).await;
    let me = call(&client, "whoami", json!({})).await.structured_content.unwrap();
    assert_eq!(me["subject"], "alice");
    assert!(me["client_id"].as_str().unwrap().starts_with("dcr_"), "registered dynamically: {me}");
    assert_eq!(me["scopes"], json!(["tools:read"]));

    // echo needs tools:call: the 403 challenge leads to a second authorization for both scopes.
    let echoed = call(&client, "echo", json!({ "text": "hello" })).await;
    assert_eq!(echoed.content[0].as_text().unwrap().text, "hello");
    client.cancel().await.unwrap();

    let shown = shown.lock().unwrap().clone();
    assert_eq!(shown.len(), 2, "one authorization, one step-up: {shown:?}");
    for url in &shown {
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["resource"], s.mcp.as_str(), "RFC 8707 resource on every authorization request");
        assert_eq!(q["code_challenge_method"], "S256");
    }
    assert_eq!(
        scope_of(&shown[0]),
        "tools:read offline_access",
        "the challenge's scope, plus offline_access mandate lists"
    );
    let stepped: Vec<String> = scope_of(&shown[1]).split(' ').map(str::to_owned).collect();
    for needed in ["tools:read", "tools:call"] {
        assert!(stepped.iter().any(|s| s == needed), "step-up keeps earlier scopes and adds new ones: {stepped:?}");
    }
}

async fn a_rejected_token_is_replaced_by_a_refresh_without_the_person(backend: Backend) {
    let s = setup(backend, "").await;
    let (agent, shown) = for_alice(&s);
    let tokens = agent.token(&s.mcp).await.unwrap();
    assert!(tokens.refresh_token.is_some(), "offline_access brings a refresh token");

    // An MCP server rejects the access token (a 401 with invalid_token): the agent refreshes
    // rather than sending the person through the pages again.
    let challenge = mandate_agent::Challenge::parse("Bearer error=\"invalid_token\"");
    let fresh = agent.on_unauthorized(&s.mcp, &challenge, Some(&tokens.access_token)).await.unwrap();
    assert_ne!(fresh.access_token, tokens.access_token);
    assert_ne!(fresh.refresh_token, tokens.refresh_token, "mandate rotates refresh tokens");
    assert_eq!(shown.lock().unwrap().len(), 1, "the refresh needed no person");
    let introspected = s.server.introspect(&fresh.access_token).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["aud"], s.mcp.as_str());
}

/// An agent acting for itself as the pre-registered `client_id`.
fn acting_for_itself(client_id: &str, client_secret: Option<&str>, key: Option<ClientKey>) -> Agent {
    let client =
        PreRegistered { issuer: None, client_id: client_id.into(), client_secret: client_secret.map(Into::into), key };
    Agent::builder().mode(Mode::ClientCredentials).pre_registered(client).build().unwrap()
}

async fn client_credentials_with_a_secret_step_up_by_asking_again(backend: Backend) {
    let s = setup(backend, "").await;
    let client = connect(Arc::new(acting_for_itself("build-agent", Some(AGENT_SECRET), None)), &s.mcp).await;
    let me = call(&client, "whoami", json!({})).await.structured_content.unwrap();
    assert_eq!(me["subject"], "build-agent");
    assert_eq!(me["scopes"], json!(["tools:read"]));
    let echoed = call(&client, "echo", json!({ "text": "cc" })).await;
    assert_eq!(echoed.content[0].as_text().unwrap().text, "cc");
    client.cancel().await.unwrap();

    // Plain reqwest through Agent::send: the same challenges answered, for any HTTP call.
    let agent = acting_for_itself("build-agent", Some(AGENT_SECRET), None);
    let request = reqwest::Client::new()
        .post(s.mcp.as_str())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "echo", "arguments": { "text": "raw" } } }));
    let response = agent.send(&s.mcp, request).await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "raw", "{answer}");
}

async fn client_credentials_with_private_key_jwt(backend: Backend) {
    let key = ClientKey::generate_es256().unwrap();
    let client = format!(
        "\n[[clients]]\nclient_id = \"key-agent\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\njwks = {}\n\
         grant_types = [\"client_credentials\"]\nscopes = [\"tools:read\"]\n",
        crate::private_key_jwt::toml_inline(&key.public_jwks())
    );
    let s = setup(backend, &client).await;
    let agent = Agent::builder()
        .pre_registered(PreRegistered {
            issuer: None,
            client_id: "key-agent".into(),
            client_secret: None,
            key: Some(key),
        })
        .mode(Mode::ClientCredentials)
        .build()
        .unwrap();
    let agent = Arc::new(agent);
    let client = connect(agent.clone(), &s.mcp).await;
    let me = call(&client, "whoami", json!({})).await.structured_content.unwrap();
    assert_eq!(me["subject"], "key-agent");

    // key-agent may not have tools:call: the step-up is refused at mandate with invalid_scope,
    // and the call fails with that reason instead of looping.
    let params = CallToolRequestParams::new("echo").with_arguments(json!({ "text": "x" }).as_object().unwrap().clone());
    let refused = client.call_tool(params).await.expect_err("no tools:call for key-agent");
    assert!(refused.to_string().contains("invalid_scope"), "{refused}");
    client.cancel().await.unwrap();

    // Another key signing as key-agent is refused: the server verifies the assertion.
    let impostor = acting_for_itself("key-agent", None, Some(ClientKey::generate_es256().unwrap()));
    let err = impostor.token(&s.mcp).await.unwrap_err();
    assert_eq!(err.oauth_error().map(|e| e.error.as_str()), Some("invalid_client"), "{err}");
}

/// The agent as reqwest-middleware: any `ClientWithMiddleware` call gets a token, steps up on
/// 403 `insufficient_scope`, and a wrong secret or a body that cannot be replayed is a clear error.
async fn reqwest_middleware_attaches_tokens_and_steps_up(backend: Backend) {
    use mandate_agent::middleware::AgentMiddleware;

    let s = setup(backend, "").await;
    let agent = Arc::new(acting_for_itself("build-agent", Some(AGENT_SECRET), None));
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(AgentMiddleware::new(agent.clone()))
        .build();
    let call = |text: &str| {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "echo", "arguments": { "text": text } } });
        http.post(s.mcp.as_str())
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    // echo needs tools:call; the first token has tools:read, so this goes through a step-up.
    let response = call("through middleware").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "through middleware", "{answer}");

    // A body that cannot be sent twice is refused before anything is sent.
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{}"))]);
    let refused = http.post(s.mcp.as_str()).body(reqwest::Body::wrap_stream(stream)).send().await.unwrap_err();
    assert!(refused.to_string().contains("streaming body"), "{refused}");

    // A wrong secret: the OAuth error, not a loop, and never the secret.
    let wrong = "not-the-secret-0123456789abcdefghijklmnopqr";
    let impostor = Arc::new(acting_for_itself("build-agent", Some(wrong), None));
    let http =
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(AgentMiddleware::new(impostor)).build();
    let e = http.get(s.mcp.as_str()).send().await.unwrap_err();
    let shown = format!("{e:#} {e:?}");
    assert!(shown.contains("invalid_client"), "{shown}");
    assert!(!shown.contains(wrong), "{shown}");
}

crate::on_both_backends!(
    a_person_authorizes_through_the_pages_and_steps_up_for_echo,
    a_rejected_token_is_replaced_by_a_refresh_without_the_person,
    client_credentials_with_a_secret_step_up_by_asking_again,
    client_credentials_with_private_key_jwt,
    reqwest_middleware_attaches_tokens_and_steps_up
);
