//! The client driver the MCP conformance suite runs:
//!
//! ```text
//! npx @modelcontextprotocol/conformance client --command "conformance-client [--client-metadata-url URL]" --scenario auth/...
//! ```
//!
//! The suite appends the MCP server URL and sets `MCP_CONFORMANCE_SCENARIO` and, for scenarios
//! that hand the client credentials, `MCP_CONFORMANCE_CONTEXT` (JSON). The driver reads only that
//! context: credentials become pre-registered clients, a private key becomes `private_key_jwt`,
//! an identity provider's ID token becomes an identity assertion grant. Everything else (which
//! grant, which scopes, which client identity, step-ups) is `mandate-agent` deciding from what the
//! servers publish. It then does what a host does: connect, list the tools, call the first one.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use mandate_agent::{Agent, ClientKey, FollowRedirects, IdentityAssertion, MemoryStore, PreRegistered};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde::Deserialize;
use url::Url;

#[derive(Parser)]
#[command(about = "MCP conformance suite client driver (mandate-agent + rmcp)")]
struct Args {
    /// The URL of this client's metadata document, used as client_id where the server supports
    /// client ID metadata documents.
    #[arg(long)]
    client_metadata_url: Option<Url>,
    /// The MCP server (the suite passes it last).
    server_url: Url,
}

/// `MCP_CONFORMANCE_CONTEXT`: what the scenario hands the client.
#[derive(Debug, Default, Deserialize)]
struct Context {
    client_id: Option<String>,
    client_secret: Option<String>,
    private_key_pem: Option<String>,
    idp_client_id: Option<String>,
    idp_id_token: Option<String>,
    idp_issuer: Option<String>,
    idp_token_endpoint: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,rmcp=warn".into()),
        )
        .init();
    let args = Args::parse();
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let context: Context = match std::env::var("MCP_CONFORMANCE_CONTEXT") {
        Ok(json) => serde_json::from_str(&json).context("MCP_CONFORMANCE_CONTEXT is not the expected JSON")?,
        Err(_) => Context::default(),
    };
    tracing::info!(scenario, server = %args.server_url, "starting");

    let agent = Arc::new(agent(&args, context)?);
    let client = mandate_agent::rmcp::AuthorizedHttpClient::new(agent, args.server_url.clone());
    let transport = StreamableHttpClientTransport::with_client(
        client,
        StreamableHttpClientTransportConfig::with_uri(args.server_url.as_str()),
    );
    let service = ().serve(transport).await.context("initialize")?;
    let tools = service.list_all_tools().await.context("tools/list")?;
    tracing::info!(count = tools.len(), "listed tools");
    if let Some(tool) = tools.first() {
        let result = service.call_tool(CallToolRequestParams::new(tool.name.clone())).await.context("tools/call")?;
        tracing::info!(tool = %tool.name, is_error = ?result.is_error, "called a tool");
    }
    service.cancel().await.context("closing")?;
    Ok(())
}

fn agent(args: &Args, context: Context) -> anyhow::Result<Agent> {
    let mut builder = Agent::builder()
        .client_name("mandate conformance client")
        .browser(FollowRedirects::new()?)
        .store(MemoryStore::default());
    if let Some(url) = &args.client_metadata_url {
        builder = builder.metadata_document(url.clone());
    }
    if let Some(client_id) = context.client_id {
        let key = context.private_key_pem.as_deref().map(ClientKey::from_pem).transpose()?;
        builder = builder.pre_registered(PreRegistered {
            issuer: None,
            client_id,
            client_secret: context.client_secret,
            key,
        });
    }
    if let (Some(id_token), Some(idp_issuer)) = (context.idp_id_token, context.idp_issuer) {
        builder = builder.identity_assertion(IdentityAssertion {
            idp_issuer,
            idp_token_endpoint: context.idp_token_endpoint,
            idp_client: PreRegistered {
                issuer: None,
                client_id: context.idp_client_id.unwrap_or_default(),
                client_secret: None,
                key: None,
            },
            id_token,
        });
    }
    Ok(builder.build()?)
}
