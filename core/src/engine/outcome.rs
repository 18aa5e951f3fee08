//! What one attempt's outcome means for its item: a prediction, a final failure, a
//! retry, or a reason to stop the whole run. Pure: the run applies the verdict
//! (tallies, pacing, the retry queue).

use crate::confidence::Scored;
use crate::http::{HttpResponse, TransportErrorKind};
use crate::input::LabelSet;
use crate::journal::{FailureKind, Usage};
use crate::provider::{rejects_format, rejects_logprobs, AnswerError, OutputFormat, Provider};
use crate::ratelimit::{
    body_retry_delay_ms, classify_status, describe_status, RateLimitHeaders, StatusVerdict,
};
use crate::redact::Redactor;

use crate::stop::AbortReason;

/// Why an attempt, or an item, failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Failure {
    pub(super) kind: FailureKind,
    pub(super) message: String,
    /// Status of the answer, when one came.
    pub(super) status: Option<u16>,
    /// Dispatch-to-answer time, when a request was made.
    pub(super) latency_ms: Option<u64>,
}

impl Failure {
    /// A row that cannot be sent (a CSV defect) or an image that cannot be loaded:
    /// no request was made.
    pub(super) fn without_request(kind: FailureKind, message: String) -> Failure {
        Failure {
            kind,
            message,
            status: None,
            latency_ms: None,
        }
    }

    /// No answer came.
    pub(super) fn transport(kind: TransportErrorKind, message: String, latency_ms: u64) -> Self {
        let what = match kind {
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Connect => "could not connect",
            TransportErrorKind::Reset => "connection broke",
            TransportErrorKind::Body => "answer unreadable",
        };
        Failure {
            kind: FailureKind::Transport,
            message: if message.is_empty() {
                what.to_string()
            } else {
                format!("{what}: {message}")
            },
            status: None,
            latency_ms: Some(latency_ms),
        }
    }
}

/// How an item ended.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Ended {
    Succeeded {
        /// Index of the predicted label.
        label: usize,
        /// What the model said (bounded; redacted once judged).
        answer: String,
        usage: Option<Usage>,
        latency_ms: u64,
        status: u16,
        /// How sure the model was, when the answer says.
        confidence: Scored,
    },
    Failed(Failure),
}

/// What an answer means.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Verdict {
    /// The item is final.
    Final(Ended),
    /// Try again, if the item's budget allows, after the endpoint's `retry-after`
    /// or a backoff.
    Retry {
        failure: Failure,
        retry_after_ms: Option<u64>,
        rate_limited: bool,
    },
    /// Nothing more can succeed. The item is left for resume.
    Fatal(AbortReason),
    /// The endpoint refuses the answer's form the request asked for: the run falls
    /// back to the next [`OutputFormat`] and sends the item again.
    FormatRefused {
        /// The form the refused request asked for.
        format: OutputFormat,
    },
    /// The endpoint refuses log-probabilities: the run stops asking for them and
    /// sends the item again.
    ConfidenceRefused,
}

impl Verdict {
    /// Redacts the texts the run will keep (messages, the endpoint's words), once
    /// the answer has been judged as it came.
    pub(super) fn redact(&mut self, redactor: &Redactor) {
        match self {
            Verdict::Final(Ended::Failed(failure)) | Verdict::Retry { failure, .. } => {
                redactor.redact_in_place(&mut failure.message);
            }
            Verdict::Fatal(reason) => reason.redact(redactor),
            Verdict::Final(Ended::Succeeded { answer, .. }) => redactor.redact_in_place(answer),
            Verdict::FormatRefused { .. } | Verdict::ConfidenceRefused => {}
        }
    }
}

/// What a request asked of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Asked {
    /// The answer's form.
    pub(super) format: OutputFormat,
    /// Log-probabilities.
    pub(super) confidence: bool,
}

/// Reads an endpoint's answer for one attempt, whose request asked for `asked`.
/// An answer to a request that asked for log-probabilities and has none is
/// [`crate::confidence::ConfidenceGap::Missing`].
pub(super) fn judge_response(
    provider: &Provider,
    labels: &LabelSet,
    response: &HttpResponse,
    headers: &RateLimitHeaders,
    latency_ms: u64,
    asked: Asked,
) -> Verdict {
    let status = response.status;
    let format = asked.format;
    if asked.confidence && rejects_logprobs(response) {
        return Verdict::ConfidenceRefused;
    }
    if provider.falls_back() && rejects_format(response, format) {
        return Verdict::FormatRefused { format };
    }
    if (200..300).contains(&status) {
        return Verdict::Final(match provider.parse_answer(&response.body, labels) {
            Ok(answer) => Ended::Succeeded {
                label: answer.label,
                answer: answer.text,
                usage: answer.usage,
                latency_ms,
                status,
                confidence: match answer.confidence {
                    Scored::Unscored if asked.confidence => {
                        Scored::Gap(crate::confidence::ConfidenceGap::Missing)
                    }
                    Scored::Unscored => Scored::Unscored,
                    scored => scored,
                },
            },
            Err(e) => Ended::Failed(Failure {
                kind: match &e {
                    AnswerError::Refusal(_) => FailureKind::Refused,
                    AnswerError::OutsideLabelSet { .. } => FailureKind::OutsideLabels,
                    AnswerError::Malformed { .. } => FailureKind::Malformed,
                    // An error where an answer should be: the endpoint's fault.
                    _ => FailureKind::Http,
                },
                message: e.to_string(),
                status: Some(status),
                latency_ms: Some(latency_ms),
            }),
        });
    }
    let failure = || Failure {
        kind: FailureKind::Http,
        message: describe_status(response),
        status: Some(status),
        latency_ms: Some(latency_ms),
    };
    match classify_status(response, headers, provider.model()) {
        StatusVerdict::Fatal(reason) => Verdict::Fatal(reason),
        StatusVerdict::Retry { rate_limited } => Verdict::Retry {
            failure: failure(),
            // Gemini says how long to wait in its error body, not in a header.
            retry_after_ms: headers
                .retry_after_ms
                .or_else(|| body_retry_delay_ms(&response.body)),
            rate_limited,
        },
        StatusVerdict::Fail => Verdict::Final(Ended::Failed(failure())),
        StatusVerdict::Refused => Verdict::Final(Ended::Failed(Failure {
            kind: FailureKind::Refused,
            ..failure()
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{AnthropicConfig, AzureConfig, GeminiConfig, ImageDetail};
    use crate::time::Millis;

    fn labels() -> LabelSet {
        LabelSet::from_labels(["cat", "dog"])
    }

    fn judge(provider: &Provider, status: u16, headers: &[(&str, &str)], body: &str) -> Verdict {
        let response = HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_owned(),
        };
        let parsed = RateLimitHeaders::parse(&response, Millis(1_737_714_600_000));
        judge_response(
            provider,
            &labels(),
            &response,
            &parsed,
            40,
            Asked {
                format: OutputFormat::JsonSchema,
                confidence: false,
            },
        )
    }

    fn anthropic() -> Provider {
        Provider::Anthropic(AnthropicConfig::default())
    }

    fn gemini() -> Provider {
        Provider::Gemini(GeminiConfig::default())
    }

    fn azure() -> Provider {
        Provider::Azure(AzureConfig {
            base_url: "https://res.openai.azure.com".to_owned(),
            deployment: "vision".to_owned(),
            api_version: Some("2024-10-21".to_owned()),
            detail: ImageDetail::Low,
            prompt: None,
        })
    }

    fn retry(verdict: Verdict) -> (Option<u64>, bool) {
        match verdict {
            Verdict::Retry {
                retry_after_ms,
                rate_limited,
                ..
            } => (retry_after_ms, rate_limited),
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    fn fatal(verdict: Verdict) -> AbortReason {
        match verdict {
            Verdict::Fatal(reason) => reason,
            other => panic!("expected a fatal verdict, got {other:?}"),
        }
    }

    /// The kind of failure a `status` answer with `body` is.
    fn failed_kind(provider: &Provider, status: u16, body: &str) -> FailureKind {
        failed(judge(provider, status, &[], body)).kind
    }

    fn failed(verdict: Verdict) -> Failure {
        match verdict {
            Verdict::Final(Ended::Failed(failure)) => failure,
            other => panic!("expected a failed item, got {other:?}"),
        }
    }

    /// Anthropic's documented errors and rate-limit answer.
    #[test]
    fn anthropic_statuses() {
        let p = anthropic();
        // 529 overloaded_error is retried like a 503, not as a rate limit.
        let overloaded =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(retry(judge(&p, 529, &[], overloaded)), (None, false));
        // 429 rate_limit_error with retry-after (seconds) and the ratelimit headers.
        let limited = r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization"}}"#;
        let headers = [
            ("retry-after", "7"),
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2025-01-24T10:30:07Z"),
        ];
        assert_eq!(retry(judge(&p, 429, &headers, limited)), (Some(7000), true));
        // 401 / 403 are fatal, with the endpoint's reason.
        let auth = r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
        assert_eq!(
            fatal(judge(&p, 401, &[], auth)),
            AbortReason::Unauthorized {
                status: 401,
                detail: Some("invalid x-api-key".to_owned())
            }
        );
        let perm = r#"{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}"#;
        assert!(matches!(
            fatal(judge(&p, 403, &[], perm)),
            AbortReason::Unauthorized { status: 403, .. }
        ));
        // A 400 about the credit balance stops the run; other 400s fail the item.
        let credit = r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#;
        let reason = fatal(judge(&p, 400, &[], credit));
        assert!(
            matches!(&reason, AbortReason::QuotaExhausted { status: 400, detail: Some(d) } if d.starts_with("Your credit balance")),
            "{reason:?}"
        );
        assert!(reason.to_string().contains("HTTP 400"), "{reason}");
        let bad = r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages.0.content.0.image.source.base64.data: The image was specified using the image/png media type, but the image appears to be a image/jpeg image"}}"#;
        let f = failed(judge(&p, 400, &[], bad));
        assert_eq!(f.kind, FailureKind::Http);
        assert!(f.message.starts_with("HTTP 400: messages.0"), "{f:?}");
        // An unknown model is fatal and named.
        let missing =
            r#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}"#;
        assert!(matches!(
            fatal(judge(&p, 404, &[], missing)),
            AbortReason::ModelNotFound { model: Some(m), .. } if m == "claude-haiku-4-5"
        ));
        // A refusal in a 200 is a refused item.
        let refused = r#"{"content":[],"stop_reason":"refusal"}"#;
        assert_eq!(failed_kind(&p, 200, refused), FailureKind::Refused);
    }

    /// Gemini's documented errors: RetryInfo's delay is the wait; a wrong key (400)
    /// and a per-day quota stop the run; safety blocks are refusals.
    #[test]
    fn gemini_statuses() {
        let p = gemini();
        let exhausted = r#"{"error": {"code": 429,
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
              {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                "quotaValue": "10"}]},
              {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
              {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]}}"#;
        assert_eq!(retry(judge(&p, 429, &[], exhausted)), (Some(17_000), true));
        // A retry-after header, when one is sent, wins over the body.
        assert_eq!(
            retry(judge(&p, 429, &[("retry-after", "2")], exhausted)),
            (Some(2000), true)
        );
        let fractional = exhausted.replace("\"17s\"", "\"0.25s\"");
        assert_eq!(retry(judge(&p, 429, &[], &fractional)), (Some(250), true));
        // A per-day quota cannot be waited out: the run stops.
        let daily = exhausted.replace("PerMinute", "PerDay");
        assert!(matches!(
            fatal(judge(&p, 429, &[], &daily)),
            AbortReason::QuotaExhausted { status: 429, .. }
        ));
        let bad_key = r#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID", "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}}]}}"#;
        let reason = fatal(judge(&p, 400, &[], bad_key));
        assert!(matches!(
            reason,
            AbortReason::Unauthorized { status: 400, .. }
        ));
        assert!(
            reason.to_string().contains("rejected the API key"),
            "{reason}"
        );
        let missing = r#"{"error": {"code": 404, "message": "models/gemini-9 is not found for API version v1beta, or is not supported for generateContent.", "status": "NOT_FOUND"}}"#;
        assert!(matches!(
            fatal(judge(&p, 404, &[], missing)),
            AbortReason::ModelNotFound { .. }
        ));
        let unavailable = r#"{"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}"#;
        assert_eq!(retry(judge(&p, 503, &[], unavailable)), (None, false));
        let blocked = r#"{"candidates": [{"finishReason": "SAFETY"}]}"#;
        assert_eq!(failed_kind(&p, 200, blocked), FailureKind::Refused);
    }

    /// Azure's documented content-filter 400 is a refused item (not an HTTP
    /// failure, and not a step towards "the endpoint refuses everything").
    #[test]
    fn azure_statuses() {
        let p = azure();
        let filtered = r#"{"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
            "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
                "hate": {"filtered": false, "severity": "safe"},
                "sexual": {"filtered": true, "severity": "high"}}}}}"#;
        let f = failed(judge(&p, 400, &[], filtered));
        assert_eq!((f.kind, f.status), (FailureKind::Refused, Some(400)));
        assert!(f.message.contains("content management policy"), "{f:?}");
        let throttled = r#"{"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."}}"#;
        assert_eq!(
            retry(judge(
                &p,
                429,
                &[("retry-after-ms", "6000"), ("retry-after", "6")],
                throttled
            )),
            (Some(6000), true)
        );
        let denied = r#"{"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}}"#;
        assert!(matches!(
            fatal(judge(&p, 401, &[], denied)),
            AbortReason::Unauthorized { status: 401, .. }
        ));
        let no_deployment = r#"{"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist."}}"#;
        assert!(matches!(
            fatal(judge(&p, 404, &[], no_deployment)),
            AbortReason::ModelNotFound { model: Some(m), .. } if m == "vision"
        ));
        // A plain 404 (no api-version) fails the item; the breaker stops the run
        // when every request gets it.
        let not_found = r#"{"error": {"code": "404", "message": "Resource not found"}}"#;
        assert_eq!(
            failed(judge(&p, 404, &[], not_found)).kind,
            FailureKind::Http
        );
    }
}
