//! When the next request may start: the in-flight limit (fixed or AIMD), the
//! minimum gap between starts, a requests-per-minute rate, and global cool-downs.
//!
//! The rate comes from the user's `rpm`, else from the endpoint's
//! `x-ratelimit-limit-requests`, else it is learned: when a 429 says the run is too
//! fast, the rate the endpoint accepted over the last few seconds is the rate it
//! allows, and the run paces itself just under it. A learned pace is bounded: it is
//! never slower than one request per retry-after (the endpoint's own word on when
//! to come back), and it relaxes with time, halving its gap every
//! `LEARNED_HALF_LIFE_MS` while the endpoint accepts requests, so that a recovered
//! endpoint or a raised limit is found again in seconds, whatever the rate. With
//! too few accepted requests to measure a rate (a 429 burst at the start), nothing
//! is learned: the cool-downs and the in-flight window do the slowing.

use std::collections::VecDeque;

use crate::config::RunConfig;
use crate::engine::{Pace, PaceSource};
use crate::ratelimit::RateLimitHeaders;
use crate::time::Millis;

/// Start-gate state. Times are kept in microseconds so that rates like 7 000 per
/// minute (8.57 ms apart) do not drift.
#[derive(Clone, Debug)]
pub(crate) struct Pacer {
    max_in_flight: usize,
    adaptive: bool,
    /// AIMD window: the current in-flight limit, `1.0..=max_in_flight`.
    window: f64,
    /// Requests sent before this instant cannot trigger another decrease: one
    /// halving per congestion event, as in TCP.
    last_decrease: Millis,
    in_flight: usize,
    delay_us: u64,
    /// No start before this (from `delay_ms`): strict.
    next_delay_start_us: u64,
    /// Gap of the requests-per-minute rate: the user's `rpm`, else the endpoint's
    /// advertised `x-ratelimit-limit-requests`, else learned from 429s (0 = none).
    rate_gap_us: u64,
    rate_source: RateSource,
    /// When requests the endpoint accepted (any answer but 429) came back, over the
    /// last `ACCEPTED_WINDOW_MS`.
    accepted: VecDeque<Millis>,
    first_accepted: Option<Millis>,
    /// Since when a learned gap has been relaxing: the last accepted request or the
    /// last 429, whichever is later (time of refusals does not relax it).
    relaxed_at: Option<Millis>,
    /// GCRA theoretical arrival time of the next start.
    rate_tat_us: u64,
    cooldown_until: Millis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RateSource {
    User,
    Header,
    Learned,
}

/// How far back accepted requests are counted to measure the allowed rate.
const ACCEPTED_WINDOW_MS: u64 = 5_000;
/// Pace this much below the measured rate.
const LEARNED_HEADROOM: f64 = 1.02;
/// Fewest accepted requests in the window that measure a rate.
const MIN_SAMPLES: usize = 5;
/// While the endpoint accepts requests, a learned gap halves this often: about 7%
/// per second, at any rate (a fraction per request would recover at the speed of
/// the pace it is recovering from).
const LEARNED_HALF_LIFE_MS: f64 = 10_000.0;
/// The slowest learned pace: one request a minute.
const MAX_LEARNED_GAP_US: u64 = 60_000_000;

fn us(t: Millis) -> u64 {
    t.0.saturating_mul(1000)
}

impl Pacer {
    pub(crate) fn new(config: &RunConfig) -> Pacer {
        Pacer {
            max_in_flight: config.concurrency,
            adaptive: config.adaptive_concurrency,
            window: config.concurrency as f64,
            last_decrease: Millis(0),
            in_flight: 0,
            delay_us: config.delay_ms.saturating_mul(1000),
            next_delay_start_us: 0,
            rate_gap_us: config.rpm.map_or(0, |rpm| 60_000_000 / u64::from(rpm)),
            rate_source: if config.rpm.is_some() {
                RateSource::User
            } else {
                RateSource::Learned
            },
            accepted: VecDeque::new(),
            first_accepted: None,
            relaxed_at: None,
            rate_tat_us: 0,
            cooldown_until: Millis(0),
        }
    }

    /// Current in-flight limit.
    pub(crate) fn limit(&self) -> usize {
        (self.window as usize).clamp(1, self.max_in_flight)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// What paces starts as of `now`, for a live display.
    pub(crate) fn pace(&self, now: Millis) -> Pace {
        let rate = (self.rate_gap_us > 0).then_some(self.rate_gap_us);
        Pace {
            source: rate.map(|_| match self.rate_source {
                RateSource::User => PaceSource::UserCap,
                RateSource::Header => PaceSource::EndpointHeaders,
                RateSource::Learned => PaceSource::Learned,
            }),
            requests_per_minute: rate.map(|gap| (60_000_000 + gap / 2) / gap),
            in_flight_limit: self.limit(),
            cooling_down_until: (self.cooldown_until > now).then_some(self.cooldown_until),
        }
    }

    /// Earliest time a start is allowed, ignoring the in-flight limit.
    pub(crate) fn next_start_at(&self) -> Millis {
        // GCRA with a tolerance of one gap: a timer that fires a little late does not
        // cost throughput, and no burst builds up while idle.
        let rate_us = self.rate_tat_us.saturating_sub(self.rate_gap_us);
        let at_us = self.next_delay_start_us.max(rate_us);
        Millis(at_us.div_ceil(1000)).max(self.cooldown_until)
    }

    /// Whether a request may start at `now`.
    pub(crate) fn may_start(&self, now: Millis) -> bool {
        self.in_flight < self.limit() && self.next_start_at() <= now
    }

    /// A request starts at `now` (the caller checked `may_start`).
    pub(crate) fn on_start(&mut self, now: Millis) {
        self.in_flight += 1;
        let now_us = us(now);
        self.next_delay_start_us = now_us.saturating_add(self.delay_us);
        if self.rate_gap_us > 0 {
            self.rate_tat_us = self
                .rate_tat_us
                .max(now_us)
                .saturating_add(self.rate_gap_us);
        }
    }

    /// A request ended (any outcome).
    pub(crate) fn on_finish(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// A request succeeded: grow the window by one per window of successes.
    pub(crate) fn on_success(&mut self) {
        if self.adaptive {
            self.window = (self.window + 1.0 / self.window).min(self.max_in_flight as f64);
        }
    }

    /// The endpoint took a request (answered anything but 429): it counts toward
    /// the rate the endpoint allows, and lets a learned pace relax.
    pub(crate) fn on_accepted(&mut self, now: Millis) {
        self.first_accepted.get_or_insert(now);
        if self.rate_source == RateSource::Learned {
            let since = self.relaxed_at.map_or(0, |t| now.since(t));
            let keep = (-(since as f64) / LEARNED_HALF_LIFE_MS).exp2();
            self.rate_gap_us = (self.rate_gap_us as f64 * keep) as u64;
            // The rest of the TAT belongs to the old, slower gap.
            self.rate_tat_us = self
                .rate_tat_us
                .min(us(now).saturating_add(self.rate_gap_us));
        }
        self.relaxed_at = Some(now);
        self.accepted.push_back(now);
        while self
            .accepted
            .front()
            .is_some_and(|t| now.since(*t) > ACCEPTED_WINDOW_MS)
        {
            self.accepted.pop_front();
        }
    }

    /// The endpoint said "too many requests" to a request sent at `sent_at`.
    /// `pause_ms`: how long nobody should start.
    pub(crate) fn on_rate_limited(&mut self, now: Millis, sent_at: Millis, pause_ms: u64) {
        self.cool_down(now, pause_ms);
        if sent_at < self.last_decrease {
            return;
        }
        self.last_decrease = now;
        self.relaxed_at = Some(now);
        if self.adaptive {
            self.window = (self.window / 2.0).max(1.0);
        }
        if self.rate_source == RateSource::Learned {
            if let Some(measured) = self.measured_gap_us(now) {
                // A retry-after of 0 says nothing about the rate.
                let slowest = match pause_ms {
                    0 => MAX_LEARNED_GAP_US,
                    ms => ms.saturating_mul(1000).min(MAX_LEARNED_GAP_US),
                };
                self.rate_gap_us = self.rate_gap_us.max(measured).min(slowest);
            }
        }
    }

    /// The gap that matches the rate the endpoint accepted lately, with headroom;
    /// `None` with too few answers to measure.
    fn measured_gap_us(&self, now: Millis) -> Option<u64> {
        let span_ms = self
            .first_accepted
            .map_or(0, |first| now.since(first))
            .min(ACCEPTED_WINDOW_MS);
        let n = self.accepted.len();
        if n < MIN_SAMPLES || span_ms < 100 {
            return None;
        }
        Some((span_ms as f64 * 1000.0 / n as f64 * LEARNED_HEADROOM) as u64)
    }

    /// Nobody starts before `now + ms`.
    pub(crate) fn cool_down(&mut self, now: Millis, ms: u64) {
        self.cooldown_until = self.cooldown_until.max(now.plus(ms));
    }

    /// Learns from the rate-limit headers every answer may carry.
    pub(crate) fn on_headers(&mut self, now: Millis, headers: &RateLimitHeaders) {
        if self.rate_source != RateSource::User {
            if let Some(limit) = headers.limit_requests.filter(|l| *l > 0) {
                self.rate_gap_us = 60_000_000 / limit;
                self.rate_source = RateSource::Header;
            }
        }
        let pause = headers.exhausted_for_ms();
        if pause > 0 {
            self.cool_down(now, pause);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_gap_spreads_starts_and_tolerates_one_late_timer() {
        let config = RunConfig {
            rpm: Some(6000),
            concurrency: 100,
            ..RunConfig::default()
        };
        let mut p = Pacer::new(&config);
        assert!(p.may_start(Millis(1000)));
        p.on_start(Millis(1000));
        // Next start allowed 10 ms after the first (tolerance lets it be at 1000).
        p.on_start(Millis(1000));
        assert_eq!(p.next_start_at(), Millis(1010));
        assert!(!p.may_start(Millis(1009)));
        // Starting 3 ms late does not push the schedule back.
        p.on_start(Millis(1013));
        assert_eq!(p.next_start_at(), Millis(1020));
    }

    #[test]
    fn aimd_halves_once_per_event_and_recovers() {
        let config = RunConfig {
            concurrency: 8,
            ..RunConfig::default()
        };
        let mut p = Pacer::new(&config);
        assert_eq!(p.limit(), 8);
        p.on_rate_limited(Millis(100), Millis(50), 0);
        assert_eq!(p.limit(), 4);
        // Another 429 for a request sent before the decrease: no second halving.
        p.on_rate_limited(Millis(110), Millis(60), 0);
        assert_eq!(p.limit(), 4);
        p.on_rate_limited(Millis(200), Millis(150), 0);
        assert_eq!(p.limit(), 2);
        for _ in 0..100 {
            p.on_success();
        }
        assert_eq!(p.limit(), 8);
    }

    #[test]
    fn a_429_without_headers_paces_at_the_rate_the_endpoint_accepted() {
        let mut p = Pacer::new(&RunConfig {
            concurrency: 64,
            adaptive_concurrency: false,
            ..RunConfig::default()
        });
        assert_eq!(p.next_start_at(), Millis(0));
        // 200 answers accepted over 2 s: 100 per second.
        for i in 0..200 {
            p.on_accepted(Millis(10_000 + i * 10));
        }
        p.on_rate_limited(Millis(12_000), Millis(11_990), 0);
        assert_eq!(p.rate_gap_us, 10_200);
        // Accepted requests relax the pace with time: a second takes ~7% off.
        for i in 0..=100 {
            p.on_accepted(Millis(12_000 + i * 10));
        }
        assert!(
            p.rate_gap_us < 9_600 && p.rate_gap_us > 9_400,
            "{}",
            p.rate_gap_us
        );
        // A 429 for a request sent before the last one counts once.
        let gap = p.rate_gap_us;
        p.on_rate_limited(Millis(13_000), Millis(11_995), 0);
        assert_eq!(p.rate_gap_us, gap);
        // Advertised limits win over what was learned.
        p.on_headers(
            Millis(13_000),
            &RateLimitHeaders {
                limit_requests: Some(600),
                ..RateLimitHeaders::default()
            },
        );
        assert_eq!(p.rate_gap_us, 100_000);
        p.on_accepted(Millis(13_100));
        assert_eq!(p.rate_gap_us, 100_000);
    }

    #[test]
    fn the_pace_says_which_rate_it_follows() {
        let mut p = Pacer::new(&RunConfig::default());
        let pace = p.pace(Millis(0));
        assert_eq!((pace.source, pace.requests_per_minute), (None, None));
        assert_eq!(pace.in_flight_limit, 8);
        for i in 0..200 {
            p.on_accepted(Millis(10_000 + i * 10));
        }
        p.on_rate_limited(Millis(12_000), Millis(11_990), 500);
        let pace = p.pace(Millis(12_000));
        assert_eq!(pace.source, Some(PaceSource::Learned));
        assert_eq!(pace.requests_per_minute, Some(5_882)); // 100/s less 2%
        assert_eq!(pace.in_flight_limit, 4);
        assert_eq!(pace.cooling_down_until, Some(Millis(12_500)));
        assert_eq!(p.pace(Millis(12_500)).cooling_down_until, None);
        let limit = RateLimitHeaders {
            limit_requests: Some(600),
            ..RateLimitHeaders::default()
        };
        p.on_headers(Millis(13_000), &limit);
        let pace = p.pace(Millis(13_000));
        assert_eq!(pace.source, Some(PaceSource::EndpointHeaders));
        assert_eq!(pace.requests_per_minute, Some(600));
        let mut user = Pacer::new(&RunConfig {
            rpm: Some(90),
            ..RunConfig::default()
        });
        user.on_headers(Millis(0), &limit);
        let pace = user.pace(Millis(0));
        assert_eq!(pace.source, Some(PaceSource::UserCap));
        assert_eq!(pace.requests_per_minute, Some(90));
    }

    #[test]
    fn a_429_burst_with_nothing_accepted_learns_no_pace() {
        // The endpoint refuses everything at first: there is no rate to measure, so
        // no gap may grow from it (it used to double per 429 and overflow at ~54).
        let mut p = Pacer::new(&RunConfig::default());
        for i in 0..1_000 {
            let t = Millis(i * 1_000);
            p.on_rate_limited(t, t, 1_000);
            p.on_finish();
        }
        assert_eq!(p.rate_gap_us, 0);
        assert_eq!(p.next_start_at(), Millis(1_000_000));
    }

    #[test]
    fn a_learned_pace_is_never_slower_than_retry_after_and_relaxes() {
        let mut p = Pacer::new(&RunConfig::default());
        // Five answers in 5 s: one a second, i.e. a 1.02 s gap measured...
        for i in 0..5 {
            p.on_accepted(Millis(1_000 + i * 1_000));
        }
        // ...but the endpoint said to come back in 200 ms.
        p.on_rate_limited(Millis(6_000), Millis(5_900), 200);
        assert_eq!(p.rate_gap_us, 200_000);
        // Endless 429s cannot push it further.
        for i in 1..1_000 {
            let t = Millis(6_000 + i * 300);
            p.on_rate_limited(t, t, 200);
        }
        assert_eq!(p.rate_gap_us, 200_000);
        // Ten seconds of accepted requests after the last 429 halve it, twenty
        // quarter it.
        let last_429 = 6_000 + 999 * 300;
        let near = |gap: u64, want: u64| gap.abs_diff(want) * 200 < want;
        for i in 1..=200 {
            p.on_accepted(Millis(last_429 + i * 100));
            if i == 100 {
                assert!(near(p.rate_gap_us, 100_000), "{}", p.rate_gap_us);
            }
        }
        assert!(near(p.rate_gap_us, 50_000), "{}", p.rate_gap_us);
    }

    #[test]
    fn endpoint_limit_and_exhaustion_pace_unless_user_rate() {
        let mut p = Pacer::new(&RunConfig::default());
        let h = RateLimitHeaders {
            limit_requests: Some(600),
            remaining_requests: Some(0),
            reset_requests_ms: Some(250),
            ..RateLimitHeaders::default()
        };
        p.on_headers(Millis(1000), &h);
        assert_eq!(p.next_start_at(), Millis(1250));
        p.on_start(Millis(1250));
        p.on_start(Millis(1250));
        assert_eq!(p.next_start_at(), Millis(1350));
        let mut user = Pacer::new(&RunConfig {
            rpm: Some(60),
            ..RunConfig::default()
        });
        user.on_headers(Millis(0), &h);
        user.on_start(Millis(0));
        user.on_start(Millis(0));
        assert_eq!(user.next_start_at(), Millis(1000));
    }
}
