//! The `mandate` binary as operators use it: config checks, start-up failures as one clear line,
//! key rotation from the command line reaching a running server, logs free of secrets, and user
//! administration on SQLite and PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_mandate");
const SECRET: &str = "cli-test-agent-secret-0123456789abcdefghijk";
const MCP: &str = "http://127.0.0.1:9090/mcp";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mandate(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("RUST_LOG").output().unwrap()
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().map(str::to_owned).collect()
}

/// The failure is one line, the last, naming the cause.
fn assert_one_error_line(out: &Output, needle: &str) -> String {
    assert!(!out.status.success(), "should fail: {out:?}");
    let lines = stderr_lines(out);
    let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("mandate: error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {lines:?}");
    assert_eq!(lines.last(), Some(errors[0]), "the error line comes last: {lines:?}");
    assert!(errors[0].contains(needle), "{:?} should name {needle:?}", errors[0]);
    errors[0].clone()
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("mandate.toml");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn check_config_accepts_the_quickstart() {
    let file = repo_root().join("examples/quickstart.toml");
    let out = mandate(&["check-config", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(": ok (issuer http://127.0.0.1:8080, 1 resources, 3 clients, 1 users"), "{stdout}");
}

#[test]
fn check_config_names_the_offending_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[tokens]\naccess_token_ttl = \"forever\"\n", "tokens.access_token_ttl"),
        ("bogus = 1\n", "bogus"),
        ("listen = \"nowhere\"\n", "listen"),
        (
            "[[clients]]\nclient_id = \"a\"\nclient_secret = \"x\"\nclient_secret_hash = \"sha256:x\"\n",
            "clients[0].client_secret",
        ),
        ("[[users]]\nusername = \"bob\"\npassword_hash = \"plain\"\n", "users[0].password_hash"),
    ];
    for (body, key) in cases {
        let file = write_config(dir.path(), body);
        assert_one_error_line(&mandate(&["check-config", file.to_str().unwrap()]), key);
    }
    let missing = dir.path().join("absent.toml");
    assert_one_error_line(&mandate(&["check-config", missing.to_str().unwrap()]), "absent.toml");
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), "listen = \"127.0.0.1:8080\"\n");
    let out = Command::new(BIN)
        .args(["check-config", file.to_str().unwrap()])
        .env("MANDATE_ISSUER", "https://auth.example.com/tenant")
        .env("MANDATE_TOKENS__ACCESS_TOKEN_TTL", "2m")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("issuer https://auth.example.com/tenant"));
    let out = Command::new(BIN)
        .args(["check-config", file.to_str().unwrap()])
        .env("MANDATE_TOKENS__ACCESS_TOKEN_TTL", "never")
        .output()
        .unwrap();
    assert_one_error_line(&out, "tokens.access_token_ttl");
}

#[test]
fn an_unusable_database_stops_the_start_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("postgres://postgres@127.0.0.1:1/mandate", "cannot connect to PostgreSQL at 127.0.0.1:1/mandate"),
        ("sqlite:///proc/mandate-cannot-be-here/x.db", "/proc/mandate-cannot-be-here"),
    ];
    for (database, needle) in cases {
        let file = write_config(dir.path(), &format!("listen = \"127.0.0.1:0\"\ndatabase = \"{database}\"\n"));
        let out = mandate(&["serve", "--config", file.to_str().unwrap()]);
        assert_one_error_line(&out, needle);
    }
}

#[test]
fn secret_generate_prints_a_256_bit_secret_and_its_digest() {
    let out = mandate(&["secret", "generate"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let value = |key: &str| -> String {
        let line = text.lines().find(|l| l.starts_with(key)).unwrap();
        line.split('"').nth(1).unwrap().to_owned()
    };
    let secret = value("client_secret ");
    assert_eq!(secret.len(), 43, "32 random bytes, base64url");
    let digest = mandate_core::SecretDigest::parse(&value("client_secret_hash")).unwrap();
    assert!(digest.verify(&secret));
}

struct Server {
    child: Child,
    base: String,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(extra_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let config = write_config(
            dir.path(),
            &format!(
                "issuer = \"{base}\"\nlisten = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{}/m.db\"\n[keys]\nrefresh_interval = \"1s\"\n\
                 [[resources]]\nuri = \"{MCP}\"\nscopes = [\"tools:read\"]\n\
                 [[clients]]\nclient_id = \"agent\"\nclient_secret = \"{SECRET}\"\nscopes = [\"tools:read\"]\n\
                 [[clients]]\nclient_id = \"poster\"\nclient_secret = \"{SECRET}\"\ntoken_endpoint_auth_method = \"client_secret_post\"\nscopes = [\"tools:read\"]\n",
                dir.path().display()
            ),
        );
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config", config.to_str().unwrap()]).stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let server = Self { child, base, config, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{}/healthz", server.base)).await.is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    async fn token(&self) -> String {
        let res = reqwest::Client::new()
            .post(format!("{}/token", self.base))
            .basic_auth("agent", Some(SECRET))
            .form(&[("grant_type", "client_credentials"), ("resource", MCP)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    }

    async fn kids(&self) -> Vec<String> {
        let v: Value = reqwest::get(format!("{}/jwks.json", self.base)).await.unwrap().json().await.unwrap();
        v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
    }

    /// Stops with SIGTERM (a graceful shutdown) and returns what it logged.
    fn stop(mut self) -> String {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let out = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap()).wait_with_output().unwrap();
        assert!(out.status.success(), "graceful shutdown exits 0: {out:?}");
        String::from_utf8_lossy(&out.stderr).to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test]
async fn keys_rotate_reaches_a_running_server() {
    let server = Server::start(&[]).await;
    let before = server.kids().await;
    assert_eq!(before.len(), 1);
    let out = mandate(&["keys", "rotate", "--config", server.config.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(printed.contains("new active key"), "{printed}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = server.kids().await;
        if kids.len() == 2 {
            assert_eq!(kids[1], before[0], "the old key stays published after the new one");
            assert!(printed.contains(&kids[0]));
            break;
        }
        assert!(Instant::now() < deadline, "rotation not picked up: {kids:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let token = server.token().await;
    let header = token.split('.').next().unwrap();
    use base64::Engine as _;
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_ne!(header["kid"], before[0].as_str(), "new tokens are signed with the new key");
}

#[tokio::test]
async fn logs_never_contain_secrets_or_tokens() {
    let server = Server::start(&[("RUST_LOG", "debug"), ("MANDATE_LOG_FORMAT", "json")]).await;
    let http = reqwest::Client::new();
    let token = server.token().await;
    let body_auth =
        [("grant_type", "client_credentials"), ("resource", MCP), ("client_id", "poster"), ("client_secret", SECRET)];
    assert_eq!(http.post(format!("{}/token", server.base)).form(&body_auth).send().await.unwrap().status(), 200);
    http.post(format!("{}/token?client_secret={SECRET}", server.base))
        .basic_auth("agent", Some("wrong-secret-value"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    http.post(format!("{}/introspect", server.base))
        .basic_auth("agent", Some(SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    http.post(format!("{}/revoke", server.base))
        .basic_auth("agent", Some(SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    let logs = server.stop();
    assert!(logs.contains("token issued"), "logs are written: {logs}");
    assert!(logs.lines().all(|l| l.starts_with('{')), "json log lines");
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("agent:{SECRET}"));
    for secret in [SECRET, token.as_str(), basic.as_str(), "wrong-secret-value", token.split('.').nth(2).unwrap()] {
        assert!(!logs.contains(secret), "a secret or token leaked into the logs");
    }
}

/// `mandate users …` against a fresh database, as an operator runs it.
mod users {
    use std::io::Write as _;

    use mandate_core::User;
    use mandate_core::password::verify_password;

    use super::*;

    use crate::common::Backend;

    crate::on_both_backends!(
        added_users_are_listed,
        an_existing_username_is_refused,
        short_or_empty_passwords_are_refused,
        disabled_users_are_listed_as_disabled,
        set_password_replaces_the_hash,
        unknown_users_are_errors,
    );

    const PASSWORD: &str = "correct horse battery";

    /// A configuration file naming a fresh, migrated database, with `extra` TOML appended.
    struct Deployment {
        config: PathBuf,
        _dir: tempfile::TempDir,
    }

    impl Deployment {
        async fn new(backend: Backend, extra: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let database = match backend {
                Backend::Sqlite => format!("sqlite://{}/m.db", dir.path().display()),
                Backend::Postgres => mandate_store_pg::testing::fresh_database().await,
            };
            let config = write_config(dir.path(), &format!("database = \"{database}\"\n{extra}"));
            // Admin commands never create a database: `mandate serve` does, at its first start.
            let settings = mandate_server::config::load(Some(&config)).unwrap();
            mandate_server::app::open_store(&settings.database).await.unwrap();
            Self { config, _dir: dir }
        }

        /// Runs `mandate users <args> --config <file>` with `stdin` piped in.
        fn users(&self, args: &[&str], stdin: &str) -> Output {
            let mut child = Command::new(BIN)
                .arg("users")
                .args(args)
                .arg("--config")
                .arg(&self.config)
                .env_remove("RUST_LOG")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // The command may exit before reading (e.g. an unknown user); a closed pipe is fine.
            let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
            child.wait_with_output().unwrap()
        }

        fn ok(&self, args: &[&str], stdin: &str) -> String {
            let out = self.users(args, stdin);
            assert!(out.status.success(), "{args:?} should succeed: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        }

        fn list(&self) -> Vec<String> {
            self.ok(&["list"], "").lines().map(str::to_owned).collect()
        }

        /// The stored row, read the way the server reads it.
        async fn stored(&self, username: &str) -> Option<User> {
            let settings = mandate_server::config::load(Some(&self.config)).unwrap();
            let store = mandate_server::app::open_store(&settings.database).await.unwrap();
            store.get_user(username).await.unwrap()
        }
    }

    fn columns(line: &str) -> Vec<&str> {
        line.split_whitespace().collect()
    }

    async fn added_users_are_listed(backend: Backend) {
        let d = Deployment::new(backend, "").await;
        let printed =
            d.ok(&["add", "alice", "--email", "alice@example.com", "--password-stdin"], &format!("{PASSWORD}\n"));
        assert_eq!(printed, "user alice added\n");
        // Without the flag and without a terminal, one line of stdin is the password too.
        assert!(!d.ok(&["add", "bo"], &format!("{PASSWORD}\r\n")).contains(PASSWORD));

        let lines = d.list();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(columns(&lines[0]), ["USERNAME", "EMAIL", "STATUS"]);
        assert_eq!(columns(&lines[1]), ["alice", "alice@example.com", "active"]);
        assert_eq!(columns(&lines[2]), ["bo", "-", "active"]);
        let starts = |line: &str| -> Vec<usize> { columns(line).iter().map(|c| line.find(c).unwrap()).collect() };
        assert!(lines.iter().all(|l| starts(l) == starts(&lines[0])), "aligned columns: {lines:?}");

        for name in ["alice", "bo"] {
            let user = d.stored(name).await.unwrap();
            assert!(user.password_hash.starts_with("$argon2id$"), "{}", user.password_hash);
            assert!(verify_password(PASSWORD, &user.password_hash), "the newline is not part of {name}'s password");
        }
    }

    async fn an_existing_username_is_refused(backend: Backend) {
        let d = Deployment::new(backend, "").await;
        d.ok(&["add", "alice", "--password-stdin"], &format!("{PASSWORD}\n"));
        let out = d.users(&["add", "alice", "--password-stdin"], "another password\n");
        assert_one_error_line(&out, "user alice already exists");
        let kept = d.stored("alice").await.unwrap();
        assert!(verify_password(PASSWORD, &kept.password_hash), "the first password still stands");
    }

    async fn short_or_empty_passwords_are_refused(backend: Backend) {
        let d = Deployment::new(backend, "").await;
        // Seven characters but fourteen bytes: the minimum counts characters.
        assert_one_error_line(
            &d.users(&["add", "alice", "--password-stdin"], "ééééééé\n"),
            "shorter than 8 characters",
        );
        assert_one_error_line(&d.users(&["add", "alice", "--password-stdin"], "\n"), "the password is empty");
        assert_one_error_line(&d.users(&["add", "alice"], ""), "the password is empty");
        assert_eq!(d.list().len(), 1, "nothing was added");
        d.ok(&["add", "alice", "--password-stdin"], "éééééééé\n");
        assert!(d.stored("alice").await.is_some(), "eight characters are enough");
    }

    async fn disabled_users_are_listed_as_disabled(backend: Backend) {
        let d = Deployment::new(backend, "").await;
        d.ok(&["add", "alice", "--password-stdin"], &format!("{PASSWORD}\n"));
        let printed = d.ok(&["disable", "alice"], "");
        assert!(printed.contains("sign-ins and refreshes are refused"), "{printed}");
        assert_eq!(columns(&d.list()[1]), ["alice", "-", "disabled"]);
        assert!(d.stored("alice").await.unwrap().disabled);
        d.ok(&["enable", "alice"], "");
        assert_eq!(columns(&d.list()[1]), ["alice", "-", "active"]);
        assert!(!d.stored("alice").await.unwrap().disabled);
    }

    async fn set_password_replaces_the_hash(backend: Backend) {
        let d = Deployment::new(backend, "").await;
        d.ok(&["add", "alice", "--email", "a@example.com", "--password-stdin"], &format!("{PASSWORD}\n"));
        d.ok(&["disable", "alice"], "");
        let printed = d.ok(&["set-password", "alice", "--password-stdin"], "a new passphrase\n");
        assert!(!printed.contains("a new passphrase"), "{printed}");
        let user = d.stored("alice").await.unwrap();
        assert!(verify_password("a new passphrase", &user.password_hash));
        assert!(!verify_password(PASSWORD, &user.password_hash), "the old password no longer works");
        assert_eq!((user.email.as_deref(), user.disabled), (Some("a@example.com"), true), "the rest is kept");
        assert_one_error_line(&d.users(&["set-password", "alice", "--password-stdin"], "short\n"), "shorter than 8");
        assert!(verify_password("a new passphrase", &d.stored("alice").await.unwrap().password_hash));
    }

    async fn unknown_users_are_errors(backend: Backend) {
        let d = Deployment::new(backend, "").await;
        d.ok(&["add", "alice", "--password-stdin"], &format!("{PASSWORD}\n"));
        let commands: [&[&str]; 3] =
            [&["disable", "ghost"], &["enable", "ghost"], &["set-password", "ghost", "--password-stdin"]];
        for args in commands {
            assert_one_error_line(&d.users(args, &format!("{PASSWORD}\n")), "no user named \"ghost\"");
        }
        assert!(d.stored("ghost").await.is_none(), "set-password does not create users");
    }

    #[tokio::test]
    async fn usernames_are_checked() {
        let d = Deployment::new(Backend::Sqlite, "").await;
        let long = "a".repeat(129);
        for (name, needle) in [
            ("", "the username is empty"),
            (" alice", "leading or trailing whitespace"),
            ("alice\t", "leading or trailing whitespace"),
            (long.as_str(), "longer than 128 characters"),
        ] {
            assert_one_error_line(&d.users(&["add", name, "--password-stdin"], &format!("{PASSWORD}\n")), needle);
        }
        assert_eq!(d.list().len(), 1, "nothing was added");
        d.ok(&["add", &"a".repeat(128), "--password-stdin"], &format!("{PASSWORD}\n"));
    }

    #[tokio::test]
    async fn changing_a_configured_user_warns_that_the_config_wins() {
        let hash = mandate_core::password::hash_password(PASSWORD, &mandate_core::SystemRandom::new());
        let d =
            Deployment::new(Backend::Sqlite, &format!("[[users]]\nusername = \"carol\"\npassword_hash = \"{hash}\"\n"))
                .await;
        d.ok(&["add", "dave", "--password-stdin"], &format!("{PASSWORD}\n"));
        let warning = |out: &Output| stderr_lines(out).into_iter().find(|l| l.starts_with("warning:"));
        let out = d.users(&["set-password", "dave", "--password-stdin"], "a new passphrase\n");
        assert!(out.status.success() && warning(&out).is_none(), "dave is not in the file: {out:?}");
        // carol reaches the database at the first start; the command works on her row afterwards.
        d.ok(&["add", "carol", "--password-stdin"], &format!("{PASSWORD}\n"));
        let out = d.users(&["set-password", "carol", "--password-stdin"], "a new passphrase\n");
        assert!(out.status.success(), "{out:?}");
        let line = warning(&out).expect("a warning for a configured user");
        assert!(line.contains("carol") && line.contains("[[users]]") && line.contains("mandate serve"), "{line}");
        let help = String::from_utf8(mandate(&["users", "--help"]).stdout).unwrap();
        assert!(help.contains("[[users]]") && help.contains("config as code"), "{help}");
    }
}
