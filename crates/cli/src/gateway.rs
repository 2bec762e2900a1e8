//! `mandate gateway`: the flags of mandate-gateway's reverse proxy, and running it until SIGTERM
//! or Ctrl-C. The upstream's credential may come from a flag, an environment variable or a
//! file; it is never logged or echoed in an error (clap gets plain strings, so its own errors
//! cannot quote one).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use mandate_gateway::{Gateway, GatewayConfig, Introspection, UpstreamHeader};
use mandate_server::config::LogFormat;

/// How long requests in flight may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Args)]
pub struct GatewayArgs {
    /// Address to listen on.
    #[arg(long, env = "MANDATE_GATEWAY_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The MCP server (or HTTP API) to forward to, e.g. http://127.0.0.1:3001/mcp.
    #[arg(long, env = "MANDATE_GATEWAY_UPSTREAM", value_name = "URL")]
    upstream: String,
    /// The authorization server whose tokens are accepted: mandate's issuer.
    #[arg(long, env = "MANDATE_GATEWAY_ISSUER", value_name = "URL")]
    issuer: String,
    /// The gateway's public URL, as agents reach it: the resource tokens must be issued for
    /// (register it in mandate's [[resources]]). Its path, and everything below, is forwarded.
    #[arg(long, env = "MANDATE_GATEWAY_RESOURCE", value_name = "URL")]
    resource: String,
    /// A scope every request needs (repeatable); also published as scopes_supported.
    #[arg(long = "scope", env = "MANDATE_GATEWAY_SCOPES", value_delimiter = ' ', value_name = "SCOPE")]
    scopes: Vec<String>,
    /// A scope one JSON-RPC method needs besides, e.g. 'tools/call=tools:call' (repeatable).
    /// With a method or tool scope, a body that cannot be read as plain UTF-8 JSON-RPC (a
    /// Content-Encoding, another charset, a BOM, a body on a method other than POST) is refused.
    #[arg(long = "method-scope", value_name = "METHOD=SCOPE")]
    method_scopes: Vec<String>,
    /// A scope one tool needs besides, e.g. 'delete_repo=repo:admin' (repeatable).
    #[arg(long = "tool-scope", value_name = "TOOL=SCOPE")]
    tool_scopes: Vec<String>,
    /// Refuse delegated tokens: those with an act claim (RFC 8693), used by an agent on someone
    /// else's behalf. They get 403 invalid_token.
    #[arg(long, env = "MANDATE_GATEWAY_REFUSE_DELEGATION")]
    refuse_delegation: bool,
    /// Refuse delegated tokens whose chain of actors (act) is longer than N.
    #[arg(long, env = "MANDATE_GATEWAY_MAX_DELEGATION_DEPTH", value_name = "N")]
    max_delegation_depth: Option<usize>,
    /// Accept a delegated token only if every actor of its chain is one of these client ids
    /// (the actor's sub; repeatable). Tokens without act are not affected.
    #[arg(
        long = "allowed-actor",
        env = "MANDATE_GATEWAY_ALLOWED_ACTORS",
        value_delimiter = ' ',
        value_name = "CLIENT_ID"
    )]
    allowed_actors: Vec<String>,
    /// A name for people, in the protected resource metadata.
    #[arg(long, env = "MANDATE_GATEWAY_RESOURCE_NAME", value_name = "NAME")]
    resource_name: Option<String>,
    /// A header for the upstream, e.g. 'X-Api-Key: sk-…' (repeatable). A flag shows in process
    /// listings: prefer --upstream-header-env or --upstream-header-file for secrets.
    #[arg(
        long = "upstream-header",
        env = "MANDATE_GATEWAY_UPSTREAM_HEADER",
        hide_env_values = true,
        value_name = "NAME: VALUE"
    )]
    upstream_headers: Vec<String>,
    /// A header for the upstream whose value is in an environment variable, e.g.
    /// 'X-Api-Key=UPSTREAM_API_KEY' (repeatable).
    #[arg(long = "upstream-header-env", value_name = "NAME=VARIABLE")]
    upstream_header_envs: Vec<String>,
    /// A header for the upstream whose value is a file's content (final newline removed), e.g.
    /// 'Authorization=/run/secrets/upstream' (repeatable).
    #[arg(long = "upstream-header-file", value_name = "NAME=PATH")]
    upstream_header_files: Vec<String>,
    /// Check tokens by introspection at the issuer (RFC 7662) as this client, instead of offline
    /// against its keys: a revocation then takes effect within --introspection-cache. The
    /// client's secret comes from --introspection-secret-env or --introspection-secret-file.
    #[arg(long, env = "MANDATE_GATEWAY_INTROSPECTION_CLIENT_ID", value_name = "CLIENT_ID")]
    introspection_client_id: Option<String>,
    /// The environment variable holding the introspection client's secret.
    #[arg(long, value_name = "VARIABLE")]
    introspection_secret_env: Option<String>,
    /// The file holding the introspection client's secret (final newline removed).
    #[arg(long, value_name = "PATH")]
    introspection_secret_file: Option<PathBuf>,
    /// How long an introspection answer is reused (at least 1s).
    #[arg(long, env = "MANDATE_GATEWAY_INTROSPECTION_CACHE", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    introspection_cache: Duration,
    /// How long connecting to the upstream may take.
    #[arg(long, env = "MANDATE_GATEWAY_CONNECT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    connect_timeout: Duration,
    /// How long the upstream may stay silent before answering or within a response (an SSE
    /// stream lasts as long as it keeps sending).
    #[arg(long, env = "MANDATE_GATEWAY_IDLE_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    idle_timeout: Duration,
    /// Log lines as text or JSON.
    #[arg(long, env = "MANDATE_GATEWAY_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn pairs(flag: &str, values: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((name, scope)) if !name.trim().is_empty() && !scope.trim().is_empty() => {
                Ok((name.trim().to_owned(), scope.trim().to_owned()))
            }
            _ => bail!("{flag} {v:?} must look like NAME=SCOPE"),
        })
        .collect()
}

fn introspection(
    client_id: Option<String>,
    env: Option<&str>,
    file: Option<&std::path::Path>,
    cache: Duration,
) -> anyhow::Result<Option<Introspection>> {
    let secret = match (env, file) {
        (Some(variable), None) => Some(
            std::env::var(variable)
                .with_context(|| format!("--introspection-secret-env: the variable {variable} is not set"))?,
        ),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--introspection-secret-file: cannot read {}", path.display()))?,
        ),
        (None, None) => None,
        (Some(_), Some(_)) => bail!("give --introspection-secret-env or --introspection-secret-file, not both"),
    };
    match (client_id, secret) {
        (Some(client_id), Some(secret)) if !secret.trim().is_empty() => {
            Ok(Some(Introspection { client_id, client_secret: secret.trim().to_owned(), cache }))
        }
        (Some(_), Some(_)) => bail!("the introspection client's secret is empty"),
        (Some(_), None) => {
            bail!("--introspection-client-id needs --introspection-secret-env or --introspection-secret-file")
        }
        (None, Some(_)) => bail!("an introspection secret was given without --introspection-client-id"),
        (None, None) => Ok(None),
    }
}

impl GatewayArgs {
    fn config(self) -> anyhow::Result<GatewayConfig> {
        let upstream = url::Url::parse(&self.upstream).context("--upstream is not a URL")?;
        let mut config = GatewayConfig::new(upstream, self.issuer, self.resource);
        config.scopes = self.scopes.into_iter().filter(|s| !s.is_empty()).collect();
        config.method_scopes = pairs("--method-scope", &self.method_scopes)?;
        config.tool_scopes = pairs("--tool-scope", &self.tool_scopes)?;
        config.resource_name = self.resource_name;
        if self.refuse_delegation && (self.max_delegation_depth.is_some() || !self.allowed_actors.is_empty()) {
            bail!(
                "--refuse-delegation refuses every delegated token: it cannot go with --max-delegation-depth or --allowed-actor"
            );
        }
        config.refuse_delegation = self.refuse_delegation;
        config.max_delegation_depth = self.max_delegation_depth;
        config.allowed_actors = self.allowed_actors.into_iter().filter(|a| !a.is_empty()).collect();
        config.introspection = introspection(
            self.introspection_client_id,
            self.introspection_secret_env.as_deref(),
            self.introspection_secret_file.as_deref(),
            self.introspection_cache,
        )?;
        config.connect_timeout = self.connect_timeout;
        config.idle_timeout = self.idle_timeout;
        for spec in &self.upstream_headers {
            config.upstream_headers.push(UpstreamHeader::parse(spec).context("--upstream-header")?);
        }
        for spec in &self.upstream_header_envs {
            let header = UpstreamHeader::from_env(spec, |v| std::env::var(v).ok());
            config.upstream_headers.push(header.context("--upstream-header-env")?);
        }
        for spec in &self.upstream_header_files {
            config.upstream_headers.push(UpstreamHeader::from_file(spec).context("--upstream-header-file")?);
        }
        Ok(config)
    }
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    crate::init_logging(match args.log_format {
        Format::Text => LogFormat::Text,
        Format::Json => LogFormat::Json,
    });
    let listen = args.listen;
    let config = args.config()?;
    let insecure = config.resource.starts_with("http://") && !is_loopback_url(&config.resource);
    let credentials: Vec<String> = config.upstream_headers.iter().map(|h| h.name().to_string()).collect();
    let gateway = Gateway::new(config).context("invalid gateway settings")?;
    if insecure {
        tracing::warn!("the resource URL is plain http: agents' tokens cross the network unencrypted");
    }
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(upstream_headers = ?credentials, "the upstream gets these headers from the gateway");
    let running = gateway.serve(listener)?;
    crate::shutdown_signal().await;
    tracing::info!("shutting down");
    if tokio::time::timeout(SHUTDOWN_GRACE, running.stop()).await.is_err() {
        tracing::warn!("requests still in flight after {}s were cut off", SHUTDOWN_GRACE.as_secs());
    }
    Ok(())
}

fn is_loopback_url(url: &str) -> bool {
    url::Url::parse(url).ok().and_then(|u| u.host().map(|h| h.to_owned())).is_some_and(|host| match host {
        url::Host::Domain(d) => d == "localhost",
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    })
}
