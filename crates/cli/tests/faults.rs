//! Faults under load, on a PostgreSQL cluster of the test's own (so stopping it disturbs no other
//! test): `kill -9` of one of two instances loses no committed token, registration or audit row,
//! and the other keeps serving; PostgreSQL stopped under load gives 503 with `Retry-After` (never
//! a 500), and mandate recovers by itself once it is back.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mandate_store::AuditStore as _;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mandate");
const SECRET: &str = "faults-agent-secret-0123456789abcdefghijklm";
const MCP: &str = "https://mcp.example/mcp";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A throwaway PostgreSQL cluster on a loopback port (initdb, trust auth), run as the
/// `postgres` user when the tests run as root (PostgreSQL refuses to run as root).
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_root: bool,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    fn start() -> Self {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql (scripts/install-test-deps.sh installs them)")
            .map(|e| e.unwrap().path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .collect();
        versions.sort();
        let bin = versions.pop().expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        let as_root = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap().trim() == "0";
        if as_root {
            assert!(
                Command::new("chown")
                    .args(["-R", "postgres", dir.path().to_str().unwrap()])
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let pg = Self { bin, data: dir.path().join("data"), port: free_port(), as_root, _dir: dir };
        let data = pg.data.to_str().unwrap().to_owned();
        pg.run("initdb", &["-D", &data, "-U", "postgres", "--auth=trust", "--no-sync"]);
        pg.ctl("start");
        pg
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = cmd.args(args).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn ctl(&self, action: &str) {
        let data = self.data.to_str().unwrap().to_owned();
        let log = self.data.parent().unwrap().join("postgres.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data.parent().unwrap().display()
        );
        let mut args = vec!["-D", data.as_str(), "-w", "-t", "30", "-l", log.to_str().unwrap(), "-o", options.as_str()];
        if action == "stop" {
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        self.run("pg_ctl", &args);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap().to_owned();
        let program = self.bin.join("pg_ctl");
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let _ = cmd.args(["-D", &data, "-m", "immediate", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

struct Instance {
    base: String,
    child: Child,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_instance(config: &std::path::Path, port: u16) -> Instance {
    let child = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("MANDATE_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/readyz")).await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < deadline, "instance on {port} did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Instance { base, child }
}

/// One response of the load: status (0 when the connection failed), Retry-After present, `jti`.
#[derive(Debug, Clone)]
struct Outcome {
    status: u16,
    retry_after: bool,
    jti: Option<String>,
    at: Instant,
}

fn jti_of(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["jti"].as_str().map(str::to_owned)
}

/// Client-credentials requests against `base` on `workers` tasks until `stop`.
fn load(base: &str, workers: usize, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<Vec<Outcome>>> {
    (0..workers)
        .map(|_| {
            let url = format!("{base}/token");
            let stop = stop.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
                let mut out = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = http
                        .post(&url)
                        .basic_auth("agent", Some(SECRET))
                        .form(&[("grant_type", "client_credentials"), ("resource", MCP)])
                        .send()
                        .await;
                    let at = Instant::now();
                    let outcome = match sent {
                        Ok(res) => {
                            let status = res.status().as_u16();
                            let retry_after = res.headers().contains_key("retry-after");
                            let body: Value = res.json().await.unwrap_or(Value::Null);
                            let jti = body["access_token"].as_str().and_then(jti_of);
                            Outcome { status, retry_after, jti, at }
                        }
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Outcome { status: 0, retry_after: false, jti: None, at }
                        }
                    };
                    out.push(outcome);
                }
                out
            })
        })
        .collect()
}

async fn collect(handles: Vec<tokio::task::JoinHandle<Vec<Outcome>>>) -> Vec<Outcome> {
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all
}

#[tokio::test]
async fn kill_9_loses_nothing_committed_and_a_database_restart_is_ridden_out() {
    let pg = PrivatePostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let config = dir.path().join("mandate.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"http://127.0.0.1:{port_a}\"\ndatabase = \"{}\"\n[registration]\ndynamic = true\nunattended_grant_types = [\"client_credentials\"]\n\
             unattended_resources = [\"{MCP}\"]\nunattended_scopes = [\"tools:read\"]\n\
             [[resources]]\nuri = \"{MCP}\"\nscopes = [\"tools:read\"]\n\
             [[clients]]\nclient_id = \"agent\"\nclient_secret = \"{SECRET}\"\nscopes = [\"tools:read\"]\n",
            pg.url()
        ),
    )
    .unwrap();
    let mut a = start_instance(&config, port_a).await;
    let b = start_instance(&config, port_b).await;

    // Load on both, and registrations on A; then A is killed mid-flight.
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = load(&a.base, 4, stop.clone());
    let on_b = load(&b.base, 2, stop.clone());
    let register_url = format!("{}/register", a.base);
    let stop_registering = stop.clone();
    let registering = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut registered = Vec::new();
        while !stop_registering.load(Ordering::Relaxed) {
            let body = serde_json::json!({
                "client_name": "registered under load", "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "client_secret_basic", "scope": "tools:read",
            });
            match http.post(&register_url).json(&body).send().await {
                Ok(res) if res.status() == 201 => {
                    let doc: Value = res.json().await.unwrap_or(Value::Null);
                    if let (Some(id), Some(secret)) = (doc["client_id"].as_str(), doc["client_secret"].as_str()) {
                        registered.push((id.to_owned(), secret.to_owned()));
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        registered
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.child.kill().unwrap(); // SIGKILL
    a.child.wait().unwrap();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    handles.extend(on_b);
    let outcomes = collect(handles).await;
    let registered = registering.await.unwrap();

    let store = mandate_store_pg::PgStore::open(&pg.url(), Default::default()).await.unwrap();
    let issued: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == 200).collect();
    assert!(issued.len() > 20, "the load issued tokens: {}", issued.len());
    for o in &issued {
        let jti = o.jti.as_deref().expect("a JWT");
        let rows = store.audit_by_jti(jti).await.unwrap();
        assert!(
            rows.iter().any(|r| r.kind == mandate_core::AuditKind::TokenIssued),
            "token {jti} answered 200 but has no audit row"
        );
    }
    let unexpected: Vec<&Outcome> = outcomes.iter().filter(|o| o.status != 200 && o.status != 0).collect();
    assert!(unexpected.is_empty(), "only 200s or refused connections (to the killed instance): {unexpected:?}");
    let after_kill = outcomes.iter().filter(|o| o.status == 200 && o.at > killed_at).count();
    assert!(after_kill > 5, "instance B kept serving after A was killed ({after_kill} tokens)");
    assert!(!registered.is_empty(), "registrations were answered before the kill");
    let http = reqwest::Client::new();
    for (id, secret) in &registered {
        let res = http
            .post(format!("{}/token", b.base))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("resource", MCP)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "client {id}, registered through A before it died, works through B");
    }

    // PostgreSQL stopped under load: 503 with Retry-After while it is down, never a 500; back
    // by itself once PostgreSQL is.
    let stop = Arc::new(AtomicBool::new(false));
    let handles = load(&b.base, 3, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.ctl("stop");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let readyz = reqwest::get(format!("{}/readyz", b.base)).await.unwrap();
    assert_eq!(readyz.status(), 503, "not ready while the database is down");
    pg.ctl("start");
    let restarted_at = Instant::now();
    let deadline = restarted_at + Duration::from_secs(20);
    loop {
        let ok = reqwest::get(format!("{}/readyz", b.base)).await.map(|r| r.status() == 200).unwrap_or(false);
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "mandate did not recover within 20 s of PostgreSQL's return");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = collect(handles).await;
    let unavailable: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == 503).collect();
    assert!(!unavailable.is_empty(), "requests during the outage were answered 503");
    assert!(unavailable.iter().all(|o| o.retry_after), "every 503 says Retry-After");
    let wrong: Vec<&Outcome> = outcomes.iter().filter(|o| o.status != 200 && o.status != 503).collect();
    assert!(wrong.is_empty(), "nothing but 200 and 503: {wrong:?}");
    let recovered = outcomes.iter().filter(|o| o.status == 200 && o.at > restarted_at).count();
    assert!(recovered > 5, "tokens again after PostgreSQL came back ({recovered})");
}
