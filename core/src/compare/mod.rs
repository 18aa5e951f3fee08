//! Comparison of two sides over the same rows: is the candidate (B) better than
//! what runs today (A), by how much, with what evidence, and where do they
//! differ? The sides are two runs over one CSV (two models, prompts,
//! providers...), or a run and the incumbent's decision kept in a column of its
//! CSV, or a run and an earlier run as it finishes.
//!
//! - `runs`: two runs' results journals read in chunks into compact rows,
//!   matched (by id when both have ids, else by CSV line and image; rows that
//!   differ or are on one side only are counted, never paired);
//! - `live`: a run's rows paired with a baseline as each becomes final (the
//!   engine's `--baseline` and `--baseline-column`);
//! - `tally`: the paired rows folded into counts, and the rows kept to show;
//! - [`stats`]: McNemar's exact test, Newcombe's paired interval, the seeded
//!   paired bootstrap.
//!
//! ## The figures
//!
//! For each side, over the matched rows: agreement with the labels and its
//! Wilson interval, Cohen's kappa, macro F1 (over the rows it answered),
//! failures, cost per image and p50/p95 latency (from the run's summary when it
//! has one, else from its rows). Between them, over the rows both answered: the
//! 2x2 table (both right, only A right, only B right, both wrong; rows a side
//! failed are counted apart), B's agreement minus A's with its 95% interval by
//! Newcombe's method 10 for paired proportions (Stat Med 1998; 17:2635), McNemar's
//! exact two-sided binomial test on the rows only one side got right, Cohen's
//! kappa between the two sides' answers, and each label's precision, recall and
//! F1 on both sides with 95% paired bootstrap intervals of their differences
//! (2,000 resamples, a fixed seed). The verdict says it in one line.

use serde::{Deserialize, Serialize};

use crate::eval::{Interval, Kappa};

mod live;
mod runs;
pub mod stats;
mod tally;

pub use live::Baseline;
pub(crate) use live::LiveComparison;
pub use runs::{JournalRows, PairedRuns, RowDetails, RunInfo, RunRows};
pub use tally::{RowCaps, MAX_BOOTSTRAP_LABELS};

/// What went wrong reading a comparison's inputs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompareError {
    /// A summary or progress file that is not one.
    #[error("not a {what} file of a shadow-batch run: {reason}")]
    NotARunFile {
        /// `summary` or `progress`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `--baseline-column` names no column of the CSV.
    #[error("the CSV has no column {name:?} to compare with (its other columns: {others})")]
    NoSuchColumn {
        /// The column asked for.
        name: String,
        /// The CSV's columns besides image, label and id.
        others: String,
    },
    /// The baseline was given after rows became final.
    #[error("a run takes its baseline before its first row is final")]
    TooLate,
}

/// The comparison of A (the incumbent, the earlier run) with B (the
/// candidate): everything a console, a summary or a view shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// Side A.
    pub a: Side,
    /// Side B.
    pub b: Side,
    /// How the rows of A and B were matched, and what did not match.
    pub matching: Matching,
    /// Why the comparison covers only part of the rows (a run still in
    /// progress or stopped); absent when both sides are whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
    /// The paired rows by outcome.
    pub table: PairedTable,
    /// B's agreement minus A's over the rows both answered (0.031 is 3.1
    /// points); null when no row has two answers.
    pub difference: Option<f64>,
    /// Its 95% interval (Newcombe's method 10 for paired proportions).
    pub difference_interval: Option<Bounds>,
    /// McNemar's exact test on the rows only one side got right.
    pub mcnemar: McNemar,
    /// Cohen's kappa between A's and B's answers, over the rows both answered.
    pub kappa_between: Option<Kappa>,
    /// Each label's scores on both sides and their differences, over the rows
    /// both answered, in label order.
    pub per_label: Vec<LabelDelta>,
    /// How the per-label intervals were drawn.
    pub bootstrap: Bootstrap,
    /// The verdict in one line of plain words.
    pub verdict: String,
    /// What else to know (values outside the labels, ids that repeat...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Rows to show, by A's row: those listed in the table's cells, then the
    /// first where the sides differ or both are wrong, then the first both got
    /// right, up to a cap. Empty in a run's summary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<PairedRow>,
}

/// One side's figures over the matched rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    /// What the side is: `run 2026-12-07T01-34-48-663Z`, `column decision`.
    pub name: String,
    /// Its run id, when it is a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Its model, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Its CSV as the run named it (where its images are found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_path: Option<String>,
    /// Agreement and scores.
    #[serde(flatten)]
    pub scores: SideScores,
    /// Mean US dollars per image with token usage, when a price is known.
    pub cost_per_image_usd: Option<f64>,
    /// Median latency, ms.
    pub latency_p50_ms: Option<u64>,
    /// 95th percentile latency, ms.
    pub latency_p95_ms: Option<u64>,
    /// Where cost and latency come from: the run's summary (the whole run) or
    /// its rows (when it has no summary yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing_from: Option<TimingFrom>,
}

/// Where a side's cost and latency figures come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TimingFrom {
    /// The run's summary file (or, for a run comparing as it finishes, its own
    /// statistics): the whole run.
    Summary,
    /// Its results rows.
    Rows,
}

/// A side's scores against the labels over the matched rows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SideScores {
    /// Matched rows.
    pub rows: u64,
    /// Of them, rows it answered.
    pub answered: u64,
    /// Rows it failed (no answer).
    pub failed: u64,
    /// Answers equal to the label.
    pub agreements: u64,
    /// `agreements / answered`.
    pub agreement_rate: Option<f64>,
    /// Its 95% Wilson interval.
    pub agreement_interval: Option<Interval>,
    /// Cohen's kappa with the labels.
    pub kappa: Option<Kappa>,
    /// Macro F1 (scikit-learn's: over the labels in the truth or the answers).
    pub macro_f1: Option<f64>,
}

/// How the rows of the two sides were matched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matching {
    /// The key.
    pub by: MatchedBy,
    /// Rows found on both sides with the same image and label: the paired rows.
    pub matched: u64,
    /// Rows with the same key but another image or label: not paired.
    pub differing: u64,
    /// Rows of A with no row of B.
    pub only_in_a: u64,
    /// Rows of B with no row of A.
    pub only_in_b: u64,
    /// The first rows that differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differing_rows: Vec<DifferingRow>,
}

/// The key rows are matched by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MatchedBy {
    /// The id column (both sides have ids, each unique).
    Id,
    /// The CSV line and the image.
    LineAndImage,
    /// The same row of the same CSV (a baseline column).
    Row,
}

/// A row whose key matched but whose image or label did not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DifferingRow {
    /// A's 0-based row.
    pub row_a: u64,
    /// B's.
    pub row_b: u64,
    /// A's CSV line.
    pub line_a: u64,
    /// B's.
    pub line_b: u64,
    /// A's label.
    pub label_a: String,
    /// B's.
    pub label_b: String,
    /// Whether the images are the same (then the labels differ).
    pub same_image: bool,
}

/// The paired rows by outcome; each cell lists its first rows (by A's row).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedTable {
    /// Both answered the label.
    pub both_right: Cell,
    /// Only A answered the label (B answered something else).
    pub only_a_right: Cell,
    /// Only B answered the label.
    pub only_b_right: Cell,
    /// Both answered, neither the label.
    pub both_wrong: Cell,
    /// A failed (no answer), B answered.
    pub only_a_failed: Cell,
    /// B failed, A answered.
    pub only_b_failed: Cell,
    /// Both failed.
    pub both_failed: Cell,
}

/// One cell of the table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    /// Rows in it.
    pub count: u64,
    /// Its first rows (A's 0-based rows), at most a cap; empty in a summary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<u64>,
}

/// Which cell a row is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CellKind {
    /// Both right.
    BothRight,
    /// Only A right.
    OnlyARight,
    /// Only B right.
    OnlyBRight,
    /// Both wrong.
    BothWrong,
    /// A failed, B answered.
    OnlyAFailed,
    /// B failed, A answered.
    OnlyBFailed,
    /// Both failed.
    BothFailed,
}

impl CellKind {
    /// Every kind, in the table's order.
    pub const ALL: [CellKind; 7] = [
        CellKind::BothRight,
        CellKind::OnlyARight,
        CellKind::OnlyBRight,
        CellKind::BothWrong,
        CellKind::OnlyAFailed,
        CellKind::OnlyBFailed,
        CellKind::BothFailed,
    ];
}

/// The two ends of an interval of a difference (they may be negative).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// McNemar's exact test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct McNemar {
    /// Rows only one side got right (only A right + only B right).
    pub discordant: u64,
    /// The two-sided exact p-value (1 when nothing is discordant).
    pub p_value: f64,
}

/// One label's scores on both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelDelta {
    /// The label.
    pub label: String,
    /// Rows with this label among those both answered.
    pub support: u64,
    /// Precision, recall and F1.
    #[serde(flatten)]
    pub scores: DeltaScores,
}

/// Precision, recall and F1 of a label on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaScores {
    /// Precision.
    pub precision: ScoreDelta,
    /// Recall.
    pub recall: ScoreDelta,
    /// F1.
    pub f1: ScoreDelta,
}

/// A score on both sides and B minus A.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreDelta {
    /// A's (null where undefined: never predicted, never the label).
    pub a: Option<f64>,
    /// B's.
    pub b: Option<f64>,
    /// `b - a`.
    pub delta: Option<f64>,
    /// Its 95% paired bootstrap interval (null beyond the
    /// [`MAX_BOOTSTRAP_LABELS`] most frequent labels).
    pub interval: Option<Bounds>,
}

/// How the per-label intervals were drawn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrap {
    /// Resamples.
    pub resamples: usize,
    /// The generator's seed.
    pub seed: u64,
    /// The method, in words.
    pub method: String,
}

impl Default for Bootstrap {
    fn default() -> Bootstrap {
        Bootstrap {
            resamples: stats::BOOTSTRAP_RESAMPLES,
            seed: stats::BOOTSTRAP_SEED,
            method: "paired percentile bootstrap over the rows both answered (a multinomial over \
                     the distinct (label, A, B) triples), a score whose denominator is 0 counting \
                     as 0"
                .into(),
        }
    }
}

/// A row on both sides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedRow {
    /// A's 0-based data row.
    pub row: u64,
    /// A's CSV line.
    pub line: u64,
    /// B's row, when it is another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_b: Option<u64>,
    /// The id column's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The image as the CSV names it.
    pub image: String,
    /// The human label.
    pub label: String,
    /// A's answer; null when A failed.
    pub a: Option<String>,
    /// B's answer; null when B failed.
    pub b: Option<String>,
    /// The row's cell.
    pub cell: CellKind,
}

/// What a side is, beside its scores.
#[derive(Clone, Debug, Default)]
pub(crate) struct SideMeta {
    pub(crate) name: String,
    pub(crate) run_id: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) csv_path: Option<String>,
    pub(crate) cost_per_image_usd: Option<f64>,
    pub(crate) latency: Option<(u64, u64)>,
    pub(crate) timing_from: Option<TimingFrom>,
}

impl Comparison {
    /// The comparison of `figures`, the two sides named by `meta`.
    pub(crate) fn assemble(
        figures: tally::PairedFigures,
        meta: [SideMeta; 2],
        matching: Matching,
        partial: Option<String>,
        notes: Vec<String>,
        rows: Vec<PairedRow>,
    ) -> Comparison {
        let difference = figures.point_difference.map(tally::round4);
        let interval = figures.difference.map(|(low, high)| Bounds {
            low: tally::round4(low),
            high: tally::round4(high),
        });
        let verdict = verdict(
            figures.point_difference,
            figures.difference,
            &figures.mcnemar,
        );
        let [a, b] = meta;
        let [sa, sb] = figures.sides;
        let side = |m: SideMeta, scores: SideScores| Side {
            name: m.name,
            run_id: m.run_id,
            model: m.model,
            csv_path: m.csv_path,
            scores,
            cost_per_image_usd: m.cost_per_image_usd,
            latency_p50_ms: m.latency.map(|l| l.0),
            latency_p95_ms: m.latency.map(|l| l.1),
            timing_from: m.timing_from,
        };
        Comparison {
            a: side(a, sa),
            b: side(b, sb),
            matching,
            partial,
            table: figures.table,
            difference,
            difference_interval: interval,
            mcnemar: figures.mcnemar,
            kappa_between: figures.kappa_between,
            per_label: figures.per_label,
            bootstrap: Bootstrap::default(),
            verdict,
            notes,
            rows,
        }
    }

    /// The same comparison without its row lists: what a run's summary keeps.
    pub fn without_rows(mut self) -> Comparison {
        self.rows = Vec::new();
        for cell in [
            &mut self.table.both_right,
            &mut self.table.only_a_right,
            &mut self.table.only_b_right,
            &mut self.table.both_wrong,
            &mut self.table.only_a_failed,
            &mut self.table.only_b_failed,
            &mut self.table.both_failed,
        ] {
            cell.rows = Vec::new();
        }
        self
    }
}

/// Below this p-value the verdict calls a difference shown.
pub const SIGNIFICANCE: f64 = 0.05;

/// `p = 0.41`, `p = 0.002`, `p < 0.001`.
pub fn p_text(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else if p < 0.01 {
        format!("p = {p:.3}")
    } else if p >= 0.995 {
        "p = 1".into()
    } else {
        format!("p = {p:.2}")
    }
}

/// `+3.1` points of a difference given as a share (`0.031`); never `-0.0`.
fn points(share: f64) -> String {
    let p = (share * 1000.0).round() / 10.0;
    format!("{:+.1}", p + 0.0)
}

/// The verdict: which side agrees with the labels more often, by how much and
/// with what evidence, or that no difference is shown at this sample size.
fn verdict(difference: Option<f64>, interval: Option<(f64, f64)>, m: &McNemar) -> String {
    let (Some(d), Some((low, high))) = (difference, interval) else {
        return "nothing to compare: no row has an answer from both sides".into();
    };
    let evidence = format!(
        "McNemar exact {} on {} rows where they differ",
        p_text(m.p_value),
        m.discordant
    );
    if m.p_value < SIGNIFICANCE && d > 0.0 {
        format!(
            "B agrees with the labels more often than A: {} points (95% interval {} to {}), {evidence}",
            points(d),
            points(low),
            points(high)
        )
    } else if m.p_value < SIGNIFICANCE && d < 0.0 {
        format!(
            "A agrees with the labels more often than B: {} points (95% interval {} to {}), {evidence}",
            points(-d),
            points(-high),
            points(-low)
        )
    } else {
        format!(
            "no difference shown at this sample size ({}): 95% interval {} to {} points",
            p_text(m.p_value),
            points(low),
            points(high)
        )
    }
}

#[cfg(test)]
mod tests;
