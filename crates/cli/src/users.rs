//! `mandate users`: the people who sign in, kept in the database the configuration names.
//! Passwords are read without echo (or as one line from stdin) and stored only as argon2id hashes.

use std::fmt;
use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use mandate_core::password::hash_password;
use mandate_core::{Clock as _, SystemClock, SystemRandom, User};
use mandate_server::config::Settings;
use mandate_store::Store;

/// Longest username accepted, in characters.
const MAX_USERNAME_CHARS: usize = 128;
/// Shortest password accepted, in characters.
const MIN_PASSWORD_CHARS: usize = 8;

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is prompted for twice, or read as one line from stdin.
    Add {
        /// Non-empty, without surrounding spaces or control characters, at most 128 characters.
        username: String,
        /// Returned as the `email` claim when a client is granted the `email` scope.
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        password: PasswordSource,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List every user: username, email and whether the account is disabled.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Refuse the user's future sign-ins and refreshes; access tokens already issued are not
    /// revoked and expire on their own.
    Disable {
        /// An existing username.
        username: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Allow a disabled user to sign in again.
    Enable {
        /// An existing username.
        username: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Replace a user's password; prompted for twice, or read as one line from stdin.
    ///
    /// For a user listed in the configuration's [[users]], `mandate serve` puts the configured
    /// password back at its next start unless the two are the same.
    SetPassword {
        /// An existing username.
        username: String,
        #[command(flatten)]
        password: PasswordSource,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Args)]
pub struct ConfigArg {
    /// The server's TOML configuration (required), naming the database; that database must exist.
    #[arg(long, short, env = "MANDATE_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Args)]
pub struct PasswordSource {
    /// Read the password as one line from stdin instead of prompting on the terminal.
    #[arg(long)]
    password_stdin: bool,
}

/// A username as stored: non-empty, without surrounding whitespace or control characters, at most
/// 128 characters.
struct Username(String);

impl Username {
    fn parse(raw: String) -> anyhow::Result<Self> {
        if raw.is_empty() {
            bail!("the username is empty");
        }
        if raw.trim() != raw {
            bail!("the username {raw:?} has leading or trailing whitespace");
        }
        // Control characters would let a name rewrite the terminal when listed.
        if raw.chars().any(char::is_control) {
            bail!("the username {raw:?} contains control characters");
        }
        if raw.chars().count() > MAX_USERNAME_CHARS {
            bail!("the username is longer than {MAX_USERNAME_CHARS} characters");
        }
        Ok(Self(raw))
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The account of a command that acts on one user, opened after the name is checked.
struct Target {
    username: Username,
    config: PathBuf,
    settings: Settings,
    store: std::sync::Arc<dyn Store>,
}

impl Target {
    async fn open(username: String, config: ConfigArg, command: &str) -> anyhow::Result<Self> {
        let username = Username::parse(username)?;
        let opened = crate::database::open(config.config.as_deref(), command).await?;
        Ok(Self { username, config: opened.config, settings: opened.settings, store: opened.store })
    }

    async fn find(&self) -> anyhow::Result<Option<User>> {
        self.store.get_user(&self.username.0).await.with_context(|| format!("cannot read user {}", self.username))
    }

    async fn existing(&self) -> anyhow::Result<User> {
        self.find().await?.with_context(|| format!("no user named {:?}", self.username.0))
    }

    async fn save(&self, user: &User) -> anyhow::Result<()> {
        self.store
            .put_user(user, SystemClock.now())
            .await
            .with_context(|| format!("cannot save user {}", self.username))
    }

    /// Config as code: `mandate serve` writes each `[[users]]` entry back at start.
    fn warn_if_configured(&self, what_returns: &str) {
        if self.settings.users.iter().any(|u| u.username == self.username.0) {
            let file = self.config.display();
            eprintln!(
                "warning: {} is listed in [[users]] of {file}; at its next start with that file, `mandate serve` {what_returns}",
                self.username
            );
        }
    }
}

pub async fn run(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Add { username, email, password, config } => {
            if email.as_deref().is_some_and(|e| e.trim().is_empty()) {
                bail!("the email is empty");
            }
            let target = Target::open(username, config, "users add").await?;
            if target.find().await?.is_some() {
                bail!(
                    "user {} already exists; use `mandate users set-password` to change its password",
                    target.username
                );
            }
            target.warn_if_configured("writes the configured password, email and disabled flag over this account");
            let password_hash = new_password_hash(password).await?;
            let user = User { username: target.username.0.clone(), password_hash, email, disabled: false };
            target.save(&user).await?;
            println!("user {} added", target.username);
            Ok(())
        }
        UsersCommand::List { config } => {
            let store = crate::database::open(config.config.as_deref(), "users list").await?.store;
            let users = store.list_users().await.context("cannot list users")?;
            print!("{}", user_table(&users));
            Ok(())
        }
        UsersCommand::Disable { username, config } => {
            set_disabled(Target::open(username, config, "users disable").await?, true).await
        }
        UsersCommand::Enable { username, config } => {
            set_disabled(Target::open(username, config, "users enable").await?, false).await
        }
        UsersCommand::SetPassword { username, password, config } => {
            let target = Target::open(username, config, "users set-password").await?;
            let mut user = target.existing().await?;
            target.warn_if_configured("puts the configured password back unless it is this one");
            user.password_hash = new_password_hash(password).await?;
            target.save(&user).await?;
            println!("password of user {} changed", target.username);
            Ok(())
        }
    }
}

async fn set_disabled(target: Target, disabled: bool) -> anyhow::Result<()> {
    let mut user = target.existing().await?;
    target.warn_if_configured("puts the configured disabled flag back");
    let name = &target.username;
    if user.disabled == disabled {
        println!("user {name} was already {}", if disabled { "disabled" } else { "enabled" });
        return Ok(());
    }
    user.disabled = disabled;
    target.save(&user).await?;
    if disabled {
        println!(
            "user {name} disabled: sign-ins and refreshes are refused; access tokens already issued expire on their own"
        );
    } else {
        println!("user {name} enabled");
    }
    Ok(())
}

/// Reads and checks a password, then hashes it off the async executor (argon2id is slow on purpose).
async fn new_password_hash(source: PasswordSource) -> anyhow::Result<String> {
    let password = tokio::task::spawn_blocking(move || read_password(source)).await??;
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password, &SystemRandom::new())).await?;
    Ok(password_hash)
}

/// `--password-stdin`, or a twice-typed prompt on a terminal, or else one line of stdin.
fn read_password(source: PasswordSource) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let password = if !source.password_stdin && stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password from the terminal")?;
        let second =
            rpassword::prompt_password("Repeat password: ").context("cannot read the password from the terminal")?;
        if first != second {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).context("cannot read the password from stdin")?;
        let without_newline = line.strip_suffix('\n').map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
        without_newline.to_owned()
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("the password is shorter than {MIN_PASSWORD_CHARS} characters");
    }
    Ok(password)
}

/// A header and one aligned line per user.
fn user_table(users: &[User]) -> String {
    let rows: Vec<[&str; 3]> = users
        .iter()
        .map(|u| {
            [u.username.as_str(), u.email.as_deref().unwrap_or("-"), if u.disabled { "disabled" } else { "active" }]
        })
        .collect();
    let header = ["USERNAME", "EMAIL", "STATUS"];
    let width = |col: usize| rows.iter().map(|r| r[col].chars().count()).chain([header[col].len()]).max().unwrap_or(0);
    let (name_width, email_width) = (width(0), width(1));
    std::iter::once(header)
        .chain(rows.iter().copied())
        .map(|[name, email, status]| format!("{name:<name_width$}  {email:<email_width$}  {status}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_checked() {
        assert!(Username::parse("alice".into()).is_ok());
        assert!(Username::parse("a".repeat(MAX_USERNAME_CHARS)).is_ok());
        for bad in ["", " alice", "alice\t", "al\nice", &"a".repeat(MAX_USERNAME_CHARS + 1)] {
            assert!(Username::parse(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_table_is_aligned() {
        let user = |name: &str, email: Option<&str>, disabled| User {
            username: name.into(),
            password_hash: String::new(),
            email: email.map(Into::into),
            disabled,
        };
        let table = user_table(&[user("alice", Some("alice@example.com"), false), user("bo", None, true)]);
        assert_eq!(
            table,
            "USERNAME  EMAIL              STATUS\n\
             alice     alice@example.com  active\n\
             bo        -                  disabled\n"
        );
    }
}
