//! Real HTTP on loopback: what a fetch accepts and refuses, what never leaves the process, and
//! what the cache stores.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mandate_fetch::{Accept, BuildError, CachedFetcher, FetchError, FetchPolicy, Fetcher};
use support::{ConnectionCounter, DOC, Mode, SECRET_BODY, StaticResolver, TestServer, loopback_policy};

fn fetcher(policy: FetchPolicy) -> Fetcher {
    Fetcher::new(policy).expect("fetcher")
}

fn assert_client_safe(err: &FetchError) {
    let text = err.to_string();
    assert!(!text.contains(SECRET_BODY), "error leaks the body: {text}");
}

// ---- What a fetch accepts --------------------------------------------------------------------

#[tokio::test]
async fn fetches_a_json_document() {
    let server = TestServer::start().await;
    let fetched = fetcher(loopback_policy()).get(&server.url("/doc"), Accept::json()).await.unwrap();
    assert_eq!(fetched.body, DOC.as_bytes());
    assert_eq!(fetched.content_type, "application/json");
    assert_eq!(fetched.ttl, Duration::from_secs(300));
    assert_eq!(server.hits("/doc"), 1);
}

#[tokio::test]
async fn accepts_json_suffix_types() {
    let server = TestServer::start().await;
    let fetched = fetcher(loopback_policy()).get(&server.url("/jwks"), Accept::json()).await.unwrap();
    assert_eq!(fetched.content_type, "application/jwk-set+json");
    assert_eq!(fetched.body, r#"{"keys":[]}"#.as_bytes());
}

#[tokio::test]
async fn a_body_exactly_at_the_cap_is_accepted() {
    let server = TestServer::start().await;
    let fetched = fetcher(loopback_policy()).get(&server.url("/chunked/2048"), Accept::json()).await.unwrap();
    assert_eq!(fetched.body.len(), 2048);
}

// ---- What a fetch refuses ----------------------------------------------------------------------

#[tokio::test]
async fn a_redirect_is_an_error_and_is_not_followed() {
    let server = TestServer::start().await;
    let err = fetcher(loopback_policy()).get(&server.url("/redirect"), Accept::json()).await.unwrap_err();
    assert!(matches!(err, FetchError::Redirect { status: 302, .. }), "{err:?}");
    assert_eq!(err.to_string(), "127.0.0.1 answered with a redirect (HTTP 302); redirects are not followed");
    assert_eq!(server.hits("/redirect"), 1);
    assert_eq!(server.hits("/doc"), 0, "the redirect was followed");
}

#[tokio::test]
async fn only_200_is_success() {
    let server = TestServer::start().await;
    let err = fetcher(loopback_policy()).get(&server.url("/missing"), Accept::json()).await.unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 404, .. }), "{err:?}");
    assert_eq!(err.to_string(), "127.0.0.1 answered with HTTP 404; expected 200");
    assert_client_safe(&err);

    let err = fetcher(loopback_policy()).get(&server.url("/accepted"), Accept::json()).await.unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 202, .. }), "{err:?}");
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_refused() {
    let server = TestServer::start().await;
    let fetcher = fetcher(loopback_policy());

    let err = fetcher.get(&server.url("/html"), Accept::json()).await.unwrap_err();
    match &err {
        FetchError::ContentType { found, .. } => assert_eq!(found.as_deref(), Some("text/html")),
        other => panic!("expected ContentType, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "127.0.0.1 answered with content type text/html; expected application/json or any +json type"
    );
    assert_client_safe(&err);

    let err = fetcher.get(&server.url("/untyped"), Accept::json()).await.unwrap_err();
    assert!(matches!(err, FetchError::ContentType { found: None, .. }), "{err:?}");

    let err = fetcher.get(&server.url("/doc"), Accept::only(&["image/png"])).await.unwrap_err();
    assert!(matches!(err, FetchError::ContentType { .. }), "{err:?}");
}

#[tokio::test]
async fn a_chunked_body_past_the_cap_is_cut_off_while_streaming() {
    let server = TestServer::start().await;
    let err = fetcher(loopback_policy()).get(&server.url("/chunked/2049"), Accept::json()).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { max_bytes: 2048, .. }), "{err:?}");
    assert_eq!(err.to_string(), "the response from 127.0.0.1 exceeds 2048 bytes");
}

#[tokio::test]
async fn a_declared_length_past_the_cap_is_refused_before_reading() {
    let server = TestServer::start().await;
    let err = fetcher(loopback_policy()).get(&server.url("/declared-huge"), Accept::json()).await.unwrap_err();
    // The body stalls after one byte: a reader that waited for it would time out instead.
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn slow_headers_time_out() {
    let server = TestServer::start().await;
    let started = Instant::now();
    let err = fetcher(loopback_policy()).get(&server.url("/slow-headers"), Accept::json()).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
    assert_eq!(err.to_string(), "fetching from 127.0.0.1 timed out after 500 ms");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_trickling_body_times_out() {
    let server = TestServer::start().await;
    let policy = FetchPolicy { max_bytes: 1024 * 1024, ..loopback_policy() };
    let started = Instant::now();
    let err = fetcher(policy).get(&server.url("/slow-body"), Accept::json()).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn malformed_urls_and_other_schemes_are_refused() {
    let fetcher = fetcher(loopback_policy());
    for (url, expected) in [
        ("not a url", "the URL is not a valid absolute URL"),
        ("/relative", "the URL is not a valid absolute URL"),
        ("ftp://files.example/doc", "only https URLs are fetched"),
        ("file:///etc/passwd", "only https URLs are fetched"),
        ("https://user:pw@client.example/", "the URL must not contain credentials"),
    ] {
        let err = fetcher.get(url, Accept::json()).await.unwrap_err();
        assert_eq!(err.to_string(), expected, "{url}");
    }
}

#[tokio::test]
async fn an_inconsistent_policy_is_refused() {
    let policy =
        FetchPolicy { min_ttl: Duration::from_secs(10), max_ttl: Duration::from_secs(5), ..FetchPolicy::default() };
    assert!(matches!(Fetcher::new(policy), Err(BuildError::InvalidPolicy(_))));
}

// ---- The production policy never reaches private addresses ------------------------------------

#[tokio::test]
async fn without_allow_private_networks_loopback_urls_never_reach_the_server() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    let fetcher = fetcher(FetchPolicy::default());

    let refused = [
        (server.url("/doc"), "only https URLs are fetched"),
        (format!("https://127.0.0.1:{port}/doc"), "the URL host 127.0.0.1 is an IP address; a DNS name is required"),
        (format!("https://[::1]:{port}/doc"), "the URL host [::1] is an IP address; a DNS name is required"),
        (
            format!("https://[::ffff:127.0.0.1]:{port}/doc"),
            "the URL host [::ffff:7f00:1] is an IP address; a DNS name is required",
        ),
        // WHATWG URL parsing turns these into 127.0.0.1 as well.
        (format!("https://2130706433:{port}/doc"), "the URL host 127.0.0.1 is an IP address; a DNS name is required"),
        (format!("https://0x7f.1:{port}/doc"), "the URL host 127.0.0.1 is an IP address; a DNS name is required"),
        // The system resolver answers from /etc/hosts: loopback only.
        (format!("https://localhost:{port}/doc"), "localhost resolves only to private or reserved addresses"),
        (format!("http://localhost:{port}/doc"), "only https URLs are fetched"),
    ];
    for (url, expected) in refused {
        let err = fetcher.get(&url, Accept::json()).await.unwrap_err();
        assert_eq!(err.to_string(), expected, "{url}");
    }
    assert_eq!(server.total_hits(), 0, "a refused fetch reached the server");

    // The same server is reachable with the switch on, so the zero above means something.
    let allowed = self::fetcher(loopback_policy());
    allowed.get(&server.url("/doc"), Accept::json()).await.unwrap();
    allowed.get(&format!("http://localhost:{port}/doc"), Accept::json()).await.unwrap();
    assert_eq!(server.total_hits(), 2);
}

#[tokio::test]
async fn hostile_dns_answers_are_refused_before_connecting() {
    let listener = ConnectionCounter::start().await;
    let url = format!("https://evil.test:{}/doc", listener.port);
    for answer in [
        &["127.0.0.1"][..],
        &["10.0.0.1"],
        &["169.254.169.254"],
        &["::ffff:127.0.0.1"],
        &["64:ff9b::7f00:1"],
        &["127.0.0.1", "::1", "192.168.1.1", "fd00::1", "100.64.0.1"],
    ] {
        let fetcher = Fetcher::with_resolver(FetchPolicy::default(), StaticResolver::one("evil.test", answer)).unwrap();
        let err = fetcher.get(&url, Accept::json()).await.unwrap_err();
        assert!(matches!(&err, FetchError::PrivateAddress { host } if host == "evil.test"), "{answer:?}: {err:?}");
        assert_eq!(err.to_string(), "evil.test resolves only to private or reserved addresses");
    }
    assert_eq!(listener.accepted(), 0, "a connection was opened");

    // With the switch on, the same answer is connected to (and TLS then fails against a bare
    // TCP listener): the zero above is not an accident of the setup.
    let fetcher = Fetcher::with_resolver(loopback_policy(), StaticResolver::one("evil.test", &["127.0.0.1"])).unwrap();
    let err = fetcher.get(&url, Accept::json()).await.unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. } | FetchError::Transport { .. }), "{err:?}");
    assert_eq!(listener.accepted(), 1);
}

#[tokio::test]
async fn an_unresolvable_host_is_a_resolution_error() {
    let fetcher =
        Fetcher::with_resolver(FetchPolicy::default(), StaticResolver::one("known.test", &["93.184.215.14"])).unwrap();
    let err = fetcher.get("https://unknown.test/doc", Accept::json()).await.unwrap_err();
    assert!(matches!(err, FetchError::Resolve { .. }), "{err:?}");
    assert_eq!(err.to_string(), "unknown.test could not be resolved");
}

// ---- The cache ----------------------------------------------------------------------------------

fn cached(policy: FetchPolicy) -> CachedFetcher {
    CachedFetcher::new(fetcher(policy))
}

#[tokio::test]
async fn concurrent_misses_share_one_request() {
    let server = TestServer::start().await;
    let cache = Arc::new(cached(loopback_policy()));
    let url = server.url("/slow-doc");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (cache, url) = (Arc::clone(&cache), url.clone());
        tasks.spawn(async move { cache.get_cached(&url, Accept::json()).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap().body, DOC.as_bytes());
    }
    assert_eq!(server.hits("/slow-doc"), 1);

    cache.get_cached(&url, Accept::json()).await.unwrap();
    assert_eq!(server.hits("/slow-doc"), 1, "a hit went to the server");
}

#[tokio::test]
async fn errors_are_not_cached() {
    let server = TestServer::start().await;
    let cache = cached(loopback_policy());
    let url = server.url("/flaky");

    let err = cache.get_cached(&url, Accept::json()).await.unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 500, .. }), "{err:?}");
    assert_client_safe(&err);

    server.heal();
    let fetched = cache.get_cached(&url, Accept::json()).await.unwrap();
    assert_eq!(fetched.body, DOC.as_bytes());
    assert_eq!(server.hits("/flaky"), 2);

    cache.get_cached(&url, Accept::json()).await.unwrap();
    assert_eq!(server.hits("/flaky"), 2, "the success was not cached");
}

#[tokio::test]
async fn ttl_is_clamped_to_the_policy_bounds() {
    let server = TestServer::start().await;
    let policy =
        FetchPolicy { min_ttl: Duration::from_millis(500), max_ttl: Duration::from_millis(1500), ..loopback_policy() };
    let cache = cached(policy);
    let no_store = server.url("/cache-control/no-store");
    let short = server.url("/cache-control/max-age=0");
    let long = server.url("/cache-control/max-age=86400");

    for url in [&no_store, &short, &long] {
        cache.get_cached(url, Accept::json()).await.unwrap();
    }
    assert_eq!(cache.get_cached(&long, Accept::json()).await.unwrap().ttl, Duration::from_millis(1500));
    assert_eq!(cache.get_cached(&short, Accept::json()).await.unwrap().ttl, Duration::from_millis(500));
    // Below the minimum: still cached for min_ttl (no-store included).
    for path in ["/cache-control/no-store", "/cache-control/max-age=0"] {
        assert_eq!(server.hits(path), 1, "{path}");
    }

    tokio::time::sleep(Duration::from_millis(800)).await;
    for url in [&no_store, &short, &long] {
        cache.get_cached(url, Accept::json()).await.unwrap();
    }
    assert_eq!(server.hits("/cache-control/no-store"), 2);
    assert_eq!(server.hits("/cache-control/max-age=0"), 2);
    assert_eq!(server.hits("/cache-control/max-age=86400"), 1);

    // Above the maximum: gone after max_ttl although max-age says a day.
    tokio::time::sleep(Duration::from_millis(900)).await;
    cache.get_cached(&long, Accept::json()).await.unwrap();
    assert_eq!(server.hits("/cache-control/max-age=86400"), 2);
}

#[tokio::test]
async fn invalidate_forces_a_refetch() {
    let server = TestServer::start().await;
    let cache = cached(loopback_policy());
    let url = server.url("/versioned");

    let first = cache.get_cached(&url, Accept::json()).await.unwrap();
    server.bump_version();
    assert_eq!(cache.get_cached(&url, Accept::json()).await.unwrap(), first);
    cache.invalidate(&url).await;
    let second = cache.get_cached(&url, Accept::json()).await.unwrap();
    assert_eq!(second.body, r#"{"version":1}"#.as_bytes());
    assert_eq!(server.hits("/versioned"), 2);
}

#[tokio::test]
async fn refresh_refetches_only_entries_older_than_the_interval() {
    let server = TestServer::start().await;
    let url = server.url("/versioned");

    let patient = cached(FetchPolicy { min_refresh_interval: Duration::from_secs(60), ..loopback_policy() });
    patient.get_cached(&url, Accept::json()).await.unwrap();
    server.bump_version();
    let still = patient.refresh(&url, Accept::json()).await.unwrap();
    assert_eq!(still.body, r#"{"version":0}"#.as_bytes());
    assert_eq!(server.hits("/versioned"), 1);

    let eager = cached(FetchPolicy { min_refresh_interval: Duration::ZERO, ..loopback_policy() });
    eager.get_cached(&url, Accept::json()).await.unwrap();
    server.bump_version();
    let fresh = eager.refresh(&url, Accept::json()).await.unwrap();
    assert_eq!(fresh.body, r#"{"version":2}"#.as_bytes());
    assert_eq!(server.hits("/versioned"), 3);
    // The refreshed answer is what the cache now holds.
    assert_eq!(eager.get_cached(&url, Accept::json()).await.unwrap(), fresh);
    assert_eq!(server.hits("/versioned"), 3);
}

#[tokio::test]
async fn a_cached_entry_is_checked_against_each_callers_accept() {
    let server = TestServer::start().await;
    let cache = cached(loopback_policy());
    let url = server.url("/doc");
    cache.get_cached(&url, Accept::json()).await.unwrap();
    let err = cache.get_cached(&url, Accept::only(&["image/png"])).await.unwrap_err();
    assert!(matches!(err, FetchError::ContentType { .. }), "{err:?}");
    assert_eq!(server.hits("/doc"), 1);
}

// ---- Failures at the source keep what we have ---------------------------------------------------

fn version(fetched: &mandate_fetch::Fetched) -> String {
    String::from_utf8(fetched.body.to_vec()).unwrap()
}

/// Issue 15, item 21: one refresh during an outage (an HTML page, a redirect, a trickling or a
/// huge body) used to drop the good keys, so that every later request failed and fetched again.
#[tokio::test]
async fn a_failed_refresh_keeps_the_cached_answer_and_is_remembered() {
    for bad in [Mode::Html, Mode::Redirect, Mode::SlowBody, Mode::Huge] {
        let server = TestServer::start().await;
        let interval = Duration::from_millis(400);
        let cache = Arc::new(cached(FetchPolicy { min_refresh_interval: interval, ..loopback_policy() }));
        let url = server.url("/switchable");
        let good = cache.get_cached(&url, Accept::json()).await.unwrap();
        assert_eq!(version(&good), r#"{"version":0}"#);

        tokio::time::sleep(interval + Duration::from_millis(50)).await;
        server.set_mode(bad);
        // Ten callers meet an unknown kid at once: one fetch, and each keeps the good answer.
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (cache, url) = (Arc::clone(&cache), url.clone());
            tasks.spawn(async move { cache.refresh(&url, Accept::json()).await });
        }
        while let Some(result) = tasks.join_next().await {
            assert_eq!(result.unwrap().unwrap(), good, "{bad:?}: the good answer is kept");
        }
        assert_eq!(server.hits("/switchable"), 2, "{bad:?}: one refetch for ten callers");

        // Every later request is served from the cache, and the failure is remembered: no fetch.
        for _ in 0..20 {
            assert_eq!(cache.get_cached(&url, Accept::json()).await.unwrap(), good, "{bad:?}");
            assert_eq!(cache.refresh(&url, Accept::json()).await.unwrap(), good, "{bad:?}");
        }
        assert_eq!(server.hits("/switchable"), 2, "{bad:?}: the failure is remembered for the interval");

        // After the interval it is tried again; once the source is back, its answer replaces ours.
        tokio::time::sleep(interval + Duration::from_millis(50)).await;
        assert_eq!(cache.refresh(&url, Accept::json()).await.unwrap(), good);
        assert_eq!(server.hits("/switchable"), 3, "{bad:?}");
        server.set_mode(Mode::Healthy);
        server.bump_version();
        tokio::time::sleep(interval + Duration::from_millis(50)).await;
        let fresh = cache.refresh(&url, Accept::json()).await.unwrap();
        assert_eq!(version(&fresh), r#"{"version":1}"#, "{bad:?}");
        assert_eq!(cache.get_cached(&url, Accept::json()).await.unwrap(), fresh);
        assert_eq!(server.hits("/switchable"), 4, "{bad:?}");
    }
}

#[tokio::test]
async fn an_expired_answer_is_served_stale_while_its_source_fails() {
    let server = TestServer::start().await;
    let policy = FetchPolicy {
        min_ttl: Duration::from_millis(300),
        max_ttl: Duration::from_secs(2),
        min_refresh_interval: Duration::from_millis(300),
        ..loopback_policy()
    };
    let cache = cached(policy);
    let url = server.url("/switchable");
    let good = cache.get_cached(&url, Accept::json()).await.unwrap();

    server.set_mode(Mode::Html);
    tokio::time::sleep(Duration::from_millis(350)).await;
    // No longer fresh: refetched once, which fails, so the stale answer is served.
    for _ in 0..10 {
        assert_eq!(cache.get_cached(&url, Accept::json()).await.unwrap(), good);
    }
    assert_eq!(server.hits("/switchable"), 2, "one attempt, then the failure is remembered");

    server.set_mode(Mode::Healthy);
    server.bump_version();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let fresh = cache.get_cached(&url, Accept::json()).await.unwrap();
    assert_eq!(version(&fresh), r#"{"version":1}"#);
    assert_eq!(server.hits("/switchable"), 3);

    // Never fetched successfully: nothing to keep, and the error is not stored (CIMD-5).
    let missing = server.url("/missing");
    cache.get_cached(&missing, Accept::json()).await.unwrap_err();
    cache.get_cached(&missing, Accept::json()).await.unwrap_err();
    assert_eq!(server.hits("/missing"), 2);
}
