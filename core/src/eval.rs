//! Evaluation, the point of shadow mode: how far the model's predictions agree
//! with the human labels.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::input::LabelSet;

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
        self.actual[label] += 1;
        self.predicted[prediction] += 1;
        if label == prediction {
            self.agreed[label] += 1;
        } else {
            *self
                .confusions
                .entry((label as u32, prediction as u32))
                .or_default() += 1;
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
                    recall: recall.map(round4),
                    f1: f1.map(round4),
                }
            })
            .collect();
        let scored: Vec<&LabelScores> = per_label.iter().filter(|s| s.support > 0).collect();
        let macro_of = |f: fn(&LabelScores) -> Option<f64>| {
            let vals: Vec<f64> = scored.iter().map(|s| f(s).unwrap_or(0.0)).collect();
            (!vals.is_empty()).then(|| round4(vals.iter().sum::<f64>() / vals.len() as f64))
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
            macro_precision: macro_of(|s| s.precision),
            macro_recall: macro_of(|s| s.recall),
            macro_f1: macro_of(|s| s.f1),
            labels: names.to_vec(),
            confusion_matrix: matrix,
            top_confusions: top,
            per_label,
        }
    }
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
    /// Unweighted mean of per-label precision over labels that occur.
    pub macro_precision: Option<f64>,
    /// Unweighted mean of per-label recall over labels that occur.
    pub macro_recall: Option<f64>,
    /// Unweighted mean of per-label F1 over labels that occur.
    pub macro_f1: Option<f64>,
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
    /// `correct / support`; null when the label never occurs.
    pub recall: Option<f64>,
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

    #[test]
    fn empty_tally_has_no_rates() {
        let e = Tally::new(2).evaluate(&LabelSet::from_labels(["a", "b"]));
        assert_eq!(e.agreement_rate, None);
        assert_eq!(e.macro_f1, None);
    }
}
