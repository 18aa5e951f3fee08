//! `--stratify`: the allocation, the order, "a larger sample only adds rows",
//! and the reweighted estimate against samplics.

use proptest::prelude::*;

use super::reweighted::reweighted;
use super::strata::stratum_sequence;
use super::*;
use crate::hash::mix64;
use crate::input::{parse_labels_csv, ColumnNames};

/// A CSV of `counts` rows of each label (`cat`, `dog`, `fox`, ... by position),
/// interleaved, then `defects` rows without a label.
fn csv_of(counts: &[usize], defects: usize) -> LabelsCsv {
    let names = ["cat", "dog", "fox", "owl", "yak", "emu", "gnu", "ant"];
    let mut rows: Vec<&str> = Vec::new();
    let mut left = counts.to_vec();
    while left.iter().any(|&n| n > 0) {
        for (h, n) in left.iter_mut().enumerate() {
            if *n > 0 {
                *n -= 1;
                rows.push(names[h]);
            }
        }
    }
    let mut text = String::from("image,label\n");
    for (i, label) in rows.iter().enumerate() {
        text.push_str(&format!("img{i}.png,{label}\n"));
    }
    for i in 0..defects {
        text.push_str(&format!("bad{i}.png\n"));
    }
    parse_labels_csv(&text, &ColumnNames::default()).unwrap()
}

fn label_counts(csv: &LabelsCsv) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for item in &csv.items {
        let key = if item.defect.is_some() {
            "(defect)".to_owned()
        } else {
            item.label.to_string()
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// The sequence of `stratum_sequence` written again the slow way: the
/// forced rows, then at every size a scan of all strata for the eligible one
/// with the largest `left / (more + 1)` (the quota method's rule as stated).
fn sequence_by_scan(sizes: &[usize], at_least_one: &[bool], rows: usize) -> Vec<usize> {
    let mut first: Vec<usize> = (0..sizes.len())
        .filter(|&h| at_least_one[h] && sizes[h] > 0)
        .collect();
    first.sort_by_key(|&h| (std::cmp::Reverse(sizes[h]), h));
    let mut sequence: Vec<usize> = first.iter().copied().take(rows).collect();
    let forced = first.len();
    let left: Vec<u128> = (0..sizes.len())
        .map(|h| (sizes[h] - usize::from(first.contains(&h))) as u128)
        .collect();
    let all: u128 = left.iter().sum();
    let mut more = vec![0u128; sizes.len()];
    for size in forced + 1..=rows {
        let s = (size - forced) as u128;
        let best = (0..sizes.len())
            .filter(|&h| more[h] < left[h] && more[h] * all < s * left[h])
            .max_by(|&x, &y| {
                (left[x] * (more[y] + 1))
                    .cmp(&(left[y] * (more[x] + 1)))
                    .then(left[x].cmp(&left[y]))
                    .then(y.cmp(&x))
            })
            .unwrap();
        more[best] += 1;
        sequence.push(best);
    }
    sequence
}

/// The sequence of a small example, from an independent Python reading of the
/// rule (no heaps, exact fractions):
///
/// ```python
/// from fractions import Fraction as F
/// def sequence(sizes, forced, rows):
///     first = sorted([h for h in range(len(sizes)) if forced[h] and sizes[h] > 0], key=lambda h: (-sizes[h], h))
///     seq = first[:rows]
///     Fn = len(first)
///     left = [sizes[h] - (1 if h in first else 0) for h in range(len(sizes))]
///     b = sum(left); more = [0] * len(sizes)
///     for s in range(Fn + 1, rows + 1):
///         elig = [h for h in range(len(sizes)) if more[h] < left[h] and F(more[h]) < F((s - Fn) * left[h], b)]
///         best = max(elig, key=lambda h: (F(left[h], more[h] + 1), left[h], -h))
///         seq.append(best); more[best] += 1
///     return seq
/// print(sequence([6, 3, 1], [1, 1, 1], 10))     # [0, 1, 2, 0, 0, 1, 0, 0, 0, 1]
/// print(sequence([5, 2, 1, 2], [1, 1, 1, 0], 10))  # [0, 1, 2, 0, 0, 3, 0, 3, 0, 1]
/// print(sequence([1, 97, 2], [1, 1, 1], 12))    # [1, 2, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]
/// ```
#[test]
fn the_sequence_of_small_examples_is_the_python_reference() {
    assert_eq!(
        stratum_sequence(&[6, 3, 1], &[true; 3], 10),
        [0, 1, 2, 0, 0, 1, 0, 0, 0, 1]
    );
    assert_eq!(
        stratum_sequence(&[5, 2, 1, 2], &[true, true, true, false], 10),
        [0, 1, 2, 0, 0, 3, 0, 3, 0, 1]
    );
    assert_eq!(
        stratum_sequence(&[1, 97, 2], &[true; 3], 12),
        [1, 2, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    );
}

#[test]
fn a_stratified_sample_gives_each_label_its_share_and_every_label_a_row() {
    // 60% cat, 30% dog, 10% fox: exactly proportional at 100 and at 10.
    let whole = csv_of(&[180, 90, 30], 0);
    for (rows, want) in [(100, [60, 30, 10]), (10, [6, 3, 1]), (300, [180, 90, 30])] {
        let sample = Sample::draw(&whole, 7, rows, true, None).unwrap();
        let counts = label_counts(&sample.take(whole.clone()));
        assert_eq!(
            [counts["cat"], counts["dog"], counts["fox"]],
            want,
            "{rows} rows"
        );
    }
    // 98 : 1 : 1 at 3 rows: each label one row (a uniform sample would
    // almost always miss the small ones).
    let skewed = csv_of(&[98, 1, 1], 0);
    let sample = Sample::draw(&skewed, 1, 3, true, None).unwrap();
    let counts = label_counts(&sample.take(skewed.clone()));
    assert_eq!([counts["cat"], counts["dog"], counts["fox"]], [1, 1, 1]);
    // Defective rows are a stratum of their own, in proportion, without the
    // one-row minimum: 20 of 200 rows, 2 of a 20-row sample.
    let defective = csv_of(&[120, 60], 20);
    let sample = Sample::draw(&defective, 3, 20, true, None).unwrap();
    assert_eq!(
        sample.strata.as_ref().unwrap().defective_rows,
        20,
        "{sample:?}"
    );
    let counts = label_counts(&sample.take(defective.clone()));
    assert_eq!(
        [counts["cat"], counts["dog"], counts["(defect)"]],
        [12, 6, 2]
    );
}

#[test]
fn a_stratified_sample_keeps_its_lines_and_each_labels_rows_follow_the_permutation() {
    let whole = csv_of(&[180, 90, 30], 0);
    let sample = Sample::draw(&whole, 42, 50, true, None).unwrap();
    let taken = sample.take(whole.clone());
    let permutation = order(300, 42);
    let rank = |row: usize| permutation.iter().position(|&r| r == row).unwrap();
    for label in ["cat", "dog", "fox"] {
        // The label's sampled rows are its first rows in the permutation, in
        // that order.
        let sampled: Vec<usize> = taken
            .items
            .iter()
            .filter(|i| &*i.label == label)
            .map(|i| i.line as usize - 2)
            .collect();
        let mut in_permutation: Vec<usize> = permutation
            .iter()
            .copied()
            .filter(|&r| &*whole.items[r].label == label)
            .collect();
        in_permutation.truncate(sampled.len());
        assert_eq!(sampled, in_permutation, "{label}");
        assert!(sampled.windows(2).all(|w| rank(w[0]) < rank(w[1])));
    }
    for (i, item) in taken.items.iter().enumerate() {
        assert_eq!(item.row, i);
        assert_eq!(item.image.as_str(), format!("img{}.png", item.line - 2));
    }
    assert_ne!(
        taken.items,
        Sample::draw(&whole, 43, 50, true, None)
            .unwrap()
            .take(whole.clone())
            .items,
        "another seed, other rows"
    );
}

#[test]
fn a_resumed_stratified_sample_stays_stratified_and_a_uniform_one_cannot_become_one() {
    let whole = csv_of(&[180, 90, 30], 0);
    let stratified = Sample::draw(&whole, 5, 40, true, None).unwrap();
    assert_eq!(
        stratified.strata,
        Some(Strata {
            labels: ["cat", "dog", "fox"]
                .iter()
                .zip([180, 90, 30])
                .map(|(l, n)| LabelRows {
                    label: l.to_string(),
                    csv_rows: n
                })
                .collect(),
            defective_rows: 0
        })
    );
    let resumed = Sample::draw(&whole, 9, 60, false, Some(&stratified)).unwrap();
    assert!(
        resumed.strata.is_some(),
        "stays stratified without the flag"
    );
    assert_eq!(resumed.seed, 5);
    let uniform = Sample::draw(&whole, 5, 40, false, None).unwrap();
    assert_eq!(
        Sample::draw(&whole, 5, 60, true, Some(&uniform)),
        Err(SampleError::NotStratified { rows: 40 })
    );
    // A run saved before stratified samples existed reads as uniform.
    let old: Sample = serde_json::from_str(
        r#"{"seed":1,"rows":2,"csvRows":3,"csvFingerprint":"00000000000000ff"}"#,
    )
    .unwrap();
    assert_eq!(old.strata, None);
    let text = serde_json::to_string(&uniform).unwrap();
    assert!(!text.contains("strata"), "{text}");
}

proptest! {
    /// Every prefix of the sequence gives each stratum its exact share at that
    /// size, `1 + (s - F) (N_h - 1) / (N - F)` (`(s - F) N_h / (N - F)` for the
    /// defective stratum), rounded down or up, and ends with every row; the
    /// forced rows come first, largest stratum first; the heap gives what a
    /// scan of every stratum gives.
    #[test]
    fn every_prefix_is_within_one_row_of_its_share(
        sizes in prop::collection::vec(0usize..120, 1..7),
        defective in 0usize..40,
    ) {
        let mut sizes = sizes;
        sizes.push(defective);
        let mut at_least_one = vec![true; sizes.len()];
        *at_least_one.last_mut().unwrap() = false;
        let total: usize = sizes.iter().sum();
        let sequence = stratum_sequence(&sizes, &at_least_one, total);
        prop_assert_eq!(&sequence, &sequence_by_scan(&sizes, &at_least_one, total));
        let forced: Vec<bool> = (0..sizes.len()).map(|h| at_least_one[h] && sizes[h] > 0).collect();
        let f = forced.iter().filter(|&&x| x).count();
        let left: Vec<i128> = (0..sizes.len()).map(|h| (sizes[h] - usize::from(forced[h])) as i128).collect();
        let all: i128 = left.iter().sum();
        let mut taken = vec![0usize; sizes.len()];
        for (i, &h) in sequence.iter().enumerate() {
            taken[h] += 1;
            let size = i + 1;
            if size < f {
                prop_assert!(forced[h] && taken[h] == 1);
                continue;
            }
            for g in 0..sizes.len() {
                // |more - (size - F) left / all| < 1, in integers.
                let more = (taken[g] - usize::from(forced[g])) as i128;
                let share = (size - f) as i128 * left[g];
                prop_assert!((more * all - share).abs() < all.max(1), "stratum {} at {}: {:?}", g, size, taken);
            }
        }
        prop_assert_eq!(taken, sizes);
    }

    /// A larger stratified sample only adds rows: its first `n` rows are the
    /// smaller sample's, in the same order; resumed from the smaller sample it
    /// is the same as drawn fresh.
    #[test]
    fn a_larger_stratified_sample_only_adds_rows(
        counts in prop::collection::vec(1usize..60, 1..6),
        defects in 0usize..10,
        seed in any::<u64>(),
        smaller in 0.0f64..1.0,
        larger in 0.0f64..1.0,
    ) {
        let whole = csv_of(&counts, defects);
        let total = whole.items.len();
        let n = 1 + (smaller * (total - 1) as f64) as usize;
        let m = n + (larger * (total - n) as f64) as usize;
        let small = Sample::draw(&whole, seed, n, true, None).unwrap();
        let large = Sample::draw(&whole, seed, m, true, None).unwrap();
        let resumed = Sample::draw(&whole, seed ^ 1, m, false, Some(&small)).unwrap();
        prop_assert_eq!(&resumed, &large);
        let a = small.take(whole.clone()).items;
        let b = large.take(whole.clone()).items;
        prop_assert_eq!(&b[..n], &a[..]);
        let mut lines: Vec<u64> = b.iter().map(|i| i.line).collect();
        lines.sort_unstable();
        lines.dedup();
        prop_assert_eq!(lines.len(), m, "each row once");
    }
}

/// Point and variance against samplics 0.6 (`TaylorEstimator`, a stratified
/// mean with each stratum's fpc), the interval against statsmodels' Wilson
/// interval at the effective size:
///
/// ```python
/// import numpy as np
/// from samplics import TaylorEstimator, PopParam
/// from statsmodels.stats.proportion import proportion_confint
/// def reference(strata):  # [(label, N_h, n_h, k_h)], every 0 < k_h < n_h < N_h
///     y, st, w = [], [], []
///     for label, N_h, n_h, k_h in strata:
///         y += [1.0] * k_h + [0.0] * (n_h - k_h); st += [label] * n_h; w += [N_h / n_h] * n_h
///     est = TaylorEstimator(PopParam.mean)
///     est.estimate(y=np.array(y), samp_weight=np.array(w), stratum=np.array(st),
///                  fpc={label: 1 - n_h / N_h for label, N_h, n_h, _ in strata})
///     p, v = float(est.point_est), float(est.variance)
///     n_eff = p * (1 - p) / v
///     low, high = proportion_confint(p * n_eff, n_eff, method="wilson")
///     return round(p, 4), round(v, 8), round(low, 4), round(high, 4)
/// print(reference([("cat", 600, 60, 54), ("dog", 300, 30, 21), ("fox", 100, 10, 7)]))
/// # (0.82, 0.00129079, 0.7396, 0.8796)
/// print(reference([("a", 5000, 50, 45), ("b", 3000, 30, 24), ("c", 2000, 20, 11)]))
/// # (0.8, 0.00146202, 0.7155, 0.8642)
/// ```
///
/// Where the textbook term says nothing (a label at 0% or 100%, one compared
/// row, none, every row compared), the module's rules written again in Python
/// (`by_hand`, the same imports):
///
/// ```python
/// import math
/// z = 1.959963984540054
/// def by_hand(strata):
///     N = sum(s[1] for s in strata); est = var = unknown = 0.0
///     for _, N_h, n_h, k_h in strata:
///         W = N_h / N
///         if n_h == 0: unknown += W; continue
///         p = k_h / n_h; est += W * p
///         if n_h >= N_h: continue
///         if 0 < k_h < n_h: spread = p * (1 - p) / (n_h - 1)
///         else:
///             c = (k_h + z * z / 2) / (n_h + z * z); spread = c * (1 - c) / (n_h + z * z)
///         var += W * W * (1 - n_h / N_h) * spread
///     if var == 0: low = high = est
///     elif est in (0.0, 1.0): low, high = est - z * math.sqrt(var), est + z * math.sqrt(var)
///     else:
///         n_eff = est * (1 - est) / var
///         low, high = proportion_confint(est * n_eff, n_eff, method="wilson")
///     return (round(est, 4) if unknown == 0 else None, round(var, 8),
///             round(max(low, 0), 4), round(min(high + unknown, 1), 4))
/// print(by_hand([("cat", 600, 60, 54), ("dog", 300, 30, 21), ("fox", 100, 10, 10)]))
/// # (0.85, 0.0011585, 0.7716, 0.9048)
/// print(by_hand([("cat", 600, 60, 54), ("dog", 300, 30, 21), ("fox", 100, 1, 0)]))
/// # (0.75, 0.00157019, 0.6654, 0.819)
/// print(by_hand([("cat", 600, 60, 54), ("dog", 300, 30, 21), ("fox", 100, 0, 0)]))
/// # (None, 0.00108079, 0.6806, 0.9085)
/// print(by_hand([("cat", 600, 60, 60), ("dog", 300, 30, 30)]))
/// # (1.0, 0.00034103, 0.9638, 1)
/// print(by_hand([("cat", 6, 6, 5), ("dog", 3, 3, 1)]))
/// # (0.6667, 0.0, 0.6667, 0.6667)
/// ```
#[test]
fn the_reweighted_estimate_matches_samplics() {
    let check = |strata: &[(&str, usize, u64, u64)], want: (Option<f64>, f64, f64, f64)| {
        let s = Strata {
            labels: strata
                .iter()
                .map(|&(label, csv_rows, _, _)| LabelRows {
                    label: label.into(),
                    csv_rows,
                })
                .collect(),
            defective_rows: 7,
        };
        let got = reweighted(&s, |label| {
            let row = strata.iter().find(|r| r.0 == label).unwrap();
            (row.3, row.2)
        });
        let interval = got.interval.unwrap();
        assert_eq!(got.agreement, want.0, "{strata:?}");
        assert!(
            (got.variance - want.1).abs() < 5e-9,
            "{strata:?}: {}",
            got.variance
        );
        assert_eq!(
            (interval.low, interval.high),
            (want.2, want.3),
            "{strata:?}"
        );
        got
    };
    let got = check(
        &[
            ("cat", 600, 60, 54),
            ("dog", 300, 30, 21),
            ("fox", 100, 10, 7),
        ],
        (Some(0.82), 0.001_290_79, 0.7396, 0.8796),
    );
    assert_eq!(got.strata[1].weight, 0.3);
    assert_eq!((got.strata[1].compared, got.strata[1].agreements), (30, 21));
    check(
        &[
            ("a", 5000, 50, 45),
            ("b", 3000, 30, 24),
            ("c", 2000, 20, 11),
        ],
        (Some(0.8), 0.001_462_02, 0.7155, 0.8642),
    );
    check(
        &[
            ("cat", 600, 60, 54),
            ("dog", 300, 30, 21),
            ("fox", 100, 10, 10),
        ],
        (Some(0.85), 0.001_158_5, 0.7716, 0.9048),
    );
    check(
        &[
            ("cat", 600, 60, 54),
            ("dog", 300, 30, 21),
            ("fox", 100, 1, 0),
        ],
        (Some(0.75), 0.001_570_19, 0.6654, 0.819),
    );
    check(
        &[
            ("cat", 600, 60, 54),
            ("dog", 300, 30, 21),
            ("fox", 100, 0, 0),
        ],
        (None, 0.001_080_79, 0.6806, 0.9085),
    );
    check(
        &[("cat", 600, 60, 60), ("dog", 300, 30, 30)],
        (Some(1.0), 0.000_341_03, 0.9638, 1.0),
    );
    check(
        &[("cat", 6, 6, 5), ("dog", 3, 3, 1)],
        (Some(0.6667), 0.0, 0.6667, 0.6667),
    );
    let none = reweighted(
        &Strata {
            labels: vec![LabelRows {
                label: "cat".into(),
                csv_rows: 3,
            }],
            defective_rows: 0,
        },
        |_| (0, 0),
    );
    assert_eq!((none.agreement, none.interval), (None, None));
}

/// The interval's coverage by simulation: fixed CSVs whose rows agree or not
/// (so the true agreement is known), 4,000 stratified samples each drawn by
/// the run's own code, each estimated as the summary does. Measured
/// (`cargo test -p shadow-core --lib holds_the_true -- --nocapture`): see the
/// printed table; each case must hold the truth in 93.5-98.5% of samples.
#[test]
fn the_reweighted_interval_holds_the_true_agreement_in_about_95_percent_of_samples() {
    let cases: [(&[usize], &[f64], usize); 6] = [
        (&[1200, 600, 200], &[0.95, 0.8, 0.5], 60),
        (&[1200, 600, 200], &[0.95, 0.8, 0.5], 400),
        (&[1800, 150, 50], &[0.98, 0.9, 0.7], 40),
        (&[1800, 150, 50], &[0.98, 0.9, 0.7], 200),
        (&[600, 300, 100], &[0.9, 0.7, 1.0], 30),
        (&[600, 300, 100], &[0.9, 0.7, 1.0], 300),
    ];
    for (counts, rates, rows) in cases {
        let whole = csv_of(counts, 0);
        // Row r agrees when a hash of it falls below its label's rate: fixed
        // per row, about the rate per label.
        let agrees: Vec<bool> = whole
            .items
            .iter()
            .map(|item| {
                let h = ["cat", "dog", "fox"]
                    .iter()
                    .position(|l| *l == &*item.label)
                    .unwrap();
                let u = (mix64(item.row as u64 ^ 0xabcd) >> 11) as f64 / (1u64 << 53) as f64;
                u < rates[h]
            })
            .collect();
        let truth = agrees.iter().filter(|&&a| a).count() as f64 / agrees.len() as f64;
        let strata = Strata::of(&whole);
        const SAMPLES: u64 = 4_000;
        let mut held = 0;
        for seed in 0..SAMPLES {
            let mut tally = std::collections::HashMap::<&str, (u64, u64)>::new();
            for row in strata.rows_in_order(&whole, seed, rows) {
                let entry = tally.entry(&whole.items[row].label).or_default();
                entry.0 += u64::from(agrees[row]);
                entry.1 += 1;
            }
            let got = reweighted(&strata, |label| tally.get(label).copied().unwrap_or((0, 0)));
            let interval = got.interval.unwrap();
            held += u64::from(interval.low <= truth && truth <= interval.high);
        }
        let coverage = held as f64 / SAMPLES as f64;
        println!(
            "{counts:?} at {rates:?}, {rows} rows: {:.1}%",
            coverage * 100.0
        );
        assert!(
            (0.935..=0.985).contains(&coverage),
            "{counts:?} {rows}: {coverage}"
        );
    }
}
