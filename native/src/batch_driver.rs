//! `--via batch-api`: the tokio loop around the core's `BatchRun`. It loads
//! images and builds request lines (a bounded number at once), writes each shard
//! to a file in the output folder and uploads it as `multipart/form-data`
//! (OpenAI) or streams it as the body of the create call (Anthropic), performs
//! the batch API's JSON calls with the provider's key header, streams result
//! files back line by line, and keeps the two journals: the results journal, and
//! the provider journal of every id the provider gave, synced before the next
//! step. It decides no policy: sharding, polling, what each line means and what
//! to re-send are the core's.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use shadow_core::batch::{
    fold_batch_journal, BatchInput, BatchOutput, BatchRun, CallId, LineBuilder, LineOrder,
    ProviderBatch, SubmitOrder, UploadOrder,
};
use shadow_core::http::{HttpRequest, HttpResponse, TransportErrorKind};
use shadow_core::input::{Item, LabelsCsv};
use shadow_core::journal::{fold_journal_reader, ItemStatus};
use shadow_core::provider::Provider;
use shadow_core::report::{escape_for_terminal, RunStatus, Summary};
use shadow_core::{Millis, RunConfig, Ticket, UsageError};
use shadow_mock::MockServer;
use tokio::sync::mpsc;

use crate::cli::RunArgs;
use crate::driver::Clock;
use crate::files::{write_atomic, Journal, RunFiles};
use crate::images::ImageLoader;
use crate::transport::{classify, describe, kept_headers};

/// Lines whose image is being loaded at once.
const BUILDING_AT_ONCE: usize = 64;
/// Longest answer of a JSON call read (a download is streamed, not capped).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Lines of a download handed to the core at a time.
const LINES_PER_INPUT: usize = 500;

/// What `main` has decided and opened for a batch-API run.
pub struct Setup<'a> {
    pub args: &'a RunArgs,
    pub csv_path: PathBuf,
    pub csv: LabelsCsv,
    pub config: RunConfig,
    pub api_key: Option<String>,
    pub images: ImageLoader,
    pub files: RunFiles,
    pub mock: Option<MockServer>,
    pub data_dir: PathBuf,
    pub clock: Clock,
    /// `shadow-batch cancel`: cancel the provider batches at once.
    pub cancel: bool,
    /// Ctrl-C, caught since start-up.
    pub interrupts: crate::driver::Interrupts,
    /// Keys the environment holds that the run does not send (for the banner).
    pub unused_keys: Vec<(&'static str, &'static str)>,
}

/// Events from the tasks the loop starts.
enum Event {
    Input(BatchInput),
    Built { ticket: Ticket, line: String },
}

pub async fn run_batch(setup: Setup<'_>) -> Result<u8> {
    let Setup {
        args,
        csv_path,
        csv,
        config,
        api_key,
        images,
        files,
        mock,
        data_dir,
        clock,
        cancel,
        interrupts,
        unused_keys,
    } = setup;
    let labels = csv.labels.len();
    let rows = csv.items.len();
    let defects = csv.defect_count();
    let mut batch = BatchRun::new(config, csv, clock.now())?;
    if let Some(key) = &api_key {
        batch.hide_secret(key);
    }
    let shard_dir = files
        .results
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    if args.resume.is_some() {
        remove_shard_files(&shard_dir, &files.run_id);
    }
    let (journal, provider, resumed, open) = open_journals(&mut batch, &files, args, clock.now())?;
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
    crate::print_banner(
        batch.run().config(),
        &files,
        &crate::Facts {
            rows,
            labels,
            defects,
            resumed,
            mock: mock.is_some(),
            inline_images: batch.run().config().inline_images,
            format: batch.run().output_format(),
            unused_keys,
        },
    );
    print_via(batch.run().config(), open, to_find);
    if batch.recovering() {
        println!(
            "  Resumed:      the provider journal lost batches of this run: they are rebuilt from {} and the provider, and nothing new is created until their rows are known\n",
            files.progress.display()
        );
    }
    let host = Host {
        clock,
        client: reqwest::Client::builder()
            .user_agent(concat!("shadow-batch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()?,
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
        last_progress: None,
    };
    let (summary, detached) = host.drive(batch, cancel, interrupts).await?;
    let report = crate::report::write_report(
        &files,
        &crate::report::ReportOptions {
            data_dir: Some(data_dir),
            embed_thumbnails: args.embed_thumbnails,
            out: None,
        },
    );
    epilogue(&summary, &files, &csv_path, mock, report, detached, cancel).await;
    Ok(if cancel && summary.status == RunStatus::Interrupted {
        0
    } else {
        summary.exit_code()
    })
}

/// Opens both journals; on resume, feeds what they hold to the run. Returns the
/// journals, the rows taken as finished and the provider batches still open.
fn open_journals(
    batch: &mut BatchRun,
    files: &RunFiles,
    args: &RunArgs,
    now: Millis,
) -> Result<(Journal, Journal, usize, usize)> {
    let resuming = args.resume.is_some();
    let read = |path: &Path| -> Result<Option<File>> {
        match File::open(path) {
            Ok(f) => Ok(Some(f).filter(|_| resuming)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    };
    let mut results = match read(&files.results)? {
        Some(f) => fold_journal_reader(BufReader::new(f))
            .with_context(|| format!("cannot read {}", files.results.display()))?,
        None => Default::default(),
    };
    let batches = match read(&files.provider)? {
        Some(f) => fold_batch_journal(BufReader::new(f))
            .with_context(|| format!("cannot read {}", files.provider.display()))?,
        None => Default::default(),
    };
    for (line, reason) in &results.bad_lines {
        tracing::warn!(
            "{}:{line}: skipped ({reason}); that row runs again",
            files.results.display()
        );
    }
    for (line, reason) in &batches.bad_lines {
        tracing::warn!("{}:{line}: skipped ({reason})", files.provider.display());
    }
    let fresh: Vec<usize> = if args.retry_failed {
        results
            .results
            .iter()
            .filter(|r| r.status == ItemStatus::Failed)
            .map(|r| r.row)
            .collect()
    } else {
        Vec::new()
    };
    let rewrite = results.prepare_resume(args.retry_failed);
    let taken = batch
        .restore(now, results.results.iter().cloned(), &batches, &fresh)
        .map_err(|e| {
            let from = match e {
                UsageError::ProviderJournal { .. } => &files.provider,
                _ => &files.results,
            };
            anyhow::Error::new(e).context(format!("cannot resume from {}", from.display()))
        })?;
    let journal = if rewrite {
        // The header (where the run sends) stays the journal's first line.
        write_atomic(&files.results, results.to_journal_text().as_bytes())?;
        Journal::open(&files.results, None)?
    } else {
        Journal::open(
            &files.results,
            resuming.then_some(results.complete_len as u64),
        )?
    };
    // What the provider journal lost is rebuilt from the batches the progress
    // (or summary) file listed, and from the provider.
    let lost = resuming && !files.provider.exists();
    let saved = if resuming {
        saved_provider_batches(files)
    } else {
        Vec::new()
    };
    if lost {
        tracing::warn!(
            "{} is missing: the run's provider batches are rebuilt from {} and the provider before anything is created",
            files.provider.display(),
            files.progress.display()
        );
    }
    batch
        .recover(now, &saved, lost)
        .with_context(|| format!("cannot resume from {}", files.provider.display()))?;
    let provider = Journal::open(
        &files.provider,
        resuming.then_some(batches.complete_len as u64),
    )?;
    Ok((journal, provider, taken, batch.open_batches()))
}

/// The provider batches the run's progress file lists, and those only its
/// summary lists (an older file may know a shard the newer lost).
fn saved_provider_batches(files: &RunFiles) -> Vec<ProviderBatch> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Saved {
        #[serde(default)]
        provider_batches: Vec<ProviderBatch>,
    }
    let mut all: Vec<ProviderBatch> = Vec::new();
    for path in [&files.progress, &files.summary] {
        let Ok(text) = std::fs::read(path) else {
            continue;
        };
        match serde_json::from_slice::<Saved>(&text) {
            Ok(saved) => {
                for b in saved.provider_batches {
                    if !all.iter().any(|a| a.shard == b.shard) {
                        all.push(b);
                    }
                }
            }
            Err(e) => tracing::warn!(
                "{}: its provider batches are unreadable ({e})",
                path.display()
            ),
        }
    }
    all
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

fn print_via(config: &RunConfig, open: usize, to_find: usize) {
    let Some(b) = &config.batch_api else { return };
    println!(
        "  Via:          the provider's batch API (shards of up to {} requests and {} MB, read every {}s at most; half price, results within 24 h)",
        b.max_lines,
        b.max_bytes / 1_000_000,
        b.poll_max_ms as f64 / 1000.0
    );
    if open > 0 {
        println!("  Resumed:      {open} provider batch(es) still running: polled, not sent again");
    }
    if to_find > 0 {
        println!(
            "  Resumed:      {to_find} create(s) of the last session may have made a batch whose id never came back: looked for among the account's batches before anything is created"
        );
    }
    println!();
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
            BatchOutput::Upload(order) => {
                let path = self.sealed_file(order.shard)?;
                let auth = self.auth();
                let (client, tx) = (self.client.clone(), tx.clone());
                tokio::spawn(async move {
                    let input = upload(&client, auth.as_ref(), order, &path).await;
                    let _ = tx.send(Event::Input(input));
                });
            }
            BatchOutput::Submit(order) => {
                let path = self.sealed_file(order.shard)?;
                let auth = self.auth();
                let (client, tx) = (self.client.clone(), tx.clone());
                tokio::spawn(async move {
                    let input = submit(&client, auth.as_ref(), order, &path).await;
                    let _ = tx.send(Event::Input(input));
                });
            }
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
                    print_now(&report.to_console());
                }
                self.journal.sync()?;
                self.write_progress(batch, false)?;
            }
            BatchOutput::Finished { summary } => {
                self.journal.sync()?;
                self.provider.sync()?;
                self.write_progress(batch, true)?;
                let json = serde_json::to_vec_pretty(&summary)?;
                write_atomic(&self.files.summary, &json)?;
                print_now(&summary.to_console(self.errors_shown));
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
type Auth = (&'static str, reqwest::header::HeaderValue);

fn with_key(builder: reqwest::RequestBuilder, auth: Option<&Auth>) -> reqwest::RequestBuilder {
    match auth {
        Some((name, value)) => builder.header(*name, value.clone()),
        None => builder,
    }
}

fn failed(call: CallId, e: reqwest::Error) -> BatchInput {
    BatchInput::CallFailed {
        call,
        kind: classify(&e),
        message: describe(e),
    }
}

async fn read_body(call: CallId, mut response: reqwest::Response) -> BatchInput {
    let status = response.status().as_u16();
    let headers = kept_headers(&response);
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return BatchInput::CallFailed {
                        call,
                        kind: TransportErrorKind::Body,
                        message: format!("the answer is larger than {} MiB", MAX_BODY_BYTES >> 20),
                    };
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return failed(call, e),
        }
    }
    BatchInput::Answer {
        call,
        response: HttpResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        },
    }
}

/// Uploads a shard's file as `multipart/form-data`, streamed from disk.
async fn upload(
    client: &reqwest::Client,
    auth: Option<&Auth>,
    order: UploadOrder,
    path: &Path,
) -> BatchInput {
    let call = order.call;
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) => {
            return BatchInput::CallFailed {
                call,
                kind: TransportErrorKind::Body,
                message: format!("cannot read the shard file {}: {e}", path.display()),
            }
        }
    };
    let len = file
        .metadata()
        .await
        .map(|m| m.len())
        .unwrap_or(order.bytes);
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
            .file_name(order.file_name.clone());
    let part = match part.mime_str("application/jsonl") {
        Ok(p) => p,
        Err(e) => return failed(call, e),
    };
    let form = reqwest::multipart::Form::new()
        .text("purpose", "batch")
        .part("file", part);
    let request = with_key(client.post(&order.url), auth)
        .timeout(Duration::from_secs(3_600))
        .multipart(form);
    match request.send().await {
        Ok(response) => read_body(call, response).await,
        Err(e) => failed(call, e),
    }
}

/// The create call of a batch API that takes the requests inline (Anthropic's
/// Message Batches): the shard's file streamed from disk as the body, framed as
/// the order says (`{"requests":[` line `,` line ... `]}`).
async fn submit(
    client: &reqwest::Client,
    auth: Option<&Auth>,
    order: SubmitOrder,
    path: &Path,
) -> BatchInput {
    let call = order.call;
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) => {
            return BatchInput::CallFailed {
                call,
                kind: TransportErrorKind::Body,
                message: format!("cannot read the shard file {}: {e}", path.display()),
            }
        }
    };
    let file_len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    if file_len != order.bytes {
        return BatchInput::CallFailed {
            call,
            kind: TransportErrorKind::Body,
            message: format!(
                "the shard file {} holds {file_len} bytes, not {}",
                path.display(),
                order.bytes
            ),
        };
    }
    let body = framed_stream(file, file_len, order.prefix, order.separator, order.suffix);
    let mut request = with_key(client.post(&order.url), auth)
        .timeout(Duration::from_secs(3_600))
        .header(reqwest::header::CONTENT_LENGTH, order.body_len());
    for (name, value) in &order.headers {
        request = request.header(name, value);
    }
    match request.body(reqwest::Body::wrap_stream(body)).send().await {
        Ok(response) => read_body(call, response).await,
        Err(e) => failed(call, e),
    }
}

/// `prefix`, the `len` bytes of `file` with `separator` after every `\n` but
/// the last, then `suffix`.
fn framed_stream(
    file: tokio::fs::File,
    len: u64,
    prefix: &'static str,
    separator: &'static str,
    suffix: &'static str,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
    enum Part {
        Prefix,
        Lines,
        End,
    }
    futures_util::stream::unfold(
        (file, len, Part::Prefix),
        move |(mut file, left, part)| async move {
            use tokio::io::AsyncReadExt;
            match part {
                Part::Prefix => Some((Ok(prefix.as_bytes().to_vec()), (file, left, Part::Lines))),
                Part::Lines if left == 0 => {
                    Some((Ok(suffix.as_bytes().to_vec()), (file, 0, Part::End)))
                }
                Part::Lines => {
                    let mut buf = vec![0u8; 256 * 1024];
                    match file.read(&mut buf).await {
                        Ok(0) => Some((
                            Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "the shard file ended early",
                            )),
                            (file, 0, Part::End),
                        )),
                        Ok(n) => {
                            let n = n.min(usize::try_from(left).unwrap_or(usize::MAX));
                            let left = left - n as u64;
                            let mut out = Vec::with_capacity(n + n / 64);
                            for (i, &b) in buf[..n].iter().enumerate() {
                                out.push(b);
                                if b == b'\n' && !(left == 0 && i + 1 == n) {
                                    out.extend_from_slice(separator.as_bytes());
                                }
                            }
                            Some((Ok(out), (file, left, Part::Lines)))
                        }
                        Err(e) => Some((Err(e), (file, 0, Part::End))),
                    }
                }
                Part::End => None,
            }
        },
    )
}

/// Performs a JSON call; a download's 2xx body goes back line by line.
async fn perform_call(
    client: &reqwest::Client,
    auth: Option<&Auth>,
    call: CallId,
    request: HttpRequest,
    lines: bool,
    tx: &mpsc::UnboundedSender<Event>,
) {
    let send = |input: BatchInput| {
        let _ = tx.send(Event::Input(input));
    };
    let url = match reqwest::Url::parse(&request.url) {
        Ok(url) => url,
        Err(e) => {
            return send(BatchInput::CallFailed {
                call,
                kind: TransportErrorKind::Connect,
                message: format!("the batch API URL is not valid: {e}"),
            })
        }
    };
    let method =
        reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut builder = with_key(client.request(method, url), auth);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if !request.body.is_empty() || request.method == "POST" {
        builder = builder.body(request.body);
    }
    // A download may be large; a JSON call should be quick.
    builder = builder.timeout(Duration::from_secs(if lines { 3_600 } else { 120 }));
    let mut response = match builder.send().await {
        Ok(r) => r,
        Err(e) => return send(failed(call, e)),
    };
    if !lines || !response.status().is_success() {
        return send(read_body(call, response).await);
    }
    let status = response.status().as_u16();
    let mut pending: Vec<u8> = Vec::new();
    let mut batch: Vec<String> = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                pending.extend_from_slice(&chunk);
                let mut start = 0;
                while let Some(p) = pending[start..].iter().position(|&b| b == b'\n') {
                    let line = &pending[start..start + p];
                    batch.push(String::from_utf8_lossy(line).into_owned());
                    start += p + 1;
                }
                pending.drain(..start);
                if !batch.is_empty() {
                    // Lines reach the core as they arrive: a kill mid-download
                    // keeps the results already journaled.
                    for lines in batch.chunks(LINES_PER_INPUT) {
                        send(BatchInput::Lines {
                            call,
                            lines: lines.to_vec(),
                        });
                    }
                    batch.clear();
                }
            }
            Ok(None) => break,
            Err(e) => return send(failed(call, e)),
        }
    }
    if !pending.is_empty() {
        send(BatchInput::Lines {
            call,
            lines: vec![String::from_utf8_lossy(&pending).into_owned()],
        });
    }
    send(BatchInput::Answer {
        call,
        response: HttpResponse {
            status,
            headers: Vec::new(),
            body: String::new(),
        },
    });
}

fn print_now(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// What a user reads after the summary of a batch-API run.
async fn epilogue(
    summary: &Summary,
    files: &RunFiles,
    csv_path: &Path,
    mock: Option<MockServer>,
    report: Result<PathBuf>,
    detached: bool,
    cancel: bool,
) {
    if let Some(server) = mock {
        let s = server.stats();
        println!(
            "Built-in mock: {} uploads, {} batches created, {} reads, {} downloads, {} lines answered, {} files left",
            s.batch_uploads, s.batch_creates, s.batch_polls, s.batch_downloads, s.batch_lines, s.batch_files_live
        );
        server.shutdown().await;
    }
    println!("Results:  {}", files.results.display());
    println!("Summary:  {}", files.summary.display());
    println!("Progress: {}", files.progress.display());
    println!("Provider: {}", files.provider.display());
    match report {
        Ok(path) => println!("Report:   {} (open it in a browser)", path.display()),
        Err(e) => eprintln!(
            "warning: the HTML report was not written ({}); write it later with: shadow-batch report {}",
            escape_for_terminal(&format!("{e:#}")),
            files.results.display()
        ),
    }
    let resume = format!("shadow-batch --resume {}", files.progress.display());
    let running: Vec<String> = summary
        .provider_batches
        .iter()
        .flatten()
        .filter(|b| b.batch_id.is_some() && b.status.is_open())
        .map(|b| b.batch_id.clone().unwrap_or_default())
        .collect();
    if let Some(reason) = &summary.abort_kind {
        eprintln!(
            "error: run aborted: {}",
            escape_for_terminal(&reason.to_string())
        );
        eprintln!(
            "{}",
            crate::next_step::after_abort(
                reason,
                &files.progress,
                crate::plan::key_var(summary.config.provider_label)
            )
        );
    }
    if detached {
        println!(
            "Detached: {} provider batch(es) keep running at the provider ({}).",
            running.len(),
            running.join(", ")
        );
        println!("To collect their results (and send the rest): {resume}");
        println!(
            "To cancel them instead: shadow-batch cancel {}",
            files.progress.display()
        );
    } else if cancel && summary.status == RunStatus::Completed {
        println!("Nothing was left to cancel: every row has its result; the run is complete.");
    } else if cancel {
        println!(
            "Cancelled: what the batches had finished is in the results; nothing new was sent."
        );
        println!("To send the rest later: {resume}");
    } else if summary.status == RunStatus::Interrupted {
        println!("To continue: {resume}");
    }
    let _ = csv_path;
    let _ = std::io::stderr().is_terminal();
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// The create body of a shard is its lines joined into one JSON array,
    /// however the file is cut into reads, and as long as the order says.
    #[tokio::test]
    async fn a_shard_file_streams_as_a_framed_json_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard.jsonl");
        let lines: Vec<String> = (0..3000)
            .map(|n| {
                format!(
                    "{{\"custom_id\":\"R-r{n}-a1\",\"params\":{{\"x\":\"{}\"}}}}\n",
                    "y".repeat(n % 300)
                )
            })
            .collect();
        let text = lines.concat();
        std::fs::write(&path, &text).unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        let chunks: Vec<Vec<u8>> =
            framed_stream(file, text.len() as u64, "{\"requests\":[", ",", "]}")
                .map(|c| c.unwrap())
                .collect()
                .await;
        assert!(chunks.len() > 3, "streamed in pieces");
        let body: Vec<u8> = chunks.concat();
        let order = SubmitOrder {
            call: CallId(0),
            shard: 1,
            url: String::new(),
            headers: Vec::new(),
            prefix: "{\"requests\":[",
            separator: ",",
            suffix: "]}",
            lines: lines.len(),
            bytes: text.len() as u64,
        };
        assert_eq!(body.len() as u64, order.body_len());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let requests = v["requests"].as_array().unwrap();
        assert_eq!(requests.len(), 3000);
        assert_eq!(requests[2999]["custom_id"], "R-r2999-a1");

        // A file shorter than said is an error, not a short body.
        let file = tokio::fs::File::open(&path).await.unwrap();
        let results: Vec<std::io::Result<Vec<u8>>> =
            framed_stream(file, text.len() as u64 + 10, "[", ",", "]")
                .collect()
                .await;
        assert!(results.last().unwrap().is_err());
    }
}
