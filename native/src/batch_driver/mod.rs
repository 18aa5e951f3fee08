//! `--via batch-api`: the tokio loop around the core's `BatchRun`. It loads
//! images and builds request lines (a bounded number at once), writes each shard
//! to a file in the output folder and uploads it as `multipart/form-data`
//! (OpenAI, Azure; Gemini's by Google's resumable protocol) or streams it as
//! the body of the create call (Anthropic), performs
//! the batch API's JSON calls with the provider's key header, streams result
//! files back line by line, and keeps the two journals: the results journal, and
//! the provider journal of every id the provider gave, synced before the next
//! step. It decides no policy: sharding, polling, what each line means and what
//! to re-send are the core's.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use shadow_core::batch::{BatchInput, BatchOutput, BatchRun, CallId, LineBuilder, LineOrder};
use shadow_core::input::Item;
use shadow_core::provider::Provider;
use shadow_core::report::{escape_for_terminal, RunStatus, Summary};
use shadow_core::Ticket;
use tokio::sync::mpsc;

use crate::cli::RunArgs;
use crate::console;
use crate::driver::Clock;
use crate::files::{write_atomic, Journal, RunFiles};
use crate::images::ImageLoader;
use crate::launch::{open_batch_journals, Launched};
use crate::transport::{classify, describe, read_capped};

mod calls;
pub(crate) use calls::file_chunks;
use calls::{perform_call, send_shard_file, ShardSend};

/// Lines whose image is being loaded at once.
const BUILDING_AT_ONCE: usize = 64;

/// Events from the tasks the loop starts.
enum Event {
    Input(BatchInput),
    Built { ticket: Ticket, line: String },
}

/// Drives a launched batch-API run to its end (or `cancel`s its provider
/// batches), then writes the report and the epilogue.
pub async fn run_batch(launched: Launched, args: &RunArgs, cancel: bool) -> Result<u8> {
    let Launched {
        clock,
        interrupts,
        rows,
        config,
        api_key,
        unused_keys,
        data_dir,
        images,
        mock,
        client,
        files,
        lock: _lock,
        baseline,
        ..
    } = launched;
    let crate::csv_rows::CsvRows::Whole(csv) = rows else {
        anyhow::bail!("a batch-API run reads its CSV whole (a bug of shadow-batch)");
    };
    let facts = console::Facts::of(
        &csv.outline,
        mock.is_some(),
        config.inline_images,
        unused_keys,
    );
    let mut batch = BatchRun::new(config, csv, clock.now())?;
    if let Some(key) = &api_key {
        batch.hide_secret(key);
    }
    // Before the journals are restored: restored rows are compared too.
    if let Some(baseline) = baseline {
        batch
            .compare_with(baseline)
            .context("cannot compare this run with its baseline")?;
    }
    let shard_dir = files
        .results
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    if args.resume.is_some() {
        remove_shard_files(&shard_dir, &files.run_id);
    }
    let (journal, provider, resumed, open) =
        open_batch_journals(&mut batch, &files, args, clock.now())?;
    let to_find = batch.creates_to_find();
    if cancel && open == 0 && to_find == 0 && !batch.recovering() {
        let left = batch.run().counts();
        let done = left.successful + left.failed;
        if done >= left.total {
            println!(
                "Nothing to cancel: the run {} has finished (all {} rows have results) and none of its provider batches is running.",
                files.run_id, left.total
            );
        } else {
            println!(
                "Nothing to cancel: no provider batch of the run {} is running ({} of {} rows have results; the rest were never submitted, or their batches were cancelled already).",
                files.run_id, done, left.total
            );
        }
        return Ok(0);
    }
    console::print_banner(
        batch.run().config(),
        &files,
        &console::Facts {
            resumed,
            format: batch.run().output_format(),
            ..facts
        },
    );
    console::print_via(batch.run().config(), open, to_find);
    if batch.recovering() {
        println!(
            "  Resumed:      the provider journal lost batches of this run: they are rebuilt from {} and the provider, and nothing new is created until their rows are known\n",
            files.progress.display()
        );
    }
    let host = Host {
        clock,
        client,
        api_key,
        endpoint: batch.run().config().provider.clone(),
        images,
        builder: batch.line_builder(),
        journal,
        provider,
        files: files.clone(),
        shard_dir,
        errors_shown: args.errors_shown,
        shards: BTreeMap::new(),
        lines: HashMap::new(),
        to_build: VecDeque::new(),
        building: 0,
        shown: BTreeMap::new(),
        round_shown: None,
        last_progress: None,
    };
    let (summary, detached) = host.drive(batch, cancel, interrupts).await?;
    let report = crate::report::write_at_end(&files, data_dir, args.embed_thumbnails);
    console::batch_epilogue(&summary, &files, mock, report, detached, cancel).await;
    Ok(if cancel && summary.status == RunStatus::Interrupted {
        0
    } else {
        summary.exit_code()
    })
}

/// Deletes the temporary shard files a killed session of run `run_id` left in
/// `dir` (`.shadow-batch-{run}-shard-N.jsonl`): a resume never reuses them.
fn remove_shard_files(dir: &Path, run_id: &str) {
    let prefix = format!(".shadow-batch-{run_id}-shard-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".jsonl") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A shard's file while it is written.
struct ShardFile {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

struct Host {
    clock: Clock,
    client: reqwest::Client,
    api_key: Option<String>,
    /// Says which header carries the key.
    endpoint: Provider,
    images: ImageLoader,
    builder: LineBuilder,
    journal: Journal,
    provider: Journal,
    files: RunFiles,
    shard_dir: PathBuf,
    errors_shown: usize,
    shards: BTreeMap<u32, ShardFile>,
    /// Built lines waiting for their `AppendLine`.
    lines: HashMap<Ticket, String>,
    /// Lines to build, and how many are being built.
    to_build: VecDeque<(LineOrder, Item)>,
    building: usize,
    /// What the console last said of each provider batch.
    shown: BTreeMap<u32, String>,
    /// The last `--until-interval` round shown: (rounds decided, rows released).
    round_shown: Option<(u32, usize)>,
    last_progress: Option<Instant>,
}

impl Host {
    /// Runs to the end; says whether the user detached.
    async fn drive(
        mut self,
        mut batch: BatchRun,
        cancel: bool,
        mut interrupts: crate::driver::Interrupts,
    ) -> Result<(Box<Summary>, bool)> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let mut detached = false;
        if cancel {
            batch.handle(self.clock.now(), BatchInput::CancelBatches)?;
        }
        loop {
            let now = self.clock.now();
            while let Some(output) = batch.poll(now) {
                if let Some(summary) = self.perform(&batch, output, &tx)? {
                    self.cleanup();
                    return Ok((summary, detached));
                }
            }
            self.start_builds(&tx);
            self.journal.flush()?;
            let deadline = batch.poll_timeout().map(|t| self.clock.instant_of(t));
            tokio::select! {
                Some(event) = rx.recv() => {
                    self.take(&mut batch, event)?;
                    while let Ok(event) = rx.try_recv() {
                        self.take(&mut batch, event)?;
                    }
                }
                _ = crate::driver::sleep_until(deadline) => {}
                _ = interrupts.recv() => {
                    if detached || interrupts.count > 1 {
                        self.journal.sync()?;
                        self.cleanup();
                        eprintln!("\nshadow-batch: stopped at once; both journals are safe");
                        std::process::exit(130);
                    }
                    detached = true;
                    eprintln!(
                        "\nshadow-batch: detaching: the provider's batches keep running (and are billed) without this process"
                    );
                    batch.handle(self.clock.now(), BatchInput::Detach)?;
                }
            }
        }
    }

    fn take(&mut self, batch: &mut BatchRun, event: Event) -> Result<()> {
        let now = self.clock.now();
        let input = match event {
            Event::Input(input) => input,
            Event::Built { ticket, line } => {
                self.building -= 1;
                let bytes = line.len() as u64;
                self.lines.insert(ticket, line);
                BatchInput::LineBuilt { ticket, bytes }
            }
        };
        if let BatchInput::ImageFailed { .. } = input {
            self.building -= 1;
        }
        batch
            .handle(now, input)
            .context("shadow-batch fed its batch engine an answer it never asked for (a bug)")
    }

    /// Does what `output` asks; returns the summary at the end.
    fn perform(
        &mut self,
        batch: &BatchRun,
        output: BatchOutput,
        tx: &mpsc::UnboundedSender<Event>,
    ) -> Result<Option<Box<Summary>>> {
        match output {
            BatchOutput::BuildLine(order) => {
                let item = batch.run().item(order.item).clone();
                self.to_build.push_back((order, item));
            }
            BatchOutput::AppendLine { shard, ticket } => {
                let line = self
                    .lines
                    .remove(&ticket)
                    .context("the batch engine placed a line that was never built (a bug)")?;
                let file = self.shard_file(shard)?;
                let out = file
                    .out
                    .as_mut()
                    .context("a sealed shard got a line (a bug)")?;
                out.write_all(line.as_bytes())
                    .with_context(|| format!("could not write {}", file.path.display()))?;
            }
            BatchOutput::DiscardFile { shard } => {
                if let Some(file) = self.shards.remove(&shard) {
                    drop(file.out);
                    let _ = std::fs::remove_file(&file.path);
                }
            }
            BatchOutput::Upload(order) => self.send_shard(ShardSend::Upload(order), tx)?,
            BatchOutput::Submit(order) => self.send_shard(ShardSend::Submit(order), tx)?,
            BatchOutput::Call {
                call,
                request,
                lines,
            } => {
                let auth = self.auth();
                let (client, tx) = (self.client.clone(), tx.clone());
                tokio::spawn(async move {
                    perform_call(&client, auth.as_ref(), call, request, lines, &tx).await;
                });
            }
            BatchOutput::Record(record) => {
                // Results first: a record never says more than the results hold.
                self.journal.sync()?;
                self.provider.append_line(&record.to_json_line())?;
                self.provider.sync()?;
            }
            BatchOutput::StatusChanged => {
                self.show_batches(batch);
                self.write_progress(batch, true)?;
            }
            BatchOutput::ItemDone(done) => self.journal.append(&batch.result(&done))?,
            BatchOutput::BatchReport { report } => {
                if !report.resumed {
                    console::print_now(&report.to_console());
                }
                self.journal.sync()?;
                self.write_progress(batch, false)?;
            }
            BatchOutput::Finished { summary } => {
                self.journal.sync()?;
                self.provider.sync()?;
                self.write_progress(batch, true)?;
                let json = serde_json::to_vec_pretty(&summary.with_gate())?;
                write_atomic(&self.files.summary, &json)?;
                console::print_now(&summary.to_console(self.errors_shown));
                return Ok(Some(summary));
            }
        }
        Ok(None)
    }

    /// Starts loading images and building lines, a bounded number at once.
    fn start_builds(&mut self, tx: &mpsc::UnboundedSender<Event>) {
        while self.building < BUILDING_AT_ONCE {
            let Some((order, item)) = self.to_build.pop_front() else {
                return;
            };
            self.building += 1;
            let (images, builder, tx) = (self.images.clone(), self.builder.clone(), tx.clone());
            tokio::spawn(async move {
                let event = match images.load(&item).await {
                    Ok(url) => Event::Built {
                        ticket: order.ticket,
                        line: builder.line(&order, &url, item.id.as_deref()),
                    },
                    Err(message) => Event::Input(BatchInput::ImageFailed {
                        ticket: order.ticket,
                        message,
                    }),
                };
                let _ = tx.send(event);
            });
        }
    }

    /// Sends a shard's sealed file in a task of its own; the answer comes back
    /// as an input.
    fn send_shard(&mut self, send: ShardSend, tx: &mpsc::UnboundedSender<Event>) -> Result<()> {
        let path = self.sealed_file(send.shard())?;
        let auth = self.auth();
        let (client, tx) = (self.client.clone(), tx.clone());
        tokio::spawn(async move {
            let input = send_shard_file(&client, auth.as_ref(), send, &path).await;
            let _ = tx.send(Event::Input(input));
        });
        Ok(())
    }

    /// The header carrying the key, marked sensitive (never logged).
    fn auth(&self) -> Option<(&'static str, reqwest::header::HeaderValue)> {
        let key = self.api_key.as_deref()?;
        let (name, value) = self.endpoint.credential_header(key);
        let mut value = reqwest::header::HeaderValue::from_str(&value).ok()?;
        value.set_sensitive(true);
        Some((name, value))
    }

    /// A shard's file, complete on disk: its path.
    fn sealed_file(&mut self, shard: u32) -> Result<PathBuf> {
        let file = self.shard_file(shard)?;
        if let Some(mut out) = file.out.take() {
            out.flush()
                .with_context(|| format!("could not write {}", file.path.display()))?;
        }
        Ok(file.path.clone())
    }

    fn shard_file(&mut self, shard: u32) -> Result<&mut ShardFile> {
        if !self.shards.contains_key(&shard) {
            let path = self.shard_dir.join(format!(
                ".shadow-batch-{}-shard-{shard}.jsonl",
                self.files.run_id
            ));
            let file = File::create(&path)
                .with_context(|| format!("could not create {}", path.display()))?;
            self.shards.insert(
                shard,
                ShardFile {
                    path,
                    out: Some(BufWriter::with_capacity(256 * 1024, file)),
                },
            );
        }
        Ok(self.shards.get_mut(&shard).expect("just inserted"))
    }

    /// Shard files not uploaded (their rows are sent again on resume), on
    /// every way out: the end, an error, Ctrl-C.
    fn cleanup(&mut self) {
        for (_, file) in std::mem::take(&mut self.shards) {
            drop(file.out);
            let _ = std::fs::remove_file(&file.path);
        }
    }

    fn show_batches(&mut self, batch: &BatchRun) {
        if let (Some((round, rows)), Some(w)) =
            (batch.rounds(), batch.run().config().until_interval)
        {
            if rows > self.round_shown.map_or(0, |(_, shown)| shown) {
                let total = batch.run().row_count();
                println!(
                    "Round {round} of --until-interval {w}: rows 1-{rows} of {total} go to the provider; the next round, if the interval is still wider, waits for their results"
                );
            }
            self.round_shown = Some((round, rows));
        }
        for b in batch.provider_batches() {
            let line = b.describe();
            if self.shown.get(&b.shard) != Some(&line) {
                println!("  provider batch {}", escape_for_terminal(&line));
                self.shown.insert(b.shard, line);
            }
        }
        let _ = std::io::stdout().flush();
    }

    /// The progress file, at most once a second unless `now`.
    fn write_progress(&mut self, batch: &BatchRun, force: bool) -> Result<()> {
        if !force
            && self
                .last_progress
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return Ok(());
        }
        let json = serde_json::to_vec_pretty(&batch.progress(self.clock.now()))?;
        write_atomic(&self.files.progress, &json)?;
        self.last_progress = Some(Instant::now());
        Ok(())
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The key's header (`authorization: Bearer`, `x-api-key`, as the provider
/// wants it).
pub(crate) type Auth = (&'static str, reqwest::header::HeaderValue);

pub(crate) fn with_key(
    builder: reqwest::RequestBuilder,
    auth: Option<&Auth>,
) -> reqwest::RequestBuilder {
    match auth {
        Some((name, value)) => builder.header(*name, value.clone()),
        None => builder,
    }
}

pub(crate) fn failed(call: CallId, e: reqwest::Error) -> BatchInput {
    BatchInput::CallFailed {
        call,
        kind: classify(&e),
        message: describe(e),
    }
}

pub(crate) async fn read_body(call: CallId, response: reqwest::Response) -> BatchInput {
    match read_capped(response).await {
        Ok(response) => BatchInput::Answer { call, response },
        Err((kind, message)) => BatchInput::CallFailed {
            call,
            kind,
            message,
        },
    }
}
