//! A deterministic simulation harness in the spirit of quinn-proto's `Pair`: a
//! scripted fake endpoint, and time that jumps straight to the next deadline.
//! Every run it drives is checked for the engine's invariants as it goes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use shadow_core::http::{HttpResponse, TransportErrorKind};
use shadow_core::input::{parse_labels_csv, ColumnNames, Item, LabelsCsv};
use shadow_core::journal::ItemResult;
use shadow_core::report::{BatchReport, RunStatus, Summary};
use shadow_core::{Input, Millis, Output, Run, RunConfig, SendOrder, Ticket};

pub const T0: Millis = Millis(1_737_714_600_000);

/// What the fake endpoint does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with a chat completion answering this label.
    Label(String),
    /// Any status with headers and body.
    Status(u16, Vec<(&'static str, String)>, String),
    /// 200 with this raw body.
    Body(String),
    /// No answer: the connection fails this way.
    Transport(TransportErrorKind),
    /// No answer, with the host's message.
    TransportSaying(TransportErrorKind, String),
    /// Never answers; the host's timeout fires.
    Hang,
}

pub fn ok(label: &str) -> Reply {
    Reply::Label(label.to_string())
}

pub fn status(code: u16) -> Reply {
    Reply::Status(code, vec![], String::new())
}

pub fn status_with(code: u16, headers: &[(&'static str, &str)]) -> Reply {
    Reply::Status(
        code,
        headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        String::new(),
    )
}

pub fn completion(label: &str) -> String {
    let content = serde_json::json!({ "label": label }).to_string();
    serde_json::json!({
        "id": "chatcmpl-sim",
        "object": "chat.completion",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content, "refusal": null }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105 }
    })
    .to_string()
}

/// `n` rows `img-{i}.png` with labels cycling through `labels`. With `n == 0`, a
/// CSV of no rows, built by hand: the reader refuses a file without rows, but the
/// engine still runs one.
pub fn csv_of(n: usize, labels: &[&str]) -> LabelsCsv {
    if n == 0 {
        return LabelsCsv {
            items: vec![],
            outline: shadow_core::input::CsvOutline {
                rows: 0,
                defects: 0,
                labels: Default::default(),
                image_column: "image".into(),
                label_column: "label".into(),
                id_column: None,
                extra_columns: Vec::new(),
            },
        };
    }
    let mut text = String::from("image,label\n");
    for i in 0..n {
        text.push_str(&format!("img-{i}.png,{}\n", labels[i % labels.len()]));
    }
    csv_text(&text)
}

/// The rows of a CSV's text.
pub fn csv_text(text: &str) -> LabelsCsv {
    parse_labels_csv(text, &ColumnNames::default()).expect("valid CSV")
}

pub fn config() -> RunConfig {
    RunConfig {
        run_id: T0.to_file_stamp(),
        csv_path: "training-data/labels.csv".into(),
        batch_size: 10,
        adaptive_concurrency: false,
        ..RunConfig::default()
    }
}

/// Everything the simulated host saw.
#[derive(Default, Debug)]
pub struct Log {
    pub sends: Vec<(Millis, SendOrder)>,
    pub done: Vec<ItemResult<'static>>,
    pub reports: Vec<BatchReport>,
    pub summary: Option<Summary>,
    pub max_in_flight: usize,
    /// (time, in-flight limit the engine may use) after each 429 or 2xx.
    pub events: Vec<(Millis, String)>,
    /// The engine's pace, once per simulated second.
    pub paces: Vec<(Millis, shadow_core::engine::Pace)>,
    /// The most rows the run held at once.
    pub max_rows_held: usize,
}

type Script = Box<dyn FnMut(&Item, &SendOrder, Millis) -> (u64, Reply)>;

pub struct Sim {
    pub run: Run,
    pub now: Millis,
    pub log: Log,
    script: Script,
    pending: BinaryHeap<Reverse<(Millis, u64, Ticket)>>,
    replies: HashMap<Ticket, Input>,
    seq: u64,
    in_flight: usize,
    not_before: Millis,
    cancel_at: Option<Millis>,
    cancelled_at: Option<Millis>,
    /// The CSV's rows, fed to a streaming run as it asks for them.
    feed: Option<std::vec::IntoIter<Item>>,
}

impl Sim {
    /// `script(item, order, now) -> (latency_ms, reply)`.
    pub fn new(
        config: RunConfig,
        csv: LabelsCsv,
        script: impl FnMut(&Item, &SendOrder, Millis) -> (u64, Reply) + 'static,
    ) -> Sim {
        Sim {
            run: Run::new(config, csv, T0).expect("valid config"),
            now: T0,
            log: Log::default(),
            script: Box::new(script),
            pending: BinaryHeap::new(),
            replies: HashMap::new(),
            seq: 0,
            in_flight: 0,
            not_before: Millis(0),
            cancel_at: None,
            cancelled_at: None,
            feed: None,
        }
    }

    /// As [`Sim::new`], with the run fed its rows as it asks for them
    /// ([`Run::streaming`]).
    pub fn streaming(
        config: RunConfig,
        csv: LabelsCsv,
        script: impl FnMut(&Item, &SendOrder, Millis) -> (u64, Reply) + 'static,
    ) -> Sim {
        let run = Run::streaming(config.clone(), &csv.outline, T0).expect("valid config");
        let mut sim = Sim::new(config, csv.clone(), script);
        sim.run = run;
        sim.feed = Some(csv.items.into_iter());
        sim
    }

    /// Cancel at `at` (the engine abandons what is still in flight after its
    /// `cancel_grace_ms`).
    pub fn cancel_at(mut self, at: Millis) -> Sim {
        self.cancel_at = Some(at);
        self
    }

    /// Runs until the engine emits its summary. Panics on a broken invariant.
    pub fn finish(mut self) -> Log {
        let mut idle_spins = 0;
        loop {
            let mut produced = false;
            while let Some(out) = self.run.poll(self.now) {
                produced = true;
                self.on_output(out);
            }
            if self.log.summary.is_some() {
                assert!(self.run.poll(self.now).is_none(), "output after Finished");
                assert_eq!(self.run.poll_timeout(), None, "deadline after Finished");
                return self.log;
            }
            let mut next = [
                self.pending.peek().map(|Reverse((at, _, _))| *at),
                self.run.poll_timeout(),
                self.cancel_at.filter(|_| self.cancelled_at.is_none()),
            ]
            .into_iter()
            .flatten()
            .min()
            .expect("stalled: nothing in flight, no deadline, and no summary");
            if next <= self.now {
                if !produced {
                    idle_spins += 1;
                    assert!(
                        idle_spins < 3,
                        "poll_timeout {next:?} <= now {:?} but poll does nothing",
                        self.now
                    );
                }
                next = self.now;
            } else {
                idle_spins = 0;
            }
            self.now = next;
            if self
                .log
                .paces
                .last()
                .is_none_or(|(at, _)| self.now.since(*at) >= 1_000)
            {
                self.log.paces.push((self.now, self.run.pace(self.now)));
            }
            self.deliver_due();
        }
    }

    fn deliver_due(&mut self) {
        if let Some(at) = self.cancel_at {
            if self.cancelled_at.is_none() && self.now >= at {
                self.cancelled_at = Some(self.now);
                self.run.handle(self.now, Input::Cancel).unwrap();
            }
        }
        while let Some(Reverse((at, _, ticket))) = self.pending.peek().copied() {
            if at > self.now {
                break;
            }
            self.pending.pop();
            let input = self.replies.remove(&ticket).unwrap();
            if let Input::Response { response, .. } = &input {
                self.note_pause(response);
            }
            self.in_flight -= 1;
            self.run
                .handle(self.now, input)
                .expect("ticket is in flight");
        }
    }

    /// The engine must not start anything before a retry-after the endpoint gave.
    fn note_pause(&mut self, response: &HttpResponse) {
        let limits = shadow_core::ratelimit::RateLimitHeaders::parse(response, self.now);
        let cap = self.run.config().max_retry_wait_ms;
        if response.status == 429 {
            if let Some(ms) = limits.retry_after_ms {
                self.not_before = self.not_before.max(self.now.plus(ms.min(cap)));
            }
            self.log.events.push((self.now, "429".into()));
        }
        let exhausted = limits.exhausted_for_ms();
        if exhausted > 0 {
            self.not_before = self.not_before.max(self.now.plus(exhausted));
        }
    }

    fn on_output(&mut self, out: Output) {
        self.log.max_rows_held = self.log.max_rows_held.max(self.run.rows_held());
        match out {
            Output::NeedRows { from, count } => {
                let feed = self
                    .feed
                    .as_mut()
                    .expect("only a streaming run asks for rows");
                let rows: Vec<Item> = feed.by_ref().take(count).collect();
                assert_eq!(
                    rows.first().map(|i| i.row),
                    Some(from),
                    "rows asked out of order"
                );
                self.run.push_rows(rows).expect("rows in order");
            }
            Output::Send(order) => self.on_send(order),
            Output::ItemDone(done) => {
                let result = self.run.result(&done).into_owned();
                assert!(
                    !self.log.done.iter().any(|d| d.row == result.row),
                    "row {} finished twice",
                    result.row
                );
                self.log.done.push(result);
            }
            Output::BatchReport { report } => {
                assert_eq!(
                    report.batch_number,
                    self.log.reports.len() + 1,
                    "batch reports out of order"
                );
                let progress = serde_json::to_value(self.run.progress(self.now)).unwrap();
                assert!(progress["batchNumber"].as_u64().unwrap() >= report.batch_number as u64);
                self.log.reports.push(report);
            }
            Output::Finished { summary } => {
                assert!(self.log.summary.is_none(), "two summaries");
                self.log.summary = Some(*summary);
            }
        }
    }

    fn on_send(&mut self, order: SendOrder) {
        let config = self.run.config().clone();
        assert!(self.cancelled_at.is_none(), "send after cancel: {order:?}");
        assert!(
            self.now >= self.not_before,
            "start at {:?} before the retry-after pause ends at {:?}",
            self.now,
            self.not_before
        );
        if let Some((last, _)) = self.log.sends.last() {
            assert!(
                self.now.since(*last) >= config.delay_ms,
                "two starts {} ms apart, delay is {}",
                self.now.since(*last),
                config.delay_ms
            );
        }
        if let Some(rpm) = config.rpm {
            if self.log.sends.len() >= 2 {
                let (two_back, _) = self.log.sends[self.log.sends.len() - 2];
                let gap_us = 60_000_000 / u64::from(rpm);
                assert!(
                    self.now.since(two_back) * 1000 >= gap_us,
                    "three starts within one rpm gap"
                );
            }
        }
        self.in_flight += 1;
        assert!(
            self.in_flight <= config.concurrency.unwrap_or(config.max_concurrency),
            "{} in flight, concurrency {:?}, max {}",
            self.in_flight,
            config.concurrency,
            config.max_concurrency
        );
        self.log.max_in_flight = self.log.max_in_flight.max(self.in_flight);
        self.log.sends.push((self.now, order));
        let item = self.run.item(order.item).clone();
        let request = self.run.request_template().build_as(
            "https://example.test/img.png",
            order.attempt,
            self.run.item(order.item).id.as_deref(),
            order.format,
        );
        assert!(
            !request
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization")),
            "the core must not set the key"
        );
        let (latency, reply) = (self.script)(&item, &order, self.now);
        let timeout = config.request_timeout_ms;
        let ticket = order.ticket;
        let (delay, input) = match reply {
            Reply::Hang => (timeout, timeout_input(ticket)),
            _ if latency >= timeout => (timeout, timeout_input(ticket)),
            Reply::Label(label) => (latency, response(ticket, 200, vec![], completion(&label))),
            Reply::Body(body) => (latency, response(ticket, 200, vec![], body)),
            Reply::Status(code, headers, body) => (latency, response(ticket, code, headers, body)),
            Reply::Transport(kind) => (
                latency,
                Input::TransportFailed {
                    ticket,
                    kind,
                    message: "simulated".into(),
                },
            ),
            Reply::TransportSaying(kind, message) => (
                latency,
                Input::TransportFailed {
                    ticket,
                    kind,
                    message,
                },
            ),
        };
        self.seq += 1;
        self.pending
            .push(Reverse((self.now.plus(delay), self.seq, ticket)));
        self.replies.insert(ticket, input);
    }
}

fn timeout_input(ticket: Ticket) -> Input {
    Input::TransportFailed {
        ticket,
        kind: TransportErrorKind::Timeout,
        message: "no answer within the timeout".into(),
    }
}

fn response(
    ticket: Ticket,
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
) -> Input {
    Input::Response {
        ticket,
        response: HttpResponse {
            status,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            body,
        },
    }
}

/// Checks the bookkeeping of a finished log against itself.
pub fn check_consistency(log: &Log, total: usize) {
    let summary = log.summary.as_ref().expect("finished");
    let st = &summary.statistics;
    assert_eq!(st.total, total);
    assert_eq!(st.processed, st.successful + st.failed);
    assert_eq!(st.remaining, total - st.processed);
    let ok = log.done.iter().filter(|d| d.prediction.is_some()).count();
    assert_eq!(summary.overall_progress.errors.len(), st.failed);
    if st.resumed_items == 0 {
        assert_eq!(ok, st.successful);
        assert_eq!(log.done.len(), st.processed);
    }
    // Cumulative report counts add up from the per-batch ones.
    let mut cum = (0, 0);
    for r in &log.reports {
        cum.0 += r.batch_successful;
        cum.1 += r.batch_failed;
        assert_eq!((r.successful, r.failed), cum);
        assert_eq!(r.processed, r.batch_end_index + 1);
        assert_eq!(r.batch_size, r.batch_end_index + 1 - r.batch_start_index);
    }
    if summary.status == RunStatus::Completed {
        assert_eq!(st.processed, total);
        assert_eq!(log.reports.len(), summary.total_batches);
        assert_eq!(cum, (st.successful, st.failed));
    }
    assert_eq!(summary.all_reports, log.reports);
    assert_eq!(
        summary.evaluation.compared as usize, st.successful,
        "every success is compared"
    );
}

/// A requests-per-second token bucket with one second of burst, answering after
/// `latency_ms`; with `headers`, every answer says the limit per minute.
pub fn rate_limited(
    per_second: f64,
    latency_ms: u64,
    headers: bool,
) -> impl FnMut(&shadow_core::input::Item, &shadow_core::SendOrder, Millis) -> (u64, Reply) {
    let mut tokens = per_second;
    let mut last = T0;
    move |item, _, now| {
        tokens = (tokens + now.since(last) as f64 * per_second / 1000.0).min(per_second);
        last = now;
        let limit = ((per_second * 60.0) as u64).to_string();
        let hs = if headers {
            vec![("x-ratelimit-limit-requests", limit)]
        } else {
            vec![]
        };
        if tokens >= 1.0 {
            tokens -= 1.0;
            (latency_ms, Reply::Status(200, hs, completion(&item.label)))
        } else {
            let wait = ((1.0 - tokens) * 1000.0 / per_second).ceil() as u64;
            let mut hs = hs;
            hs.push(("retry-after-ms", wait.to_string()));
            (5, Reply::Status(429, hs, String::new()))
        }
    }
}
