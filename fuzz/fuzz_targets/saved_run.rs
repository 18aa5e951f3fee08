//! The resume-file reader: a progress or summary file read into the CLI's
//! `SavedRun` (native/src/plan.rs; twin below), then the run built from it
//! (seeds: core/tests/fuzz-corpus/saved_run).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use shadow_core::input::{parse_labels_csv, ColumnNames};
use shadow_core::{Millis, Run, RunConfig};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct SavedRun {
    csv_path: String,
    config: RunConfig,
}

fuzz_target!(|data: &[u8]| {
    let Ok(saved) = serde_json::from_slice::<SavedRun>(data) else {
        return;
    };
    let again: RunConfig =
        serde_json::from_str(&serde_json::to_string(&saved.config).unwrap()).unwrap();
    assert_eq!(again, saved.config);
    if saved.config.validate().is_ok() {
        let csv = parse_labels_csv(
            "image,label\nhttps://x.test/a.png,cat\n",
            &ColumnNames::default(),
        )
        .unwrap();
        let run = Run::new(saved.config, csv, Millis(1_737_714_600_000)).unwrap();
        run.request_template()
            .build("https://x.test/a.png", 1, None);
    }
});
