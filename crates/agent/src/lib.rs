//! `mandate-agent`: agents get tokens without writing OAuth code.
//!
//! Give an [`Agent`] an MCP server URL and it comes back with a working token, by whichever path
//! the server and the agent's identity allow:
//!
//! - **discovery** in the MCP order: the 401 challenge's `resource_metadata`, RFC 9728 metadata at
//!   the path-inserted then the root well-known URL, RFC 8414 / OpenID metadata with the
//!   path-insertion variants (the `issuer` must match exactly), and the 2025-03-26 fallbacks;
//! - **client identity** in the order MCP prefers: pre-registered credentials, a client ID
//!   metadata document URL, dynamic registration as a native application; registrations are
//!   stored per issuer;
//! - **grants**: authorization code + PKCE S256 through a loopback redirect and the system
//!   browser (with `state` and RFC 9207 `iss` checked), client credentials with
//!   `client_secret_basic`, `client_secret_post` or `private_key_jwt`, token exchange (RFC 8693)
//!   and enterprise-managed authorization (ID-JAG);
//! - `resource` on every request including refreshes; scopes from the challenge, else the
//!   resource's `scopes_supported`, else none; step-up on 403 `insufficient_scope` with a limit;
//! - a token cache (in memory, or a 0600 JSON file) keyed by issuer + resource + client, refreshed
//!   before expiry; and [`Agent::authorized`], the hook behind the rmcp transport
//!   ([`rmcp::AuthorizedHttpClient`], feature `rmcp`) and any HTTP client.
//!
//! The OAuth requests are small and exact, so they are written here on reqwest rather than through
//! a generic OAuth crate: none covers MCP discovery, client ID metadata documents, RFC 9207, token
//! exchange and ID-JAG together.

pub mod agent;
pub mod authorize;
pub mod browser;
pub mod challenge;
pub mod client;
pub mod discovery;
pub mod error;
pub mod grant;
pub mod http;
pub mod inspect;
pub mod key;
pub mod loopback;
#[cfg(feature = "reqwest-middleware")]
pub mod middleware;
#[cfg(feature = "rmcp")]
pub mod rmcp;
pub mod store;

pub use agent::{Agent, AgentBuilder, Attempt, CallError, IdentityAssertion, Mode};
pub use browser::{Browser, FollowRedirects, PrintUrl, SystemBrowser};
pub use challenge::Challenge;
pub use client::{ClientIdentity, PreRegistered};
pub use discovery::Discovery;
pub use error::{AgentError, OAuthError};
pub use grant::{Exchange, TokenSet};
pub use key::ClientKey;
pub use store::{CredentialStore, FileStore, MemoryStore, TokenKey};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// 256 random bits, base64url: PKCE verifiers (43 characters, RFC 7636 §4.1), `state`, `jti`.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source is available");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// PKCE S256: `BASE64URL(SHA256(verifier))`.
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn pkce_rfc7636_appendix_b() {
        assert_eq!(
            super::s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let verifier = super::random_token();
        assert_eq!(verifier.len(), 43);
        assert_ne!(verifier, super::random_token());
    }
}
