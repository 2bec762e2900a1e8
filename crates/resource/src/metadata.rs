//! RFC 9728 protected resource metadata: where an MCP client learns which authorization server
//! to use. Served at the path-inserted well-known URL the MCP spec names first
//! (`/.well-known/oauth-protected-resource/mcp` for `https://host/mcp`) and at the root one.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The well-known paths for `resource`: path-inserted first (when it has a path), then root.
pub fn paths(resource: &url::Url) -> Vec<String> {
    let path = resource.path().trim_end_matches('/');
    if path.is_empty() {
        vec![WELL_KNOWN.to_owned()]
    } else {
        vec![format!("{WELL_KNOWN}{path}"), WELL_KNOWN.to_owned()]
    }
}

/// The URL the challenges name: the first of [`paths`] on the resource's origin.
pub fn url(resource: &url::Url) -> String {
    format!("{}{}", resource.origin().ascii_serialization(), paths(resource)[0])
}

pub fn document(resource: &str, issuer: &str, scopes: &[String], name: Option<&str>) -> Value {
    let mut doc = json!({
        "resource": resource,
        "authorization_servers": [issuer],
        "bearer_methods_supported": ["header"],
    });
    // RS-3: the scopes a client asks for first; more come by step-up. Never offline_access.
    let scopes: Vec<&String> = scopes.iter().filter(|s| *s != "offline_access").collect();
    if !scopes.is_empty() {
        doc["scopes_supported"] = json!(scopes);
    }
    if let Some(name) = name {
        doc["resource_name"] = json!(name);
    }
    doc
}

pub fn router<S: Clone + Send + Sync + 'static>(resource: &url::Url, document: Value) -> Router<S> {
    let mut router = Router::new();
    for path in paths(resource) {
        let doc = document.clone();
        router = router.route(
            &path,
            get(move || {
                let doc = doc.clone();
                async move {
                    let mut response = axum::Json(doc).into_response();
                    let headers = response.headers_mut();
                    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
                    // Browser-based MCP clients (the Inspector) read it across origins.
                    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                    response
                }
            }),
        );
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_inserted_url_comes_first() {
        let mcp = url::Url::parse("https://mcp.example:8443/tools/mcp").unwrap();
        assert_eq!(paths(&mcp), vec!["/.well-known/oauth-protected-resource/tools/mcp", WELL_KNOWN]);
        assert_eq!(url(&mcp), "https://mcp.example:8443/.well-known/oauth-protected-resource/tools/mcp");
        let root = url::Url::parse("https://api.example").unwrap();
        assert_eq!(paths(&root), vec![WELL_KNOWN]);
        let doc = document("https://api.example", "https://as", &["a".into(), "offline_access".into()], None);
        assert_eq!(doc["scopes_supported"], json!(["a"]));
    }
}
