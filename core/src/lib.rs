//! # shadow-core
//!
//! The engine of shadow-batch, which runs a model in *shadow mode* over a labelled
//! image set: every image of a labels CSV goes to a model endpoint, the answer is
//! recorded beside the human label, and nobody acts on it. This crate decides
//! everything about such a run — batching, pacing, retries, rate-limit handling,
//! statistics, evaluation, reports, resume — and does none of the work itself.
//!
//! ## What it does not do
//!
//! It performs no I/O and reads no clock: no sockets, no files, no threads, no
//! timers, no randomness of its own (jitter comes from [`RunConfig::seed`]). It keeps
//! no API key: requests it builds carry no credential, and the host adds the key at
//! the last moment, in the header the provider takes it in
//! ([`provider::RequestTemplate::credential_header`]: a bearer token, `x-api-key`,
//! `x-goog-api-key` or `api-key`). Hosts (the native CLI, the browser page) load
//! images, perform HTTP, sleep, and write the files.
//!
//! ## Module map
//!
//! The modules form layers: each uses only modules of the layers below it, never
//! one beside or above it (`tests/layers.rs` reads this table and checks every
//! `crate::` path of the sources against it).
//!
//! | layer | modules | what they hold |
//! |---|---|---|
//! | 10 | `batch` | [`batch::BatchRun`]: a run through a provider's batch API (shards, provider calls, the lost-create search, the provider journal); it drives a [`Run`] for its items |
//! | 9 | `engine` | [`Run`]: the live run's state machine and its contract ([`Input`], [`Output`]) |
//! | 8 | `report`, `explorer` | batch reports, progress, the summary and the provider-batch record; the explorer's data |
//! | 7 | `pacing` | when the next request may start, and the pace a display shows |
//! | 6 | `ratelimit`, `compare` | what an answer means: retry (and when), item failure, run-fatal; two sides compared over the same rows (two runs, or a run and its baseline): paired figures and a verdict |
//! | 5 | `journal`, `estimate` | the results journal and its fold for resume; what a run would send, cost and take, before anything is sent |
//! | 4 | `config` | [`RunConfig`], its bounds, the batch-API settings |
//! | 3 | `provider`, `gate`, `anytime`, `sample` | each provider's request template and answer reading, its batch-API limits; the gate for CI: requirements on a run's verdict, parsed and judged; the agreement's anytime-valid confidence sequence; a seeded sample of the CSV's rows and the whole CSV's interval |
//! | 2 | `cost`, `eval`, `drift`, `stop` | token usage and money; agreement statistics, calibration, coverage and likely label errors; the drift tests over batches (p-chart, CUSUM); why a run stops ([`AbortReason`]) and the breaker both runs use |
//! | 1 | `time`, `throughput`, `hash`, `http`, `image`, `input`, `message_template`, `redact`, `run_files`, `confidence` | plain values: time, stable hashes, HTTP as data, image encoding, the labels CSV, an error message's template (what varies row to row set apart), rows per second over a real span, secret redaction, file names; an answer's label probabilities from its tokens' log-probabilities |
//!
//! ## The run loop
//!
//! Two verbs and a deadline, as in str0m and quinn-proto: [`Run::handle`] pushes an
//! event in, [`Run::poll`] pulls the next thing to do, [`Run::poll_timeout`] says
//! when to poll again if nothing happens. Time is [`Millis`], passed in.
//!
//! ```no_run
//! use shadow_core::input::{parse_labels_csv, ColumnNames};
//! use shadow_core::{Input, Millis, Output, Run, RunConfig};
//! # fn now() -> Millis { Millis(0) }
//! # fn start_request(_: shadow_core::http::HttpRequest, _: shadow_core::Ticket) {}
//! # fn wait_for_answer_or(_: Option<Millis>) -> Option<Input> { None }
//! # fn load_image(_: &shadow_core::input::ImageRef) -> String { String::new() }
//! let csv = parse_labels_csv("image,label\nhttps://x.test/a.png,cat\n", &ColumnNames::default())?;
//! let mut run = Run::new(RunConfig::default(), csv, now())?;
//! loop {
//!     while let Some(output) = run.poll(now()) {
//!         match output {
//!             // Only a run made with `Run::streaming` asks for rows.
//!             Output::NeedRows { .. } => unreachable!(),
//!             Output::Send(order) => {
//!                 let item = run.item(order.item);
//!                 let image = load_image(&item.image);
//!                 let request = run.request_template().build(&image, order.attempt, item.id.as_deref());
//!                 start_request(request, order.ticket); // the host adds its API key
//!             }
//!             Output::ItemDone(done) => {
//!                 let _line = run.result(&done).to_json_line(); // append to the journal
//!             }
//!             Output::BatchReport { report } => {
//!                 print!("{}", report.to_console());
//!                 let _progress = serde_json::to_string_pretty(&run.progress(now()))?;
//!             }
//!             Output::Finished { summary } => {
//!                 print!("{}", summary.to_console(20));
//!                 return Ok(());
//!             }
//!         }
//!     }
//!     // Sleep until an answer arrives or the deadline passes, whichever is first.
//!     if let Some(input) = wait_for_answer_or(run.poll_timeout()) {
//!         run.handle(now(), input)?;
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Invariants (property-tested in `tests/engine`)
//!
//! - Every item ends exactly once: one [`Output::ItemDone`] per row, unless the run
//!   is interrupted or aborted, in which case unfinished rows get none and a resume
//!   ([`Run::restore`]) dispatches exactly those.
//! - Never more than [`RunConfig::concurrency`] requests in flight; no two starts
//!   closer than `delay_ms`; no start inside an rpm gap (one start of tolerance);
//!   no start before a `retry-after` or an exhausted rate-limit window ends.
//! - Batch reports come strictly in batch order, each as soon as every item of its
//!   batch is final; dispatch is pipelined across batches meanwhile. Their counts are
//!   cumulative over batches 1..=k and so do not depend on timing.
//! - [`Output::Finished`] is the last output; after it, `poll` returns `None` and
//!   `poll_timeout` returns `None`. Waking up early or twice does nothing.
//! - The same inputs at the same times give the same outputs.
//!
//! ## Errors
//!
//! Caller mistakes are `Err`s: a bad setting ([`ConfigError`]), an unknown ticket or
//! a journal of another CSV ([`UsageError`]), a CSV with no usable header
//! ([`input::CsvError`]). What the remote side or the data does wrong is not an
//! `Err`: a bad row, a missing image, a garbage answer or an exhausted retry budget
//! fails that item (in the journal and reports); a wrong key (401/403) or an empty
//! quota stops the run as `aborted` with the reason ([`AbortReason`], data that each
//! host words in its own vocabulary), and what is left can be resumed.

#![warn(missing_docs)]

pub mod anytime;
pub mod batch;
pub mod compare;
pub mod confidence;
pub mod config;
pub mod cost;
pub mod drift;
pub mod engine;
pub mod estimate;
pub mod eval;
pub mod explorer;
pub mod gate;
pub mod hash;
pub mod http;
pub mod image;
pub mod input;
pub mod journal;
pub mod message_template;
mod pacing;
pub mod provider;
pub mod ratelimit;
pub mod redact;
pub mod report;
pub mod run_files;
pub mod sample;
mod stop;
pub mod throughput;
pub mod time;

pub use config::{ConfigError, EndpointKind, FormatFallback, RunConfig, Setting};
pub use engine::{
    AbortReason, Counts, Input, ItemDone, Output, Run, SendOrder, Ticket, UsageError,
};
pub use time::Millis;
