//! The in-flight limit: how many requests may be out at once.
//!
//! With `concurrency` given it is that cap, halved on a 429 and grown back by one
//! per window of successes (AIMD), as the user asked. Otherwise it is found:
//!
//! - while the pace is known (a rate, requests or tokens per minute), it is at
//!   least what the pace needs at the measured latency (Little's law: rate ×
//!   latency, with headroom), so a run is never held below its rate by slots;
//! - above that, and while no pace is known, it starts small and grows while it is
//!   what holds requests back: by one per success (doubling each round trip, as TCP
//!   slow start) until the first 429 or until latency grows (the endpoint queues),
//!   then by one per round trip; a 429 halves it, and a round whose median latency
//!   is well above the best recent round shrinks it in proportion.
//!
//! Never above `max_in_flight`.

use std::collections::VecDeque;

/// Where a found limit starts.
const INITIAL: usize = 8;
/// In flight beyond rate × mean latency: latency varies, stragglers hold slots.
const HEADROOM: f64 = 1.5;
/// A round whose median latency is this many times the best recent round's says
/// the endpoint queues what is sent to it.
const QUEUEING: f64 = 1.8;
/// Recent rounds whose best median is the uncongested latency.
const ROUNDS_KEPT: usize = 16;
/// Weight of a new sample in the mean latency.
const LATENCY_WEIGHT: f64 = 0.1;

#[derive(Clone, Debug)]
pub(super) struct Window {
    max: usize,
    /// The user gave the cap (`concurrency`): no pace-driven floor, no latency rule.
    fixed: bool,
    adaptive: bool,
    size: f64,
    slow_start: bool,
    /// The last start filled the window: it, not the pace, held requests back.
    full: bool,
    mean_latency_ms: Option<f64>,
    /// Latencies of the successes of the round under way.
    round: Vec<u64>,
    /// Successes that make the round: the window when it began (one round trip).
    round_len: usize,
    /// Median latency of recent rounds.
    medians: VecDeque<u64>,
}

impl Window {
    pub(super) fn new(concurrency: Option<usize>, max_concurrency: usize, adaptive: bool) -> Self {
        let max = concurrency.unwrap_or(max_concurrency).max(1);
        let start = match concurrency {
            Some(c) => c,
            // Not adaptive: the limit does not move, so it is the cap.
            None if !adaptive => max,
            None => INITIAL,
        };
        Window {
            max,
            fixed: concurrency.is_some(),
            adaptive,
            size: start.min(max) as f64,
            slow_start: concurrency.is_none(),
            full: false,
            mean_latency_ms: None,
            round: Vec::new(),
            round_len: INITIAL,
            medians: VecDeque::new(),
        }
    }

    /// The limit now, for a pace of `per_ms` starts per millisecond (`None`: no
    /// pace known).
    pub(super) fn limit(&self, per_ms: Option<f64>) -> usize {
        let own = self.size as usize;
        let needed = match (self.fixed, per_ms, self.mean_latency_ms) {
            (false, Some(rate), Some(latency)) if self.adaptive => {
                (rate * latency * HEADROOM).ceil().min(self.max as f64) as usize + 1
            }
            _ => 0,
        };
        own.max(needed).clamp(1, self.max)
    }

    /// The mean latency of accepted answers, once there is one.
    pub(super) fn mean_latency_ms(&self) -> Option<f64> {
        self.mean_latency_ms
    }

    /// A request started, leaving `in_flight` out under a limit of `limit`.
    pub(super) fn on_start(&mut self, in_flight: usize, limit: usize) {
        self.full = in_flight >= limit;
    }

    /// An answer came back after `latency_ms` and was a success. `pace_known`: a
    /// rate paces starts, so latency says nothing about the window.
    pub(super) fn on_success(&mut self, latency_ms: u64, pace_known: bool) {
        let sample = latency_ms as f64;
        self.mean_latency_ms = Some(match self.mean_latency_ms {
            None => sample,
            Some(mean) => mean + (sample - mean) * LATENCY_WEIGHT,
        });
        if !self.adaptive {
            return;
        }
        if !self.fixed && !pace_known && self.end_of_round(latency_ms) {
            return;
        }
        // Grow only while the window is what holds requests back (as TCP grows
        // only a window that limits what it sends).
        if !self.full {
            return;
        }
        let step = if self.slow_start {
            1.0
        } else {
            1.0 / self.size
        };
        self.size = (self.size + step).min(self.max as f64);
    }

    /// Counts a success's latency into the round; at the round's end, shrinks the
    /// window if its median says the endpoint queues. True when it shrank.
    fn end_of_round(&mut self, latency_ms: u64) -> bool {
        if self.round.is_empty() {
            self.round_len = (self.size as usize).max(INITIAL);
        }
        self.round.push(latency_ms);
        if self.round.len() < self.round_len {
            return false;
        }
        let mid = self.round.len() / 2;
        let median = *self.round.select_nth_unstable(mid).1;
        self.round.clear();
        if self.medians.len() == ROUNDS_KEPT {
            self.medians.pop_front();
        }
        self.medians.push_back(median);
        let best = self.medians.iter().copied().min().unwrap_or(median);
        // A millisecond or two of noise is no queue.
        if (median as f64) > best as f64 * QUEUEING && median > best + 2 {
            self.slow_start = false;
            self.size = (self.size * best as f64 / median as f64).max(1.0);
            return true;
        }
        false
    }

    /// A congestion event (a 429): halve, and leave slow start for good.
    pub(super) fn on_congestion(&mut self) {
        self.slow_start = false;
        if self.adaptive {
            self.size = (self.size / 2.0).max(1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_cap_halves_on_429_and_grows_back_by_one_per_window() {
        let mut w = Window::new(Some(8), 256, true);
        assert_eq!(
            w.limit(Some(10.0)),
            8,
            "a fixed cap is not raised by the pace"
        );
        w.on_congestion();
        assert_eq!(w.limit(None), 4);
        for _ in 0..100 {
            w.on_start(4, 4);
            w.on_success(100, false);
        }
        assert_eq!(w.limit(None), 8);
        let mut still = Window::new(Some(8), 256, false);
        still.on_congestion();
        assert_eq!(still.limit(None), 8);
    }

    #[test]
    fn a_found_limit_doubles_per_round_trip_while_it_binds_and_latency_holds() {
        let mut w = Window::new(None, 256, true);
        assert_eq!(w.limit(None), 8);
        // Each success after the window filled adds one: 8 answers, 16 slots.
        w.on_start(8, 8);
        for _ in 0..8 {
            w.on_success(500, false);
        }
        assert_eq!(w.limit(None), 16);
        for _ in 0..1_000 {
            let n = w.limit(None);
            w.on_start(n, n);
            w.on_success(500, false);
        }
        assert_eq!(w.limit(None), 256, "stops at the cap");
    }

    #[test]
    fn a_window_that_does_not_bind_does_not_grow() {
        let mut w = Window::new(None, 256, true);
        for _ in 0..1_000 {
            w.on_start(3, 8);
            w.on_success(100, false);
        }
        assert_eq!(w.limit(None), 8);
    }

    #[test]
    fn latency_that_grows_with_the_window_stops_the_growth() {
        // A server that answers one request at a time in 100 ms: latency is the
        // queue ahead, 100 ms per request in flight.
        let mut w = Window::new(None, 256, true);
        let mut most = 0;
        for _ in 0..2_000 {
            let n = w.limit(None);
            most = most.max(n);
            w.on_start(n, n);
            w.on_success(100 * n as u64, false);
        }
        let end = w.limit(None);
        assert!(most <= 32, "grew to {most}");
        assert!(end <= 16, "settled at {end}");
    }

    #[test]
    fn a_known_pace_sets_the_floor_from_littles_law() {
        let mut w = Window::new(None, 256, true);
        // 100 per second, 300 ms: 30 in flight on average, 45 with headroom.
        w.on_success(300, true);
        assert_eq!(w.limit(Some(0.1)), 46);
        w.on_congestion();
        assert_eq!(w.limit(Some(0.1)), 46, "a 429 does not starve a known pace");
        assert_eq!(w.limit(Some(10.0)), 256, "never above the cap");
        assert_eq!(w.limit(None), 4, "the window itself halved");
    }
}
