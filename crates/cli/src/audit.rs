//! `mandate audit`: a token's chain of custody, and the kill switches (a token's chain, a grant, every
//! grant of a person for a client), straight from the database the configuration names (every
//! instance shares it, so a revocation here holds everywhere).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use mandate_core::{Clock as _, SystemClock};
use mandate_server::lineage::{GrantsOf, Revocation};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Print the lineage of a token (by its jti): the person's grant, then every token exchanged
    /// from it, with clients, audiences, scopes and acting agents.
    Lineage {
        /// A token's jti (it may start with '-').
        #[arg(allow_hyphen_values = true)]
        jti: String,
        /// JSON instead of the tree.
        #[arg(long)]
        json: bool,
        /// The server's TOML configuration (required); its database must exist.
        #[arg(long, short, env = "MANDATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The kill switch, on every instance at once. A grant id (as `audit lineage` prints it), or
    /// --user with --client, revokes the person's grant: its refresh tokens are refused and every
    /// token from it fails introspection, so the agent is cut off. A token's jti revokes that
    /// token and everything exchanged from it, but not its grant: the client can still refresh.
    #[command(group = clap::ArgGroup::new("target").required(true).args(["id", "user"]))]
    Revoke {
        /// A grant id (also as grant:ID), or a token's jti (either may start with '-').
        #[arg(allow_hyphen_values = true)]
        id: Option<String>,
        /// Revoke every grant this person gave the client named by --client.
        #[arg(long, requires = "client", conflicts_with = "id", value_name = "USERNAME")]
        user: Option<String>,
        /// The client (agent) whose grants from --user are revoked.
        #[arg(long, requires = "user", value_name = "CLIENT_ID")]
        client: Option<String>,
        /// The server's TOML configuration (required); its database must exist.
        #[arg(long, short, env = "MANDATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List the newest tokens issued for a person (or a client acting for itself), with their
    /// state: where to start when an agent misbehaves on someone's behalf.
    Tokens {
        subject: String,
        /// How many, newest first (1 to 500).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// The server's TOML configuration (required); its database must exist.
        #[arg(long, short, env = "MANDATE_CONFIG")]
        config: Option<PathBuf>,
    },
}

pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    let (config, name) = match &command {
        AuditCommand::Lineage { config, .. } => (config, "audit lineage"),
        AuditCommand::Revoke { config, .. } => (config, "audit revoke"),
        AuditCommand::Tokens { config, .. } => (config, "audit tokens"),
    };
    let store = crate::database::open(config.as_deref(), name).await?.store;
    let now = SystemClock.now();
    match &command {
        AuditCommand::Tokens { subject, limit, json, .. } => {
            let tokens = mandate_server::lineage::tokens_of(store.as_ref(), subject, *limit, now)
                .await
                .map_err(|e| anyhow::anyhow!(e.description))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else if tokens.is_empty() {
                println!("no tokens on record for {subject}");
            } else {
                print!("{}", tokens_table(&tokens, now));
            }
        }
        AuditCommand::Lineage { jti, json, .. } => {
            let lineage = mandate_server::lineage::of(store.as_ref(), jti)
                .await
                .map_err(|e| anyhow::anyhow!(e.description))?
                .with_context(|| format!("no token with jti {jti} is on record"))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&lineage)?);
            } else {
                print!("{}", lineage.render_text(now));
            }
        }
        AuditCommand::Revoke { id: Some(id), .. } => {
            let revocation = mandate_server::lineage::revoke(store.as_ref(), id, BY, now)
                .await
                .map_err(|e| anyhow::anyhow!(e.description))?
                .with_context(|| format!("no token with jti {id} and no grant with id {id} is on record"))?;
            print!("{}", revocation_text(&revocation));
        }
        AuditCommand::Revoke { user: Some(user), client: Some(client), .. } => {
            let outcome = mandate_server::lineage::revoke_grants_of(store.as_ref(), user, client, BY, now)
                .await
                .map_err(|e| anyhow::anyhow!(e.description))?;
            match outcome {
                GrantsOf::Revoked(0) => {
                    println!("{user} has no live grant for {client}: nothing to revoke (all were revoked already)");
                }
                GrantsOf::Revoked(n) => println!(
                    "revoked {n} grant(s) of {user} for {client}: their refresh tokens are refused and every token \
                     issued from them fails introspection"
                ),
                GrantsOf::NoSuchUser => bail!("no user named {user:?} is on record; nothing was revoked"),
                GrantsOf::NoSuchClient => bail!("no client with id {client:?} is on record; nothing was revoked"),
            }
        }
        AuditCommand::Revoke { .. } => bail!("name a grant id or jti, or --user with --client"),
    }
    Ok(())
}

/// Who revocations from the command line are audited as.
const BY: &str = "mandate audit revoke";

/// What a revocation by id did, and for a token, whether its grant still lets the client refresh.
fn revocation_text(revocation: &Revocation) -> String {
    match revocation {
        Revocation::Grant(g) if g.was_live => format!(
            "revoked grant {} of {} for {}: its refresh tokens are refused and every token issued from it fails \
             introspection\n",
            g.grant_id, g.username, g.client_id
        ),
        Revocation::Grant(g) => {
            format!("grant {} of {} for {} was revoked already\n", g.grant_id, g.username, g.client_id)
        }
        Revocation::Subtree { jti, live_tokens_revoked, live_grant } => {
            let mut text =
                format!("revoked {jti} and everything exchanged from it: {live_tokens_revoked} live token(s)\n");
            if let Some(g) = live_grant {
                text.push_str(&format!(
                    "note: grant {} of {} for {} is still live: {} can refresh and get new tokens; \
                     `mandate audit revoke {}` cuts it off\n",
                    g.grant_id, g.username, g.client_id, g.client_id, g.grant_id
                ));
            }
            text
        }
    }
}

/// One line per token: state, jti, client (and actors), audience, scope, expiry.
fn tokens_table(tokens: &[mandate_server::lineage::TokenSummary], now: i64) -> String {
    let mut out = String::new();
    for t in tokens {
        let state = if t.revoked {
            "revoked"
        } else if t.expires_at <= now {
            "expired"
        } else {
            "live"
        };
        let by = if t.actors.is_empty() { t.client_id.clone() } else { t.actors.join(" ← ") };
        let when = if t.expires_at > now {
            format!("expires in {}s", t.expires_at - now)
        } else {
            format!("expired {}s ago", now - t.expires_at)
        };
        out.push_str(&format!(
            "{state:<8} {}  by {by}  for {}  scope {}  {when}\n",
            t.jti,
            t.audience,
            t.scope.as_deref().unwrap_or("-")
        ));
    }
    out
}
