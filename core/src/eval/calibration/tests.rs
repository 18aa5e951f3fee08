//! The calibration figures against scikit-learn 1.9.1 (`calibration_curve`,
//! `brier_score_loss`) and numpy on a fixed example of 30 rows, run with:
//!
//! ```python
//! import numpy as np
//! from sklearn.calibration import calibration_curve
//! from sklearn.metrics import brier_score_loss
//! conf = np.array([0.99,0.97,0.97,0.95,0.93,0.92,0.90,0.88,0.85,0.81,
//!                  0.80,0.77,0.74,0.70,0.66,0.6,0.55,0.52,0.5,0.45,
//!                  0.4,1/15,0.0,1.0,0.98,0.96,0.91,0.62,0.33,0.2])
//! agree = np.array([1,1,1,1,1,0,1,1,0,1, 1,0,1,1,0,1,0,1,0,0,
//!                   1,0,0,1,1,1,1,0,0,0])
//! prob_true, prob_pred = calibration_curve(agree, conf, n_bins=15, strategy="uniform")
//! bins = np.linspace(0, 1, 16)
//! ids = np.searchsorted(bins[1:-1], conf)
//! counts = np.bincount(ids, minlength=15)
//! nz = counts > 0
//! ece = np.sum(counts[nz] / len(conf) * np.abs(prob_true - prob_pred))
//! print(counts.tolist())                 # [2, 0, 1, 0, 1, 1, 1, 2, 2, 2, 1, 3, 2, 5, 7]
//! print(np.round(prob_true, 4).tolist()) # [0.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.0, 1.0, 0.6667, 0.5, 0.8, 1.0]
//! print(np.round(prob_pred, 4).tolist()) # [0.0333, 0.2, 0.33, 0.4, 0.45, 0.51, 0.575, 0.64, 0.7, 0.77, 0.83, 0.908, 0.9743]
//! print(round(ece, 4), round(brier_score_loss(agree, conf), 4))  # 0.1696 0.1639
//! # Largest coverage with agreement >= 0.9:
//! for t in sorted(set(conf), reverse=True):
//!     m = conf >= t
//!     if agree[m].mean() >= 0.9: best = (t, m.sum(), agree[m].mean(), m.mean())
//! print(best)  # (0.88, 12, 0.9166666666666666, 0.4)
//! ```

use super::*;

const CONF: [f64; 30] = [
    0.99,
    0.97,
    0.97,
    0.95,
    0.93,
    0.92,
    0.90,
    0.88,
    0.85,
    0.81,
    0.80,
    0.77,
    0.74,
    0.70,
    0.66,
    0.6,
    0.55,
    0.52,
    0.5,
    0.45,
    0.4,
    1.0 / 15.0,
    0.0,
    1.0,
    0.98,
    0.96,
    0.91,
    0.62,
    0.33,
    0.2,
];
const AGREE: [u8; 30] = [
    1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0,
];

fn rows() -> Vec<(f64, bool)> {
    CONF.iter().zip(AGREE).map(|(&c, a)| (c, a == 1)).collect()
}

#[test]
fn bins_ece_and_brier_match_scikit_learn() {
    let r = report(&rows(), Some(0.9));
    let counts: Vec<u64> = r.bins.iter().map(|b| b.rows).collect();
    assert_eq!(counts, [2, 0, 1, 0, 1, 1, 1, 2, 2, 2, 1, 3, 2, 5, 7]);
    let filled: Vec<&ReliabilityBin> = r.bins.iter().filter(|b| b.rows > 0).collect();
    let agreement: Vec<f64> = filled.iter().map(|b| b.agreement.unwrap()).collect();
    assert_eq!(
        agreement,
        [0.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.0, 1.0, 0.6667, 0.5, 0.8, 1.0]
    );
    let mean: Vec<f64> = filled.iter().map(|b| b.mean_confidence.unwrap()).collect();
    assert_eq!(
        mean,
        [0.0333, 0.2, 0.33, 0.4, 0.45, 0.51, 0.575, 0.64, 0.7, 0.77, 0.83, 0.908, 0.9743]
    );
    assert_eq!((r.ece, r.brier), (Some(0.1696), Some(0.1639)));
    assert_eq!(r.bins.len(), BINS);
    assert_eq!((r.bins[0].low, r.bins[14].high), (0.0, 1.0));
}

#[test]
fn the_target_takes_the_largest_coverage_that_meets_it() {
    let r = report(&rows(), Some(0.9));
    let t = r.at_target.unwrap();
    assert_eq!(t.threshold, Some(0.88));
    assert_eq!((t.rows, t.coverage, t.agreement), (12, 0.4, Some(0.9167)));
    assert_eq!(t.interval, wilson_interval(11, 12));
    // Nothing meets 100% beyond the top rows: 0.99, 0.98, 0.97 x2, 0.96, 0.95,
    // 0.93 agree; 0.92 does not.
    let all = report(&rows(), Some(1.0)).at_target.unwrap();
    assert_eq!((all.threshold, all.rows), (Some(0.93), 8));
    // The 1.0 row alone is the first point of the curve.
    let curve = &r.coverage;
    assert_eq!((curve[0].threshold, curve[0].rows), (1.0, 1));
    assert_eq!(curve.last().unwrap().coverage, 1.0);
    // Coverage grows and each point is a distinct threshold.
    assert!(curve
        .windows(2)
        .all(|w| w[0].rows < w[1].rows && w[0].threshold > w[1].threshold));
    // Tied confidences are accepted together (0.97 twice).
    assert!(curve.iter().all(|p| p.threshold != 0.97 || p.rows == 5));
}

#[test]
fn no_rows_no_figures() {
    let r = report(&[], Some(0.99));
    assert_eq!((r.ece, r.brier, r.scored_rows), (None, None, 0));
    assert!(r.coverage.is_empty());
    assert_eq!(r.at_target.unwrap().threshold, None);
}

#[test]
fn the_curve_keeps_at_most_a_point_per_percent() {
    let many: Vec<(f64, bool)> = (0..10_000)
        .map(|i| (i as f64 / 10_000.0, i % 3 != 0))
        .collect();
    let r = report(&many, None);
    assert!(
        r.coverage.len() <= 100 && r.coverage.len() >= 95,
        "{}",
        r.coverage.len()
    );
    assert_eq!(r.coverage.last().unwrap().rows, 10_000);
}

#[test]
fn the_tally_counts_gaps_and_unscored_rows() {
    let mut t = ConfidenceTally::default();
    let c = crate::confidence::Confidence {
        probability: 0.9,
        alternatives: Vec::new(),
    };
    t.record(0, 2, 1, 1, Some(&c));
    t.record(1, 3, 0, 1, None);
    t.gap(crate::confidence::ConfidenceGap::Malformed);
    let r = t.report(None, &["a".to_owned(), "b".to_owned()]);
    assert_eq!(
        (r.answered_rows, r.scored_rows, r.gaps.malformed),
        (2, 1, 1)
    );
    assert_eq!(r.label_errors.unwrap().rows, 1);
}

/// A run of millions of rows keeps counts, not rows: calibration and coverage
/// stand on every scored row, label errors on the first
/// [`MAX_ROWS_FOR_LABEL_ERRORS`]; a threshold is its 0.0001 step.
#[test]
fn the_tally_is_bounded_and_its_views_count_every_row() {
    let mut t = ConfidenceTally::default();
    let n = MAX_ROWS_FOR_LABEL_ERRORS + 1_000;
    for i in 0..n {
        let c = crate::confidence::Confidence {
            probability: 0.5 + (i % 5000) as f64 / 10_000.0 + 0.00004,
            alternatives: Vec::new(),
        };
        t.record(i, i as u64 + 2, i % 2, 0, Some(&c));
    }
    assert_eq!(t.scored.len(), MAX_ROWS_FOR_LABEL_ERRORS);
    let r = t.report(Some(0.5), &["a".to_owned(), "b".to_owned()]);
    assert_eq!(r.scored_rows, n as u64);
    assert_eq!(r.bins.iter().map(|b| b.rows).sum::<u64>(), n as u64);
    assert_eq!(r.coverage.last().unwrap().rows, n as u64);
    assert_eq!(
        r.label_errors.unwrap().rows,
        MAX_ROWS_FOR_LABEL_ERRORS as u64
    );
    // 0.50004 and its like fall in the 0.5000 step: the threshold accepts them.
    let top = r.at_target.unwrap();
    assert_eq!((top.threshold, top.rows), (Some(0.5), n as u64));
}
