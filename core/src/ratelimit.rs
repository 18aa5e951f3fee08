//! Reading what an endpoint says about its limits, and deciding what a response
//! means: success, retry (and when), item failure, or a run-fatal condition.

use crate::engine::AbortReason;
use crate::http::HttpResponse;
use crate::provider::parse_api_error;
use crate::time::{parse_go_duration, parse_http_date, Millis};

/// The rate-limit facts a response carried. Every field is optional: endpoints
/// send some, all or none of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// `retry-after-ms`, or `retry-after` as seconds or an HTTP date, as a wait in ms.
    pub retry_after_ms: Option<u64>,
    /// `x-ratelimit-limit-requests` (per minute at OpenAI).
    pub limit_requests: Option<u64>,
    /// `x-ratelimit-remaining-requests`.
    pub remaining_requests: Option<u64>,
    /// `x-ratelimit-reset-requests`, a Go duration, in ms.
    pub reset_requests_ms: Option<u64>,
    /// `x-ratelimit-remaining-tokens`.
    pub remaining_tokens: Option<u64>,
    /// `x-ratelimit-reset-tokens`, in ms.
    pub reset_tokens_ms: Option<u64>,
    /// `x-should-retry: true|false`.
    pub should_retry: Option<bool>,
}

impl RateLimitHeaders {
    /// Reads the headers of `response` in one pass; `now` turns an HTTP-date
    /// `retry-after` into a wait.
    pub fn parse(response: &HttpResponse, now: Millis) -> RateLimitHeaders {
        let mut h = RateLimitHeaders::default();
        let mut retry_after = None;
        let mut retry_after_ms = None;
        for (name, value) in &response.headers {
            let value = value.trim();
            let num = || value.parse::<u64>().ok();
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
            } else if is("x-ratelimit-limit-requests") {
                h.limit_requests = num();
            } else if is("x-ratelimit-remaining-requests") {
                h.remaining_requests = num();
            } else if is("x-ratelimit-reset-requests") {
                h.reset_requests_ms = parse_go_duration(value);
            } else if is("x-ratelimit-remaining-tokens") {
                h.remaining_tokens = num();
            } else if is("x-ratelimit-reset-tokens") {
                h.reset_tokens_ms = parse_go_duration(value);
            } else if is("x-should-retry") {
                h.should_retry = if value.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if value.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    None
                };
            }
        }
        h.retry_after_ms = retry_after_ms.or(retry_after);
        h
    }

    /// The endpoint says no request may start for this long (0 = no pause asked).
    pub fn exhausted_for_ms(&self) -> u64 {
        let requests = match self.remaining_requests {
            Some(0) => self.reset_requests_ms.unwrap_or(0),
            _ => 0,
        };
        let tokens = match self.remaining_tokens {
            Some(0) => self.reset_tokens_ms.unwrap_or(0),
            _ => 0,
        };
        requests.max(tokens)
    }
}

/// What a non-2xx response means for its item and the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StatusVerdict {
    /// Try the item again (if attempts remain) after `retry_after_ms` or a backoff.
    Retry { rate_limited: bool },
    /// The item failed for good; other items go on.
    Fail,
    /// Nothing more can succeed: stop the run and say why.
    Fatal(AbortReason),
}

/// Classifies an error status per the retry policy: 408, 409, 429, 5xx retried;
/// 401/403, an unknown model and quota exhaustion fatal; other 4xx final;
/// `x-should-retry` overrides everything but the fatal cases. `model` is the model
/// the run asked for, named in the reason when the endpoint does not know it.
pub(crate) fn classify_status(
    response: &HttpResponse,
    headers: &RateLimitHeaders,
    model: Option<&str>,
) -> StatusVerdict {
    let status = response.status;
    let api_error = parse_api_error(&response.body);
    let code = api_error.as_ref().and_then(|e| e.code.as_deref());
    let is_code = |c: &str| code == Some(c);
    let detail = || api_error.as_ref().map(|e| e.message.clone());
    if status == 401 || status == 403 {
        return StatusVerdict::Fatal(AbortReason::Unauthorized {
            status,
            detail: detail(),
        });
    }
    if status == 404 && is_code("model_not_found") {
        return StatusVerdict::Fatal(AbortReason::ModelNotFound {
            model: model.map(str::to_string),
            detail: detail(),
        });
    }
    if status == 429 && is_code("insufficient_quota") {
        return StatusVerdict::Fatal(AbortReason::QuotaExhausted { detail: detail() });
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
        assert_eq!(h.limit_requests, Some(6000));
        assert_eq!(h.reset_requests_ms, Some(360_000));
        assert_eq!(h.exhausted_for_ms(), 360_000);
        let fine = RateLimitHeaders {
            remaining_requests: Some(3),
            reset_requests_ms: Some(100),
            ..h
        };
        assert_eq!(fine.exhausted_for_ms(), 0);
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
