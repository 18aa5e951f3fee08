//! The running tally of paired rows: each row folded into its (label, A's
//! answer, B's answer) count, from which every figure is computed at the end,
//! and a bounded choice of rows to show.

use std::collections::{BinaryHeap, HashMap};

use crate::eval::Tally;
use crate::input::LabelSet;

use super::stats::{
    bootstrap_labels, mcnemar_exact, newcombe_paired_interval, PairedCounts, Triple,
    BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED,
};
use super::{
    Bounds, Cell, CellKind, DeltaScores, LabelDelta, McNemar, PairedTable, ScoreDelta, SideScores,
};

/// A side's answer for a row that failed (no answer to compare).
pub(crate) const FAILED: u32 = u32::MAX;

/// Labels bootstrapped at most (the most frequent); the others get their
/// differences without an interval.
pub const MAX_BOOTSTRAP_LABELS: usize = 200;

/// The answers a comparison meets, each a number: the labels, and (for a
/// baseline column) the values outside them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Categories {
    names: Vec<String>,
    /// A label of the CSV (not a baseline value outside the labels).
    is_label: Vec<bool>,
    index: HashMap<String, u32>,
}

impl Categories {
    /// The number of `name`, added if new; a name met once as a label is one.
    pub(crate) fn intern(&mut self, name: &str, is_label: bool) -> u32 {
        if let Some(&i) = self.index.get(name) {
            self.is_label[i as usize] |= is_label;
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.is_label.push(is_label);
        self.index.insert(name.to_owned(), i);
        i
    }

    /// Whether answer `i` is a label of the CSV.
    pub(crate) fn is_label(&self, i: u32) -> bool {
        self.is_label.get(i as usize).copied().unwrap_or(false)
    }

    pub(crate) fn name(&self, i: u32) -> Option<&str> {
        self.names.get(i as usize).map(String::as_str)
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

/// A row as the lists and the results table name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RowRef {
    /// A's 0-based data row (the order rows are chosen in).
    pub(crate) row: u64,
    /// B's, when matched by id (it may differ).
    pub(crate) row_b: u64,
    /// A's CSV line.
    pub(crate) line: u64,
}

/// A chosen row with its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Picked {
    pub(crate) at: RowRef,
    pub(crate) label: u32,
    pub(crate) a: u32,
    pub(crate) b: u32,
}

/// The first `cap` rows (by A's row) of those offered: a max-heap that drops
/// its last row when full, so the choice is the same in any order of offer.
#[derive(Clone, Debug)]
struct FirstRows {
    cap: usize,
    heap: BinaryHeap<Picked>,
}

impl FirstRows {
    fn new(cap: usize) -> FirstRows {
        FirstRows {
            cap,
            heap: BinaryHeap::new(),
        }
    }

    fn offer(&mut self, p: Picked) {
        if self.cap == 0 {
            return;
        }
        if self.heap.len() < self.cap {
            self.heap.push(p);
        } else if self.heap.peek().is_some_and(|last| p < *last) {
            self.heap.pop();
            self.heap.push(p);
        }
    }

    fn into_sorted(self) -> Vec<Picked> {
        self.heap.into_sorted_vec()
    }
}

/// How many rows are kept to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowCaps {
    /// Rows listed per cell of the table (the first by row).
    pub per_cell: usize,
    /// Rows of the results table: every row where the sides differ or both
    /// are wrong first (up to this many), then rows both got right.
    pub table: usize,
}

impl RowCaps {
    /// No rows kept: the figures alone (a run's summary).
    pub const NONE: RowCaps = RowCaps {
        per_cell: 0,
        table: 0,
    };
}

impl Default for RowCaps {
    fn default() -> RowCaps {
        RowCaps {
            per_cell: 1_000,
            // As the report's row cap (`explorer::DEFAULT_ROW_CAP`, a layer up).
            table: 100_000,
        }
    }
}

/// Everything counted of the paired rows.
#[derive(Clone, Debug)]
pub(crate) struct PairTally {
    pub(crate) categories: Categories,
    triples: HashMap<(u32, u32, u32), u64>,
    cells: Vec<FirstRows>,
    interesting: FirstRows,
    both_right: FirstRows,
}

/// The figures of the paired rows, before they are named and worded.
#[derive(Clone, Debug)]
pub(crate) struct PairedFigures {
    pub(crate) sides: [SideScores; 2],
    pub(crate) table: PairedTable,
    pub(crate) difference: Option<(f64, f64)>,
    pub(crate) point_difference: Option<f64>,
    pub(crate) mcnemar: McNemar,
    pub(crate) kappa_between: Option<crate::eval::Kappa>,
    pub(crate) per_label: Vec<LabelDelta>,
    /// The rows to show, by A's row.
    pub(crate) picked: Vec<Picked>,
}

impl PairTally {
    pub(crate) fn new(categories: Categories, caps: RowCaps) -> PairTally {
        PairTally {
            categories,
            triples: HashMap::new(),
            cells: (0..CellKind::ALL.len())
                .map(|_| FirstRows::new(caps.per_cell))
                .collect(),
            interesting: FirstRows::new(caps.table),
            both_right: FirstRows::new(caps.table),
        }
    }

    /// One paired row: its label and each side's answer ([`FAILED`] for none).
    pub(crate) fn record(&mut self, at: RowRef, label: u32, a: u32, b: u32) {
        *self.triples.entry((label, a, b)).or_default() += 1;
        let kind = CellKind::of(label, a, b);
        let picked = Picked { at, label, a, b };
        self.cells[kind as usize].offer(picked);
        if kind == CellKind::BothRight {
            self.both_right.offer(picked);
        } else {
            self.interesting.offer(picked);
        }
    }

    pub(crate) fn figures(&self) -> PairedFigures {
        // The answers' space in label order, as the evaluation names it.
        let k = self.categories.len();
        let labels = LabelSet::from_labels(self.categories.names.iter().cloned());
        let sorted: Vec<u32> = self
            .categories
            .names
            .iter()
            .map(|n| labels.index_of(n).expect("every name is in the set") as u32)
            .collect();
        let at = |c: u32| {
            if c == FAILED {
                FAILED
            } else {
                sorted[c as usize]
            }
        };
        let mut evals = [Tally::new(k), Tally::new(k)];
        let mut between = Tally::new(k);
        let mut failed = [0u64; 2];
        let mut counts = [0u64; CellKind::ALL.len()];
        let mut both_answered: Vec<Triple> = Vec::new();
        // In label order, so that every figure (the bootstrap's draws too) is
        // a function of the rows, not of the order their answers were met in.
        let mut keys: Vec<((u32, u32, u32), u64)> = self
            .triples
            .iter()
            .map(|(&(label, a, b), &count)| ((at(label), at(a), at(b)), count))
            .collect();
        keys.sort_unstable();
        for ((label, a, b), count) in keys {
            counts[CellKind::of(label, a, b) as usize] += count;
            for (side, answer) in [a, b].into_iter().enumerate() {
                if answer == FAILED {
                    failed[side] += count;
                } else {
                    evals[side].record_many(label as usize, answer as usize, count);
                }
            }
            if a != FAILED && b != FAILED {
                between.record_many(a as usize, b as usize, count);
                both_answered.push(Triple {
                    label,
                    first: a,
                    second: b,
                    count,
                });
            }
        }
        let sides = [0, 1].map(|side| {
            let e = evals[side].evaluate(&labels);
            SideScores {
                rows: e.compared + failed[side],
                answered: e.compared,
                failed: failed[side],
                agreements: e.agreements,
                agreement_rate: e.agreement_rate,
                agreement_interval: e.agreement_interval,
                kappa: e.kappa,
                macro_f1: e.macro_f1,
            }
        });
        let cell = |kind: CellKind| Cell {
            count: counts[kind as usize],
            rows: self.cells[kind as usize]
                .clone()
                .into_sorted()
                .iter()
                .map(|p| p.at.row)
                .collect(),
        };
        let table = PairedTable {
            both_right: cell(CellKind::BothRight),
            only_a_right: cell(CellKind::OnlyARight),
            only_b_right: cell(CellKind::OnlyBRight),
            both_wrong: cell(CellKind::BothWrong),
            only_a_failed: cell(CellKind::OnlyAFailed),
            only_b_failed: cell(CellKind::OnlyBFailed),
            both_failed: cell(CellKind::BothFailed),
        };
        let paired = PairedCounts {
            both: table.both_right.count,
            only_first: table.only_b_right.count,
            only_second: table.only_a_right.count,
            neither: table.both_wrong.count,
        };
        let n = table.both_right.count
            + table.only_a_right.count
            + table.only_b_right.count
            + table.both_wrong.count;
        let point_difference = (n > 0).then(|| {
            (table.only_b_right.count as f64 - table.only_a_right.count as f64) / n as f64
        });
        let difference = newcombe_paired_interval(paired);
        let mcnemar = McNemar {
            discordant: table.only_a_right.count + table.only_b_right.count,
            p_value: mcnemar_exact(table.only_a_right.count, table.only_b_right.count),
        };
        PairedFigures {
            sides,
            table,
            difference,
            point_difference,
            mcnemar,
            kappa_between: between.kappa(),
            per_label: self.label_deltas(&labels, &sorted, &both_answered),
            picked: self.picked(),
        }
    }

    /// Each label's scores on both sides over the rows both answered, with the
    /// bootstrap intervals of their differences.
    fn label_deltas(
        &self,
        labels: &LabelSet,
        sorted: &[u32],
        both_answered: &[Triple],
    ) -> Vec<LabelDelta> {
        let k = labels.len();
        let mut is_label = vec![false; k];
        for (i, &s) in sorted.iter().enumerate() {
            is_label[s as usize] = self.categories.is_label[i];
        }
        let mut support = vec![0u64; k];
        let mut predicted = vec![0u64; k];
        for t in both_answered {
            support[t.label as usize] += t.count;
            predicted[t.first as usize] += t.count;
            predicted[t.second as usize] += t.count;
        }
        let mut shown: Vec<usize> = (0..k)
            .filter(|&l| is_label[l] && (support[l] > 0 || predicted[l] > 0))
            .collect();
        let mut by_support = shown.clone();
        by_support.sort_by_key(|&l| std::cmp::Reverse(support[l]));
        let mut scored = vec![false; k];
        for &l in by_support.iter().take(MAX_BOOTSTRAP_LABELS) {
            scored[l] = true;
        }
        let boot = bootstrap_labels(
            both_answered,
            k,
            &scored,
            BOOTSTRAP_SEED,
            BOOTSTRAP_RESAMPLES,
        );
        shown.sort_unstable();
        shown
            .into_iter()
            .map(|l| {
                let b = &boot[l];
                let delta =
                    |a: Option<f64>, b: Option<f64>, interval: Option<(f64, f64)>| ScoreDelta {
                        a: a.map(round4),
                        b: b.map(round4),
                        delta: a.zip(b).map(|(a, b)| round4(b - a)),
                        interval: interval.map(|(low, high)| Bounds {
                            low: round4(low),
                            high: round4(high),
                        }),
                    };
                LabelDelta {
                    label: labels.names()[l].clone(),
                    support: support[l],
                    scores: DeltaScores {
                        precision: delta(b.first.precision, b.second.precision, b.intervals[0]),
                        recall: delta(b.first.recall, b.second.recall, b.intervals[1]),
                        f1: delta(b.first.f1, b.second.f1, b.intervals[2]),
                    },
                }
            })
            .collect()
    }

    /// The rows to show: every one listed in a cell, the first rows where the
    /// sides differ or both are wrong, then the first both got right, up to
    /// the table's cap (cells' rows beyond it are still shown).
    fn picked(&self) -> Vec<Picked> {
        let mut rows: Vec<Picked> = self.interesting.clone().into_sorted();
        let cap = self.interesting.cap;
        let room = cap.saturating_sub(rows.len());
        rows.extend(self.both_right.clone().into_sorted().into_iter().take(room));
        for cell in &self.cells {
            rows.extend(cell.clone().into_sorted());
        }
        rows.sort_unstable();
        rows.dedup_by_key(|p| p.at.row);
        rows
    }
}

impl CellKind {
    /// The cell of a row: its label and each side's answer.
    pub(crate) fn of(label: u32, a: u32, b: u32) -> CellKind {
        match (a == FAILED, b == FAILED) {
            (true, true) => CellKind::BothFailed,
            (true, false) => CellKind::OnlyAFailed,
            (false, true) => CellKind::OnlyBFailed,
            (false, false) => match (a == label, b == label) {
                (true, true) => CellKind::BothRight,
                (true, false) => CellKind::OnlyARight,
                (false, true) => CellKind::OnlyBRight,
                (false, false) => CellKind::BothWrong,
            },
        }
    }
}

pub(crate) fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
