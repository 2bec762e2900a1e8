//! What survives a restart, config-as-code seeding, and signing-key rotation.

use std::sync::Arc;

use mandate_core::{MockClock, SystemRandom};
use serde_json::Value;

use crate::common::{
    AGENT_SECRET, Backend, MCP, Options, RS_SECRET, TestServer, assert_oauth_error, base_config, decode_unverified,
    fresh_database,
};
use crate::on_both_backends;

async fn jwks(s: &TestServer) -> Vec<String> {
    let v: Value = s.http.get(s.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

async fn restart_keeps_keys_clients_and_tokens(backend: Backend) {
    let s = TestServer::start(backend).await;
    let port = s.running.local_addr.port();
    let token = s.agent_token().await;
    let kids = jwks(&s).await;
    let db = s.stop().await;

    let s = TestServer::start_on(db, Options { port: Some(port), ..Options::default() }).await;
    assert_eq!(jwks(&s).await, kids, "the signing key survives a restart");
    assert_eq!(s.introspect(&token).await["active"], true, "tokens from before the restart stay valid");
    s.agent_token().await;
}

async fn seeding_is_idempotent_and_follows_edits(backend: Backend) {
    let s = TestServer::start(backend).await;
    let port = s.running.local_addr.port();
    let state = s.state().clone();
    let before = state.store.get_client("build-agent").await.unwrap().unwrap();
    // Seeding the same file again changes nothing.
    let report =
        mandate_server::seed::seed(state.store.as_ref(), &state.settings, state.clock.as_ref(), &SystemRandom::new())
            .await
            .unwrap();
    assert_eq!(report, Default::default());
    let db = s.stop().await;

    // Edit the file: a new secret and narrower scopes for build-agent; post-agent removed.
    let edited = base_config().replace(AGENT_SECRET, "rotated-build-agent-secret-0123456789abcdef").replace(
        "scopes = [\"tools:read\", \"tools:call\"]\n\n[[clients]]",
        "scopes = [\"tools:read\"]\n\n[[clients]]",
    );
    let edited = cut_client(&edited, "post-agent");
    let s = TestServer::start_on(db, Options { port: Some(port), config: edited, ..Options::default() }).await;
    let after = s.state().store.get_client("build-agent").await.unwrap().unwrap();
    assert_ne!(before, after);
    let old = s
        .post_form(
            "/token",
            Some(("build-agent", AGENT_SECRET)),
            &[("grant_type", "client_credentials"), ("resource", MCP)],
        )
        .await;
    assert_oauth_error(old, 401, "invalid_client").await;
    let new = s
        .post_form(
            "/token",
            Some(("build-agent", "rotated-build-agent-secret-0123456789abcdef")),
            &[("grant_type", "client_credentials"), ("resource", MCP)],
        )
        .await;
    assert_eq!(new.json::<Value>().await.unwrap()["scope"], "tools:read");
    // The removed client is disabled, not deleted.
    assert!(s.state().store.get_client("post-agent").await.unwrap().unwrap().disabled);
    let res = s
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("resource", MCP),
                ("client_id", "post-agent"),
                ("client_secret", crate::common::POST_SECRET),
            ],
        )
        .await;
    assert_oauth_error(res, 401, "invalid_client").await;
}

fn cut_client(config: &str, client_id: &str) -> String {
    config
        .split("[[clients]]")
        .filter(|block| !block.contains(&format!("client_id = \"{client_id}\"")))
        .collect::<Vec<_>>()
        .join("[[clients]]")
}

async fn users_are_seeded_with_argon2id_hashes(backend: Backend) {
    let db = fresh_database(backend).await;
    let config = format!(
        "{}\n[[users]]\nusername = \"alice\"\npassword = \"correct horse battery\"\nemail = \"alice@example.com\"\n",
        base_config()
    );
    let s = TestServer::start_on(db, Options { config: config.clone(), ..Options::default() }).await;
    let port = s.running.local_addr.port();
    let alice = s.state().store.get_user("alice").await.unwrap().unwrap();
    assert!(alice.password_hash.starts_with("$argon2id$"), "only a hash is stored");
    assert!(mandate_core::password::verify_password("correct horse battery", &alice.password_hash));
    let db = s.stop().await;
    // An unchanged password keeps its hash (no rewrite at every start).
    let s = TestServer::start_on(db, Options { config, port: Some(port), ..Options::default() }).await;
    assert_eq!(s.state().store.get_user("alice").await.unwrap().unwrap().password_hash, alice.password_hash);
}

async fn rotation_keeps_old_tokens_verifiable_until_they_expire(backend: Backend) {
    let clock = MockClock::new(1_800_000_000);
    let db = fresh_database(backend).await;
    let s = TestServer::start_on(db, Options { clock: Arc::new(clock.clone()), ..Options::default() }).await;
    let old_token = s.agent_token().await;
    let [old_kid] = jwks(&s).await.try_into().unwrap();

    let new_kid = s.rotate_keys().await;
    let state = s.state().clone();

    assert_eq!(jwks(&s).await, vec![new_kid.clone(), old_kid.clone()], "both keys are published, the active one first");
    let new_token = s.agent_token().await;
    assert_eq!(decode_unverified(&new_token).0["kid"], new_kid.as_str(), "new tokens use the new key");
    assert_eq!(s.introspect(&old_token).await["active"], true, "old tokens still verify");

    // Once every token the old key signed has expired, it is no longer published.
    clock.advance(300 + 31);
    state.keyring.reload(state.store.as_ref(), state.now()).await.unwrap();
    assert_eq!(jwks(&s).await, vec![new_kid]);
    assert_eq!(s.introspect(&old_token).await["active"], false);
    assert_eq!(s.introspect(&new_token).await["active"], false, "expired by then too");
    let fresh = s.agent_token().await;
    assert_eq!(s.introspect(&fresh).await["active"], true);
}

async fn another_instance_picks_up_a_rotation_on_an_unknown_kid(backend: Backend) {
    let a = TestServer::start(backend).await;
    let b = TestServer::start_on(a.database.clone(), Options { issuer: Some(a.issuer.clone()), ..Options::default() })
        .await;
    a.rotate_keys().await;
    let token = a.agent_token().await;
    // b has not reloaded yet; meeting the unknown kid makes it look.
    let res = b.post_form("/introspect", Some(("resource-server", RS_SECRET)), &[("token", &token)]).await;
    assert_eq!(res.json::<Value>().await.unwrap()["active"], true);
}

on_both_backends!(
    restart_keeps_keys_clients_and_tokens,
    seeding_is_idempotent_and_follows_edits,
    users_are_seeded_with_argon2id_hashes,
    rotation_keeps_old_tokens_verifiable_until_they_expire,
    another_instance_picks_up_a_rotation_on_an_unknown_kid,
);
