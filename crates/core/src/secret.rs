//! Client secrets: 256-bit random values, stored only as SHA-256 digests and compared in constant
//! time. A digest, not argon2: a secret with 256 bits of entropy cannot be guessed offline, and a
//! slow hash would let anyone turn the token endpoint into a CPU sink.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

use crate::random::Random;

/// Bytes of randomness in a generated client secret (256 bits).
pub const CLIENT_SECRET_BYTES: usize = 32;

const PREFIX: &str = "sha256:";

/// The stored form of a secret: `sha256:<base64url digest>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretDigest([u8; 32]);

impl std::fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretDigest(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a secret digest has the form sha256:<43 base64url characters>")]
pub struct InvalidSecretDigest;

impl SecretDigest {
    pub fn of(secret: &str) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    pub fn parse(stored: &str) -> Result<Self, InvalidSecretDigest> {
        let b64 = stored.strip_prefix(PREFIX).ok_or(InvalidSecretDigest)?;
        let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| InvalidSecretDigest)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| InvalidSecretDigest)?;
        Ok(Self(arr))
    }

    /// Whether `presented` hashes to this digest, in time independent of where they differ.
    pub fn verify(&self, presented: &str) -> bool {
        Self::of(presented).0.ct_eq(&self.0).into()
    }

    pub fn encode(&self) -> String {
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(self.0))
    }
}

/// A new client secret with 256 bits of randomness, and its digest for storage.
pub fn generate_client_secret(rng: &dyn Random) -> (String, SecretDigest) {
    let secret = rng.token(CLIENT_SECRET_BYTES);
    let digest = SecretDigest::of(&secret);
    (secret, digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SystemRandom;

    #[test]
    fn round_trips_and_verifies() {
        let (secret, digest) = generate_client_secret(&SystemRandom::new());
        assert_eq!(secret.len(), 43);
        let parsed = SecretDigest::parse(&digest.encode()).unwrap();
        assert!(parsed.verify(&secret));
        assert!(!parsed.verify("wrong"));
    }

    #[test]
    fn refuses_malformed_digests() {
        assert!(SecretDigest::parse("plain").is_err());
        assert!(SecretDigest::parse("sha256:abc").is_err());
    }
}
