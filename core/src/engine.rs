//! The run: a sans-IO state machine that decides what to send when, what each
//! answer means, and what the reports say.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, RunConfig};
use crate::eval::Tally;
use crate::http::{HttpRequest, HttpResponse, TransportErrorKind};
use crate::input::{Item, LabelSet, LabelsCsv};
use crate::journal::{FailureKind, ItemResult, ItemStatus, Usage};
use crate::pacing::Pacer;
use crate::provider::RequestTemplate;
use crate::ratelimit::{backoff_ms, classify_status, describe_status, unit_hash};
use crate::ratelimit::{RateLimitHeaders, StatusVerdict};
use crate::report::{display_image, percent, BatchReport, ErrorEntry, LatencySummary};
use crate::report::{OverallProgress, ProgressReport, RunStatus, Statistics, Summary};
use crate::time::Millis;

/// Names one attempt of one item. Unique within a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ticket(pub u64);

/// "Send attempt `attempt` of item `item` now." The host loads the item's image,
/// builds the request with [`Run::request`], performs it and hands back the outcome
/// with the same ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendOrder {
    /// Quote it back in the outcome.
    pub ticket: Ticket,
    /// Index into [`Run::items`].
    pub item: usize,
    /// 1 for the first try, 2 for the first retry, ...
    pub attempt: u32,
}

/// Events the host feeds into the run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// The endpoint answered (any status).
    Response {
        /// The order's ticket.
        ticket: Ticket,
        /// Status, headers and body.
        response: HttpResponse,
    },
    /// No answer came: timeout, refused, reset, unreadable body. Retried.
    TransportFailed {
        /// The order's ticket.
        ticket: Ticket,
        /// What kind of failure.
        kind: TransportErrorKind,
        /// Detail for the report; must not contain a secret.
        message: String,
    },
    /// The host could not load the image (missing, too large, unknown type, outside
    /// the data folder). The item fails without a request; not retried.
    ImageFailed {
        /// The order's ticket.
        ticket: Ticket,
        /// What is wrong, naming the file.
        message: String,
    },
    /// Stop dispatching until `Resume`; answers to requests in flight are still
    /// taken and reported. (A user's pause button.)
    Pause,
    /// Dispatch again after `Pause`.
    Resume,
    /// Stop dispatching; answers to requests in flight are still taken for
    /// [`RunConfig::cancel_grace_ms`], then the rest are abandoned. The run finishes
    /// `interrupted`.
    Cancel,
    /// Give up on the requests in flight now (their items stay unfinished, for
    /// resume) and finish: a user who will not wait for the grace period.
    Abandon,
}

/// What the run asks of the host, in the order it must happen.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Start a request.
    Send(SendOrder),
    /// An item is final: append [`Run::result`] of it to the results journal.
    ItemDone(ItemDone),
    /// Every item of this batch is final (reports come in batch order). Show it
    /// and write the progress file ([`Run::progress`]).
    BatchReport(BatchReport),
    /// The run is over; nothing follows. Write it as the summary.
    Finished(Box<Summary>),
}

/// An item became final. Compact on purpose: [`Run::result`] turns it into the
/// journal record, borrowing the item's text from the run instead of copying it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemDone {
    /// 0-based row.
    pub row: usize,
    /// Index of the predicted label in [`Run::labels`], on success.
    pub prediction: Option<usize>,
    /// Requests made for the item.
    pub attempts: u32,
    /// Dispatch-to-answer time of the last attempt.
    pub latency_ms: Option<u64>,
    /// Status of the last answer, if one came.
    pub http_status: Option<u16>,
    /// Token usage of the successful request.
    pub usage: Option<Usage>,
    /// Why it failed, on failure.
    pub failure: Option<(FailureKind, String)>,
    /// When it became final.
    pub finished_at: Millis,
}

/// Tickets are sequential numbers: hashing them with SipHash buys nothing.
#[derive(Default)]
struct TicketHasher(u64);

impl Hasher for TicketHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type TicketMap = HashMap<Ticket, InFlight, BuildHasherDefault<TicketHasher>>;

/// The host used the API wrongly. (Bad input and bad answers are not errors of
/// this kind: they become item failures or a run-fatal stop, in the reports.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// No request in flight has this ticket (never issued, already answered, or
    /// abandoned).
    #[error("no request in flight has ticket {0:?}")]
    UnknownTicket(Ticket),
    /// `restore` after the run started dispatching.
    #[error("results can only be restored before the first poll")]
    RestoreAfterStart,
    /// A restored result does not fit this CSV.
    #[error("journal line for row {row} does not match the CSV: {reason}; the journal belongs to a different CSV (or the CSV changed since)")]
    RestoreMismatch {
        /// 0-based row.
        row: usize,
        /// What differs.
        reason: String,
    },
}

/// Counts for a live progress display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Items in the run.
    pub total: usize,
    /// Items final, successful.
    pub successful: usize,
    /// Items final, failed.
    pub failed: usize,
    /// Predictions equal to the label.
    pub agreements: usize,
    /// Requests in flight.
    pub in_flight: usize,
    /// Items finished in this session (not restored).
    pub done_this_session: usize,
    /// Items restored from the journal.
    pub resumed: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Pending,
    InFlight,
    Waiting,
    Succeeded,
    Failed,
}

#[derive(Clone, Copy, Debug)]
struct ItemState {
    phase: Phase,
    attempts: u16,
    /// Of the attempts, how many the endpoint answered 429 (a separate budget).
    rate_limited: u16,
}

impl ItemState {
    fn is_final(self) -> bool {
        matches!(self.phase, Phase::Succeeded | Phase::Failed)
    }
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    item: usize,
    attempt: u32,
    sent_at: Millis,
}

#[derive(Clone, Copy, Debug, Default)]
struct BatchTally {
    remaining: u32,
    successful: u32,
    failed: u32,
    agreements: u32,
    retries: u32,
    rate_limit_hits: u32,
    restored: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stop {
    Interrupted,
    Aborted(String),
}

/// How an item ended, before it becomes an [`ItemResult`].
enum Outcome {
    Success {
        label: usize,
        usage: Option<Usage>,
        latency_ms: u64,
        status: u16,
    },
    Failure {
        kind: FailureKind,
        message: String,
        status: Option<u16>,
        latency_ms: Option<u64>,
    },
}

/// One shadow run over the items of a labels CSV. See the crate docs for the loop.
#[derive(Debug)]
pub struct Run {
    config: RunConfig,
    items: Vec<Item>,
    labels: LabelSet,
    template: RequestTemplate,
    states: Vec<ItemState>,
    batches: Vec<BatchTally>,
    reports: Vec<BatchReport>,
    cursor: usize,
    retry_queue: BinaryHeap<Reverse<(Millis, usize)>>,
    in_flight: TicketMap,
    next_ticket: u64,
    pacer: Pacer,
    outputs: VecDeque<Output>,
    started_at: Millis,
    /// Last 2xx answer (or the start), and the failed attempts since: the breaker
    /// that stops a run against a dead endpoint.
    last_good: Millis,
    failing_streak: u32,
    polled: bool,
    paused: bool,
    stop: Option<Stop>,
    /// When a cancelled run stops waiting for the requests in flight.
    abandon_at: Option<Millis>,
    finished: bool,
    successful: usize,
    failed: usize,
    agreements: usize,
    done_this_session: usize,
    resumed: usize,
    requests: u64,
    retries: u64,
    rate_limit_hits: u64,
    usage: Usage,
    latencies: Vec<u32>,
    errors: Vec<ErrorEntry>,
    tally: Tally,
}

impl Run {
    /// A run over `csv` starting at `now`. Nothing is sent until the first `poll`.
    pub fn new(config: RunConfig, csv: LabelsCsv, now: Millis) -> Result<Run, ConfigError> {
        config.validate()?;
        let LabelsCsv { items, labels, .. } = csv;
        let n = items.len();
        let batch_count = n.div_ceil(config.batch_size);
        let batches = (0..batch_count)
            .map(|b| BatchTally {
                remaining: (n - b * config.batch_size).min(config.batch_size) as u32,
                ..BatchTally::default()
            })
            .collect();
        Ok(Run {
            template: config.provider.request_template(&labels),
            pacer: Pacer::new(&config),
            tally: Tally::new(labels.len()),
            states: vec![
                ItemState {
                    phase: Phase::Pending,
                    attempts: 0,
                    rate_limited: 0,
                };
                n
            ],
            batches,
            reports: Vec::with_capacity(batch_count),
            cursor: 0,
            retry_queue: BinaryHeap::new(),
            in_flight: TicketMap::with_capacity_and_hasher(
                config.concurrency * 2,
                Default::default(),
            ),
            next_ticket: 0,
            outputs: VecDeque::new(),
            started_at: now,
            last_good: now,
            failing_streak: 0,
            polled: false,
            paused: false,
            stop: None,
            abandon_at: None,
            finished: false,
            successful: 0,
            failed: 0,
            agreements: 0,
            done_this_session: 0,
            resumed: 0,
            requests: 0,
            retries: 0,
            rate_limit_hits: 0,
            usage: Usage::default(),
            latencies: Vec::new(),
            errors: Vec::new(),
            config,
            items,
            labels,
        })
    }

    /// Takes results already known (from the journal of an earlier session) as
    /// final, so that only the rest is dispatched. With `retry_failed`, failed
    /// results are ignored and those items run again. Returns how many were taken.
    /// Only before the first `poll`.
    pub fn restore<'r, I>(&mut self, results: I, retry_failed: bool) -> Result<usize, UsageError>
    where
        I: IntoIterator<Item = ItemResult<'r>>,
    {
        if self.polled {
            return Err(UsageError::RestoreAfterStart);
        }
        let mut taken = 0;
        for r in results {
            let mismatch = |reason: String| UsageError::RestoreMismatch { row: r.row, reason };
            let Some(item) = self.items.get(r.row) else {
                return Err(mismatch(format!(
                    "the CSV has only {} rows",
                    self.items.len()
                )));
            };
            let image = display_image(item.image.as_str());
            if r.image != image || *r.label != *item.label {
                return Err(mismatch(format!(
                    "journal has image {:?} label {:?}, the CSV has {:?} {:?}",
                    r.image, r.label, image, item.label
                )));
            }
            if self.states[r.row].is_final() || (retry_failed && r.status == ItemStatus::Failed) {
                continue;
            }
            let outcome = match (r.status, r.prediction.as_deref()) {
                (ItemStatus::Success, Some(p)) => Outcome::Success {
                    label: self.labels.index_of(p).ok_or_else(|| {
                        mismatch(format!("prediction {p:?} is not a label of this CSV"))
                    })?,
                    usage: r.usage,
                    latency_ms: r.latency_ms.unwrap_or(0),
                    status: r.http_status.unwrap_or(200),
                },
                _ => Outcome::Failure {
                    kind: r.error_kind.unwrap_or(FailureKind::Http),
                    message: r.error.as_deref().unwrap_or("failed").to_string(),
                    status: r.http_status,
                    latency_ms: r.latency_ms,
                },
            };
            self.states[r.row].attempts = r.attempts.min(u32::from(u16::MAX)) as u16;
            self.batches[r.row / self.config.batch_size].restored += 1;
            self.record(Millis(0), r.row, outcome, false);
            self.resumed += 1;
            taken += 1;
        }
        Ok(taken)
    }

    /// Feeds an event in. Then drain [`Run::poll`].
    pub fn handle(&mut self, now: Millis, input: Input) -> Result<(), UsageError> {
        match input {
            Input::Pause => {
                self.paused = true;
                Ok(())
            }
            Input::Resume => {
                self.paused = false;
                Ok(())
            }
            Input::Cancel => {
                self.stop.get_or_insert(Stop::Interrupted);
                self.abandon_at
                    .get_or_insert(now.plus(self.config.cancel_grace_ms));
                Ok(())
            }
            Input::Abandon => {
                self.abandon(now);
                Ok(())
            }
            Input::Response { ticket, response } => {
                let f = self.take_in_flight(ticket)?;
                self.requests += 1;
                self.on_response(now, f, response);
                Ok(())
            }
            Input::TransportFailed {
                ticket,
                kind,
                message,
            } => {
                let f = self.take_in_flight(ticket)?;
                self.requests += 1;
                let what = match kind {
                    TransportErrorKind::Timeout => "timed out",
                    TransportErrorKind::Connect => "could not connect",
                    TransportErrorKind::Reset => "connection broke",
                    _ => "answer unreadable",
                };
                let message = if message.is_empty() {
                    what.to_string()
                } else {
                    format!("{what}: {message}")
                };
                self.note_failing(now, &message);
                self.retry_or_fail(now, f, FailureKind::Transport, message, None, None, false);
                Ok(())
            }
            Input::ImageFailed { ticket, message } => {
                let f = self.take_in_flight(ticket)?;
                self.states[f.item].attempts -= 1;
                self.record(
                    now,
                    f.item,
                    Outcome::Failure {
                        kind: FailureKind::Image,
                        message,
                        status: None,
                        latency_ms: None,
                    },
                    true,
                );
                Ok(())
            }
        }
    }

    /// The next thing to do, or `None` until an event arrives or
    /// [`Run::poll_timeout`] passes.
    pub fn poll(&mut self, now: Millis) -> Option<Output> {
        if let Some(o) = self.outputs.pop_front() {
            return Some(o);
        }
        if self.finished {
            return None;
        }
        if !self.polled {
            self.polled = true;
            self.emit_ready_reports(now);
        }
        if self.stop.is_none() && !self.paused {
            self.dispatch(now);
        }
        if self.abandon_at.is_some_and(|at| at <= now) {
            self.abandon(now);
        }
        self.maybe_finish(now);
        self.outputs.pop_front()
    }

    /// When to poll again if no event arrives first; `None` = nothing timed is
    /// pending (wait for an answer, or the run is over). Polling early is harmless.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.finished || !self.outputs.is_empty() {
            return None;
        }
        if self.stop.is_some() {
            // Waiting for the requests in flight; after a cancel, only so long.
            return self.abandon_at.filter(|_| !self.in_flight.is_empty());
        }
        if self.paused {
            return None;
        }
        if self.pacer.in_flight() >= self.pacer.limit() {
            return None;
        }
        let fresh = self.next_fresh().is_some();
        let ready = match self.retry_queue.peek() {
            _ if fresh => Millis(0),
            Some(Reverse((at, _))) => *at,
            None => return None,
        };
        Some(ready.max(self.pacer.next_start_at()))
    }

    /// Builds the HTTP request for `order`, with the image as `image_url` (an
    /// http(s) URL, or a data URL the host made from the file).
    pub fn request(&self, order: &SendOrder, image_url: &str) -> HttpRequest {
        self.template.build(
            image_url,
            order.attempt,
            self.items[order.item].id.as_deref(),
        )
    }

    /// How this run's requests are built, for hosts that build them themselves.
    pub fn request_template(&self) -> &RequestTemplate {
        &self.template
    }

    /// The journal record of a finished item, borrowing its text from the run.
    pub fn result(&self, done: &ItemDone) -> ItemResult<'_> {
        let item = &self.items[done.row];
        let prediction = done.prediction.map(|p| self.labels.names()[p].as_str());
        let (error_kind, error) = match &done.failure {
            Some((kind, message)) => (Some(*kind), Some(Cow::Owned(message.clone()))),
            None => (None, None),
        };
        ItemResult {
            row: done.row,
            line: item.line,
            id: item.id.as_deref().map(Cow::Borrowed),
            image: display_image(item.image.as_str()),
            label: Cow::Borrowed(&item.label),
            prediction: prediction.map(Cow::Borrowed),
            agreement: prediction.map(|p| *p == *item.label),
            status: if done.failure.is_none() {
                ItemStatus::Success
            } else {
                ItemStatus::Failed
            },
            attempts: done.attempts,
            latency_ms: done.latency_ms,
            error,
            error_kind,
            http_status: done.http_status,
            usage: done.usage,
            finished_at: done.finished_at,
        }
    }

    /// The progress file's content as of `now`.
    pub fn progress(&self, now: Millis) -> ProgressReport<'_> {
        ProgressReport {
            timestamp: now.to_iso8601(),
            csv_path: &self.config.csv_path,
            batch_number: self.reports.len(),
            total_batches: self.batches.len(),
            overall_progress: OverallProgress {
                total: self.items.len(),
                successful: self.successful,
                failed: self.failed,
                errors: &self.errors,
            },
            current_batch_report: self.reports.last(),
            all_reports: &self.reports,
            run_id: &self.config.run_id,
            status: if self.finished {
                self.status()
            } else {
                RunStatus::Running
            },
            config: &self.config,
        }
    }

    /// The summary as of `now` (also what `Output::Finished` carries).
    pub fn summary(&self, now: Millis) -> Summary {
        let elapsed = now.since(self.started_at);
        let processed = self.successful + self.failed;
        let mut latencies = self.latencies.clone();
        latencies.sort_unstable();
        let pct = |p: usize| {
            latencies
                .get((latencies.len() * p).div_ceil(100).saturating_sub(1))
                .map_or(0, |v| u64::from(*v))
        };
        Summary {
            timestamp: now.to_iso8601(),
            run_id: self.config.run_id.clone(),
            status: self.status(),
            abort_reason: match &self.stop {
                Some(Stop::Aborted(reason)) => Some(reason.clone()),
                _ => None,
            },
            csv_path: self.config.csv_path.clone(),
            started_at: self.started_at.to_iso8601(),
            finished_at: now.to_iso8601(),
            total_batches: self.batches.len(),
            overall_progress: OverallProgress {
                total: self.items.len(),
                successful: self.successful,
                failed: self.failed,
                errors: self.errors.clone(),
            },
            statistics: Statistics {
                total: self.items.len(),
                processed,
                successful: self.successful,
                failed: self.failed,
                remaining: self.items.len() - processed,
                success_rate: percent(self.successful, processed),
                elapsed_ms: elapsed,
                average_time_per_image: self.average_ms(elapsed),
                requests: self.requests,
                retries: self.retries,
                rate_limit_hits: self.rate_limit_hits,
                resumed_items: self.resumed,
                latency_ms: LatencySummary {
                    count: latencies.len(),
                    p50: pct(50),
                    p95: pct(95),
                    max: latencies.last().map_or(0, |v| u64::from(*v)),
                },
                usage: self.usage,
            },
            evaluation: self.tally.evaluate(&self.labels),
            all_reports: self.reports.clone(),
            config: self.config.clone(),
        }
    }

    /// The items, in CSV order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Item `index`.
    pub fn item(&self, index: usize) -> &Item {
        &self.items[index]
    }

    /// The items whose first request is still to come, from item `from` on, in the
    /// order they will be sent (retries, sent when due, come on top). A host that
    /// needs time to prepare an item, such as reading its image file, can start on
    /// these early. Skipping ahead with `from` keeps repeated calls cheap.
    pub fn upcoming(&self, from: usize) -> impl Iterator<Item = usize> + '_ {
        (from.max(self.cursor)..self.items.len())
            .filter(|&i| self.states[i].phase == Phase::Pending && self.items[i].defect.is_none())
    }

    /// The CSV's label set.
    pub fn labels(&self) -> &LabelSet {
        &self.labels
    }

    /// The settings.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// Live counts.
    pub fn counts(&self) -> Counts {
        Counts {
            total: self.items.len(),
            successful: self.successful,
            failed: self.failed,
            agreements: self.agreements,
            in_flight: self.in_flight.len(),
            done_this_session: self.done_this_session,
            resumed: self.resumed,
        }
    }

    /// True between `Input::Pause` and `Input::Resume`.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// True once `Output::Finished` has been queued.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// `running` until finished; then how it ended.
    pub fn status(&self) -> RunStatus {
        match (&self.stop, self.finished) {
            (_, false) => RunStatus::Running,
            (None, true) => RunStatus::Completed,
            (Some(Stop::Interrupted), true) => RunStatus::Interrupted,
            (Some(Stop::Aborted(_)), true) => RunStatus::Aborted,
        }
    }

    /// Leaves the requests in flight unanswered (their items stay unfinished, for
    /// resume) and finishes the run as interrupted.
    fn abandon(&mut self, now: Millis) {
        self.stop.get_or_insert(Stop::Interrupted);
        for (_, f) in self.in_flight.drain() {
            self.states[f.item].phase = Phase::Pending;
            self.pacer.on_finish();
        }
        self.maybe_finish(now);
    }

    fn take_in_flight(&mut self, ticket: Ticket) -> Result<InFlight, UsageError> {
        let f = self
            .in_flight
            .remove(&ticket)
            .ok_or(UsageError::UnknownTicket(ticket))?;
        self.pacer.on_finish();
        Ok(f)
    }

    fn next_fresh(&self) -> Option<usize> {
        (self.cursor < self.items.len()).then_some(self.cursor)
    }

    /// Moves the fresh cursor past items that need no request: restored ones are
    /// skipped; defective rows are finalized (one per call, keeping outputs small).
    fn advance_cursor(&mut self, now: Millis) -> bool {
        while let Some(i) = self.next_fresh() {
            if self.states[i].phase != Phase::Pending {
                self.cursor += 1;
                continue;
            }
            if let Some(defect) = self.items[i].defect.as_deref().map(str::to_string) {
                self.cursor += 1;
                self.record(
                    now,
                    i,
                    Outcome::Failure {
                        kind: FailureKind::Input,
                        message: defect,
                        status: None,
                        latency_ms: None,
                    },
                    true,
                );
                return true;
            }
            break;
        }
        false
    }

    fn dispatch(&mut self, now: Millis) {
        if self.advance_cursor(now) || !self.pacer.may_start(now) {
            return;
        }
        let item = match self.retry_queue.peek() {
            Some(Reverse((at, item))) if *at <= now => {
                let item = *item;
                self.retry_queue.pop();
                item
            }
            _ => match self.next_fresh() {
                Some(i) => {
                    self.cursor += 1;
                    i
                }
                None => return,
            },
        };
        let state = &mut self.states[item];
        state.phase = Phase::InFlight;
        state.attempts += 1;
        let attempt = u32::from(state.attempts);
        if attempt > 1 {
            self.retries += 1;
            self.batches[item / self.config.batch_size].retries += 1;
        }
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.in_flight.insert(
            ticket,
            InFlight {
                item,
                attempt,
                sent_at: now,
            },
        );
        self.pacer.on_start(now);
        self.outputs.push_back(Output::Send(SendOrder {
            ticket,
            item,
            attempt,
        }));
    }

    fn on_response(&mut self, now: Millis, f: InFlight, response: HttpResponse) {
        let headers = RateLimitHeaders::parse(&response, now);
        self.pacer.on_headers(now, &headers);
        if response.status != 429 {
            self.pacer.on_accepted(now);
        }
        let latency_ms = now.since(f.sent_at);
        let status = response.status;
        if (200..300).contains(&status) {
            self.last_good = now;
            self.failing_streak = 0;
            let outcome = match self
                .config
                .provider
                .parse_answer(&response.body, &self.labels)
            {
                Ok(answer) => {
                    self.pacer.on_success();
                    Outcome::Success {
                        label: answer.label,
                        usage: answer.usage,
                        latency_ms,
                        status,
                    }
                }
                Err(e) => Outcome::Failure {
                    kind: FailureKind::Answer,
                    message: e.to_string(),
                    status: Some(status),
                    latency_ms: Some(latency_ms),
                },
            };
            self.record(now, f.item, outcome, true);
            return;
        }
        match classify_status(&response, &headers) {
            StatusVerdict::Fatal { reason } => {
                self.states[f.item].phase = Phase::Pending;
                if self.stop.is_none() || self.stop == Some(Stop::Interrupted) {
                    self.stop = Some(Stop::Aborted(reason));
                }
            }
            StatusVerdict::Retry { rate_limited } => {
                if rate_limited {
                    self.rate_limit_hits += 1;
                    self.batches[f.item / self.config.batch_size].rate_limit_hits += 1;
                    let pause = headers.retry_after_ms.map_or_else(
                        || self.backoff(f.item, f.attempt),
                        |ms| ms.min(self.config.max_retry_wait_ms),
                    );
                    self.pacer.on_rate_limited(now, f.sent_at, pause);
                }
                let message = describe_status(&response);
                self.note_failing(now, &message);
                self.retry_or_fail(
                    now,
                    f,
                    FailureKind::Http,
                    message,
                    Some(status),
                    headers.retry_after_ms,
                    rate_limited,
                );
            }
            StatusVerdict::Fail => {
                let message = describe_status(&response);
                self.record(
                    now,
                    f.item,
                    Outcome::Failure {
                        kind: FailureKind::Http,
                        message,
                        status: Some(status),
                        latency_ms: Some(latency_ms),
                    },
                    true,
                );
            }
        }
    }

    /// A retryable failure: after long enough with nothing but failures, the
    /// endpoint is taken as down and the run stops (resumable) instead of failing
    /// every item.
    fn note_failing(&mut self, now: Millis, last_error: &str) {
        self.failing_streak += 1;
        let limit = self.config.abort_after_failing_ms;
        let failing_for = now.since(self.last_good);
        if limit == 0 || self.failing_streak < 20 || failing_for < limit || self.stop.is_some() {
            return;
        }
        self.stop = Some(Stop::Aborted(format!(
            "no request has been answered successfully for {} ({} failed attempts in a row; the last: {last_error}). The endpoint looks down, stuck or rate-limited without end; check it, then continue the run with --resume",
            crate::time::format_duration(failing_for),
            self.failing_streak
        )));
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
    #[allow(clippy::too_many_arguments)]
    fn retry_or_fail(
        &mut self,
        now: Millis,
        f: InFlight,
        kind: FailureKind,
        message: String,
        status: Option<u16>,
        retry_after_ms: Option<u64>,
        rate_limited: bool,
    ) {
        if self.stop.is_some() {
            self.states[f.item].phase = Phase::Pending;
            return;
        }
        let latency_ms = Some(now.since(f.sent_at));
        let state = &mut self.states[f.item];
        if rate_limited {
            state.rate_limited += 1;
        }
        let spent = if rate_limited {
            u32::from(state.rate_limited) > self.config.max_rate_limit_retries
        } else {
            f.attempt - u32::from(state.rate_limited) > self.config.max_retries
        };
        if spent {
            let message = if f.attempt > 1 {
                format!("{message} (gave up after {} attempts)", f.attempt)
            } else {
                message
            };
            self.record(
                now,
                f.item,
                Outcome::Failure {
                    kind,
                    message,
                    status,
                    latency_ms,
                },
                true,
            );
            return;
        }
        let wait = retry_after_ms.map_or_else(
            || self.backoff(f.item, f.attempt),
            |ms| ms.min(self.config.max_retry_wait_ms),
        );
        self.states[f.item].phase = Phase::Waiting;
        self.retry_queue.push(Reverse((now.plus(wait), f.item)));
    }

    /// Makes item `i` final: tallies, journal line, and any batch report it completes.
    fn record(&mut self, now: Millis, i: usize, outcome: Outcome, live: bool) {
        let batch = i / self.config.batch_size;
        let attempts = u32::from(self.states[i].attempts);
        let item = &self.items[i];
        let label = self.labels.index_of(&item.label);
        let tally = &mut self.batches[batch];
        tally.remaining -= 1;
        let done = match outcome {
            Outcome::Success {
                label: predicted,
                usage,
                latency_ms,
                status,
            } => {
                self.successful += 1;
                tally.successful += 1;
                if label == Some(predicted) {
                    self.agreements += 1;
                    tally.agreements += 1;
                }
                if let Some(label) = label {
                    self.tally.record(label, predicted);
                }
                if let Some(u) = usage {
                    self.usage.prompt_tokens += u.prompt_tokens;
                    self.usage.completion_tokens += u.completion_tokens;
                    self.usage.total_tokens += u.total_tokens;
                }
                self.latencies
                    .push(latency_ms.min(u64::from(u32::MAX)) as u32);
                self.states[i].phase = Phase::Succeeded;
                ItemDone {
                    row: i,
                    prediction: Some(predicted),
                    attempts,
                    latency_ms: Some(latency_ms),
                    http_status: Some(status),
                    usage,
                    failure: None,
                    finished_at: now,
                }
            }
            Outcome::Failure {
                kind,
                message,
                status,
                latency_ms,
            } => {
                self.failed += 1;
                tally.failed += 1;
                if let Some(l) = latency_ms.filter(|_| status.is_some()) {
                    self.latencies.push(l.min(u64::from(u32::MAX)) as u32);
                }
                self.errors.push(ErrorEntry {
                    row: i,
                    line: item.line,
                    image: display_image(item.image.as_str()).into_owned(),
                    label: item.label.to_string(),
                    error: message.clone(),
                    error_kind: Some(kind),
                    http_status: status,
                    attempts,
                });
                self.states[i].phase = Phase::Failed;
                ItemDone {
                    row: i,
                    prediction: None,
                    attempts,
                    latency_ms,
                    http_status: status,
                    usage: None,
                    failure: Some((kind, message)),
                    finished_at: now,
                }
            }
        };
        if live {
            self.done_this_session += 1;
            self.outputs.push_back(Output::ItemDone(done));
            self.emit_ready_reports(now);
        }
    }

    fn average_ms(&self, elapsed: u64) -> u64 {
        if self.done_this_session == 0 {
            0
        } else {
            elapsed / self.done_this_session as u64
        }
    }

    fn emit_ready_reports(&mut self, now: Millis) {
        while let Some(tally) = self.batches.get(self.reports.len()).copied() {
            if tally.remaining > 0 {
                return;
            }
            let b = self.reports.len();
            let size = self.config.batch_size;
            let start = b * size;
            let end = (start + size).min(self.items.len()) - 1;
            let (prev_ok, prev_failed, prev_agreed) = self
                .reports
                .last()
                .map_or((0, 0, 0), |r| (r.successful, r.failed, r.agreements));
            let successful = prev_ok + tally.successful as usize;
            let failed = prev_failed + tally.failed as usize;
            let processed = successful + failed;
            let elapsed = now.since(self.started_at);
            let average = self.average_ms(elapsed);
            let not_final = self.items.len() - self.successful - self.failed;
            let report = BatchReport {
                batch_number: b + 1,
                total_batches: self.batches.len(),
                batch_start_index: start,
                batch_end_index: end,
                batch_size: end + 1 - start,
                processed,
                successful,
                failed,
                elapsed_ms: elapsed,
                average_time_per_image: average,
                estimated_time_remaining: average * not_final as u64,
                success_rate: percent(successful, processed),
                total_items: self.items.len(),
                batch_successful: tally.successful as usize,
                batch_failed: tally.failed as usize,
                agreements: prev_agreed + tally.agreements as usize,
                retries: u64::from(tally.retries),
                rate_limit_hits: u64::from(tally.rate_limit_hits),
                resumed: tally.restored as usize == end + 1 - start,
            };
            self.reports.push(report.clone());
            self.outputs.push_back(Output::BatchReport(report));
        }
    }

    fn maybe_finish(&mut self, now: Millis) {
        if self.finished || !self.in_flight.is_empty() {
            return;
        }
        let all_final = self.successful + self.failed == self.items.len();
        if all_final || self.stop.is_some() {
            if all_final && self.stop == Some(Stop::Interrupted) {
                self.stop = None;
            }
            self.finished = true;
            let summary = self.summary(now);
            self.outputs.push_back(Output::Finished(Box::new(summary)));
        }
    }
}
