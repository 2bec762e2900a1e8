//! `mandate gateway` as operators run it: bad flags stop it with one line that never quotes the
//! upstream credential, `--help` never shows one set in the environment, and a running gateway
//! serves its metadata, challenges, logs without the credential and stops cleanly on SIGTERM.
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
