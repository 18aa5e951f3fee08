//! Throughput per batch report, over a real span of time.
//!
//! Pipelined batches often report in the same millisecond, so rows over the gap
//! since the previous report is either undefined (no time passed) or absurd
//! (302,500 rows/s over 1 ms). Instead each report's throughput is the rows
//! finished since the latest earlier report at least [`THROUGHPUT_SPAN_MS`] before
//! it, over that time; until a report is that far from the session's start, the
//! rows and time since the start. Every timed report so gets a figure, in rows per
//! second.

use std::collections::VecDeque;

/// The shortest span a throughput figure is measured over, once the session is
/// that old.
pub const THROUGHPUT_SPAN_MS: u64 = 1_000;

/// The recent reports of one session: (elapsed ms, rows finished so far).
#[derive(Clone, Debug, Default)]
pub struct ThroughputWindow {
    marks: VecDeque<(u64, u64)>,
    rows: u64,
}

impl ThroughputWindow {
    /// A report at `elapsed_ms` since the session's start whose batch finished
    /// `rows` rows in this session; its throughput in rows per second (`None` at
    /// 0 ms). An elapsed time below the previous one starts a new session.
    pub fn add(&mut self, elapsed_ms: u64, rows: u64) -> Option<f64> {
        if self.marks.back().is_some_and(|&(e, _)| elapsed_ms < e) {
            *self = ThroughputWindow::default();
        }
        self.rows += rows;
        self.marks.push_back((elapsed_ms, self.rows));
        let old_enough = |e: u64| elapsed_ms - e >= THROUGHPUT_SPAN_MS;
        while self.marks.len() >= 2 && old_enough(self.marks[1].0) {
            self.marks.pop_front();
        }
        let (since_ms, since_rows) = match self.marks.front() {
            Some(&(e, r)) if old_enough(e) => (e, r),
            _ => (0, 0),
        };
        let span = elapsed_ms - since_ms;
        (span > 0).then(|| {
            let rate = (self.rows - since_rows) as f64 * 1000.0 / span as f64;
            (rate * 100.0).round() / 100.0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 21: reports in the same millisecond each get a figure (they had
    /// none, or 50 rows over 1 ms), measured over at least a second once the
    /// session is a second old.
    #[test]
    fn reports_in_the_same_millisecond_each_get_a_rate_over_a_real_span() {
        let mut w = ThroughputWindow::default();
        let rates: Vec<_> = [
            (500, 50),
            (500, 50),
            (501, 50),
            (1_500, 50),
            (1_500, 50),
            (2_600, 50),
        ]
        .into_iter()
        .map(|(e, r)| w.add(e, r))
        .collect();
        // 50, 100, 150 rows in the first half second; then the rows since the
        // second 500 ms report over 1 s; then the 50 since the last 1,500 ms one
        // over 1.1 s.
        assert_eq!(
            rates,
            [
                Some(100.0),
                Some(200.0),
                Some(299.4),
                Some(100.0),
                Some(150.0),
                Some(45.45)
            ]
        );
    }

    #[test]
    fn a_new_session_starts_again_and_zero_time_has_no_rate() {
        let mut w = ThroughputWindow::default();
        assert_eq!(w.add(0, 50), None);
        assert_eq!(
            w.add(2_000, 50),
            Some(25.0),
            "50 rows since the 0 ms report"
        );
        // A resumed session's clock starts again.
        assert_eq!(w.add(1_000, 10), Some(10.0));
    }
}
