//! Batch-API mode: the run goes through the provider's own batch engine (OpenAI's
//! Batch API, or an OpenAI-compatible server with `/v1/files` and `/v1/batches`;
//! Anthropic's Message Batches) instead of one request per image. A [`BatchRun`] is a second sans-IO state
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
//! - `Submit` (a batch API that takes the requests inline, Anthropic's): `POST`
//!   the shard's file as the body of the create call, framed as the order says
//!   (a prefix, the lines joined by a separator, a suffix), answer with `Answer`
//!   or `CallFailed`;
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
//! - An upload's intent (file name, rows) is journaled before the upload
//!   ([`BatchRecord::Uploading`]); a resume that has the intent but not the
//!   file id looks through the account's files for it by name and uses it (a
//!   file of the run's that no shard uses is deleted). Once a shard is done its
//!   files at the provider (input, output, error) are deleted, unless
//!   [`BatchApiConfig::keep_files`]; the run finishes after those calls.
//! - A lost provider journal ([`BatchRun::recover`]): the shards the progress
//!   file listed and the batches whose metadata name the run (OpenAI) are
//!   adopted; their rows are read from their input files (OpenAI) or results
//!   (Anthropic) before anything new is created, each row taken back in the
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

mod anthropic;
mod journal;
mod openai;

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, RunConfig};
use crate::engine::{Input, ItemDone, Output, Run, Ticket, UsageError};
use crate::http::{HttpRequest, HttpResponse, TransportErrorKind};
use crate::input::LabelsCsv;
use crate::journal::ItemResult;
use crate::provider::{Provider, RequestTemplate};
use crate::ratelimit::{backoff_ms, classify_status, unit_hash, RateLimitHeaders, StatusVerdict};
use crate::report::{BatchReport, ProgressReport, Summary};
use crate::stop::{AbortReason, Breaker, Thresholds};
use crate::time::Millis;

pub use journal::{fold_batch_journal, BatchRecord, FoldedBatches, ShardRecord};
// The settings live with the run's other settings; their old path still works.
pub use crate::config::BatchApiConfig;
// The record of a shard lives with the reports that carry it.
pub use crate::report::{BatchPhase, ProviderBatch, RequestCounts};

const HOUR_MS: u64 = 3_600_000;

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

/// "Create a batch of shard `shard`'s requests": a batch API that takes the
/// requests inline (Anthropic's). `POST` to `url` with `headers` (and the key) a
/// body made of `prefix`, the shard file's lines joined by `separator`, and
/// `suffix`: `prefix.len() + bytes + (lines - 1) * separator.len() +
/// suffix.len()` bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitOrder {
    /// Quote it back in the answer.
    pub call: CallId,
    /// The shard.
    pub shard: u32,
    /// Where to `POST` it.
    pub url: String,
    /// Headers to set (without the key).
    pub headers: Vec<(String, String)>,
    /// Before the first line.
    pub prefix: &'static str,
    /// Between two lines.
    pub separator: &'static str,
    /// After the last line.
    pub suffix: &'static str,
    /// Lines in the file.
    pub lines: usize,
    /// Bytes in the file.
    pub bytes: u64,
}

impl SubmitOrder {
    /// The length of the body in bytes.
    pub fn body_len(&self) -> u64 {
        (self.prefix.len() + self.suffix.len()) as u64
            + self.bytes
            + (self.lines.saturating_sub(1) * self.separator.len()) as u64
    }
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
    /// Create a batch with a shard's requests in the call's body.
    Submit(SubmitOrder),
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

/// A provider's 2xx answer (or a line of a batch's results) the run cannot read.
/// Its words go into a shard's error and the run's reports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum ParseError {
    /// An answer that is not JSON: `what` names it ("the batch object").
    #[error("{what} is not JSON: {detail}")]
    NotJson { what: &'static str, detail: String },
    /// An answer without a field it must have.
    #[error("{what} has no \"{field}\"")]
    Missing {
        what: &'static str,
        field: &'static str,
    },
    /// A result line that is not JSON.
    #[error("not JSON: {0}")]
    LineNotJson(String),
    /// A result line without a field it must have.
    #[error("no \"{0}\"")]
    LineMissing(&'static str),
}

impl ParseError {
    fn not_json(what: &'static str) -> impl FnOnce(serde_json::Error) -> ParseError {
        move |e| ParseError::NotJson {
            what,
            detail: e.to_string(),
        }
    }

    fn line_not_json(e: serde_json::Error) -> ParseError {
        ParseError::LineNotJson(e.to_string())
    }
}

/// What a provider says about a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BatchObject {
    id: String,
    /// The run it names in its metadata (OpenAI's `shadow_batch_run`).
    run: Option<String>,
    /// The shard it names in its metadata (`shadow_batch_shard`).
    shard: Option<u32>,
    status: ProviderStatus,
    status_text: String,
    input_file_id: Option<String>,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
    counts: Option<RequestCounts>,
    /// (code, message)
    errors: Vec<(String, String)>,
    /// When the provider created it.
    created_at: Option<Millis>,
}

/// What one line of a result file says about its request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LineOutcome {
    /// The request ran: its HTTP status and body.
    Answered { status: u16, body: String },
    /// It did not run (expired, cancelled...): why.
    NotRun { why: String },
}

/// The batch API a run speaks: its requests, its status words and its lines.
#[derive(Clone, Debug)]
enum Dialect {
    /// OpenAI's Batch API: an uploaded input file, then a batch from it.
    OpenAi { base: String },
    /// Anthropic's Message Batches: the requests inline in the create call.
    Anthropic {
        base: String,
        /// The run's tag in `custom_id`s.
        tag: String,
    },
}

impl Dialect {
    /// The requests go inline in the create call (no upload, no file id).
    fn inline(&self) -> bool {
        matches!(self, Dialect::Anthropic { .. })
    }

    fn base(&self) -> &str {
        match self {
            Dialect::OpenAi { base } | Dialect::Anthropic { base, .. } => base,
        }
    }

    /// The row and attempt a `custom_id` of this run names; `None` for another's.
    fn row_attempt(&self, custom_id: &str) -> Option<(usize, u32)> {
        let tail = match self {
            Dialect::OpenAi { .. } => custom_id.strip_prefix('r')?,
            Dialect::Anthropic { tag, .. } => {
                custom_id.strip_prefix(tag.as_str())?.strip_prefix("-r")?
            }
        };
        let (row, attempt) = tail.split_once("-a")?;
        Some((row.parse().ok()?, attempt.parse().ok().filter(|a| *a >= 1)?))
    }

    fn custom_id(&self, row: usize, attempt: u32) -> String {
        match self {
            Dialect::OpenAi { .. } => custom_id(row, attempt),
            Dialect::Anthropic { tag, .. } => anthropic::custom_id(tag, row, attempt),
        }
    }

    /// The size of what is sent for `lines` lines of `bytes` bytes in all: the
    /// file, or the create call's body.
    fn body_bytes(&self, lines: usize, bytes: u64) -> u64 {
        match self {
            Dialect::OpenAi { .. } => bytes,
            Dialect::Anthropic { .. } => SubmitOrder {
                call: CallId(0),
                shard: 0,
                url: String::new(),
                headers: Vec::new(),
                prefix: anthropic::BODY_PREFIX,
                separator: anthropic::BODY_SEPARATOR,
                suffix: anthropic::BODY_SUFFIX,
                lines,
                bytes,
            }
            .body_len(),
        }
    }

    fn parse_batch(&self, body: &str) -> Result<BatchObject, ParseError> {
        match self {
            Dialect::OpenAi { .. } => openai::parse_batch(body),
            Dialect::Anthropic { .. } => anthropic::parse_batch(body),
        }
    }

    fn parse_list(&self, body: &str) -> Result<(Vec<BatchObject>, Option<String>), ParseError> {
        match self {
            Dialect::OpenAi { .. } => openai::parse_list(body),
            Dialect::Anthropic { .. } => anthropic::parse_list(body),
        }
    }

    fn parse_line(&self, line: &str) -> Result<(String, LineOutcome), ParseError> {
        match self {
            Dialect::OpenAi { .. } => openai::parse_line(line),
            Dialect::Anthropic { .. } => anthropic::parse_line(line),
        }
    }

    fn poll_request(&self, batch_id: &str) -> HttpRequest {
        match self {
            Dialect::OpenAi { base } => openai::poll_request(base, batch_id),
            Dialect::Anthropic { base, .. } => anthropic::poll_request(base, batch_id),
        }
    }

    fn cancel_request(&self, batch_id: &str) -> HttpRequest {
        match self {
            Dialect::OpenAi { base } => openai::cancel_request(base, batch_id),
            Dialect::Anthropic { base, .. } => anthropic::cancel_request(base, batch_id),
        }
    }

    fn list_request(&self, after: Option<&str>) -> HttpRequest {
        match self {
            Dialect::OpenAi { base } => openai::list_request(base, after),
            Dialect::Anthropic { base, .. } => anthropic::list_request(base, after),
        }
    }

    /// A download: an output or error file (OpenAI), a batch's results
    /// (Anthropic: `what` is the batch id).
    fn download_request(&self, what: &str) -> HttpRequest {
        match self {
            Dialect::OpenAi { base } => openai::download_request(base, what),
            Dialect::Anthropic { base, .. } => anthropic::results_request(base, what),
        }
    }
}

/// The custom id of a row's attempt in OpenAI's dialect: `r{row}-a{attempt}`
/// (Anthropic's carries the run's id too: `{run}-r{row}-a{attempt}`).
pub fn custom_id(row: usize, attempt: u32) -> String {
    format!("r{row}-a{attempt}")
}

/// Builds the lines of a run's shards: the live request body of a row, wrapped
/// as the batch API wants it. Cheap to clone; hosts build lines on other tasks.
#[derive(Clone, Debug)]
pub struct LineBuilder {
    template: RequestTemplate,
    inline: bool,
}

impl LineBuilder {
    /// The line (ending in `\n`) for `order`, with the image as `image_url` (an
    /// `http(s)` or `data:` URL) and the row's id: an input file's line
    /// (OpenAI), or one request of a create body (Anthropic).
    pub fn line(&self, order: &LineOrder, image_url: &str, item_id: Option<&str>) -> String {
        let request = self.template.build(image_url, order.attempt, item_id);
        if self.inline {
            anthropic::request_entry(&order.custom_id, &request.body)
        } else {
            openai::input_line(&order.custom_id, &request.body)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Lines are being added.
    Building,
    /// Sealed: to upload.
    Sealed,
    /// Uploaded (OpenAI), or its intent journaled (Anthropic): to create, after
    /// looking for the batch an earlier call may have created (`need_find`).
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
    /// A download of a candidate's results, to tell whether it is the shard's.
    Probe,
    /// A download of a shard's input file (OpenAI) or results (Anthropic)
    /// whose rows no journal names: its `custom_id`s say them.
    Learn,
}

impl CallKind {
    fn step(self) -> &'static str {
        match self {
            CallKind::Upload => "upload",
            CallKind::List => "list",
            CallKind::Create => "create",
            CallKind::Poll => "poll",
            CallKind::Cancel => "cancel",
            CallKind::Download | CallKind::Probe | CallKind::Learn => "download",
        }
    }

    /// A download: its 2xx body comes as lines.
    fn lines(self) -> bool {
        matches!(self, CallKind::Download | CallKind::Probe | CallKind::Learn)
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
    /// Look for a batch created from its file (or its intent) before creating
    /// one.
    need_find: bool,
    find_after: Option<String>,
    find_pages: u32,
    /// When its create was first about to be sent (journaled).
    intent_at: Option<Millis>,
    /// Batches that may be its, gathered over the pages of a list.
    candidates: Vec<BatchObject>,
    /// Batches whose results showed they are not its.
    ruled_out: HashSet<String>,
    /// The candidate whose results are being read, and whether a line was its.
    probe: Option<BatchObject>,
    probe_hit: bool,
    /// Its local file exists (built in this session, not yet given to the
    /// provider).
    file: bool,
    cancel: bool,
    error: Option<String>,
    bad_lines: usize,
    /// Rebuilt after the provider journal lost it: its rows are not known
    /// yet; the `(row, attempt)`s its lines name, as they are read.
    learn: Option<Vec<(usize, u32)>>,
    /// Those lines are all read.
    learn_read: bool,
    /// Its rows were learned (a line of a lower attempt of one of them is no
    /// sign of a mixed-up journal).
    learned: bool,
    /// Its upload's intent is journaled but not its file id: the file is
    /// looked for by its name before anything else.
    find_file: bool,
    /// The journal's lines of the records that gave its rows and its batch.
    members_line: usize,
    batch_line: usize,
    /// Result lines of this run naming rows the shard does not hold.
    strangers: usize,
    /// Its batch's output and error files.
    result_files: Vec<String>,
    /// Its files at the provider are deleted (or kept), never twice.
    files_cleared: bool,
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
            intent_at: None,
            candidates: Vec::new(),
            ruled_out: HashSet::new(),
            probe: None,
            probe_hit: false,
            file: false,
            cancel: false,
            error: None,
            bad_lines: 0,
            learn: None,
            learn_read: false,
            learned: false,
            find_file: false,
            members_line: 0,
            batch_line: 0,
            strangers: 0,
            result_files: Vec::new(),
            files_cleared: false,
        }
    }

    /// `inline`: the dialect takes the requests in the create call.
    fn status(&self, inline: bool) -> ProviderBatch {
        let status = match self.phase {
            _ if self.learn.is_some() => BatchPhase::Relearning,
            Phase::Building => BatchPhase::Building,
            Phase::Sealed if inline => BatchPhase::WaitingToCreate,
            Phase::Sealed => BatchPhase::Uploading,
            Phase::Uploaded if self.find_file => BatchPhase::FindingFile,
            Phase::Uploaded if self.need_find || self.probe.is_some() => BatchPhase::FindingBatch,
            Phase::Uploaded if self.call.is_some() || inline => BatchPhase::Creating,
            Phase::Uploaded => BatchPhase::Uploaded,
            Phase::Running => match &self.status_text {
                Some(text) => BatchPhase::AtProvider(text.clone()),
                None => BatchPhase::Created,
            },
            Phase::Downloading => BatchPhase::Downloading,
            Phase::Done => match self.ended_status.as_deref() {
                Some("completed" | "ended") | None => BatchPhase::Done(None),
                Some(s) => BatchPhase::Done(Some(s.to_string())),
            },
            Phase::Failed => BatchPhase::Failed,
            Phase::Parked => BatchPhase::Parked,
            Phase::Empty => BatchPhase::Empty,
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
    /// defaults when `None`); the provider must speak a batch API (OpenAI).
    pub fn new(config: RunConfig, csv: LabelsCsv, now: Millis) -> Result<BatchRun, ConfigError> {
        let cfg = config
            .batch_api
            .clone()
            .unwrap_or_else(|| BatchApiConfig::for_provider(&config.provider));
        let dialect = match &config.provider {
            Provider::OpenAi(openai) => Dialect::OpenAi {
                base: openai::api_base(&openai.base_url),
            },
            Provider::Anthropic(cfg) => Dialect::Anthropic {
                base: anthropic::api_base(&cfg.base_url),
                tag: anthropic::run_tag(&config.run_id),
            },
            other => {
                return Err(ConfigError::NoBatchApi {
                    provider: match other {
                        Provider::HttpJson(_) => "http",
                        Provider::Gemini(_) => "gemini",
                        Provider::Azure(_) => "azure",
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
    /// user asked to run again). An upload whose intent is journaled but not its
    /// file id is looked for at the provider by its file name first. Only before
    /// the first `poll`; then [`BatchRun::recover`]. Returns how many results
    /// were taken.
    ///
    /// # Errors
    ///
    /// As [`Run::restore`]; a shard naming a row the CSV does not have is a
    /// [`UsageError::RestoreMismatch`]; two records claiming the same request,
    /// or one batch given to two shards, is a [`UsageError::ProviderJournal`]
    /// naming their lines.
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
        self.next_line = batches.complete_lines + 1;
        self.journaled = batches.shards.clone();
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
        check_claims(batches, rows)?;
        for record in &batches.shards {
            self.next_shard = self.next_shard.max(record.shard.saturating_add(1));
            if let Some(id) = &record.batch_id {
                self.claimed.insert(id.clone());
            }
            let failed = matches!(&record.ended, Some((s, ..)) if s == "failed");
            if record.done || failed {
                // Its files may outlive a crash before their delete.
                let mut shard = Shard::new(record.shard, Phase::Done, now);
                shard.file_id.clone_from(&record.file_id);
                shard.batch_id.clone_from(&record.batch_id);
                shard.ended_status = record.ended.as_ref().map(|(s, ..)| s.clone());
                if let Some((_, output, error)) = &record.ended {
                    shard.result_files = output.iter().chain(error).cloned().collect();
                }
                shard.phase = if failed { Phase::Failed } else { Phase::Done };
                shard.lines = record.lines;
                self.shards.push(shard);
                let s = self.shards.len() - 1;
                self.clear_files(s);
                continue;
            }
            let submitted = record.file_id.is_some()
                || record.submitted_at.is_some()
                || record.uploading.is_some();
            if !submitted {
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
            shard.intent_at = record.submitted_at;
            shard.members_line = record.members_line;
            shard.batch_line = record.batch_line;
            for &(row, attempt) in &members {
                if let Some(order) = self.run.adopt(now, row, attempt) {
                    let id = self.dialect.custom_id(row, attempt);
                    shard.waiting.insert(id, order.ticket);
                }
            }
            shard.members = members;
            match (&record.batch_id, &record.ended) {
                (None, _) if record.file_id.is_none() && record.uploading.is_some() => {
                    // The upload's answer never came: its file is looked for
                    // by name.
                    shard.find_file = true;
                    self.add_chore(Chore::FindRunFiles {
                        after: None,
                        pages: 0,
                    });
                }
                (None, _) => shard.need_find = true,
                (Some(_), None) => shard.phase = Phase::Running,
                (Some(id), Some((status, output, error))) => {
                    shard.phase = Phase::Downloading;
                    shard.ended_status = Some(status.clone());
                    shard.status_text = Some(status.clone());
                    shard.result_files = output.iter().chain(error).cloned().collect();
                    shard.downloads = if self.dialect.inline() {
                        VecDeque::from([id.clone()])
                    } else {
                        shard.result_files.iter().cloned().collect()
                    };
                }
            }
            self.shards.push(shard);
            let s = self.shards.len() - 1;
            if self.shards[s].waiting.is_empty() {
                // Every row is in the results journal already.
                self.shards[s].phase = Phase::Done;
                self.outputs
                    .push_back(BatchOutput::Record(BatchRecord::Done {
                        shard: record.shard,
                        at: now,
                    }));
                self.clear_files(s);
            }
        }
        for (row, attempt) in attempts {
            self.run.count_requests(row, attempt);
        }
        self.changed = true;
        self.refresh();
        Ok(taken)
    }

    /// After [`BatchRun::restore`], before the first `poll`: rebuilds what the
    /// provider journal lost from the provider batches the run's progress or
    /// summary file listed (`saved`), and, when the journal was `lost` or is
    /// missing some of them, from the provider itself (OpenAI's batches name
    /// the run in their metadata: the account's are listed and this run's
    /// adopted). A batch found so has rows no journal names: they are read from
    /// its input file (OpenAI) or its results once it ends (Anthropic), and
    /// nothing new is created until they are known, so that no row of it is
    /// sent again.
    ///
    /// # Errors
    ///
    /// [`UsageError::ProviderJournal`] when the saved file gives a batch to
    /// another shard than the journal does.
    pub fn recover(
        &mut self,
        now: Millis,
        saved: &[ProviderBatch],
        lost: bool,
    ) -> Result<(), UsageError> {
        let mut rebuilt = lost;
        for p in saved {
            self.next_shard = self.next_shard.max(p.shard.saturating_add(1));
            if let Some(id) = &p.batch_id {
                if let Some(other) = self
                    .journaled
                    .iter()
                    .find(|r| r.batch_id.as_deref() == Some(id.as_str()) && r.shard != p.shard)
                {
                    return Err(UsageError::ProviderJournal {
                        detail: format!(
                            "line {} gives batch {id} to shard {}, but the run's progress file lists it as shard {}'s; the journal was edited or mixed up (restore it, or delete it and resume: the run rebuilds it from the progress file and the provider)",
                            other.batch_line, other.shard, p.shard
                        ),
                    });
                }
            }
            if let Some(s) = self.shards.iter().position(|s| s.number == p.shard) {
                // Journaled; a batch the journal lost is taken from the file.
                let shard = &mut self.shards[s];
                if let (Phase::Uploaded, None, Some(id)) =
                    (shard.phase, &shard.batch_id, &p.batch_id)
                {
                    shard.batch_id = Some(id.clone());
                    shard.phase = Phase::Running;
                    shard.need_find = false;
                    shard.find_file = false;
                    self.claimed.insert(id.clone());
                    rebuilt = true;
                }
                continue;
            }
            if self.journaled.iter().any(|r| r.shard == p.shard) {
                continue;
            }
            if !p.status.is_open() || p.lines == 0 {
                if let Some(id) = &p.batch_id {
                    // Its rows are all in: its batch is no one's to adopt,
                    // and its files may outlive a crash before their delete.
                    self.claimed.insert(id.clone());
                    let mut shard = Shard::new(p.shard, Phase::Done, now);
                    shard.batch_id = Some(id.clone());
                    shard.file_id.clone_from(&p.file_id);
                    shard.lines = p.lines;
                    shard.ended_status = match &p.status {
                        BatchPhase::Done(end) => end.clone(),
                        _ => None,
                    };
                    self.shards.push(shard);
                    let s = self.shards.len() - 1;
                    self.clear_files(s);
                    // The journal gets it back, done.
                    for record in [
                        BatchRecord::Created {
                            shard: p.shard,
                            batch_id: id.clone(),
                            at: now,
                        },
                        BatchRecord::Done {
                            shard: p.shard,
                            at: now,
                        },
                    ] {
                        self.urgent.push_back(BatchOutput::Record(record));
                    }
                }
                continue;
            }
            let mut shard = Shard::new(p.shard, Phase::Uploaded, now);
            shard.lines = p.lines;
            shard.bytes = p.bytes;
            shard.file_id.clone_from(&p.file_id);
            shard.learn = Some(Vec::new());
            match (&p.batch_id, &p.file_id) {
                (Some(id), _) => {
                    shard.batch_id = Some(id.clone());
                    shard.phase = Phase::Running;
                    self.claimed.insert(id.clone());
                    self.urgent
                        .push_back(BatchOutput::Record(BatchRecord::Created {
                            shard: p.shard,
                            batch_id: id.clone(),
                            at: now,
                        }));
                }
                // Uploaded: a batch made from its file is looked for.
                (None, Some(_)) => shard.need_find = true,
                // Its create may have made a batch: looked for by its count
                // (Anthropic's batches name no run), in the whole list.
                (None, None) if self.dialect.inline() => {
                    let sent = matches!(
                        p.status,
                        BatchPhase::WaitingToCreate
                            | BatchPhase::Creating
                            | BatchPhase::FindingBatch
                    );
                    if !sent {
                        continue;
                    }
                    shard.need_find = true;
                    shard.intent_at = Some(Millis(0));
                }
                // Its upload may have left a file: found by its name below.
                (None, None) => {
                    rebuilt = true;
                    continue;
                }
            }
            rebuilt = true;
            self.shards.push(shard);
        }
        if rebuilt && !self.dialect.inline() {
            self.add_chore(Chore::FindRunBatches {
                after: None,
                pages: 0,
            });
            self.add_chore(Chore::FindRunFiles {
                after: None,
                pages: 0,
            });
        }
        self.changed = true;
        self.refresh();
        Ok(())
    }

    /// Whether what the provider journal lost is still being rebuilt: nothing
    /// new is created meanwhile.
    pub fn recovering(&self) -> bool {
        self.shards.iter().any(|s| s.learn.is_some())
            || self.chore_pending(|c| matches!(c, Chore::FindRunBatches { .. }))
    }
}

/// Two records of shards still open that claim the same request (row and
/// attempt), or one batch given to two shards: the journal was edited or mixed
/// up, and a resume from it could send rows again.
fn check_claims(batches: &FoldedBatches, rows: usize) -> Result<(), UsageError> {
    let mut claims: HashMap<(usize, u32), &ShardRecord> = HashMap::new();
    let mut batch_of: HashMap<&str, &ShardRecord> = HashMap::new();
    let fix = "the journal was edited or mixed up; restore it, or delete it and resume (the run rebuilds it from the progress file and the provider)";
    for record in &batches.shards {
        if let Some(id) = &record.batch_id {
            if let Some(other) = batch_of.insert(id, record) {
                return Err(UsageError::ProviderJournal {
                    detail: format!(
                        "lines {} and {} give the same batch {id} to shards {} and {}; {fix}",
                        other.batch_line, record.batch_line, other.shard, record.shard
                    ),
                });
            }
        }
        let failed = matches!(&record.ended, Some((s, ..)) if s == "failed");
        if record.done || failed {
            continue;
        }
        for pair in journal::decode_members(&record.members, rows).unwrap_or_default() {
            if let Some(other) = claims
                .insert(pair, record)
                .filter(|o| o.shard != record.shard)
            {
                let (a, b) = if other.members_line <= record.members_line {
                    (other, record)
                } else {
                    (record, other)
                };
                return Err(UsageError::ProviderJournal {
                    detail: format!(
                        "lines {} and {} both claim row {} (attempt {}), for shards {} and {}; {fix}",
                        a.members_line, b.members_line, pair.0, pair.1, a.shard, b.shard
                    ),
                });
            }
        }
    }
    Ok(())
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
            self.fill(now);
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

/// Building shards.
impl BatchRun {
    /// Orders lines for the open shard while there is room and something is due.
    fn fill(&mut self, now: Millis) {
        if self.mode != Mode::Running || self.run.is_stopping() || self.recovering() {
            return;
        }
        self.drained = false;
        loop {
            let Some(order) = self.run.take_send(now) else {
                self.drained = true;
                return;
            };
            self.order_line(now, order.ticket, order.item, order.attempt);
        }
    }

    /// Orders the line of a request for the open shard.
    fn order_line(&mut self, now: Millis, ticket: Ticket, item: usize, attempt: u32) {
        let s = self.open_shard(now);
        let shard = &mut self.shards[s];
        shard.pending_builds += 1;
        if shard.lines + shard.pending_builds >= self.cfg.max_lines {
            shard.full = true;
        }
        self.building.insert(ticket, (s, item, attempt));
        self.outputs.push_back(BatchOutput::BuildLine(LineOrder {
            ticket,
            item,
            attempt,
            custom_id: self.dialect.custom_id(item, attempt),
        }));
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
        let mut shard = Shard::new(number, Phase::Building, now);
        shard.file = true;
        self.shards.push(shard);
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
        if self.dialect.body_bytes(1, bytes) > self.cfg.max_bytes {
            let message = format!(
                "its request is {bytes} bytes; a provider batch may hold at most {}",
                self.cfg.max_bytes
            );
            return self.run.handle(now, Input::ImageFailed { ticket, message });
        }
        let (max_lines, max_bytes) = (self.cfg.max_lines, self.cfg.max_bytes);
        let dialect = self.dialect.clone();
        let fits = move |shard: &Shard| {
            shard.phase == Phase::Building
                && shard.lines < max_lines
                && dialect.body_bytes(shard.lines + 1, shard.bytes + bytes) <= max_bytes
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
        if shard.lines >= self.cfg.max_lines
            || self.dialect.body_bytes(shard.lines, shard.bytes) >= self.cfg.max_bytes
        {
            shard.full = true;
        }
        shard.members.push((item, attempt));
        shard
            .waiting
            .insert(self.dialect.custom_id(item, attempt), ticket);
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
                    Some((_, CallKind::Create | CallKind::List | CallKind::Probe))
                )
            });
            let before_batch = matches!(
                shard.phase,
                Phase::Building | Phase::Sealed | Phase::Uploaded
            );
            // Cancelling: a batch an earlier call may have created is looked
            // for first, to be cancelled too.
            let finding = self.finds_while_stopping(shard);
            if !before_batch || creating || finding || shard.pending_builds > 0 {
                continue;
            }
            let shard = &mut self.shards[s];
            if shard.file {
                shard.file = false;
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
        self.dialect.base()
    }

    /// A shard that may have a batch at the provider already (an earlier create
    /// call's), looked for while the run cancels its batches.
    fn finds_while_stopping(&self, shard: &Shard) -> bool {
        self.mode == Mode::Cancelling
            && shard.phase == Phase::Uploaded
            && (shard.need_find || shard.probe.is_some())
    }

    /// A shard of an inline dialect between the intent of its create and its
    /// batch id: while there is one, no other shard is created.
    fn unresolved(&self) -> bool {
        self.dialect.inline() && self.shards.iter().any(|s| s.phase == Phase::Uploaded)
    }

    /// Whether the shard has a call to make (when due).
    fn wants_call(&self, shard: &Shard) -> bool {
        let stopping = self.mode != Mode::Running || self.run.is_stopping();
        match shard.phase {
            // A file of the run's at the provider may be deleted as nobody's
            // while the files are looked through: no upload meanwhile.
            Phase::Sealed => {
                !stopping
                    && !self.unresolved()
                    && !self.chore_pending(|c| matches!(c, Chore::FindRunFiles { .. }))
            }
            Phase::Uploaded if shard.find_file => false,
            // A rebuilt shard's batch is looked for, never created.
            Phase::Uploaded
                if shard.learn.is_some() && !shard.need_find && shard.probe.is_none() =>
            {
                false
            }
            Phase::Uploaded => !stopping || self.finds_while_stopping(shard),
            // Its rows are learned from its results, all shards' at once.
            Phase::Downloading if shard.learn_read => false,
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
        let inline = self.dialect.inline();
        let shard = &self.shards[s];
        let (kind, request) = match shard.phase {
            Phase::Sealed if inline => {
                // The intent goes to the journal before the create call: a
                // resume looks for the batch the call may have made.
                let shard = &mut self.shards[s];
                shard.phase = Phase::Uploaded;
                shard.intent_at = Some(now);
                self.urgent
                    .push_back(BatchOutput::Record(BatchRecord::Submitting {
                        shard: shard.number,
                        lines: shard.lines,
                        bytes: shard.bytes,
                        members: journal::encode_members(&shard.members),
                        at: now,
                    }));
                self.submit(s);
                return;
            }
            Phase::Sealed => {
                let (number, lines, bytes) = (shard.number, shard.lines, shard.bytes);
                let file_name = upload_name(&self.run_id, number);
                if shard.failures == 0 {
                    // The intent first: a resume finds a file the upload left
                    // at the provider by its name.
                    self.urgent
                        .push_back(BatchOutput::Record(BatchRecord::Uploading {
                            shard: number,
                            file_name: file_name.clone(),
                            lines,
                            bytes,
                            members: journal::encode_members(&shard.members),
                            at: now,
                        }));
                }
                let call = self.new_call(s, CallKind::Upload);
                self.outputs.push_back(BatchOutput::Upload(UploadOrder {
                    call,
                    shard: number,
                    url: format!("{base}/files"),
                    file_name,
                    lines,
                    bytes,
                }));
                self.changed = true;
                return;
            }
            Phase::Uploaded if shard.probe.is_some() => {
                let id = shard
                    .probe
                    .as_ref()
                    .map(|b| b.id.clone())
                    .unwrap_or_default();
                (CallKind::Probe, self.dialect.download_request(&id))
            }
            Phase::Uploaded if shard.need_find => (
                CallKind::List,
                self.dialect.list_request(shard.find_after.as_deref()),
            ),
            Phase::Uploaded if inline && !shard.file => {
                // Restored: its lines are built again, in a new shard.
                self.resubmit(now, s);
                return;
            }
            Phase::Uploaded if inline => {
                self.submit(s);
                return;
            }
            Phase::Uploaded => {
                let file = shard.file_id.as_deref().unwrap_or_default();
                (
                    CallKind::Create,
                    openai::create_request(&base, file, &self.run_id, shard.number),
                )
            }
            Phase::Running => {
                let id = shard.batch_id.as_deref().unwrap_or_default();
                match (&shard.file_id, shard.learn.is_some() && !shard.learn_read) {
                    _ if shard.cancel => (CallKind::Cancel, self.dialect.cancel_request(id)),
                    // Its rows, from its input file, before anything else.
                    (Some(file), true) if !inline => {
                        (CallKind::Learn, self.dialect.download_request(file))
                    }
                    _ => (CallKind::Poll, self.dialect.poll_request(id)),
                }
            }
            Phase::Downloading if shard.learn.is_some() => {
                let from = match &shard.file_id {
                    Some(file) if !inline => file.clone(),
                    _ => shard.batch_id.clone().unwrap_or_default(),
                };
                (CallKind::Learn, self.dialect.download_request(&from))
            }
            Phase::Downloading => match shard.downloads.front() {
                Some(what) => (CallKind::Download, self.dialect.download_request(what)),
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
            lines: kind.lines(),
        });
    }

    /// The create call of an inline dialect: the shard's file is its body.
    fn submit(&mut self, s: usize) {
        let base = self.base().to_string();
        let call = self.new_call(s, CallKind::Create);
        let shard = &self.shards[s];
        self.outputs.push_back(BatchOutput::Submit(SubmitOrder {
            call,
            shard: shard.number,
            url: anthropic::batches_url(&base),
            headers: anthropic::create_headers(),
            prefix: anthropic::BODY_PREFIX,
            separator: anthropic::BODY_SEPARATOR,
            suffix: anthropic::BODY_SUFFIX,
            lines: shard.lines,
            bytes: shard.bytes,
        }));
        // The progress file says "creating" before the call can be made: a
        // resume that lost the provider journal looks for its batch.
        self.refresh();
        self.urgent.push_back(BatchOutput::StatusChanged);
    }

    /// A shard restored from the journal whose create made no batch: it is
    /// over (journaled done), and its requests are built again into a new
    /// shard, same rows and attempts (none was sent), unless the run is
    /// stopping (then they wait for a resume).
    fn resubmit(&mut self, now: Millis, s: usize) {
        if self.shards[s].learn.is_some() {
            // Rebuilt, its rows unknown: it made nothing, they go as any others.
            self.drop_unknown(now, s);
            return;
        }
        let stopping = self.mode != Mode::Running || self.run.is_stopping();
        let shard = &mut self.shards[s];
        let number = shard.number;
        let members = shard.members.clone();
        let mut waiting = std::mem::take(&mut shard.waiting);
        shard.phase = Phase::Done;
        shard.need_find = false;
        shard.ended_status = Some("not created".to_string());
        self.outputs
            .push_back(BatchOutput::Record(BatchRecord::Done {
                shard: number,
                at: now,
            }));
        self.changed = true;
        for (row, attempt) in members {
            let Some(ticket) = waiting.remove(&self.dialect.custom_id(row, attempt)) else {
                continue;
            };
            if stopping {
                self.run.give_back(now, ticket);
            } else {
                self.order_line(now, ticket, row, attempt);
            }
        }
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
                shard.file = false;
                self.urgent.push_back(BatchOutput::DiscardFile {
                    shard: shard.number,
                });
            }),
            CallKind::List if self.dialect.inline() => self
                .dialect
                .parse_list(body)
                .map(|(batches, after)| self.on_listed_inline(now, s, batches, after)),
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
                            None if shard.learn.is_some() => self.drop_unknown(now, s),
                            None => shard.need_find = false,
                        }
                    }
                }
            }),
            CallKind::Create => self
                .dialect
                .parse_batch(body)
                .map(|batch| self.on_created(now, s, batch)),
            CallKind::Poll | CallKind::Cancel => self.dialect.parse_batch(body).map(|batch| {
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
            CallKind::Probe => {
                self.on_probed(now, s);
                Ok(())
            }
            CallKind::Learn => {
                let shard = &mut self.shards[s];
                shard.learn_read = true;
                shard.due = now;
                self.resolve_learned(now);
                Ok(())
            }
        };
        if let Err(e) = parsed {
            // A 2xx answer the run cannot read: the call is tried again (a create
            // after looking for the batch it may have made).
            self.shards[s].error = Some(format!("{} answer unreadable: {e}", kind.step()));
            if kind == CallKind::Create {
                self.shards[s].need_find = true;
            }
            self.retry_call(now, s, kind, e.to_string());
        }
    }

    /// A page of the batch list, for a shard of an inline dialect whose create
    /// may have made a batch: see the module docs.
    fn on_listed_inline(
        &mut self,
        now: Millis,
        s: usize,
        batches: Vec<BatchObject>,
        after: Option<String>,
    ) {
        let settle = self.cfg.poll_max_ms.min(MAX_SETTLE_MS);
        let shard = &mut self.shards[s];
        // No intent on record (cannot be: a shard is journaled with one): the
        // whole list is searched.
        let intent = shard.intent_at.unwrap_or(Millis(0));
        let older = batches
            .iter()
            .any(|b| anthropic::too_old(b, intent, CLOCK_SKEW_MS));
        for b in batches {
            let mine = !self.claimed.contains(&b.id) && !shard.ruled_out.contains(&b.id);
            if mine && anthropic::may_be(&b, shard.lines, intent, CLOCK_SKEW_MS) {
                shard.candidates.push(b);
            }
        }
        shard.find_pages += 1;
        shard.due = now;
        match after.filter(|_| !older && shard.find_pages < MAX_LIST_PAGES) {
            Some(after) => {
                shard.find_after = Some(after);
                return;
            }
            None => {
                shard.find_after = None;
                shard.find_pages = 0;
            }
        }
        let mut candidates = std::mem::take(&mut shard.candidates);
        match candidates.len() {
            0 if now.since(intent) < settle => {
                // A create still on its way may not show yet: list again later.
                shard.due = intent.plus(settle);
            }
            0 => {
                // The create made nothing: make it (again).
                shard.need_find = false;
                if !shard.file {
                    self.resubmit(now, s);
                }
            }
            1 => {
                let found = candidates.remove(0);
                self.on_created(now, s, found);
            }
            _ => {
                // Several: the first that has ended is read; if none has, the
                // list is read again later.
                let ended = candidates.iter().position(|b| {
                    matches!(
                        b.status,
                        ProviderStatus::Completed | ProviderStatus::Cancelled
                    )
                });
                match ended {
                    Some(i) => {
                        shard.probe = Some(candidates.swap_remove(i));
                        shard.probe_hit = false;
                    }
                    None => {
                        shard.polls += 1;
                        let wait = self.next_poll(s);
                        self.shards[s].due = now.plus(wait);
                    }
                }
                self.changed = true;
            }
        }
    }

    /// A candidate's results are all read: the shard's batch if a line was one
    /// of its requests, else ruled out.
    fn on_probed(&mut self, now: Millis, s: usize) {
        let shard = &mut self.shards[s];
        shard.due = now;
        let Some(probe) = shard.probe.take() else {
            return;
        };
        if shard.probe_hit {
            self.on_created(now, s, probe);
            // Its results were just read: what they did not answer did not run.
            self.shards[s].downloads.clear();
        } else {
            shard.ruled_out.insert(probe.id);
        }
    }

    /// A batch exists for the shard (created now, or found from its file).
    fn on_created(&mut self, now: Millis, s: usize, batch: BatchObject) {
        self.claimed.insert(batch.id.clone());
        let shard = &mut self.shards[s];
        shard.batch_id = Some(batch.id.clone());
        shard.phase = Phase::Running;
        shard.need_find = false;
        shard.candidates.clear();
        shard.polls = 0;
        shard.ended_status = None;
        shard.cancel = self.mode == Mode::Cancelling;
        self.urgent
            .push_back(BatchOutput::Record(BatchRecord::Created {
                shard: shard.number,
                batch_id: batch.id.clone(),
                at: now,
            }));
        if shard.file && self.dialect.inline() {
            // The requests are at the provider: the local copy can go.
            shard.file = false;
            self.urgent.push_back(BatchOutput::DiscardFile {
                shard: shard.number,
            });
        }
        self.on_batch(now, s, batch);
    }

    /// What a read of the shard's batch says.
    fn on_batch(&mut self, now: Millis, s: usize, batch: BatchObject) {
        if self.mismatched(now, s, &batch) {
            return;
        }
        let next_poll = self.next_poll(s);
        let shard = &mut self.shards[s];
        if shard.file_id.is_none() && !self.dialect.inline() {
            shard.file_id.clone_from(&batch.input_file_id);
        }
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
                shard.result_files = batch
                    .output_file_id
                    .iter()
                    .chain(&batch.error_file_id)
                    .cloned()
                    .collect();
                shard.ended_status = Some(batch.status_text.clone());
                shard.downloads = if self.dialect.inline() {
                    VecDeque::from([batch.id.clone()])
                } else {
                    batch
                        .output_file_id
                        .iter()
                        .chain(&batch.error_file_id)
                        .cloned()
                        .collect()
                };
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
                self.clear_files(s);
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
        let (id, outcome) = match self.dialect.parse_line(line) {
            Ok(parsed) => parsed,
            Err(e) => {
                shard.bad_lines += 1;
                shard.error = Some(format!("a result line is unreadable: {e}"));
                return;
            }
        };
        let Some(ticket) = shard.waiting.remove(&id) else {
            // A line of a request answered already (a download read again), or
            // not of this shard: of this run but of rows it does not hold, its
            // batch is another shard's (a mixed-up journal).
            let stranger = self
                .dialect
                .row_attempt(&id)
                .is_some_and(|pair| !shard.members.contains(&pair));
            if stranger && !shard.learned && shard.probe.is_none() {
                shard.strangers += 1;
            }
            return;
        };
        if shard.probe.is_some() {
            shard.probe_hit = true;
        }
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
        if self.shards[s].strangers > 0 {
            let shard = &self.shards[s];
            let detail = format!(
                "line {} gives batch {} to shard {} (its rows at line {}), but {} of the batch's results are of other rows of this run",
                shard.batch_line,
                shard.batch_id.as_deref().unwrap_or("?"),
                shard.number,
                shard.members_line,
                shard.strangers
            );
            self.stop_mismatched(now, s, detail);
            return;
        }
        let shard = &mut self.shards[s];
        let why = match shard.ended_status.as_deref() {
            Some("expired") => "the provider batch expired before running it".to_string(),
            Some("cancelled" | "canceled") => {
                "the provider batch was cancelled before running it".into()
            }
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
        self.clear_files(s);
        self.changed = true;
    }

    /// Whether the provider's word on the shard's batch contradicts the
    /// journal (OpenAI: the batch was made from another file, or names
    /// another shard); if so the run stops.
    fn mismatched(&mut self, now: Millis, s: usize, batch: &BatchObject) -> bool {
        let shard = &self.shards[s];
        let other_file = match (&shard.file_id, &batch.input_file_id) {
            (Some(mine), Some(theirs)) if mine != theirs => Some(theirs.clone()),
            _ => None,
        };
        let other_shard = batch
            .shard
            .filter(|n| *n != shard.number && batch.run.as_deref() == Some(self.run_id.as_str()));
        if other_file.is_none() && other_shard.is_none() {
            return false;
        }
        let mut detail = format!(
            "line {} gives batch {} to shard {}, whose file is {} (line {}), but the provider says it was made from {}",
            shard.batch_line,
            batch.id,
            shard.number,
            shard.file_id.as_deref().unwrap_or("unknown"),
            shard.members_line,
            batch.input_file_id.as_deref().unwrap_or("another file"),
        );
        if let Some(n) = other_shard {
            detail.push_str(&format!(" for shard {n}"));
        }
        let owner = other_file.as_deref().and_then(|f| {
            self.shards
                .iter()
                .find(|o| o.file_id.as_deref() == Some(f))
                .map(|o| (o.number, o.members_line))
        });
        if let Some((n, line)) = owner {
            detail.push_str(&format!(", shard {n}'s file (line {line})"));
        }
        self.stop_mismatched(now, s, detail);
        true
    }

    /// The journal and the provider disagree about shard `s`: the run stops,
    /// its rows left for a resume, nothing sent again.
    fn stop_mismatched(&mut self, now: Millis, s: usize, detail: String) {
        let shard = &mut self.shards[s];
        shard.phase = Phase::Parked;
        shard.error = Some(detail.clone());
        let tickets: Vec<Ticket> = shard.waiting.drain().map(|(_, t)| t).collect();
        self.run.abort(now, AbortReason::JournalMismatch { detail });
        for ticket in tickets {
            self.run.give_back(now, ticket);
        }
        self.park_unsubmitted(now);
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
                if kind == CallKind::Create && (response.status >= 500 || response.status == 408) {
                    // The provider may have made the batch before failing.
                    self.shards[s].need_find = true;
                }
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
            CallKind::Upload | CallKind::Create | CallKind::List | CallKind::Probe => {}
            // The batch runs on at the provider; a resume reads it again.
            CallKind::Poll | CallKind::Cancel | CallKind::Download | CallKind::Learn => {
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
        if kind == CallKind::Create && error != TransportErrorKind::Connect {
            // The call may have reached the provider: look for its batch first.
            self.shards[s].need_find = true;
        }
        if error == TransportErrorKind::Connect {
            if let Some(reason) = self.breaker.on_connect_failure(&message) {
                self.stop_for(now, s, kind, reason);
                return;
            }
        }
        self.retry_call(now, s, kind, message);
    }

    /// A call to make again after a backoff; after `abort_after_failing_ms` of
    /// nothing but failed calls, the run stops.
    fn retry_call(&mut self, now: Millis, s: usize, kind: CallKind, last_error: String) {
        match kind {
            // It may have reached the provider: its file is looked for at the end.
            CallKind::Upload => self.upload_doubt = true,
            // Read again from the start.
            CallKind::Learn => {
                if let Some(learn) = &mut self.shards[s].learn {
                    learn.clear();
                }
            }
            _ => {}
        }
        let limit = self.abort_after_failing_ms;
        if let Some(reason) = self.breaker.on_failure(now, limit, &last_error) {
            self.stop_for(now, s, kind, reason);
            return;
        }
        self.shards[s].failures += 1;
        let wait = self.call_backoff(s);
        self.shards[s].due = now.plus(wait);
    }
}

/// Chores: provider calls that belong to no one shard, one at a time.
impl BatchRun {
    fn add_chore(&mut self, chore: Chore) {
        let queued = self.chores.contains(&chore)
            || self.chore_call.as_ref().is_some_and(|(_, c)| *c == chore);
        if !queued && !self.dialect.inline() {
            self.chores.push_back(chore);
        }
    }

    fn chore_pending(&self, what: impl Fn(&Chore) -> bool) -> bool {
        self.chores.iter().any(&what) || self.chore_call.as_ref().is_some_and(|(_, c)| what(c))
    }

    fn is_chore(&self, call: CallId) -> bool {
        self.chore_call.as_ref().is_some_and(|(c, _)| *c == call)
    }

    /// A done shard's files at the provider are deleted (unless kept): its
    /// input file, and its output and error files (read by now).
    fn clear_files(&mut self, s: usize) {
        let shard = &mut self.shards[s];
        if shard.files_cleared || self.dialect.inline() {
            return;
        }
        shard.files_cleared = true;
        if self.keep_files {
            return;
        }
        let files: Vec<String> = shard
            .file_id
            .iter()
            .chain(&shard.result_files)
            .cloned()
            .collect();
        // Deleted once the progress file says the shard is done: a resume
        // that lost the provider journal must not take it for one to read.
        self.deletes.extend(files);
        self.changed = true;
    }

    fn advance_chores(&mut self, now: Millis) {
        if self.chore_call.is_some() || self.chore_due > now || self.mode == Mode::Detached {
            return;
        }
        let Some(chore) = self.chores.pop_front() else {
            return;
        };
        let base = self.base().to_string();
        let request = match &chore {
            Chore::FindRunBatches { after, .. } => openai::list_request(&base, after.as_deref()),
            Chore::FindRunFiles { after, .. } => openai::files_request(&base, after.as_deref()),
            Chore::Delete(file) => openai::delete_file_request(&base, file),
        };
        let call = CallId(self.next_call);
        self.next_call += 1;
        self.chore_call = Some((call, chore));
        self.outputs.push_back(BatchOutput::Call {
            call,
            request,
            lines: false,
        });
    }

    fn on_chore_answer(&mut self, now: Millis, answer: Result<HttpResponse, String>) {
        let Some((_, chore)) = self.chore_call.take() else {
            return;
        };
        let body = match answer {
            Ok(r) if (200..300).contains(&r.status) => Ok(r.body),
            // Deleted already.
            Ok(r) if r.status == 404 && matches!(chore, Chore::Delete(_)) => Ok(String::new()),
            Ok(mut r) => {
                self.run.redact(&mut r.body);
                let retry = matches!(r.status, 408 | 409 | 429) || r.status >= 500;
                Err((retry, Some(r)))
            }
            Err(_) => Err((true, None)),
        };
        let body = match body {
            Ok(body) => {
                self.chore_failures = 0;
                body
            }
            Err((retry, response)) => {
                self.chore_failures += 1;
                let tries = if matches!(chore, Chore::Delete(_)) {
                    2
                } else {
                    CHORE_TRIES
                };
                if retry && self.chore_failures < tries {
                    let jitter = unit_hash(self.seed ^ 0xC0DE, 0, self.chore_failures);
                    let wait = backoff_ms(
                        self.cfg.poll_min_ms.min(1_000),
                        self.cfg.poll_max_ms,
                        self.chore_failures,
                        jitter,
                    );
                    self.chore_due = now.plus(wait);
                    self.chores.push_front(chore);
                    return;
                }
                self.chore_failures = 0;
                self.give_up_chore(now, chore, response);
                return;
            }
        };
        match chore {
            Chore::Delete(_) => {}
            Chore::FindRunBatches { pages, .. } => match openai::parse_list(&body) {
                Ok((batches, after)) => {
                    for b in batches {
                        self.adopt_found(now, b);
                    }
                    match after.filter(|_| pages + 1 < MAX_LIST_PAGES) {
                        Some(after) => self.chores.push_front(Chore::FindRunBatches {
                            after: Some(after),
                            pages: pages + 1,
                        }),
                        None => self.found_run_batches(now),
                    }
                }
                Err(_) => {
                    self.give_up_chore(now, Chore::FindRunBatches { after: None, pages }, None)
                }
            },
            Chore::FindRunFiles { pages, .. } => match openai::parse_files(&body) {
                Ok((files, after)) => {
                    for (id, name, bytes) in files {
                        self.on_run_file(now, id, &name, bytes);
                    }
                    match after.filter(|_| pages + 1 < MAX_LIST_PAGES) {
                        Some(after) => self.chores.push_front(Chore::FindRunFiles {
                            after: Some(after),
                            pages: pages + 1,
                        }),
                        None => self.found_run_files(now),
                    }
                }
                Err(_) => self.found_run_files(now),
            },
        }
    }

    /// A chore that cannot succeed. A batch search that cannot be made stops
    /// the run (creating without it could pay twice); a file search is given
    /// up (an upload it would have found is made again); a delete is left.
    fn give_up_chore(&mut self, now: Millis, chore: Chore, response: Option<HttpResponse>) {
        match chore {
            // The endpoint fails: the other deletes are left too (a resume
            // makes them again) rather than holding the end of the run.
            Chore::Delete(_) => self.chores.retain(|c| !matches!(c, Chore::Delete(_))),
            Chore::FindRunFiles { .. } => self.found_run_files(now),
            Chore::FindRunBatches { .. } => {
                let (status, detail) = response.map_or((0, None), |r| {
                    (
                        r.status,
                        crate::provider::parse_api_error(&r.body).map(|e| e.message),
                    )
                });
                self.chores.clear();
                self.run.abort(
                    now,
                    AbortReason::BatchRefused {
                        step: "list".to_string(),
                        status,
                        detail,
                    },
                );
                self.park_unsubmitted(now);
            }
        }
    }

    /// A batch the account listed: this run's (by its metadata) and not on
    /// record is adopted, its rows to be read from its input file.
    fn adopt_found(&mut self, now: Millis, b: BatchObject) {
        if b.run.as_deref() != Some(self.run_id.as_str()) {
            return;
        }
        let done = self
            .shards
            .iter()
            .position(|s| s.phase == Phase::Done && s.batch_id.as_deref() == Some(b.id.as_str()));
        if let Some(s) = done {
            // Done, and saved without its result files: they go too.
            if self.shards[s].result_files.is_empty() && !self.keep_files {
                let files: Vec<String> = b
                    .output_file_id
                    .iter()
                    .chain(&b.error_file_id)
                    .cloned()
                    .collect();
                self.shards[s].result_files.clone_from(&files);
                self.deletes.extend(files);
                self.changed = true;
            }
            return;
        }
        if self.claimed.contains(&b.id) {
            return;
        }
        let Some(number) = b.shard else { return };
        let s = match self.shards.iter().position(|s| s.number == number) {
            Some(s) => {
                let shard = &self.shards[s];
                let open = matches!(shard.phase, Phase::Uploaded) && shard.batch_id.is_none();
                if !open {
                    // Another batch of a shard on record (one made again
                    // after a full queue, say): its rows are another's now.
                    return;
                }
                s
            }
            None => {
                let mut shard = Shard::new(number, Phase::Uploaded, now);
                shard.learn = Some(Vec::new());
                shard.lines = b.counts.map_or(0, |c| c.total as usize);
                self.next_shard = self.next_shard.max(number.saturating_add(1));
                self.shards.push(shard);
                self.shards.len() - 1
            }
        };
        let shard = &mut self.shards[s];
        if shard.file_id.is_none() {
            shard.file_id.clone_from(&b.input_file_id);
        }
        shard.find_file = false;
        self.on_created(now, s, b);
    }

    /// Every page of the batch list is read: shards rebuilt from a saved file
    /// whose batch did not show made none; their files go.
    fn found_run_batches(&mut self, now: Millis) {
        for s in 0..self.shards.len() {
            let shard = &self.shards[s];
            if shard.learn.is_some() && shard.phase == Phase::Uploaded && shard.call.is_none() {
                self.drop_unknown(now, s);
            }
        }
        self.changed = true;
    }

    /// A rebuilt shard that no batch came from: nothing of it ran, its rows
    /// are sent as any others.
    fn drop_unknown(&mut self, now: Millis, s: usize) {
        let shard = &mut self.shards[s];
        shard.learn = None;
        shard.need_find = false;
        shard.phase = Phase::Done;
        shard.ended_status = Some("not created".to_string());
        self.outputs
            .push_back(BatchOutput::Record(BatchRecord::Done {
                shard: shard.number,
                at: now,
            }));
        self.clear_files(s);
        self.resolve_learned(now);
    }

    /// A file the account holds: an upload of this run's whose answer never
    /// came is used; one that no shard uses is deleted.
    fn on_run_file(&mut self, now: Millis, id: String, name: &str, bytes: u64) {
        let Some(number) = shard_of_upload_name(&self.run_id, name) else {
            return;
        };
        let used = self
            .shards
            .iter()
            .any(|s| s.file_id.as_deref() == Some(id.as_str()));
        if used {
            return;
        }
        let waiting = self.shards.iter().position(|s| {
            s.number == number && s.find_file && s.file_id.is_none() && s.bytes == bytes
        });
        match waiting {
            Some(s) => {
                let shard = &mut self.shards[s];
                shard.file_id = Some(id.clone());
                shard.find_file = false;
                shard.due = now;
                self.urgent
                    .push_back(BatchOutput::Record(BatchRecord::Uploaded {
                        shard: number,
                        file_id: id,
                        lines: shard.lines,
                        bytes: shard.bytes,
                        members: journal::encode_members(&shard.members),
                        at: now,
                    }));
            }
            None => self.add_chore(Chore::Delete(id)),
        }
    }

    /// Every file is listed: an upload not found made nothing; its rows are
    /// built again.
    fn found_run_files(&mut self, now: Millis) {
        for s in 0..self.shards.len() {
            if self.shards[s].find_file && self.shards[s].phase == Phase::Uploaded {
                self.shards[s].find_file = false;
                self.resubmit(now, s);
            }
        }
        self.changed = true;
    }

    /// A line of a rebuilt shard's input file or results: the request it names.
    fn on_learn_line(&mut self, s: usize, line: &str) {
        #[derive(Deserialize)]
        struct Named {
            custom_id: String,
        }
        let Ok(named) = serde_json::from_str::<Named>(line) else {
            return;
        };
        if let Some(pair) = self.dialect.row_attempt(&named.custom_id) {
            if pair.0 < self.run.items().len() {
                if let Some(learn) = &mut self.shards[s].learn {
                    learn.push(pair);
                }
            }
        }
    }

    /// When every rebuilt shard's rows are read: each row is taken back as in
    /// flight in the shard holding its latest attempt (an earlier attempt
    /// was answered, and superseded).
    fn resolve_learned(&mut self, now: Millis) {
        let unread = self
            .shards
            .iter()
            .any(|s| s.learn.is_some() && !s.learn_read);
        if unread || !self.shards.iter().any(|s| s.learn.is_some()) {
            return;
        }
        let mut latest: HashMap<usize, u32> = HashMap::new();
        for shard in &self.shards {
            let pairs = shard.learn.as_deref().unwrap_or(&shard.members);
            for &(row, attempt) in pairs {
                let seen = latest.entry(row).or_default();
                *seen = (*seen).max(attempt);
            }
        }
        for s in 0..self.shards.len() {
            let Some(mut learned) = self.shards[s].learn.take() else {
                continue;
            };
            learned.sort_unstable();
            learned.dedup();
            let mut members = Vec::new();
            for (row, attempt) in learned {
                if latest.get(&row) != Some(&attempt) {
                    continue;
                }
                members.push((row, attempt));
                if let Some(order) = self.run.adopt(now, row, attempt) {
                    let id = self.dialect.custom_id(row, attempt);
                    self.shards[s].waiting.insert(id, order.ticket);
                }
            }
            let shard = &mut self.shards[s];
            shard.learn_read = false;
            shard.learned = true;
            shard.members = members;
            shard.due = now;
            // The journal gets its rows back.
            let encoded = journal::encode_members(&shard.members);
            let record = match &shard.file_id {
                Some(file_id) if !self.dialect.inline() => BatchRecord::Uploaded {
                    shard: shard.number,
                    file_id: file_id.clone(),
                    lines: shard.lines,
                    bytes: shard.bytes,
                    members: encoded,
                    at: now,
                },
                _ => BatchRecord::Submitting {
                    shard: shard.number,
                    lines: shard.lines,
                    bytes: shard.bytes,
                    members: encoded,
                    at: shard.intent_at.filter(|t| t.0 > 0).unwrap_or(now),
                },
            };
            self.urgent.push_back(BatchOutput::Record(record));
        }
        self.changed = true;
    }
}

/// The name a shard's input file is uploaded under: `shadow-batch-{run}-{shard}.jsonl`.
fn upload_name(run_id: &str, shard: u32) -> String {
    format!("shadow-batch-{run_id}-{shard}.jsonl")
}

/// The shard an uploaded file of run `run_id` is, by its name.
fn shard_of_upload_name(run_id: &str, name: &str) -> Option<u32> {
    name.strip_prefix("shadow-batch-")?
        .strip_prefix(run_id)?
        .strip_prefix('-')?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()
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

/// A page of a batch list, as both providers write it: `data`, `has_more`, and
/// `last_id` (else the last batch's id) to continue after when there are more.
/// Entries `batch_of` cannot read are left out.
fn parse_list_page(
    body: &str,
    batch_of: fn(&serde_json::Value) -> Result<BatchObject, ParseError>,
) -> Result<(Vec<BatchObject>, Option<String>), ParseError> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(body).map_err(ParseError::not_json("the batch list"))?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or(ParseError::Missing {
            what: "the batch list",
            field: "data",
        })?;
    let batches = data.iter().filter_map(|b| batch_of(b).ok()).collect();
    let more = v.get("has_more").and_then(Value::as_bool) == Some(true);
    let last = v
        .get("last_id")
        .and_then(Value::as_str)
        .or_else(|| {
            data.last()
                .and_then(|b| b.get("id"))
                .and_then(Value::as_str)
        })
        .map(str::to_string);
    Ok((batches, last.filter(|_| more)))
}
