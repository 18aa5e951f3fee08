//! Why a run stops before every item is final, and the breaker that stops a run
//! against an endpoint that only fails.
//!
//! The reason is data, not a sentence for one host: each host words the next step
//! in its own vocabulary (the CLI names its flags, the page points at its fields).
//! Its `Display` says what happened, in words any host can show.

use std::fmt;

use serde::{Deserialize, Serialize};

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
    /// HTTP 401 (the key was rejected) or 403 (the key may not do this).
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The endpoint's own message, when it gave one.
        detail: Option<String>,
    },
    /// HTTP 429 with `insufficient_quota`: the account has no credit left.
    QuotaExhausted {
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
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = |d: &Option<String>| d.as_ref().map(|d| format!(": {d}")).unwrap_or_default();
        match self {
            AbortReason::Unauthorized { status: 401, detail: d } => {
                write!(f, "the endpoint rejected the API key (HTTP 401){}", detail(d))
            }
            AbortReason::Unauthorized { status, detail: d } => {
                write!(f, "the endpoint refused access (HTTP {status}){}", detail(d))
            }
            AbortReason::QuotaExhausted { detail: d } => write!(
                f,
                "the account has run out of quota (HTTP 429 insufficient_quota){}",
                detail(d)
            ),
            AbortReason::ModelNotFound { model, detail: d } => {
                write!(f, "the endpoint does not know the model")?;
                if let Some(model) = model {
                    write!(f, " {model:?}")?;
                }
                write!(f, " (HTTP 404 model_not_found){}", detail(d))
            }
            AbortReason::EndpointFailing {
                for_ms,
                attempts,
                last_error,
            } => write!(
                f,
                "no request has been answered successfully for {} ({attempts} failed attempts in a row; the last: {last_error}); the endpoint looks down, stuck or rate-limited without end",
                format_duration(*for_ms)
            ),
        }
    }
}

/// Why dispatching stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// The user asked (Cancel, Abandon).
    Interrupted,
    /// A run-fatal condition.
    Aborted(AbortReason),
}

/// The failed attempts since the last 2xx answer (or the start).
#[derive(Clone, Debug)]
pub(super) struct Breaker {
    last_good: Millis,
    failing_streak: u32,
}

/// Fewer failures in a row than this never stop a run, however long they took.
const MIN_FAILING_STREAK: u32 = 20;

impl Breaker {
    pub(super) fn new(now: Millis) -> Breaker {
        Breaker {
            last_good: now,
            failing_streak: 0,
        }
    }

    pub(super) fn on_success(&mut self, now: Millis) {
        self.last_good = now;
        self.failing_streak = 0;
    }

    /// Counts a retryable failure; says to abort when nothing has succeeded for
    /// `limit_ms` (0 = never) and enough attempts in a row failed.
    pub(super) fn on_failure(
        &mut self,
        now: Millis,
        limit_ms: u64,
        last_error: &str,
    ) -> Option<AbortReason> {
        self.failing_streak += 1;
        let failing_for = now.since(self.last_good);
        if limit_ms == 0 || self.failing_streak < MIN_FAILING_STREAK || failing_for < limit_ms {
            return None;
        }
        Some(AbortReason::EndpointFailing {
            for_ms: failing_for,
            attempts: self.failing_streak,
            last_error: last_error.to_string(),
        })
    }
}
