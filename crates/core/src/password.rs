//! User passwords: argon2id with the OWASP parameters (19 MiB, t=2, p=1), as PHC strings.
//! Slow on purpose; callers run these off the async executor.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Argon2, PasswordHash};

use crate::random::Random;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an argon2 PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)")]
pub struct InvalidPasswordHash;

pub fn hash_password(password: &str, rng: &dyn Random) -> String {
    let mut salt = [0u8; 16];
    rng.fill(&mut salt);
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .expect("argon2 with default parameters and a 16-byte salt cannot fail")
        .to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// Checks that a configured `password_hash` is an argon2 PHC string we can verify against.
pub fn check_password_hash(phc: &str) -> Result<(), InvalidPasswordHash> {
    let parsed = PasswordHash::new(phc).map_err(|_| InvalidPasswordHash)?;
    if parsed.algorithm.as_str().starts_with("argon2") { Ok(()) } else { Err(InvalidPasswordHash) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SystemRandom;

    #[test]
    fn hashes_verify_and_salts_differ() {
        let rng = SystemRandom::new();
        let a = hash_password("correct horse", &rng);
        let b = hash_password("correct horse", &rng);
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("wrong", &a));
        assert!(check_password_hash(&a).is_ok());
        assert!(check_password_hash("plaintext").is_err());
    }
}
