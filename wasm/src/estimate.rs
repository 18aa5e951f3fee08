//! The estimate before Start, for the page's Data box: the same
//! `shadow_core::estimate` the CLI's `shadow-batch estimate` prints. The page
//! reads image sizes from the chosen folder's files (their first bytes); the
//! core says which rows to measure, what each size costs and the lines to show.

use std::collections::HashMap;

use serde::Deserialize;
use shadow_core::estimate::{describe, image_size::image_size, ImageCheck, Survey};
use shadow_core::input::ImageRef;
use shadow_core::RunConfig;
use wasm_bindgen::prelude::*;

use crate::to_js;

/// What the page found in the chosen folder.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Found {
    /// Rows whose relative path the folder lacks.
    #[serde(default)]
    missing: Vec<usize>,
    /// `[row, width, height]` of the measured rows.
    #[serde(default)]
    sizes: Vec<(usize, u32, u32)>,
}

/// The run's rows (a sampled run's: the sample, numbered as its results
/// number them) and its settings.
fn read(
    csv_text: &str,
    config: JsValue,
) -> Result<(shadow_core::input::LabelsCsv, RunConfig), JsError> {
    crate::sampling::run_rows(csv_text, &config)
}

/// `[[row, path]]`: the rows with a relative image path whose size the
/// estimate wants (a seeded uniform sample of about 2,000).
#[wasm_bindgen(js_name = estimateSample)]
pub fn estimate_sample(csv_text: &str, config: JsValue) -> Result<JsValue, JsError> {
    let (csv, config) = read(csv_text, config)?;
    let survey = Survey::new(&config, &csv.outline);
    let rows: Vec<(usize, &str)> = csv
        .items
        .iter()
        .filter(|i| i.defect.is_none() && survey.measures(i.row))
        .filter_map(|i| match &i.image {
            ImageRef::RelativePath(p) => Some((i.row, &**p)),
            _ => None,
        })
        .collect();
    to_js(&rows)
}

/// `[width, height]` from an image file's first bytes, or `undefined`.
#[wasm_bindgen(js_name = imageSize)]
pub fn image_size_of(bytes: &[u8]) -> Option<Vec<u32>> {
    image_size(bytes).map(|(w, h)| vec![w, h])
}

/// `{estimate, lines: [[name, value]]}`: the estimate of a run of `config` over
/// `csvText`, given `found` (`{missing: [row], sizes: [[row, w, h]]}`). A
/// browser reads no absolute path: such rows count as missing.
#[wasm_bindgen(js_name = estimateRun)]
pub fn estimate_run(csv_text: &str, config: JsValue, found: JsValue) -> Result<JsValue, JsError> {
    let (csv, config) = read(csv_text, config)?;
    let found: Found = if found.is_undefined() || found.is_null() {
        Found::default()
    } else {
        serde_wasm_bindgen::from_value(found)
            .map_err(|e| JsError::new(&format!("bad found: {e}")))?
    };
    let missing: std::collections::HashSet<usize> = found.missing.into_iter().collect();
    let sizes: HashMap<usize, (u32, u32)> = found
        .sizes
        .into_iter()
        .map(|(r, w, h)| (r, (w, h)))
        .collect();
    let mut survey = Survey::new(&config, &csv.outline);
    for item in &csv.items {
        let check = item.defect.is_none().then(|| match &item.image {
            ImageRef::Url(_) | ImageRef::DataUrl(_) => ImageCheck::Url,
            ImageRef::RelativePath(p) if missing.contains(&item.row) => ImageCheck::Missing {
                why: format!("line {}: {p}: not in the chosen folder", item.line),
            },
            ImageRef::RelativePath(_) => ImageCheck::Found {
                size: sizes.get(&item.row).copied(),
            },
            other => ImageCheck::Missing {
                why: format!(
                    "line {}: {}: a browser cannot read an absolute path",
                    item.line,
                    other.as_str()
                ),
            },
        });
        survey.record(item, check);
    }
    let estimate = survey.finish();
    let lines = describe(&estimate);
    to_js(&serde_json::json!({ "estimate": estimate, "lines": lines }))
}
