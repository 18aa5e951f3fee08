//! The OpenAI chat-completions dialect: what the mock reads from a request and the
//! JSON bodies it answers with. Pure: no I/O, no time.

use serde_json::{json, Value};

use crate::answers::{completion_id, created, Decision};
use crate::config::MockConfig;
use crate::MOCK_MODEL;

/// The parts of a chat completion request the mock reads.
#[derive(Clone, Debug)]
pub(crate) struct Parsed {
    /// `model`, or [`MOCK_MODEL`] when the request names none.
    pub model: String,
    /// `response_format.json_schema.schema.properties.label.enum`, in order.
    pub labels: Vec<String>,
    /// The first `image_url` content part's URL, exactly as sent.
    pub image: String,
}

/// Reads a chat completion request; `Err` holds the message of the 400 answer.
pub(crate) fn parse_request(body: &[u8]) -> Result<Parsed, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("We could not parse the JSON body of your request: {e}"))?;
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(MOCK_MODEL)
        .to_owned();
    let labels: Vec<String> = v
        .pointer("/response_format/json_schema/schema/properties/label/enum")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            "The mock needs response_format.json_schema.schema.properties.label.enum \
             (the list of labels)."
                .to_owned()
        })?
        .iter()
        .map(|l| l.as_str().map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| "The label enum must hold only strings.".to_owned())?;
    if labels.is_empty() {
        return Err("The label enum is empty.".to_owned());
    }
    let image = v
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|part| part.get("type").and_then(Value::as_str) == Some("image_url"))
        .find_map(|part| {
            let iu = part.get("image_url")?;
            iu.get("url")
                .and_then(Value::as_str)
                .or_else(|| iu.as_str())
        })
        .ok_or_else(|| "The request holds no image_url content part.".to_owned())?
        .to_owned();
    Ok(Parsed {
        model,
        labels,
        image,
    })
}

/// The 200 body: a `chat.completion` object.
pub(crate) fn completion_body(cfg: &MockConfig, req: &Parsed, d: &Decision) -> Value {
    let content = if d.malformed {
        "I think it is probably a".to_owned()
    } else {
        json!({ "label": d.label }).to_string()
    };
    let prompt_tokens = 85 + 2 * req.labels.len() as u64;
    let completion_tokens = 5u64;
    json!({
        "id": format!("chatcmpl-mock-{:016x}", completion_id(cfg.seed, d.content)),
        "object": "chat.completion",
        "created": created(cfg.seed),
        "model": req.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content, "refusal": null },
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_shadow_mock",
    })
}

/// An OpenAI error body.
pub(crate) fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
}

/// The `GET /v1/models` body: one model, [`MOCK_MODEL`].
pub(crate) fn models_body() -> Value {
    json!({
        "object": "list",
        "data": [{
            "id": MOCK_MODEL,
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "shadow-batch",
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{body, labels};

    #[test]
    fn parse_errors() {
        assert!(parse_request(b"{not json").is_err());
        assert!(parse_request(br#"{"messages":[]}"#).is_err());
        let no_image = json!({
            "messages": [{ "role": "user", "content": [{ "type": "text", "text": "hi" }] }],
            "response_format": { "json_schema": { "schema": { "properties": {
                "label": { "enum": ["a", "b"] } } } } }
        });
        let e = parse_request(no_image.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("image_url"), "{e}");
        let ok = parse_request(body("data:image/png;base64,AAAA").as_bytes()).unwrap();
        assert_eq!(ok.image, "data:image/png;base64,AAAA");
        assert_eq!(ok.labels, labels());
        assert_eq!(ok.model, "gpt-test");
    }
}
