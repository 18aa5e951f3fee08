//! Confident learning against cleanlab 2.9.0 on a fixed example: 24 rows, 4
//! labels, five given labels flipped. Made and checked with:
//!
//! ```python
//! import numpy as np
//! from cleanlab.filter import find_label_issues
//! from cleanlab.count import compute_confident_joint, get_confident_thresholds
//! rng = np.random.default_rng(7)
//! n, K = 24, 4
//! true = rng.integers(0, K, n)
//! labels = true.copy()
//! for i in [2, 5, 11, 17, 20]: labels[i] = (labels[i] + 1 + rng.integers(0, K - 1)) % K
//! P = np.zeros((n, K))
//! for i in range(n):
//!     w = rng.random(K) * 0.3
//!     w[true[i]] += rng.random() * 2 + 0.3
//!     P[i] = np.round(w / w.sum(), 3)
//!     P[i, K - 1] = round(1 - P[i, :K - 1].sum(), 3)
//! print(labels.tolist(), P.tolist())          # LABELS, PROBS below
//! print(np.round(get_confident_thresholds(labels, P), 6).tolist())
//! # [0.653167, 0.5365, 0.535333, 0.7436]
//! print(compute_confident_joint(labels, P, calibrate=False).tolist())
//! # [[5, 0, 0, 1], [0, 6, 1, 2], [0, 0, 2, 0], [0, 0, 0, 3]]
//! print(find_label_issues(labels, P, filter_by="confident_learning",
//!                         return_indices_ranked_by="self_confidence").tolist())
//! # [5, 2, 17, 20]  (row 11's flip is missed: no label is confident for it)
//! ```

use super::*;

const LABELS: [usize; 24] = [
    3, 2, 1, 3, 2, 0, 3, 0, 0, 1, 1, 2, 3, 0, 1, 3, 0, 1, 0, 1, 1, 1, 1, 1,
];
const PROBS: [[f64; 4]; 24] = [
    [0.052, 0.094, 0.075, 0.779],
    [0.095, 0.071, 0.815, 0.019],
    [0.074, 0.067, 0.768, 0.091],
    [0.076, 0.038, 0.002, 0.884],
    [0.058, 0.108, 0.592, 0.242],
    [0.034, 0.113, 0.066, 0.787],
    [0.085, 0.011, 0.062, 0.842],
    [0.771, 0.131, 0.013, 0.085],
    [0.7, 0.112, 0.052, 0.136],
    [0.101, 0.762, 0.113, 0.024],
    [0.058, 0.685, 0.023, 0.234],
    [0.153, 0.068, 0.199, 0.58],
    [0.161, 0.181, 0.173, 0.485],
    [0.81, 0.106, 0.063, 0.021],
    [0.14, 0.689, 0.082, 0.089],
    [0.007, 0.173, 0.092, 0.728],
    [0.857, 0.008, 0.124, 0.011],
    [0.103, 0.07, 0.046, 0.781],
    [0.747, 0.092, 0.106, 0.055],
    [0.202, 0.512, 0.04, 0.246],
    [0.088, 0.095, 0.016, 0.801],
    [0.002, 0.83, 0.102, 0.066],
    [0.053, 0.82, 0.085, 0.042],
    [0.1, 0.835, 0.036, 0.029],
];

fn rows() -> Vec<ScoredRow> {
    PROBS
        .iter()
        .zip(LABELS)
        .enumerate()
        .map(|(row, (p, given))| ScoredRow {
            row,
            line: row as u64 + 2,
            given,
            predicted: (0..4).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap(),
            probabilities: p.iter().copied().enumerate().collect(),
        })
        .collect()
}

#[test]
fn matches_cleanlab_find_label_issues() {
    let found = find(&rows(), 4);
    let t: Vec<f64> = found
        .thresholds
        .iter()
        .map(|t| (t * 1e6).round() / 1e6)
        .collect();
    assert_eq!(t, [0.653167, 0.5365, 0.535333, 0.7436]);
    assert_eq!(
        found.confident_joint,
        [[5, 0, 0, 1], [0, 6, 1, 2], [0, 0, 2, 0], [0, 0, 0, 3]]
    );
    let ranked: Vec<usize> = found.issues.iter().map(|i| i.row).collect();
    assert_eq!(ranked, [5, 2, 17, 20]);
    assert_eq!(found.flagged, 4);
    let first = &found.issues[0];
    assert_eq!((first.given, first.likely, first.predicted), (0, 3, 3));
    assert_eq!((first.given_probability, first.confidence), (0.034, 0.787));
}

/// A label outside the kept probabilities counts as 0: dropping the two
/// smallest probabilities of every row changes no flagged row here.
#[test]
fn sparse_rows_read_missing_labels_as_zero() {
    let sparse: Vec<ScoredRow> = rows()
        .into_iter()
        .map(|mut r| {
            r.probabilities.sort_by(|a, b| b.1.total_cmp(&a.1));
            r.probabilities.truncate(2);
            if r.probabilities.iter().all(|(l, _)| *l != r.given) {
                r.probabilities.push((r.given, PROBS[r.row][r.given]));
            }
            r
        })
        .collect();
    let ranked: Vec<usize> = find(&sparse, 4).issues.iter().map(|i| i.row).collect();
    assert_eq!(ranked, [5, 2, 17, 20]);
}

#[test]
fn a_label_no_row_has_is_never_likely() {
    let found = find(&rows(), 5);
    assert_eq!(found.thresholds[4], 2.0);
    assert_eq!(found.confident_joint[4][4], 1);
    assert_eq!(found.flagged, 4);
}
