//! Where a request goes: the resource URL's path, and everything below it, maps onto the
//! upstream URL's path; the query string is kept as it is. `https://gw.example/mcp/x?y=1` in
//! front of `http://10.0.0.5:3001/v1/mcp` goes to `http://10.0.0.5:3001/v1/mcp/x?y=1`.
//!
//! Never above it: the gateway's credential goes with every request, so `/mcp/../admin` must not
//! become the upstream's `/v1/admin`. A dot segment (RFC 3986 §5.2.4), literal or
//! percent-encoded, or one a server would take for one (`..;` for Tomcat, decoded twice), an
//! encoded `/` or `\`, or a `\` (WHATWG URL reads it as `/`) is refused; and the URL made is
//! checked to be the one asked for, below the upstream's path.

use axum::http::Uri;
use url::Url;

/// Why a request's path is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unmapped {
    /// Neither the resource's path nor below it: 404.
    #[error("this gateway serves only its resource's path and its protected resource metadata")]
    Elsewhere,
    #[error("the path has a dot segment (. or .., literal or percent-encoded), which could leave the resource's path")]
    DotSegment,
    #[error("the path has a backslash or an encoded / or \\, which a server could read as a segment separator")]
    Separator,
    /// The URL parser rewrote the path, or it is not below the upstream's path (a second lock).
    #[error("the path does not map below the upstream's path")]
    Escapes,
}

#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The resource's path without its trailing `/` (`""` for a resource at the root).
    mount: String,
    upstream: Url,
}

impl Target {
    pub(crate) fn new(resource: &Url, upstream: &Url) -> Self {
        Self { mount: resource.path().trim_end_matches('/').to_owned(), upstream: upstream.clone() }
    }

    /// The router paths the proxy answers: the resource and what is below it.
    pub(crate) fn routes(&self) -> Vec<String> {
        if self.mount.is_empty() {
            vec!["/".to_owned(), "/{*rest}".to_owned()]
        } else {
            vec![self.mount.clone(), format!("{}/", self.mount), format!("{}/{{*rest}}", self.mount)]
        }
    }

    /// The upstream URL for a request whose path is the resource's or below it.
    pub(crate) fn map(&self, uri: &Uri) -> Result<Url, Unmapped> {
        let path = uri.path();
        let rest = path.strip_prefix(&self.mount).ok_or(Unmapped::Elsewhere)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Err(Unmapped::Elsewhere);
        }
        path.split('/').try_for_each(check_segment)?;
        let mut url = self.upstream.clone();
        if !(rest.is_empty() || (rest == "/" && self.mount.is_empty())) {
            let wanted = format!("{}{rest}", self.upstream.path().trim_end_matches('/'));
            url.set_path(&wanted);
            if url.path() != wanted {
                return Err(Unmapped::Escapes);
            }
        }
        if !self.below_upstream(url.path()) {
            return Err(Unmapped::Escapes);
        }
        url.set_query(uri.query());
        Ok(url)
    }

    fn below_upstream(&self, path: &str) -> bool {
        let base = self.upstream.path().trim_end_matches('/');
        path == self.upstream.path() || path == base || path.strip_prefix(base).is_some_and(|r| r.starts_with('/'))
    }
}

/// A segment as it is, decoded once and decoded twice (a server behind a server may decode
/// again) must not be a dot segment, with or without `;parameters`, nor hold a separator.
fn check_segment(segment: &str) -> Result<(), Unmapped> {
    let mut current = segment.as_bytes().to_vec();
    for _ in 0..3 {
        if current.contains(&b'\\') || current.contains(&b'/') {
            return Err(Unmapped::Separator);
        }
        let name = current.split(|b| *b == b';').next().unwrap_or_default();
        if name == b"." || name == b".." {
            return Err(Unmapped::DotSegment);
        }
        if !current.contains(&b'%') {
            break;
        }
        current = percent_decoded(&current);
    }
    Ok(())
}

/// RFC 3986 §2.1 percent-decoding; a `%` without two hex digits stays as it is.
fn percent_decoded(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (input.get(i + 1).copied().and_then(hex), input.get(i + 2).copied().and_then(hex))
        {
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(resource: &str, upstream: &str) -> Target {
        Target::new(&Url::parse(resource).unwrap(), &Url::parse(upstream).unwrap())
    }

    fn map(t: &Target, path: &str) -> Option<String> {
        t.map(&path.parse().unwrap()).ok().map(String::from)
    }

    fn refusal(t: &Target, path: &str) -> Unmapped {
        t.map(&path.parse().unwrap()).unwrap_err()
    }

    #[test]
    fn paths_below_the_resource_map_below_the_upstream() {
        let t = target("https://gw.example/mcp", "http://10.0.0.5:3001/v1/mcp");
        assert_eq!(map(&t, "/mcp").as_deref(), Some("http://10.0.0.5:3001/v1/mcp"));
        assert_eq!(map(&t, "/mcp?a=1&b").as_deref(), Some("http://10.0.0.5:3001/v1/mcp?a=1&b"));
        assert_eq!(map(&t, "/mcp/").as_deref(), Some("http://10.0.0.5:3001/v1/mcp/"));
        assert_eq!(map(&t, "/mcp/messages/1").as_deref(), Some("http://10.0.0.5:3001/v1/mcp/messages/1"));
        assert_eq!(map(&t, "/mcpx"), None);
        assert_eq!(map(&t, "/other"), None);
        assert_eq!(t.routes(), ["/mcp", "/mcp/", "/mcp/{*rest}"]);
    }

    #[test]
    fn a_resource_at_the_root_forwards_every_path() {
        let t = target("https://gw.example", "http://upstream:3001/mcp");
        assert_eq!(map(&t, "/").as_deref(), Some("http://upstream:3001/mcp"));
        assert_eq!(map(&t, "/sse").as_deref(), Some("http://upstream:3001/mcp/sse"));
        let t = target("https://gw.example/", "http://upstream:3001/");
        assert_eq!(map(&t, "/mcp?x=1").as_deref(), Some("http://upstream:3001/mcp?x=1"));
        assert_eq!(t.routes(), ["/", "/{*rest}"]);
    }

    /// The second line of defence on its own: whatever the segment checks missed, a mapped path
    /// outside the upstream's path (or merely sharing its prefix) is refused.
    #[test]
    fn the_last_check_alone_keeps_paths_below_the_upstream_path() {
        let t = target("https://gw.example/mcp", "http://10.0.0.5:3001/v1/mcp");
        for inside in ["/v1/mcp", "/v1/mcp/", "/v1/mcp/x", "/v1/mcp/a/b"] {
            assert!(t.below_upstream(inside), "{inside}");
        }
        for outside in ["/v1/admin", "/v1/mcpx", "/v1", "/", "/admin/secrets", "/v1/mc"] {
            assert!(!t.below_upstream(outside), "{outside}");
        }
    }

    #[test]
    fn nothing_climbs_out_of_the_upstream_path() {
        let t = target("https://gw.example/mcp", "http://10.0.0.5:3001/v1/mcp");
        for path in [
            "/mcp/../admin/secrets",
            "/mcp/%2e%2e/%2e%2e/admin/secrets",
            "/mcp/%2E%2E/admin",
            "/mcp/.%2e/admin",
            "/mcp/x/../../admin",
            "/mcp/..",
            "/mcp/.",
            "/mcp/./x",
            "/mcp/..;/admin",
            "/mcp/..;jsessionid=1/admin",
            "/mcp/%252e%252e/admin",
            "/mcp/../mcp/x",
        ] {
            assert_eq!(refusal(&t, path), Unmapped::DotSegment, "{path}");
        }
        for path in ["/mcp/..%2fadmin", "/mcp/..%2Fadmin", "/mcp/..%5cadmin", "/mcp/x%2f..%2f..%2fadmin"] {
            assert_eq!(refusal(&t, path), Unmapped::Separator, "{path}");
        }
        assert_eq!(refusal(&t, "/admin/../mcp"), Unmapped::Elsewhere);
        // Dots inside a name are names.
        assert_eq!(
            map(&t, "/mcp/a..b/.well-known/...").as_deref(),
            Some("http://10.0.0.5:3001/v1/mcp/a..b/.well-known/...")
        );
        assert_eq!(map(&t, "/mcp/%41").as_deref(), Some("http://10.0.0.5:3001/v1/mcp/%41"));
        assert_eq!(percent_decoded(b"%2e%2E%zz%4"), b"..%zz%4");
    }
}

/// Properties over generated paths: whatever is forwarded stays on the upstream, below its path,
/// with no dot segment left in any form.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn segment() -> impl Strategy<Value = String> {
        let token = prop::sample::select(vec![
            ".",
            "..",
            "%2e",
            "%2E",
            "%2e%2e",
            ";",
            ";x=1",
            "%3b",
            "%252e",
            "%25",
            "a",
            "mcp",
            "a..b",
            ".well-known",
            "%2f",
            "%2F",
            "%5c",
            "%5C",
            "\\",
            "%",
            "%41",
            "%00",
            "~",
            "{",
            "\"",
            "%20",
        ]);
        prop::collection::vec(token, 0..4).prop_map(|t| t.concat())
    }

    fn below(path: &str, upstream: &str) -> bool {
        let base = upstream.trim_end_matches('/');
        path == upstream || path == base || path.starts_with(&format!("{base}/"))
    }

    /// Every reading of a segment a server might make: as it is, decoded once, decoded twice.
    fn dot_segment(segment: &str) -> bool {
        let mut current = segment.as_bytes().to_vec();
        for _ in 0..3 {
            let name = current.split(|b| *b == b';').next().unwrap_or_default();
            if name == b"." || name == b".." {
                return true;
            }
            current = percent_decoded(&current);
        }
        false
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn a_mapped_path_stays_below_the_upstream_path(
            mount in prop::sample::select(vec!["", "/mcp", "/a/mcp"]),
            upstream_path in prop::sample::select(vec!["/", "/v1/mcp", "/v1/mcp/", "/mcp"]),
            segments in prop::collection::vec(segment(), 0..6),
            query in prop::option::of("[a-z=&.%/]{0,8}"),
        ) {
            let t = target(&format!("https://gw.example{mount}"), &format!("http://up.example:3001{upstream_path}"));
            let mut path = mount.to_owned();
            for s in &segments {
                path.push('/');
                path.push_str(s);
            }
            if path.is_empty() {
                path.push('/');
            }
            if let Some(q) = &query {
                path = format!("{path}?{q}");
            }
            // hyper refuses what http::Uri cannot parse before the gateway sees it.
            let Ok(uri) = path.parse::<Uri>() else { return Ok(()) };
            let Ok(url) = t.map(&uri) else { return Ok(()) };
            prop_assert_eq!((url.scheme(), url.host_str(), url.port()), ("http", Some("up.example"), Some(3001)));
            prop_assert!(below(url.path(), upstream_path), "{} -> {}", path, url);
            prop_assert!(!url.path().split('/').any(dot_segment), "{} -> {}", path, url);
            // What reqwest sends is what was checked: parsing the URL again changes nothing.
            let again = Url::parse(url.as_str()).unwrap();
            prop_assert_eq!(again.path(), url.path());
        }

        #[test]
        fn arbitrary_paths_never_panic(path in "\\PC{0,40}") {
            let t = target("https://gw.example/mcp", "http://up.example/v1/mcp");
            if let Ok(uri) = format!("/mcp/{path}").parse::<Uri>() {
                let _ = t.map(&uri);
            }
        }
    }

    fn target(resource: &str, upstream: &str) -> Target {
        Target::new(&Url::parse(resource).unwrap(), &Url::parse(upstream).unwrap())
    }
}
