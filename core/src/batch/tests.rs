//! Whole batch-API runs driven through simulated hours against a fake provider
//! (files, batches, list, cancel, result files out of order), with no network and
//! no real time: the clock jumps to each deadline.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Value};

use super::*;
use crate::input::{parse_labels_csv, ColumnNames};
use crate::journal::ItemStatus;
use crate::provider::OpenAiConfig;
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
}

#[derive(Debug)]
struct FakeBatch {
    id: String,
    input_file: String,
    created_at: Millis,
    fate: Fate,
    cancelled_at: Option<Millis>,
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

fn row_attempt(custom_id: &str) -> (usize, u32) {
    let (r, a) = custom_id[1..].split_once("-a").unwrap();
    (r.parse().unwrap(), a.parse().unwrap())
}

impl FakeProvider {
    fn upload(&mut self, lines: Vec<String>) -> HttpResponse {
        if let Some(code) = self.script.upload_status {
            return status(code, "upload refused");
        }
        self.uploads += 1;
        let id = format!("file-in-{}", self.uploads);
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

    fn call(&mut self, now: Millis, request: &HttpRequest) -> (HttpResponse, Vec<String>) {
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
                (ok(json!({})), self.result_file(now, file))
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
}

impl Sim {
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
                    let response = self.provider.upload(lines);
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
                BatchOutput::StatusChanged => self.status_changes += 1,
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
            config(self.batch.cfg.max_lines),
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
        .contains("a batch input file may hold at most 2000"));
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
