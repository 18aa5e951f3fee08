//! What to run, decided from the flags, the saved settings of a run being resumed,
//! and the environment — before any file is opened or socket bound. Pure, so every
//! merge rule is unit-tested here rather than through a process.

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::Deserialize;
use shadow_core::config::{BatchApiConfig, BatchSetting};
use shadow_core::input::ColumnNames;
use shadow_core::journal::JournalHeader;
use shadow_core::provider::{
    is_azure_host, AnthropicConfig, AzureConfig, GeminiConfig, HttpJsonConfig, ImageDetail,
    OpenAiConfig, Provider,
};
use shadow_core::{EndpointKind, RunConfig, Setting};

use crate::cli::{default_openai, ProviderKind, RunArgs, Via};

/// What an earlier run's progress or summary file, or its results journal's
/// header, says about it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedRun {
    pub csv_path: String,
    pub config: RunConfig,
}

impl SavedRun {
    /// The run a results journal's first line names.
    pub fn from_header(header: JournalHeader) -> SavedRun {
        SavedRun {
            csv_path: header.run.csv_path.clone(),
            config: header.run,
        }
    }
}

/// A run, decided. The endpoint of the built-in mock is not known yet (it is bound
/// later): `config.provider` then holds the mock's settings with no base URL.
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub csv: PathBuf,
    pub config: RunConfig,
    /// The key to send, for endpoints that get one.
    pub api_key: Option<String>,
    /// The environment variable the key comes from (for messages; never its value).
    pub key_var: Option<&'static str>,
    /// Keys the environment holds that this run does not send, because no endpoint
    /// was named (the built-in mock runs instead): `(variable, --provider value)`,
    /// for the banner.
    pub unused_keys: Vec<(&'static str, &'static str)>,
}

/// What the environment says: the keys of each provider and `OPENAI_BASE_URL`.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub openai_key: Option<String>,
    pub anthropic_key: Option<String>,
    pub gemini_key: Option<String>,
    pub azure_key: Option<String>,
    pub openai_base_url: Option<String>,
}

impl Env {
    /// The process's environment.
    pub fn from_process() -> Env {
        let var = |name: &str| std::env::var(name).ok();
        Env {
            openai_key: var("OPENAI_API_KEY"),
            anthropic_key: var("ANTHROPIC_API_KEY"),
            gemini_key: var("GEMINI_API_KEY"),
            azure_key: var("AZURE_OPENAI_API_KEY"),
            openai_base_url: var("OPENAI_BASE_URL"),
        }
    }

    /// The key `kind` sends (blank = none), with the variable it comes from.
    fn key(&self, kind: EndpointKind) -> (Option<String>, Option<&'static str>) {
        let var = key_var(kind);
        let value = match kind {
            EndpointKind::Openai | EndpointKind::Http => &self.openai_key,
            EndpointKind::Anthropic => &self.anthropic_key,
            EndpointKind::Gemini => &self.gemini_key,
            EndpointKind::Azure => &self.azure_key,
            EndpointKind::Mock => &None,
        };
        (value.clone().filter(|k| !k.trim().is_empty()), var)
    }
}

/// The environment variable holding the key of `kind`; `None` for the mock.
pub fn key_var(kind: EndpointKind) -> Option<&'static str> {
    match kind {
        EndpointKind::Openai | EndpointKind::Http => Some("OPENAI_API_KEY"),
        EndpointKind::Anthropic => Some("ANTHROPIC_API_KEY"),
        EndpointKind::Gemini => Some("GEMINI_API_KEY"),
        EndpointKind::Azure => Some("AZURE_OPENAI_API_KEY"),
        EndpointKind::Mock => None,
    }
}

/// Decides the run. `given(id)` says whether flag `id` was given on the command
/// line (not defaulted): on resume, given flags replace the saved settings, which
/// otherwise stay. `env` is the environment's keys and `OPENAI_BASE_URL`.
pub fn plan(
    args: &RunArgs,
    given: &dyn Fn(&str) -> bool,
    saved: Option<&SavedRun>,
    env: &Env,
) -> Result<Plan> {
    let csv = match (&args.csv, saved) {
        (Some(p), _) => p.clone(),
        (None, Some(s)) => PathBuf::from(&s.csv_path),
        (None, None) => bail!("no CSV given"),
    };
    let fresh = saved.is_none();
    let mut config = saved.map(|s| s.config.clone()).unwrap_or_default();
    let take = |id: &str| fresh || given(id);
    // The flags whose setting has the flag's own name and value.
    macro_rules! take_same_named {
        ($($field:ident),+) => {$(
            if take(stringify!($field)) {
                config.$field = args.$field;
            }
        )+};
    }
    take_same_named!(
        batch_size,
        delay_ms,
        max_retries,
        concurrency,
        max_concurrency,
        tpm,
        rpm,
        seed
    );
    if take("no_adaptive") {
        config.adaptive_concurrency = !args.no_adaptive;
    }
    if let (Some(input), Some(output)) = (args.price_input, args.price_output) {
        config.price = Some(shadow_core::cost::Price {
            input_per_million: input,
            output_per_million: output,
        });
    }
    if take("give_up_after") {
        config.abort_after_failing_ms = args.give_up_after.saturating_mul(1000);
    }
    let timeout_ms = seconds_in_range(
        "--timeout",
        args.timeout,
        Setting::RequestTimeoutMs.bounds(),
    )?;
    if take("timeout") {
        config.request_timeout_ms = timeout_ms;
    }
    // A resumed run keeps inlining images (there is no flag to turn it off: give
    // the run again without --resume for that).
    take_same_named!(inline_images);
    // A resumed run keeps asking for confidences, or not, unless told.
    if take("no_confidence") {
        config.confidence = !args.no_confidence;
    }
    if take("until_interval") {
        config.until_interval = args.until_interval;
    }
    if take("target_agreement") {
        config.target_agreement = args.target_agreement;
    }
    // A resumed run keeps its gate unless requirements are given again.
    if take("require") {
        config.gate = args.require.clone();
    }
    config.csv_path = csv.display().to_string();
    // Columns named now win; otherwise a resumed run reads the CSV as it did first.
    let named = ColumnNames {
        image: args.image_column.clone(),
        label: args.label_column.clone(),
        id: args.id_column.clone(),
    };
    if fresh || !named.is_default() {
        config.columns = named;
    }

    let saved_kind = saved.map(|s| s.config.provider_label);
    let flag_base_url = args.base_url.clone().filter(|u| !u.trim().is_empty());
    let env_base_url = env.openai_base_url.clone().filter(|u| !u.trim().is_empty());
    // Data goes only where the user says: a flag names the endpoint; a key or
    // OPENAI_BASE_URL in the environment (set for every command of a shell) does not.
    let named = args.provider.is_some() || flag_base_url.is_some() || args.endpoint.is_some();
    if let (Some(file), None, false) = (&args.resume, saved, named) {
        bail!(
            "cannot resume from {} alone: it does not say which endpoint the run sent to (it was written by an earlier version, and the run's progress and summary files are not beside it). \
             Name the endpoint again, as when the run started: --provider openai --base-url URL, --provider anthropic, gemini or azure, --provider http --endpoint URL, or --provider mock",
            file.display()
        );
    }
    let kind = match (args.provider, saved_kind) {
        (Some(kind), _) => endpoint_kind(kind),
        (None, Some(kind)) => kind,
        (None, None) => match (&flag_base_url, &args.endpoint) {
            (Some(url), _) if is_azure_host(url) => EndpointKind::Azure,
            (Some(_), _) => EndpointKind::Openai,
            (None, Some(_)) => EndpointKind::Http,
            (None, None) => EndpointKind::Mock,
        },
    };
    let unused_keys = if kind == EndpointKind::Mock && !named {
        [
            EndpointKind::Openai,
            EndpointKind::Anthropic,
            EndpointKind::Gemini,
            EndpointKind::Azure,
        ]
        .into_iter()
        .filter_map(|k| match env.key(k) {
            (Some(_), Some(var)) => Some((var, k.as_str())),
            _ => None,
        })
        .collect()
    } else {
        Vec::new()
    };
    let (api_key, key_var) = env.key(kind);
    if let (Some(var), None) = (key_var, &api_key) {
        if kind != EndpointKind::Http {
            bail!(
                "--provider {} needs an API key: set {var} (any value for a server that checks none; or use --provider mock for simulated predictions)",
                kind.as_str()
            );
        }
    }
    // The saved endpoint settings of the same kind are the base that flags change.
    let same = saved_kind == Some(kind);
    let saved_provider = same.then(|| config.provider.clone());
    let detail = |saved: Option<ImageDetail>| match (saved, take("detail")) {
        (Some(saved), false) => saved,
        _ => args.detail.into(),
    };
    let prompt = |saved: Option<String>| args.prompt.clone().or(saved);
    let model = |what: &str| -> Result<Option<String>> {
        match &args.model {
            Some(m) if m.trim().is_empty() => bail!("--model is empty: give the {what}"),
            Some(m) => Ok(Some(m.trim().to_owned())),
            None => Ok(None),
        }
    };
    // Anthropic and Gemini take the same settings (of two types alike): each a
    // flag, else the saved setting, else the default.
    macro_rules! hosted {
        ($variant:ident, $config:ident) => {{
            let base = match saved_provider {
                Some(Provider::$variant(c)) => c,
                _ => $config::default(),
            };
            Provider::$variant($config {
                base_url: flag_base_url.clone().unwrap_or(base.base_url),
                model: model("model name")?.unwrap_or(base.model),
                prompt: prompt(base.prompt),
            })
        }};
    }
    config.provider = match kind {
        EndpointKind::Openai => {
            let saved = match saved_provider {
                Some(Provider::OpenAi(c)) => Some(c),
                _ => None,
            };
            let default = default_openai();
            let base_url = flag_base_url
                .clone()
                .or_else(|| saved.as_ref().map(|c| c.base_url.clone()))
                .or(env_base_url.clone())
                .unwrap_or(default.base_url);
            Provider::OpenAi(OpenAiConfig {
                base_url,
                model: model("model name")?
                    .or_else(|| saved.as_ref().map(|c| c.model.clone()))
                    .unwrap_or(default.model),
                detail: detail(saved.as_ref().map(|c| c.detail)),
                prompt: prompt(saved.and_then(|c| c.prompt)),
            })
        }
        EndpointKind::Anthropic => hosted!(Anthropic, AnthropicConfig),
        EndpointKind::Gemini => hosted!(Gemini, GeminiConfig),
        EndpointKind::Azure => {
            let saved = match saved_provider {
                Some(Provider::Azure(c)) => Some(c),
                _ => None,
            };
            let Some(base_url) = flag_base_url
                .clone()
                .or_else(|| saved.as_ref().map(|c| c.base_url.clone()))
                .or(env_base_url.clone())
            else {
                bail!("--provider azure needs --base-url https://RESOURCE.openai.azure.com (the resource's endpoint)");
            };
            let deployment = match (&args.deployment, model("deployment name")?) {
                (Some(d), _) if d.trim().is_empty() => {
                    bail!("--deployment is empty: give the deployment's name")
                }
                (Some(d), _) => d.trim().to_owned(),
                (None, Some(m)) => m,
                (None, None) => match &saved {
                    Some(c) => c.deployment.clone(),
                    None => bail!(
                        "--provider azure needs --deployment NAME: the name of the deployment in your Azure resource (not always the model's name)"
                    ),
                },
            };
            let api_version = match &args.api_version {
                Some(v) => Some(check_api_version(v)?),
                None => saved.as_ref().and_then(|c| c.api_version.clone()),
            };
            Provider::Azure(AzureConfig {
                base_url,
                deployment,
                api_version,
                detail: detail(saved.as_ref().map(|c| c.detail)),
                prompt: prompt(saved.and_then(|c| c.prompt)),
            })
        }
        EndpointKind::Http => match (&config.provider, &args.endpoint) {
            (_, Some(url)) => Provider::HttpJson(HttpJsonConfig {
                url: url.clone(),
                prediction_field: args.prediction_field.clone(),
            }),
            (Provider::HttpJson(_), None) if same => config.provider.clone(),
            _ => {
                bail!("--provider http needs --endpoint URL (the address each image is POSTed to)")
            }
        },
        // The mock's address is known once it is bound.
        EndpointKind::Mock => Provider::OpenAi(OpenAiConfig {
            base_url: String::new(),
            model: shadow_core::provider::MOCK_MODEL.into(),
            detail: detail(None),
            prompt: args.prompt.clone(),
        }),
    };
    config.provider_label = kind;
    // How the requests travel: given now, else as the resumed run did.
    let via = match (args.via, fresh) {
        (Some(via), _) => via,
        (None, false) if config.batch_api.is_some() => Via::BatchApi,
        (None, _) => Via::Live,
    };
    config.batch_api = match via {
        Via::Live => None,
        Via::BatchApi => {
            if config.provider.batch_api().is_none() {
                bail!(
                    "--via batch-api needs a provider with a batch API shadow-batch speaks: --provider openai (OpenAI, or an OpenAI-compatible server with /v1/files and /v1/batches), azure (global batch), anthropic (Message Batches), gemini (Batch Mode) or mock; the {} provider has none here",
                    "http"
                );
            }
            let mut batch = config
                .batch_api
                .clone()
                .unwrap_or_else(|| BatchApiConfig::for_provider(&config.provider));
            if take("poll_interval") {
                // The core's bounds of a poll wait (`BatchApiConfig::validate_for`).
                batch.poll_max_ms =
                    seconds_in_range("--poll-interval", args.poll_interval, (1, 3_600_000))?;
                // The first read waits no longer than a poll may, and no longer than
                // the core's own first wait.
                batch.poll_min_ms = batch.poll_max_ms.min(BatchApiConfig::default().poll_min_ms);
            }
            if let Some(lines) = args.shard_lines.filter(|_| take("shard_lines")) {
                batch.max_lines = lines;
            }
            if take("keep_provider_files") {
                batch.keep_files = args.keep_provider_files;
            }
            // Undocumented, for tests: Gemini's inline limit (0: always a file).
            if let Ok(bytes) = std::env::var("SHADOW_BATCH_GEMINI_INLINE_MAX_BYTES") {
                batch.inline_max_bytes = bytes.trim().parse().map_err(|_| {
                    anyhow::anyhow!(
                        "SHADOW_BATCH_GEMINI_INLINE_MAX_BYTES is {bytes:?}; it must be a number of bytes"
                    )
                })?;
            }
            if let Err(e) = batch.validate_for(&config.provider) {
                bail!(
                    "{}",
                    match e {
                        shadow_core::ConfigError::BatchApi {
                            setting: BatchSetting::MaxLines,
                            value,
                            min,
                            max,
                        } => format!("--shard-lines {value} is out of range: give {min} to {max}"),
                        other => format!("the saved run's setting {other}"),
                    }
                );
            }
            Some(batch)
        }
    };
    if config
        .provider
        .endpoint_url()
        .contains(shadow_core::redact::REDACTED)
    {
        bail!(
            "the saved run's endpoint URL carried credentials, which are never saved: give {} again with them",
            if kind == EndpointKind::Http { "--endpoint URL" } else { "--base-url URL" }
        );
    }
    if let Some(saved) = saved {
        refuse_another_endpoint(&saved.config, &config, args)?;
    }
    // Before anything is sized from a number (the engine's tables, the HTTP pool).
    config
        .validate()
        .map_err(|e| anyhow::anyhow!(crate::next_step::for_setting(&e)))?;
    if let (Some(key), Some(var)) = (api_key.as_deref(), key_var) {
        check_key(var, key)?;
    }
    Ok(Plan {
        csv,
        config,
        key_var: key_var.filter(|_| api_key.is_some()),
        api_key,
        unused_keys,
    })
}

/// The server a provider's settings send to, as reports save it: its base URL (or
/// the http provider's URL), without credentials.
fn server_of(provider: &Provider) -> String {
    let url = match provider {
        Provider::OpenAi(c) => &c.base_url,
        Provider::HttpJson(c) => &c.url,
        Provider::Anthropic(c) => &c.base_url,
        Provider::Gemini(c) => &c.base_url,
        Provider::Azure(c) => &c.base_url,
        other => return other.endpoint_url(),
    };
    shadow_core::redact::url_for_display(url.trim_end_matches('/')).into_owned()
}

/// A resumed run sends where it sent before unless the user names another endpoint
/// now: `--base-url` or `--endpoint`, or `--provider` of another kind than the run's.
/// (The built-in mock is bound afresh by each session: any mock is the same.)
fn refuse_another_endpoint(saved: &RunConfig, now: &RunConfig, args: &RunArgs) -> Result<()> {
    let kind = now.provider_label;
    let same = kind == saved.provider_label
        && (kind == EndpointKind::Mock || server_of(&saved.provider) == server_of(&now.provider));
    let named = args.base_url.is_some()
        || args.endpoint.is_some()
        || args
            .provider
            .is_some_and(|p| endpoint_kind(p) != saved.provider_label);
    if same || named {
        return Ok(());
    }
    bail!(
        "this run sent to {} ({}); resumed as it is, it would send to {} ({}). A resume never sends elsewhere unless told: \
         give the endpoint again ({}) to send there, or resume without the flags that changed it",
        server_of(&saved.provider),
        saved.provider_label.as_str(),
        server_of(&now.provider),
        kind.as_str(),
        if kind == EndpointKind::Http {
            "--endpoint URL"
        } else {
            "--base-url URL"
        }
    )
}

/// A flag in seconds as the milliseconds the core keeps: refused outside
/// `min_ms..=max_ms` as given, never rounded into the range (a timeout of 1e-9 s
/// is not one of 1 ms).
fn seconds_in_range(flag: &str, secs: f64, (min_ms, max_ms): (u64, u64)) -> Result<u64> {
    let ms = secs * 1000.0;
    // NaN fails both comparisons.
    if !(ms >= min_ms as f64 && ms <= max_ms as f64) {
        bail!(
            "{flag} {secs} is out of range: give {} to {} seconds",
            min_ms as f64 / 1000.0,
            max_ms as f64 / 1000.0
        );
    }
    Ok((ms.ceil() as u64).clamp(min_ms, max_ms))
}

/// An Azure `api-version` as given, trimmed: a date with an optional suffix
/// (`2024-10-21`, `2025-04-01-preview`), or `preview` / `latest` of the v1 API.
fn check_api_version(version: &str) -> Result<String> {
    let v = version.trim();
    let ok = !v.is_empty()
        && v.len() <= 40
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !ok {
        bail!(
            "--api-version {version:?} is not an API version: give one such as 2024-10-21 or 2025-04-01-preview (or leave it out for the /openai/v1/ path)"
        );
    }
    Ok(v.to_owned())
}

/// Refuses a key that cannot be what the user meant: one with a control character
/// (a `\r` left by a Windows file makes every request fail), a space or a non-ASCII
/// character anywhere (a key is one token of printable ASCII). Refused rather than
/// trimmed: a secret is sent as it is, and the variable stays wrong for every other
/// tool that reads it until it is fixed at its source. The message names `var` and
/// what is wrong, never the key or any part of it.
fn check_key(var: &str, key: &str) -> Result<()> {
    let Some((at, c)) = key
        .char_indices()
        .find(|&(_, c)| c.is_control() || c.is_whitespace() || !c.is_ascii())
    else {
        return Ok(());
    };
    let bad = |c: char| c.is_control() || c.is_whitespace() || !c.is_ascii();
    let place = if at == 0 {
        "starts with"
    } else if key[at..].chars().all(bad) {
        "ends with"
    } else {
        "contains"
    };
    let (what, why) = match c {
        '\r' => ("a carriage return (\\r)", " (pasted from a Windows file?)"),
        '\n' => (
            "a line break (\\n)",
            " (read from a file with its line end?)",
        ),
        '\t' => ("a tab", ""),
        ' ' => ("a space", ""),
        c if c.is_control() => ("a control character", ""),
        _ => (
            "a non-ASCII character",
            " (a typographic quote or a non-breaking space pasted with it?)",
        ),
    };
    bail!(
        "{var} {place} {what}, which no API key holds{why}. Set it again without it, \
         e.g. export {var}=\"$(tr -d ' \\r\\n' < key.txt)\" (the key is not shown here)"
    )
}

fn endpoint_kind(kind: ProviderKind) -> EndpointKind {
    match kind {
        ProviderKind::Openai => EndpointKind::Openai,
        ProviderKind::Anthropic => EndpointKind::Anthropic,
        ProviderKind::Gemini => EndpointKind::Gemini,
        ProviderKind::Azure => EndpointKind::Azure,
        ProviderKind::Http => EndpointKind::Http,
        ProviderKind::Mock => EndpointKind::Mock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::parser::ValueSource;
    use clap::FromArgMatches;

    use crate::cli::Cli;

    /// The plan for a command line, as `main` makes it.
    fn plan_for(argv: &[&str], saved: Option<&SavedRun>, key: Option<&str>) -> Result<Plan> {
        let env = Env {
            openai_key: key.map(str::to_string),
            ..Env::default()
        };
        plan_env(argv, saved, &env)
    }

    fn plan_env(argv: &[&str], saved: Option<&SavedRun>, env: &Env) -> Result<Plan> {
        let matches = crate::cli::command()
            .try_get_matches_from(std::iter::once("shadow-batch").chain(argv.iter().copied()))
            .unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        plan(&cli.run, &given, saved, env)
    }

    /// The error [`plan_env`] refuses a command line with.
    fn refusal(argv: &[&str], saved: Option<&SavedRun>, env: &Env) -> String {
        plan_env(argv, saved, env).unwrap_err().to_string()
    }

    /// The Azure resource and deployment a command line names.
    const AZURE_RESOURCE: [&str; 4] = [
        "--base-url",
        "https://r.openai.azure.com",
        "--deployment",
        "d",
    ];

    /// A run at an Azure deployment, with an API version.
    const AZURE_RUN: &str = "l.csv --provider azure --base-url https://res.openai.azure.com --deployment vision --api-version 2024-10-21";

    /// [`plan_env`] of a command line's words (none holds a space).
    fn plan_words(line: &str, saved: Option<&SavedRun>, env: &Env) -> Result<Plan> {
        plan_env(&line.split_whitespace().collect::<Vec<_>>(), saved, env)
    }

    fn keys() -> Env {
        Env {
            openai_key: Some("sk-openai".into()),
            anthropic_key: Some("sk-ant-test".into()),
            gemini_key: Some("AIza-test".into()),
            azure_key: Some("azure-test".into()),
            openai_base_url: None,
        }
    }

    fn saved_run_of(plan: &Plan) -> SavedRun {
        SavedRun {
            csv_path: "l.csv".into(),
            config: RunConfig {
                provider: plan.config.provider.for_display(),
                ..plan.config.clone()
            },
        }
    }

    #[test]
    fn each_provider_takes_its_own_key_and_defaults() {
        let env = keys();
        let p = plan_words("l.csv --provider anthropic", None, &env).unwrap();
        assert_eq!(
            p.config.provider,
            Provider::Anthropic(AnthropicConfig::default())
        );
        assert_eq!(p.config.provider_label, EndpointKind::Anthropic);
        assert_eq!(
            (p.api_key.as_deref(), p.key_var),
            (Some("sk-ant-test"), Some("ANTHROPIC_API_KEY"))
        );
        let p = plan_env(
            &[
                "l.csv",
                "--provider",
                "gemini",
                "--model",
                "gemini-2.5-pro",
                "--prompt",
                "Which digit?",
            ],
            None,
            &env,
        )
        .unwrap();
        assert_eq!(
            p.config.provider,
            Provider::Gemini(GeminiConfig {
                model: "gemini-2.5-pro".into(),
                prompt: Some("Which digit?".into()),
                ..GeminiConfig::default()
            })
        );
        assert_eq!(p.key_var, Some("GEMINI_API_KEY"));
        assert_eq!(p.api_key.as_deref(), Some("AIza-test"));
        // OPENAI_BASE_URL is OpenAI's (and Azure's), never Anthropic's or Gemini's.
        let with_base = Env {
            openai_base_url: Some("http://proxy.test/v1".into()),
            ..keys()
        };
        let p = plan_words("l.csv --provider anthropic", None, &with_base).unwrap();
        assert_eq!(
            p.config.provider.endpoint_url(),
            "https://api.anthropic.com/v1/messages"
        );
        let p = plan_words("l.csv --provider openai", None, &with_base).unwrap();
        assert_eq!(
            p.config.provider.endpoint_url(),
            "http://proxy.test/v1/chat/completions"
        );
        // Each provider's key is required, by its own name; another's does not do.
        for (provider, var) in [
            ("anthropic", "ANTHROPIC_API_KEY"),
            ("gemini", "GEMINI_API_KEY"),
            ("azure", "AZURE_OPENAI_API_KEY"),
        ] {
            let only_openai = Env {
                openai_key: Some("sk-openai".into()),
                ..Env::default()
            };
            let argv = [&["l.csv", "--provider", provider][..], &AZURE_RESOURCE].concat();
            let err = refusal(&argv, None, &only_openai);
            assert!(
                err.contains(&format!(
                    "--provider {provider} needs an API key: set {var}"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn azure_needs_a_resource_and_a_deployment_and_is_detected_by_host() {
        let env = keys();
        let p = plan_words(AZURE_RUN, None, &env).unwrap();
        assert_eq!(
            p.config.provider.endpoint_url(),
            "https://res.openai.azure.com/openai/deployments/vision/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            (p.api_key.as_deref(), p.key_var),
            (Some("azure-test"), Some("AZURE_OPENAI_API_KEY"))
        );
        // --model stands for the deployment when --deployment is not given; no
        // --api-version is the v1 path.
        let p = plan_words(
            "l.csv --provider azure --base-url https://res.openai.azure.com --model gpt-4o",
            None,
            &env,
        )
        .unwrap();
        assert_eq!(p.config.provider.model(), Some("gpt-4o"));
        assert_eq!(
            p.config.provider.endpoint_url(),
            "https://res.openai.azure.com/openai/v1/chat/completions"
        );
        // Detected from the host, when no provider is named (flag or OPENAI_BASE_URL).
        let p = plan_words(
            "l.csv --base-url https://res.openai.azure.com/ --deployment d",
            None,
            &env,
        )
        .unwrap();
        assert_eq!(p.config.provider_label, EndpointKind::Azure);
        // OPENAI_BASE_URL names no endpoint by itself (the environment is every
        // command's); once Azure is named, it is the resource.
        let via_env = Env {
            openai_base_url: Some("https://res.openai.azure.com".into()),
            ..keys()
        };
        let p = plan_words("l.csv --deployment d", None, &via_env).unwrap();
        assert_eq!(p.config.provider_label, EndpointKind::Mock);
        let argv = ["l.csv", "--provider", "azure", "--deployment", "d"];
        let p = plan_env(&argv, None, &via_env).unwrap();
        assert_eq!(
            p.config.provider.endpoint_url(),
            "https://res.openai.azure.com/openai/v1/chat/completions"
        );
        // What is missing or wrong is named.
        let azure = |more: &[&'static str]| {
            let base_url = ["--base-url", "https://r.openai.azure.com"];
            [&["l.csv", "--provider", "azure"][..], &base_url, more].concat()
        };
        for (argv, words) in [
            (
                vec!["l.csv", "--provider", "azure", "--deployment", "d"],
                "--provider azure needs --base-url",
            ),
            (azure(&[]), "--provider azure needs --deployment NAME"),
            (azure(&["--deployment", " "]), "--deployment is empty"),
            (
                azure(&["--deployment", "d", "--api-version", "2024 10"]),
                "--api-version \"2024 10\" is not an API version",
            ),
            (
                vec!["l.csv", "--provider", "gemini", "--model", ""],
                "--model is empty",
            ),
        ] {
            let err = refusal(&argv, None, &env);
            assert!(err.contains(words), "{argv:?}: {err}");
        }
    }

    #[test]
    fn a_resumed_run_keeps_its_provider_and_flags_change_single_fields() {
        let env = keys();
        let first = plan_words(&format!("{AZURE_RUN} --detail high"), None, &env).unwrap();
        let saved = saved_run_of(&first);
        let resumed = plan_words("--resume x.json", Some(&saved), &env).unwrap();
        assert_eq!(resumed.config.provider, first.config.provider);
        assert_eq!(resumed.config.provider_label, EndpointKind::Azure);
        let changed = plan_words(
            "--resume x.json --api-version 2025-04-01-preview",
            Some(&saved),
            &env,
        )
        .unwrap();
        let Provider::Azure(azure) = &changed.config.provider else {
            panic!()
        };
        assert_eq!(
            (
                azure.deployment.as_str(),
                azure.api_version.as_deref(),
                azure.detail
            ),
            ("vision", Some("2025-04-01-preview"), ImageDetail::High)
        );
        let first = plan_words(
            "l.csv --provider anthropic --model claude-opus-4-1",
            None,
            &env,
        )
        .unwrap();
        let resumed = plan_words("--resume x.json", Some(&saved_run_of(&first)), &env).unwrap();
        assert_eq!(resumed.config.provider.model(), Some("claude-opus-4-1"));
        assert_eq!(resumed.key_var, Some("ANTHROPIC_API_KEY"));
    }

    #[test]
    fn no_flags_give_the_core_defaults() {
        let plan = plan_for(&["data/labels.csv"], None, None).unwrap();
        let defaults = RunConfig::default();
        let c = &plan.config;
        assert_eq!(
            (
                c.batch_size,
                c.delay_ms,
                c.max_retries,
                c.concurrency,
                c.max_concurrency,
                c.adaptive_concurrency,
                c.rpm,
                c.tpm,
                c.seed,
                c.request_timeout_ms,
                c.abort_after_failing_ms
            ),
            (
                defaults.batch_size,
                defaults.delay_ms,
                defaults.max_retries,
                defaults.concurrency,
                defaults.max_concurrency,
                defaults.adaptive_concurrency,
                defaults.rpm,
                defaults.tpm,
                defaults.seed,
                defaults.request_timeout_ms,
                defaults.abort_after_failing_ms
            )
        );
        assert_eq!(c.provider_label, EndpointKind::Mock);
        assert_eq!(plan.api_key, None);
        let argv = ["data/labels.csv", "--provider", "openai"];
        let with_key = plan_for(&argv, None, Some("sk-test")).unwrap();
        assert_eq!(with_key.config.provider, defaults.provider);
        assert_eq!(with_key.config.provider_label, EndpointKind::Openai);
        assert_eq!(with_key.api_key.as_deref(), Some("sk-test"));
    }

    /// Issue 19, item 9: a key in the environment spends nothing by itself. Only a
    /// flag names a paid endpoint; without one the built-in mock runs, and the
    /// banner is told which keys were seen and which flag would use each.
    #[test]
    fn a_key_in_the_environment_alone_runs_the_mock_and_only_a_flag_names_an_endpoint() {
        let env = Env {
            openai_base_url: Some("https://gateway.example/v1".into()),
            ..keys()
        };
        for argv in [
            &["l.csv"][..],
            &["l.csv", "--model", "gpt-4o"],
            &["l.csv", "--via", "batch-api"],
        ] {
            let p = plan_env(argv, None, &env).unwrap();
            assert_eq!(p.config.provider_label, EndpointKind::Mock, "{argv:?}");
            assert_eq!((p.api_key, p.key_var), (None, None), "{argv:?}");
            assert_eq!(
                p.unused_keys,
                [
                    ("OPENAI_API_KEY", "openai"),
                    ("ANTHROPIC_API_KEY", "anthropic"),
                    ("GEMINI_API_KEY", "gemini"),
                    ("AZURE_OPENAI_API_KEY", "azure"),
                ],
                "{argv:?}"
            );
        }
        let p = plan_words("l.csv", None, &Env::default()).unwrap();
        assert!(p.unused_keys.is_empty());
        // Named: the provider, a base URL (an Azure resource's is Azure), an endpoint.
        for (argv, kind, url) in [
            (
                &["l.csv", "--provider", "openai"][..],
                EndpointKind::Openai,
                "https://gateway.example/v1/chat/completions",
            ),
            (
                &["l.csv", "--base-url", "http://127.0.0.1:11434/v1"],
                EndpointKind::Openai,
                "http://127.0.0.1:11434/v1/chat/completions",
            ),
            (
                &[
                    "l.csv",
                    "--base-url",
                    "https://res.openai.azure.com",
                    "--deployment",
                    "d",
                ],
                EndpointKind::Azure,
                "https://res.openai.azure.com/openai/v1/chat/completions",
            ),
            (
                &["l.csv", "--endpoint", "http://127.0.0.1:9000/predict"],
                EndpointKind::Http,
                "http://127.0.0.1:9000/predict",
            ),
        ] {
            let p = plan_env(argv, None, &env).unwrap();
            assert_eq!(
                (
                    p.config.provider_label,
                    p.config.provider.endpoint_url().as_str()
                ),
                (kind, url),
                "{argv:?}"
            );
            assert!(p.api_key.is_some() && p.unused_keys.is_empty(), "{argv:?}");
        }
    }

    /// Issue 19, item 1: killed before its first progress file, a run resumed from
    /// its results journal alone sends where it sent (the journal's header), not
    /// to a default; a journal without one is refused unless the endpoint is named;
    /// a resume that would send elsewhere without being told is refused.
    #[test]
    fn a_resume_sends_where_the_run_sent_unless_another_endpoint_is_named() {
        let env = Env {
            openai_base_url: Some("https://gateway.example/v1".into()),
            ..keys()
        };
        let local = "http://127.0.0.1:4321/v1";
        let first = plan_env(
            &["l.csv", "--provider", "openai", "--base-url", local],
            None,
            &env,
        )
        .unwrap();
        let header = JournalHeader {
            run: RunConfig {
                csv_path: "l.csv".into(),
                provider: first.config.provider.for_display(),
                ..first.config.clone()
            },
        };
        let line = header.to_json_line();
        let saved = SavedRun::from_header(serde_json::from_str(&line).unwrap());
        let journal = "out/shadow-mode-batch-results-R.jsonl";
        let resumed = plan_env(&["--resume", journal], Some(&saved), &env).unwrap();
        assert_eq!(resumed.csv, PathBuf::from("l.csv"));
        assert_eq!(resumed.config.provider_label, EndpointKind::Openai);
        assert_eq!(
            resumed.config.provider.endpoint_url(),
            "http://127.0.0.1:4321/v1/chat/completions"
        );
        // With the CSV given too, and --provider openai again: still there.
        let again = ["l.csv", "--resume", journal, "--provider", "openai"];
        let resumed = plan_env(&again, Some(&saved), &env).unwrap();
        assert_eq!(resumed.config.provider, first.config.provider);

        // A journal of an earlier version, alone: refused, naming the flags...
        let err = refusal(&["l.csv", "--resume", journal], None, &env);
        assert!(
            err.contains("cannot resume from out/shadow-mode-batch-results-R.jsonl alone")
                && err.contains("--provider openai --base-url URL"),
            "{err}"
        );
        // ...which, given, are taken.
        let named = ["l.csv", "--resume", journal, "--base-url", local];
        let p = plan_env(&named, None, &env).unwrap();
        assert_eq!(p.config.provider, first.config.provider);

        // Settings that would send elsewhere without a flag naming it (a saved file
        // whose endpoint does not match its provider) are refused...
        let mut odd = saved.clone();
        odd.config.provider = Provider::Anthropic(AnthropicConfig {
            base_url: "http://10.0.0.7:8080".into(),
            ..AnthropicConfig::default()
        });
        let err = refusal(&["--resume", journal], Some(&odd), &env);
        assert!(
            err.contains("this run sent to http://10.0.0.7:8080 (openai); resumed as it is, it would send to https://gateway.example/v1 (openai)")
                && err.contains("--base-url URL"),
            "{err}"
        );
        // ...unless the endpoint is named now.
        let p = plan_env(
            &["--resume", journal, "--base-url", local],
            Some(&odd),
            &env,
        )
        .unwrap();
        assert_eq!(p.config.provider, first.config.provider);
        // Another provider named is another endpoint named; the built-in mock is
        // the same whatever port it had.
        let p = plan_env(
            &["--resume", journal, "--provider", "anthropic"],
            Some(&saved),
            &env,
        );
        assert_eq!(p.unwrap().config.provider_label, EndpointKind::Anthropic);
        let mock = plan_words("l.csv", None, &env).unwrap();
        let mut mock_saved = saved_run_of(&mock);
        if let Provider::OpenAi(c) = &mut mock_saved.config.provider {
            c.base_url = "http://127.0.0.1:40001/v1".into();
        }
        let p = plan_env(&["--resume", journal], Some(&mock_saved), &env).unwrap();
        assert_eq!(p.config.provider_label, EndpointKind::Mock);
    }

    /// Issue 19, item 7: a time below the minimum is refused as given, not raised
    /// to the minimum.
    #[test]
    fn timeouts_and_poll_intervals_out_of_range_are_refused_as_given() {
        let env = keys();
        for (argv, words) in [
            (
                &["l.csv", "--timeout", "1e-9"][..],
                "--timeout 0.000000001 is out of range: give 0.001 to 3600 seconds",
            ),
            (
                &["l.csv", "--timeout", "0.0001"],
                "--timeout 0.0001 is out of range: give 0.001 to 3600 seconds",
            ),
            (
                &["l.csv", "--timeout", "NaN"],
                "--timeout NaN is out of range",
            ),
            (&["l.csv", "--timeout=-1"], "--timeout -1 is out of range"),
            (
                &["l.csv", "--via", "batch-api", "--poll-interval", "1e-9"],
                "--poll-interval 0.000000001 is out of range: give 0.001 to 3600 seconds",
            ),
            (
                &["l.csv", "--via", "batch-api", "--poll-interval", "0.0004"],
                "--poll-interval 0.0004 is out of range",
            ),
        ] {
            let err = refusal(argv, None, &env);
            assert!(err.contains(words), "{argv:?}: {err}");
        }
        let p = plan_words("l.csv --timeout 0.001", None, &env).unwrap();
        assert_eq!(p.config.request_timeout_ms, 1);
        let p = plan_words("l.csv --timeout 2.5", None, &env).unwrap();
        assert_eq!(p.config.request_timeout_ms, 2500);
        let argv = ["l.csv", "--via", "batch-api", "--poll-interval", "0.001"];
        let p = plan_env(&argv, None, &env).unwrap();
        assert_eq!(p.config.batch_api.unwrap().poll_max_ms, 1);
    }

    #[test]
    fn positional_settings_and_flags_are_taken() {
        let plan = plan_for(
            &[
                "l.csv",
                "10",
                "300",
                "2",
                "--concurrency",
                "3",
                "--rpm",
                "60",
            ],
            None,
            None,
        )
        .unwrap();
        let c = &plan.config;
        assert_eq!((c.batch_size, c.delay_ms, c.max_retries), (10, 300, 2));
        assert_eq!((c.concurrency, c.rpm), (Some(3), Some(60)));
    }

    #[test]
    fn a_resumed_run_keeps_its_settings_unless_a_flag_is_given_again() {
        let first = plan_for(
            &[
                "l.csv",
                "10",
                "--provider",
                "http",
                "--endpoint",
                "http://x.test/p",
            ],
            None,
            None,
        )
        .unwrap();
        let saved = SavedRun {
            csv_path: "l.csv".into(),
            config: RunConfig {
                columns: ColumnNames {
                    image: Some("picture".into()),
                    ..ColumnNames::default()
                },
                ..first.config.clone()
            },
        };
        let resumed = plan_for(&["--resume", "x.json", "--rpm", "30"], Some(&saved), None).unwrap();
        assert_eq!(resumed.csv, PathBuf::from("l.csv"));
        assert_eq!(resumed.config.batch_size, 10, "kept");
        assert_eq!(resumed.config.rpm, Some(30), "given again");
        assert_eq!(resumed.config.provider, first.config.provider);
        assert_eq!(resumed.config.provider_label, EndpointKind::Http);
        assert_eq!(resumed.config.columns.image.as_deref(), Some("picture"));
        let renamed = plan_for(
            &["--resume", "x.json", "--label-column", "truth"],
            Some(&saved),
            None,
        )
        .unwrap();
        assert_eq!(renamed.config.columns.label.as_deref(), Some("truth"));
        assert_eq!(
            renamed.config.columns.image, None,
            "named columns replace the saved ones"
        );
    }

    #[test]
    fn a_resumed_run_keeps_inline_images_and_the_answer_form_its_endpoint_needed() {
        let argv = [
            "l.csv",
            "--provider",
            "openai",
            "--base-url",
            "http://127.0.0.1:11434/v1",
            "--inline-images",
        ];
        let first = plan_for(&argv, None, Some("k")).unwrap();
        assert!(first.config.inline_images);
        assert!(
            !plan_for(&argv[..5], None, Some("k"))
                .unwrap()
                .config
                .inline_images
        );
        let fallback = shadow_core::FormatFallback {
            endpoint: first.config.provider.endpoint_url(),
            format: shadow_core::provider::OutputFormat::Text,
        };
        let saved = SavedRun {
            csv_path: "l.csv".into(),
            config: RunConfig {
                format_fallback: Some(fallback.clone()),
                ..first.config.clone()
            },
        };
        let resumed = plan_for(&["--resume", "x.json"], Some(&saved), Some("k")).unwrap();
        assert!(resumed.config.inline_images, "kept without the flag");
        // The saved fallback travels with the settings; the run applies it to the
        // same endpoint only (the core's rule).
        assert_eq!(resumed.config.format_fallback, Some(fallback));
    }

    /// The gate is a setting: given, kept by a resumed run, replaced when given
    /// again.
    #[test]
    fn requirements_are_kept_by_a_resumed_run_unless_given_again() {
        let first = plan_for(
            &[
                "l.csv",
                "--require",
                "agreement >= 0.9",
                "--require",
                "recall[cat] >= 0.7",
            ],
            None,
            None,
        )
        .unwrap();
        let texts = |p: &Plan| {
            p.config
                .gate
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(texts(&first), ["agreement >= 0.9", "recall[cat] >= 0.7"]);
        assert!(plan_for(&["l.csv"], None, None)
            .unwrap()
            .config
            .gate
            .is_empty());
        let saved = SavedRun {
            csv_path: "l.csv".into(),
            config: first.config.clone(),
        };
        let resumed = plan_for(&["--resume", "x.json"], Some(&saved), None).unwrap();
        assert_eq!(texts(&resumed), texts(&first));
        let replaced = plan_for(
            &["--resume", "x.json", "--require", "kappa > 0.5"],
            Some(&saved),
            None,
        )
        .unwrap();
        assert_eq!(texts(&replaced), ["kappa > 0.5"]);
    }

    #[test]
    fn openai_without_a_key_and_http_without_an_endpoint_are_refused() {
        let err = plan_for(&["l.csv", "--provider", "openai"], None, Some("  ")).unwrap_err();
        assert!(err.to_string().contains("OPENAI_API_KEY"), "{err}");
        let err = plan_for(&["l.csv", "--provider", "http"], None, None).unwrap_err();
        assert!(err.to_string().contains("--endpoint"), "{err}");
        let err = plan_for(&["l.csv", "--timeout", "0"], None, None).unwrap_err();
        assert!(err.to_string().contains("--timeout"), "{err}");
        for (argv, words) in [
            (
                &["l.csv", "--concurrency", "1000000000"][..],
                "--concurrency 1000000000 is out of range: give 1 to 1024",
            ),
            (
                &["l.csv", "--concurrency", "18446744073709551615"],
                "--concurrency 18446744073709551615 is out of range",
            ),
            (
                &["l.csv", "0"],
                "BATCH_SIZE 0 is out of range: give 1 to 100000",
            ),
            (&["l.csv", "--rpm", "0"], "--rpm 0 is out of range"),
            (
                &["l.csv", "--price-input=-1", "--price-output", "1"],
                "--price-input / --price-output: a price per million tokens",
            ),
            (
                &["l.csv", "--timeout", "7200"],
                "--timeout 7200 is out of range: give 0.001 to 3600 seconds",
            ),
            (
                &["l.csv", "--give-up-after", "99999999999"],
                "--give-up-after",
            ),
        ] {
            let err = plan_for(argv, None, None).unwrap_err().to_string();
            assert!(err.contains(words), "{argv:?}: {err}");
        }
    }

    #[test]
    fn a_saved_url_without_its_credentials_must_be_given_again() {
        // Reports keep a URL without its credentials (the core's display form).
        let url = "http://u:pw@x.test/p?token=t0k3n";
        let first = plan_for(
            &["l.csv", "--provider", "http", "--endpoint", url],
            None,
            None,
        );
        let mut config = first.unwrap().config;
        config.provider = config.provider.for_display();
        let saved = SavedRun {
            csv_path: "l.csv".into(),
            config,
        };
        let err = plan_for(&["--resume", "x.json"], Some(&saved), None).unwrap_err();
        assert!(
            err.to_string().contains("give --endpoint URL again"),
            "{err}"
        );
        let again = plan_for(
            &["--resume", "x.json", "--endpoint", url],
            Some(&saved),
            None,
        );
        assert_eq!(again.unwrap().config.provider.endpoint_url(), url);
    }

    #[test]
    fn a_key_with_a_control_character_space_or_non_ascii_is_refused_unshown() {
        let secret = "sk-Zq8Vx3Lm";
        let cases = [
            (format!("{secret}\r"), "ends with a carriage return (\\r)"),
            (format!("{secret}\r\n"), "ends with a carriage return (\\r)"),
            (format!("\n{secret}"), "starts with a line break (\\n)"),
            (
                "sk-Zq8\u{1b}Vx3Lm".to_string(),
                "contains a control character",
            ),
            ("sk-Zq8 Vx3Lm".to_string(), "contains a space"),
            (
                format!("{secret}\u{201d}"),
                "ends with a non-ASCII character",
            ),
        ];
        for (key, what) in cases {
            for provider in ["openai", "http"] {
                let argv = [
                    "l.csv",
                    "--provider",
                    provider,
                    "--endpoint",
                    "http://x.test/p",
                ];
                let err = plan_for(&argv, None, Some(&key)).unwrap_err().to_string();
                assert!(err.starts_with(&format!("OPENAI_API_KEY {what}")), "{err}");
                assert!(!err.contains("Zq8") && !err.contains("Vx3"), "{err}");
            }
        }
        // The built-in mock sends no key: nothing to check.
        assert!(plan_for(&["l.csv", "--provider", "mock"], None, Some("sk\r")).is_ok());
        assert!(plan_for(&["l.csv"], None, Some("sk-fine_KEY.1=")).is_ok());
    }

    #[test]
    fn batch_api_shards_default_to_the_providers_limits() {
        let env = keys();
        let argv = ["l.csv", "--via", "batch-api", "--provider", "openai"];
        let p = plan_env(&argv, None, &env).unwrap();
        let b = p.config.batch_api.unwrap();
        assert_eq!((b.max_lines, b.max_bytes), (50_000, 200_000_000));
        let argv = ["l.csv", "--via", "batch-api", "--provider", "anthropic"];
        let p = plan_env(&argv, None, &env).unwrap();
        let b = p.config.batch_api.unwrap();
        assert_eq!((b.max_lines, b.max_bytes), (100_000, 256_000_000));
        let more = [&argv[..], &["--shard-lines", "100000"]].concat();
        assert_eq!(
            plan_env(&more, None, &env)
                .unwrap()
                .config
                .batch_api
                .unwrap()
                .max_lines,
            100_000
        );
        let err = plan_words(
            "l.csv --via batch-api --provider openai --shard-lines 100000",
            None,
            &env,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--shard-lines 100000 is out of range: give 1 to 50000"),
            "{err}"
        );
        let gemini = ["l.csv", "--via", "batch-api", "--provider", "gemini"];
        let gemini = plan_env(&gemini, None, &env).unwrap().config;
        assert_eq!(gemini.batch_api.unwrap().max_bytes, 2_000_000_000);
        // Azure's global batch: shards up to its limits.
        let mut argv = vec!["l.csv", "--via", "batch-api", "--provider", "azure"];
        argv.extend(AZURE_RESOURCE);
        let azure = plan_env(&argv, None, &env).unwrap().config;
        assert_eq!(azure.batch_api.unwrap().max_lines, 100_000);
    }
}
