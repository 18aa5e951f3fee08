//! The contract between a run and its host: what goes in ([`Input`]), what comes
//! out ([`Output`]), and the errors of a host that uses it wrongly. Both enums are
//! exhaustive and serializable on purpose: every host in this workspace matches
//! every variant, so a new one cannot be dropped silently, and the wasm face
//! carries them to the page as they are (`{"type": "send", ...}`).

use serde::{Deserialize, Serialize};

use crate::http::{HttpResponse, TransportErrorKind};
use crate::journal::{FailureKind, Usage};
// The pace is the pacing layer's; the contract hands it out.
pub use crate::pacing::{Pace, PaceSource};
use crate::provider::OutputFormat;
use crate::report::{BatchReport, Summary};
use crate::time::Millis;

/// Names one attempt of one item. Unique within a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ticket(pub u64);

/// "Send attempt `attempt` of item `item` now." The host loads the item's image,
/// builds the request with [`crate::Run::request_template`]
/// ([`crate::provider::RequestTemplate::build_as`] with the order's `format`),
/// performs it and hands back the outcome with the same ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendOrder {
    /// Quote it back in the outcome.
    pub ticket: Ticket,
    /// Index into [`crate::Run::items`].
    pub item: usize,
    /// 1 for the first try, 2 for the first retry, ...
    pub attempt: u32,
    /// How the request asks for the answer's form: the run's current
    /// [`crate::Run::output_format`].
    #[serde(default)]
    pub format: OutputFormat,
    /// Whether the request asks for log-probabilities, for the answer's
    /// confidence: the run's current [`crate::Run::asks_confidence`]
    /// ([`crate::provider::RequestTemplate::build_for`] takes it).
    #[serde(default)]
    pub confidence: bool,
}

/// Events the host feeds into the run.
///
/// An answer (`Response`, `TransportFailed`, `ImageFailed`) to a request the run
/// has abandoned (after `Abandon`, or when a cancel's grace period ran out) is
/// taken and ignored: hosts need not track which of their requests are still
/// wanted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Input {
    /// The endpoint answered (any status).
    Response {
        /// The order's ticket.
        ticket: Ticket,
        /// Status, headers and body.
        response: HttpResponse,
    },
    /// No answer came: timeout, refused, reset, unreadable body. Retried.
    TransportFailed {
        /// The order's ticket.
        ticket: Ticket,
        /// What kind of failure.
        kind: TransportErrorKind,
        /// Detail for the report; must not contain a secret.
        #[serde(default)]
        message: String,
    },
    /// The host could not load the image (missing, too large, unknown type, outside
    /// the data folder). The item fails without a request; not retried.
    ImageFailed {
        /// The order's ticket.
        ticket: Ticket,
        /// What is wrong, naming the file.
        message: String,
    },
    /// Stop dispatching until `Resume`; answers to requests in flight are still
    /// taken and reported. (A user's pause button.)
    Pause,
    /// Dispatch again after `Pause`.
    Resume,
    /// Stop dispatching; answers to requests in flight are still taken for
    /// [`crate::RunConfig::cancel_grace_ms`], then the rest are abandoned. The run
    /// finishes `interrupted`.
    Cancel,
    /// Give up on the requests in flight now (their items stay unfinished, for
    /// resume) and finish: a user who will not wait for the grace period.
    Abandon,
}

/// What the run asks of the host, in the order it must happen.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Output {
    /// Feed rows `from..from + count` of the CSV with [`crate::Run::push_rows`]
    /// before polling again (a run made with [`crate::Run::streaming`] only).
    NeedRows {
        /// The first row wanted (0-based).
        from: usize,
        /// How many, never past the CSV's last row.
        count: usize,
    },
    /// Start a request.
    Send(SendOrder),
    /// An item is final: append [`crate::Run::result`] of it to the results journal.
    ItemDone(ItemDone),
    /// Every item of this batch is final (reports come in batch order). Show it
    /// and write the progress file ([`crate::Run::progress`]).
    BatchReport {
        /// The report.
        report: BatchReport,
    },
    /// The run is over; nothing follows. Write it as the summary.
    Finished {
        /// How the run went, in full.
        summary: Box<Summary>,
    },
}

/// An item became final. Compact on purpose: [`crate::Run::result`] turns it into
/// the journal record, borrowing the item's text from the run instead of copying it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemDone {
    /// 0-based row.
    pub row: usize,
    /// Index of the predicted label in [`crate::Run::labels`], on success.
    pub prediction: Option<usize>,
    /// What the model said, on success (bounded, secrets redacted).
    pub answer: Option<String>,
    /// Requests made for the item.
    pub attempts: u32,
    /// Dispatch-to-answer time of the last attempt.
    pub latency_ms: Option<u64>,
    /// Status of the last answer, if one came.
    pub http_status: Option<u16>,
    /// Token usage of the successful request.
    pub usage: Option<Usage>,
    /// The predicted label's probability, when the answer carried
    /// log-probabilities ([`crate::confidence`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The other labels the model found likeliest (label indices), with
    /// `confidence`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<crate::confidence::LabelChance<usize>>,
    /// Why a confidence asked for is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_gap: Option<crate::confidence::ConfidenceGap>,
    /// Why it failed, on failure.
    pub failure: Option<(FailureKind, String)>,
    /// When it became final.
    pub finished_at: Millis,
}

/// The host used the API wrongly. (Bad input and bad answers are not errors of
/// this kind: they become item failures or a run-fatal stop, in the reports.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// No request in flight has this ticket, and the run never abandoned one with
    /// it: never issued, or answered twice.
    #[error("no request in flight has ticket {0:?}")]
    UnknownTicket(Ticket),
    /// `restore` after the run started dispatching.
    #[error("results can only be restored before the first poll")]
    RestoreAfterStart,
    /// Rows fed to a streaming run out of order, or to a run that holds its
    /// whole CSV; or results restored into a streaming run.
    #[error("rows fed wrongly: {0}")]
    RowOutOfOrder(String),
    /// A restored result does not fit this CSV.
    #[error("journal line for row {row} does not match the CSV: {reason}; the journal belongs to a different CSV (or the CSV changed since)")]
    RestoreMismatch {
        /// 0-based row.
        row: usize,
        /// What differs.
        reason: String,
    },
    /// The provider journal of a batch run contradicts itself or the run's
    /// other files (two records claim the same rows, one batch is two shards'):
    /// resuming from it could send rows again.
    #[error("the provider journal cannot be trusted: {detail}")]
    ProviderJournal {
        /// What is wrong, naming the journal's lines.
        detail: String,
    },
}

/// Counts for a live progress display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Items in the run.
    pub total: usize,
    /// Items final, successful.
    pub successful: usize,
    /// Items final, failed.
    pub failed: usize,
    /// Predictions equal to the label.
    pub agreements: usize,
    /// Requests in flight.
    pub in_flight: usize,
    /// Items finished in this session (not restored).
    pub done_this_session: usize,
    /// Items restored from the journal.
    pub resumed: usize,
    /// Requests that were retries (attempt 2 and later), this session.
    pub retries: u64,
    /// Answers that said "rate limited" (429), this session.
    pub rate_limit_hits: u64,
}
