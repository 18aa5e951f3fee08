//! The dialects the mock speaks, and what each says in each situation: how the key
//! is checked, and the status, headers and body of an answer, a refusal, a rate
//! limit, an injected fault, a used-up quota and a bad request. Pure: the time a
//! header needs is passed in.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use crate::answers::Decision;
use crate::config::{MockConfig, UNSET_MAX_TOKENS_CHARGE};
use crate::ratelimit::{ratelimit_headers, window_headers, Admission, Limit, Verdict};
use crate::{anthropic, gemini, openai};

/// The parts of a request the mock reads, whatever its dialect.
#[derive(Clone, Debug)]
pub(crate) struct Parsed {
    /// `model` (from the path for Gemini, the deployment for Azure's deployment
    /// path), or [`crate::MOCK_MODEL`] when the request names none.
    pub model: String,
    /// The label enum, in order.
    pub labels: Vec<String>,
    /// The image URL exactly as sent (data URL or http URL); for dialects that take
    /// an image apart, the `data:` URL it was made from.
    pub image: String,
    /// How the answer's text is written.
    pub format: AnswerFormat,
    /// Image parts in the request.
    pub images: u64,
    /// Characters of the prompt's text.
    pub text_chars: u64,
    /// The output allowance the request sets (`max_completion_tokens`,
    /// `max_tokens`, Anthropic's `max_tokens`, Gemini's `maxOutputTokens`).
    pub max_tokens: Option<u64>,
    /// The top alternatives asked for per token, when the request asks for
    /// log-probabilities (OpenAI's `logprobs`/`top_logprobs`, Gemini's
    /// `responseLogprobs`/`logprobs`).
    pub logprobs: Option<usize>,
}

impl Parsed {
    /// The prompt tokens the mock counts (and reports in its usage):
    /// `image_tokens` per image part plus one per 4 characters of text, rounded up.
    pub fn prompt_tokens(&self, image_tokens: u64) -> u64 {
        self.images
            .saturating_mul(image_tokens)
            .saturating_add(self.text_chars.div_ceil(4))
    }

    /// What the request is charged against a tokens-per-minute limit on arrival:
    /// its prompt tokens plus its output allowance, else
    /// [`UNSET_MAX_TOKENS_CHARGE`].
    pub fn token_charge(&self, image_tokens: u64) -> u64 {
        self.prompt_tokens(image_tokens)
            .saturating_add(self.max_tokens.unwrap_or(UNSET_MAX_TOKENS_CHARGE))
    }
}

/// How a text answer is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AnswerFormat {
    /// `{"label": "..."}`.
    Json,
    /// The bare label.
    Text,
}

/// The first JSON list of strings found in `texts` (the prompt's "Allowed labels
/// ...: [...]"), for requests that name their labels in no schema.
pub(crate) fn labels_in_text(texts: &[&str]) -> Option<Vec<String>> {
    texts.iter().find_map(|text| {
        text.match_indices('[').find_map(|(i, _)| {
            serde_json::Deserializer::from_str(&text[i..])
                .into_iter::<Vec<String>>()
                .next()?
                .ok()
        })
    })
}

/// Which API a route speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `POST /v1/chat/completions` (as [`MockConfig::dialect`] says).
    OpenAi,
    /// `POST /openai/deployments/{d}/chat/completions?api-version=...` and
    /// `POST /openai/v1/chat/completions`.
    Azure,
    /// `POST /v1/messages`.
    Anthropic,
    /// `POST /v1beta/models/{model}:generateContent`.
    Gemini,
}

/// A status and a JSON body.
pub(crate) type Reply = (StatusCode, Value);

impl Dialect {
    /// Whether the request carries `key` where this dialect sends it.
    pub(crate) fn key_matches(self, headers: &HeaderMap, key: &str) -> bool {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let given = match self {
            Dialect::OpenAi => header("authorization").and_then(|v| v.strip_prefix("Bearer ")),
            Dialect::Azure => header("api-key"),
            Dialect::Anthropic => header("x-api-key"),
            Dialect::Gemini => header("x-goog-api-key"),
        };
        given.is_some_and(|given| given.trim() == key)
    }

    /// Reads the body; `Err` is the 400 message.
    pub(crate) fn parse(
        self,
        cfg: &MockConfig,
        body: &[u8],
        path_model: Option<&str>,
    ) -> Result<Parsed, String> {
        match self {
            Dialect::OpenAi => openai::parse_request(body, cfg.dialect),
            Dialect::Azure => {
                let mut parsed = openai::parse_request(body, crate::config::OpenAiDialect::OpenAi)?;
                if let Some(deployment) = path_model {
                    parsed.model = deployment.to_owned();
                }
                Ok(parsed)
            }
            Dialect::Anthropic => anthropic::parse_request(body),
            Dialect::Gemini => gemini::parse_request(body, path_model.unwrap_or_default()),
        }
    }

    /// A missing or wrong key.
    pub(crate) fn unauthorized(self) -> Reply {
        match self {
            Dialect::OpenAi => (
                StatusCode::UNAUTHORIZED,
                openai::error_body(
                    "Incorrect API key provided. You can find your API key at \
                     https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    Some("invalid_api_key"),
                ),
            ),
            Dialect::Azure => (
                StatusCode::UNAUTHORIZED,
                json!({ "error": { "code": "401", "message":
                    "Access denied due to invalid subscription key or wrong API endpoint. \
                     Make sure to provide a valid key for an active subscription and use a \
                     correct regional API endpoint for your resource." } }),
            ),
            Dialect::Anthropic => (
                StatusCode::UNAUTHORIZED,
                anthropic::error_body("authentication_error", "invalid x-api-key"),
            ),
            // Gemini answers a wrong key with a 400.
            Dialect::Gemini => (
                StatusCode::BAD_REQUEST,
                gemini::error_body(
                    400,
                    "INVALID_ARGUMENT",
                    "API key not valid. Please pass a valid API key.",
                    json!([{
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": { "service": "generativelanguage.googleapis.com" },
                    }]),
                ),
            ),
        }
    }

    /// A request the mock cannot read.
    pub(crate) fn bad_request(self, message: &str) -> Reply {
        let body = match self {
            Dialect::OpenAi | Dialect::Azure => {
                openai::error_body(message, "invalid_request_error", None)
            }
            Dialect::Anthropic => anthropic::error_body("invalid_request_error", message),
            Dialect::Gemini => gemini::error_body(400, "INVALID_ARGUMENT", message, json!([])),
        };
        (StatusCode::BAD_REQUEST, body)
    }

    /// A request whose token charge no wait lets through (more than the token
    /// bucket holds): 400, and for OpenAI's dialects in the shape of its token
    /// errors.
    pub(crate) fn too_large(self, message: &str) -> Reply {
        match self {
            Dialect::OpenAi | Dialect::Azure => (
                StatusCode::BAD_REQUEST,
                openai::error_body(message, "tokens", Some("rate_limit_exceeded")),
            ),
            _ => self.bad_request(message),
        }
    }

    /// Over a rate limit (`adm` says which, and how long to wait).
    pub(crate) fn rate_limited(self, adm: &Admission, model: &str) -> Reply {
        let (by, wait_ms) = match adm.verdict {
            Verdict::Refused { by, wait_ms } => (by, wait_ms),
            // Not refused: no caller asks; say "requests" rather than panic.
            _ => (Limit::Requests, 1),
        };
        let limit = match by {
            Limit::Requests => adm.requests.map_or(0, |i| i.limit),
            Limit::Tokens => adm.tokens.map_or(0, |i| i.limit),
        };
        let kind = match by {
            Limit::Requests => "requests",
            Limit::Tokens => "tokens",
        };
        let body = match self {
            Dialect::OpenAi => openai::error_body(
                &adm.message(model).unwrap_or_default(),
                kind,
                Some("rate_limit_exceeded"),
            ),
            Dialect::Azure => json!({ "error": { "code": "429", "message": format!(
                "Requests to the ChatCompletions_Create Operation under the shadow-batch mock \
                 have exceeded the {} rate limit of {limit} {kind} per minute. Please retry \
                 after {} second(s).",
                if by == Limit::Tokens { "token" } else { "call" },
                wait_ms.div_ceil(1000).max(1)
            ) } }),
            Dialect::Anthropic => anthropic::error_body(
                "rate_limit_error",
                &match by {
                    Limit::Requests => format!(
                        "This request would exceed the rate limit of the shadow-batch mock of \
                         {limit} requests per minute."
                    ),
                    Limit::Tokens => format!(
                        "This request would exceed the rate limit of the shadow-batch mock of \
                         {limit} input tokens per minute."
                    ),
                },
            ),
            // Google's 429: no retry-after header, the wait in a RetryInfo detail.
            Dialect::Gemini => gemini::error_body(
                429,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
                json!([
                    gemini::quota_failure(
                        match by {
                            Limit::Requests => "GenerateRequestsPerMinutePerProjectPerModel",
                            Limit::Tokens => "GenerateContentInputTokensPerModelPerMinute",
                        },
                        limit
                    ),
                    gemini::retry_info(wait_ms),
                ]),
            ),
        };
        (StatusCode::TOO_MANY_REQUESTS, body)
    }

    /// The headers of a refused request that say how long to wait.
    pub(crate) fn retry_headers(self, adm: &Admission) -> Vec<(&'static str, String)> {
        match self {
            Dialect::OpenAi | Dialect::Azure => adm.retry_headers(),
            // Anthropic sends whole seconds.
            Dialect::Anthropic => match adm.verdict {
                Verdict::Refused { wait_ms, .. } => {
                    vec![("retry-after", wait_ms.div_ceil(1000).max(1).to_string())]
                }
                _ => Vec::new(),
            },
            Dialect::Gemini => Vec::new(),
        }
    }

    /// The rate-limit headers of every answer, from the limits the mock has:
    /// OpenAI's `x-ratelimit-*`; Azure's remaining counts only; Anthropic's
    /// `anthropic-ratelimit-*` with RFC 3339 reset times (`now_ms` is the wall
    /// clock; its token limit is an input-token limit, said as both `tokens` and
    /// `input-tokens`); none from Gemini, which sends none.
    pub(crate) fn limit_headers(
        self,
        adm: Option<&Admission>,
        now_ms: u64,
    ) -> Vec<(&'static str, String)> {
        let requests = adm.and_then(|a| a.requests);
        let tokens = adm.and_then(|a| a.tokens);
        match self {
            Dialect::OpenAi => ratelimit_headers(adm),
            Dialect::Azure => {
                let mut out = Vec::with_capacity(2);
                if let Some(info) = requests {
                    out.push(("x-ratelimit-remaining-requests", info.remaining.to_string()));
                }
                if let Some(info) = tokens {
                    out.push(("x-ratelimit-remaining-tokens", info.remaining.to_string()));
                }
                out
            }
            Dialect::Anthropic => window_headers(
                [
                    (
                        requests,
                        [
                            "anthropic-ratelimit-requests-limit",
                            "anthropic-ratelimit-requests-remaining",
                            "anthropic-ratelimit-requests-reset",
                        ],
                    ),
                    (
                        tokens,
                        [
                            "anthropic-ratelimit-tokens-limit",
                            "anthropic-ratelimit-tokens-remaining",
                            "anthropic-ratelimit-tokens-reset",
                        ],
                    ),
                    (
                        tokens,
                        [
                            "anthropic-ratelimit-input-tokens-limit",
                            "anthropic-ratelimit-input-tokens-remaining",
                            "anthropic-ratelimit-input-tokens-reset",
                        ],
                    ),
                ],
                |info| rfc3339_second(now_ms.saturating_add(info.reset_ms)),
            ),
            Dialect::Gemini => Vec::new(),
        }
    }

    /// The injected server fault: 500 (OpenAI, Azure), 529 `overloaded_error`
    /// (Anthropic), 503 `UNAVAILABLE` (Gemini).
    pub(crate) fn server_error(self) -> Reply {
        match self {
            Dialect::OpenAi | Dialect::Azure => (
                StatusCode::INTERNAL_SERVER_ERROR,
                openai::error_body(
                    "The server had an error while processing your request.",
                    "server_error",
                    None,
                ),
            ),
            Dialect::Anthropic => (
                StatusCode::from_u16(529).expect("529 is a status code"),
                anthropic::error_body("overloaded_error", "Overloaded"),
            ),
            Dialect::Gemini => (
                StatusCode::SERVICE_UNAVAILABLE,
                gemini::error_body(
                    503,
                    "UNAVAILABLE",
                    "The model is overloaded. Please try again later.",
                    json!([]),
                ),
            ),
        }
    }

    /// The account's quota or credit is used up.
    pub(crate) fn quota_exceeded(self) -> Reply {
        match self {
            Dialect::OpenAi | Dialect::Azure => (
                StatusCode::TOO_MANY_REQUESTS,
                openai::error_body(
                    "You exceeded your current quota, please check your plan and billing details.",
                    "insufficient_quota",
                    Some("insufficient_quota"),
                ),
            ),
            Dialect::Anthropic => (
                StatusCode::BAD_REQUEST,
                anthropic::error_body(
                    "invalid_request_error",
                    "Your credit balance is too low to access the Anthropic API. Please go to \
                     Plans & Billing to upgrade or purchase credits.",
                ),
            ),
            Dialect::Gemini => (
                StatusCode::TOO_MANY_REQUESTS,
                gemini::error_body(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "You exceeded your current quota, please check your plan and billing details.",
                    json!([gemini::quota_failure(
                        "GenerateRequestsPerDayPerProjectPerModel",
                        0
                    )]),
                ),
            ),
        }
    }

    /// A model that gives no log-probabilities, in the dialect's words (a 400).
    fn refuses_logprobs(self) -> Reply {
        match self {
            Dialect::Gemini => (
                StatusCode::BAD_REQUEST,
                gemini::error_body(
                    400,
                    "INVALID_ARGUMENT",
                    "Logprobs is not enabled for this model.",
                    Value::Null,
                ),
            ),
            _ => (
                StatusCode::BAD_REQUEST,
                openai::error_body(
                    "This model does not support the 'logprobs' parameter.",
                    "invalid_request_error",
                    Some("unsupported_parameter"),
                ),
            ),
        }
    }

    /// The answer to a request that got through: the label, a malformed text, or a
    /// refusal in the dialect's words. Azure's content filter answers half of its
    /// refusals (by content hash) with a 400 `content_filter`, the other half with a
    /// 200 whose `finish_reason` is `content_filter`.
    pub(crate) fn answer(self, cfg: &MockConfig, req: &Parsed, d: &Decision, body: &[u8]) -> Reply {
        match self {
            _ if cfg.refuse_logprobs && req.logprobs.is_some() => self.refuses_logprobs(),
            Dialect::OpenAi => (StatusCode::OK, openai::completion_body(cfg, req, d, false)),
            Dialect::Azure if d.refused && d.content % 2 == 0 => (
                StatusCode::BAD_REQUEST,
                json!({ "error": {
                    "message": "The response was filtered due to the prompt triggering Azure \
                        OpenAI's content management policy. Please modify your prompt and retry.",
                    "type": null,
                    "param": "prompt",
                    "code": "content_filter",
                    "status": 400,
                    "innererror": {
                        "code": "ResponsibleAIPolicyViolation",
                        "content_filter_result": {
                            "hate": { "filtered": false, "severity": "safe" },
                            "self_harm": { "filtered": false, "severity": "safe" },
                            "sexual": { "filtered": false, "severity": "safe" },
                            "violence": { "filtered": true, "severity": "high" }
                        }
                    }
                } }),
            ),
            Dialect::Azure => (
                StatusCode::OK,
                openai::completion_body(cfg, req, d, d.refused),
            ),
            Dialect::Anthropic => (
                StatusCode::OK,
                anthropic::message_body(cfg, req, d, &anthropic::forced_tool(body)),
            ),
            Dialect::Gemini => (StatusCode::OK, gemini::answer_body(cfg, req, d)),
        }
    }
}

/// `ms` rounded up to a whole second, as RFC 3339 (`2025-01-24T10:30:07Z`).
fn rfc3339_second(ms: u64) -> String {
    let whole = ms.div_ceil(1000).saturating_mul(1000);
    let text = shadow_core::Millis(whole).to_iso8601();
    text.strip_suffix(".000Z")
        .map_or(text.clone(), |t| format!("{t}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::BucketInfo;

    #[test]
    fn labels_are_found_in_the_prompt() {
        let texts = [
            "no list here [not json",
            "Allowed labels (answer with exactly one of them): [\"cat\",\"dog\"] thanks",
        ];
        assert_eq!(
            labels_in_text(&texts),
            Some(vec!["cat".into(), "dog".into()])
        );
        assert_eq!(labels_in_text(&["[1, 2]", "none"]), None);
    }

    #[test]
    fn reset_times_are_rfc3339_whole_seconds() {
        assert_eq!(rfc3339_second(1_737_714_600_000), "2025-01-24T10:30:00Z");
        assert_eq!(rfc3339_second(1_737_714_600_001), "2025-01-24T10:30:01Z");
        let info = Admission {
            verdict: Verdict::Admitted,
            requests: Some(BucketInfo {
                limit: 60,
                remaining: 0,
                reset_ms: 6_500,
            }),
            tokens: None,
            charge: 100,
        };
        let headers = Dialect::Anthropic.limit_headers(Some(&info), 1_737_714_600_000);
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("anthropic-ratelimit-requests-limit"), Some("60"));
        assert_eq!(get("anthropic-ratelimit-requests-remaining"), Some("0"));
        assert_eq!(
            get("anthropic-ratelimit-requests-reset"),
            Some("2025-01-24T10:30:07Z")
        );
        // No token limit, no token headers.
        assert_eq!(get("anthropic-ratelimit-tokens-limit"), None);
        assert!(Dialect::Gemini.limit_headers(Some(&info), 0).is_empty());
        assert!(Dialect::Azure
            .limit_headers(Some(&info), 0)
            .iter()
            .all(|(n, _)| n.starts_with("x-ratelimit-remaining-")));
    }
}
