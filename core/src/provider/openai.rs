//! OpenAI-compatible chat completions: the request body and the answer parser.
//!
//! The parser is on the engine's hot path, so it deserializes into small typed structs
//! that borrow from the body, takes only the first choice, and never builds a
//! `serde_json::Value` unless the body turns out to be an error.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{
    match_label, parse_api_error, single_mention, snippet, truncate, AnswerError, ImageDetail,
    OpenAiConfig, RawUsage, RequestInput, DEFAULT_PROMPT, MAX_DETAIL_CHARS,
};
use crate::input::LabelSet;
use crate::provider::Answer;

/// `{base_url}/chat/completions`, unless the base URL already names the endpoint.
pub(super) fn endpoint_url(base_url: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    if base.ends_with("/chat/completions") {
        base.to_owned()
    } else {
        format!("{base}/chat/completions")
    }
}

// ---------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    temperature: u8,
    /// What a label needs (`super::answer_token_budget`): the endpoint counts it
    /// against the tokens-per-minute limit when the request is admitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    /// The same, for reasoning models, which refuse `max_tokens` and think before
    /// they answer (`super::is_reasoning_model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    messages: [Message<'a>; 2],
    response_format: ResponseFormat<'a>,
    /// Asked for the answer's confidence (`crate::confidence`): non-reasoning
    /// models only (reasoning models refuse them).
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_logprobs: Option<u8>,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum Message<'a> {
    System { content: &'a str },
    User { content: [Part<'a>; 2] },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part<'a> {
    Text { text: String },
    ImageUrl { image_url: ImageUrl<'a> },
}

#[derive(Serialize)]
struct ImageUrl<'a> {
    url: &'a str,
    detail: &'static str,
}

#[derive(Serialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    json_schema: JsonSchema<'a>,
}

#[derive(Serialize)]
struct JsonSchema<'a> {
    name: &'static str,
    strict: bool,
    schema: Schema<'a>,
}

#[derive(Serialize)]
struct Schema<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    properties: Properties<'a>,
    required: [&'static str; 1],
    #[serde(rename = "additionalProperties")]
    additional_properties: bool,
}

#[derive(Serialize)]
struct Properties<'a> {
    label: LabelSchema<'a>,
}

#[derive(Serialize)]
struct LabelSchema<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "enum")]
    values: &'a [String],
}

fn detail_str(detail: ImageDetail) -> &'static str {
    match detail {
        ImageDetail::Auto => "auto",
        ImageDetail::Low => "low",
        ImageDetail::High => "high",
    }
}

/// The JSON body of a chat-completions request for one image; with `logprobs`,
/// asking for the chosen tokens' log-probabilities and their
/// [`crate::confidence::TOP_LOGPROBS`] top alternatives.
pub(super) fn build_body(cfg: &OpenAiConfig, input: &RequestInput, logprobs: bool) -> String {
    let names = input.labels.names();
    // The label list is written as a JSON array so labels with quotes, commas or
    // newlines stay unambiguous.
    let list = serde_json::to_string(names).expect("a list of strings serializes");
    let budget = super::answer_token_budget(input.labels, &cfg.model);
    let reasoning = super::is_reasoning_model(&cfg.model);
    let request = ChatRequest {
        model: &cfg.model,
        temperature: 0,
        max_tokens: (!reasoning).then_some(budget),
        max_completion_tokens: reasoning.then_some(budget),
        messages: [
            Message::System {
                content: cfg.prompt.as_deref().unwrap_or(DEFAULT_PROMPT),
            },
            Message::User {
                content: [
                    Part::Text {
                        text: format!("Allowed labels (answer with exactly one of them): {list}"),
                    },
                    Part::ImageUrl {
                        image_url: ImageUrl {
                            url: input.image_url,
                            detail: detail_str(cfg.detail),
                        },
                    },
                ],
            },
        ],
        response_format: ResponseFormat {
            kind: "json_schema",
            json_schema: JsonSchema {
                name: "classification",
                strict: true,
                schema: Schema {
                    kind: "object",
                    properties: Properties {
                        label: LabelSchema {
                            kind: "string",
                            values: names,
                        },
                    },
                    required: ["label"],
                    additional_properties: false,
                },
            },
        },
        logprobs: logprobs.then_some(true),
        top_logprobs: logprobs.then_some(crate::confidence::TOP_LOGPROBS),
    };
    // Sized for the image up front: the body is mostly the image, and growing a
    // buffer of image size by doubling copies it several times.
    let mut body = Vec::with_capacity(input.image_url.len() + 2 * list.len() + 1024);
    serde_json::to_writer(&mut body, &request).expect("the request serializes");
    String::from_utf8(body).expect("serde_json writes UTF-8")
}

// ---------------------------------------------------------------------------------
// Answer
// ---------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ChatResponse<'a> {
    #[serde(default, borrow)]
    choices: FirstChoice<'a>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    message: Option<ChatMessage<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Text<'a>>,
    /// Read only when present (asked for): `{"content": [...]}`.
    #[serde(default)]
    logprobs: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChatMessage<'a> {
    #[serde(default, borrow)]
    content: Option<Text<'a>>,
    #[serde(default, borrow)]
    refusal: Option<Text<'a>>,
}

/// A JSON string, borrowed from the body when it has no escapes. (A bare
/// `Option<Cow<str>>` would always allocate: serde only borrows a `Cow` field itself.)
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// The content's `{"label": ...}` object.
#[derive(Deserialize)]
struct LabelObject<'a> {
    #[serde(borrow)]
    label: Scalar<'a>,
}

/// A string, or a number taken as its text (`{"label": 3}` for a label `3`).
struct Scalar<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The first element of `choices`; the rest are skipped without being built.
/// `None` when `choices` is missing, null or empty.
#[derive(Default)]
struct FirstChoice<'a>(Option<Choice<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstChoice<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FirstChoice<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(FirstChoice(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(FirstChoice(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<Choice<'de>>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstChoice(first))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Reads a chat-completions answer.
pub(super) fn parse_answer(body: &str, labels: &LabelSet) -> Result<Answer, AnswerError> {
    let response: ChatResponse = match serde_json::from_str(body) {
        Ok(response) => response,
        Err(e) => {
            if let Some(api) = parse_api_error(body) {
                return Err(AnswerError::ErrorBody(api));
            }
            return Err(if e.is_syntax() || e.is_eof() {
                AnswerError::malformed(format!("not JSON ({e}): {}", snippet(body)))
            } else {
                AnswerError::malformed(format!("not a chat completion ({e})"))
            });
        }
    };
    if response.error.is_some() {
        if let Some(api) = parse_api_error(body) {
            return Err(AnswerError::ErrorBody(api));
        }
    }
    let usage = response.usage.and_then(RawUsage::into_usage);
    let choice = response
        .choices
        .0
        .ok_or_else(|| AnswerError::malformed("the answer has no choices"))?;
    let finish_reason = choice.finish_reason.as_ref().map(|t| &*t.0);
    // Azure's (and some proxies') content filter: a refusal, not a broken answer.
    if finish_reason == Some("content_filter") {
        return Err(AnswerError::Refusal(
            "the endpoint's content filter withheld the answer (finish_reason content_filter)"
                .to_owned(),
        ));
    }
    let message = choice
        .message
        .ok_or_else(|| AnswerError::malformed("the first choice has no message"))?;
    if let Some(refusal) = message.refusal.as_ref().map(|t| t.0.trim()) {
        if !refusal.is_empty() {
            return Err(AnswerError::Refusal(truncate(refusal, MAX_DETAIL_CHARS)));
        }
    }
    let Some(content) = message.content else {
        return Err(AnswerError::malformed(format!(
            "the message has no content (finish_reason {})",
            finish_reason.unwrap_or("missing")
        )));
    };
    let label = parse_content(&content.0, finish_reason, labels)?;
    let confidence = super::logprobs::scored(
        super::logprobs::openai_steps(choice.logprobs.as_ref()),
        label,
        labels,
    );
    Ok(Answer::new(label, usage, &content.0).with_confidence(confidence))
}

/// Reads the model's text: `{"label": ...}` JSON (possibly in a ```json fence), a JSON
/// string, a bare label, or a short sentence naming exactly one label as a whole word
/// (`single_mention`). `finish_reason` `length` says a broken answer was cut short.
/// (Anthropic's and Gemini's text answers are read the same way.)
pub(super) fn parse_content(
    content: &str,
    finish_reason: Option<&str>,
    labels: &LabelSet,
) -> Result<usize, AnswerError> {
    let text = strip_fence(content);
    match text.as_bytes().first() {
        None => Err(AnswerError::malformed("the model's answer is empty")),
        Some(b'{') => match serde_json::from_str::<LabelObject>(text) {
            Ok(object) => match_label(&object.label.0, labels),
            Err(e) => labels.match_answer(text).ok_or_else(|| {
                let cut = if finish_reason == Some("length") {
                    " (the answer was cut short: finish_reason length)"
                } else {
                    ""
                };
                AnswerError::malformed(format!(
                    "the model's answer is not {{\"label\": ...}} JSON{cut} ({e}): {}",
                    snippet(text)
                ))
            }),
        },
        Some(b'"') => match serde_json::from_str::<Text>(text) {
            Ok(s) => match_label(&s.0, labels),
            Err(_) => match_label(text, labels),
        },
        // Prose ("It is a cat."): the one label it names, if it names one.
        Some(_) => match_label(text, labels).or_else(|e| single_mention(text, labels).ok_or(e)),
    }
}

/// `s` trimmed, without a surrounding Markdown code fence (```` ```json ... ``` ````).
fn strip_fence(s: &str) -> &str {
    let s = s.trim();
    let Some(inner) = s.strip_prefix("```") else {
        return s;
    };
    let inner = inner.strip_suffix("```").unwrap_or(inner);
    let inner = match inner.find('\n') {
        // First line is the info string (`json`, or nothing).
        Some(nl)
            if inner[..nl]
                .trim()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric()) =>
        {
            &inner[nl + 1..]
        }
        Some(_) => inner,
        // One line: ```json {"label": "cat"}```
        None => match inner.trim_start().strip_prefix("json") {
            Some(rest) if rest.starts_with(|c: char| c.is_whitespace() || c == '{') => rest,
            _ => inner,
        },
    };
    inner.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_fence_cases() {
        for (text, inner) in [
            ("  plain  ", "plain"),
            ("```json\n{\"a\":1}\n```", "{\"a\":1}"),
            ("```\n{\"a\":1}\n```", "{\"a\":1}"),
            ("```json{\"a\":1}```", "{\"a\":1}"),
            ("```json {\"a\":1}```", "{\"a\":1}"),
            ("```cat```", "cat"),
            ("```jsonish```", "jsonish"),
            // Unclosed fence.
            ("```json\n{\"a\":1}", "{\"a\":1}"),
            // First line is content, not an info string.
            ("```{\"a\": 1}\n```", "{\"a\": 1}"),
        ] {
            assert_eq!(strip_fence(text), inner, "{text:?}");
        }
    }

    #[test]
    fn endpoint_url_trims() {
        assert_eq!(endpoint_url("http://h/v1"), "http://h/v1/chat/completions");
        assert_eq!(
            endpoint_url(" http://h/v1// "),
            "http://h/v1/chat/completions"
        );
        assert_eq!(
            endpoint_url("http://h/v1/chat/completions"),
            "http://h/v1/chat/completions"
        );
    }

    #[test]
    fn content_text_is_borrowed_when_unescaped() {
        let body = r#"{"choices":[{"message":{"content":"cat"},"finish_reason":"stop"}]}"#;
        let r: ChatResponse = serde_json::from_str(body).unwrap();
        let choice = r.choices.0.unwrap();
        assert!(matches!(
            choice.message.unwrap().content.unwrap().0,
            Cow::Borrowed("cat")
        ));
        assert!(matches!(
            choice.finish_reason.unwrap().0,
            Cow::Borrowed("stop")
        ));
    }
}
