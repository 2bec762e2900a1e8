//! `mandate`: the authorization server, the gateway and the admin commands. Logic lives in the libraries;
//! this file parses arguments, sets up logging and turns errors into one clear line.

mod agent;
mod audit;
mod database;
mod gateway;
mod users;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mandate_core::{Clock as _, SystemClock, SystemRandom};
use mandate_server::config::{self, LogFormat};
use mandate_server::{Parts, keyring};

#[derive(Parser)]
#[command(name = "mandate", version, about = "The authorization layer for AI agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the authorization server.
    Serve {
        /// TOML configuration; without it, defaults and MANDATE_* variables apply.
        #[arg(long, short, env = "MANDATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Put OAuth in front of an HTTP MCP server that cannot be changed: a reverse proxy that
    /// checks mandate's tokens (resource, scopes), serves the protected resource metadata, and
    /// forwards to the upstream without the agent's token, with the upstream's own credential.
    Gateway(Box<gateway::GatewayArgs>),
    /// The agent side: sign in for an MCP server, print tokens for scripts, client credentials,
    /// token exchange, log out, and inspect tokens. Discovery, registration and the grants are
    /// mandate-agent's; nobody writes OAuth code.
    Agent(Box<agent::AgentArgs>),
    /// A token's chain of custody, and revoking a whole chain.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Check a configuration file (and MANDATE_* variables) without starting.
    CheckConfig { file: PathBuf },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Generate client secrets.
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
    },
    /// Manage the people who sign in, in the database the configuration names.
    ///
    /// Users listed in the configuration file's [[users]] follow that file on each start (config
    /// as code): `mandate serve` writes their password, email and disabled flag back, so a
    /// set-password, disable or enable on such a user is undone at the next start wherever the
    /// file says otherwise. These commands warn when the user is in the file given with --config.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new active signing key; old keys stay published until their tokens expire.
    Rotate {
        /// The server's TOML configuration (required); its database must exist.
        #[arg(long, short, env = "MANDATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List the published keys.
    List {
        /// The server's TOML configuration (required); its database must exist.
        #[arg(long, short, env = "MANDATE_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Print a new 256-bit client secret and the digest to put in `client_secret_hash`.
    Generate,
}

fn main() -> ExitCode {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// One line naming the cause, on stderr.
fn fail(e: &anyhow::Error) -> ExitCode {
    let line = format!("{e:#}").replace('\n', "; ");
    eprintln!("mandate: error: {line}");
    ExitCode::FAILURE
}

fn settings(path: Option<&Path>) -> anyhow::Result<config::Settings> {
    config::load(path).context("invalid configuration")
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Warnings only, unless RUST_LOG says otherwise: the agent's output is for people and scripts.
fn init_agent_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { config } => {
            let settings = settings(config.as_deref())?;
            init_logging(settings.log_format);
            let running = mandate_server::start(Parts::new(settings).await?).await?;
            shutdown_signal().await;
            tracing::info!("shutting down");
            running.stop().await;
            Ok(())
        }
        Command::Gateway(args) => gateway::run(*args).await,
        Command::Agent(args) => {
            init_agent_logging();
            agent::run(*args).await
        }
        Command::CheckConfig { file } => {
            let s = settings(Some(&file))?;
            for w in &s.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: ok (issuer {}, {} resources, {} clients, {} users, database {})",
                file.display(),
                s.issuer.as_str(),
                s.resources.len(),
                s.clients.len(),
                s.users.len(),
                s.database.redacted()
            );
            Ok(())
        }
        Command::Keys { command } => {
            let (config, rotate) = match command {
                KeysCommand::Rotate { config } => (config, true),
                KeysCommand::List { config } => (config, false),
            };
            let name = if rotate { "keys rotate" } else { "keys list" };
            let database::AdminDatabase { settings: s, store, .. } = database::open(config.as_deref(), name).await?;
            let now = SystemClock.now();
            if rotate {
                let kid = keyring::rotate(store.as_ref(), s.signing_algorithm, now, s.access_token_ttl).await?;
                println!(
                    "new active key {kid} ({}); running instances use it within {}s",
                    s.signing_algorithm,
                    s.key_refresh_interval.as_secs()
                );
            }
            for k in store.published_keys(now).await? {
                let status = match k.publish_until {
                    None => "active".to_owned(),
                    Some(until) => format!("retired, published for {} more seconds", until - now),
                };
                println!("{}\t{}\t{}", k.kid, k.alg, status);
            }
            Ok(())
        }
        Command::Secret { command: SecretCommand::Generate } => {
            let (secret, digest) = mandate_core::secret::generate_client_secret(&SystemRandom::new());
            println!("client_secret      = \"{secret}\"");
            println!("client_secret_hash = \"{}\"", digest.encode());
            Ok(())
        }
        Command::Users { command } => users::run(command).await,
        Command::Audit { command } => audit::run(command).await,
    }
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
