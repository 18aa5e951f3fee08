//! The batch-API simulation's harness: a fake provider (files, batches, list,
//! cancel, result files out of order) and a host that drives a `BatchRun`
//! through simulated hours, with no network and no real time: the clock jumps
//! to each deadline.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Value};

use shadow_core::batch::{
    fold_batch_journal, BatchApiConfig, BatchInput, BatchOutput, BatchRun, ProviderBatch,
};
use shadow_core::http::{HttpRequest, HttpResponse, TransportErrorKind};
use shadow_core::input::{parse_labels_csv, ColumnNames, LabelsCsv};
use shadow_core::journal::ItemStatus;
use shadow_core::provider::{AnthropicConfig, OpenAiConfig};
use shadow_core::report::Summary;
use shadow_core::{Millis, RunConfig, Ticket, UsageError};

use crate::sim::completion;

/// The batch settings a run goes by (the defaults filled in), as its run's
/// config carries them.
pub fn settings(run: &BatchRun) -> &BatchApiConfig {
    run.run()
        .config()
        .batch_api
        .as_ref()
        .expect("a batch run has batch settings")
}

pub const START: Millis = Millis(1_700_000_000_000);
pub const LABELS: [&str; 3] = ["cat", "dog", "owl"];

pub fn csv(rows: usize) -> LabelsCsv {
    let mut text = String::from("image,label\n");
    for r in 0..rows {
        text.push_str(&format!("https://x.test/{r}.png,{}\n", LABELS[r % 3]));
    }
    parse_labels_csv(&text, &ColumnNames::default()).unwrap()
}

pub fn config(max_lines: usize) -> RunConfig {
    RunConfig {
        run_id: "RUN".into(),
        max_retries: 2,
        provider: shadow_core::provider::Provider::OpenAi(OpenAiConfig {
            base_url: "https://api.test/v1".into(),
            model: "gpt-4o-mini".into(),
            detail: shadow_core::provider::ImageDetail::Low,
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
pub fn anthropic_config(max_lines: usize) -> RunConfig {
    let provider = shadow_core::provider::Provider::Anthropic(AnthropicConfig {
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

pub const ANTHROPIC: &str = "https://anthropic.test/v1/messages/batches";

/// Which batch API a simulated run speaks: the scenarios both go through are
/// written once and run for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI's Batch API: an uploaded file, then a batch made from it.
    OpenAi,
    /// Anthropic's Message Batches: the requests inline in the create.
    Anthropic,
}

impl Dialect {
    pub const BOTH: [Dialect; 2] = [Dialect::OpenAi, Dialect::Anthropic];

    /// The id the fake provider gives the `n`th batch the run creates.
    pub fn batch_id(self, n: usize) -> String {
        match self {
            Dialect::OpenAi => format!("batch_{n}"),
            Dialect::Anthropic => format!("msgbatch_{n}"),
        }
    }

    /// The provider journal's record of a shard's first step: its upload, or
    /// (Anthropic, no upload) the intent to create its batch.
    pub fn first_record(self) -> &'static str {
        match self {
            Dialect::OpenAi => "uploaded",
            Dialect::Anthropic => "submitting",
        }
    }

    /// How the API spells a cancelled batch's status.
    pub fn cancelled(self) -> &'static str {
        match self {
            Dialect::OpenAi => "cancelled",
            Dialect::Anthropic => "canceled",
        }
    }
}

/// How the fake provider treats what it is given.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// How long a batch takes, from creation to `completed`.
    pub processing_ms: u64,
    /// The first this-many batches created expire, having run only their even
    /// lines.
    pub expire_first: usize,
    /// The first this-many batches created fail validation.
    pub fail_first: usize,
    /// The first this-many batches created fail with `token_limit_exceeded`.
    pub queue_full_first: usize,
    /// (row, attempt) answered with HTTP 500.
    pub server_errors: HashSet<(usize, u32)>,
    /// Rows whose answer disagrees with the label.
    pub wrong: HashSet<usize>,
    /// Answer creates with 500 this many times first.
    pub create_500s: usize,
    /// Answer uploads with this status (no file).
    pub upload_status: Option<u16>,
    /// (row, attempt) whose request is invalid (Anthropic: an errored line of
    /// type `invalid_request_error`).
    pub invalid: HashSet<(usize, u32)>,
    /// Create this many batches, then lose the answer (the host sees a
    /// timeout).
    pub lost_create_answers: usize,
    /// Batches per page of an Anthropic list.
    pub page: Option<usize>,
}

impl Script {
    /// Batches that take `processing_ms` and meet nothing else.
    pub fn taking(processing_ms: u64) -> Script {
        Script {
            processing_ms,
            ..Script::default()
        }
    }
}

#[derive(Debug)]
pub struct FakeBatch {
    pub id: String,
    pub input_file: String,
    pub created_at: Millis,
    pub fate: Fate,
    pub cancelled_at: Option<Millis>,
    /// Another client's batch (not counted as this run's create).
    pub foreign: bool,
    /// What the create said of it (OpenAI).
    pub metadata: Value,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fate {
    Complete,
    Expire,
    Fail,
    QueueFull,
}

#[derive(Debug, Default)]
pub struct FakeProvider {
    pub script: Script,
    pub files: HashMap<String, Vec<String>>,
    pub batches: Vec<FakeBatch>,
    pub uploads: usize,
    pub creates: usize,
    pub polls: usize,
    /// (row, attempt) of every line of every batch created, with its batch.
    pub submitted: Vec<(usize, u32, String)>,
    pub poll_times: Vec<Millis>,
    pub lists: usize,
    pub downloads: usize,
    /// Uploaded file id -> (name, bytes).
    pub names: HashMap<String, (String, u64)>,
    /// Files deleted (input, output and error).
    pub deleted: HashSet<String>,
    pub file_lists: usize,
}

pub fn ok(body: Value) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![],
        body: body.to_string(),
    }
}

pub fn status(code: u16, message: &str) -> HttpResponse {
    HttpResponse {
        status: code,
        headers: vec![],
        body: json!({"error": {"message": message, "code": null}}).to_string(),
    }
}

/// (row, attempt) of `r{row}-a{attempt}` or `{run}-r{row}-a{attempt}`.
pub fn row_attempt(custom_id: &str) -> (usize, u32) {
    let tail = custom_id
        .rsplit_once("-r")
        .map_or(&custom_id[1..], |(_, t)| t);
    let (r, a) = tail.split_once("-a").unwrap();
    (r.parse().unwrap(), a.parse().unwrap())
}

impl FakeProvider {
    pub fn upload(&mut self, name: &str, lines: Vec<String>) -> HttpResponse {
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

    pub fn create(&mut self, now: Millis, body: &str) -> HttpResponse {
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
        let i = self.add_batch(now, format!("batch_{n}"), file, fate, v["metadata"].clone());
        ok(self.object(now, i))
    }

    /// Records batch `id`, made now from the stored `file`: its rows as
    /// submitted to it, and the batch. Returns its index.
    fn add_batch(
        &mut self,
        now: Millis,
        id: String,
        file: String,
        fate: Fate,
        metadata: Value,
    ) -> usize {
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
            metadata,
        });
        self.batches.len() - 1
    }

    pub fn ended(&self, now: Millis, b: &FakeBatch) -> bool {
        now.since(b.created_at) >= self.script.processing_ms || b.cancelled_at.is_some()
    }

    pub fn object(&self, now: Millis, i: usize) -> Value {
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

    pub fn batch_index(&self, id: &str) -> usize {
        self.batches.iter().position(|b| b.id == id).unwrap()
    }

    /// The output (`-out`) or error (`-err`) file of a batch, lines shuffled.
    pub fn result_file(&self, now: Millis, file: &str) -> Vec<String> {
        let (id, kind) = file.rsplit_once('-').unwrap();
        let b = &self.batches[self.batch_index(id)];
        let mut lines = Vec::new();
        for (n, line) in self.files[&b.input_file].iter().enumerate() {
            let v: Value = serde_json::from_str(line).unwrap();
            let custom_id = v["custom_id"].as_str().unwrap();
            let (row, attempt) = row_attempt(custom_id);
            let line = if !self.ran(b, n) {
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
                let label = self.answer_of(row);
                (kind == "out").then(|| {
                    // The live run's answer (the engine simulation's), as the body.
                    let body: Value = serde_json::from_str(&completion(label)).unwrap();
                    json!({"id": format!("req-{n}"), "custom_id": custom_id, "error": null,
                        "response": {"status_code": 200, "request_id": "r", "body": body}})
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
    pub fn next_fate(&self) -> Fate {
        if self.creates <= self.script.expire_first {
            Fate::Expire
        } else {
            Fate::Complete
        }
    }

    /// `POST /v1/messages/batches`: the requests inline. The first
    /// `fail_first` creates are refused (400), as Anthropic refuses a create
    /// whose requests do not validate.
    pub fn create_inline(&mut self, now: Millis, body: &str) -> HttpResponse {
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
        self.files.insert(
            file.clone(),
            requests.iter().map(Value::to_string).collect(),
        );
        let i = self.add_batch(now, id, file, fate, Value::Null);
        ok(self.message_batch(now, i))
    }

    /// Another client's batch of `count` requests, created at `at`, running
    /// `processing_ms` from then.
    pub fn foreign(&mut self, at: Millis, count: usize) -> String {
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
    /// The label the model answers for `row`: its own, or the next one for the
    /// rows the script makes wrong.
    fn answer_of(&self, row: usize) -> &'static str {
        if self.script.wrong.contains(&row) {
            LABELS[(row + 1) % 3]
        } else {
            LABELS[row % 3]
        }
    }

    pub fn ran(&self, b: &FakeBatch, n: usize) -> bool {
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
    pub fn message_batch(&self, now: Millis, i: usize) -> Value {
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

    pub fn row_attempt_of(&self, b: &FakeBatch, n: usize) -> (usize, u32) {
        let v: Value = serde_json::from_str(&self.files[&b.input_file][n]).unwrap();
        let id = v["custom_id"].as_str().unwrap();
        if b.foreign {
            return (usize::MAX, 0);
        }
        row_attempt(id)
    }

    /// A batch's results, as Anthropic serves them, lines shuffled.
    pub fn results(&self, now: Millis, id: &str) -> Result<Vec<String>, HttpResponse> {
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
                let label = self.answer_of(row);
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
    pub fn call_inline(
        &mut self,
        now: Millis,
        request: &HttpRequest,
    ) -> (HttpResponse, Vec<String>) {
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

    pub fn call(&mut self, now: Millis, request: &HttpRequest) -> (HttpResponse, Vec<String>) {
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
pub struct Sim {
    pub batch: BatchRun,
    pub now: Millis,
    pub provider: FakeProvider,
    pub built: HashMap<Ticket, String>,
    pub files: BTreeMap<u32, Vec<String>>,
    pub journal: String,
    pub results: String,
    pub summary: Option<Box<Summary>>,
    pub handled: usize,
    /// Stop (crash) before the input with this number is handled.
    pub crash_before: Option<usize>,
    pub crashed: bool,
    pub status_changes: usize,
    pub chunk: usize,
    /// Speaks Anthropic's Message Batches.
    pub anthropic: bool,
    /// Create calls in flight at once, at most (the sim answers at once: the
    /// orders seen between two answers).
    pub outputs_seen: Vec<&'static str>,
    /// The provider batches as the progress file last listed them.
    pub saved: Vec<ProviderBatch>,
    /// The run stops at this half-width (`--until-interval`), in rounds.
    pub until_interval: Option<f64>,
}

impl Sim {
    /// The lines of a shard's file, checked against the count and bytes an
    /// order gives for it.
    fn shard_file(&self, shard: u32, lines: usize, bytes: u64) -> Vec<String> {
        let file = self.files.get(&shard).cloned().expect("the shard file");
        assert_eq!(file.len(), lines);
        assert_eq!(file.iter().map(String::len).sum::<usize>() as u64, bytes);
        file
    }

    pub fn anthropic(rows: usize, max_lines: usize, script: Script) -> Sim {
        let mut sim = Sim::new(rows, max_lines, script);
        sim.anthropic = true;
        sim.batch = BatchRun::new(anthropic_config(max_lines), csv(rows), START).unwrap();
        sim
    }

    /// A run of `rows` rows in shards of at most `max_lines`, speaking `dialect`.
    pub fn of(dialect: Dialect, rows: usize, max_lines: usize, script: Script) -> Sim {
        match dialect {
            Dialect::OpenAi => Sim::new(rows, max_lines, script),
            Dialect::Anthropic => Sim::anthropic(rows, max_lines, script),
        }
    }

    /// [`Sim::of`], run to its end.
    pub fn ran(dialect: Dialect, rows: usize, max_lines: usize, script: Script) -> Sim {
        let mut sim = Sim::of(dialect, rows, max_lines, script);
        sim.run();
        sim
    }

    pub fn config(&self, max_lines: usize) -> RunConfig {
        let config = if self.anthropic {
            anthropic_config(max_lines)
        } else {
            config(max_lines)
        };
        RunConfig {
            until_interval: self.until_interval,
            ..config
        }
    }

    /// A run (OpenAI's) that stops once the agreement is known to ±`w`.
    pub fn until_interval(rows: usize, max_lines: usize, w: f64, script: Script) -> Sim {
        let mut sim = Sim::new(rows, max_lines, script);
        sim.until_interval = Some(w);
        sim.batch = BatchRun::new(sim.config(max_lines), csv(rows), START).unwrap();
        sim
    }

    pub fn new(rows: usize, max_lines: usize, script: Script) -> Sim {
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
            until_interval: None,
        }
    }

    pub fn feed(&mut self, input: BatchInput) -> bool {
        self.handled += 1;
        if self.crash_before == Some(self.handled) {
            self.crashed = true;
            return false;
        }
        self.batch.handle(self.now, input).unwrap();
        true
    }

    /// Drains the outputs, doing each; false once crashed.
    pub fn drain(&mut self) -> bool {
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
                    let lines = self.shard_file(order.shard, order.lines, order.bytes);
                    let body = format!(
                        "{}{}{}",
                        order.prefix,
                        lines.join(order.separator),
                        order.suffix
                    );
                    assert_eq!(body.len() as u64, order.body_len());
                    assert!(body.len() as u64 <= settings(&self.batch).max_bytes);
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
                    let lines = self.shard_file(order.shard, order.lines, order.bytes);
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
    pub fn run(&mut self) {
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

    /// Runs, the clock jumping to each deadline, until `reached` holds (as the
    /// run stands between two deadlines).
    pub fn run_until(&mut self, reached: impl Fn(&Sim) -> bool) {
        while !reached(self) {
            self.drain();
            self.now = self.batch.poll_timeout().unwrap().max(self.now);
        }
    }

    /// A new session after a crash: the same CSV, both journals folded back.
    pub fn resume(&mut self, script: Script) {
        let journal = self.journal.clone();
        self.new_session(script, &journal, false).unwrap();
    }

    /// A new session after a crash that also lost the provider journal (or
    /// left `journal` in its place): rebuilt from the progress file's
    /// provider batches and the provider.
    pub fn resume_lost(&mut self, script: Script, journal: &str) -> Result<(), UsageError> {
        self.new_session(script, journal, true)
    }

    /// A new session on the same CSV: the results journal and `journal` (the
    /// provider journal) folded back, and with `recover` the progress file's
    /// provider batches taken too.
    fn new_session(
        &mut self,
        script: Script,
        journal: &str,
        recover: bool,
    ) -> Result<(), UsageError> {
        let folded = shadow_core::journal::fold_journal(&self.results);
        let batches = fold_batch_journal(journal.as_bytes()).unwrap();
        self.now = self.now.plus(1_000);
        let mut batch = BatchRun::new(
            self.config(settings(&self.batch).max_lines),
            csv(self.batch.run().row_count()),
            self.now,
        )
        .unwrap();
        batch.restore(self.now, folded.results.iter().cloned(), &batches, &[])?;
        if recover {
            batch.recover(self.now, &self.saved, journal.is_empty())?;
        }
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

    pub fn summary(&self) -> &Summary {
        self.summary.as_deref().expect("finished")
    }

    /// Row -> (status, prediction, attempts) from the folded results journal.
    pub fn outcomes(&self) -> BTreeMap<usize, (ItemStatus, Option<String>, u32)> {
        shadow_core::journal::fold_journal(&self.results)
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

    pub fn records(&self) -> Vec<Value> {
        self.journal
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}
