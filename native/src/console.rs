//! What the CLI says on the console around a run: the banner, the batch-API
//! lines, and the epilogue after the last report of a live or a batch-API run.
//! The reports themselves are the core's words.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use shadow_core::input::CsvOutline;
use shadow_core::provider::{OutputFormat, Provider};
use shadow_core::report::{escape_for_terminal, RunStatus, Summary};
use shadow_core::RunConfig;
use shadow_mock::MockServer;

use crate::files::RunFiles;

/// What the banner says about a run beside its config.
pub struct Facts {
    pub rows: usize,
    pub labels: usize,
    pub defects: usize,
    pub resumed: usize,
    pub mock: bool,
    pub inline_images: bool,
    /// The answer form requests start with (simpler than JSON schema when an
    /// earlier session of the run found the endpoint needs it).
    pub format: OutputFormat,
    /// Keys the environment holds that the run does not send (no endpoint named):
    /// `(variable, --provider value)`.
    pub unused_keys: Vec<(&'static str, &'static str)>,
}

/// The banner: the version, the run, where it sends and with which settings.
impl Facts {
    /// The facts known before the journals are read: the CSV's counts and the
    /// launch's choices (no row resumed, answers asked for as JSON schema).
    pub fn of(
        csv: &CsvOutline,
        mock: bool,
        inline_images: bool,
        unused_keys: Vec<(&'static str, &'static str)>,
    ) -> Facts {
        Facts {
            rows: csv.rows,
            labels: csv.labels.len(),
            defects: csv.defects,
            resumed: 0,
            mock,
            inline_images,
            format: OutputFormat::JsonSchema,
            unused_keys,
        }
    }
}

pub fn print_banner(config: &RunConfig, files: &RunFiles, facts: &Facts) {
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
    println!("  Confidence:   {}", confidence_words(config));
    if resumed > 0 {
        println!(
            "  Resumed:      {resumed} rows already finished in {}",
            files.results.display()
        );
    }
    println!("  Results:      {}", files.results.display());
    println!();
}

/// Whether answers carry a confidence, in the CLI's words.
fn confidence_words(config: &RunConfig) -> &'static str {
    use shadow_core::confidence::Availability;
    match config.confidence_availability() {
        Availability::Asked => {
            "asked for (log-probabilities of the answer's tokens; --no-confidence to stop)"
        }
        Availability::TurnedOff => "not asked (--no-confidence)",
        Availability::ProviderGivesNone => {
            "unavailable: this provider's API gives no log-probabilities"
        }
        Availability::ReasoningModel => "unavailable: reasoning models refuse log-probabilities",
        Availability::Refused => {
            "unavailable: the endpoint refused log-probabilities earlier in this run"
        }
        Availability::BatchApi => "not asked in batch mode",
        _ => "unavailable",
    }
}

/// Ctrl-C before the first request: nothing was sent, nothing is lost. With the
/// run's files made, how to start it again.
pub fn interrupted_at_start(files: Option<&RunFiles>) -> u8 {
    eprintln!("\nshadow-batch: interrupted during start-up; no request was sent");
    if let Some(files) = files {
        println!(
            "To continue: shadow-batch --resume {}",
            files.results.display()
        );
    }
    130
}

/// What a user reads after the last report: the mock's counts, where the files are,
/// and the next step when the run did not complete.
pub async fn live_epilogue(
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
    print_files(files, report, false);
    print_abort(summary, files, key_var);
    if summary.status == RunStatus::Interrupted {
        println!(
            "To continue: shadow-batch --resume {}",
            files.progress.display()
        );
    }
}

/// Where the run's files are; the provider journal for a batch-API run.
fn print_files(files: &RunFiles, report: Result<PathBuf>, provider: bool) {
    println!("Results:  {}", files.results.display());
    println!("Summary:  {}", files.summary.display());
    println!("Progress: {}", files.progress.display());
    if provider {
        println!("Provider: {}", files.provider.display());
    }
    match report {
        Ok(path) => println!("Report:   {} (open it in a browser)", path.display()),
        Err(e) => eprintln!(
            "warning: the HTML report was not written ({}); write it later with: shadow-batch report {}",
            escape_for_terminal(&format!("{e:#}")),
            files.results.display()
        ),
    }
}

/// Why the run stopped, and what to do about it.
fn print_abort(summary: &Summary, files: &RunFiles, key_var: Option<&str>) {
    if let Some(reason) = &summary.abort_kind {
        eprintln!(
            "error: run aborted: {}",
            escape_for_terminal(&reason.to_string())
        );
        eprintln!(
            "{}",
            crate::next_step::after_abort(reason, &files.progress, key_var)
        );
    }
}

/// The banner's lines of a batch-API run: how it sends, and what a resume found.
pub fn print_via(config: &RunConfig, open: usize, to_find: usize) {
    let Some(b) = &config.batch_api else { return };
    println!(
        "  Via:          the provider's batch API (shards of up to {} requests and {} MB, read every {}s at most; half price, results within 24 h)",
        b.max_lines,
        b.max_bytes / 1_000_000,
        b.poll_max_ms as f64 / 1000.0
    );
    if matches!(config.provider, Provider::Gemini(_)) {
        println!(
            "                a shard whose create request is at most {} bytes goes inline in it (no upload); a larger one as an uploaded file",
            b.inline_max_bytes
        );
    }
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

/// Text without a newline of its own, shown at once.
pub fn print_now(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// What a user reads after the summary of a batch-API run.
pub async fn batch_epilogue(
    summary: &Summary,
    files: &RunFiles,
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
    print_files(files, report, true);
    print_abort(
        summary,
        files,
        crate::plan::key_var(summary.config.provider_label),
    );
    let resume = format!("shadow-batch --resume {}", files.progress.display());
    if detached {
        let running: Vec<&str> = summary
            .provider_batches
            .iter()
            .flatten()
            .filter(|b| b.batch_id.is_some() && b.status.is_open())
            .filter_map(|b| b.batch_id.as_deref())
            .collect();
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
}
