//! The storage contract: behaviour every backend must show. Each backend runs these checks
//! against a fresh database through `contract_tests!`.

use mandate_core::client::ClientSource;
use mandate_core::{
    AuditEvent, AuditKind, Client, GrantType, Resource, ResourceUri, ScopeSet, SecretDigest, TokenEndpointAuthMethod,
    User,
};

use crate::{Store, StoredKey};

/// Generates one `#[tokio::test]` per contract check; `$make` is an async expression giving a
/// fresh store.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@each $make;
            clients_round_trip, client_updates_keep_identity, config_clients_are_listed_and_disabled,
            resources_round_trip, users_round_trip, first_key_is_inserted_once, rotation_retires_and_publishes_until,
            revocations_are_idempotent_and_purged, audit_appends_in_order_and_finds_by_jti, ping_answers);
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
