//! Reports, in the JSON shapes existing consumers read (camelCase; fields may be
//! added, never renamed or dropped) and as console text.

use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::cost::Cost;
use crate::eval::{Evaluation, Interval};
use crate::gate::{GateReport, Measured};
use crate::journal::{FailureKind, Usage};
use crate::message_template::{Gathered, Template};

mod comparison;
mod confidence;
mod console;
mod provider_batch;
mod unreached;

pub use comparison::comparison_to_console;
pub use console::escape_for_terminal;
pub use provider_batch::{BatchPhase, ProviderBatch, RequestCounts};
pub use unreached::Unreached;

/// Errors a final console summary lists unless the user asks otherwise (the
/// CLI's `--errors-shown`, and the page's summary).
pub const ERRORS_SHOWN: usize = 20;

/// The report emitted when every item of a batch is final.
///
/// `processed`, `successful`, `failed` and `successRate` are cumulative over
/// batches 1..=`batchNumber` (so they do not depend on timing); the `batch*`
/// fields count this batch alone. `averageTimePerImage` and
/// `estimatedTimeRemaining` come from the measured rate of this session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchReport {
    /// 1-based.
    pub batch_number: usize,
    /// Batches in the run.
    pub total_batches: usize,
    /// 0-based row index of the batch's first item.
    pub batch_start_index: usize,
    /// 0-based row index of the batch's last item.
    pub batch_end_index: usize,
    /// Items in this batch.
    pub batch_size: usize,
    /// Items final in batches 1..=this.
    pub processed: usize,
    /// Successful items in batches 1..=this.
    pub successful: usize,
    /// Failed items in batches 1..=this.
    pub failed: usize,
    /// Time since the run (this session) started.
    pub elapsed_ms: u64,
    /// Elapsed time over items finished in this session, in ms.
    pub average_time_per_image: u64,
    /// `averageTimePerImage` x items not yet final, in ms.
    pub estimated_time_remaining: u64,
    /// `successful / processed` as `"96.00%"`.
    pub success_rate: String,
    /// Items of the whole run.
    pub total_items: usize,
    /// Successful items in this batch.
    pub batch_successful: usize,
    /// Failed items in this batch.
    pub batch_failed: usize,
    /// Predictions equal to the label, in batches 1..=this.
    pub agreements: usize,
    /// Retries spent on this batch's items.
    pub retries: u64,
    /// 429 answers to this batch's items.
    pub rate_limit_hits: u64,
    /// Every item of this batch was already final in the journal this run resumed from.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
    /// This batch alone: predictions equal to the label over its successful items.
    #[serde(default)]
    pub batch_agreement_rate: Option<f64>,
    /// 95% Wilson interval of `batchAgreementRate`.
    #[serde(default)]
    pub batch_agreement_interval: Option<Interval>,
    /// The drift tests flag this batch: its agreement is outside the p-chart's
    /// limits around the run's agreement over the earlier batches, or the lower
    /// CUSUM shows a sustained fall (see [`crate::drift`]; at most 0.5% of a
    /// stable run's batches are flagged).
    #[serde(default)]
    pub drift: bool,
    /// What the drift tests found: the centre, the p-chart's limits for this
    /// batch's size, the CUSUM and the signal. Absent when the batch is not judged
    /// (nothing compared, or earlier batches hold fewer than 20 times its rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_check: Option<crate::drift::DriftCheck>,
    /// Median latency of this batch's answered items, ms.
    #[serde(default)]
    pub latency_p50_ms: Option<u64>,
    /// 95th percentile latency of this batch's answered items, ms.
    #[serde(default)]
    pub latency_p95_ms: Option<u64>,
    /// Rows per second finished this session over the last second or more before
    /// this report (since the session's start until it is a second old; see
    /// [`crate::throughput::ThroughputWindow`]). Null for a batch taken whole from
    /// the journal.
    #[serde(default)]
    pub throughput_per_sec: Option<f64>,
}

/// One failed item, as listed in the reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEntry {
    /// 0-based data row index.
    pub row: usize,
    /// CSV line number.
    pub line: u64,
    /// The image reference (long data URLs shortened).
    pub image: String,
    /// The human label.
    pub label: String,
    /// What went wrong.
    pub error: String,
    /// Class of failure.
    pub error_kind: Option<FailureKind>,
    /// HTTP status of the last answer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Requests made for the item.
    pub attempts: u32,
}

/// `overallProgress`: the whole run so far, whatever the batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OverallProgress<E> {
    /// Items in the run.
    pub total: usize,
    /// Successful items so far.
    pub successful: usize,
    /// Failed items so far.
    pub failed: usize,
    /// Every failed item so far.
    pub errors: E,
}

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum RunStatus {
    /// Still going (progress reports).
    Running,
    /// Every item is final.
    Completed,
    /// Stopped on request (Ctrl-C, Cancel); the rest can be resumed.
    Interrupted,
    /// Stopped by a run-fatal condition (see `abortReason`); the rest can be resumed.
    Aborted,
}

impl RunStatus {
    /// `completed`, `interrupted`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Aborted => "aborted",
        }
    }
}

/// The progress file, rewritten after each batch. Borrows from the engine so that
/// writing it costs no copy of the reports.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressReport<'a> {
    /// When it was written.
    pub timestamp: String,
    /// The labels CSV.
    pub csv_path: &'a str,
    /// Number of the latest reported batch (0 before the first).
    pub batch_number: usize,
    /// Batches in the run.
    pub total_batches: usize,
    /// The whole run so far.
    pub overall_progress: OverallProgress<&'a [ErrorEntry]>,
    /// The latest batch report.
    pub current_batch_report: Option<&'a BatchReport>,
    /// Every batch report so far, in order.
    pub all_reports: &'a [BatchReport],
    /// Run id (its start time), naming its files.
    pub run_id: &'a str,
    /// `running` while the run goes on.
    pub status: RunStatus,
    /// The settings used (no secrets).
    pub config: &'a RunConfig,
    /// In batch-API mode, the provider batches (shards) of the run and their
    /// status; absent in a live run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_batches: Option<&'a [ProviderBatch]>,
}

/// Latency of the final attempt of each answered item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencySummary {
    /// Items measured.
    pub count: usize,
    /// Median, ms.
    pub p50: u64,
    /// 95th percentile, ms.
    pub p95: u64,
    /// Slowest, ms.
    pub max: u64,
}

/// Whole-run statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statistics {
    /// Items in the CSV.
    pub total: usize,
    /// Items final (successful + failed).
    pub processed: usize,
    /// Items with a usable prediction.
    pub successful: usize,
    /// Items without one.
    pub failed: usize,
    /// Items not final (interrupted or aborted runs); resume does them.
    pub remaining: usize,
    /// `successful / processed` as `"96.00%"`.
    pub success_rate: String,
    /// Time of this session, ms.
    pub elapsed_ms: u64,
    /// Elapsed over items finished in this session, ms.
    pub average_time_per_image: u64,
    /// Requests sent in this session.
    pub requests: u64,
    /// Retries (requests beyond each item's first).
    pub retries: u64,
    /// 429 answers.
    pub rate_limit_hits: u64,
    /// Items taken as final from the journal this run resumed from.
    pub resumed_items: usize,
    /// Latency percentiles.
    pub latency_ms: LatencySummary,
    /// Token usage summed over successful items.
    pub usage: Usage,
}

/// The final summary: written once when the run ends, however it ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// When it was written.
    pub timestamp: String,
    /// Run id (its start time), naming its files.
    pub run_id: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Why an aborted run stopped, in words.
    pub abort_reason: Option<String>,
    /// Why an aborted run stopped, as data (`{"kind": "unauthorized", "status":
    /// 401, ...}`), for hosts and tools that word the next step themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_kind: Option<crate::stop::AbortReason>,
    /// The labels CSV.
    pub csv_path: String,
    /// When this session started.
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
    /// Batches in the run.
    pub total_batches: usize,
    /// The same shape as in the progress file, with every error.
    pub overall_progress: OverallProgress<Vec<ErrorEntry>>,
    /// Whole-run statistics.
    pub statistics: Statistics,
    /// Prediction against label.
    pub evaluation: Evaluation,
    /// Every batch report, in order.
    pub all_reports: Vec<BatchReport>,
    /// The settings used (no secrets).
    pub config: RunConfig,
    /// Failed items counted by why they have no usable prediction.
    #[serde(default)]
    pub failure_reasons: FailureReasons,
    /// The errors grouped by kind and message, most frequent first.
    #[serde(default)]
    pub error_groups: Vec<ErrorGroup>,
    /// Tokens per image and, when a price is known, money.
    #[serde(default)]
    pub cost: Cost,
    /// The pace the run had found when the summary was written: what to give
    /// `--rpm`, `--tpm` or `--concurrency` to start a similar run there. Absent
    /// from summaries of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace: Option<crate::pacing::Pace>,
    /// In batch-API mode, the provider batches (shards) of this session and how
    /// each ended; absent in a live run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_batches: Option<Vec<ProviderBatch>>,
    /// Set when nothing succeeded and every failure was a connection failure or a
    /// 404 ([`Unreached`]): the endpoint's address is the likely cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreached: Option<Unreached>,
    /// Agreement, kappa and failures by the values of each CSV column that is
    /// not the image, label or id, worst first (absent when the CSV has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<crate::eval::slices::ColumnSlices>,
    /// The comparison with the run's baseline (`--baseline`, `--baseline-column`):
    /// this run is B; absent when the run has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<crate::compare::Comparison>,
    /// How sure the model was, and what that is worth: calibration, coverage
    /// at a target agreement ([`crate::eval::calibration`]). Left out when no
    /// answer could have had a confidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<crate::eval::calibration::ConfidenceReport>,
    /// Set when the run is a seeded sample of the CSV (`--sample`): every
    /// figure is estimated from its rows, and the agreement's interval for the
    /// whole CSV has the finite-population correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<crate::sample::SampleReport>,
    /// With `--until-interval`: the agreement's anytime-valid interval, and
    /// whether the run stopped because it was narrow enough (`stopReason`
    /// `precision reached`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<crate::anytime::PrecisionReport>,
}

/// A [`Summary`] with its gate, as the summary file holds it
/// ([`Summary::with_gate`]): the summary's fields, then `gate`.
#[derive(Debug, Serialize)]
pub struct SummaryWithGate<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    /// The gate: its verdict and each requirement judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    gate: Option<GateReport>,
}

/// Failed items by reason. Every field is always written (0 when none), except
/// `answer`, which only a journal from an older version can hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FailureReasons {
    /// The model declined to classify the image.
    pub refused: usize,
    /// The model answered something outside the CSV's labels.
    pub outside_labels: usize,
    /// The answer could not be read.
    pub malformed: usize,
    /// An unusable answer, from an older journal.
    #[serde(skip_serializing_if = "is_zero")]
    pub answer: usize,
    /// An HTTP error status (or an error body where an answer should be).
    pub http: usize,
    /// No answer: timeout, refused or reset connection.
    pub transport: usize,
    /// The image could not be loaded.
    pub image: usize,
    /// The CSV row is unusable.
    pub input: usize,
}

fn is_zero<N: Default + PartialEq>(n: &N) -> bool {
    *n == N::default()
}

impl FailureReasons {
    /// Counts `errors` by kind (an entry without a kind counts as HTTP, as the
    /// engine restores it).
    pub fn of(errors: &[ErrorEntry]) -> FailureReasons {
        let mut reasons = FailureReasons::default();
        for e in errors {
            *reasons.count_mut(e.error_kind.unwrap_or(FailureKind::Http)) += 1;
        }
        reasons
    }

    fn count_mut(&mut self, kind: FailureKind) -> &mut usize {
        match kind {
            FailureKind::Refused => &mut self.refused,
            FailureKind::OutsideLabels => &mut self.outside_labels,
            FailureKind::Malformed => &mut self.malformed,
            FailureKind::Answer => &mut self.answer,
            FailureKind::Http => &mut self.http,
            FailureKind::Transport => &mut self.transport,
            FailureKind::Image => &mut self.image,
            FailureKind::Input => &mut self.input,
        }
    }

    /// How many failed for `kind`.
    pub fn count(&self, kind: FailureKind) -> usize {
        let mut copy = *self;
        *copy.count_mut(kind)
    }
}

/// Errors of one kind with one message: 300 "could not connect" failures are one
/// group, not 300 lines. Messages that differ only in a path, a number, an id or
/// quoted text ([`crate::message_template`]) are one group too: its message shows
/// those parts as placeholders where they differ (`<path> resolves to <path>,
/// outside the data folder /data`), and each listed row's parts are its detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorGroup {
    /// Class of failure.
    pub kind: Option<FailureKind>,
    /// The message (without the `line N: ` prefix some carry), with a placeholder
    /// for each part that differs among the group's messages.
    pub message: String,
    /// Items in the group.
    pub count: usize,
    /// 0-based rows of the first [`ERROR_GROUP_ROWS`] items.
    pub rows: Vec<usize>,
    /// CSV line numbers of the same items.
    pub lines: Vec<u64>,
    /// For the same items, what their messages hold where the message shows a
    /// placeholder (`images/a.png, /elsewhere/images/a.png`). Absent when the
    /// group's messages are all the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// Rows listed per error group.
pub const ERROR_GROUP_ROWS: usize = 20;

/// `errors` grouped by kind, HTTP status and message template, most frequent
/// first (ties in order of first appearance).
pub fn group_errors(errors: &[ErrorEntry]) -> Vec<ErrorGroup> {
    struct Building {
        group: ErrorGroup,
        gathered: Gathered,
        /// The group's lowest rows, with their lines and varying parts: the same
        /// rows whatever order the failures came in.
        listed: Vec<(usize, u64, Vec<String>)>,
    }
    type Key = (Option<FailureKind>, Option<u16>, String);
    let mut groups: Vec<Building> = Vec::new();
    let mut index: std::collections::HashMap<Key, usize> = std::collections::HashMap::new();
    for e in errors {
        let prefix = format!("line {}: ", e.line);
        let message = e.error.strip_prefix(&prefix).unwrap_or(&e.error);
        let template = Template::of(message);
        let key = (e.error_kind, e.http_status, template.key());
        let at = match index.get(&key) {
            Some(&at) => {
                groups[at].gathered.add(template.values());
                at
            }
            None => {
                index.insert(key, groups.len());
                groups.push(Building {
                    group: ErrorGroup {
                        kind: e.error_kind,
                        message: String::new(),
                        count: 0,
                        rows: Vec::new(),
                        lines: Vec::new(),
                        details: Vec::new(),
                    },
                    gathered: Gathered::new(template.clone()),
                    listed: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let b = &mut groups[at];
        b.group.count += 1;
        if b.listed.len() < ERROR_GROUP_ROWS {
            b.listed.push((e.row, e.line, template.into_values()));
        } else if let Some(highest) = b.listed.iter_mut().max_by_key(|l| l.0) {
            if e.row < highest.0 {
                *highest = (e.row, e.line, template.into_values());
            }
        }
    }
    // Stable: equal counts keep their order of first appearance.
    groups.sort_by_key(|b| std::cmp::Reverse(b.group.count));
    groups
        .into_iter()
        .map(|b| {
            let mut group = b.group;
            let mut listed = b.listed;
            listed.sort_by_key(|l| l.0);
            group.message = b.gathered.message();
            if b.gathered.varies() {
                group.details = listed.iter().map(|l| b.gathered.detail(&l.2)).collect();
            }
            group.rows = listed.iter().map(|l| l.0).collect();
            group.lines = listed.iter().map(|l| l.1).collect();
            group
        })
        .collect()
}

pub mod contract;

/// `"96.00%"`; `"0.00%"` when nothing is counted.
pub fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "0.00%".into();
    }
    format!("{:.2}%", part as f64 * 100.0 / whole as f64)
}

/// Shortens a data URL for reports and the journal (the CSV holds it whole); other
/// references are kept as they are.
pub fn display_image(image: &str) -> std::borrow::Cow<'_, str> {
    const KEEP: usize = 48;
    if image.starts_with("data:") && image.len() > KEEP + 16 {
        let cut = (0..=KEEP)
            .rev()
            .find(|&i| image.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}…({} bytes)", &image[..cut], image.len()).into()
    } else {
        image.into()
    }
}

/// The exit status of a completed run whose verdict misses a requirement of its
/// gate ([`Summary::gate`]).
pub const GATE_FAILED_EXIT: u8 = 3;

impl Summary {
    /// The process exit status both hosts use: 0 every item succeeded, 1 some
    /// failed, 2 aborted (run-fatal condition), 130 interrupted, and
    /// [`GATE_FAILED_EXIT`] (3) when the run completed and its gate failed,
    /// whether or not items failed.
    pub fn exit_code(&self) -> u8 {
        let gate_failed = || {
            self.gate()
                .is_some_and(|g| g.verdict == crate::gate::Verdict::Failed)
        };
        match self.status {
            RunStatus::Completed if gate_failed() => GATE_FAILED_EXIT,
            RunStatus::Completed if self.statistics.failed == 0 => 0,
            RunStatus::Completed => 1,
            RunStatus::Interrupted => 130,
            _ => 2,
        }
    }

    /// The run's gate ([`RunConfig::gate`]) judged against its verdict; `None`
    /// when the run has no gate. Judged only when the run completed: an
    /// interrupted or aborted run's verdict is not the data set's, so its gate is
    /// "not judged".
    pub fn gate(&self) -> Option<GateReport> {
        let requirements = &self.config.gate;
        if requirements.is_empty() {
            return None;
        }
        let measured = Measured {
            evaluation: &self.evaluation,
            processed: self.statistics.processed as u64,
            failed: self.statistics.failed as u64,
        };
        Some(match self.status {
            RunStatus::Completed => crate::gate::judge(requirements, &measured),
            RunStatus::Interrupted => GateReport::not_judged(
                requirements,
                "the run was interrupted before every row was final; resume it to judge the gate",
            ),
            RunStatus::Aborted => GateReport::not_judged(
                requirements,
                "the run was aborted before every row was final; resume it to judge the gate",
            ),
            _ => GateReport::not_judged(requirements, "the run is still going"),
        })
    }

    /// The summary as its file holds it: every field, and its gate
    /// ([`Summary::gate`]) as `gate` when the run has one. The gate is derived
    /// from the summary's own figures, so it is written beside them rather than
    /// kept in a field.
    pub fn with_gate(&self) -> SummaryWithGate<'_> {
        SummaryWithGate {
            summary: self,
            gate: self.gate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(row: usize, kind: FailureKind, error: String) -> ErrorEntry {
        ErrorEntry {
            row,
            line: row as u64 + 2,
            image: format!("img-{row}.png"),
            label: "cat".into(),
            error,
            error_kind: Some(kind),
            http_status: None,
            attempts: 1,
        }
    }

    #[test]
    fn identical_errors_are_one_group_and_reasons_are_counted_apart() {
        let mut errors: Vec<ErrorEntry> = (0..300)
            .map(|row| {
                let message = "could not connect to the endpoint: connection refused";
                entry(row, FailureKind::Transport, message.into())
            })
            .collect();
        // Same words, other kind: another group. A `line N: ` prefix is not part of
        // the message.
        errors.push(entry(
            300,
            FailureKind::Image,
            "line 302: image missing".into(),
        ));
        errors.push(entry(
            301,
            FailureKind::Image,
            "line 303: image missing".into(),
        ));
        errors.push(entry(302, FailureKind::Refused, "refused".into()));
        let groups = group_errors(&errors);
        assert_eq!(groups.len(), 3);
        assert_eq!(
            (groups[0].count, groups[0].kind),
            (300, Some(FailureKind::Transport))
        );
        assert_eq!(groups[0].rows.len(), ERROR_GROUP_ROWS);
        assert_eq!(groups[0].lines[..3], [2, 3, 4]);
        assert_eq!(
            (groups[1].count, groups[1].message.as_str()),
            (2, "image missing")
        );
        assert_eq!(groups[1].lines, [302, 303]);
        let reasons = FailureReasons::of(&errors);
        assert_eq!(
            (reasons.transport, reasons.image, reasons.refused),
            (300, 2, 1)
        );
        assert_eq!(reasons.count(FailureKind::Transport), 300);
        let json = serde_json::to_value(reasons).unwrap();
        assert!(json.get("answer").is_none(), "{json}");
        assert_eq!(json["outsideLabels"], 0);
    }

    /// 1,000 rows whose images resolve outside the data folder were 1,000 messages
    /// (each names its path), and so as many groups: they are one, its paths the
    /// detail of each listed row.
    #[test]
    fn messages_that_differ_in_their_paths_are_one_group_with_the_paths_as_details() {
        let errors: Vec<ErrorEntry> = (0..1000)
            .map(|row| {
                let message = format!(
                    "line {}: images/digit-{row:04}.png resolves to /elsewhere/images/digit-{row:04}.png, outside the data folder /data; pass --allow-outside-data-dir to allow it",
                    row + 2
                );
                entry(row, FailureKind::Image, message)
            })
            .collect();
        let groups = group_errors(&errors);
        assert_eq!(groups.len(), 1, "{:?}", &groups[..groups.len().min(3)]);
        let g = &groups[0];
        assert_eq!(g.count, 1000);
        assert_eq!(
            g.message,
            "<path> resolves to <path>, outside the data folder /data; pass --allow-outside-data-dir to allow it"
        );
        assert_eq!(g.rows.len(), ERROR_GROUP_ROWS);
        assert_eq!(g.details.len(), ERROR_GROUP_ROWS);
        assert_eq!(
            g.details[1],
            "images/digit-0001.png, /elsewhere/images/digit-0001.png"
        );
        let json = serde_json::to_value(g).unwrap();
        assert_eq!(
            json["details"][0],
            "images/digit-0000.png, /elsewhere/images/digit-0000.png"
        );
    }

    /// HTTP statuses stay apart (a 400 and a 500 are different faults), and a
    /// group whose messages are all the same shows its message as written, with no
    /// details.
    #[test]
    fn statuses_stay_apart_and_identical_messages_have_no_details() {
        let mut errors = Vec::new();
        for (row, status) in [(0, 500), (1, 400), (2, 500)] {
            let mut e = entry(row, FailureKind::Http, format!("HTTP {status}"));
            e.http_status = Some(status);
            errors.push(e);
        }
        let groups = group_errors(&errors);
        assert_eq!(
            groups
                .iter()
                .map(|g| (g.message.as_str(), g.count))
                .collect::<Vec<_>>(),
            [("HTTP 500", 2), ("HTTP 400", 1)]
        );
        assert!(groups.iter().all(|g| g.details.is_empty()));
        assert!(serde_json::to_value(&groups[0])
            .unwrap()
            .get("details")
            .is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Every error lands in exactly one group of its kind and message, and
            /// the reasons add up to the errors.
            #[test]
            fn groups_and_reasons_account_for_every_error(
                errors in proptest::collection::vec((0usize..3, 0usize..3), 0..100),
            ) {
                let kinds = [FailureKind::Http, FailureKind::Transport, FailureKind::Refused];
                let entries: Vec<ErrorEntry> = errors
                    .iter()
                    .enumerate()
                    .map(|(row, &(k, m))| {
                        entry(row, kinds[k], format!("message {}", ["one", "two", "three"][m]))
                    })
                    .collect();
                let groups = group_errors(&entries);
                prop_assert_eq!(groups.iter().map(|g| g.count).sum::<usize>(), entries.len());
                prop_assert!(groups.windows(2).all(|w| w[0].count >= w[1].count));
                let distinct: std::collections::HashSet<_> = errors.iter().collect();
                prop_assert_eq!(groups.len(), distinct.len());
                let reasons = FailureReasons::of(&entries);
                let total: usize = FailureKind::ALL.iter().map(|&k| reasons.count(k)).sum();
                prop_assert_eq!(total, entries.len());
            }
        }
    }
}
