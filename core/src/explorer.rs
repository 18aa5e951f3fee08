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

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::drift::DriftMonitor;
use crate::eval::{wilson_interval, Interval, Tally};
use crate::hash::{mix64, splitmix64};
use crate::input::LabelSet;
use crate::journal::{
    FailureKind, FoldedJournal, ItemResult, ItemStatus, JournalScan, JournalScanner,
};
use crate::throughput::ThroughputWindow;

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

/// How a run file is parsed: which it is, and the fields it must have.
#[derive(Clone, Copy, Debug)]
enum FileKind {
    Summary,
    Progress,
}

impl FileKind {
    fn what(self) -> &'static str {
        match self {
            FileKind::Summary => "summary",
            FileKind::Progress => "progress",
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            FileKind::Summary => &["runId", "status", "statistics", "evaluation"],
            FileKind::Progress => &["overallProgress", "allReports"],
        }
    }
}

/// A summary or progress file, read in one pass and kept small: the fields the
/// explorer shows, and its batch reports folded into at most
/// [`MAX_BATCH_POINTS`] points as they are read. Its error list (one entry per
/// failed row) is skipped, never held: the results journal has the rows.
#[derive(Debug)]
pub struct RunFile {
    run_id: Option<String>,
    csv_path: Option<String>,
    status: Option<String>,
    abort_reason: Option<String>,
    total: Option<u64>,
    statistics: Option<Value>,
    evaluation: Option<Value>,
    failure_reasons: Option<Value>,
    error_groups: Option<Value>,
    cost: Option<Value>,
    config: Option<Value>,
    batches: Batches,
}

impl RunFile {
    /// A summary file's text.
    ///
    /// # Errors
    ///
    /// Not JSON, not an object, or without the fields a summary has.
    pub fn summary(text: &str) -> Result<RunFile, ExplorerError> {
        Self::read(text.as_bytes(), FileKind::Summary)
    }

    /// A progress file's text.
    ///
    /// # Errors
    ///
    /// As [`RunFile::summary`].
    pub fn progress(text: &str) -> Result<RunFile, ExplorerError> {
        Self::read(text.as_bytes(), FileKind::Progress)
    }

    /// A summary file read from `r` as it is parsed (the file is never held
    /// whole).
    ///
    /// # Errors
    ///
    /// As [`RunFile::summary`]; a read error is reported as the reason.
    pub fn summary_from_reader<R: std::io::Read>(r: R) -> Result<RunFile, ExplorerError> {
        Self::read(r, FileKind::Summary)
    }

    /// A progress file read from `r`. See [`RunFile::summary_from_reader`].
    ///
    /// # Errors
    ///
    /// As [`RunFile::summary`].
    pub fn progress_from_reader<R: std::io::Read>(r: R) -> Result<RunFile, ExplorerError> {
        Self::read(r, FileKind::Progress)
    }

    /// The run's seed (`config.seed`), when the file has it.
    pub fn seed(&self) -> Option<u64> {
        self.config.as_ref().and_then(|c| count(c, "seed"))
    }

    fn read<R: std::io::Read>(r: R, kind: FileKind) -> Result<RunFile, ExplorerError> {
        let what = kind.what();
        let mut de = serde_json::Deserializer::from_reader(r);
        let visitor = FileVisitor {
            kind,
            file: RunFile {
                run_id: None,
                csv_path: None,
                status: None,
                abort_reason: None,
                total: None,
                statistics: None,
                evaluation: None,
                failure_reasons: None,
                error_groups: None,
                cost: None,
                config: None,
                batches: Batches::default(),
            },
            seen: Vec::new(),
        };
        let parsed = serde::Deserializer::deserialize_any(&mut de, visitor)
            .and_then(|parsed| de.end().map(|()| parsed));
        let (file, seen) = parsed.map_err(|e| ExplorerError::NotARunFile {
            what,
            reason: if e.to_string().starts_with(NOT_AN_OBJECT) {
                "not a JSON object".into()
            } else {
                e.to_string()
            },
        })?;
        if let Some(missing) = kind.required().iter().find(|f| !seen.contains(f)) {
            return Err(ExplorerError::NotARunFile {
                what,
                reason: format!("no `{missing}` field"),
            });
        }
        Ok(file)
    }
}

const NOT_AN_OBJECT: &str = "not an object";

struct FileVisitor {
    kind: FileKind,
    file: RunFile,
    /// The required fields seen.
    seen: Vec<&'static str>,
}

impl<'de> serde::de::Visitor<'de> for FileVisitor {
    type Value = (RunFile, Vec<&'static str>);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        mut self,
        mut map: A,
    ) -> Result<Self::Value, A::Error> {
        use serde::de::IgnoredAny;
        let opt_text = |v: Value| v.as_str().map(str::to_owned);
        while let Some(key) = map.next_key::<String>()? {
            if let Some(name) = self.kind.required().iter().find(|r| **r == key) {
                self.seen.push(name);
            }
            let f = &mut self.file;
            match key.as_str() {
                "runId" => f.run_id = opt_text(map.next_value()?),
                "csvPath" => f.csv_path = opt_text(map.next_value()?),
                "status" => f.status = opt_text(map.next_value()?),
                "abortReason" => f.abort_reason = opt_text(map.next_value()?),
                "statistics" => f.statistics = Some(map.next_value()?),
                "evaluation" => f.evaluation = Some(map.next_value()?),
                "failureReasons" => f.failure_reasons = Some(map.next_value()?),
                "errorGroups" => f.error_groups = Some(map.next_value()?),
                "cost" => f.cost = Some(map.next_value()?),
                "config" => f.config = Some(map.next_value()?),
                "overallProgress" => {
                    let overall: Overall = map.next_value()?;
                    f.total = overall.total;
                }
                "allReports" => map.next_value_seed(ReportsSeed(&mut f.batches))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((self.file, self.seen))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(serde::de::Error::custom(NOT_AN_OBJECT))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }
}

/// `overallProgress`: its total; its `errors` (every failed row) are skipped.
#[derive(serde::Deserialize)]
struct Overall {
    #[serde(default)]
    total: Option<u64>,
}

/// `allReports`, each report folded into the batch points as it is read.
struct ReportsSeed<'a>(&'a mut Batches);

impl<'de> serde::de::DeserializeSeed<'de> for ReportsSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ReportsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of batch reports")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(report) = seq.next_element::<Value>()? {
            self.0.add(&report);
        }
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(())
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn count(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn kind_name(kind: impl Serialize) -> Option<String> {
    match serde_json::to_value(kind) {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    }
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

/// The explorer's data built from a stream of results, in memory bounded by the
/// row cap (the label set, the distinct error messages and the batch points aside),
/// however many rows the run has. [`build`] is this builder fed a folded journal.
///
/// Give it each row once (the last line of a row written twice, see
/// [`crate::journal::JournalScan::repeated_rows`]), in any order.
#[derive(Debug)]
pub struct ExplorerBuilder {
    summary: Option<RunFile>,
    progress: Option<RunFile>,
    options: BuildOptions,
    /// Labels and predictions seen, by first appearance.
    names: Vec<String>,
    name_index: HashMap<String, u32>,
    /// (label, prediction) counts of successful rows, when the evaluation is
    /// computed here.
    pairs: HashMap<(u32, u32), u64>,
    computes_evaluation: bool,
    processed: u64,
    successful: u64,
    failure_reasons: Map<String, Value>,
    error_groups: HashMap<(Option<FailureKind>, String), ErrorGroup>,
    /// Every row (no cap), or the two samples.
    all: Vec<Kept>,
    failed: Sample,
    disagreeing: Sample,
    agreeing: Sample,
    seed: u64,
}

/// One embedded row, until the columns are made.
#[derive(Debug)]
struct Kept {
    row: u64,
    line: u64,
    id: Option<String>,
    image: String,
    label: u32,
    prediction: Option<u32>,
    ok: bool,
    attempts: u32,
    latency_ms: Option<u64>,
    error: Option<String>,
    error_kind: Option<FailureKind>,
    http_status: Option<u16>,
    tokens: Option<u64>,
}

/// A bottom-k sample: the `k` rows of smallest key, the key a seeded hash of the
/// row number (so the sample does not depend on the order rows arrive in).
#[derive(Debug, Default)]
struct Sample {
    k: usize,
    seen: u64,
    heap: std::collections::BinaryHeap<Keyed>,
}

#[derive(Debug)]
struct Keyed(u64, Kept);

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Keyed {}
impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl Sample {
    fn new(k: usize) -> Sample {
        Sample {
            k,
            ..Sample::default()
        }
    }

    /// Whether a row of `key` would be kept now.
    fn wants(&mut self, key: u64) -> bool {
        self.seen += 1;
        self.heap.len() < self.k || self.heap.peek().is_some_and(|top| key < top.0)
    }

    fn keep(&mut self, key: u64, row: Kept) {
        if self.heap.len() == self.k {
            self.heap.pop();
        }
        self.heap.push(Keyed(key, row));
    }

    /// The `n` rows of smallest key.
    fn take(self, n: usize) -> impl Iterator<Item = Kept> {
        self.heap.into_sorted_vec().into_iter().take(n).map(|k| k.1)
    }
}

impl ExplorerBuilder {
    /// A builder over the run's summary and progress files, whichever exist.
    pub fn new(
        summary: Option<RunFile>,
        progress: Option<RunFile>,
        options: BuildOptions,
    ) -> ExplorerBuilder {
        let computes_evaluation = !summary
            .as_ref()
            .and_then(|s| s.evaluation.as_ref())
            .is_some_and(Value::is_object);
        let cap = options.row_cap.map_or(0, |c| c.rows);
        let seed = options.row_cap.map_or(0, |c| c.seed);
        let mut builder = ExplorerBuilder {
            summary,
            progress,
            options,
            names: Vec::new(),
            name_index: HashMap::new(),
            pairs: HashMap::new(),
            computes_evaluation,
            processed: 0,
            successful: 0,
            failure_reasons: Map::new(),
            error_groups: HashMap::new(),
            all: Vec::new(),
            failed: Sample::new(cap),
            disagreeing: Sample::new(cap),
            agreeing: Sample::new(cap),
            seed,
        };
        // The evaluation's labels first, so that a matrix index is a label index.
        let labels: Vec<String> = builder
            .evaluation_labels()
            .into_iter()
            .chain(builder.options.csv_labels.clone().unwrap_or_default())
            .collect();
        for l in labels {
            builder.intern(&l);
        }
        builder
    }

    /// The summary and progress files back (to build again, e.g. from a second
    /// pass over the journal).
    pub fn into_files(self) -> (Option<RunFile>, Option<RunFile>) {
        let forget = |f: Option<RunFile>| {
            f.map(|mut f| {
                for bin in &mut f.batches.bins {
                    bin.rows_latency.clear();
                }
                f
            })
        };
        (forget(self.summary), forget(self.progress))
    }

    fn main(&self) -> Option<&RunFile> {
        self.summary.as_ref().or(self.progress.as_ref())
    }

    fn evaluation_labels(&self) -> Vec<String> {
        self.summary
            .as_ref()
            .and_then(|s| s.evaluation.as_ref())
            .and_then(|e| e.get("labels"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.name_index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.name_index.insert(name.to_owned(), i);
        i
    }

    /// One finished row.
    pub fn push(&mut self, r: &ItemResult<'_>) {
        self.processed += 1;
        let ok = r.status == ItemStatus::Success;
        let label = self.intern(&r.label);
        let prediction = r.prediction.as_deref().map(|p| self.intern(p));
        if ok {
            self.successful += 1;
            if let (true, Some(p)) = (self.computes_evaluation, prediction) {
                *self.pairs.entry((label, p)).or_default() += 1;
            }
        } else {
            let kind = r
                .error_kind
                .and_then(kind_name)
                .unwrap_or_else(|| "unknown".into());
            let n = self.failure_reasons.get(&kind).and_then(Value::as_u64);
            self.failure_reasons
                .insert(kind, Value::from(n.unwrap_or(0) + 1));
            if let Some(error) = r.error.as_deref() {
                self.group_error(r.row as u64, r.error_kind, error);
            }
        }
        if let Some(bins) = self.main_batches_mut() {
            bins.row_latency(r.row as u64, r.latency_ms);
        }
        let kept = |label, prediction| Kept {
            row: r.row as u64,
            line: r.line,
            id: r.id.as_deref().map(str::to_owned),
            image: r.image.to_string(),
            label,
            prediction,
            ok,
            attempts: r.attempts,
            latency_ms: r.latency_ms,
            error: r.error.as_deref().map(str::to_owned),
            error_kind: r.error_kind,
            http_status: r.http_status,
            tokens: r.usage.map(|u| u.total_tokens),
        };
        if self.options.row_cap.is_none() {
            self.all.push(kept(label, prediction));
            return;
        }
        let key = mix64(self.seed ^ splitmix64(r.row as u64));
        let sample = match (ok, prediction == Some(label)) {
            (false, _) => &mut self.failed,
            (true, false) => &mut self.disagreeing,
            (true, true) => &mut self.agreeing,
        };
        if sample.wants(key) {
            sample.keep(key, kept(label, prediction));
        }
    }

    fn main_batches_mut(&mut self) -> Option<&mut Batches> {
        match (&mut self.summary, &mut self.progress) {
            (Some(s), _) => Some(&mut s.batches),
            (None, Some(p)) => Some(&mut p.batches),
            (None, None) => None,
        }
    }

    fn group_error(&mut self, row: u64, kind: Option<FailureKind>, message: &str) {
        // Only when the summary has none: else its groups are shown.
        if self
            .summary
            .as_ref()
            .is_some_and(|s| matches!(s.error_groups, Some(Value::Array(_))))
        {
            return;
        }
        let group = match self.error_groups.get_mut(&(kind, message.to_owned())) {
            Some(g) => g,
            None => self
                .error_groups
                .entry((kind, message.to_owned()))
                .or_insert_with(|| ErrorGroup {
                    kind: kind.and_then(kind_name),
                    message: message.to_owned(),
                    count: 0,
                    rows: Vec::new(),
                }),
        };
        group.count += 1;
        // The group's first rows by row number, whatever order rows come in.
        let at = group.rows.partition_point(|&r| r < row);
        if at < GROUP_ROWS {
            group.rows.insert(at, row);
            group.rows.truncate(GROUP_ROWS);
        }
    }

    /// The data. `journal`: what reading the results file found, `None` when there
    /// is none.
    pub fn finish(mut self, journal: Option<&JournalScan>) -> ExplorerData {
        let mut notes = Vec::new();
        let main = self.main();
        let run_id = main
            .and_then(|f| f.run_id.clone())
            .or_else(|| self.options.run_id.clone())
            .unwrap_or_default();
        let config = main.and_then(|f| f.config.clone());
        let csv_path = main
            .and_then(|f| f.csv_path.clone())
            .or_else(|| config.as_ref().and_then(|c| text(c, "csvPath")))
            .unwrap_or_default();
        let done_ok = self.successful;
        let done_failed = self.processed - self.successful;
        let (status, abort_reason, totals) = match &self.summary {
            Some(s) => {
                let st = s.statistics.clone().unwrap_or(Value::Null);
                let totals = Totals {
                    total: count(&st, "total"),
                    processed: count(&st, "processed").unwrap_or(self.processed),
                    successful: count(&st, "successful").unwrap_or(done_ok),
                    failed: count(&st, "failed").unwrap_or(done_failed),
                    remaining: count(&st, "remaining"),
                };
                (
                    s.status.clone().unwrap_or_else(|| "completed".into()),
                    s.abort_reason.clone(),
                    totals,
                )
            }
            None => {
                let total = self.progress.as_ref().and_then(|p| p.total);
                let totals = Totals {
                    total,
                    processed: self.processed,
                    successful: done_ok,
                    failed: done_failed,
                    remaining: total.map(|t| t.saturating_sub(self.processed)),
                };
                let status = if self.options.live {
                    "running"
                } else {
                    "interrupted"
                };
                if !self.options.live {
                    notes.push(format!(
                        "This run wrote no summary (it was stopped before its end, or is still going): the numbers are computed from the {} finished results in its results file.",
                        self.processed
                    ));
                }
                (status.to_string(), None, totals)
            }
        };
        match journal {
            Some(scan) => {
                if !scan.bad_lines.is_empty() {
                    notes.push(format!(
                        "{} line(s) of the results file could not be read and were skipped (first: line {}).",
                        scan.bad_lines.len(),
                        scan.bad_lines[0].0
                    ));
                }
                if scan.torn_tail {
                    notes.push(
                        "The last line of the results file was cut off and was skipped.".into(),
                    );
                }
            }
            None => notes.push(
                "No results file: the table of rows, the thumbnails and the matrix click-through are empty."
                    .into(),
            ),
        }

        // Evaluation: the summary's, else computed from the results.
        let (evaluation, evaluation_source) = if !self.computes_evaluation {
            (
                self.summary.as_mut().and_then(|s| s.evaluation.take()),
                "summary",
            )
        } else if journal.is_some() {
            let set = LabelSet::from_labels(self.names.iter().map(String::as_str));
            let mut tally = Tally::new(set.len());
            for (&(l, p), &n) in &self.pairs {
                let index = |i: u32| set.index_of(&self.names[i as usize]);
                if let (Some(l), Some(p)) = (index(l), index(p)) {
                    tally.record_many(l, p, n);
                }
            }
            (serde_json::to_value(tally.evaluate(&set)).ok(), "results")
        } else {
            (None, "none")
        };

        // The label table: the evaluation's labels first, then any other seen.
        let mut labels: Vec<String> = evaluation
            .as_ref()
            .and_then(|e| e.get("labels"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut label_index: HashMap<String, u32> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i as u32))
            .collect();
        let remap: Vec<u32> = self
            .names
            .iter()
            .map(|name| {
                *label_index.entry(name.clone()).or_insert_with(|| {
                    labels.push(name.clone());
                    labels.len() as u32 - 1
                })
            })
            .collect();

        // The rows: all, or the samples.
        let rows = self.processed;
        let (mut kept, sample) = match self.options.row_cap {
            Some(cap) if rows > cap.rows as u64 => {
                let (failed, disagreeing, agreeing) =
                    (self.failed.seen, self.disagreeing.seen, self.agreeing.seen);
                let notable = failed + disagreeing;
                let c = cap.rows as u64;
                // Agreeing rows fill what the others leave, and get a tenth at
                // least; failures come before disagreements.
                let agreeing_shown = agreeing.min(c.saturating_sub(notable).max(c / 10));
                let failed_shown = failed.min(c - agreeing_shown);
                let disagreeing_shown = disagreeing.min(c - agreeing_shown - failed_shown);
                let kept: Vec<Kept> = std::mem::take(&mut self.failed)
                    .take(failed_shown as usize)
                    .chain(std::mem::take(&mut self.disagreeing).take(disagreeing_shown as usize))
                    .chain(std::mem::take(&mut self.agreeing).take(agreeing_shown as usize))
                    .collect();
                let sample = RowSample {
                    rows,
                    shown: kept.len() as u64,
                    cap: c,
                    notable,
                    notable_shown: failed_shown + disagreeing_shown,
                    failed,
                    failed_shown,
                    disagreeing,
                    disagreeing_shown,
                    agreeing,
                    agreeing_shown,
                    seed: cap.seed,
                    results_file: crate::run_files::results_file_name(&run_id),
                };
                (kept, Some(sample))
            }
            Some(_) => {
                let kept = std::mem::take(&mut self.failed)
                    .take(usize::MAX)
                    .chain(std::mem::take(&mut self.disagreeing).take(usize::MAX))
                    .chain(std::mem::take(&mut self.agreeing).take(usize::MAX))
                    .collect();
                (kept, None)
            }
            None => (std::mem::take(&mut self.all), None),
        };
        if let Some(s) = &sample {
            notes.insert(0, sample_note(s));
        }
        kept.sort_unstable_by_key(|k| k.row);
        let items = columns(kept, &remap);

        // Failures by reason, and grouped.
        let summary = self.summary.as_ref();
        let failure_reasons = match summary.and_then(|s| s.failure_reasons.as_ref()) {
            Some(Value::Object(m)) => m.clone(),
            _ => std::mem::take(&mut self.failure_reasons),
        };
        let error_groups = match summary.and_then(|s| s.error_groups.as_ref()) {
            Some(Value::Array(groups)) => groups
                .iter()
                .map(|g| ErrorGroup {
                    kind: text(g, "kind"),
                    message: text(g, "message").unwrap_or_default(),
                    count: count(g, "count").unwrap_or(0),
                    rows: g
                        .get("rows")
                        .and_then(Value::as_array)
                        .map(|rows| rows.iter().filter_map(Value::as_u64).collect())
                        .unwrap_or_default(),
                })
                .collect(),
            _ => {
                let mut groups: Vec<ErrorGroup> = std::mem::take(&mut self.error_groups)
                    .into_values()
                    .collect();
                groups.sort_by(|a, b| {
                    b.count
                        .cmp(&a.count)
                        .then_with(|| a.rows.first().cmp(&b.rows.first()))
                });
                groups
            }
        };

        let statistics = summary.and_then(|s| s.statistics.clone());
        let cost = summary.and_then(|s| s.cost.clone());
        let sources = Sources {
            summary: self.summary.is_some(),
            progress: self.progress.is_some(),
            results: journal.is_some(),
        };
        let batches = self
            .main_batches_mut()
            .map(|b| std::mem::take(b).points())
            .unwrap_or_default();
        if let Some(first) = batches.iter().find(|b| b.batches > 1) {
            notes.push(format!(
                "The charts draw {} points of {} batches each: each point's agreement and counts are its batches' together, its median latency the mean of their medians and its 95th percentile the highest of theirs.",
                batches.len(),
                first.batches
            ));
        }

        ExplorerData {
            format: FORMAT,
            run_id,
            csv_path,
            status,
            abort_reason,
            sources,
            evaluation_source,
            totals,
            statistics,
            evaluation,
            failure_reasons,
            error_groups,
            cost,
            batches,
            config,
            labels,
            items,
            thumbnails: Thumbnails::default(),
            sample,
            notes,
        }
    }
}

/// An [`ExplorerBuilder`] fed a results file in chunks of any size (a host reads
/// the file however it reads files): lines are cut here, checked by a
/// [`JournalScanner`], and each row counted once. A journal that holds a row
/// twice (a resumed run killed before it rewrote its journal) needs a second pass,
/// in which only each row's last line counts, as a resume reads it.
///
/// ```no_run
/// # use shadow_core::explorer::{BuildOptions, ResultsStream};
/// # fn chunks() -> Vec<Vec<u8>> { Vec::new() }
/// let mut stream = ResultsStream::new(None, None, BuildOptions::default());
/// loop {
///     for chunk in chunks() {
///         stream.push(&chunk);
///     }
///     if !stream.end_pass() {
///         break;
///     }
/// }
/// let data = stream.finish();
/// ```
#[derive(Debug)]
pub struct ResultsStream {
    builder: ExplorerBuilder,
    options: BuildOptions,
    scanner: JournalScanner,
    /// The start of a line cut by the end of a chunk.
    carry: Vec<u8>,
    /// Rows seen twice in this pass, by their last line number.
    repeated: HashMap<usize, usize>,
    /// In a second pass: the line that counts for each row written twice.
    last_line: Option<HashMap<usize, usize>>,
    scan: Option<JournalScan>,
}

impl ResultsStream {
    /// Over the run's summary and progress files, whichever exist.
    pub fn new(
        summary: Option<RunFile>,
        progress: Option<RunFile>,
        options: BuildOptions,
    ) -> ResultsStream {
        ResultsStream {
            builder: ExplorerBuilder::new(summary, progress, options.clone()),
            options,
            scanner: JournalScanner::default(),
            carry: Vec::new(),
            repeated: HashMap::new(),
            last_line: None,
            scan: None,
        }
    }

    /// The next bytes of the results file.
    pub fn push(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(end + 1);
            rest = tail;
            if self.carry.is_empty() {
                self.line(line);
            } else {
                let mut whole = std::mem::take(&mut self.carry);
                whole.extend_from_slice(line);
                self.line(&whole);
            }
        }
        self.carry.extend_from_slice(rest);
    }

    fn line(&mut self, bytes: &[u8]) {
        let Some(line) = self.scanner.line(bytes) else {
            return;
        };
        if line.repeats_row {
            self.repeated.insert(line.result.row, line.number);
        }
        match self
            .last_line
            .as_ref()
            .and_then(|l| l.get(&line.result.row))
        {
            Some(&last) if last != line.number => {}
            _ => self.builder.push(&line.result),
        }
    }

    /// The end of the results file. `true`: feed it once more, from its start.
    pub fn end_pass(&mut self) -> bool {
        let tail = std::mem::take(&mut self.carry);
        if !tail.is_empty() {
            self.line(&tail);
        }
        let scan = std::mem::take(&mut self.scanner).finish();
        if scan.repeated_rows && self.last_line.is_none() {
            let empty = ExplorerBuilder::new(None, None, BuildOptions::default());
            let (summary, progress) = std::mem::replace(&mut self.builder, empty).into_files();
            self.builder = ExplorerBuilder::new(summary, progress, self.options.clone());
            self.last_line = Some(std::mem::take(&mut self.repeated));
            return true;
        }
        self.scan = Some(scan);
        false
    }

    /// The data: after the last [`end_pass`](Self::end_pass), or at once when the
    /// run has no results file.
    pub fn finish(self) -> ExplorerData {
        self.builder.finish(self.scan.as_ref())
    }
}

fn sample_note(s: &RowSample) -> String {
    let part = |shown: u64, all: u64, what: &str| {
        if shown == all {
            format!("every {what} ({})", group_digits(all))
        } else {
            format!(
                "a seeded random sample of {} of its {} {what}s",
                group_digits(shown),
                group_digits(all)
            )
        }
    };
    let notable = if s.notable_shown == s.notable {
        part(s.notable, s.notable, "disagreement and failure")
    } else {
        format!(
            "{}, {} (too many to show every one)",
            part(s.failed_shown, s.failed, "failure"),
            part(s.disagreeing_shown, s.disagreeing, "disagreement")
        )
    };
    format!(
        "This report shows {} of the run's {} rows (its cap is {}): {notable} and a seeded random sample of {} of the {} agreeing rows. Every figure (agreement, κ, the matrix, per-label scores, batches, error groups) is computed from all {} rows. Every row is in the results file, {}, which the page's \"Open a finished run\" reads.",
        group_digits(s.shown),
        group_digits(s.rows),
        group_digits(s.cap),
        group_digits(s.agreeing_shown),
        group_digits(s.agreeing),
        group_digits(s.rows),
        s.results_file
    )
}

/// `1234567` as `1,234,567`.
fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The kept rows, sorted by row, as the table's columns.
fn columns(kept: Vec<Kept>, remap: &[u32]) -> Items {
    let mut items = Items::default();
    let mut error_index: HashMap<String, u32> = HashMap::new();
    let mut any_id = false;
    for k in kept {
        items.row.push(k.row);
        items.line.push(k.line);
        any_id |= k.id.is_some();
        items.id.push(k.id);
        items.image.push(k.image);
        items.label.push(remap[k.label as usize]);
        items
            .prediction
            .push(k.prediction.map(|p| remap[p as usize]));
        items.ok.push(k.ok);
        items.attempts.push(k.attempts);
        items.latency_ms.push(k.latency_ms);
        items.error.push(k.error.map(|e| {
            let next = error_index.len() as u32;
            *error_index.entry(e).or_insert_with_key(|e| {
                items.error_texts.push(e.clone());
                next
            })
        }));
        items.error_kind.push(k.error_kind.and_then(kind_name));
        items.http_status.push(k.http_status);
        items.tokens.push(k.tokens);
    }
    if !any_id {
        items.id.clear();
    }
    items
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: u64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p as usize * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1] as f64)
}

/// The batch points, folded as the reports are read: one point per report up to
/// twice [`MAX_BATCH_POINTS`], then neighbouring points merged pairwise (and later
/// reports gathered as many to a point), so a run of any length keeps a few
/// thousand.
#[derive(Debug, Default)]
struct Batches {
    bins: Vec<Bin>,
    /// Batches a point gathers now.
    width: u64,
    prev_agreements: u64,
    throughput: ThroughputWindow,
    /// The drift tests, for reports that do not say (written before they existed).
    drift: DriftMonitor,
}

/// A point and what merging it with its neighbour needs.
#[derive(Debug, Default)]
struct Bin {
    point: BatchPoint,
    /// This batch's agreements (not the report's cumulative count).
    agreements: Option<u64>,
    /// The report's word on drift, when it has one.
    drift: Option<bool>,
    /// The report had no latency percentiles: they come from the rows.
    latency_from_rows: bool,
    rows_latency: Vec<u64>,
    p50_sum: f64,
    p50_n: u64,
    throughput_sum: f64,
    throughput_n: u64,
    rate_sum: f64,
    rate_n: u64,
}

fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a? + b?)
}

impl Bin {
    fn merge(&mut self, next: Bin) {
        let (p, q) = (&mut self.point, next.point);
        p.batches += q.batches;
        p.end = q.end;
        p.successful = add_opt(p.successful, q.successful);
        p.failed = add_opt(p.failed, q.failed);
        p.retries = add_opt(p.retries, q.retries);
        p.rate_limit_hits = add_opt(p.rate_limit_hits, q.rate_limit_hits);
        p.resumed &= q.resumed;
        self.agreements = add_opt(self.agreements, next.agreements);
        self.drift = match (self.drift, next.drift) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        };
        self.latency_from_rows |= next.latency_from_rows;
        self.p50_sum += next.p50_sum;
        self.p50_n += next.p50_n;
        p.latency_p95_ms = match (p.latency_p95_ms, q.latency_p95_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        p.latency_p50_ms = (self.p50_n > 0).then(|| self.p50_sum / self.p50_n as f64);
        self.throughput_sum += next.throughput_sum;
        self.throughput_n += next.throughput_n;
        p.throughput_per_sec =
            (self.throughput_n > 0).then(|| self.throughput_sum / self.throughput_n as f64);
        self.rate_sum += next.rate_sum;
        self.rate_n += next.rate_n;
        // Agreement from the summed counts, else the mean of the batches' rates.
        match (self.agreements, p.successful) {
            (Some(a), Some(n)) => {
                p.agreement_rate = (n > 0).then(|| a as f64 / n as f64);
                p.agreement_interval = wilson_interval(a, n);
            }
            _ => {
                p.agreement_rate = (self.rate_n > 0).then(|| self.rate_sum / self.rate_n as f64);
                p.agreement_interval = None;
            }
        }
    }
}

impl Batches {
    /// One batch report, in order.
    fn add(&mut self, report: &Value) {
        let start = count(report, "batchStartIndex").unwrap_or(0);
        let end = count(report, "batchEndIndex").unwrap_or(start);
        let resumed = report.get("resumed").and_then(Value::as_bool) == Some(true);
        let successful = count(report, "batchSuccessful");
        let cumulative = count(report, "agreements");
        let agreements = cumulative.map(|a| a.saturating_sub(self.prev_agreements));
        if let Some(a) = cumulative {
            self.prev_agreements = a;
        }
        let derived_rate = match (agreements, successful) {
            (Some(a), Some(n)) if n > 0 => Some(a as f64 / n as f64),
            _ => None,
        };
        let agreement_rate = number(report, "agreementRate").or(derived_rate);
        let agreement_interval = report
            .get("agreementInterval")
            .and_then(|i| serde_json::from_value::<Interval>(i.clone()).ok())
            .or_else(|| match (agreements, successful) {
                (Some(a), Some(n)) => wilson_interval(a, n),
                _ => None,
            });
        let (p50, p95) = (
            number(report, "latencyP50Ms"),
            number(report, "latencyP95Ms"),
        );
        // Throughput over a second or more of the reports' elapsed times (see
        // `ThroughputWindow`), whatever the report says: reports written before
        // issue 21 measured it over the gap since the previous report, often 1 ms.
        let size = count(report, "batchSize").unwrap_or(end + 1 - start);
        let throughput = match count(report, "elapsedMs") {
            Some(elapsed) => {
                let rate = self.throughput.add(elapsed, if resumed { 0 } else { size });
                rate.filter(|_| !resumed)
            }
            None => number(report, "throughputPerSec"),
        };
        let bin = Bin {
            point: BatchPoint {
                batch_number: count(report, "batchNumber").unwrap_or(
                    self.bins
                        .last()
                        .map_or(1, |b| b.point.batch_number + b.point.batches),
                ),
                batches: 1,
                start,
                end,
                successful,
                failed: count(report, "batchFailed"),
                agreement_rate,
                agreement_interval,
                drift: false,
                latency_p50_ms: p50,
                latency_p95_ms: p95,
                throughput_per_sec: throughput,
                retries: count(report, "retries"),
                rate_limit_hits: count(report, "rateLimitHits"),
                resumed,
            },
            agreements,
            drift: report.get("drift").and_then(Value::as_bool).or_else(|| {
                let check = self.drift.check(agreements?, successful?)?;
                Some(check.signal.is_some())
            }),
            latency_from_rows: p50.is_none() || p95.is_none(),
            rows_latency: Vec::new(),
            p50_sum: p50.unwrap_or(0.0),
            p50_n: u64::from(p50.is_some()),
            throughput_sum: throughput.unwrap_or(0.0),
            throughput_n: u64::from(throughput.is_some()),
            rate_sum: agreement_rate.unwrap_or(0.0),
            rate_n: u64::from(agreement_rate.is_some()),
        };
        self.width = self.width.max(1);
        match self.bins.last_mut() {
            Some(last) if last.point.batches < self.width => last.merge(bin),
            _ => self.bins.push(bin),
        }
        if self.bins.len() >= 2 * MAX_BATCH_POINTS {
            let bins = std::mem::take(&mut self.bins);
            let mut it = bins.into_iter();
            while let Some(mut a) = it.next() {
                if let Some(b) = it.next() {
                    a.merge(b);
                }
                self.bins.push(a);
            }
            self.width *= 2;
        }
    }

    /// A row's latency, kept for the percentiles of a point whose reports had none.
    fn row_latency(&mut self, row: u64, latency: Option<u64>) {
        let Some(latency) = latency else { return };
        let at = self.bins.partition_point(|b| b.point.start <= row);
        if let Some(bin) = at.checked_sub(1).map(|i| &mut self.bins[i]) {
            if bin.latency_from_rows && row <= bin.point.end {
                bin.rows_latency.push(latency);
            }
        }
    }

    fn points(self) -> Vec<BatchPoint> {
        self.bins
            .into_iter()
            .map(|mut bin| {
                let p = &mut bin.point;
                if bin.latency_from_rows {
                    bin.rows_latency.sort_unstable();
                    p.latency_p50_ms = p.latency_p50_ms.or(percentile(&bin.rows_latency, 50));
                    p.latency_p95_ms = p.latency_p95_ms.or(percentile(&bin.rows_latency, 95));
                }
                p.drift = bin.drift == Some(true);
                bin.point
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::journal::{fold_journal, FailureKind};
    use crate::time::Millis;

    fn result(row: usize, label: &str, prediction: Option<&str>) -> ItemResult<'static> {
        ItemResult {
            row,
            line: row as u64 + 2,
            id: None,
            image: format!("images/{row}.png").into(),
            label: Cow::Owned(label.into()),
            prediction: prediction.map(|p| Cow::Owned(p.into())),
            agreement: prediction.map(|p| p == label),
            status: if prediction.is_some() {
                ItemStatus::Success
            } else {
                ItemStatus::Failed
            },
            attempts: 1,
            latency_ms: Some(100 + row as u64),
            error: prediction
                .is_none()
                .then_some(Cow::Borrowed("HTTP 500: boom")),
            error_kind: prediction.is_none().then_some(FailureKind::Http),
            http_status: Some(if prediction.is_some() { 200 } else { 500 }),
            usage: None,
            finished_at: Millis(1_737_714_600_000),
        }
    }

    fn batch_points(reports: &[Value]) -> Vec<BatchPoint> {
        let mut batches = Batches::default();
        for r in reports {
            batches.add(r);
        }
        batches.points()
    }

    fn journal(results: &[ItemResult<'static>]) -> FoldedJournal {
        fold_journal(
            &results
                .iter()
                .map(ItemResult::to_json_line)
                .collect::<String>(),
        )
    }

    fn known() -> FoldedJournal {
        journal(&[
            result(0, "cat", Some("cat")),
            result(1, "cat", Some("dog")),
            result(2, "dog", Some("dog")),
            result(3, "dog", None),
            result(4, "bird", Some("cat")),
            result(5, "dog", None),
        ])
    }

    #[test]
    fn without_a_summary_the_evaluation_is_computed_from_the_results() {
        let folded = known();
        let data = build(ExplorerInput {
            results: Some(&folded),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(data.status, "interrupted");
        assert_eq!(data.evaluation_source, "results");
        assert!(
            data.notes[0].contains("the 6 finished results"),
            "{:?}",
            data.notes
        );
        let ev = data.evaluation.unwrap();
        assert_eq!(ev["compared"], 4);
        assert_eq!(ev["agreements"], 2);
        assert_eq!(ev["agreementRate"], 0.5);
        assert_eq!(ev["labels"], serde_json::json!(["bird", "cat", "dog"]));
        // Rows: label, prediction; columns: prediction.
        assert_eq!(
            ev["confusionMatrix"],
            serde_json::json!([[0, 1, 0], [0, 1, 1], [0, 0, 1]])
        );
        assert_eq!(
            data.totals,
            Totals {
                total: None,
                processed: 6,
                successful: 4,
                failed: 2,
                remaining: None
            }
        );
        // The label table starts with the evaluation's labels: matrix indices are
        // label indices.
        assert_eq!(data.labels, ["bird", "cat", "dog"]);
        assert_eq!(data.items.label, [1, 1, 2, 2, 0, 2]);
        assert_eq!(
            data.items.prediction,
            [Some(1), Some(2), Some(2), None, Some(1), None]
        );
        // Two identical failures: one error text, one group of two.
        assert_eq!(data.items.error_texts, ["HTTP 500: boom"]);
        assert_eq!(data.items.error, [None, None, None, Some(0), None, Some(0)]);
        assert_eq!(
            data.error_groups,
            [ErrorGroup {
                kind: Some("http".into()),
                message: "HTTP 500: boom".into(),
                count: 2,
                rows: vec![3, 5]
            }]
        );
        assert_eq!(data.failure_reasons["http"], 2);
        assert!(data.items.id.is_empty(), "no row has an id");
    }

    fn summary() -> String {
        serde_json::json!({
            "runId": "2025-01-24T10-30-00-000Z",
            "status": "aborted",
            "abortReason": "the endpoint refused the API key (HTTP 401)",
            "csvPath": "data/labels.csv",
            "statistics": {"total": 10, "processed": 6, "successful": 4, "failed": 2, "remaining": 4},
            "evaluation": {
                "compared": 4, "agreements": 3, "agreementRate": 0.75,
                "agreementInterval": {"low": 0.3, "high": 0.95},
                "labels": ["bird", "cat", "dog", "fish"],
                "confusionMatrix": [[0,1,0,0],[0,1,0,0],[0,0,2,0],[0,0,0,0]],
                "perLabel": [], "topConfusions": [], "futureField": 7
            },
            "failureReasons": {"refused": 1, "http": 1},
            "errorGroups": [{"kind": "http", "message": "m", "count": 2, "rows": [3, 5]}],
            "cost": {"tokensPerImage": 120.5},
            "allReports": [
                {"batchNumber": 1, "batchStartIndex": 0, "batchEndIndex": 2, "batchSize": 3,
                 "batchSuccessful": 3, "batchFailed": 0, "agreements": 3, "elapsedMs": 1000,
                 "retries": 1, "rateLimitHits": 0},
                {"batchNumber": 2, "batchStartIndex": 3, "batchEndIndex": 5, "batchSize": 3,
                 "batchSuccessful": 1, "batchFailed": 2, "agreements": 3, "elapsedMs": 4000,
                 "retries": 4, "rateLimitHits": 2, "latencyP50Ms": 7, "latencyP95Ms": 9,
                 "drift": false}
            ],
            "config": {"csvPath": "data/labels.csv", "batchSize": 3}
        })
        .to_string()
    }

    #[test]
    fn the_summary_is_the_authority_and_unknown_fields_pass_through() {
        let folded = known();
        let text = summary();
        let data = build(ExplorerInput {
            summary: Some(&text),
            results: Some(&folded),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(data.status, "aborted");
        assert_eq!(
            data.abort_reason.as_deref(),
            Some("the endpoint refused the API key (HTTP 401)")
        );
        assert_eq!(data.evaluation_source, "summary");
        let ev = data.evaluation.as_ref().unwrap();
        assert_eq!(ev["agreements"], 3, "the summary's, not the results'");
        assert_eq!(ev["futureField"], 7);
        assert_eq!(data.totals.total, Some(10));
        assert_eq!(data.totals.remaining, Some(4));
        assert_eq!(data.failure_reasons["refused"], 1);
        assert_eq!(data.error_groups[0].rows, [3, 5]);
        assert_eq!(data.cost.as_ref().unwrap()["tokensPerImage"], 120.5);
        assert_eq!(data.labels, ["bird", "cat", "dog", "fish"]);
        assert!(data.notes.is_empty(), "{:?}", data.notes);

        // Batch 1: derived from the cumulative counts and the rows' latencies.
        let b1 = &data.batches[0];
        assert_eq!(b1.agreement_rate, Some(1.0));
        assert_eq!(b1.agreement_interval, wilson_interval(3, 3));
        assert_eq!(
            (b1.latency_p50_ms, b1.latency_p95_ms),
            (Some(101.0), Some(102.0))
        );
        assert_eq!(b1.throughput_per_sec, Some(3.0));
        assert!(!b1.drift, "[0.44, 1] overlaps [0.3, 0.95]");
        // Batch 2: the report's own figures win; throughput from the elapsed gap.
        let b2 = &data.batches[1];
        assert_eq!(b2.agreement_rate, Some(0.0));
        assert_eq!(
            (b2.latency_p50_ms, b2.latency_p95_ms),
            (Some(7.0), Some(9.0))
        );
        assert_eq!(b2.throughput_per_sec, Some(1.0));
        // Reports in the same millisecond each get a rate, over the time since
        // the session's start until it is a second old, then over a second or more.
        let tied = |n: u64, elapsed: u64| {
            serde_json::json!({"batchNumber": n, "batchStartIndex": (n - 1) * 10,
                "batchEndIndex": n * 10 - 1, "batchSize": 10, "elapsedMs": elapsed})
        };
        let points = batch_points(&[tied(1, 1000), tied(2, 1000), tied(3, 2000)]);
        let rates: Vec<_> = points.iter().map(|p| p.throughput_per_sec).collect();
        assert_eq!(rates, [Some(10.0), Some(20.0), Some(10.0)]);
        assert_eq!((b2.retries, b2.rate_limit_hits), (Some(4), Some(2)));
        assert!(!b2.drift, "the report says no drift");
    }

    /// Issue 21: reports without a word on drift are judged by the core's drift
    /// tests, not by the run's narrowing interval (which flagged nearly every late
    /// batch of a long stable run).
    #[test]
    fn reports_without_a_word_on_drift_are_judged_by_the_drift_tests() {
        let report = |b: u64, agreements: u64| {
            serde_json::json!({
                "batchNumber": b, "batchStartIndex": (b - 1) * 50, "batchEndIndex": b * 50 - 1,
                "batchSize": 50, "batchSuccessful": 50, "agreements": agreements,
                "elapsedMs": b * 1000
            })
        };
        // 40 batches agreeing 50 and 40 of 50 in turn (a batch at 40 of 50 has the
        // interval 0.67 to 0.89, which misses the run's 0.89 to 0.91 at 2,000 rows),
        // then one agreeing 10 of 50.
        let mut reports: Vec<Value> = (1..=40)
            .map(|b| report(b, 45 * b + if b % 2 == 1 { 5 } else { 0 }))
            .collect();
        let points = batch_points(&reports);
        assert!(
            points.iter().all(|p| !p.drift),
            "a stable run does not drift"
        );
        reports.push(report(41, 45 * 40 + 10));
        let points = batch_points(&reports);
        let drifting: Vec<u64> = points
            .iter()
            .filter(|p| p.drift)
            .map(|p| p.batch_number)
            .collect();
        assert_eq!(drifting, [41]);
    }

    #[test]
    fn progress_alone_gives_the_status_and_total() {
        let progress = serde_json::json!({
            "runId": "r1", "csvPath": "x.csv", "status": "running",
            "overallProgress": {"total": 10, "successful": 1, "failed": 0, "errors": []},
            "allReports": [], "config": {"batchSize": 5}
        })
        .to_string();
        let folded = known();
        let live = build(ExplorerInput {
            progress: Some(&progress),
            results: Some(&folded),
            live: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(live.status, "running");
        assert!(live.notes.is_empty());
        assert_eq!(live.totals.total, Some(10));
        assert_eq!(live.totals.remaining, Some(4));
        assert_eq!(live.run_id, "r1");
        let csv_labels = ["ant".to_string(), "cat".to_string()];
        let with_csv = build(ExplorerInput {
            progress: Some(&progress),
            results: Some(&folded),
            live: true,
            csv_labels: Some(&csv_labels),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(with_csv.labels, ["ant", "bird", "cat", "dog"]);
        let ended = build(ExplorerInput {
            progress: Some(&progress),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ended.status, "interrupted");
        assert_eq!(ended.evaluation_source, "none");
        assert!(ended.notes.iter().any(|n| n.contains("No results file")));
    }

    #[test]
    fn files_that_are_not_run_files_are_refused_with_the_reason() {
        let e = build(ExplorerInput {
            summary: Some("{\"runId\": \"x\"}"),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "not a shadow-batch summary file: no `status` field"
        );
        let e = build(ExplorerInput {
            progress: Some("[1, 2]"),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("progress file: not a JSON object"),
            "{e}"
        );
        assert!(matches!(
            build(ExplorerInput {
                progress: Some("<html>"),
                ..Default::default()
            }),
            Err(ExplorerError::NotARunFile {
                what: "progress",
                ..
            })
        ));
        assert_eq!(build(ExplorerInput::default()), Err(ExplorerError::Nothing));
    }

    /// 1,000 rows over three labels: rows divisible by 37 answered wrong, by 53
    /// failed (two messages), the rest right.
    fn thousand() -> Vec<ItemResult<'static>> {
        let labels = ["ant", "bee", "cat"];
        (0..1000)
            .map(|row| {
                let label = labels[row % 3];
                if row % 53 == 0 {
                    let mut r = result(row, label, None);
                    if row % 2 == 0 {
                        r.error = Some(Cow::Borrowed("timed out"));
                        r.error_kind = Some(FailureKind::Transport);
                    }
                    r
                } else if row % 37 == 0 {
                    result(row, label, Some(labels[(row + 1) % 3]))
                } else {
                    result(row, label, Some(label))
                }
            })
            .collect()
    }

    fn reports_of(rows: usize, batch: usize, results: &[ItemResult<'static>]) -> Vec<Value> {
        let mut agreements = 0;
        (0..rows.div_ceil(batch))
            .map(|b| {
                let part = &results[b * batch..((b + 1) * batch).min(rows)];
                let ok = part
                    .iter()
                    .filter(|r| r.status == ItemStatus::Success)
                    .count();
                agreements += part.iter().filter(|r| r.agreement == Some(true)).count();
                serde_json::json!({"batchNumber": b + 1, "batchStartIndex": b * batch,
                    "batchEndIndex": b * batch + part.len() - 1, "batchSize": part.len(),
                    "batchSuccessful": ok, "batchFailed": part.len() - ok,
                    "agreements": agreements, "elapsedMs": 1000 * (b + 1), "retries": 1})
            })
            .collect()
    }

    fn progress_of(reports: &[Value]) -> String {
        serde_json::json!({"runId": "r1", "csvPath": "x.csv", "config": {"seed": 7},
            "overallProgress": {"total": 1000, "errors": [{"row": 0, "message": "m"}]},
            "allReports": reports})
        .to_string()
    }

    #[test]
    fn past_the_cap_every_disagreement_and_failure_a_seeded_sample_of_agreeing_rows_and_the_same_figures(
    ) {
        let rows = thousand();
        let notable: Vec<u64> = rows
            .iter()
            .filter(|r| r.agreement != Some(true))
            .map(|r| r.row as u64)
            .collect();
        assert_eq!(notable.len(), 19 + 28 - 1, "row 0 is both: failed");
        let progress = progress_of(&reports_of(1000, 50, &rows));
        let folded = journal(&rows);
        let cap = RowCap { rows: 100, seed: 7 };
        let input = |row_cap| ExplorerInput {
            progress: Some(&progress),
            results: Some(&folded),
            row_cap,
            ..Default::default()
        };
        let full = build(input(None)).unwrap();
        let capped = build(input(Some(cap))).unwrap();

        // The figures are the full run's.
        assert_eq!(capped.evaluation, full.evaluation);
        assert_eq!(capped.evaluation.as_ref().unwrap()["compared"], 981);
        assert_eq!(capped.totals, full.totals);
        assert_eq!(capped.failure_reasons, full.failure_reasons);
        assert_eq!(capped.error_groups, full.error_groups);
        assert_eq!(capped.batches, full.batches);
        assert_eq!(capped.labels, full.labels);
        assert!(full.sample.is_none() && full.items.row.len() == 1000);

        // The rows: every disagreement and failure, and 100 - 46 agreeing rows.
        let items = &capped.items;
        assert_eq!(items.row.len(), 100);
        for row in &notable {
            assert!(
                items.row.contains(row),
                "row {row} is a disagreement or failure"
            );
        }
        let agreeing = (0..items.row.len())
            .filter(|&i| items.ok[i] && items.prediction[i] == Some(items.label[i]))
            .count();
        assert_eq!(agreeing, 54);
        assert!(items.row.windows(2).all(|w| w[0] < w[1]), "sorted by row");
        // Each kept row is the row itself (label indices into the same table).
        for (i, &row) in items.row.iter().enumerate() {
            let j = full.items.row.iter().position(|&r| r == row).unwrap();
            assert_eq!(items.label[i], full.items.label[j]);
            assert_eq!(items.prediction[i], full.items.prediction[j]);
            assert_eq!(items.image[i], full.items.image[j]);
            assert_eq!(
                items.error[i].map(|e| &items.error_texts[e as usize]),
                full.items.error[j].map(|e| &full.items.error_texts[e as usize])
            );
        }
        let sample = capped.sample.as_ref().unwrap();
        assert_eq!(
            (
                sample.rows,
                sample.shown,
                sample.cap,
                sample.notable,
                sample.notable_shown
            ),
            (1000, 100, 100, 46, 46)
        );
        assert_eq!(
            (sample.agreeing, sample.agreeing_shown, sample.seed),
            (954, 54, 7)
        );
        assert_eq!(sample.results_file, "shadow-mode-batch-results-r1.jsonl");
        let note = &capped.notes[0];
        for part in [
            "shows 100 of the run's 1,000 rows",
            "every disagreement and failure (46)",
            "a seeded random sample of 54 of the 954 agreeing rows",
            "computed from all 1,000 rows",
            "shadow-mode-batch-results-r1.jsonl",
            "Open a finished run",
        ] {
            assert!(note.contains(part), "{part:?} in {note}");
        }

        // The same seed gives the same sample whatever the order rows come in;
        // another seed another one.
        let mut reversed = ExplorerBuilder::new(
            None,
            Some(RunFile::progress(&progress).unwrap()),
            BuildOptions {
                row_cap: Some(cap),
                ..Default::default()
            },
        );
        for r in rows.iter().rev() {
            reversed.push(r);
        }
        let reversed = reversed.finish(Some(&JournalScan::default()));
        assert_eq!(reversed.items, capped.items);
        let other = build(input(Some(RowCap { rows: 100, seed: 8 }))).unwrap();
        assert_ne!(other.items.row, capped.items.row);

        // Under the cap: every row, no sample, no note.
        let roomy = build(input(Some(RowCap {
            rows: 1000,
            seed: 7,
        })))
        .unwrap();
        assert_eq!(roomy.items, full.items);
        assert!(roomy.sample.is_none());
        assert_eq!(roomy.notes, full.notes);
    }

    #[test]
    fn when_failures_and_disagreements_pass_the_cap_every_failure_is_kept_and_disagreements_sampled(
    ) {
        let rows = thousand();
        let folded = journal(&rows);
        let data = build(ExplorerInput {
            results: Some(&folded),
            row_cap: Some(RowCap { rows: 40, seed: 1 }),
            ..Default::default()
        })
        .unwrap();
        let s = data.sample.as_ref().unwrap();
        assert_eq!((s.notable, s.notable_shown, s.agreeing_shown), (46, 36, 4));
        assert_eq!(
            (s.failed, s.failed_shown, s.disagreeing, s.disagreeing_shown),
            (19, 19, 27, 17)
        );
        assert_eq!(data.items.row.len(), 40);
        // Every failure is kept before any disagreement.
        assert_eq!(data.items.ok.iter().filter(|ok| !**ok).count(), 19);
        assert!(
            data.notes[0].contains(
                "every failure (19), a seeded random sample of 17 of its 27 disagreements (too many"
            ),
            "{}",
            data.notes[0]
        );
        // Computed from the results: the evaluation still counts every row.
        assert_eq!(data.evaluation.as_ref().unwrap()["compared"], 981);
    }

    #[test]
    fn the_builder_holds_at_most_three_times_the_cap_in_rows_however_many_it_is_given() {
        let mut builder = ExplorerBuilder::new(
            None,
            None,
            BuildOptions {
                row_cap: Some(RowCap { rows: 50, seed: 3 }),
                ..Default::default()
            },
        );
        for row in 0..20_000 {
            let wrong = row % 4 == 0;
            builder.push(&result(row, "cat", Some(if wrong { "dog" } else { "cat" })));
            let held = builder.failed.heap.len()
                + builder.disagreeing.heap.len()
                + builder.agreeing.heap.len();
            assert!(held <= 150);
            assert!(builder.all.is_empty());
        }
        let data = builder.finish(Some(&JournalScan::default()));
        assert_eq!(data.items.row.len(), 50);
        assert_eq!(data.totals.processed, 20_000);
    }

    #[test]
    fn a_long_runs_batches_are_gathered_into_a_few_thousand_points_with_their_counts() {
        let batches = 10_000u64;
        let mut agreements = 0;
        let reports: Vec<Value> = (0..batches)
            .map(|b| {
                agreements += 40 + b % 10;
                serde_json::json!({"batchNumber": b + 1, "batchStartIndex": b * 50,
                    "batchEndIndex": b * 50 + 49, "batchSize": 50, "batchSuccessful": 50,
                    "batchFailed": 0, "agreements": agreements, "elapsedMs": 100 * (b + 1),
                    "retries": 1, "latencyP50Ms": 10 + b % 3, "latencyP95Ms": 20 + b % 7,
                    "drift": b == 4321})
            })
            .collect();
        let points = batch_points(&reports);
        assert!(points.len() <= 2 * MAX_BATCH_POINTS, "{}", points.len());
        assert!(points.len() >= MAX_BATCH_POINTS);
        assert_eq!(points.iter().map(|p| p.batches).sum::<u64>(), batches);
        assert_eq!(points[0].start, 0);
        assert_eq!(points.last().unwrap().end, batches * 50 - 1);
        assert!(points.windows(2).all(|w| w[0].end + 1 == w[1].start));
        assert_eq!(
            points.iter().map(|p| p.successful.unwrap()).sum::<u64>(),
            batches * 50
        );
        assert_eq!(
            points.iter().map(|p| p.retries.unwrap()).sum::<u64>(),
            batches
        );
        // A point's agreement is its batches' counts together.
        let p = &points[1];
        let first = (p.batch_number - 1) as usize;
        let agreed: u64 = (first..first + p.batches as usize)
            .map(|b| 40 + b as u64 % 10)
            .sum();
        assert_eq!(
            p.agreement_rate,
            Some(agreed as f64 / (50 * p.batches) as f64)
        );
        assert_eq!(
            p.agreement_interval,
            wilson_interval(agreed, 50 * p.batches)
        );
        assert_eq!(p.latency_p95_ms, Some(26.0), "the highest of its batches'");
        // One drifting batch makes its point drift, and only that one.
        assert_eq!(points.iter().filter(|p| p.drift).count(), 1);
        // A summary of this many batches says how its points are drawn.
        let summary = serde_json::json!({"runId": "r", "status": "completed",
            "statistics": {}, "evaluation": {"labels": []}, "allReports": reports})
        .to_string();
        let data = build(ExplorerInput {
            summary: Some(&summary),
            ..Default::default()
        })
        .unwrap();
        assert!(
            data.notes
                .iter()
                .any(|n| n.contains("The charts draw") && n.contains("batches each")),
            "{:?}",
            data.notes
        );
    }

    #[test]
    fn a_results_file_fed_in_chunks_of_any_size_gives_the_data_of_the_folded_journal() {
        let rows = thousand();
        let mut text: String = rows[..200].iter().map(ItemResult::to_json_line).collect();
        text.push_str("not a result\n\n");
        text.push_str(
            &rows[200..300]
                .iter()
                .map(ItemResult::to_json_line)
                .collect::<String>(),
        );
        text.push_str("{\"row\": 5, \"torn");
        let progress = progress_of(&reports_of(300, 50, &rows[..300]));
        let options = || BuildOptions {
            row_cap: Some(RowCap { rows: 60, seed: 7 }),
            ..Default::default()
        };
        let folded = fold_journal(&text);
        let expected = build(ExplorerInput {
            progress: Some(&progress),
            results: Some(&folded),
            row_cap: options().row_cap,
            ..Default::default()
        })
        .unwrap();
        assert!(expected
            .notes
            .iter()
            .any(|n| n.contains("1 line(s) of the results file could not be read")));
        assert!(expected.notes.iter().any(|n| n.contains("cut off")));
        for size in [1, 7, 100, 4096, text.len()] {
            let mut stream =
                ResultsStream::new(None, Some(RunFile::progress(&progress).unwrap()), options());
            for chunk in text.as_bytes().chunks(size) {
                stream.push(chunk);
            }
            assert!(!stream.end_pass(), "each row once: one pass");
            assert_eq!(stream.finish(), expected, "chunks of {size}");
        }
    }

    #[test]
    fn a_row_written_twice_counts_by_its_last_line_after_a_second_pass() {
        let mut rows: Vec<ItemResult<'static>> = thousand()[..100].to_vec();
        // Row 10 failed, then (resumed) succeeded; row 20 succeeded, then failed.
        rows[10] = result(10, rows[10].label.as_ref(), None);
        rows.push(result(10, "bee", Some("bee")));
        rows.push(result(20, "cat", None));
        let text: String = rows.iter().map(ItemResult::to_json_line).collect();
        let folded = fold_journal(&text);
        let expected = build(ExplorerInput {
            results: Some(&folded),
            ..Default::default()
        })
        .unwrap();
        let mut stream = ResultsStream::new(None, None, BuildOptions::default());
        let mut passes = 0;
        loop {
            passes += 1;
            stream.push(text.as_bytes());
            if !stream.end_pass() {
                break;
            }
        }
        assert_eq!(passes, 2);
        let data = stream.finish();
        assert_eq!(data.totals.processed, 100);
        assert_eq!(
            data, expected,
            "the same as a resume's fold: the last line wins"
        );
    }

    #[test]
    fn a_run_file_read_as_a_stream_skips_its_error_list() {
        // A progress file whose error list is longer than anything kept: read from
        // a reader, the list is skipped (serde's IgnoredAny), the reports folded.
        let errors: Vec<Value> = (0..5000)
            .map(|row| serde_json::json!({"row": row, "message": "x".repeat(100)}))
            .collect();
        let text =
            serde_json::json!({"runId": "r", "overallProgress": {"total": 5, "errors": errors},
            "allReports": [{"batchNumber": 1, "batchStartIndex": 0, "batchEndIndex": 4}]})
            .to_string();
        let file = RunFile::progress_from_reader(text.as_bytes()).unwrap();
        assert_eq!(file.total, Some(5));
        assert_eq!(file.batches.bins.len(), 1);
        let e = RunFile::summary_from_reader("{\"runId\": 1".as_bytes()).unwrap_err();
        assert!(
            matches!(
                e,
                ExplorerError::NotARunFile {
                    what: "summary",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn hostile_text_is_kept_as_data() {
        let hostile = "<img src=x onerror=alert(1)></script>";
        let mut r = result(0, hostile, Some(hostile));
        r.image = Cow::Borrowed("</script><script>alert(2)</script>.png");
        let folded = journal(&[r]);
        let data = build(ExplorerInput {
            results: Some(&folded),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(data.labels, [hostile]);
        assert_eq!(
            data.items.image[0],
            "</script><script>alert(2)</script>.png"
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50.0));
        assert_eq!(percentile(&v, 95), Some(95.0));
        assert_eq!(percentile(&[7], 95), Some(7.0));
        assert_eq!(percentile(&[], 50), None);
    }
}
