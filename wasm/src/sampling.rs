//! A sampled run on the page (`--sample`, `--until-interval`): the page's
//! settings object may carry `sampleSize` (the Sample field's text, read as
//! `--sample` reads it), `stratify` (as `--stratify`) and `resuming` (the run continues a stored one) beside
//! the `RunConfig`; the rows are drawn by the core
//! ([`shadow_core::sample::Sample::for_run`]), so the same CSV, seed and size
//! give the rows the CLI's `--sample` gives.

use serde::{Deserialize, Serialize};
use shadow_core::input::LabelsCsv;
use shadow_core::sample::{Sample, SampleSize};
use shadow_core::RunConfig;
use wasm_bindgen::prelude::*;

use crate::{millis, to_js, Columns, ShadowRun};

/// What the page asks of the rows, beside the `RunConfig`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SampleAsk {
    /// The Sample field's text: rows (`5000`) or a share (`0.1`); empty: none.
    sample_size: Option<String>,
    /// The run continues a stored one (its `sample` is in the config).
    resuming: bool,
    /// Draw the sample by label, each label its share (as `--stratify`).
    stratify: bool,
}

impl SampleAsk {
    pub(crate) fn read(settings: &JsValue) -> Result<SampleAsk, JsError> {
        if settings.is_undefined() || settings.is_null() {
            return Ok(SampleAsk::default());
        }
        serde_wasm_bindgen::from_value(settings.clone())
            .map_err(|e| JsError::new(&format!("bad settings: {e}")))
    }

    /// The size asked, read as `--sample` reads it (its words on error).
    fn size(&self) -> Result<Option<SampleSize>, JsError> {
        self.sample_size
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(SampleSize::parse)
            .transpose()
            .map_err(|e| JsError::new(&e))
    }

    /// The rows the run is made of: `csv` as it is, or, for a sample or a
    /// random order (`untilInterval`), its seeded sample, kept in
    /// `config.sample` (the seed a resumed run's).
    pub(crate) fn rows(
        &self,
        csv: LabelsCsv,
        config: &mut RunConfig,
    ) -> Result<LabelsCsv, JsError> {
        if let Some(w) = config.until_interval {
            shadow_core::anytime::check_half_width(w).map_err(|e| JsError::new(&e))?;
        }
        let asked = self.size()?;
        if asked.is_none() && config.sample.is_none() && config.until_interval.is_none() {
            if self.stratify {
                return Err(JsError::new(
                    &shadow_core::sample::RunSampleError::StratifyWithoutSample.to_string(),
                ));
            }
            return Ok(csv);
        }
        let (csv, sample) = Sample::for_run(
            csv,
            asked,
            self.stratify,
            config.seed,
            self.resuming,
            config.sample.as_ref(),
            config.until_interval.is_some(),
        )
        .map_err(|e| JsError::new(&e.to_string()))?;
        config.seed = sample.seed;
        config.sample = Some(sample);
        Ok(csv)
    }
}

/// The CSV read with `settings`' columns and cut to the run's rows.
pub(crate) fn run_rows(
    csv_text: &str,
    settings: &JsValue,
) -> Result<(LabelsCsv, RunConfig), JsError> {
    let columns: Columns = serde_wasm_bindgen::from_value(settings.clone())
        .map_err(|e| JsError::new(&format!("bad settings: {e}")))?;
    let mut config: RunConfig = serde_wasm_bindgen::from_value(settings.clone())
        .map_err(|e| JsError::new(&format!("bad settings: {e}")))?;
    let csv = columns.read(csv_text)?;
    let csv = SampleAsk::read(settings)?.rows(csv, &mut config)?;
    Ok((csv, config))
}

/// What the run of `settings` over `csvText` will be made of, for the Data
/// box: `{rows, csvRows, seed, random, stratified}` (`random`: the rows go in
/// a seeded random order, a sample or `untilInterval`; `stratified`: by label). Throws the CLI's words for a
/// size it refuses (`--sample 500: the CSV has only 300 rows`).
#[wasm_bindgen(js_name = runSample)]
pub fn run_sample(csv_text: &str, settings: JsValue) -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Drawn {
        rows: usize,
        csv_rows: usize,
        seed: u64,
        random: bool,
        stratified: bool,
    }
    let (csv, config) = run_rows(csv_text, &settings)?;
    let drawn = match &config.sample {
        Some(s) => Drawn {
            rows: s.rows,
            csv_rows: s.csv_rows,
            seed: s.seed,
            random: true,
            stratified: s.strata.is_some(),
        },
        None => Drawn {
            rows: csv.items.len(),
            csv_rows: csv.items.len(),
            seed: config.seed,
            random: false,
            stratified: false,
        },
    };
    to_js(&drawn)
}

/// The Sample field's text as `--sample` reads it: `{rows}` or `{share}`, or
/// a JS error in the CLI's words.
#[wasm_bindgen(js_name = parseSampleSize)]
pub fn parse_sample_size(text: &str) -> Result<JsValue, JsError> {
    match SampleSize::parse(text).map_err(|e| JsError::new(&e))? {
        SampleSize::Rows(rows) => to_js(&serde_json::json!({ "rows": rows })),
        SampleSize::Share(share) => to_js(&serde_json::json!({ "share": share })),
    }
}

/// The stop's field as `--until-interval` reads it: the half-width, or a JS
/// error in the CLI's words.
#[wasm_bindgen(js_name = parseUntilInterval)]
pub fn parse_until_interval(text: &str) -> Result<f64, JsError> {
    shadow_core::anytime::parse_half_width(text).map_err(|e| JsError::new(&e))
}

#[wasm_bindgen]
impl ShadowRun {
    /// A sampled run's `{sample, precision}` so far, as its summary will hold
    /// them (`null` each when the run is not a sample / has no stop).
    pub fn sampling(&self, now: f64) -> Result<JsValue, JsError> {
        let summary = self.run.summary(millis(now));
        to_js(&serde_json::json!({ "sample": summary.sample, "precision": summary.precision }))
    }

    /// The sample the run is made of (the config's `sample`, to keep with a
    /// stored run so that a resume rebuilds it), or `null`.
    #[wasm_bindgen(js_name = drawnSample)]
    pub fn drawn_sample(&self) -> Result<JsValue, JsError> {
        to_js(&self.run.config().sample)
    }
}
