//! The credentials the gateway holds. The upstream's own: headers the gateway adds to every
//! request it forwards (the API key that used to sit in each agent's configuration now sits here,
//! once). And, when tokens are checked by introspection, the gateway's own client credentials at
//! mandate. A value is given
//! inline (`Name: value`), or as a name and where to read it (`Name=VARIABLE` from the
//! environment, `Name=/path` from a file) so that it need not show in a process listing.
//!
//! A value is never printed: `Debug` shows the header name only, errors never quote it, and
//! hyper is told it is sensitive (kept out of HPACK tables).

use std::fmt;
use std::path::Path;

use axum::http::{HeaderName, HeaderValue, header};

use crate::headers::is_hop_by_hop;

/// One header sent to the upstream with every forwarded request.
#[derive(Clone)]
pub struct UpstreamHeader {
    name: HeaderName,
    value: HeaderValue,
}

/// Why an upstream header was refused. The messages name the header, never its value.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("an upstream header must look like 'Name: value' (no ':' found)")]
    NotNameColonValue,
    #[error("an upstream header source must look like 'Name=SOURCE' (no '=' found)")]
    NotNameEqualsSource,
    #[error("{0:?} is not a valid HTTP header name")]
    Name(String),
    #[error("the value of upstream header {0} is empty or has characters a header cannot carry (line breaks?)")]
    Value(HeaderName),
    #[error("upstream header {0} cannot be set: it belongs to the connection, and the gateway sets it itself")]
    Reserved(HeaderName),
    #[error("the environment variable {variable} (for upstream header {name}) is not set or not UTF-8")]
    Environment { name: HeaderName, variable: String },
    #[error("cannot read {path} (for upstream header {name}): {source}")]
    File { name: HeaderName, path: String, source: std::io::Error },
    #[error("upstream header {0} is given more than once")]
    Duplicate(HeaderName),
}

impl UpstreamHeader {
    pub fn new(name: &str, value: &str) -> Result<Self, CredentialError> {
        let name = header_name(name)?;
        let mut value = HeaderValue::from_str(value.trim())
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| CredentialError::Value(name.clone()))?;
        value.set_sensitive(true);
        Ok(Self { name, value })
    }

    /// `Name: value`, as in an HTTP request (`--upstream-header`).
    pub fn parse(spec: &str) -> Result<Self, CredentialError> {
        let (name, value) = spec.split_once(':').ok_or(CredentialError::NotNameColonValue)?;
        Self::new(name, value)
    }

    /// `Name=VARIABLE`: the value is that environment variable's (`--upstream-header-env`).
    pub fn from_env(spec: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CredentialError> {
        let (name, variable) = spec.split_once('=').ok_or(CredentialError::NotNameEqualsSource)?;
        let name = header_name(name)?;
        let variable = variable.trim();
        let value = lookup(variable)
            .ok_or_else(|| CredentialError::Environment { name: name.clone(), variable: variable.to_owned() })?;
        Self::new(name.as_str(), &value)
    }

    /// `Name=/path`: the value is the file's content, surrounding whitespace (the final newline)
    /// removed (`--upstream-header-file`; a mounted secret).
    pub fn from_file(spec: &str) -> Result<Self, CredentialError> {
        let (name, path) = spec.split_once('=').ok_or(CredentialError::NotNameEqualsSource)?;
        let name = header_name(name)?;
        let path = path.trim();
        let value = std::fs::read_to_string(Path::new(path)).map_err(|source| CredentialError::File {
            name: name.clone(),
            path: path.to_owned(),
            source,
        })?;
        Self::new(name.as_str(), &value)
    }

    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    pub(crate) fn value(&self) -> &HeaderValue {
        &self.value
    }
}

impl fmt::Debug for UpstreamHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UpstreamHeader({}: [redacted])", self.name)
    }
}

/// A header name the gateway may set: not one that describes the connection or the body's
/// framing, which the gateway (and hyper) decide for each hop.
fn header_name(name: &str) -> Result<HeaderName, CredentialError> {
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| CredentialError::Name(name.to_owned()))?;
    if is_hop_by_hop(&name) || name == header::HOST || name == header::CONTENT_LENGTH {
        return Err(CredentialError::Reserved(name));
    }
    Ok(name)
}

/// Verify tokens by introspection (RFC 7662) with these client credentials, instead of offline:
/// a revocation at mandate then takes effect within `cache`, not at the token's expiry.
#[derive(Clone)]
pub struct Introspection {
    pub client_id: String,
    pub client_secret: String,
    /// How long an answer is reused (at least 1 s, at most until the token expires).
    pub cache: std::time::Duration,
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspection")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("cache", &self.cache)
            .finish()
    }
}

/// Refuses a header given twice: which one would win is not obvious to whoever wrote the flags.
pub(crate) fn check_unique(headers: &[UpstreamHeader]) -> Result<(), CredentialError> {
    for (i, h) in headers.iter().enumerate() {
        if headers[..i].iter().any(|earlier| earlier.name == h.name) {
            return Err(CredentialError::Duplicate(h.name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-live-0123456789";

    #[test]
    fn the_three_sources_give_the_same_header() {
        let inline = UpstreamHeader::parse(&format!("X-Api-Key: {SECRET}")).unwrap();
        assert_eq!(inline.name(), "x-api-key");
        assert_eq!(inline.value(), SECRET);
        assert!(inline.value().is_sensitive());

        let env = UpstreamHeader::from_env("X-Api-Key=UPSTREAM_KEY", |v| (v == "UPSTREAM_KEY").then(|| SECRET.into()));
        assert_eq!(env.unwrap().value(), SECRET);

        let dir = std::env::temp_dir().join(format!("mandate-gateway-credential-{}", std::process::id()));
        std::fs::write(&dir, format!("{SECRET}\n")).unwrap();
        let file = UpstreamHeader::from_file(&format!("Authorization={}", dir.display())).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(file.name(), "authorization");
        assert_eq!(file.value(), SECRET, "the final newline is not part of the value");
    }

    #[test]
    fn the_value_is_never_shown() {
        let h = UpstreamHeader::parse(&format!("X-Api-Key: {SECRET}")).unwrap();
        assert_eq!(format!("{h:?}"), "UpstreamHeader(x-api-key: [redacted])");
        let errors = [
            UpstreamHeader::parse(SECRET).unwrap_err(),
            UpstreamHeader::parse(&format!("X-Api-Key: {SECRET}\r\nX-Evil: 1")).unwrap_err(),
            UpstreamHeader::from_env("X-Api-Key=UPSTREAM_KEY", |_| Some(format!("{SECRET}\n\r{SECRET}"))).unwrap_err(),
            UpstreamHeader::from_file("X-Api-Key=/nonexistent/mandate-gateway-key").unwrap_err(),
        ];
        for e in errors {
            assert!(!e.to_string().contains(&SECRET[3..]), "{e}");
        }
    }

    #[test]
    fn connection_headers_and_bad_values_are_refused() {
        for name in ["Host", "Connection", "Transfer-Encoding", "Content-Length", "Upgrade"] {
            assert!(
                matches!(UpstreamHeader::parse(&format!("{name}: x")), Err(CredentialError::Reserved(_))),
                "{name}"
            );
        }
        assert!(matches!(UpstreamHeader::parse("X-Key:   "), Err(CredentialError::Value(_))));
        assert!(matches!(UpstreamHeader::parse("Bad Name: x"), Err(CredentialError::Name(_))));
        let twice = [UpstreamHeader::parse("X-Key: a").unwrap(), UpstreamHeader::parse("x-key: b").unwrap()];
        assert!(matches!(check_unique(&twice), Err(CredentialError::Duplicate(_))));
    }
}
