//! The results explorer's data: one shape, built here from whichever files of a run
//! exist (summary, progress, results journal), and fed by both hosts to the same
//! renderer (`web/explorer/`): the page through the wasm face, the CLI's
//! self-contained HTML report as embedded JSON.
//!
//! What it takes from where:
//! - the summary, when there is one, is the authority: its status, statistics,
//!   evaluation, failure reasons, error groups, cost and batch reports are passed
//!   through as written (fields this version does not know are kept, so a newer
//!   summary shows what it holds);
//! - without a summary (a run killed before its end, or still going), the status
//!   comes from the progress file and the evaluation, the failure counts and the
//!   error groups are computed here from the results, with a note saying so;
//! - the results journal gives the rows of the table, as columns (a label is an
//!   index into [`ExplorerData::labels`], an error an index into
//!   [`Items::error_texts`]): small to embed and quick to filter at 100,000 rows.
//!   With a [`RowCap`] (the CLI's report; the page opening a finished run), a run
//!   with more rows embeds every failure and disagreement (up to nine tenths of the
//!   cap) and a seeded sample of its agreeing rows, described by
//!   [`ExplorerData::sample`] and the first note; every figure still counts all rows.
//!
//! Memory: [`ExplorerBuilder`] takes the rows one at a time and [`RunFile`] reads a
//! summary or progress file as it is parsed, so the data of a run of any size is
//! built in memory bounded by the cap (plus the label set, the distinct error
//! messages and a few thousand batch points); [`ResultsStream`] feeds a results
//! file in chunks. [`build`] is the same builder over a journal folded in memory.
//!
//! Per-batch points for the charts take each figure from the batch report when it
//! carries it, and otherwise derive it: agreement from the cumulative counts (with
//! its 95% Wilson interval), latency percentiles from the batch's results,
//! throughput always from the reports' elapsed times, over a second or more. A batch is flagged as drifting when
//! its report says so or, when the report does not say, when the core's drift
//! tests ([`crate::drift`]) flag it. Past 4,000 batches, neighbouring batches
//! are gathered into one point (see [`MAX_BATCH_POINTS`]).
//!
//! Here: the data's shape and [`build`]. Beside it: `builder` (tallies and the
//! rows kept, from a stream of results), `sample` (which rows a capped report
//! keeps), `stream` (a results file fed in chunks), `run_file` (a summary or
//! progress file read as it streams by), `batches` (chart points), [`html`] (the
//! self-contained HTML report both hosts write from the data).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::eval::Interval;
use crate::journal::{FoldedJournal, JournalScan};

mod batches;
mod builder;
pub mod html;
mod run_file;
mod sample;
mod stream;

pub use builder::ExplorerBuilder;
pub use run_file::RunFile;
pub use stream::ResultsStream;

/// Version of the data shape; the renderer refuses shapes it does not know.
pub const FORMAT: u32 = 1;

/// Rows listed with each error group.
const GROUP_ROWS: usize = 20;

/// What the explorer is built from: the text of each file that exists.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExplorerInput<'a> {
    /// The final summary (`shadow-mode-batch-{run}.json`).
    pub summary: Option<&'a str>,
    /// The progress file (`shadow-mode-batch-progress-{run}.json`).
    pub progress: Option<&'a str>,
    /// The results journal, folded.
    pub results: Option<&'a FoldedJournal>,
    /// The run is still going (the page during a run): without a summary its
    /// status is `running` rather than `interrupted`.
    pub live: bool,
    /// The CSV's label set, when the host has it: an evaluation computed from the
    /// results then lists every label, seen yet or not.
    pub csv_labels: Option<&'a [String]>,
    /// Embed at most this many rows (see [`RowCap`]); `None`: every row.
    pub row_cap: Option<RowCap>,
}

/// Why the explorer's data could not be built. The host names the file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExplorerError {
    /// Not one of the run's files: not JSON, or without the fields it must have.
    #[error("not a shadow-batch {what} file: {reason}")]
    NotARunFile {
        /// `summary` or `progress`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No file at all was given.
    #[error("nothing to show: no summary, progress or results file")]
    Nothing,
}

/// Which files the data was built from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sources {
    /// The summary was read.
    pub summary: bool,
    /// The progress file was read.
    pub progress: bool,
    /// The results journal was read.
    pub results: bool,
}

/// Counts for the headline.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Rows of the CSV, when a summary or progress file says.
    pub total: Option<u64>,
    /// Rows final.
    pub processed: u64,
    /// Rows with a usable prediction.
    pub successful: u64,
    /// Rows without one.
    pub failed: u64,
    /// Rows not final, when `total` is known.
    pub remaining: Option<u64>,
}

/// One group of identical failures.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorGroup {
    /// `errorKind` of the rows (`http`, `transport`, ...), when known.
    pub kind: Option<String>,
    /// The error message, as written.
    pub message: String,
    /// Rows in the group.
    pub count: u64,
    /// The first rows of the group (0-based row indices).
    pub rows: Vec<u64>,
    /// For the same rows, what their messages hold where the group's message
    /// shows a placeholder ([`crate::message_template`]); absent when the group's
    /// messages are all the same.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// One batch, for the charts. Each figure is the report's when it has it, else
/// derived (see the module docs); `None` when neither is possible.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchPoint {
    /// 1-based; the first of the point's batches.
    pub batch_number: u64,
    /// Batches the point stands for: 1, or more when a long run's batches are
    /// gathered (see [`MAX_BATCH_POINTS`]).
    pub batches: u64,
    /// 0-based first row.
    pub start: u64,
    /// 0-based last row.
    pub end: u64,
    /// Successful rows of this batch.
    pub successful: Option<u64>,
    /// Failed rows of this batch.
    pub failed: Option<u64>,
    /// Share of this batch's predictions equal to the label.
    pub agreement_rate: Option<f64>,
    /// Its 95% interval.
    pub agreement_interval: Option<Interval>,
    /// The batch's agreement is out of line with the run's.
    pub drift: bool,
    /// Median latency of the batch's rows, ms.
    pub latency_p50_ms: Option<f64>,
    /// 95th percentile, ms.
    pub latency_p95_ms: Option<f64>,
    /// Rows per second around this batch.
    pub throughput_per_sec: Option<f64>,
    /// Retries spent on the batch.
    pub retries: Option<u64>,
    /// 429 answers to the batch.
    pub rate_limit_hits: Option<u64>,
    /// Taken whole from the journal of an earlier session (no timing).
    pub resumed: bool,
}

/// The table's rows, as columns of equal length, sorted by row.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Items {
    /// 0-based data row.
    pub row: Vec<u64>,
    /// CSV line.
    pub line: Vec<u64>,
    /// The id column's value; empty when no row has one.
    pub id: Vec<Option<String>>,
    /// The image reference as the journal has it.
    pub image: Vec<String>,
    /// Index into `labels`.
    pub label: Vec<u32>,
    /// Index into `labels`, on success.
    pub prediction: Vec<Option<u32>>,
    /// `status == success`.
    pub ok: Vec<bool>,
    /// Requests made.
    pub attempts: Vec<u32>,
    /// Latency of the last attempt, ms.
    pub latency_ms: Vec<Option<u64>>,
    /// Index into `errorTexts`, on failure.
    pub error: Vec<Option<u32>>,
    /// Distinct error messages.
    pub error_texts: Vec<String>,
    /// `errorKind` of a failure.
    pub error_kind: Vec<Option<String>>,
    /// HTTP status of the last answer.
    pub http_status: Vec<Option<u16>>,
    /// Total tokens reported for the row.
    pub tokens: Vec<Option<u64>>,
    /// What the row's tokens cost, when the run knew a price.
    pub cost_usd: Vec<Option<f64>>,
    /// What the model said (bounded, redacted), on success.
    pub answer: Vec<Option<String>>,
    /// The predicted label's probability, when the answer had one; empty when
    /// no row has one.
    pub confidence: Vec<Option<f64>>,
    /// The probability the model gave the row's own label, when known (the
    /// predicted label, or one of the likeliest others); empty with
    /// `confidence`.
    pub label_probability: Vec<Option<f64>>,
}

/// Where the host finds thumbnails; filled by the host, never by the builder.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thumbnails {
    /// URL prefix (relative to the report, percent-encoded, ending in `/` or
    /// empty) that a relative image path is appended to; `None`: no file access.
    pub base: Option<String>,
    /// Downscaled images as data URLs, by image reference.
    pub embedded: std::collections::BTreeMap<String, String>,
}

/// Everything the explorer shows. JSON, camelCase.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplorerData {
    /// [`FORMAT`].
    pub format: u32,
    /// The run id.
    pub run_id: String,
    /// The labels CSV as the run named it.
    pub csv_path: String,
    /// `completed`, `interrupted`, `aborted` or `running`.
    pub status: String,
    /// Why an aborted run stopped.
    pub abort_reason: Option<String>,
    /// Which files were read.
    pub sources: Sources,
    /// `summary`, `results` (computed here) or `none`.
    pub evaluation_source: &'static str,
    /// Headline counts.
    pub totals: Totals,
    /// The summary's `statistics`, as written.
    pub statistics: Option<Value>,
    /// The summary's `evaluation`, or one computed from the results.
    pub evaluation: Option<Value>,
    /// Failed rows by reason: the summary's `failureReasons`, else counted from the
    /// results by `errorKind`.
    pub failure_reasons: Map<String, Value>,
    /// The summary's `errorGroups`, else grouped from the results by kind and
    /// message, largest first.
    pub error_groups: Vec<ErrorGroup>,
    /// The summary's `cost`, as written.
    pub cost: Option<Value>,
    /// The summary's `slices` (agreement by the values of the CSV's other
    /// columns, worst first), as written; absent when the CSV has no other column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slices: Option<Value>,
    /// The summary's `confidence` (calibration, coverage, the labels to
    /// re-check: [`crate::eval::calibration::ConfidenceReport`]), as written;
    /// absent when the run has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Value>,
    /// The run's gate ([`crate::gate::GateReport`]): the summary's `gate` as
    /// written; for a run with requirements and no summary, "not judged". Absent
    /// when the run has no gate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<Value>,
    /// The comparison with the run's baseline (`--baseline`,
    /// `--baseline-column`): the summary's `comparison` as written (figures,
    /// no row lists); absent for a run without a baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Value>,
    /// The run is a seeded sample of the CSV's rows (`--sample`,
    /// `--until-interval`): the summary's `sample`
    /// ([`crate::sample::SampleReport`]) as written; without a summary, made
    /// here from the sample the journal's header names and the agreement
    /// computed from the results. Every figure is then estimated from its rows.
    /// Absent for a run over the whole CSV.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv_sample: Option<Value>,
    /// The summary's `precision` (`--until-interval`:
    /// [`crate::anytime::PrecisionReport`], the anytime-valid interval, the
    /// Wilson one and why the run stopped), as written; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<Value>,
    /// One point per batch report.
    pub batches: Vec<BatchPoint>,
    /// The settings used (no secrets), as written.
    pub config: Option<Value>,
    /// Every label and prediction, the evaluation's labels first (so that a
    /// confusion-matrix index is a label index here).
    pub labels: Vec<String>,
    /// The rows.
    pub items: Items,
    /// Thumbnail sources (the host's).
    pub thumbnails: Thumbnails,
    /// Which rows are embedded, when not all of them are (see [`RowCap`]).
    pub sample: Option<RowSample>,
    /// What the reader should know about how this was built; the first says so
    /// when the rows are a sample.
    pub notes: Vec<String>,
}

/// Builds the explorer's data from whichever files exist. See the module docs.
///
/// # Errors
///
/// A summary or progress text that is not such a file; no input at all.
pub fn build(input: ExplorerInput<'_>) -> Result<ExplorerData, ExplorerError> {
    if input.summary.is_none() && input.progress.is_none() && input.results.is_none() {
        return Err(ExplorerError::Nothing);
    }
    let summary = input.summary.map(RunFile::summary).transpose()?;
    let progress = input.progress.map(RunFile::progress).transpose()?;
    let mut builder = ExplorerBuilder::new(
        summary,
        progress,
        BuildOptions {
            live: input.live,
            csv_labels: input.csv_labels.map(<[String]>::to_vec),
            row_cap: input.row_cap,
            run_id: None,
        },
    );
    let Some(folded) = input.results else {
        return Ok(builder.finish(None));
    };
    builder.set_csv_sample(folded.header.as_ref().and_then(|h| h.run.sample.clone()));
    for r in &folded.results {
        builder.push(r);
    }
    Ok(builder.finish(Some(&JournalScan {
        lines_read: folded.lines_read,
        torn_tail: folded.torn_tail,
        bad_lines: folded.bad_lines.clone(),
        complete_len: folded.complete_len,
        repeated_rows: false,
    })))
}

/// How many rows the data may embed, and the seed of the sample beyond that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowCap {
    /// Most rows embedded. Past it, every failure and every disagreement is kept
    /// (up to nine tenths of the cap: failures first, then a seeded sample of the
    /// disagreements) and a seeded sample of the agreeing rows fills the rest;
    /// every figure is still computed from all rows.
    pub rows: usize,
    /// Seed of the sample: the same seed and rows give the same sample, whatever
    /// the order of the journal's lines.
    pub seed: u64,
}

/// The default cap of the CLI's HTML report: a report of this many rows opens in
/// about a second and weighs about 7 MiB.
pub const DEFAULT_ROW_CAP: usize = 100_000;

/// How the builder makes the data.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// As [`ExplorerInput::live`].
    pub live: bool,
    /// As [`ExplorerInput::csv_labels`].
    pub csv_labels: Option<Vec<String>>,
    /// As [`ExplorerInput::row_cap`].
    pub row_cap: Option<RowCap>,
    /// The run's id when the host knows it (from its files' names): the id when no
    /// summary or progress file gives one.
    pub run_id: Option<String>,
}

/// Which rows a capped report embeds, in numbers (also said in its first note).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowSample {
    /// Rows of the run's results.
    pub rows: u64,
    /// Rows embedded.
    pub shown: u64,
    /// The cap.
    pub cap: u64,
    /// Rows that are a disagreement or a failure.
    pub notable: u64,
    /// Of them, embedded: all of them unless they alone pass nine tenths of the
    /// cap; then every failure first, and a seeded sample of the disagreements.
    pub notable_shown: u64,
    /// Rows without a prediction.
    pub failed: u64,
    /// Of them, embedded.
    pub failed_shown: u64,
    /// Rows whose prediction differs from the label.
    pub disagreeing: u64,
    /// Of them, embedded.
    pub disagreeing_shown: u64,
    /// Rows whose prediction equals the label.
    pub agreeing: u64,
    /// Of them, embedded: a seeded random sample.
    pub agreeing_shown: u64,
    /// The sample's seed.
    pub seed: u64,
    /// The results file that holds every row.
    pub results_file: String,
}

/// Most batch points drawn: past twice this many batches, neighbouring batches are
/// drawn as one point (their counts summed). A chart is some 300 pixels wide.
pub const MAX_BATCH_POINTS: usize = 2_000;

#[cfg(test)]
mod sampling_tests;
#[cfg(test)]
mod tests;
