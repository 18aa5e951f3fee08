//! `until_interval`: the agreement's anytime-valid confidence sequence, fed in
//! row order, and how far ahead of it rows are sent.
//!
//! The sequence's without-replacement guarantee is for observations in a
//! uniformly random order: the sample's seeded permutation, which numbers the
//! run's rows `0..n`. Answers come back in another order (latency, retries:
//! hard or failing rows come late), which could bias it; so a row final ahead
//! of the first row still pending waits here, and is fed once every row
//! before it is final. Restored rows (a journal's order is not row order) go
//! the same way. A row with no prediction (failed), or whose label is not one
//! of the CSV's, is passed over: failures are assumed unrelated to agreement.
//!
//! Rows sent past the first pending row cannot move the sequence until that
//! row is final (a retry waits its backoff meanwhile), so a run stopping on it
//! would have sent them in vain: fresh rows are sent only within
//! [`Precision::send_limit`] of it. This also bounds what waits here.

use std::collections::VecDeque;

use crate::anytime::ConfidenceSequence;

/// The sequence and the rows final ahead of its next row.
#[derive(Clone, Debug)]
pub(super) struct Precision {
    sequence: ConfidenceSequence,
    target: f64,
    /// Rows before it are fed (or passed over).
    next_row: usize,
    /// From `next_row` on: `None` while pending, `Some(None)` final with
    /// nothing to feed, `Some(Some(agreed))` final and compared.
    ahead: VecDeque<Option<Option<bool>>>,
}

impl Precision {
    /// At 95%, aimed at the half-width `target`, over `population` rows (the
    /// CSV's, when the run is a sample of it; `None`: an endless supply).
    pub(super) fn new(target: f64, population: Option<u64>) -> Precision {
        Precision {
            sequence: ConfidenceSequence::new(0.05, population).aiming_at(target),
            target,
            next_row: 0,
            ahead: VecDeque::new(),
        }
    }

    /// Row `row` is final: `agreed` is whether its prediction is its label
    /// (`None`: not compared). Feeds every row now in order.
    pub(super) fn settle(&mut self, row: usize, agreed: Option<bool>) {
        let Some(offset) = row.checked_sub(self.next_row) else {
            return; // fed already: a row is final once
        };
        if self.ahead.len() <= offset {
            self.ahead.resize(offset + 1, None);
        }
        self.ahead[offset] = Some(agreed);
        while let Some(Some(outcome)) = self.ahead.front().copied() {
            self.ahead.pop_front();
            self.next_row += 1;
            if let Some(agreed) = outcome {
                self.sequence.push(if agreed { 1.0 } else { 0.0 });
            }
        }
    }

    /// The sequence, fed rows `0..rows_in_order()`.
    pub(super) fn sequence(&self) -> &ConfidenceSequence {
        &self.sequence
    }

    /// Rows fed or passed over: every row before it is final.
    #[cfg(test)]
    pub(super) fn rows_in_order(&self) -> usize {
        self.next_row
    }

    /// Whether the interval is as narrow as asked.
    pub(super) fn reached(&self) -> bool {
        self.sequence.n() > 0 && self.sequence.half_width() <= self.target
    }

    /// Rows before it may have their first request: four times the in-flight
    /// limit past the first pending row (enough to keep the requests going
    /// while a row waits for its retry), or a tenth of the rows in order when
    /// more (so a long run is not held back): what a stop leaves sent but not
    /// fed is at most that.
    pub(super) fn send_limit(&self, in_flight_limit: usize) -> usize {
        let ahead = (4 * in_flight_limit).max(self.next_row / 10).max(1);
        self.next_row.saturating_add(ahead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed_in_order(outcomes: &[Option<bool>]) -> ConfidenceSequence {
        let mut s = ConfidenceSequence::new(0.05, Some(1000)).aiming_at(0.05);
        for a in outcomes.iter().flatten() {
            s.push(if *a { 1.0 } else { 0.0 });
        }
        s
    }

    #[test]
    fn rows_final_out_of_order_are_fed_in_row_order() {
        let outcomes = [
            Some(false),
            Some(true),
            None,
            Some(true),
            Some(false),
            Some(true),
        ];
        let mut p = Precision::new(0.05, Some(1000));
        for row in [3, 1, 5, 2] {
            p.settle(row, outcomes[row]);
        }
        assert_eq!((p.rows_in_order(), p.sequence().n()), (0, 0));
        assert_eq!(p.ahead.len(), 6);
        p.settle(0, outcomes[0]);
        assert_eq!((p.rows_in_order(), p.sequence().n()), (4, 3));
        p.settle(4, outcomes[4]);
        assert_eq!((p.rows_in_order(), p.sequence().n()), (6, 5));
        assert!(p.ahead.is_empty());
        // A row settled twice changes nothing.
        p.settle(1, Some(false));
        assert_eq!(p.sequence().n(), 5);
    }

    /// 200 rows, 1 in 7 disagreeing, 1 in 13 failed, final in blocks of 20
    /// each in reverse: fed as they came, the sequence would differ (its bets
    /// depend on what came before); fed here, it is the row-order one.
    #[test]
    fn the_sequence_is_the_one_fed_in_row_order() {
        let outcome = |row: usize| (row % 13 != 5).then_some(row % 7 != 0);
        let came: Vec<usize> = (0..200).map(|i| i / 20 * 20 + 19 - i % 20).collect();
        let mut p = Precision::new(0.05, Some(1000));
        for &row in &came {
            p.settle(row, outcome(row));
        }
        let in_row_order: Vec<_> = (0..200).map(outcome).collect();
        let as_they_came: Vec<_> = came.iter().map(|&r| outcome(r)).collect();
        assert_eq!(
            p.sequence().interval(),
            fed_in_order(&in_row_order).interval()
        );
        assert_ne!(
            p.sequence().interval(),
            fed_in_order(&as_they_came).interval()
        );
    }

    #[test]
    fn the_send_limit_follows_the_first_pending_row() {
        let mut p = Precision::new(0.05, None);
        assert_eq!(p.send_limit(8), 32);
        for row in 0..1000 {
            p.settle(row, Some(true));
        }
        assert_eq!(p.send_limit(8), 1100);
        assert_eq!(p.send_limit(64), 1256);
    }
}
