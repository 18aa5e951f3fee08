//! `shadow-batch estimate CSV [run flags]` (or a run with `--dry-run`): what the
//! run would send, cost and take, with nothing sent. The run is planned as it
//! would start (flags, environment, the CSV, the preflight refusals); every
//! row's image is checked as its load would check it, a seeded sample of them
//! has its size read from the file's header; the core works out the rest.
//! With `--sample`, only the sample's rows are checked and counted, as only
//! they would be sent. With `--ask-endpoint-limits` (and only then) one request
//! reads the limits the endpoint states ([`crate::endpoint_limits`]).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::ArgMatches;
use shadow_core::estimate::{describe, Estimate, Survey};
use shadow_core::report::escape_for_terminal;
use shadow_core::EndpointKind;

use shadow_core::provider::Provider;

use crate::cli::RunArgs;
use crate::csv_rows::CsvRows;
use crate::endpoint_limits::Asked;
use crate::images::ImageLoader;
use crate::plan::{plan, Plan};

/// Prints the estimate of the run `args` describe; exit code 0.
pub fn estimate(
    args: &RunArgs,
    matches: &ArgMatches,
    runtime: &tokio::runtime::Runtime,
) -> Result<u8> {
    if args.resume.is_some() {
        bail!("an estimate is of a run not yet started: give the CSV and the run's flags, not --resume");
    }
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    // Asked to read the endpoint's limits, the key is the run's own.
    let env = if args.ask_endpoint_limits {
        crate::plan::Env::from_process()
    } else {
        env_without_keys()
    };
    let Plan {
        csv: csv_path,
        mut config,
        api_key,
        key_var,
        ..
    } = plan(args, &given, None, &env)?;
    // First, so that a wrong key or URL is told before the CSV is walked.
    let asked = if args.ask_endpoint_limits {
        Some(runtime.block_on(ask_limits(args, &config, api_key.as_deref(), key_var))?)
    } else {
        None
    };
    let mut rows = CsvRows::open(&csv_path, &config.columns, args.sample.is_some())?;
    if args.sample.is_some() {
        rows = crate::csv_rows::sampled(rows, &csv_path, args, &mut config, None)?;
    }
    let data_dir = match csv_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let images = ImageLoader::new(&data_dir, args.allow_outside_data_dir)
        .with_context(|| format!("cannot open the data folder {}", data_dir.display()))?;
    crate::preflight::check(&config, &rows, &config.columns, &images)?;
    let outline = rows.outline();
    let mut survey = Survey::new(&config, &outline);
    for item in rows.each_row(&config.columns)? {
        let check = item
            .defect
            .is_none()
            .then(|| images.check(&item, survey.measures(item.row)));
        survey.record(&item, check);
    }
    let not_asked = match asked {
        Some(Asked::Limits(limits)) => {
            survey = survey.with_endpoint_limits(limits);
            None
        }
        Some(Asked::NotAsked(why)) => Some(why),
        None => None,
    };
    let estimate = survey.finish();
    print!(
        "{}",
        to_console(&estimate, &csv_path, &config, args.ask_endpoint_limits)
    );
    if let Some(why) = not_asked {
        println!("   Endpoint limits: not asked: {why}; --rpm / --tpm give the time");
    }
    Ok(0)
}

/// The limits the endpoint states, from one request; the built-in mock is
/// started for it (with the run's `--mock-*` flags) and stopped after.
async fn ask_limits(
    args: &RunArgs,
    config: &shadow_core::RunConfig,
    key: Option<&str>,
    key_var: Option<&'static str>,
) -> Result<Asked> {
    let timeout = std::time::Duration::from_millis(config.request_timeout_ms);
    if config.provider_label != EndpointKind::Mock {
        return crate::endpoint_limits::ask(&config.provider, key, key_var, timeout).await;
    }
    let mock = shadow_mock::MockServer::spawn(args.builtin_mock(), None)
        .await
        .context("cannot start the built-in mock endpoint on 127.0.0.1")?;
    let mut provider = config.provider.clone();
    if let Provider::OpenAi(openai) = &mut provider {
        openai.base_url = format!("http://{}/v1", mock.addr);
    }
    let asked = crate::endpoint_limits::ask(&provider, None, None, timeout).await;
    mock.shutdown().await;
    asked
}

/// The environment with a stand-in for every key: an estimate sends nothing,
/// so it needs none (and reads none it could show).
fn env_without_keys() -> crate::plan::Env {
    const NONE_NEEDED: &str = "an-estimate-sends-nothing";
    crate::plan::Env {
        openai_key: Some(NONE_NEEDED.into()),
        anthropic_key: Some(NONE_NEEDED.into()),
        gemini_key: Some(NONE_NEEDED.into()),
        azure_key: Some(NONE_NEEDED.into()),
        ..crate::plan::Env::from_process()
    }
}

/// The estimate as the console shows it: the core's lines, then the flags that
/// would make it say more.
fn to_console(
    e: &Estimate,
    csv: &std::path::Path,
    config: &shadow_core::RunConfig,
    asked: bool,
) -> String {
    let model = config.provider.model().unwrap_or("its own service");
    let endpoint = match config.provider_label {
        EndpointKind::Mock => "the built-in mock".to_string(),
        EndpointKind::Openai => "OpenAI".into(),
        EndpointKind::Anthropic => "Anthropic".into(),
        EndpointKind::Gemini => "Gemini".into(),
        EndpointKind::Azure => "Azure OpenAI".into(),
        _ => "the endpoint".into(),
    };
    let sent = if asked && e.endpoint_limits.is_some() {
        "one request sent, for the endpoint's limits"
    } else {
        "nothing sent"
    };
    let mut out = format!(
        "Estimate for {} with {} {} ({sent})\n",
        escape_for_terminal(&csv.display().to_string()),
        endpoint,
        escape_for_terminal(model)
    );
    for (name, value) in describe(e) {
        let name = if name.is_empty() {
            String::new()
        } else {
            format!("{name}:")
        };
        out += &format!("   {name:<16} {}\n", escape_for_terminal(&value));
    }
    let mut hints = Vec::new();
    if e.cost.is_none() {
        hints.push("--price-input and --price-output give the cost");
    }
    if e.time.is_none() && !e.via_batch_api {
        hints.push(
            "--rpm or --tpm (your tier's limits), or --ask-endpoint-limits (one request), give the time",
        );
    }
    if e.images.measured == 0 && e.images.urls > 0 {
        hints.push("URL images are not fetched: their tokens are a typical photo's");
    }
    for hint in hints {
        out += &format!("   {hint}\n");
    }
    out
}
