//! Discovery (RFC 8414, OpenID Connect Discovery) at every well-known form, and the JWKS.

use serde_json::Value;

use crate::common::{Backend, Options, TestServer, fresh_database};
use crate::on_both_backends;

async fn metadata_is_served_at_both_root_forms(backend: Backend) {
    let s = TestServer::start(backend).await;
    let host = s.base.clone();
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let res = s.http.get(format!("{host}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let m: Value = res.json().await.unwrap();
        assert_eq!(m["issuer"], s.base.as_str());
        assert_eq!(m["token_endpoint"], s.url("/token"));
        assert_eq!(m["jwks_uri"], s.url("/jwks.json"));
        assert_eq!(m["introspection_endpoint"], s.url("/introspect"));
        assert_eq!(m["revocation_endpoint"], s.url("/revoke"));
        assert_eq!(m["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(
            m["grant_types_supported"],
            serde_json::json!([
                "authorization_code",
                "client_credentials",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ])
        );
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"])
        );
        assert_eq!(
            m["introspection_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
        );
        assert_eq!(
            m["token_endpoint_auth_signing_alg_values_supported"],
            serde_json::json!(["ES256", "EdDSA", "RS256", "PS256"])
        );
        assert_eq!(
            m["scopes_supported"],
            serde_json::json!(["admin", "email", "offline_access", "openid", "profile", "tools:call", "tools:read"])
        );
        assert_eq!(m["authorization_endpoint"], s.url("/authorize"));
        assert_eq!(m["pushed_authorization_request_endpoint"], s.url("/par"));
        assert_eq!(m["userinfo_endpoint"], s.url("/userinfo"));
        assert_eq!(m["end_session_endpoint"], s.url("/logout"));
        assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        assert_eq!(m["id_token_signing_alg_values_supported"], serde_json::json!(["ES256"]));
        // Nothing advertised that is not implemented yet.
        for absent in ["registration_endpoint", "dpop_signing_alg_values_supported", "device_authorization_endpoint"] {
            assert!(m.get(absent).is_none(), "{absent} must not be advertised");
        }
    }
}

async fn issuer_with_path_is_served_at_every_form(backend: Backend) {
    let db = fresh_database(backend).await;
    let s = TestServer::start_on(db, Options { issuer_path: "/tenant1".into(), ..Options::default() }).await;
    let origin = s.base.trim_end_matches("/tenant1").to_owned();
    for path in [
        "/.well-known/oauth-authorization-server/tenant1",
        "/.well-known/openid-configuration/tenant1",
        "/tenant1/.well-known/openid-configuration",
        "/tenant1/.well-known/oauth-authorization-server",
    ] {
        let res = s.http.get(format!("{origin}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let m: Value = res.json().await.unwrap();
        assert_eq!(m["issuer"], format!("{origin}/tenant1"));
        assert_eq!(m["token_endpoint"], format!("{origin}/tenant1/token"));
    }
    // The root forms belong to another issuer and are not served.
    let res = s.http.get(format!("{origin}/.well-known/oauth-authorization-server")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    // Endpoints live under the issuer's path.
    let token = s.agent_token().await;
    assert!(s.introspect(&token).await["active"].as_bool().unwrap());
}

async fn jwks_publishes_the_signing_key(backend: Backend) {
    let s = TestServer::start(backend).await;
    let jwks: Value = s.http.get(s.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["crv"], "P-256");
    assert_eq!(k["alg"], "ES256");
    assert_eq!(k["use"], "sig");
    assert!(k["kid"].as_str().is_some_and(|kid| kid.len() == 43), "kid is the RFC 7638 thumbprint");
    assert!(k.get("d").is_none(), "no private key material");
    let (header, _) = crate::common::decode_unverified(&s.agent_token().await);
    assert_eq!(header["kid"], k["kid"]);
}

async fn eddsa_and_rs256_keys_are_selectable(backend: Backend) {
    for (alg, kty) in [("EdDSA", "OKP"), ("RS256", "RSA")] {
        let db = fresh_database(backend).await;
        let config = format!("[keys]\nalgorithm = \"{alg}\"\n{}", crate::common::base_config());
        let s = TestServer::start_on(db, Options { config, ..Options::default() }).await;
        let jwks: Value = s.http.get(s.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
        assert_eq!(jwks["keys"][0]["alg"], alg);
        assert_eq!(jwks["keys"][0]["kty"], kty);
        let token = s.agent_token().await;
        assert_eq!(crate::common::decode_unverified(&token).0["alg"], alg);
        assert_eq!(s.introspect(&token).await["active"], true);
    }
}

on_both_backends!(
    metadata_is_served_at_both_root_forms,
    issuer_with_path_is_served_at_every_form,
    jwks_publishes_the_signing_key,
    eddsa_and_rs256_keys_are_selectable,
);
