//! `shadow-batch`: the native host of shadow-core. It reads the CSV and the images,
//! performs the HTTP, writes the files and paints the console; the core decides
//! everything else.

mod cli;
mod driver;
mod files;
mod images;
mod read_ahead;
mod transport;

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use serde::Deserialize;
use shadow_core::input::{read_labels_csv, ColumnNames, LabelsCsv};
use shadow_core::journal::{fold_journal_reader, ItemStatus};
use shadow_core::provider::{HttpJsonConfig, ImageDetail, OpenAiConfig, Provider};
use shadow_core::{Run, RunConfig};
use shadow_mock::{MockConfig, MockServer, Truth, MOCK_MODEL};

use crate::cli::{Cli, Command, Detail, ProviderKind, RunArgs};
use crate::driver::{Clock, Driver, Ended};
use crate::files::{write_atomic, Journal, RunFiles};
use crate::images::ImageLoader;
use crate::transport::Transport;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // A run: one thread drives the engine and every socket; the work per request is
    // small, and cross-thread wake-ups cost more than they save (file reads still go
    // to the blocking pool). The servers use every core.
    let runtime = match &cli.command {
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
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
        None => runtime.block_on(run(cli.run, &matches)),
    };
    // Requests still in flight after an abandon must not hold the process open.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// What an earlier run's progress or summary file says about it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedRun {
    csv_path: String,
    config: RunConfig,
}

async fn run(args: RunArgs, matches: &ArgMatches) -> Result<u8> {
    let clock = Clock::start();
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);

    let (files, saved) = match &args.resume {
        Some(file) => {
            let files = RunFiles::of_existing(file)?;
            // Killed before its first batch report, a run has only its journal: with
            // the CSV given, that is enough (the settings come from the flags).
            let saved = match read_saved(&files)? {
                None if args.csv.is_none() => bail!(
                    "cannot resume: neither {} nor {} exists; give the CSV too to resume from the results file alone",
                    files.progress.display(),
                    files.summary.display()
                ),
                saved => saved,
            };
            (Some(files), saved)
        }
        None => (None, None),
    };
    let csv_path: PathBuf = match (&args.csv, &saved) {
        (Some(p), _) => p.clone(),
        (None, Some(s)) => PathBuf::from(&s.csv_path),
        (None, None) => bail!("no CSV given"),
    };
    // Columns named now win; otherwise a resumed run reads the CSV as it did first.
    let named = ColumnNames {
        image: args.image_column.clone(),
        label: args.label_column.clone(),
        id: args.id_column.clone(),
    };
    let columns = match &saved {
        Some(s) if named.is_default() => s.config.columns.clone(),
        _ => named,
    };
    let csv = read_csv(&csv_path, &columns)?;
    let data_dir = match csv_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };

    let mut config = saved.as_ref().map(|s| s.config.clone()).unwrap_or_default();
    let fresh = saved.is_none();
    macro_rules! take {
        ($id:literal, $field:expr, $value:expr) => {
            if fresh || given($id) {
                $field = $value;
            }
        };
    }
    take!(
        "batch_size",
        config.batch_size,
        args.batch_size.unwrap_or(50)
    );
    take!("delay_ms", config.delay_ms, args.delay_ms.unwrap_or(0));
    take!(
        "max_retries",
        config.max_retries,
        args.max_retries.unwrap_or(5)
    );
    take!("concurrency", config.concurrency, args.concurrency);
    take!(
        "no_adaptive",
        config.adaptive_concurrency,
        !args.no_adaptive
    );
    take!("rpm", config.rpm, args.rpm);
    take!("seed", config.seed, args.seed);
    take!(
        "give_up_after",
        config.abort_after_failing_ms,
        args.give_up_after.saturating_mul(1000)
    );
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds");
    }
    take!(
        "timeout",
        config.request_timeout_ms,
        (args.timeout * 1000.0).ceil() as u64
    );
    config.csv_path = csv_path.display().to_string();
    config.columns = columns;

    let api_key = std::env::var("OPENAI_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
    let saved_kind = saved
        .as_ref()
        .map(|s| match s.config.provider_label.as_str() {
            "mock" => ProviderKind::Mock,
            "http" => ProviderKind::Http,
            _ => ProviderKind::Openai,
        });
    let kind = match (args.provider, saved_kind) {
        (Some(kind), _) => kind,
        (None, Some(kind)) => kind,
        (None, None) if api_key.is_some() => ProviderKind::Openai,
        (None, None) => ProviderKind::Mock,
    };
    let images = ImageLoader::new(&data_dir, args.allow_outside_data_dir)
        .with_context(|| format!("cannot open the data folder {}", data_dir.display()))?;
    let mut mock = None;
    let detail = match args.detail {
        Detail::Low => ImageDetail::Low,
        Detail::High => ImageDetail::High,
        Detail::Auto => ImageDetail::Auto,
    };
    let keep_saved_endpoint = !fresh && saved_kind == Some(kind);
    config.provider = match kind {
        ProviderKind::Openai => {
            if api_key.is_none() {
                bail!("--provider openai needs an API key: set OPENAI_API_KEY (or use --provider mock for simulated predictions)");
            }
            match (&config.provider, keep_saved_endpoint) {
                (Provider::OpenAi(saved), true) if !given("model") && !given("base_url") => {
                    Provider::OpenAi(saved.clone())
                }
                _ => Provider::OpenAi(OpenAiConfig {
                    base_url: args.base_url.clone(),
                    model: args.model.clone(),
                    detail,
                    prompt: args.prompt.clone(),
                }),
            }
        }
        ProviderKind::Http => match (&config.provider, keep_saved_endpoint, &args.endpoint) {
            (Provider::HttpJson(saved), true, None) => Provider::HttpJson(saved.clone()),
            (_, _, Some(url)) => Provider::HttpJson(HttpJsonConfig {
                url: url.clone(),
                prediction_field: args.prediction_field.clone(),
            }),
            _ => {
                bail!("--provider http needs --endpoint URL (the address each image is POSTed to)")
            }
        },
        ProviderKind::Mock => {
            let server = start_builtin_mock(&args, &csv, &images).await?;
            let provider = Provider::OpenAi(OpenAiConfig {
                base_url: server.base_url(),
                model: MOCK_MODEL.into(),
                detail,
                prompt: args.prompt.clone(),
            });
            mock = Some(server);
            provider
        }
    };
    let endpoint = config.provider.endpoint_url();
    let endpoint = reqwest::Url::parse(&endpoint).with_context(|| {
        format!("the endpoint URL {endpoint:?} is not a valid URL (check --base-url / --endpoint)")
    })?;
    config.provider_label = match kind {
        ProviderKind::Openai => "openai",
        ProviderKind::Http => "http",
        ProviderKind::Mock => "mock",
    }
    .into();

    let files = match files {
        Some(files) => files,
        None => {
            let dir = args.out_dir.clone().unwrap_or_else(|| data_dir.clone());
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the output folder {}", dir.display()))?;
            RunFiles::new(&dir, &clock.now().to_file_stamp())
        }
    };
    config.run_id = files.run_id.clone();
    config.validate()?;

    let labels = csv.labels.len();
    let rows = csv.items.len();
    let defects = csv.defect_count();
    let mut run = Run::new(config.clone(), csv, clock.now())?;
    let (journal, resumed) = open_journal(&mut run, &files, &args)?;

    print_banner(
        &config,
        &files,
        rows,
        labels,
        defects,
        resumed,
        mock.is_some(),
    );

    let transport = Arc::new(Transport {
        endpoint,
        client: Transport::client(config.concurrency)?,
        requests: run.request_template().clone(),
        images,
        api_key: if kind == ProviderKind::Mock {
            None
        } else {
            api_key
        },
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
    let summary = match driver.drive().await? {
        Ended::Finished(summary) => summary,
        Ended::ExitedAtOnce => {
            // The mock (if any) is dropped, not drained: the user asked to leave now.
            println!(
                "To continue: shadow-batch {} --resume {}",
                csv_path.display(),
                files.results.display()
            );
            return Ok(130);
        }
    };
    if let Some(server) = mock {
        let stats = server.stats();
        println!(
            "Built-in mock: {} requests, {} injected server errors, {} rate-limited",
            stats.requests, stats.server_errors, stats.rate_limited
        );
        // Requests abandoned by an interrupt may still be held by the mock: do not
        // wait for them.
        if summary.status != shadow_core::report::RunStatus::Interrupted {
            server.shutdown().await;
        }
    }
    println!("Results:  {}", files.results.display());
    println!("Summary:  {}", files.summary.display());
    println!("Progress: {}", files.progress.display());
    if let Some(reason) = &summary.abort_reason {
        eprintln!("error: run aborted: {reason}");
    }
    if summary.status == shadow_core::report::RunStatus::Interrupted {
        println!(
            "To continue: shadow-batch --resume {}",
            files.progress.display()
        );
    }
    Ok(summary.exit_code())
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
    read_labels_csv(BufReader::with_capacity(1 << 20, file), columns)
        .with_context(|| format!("{}", path.display()))
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
    let folded = fold_journal_reader(BufReader::new(file))
        .with_context(|| format!("cannot read {}", files.results.display()))?;
    for (line, reason) in &folded.bad_lines {
        tracing::warn!(
            "{}:{line}: skipped ({reason}); that row runs again",
            files.results.display()
        );
    }
    let duplicates = folded.lines_read > folded.results.len() + usize::from(folded.torn_tail);
    let drop_failed = args.retry_failed
        && folded
            .results
            .iter()
            .any(|r| r.status == ItemStatus::Failed);
    let results: Vec<_> = folded
        .results
        .into_iter()
        .filter(|r| !(args.retry_failed && r.status == ItemStatus::Failed))
        .collect();
    let taken = run
        .restore(results.iter().cloned(), args.retry_failed)
        .with_context(|| format!("cannot resume from {}", files.results.display()))?;
    if drop_failed || duplicates || !folded.bad_lines.is_empty() {
        // Rewrite the journal with one line per finished row, atomically.
        let text: String = results.iter().map(|r| r.to_json_line()).collect();
        write_atomic(&files.results, text.as_bytes())?;
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
            truth.insert(&url, item.label.to_string());
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
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    Ok(())
}

fn print_banner(
    config: &RunConfig,
    files: &RunFiles,
    rows: usize,
    labels: usize,
    defects: usize,
    resumed: usize,
    mock: bool,
) {
    let endpoint = match &config.provider {
        Provider::OpenAi(o) => format!(
            "{} (model {}, {})",
            o.base_url, o.model, config.provider_label
        ),
        Provider::HttpJson(h) => format!("{} (http, prediction at {})", h.url, h.prediction_field),
        _ => config.provider_label.clone(),
    };
    println!(
        "shadow-batch {} — run {}",
        env!("CARGO_PKG_VERSION"),
        config.run_id
    );
    if mock {
        println!("  NOTE: no API key or endpoint configured: using the BUILT-IN MOCK endpoint.");
        println!("        Predictions are SIMULATED. Set OPENAI_API_KEY (or --provider) for a real model.");
    }
    println!(
        "  CSV:          {} ({rows} rows, {labels} labels{})",
        config.csv_path,
        if defects > 0 {
            format!(", {defects} unusable rows")
        } else {
            String::new()
        }
    );
    println!("  Endpoint:     {endpoint}");
    println!(
        "  Settings:     batch size {}, delay {} ms, max retries {}, concurrency {}{}, rpm cap {}, timeout {}s",
        config.batch_size,
        config.delay_ms,
        config.max_retries,
        config.concurrency,
        if config.adaptive_concurrency { " (adaptive)" } else { "" },
        config.rpm.map_or("none".to_string(), |r| r.to_string()),
        config.request_timeout_ms as f64 / 1000.0
    );
    if resumed > 0 {
        println!(
            "  Resumed:      {resumed} rows already finished in {}",
            files.results.display()
        );
    }
    println!("  Results:      {}", files.results.display());
    println!();
}
