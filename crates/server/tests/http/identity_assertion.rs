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
    assert_eq!(
        (at["iss"].as_str(), at["sub"].as_str(), at["aud"].as_str()),
        (Some(rs_as.issuer.as_str()), Some("alice"), Some(TOOLS))
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
    assert_eq!(at["sub"], "alice");
    assert_eq!(at["act"], json!({ "sub": "agent-a" }), "the chain of custody crosses the domains");
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
    assert_eq!((introspected["sub"].as_str(), introspected["aud"].as_str()), (Some("alice"), Some(TOOLS)));
}

crate::on_both_backends!(
    an_id_jag_from_one_instance_is_redeemed_at_another,
    identity_chaining_carries_the_actor_to_the_other_domain,
    rmcp_enterprise_managed_client_completes_the_flow
);
