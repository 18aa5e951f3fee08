//! Providers: how one image becomes one HTTP request, and how the answer becomes a
//! prediction. Pure functions, so the native CLI and the browser speak identically.
//!
//! | provider | request | the label constrained by | key header (added by the host) |
//! |---|---|---|---|
//! | [`Provider::OpenAi`] | `POST {base}/chat/completions` | `response_format` JSON schema | `authorization: Bearer KEY` |
//! | [`Provider::Anthropic`] | `POST {base}/v1/messages` | a forced tool call | `x-api-key: KEY` |
//! | [`Provider::Gemini`] | `POST {base}/models/{model}:generateContent` | `responseSchema` | `x-goog-api-key: KEY` |
//! | [`Provider::Azure`] | `POST {resource}/openai/deployments/{d}/chat/completions?api-version=V` or `{resource}/openai/v1/chat/completions` | `response_format` JSON schema | `api-key: KEY` |
//! | [`Provider::HttpJson`] | `POST {url}` | the labels sent in the body | `authorization: Bearer KEY` |
//!
//! Hosts ask [`Provider::credential_header`] (or [`RequestTemplate::credential_header`])
//! how to send the key, so that no host knows a provider's header; a browser host asks
//! [`Provider::browser_access`] whether the endpoint answers a page's calls (CORS) and
//! what a page must add to them.
//!
//! Here: the settings of each provider and what a run asks of them. Beside it, one
//! idea a file: `template` (the request built once per label set and filled per
//! image), `answer` (errors, model listings, matching an answer to a label),
//! `browser` (CORS), `tokens` (what a request is charged against a token limit),
//! and one file per dialect (`openai`, `anthropic`, `gemini`, `azure`,
//! `http_json`).

mod answer;
mod anthropic;
mod azure;
mod browser;
mod gemini;
mod http_json;
mod image_part;
pub mod image_tokens;
mod logprobs;
mod openai;
mod template;
mod tokens;

use serde::{Deserialize, Serialize};

use crate::cost::Usage;
use crate::input::LabelSet;

pub use anthropic::{
    max_tokens as anthropic_max_tokens, ANTHROPIC_VERSION, TOOL_NAME, TOOL_PROMPT,
};
pub use azure::is_azure_host;

use answer::{api_error_from_value, match_label, single_mention, snippet, truncate, RawUsage};
pub use answer::{check_model_listing, parse_api_error, AnswerError, ApiError, ModelListing};
use browser::is_google_host;
pub(crate) use browser::url_host;
pub use browser::{BrowserAccess, Cors};
pub use logprobs::rejects_logprobs;
pub use template::{RequestInput, RequestTemplate};
pub use tokens::TokenCharge;
pub(crate) use tokens::{answer_token_budget, is_reasoning_model};

/// The endpoint family and its settings. Never holds the API key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Provider {
    /// OpenAI-compatible chat completions.
    #[serde(rename = "openai")]
    OpenAi(OpenAiConfig),
    /// Any JSON endpoint: POST image + labels, read the prediction at a field path.
    #[serde(rename = "http")]
    HttpJson(HttpJsonConfig),
    /// Anthropic's Messages API.
    #[serde(rename = "anthropic")]
    Anthropic(AnthropicConfig),
    /// Google's Gemini API (`generateContent`).
    #[serde(rename = "gemini")]
    Gemini(GeminiConfig),
    /// Azure OpenAI: chat completions at a deployment (or the v1 path).
    #[serde(rename = "azure")]
    Azure(AzureConfig),
}

/// Settings for an OpenAI-compatible chat-completions endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenAiConfig {
    /// Base URL up to and including `/v1`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name, e.g. `gpt-4o-mini`.
    pub model: String,
    /// Image detail level sent with the image.
    pub detail: ImageDetail,
    /// Extra instructions placed before the list of labels; `None` = the built-in prompt.
    #[serde(default)]
    pub prompt: Option<String>,
}

/// Settings for Anthropic's Messages API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnthropicConfig {
    /// Base URL without the version, e.g. `https://api.anthropic.com` (a base ending
    /// in `/v1` or `/v1/messages` is taken too).
    pub base_url: String,
    /// Model name, e.g. `claude-haiku-4-5`.
    pub model: String,
    /// The system prompt; `None` = the built-in one ([`TOOL_PROMPT`]).
    #[serde(default)]
    pub prompt: Option<String>,
}

impl Default for AnthropicConfig {
    /// The public API and [`defaults::ANTHROPIC_MODEL`].
    fn default() -> Self {
        AnthropicConfig {
            base_url: anthropic::DEFAULT_BASE_URL.to_owned(),
            model: anthropic::DEFAULT_MODEL.to_owned(),
            prompt: None,
        }
    }
}

/// Settings for Google's Gemini API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeminiConfig {
    /// Base URL up to the API version, e.g.
    /// `https://generativelanguage.googleapis.com/v1beta` (`/v1beta` is added to a
    /// base without a version).
    pub base_url: String,
    /// Model name, e.g. `gemini-2.5-flash` (or a resource name such as
    /// `tunedModels/x`).
    pub model: String,
    /// The system instruction; `None` = the built-in prompt ([`DEFAULT_PROMPT`]).
    #[serde(default)]
    pub prompt: Option<String>,
}

impl Default for GeminiConfig {
    /// The public API and [`defaults::GEMINI_MODEL`].
    fn default() -> Self {
        GeminiConfig {
            base_url: gemini::DEFAULT_BASE_URL.to_owned(),
            model: gemini::DEFAULT_MODEL.to_owned(),
            prompt: None,
        }
    }
}

/// Settings for an Azure OpenAI resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureConfig {
    /// The resource's root URL, e.g. `https://RES.openai.azure.com`.
    pub base_url: String,
    /// The deployment's name (not the model's, though they are often the same).
    pub deployment: String,
    /// `api-version` of the deployment path, e.g. `2024-10-21`; `None` = the
    /// version-less `/openai/v1/` path.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Image detail level sent with the image.
    pub detail: ImageDetail,
    /// Extra instructions placed before the list of labels; `None` = the built-in prompt.
    #[serde(default)]
    pub prompt: Option<String>,
}

/// The model the built-in mock endpoint serves (`GET /v1/models` lists it) and
/// the hosts ask for when they run against the mock. Written here, once, so that
/// the mock crate and both hosts (the CLI, the page through the wasm face) use the
/// same name without depending on one another.
pub const MOCK_MODEL: &str = "shadow-mock-1";

/// Where each provider's public API is, and the model asked for when none is named:
/// the one place these defaults are written. OpenAI's are in
/// [`crate::RunConfig::default`].
pub mod defaults {
    pub use super::anthropic::{
        DEFAULT_BASE_URL as ANTHROPIC_BASE_URL, DEFAULT_MODEL as ANTHROPIC_MODEL,
    };
    pub use super::gemini::{DEFAULT_BASE_URL as GEMINI_BASE_URL, DEFAULT_MODEL as GEMINI_MODEL};
}

/// OpenAI's image `detail` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ImageDetail {
    /// Let the model decide.
    Auto,
    /// 512x512 low-resolution view: cheapest, and what a run sends unless told
    /// otherwise (one class label rarely needs the tiles).
    #[default]
    Low,
    /// Full detail tiles.
    High,
}

/// How an OpenAI-compatible request (OpenAI, Azure) asks for the form of its
/// answer. A run starts with [`OutputFormat::JsonSchema`] and, when the endpoint
/// refuses that (local servers such as llama.cpp's, older vLLM and Ollama, Azure
/// API versions before 2024-08-01), falls back to [`OutputFormat::JsonObject`], then
/// to [`OutputFormat::Text`] ([`rejects_format`] says when).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum OutputFormat {
    /// `response_format: {"type": "json_schema", ...}` whose schema enumerates the
    /// labels: the model cannot answer anything else.
    #[default]
    JsonSchema,
    /// `response_format: {"type": "json_object"}`: JSON, the labels named only in
    /// the prompt.
    JsonObject,
    /// No `response_format`: the prompt asks for `{"label": ...}`, and the answer's
    /// text is matched to a label (see [`Provider::parse_answer`]).
    Text,
}

impl OutputFormat {
    /// The format to fall back to when the endpoint refuses this one.
    pub fn next(self) -> Option<OutputFormat> {
        match self {
            OutputFormat::JsonSchema => Some(OutputFormat::JsonObject),
            OutputFormat::JsonObject => Some(OutputFormat::Text),
            OutputFormat::Text => None,
        }
    }

    /// `json_schema`, `json_object` or `text`, as the API names them.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::JsonSchema => "json_schema",
            OutputFormat::JsonObject => "json_object",
            OutputFormat::Text => "text",
        }
    }

    fn index(self) -> usize {
        match self {
            OutputFormat::JsonSchema => 0,
            OutputFormat::JsonObject => 1,
            OutputFormat::Text => 2,
        }
    }

    const ALL: [OutputFormat; 3] = [
        OutputFormat::JsonSchema,
        OutputFormat::JsonObject,
        OutputFormat::Text,
    ];
}

/// Whether an error answer says the endpoint refuses the request's `format`: a 400,
/// 422 or 501 whose message (or body) names the response format (`response_format`,
/// `json_schema` or `structured output` for [`OutputFormat::JsonSchema`];
/// `response_format`, `json_object` or `json mode` for [`OutputFormat::JsonObject`]).
/// Never for [`OutputFormat::Text`], which has no fallback.
pub fn rejects_format(response: &crate::http::HttpResponse, format: OutputFormat) -> bool {
    if !matches!(response.status, 400 | 422 | 501) {
        return false;
    }
    let words: &[&str] = match format {
        OutputFormat::JsonSchema => &[
            "response_format",
            "response format",
            "json_schema",
            "structured output",
        ],
        OutputFormat::JsonObject => &[
            "response_format",
            "response format",
            "json_object",
            "json mode",
        ],
        OutputFormat::Text => return false,
    };
    let text = match parse_api_error(&response.body) {
        Some(api) => api.message.to_ascii_lowercase(),
        None => truncate(&response.body, 2000).to_ascii_lowercase(),
    };
    words.iter().any(|w| text.contains(w))
}

/// Settings for a generic JSON endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpJsonConfig {
    /// Absolute URL the request is POSTed to.
    pub url: String,
    /// Dotted path of the prediction in the answer, e.g. `prediction` or
    /// `result.label` or `choices.0.label`.
    pub prediction_field: String,
}

/// A model answer the engine can use.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// Index of the predicted label in the [`crate::input::LabelSet`].
    pub label: usize,
    /// Token usage, when the endpoint reported it.
    pub usage: Option<Usage>,
    /// What the model said, as it said it (its text, or its tool call's input),
    /// at most [`MAX_RAW_ANSWER_CHARS`] characters: the row's evidence.
    pub text: String,
    /// How sure the model is, when its answer carries log-probabilities
    /// ([`crate::confidence`]).
    pub confidence: crate::confidence::Scored,
}

impl Answer {
    pub(crate) fn new(label: usize, usage: Option<Usage>, text: &str) -> Answer {
        Answer {
            label,
            usage,
            text: answer::truncate(text, MAX_RAW_ANSWER_CHARS),
            confidence: crate::confidence::Scored::Unscored,
        }
    }

    pub(crate) fn with_confidence(mut self, confidence: crate::confidence::Scored) -> Answer {
        self.confidence = confidence;
        self
    }
}

/// Longest model answer a result keeps, in characters (a model that explains
/// itself at length is cut, with `…`).
pub const MAX_RAW_ANSWER_CHARS: usize = 1_000;

/// The instructions sent as the system message to an OpenAI-compatible endpoint when
/// [`OpenAiConfig::prompt`] is `None`. The allowed labels follow in the user message.
pub const DEFAULT_PROMPT: &str = "You are an image classifier. Classify the image into \
exactly one of the allowed labels given by the user. Answer only with JSON of the form \
{\"label\": \"<one of the allowed labels, spelled exactly as given>\"}.";

/// Longest echoed model answer kept in an [`AnswerError`], in characters.
const MAX_ANSWER_CHARS: usize = 100;
/// Longest echoed text (refusal, detail, body snippet) kept in an error, in characters.
const MAX_DETAIL_CHARS: usize = 200;
/// Longest [`ApiError::message`], in characters.
const MAX_API_MESSAGE_CHARS: usize = 300;

/// The user-message text that lists the labels, as a JSON array so that labels with
/// quotes, commas or newlines stay unambiguous (the text OpenAI requests carry too).
fn allowed_labels_text(labels: &LabelSet) -> String {
    let list = serde_json::to_string(labels.names()).expect("a list of strings serializes");
    format!("Allowed labels (answer with exactly one of them): {list}")
}

/// How the host sends the API key: which header, and in what form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Credential {
    /// `authorization: Bearer KEY`.
    Bearer,
    /// The key as the whole value of this header.
    Header(&'static str),
}

impl Credential {
    fn header(self, key: &str) -> (&'static str, String) {
        match self {
            Credential::Bearer => ("authorization", format!("Bearer {key}")),
            Credential::Header(name) => (name, key.to_owned()),
        }
    }
}

/// The most requests and bytes one batch of a provider's batch API takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most requests (lines) in one batch.
    pub max_lines: usize,
    /// Most bytes: of the input file (OpenAI), of the create request (Anthropic).
    pub max_bytes: u64,
}

impl BatchLimits {
    /// OpenAI's Batch API: 50,000 requests and 200 MB per input file.
    pub const OPENAI: BatchLimits = BatchLimits {
        max_lines: 50_000,
        max_bytes: 200_000_000,
    };
    /// Anthropic's Message Batches: 100,000 requests and 256 MB per create request.
    pub const ANTHROPIC: BatchLimits = BatchLimits {
        max_lines: 100_000,
        max_bytes: 256_000_000,
    };
    /// Gemini Batch Mode: input files up to 2 GB; Google states no limit of
    /// requests per batch, and shadow-batch cuts shards at 100,000.
    pub const GEMINI: BatchLimits = BatchLimits {
        max_lines: 100_000,
        max_bytes: 2_000_000_000,
    };
    /// Azure OpenAI's global batch: 100,000 requests and 200 MB per input file
    /// (Microsoft Learn, "Global batch limits").
    pub const AZURE: BatchLimits = BatchLimits {
        max_lines: 100_000,
        max_bytes: 200_000_000,
    };
}

impl Provider {
    /// The limits of the provider's batch API that shadow-batch speaks, or `None`
    /// for a provider without one (the generic JSON endpoint).
    pub fn batch_api(&self) -> Option<BatchLimits> {
        match self {
            Provider::OpenAi(_) => Some(BatchLimits::OPENAI),
            Provider::Anthropic(_) => Some(BatchLimits::ANTHROPIC),
            Provider::Azure(_) => Some(BatchLimits::AZURE),
            Provider::Gemini(_) => Some(BatchLimits::GEMINI),
            Provider::HttpJson(_) => None,
        }
    }

    /// The absolute URL requests are POSTed to.
    ///
    /// For OpenAI this is `{base_url}/chat/completions` (trailing `/` of the base URL
    /// ignored); a base URL that already ends in `/chat/completions` is used as it is.
    /// The other providers' forms are in the table of the module docs.
    pub fn endpoint_url(&self) -> String {
        match self {
            Provider::OpenAi(cfg) => openai::endpoint_url(&cfg.base_url),
            Provider::HttpJson(cfg) => cfg.url.clone(),
            Provider::Anthropic(cfg) => anthropic::endpoint_url(&cfg.base_url),
            Provider::Gemini(cfg) => gemini::endpoint_url(&cfg.base_url, &cfg.model),
            Provider::Azure(cfg) => azure::endpoint_url(cfg),
        }
    }

    /// The header that carries the API key, as `(lower-case name, value)`:
    /// `authorization: Bearer KEY` (OpenAI, the generic JSON endpoint), `x-api-key`
    /// (Anthropic), `x-goog-api-key` (Gemini: never the `?key=` query, which logs
    /// keep), `api-key` (Azure). The one answer every host uses.
    pub fn credential_header(&self, key: &str) -> (&'static str, String) {
        self.credential().header(key)
    }

    fn credential(&self) -> Credential {
        match self {
            Provider::OpenAi(_) | Provider::HttpJson(_) => Credential::Bearer,
            Provider::Anthropic(_) => Credential::Header("x-api-key"),
            Provider::Gemini(_) => Credential::Header("x-goog-api-key"),
            Provider::Azure(_) => Credential::Header("api-key"),
        }
    }

    /// The same settings with the URL as it may be shown or saved: no userinfo,
    /// no credential in its query ([`crate::redact::url_for_display`]).
    pub fn for_display(&self) -> Provider {
        let mut shown = self.clone();
        let url = match &mut shown {
            Provider::HttpJson(cfg) => &mut cfg.url,
            Provider::OpenAi(OpenAiConfig { base_url, .. })
            | Provider::Anthropic(AnthropicConfig { base_url, .. })
            | Provider::Gemini(GeminiConfig { base_url, .. })
            | Provider::Azure(AzureConfig { base_url, .. }) => base_url,
        };
        *url = crate::redact::url_for_display(url).into_owned();
        shown
    }

    /// Where an OpenAI-compatible endpoint lists the models it serves (`GET
    /// {base}/models`), for a check before a run; `None` for the other providers
    /// (Azure's list names models, not deployments).
    pub fn models_url(&self) -> Option<String> {
        match self {
            Provider::OpenAi(cfg) => {
                let base = cfg.base_url.trim().trim_end_matches('/');
                let base = base.strip_suffix("/chat/completions").unwrap_or(base);
                Some(format!("{base}/models"))
            }
            _ => None,
        }
    }

    /// Whether the provider's requests fall back to simpler [`OutputFormat`]s when
    /// the endpoint refuses structured output: OpenAI-compatible ones (OpenAI,
    /// Azure).
    pub fn falls_back(&self) -> bool {
        matches!(self, Provider::OpenAi(_) | Provider::Azure(_))
    }

    /// Whether the provider's answers can carry log-probabilities for a
    /// confidence ([`crate::confidence`]): OpenAI-compatible endpoints (OpenAI,
    /// Azure) for models that are not reasoning models (which refuse them), and
    /// Gemini. Not Anthropic (its API has none) nor the generic JSON endpoint. A
    /// model that refuses them anyway is found by the run
    /// ([`rejects_logprobs`]).
    pub fn gives_logprobs(&self) -> bool {
        match self {
            Provider::OpenAi(cfg) => !is_reasoning_model(&cfg.model),
            Provider::Azure(cfg) => !is_reasoning_model(&cfg.deployment),
            Provider::Gemini(_) => true,
            Provider::Anthropic(_) | Provider::HttpJson(_) => false,
        }
    }

    /// The model the requests name, for providers that name one (for Azure, the
    /// deployment).
    pub fn model(&self) -> Option<&str> {
        match self {
            Provider::OpenAi(cfg) => Some(&cfg.model),
            Provider::HttpJson(_) => None,
            Provider::Anthropic(cfg) => Some(&cfg.model),
            Provider::Gemini(cfg) => Some(&cfg.model),
            Provider::Azure(cfg) => Some(&cfg.deployment),
        }
    }

    /// Reads the endpoint's answer (the body of a 2xx response) into a prediction.
    pub fn parse_answer(&self, body: &str, labels: &LabelSet) -> Result<Answer, AnswerError> {
        match self {
            Provider::OpenAi(_) | Provider::Azure(_) => openai::parse_answer(body, labels),
            Provider::HttpJson(cfg) => http_json::parse_answer(body, &cfg.prediction_field, labels),
            Provider::Anthropic(_) => anthropic::parse_answer(body, labels),
            Provider::Gemini(_) => gemini::parse_answer(body, labels),
        }
    }
}

#[cfg(test)]
mod tests;
