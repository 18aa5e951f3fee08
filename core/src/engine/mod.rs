//! The run: a sans-IO state machine that decides what to send when, what each
//! answer means, and what the reports say.
//!
//! - [`contract`]: what goes in and comes out ([`Input`], [`Output`], tickets, errors);
//! - `rows`: the CSV rows the run holds (all, or those in play when fed as it
//!   goes);
//! - `schedule`: which item goes next and when (phases, retry queue, tickets in
//!   flight, pacing);
//! - `outcome`: what an attempt's outcome means (prediction, failure, retry, stop);
//! - `answers`: an answer or a transport failure applied to pacing, the breaker,
//!   retries and the item's end;
//! - `tally`: counts, batch reports and statistics;
//! - `precision`: `until_interval`'s confidence sequence, fed in row order;
//! - `reports`: what the host writes and shows: a row's journal record, the
//!   progress file, the summary and its comparison;
//! - `batch_hooks`: what a batch-API run drives the run with (not public).
//!
//! Why a run stops early ([`AbortReason`]) and the breaker for an endpoint that
//! only fails are one layer down, in `crate::stop`, shared with the batch run.

mod answers;
mod batch_hooks;
pub mod contract;
mod outcome;
mod precision;
mod reports;
mod rows;
mod schedule;
mod tally;

use std::collections::VecDeque;

use crate::compare::{Baseline, CompareError, LiveComparison};
use crate::config::{ConfigError, RunConfig};
use crate::cost::{Cost, PriceUsed};
use crate::input::{CsvOutline, Item, LabelSet, LabelsCsv};
use crate::journal::{FailureKind, ItemResult, ItemStatus, Usage};
use crate::provider::{OutputFormat, RequestTemplate};
use crate::redact::Redactor;
use crate::report::{display_image, RunStatus};
use crate::time::Millis;

pub use crate::stop::AbortReason;
pub use contract::{
    Counts, Input, ItemDone, Output, Pace, PaceSource, SendOrder, Ticket, UsageError,
};

use crate::stop::{Breaker, Stop, Thresholds};
use outcome::{Ended, Failure};
use precision::Precision;
use rows::Rows;
use schedule::{Claimed, InFlight, Schedule};
use tally::{FinalItem, Source, Tallies};

/// The CSV's columns a run keeps: whether it has ids, and the others' names.
#[derive(Clone, Debug)]
struct CsvColumns {
    has_ids: bool,
    extra: Vec<String>,
}

/// One shadow run over the items of a labels CSV. See the crate docs for the loop.
#[derive(Debug)]
pub struct Run {
    config: RunConfig,
    rows: Rows,
    /// A streaming run's row whose `ItemDone` the last poll handed out: let go
    /// of at the next poll, once the host has made its journal line.
    handed_out: Option<usize>,
    labels: LabelSet,
    template: RequestTemplate,
    schedule: Schedule,
    tallies: Tallies,
    breaker: Breaker,
    outputs: VecDeque<Output>,
    started_at: Millis,
    polled: bool,
    paused: bool,
    stop: Option<Stop>,
    /// With `until_interval`: the agreement's anytime-valid confidence
    /// sequence, fed the compared rows in row order as they become final.
    precision: Option<Precision>,
    /// When a cancelled run stops waiting for the requests in flight.
    abandon_at: Option<Millis>,
    finished: bool,
    /// Applied to every text from the endpoint or the host before it is kept.
    redactor: Redactor,
    /// How requests ask for the answer's form (falls back when refused).
    format: OutputFormat,
    /// Requests ask for log-probabilities (turned off, once, when refused).
    confidence: bool,
    /// What the CSV has beside image and label (a baseline column is one).
    columns: CsvColumns,
    /// What a row's tokens cost (the batch price in batch mode), when known.
    price: Option<PriceUsed>,
    /// Driven by a [`crate::batch::BatchRun`]: requests travel in provider batches,
    /// so there is no pacing, a retry is due at once (it waits for the next
    /// shard), the time-based breaker is off (hours pass between answers) and the
    /// cost is at the batch price.
    batch_mode: bool,
}

/// Construction and resume.
impl Run {
    /// A run over `csv` starting at `now`. Nothing is sent until the first `poll`.
    ///
    /// Credentials in the endpoint URL (userinfo, `?api-key=`) are redacted from
    /// everything the run reports, and the URL is reported without them; give the
    /// API key with [`Run::hide_secret`].
    pub fn new(config: RunConfig, csv: LabelsCsv, now: Millis) -> Result<Run, ConfigError> {
        let LabelsCsv { items, outline } = csv;
        let columns = CsvColumns {
            has_ids: outline.id_column.is_some(),
            extra: outline.extra_columns,
        };
        Run::with_rows(config, outline.labels, columns, Rows::Whole(items), now)
    }

    /// A run over a CSV the host reads as the run goes, so that memory follows the
    /// rows in play rather than the file's length (a run of millions of rows):
    /// `outline` is what a first read of the file found
    /// ([`crate::input::outline_labels_csv`]); the run asks for rows in order with
    /// [`Output::NeedRows`], which the host answers with [`Run::push_rows`] before
    /// it polls again. Such a run cannot [`Run::restore`]: a resumed run is made
    /// with [`Run::new`].
    pub fn streaming(
        config: RunConfig,
        outline: &CsvOutline,
        now: Millis,
    ) -> Result<Run, ConfigError> {
        let columns = CsvColumns {
            has_ids: outline.id_column.is_some(),
            extra: outline.extra_columns.clone(),
        };
        let mut run = Run::with_rows(
            config,
            outline.labels.clone(),
            columns,
            Rows::streamed(outline.rows),
            now,
        )?;
        run.schedule.feed_to(0);
        Ok(run)
    }

    fn with_rows(
        config: RunConfig,
        labels: LabelSet,
        columns: CsvColumns,
        rows: Rows,
        now: Millis,
    ) -> Result<Run, ConfigError> {
        config.validate()?;
        let total = rows.total();
        let mut redactor = Redactor::default();
        redactor.add_url(&config.provider.endpoint_url());
        let template = config
            .provider
            .request_template_scored(&labels, config.confidence);
        let token_charge = config.provider.token_charge(&labels);
        let config = RunConfig {
            provider: config.provider.for_display(),
            ..config
        };
        // A fallback found by an earlier session holds for the same endpoint only.
        let format = match &config.format_fallback {
            Some(f)
                if config.provider.falls_back() && f.endpoint == config.provider.endpoint_url() =>
            {
                f.format
            }
            _ => OutputFormat::JsonSchema,
        };
        // So is a refusal of log-probabilities.
        let confidence = template.asks_confidence()
            && config.confidence_refused_by.as_deref()
                != Some(config.provider.endpoint_url().as_str());
        let price = Cost::of(Usage::default(), 0, config.price, config.provider.model()).price;
        let mut run = Run {
            price,
            format,
            confidence,
            redactor,
            template,
            schedule: Schedule::new(total, &config, token_charge),
            tallies: Tallies::new(total, config.batch_size, labels.len(), &columns.extra),
            columns,
            breaker: Breaker::new(now, Thresholds::LIVE),
            outputs: VecDeque::new(),
            started_at: now,
            polled: false,
            paused: false,
            stop: None,
            precision: config
                .until_interval
                .map(|w| Precision::new(w, config.sample.as_ref().map(|s| s.csv_rows as u64))),
            abandon_at: None,
            finished: false,
            batch_mode: false,
            config,
            rows,
            handed_out: None,
            labels,
        };
        run.open_rows();
        Ok(run)
    }

    /// Feeds the rows an [`Output::NeedRows`] asked for, in order (all of them, or
    /// fewer at the end of the file: the outline was wrong, and the run cannot
    /// end).
    ///
    /// # Errors
    ///
    /// [`UsageError::RowOutOfOrder`] for a row that is not the next one, or on a
    /// run made from a whole CSV.
    pub fn push_rows<I: IntoIterator<Item = Item>>(&mut self, rows: I) -> Result<(), UsageError> {
        for item in rows {
            self.rows.push(item).map_err(UsageError::RowOutOfOrder)?;
        }
        self.open_rows();
        Ok(())
    }

    /// A credential (the API key) the host sends with each request: any echo of it
    /// in an answer or an error is redacted before the run keeps or reports it.
    pub fn hide_secret(&mut self, secret: &str) {
        self.redactor.add(secret);
    }

    /// Compares the run (B) with `baseline` (A) as its rows become final: the
    /// summary then holds the comparison ([`Summary::comparison`]). Before the
    /// first `poll` and before [`Run::restore`] (restored rows are compared
    /// too).
    ///
    /// # Errors
    ///
    /// A baseline column the CSV does not have; a run already going.
    pub fn compare_with(&mut self, baseline: Baseline) -> Result<(), CompareError> {
        if self.polled || self.tallies.final_count() > 0 {
            return Err(CompareError::TooLate);
        }
        self.tallies.comparison = Some(LiveComparison::new(
            baseline,
            &self.labels,
            &self.columns.extra,
            self.columns.has_ids,
        )?);
        Ok(())
    }

    /// Takes results already known (from the journal of an earlier session) as
    /// final, so that only the rest is dispatched. Returns how many were taken.
    /// Only before the first `poll`. (To run failed rows again, leave them out:
    /// [`crate::journal::FoldedJournal::prepare_resume`].)
    pub fn restore<'r, I>(&mut self, results: I) -> Result<usize, UsageError>
    where
        I: IntoIterator<Item = ItemResult<'r>>,
    {
        if self.polled {
            return Err(UsageError::RestoreAfterStart);
        }
        if matches!(self.rows, Rows::Streamed(_)) {
            return Err(UsageError::RowOutOfOrder(
                "a run fed its rows as it goes cannot restore results: make it from the whole CSV"
                    .into(),
            ));
        }
        let mut taken = 0;
        for r in results {
            let mismatch = |reason: String| UsageError::RestoreMismatch { row: r.row, reason };
            let Some(item) = self.rows.get(r.row) else {
                return Err(mismatch(format!(
                    "the CSV has only {} rows",
                    self.rows.total()
                )));
            };
            let image = display_image(item.image.as_str());
            if r.image != image || *r.label != *item.label {
                return Err(mismatch(format!(
                    "journal has image {:?} label {:?}, the CSV has {:?} {:?}",
                    r.image, r.label, image, item.label
                )));
            }
            if self.schedule.is_final(r.row) {
                continue;
            }
            let ended = match (r.status, r.prediction.as_deref()) {
                (ItemStatus::Success, Some(p)) => Ended::Succeeded {
                    // Journaled already: a restored row makes no line.
                    answer: String::new(),
                    label: self.labels.index_of(p).ok_or_else(|| {
                        mismatch(format!("prediction {p:?} is not a label of this CSV"))
                    })?,
                    usage: r.usage,
                    latency_ms: r.latency_ms.unwrap_or(0),
                    status: r.http_status.unwrap_or(200),
                    confidence: self.restored_confidence(&r),
                },
                _ => Ended::Failed(Failure {
                    kind: r.error_kind.unwrap_or(FailureKind::Http),
                    message: r.error.as_deref().unwrap_or("failed").to_string(),
                    status: r.http_status,
                    latency_ms: r.latency_ms,
                }),
            };
            self.schedule
                .restore(r.row, r.attempts, matches!(ended, Ended::Succeeded { .. }));
            self.finish_item(Millis(0), r.row, ended, Source::Restored);
            taken += 1;
        }
        Ok(taken)
    }
}

impl Run {
    /// The confidence a journal line kept (`Unscored` for a line written
    /// without one, or by an earlier version).
    fn restored_confidence(&self, r: &ItemResult<'_>) -> crate::confidence::Scored {
        use crate::confidence::{Confidence, LabelChance, Scored};
        match (r.confidence, r.confidence_gap) {
            (Some(p), _) if (0.0..=1.0).contains(&p) => Scored::Given(Confidence {
                probability: p,
                alternatives: r
                    .alternatives
                    .iter()
                    .filter_map(|a| {
                        Some(LabelChance {
                            label: self.labels.index_of(&a.label)?,
                            probability: a.probability,
                        })
                    })
                    .collect(),
            }),
            (_, Some(gap)) => Scored::Gap(gap),
            _ => Scored::Unscored,
        }
    }
}

/// The two verbs and the deadline.
impl Run {
    /// Feeds an event in. Then drain [`Run::poll`].
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownTicket`] for an answer to a ticket this run never
    /// issued or that was answered already. An answer to an abandoned request is
    /// no error: it is ignored.
    pub fn handle(&mut self, now: Millis, input: Input) -> Result<(), UsageError> {
        match input {
            Input::Pause => self.paused = true,
            Input::Resume => self.paused = false,
            Input::Cancel => {
                self.stop.get_or_insert(Stop::Interrupted);
                self.abandon_at
                    .get_or_insert(now.plus(self.config.cancel_grace_ms));
            }
            Input::Abandon => self.abandon(now),
            Input::Response { ticket, response } => {
                if let Some(f) = self.claim(ticket)? {
                    self.tallies.requests += 1;
                    // Judged as it came; what the run keeps of it is redacted
                    // in `on_response`.
                    self.on_response(now, f, response);
                }
            }
            Input::TransportFailed {
                ticket,
                kind,
                mut message,
            } => {
                if let Some(f) = self.claim(ticket)? {
                    self.tallies.requests += 1;
                    self.redactor.redact_in_place(&mut message);
                    self.on_transport_failed(now, f, kind, message);
                }
            }
            Input::ImageFailed {
                ticket,
                mut message,
            } => {
                if let Some(f) = self.claim(ticket)? {
                    self.redactor.redact_in_place(&mut message);
                    let failure = Failure::without_request(FailureKind::Image, message);
                    self.finish_item(now, f.item, Ended::Failed(failure), Source::Live);
                }
            }
        }
        Ok(())
    }

    /// The next thing to do, or `None` until an event arrives or
    /// [`Run::poll_timeout`] passes.
    pub fn poll(&mut self, now: Millis) -> Option<Output> {
        if let Some(row) = self.handed_out.take() {
            self.rows.release(row);
        }
        let output = self.next_output(now);
        if let (Some(Output::ItemDone(done)), Rows::Streamed(_)) = (&output, &self.rows) {
            self.handed_out = Some(done.row);
        }
        output
    }

    fn next_output(&mut self, now: Millis) -> Option<Output> {
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
        if self.stop.is_none() {
            if let Some(ask) = self.rows.ask(self.schedule.cursor()) {
                self.outputs.push_back(Output::NeedRows {
                    from: ask.from,
                    count: ask.count,
                });
            }
            if !self.paused {
                self.dispatch(now);
            }
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
            return self.abandon_at.filter(|_| self.schedule.in_flight() > 0);
        }
        let pacer = &self.schedule.pacer;
        if self.paused || pacer.in_flight() >= pacer.limit() {
            return None;
        }
        let due = self.schedule.earliest_due()?;
        Some(due.max(pacer.next_start_at()))
    }
}

/// What the host reads: requests, results and reports.
impl Run {
    /// How this run's requests are built: the host calls
    /// [`RequestTemplate::build_as`] with the image URL, the order's attempt, the
    /// item's id and the order's format, then adds its credential.
    pub fn request_template(&self) -> &RequestTemplate {
        &self.template
    }

    /// How requests ask for the answer's form now: [`OutputFormat::JsonSchema`]
    /// until the endpoint refuses it, then the next form (OpenAI-compatible
    /// providers only; see [`crate::provider::rejects_format`]). A run whose
    /// settings hold a [`crate::FormatFallback`] for its endpoint (a resumed run)
    /// starts from that form.
    pub fn output_format(&self) -> OutputFormat {
        self.format
    }

    /// Whether requests ask for log-probabilities now, for each answer's
    /// confidence: when the settings ask ([`RunConfig::confidence`]) and the
    /// provider gives them, until the endpoint refuses them
    /// ([`crate::provider::rejects_logprobs`]); a run whose settings say its
    /// endpoint refused them ([`RunConfig::confidence_refused_by`]) does not ask.
    pub fn asks_confidence(&self) -> bool {
        self.confidence
    }

    /// Rows in the CSV.
    pub fn row_count(&self) -> usize {
        self.rows.total()
    }

    /// Row `index`: any row of a run made from a whole CSV; of a streaming run,
    /// the rows it asked for and is not done with (those of its send orders, of
    /// [`Run::upcoming`], of the last `ItemDone`).
    ///
    /// # Panics
    ///
    /// For a row the run does not hold.
    pub fn item(&self, index: usize) -> &Item {
        self.rows
            .get(index)
            .unwrap_or_else(|| panic!("row {index} is not held by the run"))
    }

    /// Rows held now (every row of a run made from a whole CSV).
    pub fn rows_held(&self) -> usize {
        self.rows.held()
    }

    /// The items whose first request is still to come, from item `from` on, in the
    /// order they will be sent (retries, sent when due, come on top). A host that
    /// needs time to prepare an item, such as reading its image file, can start on
    /// these early. Skipping ahead with `from` keeps repeated calls cheap.
    pub fn upcoming(&self, from: usize) -> impl Iterator<Item = usize> + '_ {
        self.schedule
            .fresh_from(from)
            .filter(|&i| self.rows.get(i).is_some_and(|item| item.defect.is_none()))
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
            total: self.rows.total(),
            successful: self.tallies.successful,
            failed: self.tallies.failed,
            agreements: self.tallies.agreements,
            in_flight: self.schedule.in_flight(),
            done_this_session: self.tallies.done_this_session,
            resumed: self.tallies.resumed,
            retries: self.tallies.retries,
            rate_limit_hits: self.tallies.rate_limit_hits,
        }
    }

    /// What paces request starts as of `now`: the rate followed and where it comes
    /// from, the in-flight limit, a cool-down.
    pub fn pace(&self, now: Millis) -> Pace {
        self.schedule.pacer.pace(now)
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
            (Some(Stop::PrecisionReached), true) => RunStatus::Completed,
        }
    }

    /// Why the run stopped early, once it has (`None` while dispatching, and for a
    /// run that was interrupted or completed).
    pub fn abort_reason(&self) -> Option<&AbortReason> {
        match &self.stop {
            Some(Stop::Aborted(reason)) => Some(reason),
            _ => None,
        }
    }
}

/// Dispatch.
impl Run {
    /// Ends the next fresh row without a request when it is defective; whether
    /// it was.
    fn fail_next_defective(&mut self, now: Millis) -> bool {
        let Some(i) = self.schedule.next_fresh() else {
            return false;
        };
        let Some(defect) = self.rows.get(i).and_then(|item| item.defect.as_ref()) else {
            return false;
        };
        let failure = Failure::without_request(FailureKind::Input, defect.to_string());
        self.schedule.take_fresh();
        self.finish_item(now, i, Ended::Failed(failure), Source::Live);
        true
    }

    fn dispatch(&mut self, now: Millis) {
        // A defective row ends without a request; one per poll keeps outputs small.
        if self.fail_next_defective(now) {
            return;
        }
        if !self.schedule.pacer.may_start(now) {
            return;
        }
        let Some(item) = self.schedule.next_due(now) else {
            return;
        };
        let order = self.schedule.start(now, item, self.format, self.confidence);
        if order.attempt > 1 {
            self.tallies.on_retry(item);
        }
        self.outputs.push_back(Output::Send(order));
    }

    /// The request an answer is for; `None` for one the run abandoned.
    fn claim(&mut self, ticket: Ticket) -> Result<Option<InFlight>, UsageError> {
        match self.schedule.claim(ticket) {
            Claimed::Request(f) => Ok(Some(f)),
            Claimed::Abandoned => Ok(None),
            Claimed::Unknown => Err(UsageError::UnknownTicket(ticket)),
        }
    }

    /// Leaves the requests in flight unanswered (their items stay unfinished, for
    /// resume) and finishes the run as interrupted.
    fn abandon(&mut self, now: Millis) {
        self.stop.get_or_insert(Stop::Interrupted);
        self.schedule.abandon();
        self.maybe_finish(now);
    }
}

/// Results and reports.
impl Run {
    /// Makes item `row` final: tallies, journal line (when live), and any batch
    /// report it completes.
    fn finish_item(&mut self, now: Millis, row: usize, ended: Ended, source: Source) {
        if source == Source::Live {
            self.schedule
                .finish(row, matches!(ended, Ended::Succeeded { .. }));
        }
        let item = self.rows.get(row).expect("a row is held until it is final");
        let done = self.tallies.record(
            FinalItem {
                row,
                item,
                label: self.labels.index_of(&item.label),
                attempts: self.schedule.requests(row),
                ended,
                at: now,
            },
            source,
        );
        if let Some(precision) = self.precision.as_mut() {
            let label = self.labels.index_of(&item.label);
            precision.settle(row, done.prediction.zip(label).map(|(p, l)| p == l));
            self.open_rows();
        }
        if source == Source::Live {
            self.outputs.push_back(Output::ItemDone(done));
            self.emit_ready_reports(now);
        }
    }

    fn emit_ready_reports(&mut self, now: Millis) {
        let elapsed = now.since(self.started_at);
        while let Some(report) = self.tallies.next_report(elapsed) {
            self.outputs.push_back(Output::BatchReport { report });
            // The check is made at each batch's end, as `--until-interval` says.
            if self.stop.is_none() && self.precision.as_ref().is_some_and(Precision::reached) {
                self.stop = Some(Stop::PrecisionReached);
            }
        }
    }

    /// Lets the schedule send the rows the run holds, and with
    /// `until_interval` (live) only those within [`Precision::send_limit`].
    fn open_rows(&mut self) {
        let held = self.rows.fed_to();
        let limit = match &self.precision {
            Some(p) if !self.batch_mode => p.send_limit(self.schedule.pacer.limit()).min(held),
            _ => held,
        };
        self.schedule.feed_to(limit);
    }

    fn maybe_finish(&mut self, now: Millis) {
        if self.finished || self.schedule.in_flight() > 0 {
            return;
        }
        let all_final = self.tallies.final_count() == self.rows.total();
        if all_final || self.stop.is_some() {
            if all_final && self.stop == Some(Stop::Interrupted) {
                self.stop = None;
            }
            self.finished = true;
            let summary = Box::new(self.summary(now));
            self.outputs.push_back(Output::Finished { summary });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HttpResponse, TransportErrorKind};
    use crate::input::{parse_labels_csv, ColumnNames, LabelsCsv};

    fn csv_text(text: &str) -> LabelsCsv {
        parse_labels_csv(text, &ColumnNames::default()).unwrap()
    }

    fn run() -> Run {
        let csv = csv_text("image,label\nhttps://x.test/a.png,cat\n");
        Run::new(RunConfig::default(), csv, Millis(0)).unwrap()
    }

    #[test]
    fn an_answer_to_an_abandoned_request_is_ignored_and_an_unknown_ticket_is_an_error() {
        let mut run = run();
        let Some(Output::Send(order)) = run.poll(Millis(0)) else {
            panic!("the first poll sends")
        };
        run.handle(Millis(1), Input::Abandon).unwrap();
        let late = Input::TransportFailed {
            ticket: order.ticket,
            kind: TransportErrorKind::Timeout,
            message: String::new(),
        };
        assert_eq!(run.handle(Millis(2), late), Ok(()));
        assert_eq!(
            run.handle(
                Millis(3),
                Input::ImageFailed {
                    ticket: Ticket(99),
                    message: String::new()
                }
            ),
            Err(UsageError::UnknownTicket(Ticket(99)))
        );
    }

    #[test]
    fn an_image_that_cannot_be_loaded_counts_no_request() {
        let mut run = run();
        let Some(Output::Send(order)) = run.poll(Millis(0)) else {
            panic!("the first poll sends")
        };
        let failed = Input::ImageFailed {
            ticket: order.ticket,
            message: "missing".into(),
        };
        run.handle(Millis(1), failed).unwrap();
        let Some(Output::ItemDone(done)) = run.poll(Millis(1)) else {
            panic!("the item is final")
        };
        assert_eq!(done.attempts, 0);
        assert_eq!(run.counts().failed, 1);
    }

    /// Found by the `journal` fuzz target: token counts restored from a journal,
    /// or reported by the endpoint, were summed with `+`, which overflowed (a
    /// panic in debug builds, a wrapped total in release ones).
    #[test]
    fn token_usage_totals_saturate_instead_of_overflowing() {
        let csv = csv_text("image,label\na.png,cat\nb.png,cat\nc.png,cat\n");
        let mut run = Run::new(RunConfig::default(), csv, Millis(0)).unwrap();
        let huge = crate::journal::Usage {
            prompt_tokens: u64::MAX,
            completion_tokens: u64::MAX - 1,
            total_tokens: u64::MAX,
        };
        let restored = ["a.png", "b.png"]
            .iter()
            .enumerate()
            .map(|(row, image)| ItemResult {
                row,
                line: row as u64 + 2,
                id: None,
                image: (*image).into(),
                label: "cat".into(),
                prediction: Some("cat".into()),
                agreement: Some(true),
                status: ItemStatus::Success,
                attempts: 1,
                latency_ms: Some(1),
                error: None,
                error_kind: None,
                http_status: Some(200),
                usage: Some(huge),
                cost_usd: None,
                answer: None,
                confidence: None,
                alternatives: Vec::new(),
                confidence_gap: None,
                finished_at: Millis(0),
            });
        assert_eq!(run.restore(restored), Ok(2));
        let Some(Output::Send(order)) = run.poll(Millis(0)) else {
            panic!("the last row is sent")
        };
        let body = r#"{"choices":[{"message":{"content":"cat"}}],"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":7,"total_tokens":18446744073709551615}}"#;
        let response = HttpResponse {
            status: 200,
            headers: vec![],
            body: body.into(),
        };
        run.handle(
            Millis(1),
            Input::Response {
                ticket: order.ticket,
                response,
            },
        )
        .unwrap();
        while run.poll(Millis(1)).is_some() {}
        assert!(run.is_finished());
        let usage = run.summary(Millis(1)).statistics.usage;
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (u64::MAX, u64::MAX, u64::MAX)
        );
    }
}
