//! Batch-API mode: the run goes through the provider's own batch engine (OpenAI's
//! Batch API, or an OpenAI-compatible server with `/v1/files` and `/v1/batches`;
//! Azure OpenAI's global batch, the same API under an Azure resource;
//! Anthropic's Message Batches; Gemini Batch Mode) instead of one request per
//! image. A [`BatchRun`] is a second sans-IO state
//! machine beside [`Run`], and drives one: every request the run would send
//! becomes one line of a *shard* (an input file of at most
//! [`BatchApiConfig::max_lines`] lines and [`BatchApiConfig::max_bytes`] bytes),
//! every line of a batch's results becomes the answer to that request. So judging
//! answers, retries, the results journal, batch reports, summary, evaluation and
//! report are exactly a live run's.
//!
//! ## The loop
//!
//! The same two verbs and a deadline as [`Run`]: [`BatchRun::handle`] an event,
//! drain [`BatchRun::poll`], sleep until [`BatchRun::poll_timeout`] or the next
//! event. What the host does for each [`BatchOutput`]:
//!
//! - `BuildLine`: load the row's image, build the line with
//!   [`BatchRun::line_builder`], say its size with [`BatchInput::LineBuilt`] (or
//!   [`BatchInput::ImageFailed`]) and keep the text;
//! - `AppendLine`: append that line to the shard's file (the core has decided it
//!   fits);
//! - `Upload`: upload the shard's file (`multipart/form-data`, `purpose=batch`),
//!   answer with [`BatchInput::Answer`]; `DiscardFile`: delete the local file;
//! - `Submit` (requests inline: Anthropic's, and Gemini's small shards):
//!   `POST` the shard's file as the body of the create call, framed as the
//!   order says (a prefix, the lines joined by a separator, a suffix; each
//!   line rewritten when `rekeyed`: [`SubmitOrder::body`]), answer with
//!   `Answer` or `CallFailed`;
//! - `Call`: perform the HTTP request (adding the key), answer with `Answer` or
//!   [`BatchInput::CallFailed`]; for a download (`lines: true`) feed the body's
//!   lines as they arrive with [`BatchInput::Lines`], then `Answer` with an empty
//!   body to mark its end;
//! - `Record`: append the record to the provider journal and sync it (after
//!   syncing the results journal) before performing anything that follows;
//! - `StatusChanged`: show the batches' status and rewrite the progress file
//!   ([`BatchRun::progress`]);
//! - `ItemDone`, `BatchReport`, `Finished`: as for a live run.
//!
//! ## What it decides
//!
//! - Sharding: lines are added to the open shard until it holds `max_lines`, or
//!   the next line would take it past `max_bytes`, or nothing more is due; then
//!   it is sealed and uploaded while the next one fills. One model per run, so one
//!   model per file.
//! - Gemini: a sealed shard whose create body, its requests inline, is at
//!   most [`BatchApiConfig::inline_max_bytes`] goes inline (its intent
//!   journaled as [`BatchRecord::Submitting`], no upload; its results read
//!   from the finished batch); a larger one is uploaded.
//! - Every id the provider gives is journaled at once ([`BatchRecord`]): a shard's
//!   file id with its rows, its batch id, how it ended, and when all its results
//!   are journaled. A resume ([`BatchRun::restore`]) polls the batches already
//!   created, downloads those already ended, and, for a shard uploaded but with no
//!   batch on record, first looks for a batch created from its file (Gemini's:
//!   named by its display name, `shadow-batch-{run}-{shard}`; the crash may
//!   have come between the create and its record) before creating one: a batch is
//!   never created twice, a row of a running batch never sent again.
//! - An upload's intent (file name, rows) is journaled before the upload
//!   ([`BatchRecord::Uploading`]); a resume that has the intent but not the
//!   file id looks through the account's files for it by name and uses it (a
//!   file of the run's that no shard uses is deleted). Once a shard is done its
//!   files at the provider (input, output, error) are deleted, unless
//!   [`BatchApiConfig::keep_files`]; the run finishes after those calls.
//! - A lost provider journal ([`BatchRun::recover`]): the shards the progress
//!   file listed and the batches whose metadata (OpenAI) or display name
//!   (Gemini) name the run are adopted; their rows are read from their input
//!   files (OpenAI) or results (Anthropic, Gemini: its uploaded files cannot be
//!   downloaded) before anything new is created, each row taken back in the
//!   batch holding its latest attempt. A journal that contradicts itself or
//!   the provider (two records claiming a request, a batch made from another
//!   shard's file, results of other rows) is refused, naming its lines.
//! - Finding a batch without a file (Anthropic): its batches carry no metadata
//!   and cannot be looked up by content, so before each create call the journal
//!   records the intent ([`BatchRecord::Submitting`]: the shard's rows and the
//!   time). Creates are made one at a time, so at most one shard is ever
//!   between intent and id. A resume, or a create call that may have reached the
//!   provider without its answer reaching the run (a timeout, a broken
//!   connection, a 5xx), lists the account's batches (newest first, back to
//!   ten minutes before the intent, for clocks that differ) and takes as
//!   candidates those with as many requests, created since, that the run has
//!   not journaled as another shard's. One candidate is the shard's batch. Several: those that
//!   have ended are told apart by their results (the `custom_id`s name the run,
//!   `{run}-r{row}-a{attempt}`, so another's results match none of its rows);
//!   the rest are listed again until one is left. None, in a list made at least
//!   one poll interval after the intent: the call created nothing, and the
//!   shard is created (on resume, its lines are built again first).
//! - Polling: each running batch is read after `poll_min_ms`, then at intervals
//!   growing by half up to `poll_max_ms`, jittered by the run's seed.
//! - Results: lines are matched to requests by `custom_id` (`r{row}-a{attempt}`),
//!   in any order. An answered line is judged as a live answer (status and body);
//!   a line with no answer (expired, cancelled) and a request missing from both
//!   files are retryable failures: the row goes into a later shard, as long as its
//!   `max_retries` allow. A batch that expired re-sends only what it did not run.
//! - A batch that fails as a whole stops the run (resumable) unless its errors
//!   say the provider's queue is full (`token_limit_exceeded`): then the same file
//!   is submitted again after a wait, up to `max_retries` times.
//! - Provider calls that fail (transport errors, 408, 409, 429, 5xx) are retried
//!   with backoff; 401/403, `insufficient_quota` and other refusals stop the run
//!   (resumable); calls failing for `abort_after_failing_ms` stop it too. A
//!   create that failed after it may have reached the provider (no answer, a
//!   5xx) is followed by a search for its batch, as after a crash, before it is
//!   made again.
//! - Detaching ([`BatchInput::Detach`], the user's Ctrl-C) leaves the provider's
//!   batches running and finishes the run `interrupted` at once: a resume picks
//!   them up. [`BatchInput::CancelBatches`] cancels them at the provider, collects
//!   what they finished, and finishes `interrupted`.
//!
//! Time between answers is hours, not seconds: the run's own time-based rules
//! (pacing, backoff waits, the give-up breaker) are off in batch mode, and latency
//! is submit-to-download time.
//!
//! The files, one idea each:
//! - `contract`: the orders and events between the run and its host
//!   ([`BatchOutput`], [`BatchInput`]) and the [`LineBuilder`];
//! - `dialect`, `openai`, `azure`, `anthropic`, `gemini`: the batch APIs behind one face,
//!   and reading their answers (`azure` says where Azure's global batch
//!   differs from OpenAI's Batch API, which it otherwise is);
//! - `shard`: shards, their phases, and building them;
//! - `calls`: a shard's provider calls, their answers and failures;
//! - `batches`: a provider batch's life, from created to finished;
//! - `lost_create`: looking for a batch a create whose answer was lost may have made;
//! - `chores`: calls of no one shard (finding what a lost journal no longer names,
//!   deleting files);
//! - `resume`: taking back an earlier session, recovering a lost provider journal;
//! - `journal`: the provider journal's records and their fold;
//! - this file: [`BatchRun`], its verbs, what the host reads, and its end.
//!
//! The stop reasons and the breaker are the live run's ([`crate::AbortReason`]),
//! with the batch run's own thresholds.

mod anthropic;
mod azure;
mod batches;
mod calls;
mod chores;
mod contract;
mod dialect;
mod gemini;
mod journal;
mod lost_create;
mod openai;
mod resume;
pub mod rounds;
mod shard;

use std::collections::{HashMap, HashSet, VecDeque};

use crate::config::{ConfigError, RunConfig};
use crate::engine::{Input, ItemDone, Output, Run, Ticket, UsageError};
use crate::input::LabelsCsv;
use crate::journal::ItemResult;
use crate::provider::Provider;
use crate::report::{ProgressReport, Summary};
use crate::stop::{Breaker, Thresholds};
use crate::time::Millis;

pub use contract::{
    custom_id, BatchInput, BatchOutput, CallId, LineBuilder, LineOrder, SubmitOrder, UploadOrder,
    UploadProtocol,
};
pub use journal::{fold_batch_journal, BatchRecord, FoldedBatches, ShardRecord};

use dialect::{parse_list_page, BatchObject, Dialect, LineOutcome, ParseError, ProviderStatus};
use rounds::Rounds;
use shard::{CallKind, Phase, Shard};
// The settings live with the run's other settings; their old path still works.
pub use crate::config::BatchApiConfig;
// The record of a shard lives with the reports that carry it.
pub use crate::report::{BatchPhase, ProviderBatch, RequestCounts};

const HOUR_MS: u64 = 3_600_000;

/// Why a batch run stops taking new work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Running,
    /// Cancelling the provider batches; nothing new.
    Cancelling,
    /// Detached: finished.
    Detached,
}

/// A shadow run through a provider's batch API. See the module docs.
#[derive(Debug)]
pub struct BatchRun {
    run: Run,
    cfg: BatchApiConfig,
    dialect: Dialect,
    shards: Vec<Shard>,
    /// Tickets whose line is being built -> (shard index, row, attempt).
    building: HashMap<Ticket, (usize, usize, u32)>,
    calls: HashMap<CallId, (usize, CallKind)>,
    next_call: u64,
    next_shard: u32,
    outputs: VecDeque<BatchOutput>,
    /// Records of provider ids, ahead of every other output: an id is journaled
    /// before the host takes another step, whatever it had queued.
    urgent: VecDeque<BatchOutput>,
    /// The run's summary, held until the batch run's own records are out.
    finished: Option<Box<Summary>>,
    done: bool,
    mode: Mode,
    /// The last take of sends found nothing due.
    drained: bool,
    statuses: Vec<ProviderBatch>,
    changed: bool,
    /// Failed provider calls: the run stops against a provider it cannot reach
    /// or that only fails.
    breaker: Breaker,
    seed: u64,
    abort_after_failing_ms: u64,
    max_retries: u32,
    keep_files: bool,
    run_id: String,
    /// Every provider batch this run has journaled (no other shard's candidate).
    claimed: HashSet<String>,
    /// Provider chores beside the shards' calls: finding what a lost journal
    /// or a lost upload answer left at the provider, deleting done files.
    chores: VecDeque<Chore>,
    /// The chore in flight.
    chore_call: Option<(CallId, Chore)>,
    /// Files to delete after the next status change.
    deletes: Vec<String>,
    chore_due: Millis,
    chore_failures: u32,
    /// The line of the provider journal the next record becomes.
    next_line: usize,
    /// The provider journal as restored (for naming its lines).
    journaled: Vec<ShardRecord>,
    /// An upload failed after it may have reached the provider: its files are
    /// looked for before the run ends.
    upload_doubt: bool,
    /// The run's shards are closed (Done records out) before it finishes.
    closed: bool,
    /// With `until_interval`: the rounds of growing shards and the sequence
    /// that ends them ([`rounds`]).
    rounds: Option<Rounds>,
}

/// A provider call that belongs to no one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Chore {
    /// The provider journal lost batches: list the account's batches and
    /// adopt those whose metadata names this run (OpenAI).
    FindRunBatches { after: Option<String>, pages: u32 },
    /// List the account's files for uploads of this run that no journal
    /// names (by their name): use them or delete them (OpenAI).
    FindRunFiles { after: Option<String>, pages: u32 },
    /// Delete a file at the provider.
    Delete(String),
}

/// Failed tries of a chore before it is given up.
const CHORE_TRIES: u32 = 5;

/// Pages of the batch list searched for a batch created from a shard's file.
const MAX_LIST_PAGES: u32 = 20;
/// How much earlier than the run's clock said the provider's may date a batch
/// (clocks differ). Generous: a batch of another client that falls in the
/// window only makes the search read its results; a batch of the run's that
/// fell out of it would be created again.
const CLOCK_SKEW_MS: u64 = 10 * 60_000;
/// The longest wait after a create's intent before a list that does not show
/// its batch is taken to mean that the create made none.
const MAX_SETTLE_MS: u64 = 60_000;

impl BatchRun {
    /// A batch-API run over `csv`. `config.batch_api` gives its settings (the
    /// defaults when `None`); the provider must speak a batch API (OpenAI, Azure
    /// OpenAI, Anthropic, Gemini).
    pub fn new(config: RunConfig, csv: LabelsCsv, now: Millis) -> Result<BatchRun, ConfigError> {
        let cfg = config
            .batch_api
            .clone()
            .unwrap_or_else(|| BatchApiConfig::for_provider(&config.provider));
        let dialect = match &config.provider {
            Provider::OpenAi(openai) => Dialect::OpenAi {
                base: openai::api_base(&openai.base_url),
                azure: None,
            },
            Provider::Azure(cfg) => Dialect::OpenAi {
                base: azure::api_base(cfg),
                azure: Some(azure::Resource {
                    api_version: azure::api_version(cfg),
                }),
            },
            Provider::Gemini(cfg) => Dialect::Gemini {
                api: gemini::api(&cfg.base_url, &cfg.model),
            },
            Provider::Anthropic(cfg) => Dialect::Anthropic {
                base: anthropic::api_base(&cfg.base_url),
                tag: anthropic::run_tag(&config.run_id),
            },
            other => {
                return Err(ConfigError::NoBatchApi {
                    provider: match other {
                        Provider::HttpJson(_) => "http",
                        _ => "this",
                    }
                    .to_string(),
                })
            }
        };
        cfg.validate_for(&config.provider)?;
        let config = RunConfig {
            batch_api: Some(cfg.clone()),
            ..config
        };
        let (seed, abort_after_failing_ms, max_retries, run_id) = (
            config.seed,
            config.abort_after_failing_ms,
            config.max_retries,
            config.run_id.clone(),
        );
        let keep_files = cfg.keep_files;
        let mut run = Run::new(config, csv, now)?;
        run.enter_batch_mode();
        let rounds = run.config().until_interval.map(|w| {
            // Nothing goes out before the first round is decided.
            run.release_rows(0);
            let population = run.config().sample.as_ref().map(|s| s.csv_rows);
            Rounds::new(w, run.row_count(), population)
        });
        Ok(BatchRun {
            run,
            cfg,
            dialect,
            shards: Vec::new(),
            building: HashMap::new(),
            calls: HashMap::new(),
            next_call: 0,
            next_shard: 1,
            outputs: VecDeque::new(),
            urgent: VecDeque::new(),
            finished: None,
            done: false,
            mode: Mode::Running,
            drained: false,
            statuses: Vec::new(),
            changed: false,
            breaker: Breaker::new(now, Thresholds::BATCH),
            seed,
            abort_after_failing_ms,
            max_retries,
            keep_files,
            run_id,
            claimed: HashSet::new(),
            chores: VecDeque::new(),
            chore_call: None,
            deletes: Vec::new(),
            chore_due: now,
            chore_failures: 0,
            next_line: 1,
            journaled: Vec::new(),
            upload_doubt: false,
            closed: false,
            rounds,
        })
    }

    /// A credential the host sends with each call: redacted wherever it echoes.
    pub fn hide_secret(&mut self, secret: &str) {
        self.run.hide_secret(secret);
    }

    /// Compares the run with `baseline` as its rows become final
    /// ([`Run::compare_with`]): before the journals are restored.
    ///
    /// # Errors
    ///
    /// As [`Run::compare_with`].
    pub fn compare_with(
        &mut self,
        baseline: crate::compare::Baseline,
    ) -> Result<(), crate::compare::CompareError> {
        self.run.compare_with(baseline)
    }
}

/// The verbs and the deadline.
impl BatchRun {
    /// Feeds an event in. Then drain [`BatchRun::poll`].
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownTicket`] for a line this run did not order (or one
    /// answered twice). Answers to calls the run no longer waits for (after
    /// `Detach`) are ignored.
    pub fn handle(&mut self, now: Millis, input: BatchInput) -> Result<(), UsageError> {
        if self.done {
            return Ok(());
        }
        match input {
            BatchInput::LineBuilt { ticket, bytes } => self.on_line_built(now, ticket, bytes)?,
            BatchInput::ImageFailed { ticket, message } => {
                let (s, ..) = self
                    .building
                    .remove(&ticket)
                    .ok_or(UsageError::UnknownTicket(ticket))?;
                self.shards[s].pending_builds -= 1;
                self.run
                    .handle(now, Input::ImageFailed { ticket, message })?;
            }
            BatchInput::Lines { call, lines } => {
                if let Some(&(s, kind)) = self.calls.get(&call) {
                    if kind == CallKind::Learn {
                        for line in &lines {
                            self.on_learn_line(s, line);
                        }
                    } else if kind.lines() {
                        for line in &lines {
                            self.on_result_line(now, s, line);
                        }
                    }
                }
            }
            BatchInput::Answer { call, response } if self.is_chore(call) => {
                self.breaker.on_answer();
                self.on_chore_answer(now, Ok(response));
                self.changed = true;
            }
            BatchInput::CallFailed { call, message, .. } if self.is_chore(call) => {
                self.on_chore_answer(now, Err(message));
                self.changed = true;
            }
            BatchInput::Answer { call, response } => {
                if let Some((s, kind)) = self.calls.remove(&call) {
                    self.shards[s].call = None;
                    self.breaker.on_answer();
                    if (200..300).contains(&response.status) {
                        self.breaker.on_success(now);
                        self.shards[s].failures = 0;
                        self.on_success(now, s, kind, &response.body);
                    } else {
                        self.on_refused(now, s, kind, response);
                    }
                    self.changed = true;
                }
            }
            BatchInput::CallFailed {
                call,
                kind,
                mut message,
            } => {
                if let Some((s, what)) = self.calls.remove(&call) {
                    self.shards[s].call = None;
                    self.run.redact(&mut message);
                    self.on_call_failed(now, s, what, kind, message);
                    self.changed = true;
                }
            }
            BatchInput::Detach => {
                self.mode = Mode::Detached;
                self.calls.clear();
                self.chore_call = None;
                self.chores.clear();
                for s in 0..self.shards.len() {
                    if matches!(self.shards[s].phase, Phase::Building | Phase::Sealed) {
                        self.shards[s].phase = Phase::Parked;
                        self.outputs.push_back(BatchOutput::DiscardFile {
                            shard: self.shards[s].number,
                        });
                    }
                    self.shards[s].call = None;
                }
                self.building.clear();
                self.run.handle(now, Input::Abandon)?;
                self.changed = true;
            }
            BatchInput::CancelBatches => {
                if self.mode == Mode::Running {
                    self.mode = Mode::Cancelling;
                    self.run.interrupt(now);
                    for shard in &mut self.shards {
                        if shard.phase == Phase::Running {
                            shard.cancel = true;
                            shard.due = now;
                        }
                    }
                    self.park_unsubmitted(now);
                    self.changed = true;
                }
            }
        }
        self.drain_run(now);
        Ok(())
    }

    /// The next thing to do, or `None` until an event arrives or
    /// [`BatchRun::poll_timeout`] passes.
    pub fn poll(&mut self, now: Millis) -> Option<BatchOutput> {
        loop {
            if let Some(o) = self.urgent.pop_front().or_else(|| self.outputs.pop_front()) {
                if let BatchOutput::Record(record) = &o {
                    self.note_line(record);
                }
                return Some(o);
            }
            if self.done {
                return None;
            }
            self.drain_run(now);
            if !self.outputs.is_empty() {
                continue;
            }
            let stopping = self.mode == Mode::Cancelling
                || (self.mode == Mode::Running && self.run.is_stopping());
            if stopping {
                // Cancelled, or the run stopped itself (an answer said the key is
                // wrong...): nothing new is submitted.
                self.park_unsubmitted(now);
                self.drain_run(now);
            }
            self.plan_round(now);
            self.fill_round(now);
            self.seal(now);
            for s in 0..self.shards.len() {
                self.advance(now, s);
            }
            self.drain_run(now);
            if self.finished.is_some() && !self.closed {
                self.close(now);
            }
            self.advance_chores(now);
            if self.changed {
                self.changed = false;
                self.refresh();
                self.outputs.push_back(BatchOutput::StatusChanged);
                for file in std::mem::take(&mut self.deletes) {
                    self.add_chore(Chore::Delete(file));
                }
            }
            if self.outputs.is_empty() {
                let chores_left = self.mode != Mode::Detached
                    && (self.chore_call.is_some()
                        || !self.chores.is_empty()
                        || !self.deletes.is_empty());
                if !chores_left {
                    if let Some(summary) = self.finished.take() {
                        self.finish(now, summary);
                        continue;
                    }
                }
                return None;
            }
        }
    }

    /// When to poll again if no event arrives first; `None` when nothing timed is
    /// pending. Polling early is harmless.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.done || !self.outputs.is_empty() || !self.urgent.is_empty() {
            return None;
        }
        let chore =
            (self.chore_call.is_none() && !self.chores.is_empty() && self.mode != Mode::Detached)
                .then_some(self.chore_due);
        self.shards
            .iter()
            .filter(|s| s.call.is_none() && self.wants_call(s))
            .map(|s| s.due)
            .chain(chore)
            .min()
    }
}

/// What the host reads.
impl BatchRun {
    /// The live run inside: items, labels, counts, results.
    pub fn run(&self) -> &Run {
        &self.run
    }

    /// How this run's lines are built.
    pub fn line_builder(&self) -> LineBuilder {
        LineBuilder {
            template: self.run.request_template().clone(),
            inline: self.dialect.inline(),
            endpoint: self.dialect.endpoint(),
            keyed: matches!(self.dialect, Dialect::Gemini { .. }),
        }
    }

    /// The journal record of a finished item ([`Run::result`]).
    pub fn result<'a>(&'a self, done: &'a ItemDone) -> ItemResult<'a> {
        self.run.result(done)
    }

    /// The shards and their provider batches, as of the last change.
    pub fn provider_batches(&self) -> &[ProviderBatch] {
        &self.statuses
    }

    /// The progress file's content: the run's, with the provider batches.
    pub fn progress(&self, now: Millis) -> ProgressReport<'_> {
        ProgressReport {
            provider_batches: Some(&self.statuses),
            ..self.run.progress(now)
        }
    }

    /// The summary as of `now`, with the provider batches.
    pub fn summary(&self, now: Millis) -> Summary {
        Summary {
            provider_batches: Some(self.statuses.clone()),
            precision: self.rounds.as_ref().map(Rounds::report),
            ..self.run.summary(now)
        }
    }

    /// True once `Finished` has been queued.
    pub fn is_finished(&self) -> bool {
        self.done
    }

    /// Shards an earlier session may have created a batch for without its id
    /// reaching the journal: looked for before anything is created.
    pub fn creates_to_find(&self) -> usize {
        self.shards
            .iter()
            .filter(|s| s.phase == Phase::Uploaded && s.need_find)
            .count()
    }

    /// Provider batches that exist and have not ended (their ids are in the
    /// provider journal).
    pub fn open_batches(&self) -> usize {
        self.shards
            .iter()
            .filter(|s| s.phase == Phase::Running)
            .count()
    }
}

/// The run's outputs, and the end.
impl BatchRun {
    /// A record goes out as the journal's next line: shards remember the lines
    /// of theirs (to name them if the journal turns out mixed up).
    fn note_line(&mut self, record: &BatchRecord) {
        let line = self.next_line;
        self.next_line += 1;
        let Some(shard) = self.shards.iter_mut().find(|s| s.number == record.shard()) else {
            return;
        };
        match record {
            BatchRecord::Created { .. } => shard.batch_line = line,
            BatchRecord::Uploading { .. }
            | BatchRecord::Uploaded { .. }
            | BatchRecord::Submitting { .. } => shard.members_line = line,
            _ => {}
        }
    }

    /// Moves the run's outputs to this run's queue (holding `Finished` back).
    fn drain_run(&mut self, now: Millis) {
        while let Some(output) = self.run.poll(now) {
            match output {
                Output::ItemDone(done) => {
                    self.row_final(&done);
                    self.outputs.push_back(BatchOutput::ItemDone(done))
                }
                Output::BatchReport { report } => {
                    self.outputs.push_back(BatchOutput::BatchReport { report })
                }
                Output::Finished { summary } => self.finished = Some(summary),
                // The run is paused in batch mode: sends are taken, not polled.
                Output::Send(order) => self.run.give_back(now, order.ticket),
                // Made from a whole CSV, the run never asks for rows.
                Output::NeedRows { .. } => {}
            }
        }
    }

    /// The run's rows are all final (or it stops): shards whose rows are all
    /// in are done (nothing more to fetch on a resume), and their files go;
    /// files an upload may have left unnamed are looked for.
    fn close(&mut self, now: Millis) {
        self.closed = true;
        if self.mode == Mode::Detached {
            return;
        }
        for s in 0..self.shards.len() {
            let shard = &mut self.shards[s];
            if matches!(shard.phase, Phase::Running | Phase::Downloading)
                && shard.waiting.is_empty()
                && shard.learn.is_none()
            {
                let ended = shard.phase == Phase::Downloading;
                shard.phase = Phase::Done;
                self.outputs
                    .push_back(BatchOutput::Record(BatchRecord::Done {
                        shard: shard.number,
                        at: now,
                    }));
                if ended {
                    self.clear_files(s);
                }
            }
        }
        if self.upload_doubt {
            self.upload_doubt = false;
            self.add_chore(Chore::FindRunFiles {
                after: None,
                pages: 0,
            });
        }
    }

    fn finish(&mut self, now: Millis, mut summary: Box<Summary>) {
        let _ = now;
        self.refresh();
        summary.provider_batches = Some(self.statuses.clone());
        if let Some(rounds) = &mut self.rounds {
            rounds.settle();
            summary.precision = Some(rounds.report());
        }
        self.outputs.push_back(BatchOutput::Finished { summary });
        self.done = true;
    }

    fn refresh(&mut self) {
        let inline = self.dialect.inline();
        self.statuses = self
            .shards
            .iter()
            .filter(|s| s.phase != Phase::Empty)
            .map(|s| s.status(inline))
            .collect();
    }
}
