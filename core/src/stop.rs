//! Why a run stops before every item is final, and the breaker that stops a run
//! against an endpoint that only fails: one breaker for both runs ([`crate::Run`]
//! and [`crate::batch::BatchRun`]), each with its own [`Thresholds`].
//!
//! The reason is data, not a sentence for one host: each host words the next step
//! in its own vocabulary (the CLI names its flags, the page points at its fields).
//! Its `Display` says what happened, in words any host can show.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::redact::Redactor;
use crate::time::{format_duration, Millis};

/// A run-fatal condition: nothing more can succeed, so the run stops dispatching,
/// finishes its reports and ends `aborted`. What is left can be resumed once the
/// cause is fixed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum AbortReason {
    /// HTTP 401 (the key was rejected) or 403 (the key may not do this), or a 400
    /// saying the key is invalid (Gemini's `API_KEY_INVALID`).
    Unauthorized {
        /// 401, 403 or 400.
        status: u16,
        /// The endpoint's own message, when it gave one.
        detail: Option<String>,
    },
    /// The account has no quota or credit left: HTTP 429 `insufficient_quota`
    /// (OpenAI), a 429 naming a per-day quota (Gemini), or a 400 about the credit
    /// balance (Anthropic).
    QuotaExhausted {
        /// The status that said so (429 in runs saved before it was kept).
        #[serde(default = "status_429")]
        status: u16,
        /// The endpoint's own message, when it gave one.
        detail: Option<String>,
    },
    /// HTTP 404 `model_not_found`.
    ModelNotFound {
        /// The model the run asked for, when the provider names one.
        model: Option<String>,
        /// The endpoint's own message, when it gave one.
        detail: Option<String>,
    },
    /// Nothing has ever answered: the first `attempts` attempts all failed to
    /// connect (refused, DNS, TLS). The URL is wrong or the server is not up.
    EndpointUnreachable {
        /// Attempts that failed to connect.
        attempts: u32,
        /// The last failure.
        last_error: String,
    },
    /// Nothing has ever succeeded, and the first `attempts` answers were all the
    /// same HTTP error that retrying does not cure: the URL, the model or the
    /// request shape is wrong for this endpoint.
    EndpointRefuses {
        /// The HTTP status every answer had.
        status: u16,
        /// Answers with it.
        attempts: u32,
        /// The last answer's error.
        detail: String,
    },
    /// No request had a 2xx answer for `for_ms` while `attempts` attempts in a row
    /// failed: the endpoint is down, hangs, or rate-limits without end.
    EndpointFailing {
        /// How long nothing succeeded.
        for_ms: u64,
        /// Failed attempts in a row.
        attempts: u32,
        /// The last failure.
        last_error: String,
    },
    /// The provider's batch API refused a step of a batch run (uploading the
    /// requests, creating, reading or downloading a batch) with an HTTP error that
    /// retrying does not cure.
    BatchRefused {
        /// What was refused: `upload`, `create`, `poll`, `download`, `cancel`,
        /// `list`.
        step: String,
        /// The HTTP status.
        status: u16,
        /// The endpoint's own message, when it gave one.
        detail: Option<String>,
    },
    /// A provider batch failed as a whole (OpenAI's `failed` status: its input
    /// did not pass validation), so none of its requests ran.
    BatchFailed {
        /// The provider's id of the batch.
        batch_id: String,
        /// The provider's errors, in words.
        detail: String,
    },
    /// The provider journal of a batch run does not match what the provider
    /// says (a batch made from another shard's file, results of other rows):
    /// the journal was edited or mixed up, and going on could send rows again.
    JournalMismatch {
        /// What differs, naming the journal's lines.
        detail: String,
    },
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = |d: &Option<String>| d.as_ref().map(|d| format!(": {d}")).unwrap_or_default();
        match self {
            // Gemini answers a wrong key with 400 `API_KEY_INVALID`.
            AbortReason::Unauthorized {
                status: 401 | 400,
                detail: d,
            } => {
                write!(f, "the endpoint rejected the API key (HTTP 401){}", detail(d))
            }
            AbortReason::Unauthorized { status, detail: d } => {
                write!(f, "the endpoint refused access (HTTP {status}){}", detail(d))
            }
            AbortReason::QuotaExhausted {
                status: 429,
                detail: d,
            } => write!(
                f,
                "the account has run out of quota (HTTP 429 insufficient_quota){}",
                detail(d)
            ),
            AbortReason::QuotaExhausted { status, detail: d } => write!(
                f,
                "the account has run out of quota or credit (HTTP {status}){}",
                detail(d)
            ),
            AbortReason::ModelNotFound { model, detail: d } => {
                write!(f, "the endpoint does not know the model")?;
                if let Some(model) = model {
                    write!(f, " {model:?}")?;
                }
                write!(f, " (HTTP 404 model_not_found){}", detail(d))
            }
            AbortReason::EndpointUnreachable {
                attempts,
                last_error,
            } => write!(
                f,
                "the endpoint could not be reached: the first {attempts} attempts all failed to connect (the last: {last_error})"
            ),
            AbortReason::EndpointRefuses {
                status,
                attempts,
                detail,
            } => write!(
                f,
                "the endpoint answered the first {attempts} requests all with HTTP {status} and nothing has succeeded (the last: {detail}); the URL, model or request shape looks wrong for it"
            ),
            AbortReason::EndpointFailing {
                for_ms,
                attempts,
                last_error,
            } => write!(
                f,
                "no request has been answered successfully for {} ({attempts} failed attempts in a row; the last: {last_error}); the endpoint looks down, stuck or rate-limited without end",
                format_duration(*for_ms)
            ),
            AbortReason::BatchRefused {
                step,
                status,
                detail: d,
            } => write!(
                f,
                "the provider's batch API refused to {step} (HTTP {status}){}",
                detail(d)
            ),
            AbortReason::BatchFailed { batch_id, detail } => write!(
                f,
                "the provider batch {batch_id} failed, so none of its requests ran: {detail}"
            ),
            AbortReason::JournalMismatch { detail } => write!(
                f,
                "the provider journal does not match the provider: {detail}; nothing was sent again"
            ),
        }
    }
}

impl AbortReason {
    /// Redacts the endpoint's words it carries.
    pub(crate) fn redact(&mut self, redactor: &Redactor) {
        match self {
            AbortReason::Unauthorized { detail, .. }
            | AbortReason::QuotaExhausted { detail, .. }
            | AbortReason::BatchRefused { detail, .. } => {
                if let Some(detail) = detail {
                    redactor.redact_in_place(detail);
                }
            }
            AbortReason::ModelNotFound { model, detail } => {
                for text in [model, detail].into_iter().flatten() {
                    redactor.redact_in_place(text);
                }
            }
            AbortReason::EndpointUnreachable { last_error, .. }
            | AbortReason::EndpointFailing { last_error, .. } => {
                redactor.redact_in_place(last_error);
            }
            AbortReason::EndpointRefuses { detail, .. }
            | AbortReason::BatchFailed { detail, .. }
            | AbortReason::JournalMismatch { detail } => redactor.redact_in_place(detail),
        }
    }
}

fn status_429() -> u16 {
    429
}

/// Why dispatching stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The user asked (Cancel, Abandon).
    Interrupted,
    /// A run-fatal condition.
    Aborted(AbortReason),
    /// `--until-interval`: the agreement's anytime-valid interval became as
    /// narrow as asked. The run ends `completed`, resumable to go further.
    PrecisionReached,
}

/// When a breaker trips, for one kind of run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Thresholds {
    /// Connection failures, with nothing ever reached, that stop a run as
    /// unreachable.
    unreachable_attempts: u32,
    /// Fewer failures in a row than this never stop a run, however long they took.
    min_failing_streak: u32,
    /// The same non-retryable HTTP error, with nothing ever succeeded, that stops
    /// a run.
    refusals_in_a_row: u32,
    /// Where the time without a success is counted from.
    clock: FailingClock,
}

/// Where the time without a success is counted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FailingClock {
    /// The last 2xx answer, or the start: requests flow all the time.
    LastSuccess,
    /// The first failure since the last 2xx answer: a batch run's calls can be
    /// hours apart, and a quiet hour is no failure.
    FirstFailure,
}

impl Thresholds {
    /// A live run: a little more than the first wave at the default concurrency
    /// fails to connect, or 20 failures in a row.
    pub(crate) const LIVE: Thresholds = Thresholds {
        unreachable_attempts: 10,
        min_failing_streak: 20,
        refusals_in_a_row: 5,
        clock: FailingClock::LastSuccess,
    };
    /// A batch-API run: few calls, one at a time per shard.
    pub(crate) const BATCH: Thresholds = Thresholds {
        unreachable_attempts: 5,
        min_failing_streak: 10,
        refusals_in_a_row: 5,
        clock: FailingClock::FirstFailure,
    };
}

/// The failed attempts since the last 2xx answer (or the start), and what the
/// start of a run says about an endpoint that never worked.
#[derive(Clone, Debug)]
pub(crate) struct Breaker {
    limits: Thresholds,
    last_good: Millis,
    /// The first failure since the last 2xx answer.
    first_failure: Option<Millis>,
    failing_streak: u32,
    /// Some answer (any status) has come back: the endpoint can be reached.
    reached: bool,
    /// Some answer was a 2xx.
    ever_succeeded: bool,
    /// Attempts that failed to connect before anything was reached.
    unreachable_attempts: u32,
    /// Before any success: the status of the non-retryable errors seen, and how many
    /// in a row had it.
    refusals: Option<(u16, u32)>,
}

impl Breaker {
    pub(crate) fn new(now: Millis, limits: Thresholds) -> Breaker {
        Breaker {
            limits,
            last_good: now,
            first_failure: None,
            failing_streak: 0,
            reached: false,
            ever_succeeded: false,
            unreachable_attempts: 0,
            refusals: None,
        }
    }

    pub(crate) fn on_success(&mut self, now: Millis) {
        self.last_good = now;
        self.first_failure = None;
        self.failing_streak = 0;
        self.ever_succeeded = true;
    }

    /// An answer came back, whatever its status.
    pub(crate) fn on_answer(&mut self) {
        self.reached = true;
    }

    /// An attempt could not connect. Says to abort when nothing was ever reached
    /// and enough attempts failed this way.
    pub(crate) fn on_connect_failure(&mut self, error: &str) -> Option<AbortReason> {
        if self.reached {
            return None;
        }
        self.unreachable_attempts += 1;
        (self.unreachable_attempts >= self.limits.unreachable_attempts).then(|| {
            AbortReason::EndpointUnreachable {
                attempts: self.unreachable_attempts,
                last_error: error.to_string(),
            }
        })
    }

    /// An answer failed its item with an HTTP error retrying does not cure. Says to
    /// abort when nothing has ever succeeded and the last answers all had `status`.
    pub(crate) fn on_refusal(&mut self, status: u16, error: &str) -> Option<AbortReason> {
        if self.ever_succeeded {
            return None;
        }
        let count = match self.refusals {
            Some((same, n)) if same == status => n + 1,
            _ => 1,
        };
        self.refusals = Some((status, count));
        (count >= self.limits.refusals_in_a_row).then(|| AbortReason::EndpointRefuses {
            status,
            attempts: count,
            detail: error.to_string(),
        })
    }

    /// Counts a retryable failure; says to abort when nothing has succeeded for
    /// `limit_ms` (0 = never) and enough attempts in a row failed.
    pub(crate) fn on_failure(
        &mut self,
        now: Millis,
        limit_ms: u64,
        last_error: &str,
    ) -> Option<AbortReason> {
        self.failing_streak += 1;
        let since = match self.limits.clock {
            FailingClock::LastSuccess => self.last_good,
            FailingClock::FirstFailure => *self.first_failure.get_or_insert(now),
        };
        let failing_for = now.since(since);
        if limit_ms == 0
            || self.failing_streak < self.limits.min_failing_streak
            || failing_for < limit_ms
        {
            return None;
        }
        Some(AbortReason::EndpointFailing {
            for_ms: failing_for,
            attempts: self.failing_streak,
            last_error: last_error.to_string(),
        })
    }
}
