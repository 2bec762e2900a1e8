//! The token endpoint: client credentials with both authentication methods, and every error.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::common::{AGENT_SECRET, API, Backend, MCP, POST_SECRET, TestServer, assert_oauth_error, decode_unverified};
use crate::on_both_backends;

const CC: (&str, &str) = ("grant_type", "client_credentials");

async fn basic_client_gets_an_rfc9068_token(backend: Backend) {
    let s = TestServer::start(backend).await;
    let res = s
        .post_form("/token", Some(("build-agent", AGENT_SECRET)), &[CC, ("resource", MCP), ("scope", "tools:read")])
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "tools:read");
    let token = body["access_token"].as_str().unwrap();

    let (header, _) = decode_unverified(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    // Verify the signature against the published JWKS, as a resource server would.
    let jwks: JwkSet = s.http.get(s.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    let jwk = jwks.find(header["kid"].as_str().unwrap()).expect("kid is published");
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[MCP]);
    validation.set_issuer(&[s.base.as_str()]);
    let claims =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap().claims;
    assert_eq!(claims["sub"], "build-agent", "client credentials: sub is the client (RFC 9068 §2.2)");
    assert_eq!(claims["client_id"], "build-agent");
    assert_eq!(claims["aud"], MCP);
    assert_eq!(claims["scope"], "tools:read");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 22));
}

async fn post_client_gets_a_token_and_scope_defaults_to_what_it_may_have(backend: Backend) {
    let s = TestServer::start(backend).await;
    let form = [CC, ("resource", MCP), ("client_id", "post-agent"), ("client_secret", POST_SECRET)];
    let res = s.post_form("/token", None, &form).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    // post-agent may have tools:read and admin; the MCP server offers tools:read and tools:call.
    assert_eq!(body["scope"], "tools:read");
    let (_, claims) = decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], "post-agent");
    // The resource URI is matched in canonical form (uppercase scheme and host accepted).
    let res = s
        .post_form(
            "/token",
            None,
            &[
                CC,
                ("resource", "HTTP://127.0.0.1:9090/mcp"),
                ("client_id", "post-agent"),
                ("client_secret", POST_SECRET),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn client_authentication_failures_are_invalid_client(backend: Backend) {
    let s = TestServer::start(backend).await;
    let form = [CC, ("resource", MCP)];
    for (basic, what) in [
        (Some(("build-agent", "wrong-secret")), "wrong secret"),
        (Some(("nobody", AGENT_SECRET)), "unknown client"),
        (None, "no credentials"),
    ] {
        let res = s.post_form("/token", basic, &form).await;
        let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        assert_oauth_error(res, 401, "invalid_client").await;
        assert!(challenge.is_some_and(|c| c.starts_with("Basic")), "{what}: 401 carries a Basic challenge");
    }
    // Unknown client and wrong secret read the same, so clients cannot be enumerated.
    let a = s.post_form("/token", Some(("build-agent", "wrong")), &form).await.json::<Value>().await.unwrap();
    let b = s.post_form("/token", Some(("nobody", "wrong")), &form).await.json::<Value>().await.unwrap();
    assert_eq!(a, b);
    // A client registered for client_secret_post may not use Basic, and the reverse.
    let res = s.post_form("/token", Some(("post-agent", POST_SECRET)), &form).await;
    let body = assert_oauth_error(res, 401, "invalid_client").await;
    assert!(body["error_description"].as_str().unwrap().contains("client_secret_post"));
    let res = s
        .post_form(
            "/token",
            None,
            &[CC, ("resource", MCP), ("client_id", "build-agent"), ("client_secret", AGENT_SECRET)],
        )
        .await;
    assert_oauth_error(res, 401, "invalid_client").await;
    // Malformed Basic credentials.
    let res =
        s.http.post(s.url("/token")).header("authorization", "Basic not-base64!").form(&form).send().await.unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
}

async fn two_authentication_methods_are_invalid_request(backend: Backend) {
    let s = TestServer::start(backend).await;
    let res = s
        .post_form(
            "/token",
            Some(("build-agent", AGENT_SECRET)),
            &[CC, ("resource", MCP), ("client_secret", AGENT_SECRET)],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_request").await;
}

async fn grant_type_errors(backend: Backend) {
    let s = TestServer::start(backend).await;
    let agent = Some(("build-agent", AGENT_SECRET));
    let res = s.post_form("/token", agent, &[("resource", MCP)]).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    for unsupported in ["password", "implicit", "urn:example:made-up"] {
        let res = s.post_form("/token", agent, &[("grant_type", unsupported), ("resource", MCP)]).await;
        assert_oauth_error(res, 400, "unsupported_grant_type").await;
    }
    // resource-server is registered without grants: it may introspect, not obtain tokens.
    let res =
        s.post_form("/token", Some(("resource-server", crate::common::RS_SECRET)), &[CC, ("resource", MCP)]).await;
    assert_oauth_error(res, 400, "unauthorized_client").await;
}

async fn scope_errors_are_invalid_scope(backend: Backend) {
    let s = TestServer::start(backend).await;
    let agent = Some(("build-agent", AGENT_SECRET));
    for scope in ["admin", "tools:read admin", "unheard-of", "bad\"quote"] {
        let res = s.post_form("/token", agent, &[CC, ("resource", MCP), ("scope", scope)]).await;
        assert_oauth_error(res, 400, "invalid_scope").await;
    }
    // build-agent has no scope on the admin API at all.
    let res = s.post_form("/token", agent, &[CC, ("resource", API)]).await;
    assert_oauth_error(res, 400, "invalid_scope").await;
}

async fn resource_errors_are_invalid_target(backend: Backend) {
    let s = TestServer::start(backend).await;
    let agent = Some(("build-agent", AGENT_SECRET));
    let cases: [&[(&str, &str)]; 5] = [
        &[CC],
        &[CC, ("resource", "https://unregistered.example/mcp")],
        &[CC, ("resource", "http://127.0.0.1:9090/mcp#frag")],
        &[CC, ("resource", "not a uri")],
        &[CC, ("resource", MCP), ("resource", API)],
    ];
    for form in cases {
        let res = s.post_form("/token", agent, form).await;
        assert_oauth_error(res, 400, "invalid_target").await;
    }
    // post-agent is limited to the MCP server.
    let res = s
        .post_form(
            "/token",
            None,
            &[CC, ("resource", API), ("client_id", "post-agent"), ("client_secret", POST_SECRET)],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_target").await;
}

async fn malformed_requests_get_spec_shaped_answers(backend: Backend) {
    let s = TestServer::start(backend).await;
    let agent = Some(("build-agent", AGENT_SECRET));
    let res = s.post_form("/token", agent, &[CC, CC, ("resource", MCP)]).await;
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("grant_type"));
    let res = s
        .http
        .post(s.url("/token"))
        .basic_auth("build-agent", Some(AGENT_SECRET))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    let huge = "a".repeat(100 * 1024);
    let res = s.post_form("/token", agent, &[CC, ("resource", MCP), ("scope", &huge)]).await;
    assert_oauth_error(res, 413, "invalid_request").await;
    let res = s.http.get(s.url("/token")).send().await.unwrap();
    assert_oauth_error(res, 405, "invalid_request").await;
    // Garbage bytes and a broken percent-encoding are read, not crashed on.
    let res = s
        .http
        .post(s.url("/token"))
        .basic_auth("build-agent", Some(AGENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', b'%', b'z', b'&', b'&'])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
}

on_both_backends!(
    basic_client_gets_an_rfc9068_token,
    post_client_gets_a_token_and_scope_defaults_to_what_it_may_have,
    client_authentication_failures_are_invalid_client,
    two_authentication_methods_are_invalid_request,
    grant_type_errors,
    scope_errors_are_invalid_scope,
    resource_errors_are_invalid_target,
    malformed_requests_get_spec_shaped_answers,
);
