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
