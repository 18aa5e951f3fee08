//! Likely label errors, by confident learning (Northcutt, Jiang and Chuang,
//! "Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 70, 2021).
//!
//! From each scored row's label probabilities ([`crate::confidence`]):
//!
//! 1. Per label `k`, a threshold `t_k`: the mean probability the model gives `k`
//!    on the rows labelled `k` (its mean self-confidence), at least 2e-6; a label
//!    no row has gets 2 (no row can reach it).
//! 2. A row is confidently of label `k` when `p_k >= t_k - 1e-6`. With one such
//!    label, that is the row's likely true label; with several, the likeliest
//!    label overall; with none, the row is left out.
//! 3. The confident joint counts rows by (given label, likely true label); its
//!    diagonal is at least 1. The rows off its diagonal are the likely label
//!    errors, less those whose given label is the model's likeliest (within
//!    1e-6), ranked by the probability of their given label, least likely first.
//!
//! This is cleanlab's `find_label_issues(labels, pred_probs,
//! filter_by="confident_learning", return_indices_ranked_by="self_confidence")`,
//! step for step (`cleanlab.count.compute_confident_joint`,
//! `cleanlab.count._reduce_issues`); the test holds the check. What it does not
//! do: a result keeps the probabilities of the predicted label and its
//! [`crate::confidence::MAX_ALTERNATIVES`] likeliest rivals only, so a label
//! outside those counts as probability 0 (the labels beyond the top four hold
//! little mass after renormalisation), and the confident joint is not calibrated
//! (cleanlab calibrates it for its counts, not for which rows are flagged).

use serde::{Deserialize, Serialize};

/// Most flagged rows a report lists (the count covers them all).
pub const MAX_LISTED: usize = 1_000;

/// One scored row, for confident learning.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredRow {
    /// 0-based data row (in a sampled run, the position in the sample).
    pub row: usize,
    /// The row's line in the CSV (1 is the header), which names it to a person.
    pub line: u64,
    /// The given (human) label.
    pub given: usize,
    /// The model's label.
    pub predicted: usize,
    /// Label probabilities known for the row (the predicted label's and its
    /// likeliest rivals'); every other label counts as 0.
    pub probabilities: Vec<(usize, f64)>,
}

impl ScoredRow {
    fn p(&self, label: usize) -> f64 {
        self.probabilities
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(0.0, |(_, p)| *p)
    }

    /// The likeliest label (the first of equals, by label index).
    fn argmax(&self, labels: usize, boost: Option<usize>) -> usize {
        let mut best = (0, f64::NEG_INFINITY);
        for k in 0..labels {
            let p = self.p(k) + if boost == Some(k) { 1e-6 } else { 0.0 };
            if p > best.1 {
                best = (k, p);
            }
        }
        best.0
    }
}

/// A row whose given label is likely wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelIssue {
    /// 0-based data row (in a sampled run, the position in the sample).
    pub row: usize,
    /// The row's line in the CSV: what the console and the explorer name it
    /// by. Absent from summaries written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The given label (index in the label set).
    pub given: usize,
    /// The label the row confidently belongs to.
    pub likely: usize,
    /// The model's label.
    pub predicted: usize,
    /// The probability the model gives the given label.
    pub given_probability: f64,
    /// The probability of the model's label (its confidence).
    pub confidence: f64,
}

/// What confident learning finds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelErrors {
    /// Rows it stands on (scored rows).
    pub rows: u64,
    /// The per-label thresholds `t_k`, by label index.
    pub thresholds: Vec<f64>,
    /// The confident joint: `[given][likely]` row counts (diagonal at least 1).
    pub confident_joint: Vec<Vec<u64>>,
    /// Rows flagged.
    pub flagged: u64,
    /// The flagged rows, least likely given label first (at most
    /// [`MAX_LISTED`]).
    pub issues: Vec<LabelIssue>,
}

/// Confident learning over `rows` of a label set of `labels` labels.
pub fn find(rows: &[ScoredRow], labels: usize) -> LabelErrors {
    let mut sum = vec![0.0; labels];
    let mut count = vec![0u64; labels];
    for r in rows {
        sum[r.given] += r.p(r.given);
        count[r.given] += 1;
    }
    let thresholds: Vec<f64> = (0..labels)
        .map(|k| {
            if count[k] == 0 {
                2.0
            } else {
                (sum[k] / count[k] as f64).max(2e-6)
            }
        })
        .collect();
    let mut joint = vec![vec![0u64; labels]; labels];
    let mut issues = Vec::new();
    for r in rows {
        let confident: Vec<usize> = (0..labels)
            .filter(|&k| r.p(k) >= thresholds[k] - 1e-6)
            .collect();
        let likely = match confident.as_slice() {
            [] => continue,
            [one] => *one,
            _ => r.argmax(labels, None),
        };
        joint[r.given][likely] += 1;
        if likely != r.given && r.argmax(labels, Some(r.given)) != r.given {
            issues.push(LabelIssue {
                row: r.row,
                line: Some(r.line),
                given: r.given,
                likely,
                predicted: r.predicted,
                given_probability: r.p(r.given),
                confidence: r.p(r.predicted),
            });
        }
    }
    for (k, row) in joint.iter_mut().enumerate() {
        row[k] = row[k].max(1);
    }
    issues.sort_by(|a, b| {
        a.given_probability
            .total_cmp(&b.given_probability)
            .then(a.row.cmp(&b.row))
    });
    let flagged = issues.len() as u64;
    issues.truncate(MAX_LISTED);
    LabelErrors {
        rows: rows.len() as u64,
        thresholds,
        confident_joint: joint,
        flagged,
        issues,
    }
}

#[cfg(test)]
mod tests;
