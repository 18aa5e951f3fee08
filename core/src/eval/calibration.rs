//! How well the model's confidence tells right answers from wrong ones, and how
//! much of the work it could take over at a required agreement.
//!
//! Every figure here stands on the rows whose answer has a confidence
//! ([`crate::confidence`]); [`ConfidenceReport::scored_rows`] says how many
//! (a resumed run whose earlier rows were answered without log-probabilities, an
//! endpoint that stopped giving them). "Agrees" is the model's label equal to the
//! human label: the labels are the reference, not the truth.
//!
//! - **Expected calibration error** (Guo et al., 2017, top-label): the rows are
//!   put in 15 equal-width bins of confidence, `(k/15, (k+1)/15]` (the first bin
//!   also holds 0), and `ECE = sum over bins of (n_b / N) |agreement_b -
//!   mean confidence_b|`. The bins are scikit-learn's `calibration_curve(...,
//!   n_bins=15, strategy="uniform")`'s.
//! - **Brier score**, top-label: the mean of `(confidence - agrees)^2` over the
//!   rows, `agrees` 1 or 0: scikit-learn's `brier_score_loss(agrees,
//!   confidence)`. (Not the multi-class Brier score: a result keeps only the
//!   likeliest labels' probabilities.)
//! - **Coverage**: accepting only answers with confidence `>= t`, the share of
//!   scored rows accepted and the agreement among them, for each threshold at which
//!   coverage changes, in steps of 0.0001 (at most 100 points are kept, one per
//!   percent of coverage).
//! - **At a target agreement**: the lowest threshold (the largest coverage) whose
//!   accepted rows agree at least at the target, with the 95% Wilson interval of
//!   that agreement. The threshold is chosen on the same rows it is measured on,
//!   so the interval is somewhat optimistic; a later run checks it.

use serde::{Deserialize, Serialize};

use super::label_errors::ScoredRow;
use super::{round4, wilson_interval, Interval};

/// Number of equal-width bins of the reliability diagram and the ECE.
pub const BINS: usize = 15;

/// Most points of the coverage curve kept in a report.
const MAX_CURVE_POINTS: usize = 100;

/// A confidence bin of the reliability diagram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReliabilityBin {
    /// Lower edge (exclusive, except 0).
    pub low: f64,
    /// Upper edge (inclusive).
    pub high: f64,
    /// Rows in the bin.
    pub rows: u64,
    /// Their mean confidence (`None` for an empty bin).
    pub mean_confidence: Option<f64>,
    /// The share of them that agree with the label.
    pub agreement: Option<f64>,
}

/// One point of the coverage curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoveragePoint {
    /// Answers with confidence at or above this are accepted.
    pub threshold: f64,
    /// Share of the scored rows accepted.
    pub coverage: f64,
    /// Rows accepted.
    pub rows: u64,
    /// Share of the accepted rows that agree with the label.
    pub agreement: f64,
}

/// The threshold that meets a target agreement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtTarget {
    /// The agreement asked for.
    pub target: f64,
    /// The lowest confidence accepted; `None` when no threshold meets the target.
    pub threshold: Option<f64>,
    /// Share of the scored rows accepted at the threshold.
    pub coverage: f64,
    /// Rows accepted.
    pub rows: u64,
    /// Their agreement with the labels.
    pub agreement: Option<f64>,
    /// Its 95% Wilson interval.
    pub interval: Option<Interval>,
}

/// The confidence views of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfidenceReport {
    /// Answered rows (a label from the set) the views could stand on.
    pub answered_rows: u64,
    /// Of them, the rows with a confidence: what every figure below stands on.
    pub scored_rows: u64,
    /// Answers that should have had a confidence and have none, by why
    /// (`missing`, `malformed`, `labelNotFound`).
    pub gaps: Gaps,
    /// Expected calibration error (15 bins); `None` with no scored row.
    pub ece: Option<f64>,
    /// Top-label Brier score; `None` with no scored row.
    pub brier: Option<f64>,
    /// The reliability diagram: 15 bins.
    pub bins: Vec<ReliabilityBin>,
    /// Agreement against coverage, most confident first.
    pub coverage: Vec<CoveragePoint>,
    /// At the agreement the run was asked to reach, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_target: Option<AtTarget>,
    /// The label set, in the order the indices of `labelErrors` count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Likely label errors by confident learning
    /// ([`super::label_errors`]); `None` with no scored row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_errors: Option<super::label_errors::LabelErrors>,
}

/// Answers whose confidence is missing, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Gaps {
    /// Asked, and the answer had no log-probabilities.
    pub missing: u64,
    /// The log-probabilities were unreadable.
    pub malformed: u64,
    /// The tokens did not spell the label.
    pub label_not_found: u64,
}

impl Gaps {
    /// Counts one gap.
    pub fn count(&mut self, gap: crate::confidence::ConfidenceGap) {
        use crate::confidence::ConfidenceGap;
        match gap {
            ConfidenceGap::Missing => self.missing += 1,
            ConfidenceGap::Malformed => self.malformed += 1,
            ConfidenceGap::LabelNotFound => self.label_not_found += 1,
        }
    }

    /// All of them.
    pub fn total(&self) -> u64 {
        self.missing + self.malformed + self.label_not_found
    }
}

/// Most scored rows kept for confident learning (about 130 bytes each, 26 MB
/// at most): a run of millions of rows finds label errors among its first
/// scored rows, and says on how many it stands; the other views count every row.
pub const MAX_ROWS_FOR_LABEL_ERRORS: usize = 200_000;

/// Steps of the coverage curve's thresholds: 0.0001 apart.
const STEPS: usize = 10_000;

/// The figures of [`report`] as counts a row at a time: 15 bins, a Brier sum
/// and rows per 0.0001 step of confidence (160 kB, whatever the run's size).
/// ECE and Brier stand on the exact confidences; a coverage threshold is a
/// confidence rounded down to its 0.0001 step (it accepts every row at or above
/// it, as an exact threshold would).
#[derive(Clone, Debug, Default)]
pub struct ConfidenceCounts {
    rows: u64,
    bins: [(u64, f64, u64); BINS],
    brier: f64,
    /// (rows, agreed) per step, allocated with the first row.
    steps: Vec<(u64, u64)>,
}

impl ConfidenceCounts {
    /// One scored row: its confidence (0..=1) and whether it agrees.
    pub fn add(&mut self, confidence: f64, agrees: bool) {
        self.rows += 1;
        let b = &mut self.bins[bin_of(confidence)];
        b.0 += 1;
        b.1 += confidence;
        b.2 += u64::from(agrees);
        self.brier += (confidence - f64::from(u8::from(agrees))).powi(2);
        if self.steps.is_empty() {
            self.steps = vec![(0, 0); STEPS + 1];
        }
        let s = &mut self.steps[step_of(confidence)];
        s.0 += 1;
        s.1 += u64::from(agrees);
    }

    /// The views, with the threshold for `target` agreement when given.
    pub fn report(&self, target: Option<f64>) -> ConfidenceReport {
        let n = self.rows;
        let step = 1.0 / BINS as f64;
        let mut ece = 0.0;
        let bins = self
            .bins
            .iter()
            .enumerate()
            .map(|(k, &(count, conf, agreed))| {
                let (mean, rate) = if count > 0 {
                    let m = conf / count as f64;
                    let r = agreed as f64 / count as f64;
                    ece += count as f64 / n as f64 * (r - m).abs();
                    (Some(m), Some(r))
                } else {
                    (None, None)
                };
                ReliabilityBin {
                    low: round4(k as f64 * step),
                    high: round4((k + 1) as f64 * step),
                    rows: count,
                    mean_confidence: mean.map(round4),
                    agreement: rate.map(round4),
                }
            })
            .collect();
        let curve = self.coverage_curve();
        let at_target = target.map(|t| at_target(&curve, t, n));
        ConfidenceReport {
            answered_rows: n,
            scored_rows: n,
            gaps: Gaps::default(),
            ece: (n > 0).then(|| round4(ece)),
            brier: (n > 0).then(|| round4(self.brier / n as f64)),
            bins,
            coverage: thin(&curve),
            at_target,
            labels: Vec::new(),
            label_errors: None,
        }
    }

    /// Every step holding rows, most confident first, with (rows, agreed)
    /// accepted at and above it.
    fn coverage_curve(&self) -> Vec<(f64, u64, u64)> {
        let (mut taken, mut agreed) = (0u64, 0u64);
        let mut curve = Vec::new();
        for (s, &(rows, agree)) in self.steps.iter().enumerate().rev() {
            if rows > 0 {
                taken += rows;
                agreed += agree;
                curve.push((s as f64 / STEPS as f64, taken, agreed));
            }
        }
        curve
    }
}

/// The step of a confidence: rounded down to 0.0001 (a confidence written
/// with four decimals is its own step).
fn step_of(confidence: f64) -> usize {
    ((confidence * STEPS as f64 + 1e-6).floor().max(0.0) as usize).min(STEPS)
}

/// The rows' confidences as a run collects them: counts for calibration and
/// coverage, and the label probabilities confident learning reads for the
/// first [`MAX_ROWS_FOR_LABEL_ERRORS`] scored rows.
#[derive(Clone, Debug, Default)]
pub struct ConfidenceTally {
    counts: ConfidenceCounts,
    scored: Vec<ScoredRow>,
    answered: u64,
    gaps: Gaps,
}

impl ConfidenceTally {
    /// An answered row of data row `row` (on CSV line `line`), labelled
    /// `given`, answered `predicted`, with its confidence if it has one.
    pub fn record(
        &mut self,
        row: usize,
        line: u64,
        given: usize,
        predicted: usize,
        confidence: Option<&crate::confidence::Confidence>,
    ) {
        self.answered += 1;
        let Some(c) = confidence.filter(|c| (0.0..=1.0).contains(&c.probability)) else {
            return;
        };
        self.counts.add(c.probability, given == predicted);
        if self.scored.len() >= MAX_ROWS_FOR_LABEL_ERRORS {
            return;
        }
        let mut probabilities = Vec::with_capacity(1 + c.alternatives.len());
        probabilities.push((predicted, c.probability));
        probabilities.extend(c.alternatives.iter().map(|a| (a.label, a.probability)));
        self.scored.push(ScoredRow {
            row,
            line,
            given,
            predicted,
            probabilities,
        });
    }

    /// An answer whose confidence is missing.
    pub fn gap(&mut self, gap: crate::confidence::ConfidenceGap) {
        self.gaps.count(gap);
    }

    /// Whether any answered row could have had a confidence (scored or a gap).
    pub fn is_empty(&self) -> bool {
        self.counts.rows == 0 && self.gaps.total() == 0
    }

    /// The views, with the threshold for `target` agreement when given, over
    /// the label set `labels`.
    pub fn report(&self, target: Option<f64>, labels: &[String]) -> ConfidenceReport {
        let mut report = self.counts.report(target);
        report.answered_rows = self.answered;
        report.gaps = self.gaps;
        if !self.scored.is_empty() {
            report.labels = labels.to_vec();
            report.label_errors = Some(super::label_errors::find(&self.scored, labels.len()));
        }
        report
    }
}

/// The bin of a confidence: the number of inner edges `k/15` below it, as
/// `numpy.searchsorted(linspace(0, 1, 16)[1:-1], c)` counts them.
fn bin_of(confidence: f64) -> usize {
    let step = 1.0 / BINS as f64;
    (1..BINS).filter(|&k| k as f64 * step < confidence).count()
}

/// The views over `(confidence, agrees)` rows.
pub fn report(rows: &[(f64, bool)], target: Option<f64>) -> ConfidenceReport {
    let mut counts = ConfidenceCounts::default();
    for &(c, agrees) in rows {
        counts.add(c, agrees);
    }
    counts.report(target)
}

/// At most one point per percent of coverage (the last of each percent).
fn thin(curve: &[(f64, u64, u64)]) -> Vec<CoveragePoint> {
    let Some(&(_, total, _)) = curve.last() else {
        return Vec::new();
    };
    let point = |&(t, rows, agreed): &(f64, u64, u64)| CoveragePoint {
        threshold: round4(t),
        coverage: round4(rows as f64 / total as f64),
        rows,
        agreement: round4(agreed as f64 / rows as f64),
    };
    let percent = |rows: u64| (rows * MAX_CURVE_POINTS as u64).div_ceil(total);
    curve
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            curve
                .get(i + 1)
                .is_none_or(|next| percent(next.1) > percent(p.1))
        })
        .map(|(_, p)| point(p))
        .collect()
}

/// The largest coverage whose agreement meets `target`.
fn at_target(curve: &[(f64, u64, u64)], target: f64, total: u64) -> AtTarget {
    let best = curve
        .iter()
        .filter(|&&(_, rows, agreed)| agreed as f64 >= target * rows as f64 - 1e-9)
        .max_by_key(|&&(_, rows, _)| rows);
    match best {
        Some(&(t, rows, agreed)) => AtTarget {
            target,
            threshold: Some(round4(t)),
            coverage: round4(rows as f64 / total as f64),
            rows,
            agreement: Some(round4(agreed as f64 / rows as f64)),
            interval: wilson_interval(agreed, rows),
        },
        None => AtTarget {
            target,
            threshold: None,
            coverage: 0.0,
            rows: 0,
            agreement: None,
            interval: None,
        },
    }
}

#[cfg(test)]
mod tests;
