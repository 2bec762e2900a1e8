//! mandate-core: the domain of the authorization server, without I/O.
//!
//! Clients, resources, scopes, OAuth errors, secrets, signing keys, access tokens and client
//! attestations, plus the
//! injected clock and random source every piece of logic takes instead of ambient ones.

pub mod act;
pub mod assertion;
pub mod attestation;
pub mod audit;
pub mod client;
pub mod clock;
pub mod error;
pub mod jose;
pub mod oidc;
pub mod password;
pub mod pkce;
pub mod random;
pub mod resource;
pub mod scope;
pub mod secret;
pub mod software_statement;
#[cfg(test)]
mod test_keys;
pub mod user;

pub use act::Actor;
pub use audit::{AuditEvent, AuditKind};
pub use client::{Client, GrantType, TokenEndpointAuthMethod};
pub use clock::{Clock, MockClock, SystemClock, UnixTime};
pub use error::{ErrorCode, OAuthError};
pub use random::{Random, SystemRandom};
pub use resource::{Resource, ResourceUri};
pub use scope::ScopeSet;
pub use secret::SecretDigest;
pub use user::User;
