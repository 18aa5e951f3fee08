//! One face over the batch dialects (OpenAI's Batch API, spoken by Azure
//! OpenAI's global batch too; Anthropic's Message Batches): their requests,
//! what their answers say, and the errors of answers the run cannot read.

use crate::http::HttpRequest;
use crate::report::RequestCounts;
use crate::time::Millis;

use super::{anthropic, azure, custom_id, gemini, openai, CallId, SubmitOrder, UploadProtocol};

/// The status of a provider batch, across dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProviderStatus {
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
pub(super) enum ParseError {
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
    pub(super) fn not_json(what: &'static str) -> impl FnOnce(serde_json::Error) -> ParseError {
        move |e| ParseError::NotJson {
            what,
            detail: e.to_string(),
        }
    }

    pub(super) fn line_not_json(e: serde_json::Error) -> ParseError {
        ParseError::LineNotJson(e.to_string())
    }
}

/// The text of a field an answer must have; `what` names the answer in the
/// error ("the batch object").
pub(super) fn required_text(
    v: &serde_json::Value,
    what: &'static str,
    field: &'static str,
) -> Result<String, ParseError> {
    v.get(field)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or(ParseError::Missing { what, field })
}

/// A line of a batch's results read as JSON, with the `custom_id` every line
/// must have (both dialects).
pub(super) fn result_line(line: &str) -> Result<(serde_json::Value, String), ParseError> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(ParseError::line_not_json)?;
    let custom_id = v
        .get("custom_id")
        .and_then(serde_json::Value::as_str)
        .ok_or(ParseError::LineMissing("custom_id"))?
        .to_string();
    Ok((v, custom_id))
}

/// What a provider says about a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BatchObject {
    pub(super) id: String,
    /// The run it names in its metadata (OpenAI's `shadow_batch_run`).
    pub(super) run: Option<String>,
    /// The shard it names in its metadata (`shadow_batch_shard`).
    pub(super) shard: Option<u32>,
    pub(super) status: ProviderStatus,
    pub(super) status_text: String,
    pub(super) input_file_id: Option<String>,
    pub(super) output_file_id: Option<String>,
    pub(super) error_file_id: Option<String>,
    pub(super) counts: Option<RequestCounts>,
    /// (code, message)
    pub(super) errors: Vec<(String, String)>,
    /// Gemini: an inline batch's results, as results file lines (in the
    /// finished operation, not in a file).
    pub(super) inline_lines: Option<Vec<String>>,
    /// Gemini: its requests were inline (no input file).
    pub(super) inline_input: bool,
    /// When the provider created it.
    pub(super) created_at: Option<Millis>,
}

/// What one line of a result file says about its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum LineOutcome {
    /// The request ran: its HTTP status and body.
    Answered { status: u16, body: String },
    /// It did not run (expired, cancelled...): why.
    NotRun { why: String },
}

/// The batch API a run speaks: its requests, its status words and its lines.
#[derive(Clone, Debug)]
pub(super) enum Dialect {
    /// OpenAI's Batch API: an uploaded input file, then a batch from it. With
    /// `azure`, an Azure OpenAI resource's global batch: the same calls, with
    /// its `api-version` and its endpoint (see `azure`).
    OpenAi {
        base: String,
        azure: Option<azure::Resource>,
    },
    /// Anthropic's Message Batches: the requests inline in the create call.
    Anthropic {
        base: String,
        /// The run's tag in `custom_id`s.
        tag: String,
    },
    /// Gemini Batch Mode: a small shard's requests inline in the create
    /// call, a larger one's in a file uploaded by Google's resumable
    /// protocol; a batch is a long-running operation (see `gemini`).
    Gemini { api: gemini::Api },
}

impl Dialect {
    /// Every shard's requests go inline in the create call (no upload, no
    /// file id). Gemini's go inline shard by shard (`Shard::inline`).
    pub(super) fn inline(&self) -> bool {
        matches!(self, Dialect::Anthropic { .. })
    }

    pub(super) fn base(&self) -> &str {
        match self {
            Dialect::OpenAi { base, .. } | Dialect::Anthropic { base, .. } => base,
            Dialect::Gemini { api } => &api.base,
        }
    }

    /// A batch whose rows no journal names has them read from its input file
    /// (OpenAI's can be downloaded); else from its results.
    pub(super) fn learns_from_input(&self) -> bool {
        matches!(self, Dialect::OpenAi { .. })
    }

    /// The cancel call answers the batch (OpenAI, Anthropic); Gemini's answers
    /// an empty object, and the batch is read after it.
    pub(super) fn cancel_answers_batch(&self) -> bool {
        !matches!(self, Dialect::Gemini { .. })
    }

    /// How a shard's file is uploaded, given the name it goes by.
    pub(super) fn upload_protocol(&self, file_name: &str, bytes: u64) -> UploadProtocol {
        match self {
            Dialect::Gemini { .. } => UploadProtocol::Resumable {
                start_headers: gemini::upload_start_headers(bytes),
                start_body: gemini::upload_start_body(
                    file_name.strip_suffix(".jsonl").unwrap_or(file_name),
                ),
            },
            _ => UploadProtocol::Multipart,
        }
    }

    /// The id of an uploaded file, from the upload's answer.
    pub(super) fn parse_file_id(&self, body: &str) -> Result<String, ParseError> {
        match self {
            Dialect::Gemini { .. } => gemini::parse_file_name(body),
            _ => openai::parse_file_id(body),
        }
    }

    /// A page of the account's files: (id, name, bytes) and where to go on.
    pub(super) fn parse_files(
        &self,
        body: &str,
    ) -> Result<(Vec<openai::FileEntry>, Option<String>), ParseError> {
        match self {
            Dialect::Gemini { .. } => gemini::parse_files(body),
            _ => openai::parse_files(body),
        }
    }

    /// The endpoint a file dialect's batches and lines target:
    /// `/v1/chat/completions` (OpenAI), `/chat/completions` (Azure).
    pub(super) fn endpoint(&self) -> &'static str {
        match self {
            Dialect::OpenAi { azure: Some(_), .. } => azure::ENDPOINT,
            _ => openai::ENDPOINT,
        }
    }

    /// `request` as this dialect's provider takes it: with Azure's
    /// `api-version`, when the run names one.
    fn finish(&self, request: HttpRequest) -> HttpRequest {
        match self {
            Dialect::OpenAi {
                azure: Some(resource),
                ..
            } => azure::versioned(request, resource.api_version.as_deref()),
            _ => request,
        }
    }

    /// Where a shard's file is uploaded (`POST`).
    pub(super) fn upload_url(&self) -> String {
        if let Dialect::Gemini { api } = self {
            return format!("{}/files", api.upload);
        }
        self.finish(openai::get(format!("{}/files", self.base())))
            .url
    }

    /// The create call of a file dialect's batch, from an uploaded file.
    pub(super) fn create_request(&self, file_id: &str, run_id: &str, shard: u32) -> HttpRequest {
        if let Dialect::Gemini { api } = self {
            return gemini::create_request(api, &gemini::display_name(run_id, shard), file_id);
        }
        self.finish(openai::create_request(
            self.base(),
            self.endpoint(),
            file_id,
            run_id,
            shard,
        ))
    }

    /// A page of the account's batch files (file dialects).
    pub(super) fn files_request(&self, after: Option<&str>) -> HttpRequest {
        if let Dialect::Gemini { api } = self {
            return gemini::files_request(api, after);
        }
        self.finish(openai::files_request(self.base(), after))
    }

    /// Deletes a file at the provider (file dialects).
    pub(super) fn delete_file_request(&self, file_id: &str) -> HttpRequest {
        if let Dialect::Gemini { api } = self {
            return gemini::delete_file_request(api, file_id);
        }
        self.finish(openai::delete_file_request(self.base(), file_id))
    }

    /// The row and attempt a `custom_id` of this run names; `None` for another's.
    pub(super) fn row_attempt(&self, custom_id: &str) -> Option<(usize, u32)> {
        let tail = match self {
            Dialect::OpenAi { .. } | Dialect::Gemini { .. } => custom_id.strip_prefix('r')?,
            Dialect::Anthropic { tag, .. } => {
                custom_id.strip_prefix(tag.as_str())?.strip_prefix("-r")?
            }
        };
        let (row, attempt) = tail.split_once("-a")?;
        Some((row.parse().ok()?, attempt.parse().ok().filter(|a| *a >= 1)?))
    }

    pub(super) fn custom_id(&self, row: usize, attempt: u32) -> String {
        match self {
            Dialect::OpenAi { .. } | Dialect::Gemini { .. } => custom_id(row, attempt),
            Dialect::Anthropic { tag, .. } => anthropic::custom_id(tag, row, attempt),
        }
    }

    /// The size of what is sent for `lines` lines of `bytes` bytes in all: the
    /// file, or the create call's body.
    pub(super) fn body_bytes(&self, lines: usize, bytes: u64) -> u64 {
        match self {
            Dialect::OpenAi { .. } | Dialect::Gemini { .. } => bytes,
            Dialect::Anthropic { .. } => SubmitOrder {
                call: CallId(0),
                shard: 0,
                url: String::new(),
                headers: Vec::new(),
                prefix: anthropic::BODY_PREFIX.to_string(),
                separator: anthropic::BODY_SEPARATOR,
                suffix: anthropic::BODY_SUFFIX,
                lines,
                bytes,
                rekeyed: false,
            }
            .body_len(),
        }
    }

    pub(super) fn parse_batch(&self, body: &str) -> Result<BatchObject, ParseError> {
        match self {
            Dialect::OpenAi { .. } => openai::parse_batch(body),
            Dialect::Gemini { .. } => gemini::parse_batch(body),
            Dialect::Anthropic { .. } => anthropic::parse_batch(body),
        }
    }

    pub(super) fn parse_list(
        &self,
        body: &str,
    ) -> Result<(Vec<BatchObject>, Option<String>), ParseError> {
        match self {
            Dialect::OpenAi { .. } => openai::parse_list(body),
            Dialect::Gemini { .. } => gemini::parse_list(body),
            Dialect::Anthropic { .. } => anthropic::parse_list(body),
        }
    }

    pub(super) fn parse_line(&self, line: &str) -> Result<(String, LineOutcome), ParseError> {
        match self {
            Dialect::OpenAi { .. } => openai::parse_line(line),
            Dialect::Gemini { .. } => gemini::parse_line(line),
            Dialect::Anthropic { .. } => anthropic::parse_line(line),
        }
    }

    pub(super) fn poll_request(&self, batch_id: &str) -> HttpRequest {
        match self {
            Dialect::OpenAi { base, .. } => self.finish(openai::poll_request(base, batch_id)),
            Dialect::Gemini { api } => gemini::poll_request(api, batch_id),
            Dialect::Anthropic { base, .. } => anthropic::poll_request(base, batch_id),
        }
    }

    pub(super) fn cancel_request(&self, batch_id: &str) -> HttpRequest {
        match self {
            Dialect::OpenAi { base, .. } => self.finish(openai::cancel_request(base, batch_id)),
            Dialect::Gemini { api } => gemini::cancel_request(api, batch_id),
            Dialect::Anthropic { base, .. } => anthropic::cancel_request(base, batch_id),
        }
    }

    pub(super) fn list_request(&self, after: Option<&str>) -> HttpRequest {
        match self {
            Dialect::OpenAi { base, .. } => self.finish(openai::list_request(base, after)),
            Dialect::Gemini { api } => gemini::list_request(api, after),
            Dialect::Anthropic { base, .. } => anthropic::list_request(base, after),
        }
    }

    /// A download: an output or error file (OpenAI), a batch's results
    /// (Anthropic: `what` is the batch id).
    pub(super) fn download_request(&self, what: &str) -> HttpRequest {
        match self {
            Dialect::OpenAi { base, .. } => self.finish(openai::download_request(base, what)),
            Dialect::Gemini { api } => gemini::download_request(api, what),
            Dialect::Anthropic { base, .. } => anthropic::results_request(base, what),
        }
    }
}

/// A page of a batch list, as both providers write it: `data`, `has_more`, and
/// `last_id` (else the last batch's id) to continue after when there are more.
/// Entries `batch_of` cannot read are left out.
pub(super) fn parse_list_page(
    body: &str,
    batch_of: fn(&serde_json::Value) -> Result<BatchObject, ParseError>,
) -> Result<(Vec<BatchObject>, Option<String>), ParseError> {
    use serde_json::Value;
    let page = ListPage::read(body, "the batch list")?;
    let batches = page.data.iter().filter_map(|b| batch_of(b).ok()).collect();
    let last = page.last_id.or_else(|| {
        page.data
            .last()
            .and_then(|b| b.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    Ok((batches, last.filter(|_| page.more)))
}

/// One page of a listing (`GET /batches`, `GET /files`): its entries, whether
/// more follow, and the id it says to continue after.
pub(super) struct ListPage {
    pub(super) data: Vec<serde_json::Value>,
    pub(super) more: bool,
    pub(super) last_id: Option<String>,
}

impl ListPage {
    /// Reads a page; `what` names it in the error ("the batch list").
    pub(super) fn read(body: &str, what: &'static str) -> Result<ListPage, ParseError> {
        use serde_json::Value;
        let mut v: Value = serde_json::from_str(body).map_err(ParseError::not_json(what))?;
        let Some(Value::Array(data)) = v.get_mut("data").map(Value::take) else {
            return Err(ParseError::Missing {
                what,
                field: "data",
            });
        };
        Ok(ListPage {
            data,
            more: v.get("has_more").and_then(Value::as_bool) == Some(true),
            last_id: v.get("last_id").and_then(Value::as_str).map(str::to_string),
        })
    }
}
