//! Slices: agreement, kappa and failures broken down by the values of a CSV
//! column that is neither the image, the label nor the id (a source, a camera,
//! a site). A model's failure often hides in one slice while the run's overall
//! figure looks fine; the slices come sorted worst first.
//!
//! A column with more than [`MAX_VALUES`] distinct values (a timestamp, a free
//! text) is not sliced: its tally is dropped as soon as it passes the cap, and
//! the summary says so.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{wilson_interval, Interval, Kappa, Tally};

/// Most distinct values a column may have to be sliced.
pub const MAX_VALUES: usize = 50;

/// The running tallies of every extra column.
#[derive(Clone, Debug, Default)]
pub(crate) struct SliceTallies {
    labels: usize,
    columns: Vec<ColumnTally>,
}

#[derive(Clone, Debug)]
struct ColumnTally {
    name: String,
    /// `None` once the column has passed [`MAX_VALUES`].
    values: Option<HashMap<Box<str>, ValueTally>>,
}

#[derive(Clone, Debug)]
struct ValueTally {
    rows: u64,
    failed: u64,
    eval: Tally,
}

impl SliceTallies {
    pub(crate) fn new(columns: &[String], labels: usize) -> SliceTallies {
        SliceTallies {
            labels,
            columns: columns
                .iter()
                .map(|name| ColumnTally {
                    name: name.clone(),
                    values: Some(HashMap::new()),
                })
                .collect(),
        }
    }

    /// A final row whose extra columns hold `values` (in the columns' order): a
    /// prediction of `compared` = `(label, prediction)`, or a failure.
    pub(crate) fn record(&mut self, values: &[Box<str>], compared: Option<(usize, usize)>) {
        let labels = self.labels;
        for (column, value) in self.columns.iter_mut().zip(values) {
            let Some(map) = &mut column.values else {
                continue;
            };
            if !map.contains_key(value) && map.len() == MAX_VALUES {
                column.values = None;
                continue;
            }
            let tally = map.entry(value.clone()).or_insert_with(|| ValueTally {
                rows: 0,
                failed: 0,
                eval: Tally::new(labels),
            });
            tally.rows += 1;
            match compared {
                Some((label, prediction)) => tally.eval.record(label, prediction),
                None => tally.failed += 1,
            }
        }
    }

    /// The slices of every column, each sorted by how far its agreement falls
    /// below `run_agreement` (worst first; slices with nothing compared last).
    pub(crate) fn slices(&self, run_agreement: Option<f64>) -> Vec<ColumnSlices> {
        self.columns
            .iter()
            .map(|column| {
                let Some(map) = &column.values else {
                    return ColumnSlices {
                        column: column.name.clone(),
                        too_many_values: true,
                        values: Vec::new(),
                    };
                };
                let mut values: Vec<Slice> = map
                    .iter()
                    .map(|(value, t)| Slice::of(value, t, run_agreement))
                    .collect();
                values.sort_by(|a, b| {
                    let key = |s: &Slice| s.gap.unwrap_or(f64::INFINITY);
                    key(a)
                        .total_cmp(&key(b))
                        .then_with(|| a.value.cmp(&b.value))
                });
                ColumnSlices {
                    column: column.name.clone(),
                    too_many_values: false,
                    values,
                }
            })
            .collect()
    }
}

/// One column's slices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnSlices {
    /// The column's header.
    pub column: String,
    /// More than [`MAX_VALUES`] distinct values: not sliced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub too_many_values: bool,
    /// Its values, worst agreement first.
    pub values: Vec<Slice>,
}

/// The rows whose column holds one value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slice {
    /// The value (an empty cell is `""`).
    pub value: String,
    /// Final rows with this value.
    pub rows: u64,
    /// Of them, failed (no prediction).
    pub failed: u64,
    /// `failed / rows`.
    pub failure_share: f64,
    /// Rows with a prediction to compare with the label.
    pub compared: u64,
    /// Of them, predictions equal to the label.
    pub agreements: u64,
    /// `agreements / compared`; null when nothing was compared.
    pub agreement_rate: Option<f64>,
    /// Its 95% Wilson interval.
    pub agreement_interval: Option<Interval>,
    /// Cohen's kappa within the slice.
    pub kappa: Option<Kappa>,
    /// `agreementRate` minus the run's: negative when the slice does worse.
    pub gap: Option<f64>,
}

impl Slice {
    fn of(value: &str, t: &ValueTally, run_agreement: Option<f64>) -> Slice {
        let (compared, agreements) = (t.eval.compared(), t.eval.agreements());
        let rate = (compared > 0).then(|| round4(agreements as f64 / compared as f64));
        Slice {
            value: value.to_owned(),
            rows: t.rows,
            failed: t.failed,
            failure_share: round4(t.failed as f64 / t.rows.max(1) as f64),
            compared,
            agreements,
            agreement_rate: rate,
            agreement_interval: wilson_interval(agreements, compared),
            kappa: t.eval.kappa(),
            gap: rate.zip(run_agreement).map(|(r, run)| round4(r - run)),
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the reference script below: `(site, label, prediction)`, a
    /// failure when the prediction is `None`.
    fn rows() -> Vec<(&'static str, usize, Option<usize>)> {
        (0..60)
            .map(|i| {
                let site = if i % 3 != 0 { "north" } else { "south" };
                let label = (i / 2) % 3;
                let prediction = match site {
                    "south" if i % 4 == 0 => (label + 1) % 3,
                    "north" if i % 7 == 0 => (label + 2) % 3,
                    _ => label,
                };
                (site, label, (i % 11 != 0).then_some(prediction))
            })
            .collect()
    }

    /// Each slice's figures are those of its rows alone, checked against
    /// scikit-learn 1.5 (`cohen_kappa_score`) on the same rows:
    ///
    /// ```python
    /// from sklearn.metrics import cohen_kappa_score
    /// rows = []
    /// for i in range(60):
    ///     site = "north" if i % 3 else "south"
    ///     label = (i // 2) % 3
    ///     if site == "south": pred = (label + 1) % 3 if i % 4 == 0 else label
    ///     else: pred = label if i % 7 else (label + 2) % 3
    ///     rows.append((site, label, None if i % 11 == 0 else pred))
    /// for s in ["north", "south"]:
    ///     comp = [x for x in rows if x[0] == s and x[2] is not None]
    ///     print(s, cohen_kappa_score([x[1] for x in comp], [x[2] for x in comp]))
    /// # north: rows 40, failed 4, compared 36, agree 30, kappa 0.7333
    /// # south: rows 20, failed 2, compared 18, agree 14, kappa 0.5556
    /// # run agreement 44/54 = 0.8148
    /// ```
    #[test]
    fn each_slice_holds_its_own_rows_figures_worst_first() {
        let mut tallies = SliceTallies::new(&["site".into()], 3);
        for (site, label, prediction) in rows() {
            tallies.record(&[site.into()], prediction.map(|p| (label, p)));
        }
        let columns = tallies.slices(Some(0.8148));
        assert_eq!(columns.len(), 1);
        let found: Vec<_> = columns[0]
            .values
            .iter()
            .map(|v| {
                let kappa = v.kappa.unwrap().value;
                (
                    v.value.as_str(),
                    v.rows,
                    v.failed,
                    v.compared,
                    v.agreements,
                    kappa,
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("south", 20, 2, 18, 14, 0.5556),
                ("north", 40, 4, 36, 30, 0.7333)
            ]
        );
        let south = &columns[0].values[0];
        assert_eq!(south.agreement_rate, Some(0.7778));
        assert_eq!(south.gap, Some(-0.037));
        assert_eq!(south.failure_share, 0.1);
        let interval = south.agreement_interval.unwrap();
        assert!(interval.low < 0.7778 && 0.7778 < interval.high);
    }

    #[test]
    fn a_column_with_too_many_values_is_not_sliced_and_others_still_are() {
        let mut tallies = SliceTallies::new(&["taken_at".into(), "site".into()], 2);
        for i in 0..=MAX_VALUES {
            let values: [Box<str>; 2] = [format!("t{i}").into(), "north".into()];
            tallies.record(&values, Some((0, 0)));
        }
        let columns = tallies.slices(Some(1.0));
        assert!(columns[0].too_many_values && columns[0].values.is_empty());
        assert!(!columns[1].too_many_values);
        assert_eq!(columns[1].values[0].rows, MAX_VALUES as u64 + 1);
    }
}
