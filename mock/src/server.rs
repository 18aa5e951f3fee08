//! The HTTP face: the axum router and its handlers, the shared state, and
//! [`MockServer`] (spawn on 127.0.0.1, graceful shutdown).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use shadow_core::ratelimit::RateLimitHeaders;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower_http::cors::{AllowHeaders, Any, CorsLayer};

use crate::answers::{decide, request_id, Truth};
use crate::config::MockConfig;
use crate::dialect::{Dialect, Reply};
use crate::openai::models_body;
use crate::ratelimit::{Limits, Verdict};
use crate::stats::{Counters, MockStats};

/// Largest request body accepted (images travel as base64 data URLs).
const BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Largest batch input file accepted: OpenAI's 200 MB, and room for the form.
const FILE_LIMIT: usize = 210 * 1024 * 1024;
/// Largest Gemini batch input file accepted by the mock (Google's are up to
/// 2 GB; the mock holds its files in memory).
const GEMINI_FILE_LIMIT: usize = 512 * 1024 * 1024;
/// Largest Message Batches create accepted: Anthropic's 256 MB.
const MESSAGE_BATCH_LIMIT: usize = 256 * 1024 * 1024;

/// Response headers a browser script may read (CORS `Access-Control-Expose-Headers`):
/// every rate-limit and retry header the core reads, and `x-request-id`.
pub const EXPOSED_HEADERS: [&str; 22] = {
    let read = RateLimitHeaders::NAMES;
    let mut all = [""; 22];
    let mut i = 0;
    while i < read.len() {
        all[i] = read[i];
        i += 1;
    }
    all[read.len()] = "x-request-id";
    all
};

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
    /// Anthropic's message batches.
    pub(crate) messages: Mutex<crate::message_batches::MessageBatchStore>,
    /// Gemini's files and batches.
    pub(crate) gemini: Mutex<crate::gemini_batches::GeminiStore>,
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
                messages: Mutex::new(crate::message_batches::MessageBatchStore::default()),
                gemini: Mutex::new(crate::gemini_batches::GeminiStore::default()),
                started: Instant::now(),
            }),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MockStats {
        MockStats {
            batch_files_live: crate::batch::live_files(self)
                + crate::gemini_batches::live_files(self),
            ..self.inner.counters.snapshot()
        }
    }
}

/// The mock's routes with CORS: `/v1/chat/completions` (OpenAI), `/v1/messages`
/// (Anthropic), `/v1beta/models/{model}:generateContent` and
/// `/v1/models/{model}:generateContent` (Gemini),
/// `/openai/deployments/{deployment}/chat/completions` and
/// `/openai/v1/chat/completions` (Azure), `/v1/models`, `/stats`, and the batch
/// APIs: OpenAI's (`/v1/files`, `/v1/batches`), Azure OpenAI's global batch
/// (`/openai/v1/files`, `/openai/v1/batches`, and `/openai/files`,
/// `/openai/batches` with `?api-version=`), Anthropic's
/// (`/v1/messages/batches`) and Gemini's (`/upload/v1beta/files`,
/// `/v1beta/files`, `/download/v1beta/files/{id}:download`,
/// `/v1beta/models/{model}:batchGenerateContent`, `/v1beta/batches`). Has no
/// fallback,
/// so it can be `.merge`d with a static-file router.
pub fn router(state: MockState) -> Router {
    let exposed: Vec<HeaderName> = EXPOSED_HEADERS
        .iter()
        .map(|h| HeaderName::from_static(h))
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        // `*` does not cover `authorization` in browsers: mirror the request.
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(exposed)
        .max_age(Duration::from_secs(600));
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .route("/v1beta/models/{model_action}", post(generate_content))
        .route("/v1/models/{model_action}", post(generate_content))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(azure_deployment),
        )
        .route("/openai/v1/chat/completions", post(azure_v1))
        .route("/v1/models", get(models))
        .route("/stats", get(stats))
        .route(
            "/upload/v1beta/files",
            post(crate::gemini_batches::upload).layer(DefaultBodyLimit::max(GEMINI_FILE_LIMIT)),
        )
        .route("/v1beta/files", get(crate::gemini_batches::list_files))
        .route(
            "/v1beta/files/{id}",
            axum::routing::delete(crate::gemini_batches::delete_file),
        )
        .route(
            "/download/v1beta/files/{id_action}",
            get(crate::gemini_batches::download),
        )
        .route("/v1beta/batches", get(crate::gemini_batches::list))
        .route(
            "/v1beta/batches/{id}",
            get(crate::gemini_batches::get).post(crate::gemini_batches::cancel),
        )
        .merge(files_api::<crate::batch::OpenAiBatches>("/v1"))
        .merge(files_api::<crate::batch::AzureBatches>("/openai/v1"))
        .merge(
            files_api::<crate::batch::AzureBatches>("/openai")
                .route_layer(axum::middleware::from_fn(azure_api_version)),
        )
        .route(
            "/v1/messages/batches",
            post(crate::message_batches::create)
                .get(crate::message_batches::list)
                .layer(DefaultBodyLimit::max(MESSAGE_BATCH_LIMIT)),
        )
        .route(
            "/v1/messages/batches/{id}",
            get(crate::batch_api::retrieve::<crate::message_batches::MessageBatches>),
        )
        .route(
            "/v1/messages/batches/{id}/cancel",
            post(crate::batch_api::cancel::<crate::message_batches::MessageBatches>),
        )
        .route(
            "/v1/messages/batches/{id}/results",
            get(crate::message_batches::results),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(cors)
        .with_state(state)
}

/// The routes of a batch API of uploaded files (OpenAI's, Azure's) under
/// `prefix`: `/files`, `/files/{id}`, `/files/{id}/content`, `/batches`,
/// `/batches/{id}`, `/batches/{id}/cancel`.
fn files_api<A: crate::batch::FilesApi>(prefix: &str) -> Router<MockState> {
    use crate::batch;
    Router::new()
        .route(
            &format!("{prefix}/files"),
            post(batch::upload::<A>)
                .get(batch::list_files::<A>)
                .layer(DefaultBodyLimit::max(FILE_LIMIT)),
        )
        .route(
            &format!("{prefix}/files/{{id}}"),
            get(batch::file_info::<A>).delete(batch::delete_file::<A>),
        )
        .route(
            &format!("{prefix}/files/{{id}}/content"),
            get(batch::file_content::<A>),
        )
        .route(
            &format!("{prefix}/batches"),
            post(batch::create::<A>).get(batch::list::<A>),
        )
        .route(
            &format!("{prefix}/batches/{{id}}"),
            get(crate::batch_api::retrieve::<A>),
        )
        .route(
            &format!("{prefix}/batches/{{id}}/cancel"),
            post(crate::batch_api::cancel::<A>),
        )
}

/// Azure's versioned paths answer 404 without an `api-version`.
async fn azure_api_version(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if has_api_version(request.uri()) {
        return next.run(request).await;
    }
    let body = serde_json::json!({ "error": { "code": "404", "message": "Resource not found" } });
    respond(StatusCode::NOT_FOUND, HeaderMap::new(), &body)
}

fn has_api_version(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&').any(|p| {
            p.strip_prefix("api-version=")
                .is_some_and(|v| !v.is_empty())
        })
    })
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

fn reply(reply: Reply, headers: HeaderMap) -> Response {
    respond(reply.0, headers, &reply.1)
}

/// What Anthropic's API answers (401) a request from a browser page without
/// `anthropic-dangerous-direct-browser-access: true`.
pub const ANTHROPIC_CORS_REFUSAL: &str =
    "CORS requests must set 'anthropic-dangerous-direct-browser-access' header";

/// A request that names no `origin` (not from a browser page), or that carries
/// `anthropic-dangerous-direct-browser-access: true`.
fn browser_opted_in(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::ORIGIN)
        || headers
            .get("anthropic-dangerous-direct-browser-access")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn attempt_of(headers: &HeaderMap) -> u64 {
    headers
        .get("x-stainless-retry-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `POST /v1/chat/completions`: OpenAI's dialect (or a local server's, as
/// [`MockConfig::dialect`] says).
async fn chat_completions(
    State(state): State<MockState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&state, Dialect::OpenAi, &headers, &body, None).await
}

/// `POST /v1/messages`: Anthropic's dialect.
async fn messages(State(state): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&state, Dialect::Anthropic, &headers, &body, None).await
}

/// `POST /v1beta/models/{model}:generateContent`: Gemini's dialect (and
/// `:batchGenerateContent`, Batch Mode's create). A key in the URL (`?key=`)
/// is refused: shadow-batch sends it in `x-goog-api-key` only.
async fn generate_content(
    State(state): State<MockState>,
    Path(model_action): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(model) = model_action.strip_suffix(":batchGenerateContent") {
        let call =
            match crate::batch_api::BatchCall::<crate::gemini_batches::GeminiBatches>::checked(
                &state, &headers,
            ) {
                Ok(call) => call,
                Err(refusal) => return *refusal,
            };
        return crate::gemini_batches::create(call, model.to_string(), body).await;
    }
    let Some(model) = model_action.strip_suffix(":generateContent") else {
        let body = crate::gemini::error_body(
            404,
            "NOT_FOUND",
            &format!("models/{model_action} is not a generateContent call of the mock"),
            Value::Null,
        );
        return counted(
            &state,
            respond(StatusCode::NOT_FOUND, HeaderMap::new(), &body),
        );
    };
    let key_in_url = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("key=")));
    if key_in_url {
        let reply = Dialect::Gemini.bad_request(
            "The shadow-batch mock refuses API keys in the URL (where logs keep them): \
             send the x-goog-api-key header.",
        );
        Counters::bump(&state.inner.counters.bad_requests);
        return counted(&state, self::reply(reply, HeaderMap::new()));
    }
    serve(&state, Dialect::Gemini, &headers, &body, Some(model)).await
}

/// `POST /openai/deployments/{deployment}/chat/completions?api-version=...`: Azure's
/// deployment path; without `api-version`, 404 as Azure answers.
async fn azure_deployment(
    State(state): State<MockState>,
    Path(deployment): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !has_api_version(&uri) {
        let body =
            serde_json::json!({ "error": { "code": "404", "message": "Resource not found" } });
        return counted(
            &state,
            respond(StatusCode::NOT_FOUND, HeaderMap::new(), &body),
        );
    }
    serve(&state, Dialect::Azure, &headers, &body, Some(&deployment)).await
}

/// `POST /openai/v1/chat/completions`: Azure's version-less v1 path.
async fn azure_v1(State(state): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&state, Dialect::Azure, &headers, &body, None).await
}

/// Counts a request answered before it reached [`handle`].
fn counted(state: &MockState, resp: Response) -> Response {
    let c = &state.inner.counters;
    Counters::bump(&c.requests);
    c.status(resp.status());
    resp
}

async fn serve(
    state: &MockState,
    dialect: Dialect,
    headers: &HeaderMap,
    body: &[u8],
    path_model: Option<&str>,
) -> Response {
    let inner = &*state.inner;
    let c = &inner.counters;
    Counters::bump(&c.requests);
    let resp = handle(inner, dialect, headers, body, path_model).await;
    c.status(resp.status());
    tracing::debug!(status = resp.status().as_u16(), ?dialect, "mock answered");
    resp
}

/// Milliseconds since the Unix epoch, for the RFC 3339 reset times of Anthropic's
/// headers.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One model request, in the order of checks of the crate doc.
async fn handle(
    inner: &Inner,
    dialect: Dialect,
    headers: &HeaderMap,
    body: &[u8],
    path_model: Option<&str>,
) -> Response {
    let cfg = &inner.cfg;
    let c = &inner.counters;
    let mut out = HeaderMap::new();

    // 1. Key; before it, as Anthropic's API does, a call from a browser page (it
    // names its origin) that did not opt in to direct browser access.
    if dialect == Dialect::Anthropic && !browser_opted_in(headers) {
        Counters::bump(&c.unauthorized);
        set(&mut out, "x-request-id", anon_id(inner));
        return reply(
            (
                StatusCode::UNAUTHORIZED,
                crate::anthropic::error_body("authentication_error", ANTHROPIC_CORS_REFUSAL),
            ),
            out,
        );
    }
    if let Some(key) = &cfg.require_key {
        if !dialect.key_matches(headers, key) {
            Counters::bump(&c.unauthorized);
            set(&mut out, "x-request-id", anon_id(inner));
            return reply(dialect.unauthorized(), out);
        }
    }

    // 2. Quota already used up.
    if let Some(quota) = cfg.quota {
        if c.ok.load(Ordering::SeqCst) >= quota {
            return quota_exceeded(inner, dialect, out);
        }
    }

    // 3. Headers the dialect requires, then the body; a text-only request
    // (an estimate reading the limits) is answered apart.
    if dialect != Dialect::Anthropic || headers.contains_key("anthropic-version") {
        if let Some(request) = crate::text_only::parse(dialect, body) {
            return text_only(inner, dialect, &request, out);
        }
    }
    let attempt = attempt_of(headers);
    let parsed = if dialect == Dialect::Anthropic && !headers.contains_key("anthropic-version") {
        Err("anthropic-version: header is required".to_owned())
    } else {
        dialect.parse(cfg, body, path_model)
    };
    let req = match parsed {
        Ok(req) => req,
        Err(message) => {
            Counters::bump(&c.bad_requests);
            set(&mut out, "x-request-id", anon_id(inner));
            return reply(dialect.bad_request(&message), out);
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
    if let Some(refusal) = admit(inner, dialect, charge, &req.model, &mut out) {
        return refusal;
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
        return reply(dialect.server_error(), out);
    }
    if let Some(quota) = cfg.quota {
        let reserved =
            c.ok.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < quota).then_some(n + 1)
            })
            .is_ok();
        if !reserved {
            return quota_exceeded(inner, dialect, out);
        }
    } else {
        Counters::bump(&c.ok);
    }
    if d.refused {
        Counters::bump(&c.refused);
    } else if d.malformed {
        Counters::bump(&c.malformed);
    }
    reply(dialect.answer(cfg, &req, &d, body), out)
}

/// Charges a request of `charge` tokens to the limits, on arrival, and writes
/// the dialect's limit headers into `out`; the refusal to answer when a limit
/// says no (the request is then not charged).
fn admit(
    inner: &Inner,
    dialect: Dialect,
    charge: u64,
    model: &str,
    out: &mut HeaderMap,
) -> Option<Response> {
    let c = &inner.counters;
    let adm = inner.limits.as_ref().map(|limits| {
        limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(Instant::now(), charge)
    });
    if !inner.cfg.no_ratelimit_headers {
        for (name, value) in dialect.limit_headers(adm.as_ref(), wall_clock_ms()) {
            set(out, name, value);
        }
    }
    let adm = adm?;
    match adm.verdict {
        Verdict::Admitted => None,
        Verdict::Refused { by, .. } => {
            Counters::bump(&c.rate_limited);
            if by == crate::ratelimit::Limit::Tokens {
                Counters::bump(&c.token_limited);
            }
            for (name, value) in dialect.retry_headers(&adm) {
                set(out, name, value);
            }
            Some(reply(dialect.rate_limited(&adm, model), out.clone()))
        }
        Verdict::TooLarge => {
            // OpenAI answers this with a 429 that no wait cures; the mock says
            // 400, and that a retry cannot help, so that clients do not loop.
            Counters::bump(&c.too_large);
            set(out, "x-should-retry", "false");
            let message = adm.message(model).unwrap_or_default();
            Some(reply(dialect.too_large(&message), out.clone()))
        }
    }
}

/// A text-only request ([`crate::text_only`]): limits, then a one-word answer.
fn text_only(
    inner: &Inner,
    dialect: Dialect,
    request: &crate::text_only::TextOnly,
    mut out: HeaderMap,
) -> Response {
    set(&mut out, "x-request-id", anon_id(inner));
    if let Some(refusal) = admit(inner, dialect, request.charge, &request.model, &mut out) {
        return refusal;
    }
    Counters::add(&inner.counters.tokens_admitted, request.charge);
    Counters::bump(&inner.counters.ok);
    reply(crate::text_only::answer(dialect, request), out)
}

fn anon_id(inner: &Inner) -> String {
    let n = inner.seq.fetch_add(1, Ordering::Relaxed);
    format!("req_anon_{n:08}")
}

fn quota_exceeded(inner: &Inner, dialect: Dialect, mut out: HeaderMap) -> Response {
    Counters::bump(&inner.counters.quota_exceeded);
    if !out.contains_key("x-request-id") {
        set(&mut out, "x-request-id", anon_id(inner));
    }
    reply(dialect.quota_exceeded(), out)
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

#[cfg(test)]
mod dialect_tests;
