//! mandate-resource: the library an MCP server embeds to verify access tokens (RFC 9068, RFC 9728).
//!
//! Empty until issue 5 builds the tower layer, JWKS cache and `WWW-Authenticate` challenges.
