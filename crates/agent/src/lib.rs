//! mandate-agent: the client SDK agents use to discover, register and obtain tokens.
//!
//! Empty until issue 6 builds discovery, PKCE, registration and every grant.
