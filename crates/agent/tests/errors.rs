//! Each way a server can be wrong, and the error the agent gives for it. The servers here are
//! deliberately broken (no real authorization server publishes a mismatched issuer or drops PKCE),
//! so one small configurable server on loopback plays them; the well-behaved paths are proven
//! against mandate itself (crates/server/tests/http/agent_sdk.rs, crates/cli/tests/agent.rs) and
//! by the MCP conformance suite (interop/test/mcp-conformance.test.mjs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mandate_agent::{Agent, AgentError, CallError, FollowRedirects, Mode, PreRegistered};
use serde_json::{Value, json};
use url::Url;

/// What the broken server answers, and what it was asked.
#[derive(Default)]
struct Script {
    prm: Option<Value>,
    metadata: Option<Value>,
    token: Option<(u16, Value)>,
    /// The MCP endpoint's answer: status and WWW-Authenticate.
    mcp: Option<(u16, String)>,
    hits: HashMap<String, usize>,
}

type Shared = Arc<Mutex<Script>>;

struct Server {
    origin: String,
    script: Shared,
}

impl Server {
    async fn start(configure: impl FnOnce(&str, &mut Script)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let mut script = Script::default();
        configure(&origin, &mut script);
        let script = Arc::new(Mutex::new(script));
        let app = axum::Router::new()
            .route("/.well-known/{*rest}", get(well_known))
            .route("/as/token", post(token))
            .route("/as/register", post(register))
            .route("/as/authorize", get(authorize))
            .route("/mcp", post(mcp))
            .with_state(script.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { origin, script }
    }

    fn mcp(&self) -> Url {
        Url::parse(&format!("{}/mcp", self.origin)).unwrap()
    }

    fn hits(&self, path: &str) -> usize {
        self.script.lock().unwrap().hits.get(path).copied().unwrap_or(0)
    }
}

fn hit(script: &Shared, path: &str) {
    *script.lock().unwrap().hits.entry(path.to_owned()).or_default() += 1;
}

async fn well_known(State(s): State<Shared>, Path(rest): Path<String>) -> Response {
    hit(&s, &rest);
    let script = s.lock().unwrap();
    let doc = match rest.as_str() {
        "oauth-protected-resource/mcp" => script.prm.clone(),
        "oauth-authorization-server/as" => script.metadata.clone(),
        _ => None,
    };
    match doc {
        Some(doc) => axum::Json(doc).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn token(State(s): State<Shared>) -> Response {
    hit(&s, "token");
    let (status, body) = s.lock().unwrap().token.clone().unwrap_or((500, json!({})));
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

async fn register(State(s): State<Shared>) -> Response {
    hit(&s, "register");
    (StatusCode::CREATED, axum::Json(json!({ "client_id": "registered", "token_endpoint_auth_method": "none" })))
        .into_response()
}

async fn authorize(State(s): State<Shared>) -> Response {
    hit(&s, "authorize");
    StatusCode::OK.into_response()
}

async fn mcp(State(s): State<Shared>, headers: HeaderMap) -> Response {
    hit(&s, "mcp");
    let (status, challenge) = s.lock().unwrap().mcp.clone().unwrap_or((200, String::new()));
    if headers.get("authorization").is_none() {
        return (StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer scope=\"read\"")]).into_response();
    }
    (StatusCode::from_u16(status).unwrap(), [("www-authenticate", challenge)]).into_response()
}

fn prm(origin: &str) -> Value {
    json!({ "resource": format!("{origin}/mcp"), "authorization_servers": [format!("{origin}/as")] })
}

fn metadata(origin: &str) -> Value {
    json!({
        "issuer": format!("{origin}/as"),
        "authorization_endpoint": format!("{origin}/as/authorize"),
        "token_endpoint": format!("{origin}/as/token"),
        "registration_endpoint": format!("{origin}/as/register"),
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
    })
}

fn interactive() -> Agent {
    Agent::builder().browser(FollowRedirects::new().unwrap()).build().unwrap()
}

fn self_acting() -> Agent {
    let client =
        PreRegistered { issuer: None, client_id: "bot".into(), client_secret: Some("s3cret".into()), key: None };
    Agent::builder().mode(Mode::ClientCredentials).pre_registered(client).build().unwrap()
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_refused() {
    let server = Server::start(|o, s| {
        s.prm = Some(prm(o));
        let mut m = metadata(o);
        m["issuer"] = format!("{o}/elsewhere").into();
        s.metadata = Some(m);
    })
    .await;
    let err = interactive().token(&server.mcp()).await.unwrap_err();
    assert!(matches!(&err, AgentError::IssuerMismatch { found, .. } if found.ends_with("/elsewhere")), "{err}");
    assert_eq!(server.hits("token") + server.hits("register"), 0, "nothing is sent to an impostor");
}

#[tokio::test]
async fn resource_metadata_for_another_resource_is_refused() {
    let server = Server::start(|o, s| {
        s.prm = Some(json!({ "resource": "https://evil.example/mcp", "authorization_servers": [format!("{o}/as")] }));
        s.metadata = Some(metadata(o));
    })
    .await;
    let err = interactive().token(&server.mcp()).await.unwrap_err();
    assert!(matches!(err, AgentError::ResourceMismatch { .. }), "{err}");
    assert_eq!(server.hits("oauth-authorization-server/as"), 0);
}

#[tokio::test]
async fn resource_metadata_without_authorization_servers_is_an_error() {
    let server = Server::start(|o, s| s.prm = Some(json!({ "resource": format!("{o}/mcp") }))).await;
    let err = interactive().token(&server.mcp()).await.unwrap_err();
    assert!(matches!(err, AgentError::NoAuthorizationServer { .. }), "{err}");
}

#[tokio::test]
async fn no_pkce_s256_no_registration_and_no_authorization() {
    let server = Server::start(|o, s| {
        s.prm = Some(prm(o));
        let mut m = metadata(o);
        m.as_object_mut().unwrap().remove("code_challenge_methods_supported");
        s.metadata = Some(m);
    })
    .await;
    let err = interactive().token(&server.mcp()).await.unwrap_err();
    assert!(matches!(err, AgentError::PkceNotSupported { .. }), "{err}");
    assert_eq!(server.hits("register") + server.hits("authorize"), 0);
}

#[tokio::test]
async fn a_server_offering_no_client_identity_is_named() {
    let server = Server::start(|o, s| {
        s.prm = Some(prm(o));
        let mut m = metadata(o);
        m.as_object_mut().unwrap().remove("registration_endpoint");
        s.metadata = Some(m);
    })
    .await;
    let err = interactive().token(&server.mcp()).await.unwrap_err();
    assert!(matches!(err, AgentError::NoClientIdentity { .. }), "{err}");
}

#[tokio::test]
async fn endpoints_on_plain_http_elsewhere_than_loopback_are_refused() {
    let server = Server::start(|o, s| {
        s.prm = Some(prm(o));
        let mut m = metadata(o);
        m["token_endpoint"] = "http://as.example/token".into();
        s.metadata = Some(m);
    })
    .await;
    let err = self_acting().token(&server.mcp()).await.unwrap_err();
    assert!(matches!(err, AgentError::InsecureUrl(_)), "{err}");
}

#[tokio::test]
async fn token_endpoint_errors_keep_their_oauth_code() {
    let server = Server::start(|o, s| {
        s.prm = Some(prm(o));
        s.metadata = Some(metadata(o));
        s.token = Some((400, json!({ "error": "invalid_scope", "error_description": "read is not yours" })));
    })
    .await;
    let err = self_acting().token(&server.mcp()).await.unwrap_err();
    let oauth = err.oauth_error().expect("an OAuth error");
    assert_eq!((oauth.error.as_str(), oauth.description.as_deref()), ("invalid_scope", Some("read is not yours")));
    assert!(err.to_string().contains("HTTP 400"), "{err}");
}

#[tokio::test]
async fn tokens_of_another_type_are_refused() {
    let server = Server::start(|o, s| {
        s.prm = Some(prm(o));
        s.metadata = Some(metadata(o));
        s.token = Some((200, json!({ "access_token": "t", "token_type": "MAC" })));
    })
    .await;
    let err = self_acting().token(&server.mcp()).await.unwrap_err();
    assert!(matches!(err, AgentError::InvalidTokenResponse(_)), "{err}");
}

#[tokio::test]
async fn endless_403s_stop_after_two_step_ups() {
    let server = Server::start(|o, s| {
        s.prm = Some(prm(o));
        s.metadata = Some(metadata(o));
        s.token = Some((200, json!({ "access_token": "t", "token_type": "Bearer", "expires_in": 300 })));
        s.mcp = Some((403, "Bearer error=\"insufficient_scope\", scope=\"admin\"".into()));
    })
    .await;
    let agent = self_acting();
    let err = agent.send(&server.mcp(), reqwest::Client::new().post(server.mcp()).body("{}")).await.unwrap_err();
    assert!(matches!(err, CallError::Agent(AgentError::StepUpLimit { attempts: 2, .. })), "{err}");
    assert_eq!(server.hits("token"), 3, "one authorization and two step-ups");
}

#[tokio::test]
async fn a_401_after_a_new_authorization_is_not_retried_forever() {
    let server = Server::start(|o, s| {
        s.prm = Some(prm(o));
        s.metadata = Some(metadata(o));
        s.token = Some((200, json!({ "access_token": "t", "token_type": "Bearer" })));
        s.mcp = Some((401, "Bearer error=\"invalid_token\"".into()));
    })
    .await;
    let err = self_acting().send(&server.mcp(), reqwest::Client::new().post(server.mcp())).await.unwrap_err();
    assert!(matches!(err, CallError::StillUnauthorized(_)), "{err}");
    assert_eq!(server.hits("token"), 1);
}

#[tokio::test]
async fn a_403_without_insufficient_scope_is_not_a_step_up() {
    let server = Server::start(|o, s| {
        s.prm = Some(prm(o));
        s.metadata = Some(metadata(o));
        s.token = Some((200, json!({ "access_token": "t", "token_type": "Bearer" })));
        s.mcp = Some((403, "Bearer error=\"invalid_token\"".into()));
    })
    .await;
    let err = self_acting().send(&server.mcp(), reqwest::Client::new().post(server.mcp())).await.unwrap_err();
    assert!(matches!(err, CallError::Forbidden(_)), "{err}");
    assert_eq!(server.hits("token"), 1);
}

#[tokio::test]
async fn client_credentials_at_a_server_without_that_grant() {
    let server = Server::start(|o, s| {
        s.prm = Some(prm(o));
        let mut m = metadata(o);
        m["grant_types_supported"] = json!(["authorization_code"]);
        s.metadata = Some(m);
    })
    .await;
    let err = self_acting().token(&server.mcp()).await.unwrap_err();
    assert!(matches!(err, AgentError::GrantNotSupported { grant: "client_credentials", .. }), "{err}");
}

#[tokio::test]
async fn without_a_person_the_code_flow_is_not_started() {
    let server = Server::start(|o, s| {
        s.prm = Some(prm(o));
        s.metadata = Some(metadata(o));
    })
    .await;
    let agent = Agent::builder().interactive(false).build().unwrap();
    let err = agent.token(&server.mcp()).await.unwrap_err();
    assert!(matches!(err, AgentError::LoginRequired { .. }), "{err}");
    assert_eq!(server.hits("register") + server.hits("authorize"), 0);
}
