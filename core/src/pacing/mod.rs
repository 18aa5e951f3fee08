//! When the next request may start: the in-flight limit ([`window`]), the minimum
//! gap between starts, a requests-per-minute rate, a tokens-per-minute budget
//! ([`tokens`]), and global cool-downs.
//!
//! The request rate comes from the user's `rpm`, else from the endpoint's
//! advertised limit (`x-ratelimit-limit-requests`, `anthropic-ratelimit-requests-
//! limit`), else it is learned: when a 429 says the run is too fast, the rate the
//! endpoint accepted over the last few seconds is the rate it allows, and the run
//! paces itself just under it. (A retry-after does not bound it: from a token
//! bucket it is the time to the next single token, far shorter than the gap the
//! bucket's rate needs.) A learned pace relaxes with time while the endpoint
//! accepts requests, so that a recovered endpoint or a raised limit is found
//! again: its gap halves every `MIN_HALF_LIFE_MS` at first, and each 429 that
//! comes back soon after the last one doubles that half-life (up to
//! `MAX_HALF_LIFE_MS`), so a run that has found the limit probes above it rarely;
//! a minute without 429s makes it quick again. With too few accepted requests to
//! measure a rate (a 429 burst at the start), nothing is learned: the cool-downs
//! and the in-flight window do the slowing. A 429 about tokens is learned from
//! the same way when no token limit is known.
//!
//! The pace (the slower of the request rate and the token budget) sets how many
//! requests the window lets out at once: rate × latency, with headroom.

mod pace;
mod tokens;
mod window;

use std::collections::VecDeque;

use crate::config::RunConfig;
use crate::provider::TokenCharge;
use crate::ratelimit::RateLimitHeaders;
use crate::time::Millis;

pub use pace::{Pace, PaceSource};
use tokens::{LimitSource, TokenBudget};
use window::Window;

/// Start-gate state. Times are kept in microseconds so that rates like 7 000 per
/// minute (8.57 ms apart) do not drift.
#[derive(Clone, Debug)]
pub(crate) struct Pacer {
    window: Window,
    /// Requests sent before this instant cannot trigger another decrease: one
    /// halving per congestion event, as in TCP.
    last_decrease: Millis,
    in_flight: usize,
    delay_us: u64,
    /// No start before this (from `delay_ms`): strict.
    next_delay_start_us: u64,
    /// Gap of the requests-per-minute rate: the user's `rpm`, else the endpoint's
    /// advertised limit, else learned from 429s (0 = none).
    rate_gap_us: u64,
    rate_source: RateSource,
    /// When requests the endpoint accepted (any answer but 429) came back, over the
    /// last `ACCEPTED_WINDOW_MS`.
    accepted: VecDeque<Millis>,
    first_accepted: Option<Millis>,
    /// Since when a learned gap has been relaxing: the last accepted request or the
    /// last 429, whichever is later (time of refusals does not relax it).
    relaxed_at: Option<Millis>,
    /// How fast a learned gap relaxes now, and when the last 429 that measured it
    /// came.
    half_life_ms: f64,
    last_learned_429: Option<Millis>,
    /// Since when 429s say the run is at the endpoint's limit: what was accepted
    /// before was helped by the endpoint's burst allowance.
    saturated_since: Option<Millis>,
    /// GCRA theoretical arrival time of the next start.
    rate_tat_us: u64,
    tokens: TokenBudget,
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
/// While the endpoint accepts requests, a learned gap halves this often at first:
/// about 7% per second, at any rate (a fraction per request would recover at the
/// speed of the pace it is recovering from).
const MIN_HALF_LIFE_MS: f64 = 10_000.0;
/// The slowest relaxing, once 429s keep coming back: about 0.2% per second.
const MAX_HALF_LIFE_MS: f64 = 320_000.0;
/// After this long without a 429, relaxing is quick again.
const QUIET_MS: u64 = 60_000;
/// The slowest learned pace: one request a minute.
const MAX_LEARNED_GAP_US: u64 = 60_000_000;

fn us(t: Millis) -> u64 {
    t.0.saturating_mul(1000)
}

impl Pacer {
    /// `charge`: what one request costs against a token limit
    /// ([`crate::provider::Provider::token_charge`]).
    pub(crate) fn new(config: &RunConfig, charge: TokenCharge) -> Pacer {
        Pacer {
            window: Window::new(
                config.concurrency,
                config.max_concurrency,
                config.adaptive_concurrency,
            ),
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
            half_life_ms: MIN_HALF_LIFE_MS,
            last_learned_429: None,
            saturated_since: None,
            rate_tat_us: 0,
            tokens: TokenBudget::new(config.tpm, charge),
            cooldown_until: Millis(0),
        }
    }

    /// Starts per millisecond the pace allows: the slower of the request rate and
    /// the token budget; `None` when neither is known.
    fn pace_per_ms(&self) -> Option<f64> {
        let requests = (self.rate_gap_us > 0).then(|| 1_000.0 / self.rate_gap_us as f64);
        match (requests, self.tokens.per_ms()) {
            (Some(r), Some(t)) => Some(r.min(t)),
            (r, t) => r.or(t),
        }
    }

    /// Current in-flight limit.
    pub(crate) fn limit(&self) -> usize {
        self.window.limit(self.pace_per_ms())
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// What paces starts as of `now`, for a live display.
    pub(crate) fn pace(&self, now: Millis) -> Pace {
        let rate = (self.rate_gap_us > 0).then_some(self.rate_gap_us);
        let tokens = self.tokens.limit();
        Pace {
            source: rate.map(|_| match self.rate_source {
                RateSource::User => PaceSource::UserCap,
                RateSource::Header => PaceSource::EndpointHeaders,
                RateSource::Learned => PaceSource::Learned,
            }),
            requests_per_minute: rate.map(|gap| (60_000_000 + gap / 2) / gap),
            token_source: tokens.map(|(_, source)| match source {
                LimitSource::User => PaceSource::UserCap,
                LimitSource::Header => PaceSource::EndpointHeaders,
            }),
            tokens_per_minute: tokens.map(|(n, _)| n),
            tokens_per_request: tokens.map(|_| self.tokens.charge().round() as u64),
            latency_ms: self.window.mean_latency_ms().map(|l| l.round() as u64),
            in_flight_limit: self.limit(),
            cooling_down_until: (self.cooldown_until > now).then_some(self.cooldown_until),
        }
    }

    /// Earliest time a start is allowed, ignoring the in-flight limit.
    pub(crate) fn next_start_at(&self) -> Millis {
        // GCRA with a tolerance of one gap: a timer that fires a little late does not
        // cost throughput, and no burst builds up while idle.
        let rate_us = self.rate_tat_us.saturating_sub(self.rate_gap_us);
        let at_us = self
            .next_delay_start_us
            .max(rate_us)
            .max(self.tokens.next_start_us());
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
        self.tokens.on_start(now_us);
        self.window.on_start(self.in_flight, self.limit());
    }

    /// A request ended (any outcome).
    pub(crate) fn on_finish(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// A request succeeded after `latency_ms`, its answer reporting
    /// `prompt_tokens` when it did.
    pub(crate) fn on_success(&mut self, latency_ms: u64, prompt_tokens: Option<u64>) {
        if let Some(p) = prompt_tokens.filter(|p| *p > 0) {
            self.tokens.on_usage(p);
        }
        let pace_known = self.pace_per_ms().is_some();
        self.window.on_success(latency_ms, pace_known);
    }

    /// The endpoint took a request (answered anything but 429): it counts toward
    /// the rate the endpoint allows, and lets a learned pace relax.
    pub(crate) fn on_accepted(&mut self, now: Millis) {
        self.first_accepted.get_or_insert(now);
        if self.rate_source == RateSource::Learned {
            let since = self.relaxed_at.map_or(0, |t| now.since(t));
            if self
                .last_learned_429
                .is_some_and(|t| now.since(t) > QUIET_MS)
            {
                self.half_life_ms = MIN_HALF_LIFE_MS;
            }
            let keep = (-(since as f64) / self.half_life_ms).exp2();
            self.rate_gap_us = (self.rate_gap_us as f64 * keep).round() as u64;
            // The starts scheduled ahead were spaced by the old, slower gap: what
            // is left of that schedule shrinks with it. (Cutting it to one new gap
            // instead forgave the schedule at every answer: a start or two more
            // per answer than the pace allows.)
            let now_us = us(now);
            if self.rate_tat_us > now_us {
                let ahead = (self.rate_tat_us - now_us) as f64 * keep;
                self.rate_tat_us = now_us.saturating_add(ahead.round() as u64);
            }
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

    /// The endpoint said "too many requests" (or, with `tokens`, "too many
    /// tokens") to a request sent at `sent_at`. `pause_ms`: how long nobody
    /// should start.
    pub(crate) fn on_rate_limited(
        &mut self,
        now: Millis,
        sent_at: Millis,
        pause_ms: u64,
        tokens: bool,
    ) {
        self.cool_down(now, pause_ms);
        if sent_at < self.last_decrease {
            return;
        }
        self.last_decrease = now;
        self.relaxed_at = Some(now);
        self.window.on_congestion();
        // A token limit the run knows of: the request rate is not at fault.
        if tokens && self.tokens.on_token_limited(sent_at) {
            return;
        }
        if self.rate_source == RateSource::Learned {
            if self
                .last_learned_429
                .is_none_or(|t| now.since(t) > ACCEPTED_WINDOW_MS)
            {
                self.saturated_since = Some(now);
            }
            if let Some(measured) = self.measured_gap_us(now) {
                self.rate_gap_us = self.rate_gap_us.max(measured).min(MAX_LEARNED_GAP_US);
                // Back at the limit soon after the last time: probe more slowly.
                let soon = (2.0 * self.half_life_ms) as u64;
                if self.last_learned_429.is_some_and(|t| now.since(t) < soon) {
                    self.half_life_ms = (self.half_life_ms * 2.0).min(MAX_HALF_LIFE_MS);
                }
            }
            self.last_learned_429 = Some(now);
        }
    }

    /// The gap that matches the rate the endpoint accepted lately, with headroom;
    /// `None` with too few answers to measure. Once the run has been at the limit
    /// for a second, only answers to requests sent since count (those that come
    /// a latency after it): an endpoint's burst allowance (a full bucket at the
    /// start) made what came before look faster than the rate it allows.
    fn measured_gap_us(&self, now: Millis) -> Option<u64> {
        let first = self.first_accepted?;
        let latency = self.window.mean_latency_ms().unwrap_or(0.0) as u64;
        let since = match self.saturated_since.map(|s| s.plus(latency)) {
            Some(s) if now.0 >= s.0.saturating_add(1_000) => s.max(first),
            _ => first,
        };
        let start = since.max(Millis(now.0.saturating_sub(ACCEPTED_WINDOW_MS)));
        let n = self.accepted.iter().filter(|t| **t >= start).count();
        let span_ms = now.since(start);
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
            if let Some(limit) = headers.requests.limit.filter(|l| *l > 0) {
                self.rate_gap_us = 60_000_000 / limit;
                self.rate_source = RateSource::Header;
            }
        }
        self.tokens.on_headers(now, headers);
        let pause = headers.exhausted_for_ms();
        if pause > 0 {
            self.cool_down(now, pause);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::LimitWindow;

    const NO_TOKENS: TokenCharge = TokenCharge {
        prompt: 0,
        max_output: 0,
    };

    impl Pacer {
        fn new_for_test(config: &RunConfig) -> Pacer {
            Pacer::new(config, NO_TOKENS)
        }
    }

    #[test]
    fn rate_gap_spreads_starts_and_tolerates_one_late_timer() {
        let config = RunConfig {
            rpm: Some(6000),
            concurrency: Some(100),
            ..RunConfig::default()
        };
        let mut p = Pacer::new(&config, NO_TOKENS);
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
    fn a_429_without_headers_paces_at_the_rate_the_endpoint_accepted() {
        let mut p = Pacer::new_for_test(&RunConfig {
            concurrency: Some(64),
            adaptive_concurrency: false,
            ..RunConfig::default()
        });
        assert_eq!(p.next_start_at(), Millis(0));
        // 200 answers accepted over 2 s: 100 per second.
        for i in 0..200 {
            p.on_accepted(Millis(10_000 + i * 10));
        }
        p.on_rate_limited(Millis(12_000), Millis(11_990), 0, false);
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
        p.on_rate_limited(Millis(13_000), Millis(11_995), 0, false);
        assert_eq!(p.rate_gap_us, gap);
        // Advertised limits win over what was learned.
        p.on_headers(
            Millis(13_000),
            &RateLimitHeaders {
                requests: LimitWindow {
                    limit: Some(600),
                    ..LimitWindow::default()
                },
                ..RateLimitHeaders::default()
            },
        );
        assert_eq!(p.rate_gap_us, 100_000);
        p.on_accepted(Millis(13_100));
        assert_eq!(p.rate_gap_us, 100_000);
    }

    #[test]
    fn the_pace_says_which_rate_it_follows() {
        let mut p = Pacer::new_for_test(&RunConfig::default());
        let pace = p.pace(Millis(0));
        assert_eq!((pace.source, pace.requests_per_minute), (None, None));
        assert_eq!(pace.in_flight_limit, 8);
        for i in 0..200 {
            p.on_accepted(Millis(10_000 + i * 10));
        }
        p.on_rate_limited(Millis(12_000), Millis(11_990), 500, false);
        let pace = p.pace(Millis(12_000));
        assert_eq!(pace.source, Some(PaceSource::Learned));
        assert_eq!(pace.requests_per_minute, Some(5_882)); // 100/s less 2%
        assert_eq!(pace.in_flight_limit, 4);
        assert_eq!(pace.cooling_down_until, Some(Millis(12_500)));
        assert_eq!(p.pace(Millis(12_500)).cooling_down_until, None);
        let limit = RateLimitHeaders {
            requests: LimitWindow {
                limit: Some(600),
                ..LimitWindow::default()
            },
            ..RateLimitHeaders::default()
        };
        p.on_headers(Millis(13_000), &limit);
        let pace = p.pace(Millis(13_000));
        assert_eq!(pace.source, Some(PaceSource::EndpointHeaders));
        assert_eq!(pace.requests_per_minute, Some(600));
        let mut user = Pacer::new_for_test(&RunConfig {
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
        let mut p = Pacer::new_for_test(&RunConfig::default());
        for i in 0..1_000 {
            let t = Millis(i * 1_000);
            p.on_rate_limited(t, t, 1_000, false);
            p.on_finish();
        }
        assert_eq!(p.rate_gap_us, 0);
        assert_eq!(p.next_start_at(), Millis(1_000_000));
    }

    #[test]
    fn a_learned_pace_is_what_was_accepted_whatever_retry_after_says_and_relaxes() {
        let mut p = Pacer::new_for_test(&RunConfig::default());
        // Five answers in 5 s: one a second, i.e. a 1.02 s gap measured. A token
        // bucket's retry-after (200 ms to the next token) does not shorten it.
        for i in 0..5 {
            p.on_accepted(Millis(1_000 + i * 1_000));
        }
        p.on_rate_limited(Millis(6_000), Millis(5_900), 200, false);
        assert_eq!(p.rate_gap_us, 1_020_000);
        // Endless 429s cannot push it further.
        for i in 1..1_000 {
            let t = Millis(6_000 + i * 300);
            p.on_rate_limited(t, t, 200, false);
        }
        assert_eq!(p.rate_gap_us, 1_020_000);
        // Ten seconds of accepted requests after the last 429 halve it, twenty
        // quarter it.
        let last_429 = 6_000 + 999 * 300;
        let near = |gap: u64, want: u64| gap.abs_diff(want) * 200 < want;
        for i in 1..=200 {
            p.on_accepted(Millis(last_429 + i * 100));
            if i == 100 {
                assert!(near(p.rate_gap_us, 510_000), "{}", p.rate_gap_us);
            }
        }
        assert!(near(p.rate_gap_us, 255_000), "{}", p.rate_gap_us);
    }

    #[test]
    fn endpoint_limit_and_exhaustion_pace_unless_user_rate() {
        let mut p = Pacer::new_for_test(&RunConfig::default());
        let h = RateLimitHeaders {
            requests: LimitWindow {
                limit: Some(600),
                remaining: Some(0),
                reset_ms: Some(250),
            },
            ..RateLimitHeaders::default()
        };
        p.on_headers(Millis(1000), &h);
        assert_eq!(p.next_start_at(), Millis(1250));
        p.on_start(Millis(1250));
        p.on_start(Millis(1250));
        assert_eq!(p.next_start_at(), Millis(1350));
        let mut user = Pacer::new_for_test(&RunConfig {
            rpm: Some(60),
            ..RunConfig::default()
        });
        user.on_headers(Millis(0), &h);
        user.on_start(Millis(0));
        user.on_start(Millis(0));
        assert_eq!(user.next_start_at(), Millis(1000));
    }
}
