//! A minimal browser for the page tests: keeps cookies, never follows redirects, and reads the
//! hidden fields of forms. The real-browser tests (interop/, Chromium) cover rendering.
#![allow(dead_code)]

use std::collections::BTreeMap;

use base64::Engine as _;
use mandate_core::pkce;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use super::TestServer;

pub const ALICE_PASSWORD: &str = "alice-correct-horse-battery";
pub const WEB_SECRET: &str = "web-agent-secret-0123456789abcdefghijklmn";
pub const NATIVE_REDIRECT: &str = "http://127.0.0.1/callback";
pub const WEB_REDIRECT: &str = "https://agent.example/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// Users and code-flow clients, added to the base config.
pub fn delegation_config() -> String {
    format!(
        r#"{base}
[[users]]
username = "alice"
password = "{ALICE_PASSWORD}"
email = "alice@example.com"

[[users]]
username = "mallory"
password = "mallory-password-123"

[[clients]]
client_id = "desktop-agent"
client_name = "Desktop Agent"
token_endpoint_auth_method = "none"
application_type = "native"
redirect_uris = ["{NATIVE_REDIRECT}"]
scopes = ["tools:read", "tools:call", "admin", "openid", "profile", "email", "offline_access"]

[[clients]]
client_id = "web-agent"
client_name = "Web Agent"
client_secret = "{WEB_SECRET}"
redirect_uris = ["{WEB_REDIRECT}"]
post_logout_redirect_uris = ["https://agent.example/bye"]
scopes = ["tools:read", "openid", "email", "offline_access"]
resources = ["{mcp}"]

[[clients]]
client_id = "par-agent"
client_secret = "{WEB_SECRET}"
redirect_uris = ["https://par.example/cb"]
require_pushed_authorization_requests = true
scopes = ["tools:read", "openid"]
"#,
        base = super::base_config(),
        mcp = super::MCP,
    )
}

pub struct Browser {
    pub http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    /// Every Set-Cookie header seen, as sent.
    pub set_cookie_headers: Vec<String>,
}

/// A page or redirect as the browser saw it.
pub struct Seen {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Seen {
    /// The value of hidden input `name` in the page.
    pub fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].replace("&#x2f;", "/").replace("&amp;", "&"))
    }

    /// A query parameter of the redirect's location.
    pub fn param(&self, name: &str) -> Option<String> {
        let location = self.location.as_ref()?;
        let url = url::Url::parse(location).ok()?;
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    pub fn redirects_to(&self, prefix: &str) -> bool {
        (300..400).contains(&self.status) && self.location.as_deref().is_some_and(|l| l.starts_with(prefix))
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, cookies: BTreeMap::new(), set_cookie_headers: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn see(&mut self, res: reqwest::Response) -> Seen {
        for value in res.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap().to_owned();
            let pair = text.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
            self.set_cookie_headers.push(text);
        }
        let status = res.status().as_u16();
        let location = res.headers().get(LOCATION).map(|l| l.to_str().unwrap().to_owned());
        let headers = res.headers().clone();
        let body = res.text().await.unwrap();
        Seen { status, location, headers, body }
    }

    pub async fn get(&mut self, url: &str) -> Seen {
        let res = self.http.get(url).header(COOKIE, self.cookie_header()).send().await.unwrap();
        self.see(res).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Seen {
        let res = self.http.post(url).header(COOKIE, self.cookie_header()).form(form).send().await.unwrap();
        self.see(res).await
    }

    /// Signs in on the page `login` points at (following to it), with the page's CSRF token.
    pub async fn sign_in(&mut self, login_location: &str, username: &str, password: &str) -> Seen {
        let page = self.get(login_location).await;
        assert_eq!(page.status, 200, "login page: {}", page.body);
        let csrf = page.field("csrf").expect("csrf field on the login page");
        let request = page.field("request");
        let mut form = vec![("csrf", csrf.as_str()), ("username", username), ("password", password)];
        if let Some(r) = request.as_deref() {
            form.push(("request", r));
        }
        self.post(login_location.split('?').next().unwrap(), &form).await
    }

    /// On the consent page at `location`: approve or deny, optionally remembering.
    pub async fn decide(&mut self, location: &str, decision: &str, remember: bool) -> Seen {
        let page = self.get(location).await;
        assert_eq!(page.status, 200, "consent page: {}", page.body);
        let csrf = page.field("csrf").expect("csrf field on the consent page");
        let request = page.field("request").expect("request field on the consent page");
        let mut form = vec![("csrf", csrf.as_str()), ("request", request.as_str()), ("decision", decision)];
        if remember {
            form.push(("remember", "yes"));
        }
        self.post(location.split('?').next().unwrap(), &form).await
    }
}

/// An authorization URL for `client_id` with PKCE S256 over [`VERIFIER`].
pub fn authorize_url(server: &TestServer, client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let challenge = pkce::s256(VERIFIER);
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "st-123"),
    ];
    params.push(("resource", super::MCP));
    // Extra parameters replace the defaults; an empty value removes one.
    params.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    params.extend_from_slice(extra);
    let query = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    server.url(&format!("/authorize?{query}"))
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Runs the front channel as alice: authorize, sign in, approve. Returns the code.
pub async fn authorize_as_alice(
    server: &TestServer,
    browser: &mut Browser,
    client_id: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let start = browser.get(&authorize_url(server, client_id, redirect_uri, extra)).await;
    let mut step = start;
    if step.redirects_to(&server.url("/login")) {
        step = browser.sign_in(step.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    }
    if step.redirects_to(&server.url("/consent")) {
        step = browser.decide(step.location.as_deref().unwrap(), "approve", false).await;
    }
    assert!(
        step.redirects_to(redirect_uri),
        "expected a redirect to the client, got {} {:?} {}",
        step.status,
        step.location,
        step.body
    );
    assert_eq!(step.param("iss").as_deref(), Some(server.issuer.as_str()), "RFC 9207 iss");
    assert_eq!(step.param("state").as_deref(), Some("st-123"));
    step.param("code").expect("code in the redirect")
}

/// Exchanges a code for desktop-agent (public) with the right verifier.
pub async fn redeem(server: &TestServer, client_id: &str, code: &str, redirect_uri: &str) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", VERIFIER),
    ];
    if client_id == "web-agent" {
        return server.post_form("/token", Some(("web-agent", WEB_SECRET)), &form).await;
    }
    form.push(("client_id", client_id));
    server.post_form("/token", None, &form).await
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
