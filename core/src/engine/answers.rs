//! What an answer means for the run: the verdict of a response or a transport
//! failure applied to pacing, the breaker, retries and the item's end.

use crate::http::{HttpResponse, TransportErrorKind};
use crate::journal::FailureKind;
use crate::ratelimit::{backoff_ms, is_token_limit, unit_hash, RateLimitHeaders};
use crate::stop::Stop;
use crate::time::Millis;

use super::outcome::{judge_response, Asked, Ended, Failure, Verdict};
use super::schedule::InFlight;
use super::tally::Source;
use super::Run;

/// Answers.
impl Run {
    pub(super) fn on_response(&mut self, now: Millis, f: InFlight, response: HttpResponse) {
        let headers = RateLimitHeaders::parse(&response, now);
        let pacer = &mut self.schedule.pacer;
        pacer.on_headers(now, &headers);
        if response.status != 429 {
            pacer.on_accepted(now);
        }
        self.breaker.on_answer();
        if (200..300).contains(&response.status) {
            self.breaker.on_success(now);
        }
        let latency_ms = now.since(f.sent_at);
        let mut verdict = judge_response(
            &self.config.provider,
            &self.labels,
            &response,
            &headers,
            latency_ms,
            Asked {
                format: f.format,
                confidence: f.confidence,
            },
        );
        verdict.redact(&self.redactor);
        match verdict {
            Verdict::Final(ended) => {
                match &ended {
                    Ended::Succeeded {
                        latency_ms, usage, ..
                    } => self
                        .schedule
                        .pacer
                        .on_success(*latency_ms, usage.map(|u| u.prompt_tokens)),
                    Ended::Failed(failure) if failure.kind == FailureKind::Http => {
                        if let Some(reason) =
                            self.breaker.on_refusal(response.status, &failure.message)
                        {
                            self.stop.get_or_insert(Stop::Aborted(reason));
                        }
                    }
                    Ended::Failed(_) => {}
                }
                self.schedule.request_made(&f, false);
                self.finish_item(now, f.item, ended, Source::Live);
            }
            Verdict::Fatal(reason) => {
                self.schedule.request_made(&f, false);
                self.schedule.leave_for_resume(f.item);
                if !matches!(self.stop, Some(Stop::Aborted(_))) {
                    self.stop = Some(Stop::Aborted(reason));
                }
            }
            Verdict::FormatRefused { format } => {
                // Requests sent before an earlier refusal may be refused too: only
                // a refusal of the current form moves the run on. The item goes
                // again at once, in the new form, whatever its retry budget: the
                // form, not the item, was at fault, and it changes at most twice.
                if self.format == format {
                    if let Some(next) = format.next() {
                        self.format = next;
                        // Kept in the settings the progress and summary files
                        // carry, so that a resumed run starts from it.
                        self.config.format_fallback = Some(crate::FormatFallback {
                            endpoint: self.config.provider.endpoint_url(),
                            format: next,
                        });
                    }
                }
                self.schedule.request_made(&f, false);
                if self.stop.is_some() {
                    self.schedule.leave_for_resume(f.item);
                } else {
                    self.schedule.retry_at(f.item, now);
                }
            }
            Verdict::ConfidenceRefused => {
                // As with a refused form: only the first refusal changes the
                // run, once; the item goes again at once, without asking.
                if self.confidence {
                    self.confidence = false;
                    // Kept in the settings the progress and summary files carry,
                    // so that a resumed run does not ask again.
                    self.config.confidence_refused_by = Some(self.config.provider.endpoint_url());
                }
                self.schedule.request_made(&f, false);
                if self.stop.is_some() {
                    self.schedule.leave_for_resume(f.item);
                } else {
                    self.schedule.retry_at(f.item, now);
                }
            }
            Verdict::Retry {
                failure,
                retry_after_ms,
                rate_limited,
            } => {
                if rate_limited {
                    self.tallies.on_rate_limited(f.item);
                    let pause = retry_after_ms.map_or_else(
                        || self.backoff(f.item, f.attempt),
                        |ms| ms.min(self.config.max_retry_wait_ms),
                    );
                    let tokens = is_token_limit(&response, &headers);
                    self.schedule
                        .pacer
                        .on_rate_limited(now, f.sent_at, pause, tokens);
                }
                self.note_failing(now, &failure.message);
                self.retry_or_fail(now, f, failure, retry_after_ms, rate_limited);
            }
        }
    }

    pub(super) fn on_transport_failed(
        &mut self,
        now: Millis,
        f: InFlight,
        kind: TransportErrorKind,
        message: String,
    ) {
        let failure = Failure::transport(kind, message, now.since(f.sent_at));
        if kind == TransportErrorKind::Connect {
            if let Some(reason) = self.breaker.on_connect_failure(&failure.message) {
                self.stop.get_or_insert(Stop::Aborted(reason));
            }
        }
        self.note_failing(now, &failure.message);
        self.retry_or_fail(now, f, failure, None, false);
    }

    /// A retryable failure: after long enough with nothing but failures, the
    /// endpoint is taken as down and the run stops (resumable) instead of failing
    /// every item.
    fn note_failing(&mut self, now: Millis, last_error: &str) {
        if self.batch_mode {
            // Hours may pass between two answers of a provider batch.
            return;
        }
        let limit = self.config.abort_after_failing_ms;
        if let Some(reason) = self.breaker.on_failure(now, limit, last_error) {
            self.stop.get_or_insert(Stop::Aborted(reason));
        }
    }

    fn backoff(&self, item: usize, attempt: u32) -> u64 {
        backoff_ms(
            self.config.backoff_initial_ms,
            self.config.backoff_max_ms,
            attempt,
            unit_hash(self.config.seed, item, attempt),
        )
    }

    /// A retryable failure: schedule the next attempt, or fail the item when its
    /// budget is spent. 429s draw on `max_rate_limit_retries`, everything else on
    /// `max_retries`: "later" from a rate limiter is not a fault of the item. While
    /// stopping, the item is left for resume instead.
    pub(super) fn retry_or_fail(
        &mut self,
        now: Millis,
        f: InFlight,
        failure: Failure,
        retry_after_ms: Option<u64>,
        rate_limited: bool,
    ) {
        let rate_limited_so_far = self.schedule.request_made(&f, rate_limited);
        if self.stop.is_some() {
            self.schedule.leave_for_resume(f.item);
            return;
        }
        let spent = if rate_limited {
            rate_limited_so_far > self.config.max_rate_limit_retries
        } else {
            f.attempt - rate_limited_so_far > self.config.max_retries
        };
        if spent {
            let mut failure = failure;
            if f.attempt > 1 {
                failure.message =
                    format!("{} (gave up after {} attempts)", failure.message, f.attempt);
            }
            self.finish_item(now, f.item, Ended::Failed(failure), Source::Live);
            return;
        }
        let wait = if self.batch_mode {
            // The next shard is the wait.
            0
        } else {
            retry_after_ms.map_or_else(
                || self.backoff(f.item, f.attempt),
                |ms| ms.min(self.config.max_retry_wait_ms),
            )
        };
        self.schedule.retry_at(f.item, now.plus(wait));
    }
}
