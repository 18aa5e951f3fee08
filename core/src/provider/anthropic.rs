//! Anthropic's Messages API (`POST /v1/messages`): the request body and the answer
//! parser.
//!
//! **How the label is constrained: forced tool use.** The request offers one tool,
//! `classify_image`, whose input schema has a single `label` property whose `enum`
//! is the CSV's labels, and forces it with `tool_choice: {"type": "tool", "name":
//! "classify_image"}`; the label is read from the `tool_use` block's `input`. This
//! works with every Claude model that reads images (Claude 3 and later). Anthropic's
//! structured outputs (`output_config.format` with a JSON schema, formerly the beta
//! `output_format`) were not chosen: they are generally available only on recent
//! models (Claude Haiku 4.5, Sonnet 4.5, Opus 4.5 and later) and refused by the
//! others, and forced tool use gives the same enum to the model.
//!
//! The image goes first (Anthropic's advice for vision prompts) as a `base64` source
//! when the host passes a `data:` URL (every local file), or as a `url` source for an
//! `http(s)` URL. `max_tokens` is what a tool call with the longest label needs
//! ([`max_tokens`]). Headers: `anthropic-version: 2023-06-01`; the host adds
//! `x-api-key`.

use serde_json::{json, Value};

use super::image_part::ImagePart;
use super::openai::parse_content;
use super::{
    allowed_labels_text, api_error_from_value, match_label, snippet, truncate, AnswerError,
    AnthropicConfig, MAX_DETAIL_CHARS,
};
use crate::cost::Usage;
use crate::input::LabelSet;
use crate::provider::Answer;

/// The `anthropic-version` header sent with every request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The public API's base URL (`--base-url` default).
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The model asked for when none is named: the smallest current Claude that reads
/// images.
pub const DEFAULT_MODEL: &str = "claude-haiku-4-5";

/// The one tool the model is made to call.
pub const TOOL_NAME: &str = "classify_image";

/// The system prompt when [`AnthropicConfig::prompt`] is `None`.
pub const TOOL_PROMPT: &str = "You are an image classifier. Classify the image into \
exactly one of the allowed labels given by the user, and record it with the \
classify_image tool, the label spelled exactly as given.";

/// Output tokens of a `classify_image` call beyond its label (the block's framing
/// and `{"label": ""}`); generous, since a cut-short call is a failed row.
const TOOL_CALL_TOKENS: usize = 128;
/// The most `max_tokens` is ever set to.
const MAX_TOKENS_CAP: usize = 4096;

/// `{base}/v1/messages`; a base that already ends in `/v1` gets `/messages`, one that
/// already ends in `/v1/messages` is used as it is.
pub(super) fn endpoint_url(base_url: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    if base.ends_with("/v1/messages") {
        base.to_owned()
    } else if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

/// `max_tokens` for a label set: a tool call's framing plus the longest label's
/// length in bytes (a token is never shorter than a byte of UTF-8), capped at 4096.
pub fn max_tokens(labels: &LabelSet) -> u32 {
    let longest = labels.names().iter().map(String::len).max().unwrap_or(0);
    (TOOL_CALL_TOKENS + longest).min(MAX_TOKENS_CAP) as u32
}

/// The JSON body of a Messages request for one image.
pub(super) fn build_body(cfg: &AnthropicConfig, labels: &LabelSet, image: &ImagePart) -> String {
    let source = match image {
        ImagePart::Url { url, .. } => json!({ "type": "url", "url": url }),
        ImagePart::Inline { mime, data } => {
            json!({ "type": "base64", "media_type": mime, "data": data })
        }
    };
    let body = json!({
        "model": cfg.model,
        "max_tokens": max_tokens(labels),
        "temperature": 0,
        "system": cfg.prompt.as_deref().unwrap_or(TOOL_PROMPT),
        "tools": [{
            "name": TOOL_NAME,
            "description": "Records the label of the image: exactly one of the allowed labels.",
            "input_schema": {
                "type": "object",
                "properties": { "label": { "type": "string", "enum": labels.names() } },
                "required": ["label"],
                "additionalProperties": false
            }
        }],
        "tool_choice": { "type": "tool", "name": TOOL_NAME },
        "messages": [{
            "role": "user",
            "content": [
                { "type": "image", "source": source },
                { "type": "text", "text": allowed_labels_text(labels) }
            ]
        }]
    });
    body.to_string()
}

/// Reads a Messages answer: the label from the `tool_use` block's `input`.
///
/// `stop_reason: "refusal"` is a refusal (with the answer's text, if any);
/// `"max_tokens"` without a tool call is a cut-short, malformed answer. An answer
/// with text but no tool call (a proxy that dropped the tool) is read as the other
/// providers' text is: `{"label": ...}` JSON or a bare label.
pub(super) fn parse_answer(body: &str, labels: &LabelSet) -> Result<Answer, AnswerError> {
    let value: Value = serde_json::from_str(body)
        .map_err(|e| AnswerError::malformed(format!("not JSON ({e}): {}", snippet(body))))?;
    let is_error = value.get("type").and_then(Value::as_str) == Some("error")
        || value.get("error").is_some_and(|e| !e.is_null());
    if is_error {
        if let Some(api) = api_error_from_value(&value) {
            return Err(AnswerError::ErrorBody(api));
        }
    }
    let Some(message) = value.as_object() else {
        return Err(AnswerError::malformed("the answer is not a message object"));
    };
    let usage = message.get("usage").and_then(read_usage);
    let stop = message.get("stop_reason").and_then(Value::as_str);
    let blocks: &[Value] = message
        .get("content")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let kind = |b: &Value| b.get("type").and_then(Value::as_str).map(str::to_owned);
    let text = blocks
        .iter()
        .filter(|b| kind(b).as_deref() == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let text = text.trim();
    if stop == Some("refusal") {
        let said = if text.is_empty() {
            "(stop_reason refusal, no text)"
        } else {
            text
        };
        return Err(AnswerError::Refusal(truncate(said, MAX_DETAIL_CHARS)));
    }
    if let Some(call) = blocks
        .iter()
        .find(|b| kind(b).as_deref() == Some("tool_use"))
    {
        let label = match call.get("input").and_then(|i| i.get("label")) {
            Some(Value::String(s)) => match_label(s, labels)?,
            Some(Value::Number(n)) => match_label(&n.to_string(), labels)?,
            Some(other) => {
                return Err(AnswerError::malformed(format!(
                    "the tool call's label is {}, expected a string",
                    json_kind(other)
                )))
            }
            None => {
                let input = call.get("input").map(Value::to_string).unwrap_or_default();
                return Err(AnswerError::malformed(format!(
                    "the tool call has no label (its input: {})",
                    snippet(&input)
                )));
            }
        };
        let input = call.get("input").map(Value::to_string).unwrap_or_default();
        return Ok(Answer::new(label, usage, &input));
    }
    if stop == Some("max_tokens") {
        return Err(AnswerError::malformed(
            "the answer was cut short (stop_reason max_tokens) before the tool call",
        ));
    }
    if blocks.is_empty() && message.get("content").is_none() {
        return Err(AnswerError::malformed(format!(
            "the answer has no content (stop_reason {})",
            stop.unwrap_or("missing")
        )));
    }
    if text.is_empty() {
        return Err(AnswerError::malformed(format!(
            "the answer has no tool call and no text (stop_reason {})",
            stop.unwrap_or("missing")
        )));
    }
    let label = parse_content(text, None, labels)?;
    Ok(Answer::new(label, usage, text))
}

/// `usage`: `input_tokens` (plus any cache-creation and cache-read input tokens,
/// which Anthropic counts apart) as the prompt, `output_tokens` as the completion.
fn read_usage(usage: &Value) -> Option<Usage> {
    let count = |name: &str| usage.get(name).and_then(Value::as_u64);
    let input = count("input_tokens");
    let output = count("output_tokens");
    if input.is_none() && output.is_none() {
        return None;
    }
    let prompt_tokens = input
        .unwrap_or(0)
        .saturating_add(count("cache_creation_input_tokens").unwrap_or(0))
        .saturating_add(count("cache_read_input_tokens").unwrap_or(0));
    let completion_tokens = output.unwrap_or(0);
    Some(Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens.saturating_add(completion_tokens),
    })
}

/// "null", "a boolean", ... for a detail.
pub(super) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::tests::answered;
    use crate::provider::{ApiError, Provider};

    fn labels() -> LabelSet {
        LabelSet::from_labels(["cat", "dog", "bird"])
    }

    fn provider(prompt: Option<&str>) -> Provider {
        Provider::Anthropic(AnthropicConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            model: "claude-sonnet-4-5".to_owned(),
            prompt: prompt.map(str::to_owned),
        })
    }

    fn parse(body: &str) -> Result<Answer, AnswerError> {
        provider(None).parse_answer(body, &labels())
    }

    fn malformed(body: &str) -> String {
        crate::provider::tests::malformed(parse(body))
    }

    /// The request of the Messages API docs' vision + forced-tool example, with this
    /// tool and these labels.
    #[test]
    fn request_is_a_messages_call_with_a_forced_tool_and_a_base64_image() {
        let req = provider(None).request_template(&labels()).build(
            "data:image/png;base64,iVBORw0KGgo=",
            2,
            Some("row-1"),
        );
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, "https://api.anthropic.com/v1/messages");
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(header("content-type"), Some("application/json"));
        assert_eq!(header("x-stainless-retry-count"), Some("1"));
        assert_eq!(header("x-api-key"), None, "the host adds the key");
        assert_eq!(header("authorization"), None);
        let body: Value = serde_json::from_str(&req.body).unwrap();
        let expected = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 132,
            "temperature": 0,
            "system": TOOL_PROMPT,
            "tools": [{
                "name": "classify_image",
                "description": "Records the label of the image: exactly one of the allowed labels.",
                "input_schema": {
                    "type": "object",
                    "properties": {"label": {"type": "string", "enum": ["bird", "cat", "dog"]}},
                    "required": ["label"],
                    "additionalProperties": false
                }
            }],
            "tool_choice": {"type": "tool", "name": "classify_image"},
            "messages": [{
                "role": "user",
                "content": [
                    {"type": "image", "source": {
                        "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "text",
                     "text": "Allowed labels (answer with exactly one of them): [\"bird\",\"cat\",\"dog\"]"}
                ]
            }]
        });
        assert_eq!(body, expected);
        assert!(!req.body.contains("row-1"), "the item id is not sent");
    }

    #[test]
    fn an_http_image_goes_as_a_url_source_and_the_prompt_is_the_system_text() {
        let req = provider(Some("Which animal?"))
            .request_template(&labels())
            .build("https://example.test/cat.jpg", 1, None);
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(
            body["messages"][0]["content"][0],
            json!({"type": "image", "source": {"type": "url", "url": "https://example.test/cat.jpg"}})
        );
        assert_eq!(body["system"], "Which animal?");
    }

    /// A tool-use answer as the docs show it (a text block may come first).
    #[test]
    fn the_label_is_read_from_the_tool_input_with_usage() {
        let body = r#"{
            "id": "msg_01Aq9w938a90dw8q",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [
                {"type": "text", "text": "I'll classify this image."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9",
                 "name": "classify_image", "input": {"label": "dog"}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 1543, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 10, "output_tokens": 41}
        }"#;
        assert_eq!(
            parse(body),
            answered(2, 1553, 41, 1594, r#"{"label":"dog"}"#)
        );
        // Labels are matched as the other providers' are (case, spaces).
        let body = r#"{"content": [{"type": "tool_use", "name": "classify_image",
            "input": {"label": " Cat "}}], "stop_reason": "tool_use"}"#;
        assert_eq!(
            parse(body).unwrap(),
            Answer {
                label: 1,
                usage: None,
                text: r#"{"label":" Cat "}"#.into(),
                confidence: crate::confidence::Scored::Unscored,
            }
        );
        let body = r#"{"content": [{"type": "tool_use", "input": {"label": "zebra"}}]}"#;
        assert_eq!(
            parse(body),
            Err(AnswerError::OutsideLabelSet {
                answer: "zebra".to_owned()
            })
        );
    }

    #[test]
    fn refusals_and_stop_reasons_are_told_apart() {
        // stop_reason "refusal": a refusal, with the text when there is one.
        let body = r#"{"id": "msg_x", "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": "I can't help with that image."}],
            "stop_reason": "refusal", "usage": {"input_tokens": 900, "output_tokens": 9}}"#;
        assert_eq!(
            parse(body),
            Err(AnswerError::Refusal(
                "I can't help with that image.".to_owned()
            ))
        );
        let body = r#"{"content": [], "stop_reason": "refusal"}"#;
        assert!(matches!(parse(body), Err(AnswerError::Refusal(t)) if t.contains("refusal")));
        // max_tokens before the tool call: cut short, not a refusal.
        let body = r#"{"content": [{"type": "text", "text": "The image shows"}],
            "stop_reason": "max_tokens"}"#;
        let detail = malformed(body);
        assert!(
            detail.contains("cut short") && detail.contains("max_tokens"),
            "{detail}"
        );
        // end_turn with text only: the text is read as a label...
        let body = r#"{"content": [{"type": "text", "text": "{\"label\": \"bird\"}"}],
            "stop_reason": "end_turn"}"#;
        assert_eq!(parse(body).unwrap().label, 0);
        // ... and no tool call and no text at all says so.
        let detail = malformed(r#"{"content": [], "stop_reason": "end_turn"}"#);
        assert!(detail.contains("no tool call and no text"), "{detail}");
        assert!(malformed(r#"{"id": "msg_x"}"#).contains("no content"));
    }

    #[test]
    fn a_tool_call_without_a_usable_label_is_malformed() {
        let detail =
            malformed(r#"{"content": [{"type": "tool_use", "input": {"animal": "cat"}}]}"#);
        assert!(
            detail.contains("no label") && detail.contains("animal"),
            "{detail}"
        );
        let detail =
            malformed(r#"{"content": [{"type": "tool_use", "input": {"label": ["cat"]}}]}"#);
        assert!(detail.contains("an array"), "{detail}");
        let digits = LabelSet::from_labels(["3", "7"]);
        let body = r#"{"content": [{"type": "tool_use", "input": {"label": 7}}]}"#;
        assert_eq!(provider(None).parse_answer(body, &digits).unwrap().label, 1);
        assert!(malformed("<html>502</html>").starts_with("not JSON"));
        assert!(malformed("[1]").contains("not a message"));
    }

    /// The error shape of the docs' "Errors" page: the type is also the code.
    #[test]
    fn error_bodies_are_read_with_their_type_as_code() {
        let body = r#"{"type": "error", "error": {"type": "overloaded_error",
            "message": "Overloaded"}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}"#;
        let expected = ApiError {
            message: "Overloaded".to_owned(),
            kind: Some("overloaded_error".to_owned()),
            code: Some("overloaded_error".to_owned()),
        };
        assert_eq!(
            crate::provider::parse_api_error(body),
            Some(expected.clone())
        );
        assert_eq!(parse(body), Err(AnswerError::ErrorBody(expected)));
    }

    #[test]
    fn endpoint_url_forms() {
        assert_eq!(
            endpoint_url("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            endpoint_url(" https://api.anthropic.com/ "),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:9/v1"),
            "http://127.0.0.1:9/v1/messages"
        );
        assert_eq!(
            endpoint_url("http://proxy.test/anthropic/v1/messages/"),
            "http://proxy.test/anthropic/v1/messages"
        );
    }

    #[test]
    fn max_tokens_follows_the_longest_label() {
        assert_eq!(max_tokens(&LabelSet::from_labels(["cat", "dog"])), 131);
        let long = "é".repeat(100); // 200 bytes
        assert_eq!(max_tokens(&LabelSet::from_labels([long.as_str()])), 328);
        let huge = "x".repeat(10_000);
        assert_eq!(max_tokens(&LabelSet::from_labels([huge.as_str()])), 4096);
    }
}
