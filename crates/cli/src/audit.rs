//! `mandate audit`: a token's chain of custody, and the kill switch, straight from the database
//! the configuration names (every instance shares it, so a revocation here holds everywhere).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use mandate_core::{Clock as _, SystemClock};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Print the lineage of a token (by its jti): the person's grant, then every token exchanged
    /// from it, with clients, audiences, scopes and acting agents.
    Lineage {
        jti: String,
        /// JSON instead of the tree.
        #[arg(long)]
        json: bool,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Revoke a token and everything exchanged from it (the kill switch for a misbehaving agent
    /// chain); introspection and token exchange refuse them on every instance at once.
    Revoke {
        jti: String,
        #[arg(long, short)]
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
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    let config = match &command {
        AuditCommand::Lineage { config, .. }
        | AuditCommand::Revoke { config, .. }
        | AuditCommand::Tokens { config, .. } => config,
    };
    let settings = crate::settings(config.as_deref())?;
    let store = mandate_server::app::open_store(&settings.database).await?;
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
        AuditCommand::Revoke { jti, .. } => {
            let Some(affected) =
                mandate_server::lineage::revoke_subtree(store.as_ref(), jti, "mandate audit revoke", now)
                    .await
                    .map_err(|e| anyhow::anyhow!(e.description))?
            else {
                bail!("no token with jti {jti} is on record");
            };
            println!("revoked {jti} and everything exchanged from it: {affected} live token(s)");
        }
    }
    Ok(())
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
