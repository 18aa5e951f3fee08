//! Reading what an endpoint says back: errors in its body, model listings, and the
//! matching of an answer to a label.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cost::Usage;
use crate::input::LabelSet;

use super::{MAX_ANSWER_CHARS, MAX_API_MESSAGE_CHARS, MAX_DETAIL_CHARS};

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
pub(super) fn api_error_from_value(value: &serde_json::Value) -> Option<ApiError> {
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
pub(super) struct RawUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

impl RawUsage {
    /// `None` when no count at all was given; a missing total is the sum of the others.
    pub(super) fn into_usage(self) -> Option<Usage> {
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
    pub(super) fn malformed(detail: impl Into<String>) -> Self {
        AnswerError::Malformed {
            detail: truncate(&detail.into(), MAX_DETAIL_CHARS),
        }
    }

    pub(super) fn outside(answer: &str) -> Self {
        AnswerError::OutsideLabelSet {
            answer: truncate(answer, MAX_ANSWER_CHARS),
        }
    }
}

/// Matches `answer` against the label set, or says it is outside it.
pub(super) fn match_label(answer: &str, labels: &LabelSet) -> Result<usize, AnswerError> {
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
pub(super) fn single_mention(answer: &str, labels: &LabelSet) -> Option<usize> {
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
pub(super) fn truncate(s: &str, max: usize) -> String {
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
pub(super) fn snippet(body: &str) -> String {
    truncate(body.trim(), 60).replace(['\n', '\r'], " ")
}
