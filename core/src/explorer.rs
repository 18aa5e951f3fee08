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
//!
//! Per-batch points for the charts take each figure from the batch report when it
//! carries it, and otherwise derive it: agreement from the cumulative counts (with
//! its 95% Wilson interval), latency percentiles from the batch's results,
//! throughput from the reports' elapsed times. A batch is flagged as drifting when
//! its report says so or, when the report does not say, when its agreement
//! interval and the run's do not overlap.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::eval::{wilson_interval, Interval, Tally};
use crate::input::LabelSet;
use crate::journal::{FoldedJournal, ItemResult, ItemStatus};

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
    /// 1-based.
    pub batch_number: u64,
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
    /// What the reader should know about how this was built.
    pub notes: Vec<String>,
}

fn parse(text: &str, what: &'static str, required: &[&str]) -> Result<Value, ExplorerError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ExplorerError::NotARunFile {
        what,
        reason: e.to_string(),
    })?;
    let Some(object) = value.as_object() else {
        return Err(ExplorerError::NotARunFile {
            what,
            reason: "not a JSON object".into(),
        });
    };
    if let Some(missing) = required.iter().find(|f| !object.contains_key(**f)) {
        return Err(ExplorerError::NotARunFile {
            what,
            reason: format!("no `{missing}` field"),
        });
    }
    Ok(value)
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
    let summary = input
        .summary
        .map(|t| {
            parse(
                t,
                "summary",
                &["runId", "status", "statistics", "evaluation"],
            )
        })
        .transpose()?;
    let progress = input
        .progress
        .map(|t| parse(t, "progress", &["overallProgress", "allReports"]))
        .transpose()?;
    let results: &[ItemResult<'static>] = input.results.map_or(&[], |f| &f.results);
    let main = summary.as_ref().or(progress.as_ref());
    let mut notes = Vec::new();

    let run_id = main.and_then(|v| text(v, "runId")).unwrap_or_default();
    let csv_path = main
        .and_then(|v| text(v, "csvPath"))
        .or_else(|| {
            main.and_then(|v| v.get("config"))
                .and_then(|c| text(c, "csvPath"))
        })
        .unwrap_or_default();
    let config = main.and_then(|v| v.get("config")).cloned();

    // Status and counts.
    let done_ok = results
        .iter()
        .filter(|r| r.status == ItemStatus::Success)
        .count() as u64;
    let done_failed = results.len() as u64 - done_ok;
    let (status, abort_reason, totals) = match &summary {
        Some(s) => {
            let st = &s["statistics"];
            let totals = Totals {
                total: count(st, "total"),
                processed: count(st, "processed").unwrap_or(done_ok + done_failed),
                successful: count(st, "successful").unwrap_or(done_ok),
                failed: count(st, "failed").unwrap_or(done_failed),
                remaining: count(st, "remaining"),
            };
            (
                text(s, "status").unwrap_or_else(|| "completed".into()),
                text(s, "abortReason"),
                totals,
            )
        }
        None => {
            let total = progress
                .as_ref()
                .and_then(|p| count(&p["overallProgress"], "total"));
            let totals = Totals {
                total,
                processed: done_ok + done_failed,
                successful: done_ok,
                failed: done_failed,
                remaining: total.map(|t| t.saturating_sub(done_ok + done_failed)),
            };
            let status = if input.live { "running" } else { "interrupted" };
            if !input.live {
                notes.push(format!(
                    "This run wrote no summary (it was stopped before its end, or is still going): the numbers are computed from the {} finished results in its results file.",
                    results.len()
                ));
            }
            (status.to_string(), None, totals)
        }
    };
    if let Some(folded) = input.results {
        if !folded.bad_lines.is_empty() {
            notes.push(format!(
                "{} line(s) of the results file could not be read and were skipped (first: line {}).",
                folded.bad_lines.len(),
                folded.bad_lines[0].0
            ));
        }
        if folded.torn_tail {
            notes.push("The last line of the results file was cut off and was skipped.".into());
        }
    } else {
        notes.push(
            "No results file: the table of rows, the thumbnails and the matrix click-through are empty."
                .into(),
        );
    }

    // Evaluation: the summary's, else computed from the results.
    let (evaluation, evaluation_source) = match summary.as_ref().map(|s| &s["evaluation"]) {
        Some(ev) if ev.is_object() => (Some(ev.clone()), "summary"),
        _ if input.results.is_some() => {
            let set = LabelSet::from_labels(
                results
                    .iter()
                    .map(|r| r.label.as_ref())
                    .chain(results.iter().filter_map(|r| r.prediction.as_deref()))
                    .chain(input.csv_labels.unwrap_or(&[]).iter().map(String::as_str)),
            );
            let mut tally = Tally::new(set.len());
            for r in results.iter().filter(|r| r.status == ItemStatus::Success) {
                if let (Some(l), Some(p)) = (
                    set.index_of(&r.label),
                    r.prediction.as_deref().and_then(|p| set.index_of(p)),
                ) {
                    tally.record(l, p);
                }
            }
            let ev = serde_json::to_value(tally.evaluate(&set)).ok();
            (ev, "results")
        }
        _ => (None, "none"),
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
    let mut index_of = |name: &str| -> u32 {
        if let Some(&i) = label_index.get(name) {
            return i;
        }
        let i = labels.len() as u32;
        labels.push(name.to_owned());
        label_index.insert(name.to_owned(), i);
        i
    };

    // The rows.
    let mut items = Items::default();
    let mut error_index: HashMap<&str, u32> = HashMap::new();
    let mut any_id = false;
    for r in results {
        items.row.push(r.row as u64);
        items.line.push(r.line);
        any_id |= r.id.is_some();
        items.id.push(r.id.as_deref().map(str::to_owned));
        items.image.push(r.image.to_string());
        items.label.push(index_of(&r.label));
        items
            .prediction
            .push(r.prediction.as_deref().map(&mut index_of));
        items.ok.push(r.status == ItemStatus::Success);
        items.attempts.push(r.attempts);
        items.latency_ms.push(r.latency_ms);
        items.error.push(r.error.as_deref().map(|e| {
            let next = error_index.len() as u32;
            *error_index.entry(e).or_insert_with(|| {
                items.error_texts.push(e.to_owned());
                next
            })
        }));
        items.error_kind.push(r.error_kind.and_then(kind_name));
        items.http_status.push(r.http_status);
        items.tokens.push(r.usage.map(|u| u.total_tokens));
    }
    if !any_id {
        items.id.clear();
    }

    // Failures by reason, and grouped.
    let failure_reasons = match summary.as_ref().and_then(|s| s.get("failureReasons")) {
        Some(Value::Object(m)) => m.clone(),
        _ => {
            let mut m = Map::new();
            for kind in items.error_kind.iter().zip(&items.ok) {
                if let (kind, false) = kind {
                    let k = kind.clone().unwrap_or_else(|| "unknown".into());
                    let n = m.get(&k).and_then(Value::as_u64).unwrap_or(0);
                    m.insert(k, Value::from(n + 1));
                }
            }
            m
        }
    };
    let error_groups = match summary.as_ref().and_then(|s| s.get("errorGroups")) {
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
        _ => group_errors(&items),
    };

    let reports: &[Value] = main
        .and_then(|v| v.get("allReports"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let run_interval = evaluation
        .as_ref()
        .and_then(|e| e.get("agreementInterval"))
        .and_then(|i| serde_json::from_value::<Interval>(i.clone()).ok());
    let batches = batch_points(reports, results, run_interval);

    Ok(ExplorerData {
        format: FORMAT,
        run_id,
        csv_path,
        status,
        abort_reason,
        sources: Sources {
            summary: summary.is_some(),
            progress: progress.is_some(),
            results: input.results.is_some(),
        },
        evaluation_source,
        totals,
        statistics: summary.as_ref().and_then(|s| s.get("statistics")).cloned(),
        evaluation,
        failure_reasons,
        error_groups,
        cost: summary.as_ref().and_then(|s| s.get("cost")).cloned(),
        batches,
        config,
        labels,
        items,
        thumbnails: Thumbnails::default(),
        notes,
    })
}

/// Failed rows grouped by (kind, message), largest group first.
fn group_errors(items: &Items) -> Vec<ErrorGroup> {
    let mut groups: HashMap<(Option<&str>, u32), ErrorGroup> = HashMap::new();
    for i in 0..items.row.len() {
        if items.ok[i] {
            continue;
        }
        let Some(error) = items.error[i] else {
            continue;
        };
        let kind = items.error_kind[i].as_deref();
        let group = groups.entry((kind, error)).or_insert_with(|| ErrorGroup {
            kind: kind.map(str::to_owned),
            message: items.error_texts[error as usize].clone(),
            count: 0,
            rows: Vec::new(),
        });
        group.count += 1;
        if group.rows.len() < GROUP_ROWS {
            group.rows.push(items.row[i]);
        }
    }
    let mut groups: Vec<ErrorGroup> = groups.into_values().collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.rows.first().cmp(&b.rows.first()))
    });
    groups
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: u64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p as usize * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1] as f64)
}

fn batch_points(
    reports: &[Value],
    results: &[ItemResult<'static>],
    run_interval: Option<Interval>,
) -> Vec<BatchPoint> {
    let mut points = Vec::with_capacity(reports.len());
    let mut prev_agreements = 0u64;
    let (mut window_start, mut window_rows) = (0u64, 0u64);
    for report in reports {
        let start = count(report, "batchStartIndex").unwrap_or(0);
        let end = count(report, "batchEndIndex").unwrap_or(start);
        let resumed = report.get("resumed").and_then(Value::as_bool) == Some(true);
        let successful = count(report, "batchSuccessful");
        let cumulative = count(report, "agreements");
        let agreements = cumulative.map(|a| a.saturating_sub(prev_agreements));
        if let Some(a) = cumulative {
            prev_agreements = a;
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
        let drift = match report.get("drift").and_then(Value::as_bool) {
            Some(d) => d,
            None => match (agreement_interval, run_interval) {
                (Some(b), Some(r)) => b.high < r.low || b.low > r.high,
                _ => false,
            },
        };
        // Latency from the batch's rows when the report has none.
        let (mut p50, mut p95) = (
            number(report, "latencyP50Ms"),
            number(report, "latencyP95Ms"),
        );
        if p50.is_none() || p95.is_none() {
            let lo = results.partition_point(|r| (r.row as u64) < start);
            let hi = results.partition_point(|r| (r.row as u64) <= end);
            let mut lat: Vec<u64> = results[lo..hi]
                .iter()
                .filter_map(|r| r.latency_ms)
                .collect();
            lat.sort_unstable();
            p50 = p50.or(percentile(&lat, 50));
            p95 = p95.or(percentile(&lat, 95));
        }
        // Throughput: the rows of this session's batches reported since the last
        // report with an earlier time, over that time (pipelined batches often
        // report in the same millisecond).
        let elapsed = count(report, "elapsedMs");
        let size = count(report, "batchSize").unwrap_or(end + 1 - start);
        let throughput = number(report, "throughputPerSec").or_else(|| {
            if resumed {
                return None;
            }
            let e = elapsed?;
            window_rows += size;
            let rate =
                (e > window_start).then(|| window_rows as f64 * 1000.0 / (e - window_start) as f64);
            if rate.is_some() {
                window_start = e;
                window_rows = 0;
            }
            rate
        });
        points.push(BatchPoint {
            batch_number: count(report, "batchNumber").unwrap_or(points.len() as u64 + 1),
            start,
            end,
            successful,
            failed: count(report, "batchFailed"),
            agreement_rate,
            agreement_interval,
            drift,
            latency_p50_ms: p50,
            latency_p95_ms: p95,
            throughput_per_sec: throughput,
            retries: count(report, "retries"),
            rate_limit_hits: count(report, "rateLimitHits"),
            resumed,
        });
    }
    points
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
        // Reports in the same millisecond: their rows count in the next window.
        let tied = |n: u64, elapsed: u64| {
            serde_json::json!({"batchNumber": n, "batchStartIndex": (n - 1) * 10,
                "batchEndIndex": n * 10 - 1, "batchSize": 10, "elapsedMs": elapsed})
        };
        let points = batch_points(&[tied(1, 1000), tied(2, 1000), tied(3, 2000)], &[], None);
        let rates: Vec<_> = points.iter().map(|p| p.throughput_per_sec).collect();
        assert_eq!(rates, [Some(10.0), None, Some(20.0)]);
        assert_eq!((b2.retries, b2.rate_limit_hits), (Some(4), Some(2)));
        assert!(!b2.drift, "the report says no drift");
    }

    #[test]
    fn a_batch_whose_interval_misses_the_runs_drifts_when_the_report_does_not_say() {
        let reports = [serde_json::json!({
            "batchNumber": 1, "batchStartIndex": 0, "batchEndIndex": 49, "batchSize": 50,
            "batchSuccessful": 50, "agreements": 10, "elapsedMs": 1000
        })];
        let run = Some(Interval {
            low: 0.85,
            high: 0.95,
        });
        assert!(batch_points(&reports, &[], run)[0].drift);
        let reports = [serde_json::json!({
            "batchNumber": 1, "batchStartIndex": 0, "batchEndIndex": 49, "batchSize": 50,
            "batchSuccessful": 50, "agreements": 45, "elapsedMs": 1000
        })];
        assert!(!batch_points(&reports, &[], run)[0].drift);
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
