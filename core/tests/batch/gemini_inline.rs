//! Gemini Batch Mode's inline batches, driven by hand through the sans-IO
//! `BatchRun`: a small shard is created with its requests inline (no upload),
//! its intent journaled first; its results are read from the finished
//! operation; and a session that crashed after the intent looks for the batch
//! by its display name and, finding none, builds the requests again and
//! creates them inline, never uploading.

use serde_json::{json, Value};

use shadow_core::batch::{fold_batch_journal, BatchApiConfig, BatchInput, BatchOutput, BatchRun};
use shadow_core::http::HttpResponse;
use shadow_core::provider::{GeminiConfig, Provider};
use shadow_core::{Millis, RunConfig};

use crate::harness::{csv, ok, START};

fn config() -> RunConfig {
    let provider = Provider::Gemini(GeminiConfig {
        base_url: "https://gemini.test".into(),
        model: "gemini-2.5-flash".into(),
        prompt: None,
    });
    RunConfig {
        run_id: "RUN".into(),
        max_retries: 2,
        batch_api: Some(BatchApiConfig {
            poll_min_ms: 1_000,
            ..BatchApiConfig::for_provider(&provider)
        }),
        provider,
        ..RunConfig::default()
    }
}

/// A Gemini answer naming `label`, as the live parser reads it.
fn answer(label: &str) -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": [{"text": format!("{{\"label\":\"{label}\"}}")}]}, "finishReason": "STOP"}],
           "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 5, "totalTokenCount": 105}})
}

/// What one session did: the calls it made (method and URL), the journal's
/// records, the create bodies it sent, and whether it finished.
#[derive(Default)]
struct Session {
    calls: Vec<String>,
    records: Vec<Value>,
    journal: String,
    bodies: Vec<Value>,
    finished: bool,
}

/// Drives `batch` until it finishes or waits on nothing, answering each call
/// with `provider` (given the method and URL, and a create's body).
fn drive(
    batch: &mut BatchRun,
    now: &mut Millis,
    provider: &mut dyn FnMut(&str, &str, Option<&Value>) -> HttpResponse,
) -> Session {
    let mut s = Session::default();
    let builder = batch.line_builder();
    let mut lines = std::collections::HashMap::new();
    let mut files: std::collections::HashMap<u32, String> = Default::default();
    for _ in 0..200 {
        while let Some(out) = batch.poll(*now) {
            match out {
                BatchOutput::BuildLine(order) => {
                    let line = builder.line(&order, "https://x.test/img.png", None);
                    let bytes = line.len() as u64;
                    lines.insert(order.ticket, line);
                    batch
                        .handle(
                            *now,
                            BatchInput::LineBuilt {
                                ticket: order.ticket,
                                bytes,
                            },
                        )
                        .unwrap();
                }
                BatchOutput::AppendLine { shard, ticket } => {
                    files
                        .entry(shard)
                        .or_default()
                        .push_str(&lines.remove(&ticket).unwrap());
                }
                BatchOutput::Upload(order) => panic!("an upload of shard {}", order.shard),
                BatchOutput::Submit(order) => {
                    assert!(order.rekeyed);
                    s.calls.push(format!("POST {}", order.url));
                    let body = order.body(&files[&order.shard]).unwrap();
                    assert_eq!(body.len() as u64, order.body_len());
                    let body: Value = serde_json::from_str(&body).unwrap();
                    let response = provider("POST", &order.url, Some(&body));
                    s.bodies.push(body);
                    batch
                        .handle(
                            *now,
                            BatchInput::Answer {
                                call: order.call,
                                response,
                            },
                        )
                        .unwrap();
                }
                BatchOutput::Call {
                    call,
                    request,
                    lines: streamed,
                } => {
                    assert!(!streamed, "nothing is downloaded: {}", request.url);
                    s.calls.push(format!("{} {}", request.method, request.url));
                    let response = provider(request.method, &request.url, None);
                    batch
                        .handle(*now, BatchInput::Answer { call, response })
                        .unwrap();
                }
                BatchOutput::Record(record) => {
                    let line = record.to_json_line();
                    s.records.push(serde_json::from_str(&line).unwrap());
                    s.journal.push_str(&line);
                    if !line.ends_with('\n') {
                        s.journal.push('\n');
                    }
                }
                BatchOutput::Finished { .. } => s.finished = true,
                _ => {}
            }
        }
        if s.finished {
            return s;
        }
        match batch.poll_timeout() {
            Some(t) if t > *now => *now = t,
            _ => return s,
        }
    }
    panic!("the run never finished");
}

fn kinds(s: &Session) -> Vec<&str> {
    s.records
        .iter()
        .map(|r| r["record"].as_str().unwrap())
        .collect()
}

/// The fake Gemini: the create makes `batches/b{n}` (its display name and
/// keys kept), running on its first read and done (inline results, labels by
/// row) on the next.
struct Gemini {
    created: Vec<Vec<String>>,
    names: Vec<String>,
    reads: usize,
}

impl Gemini {
    fn op(&self, n: usize, done: bool) -> Value {
        let mut op = json!({"name": format!("batches/b{n}"), "metadata": {
            "displayName": self.names[n],
            "state": if done { "BATCH_STATE_SUCCEEDED" } else { "BATCH_STATE_RUNNING" }}, "done": done});
        if done {
            let entries: Vec<Value> = self.created[n]
                .iter()
                .map(|key| {
                    let row: usize = key[1..key.find('-').unwrap()].parse().unwrap();
                    json!({"metadata": {"key": key}, "response": answer(crate::harness::LABELS[row % 3])})
                })
                .collect();
            op["response"] = json!({"inlinedResponses": {"inlinedResponses": entries}});
        }
        op
    }

    fn answer(&mut self, method: &str, url: &str, body: Option<&Value>) -> HttpResponse {
        if let (Some(body), true) = (body, url.ends_with(":batchGenerateContent")) {
            let keys = body
                .pointer("/batch/inputConfig/requests/requests")
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["metadata"]["key"].as_str().unwrap().to_string())
                .collect();
            self.created.push(keys);
            self.names
                .push(body["batch"]["displayName"].as_str().unwrap().to_string());
            return ok(self.op(self.created.len() - 1, false));
        }
        if method == "GET" && url.contains("/batches?") {
            return ok(json!({}));
        }
        let n: usize = url.rsplit("/batches/b").next().unwrap().parse().unwrap();
        self.reads += 1;
        ok(self.op(n, self.reads > 1))
    }
}

#[test]
fn a_small_gemini_shard_goes_inline_and_its_results_come_from_the_operation() {
    let mut now = START;
    let mut batch = BatchRun::new(config(), csv(3), now).unwrap();
    let mut gemini = Gemini {
        created: Vec::new(),
        names: Vec::new(),
        reads: 0,
    };
    let s = drive(&mut batch, &mut now, &mut |m, u, k| gemini.answer(m, u, k));
    assert!(s.finished);
    assert_eq!(
        kinds(&s),
        ["submitting", "created", "ended", "done"],
        "the intent first, no upload: {:#?}",
        s.records
    );
    assert_eq!(s.records[0]["members"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        s.calls,
        [
            "POST https://gemini.test/v1beta/models/gemini-2.5-flash:batchGenerateContent",
            // Running, then succeeded; then read for its inline results
            // (once the end is journaled).
            "GET https://gemini.test/v1beta/batches/b0",
            "GET https://gemini.test/v1beta/batches/b0",
            "GET https://gemini.test/v1beta/batches/b0",
        ]
    );
    assert_eq!(s.bodies[0]["batch"]["displayName"], "shadow-batch-RUN-1");
    assert_eq!(gemini.created, [["r0-a1", "r1-a1", "r2-a1"]]);
    let counts = batch.run().counts();
    assert_eq!((counts.successful, counts.failed), (3, 0));
    let shards = batch.provider_batches();
    assert_eq!(shards[0].file_id, None);
}

#[test]
fn after_a_crash_between_the_inline_intent_and_its_create_the_batch_is_looked_for_then_made_inline()
{
    // The first session journals the intent and crashes before the create
    // leaves: its journal ends at the `submitting` record.
    let mut now = START;
    let mut first = BatchRun::new(config(), csv(3), now).unwrap();
    let s = drive(&mut first, &mut now, &mut |m, u, _| {
        if m == "POST" {
            // Refused: the run stops with its journal ending at the intent,
            // as a crash before the create left would leave it (only its
            // first record is kept below).
            HttpResponse {
                status: 401,
                headers: Vec::new(),
                body: String::new(),
            }
        } else {
            panic!("{m} {u}")
        }
    });
    assert_eq!(kinds(&s)[0], "submitting");
    let journal: String = s
        .journal
        .lines()
        .take(1)
        .map(|l| format!("{l}\n"))
        .collect();

    now = now.plus(60_000);
    let mut second = BatchRun::new(config(), csv(3), now).unwrap();
    let folded = fold_batch_journal(journal.as_bytes()).unwrap();
    second
        .restore(now, std::iter::empty(), &folded, &[])
        .unwrap();
    assert_eq!(second.creates_to_find(), 1);
    let mut gemini = Gemini {
        created: Vec::new(),
        names: Vec::new(),
        reads: 0,
    };
    let s = drive(&mut second, &mut now, &mut |m, u, k| gemini.answer(m, u, k));
    assert!(s.finished);
    // Looked for by its display name first (none), then the rows are built
    // again into a new shard, created inline: never an upload.
    assert_eq!(
        s.calls[0],
        "GET https://gemini.test/v1beta/batches?pageSize=100"
    );
    assert_eq!(
        kinds(&s),
        ["done", "submitting", "created", "ended", "done"],
        "{:#?}",
        s.records
    );
    assert_eq!(s.bodies[0]["batch"]["displayName"], "shadow-batch-RUN-2");
    assert_eq!(gemini.created.len(), 1);
    assert_eq!(batch_counts(&second), (3, 0));
}

fn batch_counts(batch: &BatchRun) -> (usize, usize) {
    let c = batch.run().counts();
    (c.successful, c.failed)
}
