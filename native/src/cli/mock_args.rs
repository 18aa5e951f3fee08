//! The mock endpoint's flags (`shadow-batch mock-server`) and how they become its
//! `MockConfig`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use shadow_mock::{AccuracyDrop, MockConfig, OpenAiDialect};

use super::parse_share;

/// The mock endpoint's flags (`shadow-batch mock-server --help`); every default is
/// `MockConfig::default()`'s.
#[derive(Args, Clone, Debug)]
pub struct MockArgs {
    /// Port to listen on, on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = MockConfig::default().port)]
    pub port: u16,

    /// Requests-per-minute limit, enforced with a token bucket holding one second
    /// of burst; over it the mock answers 429 with retry-after headers. Unset or 0
    /// = unlimited.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,

    /// Tokens-per-minute limit, a second token bucket holding one second of it. A
    /// request is charged on arrival its prompt tokens (--image-tokens per image,
    /// one per 4 characters of text) plus its max_completion_tokens / max_tokens,
    /// or 1,000 when it sets neither; over the limit the mock answers 429 (type
    /// "tokens") with the wait for that charge, and 400 to a request larger than
    /// the bucket. Unset or 0 = unlimited.
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,

    /// Prompt tokens charged (and reported in usage) per image; the default is
    /// gpt-4o-mini's charge for a low-detail image.
    #[arg(long, value_name = "N", default_value_t = MockConfig::default().image_tokens)]
    pub image_tokens: u64,

    /// Latency added to every answered request (200 or 500), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = MockConfig::default().latency_ms)]
    pub latency_ms: u64,

    /// Share of requests answered with an injected 500 server error (0..=1).
    /// Rolled per (image, labels, attempt): a retry may succeed.
    #[arg(
        long,
        value_name = "SHARE",
        default_value_t = MockConfig::default().error_rate,
        value_parser = parse_share
    )]
    pub error_rate: f64,

    /// How often the answer is the true label (0..=1). Rolled per (image, labels):
    /// a retry gets the same answer. Meaningless without --truth.
    #[arg(
        long,
        value_name = "SHARE",
        default_value_t = MockConfig::default().accuracy,
        value_parser = parse_share
    )]
    pub accuracy: f64,

    /// A fault for drift tests: from 0-based data row ROW on, answer the true label
    /// at ACC instead of --accuracy (e.g. `1000:0.8`).
    #[arg(long, value_name = "ROW:ACC", value_parser = parse_accuracy_drop)]
    pub accuracy_drop_at: Option<AccuracyDrop>,

    /// Seed of every answer and injected fault.
    #[arg(long, default_value_t = MockConfig::default().seed)]
    pub seed: u64,

    /// Labels CSV giving the true labels of the images (the mock answers them at
    /// --accuracy).
    #[arg(long, value_name = "CSV")]
    pub truth: Option<PathBuf>,

    /// On 429 send only retry-after / retry-after-ms, and never any
    /// x-ratelimit-* header.
    #[arg(long)]
    pub no_ratelimit_headers: bool,

    /// Require this key, in each dialect's own header (authorization: Bearer for
    /// OpenAI, x-api-key for Anthropic, x-goog-api-key for Gemini, api-key for
    /// Azure); other requests get 401 (Gemini: 400 API_KEY_INVALID). The key is
    /// never logged or echoed.
    #[arg(long, value_name = "KEY")]
    pub require_key: Option<String>,

    /// After this many 200 answers, every request gets 429 insufficient_quota.
    #[arg(long, value_name = "N")]
    pub quota: Option<u64>,

    /// Share of 200 answers whose content is not valid JSON (0..=1). Rolled per
    /// (image, labels, attempt).
    #[arg(
        long,
        value_name = "SHARE",
        default_value_t = MockConfig::default().malformed_rate,
        value_parser = parse_share
    )]
    pub malformed_rate: f64,

    /// Extra latency of straggler requests, in milliseconds (see --slow-every).
    #[arg(long, value_name = "MS", default_value_t = MockConfig::default().slow_ms)]
    pub slow_ms: u64,

    /// Make one image in N (chosen by its seeded content hash) a straggler that
    /// waits --slow-ms more; 0 = off.
    #[arg(long, value_name = "N", default_value_t = MockConfig::default().slow_every)]
    pub slow_every: u64,

    /// Share of images the model refuses (0..=1), in each dialect's words: an
    /// OpenAI refusal, Anthropic's stop_reason refusal, Gemini's finishReason
    /// SAFETY, Azure's content filter. Rolled per (image, labels).
    #[arg(
        long,
        value_name = "SHARE",
        default_value_t = MockConfig::default().refusal_rate,
        value_parser = parse_share
    )]
    pub refusal_rate: f64,

    /// How the OpenAI-compatible route (/v1/chat/completions) behaves: openai, or
    /// ollama (like a local server: a json_schema response_format and remote
    /// image URLs get 400; json_object and plain text are answered). The
    /// Anthropic, Gemini and Azure routes always speak their own dialect.
    #[arg(long, value_enum, default_value = "openai")]
    pub dialect: DialectArg,

    /// How far the log-probabilities the mock gives overstate its accuracy
    /// (0..=1): 0 = calibrated (of the answers given confidence c, a share c
    /// agree with the true label), 1 = every answer given as certain. Read by
    /// the OpenAI, Azure and Gemini routes when a request asks for
    /// log-probabilities.
    #[arg(
        long,
        value_name = "SHARE",
        default_value_t = MockConfig::default().overconfidence,
        value_parser = parse_share,
        help_heading = "Mock confidence"
    )]
    pub overconfidence: f64,

    /// Answer every request that asks for log-probabilities with a 400 saying
    /// the model does not give them (as OpenAI's reasoning models do).
    #[arg(long, help_heading = "Mock confidence")]
    pub refuse_logprobs: bool,

    /// Batch API: how long a batch takes from creation to completed, in ms.
    #[arg(long, value_name = "MS", default_value_t = MockConfig::default().batch_ms)]
    pub batch_ms: u64,

    /// Batch API: the first N batches created expire, having run every other line.
    #[arg(long, value_name = "N", default_value_t = MockConfig::default().batch_expire)]
    pub batch_expire: u64,

    /// Batch API: the first N batches created (after those that expire) fail
    /// validation.
    #[arg(long, value_name = "N", default_value_t = MockConfig::default().batch_fail)]
    pub batch_fail: u64,

    /// Batch API: answer each create this late (the batch exists meanwhile), in ms.
    #[arg(long, value_name = "MS", default_value_t = MockConfig::default().batch_create_delay_ms)]
    pub batch_create_delay_ms: u64,

    /// Batch API: serve result files 10 lines at a time, this long apart, in ms.
    #[arg(long, value_name = "MS", default_value_t = MockConfig::default().batch_download_delay_ms)]
    pub batch_download_delay_ms: u64,

    /// Batch API: answer each upload this late (the file exists meanwhile), in ms.
    #[arg(long, value_name = "MS", default_value_t = MockConfig::default().batch_upload_delay_ms)]
    pub batch_upload_delay_ms: u64,
}

/// `--dialect` of the mock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DialectArg {
    /// OpenAI's chat completions, with structured output.
    Openai,
    /// A local server such as Ollama: no JSON-schema output, no remote images.
    Ollama,
}

impl From<MockArgs> for MockConfig {
    fn from(a: MockArgs) -> MockConfig {
        MockConfig {
            port: a.port,
            rpm: a.rpm,
            tpm: a.tpm,
            image_tokens: a.image_tokens,
            latency_ms: a.latency_ms,
            error_rate: a.error_rate,
            accuracy: a.accuracy,
            accuracy_drop: a.accuracy_drop_at,
            seed: a.seed,
            truth: a.truth,
            no_ratelimit_headers: a.no_ratelimit_headers,
            require_key: a.require_key,
            quota: a.quota,
            malformed_rate: a.malformed_rate,
            slow_ms: a.slow_ms,
            slow_every: a.slow_every,
            refusal_rate: a.refusal_rate,
            dialect: match a.dialect {
                DialectArg::Openai => OpenAiDialect::OpenAi,
                DialectArg::Ollama => OpenAiDialect::Ollama,
            },
            overconfidence: a.overconfidence,
            refuse_logprobs: a.refuse_logprobs,
            batch_ms: a.batch_ms,
            batch_expire: a.batch_expire,
            batch_fail: a.batch_fail,
            batch_create_delay_ms: a.batch_create_delay_ms,
            batch_download_delay_ms: a.batch_download_delay_ms,
            batch_upload_delay_ms: a.batch_upload_delay_ms,
        }
    }
}

/// `ROW:ACC`, e.g. `1000:0.8`.
pub(super) fn parse_accuracy_drop(s: &str) -> Result<AccuracyDrop, String> {
    let (row, accuracy) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not ROW:ACC (e.g. 1000:0.8)"))?;
    let from_row = row
        .trim()
        .parse()
        .map_err(|_| format!("`{row}` in `{s}` is not a row number (0-based)"))?;
    Ok(AccuracyDrop {
        from_row,
        accuracy: parse_share(accuracy)?,
    })
}

impl super::RunArgs {
    /// The built-in mock of a run: the `--mock-*` flags, the run's seed, any free
    /// port, the rest `MockConfig::default()`'s.
    pub fn builtin_mock(&self) -> MockConfig {
        MockConfig {
            port: 0,
            rpm: self.mock_rpm,
            latency_ms: self.mock_latency_ms,
            error_rate: self.mock_error_rate,
            accuracy: self.mock_accuracy,
            accuracy_drop: self.mock_accuracy_drop_at,
            seed: self.seed,
            overconfidence: self.mock_overconfidence,
            ..MockConfig::default()
        }
    }
}
