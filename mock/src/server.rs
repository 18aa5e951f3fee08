//! The HTTP face: the axum router and its handlers, the shared state, and
//! [`MockServer`] (spawn on 127.0.0.1, graceful shutdown).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower_http::cors::{AllowHeaders, Any, CorsLayer};

use crate::answers::{decide, request_id, Truth};
use crate::config::MockConfig;
use crate::openai::{completion_body, error_body, models_body, parse_request};
use crate::ratelimit::{ratelimit_headers, Limit, Limits, Verdict};
use crate::stats::{Counters, MockStats};

/// Largest request body accepted (images travel as base64 data URLs).
const BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Largest batch input file accepted: OpenAI's 200 MB, and room for the form.
const FILE_LIMIT: usize = 210 * 1024 * 1024;

/// Response headers a browser script may read (CORS `Access-Control-Expose-Headers`).
pub const EXPOSED_HEADERS: [&str; 10] = [
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "x-request-id",
    "x-should-retry",
];

pub(crate) struct Inner {
    pub(crate) cfg: MockConfig,
    pub(crate) truth: Option<Truth>,
    /// The requests- and tokens-per-minute buckets (`None`: no limit).
    limits: Option<Mutex<Limits>>,
    pub(crate) counters: Counters,
    /// Sequence for request ids of requests whose content is unknown.
    seq: AtomicU64,
    /// The batch API's files and batches.
    pub(crate) batch: Mutex<crate::batch::BatchStore>,
    /// When the mock started (its fake clock's origin).
    pub(crate) started: Instant,
}

/// The shared state of a mock endpoint; cheap to clone. Build one and pass it to
/// [`router`] to serve the mock from another server.
#[derive(Clone)]
pub struct MockState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for MockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The required key stays out of debug output.
        f.debug_struct("MockState")
            .field("port", &self.inner.cfg.port)
            .field("rpm", &self.inner.cfg.rpm)
            .field("tpm", &self.inner.cfg.tpm)
            .field("seed", &self.inner.cfg.seed)
            .field("truth", &self.inner.truth.as_ref().map(Truth::len))
            .finish_non_exhaustive()
    }
}

impl MockState {
    /// A fresh state (full rate-limit buckets, zero counters).
    pub fn new(cfg: MockConfig, truth: Option<Truth>) -> MockState {
        let limits = Limits::new(cfg.rpm, cfg.tpm, Instant::now()).map(Mutex::new);
        MockState {
            inner: Arc::new(Inner {
                cfg,
                truth,
                limits,
                counters: Counters::default(),
                seq: AtomicU64::new(0),
                batch: Mutex::new(crate::batch::BatchStore::default()),
                started: Instant::now(),
            }),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MockStats {
        self.inner.counters.snapshot()
    }
}

/// The mock's routes (`/v1/chat/completions`, `/v1/models`, `/stats`) with CORS.
/// Has no fallback, so it can be `.merge`d with a static-file router.
pub fn router(state: MockState) -> Router {
    let exposed: Vec<HeaderName> = EXPOSED_HEADERS
        .iter()
        .map(|h| HeaderName::from_static(h))
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        // `*` does not cover `authorization` in browsers: mirror the request.
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(exposed)
        .max_age(Duration::from_secs(600));
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/stats", get(stats))
        .route(
            "/v1/files",
            post(crate::batch::upload).layer(DefaultBodyLimit::max(FILE_LIMIT)),
        )
        .route("/v1/files/{id}", get(crate::batch::file_info))
        .route("/v1/files/{id}/content", get(crate::batch::file_content))
        .route(
            "/v1/batches",
            post(crate::batch::create).get(crate::batch::list),
        )
        .route("/v1/batches/{id}", get(crate::batch::retrieve))
        .route("/v1/batches/{id}/cancel", post(crate::batch::cancel))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(cors)
        .with_state(state)
}

async fn models() -> Json<Value> {
    Json(models_body())
}

async fn stats(State(state): State<MockState>) -> Json<MockStats> {
    Json(state.stats())
}

fn set(headers: &mut HeaderMap, name: &'static str, value: impl ToString) {
    // Every value written here is ASCII built by this crate.
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

fn respond(status: StatusCode, mut headers: HeaderMap, body: &Value) -> Response {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (status, headers, body.to_string()).into_response()
}

pub(crate) fn bearer_matches(headers: &HeaderMap, key: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| given.trim() == key)
}

fn attempt_of(headers: &HeaderMap) -> u64 {
    headers
        .get("x-stainless-retry-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn chat_completions(
    State(state): State<MockState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = &*state.inner;
    let c = &inner.counters;
    Counters::bump(&c.requests);
    let resp = handle(inner, &headers, &body).await;
    c.status(resp.status());
    tracing::debug!(status = resp.status().as_u16(), "mock answered");
    resp
}

/// One chat completion, in the order of checks of the crate doc.
async fn handle(inner: &Inner, headers: &HeaderMap, body: &[u8]) -> Response {
    let cfg = &inner.cfg;
    let c = &inner.counters;
    let mut out = HeaderMap::new();

    // 1. Key.
    if let Some(key) = &cfg.require_key {
        if !bearer_matches(headers, key) {
            Counters::bump(&c.unauthorized);
            set(&mut out, "x-request-id", anon_id(inner));
            let body = error_body(
                "Incorrect API key provided. You can find your API key at \
                 https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                Some("invalid_api_key"),
            );
            return respond(StatusCode::UNAUTHORIZED, out, &body);
        }
    }

    // 2. Quota already used up.
    if let Some(quota) = cfg.quota {
        if c.ok.load(Ordering::SeqCst) >= quota {
            return quota_exceeded(inner, out);
        }
    }

    // 3. Body.
    let attempt = attempt_of(headers);
    let req = match parse_request(body) {
        Ok(req) => req,
        Err(message) => {
            Counters::bump(&c.bad_requests);
            set(&mut out, "x-request-id", anon_id(inner));
            let body = error_body(&message, "invalid_request_error", None);
            return respond(StatusCode::BAD_REQUEST, out, &body);
        }
    };
    let d = decide(cfg, inner.truth.as_ref(), &req, attempt);
    set(
        &mut out,
        "x-request-id",
        format!("req_{:016x}", request_id(cfg.seed, d.content, attempt)),
    );

    // 4. Rate limits, on arrival: the request is charged 1 request and its
    // tokens, or refused without being charged.
    let charge = req.token_charge(cfg.image_tokens);
    let adm = inner.limits.as_ref().map(|limits| {
        limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(Instant::now(), charge)
    });
    if !cfg.no_ratelimit_headers {
        for (name, value) in ratelimit_headers(adm.as_ref()) {
            set(&mut out, name, value);
        }
    }
    if let Some(adm) = adm {
        let message = adm.message(&req.model).unwrap_or_default();
        match adm.verdict {
            Verdict::Admitted => {}
            Verdict::Refused { by, .. } => {
                Counters::bump(&c.rate_limited);
                let kind = match by {
                    Limit::Requests => "requests",
                    Limit::Tokens => {
                        Counters::bump(&c.token_limited);
                        "tokens"
                    }
                };
                for (name, value) in adm.retry_headers() {
                    set(&mut out, name, value);
                }
                let body = error_body(&message, kind, Some("rate_limit_exceeded"));
                return respond(StatusCode::TOO_MANY_REQUESTS, out, &body);
            }
            Verdict::TooLarge => {
                // OpenAI answers this with a 429 that no wait cures; the mock says
                // 400, and that a retry cannot help, so that clients do not loop.
                Counters::bump(&c.too_large);
                set(&mut out, "x-should-retry", "false");
                let body = error_body(&message, "tokens", Some("rate_limit_exceeded"));
                return respond(StatusCode::BAD_REQUEST, out, &body);
            }
        }
    }
    Counters::add(&c.tokens_admitted, charge);

    // 5. Latency.
    let mut delay = cfg.latency_ms;
    if d.slow {
        delay = delay.saturating_add(cfg.slow_ms);
    }
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }

    // 6. Injected 5xx, else an answer.
    if d.server_error {
        Counters::bump(&c.server_errors);
        let body = error_body(
            "The server had an error while processing your request.",
            "server_error",
            None,
        );
        return respond(StatusCode::INTERNAL_SERVER_ERROR, out, &body);
    }
    if let Some(quota) = cfg.quota {
        let reserved =
            c.ok.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < quota).then_some(n + 1)
            })
            .is_ok();
        if !reserved {
            return quota_exceeded(inner, out);
        }
    } else {
        Counters::bump(&c.ok);
    }
    if d.malformed {
        Counters::bump(&c.malformed);
    }
    respond(StatusCode::OK, out, &completion_body(cfg, &req, &d))
}

fn anon_id(inner: &Inner) -> String {
    let n = inner.seq.fetch_add(1, Ordering::Relaxed);
    format!("req_anon_{n:08}")
}

fn quota_exceeded(inner: &Inner, mut out: HeaderMap) -> Response {
    Counters::bump(&inner.counters.quota_exceeded);
    if !out.contains_key("x-request-id") {
        set(&mut out, "x-request-id", anon_id(inner));
    }
    let body = error_body(
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        Some("insufficient_quota"),
    );
    respond(StatusCode::TOO_MANY_REQUESTS, out, &body)
}

/// A running mock endpoint on 127.0.0.1. Dropping it stops the server (without
/// waiting); [`MockServer::shutdown`] stops it gracefully.
#[derive(Debug)]
pub struct MockServer {
    /// The address the server listens on.
    pub addr: SocketAddr,
    state: MockState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Binds 127.0.0.1:`cfg.port` (0 = any free port) and serves the mock in a
    /// tokio task. Must be called inside a tokio runtime.
    pub async fn spawn(cfg: MockConfig, truth: Option<Truth>) -> std::io::Result<MockServer> {
        MockServer::spawn_with_files(cfg, truth, None).await
    }

    /// As [`MockServer::spawn`], also serving the static files of `files` (the
    /// browser page) at `/`.
    pub async fn spawn_with_files(
        cfg: MockConfig,
        truth: Option<Truth>,
        files: Option<PathBuf>,
    ) -> std::io::Result<MockServer> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, cfg.port)).await?;
        let addr = listener.local_addr()?;
        let state = MockState::new(cfg, truth);
        let mut app = router(state.clone());
        if let Some(dir) = files {
            app = app.fallback_service(tower_http::services::ServeDir::new(dir));
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!("mock endpoint stopped: {e}");
            }
        });
        tracing::info!("mock endpoint listening on http://{addr}/v1");
        Ok(MockServer {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The OpenAI-style base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MockStats {
        self.state.stats()
    }

    /// Stops accepting connections, lets requests in flight finish (waiting at
    /// most 10 s), then returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(10), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests;
