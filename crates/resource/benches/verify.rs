//! Token verification in mandate-resource beside raw ES256 verification, in the same run:
//! `cargo bench -p mandate-resource --bench verify`. The issuer is a loopback stub serving
//! discovery, its JWKS and introspection, so nothing here measures the authorization server.
//!
//! - `raw_es256`: jsonwebtoken's signature check with a prepared key (the peer, the floor).
//! - `offline`: the library's whole offline path (typ, alg allow-list, kid, signature, iss, aud,
//!   times, claims), keys cached in memory.
//! - `introspection_cached`: introspection mode answering from its cache.
//! - `introspection_uncached`: introspection mode asking the issuer every time (a loopback HTTP
//!   round trip).

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mandate_core::jose::{ACCESS_TOKEN_TYP, SigningAlgorithm, SigningKey, generate_private_key, public_jwks};
use mandate_resource::ResourceServer;
use serde_json::{Value, json};

const RESOURCE: &str = "https://mcp.example/mcp";

struct Fixture {
    token: String,
    key: SigningKey,
    offline: ResourceServer,
    cached: ResourceServer,
    uncached: ResourceServer,
}

async fn fixture() -> Fixture {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let key = SigningKey::from_pkcs8(SigningAlgorithm::ES256, &generate_private_key(SigningAlgorithm::ES256).unwrap())
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = json!({
        "iss": issuer, "sub": "alice", "aud": RESOURCE, "client_id": "agent", "scope": "tools:read",
        "jti": "bench", "iat": now, "exp": now + 3600,
    });
    let token = key.sign(ACCESS_TOKEN_TYP, &claims).unwrap();
    let (meta, jwks) = (
        json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks"), "introspection_endpoint": format!("{issuer}/introspect") }),
        serde_json::to_value(public_jwks([&key])).unwrap(),
    );
    let mut active = claims.clone();
    active["active"] = json!(true);
    let app = Router::new()
        .route("/.well-known/oauth-authorization-server", get(move || async move { axum::Json(meta) }))
        .route("/jwks", get(move || async move { axum::Json(jwks) }))
        .route("/introspect", post(move || async move { axum::Json::<Value>(active) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let build = |introspection: Option<Duration>| {
        let mut b = ResourceServer::builder(issuer.clone(), RESOURCE);
        if let Some(ttl) = introspection {
            b = b.introspection("rs", "secret").introspection_cache(ttl);
        }
        b.build().unwrap()
    };
    let (offline, cached, uncached) =
        (build(None), build(Some(Duration::from_secs(3600))), build(Some(Duration::ZERO)));
    for rs in [&offline, &cached, &uncached] {
        while !rs.is_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        rs.verify(&token).await.expect("the benchmark's token verifies");
    }
    Fixture { token, key, offline, cached, uncached }
}

fn verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let f = runtime.block_on(fixture());
    let decoding = DecodingKey::from_jwk(&f.key.public_jwk).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut group = c.benchmark_group("verify");
    group.bench_function("raw_es256", |b| {
        b.iter(|| jsonwebtoken::decode::<Value>(&f.token, &decoding, &validation).unwrap())
    });
    group.bench_function("offline", |b| {
        b.to_async(&runtime).iter(|| async { f.offline.verify(&f.token).await.unwrap() })
    });
    group.bench_function("introspection_cached", |b| {
        b.to_async(&runtime).iter(|| async { f.cached.verify(&f.token).await.unwrap() })
    });
    group.bench_function("introspection_uncached", |b| {
        b.to_async(&runtime).iter(|| async { f.uncached.verify(&f.token).await.unwrap() })
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
