//! Which rows a capped report embeds: every failure, then disagreements, then a
//! seeded sample of agreeing rows, and the note that says so.

use std::collections::HashMap;

use crate::journal::FailureKind;

use super::run_file::kind_name;
use super::Items;
use super::RowSample;

/// One embedded row, until the columns are made.
#[derive(Debug)]
pub(super) struct Kept {
    pub(super) row: u64,
    pub(super) line: u64,
    pub(super) id: Option<String>,
    pub(super) image: String,
    pub(super) label: u32,
    pub(super) prediction: Option<u32>,
    pub(super) ok: bool,
    pub(super) attempts: u32,
    pub(super) latency_ms: Option<u64>,
    pub(super) error: Option<String>,
    pub(super) error_kind: Option<FailureKind>,
    pub(super) http_status: Option<u16>,
    pub(super) tokens: Option<u64>,
    pub(super) cost_usd: Option<f64>,
    pub(super) answer: Option<String>,
    pub(super) confidence: Option<f64>,
    pub(super) label_probability: Option<f64>,
}

/// A bottom-k sample: the `k` rows of smallest key, the key a seeded hash of the
/// row number (so the sample does not depend on the order rows arrive in).
#[derive(Debug, Default)]
pub(super) struct Sample {
    pub(super) k: usize,
    pub(super) seen: u64,
    pub(super) heap: std::collections::BinaryHeap<Keyed>,
}

#[derive(Debug)]
pub(super) struct Keyed(u64, Kept);

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Keyed {}
impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl Sample {
    pub(super) fn new(k: usize) -> Sample {
        Sample {
            k,
            ..Sample::default()
        }
    }

    /// Whether a row of `key` would be kept now.
    pub(super) fn wants(&mut self, key: u64) -> bool {
        self.seen += 1;
        self.heap.len() < self.k || self.heap.peek().is_some_and(|top| key < top.0)
    }

    pub(super) fn keep(&mut self, key: u64, row: Kept) {
        if self.heap.len() == self.k {
            self.heap.pop();
        }
        self.heap.push(Keyed(key, row));
    }

    /// The `n` rows of smallest key.
    pub(super) fn take(self, n: usize) -> impl Iterator<Item = Kept> {
        self.heap.into_sorted_vec().into_iter().take(n).map(|k| k.1)
    }
}

pub(super) fn sample_note(s: &RowSample) -> String {
    let part = |shown: u64, all: u64, what: &str| {
        if shown == all {
            format!("every {what} ({})", group_digits(all))
        } else {
            format!(
                "a seeded random sample of {} of its {} {what}s",
                group_digits(shown),
                group_digits(all)
            )
        }
    };
    let notable = if s.notable_shown == s.notable {
        part(s.notable, s.notable, "disagreement and failure")
    } else {
        format!(
            "{}, {} (too many to show every one)",
            part(s.failed_shown, s.failed, "failure"),
            part(s.disagreeing_shown, s.disagreeing, "disagreement")
        )
    };
    format!(
        "This report shows {} of the run's {} rows (its cap is {}): {notable} and a seeded random sample of {} of the {} agreeing rows. Every figure (agreement, κ, the matrix, per-label scores, batches, error groups) is computed from all {} rows. Every row is in the results file, {}, which the page's \"Open a finished run\" reads.",
        group_digits(s.shown),
        group_digits(s.rows),
        group_digits(s.cap),
        group_digits(s.agreeing_shown),
        group_digits(s.agreeing),
        group_digits(s.rows),
        s.results_file
    )
}

/// `1234567` as `1,234,567`.
pub(super) fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The kept rows, sorted by row, as the table's columns.
pub(super) fn columns(kept: Vec<Kept>, remap: &[u32]) -> Items {
    let mut items = Items::default();
    let mut error_index: HashMap<String, u32> = HashMap::new();
    let mut any_id = false;
    let mut any_confidence = false;
    for k in kept {
        items.row.push(k.row);
        items.line.push(k.line);
        any_id |= k.id.is_some();
        items.id.push(k.id);
        items.image.push(k.image);
        items.label.push(remap[k.label as usize]);
        items
            .prediction
            .push(k.prediction.map(|p| remap[p as usize]));
        items.ok.push(k.ok);
        items.attempts.push(k.attempts);
        items.latency_ms.push(k.latency_ms);
        items.error.push(k.error.map(|e| {
            let next = error_index.len() as u32;
            *error_index.entry(e).or_insert_with_key(|e| {
                items.error_texts.push(e.clone());
                next
            })
        }));
        items.error_kind.push(k.error_kind.and_then(kind_name));
        items.http_status.push(k.http_status);
        items.tokens.push(k.tokens);
        items.cost_usd.push(k.cost_usd);
        items.answer.push(k.answer);
        any_confidence |= k.confidence.is_some();
        items.confidence.push(k.confidence);
        items.label_probability.push(k.label_probability);
    }
    if !any_id {
        items.id.clear();
    }
    if !any_confidence {
        items.confidence.clear();
        items.label_probability.clear();
    }
    items
}
