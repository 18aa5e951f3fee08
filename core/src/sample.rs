//! A seeded uniform random sample of a labels CSV's rows (`--sample N` or a
//! share), and the agreement's interval for the whole CSV it estimates.
//!
//! The sample is the first `n` rows of one permutation of all the CSV's rows,
//! drawn from the run's seed by a Fisher–Yates shuffle of our own (not a
//! crate's, whose algorithm may change between versions): the same seed and
//! row count give the same order on every platform and version, so a resumed
//! run rebuilds the same sample and a larger sample of the same seed only adds
//! rows (the first `n` of the permutation stay the first `n`).
//!
//! The sampled rows are handed to the run in that order, numbered `0..n` as
//! the run's rows; each keeps its own CSV line (and image), so every result
//! names the true CSV line.
//!
//! With `--stratify` the sample is drawn by label instead ([`strata`]): each
//! label's share of the sample its share of the CSV, the rows sent so that
//! every prefix is proportional too, and the agreement reweighted to the CSV's
//! labels ([`reweighted`]). Without it every row is equally likely to be drawn
//! and nothing is weighted.

use serde::{Deserialize, Serialize};

use crate::eval::Interval;
use crate::hash::{mix64, splitmix64};
use crate::input::{Item, LabelsCsv};

pub mod reweighted;
pub mod strata;

pub use reweighted::StratumReport;
pub use strata::{LabelRows, Strata};
mod for_run;
pub use for_run::RunSampleError;

/// The sample a run is made of, kept in its config (so its journal header and
/// summary) so that a resumed run rebuilds the same one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// The seed of the permutation (the run's `--seed`).
    pub seed: u64,
    /// Rows sampled.
    pub rows: usize,
    /// Data rows in the CSV when the sample was drawn.
    pub csv_rows: usize,
    /// A digest of every row's line, image and label ([`fingerprint`]): a
    /// resumed sample over a CSV whose content changed is refused.
    pub csv_fingerprint: String,
    /// `--stratify`: the CSV's rows of each label (the strata the sample was
    /// drawn by, and the weights of the reweighted estimate). `None` for a
    /// uniform sample (and in runs saved before stratified samples existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strata: Option<Strata>,
}

/// The size asked for: a number of rows or a share of the CSV.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SampleSize {
    /// This many rows (at least 1).
    Rows(usize),
    /// This share of the rows, in `(0, 1]`, rounded up to a whole row.
    Share(f64),
}

/// Why a sample cannot be drawn or resumed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SampleError {
    /// More rows asked than the CSV has.
    #[error("--sample {asked}: the CSV has only {csv_rows} rows")]
    LargerThanCsv {
        /// Rows asked.
        asked: usize,
        /// Rows in the CSV.
        csv_rows: usize,
    },
    /// The CSV's row count changed since the saved run drew its sample.
    #[error(
        "the run sampled its rows from a CSV of {saved} rows; the CSV now has {now}: \
         the sample cannot be rebuilt (restore the CSV, or start a new run)"
    )]
    RowCountChanged {
        /// Rows when the sample was drawn.
        saved: usize,
        /// Rows now.
        now: usize,
    },
    /// Same row count, different content.
    #[error(
        "the CSV's content changed since the run sampled it (same {rows} rows, but a \
         line, image or label differs; fingerprint {saved} then, {now} now): restore \
         the CSV, or start a new run"
    )]
    ContentChanged {
        /// Rows in both.
        rows: usize,
        /// Fingerprint then.
        saved: String,
        /// Fingerprint now.
        now: String,
    },
    /// A resumed run asked for fewer rows than it has sampled already.
    #[error(
        "--sample {asked}: the run has already sampled {saved} rows; a resumed run can \
         only add rows (give --sample {saved} or more, or leave it out)"
    )]
    Smaller {
        /// Rows asked now.
        asked: usize,
        /// Rows sampled before.
        saved: usize,
    },
    /// `--stratify` on resuming a uniform sample.
    #[error(
        "--stratify: the run's sample of {rows} rows was drawn uniformly, not by label; \
         a stratified sample is a new run (give the CSV without --resume)"
    )]
    NotStratified {
        /// Rows of the saved sample.
        rows: usize,
    },
}

impl SampleSize {
    /// `5000` (rows) or `0.1` (a share in `(0, 1]`; `1.0` is the whole CSV).
    pub fn parse(text: &str) -> Result<SampleSize, String> {
        let text = text.trim();
        if let Ok(rows) = text.parse::<usize>() {
            return match rows {
                0 => Err("a sample of 0 rows: give at least 1 row, or a share in (0, 1]".into()),
                1 if text.contains('.') => Ok(SampleSize::Share(1.0)),
                rows => Ok(SampleSize::Rows(rows)),
            };
        }
        match text.parse::<f64>() {
            Ok(share) if share > 0.0 && share <= 1.0 => Ok(SampleSize::Share(share)),
            Ok(_) => Err(format!(
                "{text:?} is neither a whole number of rows nor a share in (0, 1] \
                 (e.g. 5000 or 0.1)"
            )),
            Err(_) => Err(format!(
                "{text:?} is not a number: give rows (e.g. 5000) or a share in (0, 1] (e.g. 0.1)"
            )),
        }
    }

    /// The rows it is of a CSV of `csv_rows` rows.
    pub fn rows_of(self, csv_rows: usize) -> Result<usize, SampleError> {
        match self {
            SampleSize::Rows(asked) if asked > csv_rows => {
                Err(SampleError::LargerThanCsv { asked, csv_rows })
            }
            SampleSize::Rows(asked) => Ok(asked),
            SampleSize::Share(share) => {
                Ok(((share * csv_rows as f64).ceil() as usize).clamp(csv_rows.min(1), csv_rows))
            }
        }
    }
}

impl Sample {
    /// The sample of `rows` rows of `csv` by `seed`, by label when `stratify`;
    /// with `saved` (a resumed run's), refused when the CSV changed since, `rows`
    /// is smaller than before or `stratify` is asked of a uniform sample (a
    /// stratified one stays stratified without it).
    pub fn draw(
        csv: &LabelsCsv,
        seed: u64,
        rows: usize,
        stratify: bool,
        saved: Option<&Sample>,
    ) -> Result<Sample, SampleError> {
        let csv_rows = csv.items.len();
        let csv_fingerprint = fingerprint(csv);
        if let Some(saved) = saved {
            if saved.csv_rows != csv_rows {
                return Err(SampleError::RowCountChanged {
                    saved: saved.csv_rows,
                    now: csv_rows,
                });
            }
            if saved.csv_fingerprint != csv_fingerprint {
                return Err(SampleError::ContentChanged {
                    rows: csv_rows,
                    saved: saved.csv_fingerprint.clone(),
                    now: csv_fingerprint,
                });
            }
            if rows < saved.rows {
                return Err(SampleError::Smaller {
                    asked: rows,
                    saved: saved.rows,
                });
            }
            if stratify && saved.strata.is_none() {
                return Err(SampleError::NotStratified { rows: saved.rows });
            }
        }
        let stratify = stratify || saved.is_some_and(|s| s.strata.is_some());
        if rows > csv_rows {
            return Err(SampleError::LargerThanCsv {
                asked: rows,
                csv_rows,
            });
        }
        Ok(Sample {
            seed: saved.map_or(seed, |s| s.seed),
            rows,
            csv_rows,
            csv_fingerprint,
            strata: stratify.then(|| Strata::of(csv)),
        })
    }

    /// The CSV cut down to this sample: its rows in permutation order (a
    /// stratified sample's in its stratified order), numbered `0..rows`, each
    /// keeping its CSV line. The labels stay the whole CSV's (a label no sampled
    /// row has is still one the model may answer).
    pub fn take(&self, csv: LabelsCsv) -> LabelsCsv {
        let rows = match &self.strata {
            Some(strata) => strata.rows_in_order(&csv, self.seed, self.rows),
            None => order(csv.items.len(), self.seed),
        };
        let LabelsCsv { items, mut outline } = csv;
        let mut slots: Vec<Option<Item>> = items.into_iter().map(Some).collect();
        let items: Vec<Item> = rows
            .into_iter()
            .take(self.rows)
            .enumerate()
            .map(|(position, row)| {
                let mut item = slots[row]
                    .take()
                    .expect("a permutation names each row once");
                item.row = position;
                item
            })
            .collect();
        outline.rows = items.len();
        outline.defects = items.iter().filter(|i| i.defect.is_some()).count();
        LabelsCsv { items, outline }
    }
}

/// The permutation of `0..rows` drawn from `seed`: a Fisher–Yates shuffle
/// (position `i` takes a uniform pick of the rows not yet placed), its picks
/// from the splitmix64 stream of `seed`. An index below `m` is taken as the high
/// half of a 64×64-bit product (Lemire), whose bias is below `m / 2^64`.
pub fn order(rows: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows).collect();
    let mut state = mix64(seed);
    for i in 0..rows.saturating_sub(1) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let draw = mix64(state);
        let left = (rows - i) as u64;
        let j = i + ((u128::from(draw) * u128::from(left)) >> 64) as usize;
        order.swap(i, j);
    }
    order
}

/// A 64-bit digest of every row's line, image, label and whether it has a
/// defect, in file order, as 16 hex digits.
pub fn fingerprint(csv: &LabelsCsv) -> String {
    let mut h: u64 = splitmix64(csv.items.len() as u64);
    let mut eat = |bytes: &[u8]| {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = mix64(h ^ u64::from_le_bytes(word)).wrapping_add(chunk.len() as u64);
        }
        h = splitmix64(h);
    };
    for item in &csv.items {
        eat(&item.line.to_le_bytes());
        eat(item.image.as_str().as_bytes());
        eat(item.label.as_bytes());
        eat(&[u8::from(item.defect.is_some())]);
    }
    format!("{h:016x}")
}

/// What the summary says of a sampled run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SampleReport {
    /// Rows sampled.
    pub rows: usize,
    /// Rows in the CSV.
    pub csv_rows: usize,
    /// Rows compared so far (with a label and a prediction): what the figures
    /// are estimated from (fewer than `rows` after failures, or when
    /// `--until-interval` stopped the run early).
    pub compared: u64,
    /// The seed of the permutation.
    pub seed: u64,
    /// The 95% interval of the agreement over the whole CSV, from the rows
    /// compared so far, with the finite-population correction
    /// ([`finite_population_interval`]; for a stratified sample, the reweighted
    /// agreement's, [`reweighted`]).
    pub agreement_interval_for_csv: Option<Interval>,
    /// How that interval is computed, in words.
    pub method: String,
    /// The sample was drawn by label (`--stratify`). Left out when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stratified: bool,
    /// A stratified sample's agreement reweighted to the CSV's labels,
    /// `Σ (N_h / N) p_h`; `None` for a uniform sample, or while a label has no
    /// compared row (then the interval holds whatever it agrees).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stratified_agreement: Option<f64>,
    /// A stratified sample's labels: the CSV's rows, weight, rows compared and
    /// agreeing of each. Empty (left out) for a uniform sample.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strata: Vec<StratumReport>,
}

impl SampleReport {
    /// The report of `sample` after `evaluation` (its rows compared so far,
    /// each label's among them for a stratified sample).
    pub fn of(sample: &Sample, evaluation: &crate::eval::Evaluation) -> SampleReport {
        SampleReport::of_counts(
            sample,
            evaluation.agreements,
            evaluation.compared,
            |label| {
                evaluation
                    .per_label
                    .iter()
                    .find(|s| s.label == label)
                    .map_or((0, 0), |s| (s.correct, s.support))
            },
        )
    }

    /// The report from counts: `agreements` of `compared` rows, and each
    /// label's `(agreeing, compared)` rows (read only for a stratified sample).
    pub fn of_counts(
        sample: &Sample,
        agreements: u64,
        compared: u64,
        per_label: impl Fn(&str) -> (u64, u64),
    ) -> SampleReport {
        let mut report = SampleReport {
            rows: sample.rows,
            csv_rows: sample.csv_rows,
            compared,
            seed: sample.seed,
            agreement_interval_for_csv: finite_population_interval(
                agreements,
                compared,
                sample.csv_rows as u64,
            ),
            method: "Wilson score interval at the effective size n(N-1)/(N-n) \
                     (finite-population correction; exact when n = N)"
                .into(),
            stratified: false,
            stratified_agreement: None,
            strata: Vec::new(),
        };
        if let Some(strata) = &sample.strata {
            let estimate = reweighted::reweighted(strata, per_label);
            report.stratified = true;
            report.agreement_interval_for_csv = estimate.interval;
            report.stratified_agreement = estimate.agreement;
            report.strata = estimate.strata;
            report.method = "stratified by label: sum of W_h p_h with W_h = N_h/N over the \
                             CSV's labels; Wilson score interval at the effective size \
                             p(1-p)/v, v = sum W_h^2 (1 - n_h/N_h) p_h(1-p_h)/(n_h-1) \
                             (a label at 0% or 100% counts with the Agresti-Coull variance; \
                             one with no compared row widens the interval by its weight)"
                .into();
        }
        report
    }

    /// "estimated from 100 of 300 rows" (the rows compared), and ", stratified
    /// by label" for a stratified sample.
    pub fn words(&self) -> String {
        let by_label = if self.stratified {
            ", stratified by label"
        } else {
            ""
        };
        format!(
            "estimated from {} of {} rows{by_label}",
            self.compared, self.csv_rows
        )
    }
}

/// The 95% interval of the agreement rate over a population of `population`
/// rows from `successes` of `n` rows drawn without replacement: the Wilson score
/// interval at the effective sample size `n_eff = n (N - 1) / (N - n)` (the
/// variance of a proportion drawn without replacement is the binomial one times
/// `(N - n) / (N - 1)`), with `p = successes / n`. When `n = N` the rate is
/// known exactly and the interval is the point. `None` when `n` is 0.
///
/// Checked against statsmodels 0.14 (`proportion_confint(p*neff, neff,
/// method="wilson")` accepts fractional counts):
///
/// ```python
/// from statsmodels.stats.proportion import proportion_confint
/// for k, n, N in [(90, 100, 300), (900, 1000, 1_000_000), (45, 50, 60)]:
///     neff = n * (N - 1) / (N - n)
///     print(k, n, N, [round(x, 4) for x in proportion_confint(k / n * neff, neff, method="wilson")])
/// # 90 100 300 [0.8415, 0.9385]
/// # 900 1000 1000000 [0.8799, 0.9171]
/// # 45 50 60 [0.8605, 0.9293]
/// ```
pub fn finite_population_interval(successes: u64, n: u64, population: u64) -> Option<Interval> {
    const Z: f64 = 1.959_963_984_540_054;
    if n == 0 {
        return None;
    }
    let p = successes as f64 / n as f64;
    if n >= population {
        let p = round4(p);
        return Some(Interval { low: p, high: p });
    }
    let n_eff = n as f64 * (population as f64 - 1.0) / (population - n) as f64;
    let z2 = Z * Z;
    let center = (p + z2 / (2.0 * n_eff)) / (1.0 + z2 / n_eff);
    let half = Z / (1.0 + z2 / n_eff) * (p * (1.0 - p) / n_eff + z2 / (4.0 * n_eff * n_eff)).sqrt();
    Some(Interval {
        low: round4((center - half).max(0.0)),
        high: round4((center + half).min(1.0)),
    })
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod stratified_tests;
#[cfg(test)]
mod tests;
