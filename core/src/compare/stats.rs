//! The paired statistics of a comparison, each a plain function of counts:
//! McNemar's exact test, Newcombe's interval for the difference of two paired
//! proportions, and the seeded paired bootstrap of per-label scores.

use rand::SeedableRng;
use rand_distr::{Binomial, Distribution};
use rand_pcg::Pcg64;

/// The standard normal quantile of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// McNemar's exact test: the two-sided binomial test of `b` against `c`, the
/// rows where only one side is right, under the null that either is equally
/// likely (`p = min(1, 2 P[X <= min(b, c)])`, `X ~ Bin(b + c, 1/2)`), as
/// statsmodels' `mcnemar(table, exact=True)`. 1 when no row is discordant.
///
/// The tail is summed from its largest term down, each term the previous times
/// `k / (n - k + 1)`, relative to the first (whose logarithm is summed), so it
/// neither overflows nor loses the small terms at a million rows.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    let m = b.min(c);
    if n == 0 || 2 * m == n {
        return 1.0;
    }
    // ln P[X = m] = ln C(n, m) - n ln 2, with ln C(n, m) = sum ln(1 + (n - m) / i),
    // summed with Neumaier's compensation: the two sides are ~n and cancel
    // to a few units, so plain sums would keep only 8 digits at 400,000 rows.
    let mut ln_first = -(n as f64) * std::f64::consts::LN_2;
    let mut lost = 0.0f64;
    for i in 1..=m {
        let term = ((n - m) as f64 / i as f64).ln_1p();
        let sum = ln_first + term;
        lost += if ln_first.abs() >= term.abs() {
            (ln_first - sum) + term
        } else {
            (term - sum) + ln_first
        };
        ln_first = sum;
    }
    let ln_first = ln_first + lost;
    // P[X <= m] / P[X = m]: 1 + (m / (n-m+1)) + (m (m-1)) / ((n-m+1)(n-m+2)) + ...
    let mut term = 1.0f64;
    let mut sum = 1.0f64;
    let mut k = m;
    while k > 0 {
        term *= k as f64 / (n - k + 1) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
        k -= 1;
    }
    (2.0 * (ln_first + sum.ln()).exp()).min(1.0)
}

/// The 95% Wilson score interval of `k` out of `n`, unrounded (`n > 0`).
fn wilson(k: u64, n: u64) -> (f64, f64) {
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let center = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// A paired 2x2 table: of `n` rows, `both` right on both sides, `only_first`
/// right on the first side only, `only_second` on the second only, `neither`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairedCounts {
    /// Right on both sides.
    pub both: u64,
    /// Right on the first side only.
    pub only_first: u64,
    /// Right on the second side only.
    pub only_second: u64,
    /// Right on neither.
    pub neither: u64,
}

impl PairedCounts {
    fn n(&self) -> u64 {
        self.both + self.only_first + self.only_second + self.neither
    }
}

/// The 95% interval of `p1 - p2`, the first side's rate minus the second's
/// over the same rows, by Newcombe's method 10 ("Improved confidence intervals
/// for the difference between binomial proportions based on paired data",
/// Stat Med 1998; 17:2635-50): each side's Wilson interval, combined with the
/// correlation `phi` of the pairs, which Newcombe corrects towards 0 when it is
/// positive (`max(ad - bc - n/2, 0) / sqrt(...)`); 0 when a margin is empty.
/// `None` for no rows.
pub fn newcombe_paired_interval(t: PairedCounts) -> Option<(f64, f64)> {
    let n = t.n();
    if n == 0 {
        return None;
    }
    let (first, second) = (t.both + t.only_first, t.both + t.only_second);
    let nf = n as f64;
    let (p1, p2) = (first as f64 / nf, second as f64 / nf);
    let (l1, u1) = wilson(first, n);
    let (l2, u2) = wilson(second, n);
    let margins = first as f64 * (n - first) as f64 * second as f64 * (n - second) as f64;
    let ad_bc = t.both as f64 * t.neither as f64 - t.only_first as f64 * t.only_second as f64;
    let phi = if margins == 0.0 {
        0.0
    } else if ad_bc > nf / 2.0 {
        (ad_bc - nf / 2.0) / margins.sqrt()
    } else if ad_bc >= 0.0 {
        0.0
    } else {
        ad_bc / margins.sqrt()
    };
    let spread = |x: f64, y: f64| (x * x - 2.0 * phi * x * y + y * y).max(0.0).sqrt();
    let theta = p1 - p2;
    Some((
        theta - spread(p1 - l1, u2 - p2),
        theta + spread(u1 - p1, p2 - l2),
    ))
}

/// How many bootstrap resamples a comparison draws.
pub const BOOTSTRAP_RESAMPLES: usize = 2_000;
/// The bootstrap's fixed seed: the same rows give the same intervals.
pub const BOOTSTRAP_SEED: u64 = 0x5eed_c0de;

/// Rows that share one (label, first answer, second answer) and how many there
/// are: the rows of a paired comparison folded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Triple {
    /// The human label.
    pub label: u32,
    /// The first side's answer.
    pub first: u32,
    /// The second side's answer.
    pub second: u32,
    /// How many rows.
    pub count: u64,
}

/// Precision, recall and F1 of one label: `None` where undefined in the full
/// data (never predicted, never the label).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Scores {
    /// `tp / predicted`.
    pub precision: Option<f64>,
    /// `tp / support`.
    pub recall: Option<f64>,
    /// Their harmonic mean (0 when both are 0).
    pub f1: Option<f64>,
}

#[derive(Clone, Copy, Default)]
struct Counts {
    tp: u64,
    predicted: u64,
    support: u64,
}

impl Counts {
    fn scores(&self) -> Scores {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let precision = ratio(self.tp, self.predicted);
        let recall = ratio(self.tp, self.support);
        let f1 = match (precision, recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        Scores {
            precision,
            recall,
            f1,
        }
    }
}

/// Per-label counts of both sides over `triples` weighted by `weights`.
fn label_counts(triples: &[Triple], weights: &[u64], labels: usize) -> Vec<[Counts; 2]> {
    let mut counts = vec![[Counts::default(); 2]; labels];
    for (t, &w) in triples.iter().zip(weights) {
        if w == 0 {
            continue;
        }
        let label = t.label as usize;
        for (side, answer) in [t.first, t.second].into_iter().enumerate() {
            if let Some(c) = counts.get_mut(label) {
                c[side].support += w;
            }
            if let Some(c) = counts.get_mut(answer as usize) {
                c[side].predicted += w;
            }
            if answer == t.label {
                if let Some(c) = counts.get_mut(label) {
                    c[side].tp += w;
                }
            }
        }
    }
    counts
}

/// One label's scores on both sides, and the 95% paired bootstrap interval of
/// each score's difference (second minus first).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelBootstrap {
    /// The first side's scores.
    pub first: Scores,
    /// The second side's scores.
    pub second: Scores,
    /// Intervals of the precision, recall and F1 differences; `None` where the
    /// difference is undefined in the full data.
    pub intervals: [Option<(f64, f64)>; 3],
}

/// Each of `labels` (indices `0..labels` of the answers' space) scored on both
/// sides over the rows `triples` fold, with percentile intervals from
/// [`BOOTSTRAP_RESAMPLES`] paired resamples of the rows.
///
/// Resampling `n` rows with replacement is drawing the number of copies of each
/// row from a multinomial; rows with the same (label, first, second) are
/// interchangeable, so it is the same to draw a multinomial over the distinct
/// triples with their counts as weights, done here as a chain of binomials
/// (`Bin(rows left, count / count left)`). The cost is then in the distinct
/// triples, not the rows: a million rows over ten labels take no longer than a
/// thousand. In a resample, a score whose denominator is 0 counts as 0 (as
/// scikit-learn's `zero_division=0`); the interval ends are the 2.5th and 97.5th
/// percentiles, linearly interpolated (numpy's default).
///
/// Only `scored` labels are bootstrapped (the others get `intervals` of `None`),
/// so that memory stays `scored x resamples`.
pub fn bootstrap_labels(
    triples: &[Triple],
    labels: usize,
    scored: &[bool],
    seed: u64,
    resamples: usize,
) -> Vec<LabelBootstrap> {
    let all: Vec<u64> = triples.iter().map(|t| t.count).collect();
    let full = label_counts(triples, &all, labels);
    let chosen: Vec<usize> = (0..labels)
        .filter(|&l| scored.get(l).copied().unwrap_or(false))
        .collect();
    // deltas[chosen index][metric] over the resamples.
    let mut deltas: Vec<[Vec<f64>; 3]> = chosen
        .iter()
        .map(|_| std::array::from_fn(|_| Vec::with_capacity(resamples)))
        .collect();
    let total: u64 = all.iter().sum();
    if total > 0 && !chosen.is_empty() {
        let mut rng = Pcg64::seed_from_u64(seed);
        let mut weights = vec![0u64; triples.len()];
        for _ in 0..resamples {
            let (mut rows_left, mut count_left) = (total, total);
            for (w, t) in weights.iter_mut().zip(triples) {
                *w = if rows_left == 0 || t.count == 0 {
                    0
                } else if t.count >= count_left {
                    rows_left
                } else {
                    let p = t.count as f64 / count_left as f64;
                    Binomial::new(rows_left, p)
                        .expect("0 < p < 1")
                        .sample(&mut rng)
                };
                rows_left -= *w;
                count_left -= t.count;
            }
            let counts = label_counts(triples, &weights, labels);
            for (slot, &label) in deltas.iter_mut().zip(&chosen) {
                let [first, second] = counts[label].map(|c| c.scores());
                let zero = |x: Option<f64>| x.unwrap_or(0.0);
                slot[0].push(zero(second.precision) - zero(first.precision));
                slot[1].push(zero(second.recall) - zero(first.recall));
                slot[2].push(zero(second.f1) - zero(first.f1));
            }
        }
    }
    let mut out: Vec<LabelBootstrap> = full
        .iter()
        .map(|[first, second]| LabelBootstrap {
            first: first.scores(),
            second: second.scores(),
            intervals: [None; 3],
        })
        .collect();
    for (mut slot, &label) in deltas.into_iter().zip(&chosen) {
        let point = out[label];
        let defined = [
            point.first.precision.is_some() && point.second.precision.is_some(),
            point.first.recall.is_some() && point.second.recall.is_some(),
            point.first.f1.is_some() && point.second.f1.is_some(),
        ];
        for (metric, values) in slot.iter_mut().enumerate() {
            if defined[metric] && !values.is_empty() {
                values.sort_by(f64::total_cmp);
                out[label].intervals[metric] =
                    Some((percentile(values, 2.5), percentile(values, 97.5)));
            }
        }
    }
    out
}

/// The `q`th percentile of sorted `values`, linearly interpolated between the
/// closest ranks (numpy's `percentile` default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let at = q / 100.0 * (sorted.len() - 1) as f64;
    let (below, frac) = (at.floor() as usize, at.fract());
    match sorted.get(below + 1) {
        Some(&next) => sorted[below] + frac * (next - sorted[below]),
        None => sorted[below],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// statsmodels 0.15.0, `mcnemar([[100, b], [c, 50]], exact=True).pvalue`:
    ///
    /// ```python
    /// from statsmodels.stats.contingency_tables import mcnemar
    /// for b, c in [(0,0),(1,0),(5,5),(3,12),(12,3),(9,2),(59,81),(412,480),
    ///              (4500,4700),(10,0),(200000,201500)]:
    ///     print(b, c, repr(mcnemar([[100, b], [c, 50]], exact=True).pvalue))
    /// ```
    #[test]
    fn mcnemar_matches_statsmodels_exact() {
        let want = [
            (0, 0, 1.0),
            (1, 0, 1.0),
            (5, 5, 1.0),
            (3, 12, 0.035_156_25),
            (12, 3, 0.035_156_25),
            (9, 2, 0.065_429_687_5),
            (59, 81, 0.075_550_828_752_656_56),
            (412, 480, 0.024_821_299_668_392_19),
            (4_500, 4_700, 0.038_006_880_018_679_6),
            (10, 0, 0.001_953_125),
            (200_000, 201_500, 0.017_996_125_533_935_804),
        ];
        for (b, c, p) in want {
            let got = mcnemar_exact(b, c);
            assert!(
                (got - p).abs() <= 1e-9 * p.max(1e-3),
                "b={b} c={c}: {got} != {p}"
            );
        }
        // Far in the tail: tiny, not NaN, not negative.
        let tiny = mcnemar_exact(0, 5_000);
        assert!((0.0..1e-300).contains(&tiny), "{tiny}");
    }

    /// Newcombe (1998) publishes, for the paired table a=20, b=12, c=2, d=16
    /// (n=50), method 10's interval 0.0562 to 0.3292 for the difference; the
    /// other rows are from this script, which follows the paper's formulas
    /// (statsmodels 0.15.0 for the Wilson intervals):
    ///
    /// ```python
    /// from math import sqrt
    /// from statsmodels.stats.proportion import proportion_confint
    /// def newcombe10(e, f, g, h):
    ///     n = e+f+g+h; p1, p2 = (e+f)/n, (e+g)/n
    ///     l1, u1 = proportion_confint(e+f, n, method="wilson")
    ///     l2, u2 = proportion_confint(e+g, n, method="wilson")
    ///     m = (e+f)*(g+h)*(e+g)*(f+h); A = e*h - f*g
    ///     phi = 0.0 if m == 0 or 0 <= A <= n/2 else ((A-n/2) if A > n/2 else A)/sqrt(m)
    ///     d1, d2, d3, d4 = p1-l1, u2-p2, u1-p1, p2-l2
    ///     return (p1-p2 - sqrt(d1*d1 - 2*phi*d1*d2 + d2*d2),
    ///             p1-p2 + sqrt(d3*d3 - 2*phi*d3*d4 + d4*d4))
    /// ```
    ///
    /// (The same formulas as R's contingencytables
    /// `Newcombe_square_and_add_CI_paired_2x2` and ratesci's `moverpairci(...,
    /// type="wilson", corc=TRUE)`.)
    #[test]
    fn newcombe_matches_the_published_example_and_the_formula() {
        let table = |both, only_first, only_second, neither| PairedCounts {
            both,
            only_first,
            only_second,
            neither,
        };
        let (low, high) = newcombe_paired_interval(table(20, 12, 2, 16)).unwrap();
        assert_eq!(
            ((low * 1e4).round(), (high * 1e4).round()),
            (562.0, 3292.0),
            "{low} {high}"
        );
        let want = [
            (
                table(20, 12, 2, 16),
                0.056_156_424_841_748_21,
                0.329_206_995_400_140_53,
            ),
            (
                table(1, 1, 7, 12),
                -0.506_920_226_686_141,
                -0.025_559_124_164_859_837,
            ),
            (
                table(59, 6, 16, 80),
                -0.118_621_195_638_709_99,
                -0.004_625_113_933_050_061,
            ),
            (
                table(1702, 0, 139, 159),
                -0.081_133_827_115_389_63,
                -0.058_601_757_076_932_31,
            ),
            (
                table(10, 0, 0, 0),
                -0.277_532_799_862_889_37,
                0.277_532_799_862_889_37,
            ),
            (
                table(5, 3, 3, 5),
                -0.291_038_417_109_865_44,
                0.291_038_417_109_865_44,
            ),
            (
                table(400, 40, 60, 500),
                -0.039_602_220_710_123_61,
                -0.000_353_325_352_954_965_4,
            ),
        ];
        for (t, low, high) in want {
            let (l, h) = newcombe_paired_interval(t).unwrap();
            assert!(
                (l - low).abs() < 1e-12 && (h - high).abs() < 1e-12,
                "{t:?}: {l} {h}"
            );
        }
        assert_eq!(newcombe_paired_interval(table(0, 0, 0, 0)), None);
    }

    fn triple(label: u32, first: u32, second: u32, count: u64) -> Triple {
        Triple {
            label,
            first,
            second,
            count,
        }
    }

    /// The rows of the reference script below, folded: 3 labels, 600 rows.
    fn reference_triples() -> Vec<Triple> {
        let mut counts = std::collections::BTreeMap::new();
        for i in 0..600u32 {
            let label = (i * 7) % 10 % 3;
            let first = if i % 5 == 0 || (label == 2 && i % 3 == 0) {
                (label + 1) % 3
            } else {
                label
            };
            let second = if i % 7 == 0 { (label + 2) % 3 } else { label };
            *counts.entry((label, first, second)).or_insert(0u64) += 1;
        }
        counts
            .into_iter()
            .map(|((l, f, s), c)| triple(l, f, s, c))
            .collect()
    }

    /// The scores are scikit-learn's; the intervals agree with a row-level
    /// paired bootstrap in numpy (20,000 resamples, another generator, so to
    /// within the Monte Carlo error of 2,000 resamples: 0.015):
    ///
    /// ```python
    /// import numpy as np
    /// from sklearn.metrics import precision_recall_fscore_support as prfs
    /// y, a, b = [], [], []
    /// for i in range(600):
    ///     l = (i * 7) % 10 % 3; y.append(l)
    ///     a.append((l + 1) % 3 if i % 5 == 0 or (l == 2 and i % 3 == 0) else l)
    ///     b.append((l + 2) % 3 if i % 7 == 0 else l)
    /// y, a, b = map(np.array, (y, a, b))
    /// sk = lambda t, p: np.array(prfs(t, p, labels=[0, 1, 2], zero_division=0)[:3])
    /// print(sk(y, a), sk(y, b))             # [metric][label]
    /// rng = np.random.default_rng(1); d = []
    /// for _ in range(20000):
    ///     i = rng.integers(0, 600, 600)
    ///     d.append(sk(y[i], b[i]) - sk(y[i], a[i]))
    /// lo, hi = np.percentile(d, [2.5, 97.5], axis=0)
    /// # precision, label 0: a 0.6429, b 0.8913, delta interval [0.1855, 0.3118]
    /// # recall, label 2:    a 0.4444, b 0.8556, interval [0.3212, 0.5]
    /// # F1, label 1:        a 0.8571, b 0.8587, interval [-0.0478, 0.0517]
    /// # recall, label 1:    a 1.0,    b 0.8611, interval [-0.19, -0.0899]
    /// ```
    ///
    /// (The script ran its loop with a vectorised copy of `sk`, checked equal
    /// to it on the full rows: scikit-learn in the loop takes minutes.)
    #[test]
    fn bootstrap_scores_match_scikit_learn_and_intervals_a_numpy_bootstrap() {
        let triples = reference_triples();
        let out = bootstrap_labels(&triples, 3, &[true; 3], BOOTSTRAP_SEED, BOOTSTRAP_RESAMPLES);
        let near = |got: f64, want: f64, tolerance: f64| {
            assert!((got - want).abs() <= tolerance, "{got} != {want}");
        };
        near(out[0].first.precision.unwrap(), 0.6429, 5e-5);
        near(out[0].second.precision.unwrap(), 0.8913, 5e-5);
        near(out[2].first.recall.unwrap(), 0.4444, 5e-5);
        near(out[2].second.recall.unwrap(), 0.8556, 5e-5);
        near(out[1].first.f1.unwrap(), 0.8571, 5e-5);
        near(out[1].second.f1.unwrap(), 0.8587, 5e-5);
        near(out[1].first.recall.unwrap(), 1.0, 1e-9);
        near(out[1].second.recall.unwrap(), 0.8611, 5e-5);
        for (label, metric, low, high) in [
            (0, 0, 0.1855, 0.3118),
            (2, 1, 0.3212, 0.5),
            (1, 2, -0.0478, 0.0517),
            (1, 1, -0.19, -0.0899),
        ] {
            let (l, h) = out[label].intervals[metric].unwrap();
            near(l, low, 0.015);
            near(h, high, 0.015);
        }
        // Seeded: the same rows give the same intervals.
        let again = bootstrap_labels(&triples, 3, &[true; 3], BOOTSTRAP_SEED, 2_000);
        assert_eq!(again, out);
    }

    /// A million rows are resampled as their distinct (label, first, second)
    /// triples (one binomial draw each, whatever their counts): the intervals
    /// narrow around the same differences as the rows grow (the time is in
    /// BENCHMARKS.md's compare scenario).
    #[test]
    fn a_million_rows_resample_as_their_distinct_triples() {
        let big: Vec<Triple> = reference_triples()
            .into_iter()
            .map(|t| Triple {
                count: t.count * 1_700,
                ..t
            })
            .collect();
        assert!(big.iter().map(|t| t.count).sum::<u64>() > 1_000_000);
        let out = bootstrap_labels(&big, 3, &[true, true, false], 7, 2_000);
        assert!(out[2].intervals.iter().all(Option::is_none), "not scored");
        let (low, high) = out[0].intervals[2].unwrap();
        // 1,700 times the rows: an interval ~41 times narrower around the same delta.
        let delta = out[0].second.f1.unwrap() - out[0].first.f1.unwrap();
        assert!(
            low < delta && delta < high && high - low < 0.01,
            "{low} {high}"
        );
    }

    #[test]
    fn percentiles_interpolate_as_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 2.5);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 4.0);
        assert!((percentile(&v, 2.5) - 1.075).abs() < 1e-12);
    }
}
