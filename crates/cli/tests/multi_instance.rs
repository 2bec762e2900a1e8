//! Three `mandate serve` processes on different ports, one PostgreSQL database and one issuer, as
//! behind a load balancer: a code redeemed exactly once when all three race for it, a refresh
//! family revoked through one dead on all, a key rotated once published by all within the key
//! cache's refresh interval, and a client registered through one working through all.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mandate");
const ALICE_PASSWORD: &str = "multi-instance-alice-password";
const SECRET: &str = "multi-instance-agent-secret-0123456789abcdef";
const RS_SECRET: &str = "multi-instance-resource-server-secret-0123";
const MCP: &str = "https://mcp.example/mcp";
const REDIRECT: &str = "https://agent.example/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Cluster {
    issuer: String,
    /// Where each instance listens.
    bases: Vec<String>,
    config: std::path::PathBuf,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Cluster {
    async fn start() -> Self {
        let database = mandate_store_pg::testing::fresh_database().await;
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let issuer = format!("http://127.0.0.1:{}", ports[0]);
        let config = dir.path().join("mandate.toml");
        std::fs::write(
            &config,
            format!(
                r#"issuer = "{issuer}"
database = "{database}"
[keys]
refresh_interval = "1s"
[registration]
dynamic = true
unattended_grant_types = ["client_credentials"]
unattended_resources = ["{MCP}"]
unattended_scopes = ["tools:read"]
[[users]]
username = "alice"
password = "{ALICE_PASSWORD}"
[[resources]]
uri = "{MCP}"
scopes = ["tools:read"]
[[clients]]
client_id = "agent"
client_secret = "{SECRET}"
redirect_uris = ["{REDIRECT}"]
scopes = ["tools:read", "offline_access"]
[[clients]]
client_id = "rs"
client_secret = "{RS_SECRET}"
grant_types = []
"#
            ),
        )
        .unwrap();
        let mut children = Vec::new();
        // One at a time: the first creates the schema and the first key, the others find them.
        for port in &ports {
            let child = Command::new(BIN)
                .args(["serve", "--config", config.to_str().unwrap()])
                .env("MANDATE_LISTEN", format!("127.0.0.1:{port}"))
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            children.push(child);
            let deadline = Instant::now() + Duration::from_secs(30);
            while reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
                .await
                .map(|r| r.status() != 200)
                .unwrap_or(true)
            {
                assert!(Instant::now() < deadline, "instance on {port} did not become ready");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let bases = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
        Self { issuer, bases, config, children, _dir: dir }
    }

    async fn post(&self, instance: usize, path: &str, auth: (&str, &str), form: &[(&str, &str)]) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.bases[instance]))
            .basic_auth(auth.0, Some(auth.1))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn introspect(&self, instance: usize, token: &str) -> Value {
        self.post(instance, "/introspect", ("rs", RS_SECRET), &[("token", token)]).await.json().await.unwrap()
    }

    async fn kids(&self, instance: usize) -> Vec<String> {
        let jwks: Value =
            reqwest::get(format!("{}/jwks.json", self.bases[instance])).await.unwrap().json().await.unwrap();
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
    }
}

/// alice approves agent on instance 0's pages: the code.
async fn approved_code(cluster: &Cluster) -> String {
    let url = format!(
        "{}/authorize?response_type=code&client_id=agent&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256&state=s&resource={}&scope=tools%3Aread+offline_access",
        cluster.issuer,
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(MCP.as_bytes()).collect::<String>(),
    );
    let back = common::sign_in_and_approve(&url, "alice", ALICE_PASSWORD).await;
    let back = url::Url::parse(&back).unwrap();
    back.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).expect("a code")
}

#[tokio::test]
async fn three_instances_on_one_database_act_as_one_server() {
    let cluster = Cluster::start().await;

    // One code, twelve concurrent redemptions spread over the three instances: exactly one wins.
    let code = approved_code(&cluster).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("resource", MCP),
    ];
    // Started together, on tasks of their own, so they truly race.
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..12 {
        let url = format!("{}/token", cluster.bases[i % 3]);
        let form: Vec<(String, String)> = form.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        racing.spawn(async move {
            let res =
                reqwest::Client::new().post(url).basic_auth("agent", Some(SECRET)).form(&form).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        });
    }
    let (mut winners, mut replays, mut revoked_midway) = (Vec::new(), 0, 0);
    while let Some(done) = racing.join_next().await {
        let (status, body) = done.unwrap();
        let description = body["error_description"].as_str().unwrap_or_default().to_owned();
        match status {
            200 => winners.push(body),
            400 if body["error"] == "invalid_grant" && description.contains("already used") => replays += 1,
            400 if body["error"] == "invalid_grant" && description.contains("revoked") => revoked_midway += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // The code is redeemed exactly once: eleven requests are told it was already used. The one
    // that redeemed it gets tokens, unless a replay revoked the grant between its redemption and
    // its issuance, in which case it is refused too, as it should be.
    assert_eq!(replays, 11, "exactly one redemption across instances");
    assert_eq!(winners.len() + revoked_midway, 1, "the redeemer either gets tokens or finds the grant revoked");
    // The others were replays of a used code: the grant is revoked (RFC 6749 §4.1.2), on all.
    if let Some(raced) = winners.pop() {
        for i in 0..3 {
            assert_eq!(cluster.introspect(i, raced["access_token"].as_str().unwrap()).await["active"], false);
        }
    }

    // A code redeemed once, through instance 2, is accepted by all.
    let code = approved_code(&cluster).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("resource", MCP),
    ];
    let res = cluster.post(2, "/token", ("agent", SECRET), &form).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    for i in 0..3 {
        assert_eq!(cluster.introspect(i, &access).await["active"], true, "instance {i} accepts it");
    }

    // Refresh through instance 1, revoke the family through instance 2: dead on all.
    let refreshed: Value = cluster
        .post(
            1,
            "/token",
            ("agent", SECRET),
            &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
        )
        .await
        .json()
        .await
        .unwrap();
    let newest = refreshed["refresh_token"].as_str().expect("rotated").to_owned();
    let revoked = cluster
        .post(2, "/revoke", ("agent", SECRET), &[("token", &newest), ("token_type_hint", "refresh_token")])
        .await;
    assert_eq!(revoked.status(), 200);
    for i in 0..3 {
        let res = cluster
            .post(i, "/token", ("agent", SECRET), &[("grant_type", "refresh_token"), ("refresh_token", &newest)])
            .await;
        assert_eq!(res.status(), 400, "instance {i} refuses the revoked family");
        assert_eq!(cluster.introspect(i, refreshed["access_token"].as_str().unwrap()).await["active"], false);
        assert_eq!(cluster.introspect(i, &access).await["active"], false);
    }

    // A key rotated once (the CLI against the shared database) is published by every instance
    // within the key refresh interval (1 s here), and tokens it signs verify everywhere.
    let before = cluster.kids(0).await;
    let out =
        Command::new(BIN).args(["keys", "rotate", "--config", cluster.config.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut published = [false; 3];
    while published.iter().any(|p| !p) {
        assert!(Instant::now() < deadline, "not every instance published the new key within 5 s: {published:?}");
        for (i, done) in published.iter_mut().enumerate() {
            *done = cluster.kids(i).await.len() > before.len();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A client registered through instance 0 works through 1 and 2.
    let registration: Value = reqwest::Client::new()
        .post(format!("{}/register", cluster.bases[0]))
        .json(&serde_json::json!({
            "client_name": "registered once",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "tools:read",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = registration["client_id"].as_str().unwrap_or_else(|| panic!("{registration}")).to_owned();
    let secret = registration["client_secret"].as_str().unwrap().to_owned();
    for i in [1, 2] {
        let res =
            cluster.post(i, "/token", (&id, &secret), &[("grant_type", "client_credentials"), ("resource", MCP)]).await;
        assert_eq!(res.status(), 200, "instance {i}");
        let token: Value = res.json().await.unwrap();
        let kid = header_kid(token["access_token"].as_str().unwrap());
        assert!(!before.contains(&kid), "signed with the rotated key");
        assert_eq!(cluster.introspect((i + 1) % 3, token["access_token"].as_str().unwrap()).await["active"], true);
    }
}

fn header_kid(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}
