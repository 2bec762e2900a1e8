//! `mandate agent` against a real `mandate serve` and a real `mandate gateway` (the MCP server
//! whose protected resource metadata the agent discovers): a person's sign-in through mandate's
//! own pages, cached and refreshed tokens for scripts, logout, client credentials, and inspect.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mandate");
const ALICE_PASSWORD: &str = "agent-test-alice-password";
const BUILD_SECRET: &str = "agent-test-build-agent-secret-0123456789abc";
const API: &str = "https://api.example/v1";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `mandate serve` with alice, dynamic registration and a client-credentials agent, and
/// `mandate gateway` as the MCP server at `mcp` (its upstream is never reached here).
struct Setup {
    issuer: String,
    mcp: String,
    config: std::path::PathBuf,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Drop for Setup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn wait_until_up(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(url).await.is_err() {
        assert!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Setup {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (as_port, mcp_port) = (free_port(), free_port());
        let issuer = format!("http://127.0.0.1:{as_port}");
        let mcp = format!("http://127.0.0.1:{mcp_port}/mcp");
        let config = dir.path().join("mandate.toml");
        std::fs::write(
            &config,
            format!(
                r#"issuer = "{issuer}"
listen = "127.0.0.1:{as_port}"
database = "sqlite://{db}/m.db"
[registration]
dynamic = true
[[users]]
username = "alice"
password = "{ALICE_PASSWORD}"
[[resources]]
uri = "{mcp}"
scopes = ["tools:read", "tools:call"]
client_id = "mcp-gateway"
[[resources]]
uri = "{API}"
scopes = ["tools:read"]

[[clients]]
client_id = "build-agent"
client_secret = "{BUILD_SECRET}"
grant_types = ["client_credentials"]
scopes = ["tools:read"]

[[clients]]
client_id = "mcp-gateway"
client_secret = "{BUILD_SECRET}"
grant_types = ["urn:ietf:params:oauth:grant-type:token-exchange"]
scopes = ["tools:read"]
"#,
                db = dir.path().display()
            ),
        )
        .unwrap();
        let serve = Command::new(BIN)
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let gateway = Command::new(BIN)
            .args(["gateway", "--listen", &format!("127.0.0.1:{mcp_port}"), "--upstream", "http://127.0.0.1:1/mcp"])
            .args(["--issuer", &issuer, "--resource", &mcp, "--scope", "tools:read"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let setup = Self { issuer, mcp, config, children: vec![serve, gateway], dir };
        wait_until_up(&format!("{}/healthz", setup.issuer)).await;
        wait_until_up(&format!("http://127.0.0.1:{mcp_port}/.well-known/oauth-protected-resource/mcp")).await;
        setup
    }

    fn store(&self) -> std::path::PathBuf {
        self.dir.path().join("state/agent.json")
    }

    fn agent(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("agent").args(args).env("MANDATE_AGENT_STORE", self.store()).env_remove("MANDATE_AGENT_CLIENT_SECRET");
        cmd.env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.agent(args, env).output().unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_person_signs_in_once_and_scripts_get_fresh_tokens_until_logout() {
    let setup = Setup::start().await;

    // No token yet: `token` never opens a browser, it says what to do.
    let out = setup.run(&["token", &setup.mcp], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&format!("mandate agent login {}", setup.mcp)), "{}", text(&out.stderr));

    let mut login = setup
        .agent(&["login", &setup.mcp, "--no-browser"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(login.stderr.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "login ended before printing a URL");
        if let Some(url) = line.trim().strip_prefix(&format!("{}/authorize?", setup.issuer)) {
            break format!("{}/authorize?{url}", setup.issuer);
        }
    };
    let query: BTreeMap<String, String> = url::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["resource"], setup.mcp, "RFC 8707 resource = the MCP server");
    assert_eq!(
        query["scope"], "tools:read offline_access",
        "the gateway's scopes_supported, plus offline_access because mandate lists it"
    );
    assert!(query["redirect_uri"].starts_with("http://127.0.0.1:"), "a loopback redirect");
    let callback = common::sign_in_and_approve(&url, "alice", ALICE_PASSWORD).await;
    assert!(callback.contains("/callback?"), "{callback}");
    let delivered = reqwest::get(&callback).await.unwrap();
    assert_eq!(delivered.status(), 200, "the agent's loopback listener took the response");
    let out = login.wait_with_output().unwrap();
    assert!(out.status.success(), "login: {}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains(&format!("Signed in for {} at {}", setup.mcp, setup.issuer)), "{said}");
    assert!(!said.contains("eyJ"), "login never prints a token: {said}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(setup.store()).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let stored = |path: &Path| -> Value { serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap() };
    let first_refresh =
        stored(&setup.store())["tokens"].as_object().unwrap().values().next().unwrap()["refresh_token"].clone();
    assert!(first_refresh.is_string(), "offline_access brought a refresh token");

    // A fresh cached token is handed out as it is, without a round trip.
    let token_now = || {
        let out = setup.run(&["token", &setup.mcp], &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_owned()
    };
    let cached = token_now();
    assert_eq!(token_now(), cached, "the cache answers while the token is fresh");

    // Near expiry (here: the cache says it expires now), `token` refreshes, with rotation.
    let mut contents = stored(&setup.store());
    for entry in contents["tokens"].as_object_mut().unwrap().values_mut() {
        entry["expires_at"] = 0.into();
    }
    std::fs::write(setup.store(), serde_json::to_vec(&contents).unwrap()).unwrap();
    let token = token_now();
    assert_ne!(token, cached, "a new access token from the refresh");
    let c = claims(&token);
    assert_eq!(c["aud"], setup.mcp.as_str());
    assert_eq!(c["iss"], setup.issuer.as_str());
    assert_eq!(c["sub"], "alice");
    let rotated =
        stored(&setup.store())["tokens"].as_object().unwrap().values().next().unwrap()["refresh_token"].clone();
    assert_ne!(rotated, first_refresh, "the refresh token rotated and the new one was kept");

    // The MCP server accepts it: the gateway lets it through to the (absent) upstream.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let res = reqwest::Client::new().post(&setup.mcp).bearer_auth(&token).body("{}").send().await.unwrap();
        // 503 while the gateway is still loading mandate's keys.
        if res.status() != 503 || Instant::now() > deadline {
            break res.status();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, 502, "past authorization, only the upstream is missing");

    let out = setup.run(&["inspect", &token], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("subject      alice") && shown.contains("signature    valid"), "{shown}");

    let out = setup.run(&["status"], &[]);
    assert!(text(&out.stdout).contains(&format!("{}  from {}", setup.mcp, setup.issuer)), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("eyJ"), "status never prints tokens");

    let client_id = stored(&setup.store())["clients"][&setup.issuer]["client_id"].as_str().unwrap().to_owned();
    let out = setup.run(&["logout", &setup.mcp], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Forgot 1 cached token set."), "{}", text(&out.stdout));
    // Logout revoked the refresh token at mandate (RFC 7009), not only locally.
    let refresh = reqwest::Client::new()
        .post(format!("{}/token", setup.issuer))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rotated.as_str().unwrap()),
            ("client_id", &client_id),
            ("resource", &setup.mcp),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 400);
    assert_eq!(refresh.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let out = setup.run(&["token", &setup.mcp], &[]);
    assert!(!out.status.success(), "after logout there is nothing to hand out");
}

#[tokio::test]
async fn client_credentials_for_the_agent_itself_and_inspect() {
    let setup = Setup::start().await;
    let secret_env = [("MANDATE_AGENT_CLIENT_SECRET", BUILD_SECRET)];
    let out = setup.run(&["client-credentials", &setup.mcp, "--client-id", "build-agent"], &secret_env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let c = claims(&token);
    assert_eq!(c["sub"], "build-agent");
    assert_eq!(c["aud"], setup.mcp.as_str());

    // `token` with the same identity reuses the cached token rather than asking again.
    let again = setup.run(&["token", &setup.mcp, "--client-id", "build-agent"], &secret_env);
    assert_eq!(text(&again.stdout).trim(), token, "{}", text(&again.stderr));

    let wrong = setup.run(
        &[
            "client-credentials",
            &setup.mcp,
            "--client-id",
            "build-agent",
            "--store",
            setup.dir.path().join("other.json").to_str().unwrap(),
        ],
        &[("MANDATE_AGENT_CLIENT_SECRET", "not-the-secret")],
    );
    assert!(!wrong.status.success());
    let err = text(&wrong.stderr);
    assert!(err.contains("invalid_client") && !err.contains("not-the-secret"), "{err}");

    let out = setup.run(&["client-credentials", &setup.mcp], &[]);
    assert!(text(&out.stderr).contains("needs --client-id"), "{}", text(&out.stderr));

    for junk in ["not-a-token", "a.b.c"] {
        let out = setup.run(&["inspect", junk], &[]);
        assert!(!out.status.success());
        assert!(text(&out.stderr).starts_with("mandate: error:"), "{}", text(&out.stderr));
    }
    // A token whose signature does not match its issuer's keys is shown but not vouched for.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    let forged = parts.join(".");
    let out = setup.run(&["inspect", &forged], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains("NOT VERIFIED"), "{}", text(&out.stdout));
}

#[tokio::test]
async fn exchange_then_follow_the_lineage_and_pull_the_kill_switch() {
    let setup = Setup::start().await;
    let secret_env = [("MANDATE_AGENT_CLIENT_SECRET", BUILD_SECRET)];
    let out = setup.run(&["client-credentials", &setup.mcp, "--client-id", "build-agent"], &secret_env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let subject = text(&out.stdout).trim().to_owned();

    // The gateway's own client exchanges the agent's token to call the API behind it.
    let exchange = |subject: &str| {
        setup.run(
            &[
                "exchange",
                "--issuer",
                &setup.issuer,
                "--subject-token",
                subject,
                "--resource",
                API,
                "--client-id",
                "mcp-gateway",
            ],
            &secret_env,
        )
    };
    let out = exchange(&subject);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let response: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    let exchanged = response["access_token"].as_str().unwrap().to_owned();
    let c = claims(&exchanged);
    assert_eq!((c["sub"].as_str(), c["aud"].as_str()), (Some("build-agent"), Some(API)));
    assert_eq!(c["act"]["sub"], "mcp-gateway");
    let shown = text(&setup.run(&["inspect", &exchanged], &[]).stdout);
    assert!(shown.contains("acting       mcp-gateway"), "{shown}");

    let config = setup.config.to_str().unwrap().to_owned();
    let audit = |args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.arg("audit").args(args).args(["--config", &config]).env_remove("RUST_LOG");
        cmd.output().unwrap()
    };
    let tree = audit(&["lineage", c["jti"].as_str().unwrap()]);
    assert!(tree.status.success(), "{}", text(&tree.stderr));
    let printed = text(&tree.stdout);
    let subject_jti = claims(&subject)["jti"].as_str().unwrap().to_owned();
    assert!(
        printed.contains(&format!("└─ {subject_jti} build-agent")),
        "the chain starts at the agent's token: {printed}"
    );
    assert!(printed.contains("mcp-gateway (acting: mcp-gateway)") && printed.contains("◀"), "{printed}");
    let json = audit(&["lineage", c["jti"].as_str().unwrap(), "--json"]);
    let doc: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["root"]["children"][0]["jti"], c["jti"]);

    // build-agent's tokens (it acts for itself): its own, and the one mcp-gateway holds for it.
    let listed = audit(&["tokens", "build-agent"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let table = text(&listed.stdout);
    assert!(table.lines().any(|l| l.starts_with("live") && l.contains(&subject_jti)), "{table}");
    assert!(table.contains("by mcp-gateway") && table.contains(&format!("for {API}")), "{table}");

    let killed = audit(&["revoke", &subject_jti]);
    assert!(killed.status.success(), "{}", text(&killed.stderr));
    let listed = audit(&["tokens", "build-agent", "--json", "--limit", "5"]);
    let tokens: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let revoked: Vec<&Value> = tokens.as_array().unwrap().iter().filter(|t| t["revoked"] == true).collect();
    assert_eq!(revoked.len(), 2, "the agent's token and the exchanged one: {tokens}");
    assert!(revoked.iter().all(|t| t["live"] == false));
    let out_of_range = audit(&["tokens", "build-agent", "--limit", "0"]);
    assert!(!out_of_range.status.success());
    assert!(text(&killed.stdout).contains("2 live token(s)"), "{}", text(&killed.stdout));
    let refused = exchange(&exchanged);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("revoked"), "{}", text(&refused.stderr));
    let unknown = audit(&["lineage", "no-such-jti"]);
    assert!(text(&unknown.stderr).contains("no token with jti no-such-jti"), "{}", text(&unknown.stderr));
}
