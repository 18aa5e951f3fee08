//! The mock's settings, and their one default.

use std::path::PathBuf;

/// Settings of the mock endpoint.
///
/// [`MockConfig::default()`] is the product's default mock, written only here: the
/// CLI's `mock-server` and `web` commands and the built-in mock of a run take
/// their flag defaults from it, so the page and the CLI meet the same endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct MockConfig {
    /// Port to listen on, on 127.0.0.1 (0 = any free port).
    pub port: u16,

    /// Requests-per-minute limit, enforced with a token bucket holding one second
    /// of burst; over it the mock answers 429 with retry-after headers. `None` or
    /// `Some(0)` = unlimited.
    pub rpm: Option<u32>,

    /// Tokens-per-minute limit, enforced with a second token bucket holding one
    /// second of it (capacity N/60, refilled at N/60 per second). A request is
    /// charged, on arrival, its prompt tokens (see
    /// [`image_tokens`](MockConfig::image_tokens)) plus its `max_completion_tokens`
    /// or `max_tokens`, or [`UNSET_MAX_TOKENS_CHARGE`] when it sets neither; it is
    /// admitted only when both this bucket and the [`rpm`](MockConfig::rpm) one
    /// allow it. Over the limit the mock answers 429 (`type: "tokens"`) with the
    /// wait for that charge; a request whose charge is more than the bucket holds
    /// gets 400 instead (no wait would help). Sets the `x-ratelimit-*-tokens`
    /// headers from the bucket. `None` or `Some(0)` = unlimited (and no token
    /// headers).
    pub tpm: Option<u64>,

    /// Prompt tokens charged per image content part (the rest of the prompt is
    /// charged at one token per 4 characters of its text parts, rounded up). The
    /// default, 2,833, is gpt-4o-mini's charge for a low-detail image. Also the
    /// `usage.prompt_tokens` the answers report.
    pub image_tokens: u64,

    /// Latency added to every answered request (200 or 500), in milliseconds.
    pub latency_ms: u64,

    /// Share of requests answered with an injected 500 server error (0..=1).
    /// Rolled per (image, labels, attempt): a retry may succeed.
    pub error_rate: f64,

    /// How often the answer is the true label (0..=1). Rolled per (image, labels):
    /// a retry gets the same answer. Meaningless without a [`Truth`](crate::Truth).
    pub accuracy: f64,

    /// A fault for drift tests: images of data rows from `from_row` on (by the
    /// [`Truth`](crate::Truth)'s rows) are answered right at this accuracy instead
    /// of [`accuracy`](MockConfig::accuracy). Images the truth does not know keep
    /// `accuracy`; an image given on several rows counts at its last one, so a
    /// drift test wants one image per row.
    pub accuracy_drop: Option<AccuracyDrop>,

    /// Seed of every answer and injected fault.
    pub seed: u64,

    /// Labels CSV giving the true labels of the images. The mock does not read it:
    /// the host loads the images as it will send them and hands the server a
    /// [`Truth`](crate::Truth); this field only records where it came from.
    pub truth: Option<PathBuf>,

    /// On 429 send only `retry-after` / `retry-after-ms`, and never any
    /// `x-ratelimit-*` header.
    pub no_ratelimit_headers: bool,

    /// Require this key, in each dialect's own header (`authorization: Bearer`,
    /// `x-api-key`, `x-goog-api-key`, `api-key`); other requests get 401
    /// (`invalid_api_key` for OpenAI; Gemini's 400 `API_KEY_INVALID`). The key is
    /// never logged or echoed.
    pub require_key: Option<String>,

    /// After this many 200 answers, every request gets 429 `insufficient_quota`.
    pub quota: Option<u64>,

    /// Share of 200 answers whose content is not valid JSON (0..=1). Rolled per
    /// (image, labels, attempt).
    pub malformed_rate: f64,

    /// Extra latency of straggler requests, in milliseconds (see
    /// [`slow_every`](MockConfig::slow_every)).
    pub slow_ms: u64,

    /// Make one image in N (chosen by its seeded content hash) a straggler that
    /// waits [`slow_ms`](MockConfig::slow_ms) more; 0 = off.
    pub slow_every: u64,

    /// Share of images the model refuses (0..=1), in each dialect's own words.
    /// Rolled per (image, labels): a retry is refused again.
    pub refusal_rate: f64,

    /// How the OpenAI-compatible route behaves.
    pub dialect: OpenAiDialect,

    /// How far the log-probabilities the mock gives (OpenAI and Gemini routes,
    /// when a request asks) overstate its accuracy, 0..=1: 0 = calibrated (of
    /// the answers given confidence c, a share c agree with the true label), 1 =
    /// every answer given as certain. The reported confidence is `c + x (1 - c)`
    /// ([`crate::logprobs`]).
    pub overconfidence: f64,

    /// Answer every request that asks for log-probabilities with a 400 saying
    /// the model does not give them (as OpenAI's reasoning models do).
    pub refuse_logprobs: bool,

    /// Batch API: how long a batch takes from creation to `completed`, in ms
    /// (`validating` for the first tenth, `in_progress`, `finalizing` for the last
    /// tenth).
    pub batch_ms: u64,

    /// Batch API: the first N batches created expire when their time is up,
    /// having run only every other line (the rest come back as `batch_expired`
    /// in the error file; Anthropic's as `expired` results).
    pub batch_expire: u64,

    /// Batch API: the first N batches created (after any that expire) fail
    /// validation (`failed`, with an error naming line 1). Anthropic's Message
    /// Batches have no `failed` status: there, the next N create calls (after
    /// those that expire) are refused with a 400 `invalid_request_error`, and
    /// create nothing.
    pub batch_fail: u64,

    /// Batch API: wait this long before answering a create (the batch exists
    /// from the start of the wait), in ms: a client killed meanwhile has created
    /// a batch it has no id of.
    pub batch_create_delay_ms: u64,

    /// Batch API: serve result files 10 lines at a time, this long apart, in ms.
    pub batch_download_delay_ms: u64,

    /// Batch API: wait this long before answering an upload (the file exists
    /// from the start of the wait), in ms: a client killed meanwhile has
    /// uploaded a file it has no id of.
    pub batch_upload_delay_ms: u64,
}

/// A mid-run fall in accuracy (see [`MockConfig::accuracy_drop`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AccuracyDrop {
    /// 0-based data row from which the accuracy changes.
    pub from_row: usize,
    /// The accuracy from that row on (0..=1).
    pub accuracy: f64,
}

/// How `POST /v1/chat/completions` behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenAiDialect {
    /// OpenAI's: structured output (`json_schema`) and any image URL.
    #[default]
    OpenAi,
    /// A local server such as Ollama, llama.cpp or an old vLLM: a `json_schema`
    /// `response_format` and remote (`http(s)`) image URLs are answered 400; a
    /// `json_object` format gets `{"label": ...}` JSON, no format a bare label. The
    /// labels are read from the prompt's JSON list when no schema names them.
    Ollama,
}

/// The token charge of a request that sets neither `max_completion_tokens` nor
/// `max_tokens`. Real endpoints count a large default output allowance against
/// the tokens-per-minute limit, so a client that leaves it unset pays for it; the
/// mock charges this much.
pub const UNSET_MAX_TOKENS_CHARGE: u64 = 1000;

/// gpt-4o-mini's prompt tokens for one low-detail image.
const GPT_4O_MINI_LOW_DETAIL_IMAGE_TOKENS: u64 = 2833;

impl Default for MockConfig {
    /// A model that answers in 120 ms, right 9 times in 10, with 2% injected server
    /// errors, seed 42 (the core's default seed), on port 8787, charging 2,833
    /// prompt tokens per image; no rate limit, no key, no quota, no malformed
    /// answers, no refusals, no stragglers; OpenAI's dialect on the OpenAI route.
    fn default() -> Self {
        MockConfig {
            port: 8787,
            rpm: None,
            tpm: None,
            image_tokens: GPT_4O_MINI_LOW_DETAIL_IMAGE_TOKENS,
            latency_ms: 120,
            error_rate: 0.02,
            accuracy: 0.9,
            accuracy_drop: None,
            seed: 42,
            truth: None,
            no_ratelimit_headers: false,
            require_key: None,
            quota: None,
            malformed_rate: 0.0,
            slow_ms: 0,
            slow_every: 0,
            refusal_rate: 0.0,
            dialect: OpenAiDialect::OpenAi,
            overconfidence: 0.0,
            refuse_logprobs: false,
            batch_ms: 2_000,
            batch_expire: 0,
            batch_fail: 0,
            batch_create_delay_ms: 0,
            batch_download_delay_ms: 0,
            batch_upload_delay_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_seed_is_the_cores() {
        // A run with the default seed and the default mock roll the same dice.
        assert_eq!(
            MockConfig::default().seed,
            shadow_core::RunConfig::default().seed
        );
    }
}
