//! The mock model endpoint of shadow-batch: an OpenAI-compatible chat-completions
//! server on 127.0.0.1 whose answers, faults and rate limits are set by a
//! [`MockConfig`]. The CLI runs it in-process as its default endpoint when no key
//! or endpoint is configured, serves it with `shadow-batch mock-server` and, beside
//! the browser page, with `shadow-batch web`; the tests and benchmarks run against
//! it.
//!
//! # What it is, and what it is not
//!
//! It is a stand-in for a vision model that a client can be tested and measured
//! against: real HTTP, real status codes, the headers a real provider sends, and
//! answers that are a pure function of the request, so two clients (native,
//! browser) running the same CSV get the same answers.
//!
//! It is not a model: it never looks at an image. Its "prediction" is the true
//! label (when a [`Truth`] holds it) or another label of the request's enum, chosen
//! by seeded dice. It is not a full OpenAI server either: it speaks only the chat
//! completions dialect that shadow-batch sends (one image, a JSON-schema label
//! enum), with no streaming, no tools and no batch API. It listens on 127.0.0.1
//! only and is not meant to face a network: [`MockConfig::require_key`] exists to
//! test a client's handling of 401s, not to protect anything.
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
//! on preflight) and the rate-limit and retry headers ([`EXPOSED_HEADERS`]) are
//! exposed to scripts, so the browser page can call it from another origin.
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
//! * injected 5xx ([`error_rate`](MockConfig::error_rate)) and malformed answers
//!   ([`malformed_rate`](MockConfig::malformed_rate)) roll per (content, attempt):
//!   a retry may succeed;
//! * correctness ([`accuracy`](MockConfig::accuracy)) and the wrong label chosen
//!   roll per content only: a retried item gets the same answer;
//! * stragglers ([`slow_every`](MockConfig::slow_every)) are chosen per content.
//!
//! The rolls hash with the core's splitmix64 finalizer
//! ([`shadow_core::hash`]), the same mixing as the core's backoff jitter.
//!
//! The "correct" answer is the true label from [`Truth`] when the image is known
//! there (and the label is in the request's enum). Without a truth entry the true
//! label is unknown to the mock, so it picks a label from the enum by hash and the
//! accuracy only decides whether it answers that pick or another label: the
//! agreement rate a client measures is then meaningless.
//!
//! Only two things depend on time: the requests-per-minute token bucket (its 429s
//! and `x-ratelimit-*` values) and the order in which the
//! [`quota`](MockConfig::quota) is used up. Retries absorb the 429s.
//!
//! # Order of checks for a chat completion
//!
//! 1. [`require_key`](MockConfig::require_key): wrong or missing bearer key -> 401
//!    `invalid_api_key`.
//! 2. [`quota`](MockConfig::quota) already used up -> 429 `insufficient_quota`.
//! 3. Body: bad JSON, missing label enum or missing image -> 400.
//! 4. Rate limit ([`rpm`](MockConfig::rpm), on arrival, before any sleep) -> 429
//!    `rate_limit_exceeded`.
//! 5. Latency sleep ([`latency_ms`](MockConfig::latency_ms), plus
//!    [`slow_ms`](MockConfig::slow_ms) for stragglers).
//! 6. Injected 500, else a 200 answer (malformed or not). A 200 answer counts
//!    toward the quota; a request that would exceed it gets the
//!    `insufficient_quota` 429 instead.
//!
//! The required key is never logged, echoed, shown by `Debug` or stored in
//! [`MockStats`].
//!
//! # Example
//!
//! ```no_run
//! use shadow_mock::{MockConfig, MockServer, Truth};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let truth = Truth::from_pairs([(
//!     "https://example.test/cat.png".to_string(),
//!     "cat".to_string(),
//! )]);
//! let cfg = MockConfig {
//!     port: 0, // any free port
//!     ..MockConfig::default()
//! };
//! let server = MockServer::spawn(cfg, Some(truth)).await?;
//! println!("OpenAI-compatible endpoint at {}", server.base_url());
//! // ... point a client at it ...
//! println!("{} requests", server.stats().requests);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Modules
//!
//! `config` holds [`MockConfig`] and its one default; `answers` the seeded answer
//! and fault model and [`Truth`]; `openai` the wire format it reads and writes;
//! `ratelimit` the token bucket and its headers; `stats` the counters; `server`
//! the router, its handlers and [`MockServer`].

mod answers;
mod config;
mod openai;
mod ratelimit;
mod server;
mod stats;
#[cfg(test)]
mod testing;

pub use answers::Truth;
pub use config::MockConfig;
pub use server::{router, MockServer, MockState, EXPOSED_HEADERS};
pub use stats::MockStats;

/// The one model the mock lists on `GET /v1/models` (and answers as when the
/// request names no model). Clients that talk to the mock send it as their model.
pub use shadow_core::provider::MOCK_MODEL;
