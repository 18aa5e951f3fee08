//! The hooks a batch-API run drives the run with.

use crate::journal::FailureKind;
use crate::stop::{AbortReason, Stop};
use crate::time::Millis;

use super::outcome::Failure;
use super::schedule::{self, Claimed};
use super::{Run, SendOrder, Ticket};

/// The hooks a [`crate::batch::BatchRun`] drives the run with: it takes sends one
/// at a time (as lines of a shard) and answers for requests a provider batch never
/// ran. Not public: a live host has no use for them.
impl Run {
    /// Puts the run in batch mode (see the field); before the first poll.
    pub(crate) fn enter_batch_mode(&mut self) {
        self.batch_mode = true;
        // The batch engines' request lines do not ask for log-probabilities.
        self.confidence = false;
        self.price = crate::cost::Cost::of_batch(
            crate::journal::Usage::default(),
            0,
            self.config.price,
            self.config.provider.model(),
        )
        .price;
        // `poll` must never dispatch: sends are taken with `take_send`.
        self.paused = true;
        // Its shards are sized by the batch run, not by the live send window.
        self.open_rows();
    }

    /// The next request to make, if one is due: a retry, else a fresh row. Rows
    /// that cannot be sent end at once (their `ItemDone` is queued). `None` while
    /// the run is stopping or nothing is due.
    pub(crate) fn take_send(&mut self, now: Millis) -> Option<SendOrder> {
        loop {
            if self.stop.is_some() || self.finished {
                return None;
            }
            if self.fail_next_defective(now) {
                continue;
            }
            let item = self.schedule.next_due(now)?;
            let order = self.schedule.start(now, item, self.format, self.confidence);
            if order.attempt > 1 {
                self.tallies.on_retry(item);
            }
            return Some(order);
        }
    }

    /// Puts row `item`, not final, in flight as attempt `attempt` without a new
    /// request: a resumed run takes back the rows of a provider batch submitted
    /// by an earlier session. `None` when the row is final or in flight already.
    pub(crate) fn adopt(&mut self, now: Millis, item: usize, attempt: u32) -> Option<SendOrder> {
        if item >= self.rows.total() || self.schedule.phase(item) != schedule::Phase::Pending {
            return None;
        }
        self.schedule.set_requests(item, attempt.saturating_sub(1));
        Some(self.schedule.start(now, item, self.format, self.confidence))
    }

    /// Counts `requests` as made for row `item`, not final and not in flight: a
    /// resumed batch run's rows that earlier sessions submitted. Its next attempt
    /// is `requests + 1`, within the same retry budget.
    pub(crate) fn count_requests(&mut self, item: usize, requests: u32) {
        if item < self.rows.total() && self.schedule.phase(item) == schedule::Phase::Pending {
            self.schedule.set_requests(item, requests);
        }
    }

    /// The request of `ticket` was never submitted (its shard was given up before
    /// it reached the provider): its row goes back to waiting, with no attempt
    /// counted. Unknown and abandoned tickets are ignored.
    pub(crate) fn give_back(&mut self, now: Millis, ticket: Ticket) {
        if let Claimed::Request(f) = self.schedule.claim(ticket) {
            self.schedule.leave_for_resume(f.item);
            self.maybe_finish(now);
        }
    }

    /// The request of `ticket` was submitted in a provider batch that ended
    /// without running it (expired, cancelled, or its line came back without an
    /// answer): a retryable failure, drawing on `max_retries`. While the run is
    /// stopping, the row is left for resume instead.
    pub(crate) fn not_run(&mut self, now: Millis, ticket: Ticket, why: &str) {
        if let Claimed::Request(f) = self.schedule.claim(ticket) {
            let mut message = format!("not run: {why}");
            self.redactor.redact_in_place(&mut message);
            let failure = Failure {
                kind: FailureKind::Transport,
                message,
                status: None,
                latency_ms: None,
            };
            self.retry_or_fail(now, f, failure, None, false);
            self.maybe_finish(now);
        }
    }

    /// Stops dispatching for `reason` (a provider batch refused or failed); the
    /// requests in flight are still answered, the rest is left for resume.
    pub(crate) fn abort(&mut self, now: Millis, reason: AbortReason) {
        if !matches!(self.stop, Some(Stop::Aborted(_))) {
            self.stop = Some(Stop::Aborted(reason));
        }
        self.maybe_finish(now);
    }

    /// Stops dispatching without a cancel grace: the requests in flight are still
    /// answered (or given back), the rest is left for resume.
    pub(crate) fn interrupt(&mut self, now: Millis) {
        self.stop.get_or_insert(Stop::Interrupted);
        self.maybe_finish(now);
    }

    /// Whether the run has stopped dispatching (aborted or interrupted).
    pub(crate) fn is_stopping(&self) -> bool {
        self.stop.is_some()
    }

    /// Redacts the run's secrets from `text`.
    pub(crate) fn redact(&self, text: &mut String) {
        self.redactor.redact_in_place(text);
    }
}
