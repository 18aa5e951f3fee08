//! Google's Gemini dialect: what the mock reads from a `generateContent` request and
//! the bodies it answers with. Pure: no I/O, no time.

use serde_json::{json, Value};

use crate::answers::{completion_id, Decision};
use crate::config::MockConfig;
use crate::dialect::{AnswerFormat, Parsed};
use crate::openai::{answer_text, string_list};

/// Reads a `generateContent` request for `model` (from the path): the labels from
/// `generationConfig.responseSchema.properties.label.enum`, the image from the
/// first `inline_data` part (keyed as the `data:` URL it came from) or `file_data`
/// part (its `file_uri`). Both spellings of the fields (`inline_data`,
/// `inlineData`) are read, as the API reads them.
pub(crate) fn parse_request(body: &[u8], model: &str) -> Result<Parsed, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON payload received. {e}"))?;
    let get = |v: &'_ Value, camel: &str, snake: &str| -> Option<Value> {
        v.get(camel).or_else(|| v.get(snake)).cloned()
    };
    let config = get(&v, "generationConfig", "generation_config").unwrap_or(Value::Null);
    let schema = get(&config, "responseSchema", "response_schema").unwrap_or(Value::Null);
    let labels = schema.pointer("/properties/label/enum").ok_or_else(|| {
        "The mock needs generationConfig.responseSchema.properties.label.enum \
             (the list of labels)."
            .to_owned()
    })?;
    let labels = string_list(labels)?;
    let image = v
        .get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("parts").and_then(Value::as_array))
        .flatten()
        .find_map(|part| {
            if let Some(inline) = get(part, "inlineData", "inline_data") {
                let mime = get(&inline, "mimeType", "mime_type")?;
                let data = inline.get("data")?.as_str()?.to_owned();
                return Some(format!("data:{};base64,{data}", mime.as_str()?));
            }
            let file = get(part, "fileData", "file_data")?;
            Some(get(&file, "fileUri", "file_uri")?.as_str()?.to_owned())
        })
        .ok_or_else(|| "contents: the request holds no inline_data or file_data part".to_owned())?;
    Ok(Parsed {
        model: model.to_owned(),
        labels,
        image,
        format: AnswerFormat::Json,
        images: 1,
        text_chars: 0,
        max_tokens: get(&v, "generationConfig", "generation_config")
            .and_then(|g| get(&g, "maxOutputTokens", "max_output_tokens"))
            .and_then(|n| n.as_u64()),
        logprobs: (get(&config, "responseLogprobs", "response_logprobs").and_then(|b| b.as_bool())
            == Some(true))
        .then(|| {
            get(&config, "logprobs", "logprobs")
                .and_then(|n| n.as_u64())
                .unwrap_or(0) as usize
        }),
    })
}

/// The 200 body: one candidate whose text is `{"label": ...}`; a refusal is a
/// candidate stopped for `SAFETY` with no content, a malformed answer text cut
/// short by `MAX_TOKENS`.
pub(crate) fn answer_body(cfg: &MockConfig, req: &Parsed, d: &Decision) -> Value {
    let prompt = 258 + 2 * req.labels.len() as u64;
    let candidate = if d.refused {
        json!({
            "finishReason": "SAFETY",
            "index": 0,
            "safetyRatings": [{ "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                                "probability": "HIGH", "blocked": true }],
        })
    } else {
        let mut candidate = json!({
            "content": { "role": "model", "parts": [{ "text": answer_text(req, d) }] },
            "finishReason": if d.malformed { "MAX_TOKENS" } else { "STOP" },
            "index": 0,
        });
        if let (Some(top), false) = (req.logprobs, d.malformed) {
            candidate["logprobsResult"] = crate::logprobs::gemini_result(cfg, req, d, top);
        }
        candidate
    };
    json!({
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": 6,
            "totalTokenCount": prompt + 6,
        },
        "modelVersion": req.model,
        "responseId": format!("mock-{:016x}", completion_id(cfg.seed, d.content)),
    })
}

/// Google's error body: `{"error": {"code", "message", "status", "details"}}`.
pub(crate) fn error_body(code: u16, status: &str, message: &str, details: Value) -> Value {
    let mut error = json!({ "code": code, "message": message, "status": status });
    if details.as_array().is_some_and(|d| !d.is_empty()) {
        error["details"] = details;
    }
    json!({ "error": error })
}

/// A `google.rpc.RetryInfo` detail: wait `ms` (as decimal seconds, `1.5s`).
pub(crate) fn retry_info(ms: u64) -> Value {
    let delay = if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    };
    json!({ "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay })
}

/// A `google.rpc.QuotaFailure` detail naming `quota_id`.
pub(crate) fn quota_failure(quota_id: &str, value: u64) -> Value {
    json!({
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
            "quotaId": quota_id,
            "quotaValue": value.to_string(),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_spellings_and_both_image_parts() {
        let body = json!({
            "contents": [{ "role": "user", "parts": [
                { "inline_data": { "mime_type": "image/jpeg", "data": "/9j/" } },
                { "text": "Which?" }
            ]}],
            "generationConfig": { "responseMimeType": "application/json",
                "responseSchema": { "type": "OBJECT",
                    "properties": { "label": { "type": "STRING", "enum": ["cat", "dog"] } } } }
        });
        let p = parse_request(body.to_string().as_bytes(), "gemini-test").unwrap();
        assert_eq!((p.model.as_str(), p.labels.len()), ("gemini-test", 2));
        assert_eq!(p.image, "data:image/jpeg;base64,/9j/");
        let body = json!({
            "contents": [{ "parts": [{ "fileData": { "mimeType": "image/png", "fileUri": "https://x.test/a.png" } }] }],
            "generation_config": { "response_schema": { "properties": { "label": { "enum": ["a"] } } } }
        });
        let p = parse_request(body.to_string().as_bytes(), "m").unwrap();
        assert_eq!(p.image, "https://x.test/a.png");
        let none = json!({ "contents": [] }).to_string();
        assert!(parse_request(none.as_bytes(), "m")
            .unwrap_err()
            .contains("responseSchema"));
    }

    #[test]
    fn retry_delays_are_decimal_seconds() {
        assert_eq!(retry_info(17_000)["retryDelay"], "17s");
        assert_eq!(retry_info(1_500)["retryDelay"], "1.500s");
        assert_eq!(retry_info(5)["retryDelay"], "0.005s");
    }
}
