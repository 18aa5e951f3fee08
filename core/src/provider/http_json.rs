//! A generic JSON endpoint: POST the image and the labels, read the prediction at a
//! dotted field path of the answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{api_error_from_value, match_label, snippet, AnswerError, RawUsage, RequestInput};
use crate::input::LabelSet;
use crate::provider::Answer;

#[derive(Serialize)]
struct Body<'a> {
    image: &'a str,
    labels: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    attempt: u32,
}

/// `{"image": ..., "labels": [...], "id": ... (when known), "attempt": n}`.
pub(super) fn build_body(input: &RequestInput) -> String {
    serde_json::to_string(&Body {
        image: input.image_url,
        labels: input.labels.names(),
        id: input.item_id,
        attempt: input.attempt,
    })
    .expect("the request serializes")
}

/// Reads the prediction at `path` (dotted; numeric segments index arrays; empty = the
/// whole answer) and the optional OpenAI-style `usage`.
pub(super) fn parse_answer(
    body: &str,
    path: &str,
    labels: &LabelSet,
) -> Result<Answer, AnswerError> {
    let value: Value = serde_json::from_str(body)
        .map_err(|e| AnswerError::malformed(format!("not JSON ({e}): {}", snippet(body))))?;
    let path = path.trim();
    let found = match walk(&value, path) {
        Ok(found) => found,
        Err(detail) => {
            return Err(match api_error_from_value(&value) {
                Some(api) => AnswerError::ErrorBody(api),
                None => AnswerError::malformed(detail),
            })
        }
    };
    let (label, text) = match found {
        Value::String(s) => (match_label(s, labels)?, s.clone()),
        Value::Number(n) => (match_label(&n.to_string(), labels)?, n.to_string()),
        other => {
            if let Some(api) = api_error_from_value(&value) {
                return Err(AnswerError::ErrorBody(api));
            }
            let kind = match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Array(_) => "an array",
                _ => "an object",
            };
            return Err(AnswerError::malformed(format!(
                "the prediction at `{}` is {kind}, expected a string or a number",
                shown(path)
            )));
        }
    };
    let usage = value
        .get("usage")
        .and_then(|u| RawUsage::deserialize(u).ok())
        .and_then(RawUsage::into_usage);
    Ok(Answer::new(label, usage, &text))
}

fn shown(path: &str) -> &str {
    if path.is_empty() {
        "(the whole answer)"
    } else {
        path
    }
}

/// The value at a dotted path, or a detail naming where the walk stopped.
fn walk<'v>(root: &'v Value, path: &str) -> Result<&'v Value, String> {
    if path.is_empty() {
        return Ok(root);
    }
    let mut current = root;
    for segment in path.split('.') {
        let next = match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        current = next.ok_or_else(|| {
            let why = match current {
                Value::Array(items) => format!(
                    "`{segment}` is not an index of its array of {} elements",
                    items.len()
                ),
                Value::Object(_) => format!("no field `{segment}`"),
                _ => format!("`{segment}` is looked up in a value that is not an object"),
            };
            format!("the answer has no prediction at `{path}`: {why}")
        })?;
    }
    Ok(current)
}
