//! The front channel of the authorization code flow: checking an authorization request (from
//! `/authorize` or `/par`), keeping it while the person signs in and consents, and answering the
//! client at its verified redirect URI with `iss` (RFC 9207).

pub mod flow;
pub mod request;
pub mod response;

/// RFC 9126 §2.2: the prefix of the `request_uri` values `/par` returns.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request may wait for `/authorize` (RFC 9126 §2.2: short).
pub const PUSHED_REQUEST_TTL: i64 = 90;
/// How long the person has to sign in and consent.
pub const INTERACTION_TTL: i64 = 15 * 60;
/// Authorization codes live one minute (RFC 9700 §4.1: short-lived).
pub const CODE_TTL: i64 = 60;
/// Bytes of randomness in codes, request handles and grant ids.
pub const HANDLE_BYTES: usize = 32;
