//! Which response media types a caller accepts (RFC 9110 §8.3 `Content-Type`, RFC 6839 structured
//! syntax suffixes), and the `Accept` request header that announces them.

/// The media types a caller accepts. Parameters such as `charset` are ignored and comparison is
/// case-insensitive (RFC 9110 §8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Accept {
    types: &'static [&'static str],
    suffix: Option<&'static str>,
}

impl Accept {
    /// `application/json` and any `+json` type (`application/jwk-set+json`, …): CIMD documents,
    /// JWKS.
    pub const fn json() -> Self {
        Self { types: &["application/json"], suffix: Some("json") }
    }

    /// Exactly these media types (`type/subtype`, lower case), e.g. `&["image/png", "image/jpeg"]`.
    pub const fn only(types: &'static [&'static str]) -> Self {
        Self { types, suffix: None }
    }

    /// Also accept any `type/subtype+<suffix>` (RFC 6839), e.g. `"json"`.
    pub const fn or_suffix(self, suffix: &'static str) -> Self {
        Self { types: self.types, suffix: Some(suffix) }
    }

    /// Whether a `Content-Type` header value is acceptable.
    pub fn matches(&self, content_type: &str) -> bool {
        let Some(essence) = essence(content_type) else {
            return false;
        };
        if self.types.iter().any(|t| t.eq_ignore_ascii_case(&essence)) {
            return true;
        }
        match (self.suffix, essence.split_once('/')) {
            (Some(suffix), Some((_, subtype))) => {
                subtype.rsplit_once('+').is_some_and(|(name, sfx)| !name.is_empty() && sfx.eq_ignore_ascii_case(suffix))
            }
            _ => false,
        }
    }

    /// The accepted types for an error message, e.g. `application/json or any +json type`.
    pub(crate) fn description(&self) -> String {
        let mut parts: Vec<String> = self.types.iter().map(|t| (*t).to_owned()).collect();
        if let Some(suffix) = self.suffix {
            parts.push(format!("any +{suffix} type"));
        }
        parts.join(" or ")
    }

    /// The `Accept` request header value.
    pub(crate) fn header_value(&self) -> String {
        match self.types {
            [] => "*/*".to_owned(),
            types => types.join(", "),
        }
    }
}

/// `type/subtype` of a `Content-Type` value, lower-cased, or `None` when it is not one.
pub(crate) fn essence(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let token = |s: &str| !s.is_empty() && s.bytes().all(is_token_byte);
    (token(kind) && token(subtype)).then_some(essence)
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::Accept;

    #[test]
    fn json_accepts_json_and_json_suffixes_with_parameters() {
        let accept = Accept::json();
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            "application/jwk-set+json",
            "application/jwk-set+json; charset=utf-8",
            "application/vnd.example+JSON",
        ] {
            assert!(accept.matches(ok), "{ok} must be accepted");
        }
        for bad in [
            "",
            "text/html",
            "text/plain; x=application/json",
            "application/jsonx",
            "application/+json",
            "application/json-seq",
            "json",
            "application/json/x",
        ] {
            assert!(!accept.matches(bad), "{bad} must be refused");
        }
    }

    #[test]
    fn only_accepts_listed_types() {
        let accept = Accept::only(&["image/png", "image/jpeg"]);
        assert!(accept.matches("image/png"));
        assert!(accept.matches("IMAGE/JPEG; q=1"));
        assert!(!accept.matches("image/svg+xml"));
        assert!(!accept.matches("application/json"));
        assert!(Accept::only(&["image/svg"]).or_suffix("xml").matches("image/svg+xml"));
    }
}
