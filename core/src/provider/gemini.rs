//! Google's Gemini API (`POST {base}/models/{model}:generateContent`): the request
//! body and the answer parser.
//!
//! The label is constrained by JSON output: `generationConfig.responseMimeType:
//! "application/json"` with a `responseSchema` object whose `label` property is a
//! `STRING` with the CSV's labels as its `enum`; the answer is the text of
//! `candidates[0].content.parts` (thought parts skipped), read as `{"label": ...}`.
//!
//! The image is an `inline_data` part (`mime_type`, base64 `data`) when the host
//! passes a `data:` URL (every local file), or a `file_data` part (`file_uri`, the
//! MIME type guessed from the file name) for an `http(s)` URL. The key goes in the
//! `x-goog-api-key` header, which the host adds; never in the URL, where proxies and
//! logs would keep it.

use serde_json::{json, Value};

use super::image_part::{encode_path, ImagePart};
use super::openai::parse_content;
use super::{
    allowed_labels_text, api_error_from_value, snippet, AnswerError, GeminiConfig, DEFAULT_PROMPT,
};
use crate::cost::Usage;
use crate::input::LabelSet;
use crate::provider::Answer;

/// The public API's base URL, up to its version (`--base-url` default).
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

/// The model asked for when none is named.
pub const DEFAULT_MODEL: &str = "gemini-2.5-flash";

/// `finishReason`s (and `promptFeedback.blockReason`s) that mean the endpoint's
/// safety or policy filters withheld the answer: counted as refusals.
const BLOCKED: [&str; 7] = [
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
];

/// `{base}/models/{model}:generateContent`. The base is taken up to its version
/// segment (`/v1beta`, `/v1`, ...); a base without one gets `/v1beta`. A model with a
/// `/` (`models/x`, `tunedModels/y`) is used as the resource name itself. A base that
/// already names `:generateContent` is used as it is.
pub(super) fn endpoint_url(base_url: &str, model: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    if base.ends_with(":generateContent") {
        return base.to_owned();
    }
    let versioned = base
        .rsplit('/')
        .next()
        .is_some_and(|segment| segment.starts_with("v1"));
    let model = model.trim().trim_start_matches('/');
    let resource = if model.contains('/') {
        encode_path(model, true).into_owned()
    } else {
        format!("models/{}", encode_path(model, false))
    };
    if versioned {
        format!("{base}/{resource}:generateContent")
    } else {
        format!("{base}/v1beta/{resource}:generateContent")
    }
}

/// The JSON body of a `generateContent` request for one image; with `logprobs`,
/// asking for the chosen tokens' log-probabilities (`responseLogprobs`) and their
/// [`crate::confidence::TOP_LOGPROBS`] top alternatives (`logprobs`).
pub(super) fn build_body(
    cfg: &GeminiConfig,
    labels: &LabelSet,
    image: &ImagePart,
    logprobs: bool,
) -> String {
    let image = match image {
        ImagePart::Inline { mime, data } => {
            json!({ "inline_data": { "mime_type": mime, "data": data } })
        }
        ImagePart::Url { url, mime } => {
            json!({ "file_data": { "mime_type": mime, "file_uri": url } })
        }
    };
    let mut body = json!({
        "system_instruction": {
            "parts": [{ "text": cfg.prompt.as_deref().unwrap_or(DEFAULT_PROMPT) }]
        },
        "contents": [{
            "role": "user",
            "parts": [image, { "text": allowed_labels_text(labels) }]
        }],
        "generationConfig": {
            "temperature": 0,
            "responseMimeType": "application/json",
            "responseSchema": {
                "type": "OBJECT",
                "properties": { "label": { "type": "STRING", "enum": labels.names() } },
                "required": ["label"]
            }
        }
    });
    if logprobs {
        let config = &mut body["generationConfig"];
        config["responseLogprobs"] = json!(true);
        config["logprobs"] = json!(crate::confidence::TOP_LOGPROBS);
    }
    body.to_string()
}

/// Reads a `generateContent` answer.
///
/// A `finishReason` (or, with no candidate, a `promptFeedback.blockReason`) of
/// `SAFETY`, `RECITATION` and the other blocking reasons is a refusal; `MAX_TOKENS`
/// is a cut-short answer.
pub(super) fn parse_answer(body: &str, labels: &LabelSet) -> Result<Answer, AnswerError> {
    let value: Value = serde_json::from_str(body)
        .map_err(|e| AnswerError::malformed(format!("not JSON ({e}): {}", snippet(body))))?;
    if value.get("error").is_some_and(|e| !e.is_null()) {
        if let Some(api) = api_error_from_value(&value) {
            return Err(AnswerError::ErrorBody(api));
        }
    }
    let usage = value
        .get("usageMetadata")
        .or_else(|| value.get("usage_metadata"))
        .and_then(read_usage);
    let candidate = value
        .get("candidates")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let Some(candidate) = candidate else {
        let blocked = value
            .pointer("/promptFeedback/blockReason")
            .or_else(|| value.pointer("/prompt_feedback/block_reason"))
            .and_then(Value::as_str);
        return Err(match blocked {
            Some(reason) => AnswerError::Refusal(format!(
                "the request was blocked (promptFeedback.blockReason {reason})"
            )),
            None => AnswerError::malformed("the answer has no candidates"),
        });
    };
    let finish = candidate
        .get("finishReason")
        .or_else(|| candidate.get("finish_reason"))
        .and_then(Value::as_str);
    if let Some(reason) = finish.filter(|r| BLOCKED.contains(r)) {
        return Err(AnswerError::Refusal(format!(
            "the answer was blocked (finishReason {reason})"
        )));
    }
    let text: String = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|part| part.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect();
    let cut = finish == Some("MAX_TOKENS");
    if text.trim().is_empty() {
        return Err(AnswerError::malformed(if cut {
            "the answer was cut short (finishReason MAX_TOKENS) before any text".to_owned()
        } else {
            format!(
                "the answer has no text (finishReason {})",
                finish.unwrap_or("missing")
            )
        }));
    }
    let label = parse_content(&text, cut.then_some("length"), labels)?;
    let confidence = super::logprobs::scored(
        super::logprobs::gemini_steps(
            candidate
                .get("logprobsResult")
                .or_else(|| candidate.get("logprobs_result")),
        ),
        label,
        labels,
    );
    Ok(Answer::new(label, usage, &text).with_confidence(confidence))
}

/// `usageMetadata`: `promptTokenCount` as the prompt; `candidatesTokenCount` plus
/// `thoughtsTokenCount` (thinking is billed as output) as the completion.
fn read_usage(meta: &Value) -> Option<Usage> {
    let count = |name: &str| meta.get(name).and_then(Value::as_u64);
    let prompt = count("promptTokenCount");
    let candidates = count("candidatesTokenCount");
    let thoughts = count("thoughtsTokenCount");
    let total = count("totalTokenCount");
    if prompt.is_none() && candidates.is_none() && total.is_none() {
        return None;
    }
    let prompt_tokens = prompt.unwrap_or(0);
    let completion_tokens = candidates
        .unwrap_or(0)
        .saturating_add(thoughts.unwrap_or(0));
    Some(Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: total.unwrap_or(prompt_tokens.saturating_add(completion_tokens)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::tests::answered;
    use crate::provider::{ApiError, Provider};

    fn labels() -> LabelSet {
        LabelSet::from_labels(["cat", "dog", "bird"])
    }

    fn provider() -> Provider {
        Provider::Gemini(GeminiConfig::default())
    }

    fn parse(body: &str) -> Result<Answer, AnswerError> {
        provider().parse_answer(body, &labels())
    }

    fn malformed(body: &str) -> String {
        crate::provider::tests::malformed(parse(body))
    }

    /// The docs' "image input" REST request with a response schema, for these labels.
    #[test]
    fn request_has_an_inline_image_and_a_label_enum_schema() {
        let req = provider().request_template(&labels()).build(
            "data:image/jpeg;base64,/9j/4AAQSkZJRg==",
            1,
            None,
        );
        assert_eq!(
            req.url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert!(!req.url.contains("key="), "the key never goes in the URL");
        assert!(req
            .headers
            .iter()
            .all(|(k, _)| k != "x-goog-api-key" && k != "authorization"));
        let body: Value = serde_json::from_str(&req.body).unwrap();
        let expected = json!({
            "system_instruction": {"parts": [{"text": DEFAULT_PROMPT}]},
            "contents": [{
                "role": "user",
                "parts": [
                    {"inline_data": {"mime_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
                    {"text": "Allowed labels (answer with exactly one of them): [\"bird\",\"cat\",\"dog\"]"}
                ]
            }],
            "generationConfig": {
                "temperature": 0,
                "responseMimeType": "application/json",
                "responseSchema": {
                    "type": "OBJECT",
                    "properties": {"label": {"type": "STRING", "enum": ["bird", "cat", "dog"]}},
                    "required": ["label"]
                }
            }
        });
        assert_eq!(body, expected);
        // A remote image is a file_data part with the type its name suggests.
        let req = provider().request_template(&labels()).build(
            "https://example.test/a/cat.png?v=2",
            1,
            None,
        );
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(
            body["contents"][0]["parts"][0],
            json!({"file_data": {"mime_type": "image/png", "file_uri": "https://example.test/a/cat.png?v=2"}})
        );
    }

    /// A `generateContent` answer as the docs show it, with safety ratings and
    /// per-modality token counts.
    #[test]
    fn the_label_is_read_from_the_first_candidate_with_usage() {
        let body = r#"{
          "candidates": [{
            "content": {"parts": [{"text": "{\"label\": \"dog\"}"}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
          }],
          "usageMetadata": {"promptTokenCount": 265, "candidatesTokenCount": 6,
            "totalTokenCount": 295, "thoughtsTokenCount": 24,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 7},
                                    {"modality": "IMAGE", "tokenCount": 258}]},
          "modelVersion": "gemini-2.5-flash",
          "responseId": "mLZbaPGsLZ2ZkdUPpZmyoAs"
        }"#;
        assert_eq!(
            parse(body),
            answered(2, 265, 30, 295, r#"{"label": "dog"}"#)
        );
        // Thought parts are skipped; text split over parts is joined.
        let body = r#"{"candidates": [{"content": {"parts": [
            {"text": "the label is cat", "thought": true},
            {"text": "{\"label\": "}, {"text": "\"bird\"}"}]}, "finishReason": "STOP"}]}"#;
        assert_eq!(
            parse(body).unwrap(),
            Answer {
                label: 0,
                usage: None,
                text: "{\"label\": \"bird\"}".into(),
                confidence: crate::confidence::Scored::Unscored,
            }
        );
        let body =
            r#"{"candidates": [{"content": {"parts": [{"text": "{\"label\": \"horse\"}"}]}}]}"#;
        assert_eq!(
            parse(body),
            Err(AnswerError::OutsideLabelSet {
                answer: "horse".to_owned()
            })
        );
    }

    #[test]
    fn safety_and_recitation_blocks_are_refusals() {
        for reason in ["SAFETY", "RECITATION", "PROHIBITED_CONTENT", "IMAGE_SAFETY"] {
            let body = format!(
                r#"{{"candidates": [{{"finishReason": "{reason}", "index": 0,
                "safetyRatings": [{{"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                "probability": "HIGH", "blocked": true}}]}}],
                "usageMetadata": {{"promptTokenCount": 270, "totalTokenCount": 270}}}}"#
            );
            assert_eq!(
                parse(&body),
                Err(AnswerError::Refusal(format!(
                    "the answer was blocked (finishReason {reason})"
                ))),
                "{reason}"
            );
        }
        // A blocked prompt has no candidates, only its feedback.
        let body = r#"{"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}}"#;
        assert!(
            matches!(parse(body), Err(AnswerError::Refusal(t)) if t.contains("blockReason SAFETY"))
        );
    }

    #[test]
    fn cut_short_and_empty_answers_are_malformed() {
        let detail = malformed(
            r#"{"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}]}"#,
        );
        assert!(
            detail.contains("cut short") && detail.contains("MAX_TOKENS"),
            "{detail}"
        );
        let detail = malformed(
            r#"{"candidates": [{"content": {"parts": [{"text": "{\"label\": \"ca"}]}, "finishReason": "MAX_TOKENS"}]}"#,
        );
        assert!(detail.contains("cut short"), "{detail}");
        assert!(malformed(r#"{"candidates": []}"#).contains("no candidates"));
        assert!(malformed(r#"{"candidates": [{"finishReason": "STOP"}]}"#).contains("no text"));
        assert!(malformed("not json").starts_with("not JSON"));
    }

    /// Google's error shape: the status is the kind, the numeric code the code.
    #[test]
    fn error_bodies_keep_their_status_and_code() {
        let body = r#"{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": "17s"}]}}"#;
        assert_eq!(
            parse(body),
            Err(AnswerError::ErrorBody(ApiError {
                message: "Resource has been exhausted (e.g. check quota).".to_owned(),
                kind: Some("RESOURCE_EXHAUSTED".to_owned()),
                code: Some("429".to_owned()),
            }))
        );
    }

    #[test]
    fn endpoint_url_forms() {
        assert_eq!(
            endpoint_url(DEFAULT_BASE_URL, "gemini-2.5-flash"),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            endpoint_url(
                "https://generativelanguage.googleapis.com/v1/",
                "models/gemini-pro"
            ),
            "https://generativelanguage.googleapis.com/v1/models/gemini-pro:generateContent"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:9", "tunedModels/my model"),
            "http://127.0.0.1:9/v1beta/tunedModels/my%20model:generateContent"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:9/v1", "a?b"),
            "http://127.0.0.1:9/v1/models/a%3Fb:generateContent"
        );
        let full = "http://proxy.test/v1beta/models/x:generateContent";
        assert_eq!(endpoint_url(full, "ignored"), full);
    }
}
