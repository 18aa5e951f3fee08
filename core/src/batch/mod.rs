//! Batch-API mode: the run goes through the provider's own batch engine (OpenAI's
//! Batch API, or an OpenAI-compatible server with `/v1/files` and `/v1/batches`)
//! instead of one request per image. A [`BatchRun`] is a second sans-IO state
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
//! - Every id the provider gives is journaled at once ([`BatchRecord`]): a shard's
//!   file id with its rows, its batch id, how it ended, and when all its results
//!   are journaled. A resume ([`BatchRun::restore`]) polls the batches already
//!   created, downloads those already ended, and, for a shard uploaded but with no
//!   batch on record, first looks for a batch created from its file (the crash may
//!   have come between the create and its record) before creating one: a batch is
//!   never created twice, a row of a running batch never sent again.
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
//!   (resumable); calls failing for `abort_after_failing_ms` stop it too.
//! - Detaching ([`BatchInput::Detach`], the user's Ctrl-C) leaves the provider's
//!   batches running and finishes the run `interrupted` at once: a resume picks
//!   them up. [`BatchInput::CancelBatches`] cancels them at the provider, collects
//!   what they finished, and finishes `interrupted`.
//!
//! Time between answers is hours, not seconds: the run's own time-based rules
//! (pacing, backoff waits, the give-up breaker) are off in batch mode, and latency
//! is submit-to-download time.

mod journal;
mod openai;

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, RunConfig};
use crate::engine::{AbortReason, Input, ItemDone, Output, Run, Ticket, UsageError};
use crate::http::{HttpRequest, HttpResponse, TransportErrorKind};
use crate::input::LabelsCsv;
use crate::journal::ItemResult;
use crate::provider::{Provider, RequestTemplate};
use crate::ratelimit::{backoff_ms, classify_status, unit_hash, RateLimitHeaders, StatusVerdict};
use crate::report::{BatchReport, ProgressReport, Summary};
use crate::time::Millis;

pub use journal::{fold_batch_journal, BatchRecord, FoldedBatches, ShardRecord};

/// Settings of batch-API mode ([`RunConfig::batch_api`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BatchApiConfig {
    /// Most lines (requests) in one shard. Default and most 50,000 (OpenAI's
    /// limit per input file).
    pub max_lines: usize,
    /// Most bytes in one shard's file. Default and most 200,000,000 (OpenAI's
    /// 200 MB per input file).
    pub max_bytes: u64,
    /// First wait before reading a batch's status, in ms. Default 5,000.
    pub poll_min_ms: u64,
    /// Longest wait between two reads of a batch's status, in ms. Default 60,000.
    pub poll_max_ms: u64,
}

impl Default for BatchApiConfig {
    fn default() -> Self {
        BatchApiConfig {
            max_lines: 50_000,
            max_bytes: 200_000_000,
            poll_min_ms: 5_000,
            poll_max_ms: 60_000,
        }
    }
}

const HOUR_MS: u64 = 3_600_000;

impl BatchApiConfig {
    /// Checks every field against its range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |field: &'static str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::BatchApi {
                    field,
                    value,
                    min,
                    max,
                })
            }
        };
        check("maxLines", self.max_lines as u64, 1, 50_000)?;
        check("maxBytes", self.max_bytes, 1_000, 200_000_000)?;
        check("pollMinMs", self.poll_min_ms, 1, HOUR_MS)?;
        check("pollMaxMs", self.poll_max_ms, self.poll_min_ms, HOUR_MS)
    }
}

/// Names one provider call (upload, create, poll, list, download, cancel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub u64);

/// "Build the line of this request": a row, an attempt, and the `custom_id` that
/// names the pair in the shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineOrder {
    /// Quote it back in [`BatchInput::LineBuilt`].
    pub ticket: Ticket,
    /// Index into [`BatchRun::run`]'s items.
    pub item: usize,
    /// 1 for the first try, 2 for the first re-send, ...
    pub attempt: u32,
    /// `r{row}-a{attempt}`.
    pub custom_id: String,
}

/// "Upload shard `shard`'s file."
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadOrder {
    /// Quote it back in the answer.
    pub call: CallId,
    /// The shard.
    pub shard: u32,
    /// `POST` it here (`{base}/files`), as `multipart/form-data` with
    /// `purpose=batch` and the file as `file`.
    pub url: String,
    /// The file name to give it: `shadow-batch-{run}-{shard}.jsonl`.
    pub file_name: String,
    /// Lines in the file.
    pub lines: usize,
    /// Bytes in the file.
    pub bytes: u64,
}

/// What the batch run asks of the host, in order. See the module docs.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchOutput {
    /// Build a request line.
    BuildLine(LineOrder),
    /// Append the line built for `ticket` to shard `shard`'s file.
    AppendLine {
        /// The shard.
        shard: u32,
        /// The line's request.
        ticket: Ticket,
    },
    /// The shard's local file is no longer needed (uploaded, or given up).
    DiscardFile {
        /// The shard.
        shard: u32,
    },
    /// Upload a shard's file.
    Upload(UploadOrder),
    /// Perform a JSON request of the batch API.
    Call {
        /// Quote it back in the answer.
        call: CallId,
        /// The request, without the key.
        request: HttpRequest,
        /// A download: feed a 2xx body's lines as they arrive.
        lines: bool,
    },
    /// Append to the provider journal, durably, before anything that follows.
    Record(BatchRecord),
    /// A provider batch's status changed ([`BatchRun::provider_batches`]).
    StatusChanged,
    /// As [`Output::ItemDone`].
    ItemDone(ItemDone),
    /// As [`Output::BatchReport`].
    BatchReport {
        /// The report.
        report: BatchReport,
    },
    /// As [`Output::Finished`]; the summary lists the provider batches.
    Finished {
        /// How the run went, in full.
        summary: Box<Summary>,
    },
}

/// Events the host feeds into the batch run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchInput {
    /// The line of `ticket` is built: `bytes` long, newline included.
    LineBuilt {
        /// The order's ticket.
        ticket: Ticket,
        /// Its size.
        bytes: u64,
    },
    /// The row's image could not be loaded; the row fails, no line.
    ImageFailed {
        /// The order's ticket.
        ticket: Ticket,
        /// What is wrong, naming the file.
        message: String,
    },
    /// Lines of a download's 2xx body, in the order they came (each without its
    /// `\n`).
    Lines {
        /// The download.
        call: CallId,
        /// The lines.
        lines: Vec<String>,
    },
    /// The call's answer (for a 2xx download: its end, with an empty body).
    Answer {
        /// The call.
        call: CallId,
        /// Status and body (and the headers that matter: `retry-after`...).
        response: HttpResponse,
    },
    /// No answer came (or a download broke off).
    CallFailed {
        /// The call.
        call: CallId,
        /// What kind of failure.
        kind: TransportErrorKind,
        /// Detail; must not contain a secret.
        message: String,
    },
    /// Leave the provider batches running and finish now, `interrupted`; a
    /// resume picks them up.
    Detach,
    /// Cancel the run's batches at the provider, keep what they finished, and
    /// finish `interrupted`. Nothing new is submitted.
    CancelBatches,
}

/// A provider batch's request counts, as the provider gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestCounts {
    /// Requests in the batch.
    pub total: u64,
    /// Requests done.
    pub completed: u64,
    /// Requests failed.
    pub failed: u64,
}

/// One shard of a batch-API run and its provider batch, for the progress file,
/// the summary and a live display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderBatch {
    /// The shard's number, from 1.
    pub shard: u32,
    /// Lines (requests) in it.
    pub lines: usize,
    /// Bytes of its input file.
    pub bytes: u64,
    /// Where it is: `building`, `uploading`, `uploaded`, `creating`, the
    /// provider's own status while its batch runs (`validating`, `in_progress`,
    /// `finalizing`, `cancelling`...), `downloading`, `done`, `failed`, `parked`
    /// (left for a resume).
    pub status: String,
    /// The provider's id of its input file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// The provider's id of its batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// The provider's counts, from the last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_counts: Option<RequestCounts>,
    /// The last thing that went wrong with it, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ProviderBatch {
    /// One line for a console: `shard 2 (50000 lines) batch_abc: in_progress 1200/50000`.
    pub fn describe(&self) -> String {
        let mut s = format!("shard {} ({} lines)", self.shard, self.lines);
        if let Some(id) = &self.batch_id {
            s.push(' ');
            s.push_str(id);
        }
        s.push_str(": ");
        s.push_str(&self.status);
        if let Some(c) = self.request_counts.filter(|c| c.total > 0) {
            s.push_str(&format!(" {}/{}", c.completed + c.failed, c.total));
            if c.failed > 0 {
                s.push_str(&format!(" ({} failed)", c.failed));
            }
        }
        s
    }
}

/// The status of a provider batch, across dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProviderStatus {
    Validating,
    InProgress,
    Finalizing,
    Cancelling,
    Completed,
    Expired,
    Cancelled,
    Failed,
    Unknown,
}

/// What a provider says about a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BatchObject {
    id: String,
    status: ProviderStatus,
    status_text: String,
    input_file_id: Option<String>,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
    counts: Option<RequestCounts>,
    /// (code, message)
    errors: Vec<(String, String)>,
}

/// What one line of a result file says about its request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LineOutcome {
    /// The request ran: its HTTP status and body.
    Answered { status: u16, body: String },
    /// It did not run (expired, cancelled...): why.
    NotRun { why: String },
}

/// The batch API a run speaks. One today; a second dialect (Anthropic's Message
/// Batches: no upload, requests inline, `processing_status`, a `results_url`)
/// plugs in here: its requests, its status words and its lines.
#[derive(Clone, Debug)]
enum Dialect {
    OpenAi { base: String },
}

/// The custom id of a row's attempt: `r{row}-a{attempt}`.
pub fn custom_id(row: usize, attempt: u32) -> String {
    format!("r{row}-a{attempt}")
}

/// Builds the lines of a run's shards: the live request body of a row, wrapped
/// as the batch API wants it. Cheap to clone; hosts build lines on other tasks.
#[derive(Clone, Debug)]
pub struct LineBuilder {
    template: RequestTemplate,
}

impl LineBuilder {
    /// The line (ending in `\n`) for `order`, with the image as `image_url` (an
    /// `http(s)` or `data:` URL) and the row's id.
    pub fn line(&self, order: &LineOrder, image_url: &str, item_id: Option<&str>) -> String {
        let request = self.template.build(image_url, order.attempt, item_id);
        openai::input_line(&order.custom_id, &request.body)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Lines are being added.
    Building,
    /// Sealed: to upload.
    Sealed,
    /// Uploaded: to create (after looking for a batch from its file, on resume).
    Uploaded,
    /// A batch runs at the provider.
    Running,
    /// Ended: its files are being downloaded.
    Downloading,
    /// All its results are in.
    Done,
    /// Failed as a whole; its rows were given up.
    Failed,
    /// Given up before a batch existed (the run stopped); its rows wait for a
    /// resume.
    Parked,
    /// Every line went to other shards; never uploaded.
    Empty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallKind {
    Upload,
    List,
    Create,
    Poll,
    Cancel,
    Download,
}

impl CallKind {
    fn step(self) -> &'static str {
        match self {
            CallKind::Upload => "upload",
            CallKind::List => "list",
            CallKind::Create => "create",
            CallKind::Poll => "poll",
            CallKind::Cancel => "cancel",
            CallKind::Download => "download",
        }
    }
}

#[derive(Debug)]
struct Shard {
    number: u32,
    phase: Phase,
    /// `custom_id` -> ticket, for lines not answered yet.
    waiting: HashMap<String, Ticket>,
    /// (row, attempt) of each line, in file order.
    members: Vec<(usize, u32)>,
    /// Lines ordered for it and not built yet.
    pending_builds: usize,
    /// Takes no more lines.
    full: bool,
    lines: usize,
    bytes: u64,
    file_id: Option<String>,
    batch_id: Option<String>,
    status_text: Option<String>,
    counts: Option<RequestCounts>,
    /// Files still to download, in order.
    downloads: VecDeque<String>,
    ended_status: Option<String>,
    /// The call in flight, if any.
    call: Option<CallId>,
    /// No call before this.
    due: Millis,
    polls: u32,
    /// Failed calls in a row.
    failures: u32,
    /// Batches created again after a transient failure.
    recreates: u32,
    /// Look for a batch created from its file before creating one.
    need_find: bool,
    find_after: Option<String>,
    find_pages: u32,
    cancel: bool,
    error: Option<String>,
    bad_lines: usize,
}

impl Shard {
    fn new(number: u32, phase: Phase, now: Millis) -> Shard {
        Shard {
            number,
            phase,
            waiting: HashMap::new(),
            members: Vec::new(),
            pending_builds: 0,
            full: false,
            lines: 0,
            bytes: 0,
            file_id: None,
            batch_id: None,
            status_text: None,
            counts: None,
            downloads: VecDeque::new(),
            ended_status: None,
            call: None,
            due: now,
            polls: 0,
            failures: 0,
            recreates: 0,
            need_find: false,
            find_after: None,
            find_pages: 0,
            cancel: false,
            error: None,
            bad_lines: 0,
        }
    }

    fn status(&self) -> ProviderBatch {
        let status = match self.phase {
            Phase::Building => "building".to_string(),
            Phase::Sealed => "uploading".to_string(),
            Phase::Uploaded if self.call.is_some() => "creating".to_string(),
            Phase::Uploaded => "uploaded".to_string(),
            Phase::Running => self
                .status_text
                .clone()
                .unwrap_or_else(|| "created".to_string()),
            Phase::Downloading => "downloading".to_string(),
            Phase::Done => match self.ended_status.as_deref() {
                Some("completed") | None => "done".to_string(),
                Some(s) => format!("done ({s})"),
            },
            Phase::Failed => "failed".to_string(),
            Phase::Parked => "parked".to_string(),
            Phase::Empty => "empty".to_string(),
        };
        ProviderBatch {
            shard: self.number,
            lines: self.lines,
            bytes: self.bytes,
            status,
            file_id: self.file_id.clone(),
            batch_id: self.batch_id.clone(),
            request_counts: self.counts,
            error: self.error.clone(),
        }
    }
}

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
    /// Since when every provider call has failed (`None` after a success).
    failing_since: Option<Millis>,
    failing_calls: u32,
    /// Some call has been answered (any status).
    reached: bool,
    seed: u64,
    abort_after_failing_ms: u64,
    max_retries: u32,
    run_id: String,
}

/// Connection failures, with nothing ever answered, that stop a batch run.
const UNREACHABLE_CALLS: u32 = 5;
/// Fewer failed calls in a row than this never stop a batch run.
const MIN_FAILING_CALLS: u32 = 10;
/// Pages of the batch list searched for a batch created from a shard's file.
const MAX_LIST_PAGES: u32 = 20;

impl BatchRun {
    /// A batch-API run over `csv`. `config.batch_api` gives its settings (the
    /// defaults when `None`); the provider must speak a batch API (OpenAI).
    pub fn new(config: RunConfig, csv: LabelsCsv, now: Millis) -> Result<BatchRun, ConfigError> {
        let cfg = config.batch_api.clone().unwrap_or_default();
        cfg.validate()?;
        let dialect = match &config.provider {
            Provider::OpenAi(openai) => Dialect::OpenAi {
                base: openai::api_base(&openai.base_url),
            },
            other => {
                return Err(ConfigError::NoBatchApi {
                    provider: match other {
                        Provider::HttpJson(_) => "http".to_string(),
                        _ => "this".to_string(),
                    },
                })
            }
        };
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
        let mut run = Run::new(config, csv, now)?;
        run.enter_batch_mode();
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
            failing_since: None,
            failing_calls: 0,
            reached: false,
            seed,
            abort_after_failing_ms,
            max_retries,
            run_id,
        })
    }

    /// A credential the host sends with each call: redacted wherever it echoes.
    pub fn hide_secret(&mut self, secret: &str) {
        self.run.hide_secret(secret);
    }

    /// Takes the results journal (as [`Run::restore`]) and the provider journal of
    /// an earlier session: rows of shards submitted then are taken back as in
    /// flight (their batches polled, their files downloaded, never submitted
    /// again); the rest is sent in new shards, each row's attempts counted on
    /// from the provider journal (so its retry budget holds across sessions),
    /// except the rows in `fresh`, which start a new budget (the failed rows a
    /// user asked to run again). Only before the first `poll`. Returns how many
    /// results were taken.
    ///
    /// # Errors
    ///
    /// As [`Run::restore`]; a shard naming a row the CSV does not have is a
    /// [`UsageError::RestoreMismatch`].
    pub fn restore<'r, I>(
        &mut self,
        now: Millis,
        results: I,
        batches: &FoldedBatches,
        fresh: &[usize],
    ) -> Result<usize, UsageError>
    where
        I: IntoIterator<Item = ItemResult<'r>>,
    {
        let taken = self.run.restore(results)?;
        let rows = self.run.items().len();
        let mut attempts: HashMap<usize, u32> = HashMap::new();
        for record in &batches.shards {
            for (row, attempt) in journal::decode_members(&record.members, rows).unwrap_or_default()
            {
                let seen = attempts.entry(row).or_default();
                *seen = (*seen).max(attempt);
            }
        }
        for row in fresh {
            attempts.remove(row);
        }
        for record in &batches.shards {
            self.next_shard = self.next_shard.max(record.shard.saturating_add(1));
            let failed = matches!(&record.ended, Some((s, ..)) if s == "failed");
            if record.done || failed || record.file_id.is_none() {
                continue;
            }
            let members = journal::decode_members(&record.members, rows).ok_or_else(|| {
                UsageError::RestoreMismatch {
                    row: rows,
                    reason: format!(
                        "the provider journal's shard {} names rows the CSV does not have",
                        record.shard
                    ),
                }
            })?;
            if let Some(&(row, _)) = members.iter().find(|(row, _)| *row >= rows) {
                return Err(UsageError::RestoreMismatch {
                    row,
                    reason: format!(
                        "the provider journal's shard {} names row {row}; the CSV has {rows} rows",
                        record.shard
                    ),
                });
            }
            let mut shard = Shard::new(record.shard, Phase::Uploaded, now);
            shard.file_id.clone_from(&record.file_id);
            shard.lines = record.lines;
            shard.bytes = record.bytes;
            shard.batch_id.clone_from(&record.batch_id);
            for &(row, attempt) in &members {
                if let Some(order) = self.run.adopt(now, row, attempt) {
                    shard.waiting.insert(custom_id(row, attempt), order.ticket);
                }
            }
            shard.members = members;
            match (&record.batch_id, &record.ended) {
                (None, _) => shard.need_find = true,
                (Some(_), None) => shard.phase = Phase::Running,
                (Some(_), Some((status, output, error))) => {
                    shard.phase = Phase::Downloading;
                    shard.ended_status = Some(status.clone());
                    shard.status_text = Some(status.clone());
                    shard.downloads = output.iter().chain(error).cloned().collect();
                }
            }
            if shard.waiting.is_empty() {
                // Every row is in the results journal already.
                shard.phase = Phase::Done;
                self.outputs
                    .push_back(BatchOutput::Record(BatchRecord::Done {
                        shard: shard.number,
                        at: now,
                    }));
            }
            self.shards.push(shard);
        }
        for (row, attempt) in attempts {
            self.run.count_requests(row, attempt);
        }
        self.changed = true;
        self.refresh();
        Ok(taken)
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
                if let Some(&(s, CallKind::Download)) = self.calls.get(&call) {
                    for line in &lines {
                        self.on_result_line(now, s, line);
                    }
                }
            }
            BatchInput::Answer { call, response } => {
                if let Some((s, kind)) = self.calls.remove(&call) {
                    self.shards[s].call = None;
                    self.reached = true;
                    if (200..300).contains(&response.status) {
                        self.failing_since = None;
                        self.failing_calls = 0;
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
            self.fill(now);
            self.seal(now);
            for s in 0..self.shards.len() {
                self.advance(now, s);
            }
            self.drain_run(now);
            if self.changed {
                self.changed = false;
                self.refresh();
                self.outputs.push_back(BatchOutput::StatusChanged);
            }
            if self.outputs.is_empty() {
                if let Some(summary) = self.finished.take() {
                    self.finish(now, summary);
                    continue;
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
        self.shards
            .iter()
            .filter(|s| s.call.is_none() && self.wants_call(s))
            .map(|s| s.due)
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
        }
    }

    /// The journal record of a finished item ([`Run::result`]).
    pub fn result(&self, done: &ItemDone) -> ItemResult<'_> {
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
            ..self.run.summary(now)
        }
    }

    /// True once `Finished` has been queued.
    pub fn is_finished(&self) -> bool {
        self.done
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

/// Building shards.
impl BatchRun {
    /// Orders lines for the open shard while there is room and something is due.
    fn fill(&mut self, now: Millis) {
        if self.mode != Mode::Running || self.run.is_stopping() {
            return;
        }
        self.drained = false;
        loop {
            let Some(order) = self.run.take_send(now) else {
                self.drained = true;
                return;
            };
            let s = self.open_shard(now);
            let shard = &mut self.shards[s];
            shard.pending_builds += 1;
            if shard.lines + shard.pending_builds >= self.cfg.max_lines {
                shard.full = true;
            }
            self.building
                .insert(order.ticket, (s, order.item, order.attempt));
            self.outputs.push_back(BatchOutput::BuildLine(LineOrder {
                ticket: order.ticket,
                item: order.item,
                attempt: order.attempt,
                custom_id: custom_id(order.item, order.attempt),
            }));
        }
    }

    /// The shard taking lines, opened if there is none.
    fn open_shard(&mut self, now: Millis) -> usize {
        if let Some(s) = self
            .shards
            .iter()
            .position(|s| s.phase == Phase::Building && !s.full)
        {
            return s;
        }
        let number = self.next_shard;
        self.next_shard += 1;
        self.shards.push(Shard::new(number, Phase::Building, now));
        self.changed = true;
        self.shards.len() - 1
    }

    fn on_line_built(&mut self, now: Millis, ticket: Ticket, bytes: u64) -> Result<(), UsageError> {
        let (s, item, attempt) = self
            .building
            .remove(&ticket)
            .ok_or(UsageError::UnknownTicket(ticket))?;
        self.shards[s].pending_builds -= 1;
        if self.mode != Mode::Running || self.run.is_stopping() {
            self.run.give_back(now, ticket);
            return Ok(());
        }
        if bytes > self.cfg.max_bytes {
            let message = format!(
                "its request is {bytes} bytes; a batch input file may hold at most {}",
                self.cfg.max_bytes
            );
            return self.run.handle(now, Input::ImageFailed { ticket, message });
        }
        let (max_lines, max_bytes) = (self.cfg.max_lines, self.cfg.max_bytes);
        let fits = move |shard: &Shard| {
            shard.phase == Phase::Building
                && shard.lines < max_lines
                && shard.bytes + bytes <= max_bytes
        };
        let target = if fits(&self.shards[s]) {
            s
        } else {
            self.shards[s].full = true;
            let open = self.open_shard(now);
            if fits(&self.shards[open]) {
                open
            } else {
                self.shards[open].full = true;
                self.open_shard(now)
            }
        };
        let shard = &mut self.shards[target];
        shard.lines += 1;
        shard.bytes += bytes;
        if shard.lines >= self.cfg.max_lines || shard.bytes >= self.cfg.max_bytes {
            shard.full = true;
        }
        shard.members.push((item, attempt));
        shard.waiting.insert(custom_id(item, attempt), ticket);
        self.outputs.push_back(BatchOutput::AppendLine {
            shard: shard.number,
            ticket,
        });
        Ok(())
    }

    /// Seals the shards that take no more lines and have all theirs.
    fn seal(&mut self, now: Millis) {
        let nothing_coming = self.drained && self.building.is_empty();
        let mut s = 0;
        let count = self.shards.len();
        while s < count {
            let shard = &mut self.shards[s];
            let closing = shard.full || nothing_coming || self.mode != Mode::Running;
            if shard.phase == Phase::Building && shard.pending_builds == 0 && closing {
                if shard.lines == 0 {
                    // Never journaled. The last shard goes (its number can be used
                    // again); another stays, empty (indices name shards).
                    if s + 1 == count {
                        self.next_shard = shard.number;
                        self.shards.pop();
                        break;
                    }
                    shard.phase = Phase::Empty;
                    s += 1;
                    continue;
                }
                if self.mode == Mode::Running && !self.run.is_stopping() {
                    shard.phase = Phase::Sealed;
                    shard.due = now;
                    self.changed = true;
                }
            }
            s += 1;
        }
    }

    /// Stops every shard that has no provider batch yet and no create call in
    /// flight: its rows are given back (left for resume), its file discarded.
    fn park_unsubmitted(&mut self, now: Millis) {
        for s in 0..self.shards.len() {
            let shard = &self.shards[s];
            let creating = shard.call.is_some_and(|c| {
                matches!(
                    self.calls.get(&c),
                    Some((_, CallKind::Create | CallKind::List))
                )
            });
            let before_batch = matches!(
                shard.phase,
                Phase::Building | Phase::Sealed | Phase::Uploaded
            );
            if !before_batch || creating || shard.pending_builds > 0 {
                continue;
            }
            let shard = &mut self.shards[s];
            if shard.phase != Phase::Uploaded {
                self.outputs.push_back(BatchOutput::DiscardFile {
                    shard: shard.number,
                });
            }
            shard.phase = Phase::Parked;
            if let Some(c) = shard.call.take() {
                self.calls.remove(&c);
            }
            let tickets: Vec<Ticket> = shard.waiting.drain().map(|(_, t)| t).collect();
            for ticket in tickets {
                self.run.give_back(now, ticket);
            }
            self.changed = true;
        }
    }
}

/// Provider calls.
impl BatchRun {
    fn base(&self) -> &str {
        match &self.dialect {
            Dialect::OpenAi { base } => base,
        }
    }

    /// Whether the shard has a call to make (when due).
    fn wants_call(&self, shard: &Shard) -> bool {
        let stopping = self.mode != Mode::Running || self.run.is_stopping();
        match shard.phase {
            Phase::Sealed | Phase::Uploaded => !stopping,
            Phase::Running | Phase::Downloading => true,
            _ => false,
        }
    }

    fn new_call(&mut self, s: usize, kind: CallKind) -> CallId {
        let call = CallId(self.next_call);
        self.next_call += 1;
        self.calls.insert(call, (s, kind));
        self.shards[s].call = Some(call);
        call
    }

    /// Makes the shard's next call, if it has one due.
    fn advance(&mut self, now: Millis, s: usize) {
        let shard = &self.shards[s];
        if shard.call.is_some() || shard.due > now || !self.wants_call(shard) {
            return;
        }
        let base = self.base().to_string();
        let shard = &self.shards[s];
        let (kind, request) = match shard.phase {
            Phase::Sealed => {
                let (number, lines, bytes) = (shard.number, shard.lines, shard.bytes);
                let call = self.new_call(s, CallKind::Upload);
                self.outputs.push_back(BatchOutput::Upload(UploadOrder {
                    call,
                    shard: number,
                    url: format!("{base}/files"),
                    file_name: format!("shadow-batch-{}-{number}.jsonl", self.run_id),
                    lines,
                    bytes,
                }));
                self.changed = true;
                return;
            }
            Phase::Uploaded if shard.need_find => (
                CallKind::List,
                openai::list_request(&base, shard.find_after.as_deref()),
            ),
            Phase::Uploaded => {
                let file = shard.file_id.as_deref().unwrap_or_default();
                (
                    CallKind::Create,
                    openai::create_request(&base, file, &self.run_id, shard.number),
                )
            }
            Phase::Running => {
                let id = shard.batch_id.as_deref().unwrap_or_default();
                if shard.cancel {
                    (CallKind::Cancel, openai::cancel_request(&base, id))
                } else {
                    (CallKind::Poll, openai::poll_request(&base, id))
                }
            }
            Phase::Downloading => match shard.downloads.front() {
                Some(file) => (CallKind::Download, openai::download_request(&base, file)),
                None => {
                    self.finish_shard(now, s);
                    return;
                }
            },
            _ => return,
        };
        let call = self.new_call(s, kind);
        self.outputs.push_back(BatchOutput::Call {
            call,
            request,
            lines: kind == CallKind::Download,
        });
    }

    /// When to read a running batch next: `poll_min_ms` growing by half per read
    /// up to `poll_max_ms`, less up to a fifth by the seed.
    fn next_poll(&self, s: usize) -> u64 {
        let shard = &self.shards[s];
        let grown = (self.cfg.poll_min_ms as f64) * 1.5f64.powi(shard.polls.min(64) as i32);
        let wait = grown.min(self.cfg.poll_max_ms as f64);
        let jitter = unit_hash(self.seed, shard.number as usize, shard.polls);
        (wait * (1.0 - 0.2 * jitter)).max(1.0) as u64
    }

    /// Backoff before calling again after `failures` failed calls.
    fn call_backoff(&self, s: usize) -> u64 {
        let shard = &self.shards[s];
        let jitter = unit_hash(self.seed ^ 0xBAC0, shard.number as usize, shard.failures);
        backoff_ms(
            self.cfg.poll_min_ms.min(1_000),
            self.cfg.poll_max_ms,
            shard.failures,
            jitter,
        )
    }

    fn on_success(&mut self, now: Millis, s: usize, kind: CallKind, body: &str) {
        let parsed = match kind {
            CallKind::Upload => openai::parse_file_id(body).map(|file_id| {
                let shard = &mut self.shards[s];
                shard.file_id = Some(file_id.clone());
                shard.phase = Phase::Uploaded;
                shard.due = now;
                self.urgent
                    .push_back(BatchOutput::Record(BatchRecord::Uploaded {
                        shard: shard.number,
                        file_id,
                        lines: shard.lines,
                        bytes: shard.bytes,
                        members: journal::encode_members(&shard.members),
                        at: now,
                    }));
                self.urgent.push_back(BatchOutput::DiscardFile {
                    shard: shard.number,
                });
            }),
            CallKind::List => openai::parse_list(body).map(|(batches, after)| {
                let file = self.shards[s].file_id.clone();
                let found = batches
                    .into_iter()
                    .find(|b| b.input_file_id.is_some() && b.input_file_id == file);
                match found {
                    Some(found) => self.on_created(now, s, found),
                    None => {
                        let shard = &mut self.shards[s];
                        shard.find_pages += 1;
                        shard.due = now;
                        match after.filter(|_| shard.find_pages < MAX_LIST_PAGES) {
                            Some(after) => shard.find_after = Some(after),
                            None => shard.need_find = false,
                        }
                    }
                }
            }),
            CallKind::Create => {
                openai::parse_batch(body).map(|batch| self.on_created(now, s, batch))
            }
            CallKind::Poll | CallKind::Cancel => openai::parse_batch(body).map(|batch| {
                if kind == CallKind::Cancel {
                    self.shards[s].cancel = false;
                }
                self.on_batch(now, s, batch);
            }),
            CallKind::Download => {
                self.shards[s].downloads.pop_front();
                self.shards[s].due = now;
                Ok(())
            }
        };
        if let Err(e) = parsed {
            // A 2xx answer the run cannot read: the call is tried again.
            self.shards[s].error = Some(format!("{} answer unreadable: {e}", kind.step()));
            self.retry_call(now, s, kind, e);
        }
    }

    /// A batch exists for the shard (created now, or found from its file).
    fn on_created(&mut self, now: Millis, s: usize, batch: BatchObject) {
        let shard = &mut self.shards[s];
        shard.batch_id = Some(batch.id.clone());
        shard.phase = Phase::Running;
        shard.need_find = false;
        shard.polls = 0;
        shard.ended_status = None;
        shard.cancel = self.mode == Mode::Cancelling;
        self.urgent
            .push_back(BatchOutput::Record(BatchRecord::Created {
                shard: shard.number,
                batch_id: batch.id.clone(),
                at: now,
            }));
        self.on_batch(now, s, batch);
    }

    /// What a read of the shard's batch says.
    fn on_batch(&mut self, now: Millis, s: usize, batch: BatchObject) {
        let next_poll = self.next_poll(s);
        let shard = &mut self.shards[s];
        if shard.status_text.as_deref() != Some(batch.status_text.as_str())
            || shard.counts != batch.counts
        {
            self.changed = true;
        }
        shard.status_text = Some(batch.status_text.clone());
        shard.counts = batch.counts.or(shard.counts);
        match batch.status {
            ProviderStatus::Validating
            | ProviderStatus::InProgress
            | ProviderStatus::Finalizing
            | ProviderStatus::Cancelling
            | ProviderStatus::Unknown => {
                shard.phase = Phase::Running;
                shard.due = now.plus(next_poll);
                shard.polls += 1;
            }
            ProviderStatus::Completed | ProviderStatus::Expired | ProviderStatus::Cancelled => {
                shard.phase = Phase::Downloading;
                shard.ended_status = Some(batch.status_text.clone());
                shard.downloads = batch
                    .output_file_id
                    .iter()
                    .chain(&batch.error_file_id)
                    .cloned()
                    .collect();
                shard.due = now;
                self.urgent
                    .push_back(BatchOutput::Record(BatchRecord::Ended {
                        shard: shard.number,
                        batch_id: batch.id,
                        status: batch.status_text,
                        output_file_id: batch.output_file_id,
                        error_file_id: batch.error_file_id,
                        at: now,
                    }));
            }
            ProviderStatus::Failed => {
                let detail = if batch.errors.is_empty() {
                    "the provider gave no reason".to_string()
                } else {
                    batch
                        .errors
                        .iter()
                        .map(|(code, message)| format!("{code}: {message}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                let mut detail = detail;
                self.run.redact(&mut detail);
                let shard = &mut self.shards[s];
                shard.error = Some(detail.clone());
                self.urgent
                    .push_back(BatchOutput::Record(BatchRecord::Ended {
                        shard: shard.number,
                        batch_id: batch.id.clone(),
                        status: batch.status_text,
                        output_file_id: None,
                        error_file_id: None,
                        at: now,
                    }));
                let transient = !batch.errors.is_empty()
                    && batch
                        .errors
                        .iter()
                        .all(|(code, _)| code == "token_limit_exceeded");
                if transient && shard.recreates < self.max_retries && self.mode == Mode::Running {
                    // The provider's queue is full: the same file, later.
                    shard.recreates += 1;
                    shard.failures = shard.recreates;
                    shard.phase = Phase::Uploaded;
                    shard.batch_id = None;
                    let wait = self.call_backoff(s).max(self.cfg.poll_max_ms);
                    self.shards[s].due = now.plus(wait);
                    return;
                }
                shard.phase = Phase::Failed;
                let tickets: Vec<Ticket> = shard.waiting.drain().map(|(_, t)| t).collect();
                self.run.abort(
                    now,
                    AbortReason::BatchFailed {
                        batch_id: batch.id,
                        detail,
                    },
                );
                for ticket in tickets {
                    self.run.give_back(now, ticket);
                }
            }
        }
    }

    /// One line of an output or error file.
    fn on_result_line(&mut self, now: Millis, s: usize, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let shard = &mut self.shards[s];
        let (id, outcome) = match openai::parse_line(line) {
            Ok(parsed) => parsed,
            Err(e) => {
                shard.bad_lines += 1;
                shard.error = Some(format!("a result line is unreadable: {e}"));
                return;
            }
        };
        let Some(ticket) = shard.waiting.remove(&id) else {
            // A line of a request answered already (a download read again), or
            // not of this shard.
            return;
        };
        match outcome {
            LineOutcome::Answered { status, body } => {
                let response = HttpResponse {
                    status,
                    headers: Vec::new(),
                    body,
                };
                // The ticket is in flight: it came from this shard's table.
                let _ = self.run.handle(now, Input::Response { ticket, response });
            }
            LineOutcome::NotRun { why } => self.run.not_run(now, ticket, &why),
        }
    }

    /// Every file of an ended batch is read: what did not come back did not run.
    fn finish_shard(&mut self, now: Millis, s: usize) {
        let shard = &mut self.shards[s];
        let why = match shard.ended_status.as_deref() {
            Some("expired") => "the provider batch expired before running it".to_string(),
            Some("cancelled") => "the provider batch was cancelled before running it".into(),
            _ => "its provider batch ended without an answer for it".to_string(),
        };
        let why = match &shard.batch_id {
            Some(id) => format!("{why} ({id})"),
            None => why,
        };
        let tickets: Vec<Ticket> = shard.waiting.drain().map(|(_, t)| t).collect();
        shard.phase = Phase::Done;
        let number = shard.number;
        for ticket in tickets {
            self.run.not_run(now, ticket, &why);
        }
        self.drain_run(now);
        self.outputs
            .push_back(BatchOutput::Record(BatchRecord::Done {
                shard: number,
                at: now,
            }));
        self.changed = true;
    }

    /// A call answered with an error status.
    fn on_refused(&mut self, now: Millis, s: usize, kind: CallKind, response: HttpResponse) {
        let mut response = response;
        self.run.redact(&mut response.body);
        let headers = RateLimitHeaders::parse(&response, now);
        let detail = crate::provider::parse_api_error(&response.body).map(|e| e.message);
        let described = crate::ratelimit::describe_status(&response);
        self.shards[s].error = Some(format!("{}: {described}", kind.step()));
        match classify_status(&response, &headers, self.run.config().provider.model()) {
            StatusVerdict::Retry { .. } => {
                let wait = headers.retry_after_ms;
                self.retry_call(now, s, kind, described);
                if let Some(ms) = wait {
                    let shard = &mut self.shards[s];
                    shard.due = shard.due.max(now.plus(ms.min(HOUR_MS)));
                }
            }
            StatusVerdict::Fatal(reason) => self.stop_for(now, s, kind, reason),
            // A call to the batch API is not a model's answer: a content filter's
            // word on it is a refusal of the call.
            StatusVerdict::Fail | StatusVerdict::Refused => {
                let reason = AbortReason::BatchRefused {
                    step: kind.step().to_string(),
                    status: response.status,
                    detail,
                };
                self.stop_for(now, s, kind, reason);
            }
        }
    }

    /// A call that cannot succeed: the run stops, resumable. A refused upload or
    /// create leaves the shard's rows for resume.
    fn stop_for(&mut self, now: Millis, s: usize, kind: CallKind, reason: AbortReason) {
        self.run.abort(now, reason);
        match kind {
            CallKind::Upload | CallKind::Create | CallKind::List => {}
            // The batch runs on at the provider; a resume reads it again.
            CallKind::Poll | CallKind::Cancel | CallKind::Download => {
                let shard = &mut self.shards[s];
                shard.phase = Phase::Parked;
                let tickets: Vec<Ticket> = shard.waiting.drain().map(|(_, t)| t).collect();
                for ticket in tickets {
                    self.run.give_back(now, ticket);
                }
            }
        }
        self.park_unsubmitted(now);
    }

    fn on_call_failed(
        &mut self,
        now: Millis,
        s: usize,
        kind: CallKind,
        error: TransportErrorKind,
        message: String,
    ) {
        let what = match error {
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Connect => "could not connect",
            TransportErrorKind::Reset => "connection broke",
            TransportErrorKind::Body => "answer unreadable",
        };
        let message = if message.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {message}")
        };
        self.shards[s].error = Some(format!("{}: {message}", kind.step()));
        if error == TransportErrorKind::Connect && !self.reached {
            self.failing_calls += 1;
            if self.failing_calls >= UNREACHABLE_CALLS {
                let reason = AbortReason::EndpointUnreachable {
                    attempts: self.failing_calls,
                    last_error: message,
                };
                self.stop_for(now, s, kind, reason);
                return;
            }
            self.failing_calls -= 1;
        }
        self.retry_call(now, s, kind, message);
    }

    /// A call to make again after a backoff; after `abort_after_failing_ms` of
    /// nothing but failed calls, the run stops.
    fn retry_call(&mut self, now: Millis, s: usize, kind: CallKind, last_error: String) {
        self.failing_calls += 1;
        let since = *self.failing_since.get_or_insert(now);
        let limit = self.abort_after_failing_ms;
        if limit > 0 && self.failing_calls >= MIN_FAILING_CALLS && now.since(since) >= limit {
            let reason = AbortReason::EndpointFailing {
                for_ms: now.since(since),
                attempts: self.failing_calls,
                last_error,
            };
            self.stop_for(now, s, kind, reason);
            return;
        }
        self.shards[s].failures += 1;
        let wait = self.call_backoff(s);
        self.shards[s].due = now.plus(wait);
    }
}

/// The run's outputs, and the end.
impl BatchRun {
    /// Moves the run's outputs to this run's queue (holding `Finished` back).
    fn drain_run(&mut self, now: Millis) {
        while let Some(output) = self.run.poll(now) {
            match output {
                Output::ItemDone(done) => self.outputs.push_back(BatchOutput::ItemDone(done)),
                Output::BatchReport { report } => {
                    self.outputs.push_back(BatchOutput::BatchReport { report })
                }
                Output::Finished { summary } => self.finished = Some(summary),
                // The run is paused in batch mode: sends are taken, not polled.
                Output::Send(order) => self.run.give_back(now, order.ticket),
            }
        }
    }

    fn finish(&mut self, now: Millis, mut summary: Box<Summary>) {
        // Shards whose rows are all in: nothing more to fetch on a resume.
        for shard in &mut self.shards {
            if matches!(shard.phase, Phase::Running | Phase::Downloading)
                && shard.waiting.is_empty()
                && self.mode != Mode::Detached
            {
                shard.phase = Phase::Done;
                self.outputs
                    .push_back(BatchOutput::Record(BatchRecord::Done {
                        shard: shard.number,
                        at: now,
                    }));
            }
        }
        self.refresh();
        summary.provider_batches = Some(self.statuses.clone());
        self.outputs.push_back(BatchOutput::Finished { summary });
        self.done = true;
    }

    fn refresh(&mut self) {
        self.statuses = self
            .shards
            .iter()
            .filter(|s| s.phase != Phase::Empty)
            .map(Shard::status)
            .collect();
    }
}

#[cfg(test)]
mod tests;
