//! The token budget: starts spaced so that a tokens-per-minute limit is not
//! overdrawn.
//!
//! Endpoints charge a request against their token limit when they admit it, for
//! the prompt and the most the answer may take (`max_tokens`), and settle later. So
//! each start is charged the same way here, in advance: the prompt estimate (the
//! provider's published image formula until answers report their `usage`, then the
//! mean of what they report) plus the `max_tokens` the request sends. A limit that
//! counts only input tokens (Anthropic's `input-tokens`) is charged the prompt
//! alone. The limit is the user's `tpm`, else the endpoint's own word.

use crate::provider::TokenCharge;
use crate::ratelimit::RateLimitHeaders;
use crate::time::Millis;

/// Spacing beyond the exact charge: a timer firing early, a prompt a little
/// larger than the mean.
const HEADROOM: f64 = 1.01;
/// Weight of a new answer's prompt tokens in the estimate.
const USAGE_WEIGHT: f64 = 1.0 / 16.0;
/// Each token 429 the estimate did not foresee charges this much more, up to
/// `MAX_SCALE`.
const SCALE_STEP: f64 = 1.05;
const MAX_SCALE: f64 = 2.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LimitSource {
    User,
    Header,
}

#[derive(Clone, Debug)]
pub(super) struct TokenBudget {
    /// Tokens per minute (0 = no limit known).
    per_minute: u64,
    source: Option<LimitSource>,
    /// The limit counts `max_tokens` as well as the prompt.
    counts_output: bool,
    prompt: f64,
    learned_prompt: bool,
    max_output: u64,
    scale: f64,
    /// Since when the limit is known: requests sent before it were not paced by it.
    known_since: Option<Millis>,
    /// GCRA theoretical arrival time of the next start, in µs.
    tat_us: u64,
    /// Starts made before a limit was known, and when the first was: once one
    /// is, they are charged as if it had paced them.
    unpaced_starts: u64,
    first_start_us: Option<u64>,
}

impl TokenBudget {
    pub(super) fn new(tpm: Option<u64>, charge: TokenCharge) -> Self {
        TokenBudget {
            per_minute: tpm.unwrap_or(0),
            source: tpm.map(|_| LimitSource::User),
            counts_output: true,
            prompt: charge.prompt as f64,
            learned_prompt: false,
            max_output: charge.max_output,
            scale: 1.0,
            known_since: tpm.map(|_| Millis(0)),
            tat_us: 0,
            unpaced_starts: 0,
            first_start_us: None,
        }
    }

    /// Tokens per minute and where the limit comes from, when one is known.
    pub(super) fn limit(&self) -> Option<(u64, LimitSource)> {
        Some((self.per_minute, self.source?)).filter(|(n, _)| *n > 0)
    }

    /// What one request is charged now, in tokens.
    pub(super) fn charge(&self) -> f64 {
        let output = if self.counts_output {
            self.max_output as f64
        } else {
            0.0
        };
        ((self.prompt + output) * self.scale).max(1.0)
    }

    /// Starts per millisecond the budget allows (`None`: no limit known).
    pub(super) fn per_ms(&self) -> Option<f64> {
        let (per_minute, _) = self.limit()?;
        Some(per_minute as f64 / 60_000.0 / self.charge())
    }

    fn gap_us(&self) -> u64 {
        match self.limit() {
            Some((per_minute, _)) => {
                (self.charge() * HEADROOM * 60_000_000.0 / per_minute as f64) as u64
            }
            None => 0,
        }
    }

    /// Earliest start, in µs (GCRA, a tolerance of one request).
    pub(super) fn next_start_us(&self) -> u64 {
        self.tat_us.saturating_sub(self.gap_us())
    }

    pub(super) fn on_start(&mut self, now_us: u64) {
        let gap = self.gap_us();
        if gap > 0 {
            self.tat_us = self.tat_us.max(now_us).saturating_add(gap);
        } else {
            self.unpaced_starts += 1;
            self.first_start_us.get_or_insert(now_us);
        }
    }

    /// An answer reported its prompt tokens.
    pub(super) fn on_usage(&mut self, prompt_tokens: u64) {
        let p = prompt_tokens as f64;
        if self.learned_prompt {
            self.prompt += (p - self.prompt) * USAGE_WEIGHT;
        } else {
            self.prompt = p;
            self.learned_prompt = true;
        }
    }

    /// The endpoint's advertised limit, unless the user set one: input tokens
    /// where it counts them apart (the prompt is what is known at admission),
    /// else all tokens.
    pub(super) fn on_headers(&mut self, now: Millis, headers: &RateLimitHeaders) {
        if self.source == Some(LimitSource::User) {
            return;
        }
        let (limit, counts_output) = match (headers.input_tokens.limit, headers.tokens.limit) {
            (Some(input), _) => (input, false),
            (None, Some(all)) => (all, true),
            (None, None) => return,
        };
        if limit > 0 {
            self.per_minute = limit;
            self.counts_output = counts_output;
            self.source = Some(LimitSource::Header);
            self.known_since.get_or_insert(now);
            // What went out before the limit was known has drawn on it: start
            // where pacing them would have left the schedule, not afresh (the
            // first requests of a run otherwise overdraw it twice).
            if let Some(first) = self.first_start_us.take() {
                let owed = first.saturating_add(self.unpaced_starts.saturating_mul(self.gap_us()));
                self.tat_us = self.tat_us.max(owed);
                self.unpaced_starts = 0;
            }
        }
    }

    /// A 429 for tokens, to a request sent at `sent_at`. True when a limit is
    /// known: if it paced that request, the charge was too low and is raised.
    /// False when no limit is known (the caller learns a pace as for a request
    /// 429).
    pub(super) fn on_token_limited(&mut self, sent_at: Millis) -> bool {
        if self.limit().is_none() {
            return false;
        }
        if self.known_since.is_some_and(|known| sent_at >= known) {
            self.scale = (self.scale * SCALE_STEP).min(MAX_SCALE);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::LimitWindow;

    const CHARGE: TokenCharge = TokenCharge {
        prompt: 2_900,
        max_output: 100,
    };

    #[test]
    fn starts_are_spaced_by_their_charge() {
        // 180,000 a minute = 3 a ms; 3,000 tokens a request: one per second.
        let mut b = TokenBudget::new(Some(180_000), CHARGE);
        assert_eq!(b.charge(), 3_000.0);
        assert_eq!(b.next_start_us(), 0);
        b.on_start(5_000_000);
        b.on_start(5_000_000);
        assert_eq!(b.next_start_us(), 6_010_000);
        // What answers report replaces the seed, then moves it slowly.
        b.on_usage(1_900);
        assert_eq!(b.charge(), 2_000.0);
        b.on_usage(3_500);
        assert_eq!(b.charge(), 2_100.0);
    }

    #[test]
    fn no_limit_no_spacing_until_the_endpoint_names_one() {
        let mut b = TokenBudget::new(None, CHARGE);
        b.on_start(1_000);
        assert_eq!((b.next_start_us(), b.per_ms()), (0, None));
        assert!(!b.on_token_limited(Millis(0)));
        let mut h = RateLimitHeaders {
            tokens: LimitWindow {
                limit: Some(60_000),
                ..LimitWindow::default()
            },
            ..RateLimitHeaders::default()
        };
        b.on_headers(Millis(1_000), &h);
        assert_eq!(b.limit(), Some((60_000, LimitSource::Header)));
        assert_eq!(b.per_ms(), Some(1.0 / 3_000.0));
        // Anthropic counts input tokens apart: only the prompt is charged.
        h.input_tokens.limit = Some(30_000);
        b.on_headers(Millis(2_000), &h);
        assert_eq!(b.limit(), Some((30_000, LimitSource::Header)));
        assert_eq!(b.charge(), 2_900.0);
        // A 429 for a request sent before the limit was known says nothing of
        // the charge; one for a request it paced charges more.
        assert!(b.on_token_limited(Millis(999)));
        assert_eq!(b.charge(), 2_900.0);
        assert!(b.on_token_limited(Millis(1_000)));
        assert_eq!(b.charge(), 2_900.0 * 1.05);
        for _ in 0..100 {
            b.on_token_limited(Millis(5_000));
        }
        assert_eq!(b.charge(), 5_800.0);
    }

    #[test]
    fn starts_made_before_the_limit_was_known_are_charged_to_it() {
        let mut b = TokenBudget::new(None, CHARGE);
        for _ in 0..8 {
            b.on_start(1_000_000);
        }
        let mut h = RateLimitHeaders::default();
        h.tokens.limit = Some(180_000); // 3,000 tokens a second: one request
        b.on_headers(Millis(1_020), &h);
        // Eight requests' worth, 1.01 s each from the first, less the tolerance.
        assert_eq!(b.next_start_us(), 1_000_000 + 7 * 1_010_000);
    }

    #[test]
    fn the_users_cap_wins_over_headers() {
        let mut b = TokenBudget::new(Some(90_000), CHARGE);
        let mut h = RateLimitHeaders::default();
        h.tokens.limit = Some(10_000_000);
        b.on_headers(Millis(0), &h);
        assert_eq!(b.limit(), Some((90_000, LimitSource::User)));
    }
}
