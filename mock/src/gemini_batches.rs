//! Gemini Batch Mode, as the mock serves it: the resumable upload (`POST
//! /upload/v1beta/files`, `start` then `upload, finalize`), `GET
//! /v1beta/files` (`pageSize`, `pageToken`), `DELETE /v1beta/files/{id}`,
//! `GET /download/v1beta/files/{id}:download?alt=media`, `POST
//! /v1beta/models/{model}:batchGenerateContent` (an uploaded file, or the
//! requests inline), `GET /v1beta/batches` (newest first), `GET
//! /v1beta/batches/{id}`, `POST /v1beta/batches/{id}:cancel`. Every call
//! needs the `x-goog-api-key` the mock requires (if any).
//!
//! A batch is a long-running operation whose metadata holds the batch:
//! `BATCH_STATE_PENDING` for the first tenth of
//! [`batch_ms`](crate::MockConfig::batch_ms), `BATCH_STATE_RUNNING` (its
//! `batchStats`, int64 as strings, moving), then `BATCH_STATE_SUCCEEDED` with
//! `output.responsesFile` (a file batch: lines `{"key", "response"}` or
//! `{"key", "error"}` in input order) or `output.inlinedResponses` (an inline
//! batch). Each request is answered by the same pure function as a live
//! `generateContent` ([`decide`](crate::answers::decide)), its attempt read
//! from a key ending in `-a{attempt}`, so batch and live runs of a CSV agree:
//! an injected server fault becomes an error line inside the SUCCEEDED batch
//! (`{"code": 14, "status": "UNAVAILABLE"}`, as Google writes a
//! `google.rpc.Status`), a request the mock cannot read an `INVALID_ARGUMENT`
//! line.
//!
//! Faults: [`batch_expire`](crate::MockConfig::batch_expire) makes the first
//! batches `BATCH_STATE_EXPIRED` with no results, as Google's expire after 48
//! hours; [`batch_fail`](crate::MockConfig::batch_fail) the next ones
//! `BATCH_STATE_FAILED` with an operation error; a cancelled batch is
//! `BATCH_STATE_CANCELLED` with the results of the lines its time reached;
//! [`batch_create_delay_ms`](crate::MockConfig::batch_create_delay_ms) answers
//! a create late (the batch exists from the start of the wait),
//! [`batch_upload_delay_ms`](crate::MockConfig::batch_upload_delay_ms) a
//! finalize (the file exists meanwhile), and
//! [`batch_download_delay_ms`](crate::MockConfig::batch_download_delay_ms)
//! serves results 10 lines at a time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::batch::{decide_batched, stream_lines};
use crate::batch_api::{json_response, key_refusal, BatchApi, BatchCall, StoredBatch};
use crate::dialect::Dialect;
use crate::gemini::error_body;
use crate::server::MockState;
use crate::stats::Counters;

/// How long cancelling takes.
const CANCELLING: Duration = Duration::from_millis(200);

/// The files, uploads and batches of the mock's Gemini account.
#[derive(Default)]
pub(crate) struct GeminiStore {
    /// `files/{id}` -> the file.
    files: BTreeMap<String, GeminiFile>,
    /// Upload sessions: id -> (display name, the size announced).
    uploads: BTreeMap<u64, (String, Option<u64>)>,
    batches: Vec<GeminiBatch>,
    next_id: u64,
    /// Create calls answered: the faults count them.
    creates: u64,
}

struct GeminiFile {
    display_name: String,
    content: Arc<Vec<u8>>,
    created_ms: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Complete,
    Expire,
    Fail,
}

pub(crate) struct GeminiBatch {
    /// `batches/{id}`.
    name: String,
    display_name: String,
    model: String,
    /// The uploaded file, for a file batch.
    input_file: Option<String>,
    /// (key, request) of each request, in order.
    requests: Arc<Vec<(String, Vec<u8>)>>,
    created: Instant,
    created_ms: u64,
    fate: Fate,
    cancelled: Option<Instant>,
    /// Once ended: the results (a file's name, or the inline entries) and the
    /// counts (succeeded, failed).
    results: Option<(Output, u64, u64)>,
}

#[derive(Clone)]
enum Output {
    File(String),
    Inline(Arc<Vec<Value>>),
    None,
}

impl StoredBatch for GeminiBatch {
    fn id(&self) -> &str {
        &self.name
    }

    fn cancel(&mut self) {
        if self.results.is_none() {
            self.cancelled.get_or_insert_with(Instant::now);
        }
    }
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn rfc3339(ms: u64) -> String {
    shadow_core::Millis(ms).to_iso8601()
}

fn invalid(message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &error_body(400, "INVALID_ARGUMENT", message, Value::Null),
    )
}

fn not_found(what: &str) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &error_body(
            404,
            "NOT_FOUND",
            &format!("Requested entity was not found: {what}"),
            Value::Null,
        ),
    )
}

/// Gemini Batch Mode and its Files API.
pub(crate) struct GeminiBatches;

impl BatchApi for GeminiBatches {
    type Store = GeminiStore;
    type Batch = GeminiBatch;

    fn store(state: &MockState) -> &Mutex<GeminiStore> {
        &state.inner.gemini
    }

    fn refusal(state: &MockState, headers: &HeaderMap) -> Option<Response> {
        key_refusal(state, headers, Dialect::Gemini, || {
            Dialect::Gemini.unauthorized()
        })
    }

    fn not_found(id: &str) -> Response {
        not_found(id)
    }

    fn batches(store: &mut GeminiStore) -> &mut [GeminiBatch] {
        &mut store.batches
    }

    fn object(call: &BatchCall<Self>, store: &mut GeminiStore, id: &str) -> Value {
        operation(&call.state, store, id)
    }
}

/// Files the mock's Gemini account holds (part of `/stats`' `batchFilesLive`).
pub(crate) fn live_files(state: &MockState) -> u64 {
    GeminiBatches::store(state)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .files
        .len() as u64
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
}

fn file_object(name: &str, f: &GeminiFile) -> Value {
    json!({
        "name": name, "displayName": f.display_name, "mimeType": "application/jsonl",
        "sizeBytes": f.content.len().to_string(), "createTime": rfc3339(f.created_ms),
        "state": "ACTIVE",
    })
}

#[derive(Deserialize)]
pub(crate) struct UploadQuery {
    upload_id: Option<u64>,
}

/// `POST /upload/v1beta/files`: `start` (answers where to send the bytes in
/// `x-goog-upload-url`), then `upload, finalize` at that URL (answers the
/// file).
pub(crate) async fn upload(
    call: BatchCall<GeminiBatches>,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> Response {
    let headers = &call.headers;
    let command = header_text(headers, "x-goog-upload-command").to_ascii_lowercase();
    if command == "start" {
        if !header_text(headers, "x-goog-upload-protocol").eq_ignore_ascii_case("resumable") {
            return invalid("The mock takes resumable uploads only (X-Goog-Upload-Protocol).");
        }
        let meta: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let name = meta
            .pointer("/file/display_name")
            .or_else(|| meta.pointer("/file/displayName"))
            .and_then(Value::as_str)
            .unwrap_or("upload")
            .to_string();
        let size = header_text(headers, "x-goog-upload-header-content-length")
            .parse()
            .ok();
        let id = {
            let mut store = call.store();
            store.next_id += 1;
            let id = store.next_id;
            store.uploads.insert(id, (name, size));
            id
        };
        let host = header_text(headers, "host");
        let url =
            format!("http://{host}/upload/v1beta/files?upload_id={id}&upload_protocol=resumable");
        let mut response = json_response(StatusCode::OK, &json!({}));
        if let Ok(v) = HeaderValue::from_str(&url) {
            response.headers_mut().insert("x-goog-upload-url", v);
        }
        response
            .headers_mut()
            .insert("x-goog-upload-status", HeaderValue::from_static("active"));
        return response;
    }
    if !command.contains("finalize") {
        return invalid("X-Goog-Upload-Command must be start, or upload, finalize.");
    }
    let Some(id) = q.upload_id else {
        return invalid("upload_id is missing.");
    };
    let (state, object) = {
        let mut store = call.store();
        let Some((name, size)) = store.uploads.remove(&id) else {
            return not_found(&format!("upload {id}"));
        };
        if size.is_some_and(|s| s != body.len() as u64) {
            return invalid("The upload's size is not the size announced at its start.");
        }
        store.next_id += 1;
        let file = format!("files/mock{:06}", store.next_id);
        let f = GeminiFile {
            display_name: name,
            content: Arc::new(body.to_vec()),
            created_ms: wall_ms(),
        };
        let object = file_object(&file, &f);
        store.files.insert(file, f);
        (call.state.clone(), object)
    };
    Counters::bump(&state.inner.counters.batch_uploads);
    let delay = state.inner.cfg.batch_upload_delay_ms;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    json_response(StatusCode::OK, &json!({ "file": object }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageQuery {
    page_size: Option<usize>,
    page_token: Option<String>,
}

/// One page of `names` (newest first): up to `size` from the index the token
/// names.
fn page<T>(
    names: &[String],
    q: &PageQuery,
    mut object: impl FnMut(&str) -> T,
) -> (Vec<T>, Option<String>) {
    let start = q
        .page_token
        .as_deref()
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0);
    let size = q.page_size.unwrap_or(50).clamp(1, 1000);
    let items = names
        .iter()
        .skip(start)
        .take(size)
        .map(|n| object(n))
        .collect::<Vec<_>>();
    let next = start + size;
    (items, (next < names.len()).then(|| next.to_string()))
}

/// `GET /v1beta/files`: newest first.
pub(crate) async fn list_files(
    call: BatchCall<GeminiBatches>,
    Query(q): Query<PageQuery>,
) -> Response {
    let store = call.store();
    let names: Vec<String> = store.files.keys().rev().cloned().collect();
    let (files, next) = page(&names, &q, |n| file_object(n, &store.files[n]));
    let mut body = json!({ "files": files });
    if let Some(next) = next {
        body["nextPageToken"] = json!(next);
    }
    json_response(StatusCode::OK, &body)
}

/// `DELETE /v1beta/files/{id}`.
pub(crate) async fn delete_file(
    call: BatchCall<GeminiBatches>,
    Path(id): Path<String>,
) -> Response {
    let name = format!("files/{id}");
    if call.store().files.remove(&name).is_none() {
        return not_found(&name);
    }
    Counters::bump(&call.counters().batch_file_deletes);
    json_response(StatusCode::OK, &json!({}))
}

/// `GET /download/v1beta/files/{id}:download?alt=media`: a generated file
/// (uploaded ones cannot be downloaded, as Google's).
pub(crate) async fn download(
    call: BatchCall<GeminiBatches>,
    Path(action): Path<String>,
) -> Response {
    let Some(id) = action.strip_suffix(":download") else {
        return not_found(&action);
    };
    let name = format!("files/{id}");
    let content = {
        let store = call.store();
        let generated = store
            .batches
            .iter()
            .any(|b| matches!(&b.results, Some((Output::File(f), ..)) if *f == name));
        match store.files.get(&name) {
            Some(f) if generated => f.content.clone(),
            Some(_) => return invalid("Only generated files can be downloaded."),
            None => return not_found(&name),
        }
    };
    Counters::bump(&call.counters().batch_downloads);
    stream_lines(content, call.state.inner.cfg.batch_download_delay_ms)
}

/// `POST /v1beta/models/{model}:batchGenerateContent`.
pub(crate) async fn create(call: BatchCall<GeminiBatches>, model: String, body: Bytes) -> Response {
    let state = call.state.clone();
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return invalid(&format!("Invalid JSON payload received. {e}")),
    };
    let Some(display_name) = v.pointer("/batch/displayName").and_then(Value::as_str) else {
        return invalid("batch.display_name is required.");
    };
    let input = v
        .pointer("/batch/inputConfig")
        .cloned()
        .unwrap_or(Value::Null);
    let name = {
        let mut store = call.store();
        store.creates += 1;
        let (input_file, requests) =
            if let Some(file) = input.get("fileName").and_then(Value::as_str) {
                let Some(f) = store.files.get(file) else {
                    drop(store);
                    return not_found(file);
                };
                let requests = f
                    .content
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.trim_ascii().is_empty())
                    .map(|l| {
                        let v: Value = serde_json::from_slice(l).unwrap_or(Value::Null);
                        let key = v
                            .get("key")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        (
                            key,
                            v.get("request")
                                .map(|r| r.to_string())
                                .unwrap_or_default()
                                .into_bytes(),
                        )
                    })
                    .collect::<Vec<_>>();
                (Some(file.to_string()), requests)
            } else if let Some(Value::Array(inline)) = input.pointer("/requests/requests") {
                let requests = inline
                    .iter()
                    .map(|r| {
                        let key = r
                            .pointer("/metadata/key")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        (
                            key,
                            r.get("request")
                                .map(|r| r.to_string())
                                .unwrap_or_default()
                                .into_bytes(),
                        )
                    })
                    .collect();
                (None, requests)
            } else {
                return invalid("batch.input_config needs file_name or requests.");
            };
        if requests.is_empty() {
            return invalid("The batch holds no requests.");
        }
        Counters::bump(&state.inner.counters.batch_creates);
        let n = store.creates;
        let cfg = &state.inner.cfg;
        let fate = if n <= cfg.batch_expire {
            Fate::Expire
        } else if n <= cfg.batch_expire + cfg.batch_fail {
            Fate::Fail
        } else {
            Fate::Complete
        };
        store.next_id += 1;
        let name = format!("batches/mock{:06}", store.next_id);
        store.batches.push(GeminiBatch {
            name: name.clone(),
            display_name: display_name.to_string(),
            model: model.clone(),
            input_file,
            requests: Arc::new(requests),
            created: Instant::now(),
            created_ms: wall_ms(),
            fate,
            cancelled: None,
            results: None,
        });
        name
    };
    let delay = state.inner.cfg.batch_create_delay_ms;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let mut store = call.store();
    json_response(StatusCode::OK, &operation(&state, &mut store, &name))
}

/// `GET /v1beta/batches`: newest first.
pub(crate) async fn list(call: BatchCall<GeminiBatches>, Query(q): Query<PageQuery>) -> Response {
    Counters::bump(&call.counters().batch_lists);
    let state = call.state.clone();
    let mut store = call.store();
    let names: Vec<String> = store.batches.iter().rev().map(|b| b.name.clone()).collect();
    let (operations, next) = page(&names, &q, |n| operation(&state, &mut store, n));
    let mut body = json!({ "operations": operations });
    if let Some(next) = next {
        body["nextPageToken"] = json!(next);
    }
    json_response(StatusCode::OK, &body)
}

/// `GET /v1beta/batches/{id}`.
pub(crate) async fn get(call: BatchCall<GeminiBatches>, Path(id): Path<String>) -> Response {
    crate::batch_api::retrieve(call, Path(format!("batches/{id}"))).await
}

/// `POST /v1beta/batches/{id}:cancel`: answers an empty object, as Google's.
pub(crate) async fn cancel(call: BatchCall<GeminiBatches>, Path(action): Path<String>) -> Response {
    let Some(id) = action.strip_suffix(":cancel") else {
        return not_found(&action);
    };
    Counters::bump(&call.counters().batch_cancels);
    let name = format!("batches/{id}");
    let mut store = call.store();
    let Some(batch) = store.batches.iter_mut().find(|b| b.name == name) else {
        return not_found(&name);
    };
    batch.cancel();
    json_response(StatusCode::OK, &json!({}))
}

/// The operation of batch `name` now; writes its results once it has ended.
fn operation(state: &MockState, store: &mut GeminiStore, name: &str) -> Value {
    let cfg = &state.inner.cfg;
    let total = Duration::from_millis(cfg.batch_ms);
    let i = store
        .batches
        .iter()
        .position(|b| b.name == name)
        .expect("a known batch");
    let (elapsed, fate, cancelled, lines) = {
        let b = &store.batches[i];
        (b.created.elapsed(), b.fate, b.cancelled, b.requests.len())
    };
    let pending = total / 10;
    let state_word = match (fate, cancelled) {
        (Fate::Fail, _) if elapsed >= pending => "FAILED",
        (_, Some(at)) if at.elapsed() >= CANCELLING => "CANCELLED",
        (_, Some(_)) => "RUNNING",
        _ if elapsed < pending => "PENDING",
        (Fate::Expire, _) if elapsed >= total => "EXPIRED",
        (Fate::Complete, _) if elapsed >= total => "SUCCEEDED",
        _ => "RUNNING",
    };
    let ended = matches!(state_word, "SUCCEEDED" | "CANCELLED" | "EXPIRED" | "FAILED");
    if ended && store.batches[i].results.is_none() {
        let share = match cancelled {
            Some(at) => {
                let ran = at.duration_since(store.batches[i].created);
                ran.as_secs_f64() / total.as_secs_f64().max(1e-9)
            }
            None if matches!(state_word, "SUCCEEDED") => 1.0,
            None => 0.0,
        };
        let results = write_results(state, store, i, share);
        store.batches[i].results = Some(results);
    }
    let b = &store.batches[i];
    let (output, succeeded, failed) = b.results.clone().unwrap_or((Output::None, 0, 0));
    let done_lines = match state_word {
        "RUNNING" => {
            ((lines as f64) * elapsed.as_secs_f64() / total.as_secs_f64().max(1e-9)) as u64
        }
        _ => succeeded + failed,
    }
    .min(lines as u64);
    let output = match output {
        Output::File(f) => json!({ "responsesFile": f }),
        Output::Inline(entries) => {
            json!({ "inlinedResponses": { "inlinedResponses": entries.as_ref() } })
        }
        Output::None => Value::Null,
    };
    let mut metadata = json!({
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        "model": format!("models/{}", b.model),
        "displayName": b.display_name,
        "createTime": rfc3339(b.created_ms),
        "updateTime": rfc3339(wall_ms()),
        "state": format!("BATCH_STATE_{state_word}"),
        "batchStats": {
            "requestCount": lines.to_string(),
            "successfulRequestCount": if ended { succeeded } else { done_lines }.to_string(),
            "failedRequestCount": failed.to_string(),
            "pendingRequestCount": (lines as u64).saturating_sub(if ended { lines as u64 } else { done_lines }).to_string(),
        },
    });
    if let Some(file) = &b.input_file {
        metadata["inputConfig"] = json!({ "fileName": file });
    }
    if !output.is_null() {
        metadata["output"] = output.clone();
    }
    let mut op = json!({ "name": b.name, "metadata": metadata, "done": ended });
    if state_word == "FAILED" {
        op["error"] = json!({
            "code": 3,
            "message": "The mock was told to fail this batch (--batch-fail).",
            "status": "INVALID_ARGUMENT",
        });
    } else if ended && !output.is_null() {
        let mut response = output;
        response["@type"] = json!(
            "type.googleapis.com/google.ai.generativelanguage.v1main.BatchGenerateContentResponse"
        );
        op["response"] = response;
    }
    op
}

/// Answers the requests of batch `i` that `share` of its time reached, in
/// order, into a results file (a file batch) or inline entries: (output,
/// succeeded, failed).
fn write_results(
    state: &MockState,
    store: &mut GeminiStore,
    i: usize,
    share: f64,
) -> (Output, u64, u64) {
    let inner = &state.inner;
    let cfg = &inner.cfg;
    let b = &store.batches[i];
    let ran_until = ((b.requests.len() as f64) * share.clamp(0.0, 1.0)).round() as usize;
    if ran_until == 0 {
        return (Output::None, 0, 0);
    }
    let (mut succeeded, mut failed) = (0, 0);
    let mut entries: Vec<Value> = Vec::new();
    for (key, request) in b.requests.iter().take(ran_until) {
        let outcome = match Dialect::Gemini.parse(cfg, request, Some(&b.model)) {
            Ok(req) => {
                let d = decide_batched(inner, &req, key);
                if d.server_error {
                    Err(
                        json!({"code": 14, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}),
                    )
                } else {
                    Ok(Dialect::Gemini.answer(cfg, &req, &d, request).1)
                }
            }
            Err(message) => {
                Counters::bump(&inner.counters.bad_requests);
                Err(json!({"code": 3, "message": message, "status": "INVALID_ARGUMENT"}))
            }
        };
        Counters::bump(&inner.counters.batch_lines);
        let entry = match outcome {
            Ok(response) => {
                succeeded += 1;
                json!({ "key": key, "response": response })
            }
            Err(error) => {
                failed += 1;
                json!({ "key": key, "error": error })
            }
        };
        entries.push(entry);
    }
    if b.input_file.is_none() {
        // Inline: `{metadata: {key}, response | error}`, in order.
        let inline = entries
            .into_iter()
            .map(|mut e| {
                let key = e["key"].take();
                let o = e.as_object_mut().expect("an object");
                o.remove("key");
                o.insert("metadata".into(), json!({ "key": key }));
                e
            })
            .collect();
        return (Output::Inline(Arc::new(inline)), succeeded, failed);
    }
    let mut content = Vec::new();
    for e in entries {
        content.extend_from_slice(e.to_string().as_bytes());
        content.push(b'\n');
    }
    store.next_id += 1;
    let name = format!("files/mock{:06}", store.next_id);
    let display_name = format!("{}-results", store.batches[i].display_name);
    store.files.insert(
        name.clone(),
        GeminiFile {
            display_name,
            content: Arc::new(content),
            created_ms: wall_ms(),
        },
    );
    (Output::File(name), succeeded, failed)
}

#[cfg(test)]
mod tests {
    use crate::testing::{client, serve_with, LABELS};
    use serde_json::{json, Value};

    async fn read(response: reqwest::Response) -> Value {
        serde_json::from_str(&response.text().await.unwrap()).unwrap()
    }

    /// A `generateContent` body for image `i`, the labels as the schema's enum.
    fn request(i: usize) -> Value {
        json!({
            "contents": [{"role": "user", "parts": [
                {"file_data": {"mime_type": "image/jpeg", "file_uri": format!("https://example.test/{i}.jpg")}},
                {"text": "Which label?"}]}],
            "generationConfig": {"responseMimeType": "application/json", "responseSchema": {
                "type": "OBJECT", "properties": {"label": {"type": "STRING", "enum": LABELS}},
                "required": ["label"]}}
        })
    }

    /// An inline batch is answered in order, keyed by its metadata, each
    /// request exactly as the live route answers it; a file batch's upload
    /// goes by the resumable protocol to the URL the start names.
    #[tokio::test]
    async fn batches_answer_as_the_live_route_inline_and_from_a_file() {
        let mock = serve_with(|c| c.batch_ms = 50).await;
        let base = mock.base_url();
        let root = base.strip_suffix("/v1").unwrap_or(&base).to_string();
        let http = client();
        let live = |i: usize| {
            let (http, url) = (
                http.clone(),
                format!("{root}/v1beta/models/m:generateContent"),
            );
            async move {
                let v: Value = read(
                    http.post(url)
                        .body(request(i).to_string())
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                v["candidates"].clone()
            }
        };
        let requests: Vec<Value> = (0..3)
            .map(|i| json!({"request": request(i), "metadata": {"key": format!("r{i}-a1")}}))
            .collect();
        let created: Value = read(
            http.post(format!("{root}/v1beta/models/m:batchGenerateContent"))
                .body(
                    json!({"batch": {"displayName": "shadow-batch-T-1",
                "inputConfig": {"requests": {"requests": requests}}}})
                    .to_string(),
                )
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(created["metadata"]["state"], "BATCH_STATE_PENDING");
        assert_eq!(created["metadata"]["batchStats"]["requestCount"], "3");
        tokio::time::sleep(std::time::Duration::from_millis(80)).await;
        let name = created["name"].as_str().unwrap();
        let done: Value = read(
            http.get(format!("{root}/v1beta/{name}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            done["metadata"]["state"], "BATCH_STATE_SUCCEEDED",
            "{done:#}"
        );
        let inline = done["response"]["inlinedResponses"]["inlinedResponses"]
            .as_array()
            .unwrap();
        for (i, entry) in inline.iter().enumerate() {
            assert_eq!(entry["metadata"]["key"], format!("r{i}-a1"));
            assert_eq!(entry["response"]["candidates"], live(i).await, "row {i}");
        }

        // A file: start, then upload, finalize at the URL the start named.
        let line = json!({"key": "r0-a1", "request": request(0)}).to_string() + "\n";
        let start = http
            .post(format!("{root}/upload/v1beta/files"))
            .header("x-goog-upload-protocol", "resumable")
            .header("x-goog-upload-command", "start")
            .header(
                "x-goog-upload-header-content-length",
                line.len().to_string(),
            )
            .body(json!({"file": {"display_name": "shadow-batch-T-2"}}).to_string())
            .send()
            .await
            .unwrap();
        let url = start.headers()["x-goog-upload-url"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(url.starts_with(&root), "{url}");
        let file: Value = read(
            http.post(url)
                .header("x-goog-upload-command", "upload, finalize")
                .header("x-goog-upload-offset", "0")
                .body(line.clone())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(file["file"]["displayName"], "shadow-batch-T-2");
        assert_eq!(file["file"]["sizeBytes"], line.len().to_string());
        let listed: Value = read(
            http.get(format!("{root}/v1beta/files"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(listed["files"].as_array().unwrap().len(), 1);
        // An uploaded file cannot be downloaded, as Google's.
        let id = file["file"]["name"]
            .as_str()
            .unwrap()
            .strip_prefix("files/")
            .unwrap()
            .to_string();
        let refused = http
            .get(format!(
                "{root}/download/v1beta/files/{id}:download?alt=media"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
    }
}
