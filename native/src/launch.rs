//! Everything a run needs before its first request, the same for a live and a
//! batch-API run: the plan (flags, saved settings, environment), the CSV, the
//! image loader, the built-in mock, the HTTP client, the run's files under their
//! lock with the journal's header written, and the journals opened (on resume,
//! fed to the run).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::ArgMatches;
use shadow_core::batch::{fold_batch_journal, BatchRun, ProviderBatch};
use shadow_core::journal::{fold_journal_reader, FoldedJournal, ItemStatus, JournalHeader};
use shadow_core::provider::Provider;
use shadow_core::report::escape_for_terminal;
use shadow_core::{EndpointKind, Millis, Run, RunConfig, UsageError};
use shadow_mock::MockServer;

use crate::cli::RunArgs;
use crate::csv_rows::CsvRows;
use crate::driver::{Clock, Interrupts};
use crate::files::{self, stamp_journal, write_atomic, Journal, RunFiles, RunLock};
use crate::images::ImageLoader;
use crate::plan::{plan, Plan, SavedRun};

/// A run ready to drive: what [`launch`] decided and opened.
pub struct Launched {
    pub clock: Clock,
    /// Ctrl-C, caught since start-up.
    pub interrupts: Interrupts,
    pub csv_path: PathBuf,
    pub rows: CsvRows,
    pub config: RunConfig,
    pub api_key: Option<String>,
    /// The environment variable the key comes from (for messages; never its value).
    pub key_var: Option<&'static str>,
    /// Keys the environment holds that the run does not send (for the banner).
    pub unused_keys: Vec<(&'static str, &'static str)>,
    /// The CSV's folder: relative image paths start there.
    pub data_dir: PathBuf,
    pub images: ImageLoader,
    pub mock: Option<MockServer>,
    /// The run's one HTTP client (the endpoint, the batch API, remote images).
    pub client: reqwest::Client,
    /// The endpoint's URL, as text (for messages) and parsed once.
    pub endpoint: (String, reqwest::Url),
    pub files: RunFiles,
    /// Held until the run ends: a second process on the run is refused.
    pub lock: RunLock,
    /// What the run is compared with (`--baseline`, `--baseline-column`).
    pub baseline: Option<shadow_core::compare::Baseline>,
}

/// Launches the run `args` and `matches` describe; `cancel` for `shadow-batch
/// cancel`. `None`: interrupted before any of the run's files was made.
pub async fn launch(
    args: &RunArgs,
    matches: &ArgMatches,
    cancel: bool,
) -> Result<Option<Launched>> {
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
        Some(files) => saved_run(files, args)?,
        None => None,
    };
    let Plan {
        csv: csv_path,
        mut config,
        api_key,
        key_var,
        unused_keys,
    } = plan(
        args,
        &given,
        saved.as_ref(),
        &crate::plan::Env::from_process(),
    )?;
    // A resumed or batch-API run checks its journals against every row; a
    // sample is drawn from every row.
    let sampled =
        args.sample.is_some() || config.sample.is_some() || config.until_interval.is_some();
    let whole = args.resume.is_some() || config.batch_api.is_some() || sampled;
    let mut rows = CsvRows::open(&csv_path, &config.columns, whole)?;
    if sampled {
        rows = crate::csv_rows::sampled(rows, &csv_path, args, &mut config, saved.as_ref())?;
    }
    let data_dir = match csv_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let client = crate::transport::client(config.in_flight_cap())?;
    let mut images = ImageLoader::new(&data_dir, args.allow_outside_data_dir)
        .with_context(|| format!("cannot open the data folder {}", data_dir.display()))?;
    if config.inline_images {
        images = images.inline_remote(
            client.clone(),
            Duration::from_millis(config.request_timeout_ms),
        );
    }
    crate::preflight::check(&config, &rows, &config.columns, &images)?;
    // Read before any file of the run is made: a bad baseline costs nothing.
    let baseline = crate::compare::baseline_of(args, &rows.outline())?;
    let mock = match config.provider_label {
        EndpointKind::Mock => {
            let server = tokio::select! {
                server = crate::builtin_mock::start(args, &rows, &config.columns, &images) => server?,
                _ = interrupts.recv() => return Ok(None),
            };
            if let Provider::OpenAi(openai) = &mut config.provider {
                openai.base_url = server.base_url();
            }
            Some(server)
        }
        _ => None,
    };
    let endpoint = endpoint_url(&config)?;
    let (files, lock) = match (resumed, resumed_lock) {
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
    if let Some((_, Some(id))) = &baseline {
        if *id == files.run_id {
            bail!(
                "--baseline {}: that is this run's own file; name an earlier run's",
                args.baseline.as_deref().unwrap_or(Path::new("")).display()
            );
        }
    }
    if config.batch_api.is_none() {
        if args.resume.is_some() {
            refuse_live_over_open_batches(&files)?;
        }
        if cancel {
            bail!(
                "{}: this run went live, not through a provider's batch API: it has no batches to cancel",
                args.resume.as_deref().unwrap_or(Path::new("")).display()
            );
        }
    }
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
    stamp_journal(&files.results, &header)?;
    Ok(Some(Launched {
        clock,
        interrupts,
        csv_path,
        rows,
        config,
        api_key,
        key_var,
        unused_keys,
        data_dir,
        images,
        mock,
        client,
        endpoint,
        files,
        lock,
        baseline: baseline.map(|(b, _)| b),
    }))
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

/// The endpoint's URL, as text (for messages) and parsed once.
fn endpoint_url(config: &RunConfig) -> Result<(String, reqwest::Url)> {
    let text = config.provider.endpoint_url();
    let url = reqwest::Url::parse(&text).with_context(|| {
        let shown = shadow_core::redact::url_for_display(&text);
        format!("the endpoint URL {shown:?} is not a valid URL (check --base-url / --endpoint / --deployment)")
    })?;
    Ok((text, url))
}

/// Before a run against an OpenAI-compatible endpoint: asks its model list (`GET
/// /models`) and warns when the list does not name the model, with the names it
/// gives (a local server answers an unloaded model with a bare 404). Any failure
/// of the check itself (no answer within 3 s, an error status, no list) is silent:
/// many servers have no list, and the run's own requests say what is wrong with
/// the endpoint.
pub async fn check_model(client: &reqwest::Client, provider: &Provider, key: Option<&str>) {
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
            tracing::debug!("model list: {}", crate::transport::describe(e));
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

/// The results journal as a resume finds it, folded; `None` when the run starts
/// afresh. Lines it cannot read are named (their rows run again).
fn fold_results(files: &RunFiles, resuming: bool) -> Result<Option<FoldedJournal>> {
    let file = match File::open(&files.results) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", files.results.display()))
        }
    };
    if !resuming {
        return Ok(None);
    }
    let folded = fold_journal_reader(BufReader::new(file))
        .with_context(|| format!("cannot read {}", files.results.display()))?;
    for (line, reason) in &folded.bad_lines {
        tracing::warn!(
            "{}:{line}: skipped ({reason}); that row runs again",
            files.results.display()
        );
    }
    Ok(Some(folded))
}

/// The results journal open for appending: rewritten to one line per finished
/// row when the resume asks (`rewrite`), else kept up to its last complete line.
fn reopen_results(files: &RunFiles, folded: &FoldedJournal, rewrite: bool) -> Result<Journal> {
    if rewrite {
        // One line per finished row, atomically; the header (where the run
        // sends) stays the first line.
        write_atomic(&files.results, folded.to_journal_text().as_bytes())?;
        return Journal::open(&files.results, None);
    }
    Journal::open(&files.results, Some(folded.complete_len as u64))
}

/// Opens the results journal of a live run; on resume, feeds what it holds to
/// the run first. Returns the journal and the rows taken as finished.
pub fn open_live_journal(
    run: &mut Run,
    files: &RunFiles,
    args: &RunArgs,
) -> Result<(Journal, usize)> {
    let Some(mut folded) = fold_results(files, args.resume.is_some())? else {
        return Ok((Journal::open(&files.results, None)?, 0));
    };
    let rewrite = folded.prepare_resume(args.retry_failed);
    let taken = run
        .restore(folded.results.iter().cloned())
        .with_context(|| format!("cannot resume from {}", files.results.display()))?;
    Ok((reopen_results(files, &folded, rewrite)?, taken))
}

/// Opens both journals of a batch-API run; on resume, feeds what they hold to
/// the run. Returns the journals, the rows taken as finished and the provider
/// batches still open.
pub fn open_batch_journals(
    batch: &mut BatchRun,
    files: &RunFiles,
    args: &RunArgs,
    now: Millis,
) -> Result<(Journal, Journal, usize, usize)> {
    let resuming = args.resume.is_some();
    let mut results = fold_results(files, resuming)?;
    let batches = match File::open(&files.provider) {
        Ok(f) if resuming => fold_batch_journal(BufReader::new(f))
            .with_context(|| format!("cannot read {}", files.provider.display()))?,
        Ok(_) => Default::default(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", files.provider.display()))
        }
    };
    for (line, reason) in &batches.bad_lines {
        tracing::warn!("{}:{line}: skipped ({reason})", files.provider.display());
    }
    let fresh: Vec<usize> = match &results {
        Some(folded) if args.retry_failed => folded
            .results
            .iter()
            .filter(|r| r.status == ItemStatus::Failed)
            .map(|r| r.row)
            .collect(),
        _ => Vec::new(),
    };
    let rewrite = results
        .as_mut()
        .is_some_and(|folded| folded.prepare_resume(args.retry_failed));
    let restored = results
        .iter()
        .flat_map(|folded| folded.results.iter().cloned());
    let taken = batch
        .restore(now, restored, &batches, &fresh)
        .map_err(|e| {
            let from = match e {
                UsageError::ProviderJournal { .. } => &files.provider,
                _ => &files.results,
            };
            anyhow::Error::new(e).context(format!("cannot resume from {}", from.display()))
        })?;
    let journal = match &results {
        Some(folded) => reopen_results(files, folded, rewrite)?,
        None => Journal::open(&files.results, None)?,
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
