//! The database of an admin command (`keys`, `users`, `audit`): named by a configuration the
//! operator gives, opened only if it is already mandate's, and said on stderr. `mandate serve`
//! creates and migrates a database; nothing else does, so a command run in the wrong directory
//! or with a missing `--config` fails instead of reporting on a fresh, empty database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use mandate_server::config::{DatabaseUrl, Settings};
use mandate_store::Store;
use mandate_store_pg::PgStore;
use mandate_store_sqlite::SqliteStore;

/// The settings and the opened database of an admin command.
pub struct AdminDatabase {
    pub config: PathBuf,
    pub settings: Settings,
    pub store: Arc<dyn Store>,
}

/// Loads the configuration `config` (required: from `--config` or `MANDATE_CONFIG`) and opens the
/// database it names, which must exist; prints which database that is.
pub async fn open(config: Option<&Path>, command: &str) -> anyhow::Result<AdminDatabase> {
    let Some(config) = config else {
        anyhow::bail!(
            "`mandate {command}` works on the server's database: name the server's configuration with --config FILE \
             or MANDATE_CONFIG (without one, no database is opened or created)"
        );
    };
    let settings = crate::settings(Some(config))?;
    let shown = shown(&settings.database);
    let store: Arc<dyn Store> = match &settings.database {
        DatabaseUrl::Sqlite(url) => Arc::new(SqliteStore::open_existing(url).await.with_context(|| not_there(config))?),
        DatabaseUrl::Postgres(url) => {
            Arc::new(PgStore::open_existing(url, Default::default()).await.with_context(|| not_there(config))?)
        }
    };
    eprintln!("database: {shown} (from {})", config.display());
    Ok(AdminDatabase { config: config.to_owned(), settings, store })
}

fn not_there(config: &Path) -> String {
    format!(
        "the database named by {} is not usable; check `database` there (or MANDATE_DATABASE), or start `mandate serve` \
         with it once to create it",
        config.display()
    )
}

/// The database as an operator needs to see it: an SQLite file by its absolute path (a relative
/// one depends on the working directory), a PostgreSQL URL without its password.
fn shown(database: &DatabaseUrl) -> String {
    match database {
        DatabaseUrl::Sqlite(url) => match mandate_store_sqlite::database_file(url).map(std::path::absolute) {
            Ok(Ok(file)) => format!("SQLite {}", file.display()),
            _ => database.redacted(),
        },
        // Neither the password nor the query (which may carry `password=` or key paths).
        DatabaseUrl::Postgres(url) => match url::Url::parse(url) {
            Ok(mut parsed) => {
                if parsed.password().is_some() {
                    let _ = parsed.set_password(Some("***"));
                }
                parsed.set_query(None);
                format!("PostgreSQL {parsed}")
            }
            Err(_) => "PostgreSQL (an unparsable URL)".to_owned(),
        },
    }
}
