//! Client ID metadata documents: URL client ids served from a loopback server (with
//! `allow_private_networks`), every failure mode refused with a clear error, and the same fetch
//! refused when private networks are not allowed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::common::browser::*;
use crate::common::{Backend, MCP, Options, TestServer, assert_oauth_error, fresh_database};

/// The start of a PNG file: enough for the content to be recognisable in the test.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR test logo";

struct Site {
    base: String,
    hits: Arc<AtomicUsize>,
}

/// A loopback web site publishing client documents (and their failure modes).
async fn site() -> Site {
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (b, h) = (base.clone(), hits.clone());
    let flaky = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::get(move |axum::extract::Path(name): axum::extract::Path<String>| {
            let (base, hits, flaky) = (b.clone(), h.clone(), flaky.clone());
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                let id = format!("{base}/{name}");
                let doc = |extra: Value| {
                    let mut d = json!({
                        "client_id": id, "client_name": "URL Agent", "application_type": "native",
                        "redirect_uris": [NATIVE_REDIRECT], "token_endpoint_auth_method": "none",
                        "grant_types": ["authorization_code", "refresh_token"],
                    });
                    for (k, v) in extra.as_object().unwrap() {
                        d[k] = v.clone();
                    }
                    axum::Json(d).into_response()
                };
                match name.as_str() {
                    "good" => doc(json!({})),
                    "with-logo" => doc(json!({ "logo_uri": format!("{base}/logo.png") })),
                    "elsewhere" => {
                        doc(json!({ "application_type": "web", "redirect_uris": ["https://elsewhere.example/cb"] }))
                    }
                    "svg-logo" => doc(json!({ "logo_uri": format!("{base}/logo.svg") })),
                    "logo.png" => ([(header::CONTENT_TYPE, "image/png")], PNG).into_response(),
                    "logo.svg" => ([(header::CONTENT_TYPE, "image/svg+xml")], "<svg><script>alert(1)</script></svg>")
                        .into_response(),
                    "redirect" => (StatusCode::FOUND, [(header::LOCATION, format!("{base}/good"))]).into_response(),
                    "missing" => StatusCode::NOT_FOUND.into_response(),
                    "html" => ([(header::CONTENT_TYPE, "text/html")], "<html>hi</html>").into_response(),
                    "big" => doc(json!({ "client_name": "x".repeat(6000) })),
                    "mismatch" => doc(json!({ "client_id": format!("{base}/other") })),
                    "secret" => doc(json!({ "token_endpoint_auth_method": "client_secret_basic" })),
                    "no-redirects" => doc(json!({ "redirect_uris": [] })),
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(7)).await;
                        doc(json!({}))
                    }
                    "flaky" => {
                        if flaky.fetch_add(1, Ordering::SeqCst) == 0 {
                            StatusCode::INTERNAL_SERVER_ERROR.into_response()
                        } else {
                            doc(json!({}))
                        }
                    }
                    _ => StatusCode::NOT_FOUND.into_response(),
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Site { base, hits }
}

async fn server(backend: Backend, registration: &str) -> TestServer {
    let config = format!("[registration]\n{registration}\n{}", delegation_config());
    TestServer::start_on(fresh_database(backend).await, Options { config, ..Options::default() }).await
}

async fn a_url_client_completes_the_code_flow(backend: Backend) {
    let site = site().await;
    let server = server(backend, "allow_private_networks = true").await;
    let client_id = format!("{}/good", site.base);
    let mut b = Browser::new();
    let start =
        b.get(&authorize_url(&server, &client_id, "http://127.0.0.1:49152/callback", &[("scope", "tools:read")])).await;
    assert!(start.redirects_to(&server.url("/login")), "{:?} {}", start.location, start.body);
    let consent_at = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    let consent = b.get(consent_at.location.as_deref().unwrap()).await;
    assert!(consent.body.contains("URL Agent"));
    assert!(consent.body.contains("id=\"verified-host\""), "the verified host is shown");
    assert!(!consent.body.contains("id=\"redirect-elsewhere\""), "the answer goes to the same host");
    let done = b.decide(consent_at.location.as_deref().unwrap(), "approve", false).await;
    assert!(done.redirects_to("http://127.0.0.1:49152/callback"), "{:?}", done.location);
    let res = server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", &done.param("code").unwrap()),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let (_, claims) = crate::common::decode_unverified(body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], client_id);
    assert_eq!(claims["aud"], MCP);
    assert_eq!(site.hits.load(Ordering::SeqCst), 1, "the document is fetched once and cached");
    let meta = server.metadata().await;
    assert_eq!(meta["client_id_metadata_document_supported"], true);
}

async fn every_failure_mode_is_refused(backend: Backend) {
    let site = site().await;
    let server = server(backend, "allow_private_networks = true").await;
    let mut b = Browser::new();
    for (name, expect) in [
        ("redirect", "302"),
        ("missing", "404"),
        ("html", "content type"),
        ("big", "exceeds 5120 bytes"),
        ("mismatch", "client_id"),
        ("secret", "token_endpoint_auth_method"),
        ("no-redirects", "redirect_uris"),
    ] {
        let client_id = format!("{}/{name}", site.base);
        let seen = b.get(&authorize_url(&server, &client_id, NATIVE_REDIRECT, &[])).await;
        assert_eq!(seen.status, 400, "{name}: {}", seen.body);
        assert!(seen.location.is_none(), "{name}: never redirect for an unverified client");
        assert!(seen.body.contains("invalid_client"), "{name}: {}", seen.body);
        assert!(seen.body.to_lowercase().contains(expect), "{name}: the page should say {expect:?}: {}", seen.body);
    }
    // At the token endpoint, the same failure is a 401 invalid_client.
    let res = server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &format!("{}/mismatch", site.base)),
                ("code", "x"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_oauth_error(res, 401, "invalid_client").await;
    // Errors are not cached: a failing document works once fixed.
    let flaky = format!("{}/flaky", site.base);
    assert_eq!(b.get(&authorize_url(&server, &flaky, NATIVE_REDIRECT, &[])).await.status, 400);
    assert!(b.get(&authorize_url(&server, &flaky, NATIVE_REDIRECT, &[])).await.redirects_to(&server.url("/login")));
}

async fn a_slow_site_times_out(backend: Backend) {
    let site = site().await;
    let server = server(backend, "allow_private_networks = true").await;
    let seen = Browser::new().get(&authorize_url(&server, &format!("{}/slow", site.base), NATIVE_REDIRECT, &[])).await;
    assert_eq!(seen.status, 400);
    assert!(seen.body.contains("invalid_client"));
}

async fn policy_and_private_networks_refuse_before_fetching(backend: Backend) {
    let site = site().await;
    // Private networks not allowed: loopback is never contacted, whatever the scheme.
    let server = server(backend, "").await;
    let mut b = Browser::new();
    let https_loopback = site.base.replace("http://", "https://");
    for client_id in [format!("{}/good", site.base), format!("{https_loopback}/good")] {
        let seen = b.get(&authorize_url(&server, &client_id, NATIVE_REDIRECT, &[])).await;
        assert_eq!(seen.status, 400, "{client_id}");
        assert!(seen.body.contains("invalid_client"), "{}", seen.body);
    }
    // A denied host is refused by policy.
    let denied = crate::metadata_documents::server(
        Backend::Sqlite,
        "allow_private_networks = true\nclient_metadata_denied_hosts = [\"127.0.0.1\"]",
    )
    .await;
    let seen = b.get(&authorize_url(&denied, &format!("{}/good", site.base), NATIVE_REDIRECT, &[])).await;
    assert_eq!(seen.status, 400);
    assert!(seen.body.contains("not allowed"), "{}", seen.body);
    // URL ids without a path, or turned off entirely.
    let seen = b.get(&authorize_url(&denied, &site.base, NATIVE_REDIRECT, &[])).await;
    assert_eq!(seen.status, 400);
    let off = crate::metadata_documents::server(
        Backend::Sqlite,
        "allow_private_networks = true\nclient_id_metadata_documents = false",
    )
    .await;
    let seen = b.get(&authorize_url(&off, &format!("{}/good", site.base), NATIVE_REDIRECT, &[])).await;
    assert_eq!(seen.status, 400);
    assert_eq!(site.hits.load(Ordering::SeqCst), 0, "no request ever reached the site");
}

/// The consent page shows a URL client's logo, served from mandate's own origin (raster images
/// only, fetched through the SSRF-safe fetcher), never SVG.
async fn logos_are_shown_from_our_origin(backend: Backend) {
    let site = site().await;
    let server = server(backend, "allow_private_networks = true").await;
    let logo_of = |page: &str| {
        let marker = "id=\"client-logo\" src=\"";
        let start = page.find(marker)? + marker.len();
        Some(page[start..start + page[start..].find('"')?].replace("&amp;", "&").replace("&#x2f;", "/"))
    };
    let mut logos = Vec::new();
    for name in ["with-logo", "svg-logo", "good"] {
        let mut b = Browser::new();
        let client_id = format!("{}/{name}", site.base);
        let start = b.get(&authorize_url(&server, &client_id, NATIVE_REDIRECT, &[("scope", "tools:read")])).await;
        let consent_at = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
        let page = b.get(consent_at.location.as_deref().unwrap()).await.body;
        logos.push(logo_of(&page));
    }
    assert!(logos[2].is_none(), "no logo_uri, no image");
    let png = logos[0].clone().expect("the consent page shows the logo");
    assert!(png.starts_with(&server.url("/consent/logo?request=")), "{png}");
    let res = server.http.get(&png).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);
    let svg = logos[1].clone().expect("the page links the logo; the server refuses to serve SVG");
    assert_eq!(server.http.get(&svg).send().await.unwrap().status(), 404);
    let unknown = server.http.get(server.url("/consent/logo?request=nothing-pending")).send().await.unwrap();
    assert_eq!(unknown.status(), 404, "logos only of clients with a pending request");
}

/// Issue #15 item 11: a URL naming a host that resolves only to private addresses and one naming a
/// host that does not resolve get the same answer, so client ids cannot probe internal DNS.
async fn fetch_errors_do_not_map_the_internal_network(backend: Backend) {
    let server = server(backend, "").await;
    let mut descriptions = Vec::new();
    for host in ["localhost", "no-such-host.invalid"] {
        let client_id = format!("https://{host}/agent");
        let res = server
            .post_form(
                "/token",
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", &client_id),
                    ("code", "x"),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await;
        let body = assert_oauth_error(res, 401, "invalid_client").await;
        descriptions.push(body["error_description"].as_str().unwrap().replace(host, "HOST"));
    }
    assert_eq!(descriptions[0], descriptions[1]);
    assert!(descriptions[0].contains("HOST could not be reached"), "{}", descriptions[0]);
}

/// Issue #15 item 14: a verified host vouches for the client, not for where the code goes: the
/// consent page says so when the redirect URI is on another host.
async fn the_consent_page_says_where_the_code_goes(backend: Backend) {
    let site = site().await;
    let server = server(backend, "allow_private_networks = true").await;
    let client_id = format!("{}/elsewhere", site.base);
    let mut b = Browser::new();
    let start =
        b.get(&authorize_url(&server, &client_id, "https://elsewhere.example/cb", &[("scope", "tools:read")])).await;
    let consent_at = b.sign_in(start.location.as_deref().unwrap(), "alice", ALICE_PASSWORD).await;
    let page = b.get(consent_at.location.as_deref().unwrap()).await.body;
    assert!(page.contains("id=\"verified-host\""), "{page}");
    assert!(page.contains("id=\"redirect-elsewhere\"") && page.contains("elsewhere.example"), "{page}");
}

crate::on_both_backends!(
    the_consent_page_says_where_the_code_goes,
    fetch_errors_do_not_map_the_internal_network,
    logos_are_shown_from_our_origin,
    a_url_client_completes_the_code_flow,
    every_failure_mode_is_refused,
    a_slow_site_times_out,
    policy_and_private_networks_refuse_before_fetching,
);
