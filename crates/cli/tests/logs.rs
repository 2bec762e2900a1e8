//! Issue #15 item 10: request values that reach a text log line cannot forge another line. The
//! real binary, its text log on stderr, and requests carrying newlines where a client id, a
//! username or an error description is logged.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mandate");
const FORGED: &str = "FORGED 2026-12-06T00:00:00Z INFO mandate: token issued";

#[tokio::test]
async fn request_values_cannot_forge_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("mandate.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"{base}\"\nlisten = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{}/m.db\"\n\
             [[resources]]\nuri = \"http://127.0.0.1:9090/mcp\"\nscopes = [\"tools:read\"]\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/readyz")).await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < deadline, "mandate did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let injected = format!("x\n{FORGED}\r\n{FORGED}");
    // Logged as the client of a refused token request, and in the refusal's description.
    http.post(format!("{base}/token"))
        .form(&[("grant_type", injected.as_str()), ("client_id", injected.as_str())])
        .send()
        .await
        .unwrap();
    // Logged as the username of a failed sign-in.
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    let body = page.text().await.unwrap();
    let csrf = body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let res = http
        .post(format!("{base}/login"))
        .header("cookie", cookie)
        .form(&[("csrf", csrf.as_str()), ("username", injected.as_str()), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("FORGED"), "the values were logged (escaped):\n{text}");
    let forged: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("FORGED")).collect();
    assert!(forged.is_empty(), "forged log lines: {forged:?}\n{text}");
    for line in text.lines() {
        assert!(!line.contains('\r'), "a carriage return reached the log: {line:?}");
    }
}
