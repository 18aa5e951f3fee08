//! Anthropic's Messages dialect: what the mock reads from a `POST /v1/messages` and
//! the bodies it answers with. Pure: no I/O, no time.

use serde_json::{json, Value};

use crate::answers::{completion_id, Decision};
use crate::config::MockConfig;
use crate::dialect::{AnswerFormat, Parsed};
use crate::openai::{body_and_model, message_blocks, string_list, REFUSAL};

/// Reads a Messages request: the labels from the forced tool's
/// `input_schema.properties.label.enum` (the tool `tool_choice` names, else the first
/// tool with such an enum), the image from the first `image` block (a `base64`
/// source is keyed as the `data:` URL it came from, a `url` source as its URL).
pub(crate) fn parse_request(body: &[u8]) -> Result<Parsed, String> {
    let (v, model) = body_and_model(
        body,
        "There was an issue with the JSON body of your request: ",
    )?;
    if v.get("max_tokens").and_then(Value::as_u64).is_none() {
        return Err("max_tokens: Field required".to_owned());
    }
    let forced = v.pointer("/tool_choice/name").and_then(Value::as_str);
    let tools = v
        .get("tools")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let enum_of = |tool: &Value| tool.pointer("/input_schema/properties/label/enum").cloned();
    let labels = match forced {
        Some(name) => tools
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
            .and_then(enum_of),
        None => tools.iter().find_map(enum_of),
    }
    .ok_or_else(|| {
        "The mock needs a tool (the one tool_choice names) whose \
         input_schema.properties.label.enum lists the labels."
            .to_owned()
    })?;
    let labels = string_list(&labels)?;
    let image = message_blocks(&v)
        .filter(|block| block.get("type").and_then(Value::as_str) == Some("image"))
        .find_map(|block| {
            let source = block.get("source")?;
            match source.get("type").and_then(Value::as_str)? {
                "base64" => Some(format!(
                    "data:{};base64,{}",
                    source.get("media_type")?.as_str()?,
                    source.get("data")?.as_str()?
                )),
                "url" => Some(source.get("url")?.as_str()?.to_owned()),
                _ => None,
            }
        })
        .ok_or_else(|| {
            "messages: the request holds no image block with a base64 or url source".to_owned()
        })?;
    let system = v.get("system").and_then(Value::as_str).unwrap_or("");
    let text_chars = (system.chars().count() + text_chars(&v)) as u64;
    Ok(Parsed {
        model,
        labels,
        image,
        format: AnswerFormat::Json,
        images: 1,
        text_chars,
        max_tokens: v.get("max_tokens").and_then(Value::as_u64),
        logprobs: None,
    })
}

/// The 200 body: a `message` whose `tool_use` block holds the label; a refusal
/// (`stop_reason: "refusal"`), or, when malformed, text cut short by `max_tokens`.
pub(crate) fn message_body(cfg: &MockConfig, req: &Parsed, d: &Decision, tool: &str) -> Value {
    let id = completion_id(cfg.seed, d.content);
    let (content, stop) = if d.refused {
        (json!([{ "type": "text", "text": REFUSAL }]), "refusal")
    } else if d.malformed {
        (
            json!([{ "type": "text", "text": "I think it is probably a" }]),
            "max_tokens",
        )
    } else {
        (
            json!([{
                "type": "tool_use",
                "id": format!("toolu_mock_{id:016x}"),
                "name": tool,
                "input": { "label": d.label },
            }]),
            "tool_use",
        )
    };
    json!({
        "id": format!("msg_mock_{id:016x}"),
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": {
            "input_tokens": 85 + 2 * req.labels.len() as u64,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 5,
        },
    })
}

/// The name of the tool the request forces (`classify_image` when it names none).
pub(crate) fn forced_tool(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/tool_choice/name")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "classify_image".to_owned())
}

/// Anthropic's error body: `{"type": "error", "error": {"type", "message"}}`.
pub(crate) fn error_body(kind: &str, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": kind, "message": message } })
}

/// Characters of the `text` blocks of every message.
fn text_chars(v: &Value) -> usize {
    message_blocks(v)
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .map(|t| t.chars().count())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(image: Value) -> String {
        json!({
            "model": "claude-test",
            "max_tokens": 130,
            "tools": [
                { "name": "other", "input_schema": { "type": "object" } },
                { "name": "classify_image", "input_schema": { "type": "object",
                  "properties": { "label": { "type": "string", "enum": ["cat", "dog"] } } } }
            ],
            "tool_choice": { "type": "tool", "name": "classify_image" },
            "messages": [{ "role": "user", "content": [
                { "type": "image", "source": image },
                { "type": "text", "text": "Which?" }
            ]}]
        })
        .to_string()
    }

    #[test]
    fn reads_the_forced_tools_enum_and_the_image_as_a_data_url() {
        let body = request(json!({"type": "base64", "media_type": "image/png", "data": "AAAA"}));
        let p = parse_request(body.as_bytes()).unwrap();
        assert_eq!(p.labels, ["cat", "dog"]);
        assert_eq!(p.image, "data:image/png;base64,AAAA");
        assert_eq!(p.model, "claude-test");
        assert_eq!(forced_tool(body.as_bytes()), "classify_image");
        let body = request(json!({"type": "url", "url": "https://x.test/a.png"}));
        assert_eq!(
            parse_request(body.as_bytes()).unwrap().image,
            "https://x.test/a.png"
        );
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        assert!(parse_request(b"nope").is_err());
        let no_max = json!({"messages": []}).to_string();
        assert!(parse_request(no_max.as_bytes())
            .unwrap_err()
            .contains("max_tokens"));
        let no_tool = json!({"max_tokens": 5, "messages": []}).to_string();
        assert!(parse_request(no_tool.as_bytes())
            .unwrap_err()
            .contains("tool"));
        let no_image = request(json!({"type": "file", "file_id": "f"}));
        assert!(parse_request(no_image.as_bytes())
            .unwrap_err()
            .contains("image"));
    }
}
