//! `--sample`: a seeded uniform sample of the CSV's rows, saved with the run.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// The shipped 300-row CSV.
fn shipped_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../training-data/labels.csv")
}

/// The built-in mock without injected errors or confidences, into `out`.
fn sampled(csv: &Path, out: &Path, extra: &[&str]) -> Finished {
    sampled_failing(csv, out, "0", extra)
}

/// [`sampled`] with the mock failing this share of requests.
fn sampled_failing(csv: &Path, out: &Path, error_rate: &str, extra: &[&str]) -> Finished {
    let mut cmd = shadow(out);
    cmd.arg(csv).args([
        "--mock-latency-ms",
        "0",
        "--mock-error-rate",
        error_rate,
        "--no-confidence",
        "--out-dir",
        p(out),
    ]);
    cmd.args(extra);
    run(cmd)
}

/// The CSV lines of the run's results, by the run's row.
fn lines_by_row(results: &[Value]) -> Vec<u64> {
    let mut rows: Vec<(u64, u64)> = results
        .iter()
        .map(|r| (r["row"].as_u64().unwrap(), r["line"].as_u64().unwrap()))
        .collect();
    rows.sort_unstable();
    rows.into_iter().map(|(_, line)| line).collect()
}

#[test]
fn a_sample_sends_its_rows_once_by_seed_and_a_larger_resume_only_adds_rows() {
    let csv = shipped_csv();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();

    let first = sampled(&csv, dirs[0].path(), &["--sample", "100", "--seed", "42"]);
    first.expect_code(0);
    first
        .stdout_has("Built-in mock: 100 requests")
        .stdout_has("estimated from 100 of 300 rows")
        .stdout_has("Whole CSV:");
    let files = RunFiles::in_dir(dirs[0].path());
    let results = files.results();
    assert_each_row_once(&results, 100);
    let lines = lines_by_row(&results);
    let mut distinct = lines.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 100, "each CSV line once");
    assert!(lines.iter().all(|l| (2..=301).contains(l)));
    assert_ne!(
        distinct,
        (2..102).collect::<Vec<u64>>(),
        "not the first 100"
    );
    let summary = files.summary();
    assert_eq!(summary["sample"]["rows"], 100);
    assert_eq!(summary["sample"]["csvRows"], 300);
    let whole = &summary["sample"]["agreementIntervalForCsv"];
    let wilson = &summary["evaluation"]["agreementInterval"];
    assert!(
        whole["high"].as_f64().unwrap() - whole["low"].as_f64().unwrap()
            < wilson["high"].as_f64().unwrap() - wilson["low"].as_f64().unwrap(),
        "the finite-population correction narrows the interval: {whole} vs {wilson}"
    );

    let again = sampled(&csv, dirs[1].path(), &["--sample", "100", "--seed", "42"]);
    again.expect_code(0);
    assert_eq!(
        lines_by_row(&RunFiles::in_dir(dirs[1].path()).results()),
        lines,
        "the same seed draws the same rows in the same order"
    );
    let other = sampled(&csv, dirs[2].path(), &["--sample", "0.3", "--seed", "7"]);
    other
        .expect_code(0)
        .stdout_has("estimated from 90 of 300 rows");
    let other_lines = lines_by_row(&RunFiles::in_dir(dirs[2].path()).results());
    assert_eq!(other_lines.len(), 90);
    assert_ne!(other_lines[..90], lines[..90], "another seed, other rows");

    // A larger sample on resume sends only the new rows, and keeps the seed.
    let more = sampled(
        &csv,
        dirs[0].path(),
        &["--resume", p(&files.progress), "--sample", "150"],
    );
    more.expect_code(0)
        .stdout_has("Built-in mock: 50 requests")
        .stdout_has("estimated from 150 of 300 rows");
    let results = files.results();
    assert_each_row_once(&results, 150);
    let grown = lines_by_row(&results);
    assert_eq!(grown[..100], lines[..], "the first 100 rows are the same");
    let mut distinct = grown.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 150);

    // Fewer rows than sampled already: refused, nothing lost.
    let fewer = sampled(
        &csv,
        dirs[0].path(),
        &["--resume", p(&files.progress), "--sample", "120"],
    );
    assert_ne!(fewer.code, Some(0));
    fewer.stderr_has("already sampled 150 rows");
    assert_each_row_once(&files.results(), 150);
}

#[test]
fn a_sample_too_large_out_of_range_or_over_a_changed_csv_is_refused() {
    let data = Data::new(10);
    let too_large = sampled(&data.csv, &data.out, &["--sample", "11"]);
    assert_ne!(too_large.code, Some(0));
    too_large
        .stderr_has("labels.csv")
        .stderr_has("--sample 11: the CSV has only 10 rows");
    for bad in ["0", "1.5", "-0.1", "ten"] {
        let done = sampled(&data.csv, &data.out, &[&format!("--sample={bad}")]);
        assert_eq!(done.code, Some(2), "--sample {bad}: {}", done.stderr);
        done.stderr_has("--sample");
    }

    sampled(&data.csv, &data.out, &["--sample", "5"]).expect_code(0);
    let files = RunFiles::in_dir(&data.out);
    assert_each_row_once(&files.results(), 5);
    // One label changed, the row count the same: refused, naming the change.
    let text = std::fs::read_to_string(&data.csv).unwrap();
    std::fs::write(
        &data.csv,
        text.replacen("digit-0003.png,3", "digit-0003.png,4", 1),
    )
    .unwrap();
    let changed = sampled(
        &data.csv,
        &data.out,
        &["--resume", p(&files.progress), "--sample", "8"],
    );
    assert_ne!(changed.code, Some(0));
    changed.stderr_has("content changed since the run sampled it");
    // A row more: refused, naming both counts.
    std::fs::write(&data.csv, format!("{text}images/digit-0001.png,1\n")).unwrap();
    let longer = sampled(&data.csv, &data.out, &["--resume", p(&files.progress)]);
    assert_ne!(longer.code, Some(0));
    longer.stderr_has("a CSV of 10 rows; the CSV now has 11");
    assert_each_row_once(&files.results(), 5);
}

#[test]
fn retry_failed_on_a_sample_retries_only_the_samples_failures() {
    let csv = shipped_csv();
    let dir = tempfile::tempdir().unwrap();
    // A quarter of the requests fail with 500, and retries are off.
    // Positional: batch size 50, no delay, no retries.
    let first = sampled_failing(
        &csv,
        dir.path(),
        "0.25",
        &["--sample", "40", "--", "50", "0", "0"],
    );
    let files = RunFiles::in_dir(dir.path());
    let failed: Vec<u64> = files
        .results()
        .iter()
        .filter(|r| r["status"] != "success")
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert!(!failed.is_empty(), "{}", first.stdout);
    let sampled_lines = lines_by_row(&files.results());
    let retried = sampled(
        &csv,
        dir.path(),
        &["--resume", p(&files.progress), "--retry-failed"],
    );
    retried.stdout_has(&format!("Built-in mock: {} requests", failed.len()));
    let results = files.results();
    assert_each_row_once(&results, 40);
    assert_eq!(lines_by_row(&results), sampled_lines);
}

/// `--until-interval`: over 20,000 rows the run stops early, `completed` with
/// the reason, and its anytime-valid interval holds the mock's true agreement
/// over the CSV (the mock is right or wrong per image, so the true rate of a
/// CSV repeating 10 images is that of one pass over them, measured first).
#[test]
fn until_interval_stops_early_with_an_interval_that_holds_the_true_agreement() {
    let data = Data::new(10);
    let truth_dir = tempfile::tempdir().unwrap();
    sampled(&data.csv, truth_dir.path(), &[]).expect_code(0);
    let truth = RunFiles::in_dir(truth_dir.path()).summary()["evaluation"]["agreementRate"]
        .as_f64()
        .unwrap();

    let rows: Vec<String> = (0..20_000)
        .map(|i| format!("images/digit-{:04}.png,{}", i % 10, i % 10))
        .collect();
    let big = data.data.join("big.csv");
    write_csv(&big, "image,label", &rows);
    let done = sampled(&big, &data.out, &["--until-interval", "0.05"]);
    done.expect_code(0).stdout_has("precision reached");
    let summary = RunFiles::in_dir(&data.out).summary();
    assert_eq!(summary["status"], "completed");
    let precision = &summary["precision"];
    assert_eq!(precision["stopReason"], "precision reached", "{precision}");
    let sent = summary["statistics"]["processed"].as_u64().unwrap();
    assert!(sent < 5_000, "stopped after {sent} rows");
    assert!(precision["halfWidth"].as_f64().unwrap() <= 0.05);
    let (low, high) = (
        precision["anytimeInterval"]["low"].as_f64().unwrap(),
        precision["anytimeInterval"]["high"].as_f64().unwrap(),
    );
    assert!(
        low <= truth && truth <= high,
        "{truth} outside {low}..{high}"
    );
    assert!(precision["wilsonInterval"]["low"].is_number());

    for bad in ["0", "0.5", "-0.1", "x"] {
        let refused = sampled(&data.csv, &data.out, &[&format!("--until-interval={bad}")]);
        assert_eq!(refused.code, Some(2), "{bad}: {}", refused.stderr);
        refused.stderr_has("--until-interval");
    }
}

/// A 200-row CSV over the 10 test images: 120 rows labelled `cat`, 60 `dog`,
/// 20 `fox` (60%, 30%, 10%), interleaved.
fn skewed_csv(data: &Data) -> PathBuf {
    let rows: Vec<String> = (0..200)
        .map(|i| {
            let label = match i % 10 {
                0..=5 => "cat",
                6..=8 => "dog",
                _ => "fox",
            };
            format!("images/digit-{:04}.png,{label}", i % 10)
        })
        .collect();
    let csv = data.data.join("skewed.csv");
    write_csv(&csv, "image,label", &rows);
    csv
}

/// Rows of each label among `results` whose run row is below `below`.
fn label_counts(results: &[Value], below: u64) -> [usize; 3] {
    let mut counts = [0; 3];
    for r in results
        .iter()
        .filter(|r| r["row"].as_u64().unwrap() < below)
    {
        let h = ["cat", "dog", "fox"]
            .iter()
            .position(|l| r["label"] == *l)
            .unwrap();
        counts[h] += 1;
    }
    counts
}

/// `--stratify`: each label's share of the sample is its share of the CSV; a
/// run killed part way holds a proportional prefix, and --resume finishes the
/// same rows a run left alone sends; a larger --sample adds rows, stratified
/// still; the summary has the agreement reweighted to the CSV's labels.
#[test]
fn a_stratified_sample_is_proportional_resumes_the_same_rows_and_reweights_the_estimate() {
    let data = Data::new(10);
    let csv = skewed_csv(&data);
    let stratified = ["--sample", "40", "--stratify", "--seed", "9"];

    let clean_dir = tempfile::tempdir().unwrap();
    let clean = sampled(&csv, clean_dir.path(), &stratified);
    clean
        .expect_code(0)
        .stdout_has("estimated from 40 of 200 rows, stratified by label")
        .stdout_has("reweighted to the CSV's labels");
    let clean_files = RunFiles::in_dir(clean_dir.path());
    let clean_results = clean_files.results();
    assert_each_row_once(&clean_results, 40);
    assert_eq!(label_counts(&clean_results, 40), [24, 12, 4]);
    let clean_lines = lines_by_row(&clean_results);

    // The summary: each label's N_h, n_h and the reweighted agreement.
    let sample = &clean_files.summary()["sample"];
    assert_eq!(sample["stratified"], true, "{sample}");
    let strata = sample["strata"].as_array().unwrap();
    let n_of = |i: usize, key: &str| strata[i][key].as_u64().unwrap();
    assert_eq!(
        (0..3)
            .map(|i| (n_of(i, "csvRows"), n_of(i, "compared")))
            .collect::<Vec<_>>(),
        [(120, 24), (60, 12), (20, 4)]
    );
    let by_hand: f64 = (0..3)
        .map(|i| {
            n_of(i, "csvRows") as f64 / 200.0 * n_of(i, "agreements") as f64
                / n_of(i, "compared") as f64
        })
        .sum();
    let reweighted = sample["stratifiedAgreement"].as_f64().unwrap();
    assert!(
        (reweighted - by_hand).abs() < 1e-4,
        "{reweighted} vs {by_hand}"
    );
    let interval = &sample["agreementIntervalForCsv"];
    assert!(interval["low"].as_f64().unwrap() < reweighted);
    assert!(reweighted < interval["high"].as_f64().unwrap());
    assert!(sample["method"]
        .as_str()
        .unwrap()
        .starts_with("stratified by label"));

    // Killed part way, one request at a time: the rows done are a prefix, and
    // the prefix is near proportional.
    let mut cmd = shadow(&data.out);
    cmd.arg(&csv).args([
        "--mock-latency-ms",
        "40",
        "--no-confidence",
        "--concurrency",
        "1",
        "--out-dir",
        p(&data.out),
    ]);
    cmd.args(stratified).args(["--", "5"]);
    let mut victim = Running::spawn(cmd);
    let out = data.out.clone();
    let partway = wait_until(std::time::Duration::from_secs(15), || {
        std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("shadow-mode-batch-results-") && complete_lines(&e.path()) > 16
            })
    });
    assert!(partway && victim.guard.running(), "the run ended first");
    victim.kill();
    let files = RunFiles::in_dir(&data.out);
    let done = files.results();
    let k = done.len() as u64;
    assert!((15..40).contains(&k), "{k} rows done");
    assert_eq!(lines_by_row(&done)[..], clean_lines[..k as usize]);
    for (h, count) in label_counts(&done, k).into_iter().enumerate() {
        let share = [0.6, 0.3, 0.1][h] * k as f64;
        assert!(
            (count as f64 - share).abs() < 2.0,
            "{count} of {k} rows for label {h}"
        );
    }

    // Resumed (without --stratify or --sample: both are kept), it sends the
    // rest: the same rows as the run left alone.
    let progress = if files.progress.exists() {
        &files.progress
    } else {
        &files.results
    };
    sampled(&csv, &data.out, &["--resume", p(progress)]).expect_code(0);
    let results = files.results();
    assert_each_row_once(&results, 40);
    assert_eq!(lines_by_row(&results), clean_lines);

    // A larger sample only adds rows, stratified still: 60 rows, 36/18/6.
    sampled(
        &csv,
        clean_dir.path(),
        &["--resume", p(&clean_files.progress), "--sample", "60"],
    )
    .expect_code(0)
    .stdout_has("Built-in mock: 20 requests")
    .stdout_has("estimated from 60 of 200 rows, stratified by label");
    let grown = clean_files.results();
    assert_each_row_once(&grown, 60);
    assert_eq!(lines_by_row(&grown)[..40], clean_lines[..]);
    assert_eq!(label_counts(&grown, 60), [36, 18, 6]);
}

/// `--stratify` without --sample, with --until-interval, or on resuming a
/// uniform sample: refused, saying why, nothing lost.
#[test]
fn stratify_without_sample_with_until_interval_or_over_a_uniform_sample_is_refused() {
    let data = Data::new(10);
    let csv = skewed_csv(&data);
    let alone = sampled(&csv, &data.out, &["--stratify"]);
    assert_eq!(alone.code, Some(2), "{}", alone.stderr);
    alone.stderr_has("--sample");
    let anytime = sampled(
        &csv,
        &data.out,
        &["--sample", "50", "--stratify", "--until-interval", "0.1"],
    );
    assert_ne!(anytime.code, Some(0));
    anytime.stderr_has("holds only for rows in uniform random order");

    sampled(&csv, &data.out, &["--sample", "20"]).expect_code(0);
    let files = RunFiles::in_dir(&data.out);
    let resumed = sampled(
        &csv,
        &data.out,
        &[
            "--resume",
            p(&files.progress),
            "--sample",
            "30",
            "--stratify",
        ],
    );
    assert_ne!(resumed.code, Some(0));
    resumed.stderr_has("was drawn uniformly, not by label");
    assert_each_row_once(&files.results(), 20);
}
