//! Run settings: everything the engine decides with, and nothing secret.

use serde::{Deserialize, Serialize};

use crate::input::ColumnNames;
use crate::provider::{ImageDetail, OpenAiConfig, Provider};

/// How a run paces, retries and batches. Serialized into every report, so it must
/// never hold a secret (the API key stays with the host).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunConfig {
    /// Identifies the run and its files: its start time, `2025-01-24T10-30-00-000Z`.
    pub run_id: String,
    /// The labels CSV as the user named it (shown in reports only).
    pub csv_path: String,
    /// The CSV's columns, when they were named rather than found by their common
    /// names: a resumed run reads the CSV the same way. Left out of reports when
    /// not named.
    #[serde(skip_serializing_if = "ColumnNames::is_default")]
    pub columns: ColumnNames,
    /// Items per batch report. Default 50.
    pub batch_size: usize,
    /// Minimum time between two request starts, in ms. Default 0.
    pub delay_ms: u64,
    /// Retries after the first attempt, for retryable failures. Default 5.
    pub max_retries: u32,
    /// Retries after a 429 (rate limited), counted apart from `max_retries`: an
    /// endpoint saying "later" is no fault of the item. Default 20.
    pub max_rate_limit_retries: u32,
    /// Most requests in flight at once. Default 8.
    pub concurrency: usize,
    /// Halve the in-flight limit on 429 and grow it back by one per window of
    /// successes (AIMD), between 1 and `concurrency`. Default on.
    pub adaptive_concurrency: bool,
    /// Cap on request starts per minute, spread evenly. Default none: pacing then
    /// follows the endpoint's `x-ratelimit-limit-requests`.
    pub rpm: Option<u32>,
    /// Per-request timeout the host applies, in ms. Default 60 000.
    pub request_timeout_ms: u64,
    /// First backoff wait when the endpoint gives no retry-after, in ms. Default 500.
    pub backoff_initial_ms: u64,
    /// Longest backoff wait, in ms. Default 30 000.
    pub backoff_max_ms: u64,
    /// Longest wait honoured from a `retry-after`; longer values are cut to this.
    /// Default 600 000 (10 minutes).
    pub max_retry_wait_ms: u64,
    /// Stop the run (`aborted`, resumable) when no request has had a 2xx answer for
    /// this long while requests keep failing (at least 20 in a row): the endpoint is
    /// down, hangs, or rate-limits forever. 0 = never. Default 600 000 (10 minutes).
    pub abort_after_failing_ms: u64,
    /// After `Cancel`, how long requests in flight may still answer before they are
    /// abandoned (their items left for resume). Default 10 000.
    pub cancel_grace_ms: u64,
    /// Seed of the backoff jitter: the same inputs give the same run.
    pub seed: u64,
    /// The endpoint family and its settings.
    pub provider: Provider,
    /// Who answers, as reports name it: `mock` when the predictions are simulated.
    /// A resumed run keeps it.
    pub provider_label: EndpointKind,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            run_id: String::new(),
            csv_path: String::new(),
            columns: ColumnNames::default(),
            batch_size: 50,
            delay_ms: 0,
            max_retries: 5,
            max_rate_limit_retries: 20,
            concurrency: 8,
            adaptive_concurrency: true,
            rpm: None,
            request_timeout_ms: 60_000,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            max_retry_wait_ms: 600_000,
            abort_after_failing_ms: 600_000,
            cancel_grace_ms: 10_000,
            seed: 42,
            provider: Provider::OpenAi(OpenAiConfig {
                base_url: "https://api.openai.com/v1".into(),
                model: "gpt-4o-mini".into(),
                detail: ImageDetail::Low,
                prompt: None,
            }),
            provider_label: EndpointKind::Openai,
        }
    }
}

/// Who answers a run's requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    /// An OpenAI-compatible chat-completions endpoint.
    #[default]
    Openai,
    /// A generic JSON endpoint (the user's own model service).
    Http,
    /// The built-in mock endpoint: simulated predictions.
    Mock,
}

impl EndpointKind {
    /// `openai`, `http` or `mock`, as reports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Openai => "openai",
            EndpointKind::Http => "http",
            EndpointKind::Mock => "mock",
        }
    }
}

/// A setting that cannot work. The caller's mistake, reported before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `batch_size` was 0.
    #[error("batch size must be at least 1")]
    BatchSize,
    /// `concurrency` was 0.
    #[error("concurrency must be at least 1")]
    Concurrency,
    /// `rpm` was 0.
    #[error("requests per minute must be at least 1 (leave it unset for no cap)")]
    Rpm,
    /// `max_retries` over 100 or `max_rate_limit_retries` over 1000.
    #[error("max retries {0} is too many; use at most 100 (1000 for rate-limited answers)")]
    MaxRetries(u32),
    /// `request_timeout_ms` was 0.
    #[error("request timeout must be more than 0 ms")]
    Timeout,
}

impl RunConfig {
    /// Checks the settings; the engine refuses to start with a bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.batch_size == 0 {
            return Err(ConfigError::BatchSize);
        }
        if self.concurrency == 0 {
            return Err(ConfigError::Concurrency);
        }
        if self.rpm == Some(0) {
            return Err(ConfigError::Rpm);
        }
        if self.max_retries > 100 || self.max_rate_limit_retries > 1000 {
            return Err(ConfigError::MaxRetries(
                self.max_retries.max(self.max_rate_limit_retries),
            ));
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::Timeout);
        }
        Ok(())
    }
}
