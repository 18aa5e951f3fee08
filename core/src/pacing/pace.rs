//! The pace as a live display shows it: what paces request starts at the moment.

use serde::{Deserialize, Serialize};

use crate::time::Millis;

/// What paces request starts at the moment, for a live display
/// ([`crate::Run::pace`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pace {
    /// Where the requests-per-minute rate comes from; `None` while no rate applies
    /// (starts then wait only for the in-flight limit, `delay_ms` and cool-downs).
    pub source: Option<PaceSource>,
    /// That rate, in requests per minute (rounded), when there is one.
    pub requests_per_minute: Option<u64>,
    /// Where the tokens-per-minute limit comes from (the user's `tpm` or the
    /// endpoint's headers); `None` while no token limit is known.
    pub token_source: Option<PaceSource>,
    /// That limit, in tokens per minute.
    pub tokens_per_minute: Option<u64>,
    /// What one request is charged against it: the prompt estimate (learned from
    /// answers' `usage`) and `max_tokens`.
    pub tokens_per_request: Option<u64>,
    /// Mean latency of successful requests, which with the rate sets the
    /// in-flight limit.
    pub latency_ms: Option<u64>,
    /// The in-flight limit now: `concurrency` when given (halved on 429), else
    /// found from the pace and latency, up to `max_concurrency`.
    pub in_flight_limit: usize,
    /// No request starts before this, after a 429 or an exhausted rate budget;
    /// `None` when that time has passed.
    pub cooling_down_until: Option<Millis>,
}

impl Pace {
    /// One line for a live display: `2950/min learned from 429s, 600000 tokens/min
    /// from the endpoint at ~3020 a request, up to 24 in flight (300 ms a request)`.
    pub fn describe(&self) -> String {
        let from = |source: PaceSource| match source {
            PaceSource::UserCap => "your cap",
            PaceSource::EndpointHeaders => "the endpoint",
            PaceSource::Learned => "learned from 429s",
        };
        let mut parts = Vec::new();
        if let (Some(source), Some(rpm)) = (self.source, self.requests_per_minute) {
            parts.push(match source {
                PaceSource::Learned => format!("~{rpm}/min {}", from(source)),
                _ => format!("{rpm}/min from {}", from(source)),
            });
        }
        if let (Some(source), Some(tpm)) = (self.token_source, self.tokens_per_minute) {
            let each = self
                .tokens_per_request
                .map_or(String::new(), |t| format!(" at ~{t} a request"));
            parts.push(format!("{tpm} tokens/min from {}{each}", from(source)));
        }
        if parts.is_empty() {
            parts.push("no rate limit known".to_string());
        }
        let latency = self
            .latency_ms
            .map_or(String::new(), |ms| format!(" ({ms} ms a request)"));
        format!(
            "pace: {}, up to {} in flight{latency}",
            parts.join(", "),
            self.in_flight_limit
        )
    }
}

/// Where a run's requests-per-minute rate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum PaceSource {
    /// The user's cap ([`crate::RunConfig::rpm`]).
    UserCap,
    /// The endpoint's advertised limit (`x-ratelimit-limit-requests`).
    EndpointHeaders,
    /// Learned from the endpoint's 429s: just under the rate it accepted.
    Learned,
}
