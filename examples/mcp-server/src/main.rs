//! `example-mcp-server`: the example MCP server, protected by a mandate authorization server.
//! Arguments, logging and the listener live here; the server is in the library.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "example-mcp-server", version, about = "An MCP server protected by mandate (MCP authorization)")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "EXAMPLE_MCP_LISTEN", default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// The authorization server (mandate) whose tokens are accepted: its issuer URL.
    #[arg(long, env = "EXAMPLE_MCP_ISSUER", default_value = "http://127.0.0.1:8080")]
    issuer: String,
    /// This server's canonical URI: the MCP endpoint's URL as clients reach it, and the audience
    /// of the tokens it accepts. Its path is where the endpoint is served.
    #[arg(long, env = "EXAMPLE_MCP_RESOURCE", default_value = "http://127.0.0.1:9090/mcp")]
    resource: String,
    /// Log lines as text or JSON (RUST_LOG filters them).
    #[arg(long, env = "EXAMPLE_MCP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("example-mcp-server: error: {}", format!("{e:#}").replace('\n', "; "));
    ExitCode::FAILURE
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let rs = example_mcp_server::resource_server(&args.issuer, &args.resource).context("invalid settings")?;
    let shutdown = CancellationToken::new();
    let app = example_mcp_server::app(&rs, shutdown.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, issuer = %rs.issuer(), resource = %rs.resource(),
        metadata = %rs.metadata_url(), "example MCP server started");

    // Until the issuer's keys are loaded (the library retries with backoff) requests get 503;
    // say once when that is over.
    let watch = rs.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        while !watch.is_ready() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.cancelled() => return,
            }
        }
        tracing::info!(issuer = %watch.issuer(), "the authorization server's keys are loaded: ready");
    });

    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            stop.cancel();
        })
        .await
        .context("the server stopped")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
