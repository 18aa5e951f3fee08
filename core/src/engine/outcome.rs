//! What one attempt's outcome means for its item: a prediction, a final failure, a
//! retry, or a reason to stop the whole run. Pure: the run applies the verdict
//! (tallies, pacing, the retry queue).

use crate::http::{HttpResponse, TransportErrorKind};
use crate::input::LabelSet;
use crate::journal::{FailureKind, Usage};
use crate::provider::{AnswerError, Provider};
use crate::ratelimit::{classify_status, describe_status, RateLimitHeaders, StatusVerdict};

use super::stop::AbortReason;

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ended {
    Succeeded {
        /// Index of the predicted label.
        label: usize,
        usage: Option<Usage>,
        latency_ms: u64,
        status: u16,
    },
    Failed(Failure),
}

/// What an answer means.
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

/// Reads an endpoint's answer for one attempt.
pub(super) fn judge_response(
    provider: &Provider,
    labels: &LabelSet,
    response: &HttpResponse,
    headers: &RateLimitHeaders,
    latency_ms: u64,
) -> Verdict {
    let status = response.status;
    if (200..300).contains(&status) {
        return Verdict::Final(match provider.parse_answer(&response.body, labels) {
            Ok(answer) => Ended::Succeeded {
                label: answer.label,
                usage: answer.usage,
                latency_ms,
                status,
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
            retry_after_ms: headers.retry_after_ms,
            rate_limited,
        },
        StatusVerdict::Fail => Verdict::Final(Ended::Failed(failure())),
    }
}
