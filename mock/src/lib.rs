//! The mock model endpoint of shadow-batch: a server on 127.0.0.1 that speaks every
//! dialect shadow-batch speaks (OpenAI chat completions, Anthropic messages, Gemini
//! `generateContent`, Azure OpenAI's paths, and a local server's OpenAI dialect),
//! whose answers, faults and rate limits are set by a [`MockConfig`]. The CLI runs it in-process as its default endpoint when no key
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
//! by seeded dice. It is not a full server of any of these APIs either: it speaks
//! only the requests shadow-batch sends (one image, the labels as an enum, and the
//! batch calls it makes), with no streaming. It listens on 127.0.0.1
//! only and is not meant to face a network: [`MockConfig::require_key`] exists to
//! test a client's handling of 401s, not to protect anything.
//!
//! # What it answers
//!
//! * `POST /v1/chat/completions`: one image per request, structured output whose
//!   JSON schema enumerates the labels
//!   (`response_format.json_schema.schema.properties.label.enum`). The answer is a
//!   real `chat.completion` whose message content is `{"label":"<label>"}`.
//! * `POST /v1/messages` (Anthropic): `x-api-key` and `anthropic-version` headers,
//!   the labels from the forced tool's `input_schema.properties.label.enum`, the
//!   image from a `base64` or `url` source. Answers a `tool_use` block whose input is
//!   `{"label": ...}`, `usage`, and `anthropic-ratelimit-*` headers with RFC 3339
//!   reset times; its injected fault is a 529 `overloaded_error`, its refusal a
//!   `stop_reason: "refusal"`, a used-up quota a 400 about the credit balance, a
//!   429 carries `retry-after` in seconds.
//! * `POST /v1beta/models/{model}:generateContent` (also under `/v1/`, Gemini):
//!   `x-goog-api-key` (a `?key=` in the URL is refused with a 400), the labels from
//!   `generationConfig.responseSchema`, the image from an `inline_data` or
//!   `file_data` part. Answers a candidate whose text is `{"label": ...}` and
//!   `usageMetadata`; no rate-limit headers: a 429 is `RESOURCE_EXHAUSTED` with a
//!   `google.rpc.RetryInfo` `retryDelay`; a wrong key is a 400 `API_KEY_INVALID`,
//!   the injected fault a 503, a refusal `finishReason: "SAFETY"`.
//! * `POST /openai/deployments/{deployment}/chat/completions?api-version=...` and
//!   `POST /openai/v1/chat/completions` (Azure): the `api-key` header, OpenAI's
//!   bodies; a deployment path without `api-version` is a 404, as on Azure. Only
//!   `x-ratelimit-remaining-*` headers; a refusal is the content filter (a 400
//!   `content_filter` or a 200 `finish_reason: "content_filter"`, by content hash).
//! * `POST /v1/chat/completions` with [`OpenAiDialect::Ollama`]: a local server
//!   that answers 400 to a `json_schema` `response_format` and to remote image
//!   URLs, `{"label": ...}` to `json_object` and a bare label to plain text.
//! * `GET /v1/models`: one model, [`MOCK_MODEL`].
//! * `GET /stats`: counters ([`MockStats`]) as JSON.
//! * The OpenAI Batch API: `POST /v1/files` (multipart, `purpose=batch`),
//!   `GET /v1/files`, `GET /v1/files/{id}[/content]`, `DELETE /v1/files/{id}`
//!   (`/stats` counts the files still held: `batchFilesLive`), `POST
//!   /v1/batches`, `GET /v1/batches[/{id}]`,
//!   `POST /v1/batches/{id}/cancel`. A batch's status follows the clock
//!   ([`batch_ms`](MockConfig::batch_ms)); each line is answered by the same
//!   function as a live request, its attempt read from a `custom_id` ending in
//!   `-a{attempt}`; result files come out of input order; the first batches can
//!   be made to expire or fail ([`batch_expire`](MockConfig::batch_expire),
//!   [`batch_fail`](MockConfig::batch_fail)), a create answered late
//!   ([`batch_create_delay_ms`](MockConfig::batch_create_delay_ms)), an upload
//!   answered late ([`batch_upload_delay_ms`](MockConfig::batch_upload_delay_ms)) and a
//!   download served slowly
//!   ([`batch_download_delay_ms`](MockConfig::batch_download_delay_ms)).
//! * Azure OpenAI's global batch: the same API under `/openai/v1/files` and
//!   `/openai/v1/batches` (and `/openai/files`, `/openai/batches` with
//!   `?api-version=`), the key in `api-key`; lines answered as the live Azure
//!   routes answer, a batch whose lines name two models failed with
//!   `model_mismatch`, an error file written even when empty.
//! * Gemini Batch Mode: the resumable upload (`POST /upload/v1beta/files`),
//!   `GET /v1beta/files`, `DELETE /v1beta/files/{id}`, `GET
//!   /download/v1beta/files/{id}:download`, `POST
//!   /v1beta/models/{model}:batchGenerateContent` (a file or inline requests),
//!   `GET /v1beta/batches[/{id}]`, `POST /v1beta/batches/{id}:cancel`: batches
//!   as long-running operations (`BATCH_STATE_*`, int64 counts as strings),
//!   the injected faults as error lines inside a SUCCEEDED batch, expired
//!   batches with no results, the same fault settings.
//! * Anthropic's Message Batches: `POST /v1/messages/batches` (the requests
//!   inline), `GET /v1/messages/batches[/{id}]`, `POST
//!   /v1/messages/batches/{id}/cancel`, `GET /v1/messages/batches/{id}/results`,
//!   with the same answers and the same fault settings (a create refused with a
//!   400 standing for a failed batch: Anthropic has no `failed` status); times
//!   are the wall clock's, in RFC 3339.
//!
//! Every route checks [`require_key`](MockConfig::require_key) in its dialect's
//! header, and answers faults, rate limits, quota and refusals
//! ([`refusal_rate`](MockConfig::refusal_rate)) in its dialect's words.
//!
//! CORS is open (any origin, `GET`/`POST`/`OPTIONS`, the request's headers mirrored
//! on preflight: every dialect's key header, `anthropic-version`,
//! `anthropic-dangerous-direct-browser-access`, `x-stainless-retry-count`) and the
//! rate-limit and retry headers of every dialect ([`EXPOSED_HEADERS`], Anthropic's
//! `anthropic-ratelimit-*` among them) are exposed to scripts, so the browser page
//! can call every route from another origin. As Anthropic's API does, the
//! Anthropic route refuses (401 [`ANTHROPIC_CORS_REFUSAL`]) a request from a browser
//! page (one with an `Origin` header) without
//! `anthropic-dangerous-direct-browser-access: true`.
//!
//! # Determinism
//!
//! Every answer and every injected fault is a pure function of
//! `(seed, request content, attempt)` where the request content is the image URL
//! string exactly as sent (data URL or http URL; for Anthropic's and Gemini's
//! inline images, the `data:{type};base64,{data}` URL they were made from, so the
//! same image gets the same answer in every dialect) plus the label enum, in
//! order, and the attempt is the `x-stainless-retry-count` header (default 0). Arrival
//! order and time play no part, so two clients running the same CSV against the
//! mock end with the same results whatever their timing. In detail:
//!
//! * injected 5xx ([`error_rate`](MockConfig::error_rate)) and malformed answers
//!   ([`malformed_rate`](MockConfig::malformed_rate)) roll per (content, attempt):
//!   a retry may succeed;
//! * correctness ([`accuracy`](MockConfig::accuracy), or from a data row on
//!   [`accuracy_drop`](MockConfig::accuracy_drop)'s, for drift tests), the wrong
//!   label chosen and refusals ([`refusal_rate`](MockConfig::refusal_rate)) roll per
//!   content only: a retried item gets the same answer;
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
//! The `usage` of an answer is a pure function of the request too:
//! `prompt_tokens` = [`image_tokens`](MockConfig::image_tokens) per image part plus
//! one per 4 characters of the text parts (rounded up), `completion_tokens` one per
//! 4 characters of the answer's content (rounded up, at least 1).
//!
//! Only two things depend on time: admission by the requests- and tokens-per-minute
//! buckets ([`rpm`](MockConfig::rpm), [`tpm`](MockConfig::tpm): their 429s and
//! `x-ratelimit-*` values) and the order in which the [`quota`](MockConfig::quota)
//! is used up. Retries absorb the 429s.
//!
//! # Order of checks for a model request (every dialect)
//!
//! 1. Anthropic's route: a request with an `Origin` and without
//!    `anthropic-dangerous-direct-browser-access: true` -> 401. Then
//!    [`require_key`](MockConfig::require_key): wrong or missing key in the
//!    dialect's header -> 401 (`invalid_api_key` for OpenAI; Gemini's 400).
//! 2. [`quota`](MockConfig::quota) already used up -> 429 `insufficient_quota`
//!    (Anthropic: 400 credit balance; Gemini: 429 naming a per-day quota).
//! 3. Required headers (Anthropic's `anthropic-version`) and the body: bad JSON,
//!    missing label enum or missing image, or what the ollama dialect refuses ->
//!    400.
//! 4. Rate limits, on arrival, before any sleep. The request's token charge is its
//!    prompt tokens plus its `max_completion_tokens` / `max_tokens`, or
//!    [`UNSET_MAX_TOKENS_CHARGE`] when it sets neither. With [`tpm`](MockConfig::tpm),
//!    a charge larger than the token bucket holds -> 400 "Request too large"
//!    (`type: "tokens"`, `x-should-retry: false`; OpenAI says 429, which a client
//!    would retry forever). Else the request is admitted only if both buckets
//!    allow it, and then charged to both; otherwise 429 in the dialect's words
//!    (OpenAI's `rate_limit_exceeded` with `type` `requests` or `tokens`, the limit
//!    with the longer wait), with the wait until both would admit this request (see
//!    [Rate limits](#rate-limits)).
//! 5. Latency sleep ([`latency_ms`](MockConfig::latency_ms), plus
//!    [`slow_ms`](MockConfig::slow_ms) for stragglers).
//! 6. Injected server error, else an answer (a label, malformed, or a refusal). An
//!    answer counts toward the quota; a request that would exceed it gets the
//!    quota answer of step 2 instead.
//!
//! The required key is never logged, echoed, shown by `Debug` or stored in
//! [`MockStats`].
//!
//! # Rate limits
//!
//! Each limit is a token bucket holding one second of it: `rpm` R is a bucket of
//! max(1, R/60) requests refilled at R/60 per second, `tpm` N one of N/60 tokens
//! refilled at N/60 per second. Headers on every answer (unless
//! [`no_ratelimit_headers`](MockConfig::no_ratelimit_headers)):
//!
//! * `x-ratelimit-limit-requests` R, `x-ratelimit-remaining-requests` the whole
//!   requests left in the one-second bucket, `x-ratelimit-reset-requests` the time
//!   until it is full (a Go duration: `340ms`, `1.2s`);
//! * `x-ratelimit-limit-tokens` N, `x-ratelimit-remaining-tokens`
//!   N − (capacity − level) × 60 (floored, 0..=N): the bucket's content expressed
//!   as a share of the per-minute limit, so a full bucket says N and an empty one
//!   0 — numerically level × 60, and a request of charge c is admitted when
//!   remaining ≥ 60 × c; `x-ratelimit-reset-tokens` the time until the bucket is
//!   full. The "Used" of a token 429's message is N − remaining.
//! * each only with its limit: without `tpm` no token header at all, since a
//!   client that paces by `x-ratelimit-limit-tokens` would hold itself to any
//!   token limit the mock named.
//!
//! [`MockStats`] counts the 429s of each limit
//! ([`rate_limited`](MockStats::rate_limited), of which
//! [`token_limited`](MockStats::token_limited)) and the tokens charged to admitted
//! requests ([`tokens_admitted`](MockStats::tokens_admitted)): over a run's wall
//! time, against N / 60 per second, the share of the token limit a client used.
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
//! and fault model and [`Truth`]; `openai`, `anthropic` and `gemini` the wire
//! formats it reads and writes; `dialect` what each dialect says in each case;
//! `ratelimit` the two token buckets and their headers; `stats` the counters; `server`
//! the router, its handlers and [`MockServer`].

mod answers;
mod anthropic;
mod batch;
mod batch_api;
mod config;
mod dialect;
mod gemini;
mod gemini_batches;
mod logprobs;
mod message_batches;
mod openai;
mod ratelimit;
mod server;
mod stats;
#[cfg(test)]
mod testing;
mod text_only;

pub use answers::Truth;
pub use config::{AccuracyDrop, MockConfig, OpenAiDialect, UNSET_MAX_TOKENS_CHARGE};
pub use server::{router, MockServer, MockState, ANTHROPIC_CORS_REFUSAL, EXPOSED_HEADERS};
pub use stats::MockStats;

/// The one model the mock lists on `GET /v1/models` (and answers as when the
/// request names no model). Clients that talk to the mock send it as their model.
pub use shadow_core::provider::MOCK_MODEL;
