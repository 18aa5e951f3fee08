//! Issue 12: with default settings, a run finds the endpoint's pace by itself:
//! how many requests to keep in flight (rate × latency when a rate is known, grown
//! while latency holds when none is) and how fast to start them under a
//! requests-per-minute or tokens-per-minute limit.

use shadow_core::report::Summary;
use shadow_core::{Millis, RunConfig};

use crate::sim::{csv_of, ok, rate_limited, Log, Reply, Sim, T0};

const LABELS: &[&str] = &["cat", "dog", "bird"];

/// Default settings, as a user who passes no flag gets them.
fn defaults() -> RunConfig {
    RunConfig {
        run_id: T0.to_file_stamp(),
        csv_path: "training-data/labels.csv".into(),
        ..RunConfig::default()
    }
}

fn efficiency(s: &Summary, ideal_ms: f64) -> f64 {
    ideal_ms / s.statistics.elapsed_ms as f64
}

fn share_429(s: &Summary) -> f64 {
    s.statistics.rate_limit_hits as f64 / s.statistics.requests as f64
}

#[test]
fn default_settings_reach_an_advertised_request_rate_at_any_latency() {
    // 100 a second; at 300 ms that needs 30 in flight, far above where the limit
    // starts (8): the old fixed default reached 8 / 0.3 s = 27 a second.
    for latency in [100, 300] {
        let n = 2_000;
        let log = Sim::new(
            defaults(),
            csv_of(n, LABELS),
            rate_limited(100.0, latency, true),
        )
        .finish();
        let s = log.summary.unwrap();
        assert_eq!(s.statistics.successful, n);
        let (eff, share) = (efficiency(&s, n as f64 * 10.0), share_429(&s));
        eprintln!(
            "headers, {latency} ms: efficiency {eff:.3}, 429 share {share:.4}, most in flight {}",
            log.max_in_flight
        );
        assert!(eff >= 0.95, "{latency} ms: efficiency {eff:.3}");
        assert!(share <= 0.01, "{latency} ms: 429 share {share:.4}");
        // Little's law: 100/s × latency, with headroom, not the cap of 256.
        let needed = 100 * latency as usize / 1000;
        assert!(log.max_in_flight >= needed, "{}", log.max_in_flight);
        assert!(log.max_in_flight <= needed * 2 + 4, "{}", log.max_in_flight);
    }
}

#[test]
fn default_settings_learn_an_unadvertised_rate() {
    // No headers: 100 a second at 100 ms, 50 a second at 300 ms (10 and 15 in
    // flight needed), 30 s at the limit.
    for (per_second, latency) in [(100.0, 100), (50.0, 300)] {
        let n = (per_second * 30.0) as usize;
        let log = Sim::new(
            defaults(),
            csv_of(n, LABELS),
            rate_limited(per_second, latency, false),
        )
        .finish();
        let s = log.summary.unwrap();
        assert_eq!(s.statistics.successful, n);
        let ideal_ms = n as f64 * 1000.0 / per_second;
        let (eff, share) = (efficiency(&s, ideal_ms), share_429(&s));
        eprintln!(
            "no headers, {per_second}/s, {latency} ms: efficiency {eff:.3}, 429 share {share:.4}, most in flight {}",
            log.max_in_flight
        );
        assert!(eff >= 0.90, "efficiency {eff:.3}");
        // Learning costs 429s at the start, while the endpoint's burst allowance
        // makes it look faster than it is (about 90 at 50 a second, in the first
        // 3 s); then about one every few seconds, where the pace probes above the
        // limit.
        assert!(share <= 0.08, "429 share {share:.4}");
        let late = log
            .events
            .iter()
            .filter(|(at, what)| what == "429" && at.since(T0) > 5_000)
            .count();
        assert!(late <= 15, "{late} 429s after the first 5 s");
    }
}

#[test]
fn with_no_limit_the_in_flight_limit_grows_to_the_cap() {
    // 2,000 requests of 500 ms and no limit: the run is bound by latency, so it
    // should fill every slot it may use.
    for max in [256, 64] {
        let config = RunConfig {
            max_concurrency: max,
            ..defaults()
        };
        let log = Sim::new(config, csv_of(2_000, LABELS), |item, _, _| {
            (500, ok(&item.label))
        })
        .finish();
        let s = log.summary.unwrap();
        let ideal_ms = 2_000.0 * 500.0 / max as f64;
        eprintln!(
            "no limit, max {max}: {} ms for an ideal {ideal_ms} ms, most in flight {}",
            s.statistics.elapsed_ms, log.max_in_flight
        );
        assert_eq!(log.max_in_flight, max);
        // Doubling from 8 to the cap takes a few round trips.
        let ramp_ms = 500.0 * (max as f64 / 8.0).log2();
        assert!(
            (s.statistics.elapsed_ms as f64) <= ideal_ms + ramp_ms + 500.0,
            "{} ms",
            s.statistics.elapsed_ms
        );
    }
}

#[test]
fn a_server_that_queues_is_not_flooded() {
    // One request at a time, 100 ms each (a local model server): latency is the
    // queue ahead. More than a few in flight only adds waiting.
    let mut busy_until = T0;
    let log = Sim::new(defaults(), csv_of(600, LABELS), move |item, _, now| {
        busy_until = busy_until.max(now).plus(100);
        (busy_until.since(now), ok(&item.label))
    })
    .finish();
    let s = log.summary.unwrap();
    assert_eq!(s.statistics.successful, 600);
    eprintln!(
        "queueing server: most in flight {}, {} ms for an ideal 60000",
        log.max_in_flight, s.statistics.elapsed_ms
    );
    assert!(log.max_in_flight <= 40, "{} in flight", log.max_in_flight);
    assert!(
        s.statistics.elapsed_ms <= 62_000,
        "{}",
        s.statistics.elapsed_ms
    );
    // Nothing waits near the default 60 s timeout.
    assert!(
        s.statistics.latency_ms.p95 < 4_000,
        "{:?}",
        s.statistics.latency_ms
    );
}

#[test]
fn a_fixed_concurrency_is_a_cap_the_pace_does_not_raise() {
    let config = RunConfig {
        concurrency: Some(4),
        ..defaults()
    };
    let log = Sim::new(config, csv_of(400, LABELS), rate_limited(100.0, 300, true)).finish();
    assert_eq!(log.max_in_flight, 4);
}

/// A tokens-per-minute limit as OpenAI enforces it: a bucket of one second's
/// tokens, each request charged at admission its prompt (`prompt` tokens) and
/// `max_tokens`; answers report the prompt in `usage` and, with `headers`, the
/// limit. Counts what it admitted.
struct TokenEndpoint {
    per_minute: f64,
    prompt: u64,
    headers: bool,
}

impl TokenEndpoint {
    fn script(
        self,
        admitted: std::rc::Rc<std::cell::Cell<u64>>,
    ) -> impl FnMut(&shadow_core::input::Item, &shadow_core::SendOrder, Millis) -> (u64, Reply)
    {
        let per_ms = self.per_minute / 60_000.0;
        let capacity = self.per_minute / 60.0;
        let mut tokens = capacity;
        let mut last = T0;
        // What the run asks for: 16 + the longest label ("bird").
        let charge = (self.prompt + 16 + 4) as f64;
        move |item, _, now| {
            tokens = (tokens + now.since(last) as f64 * per_ms).min(capacity);
            last = now;
            let mut hs = vec![];
            if self.headers {
                hs.push((
                    "x-ratelimit-limit-tokens",
                    (self.per_minute as u64).to_string(),
                ));
            }
            if tokens >= charge {
                tokens -= charge;
                admitted.set(admitted.get() + charge as u64);
                let body = serde_json::json!({
                    "choices": [{"message": {"role": "assistant",
                        "content": serde_json::json!({"label": &*item.label}).to_string()},
                        "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": self.prompt, "completion_tokens": 5,
                        "total_tokens": self.prompt + 5}
                });
                (300, Reply::Status(200, hs, body.to_string()))
            } else {
                let wait = ((charge - tokens) / per_ms).ceil() as u64;
                hs.push(("retry-after-ms", wait.to_string()));
                let body = format!(
                    r#"{{"error":{{"message":"Rate limit reached for gpt-4o-mini in organization org-sim on tokens per min (TPM): Limit {}, Used {}, Requested {charge}. Please try again in {wait}ms.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}}}"#,
                    self.per_minute,
                    (capacity - tokens) as u64
                );
                (5, Reply::Status(429, hs, body))
            }
        }
    }
}

/// 300 rows against a [`TokenEndpoint`] of 600,000 tokens a minute and
/// 3,000-token prompts, every row answered: the log, its summary, and the
/// efficiency (tokens admitted a second over the 10,000 the bucket allows).
fn run_against_tokens(config: RunConfig, headers: bool) -> (Log, Summary, f64) {
    let admitted = std::rc::Rc::new(std::cell::Cell::new(0));
    let endpoint = TokenEndpoint {
        per_minute: 600_000.0,
        prompt: 3_000,
        headers,
    };
    let n = 300;
    let mut log = Sim::new(config, csv_of(n, LABELS), endpoint.script(admitted.clone())).finish();
    let s = log.summary.take().unwrap();
    assert_eq!(s.statistics.successful, n);
    let per_second = admitted.get() as f64 / (s.statistics.elapsed_ms as f64 / 1000.0);
    (log, s, per_second / 10_000.0)
}

#[test]
fn token_pacing_never_overdraws_a_token_bucket() {
    // 600,000 tokens a minute at ~3,020 a request: ~3.3 images a second, where the
    // request rate alone (no request limit) would allow any number. The prompt
    // is 3,000 tokens, more than the formula's seed for gpt-4o-mini at low detail
    // (2,833 and the text): answers' usage corrects it.
    for (headers, tpm) in [(true, None), (false, Some(600_000))] {
        let (log, s, eff) = run_against_tokens(RunConfig { tpm, ..defaults() }, headers);
        eprintln!(
            "tokens (headers {headers}, tpm {tpm:?}): efficiency {eff:.3}, {} 429s of {} requests, most in flight {}",
            s.statistics.rate_limit_hits, s.statistics.requests, log.max_in_flight
        );
        // Until an answer names the limit, the first requests (as many as the
        // in-flight limit starts with) may overdraw; none after.
        let late: Vec<u64> = log
            .events
            .iter()
            .filter(|(at, what)| what == "429" && at.since(T0) > 2_000)
            .map(|(at, _)| at.since(T0))
            .collect();
        assert!(late.is_empty(), "token 429s at {late:?} ms");
        assert!(s.statistics.rate_limit_hits <= 8);
        assert!(eff >= 0.95, "efficiency {eff:.3}");
    }
}

#[test]
fn without_a_known_token_limit_token_429s_are_learned_like_request_429s() {
    let (_, s, eff) = run_against_tokens(defaults(), false);
    eprintln!(
        "tokens, nothing known: efficiency {eff:.3}, 429 share {:.4}",
        share_429(&s)
    );
    assert!(eff >= 0.90, "efficiency {eff:.3}");
    assert!(share_429(&s) <= 0.10, "429 share {:.4}", share_429(&s));
}
