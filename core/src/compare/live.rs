//! A run compared with a baseline as its rows become final: an earlier run
//! over the same CSV (`--baseline FILE`), or the incumbent's decision kept in a
//! column of the CSV (`--baseline-column NAME`). The run is B, the baseline A.
//! Each final row is paired at once (a run may stream its CSV: nothing is
//! looked up later), so the summary and the console end hold the comparison.

use std::collections::BTreeMap;

use crate::input::{Item, LabelSet};

use super::runs::{image_hash, position_key, text_hash, StoredRow};
use super::tally::{PairTally, RowCaps, RowRef, FAILED};
use super::{CompareError, Comparison, DifferingRow, MatchedBy, Matching, SideMeta};
use super::{RunInfo, RunRows};

/// Rows that differ listed at most.
const DIFFERING_SHOWN: usize = 20;

/// What a run is compared with.
#[derive(Debug)]
// One per run, moved once: the size of a column's name does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Baseline {
    /// An earlier run over the same CSV: its rows, read from its results
    /// journal ([`super::JournalRows`]), and what its files say of it.
    Run {
        /// Its rows.
        rows: RunRows,
        /// Its summary or progress file's facts.
        info: RunInfo,
    },
    /// The CSV's column holding the incumbent's decision for each row (the
    /// production system's label, a rules engine, a previous model). A value
    /// outside the label set is an answer of its own (always wrong); an empty
    /// cell is no decision (a failure of A).
    Column(String),
}

#[derive(Debug)]
enum Source {
    Column {
        index: usize,
        name: String,
    },
    Run {
        by: MatchedBy,
        /// (key, index into `rows`), sorted.
        keys: Vec<(u64, u32)>,
        rows: Vec<StoredRow>,
        /// A bit per row of `rows`: paired or found differing.
        used: Vec<u64>,
        meta: Box<SideMeta>,
        partial: Option<String>,
    },
}

/// The comparison of a run (B) with its baseline (A), tallied row by row.
#[derive(Debug)]
pub(crate) struct LiveComparison {
    source: Source,
    tally: PairTally,
    /// Label `i` of the run's label set is answer `label_map[i]`.
    label_map: Vec<u32>,
    matched: u64,
    differing: u64,
    only_in_b: u64,
    differing_rows: Vec<DifferingRow>,
    /// Baseline-column values outside the label set: answer number -> rows.
    outside: BTreeMap<u32, u64>,
    /// Rows whose baseline cell is empty.
    empty: u64,
}

impl LiveComparison {
    /// A comparison of a run over a CSV with `labels`, `extra_columns` beside
    /// image, label and id, and an id column when `csv_has_ids`.
    pub(crate) fn new(
        baseline: Baseline,
        labels: &LabelSet,
        extra_columns: &[String],
        csv_has_ids: bool,
    ) -> Result<LiveComparison, CompareError> {
        let (mut categories, source) = match baseline {
            Baseline::Column(name) => {
                let Some(index) = extra_columns.iter().position(|c| *c == name) else {
                    return Err(CompareError::NoSuchColumn {
                        name,
                        others: if extra_columns.is_empty() {
                            "none".into()
                        } else {
                            extra_columns.join(", ")
                        },
                    });
                };
                (Default::default(), Source::Column { index, name })
            }
            Baseline::Run { rows, info } => {
                let by = if csv_has_ids && rows.has_ids() && rows.ids_unique() {
                    MatchedBy::Id
                } else {
                    MatchedBy::LineAndImage
                };
                let info = info.with_header(rows.header());
                let meta = rows.side_meta(&info);
                let partial = info.partial("A (the baseline)", rows.len());
                let (categories, stored) = rows.into_parts();
                let mut keys: Vec<(u64, u32)> = stored
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let key = match by {
                            MatchedBy::Id => r.id,
                            _ => position_key(u64::from(r.line), r.image),
                        };
                        (key, i as u32)
                    })
                    .collect();
                keys.sort_unstable();
                let source = Source::Run {
                    by,
                    keys,
                    used: vec![0; stored.len().div_ceil(64)],
                    rows: stored,
                    meta: Box::new(meta),
                    partial,
                };
                (categories, source)
            }
        };
        let label_map = labels
            .names()
            .iter()
            .map(|name| categories.intern(name, true))
            .collect();
        Ok(LiveComparison {
            source,
            tally: PairTally::new(categories, RowCaps::NONE),
            label_map,
            matched: 0,
            differing: 0,
            only_in_b: 0,
            differing_rows: Vec::new(),
            outside: BTreeMap::new(),
            empty: 0,
        })
    }

    /// A final row of the run: `image` as its journal names it, `label` its
    /// label's index (`None` for a defective row), `prediction` the run's
    /// answer (`None`: it failed).
    pub(crate) fn record(
        &mut self,
        row: usize,
        item: &Item,
        image: &str,
        label: Option<usize>,
        prediction: Option<usize>,
    ) {
        let categories = &mut self.tally.categories;
        let label_c = match label {
            Some(l) => self.label_map[l],
            None => categories.intern(&item.label, false),
        };
        let b = prediction.map_or(FAILED, |p| self.label_map[p]);
        match &mut self.source {
            Source::Column { index, .. } => {
                let value = item.extra.get(*index).map_or("", |v| &**v);
                let a = if value.is_empty() {
                    self.empty += 1;
                    FAILED
                } else {
                    let c = categories.intern(value, false);
                    if !categories.is_label(c) {
                        *self.outside.entry(c).or_default() += 1;
                    }
                    c
                };
                self.matched += 1;
                let at = RowRef {
                    row: row as u64,
                    row_b: row as u64,
                    line: item.line,
                };
                self.tally.record(at, label_c, a, b);
            }
            Source::Run {
                by,
                keys,
                rows,
                used,
                ..
            } => {
                let image = image_hash(image);
                let key = match by {
                    MatchedBy::Id => item.id.as_deref().map_or(0, text_hash),
                    _ => position_key(item.line, image),
                };
                let at = keys.partition_point(|k| k.0 < key);
                if keys.get(at).is_none_or(|k| k.0 != key) {
                    self.only_in_b += 1;
                    return;
                }
                let index = keys[at].1 as usize;
                used[index / 64] |= 1 << (index % 64);
                let base = rows[index];
                if base.image == image && base.label == label_c {
                    self.matched += 1;
                    let at = RowRef {
                        row: u64::from(base.row),
                        row_b: row as u64,
                        line: u64::from(base.line),
                    };
                    self.tally.record(at, label_c, base.answer, b);
                } else {
                    self.differing += 1;
                    if self.differing_rows.len() < DIFFERING_SHOWN {
                        let name = |c| categories.name(c).unwrap_or_default().to_owned();
                        self.differing_rows.push(DifferingRow {
                            row_a: u64::from(base.row),
                            row_b: row as u64,
                            line_a: u64::from(base.line),
                            line_b: item.line,
                            label_a: name(base.label),
                            label_b: name(label_c),
                            same_image: base.image == image,
                        });
                    }
                }
            }
        }
    }

    /// The comparison so far: B is the run, named by `b` (its cost and latency
    /// from its own statistics), partial for `b_partial` when it has not made
    /// every row final.
    pub(crate) fn comparison(&self, b: SideMeta, b_partial: Option<String>) -> Comparison {
        let categories = &self.tally.categories;
        let mut notes = Vec::new();
        let (a, by, only_in_a, a_partial) = match &self.source {
            Source::Column { name, .. } => {
                if !self.outside.is_empty() {
                    let values: Vec<String> = self
                        .outside
                        .iter()
                        .map(|(&c, &n)| {
                            format!(
                                "{:?} ({n} row{})",
                                categories.name(c).unwrap_or_default(),
                                if n == 1 { "" } else { "s" }
                            )
                        })
                        .collect();
                    notes.push(format!(
                        "The column {name:?} holds values outside the label set, each counted as an answer of its own (never the label): {}.",
                        values.join(", ")
                    ));
                }
                if self.empty > 0 {
                    notes.push(format!(
                        "{} row{} no value in the column {name:?}: counted as rows A failed (no decision).",
                        self.empty,
                        if self.empty == 1 { " has" } else { "s have" }
                    ));
                }
                let a = SideMeta {
                    name: format!("column {name}"),
                    ..SideMeta::default()
                };
                (a, MatchedBy::Row, 0, None)
            }
            Source::Run {
                by,
                used,
                rows,
                meta,
                partial,
                ..
            } => {
                let used: u64 = used.iter().map(|w| u64::from(w.count_ones())).sum();
                (
                    SideMeta::clone(meta),
                    *by,
                    rows.len() as u64 - used,
                    partial.clone(),
                )
            }
        };
        let matching = Matching {
            by,
            matched: self.matched,
            differing: self.differing,
            only_in_a,
            only_in_b: self.only_in_b,
            differing_rows: self.differing_rows.clone(),
        };
        let partial = [a_partial, b_partial]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        Comparison::assemble(
            self.tally.figures(),
            [a, b],
            matching,
            (!partial.is_empty()).then(|| partial.join("; ")),
            notes,
            Vec::new(),
        )
    }
}
