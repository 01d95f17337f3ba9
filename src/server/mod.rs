//! The HTTPS server: axum routes over rustls (tokio-rustls), hyper for HTTP/1.1 and HTTP/2.
//! Handlers are thin: read the body, call [`review`], log and count, answer.

pub mod idle;
pub mod metrics;
pub mod namespaces;
pub mod patch;
pub mod review;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::certs::CertResolver;
use crate::pipeline::Engine;
use metrics::Metrics;
use review::{Answer, Endpoint};

/// Limits and behaviour of the server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Largest accepted request body (the API server sends at most a few MB).
    pub body_limit: usize,
    /// Time allowed for one request, body read to answer.
    pub request_timeout: Duration,
    /// Time allowed for the TLS handshake and for request headers.
    pub handshake_timeout: Duration,
    /// A connection that reads nothing for this long is closed (see [`idle`]).
    pub idle_timeout: Duration,
    /// Open connections at most; accept waits beyond that (no unbounded queue).
    pub max_connections: usize,
    /// Time in-flight requests get to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// Serve `/bench/noop` and `/bench/decode` (load benchmarks only).
    pub bench_endpoints: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            body_limit: 3 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(25),
            bench_endpoints: false,
        }
    }
}

/// Shared state of the handlers.
pub struct AppState {
    /// The live engine. Read with [`AppState::engine`], changed only through
    /// [`AppState::update_engine`] (policy reloads and the cluster preset watch both write it).
    engine: ArcSwap<Engine>,
    pub metrics: Metrics,
    pub resolver: Arc<CertResolver>,
    /// Caches synced (in-cluster) and certificates loaded.
    pub ready: AtomicBool,
    /// Namespace labels for policies' `namespaceSelector` (set by `serve` when it has a
    /// cluster; [`namespaces`]).
    pub namespaces: std::sync::OnceLock<namespaces::NamespaceCache>,
}

impl AppState {
    pub fn new(engine: Engine, resolver: Arc<CertResolver>) -> Arc<Self> {
        let state = Arc::new(Self {
            engine: ArcSwap::from_pointee(engine),
            metrics: Metrics::new(),
            resolver,
            ready: AtomicBool::new(true),
            namespaces: std::sync::OnceLock::new(),
        });
        state.update_cert_metric();
        state
    }

    /// The engine as of now (a cheap `Arc` clone; later updates do not change it).
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// Applies one change to the live engine. Every writer goes through here: `ArcSwap::rcu`
    /// re-runs `change` on the newer engine when another writer stored one in between, so a
    /// preset update never silently undoes a policy reload (or the other way round), which a
    /// load-clone-store in each writer did.
    pub fn update_engine(&self, change: impl Fn(&mut Engine)) {
        self.engine.rcu(|current| {
            let mut next = Engine::clone(current);
            change(&mut next);
            next
        });
    }

    pub fn update_cert_metric(&self) {
        if let Ok(t) = crate::certs::not_after(&self.resolver.cert_pem()) {
            self.metrics.cert_expiry.set(t);
        }
    }
}

fn log_and_count(state: &AppState, endpoint: &str, answer: &Answer, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    let i = &answer.info;
    state
        .metrics
        .record(endpoint, &i.kind, &i.operation, i.result, secs);
    if endpoint == "mutate" && i.patch_bytes > 0 {
        state
            .metrics
            .patch_bytes
            .get_or_create(&metrics::EndpointLabels {
                endpoint: endpoint.into(),
            })
            .observe(i.patch_bytes as f64);
    }
    tracing::info!(
        endpoint,
        uid = %i.uid,
        kind = %i.kind,
        namespace = %i.namespace,
        name = %i.name,
        operation = %i.operation,
        result = i.result,
        patch_bytes = i.patch_bytes,
        latency_us = (secs * 1e6) as u64,
        message = %i.message,
        "review"
    );
}

fn to_response(answer: Answer) -> Response {
    let ct = if answer.status == 200 {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut resp = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST),
        answer.body,
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp
}

/// Bodies up to this size are worked on in the async task (a typical review takes well under a
/// millisecond); larger ones on tokio's blocking pool, so that a multi-megabyte review does not
/// hold up the other connections served by the same worker thread.
const INLINE_BODY: usize = 64 * 1024;

/// Heavy work (bodies over [`INLINE_BODY`]) runs on a fixed pool of this many threads, one per
/// core, started once. More threads add no throughput (the work is CPU-bound) but each one
/// costs a stack and its own allocator heap: tokio's blocking pool (up to 512 threads) once grew
/// to 431 threads and 795 MB peak RSS under 64 concurrent 74 KB reviews. A request waiting for a
/// worker holds only its body bytes; the request timeout (`ServerOptions::request_timeout`, the
/// layer around the handlers) bounds the wait and drops a job that has not started.
pub fn heavy_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

type Job = Box<dyn FnOnce() + Send + 'static>;

struct HeavyPool {
    /// One permit per worker: a job is queued only when a worker is free, so the queue holds
    /// at most `heavy_workers()` jobs and the waiting requests wait here, as futures.
    slots: tokio::sync::Semaphore,
    jobs: std::sync::mpsc::Sender<Job>,
}

fn heavy_pool() -> &'static HeavyPool {
    static POOL: std::sync::OnceLock<HeavyPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let n = heavy_workers();
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..n {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("llmisvc-heavy-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a heavy-review worker");
            }
        }
        HeavyPool {
            slots: tokio::sync::Semaphore::new(n),
            jobs: tx,
        }
    })
}

fn internal_error(e: impl std::fmt::Display) -> Answer {
    Answer {
        status: 500,
        body: format!("internal error: {e}").into_bytes(),
        info: review::ReviewInfo {
            result: "failed",
            message: e.to_string(),
            ..Default::default()
        },
    }
}

pub(crate) async fn off_async_workers(
    body_len: usize,
    work: impl FnOnce() -> Answer + Send + 'static,
) -> Answer {
    if body_len <= INLINE_BODY {
        return work();
    }
    let pool = heavy_pool();
    let permit = match pool.slots.acquire().await {
        Ok(p) => p,
        Err(e) => return internal_error(e),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    // The permit goes with the job and is released when the job ends (not when this future is
    // dropped by the timeout): jobs queued never outnumber the workers.
    let job: Job = Box::new(move || {
        let _permit = permit;
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
            .unwrap_or_else(|_| internal_error("handler panicked"));
        let _ = tx.send(answer);
    });
    if pool.jobs.send(job).is_err() {
        return internal_error("no heavy-review worker");
    }
    rx.await
        .unwrap_or_else(|_| internal_error("heavy-review worker gone"))
}

async fn admission(state: Arc<AppState>, endpoint: Endpoint, body: Bytes) -> Response {
    let started = Instant::now();
    let engine = state.engine();
    let answer = match state.namespaces.get() {
        Some(cache) => cache.admission(endpoint, body, engine).await,
        None => {
            off_async_workers(body.len(), move || {
                review::admission(endpoint, &body, &engine)
            })
            .await
        }
    };
    log_and_count(&state, endpoint.name(), &answer, started);
    to_response(answer)
}

async fn mutate(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    admission(state, Endpoint::Mutate, body).await
}

async fn validate(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    admission(state, Endpoint::Validate, body).await
}

async fn convert(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let started = Instant::now();
    let engine = state.engine();
    let answer = off_async_workers(body.len(), move || review::conversion(&body, &engine)).await;
    log_and_count(&state, "convert", &answer, started);
    to_response(answer)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    // The namespace cache counts only while some policy selects namespaces by label.
    let namespaces_ready = state
        .namespaces
        .get()
        .is_none_or(|c| c.synced() || !state.engine().policies.needs_namespace_labels());
    if state.ready.load(Ordering::Relaxed) && namespaces_ready {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn metrics_handler(State(state): State<Arc<AppState>>) -> Response {
    let mut resp = state.metrics.encode().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// `/bench/noop`: a fixed answer (the transport floor). The body is read (not parsed): an
/// unread body makes hyper close the HTTP/1.1 connection instead of keeping it alive.
async fn bench_noop(_body: Bytes) -> Response {
    to_response(Answer {
        status: 200,
        body: br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true}}"#.to_vec(),
        info: Default::default(),
    })
}

/// `/bench/decode`: reads the review and answers allowed with its uid (the work no webhook can skip).
async fn bench_decode(body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Req<'a> {
        #[serde(borrow)]
        uid: std::borrow::Cow<'a, str>,
    }
    #[derive(serde::Deserialize)]
    struct Review<'a> {
        #[serde(borrow)]
        request: Req<'a>,
    }
    match serde_json::from_slice::<Review<'_>>(&body) {
        Ok(r) => {
            let v = serde_json::json!({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid": r.request.uid,"allowed":true}});
            to_response(Answer {
                status: 200,
                body: serde_json::to_vec(&v).unwrap_or_default(),
                info: Default::default(),
            })
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

/// The production router (tests drive it in-process too).
pub fn router(state: Arc<AppState>, opts: &ServerOptions) -> Router {
    let panic_state = state.clone();
    let mut r = Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .route("/convert", post(convert))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler));
    if opts.bench_endpoints {
        r = r
            .route("/bench/noop", post(bench_noop))
            .route("/bench/decode", post(bench_decode));
    }
    r.layer(DefaultBodyLimit::max(opts.body_limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            opts.request_timeout,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            move |_: Box<dyn std::any::Any + Send>| {
                panic_state.metrics.panics.inc();
                tracing::error!("handler panicked; answered 500");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            },
        ))
        .with_state(state)
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    opts: ServerOptions,
}

impl Server {
    pub async fn bind(
        addr: SocketAddr,
        state: Arc<AppState>,
        opts: ServerOptions,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let cfg = tls::server_config(state.resolver.clone())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Server {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(cfg)),
            router: router(state, &opts),
            opts,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests (up to the grace
    /// period) and returns.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let Server {
            listener,
            acceptor,
            router,
            opts,
        } = self;
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let permits = Arc::new(tokio::sync::Semaphore::new(opts.max_connections));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let (tcp, peer) = tokio::select! {
                _ = &mut shutdown => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(router.clone());
            let handshake_timeout = opts.handshake_timeout;
            let idle_timeout = opts.idle_timeout;
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _permit = permit;
                let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                // The protocol comes from ALPN (RFC 9113: HTTP/2 over TLS is negotiated by ALPN),
                // not from sniffing the first bytes: while the auto builder sniffs, no header
                // read timeout runs, so a client that completed TLS and then sent nothing held
                // its connection (and a max_connections permit) forever.
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder = if h2 {
                    builder.http2_only()
                } else {
                    builder.http1_only()
                };
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(handshake_timeout)
                    .keep_alive(true);
                // No HTTP/2 keep-alive PINGs: the peer's answers would count as activity and
                // keep a silent connection open forever; the idle timeout also ends dead peers.
                builder
                    .http2()
                    .timer(TokioTimer::new())
                    .max_concurrent_streams(256);
                let io = idle::IdleTimeout::new(tls, idle_timeout);
                let conn = builder.serve_connection(TokioIo::new(io), service);
                if let Err(e) = watcher.watch(conn.into_owned()).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        tracing::info!("shutting down: finishing in-flight requests");
        if tokio::time::timeout(opts.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("grace period over; closing remaining connections");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Arc<AppState> {
        let bundle = crate::certs::localhost_bundle(std::time::Duration::from_secs(3600)).unwrap();
        let resolver = CertResolver::new(&bundle.serving.cert, &bundle.serving.key).unwrap();
        AppState::new(Engine::builtin().unwrap(), Arc::new(resolver))
    }

    /// Two writers (as `serve` has: the policy-directory watcher and the cluster preset watch)
    /// each make 2,000 read-modify-write changes to their own part of the engine at the same time;
    /// none may be lost. With a load-clone-store per writer most of them were.
    #[test]
    fn concurrent_engine_updates_are_never_lost() {
        let state = state();
        let base_gpus = state.engine().validate_cfg.max_gpus_per_node;
        let base_port = state.engine().mutate_cfg.vllm_port;
        let n = 2000;
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..n {
                    state.update_engine(|e| {
                        // A change takes time (a preset store is rebuilt, policies compiled).
                        std::thread::yield_now();
                        e.validate_cfg.max_gpus_per_node += 1
                    });
                }
            });
            s.spawn(|| {
                for _ in 0..n {
                    state.update_engine(|e| {
                        std::thread::yield_now();
                        e.mutate_cfg.vllm_port += 1
                    });
                }
            });
        });
        let engine = state.engine();
        assert_eq!(engine.validate_cfg.max_gpus_per_node, base_gpus + n);
        assert_eq!(engine.mutate_cfg.vllm_port, base_port + n as i32);
    }
}
