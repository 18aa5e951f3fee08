//! `shadow-batch`: the native host of shadow-core. It reads the CSV and the images,
//! performs the HTTP, writes the files and paints the console; the core decides
//! everything else.

mod batch_driver;
mod builtin_mock;
mod cli;
mod compare;
mod console;
mod csv_rows;
mod driver;
mod endpoint_limits;
mod estimate;
mod files;
mod images;
mod launch;
mod next_step;
mod plan;
mod preflight;
mod read_ahead;
mod report;
mod resumable_upload;
mod transport;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{ArgMatches, FromArgMatches};
use shadow_core::report::escape_for_terminal;

use crate::cli::{Cli, Command, RunArgs};
use crate::driver::{Driver, Ended};
use crate::launch::Launched;
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
        None
        | Some(
            Command::Report(_) | Command::Compare(_) | Command::Cancel(_) | Command::Estimate(_),
        ) => tokio::runtime::Builder::new_current_thread()
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
        Some(Command::MockServer(args)) => runtime
            .block_on(builtin_mock::serve(args.into(), None))
            .map(|()| 0),
        Some(Command::Web(args)) => {
            let dir = args
                .web_dir
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../web"));
            runtime
                .block_on(builtin_mock::serve(args.mock.into(), Some(dir)))
                .map(|()| 0)
        }
        Some(Command::Report(args)) => write_report_of(&args).map(|()| 0),
        Some(Command::Compare(args)) => compare::compare_runs(&args),
        Some(Command::Cancel(args)) => runtime.block_on(cancel(&args)),
        Some(Command::Estimate(args)) => match matches.subcommand_matches("estimate") {
            Some(sub) => estimate::estimate(&args, sub, &runtime),
            None => unreachable!("clap parsed the estimate subcommand"),
        },
        None if cli.run.dry_run => estimate::estimate(&cli.run, &matches, &runtime),
        None if cli.run.ask_endpoint_limits => Err(anyhow::anyhow!(
            "--ask-endpoint-limits reads the endpoint's limits for an estimate: give it with `shadow-batch estimate` or --dry-run"
        )),
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

/// A run: planned and launched the same way live or through a provider's batch
/// API, then driven by the host of its kind.
async fn run(args: RunArgs, matches: &ArgMatches, cancel: bool) -> Result<u8> {
    let Some(launched) = launch::launch(&args, matches, cancel).await? else {
        return Ok(console::interrupted_at_start(None));
    };
    if launched.config.batch_api.is_some() {
        return batch_driver::run_batch(launched, &args, cancel).await;
    }
    run_live(launched, &args).await
}

/// A live run: one request per image attempt, paced by the core; then the
/// report and the epilogue.
async fn run_live(launched: Launched, args: &RunArgs) -> Result<u8> {
    let Launched {
        mut interrupts,
        files,
        mock,
        config,
        api_key,
        ..
    } = launched;
    let facts = console::Facts::of(
        &launched.rows.outline(),
        mock.is_some(),
        config.inline_images,
        launched.unused_keys,
    );
    let clock = launched.clock;
    let (mut run, feed) = launched.rows.into_run(config.clone(), clock.now())?;
    if let Some(key) = &api_key {
        run.hide_secret(key);
    }
    // Before the journal is restored: restored rows are compared too.
    if let Some(baseline) = launched.baseline {
        run.compare_with(baseline)
            .context("cannot compare this run with its baseline")?;
    }
    let (journal, resumed) = launch::open_live_journal(&mut run, &files, args)?;
    // The run's own config: its URL is the one reports show (no credentials).
    console::print_banner(
        run.config(),
        &files,
        &console::Facts {
            resumed,
            format: run.output_format(),
            ..facts
        },
    );
    if mock.is_none() {
        tokio::select! {
            () = launch::check_model(&launched.client, &config.provider, api_key.as_deref()) => {}
            _ = interrupts.recv() => return Ok(console::interrupted_at_start(Some(&files))),
        }
    }
    let transport = Arc::new(Transport {
        endpoint: launched.endpoint,
        client: launched.client,
        requests: run.request_template().clone(),
        images: launched.images,
        api_key,
        timeout: Duration::from_millis(config.request_timeout_ms),
    });
    let driver = Driver {
        run,
        feed,
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
                escape_for_terminal(&launched.csv_path.display().to_string()),
                files.results.display()
            );
            return Ok(130);
        }
    };
    // Written and shown: what grows with the run (every batch report, every
    // failed row) is not kept while the report is made.
    summary.all_reports = Vec::new();
    summary.overall_progress.errors = Vec::new();
    let report = report::write_at_end(&files, launched.data_dir, args.embed_thumbnails);
    console::live_epilogue(&summary, &files, mock, report, launched.key_var).await;
    Ok(summary.exit_code())
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
