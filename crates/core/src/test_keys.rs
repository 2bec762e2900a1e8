//! Keys for unit tests: a fresh signing key per call and its public JWK Set.

use jsonwebtoken::jwk::JwkSet;

use crate::jose::{SigningAlgorithm, SigningKey, generate_private_key};

pub fn key(alg: SigningAlgorithm) -> SigningKey {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    SigningKey::from_pkcs8(alg, &generate_private_key(alg).unwrap()).unwrap()
}

pub fn set(k: &SigningKey) -> JwkSet {
    JwkSet { keys: vec![k.public_jwk.clone()] }
}
