use super::*;
use crate::http::HttpResponse;
use crate::provider::{AnthropicConfig, GeminiConfig, OpenAiConfig};
use crate::ratelimit::{read_limits, LimitsError};
use crate::stop::AbortReason;
use crate::time::Millis;

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.into(),
    }
}

fn openai(model: &str) -> Provider {
    Provider::OpenAi(OpenAiConfig {
        base_url: "https://api.openai.com/v1".into(),
        model: model.into(),
        ..match crate::RunConfig::default().provider {
            Provider::OpenAi(c) => c,
            _ => unreachable!(),
        }
    })
}

/// The request is text only, asks for one token (`max_completion_tokens` for a
/// reasoning model), goes where the run's requests go, and names the model;
/// Anthropic's carries its version header; Gemini gets none.
#[test]
fn the_limits_request_is_one_token_of_text_to_the_runs_endpoint() {
    let r = limits_request(&openai("gpt-4o-mini")).unwrap();
    assert_eq!(r.url, "https://api.openai.com/v1/chat/completions");
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["max_tokens"], 1);
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["messages"][0]["content"], PROMPT);
    let r = limits_request(&openai("o4-mini")).unwrap();
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["max_completion_tokens"], 1);
    assert!(body.get("max_tokens").is_none());
    let anthropic = Provider::Anthropic(AnthropicConfig::default());
    let r = limits_request(&anthropic).unwrap();
    assert!(r.url.ends_with("/v1/messages"));
    assert!(r
        .headers
        .contains(&("anthropic-version".into(), ANTHROPIC_VERSION.into())));
    assert_eq!(
        limits_request(&Provider::Gemini(GeminiConfig::default())),
        Err(NotAsked::Gemini)
    );
}

/// OpenAI's and Anthropic's limit headers (as their docs name them) are read,
/// a 429 still states them, a 401 is the run's "key rejected", and an error
/// without a limit header is an error, not empty limits.
#[test]
fn limits_are_read_from_each_providers_headers() {
    let now = Millis(0);
    let p = openai("gpt-4o-mini");
    let ok = response(
        200,
        &[
            ("x-ratelimit-limit-requests", "5000"),
            ("x-ratelimit-limit-tokens", "4000000"),
            ("x-ratelimit-remaining-requests", "4999"),
        ],
        "{}",
    );
    let limits = read_limits(&p, &ok, now).unwrap();
    assert_eq!(limits.requests_per_minute, Some(5_000));
    assert_eq!(limits.tokens_per_minute, Some(4_000_000));
    assert_eq!(
        limits.read_from,
        [
            "x-ratelimit-limit-requests: 5000",
            "x-ratelimit-limit-tokens: 4000000"
        ]
    );
    let anthropic = Provider::Anthropic(AnthropicConfig::default());
    let limited = response(
        429,
        &[
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-input-tokens-limit", "30000"),
            ("anthropic-ratelimit-output-tokens-limit", "8000"),
            ("retry-after", "3"),
        ],
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
    );
    let limits = read_limits(&anthropic, &limited, now).unwrap();
    assert_eq!(
        (
            limits.requests_per_minute,
            limits.input_tokens_per_minute,
            limits.output_tokens_per_minute
        ),
        (Some(50), Some(30_000), Some(8_000))
    );
    let refused = response(
        401,
        &[("x-ratelimit-limit-requests", "5000")],
        r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#,
    );
    match read_limits(&p, &refused, now) {
        Err(LimitsError::Fatal(AbortReason::Unauthorized { status: 401, .. })) => {}
        other => panic!("{other:?}"),
    }
    let not_found = response(404, &[], "Not Found");
    assert_eq!(
        read_limits(&p, &not_found, now),
        Err(LimitsError::Status("HTTP 404".into()))
    );
    // A success without a header: empty limits (the estimate says none stated).
    let bare = read_limits(&p, &response(200, &[], "{}"), now).unwrap();
    assert!(bare.is_empty());
}
