//! The requests-per-minute limit: a token bucket, and the headers that tell a
//! client about it (`x-ratelimit-*` as OpenAI sends them, `retry-after` and
//! `retry-after-ms` on a 429). The only part of the mock that depends on time.

use tokio::time::Instant;

/// Fixed token limit reported in the `x-ratelimit-*-tokens` headers.
pub(crate) const TOKEN_LIMIT: u64 = 10_000_000;

/// Token bucket: capacity max(1, rpm/60), refilled at rpm/60 tokens per second.
#[derive(Debug)]
pub(crate) struct Bucket {
    rpm: u32,
    per_sec: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

/// What the bucket said about one arrival.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateInfo {
    pub rpm: u32,
    pub allowed: bool,
    /// floor(tokens) after this request.
    pub remaining: u64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: u64,
    /// Milliseconds until one token is available (only when refused).
    pub wait_ms: u64,
}

impl Bucket {
    /// A full bucket for `rpm` requests per minute (`rpm > 0`).
    pub fn new(rpm: u32, now: Instant) -> Self {
        let per_sec = f64::from(rpm) / 60.0;
        let capacity = per_sec.max(1.0);
        Bucket {
            rpm,
            per_sec,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    fn ms_until(&self, tokens: f64) -> u64 {
        let missing = (tokens - self.tokens).max(0.0);
        // Nanosecond-sized float noise must not round up to a whole millisecond.
        ((missing / self.per_sec * 1000.0) - 1e-6).ceil().max(0.0) as u64
    }

    /// One arrival at `now`: takes a token when there is one.
    pub fn take(&mut self, now: Instant) -> RateInfo {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.per_sec).min(self.capacity);
        let allowed = self.tokens + 1e-9 >= 1.0;
        let mut wait_ms = 0;
        if allowed {
            self.tokens = (self.tokens - 1.0).max(0.0);
        } else {
            wait_ms = self.ms_until(1.0).max(1);
        }
        RateInfo {
            rpm: self.rpm,
            allowed,
            remaining: (self.tokens + 1e-9).floor() as u64,
            reset_ms: self.ms_until(self.capacity),
            wait_ms,
        }
    }
}

impl RateInfo {
    /// The headers of a refused request: how long to wait.
    pub fn retry_headers(&self) -> [(&'static str, String); 2] {
        [
            ("retry-after-ms", self.wait_ms.to_string()),
            (
                "retry-after",
                self.wait_ms.div_ceil(1000).max(1).to_string(),
            ),
        ]
    }
}

/// `x-ratelimit-*` headers: the request ones from the bucket (when there is one),
/// the token ones with a large fixed limit.
pub(crate) fn ratelimit_headers(info: Option<&RateInfo>) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(6);
    if let Some(info) = info {
        out.push(("x-ratelimit-limit-requests", info.rpm.to_string()));
        out.push(("x-ratelimit-remaining-requests", info.remaining.to_string()));
        out.push(("x-ratelimit-reset-requests", go_duration(info.reset_ms)));
    }
    out.push(("x-ratelimit-limit-tokens", TOKEN_LIMIT.to_string()));
    out.push(("x-ratelimit-remaining-tokens", TOKEN_LIMIT.to_string()));
    out.push(("x-ratelimit-reset-tokens", "0s".to_owned()));
    out
}

/// A duration in Go's `time.Duration.String` style as OpenAI sends it in
/// `x-ratelimit-reset-*`: `0s`, `20ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`.
fn go_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let h = ms / 3_600_000;
    let m = (ms / 60_000) % 60;
    let rest = ms % 60_000;
    let (secs, frac) = (rest / 1000, rest % 1000);
    let s = if frac == 0 {
        secs.to_string()
    } else {
        let f = format!("{frac:03}");
        format!("{secs}.{}", f.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(20), "20ms");
        assert_eq!(go_duration(1000), "1s");
        assert_eq!(go_duration(1500), "1.5s");
        assert_eq!(go_duration(8640), "8.64s");
        assert_eq!(go_duration(360_000), "6m0s");
        assert_eq!(go_duration(3_723_000), "1h2m3s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
    }

    #[test]
    fn bucket_refills_over_time() {
        let t0 = Instant::now();
        let mut b = Bucket::new(120, t0); // 2 per second, capacity 2
        assert!(b.take(t0).allowed);
        let second = b.take(t0);
        assert!(second.allowed);
        assert_eq!(second.remaining, 0);
        assert_eq!(second.reset_ms, 1000);
        let third = b.take(t0);
        assert!(!third.allowed);
        assert_eq!(third.wait_ms, 500);
        let later = b.take(t0 + Duration::from_millis(500));
        assert!(later.allowed);
        // A slow limit still lets one request through (capacity min 1).
        let mut slow = Bucket::new(6, t0);
        assert!(slow.take(t0).allowed);
        let refused = slow.take(t0);
        assert!(!refused.allowed);
        assert_eq!(refused.wait_ms, 10_000);
    }

    #[test]
    fn headers_of_an_answer_and_a_refusal() {
        let t0 = Instant::now();
        let mut b = Bucket::new(120, t0);
        let first = b.take(t0);
        let names: Vec<&str> = ratelimit_headers(Some(&first))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names.len(), 6);
        assert!(ratelimit_headers(None)
            .iter()
            .all(|(n, _)| n.ends_with("-tokens")));
        b.take(t0);
        let refused = b.take(t0);
        assert_eq!(
            refused.retry_headers(),
            [
                ("retry-after-ms", "500".to_owned()),
                ("retry-after", "1".to_owned())
            ]
        );
    }
}
