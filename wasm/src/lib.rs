//! The wasm-bindgen face of shadow-core, for the browser page. Thin on purpose:
//! every decision is the core's; this file only converts between plain JS objects
//! and the core's types. The generated `shadow_wasm.d.ts` is the contract with
//! `web/`.
//!
//! JS objects in and out (camelCase):
//! - outputs of `poll`: `{type: "send", ticket, item, attempt, image: {kind, value}, line}`,
//!   `{type: "itemDone", row, result, jsonLine}`, `{type: "batchReport", report, console}`,
//!   `{type: "finished", summary, console, exitCode}`, or `null`;
//! - inputs of `handle`: `{type: "response", ticket, status, headers: [[name, value]], body}`,
//!   `{type: "transportFailed", ticket, kind: "timeout"|"connect"|"reset"|"body", message}`,
//!   `{type: "imageFailed", ticket, message}`, `{type: "pause"}`, `{type: "resume"}`,
//!   `{type: "cancel"}`, `{type: "abandon"}`.
//!
//! Time is milliseconds since the Unix epoch, as `performance.timeOrigin +
//! performance.now()` gives it.
//!
//! Product defaults and constants come from the core through this face, never from
//! copies in the page: `defaultConfig()` (fills the settings form), the run files'
//! names, the run-id stamp, duration and percent formatting, the mock's model name.

use serde::{Deserialize, Serialize};
use shadow_core::http::{HttpResponse, TransportErrorKind};
use shadow_core::input::{parse_labels_csv, ColumnNames};
use shadow_core::journal::fold_journal;
use shadow_core::report::Summary;
use shadow_core::{Input, Millis, Output, Run, RunConfig, SendOrder, Ticket};
use wasm_bindgen::prelude::*;

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

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum JsInput {
    Response {
        ticket: u64,
        status: u16,
        #[serde(default)]
        headers: Vec<(String, String)>,
        #[serde(default)]
        body: String,
    },
    TransportFailed {
        ticket: u64,
        kind: TransportErrorKind,
        #[serde(default)]
        message: String,
    },
    ImageFailed {
        ticket: u64,
        message: String,
    },
    Pause,
    Resume,
    Cancel,
    Abandon,
}

// Built and serialized at once, never stored: the size of its variants is no matter.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum JsOutput<'a> {
    #[serde(rename_all = "camelCase")]
    Send {
        ticket: u64,
        item: usize,
        attempt: u32,
        image: &'a shadow_core::input::ImageRef,
        line: u64,
    },
    #[serde(rename_all = "camelCase")]
    ItemDone {
        row: usize,
        result: shadow_core::journal::ItemResult<'a>,
        json_line: String,
    },
    BatchReport {
        report: &'a shadow_core::report::BatchReport,
        console: String,
    },
    #[serde(rename_all = "camelCase")]
    Finished {
        summary: &'a Summary,
        console: String,
        exit_code: u8,
    },
}

/// One shadow run, driven by the page.
#[wasm_bindgen]
pub struct ShadowRun {
    run: Run,
}

#[wasm_bindgen]
impl ShadowRun {
    /// A run over `csvText` with `config` (a `RunConfig` in camelCase, plus optional
    /// `imageColumn`, `labelColumn`, `idColumn`) starting at `now`.
    #[wasm_bindgen(constructor)]
    pub fn new(csv_text: &str, config: JsValue, now: f64) -> Result<ShadowRun, JsError> {
        let columns: Columns = serde_wasm_bindgen::from_value(config.clone())
            .map_err(|e| JsError::new(&format!("bad settings: {e}")))?;
        let config: RunConfig = serde_wasm_bindgen::from_value(config)
            .map_err(|e| JsError::new(&format!("bad settings: {e}")))?;
        let csv = parse_labels_csv(
            csv_text,
            &ColumnNames {
                image: columns.image_column,
                label: columns.label_column,
                id: columns.id_column,
            },
        )
        .map_err(|e| JsError::new(&e.to_string()))?;
        let run = Run::new(config, csv, millis(now)).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(ShadowRun { run })
    }

    /// Takes the finished results of an earlier session (results JSONL text; a torn
    /// last line is ignored). Returns how many rows were taken.
    pub fn restore(&mut self, journal: &str, retry_failed: bool) -> Result<usize, JsError> {
        let folded = fold_journal(journal);
        self.run
            .restore(folded.results, retry_failed)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Feeds an event in (see the crate docs for the shapes).
    pub fn handle(&mut self, now: f64, input: JsValue) -> Result<(), JsError> {
        let input: JsInput = serde_wasm_bindgen::from_value(input)
            .map_err(|e| JsError::new(&format!("bad input: {e}")))?;
        let input = match input {
            JsInput::Response {
                ticket,
                status,
                headers,
                body,
            } => Input::Response {
                ticket: Ticket(ticket),
                response: HttpResponse {
                    status,
                    headers,
                    body,
                },
            },
            JsInput::TransportFailed {
                ticket,
                kind,
                message,
            } => Input::TransportFailed {
                ticket: Ticket(ticket),
                kind,
                message,
            },
            JsInput::ImageFailed { ticket, message } => Input::ImageFailed {
                ticket: Ticket(ticket),
                message,
            },
            JsInput::Pause => Input::Pause,
            JsInput::Resume => Input::Resume,
            JsInput::Cancel => Input::Cancel,
            JsInput::Abandon => Input::Abandon,
        };
        self.run
            .handle(millis(now), input)
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// The next thing to do, or `null`.
    pub fn poll(&mut self, now: f64) -> Result<JsValue, JsError> {
        let Some(output) = self.run.poll(millis(now)) else {
            return Ok(JsValue::NULL);
        };
        match output {
            Output::Send(order) => {
                let item = self.run.item(order.item);
                to_js(&JsOutput::Send {
                    ticket: order.ticket.0,
                    item: order.item,
                    attempt: order.attempt,
                    image: &item.image,
                    line: item.line,
                })
            }
            Output::ItemDone(done) => {
                let result = self.run.result(&done);
                let json_line = result.to_json_line();
                to_js(&JsOutput::ItemDone {
                    row: done.row,
                    result,
                    json_line,
                })
            }
            Output::BatchReport(report) => to_js(&JsOutput::BatchReport {
                console: report.to_console(),
                report: &report,
            }),
            Output::Finished(summary) => to_js(&JsOutput::Finished {
                console: summary.to_console(20),
                exit_code: summary.exit_code(),
                summary: &summary,
            }),
            _ => Ok(JsValue::NULL),
        }
    }

    /// When to poll again if nothing arrives (ms since the epoch), or `undefined`.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.run.poll_timeout().map(|t| t.0 as f64)
    }

    /// The HTTP request for a send order, with the image as `imageUrl` (an http(s)
    /// URL or a data URL). `{method, url, headers: [[name, value]], body}`; the page
    /// adds the API key.
    pub fn request(
        &self,
        ticket: u64,
        item: usize,
        attempt: u32,
        image_url: &str,
    ) -> Result<JsValue, JsError> {
        if item >= self.run.items().len() {
            return Err(JsError::new(&format!("no item {item}")));
        }
        let order = SendOrder {
            ticket: Ticket(ticket),
            item,
            attempt,
        };
        let r = self.run.request(&order, image_url);
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

    /// Live counts: `{total, successful, failed, agreements, inFlight, doneThisSession, resumed}`.
    pub fn counts(&self) -> Result<JsValue, JsError> {
        to_js(&self.run.counts())
    }

    /// True while paused.
    #[wasm_bindgen(js_name = isPaused)]
    pub fn is_paused(&self) -> bool {
        self.run.is_paused()
    }

    /// Number of rows.
    #[wasm_bindgen(js_name = itemCount)]
    pub fn item_count(&self) -> usize {
        self.run.items().len()
    }

    /// The CSV's label set, sorted.
    pub fn labels(&self) -> Result<JsValue, JsError> {
        to_js(self.run.labels().names())
    }

    /// Relative image paths the CSV names (for checking the chosen images folder).
    #[wasm_bindgen(js_name = relativePaths)]
    pub fn relative_paths(&self) -> Vec<String> {
        self.run
            .items()
            .iter()
            .filter_map(|i| match &i.image {
                shadow_core::input::ImageRef::RelativePath(p) => Some(p.to_string()),
                _ => None,
            })
            .collect()
    }
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

/// The model name of the built-in mock endpoint.
#[wasm_bindgen(js_name = mockModel)]
pub fn mock_model() -> String {
    shadow_core::provider::MOCK_MODEL.to_owned()
}
