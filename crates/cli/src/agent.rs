//! `mandate agent`: tokens for scripts and agents without OAuth code. Everything here is flags and
//! printing; the OAuth is mandate-agent's. Secrets come from the environment or files, never from
//! flags (which show in process listings), and tokens are printed only by the commands whose
//! output is the token (`token`, `client-credentials`, `exchange`).

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use mandate_agent::{Agent, ClientKey, Exchange, FileStore, Mode, PreRegistered, PrintUrl, SystemBrowser, TokenSet};
use std::path::PathBuf;
use url::Url;

#[derive(Args)]
pub struct AgentArgs {
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(Args)]
struct IdentityArgs {
    /// The token cache (JSON, mode 0600). Default: $XDG_STATE_HOME/mandate/agent.json.
    #[arg(long, global = true, env = "MANDATE_AGENT_STORE", value_name = "PATH")]
    store: Option<PathBuf>,
    /// A client registered ahead of time; its secret comes from $MANDATE_AGENT_CLIENT_SECRET or
    /// --client-secret-file, its key from --key.
    #[arg(long, global = true, env = "MANDATE_AGENT_CLIENT_ID", value_name = "CLIENT_ID")]
    client_id: Option<String>,
    /// A file holding the client's secret (final newline removed).
    #[arg(long, global = true, value_name = "PATH")]
    client_secret_file: Option<PathBuf>,
    /// The client's private key for private_key_jwt: a PKCS#8 PEM or a private JWK (ES256 or EdDSA).
    #[arg(long, global = true, env = "MANDATE_AGENT_KEY_FILE", value_name = "PATH")]
    key: Option<PathBuf>,
    /// Use the pre-registered client only at this authorization server.
    #[arg(long = "client-issuer", global = true, value_name = "URL")]
    client_issuer: Option<String>,
    /// This agent's client ID metadata document URL, used as client_id where servers support them.
    #[arg(long, global = true, env = "MANDATE_AGENT_CLIENT_METADATA_URL", value_name = "URL")]
    client_metadata_url: Option<Url>,
    /// The name shown on consent pages when the agent registers itself.
    #[arg(long, global = true, default_value = "mandate agent CLI", value_name = "NAME")]
    client_name: String,
    /// Scopes to ask for, instead of what the server's challenge and metadata suggest.
    #[arg(long, global = true, value_name = "SCOPE")]
    scope: Option<String>,
    /// The loopback port for the browser's redirect (0 = any free port).
    #[arg(long, global = true, default_value_t = 0, value_name = "PORT")]
    redirect_port: u16,
    /// Print the authorization URL instead of opening a browser.
    #[arg(long, global = true)]
    no_browser: bool,
    /// A PEM file of extra trusted root certificates (a private CA).
    #[arg(long, global = true, value_name = "PATH")]
    ca_cert: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Sign in for an MCP server in the browser (authorization code + PKCE) and cache the tokens.
    Login { mcp_url: Url },
    /// Print an access token for an MCP server: cached, refreshed, or by client credentials;
    /// never opens a browser (run `login` first for a person's token).
    Token { mcp_url: Url },
    /// Get a token for the agent itself (client credentials) and print it.
    ClientCredentials { mcp_url: Url },
    /// Exchange a token (RFC 8693) at an authorization server and print the response as JSON.
    Exchange(ExchangeArgs),
    /// Forget cached tokens (for one MCP server, or all) and revoke their refresh tokens.
    Logout { mcp_url: Option<Url> },
    /// List the cached tokens (never the tokens themselves).
    Status,
    /// Decode a JWT access token, verify it against its issuer's keys, and show scopes,
    /// audience, expiry and delegation chain. Reads stdin when the token is `-`.
    Inspect { token: String },
}

#[derive(Args)]
struct ExchangeArgs {
    /// The authorization server's issuer.
    #[arg(long, value_name = "URL")]
    issuer: String,
    /// The token to exchange; `-` reads stdin.
    #[arg(long, value_name = "TOKEN")]
    subject_token: String,
    /// access_token, refresh_token, id_token, jwt, id-jag, or a full URN.
    #[arg(long, default_value = "access_token", value_name = "TYPE")]
    subject_token_type: String,
    /// The acting party's token (delegation).
    #[arg(long, value_name = "TOKEN")]
    actor_token: Option<String>,
    #[arg(long, default_value = "access_token", value_name = "TYPE")]
    actor_token_type: String,
    #[arg(long, value_name = "TYPE")]
    requested_token_type: Option<String>,
    #[arg(long, value_name = "URI")]
    audience: Option<String>,
    #[arg(long, value_name = "URI")]
    resource: Option<String>,
}

/// `access_token` → `urn:ietf:params:oauth:token-type:access_token`; URNs pass through.
fn token_type(short: &str) -> String {
    if short.starts_with("urn:") { short.to_owned() } else { format!("urn:ietf:params:oauth:token-type:{short}") }
}

fn read_secret_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.strip_suffix('\n').unwrap_or(&text).trim_end_matches('\r').to_owned())
}

fn read_token(arg: &str) -> anyhow::Result<String> {
    if arg != "-" {
        return Ok(arg.trim().to_owned());
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("reading the token from stdin")?;
    Ok(text.trim().to_owned())
}

fn build(identity: &IdentityArgs, mode: Mode, interactive: bool) -> anyhow::Result<Agent> {
    let store_path = match &identity.store {
        Some(p) => p.clone(),
        None => FileStore::default_path().context("no token cache location: set --store or $MANDATE_AGENT_STORE")?,
    };
    let mut builder = Agent::builder()
        .client_name(&identity.client_name)
        .store(FileStore::new(store_path))
        .mode(mode)
        .interactive(interactive)
        .redirect_port(identity.redirect_port);
    builder = if identity.no_browser { builder.browser(PrintUrl) } else { builder.browser(SystemBrowser) };
    if let Some(scope) = &identity.scope {
        builder = builder.scope(scope);
    }
    if let Some(url) = &identity.client_metadata_url {
        builder = builder.metadata_document(url.clone());
    }
    let key = identity.key.as_deref().map(ClientKey::from_file).transpose()?;
    if let Some(key) = &key
        && identity.client_id.is_none()
    {
        builder = builder.key(key.clone());
    }
    if let Some(client_id) = &identity.client_id {
        let client_secret = match (&identity.client_secret_file, std::env::var("MANDATE_AGENT_CLIENT_SECRET")) {
            (Some(path), _) => Some(read_secret_file(path)?),
            (None, Ok(secret)) if !secret.is_empty() => Some(secret),
            _ => None,
        };
        builder = builder.pre_registered(PreRegistered {
            issuer: identity.client_issuer.clone(),
            client_id: client_id.clone(),
            client_secret,
            key,
        });
    }
    if let Some(path) = &identity.ca_cert {
        let pem_text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        for block in pem::parse_many(&pem_text).with_context(|| format!("{} is not PEM", path.display()))? {
            builder = builder.extra_root_certificate(block.into_contents());
        }
    }
    Ok(builder.build()?)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn describe(tokens: &TokenSet) -> String {
    let now = now();
    let expiry = match tokens.expires_at {
        Some(at) => {
            if at > now {
                format!("expires in {} s", at - now)
            } else {
                "expired".to_owned()
            }
        }
        None => "no expiry given".to_owned(),
    };
    let refresh = if tokens.refresh_token.is_some() { ", refreshable" } else { "" };
    format!("scope {:?}, {expiry}{refresh}", tokens.scope.as_deref().unwrap_or(""))
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let identity = &args.identity;
    match args.command {
        AgentCommand::Login { mcp_url } => {
            let agent = build(identity, Mode::Interactive, true)?;
            let discovery = agent.discover(&mcp_url, None).await?;
            let tokens = agent.token(&mcp_url).await?;
            println!("Signed in for {} at {}: {}.", discovery.resource, discovery.issuer(), describe(&tokens));
        }
        AgentCommand::Token { mcp_url } => {
            let agent = build(identity, Mode::Auto, false)?;
            println!("{}", agent.token(&mcp_url).await?.access_token);
        }
        AgentCommand::ClientCredentials { mcp_url } => {
            if identity.client_id.is_none() {
                bail!("client-credentials needs --client-id (and a secret or --key)");
            }
            let agent = build(identity, Mode::ClientCredentials, false)?;
            println!("{}", agent.token(&mcp_url).await?.access_token);
        }
        AgentCommand::Exchange(x) => {
            if identity.client_id.is_none() {
                bail!("exchange needs --client-id: token exchange authenticates the client");
            }
            let agent = build(identity, Mode::Auto, false)?;
            let subject_token = read_token(&x.subject_token)?;
            let subject_token_type = token_type(&x.subject_token_type);
            let actor_token_type = token_type(&x.actor_token_type);
            let requested = x.requested_token_type.as_deref().map(token_type);
            let tokens = agent
                .exchange(
                    &x.issuer,
                    &Exchange {
                        subject_token: &subject_token,
                        subject_token_type: &subject_token_type,
                        actor_token: x.actor_token.as_deref(),
                        actor_token_type: x.actor_token.as_ref().map(|_| actor_token_type.as_str()),
                        requested_token_type: requested.as_deref(),
                        audience: x.audience.as_deref(),
                        resource: x.resource.as_deref(),
                        scope: identity.scope.as_deref(),
                    },
                )
                .await?;
            let now = now();
            let out = serde_json::json!({
                "access_token": tokens.access_token,
                "issued_token_type": tokens.issued_token_type,
                "token_type": tokens.token_type,
                "expires_in": tokens.expires_at.map(|at| at.saturating_sub(now)),
                "scope": tokens.scope,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        AgentCommand::Logout { mcp_url } => {
            let agent = build(identity, Mode::Auto, false)?;
            let dropped = agent.logout(mcp_url.as_ref()).await?;
            println!("Forgot {dropped} cached token set{}.", if dropped == 1 { "" } else { "s" });
        }
        AgentCommand::Status => {
            let agent = build(identity, Mode::Auto, false)?;
            let cached = agent.cached()?;
            if cached.is_empty() {
                println!("No cached tokens.");
            }
            for (key, tokens) in cached {
                println!("{}  from {}  as {}: {}", key.resource, key.issuer, key.client_id, describe(&tokens));
            }
        }
        AgentCommand::Inspect { token } => {
            let agent = build(identity, Mode::Auto, false)?;
            let token = read_token(&token)?;
            let inspection = mandate_agent::inspect::inspect(agent.http(), &token).await?;
            let now = now();
            print!("{}", inspection.render(now));
            if let Err(why) = inspection.signature {
                bail!("the signature is not verified: {why}");
            }
        }
    }
    Ok(())
}
