//! Verification by introspection (RFC 7662), for a resource server that wants a revocation to
//! take effect at once rather than at the token's expiry. Answers are cached briefly (at most
//! until the token expires; a zero TTL asks every time), keyed by the token's SHA-256 so tokens
//! are not kept in memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::Rejection;
use crate::verify::{Expectations, Failure, check_claims};

const MAX_ENTRIES: usize = 10_000;

type Answer = Result<Map<String, Value>, Rejection>;

pub struct Introspection {
    pub client_id: String,
    pub client_secret: String,
    pub ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], (Instant, Answer)>>,
}

impl Introspection {
    pub fn new(client_id: String, client_secret: String, ttl: Duration) -> Self {
        Self { client_id, client_secret, ttl, cache: Mutex::new(HashMap::new()) }
    }

    pub async fn check(
        &self,
        http: &reqwest::Client,
        endpoint: &str,
        token: &str,
        expect: &Expectations,
        now: i64,
    ) -> Answer {
        let key: [u8; 32] = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .unwrap_or([0; 32]);
        if let Some((until, answer)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && Instant::now() < *until
        {
            return answer.clone();
        }
        let response = http
            .post(endpoint)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| Rejection::Unavailable(format!("the authorization server could not be asked: {e}")))?;
        if !response.status().is_success() {
            tracing::warn!(status = %response.status(), "introspection refused; check the resource server's client credentials");
            return Err(Rejection::Unavailable("the authorization server did not answer the introspection".into()));
        }
        let claims: Map<String, Value> =
            response.json().await.map_err(|_| Rejection::Unavailable("the introspection answer is not JSON".into()))?;
        let answer = if claims.get("active") != Some(&Value::Bool(true)) {
            Err(Rejection::InvalidToken("the access token is not active (expired, revoked or unknown)".into()))
        } else {
            check_claims(&claims, expect, now).map(|()| claims.clone()).map_err(|f| match f {
                Failure::Invalid(m) => Rejection::InvalidToken(m.into()),
                Failure::UnknownKey => Rejection::InvalidToken("unknown key".into()),
            })
        };
        if self.ttl.is_zero() {
            return answer;
        }
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
        let ttl = self.ttl.min(Duration::from_secs(exp.saturating_sub(now).max(0) as u64));
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, (until, _)| Instant::now() < *until);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, (Instant::now() + ttl.max(Duration::from_secs(1)), answer.clone()));
        answer
    }
}
