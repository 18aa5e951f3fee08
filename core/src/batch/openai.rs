//! The OpenAI Batch API dialect (also spoken by OpenAI-compatible servers that
//! implement `/v1/files` and `/v1/batches`): the requests that create, read,
//! list and cancel a batch, what a batch object says, and what each line of its
//! output and error files means. Pure functions.

use serde_json::{json, Value};

use crate::http::HttpRequest;

use super::dialect::{required_text, result_line, ListPage};
use super::{BatchObject, LineOutcome, ParseError, ProviderStatus, RequestCounts};

/// The endpoint every line of a shard targets.
pub(super) const ENDPOINT: &str = "/v1/chat/completions";

/// Longest provider text kept in an error, in characters.
const MAX_DETAIL_CHARS: usize = 300;

/// `base_url` without a trailing `/` or a `/chat/completions` tail.
pub(super) fn api_base(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    base.strip_suffix("/chat/completions")
        .unwrap_or(base)
        .trim_end_matches('/')
        .to_string()
}

pub(super) fn get(url: String) -> HttpRequest {
    HttpRequest {
        method: "GET",
        url,
        headers: Vec::new(),
        body: String::new(),
    }
}

pub(super) fn post(url: String, body: String) -> HttpRequest {
    HttpRequest {
        method: "POST",
        url,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body,
    }
}

/// `POST /batches` for an uploaded file whose lines target `endpoint`, its
/// metadata naming the run and shard.
pub(super) fn create_request(
    base: &str,
    endpoint: &str,
    file_id: &str,
    run_id: &str,
    shard: u32,
) -> HttpRequest {
    let body = json!({
        "input_file_id": file_id,
        "endpoint": endpoint,
        "completion_window": "24h",
        "metadata": {
            "shadow_batch_run": run_id,
            "shadow_batch_shard": shard.to_string(),
        },
    });
    post(format!("{base}/batches"), body.to_string())
}

/// `GET /batches/{id}`.
pub(super) fn poll_request(base: &str, batch_id: &str) -> HttpRequest {
    get(format!("{base}/batches/{}", path_segment(batch_id)))
}

/// `POST /batches/{id}/cancel`.
pub(super) fn cancel_request(base: &str, batch_id: &str) -> HttpRequest {
    post(
        format!("{base}/batches/{}/cancel", path_segment(batch_id)),
        String::new(),
    )
}

/// `GET /batches?limit=100[&after=ID]`: newest first.
pub(super) fn list_request(base: &str, after: Option<&str>) -> HttpRequest {
    get(page_after(
        format!("{base}/batches?limit=100"),
        "after",
        after,
    ))
}

/// `url` that continues a listing after `after`, when there is one:
/// `&{param}=ID`.
pub(super) fn page_after(mut url: String, param: &str, after: Option<&str>) -> String {
    if let Some(after) = after {
        url.push('&');
        url.push_str(param);
        url.push('=');
        url.push_str(&path_segment(after));
    }
    url
}

/// `GET /files?purpose=batch&limit=10000[&after=ID]`: the account's batch
/// files, to find an upload of the run's that no journal names.
pub(super) fn files_request(base: &str, after: Option<&str>) -> HttpRequest {
    get(page_after(
        format!("{base}/files?purpose=batch&limit=10000"),
        "after",
        after,
    ))
}

/// `DELETE /files/{id}`.
pub(super) fn delete_file_request(base: &str, file_id: &str) -> HttpRequest {
    HttpRequest {
        method: "DELETE",
        url: format!("{base}/files/{}", path_segment(file_id)),
        headers: Vec::new(),
        body: String::new(),
    }
}

/// A file the provider holds: (id, file name, bytes).
pub(super) type FileEntry = (String, String, u64);

/// Reads a page of `GET /files`: its files, and the id to continue after when
/// there are more.
pub(super) fn parse_files(body: &str) -> Result<(Vec<FileEntry>, Option<String>), ParseError> {
    let page = ListPage::read(body, "the file list")?;
    let files: Vec<FileEntry> = page
        .data
        .iter()
        .filter_map(|f| {
            Some((
                f.get("id")?.as_str()?.to_string(),
                f.get("filename")?.as_str()?.to_string(),
                f.get("bytes").and_then(Value::as_u64).unwrap_or(0),
            ))
        })
        .collect();
    let last = page.last_id.or_else(|| files.last().map(|f| f.0.clone()));
    Ok((files, last.filter(|_| page.more)))
}

/// `GET /files/{id}/content`.
pub(super) fn download_request(base: &str, file_id: &str) -> HttpRequest {
    get(format!("{base}/files/{}/content", path_segment(file_id)))
}

/// An id from the provider, made safe to put in a URL path: anything but
/// letters, digits, `-`, `_` and `.` is percent-encoded.
pub(super) fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One line of a shard's input file: `{"custom_id", "method", "url", "body"}`,
/// `url` the batch's `endpoint`, the body exactly as a live request would
/// send it, ending in `\n`.
pub(super) fn input_line(custom_id: &str, endpoint: &str, body: &str) -> String {
    custom_id_line(
        custom_id,
        &[",\"method\":\"POST\",\"url\":\"", endpoint, "\",\"body\":"],
        body,
    )
}

/// `{"custom_id":ID` then `fields` then `body` then `}\n`: one request of a
/// batch in either dialect, the body written as it is (it is already JSON)
/// rather than parsed and written again.
pub(super) fn custom_id_line(custom_id: &str, fields: &[&str], body: &str) -> String {
    let id = serde_json::to_string(custom_id).expect("a string serializes");
    let fields_len: usize = fields.iter().map(|f| f.len()).sum();
    let mut line = String::with_capacity(body.len() + id.len() + fields_len + 16);
    line.push_str("{\"custom_id\":");
    line.push_str(&id);
    for field in fields {
        line.push_str(field);
    }
    line.push_str(body);
    line.push_str("}\n");
    line
}

pub(super) fn short(text: &str) -> String {
    let mut t: String = text.chars().take(MAX_DETAIL_CHARS).collect();
    if text.chars().count() > MAX_DETAIL_CHARS {
        t.push('…');
    }
    t
}

/// The status a batch's `status` names, whatever its case (Azure's samples
/// print `Validating`).
fn status_of(text: &str) -> ProviderStatus {
    match text.to_ascii_lowercase().as_str() {
        "validating" => ProviderStatus::Validating,
        "in_progress" => ProviderStatus::InProgress,
        "finalizing" => ProviderStatus::Finalizing,
        "completed" => ProviderStatus::Completed,
        "expired" => ProviderStatus::Expired,
        "cancelling" => ProviderStatus::Cancelling,
        "cancelled" => ProviderStatus::Cancelled,
        "failed" => ProviderStatus::Failed,
        _ => ProviderStatus::Unknown,
    }
}

fn batch_of(v: &Value) -> Result<BatchObject, ParseError> {
    let text = |field: &str| v.get(field).and_then(Value::as_str).map(str::to_string);
    let id = required_text(v, "the batch object", "id")?;
    // Lower case, as the run and its journal compare it.
    let status_text = required_text(v, "the batch object", "status")?.to_ascii_lowercase();
    let counts = v.get("request_counts").map(|c| {
        let n = |f: &str| c.get(f).and_then(Value::as_u64).unwrap_or(0);
        RequestCounts {
            total: n("total"),
            completed: n("completed"),
            failed: n("failed"),
            not_run: 0,
        }
    });
    let errors = v
        .pointer("/errors/data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let code = e.get("code").and_then(Value::as_str).unwrap_or("error");
            let message = e.get("message").and_then(Value::as_str).unwrap_or("");
            let line = e
                .get("line")
                .and_then(Value::as_u64)
                .map_or(String::new(), |l| format!(" (line {l})"));
            (code.to_string(), short(&format!("{message}{line}")))
        })
        .collect();
    let metadata = |field: &str| {
        v.pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(BatchObject {
        id,
        run: metadata("shadow_batch_run"),
        shard: metadata("shadow_batch_shard").and_then(|s| s.parse().ok()),
        status: status_of(&status_text),
        status_text: short(&status_text),
        input_file_id: text("input_file_id"),
        output_file_id: text("output_file_id"),
        error_file_id: text("error_file_id"),
        counts,
        errors,
        // Unix seconds (OpenAI), or ISO 8601 (some Azure API versions).
        inline_lines: None,
        inline_input: false,
        created_at: match v.get("created_at") {
            Some(Value::String(iso)) => crate::time::parse_rfc3339(iso),
            other => other
                .and_then(Value::as_u64)
                .map(|secs| crate::time::Millis(secs.saturating_mul(1000))),
        },
    })
}

/// Reads a batch object (the answer to create, retrieve and cancel).
pub(super) fn parse_batch(body: &str) -> Result<BatchObject, ParseError> {
    let v: Value = serde_json::from_str(body).map_err(ParseError::not_json("the batch object"))?;
    batch_of(&v)
}

/// Reads a page of `GET /batches`: its batches, and the id to continue after
/// when there are more.
pub(super) fn parse_list(body: &str) -> Result<(Vec<BatchObject>, Option<String>), ParseError> {
    super::parse_list_page(body, batch_of)
}

/// The `id` of an uploaded file (`POST /files`).
pub(super) fn parse_file_id(body: &str) -> Result<String, ParseError> {
    let v: Value = serde_json::from_str(body).map_err(ParseError::not_json("the file object"))?;
    v.get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or(ParseError::Missing {
            what: "the file object",
            field: "id",
        })
}

/// One line of an output or error file:
/// `{"id", "custom_id", "response": {"status_code", "body"} | null, "error": {"code", "message"} | null}`.
pub(super) fn parse_line(line: &str) -> Result<(String, LineOutcome), ParseError> {
    let (v, custom_id) = result_line(line)?;
    if let Some(response) = v.get("response").filter(|r| !r.is_null()) {
        let status = response
            .get("status_code")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .ok_or(ParseError::Missing {
                what: "the response",
                field: "status_code",
            })?;
        let body = match response.get("body") {
            Some(Value::String(s)) => s.clone(),
            Some(b) => b.to_string(),
            None => String::new(),
        };
        return Ok((custom_id, LineOutcome::Answered { status, body }));
    }
    let error = v.get("error").filter(|e| !e.is_null());
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("no_response");
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("the line holds neither a response nor an error");
    Ok((
        custom_id,
        LineOutcome::NotRun {
            why: short(&format!("{message} ({code})")),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_answers_are_typed_and_say_what_is_missing() {
        assert_eq!(
            parse_batch("{}").unwrap_err(),
            ParseError::Missing {
                what: "the batch object",
                field: "id"
            }
        );
        assert_eq!(
            parse_file_id(r#"{"id":""}"#).unwrap_err().to_string(),
            "the file object has no \"id\""
        );
        assert!(parse_batch("nope")
            .unwrap_err()
            .to_string()
            .starts_with("the batch object is not JSON: "));
        assert_eq!(
            parse_line(r#"{"id":"x"}"#).unwrap_err().to_string(),
            "no \"custom_id\""
        );
        assert!(matches!(parse_line("{"), Err(ParseError::LineNotJson(_))));
    }

    #[test]
    fn input_lines_carry_the_live_body_unchanged() {
        let body = r#"{"model":"m","messages":[]}"#;
        let line = input_line("r7-a2", ENDPOINT, body);
        assert!(line.ends_with("}\n"));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["custom_id"], "r7-a2");
        assert_eq!(v["method"], "POST");
        assert_eq!(v["url"], "/v1/chat/completions");
        assert_eq!(v["body"]["model"], "m");
        assert!(
            line.contains(&format!(",\"body\":{body}}}")),
            "verbatim: {line}"
        );
    }

    #[test]
    fn the_api_base_and_ids_in_paths() {
        assert_eq!(api_base("http://x.test/v1/"), "http://x.test/v1");
        assert_eq!(
            api_base("http://x.test/v1/chat/completions"),
            "http://x.test/v1"
        );
        let r = poll_request("http://x.test/v1", "batch_1/../x?y");
        assert_eq!(r.url, "http://x.test/v1/batches/batch_1%2F..%2Fx%3Fy");
        assert_eq!(r.method, "GET");
        let c = create_request("http://x.test/v1", ENDPOINT, "file-1", "RUN", 3);
        let v: Value = serde_json::from_str(&c.body).unwrap();
        assert_eq!(v["completion_window"], "24h");
        assert_eq!(v["endpoint"], ENDPOINT);
        assert_eq!(v["metadata"]["shadow_batch_shard"], "3");
        assert_eq!(
            list_request("b", Some("batch_9")).url,
            "b/batches?limit=100&after=batch_9"
        );
    }

    #[test]
    fn batch_objects_and_lines_are_read() {
        let b = parse_batch(
            r#"{"id":"batch_1","status":"failed","input_file_id":"file-1","output_file_id":null,
                "request_counts":{"total":3,"completed":0,"failed":0},
                "errors":{"data":[{"code":"invalid_request","message":"bad model","line":2}]}}"#,
        )
        .unwrap();
        assert_eq!(b.status, ProviderStatus::Failed);
        assert_eq!(b.output_file_id, None);
        assert_eq!(b.input_file_id.as_deref(), Some("file-1"));
        assert_eq!(
            b.errors,
            [(
                "invalid_request".to_string(),
                "bad model (line 2)".to_string()
            )]
        );
        assert!(parse_batch("{}").is_err());
        assert!(parse_batch("nope").is_err());
        // Azure's samples: a capitalised status, an ISO 8601 time.
        let azure = parse_batch(
            r#"{"id":"batch_a","status":"Validating","created_at":"2024-07-19T21:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(azure.status, ProviderStatus::Validating);
        assert_eq!(azure.status_text, "validating");
        assert_eq!(
            azure.created_at,
            crate::time::parse_rfc3339("2024-07-19T21:00:00Z")
        );
        for (text, status) in [
            ("Completed", ProviderStatus::Completed),
            ("EXPIRED", ProviderStatus::Expired),
            ("Cancelled", ProviderStatus::Cancelled),
            ("Failed", ProviderStatus::Failed),
        ] {
            let b = parse_batch(&format!(r#"{{"id":"b","status":"{text}"}}"#)).unwrap();
            assert_eq!(
                (b.status, b.status_text),
                (status, text.to_ascii_lowercase())
            );
        }

        let (id, outcome) = parse_line(
            r#"{"id":"x","custom_id":"r1-a1","response":{"status_code":200,"body":{"choices":[]}},"error":null}"#,
        )
        .unwrap();
        assert_eq!(id, "r1-a1");
        assert_eq!(
            outcome,
            LineOutcome::Answered {
                status: 200,
                body: r#"{"choices":[]}"#.into()
            }
        );
        let (_, outcome) = parse_line(
            r#"{"custom_id":"r2-a1","response":null,"error":{"code":"batch_expired","message":"This request could not be executed before the completion window expired."}}"#,
        )
        .unwrap();
        assert!(
            matches!(&outcome, LineOutcome::NotRun { why } if why.contains("batch_expired")),
            "{outcome:?}"
        );
        assert!(parse_line(r#"{"response":null}"#).is_err());
        assert!(parse_line("{").is_err());

        let (list, after) = parse_list(
            r#"{"data":[{"id":"batch_2","status":"completed","input_file_id":"file-2"}],"has_more":true,"last_id":"batch_2"}"#,
        )
        .unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(after.as_deref(), Some("batch_2"));
        assert_eq!(parse_file_id(r#"{"id":"file-9"}"#).unwrap(), "file-9");
        assert!(parse_file_id(r#"{"id":""}"#).is_err());
    }
}
