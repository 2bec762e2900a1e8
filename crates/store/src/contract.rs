//! The storage contract: behaviour every backend must show. Each backend runs these checks
//! against a fresh database through `contract_tests!`.

use mandate_core::attestation::{AttestationBinding, AttestationClaim};
use mandate_core::client::{ApplicationType, ClientSource};
use mandate_core::{
    AuditEvent, AuditKind, Client, GrantType, Resource, ResourceUri, ScopeSet, SecretDigest, TokenEndpointAuthMethod,
    User,
};

use crate::{
    AuthorizationCode, AuthorizationRequest, BrowserSession, CodeRedemption, Consent, Grant, IssuanceRecord,
    RefreshToken, RefreshUse, Registration, Store, StoredKey, TokenRecord,
};

/// Generates one `#[tokio::test]` per contract check; `$make` is an async expression giving a
/// fresh store.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@each $make;
            clients_round_trip, client_updates_keep_identity, config_clients_are_listed_and_disabled,
            resources_round_trip, users_round_trip, first_key_is_inserted_once, rotation_retires_and_publishes_until,
            revocations_are_idempotent_and_purged, audit_appends_in_order_and_finds_by_jti, ping_answers,
            public_client_redirects_round_trip, users_are_listed_by_name, rate_events_count_within_window,
            events_are_taken_up_to_the_limit, racing_event_takes_never_pass_the_limit,
            authorization_request_is_taken_once, expired_authorization_request_is_gone, code_is_redeemed_once,
            racing_redemptions_have_one_winner, refresh_token_rotates_once, revoking_a_grant_revokes_its_tokens,
            withdrawing_consent_revokes_the_pairs_grants, consents_are_replaced_listed_and_deleted,
            forgetting_a_clients_authorizations_spares_other_clients_and_used_codes,
            sessions_expire, purge_drops_only_expired_delegation_rows, private_key_jwt_clients_round_trip,
            jti_is_recorded_once, expired_jti_is_recorded_again, racing_jti_records_have_one_winner,
            purge_drops_expired_jtis, registered_clients_round_trip, registration_never_takes_over_a_client,
            failed_registration_leaves_no_client, registrations_are_found_by_metadata,
            deleting_a_registered_client_removes_both, touching_a_registration_moves_last_used_at,
            updating_a_registration_replaces_client_and_metadata,
            purge_drops_only_unused_registered_clients, grant_attestation_round_trips_and_binds_once,
            attestation_challenge_is_taken_once, racing_challenge_takes_have_one_winner,
            purge_drops_expired_attestation_challenges, lineage_round_trips_and_lists_children,
            revoking_a_token_revokes_what_was_exchanged_from_it, issuances_are_committed_together,
            retention_deletes_old_audit_and_expired_lineage_oldest_first);
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::contract::$name(&store).await;
            }
        )*
    };
}

fn client(id: &str) -> Client {
    Client {
        client_id: id.to_owned(),
        client_name: Some("Build agent".into()),
        secret: Some(SecretDigest::of("s3cret-s3cret-s3cret")),
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        grant_types: vec![GrantType::ClientCredentials],
        scopes: ScopeSet::parse("tools:read tools:call").unwrap(),
        resources: Some(vec![ResourceUri::parse("https://mcp.example/mcp").unwrap()]),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        application_type: ApplicationType::Web,
        require_pushed_authorization_requests: false,
        jwks: None,
        jwks_uri: None,
        logo_uri: Some(format!("https://{id}.example/logo.png")),
        disabled: false,
    }
}

pub async fn clients_round_trip(store: &dyn Store) {
    assert_eq!(store.get_client("nobody").await.unwrap(), None);
    let c = client("build-agent");
    store.put_client(&c, ClientSource::Config, 100).await.unwrap();
    assert_eq!(store.get_client("build-agent").await.unwrap(), Some(c.clone()));
    let open = Client { resources: None, secret: None, client_name: None, ..client("any-resource") };
    store.put_client(&open, ClientSource::Config, 100).await.unwrap();
    assert_eq!(store.get_client("any-resource").await.unwrap(), Some(open));
}

pub async fn client_updates_keep_identity(store: &dyn Store) {
    let mut c = client("agent");
    store.put_client(&c, ClientSource::Config, 100).await.unwrap();
    c.scopes = ScopeSet::parse("tools:read").unwrap();
    c.token_endpoint_auth_method = TokenEndpointAuthMethod::ClientSecretPost;
    c.secret = Some(SecretDigest::of("another-secret-value"));
    store.put_client(&c, ClientSource::Config, 200).await.unwrap();
    let got = store.get_client("agent").await.unwrap().unwrap();
    assert_eq!(got, c);
    assert!(got.secret.unwrap().verify("another-secret-value"));
}

pub async fn config_clients_are_listed_and_disabled(store: &dyn Store) {
    store.put_client(&client("b"), ClientSource::Config, 1).await.unwrap();
    store.put_client(&client("a"), ClientSource::Config, 1).await.unwrap();
    assert_eq!(store.list_client_ids(ClientSource::Config).await.unwrap(), vec!["a".to_owned(), "b".to_owned()]);
    assert!(store.set_client_disabled("a", true, 2).await.unwrap());
    assert!(store.get_client("a").await.unwrap().unwrap().disabled);
    assert!(!store.set_client_disabled("missing", true, 2).await.unwrap());
}

pub async fn resources_round_trip(store: &dyn Store) {
    let r = Resource {
        uri: ResourceUri::parse("http://127.0.0.1:9090/mcp").unwrap(),
        name: "Example".into(),
        scopes: ScopeSet::parse("tools:read tools:call").unwrap(),
    };
    store.put_resource(&r, 1).await.unwrap();
    assert_eq!(store.get_resource(&r.uri).await.unwrap(), Some(r.clone()));
    let renamed = Resource { name: "Renamed".into(), ..r.clone() };
    store.put_resource(&renamed, 2).await.unwrap();
    assert_eq!(store.list_resources().await.unwrap(), vec![renamed]);
    let other = ResourceUri::parse("http://127.0.0.1:9090/other").unwrap();
    assert_eq!(store.get_resource(&other).await.unwrap(), None);
}

pub async fn users_round_trip(store: &dyn Store) {
    let u = User {
        username: "alice".into(),
        password_hash: "$argon2id$v=19$x".into(),
        email: Some("alice@example.com".into()),
        disabled: false,
    };
    store.put_user(&u, 1).await.unwrap();
    assert_eq!(store.get_user("alice").await.unwrap(), Some(u.clone()));
    let changed = User { email: None, disabled: true, ..u };
    store.put_user(&changed, 2).await.unwrap();
    assert_eq!(store.get_user("alice").await.unwrap(), Some(changed));
    assert_eq!(store.get_user("bob").await.unwrap(), None);
}

fn key(kid: &str, created_at: i64) -> StoredKey {
    StoredKey {
        kid: kid.into(),
        alg: "ES256".into(),
        private_key: vec![1, 2, 3, kid.len() as u8],
        created_at,
        retired_at: None,
        publish_until: None,
    }
}

pub async fn first_key_is_inserted_once(store: &dyn Store) {
    assert!(store.published_keys(10).await.unwrap().is_empty());
    assert!(store.insert_first_key(&key("k1", 10)).await.unwrap());
    assert!(!store.insert_first_key(&key("k2", 11)).await.unwrap(), "a second first key must not be added");
    assert_eq!(store.published_keys(12).await.unwrap(), vec![key("k1", 10)]);
}

pub async fn rotation_retires_and_publishes_until(store: &dyn Store) {
    store.insert_first_key(&key("k1", 10)).await.unwrap();
    store.rotate_key(&key("k2", 20), 20, 320).await.unwrap();
    let keys = store.published_keys(21).await.unwrap();
    assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), vec!["k2", "k1"], "newest first");
    assert_eq!(keys[1].retired_at, Some(20));
    assert_eq!(keys[1].publish_until, Some(320));
    assert_eq!(keys[0].retired_at, None);
    let later = store.published_keys(321).await.unwrap();
    assert_eq!(
        later.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        vec!["k2"],
        "retired key dropped after its tokens expired"
    );
}

pub async fn revocations_are_idempotent_and_purged(store: &dyn Store) {
    assert!(!store.is_access_token_revoked("j1").await.unwrap());
    store.revoke_access_token("j1", 100, 10).await.unwrap();
    store.revoke_access_token("j1", 100, 11).await.unwrap();
    store.revoke_access_token("j2", 500, 10).await.unwrap();
    assert!(store.is_access_token_revoked("j1").await.unwrap());
    assert_eq!(store.purge_expired_revocations(200).await.unwrap(), 1);
    assert!(!store.is_access_token_revoked("j1").await.unwrap());
    assert!(store.is_access_token_revoked("j2").await.unwrap());
}

pub async fn audit_appends_in_order_and_finds_by_jti(store: &dyn Store) {
    let mut issued = AuditEvent::new(5, AuditKind::TokenIssued, "ok");
    issued.client_id = Some("agent".into());
    issued.jti = Some("j9".into());
    issued.scope = Some("tools:read".into());
    issued.grant_type = Some("client_credentials".into());
    let mut refused = AuditEvent::new(6, AuditKind::TokenRefused, "invalid_scope");
    refused.detail = Some("scope admin is not allowed".into());
    store.append_audit(&issued).await.unwrap();
    store.append_audit(&refused).await.unwrap();
    assert_eq!(store.recent_audit(10).await.unwrap(), vec![refused.clone(), issued.clone()]);
    assert_eq!(store.recent_audit(1).await.unwrap(), vec![refused]);
    assert_eq!(store.audit_by_jti("j9").await.unwrap(), vec![issued]);
}

pub async fn ping_answers(store: &dyn Store) {
    store.ping().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&store.backend()));
}

pub async fn public_client_redirects_round_trip(store: &dyn Store) {
    let mut c = Client {
        secret: None,
        token_endpoint_auth_method: TokenEndpointAuthMethod::None,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: vec!["http://127.0.0.1/callback".into(), "com.example.app:/oauth2redirect".into()],
        post_logout_redirect_uris: vec!["http://127.0.0.1/bye".into()],
        application_type: ApplicationType::Native,
        require_pushed_authorization_requests: true,
        ..client("desktop-app")
    };
    store.put_client(&c, ClientSource::Config, 100).await.unwrap();
    assert_eq!(store.get_client("desktop-app").await.unwrap(), Some(c.clone()));
    c.redirect_uris = vec!["https://app.example/cb".into()];
    c.post_logout_redirect_uris = vec![];
    c.application_type = ApplicationType::Web;
    c.require_pushed_authorization_requests = false;
    store.put_client(&c, ClientSource::Config, 200).await.unwrap();
    assert_eq!(store.get_client("desktop-app").await.unwrap(), Some(c), "an update replaces every new field");
}

pub async fn users_are_listed_by_name(store: &dyn Store) {
    assert!(store.list_users().await.unwrap().is_empty());
    for name in ["carol", "alice", "bob"] {
        let u =
            User { username: name.into(), password_hash: format!("$argon2id${name}"), email: None, disabled: false };
        store.put_user(&u, 1).await.unwrap();
    }
    let users = store.list_users().await.unwrap();
    assert_eq!(users.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), vec!["alice", "bob", "carol"]);
    assert_eq!(users[1].password_hash, "$argon2id$bob");
}

pub async fn rate_events_count_within_window(store: &dyn Store) {
    assert_eq!(store.recent_events("user:alice", 100, 60).await.unwrap(), 0);
    assert_eq!(store.record_event("user:alice", 100, 60).await.unwrap(), 1);
    assert_eq!(store.record_event("user:alice", 110, 60).await.unwrap(), 2);
    assert_eq!(store.record_event("user:alice", 120, 60).await.unwrap(), 3);
    assert_eq!(store.record_event("ip:192.0.2.1", 120, 60).await.unwrap(), 1, "keys are counted apart");
    assert_eq!(store.recent_events("user:alice", 159, 60).await.unwrap(), 3);
    assert_eq!(store.recent_events("user:alice", 160, 60).await.unwrap(), 2, "the failure at 100 left the window");
    assert_eq!(store.record_event("user:alice", 181, 60).await.unwrap(), 1, "only this one is within 60 s");
    store.clear_events("user:alice").await.unwrap();
    assert_eq!(store.recent_events("user:alice", 181, 3600).await.unwrap(), 0);
    assert_eq!(store.recent_events("ip:192.0.2.1", 121, 60).await.unwrap(), 1, "clearing one key keeps the others");
}

pub async fn events_are_taken_up_to_the_limit(store: &dyn Store) {
    for at in [100, 110, 120] {
        assert!(store.take_event("user:alice", at, 60, 3).await.unwrap());
    }
    assert!(!store.take_event("user:alice", 130, 60, 3).await.unwrap(), "a fourth within the window");
    assert_eq!(store.recent_events("user:alice", 130, 60).await.unwrap(), 3, "a refused take counts nothing");
    assert!(store.take_event("user:bob", 130, 60, 3).await.unwrap(), "keys are counted apart");
    store.return_event("user:alice", 110).await.unwrap();
    assert_eq!(store.recent_events("user:alice", 130, 60).await.unwrap(), 2, "one given back");
    assert!(store.take_event("user:alice", 130, 60, 3).await.unwrap());
    assert!(store.take_event("user:alice", 161, 60, 3).await.unwrap(), "the event at 100 left the window");
}

pub async fn racing_event_takes_never_pass_the_limit(store: &dyn Store) {
    racing_event_takes_across_instances(store, store).await;
}

/// 60 takes at once, half through each instance, with room for 20: exactly 20 succeed.
pub async fn racing_event_takes_across_instances(a: &dyn Store, b: &dyn Store) {
    let takes = (0..60).map(|i| {
        let store = if i % 2 == 0 { a } else { b };
        async move { store.take_event("ip:192.0.2.7", 1000, 900, 20).await.unwrap() }
    });
    let taken = futures_util::future::join_all(takes).await.into_iter().filter(|t| *t).count();
    assert_eq!(taken, 20);
    assert_eq!(a.recent_events("ip:192.0.2.7", 1000, 900).await.unwrap(), 20);
}

fn authorization_request(handle_hash: &str, expires_at: i64) -> AuthorizationRequest {
    AuthorizationRequest {
        handle_hash: handle_hash.into(),
        client_id: "desktop-app".into(),
        redirect_uri: "http://127.0.0.1:53127/callback".into(),
        scope: "openid tools:read".into(),
        resources: "https://mcp.example/mcp".into(),
        state: Some("xyz".into()),
        nonce: Some("n-0S6".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        prompt: Some("login consent".into()),
        max_age: Some(300),
        pushed: true,
        client_registration: Some(
            r#"{"client_name":"Ephemeral agent","redirect_uris":["http://127.0.0.1/cb"]}"#.into(),
        ),
        created_at: 100,
        expires_at,
    }
}

pub async fn authorization_request_is_taken_once(store: &dyn Store) {
    let full = authorization_request("req-1", 200);
    let bare = AuthorizationRequest {
        handle_hash: "req-2".into(),
        state: None,
        nonce: None,
        prompt: None,
        max_age: None,
        pushed: false,
        client_registration: None,
        ..full.clone()
    };
    store.put_authorization_request(&full).await.unwrap();
    store.put_authorization_request(&bare).await.unwrap();
    assert_eq!(store.get_authorization_request("req-1", 150).await.unwrap(), Some(full.clone()));
    assert_eq!(store.get_authorization_request("req-2", 150).await.unwrap(), Some(bare.clone()));
    assert_eq!(
        store.get_authorization_request("req-1", 150).await.unwrap(),
        Some(full.clone()),
        "get does not consume"
    );
    assert_eq!(store.take_authorization_request("req-1", 150).await.unwrap(), Some(full));
    assert_eq!(store.take_authorization_request("req-1", 150).await.unwrap(), None, "taken twice");
    assert_eq!(store.get_authorization_request("req-1", 150).await.unwrap(), None);
    assert_eq!(store.take_authorization_request("req-2", 150).await.unwrap(), Some(bare));
    assert_eq!(store.take_authorization_request("nope", 150).await.unwrap(), None);
}

pub async fn expired_authorization_request_is_gone(store: &dyn Store) {
    store.put_authorization_request(&authorization_request("req-1", 200)).await.unwrap();
    assert!(store.get_authorization_request("req-1", 199).await.unwrap().is_some());
    assert_eq!(store.get_authorization_request("req-1", 200).await.unwrap(), None);
    assert_eq!(store.take_authorization_request("req-1", 200).await.unwrap(), None);
    assert_eq!(store.take_authorization_request("req-1", 201).await.unwrap(), None);
}

fn grant(grant_id: &str, username: &str, client_id: &str) -> Grant {
    Grant {
        grant_id: grant_id.into(),
        client_id: client_id.into(),
        username: username.into(),
        scope: "openid tools:read".into(),
        resources: "https://mcp.example/mcp".into(),
        auth_time: 90,
        created_at: 100,
        revoked_at: None,
        unverified_client_name: None,
        attestation: None,
    }
}

fn code(code_hash: &str, grant_id: &str, expires_at: i64) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: code_hash.into(),
        grant_id: grant_id.into(),
        client_id: "desktop-app".into(),
        redirect_uri: "http://127.0.0.1:53127/callback".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        nonce: Some("n-0S6".into()),
        created_at: 100,
        expires_at,
        used_at: None,
    }
}

fn refresh_token(token_hash: &str, grant_id: &str, parent_hash: Option<&str>, expires_at: i64) -> RefreshToken {
    RefreshToken {
        token_hash: token_hash.into(),
        grant_id: grant_id.into(),
        client_id: "desktop-app".into(),
        parent_hash: parent_hash.map(str::to_owned),
        scope: "tools:read".into(),
        created_at: 100,
        expires_at,
        used_at: None,
    }
}

pub async fn code_is_redeemed_once(store: &dyn Store) {
    store.put_grant(&grant("g1", "alice", "desktop-app")).await.unwrap();
    assert_eq!(store.get_grant("g1").await.unwrap(), Some(grant("g1", "alice", "desktop-app")));
    assert_eq!(store.get_grant("g2").await.unwrap(), None);
    // A pushed client's grant keeps its self-asserted name.
    let named = Grant {
        client_id: "urn:ietf:oauth:parameters:dynamic".into(),
        unverified_client_name: Some("Ephemeral agent".into()),
        ..grant("g-pushed", "alice", "")
    };
    store.put_grant(&named).await.unwrap();
    assert_eq!(store.get_grant("g-pushed").await.unwrap(), Some(named));
    let c = code("c1", "g1", 160);
    store.put_code(&c).await.unwrap();
    let used = AuthorizationCode { used_at: Some(110), ..c };
    assert_eq!(store.redeem_code("c1", "other-app", 110).await.unwrap(), CodeRedemption::Unknown, "not its client");
    assert_eq!(store.redeem_code("c1", "desktop-app", 110).await.unwrap(), CodeRedemption::Redeemed(used.clone()));
    assert_eq!(
        store.redeem_code("c1", "other-app", 120).await.unwrap(),
        CodeRedemption::Unknown,
        "another client's reuse is not a reuse of this code"
    );
    assert_eq!(store.redeem_code("c1", "desktop-app", 120).await.unwrap(), CodeRedemption::AlreadyUsed(used.clone()));
    assert_eq!(
        store.redeem_code("c1", "desktop-app", 500).await.unwrap(),
        CodeRedemption::AlreadyUsed(used),
        "a replay after expiry is still reported, so what the code issued can be revoked"
    );
    assert_eq!(store.redeem_code("unknown", "desktop-app", 110).await.unwrap(), CodeRedemption::Unknown);

    store.put_code(&code("c2", "g1", 160)).await.unwrap();
    assert_eq!(store.redeem_code("c2", "desktop-app", 160).await.unwrap(), CodeRedemption::Unknown, "expired at 160");
    assert_eq!(
        store.redeem_code("c2", "desktop-app", 161).await.unwrap(),
        CodeRedemption::Unknown,
        "an expired code stays unused"
    );
}

pub async fn racing_redemptions_have_one_winner(store: &dyn Store) {
    racing_redemptions_across_instances(store, store).await;
}

/// Two callers (tasks of one instance, or two instances on one database) present the same code,
/// or the same refresh token, at once: exactly one consumes it.
pub async fn racing_redemptions_across_instances(a: &dyn Store, b: &dyn Store) {
    a.put_grant(&grant("g1", "alice", "desktop-app")).await.unwrap();
    for i in 0..16 {
        let hash = format!("code-{i}");
        a.put_code(&code(&hash, "g1", 1000)).await.unwrap();
        let (first, second) =
            tokio::join!(a.redeem_code(&hash, "desktop-app", 110), b.redeem_code(&hash, "desktop-app", 110));
        let outcomes = [first.unwrap(), second.unwrap()];
        let redeemed = outcomes.iter().filter(|o| matches!(o, CodeRedemption::Redeemed(_))).count();
        let replayed = outcomes.iter().filter(|o| matches!(o, CodeRedemption::AlreadyUsed(_))).count();
        assert_eq!((redeemed, replayed), (1, 1), "round {i}: {outcomes:?}");

        let hash = format!("refresh-{i}");
        a.put_refresh_token(&refresh_token(&hash, "g1", None, 1000)).await.unwrap();
        let (first, second) = tokio::join!(a.use_refresh_token(&hash, 110), b.use_refresh_token(&hash, 110));
        let outcomes = [first.unwrap(), second.unwrap()];
        let rotated = outcomes.iter().filter(|o| matches!(o, RefreshUse::Rotated(_))).count();
        let replayed = outcomes.iter().filter(|o| matches!(o, RefreshUse::AlreadyUsed(_))).count();
        assert_eq!((rotated, replayed), (1, 1), "round {i}: {outcomes:?}");
    }
}

pub async fn refresh_token_rotates_once(store: &dyn Store) {
    store.put_grant(&grant("g1", "alice", "desktop-app")).await.unwrap();
    let first = refresh_token("r1", "g1", None, 1000);
    store.put_refresh_token(&first).await.unwrap();
    assert_eq!(store.get_refresh_token("r1").await.unwrap(), Some(first.clone()));
    let used = RefreshToken { used_at: Some(200), ..first };
    assert_eq!(store.use_refresh_token("r1", 200).await.unwrap(), RefreshUse::Rotated(used.clone()));
    let next = refresh_token("r2", "g1", Some("r1"), 1200);
    store.put_refresh_token(&next).await.unwrap();
    assert_eq!(
        store.use_refresh_token("r1", 210).await.unwrap(),
        RefreshUse::AlreadyUsed(used.clone()),
        "used_at says when it was first used"
    );
    assert_eq!(store.get_refresh_token("r1").await.unwrap(), Some(used));
    assert_eq!(store.get_refresh_token("r2").await.unwrap(), Some(next.clone()));
    assert_eq!(
        store.use_refresh_token("r2", 220).await.unwrap(),
        RefreshUse::Rotated(RefreshToken { used_at: Some(220), ..next })
    );
    assert_eq!(store.use_refresh_token("unknown", 220).await.unwrap(), RefreshUse::Unknown);
    assert_eq!(store.get_refresh_token("unknown").await.unwrap(), None);

    store.put_refresh_token(&refresh_token("r3", "g1", None, 300)).await.unwrap();
    assert_eq!(store.use_refresh_token("r3", 300).await.unwrap(), RefreshUse::Unknown, "expired at 300");
    assert_eq!(store.get_refresh_token("r3").await.unwrap().unwrap().used_at, None, "an expired token is not consumed");
}

pub async fn revoking_a_grant_revokes_its_tokens(store: &dyn Store) {
    store.put_grant(&grant("g1", "alice", "desktop-app")).await.unwrap();
    store.put_grant(&grant("g2", "alice", "desktop-app")).await.unwrap();
    store.put_refresh_token(&refresh_token("r1-used", "g1", None, 1000)).await.unwrap();
    store.put_refresh_token(&refresh_token("r1", "g1", Some("r1-used"), 1000)).await.unwrap();
    store.put_refresh_token(&refresh_token("r2", "g2", None, 1000)).await.unwrap();
    store.put_code(&code("c1", "g1", 1000)).await.unwrap();
    assert!(matches!(store.use_refresh_token("r1-used", 150).await.unwrap(), RefreshUse::Rotated(_)));
    store.record_access_token("jti-1", "g1", 1000).await.unwrap();
    store.record_access_token("jti-1", "g1", 1000).await.unwrap();
    store.record_access_token("jti-2", "g2", 1000).await.unwrap();
    assert!(!store.is_access_token_revoked("jti-1").await.unwrap(), "recorded is not revoked");

    assert!(store.revoke_grant("g1", 300).await.unwrap());
    assert!(!store.revoke_grant("g1", 400).await.unwrap(), "already revoked");
    assert!(!store.revoke_grant("nope", 400).await.unwrap());
    assert_eq!(store.get_grant("g1").await.unwrap().unwrap().revoked_at, Some(300), "first revocation time kept");

    assert_eq!(store.use_refresh_token("r1", 310).await.unwrap(), RefreshUse::Unknown);
    assert_eq!(store.use_refresh_token("r1-used", 310).await.unwrap(), RefreshUse::Unknown);
    assert_eq!(store.redeem_code("c1", "desktop-app", 310).await.unwrap(), CodeRedemption::Unknown);
    assert!(store.is_access_token_revoked("jti-1").await.unwrap());
    assert!(!store.is_access_token_revoked("jti-2").await.unwrap(), "another grant's token");
    assert!(!store.is_access_token_revoked("jti-unknown").await.unwrap());
    assert!(matches!(store.use_refresh_token("r2", 310).await.unwrap(), RefreshUse::Rotated(_)), "g2 is live");
}

pub async fn withdrawing_consent_revokes_the_pairs_grants(store: &dyn Store) {
    for (id, user, client) in
        [("g1", "alice", "app"), ("g2", "alice", "app"), ("g3", "alice", "other"), ("g4", "bob", "app")]
    {
        store.put_grant(&grant(id, user, client)).await.unwrap();
    }
    assert!(store.revoke_grant("g2", 200).await.unwrap());
    store.record_access_token("jti-1", "g1", 1000).await.unwrap();
    assert_eq!(store.revoke_grants_of("alice", "app", 300).await.unwrap(), 1, "g2 was revoked already");
    assert_eq!(store.get_grant("g1").await.unwrap().unwrap().revoked_at, Some(300));
    assert_eq!(store.get_grant("g2").await.unwrap().unwrap().revoked_at, Some(200));
    assert_eq!(store.get_grant("g3").await.unwrap().unwrap().revoked_at, None, "another client");
    assert_eq!(store.get_grant("g4").await.unwrap().unwrap().revoked_at, None, "another person");
    assert!(store.is_access_token_revoked("jti-1").await.unwrap());
    assert_eq!(store.revoke_grants_of("alice", "app", 400).await.unwrap(), 0);
}

fn consent(username: &str, client_id: &str, resources: &str, scope: &str, granted_at: i64) -> Consent {
    Consent {
        username: username.into(),
        client_id: client_id.into(),
        resources: resources.into(),
        scope: scope.into(),
        granted_at,
    }
}

pub async fn consents_are_replaced_listed_and_deleted(store: &dyn Store) {
    let both = "https://a.example/mcp https://b.example/mcp";
    assert_eq!(store.get_consent("alice", "app", both).await.unwrap(), None);
    store.put_consent(&consent("alice", "app", both, "tools:read", 10)).await.unwrap();
    let wider = consent("alice", "app", both, "tools:read tools:call", 20);
    store.put_consent(&wider).await.unwrap();
    assert_eq!(store.get_consent("alice", "app", both).await.unwrap(), Some(wider.clone()), "replaced");
    assert_eq!(store.get_consent("alice", "app", "https://a.example/mcp").await.unwrap(), None, "resources are key");

    let zed = consent("alice", "zed", "https://a.example/mcp", "tools:read", 5);
    let one = consent("alice", "app", "https://c.example/mcp", "tools:read", 30);
    store.put_consent(&zed).await.unwrap();
    store.put_consent(&one).await.unwrap();
    store.put_consent(&consent("bob", "app", both, "tools:read", 40)).await.unwrap();
    assert_eq!(store.list_consents("alice").await.unwrap(), vec![wider, one.clone(), zed.clone()]);

    assert!(store.delete_consent("alice", "app", both).await.unwrap());
    assert!(!store.delete_consent("alice", "app", both).await.unwrap());
    assert_eq!(store.get_consent("alice", "app", both).await.unwrap(), None);
    assert_eq!(store.list_consents("alice").await.unwrap(), vec![one, zed]);
    assert_eq!(store.list_consents("bob").await.unwrap().len(), 1);
    assert!(store.list_consents("carol").await.unwrap().is_empty());
}

pub async fn forgetting_a_clients_authorizations_spares_other_clients_and_used_codes(store: &dyn Store) {
    let mcp = "https://mcp.example/mcp";
    store.put_consent(&consent("alice", "desktop-app", mcp, "tools:read", 10)).await.unwrap();
    store.put_consent(&consent("alice", "other", mcp, "tools:read", 10)).await.unwrap();
    store.put_authorization_request(&authorization_request("waiting", 1_000)).await.unwrap();
    store.put_grant(&grant("g1", "alice", "desktop-app")).await.unwrap();
    store.put_code(&code("fresh", "g1", 1_000)).await.unwrap();
    store.put_code(&code("redeemed", "g1", 1_000)).await.unwrap();
    assert!(matches!(store.redeem_code("redeemed", "desktop-app", 110).await.unwrap(), CodeRedemption::Redeemed(_)));

    assert_eq!(store.forget_client_authorizations("desktop-app").await.unwrap(), 3);
    assert_eq!(store.get_consent("alice", "desktop-app", mcp).await.unwrap(), None);
    assert!(store.get_consent("alice", "other", mcp).await.unwrap().is_some(), "another client's consent stays");
    assert_eq!(store.get_authorization_request("waiting", 100).await.unwrap(), None);
    assert_eq!(store.redeem_code("fresh", "desktop-app", 120).await.unwrap(), CodeRedemption::Unknown);
    assert!(
        matches!(store.redeem_code("redeemed", "desktop-app", 120).await.unwrap(), CodeRedemption::AlreadyUsed(_)),
        "a used code stays, so its reuse is still detected"
    );
    assert_eq!(store.forget_client_authorizations("desktop-app").await.unwrap(), 0);
}

pub async fn sessions_expire(store: &dyn Store) {
    let s = BrowserSession { session_hash: "s1".into(), username: "alice".into(), auth_time: 100, expires_at: 500 };
    store.put_session(&s).await.unwrap();
    assert_eq!(store.get_session("s1", 499).await.unwrap(), Some(s.clone()));
    assert_eq!(store.get_session("s1", 500).await.unwrap(), None, "expired at 500");
    assert_eq!(store.get_session("s2", 100).await.unwrap(), None);
    let renewed = BrowserSession { auth_time: 450, expires_at: 900, ..s };
    store.put_session(&renewed).await.unwrap();
    assert_eq!(store.get_session("s1", 600).await.unwrap(), Some(renewed));
    store.delete_session("s1").await.unwrap();
    assert_eq!(store.get_session("s1", 100).await.unwrap(), None);
    store.delete_session("s1").await.unwrap();
}

pub async fn purge_drops_only_expired_delegation_rows(store: &dyn Store) {
    let now = 100_000;
    store.put_grant(&grant("g1", "alice", "desktop-app")).await.unwrap();
    store.put_authorization_request(&authorization_request("req-old", now)).await.unwrap();
    store.put_authorization_request(&authorization_request("req-new", now + 1)).await.unwrap();
    store.put_code(&code("c-old", "g1", now)).await.unwrap();
    store.put_code(&code("c-new", "g1", now + 1)).await.unwrap();
    store.put_refresh_token(&refresh_token("r-old", "g1", None, now)).await.unwrap();
    store.put_refresh_token(&refresh_token("r-new", "g1", Some("r-old"), now + 1)).await.unwrap();
    store.record_access_token("jti-old", "g1", now).await.unwrap();
    store.record_access_token("jti-new", "g1", now + 1).await.unwrap();
    for (hash, expires_at) in [("s-old", now), ("s-new", now + 1)] {
        let s = BrowserSession { session_hash: hash.into(), username: "alice".into(), auth_time: 1, expires_at };
        store.put_session(&s).await.unwrap();
    }
    store.record_event("user:alice", now - 86_400, 60).await.unwrap();
    store.record_event("user:alice", now - 86_399, 60).await.unwrap();

    assert_eq!(store.purge_expired_delegation(now).await.unwrap(), 6, "one expired row of each kind");
    assert_eq!(store.purge_expired_delegation(now).await.unwrap(), 0);

    assert_eq!(store.get_authorization_request("req-old", 1).await.unwrap(), None);
    assert!(store.get_authorization_request("req-new", 1).await.unwrap().is_some());
    assert_eq!(store.get_refresh_token("r-old").await.unwrap(), None);
    assert!(store.get_refresh_token("r-new").await.unwrap().is_some());
    assert_eq!(store.get_session("s-old", 1).await.unwrap(), None);
    assert!(store.get_session("s-new", 1).await.unwrap().is_some());
    assert_eq!(store.recent_events("user:alice", now, 200_000).await.unwrap(), 1);
    assert!(matches!(store.redeem_code("c-new", "desktop-app", now).await.unwrap(), CodeRedemption::Redeemed(_)));
    assert!(store.get_grant("g1").await.unwrap().is_some(), "grants outlive their tokens");
    store.revoke_grant("g1", now).await.unwrap();
    assert!(!store.is_access_token_revoked("jti-old").await.unwrap(), "its record was purged");
    assert!(store.is_access_token_revoked("jti-new").await.unwrap());
}

/// A JWK Set as a client registers it; the store keeps the text as given.
const JWKS: &str = concat!(
    r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","#,
    r#""y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#
);

pub async fn private_key_jwt_clients_round_trip(store: &dyn Store) {
    let mut c = Client {
        secret: None,
        token_endpoint_auth_method: TokenEndpointAuthMethod::PrivateKeyJwt,
        jwks: Some(JWKS.into()),
        jwks_uri: Some("https://agent.example/jwks.json".into()),
        ..client("signing-agent")
    };
    store.put_client(&c, ClientSource::Config, 100).await.unwrap();
    assert_eq!(store.get_client("signing-agent").await.unwrap(), Some(c.clone()));
    c.jwks = None;
    c.jwks_uri = Some("https://agent.example/keys".into());
    store.put_client(&c, ClientSource::Config, 200).await.unwrap();
    assert_eq!(store.get_client("signing-agent").await.unwrap(), Some(c.clone()), "an update replaces the keys");
    c.jwks = Some(JWKS.into());
    c.jwks_uri = None;
    store.put_client(&c, ClientSource::Config, 300).await.unwrap();
    assert_eq!(store.get_client("signing-agent").await.unwrap(), Some(c));
}

pub async fn jti_is_recorded_once(store: &dyn Store) {
    assert!(store.record_once("agent:j1", 200, 100).await.unwrap());
    assert!(!store.record_once("agent:j1", 200, 100).await.unwrap(), "a replay");
    assert!(!store.record_once("agent:j1", 900, 199).await.unwrap(), "still live at 199");
    assert!(store.record_once("agent:j2", 200, 100).await.unwrap(), "keys are recorded apart");
    assert!(store.record_once("other:j1", 200, 100).await.unwrap());
}

pub async fn expired_jti_is_recorded_again(store: &dyn Store) {
    assert!(store.record_once("agent:j1", 200, 100).await.unwrap());
    assert!(store.record_once("agent:j1", 400, 200).await.unwrap(), "expired at 200, replaced");
    assert!(!store.record_once("agent:j1", 400, 399).await.unwrap(), "the replacement lives until 400");
    assert!(store.record_once("agent:j1", 500, 400).await.unwrap());
}

pub async fn racing_jti_records_have_one_winner(store: &dyn Store) {
    racing_jti_records_across_instances(store, store).await;
}

/// Two callers (tasks of one instance, or two instances on one database) record the same key at
/// once, new or replacing an expired record: exactly one succeeds.
pub async fn racing_jti_records_across_instances(a: &dyn Store, b: &dyn Store) {
    for i in 0..16 {
        let key = format!("agent:new-{i}");
        let (first, second) = tokio::join!(a.record_once(&key, 1000, 100), b.record_once(&key, 1000, 100));
        let outcomes = [first.unwrap(), second.unwrap()];
        assert_eq!(outcomes.iter().filter(|&&recorded| recorded).count(), 1, "round {i}: {outcomes:?}");

        let key = format!("agent:expired-{i}");
        assert!(a.record_once(&key, 100, 50).await.unwrap());
        let (first, second) = tokio::join!(a.record_once(&key, 1000, 100), b.record_once(&key, 1000, 100));
        let outcomes = [first.unwrap(), second.unwrap()];
        assert_eq!(outcomes.iter().filter(|&&recorded| recorded).count(), 1, "round {i}, expired: {outcomes:?}");
    }
}

pub async fn purge_drops_expired_jtis(store: &dyn Store) {
    let now = 100_000;
    assert!(store.record_once("agent:old", now, 1).await.unwrap());
    assert!(store.record_once("agent:new", now + 1, 1).await.unwrap());
    assert_eq!(store.purge_expired_delegation(now).await.unwrap(), 1, "only the expired jti");
    assert_eq!(store.purge_expired_delegation(now).await.unwrap(), 0);
    assert!(!store.record_once("agent:new", now + 1, now).await.unwrap(), "a live jti is kept");
}

/// A public client as `/register` stores it.
fn registered_client(id: &str) -> Client {
    Client {
        client_name: Some("MCP desktop client".into()),
        secret: None,
        token_endpoint_auth_method: TokenEndpointAuthMethod::None,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        resources: None,
        redirect_uris: vec!["http://127.0.0.1:33418/callback".into()],
        application_type: ApplicationType::Native,
        ..client(id)
    }
}

fn registration(client_id: &str, metadata_hash: Option<&str>, created_at: i64) -> Registration {
    Registration {
        client_id: client_id.into(),
        access_token_hash: format!("rat-digest-{client_id}"),
        metadata_hash: metadata_hash.map(str::to_owned),
        created_at,
        last_used_at: created_at,
        metadata: Some(format!(r#"{{"client_name":"{client_id}"}}"#)),
        software_publisher: None,
    }
}

async fn register(store: &dyn Store, id: &str, metadata_hash: Option<&str>, created_at: i64) {
    store.register_client(&registered_client(id), &registration(id, metadata_hash, created_at)).await.unwrap();
}

pub async fn registered_clients_round_trip(store: &dyn Store) {
    assert_eq!(store.get_registration("dyn-1").await.unwrap(), None);
    let c = registered_client("dyn-1");
    let r = registration("dyn-1", Some("meta-1"), 100);
    store.register_client(&c, &r).await.unwrap();
    assert_eq!(store.get_client("dyn-1").await.unwrap(), Some(c));
    assert_eq!(store.get_registration("dyn-1").await.unwrap(), Some(r));
    assert_eq!(store.list_client_ids(ClientSource::Dynamic).await.unwrap(), vec!["dyn-1".to_owned()]);
    assert!(store.list_client_ids(ClientSource::Config).await.unwrap().is_empty(), "stored as dynamic, not config");
    let confidential = registration("dyn-2", None, 100);
    store.register_client(&client("dyn-2"), &confidential).await.unwrap();
    assert_eq!(store.get_registration("dyn-2").await.unwrap(), Some(confidential));
}

pub async fn registration_never_takes_over_a_client(store: &dyn Store) {
    let config = client("agent");
    store.put_client(&config, ClientSource::Config, 1).await.unwrap();
    assert!(store.register_client(&registered_client("agent"), &registration("agent", None, 100)).await.is_err());
    assert_eq!(store.get_client("agent").await.unwrap(), Some(config), "the config client is untouched");
    assert_eq!(store.list_client_ids(ClientSource::Config).await.unwrap(), vec!["agent".to_owned()]);
    assert_eq!(store.get_registration("agent").await.unwrap(), None);
}

pub async fn failed_registration_leaves_no_client(store: &dyn Store) {
    register(store, "first", None, 100).await;
    // The client insert succeeds, the registration row collides: the transaction undoes both.
    assert!(store.register_client(&registered_client("second"), &registration("first", None, 200)).await.is_err());
    assert_eq!(store.get_client("second").await.unwrap(), None);
    assert_eq!(store.list_client_ids(ClientSource::Dynamic).await.unwrap(), vec!["first".to_owned()]);
    assert_eq!(store.get_registration("first").await.unwrap().unwrap().created_at, 100);
}

pub async fn registrations_are_found_by_metadata(store: &dyn Store) {
    assert_eq!(store.find_registration_by_metadata("meta").await.unwrap(), None);
    register(store, "older", Some("meta"), 100).await;
    register(store, "newer", Some("meta"), 200).await;
    register(store, "other", Some("other-meta"), 300).await;
    register(store, "confidential", None, 400).await;
    let found = store.find_registration_by_metadata("meta").await.unwrap().unwrap();
    assert_eq!(found, registration("newer", Some("meta"), 200), "the most recent of several");
    assert!(store.set_client_disabled("newer", true, 500).await.unwrap());
    let found = store.find_registration_by_metadata("meta").await.unwrap().unwrap();
    assert_eq!(found.client_id, "older", "a disabled client is not shared");
    assert!(store.set_client_disabled("older", true, 500).await.unwrap());
    assert_eq!(store.find_registration_by_metadata("meta").await.unwrap(), None);
    assert_eq!(store.find_registration_by_metadata("other-meta").await.unwrap().unwrap().client_id, "other");
}

pub async fn deleting_a_registered_client_removes_both(store: &dyn Store) {
    let config = client("config-agent");
    store.put_client(&config, ClientSource::Config, 1).await.unwrap();
    register(store, "dyn-1", Some("meta"), 100).await;
    register(store, "dyn-2", Some("meta"), 100).await;
    assert!(store.delete_registered_client("dyn-1").await.unwrap());
    assert_eq!(store.get_client("dyn-1").await.unwrap(), None);
    assert_eq!(store.get_registration("dyn-1").await.unwrap(), None, "the registration goes with its client");
    assert_eq!(store.find_registration_by_metadata("meta").await.unwrap().unwrap().client_id, "dyn-2");
    assert!(!store.delete_registered_client("dyn-1").await.unwrap(), "already gone");
    assert!(!store.delete_registered_client("nobody").await.unwrap());
    assert!(!store.delete_registered_client("config-agent").await.unwrap(), "config clients are not deleted here");
    assert_eq!(store.get_client("config-agent").await.unwrap(), Some(config));
    // A registered client that the configuration later names becomes a config client.
    register(store, "promoted", None, 100).await;
    let promoted = client("promoted");
    store.put_client(&promoted, ClientSource::Config, 200).await.unwrap();
    assert!(!store.delete_registered_client("promoted").await.unwrap());
    assert_eq!(store.get_client("promoted").await.unwrap(), Some(promoted));
    assert!(store.get_registration("dyn-2").await.unwrap().is_some(), "other registrations stay");
}

pub async fn updating_a_registration_replaces_client_and_metadata(store: &dyn Store) {
    register(store, "dyn", Some("meta"), 100).await;
    store.touch_registration("dyn", 150).await.unwrap();
    let mut changed = registered_client("dyn");
    changed.client_name = Some("Renamed".into());
    changed.redirect_uris = vec!["http://127.0.0.1/other".into()];
    let mut r = registration("dyn", Some("meta-2"), 100);
    r.metadata = Some(r#"{"client_name":"Renamed"}"#.into());
    r.software_publisher = Some("Acme Publisher".into());
    assert!(store.update_registered_client(&changed, &r, 200).await.unwrap());
    assert_eq!(store.get_client("dyn").await.unwrap(), Some(changed.clone()));
    let stored = store.get_registration("dyn").await.unwrap().unwrap();
    assert_eq!(stored.metadata, r.metadata);
    assert_eq!(stored.software_publisher.as_deref(), Some("Acme Publisher"));
    assert_eq!(stored.metadata_hash.as_deref(), Some("meta-2"));
    assert_eq!((stored.created_at, stored.last_used_at), (100, 150), "times and token are kept");
    assert_eq!(stored.access_token_hash, "rat-digest-dyn");
    assert_eq!(store.find_registration_by_metadata("meta").await.unwrap(), None, "the old digest no longer matches");
    assert!(
        !store
            .update_registered_client(&registered_client("nobody"), &registration("nobody", None, 1), 200)
            .await
            .unwrap()
    );
    assert_eq!(store.get_client("nobody").await.unwrap(), None, "an update never creates a client");
    // A client the configuration took over is not changed by its old registration.
    register(store, "promoted", None, 100).await;
    let config = client("promoted");
    store.put_client(&config, ClientSource::Config, 200).await.unwrap();
    assert!(
        !store
            .update_registered_client(&registered_client("promoted"), &registration("promoted", None, 100), 300)
            .await
            .unwrap()
    );
    assert_eq!(store.get_client("promoted").await.unwrap(), Some(config));
}

pub async fn touching_a_registration_moves_last_used_at(store: &dyn Store) {
    register(store, "dyn", None, 100).await;
    register(store, "idle", None, 100).await;
    store.touch_registration("dyn", 500).await.unwrap();
    let touched = store.get_registration("dyn").await.unwrap().unwrap();
    assert_eq!((touched.created_at, touched.last_used_at), (100, 500));
    assert_eq!(store.get_registration("idle").await.unwrap().unwrap().last_used_at, 100, "only that registration");
    store.touch_registration("dyn", 300).await.unwrap();
    assert_eq!(store.get_registration("dyn").await.unwrap().unwrap().last_used_at, 500, "never moves back");
    store.touch_registration("nobody", 500).await.unwrap();
    assert_eq!(store.get_registration("nobody").await.unwrap(), None);
}

pub async fn purge_drops_only_unused_registered_clients(store: &dyn Store) {
    let config = client("config-agent");
    store.put_client(&config, ClientSource::Config, 1).await.unwrap();
    register(store, "promoted", None, 100).await;
    let promoted = client("promoted");
    store.put_client(&promoted, ClientSource::Config, 200).await.unwrap();
    register(store, "unused", None, 100).await;
    register(store, "used", None, 100).await;
    register(store, "at-cutoff", None, 500).await;
    register(store, "recent", None, 900).await;
    store.touch_registration("used", 800).await.unwrap();
    assert_eq!(store.purge_unused_registrations(500).await.unwrap(), 1, "only the client unused since before 500");
    assert_eq!(store.get_client("unused").await.unwrap(), None);
    assert_eq!(store.get_registration("unused").await.unwrap(), None);
    for kept in ["used", "at-cutoff", "recent"] {
        assert!(store.get_client(kept).await.unwrap().is_some(), "{kept}");
        assert!(store.get_registration(kept).await.unwrap().is_some(), "{kept}");
    }
    assert_eq!(store.purge_unused_registrations(500).await.unwrap(), 0);
    assert_eq!(store.purge_unused_registrations(10_000).await.unwrap(), 3, "config clients are never purged");
    assert_eq!(store.get_client("config-agent").await.unwrap(), Some(config));
    assert_eq!(store.get_client("promoted").await.unwrap(), Some(promoted), "nor a registered client made config");
    assert!(store.list_client_ids(ClientSource::Dynamic).await.unwrap().is_empty());
}

fn binding(model: &str, jkt: &str) -> AttestationBinding {
    AttestationBinding {
        claim: AttestationClaim {
            attester: "Acme agent runtime".into(),
            llm: Some([("provider".to_owned(), "acme".to_owned()), ("model".to_owned(), model.to_owned())].into()),
            runtime: None,
        },
        instance_jkt: jkt.into(),
    }
}

pub async fn grant_attestation_round_trips_and_binds_once(store: &dyn Store) {
    let attested = Grant { attestation: Some(binding("acme-large", "jkt-1")), ..grant("g1", "alice", "desktop-app") };
    store.put_grant(&attested).await.unwrap();
    assert_eq!(store.get_grant("g1").await.unwrap(), Some(attested.clone()));

    store.put_grant(&grant("g2", "alice", "desktop-app")).await.unwrap();
    assert!(store.bind_grant_attestation("g2", &binding("acme-small", "jkt-2")).await.unwrap());
    assert!(!store.bind_grant_attestation("g2", &binding("other", "jkt-3")).await.unwrap(), "a grant is bound once");
    let bound = store.get_grant("g2").await.unwrap().unwrap();
    assert_eq!(bound.attestation, Some(binding("acme-small", "jkt-2")));
    assert!(!store.bind_grant_attestation("g1", &binding("other", "jkt-3")).await.unwrap());
    assert_eq!(store.get_grant("g1").await.unwrap(), Some(attested), "an attested grant keeps its binding");
    assert!(!store.bind_grant_attestation("nope", &binding("other", "jkt-3")).await.unwrap());
    // Revocation leaves the record of what was attested.
    assert!(store.revoke_grant("g2", 300).await.unwrap());
    assert_eq!(store.get_grant("g2").await.unwrap().unwrap().attestation, Some(binding("acme-small", "jkt-2")));
}

pub async fn attestation_challenge_is_taken_once(store: &dyn Store) {
    store.put_attestation_challenge("ch-1", 200).await.unwrap();
    store.put_attestation_challenge("ch-2", 200).await.unwrap();
    assert!(!store.take_attestation_challenge("never-issued", 100).await.unwrap());
    assert!(store.take_attestation_challenge("ch-1", 100).await.unwrap());
    assert!(!store.take_attestation_challenge("ch-1", 100).await.unwrap(), "single use");
    assert!(!store.take_attestation_challenge("ch-2", 200).await.unwrap(), "expired at 200");
}

pub async fn racing_challenge_takes_have_one_winner(store: &dyn Store) {
    racing_challenge_takes_across_instances(store, store).await;
}

/// Two callers (tasks of one instance, or two instances on one database) present the same
/// challenge at once: exactly one takes it.
pub async fn racing_challenge_takes_across_instances(a: &dyn Store, b: &dyn Store) {
    for i in 0..16 {
        let hash = format!("challenge-{i}");
        a.put_attestation_challenge(&hash, 1000).await.unwrap();
        let (first, second) =
            tokio::join!(a.take_attestation_challenge(&hash, 100), b.take_attestation_challenge(&hash, 100));
        let outcomes = [first.unwrap(), second.unwrap()];
        assert_eq!(outcomes.iter().filter(|&&taken| taken).count(), 1, "round {i}: {outcomes:?}");
    }
}

pub async fn purge_drops_expired_attestation_challenges(store: &dyn Store) {
    let now = 100_000;
    store.put_attestation_challenge("old", now).await.unwrap();
    store.put_attestation_challenge("new", now + 1).await.unwrap();
    assert_eq!(store.purge_expired_delegation(now).await.unwrap(), 1, "only the expired challenge");
    assert!(store.take_attestation_challenge("new", now).await.unwrap(), "a live challenge is kept");
}

fn token_record(
    jti: &str,
    parent: Option<&str>,
    actor: Option<&str>,
    grant: Option<&str>,
    issued_at: i64,
) -> TokenRecord {
    TokenRecord {
        jti: jti.to_owned(),
        kind: "access_token".into(),
        parent_jti: parent.map(str::to_owned),
        actor_jti: actor.map(str::to_owned),
        grant_id: grant.map(str::to_owned),
        subject: "alice".into(),
        client_id: format!("client-of-{jti}"),
        audience: "https://mcp.example/mcp".into(),
        scope: Some("tools:read".into()),
        act: parent.map(|_| r#"{"sub":"agent-a"}"#.to_owned()),
        issued_at,
        expires_at: issued_at + 300,
    }
}

pub async fn lineage_round_trips_and_lists_children(store: &dyn Store) {
    let root = token_record("t0", None, None, Some("g1"), 100);
    store.record_token(&root).await.unwrap();
    store.record_token(&root).await.unwrap();
    store.record_token(&token_record("t1", Some("t0"), None, None, 110)).await.unwrap();
    store.record_token(&token_record("t2", Some("t9"), Some("t0"), None, 120)).await.unwrap();
    store.record_token(&token_record("t3", Some("t1"), None, None, 130)).await.unwrap();
    assert_eq!(store.get_token_record("t0").await.unwrap(), Some(root));
    assert_eq!(store.get_token_record("nope").await.unwrap(), None);
    let children: Vec<String> = store.token_children("t0").await.unwrap().into_iter().map(|r| r.jti).collect();
    assert_eq!(children, ["t1", "t2"], "as subject token and as actor token, oldest first");
    let t1 = store.get_token_record("t1").await.unwrap().unwrap();
    assert_eq!(t1.act.as_deref(), Some(r#"{"sub":"agent-a"}"#));
    let of_grant: Vec<String> = store.tokens_of_grant("g1").await.unwrap().into_iter().map(|r| r.jti).collect();
    assert_eq!(of_grant, ["t0"]);
    let recent: Vec<String> =
        store.recent_tokens_of_subject("alice", 3).await.unwrap().into_iter().map(|r| r.jti).collect();
    assert_eq!(recent, ["t3", "t2", "t1"], "newest first, at most the limit");
    assert!(store.recent_tokens_of_subject("bob", 3).await.unwrap().is_empty());
}

pub async fn revoking_a_token_revokes_what_was_exchanged_from_it(store: &dyn Store) {
    // g1 → a0 → a1 → a2 (subject chain); b0 acts in a2; c0 → c1 is a sibling chain.
    store.put_grant(&grant("g1", "alice", "desktop-app")).await.unwrap();
    store.record_access_token("a0", "g1", 1000).await.unwrap();
    store.record_token(&token_record("a0", None, None, Some("g1"), 100)).await.unwrap();
    store.record_token(&token_record("a1", Some("a0"), None, None, 110)).await.unwrap();
    store.record_token(&token_record("b0", None, None, None, 111)).await.unwrap();
    store.record_token(&token_record("a2", Some("a1"), Some("b0"), None, 120)).await.unwrap();
    store.record_token(&token_record("c0", None, None, None, 100)).await.unwrap();
    store.record_token(&token_record("c1", Some("c0"), None, None, 110)).await.unwrap();
    for jti in ["a0", "a1", "a2", "b0", "c0", "c1"] {
        assert!(!store.is_access_token_revoked(jti).await.unwrap(), "{jti} is live");
    }

    store.revoke_access_token("a1", 1000, 200).await.unwrap();
    assert!(!store.is_access_token_revoked("a0").await.unwrap(), "the parent stays live");
    assert!(store.is_access_token_revoked("a1").await.unwrap());
    assert!(store.is_access_token_revoked("a2").await.unwrap(), "the subtree goes with it");
    assert!(!store.is_access_token_revoked("b0").await.unwrap(), "the actor's own token is not a descendant");
    assert!(!store.is_access_token_revoked("c1").await.unwrap(), "a sibling chain lives on");

    store.revoke_access_token("b0", 1000, 210).await.unwrap();
    store.revoke_access_token("c0", 1000, 210).await.unwrap();
    assert!(store.is_access_token_revoked("c1").await.unwrap());
    // Revoking the grant reaches tokens exchanged from its tokens.
    store.record_token(&token_record("a3", Some("a0"), None, None, 130)).await.unwrap();
    assert!(!store.is_access_token_revoked("a3").await.unwrap());
    store.revoke_grant("g1", 300).await.unwrap();
    assert!(store.is_access_token_revoked("a3").await.unwrap());
}

/// Not in `contract_tests!`: each backend's test first installs a trigger that refuses a lineage
/// row whose subject is `poison`. A batch with such a row writes nothing at all, and the next
/// batch commits (no transaction is left open behind the failure).
pub async fn a_failed_issuance_batch_writes_nothing(store: &dyn Store) {
    let record = |jti: &str, subject: &str| {
        let mut event = AuditEvent::new(1000, AuditKind::TokenIssued, "ok");
        event.jti = Some(jti.to_owned());
        let mut lineage = token_record(jti, None, None, None, 1000);
        lineage.subject = subject.to_owned();
        IssuanceRecord { event, lineage: Some(lineage) }
    };
    let failed = store.record_issuances(&[record("first", "alice"), record("second", "poison")]).await;
    assert!(failed.is_err(), "the poisoned batch fails");
    assert!(store.audit_by_jti("first").await.unwrap().is_empty(), "nothing of the failed batch is written");
    assert!(store.get_token_record("first").await.unwrap().is_none());

    store.record_issuances(&[record("third", "alice")]).await.unwrap();
    assert_eq!(store.audit_by_jti("third").await.unwrap().len(), 1);
    assert!(store.get_token_record("third").await.unwrap().is_some());
}

pub async fn issuances_are_committed_together(store: &dyn Store) {
    store.record_issuances(&[]).await.unwrap();
    // More than one multi-row INSERT's worth (128), and not a power of two.
    let batch: Vec<IssuanceRecord> = (0..301)
        .map(|i| {
            let jti = format!("batch-{i}");
            let mut event = AuditEvent::new(1000 + i, AuditKind::TokenIssued, "ok");
            event.jti = Some(jti.clone());
            event.client_id = Some("build-agent".into());
            event.grant_type = Some("client_credentials".into());
            event.subject = Some(format!("subject-{i}"));
            event.resource = Some("https://mcp.example/mcp".into());
            event.scope = Some("tools:read".into());
            event.parent_jti = (i % 2 == 0).then(|| format!("batch-parent-{i}"));
            event.detail = Some(format!("detail {i}"));
            let parent = (i % 2 == 0).then(|| format!("batch-parent-{i}"));
            let lineage = token_record(&jti, parent.as_deref(), None, None, 1000 + i);
            // Every seventh is a refusal: an audit row without a lineage row.
            IssuanceRecord { event, lineage: (i % 7 != 3).then_some(lineage) }
        })
        .collect();
    store.record_issuances(&batch).await.unwrap();
    let newest_first = store.recent_audit(301).await.unwrap();
    let written: Vec<AuditEvent> = newest_first.into_iter().rev().collect();
    let sent: Vec<AuditEvent> = batch.iter().map(|r| r.event.clone()).collect();
    assert_eq!(written, sent, "every event, every field, in order");
    for record in &batch {
        let jti = record.event.jti.as_deref().unwrap();
        let stored = store.get_token_record(jti).await.unwrap();
        assert_eq!(stored, record.lineage, "{jti}");
    }
    // A jti already on record keeps its first lineage row; its audit row is still written.
    let mut again = batch[7].clone();
    again.lineage.as_mut().unwrap().subject = "someone-else".into();
    store.record_issuances(&[again]).await.unwrap();
    assert_eq!(store.get_token_record("batch-7").await.unwrap().unwrap().subject, "alice");
    assert_eq!(store.audit_by_jti("batch-7").await.unwrap().len(), 2);
}

pub async fn retention_deletes_old_audit_and_expired_lineage_oldest_first(store: &dyn Store) {
    // Audit rows at 100..110, and tokens issued with them expiring at 200..210.
    let batch: Vec<IssuanceRecord> = (0..10)
        .map(|i| {
            let jti = format!("kept-{i}");
            let mut event = AuditEvent::new(100 + i, AuditKind::TokenIssued, "ok");
            event.jti = Some(jti.clone());
            let mut lineage = token_record(&jti, None, None, None, 100 + i);
            lineage.expires_at = 200 + i;
            IssuanceRecord { event, lineage: Some(lineage) }
        })
        .collect();
    store.record_issuances(&batch).await.unwrap();

    // Oldest first, at most `limit`, and never past the first row that is new enough.
    assert_eq!(store.purge_audit(105, 3).await.unwrap(), 3);
    assert_eq!(store.purge_audit(105, 3).await.unwrap(), 2);
    assert_eq!(store.purge_audit(105, 3).await.unwrap(), 0);
    let left: Vec<i64> = store.recent_audit(100).await.unwrap().iter().rev().map(|e| e.at).collect();
    assert_eq!(left, (105..110).collect::<Vec<_>>());

    assert_eq!(store.purge_lineage(205, 100).await.unwrap(), 5);
    assert_eq!(store.purge_lineage(205, 100).await.unwrap(), 0);
    for i in 0..10 {
        let kept = store.get_token_record(&format!("kept-{i}")).await.unwrap().is_some();
        assert_eq!(kept, i >= 5, "kept-{i} expires at {}", 200 + i);
    }
}
