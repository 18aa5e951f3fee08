//! The OpenAI Batch API, as the mock serves it: `POST /v1/files` (multipart,
//! `purpose=batch`), `GET /v1/files` (newest first, `purpose`, `limit`,
//! `after`), `GET /v1/files/{id}` and `/content`, `DELETE /v1/files/{id}`,
//! `POST /v1/batches`,
//! `GET /v1/batches` (newest first, `limit`, `after`), `GET /v1/batches/{id}`,
//! `POST /v1/batches/{id}/cancel`.
//!
//! A batch's status follows the clock: `validating` for the first tenth of
//! [`batch_ms`](MockConfig::batch_ms), `in_progress` (its `request_counts`
//! growing), `finalizing` for the last tenth, then `completed`. Each line is
//! answered by the same pure function as a live request ([`decide`]), with the
//! attempt read from a `custom_id` ending in `-a{attempt}` (shadow-batch's
//! `r{row}-a{attempt}`; `x-stainless-retry-count` = attempt − 1 in a live run,
//! so both modes roll the same dice), so a batch run and a live run of the same
//! CSV get the same answers: an injected server error becomes a line with
//! `status_code: 500` in the error file. Result files list lines out of input
//! order. [`batch_expire`](MockConfig::batch_expire) and
//! [`batch_fail`](MockConfig::batch_fail) make the first batches expire (every
//! other line run, the rest `batch_expired` in the error file) or fail
//! validation; a cancelled batch runs the share of lines its time allowed.
//!
//! Azure OpenAI's global batch is the same API under `/openai/v1` (and the
//! older `/openai/files`, `/openai/batches` with `?api-version=`), with the
//! key in `api-key` ([`AzureBatches`]): its batches and lines target
//! `/chat/completions`, every line must name the same model (the
//! deployment), else the batch fails validation with `model_mismatch`; its
//! lines are answered as the live Azure routes answer (the content filter's
//! 400s included); its first status is written `Validating`, as Microsoft's
//! samples show it; and a batch with no failed line still has an (empty)
//! error file, as Azure's may.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::answers::{decide, Decision};
use crate::batch_api::{json_response, key_refusal, BatchApi, BatchCall, StoredBatch};
use crate::dialect::{Dialect, Parsed};
use crate::openai::error_body;
use crate::server::{Inner, MockState};
use crate::stats::Counters;

/// Files and batches the mock holds.
#[derive(Default)]
pub(crate) struct BatchStore {
    files: HashMap<String, StoredFile>,
    batches: Vec<MockBatch>,
    next_file: u64,
}

struct StoredFile {
    name: String,
    purpose: String,
    content: Arc<Vec<u8>>,
    created_at: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Complete,
    Expire,
    Fail,
    /// Azure: its lines name more than one model.
    ModelMismatch,
}

pub(crate) struct MockBatch {
    id: String,
    /// Whose batch it is: OpenAI's or Azure's.
    dialect: Dialect,
    input_file_id: String,
    metadata: Value,
    created: Instant,
    created_at: u64,
    fate: Fate,
    cancelled: Option<Instant>,
    lines: usize,
    /// (output file, error file), once written.
    results: Option<(Option<String>, Option<String>)>,
}

impl StoredBatch for MockBatch {
    fn id(&self) -> &str {
        &self.id
    }

    fn cancel(&mut self) {
        if self.results.is_none() {
            self.cancelled.get_or_insert_with(Instant::now);
        }
    }
}

/// Unix seconds of the mock's fake clock: a fixed start plus real elapsed time.
fn unix_now(start: Instant) -> u64 {
    1_700_000_000 + start.elapsed().as_secs()
}

fn not_found(what: &str, id: &str) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &error_body(
            &format!("No such {what}: '{id}'"),
            "invalid_request_error",
            None,
        ),
    )
}

fn bad_request(message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &error_body(message, "invalid_request_error", None),
    )
}

/// A batch API of uploaded files in OpenAI's shape (OpenAI's, Azure's): the
/// dialect whose key, lines and answers it takes.
pub(crate) trait FilesApi: BatchApi<Store = BatchStore, Batch = MockBatch> {
    const DIALECT: Dialect;
    /// The endpoint its batches run.
    const ENDPOINT: &'static str;
}

impl FilesApi for OpenAiBatches {
    const DIALECT: Dialect = Dialect::OpenAi;
    const ENDPOINT: &'static str = "/v1/chat/completions";
}

impl FilesApi for AzureBatches {
    const DIALECT: Dialect = Dialect::Azure;
    const ENDPOINT: &'static str = "/chat/completions";
}

/// Azure OpenAI's global batch: OpenAI's API under `/openai/v1`, the key in
/// `api-key`. Its files and batches share OpenAI's store (one mock, one
/// account).
pub(crate) struct AzureBatches;

impl BatchApi for AzureBatches {
    type Store = BatchStore;
    type Batch = MockBatch;

    fn store(state: &MockState) -> &Mutex<BatchStore> {
        &state.inner.batch
    }

    fn refusal(state: &MockState, headers: &HeaderMap) -> Option<Response> {
        key_refusal(state, headers, Dialect::Azure, || {
            Dialect::Azure.unauthorized()
        })
    }

    fn not_found(id: &str) -> Response {
        not_found("batch", id)
    }

    fn batches(store: &mut BatchStore) -> &mut [MockBatch] {
        &mut store.batches
    }

    fn object(call: &BatchCall<Self>, store: &mut BatchStore, id: &str) -> Value {
        batch_object(&call.state, store, id)
    }
}

/// OpenAI's Batch API: files and batches under `/v1/files` and `/v1/batches`.
pub(crate) struct OpenAiBatches;

impl BatchApi for OpenAiBatches {
    type Store = BatchStore;
    type Batch = MockBatch;

    fn store(state: &MockState) -> &Mutex<BatchStore> {
        &state.inner.batch
    }

    fn refusal(state: &MockState, headers: &HeaderMap) -> Option<Response> {
        key_refusal(state, headers, Dialect::OpenAi, || {
            (
                StatusCode::UNAUTHORIZED,
                error_body(
                    "Incorrect API key provided.",
                    "invalid_request_error",
                    Some("invalid_api_key"),
                ),
            )
        })
    }

    fn not_found(id: &str) -> Response {
        not_found("batch", id)
    }

    fn batches(store: &mut BatchStore) -> &mut [MockBatch] {
        &mut store.batches
    }

    fn object(call: &BatchCall<Self>, store: &mut BatchStore, id: &str) -> Value {
        batch_object(&call.state, store, id)
    }
}

/// One part of a `multipart/form-data` body: (name, filename, content).
type Part<'a> = (String, Option<String>, &'a [u8]);

/// The parts of a `multipart/form-data` body.
fn multipart_parts<'a>(content_type: &str, body: &'a [u8]) -> Result<Vec<Part<'a>>, String> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .ok_or("the request is not multipart/form-data with a boundary")?;
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let find = |from: usize| -> Option<usize> {
        let hay = body.get(from..)?;
        hay.windows(delimiter.len())
            .position(|w| w == delimiter)
            .map(|p| p + from)
    };
    let mut parts = Vec::new();
    let mut at = find(0).ok_or("no multipart boundary in the body")?;
    loop {
        let start = at + delimiter.len();
        if body.get(start..start + 2) == Some(b"--") {
            break;
        }
        let next = find(start).ok_or("a multipart part is not closed")?;
        let part = body
            .get(start..next)
            .ok_or("bad multipart part")?
            .strip_prefix(b"\r\n")
            .unwrap_or(&body[start..next]);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let split = part
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("a multipart part has no headers")?;
        let head = String::from_utf8_lossy(&part[..split]);
        let content = &part[split + 4..];
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .unwrap_or("");
        let field = |key: &str| {
            disposition.split(';').find_map(|p| {
                p.trim()
                    .strip_prefix(&format!("{key}="))
                    .map(|v| v.trim_matches('"').to_string())
            })
        };
        let name = field("name").ok_or("a multipart part has no name")?;
        parts.push((name, field("filename"), content));
        at = next;
    }
    Ok(parts)
}

fn file_object(id: &str, f: &StoredFile) -> Value {
    json!({
        "id": id, "object": "file", "bytes": f.content.len(), "created_at": f.created_at,
        "filename": f.name, "purpose": f.purpose,
    })
}

/// `POST /v1/files`.
pub(crate) async fn upload<A: FilesApi>(call: BatchCall<A>, body: Bytes) -> Response {
    let state = &call.state;
    let content_type = call
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parts = match multipart_parts(content_type, &body) {
        Ok(parts) => parts,
        Err(e) => return bad_request(&e),
    };
    let purpose = parts
        .iter()
        .find(|(n, ..)| n == "purpose")
        .map(|(_, _, c)| String::from_utf8_lossy(c).into_owned());
    let Some((_, name, content)) = parts.iter().find(|(n, ..)| n == "file") else {
        return bad_request("Missing required parameter: 'file'.");
    };
    if purpose.as_deref() != Some("batch") {
        return bad_request("The mock takes files with purpose 'batch' only.");
    }
    let inner = &state.inner;
    Counters::bump(&inner.counters.batch_uploads);
    let object = {
        let mut store = call.store();
        store.next_file += 1;
        let id = format!("file-mock{:06}", store.next_file);
        let file = StoredFile {
            name: name.clone().unwrap_or_else(|| "upload.jsonl".into()),
            purpose: "batch".into(),
            content: Arc::new(content.to_vec()),
            created_at: unix_now(inner.started),
        };
        let object = file_object(&id, &file);
        store.files.insert(id, file);
        object
    };
    let delay = inner.cfg.batch_upload_delay_ms;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    json_response(StatusCode::OK, &object)
}

/// Files the mock holds (`/stats`' `batchFilesLive`).
pub(crate) fn live_files(state: &MockState) -> u64 {
    let store = OpenAiBatches::store(state)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    store.files.len() as u64
}

#[derive(Deserialize)]
pub(crate) struct FilesQuery {
    purpose: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

/// One page of a list (files or batches, newest first): up to `limit` of
/// `ids` after the id `after`, as OpenAI lists them.
fn list_page(
    ids: &[String],
    after: Option<&str>,
    limit: usize,
    mut object: impl FnMut(&str) -> Value,
) -> Response {
    let start = after.map_or(0, |after| {
        ids.iter()
            .position(|i| i == after)
            .map_or(ids.len(), |p| p + 1)
    });
    let page: Vec<&String> = ids.iter().skip(start).take(limit).collect();
    let has_more = start + page.len() < ids.len();
    let data: Vec<Value> = page.iter().map(|id| object(id)).collect();
    json_response(
        StatusCode::OK,
        &json!({
            "object": "list", "data": data, "has_more": has_more,
            "first_id": page.first(), "last_id": page.last(),
        }),
    )
}

/// `GET /v1/files`: newest first.
pub(crate) async fn list_files<A: FilesApi>(
    call: BatchCall<A>,
    Query(q): Query<FilesQuery>,
) -> Response {
    let store = call.store();
    // Ids grow with time: newest first is the ids in reverse.
    let mut ids: Vec<String> = store
        .files
        .iter()
        .filter(|(_, f)| q.purpose.as_deref().is_none_or(|p| f.purpose == p))
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    let limit = q.limit.unwrap_or(10_000).clamp(1, 10_000);
    list_page(&ids, q.after.as_deref(), limit, |id| {
        file_object(id, &store.files[id])
    })
}

/// `DELETE /v1/files/{id}`.
pub(crate) async fn delete_file<A: FilesApi>(
    call: BatchCall<A>,
    Path(id): Path<String>,
) -> Response {
    let state = &call.state;
    let mut store = call.store();
    if store.files.remove(&id).is_none() {
        return not_found("file", &id);
    }
    Counters::bump(&state.inner.counters.batch_file_deletes);
    json_response(
        StatusCode::OK,
        &json!({"id": id, "object": "file", "deleted": true}),
    )
}

/// `GET /v1/files/{id}`.
pub(crate) async fn file_info<A: FilesApi>(call: BatchCall<A>, Path(id): Path<String>) -> Response {
    let store = call.store();
    match store.files.get(&id) {
        Some(f) => json_response(StatusCode::OK, &file_object(&id, f)),
        None => not_found("file", &id),
    }
}

/// `GET /v1/files/{id}/content`: 10 lines at a time, `batch_download_delay_ms`
/// apart when it is set.
pub(crate) async fn file_content<A: FilesApi>(
    call: BatchCall<A>,
    Path(id): Path<String>,
) -> Response {
    let state = &call.state;
    let content = {
        let store = call.store();
        match store.files.get(&id) {
            Some(f) => f.content.clone(),
            None => return not_found("file", &id),
        }
    };
    Counters::bump(&state.inner.counters.batch_downloads);
    stream_lines(content, state.inner.cfg.batch_download_delay_ms)
}

/// A JSONL body: at once, or 10 lines at a time `delay` ms apart.
pub(crate) fn stream_lines(content: Arc<Vec<u8>>, delay: u64) -> Response {
    let headers = [(header::CONTENT_TYPE, "application/jsonl")];
    if delay == 0 {
        return (headers, content.as_ref().clone()).into_response();
    }
    let stream = futures_util::stream::unfold(0usize, move |at| {
        let content = content.clone();
        async move {
            if at >= content.len() {
                return None;
            }
            if at > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let mut end = at;
            for _ in 0..10 {
                match content[end..].iter().position(|&b| b == b'\n') {
                    Some(p) => end += p + 1,
                    None => {
                        end = content.len();
                        break;
                    }
                }
            }
            let chunk = Bytes::copy_from_slice(&content[at..end]);
            Some((Ok::<_, std::io::Error>(chunk), end))
        }
    });
    (headers, Body::from_stream(stream)).into_response()
}

#[derive(Deserialize)]
pub(crate) struct CreateBody {
    input_file_id: String,
    endpoint: String,
    completion_window: String,
    #[serde(default)]
    metadata: Value,
}

/// `POST /v1/batches`.
pub(crate) async fn create<A: FilesApi>(call: BatchCall<A>, body: Bytes) -> Response {
    let state = &call.state;
    let req: CreateBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return bad_request(&format!(
                "We could not parse the JSON body of your request: {e}"
            ))
        }
    };
    if req.endpoint != A::ENDPOINT {
        return bad_request(&format!(
            "The mock runs batches of {} only here.",
            A::ENDPOINT
        ));
    }
    if req.completion_window != "24h" {
        return bad_request("Invalid completion_window: only '24h' is supported.");
    }
    let inner = &state.inner;
    let id = {
        let mut store = call.store();
        let Some(file) = store.files.get(&req.input_file_id) else {
            drop(store);
            return not_found("file", &req.input_file_id);
        };
        let lines = file
            .content
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        let mixed = A::DIALECT == Dialect::Azure && models_differ(&file.content);
        Counters::bump(&inner.counters.batch_creates);
        let n = store.batches.len() as u64 + 1;
        let cfg = &inner.cfg;
        let fate = if mixed {
            Fate::ModelMismatch
        } else if n <= cfg.batch_expire {
            Fate::Expire
        } else if n <= cfg.batch_expire + cfg.batch_fail {
            Fate::Fail
        } else {
            Fate::Complete
        };
        let id = format!("batch_mock{n:06}");
        store.batches.push(MockBatch {
            id: id.clone(),
            dialect: A::DIALECT,
            input_file_id: req.input_file_id,
            metadata: req.metadata,
            created: Instant::now(),
            created_at: unix_now(inner.started),
            fate,
            cancelled: None,
            lines,
            results: None,
        });
        id
    };
    let delay = inner.cfg.batch_create_delay_ms;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let mut store = call.store();
    let object = batch_object(state, &mut store, &id);
    json_response(StatusCode::OK, &object)
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<usize>,
    after: Option<String>,
}

/// `GET /v1/batches`: newest first.
pub(crate) async fn list<A: FilesApi>(call: BatchCall<A>, Query(q): Query<ListQuery>) -> Response {
    let state = &call.state;
    Counters::bump(&state.inner.counters.batch_lists);
    let mut store = call.store();
    let ids: Vec<String> = store.batches.iter().rev().map(|b| b.id.clone()).collect();
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    list_page(&ids, q.after.as_deref(), limit, |id| {
        batch_object(state, &mut store, id)
    })
}

/// How long cancelling takes.
const CANCELLING: Duration = Duration::from_millis(200);

/// The batch object of `id` now; writes its result files when it has ended.
fn batch_object(state: &MockState, store: &mut BatchStore, id: &str) -> Value {
    let cfg = &state.inner.cfg;
    let total = Duration::from_millis(cfg.batch_ms);
    let i = store
        .batches
        .iter()
        .position(|b| b.id == id)
        .expect("a known batch");
    let (elapsed, fate, cancelled, lines) = {
        let b = &store.batches[i];
        (b.created.elapsed(), b.fate, b.cancelled, b.lines)
    };
    let validating = total / 10;
    let status = match (fate, cancelled) {
        (Fate::Fail | Fate::ModelMismatch, _) if elapsed >= validating => "failed",
        (_, Some(at)) if at.elapsed() >= CANCELLING => "cancelled",
        (_, Some(_)) => "cancelling",
        _ if elapsed < validating => "validating",
        (Fate::Expire, _) if elapsed >= total => "expired",
        (Fate::Complete, _) if elapsed >= total => "completed",
        _ if elapsed >= total - total / 10 => "finalizing",
        _ => "in_progress",
    };
    let ended = matches!(status, "completed" | "expired" | "cancelled");
    if ended && store.batches[i].results.is_none() {
        let share = match (fate, cancelled) {
            (_, Some(at)) => {
                let ran = at.duration_since(store.batches[i].created);
                ran.as_secs_f64() / total.as_secs_f64().max(1e-9)
            }
            _ => 1.0,
        };
        let results = write_results(state, store, i, share);
        store.batches[i].results = Some(results);
    }
    let b = &store.batches[i];
    let done = match status {
        "in_progress" | "finalizing" => {
            ((lines as f64) * elapsed.as_secs_f64() / total.as_secs_f64().max(1e-9)) as usize
        }
        "completed" => lines,
        _ => 0,
    }
    .min(lines);
    let (output, error) = b.results.clone().unwrap_or((None, None));
    let errors = match status {
        "failed" if fate == Fate::ModelMismatch => json!({"object": "list", "data": [{
            "code": "model_mismatch",
            "message": "The model (deployment) must be the same on every line of a batch file.",
            "param": null, "line": 1,
        }]}),
        "failed" => json!({"object": "list", "data": [{
            "code": "invalid_request",
            "message": "The mock was told to fail this batch's validation (--batch-fail).",
            "param": null, "line": 1,
        }]}),
        _ => Value::Null,
    };
    let at = |cond: bool| {
        if cond {
            json!(b.created_at + elapsed.as_secs())
        } else {
            Value::Null
        }
    };
    let (endpoint, status) = match b.dialect {
        Dialect::Azure if status == "validating" => ("/chat/completions", "Validating"),
        Dialect::Azure => ("/chat/completions", status),
        _ => ("/v1/chat/completions", status),
    };
    json!({
        "id": b.id, "object": "batch", "endpoint": endpoint,
        "errors": errors, "input_file_id": b.input_file_id, "completion_window": "24h",
        "status": status, "output_file_id": output, "error_file_id": error,
        "created_at": b.created_at, "in_progress_at": at(elapsed >= validating),
        "expires_at": b.created_at + 86_400, "completed_at": at(status == "completed"),
        "failed_at": at(status == "failed"), "expired_at": at(status == "expired"),
        "cancelled_at": at(status == "cancelled"),
        "request_counts": {"total": lines, "completed": done, "failed": 0},
        "metadata": b.metadata,
    })
}

/// Whether the lines of a batch file name more than one `body.model`.
fn models_differ(content: &[u8]) -> bool {
    let mut models = content
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .map(|l| {
            serde_json::from_slice::<Value>(l)
                .ok()
                .and_then(|v| v.pointer("/body/model").cloned())
        });
    let first = models.next().flatten();
    models.any(|m| m != first)
}

/// What the mock decides for one request of a batch (its attempt read from
/// its `custom_id`), counted: an injected server error, or an answer (refused,
/// malformed or not).
pub(crate) fn decide_batched(inner: &Inner, req: &Parsed, custom_id: &str) -> Decision {
    let d = decide(&inner.cfg, inner.truth.as_ref(), req, attempt_of(custom_id));
    if d.server_error {
        Counters::bump(&inner.counters.server_errors);
    } else {
        if d.refused {
            Counters::bump(&inner.counters.refused);
        } else if d.malformed {
            Counters::bump(&inner.counters.malformed);
        }
        Counters::bump(&inner.counters.ok);
    }
    d
}

/// The attempt a `custom_id` names (`...-a{attempt}`), as the live mock's
/// `x-stainless-retry-count` (attempt − 1); 0 for other ids.
pub(crate) fn attempt_of(custom_id: &str) -> u64 {
    custom_id
        .rsplit_once("-a")
        .and_then(|(_, a)| a.parse::<u64>().ok())
        .map_or(0, |a| a.saturating_sub(1))
}

/// Answers every line of batch `i` (those within `share` of the file when it
/// was cut short) into an output and an error file, out of order.
fn write_results(
    state: &MockState,
    store: &mut BatchStore,
    i: usize,
    share: f64,
) -> (Option<String>, Option<String>) {
    let inner = &state.inner;
    let cfg = &inner.cfg;
    let b = &store.batches[i];
    let Some(input) = store.files.get(&b.input_file_id).map(|f| f.content.clone()) else {
        return (None, None);
    };
    let expired = b.fate == Fate::Expire;
    let dialect = b.dialect;
    let lines: Vec<&[u8]> = input
        .split(|&c| c == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .collect();
    let ran_until = ((lines.len() as f64) * share.clamp(0.0, 1.0)).round() as usize;
    let mut out: Vec<(u64, String)> = Vec::new();
    let mut err: Vec<(u64, String)> = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let v: Value = serde_json::from_slice(line).unwrap_or(Value::Null);
        let custom_id = v
            .get("custom_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let request_id = format!("req_batch_{n:08}");
        let order = crate::answers::order_key(cfg.seed, &custom_id);
        let ran = if expired { n % 2 == 0 } else { n < ran_until };
        if !ran {
            let code = if expired {
                "batch_expired"
            } else {
                "batch_cancelled"
            };
            let message = if expired {
                "This request could not be executed before the completion window expired."
            } else {
                "This request was not executed because the batch was cancelled."
            };
            err.push((
                order,
                json!({"id": request_id, "custom_id": custom_id, "response": null,
                "error": {"code": code, "message": message}})
                .to_string(),
            ));
            continue;
        }
        let body = v.get("body").map(|b| b.to_string()).unwrap_or_default();
        // As the live route of the dialect answers the same request.
        let (status, answer) = match dialect.parse(cfg, body.as_bytes(), None) {
            Ok(req) => {
                let d = decide_batched(inner, &req, &custom_id);
                if d.server_error {
                    dialect.server_error()
                } else {
                    dialect.answer(cfg, &req, &d, body.as_bytes())
                }
            }
            Err(message) => {
                Counters::bump(&inner.counters.bad_requests);
                dialect.bad_request(&message)
            }
        };
        let status = status.as_u16();
        Counters::bump(&inner.counters.batch_lines);
        let line = json!({"id": request_id, "custom_id": custom_id, "error": null,
            "response": {"status_code": status, "request_id": request_id, "body": answer}})
        .to_string();
        if status == 200 {
            out.push((order, line))
        } else {
            err.push((order, line))
        }
    }
    let mut save = |mut lines: Vec<(u64, String)>, kind: &str| -> Option<String> {
        // Azure names an error file even when no line failed.
        if lines.is_empty() && !(dialect == Dialect::Azure && kind == "error") {
            return None;
        }
        // Out of input order, the same way for the same seed.
        lines.sort_unstable_by_key(|(order, _)| *order);
        let mut content = Vec::new();
        for (_, l) in lines {
            content.extend_from_slice(l.as_bytes());
            content.push(b'\n');
        }
        store.next_file += 1;
        let id = format!("file-mock{:06}", store.next_file);
        store.files.insert(
            id.clone(),
            StoredFile {
                name: format!("batch_{kind}.jsonl"),
                purpose: format!("batch_{kind}"),
                content: Arc::new(content),
                created_at: unix_now(inner.started),
            },
        );
        Some(id)
    };
    (save(out, "output"), save(err, "error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_are_read() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n{\"a\":1}\n{\"b\":2}\n\r\n--XyZ--\r\n";
        let parts = multipart_parts("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, "purpose");
        assert_eq!(parts[0].2, b"batch");
        assert_eq!(parts[1].1.as_deref(), Some("a.jsonl"));
        assert_eq!(parts[1].2, b"{\"a\":1}\n{\"b\":2}\n");
        assert!(multipart_parts("application/json", body).is_err());
    }

    #[test]
    fn the_attempt_is_read_from_the_custom_id() {
        assert_eq!(attempt_of("r12-a1"), 0);
        assert_eq!(attempt_of("r12-a3"), 2);
        assert_eq!(attempt_of("whatever"), 0);
    }
}
