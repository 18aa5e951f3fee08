//! Where a run with `until_interval` will likely stop, before it starts.
//!
//! The run stops at the first batch's end at which the agreement's
//! anytime-valid interval ([`crate::anytime::ConfidenceSequence`], aimed at the
//! target width) is at most ±w. When it gets there depends on the agreement,
//! which is not known yet; so the estimate runs the run's own sequence over a
//! stand-in stream at a few assumed agreements and reads the row count of the
//! first batch end where it is narrow enough.
//!
//! The stand-in stream is deterministic and low-discrepancy: row `i` agrees
//! when `round((i + 1) p)` grows (the Beatty sequence of `p`), so every prefix
//! holds as close to `p n` agreements as whole rows can. A random order
//! wanders around that; the stop of the low-discrepancy stream is within 10%
//! of the mean stop of 1,000 seeded random runs at each agreement of the
//! simulation in `anytime`'s tests (the test
//! `the_estimated_stop_is_within_a_tenth_of_the_simulated_mean` says where).
//!
//! What it does not do: foresee failures and refusals (rows that are sent but
//! not compared, so feed no sequence), or the few rows a run finishes after
//! the batch that stopped it.

use serde::{Deserialize, Serialize};

use crate::anytime::ConfidenceSequence;

/// Agreements the stop is worked out at: from the widest interval (50%) to a
/// model that is nearly always right.
pub const ASSUMED_AGREEMENTS: [f64; 3] = [0.5, 0.9, 0.97];

/// Rows compared before a run aimed at ±`half_width` stops, at agreement
/// `agreement`, over a CSV of `population` rows (the sequence's
/// without-replacement form; `None`: an endless supply), checking at every
/// `batch` rows, and at most `cap` rows (the rows the run would send).
pub fn rows_at_stop(
    agreement: f64,
    half_width: f64,
    population: Option<u64>,
    batch: usize,
    cap: usize,
) -> usize {
    let p = agreement.clamp(0.0, 1.0);
    let batch = batch.max(1);
    let mut sequence = ConfidenceSequence::new(0.05, population).aiming_at(half_width);
    let agreed = |n: usize| (n as f64 * p).round();
    for n in 1..=cap {
        sequence.push(agreed(n) - agreed(n - 1));
        if n % batch == 0 && sequence.half_width() <= half_width {
            return n;
        }
    }
    cap
}

/// Where a run with `until_interval` will likely stop, at a few agreements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopEstimate {
    /// The half-width asked.
    pub half_width: f64,
    /// The stop at each of [`ASSUMED_AGREEMENTS`], in that order.
    pub at: Vec<StopAt>,
}

/// The stop at one assumed agreement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopAt {
    /// The agreement assumed.
    pub agreement: f64,
    /// Requests sent before the stop (at most the rows that would be sent).
    pub rows: usize,
    /// Whether the run would go through every row first (the interval is not
    /// that narrow before the rows run out).
    pub every_row: bool,
    /// The cost of those requests, live (when a price is known).
    pub live_usd: Option<f64>,
    /// The same through the provider's batch API.
    pub batch_api_usd: Option<f64>,
    /// Minutes at the pace (when one is known).
    pub minutes: Option<f64>,
}

impl StopEstimate {
    /// The fewest and the most rows over the assumed agreements.
    pub fn rows_range(&self) -> (usize, usize) {
        let rows = self.at.iter().map(|s| s.rows);
        (
            rows.clone().min().unwrap_or(0),
            rows.max().unwrap_or(0),
        )
    }

    /// The stop at `agreement`, when it is one of the assumed.
    pub fn at(&self, agreement: f64) -> Option<&StopAt> {
        self.at.iter().find(|s| s.agreement == agreement)
    }
}
