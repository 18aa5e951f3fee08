//! Anthropic's Message Batches dialect: no file upload (a batch is created with
//! its requests inline, `POST /v1/messages/batches` `{"requests": [{"custom_id",
//! "params"}, ...]}`), `processing_status` (`in_progress`, `canceling`, `ended`),
//! `request_counts {processing, succeeded, errored, canceled, expired}`, RFC 3339
//! times, and results as JSONL with one `result` per request (`succeeded`,
//! `errored`, `canceled`, `expired`). Pure functions.
//!
//! Anthropic's batches carry no metadata and cannot be looked up by their
//! content, so the batch created just before a crash is found by what the
//! provider journal recorded before the create call: the number of requests,
//! and a time window from the moment the create was about to be sent (see
//! [`super::BatchRun`]'s docs). The `custom_id`s carry the run's id so that the
//! results of a batch that is not this run's match none of its rows.

use serde_json::Value;

use crate::http::HttpRequest;
use crate::provider::ANTHROPIC_VERSION;
use crate::time::{parse_rfc3339, Millis};

use super::dialect::{required_text, result_line};
use super::openai::{custom_id_line, page_after, path_segment, short};
use super::{BatchObject, LineOutcome, ParseError, ProviderStatus, RequestCounts};

/// What comes before the first request of a create body.
pub(super) const BODY_PREFIX: &str = "{\"requests\":[";
/// What comes between two requests.
pub(super) const BODY_SEPARATOR: &str = ",";
/// What comes after the last request.
pub(super) const BODY_SUFFIX: &str = "]}";
/// The longest a run tag in a `custom_id` may be (Anthropic allows 64
/// characters of `[A-Za-z0-9_-]` in all).
const MAX_TAG_CHARS: usize = 24;

/// The API's root: `base_url` without a trailing `/`, `/v1/messages` or `/v1`
/// (the Messages provider takes all three forms).
pub(super) fn api_base(base_url: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    let base = base.strip_suffix("/v1/messages").unwrap_or(base);
    let base = base.trim_end_matches('/');
    base.strip_suffix("/v1")
        .unwrap_or(base)
        .trim_end_matches('/')
        .to_string()
}

/// The run's tag in `custom_id`s: its id with anything but letters, digits, `-`
/// and `_` left out, at most 24 characters (a run id's length; `run` when nothing is left).
pub(super) fn run_tag(run_id: &str) -> String {
    let tag: String = run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(MAX_TAG_CHARS)
        .collect();
    if tag.is_empty() {
        "run".to_string()
    } else {
        tag
    }
}

/// `{tag}-r{row}-a{attempt}`.
pub(super) fn custom_id(tag: &str, row: usize, attempt: u32) -> String {
    format!("{tag}-r{row}-a{attempt}")
}

fn headers(json_body: bool) -> Vec<(String, String)> {
    let mut h = vec![("anthropic-version".to_owned(), ANTHROPIC_VERSION.to_owned())];
    if json_body {
        h.push(("content-type".to_owned(), "application/json".to_owned()));
    }
    h
}

fn get(url: String) -> HttpRequest {
    HttpRequest {
        method: "GET",
        url,
        headers: headers(false),
        body: String::new(),
    }
}

/// Where batches are created and listed: `{base}/v1/messages/batches`.
pub(super) fn batches_url(base: &str) -> String {
    format!("{base}/v1/messages/batches")
}

/// The headers of the create call (its body is the shard's requests, framed by
/// [`BODY_PREFIX`], [`BODY_SEPARATOR`] and [`BODY_SUFFIX`]).
pub(super) fn create_headers() -> Vec<(String, String)> {
    headers(true)
}

/// `GET /v1/messages/batches/{id}`.
pub(super) fn poll_request(base: &str, batch_id: &str) -> HttpRequest {
    get(format!("{}/{}", batches_url(base), path_segment(batch_id)))
}

/// `POST /v1/messages/batches/{id}/cancel`.
pub(super) fn cancel_request(base: &str, batch_id: &str) -> HttpRequest {
    HttpRequest {
        method: "POST",
        url: format!("{}/{}/cancel", batches_url(base), path_segment(batch_id)),
        headers: headers(false),
        body: String::new(),
    }
}

/// `GET /v1/messages/batches?limit=100[&after_id=ID]`: newest first.
pub(super) fn list_request(base: &str, after: Option<&str>) -> HttpRequest {
    get(page_after(
        format!("{}?limit=100", batches_url(base)),
        "after_id",
        after,
    ))
}

/// `GET /v1/messages/batches/{id}/results`: the documented results endpoint,
/// built from the API's root rather than taken from the batch's `results_url`,
/// so that the key is only ever sent to the host the run was pointed at.
pub(super) fn results_request(base: &str, batch_id: &str) -> HttpRequest {
    get(format!(
        "{}/{}/results",
        batches_url(base),
        path_segment(batch_id)
    ))
}

/// One request of a create body: `{"custom_id", "params"}`, the params exactly
/// the body a live request sends, ending in `\n`.
pub(super) fn request_entry(custom_id: &str, body: &str) -> String {
    custom_id_line(custom_id, &[",\"params\":"], body)
}

fn batch_of(v: &Value) -> Result<BatchObject, ParseError> {
    let text = |field: &str| v.get(field).and_then(Value::as_str).map(str::to_string);
    let id = required_text(v, "the message batch", "id")?;
    let processing = required_text(v, "the message batch", "processing_status")?;
    let cancelled = v.get("cancel_initiated_at").is_some_and(|c| !c.is_null());
    let (status, status_text) = match processing.as_str() {
        "in_progress" => (ProviderStatus::InProgress, "in_progress".to_string()),
        "canceling" => (ProviderStatus::Cancelling, "canceling".to_string()),
        "ended" if cancelled => (ProviderStatus::Cancelled, "canceled".to_string()),
        "ended" => (ProviderStatus::Completed, "ended".to_string()),
        other => (ProviderStatus::Unknown, short(other)),
    };
    let counts = v.get("request_counts").map(|c| {
        let n = |f: &str| c.get(f).and_then(Value::as_u64).unwrap_or(0);
        let (processing, succeeded, errored) = (n("processing"), n("succeeded"), n("errored"));
        let not_run = n("canceled").saturating_add(n("expired"));
        RequestCounts {
            total: processing
                .saturating_add(succeeded)
                .saturating_add(errored)
                .saturating_add(not_run),
            completed: succeeded,
            failed: errored,
            not_run,
        }
    });
    Ok(BatchObject {
        id,
        run: None,
        shard: None,
        status,
        status_text,
        input_file_id: None,
        output_file_id: None,
        error_file_id: None,
        counts,
        errors: Vec::new(),
        inline_lines: None,
        inline_input: false,
        created_at: text("created_at").as_deref().and_then(parse_rfc3339),
    })
}

/// Reads a message batch (the answer to create, retrieve and cancel).
pub(super) fn parse_batch(body: &str) -> Result<BatchObject, ParseError> {
    let v: Value = serde_json::from_str(body).map_err(ParseError::not_json("the message batch"))?;
    batch_of(&v)
}

/// Reads a page of `GET /v1/messages/batches`: its batches, and the id to
/// continue after when there are more.
pub(super) fn parse_list(body: &str) -> Result<(Vec<BatchObject>, Option<String>), ParseError> {
    super::parse_list_page(body, batch_of)
}

/// The HTTP status a live request would have got for an error of this type
/// (Anthropic's errors page): so that an errored line is judged as the same
/// error of a live run would be: `invalid_request_error` is final for its row,
/// `api_error` and `overloaded_error` are retried, a refused key stops the run.
fn status_of_error(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        // `api_error`, and any type this version does not know: a server error,
        // retried within the row's budget.
        _ => 500,
    }
}

/// One line of a batch's results:
/// `{"custom_id", "result": {"type": "succeeded", "message"} | {"type": "errored",
/// "error": {"type": "error", "error": {"type", "message"}}} | {"type":
/// "canceled"} | {"type": "expired"}}`. A succeeded message is answered as a 200
/// with the message as its body (read by the live parser); an errored one as
/// the status of its error's type with the error as its body.
pub(super) fn parse_line(line: &str) -> Result<(String, LineOutcome), ParseError> {
    let (v, custom_id) = result_line(line)?;
    let result = v.get("result").ok_or(ParseError::LineMissing("result"))?;
    let kind = result.get("type").and_then(Value::as_str).unwrap_or("");
    let outcome = match kind {
        "succeeded" => {
            let message =
                result
                    .get("message")
                    .filter(|m| !m.is_null())
                    .ok_or(ParseError::Missing {
                        what: "a succeeded result",
                        field: "message",
                    })?;
            LineOutcome::Answered {
                status: 200,
                body: message.to_string(),
            }
        }
        "errored" => {
            let error = result.get("error").cloned().unwrap_or(Value::Null);
            // `{"type": "error", "error": {"type", "message"}}`, or the inner
            // object alone.
            let inner = match error.get("type").and_then(Value::as_str) {
                Some("error") => error.get("error").cloned().unwrap_or(Value::Null),
                _ => error.clone(),
            };
            let error_type = inner
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("api_error")
                .to_string();
            let body = serde_json::json!({"type": "error", "error": inner});
            LineOutcome::Answered {
                status: status_of_error(&error_type),
                body: body.to_string(),
            }
        }
        "canceled" => LineOutcome::NotRun {
            why: "the provider batch was canceled before running it (canceled)".to_string(),
        },
        "expired" => LineOutcome::NotRun {
            why: "the provider batch expired before running it (expired)".to_string(),
        },
        other => LineOutcome::NotRun {
            why: short(&format!("the result's type is {other:?}")),
        },
    };
    Ok((custom_id, outcome))
}

/// Whether a listed batch may be the one created for a shard of `lines`
/// requests whose create was about to be sent at `intent`: as many requests,
/// created no earlier than `skew_ms` before the intent (clocks differ).
pub(super) fn may_be(batch: &BatchObject, lines: usize, intent: Millis, skew_ms: u64) -> bool {
    let count = batch.counts.map(|c| c.total);
    let created = batch.created_at;
    count == Some(lines as u64)
        && created.is_some_and(|at| at.0.saturating_add(skew_ms) >= intent.0)
}

/// Whether a listed batch was created before anything a shard whose create was
/// about to be sent at `intent` could have made (the list is newest first: no
/// later page can hold a candidate).
pub(super) fn too_old(batch: &BatchObject, intent: Millis, skew_ms: u64) -> bool {
    batch
        .created_at
        .is_some_and(|at| at.0.saturating_add(skew_ms) < intent.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_entries_of_the_live_body_and_ids_carry_the_run() {
        let body = r#"{"model":"claude-haiku-4-5","messages":[]}"#;
        let entry = request_entry("RUN-r7-a2", body);
        assert!(entry.ends_with("}\n"));
        let v: Value = serde_json::from_str(&entry).unwrap();
        assert_eq!(v["custom_id"], "RUN-r7-a2");
        assert_eq!(v["params"]["model"], "claude-haiku-4-5");
        assert!(entry.contains(&format!(",\"params\":{body}}}")));
        // A whole create body parses, newlines and all.
        let whole = format!(
            "{BODY_PREFIX}{}{BODY_SEPARATOR}{}{BODY_SUFFIX}",
            request_entry("a", body),
            request_entry("b", body)
        );
        let v: Value = serde_json::from_str(&whole).unwrap();
        assert_eq!(v["requests"].as_array().unwrap().len(), 2);

        assert_eq!(
            run_tag("2025-01-24T10-30-00-000Z"),
            "2025-01-24T10-30-00-000Z"
        );
        assert_eq!(run_tag("a b:c/d"), "abcd");
        assert_eq!(run_tag("::"), "run");
        assert_eq!(run_tag(&"x".repeat(80)).len(), 24);
        let id = custom_id(&run_tag(&"9".repeat(80)), usize::MAX, u32::MAX);
        assert!(id.len() <= 64, "{id}");
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')));
    }

    #[test]
    fn urls_and_headers() {
        for base in [
            "https://api.anthropic.com",
            "https://api.anthropic.com/",
            "https://api.anthropic.com/v1",
            "https://api.anthropic.com/v1/messages/",
        ] {
            assert_eq!(api_base(base), "https://api.anthropic.com", "{base}");
        }
        let b = "https://api.anthropic.com";
        assert_eq!(
            batches_url(b),
            "https://api.anthropic.com/v1/messages/batches"
        );
        let r = poll_request(b, "msgbatch_1/../x");
        assert_eq!(r.method, "GET");
        assert_eq!(
            r.url,
            "https://api.anthropic.com/v1/messages/batches/msgbatch_1%2F..%2Fx"
        );
        assert!(r
            .headers
            .contains(&("anthropic-version".into(), "2023-06-01".into())));
        assert!(!r.headers.iter().any(|(k, _)| k == "x-api-key"));
        let c = cancel_request(b, "msgbatch_1");
        assert_eq!(
            (c.method, c.url.ends_with("/msgbatch_1/cancel")),
            ("POST", true)
        );
        assert!(list_request(b, Some("msgbatch_9"))
            .url
            .ends_with("/v1/messages/batches?limit=100&after_id=msgbatch_9"));
        assert!(results_request(b, "msgbatch_2")
            .url
            .ends_with("/v1/messages/batches/msgbatch_2/results"));
        assert!(create_headers().contains(&("content-type".into(), "application/json".into())));
    }

    #[test]
    fn batches_statuses_and_counts_are_read() {
        let b = parse_batch(
            r#"{"id":"msgbatch_013Zva2CMHLNnXjNJJKqJ2EF","type":"message_batch",
                "processing_status":"in_progress",
                "request_counts":{"processing":100,"succeeded":50,"errored":30,"canceled":10,"expired":10},
                "created_at":"2024-08-20T18:37:24.100435Z","ended_at":null,"cancel_initiated_at":null,
                "results_url":null}"#,
        )
        .unwrap();
        assert_eq!(b.status, ProviderStatus::InProgress);
        assert_eq!(
            b.counts,
            Some(RequestCounts {
                total: 200,
                completed: 50,
                failed: 30,
                not_run: 20
            })
        );
        assert_eq!(b.created_at, parse_rfc3339("2024-08-20T18:37:24.100Z"));
        let ended = |cancel: &str| {
            parse_batch(&format!(
                r#"{{"id":"m","processing_status":"ended","cancel_initiated_at":{cancel}}}"#
            ))
            .unwrap()
        };
        assert_eq!(ended("null").status, ProviderStatus::Completed);
        assert_eq!(ended("null").status_text, "ended");
        let c = ended("\"2024-08-20T18:37:24Z\"");
        assert_eq!(
            (c.status, c.status_text.as_str()),
            (ProviderStatus::Cancelled, "canceled")
        );
        assert_eq!(
            parse_batch(r#"{"id":"m","processing_status":"canceling"}"#)
                .unwrap()
                .status,
            ProviderStatus::Cancelling
        );
        assert!(parse_batch(r#"{"id":"m"}"#).is_err());
        assert!(parse_batch("<html>").is_err());

        let (list, after) = parse_list(
            r#"{"data":[{"id":"msgbatch_2","processing_status":"ended"}],"has_more":true,"first_id":"msgbatch_2","last_id":"msgbatch_2"}"#,
        )
        .unwrap();
        assert_eq!((list.len(), after.as_deref()), (1, Some("msgbatch_2")));
        let (_, after) =
            parse_list(r#"{"data":[],"has_more":false,"first_id":null,"last_id":null}"#).unwrap();
        assert_eq!(after, None);
    }

    #[test]
    fn result_lines_of_each_type() {
        let (id, o) = parse_line(
            r#"{"custom_id":"R-r1-a1","result":{"type":"succeeded","message":{"id":"msg_1","type":"message","content":[]}}}"#,
        )
        .unwrap();
        assert_eq!(id, "R-r1-a1");
        assert!(
            matches!(&o, LineOutcome::Answered { status: 200, body } if body.contains("msg_1")),
            "{o:?}"
        );
        let errored = |error: &str| {
            parse_line(&format!(
                r#"{{"custom_id":"x","result":{{"type":"errored","error":{error}}}}}"#
            ))
            .unwrap()
            .1
        };
        let o = errored(
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}"#,
        );
        let LineOutcome::Answered { status, body } = &o else {
            panic!("{o:?}")
        };
        assert_eq!(*status, 400);
        let api = crate::provider::parse_api_error(body).unwrap();
        assert_eq!(api.kind.as_deref(), Some("invalid_request_error"));
        assert_eq!(api.message, "max_tokens: too large");
        // The inner object alone is read too.
        assert!(matches!(
            errored(r#"{"type":"overloaded_error","message":"Overloaded"}"#),
            LineOutcome::Answered { status: 529, .. }
        ));
        assert!(matches!(
            errored(r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#),
            LineOutcome::Answered { status: 500, .. }
        ));
        for kind in ["canceled", "expired"] {
            let (_, o) = parse_line(&format!(
                r#"{{"custom_id":"x","result":{{"type":"{kind}"}}}}"#
            ))
            .unwrap();
            assert!(
                matches!(&o, LineOutcome::NotRun { why } if why.contains(kind)),
                "{o:?}"
            );
        }
        assert!(parse_line(r#"{"result":{"type":"expired"}}"#).is_err());
        assert!(parse_line(r#"{"custom_id":"x"}"#).is_err());
        assert!(parse_line(r#"{"custom_id":"x","result":{"type":"succeeded"}}"#).is_err());
        assert!(parse_line("{").is_err());
    }

    #[test]
    fn candidates_have_the_count_and_a_time_after_the_intent() {
        let at = |t: &str, total: u64| BatchObject {
            id: "m".into(),
            run: None,
            shard: None,
            status: ProviderStatus::InProgress,
            status_text: "in_progress".into(),
            input_file_id: None,
            output_file_id: None,
            error_file_id: None,
            counts: Some(RequestCounts {
                total,
                ..RequestCounts::default()
            }),
            errors: Vec::new(),
            inline_lines: None,
            inline_input: false,
            created_at: parse_rfc3339(t),
        };
        let intent = parse_rfc3339("2026-01-01T10:00:00Z").unwrap();
        let skew = 60_000;
        assert!(may_be(&at("2026-01-01T10:00:01Z", 5), 5, intent, skew));
        assert!(
            may_be(&at("2026-01-01T09:59:30Z", 5), 5, intent, skew),
            "within the skew"
        );
        assert!(!may_be(&at("2026-01-01T09:58:00Z", 5), 5, intent, skew));
        assert!(!may_be(&at("2026-01-01T10:00:01Z", 6), 5, intent, skew));
        assert!(too_old(&at("2026-01-01T09:58:00Z", 5), intent, skew));
        assert!(!too_old(&at("2026-01-01T09:59:30Z", 5), intent, skew));
    }
}
