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
}

pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    let (jti, config) = match &command {
        AuditCommand::Lineage { jti, config, .. } | AuditCommand::Revoke { jti, config } => (jti, config),
    };
    let settings = crate::settings(config.as_deref())?;
    let store = mandate_server::app::open_store(&settings.database).await?;
    let now = SystemClock.now();
    match command {
        AuditCommand::Lineage { json, .. } => {
            let lineage = mandate_server::lineage::of(store.as_ref(), jti)
                .await
                .map_err(|e| anyhow::anyhow!(e.description))?
                .with_context(|| format!("no token with jti {jti} is on record"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&lineage)?);
            } else {
                print!("{}", lineage.render_text(now));
            }
        }
        AuditCommand::Revoke { .. } => {
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
