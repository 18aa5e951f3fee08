//! What a batch run and its host say to each other: the orders it gives
//! ([`BatchOutput`]), the events it takes ([`BatchInput`]), and the line builder
//! hosts build shard lines with.

use crate::engine::{ItemDone, Ticket};
use crate::http::{HttpRequest, HttpResponse, TransportErrorKind};
use crate::provider::RequestTemplate;
use crate::report::{BatchReport, Summary};
use serde::{Deserialize, Serialize};

use super::{anthropic, gemini, openai, BatchRecord};

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
    /// Index into [`BatchRun::run`](super::BatchRun::run)'s items.
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
    /// `POST` it here (`{base}/files`), as [`UploadOrder::protocol`] says.
    pub url: String,
    /// The file name to give it: `shadow-batch-{run}-{shard}.jsonl`.
    pub file_name: String,
    /// Lines in the file.
    pub lines: usize,
    /// Bytes in the file.
    pub bytes: u64,
    /// How to send it.
    pub protocol: UploadProtocol,
}

/// How a shard's file is uploaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
#[non_exhaustive]
pub enum UploadProtocol {
    /// One `POST` of `multipart/form-data`: `purpose=batch`, and the file as
    /// `file` named [`UploadOrder::file_name`] (OpenAI, Azure).
    Multipart,
    /// Google's resumable upload (Gemini): `POST` the order's URL with these
    /// headers and body; its answer's `x-goog-upload-url` header says where to
    /// `POST` the file's bytes, with `x-goog-upload-command: upload, finalize`
    /// and `x-goog-upload-offset: 0`. Send the key there only when that URL
    /// is on the order's URL's host (scheme, host and port); the answer to the
    /// second call (or a refused first) is the upload's answer.
    Resumable {
        /// Headers of the first call (without the key).
        start_headers: Vec<(String, String)>,
        /// Body of the first call.
        start_body: String,
    },
}

/// "Create a batch of shard `shard`'s requests": a batch API that takes the
/// requests inline (Anthropic's; Gemini's for a small shard). `POST` to `url`
/// with `headers` (and the key) a body made of `prefix`, the shard file's
/// lines joined by `separator` (rewritten when `rekeyed`), and `suffix`:
/// [`SubmitOrder::body_len`] bytes.
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
    pub prefix: String,
    /// Between two lines.
    pub separator: &'static str,
    /// After the last line.
    pub suffix: &'static str,
    /// Lines in the file.
    pub lines: usize,
    /// Bytes in the file.
    pub bytes: u64,
    /// Each line, `{"key":K,"request":R}` in the file, goes as
    /// `{"request":R,"metadata":{"key":K}}` without its `\n` (Gemini's inline
    /// requests): build the body with [`SubmitOrder::body`]. Otherwise the
    /// lines go as they are.
    pub rekeyed: bool,
}

impl SubmitOrder {
    /// The length of the body in bytes.
    pub fn body_len(&self) -> u64 {
        let growth = if self.rekeyed {
            gemini::INLINE_LINE_GROWTH * self.lines as u64
        } else {
            0
        };
        (self.prefix.len() + self.suffix.len()) as u64
            + self.bytes
            + growth
            + (self.lines.saturating_sub(1) * self.separator.len()) as u64
    }

    /// The body, from the shard file's text (its lines, each ending in
    /// `\n`); an error names the first line that is not as the order says, or
    /// a file of another size than the order's.
    pub fn body(&self, file: &str) -> Result<String, String> {
        if file.len() as u64 != self.bytes {
            return Err(format!(
                "the shard file holds {} bytes, not {}",
                file.len(),
                self.bytes
            ));
        }
        let mut body = String::with_capacity(usize::try_from(self.body_len()).unwrap_or(0));
        body.push_str(&self.prefix);
        for (i, line) in file.split_inclusive('\n').enumerate() {
            if i > 0 {
                body.push_str(self.separator);
            }
            if self.rekeyed {
                let request = gemini::inline_request(line).ok_or_else(|| {
                    format!("line {} of the shard file is not a keyed request", i + 1)
                })?;
                body.push_str(&request);
            } else {
                body.push_str(line);
            }
        }
        body.push_str(self.suffix);
        if body.len() as u64 != self.body_len() {
            return Err(format!(
                "the shard file's {} lines make a body of {} bytes, not {}",
                self.lines,
                body.len(),
                self.body_len()
            ));
        }
        Ok(body)
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
    /// A provider batch's status changed ([`BatchRun::provider_batches`](super::BatchRun::provider_batches)).
    StatusChanged,
    /// As [`Output::ItemDone`](crate::Output::ItemDone).
    ItemDone(ItemDone),
    /// As [`Output::BatchReport`](crate::Output::BatchReport).
    BatchReport {
        /// The report.
        report: BatchReport,
    },
    /// As [`Output::Finished`](crate::Output::Finished); the summary lists the provider batches.
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

/// The custom id of a row's attempt in OpenAI's dialect: `r{row}-a{attempt}`
/// (Anthropic's carries the run's id too: `{run}-r{row}-a{attempt}`).
pub fn custom_id(row: usize, attempt: u32) -> String {
    format!("r{row}-a{attempt}")
}

/// Builds the lines of a run's shards: the live request body of a row, wrapped
/// as the batch API wants it. Cheap to clone; hosts build lines on other tasks.
#[derive(Clone, Debug)]
pub struct LineBuilder {
    pub(super) template: RequestTemplate,
    pub(super) inline: bool,
    /// The endpoint a file dialect's lines target.
    pub(super) endpoint: &'static str,
    /// Lines are `{"key", "request"}` (Gemini).
    pub(super) keyed: bool,
}

impl LineBuilder {
    /// The line (ending in `\n`) for `order`, with the image as `image_url` (an
    /// `http(s)` or `data:` URL) and the row's id: an input file's line
    /// (OpenAI, Azure, Gemini), or one request of a create body (Anthropic).
    pub fn line(&self, order: &LineOrder, image_url: &str, item_id: Option<&str>) -> String {
        let request = self.template.build(image_url, order.attempt, item_id);
        if self.inline {
            anthropic::request_entry(&order.custom_id, &request.body)
        } else if self.keyed {
            gemini::input_line(&order.custom_id, &request.body)
        } else {
            openai::input_line(&order.custom_id, self.endpoint, &request.body)
        }
    }
}
