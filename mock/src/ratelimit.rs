//! The rate limits: a requests-per-minute and a tokens-per-minute token bucket,
//! and the headers that tell a client about them (`x-ratelimit-*` as OpenAI sends
//! them, `retry-after` and `retry-after-ms` on a 429). The only part of the mock
//! that depends on time.
//!
//! # The buckets
//!
//! Each limit is a token bucket holding one second of it: `--rpm R` is a bucket of
//! capacity max(1, R/60) refilled continuously at R/60 requests per second;
//! `--tpm N` one of capacity N/60 refilled at N/60 tokens per second. A request is
//! admitted only when both buckets (those that exist) allow it, and only then is
//! it charged to both: 1 to the request bucket, its token charge to the token
//! bucket. A request whose token charge alone is more than the token bucket's
//! capacity could never be admitted; it is [`Verdict::TooLarge`] (the server
//! answers 400) rather than a 429 a client would retry forever.
//!
//! # The headers
//!
//! What each `x-ratelimit-*` header says is in the crate doc ("Rate limits"):
//! request ones from the request bucket, token ones from the token bucket
//! (`remaining` = the bucket's content as a share of the per-minute limit), and
//! none without `--tpm`.

use shadow_core::time::format_go_duration;
use tokio::time::Instant;

/// Float noise (a nanosecond's refill) must not refuse a request or floor a count
/// one below what it is.
const EPS: f64 = 1e-6;

/// One token bucket: `level` of `capacity`, refilled at `per_sec`.
#[derive(Debug)]
struct Bucket {
    per_sec: f64,
    capacity: f64,
    level: f64,
}

impl Bucket {
    /// A full bucket.
    fn new(per_sec: f64, capacity: f64) -> Self {
        Bucket {
            per_sec,
            capacity,
            level: capacity,
        }
    }

    fn refill(&mut self, secs: f64) {
        self.level = (self.level + secs * self.per_sec).min(self.capacity);
    }

    fn allows(&self, cost: f64) -> bool {
        self.level + EPS >= cost
    }

    fn take(&mut self, cost: f64) {
        self.level = (self.level - cost).max(0.0);
    }

    /// Milliseconds until the bucket holds `level` (rounded up; 0 when it does).
    fn ms_until(&self, level: f64) -> u64 {
        let missing = (level - self.level).max(0.0);
        ((missing / self.per_sec * 1000.0) - EPS).ceil().max(0.0) as u64
    }
}

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    Requests,
    Tokens,
}

/// What the limits decided about one arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Admitted and charged.
    Admitted,
    /// Refused for now (429): not charged anywhere.
    Refused {
        /// The limit that needs the longer wait (requests when they tie).
        by: Limit,
        /// Milliseconds until both buckets would admit this request (at least 1).
        wait_ms: u64,
    },
    /// The token charge is more than the token bucket holds when full: no wait
    /// helps (400). Not charged.
    TooLarge,
}

/// The state of one bucket after an arrival, as its headers tell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BucketInfo {
    /// The per-minute limit.
    pub limit: u64,
    /// Requests: whole requests in the bucket. Tokens: the bucket's content as a
    /// share of the per-minute limit (see the module doc).
    pub remaining: u64,
    /// Milliseconds until the bucket is full.
    pub reset_ms: u64,
}

/// What the limits said about one arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Admission {
    pub verdict: Verdict,
    /// The request bucket after this arrival (with `--rpm`).
    pub requests: Option<BucketInfo>,
    /// The token bucket after this arrival (with `--tpm`).
    pub tokens: Option<BucketInfo>,
    /// The token charge asked for.
    pub charge: u64,
}

/// The mock's limits: either bucket may be absent.
#[derive(Debug)]
pub(crate) struct Limits {
    requests: Option<(u32, Bucket)>,
    tokens: Option<(u64, Bucket)>,
    last: Instant,
}

impl Limits {
    /// Full buckets for `rpm` requests and `tpm` tokens per minute; `None` or 0 =
    /// no such limit. `None` when there is no limit at all.
    pub fn new(rpm: Option<u32>, tpm: Option<u64>, now: Instant) -> Option<Self> {
        let requests = rpm.filter(|&r| r > 0).map(|rpm| {
            let per_sec = f64::from(rpm) / 60.0;
            (rpm, Bucket::new(per_sec, per_sec.max(1.0)))
        });
        let tokens = tpm.filter(|&t| t > 0).map(|tpm| {
            let per_sec = tpm as f64 / 60.0;
            (tpm, Bucket::new(per_sec, per_sec))
        });
        (requests.is_some() || tokens.is_some()).then_some(Limits {
            requests,
            tokens,
            last: now,
        })
    }

    /// One arrival at `now` asking for `charge` tokens: admitted (and charged to
    /// both buckets), refused with the wait until both allow it, or too large.
    pub fn admit(&mut self, now: Instant, charge: u64) -> Admission {
        let secs = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        let cost = charge as f64;
        if let Some((_, b)) = &mut self.requests {
            b.refill(secs);
        }
        if let Some((_, b)) = &mut self.tokens {
            b.refill(secs);
        }
        let verdict = if self
            .tokens
            .as_ref()
            .is_some_and(|(_, b)| cost > b.capacity + EPS)
        {
            Verdict::TooLarge
        } else {
            let wait = |bucket: Option<&Bucket>, cost: f64| {
                bucket
                    .filter(|b| !b.allows(cost))
                    .map(|b| b.ms_until(cost).max(1))
            };
            let requests = self.requests.as_ref().map(|(_, b)| b);
            let tokens = self.tokens.as_ref().map(|(_, b)| b);
            match (wait(requests, 1.0), wait(tokens, cost)) {
                (None, None) => {
                    if let Some((_, b)) = &mut self.requests {
                        b.take(1.0);
                    }
                    if let Some((_, b)) = &mut self.tokens {
                        b.take(cost);
                    }
                    Verdict::Admitted
                }
                (r, t) => {
                    let (r, t) = (r.unwrap_or(0), t.unwrap_or(0));
                    if r >= t {
                        Verdict::Refused {
                            by: Limit::Requests,
                            wait_ms: r,
                        }
                    } else {
                        Verdict::Refused {
                            by: Limit::Tokens,
                            wait_ms: t,
                        }
                    }
                }
            }
        };
        Admission {
            verdict,
            requests: self.requests.as_ref().map(|(rpm, b)| BucketInfo {
                limit: u64::from(*rpm),
                remaining: (b.level + EPS).floor() as u64,
                reset_ms: b.ms_until(b.capacity),
            }),
            tokens: self.tokens.as_ref().map(|(tpm, b)| {
                let limit = *tpm as f64;
                // = level × 60: the bucket's content as a share of the minute's limit.
                let remaining = (limit - (b.capacity - b.level) * 60.0).clamp(0.0, limit);
                BucketInfo {
                    limit: *tpm,
                    remaining: (remaining + EPS).floor() as u64,
                    reset_ms: b.ms_until(b.capacity),
                }
            }),
            charge,
        }
    }
}

impl Admission {
    /// The headers of a refused request: how long to wait (none unless refused).
    pub fn retry_headers(&self) -> Vec<(&'static str, String)> {
        match self.verdict {
            Verdict::Refused { wait_ms, .. } => vec![
                ("retry-after-ms", wait_ms.to_string()),
                ("retry-after", wait_ms.div_ceil(1000).max(1).to_string()),
            ],
            _ => Vec::new(),
        }
    }

    /// The message of a refusal (429) or of a too-large request (400), worded as
    /// OpenAI words them; `None` when admitted.
    pub fn message(&self, model: &str) -> Option<String> {
        let per_min = |limit: Limit| match limit {
            Limit::Requests => "requests per min (RPM)",
            Limit::Tokens => "tokens per min (TPM)",
        };
        match self.verdict {
            Verdict::Admitted => None,
            Verdict::Refused { by, wait_ms } => {
                let (info, requested) = match by {
                    Limit::Requests => (self.requests, 1),
                    Limit::Tokens => (self.tokens, self.charge),
                };
                let info = info?;
                Some(format!(
                    "Rate limit reached for {model} in organization org-mock on {}: \
                     Limit {}, Used {}, Requested {requested}. Please try again in {}.",
                    per_min(by),
                    info.limit,
                    info.limit - info.remaining,
                    format_go_duration(wait_ms),
                ))
            }
            Verdict::TooLarge => {
                let limit = self.tokens?.limit;
                Some(format!(
                    "Request too large for {model} in organization org-mock on {}: \
                     Limit {limit}, Requested {}. The mock admits at most {} tokens at once \
                     (one second of the limit). The input or output tokens must be reduced \
                     in order to run successfully.",
                    per_min(Limit::Tokens),
                    self.charge,
                    limit / 60,
                ))
            }
        }
    }
}

/// `x-ratelimit-*` headers: the request ones from the request bucket and the
/// token ones from the token bucket, each only when there is that bucket.
///
/// Without a token limit the mock sends no token headers. (It used to announce a
/// fixed 10,000,000 tokens a minute; a client that paces by
/// `x-ratelimit-limit-tokens` then holds itself to that, ~57 requests a second at
/// the ~2,900 tokens an image request is charged, far below what an unlimited
/// mock answers.)
pub(crate) fn ratelimit_headers(adm: Option<&Admission>) -> Vec<(&'static str, String)> {
    window_headers(
        [
            (
                adm.and_then(|a| a.requests),
                [
                    "x-ratelimit-limit-requests",
                    "x-ratelimit-remaining-requests",
                    "x-ratelimit-reset-requests",
                ],
            ),
            (
                adm.and_then(|a| a.tokens),
                [
                    "x-ratelimit-limit-tokens",
                    "x-ratelimit-remaining-tokens",
                    "x-ratelimit-reset-tokens",
                ],
            ),
        ],
        |info| format_go_duration(info.reset_ms),
    )
}

/// Each bucket's limit, remaining and reset, under the three names given with
/// it (when there is that bucket), the reset as `reset` writes it: every
/// dialect's rate-limit headers but their names and their time format.
pub(crate) fn window_headers<const N: usize>(
    windows: [(Option<BucketInfo>, [&'static str; 3]); N],
    reset: impl Fn(&BucketInfo) -> String,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(3 * N);
    for (info, [limit, remaining, at]) in windows {
        if let Some(info) = info {
            out.push((limit, info.limit.to_string()));
            out.push((remaining, info.remaining.to_string()));
            out.push((at, reset(&info)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Limits of `rpm` and `tpm` that start full now, and now.
    fn limits(rpm: Option<u32>, tpm: Option<u64>) -> (Instant, Limits) {
        let t0 = Instant::now();
        (t0, Limits::new(rpm, tpm, t0).unwrap())
    }

    fn rpm_only(rpm: u32, t0: Instant) -> Limits {
        Limits::new(Some(rpm), None, t0).unwrap()
    }

    fn refused(a: &Admission) -> Option<(Limit, u64)> {
        match a.verdict {
            Verdict::Refused { by, wait_ms } => Some((by, wait_ms)),
            _ => None,
        }
    }

    #[test]
    fn go_durations() {
        for (ms, text) in [
            (0, "0s"),
            (20, "20ms"),
            (1000, "1s"),
            (1500, "1.5s"),
            (8640, "8.64s"),
            (360_000, "6m0s"),
            (3_723_000, "1h2m3s"),
            (3_600_000, "1h0m0s"),
        ] {
            assert_eq!(format_go_duration(ms), text);
            // What the mock writes, the core reads back.
            assert_eq!(shadow_core::time::parse_go_duration(text), Some(ms));
        }
    }

    #[test]
    fn no_limit_no_buckets() {
        let t0 = Instant::now();
        assert!(Limits::new(None, None, t0).is_none());
        assert!(Limits::new(Some(0), Some(0), t0).is_none());
    }

    #[test]
    fn bucket_refills_over_time() {
        let t0 = Instant::now();
        let mut b = rpm_only(120, t0); // 2 per second, capacity 2
        assert_eq!(b.admit(t0, 1).verdict, Verdict::Admitted);
        let second = b.admit(t0, 1);
        assert_eq!(second.verdict, Verdict::Admitted);
        let info = second.requests.unwrap();
        assert_eq!((info.remaining, info.reset_ms), (0, 1000));
        let third = b.admit(t0, 1);
        assert_eq!(refused(&third), Some((Limit::Requests, 500)));
        assert_eq!(b.admit(t0 + ms(500), 1).verdict, Verdict::Admitted);
        // A slow limit still lets one request through (capacity min 1).
        let mut slow = rpm_only(6, t0);
        assert_eq!(slow.admit(t0, 1).verdict, Verdict::Admitted);
        assert_eq!(refused(&slow.admit(t0, 1)), Some((Limit::Requests, 10_000)));
        // Without --tpm the token charge plays no part.
        assert_eq!(
            slow.admit(t0 + ms(10_000), 1_000_000).verdict,
            Verdict::Admitted
        );
    }

    #[test]
    fn token_bucket_refuses_with_the_wait_for_this_charge() {
        // 600,000 tpm: 10,000 tokens per second, capacity 10,000.
        let (t0, mut l) = limits(None, Some(600_000));
        let first = l.admit(t0, 4_000);
        assert_eq!(first.verdict, Verdict::Admitted);
        let info = first.tokens.unwrap();
        // 6,000 of 10,000 left: 60% of the minute's limit.
        assert_eq!(info.limit, 600_000);
        assert_eq!(info.remaining, 360_000);
        assert_eq!(info.reset_ms, 400);
        assert_eq!(l.admit(t0, 4_000).verdict, Verdict::Admitted);
        // 2,000 left: a 4,000 charge waits 200 ms, a 3,000 one 100 ms.
        let third = l.admit(t0, 4_000);
        assert_eq!(refused(&third), Some((Limit::Tokens, 200)));
        // A refusal charges nothing.
        assert_eq!(third.tokens.unwrap().remaining, 120_000);
        assert_eq!(refused(&l.admit(t0, 3_000)), Some((Limit::Tokens, 100)));
        assert_eq!(l.admit(t0, 2_000).verdict, Verdict::Admitted);
        let empty = l.admit(t0, 1);
        assert_eq!(refused(&empty), Some((Limit::Tokens, 1)));
        assert_eq!(empty.tokens.unwrap().remaining, 0);
        assert_eq!(empty.tokens.unwrap().reset_ms, 1000);
        assert_eq!(
            l.admit(t0 + ms(399), 4_000).verdict,
            Verdict::Refused {
                by: Limit::Tokens,
                wait_ms: 1,
            }
        );
        assert_eq!(l.admit(t0 + ms(400), 4_000).verdict, Verdict::Admitted);
    }

    #[test]
    fn token_bucket_admits_at_most_its_rate() {
        // 300,000 tpm = 5,000 tokens/s; requests of 3,833 tokens offered every
        // 10 ms for 20 s (far more than the limit): the tokens admitted over the
        // window are at most one bucket plus the refill.
        let (t0, mut l) = limits(Some(60_000), Some(300_000));
        let (mut admitted, mut tokens, mut by_requests) = (0u64, 0u64, 0u64);
        for i in 0..2_000u64 {
            let a = l.admit(t0 + ms(10 * i), 3_833);
            match a.verdict {
                Verdict::Admitted => {
                    admitted += 1;
                    tokens += 3_833;
                }
                Verdict::Refused {
                    by: Limit::Requests,
                    ..
                } => by_requests += 1,
                _ => {}
            }
        }
        let window_secs = 20.0;
        let most = 5_000.0 * (1.0 + window_secs);
        assert!(tokens as f64 <= most, "{tokens} tokens admitted");
        // ... and it is not stingy: within one request's charge of the rate.
        assert!(tokens as f64 >= 5_000.0 * window_secs - 3_833.0, "{tokens}");
        assert_eq!(by_requests, 0, "1,000 rps never binds");
        assert!(admitted > 0);
    }

    #[test]
    fn both_buckets_must_allow_and_the_longer_wait_names_the_refusal() {
        // 60 rpm (capacity 1) and 60,000 tpm (capacity 1,000).
        let (t0, mut l) = limits(Some(60), Some(60_000));
        assert_eq!(l.admit(t0, 600).verdict, Verdict::Admitted);
        // Requests wait 1 s, tokens (200 missing) 200 ms: requests refuse.
        let a = l.admit(t0, 600);
        assert_eq!(refused(&a), Some((Limit::Requests, 1000)));
        // The token bucket was not charged by that refusal.
        assert_eq!(a.tokens.unwrap().remaining, 24_000);
        // A second later the request bucket is full, the token one too: a
        // refusal by tokens alone charges no request.
        let b = l.admit(t0 + ms(1000), 1_000);
        assert_eq!(b.verdict, Verdict::Admitted);
        let c = l.admit(t0 + ms(2000), 1_000);
        assert_eq!(c.verdict, Verdict::Admitted);
        let d = l.admit(t0 + ms(2900), 1_000);
        // requests: 0.9 in the bucket -> 100 ms; tokens: 900 -> 100 ms. Tie: requests.
        assert_eq!(refused(&d), Some((Limit::Requests, 100)));
        let e = l.admit(t0 + ms(2950), 1_000);
        assert_eq!(refused(&e), Some((Limit::Requests, 50)));
        assert_eq!(l.admit(t0 + ms(3000), 1_000).verdict, Verdict::Admitted);
        // Tokens the longer wait.
        let mut l = Limits::new(Some(600), Some(60_000), t0).unwrap();
        assert_eq!(l.admit(t0, 1_000).verdict, Verdict::Admitted);
        let f = l.admit(t0, 500);
        assert_eq!(refused(&f), Some((Limit::Tokens, 500)));
        assert_eq!(f.requests.unwrap().remaining, 9, "not charged");
    }

    #[test]
    fn too_large_is_not_a_wait() {
        let (t0, mut l) = limits(None, Some(60_000)); // capacity 1,000
        assert_eq!(l.admit(t0, 1_001).verdict, Verdict::TooLarge);
        // Nothing charged: the whole bucket is still there.
        assert_eq!(l.admit(t0, 1_000).verdict, Verdict::Admitted);
        // Too large even when the bucket is empty.
        assert_eq!(l.admit(t0, 5_000).verdict, Verdict::TooLarge);
        let a = l.admit(t0, 5_000);
        assert!(a.retry_headers().is_empty());
        assert_eq!(
            a.message("gpt-4o-mini").unwrap(),
            "Request too large for gpt-4o-mini in organization org-mock on tokens per min \
             (TPM): Limit 60000, Requested 5000. The mock admits at most 1000 tokens at \
             once (one second of the limit). The input or output tokens must be reduced in \
             order to run successfully."
        );
    }

    #[test]
    fn messages_as_openai_words_them() {
        let (t0, mut l) = limits(Some(120), Some(600_000));
        assert_eq!(l.admit(t0, 9_000).verdict, Verdict::Admitted);
        let tokens = l.admit(t0, 2_500);
        assert_eq!(
            tokens.message("gpt-4o-mini").unwrap(),
            "Rate limit reached for gpt-4o-mini in organization org-mock on tokens per min \
             (TPM): Limit 600000, Used 540000, Requested 2500. Please try again in 150ms."
        );
        assert_eq!(
            tokens.retry_headers(),
            vec![
                ("retry-after-ms", "150".to_owned()),
                ("retry-after", "1".to_owned())
            ]
        );
        assert_eq!(l.admit(t0, 1).verdict, Verdict::Admitted);
        let requests = l.admit(t0, 1);
        assert_eq!(
            requests.message("m").unwrap(),
            "Rate limit reached for m in organization org-mock on requests per min (RPM): \
             Limit 120, Used 120, Requested 1. Please try again in 500ms."
        );
        let mut slow = Limits::new(Some(6), None, t0).unwrap();
        slow.admit(t0, 1);
        let long = slow.admit(t0 + ms(1), 1);
        assert!(long
            .message("m")
            .unwrap()
            .ends_with("Please try again in 9.999s."));
        assert_eq!(long.retry_headers()[1], ("retry-after", "10".to_owned()));
        assert_eq!(l.admit(t0 + ms(60_000), 1).message("m"), None);
    }

    #[test]
    fn headers_of_an_answer_and_a_refusal() {
        let t0 = Instant::now();
        let mut b = rpm_only(120, t0);
        let first = b.admit(t0, 1);
        let mut t = Limits::new(None, Some(120_000), t0).unwrap(); // 2,000/s
        let tokens_only = t.admit(t0, 1_500);
        // Each bucket's headers, and only its: without --tpm no token headers.
        for (admission, want) in [
            (
                &first,
                [
                    ("x-ratelimit-limit-requests", "120"),
                    ("x-ratelimit-remaining-requests", "1"),
                    ("x-ratelimit-reset-requests", "500ms"),
                ],
            ),
            (
                &tokens_only,
                [
                    ("x-ratelimit-limit-tokens", "120000"),
                    ("x-ratelimit-remaining-tokens", "30000"),
                    ("x-ratelimit-reset-tokens", "750ms"),
                ],
            ),
        ] {
            let headers = ratelimit_headers(Some(admission));
            let got: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            assert_eq!(got, want);
        }
        assert!(ratelimit_headers(None).is_empty());
        b.admit(t0, 1);
        let refused = b.admit(t0, 1);
        assert_eq!(
            refused.retry_headers(),
            vec![
                ("retry-after-ms", "500".to_owned()),
                ("retry-after", "1".to_owned())
            ]
        );
    }
}
