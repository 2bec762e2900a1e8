//! The one source of randomness: the system CSPRNG behind a trait so tests can inject their own.

use aws_lc_rs::rand::SecureRandom as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub trait Random: Send + Sync + 'static {
    /// Fills `buf` with cryptographically secure random bytes.
    fn fill(&self, buf: &mut [u8]);

    /// `bytes` random bytes as unpadded base64url: the form of every secret and identifier we mint.
    fn token(&self, bytes: usize) -> String {
        let mut buf = vec![0u8; bytes];
        self.fill(&mut buf);
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// An identifier of `bytes` bytes (at least 6) whose first six are `millis`, big-endian, and
    /// the rest random, as unpadded base64url. Identifiers minted close in time share a prefix, so
    /// inserting them into a B-tree index (the audit and lineage rows' `jti`) touches the same few
    /// pages instead of one random page each. The time is no secret: the token carries `iat`.
    fn time_ordered_token(&self, millis: u64, bytes: usize) -> String {
        let mut buf = vec![0u8; bytes.max(6)];
        buf[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        self.fill(&mut buf[6..]);
        URL_SAFE_NO_PAD.encode(buf)
    }
}

/// The operating system's CSPRNG (getrandom), through aws-lc-rs.
#[derive(Debug, Default)]
pub struct SystemRandom(aws_lc_rs::rand::SystemRandom);

impl SystemRandom {
    pub fn new() -> Self {
        Self(aws_lc_rs::rand::SystemRandom::new())
    }
}

impl Random for SystemRandom {
    fn fill(&self, buf: &mut [u8]) {
        // The system CSPRNG failing is not recoverable: no secret may be minted without it.
        self.0.fill(buf).expect("the operating system's random number generator failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(id: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(id).unwrap()
    }

    #[test]
    fn time_ordered_tokens_lead_with_the_millisecond_and_end_random() {
        let rng = SystemRandom::new();
        let millis = 1_764_900_000_123_u64;
        let a = bytes(&rng.time_ordered_token(millis, 16));
        let b = bytes(&rng.time_ordered_token(millis, 16));
        let later = bytes(&rng.time_ordered_token(millis + 1, 16));
        assert_eq!(a.len(), 16);
        assert_eq!(&a[..6], &millis.to_be_bytes()[2..], "the first six bytes are the time");
        assert_eq!(a[..6], b[..6]);
        assert_ne!(a[6..], b[6..], "the other ten are random");
        assert!(a[..6] < later[..6], "a later millisecond sorts after");
    }
}
