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

mod anthropic;
mod azure;
mod gemini;
mod http_json;
mod image_part;
mod openai;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::http::HttpRequest;
use crate::input::LabelSet;
use crate::journal::Usage;

pub use anthropic::{
    max_tokens as anthropic_max_tokens, ANTHROPIC_VERSION, TOOL_NAME, TOOL_PROMPT,
};
pub use azure::is_azure_host;

use image_part::ImagePart;

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
    #[default]
    Auto,
    /// 512x512 low-resolution view: cheapest.
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Index of the predicted label in the [`crate::input::LabelSet`].
    pub label: usize,
    /// Token usage, when the endpoint reported it.
    pub usage: Option<Usage>,
}

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

/// What one request is about: what a provider's body builder needs.
#[derive(Clone, Copy, Debug)]
pub struct RequestInput<'a> {
    /// The image: an `http(s)://` URL or a `data:` URL, passed to the endpoint as it is.
    pub image_url: &'a str,
    /// The labels the model must choose from.
    pub labels: &'a LabelSet,
    /// 1-based attempt number (1 = first try, 2 = first retry, ...).
    pub attempt: u32,
    /// The item's id from the CSV, when it has one (sent by the generic JSON provider only).
    pub item_id: Option<&'a str>,
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

/// The host of `url`, lower-case, without userinfo, port or a trailing dot
/// (`https://user@API.example.com.:443/v1` -> `api.example.com`).
pub(crate) fn url_host(url: &str) -> String {
    let url = url.trim();
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or(after_scheme);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if host_port.starts_with('[') {
        // An IPv6 literal: its port follows the `]`.
        host_port.split_inclusive(']').next().unwrap_or(host_port)
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The public APIs' hosts, for [`Provider::browser_access`].
const OPENAI_HOST: &str = "api.openai.com";
const ANTHROPIC_HOST: &str = "api.anthropic.com";

/// Whether `url` is on one of Google's API hosts (`*.googleapis.com`), whose CORS
/// preflight allows only the headers Google's own clients send.
fn is_google_host(url: &str) -> bool {
    let host = url_host(url);
    host == "googleapis.com" || host.ends_with(".googleapis.com")
}

/// Whether a page in a browser may call an endpoint itself, as far as is known. A
/// browser sends a cross-origin request only when the endpoint allows it: it answers
/// the CORS preflight (`OPTIONS`) for the request's method and headers with
/// `Access-Control-Allow-*`; otherwise `fetch` fails without an answer, as it does
/// when nothing listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Cors {
    /// The provider's public API answers browser calls with this run's requests
    /// (with [`BrowserAccess::headers`] added): OpenAI's `api.openai.com`,
    /// Anthropic's `api.anthropic.com`, Gemini's `generativelanguage.googleapis.com`.
    Allowed,
    /// The provider's public API does not answer browser calls: Azure OpenAI
    /// resources (`*.openai.azure.com`, `*.cognitiveservices.azure.com`). Run from the
    /// native host, or through a proxy that adds CORS.
    Refused,
    /// Another server (a local server, a proxy, the built-in mock, the generic JSON
    /// endpoint): it answers browser calls only if it allows them itself.
    Unknown,
}

/// What a browser host needs to know before it calls an endpoint
/// ([`Provider::browser_access`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrowserAccess {
    /// Whether the endpoint answers a page's calls.
    pub cors: Cors,
    /// Headers a browser adds to every request, besides the request's own and the
    /// credential: `anthropic-dangerous-direct-browser-access: true` for Anthropic,
    /// whose API refuses a call from a page without it (401 "CORS requests must set
    /// 'anthropic-dangerous-direct-browser-access' header"). A native host sends
    /// none of them.
    pub headers: Vec<(String, String)>,
    /// The endpoint's host, e.g. `api.anthropic.com`, for the host's words.
    pub host: String,
}

impl Provider {
    /// Whether a page in a browser may call this endpoint, and what it must add to
    /// each request ([`BrowserAccess`]). Pure: decided from the provider and the
    /// endpoint's host, as these APIs are known to behave:
    ///
    /// - OpenAI's API answers CORS preflights for `authorization`, `content-type` and
    ///   the `x-stainless-*` headers its own browser SDK sends.
    /// - Anthropic's API answers them when the request carries
    ///   `anthropic-dangerous-direct-browser-access: true`, which its TypeScript SDK
    ///   sends with `dangerouslyAllowBrowser` (beside `x-stainless-retry-count`);
    ///   without it, a call from a page is refused with a 401.
    /// - Gemini's API (`generativelanguage.googleapis.com`) answers them for
    ///   `content-type`, `x-goog-api-key`, `x-goog-api-client` and `authorization`
    ///   only: a request with another header (`api-revision` in googleapis/js-genai
    ///   issue 1723) gets a 403 preflight without `Access-Control-Allow-Origin`. So
    ///   requests to a Google host carry no `x-stainless-retry-count`
    ///   ([`RequestTemplate::build_as`]), in every host alike.
    /// - Azure OpenAI resources do not answer them (browser clients report CORS
    ///   errors and route Azure through a server, e.g. lobehub/lobehub issue 2487):
    ///   [`Cors::Refused`].
    ///
    /// Any other host (a local server, a proxy, the mock) is [`Cors::Unknown`]:
    /// the same headers are added, for a proxy that forwards them.
    pub fn browser_access(&self) -> BrowserAccess {
        let url = self.endpoint_url();
        let host = url_host(&url);
        let known = |public: bool, yes: Cors| if public { yes } else { Cors::Unknown };
        let cors = match self {
            Provider::OpenAi(_) => known(host == OPENAI_HOST, Cors::Allowed),
            Provider::Anthropic(_) => known(host == ANTHROPIC_HOST, Cors::Allowed),
            Provider::Gemini(_) => known(is_google_host(&url), Cors::Allowed),
            Provider::Azure(_) => known(is_azure_host(&url), Cors::Refused),
            Provider::HttpJson(_) => Cors::Unknown,
        };
        let headers = match self {
            Provider::Anthropic(_) => vec![(
                "anthropic-dangerous-direct-browser-access".to_owned(),
                "true".to_owned(),
            )],
            _ => Vec::new(),
        };
        BrowserAccess {
            cors,
            headers,
            host,
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
        let shown = |url: &str| crate::redact::url_for_display(url).into_owned();
        match self {
            Provider::OpenAi(cfg) => Provider::OpenAi(OpenAiConfig {
                base_url: shown(&cfg.base_url),
                ..cfg.clone()
            }),
            Provider::HttpJson(cfg) => Provider::HttpJson(HttpJsonConfig {
                url: shown(&cfg.url),
                ..cfg.clone()
            }),
            Provider::Anthropic(cfg) => Provider::Anthropic(AnthropicConfig {
                base_url: shown(&cfg.base_url),
                ..cfg.clone()
            }),
            Provider::Gemini(cfg) => Provider::Gemini(GeminiConfig {
                base_url: shown(&cfg.base_url),
                ..cfg.clone()
            }),
            Provider::Azure(cfg) => Provider::Azure(AzureConfig {
                base_url: shown(&cfg.base_url),
                ..cfg.clone()
            }),
        }
    }

    /// The requests asking the endpoint to classify one image each, for one label
    /// set: the one request builder of every host.
    pub fn request_template(&self, labels: &LabelSet) -> RequestTemplate {
        let whole = |format| TemplateBody::Whole {
            provider: self.clone(),
            labels: labels.clone(),
            format,
        };
        let url_form = ImagePart::Url {
            url: IMAGE_MARK,
            mime: URL_MIME_MARK,
        };
        let inline_form = ImagePart::Inline {
            mime: MIME_MARK,
            data: DATA_MARK.into(),
        };
        let spliced = |build: &dyn Fn(&ImagePart) -> String| {
            Some((
                Spliced::of(&build(&url_form))?,
                Some(Spliced::of(&build(&inline_form))?),
            ))
        };
        let forms = match self {
            Provider::OpenAi(_) | Provider::Azure(_) => {
                let marked = self.whole_body(&RequestInput {
                    image_url: IMAGE_MARK,
                    labels,
                    attempt: 1,
                    item_id: None,
                });
                Spliced::of(&marked).map(|s| (s, None))
            }
            Provider::Anthropic(cfg) => {
                spliced(&|image: &ImagePart| anthropic::build_body(cfg, labels, image))
            }
            Provider::Gemini(cfg) => {
                spliced(&|image: &ImagePart| gemini::build_body(cfg, labels, image))
            }
            Provider::HttpJson(_) => None,
        };
        let mut bodies = vec![match forms {
            Some((url, inline)) => TemplateBody::Spliced { url, inline },
            None => whole(OutputFormat::JsonSchema),
        }];
        if self.falls_back() {
            // The other formats, made from the first's marked text.
            for format in &OutputFormat::ALL[1..] {
                let marked = self.whole_body_as(
                    &RequestInput {
                        image_url: IMAGE_MARK,
                        labels,
                        attempt: 1,
                        item_id: None,
                    },
                    *format,
                );
                bodies.push(match (&bodies[0], Spliced::of(&marked)) {
                    (TemplateBody::Spliced { .. }, Some(url)) => {
                        TemplateBody::Spliced { url, inline: None }
                    }
                    _ => whole(*format),
                });
            }
        }
        let extra_headers = match self {
            Provider::Anthropic(_) => vec![("anthropic-version", ANTHROPIC_VERSION)],
            _ => Vec::new(),
        };
        let url = self.endpoint_url();
        // Google's CORS preflight refuses headers its own clients do not send (see
        // `browser_access`); the attempt header is only information to an endpoint.
        let retry_count_header = !matches!(self, Provider::Gemini(_) if is_google_host(&url));
        RequestTemplate {
            url,
            credential: self.credential(),
            extra_headers,
            retry_count_header,
            bodies,
        }
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

    /// [`Provider::whole_body`] asking for `format` (for providers that
    /// [fall back](Provider::falls_back); the others always ask as they do).
    fn whole_body_as(&self, input: &RequestInput, format: OutputFormat) -> String {
        let body = self.whole_body(input);
        if format == OutputFormat::JsonSchema || !self.falls_back() {
            return body;
        }
        let mut value: serde_json::Value =
            serde_json::from_str(&body).expect("a body the provider built is JSON");
        let object = value.as_object_mut().expect("a chat request is an object");
        match format {
            OutputFormat::JsonObject => {
                object.insert(
                    "response_format".to_owned(),
                    serde_json::json!({ "type": "json_object" }),
                );
            }
            _ => {
                object.remove("response_format");
            }
        }
        value.to_string()
    }

    /// The body of one request, serialized whole (the template's slow way).
    fn whole_body(&self, input: &RequestInput) -> String {
        match self {
            Provider::OpenAi(cfg) => openai::build_body(cfg, input),
            Provider::Azure(cfg) => openai::build_body(&azure::as_openai(cfg), input),
            Provider::HttpJson(_) => http_json::build_body(input),
            Provider::Anthropic(cfg) => {
                anthropic::build_body(cfg, input.labels, &ImagePart::of(input.image_url))
            }
            Provider::Gemini(cfg) => {
                gemini::build_body(cfg, input.labels, &ImagePart::of(input.image_url))
            }
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

/// What one request is charged against a tokens-per-minute limit when the endpoint
/// admits it, before any answer says what it really cost: the prompt (text and
/// image) and the most the answer may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenCharge {
    /// Prompt tokens of one request, from the provider's published image formula;
    /// the run replaces it with what answers' `usage` report.
    pub prompt: u64,
    /// The `max_tokens` the request sends (0 when it sends none).
    pub max_output: u64,
}

/// Published image charges at low detail and at high detail for a 768×768 image
/// (four 512 px tiles, the size of a typical photo after OpenAI's scaling): the
/// engine does not see image sizes, and answers' `usage` corrects the seed.
fn image_tokens(model: &str, detail: ImageDetail) -> u64 {
    let model = model.to_ascii_lowercase();
    // gpt-4o-mini bills ~33x the tiles of gpt-4o, so that an image costs the same.
    let (low, tile) = if model.contains("gpt-4o-mini") {
        (2_833, 5_667)
    } else {
        (85, 170)
    };
    match detail {
        ImageDetail::Low => low,
        ImageDetail::High | ImageDetail::Auto => low + 4 * tile,
    }
}

/// o1, o3, o4-mini, gpt-5...: they reject `max_tokens`, and their reasoning tokens
/// count within `max_completion_tokens`.
pub(crate) fn is_reasoning_model(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or(&m);
    m.starts_with("gpt-5")
        || (m.starts_with('o') && m[1..].starts_with(|c: char| c.is_ascii_digit()))
}

/// The output tokens an answer naming one label may take: the JSON around the
/// label and the label itself at one token per byte (no tokenizer does worse), and
/// for a reasoning model room to think. Small, because endpoints count it against
/// the tokens-per-minute limit when they admit a request.
pub(crate) fn answer_token_budget(labels: &LabelSet, model: &str) -> u32 {
    let longest = labels.names().iter().map(String::len).max().unwrap_or(0);
    let answer = 16 + u32::try_from(longest).unwrap_or(u32::MAX).min(4_096);
    if is_reasoning_model(model) {
        answer + 2_048
    } else {
        answer
    }
}

impl Provider {
    /// What one request is charged at admission against a token limit.
    pub fn token_charge(&self, labels: &LabelSet) -> TokenCharge {
        let list: usize = labels.names().iter().map(|l| l.len() + 3).sum();
        // About four characters a token, plus the message framing.
        let text = |prompt: Option<&str>| {
            ((prompt.unwrap_or(DEFAULT_PROMPT).len() + list + 60) / 4 + 20) as u64
        };
        match self {
            Provider::OpenAi(cfg) => TokenCharge {
                prompt: text(cfg.prompt.as_deref()) + image_tokens(&cfg.model, cfg.detail),
                max_output: u64::from(answer_token_budget(labels, &cfg.model)),
            },
            Provider::Azure(cfg) => {
                // The body is OpenAI's, for a model the deployment's name may tell.
                let openai = azure::as_openai(cfg);
                TokenCharge {
                    prompt: text(cfg.prompt.as_deref()) + image_tokens(&openai.model, cfg.detail),
                    max_output: u64::from(answer_token_budget(labels, &openai.model)),
                }
            }
            // (width × height) / 750 per image, up to ~1,600 for the largest
            // Claude takes; plus the forced tool's definition and system prompt.
            Provider::Anthropic(cfg) => TokenCharge {
                prompt: text(cfg.prompt.as_deref()) + 1_600 + 350,
                max_output: u64::from(anthropic::max_tokens(labels)),
            },
            // 258 tokens per 768 px tile: four for a photo.
            Provider::Gemini(cfg) => TokenCharge {
                prompt: text(cfg.prompt.as_deref()) + 4 * 258,
                max_output: 0,
            },
            // Its own service: nothing known until its answers or headers say so.
            Provider::HttpJson(_) => TokenCharge {
                prompt: 0,
                max_output: 0,
            },
        }
    }
}

/// What an endpoint's model list (`GET /models`) says about the run's model.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelListing {
    /// The model is listed (exactly, or as a local server tags it: `llava` for
    /// `llava:latest`), or the endpoint says it answers as any model (the mock).
    Listed,
    /// The endpoint lists models, and not this one.
    NotListed {
        /// The models listed, in the endpoint's order.
        listed: Vec<String>,
    },
    /// The answer is not a model list, or an empty one: nothing to say.
    Unknown,
}

/// Reads a `GET /models` answer (OpenAI's and local servers' `{"data": [{"id"}]}`, or
/// Ollama's own `{"models": [{"name"}]}`) and says whether it names `model`. An
/// entry `owned_by` `shadow-batch` is the built-in mock, which answers as any model.
pub fn check_model_listing(body: &str, model: &str) -> ModelListing {
    use serde_json::Value;
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return ModelListing::Unknown;
    };
    let (entries, key) = match (value.get("data"), value.get("models")) {
        (Some(Value::Array(data)), _) => (data, "id"),
        (_, Some(Value::Array(models))) => (models, "name"),
        _ => return ModelListing::Unknown,
    };
    if entries
        .iter()
        .any(|e| e.get("owned_by").and_then(Value::as_str) == Some("shadow-batch"))
    {
        return ModelListing::Listed;
    }
    let listed: Vec<String> = entries
        .iter()
        .filter_map(|e| e.get(key).and_then(Value::as_str))
        .map(|id| truncate(id, MAX_ANSWER_CHARS))
        .collect();
    if listed.is_empty() {
        return ModelListing::Unknown;
    }
    let model = model.trim();
    let tagged = |a: &str, b: &str| a.strip_suffix(":latest") == Some(b);
    if listed
        .iter()
        .any(|id| id == model || tagged(id, model) || tagged(model, id))
    {
        ModelListing::Listed
    } else {
        ModelListing::NotListed { listed }
    }
}

/// Stands for the image URL while the rest of a body is serialized once.
const IMAGE_MARK: &str = "\u{1}shadow-batch image\u{1}";
/// Stands for the MIME type a remote image's name suggests.
const URL_MIME_MARK: &str = "\u{1}shadow-batch url mime\u{1}";
/// Stands for the media type of a `data:` URL.
const MIME_MARK: &str = "\u{1}shadow-batch mime\u{1}";
/// Stands for the base64 data of a `data:` URL.
const DATA_MARK: &str = "\u{1}shadow-batch data\u{1}";

/// What fills a gap of a [`Spliced`] body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// The image URL, whole.
    Url,
    /// The MIME type a remote URL's name suggests.
    UrlMime,
    /// The media type of a `data:` URL.
    Mime,
    /// The base64 data of a `data:` URL.
    Data,
}

const SLOTS: [(&str, Slot); 4] = [
    (IMAGE_MARK, Slot::Url),
    (URL_MIME_MARK, Slot::UrlMime),
    (MIME_MARK, Slot::Mime),
    (DATA_MARK, Slot::Data),
];

/// A body's JSON text cut at the places of the image's parts: `pieces[0] slot[0]
/// pieces[1] ... slot[n-1] pieces[n]`, each slot a JSON string.
#[derive(Clone, Debug)]
struct Spliced {
    pieces: Vec<String>,
    slots: Vec<Slot>,
}

impl Spliced {
    /// Cuts a body serialized with the marks in place of the image's parts. `None`
    /// when a mark occurs more than once (a prompt or label holding a mark itself),
    /// or none does: the body is then serialized whole for each request.
    fn of(marked: &str) -> Option<Spliced> {
        let mut found = Vec::new();
        for (mark, slot) in SLOTS {
            let quoted = serde_json::to_string(mark).expect("a string serializes");
            let mut at = marked.match_indices(&quoted);
            if let Some((i, _)) = at.next() {
                if at.next().is_some() {
                    return None;
                }
                found.push((i, quoted.len(), slot));
            }
        }
        if found.is_empty() {
            return None;
        }
        found.sort_unstable_by_key(|&(i, _, _)| i);
        let mut pieces = Vec::with_capacity(found.len() + 1);
        let mut slots = Vec::with_capacity(found.len());
        let mut from = 0;
        for (i, len, slot) in found {
            pieces.push(marked[from..i].to_owned());
            slots.push(slot);
            from = i + len;
        }
        pieces.push(marked[from..].to_owned());
        Some(Spliced { pieces, slots })
    }

    fn fill(&self, image_url: &str, image: Option<&ImagePart>) -> String {
        let value = |slot: Slot| -> &str {
            match (slot, image) {
                (Slot::Url, _) => image_url,
                (Slot::UrlMime, Some(ImagePart::Url { mime, .. })) => mime,
                (Slot::Mime, Some(ImagePart::Inline { mime, .. })) => mime,
                (Slot::Data, Some(ImagePart::Inline { data, .. })) => data,
                // A slot of the other form: the form is chosen by the image's kind,
                // so this never happens.
                _ => "",
            }
        };
        let size = self.pieces.iter().map(String::len).sum::<usize>()
            + image_url.len()
            + 2 * self.slots.len();
        let mut body = String::with_capacity(size + 16);
        for (piece, slot) in self.pieces.iter().zip(&self.slots) {
            body.push_str(piece);
            push_json_string(&mut body, value(*slot));
        }
        body.push_str(self.pieces.last().expect("one more piece than slots"));
        body
    }
}

/// Appends `s` as a JSON string, copying it as it is when it needs no escape.
fn push_json_string(body: &mut String, s: &str) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        body.push_str(&serde_json::to_string(s).expect("a string serializes"));
    } else {
        body.push('"');
        body.push_str(s);
        body.push('"');
    }
}

/// The requests of one run, with everything but the image, the attempt and the item
/// id serialized once (`Provider::request_template`): at thousands of requests a
/// second, writing the prompt and the label schema again for each image showed in
/// profiles.
#[derive(Clone, Debug)]
pub struct RequestTemplate {
    url: String,
    credential: Credential,
    extra_headers: Vec<(&'static str, &'static str)>,
    /// Whether requests carry `x-stainless-retry-count` (not to Google's hosts).
    retry_count_header: bool,
    /// By [`OutputFormat`]: one body for providers that do not fall back, three for
    /// those that do.
    bodies: Vec<TemplateBody>,
}

#[derive(Clone, Debug)]
enum TemplateBody {
    /// The JSON text around the image's parts: one form for remote URLs, one for
    /// `data:` URLs (`None` for providers that take every URL whole).
    Spliced {
        url: Spliced,
        inline: Option<Spliced>,
    },
    /// Serialized whole for each request.
    Whole {
        provider: Provider,
        labels: LabelSet,
        format: OutputFormat,
    },
}

impl RequestTemplate {
    /// The HTTP request asking the endpoint to classify one image.
    ///
    /// Headers are `content-type: application/json`, `x-stainless-retry-count:
    /// {attempt - 1}` (the header the OpenAI and Anthropic SDKs send; the mock reads
    /// the attempt from it; left out of requests to Google's hosts, whose CORS
    /// preflight refuses it: see [`Provider::browser_access`]) and the provider's own
    /// (`anthropic-version`). There is never a credential header: the host adds the
    /// key at the last moment, as [`RequestTemplate::credential_header`] says.
    pub fn build(&self, image_url: &str, attempt: u32, item_id: Option<&str>) -> HttpRequest {
        self.build_as(image_url, attempt, item_id, OutputFormat::JsonSchema)
    }

    /// [`RequestTemplate::build`] asking for the answer in `format`, as a
    /// [`crate::SendOrder`] says (providers that do not [fall
    /// back](Provider::falls_back) ignore it).
    pub fn build_as(
        &self,
        image_url: &str,
        attempt: u32,
        item_id: Option<&str>,
        format: OutputFormat,
    ) -> HttpRequest {
        let body = &self.bodies[format.index().min(self.bodies.len() - 1)];
        let body = match body {
            TemplateBody::Spliced { url, inline: None } => url.fill(image_url, None),
            TemplateBody::Spliced {
                url,
                inline: Some(inline),
            } => {
                let part = ImagePart::of(image_url);
                match part {
                    ImagePart::Inline { .. } => inline.fill(image_url, Some(&part)),
                    ImagePart::Url { .. } => url.fill(image_url, Some(&part)),
                }
            }
            TemplateBody::Whole {
                provider,
                labels,
                format,
            } => provider.whole_body_as(
                &RequestInput {
                    image_url,
                    labels,
                    attempt,
                    item_id,
                },
                *format,
            ),
        };
        let mut headers = Vec::with_capacity(2 + self.extra_headers.len());
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
        if self.retry_count_header {
            headers.push((
                "x-stainless-retry-count".to_owned(),
                attempt.saturating_sub(1).to_string(),
            ));
        }
        for (name, value) in &self.extra_headers {
            headers.push(((*name).to_owned(), (*value).to_owned()));
        }
        HttpRequest {
            method: "POST",
            url: self.url.clone(),
            headers,
            body,
        }
    }

    /// The header carrying `key` for this provider ([`Provider::credential_header`]).
    pub fn credential_header(&self, key: &str) -> (&'static str, String) {
        self.credential.header(key)
    }

    /// The URL every request is POSTed to ([`Provider::endpoint_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// An error the endpoint reported in its body, OpenAI style:
/// `{"error": {"message": ..., "type": ..., "code": ...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Human-readable message, capped at about 300 characters.
    pub message: String,
    /// The error's `type`, e.g. `insufficient_quota`, `invalid_request_error`.
    pub kind: Option<String>,
    /// The error's `code` as a string (numeric codes are turned into their digits),
    /// e.g. `insufficient_quota`, `rate_limit_exceeded`, `invalid_api_key`.
    pub code: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (&self.kind, &self.code) {
            (Some(kind), Some(code)) => write!(f, " (type {kind}, code {code})"),
            (Some(kind), None) => write!(f, " (type {kind})"),
            (None, Some(code)) => write!(f, " (code {code})"),
            (None, None) => Ok(()),
        }
    }
}

/// Reads an error body: OpenAI's `{"error": {"message", "type", "code"}}` (`code` may be
/// a string, a number or null), Anthropic's `{"type": "error", "error": {"type",
/// "message"}}` (its type is also the code), Google's `{"error": {"code": 429,
/// "message", "status": "RESOURCE_EXHAUSTED"}}` (its status is the type),
/// `{"error": "message"}`, the `{"object": "error", "message": ...}` of some
/// OpenAI-compatible servers, and FastAPI's `{"detail": ...}`. `None` when the body is
/// none of these.
pub fn parse_api_error(body: &str) -> Option<ApiError> {
    api_error_from_value(&serde_json::from_str(body).ok()?)
}

/// [`parse_api_error`] on an already parsed body.
fn api_error_from_value(value: &serde_json::Value) -> Option<ApiError> {
    use serde_json::Value;

    fn text(v: Option<&Value>) -> Option<String> {
        match v? {
            Value::String(s) if !s.is_empty() => Some(truncate(s, MAX_API_MESSAGE_CHARS)),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    /// `envelope`: the body is Anthropic's `{"type": "error", "error": {...}}`,
    /// whose error has a `type` and no `code`: the type is the code.
    fn from_object(obj: &serde_json::Map<String, Value>, envelope: bool) -> ApiError {
        // Google's errors name their kind `status` (`RESOURCE_EXHAUSTED`) beside a
        // numeric `code`; Azure's `status` is a number, not a kind.
        let kind = text(obj.get("type")).or_else(|| match obj.get("status") {
            Some(Value::String(s)) if !s.is_empty() => Some(truncate(s, MAX_API_MESSAGE_CHARS)),
            _ => None,
        });
        let code = text(obj.get("code")).or_else(|| kind.clone().filter(|_| envelope));
        let message = text(obj.get("message"))
            .or_else(|| code.clone())
            .or_else(|| kind.clone())
            .unwrap_or_else(|| "(no message)".to_owned());
        ApiError {
            message,
            kind,
            code,
        }
    }
    fn message_only(msg: &str) -> ApiError {
        ApiError {
            message: truncate(msg, MAX_API_MESSAGE_CHARS),
            kind: None,
            code: None,
        }
    }

    let top = value.as_object()?;
    let envelope = top.get("type").and_then(Value::as_str) == Some("error");
    match top.get("error") {
        Some(Value::Object(err)) => return Some(from_object(err, envelope)),
        Some(Value::String(msg)) if !msg.is_empty() => return Some(message_only(msg)),
        _ => {}
    }
    if top.get("object").and_then(Value::as_str) == Some("error") {
        return Some(from_object(top, false));
    }
    match top.get("detail") {
        Some(Value::String(msg)) if !msg.is_empty() => Some(message_only(msg)),
        Some(Value::Array(items)) => {
            let first = items.first()?.as_object()?;
            Some(ApiError {
                message: text(first.get("msg"))?,
                kind: text(first.get("type")),
                code: None,
            })
        }
        _ => None,
    }
}

/// Token usage as OpenAI spells it; every field optional.
#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

impl RawUsage {
    /// `None` when no count at all was given; a missing total is the sum of the others.
    fn into_usage(self) -> Option<Usage> {
        if self.prompt_tokens.is_none()
            && self.completion_tokens.is_none()
            && self.total_tokens.is_none()
        {
            return None;
        }
        let prompt_tokens = self.prompt_tokens.unwrap_or(0);
        let completion_tokens = self.completion_tokens.unwrap_or(0);
        Some(Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: self
                .total_tokens
                .unwrap_or(prompt_tokens.saturating_add(completion_tokens)),
        })
    }
}

/// Why an endpoint's answer gives no usable prediction. The remote side's fault, never
/// a misuse of the API; each message says what happened in terms a user can act on.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnswerError {
    /// The model declined to answer; holds its refusal text (capped).
    #[error("the model refused to classify the image: {0:?}")]
    Refusal(String),
    /// The answer is not in the expected shape (not JSON, no choices, no label field,
    /// ...). `detail` is short and never holds the whole body.
    #[error("the endpoint's answer could not be read: {detail}")]
    Malformed {
        /// What was wrong, e.g. the JSON parser's message or the missing field's path.
        detail: String,
    },
    /// The model answered something that is not one of the CSV's labels.
    #[error(
        "the model answered {answer:?}, which is not one of the labels in the CSV \
         (labels are matched exactly, then ignoring case and surrounding spaces)"
    )]
    OutsideLabelSet {
        /// What the model answered, capped at about 100 characters.
        answer: String,
    },
    /// The endpoint answered with an error body instead of a prediction.
    #[error("the endpoint answered with an error: {0}")]
    ErrorBody(ApiError),
}

impl AnswerError {
    fn malformed(detail: impl Into<String>) -> Self {
        AnswerError::Malformed {
            detail: truncate(&detail.into(), MAX_DETAIL_CHARS),
        }
    }

    fn outside(answer: &str) -> Self {
        AnswerError::OutsideLabelSet {
            answer: truncate(answer, MAX_ANSWER_CHARS),
        }
    }
}

/// Matches `answer` against the label set, or says it is outside it.
fn match_label(answer: &str, labels: &LabelSet) -> Result<usize, AnswerError> {
    labels
        .match_answer(answer)
        .ok_or_else(|| AnswerError::outside(answer))
}

/// Longest plain-text answer searched for a label it names.
const MAX_MENTION_CHARS: usize = 300;

/// The label a short plain-text answer names ("It is a cat."): the one label that
/// occurs in it as a whole word (not inside a longer run of letters and digits),
/// ignoring case; a label found only inside another found label ("cat" in "wild
/// cat") does not count. `None` when no label or several are named, or the answer
/// is longer than 300 characters. The rule for models that answer in prose (local
/// servers without structured output).
fn single_mention(answer: &str, labels: &LabelSet) -> Option<usize> {
    if answer.chars().count() > MAX_MENTION_CHARS {
        return None;
    }
    let text = answer.to_lowercase();
    let is_word = |c: char| c.is_alphanumeric();
    let mut found: Vec<(usize, String)> = Vec::new();
    for (i, name) in labels.names().iter().enumerate() {
        let label = name.trim().to_lowercase();
        if label.is_empty() {
            continue;
        }
        let named = text.match_indices(&label).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + label.len()..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word)
        });
        if named {
            found.push((i, label));
        }
    }
    let outer: Vec<usize> = found
        .iter()
        .filter(|(i, label)| {
            !found.iter().any(|(j, other)| {
                j != i && other.len() > label.len() && other.contains(label.as_str())
            })
        })
        .map(|(i, _)| *i)
        .collect();
    match outer.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// `s` cut to at most `max` characters (on a char boundary), with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((end, _)) => {
            let mut out = String::with_capacity(end + 3);
            out.push_str(&s[..end]);
            out.push('…');
            out
        }
    }
}

/// A short, single-line snippet of a body for an error detail.
fn snippet(body: &str) -> String {
    truncate(body.trim(), 60).replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn labels() -> LabelSet {
        LabelSet::from_labels(["dog", "cat"])
    }

    fn openai_config() -> OpenAiConfig {
        match openai(ImageDetail::Low, None) {
            Provider::OpenAi(cfg) => cfg,
            _ => unreachable!(),
        }
    }

    fn openai(detail: ImageDetail, prompt: Option<&str>) -> Provider {
        Provider::OpenAi(OpenAiConfig {
            base_url: "https://api.openai.com/v1/".to_owned(),
            model: "gpt-4o-mini".to_owned(),
            detail,
            prompt: prompt.map(str::to_owned),
        })
    }

    fn anthropic(prompt: Option<&str>) -> Provider {
        Provider::Anthropic(AnthropicConfig {
            model: "claude-sonnet-4-5".to_owned(),
            prompt: prompt.map(str::to_owned),
            ..AnthropicConfig::default()
        })
    }

    fn gemini(prompt: Option<&str>) -> Provider {
        Provider::Gemini(GeminiConfig {
            prompt: prompt.map(str::to_owned),
            ..GeminiConfig::default()
        })
    }

    fn azure(api_version: Option<&str>) -> Provider {
        Provider::Azure(AzureConfig {
            base_url: "https://res.openai.azure.com".to_owned(),
            deployment: "vision-prod".to_owned(),
            api_version: api_version.map(str::to_owned),
            detail: ImageDetail::Low,
            prompt: None,
        })
    }

    fn http(field: &str) -> Provider {
        Provider::HttpJson(HttpJsonConfig {
            url: "http://localhost:8080/predict".to_owned(),
            prediction_field: field.to_owned(),
        })
    }

    /// Requests in these tests come from the one builder hosts use: the template.
    trait BuildOne {
        fn build_request(&self, input: &RequestInput) -> HttpRequest;
    }

    impl BuildOne for Provider {
        fn build_request(&self, input: &RequestInput) -> HttpRequest {
            self.request_template(input.labels)
                .build(input.image_url, input.attempt, input.item_id)
        }
    }

    fn input<'a>(labels: &'a LabelSet, attempt: u32, id: Option<&'a str>) -> RequestInput<'a> {
        RequestInput {
            image_url: "https://example.com/a.png",
            labels,
            attempt,
            item_id: id,
        }
    }

    #[test]
    fn a_template_builds_what_serializing_the_whole_request_builds() {
        let odd_labels = LabelSet::from_labels(["a \"quoted\" label", "tab\there", "ünï"]);
        let marked_prompt = format!("Look for {IMAGE_MARK} and {DATA_MARK} please");
        let providers = [
            openai(ImageDetail::Low, None),
            openai(ImageDetail::High, Some("Say \"cat\" or \\dog\\")),
            openai(ImageDetail::Auto, Some(&marked_prompt)),
            http("label"),
            anthropic(None),
            anthropic(Some(&marked_prompt)),
            gemini(None),
            gemini(Some("Say \"cat\"")),
            azure(Some("2024-10-21")),
            azure(None),
        ];
        let urls = [
            "data:image/png;base64,iVBORw0KGgo=",
            "data:image/svg+xml,%3Csvg%2F%3E",
            "https://example.com/a \"b\"\\c\u{1}\n.png",
            "",
        ];
        for provider in &providers {
            for labels in [labels(), odd_labels.clone()] {
                let template = provider.request_template(&labels);
                assert!(
                    matches!(template.bodies[0], TemplateBody::Spliced { .. })
                        != matches!(provider, Provider::HttpJson(_)),
                    "{provider:?} is not spliced"
                );
                for url in urls {
                    for (attempt, id) in [(1, None), (3, Some("row-7"))] {
                        let input = RequestInput {
                            image_url: url,
                            labels: &labels,
                            attempt,
                            item_id: id,
                        };
                        let whole = provider.whole_body(&input);
                        let built = template.build(url, attempt, id);
                        assert_eq!(built.body, whole, "{provider:?} {url:?}");
                        for format in OutputFormat::ALL {
                            assert_eq!(
                                template.build_as(url, attempt, id, format).body,
                                provider.whole_body_as(&input, format),
                                "{provider:?} {url:?} {format:?}"
                            );
                        }
                        serde_json::from_str::<Value>(&built.body).expect("the body is JSON");
                        assert_eq!(built.url, provider.endpoint_url());
                        // Not to Google's hosts, whose CORS preflight refuses it.
                        let google = matches!(provider, Provider::Gemini(_));
                        assert_eq!(
                            header(&built, "x-stainless-retry-count"),
                            (!google).then(|| (attempt - 1).to_string()).as_deref()
                        );
                    }
                }
            }
        }
        // The mark inside a longer string does not match; a label that is exactly
        // a mark is served the slow way rather than split at the wrong place.
        for provider in [&providers[2], &providers[5]] {
            assert!(matches!(
                provider.request_template(&labels()).bodies[0],
                TemplateBody::Spliced { .. }
            ));
        }
        let marked_labels = LabelSet::from_labels(["cat", IMAGE_MARK]);
        let template = providers[0].request_template(&marked_labels);
        assert!(matches!(template.bodies[0], TemplateBody::Whole { .. }));
        let Provider::OpenAi(cfg) = &providers[0] else {
            unreachable!()
        };
        assert_eq!(
            template.build("x.png", 1, None).body,
            openai::build_body(cfg, &input(&marked_labels, 1, None))
                .replace("https://example.com/a.png", "x.png")
        );
        let data_label = LabelSet::from_labels(["cat", DATA_MARK]);
        let template = providers[4].request_template(&data_label);
        assert!(matches!(template.bodies[0], TemplateBody::Whole { .. }));
        let url = "data:image/png;base64,AAAA";
        assert_eq!(
            template.build(url, 1, None).body,
            providers[4].whole_body(&RequestInput {
                image_url: url,
                labels: &data_label,
                attempt: 1,
                item_id: None
            })
        );
    }

    fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn chat(content: &str) -> String {
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": null},
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 120, "completion_tokens": 7, "total_tokens": 127,
                      "prompt_tokens_details": {"cached_tokens": 0}}
        })
        .to_string()
    }

    fn usage(p: u64, c: u64, t: u64) -> Option<Usage> {
        Some(Usage {
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: t,
        })
    }

    // ------------------------------------------------------------------ requests

    #[test]
    fn openai_endpoint_url() {
        assert_eq!(
            openai(ImageDetail::Auto, None).endpoint_url(),
            "https://api.openai.com/v1/chat/completions"
        );
        let mut p = openai(ImageDetail::Auto, None);
        if let Provider::OpenAi(cfg) = &mut p {
            cfg.base_url = "http://127.0.0.1:9/v1/chat/completions/".to_owned();
        }
        assert_eq!(p.endpoint_url(), "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(http("x").endpoint_url(), "http://localhost:8080/predict");
    }

    #[test]
    fn openai_request_shape() {
        let labels = labels();
        let req = openai(ImageDetail::Low, None).build_request(&input(&labels, 1, Some("id-7")));
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, "https://api.openai.com/v1/chat/completions");
        assert_eq!(header(&req, "content-type"), Some("application/json"));
        assert_eq!(header(&req, "x-stainless-retry-count"), Some("0"));
        assert_eq!(header(&req, "authorization"), None);
        assert_eq!(req.headers.len(), 2);

        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(body["model"], "gpt-4o-mini");
        assert_eq!(body["temperature"], 0);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0]["role"], "system");
        assert_eq!(messages[0]["content"], DEFAULT_PROMPT);
        assert_eq!(messages[1]["role"], "user");
        let parts = messages[1]["content"].as_array().unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0]["type"], "text");
        assert!(parts[0]["text"]
            .as_str()
            .unwrap()
            .contains(r#"["cat","dog"]"#));
        assert_eq!(parts[1]["type"], "image_url");
        assert_eq!(
            parts[1]["image_url"],
            json!({"url": "https://example.com/a.png", "detail": "low"})
        );
        assert_eq!(
            body["response_format"],
            json!({
                "type": "json_schema",
                "json_schema": {
                    "name": "classification",
                    "strict": true,
                    "schema": {
                        "type": "object",
                        "properties": {"label": {"type": "string", "enum": ["cat", "dog"]}},
                        "required": ["label"],
                        "additionalProperties": false
                    }
                }
            })
        );
        // The item id is not sent to OpenAI.
        assert!(!req.body.contains("id-7"));
        // Exactly these top-level keys.
        let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "max_tokens",
                "messages",
                "model",
                "response_format",
                "temperature"
            ]
        );
    }

    #[test]
    fn openai_detail_values_and_prompt_override() {
        let labels = labels();
        for (detail, text) in [
            (ImageDetail::Auto, "auto"),
            (ImageDetail::Low, "low"),
            (ImageDetail::High, "high"),
        ] {
            let req = openai(detail, Some("Is it a pet?")).build_request(&input(&labels, 1, None));
            let body: Value = serde_json::from_str(&req.body).unwrap();
            assert_eq!(
                body["messages"][1]["content"][1]["image_url"]["detail"],
                text
            );
            assert_eq!(body["messages"][0]["content"], "Is it a pet?");
        }
    }

    #[test]
    fn retry_count_header_is_attempt_minus_one() {
        let labels = labels();
        for provider in [openai(ImageDetail::Auto, None), http("p")] {
            for (attempt, expected) in [(1, "0"), (2, "1"), (6, "5"), (0, "0")] {
                let req = provider.build_request(&input(&labels, attempt, None));
                assert_eq!(header(&req, "x-stainless-retry-count"), Some(expected));
                assert_eq!(header(&req, "authorization"), None);
            }
        }
    }

    #[test]
    fn labels_and_urls_are_escaped() {
        let labels =
            LabelSet::from_labels(["say \"hi\"", "two\nlines", "back\\slash", "</script>"]);
        let data_url = "data:image/png;base64,iVBORw0KGgo=";
        let mut inp = input(&labels, 1, Some("a\"b"));
        inp.image_url = data_url;
        let expected: Vec<String> = labels.names().to_vec();
        assert_eq!(expected.len(), 4);

        let req = openai(ImageDetail::Auto, Some("quote \" and\nnewline")).build_request(&inp);
        let body: Value = serde_json::from_str(&req.body).expect("valid JSON");
        let schema_enum =
            &body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"];
        assert_eq!(schema_enum, &json!(expected));
        assert_eq!(body["messages"][0]["content"], "quote \" and\nnewline");
        assert_eq!(
            body["messages"][1]["content"][1]["image_url"]["url"],
            data_url
        );
        // The label list in the text part is itself a parseable JSON array.
        let text = body["messages"][1]["content"][0]["text"].as_str().unwrap();
        let list: Vec<String> = serde_json::from_str(&text[text.find('[').unwrap()..]).unwrap();
        assert_eq!(list, expected);

        let req = http("p").build_request(&inp);
        let body: Value = serde_json::from_str(&req.body).expect("valid JSON");
        assert_eq!(body["labels"], json!(expected));
        assert_eq!(body["id"], "a\"b");
        assert_eq!(body["image"], data_url);
    }

    #[test]
    fn http_json_request_shape() {
        let labels = labels();
        let req = http("prediction").build_request(&input(&labels, 3, Some("row-1")));
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, "http://localhost:8080/predict");
        assert_eq!(header(&req, "content-type"), Some("application/json"));
        assert_eq!(header(&req, "x-stainless-retry-count"), Some("2"));
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(
            body,
            json!({"image": "https://example.com/a.png", "labels": ["cat", "dog"],
                   "id": "row-1", "attempt": 3})
        );
        // No id: the key is left out, not null.
        let req = http("prediction").build_request(&input(&labels, 1, None));
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert!(body.get("id").is_none(), "{body}");
        assert_eq!(body["attempt"], 1);
    }

    // ------------------------------------------------------------------ OpenAI answers

    #[test]
    fn openai_parses_label_and_usage() {
        let labels = labels();
        let p = openai(ImageDetail::Auto, None);
        let answer = p
            .parse_answer(&chat(r#"{"label":"dog"}"#), &labels)
            .unwrap();
        assert_eq!(
            answer,
            Answer {
                label: 1,
                usage: usage(120, 7, 127)
            }
        );
        let answer = p
            .parse_answer(&chat(r#"{"label": "cat"}"#), &labels)
            .unwrap();
        assert_eq!(answer.label, 0);
    }

    #[test]
    fn openai_usage_variants() {
        let labels = labels();
        let p = openai(ImageDetail::Auto, None);
        let msg = r#"{"message":{"content":"{\"label\":\"cat\"}"}}"#;
        let no_usage = format!(r#"{{"choices":[{msg}]}}"#);
        assert_eq!(p.parse_answer(&no_usage, &labels).unwrap().usage, None);
        let null_usage = format!(r#"{{"choices":[{msg}],"usage":null}}"#);
        assert_eq!(p.parse_answer(&null_usage, &labels).unwrap().usage, None);
        let no_total = format!(
            r#"{{"choices":[{msg}],"usage":{{"prompt_tokens":10,"completion_tokens":2}}}}"#
        );
        assert_eq!(
            p.parse_answer(&no_total, &labels).unwrap().usage,
            usage(10, 2, 12)
        );
        let empty = format!(r#"{{"choices":[{msg}],"usage":{{}}}}"#);
        assert_eq!(p.parse_answer(&empty, &labels).unwrap().usage, None);
    }

    #[test]
    fn openai_tolerates_fences_whitespace_and_bare_labels() {
        let labels = labels();
        let p = openai(ImageDetail::Auto, None);
        for (content, label) in [
            ("  {\"label\": \"dog\"}\n", 1),
            ("```json\n{\"label\": \"cat\"}\n```", 0),
            ("```\n{\"label\": \"dog\"}\n```", 1),
            ("\n```JSON\n{\"label\":\"dog\"}```\n", 1),
            ("```json {\"label\": \"cat\"}```", 0),
            ("dog", 1),
            ("  Cat ", 0),
            ("\"dog\"", 1),
            ("```\ncat\n```", 0),
            ("{\"label\": \" DOG \"}", 1),
            ("{\"label\": \"cat\", \"confidence\": 0.9}", 0),
        ] {
            let answer = p
                .parse_answer(&chat(content), &labels)
                .unwrap_or_else(|e| panic!("{content:?}: {e}"));
            assert_eq!(answer.label, label, "{content:?}");
        }
    }

    #[test]
    fn openai_numeric_labels() {
        let labels = LabelSet::from_labels(["0", "1", "2", "3"]);
        let p = openai(ImageDetail::Auto, None);
        assert_eq!(
            p.parse_answer(&chat(r#"{"label":"3"}"#), &labels)
                .unwrap()
                .label,
            3
        );
        assert_eq!(
            p.parse_answer(&chat(r#"{"label":2}"#), &labels)
                .unwrap()
                .label,
            2
        );
        assert_eq!(p.parse_answer(&chat("1"), &labels).unwrap().label, 1);
        assert_eq!(
            p.parse_answer(&chat("7"), &labels),
            Err(AnswerError::OutsideLabelSet {
                answer: "7".to_owned()
            })
        );
    }

    #[test]
    fn openai_outside_label_set() {
        let labels = labels();
        let p = openai(ImageDetail::Auto, None);
        let err = p
            .parse_answer(&chat(r#"{"label":"zebra"}"#), &labels)
            .unwrap_err();
        assert_eq!(
            err,
            AnswerError::OutsideLabelSet {
                answer: "zebra".to_owned()
            }
        );
        let text = err.to_string();
        assert!(text.contains("\"zebra\""), "{text}");
        assert!(text.contains("not one of the labels"), "{text}");
        // Free text is echoed, capped at 100 characters.
        let long = "I think this is a picture of a very fluffy animal. ".repeat(10);
        match p.parse_answer(&chat(&long), &labels).unwrap_err() {
            AnswerError::OutsideLabelSet { answer } => {
                assert_eq!(answer.chars().count(), 101);
                assert!(answer.ends_with('…'));
                assert!(long.starts_with(answer.trim_end_matches('…')));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn openai_refusal() {
        let labels = labels();
        let p = openai(ImageDetail::Auto, None);
        let body = json!({"choices": [{"message": {"role": "assistant", "content": null,
            "refusal": "I'm sorry, I can't help with that."}, "finish_reason": "stop"}]})
        .to_string();
        let err = p.parse_answer(&body, &labels).unwrap_err();
        assert_eq!(
            err,
            AnswerError::Refusal("I'm sorry, I can't help with that.".to_owned())
        );
        assert!(err.to_string().contains("refused"));
        // Refusal wins even when content is also set.
        let body = json!({"choices": [{"message": {"content": "{\"label\":\"cat\"}",
            "refusal": "no"}}]})
        .to_string();
        assert_eq!(
            p.parse_answer(&body, &labels),
            Err(AnswerError::Refusal("no".to_owned()))
        );
    }

    fn malformed(result: Result<Answer, AnswerError>) -> String {
        match result {
            Err(AnswerError::Malformed { detail }) => detail,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn openai_malformed_bodies() {
        let labels = labels();
        let p = openai(ImageDetail::Auto, None);
        let detail = malformed(p.parse_answer("<html>502 Bad Gateway</html>", &labels));
        assert!(detail.starts_with("not JSON"), "{detail}");
        assert!(detail.contains("<html>502"), "{detail}");
        assert!(malformed(p.parse_answer("", &labels)).starts_with("not JSON"));
        assert!(malformed(p.parse_answer(r#"{"choices": [{"mess"#, &labels)).contains("not JSON"));
        assert!(malformed(p.parse_answer("{}", &labels)).contains("no choices"));
        assert!(malformed(p.parse_answer(r#"{"choices": []}"#, &labels)).contains("no choices"));
        assert!(malformed(p.parse_answer(r#"{"choices": null}"#, &labels)).contains("no choices"));
        assert!(malformed(p.parse_answer(r#"{"choices": [{}]}"#, &labels)).contains("no message"));
        assert!(malformed(p.parse_answer(r#"{"choices": 5}"#, &labels))
            .contains("not a chat completion"));
        let detail = malformed(p.parse_answer(
            r#"{"choices": [{"message": {"content": null}, "finish_reason": "tool_calls"}]}"#,
            &labels,
        ));
        assert!(
            detail.contains("no content") && detail.contains("tool_calls"),
            "{detail}"
        );
        assert!(malformed(p.parse_answer(&chat("   "), &labels)).contains("empty"));
        let detail = malformed(p.parse_answer(&chat(r#"{"answer": "cat"}"#), &labels));
        assert!(detail.contains("not {\"label\": ...} JSON"), "{detail}");
        assert!(detail.contains("missing field `label`"), "{detail}");
        // A cut-short answer says so.
        let body = json!({"choices": [{"message": {"content": "{\"label\": \"ca"},
            "finish_reason": "length"}]})
        .to_string();
        assert!(malformed(p.parse_answer(&body, &labels)).contains("cut short"));
    }

    #[test]
    fn malformed_detail_never_echoes_a_whole_body() {
        let labels = labels();
        let p = openai(ImageDetail::Auto, None);
        let huge = format!("<html>{}</html>", "x".repeat(100_000));
        let detail = malformed(p.parse_answer(&huge, &labels));
        assert!(
            detail.chars().count() <= MAX_DETAIL_CHARS + 1,
            "{}",
            detail.len()
        );
        let huge_content = format!("{{\"label\": \"{}", "y".repeat(10_000));
        let detail = malformed(p.parse_answer(&chat(&huge_content), &labels));
        assert!(
            detail.chars().count() <= MAX_DETAIL_CHARS + 1,
            "{}",
            detail.len()
        );
        let detail = malformed(http("p").parse_answer(&huge, &labels));
        assert!(
            detail.chars().count() <= MAX_DETAIL_CHARS + 1,
            "{}",
            detail.len()
        );
    }

    #[test]
    fn openai_error_body() {
        let labels = labels();
        let p = openai(ImageDetail::Auto, None);
        let body = r#"{"error": {"message": "You exceeded your current quota.",
            "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}"#;
        let err = p.parse_answer(body, &labels).unwrap_err();
        assert_eq!(
            err,
            AnswerError::ErrorBody(ApiError {
                message: "You exceeded your current quota.".to_owned(),
                kind: Some("insufficient_quota".to_owned()),
                code: Some("insufficient_quota".to_owned()),
            })
        );
        assert_eq!(
            err.to_string(),
            "the endpoint answered with an error: You exceeded your current quota. \
             (type insufficient_quota, code insufficient_quota)"
        );
        // An error next to (null) choices is still an error.
        let body = r#"{"choices": null, "error": {"message": "overloaded", "code": 503}}"#;
        assert!(matches!(
            p.parse_answer(body, &labels),
            Err(AnswerError::ErrorBody(ApiError { code: Some(c), .. })) if c == "503"
        ));
        // An error whose shape breaks the typed parse is still recognised.
        let body = r#"{"choices": "nope", "error": "server exploded"}"#;
        assert!(matches!(
            p.parse_answer(body, &labels),
            Err(AnswerError::ErrorBody(ApiError { message, .. })) if message == "server exploded"
        ));
        // `"error": null` is not an error.
        let body = r#"{"error": null, "choices": [{"message": {"content": "cat"}}]}"#;
        assert_eq!(p.parse_answer(body, &labels).unwrap().label, 0);
    }

    #[test]
    fn openai_takes_first_of_several_choices() {
        let labels = labels();
        let p = openai(ImageDetail::Auto, None);
        let body = r#"{"choices": [{"message": {"content": "dog"}},
            {"message": {"content": "cat"}}, {"weird": [1, {"a": null}]}]}"#;
        assert_eq!(p.parse_answer(body, &labels).unwrap().label, 1);
    }

    // ------------------------------------------------------------------ API errors

    #[test]
    fn api_error_code_string_number_null() {
        let e = parse_api_error(
            r#"{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}"#,
        )
        .unwrap();
        assert_eq!(e.message, "Rate limit reached");
        assert_eq!(e.kind.as_deref(), Some("requests"));
        assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));

        let e = parse_api_error(r#"{"error": {"message": "Bad gateway", "code": 502}}"#).unwrap();
        assert_eq!(e.code.as_deref(), Some("502"));
        assert_eq!(e.kind, None);
        assert_eq!(e.to_string(), "Bad gateway (code 502)");

        let e = parse_api_error(
            r#"{"error": {"message": "Invalid image", "type": "invalid_request_error", "code": null}}"#,
        )
        .unwrap();
        assert_eq!(e.code, None);
        assert_eq!(e.to_string(), "Invalid image (type invalid_request_error)");
    }

    #[test]
    fn api_error_other_shapes() {
        assert_eq!(
            parse_api_error(r#"{"error": "Unauthorized"}"#),
            Some(ApiError {
                message: "Unauthorized".to_owned(),
                kind: None,
                code: None
            })
        );
        let e = parse_api_error(
            r#"{"object": "error", "message": "model not found", "type": "NotFoundError", "code": 404}"#,
        )
        .unwrap();
        assert_eq!(e.message, "model not found");
        assert_eq!(e.kind.as_deref(), Some("NotFoundError"));
        assert_eq!(e.code.as_deref(), Some("404"));
        assert_eq!(
            parse_api_error(r#"{"detail": "Not authenticated"}"#)
                .unwrap()
                .message,
            "Not authenticated"
        );
        let e = parse_api_error(
            r#"{"detail": [{"loc": ["body", "image"], "msg": "field required", "type": "value_error.missing"}]}"#,
        )
        .unwrap();
        assert_eq!(e.message, "field required");
        assert_eq!(e.kind.as_deref(), Some("value_error.missing"));
        // No message: fall back to the code.
        let e = parse_api_error(r#"{"error": {"code": "insufficient_quota"}}"#).unwrap();
        assert_eq!(e.message, "insufficient_quota");
        assert_eq!(e.code.as_deref(), Some("insufficient_quota"));
        assert_eq!(
            parse_api_error(r#"{"error": {}}"#).unwrap().message,
            "(no message)"
        );
        for not_error in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"error": null}"#,
            r#"{"error": 3}"#,
            r#"{"choices": []}"#,
        ] {
            assert_eq!(parse_api_error(not_error), None, "{not_error}");
        }
    }

    #[test]
    fn api_error_message_is_capped() {
        let body = json!({"error": {"message": "é".repeat(5000), "code": "x"}}).to_string();
        let e = parse_api_error(&body).unwrap();
        assert_eq!(e.message.chars().count(), MAX_API_MESSAGE_CHARS + 1);
        assert!(e.message.ends_with('…'));
    }

    // ------------------------------------------------------------------ generic JSON answers

    #[test]
    fn http_json_top_level_field() {
        let labels = labels();
        let answer = http("prediction")
            .parse_answer(r#"{"prediction": "dog", "score": 0.93}"#, &labels)
            .unwrap();
        assert_eq!(
            answer,
            Answer {
                label: 1,
                usage: None
            }
        );
    }

    #[test]
    fn http_json_dotted_path_with_array_index() {
        let labels = labels();
        let body =
            r#"{"result": {"top": [{"label": "cat", "p": 0.6}, {"label": "dog", "p": 0.4}]}}"#;
        assert_eq!(
            http("result.top.0.label")
                .parse_answer(body, &labels)
                .unwrap()
                .label,
            0
        );
        assert_eq!(
            http("result.top.1.label")
                .parse_answer(body, &labels)
                .unwrap()
                .label,
            1
        );
        let detail = malformed(http("result.top.2.label").parse_answer(body, &labels));
        assert!(detail.contains("result.top.2.label"), "{detail}");
        assert!(detail.contains("array of 2 elements"), "{detail}");
        let detail = malformed(http("result.best").parse_answer(body, &labels));
        assert!(
            detail.contains("`result.best`") && detail.contains("no field `best`"),
            "{detail}"
        );
        let detail = malformed(http("result.top.x").parse_answer(body, &labels));
        assert!(detail.contains("`x` is not an index"), "{detail}");
        // Objects with numeric keys are looked up by key.
        let body = r#"{"by": {"0": "dog"}}"#;
        assert_eq!(http("by.0").parse_answer(body, &labels).unwrap().label, 1);
        // Top-level arrays and an empty path.
        assert_eq!(
            http("0").parse_answer(r#"["cat"]"#, &labels).unwrap().label,
            0
        );
        assert_eq!(http("").parse_answer(r#""dog""#, &labels).unwrap().label, 1);
    }

    #[test]
    fn http_json_numbers_and_wrong_types() {
        let digits = LabelSet::from_labels(["0", "1", "7"]);
        assert_eq!(
            http("p")
                .parse_answer(r#"{"p": 7}"#, &digits)
                .unwrap()
                .label,
            2
        );
        assert_eq!(
            http("p")
                .parse_answer(r#"{"p": "1"}"#, &digits)
                .unwrap()
                .label,
            1
        );
        assert_eq!(
            http("p").parse_answer(r#"{"p": 9}"#, &digits),
            Err(AnswerError::OutsideLabelSet {
                answer: "9".to_owned()
            })
        );
        assert_eq!(
            http("p").parse_answer(r#"{"p": "zebra"}"#, &labels()),
            Err(AnswerError::OutsideLabelSet {
                answer: "zebra".to_owned()
            })
        );
        for (body, kind) in [
            (r#"{"p": null}"#, "null"),
            (r#"{"p": true}"#, "a boolean"),
            (r#"{"p": ["cat"]}"#, "an array"),
            (r#"{"p": {"label": "cat"}}"#, "an object"),
        ] {
            let detail = malformed(http("p").parse_answer(body, &labels()));
            assert!(detail.contains(kind) && detail.contains("`p`"), "{detail}");
        }
        assert!(malformed(http("p").parse_answer("oops", &labels())).starts_with("not JSON"));
    }

    #[test]
    fn http_json_usage_and_error_body() {
        let labels = labels();
        let body = r#"{"label": "cat", "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}"#;
        assert_eq!(
            http("label").parse_answer(body, &labels).unwrap().usage,
            usage(5, 1, 6)
        );
        // A usage of the wrong shape is ignored, not an error.
        let body = r#"{"label": "cat", "usage": "lots"}"#;
        assert_eq!(
            http("label").parse_answer(body, &labels).unwrap().usage,
            None
        );
        let body = r#"{"error": {"message": "model not loaded", "code": 503}}"#;
        assert_eq!(
            http("label").parse_answer(body, &labels),
            Err(AnswerError::ErrorBody(ApiError {
                message: "model not loaded".to_owned(),
                kind: None,
                code: Some("503".to_owned()),
            }))
        );
        let body = r#"{"label": null, "detail": "queue full"}"#;
        assert!(matches!(
            http("label").parse_answer(body, &labels),
            Err(AnswerError::ErrorBody(ApiError { message, .. })) if message == "queue full"
        ));
    }

    // ------------------------------------------------------------------ messages

    #[test]
    fn error_messages_are_actionable() {
        assert_eq!(
            AnswerError::Malformed {
                detail: "the answer has no choices".to_owned()
            }
            .to_string(),
            "the endpoint's answer could not be read: the answer has no choices"
        );
        let text = AnswerError::OutsideLabelSet {
            answer: "a \"b\"\nc".to_owned(),
        }
        .to_string();
        assert!(
            text.starts_with(r#"the model answered "a \"b\"\nc", which"#),
            "{text}"
        );
        assert!(!text.contains('\n'));
        assert_eq!(
            AnswerError::Refusal("no".to_owned()).to_string(),
            "the model refused to classify the image: \"no\""
        );
    }

    #[test]
    fn truncate_is_char_safe() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "abc…");
        assert_eq!(truncate("ééé", 2), "éé…");
        assert_eq!(truncate("", 0), "");
        assert_eq!(truncate("🐱🐶", 1), "🐱…");
    }

    #[test]
    fn openai_compatible_requests_fall_back_to_json_object_then_text() {
        let labels = labels();
        for provider in [openai(ImageDetail::Low, None), azure(None)] {
            assert!(provider.falls_back());
            let template = provider.request_template(&labels);
            let body = |format| -> Value {
                serde_json::from_str(
                    &template
                        .build_as("https://x.test/a.png", 1, None, format)
                        .body,
                )
                .unwrap()
            };
            assert_eq!(
                body(OutputFormat::JsonSchema)["response_format"]["type"],
                "json_schema"
            );
            let object = body(OutputFormat::JsonObject);
            assert_eq!(object["response_format"], json!({"type": "json_object"}));
            let text = body(OutputFormat::Text);
            assert!(text.get("response_format").is_none(), "{text}");
            // Everything else is the same request.
            for b in [&object, &text] {
                assert_eq!(b["messages"], body(OutputFormat::JsonSchema)["messages"]);
                assert_eq!(b["model"], body(OutputFormat::JsonSchema)["model"]);
            }
        }
        // The other providers have their own constraint and ask the same way always.
        for provider in [anthropic(None), gemini(None), http("label")] {
            assert!(!provider.falls_back());
            let template = provider.request_template(&labels);
            assert_eq!(
                template
                    .build_as("https://x.test/a.png", 1, None, OutputFormat::Text)
                    .body,
                template.build("https://x.test/a.png", 1, None).body
            );
        }
        assert_eq!(
            OutputFormat::JsonSchema.next(),
            Some(OutputFormat::JsonObject)
        );
        assert_eq!(OutputFormat::JsonObject.next(), Some(OutputFormat::Text));
        assert_eq!(OutputFormat::Text.next(), None);
    }

    #[test]
    fn refusals_of_the_response_format_are_recognised() {
        let answer = |status, body: &str| crate::http::HttpResponse {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
        };
        // llama.cpp's server, an old vLLM, Azure before 2024-08-01, the mock's
        // ollama dialect.
        for body in [
            r#"{"error": {"code": 400, "message": "response_format type json_schema is not supported", "type": "invalid_request_error"}}"#,
            r#"{"object": "error", "message": "Unsupported response_format: json_schema", "type": "BadRequestError", "code": 400}"#,
            r#"{"error": {"message": "response_format value as json_schema is enabled only for api versions 2024-08-01-preview and later", "type": "invalid_request_error", "param": null, "code": "BadRequest"}}"#,
            "Structured output is not supported by this model",
        ] {
            assert!(
                rejects_format(&answer(400, body), OutputFormat::JsonSchema),
                "{body}"
            );
        }
        assert!(rejects_format(
            &answer(
                422,
                r#"{"detail": "json_object response format is not supported"}"#
            ),
            OutputFormat::JsonObject
        ));
        // Not about the format, not a client error, or no fallback left.
        let other =
            r#"{"error": {"message": "Invalid image input", "type": "invalid_request_error"}}"#;
        assert!(!rejects_format(
            &answer(400, other),
            OutputFormat::JsonSchema
        ));
        let schema = r#"{"error": {"message": "json_schema unsupported"}}"#;
        assert!(!rejects_format(
            &answer(500, schema),
            OutputFormat::JsonSchema
        ));
        assert!(!rejects_format(
            &answer(429, schema),
            OutputFormat::JsonSchema
        ));
        assert!(!rejects_format(
            &answer(400, schema),
            OutputFormat::JsonObject
        ));
        assert!(!rejects_format(&answer(400, schema), OutputFormat::Text));
    }

    #[test]
    fn prose_answers_name_a_label_by_the_one_whole_word_they_hold() {
        let labels = LabelSet::from_labels(["cat", "dog", "wild cat", "7", "Sea Lion"]);
        let p = openai(ImageDetail::Auto, None);
        let label = |text: &str| {
            p.parse_answer(&chat(text), &labels)
                .map(|a| labels.names()[a.label].clone())
        };
        assert_eq!(label("It is a cat.").unwrap(), "cat");
        assert_eq!(label("The image shows a DOG").unwrap(), "dog");
        assert_eq!(label("A wild cat, I think").unwrap(), "wild cat");
        assert_eq!(label("The digit is 7").unwrap(), "7");
        assert_eq!(label("Looks like a sea lion!").unwrap(), "Sea Lion");
        // Inside a longer word, several labels, none, or too long: outside the set.
        for text in [
            "A category of animal",
            "Either a cat or a dog",
            "The number 17",
            "No idea",
        ] {
            assert!(
                matches!(label(text), Err(AnswerError::OutsideLabelSet { .. })),
                "{text}: {:?}",
                label(text)
            );
        }
        let long = format!("It is a cat. {}", "Really. ".repeat(50));
        assert!(matches!(
            label(&long),
            Err(AnswerError::OutsideLabelSet { .. })
        ));
    }

    #[test]
    fn model_lists_say_whether_the_model_is_served() {
        assert_eq!(
            openai(ImageDetail::Low, None).models_url().as_deref(),
            Some("https://api.openai.com/v1/models")
        );
        assert_eq!(anthropic(None).models_url(), None);
        assert_eq!(azure(None).models_url(), None);
        // OpenAI's list, as documented.
        let openai_list = r#"{"object": "list", "data": [
            {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
            {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"}]}"#;
        assert_eq!(
            check_model_listing(openai_list, "gpt-4o"),
            ModelListing::Listed
        );
        assert_eq!(
            check_model_listing(openai_list, "gpt-5"),
            ModelListing::NotListed {
                listed: vec!["gpt-4o-mini".into(), "gpt-4o".into()]
            }
        );
        // Ollama's OpenAI-compatible list and its own: tags.
        let ollama = r#"{"object": "list", "data": [{"id": "llava:latest", "object": "model", "owned_by": "library"}]}"#;
        assert_eq!(check_model_listing(ollama, "llava"), ModelListing::Listed);
        let native = r#"{"models": [{"name": "qwen2.5vl:7b", "model": "qwen2.5vl:7b"}]}"#;
        assert_eq!(
            check_model_listing(native, "qwen2.5vl:7b"),
            ModelListing::Listed
        );
        assert!(matches!(
            check_model_listing(native, "qwen2.5vl"),
            ModelListing::NotListed { .. }
        ));
        // The mock answers as any model.
        let mock =
            r#"{"object": "list", "data": [{"id": "shadow-mock-1", "owned_by": "shadow-batch"}]}"#;
        assert_eq!(
            check_model_listing(mock, "gpt-4o-mini"),
            ModelListing::Listed
        );
        for nothing in [
            "",
            "<html>",
            r#"{"data": []}"#,
            r#"{"error": {"message": "no"}}"#,
            r#"{"data": [{"x": 1}]}"#,
        ] {
            assert_eq!(
                check_model_listing(nothing, "m"),
                ModelListing::Unknown,
                "{nothing}"
            );
        }
    }

    #[test]
    fn provider_config_still_round_trips() {
        let p = openai(ImageDetail::High, Some("x"));
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains(r#""kind":"openai""#), "{text}");
        assert_eq!(serde_json::from_str::<Provider>(&text).unwrap(), p);
    }

    #[test]
    fn requests_ask_for_no_more_tokens_than_a_label_needs() {
        let labels = LabelSet::from_labels(["dog", "a rather long label"]);
        let body = |model: &str| {
            let provider = Provider::OpenAi(OpenAiConfig {
                model: model.to_owned(),
                ..openai_config()
            });
            let request = provider
                .request_template(&labels)
                .build("https://x/i.png", 1, None);
            serde_json::from_str::<serde_json::Value>(&request.body).unwrap()
        };
        let plain = body("gpt-4o-mini");
        assert_eq!(plain["max_tokens"], 16 + 19);
        assert!(plain.get("max_completion_tokens").is_none());
        for reasoning in ["o4-mini", "o1", "gpt-5-mini", "openai/o3"] {
            let b = body(reasoning);
            assert!(b.get("max_tokens").is_none(), "{reasoning}");
            assert_eq!(b["max_completion_tokens"], 16 + 19 + 2_048, "{reasoning}");
        }
        assert!(!is_reasoning_model("omni-vision"));
    }

    #[test]
    fn token_charge_is_seeded_from_the_published_image_formula() {
        let labels = labels();
        let charge = |model: &str, detail| {
            Provider::OpenAi(OpenAiConfig {
                model: model.to_owned(),
                detail,
                ..openai_config()
            })
            .token_charge(&labels)
        };
        let mini = charge("gpt-4o-mini", ImageDetail::Low);
        let text = mini.prompt - 2_833;
        assert!((40..200).contains(&text), "{text}");
        assert_eq!(mini.max_output, 16 + 3);
        assert_eq!(charge("gpt-4o", ImageDetail::Low).prompt, text + 85);
        assert_eq!(charge("gpt-4o", ImageDetail::High).prompt, text + 765);
        assert_eq!(
            charge("gpt-4o-mini", ImageDetail::Auto).prompt,
            text + 2_833 + 4 * 5_667
        );
    }

    #[test]
    fn url_host_takes_the_host_alone() {
        for (url, host) in [
            ("https://API.Example.com./v1", "api.example.com"),
            (
                "https://user:pw@api.example.com:8443/v1?x=1",
                "api.example.com",
            ),
            ("http://127.0.0.1:8787", "127.0.0.1"),
            ("http://[::1]:8787/v1", "[::1]"),
            ("api.example.com/v1", "api.example.com"),
            ("", ""),
        ] {
            assert_eq!(url_host(url), host, "{url}");
        }
    }

    #[test]
    fn browser_access_is_known_for_the_public_apis_and_unknown_elsewhere() {
        let at = |provider: Provider, base: &str| -> Provider {
            match provider {
                Provider::OpenAi(c) => Provider::OpenAi(OpenAiConfig {
                    base_url: base.to_owned(),
                    ..c
                }),
                Provider::Anthropic(c) => Provider::Anthropic(AnthropicConfig {
                    base_url: base.to_owned(),
                    ..c
                }),
                Provider::Gemini(c) => Provider::Gemini(GeminiConfig {
                    base_url: base.to_owned(),
                    ..c
                }),
                Provider::Azure(c) => Provider::Azure(AzureConfig {
                    base_url: base.to_owned(),
                    ..c
                }),
                other => other,
            }
        };
        let mock = "http://127.0.0.1:8787";
        let cases = [
            (
                openai(ImageDetail::Low, None),
                Cors::Allowed,
                "api.openai.com",
            ),
            (
                at(openai(ImageDetail::Low, None), &format!("{mock}/v1")),
                Cors::Unknown,
                "127.0.0.1",
            ),
            (anthropic(None), Cors::Allowed, "api.anthropic.com"),
            (at(anthropic(None), mock), Cors::Unknown, "127.0.0.1"),
            (
                gemini(None),
                Cors::Allowed,
                "generativelanguage.googleapis.com",
            ),
            (
                at(gemini(None), &format!("{mock}/v1beta")),
                Cors::Unknown,
                "127.0.0.1",
            ),
            (azure(None), Cors::Refused, "res.openai.azure.com"),
            (
                at(azure(None), "https://res.cognitiveservices.azure.com"),
                Cors::Refused,
                "res.cognitiveservices.azure.com",
            ),
            (
                at(azure(None), "https://proxy.example.com"),
                Cors::Unknown,
                "proxy.example.com",
            ),
            (http("label"), Cors::Unknown, "localhost"),
        ];
        for (provider, cors, host) in cases {
            let access = provider.browser_access();
            assert_eq!(access.cors, cors, "{provider:?}");
            assert_eq!(access.host, host, "{provider:?}");
            let anthropic = matches!(provider, Provider::Anthropic(_));
            let want: Vec<(String, String)> = if anthropic {
                vec![(
                    "anthropic-dangerous-direct-browser-access".into(),
                    "true".into(),
                )]
            } else {
                Vec::new()
            };
            assert_eq!(access.headers, want, "{provider:?}");
            // Requests to Google's hosts carry no header its CORS preflight refuses.
            let request = provider
                .request_template(&labels())
                .build("https://e.x/a.png", 2, None);
            let google =
                matches!(provider, Provider::Gemini(_)) && host.ends_with("googleapis.com");
            assert_eq!(
                header(&request, "x-stainless-retry-count").is_none(),
                google,
                "{provider:?}"
            );
            if google {
                let names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(names, ["content-type"], "only CORS-safe headers to Google");
                assert_eq!(provider.credential_header("k").0, "x-goog-api-key");
            }
        }
        let json = serde_json::to_value(anthropic(None).browser_access()).unwrap();
        assert_eq!(
            json,
            json!({
                "cors": "allowed",
                "headers": [["anthropic-dangerous-direct-browser-access", "true"]],
                "host": "api.anthropic.com"
            })
        );
    }
}
