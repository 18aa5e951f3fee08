//! The wasm-bindgen face of shadow-core, for the browser page. Thin on purpose:
//! every decision is the core's; this file only converts between plain JS objects
//! and the core's types. The generated `shadow_wasm.d.ts` is the contract with
//! `web/`.
//!
//! JS objects in and out (camelCase):
//! - outputs of `poll`: `{type: "send", ticket, item, attempt, image: {kind, value}, line}`,
//!   `{type: "itemDone", row, result, jsonLine}`, `{type: "batchReport", report, console}`,
//!   `{type: "finished", summary, console, exitCode}`, or `null`;
//! - inputs of `handle`: `{type: "response", ticket, response: {status, headers: [[name, value]], body}}`,
//!   `{type: "transportFailed", ticket, kind: "timeout"|"connect"|"reset"|"body", message}`,
//!   `{type: "imageFailed", ticket, message}`, `{type: "pause"}`, `{type: "resume"}`,
//!   `{type: "cancel"}`, `{type: "abandon"}`.
//!
//! Time is milliseconds since the Unix epoch, as `performance.timeOrigin +
//! performance.now()` gives it.
//!
//! Product defaults and constants come from the core through this face, never from
//! copies in the page: `defaultConfig()` (fills the settings form), the run files'
//! names, the run-id stamp, duration and percent formatting, the mock's model name,
//! each provider's default settings (`defaultProvider(kind)`) and whether a page may
//! call an endpoint (`browserAccess(provider)`, `ShadowRun.browserAccess()`).

use serde::{Deserialize, Serialize};
use shadow_core::explorer::{ResultsStream, RunFile, DEFAULT_ROW_CAP};
use shadow_core::input::{parse_labels_csv, ColumnNames};
use shadow_core::journal::fold_journal;
use shadow_core::{Input, Millis, Output, Run, RunConfig};
use wasm_bindgen::prelude::*;

mod estimate;
mod sampling;

fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))
}

/// Whole milliseconds from a JS number; 0 for negatives, NaN and infinities.
fn whole_ms(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        ms as u64
    } else {
        0
    }
}

fn millis(now: f64) -> Millis {
    Millis(whole_ms(now))
}

/// CSV columns named by the user; the rest found by common names.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Columns {
    image_column: Option<String>,
    label_column: Option<String>,
    id_column: Option<String>,
}

impl Columns {
    /// Reads `csv_text` with these columns.
    fn read(self, csv_text: &str) -> Result<shadow_core::input::LabelsCsv, JsError> {
        let names = ColumnNames {
            image: self.image_column,
            label: self.label_column,
            id: self.id_column,
        };
        parse_labels_csv(csv_text, &names).map_err(|e| JsError::new(&e.to_string()))
    }
}

/// An output of `poll` as the page reads it: the core's [`Output`] (`{type: ...,
/// ...}`) with what the page needs beside it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Polled<'a> {
    #[serde(flatten)]
    output: &'a Output,
    /// `send`: the item's image and CSV line.
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a shadow_core::input::ImageRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    /// `itemDone`: the journal record, and its line.
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<shadow_core::journal::ItemResult<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    json_line: Option<String>,
    /// `batchReport` and `finished`: the console text.
    #[serde(skip_serializing_if = "Option::is_none")]
    console: Option<String>,
    /// `finished`: the CLI's exit code for this outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<u8>,
}

/// One shadow run, driven by the page.
#[wasm_bindgen]
pub struct ShadowRun {
    run: Run,
}

#[wasm_bindgen]
impl ShadowRun {
    /// A run over `csvText` with `config` (a `RunConfig` in camelCase, plus optional
    /// `imageColumn`, `labelColumn`, `idColumn`, and `sampleSize` and `resuming`
    /// for a sampled run, see `runSample`) starting at `now`.
    #[wasm_bindgen(constructor)]
    pub fn new(csv_text: &str, config: JsValue, now: f64) -> Result<ShadowRun, JsError> {
        let (csv, config) = sampling::run_rows(csv_text, &config)?;
        if config.batch_api.is_some() {
            // The page drives live runs only: run live, the rows a provider
            // batch of this run may still hold would be sent (and paid) again.
            return Err(JsError::new(
                "this run goes through a provider's batch API, which only the CLI drives:                  continue it with shadow-batch --resume FILE",
            ));
        }
        let run = Run::new(config, csv, millis(now)).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(ShadowRun { run })
    }

    /// The API key the page sends: any echo of it in an answer or an error is
    /// redacted before the run keeps or reports it.
    #[wasm_bindgen(js_name = hideSecret)]
    pub fn hide_secret(&mut self, secret: &str) {
        self.run.hide_secret(secret);
    }

    /// Takes the finished results of an earlier session (results JSONL text; a torn
    /// last line is ignored). Returns how many rows were taken.
    pub fn restore(&mut self, journal: &str, retry_failed: bool) -> Result<usize, JsError> {
        let mut folded = fold_journal(journal);
        folded.prepare_resume(retry_failed);
        self.run
            .restore(folded.results)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Feeds an event in: a core `Input` as JSON (see the crate docs). An answer
    /// to a request the run abandoned is taken and ignored.
    pub fn handle(&mut self, now: f64, input: JsValue) -> Result<(), JsError> {
        let input: Input = serde_wasm_bindgen::from_value(input)
            .map_err(|e| JsError::new(&format!("bad input: {e}")))?;
        self.run
            .handle(millis(now), input)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// The next thing to do, or `null`.
    pub fn poll(&mut self, now: f64) -> Result<JsValue, JsError> {
        let Some(output) = self.run.poll(millis(now)) else {
            return Ok(JsValue::NULL);
        };
        let mut polled = Polled {
            output: &output,
            image: None,
            line: None,
            result: None,
            json_line: None,
            console: None,
            exit_code: None,
        };
        match &output {
            // The page's run holds the CSV it was given whole: it never asks.
            Output::NeedRows { .. } => {}
            Output::Send(order) => {
                let item = self.run.item(order.item);
                polled.image = Some(&item.image);
                polled.line = Some(item.line);
            }
            Output::ItemDone(done) => {
                let result = self.run.result(done);
                polled.json_line = Some(result.to_json_line());
                polled.result = Some(result);
            }
            Output::BatchReport { report } => polled.console = Some(report.to_console()),
            Output::Finished { summary } => {
                polled.console = Some(summary.to_console(shadow_core::report::ERRORS_SHOWN));
                polled.exit_code = Some(summary.exit_code());
            }
        }
        to_js(&polled)
    }

    /// When to poll again if nothing arrives (ms since the epoch), or `undefined`.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.run.poll_timeout().map(|t| t.0 as f64)
    }

    /// The header that carries `key` to this run's provider, as `[name, value]`:
    /// `authorization: Bearer KEY` (OpenAI, generic JSON), `x-api-key` (Anthropic),
    /// `x-goog-api-key` (Gemini), `api-key` (Azure). The page adds it to each
    /// request; the core keeps nothing of it.
    #[wasm_bindgen(js_name = credentialHeader)]
    pub fn credential_header(&self, key: &str) -> Result<JsValue, JsError> {
        let (name, value) = self.run.request_template().credential_header(key);
        to_js(&[name, value.as_str()])
    }

    /// Whether the page may call this run's endpoint, and what it adds to each
    /// request: `{cors: "allowed"|"refused"|"unknown", headers: [[name, value]],
    /// host}` (see `Provider::browser_access` in the core).
    #[wasm_bindgen(js_name = browserAccess)]
    pub fn browser_access(&self) -> Result<JsValue, JsError> {
        to_js(&self.run.config().provider.browser_access())
    }

    /// The URL this run's requests are POSTed to (with any credential in it: for
    /// the page's own requests only, never to show).
    #[wasm_bindgen(js_name = endpointUrl)]
    pub fn endpoint_url(&self) -> String {
        self.run.request_template().url().to_owned()
    }

    /// The HTTP request for a send order, with the image as `imageUrl` (an http(s)
    /// URL or a data URL) and the order's `format` (`"jsonSchema"`, `"jsonObject"`,
    /// `"text"`; the run's current one when left out), asking for
    /// log-probabilities when the order's `confidence` says so (the run's current
    /// choice when left out). `{method, url, headers: [[name, value]], body}`; the
    /// page adds the API key with `credentialHeader`.
    pub fn request(
        &self,
        item: usize,
        attempt: u32,
        image_url: &str,
        format: Option<String>,
        confidence: Option<bool>,
    ) -> Result<JsValue, JsError> {
        if item >= self.run.row_count() {
            return Err(JsError::new(&format!("no item {item}")));
        }
        let format = match format {
            None => self.run.output_format(),
            Some(f) => serde_json::from_value(serde_json::Value::String(f.clone()))
                .map_err(|_| JsError::new(&format!("unknown output format {f:?}")))?,
        };
        let id = self.run.item(item).id.as_deref();
        let confidence = confidence.unwrap_or_else(|| self.run.asks_confidence());
        let r = self
            .run
            .request_template()
            .build_for(image_url, attempt, id, format, confidence);
        to_js(&serde_json::json!({
            "method": r.method, "url": r.url, "headers": r.headers, "body": r.body,
        }))
    }

    /// Reads an endpoint's 2xx answer the way the run does: `{label, usage}`, or a
    /// JS error saying what is wrong with it (refusal, malformed, label outside the
    /// set, error body).
    #[wasm_bindgen(js_name = parseAnswer)]
    pub fn parse_answer(&self, body: &str) -> Result<JsValue, JsError> {
        let answer = self
            .run
            .config()
            .provider
            .parse_answer(body, self.run.labels())
            .map_err(|e| JsError::new(&e.to_string()))?;
        to_js(&serde_json::json!({
            "label": self.run.labels().names()[answer.label],
            "usage": answer.usage,
        }))
    }

    /// The progress file's content as of `now`.
    pub fn progress(&self, now: f64) -> Result<JsValue, JsError> {
        to_js(&self.run.progress(millis(now)))
    }

    /// Live counts: `{total, successful, failed, agreements, inFlight, doneThisSession,
    /// resumed, retries, rateLimitHits}`.
    pub fn counts(&self) -> Result<JsValue, JsError> {
        to_js(&self.run.counts())
    }

    /// What paces request starts as of `now`: `{source, requestsPerMinute,
    /// inFlightLimit, coolingDownUntil}`, `source` one of `"userCap"`,
    /// `"endpointHeaders"`, `"learned"`, or `null` while no rate applies.
    pub fn pace(&self, now: f64) -> Result<JsValue, JsError> {
        to_js(&self.run.pace(millis(now)))
    }

    /// The pace as of `now` in the core's words, the line the CLI's progress bar
    /// shows: `pace: 240/min from the endpoint, up to 12 in flight (50 ms a request)`.
    #[wasm_bindgen(js_name = describePace)]
    pub fn describe_pace(&self, now: f64) -> String {
        self.run.pace(millis(now)).describe()
    }

    /// True while paused.
    #[wasm_bindgen(js_name = isPaused)]
    pub fn is_paused(&self) -> bool {
        self.run.is_paused()
    }

    /// Number of rows.
    #[wasm_bindgen(js_name = itemCount)]
    pub fn item_count(&self) -> usize {
        self.run.row_count()
    }

    /// The CSV's label set, sorted.
    pub fn labels(&self) -> Result<JsValue, JsError> {
        to_js(self.run.labels().names())
    }

    /// Compares the run (B) with the incumbent's decision in the CSV's column
    /// `name` (A) as its rows become final (`--baseline-column`); before the first
    /// `poll` and before `restore` (restored rows are compared too). Throws for a
    /// column the CSV lacks (naming the others) and for a run already going.
    #[wasm_bindgen(js_name = compareWithColumn)]
    pub fn compare_with_column(&mut self, name: &str) -> Result<(), JsError> {
        self.run
            .compare_with(shadow_core::compare::Baseline::Column(name.to_owned()))
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// The comparison with the baseline so far (the summary's `comparison`:
    /// figures, no row lists), or `null` for a run without one.
    pub fn comparison(&self, now: f64) -> Result<JsValue, JsError> {
        to_js(&self.run.summary(millis(now)).comparison)
    }

    /// Relative image paths the CSV names (for checking the chosen images folder).
    #[wasm_bindgen(js_name = relativePaths)]
    pub fn relative_paths(&self) -> Vec<String> {
        (0..self.run.row_count())
            .map(|row| self.run.item(row))
            .filter_map(|i| match &i.image {
                shadow_core::input::ImageRef::RelativePath(p) => Some(p.to_string()),
                _ => None,
            })
            .collect()
    }
}

/// The journal a resumed run starts from: the results JSONL `journal` folded to one
/// line per row (the last line for a row wins; a torn last line and unusable lines
/// are left out) and, with `retryFailed`, without the failed rows, so that they run
/// again. The page stores this in place of the old journal and hands it to
/// `ShadowRun.restore`.
#[wasm_bindgen(js_name = prepareJournal)]
pub fn prepare_journal(journal: &str, retry_failed: bool) -> String {
    let mut folded = fold_journal(journal);
    folded.prepare_resume(retry_failed);
    folded.results.iter().map(|r| r.to_json_line()).collect()
}

/// What a labels CSV holds, for the page's check before a run:
/// `{rows, labels, defective, urls, absolute, relative: [[row, path]], extraColumns}`
/// (`extraColumns`: the columns beside image, label and id, e.g. a baseline; `urls`
/// counts http(s) and data URLs; rows with a defect are counted only in
/// `defective`). `columns` is `{imageColumn, labelColumn, idColumn}` or
/// `undefined`. With the run's `settings` (as `ShadowRun` takes them), the rows
/// are the run's: a sampled run's, numbered as its results number them, and
/// `csvRows` the CSV's. A CSV that cannot be read is a JS error saying why.
#[wasm_bindgen(js_name = inspectCsv)]
pub fn inspect_csv(
    csv_text: &str,
    columns: JsValue,
    settings: JsValue,
) -> Result<JsValue, JsError> {
    use shadow_core::input::ImageRef;
    let columns: Columns = if columns.is_undefined() || columns.is_null() {
        Columns::default()
    } else {
        serde_wasm_bindgen::from_value(columns)
            .map_err(|e| JsError::new(&format!("bad columns: {e}")))?
    };
    let csv = columns.read(csv_text)?;
    let csv_rows = csv.items.len();
    let csv = if settings.is_undefined() || settings.is_null() {
        csv
    } else {
        let mut config: RunConfig = serde_wasm_bindgen::from_value(settings.clone())
            .map_err(|e| JsError::new(&format!("bad settings: {e}")))?;
        sampling::SampleAsk::read(&settings)?.rows(csv, &mut config)?
    };
    let (mut defective, mut urls, mut absolute) = (0, 0, 0);
    let mut relative = Vec::new();
    for item in &csv.items {
        match &item.image {
            _ if item.defect.is_some() => defective += 1,
            ImageRef::Url(_) | ImageRef::DataUrl(_) => urls += 1,
            ImageRef::RelativePath(p) => relative.push((item.row, p.to_string())),
            // Absolute paths, which a browser cannot read.
            _ => absolute += 1,
        }
    }
    to_js(&serde_json::json!({
        "rows": csv.items.len(), "csvRows": csv_rows, "labels": csv.outline.labels.names(), "defective": defective,
        "urls": urls, "absolute": absolute, "relative": relative,
        "extraColumns": csv.outline.extra_columns,
    }))
}

/// `data:image/...;base64,...` from an image file's bytes (type from its magic
/// bytes; at most 20 MiB).
#[wasm_bindgen(js_name = imageDataUrl)]
pub fn image_data_url(bytes: &[u8]) -> Result<String, JsError> {
    shadow_core::image::to_data_url(bytes).map_err(|e| JsError::new(&e.to_string()))
}

/// The normalized form of a relative image path, or an error if it leaves the
/// images folder.
#[wasm_bindgen(js_name = checkRelativePath)]
pub fn check_relative_path(path: &str) -> Result<String, JsError> {
    shadow_core::input::check_relative_path(path).map_err(|e| JsError::new(&e.to_string()))
}

/// `RunConfig::default()` as a plain object (camelCase, the shape `ShadowRun` takes):
/// the product's defaults, which the page's settings form starts from.
#[wasm_bindgen(js_name = defaultConfig)]
pub fn default_config() -> Result<JsValue, JsError> {
    to_js(&RunConfig::default())
}

/// The endpoint settings a run against `kind` (`"openai"`, `"anthropic"`,
/// `"gemini"`, `"azure"`) starts from, as a plain object (`{kind, baseUrl, model,
/// ...}`, the shape of `RunConfig.provider`): the public API and its default model;
/// for Azure an empty resource and deployment. `undefined` for `"mock"` and
/// `"http"`; a JS error for an unknown kind.
#[wasm_bindgen(js_name = defaultProvider)]
pub fn default_provider(kind: &str) -> Result<JsValue, JsError> {
    let kind: shadow_core::EndpointKind =
        serde_json::from_value(serde_json::Value::String(kind.to_owned()))
            .map_err(|_| JsError::new(&format!("unknown provider {kind:?}")))?;
    match kind.default_provider() {
        Some(provider) => to_js(&provider),
        None => Ok(JsValue::UNDEFINED),
    }
}

/// Whether a page may call the endpoint of `provider` (a `RunConfig.provider`
/// object) and what it adds to each request: `{cors, headers, host}` as
/// `ShadowRun.browserAccess()` says, before a run exists (the check before Start).
#[wasm_bindgen(js_name = browserAccess)]
pub fn browser_access(provider: JsValue) -> Result<JsValue, JsError> {
    let provider: shadow_core::provider::Provider = serde_wasm_bindgen::from_value(provider)
        .map_err(|e| JsError::new(&format!("bad provider settings: {e}")))?;
    to_js(&provider.browser_access())
}

/// Each numeric setting's allowed range, by its config field name:
/// `{ batchSize: { min, max }, ... }` (the page's form limits).
#[wasm_bindgen(js_name = settingBounds)]
pub fn setting_bounds() -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    struct Bounds {
        min: u64,
        max: u64,
    }
    let bounds: std::collections::BTreeMap<&str, Bounds> = shadow_core::Setting::ALL
        .iter()
        .map(|s| {
            let (min, max) = s.bounds();
            (s.field(), Bounds { min, max })
        })
        .collect();
    to_js(&bounds)
}

/// The progress file's name for a run id: `shadow-mode-batch-progress-{runId}.json`.
#[wasm_bindgen(js_name = progressFileName)]
pub fn progress_file_name(run_id: &str) -> String {
    shadow_core::run_files::progress_file_name(run_id)
}

/// The final summary's file name for a run id: `shadow-mode-batch-{runId}.json`.
#[wasm_bindgen(js_name = summaryFileName)]
pub fn summary_file_name(run_id: &str) -> String {
    shadow_core::run_files::summary_file_name(run_id)
}

/// The results journal's file name for a run id: `shadow-mode-batch-results-{runId}.jsonl`.
#[wasm_bindgen(js_name = resultsFileName)]
pub fn results_file_name(run_id: &str) -> String {
    shadow_core::run_files::results_file_name(run_id)
}

/// The run id of a run started at `ms` (since the epoch): `2025-01-24T10-30-00-000Z`.
#[wasm_bindgen(js_name = fileStamp)]
pub fn file_stamp(ms: f64) -> String {
    millis(ms).to_file_stamp()
}

/// A duration for people, as the console words it: `45s`, `2m 15s`, `1h 5m 3s`.
#[wasm_bindgen(js_name = formatDuration)]
pub fn format_duration(ms: f64) -> String {
    shadow_core::time::format_duration(whole_ms(ms))
}

/// `part` of `whole` as the reports word it: `"96.00%"`; `"0.00%"` when `whole` is 0.
#[wasm_bindgen]
pub fn percent(part: usize, whole: usize) -> String {
    shadow_core::report::percent(part, whole)
}

/// The results explorer's data (`shadow_core::explorer`), the same shape the CLI
/// embeds in its HTML report, from whichever of a run's files the page has: the
/// summary and progress as JSON text (or `undefined`), the results JSONL text (or
/// `undefined`; a torn last line is ignored). `live`: the run is still going.
/// `csvLabels`: the CSV's label set (`ShadowRun.labels()`), or `undefined`.
#[wasm_bindgen(js_name = explorerData)]
pub fn explorer_data(
    summary: Option<String>,
    progress: Option<String>,
    results: Option<String>,
    live: bool,
    csv_labels: Option<Vec<String>>,
) -> Result<JsValue, JsError> {
    let folded = results.as_deref().map(fold_journal);
    let data = shadow_core::explorer::build(shadow_core::explorer::ExplorerInput {
        summary: summary.as_deref(),
        progress: progress.as_deref(),
        results: folded.as_ref(),
        live,
        csv_labels: csv_labels.as_deref(),
        row_cap: None,
    })
    .map_err(|e| JsError::new(&e.to_string()))?;
    to_js(&data)
}

/// The results explorer's data for a finished run opened from its files, its
/// results file read in chunks (`File.stream()`), never whole: a run of any size
/// opens, its table holding at most [`DEFAULT_ROW_CAP`] rows (every disagreement
/// and failure and a seeded sample of the agreeing rows, a note saying so) and its
/// figures computed from every row.
///
/// ```js
/// const stream = new ExplorerStream(summaryText, progressText, runId);
/// do { for each chunk of the results file: stream.push(chunk) } while (stream.endPass());
/// const data = stream.finish();
/// ```
/// `endPass` asks for a second pass only when a row is written twice (a resumed run
/// killed before it rewrote its journal): its last line counts.
#[wasm_bindgen]
pub struct ExplorerStream(ResultsStream);

#[wasm_bindgen]
impl ExplorerStream {
    /// Over the run's summary and progress texts (either may be `undefined`);
    /// `runId` from the files' names, when known. Throws when a text is not such a
    /// file.
    #[wasm_bindgen(constructor)]
    pub fn new(
        summary: Option<String>,
        progress: Option<String>,
        run_id: Option<String>,
    ) -> Result<ExplorerStream, JsError> {
        let err = |e: shadow_core::explorer::ExplorerError| JsError::new(&e.to_string());
        let summary = summary
            .as_deref()
            .map(RunFile::summary)
            .transpose()
            .map_err(err)?;
        let progress = progress
            .as_deref()
            .map(RunFile::progress)
            .transpose()
            .map_err(err)?;
        Ok(ExplorerStream(ResultsStream::of_finished_run(
            summary,
            progress,
            run_id,
            DEFAULT_ROW_CAP,
        )))
    }

    /// The next bytes of the results file.
    pub fn push(&mut self, chunk: &[u8]) {
        self.0.push(chunk);
    }

    /// The end of the results file. `true`: read it once more, from its start.
    #[wasm_bindgen(js_name = endPass)]
    pub fn end_pass(&mut self) -> bool {
        self.0.end_pass()
    }

    /// The explorer's data (after the last `endPass`, or without a results file).
    pub fn finish(self) -> Result<JsValue, JsError> {
        to_js(&self.0.finish())
    }
}

/// The self-contained HTML report of a run the page holds (the CLI's report,
/// `shadow_core::explorer::html`): from its summary and progress as JSON text (or
/// `undefined`) and its results JSONL text (or `undefined`); `runId` when no file
/// gives it. Throws when a text is not such a file.
#[wasm_bindgen(js_name = reportHtml)]
pub fn report_html(
    summary: Option<String>,
    progress: Option<String>,
    results: Option<String>,
    run_id: Option<String>,
) -> Result<String, JsError> {
    shadow_core::explorer::html::page_report(
        summary.as_deref(),
        progress.as_deref(),
        results.as_deref().map(str::as_bytes),
        run_id,
    )
    .map_err(|e| JsError::new(&e.to_string()))
}

/// The HTML report's file name for a run id: `shadow-mode-batch-report-{runId}.html`.
#[wasm_bindgen(js_name = reportFileName)]
pub fn report_file_name(run_id: &str) -> String {
    shadow_core::run_files::report_file_name(run_id)
}

/// The run id in the name of one of a run's files, or `undefined`.
#[wasm_bindgen(js_name = runIdOfFileName)]
pub fn run_id_of_file_name(name: &str) -> Option<String> {
    shadow_core::run_files::run_id_of_file_name(name).map(str::to_owned)
}

/// The model name of the built-in mock endpoint.
#[wasm_bindgen(js_name = mockModel)]
pub fn mock_model() -> String {
    shadow_core::provider::MOCK_MODEL.to_owned()
}

/// Two finished (or stopped) runs compared, as `shadow-batch compare A B` does,
/// from the files the page holds: each run's summary and progress texts and its
/// results file read in chunks, never whole.
///
/// ```js
/// const c = new CompareRuns(summaryA, progressA, summaryB, progressB);
/// for each chunk of A's results: c.pushA(chunk); of B's: c.pushB(chunk);
/// const mismatch = c.pair();        // a sentence, or undefined
/// if (c.wantsRows()) for each chunk of A's results again: c.pushRows(chunk);
/// const comparison = c.finish(allowPartial);
/// ```
#[wasm_bindgen]
pub struct CompareRuns {
    info: [Option<shadow_core::compare::RunInfo>; 2],
    journals: [Option<shadow_core::compare::JournalRows>; 2],
    paired: Option<shadow_core::compare::PairedRuns>,
    details: Option<shadow_core::compare::RowDetails>,
}

/// A run's facts from its summary and progress texts (either may be missing).
fn run_info(
    summary: Option<String>,
    progress: Option<String>,
    side: &str,
) -> Result<shadow_core::compare::RunInfo, JsError> {
    use shadow_core::compare::RunInfo;
    let err = |e: shadow_core::compare::CompareError| JsError::new(&format!("{side}: {e}"));
    let summary = summary
        .map(|t| RunInfo::from_summary(t.as_bytes()))
        .transpose()
        .map_err(err)?;
    let progress = progress
        .map(|t| RunInfo::from_progress(t.as_bytes()))
        .transpose()
        .map_err(err)?;
    Ok(match (summary, progress) {
        (Some(s), Some(p)) => s.or(p),
        (Some(info), None) | (None, Some(info)) => info,
        (None, None) => RunInfo::default(),
    })
}

#[wasm_bindgen]
impl CompareRuns {
    /// Over A's and B's summary and progress texts (each may be `undefined`).
    /// Throws when a text is not such a file.
    #[wasm_bindgen(constructor)]
    pub fn new(
        summary_a: Option<String>,
        progress_a: Option<String>,
        summary_b: Option<String>,
        progress_b: Option<String>,
    ) -> Result<CompareRuns, JsError> {
        use shadow_core::compare::JournalRows;
        Ok(CompareRuns {
            info: [
                Some(run_info(summary_a, progress_a, "A")?),
                Some(run_info(summary_b, progress_b, "B")?),
            ],
            journals: [Some(JournalRows::new()), Some(JournalRows::new())],
            paired: None,
            details: None,
        })
    }

    /// The next bytes of A's results file.
    #[wasm_bindgen(js_name = pushA)]
    pub fn push_a(&mut self, chunk: &[u8]) {
        if let Some(j) = &mut self.journals[0] {
            j.push(chunk);
        }
    }

    /// The next bytes of B's results file.
    #[wasm_bindgen(js_name = pushB)]
    pub fn push_b(&mut self, chunk: &[u8]) {
        if let Some(j) = &mut self.journals[1] {
            j.push(chunk);
        }
    }

    /// Matches the rows of A and B (after their results files): `undefined`, or
    /// why the runs do not look like runs over the same CSV (with the counts).
    pub fn pair(&mut self) -> Result<Option<String>, JsError> {
        let (Some(a), Some(b)) = (self.journals[0].take(), self.journals[1].take()) else {
            return Err(JsError::new(
                "pair() is called once, after the results files",
            ));
        };
        let (rows_a, rows_b) = (a.finish(), b.finish());
        if rows_a.is_empty() || rows_b.is_empty() {
            let side = if rows_a.is_empty() { "A" } else { "B" };
            return Err(JsError::new(&format!(
                "{side} has no results rows to compare (choose its results file, shadow-mode-batch-results-….jsonl)"
            )));
        }
        let caps = shadow_core::compare::RowCaps {
            per_cell: 1_000,
            table: DEFAULT_ROW_CAP,
        };
        let [info_a, info_b] = [self.info[0].take(), self.info[1].take()];
        let paired = shadow_core::compare::PairedRuns::pair(
            &rows_a,
            info_a.unwrap_or_default(),
            &rows_b,
            info_b.unwrap_or_default(),
            caps,
        );
        let mismatch = paired.mismatch();
        self.details = Some(paired.details());
        self.paired = Some(paired);
        Ok(mismatch)
    }

    /// Whether the rows to show need A's results file once more (`pushRows`).
    #[wasm_bindgen(js_name = wantsRows)]
    pub fn wants_rows(&self) -> bool {
        self.details.as_ref().is_some_and(|d| d.wants_rows())
    }

    /// The next bytes of A's results file, read again for the rows' text.
    #[wasm_bindgen(js_name = pushRows)]
    pub fn push_rows(&mut self, chunk: &[u8]) {
        if let Some(d) = &mut self.details {
            d.push(chunk);
        }
    }

    /// The comparison (`shadow_core::compare::Comparison`, as the CLI's JSON);
    /// `allowPartial` compares the matching rows of runs `pair` found mismatched.
    pub fn finish(self, allow_partial: bool) -> Result<JsValue, JsError> {
        let (Some(paired), Some(details)) = (self.paired, self.details) else {
            return Err(JsError::new("finish() comes after pair()"));
        };
        if let (Some(why), false) = (paired.mismatch(), allow_partial) {
            return Err(JsError::new(&why));
        }
        to_js(&paired.finish(details, allow_partial))
    }
}

/// The self-contained HTML of a comparison (`comparison` as `CompareRuns.finish`
/// gives it): the explorer's compare view, thumbnails by the images' paths
/// relative to the file's folder (as the page's run report).
#[wasm_bindgen(js_name = comparisonHtml)]
pub fn comparison_html(comparison: JsValue) -> Result<String, JsError> {
    let comparison: shadow_core::compare::Comparison =
        serde_wasm_bindgen::from_value(comparison)
            .map_err(|e| JsError::new(&format!("not a comparison: {e}")))?;
    let mut report = shadow_core::explorer::html::ComparisonReport::new(&comparison);
    report.thumbnails.base = Some(String::new());
    Ok(shadow_core::explorer::html::render_comparison_html(&report))
}

/// The comparison files' name for two run ids: `shadow-mode-batch-compare-{a}-vs-{b}.json`.
#[wasm_bindgen(js_name = compareFileName)]
pub fn compare_file_name(a: &str, b: &str) -> String {
    shadow_core::run_files::compare_file_name(a, b)
}
