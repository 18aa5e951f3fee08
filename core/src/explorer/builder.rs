//! The explorer's data built from a stream of results: tallies of every row, and
//! the rows the page or report embeds (all, or a capped sample).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::eval::Tally;
use crate::gate::{GateReport, Requirement};
use crate::hash::{mix64, splitmix64};
use crate::input::LabelSet;
use crate::journal::{FailureKind, ItemResult, ItemStatus, JournalScan};
use crate::message_template::{Gathered, Template};

use super::batches::Batches;
use super::run_file::count;
use super::run_file::kind_name;
use super::run_file::text;
use super::run_file::RunFile;
use super::sample::columns;
use super::sample::sample_note;
use super::sample::Kept;
use super::sample::Sample;
use super::BuildOptions;
use super::ErrorGroup;
use super::ExplorerData;
use super::RowSample;
use super::Sources;
use super::Thumbnails;
use super::Totals;
use super::FORMAT;
use super::GROUP_ROWS;

/// The explorer's data built from a stream of results, in memory bounded by the
/// row cap (the label set, the distinct error messages and the batch points aside),
/// however many rows the run has. [`build`](super::build) is this builder fed a folded journal.
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
    error_groups: HashMap<(Option<FailureKind>, Option<u16>, String), GroupBuilding>,
    /// Every row (no cap), or the two samples.
    pub(super) all: Vec<Kept>,
    pub(super) failed: Sample,
    pub(super) disagreeing: Sample,
    pub(super) agreeing: Sample,
    seed: u64,
    /// The sample the journal's header names, for a run without a summary.
    csv_sample: Option<crate::sample::Sample>,
}

/// An error group being gathered: the group, its messages' template, and the
/// varying parts of each listed row's message.
#[derive(Debug)]
struct GroupBuilding {
    group: ErrorGroup,
    gathered: Gathered,
    values: Vec<Vec<String>>,
}

impl GroupBuilding {
    fn finish(self) -> ErrorGroup {
        let mut group = self.group;
        group.message = self.gathered.message();
        if self.gathered.varies() {
            group.details = self
                .values
                .iter()
                .map(|v| self.gathered.detail(v))
                .collect();
        }
        group
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
            csv_sample: None,
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

    /// The seeded sample of the CSV the run is made of, as its journal's header
    /// names it: without a summary, the data says so from it
    /// ([`ExplorerData::csv_sample`](super::ExplorerData::csv_sample)).
    pub fn set_csv_sample(&mut self, sample: Option<crate::sample::Sample>) {
        self.csv_sample = sample;
    }

    fn main(&self) -> Option<&RunFile> {
        self.summary.as_ref().or(self.progress.as_ref())
    }

    fn evaluation_labels(&self) -> Vec<String> {
        labels_of(self.summary.as_ref().and_then(|s| s.evaluation.as_ref()))
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
                self.group_error(r, error);
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
            cost_usd: r.cost_usd,
            answer: r.answer.as_deref().map(str::to_owned),
            confidence: r.confidence,
            label_probability: r.confidence.and_then(|c| {
                if r.prediction.as_deref() == Some(&*r.label) {
                    Some(c)
                } else {
                    r.alternatives
                        .iter()
                        .find(|a| a.label == r.label)
                        .map(|a| a.probability)
                }
            }),
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

    /// Groups a failed row's error as [`crate::report::group_errors`] does: by
    /// kind, HTTP status and message template, without the `line N: ` prefix.
    fn group_error(&mut self, r: &ItemResult<'_>, message: &str) {
        // Only when the summary has none: else its groups are shown.
        if self
            .summary
            .as_ref()
            .is_some_and(|s| matches!(s.error_groups, Some(Value::Array(_))))
        {
            return;
        }
        let row = r.row as u64;
        let message = message
            .strip_prefix(&format!("line {}: ", r.line))
            .unwrap_or(message);
        let template = Template::of(message);
        let key = (r.error_kind, r.http_status, template.key());
        let building = match self.error_groups.get_mut(&key) {
            Some(b) => {
                b.gathered.add(template.values());
                b
            }
            None => self
                .error_groups
                .entry(key)
                .or_insert_with(|| GroupBuilding {
                    group: ErrorGroup {
                        kind: r.error_kind.and_then(kind_name),
                        message: String::new(),
                        count: 0,
                        rows: Vec::new(),
                        details: Vec::new(),
                    },
                    gathered: Gathered::new(template.clone()),
                    values: Vec::new(),
                }),
        };
        building.group.count += 1;
        // The group's first rows by row number, whatever order rows come in.
        let at = building.group.rows.partition_point(|&r| r < row);
        if at < GROUP_ROWS {
            building.group.rows.insert(at, row);
            building.group.rows.truncate(GROUP_ROWS);
            building.values.insert(at, template.into_values());
            building.values.truncate(GROUP_ROWS);
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
        let mut labels: Vec<String> = labels_of(evaluation.as_ref());
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
                    details: g
                        .get("details")
                        .and_then(Value::as_array)
                        .map(|d| {
                            d.iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect(),
            _ => {
                let mut groups: Vec<ErrorGroup> = std::mem::take(&mut self.error_groups)
                    .into_values()
                    .map(GroupBuilding::finish)
                    .collect();
                groups.sort_by(|a, b| {
                    b.count
                        .cmp(&a.count)
                        .then_with(|| a.rows.first().cmp(&b.rows.first()))
                });
                groups
            }
        };

        let csv_sample = summary
            .and_then(|s| s.csv_sample.clone())
            .filter(Value::is_object)
            .or_else(|| self.header_sample_report());
        let precision = summary
            .and_then(|s| s.precision.clone())
            .filter(Value::is_object);
        let statistics = summary.and_then(|s| s.statistics.clone());
        let gate = gate_of(summary.and_then(|s| s.gate.as_ref()), config.as_ref());
        let cost = summary.and_then(|s| s.cost.clone());
        let slices = summary.and_then(|s| s.slices.clone());
        let confidence = summary.and_then(|s| s.confidence.clone());
        let comparison = summary
            .and_then(|s| s.comparison.clone())
            .filter(Value::is_object);
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
            slices,
            confidence,
            gate,
            comparison,
            csv_sample,
            precision,
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

impl ExplorerBuilder {
    /// What a summary would say of the header's sample, from the rows compared
    /// here (a label and a prediction).
    fn header_sample_report(&self) -> Option<Value> {
        // A summary's word stands (an older one has no `sample`); the rows are
        // only counted here without one.
        if self.summary.is_some() {
            return None;
        }
        let sample = self.csv_sample.as_ref()?;
        let (agreements, compared) = self.pairs.iter().fold((0, 0), |(a, c), (&(l, p), &n)| {
            (a + if l == p { n } else { 0 }, c + n)
        });
        let report = crate::sample::SampleReport::of_counts(sample, agreements, compared, |name| {
            self.pairs
                .iter()
                .filter(|(&(l, _), _)| self.names.get(l as usize).is_some_and(|n| n == name))
                .fold((0, 0), |(a, c), (&(l, p), &n)| {
                    (a + if l == p { n } else { 0 }, c + n)
                })
        });
        serde_json::to_value(report).ok()
    }
}

/// The run's gate: the summary's, else, when its settings hold requirements and
/// no summary says how they went, each of them "not judged".
fn gate_of(summary_gate: Option<&Value>, config: Option<&Value>) -> Option<Value> {
    if let Some(gate) = summary_gate.filter(|g| g.is_object()) {
        return Some(gate.clone());
    }
    let requirements: Vec<Requirement> = config?
        .get("gate")?
        .as_array()?
        .iter()
        .filter_map(|r| r.as_str()?.parse().ok())
        .collect();
    if requirements.is_empty() {
        return None;
    }
    let report = GateReport::not_judged(
        &requirements,
        "no summary says how the run ended: it is still going, or stopped without writing one",
    );
    serde_json::to_value(report).ok()
}

/// The `labels` of an evaluation as the summary writes it (none when absent).
fn labels_of(evaluation: Option<&Value>) -> Vec<String> {
    evaluation
        .and_then(|e| e.get("labels"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
