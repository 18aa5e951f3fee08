//! Run settings: everything the engine decides with, and nothing secret.

use serde::{Deserialize, Serialize};

use crate::input::ColumnNames;
use crate::provider::{
    AnthropicConfig, AzureConfig, BatchLimits, GeminiConfig, ImageDetail, OpenAiConfig,
    OutputFormat, Provider,
};

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
    /// A fixed cap on requests in flight, for endpoints that limit concurrent
    /// requests. Default none: the limit is found from the pace (rate × latency)
    /// and the endpoint's answers, up to `max_concurrency`.
    pub concurrency: Option<usize>,
    /// The most requests in flight a found limit may reach. Default 256.
    pub max_concurrency: usize,
    /// Halve the in-flight limit on 429 and grow it back on success (AIMD); the
    /// found limit also follows the pace and latency. Off: the limit stays at
    /// `concurrency`, else `max_concurrency`. Default on.
    pub adaptive_concurrency: bool,
    /// Cap on request starts per minute, spread evenly. Default none: pacing then
    /// follows the endpoint's `x-ratelimit-limit-requests`.
    pub rpm: Option<u32>,
    /// Cap on tokens per minute: starts are spaced by what each is charged (its
    /// prompt and `max_tokens`). Default none: the endpoint's token-limit headers
    /// are followed when it sends them.
    pub tpm: Option<u64>,
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
    /// The model's price, for the cost in the summary; when unset, the built-in
    /// list price of a well-known model is used, else no money figure is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<crate::cost::Price>,
    /// Who answers, as reports name it: `mock` when the predictions are simulated.
    /// A resumed run keeps it.
    pub provider_label: EndpointKind,
    /// Send the requests through the provider's batch API instead of one by one
    /// ([`crate::batch::BatchRun`]); `None` (the default) for a live run. A
    /// resumed run keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_api: Option<BatchApiConfig>,
    /// The answer form the run fell back to when the endpoint refused the richer
    /// ones ([`OutputFormat`]), and the endpoint that refused them. Set by the run
    /// itself; a resumed run against the same endpoint starts from this form
    /// rather than being refused again. Left out of reports when there was none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_fallback: Option<FormatFallback>,
    /// Ask the endpoint for log-probabilities, for each answer's confidence
    /// ([`crate::confidence`]), where the provider gives them
    /// ([`Provider::gives_logprobs`]). Default on; left out of reports when on.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub confidence: bool,
    /// The endpoint that refused log-probabilities (as reports show its URL):
    /// set by the run itself, so that a resumed run against the same endpoint
    /// does not ask again. Left out of reports when there was none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_refused_by: Option<String>,
    /// The agreement with the labels the model must reach on the answers it
    /// would take over: the summary gives the lowest confidence that reaches it
    /// and the share of rows it takes ([`crate::eval::calibration::AtTarget`]).
    /// In `(0, 1]`; `None` (the default) for none. Left out of reports when
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_agreement: Option<f64>,
    /// The host downloads `http(s)` images and sends them inline, for endpoints
    /// that refuse remote image URLs (Ollama). The engine does not read it: it is
    /// kept so that a resumed run does the same. Left out of reports when off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline_images: bool,
    /// Requirements the run's verdict must meet ([`crate::gate`]), judged against
    /// the summary once every row is final. The engine does not read them: a host
    /// judges the summary; they are kept so that a resumed run is judged the same.
    /// Left out of reports when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gate: Vec<crate::gate::Requirement>,
    /// The seeded random sample of rows the run is made of (`--sample`): the
    /// host draws it ([`crate::sample`]) and hands the run those rows; kept so
    /// that a resumed run rebuilds the same one. Left out when the run is over
    /// the whole CSV in file order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<crate::sample::Sample>,
    /// Stop (`completed`, reason `precision reached`) after the first batch at
    /// which the agreement's anytime-valid 95% interval ([`crate::anytime`],
    /// without replacement over the CSV's rows) is at most ± this, in
    /// `(0, 0.5)`. The host sends the rows in a seeded random order
    /// ([`RunConfig::sample`]). Left out when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_interval: Option<f64>,
}

impl RunConfig {
    /// Whether this run's answers will carry a confidence, as its settings say
    /// before the first request.
    pub fn confidence_availability(&self) -> crate::confidence::Availability {
        use crate::confidence::Availability;
        let provider = &self.provider;
        if !self.confidence {
            Availability::TurnedOff
        } else if matches!(provider, Provider::Anthropic(_) | Provider::HttpJson(_)) {
            Availability::ProviderGivesNone
        } else if !provider.gives_logprobs() {
            Availability::ReasoningModel
        } else if self.batch_api.is_some() {
            Availability::BatchApi
        } else if self.confidence_refused_by.as_deref() == Some(provider.endpoint_url().as_str()) {
            Availability::Refused
        } else {
            Availability::Asked
        }
    }
}

fn yes() -> bool {
    true
}

fn is_yes(value: &bool) -> bool {
    *value
}

/// An answer form an endpoint was found to need ([`RunConfig::format_fallback`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormatFallback {
    /// The endpoint that refused the richer forms, as reports show its URL
    /// ([`Provider::endpoint_url`] of the shown settings).
    pub endpoint: String,
    /// The form requests ask for since.
    pub format: OutputFormat,
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
            concurrency: None,
            max_concurrency: 256,
            adaptive_concurrency: true,
            rpm: None,
            tpm: None,
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
                detail: ImageDetail::default(),
                prompt: None,
            }),
            provider_label: EndpointKind::Openai,
            price: None,
            batch_api: None,
            format_fallback: None,
            confidence: true,
            confidence_refused_by: None,
            target_agreement: None,
            inline_images: false,
            gate: Vec::new(),
            sample: None,
            until_interval: None,
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
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API.
    Gemini,
    /// An Azure OpenAI resource.
    Azure,
}

impl EndpointKind {
    /// The settings a run against this kind of endpoint starts from: the public
    /// API and its default model (OpenAI's as in [`RunConfig::default`]); for Azure,
    /// no resource and no deployment (they are the user's) and the version-less
    /// path. `None` for the generic JSON endpoint (it has no default) and the mock
    /// (its address is the host's).
    pub fn default_provider(self) -> Option<Provider> {
        match self {
            EndpointKind::Openai => Some(RunConfig::default().provider),
            EndpointKind::Anthropic => Some(Provider::Anthropic(AnthropicConfig::default())),
            EndpointKind::Gemini => Some(Provider::Gemini(GeminiConfig::default())),
            EndpointKind::Azure => Some(Provider::Azure(AzureConfig {
                base_url: String::new(),
                deployment: String::new(),
                api_version: None,
                detail: ImageDetail::default(),
                prompt: None,
            })),
            EndpointKind::Http | EndpointKind::Mock => None,
        }
    }

    /// `openai`, `http`, `mock`, `anthropic`, `gemini` or `azure`, as reports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Openai => "openai",
            EndpointKind::Http => "http",
            EndpointKind::Mock => "mock",
            EndpointKind::Anthropic => "anthropic",
            EndpointKind::Gemini => "gemini",
            EndpointKind::Azure => "azure",
        }
    }
}

/// A numeric setting of [`RunConfig`], for naming it in errors and for showing its
/// allowed range (the CLI's `--help`, the page's form limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Setting {
    /// [`RunConfig::batch_size`].
    BatchSize,
    /// [`RunConfig::delay_ms`].
    DelayMs,
    /// [`RunConfig::max_retries`].
    MaxRetries,
    /// [`RunConfig::max_rate_limit_retries`].
    MaxRateLimitRetries,
    /// [`RunConfig::concurrency`], when set.
    Concurrency,
    /// [`RunConfig::max_concurrency`].
    MaxConcurrency,
    /// [`RunConfig::rpm`], when set.
    Rpm,
    /// [`RunConfig::tpm`], when set.
    Tpm,
    /// [`RunConfig::request_timeout_ms`].
    RequestTimeoutMs,
    /// [`RunConfig::backoff_initial_ms`].
    BackoffInitialMs,
    /// [`RunConfig::backoff_max_ms`].
    BackoffMaxMs,
    /// [`RunConfig::max_retry_wait_ms`].
    MaxRetryWaitMs,
    /// [`RunConfig::abort_after_failing_ms`] (0 = never).
    AbortAfterFailingMs,
    /// [`RunConfig::cancel_grace_ms`].
    CancelGraceMs,
}

impl Setting {
    /// Every numeric setting, in the order of [`RunConfig`]'s fields.
    pub const ALL: [Setting; 14] = [
        Setting::BatchSize,
        Setting::DelayMs,
        Setting::MaxRetries,
        Setting::MaxRateLimitRetries,
        Setting::Concurrency,
        Setting::MaxConcurrency,
        Setting::Rpm,
        Setting::Tpm,
        Setting::RequestTimeoutMs,
        Setting::BackoffInitialMs,
        Setting::BackoffMaxMs,
        Setting::MaxRetryWaitMs,
        Setting::AbortAfterFailingMs,
        Setting::CancelGraceMs,
    ];

    /// The allowed values, inclusive. Upper bounds keep every setting far from what
    /// would exhaust memory or overflow a time (the engine sizes tables from
    /// `concurrency`), while leaving room for any real endpoint: 1,024 requests in
    /// flight, a million a minute, an hour per request.
    pub fn bounds(self) -> (u64, u64) {
        match self {
            Setting::BatchSize => (1, 100_000),
            Setting::DelayMs => (0, HOUR_MS),
            Setting::MaxRetries => (0, 100),
            Setting::MaxRateLimitRetries => (0, 1_000),
            Setting::Concurrency | Setting::MaxConcurrency => (1, 1_024),
            Setting::Rpm => (1, 1_000_000),
            Setting::Tpm => (1, 10_000_000_000),
            Setting::RequestTimeoutMs => (1, HOUR_MS),
            Setting::BackoffInitialMs => (1, HOUR_MS),
            Setting::BackoffMaxMs => (1, HOUR_MS),
            Setting::MaxRetryWaitMs => (0, 24 * HOUR_MS),
            Setting::AbortAfterFailingMs => (0, 7 * 24 * HOUR_MS),
            Setting::CancelGraceMs => (0, HOUR_MS),
        }
    }

    /// The field's name in the JSON config (`batchSize`, `requestTimeoutMs`...).
    pub fn field(self) -> &'static str {
        match self {
            Setting::BatchSize => "batchSize",
            Setting::DelayMs => "delayMs",
            Setting::MaxRetries => "maxRetries",
            Setting::MaxRateLimitRetries => "maxRateLimitRetries",
            Setting::Concurrency => "concurrency",
            Setting::MaxConcurrency => "maxConcurrency",
            Setting::Rpm => "rpm",
            Setting::Tpm => "tpm",
            Setting::RequestTimeoutMs => "requestTimeoutMs",
            Setting::BackoffInitialMs => "backoffInitialMs",
            Setting::BackoffMaxMs => "backoffMaxMs",
            Setting::MaxRetryWaitMs => "maxRetryWaitMs",
            Setting::AbortAfterFailingMs => "abortAfterFailingMs",
            Setting::CancelGraceMs => "cancelGraceMs",
        }
    }

    /// Whether the value is a time in milliseconds.
    pub fn is_millis(self) -> bool {
        self.field().ends_with("Ms")
    }

    /// The setting's value in `config`; `None` when it is unset (`rpm`, `tpm`,
    /// `concurrency`).
    pub fn value(self, config: &RunConfig) -> Option<u64> {
        let count = |n: usize| n as u64;
        Some(match self {
            Setting::BatchSize => count(config.batch_size),
            Setting::DelayMs => config.delay_ms,
            Setting::MaxRetries => u64::from(config.max_retries),
            Setting::MaxRateLimitRetries => u64::from(config.max_rate_limit_retries),
            Setting::Concurrency => count(config.concurrency?),
            Setting::MaxConcurrency => count(config.max_concurrency),
            Setting::Rpm => u64::from(config.rpm?),
            Setting::Tpm => config.tpm?,
            Setting::RequestTimeoutMs => config.request_timeout_ms,
            Setting::BackoffInitialMs => config.backoff_initial_ms,
            Setting::BackoffMaxMs => config.backoff_max_ms,
            Setting::MaxRetryWaitMs => config.max_retry_wait_ms,
            Setting::AbortAfterFailingMs => config.abort_after_failing_ms,
            Setting::CancelGraceMs => config.cancel_grace_ms,
        })
    }
}

/// A setting that cannot work. The caller's mistake, reported before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A numeric setting outside [`Setting::bounds`].
    #[error("{} is {value}{unit}; it must be between {min}{unit} and {max}{unit}", setting.field(), unit = if setting.is_millis() { " ms" } else { "" })]
    OutOfRange {
        /// Which setting.
        setting: Setting,
        /// The value given.
        value: u64,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
    },
    /// A price that is negative, not a number, or over 10,000 per million tokens.
    #[error("a price per million tokens must be a number from 0 to 10000")]
    Price,
    /// Batch-API mode with a provider that has no batch API shadow-batch speaks.
    #[error("the {provider} provider has no batch API shadow-batch speaks; batch-API mode needs OpenAI's Batch API (or an OpenAI-compatible endpoint with /v1/files and /v1/batches), Azure OpenAI's global batch, Anthropic's Message Batches or Gemini Batch Mode")]
    NoBatchApi {
        /// The provider, as reports name it.
        provider: String,
    },
    /// A setting of batch-API mode outside its range.
    #[error("batchApi.{setting} is {value}; it must be between {min} and {max}")]
    BatchApi {
        /// The setting.
        setting: BatchSetting,
        /// The value given.
        value: u64,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
    },
}

/// Settings of batch-API mode ([`RunConfig::batch_api`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BatchApiConfig {
    /// Most lines (requests) in one shard. Default and most: the provider's
    /// limit ([`Provider::batch_api`]): 50,000 for OpenAI (per input file),
    /// 100,000 for Azure OpenAI (per input file), Anthropic (per Message Batch)
    /// and Gemini (shadow-batch's own cut: Google states none).
    pub max_lines: usize,
    /// Most bytes in one shard: of its input file for OpenAI and Azure OpenAI
    /// (default and most 200,000,000) and Gemini (2,000,000,000), of its create
    /// request for Anthropic (256,000,000).
    pub max_bytes: u64,
    /// First wait before reading a batch's status, in ms. Default 5,000.
    pub poll_min_ms: u64,
    /// Longest wait between two reads of a batch's status, in ms. Default 60,000.
    pub poll_max_ms: u64,
    /// Keep the run's files at the provider (input files, and output and error
    /// files once read) instead of deleting them when their batch is done.
    /// Default false.
    #[serde(skip_serializing_if = "is_false")]
    pub keep_files: bool,
    /// Gemini only: a shard whose create request, with its requests inline,
    /// would be at most this many bytes goes inline (no upload, results read
    /// from the finished batch); a larger one is uploaded as a file. Default
    /// and most [`BatchApiConfig::GEMINI_INLINE_MAX_BYTES`]; 0: always a file.
    #[serde(skip_serializing_if = "is_default_inline")]
    pub inline_max_bytes: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_default_inline(bytes: &u64) -> bool {
    *bytes == BatchApiConfig::GEMINI_INLINE_MAX_BYTES
}

impl Default for BatchApiConfig {
    fn default() -> Self {
        BatchApiConfig {
            max_lines: 50_000,
            max_bytes: 200_000_000,
            poll_min_ms: 5_000,
            poll_max_ms: 60_000,
            keep_files: false,
            inline_max_bytes: BatchApiConfig::GEMINI_INLINE_MAX_BYTES,
        }
    }
}

const HOUR_MS: u64 = 3_600_000;

impl BatchApiConfig {
    /// Google takes a Gemini batch's requests inline in a create request of
    /// less than 20 MB ("Batch Mode" guide, ai.google.dev); shadow-batch keeps
    /// a margin of over 1 MB below it (below 20,000,000 and 20 MiB both).
    pub const GEMINI_INLINE_MAX_BYTES: u64 = 19_000_000;

    /// The defaults for `provider`: shards as large as its batch API takes.
    pub fn for_provider(provider: &Provider) -> BatchApiConfig {
        let limits = provider.batch_api().unwrap_or(BatchLimits::OPENAI);
        BatchApiConfig {
            max_lines: limits.max_lines,
            max_bytes: limits.max_bytes,
            ..BatchApiConfig::default()
        }
    }

    /// Checks every field against its range, for OpenAI's limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_within(BatchLimits::OPENAI)
    }

    /// Checks every field against its range, for `provider`'s limits.
    pub fn validate_for(&self, provider: &Provider) -> Result<(), ConfigError> {
        self.validate_within(provider.batch_api().unwrap_or(BatchLimits::OPENAI))
    }

    fn validate_within(&self, most: BatchLimits) -> Result<(), ConfigError> {
        let check = |setting: BatchSetting, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::BatchApi {
                    setting,
                    value,
                    min,
                    max,
                })
            }
        };
        let lines = self.max_lines as u64;
        check(BatchSetting::MaxLines, lines, 1, most.max_lines as u64)?;
        check(
            BatchSetting::MaxBytes,
            self.max_bytes,
            1_000,
            most.max_bytes,
        )?;
        check(BatchSetting::PollMinMs, self.poll_min_ms, 1, HOUR_MS)?;
        check(
            BatchSetting::InlineMaxBytes,
            self.inline_max_bytes,
            0,
            BatchApiConfig::GEMINI_INLINE_MAX_BYTES,
        )?;
        check(
            BatchSetting::PollMaxMs,
            self.poll_max_ms,
            self.poll_min_ms,
            HOUR_MS,
        )
    }
}

/// A setting of batch-API mode ([`BatchApiConfig`]), for naming it in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum BatchSetting {
    /// [`BatchApiConfig::max_lines`].
    MaxLines,
    /// [`BatchApiConfig::max_bytes`].
    MaxBytes,
    /// [`BatchApiConfig::inline_max_bytes`].
    InlineMaxBytes,
    /// [`BatchApiConfig::poll_min_ms`].
    PollMinMs,
    /// [`BatchApiConfig::poll_max_ms`].
    PollMaxMs,
}

impl BatchSetting {
    /// The field's name in JSON (`maxLines`, ...).
    pub fn json_name(self) -> &'static str {
        match self {
            BatchSetting::MaxLines => "maxLines",
            BatchSetting::MaxBytes => "maxBytes",
            BatchSetting::InlineMaxBytes => "inlineMaxBytes",
            BatchSetting::PollMinMs => "pollMinMs",
            BatchSetting::PollMaxMs => "pollMaxMs",
        }
    }
}

impl std::fmt::Display for BatchSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.json_name())
    }
}

impl RunConfig {
    /// The most requests that can ever be in flight: `concurrency` when given,
    /// else `max_concurrency`. Hosts size connection pools and read-ahead by it.
    pub fn in_flight_cap(&self) -> usize {
        self.concurrency.unwrap_or(self.max_concurrency)
    }

    /// Checks the settings; the engine refuses to start with a bad one, and a host
    /// should check before it sizes anything from them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for setting in Setting::ALL {
            let (min, max) = setting.bounds();
            if let Some(value) = setting.value(self).filter(|v| !(min..=max).contains(v)) {
                return Err(ConfigError::OutOfRange {
                    setting,
                    value,
                    min,
                    max,
                });
            }
        }
        if self.price.is_some_and(|p| !p.is_valid()) {
            return Err(ConfigError::Price);
        }
        if let Some(batch) = &self.batch_api {
            batch.validate_for(&self.provider)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One default image detail: the level's own default is what a run sends,
    /// the cheapest (the CLI's `--detail` default reads it too).
    #[test]
    fn a_run_sends_the_image_details_own_default_the_cheapest() {
        assert_eq!(ImageDetail::default(), ImageDetail::Low);
        let Provider::OpenAi(openai) = RunConfig::default().provider else {
            panic!("the default provider is OpenAI");
        };
        assert_eq!(openai.detail, ImageDetail::default());
        let Some(Provider::Azure(azure)) = EndpointKind::Azure.default_provider() else {
            panic!("Azure has a default provider");
        };
        assert_eq!(azure.detail, ImageDetail::default());
    }

    #[test]
    fn a_batch_setting_out_of_range_is_named_by_its_setting_and_json_name() {
        let anthropic = Provider::Anthropic(AnthropicConfig::default());
        let too_many = BatchApiConfig {
            max_lines: 100_001,
            ..BatchApiConfig::for_provider(&anthropic)
        };
        let err = too_many.validate_for(&anthropic).unwrap_err();
        assert_eq!(
            err,
            ConfigError::BatchApi {
                setting: BatchSetting::MaxLines,
                value: 100_001,
                min: 1,
                max: 100_000
            }
        );
        assert_eq!(
            err.to_string(),
            "batchApi.maxLines is 100001; it must be between 1 and 100000"
        );
        let polls = BatchApiConfig {
            poll_min_ms: 10_000,
            poll_max_ms: 5_000,
            ..BatchApiConfig::default()
        };
        assert!(matches!(
            polls.validate(),
            Err(ConfigError::BatchApi {
                setting: BatchSetting::PollMaxMs,
                ..
            })
        ));
        assert_eq!(
            Provider::Gemini(GeminiConfig::default()).batch_api(),
            Some(BatchLimits::GEMINI)
        );
        assert_eq!(anthropic.batch_api(), Some(BatchLimits::ANTHROPIC));
    }

    #[test]
    fn defaults_are_within_bounds() {
        RunConfig::default().validate().unwrap();
    }

    #[test]
    fn every_setting_is_refused_just_outside_its_bounds() {
        let set = |config: &mut RunConfig, setting: Setting, v: u64| match setting {
            Setting::BatchSize => config.batch_size = v as usize,
            Setting::DelayMs => config.delay_ms = v,
            Setting::MaxRetries => config.max_retries = v as u32,
            Setting::MaxRateLimitRetries => config.max_rate_limit_retries = v as u32,
            Setting::Concurrency => config.concurrency = Some(v as usize),
            Setting::MaxConcurrency => config.max_concurrency = v as usize,
            Setting::Rpm => config.rpm = Some(v as u32),
            Setting::Tpm => config.tpm = Some(v),
            Setting::RequestTimeoutMs => config.request_timeout_ms = v,
            Setting::BackoffInitialMs => config.backoff_initial_ms = v,
            Setting::BackoffMaxMs => config.backoff_max_ms = v,
            Setting::MaxRetryWaitMs => config.max_retry_wait_ms = v,
            Setting::AbortAfterFailingMs => config.abort_after_failing_ms = v,
            Setting::CancelGraceMs => config.cancel_grace_ms = v,
        };
        for setting in Setting::ALL {
            let (min, max) = setting.bounds();
            for ok in [min, max] {
                let mut config = RunConfig::default();
                set(&mut config, setting, ok);
                assert_eq!(config.validate(), Ok(()), "{setting:?} = {ok}");
                assert_eq!(setting.value(&config), Some(ok));
            }
            let outside = [min.checked_sub(1), Some(max + 1)];
            for bad in outside.into_iter().flatten() {
                let mut config = RunConfig::default();
                set(&mut config, setting, bad);
                let err = config.validate().unwrap_err();
                assert_eq!(
                    err,
                    ConfigError::OutOfRange {
                        setting,
                        value: bad,
                        min,
                        max
                    }
                );
                let text = err.to_string();
                assert!(text.starts_with(setting.field()), "{text}");
                assert!(text.contains(&max.to_string()), "{text}");
            }
        }
        let absurd = RunConfig {
            concurrency: Some(usize::MAX),
            ..RunConfig::default()
        };
        assert_eq!(
            absurd.validate().unwrap_err().to_string(),
            "concurrency is 18446744073709551615; it must be between 1 and 1024"
        );
    }
}
