//! Whole batch-API runs driven through simulated hours against a fake provider
//! (files, batches, list, cancel, result files out of order), with no network and
//! no real time: the clock jumps to each deadline.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Value};

use super::*;
use crate::input::{parse_labels_csv, ColumnNames};
use crate::journal::ItemStatus;
use crate::provider::{AnthropicConfig, OpenAiConfig};
use crate::report::RunStatus;

const START: Millis = Millis(1_700_000_000_000);
const LABELS: [&str; 3] = ["cat", "dog", "owl"];

fn csv(rows: usize) -> LabelsCsv {
    let mut text = String::from("image,label\n");
    for r in 0..rows {
        text.push_str(&format!("https://x.test/{r}.png,{}\n", LABELS[r % 3]));
    }
    parse_labels_csv(&text, &ColumnNames::default()).unwrap()
}

fn config(max_lines: usize) -> RunConfig {
    RunConfig {
        run_id: "RUN".into(),
        max_retries: 2,
        provider: crate::provider::Provider::OpenAi(OpenAiConfig {
            base_url: "https://api.test/v1".into(),
            model: "gpt-4o-mini".into(),
            detail: crate::provider::ImageDetail::Low,
            prompt: None,
        }),
        batch_api: Some(BatchApiConfig {
            max_lines,
            ..BatchApiConfig::default()
        }),
        ..RunConfig::default()
    }
}

/// The same run through Anthropic's Message Batches.
fn anthropic_config(max_lines: usize) -> RunConfig {
    let provider = crate::provider::Provider::Anthropic(AnthropicConfig {
        base_url: "https://anthropic.test".into(),
        model: "claude-haiku-4-5".into(),
        prompt: None,
    });
    RunConfig {
        batch_api: Some(BatchApiConfig {
            max_lines,
            ..BatchApiConfig::for_provider(&provider)
        }),
        provider,
        ..config(max_lines)
    }
}

const ANTHROPIC: &str = "https://anthropic.test/v1/messages/batches";

/// How the fake provider treats what it is given.
#[derive(Clone, Debug, Default)]
struct Script {
    /// How long a batch takes, from creation to `completed`.
    processing_ms: u64,
    /// The first this-many batches created expire, having run only their even
    /// lines.
    expire_first: usize,
    /// The first this-many batches created fail validation.
    fail_first: usize,
    /// The first this-many batches created fail with `token_limit_exceeded`.
    queue_full_first: usize,
    /// (row, attempt) answered with HTTP 500.
    server_errors: HashSet<(usize, u32)>,
    /// Rows whose answer disagrees with the label.
    wrong: HashSet<usize>,
    /// Answer creates with 500 this many times first.
    create_500s: usize,
    /// Answer uploads with this status (no file).
    upload_status: Option<u16>,
    /// (row, attempt) whose request is invalid (Anthropic: an errored line of
    /// type `invalid_request_error`).
    invalid: HashSet<(usize, u32)>,
    /// Create this many batches, then lose the answer (the host sees a
    /// timeout).
    lost_create_answers: usize,
    /// Batches per page of an Anthropic list.
    page: Option<usize>,
}

#[derive(Debug)]
struct FakeBatch {
    id: String,
    input_file: String,
    created_at: Millis,
    fate: Fate,
    cancelled_at: Option<Millis>,
    /// Another client's batch (not counted as this run's create).
    foreign: bool,
    /// What the create said of it (OpenAI).
    metadata: Value,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    Complete,
    Expire,
    Fail,
    QueueFull,
}

#[derive(Debug, Default)]
struct FakeProvider {
    script: Script,
    files: HashMap<String, Vec<String>>,
    batches: Vec<FakeBatch>,
    uploads: usize,
    creates: usize,
    polls: usize,
    /// (row, attempt) of every line of every batch created, with its batch.
    submitted: Vec<(usize, u32, String)>,
    poll_times: Vec<Millis>,
    lists: usize,
    downloads: usize,
    /// Uploaded file id -> (name, bytes).
    names: HashMap<String, (String, u64)>,
    /// Files deleted (input, output and error).
    deleted: HashSet<String>,
    file_lists: usize,
}

fn ok(body: Value) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![],
        body: body.to_string(),
    }
}

fn status(code: u16, message: &str) -> HttpResponse {
    HttpResponse {
        status: code,
        headers: vec![],
        body: json!({"error": {"message": message, "code": null}}).to_string(),
    }
}

/// (row, attempt) of `r{row}-a{attempt}` or `{run}-r{row}-a{attempt}`.
fn row_attempt(custom_id: &str) -> (usize, u32) {
    let tail = custom_id
        .rsplit_once("-r")
        .map_or(&custom_id[1..], |(_, t)| t);
    let (r, a) = tail.split_once("-a").unwrap();
    (r.parse().unwrap(), a.parse().unwrap())
}

impl FakeProvider {
    fn upload(&mut self, name: &str, lines: Vec<String>) -> HttpResponse {
        if let Some(code) = self.script.upload_status {
            return status(code, "upload refused");
        }
        self.uploads += 1;
        let id = format!("file-in-{}", self.uploads);
        let bytes = lines.iter().map(String::len).sum::<usize>() as u64;
        self.names.insert(id.clone(), (name.to_string(), bytes));
        self.files.insert(id.clone(), lines);
        ok(json!({"id": id, "object": "file", "purpose": "batch"}))
    }

    fn create(&mut self, now: Millis, body: &str) -> HttpResponse {
        if self.script.create_500s > 0 {
            self.script.create_500s -= 1;
            return status(500, "try later");
        }
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["completion_window"], "24h");
        assert_eq!(v["endpoint"], "/v1/chat/completions");
        assert_eq!(v["metadata"]["shadow_batch_run"], "RUN");
        let file = v["input_file_id"].as_str().unwrap().to_string();
        assert!(self.files.contains_key(&file), "create from unknown file");
        self.creates += 1;
        let n = self.creates;
        let fate = if n <= self.script.fail_first {
            Fate::Fail
        } else if n <= self.script.fail_first + self.script.queue_full_first {
            Fate::QueueFull
        } else if n
            <= self.script.fail_first + self.script.queue_full_first + self.script.expire_first
        {
            Fate::Expire
        } else {
            Fate::Complete
        };
        let id = format!("batch_{n}");
        for line in &self.files[&file] {
            let v: Value = serde_json::from_str(line).unwrap();
            let (row, attempt) = row_attempt(v["custom_id"].as_str().unwrap());
            self.submitted.push((row, attempt, id.clone()));
        }
        self.batches.push(FakeBatch {
            id,
            input_file: file,
            created_at: now,
            fate,
            cancelled_at: None,
            foreign: false,
            metadata: v["metadata"].clone(),
        });
        ok(self.object(now, self.batches.len() - 1))
    }

    fn ended(&self, now: Millis, b: &FakeBatch) -> bool {
        now.since(b.created_at) >= self.script.processing_ms || b.cancelled_at.is_some()
    }

    fn object(&self, now: Millis, i: usize) -> Value {
        let b = &self.batches[i];
        let total = self.files[&b.input_file].len();
        let (status, out, err) = match (b.fate, b.cancelled_at) {
            (Fate::Fail, _) if now.since(b.created_at) >= 1_000 => ("failed", None, None),
            (Fate::QueueFull, _) if now.since(b.created_at) >= 1_000 => ("failed", None, None),
            (_, Some(_)) => (
                "cancelled",
                Some(format!("{}-out", b.id)),
                Some(format!("{}-err", b.id)),
            ),
            (Fate::Complete, _) if self.ended(now, b) => (
                "completed",
                Some(format!("{}-out", b.id)),
                Some(format!("{}-err", b.id)),
            ),
            (Fate::Expire, _) if self.ended(now, b) => (
                "expired",
                Some(format!("{}-out", b.id)),
                Some(format!("{}-err", b.id)),
            ),
            _ if now.since(b.created_at) < 1_000 => ("validating", None, None),
            _ => ("in_progress", None, None),
        };
        let errors = match (status, b.fate) {
            ("failed", Fate::Fail) => json!({"object": "list", "data": [
                {"code": "invalid_request", "message": "The model does not support images in batches.", "line": 1}
            ]}),
            ("failed", _) => json!({"object": "list", "data": [
                {"code": "token_limit_exceeded", "message": "Enqueued token limit reached.", "line": null}
            ]}),
            _ => Value::Null,
        };
        let done = if status == "in_progress" {
            (total as u64 * now.since(b.created_at) / self.script.processing_ms.max(1)) as usize
        } else {
            0
        };
        json!({
            "id": b.id, "object": "batch", "endpoint": "/v1/chat/completions",
            "input_file_id": b.input_file, "status": status, "errors": errors,
            "output_file_id": out, "error_file_id": err,
            "request_counts": {"total": total, "completed": done, "failed": 0},
            "metadata": b.metadata,
        })
    }

    fn batch_index(&self, id: &str) -> usize {
        self.batches.iter().position(|b| b.id == id).unwrap()
    }

    /// The output (`-out`) or error (`-err`) file of a batch, lines shuffled.
    fn result_file(&self, now: Millis, file: &str) -> Vec<String> {
        let (id, kind) = file.rsplit_once('-').unwrap();
        let b = &self.batches[self.batch_index(id)];
        let mut lines = Vec::new();
        for (n, line) in self.files[&b.input_file].iter().enumerate() {
            let v: Value = serde_json::from_str(line).unwrap();
            let custom_id = v["custom_id"].as_str().unwrap();
            let (row, attempt) = row_attempt(custom_id);
            let ran = match (b.fate, b.cancelled_at) {
                (Fate::Expire, _) => n % 2 == 0,
                (_, Some(at)) => {
                    let share = at.since(b.created_at) * 100 / self.script.processing_ms.max(1);
                    (n as u64 * 100 / self.files[&b.input_file].len() as u64) < share
                }
                _ => true,
            };
            let line = if !ran {
                let code = if b.cancelled_at.is_some() {
                    "batch_cancelled"
                } else {
                    "batch_expired"
                };
                (kind == "err").then(|| {
                    json!({"id": format!("req-{n}"), "custom_id": custom_id, "response": null,
                        "error": {"code": code, "message": "This request was not run."}})
                })
            } else if self.script.server_errors.contains(&(row, attempt)) {
                (kind == "err").then(|| {
                    json!({"id": format!("req-{n}"), "custom_id": custom_id, "error": null,
                        "response": {"status_code": 500, "request_id": "r",
                            "body": {"error": {"message": "boom", "type": "server_error"}}}})
                })
            } else {
                let labels = v["body"]["response_format"]["json_schema"]["schema"]["properties"]
                    ["label"]["enum"]
                    .as_array()
                    .unwrap()
                    .clone();
                assert_eq!(labels.len(), 3, "the live body, with the label enum");
                let mut label = LABELS[row % 3];
                if self.script.wrong.contains(&row) {
                    label = LABELS[(row + 1) % 3];
                }
                (kind == "out").then(|| {
                    let content = json!({"label": label}).to_string();
                    json!({"id": format!("req-{n}"), "custom_id": custom_id, "error": null,
                        "response": {"status_code": 200, "request_id": "r", "body": {
                            "choices": [{"message": {"content": content}}],
                            "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}}}})
                })
            };
            lines.extend(line.map(|l| l.to_string()));
        }
        // Out of order: reversed, then odd positions first.
        lines.reverse();
        let (odd, even): (Vec<_>, Vec<_>) =
            lines.into_iter().enumerate().partition(|(i, _)| i % 2 == 1);
        let _ = now;
        odd.into_iter().chain(even).map(|(_, l)| l).collect()
    }

    /// The fate of the batch just created (the first `expire_first` expire).
    fn next_fate(&self) -> Fate {
        if self.creates <= self.script.expire_first {
            Fate::Expire
        } else {
            Fate::Complete
        }
    }

    /// `POST /v1/messages/batches`: the requests inline. The first
    /// `fail_first` creates are refused (400), as Anthropic refuses a create
    /// whose requests do not validate.
    fn create_inline(&mut self, now: Millis, body: &str) -> HttpResponse {
        if self.script.create_500s > 0 {
            self.script.create_500s -= 1;
            return status(500, "try later");
        }
        if self.script.fail_first > 0 {
            self.script.fail_first -= 1;
            return HttpResponse {
                status: 400,
                headers: vec![],
                body: json!({"type": "error", "error": {"type": "invalid_request_error",
                    "message": "requests.0.params.model: the model does not take images in batches"}})
                .to_string(),
            };
        }
        let v: Value = serde_json::from_str(body).expect("the create body is JSON");
        let requests = v["requests"].as_array().expect("requests");
        assert!(!requests.is_empty());
        self.creates += 1;
        let fate = self.next_fate();
        let id = format!("msgbatch_{}", self.creates);
        let file = format!("inline-{}", self.creates);
        let mut lines = Vec::new();
        for r in requests {
            let custom_id = r["custom_id"].as_str().unwrap();
            let (row, attempt) = row_attempt(custom_id);
            self.submitted.push((row, attempt, id.clone()));
            lines.push(r.to_string());
        }
        self.files.insert(file.clone(), lines);
        self.batches.push(FakeBatch {
            id,
            input_file: file,
            created_at: now,
            fate,
            cancelled_at: None,
            foreign: false,
            metadata: Value::Null,
        });
        ok(self.message_batch(now, self.batches.len() - 1))
    }

    /// Another client's batch of `count` requests, created at `at`, running
    /// `processing_ms` from then.
    fn foreign(&mut self, at: Millis, count: usize) -> String {
        let id = format!("msgbatch_other_{}", self.batches.len());
        let file = format!("other-{}", self.batches.len());
        let lines = (0..count)
            .map(|n| {
                json!({"custom_id": format!("theirs-r{n}-a1"), "params": {"model": "claude-x"}})
                    .to_string()
            })
            .collect();
        self.files.insert(file.clone(), lines);
        self.batches.push(FakeBatch {
            id: id.clone(),
            input_file: file,
            created_at: at,
            fate: Fate::Complete,
            cancelled_at: None,
            foreign: true,
            metadata: Value::Null,
        });
        id
    }

    /// Whether request `n` of batch `b` ran.
    fn ran(&self, b: &FakeBatch, n: usize) -> bool {
        match (b.fate, b.cancelled_at) {
            (Fate::Expire, _) => n % 2 == 0,
            (_, Some(at)) => {
                let share = at.since(b.created_at) * 100 / self.script.processing_ms.max(1);
                (n as u64 * 100 / self.files[&b.input_file].len() as u64) < share
            }
            _ => true,
        }
    }

    /// A message batch object, as Anthropic answers it.
    fn message_batch(&self, now: Millis, i: usize) -> Value {
        let b = &self.batches[i];
        let total = self.files[&b.input_file].len() as u64;
        let ended = self.ended(now, b) && b.cancelled_at.is_none_or(|at| now.since(at) >= 1_000);
        let status = match (ended, b.cancelled_at) {
            (true, _) => "ended",
            (false, Some(_)) => "canceling",
            (false, None) => "in_progress",
        };
        let mut counts = json!({"processing": total, "succeeded": 0, "errored": 0,
            "canceled": 0, "expired": 0});
        if ended {
            counts["processing"] = json!(0);
            for n in 0..total as usize {
                let key = if !self.ran(b, n) {
                    if b.cancelled_at.is_some() {
                        "canceled"
                    } else {
                        "expired"
                    }
                } else {
                    let (row, attempt) = self.row_attempt_of(b, n);
                    if self.script.server_errors.contains(&(row, attempt))
                        || self.script.invalid.contains(&(row, attempt))
                    {
                        "errored"
                    } else {
                        "succeeded"
                    }
                };
                counts[key] = json!(counts[key].as_u64().unwrap() + 1);
            }
        } else if let Some(share) =
            (total * now.since(b.created_at)).checked_div(self.script.processing_ms)
        {
            let done = share.min(total);
            counts["processing"] = json!(total - done);
            counts["succeeded"] = json!(done);
        }
        let url = format!("{ANTHROPIC}/{}/results", b.id);
        json!({
            "id": b.id, "type": "message_batch", "processing_status": status,
            "request_counts": counts,
            "created_at": b.created_at.to_iso8601(),
            "expires_at": b.created_at.plus(86_400_000).to_iso8601(),
            "ended_at": if ended { json!(now.to_iso8601()) } else { Value::Null },
            "cancel_initiated_at": b.cancelled_at.map(|t| t.to_iso8601()),
            "archived_at": null,
            "results_url": if ended { json!(url) } else { Value::Null },
        })
    }

    fn row_attempt_of(&self, b: &FakeBatch, n: usize) -> (usize, u32) {
        let v: Value = serde_json::from_str(&self.files[&b.input_file][n]).unwrap();
        let id = v["custom_id"].as_str().unwrap();
        if b.foreign {
            return (usize::MAX, 0);
        }
        row_attempt(id)
    }

    /// A batch's results, as Anthropic serves them, lines shuffled.
    fn results(&self, now: Millis, id: &str) -> Result<Vec<String>, HttpResponse> {
        let i = self.batch_index(id);
        let b = &self.batches[i];
        if self.message_batch(now, i)["processing_status"] != "ended" {
            return Err(status(400, "the batch has not ended"));
        }
        let mut lines = Vec::new();
        for (n, line) in self.files[&b.input_file].iter().enumerate() {
            let v: Value = serde_json::from_str(line).unwrap();
            let custom_id = v["custom_id"].as_str().unwrap();
            let (row, attempt) = self.row_attempt_of(b, n);
            let result = if !self.ran(b, n) {
                let kind = if b.cancelled_at.is_some() {
                    "canceled"
                } else {
                    "expired"
                };
                json!({"type": kind})
            } else if self.script.server_errors.contains(&(row, attempt)) {
                json!({"type": "errored", "error": {"type": "error",
                    "error": {"type": "api_error", "message": "Internal server error"}}})
            } else if self.script.invalid.contains(&(row, attempt)) {
                json!({"type": "errored", "error": {"type": "error",
                    "error": {"type": "invalid_request_error", "message": "messages.0: bad image"}}})
            } else if b.foreign {
                json!({"type": "succeeded", "message": {"type": "message", "content": []}})
            } else {
                let tool = &v["params"]["tools"][0];
                assert_eq!(
                    v["params"]["tool_choice"]["name"], tool["name"],
                    "the live body"
                );
                let labels = tool["input_schema"]["properties"]["label"]["enum"]
                    .as_array()
                    .unwrap();
                assert_eq!(labels.len(), 3, "the live body, with the label enum");
                let mut label = LABELS[row % 3];
                if self.script.wrong.contains(&row) {
                    label = LABELS[(row + 1) % 3];
                }
                json!({"type": "succeeded", "message": {
                    "id": format!("msg_{n}"), "type": "message", "role": "assistant",
                    "model": "claude-haiku-4-5",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": tool["name"],
                        "input": {"label": label}}],
                    "stop_reason": "tool_use",
                    "usage": {"input_tokens": 100, "output_tokens": 5}}})
            };
            lines.push(json!({"custom_id": custom_id, "result": result}).to_string());
        }
        lines.reverse();
        let (odd, even): (Vec<_>, Vec<_>) =
            lines.into_iter().enumerate().partition(|(i, _)| i % 2 == 1);
        Ok(odd.into_iter().chain(even).map(|(_, l)| l).collect())
    }

    /// The Anthropic routes.
    fn call_inline(&mut self, now: Millis, request: &HttpRequest) -> (HttpResponse, Vec<String>) {
        assert!(
            request
                .headers
                .contains(&("anthropic-version".into(), "2023-06-01".into())),
            "{request:?}"
        );
        let path = request.url.strip_prefix(ANTHROPIC).unwrap();
        match (request.method, path) {
            ("GET", p) if p.starts_with("?limit=") => {
                self.lists += 1;
                let after = p.split_once("&after_id=").map(|(_, a)| a.to_string());
                let newest_first: Vec<usize> = (0..self.batches.len()).rev().collect();
                let start = match &after {
                    Some(a) => newest_first
                        .iter()
                        .position(|&i| self.batches[i].id == *a)
                        .map_or(newest_first.len(), |p| p + 1),
                    None => 0,
                };
                let page = self.script.page.unwrap_or(100);
                let ids: Vec<usize> = newest_first
                    .iter()
                    .skip(start)
                    .take(page)
                    .copied()
                    .collect();
                let more = start + ids.len() < newest_first.len();
                let data: Vec<Value> = ids.iter().map(|&i| self.message_batch(now, i)).collect();
                let last = ids.last().map(|&i| self.batches[i].id.clone());
                (
                    ok(json!({"data": data, "has_more": more, "first_id": null, "last_id": last})),
                    vec![],
                )
            }
            ("GET", p) if p.ends_with("/results") => {
                let id = &p[1..p.len() - "/results".len()];
                self.downloads += 1;
                match self.results(now, id) {
                    Ok(lines) => (ok(json!({})), lines),
                    Err(refused) => (refused, vec![]),
                }
            }
            ("POST", p) if p.ends_with("/cancel") => {
                let id = &p[1..p.len() - "/cancel".len()];
                let i = self.batch_index(id);
                self.batches[i].cancelled_at.get_or_insert(now);
                (ok(self.message_batch(now, i)), vec![])
            }
            ("GET", p) => {
                self.polls += 1;
                self.poll_times.push(now);
                let i = self.batch_index(&p[1..]);
                (ok(self.message_batch(now, i)), vec![])
            }
            other => panic!("unexpected call {other:?}"),
        }
    }

    fn call(&mut self, now: Millis, request: &HttpRequest) -> (HttpResponse, Vec<String>) {
        if request.url.starts_with(ANTHROPIC) {
            return self.call_inline(now, request);
        }
        let path = request.url.strip_prefix("https://api.test/v1").unwrap();
        match (request.method, path) {
            ("POST", "/batches") => (self.create(now, &request.body), vec![]),
            ("GET", p) if p.starts_with("/batches?") => {
                let data: Vec<Value> = (0..self.batches.len())
                    .rev()
                    .map(|i| self.object(now, i))
                    .collect();
                (
                    ok(json!({"object": "list", "data": data, "has_more": false})),
                    vec![],
                )
            }
            ("GET", p) if p.starts_with("/batches/") => {
                self.polls += 1;
                self.poll_times.push(now);
                let i = self.batch_index(&p["/batches/".len()..]);
                (ok(self.object(now, i)), vec![])
            }
            ("POST", p) if p.ends_with("/cancel") => {
                let id = &p["/batches/".len()..p.len() - "/cancel".len()];
                let i = self.batch_index(id);
                self.batches[i].cancelled_at.get_or_insert(now);
                let mut o = self.object(now, i);
                o["status"] = json!("cancelling");
                (ok(o), vec![])
            }
            ("GET", p) if p.starts_with("/files/") && p.ends_with("/content") => {
                let file = &p["/files/".len()..p.len() - "/content".len()];
                if self.deleted.contains(file) {
                    return (status(404, "No such file"), vec![]);
                }
                if let Some(lines) = self.files.get(file) {
                    self.downloads += 1;
                    return (ok(json!({})), lines.clone());
                }
                (ok(json!({})), self.result_file(now, file))
            }
            ("GET", p) if p.starts_with("/files?") => {
                self.file_lists += 1;
                let data: Vec<Value> = self
                    .names
                    .iter()
                    .filter(|(id, _)| !self.deleted.contains(*id))
                    .map(|(id, (name, bytes))| json!({"id": id, "filename": name, "bytes": bytes, "purpose": "batch"}))
                    .collect();
                (
                    ok(json!({"object": "list", "data": data, "has_more": false})),
                    vec![],
                )
            }
            ("DELETE", p) if p.starts_with("/files/") => {
                let file = &p["/files/".len()..];
                if !self.deleted.insert(file.to_string()) {
                    return (status(404, "No such file"), vec![]);
                }
                (
                    ok(json!({"id": file, "object": "file", "deleted": true})),
                    vec![],
                )
            }
            other => panic!("unexpected call {other:?}"),
        }
    }
}

/// A host: builds lines, keeps shard files, writes the journals, performs calls
/// against the fake provider at once, and jumps the clock to each deadline.
struct Sim {
    batch: BatchRun,
    now: Millis,
    provider: FakeProvider,
    built: HashMap<Ticket, String>,
    files: BTreeMap<u32, Vec<String>>,
    journal: String,
    results: String,
    summary: Option<Box<Summary>>,
    handled: usize,
    /// Stop (crash) before the input with this number is handled.
    crash_before: Option<usize>,
    crashed: bool,
    status_changes: usize,
    chunk: usize,
    /// Speaks Anthropic's Message Batches.
    anthropic: bool,
    /// Create calls in flight at once, at most (the sim answers at once: the
    /// orders seen between two answers).
    outputs_seen: Vec<&'static str>,
    /// The provider batches as the progress file last listed them.
    saved: Vec<ProviderBatch>,
}

impl Sim {
    fn anthropic(rows: usize, max_lines: usize, script: Script) -> Sim {
        let mut sim = Sim::new(rows, max_lines, script);
        sim.anthropic = true;
        sim.batch = BatchRun::new(anthropic_config(max_lines), csv(rows), START).unwrap();
        sim
    }

    fn config(&self, max_lines: usize) -> RunConfig {
        if self.anthropic {
            anthropic_config(max_lines)
        } else {
            config(max_lines)
        }
    }

    fn new(rows: usize, max_lines: usize, script: Script) -> Sim {
        let batch = BatchRun::new(config(max_lines), csv(rows), START).unwrap();
        Sim {
            batch,
            now: START,
            provider: FakeProvider {
                script,
                ..FakeProvider::default()
            },
            built: HashMap::new(),
            files: BTreeMap::new(),
            journal: String::new(),
            results: String::new(),
            summary: None,
            handled: 0,
            crash_before: None,
            crashed: false,
            status_changes: 0,
            chunk: 3,
            anthropic: false,
            outputs_seen: Vec::new(),
            saved: Vec::new(),
        }
    }

    fn feed(&mut self, input: BatchInput) -> bool {
        self.handled += 1;
        if self.crash_before == Some(self.handled) {
            self.crashed = true;
            return false;
        }
        self.batch.handle(self.now, input).unwrap();
        true
    }

    /// Drains the outputs, doing each; false once crashed.
    fn drain(&mut self) -> bool {
        while let Some(output) = self.batch.poll(self.now) {
            match output {
                BatchOutput::BuildLine(order) => {
                    let line = self.batch.line_builder().line(
                        &order,
                        &format!("https://x.test/{}.png", order.item),
                        None,
                    );
                    let bytes = line.len() as u64;
                    self.built.insert(order.ticket, line);
                    if !self.feed(BatchInput::LineBuilt {
                        ticket: order.ticket,
                        bytes,
                    }) {
                        return false;
                    }
                }
                BatchOutput::AppendLine { shard, ticket } => {
                    let line = self.built.remove(&ticket).expect("a built line");
                    self.files.entry(shard).or_default().push(line);
                }
                BatchOutput::DiscardFile { shard } => {
                    self.files.remove(&shard);
                }
                BatchOutput::Submit(order) => {
                    self.outputs_seen.push("submit");
                    assert_eq!(order.url, ANTHROPIC);
                    let lines = self
                        .files
                        .get(&order.shard)
                        .cloned()
                        .expect("the shard file");
                    assert_eq!(lines.len(), order.lines);
                    assert_eq!(
                        lines.iter().map(String::len).sum::<usize>() as u64,
                        order.bytes
                    );
                    let body = format!(
                        "{}{}{}",
                        order.prefix,
                        lines.join(order.separator),
                        order.suffix
                    );
                    assert_eq!(body.len() as u64, order.body_len());
                    assert!(body.len() as u64 <= self.batch.cfg.max_bytes);
                    let mut request = HttpRequest {
                        method: "POST",
                        url: order.url.clone(),
                        headers: order.headers.clone(),
                        body,
                    };
                    request.headers.retain(|(k, _)| k != "content-type");
                    let response = self.provider.create_inline(self.now, &request.body);
                    let lost =
                        response.status == 200 && self.provider.script.lost_create_answers > 0;
                    let input = if lost {
                        self.provider.script.lost_create_answers -= 1;
                        BatchInput::CallFailed {
                            call: order.call,
                            kind: TransportErrorKind::Timeout,
                            message: "operation timed out".into(),
                        }
                    } else {
                        BatchInput::Answer {
                            call: order.call,
                            response,
                        }
                    };
                    if !self.feed(input) {
                        return false;
                    }
                }
                BatchOutput::Upload(order) => {
                    assert_eq!(order.url, "https://api.test/v1/files");
                    let lines = self
                        .files
                        .get(&order.shard)
                        .cloned()
                        .expect("the shard file");
                    assert_eq!(lines.len(), order.lines);
                    assert_eq!(
                        lines.iter().map(String::len).sum::<usize>() as u64,
                        order.bytes
                    );
                    let response = self.provider.upload(&order.file_name, lines);
                    if !self.feed(BatchInput::Answer {
                        call: order.call,
                        response,
                    }) {
                        return false;
                    }
                }
                BatchOutput::Call {
                    call,
                    request,
                    lines,
                } => {
                    let (response, body_lines) = self.provider.call(self.now, &request);
                    let lost = request.method == "POST"
                        && request.url.ends_with("/batches")
                        && response.status == 200
                        && self.provider.script.lost_create_answers > 0;
                    if lost {
                        self.provider.script.lost_create_answers -= 1;
                        if !self.feed(BatchInput::CallFailed {
                            call,
                            kind: TransportErrorKind::Timeout,
                            message: "operation timed out".into(),
                        }) {
                            return false;
                        }
                        continue;
                    }
                    if lines && response.status == 200 {
                        for chunk in body_lines.chunks(self.chunk) {
                            if !self.feed(BatchInput::Lines {
                                call,
                                lines: chunk.to_vec(),
                            }) {
                                return false;
                            }
                        }
                    }
                    let end = HttpResponse {
                        body: if lines {
                            String::new()
                        } else {
                            response.body.clone()
                        },
                        ..response
                    };
                    if !self.feed(BatchInput::Answer {
                        call,
                        response: end,
                    }) {
                        return false;
                    }
                }
                BatchOutput::Record(record) => self.journal.push_str(&record.to_json_line()),
                BatchOutput::StatusChanged => {
                    self.status_changes += 1;
                    self.saved = self.batch.provider_batches().to_vec();
                }
                BatchOutput::ItemDone(done) => self
                    .results
                    .push_str(&self.batch.result(&done).to_json_line()),
                BatchOutput::BatchReport { .. } => {}
                BatchOutput::Finished { summary } => self.summary = Some(summary),
            }
        }
        true
    }

    /// Runs until finished (or crashed); the clock jumps to each deadline.
    fn run(&mut self) {
        for _ in 0..1_000_000 {
            if !self.drain() || self.summary.is_some() {
                return;
            }
            let next = self
                .batch
                .poll_timeout()
                .expect("a run that is not finished has a deadline");
            assert!(
                next >= self.now || next.0 + 1 >= self.now.0,
                "time goes forward"
            );
            self.now = next.max(self.now);
        }
        panic!("the run did not finish");
    }

    /// A new session after a crash: the same CSV, both journals folded back.
    fn resume(&mut self, script: Script) {
        let folded = crate::journal::fold_journal(&self.results);
        let batches = fold_batch_journal(self.journal.as_bytes()).unwrap();
        self.now = self.now.plus(1_000);
        let mut batch = BatchRun::new(
            self.config(self.batch.cfg.max_lines),
            csv(self.batch.run().items().len()),
            self.now,
        )
        .unwrap();
        batch
            .restore(self.now, folded.results.iter().cloned(), &batches, &[])
            .unwrap();
        self.batch = batch;
        self.provider.script = script;
        self.built.clear();
        self.files.clear();
        self.summary = None;
        self.crash_before = None;
        self.crashed = false;
    }

    /// A new session after a crash that also lost the provider journal (or
    /// left `journal` in its place): rebuilt from the progress file's
    /// provider batches and the provider.
    fn resume_lost(&mut self, script: Script, journal: &str) -> Result<(), UsageError> {
        let folded = crate::journal::fold_journal(&self.results);
        let batches = fold_batch_journal(journal.as_bytes()).unwrap();
        self.now = self.now.plus(1_000);
        let mut batch = BatchRun::new(
            self.config(self.batch.cfg.max_lines),
            csv(self.batch.run().items().len()),
            self.now,
        )
        .unwrap();
        batch.restore(self.now, folded.results.iter().cloned(), &batches, &[])?;
        batch.recover(self.now, &self.saved, journal.is_empty())?;
        self.journal = journal.to_string();
        self.batch = batch;
        self.provider.script = script;
        self.built.clear();
        self.files.clear();
        self.summary = None;
        self.crash_before = None;
        self.crashed = false;
        Ok(())
    }

    fn summary(&self) -> &Summary {
        self.summary.as_deref().expect("finished")
    }

    /// Row -> (status, prediction, attempts) from the folded results journal.
    fn outcomes(&self) -> BTreeMap<usize, (ItemStatus, Option<String>, u32)> {
        crate::journal::fold_journal(&self.results)
            .results
            .into_iter()
            .map(|r| {
                (
                    r.row,
                    (r.status, r.prediction.map(|p| p.into_owned()), r.attempts),
                )
            })
            .collect()
    }

    fn records(&self) -> Vec<Value> {
        self.journal
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[test]
fn a_clean_run_goes_in_shards_matches_lines_out_of_order_and_costs_half() {
    let script = Script {
        processing_ms: 6 * 3_600_000,
        wrong: [4, 9].into(),
        ..Script::default()
    };
    let mut sim = Sim::new(120, 50, script);
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!((s.statistics.successful, s.statistics.failed), (120, 0));
    assert_eq!(s.evaluation.agreements, 118);
    // Three shards of 50, 50, 20, each uploaded and created once.
    assert_eq!((sim.provider.uploads, sim.provider.creates), (3, 3));
    let batches = s.provider_batches.as_ref().unwrap();
    assert_eq!(
        batches.iter().map(|b| b.lines).collect::<Vec<_>>(),
        [50, 50, 20]
    );
    assert!(batches.iter().all(|b| b.status == "done"), "{batches:?}");
    assert!(batches
        .iter()
        .all(|b| b.batch_id.is_some() && b.file_id.is_some()));
    // Every row once, in reports of 50 in order, whatever the order of lines.
    let outcomes = sim.outcomes();
    assert_eq!(outcomes.len(), 120);
    assert!(outcomes.values().all(|(_, _, attempts)| *attempts == 1));
    assert_eq!(
        s.all_reports
            .iter()
            .map(|r| r.batch_number)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Six simulated hours, polled from 5 s growing to a minute.
    let elapsed = s.statistics.elapsed_ms;
    assert!(
        (6 * 3_600_000..6 * 3_600_000 + 120_000).contains(&elapsed),
        "{elapsed}"
    );
    let polls = sim.provider.polls;
    assert!((3 * 360..3 * 460).contains(&polls), "{polls} polls");
    let gaps: Vec<u64> = sim
        .provider
        .poll_times
        .windows(2)
        .map(|w| w[1].since(w[0]))
        .collect();
    assert!(sim.provider.poll_times[0].since(START) >= 4_000);
    assert!(gaps.iter().all(|g| *g <= 60_000), "no wait over poll_max");
    // The cost is at the batch price: half of gpt-4o-mini's list price.
    let price = s.cost.price.as_ref().unwrap();
    assert!(price.batch_api);
    assert_eq!(price.price.input_per_million, 0.075);
    assert!(s.pace.is_none(), "a batch run has no pace");
    // The provider journal: uploaded, created, ended, done for each shard.
    let kinds: Vec<String> = sim
        .records()
        .iter()
        .map(|r| format!("{}{}", r["record"].as_str().unwrap(), r["shard"]))
        .collect();
    for shard in 1..=3 {
        let at = |k: &str| {
            kinds
                .iter()
                .position(|x| *x == format!("{k}{shard}"))
                .unwrap()
        };
        assert!(
            at("uploaded") < at("created")
                && at("created") < at("ended")
                && at("ended") < at("done")
        );
    }
    // The progress file names the provider batches.
    let progress = serde_json::to_value(sim.batch.progress(sim.now)).unwrap();
    assert_eq!(progress["providerBatches"].as_array().unwrap().len(), 3);
    assert!(sim.status_changes > 3);
}

#[test]
fn an_expired_batch_re_sends_only_what_it_did_not_run() {
    let script = Script {
        processing_ms: 24 * 3_600_000,
        expire_first: 1,
        ..Script::default()
    };
    let mut sim = Sim::new(10, 50, script);
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!(s.statistics.successful, 10);
    assert_eq!(sim.provider.creates, 2);
    // The second batch holds exactly the odd lines of the first, as attempt 2.
    let second: Vec<(usize, u32)> = sim
        .provider
        .submitted
        .iter()
        .filter(|(_, _, b)| b == "batch_2")
        .map(|(r, a, _)| (*r, *a))
        .collect();
    assert_eq!(second, [(1, 2), (3, 2), (5, 2), (7, 2), (9, 2)]);
    let outcomes = sim.outcomes();
    assert_eq!(outcomes[&0].2, 1);
    assert_eq!(outcomes[&1].2, 2);
    assert!(s.statistics.elapsed_ms >= 48 * 3_600_000, "two days");
    let batches = s.provider_batches.as_ref().unwrap();
    assert_eq!(batches[0].status, "done (expired)");
}

#[test]
fn errored_lines_are_re_sent_up_to_the_budget_then_fail() {
    let script = Script {
        processing_ms: 60_000,
        // Row 2 fails on every attempt; row 5 only on its first.
        server_errors: [(2, 1), (2, 2), (2, 3), (5, 1)].into(),
        ..Script::default()
    };
    let mut sim = Sim::new(8, 50, script);
    sim.run();
    let s = sim.summary();
    assert_eq!((s.statistics.successful, s.statistics.failed), (7, 1));
    let outcomes = sim.outcomes();
    assert_eq!(outcomes[&2].0, ItemStatus::Failed);
    assert_eq!(outcomes[&2].2, 3, "max_retries 2: three attempts");
    assert_eq!(outcomes[&5], (ItemStatus::Success, Some("owl".into()), 2));
    assert!(
        s.overall_progress.errors[0]
            .error
            .contains("gave up after 3 attempts"),
        "{:?}",
        s.overall_progress.errors
    );
    // Batches: all 8, then rows 2 and 5, then row 2 alone.
    assert_eq!(sim.provider.creates, 3);
    assert_eq!(sim.provider.submitted.len(), 8 + 2 + 1);
    assert_eq!(s.statistics.retries, 3);
}

#[test]
fn a_failed_batch_stops_the_run_resumably_and_a_resume_sends_its_rows_again() {
    let script = Script {
        processing_ms: 60_000,
        fail_first: 1,
        ..Script::default()
    };
    let mut sim = Sim::new(6, 50, script.clone());
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Aborted);
    let reason = s.abort_reason.as_deref().unwrap();
    assert!(reason.contains("batch_1 failed"), "{reason}");
    assert!(reason.contains("does not support images"), "{reason}");
    assert_eq!(
        s.statistics.remaining, 6,
        "nothing failed: all left for resume"
    );
    assert_eq!(s.exit_code(), 2);
    sim.resume(Script {
        fail_first: 0,
        ..script
    });
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!(s.statistics.successful, 6);
    assert_eq!((sim.provider.uploads, sim.provider.creates), (2, 2));
}

#[test]
fn a_full_queue_submits_the_same_file_again_later() {
    let script = Script {
        processing_ms: 60_000,
        queue_full_first: 2,
        ..Script::default()
    };
    let mut sim = Sim::new(5, 50, script);
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!(sim.provider.uploads, 1, "no second upload");
    assert_eq!(sim.provider.creates, 3, "created again from the same file");
}

#[test]
fn the_byte_limit_cuts_shards_and_a_line_too_large_fails_its_row() {
    let mut config = config(50);
    // A line is ~1.1 kB: three fit in 4 kB.
    config.batch_api.as_mut().unwrap().max_bytes = 4_000;
    let mut sim = Sim::new(7, 50, Script::default());
    sim.batch = BatchRun::new(config, csv(7), START).unwrap();
    sim.run();
    let s = sim.summary();
    assert_eq!(s.statistics.successful, 7);
    let batches = s.provider_batches.as_ref().unwrap();
    assert!(batches.len() >= 2, "{batches:?}");
    assert!(batches.iter().all(|b| b.bytes <= 4_000), "{batches:?}");
    assert_eq!(batches.iter().map(|b| b.lines).sum::<usize>(), 7);

    let mut config = self::config(50);
    config.batch_api.as_mut().unwrap().max_bytes = 2_000;
    if let crate::provider::Provider::OpenAi(openai) = &mut config.provider {
        openai.prompt = Some("Classify. ".repeat(200));
    }
    let mut sim = Sim::new(2, 50, Script::default());
    sim.batch = BatchRun::new(config, csv(2), START).unwrap();
    sim.run();
    let s = sim.summary();
    assert_eq!(s.statistics.failed, 2);
    assert!(s.overall_progress.errors[0]
        .error
        .contains("a provider batch may hold at most 2000"));
    assert_eq!(sim.provider.uploads, 0);
}

#[test]
fn provider_calls_are_retried_and_a_refused_upload_stops_the_run() {
    let script = Script {
        processing_ms: 60_000,
        create_500s: 3,
        ..Script::default()
    };
    let mut sim = Sim::new(4, 50, script);
    sim.run();
    assert_eq!(sim.summary().status, RunStatus::Completed);
    assert_eq!(sim.provider.creates, 1);

    let script = Script {
        upload_status: Some(401),
        ..Script::default()
    };
    let mut sim = Sim::new(4, 50, script);
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Aborted);
    assert!(matches!(
        s.abort_kind,
        Some(AbortReason::Unauthorized { status: 401, .. })
    ));
    assert_eq!(s.statistics.remaining, 4);
    assert!(sim.files.is_empty(), "the shard file is discarded");

    let script = Script {
        upload_status: Some(404),
        ..Script::default()
    };
    let mut sim = Sim::new(4, 50, script);
    sim.run();
    let reason = sim.summary().abort_reason.clone().unwrap();
    assert!(
        reason.contains("batch API refused to upload (HTTP 404)"),
        "{reason}"
    );
}

#[test]
fn detach_leaves_the_batches_running_and_a_resume_collects_them() {
    let script = Script {
        processing_ms: 3_600_000,
        ..Script::default()
    };
    let mut sim = Sim::new(6, 50, script.clone());
    // Run until the batch is created, then detach.
    while sim.provider.creates == 0 || !sim.journal.contains("created") {
        sim.drain();
        sim.now = sim.batch.poll_timeout().unwrap().max(sim.now);
    }
    sim.batch.handle(sim.now, BatchInput::Detach).unwrap();
    sim.drain();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Interrupted);
    assert_eq!(s.statistics.remaining, 6);
    assert!(sim.batch.poll_timeout().is_none());
    sim.resume(script);
    sim.run();
    assert_eq!(sim.summary().status, RunStatus::Completed);
    assert_eq!((sim.provider.uploads, sim.provider.creates), (1, 1));
}

#[test]
fn cancel_keeps_what_the_batches_finished_and_leaves_the_rest_for_resume() {
    let script = Script {
        processing_ms: 10 * 3_600_000,
        ..Script::default()
    };
    let mut sim = Sim::new(10, 50, script.clone());
    // Five hours in, cancel.
    while sim.now.since(START) < 5 * 3_600_000 {
        sim.drain();
        sim.now = sim.batch.poll_timeout().unwrap().max(sim.now);
    }
    sim.batch
        .handle(sim.now, BatchInput::CancelBatches)
        .unwrap();
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Interrupted);
    let done = s.statistics.successful;
    assert!((1..10).contains(&done), "{done} done at cancel");
    assert_eq!(s.statistics.failed, 0, "cancelled rows are not failures");
    assert_eq!(s.statistics.remaining, 10 - done);
    assert_eq!(
        s.provider_batches.as_ref().unwrap()[0].status,
        "done (cancelled)"
    );
    // A resume sends only the rest.
    sim.resume(script);
    sim.run();
    assert_eq!(sim.summary().statistics.successful, 10);
    assert_eq!(sim.provider.submitted.len(), 10 + (10 - done));
}

/// The outcomes and provider counts of a clean run of the crash scenario.
fn crash_scenario() -> (Script, usize, usize) {
    let script = Script {
        processing_ms: 2 * 3_600_000,
        expire_first: 1,
        server_errors: [(3, 1)].into(),
        wrong: [1].into(),
        ..Script::default()
    };
    (script, 9, 4)
}

#[test]
fn a_crash_before_any_input_resumes_to_the_same_results_and_never_pays_twice() {
    let (script, rows, max_lines) = crash_scenario();
    let mut clean = Sim::new(rows, max_lines, script.clone());
    clean.run();
    assert_eq!(clean.summary().status, RunStatus::Completed);
    let expected = clean.outcomes();
    let inputs = clean.handled;
    assert!(inputs > 40, "{inputs} inputs");
    for crash in 1..=inputs {
        let mut sim = Sim::new(rows, max_lines, script.clone());
        sim.crash_before = Some(crash);
        sim.run();
        if !sim.crashed {
            continue;
        }
        sim.resume(script.clone());
        sim.run();
        let s = sim.summary();
        assert_eq!(
            s.status,
            RunStatus::Completed,
            "crash before input {crash}: {:?}\n{}",
            s.abort_reason,
            sim.journal
        );
        let outcomes: BTreeMap<_, _> = sim
            .outcomes()
            .into_iter()
            .map(|(row, (status, prediction, _))| (row, (status, prediction)))
            .collect();
        let want: BTreeMap<_, _> = expected
            .iter()
            .map(|(row, (status, prediction, _))| (*row, (*status, prediction.clone())))
            .collect();
        assert_eq!(outcomes, want, "crash before input {crash}");
        // Never pays twice: no file gets two batches, no (row, attempt) is in two.
        let mut per_file: HashMap<&str, usize> = HashMap::new();
        for b in &sim.provider.batches {
            *per_file.entry(&b.input_file).or_default() += 1;
        }
        assert!(
            per_file.values().all(|n| *n == 1),
            "crash {crash}: {per_file:?}"
        );
        let mut seen = HashSet::new();
        for (row, attempt, _) in &sim.provider.submitted {
            assert!(
                seen.insert((row, attempt)),
                "crash {crash}: row {row} attempt {attempt} submitted twice"
            );
        }
        assert!(
            sim.provider.creates <= clean.provider.creates,
            "crash {crash}: {} creates, clean {}",
            sim.provider.creates,
            clean.provider.creates
        );
        // An upload whose id was never journaled may be made again; no more.
        assert!(
            sim.provider.uploads <= clean.provider.uploads + 1,
            "crash {crash}: {} uploads, clean {}\n{}\n{:?}",
            sim.provider.uploads,
            clean.provider.uploads,
            sim.journal,
            sim.provider.submitted
        );
    }
}

#[test]
fn a_resume_finds_a_batch_created_before_the_crash_instead_of_creating_another() {
    let script = Script {
        processing_ms: 3_600_000,
        ..Script::default()
    };
    let mut sim = Sim::new(3, 50, script.clone());
    // Crash right after the provider created the batch, before the answer came.
    let mut creates_seen = 0;
    for crash in 1.. {
        let mut s = Sim::new(3, 50, script.clone());
        s.crash_before = Some(crash);
        s.run();
        if s.provider.creates == 1 && !s.journal.contains("\"created\"") {
            sim = s;
            creates_seen = 1;
            break;
        }
        assert!(crash < 100);
    }
    assert_eq!(creates_seen, 1);
    sim.resume(script);
    sim.run();
    assert_eq!(sim.summary().status, RunStatus::Completed);
    assert_eq!(
        sim.provider.creates, 1,
        "found by its file, not created again"
    );
    assert!(sim.journal.contains("\"created\""));
}

#[test]
fn settings_are_checked_and_only_openai_has_a_batch_api() {
    let mut c = config(0);
    assert_eq!(
        BatchRun::new(c.clone(), csv(1), START)
            .unwrap_err()
            .to_string(),
        "batchApi.maxLines is 0; it must be between 1 and 50000"
    );
    c.batch_api = Some(BatchApiConfig {
        poll_min_ms: 10_000,
        poll_max_ms: 5_000,
        ..BatchApiConfig::default()
    });
    assert!(BatchRun::new(c.clone(), csv(1), START).is_err());
    c.batch_api = None;
    c.provider = crate::provider::Provider::HttpJson(crate::provider::HttpJsonConfig {
        url: "http://x.test".into(),
        prediction_field: "p".into(),
    });
    let err = BatchRun::new(c, csv(1), START).unwrap_err().to_string();
    assert!(err.contains("the http provider has no batch API"), "{err}");
}

// ---------------------------------------------------------------------------
// Anthropic's Message Batches
// ---------------------------------------------------------------------------

#[test]
fn anthropic_creates_batches_inline_one_at_a_time_and_matches_results_out_of_order_at_half_price() {
    let script = Script {
        processing_ms: 6 * 3_600_000,
        wrong: [4, 9].into(),
        ..Script::default()
    };
    let mut sim = Sim::anthropic(120, 50, script);
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!((s.statistics.successful, s.statistics.failed), (120, 0));
    assert_eq!(s.evaluation.agreements, 118);
    // Three batches of 50, 50, 20 created with their requests inline: no upload.
    assert_eq!((sim.provider.uploads, sim.provider.creates), (0, 3));
    assert_eq!(sim.outputs_seen, ["submit"; 3]);
    let batches = s.provider_batches.as_ref().unwrap();
    assert_eq!(
        batches.iter().map(|b| b.lines).collect::<Vec<_>>(),
        [50, 50, 20]
    );
    assert!(batches.iter().all(|b| b.status == "done"), "{batches:?}");
    assert!(batches.iter().all(|b| b.file_id.is_none()));
    assert_eq!(batches[0].batch_id.as_deref(), Some("msgbatch_1"));
    // The custom ids name the run: `RUN-r{row}-a{attempt}`.
    let ids: HashSet<String> = sim
        .provider
        .files
        .values()
        .flatten()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["custom_id"].to_string())
        .collect();
    assert!(ids.contains("\"RUN-r0-a1\"") && ids.contains("\"RUN-r119-a1\""));
    let outcomes = sim.outcomes();
    assert_eq!(outcomes.len(), 120);
    assert!(outcomes.values().all(|(_, _, attempts)| *attempts == 1));
    assert_eq!(outcomes[&4].1.as_deref(), Some(LABELS[5 % 3]));
    // Polled as OpenAI's: from 5 s, growing to a minute, never faster.
    assert!(sim.provider.poll_times[0].since(START) >= 4_000);
    assert!(sim
        .provider
        .poll_times
        .windows(2)
        .all(|w| w[1].since(w[0]) <= 60_000));
    // Half of Claude Haiku 4.5's list price ($1 / $5 per million).
    let price = s.cost.price.as_ref().unwrap();
    assert!(price.batch_api);
    assert_eq!(
        (
            price.price.input_per_million,
            price.price.output_per_million
        ),
        (0.5, 2.5)
    );
    // The journal: each shard's intent, then its batch, then its end; a shard's
    // intent only after the one before it has its batch (one create at a time).
    let kinds: Vec<String> = sim
        .records()
        .iter()
        .map(|r| format!("{}{}", r["record"].as_str().unwrap(), r["shard"]))
        .collect();
    let at = |k: &str| kinds.iter().position(|x| *x == k).unwrap();
    for shard in 1..=3 {
        assert!(at(&format!("submitting{shard}")) < at(&format!("created{shard}")));
        assert!(at(&format!("created{shard}")) < at(&format!("ended{shard}")));
        assert!(at(&format!("ended{shard}")) < at(&format!("done{shard}")));
    }
    assert!(at("created1") < at("submitting2") && at("created2") < at("submitting3"));
    assert!(!kinds.iter().any(|k| k.starts_with("uploaded")));
    let intent = &sim.records()[at("submitting1")];
    assert_eq!(intent["lines"], 50);
    assert_eq!(intent["members"], json!([[0, 50, 1]]));
    // Counts shown as progress.
    let progress = serde_json::to_value(sim.batch.progress(sim.now)).unwrap();
    assert_eq!(progress["providerBatches"][2]["requestCounts"]["total"], 20);
}

#[test]
fn anthropic_expired_lines_and_canceled_lines_are_the_only_ones_sent_again() {
    let script = Script {
        processing_ms: 24 * 3_600_000,
        expire_first: 1,
        ..Script::default()
    };
    let mut sim = Sim::anthropic(10, 50, script);
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!(s.statistics.successful, 10);
    assert_eq!(sim.provider.creates, 2);
    let second: Vec<(usize, u32)> = sim
        .provider
        .submitted
        .iter()
        .filter(|(_, _, b)| b == "msgbatch_2")
        .map(|(r, a, _)| (*r, *a))
        .collect();
    assert_eq!(second, [(1, 2), (3, 2), (5, 2), (7, 2), (9, 2)]);
    assert_eq!(sim.outcomes()[&0].2, 1);
    assert_eq!(sim.outcomes()[&1].2, 2);

    // Cancelled half-way: what ran is kept, what was canceled waits for a resume.
    let script = Script {
        processing_ms: 10 * 3_600_000,
        ..Script::default()
    };
    let mut sim = Sim::anthropic(10, 50, script.clone());
    while sim.now.since(START) < 5 * 3_600_000 {
        sim.drain();
        sim.now = sim.batch.poll_timeout().unwrap().max(sim.now);
    }
    sim.batch
        .handle(sim.now, BatchInput::CancelBatches)
        .unwrap();
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Interrupted);
    let done = s.statistics.successful;
    assert!((1..10).contains(&done), "{done} done at cancel");
    assert_eq!(s.statistics.failed, 0, "canceled rows are not failures");
    assert_eq!(
        s.provider_batches.as_ref().unwrap()[0].status,
        "done (canceled)"
    );
    sim.resume(script);
    sim.run();
    assert_eq!(sim.summary().statistics.successful, 10);
    assert_eq!(sim.provider.submitted.len(), 10 + (10 - done));
    assert_eq!(sim.provider.creates, 2);
}

#[test]
fn anthropic_errored_lines_an_invalid_request_is_final_an_api_error_is_retried() {
    let script = Script {
        processing_ms: 60_000,
        // Row 2's request is invalid; row 5 meets a server error once, row 6
        // on every attempt.
        invalid: [(2, 1)].into(),
        server_errors: [(5, 1), (6, 1), (6, 2), (6, 3)].into(),
        ..Script::default()
    };
    let mut sim = Sim::anthropic(8, 50, script);
    sim.run();
    let s = sim.summary();
    assert_eq!((s.statistics.successful, s.statistics.failed), (6, 2));
    let outcomes = sim.outcomes();
    assert_eq!(outcomes[&2].0, ItemStatus::Failed);
    assert_eq!(outcomes[&2].2, 1, "an invalid request is not sent again");
    assert_eq!(outcomes[&5], (ItemStatus::Success, Some("owl".into()), 2));
    assert_eq!((outcomes[&6].0, outcomes[&6].2), (ItemStatus::Failed, 3));
    let errors = &s.overall_progress.errors;
    let of = |row: usize| {
        errors
            .iter()
            .find(|e| e.row == row)
            .map(|e| e.error.clone())
            .unwrap()
    };
    assert!(of(2).contains("bad image"), "{}", of(2));
    assert!(of(6).contains("gave up after 3 attempts"), "{}", of(6));
    assert_eq!(
        sim.provider.creates, 3,
        "all 8, then rows 5 and 6, then row 6"
    );
    assert_eq!(sim.provider.submitted.len(), 8 + 2 + 1);
}

#[test]
fn anthropic_a_crash_before_any_input_resumes_to_the_same_results_and_never_creates_twice() {
    let (script, rows, max_lines) = crash_scenario();
    let mut clean = Sim::anthropic(rows, max_lines, script.clone());
    clean.run();
    assert_eq!(clean.summary().status, RunStatus::Completed);
    let expected: BTreeMap<_, _> = clean
        .outcomes()
        .into_iter()
        .map(|(row, (status, prediction, _))| (row, (status, prediction)))
        .collect();
    let inputs = clean.handled;
    assert!(inputs > 30, "{inputs} inputs");
    let mut finds = 0;
    for crash in 1..=inputs {
        let mut sim = Sim::anthropic(rows, max_lines, script.clone());
        sim.crash_before = Some(crash);
        sim.run();
        if !sim.crashed {
            continue;
        }
        let lists = sim.provider.lists;
        sim.resume(script.clone());
        sim.run();
        finds += usize::from(sim.provider.lists > lists);
        let s = sim.summary();
        assert_eq!(
            s.status,
            RunStatus::Completed,
            "crash before input {crash}: {:?}\n{}",
            s.abort_reason,
            sim.journal
        );
        let outcomes: BTreeMap<_, _> = sim
            .outcomes()
            .into_iter()
            .map(|(row, (status, prediction, _))| (row, (status, prediction)))
            .collect();
        assert_eq!(outcomes, expected, "crash before input {crash}");
        // Never pays twice: no (row, attempt) is in two batches.
        let mut seen = HashSet::new();
        for (row, attempt, _) in &sim.provider.submitted {
            assert!(
                seen.insert((row, attempt)),
                "crash {crash}: row {row} attempt {attempt} submitted twice\n{}",
                sim.journal
            );
        }
        assert!(
            sim.provider.creates <= clean.provider.creates,
            "crash {crash}: {} creates, clean {}",
            sim.provider.creates,
            clean.provider.creates
        );
    }
    assert!(finds > 0, "some crash left a create to look for");
}

/// Runs until the provider has created a batch whose id the run has not
/// journaled (the crash came between the create and its answer).
fn crashed_while_creating(script: &Script, rows: usize) -> Sim {
    for crash in 1..200 {
        let mut s = Sim::anthropic(rows, 50, script.clone());
        s.crash_before = Some(crash);
        s.run();
        if s.provider.creates == 1 && !s.journal.contains("\"created\"") {
            assert!(s.journal.contains("\"submitting\""), "{}", s.journal);
            return s;
        }
    }
    panic!("no crash while creating");
}

#[test]
fn anthropic_a_resume_finds_the_batch_created_before_the_crash_among_others() {
    let script = Script {
        processing_ms: 3_600_000,
        page: Some(2),
        ..Script::default()
    };
    let mut sim = crashed_while_creating(&script, 3);
    let created = sim.provider.batches[0].created_at;
    // Other clients' batches: one as large but from before the run, several in
    // the window but of another size (listed two a page).
    sim.provider.foreign(Millis(created.0 - 3_600_000), 3);
    for _ in 0..4 {
        sim.provider.foreign(sim.now, 4);
    }
    sim.resume(script);
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!(s.statistics.successful, 3);
    assert_eq!(sim.provider.creates, 1, "found, not created again");
    assert!(sim.provider.lists >= 3, "paged: {}", sim.provider.lists);
    let created: Vec<Value> = sim
        .records()
        .into_iter()
        .filter(|r| r["record"] == "created")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["batchId"], "msgbatch_1");
}

#[test]
fn anthropic_several_candidates_are_told_apart_by_their_results() {
    let script = Script {
        processing_ms: 3_600_000,
        ..Script::default()
    };
    // Another client's batch of the same size, created half a minute before
    // ours (within the clock's allowance), has ended by the resume; ours runs
    // on. Its results are read: none is the run's, so ours is the one.
    let mut sim = crashed_while_creating(&script, 3);
    let ours = sim.provider.batches[0].created_at;
    sim.provider.foreign(Millis(ours.0 - 30_000), 3);
    sim.now = ours.plus(3_600_000 - 15_000);
    sim.resume(script.clone());
    sim.run();
    assert_eq!(sim.summary().status, RunStatus::Completed);
    assert_eq!(sim.summary().statistics.successful, 3);
    assert_eq!(sim.provider.creates, 1);
    let created: Vec<Value> = sim
        .records()
        .into_iter()
        .filter(|r| r["record"] == "created")
        .collect();
    assert_eq!(created.len(), 1, "{}", sim.journal);
    assert_eq!(created[0]["batchId"], "msgbatch_1");
    assert_eq!(sim.provider.downloads, 2, "the other's results, then ours");

    // Ours has ended and the other runs on: ours is read, and it is the one.
    let mut sim = crashed_while_creating(&script, 3);
    let ours = sim.provider.batches[0].created_at;
    sim.provider.foreign(ours.plus(10_000), 3);
    sim.now = ours.plus(3_600_000);
    sim.resume(script);
    sim.run();
    assert_eq!(sim.summary().statistics.successful, 3);
    assert_eq!(sim.provider.creates, 1);
    assert!(
        sim.journal.contains("\"batchId\":\"msgbatch_1\""),
        "{}",
        sim.journal
    );
    assert_eq!(
        sim.provider.downloads, 1,
        "read once: the probe was the download"
    );
}

#[test]
fn anthropic_a_refused_create_stops_resumably_and_the_resume_builds_the_requests_again() {
    let script = Script {
        processing_ms: 60_000,
        fail_first: 1,
        ..Script::default()
    };
    let mut sim = Sim::anthropic(6, 50, script.clone());
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Aborted);
    let reason = s.abort_reason.as_deref().unwrap();
    assert!(reason.contains("HTTP 400"), "{reason}");
    assert!(reason.contains("does not take images"), "{reason}");
    assert_eq!(s.statistics.remaining, 6);
    assert_eq!(sim.provider.creates, 0);
    assert!(sim.files.is_empty(), "the shard's file is discarded");
    sim.resume(Script {
        fail_first: 0,
        ..script
    });
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!(s.statistics.successful, 6);
    assert_eq!(sim.provider.creates, 1);
    assert!(sim.provider.lists >= 1, "looked for a batch first");
    let batches = s.provider_batches.as_ref().unwrap();
    assert_eq!(batches[0].status, "done (not created)");
    assert_eq!(batches[1].status, "done");
    assert!(
        sim.outcomes().values().all(|o| o.2 == 1),
        "no attempt spent"
    );
}

#[test]
fn a_create_whose_answer_is_lost_is_looked_for_before_it_is_made_again() {
    for anthropic in [true, false] {
        let script = Script {
            processing_ms: 60_000,
            lost_create_answers: 1,
            ..Script::default()
        };
        let mut sim = if anthropic {
            Sim::anthropic(4, 50, script)
        } else {
            Sim::new(4, 50, script)
        };
        sim.run();
        assert_eq!(sim.summary().status, RunStatus::Completed, "{anthropic}");
        assert_eq!(sim.summary().statistics.successful, 4);
        assert_eq!(sim.provider.creates, 1, "anthropic {anthropic}");
    }
    // A create answered 500 may have made the batch too.
    let script = Script {
        processing_ms: 60_000,
        create_500s: 2,
        ..Script::default()
    };
    let mut sim = Sim::anthropic(4, 50, script);
    sim.run();
    assert_eq!(sim.summary().status, RunStatus::Completed);
    assert_eq!(sim.provider.creates, 1);
    assert!(sim.provider.lists >= 2);
}

#[test]
fn anthropic_limits_are_its_own_and_the_body_stays_within_the_bytes() {
    let c = anthropic_config(100_000);
    assert!(BatchRun::new(c.clone(), csv(1), START).is_ok());
    let mut over = c.clone();
    over.batch_api.as_mut().unwrap().max_lines = 100_001;
    let err = BatchRun::new(over, csv(1), START).unwrap_err().to_string();
    assert!(err.contains("between 1 and 100000"), "{err}");
    let mut openai = config(50_001);
    openai.batch_api.as_mut().unwrap().max_lines = 50_001;
    assert!(BatchRun::new(openai, csv(1), START).is_err());
    let mut defaults = c.clone();
    defaults.batch_api = None;
    let run = BatchRun::new(defaults, csv(1), START).unwrap();
    assert_eq!(
        (run.cfg.max_lines, run.cfg.max_bytes),
        (100_000, 256_000_000)
    );

    // A request is ~830 bytes: a body of 2 kB holds two, framing included (the
    // sim checks each body against the limit).
    let mut small = anthropic_config(50);
    small.batch_api.as_mut().unwrap().max_bytes = 2_000;
    let mut sim = Sim::anthropic(7, 50, Script::default());
    sim.batch = BatchRun::new(small, csv(7), START).unwrap();
    sim.run();
    let s = sim.summary();
    assert_eq!(s.statistics.successful, 7);
    let batches = s.provider_batches.as_ref().unwrap();
    assert_eq!(
        batches.iter().map(|b| b.lines).collect::<Vec<_>>(),
        [2, 2, 2, 1],
        "{batches:?}"
    );
}

#[test]
fn cancelling_after_a_crash_while_creating_finds_the_batch_and_cancels_it_too() {
    let script = Script {
        processing_ms: 10 * 3_600_000,
        ..Script::default()
    };
    for anthropic in [true, false] {
        let mut sim = if anthropic {
            crashed_while_creating(&script, 6)
        } else {
            let mut found = None;
            for crash in 1..200 {
                let mut s = Sim::new(6, 50, script.clone());
                s.crash_before = Some(crash);
                s.run();
                if s.provider.creates == 1 && !s.journal.contains("\"created\"") {
                    found = Some(s);
                    break;
                }
            }
            found.expect("a crash while creating")
        };
        sim.now = sim.now.plus(5 * 3_600_000);
        sim.resume(script.clone());
        // `shadow-batch cancel`: cancel at once.
        sim.batch
            .handle(sim.now, BatchInput::CancelBatches)
            .unwrap();
        sim.run();
        let s = sim.summary();
        assert_eq!(s.status, RunStatus::Interrupted, "anthropic {anthropic}");
        assert!(
            sim.provider.batches[0].cancelled_at.is_some(),
            "anthropic {anthropic}: the batch found was cancelled"
        );
        let done = s.statistics.successful;
        assert!((1..6).contains(&done), "anthropic {anthropic}: {done}");
        assert_eq!(sim.provider.creates, 1, "nothing new submitted");
        // A resume then sends only the rest.
        sim.resume(script.clone());
        sim.run();
        assert_eq!(sim.summary().statistics.successful, 6);
        assert_eq!(sim.provider.submitted.len(), 6 + (6 - done));
    }
}

#[test]
fn a_lost_provider_journal_is_rebuilt_and_no_row_is_sent_twice() {
    let script = Script {
        processing_ms: 2 * 3_600_000,
        wrong: [1].into(),
        ..Script::default()
    };
    let (rows, max_lines) = (9, 4);
    let mut clean = Sim::new(rows, max_lines, script.clone());
    clean.run();
    assert_eq!(clean.summary().status, RunStatus::Completed);
    let expected = clean.outcomes();
    assert_eq!(clean.provider.creates, 3);
    let mut rebuilt = 0;
    for crash in 1..=clean.handled {
        let mut sim = Sim::new(rows, max_lines, script.clone());
        sim.crash_before = Some(crash);
        sim.run();
        if !sim.crashed {
            continue;
        }
        let created_before = sim.provider.creates;
        // The provider journal is gone; the progress file is not.
        sim.resume_lost(script.clone(), "").unwrap();
        rebuilt += usize::from(created_before > 0);
        sim.run();
        let s = sim.summary();
        assert_eq!(
            s.status,
            RunStatus::Completed,
            "crash before input {crash}: {:?}\n{}",
            s.abort_reason,
            sim.journal
        );
        assert_eq!(sim.outcomes(), expected, "crash before input {crash}");
        // Never pays twice: every row in one batch, no more creates than a clean run.
        let mut seen = HashSet::new();
        for (row, _, batch) in &sim.provider.submitted {
            assert!(
                seen.insert(*row),
                "crash {crash}: row {row} sent again (in {batch})\n{}",
                sim.journal
            );
        }
        assert_eq!(
            sim.provider.creates, clean.provider.creates,
            "crash {crash}"
        );
        // The rebuilt journal names every batch.
        for b in &sim.provider.batches {
            assert!(
                sim.journal.contains(&b.id),
                "crash {crash}: {} not journaled",
                b.id
            );
        }
        // Nothing is left at the provider: every upload (one the crash left
        // unnamed too) and every result file is deleted.
        for id in sim.provider.names.keys() {
            assert!(
                sim.provider.deleted.contains(id),
                "crash {crash}: {id} left"
            );
        }
        for b in &sim.provider.batches {
            for kind in ["out", "err"] {
                let f = format!("{}-{kind}", b.id);
                assert!(sim.provider.deleted.contains(&f), "crash {crash}: {f} left");
            }
        }
    }
    assert!(rebuilt > 5, "{rebuilt} crashes after a create");
}

/// The records of a crashed run's journal, as JSON values.
fn journal_values(journal: &str) -> Vec<Value> {
    journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn journal_text(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

/// A run of 8 rows in shards of 4, crashed once both batches exist.
fn crashed_with_two_batches() -> (Sim, Script) {
    let script = Script {
        processing_ms: 3_600_000,
        ..Script::default()
    };
    for crash in 1..400 {
        let mut sim = Sim::new(8, 4, script.clone());
        sim.crash_before = Some(crash);
        sim.run();
        if sim.crashed && sim.journal.matches("\"created\"").count() == 2 {
            return (sim, script);
        }
    }
    panic!("no crash with two batches");
}

#[test]
fn a_journal_where_two_records_claim_the_same_rows_is_refused_naming_them() {
    let (mut sim, script) = crashed_with_two_batches();
    let mut records = journal_values(&sim.journal);
    let uploaded: Vec<usize> = (0..records.len())
        .filter(|&i| records[i]["record"] == "uploaded")
        .collect();
    // Shard 2's record now claims shard 1's rows (and shard 2's go unclaimed).
    let members = records[uploaded[0]]["members"].clone();
    records[uploaded[1]]["members"] = members;
    let tampered = journal_text(&records);
    sim.saved.clear();
    let err = sim.resume_lost(script, &tampered).unwrap_err();
    let text = err.to_string();
    let (a, b) = (uploaded[0] + 1, uploaded[1] + 1);
    assert!(
        text.contains(&format!("lines {a} and {b} both claim row 0")),
        "{text}"
    );
    assert!(matches!(err, UsageError::ProviderJournal { .. }), "{err:?}");
}

#[test]
fn a_journal_with_swapped_batch_ids_stops_the_run_naming_the_records_and_sends_nothing_again() {
    let (mut sim, script) = crashed_with_two_batches();
    let mut records = journal_values(&sim.journal);
    let created: Vec<usize> = (0..records.len())
        .filter(|&i| records[i]["record"] == "created")
        .collect();
    let (one, two) = (
        records[created[0]]["batchId"].clone(),
        records[created[1]]["batchId"].clone(),
    );
    records[created[0]]["batchId"] = two.clone();
    records[created[1]]["batchId"] = one;
    let tampered = journal_text(&records);
    // With the progress file: refused before anything, naming the line.
    let saved = sim.saved.clone();
    let err = sim.resume_lost(script.clone(), &tampered).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("line {} gives batch", created[0] + 1))
            || text.contains(&format!("line {} gives batch", created[1] + 1)),
        "{text}"
    );
    assert!(text.contains("progress file lists it as shard"), "{text}");
    // With the journal alone: the provider's word on the batch stops the run.
    sim.saved.clear();
    let submitted = sim.provider.submitted.len();
    sim.resume_lost(script, &tampered).unwrap();
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Aborted);
    let reason = s.abort_reason.as_ref().unwrap().to_string();
    assert!(
        reason.contains(&format!("line {} gives batch", created[0] + 1))
            && reason.contains("made from file-in-2"),
        "{reason}"
    );
    assert_eq!(sim.provider.submitted.len(), submitted, "no row sent again");
    assert_eq!(sim.provider.creates, 2);
    let _ = (saved, two);
}

#[test]
fn anthropic_a_lost_provider_journal_is_rebuilt_and_no_row_is_sent_twice() {
    let script = Script {
        processing_ms: 2 * 3_600_000,
        wrong: [1].into(),
        ..Script::default()
    };
    let (rows, max_lines) = (9, 4);
    let mut clean = Sim::anthropic(rows, max_lines, script.clone());
    clean.run();
    let expected = clean.outcomes();
    let mut rebuilt = 0;
    for crash in 1..=clean.handled {
        let mut sim = Sim::anthropic(rows, max_lines, script.clone());
        sim.crash_before = Some(crash);
        sim.run();
        if !sim.crashed {
            continue;
        }
        rebuilt += usize::from(sim.provider.creates > 0);
        sim.resume_lost(script.clone(), "").unwrap();
        sim.run();
        let s = sim.summary();
        assert_eq!(
            s.status,
            RunStatus::Completed,
            "crash before input {crash}: {:?}\n{}",
            s.abort_reason,
            sim.journal
        );
        assert_eq!(sim.outcomes(), expected, "crash before input {crash}");
        let mut seen = HashSet::new();
        for (row, _, batch) in &sim.provider.submitted {
            assert!(
                seen.insert(*row),
                "crash {crash}: row {row} sent again (in {batch})\n{}",
                sim.journal
            );
        }
        assert_eq!(
            sim.provider.creates, clean.provider.creates,
            "crash {crash}"
        );
    }
    assert!(rebuilt > 5, "{rebuilt} crashes after a create");
}

#[test]
fn anthropic_swapped_batch_ids_stop_the_run_when_the_results_are_another_shards() {
    let script = Script {
        processing_ms: 3_600_000,
        ..Script::default()
    };
    let mut found = None;
    for crash in 1..400 {
        let mut sim = Sim::anthropic(8, 4, script.clone());
        sim.crash_before = Some(crash);
        sim.run();
        if sim.crashed && sim.journal.matches("\"created\"").count() == 2 {
            found = Some(sim);
            break;
        }
    }
    let mut sim = found.expect("a crash with two batches");
    let mut records = journal_values(&sim.journal);
    let created: Vec<usize> = (0..records.len())
        .filter(|&i| records[i]["record"] == "created")
        .collect();
    let one = records[created[0]]["batchId"].clone();
    records[created[0]]["batchId"] = records[created[1]]["batchId"].clone();
    records[created[1]]["batchId"] = one;
    sim.saved.clear();
    let submitted = sim.provider.submitted.len();
    sim.resume_lost(script, &journal_text(&records)).unwrap();
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Aborted);
    let reason = s.abort_reason.clone().unwrap();
    assert!(
        reason.contains("gives batch msgbatch_") && reason.contains("results are of other rows"),
        "{reason}"
    );
    assert_eq!(sim.provider.submitted.len(), submitted, "no row sent again");
    assert_eq!(
        sim.outcomes().len(),
        0,
        "no row judged from another's answers"
    );
}
