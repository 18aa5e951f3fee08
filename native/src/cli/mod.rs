//! The command line: what each flag means, its default, and how the flags become
//! the core's `RunConfig`.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use shadow_core::batch::BatchApiConfig;
use shadow_core::gate::Requirement;
use shadow_core::provider::{defaults as provider_defaults, ImageDetail, OpenAiConfig, Provider};
use shadow_core::report::ERRORS_SHOWN;
use shadow_core::{RunConfig, Setting};
use shadow_mock::{AccuracyDrop, MockConfig};

mod commands;
mod mock_args;
pub use commands::{CancelArgs, CompareArgs, ReportArgs, WebArgs};
use mock_args::parse_accuracy_drop;
pub use mock_args::MockArgs;

/// Every default is the core's: written once, in `RunConfig::default()`.
fn defaults() -> RunConfig {
    RunConfig::default()
}

pub fn default_openai() -> OpenAiConfig {
    match defaults().provider {
        Provider::OpenAi(openai) => openai,
        other => unreachable!("the default provider is OpenAI, not {other:?}"),
    }
}

/// `--model`'s help, with each provider's default (the core's).
fn model_help() -> String {
    format!(
        "Model name sent to the endpoint [default: {} for openai, {} for anthropic, {} for \
         gemini; for azure, --deployment's value is the model]",
        default_openai().model,
        provider_defaults::ANTHROPIC_MODEL,
        provider_defaults::GEMINI_MODEL
    )
}

/// `--base-url`'s help, with each provider's default (the core's).
fn base_url_help() -> String {
    format!(
        "Base URL of the endpoint [default: OPENAI_BASE_URL or {} for openai (up to /v1), \
         {} for anthropic, {} for gemini (up to the version); for azure, the resource: \
         https://RESOURCE.openai.azure.com, required]",
        default_openai().base_url,
        provider_defaults::ANTHROPIC_BASE_URL,
        provider_defaults::GEMINI_BASE_URL
    )
}

/// How the command line sets a bounded setting: clap's argument id, the name shown
/// to the user, and whether it takes seconds where the core keeps milliseconds.
pub struct SettingFlag {
    pub id: &'static str,
    pub shown: &'static str,
    pub seconds: bool,
}

/// The flag of `setting`; `None` when no flag sets it (it comes only from a saved
/// run's config).
pub fn setting_flag(setting: Setting) -> Option<SettingFlag> {
    let (id, shown, seconds) = match setting {
        Setting::BatchSize => ("batch_size", "BATCH_SIZE", false),
        Setting::DelayMs => ("delay_ms", "DELAY_MS", false),
        Setting::MaxRetries => ("max_retries", "MAX_RETRIES", false),
        Setting::Concurrency => ("concurrency", "--concurrency", false),
        Setting::MaxConcurrency => ("max_concurrency", "--max-concurrency", false),
        Setting::Rpm => ("rpm", "--rpm", false),
        Setting::Tpm => ("tpm", "--tpm", false),
        Setting::RequestTimeoutMs => ("timeout", "--timeout", true),
        Setting::AbortAfterFailingMs => ("give_up_after", "--give-up-after", true),
        Setting::MaxRateLimitRetries
        | Setting::BackoffInitialMs
        | Setting::BackoffMaxMs
        | Setting::MaxRetryWaitMs
        | Setting::CancelGraceMs => return None,
    };
    Some(SettingFlag { id, shown, seconds })
}

/// `min` to `max` in the flag's unit.
pub fn range_text(setting: Setting, flag: &SettingFlag) -> String {
    let (min, max) = setting.bounds();
    if flag.seconds {
        let secs = |ms: u64| ms as f64 / 1000.0;
        format!("{} to {} seconds", secs(min), secs(max))
    } else {
        format!("{min} to {max}")
    }
}

/// The command line, with each bounded flag's range (the core's) in its help.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for setting in Setting::ALL {
        if let Some(flag) = setting_flag(setting) {
            let range = range_text(setting, &flag);
            cmd = cmd.mut_arg(flag.id, |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [range: {range}]"))
            });
        }
    }
    cmd
}

const AFTER_HELP: &str = "\
EXAMPLES:
    shadow-batch training-data/labels.csv
        Every image against the built-in mock endpoint (no network, no cost, even
        with a key in the environment: a paid endpoint is used only when named).
    OPENAI_API_KEY=sk-... shadow-batch training-data/labels.csv 50 0 5 --provider openai --model gpt-4o-mini
        The same against OpenAI: batches of 50, no fixed delay, 5 retries.
    shadow-batch --resume training-data/shadow-mode-batch-progress-2025-01-24T10-30-00-000Z.json
        Continue an interrupted run; finished images are not sent again.
    OPENAI_API_KEY=sk-... shadow-batch big.csv --via batch-api --provider openai
        The provider's batch engine: half the price, results within 24 hours;
        Ctrl-C detaches (the batches keep running); --resume FILE collects them,
        `shadow-batch cancel FILE` cancels them.
    shadow-batch report training-data/shadow-mode-batch-results-2025-01-24T10-30-00-000Z.jsonl
        Write the HTML report (results explorer) of an earlier run, even an
        interrupted one; open it in a browser.
    shadow-batch compare RUN-A-FILE RUN-B-FILE
        Is run B better than run A (same CSV)? The verdict, the paired figures,
        shadow-mode-batch-compare-A-vs-B.json and its view (.html). Or, as a run goes:
        --baseline RUN-A-FILE, or --baseline-column NAME (the incumbent's
        decision in the CSV).

FILES (in the CSV's folder, or --out-dir):
    shadow-mode-batch-progress-{run}.json   replaced after every batch
    shadow-mode-batch-results-{run}.jsonl   one line per finished image (the predictions)
    shadow-mode-batch-{run}.json            the final summary
    shadow-mode-batch-provider-{run}.jsonl  --via batch-api: every file and batch id
                                            the provider gave, written before the
                                            next step (what --resume continues from)
    shadow-mode-batch-report-{run}.html     the results explorer: one self-contained
                                            file to open in a browser (no server, no
                                            network); `shadow-batch report FILE`
                                            writes it again for any earlier run
    shadow-mode-batch-compare-{A}-vs-{B}.json
                                            `shadow-batch compare A B`: the paired
                                            figures, the verdict, the rows
    shadow-mode-batch-compare-{A}-vs-{B}.html
                                            the same in the explorer's compare view:
                                            one self-contained file, like the report
    shadow-mode-batch-{run}.lock            while a process runs the run: its pid
                                            (a second process on the run is refused)

EXIT STATUS:
    0 every image succeeded; 1 some failed; 2 usage or configuration error, or the
    run was aborted (wrong key, no quota); 3 the run completed and missed a
    --require (a line per requirement says which); 130 interrupted (Ctrl-C).

ENVIRONMENT (keys are sent only in their header, never written to any file or log):
    OPENAI_API_KEY        key for --provider openai (authorization: Bearer), and the
                          bearer key of --provider http when set
    ANTHROPIC_API_KEY     key for --provider anthropic (x-api-key header)
    GEMINI_API_KEY        key for --provider gemini (x-goog-api-key header, never in
                          the URL)
    AZURE_OPENAI_API_KEY  key for --provider azure (api-key header)
    OPENAI_BASE_URL       default for --base-url of --provider openai (and azure);
                          it picks no provider by itself
    NO_COLOR              no colours in the progress bar and log lines (they have none
                          anyway when stderr is not a terminal)

PROVIDERS:
    ANTHROPIC_API_KEY=... shadow-batch labels.csv --provider anthropic [--model claude-haiku-4-5]
    GEMINI_API_KEY=... shadow-batch labels.csv --provider gemini [--model gemini-2.5-flash]
    AZURE_OPENAI_API_KEY=... shadow-batch labels.csv --provider azure \\
        --base-url https://RESOURCE.openai.azure.com --deployment NAME [--api-version 2024-10-21]
        (without --api-version: the version-less /openai/v1/ path)";

/// Run a model in shadow mode over a labelled image set: every image of the CSV
/// goes to the model, its answer is recorded beside the human label (and acted on
/// by no one), and you see batch by batch how the model would have done.
#[derive(Parser, Debug)]
#[command(
    name = "shadow-batch",
    version,
    after_long_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the built-in mock endpoint on 127.0.0.1 until Ctrl-C: OpenAI-compatible
    /// at /v1, and the Anthropic, Gemini and Azure dialects on their own paths.
    MockServer(MockArgs),
    /// Serve the browser page and the mock endpoint (at /v1) on 127.0.0.1 until
    /// Ctrl-C. Build the page first: bash web/build.sh.
    Web(WebArgs),
    /// Write the HTML report (the results explorer, one self-contained file) of an
    /// earlier run, finished or not, from its progress, summary or results file.
    Report(ReportArgs),
    /// Compare two runs over the same CSV (two models, prompts, providers; live vs
    /// batch): is B better than A? Prints both sides' figures, the paired table,
    /// the labels that moved and the verdict (McNemar's exact test, Newcombe's
    /// paired interval), and writes shadow-mode-batch-compare-A-vs-B.json and
    /// its view, shadow-mode-batch-compare-A-vs-B.html (self-contained).
    Compare(CompareArgs),
    /// Cancel the provider batches of a --via batch-api run at the provider, keep
    /// what they finished (downloaded into the run's results), and end the run
    /// as interrupted: --resume later sends the rest.
    Cancel(CancelArgs),
    /// What a run would send, cost and take, with nothing sent: give the CSV and
    /// the same flags as the run (the same as the run with --dry-run). Rows,
    /// labels, images found and missing (the run's own checks), tokens per
    /// request by the provider's published image formula for the sizes read from
    /// a sample of the images, the cost at the model's list price or --price-*
    /// (live and through the batch API), the time at --rpm / --tpm (or at the
    /// limits one request reads from the endpoint, with --ask-endpoint-limits),
    /// and how many rows an interval of the agreement needs. With --sample, the
    /// sample's rows only; with --until-interval W, the requests, cost and time
    /// to the likely stop at 50%, 90% and 97% agreement.
    Estimate(Box<RunArgs>),
}

/// A `--require` expression, read by the core: its errors say what is wrong and
/// how a requirement is written (clap names the expression).
fn parse_requirement(s: &str) -> Result<Requirement, String> {
    s.parse()
        .map_err(|e: shadow_core::gate::RequirementError| e.to_string())
}

/// `--target-agreement`: a share in (0, 1], as `0.99` or `99%`.
fn parse_target(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("{s:?} is not a share like 0.99 or 99%"))?;
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(format!(
            "{s:?} is outside (0, 1]: give a share like 0.99 or 99%"
        ))
    }
}

/// A share in [0, 1] (the mock's rates and overconfidence).
pub(super) fn parse_share(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("`{s}` is not between 0 and 1"))
    }
}

/// Which kind of endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProviderKind {
    /// OpenAI-compatible chat completions (--base-url, --model, OPENAI_API_KEY).
    Openai,
    /// Anthropic's Messages API (--model, ANTHROPIC_API_KEY); the label is forced
    /// through a tool call.
    Anthropic,
    /// Google's Gemini API (--model, GEMINI_API_KEY); the label is a JSON enum.
    Gemini,
    /// Azure OpenAI (--base-url of the resource, --deployment, --api-version,
    /// AZURE_OPENAI_API_KEY).
    Azure,
    /// Any JSON endpoint: POST {image, labels}, read the answer at --prediction-field.
    Http,
    /// The built-in mock endpoint, in-process: simulated predictions.
    Mock,
}

/// How the requests travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// One HTTP request per image, paced to the endpoint's limits: results in
    /// minutes.
    Live,
    /// The provider's batch API (OpenAI's Batch API: /v1/files + /v1/batches;
    /// Azure OpenAI's global batch: the same under /openai/v1; Anthropic's
    /// Message Batches: /v1/messages/batches; Gemini Batch Mode:
    /// :batchGenerateContent): shards of up to 50,000 (OpenAI) or 100,000
    /// (Azure, Anthropic, Gemini) requests run on the provider's fleet at half
    /// the price, results within 24 hours.
    BatchApi,
}

/// OpenAI's image detail level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Detail {
    Low,
    High,
    Auto,
}

impl From<ImageDetail> for Detail {
    fn from(detail: ImageDetail) -> Detail {
        match detail {
            ImageDetail::High => Detail::High,
            ImageDetail::Auto => Detail::Auto,
            // Low, and any level added later: the cheapest.
            _ => Detail::Low,
        }
    }
}

impl From<Detail> for ImageDetail {
    fn from(detail: Detail) -> ImageDetail {
        match detail {
            Detail::Low => ImageDetail::Low,
            Detail::High => ImageDetail::High,
            Detail::Auto => ImageDetail::Auto,
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The labels CSV: a header row, an image column (path relative to the CSV's
    /// folder, absolute path, http(s) or data: URL) and a label column.
    #[arg(required_unless_present = "resume", value_name = "CSV")]
    pub csv: Option<PathBuf>,

    /// Images per batch report.
    #[arg(value_name = "BATCH_SIZE", default_value_t = defaults().batch_size)]
    pub batch_size: usize,

    /// Minimum time between two request starts, in ms (0: pacing comes from --rpm
    /// and the endpoint's rate-limit headers).
    #[arg(value_name = "DELAY_MS", default_value_t = defaults().delay_ms)]
    pub delay_ms: u64,

    /// Retries per image after the first attempt, for timeouts, resets, 408, 409
    /// and 5xx. (429s wait as long as the endpoint asks, on a budget of their own:
    /// 20.)
    #[arg(value_name = "MAX_RETRIES", default_value_t = defaults().max_retries)]
    pub max_retries: u32,

    /// A fixed cap on requests in flight, for an endpoint that limits concurrent
    /// requests (a local server, a gateway) [default: none; the limit is found:
    /// the pace × the measured latency, or grown while latency holds].
    #[arg(long, value_name = "N", help_heading = "Pacing")]
    pub concurrency: Option<usize>,

    /// The most requests in flight a found limit may reach.
    #[arg(long, value_name = "N", default_value_t = defaults().max_concurrency, help_heading = "Pacing")]
    pub max_concurrency: usize,

    /// Keep the in-flight limit fixed (at --concurrency, else --max-concurrency)
    /// instead of finding it, halving it on 429 and growing it back on success.
    #[arg(long, help_heading = "Pacing")]
    pub no_adaptive: bool,

    /// Cap on requests per minute, spread evenly [default: none; the endpoint's
    /// x-ratelimit-limit-requests is followed when it sends one].
    #[arg(long, value_name = "N", help_heading = "Pacing")]
    pub rpm: Option<u32>,

    /// Cap on tokens per minute: starts are spaced by what each request is
    /// charged (its prompt, learned from answers, plus max_tokens) [default: none;
    /// the endpoint's x-ratelimit-limit-tokens is followed when it sends one].
    #[arg(long, value_name = "N", help_heading = "Pacing")]
    pub tpm: Option<u64>,

    /// Per-request timeout, in seconds.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = defaults().request_timeout_ms as f64 / 1000.0,
        help_heading = "Pacing"
    )]
    pub timeout: f64,

    /// Stop the run (resumable) when nothing has succeeded for this many seconds
    /// while requests keep failing: the endpoint is down, hangs or rate-limits
    /// without end. 0 = never.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = defaults().abort_after_failing_ms / 1000,
        help_heading = "Pacing"
    )]
    pub give_up_after: u64,

    /// Seed of the retry jitter (and of the built-in mock's answers).
    #[arg(long, default_value_t = defaults().seed, help_heading = "Pacing")]
    pub seed: u64,

    /// Endpoint kind [default: openai with --base-url (azure when it is an
    /// *.openai.azure.com address), http with --endpoint, else the built-in mock:
    /// a key in the environment alone never picks a paid endpoint; a resumed run
    /// keeps its own].
    #[arg(long, value_enum, help_heading = "Endpoint")]
    pub provider: Option<ProviderKind>,

    #[arg(long, value_name = "NAME", help = model_help(), help_heading = "Endpoint")]
    pub model: Option<String>,

    /// How the requests travel: live (one request per image) or batch-api (the
    /// provider's batch engine: half the price, results within 24 h; with
    /// --provider openai (or an OpenAI-compatible server with /v1/files and
    /// /v1/batches), --provider azure (global batch: --deployment names a
    /// global-batch deployment), --provider anthropic (Message Batches),
    /// --provider gemini (Batch Mode), or the built-in mock) [default: live, or
    /// what the resumed run used].
    #[arg(long, value_enum, value_name = "HOW", help_heading = "Batch API")]
    pub via: Option<Via>,

    /// --via batch-api: the longest wait between two reads of a batch's status,
    /// in seconds (the first read comes after 5 s, or this if shorter; the
    /// waits grow by half up to it).
    #[arg(long, value_name = "SECS", default_value_t = BatchApiConfig::default().poll_max_ms as f64 / 1000.0, help_heading = "Batch API")]
    pub poll_interval: f64,

    /// --via batch-api: most requests in one provider batch [default and most:
    /// the provider's limit, 50,000 for OpenAI, 100,000 for Anthropic]; a batch
    /// also stays under the provider's size limit (200 MB of input file for
    /// OpenAI, 256 MB of create request for Anthropic).
    #[arg(long, value_name = "N", help_heading = "Batch API")]
    pub shard_lines: Option<usize>,

    /// --via batch-api: keep the run's files at the provider (each shard's
    /// input file, and its batch's output and error files) instead of deleting
    /// them once the batch is done and its results are in the results journal.
    #[arg(long, help_heading = "Batch API")]
    pub keep_provider_files: bool,

    #[arg(long, value_name = "URL", help = base_url_help(), help_heading = "Endpoint")]
    pub base_url: Option<String>,

    /// Azure: the deployment's name (not always the model's) [default: --model's
    /// value].
    #[arg(long, value_name = "NAME", help_heading = "Endpoint")]
    pub deployment: Option<String>,

    /// Azure: the api-version of the deployment path, e.g. 2024-10-21 or
    /// 2025-04-01-preview [default: none: the version-less /openai/v1/ path].
    #[arg(long, value_name = "VERSION", help_heading = "Endpoint")]
    pub api_version: Option<String>,

    /// Image detail level for OpenAI and Azure (low is cheapest).
    #[arg(long, value_enum, default_value_t = ImageDetail::default().into(), help_heading = "Endpoint")]
    pub detail: Detail,

    /// URL the http provider POSTs each image to.
    #[arg(long, value_name = "URL", help_heading = "Endpoint")]
    pub endpoint: Option<String>,

    /// Dotted path of the prediction in the http provider's answer (e.g.
    /// result.label or choices.0.label).
    #[arg(long, default_value = "prediction", help_heading = "Endpoint")]
    pub prediction_field: String,

    /// Instructions to the model instead of the built-in prompt (the label list is
    /// always added).
    #[arg(long, value_name = "TEXT", help_heading = "Endpoint")]
    pub prompt: Option<String>,

    /// The model's price in US dollars per million prompt (input) tokens, for the
    /// cost in the summary [default: the built-in list price of a few OpenAI
    /// models, dated; other models get no money figure].
    #[arg(
        long,
        value_name = "USD",
        requires = "price_output",
        help_heading = "Endpoint"
    )]
    pub price_input: Option<f64>,

    /// The model's price in US dollars per million completion (output) tokens.
    #[arg(
        long,
        value_name = "USD",
        requires = "price_input",
        help_heading = "Endpoint"
    )]
    pub price_output: Option<f64>,

    /// Name of the image column [default: found among image, image_path, path,
    /// file, filename, url, image_url].
    #[arg(long, value_name = "NAME", help_heading = "CSV")]
    pub image_column: Option<String>,

    /// Name of the label column [default: found among label, class, category,
    /// expected].
    #[arg(long, value_name = "NAME", help_heading = "CSV")]
    pub label_column: Option<String>,

    /// Name of an id column copied into the results [default: id, image_id or uid
    /// when present].
    #[arg(long, value_name = "NAME", help_heading = "CSV")]
    pub id_column: Option<String>,

    /// Let image paths point outside the CSV's folder (absolute paths, `..`,
    /// symlinks).
    #[arg(long, help_heading = "CSV")]
    pub allow_outside_data_dir: bool,

    /// Download http(s) images and send them inline (base64, as files are sent),
    /// for endpoints that cannot or may not fetch URLs: local servers such as
    /// Ollama, images on a private network. Not saved with the run: give it again
    /// on --resume.
    #[arg(long, help_heading = "CSV")]
    pub inline_images: bool,

    /// Folder for the progress, results, summary and report files [default: the
    /// CSV's folder].
    #[arg(long, value_name = "DIR", help_heading = "Files")]
    pub out_dir: Option<PathBuf>,

    /// Continue an earlier run from its progress, summary or results file: same run
    /// id and files, finished images skipped, the CSV read with the columns named
    /// at the start.
    #[arg(long, value_name = "FILE", help_heading = "Files")]
    pub resume: Option<PathBuf>,

    /// With --resume: send the images that failed again.
    #[arg(long, requires = "resume", help_heading = "Files")]
    pub retry_failed: bool,

    /// In the HTML report written at the end, embed downscaled copies of the
    /// images (96 px a side, 8 MiB in all) instead of linking them by relative path.
    #[arg(long, help_heading = "Files")]
    pub embed_thumbnails: bool,

    /// A requirement the run's verdict must meet, for CI; repeatable. MEASURE OP
    /// BOUND, where MEASURE is agreement, kappa, macro_f1, weighted_f1,
    /// failure_share, recall[LABEL], precision[LABEL] or f1[LABEL], optionally with
    /// .low or .high (an end of its 95% interval); OP is >=, >, <= or <; BOUND is
    /// like 0.9 or 90%. E.g. --require "agreement >= 0.90" --require
    /// "recall[cat].low >= 0.7" --require "failure_share <= 0.02". A completed run
    /// that misses one ends with exit status 3, and each requirement gets a line
    /// (`gate: agreement 0.87 < 0.90 required: FAILED`); an interrupted or aborted
    /// run's gate is not judged. A resumed run keeps its requirements unless
    /// --require is given again.
    #[arg(long = "require", value_name = "EXPR", value_parser = parse_requirement, help_heading = "Gate")]
    pub require: Vec<Requirement>,

    /// Compare this run (B) with an earlier run over the same CSV (A, any of its
    /// files): the console's end and the summary (`comparison`) say whether this
    /// run agrees with the labels more often, with McNemar's exact test. Rows are
    /// paired as they finish. Give it again when resuming.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "baseline_column",
        help_heading = "Compare"
    )]
    pub baseline: Option<PathBuf>,

    /// Compare this run (B) with the decision the CSV holds in column NAME for
    /// each row (A: the production system, a rules engine, a previous model),
    /// each against the human label. A value outside the label set counts as an
    /// answer of its own (never right); an empty cell as no decision. Give it
    /// again when resuming.
    #[arg(long, value_name = "NAME", help_heading = "Compare")]
    pub baseline_column: Option<String>,

    /// Errors listed in the final console summary (the JSON has them all).
    #[arg(long, value_name = "N", default_value_t = ERRORS_SHOWN, help_heading = "Files")]
    pub errors_shown: usize,

    /// Built-in mock: latency of each answer, in ms.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = MockConfig::default().latency_ms,
        help_heading = "Built-in mock"
    )]
    pub mock_latency_ms: u64,

    /// Built-in mock: how often it answers the CSV's label (0..=1).
    #[arg(
        long,
        value_name = "SHARE",
        default_value_t = MockConfig::default().accuracy,
        help_heading = "Built-in mock"
    )]
    pub mock_accuracy: f64,

    /// Built-in mock: share of requests answered with a 500 (0..=1); retries absorb
    /// them.
    #[arg(
        long,
        value_name = "SHARE",
        default_value_t = MockConfig::default().error_rate,
        help_heading = "Built-in mock"
    )]
    pub mock_error_rate: f64,

    /// Built-in mock: requests-per-minute limit, with real 429s and rate-limit
    /// headers.
    #[arg(long, value_name = "N", help_heading = "Built-in mock")]
    pub mock_rpm: Option<u32>,

    /// Built-in mock, a fault for drift tests: from 0-based data row ROW on, answer
    /// the CSV's label at ACC instead of --mock-accuracy (e.g. `1000:0.8`).
    #[arg(
        long,
        value_name = "ROW:ACC",
        value_parser = parse_accuracy_drop,
        help_heading = "Built-in mock"
    )]
    pub mock_accuracy_drop_at: Option<AccuracyDrop>,

    // Estimate and sampling: one block, for merging.
    /// Print the estimate of this run (what `shadow-batch estimate` prints:
    /// rows, images found and missing, tokens, cost, time, rows an interval
    /// needs) and exit without sending anything or writing any file.
    #[arg(long, help_heading = "Estimate and sampling")]
    pub dry_run: bool,

    /// With `estimate` or --dry-run: send ONE request to the endpoint (a
    /// text-only request for a single answer token, with your key; no row of
    /// the CSV), read the limits its answer states (OpenAI's
    /// x-ratelimit-limit-requests and -tokens; Anthropic's
    /// anthropic-ratelimit-requests-limit, -input-tokens-limit and
    /// -output-tokens-limit), print them and time the run at them (or at --rpm
    /// / --tpm when slower). Gemini and an own HTTP service state none: nothing
    /// is sent. Without this flag an estimate sends nothing.
    #[arg(long, help_heading = "Estimate and sampling")]
    pub ask_endpoint_limits: bool,

    /// Send only a uniform random sample of the CSV's rows: N rows (e.g. 5000)
    /// or a share in (0, 1] (e.g. 0.1). The sample is the first N rows of a
    /// permutation of all rows drawn from --seed; the rows go in that order, each
    /// result naming its true CSV line. Every figure is then "estimated from n
    /// of N rows", and the summary adds the agreement's interval for the whole
    /// CSV with the finite-population correction. The sample is saved with the
    /// run: --resume continues it, and --resume with a larger --sample only adds
    /// rows. Refused over a CSV whose rows changed since.
    #[arg(
        long,
        value_name = "N|SHARE",
        value_parser = shadow_core::sample::SampleSize::parse,
        help_heading = "Estimate and sampling"
    )]
    pub sample: Option<shadow_core::sample::SampleSize>,

    /// With --sample: draw the sample by label. Each label's share of the
    /// sample is its share of the CSV (every label gets one row first when the
    /// sample has at least as many rows as there are labels; the rest is
    /// rounded so that a larger sample only adds rows), each label's rows drawn
    /// at random from --seed, and the rows sent so that any part of the run
    /// already done is proportional too. Rows with a defect are a stratum of
    /// their own. The summary and the console add the agreement reweighted to
    /// the CSV's labels (sum of each label's share times its agreement) with its
    /// 95% interval (finite-population corrected, per label), and each label's
    /// rows compared of the CSV's. Kept on --resume. Requires --sample; refused
    /// with --until-interval, whose stopping rule needs rows in uniform random
    /// order.
    #[arg(long, requires = "sample", help_heading = "Estimate and sampling")]
    pub stratify: bool,

    /// Stop once the agreement is known to within ±W (0 < W < 0.5; 0.01 = ±1
    /// point): the rows go in a seeded random order (the whole CSV permuted
    /// when there is no --sample) and the run ends `completed`, reason
    /// "precision reached", after the first batch at which the agreement's
    /// anytime-valid 95% interval (a Waudby-Smith & Ramdas confidence sequence,
    /// without replacement; valid however often it is checked) is at most ±W.
    /// The summary keeps it beside the ordinary Wilson interval. --resume with a
    /// smaller W goes further. With --via batch-api the rows go in growing
    /// rounds of provider batches (the first: the rows a fixed-n ±W needs at
    /// 50% agreement, 385 at ±0.05), the interval read between rounds
    /// (docs/batch-api.md).
    #[arg(
        long,
        value_name = "W",
        value_parser = shadow_core::anytime::parse_half_width,
        help_heading = "Estimate and sampling"
    )]
    pub until_interval: Option<f64>,

    /// Do not ask the endpoint for log-probabilities. By default a run asks
    /// OpenAI-compatible endpoints (for models that are not reasoning models) and
    /// Gemini for them, and keeps each answer's confidence (the predicted label's
    /// probability and the likeliest other labels) in the results file; a model
    /// that refuses them is asked once, and the run goes on without (kept on
    /// resume). Anthropic gives none. A resumed run keeps its choice unless the
    /// flag is given.
    #[arg(long, help_heading = "Confidence")]
    pub no_confidence: bool,

    /// The agreement with the labels the model must reach on the answers it
    /// takes over (like 0.99 or 99%): the console and the summary give the
    /// lowest confidence that reaches it on this run's rows and the share of rows
    /// above it ("at confidence >= 0.93 the model agrees with the labels on 99.0%
    /// of rows (98.6-99.3%) and takes 71% of them"). A resumed run keeps it
    /// unless given again.
    #[arg(long, value_name = "SHARE", value_parser = parse_target, help_heading = "Confidence")]
    pub target_agreement: Option<f64>,

    /// Built-in mock: how far its confidences overstate its accuracy (0..=1): 0 =
    /// calibrated, 1 = every answer given as certain.
    #[arg(
        long,
        value_name = "SHARE",
        default_value_t = MockConfig::default().overconfidence,
        value_parser = parse_share,
        help_heading = "Confidence"
    )]
    pub mock_overconfidence: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("shadow-batch").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// The CLI's mock defaults are `MockConfig::default()`'s, for `mock-server`,
    /// `web` and the built-in mock of a run alike: the page and the CLI meet the
    /// same endpoint.
    #[test]
    fn mock_defaults_are_the_mock_crates() {
        let Some(Command::MockServer(args)) = parse(&["mock-server"]).command else {
            panic!("not mock-server");
        };
        assert_eq!(MockConfig::from(args), MockConfig::default());
        let Some(Command::Web(web)) = parse(&["web"]).command else {
            panic!("not web");
        };
        assert_eq!(MockConfig::from(web.mock), MockConfig::default());
        let run = parse(&["labels.csv"]).run;
        assert_eq!(
            run.builtin_mock(),
            MockConfig {
                port: 0,
                ..MockConfig::default()
            }
        );
    }

    #[test]
    fn mock_flags_are_read() {
        let Some(Command::MockServer(args)) = parse(&[
            "mock-server",
            "--rpm",
            "60",
            "--error-rate",
            "0.25",
            "--no-ratelimit-headers",
            "--slow-every",
            "7",
            "--tpm",
            "300000",
            "--image-tokens",
            "85",
        ])
        .command
        else {
            panic!("not mock-server");
        };
        let cfg = MockConfig::from(args);
        assert_eq!(cfg.rpm, Some(60));
        assert_eq!(cfg.error_rate, 0.25);
        assert!(cfg.no_ratelimit_headers);
        assert_eq!(cfg.slow_every, 7);
        assert_eq!((cfg.tpm, cfg.image_tokens), (Some(300_000), 85));
        assert!(Cli::try_parse_from(["shadow-batch", "mock-server", "--accuracy", "2"]).is_err());
        let run = parse(&["labels.csv", "--mock-latency-ms", "5", "--seed", "7"]).run;
        let mock = run.builtin_mock();
        assert_eq!((mock.latency_ms, mock.seed), (5, 7));
    }

    #[test]
    fn shares_are_validated() {
        assert_eq!(parse_share("0.3"), Ok(0.3));
        assert!(parse_share("1.5").is_err());
        assert!(parse_share("-0.1").is_err());
        assert!(parse_share("x").is_err());
    }

    #[test]
    fn an_accuracy_drop_is_row_colon_share() {
        let drop = parse_accuracy_drop("1000:0.8").unwrap();
        assert_eq!((drop.from_row, drop.accuracy), (1000, 0.8));
        for bad in ["1000", "x:0.8", "10:2", ":0.5"] {
            assert!(parse_accuracy_drop(bad).is_err(), "{bad}");
        }
        let run = parse(&["labels.csv", "--mock-accuracy-drop-at", "250:0.2"]).run;
        assert_eq!(
            run.builtin_mock().accuracy_drop,
            Some(AccuracyDrop {
                from_row: 250,
                accuracy: 0.2
            })
        );
    }
}
