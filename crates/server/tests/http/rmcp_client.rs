//! Interop: rmcp, the official Rust MCP SDK, as an interactive MCP host getting a token for alice.
//! Its OAuth client (`OAuthState`) meets an MCP server it knows nothing about: the server's 401
//! challenge points at its RFC 9728 metadata, which names mandate; rmcp reads mandate's RFC 8414
//! metadata, becomes a client of it, sends alice to the authorization URL (PKCE S256, `resource`),
//! and redeems the code it gets back. `Browser` plays alice on mandate's real pages. rmcp becomes
//! a client in the two ways it knows:
//!
//!   * dynamic registration (RFC 7591): a public native client, id `dcr_…`;
//!   * a client ID metadata document: the URL is the client id and mandate fetches the document.
//!     rmcp 3.11 takes only an https URL with a path (`is_https_url` in its `transport/auth.rs`),
//!     so the document is served over TLS on 127.0.0.1 with a certificate from a throwaway CA
//!     that the test server's fetcher trusts (and `allow_private_networks` lets it reach
//!     loopback).
//!
//! Then rmcp refreshes (mandate rotates the refresh token) and, with the refreshed token, lists
//! and calls the one tool of a small rmcp Streamable HTTP server that checks bearer tokens at
//! mandate's /introspect. The tool answers with what introspection said about the token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{StatusCode, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

use crate::common::browser::*;
use crate::common::{Backend, Options, RS_SECRET, TestServer, fresh_database};

/// Where rmcp says the browser comes back to; `Browser` never follows it, the test reads it.
const REDIRECT: &str = "http://127.0.0.1:53682/callback";
const SCOPES: [&str; 2] = ["tools:read", "tools:call"];

/// An MCP server protected by mandate, and mandate configured for it.
struct Setup {
    mcp: String,
    server: TestServer,
}

async fn setup(backend: Backend, trusted_roots: Vec<Vec<u8>>) -> Setup {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mcp = format!("http://{}/mcp", listener.local_addr().unwrap());
    let config = format!(
        "[registration]\ndynamic = true\nallow_private_networks = true\n{}\n[[resources]]\nuri = \"{mcp}\"\n\
         name = \"rmcp tool server\"\nscopes = [\"tools:read\", \"tools:call\"]\n",
        delegation_config()
    );
    let options = Options { config, trusted_roots, ..Options::default() };
    let server = TestServer::start_on(fresh_database(backend).await, options).await;
    serve_mcp(listener, mcp.clone(), server.issuer.clone());
    Setup { mcp, server }
}

/// rmcp as a host: connect, be refused, authorize with `request` while alice approves (on a
/// consent page naming `client_name`), redeem.
async fn authorize(setup: &Setup, request: AuthorizationRequest, client_name: &str) -> OAuthState {
    let Err(refused) = ().serve(StreamableHttpClientTransport::from_uri(setup.mcp.as_str())).await else {
        panic!("the MCP server must refuse a request without a token");
    };
    let challenge = refused.auth_challenge().expect("a WWW-Authenticate challenge").to_owned();
    let mut oauth = OAuthState::new(setup.mcp.as_str(), None).await.unwrap();
    oauth.start_authorization(request.with_challenge(challenge)).await.unwrap();
    let url = oauth.get_authorization_url().await.unwrap();
    assert!(url.starts_with(&setup.server.url("/authorize?")), "{url}");

    let mut b = Browser::new();
    let login = b.get(&url).await;
    assert!(login.redirects_to(&setup.server.url("/login")), "{} {:?} {}", login.status, login.location, login.body);
    let consent = b.sign_in(login.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    assert!(consent.redirects_to(&setup.server.url("/consent")), "{:?}", consent.location);
    let page = b.get(consent.location.as_deref().unwrap()).await;
    assert!(page.body.contains(client_name), "the consent page names the client: {}", page.body);
    let back = b.decide(consent.location.as_deref().unwrap(), "approve", false).await;
    assert!(back.redirects_to(REDIRECT), "{:?}", back.location);
    // rmcp checks `state` and the RFC 9207 `iss` against what it stored, then redeems with PKCE.
    oauth.handle_callback_url(back.location.as_deref().unwrap()).await.unwrap();
    oauth
}

/// The client id and the token response rmcp holds, as JSON.
async fn held(oauth: &OAuthState) -> (String, Value) {
    let (client_id, tokens) = oauth.get_credentials().await.unwrap();
    (client_id, serde_json::to_value(tokens.expect("rmcp holds tokens")).unwrap())
}

/// What a host does from here: use its token, refresh it, and call a tool. Returns the tool's
/// answer.
async fn use_tokens(setup: &Setup, oauth: OAuthState, client_id: &str) -> Value {
    let (held_id, first) = held(&oauth).await;
    assert_eq!(held_id, client_id);
    let seen = setup.server.introspect(first["access_token"].as_str().unwrap()).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["client_id"], client_id);
    assert_eq!(seen["aud"], setup.mcp.as_str(), "RFC 8707: rmcp sent the resource from the metadata");
    assert_eq!(seen["scope"], "tools:call tools:read", "the scopes of the resource metadata");
    assert_eq!(seen["sub"], "alice");
    assert!(first["refresh_token"].is_string(), "rmcp added offline_access: {first}");

    oauth.refresh_token().await.unwrap();
    let (_, second) = held(&oauth).await;
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"], "public clients' refresh tokens rotate");
    let refreshed = setup.server.introspect(second["access_token"].as_str().unwrap()).await;
    assert_eq!(refreshed["active"], true);
    assert_eq!(refreshed["client_id"], client_id);

    let manager = oauth.into_authorization_manager().expect("authorized");
    let config = StreamableHttpClientTransportConfig::with_uri(setup.mcp.as_str());
    let transport =
        StreamableHttpClientTransport::with_client(AuthClient::new(reqwest::Client::new(), manager), config);
    let client = ().serve(transport).await.expect("connects with the token");
    let tools: Vec<String> = client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.into()).collect();
    assert_eq!(tools, ["whoami"]);
    let result = client.call_tool(CallToolRequestParams::new("whoami")).await.unwrap();
    client.cancel().await.unwrap();
    let answer = result.structured_content.expect("structured result");
    assert_eq!(answer["jti"], refreshed["jti"], "rmcp presents its latest token");
    answer
}

async fn rmcp_registers_dynamically_and_calls_a_tool(backend: Backend) {
    let setup = setup(backend, Vec::new()).await;
    let request = AuthorizationRequest::new(REDIRECT).with_client_name("rmcp host (registered)");
    let oauth = authorize(&setup, request, "rmcp host (registered)").await;
    let (client_id, _) = held(&oauth).await;
    assert!(client_id.starts_with("dcr_"), "a dynamically registered client: {client_id}");
    let answer = use_tokens(&setup, oauth, &client_id).await;
    assert_eq!(answer["sub"], "alice");
    assert_eq!(answer["client_id"], client_id);
}

async fn rmcp_uses_a_client_id_metadata_document_and_calls_a_tool(backend: Backend) {
    let site = DocumentSite::start().await;
    let setup = setup(backend, vec![site.ca.clone()]).await;
    let request = AuthorizationRequest::new(REDIRECT).with_client_metadata_url(&site.url);
    let oauth = authorize(&setup, request, "rmcp host (metadata document)").await;
    let (client_id, _) = held(&oauth).await;
    assert_eq!(client_id, site.url, "the metadata document URL is the client id");
    let answer = use_tokens(&setup, oauth, &site.url).await;
    assert_eq!(answer["sub"], "alice");
    assert_eq!(answer["client_id"], site.url);
}

crate::on_both_backends!(
    rmcp_registers_dynamically_and_calls_a_tool,
    rmcp_uses_a_client_id_metadata_document_and_calls_a_tool
);

// ---- The MCP server: RFC 9728 metadata, and one tool behind a bearer check at /introspect ----

#[derive(Clone)]
struct Gate {
    resource: String,
    metadata_url: String,
    introspection: String,
    http: reqwest::Client,
}

/// What mandate's introspection said about the request's token.
#[derive(Clone)]
struct Introspected(Value);

fn serve_mcp(listener: TcpListener, resource: String, issuer: String) {
    let origin = resource.trim_end_matches("/mcp").to_owned();
    let gate = Gate {
        metadata_url: format!("{origin}/.well-known/oauth-protected-resource/mcp"),
        introspection: format!("{issuer}/introspect"),
        http: reqwest::Client::new(),
        resource: resource.clone(),
    };
    let metadata = json!({
        "resource": resource, "authorization_servers": [issuer], "scopes_supported": SCOPES,
        "bearer_methods_supported": ["header"],
    });
    let mcp = StreamableHttpService::new(
        || Ok(WhoAmI),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default().with_sse_keep_alive(None),
    );
    let app = axum::Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(gate, bearer_check))
        .route("/.well-known/oauth-protected-resource/mcp", axum::routing::get(move || async { axum::Json(metadata) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

async fn bearer_check(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let token = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
    let seen = match token {
        Some(token) => {
            let res = gate.http.post(&gate.introspection).basic_auth("resource-server", Some(RS_SECRET));
            res.form(&[("token", token)]).send().await.unwrap().json::<Value>().await.unwrap()
        }
        None => json!({ "active": false }),
    };
    if seen["active"] != true || seen["aud"] != gate.resource.as_str() {
        let challenge = format!("Bearer resource_metadata=\"{}\"", gate.metadata_url);
        return (StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, challenge)]).into_response();
    }
    request.extensions_mut().insert(Introspected(seen));
    next.run(request).await
}

#[derive(Clone)]
struct WhoAmI;

impl ServerHandler for WhoAmI {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = json!({ "type": "object" }).as_object().unwrap().clone();
        let tool = Tool::new("whoami", "What the authorization server says about your token", schema);
        Ok(ListToolsResult::with_all_items(vec![tool]))
    }

    async fn call_tool(
        &self,
        _: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let seen = context.extensions.get::<Parts>().and_then(|parts| parts.extensions.get::<Introspected>());
        let Some(Introspected(claims)) = seen else {
            return Err(ErrorData::internal_error("no introspection result", None));
        };
        Ok(CallToolResult::structured(claims.clone()).into())
    }
}

// ---- The web site of the client ID metadata document: https on 127.0.0.1, a throwaway CA ----

struct DocumentSite {
    url: String,
    /// The CA certificate (DER) that signed the site's certificate.
    ca: Vec<u8>,
}

impl DocumentSite {
    async fn start() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let mut leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], leaf_key.into())
            .unwrap();

        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/clients/rmcp-host.json", tcp.local_addr().unwrap());
        let document = json!({
            "client_id": url, "client_name": "rmcp host (metadata document)", "application_type": "native",
            "redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        });
        let app = axum::Router::new()
            .route("/clients/rmcp-host.json", axum::routing::get(move || async { axum::Json(document) }));
        let listener = TlsListener { tcp, tls: tokio_rustls::TlsAcceptor::from(Arc::new(tls)) };
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, ca: ca.der().to_vec() }
    }
}

/// TLS over a TCP listener, for `axum::serve`; failed handshakes are dropped.
struct TlsListener {
    tcp: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.tls.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}
