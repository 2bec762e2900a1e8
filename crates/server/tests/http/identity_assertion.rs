//! Enterprise-managed authorization (ID-JAG) and identity chaining across two mandate instances
//! with different issuers: X, the enterprise identity provider where alice signs in, and Y, the
//! authorization server of an MCP server, which trusts X's keys (fetched from X's `jwks_uri`).

use serde_json::{Value, json};

use crate::common::browser::{Browser, VERIFIER, authorize_as_alice, delegation_config};
use crate::common::{Backend, MCP, Options, TestServer, assert_oauth_error, decode_unverified, fresh_database};

const SECRET: &str = "id-jag-test-secret-0123456789abcdefghijklmn";
const TOOLS: &str = "https://tools.example/mcp";
const OTHER: &str = "https://other.example/mcp";
const REDIRECT: &str = "https://agent-a.example/cb";
const TE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

struct Pair {
    idp: TestServer,
    rs_as: TestServer,
}

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start(backend: Backend) -> Pair {
    let (px, py) = (port(), port());
    let (x, y) = (format!("http://127.0.0.1:{px}"), format!("http://127.0.0.1:{py}"));
    let idp_config = format!(
        r#"{base}
[[clients]]
client_id = "agent-a"
client_secret = "{SECRET}"
redirect_uris = ["{REDIRECT}"]
grant_types = ["authorization_code", "{TE}"]
scopes = ["openid", "email", "tools:read"]

[[clients]]
client_id = "agent-b"
client_secret = "{SECRET}"
grant_types = ["{TE}"]
scopes = ["openid"]

[[chaining_targets]]
issuer = "{y}"
client_ids = {{ "agent-a" = "agent-a-at-y" }}
"#,
        base = delegation_config()
    );
    let jwt = format!("\"{JWT_BEARER}\"");
    let as_config = format!(
        r#"[registration]
allow_private_networks = true

[[resources]]
uri = "{TOOLS}"
scopes = ["tools:read", "tools:call"]

[[resources]]
uri = "{OTHER}"
scopes = ["tools:read"]

[[clients]]
client_id = "agent-a-at-y"
client_secret = "{SECRET}"
grant_types = [{jwt}]
scopes = ["tools:read"]

[[clients]]
client_id = "other-at-y"
client_secret = "{SECRET}"
grant_types = [{jwt}]
scopes = ["tools:read"]

[[clients]]
client_id = "resource-server"
client_secret = "{rs}"
grant_types = []

[[trusted_issuers]]
issuer = "{x}"
jwks_uri = "{x}/jwks.json"
"#,
        rs = crate::common::RS_SECRET
    );
    let idp = TestServer::start_on(
        fresh_database(backend).await,
        Options { config: idp_config, port: Some(px), ..Options::default() },
    )
    .await;
    let rs_as = TestServer::start_on(
        fresh_database(backend).await,
        Options { config: as_config, port: Some(py), ..Options::default() },
    )
    .await;
    assert_eq!((idp.issuer.as_str(), rs_as.issuer.as_str()), (x.as_str(), y.as_str()));
    Pair { idp, rs_as }
}

/// alice signs in at X for agent-a: the token response (ID token included).
async fn alice_at_idp(idp: &TestServer) -> Value {
    let mut browser = Browser::new();
    let code =
        authorize_as_alice(idp, &mut browser, "agent-a", REDIRECT, &[("scope", "openid email tools:read")]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("resource", MCP),
    ];
    let res = idp.post_form("/token", Some(("agent-a", SECRET)), &form).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A 200 JSON response, or a failure showing the body.
async fn ok_json(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn post(server: &TestServer, client: &str, form: &[(&str, &str)]) -> reqwest::Response {
    server.post_form("/token", Some((client, SECRET)), form).await
}

/// The token exchange that asks X for an ID-JAG for `audience`.
fn id_jag_request<'a>(id_token: &'a str, audience: &'a str) -> [(&'a str, &'a str); 7] {
    [
        ("grant_type", TE),
        ("subject_token", id_token),
        ("subject_token_type", ID_TOKEN),
        ("requested_token_type", ID_JAG),
        ("audience", audience),
        ("resource", TOOLS),
        ("scope", "tools:read tools:call"),
    ]
}

/// The jwt-bearer grant redeeming `assertion` for `resource`.
fn redemption<'a>(assertion: &'a str, resource: &'a str) -> [(&'a str, &'a str); 3] {
    [("grant_type", JWT_BEARER), ("assertion", assertion), ("resource", resource)]
}

async fn an_id_jag_from_one_instance_is_redeemed_at_another(backend: Backend) {
    let Pair { idp, rs_as } = start(backend).await;
    assert_eq!(idp.metadata().await["identity_chaining_requested_token_types_supported"][0], ID_JAG);
    let y_meta = rs_as.metadata().await;
    assert_eq!(y_meta["authorization_grant_profiles_supported"], json!(["urn:ietf:params:oauth:grant-profile:id-jag"]));
    assert!(y_meta["grant_types_supported"].as_array().unwrap().contains(&json!(JWT_BEARER)));
    assert!(
        y_meta.get("trusted_issuers").is_none() && !y_meta.to_string().contains(&idp.issuer),
        "no allow-list revealed"
    );

    let signed_in = alice_at_idp(&idp).await;
    let id_token = signed_in["id_token"].as_str().unwrap();
    let body = ok_json(post(&idp, "agent-a", &id_jag_request(id_token, &rs_as.issuer)).await).await;
    assert_eq!(body["issued_token_type"], ID_JAG);
    assert_eq!(body["token_type"], "N_A");
    assert!(body.get("refresh_token").is_none());
    let id_jag = body["access_token"].as_str().unwrap().to_owned();
    let (header, claims) = decode_unverified(&id_jag);
    assert_eq!(header["typ"], "oauth-id-jag+jwt");
    assert_eq!(claims["iss"], idp.issuer.as_str());
    assert_eq!(claims["aud"], rs_as.issuer.as_str());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "agent-a-at-y", "the client's id at the resource authorization server");
    assert_eq!(claims["resource"], TOOLS);
    assert_eq!(claims["email"], "alice@example.com");
    for claim in ["jti", "iat", "exp", "auth_time"] {
        assert!(claims.get(claim).is_some(), "{claim} in {claims}");
    }

    // Bad assertions at Y, each invalid_grant (or invalid_request without one), none consuming it:
    // another client's, for another resource, garbage, an access token of X, none at all.
    let refused =
        assert_oauth_error(post(&rs_as, "other-at-y", &redemption(&id_jag, TOOLS)).await, 400, "invalid_grant").await;
    assert!(refused["error_description"].as_str().unwrap().contains("agent-a-at-y"), "{refused}");
    assert_oauth_error(post(&rs_as, "agent-a-at-y", &redemption(&id_jag, OTHER)).await, 400, "invalid_grant").await;
    assert_oauth_error(post(&rs_as, "agent-a-at-y", &redemption("not.a.jwt", TOOLS)).await, 400, "invalid_grant").await;
    let x_access = signed_in["access_token"].as_str().unwrap();
    let typ =
        assert_oauth_error(post(&rs_as, "agent-a-at-y", &redemption(x_access, TOOLS)).await, 400, "invalid_grant")
            .await;
    assert!(typ["error_description"].as_str().unwrap().contains("typ"), "an access token is not a grant: {typ}");
    let none = [("grant_type", JWT_BEARER), ("resource", TOOLS)];
    assert_oauth_error(post(&rs_as, "agent-a-at-y", &none).await, 400, "invalid_request").await;

    let tokens = ok_json(post(&rs_as, "agent-a-at-y", &redemption(&id_jag, TOOLS)).await).await;
    assert!(tokens.get("refresh_token").is_none(), "the client presents a new assertion instead");
    assert_eq!(tokens["scope"], "tools:read", "asked ∩ asserted ∩ what the client may have");
    let (_, at) = decode_unverified(tokens["access_token"].as_str().unwrap());
    // X's alice is not a person of Y: by default her name is qualified with X's issuer.
    let alice_of_x = format!("{}#alice", idp.issuer);
    assert_eq!(
        (at["iss"].as_str(), at["sub"].as_str(), at["aud"].as_str()),
        (Some(rs_as.issuer.as_str()), Some(alice_of_x.as_str()), Some(TOOLS))
    );
    assert_eq!(at["client_id"], "agent-a-at-y");
    assert_eq!(rs_as.introspect(tokens["access_token"].as_str().unwrap()).await["active"], true);

    // Replayed: refused (the jti is recorded in the database every instance shares).
    let replay =
        assert_oauth_error(post(&rs_as, "agent-a-at-y", &redemption(&id_jag, TOOLS)).await, 400, "invalid_grant").await;
    assert!(replay["error_description"].as_str().unwrap().contains("used already"), "{replay}");
    // An assertion X issued is not redeemed by X itself.
    assert_oauth_error(post(&idp, "agent-a", &redemption(&id_jag, MCP)).await, 400, "unauthorized_client").await;

    // At X: no assertion for an unknown server, nor from another client's ID token.
    assert_oauth_error(
        post(&idp, "agent-a", &id_jag_request(id_token, "https://unknown.example")).await,
        400,
        "invalid_target",
    )
    .await;
    let other = assert_oauth_error(
        post(&idp, "agent-b", &id_jag_request(id_token, &rs_as.issuer)).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(other["error_description"].as_str().unwrap().contains("another client"), "{other}");
}

async fn identity_chaining_carries_the_actor_to_the_other_domain(backend: Backend) {
    let Pair { idp, rs_as } = start(backend).await;
    let signed_in = alice_at_idp(&idp).await;
    let access_token = signed_in["access_token"].as_str().unwrap();
    let form = [
        ("grant_type", TE),
        ("subject_token", access_token),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ("requested_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        ("audience", rs_as.issuer.as_str()),
        ("scope", "tools:read"),
    ];
    let body = ok_json(post(&idp, "agent-a", &form).await).await;
    assert_eq!(body["issued_token_type"], "urn:ietf:params:oauth:token-type:jwt");
    assert_eq!(body["token_type"], "N_A");
    let grant = body["access_token"].as_str().unwrap();
    let (_, claims) = decode_unverified(grant);
    assert_eq!(claims["aud"], rs_as.issuer.as_str());
    assert_eq!(claims["act"], json!({ "sub": "agent-a" }));

    let form = [("grant_type", JWT_BEARER), ("assertion", grant), ("resource", TOOLS)];
    let tokens = ok_json(post(&rs_as, "agent-a-at-y", &form).await).await;
    let (_, at) = decode_unverified(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], format!("{}#alice", idp.issuer));
    // The chain of custody crosses the domains: X's actor marked as X's, the redeeming client
    // outermost (until issue 15 the chain was copied as is, naming agent-a as if it were Y's).
    assert_eq!(at["act"], json!({ "sub": "agent-a-at-y", "act": { "sub": "agent-a", "iss": idp.issuer } }));
}

/// rmcp's enterprise-managed authorization client (feature `auth-enterprise-managed`), written
/// by others, runs both exchanges against the two instances and checks every binding itself.
async fn rmcp_enterprise_managed_client_completes_the_flow(backend: Backend) {
    use rmcp::transport::auth::default_oauth_http_client;
    use rmcp::transport::auth::enterprise::{EmaAuthorizationServer, EmaClientAuthentication, EmaExchangeRequest};
    let Pair { idp, rs_as } = start(backend).await;
    let signed_in = alice_at_idp(&idp).await;
    let id_token = signed_in["id_token"].as_str().unwrap();
    let secret = || EmaClientAuthentication::ClientSecretBasic(oauth2::ClientSecret::new(SECRET.to_owned()));
    let at_idp =
        EmaAuthorizationServer::new(&idp.issuer, idp.url("/token"), "agent-a").with_client_authentication(secret());
    let at_as = EmaAuthorizationServer::new(&rs_as.issuer, rs_as.url("/token"), "agent-a-at-y")
        .with_client_authentication(secret());
    let http = default_oauth_http_client().unwrap();
    let token = EmaExchangeRequest::new_with_id_token(at_idp, at_as, TOOLS, id_token)
        .with_scopes(["tools:read"])
        .exchange(&http, &http)
        .await
        .expect("rmcp accepts both responses");
    assert_eq!(token.scopes, std::collections::HashSet::from(["tools:read".to_owned()]));
    let introspected = rs_as.introspect(token.access_token.secret()).await;
    assert_eq!(introspected["active"], true);
    let alice_of_x = format!("{}#alice", idp.issuer);
    assert_eq!((introspected["sub"].as_str(), introspected["aud"].as_str()), (Some(alice_of_x.as_str()), Some(TOOLS)));
}

/// Issue 15, item 23: X issues no ID-JAG from an ID token whose grant has been revoked, nor for
/// a person whose account is disabled (both used to be accepted until the ID token expired).
async fn no_identity_assertion_from_a_revoked_grant_or_for_a_disabled_person(backend: Backend) {
    let Pair { idp, rs_as } = start(backend).await;
    let store = &idp.state().store;
    let now = idp.state().now();

    let first = alice_at_idp(&idp).await;
    let revoked = store.revoke_grants_of("alice", "agent-a", now).await.unwrap();
    assert_eq!(revoked, 1);
    let id_token = first["id_token"].as_str().unwrap();
    let body = assert_oauth_error(
        post(&idp, "agent-a", &id_jag_request(id_token, &rs_as.issuer)).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(
        body["error_description"].as_str().unwrap().contains("grant it was issued with has been revoked"),
        "{body}"
    );

    // A new grant gives a new ID token, which works; until alice's account is disabled.
    let second = alice_at_idp(&idp).await;
    let id_token = second["id_token"].as_str().unwrap();
    ok_json(post(&idp, "agent-a", &id_jag_request(id_token, &rs_as.issuer)).await).await;
    let mut alice = store.get_user("alice").await.unwrap().unwrap();
    alice.disabled = true;
    store.put_user(&alice, now).await.unwrap();
    let body = assert_oauth_error(
        post(&idp, "agent-a", &id_jag_request(id_token, &rs_as.issuer)).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(body["error_description"].as_str().unwrap().contains("disabled"), "{body}");
}

// ---- A partner's assertions, signed here with a key Y trusts -----------------------------------

pub(crate) const PARTNER: &str = "https://partner.example";
pub(crate) const COLLEAGUE: &str = "https://colleague.example";

/// Another server's signing key, and JWTs signed with it.
pub(crate) struct Partner {
    pub issuer: String,
    key: mandate_core::jose::SigningKey,
    pkcs8: Vec<u8>,
}

impl Partner {
    pub fn new(issuer: &str) -> Self {
        use mandate_core::jose::{SigningAlgorithm, SigningKey, generate_private_key};
        let pkcs8 = generate_private_key(SigningAlgorithm::ES256).unwrap();
        let key = SigningKey::from_pkcs8(SigningAlgorithm::ES256, &pkcs8).unwrap();
        Self { issuer: issuer.to_owned(), key, pkcs8 }
    }

    pub fn jwks(&self) -> Value {
        serde_json::to_value(mandate_core::jose::public_jwks([&self.key])).unwrap()
    }

    /// A `[[trusted_issuers]]` entry with the key inline, and `extra` lines.
    pub fn trusted(&self, extra: &str) -> String {
        let jwks = crate::private_key_jwt::toml_inline(&self.jwks());
        format!("\n[[trusted_issuers]]\nissuer = \"{}\"\njwks = {jwks}\n{extra}\n", self.issuer)
    }

    /// `claims` signed with header `typ` (none at all for `None`) and `kid`.
    pub fn sign_as(&self, typ: Option<&str>, kid: &str, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = typ.map(str::to_owned);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
    }

    pub fn sign(&self, typ: Option<&str>, claims: &Value) -> String {
        self.sign_as(typ, &self.key.kid, claims)
    }

    /// A JWT grant for `audience` and client `client_id` at it, for `sub`, valid two minutes.
    pub fn grant(&self, audience: &str, client_id: &str, sub: &str, jti: &str) -> Value {
        let now = mandate_core::Clock::now(&mandate_core::SystemClock);
        json!({ "iss": self.issuer, "sub": sub, "aud": audience, "client_id": client_id, "jti": jti,
                "iat": now, "exp": now + 120, "resource": TOOLS, "scope": "tools:read" })
    }
}

/// Y alone, trusting the partner (`subjects` qualified) and a colleague whose people are Y's own
/// (`subjects = "local"`), with local people alice and one named like a partner's subject.
async fn start_y(backend: Backend, partner: &Partner, colleague: &Partner, extra: &str) -> TestServer {
    let jwt = format!("\"{JWT_BEARER}\"");
    let config = format!(
        r#"[token_exchange]
max_delegation_depth = 3

[[users]]
username = "alice"
password = "alice-at-y-password-0123"

[[users]]
username = "dora"
password = "dora-at-y-password-01234"

[[users]]
username = "{PARTNER}#bob"
password = "bob-at-y-password-012345"

[[resources]]
uri = "{TOOLS}"
scopes = ["tools:read", "tools:call"]

[[clients]]
client_id = "agent-a-at-y"
client_secret = "{SECRET}"
grant_types = [{jwt}]
scopes = ["tools:read"]

[[clients]]
client_id = "resource-server"
client_secret = "{rs}"
grant_types = []
{trusted_partner}{trusted_colleague}"#,
        rs = crate::common::RS_SECRET,
        trusted_partner = partner.trusted(extra),
        trusted_colleague = colleague.trusted("subjects = \"local\"\nsubject_map = { \"a.smith\" = \"alice\" }"),
    );
    TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await
}

async fn redeem(y: &TestServer, assertion: &str) -> reqwest::Response {
    post(y, "agent-a-at-y", &[("grant_type", JWT_BEARER), ("assertion", assertion), ("resource", TOOLS)]).await
}

async fn refused(res: reqwest::Response, says: &str) -> Value {
    let body = assert_oauth_error(res, 400, "invalid_grant").await;
    assert!(body["error_description"].as_str().unwrap().contains(says), "expected {says:?}: {body}");
    body
}

/// Issue 15, item 20: a partner's `act` chain named local clients that never acted, a chain of 12
/// was minted past `max_delegation_depth`, and its `sub` "alice" became Y's alice.
async fn a_partners_actors_and_subjects_stay_the_partners(backend: Backend) {
    let (partner, colleague) = (Partner::new(PARTNER), Partner::new(COLLEAGUE));
    let y = start_y(backend, &partner, &colleague, "").await;

    let mut claims = partner.grant(&y.issuer, "agent-a-at-y", "alice", "chain-1");
    claims["act"] = json!({ "sub": "desktop", "act": { "sub": "mcp-b" } });
    let tokens = ok_json(redeem(&y, &partner.sign(Some("JWT"), &claims)).await).await;
    let (_, at) = decode_unverified(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], format!("{PARTNER}#alice"), "the partner's alice is not Y's alice");
    let expected_act = json!({ "sub": "agent-a-at-y", "act": { "sub": "desktop", "iss": PARTNER,
                                "act": { "sub": "mcp-b", "iss": PARTNER } } });
    assert_eq!(at["act"], expected_act);
    let introspected = y.introspect(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!((&introspected["sub"], &introspected["act"]), (&at["sub"], &expected_act));

    // Deeper than max_delegation_depth = 3 once the redeeming client is added: refused.
    let mut act = json!({ "sub": "actor-12" });
    for i in (1..12).rev() {
        act = json!({ "sub": format!("actor-{i}"), "act": act });
    }
    for (jti, act) in
        [("deep-12", act), ("deep-3", json!({ "sub": "a", "act": { "sub": "b", "act": { "sub": "c" } } }))]
    {
        let mut claims = partner.grant(&y.issuer, "agent-a-at-y", "alice", jti);
        claims["act"] = act;
        refused(redeem(&y, &partner.sign(Some("JWT"), &claims)).await, "actors").await;
    }
    // A chain claiming one of Y's own clients acted, or a malformed one: refused.
    let mut claims = partner.grant(&y.issuer, "agent-a-at-y", "alice", "ours");
    claims["act"] = json!({ "sub": "desktop", "act": { "sub": "agent-a-at-y", "iss": y.issuer } });
    refused(redeem(&y, &partner.sign(Some("JWT"), &claims)).await, "actor of this server").await;
    let mut claims = partner.grant(&y.issuer, "agent-a-at-y", "alice", "malformed");
    claims["act"] = json!("desktop");
    refused(redeem(&y, &partner.sign(Some("JWT"), &claims)).await, "act").await;

    // A qualified name that a person of Y already has: refused, never merged.
    let claims = partner.grant(&y.issuer, "agent-a-at-y", "bob", "bob-1");
    refused(redeem(&y, &partner.sign(Some("JWT"), &claims)).await, "collides").await;

    // The colleague's people are Y's (subjects = "local"), by name or through subject_map; a
    // person Y does not know, or a disabled one, is refused.
    let tokens = ok_json(
        redeem(&y, &colleague.sign(Some("JWT"), &colleague.grant(&y.issuer, "agent-a-at-y", "a.smith", "c-1"))).await,
    )
    .await;
    assert_eq!(decode_unverified(tokens["access_token"].as_str().unwrap()).1["sub"], "alice");
    let tokens = ok_json(
        redeem(&y, &colleague.sign(Some("JWT"), &colleague.grant(&y.issuer, "agent-a-at-y", "dora", "c-2"))).await,
    )
    .await;
    assert_eq!(decode_unverified(tokens["access_token"].as_str().unwrap()).1["sub"], "dora");
    let unknown = colleague.grant(&y.issuer, "agent-a-at-y", "zed", "c-3");
    refused(redeem(&y, &colleague.sign(Some("JWT"), &unknown)).await, "not a person of this server").await;
    let store = &y.state().store;
    let mut dora = store.get_user("dora").await.unwrap().unwrap();
    dora.disabled = true;
    store.put_user(&dora, y.state().now()).await.unwrap();
    let disabled = colleague.grant(&y.issuer, "agent-a-at-y", "dora", "c-4");
    refused(redeem(&y, &colleague.sign(Some("JWT"), &disabled)).await, "disabled").await;
}

/// Issue 15, item 22: an `exp` a century ahead, an empty `jti`, and an assertion without `typ`
/// (taken as a chaining grant whose `client_id` was optional) were all accepted.
async fn assertions_are_bounded_and_typed(backend: Backend) {
    let (partner, colleague) = (Partner::new(PARTNER), Partner::new(COLLEAGUE));
    let y = start_y(backend, &partner, &colleague, "max_lifetime = \"10m\"").await;
    let now = mandate_core::Clock::now(&mandate_core::SystemClock);

    let mut century = partner.grant(&y.issuer, "agent-a-at-y", "alice", "century");
    century["exp"] = json!(now + 100 * 366 * 86_400);
    refused(redeem(&y, &partner.sign(Some("JWT"), &century)).await, "limit is 600 seconds").await;
    let mut nine_minutes = partner.grant(&y.issuer, "agent-a-at-y", "alice", "nine");
    nine_minutes["exp"] = json!(now + 540);
    ok_json(redeem(&y, &partner.sign(Some("JWT"), &nine_minutes)).await).await;

    // An empty jti is refused each time (it does not get recorded and block the next one).
    for _ in 0..2 {
        let empty = partner.grant(&y.issuer, "agent-a-at-y", "alice", "");
        refused(redeem(&y, &partner.sign(Some("JWT"), &empty)).await, "jti").await;
    }
    let long = partner.grant(&y.issuer, "agent-a-at-y", "alice", &"j".repeat(257));
    refused(redeem(&y, &partner.sign(Some("JWT"), &long)).await, "jti").await;

    // The profile is the typ's: none is refused, and so is an access token or an unknown typ.
    let plain = partner.grant(&y.issuer, "agent-a-at-y", "alice", "untyped");
    refused(redeem(&y, &partner.sign(None, &plain)).await, "typ").await;
    refused(redeem(&y, &partner.sign(Some("at+jwt"), &plain)).await, "typ at+jwt").await;
    refused(redeem(&y, &partner.sign(Some("secevent+jwt"), &plain)).await, "typ").await;
    // Every profile names the client that may redeem it.
    let mut no_client = partner.grant(&y.issuer, "agent-a-at-y", "alice", "no-client");
    no_client.as_object_mut().unwrap().remove("client_id");
    refused(redeem(&y, &partner.sign(Some("JWT"), &no_client)).await, "client_id").await;
    refused(redeem(&y, &partner.sign(Some("oauth-id-jag+jwt"), &no_client)).await, "client_id").await;
    // An ID-JAG must carry iat.
    let mut no_iat = partner.grant(&y.issuer, "agent-a-at-y", "alice", "no-iat");
    no_iat.as_object_mut().unwrap().remove("iat");
    refused(redeem(&y, &partner.sign(Some("oauth-id-jag+jwt"), &no_iat)).await, "iat").await;
    // The same JWT with typ JWT is fine.
    ok_json(redeem(&y, &partner.sign(Some("JWT"), &plain)).await).await;

    // An issuer configured with untyped_grants: no typ means an identity-chaining grant.
    let y2 = start_y(backend, &partner, &colleague, "untyped_grants = true").await;
    let plain = partner.grant(&y2.issuer, "agent-a-at-y", "alice", "untyped");
    ok_json(redeem(&y2, &partner.sign(None, &plain)).await).await;
}

/// A partner whose keys are served at a URL by a server the test can break.
struct KeyHost {
    url: String,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    broken: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

async fn serve_keys(jwks: Value) -> KeyHost {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let broken = Arc::new(AtomicBool::new(false));
    let (h, b) = (Arc::clone(&hits), Arc::clone(&broken));
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let (h, b, jwks) = (Arc::clone(&h), Arc::clone(&b), jwks.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                if b.load(Ordering::SeqCst) {
                    ([(axum::http::header::CONTENT_TYPE, "text/html")], "<html>maintenance</html>".to_owned())
                } else {
                    ([(axum::http::header::CONTENT_TYPE, "application/json")], jwks.to_string())
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    KeyHost { url, hits, broken }
}

/// Issue 15, item 21: one assertion with an unknown `kid` during a short outage of the partner's
/// `jwks_uri` threw the good keys away, and every later valid assertion was refused, each after
/// a fetch of its own.
async fn a_partner_outage_does_not_throw_away_its_keys(backend: Backend) {
    use std::sync::atomic::Ordering;
    let partner = Partner::new(PARTNER);
    let host = serve_keys(partner.jwks()).await;
    let config = format!(
        r#"[registration]
allow_private_networks = true

[[resources]]
uri = "{TOOLS}"
scopes = ["tools:read"]

[[clients]]
client_id = "agent-a-at-y"
client_secret = "{SECRET}"
grant_types = ["{JWT_BEARER}"]
scopes = ["tools:read"]

[[trusted_issuers]]
issuer = "{PARTNER}"
jwks_uri = "{url}"
"#,
        url = host.url
    );
    let y = TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await;
    let assertion = |jti: &str| partner.sign(Some("JWT"), &partner.grant(&y.issuer, "agent-a-at-y", "alice", jti));
    ok_json(redeem(&y, &assertion("before")).await).await;
    assert_eq!(host.hits.load(Ordering::SeqCst), 1);

    // Past the fetcher's minimum refresh interval (30 s), the partner's key host breaks and an
    // assertion arrives signed with a kid it never published: one refetch, which fails.
    tokio::time::sleep(std::time::Duration::from_secs(31)).await;
    host.broken.store(true, Ordering::SeqCst);
    let stranger = partner.sign_as(Some("JWT"), "rotated-kid", &partner.grant(&y.issuer, "agent-a-at-y", "alice", "x"));
    refused(redeem(&y, &stranger).await, "no key").await;
    assert_eq!(host.hits.load(Ordering::SeqCst), 2);

    // The keys Y had still verify: twenty valid assertions, all accepted, none fetching.
    for i in 0..20 {
        ok_json(redeem(&y, &assertion(&format!("during-{i}"))).await).await;
    }
    // More unknown kids within the interval: the failure is remembered, nothing is fetched.
    for _ in 0..5 {
        refused(redeem(&y, &stranger).await, "no key").await;
    }
    assert_eq!(host.hits.load(Ordering::SeqCst), 2, "no fetch while the failure is remembered");
}

crate::on_both_backends!(
    an_id_jag_from_one_instance_is_redeemed_at_another,
    identity_chaining_carries_the_actor_to_the_other_domain,
    rmcp_enterprise_managed_client_completes_the_flow,
    no_identity_assertion_from_a_revoked_grant_or_for_a_disabled_person,
    a_partners_actors_and_subjects_stay_the_partners,
    assertions_are_bounded_and_typed,
    a_partner_outage_does_not_throw_away_its_keys
);
