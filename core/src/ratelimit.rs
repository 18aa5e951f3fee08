//! Reading what an endpoint says about its limits, and deciding what a response
//! means: success, retry (and when), item failure, or a run-fatal condition.

use crate::estimate::EndpointLimits;
use crate::http::HttpResponse;
use crate::provider::parse_api_error;
use crate::provider::Provider;
use crate::stop::AbortReason;
use crate::time::{parse_go_duration, parse_http_date, parse_rfc3339, Millis};

/// One limit an endpoint reports: how much per minute, how much is left, and when
/// it is whole again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitWindow {
    /// The limit per minute.
    pub limit: Option<u64>,
    /// What is left of it.
    pub remaining: Option<u64>,
    /// When it is whole again, as a wait in ms.
    pub reset_ms: Option<u64>,
}

impl LimitWindow {
    /// How long nothing more fits (0 unless `remaining` is 0).
    fn exhausted_for_ms(&self) -> u64 {
        match self.remaining {
            Some(0) => self.reset_ms.unwrap_or(0),
            _ => 0,
        }
    }

    fn is_empty(&self) -> bool {
        *self == LimitWindow::default()
    }
}

/// The rate-limit facts a response carried. Every field is optional: endpoints
/// send some, all or none of them.
///
/// OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (resets as Go
/// durations) and Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,
/// output-tokens}-{limit,remaining,reset}` (resets as RFC 3339 times) are read into
/// the same windows, so pacing does not care which provider spoke.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// `retry-after-ms`, or `retry-after` as seconds or an HTTP date, as a wait in ms.
    pub retry_after_ms: Option<u64>,
    /// Requests per minute.
    pub requests: LimitWindow,
    /// Tokens per minute, counting the prompt and the `max_tokens` asked for
    /// (OpenAI; Anthropic's most restrictive token limit).
    pub tokens: LimitWindow,
    /// Input (prompt) tokens per minute (Anthropic).
    pub input_tokens: LimitWindow,
    /// Output tokens per minute (Anthropic).
    pub output_tokens: LimitWindow,
    /// `x-should-retry: true|false`.
    pub should_retry: Option<bool>,
}

impl RateLimitHeaders {
    /// Every header [`RateLimitHeaders::parse`] reads, by name: what a browser
    /// host must be allowed to read (CORS `Access-Control-Expose-Headers`).
    pub const NAMES: [&'static str; 21] = [
        "retry-after",
        "retry-after-ms",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "x-should-retry",
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
        "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ];

    /// Reads the headers of `response` in one pass; `now` turns an HTTP-date
    /// `retry-after` and RFC 3339 resets into waits.
    pub fn parse(response: &HttpResponse, now: Millis) -> RateLimitHeaders {
        let mut h = RateLimitHeaders::default();
        let mut retry_after = None;
        let mut retry_after_ms = None;
        for (name, value) in &response.headers {
            let value = value.trim();
            let name = name.as_str();
            let is = |n: &str| name.eq_ignore_ascii_case(n);
            if is("retry-after-ms") {
                retry_after_ms = value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .map(|v| v.ceil() as u64);
            } else if is("retry-after") {
                retry_after = match value.parse::<f64>() {
                    Ok(secs) if secs.is_finite() && secs >= 0.0 => {
                        Some((secs * 1000.0).ceil() as u64)
                    }
                    Ok(_) => None,
                    Err(_) => parse_http_date(value).map(|at| at.since(now)),
                };
            } else if is("x-should-retry") {
                h.should_retry = if value.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if value.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    None
                };
            } else {
                h.read_window_header(name, value, now);
            }
        }
        h.retry_after_ms = retry_after_ms.or(retry_after);
        h
    }

    /// Whether [`RateLimitHeaders::parse`] reads a header of this (lower-case)
    /// name: a host may keep only those.
    pub fn reads(name: &str) -> bool {
        name.starts_with("x-ratelimit-")
            || name.starts_with("anthropic-ratelimit-")
            || name.starts_with("retry-after")
            || name == "x-should-retry"
    }

    /// `x-ratelimit-{field}-{window}` or `anthropic-ratelimit-{window}-{field}`.
    fn read_window_header(&mut self, name: &str, value: &str, now: Millis) {
        let lower = |prefix: &str| {
            name.get(..prefix.len())
                .filter(|p| p.eq_ignore_ascii_case(prefix))
                .map(|_| name[prefix.len()..].to_ascii_lowercase())
        };
        let (window, field, reset) = if let Some(rest) = lower("x-ratelimit-") {
            let Some((field, window)) = rest.split_once('-') else {
                return;
            };
            let reset = parse_go_duration(value);
            (window.to_owned(), field.to_owned(), reset)
        } else if let Some(rest) = lower("anthropic-ratelimit-") {
            let Some((window, field)) = rest.rsplit_once('-') else {
                return;
            };
            let reset = parse_rfc3339(value).map(|at| at.since(now));
            (window.to_owned(), field.to_owned(), reset)
        } else {
            return;
        };
        let window = match window.as_str() {
            "requests" => &mut self.requests,
            "tokens" => &mut self.tokens,
            "input-tokens" => &mut self.input_tokens,
            "output-tokens" => &mut self.output_tokens,
            _ => return,
        };
        match field.as_str() {
            "limit" => window.limit = value.parse().ok(),
            "remaining" => window.remaining = value.parse().ok(),
            "reset" => window.reset_ms = reset,
            _ => {}
        }
    }

    /// The endpoint says no request may start for this long (0 = no pause asked).
    pub fn exhausted_for_ms(&self) -> u64 {
        [
            &self.requests,
            &self.tokens,
            &self.input_tokens,
            &self.output_tokens,
        ]
        .iter()
        .map(|w| w.exhausted_for_ms())
        .max()
        .unwrap_or(0)
    }

    /// Whether the response said anything about token limits.
    pub fn speaks_of_tokens(&self) -> bool {
        !(self.tokens.is_empty() && self.input_tokens.is_empty() && self.output_tokens.is_empty())
    }
}

/// Whether a 429 is about tokens rather than requests: OpenAI's error type
/// `tokens` or a message naming tokens per minute, Anthropic's message about
/// input or output tokens, or an exhausted token window in the headers.
pub(crate) fn is_token_limit(response: &HttpResponse, headers: &RateLimitHeaders) -> bool {
    if headers.tokens.remaining == Some(0)
        || headers.input_tokens.remaining == Some(0)
        || headers.output_tokens.remaining == Some(0)
    {
        return true;
    }
    let Some(error) = parse_api_error(&response.body) else {
        return false;
    };
    let message = error.message.to_ascii_lowercase();
    error.kind.as_deref().is_some_and(|k| k.contains("token"))
        || message.contains("tokens per min")
        || message.contains("(tpm)")
        || message.contains("input tokens")
        || message.contains("output tokens")
}

/// What a non-2xx response means for its item and the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StatusVerdict {
    /// Try the item again (if attempts remain) after `retry_after_ms` or a backoff.
    Retry { rate_limited: bool },
    /// The item failed for good; other items go on.
    Fail,
    /// The endpoint's content filter refused the request (Azure's 400
    /// `content_filter`): the item is refused, as when the model declines.
    Refused,
    /// Nothing more can succeed: stop the run and say why.
    Fatal(AbortReason),
}

/// Classifies an error status per the retry policy: 408, 409, 429, 5xx (and
/// Anthropic's 529 `overloaded_error`) retried; 401/403, a key the endpoint calls
/// invalid (Gemini answers 400 `API_KEY_INVALID`), an unknown model or deployment,
/// and an account without quota or credit (429 `insufficient_quota`, Gemini's
/// per-day quota, Anthropic's 400 about the credit balance) fatal; a content-filter
/// 400 refused; other 4xx final; `x-should-retry` overrides everything but the fatal
/// and refused cases. `model` is the model the run asked for, named in the reason
/// when the endpoint does not know it.
pub(crate) fn classify_status(
    response: &HttpResponse,
    headers: &RateLimitHeaders,
    model: Option<&str>,
) -> StatusVerdict {
    let status = response.status;
    let api_error = parse_api_error(&response.body);
    let code = api_error.as_ref().and_then(|e| e.code.as_deref());
    let kind = api_error.as_ref().and_then(|e| e.kind.as_deref());
    let is_code = |c: &str| code == Some(c);
    let message = api_error
        .as_ref()
        .map(|e| e.message.to_ascii_lowercase())
        .unwrap_or_default();
    let detail = || api_error.as_ref().map(|e| e.message.clone());
    let google = || GoogleDetails::of(&response.body);
    if status == 401 || status == 403 || (status == 400 && google().key_invalid) {
        return StatusVerdict::Fatal(AbortReason::Unauthorized {
            status,
            detail: detail(),
        });
    }
    let model_unknown = is_code("model_not_found")
        || is_code("DeploymentNotFound")
        // Anthropic: `not_found_error` "model: claude-x".
        || (is_code("not_found_error") && message.starts_with("model:"))
        // Gemini: `NOT_FOUND` "models/x is not found for API version v1beta...".
        || (kind == Some("NOT_FOUND") && message.contains("models/"));
    if status == 404 && model_unknown {
        return StatusVerdict::Fatal(AbortReason::ModelNotFound {
            model: model.map(str::to_string),
            detail: detail(),
        });
    }
    let out_of_credit = (status == 429 && (is_code("insufficient_quota") || google().per_day_quota))
        // Anthropic: 400 invalid_request_error "Your credit balance is too low...".
        || (status == 400 && message.contains("credit balance"));
    if out_of_credit {
        return StatusVerdict::Fatal(AbortReason::QuotaExhausted {
            status,
            detail: detail(),
        });
    }
    if status == 400
        && (is_code("content_filter") || response.body.contains("ResponsibleAIPolicyViolation"))
    {
        return StatusVerdict::Refused;
    }
    match headers.should_retry {
        Some(true) => {
            return StatusVerdict::Retry {
                rate_limited: status == 429,
            }
        }
        Some(false) => return StatusVerdict::Fail,
        None => {}
    }
    match status {
        429 => StatusVerdict::Retry { rate_limited: true },
        408 | 409 | 500..=599 => StatusVerdict::Retry {
            rate_limited: false,
        },
        _ => StatusVerdict::Fail,
    }
}

/// What the `details` of a Google API error (`{"error": {"details": [...]}}`) say.
#[derive(Debug, Default)]
struct GoogleDetails {
    /// `google.rpc.RetryInfo`'s `retryDelay`, in ms.
    retry_delay_ms: Option<u64>,
    /// `google.rpc.ErrorInfo` with reason `API_KEY_INVALID`.
    key_invalid: bool,
    /// `google.rpc.QuotaFailure` naming a per-day quota: retrying before tomorrow
    /// cannot help.
    per_day_quota: bool,
}

impl GoogleDetails {
    fn of(body: &str) -> GoogleDetails {
        use serde_json::Value;
        let mut out = GoogleDetails::default();
        // Cheap test first: most error bodies are not Google's.
        if !body.contains("type.googleapis.com/google.rpc.") {
            return out;
        }
        let Ok(value) = serde_json::from_str::<Value>(body) else {
            return out;
        };
        let details = value
            .pointer("/error/details")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for detail in details {
            let kind = detail.get("@type").and_then(Value::as_str).unwrap_or("");
            if kind.ends_with("google.rpc.RetryInfo") {
                out.retry_delay_ms = detail
                    .get("retryDelay")
                    .and_then(Value::as_str)
                    .and_then(parse_proto_duration);
            } else if kind.ends_with("google.rpc.ErrorInfo") {
                out.key_invalid |=
                    detail.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID");
            } else if kind.ends_with("google.rpc.QuotaFailure") {
                out.per_day_quota |= detail
                    .get("violations")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.get("quotaId").and_then(Value::as_str))
                    .any(|id| id.contains("PerDay"));
            }
        }
        out
    }
}

/// The wait an error body asks for, when its headers name none: the `retryDelay` of
/// a Google `google.rpc.RetryInfo` detail (Gemini's 429 `RESOURCE_EXHAUSTED` carries
/// one, and no `retry-after` header), in ms.
pub(crate) fn body_retry_delay_ms(body: &str) -> Option<u64> {
    GoogleDetails::of(body).retry_delay_ms
}

/// A protobuf JSON `Duration`: decimal seconds with an `s` suffix (`17s`, `0.5s`,
/// `1.000340012s`), as a whole number of ms rounded up.
fn parse_proto_duration(s: &str) -> Option<u64> {
    let number = s.trim().strip_suffix('s')?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let mut ms = 0;
    for (i, b) in fraction.bytes().take(3).enumerate() {
        ms += u64::from(b - b'0') * 10u64.pow(2 - i as u32);
    }
    let rest = fraction.get(3..).unwrap_or("");
    let up = u64::from(rest.bytes().any(|b| b != b'0'));
    secs.checked_mul(1000)?.checked_add(ms + up)
}

/// Human-readable reason for an error status, from the body when it is an API error.
pub(crate) fn describe_status(response: &HttpResponse) -> String {
    match parse_api_error(&response.body) {
        Some(e) => format!("HTTP {}: {}", response.status, e.message),
        None => format!("HTTP {}", response.status),
    }
}

/// `seed`, item and attempt hashed to a number in [0, 1): jitter that does not
/// depend on the order events arrive in.
pub(crate) fn unit_hash(seed: u64, item: usize, attempt: u32) -> f64 {
    let z = seed
        ^ (item as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(attempt).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    crate::hash::unit_interval(crate::hash::mix64(z))
}

/// Capped exponential backoff before attempt `attempt + 1`, minus up to 25% jitter.
pub(crate) fn backoff_ms(initial: u64, max: u64, attempt: u32, jitter: f64) -> u64 {
    let exp = initial.saturating_mul(1u64 << attempt.saturating_sub(1).min(32));
    let base = exp.min(max);
    base - (base as f64 * 0.25 * jitter) as u64
}

/// Why the endpoint's answer gave no limits.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// A status the run would stop on (the key refused, the model unknown, no
    /// quota left).
    #[error("{0}")]
    Fatal(AbortReason),
    /// Another error status, with no limit in its headers.
    #[error("the endpoint answered {0}")]
    Status(String),
}

/// The limits the answer to [`crate::estimate::limits::limits_request`] states. A 429 still states
/// them; a key refused, an unknown model or an error status without any
/// limit header is an error. A success without one gives empty limits.
pub fn read_limits(
    provider: &Provider,
    response: &HttpResponse,
    now: Millis,
) -> Result<EndpointLimits, LimitsError> {
    let headers = RateLimitHeaders::parse(response, now);
    if !(200..300).contains(&response.status) {
        if let StatusVerdict::Fatal(reason) = classify_status(response, &headers, provider.model())
        {
            return Err(LimitsError::Fatal(reason));
        }
    }
    let read_from = response
        .headers
        .iter()
        .filter(|(name, _)| is_limit_header(name))
        .filter(|(_, value)| value.trim().parse::<u64>().is_ok())
        .map(|(name, value)| format!("{}: {}", name.to_ascii_lowercase(), value.trim()))
        .collect();
    let limits = EndpointLimits {
        requests_per_minute: headers.requests.limit,
        tokens_per_minute: headers.tokens.limit,
        input_tokens_per_minute: headers.input_tokens.limit,
        output_tokens_per_minute: headers.output_tokens.limit,
        read_from,
    };
    if limits.is_empty() && !(200..300).contains(&response.status) {
        return Err(LimitsError::Status(describe_status(response)));
    }
    Ok(limits)
}

/// `x-ratelimit-limit-*` or `anthropic-ratelimit-*-limit`.
fn is_limit_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("x-ratelimit-limit-")
        || (name.starts_with("anthropic-ratelimit-") && name.ends_with("-limit"))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn retry_after_forms() {
        let now = Millis(1_737_714_600_000);
        let h = |hs: &[(&str, &str)]| RateLimitHeaders::parse(&response(429, hs, ""), now);
        assert_eq!(
            h(&[("retry-after-ms", "1500.2")]).retry_after_ms,
            Some(1501)
        );
        assert_eq!(h(&[("Retry-After", "3")]).retry_after_ms, Some(3000));
        assert_eq!(h(&[("retry-after", "0.5")]).retry_after_ms, Some(500));
        assert_eq!(
            h(&[("retry-after", "Fri, 24 Jan 2025 10:30:07 GMT")]).retry_after_ms,
            Some(7000)
        );
        // A date in the past means "now".
        assert_eq!(
            h(&[("retry-after", "Fri, 24 Jan 2025 10:29:00 GMT")]).retry_after_ms,
            Some(0)
        );
        // retry-after-ms wins over retry-after.
        assert_eq!(
            h(&[("retry-after", "9"), ("retry-after-ms", "20")]).retry_after_ms,
            Some(20)
        );
        assert_eq!(h(&[("retry-after", "soon")]).retry_after_ms, None);
        assert_eq!(h(&[("retry-after", "-4")]).retry_after_ms, None);
    }

    #[test]
    fn ratelimit_headers_and_exhaustion() {
        let r = response(
            200,
            &[
                ("x-ratelimit-limit-requests", "6000"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "6m0s"),
                ("x-ratelimit-remaining-tokens", "100"),
                ("x-ratelimit-reset-tokens", "20ms"),
            ],
            "",
        );
        let h = RateLimitHeaders::parse(&r, Millis(0));
        assert_eq!(h.requests.limit, Some(6000));
        assert_eq!(h.requests.reset_ms, Some(360_000));
        assert_eq!(h.tokens.remaining, Some(100));
        assert_eq!(h.tokens.reset_ms, Some(20));
        assert_eq!(h.exhausted_for_ms(), 360_000);
        let fine = RateLimitHeaders {
            requests: LimitWindow {
                remaining: Some(3),
                reset_ms: Some(100),
                ..h.requests
            },
            ..h
        };
        assert_eq!(fine.exhausted_for_ms(), 0);
    }

    #[test]
    fn anthropic_headers_fill_the_same_windows() {
        // As Anthropic documents them; resets are RFC 3339 times.
        let now = parse_rfc3339("2025-01-24T10:30:00Z").unwrap();
        let r = response(
            429,
            &[
                ("retry-after", "7"),
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "49"),
                ("anthropic-ratelimit-requests-reset", "2025-01-24T10:30:01Z"),
                ("anthropic-ratelimit-tokens-limit", "48000"),
                ("anthropic-ratelimit-tokens-remaining", "0"),
                (
                    "anthropic-ratelimit-tokens-reset",
                    "2025-01-24T10:30:02.500Z",
                ),
                ("anthropic-ratelimit-input-tokens-limit", "40000"),
                ("anthropic-ratelimit-input-tokens-remaining", "0"),
                (
                    "Anthropic-RateLimit-Input-Tokens-Reset",
                    "2025-01-24T11:30:04+01:00",
                ),
                ("anthropic-ratelimit-output-tokens-limit", "8000"),
                ("anthropic-ratelimit-output-tokens-remaining", "7990"),
                (
                    "anthropic-ratelimit-output-tokens-reset",
                    "2025-01-24T10:30:00Z",
                ),
            ],
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 40,000 input tokens per minute."}}"#,
        );
        let h = RateLimitHeaders::parse(&r, now);
        assert_eq!(h.retry_after_ms, Some(7_000));
        assert_eq!(
            h.requests,
            LimitWindow {
                limit: Some(50),
                remaining: Some(49),
                reset_ms: Some(1_000)
            }
        );
        assert_eq!(h.tokens.limit, Some(48_000));
        assert_eq!(h.tokens.reset_ms, Some(2_500));
        assert_eq!(h.input_tokens.limit, Some(40_000));
        assert_eq!(h.input_tokens.reset_ms, Some(4_000));
        assert_eq!(h.output_tokens.remaining, Some(7_990));
        assert_eq!(h.exhausted_for_ms(), 4_000);
        assert!(h.speaks_of_tokens());
        assert!(is_token_limit(&r, &h));
        // A request limit 429 is not about tokens.
        let requests = response(
            429,
            &[("x-ratelimit-remaining-requests", "0")],
            r#"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1.","type":"requests","code":"rate_limit_exceeded"}}"#,
        );
        let h = RateLimitHeaders::parse(&requests, now);
        assert!(!h.speaks_of_tokens());
        assert!(!is_token_limit(&requests, &h));
        // OpenAI's token 429, told by its type and by its message.
        for body in [
            r#"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on tokens per min (TPM): Limit 200000, Used 199000, Requested 2849. Please try again in 555ms.","type":"tokens","code":"rate_limit_exceeded"}}"#,
            r#"{"error":{"message":"Rate limit reached on tokens per min (TPM)","code":"rate_limit_exceeded"}}"#,
        ] {
            let r = response(429, &[], body);
            assert!(
                is_token_limit(&r, &RateLimitHeaders::parse(&r, now)),
                "{body}"
            );
        }
    }

    #[test]
    fn status_policy() {
        let verdict = |status, hs: &[(&str, &str)], body: &str| {
            let r = response(status, hs, body);
            classify_status(&r, &RateLimitHeaders::parse(&r, Millis(0)), None)
        };
        assert!(matches!(verdict(401, &[], ""), StatusVerdict::Fatal(_)));
        assert!(matches!(
            verdict(403, &[("x-should-retry", "true")], ""),
            StatusVerdict::Fatal(_)
        ));
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert!(matches!(verdict(429, &[], quota), StatusVerdict::Fatal(_)));
        assert_eq!(
            verdict(429, &[], ""),
            StatusVerdict::Retry { rate_limited: true }
        );
        for s in [408, 409, 500, 502, 503, 504] {
            assert_eq!(
                verdict(s, &[], ""),
                StatusVerdict::Retry {
                    rate_limited: false
                },
                "{s}"
            );
        }
        for s in [400, 404, 413, 422] {
            assert_eq!(verdict(s, &[], ""), StatusVerdict::Fail, "{s}");
        }
        assert_eq!(
            verdict(503, &[("x-should-retry", "false")], ""),
            StatusVerdict::Fail
        );
        assert_eq!(
            verdict(400, &[("x-should-retry", "true")], ""),
            StatusVerdict::Retry {
                rate_limited: false
            }
        );
    }

    #[test]
    fn proto_durations_and_retry_info() {
        assert_eq!(parse_proto_duration("17s"), Some(17_000));
        assert_eq!(parse_proto_duration("0.5s"), Some(500));
        assert_eq!(parse_proto_duration("0.1s"), Some(100));
        assert_eq!(parse_proto_duration("1.000340012s"), Some(1001));
        assert_eq!(parse_proto_duration("2.000000000s"), Some(2000));
        for bad in ["17", "s", "-1s", "1e3s", ".5s", "1.5xs", ""] {
            assert_eq!(parse_proto_duration(bad), None, "{bad}");
        }
        let body = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3.5s"}]}}"#;
        assert_eq!(body_retry_delay_ms(body), Some(3500));
        // Not Google's, or no RetryInfo: nothing.
        assert_eq!(
            body_retry_delay_ms(r#"{"error":{"retryDelay":"3s"}}"#),
            None
        );
        assert_eq!(
            body_retry_delay_ms(
                r#"{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.Help"}]}}"#
            ),
            None
        );
        assert_eq!(
            body_retry_delay_ms("type.googleapis.com/google.rpc. {"),
            None
        );
    }

    #[test]
    fn backoff_grows_caps_and_jitters_down() {
        assert_eq!(backoff_ms(500, 30_000, 1, 0.0), 500);
        assert_eq!(backoff_ms(500, 30_000, 2, 0.0), 1000);
        assert_eq!(backoff_ms(500, 30_000, 4, 0.0), 4000);
        assert_eq!(backoff_ms(500, 30_000, 40, 0.0), 30_000);
        assert_eq!(backoff_ms(500, 30_000, 1, 0.999_999), 376);
        let a = unit_hash(7, 3, 1);
        assert_eq!(a, unit_hash(7, 3, 1));
        assert_ne!(a, unit_hash(8, 3, 1));
        assert!((0.0..1.0).contains(&a));
    }
}
