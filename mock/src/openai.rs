//! The OpenAI chat-completions dialect: what the mock reads from a request and the
//! JSON bodies it answers with. Pure: no I/O, no time.

use serde_json::{json, Value};

use crate::answers::{completion_id, created, Decision};
use crate::config::{MockConfig, UNSET_MAX_TOKENS_CHARGE};
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
    /// `image_url` content parts, in all messages.
    pub images: u64,
    /// Characters of the prompt's text: every message content that is a string,
    /// and every `text` content part.
    pub text_chars: u64,
    /// `max_completion_tokens`, else `max_tokens`, when the request sets one.
    pub max_tokens: Option<u64>,
}

impl Parsed {
    /// The prompt tokens the mock counts (and reports in `usage.prompt_tokens`):
    /// `image_tokens` per image part plus one per 4 characters of text, rounded up.
    pub fn prompt_tokens(&self, image_tokens: u64) -> u64 {
        self.images
            .saturating_mul(image_tokens)
            .saturating_add(self.text_chars.div_ceil(4))
    }

    /// What the request is charged against a tokens-per-minute limit on arrival:
    /// its prompt tokens plus its output allowance (`max_completion_tokens` or
    /// `max_tokens`, else [`UNSET_MAX_TOKENS_CHARGE`]).
    pub fn token_charge(&self, image_tokens: u64) -> u64 {
        self.prompt_tokens(image_tokens)
            .saturating_add(self.max_tokens.unwrap_or(UNSET_MAX_TOKENS_CHARGE))
    }
}

/// Tokens of an answer's text: one per 4 characters, rounded up, at least 1.
pub(crate) fn text_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

/// `max_completion_tokens`, else `max_tokens`: an integer of at least 1 when set.
fn max_tokens(v: &Value) -> Result<Option<u64>, String> {
    for field in ["max_completion_tokens", "max_tokens"] {
        match v.get(field) {
            None | Some(Value::Null) => continue,
            Some(n) => {
                return match n.as_u64() {
                    Some(n) if n >= 1 => Ok(Some(n)),
                    _ => Err(format!(
                        "Invalid '{field}': expected an integer of at least 1, but got {n}."
                    )),
                }
            }
        }
    }
    Ok(None)
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
    let max_tokens = max_tokens(&v)?;
    let contents = || {
        v.get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("content"))
    };
    let parts = || contents().filter_map(Value::as_array).flatten();
    let is_image = |part: &&Value| part.get("type").and_then(Value::as_str) == Some("image_url");
    let image = parts()
        .filter(is_image)
        .find_map(|part| {
            let iu = part.get("image_url")?;
            iu.get("url")
                .and_then(Value::as_str)
                .or_else(|| iu.as_str())
        })
        .ok_or_else(|| "The request holds no image_url content part.".to_owned())?
        .to_owned();
    let images = parts().filter(is_image).count() as u64;
    let chars = |s: &str| s.chars().count() as u64;
    let text_chars = contents().filter_map(Value::as_str).map(chars).sum::<u64>()
        + parts()
            .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(chars)
            .sum::<u64>();
    Ok(Parsed {
        model,
        labels,
        image,
        images,
        text_chars,
        max_tokens,
    })
}

/// The 200 body: a `chat.completion` object. Its `usage` counts the prompt as
/// [`Parsed::prompt_tokens`] and the answer's text at one token per 4 characters
/// (rounded up, at least 1); answers are never cut at `max_tokens`.
pub(crate) fn completion_body(cfg: &MockConfig, req: &Parsed, d: &Decision) -> Value {
    let content = if d.malformed {
        "I think it is probably a".to_owned()
    } else {
        json!({ "label": d.label }).to_string()
    };
    let prompt_tokens = req.prompt_tokens(cfg.image_tokens);
    let completion_tokens = text_tokens(&content);
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
        for bad in [json!(0), json!(-3), json!("16"), json!(1.5)] {
            let mut v: Value = serde_json::from_str(&body("x")).unwrap();
            v["max_tokens"] = bad;
            let e = parse_request(v.to_string().as_bytes()).unwrap_err();
            assert!(e.starts_with("Invalid 'max_tokens'"), "{e}");
        }
    }

    #[test]
    fn prompt_tokens_and_charge() {
        // "Classify the image." (19) + "Which label?" (12) = 31 chars -> 8 tokens.
        let mut v: Value = serde_json::from_str(&body("https://x.test/a.png")).unwrap();
        let p = parse_request(v.to_string().as_bytes()).unwrap();
        assert_eq!((p.images, p.text_chars, p.max_tokens), (1, 31, None));
        assert_eq!(p.prompt_tokens(2833), 2833 + 8);
        assert_eq!(p.token_charge(2833), 2833 + 8 + UNSET_MAX_TOKENS_CHARGE);
        assert_eq!(p.prompt_tokens(0), 8);
        // max_tokens, and max_completion_tokens before it; a second image.
        v["max_tokens"] = json!(50);
        let p = parse_request(v.to_string().as_bytes()).unwrap();
        assert_eq!(p.token_charge(100), 100 + 8 + 50);
        v["max_completion_tokens"] = json!(16);
        v["messages"][1]["content"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "image_url", "image_url": { "url": "https://x.test/b.png" } }));
        let p = parse_request(v.to_string().as_bytes()).unwrap();
        assert_eq!(p.images, 2);
        assert_eq!(p.image, "https://x.test/a.png");
        assert_eq!(p.token_charge(100), 200 + 8 + 16);
        // Characters, not bytes.
        assert_eq!(text_tokens("ééééé"), 2);
        assert_eq!(text_tokens(""), 1);
        assert_eq!(text_tokens(r#"{"label":"cat"}"#), 4);
    }
}
