//! Reading the log-probabilities an answer carries into [`TokenStep`]s, and
//! whether an endpoint refuses to give them.
//!
//! - OpenAI-compatible chat completions (OpenAI, Azure, vLLM, llama.cpp, Ollama's
//!   OpenAI route): `choices[0].logprobs.content[]`, each `{token, logprob, bytes,
//!   top_logprobs: [{token, logprob, bytes}]}` (OpenAI API reference, "The chat
//!   completion object", <https://platform.openai.com/docs/api-reference/chat/object>).
//! - Gemini: `candidates[0].logprobsResult` with `chosenCandidates[]` (`{token,
//!   tokenId, logProbability}`, one per decoding step) and `topCandidates[]`
//!   (`{candidates: [...]}`, the same length) (Gemini API reference,
//!   `LogprobsResult`, <https://ai.google.dev/api/generate-content#LogprobsResult>).
//!   Proto3 JSON leaves out zero values: a missing `logProbability` is 0 (a
//!   certain token), a missing `token` is empty.

use serde_json::Value;

use crate::confidence::{score, ConfidenceGap, Scored, TokenStep};
use crate::input::LabelSet;

/// What an answer's log-probabilities field holds.
pub(crate) type Steps = Result<Option<Vec<TokenStep>>, ConfidenceGap>;

/// The confidence an answer read as label `chosen` carries.
pub(crate) fn scored(steps: Steps, chosen: usize, labels: &LabelSet) -> Scored {
    match steps {
        Ok(None) => Scored::Unscored,
        Ok(Some(steps)) => score(&steps, chosen, labels.names()),
        Err(gap) => Scored::Gap(gap),
    }
}

/// OpenAI's `choices[0].logprobs` (the value, or `None` when absent or null).
pub(crate) fn openai_steps(logprobs: Option<&Value>) -> Steps {
    let Some(logprobs) = logprobs.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(content) = logprobs.as_object().map(|o| o.get("content")) else {
        return Err(ConfidenceGap::Malformed);
    };
    let content = match content {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ConfidenceGap::Malformed),
    };
    let entry = |v: &Value| -> Result<(String, f64), ConfidenceGap> {
        let token = v.get("token").and_then(Value::as_str);
        let logprob = v.get("logprob").and_then(Value::as_f64);
        match (token, logprob) {
            (Some(t), Some(l)) if l <= 1e-9 => Ok((t.to_owned(), l.min(0.0))),
            _ => Err(ConfidenceGap::Malformed),
        }
    };
    let mut steps = Vec::with_capacity(content.len());
    for item in content {
        let (token, logprob) = entry(item)?;
        let top = match item.get("top_logprobs") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(alts)) => alts.iter().map(entry).collect::<Result<_, _>>()?,
            Some(_) => return Err(ConfidenceGap::Malformed),
        };
        steps.push(TokenStep {
            token,
            logprob,
            top,
        });
    }
    Ok(Some(steps))
}

/// Gemini's `candidates[0].logprobsResult` (the value, or `None` when absent).
pub(crate) fn gemini_steps(result: Option<&Value>) -> Steps {
    let Some(result) = result.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(result) = result.as_object() else {
        return Err(ConfidenceGap::Malformed);
    };
    let list = |name: &str| match result.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(ConfidenceGap::Malformed),
    };
    let Some(chosen) = list("chosenCandidates")? else {
        return Ok(None);
    };
    let top = list("topCandidates")?;
    let entry = |v: &Value| -> Result<(String, f64), ConfidenceGap> {
        let token = match v.get("token") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s,
            Some(_) => return Err(ConfidenceGap::Malformed),
        };
        let logprob = match v.get("logProbability") {
            None | Some(Value::Null) => 0.0,
            Some(n) => n.as_f64().ok_or(ConfidenceGap::Malformed)?,
        };
        if logprob > 1e-9 {
            return Err(ConfidenceGap::Malformed);
        }
        Ok((token.to_owned(), logprob.min(0.0)))
    };
    let mut steps = Vec::with_capacity(chosen.len());
    for (k, item) in chosen.iter().enumerate() {
        let (token, logprob) = entry(item)?;
        let alternatives = match top.and_then(|t| t.get(k)) {
            None | Some(Value::Null) => Vec::new(),
            Some(step) => match step.get("candidates") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(alts)) => alts.iter().map(entry).collect::<Result<_, _>>()?,
                Some(_) => return Err(ConfidenceGap::Malformed),
            },
        };
        steps.push(TokenStep {
            token,
            logprob,
            top: alternatives,
        });
    }
    Ok(Some(steps))
}

/// Whether an error answer says the endpoint refuses log-probabilities: a 400,
/// 422 or 501 whose message (or body) names them (`logprobs`, `top_logprobs`,
/// `responseLogprobs`). OpenAI's reasoning models and Gemini models without them
/// answer so.
pub fn rejects_logprobs(response: &crate::http::HttpResponse) -> bool {
    if !matches!(response.status, 400 | 422 | 501) {
        return false;
    }
    let text = match super::parse_api_error(&response.body) {
        Some(api) => api.message.to_ascii_lowercase(),
        None => super::truncate(&response.body, 2000).to_ascii_lowercase(),
    };
    text.contains("logprob")
}
