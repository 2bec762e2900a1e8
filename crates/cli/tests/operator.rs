//! Traps an operator trying mandate as a new user fell into (issue 15, items 15 to 17), through
//! the real binary: one environment holding every command's settings, admin commands that never
//! create a database and say which one they used, and cutting off an agent that acts for a
//! person by revoking the person's grant (its refresh tokens stop working).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mandate");
const MCP: &str = "http://127.0.0.1:9090/mcp";
const ALICE_PASSWORD: &str = "operator-test-alice-password";
const REDIRECT: &str = "http://127.0.0.1/callback";
/// RFC 7636 appendix B: this verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// Set in the PostgreSQL URL; trust authentication ignores it, and no output may show it.
const PG_PASSWORD: &str = "pg-password-never-printed";

use common::Backend;

on_both_backends!(admin_commands_never_create_a_database, an_operator_cuts_off_an_agent_by_revoking_its_grant);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The failure is one line, the last, naming the cause.
fn assert_one_error_line(out: &Output, needle: &str) {
    assert!(!out.status.success(), "should fail: {out:?}");
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("mandate: error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {stderr}");
    assert_eq!(stderr.lines().last(), Some(errors[0]), "the error line comes last: {stderr}");
    assert!(errors[0].contains(needle), "{:?} should name {needle:?}", errors[0]);
}

/// A configuration for `mandate serve` with alice and a public desktop agent that may refresh,
/// and (once started) the server.
struct Deployment {
    dir: tempfile::TempDir,
    config: PathBuf,
    issuer: String,
    /// What `database` says, as the operator wrote it.
    database: String,
    server: Option<Child>,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(child) = &mut self.server {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Deployment {
    async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let issuer = format!("http://127.0.0.1:{port}");
        let database = match backend {
            Backend::Sqlite => format!("sqlite://{}/data/m.db", dir.path().display()),
            Backend::Postgres => mandate_store_pg::testing::fresh_database().await.replacen(
                "postgres://postgres@",
                &format!("postgres://postgres:{PG_PASSWORD}@"),
                1,
            ),
        };
        let config = dir.path().join("mandate.toml");
        std::fs::write(
            &config,
            format!(
                r#"issuer = "{issuer}"
listen = "127.0.0.1:{port}"
database = "{database}"
[[users]]
username = "alice"
password = "{ALICE_PASSWORD}"
[[resources]]
uri = "{MCP}"
scopes = ["tools:read"]
[[clients]]
client_id = "desktop-agent"
token_endpoint_auth_method = "none"
application_type = "native"
redirect_uris = ["{REDIRECT}"]
scopes = ["tools:read", "offline_access"]
"#
            ),
        )
        .unwrap();
        Self { dir, config, issuer, database, server: None }
    }

    /// `mandate <args>` in the deployment's directory, with no MANDATE_* variable but `env`.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(self.dir.path()).env_remove("RUST_LOG").stdin(Stdio::null());
        for (key, _) in std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("MANDATE_")) {
            cmd.env_remove(key);
        }
        cmd.envs(env.iter().copied());
        cmd.output().unwrap()
    }

    /// `mandate <args> --config <file>`.
    fn admin(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--config", self.config.to_str().unwrap()]);
        self.run(&all, &[])
    }

    fn admin_ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert!(out.status.success(), "{args:?} should succeed: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// Starts `mandate serve` (with `--config` unless `env` names the file) and waits for it.
    async fn serve(&mut self, with_flag: bool, env: &[(&str, &str)]) {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").current_dir(self.dir.path()).stdout(Stdio::null()).stderr(Stdio::null());
        if with_flag {
            cmd.args(["--config", self.config.to_str().unwrap()]);
        }
        for (key, _) in std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("MANDATE_")) {
            cmd.env_remove(key);
        }
        cmd.envs(env.iter().copied());
        self.server = Some(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{}/healthz", self.issuer)).await.is_err() {
            let exited = self.server.as_mut().unwrap().try_wait().unwrap();
            assert!(exited.is_none(), "mandate serve exited: {exited:?}");
            assert!(Instant::now() < deadline, "mandate serve did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// alice signs desktop-agent in (a new grant); its access and refresh token.
    async fn sign_in(&self) -> (String, String) {
        let url = url::Url::parse_with_params(
            &format!("{}/authorize", self.issuer),
            [
                ("response_type", "code"),
                ("client_id", "desktop-agent"),
                ("redirect_uri", REDIRECT),
                ("scope", "tools:read offline_access"),
                ("resource", MCP),
                ("state", "st"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        )
        .unwrap();
        let back = common::sign_in_and_approve(url.as_str(), "alice", ALICE_PASSWORD).await;
        let back = url::Url::parse(&back).unwrap();
        let code = back.query_pairs().find(|(k, _)| k == "code").expect("a code").1.into_owned();
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", "desktop-agent"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", MCP),
        ];
        let body: Value = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access = body["access_token"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
        (access, body["refresh_token"].as_str().expect("a refresh token").to_owned())
    }

    /// The token endpoint's answer to a refresh: (status, body).
    async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let form = [("grant_type", "refresh_token"), ("client_id", "desktop-agent"), ("refresh_token", refresh_token)];
        let res = reqwest::Client::new().post(format!("{}/token", self.issuer)).form(&form).send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    /// What the admin commands must show for this database: the absolute file, or the URL
    /// without its password.
    fn shown_database(&self) -> String {
        match self.database.strip_prefix("sqlite://") {
            Some(file) => format!("database: SQLite {file}"),
            None => format!("database: PostgreSQL {}", self.database.replace(PG_PASSWORD, "***")),
        }
    }
}

fn jti(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["jti"].as_str().unwrap().to_owned()
}

/// Item 15: the agent's, the gateway's and the server's settings in one environment; `serve` and
/// the admin commands skip the other commands' variables (and MANDATE_CONFIG names the file), but
/// a misspelt server variable still stops the start.
#[tokio::test]
async fn one_environment_holds_every_commands_settings() {
    let mut d = Deployment::new(Backend::Sqlite).await;
    let config = d.config.to_str().unwrap().to_owned();
    let env = [
        ("MANDATE_CONFIG", config.as_str()),
        ("MANDATE_AGENT_STORE", "/nonexistent/agent.json"),
        ("MANDATE_AGENT_CLIENT_ID", "desktop-agent"),
        ("MANDATE_AGENT_CLIENT_SECRET", "agent-secret-not-for-the-server"),
        ("MANDATE_GATEWAY_LISTEN", "127.0.0.1:1"),
        ("MANDATE_GATEWAY_UPSTREAM", "http://127.0.0.1:2/mcp"),
        ("MANDATE_TOKENS__ACCESS_TOKEN_TTL", "2m"),
    ];
    d.serve(false, &env).await;
    let metadata: Value = reqwest::get(format!("{}/.well-known/oauth-authorization-server", d.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], d.issuer.as_str(), "the file named by MANDATE_CONFIG was read");
    let (access, _) = d.sign_in().await;
    let tokens = d.run(&["audit", "tokens", "alice", "--json"], &env);
    assert!(tokens.status.success(), "{}", text(&tokens.stderr));
    let listed: Value = serde_json::from_slice(&tokens.stdout).unwrap();
    let first = &listed[0];
    assert_eq!(first["jti"], jti(&access).as_str(), "{listed}");
    let ttl = first["expires_at"].as_i64().unwrap() - first["issued_at"].as_i64().unwrap();
    assert_eq!(ttl, 120, "MANDATE_TOKENS__ACCESS_TOKEN_TTL applies next to the others");
    let keys = d.run(&["keys", "list"], &env);
    assert!(keys.status.success() && text(&keys.stdout).contains("active"), "{}", text(&keys.stderr));

    let mut misspelt = env.to_vec();
    misspelt.push(("MANDATE_LISTNE", "127.0.0.1:1"));
    assert_one_error_line(&d.run(&["check-config", &config], &misspelt), "LISTNE");
    assert_one_error_line(&d.run(&["keys", "list"], &misspelt), "LISTNE");
}

/// Item 16: without `--config` or MANDATE_CONFIG, admin commands refuse, and nothing appears in
/// the working directory.
#[tokio::test]
async fn admin_commands_need_a_configuration() {
    let d = Deployment::new(Backend::Sqlite).await;
    std::fs::remove_file(&d.config).unwrap();
    let commands: [&[&str]; 9] = [
        &["keys", "list"],
        &["keys", "rotate"],
        &["users", "list"],
        &["users", "add", "alice", "--password-stdin"],
        &["users", "disable", "alice"],
        &["audit", "tokens", "alice"],
        &["audit", "lineage", "some-jti"],
        &["audit", "revoke", "some-jti"],
        &["audit", "revoke", "--user", "alice", "--client", "desktop-agent"],
    ];
    for args in commands {
        assert_one_error_line(&d.run(args, &[]), "--config FILE or MANDATE_CONFIG");
    }
    let left: Vec<_> = std::fs::read_dir(d.dir.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing created in the working directory: {left:?}");
}

/// Item 16: an admin command names a database that is not there (a wrong path, an empty
/// PostgreSQL database): it fails, creates nothing, and works once `serve` has created it,
/// saying which database it used (never a password).
async fn admin_commands_never_create_a_database(backend: Backend) {
    let mut d = Deployment::new(backend).await;
    let (problem, file) = match backend {
        Backend::Sqlite => {
            let file = PathBuf::from(d.database.strip_prefix("sqlite://").unwrap());
            (format!("there is no SQLite database at {}", file.display()), Some(file))
        }
        Backend::Postgres => ("is not a mandate database".to_owned(), None),
    };
    let commands: [&[&str]; 6] = [
        &["keys", "rotate"],
        &["users", "list"],
        &["audit", "tokens", "alice"],
        &["audit", "revoke", "some-jti"],
        &["audit", "revoke", "--user", "alice", "--client", "desktop-agent"],
        &["keys", "list"],
    ];
    // Twice: had the first round created the database, the second would succeed.
    for _ in 0..2 {
        for args in commands {
            let out = d.admin(args);
            assert_one_error_line(&out, &problem);
            assert_one_error_line(&out, "start `mandate serve` with it once to create it");
            assert!(!text(&out.stderr).contains(PG_PASSWORD), "{}", text(&out.stderr));
        }
    }
    if let Some(file) = &file {
        assert!(!file.exists() && !file.parent().unwrap().exists(), "neither the file nor its directory");
    }
    let out = d.admin(&["users", "add", "bob", "--password-stdin"]);
    assert_one_error_line(&out, &problem);

    // An existing file that is not mandate's is not taken over either.
    if backend == Backend::Sqlite {
        let other = d.dir.path().join("other.db");
        std::fs::write(&other, b"").unwrap();
        let config = d.dir.path().join("other.toml");
        std::fs::write(&config, format!("database = \"sqlite://{}\"\n", other.display())).unwrap();
        let out = d.run(&["keys", "list", "--config", config.to_str().unwrap()], &[]);
        assert_one_error_line(&out, "is not a mandate database");
        assert_eq!(std::fs::metadata(&other).unwrap().len(), 0, "left untouched");
    }

    d.serve(true, &[]).await;
    let out = d.admin(&["keys", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.lines().any(|l| l.starts_with(&d.shown_database())), "{stderr} should name {}", d.shown_database());
    assert!(stderr.contains(&format!("(from {})", d.config.display())), "{stderr}");
    assert!(!stderr.contains(PG_PASSWORD) && !text(&out.stdout).contains(PG_PASSWORD), "{stderr}");
    // Stdout stays clean for scripts.
    let listed = d.admin(&["audit", "tokens", "alice", "--json"]);
    assert!(serde_json::from_slice::<Value>(&listed.stdout).is_ok(), "{}", text(&listed.stdout));
}

/// Item 17: revoking a token's chain leaves the person's grant, so the client refreshes (and the
/// command says so); revoking the grant, by the id `audit lineage` shows or as every grant of a
/// person for a client, makes the token endpoint refuse its refresh tokens with invalid_grant.
async fn an_operator_cuts_off_an_agent_by_revoking_its_grant(backend: Backend) {
    let mut d = Deployment::new(backend).await;
    d.serve(true, &[]).await;
    let (access, r0) = d.sign_in().await;
    let lineage: Value = serde_json::from_str(&d.admin_ok(&["audit", "lineage", &jti(&access), "--json"])).unwrap();
    let grant_id = lineage["grant"]["grant_id"].as_str().unwrap_or_else(|| panic!("{lineage}")).to_owned();
    let tree = d.admin_ok(&["audit", "lineage", &jti(&access)]);
    assert!(tree.contains(&format!("grant {grant_id}")), "the tree prints the grant id: {tree}");

    // The token's subtree only: the grant lives on, and the command says so.
    let printed = d.admin_ok(&["audit", "revoke", &jti(&access)]);
    assert!(printed.contains(&format!("grant {grant_id} of alice for desktop-agent is still live")), "{printed}");
    assert!(printed.contains(&format!("mandate audit revoke {grant_id}")), "{printed}");
    let (status, body) = d.refresh(&r0).await;
    assert_eq!(status, 200, "the grant is live, so the client refreshes: {body}");
    let r1 = body["refresh_token"].as_str().unwrap().to_owned();

    // The grant, by the id the lineage printed: its refresh tokens are refused.
    let printed = d.admin_ok(&["audit", "revoke", &grant_id]);
    assert!(printed.starts_with(&format!("revoked grant {grant_id} of alice for desktop-agent")), "{printed}");
    let (status, body) = d.refresh(&r1).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let printed = d.admin_ok(&["audit", "revoke", &format!("grant:{grant_id}")]);
    assert!(printed.contains("was revoked already"), "{printed}");

    // Every grant alice gave desktop-agent.
    let (_, r2) = d.sign_in().await;
    let (_, r3) = d.sign_in().await;
    let printed = d.admin_ok(&["audit", "revoke", "--user", "alice", "--client", "desktop-agent"]);
    assert!(printed.starts_with("revoked 2 grant(s) of alice for desktop-agent"), "{printed}");
    for r in [&r2, &r3] {
        let (status, body) = d.refresh(r).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    }
    let printed = d.admin_ok(&["audit", "revoke", "--user", "alice", "--client", "desktop-agent"]);
    assert!(printed.contains("nothing to revoke"), "{printed}");

    // Misspelt names and unknown ids fail instead of reading as "already gone".
    let cases: [(&[&str], &str); 5] = [
        (&["audit", "revoke", "--user", "alicia", "--client", "desktop-agent"], "no user named \"alicia\""),
        (&["audit", "revoke", "--user", "alice", "--client", "desktop-agnet"], "no client with id \"desktop-agnet\""),
        (&["audit", "revoke", "no-such-id"], "no token with jti no-such-id and no grant with id no-such-id"),
        // Ids are base64url: one may start with '-' and is still an id, not a flag.
        (&["audit", "revoke", "-no-such-id"], "no token with jti -no-such-id"),
        (&["audit", "revoke", "grant:no-such-id"], "no grant with id"),
    ];
    for (args, needle) in cases {
        assert_one_error_line(&d.admin(args), needle);
    }
    let out = d.admin(&["audit", "revoke", "--user", "alice"]);
    assert!(!out.status.success() && text(&out.stderr).contains("--client"), "{}", text(&out.stderr));
    let out = d.admin(&["audit", "revoke", &grant_id, "--user", "alice", "--client", "desktop-agent"]);
    assert!(!out.status.success(), "an id and --user together are refused");
}
