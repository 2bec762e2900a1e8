//! Where a request goes: the resource URL's path, and everything below it, maps onto the
//! upstream URL's path; the query string is kept as it is. `https://gw.example/mcp/x?y=1` in
//! front of `http://10.0.0.5:3001/v1/mcp` goes to `http://10.0.0.5:3001/v1/mcp/x?y=1`.

use axum::http::Uri;
use url::Url;

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

    /// The upstream URL for a request, `None` when its path is not the resource's or below it.
    pub(crate) fn map(&self, uri: &Uri) -> Option<Url> {
        let rest = uri.path().strip_prefix(&self.mount)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        let mut url = self.upstream.clone();
        if !(rest.is_empty() || (rest == "/" && self.mount.is_empty())) {
            let path = format!("{}{rest}", self.upstream.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        url.set_query(uri.query());
        Some(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(resource: &str, upstream: &str) -> Target {
        Target::new(&Url::parse(resource).unwrap(), &Url::parse(upstream).unwrap())
    }

    fn map(t: &Target, path: &str) -> Option<String> {
        t.map(&path.parse().unwrap()).map(String::from)
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
}
