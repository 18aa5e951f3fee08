//! What to run, decided from the flags, the saved settings of a run being resumed,
//! and the environment — before any file is opened or socket bound. Pure, so every
//! merge rule is unit-tested here rather than through a process.

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::Deserialize;
use shadow_core::input::ColumnNames;
use shadow_core::provider::{HttpJsonConfig, ImageDetail, OpenAiConfig, Provider};
use shadow_core::{EndpointKind, RunConfig};

use crate::cli::{Detail, ProviderKind, RunArgs, Via};

/// What an earlier run's progress or summary file says about it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedRun {
    pub csv_path: String,
    pub config: RunConfig,
}

/// A run, decided. The endpoint of the built-in mock is not known yet (it is bound
/// later): `config.provider` then holds the mock's settings with no base URL.
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub csv: PathBuf,
    pub config: RunConfig,
    /// The key to send, for endpoints that get one.
    pub api_key: Option<String>,
}

/// Decides the run. `given(id)` says whether flag `id` was given on the command
/// line (not defaulted): on resume, given flags replace the saved settings, which
/// otherwise stay. `api_key` is `OPENAI_API_KEY` as the environment has it.
pub fn plan(
    args: &RunArgs,
    given: &dyn Fn(&str) -> bool,
    saved: Option<&SavedRun>,
    api_key: Option<String>,
) -> Result<Plan> {
    let api_key = api_key.filter(|k| !k.trim().is_empty());
    let csv = match (&args.csv, saved) {
        (Some(p), _) => p.clone(),
        (None, Some(s)) => PathBuf::from(&s.csv_path),
        (None, None) => bail!("no CSV given"),
    };
    let fresh = saved.is_none();
    let mut config = saved.map(|s| s.config.clone()).unwrap_or_default();
    let take = |id: &str| fresh || given(id);
    if take("batch_size") {
        config.batch_size = args.batch_size;
    }
    if take("delay_ms") {
        config.delay_ms = args.delay_ms;
    }
    if take("max_retries") {
        config.max_retries = args.max_retries;
    }
    if take("concurrency") {
        config.concurrency = args.concurrency;
    }
    if take("max_concurrency") {
        config.max_concurrency = args.max_concurrency;
    }
    if take("tpm") {
        config.tpm = args.tpm;
    }
    if take("no_adaptive") {
        config.adaptive_concurrency = !args.no_adaptive;
    }
    if take("rpm") {
        config.rpm = args.rpm;
    }
    if take("seed") {
        config.seed = args.seed;
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
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds");
    }
    if take("timeout") {
        config.request_timeout_ms = (args.timeout * 1000.0).ceil() as u64;
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
    let kind = match (args.provider, saved_kind) {
        (Some(kind), _) => endpoint_kind(kind),
        (None, Some(kind)) => kind,
        (None, None) if api_key.is_some() => EndpointKind::Openai,
        (None, None) => EndpointKind::Mock,
    };
    let keep_saved_endpoint = saved_kind == Some(kind);
    let detail = match args.detail {
        Detail::Low => ImageDetail::Low,
        Detail::High => ImageDetail::High,
        Detail::Auto => ImageDetail::Auto,
    };
    let openai = |base_url: String, model: String| {
        Provider::OpenAi(OpenAiConfig {
            base_url,
            model,
            detail,
            prompt: args.prompt.clone(),
        })
    };
    config.provider = match kind {
        EndpointKind::Openai => {
            if api_key.is_none() {
                bail!("--provider openai needs an API key: set OPENAI_API_KEY (or use --provider mock for simulated predictions)");
            }
            match &config.provider {
                Provider::OpenAi(_)
                    if keep_saved_endpoint && !given("model") && !given("base_url") =>
                {
                    config.provider.clone()
                }
                _ => openai(args.base_url.clone(), args.model.clone()),
            }
        }
        EndpointKind::Http => match (&config.provider, &args.endpoint) {
            (_, Some(url)) => Provider::HttpJson(HttpJsonConfig {
                url: url.clone(),
                prediction_field: args.prediction_field.clone(),
            }),
            (Provider::HttpJson(_), None) if keep_saved_endpoint => config.provider.clone(),
            _ => {
                bail!("--provider http needs --endpoint URL (the address each image is POSTed to)")
            }
        },
        // The mock's address is known once it is bound.
        EndpointKind::Mock => openai(String::new(), shadow_core::provider::MOCK_MODEL.into()),
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
            if kind == EndpointKind::Http {
                bail!("--via batch-api needs a provider with a batch API: --provider openai (OpenAI, or an OpenAI-compatible server with /v1/files and /v1/batches) or mock; the http provider has none");
            }
            let mut batch = config.batch_api.clone().unwrap_or_default();
            if take("poll_interval") {
                if !(args.poll_interval > 0.0 && args.poll_interval <= 3600.0) {
                    bail!(
                        "--poll-interval {} is out of range: give 0.001 to 3600 seconds",
                        args.poll_interval
                    );
                }
                batch.poll_max_ms = (args.poll_interval * 1000.0).ceil() as u64;
                batch.poll_min_ms = batch.poll_max_ms.min(5_000);
            }
            if take("shard_lines") {
                batch.max_lines = args.shard_lines;
            }
            if let Err(e) = batch.validate() {
                bail!(
                    "{}",
                    match e {
                        shadow_core::ConfigError::BatchApi {
                            field: "maxLines",
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
    // Before anything is sized from a number (the engine's tables, the HTTP pool).
    config
        .validate()
        .map_err(|e| anyhow::anyhow!(crate::next_step::for_setting(&e)))?;
    if let Some(key) = api_key.as_deref().filter(|_| kind != EndpointKind::Mock) {
        check_key("OPENAI_API_KEY", key)?;
    }
    Ok(Plan {
        csv,
        config,
        api_key: api_key.filter(|_| kind != EndpointKind::Mock),
    })
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
        let matches = crate::cli::command()
            .try_get_matches_from(std::iter::once("shadow-batch").chain(argv.iter().copied()))
            .unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        plan(&cli.run, &given, saved, key.map(str::to_string))
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
        let with_key = plan_for(&["data/labels.csv"], None, Some("sk-test")).unwrap();
        assert_eq!(with_key.config.provider, defaults.provider);
        assert_eq!(with_key.config.provider_label, EndpointKind::Openai);
        assert_eq!(with_key.api_key.as_deref(), Some("sk-test"));
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
}
