//! Form-encoded OAuth requests (RFC 6749 §3.2, appendix B): a size cap answered with 413, the
//! content type checked, empty values treated as omitted (§3.1) and repeated parameters refused,
//! except those RFC 8707 and RFC 8693 allow to repeat.

use std::collections::HashMap;

use axum::extract::{FromRequest, Request};
use axum::http::header;
use mandate_core::OAuthError;

use crate::error::Failure;

/// Largest request body an OAuth endpoint reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const REPEATABLE: &[&str] = &["resource", "audience"];

#[derive(Debug, Default)]
pub struct OAuthForm {
    single: HashMap<String, String>,
    repeated: HashMap<String, Vec<String>>,
}

impl OAuthForm {
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, OAuthError> {
        let mime = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request("the request body must be application/x-www-form-urlencoded"));
        }
        Self::from_pairs(body)
    }

    /// Parameters of a query string (`/authorize` by GET), by the same rules as a body.
    pub fn from_query(query: Option<&str>) -> Result<Self, OAuthError> {
        Self::from_pairs(query.unwrap_or_default().as_bytes())
    }

    fn from_pairs(encoded: &[u8]) -> Result<Self, OAuthError> {
        let mut form = Self::default();
        for (name, value) in form_urlencoded::parse(encoded) {
            // Nothing legitimate carries NUL, and PostgreSQL cannot store it: refuse it up front.
            if name.contains('\0') || value.contains('\0') {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} contains a NUL character",
                    name.replace('\0', "\\0").chars().take(64).collect::<String>()
                )));
            }
            if value.is_empty() {
                continue;
            }
            if REPEATABLE.contains(&name.as_ref()) {
                form.repeated.entry(name.into_owned()).or_default().push(value.into_owned());
            } else if form.single.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!("parameter {name} was sent more than once")));
            }
        }
        Ok(form)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.single.get(name).map(String::as_str)
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::invalid_request(format!("parameter {name} is required")))
    }

    /// Every value of a repeatable parameter.
    pub fn all(&self, name: &str) -> &[String] {
        self.repeated.get(name).map(Vec::as_slice).unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = Failure;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let too_large = || {
            Failure(
                OAuthError::invalid_request(format!("the request body exceeds {} KiB", MAX_BODY_BYTES / 1024))
                    .with_status(413),
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(too_large());
        }
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await.map_err(|_| too_large())?;
        Ok(Self::parse(content_type.as_deref(), &body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=UTF-8");

    #[test]
    fn repeated_parameters_are_refused_except_resource() {
        let e = OAuthForm::parse(FORM, b"grant_type=a&grant_type=b").unwrap_err();
        assert_eq!(e.description, "parameter grant_type was sent more than once");
        let f = OAuthForm::parse(FORM, b"resource=a&resource=b&scope=").unwrap();
        assert_eq!(f.all("resource"), ["a", "b"]);
        assert_eq!(f.get("scope"), None, "empty values count as omitted");
    }

    #[test]
    fn nul_is_refused_in_names_and_values() {
        for body in [&b"grant_type=%00"[..], b"client_id=x%00", b"a%00b=1", b"scope=ok&x=%00"] {
            let e = OAuthForm::parse(FORM, body).unwrap_err();
            assert_eq!(e.code, mandate_core::ErrorCode::InvalidRequest, "{body:?}");
            assert!(e.description.contains("NUL"), "{}", e.description);
        }
    }

    proptest::proptest! {
        /// Arbitrary bodies never panic; anything carrying NUL is refused; otherwise every
        /// single-valued parameter reads back as sent.
        #[test]
        fn any_body_parses_or_is_refused_and_values_round_trip(
            junk in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            values in proptest::collection::btree_map("[a-z_]{1,12}", "\\PC{1,40}", 0..6),
        ) {
            let _ = OAuthForm::parse(FORM, &junk);
            let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&values).finish();
            let parsed = OAuthForm::parse(FORM, encoded.as_bytes());
            if values.values().any(|v| v.contains('\0')) {
                proptest::prop_assert!(parsed.is_err());
            } else {
                let form = parsed.unwrap();
                for (name, value) in &values {
                    if REPEATABLE.contains(&name.as_str()) {
                        proptest::prop_assert_eq!(form.all(name), std::slice::from_ref(value));
                    } else {
                        proptest::prop_assert_eq!(form.get(name), Some(value.as_str()));
                    }
                }
            }
        }
    }

    #[test]
    fn other_content_types_are_refused() {
        assert!(OAuthForm::parse(Some("application/json"), b"{}").is_err());
        assert!(OAuthForm::parse(None, b"a=b").is_err());
    }
}
