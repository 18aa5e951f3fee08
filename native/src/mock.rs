//! The built-in mock endpoint: an OpenAI-compatible chat-completions server for
//! tests, benchmarks, demos and the browser page.
//!
//! # What it answers
//!
//! * `POST /v1/chat/completions`: one image per request, structured output whose
//!   JSON schema enumerates the labels
//!   (`response_format.json_schema.schema.properties.label.enum`). The answer is a
//!   real `chat.completion` whose message content is `{"label":"<label>"}`.
//! * `GET /v1/models`: one model, [`MOCK_MODEL`].
//! * `GET /stats`: counters ([`MockStats`]) as JSON.
//!
//! CORS is open (any origin, `GET`/`POST`/`OPTIONS`, the request's headers mirrored
//! on preflight) and the rate-limit and retry headers are exposed to scripts, so
//! the browser page can call it from another origin.
//!
//! # Determinism
//!
//! Every answer and every injected fault is a pure function of
//! `(seed, request content, attempt)` where the request content is the image URL
//! string exactly as sent (data URL or http URL) plus the label enum, in order,
//! and the attempt is the `x-stainless-retry-count` header (default 0). Arrival
//! order and time play no part, so two clients running the same CSV against the
//! mock end with the same results whatever their timing. In detail:
//!
//! * injected 5xx (`--error-rate`) and malformed answers (`--malformed-rate`) roll
//!   per (content, attempt): a retry may succeed;
//! * correctness (`--accuracy`) and the wrong label chosen roll per content only: a
//!   retried item gets the same answer;
//! * stragglers (`--slow-every`) are chosen per content.
//!
//! The "correct" answer is the true label from [`Truth`] when the image is known
//! there (and the label is in the request's enum). Without a truth entry the true
//! label is unknown to the mock, so it picks a label from the enum by hash and
//! `--accuracy` only decides whether it answers that pick or another label: the
//! agreement rate a client measures is then meaningless.
//!
//! Only two things depend on time: the requests-per-minute token bucket (its 429s
//! and `x-ratelimit-*` values) and the order in which `--quota` is used up.
//! Retries absorb the 429s.
//!
//! # Order of checks for a chat completion
//!
//! 1. `--require-key`: wrong or missing bearer key -> 401 `invalid_api_key`.
//! 2. `--quota` already used up -> 429 `insufficient_quota`.
//! 3. Body: bad JSON, missing label enum or missing image -> 400.
//! 4. Rate limit (on arrival, before any sleep) -> 429 `rate_limit_exceeded`.
//! 5. Latency sleep (`--latency-ms`, plus `--slow-ms` for stragglers).
//! 6. Injected 500 (`--error-rate`), else a 200 answer (malformed at
//!    `--malformed-rate`). A 200 answer (malformed or not) counts toward `--quota`;
//!    a request that would exceed it gets the `insufficient_quota` 429 instead.
//!
//! The API key given with `--require-key` is never logged, echoed or stored in
//! [`MockStats`].

use std::collections::{BTreeMap, HashMap};
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
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower_http::cors::{AllowHeaders, Any, CorsLayer};

/// The one model the mock lists on `GET /v1/models` (and answers as when the
/// request names no model).
pub const MOCK_MODEL: &str = "shadow-mock-1";

/// Largest request body accepted (images travel as base64 data URLs).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Fixed token limit reported in the `x-ratelimit-*-tokens` headers.
const TOKEN_LIMIT: u64 = 10_000_000;

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

/// Settings of the mock endpoint (`shadow-batch mock-server --help`).
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct MockConfig {
    /// Port to listen on, on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,

    /// Requests-per-minute limit, enforced with a token bucket holding one second
    /// of burst; over it the mock answers 429 with retry-after headers. Unset or 0
    /// = unlimited.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,

    /// Latency added to every answered request (200 or 500), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// Share of requests answered with an injected 500 server error (0..=1).
    /// Rolled per (image, labels, attempt): a retry may succeed.
    #[arg(long, value_name = "SHARE", default_value_t = 0.0, value_parser = parse_share)]
    pub error_rate: f64,

    /// How often the answer is the true label (0..=1). Rolled per (image, labels):
    /// a retry gets the same answer. Meaningless without --truth.
    #[arg(long, value_name = "SHARE", default_value_t = 0.9, value_parser = parse_share)]
    pub accuracy: f64,

    /// Seed of every answer and injected fault.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Labels CSV giving the true labels of the images (the mock answers them at
    /// --accuracy).
    #[arg(long, value_name = "CSV")]
    pub truth: Option<PathBuf>,

    /// On 429 send only retry-after / retry-after-ms, and never any
    /// x-ratelimit-* header.
    #[arg(long)]
    pub no_ratelimit_headers: bool,

    /// Require this bearer key; other requests get 401 invalid_api_key. The key is
    /// never logged or echoed.
    #[arg(long, value_name = "KEY")]
    pub require_key: Option<String>,

    /// After this many 200 answers, every request gets 429 insufficient_quota.
    #[arg(long, value_name = "N")]
    pub quota: Option<u64>,

    /// Share of 200 answers whose content is not valid JSON (0..=1). Rolled per
    /// (image, labels, attempt).
    #[arg(long, value_name = "SHARE", default_value_t = 0.0, value_parser = parse_share)]
    pub malformed_rate: f64,

    /// Extra latency of straggler requests, in milliseconds (see --slow-every).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub slow_ms: u64,

    /// Make one image in N (chosen by its seeded content hash) a straggler that
    /// waits --slow-ms more; 0 = off.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub slow_every: u64,
}

impl Default for MockConfig {
    /// The same values as the command-line defaults.
    fn default() -> Self {
        MockConfig {
            port: 8787,
            rpm: None,
            latency_ms: 0,
            error_rate: 0.0,
            accuracy: 0.9,
            seed: 42,
            truth: None,
            no_ratelimit_headers: false,
            require_key: None,
            quota: None,
            malformed_rate: 0.0,
            slow_ms: 0,
            slow_every: 0,
        }
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("`{s}` is not between 0 and 1"))
    }
}

// ---------------------------------------------------------------------------
// Stable hashing
// ---------------------------------------------------------------------------

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Streaming FNV-1a, 64 bits.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(FNV_OFFSET)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
}

/// The splitmix64 finalizer (a bijection that spreads every input bit).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable 64-bit hash: FNV-1a then splitmix64. The same on every platform and
/// every run (unlike std's `RandomState`).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = Fnv::new();
    h.write(bytes);
    splitmix64(h.0)
}

/// The key of an image in [`Truth`]: the stable hash of the image URL string
/// exactly as sent in the request (data URL or http URL).
pub fn url_key(url: &str) -> u64 {
    stable_hash(url.as_bytes())
}

/// Hash of the request content: the image URL then every label, in order. 0xFF
/// never occurs in UTF-8, so it separates the fields unambiguously.
fn content_hash(url: &str, labels: &[String]) -> u64 {
    let mut h = Fnv::new();
    h.write(url.as_bytes());
    for label in labels {
        h.write(&[0xFF]);
        h.write(label.as_bytes());
    }
    splitmix64(h.0)
}

const SALT_ERROR: u64 = 0x4552_524f_5221;
const SALT_MALFORMED: u64 = 0x4d41_4c46_4f52;
const SALT_CORRECT: u64 = 0x434f_5252_4543;
const SALT_WRONG: u64 = 0x5752_4f4e_4721;
const SALT_PICK: u64 = 0x5049_434b_2121;
const SALT_SLOW: u64 = 0x534c_4f57_2121;
const SALT_ID: u64 = 0x4944_2121_2121;
const SALT_CREATED: u64 = 0x4352_4541_5445;
/// The "attempt" used by rolls that must not depend on the attempt.
const PER_CONTENT: u64 = u64::MAX;

/// A 64-bit value derived from (seed, content, salt, attempt).
fn mix(seed: u64, content: u64, salt: u64, attempt: u64) -> u64 {
    let mut h = splitmix64(seed);
    h = splitmix64(h ^ content);
    h = splitmix64(h ^ salt);
    splitmix64(h ^ attempt)
}

/// A uniform number in [0, 1) derived from (seed, content, salt, attempt).
fn roll(seed: u64, content: u64, salt: u64, attempt: u64) -> f64 {
    (mix(seed, content, salt, attempt) >> 11) as f64 / (1u64 << 53) as f64
}

/// `floor(u * n)` clamped to `n - 1` (for `n > 0`).
fn pick(u: f64, n: usize) -> usize {
    ((u * n as f64) as usize).min(n.saturating_sub(1))
}

// ---------------------------------------------------------------------------
// Truth
// ---------------------------------------------------------------------------

/// The true labels the mock knows: a map from [`url_key`] of the image URL string
/// exactly as sent in the request to the label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Truth {
    labels: HashMap<u64, String>,
}

impl Truth {
    /// Builds the map from (image URL as sent, true label) pairs. A later pair for
    /// the same URL replaces an earlier one.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Truth {
        let labels = pairs
            .into_iter()
            .map(|(url, label)| (url_key(&url), label))
            .collect();
        Truth { labels }
    }

    /// Adds or replaces the true label of one image URL.
    pub fn insert(&mut self, url: &str, label: String) {
        self.labels.insert(url_key(url), label);
    }

    /// The true label of an image URL, if known.
    pub fn get(&self, url: &str) -> Option<&str> {
        self.labels.get(&url_key(url)).map(String::as_str)
    }

    /// Number of images known.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when no image is known.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------

/// A snapshot of the mock's counters (`GET /stats`). All of them count chat
/// completion requests only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MockStats {
    /// Chat completion requests received.
    pub requests: u64,
    /// 200 answers (malformed ones included).
    pub ok: u64,
    /// 429 `rate_limit_exceeded` answers.
    pub rate_limited: u64,
    /// Injected 500 answers.
    pub server_errors: u64,
    /// 401 answers (wrong or missing key).
    pub unauthorized: u64,
    /// 200 answers whose content is deliberately not JSON.
    pub malformed: u64,
    /// 429 `insufficient_quota` answers.
    pub quota_exceeded: u64,
    /// 400 answers (bad body).
    pub bad_requests: u64,
    /// Answers by HTTP status (only statuses that occurred).
    pub by_status: BTreeMap<u16, u64>,
}

const STATUSES: [u16; 5] = [200, 400, 401, 429, 500];

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    ok: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    unauthorized: AtomicU64,
    malformed: AtomicU64,
    quota_exceeded: AtomicU64,
    bad_requests: AtomicU64,
    by_status: [AtomicU64; STATUSES.len()],
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn status(&self, status: StatusCode) {
        if let Some(i) = STATUSES.iter().position(|&s| s == status.as_u16()) {
            Self::bump(&self.by_status[i]);
        }
    }

    fn snapshot(&self) -> MockStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MockStats {
            requests: load(&self.requests),
            ok: load(&self.ok),
            rate_limited: load(&self.rate_limited),
            server_errors: load(&self.server_errors),
            unauthorized: load(&self.unauthorized),
            malformed: load(&self.malformed),
            quota_exceeded: load(&self.quota_exceeded),
            bad_requests: load(&self.bad_requests),
            by_status: STATUSES
                .iter()
                .zip(&self.by_status)
                .map(|(&s, c)| (s, load(c)))
                .filter(|&(_, n)| n > 0)
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------
// Rate limit
// ---------------------------------------------------------------------------

/// Token bucket: capacity max(1, rpm/60), refilled at rpm/60 tokens per second.
#[derive(Debug)]
struct Bucket {
    rpm: u32,
    per_sec: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

/// What the bucket said about one arrival.
#[derive(Clone, Copy, Debug)]
struct RateInfo {
    rpm: u32,
    allowed: bool,
    /// floor(tokens) after this request.
    remaining: u64,
    /// Milliseconds until the bucket is full again.
    reset_ms: u64,
    /// Milliseconds until one token is available (only when refused).
    wait_ms: u64,
}

impl Bucket {
    fn new(rpm: u32, now: Instant) -> Self {
        let per_sec = f64::from(rpm) / 60.0;
        let capacity = per_sec.max(1.0);
        Bucket {
            rpm,
            per_sec,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    fn ms_until(&self, tokens: f64) -> u64 {
        let missing = (tokens - self.tokens).max(0.0);
        // Nanosecond-sized float noise must not round up to a whole millisecond.
        ((missing / self.per_sec * 1000.0) - 1e-6).ceil().max(0.0) as u64
    }

    fn take(&mut self, now: Instant) -> RateInfo {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.per_sec).min(self.capacity);
        let allowed = self.tokens + 1e-9 >= 1.0;
        let mut wait_ms = 0;
        if allowed {
            self.tokens = (self.tokens - 1.0).max(0.0);
        } else {
            wait_ms = self.ms_until(1.0).max(1);
        }
        RateInfo {
            rpm: self.rpm,
            allowed,
            remaining: (self.tokens + 1e-9).floor() as u64,
            reset_ms: self.ms_until(self.capacity),
            wait_ms,
        }
    }
}

/// A duration in Go's `time.Duration.String` style as OpenAI sends it in
/// `x-ratelimit-reset-*`: `0s`, `20ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`.
fn go_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let h = ms / 3_600_000;
    let m = (ms / 60_000) % 60;
    let rest = ms % 60_000;
    let (secs, frac) = (rest / 1000, rest % 1000);
    let s = if frac == 0 {
        secs.to_string()
    } else {
        let f = format!("{frac:03}");
        format!("{secs}.{}", f.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

// ---------------------------------------------------------------------------
// Decisions (pure)
// ---------------------------------------------------------------------------

/// The parts of a chat completion request the mock reads.
#[derive(Clone, Debug)]
struct Parsed {
    model: String,
    labels: Vec<String>,
    image: String,
}

/// Everything about one answer that does not depend on time.
#[derive(Clone, Debug, PartialEq)]
struct Decision {
    content: u64,
    server_error: bool,
    malformed: bool,
    label: String,
    slow: bool,
}

fn parse_request(body: &[u8]) -> Result<Parsed, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("We could not parse the JSON body of your request: {e}"))?;
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(MOCK_MODEL)
        .to_owned();
    let labels: Vec<String> = v
        .pointer("/response_format/json_schema/schema/properties/label/enum")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            "The mock needs response_format.json_schema.schema.properties.label.enum \
             (the list of labels)."
                .to_owned()
        })?
        .iter()
        .map(|l| l.as_str().map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| "The label enum must hold only strings.".to_owned())?;
    if labels.is_empty() {
        return Err("The label enum is empty.".to_owned());
    }
    let image = v
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|part| part.get("type").and_then(Value::as_str) == Some("image_url"))
        .find_map(|part| {
            let iu = part.get("image_url")?;
            iu.get("url")
                .and_then(Value::as_str)
                .or_else(|| iu.as_str())
        })
        .ok_or_else(|| "The request holds no image_url content part.".to_owned())?
        .to_owned();
    Ok(Parsed {
        model,
        labels,
        image,
    })
}

/// The answer and the faults for one request: a pure function of
/// (config, truth, request content, attempt).
fn decide(cfg: &MockConfig, truth: Option<&Truth>, req: &Parsed, attempt: u64) -> Decision {
    let seed = cfg.seed;
    let content = content_hash(&req.image, &req.labels);
    let n = req.labels.len();
    let correct = truth
        .and_then(|t| t.get(&req.image))
        .and_then(|l| req.labels.iter().position(|x| x == l))
        .unwrap_or_else(|| pick(roll(seed, content, SALT_PICK, PER_CONTENT), n));
    let is_correct = roll(seed, content, SALT_CORRECT, PER_CONTENT) < cfg.accuracy;
    let index = if is_correct || n < 2 {
        correct
    } else {
        let w = pick(roll(seed, content, SALT_WRONG, PER_CONTENT), n - 1);
        if w >= correct {
            w + 1
        } else {
            w
        }
    };
    Decision {
        content,
        server_error: roll(seed, content, SALT_ERROR, attempt) < cfg.error_rate,
        malformed: roll(seed, content, SALT_MALFORMED, attempt) < cfg.malformed_rate,
        label: req.labels[index].clone(),
        slow: cfg.slow_every > 0
            && mix(seed, content, SALT_SLOW, PER_CONTENT) % cfg.slow_every == 0,
    }
}

/// The 200 body: a `chat.completion` object.
fn completion_body(cfg: &MockConfig, req: &Parsed, d: &Decision) -> Value {
    let content = if d.malformed {
        "I think it is probably a".to_owned()
    } else {
        json!({ "label": d.label }).to_string()
    };
    let prompt_tokens = 85 + 2 * req.labels.len() as u64;
    let completion_tokens = 5u64;
    json!({
        "id": format!("chatcmpl-mock-{:016x}", mix(cfg.seed, d.content, SALT_ID, PER_CONTENT)),
        "object": "chat.completion",
        "created": 1_700_000_000 + mix(cfg.seed, 0, SALT_CREATED, 0) % 100_000_000,
        "model": req.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content, "refusal": null },
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_shadow_mock",
    })
}

fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
}

// ---------------------------------------------------------------------------
// Server state and handlers
// ---------------------------------------------------------------------------

struct Inner {
    cfg: MockConfig,
    truth: Option<Truth>,
    bucket: Option<Mutex<Bucket>>,
    counters: Counters,
    /// Sequence for request ids of requests whose content is unknown.
    seq: AtomicU64,
}

/// The shared state of a mock endpoint; cheap to clone. Build one and pass it to
/// [`router`] to serve the mock from another server.
#[derive(Clone)]
pub struct MockState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The required key stays out of debug output.
        f.debug_struct("MockState")
            .field("port", &self.inner.cfg.port)
            .field("rpm", &self.inner.cfg.rpm)
            .field("seed", &self.inner.cfg.seed)
            .field("truth", &self.inner.truth.as_ref().map(Truth::len))
            .finish_non_exhaustive()
    }
}

impl MockState {
    /// A fresh state (full rate-limit bucket, zero counters).
    pub fn new(cfg: MockConfig, truth: Option<Truth>) -> MockState {
        let bucket = match cfg.rpm {
            Some(rpm) if rpm > 0 => Some(Mutex::new(Bucket::new(rpm, Instant::now()))),
            _ => None,
        };
        MockState {
            inner: Arc::new(Inner {
                cfg,
                truth,
                bucket,
                counters: Counters::default(),
                seq: AtomicU64::new(0),
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
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(cors)
        .with_state(state)
}

async fn models() -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{
            "id": MOCK_MODEL,
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "shadow-batch",
        }],
    }))
}

async fn stats(State(state): State<MockState>) -> Json<MockStats> {
    Json(state.stats())
}

fn set(headers: &mut HeaderMap, name: &'static str, value: impl ToString) {
    // Every value written here is ASCII built by this module.
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

fn bearer_matches(headers: &HeaderMap, key: &str) -> bool {
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
        format!("req_{:016x}", mix(cfg.seed, d.content, SALT_ID, attempt)),
    );

    // 4. Rate limit, on arrival.
    if let Some(bucket) = &inner.bucket {
        let info = bucket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(Instant::now());
        if !cfg.no_ratelimit_headers {
            ratelimit_headers(&mut out, Some(&info));
        }
        if !info.allowed {
            Counters::bump(&c.rate_limited);
            set(&mut out, "retry-after-ms", info.wait_ms);
            set(&mut out, "retry-after", info.wait_ms.div_ceil(1000).max(1));
            let message = format!(
                "Rate limit reached for requests on {MOCK_MODEL} in the shadow-batch mock: \
                 Limit {}, Used {}, Requested 1. Please try again in {}ms.",
                info.rpm, info.rpm, info.wait_ms
            );
            let body = error_body(&message, "requests", Some("rate_limit_exceeded"));
            return respond(StatusCode::TOO_MANY_REQUESTS, out, &body);
        }
    } else if !cfg.no_ratelimit_headers {
        ratelimit_headers(&mut out, None);
    }

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

/// `x-ratelimit-*` headers: the request ones from the bucket (when there is one),
/// the token ones with a large fixed limit.
fn ratelimit_headers(out: &mut HeaderMap, info: Option<&RateInfo>) {
    if let Some(info) = info {
        set(out, "x-ratelimit-limit-requests", info.rpm);
        set(out, "x-ratelimit-remaining-requests", info.remaining);
        set(
            out,
            "x-ratelimit-reset-requests",
            go_duration(info.reset_ms),
        );
    }
    set(out, "x-ratelimit-limit-tokens", TOKEN_LIMIT);
    set(out, "x-ratelimit-remaining-tokens", TOKEN_LIMIT);
    set(out, "x-ratelimit-reset-tokens", "0s");
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LABELS: [&str; 4] = ["cat", "dog", "bird", "fish"];

    fn labels() -> Vec<String> {
        LABELS.iter().map(|s| s.to_string()).collect()
    }

    fn image(i: usize) -> String {
        format!("https://example.test/images/{i:04}.jpg")
    }

    fn body(image: &str) -> String {
        json!({
            "model": "gpt-test",
            "messages": [
                { "role": "system", "content": "Classify the image." },
                { "role": "user", "content": [
                    { "type": "text", "text": "Which label?" },
                    { "type": "image_url", "image_url": { "url": image } }
                ]}
            ],
            "response_format": { "type": "json_schema", "json_schema": {
                "name": "classification", "strict": true,
                "schema": { "type": "object", "additionalProperties": false,
                    "required": ["label"],
                    "properties": { "label": { "type": "string", "enum": LABELS } } }
            }}
        })
        .to_string()
    }

    fn cfg() -> MockConfig {
        MockConfig {
            port: 0,
            ..MockConfig::default()
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    struct Answer {
        status: u16,
        headers: reqwest::header::HeaderMap,
        text: String,
    }

    impl Answer {
        fn json(&self) -> Value {
            serde_json::from_str(&self.text).unwrap()
        }
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|v| v.to_str().unwrap())
        }
        /// The label of a 200 answer.
        fn label(&self) -> String {
            assert_eq!(self.status, 200, "{}", self.text);
            let content = self.json()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned();
            let inner: Value = serde_json::from_str(&content).unwrap();
            inner["label"].as_str().unwrap().to_owned()
        }
    }

    async fn send_raw(
        c: &reqwest::Client,
        srv: &MockServer,
        body: String,
        attempt: Option<u64>,
        key: Option<&str>,
    ) -> Answer {
        let mut rq = c
            .post(format!("{}/chat/completions", srv.base_url()))
            .header("content-type", "application/json")
            .body(body);
        if let Some(a) = attempt {
            rq = rq.header("x-stainless-retry-count", a.to_string());
        }
        if let Some(k) = key {
            rq = rq.bearer_auth(k);
        }
        let r = rq.send().await.unwrap();
        Answer {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            text: r.text().await.unwrap(),
        }
    }

    async fn send(c: &reqwest::Client, srv: &MockServer, img: &str, attempt: u64) -> Answer {
        send_raw(c, srv, body(img), Some(attempt), None).await
    }

    // ---- pure parts -------------------------------------------------------

    #[test]
    fn fnv_and_hash_are_stable() {
        // Published FNV-1a 64 test vectors.
        let fnv = |s: &str| {
            let mut h = Fnv::new();
            h.write(s.as_bytes());
            h.0
        };
        assert_eq!(fnv(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv("foobar"), 0x8594_4171_f739_67e8);
        // splitmix64 reference: first output of the generator seeded with 0.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(url_key("x"), url_key("x"));
        assert_ne!(url_key("x"), url_key("y"));
        // Field separation: ("ab", ["c"]) differs from ("a", ["bc"]).
        assert_ne!(
            content_hash("ab", &["c".into()]),
            content_hash("a", &["bc".into()])
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(20), "20ms");
        assert_eq!(go_duration(1000), "1s");
        assert_eq!(go_duration(1500), "1.5s");
        assert_eq!(go_duration(8640), "8.64s");
        assert_eq!(go_duration(360_000), "6m0s");
        assert_eq!(go_duration(3_723_000), "1h2m3s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
    }

    #[test]
    fn shares_are_validated() {
        assert_eq!(parse_share("0.3"), Ok(0.3));
        assert!(parse_share("1.5").is_err());
        assert!(parse_share("-0.1").is_err());
        assert!(parse_share("x").is_err());
    }

    #[test]
    fn clap_defaults_match_default() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            mock: MockConfig,
        }
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.mock, MockConfig::default());
        let cli = Cli::try_parse_from([
            "x",
            "--rpm",
            "60",
            "--error-rate",
            "0.25",
            "--no-ratelimit-headers",
            "--slow-every",
            "7",
        ])
        .unwrap();
        assert_eq!(cli.mock.rpm, Some(60));
        assert_eq!(cli.mock.error_rate, 0.25);
        assert!(cli.mock.no_ratelimit_headers);
        assert_eq!(cli.mock.slow_every, 7);
        assert!(Cli::try_parse_from(["x", "--accuracy", "2"]).is_err());
    }

    #[test]
    fn decisions_are_pure_and_rates_hold() {
        let cfg = MockConfig {
            error_rate: 0.3,
            malformed_rate: 0.1,
            accuracy: 0.7,
            ..cfg()
        };
        let truth = Truth::from_pairs((0..2000).map(|i| (image(i), LABELS[i % 4].to_string())));
        let (mut errors, mut malformed, mut correct, mut retry_differs) = (0, 0, 0, 0);
        for i in 0..2000 {
            let req = Parsed {
                model: "m".into(),
                labels: labels(),
                image: image(i),
            };
            let d0 = decide(&cfg, Some(&truth), &req, 0);
            assert_eq!(d0, decide(&cfg, Some(&truth), &req, 0));
            let d1 = decide(&cfg, Some(&truth), &req, 1);
            // Accuracy is per content: the retry answers the same label.
            assert_eq!(d0.label, d1.label);
            retry_differs += usize::from(d0.server_error != d1.server_error);
            errors += usize::from(d0.server_error);
            malformed += usize::from(d0.malformed);
            correct += usize::from(d0.label == LABELS[i % 4]);
        }
        assert!((500..700).contains(&errors), "errors {errors}");
        assert!((140..260).contains(&malformed), "malformed {malformed}");
        assert!((1300..1500).contains(&correct), "correct {correct}");
        assert!(
            retry_differs > 100,
            "fault rolls must depend on the attempt"
        );

        // Another seed gives other answers.
        let other = MockConfig {
            seed: 7,
            ..cfg.clone()
        };
        let differ = (0..200)
            .filter(|&i| {
                let req = Parsed {
                    model: "m".into(),
                    labels: labels(),
                    image: image(i),
                };
                decide(&cfg, None, &req, 0).label != decide(&other, None, &req, 0).label
            })
            .count();
        assert!(differ > 50, "seed must matter ({differ})");
    }

    #[test]
    fn slow_every_picks_about_one_in_n() {
        let cfg = MockConfig {
            slow_every: 10,
            ..cfg()
        };
        let slow = (0..1000)
            .filter(|&i| {
                let req = Parsed {
                    model: "m".into(),
                    labels: labels(),
                    image: image(i),
                };
                decide(&cfg, None, &req, 0).slow
            })
            .count();
        assert!((60..140).contains(&slow), "slow {slow}");
    }

    #[test]
    fn bucket_refills_over_time() {
        let t0 = Instant::now();
        let mut b = Bucket::new(120, t0); // 2 per second, capacity 2
        assert!(b.take(t0).allowed);
        let second = b.take(t0);
        assert!(second.allowed);
        assert_eq!(second.remaining, 0);
        assert_eq!(second.reset_ms, 1000);
        let third = b.take(t0);
        assert!(!third.allowed);
        assert_eq!(third.wait_ms, 500);
        let later = b.take(t0 + Duration::from_millis(500));
        assert!(later.allowed);
        // A slow limit still lets one request through (capacity min 1).
        let mut slow = Bucket::new(6, t0);
        assert!(slow.take(t0).allowed);
        let refused = slow.take(t0);
        assert!(!refused.allowed);
        assert_eq!(refused.wait_ms, 10_000);
    }

    #[test]
    fn parse_errors() {
        assert!(parse_request(b"{not json").is_err());
        assert!(parse_request(br#"{"messages":[]}"#).is_err());
        let no_image = json!({
            "messages": [{ "role": "user", "content": [{ "type": "text", "text": "hi" }] }],
            "response_format": { "json_schema": { "schema": { "properties": {
                "label": { "enum": ["a", "b"] } } } } }
        });
        let e = parse_request(no_image.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("image_url"), "{e}");
        let ok = parse_request(body("data:image/png;base64,AAAA").as_bytes()).unwrap();
        assert_eq!(ok.image, "data:image/png;base64,AAAA");
        assert_eq!(ok.labels, labels());
        assert_eq!(ok.model, "gpt-test");
    }

    // ---- over HTTP --------------------------------------------------------

    #[tokio::test]
    async fn answer_is_a_chat_completion_with_an_enum_label() {
        let srv = MockServer::spawn(cfg(), None).await.unwrap();
        let c = client();
        let a = send(&c, &srv, &image(1), 0).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let v = a.json();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "gpt-test");
        assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
        assert_eq!(v["choices"][0]["index"], 0);
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert!(v["choices"][0]["message"]["refusal"].is_null());
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["prompt_tokens"], 85 + 2 * 4);
        assert_eq!(v["usage"]["completion_tokens"], 5);
        assert_eq!(v["usage"]["total_tokens"], 85 + 8 + 5);
        assert!(LABELS.contains(&a.label().as_str()));
        assert!(a.header("x-request-id").unwrap().starts_with("req_"));
        assert_eq!(a.header("content-type"), Some("application/json"));
        // No rpm: no request headers, but token headers.
        assert!(a.header("x-ratelimit-limit-requests").is_none());
        assert!(a.header("x-ratelimit-limit-tokens").is_some());
        srv.shutdown().await;
    }

    #[tokio::test]
    async fn same_request_same_body_across_time_and_servers() {
        let cfg = MockConfig {
            accuracy: 0.5,
            ..cfg()
        };
        let a = MockServer::spawn(cfg.clone(), None).await.unwrap();
        let b = MockServer::spawn(cfg, None).await.unwrap();
        let c = client();
        let mut labels_seen = std::collections::HashSet::new();
        for i in 0..20 {
            let first = send(&c, &a, &image(i), 0).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
            let again = send(&c, &a, &image(i), 0).await;
            let other = send(&c, &b, &image(i), 0).await;
            assert_eq!(first.text, again.text);
            assert_eq!(first.text, other.text);
            assert_eq!(first.header("x-request-id"), other.header("x-request-id"));
            labels_seen.insert(first.label());
        }
        assert!(labels_seen.len() > 1, "answers should vary by image");
        a.shutdown().await;
        b.shutdown().await;
    }

    #[tokio::test]
    async fn accuracy_one_and_zero_against_truth() {
        let truth = Truth::from_pairs((0..40).map(|i| (image(i), LABELS[i % 4].to_string())));
        let right = MockServer::spawn(
            MockConfig {
                accuracy: 1.0,
                ..cfg()
            },
            Some(truth.clone()),
        )
        .await
        .unwrap();
        let wrong = MockServer::spawn(
            MockConfig {
                accuracy: 0.0,
                ..cfg()
            },
            Some(truth),
        )
        .await
        .unwrap();
        let c = client();
        let mut wrong_labels = std::collections::HashSet::new();
        for i in 0..40 {
            assert_eq!(send(&c, &right, &image(i), 0).await.label(), LABELS[i % 4]);
            let w = send(&c, &wrong, &image(i), 0).await.label();
            assert_ne!(w, LABELS[i % 4]);
            assert!(LABELS.contains(&w.as_str()));
            // A retry answers the same wrong label.
            assert_eq!(send(&c, &wrong, &image(i), 3).await.label(), w);
            wrong_labels.insert(w);
        }
        assert!(wrong_labels.len() > 2, "wrong answers should spread");
        right.shutdown().await;
        wrong.shutdown().await;
    }

    #[tokio::test]
    async fn injected_server_errors() {
        let always = MockServer::spawn(
            MockConfig {
                error_rate: 1.0,
                ..cfg()
            },
            None,
        )
        .await
        .unwrap();
        let c = client();
        for i in 0..5 {
            let a = send(&c, &always, &image(i), i as u64).await;
            assert_eq!(a.status, 500);
            let v = a.json();
            assert_eq!(v["error"]["type"], "server_error");
            assert!(v["error"]["code"].is_null());
            assert_eq!(
                v["error"]["message"],
                "The server had an error while processing your request."
            );
        }
        assert_eq!(always.stats().server_errors, 5);
        always.shutdown().await;

        let some = MockServer::spawn(
            MockConfig {
                error_rate: 0.3,
                ..cfg()
            },
            None,
        )
        .await
        .unwrap();
        let mut failed = Vec::new();
        for i in 0..200 {
            let a = send(&c, &some, &image(i), 0).await;
            match a.status {
                200 => {}
                500 => failed.push(i),
                s => panic!("unexpected status {s}"),
            }
        }
        assert!(
            (40..=80).contains(&failed.len()),
            "{} of 200 failed",
            failed.len()
        );
        // Retrying a failed item (attempt + 1, + 2, ...) eventually succeeds, and
        // the same attempt fails again.
        let i = failed[0];
        assert_eq!(send(&c, &some, &image(i), 0).await.status, 500);
        let mut recovered = false;
        for attempt in 1..10 {
            if send(&c, &some, &image(i), attempt).await.status == 200 {
                recovered = true;
                break;
            }
        }
        assert!(recovered);
        let retried_ok = {
            let mut n = 0;
            for &i in &failed {
                n += usize::from(send(&c, &some, &image(i), 1).await.status == 200);
            }
            n
        };
        assert!(
            retried_ok * 2 > failed.len(),
            "{retried_ok}/{}",
            failed.len()
        );
        some.shutdown().await;
    }

    #[tokio::test]
    async fn malformed_answers() {
        let srv = MockServer::spawn(
            MockConfig {
                malformed_rate: 1.0,
                ..cfg()
            },
            None,
        )
        .await
        .unwrap();
        let a = send(&client(), &srv, &image(1), 0).await;
        assert_eq!(a.status, 200);
        let content = a.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            serde_json::from_str::<Value>(&content).is_err(),
            "{content}"
        );
        let s = srv.stats();
        assert_eq!((s.ok, s.malformed), (1, 1));
        srv.shutdown().await;
    }

    #[tokio::test]
    async fn rate_limit_gives_429_with_headers() {
        // 600 rpm = 10 per second, bucket capacity 10; fire 20 at once.
        let srv = MockServer::spawn(
            MockConfig {
                rpm: Some(600),
                ..cfg()
            },
            None,
        )
        .await
        .unwrap();
        let c = client();
        let images: Vec<String> = (0..20).map(image).collect();
        let answers =
            futures_join_all(images.iter().map(|img| send(&c, &srv, img, 0)).collect()).await;
        let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
        let ok: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
        assert!(!limited.is_empty(), "no 429 out of 20");
        assert!(ok.len() >= 10, "only {} ok", ok.len());
        assert_eq!(limited.len() + ok.len(), 20);
        for a in &limited {
            let ms: u64 = a.header("retry-after-ms").unwrap().parse().unwrap();
            assert!((1..=100).contains(&ms), "retry-after-ms {ms}");
            assert_eq!(a.header("retry-after"), Some("1"));
            assert_eq!(a.header("x-ratelimit-remaining-requests"), Some("0"));
            assert_eq!(a.header("x-ratelimit-limit-requests"), Some("600"));
            let v = a.json();
            assert_eq!(v["error"]["code"], "rate_limit_exceeded");
            assert_eq!(v["error"]["type"], "requests");
            assert!(v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Rate limit reached for requests"));
        }
        for a in &ok {
            assert_eq!(a.header("x-ratelimit-limit-requests"), Some("600"));
            let rem: u64 = a
                .header("x-ratelimit-remaining-requests")
                .unwrap()
                .parse()
                .unwrap();
            assert!(rem < 10);
            let reset = a.header("x-ratelimit-reset-requests").unwrap();
            assert!(reset.ends_with('s'), "{reset}");
        }
        assert_eq!(srv.stats().rate_limited as usize, limited.len());
        // After waiting out retry-after-ms the bucket lets requests in again.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(send(&c, &srv, &image(0), 1).await.status, 200);
        srv.shutdown().await;
    }

    /// `join_all` without the futures crate: polls all the futures together and
    /// returns their outputs in order.
    async fn futures_join_all<F>(futs: Vec<F>) -> Vec<Answer>
    where
        F: std::future::Future<Output = Answer>,
    {
        let mut pinned: Vec<_> = futs.into_iter().map(Box::pin).collect();
        let mut out: Vec<Option<Answer>> = (0..pinned.len()).map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (i, f) in pinned.iter_mut().enumerate() {
                if out[i].is_none() {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(a) => out[i] = Some(a),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        out.into_iter().map(Option::unwrap).collect()
    }

    #[tokio::test]
    async fn no_ratelimit_headers_hides_them() {
        let srv = MockServer::spawn(
            MockConfig {
                rpm: Some(60),
                no_ratelimit_headers: true,
                ..cfg()
            },
            None,
        )
        .await
        .unwrap();
        let c = client();
        let first = send(&c, &srv, &image(1), 0).await;
        let second = send(&c, &srv, &image(2), 0).await;
        assert_eq!(first.status, 200);
        assert_eq!(second.status, 429);
        for a in [&first, &second] {
            assert!(
                a.headers
                    .keys()
                    .all(|k| !k.as_str().starts_with("x-ratelimit-")),
                "{:?}",
                a.headers
            );
        }
        assert!(second.header("retry-after-ms").is_some());
        assert!(second.header("retry-after").is_some());
        srv.shutdown().await;
    }

    #[tokio::test]
    async fn require_key() {
        let srv = MockServer::spawn(
            MockConfig {
                require_key: Some("sk-right-key".into()),
                ..cfg()
            },
            None,
        )
        .await
        .unwrap();
        let c = client();
        let wrong_key = "sk-WRONG-9f8e7d6c";
        let a = send_raw(&c, &srv, body(&image(1)), None, Some(wrong_key)).await;
        assert_eq!(a.status, 401);
        let v = a.json();
        assert_eq!(v["error"]["code"], "invalid_api_key");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let everything = format!("{:?}{}", a.headers, a.text);
        assert!(!everything.contains(wrong_key));
        assert!(!everything.contains("9f8e7d6c"));
        assert!(!everything.contains("sk-right-key"));
        let none = send_raw(&c, &srv, body(&image(1)), None, None).await;
        assert_eq!(none.status, 401);
        let ok = send_raw(&c, &srv, body(&image(1)), None, Some("sk-right-key")).await;
        assert_eq!(ok.status, 200);
        let s = srv.stats();
        assert_eq!((s.unauthorized, s.ok), (2, 1));
        assert!(!format!("{srv:?}").contains("sk-right-key"));
        srv.shutdown().await;
    }

    #[tokio::test]
    async fn quota_runs_out() {
        let srv = MockServer::spawn(
            MockConfig {
                quota: Some(3),
                ..cfg()
            },
            None,
        )
        .await
        .unwrap();
        let c = client();
        for i in 0..3 {
            assert_eq!(send(&c, &srv, &image(i), 0).await.status, 200);
        }
        for i in 3..6 {
            let a = send(&c, &srv, &image(i), 0).await;
            assert_eq!(a.status, 429);
            let v = a.json();
            assert_eq!(v["error"]["code"], "insufficient_quota");
            assert_eq!(v["error"]["type"], "insufficient_quota");
            assert!(a.header("retry-after").is_none());
            assert!(a.header("retry-after-ms").is_none());
        }
        let s = srv.stats();
        assert_eq!((s.ok, s.quota_exceeded, s.requests), (3, 3, 6));
        srv.shutdown().await;
    }

    #[tokio::test]
    async fn bad_requests_get_400() {
        let srv = MockServer::spawn(cfg(), None).await.unwrap();
        let c = client();
        let a = send_raw(&c, &srv, "{oops".into(), None, None).await;
        assert_eq!(a.status, 400);
        let v = a.json();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["code"].is_null());
        let no_labels = json!({ "model": "m", "messages": [] }).to_string();
        assert_eq!(send_raw(&c, &srv, no_labels, None, None).await.status, 400);
        assert_eq!(srv.stats().bad_requests, 2);
        srv.shutdown().await;
    }

    #[tokio::test]
    async fn slow_requests_wait_longer() {
        let srv = MockServer::spawn(
            MockConfig {
                slow_every: 1,
                slow_ms: 300,
                ..cfg()
            },
            None,
        )
        .await
        .unwrap();
        let t = std::time::Instant::now();
        assert_eq!(send(&client(), &srv, &image(1), 0).await.status, 200);
        assert!(t.elapsed() >= Duration::from_millis(300));
        srv.shutdown().await;
    }

    #[tokio::test]
    async fn cors_preflight_and_exposed_headers() {
        let srv = MockServer::spawn(
            MockConfig {
                rpm: Some(6000),
                ..cfg()
            },
            None,
        )
        .await
        .unwrap();
        let c = client();
        let url = format!("{}/chat/completions", srv.base_url());
        let pre = c
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", "http://localhost:5173")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,x-stainless-retry-count",
            )
            .send()
            .await
            .unwrap();
        assert!(pre.status().is_success(), "{}", pre.status());
        let h = pre.headers();
        let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_ascii_lowercase());
        assert_eq!(get("access-control-allow-origin").as_deref(), Some("*"));
        let methods = get("access-control-allow-methods").unwrap();
        assert!(
            methods.contains("post") && methods.contains("get"),
            "{methods}"
        );
        let allowed = get("access-control-allow-headers").unwrap();
        for want in ["authorization", "content-type", "x-stainless-retry-count"] {
            assert!(allowed.contains(want), "{allowed}");
        }
        // The actual response exposes the rate-limit and retry headers.
        let r = c
            .post(&url)
            .header("origin", "http://localhost:5173")
            .body(body(&image(1)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers().get("access-control-allow-origin").unwrap(), "*");
        let exposed = r
            .headers()
            .get("access-control-expose-headers")
            .unwrap()
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        for want in EXPOSED_HEADERS {
            assert!(exposed.contains(want), "{want} not in {exposed}");
        }
        srv.shutdown().await;
    }

    #[tokio::test]
    async fn models_and_stats_endpoints() {
        let srv = MockServer::spawn(
            MockConfig {
                error_rate: 0.5,
                ..cfg()
            },
            None,
        )
        .await
        .unwrap();
        let c = client();
        let models: Value = c
            .get(format!("{}/models", srv.base_url()))
            .send()
            .await
            .unwrap()
            .json_text()
            .await;
        assert_eq!(models["object"], "list");
        assert_eq!(models["data"][0]["id"], MOCK_MODEL);
        assert_eq!(models["data"].as_array().unwrap().len(), 1);

        for i in 0..10 {
            send(&c, &srv, &image(i), 0).await;
        }
        let stats_url = format!("http://{}/stats", srv.addr);
        let raw: Value = c.get(&stats_url).send().await.unwrap().json_text().await;
        for key in [
            "requests",
            "ok",
            "rateLimited",
            "serverErrors",
            "unauthorized",
            "malformed",
            "quotaExceeded",
            "byStatus",
        ] {
            assert!(raw.get(key).is_some(), "{key} missing in {raw}");
        }
        let s: MockStats = serde_json::from_value(raw).unwrap();
        assert_eq!(s, srv.stats());
        assert_eq!(s.requests, 10);
        assert_eq!(s.ok + s.server_errors, 10);
        assert!(s.ok > 0 && s.server_errors > 0);
        assert_eq!(s.by_status.get(&200).copied().unwrap_or(0), s.ok);
        assert_eq!(s.by_status.get(&500).copied().unwrap_or(0), s.server_errors);
        srv.shutdown().await;
    }

    trait JsonText {
        async fn json_text(self) -> Value;
    }

    impl JsonText for reqwest::Response {
        async fn json_text(self) -> Value {
            assert!(self.status().is_success(), "{}", self.status());
            serde_json::from_str(&self.text().await.unwrap()).unwrap()
        }
    }

    #[tokio::test]
    async fn latency_applies_and_shutdown_is_graceful() {
        let srv = MockServer::spawn(
            MockConfig {
                latency_ms: 200,
                ..cfg()
            },
            None,
        )
        .await
        .unwrap();
        let c = client();
        let url = format!("{}/chat/completions", srv.base_url());
        let t = std::time::Instant::now();
        let in_flight = tokio::spawn({
            let c = c.clone();
            async move {
                c.post(url)
                    .body(body(&image(1)))
                    .send()
                    .await
                    .map(|r| r.status())
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let addr = srv.addr;
        srv.shutdown().await;
        // The request in flight finished with its answer, after the latency.
        assert_eq!(in_flight.await.unwrap().unwrap(), 200);
        assert!(t.elapsed() >= Duration::from_millis(200));
        // And the port no longer answers.
        let after = c.get(format!("http://{addr}/v1/models")).send().await;
        assert!(after.is_err());
    }
}
