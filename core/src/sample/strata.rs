//! `--stratify`: a sample drawn by label, each label's share of the sample its
//! share of the CSV, and the order its rows go in.
//!
//! The strata are the labels of the rows without a defect, plus one more for
//! the rows with a defect (no usable image or label: they fail unsent, are
//! never compared and carry no weight in the reweighted estimate). That last
//! stratum is drawn in proportion like the others, so that a stratified sample
//! shows the CSV's defects as often as a uniform one would.
//!
//! **Allocation, and why not largest remainders.** The sample of `n` rows is
//! the first `n` of one stratified sequence, so a larger sample only adds rows
//! (its first `n` are the smaller sample's, in the same order) and every prefix
//! of the send order is itself a proportional sample: a run interrupted after
//! `k` rows holds a balanced sample of `k`. The sequence:
//!
//! 1. one row of each label first, the largest label first (ties in label
//!    order): every label with rows is in every sample of at least as many rows
//!    as there are labels (with fewer, the largest labels);
//! 2. then the rest in proportion to what is left of each stratum (`N_h - 1`
//!    rows of a label, every defective row): Balinski and Young's quota method
//!    ("The Quota Method of Apportionment", Amer. Math. Monthly 82, 1975), which
//!    gives the next row to the stratum with the largest `left_h / (taken_h + 1)`
//!    among those still below their exact share at the new size. Every prefix
//!    of `s` rows gives each stratum its exact share `1 + (s - F) (N_h - 1) /
//!    (N - F)` (F: the labels' one row each) rounded down or up, never further
//!    (a property test checks it).
//!
//! Largest-remainder (Hamilton) rounding of each `n` on its own also stays
//! within one row of the share, but it is not monotone in `n` (the Alabama
//! paradox: one more row can take a row away from a label), which would break
//! "a larger sample only adds rows"; the quota method is the standard rounding
//! that keeps both. Apart from the one-row minimum, the two agree on how many
//! rows each stratum gets, up to which strata round up.
//!
//! **Which rows.** A stratum's rows are taken in the order of the one seeded
//! permutation of the whole CSV ([`super::order`]): its first `k` rows of the
//! sample stay its first `k` in a larger one, and within the stratum the rows
//! are a uniform random sample. All the arithmetic is on integers: the same
//! sample on every platform.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};

use crate::input::LabelsCsv;

/// What a stratified sample keeps with the run: the CSV's rows of each label
/// (the weights of the reweighted estimate) and of defective rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strata {
    /// Each label of the rows without a defect, in label order, with its rows.
    pub labels: Vec<LabelRows>,
    /// Rows with a defect: a stratum of their own, weightless in the estimate.
    #[serde(default)]
    pub defective_rows: usize,
}

/// One label and the CSV's rows of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelRows {
    /// The label.
    pub label: String,
    /// The CSV's rows with it (rows without a defect).
    pub csv_rows: usize,
}

impl Strata {
    /// The strata of `csv`'s rows.
    pub fn of(csv: &LabelsCsv) -> Strata {
        let mut labels: BTreeMap<&str, usize> = BTreeMap::new();
        let mut defective_rows = 0;
        for item in &csv.items {
            if item.defect.is_some() {
                defective_rows += 1;
            } else {
                *labels.entry(&item.label).or_default() += 1;
            }
        }
        Strata {
            labels: labels
                .into_iter()
                .map(|(label, csv_rows)| LabelRows {
                    label: label.to_owned(),
                    csv_rows,
                })
                .collect(),
            defective_rows,
        }
    }

    /// The stratum of a row: its label's index, or the last for a defect.
    fn stratum(&self, label: &str, defective: bool) -> usize {
        if defective {
            return self.labels.len();
        }
        self.labels
            .binary_search_by(|l| l.label.as_str().cmp(label))
            .expect("the strata were counted from these rows (the fingerprint says so)")
    }

    /// The CSV rows (indices into `csv.items`) of the first `rows` of the
    /// stratified sequence drawn from `seed`, in send order.
    pub(crate) fn rows_in_order(&self, csv: &LabelsCsv, seed: u64, rows: usize) -> Vec<usize> {
        let strata = self.labels.len() + 1;
        let mut sizes: Vec<usize> = self.labels.iter().map(|l| l.csv_rows).collect();
        sizes.push(self.defective_rows);
        let mut at_least_one = vec![true; strata];
        at_least_one[strata - 1] = false;
        // Each stratum's rows in the order of the one permutation.
        let mut members: Vec<Vec<usize>> = sizes.iter().map(|&n| Vec::with_capacity(n)).collect();
        for row in super::order(csv.items.len(), seed) {
            let item = &csv.items[row];
            members[self.stratum(&item.label, item.defect.is_some())].push(row);
        }
        let mut taken = vec![0usize; strata];
        stratum_sequence(&sizes, &at_least_one, rows)
            .into_iter()
            .map(|h| {
                taken[h] += 1;
                members[h][taken[h] - 1]
            })
            .collect()
    }
}

/// The strata of the first `rows` picks (see the module's doc): strata
/// `at_least_one` get one pick each first, the largest first (ties: lower
/// index), then the quota method over the rows left. `rows` is at most the sum
/// of `sizes`.
pub(crate) fn stratum_sequence(sizes: &[usize], at_least_one: &[bool], rows: usize) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    assert!(rows <= total, "{rows} picks of {total} rows");
    let mut sequence = Vec::with_capacity(rows);
    let mut first: Vec<usize> = (0..sizes.len())
        .filter(|&h| at_least_one[h] && sizes[h] > 0)
        .collect();
    first.sort_by_key(|&h| (Reverse(sizes[h]), h));
    sequence.extend(first.iter().take(rows));
    let forced = first.len() as u64;
    // What is left of each stratum after its one row, and of all of them.
    let left: Vec<u64> = (0..sizes.len())
        .map(|h| (sizes[h] - usize::from(at_least_one[h] && sizes[h] > 0)) as u64)
        .collect();
    let all_left: u64 = left.iter().sum();
    // A stratum with `more` picks beyond its first may take one more at size
    // `s` while `more * all_left < (s - forced) * left`: from this size on.
    let eligible_from = |h: usize, more: u64| -> u64 {
        let quotient = u128::from(more) * u128::from(all_left) / u128::from(left[h]);
        forced + quotient as u64 + 1
    };
    let mut more = vec![0u64; sizes.len()];
    let mut waiting: BinaryHeap<Reverse<(u64, usize)>> = (0..sizes.len())
        .filter(|&h| left[h] > 0)
        .map(|h| Reverse((eligible_from(h, 0), h)))
        .collect();
    let mut eligible: BinaryHeap<Claim> = BinaryHeap::new();
    for size in forced + 1..=rows as u64 {
        while let Some(&Reverse((from, h))) = waiting.peek() {
            if from > size {
                break;
            }
            waiting.pop();
            eligible.push(Claim {
                left: left[h],
                next: more[h] + 1,
                stratum: h,
            });
        }
        // The shares at `size` exceed the picks made by exactly one row, so
        // some stratum is below its share.
        let Claim { stratum: h, .. } = eligible
            .pop()
            .expect("a stratum below its share at every size");
        sequence.push(h);
        more[h] += 1;
        if more[h] < left[h] {
            waiting.push(Reverse((eligible_from(h, more[h]), h)));
        }
    }
    sequence
}

/// A stratum's claim to the next row: `left / next` (the quota method's
/// priority), larger first; ties to the larger stratum, then the lower index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Claim {
    left: u64,
    next: u64,
    stratum: usize,
}

impl Ord for Claim {
    fn cmp(&self, other: &Claim) -> Ordering {
        let mine = u128::from(self.left) * u128::from(other.next);
        let theirs = u128::from(other.left) * u128::from(self.next);
        mine.cmp(&theirs)
            .then(self.left.cmp(&other.left))
            .then(other.stratum.cmp(&self.stratum))
    }
}

impl PartialOrd for Claim {
    fn partial_cmp(&self, other: &Claim) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
