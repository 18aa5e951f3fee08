//! `--until-interval` with `--via batch-api` against the built-in mock: the
//! sample goes to the provider in growing rounds of shards and the run stops,
//! `completed`, precision reached, between two rounds.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

/// The built-in mock, no injected errors or confidences, into `out`.
fn shadow_run(csv: &Path, out: &Path, extra: &[&str]) -> Finished {
    let mut cmd = shadow(out);
    cmd.arg(csv).args([
        "--mock-latency-ms",
        "0",
        "--mock-error-rate",
        "0",
        "--no-confidence",
        "--out-dir",
        p(out),
    ]);
    cmd.args(extra);
    run(cmd)
}

/// Over 4,000 rows (40 images, each 100 times) the run sends more than one
/// round and stops well before the CSV's end, and its anytime-valid interval
/// holds the mock's true agreement over the CSV (the mock is right or wrong
/// per image, so the true rate is one pass over the 40 images, measured
/// first by a live run).
#[test]
fn until_interval_through_the_batch_api_stops_after_growing_rounds() {
    let data = Data::new(40);
    let truth_dir = tempfile::tempdir().unwrap();
    shadow_run(&data.csv, truth_dir.path(), &[]).expect_code(0);
    let truth = RunFiles::in_dir(truth_dir.path()).summary()["evaluation"]["agreementRate"]
        .as_f64()
        .unwrap();

    let rows: Vec<String> = (0..4_000)
        .map(|i| format!("images/digit-{:04}.png,{}", i % 40, i % 10))
        .collect();
    let big = data.data.join("big.csv");
    write_csv(&big, "image,label", &rows);
    let done = shadow_run(
        &big,
        &data.out,
        &[
            "--via",
            "batch-api",
            "--poll-interval",
            "0.1",
            "--until-interval",
            "0.05",
        ],
    );
    done.expect_code(0)
        .stdout_has("Round 1 of --until-interval 0.05: rows 1-385 of 4000")
        .stdout_has("Round 2 of --until-interval 0.05")
        .stdout_has("precision reached");
    let files = RunFiles::in_dir(&data.out);
    let summary = files.summary();
    assert_eq!(summary["status"], "completed");
    let precision = &summary["precision"];
    assert_eq!(precision["stopReason"], "precision reached", "{precision}");
    assert!(precision["halfWidth"].as_f64().unwrap() <= 0.05);
    let (low, high) = (
        precision["anytimeInterval"]["low"].as_f64().unwrap(),
        precision["anytimeInterval"]["high"].as_f64().unwrap(),
    );
    assert!(
        low <= truth && truth <= high,
        "{truth} outside {low}..{high}"
    );

    let sent = summary["statistics"]["processed"].as_u64().unwrap() as usize;
    assert!(sent > 385 && sent < 4_000, "{sent} rows");
    assert_eq!(precision["rows"].as_u64().unwrap() as usize, sent);
    let batches = summary["providerBatches"].as_array().unwrap();
    assert!(
        batches.len() >= 2,
        "one provider batch per round: {batches:#?}"
    );
    assert!(
        batches.iter().all(|b| b["status"] == "done"),
        "{batches:#?}"
    );
    // The rows sent are the first of the seeded order, each once.
    let results = files.results();
    assert_each_row_once(&results, sent);
    let run_rows: BTreeSet<u64> = results.iter().map(|r| r["row"].as_u64().unwrap()).collect();
    assert_eq!(run_rows, (0..sent as u64).collect());
    let lines: BTreeSet<u64> = results
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines.len(), sent);
    assert_ne!(
        lines,
        (2..2 + sent as u64).collect(),
        "not the CSV's first rows"
    );
}
