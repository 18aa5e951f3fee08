//! Gemini Batch Mode (`models/{model}:batchGenerateContent`): a small shard's
//! requests inline in the create call, a larger one's in an input file
//! uploaded with the resumable upload protocol; a long-running operation read
//! until it is done; its inline results, or a results file read line by
//! line. Pure functions.
//!
//! What differs from OpenAI's Batch API, and what the run does about it:
//!
//! - Lines are `{"key": "r{row}-a{attempt}", "request": <the live
//!   GenerateContentRequest>}`; results are `{"key", "response"}` or `{"key",
//!   "error"}` (a `google.rpc.Status`), in input order. A batch that
//!   SUCCEEDED can hold error lines: each is judged as the live answer or
//!   error it carries, its status from the error's code (an HTTP status, or a
//!   gRPC code mapped as Google maps them: 3 -> 400, 8 -> 429, 14 -> 503...).
//! - Inline or file, by size: a shard whose create body, its requests inline
//!   (`inputConfig.requests.requests[]`: `{"request", "metadata": {"key"}}`),
//!   is at most [`crate::config::BatchApiConfig::inline_max_bytes`] (Google:
//!   under 20 MB; default 19,000,000) goes inline, no file uploaded: its
//!   file-form lines are rewritten byte for byte ([`inline_request`]) once
//!   its size is known, and its results are the finished operation's
//!   `response.inlinedResponses.inlinedResponses[]` (`{metadata: {key},
//!   response | error}`, in order), read as the lines of a results file. The
//!   journal records the create's intent with the rows and no file
//!   (`Submitting`), so a resume knows it went inline.
//! - The upload is Google's resumable protocol: a `start` call naming the
//!   file's size and type, whose answer header `x-goog-upload-url` says where
//!   to send the bytes (`upload, finalize`); the answer names the file
//!   (`files/...`). The host checks that the upload URL is on the host the run
//!   was pointed at before it sends the key there.
//! - A batch is a long-running operation: `{name: "batches/...", metadata:
//!   {displayName, state, batchStats, createTime, output}, done, response |
//!   error}`; a batch read directly (without the operation around it) is read
//!   too. States `BATCH_STATE_*`, and the `JOB_STATE_*` of Google's SDKs and
//!   samples: PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED.
//!   `batchStats` counts are int64 written as strings (numbers are read too).
//! - EXPIRED (48 hours pending or running) carries no results: every row of
//!   the batch goes again in a later shard.
//! - Creating is not idempotent and a batch keeps no metadata but its
//!   `displayName`: it is `shadow-batch-{run}-{shard}`, and a create whose
//!   answer was lost (a crash, a timeout, a 5xx) is followed by a listing of
//!   the account's batches for that name before the shard is created again.
//!   The journal holds the shard's file id (or, inline, its rows) before the
//!   create (its intent).
//! - Cancelling answers an empty object: the batch is read again after it.
//! - Uploaded files cannot be downloaded again (only generated ones can): a
//!   batch whose journal was lost has its rows learned from its results.
//!
//! Limits (Google's, "Batch Mode" guide and rate-limits page): input files up to 2 GB, 20 GB of files per project, 100 batches
//! running at once, a queue of input tokens per model that depends on the
//! tier; half the live price. Google states no limit of requests per batch:
//! shadow-batch cuts shards at 100,000 lines
//! ([`crate::provider::BatchLimits::GEMINI`]).
//!
//! Sources: ai.google.dev "Batch Mode" (the guide) and its API reference
//! (`models.batchGenerateContent`, `batches.get`, `batches.list`,
//! `batches.cancel`), and the field names of the official Python SDK
//! (googleapis/python-genai, `google/genai/batches.py`: `metadata.output`,
//! `responsesFile`, `inlinedResponses.inlinedResponses`, `operations`,
//! `nextPageToken`).

use serde_json::{json, Value};

use crate::http::HttpRequest;
use crate::time::parse_rfc3339;

use super::openai::{path_segment, short};
use super::{BatchObject, LineOutcome, ParseError, ProviderStatus, RequestCounts};

/// Where a run's Gemini batch calls go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Api {
    /// `{origin}/v1beta`: batches, files, models.
    pub(super) base: String,
    /// `{origin}/upload/v1beta`: uploads.
    pub(super) upload: String,
    /// `{origin}/download/v1beta`: result files.
    pub(super) download: String,
    /// `models/{model}` (or the resource name a model with a `/` gives).
    pub(super) model: String,
}

/// The API's roots for `base_url` (as the live provider takes it: up to its
/// version, `/v1beta` added when it names none) and `model`.
pub(super) fn api(base_url: &str, model: &str) -> Api {
    let base = base_url.trim().trim_end_matches('/');
    let base = base.split(":generateContent").next().unwrap_or(base);
    let base = match base.find("/models/") {
        Some(i) => &base[..i],
        None => base,
    };
    let versioned = base
        .rsplit('/')
        .next()
        .is_some_and(|segment| segment.starts_with("v1"));
    let base = if versioned {
        base.to_string()
    } else {
        format!("{base}/v1beta")
    };
    // `scheme://host[:port]` and the path after it (`/v1beta`).
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let path_at = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| i + after_scheme);
    let (origin, path) = base.split_at(path_at);
    let model = model.trim().trim_start_matches('/');
    let model = if model.contains('/') {
        model
            .split('/')
            .map(path_segment)
            .collect::<Vec<_>>()
            .join("/")
    } else {
        format!("models/{}", path_segment(model))
    };
    Api {
        upload: format!("{origin}/upload{path}"),
        download: format!("{origin}/download{path}"),
        base,
        model,
    }
}

/// The display name of a shard's batch, and of its input file:
/// `shadow-batch-{run}-{shard}`.
pub(super) fn display_name(run_id: &str, shard: u32) -> String {
    format!("shadow-batch-{run_id}-{shard}")
}

/// The run and shard a display name of shadow-batch's names.
fn run_and_shard(name: &str) -> Option<(String, u32)> {
    let rest = name.strip_prefix("shadow-batch-")?;
    let (run, shard) = rest.rsplit_once('-')?;
    Some((run.to_string(), shard.parse().ok()?))
}

/// A resource name the provider gave (`batches/x`, `files/y`) as a URL path
/// under the base: its collection as it is, the rest one encoded segment (no
/// `/` or `..` of the provider's can move the path elsewhere).
fn resource(name: &str, collection: &str) -> String {
    let id = name
        .strip_prefix(collection)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(name);
    let id = path_segment(id).replace('.', "%2E");
    format!("{collection}/{id}")
}

fn request(method: &'static str, url: String, body: Option<String>) -> HttpRequest {
    let headers = if body.is_some() {
        vec![("content-type".to_owned(), "application/json".to_owned())]
    } else {
        Vec::new()
    };
    HttpRequest {
        method,
        url,
        headers,
        body: body.unwrap_or_default(),
    }
}

/// One line of a shard's input file: `{"key": ID, "request": BODY}`, the body
/// exactly the live request's, ending in `\n`.
pub(super) fn input_line(key: &str, body: &str) -> String {
    let key = serde_json::to_string(key).expect("a string serializes");
    let mut line = String::with_capacity(body.len() + key.len() + 24);
    line.push_str("{\"key\":");
    line.push_str(&key);
    line.push_str(",\"request\":");
    line.push_str(body);
    line.push_str("}\n");
    line
}

/// A line of a shard's file rewritten as an inline request is this many
/// bytes longer: `{"key":K,"request":R}\n` (20 bytes around K and R, its
/// `\n` counted) becomes `{"request":R,"metadata":{"key":K}}` (32, no `\n`).
pub(super) const INLINE_LINE_GROWTH: u64 = 12;

/// Between two inline requests, and after the last.
pub(super) const INLINE_SEPARATOR: &str = ",";
pub(super) const INLINE_SUFFIX: &str = "]}}}}";

/// What goes before the inline requests of a create body: `{"batch":
/// {"displayName": NAME, "inputConfig": {"requests": {"requests": [`
/// (the shape of Google's "Batch Mode" guide, inline requests).
pub(super) fn inline_prefix(display_name: &str) -> String {
    let name = serde_json::to_string(display_name).expect("a string serializes");
    format!("{{\"batch\":{{\"displayName\":{name},\"inputConfig\":{{\"requests\":{{\"requests\":[")
}

/// A line of a shard's file as [`input_line`] writes it (`{"key":K,
/// "request":R}`, its `\n` optional) as an inline request:
/// `{"request":R,"metadata":{"key":K}}`, K and R byte for byte. `None` for a
/// line not of that form.
pub(super) fn inline_request(line: &str) -> Option<String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let rest = line.strip_prefix("{\"key\":")?;
    let mut keys = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    keys.next()?.ok()?;
    let (key, rest) = rest.split_at(keys.byte_offset());
    let request = rest.strip_prefix(",\"request\":")?.strip_suffix('}')?;
    // One JSON value, whole (not a line cut short).
    serde_json::from_str::<serde::de::IgnoredAny>(request).ok()?;
    let mut out = String::with_capacity(line.len() + INLINE_LINE_GROWTH as usize + 1);
    out.push_str("{\"request\":");
    out.push_str(request);
    out.push_str(",\"metadata\":{\"key\":");
    out.push_str(key);
    out.push_str("}}");
    Some(out)
}

/// The headers of the resumable upload's `start` call for a file of `bytes`
/// bytes; its body is [`upload_start_body`].
pub(super) fn upload_start_headers(bytes: u64) -> Vec<(String, String)> {
    vec![
        ("x-goog-upload-protocol".into(), "resumable".into()),
        ("x-goog-upload-command".into(), "start".into()),
        (
            "x-goog-upload-header-content-length".into(),
            bytes.to_string(),
        ),
        (
            "x-goog-upload-header-content-type".into(),
            "application/jsonl".into(),
        ),
        ("content-type".into(), "application/json".into()),
    ]
}

/// The body of the `start` call: the file's display name.
pub(super) fn upload_start_body(display_name: &str) -> String {
    json!({"file": {"display_name": display_name}}).to_string()
}

/// `{base}/{model}:batchGenerateContent`: where batches are created.
pub(super) fn create_url(api: &Api) -> String {
    format!("{}/{}:batchGenerateContent", api.base, api.model)
}

/// `POST {base}/{model}:batchGenerateContent` of an uploaded file.
pub(super) fn create_request(api: &Api, display_name: &str, file: &str) -> HttpRequest {
    let body = json!({"batch": {
        "displayName": display_name,
        "inputConfig": {"fileName": file},
    }});
    request("POST", create_url(api), Some(body.to_string()))
}

/// `GET {base}/batches/{id}`.
pub(super) fn poll_request(api: &Api, batch: &str) -> HttpRequest {
    request(
        "GET",
        format!("{}/{}", api.base, resource(batch, "batches")),
        None,
    )
}

/// `POST {base}/batches/{id}:cancel`.
pub(super) fn cancel_request(api: &Api, batch: &str) -> HttpRequest {
    request(
        "POST",
        format!("{}/{}:cancel", api.base, resource(batch, "batches")),
        Some("{}".into()),
    )
}

/// `GET {base}/batches?pageSize=100[&pageToken=T]`.
pub(super) fn list_request(api: &Api, token: Option<&str>) -> HttpRequest {
    request(
        "GET",
        super::openai::page_after(
            format!("{}/batches?pageSize=100", api.base),
            "pageToken",
            token,
        ),
        None,
    )
}

/// `GET {base}/files?pageSize=100[&pageToken=T]`.
pub(super) fn files_request(api: &Api, token: Option<&str>) -> HttpRequest {
    request(
        "GET",
        super::openai::page_after(
            format!("{}/files?pageSize=100", api.base),
            "pageToken",
            token,
        ),
        None,
    )
}

/// `DELETE {base}/files/{id}`.
pub(super) fn delete_file_request(api: &Api, file: &str) -> HttpRequest {
    request(
        "DELETE",
        format!("{}/{}", api.base, resource(file, "files")),
        None,
    )
}

/// `GET {download}/files/{id}:download?alt=media`.
pub(super) fn download_request(api: &Api, file: &str) -> HttpRequest {
    request(
        "GET",
        format!(
            "{}/{}:download?alt=media",
            api.download,
            resource(file, "files")
        ),
        None,
    )
}

/// The name of the file an upload's `finalize` answer describes
/// (`{"file": {"name": "files/..."}}`).
pub(super) fn parse_file_name(body: &str) -> Result<String, ParseError> {
    let v: Value = serde_json::from_str(body).map_err(ParseError::not_json("the file object"))?;
    v.pointer("/file/name")
        .or_else(|| v.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .ok_or(ParseError::Missing {
            what: "the file object",
            field: "name",
        })
}

/// Reads a page of `GET /files`: (name, display name, bytes) of each file, and
/// the token of the next page.
pub(super) fn parse_files(
    body: &str,
) -> Result<(Vec<super::openai::FileEntry>, Option<String>), ParseError> {
    let v: Value = serde_json::from_str(body).map_err(ParseError::not_json("the file list"))?;
    let files = v
        .get("files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some((
                f.get("name")?.as_str()?.to_string(),
                // Named as uploads of the other file dialects are.
                format!("{}.jsonl", f.get("displayName")?.as_str()?),
                count(f.get("sizeBytes")),
            ))
        })
        .collect();
    Ok((files, next_token(&v)))
}

fn next_token(v: &Value) -> Option<String> {
    v.get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// An int64 as Google writes it (a string), or a number.
fn count(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        Some(n) => n.as_u64().unwrap_or(0),
        None => 0,
    }
}

/// A state, `BATCH_STATE_*` or `JOB_STATE_*`: the run's status, and the word
/// reports show.
fn state_of(text: &str) -> (ProviderStatus, String) {
    let word = text
        .strip_prefix("BATCH_STATE_")
        .or_else(|| text.strip_prefix("JOB_STATE_"))
        .unwrap_or(text)
        .to_ascii_lowercase();
    let status = match word.as_str() {
        "pending" | "queued" => ProviderStatus::Validating,
        "running" => ProviderStatus::InProgress,
        "succeeded" => ProviderStatus::Completed,
        "failed" => ProviderStatus::Failed,
        "cancelling" => ProviderStatus::Cancelling,
        "cancelled" => ProviderStatus::Cancelled,
        "expired" => ProviderStatus::Expired,
        _ => ProviderStatus::Unknown,
    };
    (status, short(&word))
}

fn batch_of(v: &Value) -> Result<BatchObject, ParseError> {
    let id = v
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or(ParseError::Missing {
            what: "the batch",
            field: "name",
        })?
        .to_string();
    // An operation holds the batch in its metadata; a batch read directly is
    // the batch.
    let batch = v
        .get("metadata")
        .filter(|m| m.get("state").is_some() || m.get("displayName").is_some())
        .unwrap_or(v);
    let state = batch
        .get("state")
        .and_then(Value::as_str)
        .ok_or(ParseError::Missing {
            what: "the batch",
            field: "state",
        })?;
    let (status, status_text) = state_of(state);
    let counts = batch.get("batchStats").map(|s| {
        let total = count(s.get("requestCount"));
        RequestCounts {
            total,
            completed: count(s.get("successfulRequestCount")),
            failed: count(s.get("failedRequestCount")),
            not_run: 0,
        }
    });
    let output = batch.get("output").or_else(|| v.get("response"));
    // An inline batch's results: each entry `{metadata: {key}, response |
    // error}` becomes a results file's line (`{"key", ...}`), read as one.
    let inline_lines = output
        .and_then(|o| o.pointer("/inlinedResponses/inlinedResponses"))
        .and_then(Value::as_array)
        .map(|entries| entries.iter().map(inline_result_line).collect::<Vec<_>>());
    let inline_input = inline_lines.is_some() || batch.pointer("/inputConfig/requests").is_some();
    let output_file_id = output
        .and_then(|o| o.get("responsesFile"))
        .and_then(Value::as_str)
        .filter(|f| !f.is_empty())
        .map(str::to_string);
    let errors = v
        .get("error")
        .filter(|e| !e.is_null())
        .map(|e| {
            let code = e
                .get("status")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| e.get("code").map(|c| c.to_string()))
                .unwrap_or_else(|| "error".into());
            let message = e.get("message").and_then(Value::as_str).unwrap_or("");
            (code, short(message))
        })
        .into_iter()
        .collect();
    let named = batch
        .get("displayName")
        .and_then(Value::as_str)
        .and_then(run_and_shard);
    Ok(BatchObject {
        id,
        run: named.as_ref().map(|(run, _)| run.clone()),
        shard: named.map(|(_, shard)| shard),
        status,
        status_text,
        input_file_id: batch
            .pointer("/inputConfig/fileName")
            .and_then(Value::as_str)
            .map(str::to_string),
        output_file_id,
        error_file_id: None,
        counts,
        errors,
        inline_lines,
        inline_input,
        created_at: batch
            .get("createTime")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339),
    })
}

/// An entry of an inline batch's results as a line of a results file: its
/// `metadata.key` as `key` beside its `response` or `error`.
fn inline_result_line(entry: &Value) -> String {
    let mut line = serde_json::Map::new();
    if let Some(key) = entry.pointer("/metadata/key") {
        line.insert("key".into(), key.clone());
    }
    for field in ["response", "error"] {
        if let Some(v) = entry.get(field) {
            line.insert(field.into(), v.clone());
        }
    }
    Value::Object(line).to_string()
}

/// Reads a batch (the answer to create and get: an operation).
pub(super) fn parse_batch(body: &str) -> Result<BatchObject, ParseError> {
    let v: Value = serde_json::from_str(body).map_err(ParseError::not_json("the batch"))?;
    batch_of(&v)
}

/// Reads a page of `GET /batches`: `{operations, nextPageToken}`.
pub(super) fn parse_list(body: &str) -> Result<(Vec<BatchObject>, Option<String>), ParseError> {
    let v: Value = serde_json::from_str(body).map_err(ParseError::not_json("the batch list"))?;
    let batches = match v.get("operations").or_else(|| v.get("batches")) {
        Some(Value::Array(ops)) => ops.iter().filter_map(|b| batch_of(b).ok()).collect(),
        // An empty list may leave the field out.
        None => Vec::new(),
        Some(_) => {
            return Err(ParseError::Missing {
                what: "the batch list",
                field: "operations",
            })
        }
    };
    Ok((batches, next_token(&v)))
}

/// The HTTP status of a `google.rpc.Status` code: an HTTP status as it is,
/// a gRPC code as Google's HTTP mapping gives it.
fn http_status(code: u64) -> u16 {
    match code {
        100..=599 => code as u16,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        // 2 UNKNOWN, 13 INTERNAL, 15 DATA_LOSS, and any other.
        _ => 500,
    }
}

/// One line of a results file: `{"key", "response"}` or `{"key", "error":
/// {"code", "message", "status"}}`. A response is answered as a 200 with it
/// as the body (read by the live parser); an error as the HTTP status of its
/// code with Google's error body, so that it is judged as the same error of a
/// live run (a bad request final for its row, an overload retried).
pub(super) fn parse_line(line: &str) -> Result<(String, LineOutcome), ParseError> {
    let v: Value = serde_json::from_str(line).map_err(ParseError::line_not_json)?;
    let key = v
        .get("key")
        .or_else(|| v.pointer("/metadata/key"))
        .and_then(Value::as_str)
        .ok_or(ParseError::LineMissing("key"))?
        .to_string();
    if let Some(response) = v.get("response").filter(|r| !r.is_null()) {
        return Ok((
            key,
            LineOutcome::Answered {
                status: 200,
                body: response.to_string(),
            },
        ));
    }
    if let Some(error) = v.get("error").filter(|e| !e.is_null()) {
        let status = http_status(error.get("code").and_then(Value::as_u64).unwrap_or(500));
        let body = json!({"error": {
            "code": status,
            "message": error.get("message").cloned().unwrap_or(Value::Null),
            "status": error.get("status").cloned().unwrap_or(Value::Null),
        }});
        return Ok((
            key,
            LineOutcome::Answered {
                status,
                body: body.to_string(),
            },
        ));
    }
    Ok((
        key,
        LineOutcome::NotRun {
            why: "the line holds neither a response nor an error".into(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_requests() {
        for base in [
            "https://generativelanguage.googleapis.com/v1beta",
            "https://generativelanguage.googleapis.com/v1beta/",
            "https://generativelanguage.googleapis.com",
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
        ] {
            let a = api(base, "gemini-2.5-flash");
            assert_eq!(a.base, "https://generativelanguage.googleapis.com/v1beta", "{base}");
            assert_eq!(
                a.upload,
                "https://generativelanguage.googleapis.com/upload/v1beta"
            );
            assert_eq!(
                a.download,
                "https://generativelanguage.googleapis.com/download/v1beta"
            );
            assert_eq!(a.model, "models/gemini-2.5-flash");
        }
        let a = api("http://127.0.0.1:9", "tunedModels/x y");
        assert_eq!(a.base, "http://127.0.0.1:9/v1beta");
        assert_eq!(a.model, "tunedModels/x%20y");
        let a = api("http://127.0.0.1:9/v1beta", "gemini-2.5-flash");
        let c = create_request(&a, "shadow-batch-RUN-3", "files/abc");
        assert_eq!(
            c.url,
            "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:batchGenerateContent"
        );
        let body: Value = serde_json::from_str(&c.body).unwrap();
        assert_eq!(body["batch"]["displayName"], "shadow-batch-RUN-3");
        assert_eq!(body["batch"]["inputConfig"]["fileName"], "files/abc");
        assert_eq!(
            poll_request(&a, "batches/b1").url,
            "http://127.0.0.1:9/v1beta/batches/b1"
        );
        // A name the provider gave cannot move the path.
        assert_eq!(
            poll_request(&a, "batches/../files/x").url,
            "http://127.0.0.1:9/v1beta/batches/%2E%2E%2Ffiles%2Fx"
        );
        let cancel = cancel_request(&a, "batches/b1");
        assert_eq!(
            (cancel.method, cancel.url.as_str()),
            ("POST", "http://127.0.0.1:9/v1beta/batches/b1:cancel")
        );
        assert_eq!(
            list_request(&a, Some("tok/1")).url,
            "http://127.0.0.1:9/v1beta/batches?pageSize=100&pageToken=tok%2F1"
        );
        assert_eq!(
            download_request(&a, "files/out-1").url,
            "http://127.0.0.1:9/download/v1beta/files/out-1:download?alt=media"
        );
        assert_eq!(delete_file_request(&a, "files/f").method, "DELETE");
        let line = input_line("r7-a2", r#"{"contents":[]}"#);
        assert_eq!(line, "{\"key\":\"r7-a2\",\"request\":{\"contents\":[]}}\n");
        assert_eq!(
            run_and_shard(&display_name("2025-01-24T10-30-00-000Z", 12)),
            Some(("2025-01-24T10-30-00-000Z".into(), 12))
        );
        assert_eq!(run_and_shard("someone else's"), None);
        let start = upload_start_headers(1234);
        assert!(start.contains(&("x-goog-upload-command".into(), "start".into())));
        assert!(start.contains(&("x-goog-upload-header-content-length".into(), "1234".into())));
        assert_eq!(
            parse_file_name(r#"{"file":{"name":"files/abc","sizeBytes":"12"}}"#).unwrap(),
            "files/abc"
        );
        assert!(parse_file_name(r#"{"file":{}}"#).is_err());
    }

    /// The operation of Google's batch guide, in both spellings of its states,
    /// with int64 counts as strings.
    #[test]
    fn operations_states_and_stats_are_read() {
        let op = |state: &str| {
            format!(
                r#"{{"name":"batches/123","metadata":{{"@type":"type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
                "model":"models/gemini-2.5-flash","displayName":"shadow-batch-RUN-2","state":"{state}",
                "createTime":"2025-07-01T10:00:00.123456Z",
                "batchStats":{{"requestCount":"10","successfulRequestCount":"7","failedRequestCount":"2","pendingRequestCount":"1"}}}},
                "done":false}}"#
            )
        };
        for (state, status, text) in [
            ("BATCH_STATE_PENDING", ProviderStatus::Validating, "pending"),
            ("JOB_STATE_PENDING", ProviderStatus::Validating, "pending"),
            ("BATCH_STATE_RUNNING", ProviderStatus::InProgress, "running"),
            (
                "JOB_STATE_SUCCEEDED",
                ProviderStatus::Completed,
                "succeeded",
            ),
            ("BATCH_STATE_FAILED", ProviderStatus::Failed, "failed"),
            (
                "BATCH_STATE_CANCELLED",
                ProviderStatus::Cancelled,
                "cancelled",
            ),
            ("BATCH_STATE_EXPIRED", ProviderStatus::Expired, "expired"),
            (
                "BATCH_STATE_UNSPECIFIED",
                ProviderStatus::Unknown,
                "unspecified",
            ),
        ] {
            let b = parse_batch(&op(state)).unwrap();
            assert_eq!(
                (b.status, b.status_text.as_str()),
                (status, text),
                "{state}"
            );
        }
        let b = parse_batch(&op("BATCH_STATE_RUNNING")).unwrap();
        assert_eq!(b.id, "batches/123");
        assert_eq!((b.run.as_deref(), b.shard), (Some("RUN"), Some(2)));
        assert_eq!(
            b.counts,
            Some(RequestCounts {
                total: 10,
                completed: 7,
                failed: 2,
                not_run: 0
            })
        );
        assert_eq!(b.created_at, parse_rfc3339("2025-07-01T10:00:00.123Z"));
        // Done: the results file, in the metadata's output or the response.
        let done = r#"{"name":"batches/9","metadata":{"state":"BATCH_STATE_SUCCEEDED",
            "output":{"responsesFile":"files/out-9"}},"done":true,
            "response":{"@type":"x","responsesFile":"files/out-9"}}"#;
        assert_eq!(
            parse_batch(done).unwrap().output_file_id.as_deref(),
            Some("files/out-9")
        );
        let response_only = r#"{"name":"batches/9","metadata":{"state":"JOB_STATE_SUCCEEDED"},"done":true,"response":{"responsesFile":"files/o"}}"#;
        assert_eq!(
            parse_batch(response_only)
                .unwrap()
                .output_file_id
                .as_deref(),
            Some("files/o")
        );
        // A batch read directly, numbers as numbers.
        let direct = parse_batch(
            r#"{"name":"batches/d","state":"BATCH_STATE_RUNNING","batchStats":{"requestCount":4}}"#,
        )
        .unwrap();
        assert_eq!(direct.counts.unwrap().total, 4);
        let failed = parse_batch(
            r#"{"name":"batches/f","metadata":{"state":"BATCH_STATE_FAILED"},"done":true,
                "error":{"code":3,"message":"Invalid request at line 1","status":"INVALID_ARGUMENT"}}"#,
        )
        .unwrap();
        assert_eq!(
            failed.errors,
            [(
                "INVALID_ARGUMENT".to_string(),
                "Invalid request at line 1".to_string()
            )]
        );
        assert!(parse_batch(r#"{"metadata":{"state":"X"}}"#).is_err());
        assert!(parse_batch(r#"{"name":"batches/x"}"#).is_err());
        assert!(parse_batch("<html>").is_err());

        let (list, next) = parse_list(&format!(
            r#"{{"operations":[{},{{"bad":1}}],"nextPageToken":"p2"}}"#,
            op("BATCH_STATE_RUNNING")
        ))
        .unwrap();
        assert_eq!((list.len(), next.as_deref()), (1, Some("p2")));
        assert_eq!(parse_list("{}").unwrap(), (Vec::new(), None));
        let (files, next) = parse_files(
            r#"{"files":[{"name":"files/a","displayName":"shadow-batch-RUN-1","sizeBytes":"120"}]}"#,
        )
        .unwrap();
        assert_eq!(
            files,
            [("files/a".into(), "shadow-batch-RUN-1.jsonl".into(), 120)]
        );
        assert_eq!(next, None);
    }

    #[test]
    fn result_lines_answers_and_errors() {
        let (key, o) = parse_line(
            r#"{"key":"r1-a1","response":{"candidates":[{"content":{"parts":[{"text":"{\"label\":\"cat\"}"}]}}]}}"#,
        )
        .unwrap();
        assert_eq!(key, "r1-a1");
        assert!(
            matches!(&o, LineOutcome::Answered { status: 200, body } if body.contains("candidates")),
            "{o:?}"
        );
        let error = |code: &str, status: &str| {
            parse_line(&format!(
                r#"{{"key":"r2-a1","error":{{"code":{code},"message":"m","status":"{status}"}}}}"#
            ))
            .unwrap()
            .1
        };
        for (code, status, http) in [
            ("3", "INVALID_ARGUMENT", 400),
            ("8", "RESOURCE_EXHAUSTED", 429),
            ("13", "INTERNAL", 500),
            ("14", "UNAVAILABLE", 503),
            ("400", "INVALID_ARGUMENT", 400),
            ("503", "UNAVAILABLE", 503),
        ] {
            let LineOutcome::Answered { status: got, body } = error(code, status) else {
                panic!("{code}")
            };
            assert_eq!(got, http, "{code}");
            let api = crate::provider::parse_api_error(&body).unwrap();
            assert_eq!(api.message, "m");
        }
        assert!(matches!(
            parse_line(r#"{"key":"r3-a1"}"#).unwrap().1,
            LineOutcome::NotRun { .. }
        ));
        assert!(parse_line(r#"{"response":{}}"#).is_err());
        assert!(parse_line("{").is_err());
    }
    /// A shard file's line becomes an inline request of Google's shape
    /// (ai.google.dev/gemini-api/docs/batch-mode, "Inline requests";
    /// ai.google.dev/api/batch-mode, `InlinedRequest`: `request`, `metadata`),
    /// its key and request byte for byte, 12 bytes longer than the line with its
    /// `\n`.
    #[test]
    fn a_file_line_becomes_an_inline_request() {
        let request = r#"{"contents":[{"role":"user","parts":[{"text":"a \"quoted\" } brace"}]}]}"#;
        for key in ["r7-a2", "odd \"key\" ,\"request\":"] {
            let line = input_line(key, request);
            let inline = inline_request(&line).expect("a keyed line");
            assert_eq!(
                inline.len() as u64,
                line.len() as u64 + INLINE_LINE_GROWTH,
                "{inline}"
            );
            let v: Value = serde_json::from_str(&inline).unwrap();
            assert_eq!(v["metadata"]["key"], key);
            assert_eq!(
                v["request"],
                serde_json::from_str::<Value>(request).unwrap()
            );
            assert_eq!(v.as_object().unwrap().len(), 2, "request and metadata only");
            assert!(inline.starts_with("{\"request\":"), "{inline}");
            // Without its newline too.
            assert_eq!(inline_request(line.trim_end()).as_deref(), Some(&*inline));
        }
        for bad in [
            "",
            "{\"custom_id\":\"r1-a1\",\"request\":{}}",
            "{\"key\":\"r1-a1\",\"body\":{}}",
            "{\"key\":7,\"request\":{}}",
            "{\"key\":\"r1-a1\",\"request\":{}",
        ] {
            assert_eq!(inline_request(bad), None, "{bad}");
        }
    }

    /// A shard's inline create body (`{"batch": {"displayName",
    /// "inputConfig": {"requests": {"requests": [...]}}}}`, the guide's REST
    /// example) is valid JSON of exactly the length the order says, its
    /// requests in the file's order.
    #[test]
    fn an_inline_create_body_is_googles_shape_and_its_stated_length() {
        let file: String = (0..5)
            .map(|n| {
                input_line(
                    &format!("r{n}-a1"),
                    &format!(
                        r#"{{"contents":[{{"parts":[{{"text":"{}"}}]}}]}}"#,
                        "x".repeat(n * 7)
                    ),
                )
            })
            .collect();
        let order = crate::batch::SubmitOrder {
            call: crate::batch::CallId(3),
            shard: 2,
            url: create_url(&api("http://127.0.0.1:9", "gemini-2.5-flash")),
            headers: Vec::new(),
            prefix: inline_prefix(&display_name("RUN", 2)),
            separator: INLINE_SEPARATOR,
            suffix: INLINE_SUFFIX,
            lines: 5,
            bytes: file.len() as u64,
            rekeyed: true,
        };
        let body = order.body(&file).unwrap();
        assert_eq!(body.len() as u64, order.body_len());
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["batch"]["displayName"], "shadow-batch-RUN-2");
        let requests = v.pointer("/batch/inputConfig/requests/requests").unwrap();
        let requests = requests.as_array().unwrap();
        assert_eq!(requests.len(), 5);
        for (n, r) in requests.iter().enumerate() {
            assert_eq!(r["metadata"]["key"], format!("r{n}-a1"));
            assert_eq!(
                r.pointer("/request/contents/0/parts/0/text").unwrap(),
                &"x".repeat(n * 7)
            );
        }
        assert!(order.body(&file[1..]).is_err(), "a file of another size");
        let mut broken = file.clone();
        broken.replace_range(0..7, "{\"kez\":");
        assert!(order.body(&broken).unwrap_err().contains("line 1"));
    }

    /// A finished inline batch as Google's API reference describes it
    /// (ai.google.dev/api/batch-mode: the operation's `response` is a
    /// `GenerateContentBatchOutput` whose `inlinedResponses.inlinedResponses[]`
    /// are `InlinedResponse`s, `metadata` with `response` or `error`, in the
    /// order of the requests): its entries are read as results file lines, and
    /// each is judged exactly as the same entry in a file.
    #[test]
    fn inline_results_are_read_from_the_operation_as_file_lines() {
        let answer = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"{\"label\":\"cat\"}"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":270,"candidatesTokenCount":6,"totalTokenCount":276}}"#;
        let error =
            r#"{"code":8,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}"#;
        let op = format!(
            r#"{{"name":"batches/123456","metadata":{{"@type":"type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model":"models/gemini-2.5-flash","displayName":"shadow-batch-RUN-1","state":"BATCH_STATE_SUCCEEDED",
            "createTime":"2025-07-01T10:00:00Z","batchStats":{{"requestCount":"3","successfulRequestCount":"2","failedRequestCount":"1"}}}},
            "done":true,"response":{{"@type":"type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
            "inlinedResponses":{{"inlinedResponses":[
              {{"metadata":{{"key":"r0-a1"}},"response":{answer}}},
              {{"metadata":{{"key":"r1-a1"}},"error":{error}}},
              {{"metadata":{{"key":"r2-a1"}}}}]}}}}}}"#
        );
        let b = parse_batch(&op).unwrap();
        assert_eq!(b.status, ProviderStatus::Completed);
        assert!(b.inline_input);
        assert_eq!(b.output_file_id, None);
        let lines = b.inline_lines.expect("inline results");
        assert_eq!(lines.len(), 3);
        let file_lines = [
            format!(r#"{{"key":"r0-a1","response":{answer}}}"#),
            format!(r#"{{"key":"r1-a1","error":{error}}}"#),
            r#"{"key":"r2-a1"}"#.to_string(),
        ];
        for (inline, file) in lines.iter().zip(&file_lines) {
            assert_eq!(
                parse_line(inline).unwrap(),
                parse_line(file).unwrap(),
                "{inline}"
            );
        }
        let (key, outcome) = parse_line(&lines[0]).unwrap();
        assert_eq!(key, "r0-a1");
        let LineOutcome::Answered { status: 200, body } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            serde_json::from_str::<Value>(answer).unwrap()
        );
        assert!(matches!(
            parse_line(&lines[1]).unwrap().1,
            LineOutcome::Answered { status: 429, .. }
        ));
        assert!(matches!(
            parse_line(&lines[2]).unwrap().1,
            LineOutcome::NotRun { .. }
        ));
        // In the batch's own `output` (a batch read directly) too.
        let direct = parse_batch(&format!(
            r#"{{"name":"batches/d","state":"BATCH_STATE_SUCCEEDED","output":{{"inlinedResponses":{{"inlinedResponses":[{{"metadata":{{"key":"r0-a1"}},"response":{answer}}}]}}}}}}"#
        ))
        .unwrap();
        assert_eq!(direct.inline_lines.map(|l| l.len()), Some(1));
        // A file batch has none; a running inline batch shows its inline input.
        let file = parse_batch(r#"{"name":"batches/9","metadata":{"state":"BATCH_STATE_SUCCEEDED"},"done":true,"response":{"responsesFile":"files/o"}}"#).unwrap();
        assert_eq!((file.inline_lines, file.inline_input), (None, false));
        let running = parse_batch(r#"{"name":"batches/r","metadata":{"state":"BATCH_STATE_RUNNING","inputConfig":{"requests":{"requests":[]}}}}"#).unwrap();
        assert!(running.inline_input && running.inline_lines.is_none());
    }
}
