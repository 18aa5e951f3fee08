//! The results journal fold, and the resume that follows it (seeds:
//! core/tests/fuzz-corpus/journal, journals of the CSV built below).
#![no_main]

use std::io::BufReader;

use libfuzzer_sys::fuzz_target;
use shadow_core::input::{parse_labels_csv, ColumnNames};
use shadow_core::journal::{fold_journal, fold_journal_reader};
use shadow_core::{Millis, Run, RunConfig};

fuzz_target!(|data: &[u8]| {
    let mut folded = fold_journal_reader(BufReader::with_capacity(16, data)).unwrap();
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(folded, fold_journal(text));
    }
    assert!(folded.complete_len <= data.len());
    assert!(folded.results.windows(2).all(|w| w[0].row < w[1].row));
    let mut csv = String::from("image,label\n");
    for i in 0..8 {
        csv.push_str(&format!("{i}.png,{}\n", ["cat", "dog", "bird"][i % 3]));
    }
    let csv = parse_labels_csv(&csv, &ColumnNames::default()).unwrap();
    let mut run = Run::new(RunConfig::default(), csv, Millis(1_737_714_600_000)).unwrap();
    folded.prepare_resume(data.first().is_some_and(|b| b % 2 == 0));
    if let Ok(taken) = run.restore(folded.results) {
        let now = Millis(1_737_714_600_000);
        assert_eq!(run.counts().resumed, taken);
        serde_json::to_string(&run.summary(now)).unwrap();
        run.summary(now).to_console(20);
    }
});
