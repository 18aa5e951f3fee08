//! A model request with text only (no image, no label list), as `shadow-batch
//! estimate --ask-endpoint-limits` sends one to read the rate-limit headers:
//! charged against the limits like any request, answered with the same
//! headers, and with a one-word reply in the dialect's shape.

use serde_json::{json, Value};

use crate::dialect::{Dialect, Reply};

/// A text-only request: its model and its token charge.
pub(crate) struct TextOnly {
    pub(crate) model: String,
    /// The text at four characters a token, plus the answer's cap.
    pub(crate) charge: u64,
}

/// The request in `body`, when it is a text-only chat completion (OpenAI,
/// Azure) or message (Anthropic): messages whose content is only text, no
/// `response_format` or `tools`, and an answer cap of at least 1. Anything
/// else goes the usual way (and is refused there when it lacks an image).
pub(crate) fn parse(dialect: Dialect, body: &[u8]) -> Option<TextOnly> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let model = v.get("model")?.as_str()?.to_owned();
    let cap = match dialect {
        Dialect::OpenAi | Dialect::Azure => {
            if v.get("response_format").is_some() {
                return None;
            }
            ["max_completion_tokens", "max_tokens"]
                .iter()
                .find_map(|f| v.get(*f).and_then(Value::as_u64))?
        }
        Dialect::Anthropic => {
            if v.get("tools").is_some() {
                return None;
            }
            v.get("max_tokens").and_then(Value::as_u64)?
        }
        Dialect::Gemini => return None,
    };
    if cap == 0 {
        return None;
    }
    let mut chars = 0u64;
    for message in v.get("messages")?.as_array()? {
        match message.get("content")? {
            Value::String(text) => chars += text.chars().count() as u64,
            Value::Array(parts) => {
                for part in parts {
                    if part.get("type").and_then(Value::as_str) != Some("text") {
                        return None;
                    }
                    chars += part
                        .get("text")
                        .and_then(Value::as_str)
                        .map_or(0, |t| t.chars().count() as u64);
                }
            }
            _ => return None,
        }
    }
    Some(TextOnly {
        model,
        charge: chars.div_ceil(4) + cap,
    })
}

/// The reply: "OK", cut at one token.
pub(crate) fn answer(dialect: Dialect, request: &TextOnly) -> Reply {
    let prompt = request.charge.saturating_sub(1);
    let body = match dialect {
        Dialect::Anthropic => json!({
            "id": "msg_text_only",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": [{"type": "text", "text": "OK"}],
            "stop_reason": "max_tokens",
            "usage": {"input_tokens": prompt, "output_tokens": 1},
        }),
        _ => json!({
            "id": "chatcmpl-text-only",
            "object": "chat.completion",
            "model": request.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "OK"},
                "finish_reason": "length",
            }],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 1, "total_tokens": prompt + 1},
        }),
    };
    (axum::http::StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{body, client, serve_with};

    /// A text-only request to a mock with limits is answered 200 with the
    /// dialect's limit headers (OpenAI's `x-ratelimit-limit-*`, Anthropic's
    /// `anthropic-ratelimit-*-limit`) and counted; an image request without
    /// labels is still refused.
    #[tokio::test]
    async fn a_text_only_request_gets_the_limit_headers() {
        let mock = serve_with(|c| {
            c.rpm = Some(3_000);
            c.tpm = Some(250_000);
        })
        .await;
        let base = format!("http://{}", mock.addr);
        let openai = client()
            .post(format!("{base}/v1/chat/completions"))
            .body(r#"{"model":"m","messages":[{"role":"user","content":"Reply with OK."}],"max_tokens":1}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(openai.status(), 200);
        let h = |r: &reqwest::Response, n: &str| {
            r.headers().get(n).map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            h(&openai, "x-ratelimit-limit-requests").as_deref(),
            Some("3000")
        );
        assert_eq!(
            h(&openai, "x-ratelimit-limit-tokens").as_deref(),
            Some("250000")
        );
        let anthropic = client()
            .post(format!("{base}/v1/messages"))
            .header("anthropic-version", "2023-06-01")
            .body(r#"{"model":"m","messages":[{"role":"user","content":"Reply with OK."}],"max_tokens":1}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(anthropic.status(), 200);
        assert_eq!(
            h(&anthropic, "anthropic-ratelimit-requests-limit").as_deref(),
            Some("3000")
        );
        assert_eq!(
            h(&anthropic, "anthropic-ratelimit-input-tokens-limit").as_deref(),
            Some("250000")
        );
        let text: Value = serde_json::from_str(&anthropic.text().await.unwrap()).unwrap();
        assert_eq!(text["content"][0]["text"], "OK");
        // A classification request with no label list is not text-only.
        let no_labels = body("https://example.test/a.png").replace("response_format", "x");
        let refused = client()
            .post(format!("{base}/v1/chat/completions"))
            .body(no_labels)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
        assert_eq!(mock.stats().requests, 3);
    }
}
