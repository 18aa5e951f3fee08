//! `shadow-batch`: the native host of shadow-core. It reads the CSV and the images,
//! performs the HTTP, writes the files and paints the console; the core decides
//! everything else.

mod batch_driver;
mod cli;
mod driver;
mod files;
mod images;
mod next_step;
mod plan;
mod read_ahead;
mod report;
mod transport;

use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, FromArgMatches};
use shadow_core::input::{read_labels_csv, ColumnNames, LabelsCsv};
use shadow_core::journal::{fold_journal_reader, JournalHeader};
use shadow_core::provider::{OutputFormat, Provider};
use shadow_core::report::{escape_for_terminal, RunStatus, Summary};
use shadow_core::{EndpointKind, Run, RunConfig};
use shadow_mock::{MockConfig, MockServer, Truth};

use crate::cli::{Cli, Command, RunArgs};
use crate::driver::{Clock, Driver, Ended, Interrupts};
use crate::files::{stamp_journal, write_atomic, Journal, RunFiles, RunLock};
use crate::images::ImageLoader;
use crate::plan::{plan, Plan, SavedRun};
use crate::transport::Transport;

fn main() -> ExitCode {
    let matches = crate::cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: not in a pipe, file or CI log.
        .with_ansi(
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .init();
    // A run: one thread drives the engine and every socket; the work per request is
    // small, and cross-thread wake-ups cost more than they save (file reads still go
    // to the blocking pool). The servers use every core.
    let runtime = match &cli.command {
        None | Some(Command::Report(_) | Command::Cancel(_)) => {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        Some(_) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Some(Command::MockServer(args)) => {
            runtime.block_on(mock_server(args.into(), None)).map(|()| 0)
        }
        Some(Command::Web(args)) => {
            let dir = args
                .web_dir
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../web"));
            runtime
                .block_on(mock_server(args.mock.into(), Some(dir)))
                .map(|()| 0)
        }
        Some(Command::Report(args)) => write_report_of(&args).map(|()| 0),
        Some(Command::Cancel(args)) => runtime.block_on(cancel(&args)),
        None => runtime.block_on(run(cli.run, &matches, false)),
    };
    // Requests still in flight after an abandon must not hold the process open.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // An error may quote the CSV (a header, a path): escaped, line by line.
            let text = format!("{e:#}");
            let lines: Vec<_> = text.split('\n').map(escape_for_terminal).collect();
            eprintln!("error: {}", lines.join("\n"));
            ExitCode::from(2)
        }
    }
}

/// `shadow-batch cancel FILE`: the run resumed with its settings, its provider
/// batches cancelled at once.
async fn cancel(args: &cli::CancelArgs) -> Result<u8> {
    let name = args.file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if shadow_core::run_files::run_id_of_file_name(name).is_none() {
        bail!(
            "{}: shadow-batch cancel takes a file of a batch-API run: its progress file {p}progress-RUN.json as the run printed it (or its {p}results-RUN.jsonl, {p}RUN.json or {p}provider-RUN.jsonl); this file is named like none of them",
            args.file.display(),
            p = shadow_core::run_files::PREFIX
        );
    }
    let file = args.file.as_os_str();
    let matches = crate::cli::command()
        .try_get_matches_from([
            std::ffi::OsStr::new("shadow-batch"),
            "--resume".as_ref(),
            file,
        ])
        .context("cannot read the run to cancel")?;
    let cli = Cli::from_arg_matches(&matches)?;
    run(cli.run, &matches, true).await
}

async fn run(args: RunArgs, matches: &ArgMatches, cancel: bool) -> Result<u8> {
    let clock = Clock::start();
    // Ctrl-C is caught from the first moment: start-up can take seconds (a large
    // CSV, the mock's images, the model check against a server that never answers).
    let mut interrupts = Interrupts::new()?;
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);

    let resumed = args
        .resume
        .as_deref()
        .map(RunFiles::of_existing)
        .transpose()?;
    // Before any of the run's files is read: a second process on the run stops here.
    let resumed_lock = resumed.as_ref().map(RunLock::take).transpose()?;
    let saved = match &resumed {
        Some(files) => saved_run(files, &args)?,
        None => None,
    };
    let Plan {
        csv: csv_path,
        mut config,
        api_key,
        key_var,
        unused_keys,
    } = plan(&args, &given, saved.as_ref(), &plan::Env::from_process())?;
    let csv = read_csv(&csv_path, &config.columns)?;
    let data_dir = match csv_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut images = ImageLoader::new(&data_dir, args.allow_outside_data_dir)
        .with_context(|| format!("cannot open the data folder {}", data_dir.display()))?;
    if config.inline_images {
        let client = reqwest::Client::builder()
            .user_agent(concat!("shadow-batch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .build()?;
        images = images.inline_remote(client);
    }
    let mock = match config.provider_label {
        EndpointKind::Mock => {
            let server = tokio::select! {
                server = start_builtin_mock(&args, &csv, &images) => server?,
                _ = interrupts.recv() => return Ok(interrupted_at_start(None)),
            };
            if let Provider::OpenAi(openai) = &mut config.provider {
                openai.base_url = server.base_url();
            }
            Some(server)
        }
        _ => None,
    };
    let endpoint = endpoint_url(&config)?;
    let (files, _lock) = match (resumed, resumed_lock) {
        (Some(files), Some(lock)) => (files, lock),
        _ => {
            let dir = args.out_dir.clone().unwrap_or_else(|| data_dir.clone());
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the output folder {}", dir.display()))?;
            let files = RunFiles::new(&dir, &clock.now().to_file_stamp());
            let lock = RunLock::take(&files)?;
            (files, lock)
        }
    };
    config.run_id = files.run_id.clone();
    // Where the run sends is on disk before anything is sent: a resume from the
    // journal alone sends there too.
    let mut header = JournalHeader {
        run: RunConfig {
            provider: config.provider.for_display(),
            ..config.clone()
        },
    };
    if let (EndpointKind::Mock, Provider::OpenAi(openai)) =
        (config.provider_label, &mut header.run.provider)
    {
        // Each session binds the mock afresh: its port would rewrite the journal at
        // every resume, and says nothing about where data goes.
        openai.base_url.clear();
    }

    if config.batch_api.is_some() {
        stamp_journal(&files.results, &header)?;
        return batch_driver::run_batch(batch_driver::Setup {
            args: &args,
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
        })
        .await;
    }
    if args.resume.is_some() {
        refuse_live_over_open_batches(&files)?;
    }
    if cancel {
        bail!(
            "{}: this run went live, not through a provider's batch API: it has no batches to cancel",
            args.resume.as_deref().unwrap_or(Path::new("")).display()
        );
    }
    stamp_journal(&files.results, &header)?;

    let labels = csv.labels.len();
    let rows = csv.items.len();
    let defects = csv.defect_count();
    let mut run = Run::new(config.clone(), csv, clock.now())?;
    if let Some(key) = &api_key {
        run.hide_secret(key);
    }
    let (journal, resumed) = open_journal(&mut run, &files, &args)?;

    // The run's own config: its URL is the one reports show (no credentials).
    print_banner(
        run.config(),
        &files,
        &Facts {
            rows,
            labels,
            defects,
            resumed,
            mock: mock.is_some(),
            inline_images: config.inline_images,
            format: run.output_format(),
            unused_keys,
        },
    );

    let client = Transport::client(config.in_flight_cap())?;
    if mock.is_none() {
        tokio::select! {
            () = check_model(&client, &config.provider, api_key.as_deref()) => {}
            _ = interrupts.recv() => return Ok(interrupted_at_start(Some(&files))),
        }
    }
    let transport = Arc::new(Transport {
        endpoint,
        client,
        requests: run.request_template().clone(),
        images,
        api_key,
        timeout: Duration::from_millis(config.request_timeout_ms),
    });
    let driver = Driver {
        run,
        clock,
        transport,
        journal,
        files: files.clone(),
        errors_shown: args.errors_shown,
    };
    let mut summary = match driver.drive(interrupts).await? {
        Ended::Finished(summary) => summary,
        Ended::ExitedAtOnce => {
            // The mock (if any) is dropped, not drained: the user asked to leave now.
            println!(
                "To continue: shadow-batch {} --resume {}",
                escape_for_terminal(&csv_path.display().to_string()),
                files.results.display()
            );
            return Ok(130);
        }
    };
    // Written and shown: what grows with the run (every batch report, every
    // failed row) is not kept while the report is made.
    summary.all_reports = Vec::new();
    summary.overall_progress.errors = Vec::new();
    // The report is a view of the files just written: failing to write it costs
    // the run nothing, and `shadow-batch report` can write it again.
    let report = report::write_report(
        &files,
        &report::ReportOptions {
            data_dir: Some(data_dir),
            embed_thumbnails: args.embed_thumbnails,
            out: None,
        },
    );
    print_epilogue(&summary, &files, mock, report, key_var).await;
    Ok(summary.exit_code())
}

/// Ctrl-C before the first request: nothing was sent, nothing is lost. With the
/// run's files made, how to start it again.
fn interrupted_at_start(files: Option<&RunFiles>) -> u8 {
    eprintln!("\nshadow-batch: interrupted during start-up; no request was sent");
    if let Some(files) = files {
        println!(
            "To continue: shadow-batch --resume {}",
            files.results.display()
        );
    }
    130
}

/// Before a run against an OpenAI-compatible endpoint: asks its model list (`GET
/// /models`) and warns when the list does not name the model, with the names it
/// gives (a local server answers an unloaded model with a bare 404). Any failure
/// of the check itself (no answer within 3 s, an error status, no list) is silent:
/// many servers have no list, and the run's own requests say what is wrong with
/// the endpoint.
async fn check_model(client: &reqwest::Client, provider: &Provider, key: Option<&str>) {
    use shadow_core::provider::{check_model_listing, ModelListing};
    let (Some(url), Some(model)) = (provider.models_url(), provider.model()) else {
        return;
    };
    let mut request = client.get(&url).timeout(Duration::from_secs(3));
    if let Some(key) = key {
        let (name, value) = provider.credential_header(key);
        if let Ok(mut value) = reqwest::header::HeaderValue::from_str(&value) {
            value.set_sensitive(true);
            request = request.header(name, value);
        }
    }
    let body = match request.send().await {
        Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
        Ok(r) => {
            tracing::debug!("model list: HTTP {}", r.status().as_u16());
            return;
        }
        Err(e) => {
            tracing::debug!("model list: {}", transport::describe(e));
            return;
        }
    };
    if let ModelListing::NotListed { listed } = check_model_listing(&body, model) {
        const SHOWN: usize = 10;
        // What the endpoint says is shown as every text it supplies is: without the key.
        let mut redactor = shadow_core::redact::Redactor::default();
        if let Some(key) = key {
            redactor.add(key);
        }
        let mut names = listed
            .iter()
            .take(SHOWN)
            .map(|n| escape_for_terminal(&redactor.redact(n)).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        if listed.len() > SHOWN {
            names += &format!(" and {} more", listed.len() - SHOWN);
        }
        eprintln!(
            "warning: the endpoint's model list ({}) does not name {:?}; it names: {names}. \
             If its requests fail, pass one of those with --model.",
            shadow_core::redact::url_for_display(&url),
            escape_for_terminal(model)
        );
    }
}

/// A batch-API run resumed live would send again the rows its provider batches
/// still hold (and pay for them twice): refused while any of them is open.
fn refuse_live_over_open_batches(files: &RunFiles) -> Result<()> {
    let Ok(file) = File::open(&files.provider) else {
        return Ok(());
    };
    let folded = shadow_core::batch::fold_batch_journal(BufReader::new(file))
        .with_context(|| format!("cannot read {}", files.provider.display()))?;
    let open = folded.shards.iter().filter(|s| s.phase().is_open()).count();
    if open > 0 {
        bail!(
            "this run went through the provider's batch API and {open} of its batches may still hold rows: resuming it live would send them again. Resume it with --via batch-api, or cancel them first: shadow-batch cancel {}",
            files.progress.display()
        );
    }
    Ok(())
}

/// `shadow-batch report FILE`.
fn write_report_of(args: &cli::ReportArgs) -> Result<()> {
    let files = report::run_files_of(&args.file)?;
    if let Some(dir) = &args.images_dir {
        if !dir.is_dir() {
            bail!("--images-dir {}: not a folder", dir.display());
        }
    }
    let out = report::write_report_capped(
        &files,
        &report::ReportOptions {
            data_dir: args.images_dir.clone(),
            embed_thumbnails: args.embed_thumbnails,
            out: args.out.clone(),
        },
        Some(args.max_rows),
    )?;
    println!("Report:   {}", out.display());
    println!("          (open it in a browser: one file, no server, no network)");
    Ok(())
}

/// The saved settings of the run being resumed: its progress or summary file, else
/// its results journal's header.
fn saved_run(files: &RunFiles, args: &RunArgs) -> Result<Option<SavedRun>> {
    if let Some(saved) = read_saved(files)? {
        return Ok(Some(saved));
    }
    // Killed before its first batch report, a run has only its journal, whose first
    // line names the run's settings (the endpoint among them).
    if let Some(header) = files::read_journal_header(&files.results)? {
        return Ok(Some(SavedRun::from_header(header)));
    }
    if args.csv.is_none() {
        bail!(
            "cannot resume: neither {} nor {} exists, and {} does not name its run; give the CSV and the endpoint too to resume from the results file alone",
            files.progress.display(),
            files.summary.display(),
            files.results.display()
        );
    }
    Ok(None)
}

/// The endpoint's URL, as text (for messages) and parsed once.
fn endpoint_url(config: &RunConfig) -> Result<(String, reqwest::Url)> {
    let text = config.provider.endpoint_url();
    let url = reqwest::Url::parse(&text).with_context(|| {
        let shown = shadow_core::redact::url_for_display(&text);
        format!("the endpoint URL {shown:?} is not a valid URL (check --base-url / --endpoint / --deployment)")
    })?;
    Ok((text, url))
}

/// What a user reads after the last report: the mock's counts, where the files are,
/// and the next step when the run did not complete.
pub(crate) async fn print_epilogue(
    summary: &Summary,
    files: &RunFiles,
    mock: Option<MockServer>,
    report: Result<PathBuf>,
    key_var: Option<&str>,
) {
    if let Some(server) = mock {
        let stats = server.stats();
        println!(
            "Built-in mock: {} requests, {} injected server errors, {} rate-limited",
            stats.requests, stats.server_errors, stats.rate_limited
        );
        // Requests abandoned by an interrupt may still be held by the mock: do not
        // wait for them.
        if summary.status != RunStatus::Interrupted {
            server.shutdown().await;
        }
    }
    if let Some(pace) = &summary.pace {
        println!(
            "Pace at the end: {}",
            pace.describe().trim_start_matches("pace: ")
        );
    }
    println!("Results:  {}", files.results.display());
    println!("Summary:  {}", files.summary.display());
    println!("Progress: {}", files.progress.display());
    match report {
        Ok(path) => println!("Report:   {} (open it in a browser)", path.display()),
        Err(e) => eprintln!(
            "warning: the HTML report was not written ({}); write it later with: shadow-batch report {}",
            escape_for_terminal(&format!("{e:#}")),
            files.results.display()
        ),
    }
    if let Some(reason) = &summary.abort_kind {
        eprintln!(
            "error: run aborted: {}",
            escape_for_terminal(&reason.to_string())
        );
        eprintln!(
            "{}",
            next_step::after_abort(reason, &files.progress, key_var)
        );
    }
    if summary.status == RunStatus::Interrupted {
        println!(
            "To continue: shadow-batch --resume {}",
            files.progress.display()
        );
    }
}

fn read_saved(files: &RunFiles) -> Result<Option<SavedRun>> {
    for path in [&files.progress, &files.summary] {
        match std::fs::read(path) {
            Ok(bytes) => {
                return serde_json::from_slice(&bytes).map(Some).with_context(|| {
                    format!(
                        "{} is not a shadow-batch progress or summary file",
                        path.display()
                    )
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    Ok(None)
}

fn read_csv(path: &Path, columns: &ColumnNames) -> Result<LabelsCsv> {
    let file =
        File::open(path).with_context(|| format!("cannot open the CSV {}", path.display()))?;
    read_labels_csv(BufReader::with_capacity(1 << 20, file), columns).map_err(|e| {
        let step = next_step::for_csv(&e);
        anyhow::Error::new(e).context(format!("{}{step}", path.display()))
    })
}

/// Opens the results journal; on resume, feeds what it holds to the run first.
fn open_journal(run: &mut Run, files: &RunFiles, args: &RunArgs) -> Result<(Journal, usize)> {
    let existing = match File::open(&files.results) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", files.results.display()))
        }
    };
    let Some(file) = existing.filter(|_| args.resume.is_some()) else {
        return Ok((Journal::open(&files.results, None)?, 0));
    };
    let mut folded = fold_journal_reader(BufReader::new(file))
        .with_context(|| format!("cannot read {}", files.results.display()))?;
    for (line, reason) in &folded.bad_lines {
        tracing::warn!(
            "{}:{line}: skipped ({reason}); that row runs again",
            files.results.display()
        );
    }
    let rewrite = folded.prepare_resume(args.retry_failed);
    let taken = run
        .restore(folded.results.iter().cloned())
        .with_context(|| format!("cannot resume from {}", files.results.display()))?;
    if rewrite {
        // One line per finished row, atomically.
        write_atomic(&files.results, folded.to_journal_text().as_bytes())?;
        return Ok((Journal::open(&files.results, None)?, taken));
    }
    Ok((
        Journal::open(&files.results, Some(folded.complete_len as u64))?,
        taken,
    ))
}

async fn start_builtin_mock(
    args: &RunArgs,
    csv: &LabelsCsv,
    images: &ImageLoader,
) -> Result<MockServer> {
    for (name, share) in [
        ("--mock-accuracy", args.mock_accuracy),
        ("--mock-error-rate", args.mock_error_rate),
    ] {
        if !(0.0..=1.0).contains(&share) {
            bail!("{name} must be between 0 and 1");
        }
    }
    let truth = build_truth(csv, images).await;
    MockServer::spawn(args.builtin_mock(), Some(truth))
        .await
        .context("cannot start the built-in mock endpoint on 127.0.0.1")
}

/// The mock's answer key: each image as the host will send it, with its label.
async fn build_truth(csv: &LabelsCsv, images: &ImageLoader) -> Truth {
    let mut truth = Truth::from_pairs(std::iter::empty());
    for item in csv.items.iter().filter(|i| i.defect.is_none()) {
        if let Ok(url) = images.load(item).await {
            truth.insert_row(&url, item.label.to_string(), item.row);
        }
    }
    truth
}

/// Serves the mock endpoint; with `web_dir`, the browser page too, on the same origin.
async fn mock_server(mut cfg: MockConfig, web_dir: Option<PathBuf>) -> Result<()> {
    if let Some(dir) = &web_dir {
        if !dir.join("pkg/shadow_wasm.js").exists() {
            bail!(
                "{} has no pkg/shadow_wasm.js: build the page first with `bash web/build.sh`",
                dir.display()
            );
        }
    }
    let truth = match cfg.truth.take() {
        Some(path) => {
            let csv = read_csv(&path, &ColumnNames::default())?;
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let images = ImageLoader::new(dir, false)?;
            let truth = build_truth(&csv, &images).await;
            if truth.is_empty() {
                eprintln!(
                    "warning: no image of {} could be loaded: answers will not follow its labels",
                    path.display()
                );
            } else {
                eprintln!("truth: {} images from {}", truth.len(), path.display());
            }
            cfg.truth = Some(path);
            Some(truth)
        }
        None => None,
    };
    let server = MockServer::spawn_with_files(cfg.clone(), truth, web_dir.clone())
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", cfg.port))?;
    if web_dir.is_some() {
        println!(
            "shadow-batch page at http://{}/ (mock endpoint at {})",
            server.addr,
            server.base_url()
        );
    } else {
        println!(
            "shadow-batch mock endpoint listening on {}",
            server.base_url()
        );
    }
    println!("(OpenAI-compatible; simulated predictions; Ctrl-C to stop)");
    let root = format!("http://{}", server.addr);
    println!("Other dialects on the same address (the key in each one's header):");
    println!("  --provider anthropic --base-url {root}");
    println!("  --provider gemini --base-url {root}");
    println!("  --provider azure --base-url {root} --deployment NAME [--api-version 2024-10-21]");
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    Ok(())
}

/// What the banner says about a run beside its config.
pub(crate) struct Facts {
    pub(crate) rows: usize,
    pub(crate) labels: usize,
    pub(crate) defects: usize,
    pub(crate) resumed: usize,
    pub(crate) mock: bool,
    pub(crate) inline_images: bool,
    /// The answer form requests start with (simpler than JSON schema when an
    /// earlier session of the run found the endpoint needs it).
    pub(crate) format: OutputFormat,
    /// Keys the environment holds that the run does not send (no endpoint named):
    /// `(variable, --provider value)`.
    pub(crate) unused_keys: Vec<(&'static str, &'static str)>,
}

pub(crate) fn print_banner(config: &RunConfig, files: &RunFiles, facts: &Facts) {
    let Facts {
        rows,
        labels,
        defects,
        resumed,
        mock,
        inline_images,
        format,
        ref unused_keys,
    } = *facts;
    let endpoint = match &config.provider {
        Provider::OpenAi(o) => format!(
            "{} (model {}, {})",
            o.base_url,
            o.model,
            config.provider_label.as_str()
        ),
        Provider::HttpJson(h) => format!("{} (http, prediction at {})", h.url, h.prediction_field),
        Provider::Azure(a) => format!(
            "{} (deployment {}, azure{})",
            config.provider.endpoint_url(),
            a.deployment,
            if a.api_version.is_some() {
                ""
            } else {
                ", v1 path"
            }
        ),
        other => format!(
            "{} (model {}, {})",
            other.endpoint_url(),
            other.model().unwrap_or("-"),
            config.provider_label.as_str()
        ),
    };
    println!(
        "shadow-batch {} — run {}",
        env!("CARGO_PKG_VERSION"),
        config.run_id
    );
    if mock {
        println!("  NOTE: using the BUILT-IN MOCK endpoint on 127.0.0.1: predictions are SIMULATED, nothing leaves this machine.");
        for (var, provider) in unused_keys {
            println!("        {var} is set but not used: no endpoint was named. To send the images to {provider} (at your cost): --provider {provider}");
        }
        if unused_keys.is_empty() && resumed == 0 {
            println!("        For a real model, name its endpoint: --provider openai (with OPENAI_API_KEY), anthropic, gemini, azure, or --base-url URL.");
        }
    }
    println!(
        "  CSV:          {} ({rows} rows, {labels} labels{})",
        escape_for_terminal(&config.csv_path),
        if defects > 0 {
            format!(", {defects} unusable rows")
        } else {
            String::new()
        }
    );
    println!("  Endpoint:     {}", escape_for_terminal(&endpoint));
    if config.batch_api.is_some() {
        println!(
            "  Settings:     batch size {} (reports), max retries {} (re-sends of failed or expired requests)",
            config.batch_size, config.max_retries
        );
    } else {
        println!(
        "  Settings:     batch size {}, delay {} ms, max retries {}, {}, rpm cap {}, tpm cap {}, timeout {}s",
        config.batch_size,
        config.delay_ms,
        config.max_retries,
        match (config.concurrency, config.adaptive_concurrency) {
            (Some(n), true) => format!("concurrency up to {n} (halved on 429)"),
            (Some(n), false) => format!("concurrency {n}"),
            (None, true) => format!(
                "concurrency found from the pace (up to {})",
                config.max_concurrency
            ),
            (None, false) => format!("concurrency {}", config.max_concurrency),
        },
        config.rpm.map_or("none".to_string(), |r| r.to_string()),
        config.tpm.map_or("none".to_string(), |r| r.to_string()),
        config.request_timeout_ms as f64 / 1000.0
    );
    }
    if inline_images {
        println!("  Images:       http(s) images downloaded and sent inline (--inline-images)");
    }
    if format != OutputFormat::JsonSchema {
        println!(
            "  Answers:      asked for as {} (the endpoint refused the richer forms earlier in this run)",
            format.as_str()
        );
    }
    if resumed > 0 {
        println!(
            "  Resumed:      {resumed} rows already finished in {}",
            files.results.display()
        );
    }
    println!("  Results:      {}", files.results.display());
    println!();
}
