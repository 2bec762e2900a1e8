//! `mandate gateway` as operators run it: bad flags stop it with one line that never quotes the
//! upstream credential, `--help` never shows one set in the environment, and a running gateway
//! serves its metadata, challenges, logs without the credential and stops cleanly on SIGTERM; in
//! front of a real `mandate serve`, the delegation flags refuse exchanged tokens and the scope
//! flags refuse bodies they cannot read.
//! (The whole path, with tokens and an upstream, is in crates/server/tests/http/gateway.rs and
//! interop/test/mcp-sdk-gateway.test.mjs.)

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mandate");
const KEY: &str = "sk-upstream-0123456789abcdef";

fn gateway(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("20").arg(BIN).arg("gateway").args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

const BASE: [&str; 6] =
    ["--upstream", "http://127.0.0.1:1/mcp", "--issuer", "http://127.0.0.1:2", "--resource", "http://127.0.0.1:3/mcp"];

fn with_base<'a>(more: &[&'a str]) -> Vec<&'a str> {
    BASE.iter().copied().chain(more.iter().copied()).collect()
}

#[test]
fn refusals_name_the_flag_and_never_the_credential() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let missing = format!("X-Api-Key={}", missing.display());
    let inline_no_colon = format!("X-Api-Key {KEY}");
    let inline_newline = format!("X-Api-Key: {KEY}\nX-Other: 1");
    let user_info = format!("http://gateway:{KEY}@127.0.0.1:1/mcp");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (with_base(&["--upstream-header", &inline_no_colon]), "--upstream-header: an upstream header must look like"),
        (with_base(&["--upstream-header", &inline_newline]), "the value of upstream header x-api-key"),
        (with_base(&["--upstream-header-env", "X-Api-Key=MANDATE_TEST_UNSET_VARIABLE"]), "MANDATE_TEST_UNSET_VARIABLE"),
        (with_base(&["--upstream-header-file", &missing]), "cannot read"),
        (with_base(&["--upstream-header", "Host: elsewhere"]), "upstream header host cannot be set"),
        (with_base(&["--upstream-header", "X-Api-Key: a", "--upstream-header", "x-api-key: b"]), "more than once"),
        (with_base(&["--method-scope", "tools/call"]), "--method-scope"),
        (with_base(&["--refuse-delegation", "--allowed-actor", "agent-a"]), "--refuse-delegation"),
        (with_base(&["--refuse-delegation", "--max-delegation-depth", "2"]), "--refuse-delegation"),
        (with_base(&["--introspection-client-id", "gw"]), "--introspection-client-id needs"),
        (with_base(&["--introspection-secret-env", "MANDATE_TEST_UNSET_VARIABLE"]), "MANDATE_TEST_UNSET_VARIABLE"),
        (
            vec!["--upstream", &user_info, "--issuer", "http://127.0.0.1:2", "--resource", "http://127.0.0.1:3/mcp"],
            "upstream",
        ),
        (
            vec!["--upstream", "http://127.0.0.1:1/mcp", "--issuer", "http://127.0.0.1:2", "--resource", "mcp"],
            "resource",
        ),
    ];
    for (args, needle) in cases {
        let out = gateway(&args, &[]);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].starts_with("mandate: error:") && lines[0].contains(needle),
            "{:?} should name {needle:?}",
            lines[0]
        );
        assert!(!stderr.contains(&KEY[3..]), "the credential is not echoed: {stderr}");
    }

    let help = gateway(&["--help"], &[("MANDATE_GATEWAY_UPSTREAM_HEADER", &format!("X-Api-Key: {KEY}"))]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--upstream-header-file") && !text.contains(&KEY[3..]), "{text}");
    for flag in ["--refuse-delegation", "--max-delegation-depth <N>", "--allowed-actor <CLIENT_ID>"] {
        assert!(text.contains(flag), "{flag} in --help: {text}");
    }
}

#[tokio::test]
async fn a_running_gateway_challenges_serves_metadata_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("upstream-key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let listen = format!("127.0.0.1:{port}");
    let file_source = format!("X-Api-Key={}", key_file.display());
    // No issuer listens: the keys never load, which a request without a token does not need.
    let child = Command::new(BIN)
        .args([
            "gateway",
            "--listen",
            &listen,
            "--upstream",
            "http://127.0.0.1:1/mcp",
            "--issuer",
            "http://127.0.0.1:2",
        ])
        .args(["--resource", &resource, "--scope", "tools:read", "--upstream-header-file", &file_source])
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let metadata = format!("http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp");
    let deadline = Instant::now() + Duration::from_secs(20);
    let doc: Value = loop {
        if let Ok(res) = http.get(&metadata).send().await {
            break res.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(doc["resource"], resource.as_str());
    assert_eq!(doc["authorization_servers"], serde_json::json!(["http://127.0.0.1:2"]));

    let res = http.post(&resource).body("{}").send().await.unwrap();
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert_eq!(challenge, format!("Bearer resource_metadata=\"{metadata}\", scope=\"tools:read\""));
    let res = http.post(&resource).bearer_auth("some.token.value").body("{}").send().await.unwrap();
    assert_eq!(res.status(), 503, "the issuer's keys are not loaded");

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "graceful shutdown exits 0: {out:?}");
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(logs.contains("status=401"), "each request is logged: {logs}");
    assert!(!logs.contains(&KEY[3..]) && !logs.contains("some.token.value"), "{logs}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Children killed when the test ends, however it ends.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
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

#[tokio::test]
async fn the_delegation_and_scope_flags_refuse_in_front_of_a_real_mandate() {
    const SECRET: &str = "gateway-test-client-secret-0123456789abcdef";
    const TE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    let dir = tempfile::tempdir().unwrap();
    let as_port = free_port();
    let issuer = format!("http://127.0.0.1:{as_port}");
    // The gateways' resource; each gateway listens on its own port, the resource URI is shared.
    let mcp = "http://127.0.0.1:9/mcp";
    let config = dir.path().join("mandate.toml");
    std::fs::write(
        &config,
        format!(
            r#"issuer = "{issuer}"
listen = "127.0.0.1:{as_port}"
database = "sqlite://{db}/m.db"
[[resources]]
uri = "{mcp}"
scopes = ["tools:read", "tools:call"]
client_id = "mcp-gateway"
[[clients]]
client_id = "build-agent"
client_secret = "{SECRET}"
grant_types = ["client_credentials"]
scopes = ["tools:read"]
[[clients]]
client_id = "mcp-gateway"
client_secret = "{SECRET}"
grant_types = ["{TE}"]
scopes = ["tools:read"]
"#,
            db = dir.path().display()
        ),
    )
    .unwrap();
    let serve = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut children = Children(vec![serve]);
    wait_until_up(&format!("{issuer}/healthz")).await;

    // Nothing listens upstream: a request the gateway forwards gets 502, one it refuses does not.
    let mut gateway = |flags: &[&str]| {
        let port = free_port();
        let child = Command::new(BIN)
            .args(["gateway", "--listen", &format!("127.0.0.1:{port}"), "--upstream", "http://127.0.0.1:1/mcp"])
            .args(["--issuer", &issuer, "--resource", mcp, "--scope", "tools:read"])
            .args(flags)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        children.0.push(child);
        format!("http://127.0.0.1:{port}")
    };
    let refusing = gateway(&["--refuse-delegation", "--method-scope", "tools/call=tools:call"]);
    let listing = gateway(&["--allowed-actor", "someone-else", "--max-delegation-depth", "3"]);
    let http = reqwest::Client::new();
    let token = |form: Vec<(&'static str, String)>, client: &'static str| {
        let http = http.clone();
        let url = format!("{issuer}/token");
        async move {
            let res = http.post(url).basic_auth(client, Some(SECRET)).form(&form).send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
        }
    };
    let direct = token(
        vec![("grant_type", "client_credentials".into()), ("resource", mcp.into()), ("scope", "tools:read".into())],
        "build-agent",
    )
    .await;
    let delegated = token(
        vec![
            ("grant_type", TE.into()),
            ("subject_token", direct.clone()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token".into()),
            ("resource", mcp.into()),
        ],
        "mcp-gateway",
    )
    .await;
    for base in [&refusing, &listing] {
        wait_until_up(&format!("{base}/.well-known/oauth-protected-resource/mcp")).await;
    }
    let post = |base: &str, token: &str, body: Vec<u8>| {
        http.post(format!("{base}/mcp")).bearer_auth(token).header("content-type", "application/json").body(body).send()
    };
    let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec();
    let call = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}}"#.to_vec();
    // The issuer's keys load in the background: until then, 503.
    let deadline = Instant::now() + Duration::from_secs(20);
    while post(&refusing, &direct, list.clone()).await.unwrap().status() == 503 {
        assert!(Instant::now() < deadline, "the gateway never loaded the issuer's keys");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(post(&refusing, &direct, list.clone()).await.unwrap().status(), 502, "admitted, forwarded");
    let res = post(&refusing, &delegated, list.clone()).await.unwrap();
    assert_eq!(res.status(), 403);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("error=\"invalid_token\"") && challenge.contains("no delegated tokens"), "{challenge}");
    assert_eq!(post(&refusing, &direct, call.clone()).await.unwrap().status(), 403, "tools:call needed");
    let bom = [b"\xEF\xBB\xBF".to_vec(), call].concat();
    assert_eq!(post(&refusing, &direct, bom).await.unwrap().status(), 400, "a BOM is refused, not forwarded");

    while post(&listing, &direct, list.clone()).await.unwrap().status() == 503 {
        assert!(Instant::now() < deadline, "the gateway never loaded the issuer's keys");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(post(&listing, &direct, list.clone()).await.unwrap().status(), 502, "no act: not affected");
    let res = post(&listing, &delegated, list).await.unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert!(body["error_description"].as_str().unwrap().contains("actor \"mcp-gateway\""), "{body}");
}
