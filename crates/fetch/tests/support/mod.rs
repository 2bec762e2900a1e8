//! A real HTTP server on 127.0.0.1 with one route per behaviour the fetcher must handle, counting
//! the requests it receives; and a TCP listener counting bare connections.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use mandate_fetch::{FetchPolicy, HostResolver};

/// Marker put in every error body: it must never show up in an error message.
pub const SECRET_BODY: &str = "server-side-secret-body";

#[derive(Default)]
struct Counters {
    hits: Mutex<HashMap<String, usize>>,
    healthy: AtomicBool,
    version: AtomicUsize,
    /// What `/switchable` answers: a [`Mode`].
    mode: AtomicUsize,
}

/// What `/switchable` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `{"version": n}`, JSON, `max-age=0` (cached for the policy's `min_ttl`).
    Healthy = 0,
    /// An HTML error page with status 200.
    Html = 1,
    /// A redirect.
    Redirect = 2,
    /// JSON headers, then a body that trickles forever.
    SlowBody = 3,
    /// More than the size cap.
    Huge = 4,
}

pub struct TestServer {
    pub addr: SocketAddr,
    counters: Arc<Counters>,
}

impl TestServer {
    pub async fn start() -> Self {
        let counters = Arc::new(Counters::default());
        let router = Router::new()
            .route("/doc", get(doc))
            .route("/jwks", get(jwks))
            .route("/redirect", get(redirect))
            .route("/missing", get(missing))
            .route("/accepted", get(accepted))
            .route("/html", get(html))
            .route("/untyped", get(untyped))
            .route("/chunked/{bytes}", get(chunked))
            .route("/declared-huge", get(declared_huge))
            .route("/slow-headers", get(slow_headers))
            .route("/slow-body", get(slow_body))
            .route("/slow-doc", get(slow_doc))
            .route("/cache-control/{value}", get(cache_control))
            .route("/flaky", get(flaky))
            .route("/versioned", get(versioned))
            .route("/switchable", get(switchable))
            .layer(middleware::from_fn_with_state(Arc::clone(&counters), count))
            .with_state(Arc::clone(&counters));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { addr, counters }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.counters.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Requests received in all.
    pub fn total_hits(&self) -> usize {
        self.counters.hits.lock().unwrap().values().sum()
    }

    /// `/flaky` answers 500 until this is called, 200 after.
    pub fn heal(&self) {
        self.counters.healthy.store(true, Ordering::SeqCst);
    }

    /// What `/switchable` answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.counters.mode.store(mode as usize, Ordering::SeqCst);
    }

    /// `/versioned` answers `{"version": n}` with n bumped here.
    pub fn bump_version(&self) {
        self.counters.version.fetch_add(1, Ordering::SeqCst);
    }
}

async fn count(State(counters): State<Arc<Counters>>, request: Request, next: Next) -> Response {
    *counters.hits.lock().unwrap().entry(request.uri().path().to_owned()).or_default() += 1;
    next.run(request).await
}

pub const DOC: &str = r#"{"client_id":"https://client.example/","client_name":"Example"}"#;

async fn doc() -> Response {
    ([(header::CONTENT_TYPE, "application/json; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")], DOC)
        .into_response()
}

async fn jwks() -> Response {
    ([(header::CONTENT_TYPE, "application/jwk-set+json")], r#"{"keys":[]}"#).into_response()
}

async fn redirect() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/doc")], SECRET_BODY).into_response()
}

async fn missing() -> Response {
    (StatusCode::NOT_FOUND, SECRET_BODY).into_response()
}

/// A 2xx other than 200, with a perfectly good document.
async fn accepted() -> Response {
    (StatusCode::ACCEPTED, [(header::CONTENT_TYPE, "application/json")], DOC).into_response()
}

async fn html() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], format!("<html>{SECRET_BODY}</html>")).into_response()
}

async fn untyped() -> Response {
    Response::new(Body::from(DOC))
}

/// `bytes` bytes of JSON-typed body in 512-byte chunks, without `Content-Length`.
async fn chunked(Path(bytes): Path<usize>) -> Response {
    let chunks = (0..bytes)
        .step_by(512)
        .map(move |start| Ok::<_, Infallible>(Bytes::from(vec![b' '; (bytes - start).min(512)])));
    ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream::iter(chunks))).into_response()
}

/// Declares a megabyte, sends one chunk, then stalls: only an up-front `Content-Length` check
/// fails fast here; a reader that waits for the body times out.
async fn declared_huge() -> Response {
    let body = stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b"{")) }).chain(stream::pending());
    ([(header::CONTENT_TYPE, "application/json"), (header::CONTENT_LENGTH, "1000000")], Body::from_stream(body))
        .into_response()
}

async fn slow_headers() -> Response {
    tokio::time::sleep(Duration::from_secs(5)).await;
    doc().await
}

/// Headers at once, then a byte every 50 ms, forever.
async fn slow_body() -> Response {
    let body = stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Some((Ok::<_, Infallible>(Bytes::from_static(b" ")), ()))
    });
    ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(body)).into_response()
}

async fn slow_doc() -> Response {
    tokio::time::sleep(Duration::from_millis(200)).await;
    doc().await
}

async fn cache_control(Path(value): Path<String>) -> Response {
    ([(header::CONTENT_TYPE, "application/json".to_owned()), (header::CACHE_CONTROL, value)], DOC).into_response()
}

async fn flaky(State(counters): State<Arc<Counters>>) -> Response {
    if counters.healthy.load(Ordering::SeqCst) {
        doc().await
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, SECRET_BODY).into_response()
    }
}

async fn versioned(State(counters): State<Arc<Counters>>) -> Response {
    let version = counters.version.load(Ordering::SeqCst);
    (
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "max-age=3600")],
        format!(r#"{{"version":{version}}}"#),
    )
        .into_response()
}

async fn switchable(State(counters): State<Arc<Counters>>) -> Response {
    let version = counters.version.load(Ordering::SeqCst);
    match counters.mode.load(Ordering::SeqCst) {
        0 => (
            [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "max-age=0")],
            format!(r#"{{"version":{version}}}"#),
        )
            .into_response(),
        1 => html().await,
        2 => redirect().await,
        3 => slow_body().await,
        _ => chunked(Path(1024 * 1024)).await,
    }
}

/// A TCP listener that accepts and drops connections, counting them: proof that a refused
/// fetch never opened a connection.
pub struct ConnectionCounter {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl ConnectionCounter {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        Self { port, accepted }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A DNS server under the test's control: each name answers with the listed addresses.
pub struct StaticResolver(pub HashMap<String, Vec<IpAddr>>);

impl StaticResolver {
    pub fn one(host: &str, ips: &[&str]) -> Arc<Self> {
        let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        Arc::new(Self(HashMap::from([(host.to_owned(), ips)])))
    }
}

#[async_trait::async_trait]
impl HostResolver for StaticResolver {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        self.0.get(host).cloned().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "NXDOMAIN"))
    }
}

/// The policy for loopback tests: private networks allowed, short timeouts, a 2 KiB cap.
pub fn loopback_policy() -> FetchPolicy {
    FetchPolicy {
        allow_private_networks: true,
        connect_timeout: Duration::from_millis(500),
        total_timeout: Duration::from_millis(500),
        max_bytes: 2048,
        ..FetchPolicy::default()
    }
}
