//! The limits an endpoint states in its rate-limit headers, read from one
//! request, for an estimate asked to time the run at them.
//!
//! An estimate sends nothing by default. Asked to, the host sends the one
//! request [`limits_request`] builds (a text-only request for one answer
//! token, with no row of the CSV in it) and hands its answer to
//! [`crate::ratelimit::read_limits`] (which reads it as the run reads any
//! answer). OpenAI's answers carry `x-ratelimit-limit-requests` and
//! `-tokens`; Anthropic's `anthropic-ratelimit-requests-limit`,
//! `-input-tokens-limit` and `-output-tokens-limit`. Azure OpenAI sends the
//! remaining counts only (`x-ratelimit-remaining-*`, not a limit), Gemini no
//! rate-limit header at all, and an own HTTP service none known: for those
//! the estimate says so and the run's caps stay the only pace.
//!
//! Why a request and not `GET /models`: the providers document the headers on
//! their model requests; a model list costs nothing but states no limit.

use serde::{Deserialize, Serialize};

use crate::http::HttpRequest;
use crate::provider::{is_reasoning_model, Provider, ANTHROPIC_VERSION};

/// The request's whole text: a few tokens.
const PROMPT: &str = "Reply with OK.";

/// The limits an endpoint stated, per minute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointLimits {
    /// Requests a minute.
    pub requests_per_minute: Option<u64>,
    /// Tokens a minute, counting the prompt and the answer's `max_tokens`
    /// (OpenAI's; Anthropic's combined limit where it states one).
    pub tokens_per_minute: Option<u64>,
    /// Input tokens a minute (Anthropic).
    pub input_tokens_per_minute: Option<u64>,
    /// Output tokens a minute (Anthropic).
    pub output_tokens_per_minute: Option<u64>,
    /// The headers they were read from, `name: value` (numbers only).
    pub read_from: Vec<String>,
}

impl EndpointLimits {
    /// Whether the endpoint stated any limit.
    pub fn is_empty(&self) -> bool {
        self.requests_per_minute.is_none()
            && self.tokens_per_minute.is_none()
            && self.input_tokens_per_minute.is_none()
            && self.output_tokens_per_minute.is_none()
    }
}

/// Why no limit was asked of the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotAsked {
    /// Gemini's API sends no rate-limit headers.
    #[error("Gemini's API states its limits in no header (they are on the project's quota page)")]
    Gemini,
    /// An own HTTP service: no rate-limit headers are known for it.
    #[error("an own HTTP service states no limits shadow-batch knows how to read")]
    OwnService,
}

/// The one request that reads the endpoint's limits: a text-only request for a
/// single answer token, to the endpoint and model the run would use (the host
/// adds the key). `Err` when the provider states no limits in headers.
pub fn limits_request(provider: &Provider) -> Result<HttpRequest, NotAsked> {
    let json = "application/json".to_owned();
    let (body, extra) = match provider {
        Provider::OpenAi(cfg) => (openai_body(&cfg.model), None),
        Provider::Azure(cfg) => (openai_body(&cfg.deployment), None),
        Provider::Anthropic(cfg) => (
            serde_json::json!({
                "model": cfg.model,
                "max_tokens": 1,
                "messages": [{"role": "user", "content": PROMPT}],
            }),
            Some(("anthropic-version".to_owned(), ANTHROPIC_VERSION.to_owned())),
        ),
        Provider::Gemini(_) => return Err(NotAsked::Gemini),
        Provider::HttpJson(_) => return Err(NotAsked::OwnService),
    };
    let mut headers = vec![("content-type".to_owned(), json)];
    headers.extend(extra);
    Ok(HttpRequest {
        method: "POST",
        url: provider.endpoint_url(),
        headers,
        body: body.to_string(),
    })
}

fn openai_body(model: &str) -> serde_json::Value {
    // Reasoning models refuse `max_tokens`.
    let cap = if is_reasoning_model(model) {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        cap: 1,
    })
}

#[cfg(test)]
mod tests;
