//! The OpenAI chat-completions dialect (also Azure's): what the mock reads from a
//! request and the JSON bodies it answers with. Pure: no I/O, no time.

use serde_json::{json, Value};

use crate::answers::{completion_id, created, Decision};
use crate::config::{MockConfig, OpenAiDialect};
use crate::dialect::{labels_in_text, AnswerFormat, Parsed};
use crate::MOCK_MODEL;

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
///
/// With [`OpenAiDialect::Ollama`], as a local server: a `json_schema`
/// `response_format` and a remote image URL are refused, and the labels come from
/// the prompt's JSON list.
pub(crate) fn parse_request(body: &[u8], dialect: OpenAiDialect) -> Result<Parsed, String> {
    let (v, model) = body_and_model(body, "We could not parse the JSON body of your request: ")?;
    let format_kind = v
        .pointer("/response_format/type")
        .and_then(Value::as_str)
        .unwrap_or("text");
    let image = message_blocks(&v)
        .filter(|part| part.get("type").and_then(Value::as_str) == Some("image_url"))
        .find_map(|part| {
            let iu = part.get("image_url")?;
            iu.get("url")
                .and_then(Value::as_str)
                .or_else(|| iu.as_str())
        })
        .ok_or_else(|| "The request holds no image_url content part.".to_owned())?
        .to_owned();
    let max_tokens = max_tokens(&v)?;
    let contents = || {
        v.get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("content"))
    };
    let parts = || message_blocks(&v);
    let is_image = |part: &&Value| part.get("type").and_then(Value::as_str) == Some("image_url");
    let images = parts().filter(is_image).count() as u64;
    let chars = |s: &str| s.chars().count() as u64;
    let text_chars = contents().filter_map(Value::as_str).map(chars).sum::<u64>()
        + parts()
            .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(chars)
            .sum::<u64>();
    let schema_labels = v.pointer("/response_format/json_schema/schema/properties/label/enum");
    let (labels, format) = match dialect {
        OpenAiDialect::OpenAi => {
            let labels = schema_labels.ok_or_else(|| {
                "The mock needs response_format.json_schema.schema.properties.label.enum \
                 (the list of labels)."
                    .to_owned()
            })?;
            (string_list(labels)?, AnswerFormat::Json)
        }
        OpenAiDialect::Ollama => {
            if format_kind == "json_schema" {
                // As llama.cpp's server and older Ollama/vLLM versions answer it.
                return Err("response_format type json_schema is not supported by this \
                            server; use json_object or no response_format"
                    .to_owned());
            }
            let remote = image
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
                || image
                    .get(..7)
                    .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
            if remote {
                return Err("invalid image input: only base64 data URLs are supported, \
                            not remote image URLs"
                    .to_owned());
            }
            let text: Vec<&str> = v
                .get("messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|m| match m.get("content") {
                    Some(Value::String(s)) => vec![s.as_str()],
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect(),
                    _ => Vec::new(),
                })
                .collect();
            let labels = labels_in_text(&text).ok_or_else(|| {
                "The mock (ollama dialect) needs the labels as a JSON list in the prompt."
                    .to_owned()
            })?;
            let format = if format_kind == "json_object" {
                AnswerFormat::Json
            } else {
                AnswerFormat::Text
            };
            (labels, format)
        }
    };
    if labels.is_empty() {
        // The prompt's list (Ollama); the schema's enum is checked by `string_list`.
        return Err("The label enum is empty.".to_owned());
    }
    Ok(Parsed {
        model,
        labels,
        image,
        images,
        text_chars,
        max_tokens,
        format,
        logprobs: (v.get("logprobs").and_then(Value::as_bool) == Some(true))
            .then(|| v.get("top_logprobs").and_then(Value::as_u64).unwrap_or(0) as usize),
    })
}

/// The labels of a request's enum: a JSON array of strings, not empty; or the
/// 400 message.
pub(crate) fn string_list(v: &Value) -> Result<Vec<String>, String> {
    let labels: Vec<String> = v
        .as_array()
        .ok_or_else(|| "The label enum must be a list.".to_owned())?
        .iter()
        .map(|l| l.as_str().map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| "The label enum must hold only strings.".to_owned())?;
    if labels.is_empty() {
        return Err("The label enum is empty.".to_owned());
    }
    Ok(labels)
}

/// A chat request's body read as JSON, and the model it names (the mock's own
/// when none); `not_json` begins the 400 message, worded as the provider words it.
pub(crate) fn body_and_model(body: &[u8], not_json: &str) -> Result<(Value, String), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("{not_json}{e}"))?;
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(MOCK_MODEL)
        .to_owned();
    Ok((v, model))
}

/// The content blocks of every message of a chat request (`messages[].content[]`
/// where the content is a list): OpenAI's parts and Anthropic's blocks alike.
pub(crate) fn message_blocks(v: &Value) -> impl Iterator<Item = &Value> {
    v.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
}

/// The text of a 200 answer: `{"label":"..."}`, a bare label, or (malformed) a
/// sentence cut short.
pub(crate) fn answer_text(req: &Parsed, d: &Decision) -> String {
    if d.malformed {
        "I think it is probably a".to_owned()
    } else {
        match req.format {
            AnswerFormat::Json => json!({ "label": d.label }).to_string(),
            AnswerFormat::Text => d.label.clone(),
        }
    }
}

/// The words of every dialect's refusal.
pub(crate) const REFUSAL: &str = "I'm sorry, I can't help with classifying this image.";

/// The 200 body: a `chat.completion` object. `filtered`: Azure's content filter
/// withheld the answer (`finish_reason: "content_filter"`, no content).
pub(crate) fn completion_body(
    cfg: &MockConfig,
    req: &Parsed,
    d: &Decision,
    filtered: bool,
) -> Value {
    let (content, refusal, finish) = if filtered {
        (Value::Null, Value::Null, "content_filter")
    } else if d.refused {
        (Value::Null, json!(REFUSAL), "stop")
    } else {
        (json!(answer_text(req, d)), Value::Null, "stop")
    };
    let prompt_tokens = req.prompt_tokens(cfg.image_tokens);
    let completion_tokens = content.as_str().or(refusal.as_str()).map_or(1, text_tokens);
    json!({
        "id": format!("chatcmpl-mock-{:016x}", completion_id(cfg.seed, d.content)),
        "object": "chat.completion",
        "created": created(cfg.seed),
        "model": req.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content, "refusal": refusal },
            "logprobs": match req.logprobs {
                Some(top) if content.is_string() && !d.malformed => {
                    crate::logprobs::openai_logprobs(cfg, req, d, top)
                }
                _ => Value::Null,
            },
            "finish_reason": finish,
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
        let parse = |b: &[u8]| parse_request(b, OpenAiDialect::OpenAi);
        assert!(parse(b"{not json").is_err());
        assert!(parse(br#"{"messages":[]}"#).is_err());
        let no_image = json!({
            "messages": [{ "role": "user", "content": [{ "type": "text", "text": "hi" }] }],
            "response_format": { "json_schema": { "schema": { "properties": {
                "label": { "enum": ["a", "b"] } } } } }
        });
        let e = parse(no_image.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("image_url"), "{e}");
        let ok = parse(body("data:image/png;base64,AAAA").as_bytes()).unwrap();
        assert_eq!(ok.image, "data:image/png;base64,AAAA");
        assert_eq!(ok.labels, labels());
        assert_eq!(ok.model, "gpt-test");
        assert_eq!(ok.format, AnswerFormat::Json);
        for bad in [json!(0), json!(-3), json!("16"), json!(1.5)] {
            let mut v: Value = serde_json::from_str(&body("x")).unwrap();
            v["max_tokens"] = bad;
            let e = parse_request(v.to_string().as_bytes(), OpenAiDialect::OpenAi).unwrap_err();
            assert!(e.starts_with("Invalid 'max_tokens'"), "{e}");
        }
    }

    #[test]
    fn prompt_tokens_and_charge() {
        // "Classify the image." (19) + "Which label?" (12) = 31 chars -> 8 tokens.
        let mut v: Value = serde_json::from_str(&body("https://x.test/a.png")).unwrap();
        let p = parse_request(v.to_string().as_bytes(), OpenAiDialect::OpenAi).unwrap();
        assert_eq!((p.images, p.text_chars, p.max_tokens), (1, 31, None));
        assert_eq!(p.prompt_tokens(2833), 2833 + 8);
        assert_eq!(
            p.token_charge(2833),
            2833 + 8 + crate::config::UNSET_MAX_TOKENS_CHARGE
        );
        assert_eq!(p.prompt_tokens(0), 8);
        // max_tokens, and max_completion_tokens before it; a second image.
        v["max_tokens"] = json!(50);
        let p = parse_request(v.to_string().as_bytes(), OpenAiDialect::OpenAi).unwrap();
        assert_eq!(p.token_charge(100), 100 + 8 + 50);
        v["max_completion_tokens"] = json!(16);
        v["messages"][1]["content"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "image_url", "image_url": { "url": "https://x.test/b.png" } }));
        let p = parse_request(v.to_string().as_bytes(), OpenAiDialect::OpenAi).unwrap();
        assert_eq!(p.images, 2);
        assert_eq!(p.image, "https://x.test/a.png");
        assert_eq!(p.token_charge(100), 200 + 8 + 16);
        // Characters, not bytes.
        assert_eq!(text_tokens("ééééé"), 2);
        assert_eq!(text_tokens(""), 1);
        assert_eq!(text_tokens(r#"{"label":"cat"}"#), 4);
    }
    #[test]
    fn the_ollama_dialect_refuses_schemas_and_remote_images() {
        let parse = |b: &str| parse_request(b.as_bytes(), OpenAiDialect::Ollama);
        let e = parse(&body("data:image/png;base64,AAAA")).unwrap_err();
        assert!(e.contains("json_schema"), "{e}");
        let plain = |image: &str, format: Value| {
            json!({
                "model": "llava",
                "messages": [{ "role": "user", "content": [
                    { "type": "text", "text": "Allowed labels (answer with exactly one of them): [\"cat\",\"dog\"]" },
                    { "type": "image_url", "image_url": { "url": image } }
                ]}],
                "response_format": format,
            })
            .to_string()
        };
        let e = parse(&plain(
            "https://x.test/a.png",
            json!({"type": "json_object"}),
        ))
        .unwrap_err();
        assert!(e.contains("remote image"), "{e}");
        let ok = parse(&plain(
            "data:image/png;base64,AAAA",
            json!({"type": "json_object"}),
        ))
        .unwrap();
        assert_eq!(
            (ok.labels.clone(), ok.format),
            (vec!["cat".to_owned(), "dog".to_owned()], AnswerFormat::Json)
        );
        let ok = parse(&plain("data:image/png;base64,AAAA", Value::Null)).unwrap();
        assert_eq!(ok.format, AnswerFormat::Text);
    }
}
