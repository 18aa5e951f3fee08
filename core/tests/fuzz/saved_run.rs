//! Target `saved_run`: the resume-file reader. `shadow-batch --resume` reads the
//! progress or summary file of the earlier run into `SavedRun` (native/src/plan.rs:
//! `csvPath` and `config`, with serde_json) and then builds the run from that
//! config. That type is private to the binary, so [`SavedRun`] here is its twin;
//! the work is in `RunConfig`'s deserializer, which is the core's.

use proptest::collection::vec;
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use shadow_core::input::{parse_labels_csv, ColumnNames, LabelsCsv};
use shadow_core::provider::{HttpJsonConfig, ImageDetail, OpenAiConfig, Provider};
use shadow_core::{EndpointKind, Millis, Run, RunConfig};

use crate::corpus::{self, Bytes};

const TARGET: &str = "saved_run";

const NOW: Millis = Millis(1_737_714_600_000);

/// The twin of the CLI's `SavedRun` (native/src/plan.rs): keep the two alike.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedRun {
    csv_path: String,
    config: RunConfig,
}

fn csv() -> LabelsCsv {
    parse_labels_csv(
        "image,label\nhttps://x.test/a.png,cat\nb.png,dog\n",
        &ColumnNames::default(),
    )
    .unwrap()
}

/// Reads `input` as the CLI does; what it reads must be usable or refused.
fn check(input: &[u8]) -> Result<Option<SavedRun>, TestCaseError> {
    let saved = match serde_json::from_slice::<SavedRun>(input) {
        Ok(saved) => saved,
        Err(e) => {
            crate::check_error_size(&e, input, 4)?;
            return Ok(None);
        }
    };
    // Saved again and read back, the settings are the same (the next resume reads
    // what this one writes).
    let written = serde_json::to_string(&saved.config).unwrap();
    let again: RunConfig = serde_json::from_str(&written).unwrap();
    prop_assert_eq!(&again, &saved.config);
    // Settings the engine accepts build a run and its requests.
    if saved.config.validate().is_ok() {
        let mut run = Run::new(saved.config.clone(), csv(), NOW).unwrap();
        // Every bound is checked: the first dispatch sizes and adds from them.
        while run.poll(NOW).is_some() {}
        let request = run
            .request_template()
            .build("https://x.test/a.png", 1, Some("id"));
        prop_assert!(request.headers.iter().all(|(k, _)| k != "authorization"));
        serde_json::to_string(&run.progress(NOW)).unwrap();
    }
    Ok(Some(saved))
}

// ---------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------

fn big() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..100_000, 1 => Just(u64::MAX), 1 => any::<u64>()]
}

/// Mostly in `valid`, sometimes at the edges of the type.
fn knob<T>(valid: std::ops::RangeInclusive<T>, edges: Vec<T>) -> impl Strategy<Value = T>
where
    T: Copy + std::fmt::Debug + 'static,
    std::ops::RangeInclusive<T>: Strategy<Value = T>,
{
    prop_oneof![6 => valid, 1 => prop::sample::select(edges)]
}

fn provider() -> impl Strategy<Value = Provider> {
    prop_oneof![
        (
            "\\PC{0,20}",
            "\\PC{0,10}",
            prop::option::of("\\PC{0,40}"),
            0..3
        )
            .prop_map(
                |(base_url, model, prompt, detail)| Provider::OpenAi(OpenAiConfig {
                    base_url,
                    model,
                    detail: [ImageDetail::Auto, ImageDetail::Low, ImageDetail::High]
                        [detail as usize],
                    prompt,
                })
            ),
        ("\\PC{0,20}", "[a-z0-9.]{0,12}").prop_map(|(url, prediction_field)| {
            Provider::HttpJson(HttpJsonConfig {
                url,
                prediction_field,
            })
        }),
    ]
}

/// Any settings a run may have saved, absurd numbers included.
fn config() -> impl Strategy<Value = RunConfig> {
    (
        (
            "[0-9TZ:-]{0,24}",
            "\\PC{0,20}",
            prop::option::of("[a-z ]{0,8}"),
        ),
        (
            knob(1..=1000usize, vec![0, usize::MAX]),
            big(),
            knob(0..=100u32, vec![101, u32::MAX]),
            knob(0..=1000u32, vec![1001, u32::MAX]),
            knob(1..=64usize, vec![0, usize::MAX]),
            any::<bool>(),
        ),
        (
            prop::option::of(knob(1..=100_000u32, vec![0, u32::MAX])),
            knob(1..=600_000u64, vec![0, u64::MAX]),
            big(),
            big(),
            big(),
        ),
        (big(), big(), any::<u64>(), provider(), 0..3usize),
    )
        .prop_map(|(names, knobs, paces, rest)| {
            let (run_id, csv_path, image_column) = names;
            let (batch, delay_ms, max_retries, max_rate_limit_retries, concurrency, adaptive) =
                knobs;
            let (rpm, request_timeout_ms, backoff_initial_ms, backoff_max_ms, max_retry_wait_ms) =
                paces;
            let (abort_after_failing_ms, cancel_grace_ms, seed, provider, label) = rest;
            RunConfig {
                run_id,
                csv_path,
                columns: ColumnNames {
                    image: image_column,
                    ..ColumnNames::default()
                },
                batch_size: batch,
                delay_ms,
                max_retries,
                max_rate_limit_retries,
                concurrency: (seed % 2 == 0).then_some(concurrency),
                max_concurrency: concurrency,
                adaptive_concurrency: adaptive,
                rpm,
                tpm: (seed % 5 == 0).then_some(seed),
                request_timeout_ms,
                backoff_initial_ms,
                backoff_max_ms,
                max_retry_wait_ms,
                abort_after_failing_ms,
                cancel_grace_ms,
                seed,
                provider,
                provider_label: [EndpointKind::Openai, EndpointKind::Http, EndpointKind::Mock]
                    [label],
                price: (seed % 3 == 0).then_some(shadow_core::cost::Price {
                    input_per_million: (seed % 1000) as f64 / 100.0,
                    output_per_million: 20_000.0,
                }),
                // A saved run of batch-API mode, sometimes with absurd settings.
                batch_api: (seed % 7 == 0).then(|| shadow_core::batch::BatchApiConfig {
                    max_lines: (seed % 100_000) as usize,
                    poll_min_ms: seed % 10_000,
                    ..shadow_core::batch::BatchApiConfig::default()
                }),
                format_fallback: (seed % 7 == 0).then(|| shadow_core::FormatFallback {
                    endpoint: format!("http://127.0.0.1:{}/v1/chat/completions", seed % 65536),
                    format: [
                        shadow_core::provider::OutputFormat::JsonObject,
                        shadow_core::provider::OutputFormat::Text,
                    ][(seed / 7 % 2) as usize],
                }),
                confidence: seed % 5 != 0,
                target_agreement: (seed % 4 == 0).then_some((seed % 100 + 1) as f64 / 100.0),
                confidence_refused_by: (seed % 9 == 0)
                    .then(|| format!("http://127.0.0.1:{}/v1/chat/completions", seed % 65536)),
                inline_images: seed % 11 == 0,
                // A gate, sometimes: edits then replace its texts with junk.
                gate: if seed % 13 == 0 {
                    [
                        "agreement.low >= 0.9",
                        "recall[a b] > 50%",
                        "failure_share <= 0.02",
                    ]
                    .iter()
                    .map(|r| r.parse().unwrap())
                    .collect()
                } else {
                    Vec::new()
                },
                // A sampled run, sometimes.
                sample: (seed % 11 == 0).then(|| shadow_core::sample::Sample {
                    seed,
                    rows: (seed % 1000) as usize,
                    csv_rows: (seed % 100_000) as usize,
                    csv_fingerprint: format!("{seed:016x}"),
                    // Stratified by label, sometimes.
                    strata: (seed % 2 == 0).then(|| shadow_core::sample::Strata {
                        labels: vec![shadow_core::sample::LabelRows {
                            label: format!("label {seed}"),
                            csv_rows: (seed % 1000) as usize,
                        }],
                        defective_rows: (seed % 3) as usize,
                    }),
                }),
                // A run that stops when its interval is narrow enough, sometimes.
                until_interval: (seed % 13 == 0).then(|| (1 + seed % 40) as f64 / 100.0),
            }
        })
}

/// Every path (JSON pointer) in `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                pointers(child, p, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// A value to put where another was.
fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::Bool(true)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(1.5)),
        Just(serde_json::json!(1e300)),
        Just(serde_json::json!("")),
        Just(serde_json::json!("18446744073709551616")),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        Just(serde_json::json!({"kind": "http"})),
        "\\PC{0,12}".prop_map(Value::String),
    ]
}

/// The progress or the summary file of a run with `config`, as the CLI writes
/// them, and whether a case leaves it untouched.
fn saved_file() -> impl Strategy<Value = (RunConfig, bool, Value)> {
    (config(), any::<bool>()).prop_map(|(config, summary)| {
        // Into the core's bounds (Setting::bounds), as validate wants them.
        let clamp = |setting: shadow_core::Setting, v: u64| {
            let (min, max) = setting.bounds();
            v.clamp(min, max)
        };
        use shadow_core::Setting as S;
        let mut valid = config.clone();
        valid.batch_size = clamp(S::BatchSize, valid.batch_size as u64) as usize;
        valid.delay_ms = clamp(S::DelayMs, valid.delay_ms);
        valid.max_retries = clamp(S::MaxRetries, valid.max_retries.into()) as u32;
        valid.max_rate_limit_retries =
            clamp(S::MaxRateLimitRetries, valid.max_rate_limit_retries.into()) as u32;
        valid.concurrency = valid
            .concurrency
            .map(|c| clamp(S::Concurrency, c as u64) as usize);
        valid.max_concurrency = clamp(S::MaxConcurrency, valid.max_concurrency as u64) as usize;
        valid.tpm = valid.tpm.map(|t| clamp(S::Tpm, t));
        valid.rpm = valid.rpm.map(|r| clamp(S::Rpm, r.into()) as u32);
        valid.request_timeout_ms = clamp(S::RequestTimeoutMs, valid.request_timeout_ms);
        valid.backoff_initial_ms = clamp(S::BackoffInitialMs, valid.backoff_initial_ms);
        valid.backoff_max_ms = clamp(S::BackoffMaxMs, valid.backoff_max_ms);
        valid.max_retry_wait_ms = clamp(S::MaxRetryWaitMs, valid.max_retry_wait_ms);
        valid.abort_after_failing_ms = clamp(S::AbortAfterFailingMs, valid.abort_after_failing_ms);
        valid.cancel_grace_ms = clamp(S::CancelGraceMs, valid.cancel_grace_ms);
        valid.price = valid.price.filter(|p| p.is_valid());
        valid.batch_api = {
            let provider = valid.provider.clone();
            valid
                .batch_api
                .filter(|b| b.validate_for(&provider).is_ok())
        };
        let run = Run::new(valid, csv(), NOW).expect("settings made valid");
        let mut value = if summary {
            serde_json::to_value(run.summary(NOW)).unwrap()
        } else {
            serde_json::to_value(run.progress(NOW)).unwrap()
        };
        // The file keeps the settings as they were, valid or not.
        value["config"] = serde_json::to_value(&config).unwrap();
        (config, summary, value)
    })
}

/// A saved file with some values replaced or removed.
fn edited_file() -> impl Strategy<Value = Bytes> {
    (
        saved_file(),
        vec((any::<usize>(), replacement(), any::<bool>()), 1..4),
    )
        .prop_map(|((_, _, mut value), edits)| {
            for (pick, new, remove) in edits {
                let mut all = Vec::new();
                pointers(&value, String::new(), &mut all);
                let at = &all[pick % all.len()];
                match at.rsplit_once('/') {
                    Some((parent, key)) if remove => {
                        if let Some(Value::Object(map)) = value.pointer_mut(parent) {
                            map.remove(&key.replace("~1", "/").replace("~0", "~"));
                        }
                    }
                    _ => {
                        if let Some(slot) = value.pointer_mut(at) {
                            *slot = new;
                        }
                    }
                }
            }
            Bytes(serde_json::to_vec(&value).unwrap())
        })
}

#[test]
fn seeds_as_they_are() {
    let mut read = 0;
    for (name, seed) in corpus::seeds(TARGET) {
        match check(&seed.0) {
            Ok(saved) => read += usize::from(saved.is_some()),
            Err(e) => panic!("seed {name}: {e}"),
        }
    }
    // The files a real run wrote must be readable (the resume contract).
    assert!(read >= 2, "only {read} seeds were read");
}

proptest! {
    #![proptest_config(crate::config(1000))]

    /// A run's own files give back its settings.
    #[test]
    fn saved_settings_are_read_back((config, _, value) in saved_file()) {
        let saved = check(&serde_json::to_vec(&value).unwrap())?;
        let saved = saved.expect("a file the run wrote is readable");
        prop_assert_eq!(&saved.csv_path, &config.csv_path);
        prop_assert_eq!(saved.config, config);
    }
}

proptest! {
    #![proptest_config(crate::config(2000))]

    #[test]
    fn any_saved_file_is_read_or_refused(
        input in prop_oneof![
            2 => corpus::noise(),
            4 => edited_file(),
            4 => corpus::mutated(TARGET),
        ],
    ) {
        check(&input.0)?;
    }
}
