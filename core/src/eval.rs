//! Evaluation, the point of shadow mode: how far the model's predictions agree
//! with the human labels.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::input::LabelSet;

pub mod calibration;
pub mod label_errors;
pub mod slices;

/// Largest label set whose full confusion matrix goes into the summary; beyond
/// it only the most frequent confusions are listed.
const DENSE_MATRIX_MAX_LABELS: usize = 100;

/// Running tally of (label, prediction) pairs. O(labels) memory plus one entry per
/// distinct confusion.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    agreed: Vec<u64>,
    actual: Vec<u64>,
    predicted: Vec<u64>,
    confusions: HashMap<(u32, u32), u64>,
}

impl Tally {
    pub(crate) fn new(labels: usize) -> Tally {
        Tally {
            agreed: vec![0; labels],
            actual: vec![0; labels],
            predicted: vec![0; labels],
            confusions: HashMap::new(),
        }
    }

    pub(crate) fn record(&mut self, label: usize, prediction: usize) {
        self.record_many(label, prediction, 1);
    }

    /// `times` rows of the same (label, prediction) pair.
    pub(crate) fn record_many(&mut self, label: usize, prediction: usize, times: u64) {
        self.actual[label] += times;
        self.predicted[prediction] += times;
        if label == prediction {
            self.agreed[label] += times;
        } else {
            *self
                .confusions
                .entry((label as u32, prediction as u32))
                .or_default() += times;
        }
    }

    pub(crate) fn compared(&self) -> u64 {
        self.actual.iter().sum()
    }

    pub(crate) fn agreements(&self) -> u64 {
        self.agreed.iter().sum()
    }

    pub(crate) fn evaluate(&self, labels: &LabelSet) -> Evaluation {
        let names = labels.names();
        let compared = self.compared();
        let agreements = self.agreements();
        let per_label: Vec<LabelScores> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let tp = self.agreed[i] as f64;
                let precision = ratio(tp, self.predicted[i] as f64);
                let recall = ratio(tp, self.actual[i] as f64);
                let f1 = match (precision, recall) {
                    (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
                    (Some(_), Some(_)) => Some(0.0),
                    _ => None,
                };
                LabelScores {
                    label: name.clone(),
                    support: self.actual[i],
                    predicted: self.predicted[i],
                    correct: self.agreed[i],
                    precision: precision.map(round4),
                    precision_interval: wilson_interval(self.agreed[i], self.predicted[i]),
                    recall: recall.map(round4),
                    recall_interval: wilson_interval(self.agreed[i], self.actual[i]),
                    f1: f1.map(round4),
                }
            })
            .collect();
        // As scikit-learn's classification_report: the labels that occur in the
        // truth or the predictions, an undefined score counting as 0.
        let scored: Vec<&LabelScores> = per_label
            .iter()
            .filter(|s| s.support > 0 || s.predicted > 0)
            .collect();
        let macro_of = |f: fn(&LabelScores) -> Option<f64>| {
            let vals: Vec<f64> = scored.iter().map(|s| f(s).unwrap_or(0.0)).collect();
            (!vals.is_empty()).then(|| round4(vals.iter().sum::<f64>() / vals.len() as f64))
        };
        let weighted_of = |f: fn(&LabelScores) -> Option<f64>| {
            let total: u64 = scored.iter().map(|s| s.support).sum();
            let sum: f64 = scored
                .iter()
                .map(|s| f(s).unwrap_or(0.0) * s.support as f64)
                .sum();
            (total > 0).then(|| round4(sum / total as f64))
        };
        let mut top: Vec<Confusion> = self
            .confusions
            .iter()
            .map(|(&(l, p), &count)| Confusion {
                label: names[l as usize].clone(),
                predicted: names[p as usize].clone(),
                count,
            })
            .collect();
        top.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.label.cmp(&b.label))
                .then_with(|| a.predicted.cmp(&b.predicted))
        });
        top.truncate(20);
        let matrix = (names.len() <= DENSE_MATRIX_MAX_LABELS).then(|| {
            (0..names.len())
                .map(|l| {
                    (0..names.len())
                        .map(|p| {
                            if l == p {
                                self.agreed[l]
                            } else {
                                self.confusions
                                    .get(&(l as u32, p as u32))
                                    .copied()
                                    .unwrap_or(0)
                            }
                        })
                        .collect()
                })
                .collect()
        });
        Evaluation {
            compared,
            agreements,
            agreement_rate: ratio(agreements as f64, compared as f64).map(round4),
            agreement_interval: wilson_interval(agreements, compared),
            kappa: self.kappa(),
            macro_precision: macro_of(|s| s.precision),
            macro_recall: macro_of(|s| s.recall),
            macro_f1: macro_of(|s| s.f1),
            weighted_precision: weighted_of(|s| s.precision),
            weighted_recall: weighted_of(|s| s.recall),
            weighted_f1: weighted_of(|s| s.f1),
            labels: names.to_vec(),
            confusion_matrix: matrix,
            top_confusions: top,
            per_label,
        }
    }
}

impl Tally {
    /// Cohen's kappa with its large-sample standard error (Fleiss, Cohen & Everitt
    /// 1969, as statsmodels' `cohens_kappa(...).std_kappa`). `None` when nothing was
    /// compared or chance agreement is total (one label only, on both sides).
    pub(crate) fn kappa(&self) -> Option<Kappa> {
        let n = self.compared() as f64;
        if n == 0.0 {
            return None;
        }
        let row = |i: usize| self.actual[i] as f64 / n;
        let col = |i: usize| self.predicted[i] as f64 / n;
        let labels = self.actual.len();
        let observed = self.agreements() as f64 / n;
        let chance: f64 = (0..labels).map(|i| row(i) * col(i)).sum();
        if chance >= 1.0 {
            return None;
        }
        let kappa = (observed - chance) / (1.0 - chance);
        let a: f64 = (0..labels)
            .map(|i| {
                let p = self.agreed[i] as f64 / n;
                p * (1.0 - (row(i) + col(i)) * (1.0 - kappa)).powi(2)
            })
            .sum();
        let b: f64 = self
            .confusions
            .iter()
            .map(|(&(l, p), &count)| {
                let (l, p) = (l as usize, p as usize);
                count as f64 / n * (col(l) + row(p)).powi(2)
            })
            .sum::<f64>()
            * (1.0 - kappa).powi(2);
        let c = (kappa - chance * (1.0 - kappa)).powi(2);
        let variance = ((a + b - c) / (n * (1.0 - chance).powi(2))).max(0.0);
        Some(Kappa {
            value: round4(kappa),
            standard_error: round4(variance.sqrt()),
        })
    }
}

/// The 95% Wilson score interval of `successes` out of `n`; `None` when `n` is 0.
/// Unlike the normal approximation it stays inside 0..1 and is honest at small
/// `n` and at rates near 0 or 1 (a 10/10 batch is not "100% ± 0").
pub fn wilson_interval(successes: u64, n: u64) -> Option<Interval> {
    const Z: f64 = 1.959_963_984_540_054;
    if n == 0 {
        return None;
    }
    let (k, n) = (successes as f64, n as f64);
    let p = k / n;
    let z2 = Z * Z;
    let center = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Interval {
        low: round4((center - half).max(0.0)),
        high: round4((center + half).min(1.0)),
    })
}

/// A 95% confidence interval of a rate, both ends in 0..1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Interval {
    /// Whether `rate` lies outside the interval.
    pub fn excludes(&self, rate: f64) -> bool {
        rate < self.low || rate > self.high
    }
}

/// Cohen's kappa: agreement corrected for the agreement expected by chance from
/// how often each label is used (1 = perfect, 0 = no better than chance).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kappa {
    /// The kappa.
    pub value: f64,
    /// Its large-sample standard error (a 95% interval is ± 1.96 of it).
    pub standard_error: f64,
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Prediction against label, over every successful item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// Items with both a label and a prediction.
    pub compared: u64,
    /// Of those, how many predictions equal the label.
    pub agreements: u64,
    /// `agreements / compared`, 0..1; null when nothing was compared.
    pub agreement_rate: Option<f64>,
    /// 95% Wilson interval of the agreement rate.
    pub agreement_interval: Option<Interval>,
    /// Cohen's kappa, chance-corrected agreement.
    pub kappa: Option<Kappa>,
    /// Unweighted mean of per-label precision over the labels that occur in the
    /// truth or the predictions (an undefined score counts as 0, as scikit-learn's).
    pub macro_precision: Option<f64>,
    /// Unweighted mean of per-label recall, over the same labels.
    pub macro_recall: Option<f64>,
    /// Unweighted mean of per-label F1, over the same labels.
    pub macro_f1: Option<f64>,
    /// Mean of per-label precision weighted by support.
    pub weighted_precision: Option<f64>,
    /// Mean of per-label recall weighted by support (equals the agreement rate).
    pub weighted_recall: Option<f64>,
    /// Mean of per-label F1 weighted by support.
    pub weighted_f1: Option<f64>,
    /// Row and column order of the matrix.
    pub labels: Vec<String>,
    /// `confusionMatrix[label][prediction]` counts; null for more than 100 labels.
    pub confusion_matrix: Option<Vec<Vec<u64>>>,
    /// The most frequent (label, prediction) disagreements, most frequent first.
    pub top_confusions: Vec<Confusion>,
    /// Precision, recall and F1 for each label.
    pub per_label: Vec<LabelScores>,
}

/// One kind of disagreement and how often it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Confusion {
    /// The human label.
    pub label: String,
    /// What the model said instead.
    pub predicted: String,
    /// How many items.
    pub count: u64,
}

/// Scores of one label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelScores {
    /// The label.
    pub label: String,
    /// Items carrying this label (among compared items).
    pub support: u64,
    /// Items the model gave this label.
    pub predicted: u64,
    /// Items with this label that the model got right.
    pub correct: u64,
    /// `correct / predicted`; null when never predicted.
    pub precision: Option<f64>,
    /// 95% Wilson interval of the precision.
    pub precision_interval: Option<Interval>,
    /// `correct / support`; null when the label never occurs.
    pub recall: Option<f64>,
    /// 95% Wilson interval of the recall.
    pub recall_interval: Option<Interval>,
    /// Harmonic mean of precision and recall; null when either is null.
    pub f1: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_a_hand_computed_example() {
        let labels = LabelSet::from_labels(["cat", "dog", "fox"]);
        let mut t = Tally::new(3);
        // cat: 3 items, 2 right, 1 called dog. dog: 2 items, 2 right. fox: never seen.
        for (l, p) in [(0, 0), (0, 0), (0, 1), (1, 1), (1, 1)] {
            t.record(l, p);
        }
        let e = t.evaluate(&labels);
        assert_eq!((e.compared, e.agreements), (5, 4));
        assert_eq!(e.agreement_rate, Some(0.8));
        let cat = &e.per_label[0];
        assert_eq!((cat.precision, cat.recall), (Some(1.0), Some(0.6667)));
        let dog = &e.per_label[1];
        assert_eq!(
            (dog.precision, dog.recall, dog.f1),
            (Some(0.6667), Some(1.0), Some(0.8))
        );
        let fox = &e.per_label[2];
        assert_eq!((fox.precision, fox.recall, fox.f1), (None, None, None));
        assert_eq!(
            e.confusion_matrix,
            Some(vec![vec![2, 1, 0], vec![0, 2, 0], vec![0, 0, 0]])
        );
        assert_eq!(e.top_confusions.len(), 1);
        assert_eq!(e.top_confusions[0].predicted, "dog");
        // Macro over the two labels that occur.
        let macro_recall = e.macro_recall.unwrap();
        assert!(
            (macro_recall - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-3,
            "{macro_recall}"
        );
    }

    /// The reference values come from scikit-learn 1.9.1 (`classification_report`,
    /// `cohen_kappa_score`) and statsmodels 0.15.0 (`proportion_confint(method=
    /// "wilson")`, `cohens_kappa(...).std_kappa`) for the same matrix, computed
    /// apart from this code.
    #[test]
    fn scores_match_scikit_learn_and_statsmodels() {
        let labels = LabelSet::from_labels(["cat", "dog", "fox", "owl"]);
        let matrix = [[50, 5, 3, 2], [4, 40, 6, 0], [2, 8, 25, 0], [0, 0, 0, 0]];
        let mut t = Tally::new(4);
        for (l, row) in matrix.iter().enumerate() {
            for (p, &count) in row.iter().enumerate() {
                for _ in 0..count {
                    t.record(l, p);
                }
            }
        }
        let e = t.evaluate(&labels);
        let near = |got: Option<f64>, want: f64| {
            let got = got.unwrap();
            assert!((got - want).abs() <= 5e-5, "{got} != {want}");
        };
        let interval = |got: Option<Interval>, low: f64, high: f64| {
            let got = got.unwrap();
            near(Some(got.low), low);
            near(Some(got.high), high);
        };
        assert_eq!((e.compared, e.agreements), (145, 115));
        near(e.agreement_rate, 0.793_103_448_275_862_1);
        interval(
            e.agreement_interval,
            0.720_023_502_889_544_8,
            0.851_053_942_020_462_1,
        );
        let kappa = e.kappa.unwrap();
        near(Some(kappa.value), 0.685_352_622_061_482_7);
        near(Some(kappa.standard_error), 0.050_334_660_433_284_38);
        near(e.macro_precision, 0.595_717_060_409_069_4);
        near(e.macro_recall, 0.586_904_761_904_761_9);
        near(e.macro_f1, 0.590_851_418_950_718_8);
        near(e.weighted_precision, 0.807_190_149_970_202_8);
        near(e.weighted_recall, 0.793_103_448_275_862_1);
        near(e.weighted_f1, 0.799_457_987_778_792_2);
        let want = [
            (
                "cat",
                0.892_857_142_857_142_9,
                0.833_333_333_333_333_4,
                0.862_068_965_517_241_3,
            ),
            ("dog", 0.754_716_981_132_075_5, 0.8, 0.776_699_029_126_213_6),
            (
                "fox",
                0.735_294_117_647_058_9,
                0.714_285_714_285_714_3,
                0.724_637_681_159_420_3,
            ),
        ];
        for (scores, (label, precision, recall, f1)) in e.per_label.iter().zip(want) {
            assert_eq!(scores.label, label);
            near(scores.precision, precision);
            near(scores.recall, recall);
            near(scores.f1, f1);
        }
        interval(
            e.per_label[0].precision_interval,
            0.785_315_548_289_285_3,
            0.949_960_644_288_829_3,
        );
        interval(
            e.per_label[0].recall_interval,
            0.719_683_868_363_854_7,
            0.906_868_230_208_085_5,
        );
        interval(
            e.per_label[2].recall_interval,
            0.549_450_651_368_173_8,
            0.836_734_637_635_653,
        );
        // Predicted twice, never the truth: precision 0 (0 to 0.66), recall undefined.
        let owl = &e.per_label[3];
        assert_eq!(
            (owl.support, owl.predicted, owl.precision, owl.recall),
            (0, 2, Some(0.0), None)
        );
        interval(owl.precision_interval, 0.0, 0.657_619_772_493_347);
        assert_eq!(owl.recall_interval, None);
    }

    #[test]
    fn wilson_is_bounded_and_kappa_is_undefined_for_one_label() {
        let all = wilson_interval(10, 10).unwrap();
        assert!(
            all.high == 1.0 && all.low > 0.6 && all.low < 0.75,
            "{all:?}"
        );
        assert_eq!(wilson_interval(0, 0), None);
        let none = wilson_interval(0, 3).unwrap();
        assert_eq!(none.low, 0.0);
        let mut t = Tally::new(2);
        t.record(0, 0);
        t.record(0, 0);
        assert_eq!(t.kappa(), None);
    }

    #[test]
    fn empty_tally_has_no_rates() {
        let e = Tally::new(2).evaluate(&LabelSet::from_labels(["a", "b"]));
        assert_eq!(e.agreement_rate, None);
        assert_eq!(e.macro_f1, None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// The interval holds the observed rate (to its rounding), stays in
            /// 0..1, and narrows as the same rate is seen over more items.
            #[test]
            fn wilson_holds_the_rate_and_narrows_with_n(k in 0u64..500, extra in 0u64..500) {
                let n = k + extra + 1;
                let i = wilson_interval(k, n).unwrap();
                let p = k as f64 / n as f64;
                prop_assert!(0.0 <= i.low && i.low <= i.high && i.high <= 1.0);
                prop_assert!(i.low <= p + 1e-4 && p - 1e-4 <= i.high, "{p} not in {i:?}");
                let wider = wilson_interval(k * 10, n * 10).unwrap();
                prop_assert!(wider.high - wider.low <= i.high - i.low + 1e-4);
            }

            /// Kappa is at most 1, is 1 exactly when every prediction agrees (with
            /// more than one label used), and its standard error is finite and
            /// not negative.
            #[test]
            fn kappa_is_at_most_one(pairs in proptest::collection::vec((0usize..4, 0usize..4), 1..200)) {
                let mut t = Tally::new(4);
                for &(l, p) in &pairs {
                    t.record(l, p);
                }
                if let Some(k) = t.kappa() {
                    prop_assert!(k.value <= 1.0 + 1e-9, "{k:?}");
                    prop_assert!(k.standard_error.is_finite() && k.standard_error >= 0.0);
                    let all_agree = pairs.iter().all(|(l, p)| l == p);
                    prop_assert_eq!(all_agree, (k.value - 1.0).abs() < 1e-9, "{:?}", k);
                }
                let e = t.evaluate(&LabelSet::from_labels(["a", "b", "c", "d"]));
                prop_assert_eq!(e.compared as usize, pairs.len());
                if let (Some(w), Some(rate)) = (e.weighted_recall, e.agreement_rate) {
                    prop_assert!((w - rate).abs() < 1e-3, "weighted recall {w} vs agreement {rate}");
                }
            }
        }
    }
}
