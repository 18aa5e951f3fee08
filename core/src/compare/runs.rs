//! Two finished (or stopped) runs compared from their files: each results
//! journal read in chunks into 40 bytes a row ([`JournalRows`]), the rows
//! matched and tallied ([`PairedRuns`]), then a last pass over A's journal for
//! the text of the few rows shown ([`RowDetails`]).
//!
//! A row is kept as hashes and numbers, never as JSON or text: its id and its
//! image as hashes (a differing image is told by its hash), its label and answer
//! as numbers of the labels met. Two 1,000,000-row runs take some 80 MB.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::config::RunConfig;
use crate::hash::mix64;
use crate::journal::{ItemResult, ItemStatus, JournalHeader, JournalScan, JournalScanner};

use super::tally::{Categories, PairTally, PairedFigures, Picked, RowCaps, RowRef, FAILED};
use super::{
    CellKind, CompareError, Comparison, DifferingRow, MatchedBy, Matching, PairedRow, SideMeta,
    TimingFrom,
};

/// Rows that differ listed at most.
const DIFFERING_SHOWN: usize = 20;

/// A journal row as a comparison keeps it.
#[derive(Clone, Copy, Debug)]
pub(super) struct StoredRow {
    pub(super) row: u32,
    pub(super) line: u32,
    /// Hash of the id; 0 when the row has none.
    pub(super) id: u64,
    /// Hash of the image as the journal names it.
    pub(super) image: u32,
    pub(super) label: u32,
    /// The answer's number, or [`FAILED`].
    pub(super) answer: u32,
    /// `u32::MAX` when unknown.
    latency_ms: u32,
    /// NaN when unknown.
    cost_usd: f32,
}

/// A hash of `text`, the same for both sides of one comparison (never 0: 0 is
/// "no id").
pub(crate) fn text_hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish().max(1)
}

/// The 32 bits of an image's hash a row keeps.
pub(crate) fn image_hash(image: &str) -> u32 {
    (text_hash(image) >> 32) as u32
}

/// The key of a row matched by CSV line and image.
pub(crate) fn position_key(line: u64, image: u32) -> u64 {
    mix64((line.min(u64::from(u32::MAX)) << 32) | u64::from(image))
}

/// A results journal read in chunks of any size into compact rows.
///
/// ```no_run
/// # use shadow_core::compare::JournalRows;
/// # fn chunks() -> Vec<Vec<u8>> { Vec::new() }
/// let mut journal = JournalRows::new();
/// for chunk in chunks() {
///     journal.push(&chunk);
/// }
/// let rows = journal.finish();
/// ```
#[derive(Debug, Default)]
pub struct JournalRows {
    scanner: JournalScanner,
    carry: Vec<u8>,
    categories: Categories,
    rows: Vec<StoredRow>,
    /// Rows numbered beyond `u32::MAX` (only a tampered journal has them).
    skipped: u64,
}

/// Calls `f` with each complete line of `chunk`, the first one joined to what
/// `carry` kept of the previous chunk; keeps the unfinished tail in `carry`.
fn each_line(carry: &mut Vec<u8>, chunk: &[u8], mut f: impl FnMut(&[u8])) {
    let mut rest = chunk;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let (line, tail) = rest.split_at(end + 1);
        rest = tail;
        if carry.is_empty() {
            f(line);
        } else {
            carry.extend_from_slice(line);
            f(carry);
            carry.clear();
        }
    }
    carry.extend_from_slice(rest);
}

impl JournalRows {
    /// An empty journal.
    pub fn new() -> JournalRows {
        JournalRows::default()
    }

    /// The next bytes of the journal.
    pub fn push(&mut self, chunk: &[u8]) {
        let mut carry = std::mem::take(&mut self.carry);
        each_line(&mut carry, chunk, |line| self.line(line));
        self.carry = carry;
    }

    fn line(&mut self, bytes: &[u8]) {
        if let Some(scanned) = self.scanner.line(bytes) {
            self.add(&scanned.result);
        }
    }

    fn add(&mut self, r: &ItemResult<'_>) {
        let Ok(row) = u32::try_from(r.row) else {
            self.skipped += 1;
            return;
        };
        let answer = match (r.status, r.prediction.as_deref()) {
            (ItemStatus::Success, Some(p)) => self.categories.intern(p, true),
            _ => FAILED,
        };
        self.rows.push(StoredRow {
            row,
            line: r.line.min(u64::from(u32::MAX)) as u32,
            id: r.id.as_deref().map_or(0, text_hash),
            image: image_hash(&r.image),
            label: self.categories.intern(&r.label, true),
            answer,
            latency_ms: r
                .latency_ms
                .map_or(u32::MAX, |l| l.min(u64::from(u32::MAX - 1)) as u32),
            cost_usd: r.cost_usd.map_or(f32::NAN, |c| c as f32),
        });
    }

    /// The end of the journal: its rows, one per row (the last line of a row
    /// written twice counts, as a resume reads it).
    pub fn finish(mut self) -> RunRows {
        let tail = std::mem::take(&mut self.carry);
        if !tail.is_empty() {
            self.line(&tail);
        }
        let header = self.scanner.header().cloned().map(Box::new);
        let scan = self.scanner.finish();
        let mut rows = self.rows;
        // Stable: of the lines of one row, the last stays last.
        rows.sort_by_key(|r| r.row);
        let mut kept: Vec<StoredRow> = Vec::with_capacity(rows.len());
        for r in rows {
            match kept.last_mut() {
                Some(last) if last.row == r.row => *last = r,
                _ => kept.push(r),
            }
        }
        kept.shrink_to_fit();
        RunRows {
            categories: self.categories,
            rows: kept,
            header,
            scan,
            skipped: self.skipped,
        }
    }
}

/// One run's rows, read from its journal.
#[derive(Debug)]
pub struct RunRows {
    categories: Categories,
    rows: Vec<StoredRow>,
    header: Option<Box<JournalHeader>>,
    scan: JournalScan,
    skipped: u64,
}

impl RunRows {
    /// Rows with a result.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// No row has a result.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The journal's first line: the run's settings.
    pub fn header(&self) -> Option<&JournalHeader> {
        self.header.as_deref()
    }

    /// What the journal held besides results (bad lines, a torn tail).
    pub fn scan(&self) -> &JournalScan {
        &self.scan
    }

    /// Every row has an id, and no two the same.
    pub(super) fn ids_unique(&self) -> bool {
        if self.rows.is_empty() || self.rows.iter().any(|r| r.id == 0) {
            return false;
        }
        let mut ids: Vec<u64> = self.rows.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.windows(2).all(|w| w[0] != w[1])
    }

    pub(super) fn has_ids(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.id != 0)
    }

    /// The side these rows are, described by `info` (its summary's cost and
    /// latency when it has them, else its rows').
    pub(super) fn side_meta(&self, info: &RunInfo) -> SideMeta {
        let (cost, latency) = self.timing();
        let from_summary =
            info.from_summary && (info.latency.is_some() || info.cost_per_image_usd.is_some());
        SideMeta {
            name: info.side_name(),
            run_id: info.run_id.clone(),
            model: info.model.clone(),
            csv_path: info.csv_path.clone(),
            cost_per_image_usd: if from_summary {
                info.cost_per_image_usd
            } else {
                cost
            },
            latency: if from_summary { info.latency } else { latency },
            timing_from: Some(if from_summary {
                TimingFrom::Summary
            } else {
                TimingFrom::Rows
            }),
        }
    }

    /// The answers' names and the rows.
    pub(super) fn into_parts(self) -> (Categories, Vec<StoredRow>) {
        (self.categories, self.rows)
    }

    /// Mean cost per row with a cost, and the nearest-rank p50 / p95 latency of
    /// the rows that have one.
    fn timing(&self) -> (Option<f64>, Option<(u64, u64)>) {
        let costs: Vec<f64> = self
            .rows
            .iter()
            .filter(|r| !r.cost_usd.is_nan())
            .map(|r| f64::from(r.cost_usd))
            .collect();
        let cost = (!costs.is_empty()).then(|| costs.iter().sum::<f64>() / costs.len() as f64);
        let mut latencies: Vec<u32> = self
            .rows
            .iter()
            .filter(|r| r.latency_ms != u32::MAX)
            .map(|r| r.latency_ms)
            .collect();
        latencies.sort_unstable();
        let rank = |p: usize| {
            let i = (latencies.len() * p).div_ceil(100).saturating_sub(1);
            u64::from(latencies[i])
        };
        let latency = (!latencies.is_empty()).then(|| (rank(50), rank(95)));
        (cost, latency)
    }
}

/// What a run's summary or progress file (and its journal's first line) says
/// of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunInfo {
    /// Its id.
    pub run_id: Option<String>,
    /// Its CSV, as the run named it.
    pub csv_path: Option<String>,
    /// `completed`, `interrupted`, `aborted`, or `running` (a progress file).
    pub status: Option<String>,
    /// Rows in its CSV.
    pub total_rows: Option<u64>,
    /// Its model.
    pub model: Option<String>,
    /// p50 and p95 latency over the whole run (a summary's).
    pub latency: Option<(u64, u64)>,
    /// US dollars per image (a summary's).
    pub cost_per_image_usd: Option<f64>,
    /// Read from a summary: the run ended (completed, interrupted or aborted).
    pub from_summary: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileFields {
    run_id: Option<String>,
    csv_path: Option<String>,
    status: Option<String>,
    overall_progress: Option<TotalField>,
    statistics: Option<StatisticsFields>,
    evaluation: Option<IgnoredAny>,
    all_reports: Option<IgnoredAny>,
    cost: Option<CostFields>,
    config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TotalField {
    total: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatisticsFields {
    latency_ms: Option<LatencyFields>,
}

#[derive(Deserialize)]
struct LatencyFields {
    count: u64,
    p50: u64,
    p95: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CostFields {
    usd_per_image: Option<f64>,
}

impl RunInfo {
    /// A summary file, read as it is parsed (its error list is skipped unread).
    ///
    /// # Errors
    ///
    /// Not JSON, or without the fields a summary has.
    pub fn from_summary<R: std::io::Read>(r: R) -> Result<RunInfo, CompareError> {
        let f = Self::read(r, "summary")?;
        if f.run_id.is_none() || f.status.is_none() || f.statistics.is_none() {
            return Err(CompareError::NotARunFile {
                what: "summary",
                reason: "no `runId`, `status` or `statistics` field".into(),
            });
        }
        if f.evaluation.is_none() {
            return Err(CompareError::NotARunFile {
                what: "summary",
                reason: "no `evaluation` field".into(),
            });
        }
        Ok(Self::of(f, true))
    }

    /// A progress file. See [`RunInfo::from_summary`].
    ///
    /// # Errors
    ///
    /// Not JSON, or without the fields a progress file has.
    pub fn from_progress<R: std::io::Read>(r: R) -> Result<RunInfo, CompareError> {
        let f = Self::read(r, "progress")?;
        if f.overall_progress.is_none() || f.all_reports.is_none() {
            return Err(CompareError::NotARunFile {
                what: "progress",
                reason: "no `overallProgress` or `allReports` field".into(),
            });
        }
        Ok(Self::of(f, false))
    }

    fn read<R: std::io::Read>(r: R, what: &'static str) -> Result<FileFields, CompareError> {
        serde_json::from_reader(r).map_err(|e| CompareError::NotARunFile {
            what,
            reason: e.to_string(),
        })
    }

    fn of(f: FileFields, from_summary: bool) -> RunInfo {
        let config: Option<RunConfig> = f.config.and_then(|c| serde_json::from_value(c).ok());
        RunInfo {
            run_id: f.run_id,
            csv_path: f.csv_path,
            status: f.status,
            total_rows: f.overall_progress.and_then(|p| p.total),
            model: config
                .as_ref()
                .and_then(|c| c.provider.model().map(str::to_owned)),
            latency: f
                .statistics
                .and_then(|s| s.latency_ms)
                .filter(|l| l.count > 0)
                .map(|l| (l.p50, l.p95)),
            cost_per_image_usd: f.cost.and_then(|c| c.usd_per_image),
            from_summary,
        }
    }

    /// This, its gaps filled from `other` (the summary first, then the
    /// progress file).
    pub fn or(self, other: RunInfo) -> RunInfo {
        RunInfo {
            run_id: self.run_id.or(other.run_id),
            csv_path: self.csv_path.or(other.csv_path),
            status: self.status.or(other.status),
            total_rows: self.total_rows.or(other.total_rows),
            model: self.model.or(other.model),
            latency: self.latency.or(other.latency),
            cost_per_image_usd: self.cost_per_image_usd.or(other.cost_per_image_usd),
            from_summary: self.from_summary || other.from_summary,
        }
    }

    /// Its gaps filled from a journal's first line.
    pub(super) fn with_header(self, header: Option<&JournalHeader>) -> RunInfo {
        let Some(h) = header else { return self };
        RunInfo {
            run_id: self.run_id.or_else(|| Some(h.run.run_id.clone())),
            csv_path: self.csv_path.or_else(|| Some(h.run.csv_path.clone())),
            model: self
                .model
                .or_else(|| h.run.provider.model().map(str::to_owned)),
            ..self
        }
    }

    /// Why the run's rows are not all of its CSV's: still running, stopped, or
    /// fewer rows than its CSV has; `None` when it completed every row.
    pub(crate) fn partial(&self, side: &str, rows: usize) -> Option<String> {
        let done = format!(
            "{rows}{} rows have results",
            self.total_rows
                .map(|t| format!(" of {t}"))
                .unwrap_or_default()
        );
        let all = self.total_rows.is_none_or(|t| rows as u64 >= t);
        match (self.from_summary, self.status.as_deref()) {
            (true, Some("completed")) if all => None,
            (true, Some(status)) => Some(format!("{side} was {status}: {done}")),
            _ => Some(format!(
                "{side} has no summary yet (still running, or stopped before it wrote one): {done}"
            )),
        }
    }

    fn side_name(&self) -> String {
        match &self.run_id {
            Some(id) => format!("run {id}"),
            None => "a run".into(),
        }
    }
}

/// Two runs' rows matched and tallied: the figures are known; the text of the
/// rows to show comes from a last pass over A's journal ([`PairedRuns::details`]).
#[derive(Debug)]
pub struct PairedRuns {
    figures: PairedFigures,
    categories: Categories,
    matching: Matching,
    meta: [SideMeta; 2],
    partial: [Option<String>; 2],
    totals: [Option<u64>; 2],
    notes: Vec<String>,
}

impl PairedRuns {
    /// Matches the rows of `a` and `b` (runs described by `a_info`, `b_info`)
    /// and tallies the pairs, keeping `caps` rows to show.
    pub fn pair(
        a: &RunRows,
        a_info: RunInfo,
        b: &RunRows,
        b_info: RunInfo,
        caps: RowCaps,
    ) -> PairedRuns {
        let a_info = a_info.with_header(a.header());
        let b_info = b_info.with_header(b.header());
        let mut notes = Vec::new();
        let by = if a.has_ids() && b.has_ids() {
            if a.ids_unique() && b.ids_unique() {
                MatchedBy::Id
            } else {
                notes.push(
                    "Some ids appear on more than one row: rows were matched by CSV line and image instead."
                        .into(),
                );
                MatchedBy::LineAndImage
            }
        } else {
            MatchedBy::LineAndImage
        };
        let key = |r: &StoredRow| match by {
            MatchedBy::Id => r.id,
            _ => position_key(u64::from(r.line), r.image),
        };
        let keyed = |rows: &RunRows| {
            let mut keys: Vec<(u64, u32)> = rows
                .rows
                .iter()
                .enumerate()
                .map(|(i, r)| (key(r), i as u32))
                .collect();
            keys.sort_unstable();
            keys
        };
        let (ka, kb) = (keyed(a), keyed(b));
        let mut categories = a.categories.clone();
        let b_map: Vec<u32> = (0..b.categories.len() as u32)
            .map(|i| categories.intern(b.categories.name(i).unwrap_or_default(), true))
            .collect();
        let map_b = |c: u32| {
            if c == FAILED {
                FAILED
            } else {
                b_map[c as usize]
            }
        };
        let mut tally = PairTally::new(categories, caps);
        let mut matching = Matching {
            by,
            matched: 0,
            differing: 0,
            only_in_a: 0,
            only_in_b: 0,
            differing_rows: Vec::new(),
        };
        let (mut i, mut j) = (0, 0);
        while i < ka.len() && j < kb.len() {
            match ka[i].0.cmp(&kb[j].0) {
                std::cmp::Ordering::Less => {
                    matching.only_in_a += 1;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    matching.only_in_b += 1;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let ra = &a.rows[ka[i].1 as usize];
                    let rb = &b.rows[kb[j].1 as usize];
                    let b_label = map_b(rb.label);
                    if ra.image == rb.image && ra.label == b_label {
                        matching.matched += 1;
                        let at = RowRef {
                            row: u64::from(ra.row),
                            row_b: u64::from(rb.row),
                            line: u64::from(ra.line),
                        };
                        tally.record(at, ra.label, ra.answer, map_b(rb.answer));
                    } else {
                        matching.differing += 1;
                        if matching.differing_rows.len() < DIFFERING_SHOWN {
                            let name = |c| tally.categories.name(c).unwrap_or_default().to_owned();
                            matching.differing_rows.push(DifferingRow {
                                row_a: u64::from(ra.row),
                                row_b: u64::from(rb.row),
                                line_a: u64::from(ra.line),
                                line_b: u64::from(rb.line),
                                label_a: name(ra.label),
                                label_b: name(b_label),
                                same_image: ra.image == rb.image,
                            });
                        }
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        matching.only_in_a += (ka.len() - i) as u64;
        matching.only_in_b += (kb.len() - j) as u64;
        matching.differing_rows.sort_by_key(|d| (d.row_a, d.row_b));
        for (name, rows) in [("A", a), ("B", b)] {
            let bad = rows.scan.bad_lines.len() as u64 + rows.skipped;
            if bad > 0 {
                notes.push(format!(
                    "{bad} line{} of {name}'s results could not be read and {} left out.",
                    if bad == 1 { "" } else { "s" },
                    if bad == 1 { "is" } else { "are" }
                ));
            }
        }
        PairedRuns {
            figures: tally.figures(),
            categories: tally.categories,
            matching,
            meta: [a.side_meta(&a_info), b.side_meta(&b_info)],
            partial: [a_info.partial("A", a.len()), b_info.partial("B", b.len())],
            totals: [a_info.total_rows, b_info.total_rows],
            notes,
        }
    }

    /// How the rows matched.
    pub fn matching(&self) -> &Matching {
        &self.matching
    }

    /// Why these do not look like two runs over the same CSV, in words; `None`
    /// when they do. Rows that differ (the same key, another image or label), a
    /// different number of rows, or rows on one side only while the other side
    /// has every row of its CSV, all say that the CSVs differ.
    pub fn mismatch(&self) -> Option<String> {
        let m = &self.matching;
        let [a_whole, b_whole] = self.partial.each_ref().map(Option::is_none);
        let totals_differ = matches!(self.totals, [Some(x), Some(y)] if x != y);
        let one_sided = (m.only_in_a > 0 && b_whole) || (m.only_in_b > 0 && a_whole);
        if m.differing == 0 && !totals_differ && !one_sided {
            return None;
        }
        let key = match m.by {
            MatchedBy::Id => "id",
            _ => "CSV line and image",
        };
        let mut text = format!(
            "A and B do not look like runs over the same CSV: {} rows match (by {key}), {} have the same {key} but another {}, {} are only in A, {} only in B",
            m.matched,
            m.differing,
            if m.by == MatchedBy::Id { "image or label" } else { "label" },
            m.only_in_a,
            m.only_in_b
        );
        if let [Some(x), Some(y)] = self.totals {
            if x != y {
                text.push_str(&format!("; A's CSV has {x} rows, B's {y}"));
            }
        }
        Some(text)
    }

    /// A pass over A's journal that finds the text (id, image) of the rows to
    /// show.
    pub fn details(&self) -> RowDetails {
        RowDetails {
            wanted: self
                .figures
                .picked
                .iter()
                .enumerate()
                .map(|(i, p)| (p.at.row, i))
                .collect(),
            found: vec![None; self.figures.picked.len()],
            scanner: JournalScanner::default(),
            carry: Vec::new(),
        }
    }

    /// The comparison, with the rows `details` found. `partial_rows`: the user
    /// chose to compare the matching rows of runs that do not look like runs
    /// over one CSV ([`PairedRuns::mismatch`]), said in the comparison.
    pub fn finish(self, details: RowDetails, partial_rows: bool) -> Comparison {
        let mismatch = self.mismatch().filter(|_| partial_rows);
        let mut notes = self.notes;
        if let Some(m) = mismatch {
            notes.insert(
                0,
                format!(
                    "{m}. Only the {} matching rows are compared.",
                    self.matching.matched
                ),
            );
        }
        let partial = match &self.partial {
            [None, None] => None,
            [a, b] => Some(
                [a.as_deref(), b.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
        let name = |c: u32| self.categories.name(c).unwrap_or_default().to_owned();
        let answer = |c: u32| (c != FAILED).then(|| name(c));
        let rows = self
            .figures
            .picked
            .iter()
            .zip(details.found)
            .map(|(p, found): (&Picked, _)| {
                let (id, image) = found.unwrap_or_default();
                PairedRow {
                    row: p.at.row,
                    line: p.at.line,
                    row_b: (p.at.row_b != p.at.row).then_some(p.at.row_b),
                    id,
                    image,
                    label: name(p.label),
                    a: answer(p.a),
                    b: answer(p.b),
                    cell: CellKind::of(p.label, p.a, p.b),
                }
            })
            .collect();
        Comparison::assemble(self.figures, self.meta, self.matching, partial, notes, rows)
    }
}

/// A pass over A's journal collecting the id and image of the rows shown.
#[derive(Debug)]
pub struct RowDetails {
    wanted: HashMap<u64, usize>,
    found: Vec<Option<(Option<String>, String)>>,
    scanner: JournalScanner,
    carry: Vec<u8>,
}

impl RowDetails {
    /// The next bytes of A's journal.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.wanted.is_empty() {
            return;
        }
        let mut carry = std::mem::take(&mut self.carry);
        each_line(&mut carry, chunk, |line| self.line(line));
        self.carry = carry;
    }

    fn line(&mut self, bytes: &[u8]) {
        let Some(scanned) = self.scanner.line(bytes) else {
            return;
        };
        let r = scanned.result;
        if let Some(&i) = self.wanted.get(&(r.row as u64)) {
            self.found[i] = Some((r.id.map(|c| c.into_owned()), r.image.into_owned()));
        }
    }

    /// Whether a pass is needed at all (no row to show: skip reading).
    pub fn wants_rows(&self) -> bool {
        !self.wanted.is_empty()
    }
}
