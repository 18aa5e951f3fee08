//! End-to-end tests of the `shadow-batch` binary (issue 3, item 9): the README's
//! command, rate limits, retries, fatal errors, malformed answers, hung endpoints,
//! kill/interrupt and resume, bad CSVs, bad image paths, `--help`, and
//! `--retry-failed`.
//!
//! Each test builds its own small data set in a temp dir, runs the binary with
//! bounded waits, and talks only to 127.0.0.1.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// `shadow-batch` against an OpenAI-compatible endpoint at `base_url` with `key`.
fn openai(data: &Data, base_url: &str, key: &str, args: &[&str]) -> Command {
    let mut cmd = shadow(data.root.path());
    cmd.env("OPENAI_API_KEY", key)
        .args(["--provider", "openai", "--base-url", base_url])
        .args(args);
    cmd
}

/// [`openai`] with a dummy key over `data`'s CSV, then `extra`, into `data.out`:
/// how it ended.
fn openai_into_out(data: &Data, base_url: &str, extra: &[&str]) -> Finished {
    let mut args = vec![p(&data.csv)];
    args.extend_from_slice(extra);
    args.extend(["--out-dir", p(&data.out)]);
    run(openai(data, base_url, "sk-dummy", &args))
}

fn progress_file(dir: &Path) -> Option<PathBuf> {
    find_file(dir, "shadow-mode-batch-progress-", ".json")
}

fn results_file(dir: &Path) -> Option<PathBuf> {
    find_file(dir, "shadow-mode-batch-results-", ".jsonl")
}

fn stat(v: &Value, field: &str) -> u64 {
    v["statistics"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("statistics.{field} missing: {v:#}"))
}

/// Asserts that every result is a failure of `kind`; returns them.
fn assert_all_failed(results: &[Value], kind: &str) {
    assert!(!results.is_empty());
    for r in results {
        assert_eq!(r["status"], "failed", "{r}");
        assert_eq!(r["errorKind"], kind, "{r}");
    }
}

// ---------------------------------------------------------------------------
// 1. The README's main command
// ---------------------------------------------------------------------------

#[test]
fn readme_command_runs_the_builtin_mock_end_to_end() {
    // 110 rows: three batches of the default size 50.
    let data = Data::new(110);
    let mut cmd = shadow(data.root.path());
    cmd.arg(&data.csv);
    let done = run(cmd);
    done.expect_code(0);

    assert!(
        done.stdout.contains("SIMULATED"),
        "no built-in mock notice:\n{}",
        done.stdout
    );
    done.stdout_has("📊 BATCH 1/3");
    done.stdout_has("📊 BATCH 3/3");
    done.stdout_has("Batch Range:      1 - 50 (50 images)");

    // The files land in the CSV's folder by default.
    let files = RunFiles::in_dir(&data.data);
    assert!(files.progress.is_file() && files.summary.is_file());

    let progress = files.progress();
    use shadow_core::report::contract::*;
    assert_fields(&progress, PROGRESS_FIELDS, "progress");
    assert_fields(
        &progress["overallProgress"],
        OVERALL_PROGRESS_FIELDS,
        "progress.overallProgress",
    );
    let report_fields = BATCH_REPORT_FIELDS;
    assert_fields(
        &progress["currentBatchReport"],
        report_fields,
        "progress.currentBatchReport",
    );
    assert_eq!(progress["batchNumber"], 3);
    assert_eq!(progress["totalBatches"], 3);
    assert_eq!(progress["overallProgress"]["total"], 110);
    assert_eq!(progress["overallProgress"]["successful"], 110);
    assert_eq!(progress["currentBatchReport"]["batchStartIndex"], 100);
    assert_eq!(progress["currentBatchReport"]["batchEndIndex"], 109);
    assert_eq!(progress["currentBatchReport"]["successRate"], "100.00%");
    assert!(progress["csvPath"]
        .as_str()
        .unwrap()
        .ends_with("labels.csv"));
    assert_eq!(progress["allReports"].as_array().unwrap().len(), 3);

    let summary = files.summary();
    assert_eq!(summary["status"], "completed");
    assert_fields(
        &summary,
        &["statistics", "evaluation", "allReports"],
        "summary",
    );
    assert_eq!(stat(&summary, "total"), 110);
    assert_eq!(stat(&summary, "successful"), 110);
    assert_eq!(stat(&summary, "failed"), 0);
    assert_eq!(summary["evaluation"]["compared"], 110);
    assert!(summary["evaluation"]["agreements"].as_u64().unwrap() > 0);
    let reports = summary["allReports"].as_array().unwrap();
    assert_eq!(reports.len(), 3, "one report per batch");
    for (i, r) in reports.iter().enumerate() {
        assert_fields(r, report_fields, "summary.allReports[]");
        assert_eq!(r["batchNumber"], i + 1);
    }

    let results = files.results();
    assert_eq!(results.len(), 110, "one line per CSV row");
    assert_each_row_once(&results, 110);
    for r in &results {
        assert_fields(
            r,
            &[
                "row",
                "line",
                "image",
                "label",
                "prediction",
                "agreement",
                "status",
                "attempts",
                "latencyMs",
                "finishedAt",
            ],
            "results line",
        );
        assert_eq!(r["status"], "success");
        let row = r["row"].as_u64().unwrap();
        assert_eq!(r["line"], row + 2, "header is line 1");
        assert_eq!(r["image"], format!("images/digit-{row:04}.png"));
        assert_eq!(r["label"], (row % 10).to_string());
    }
}

/// 10,000 rows, more than the engine asks for at once (chunks of 4,096): the
/// CSV is read as the run goes, every row comes back once with its own image
/// and label, and the run never holds more than two chunks of rows plus those
/// in play (before, it held all 10,000).
#[test]
fn a_long_csv_is_read_as_the_run_goes_and_every_row_comes_back_once() {
    const ROWS: usize = 10_000;
    let data = Data::new(10);
    let rows: Vec<String> = (0..ROWS)
        .map(|i| format!("images/digit-{:04}.png,{}", i % 10, i % 10))
        .collect();
    write_csv(&data.csv, "image,label", &rows);
    let mut cmd = shadow(data.root.path());
    // Without confidences: this is about reading rows as the run goes, and the
    // log-probabilities' parsing makes a debug build some 30% slower here, past
    // the harness's 30 s under load.
    cmd.env("SHADOW_BATCH_TIMINGS", "1")
        .args(csv_into_out(&data, "64"))
        .args([
            "--mock-latency-ms",
            "0",
            "--mock-error-rate",
            "0",
            "--no-confidence",
        ]);
    let done = run(cmd);
    done.expect_code(0);
    let results = RunFiles::in_dir(&data.out).results();
    assert_each_row_once(&results, ROWS);
    for r in &results {
        let row = r["row"].as_u64().unwrap() as usize;
        assert_eq!(r["label"], (row % 10).to_string(), "{r}");
        assert_eq!(r["line"], row as u64 + 2, "{r}");
        assert_eq!(
            r["image"],
            format!("images/digit-{:04}.png", row % 10),
            "{r}"
        );
    }
    let held: usize = done
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("rows-held-max: "))
        .expect("rows-held-max in the timings")
        .parse()
        .unwrap();
    assert!(held <= 2 * 4096 + 256, "held {held} rows at once");
}

// ---------------------------------------------------------------------------
// 2. 429 storm
// ---------------------------------------------------------------------------

/// A standalone mock limited to 300 requests per minute (a bucket of 5) and `rows`
/// images sent 8 at a time: the bucket overflows, and every item must still
/// succeed with the default retries.
fn rate_limit_storm(rows: usize, extra: &[&str]) {
    let mut args = vec!["--rpm", "300", "--latency-ms", "10", "--error-rate", "0"];
    args.extend_from_slice(extra);
    let mock = Mock::start(&args);
    let data = Data::new(rows);
    let done = run(openai(
        &data,
        &mock.url,
        "sk-dummy",
        &csv_into_out(&data, "8"),
    ));
    done.expect_code(0);
    let files = RunFiles::in_dir(&data.out);
    let summary = files.summary();
    assert_eq!(summary["status"], "completed");
    assert_eq!(stat(&summary, "successful"), rows as u64);
    assert_eq!(stat(&summary, "failed"), 0);
    assert!(
        stat(&summary, "rateLimitHits") > 0,
        "the bucket should have overflowed: {:#}",
        summary["statistics"]
    );
    let results = files.results();
    assert_each_row_once(&results, rows);
    assert!(results.iter().all(|r| r["status"] == "success"));
    let stats = mock.stats();
    assert!(stats["rateLimited"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["ok"], rows as u64, "{stats}");
}

#[test]
fn rate_limit_storm_with_headers_is_absorbed() {
    rate_limit_storm(12, &[]);
}

/// Only 429 + retry-after: the rate is learned from the 429s, and no item fails for
/// being rate limited.
#[test]
fn rate_limit_storm_without_ratelimit_headers_is_absorbed() {
    rate_limit_storm(30, &["--no-ratelimit-headers"]);
}

// ---------------------------------------------------------------------------
// 3. 5xx retried
// ---------------------------------------------------------------------------

#[test]
fn server_errors_are_retried() {
    let mock = Mock::start(&["--latency-ms", "0", "--error-rate", "0.5"]);
    let data = Data::new(8);
    let done = openai_into_out(&data, &mock.url, &["50", "0", "10"]);
    done.expect_code(0);
    let files = RunFiles::in_dir(&data.out);
    let summary = files.summary();
    assert_eq!(stat(&summary, "successful"), 8);
    assert!(stat(&summary, "retries") > 0, "{:#}", summary["statistics"]);
    assert!(mock.stats()["serverErrors"].as_u64().unwrap() > 0);
    assert!(files
        .results()
        .iter()
        .any(|r| r["attempts"].as_u64() > Some(1)));
}

// ---------------------------------------------------------------------------
// 4. Wrong key
// ---------------------------------------------------------------------------

#[test]
fn wrong_key_aborts_fast_and_no_key_is_written() {
    const RIGHT: &str = "sk-right-4f9Q2zX";
    const WRONG: &str = "wrong-key-xyz";
    let mock = Mock::start(&[
        "--latency-ms",
        "0",
        "--error-rate",
        "0",
        "--require-key",
        RIGHT,
    ]);
    let data = Data::new(6);

    let done = run(openai(
        &data,
        &mock.url,
        WRONG,
        &[p(&data.csv), "--out-dir", p(&data.out)],
    ));
    done.expect_code(2);
    assert!(
        done.elapsed < Duration::from_secs(10),
        "a 401 must abort at once, took {:?}",
        done.elapsed
    );
    let files = RunFiles::in_dir(&data.out);
    let summary = files.summary();
    assert_eq!(summary["status"], "aborted");
    let reason = summary["abortReason"].as_str().expect("abortReason");
    assert!(reason.contains("401"), "{reason}");
    assert_eq!(summary["abortKind"]["kind"], "unauthorized");
    assert_eq!(summary["abortKind"]["status"], 401);
    // The CLI words the next step in its own terms: the variable and the command.
    done.stderr_has("OPENAI_API_KEY").stderr_has("--resume");
    assert_eq!(files.progress()["status"], "aborted");
    assert!(!done.stdout.contains(WRONG) && !done.stderr.contains(WRONG));

    // The right key: the run succeeds, and the key is written nowhere either.
    let right_out = data.dir("right");
    let ok = run(openai(
        &data,
        &mock.url,
        RIGHT,
        &[p(&data.csv), "--out-dir", p(&right_out)],
    ));
    ok.expect_code(0);
    assert!(!ok.stdout.contains(RIGHT) && !ok.stderr.contains(RIGHT));

    let files = all_files(data.root.path());
    assert!(files.len() >= 6, "{files:?}");
    for (path, bytes) in files {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(WRONG), "{} holds the key", path.display());
        assert!(!text.contains(RIGHT), "{} holds the key", path.display());
    }
}

// ---------------------------------------------------------------------------
// 5. Malformed answers
// ---------------------------------------------------------------------------

#[test]
fn malformed_answers_fail_as_malformed_or_outside_the_labels() {
    let mock = Mock::start_with("--latency-ms 0 --error-rate 0 --malformed-rate 1");
    let data = Data::new(4);
    let done = openai_into_out(&data, &mock.url, &[]);
    done.expect_code(1);
    let files = RunFiles::in_dir(&data.out);
    let results = files.results();
    assert_each_row_once(&results, 4);
    // Unreadable answers: malformed JSON, or free text that names no label.
    for r in &results {
        assert_eq!(r["status"], "failed", "{r}");
        assert!(
            r["errorKind"] == "malformed" || r["errorKind"] == "outsideLabels",
            "{r}"
        );
    }
    let summary = files.summary();
    assert_eq!(summary["status"], "completed");
    assert_eq!(stat(&summary, "failed"), 4);
    let errors = summary["overallProgress"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 4);
    let reasons = &summary["failureReasons"];
    let counted =
        reasons["malformed"].as_u64().unwrap() + reasons["outsideLabels"].as_u64().unwrap();
    assert_eq!(counted, 4, "{reasons}");
    let groups = summary["errorGroups"].as_array().unwrap();
    let grouped: u64 = groups.iter().map(|g| g["count"].as_u64().unwrap()).sum();
    assert_eq!(grouped, 4, "{groups:#?}");
}

// ---------------------------------------------------------------------------
// 6. Hung endpoint
// ---------------------------------------------------------------------------

#[test]
fn hung_endpoint_times_out() {
    let server = HungServer::start();
    let data = Data::new(2);
    let url = format!("http://{}/v1", server.addr);
    let done = run(openai(
        &data,
        &url,
        "sk-dummy",
        &[
            p(&data.csv),
            "50",
            "0",
            "1",
            "--timeout",
            "1",
            "--out-dir",
            p(&data.out),
        ],
    ));
    done.expect_code(1);
    assert!(
        done.elapsed < Duration::from_secs(15),
        "took {:?}",
        done.elapsed
    );
    let results = RunFiles::in_dir(&data.out).results();
    assert_each_row_once(&results, 2);
    assert_all_failed(&results, "transport");
    for r in &results {
        let error = r["error"].as_str().unwrap().to_lowercase();
        assert!(error.contains("timed out"), "{error}");
        assert_eq!(r["attempts"], 2, "first attempt + 1 retry: {r}");
    }
}

// ---------------------------------------------------------------------------
// 7. Kill / interrupt, then resume
// ---------------------------------------------------------------------------

const RESUME_ROWS: usize = 60;
const RESUME_MOCK: [&str; 6] = ["--latency-ms", "100", "--error-rate", "0", "--seed", "7"];

/// Arguments of a fresh 60-row run in batches of `batch` at concurrency 4 into `out`.
fn resume_args<'a>(data: &'a Data, out: &'a Path, batch: &'a str) -> Vec<&'a str> {
    vec![
        p(&data.csv),
        batch,
        "--concurrency",
        "4",
        "--out-dir",
        p(out),
    ]
}

/// Two identical runs side by side: a clean one that is left to finish, and a victim
/// that a test interrupts, then resumes, then compares with the clean one.
struct ResumeRace {
    mock: Mock,
    data: Data,
    clean_out: PathBuf,
    victim_out: PathBuf,
    clean: Running,
    victim: Running,
}

impl ResumeRace {
    fn start(batch: &str) -> Self {
        let mock = Mock::start(&RESUME_MOCK);
        let data = Data::new(RESUME_ROWS);
        let (clean_out, victim_out) = (data.dir("clean"), data.dir("victim"));
        let spawn = |out: &Path| {
            Running::spawn(openai(
                &data,
                &mock.url,
                "sk-dummy",
                &resume_args(&data, out, batch),
            ))
        };
        let (clean, victim) = (spawn(&clean_out), spawn(&victim_out));
        ResumeRace {
            mock,
            data,
            clean_out,
            victim_out,
            clean,
            victim,
        }
    }

    /// Waits (15 s at most) until `ready` holds for the victim's folder, and asserts
    /// the victim is still running then.
    fn wait_for_victim(&mut self, what: &str, ready: impl Fn(&Path) -> bool) {
        let (out, victim) = (&self.victim_out, &mut self.victim);
        let seen = wait_until(Duration::from_secs(15), || {
            ready(out) || !victim.guard.running()
        });
        assert!(seen, "no {what} within 15 s");
        assert!(
            victim.guard.running(),
            "the run ended before it could be interrupted"
        );
    }

    /// Kills the victim with SIGKILL and lets the clean run finish.
    fn kill_victim(&mut self) {
        self.victim.kill();
    }

    /// Resumes the victim with `args` and asserts it ends like the clean run.
    fn resume_and_compare(mut self, args: &[&str]) {
        self.clean.finish(RUN_TIMEOUT).expect_code(0);
        let resumed = run(openai(&self.data, &self.mock.url, "sk-dummy", args));
        resumed.expect_code(0);
        assert_same_as_clean(&self.victim_out, &self.clean_out);
    }
}

/// Asserts that the run in `dir` finished every row once, with the same outcome as
/// the clean run in `clean`.
fn assert_same_as_clean(dir: &Path, clean: &Path) {
    let files = RunFiles::in_dir(dir);
    let results = files.results();
    assert_each_row_once(&results, RESUME_ROWS);
    let clean = RunFiles::in_dir(clean);
    let reference = clean.results();
    assert_each_row_once(&reference, RESUME_ROWS);
    assert_eq!(outcomes(&results), outcomes(&reference));

    let (s, c) = (files.summary(), clean.summary());
    assert_eq!(s["status"], "completed");
    assert_eq!(c["status"], "completed");
    for field in ["total", "successful", "failed"] {
        assert_eq!(stat(&s, field), stat(&c, field), "statistics.{field}");
    }
    assert_eq!(s["evaluation"]["agreements"], c["evaluation"]["agreements"]);
    assert_eq!(
        s["evaluation"]["confusionMatrix"],
        c["evaluation"]["confusionMatrix"]
    );
    assert!(
        stat(&s, "resumedItems") > 0,
        "the resumed run redid everything"
    );
}

#[test]
#[cfg(unix)]
fn sigkill_then_resume_equals_a_clean_run() {
    // Killed once the first batch is reported (mid-run: 6 batches of ~0.3 s).
    let mut race = ResumeRace::start("10");
    race.wait_for_victim("progress file", |out| progress_file(out).is_some());
    race.kill_victim();

    let out = race.victim_out.clone();
    let progress = progress_file(&out).unwrap();
    let before = complete_lines(&results_file(&out).unwrap());
    assert!(
        before < RESUME_ROWS,
        "killed after the end ({before} lines)"
    );
    assert!(find_file(&out, "shadow-mode-batch-2", ".json").is_none());
    race.resume_and_compare(&["--resume", p(&progress)]);
}

#[test]
#[cfg(unix)]
fn sigint_writes_interrupted_reports_then_resume_completes() {
    let mut race = ResumeRace::start("10");
    race.wait_for_victim("results", |out| {
        results_file(out).is_some_and(|r| complete_lines(&r) >= 8)
    });
    signal(race.victim.pid(), "INT");
    race.victim.finish(Duration::from_secs(15)).expect_code(130);

    let files = RunFiles::in_dir(&race.victim_out);
    let summary = files.summary();
    assert_eq!(summary["status"], "interrupted");
    assert!(
        stat(&summary, "remaining") > 0,
        "{:#}",
        summary["statistics"]
    );
    assert!(files.progress.is_file());
    assert!(files.results().len() < RESUME_ROWS);
    race.resume_and_compare(&["--resume", p(&files.summary)]);
}

#[test]
fn killed_before_first_progress_resumes_from_results_and_csv() {
    // One batch of 100: no progress file is written before the end.
    let mut race = ResumeRace::start("100");
    race.wait_for_victim("results", |out| {
        results_file(out).is_some_and(|r| complete_lines(&r) >= 8)
    });
    race.kill_victim();

    let out = race.victim_out.clone();
    assert!(progress_file(&out).is_none());
    let results = results_file(&out).unwrap();
    assert!(complete_lines(&results) < RESUME_ROWS);
    let csv = race.data.csv.clone();
    race.resume_and_compare(&[
        p(&csv),
        "100",
        "--concurrency",
        "4",
        "--resume",
        p(&results),
    ]);
}

// ---------------------------------------------------------------------------
// 8. Bad CSV
// ---------------------------------------------------------------------------

#[test]
fn csv_without_usable_header_is_a_usage_error() {
    let data = Data::new(1);
    let bad = data.data.join("bad.csv");
    write_csv(&bad, "foo,bar", &["images/digit-0000.png,0".into()]);
    // A run of `csv` refused as the usage error it is.
    let refused = |csv: &Path| {
        let mut cmd = shadow(data.root.path());
        cmd.arg(csv).args(["--out-dir", p(&data.out)]);
        let done = run(cmd);
        done.expect_code(2);
        done
    };
    let done = refused(&bad);
    done.stderr_has("bad.csv");
    done.stderr_has("--image-column");
    assert!(
        all_files(&data.out).is_empty(),
        "no run files for a bad CSV"
    );

    let empty = data.data.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let done = refused(&empty);
    done.stderr_has("empty.csv");
    done.stderr_has("empty");
}

// ---------------------------------------------------------------------------
// 9. Missing image
// ---------------------------------------------------------------------------

/// The built-in mock, fast and without injected errors.
fn builtin(data: &Data, csv: &Path, out: &Path) -> Command {
    let mut cmd = shadow(data.root.path());
    cmd.arg(csv).args([
        "--mock-latency-ms",
        "5",
        "--mock-error-rate",
        "0",
        "--out-dir",
        p(out),
    ]);
    cmd
}

/// A symbolic link at `link` to `target`.
#[cfg(unix)]
fn symlink(target: PathBuf, link: PathBuf) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// The built-in mock over `data`'s CSV written again as `rows` (`image,label`):
/// a run that fails some rows (exit 1) and writes each row once. Its results.
fn builtin_over_rows(data: &Data, rows: &[&str]) -> Vec<Value> {
    let rows: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    write_csv(&data.csv, "image,label", &rows);
    run(builtin(data, &data.csv, &data.out)).expect_code(1);
    let results = RunFiles::in_dir(&data.out).results();
    assert_each_row_once(&results, rows.len());
    results
}

#[test]
fn missing_image_is_an_item_failure_with_its_line() {
    let data = Data::new(3);
    let results = builtin_over_rows(
        &data,
        &[
            "images/digit-0000.png,0",
            "images/digit-0001.png,1",
            "images/nope.png,2", // line 4
            "images/digit-0002.png,2",
        ],
    );
    for r in &results {
        if r["row"] == 2 {
            assert_eq!(r["status"], "failed");
            assert_eq!(r["errorKind"], "image");
            assert_eq!(r["line"], 4);
            let error = r["error"].as_str().unwrap();
            assert!(error.contains("line 4"), "{error}");
            assert!(error.contains("images/nope.png"), "{error}");
        } else {
            assert_eq!(r["status"], "success", "{r}");
        }
    }
}

// ---------------------------------------------------------------------------
// 10. Paths escaping the data folder
// ---------------------------------------------------------------------------

#[test]
#[cfg(unix)]
fn paths_outside_the_data_folder_are_refused_unless_allowed() {
    let data = Data::new(1);
    copy_image("digit-0001.png", &data.root.path().join("outside.png"));
    copy_image("digit-0002.png", &data.root.path().join("outside2.png"));
    symlink(
        data.root.path().join("outside2.png"),
        data.data.join("images/link.png"),
    );
    let rows = [
        "images/digit-0000.png,0",
        "../outside.png,1",
        "images/link.png,2",
    ];
    let results = builtin_over_rows(&data, &rows);
    for r in &results {
        if r["row"] == 0 {
            assert_eq!(r["status"], "success", "{r}");
        } else {
            assert_eq!(r["status"], "failed", "{r}");
            assert_eq!(r["errorKind"], "image", "{r}");
            let error = r["error"].as_str().unwrap();
            assert!(error.contains("--allow-outside-data-dir"), "{error}");
        }
    }

    let allowed_out = data.dir("allowed");
    let mut cmd = builtin(&data, &data.csv, &allowed_out);
    cmd.arg("--allow-outside-data-dir");
    run(cmd).expect_code(0);
    let results = RunFiles::in_dir(&allowed_out).results();
    assert_each_row_once(&results, 3);
    assert!(results.iter().all(|r| r["status"] == "success"));
}

// ---------------------------------------------------------------------------
// 11. --help
// ---------------------------------------------------------------------------

#[test]
fn help_lists_every_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = shadow(tmp.path());
    cmd.arg("--help");
    let done = run(cmd);
    done.expect_code(0);
    for flag in [
        "--concurrency",
        "--rpm",
        "--provider",
        "--model",
        "--base-url",
        "--detail",
        "--endpoint",
        "--prediction-field",
        "--image-column",
        "--label-column",
        "--id-column",
        "--out-dir",
        "--resume",
        "--retry-failed",
        "--timeout",
        "--seed",
        "--allow-outside-data-dir",
        "--embed-thumbnails",
        "--require",
        "3 the run completed and missed a",
        "shadow-mode-batch-report-{run}.html",
        "shadow-batch report",
        "--baseline",
        "--baseline-column",
        "shadow-batch compare",
    ] {
        assert!(done.stdout.contains(flag), "--help lacks {flag}");
    }
}

// ---------------------------------------------------------------------------
// 12. --retry-failed
// ---------------------------------------------------------------------------

#[test]
fn retry_failed_resends_the_failures_once() {
    let data = Data::new(5);
    let broken = Mock::start(&["--latency-ms", "0", "--error-rate", "1"]);
    let first = openai_into_out(&data, &broken.url, &["50", "0", "0"]);
    first.expect_code(1);
    let files = RunFiles::in_dir(&data.out);
    let results = files.results();
    assert_each_row_once(&results, 5);
    assert_all_failed(&results, "http");

    let healthy = Mock::start(&["--latency-ms", "0", "--error-rate", "0"]);
    let again = run(openai(
        &data,
        &healthy.url,
        "sk-dummy",
        &["--resume", p(&files.progress), "--retry-failed"],
    ));
    again.expect_code(0);
    let results = files.results();
    assert_each_row_once(&results, 5);
    assert!(
        results.iter().all(|r| r["status"] == "success"),
        "{results:#?}"
    );
    let summary = files.summary();
    assert_eq!(summary["status"], "completed");
    assert_eq!(stat(&summary, "successful"), 5);
    assert_eq!(stat(&summary, "failed"), 0);
    assert_eq!(healthy.stats()["ok"], 5);
}

/// Images read ahead of their requests (most of them at one request in flight)
/// end exactly as images loaded with their request (all of them at 64 in flight):
/// missing files, escapes and symlinks included.
#[test]
#[cfg(unix)]
fn images_read_ahead_end_as_images_loaded_with_their_request() {
    let data = Data::new(3);
    copy_image("digit-0001.png", &data.root.path().join("outside.png"));
    symlink(
        data.root.path().join("outside.png"),
        data.data.join("images/out-link.png"),
    );
    symlink(
        data.data.join("images/digit-0002.png"),
        data.data.join("images/in-link.png"),
    );
    let kinds = [
        "images/digit-0000.png",
        "images/nope.png",
        "../outside.png",
        "images/out-link.png",
        "images/in-link.png",
        "images/digit-0001.png",
    ];
    let rows: Vec<String> = (0..60)
        .map(|i| format!("{},{}", kinds[i % kinds.len()], i % 3))
        .collect();
    write_csv(&data.csv, "image,label", &rows);

    let outcome = |concurrency: &str| {
        let out = data.dir(&format!("c{concurrency}"));
        let mut cmd = builtin(&data, &data.csv, &out);
        cmd.args(["--concurrency", concurrency, "--mock-accuracy", "1"])
            .env("RUST_LOG", "shadow_batch=debug");
        let done = run(cmd);
        done.expect_code(1);
        let mut results = RunFiles::in_dir(&out).results();
        assert_each_row_once(&results, 60);
        results.sort_by_key(|r| r["row"].as_u64());
        let ends: Vec<(String, String)> = results
            .iter()
            .map(|r| (r["status"].to_string(), r["error"].to_string()))
            .collect();
        let hits: usize = done
            .stderr
            .lines()
            .find_map(|l| {
                let (before, _) = l.split_once(" requests found their image read ahead")?;
                before.rsplit(' ').next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no read-ahead count in\n{}", done.stderr));
        (ends, hits)
    };
    let (ahead, hits_ahead) = outcome("1");
    let (with_request, hits_with_request) = outcome("64");
    assert!(
        hits_ahead >= 40,
        "only {hits_ahead} of 60 images were read ahead"
    );
    assert_eq!(hits_with_request, 0);
    assert_eq!(ahead, with_request);
    for (row, (status, error)) in ahead.iter().enumerate() {
        let kind = kinds[row % kinds.len()];
        let fine = kind.starts_with("images/digit") || kind == "images/in-link.png";
        assert_eq!(
            status,
            if fine { "\"success\"" } else { "\"failed\"" },
            "row {row}: {error}"
        );
        if kind == "images/nope.png" {
            assert!(error.contains("no such file"), "{error}");
        } else if !fine {
            assert!(error.contains("--allow-outside-data-dir"), "{error}");
        }
    }
}

#[test]
fn resume_reads_the_csv_with_the_columns_named_at_the_start() {
    let data = Data::new(4);
    let rows: Vec<String> = (0..4)
        .map(|i| match i {
            1 => "images/nope.png,1,r1".to_string(),
            _ => format!("images/digit-{i:04}.png,{i},r{i}"),
        })
        .collect();
    // No column here has a name shadow-batch would find by itself.
    write_csv(&data.csv, "picture,truth,ref", &rows);
    let mut first = builtin(&data, &data.csv, &data.out);
    first.args([
        "--image-column",
        "picture",
        "--label-column",
        "truth",
        "--id-column",
        "ref",
    ]);
    run(first).expect_code(1);
    let files = RunFiles::in_dir(&data.out);
    let columns = &files.summary()["config"]["columns"];
    assert_eq!(columns["image"], "picture", "{columns}");
    assert_eq!(columns["id"], "ref", "{columns}");

    // The missing image turns up; resuming needs no column flags.
    copy_image("digit-0001.png", &data.data.join("images/nope.png"));
    let mut again = shadow(data.root.path());
    again.args([
        "--resume",
        p(&files.summary),
        "--retry-failed",
        "--mock-latency-ms",
        "5",
        "--mock-error-rate",
        "0",
    ]);
    run(again).expect_code(0);
    let results = files.results();
    assert_each_row_once(&results, 4);
    assert!(
        results.iter().all(|r| r["status"] == "success"),
        "{results:#?}"
    );
    let row1 = results.iter().find(|r| r["row"] == 1).unwrap();
    assert_eq!(row1["id"], "r1", "{row1}");
}

// ---------------------------------------------------------------------------
// Secrets: an endpoint that echoes the key gets it into no output
// ---------------------------------------------------------------------------

#[test]
fn an_echoed_key_appears_in_no_output_of_either_provider() {
    const KEY: &str = "sk-canary-31f7e2d9c4b8a6";
    const URL_SECRET: &str = "urlsecret-8e4f2a6b";
    for provider in ["openai", "http"] {
        let endpoint = EchoingEndpoint::start(4);
        let data = Data::new(6);
        let mut cmd = shadow(data.root.path());
        cmd.env("OPENAI_API_KEY", KEY)
            .args([
                p(&data.csv),
                "--concurrency",
                "1",
                "--out-dir",
                p(&data.out),
            ])
            .args(["--provider", provider]);
        match provider {
            "openai" => cmd.args([
                "--base-url",
                &format!("{}/v1?api-key={URL_SECRET}", endpoint.url),
            ]),
            _ => cmd.args([
                "--endpoint",
                &format!("{}/predict?token={URL_SECRET}", endpoint.url),
            ]),
        };
        let done = run(cmd);
        // Four answers outside the label set, then a 401: aborted.
        done.expect_code(2);
        let mut everything = format!("{}\n{}", done.stdout, done.stderr);
        for (path, bytes) in all_files(&data.out) {
            everything += &format!(
                "\n--- {}\n{}",
                path.display(),
                String::from_utf8_lossy(&bytes)
            );
        }
        for secret in [KEY, URL_SECRET] {
            assert!(
                !everything.contains(&secret[..8]),
                "{provider}: {} is written out:\n{everything}",
                &secret[..8]
            );
        }
        assert!(
            everything.contains("[REDACTED]"),
            "{provider}: no echo was seen:\n{everything}"
        );
        assert!(
            done.stderr.contains("API key"),
            "{provider}: {}",
            done.stderr
        );
    }
}

// ---------------------------------------------------------------------------
// 13. Hostile files and settings (issue 10)
// ---------------------------------------------------------------------------

/// A FIFO named like an image fails its row at once (opening one for reading
/// blocks until a writer comes, which never does); the other rows succeed.
#[test]
#[cfg(unix)]
fn a_fifo_named_like_an_image_fails_its_row_at_once() {
    let data = Data::new(2);
    let fifo = data.data.join("images/pipe.png");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", fifo.display());
    let rows = vec![
        "images/digit-0000.png,0".to_string(),
        "images/pipe.png,1".to_string(), // line 3
        "images/digit-0001.png,1".to_string(),
    ];
    write_csv(&data.csv, "image,label", &rows);
    // Before the fix, the run hung here for good (before its banner).
    let done = Running::spawn(builtin(&data, &data.csv, &data.out)).finish(Duration::from_secs(20));
    done.expect_code(1);
    let results = RunFiles::in_dir(&data.out).results();
    assert_each_row_once(&results, 3);
    for r in &results {
        if r["row"] == 1 {
            assert_eq!(r["status"], "failed", "{r}");
            assert_eq!(r["errorKind"], "image", "{r}");
            let error = r["error"].as_str().unwrap();
            assert!(error.contains("line 3"), "{error}");
            assert!(error.contains("images/pipe.png"), "{error}");
            assert!(error.contains("named pipe"), "{error}");
        } else {
            assert_eq!(r["status"], "success", "{r}");
        }
    }
}

/// A key pasted with a Windows line end (or any control character) is refused
/// at start, naming the variable and what is wrong, before any request; the key
/// is shown nowhere, not even in part.
#[test]
fn a_key_with_a_control_character_is_refused_at_start_without_showing_it() {
    const KEY: &str = "sk-canary-Zq8Vx3Lm";
    let mock = Mock::start(&["--latency-ms", "0", "--error-rate", "0"]);
    let data = Data::new(2);
    for (key, what) in [
        (format!("{KEY}\r"), "carriage return"),
        (format!("{KEY}\n"), "line break"),
        (
            "sk-canary\u{1b}[31m-Zq8Vx3Lm".to_string(),
            "control character",
        ),
    ] {
        let done = run(openai(
            &data,
            &mock.url,
            &key,
            &[p(&data.csv), "50", "0", "0", "--out-dir", p(&data.out)],
        ));
        done.expect_code(2);
        done.stderr_has("OPENAI_API_KEY");
        assert!(done.stderr.contains(what), "{what}: {}", done.stderr);
        for text in [&done.stdout, &done.stderr] {
            assert!(
                !text.contains("canary") && !text.contains("Zq8Vx3Lm"),
                "the key (or part of it) is shown: {text}"
            );
        }
    }
    assert!(all_files(&data.out).is_empty(), "no run was started");
    assert_eq!(mock.stats()["requests"], 0);
}

/// A CSV that cannot be run as written is refused before anything starts, naming
/// the file and the line: a quote never closed (csv would read the rest of the
/// file into one label), or a header with no row under it.
#[test]
fn a_csv_with_an_unclosed_quote_or_no_rows_is_refused_naming_the_line() {
    let data = Data::new(3);
    let rows = vec![
        "images/digit-0000.png,0".to_string(),
        "images/digit-0001.png,\"1".to_string(), // line 3
        "images/digit-0002.png,2".to_string(),
    ];
    write_csv(&data.csv, "image,label", &rows);
    let done = run(builtin(&data, &data.csv, &data.out));
    done.expect_code(2);
    done.stderr_has("labels.csv: line 3: a quoted field opens here and is never closed");
    done.stderr_has("lines 3 to 4");

    let header_only = data.data.join("header-only.csv");
    write_csv(&header_only, "image,label", &[]);
    let done = run(builtin(&data, &header_only, &data.out));
    done.expect_code(2);
    done.stderr_has("header-only.csv").stderr_has("no rows");
    assert!(all_files(&data.out).is_empty(), "no run was started");
}

/// Log lines written to a pipe or a file carry no colour codes (NO_COLOR unset):
/// a WARN from a resume that skips a bad journal line, with stderr not a terminal.
#[test]
fn warnings_to_a_pipe_have_no_colour_codes() {
    let data = Data::new(2);
    run(builtin(&data, &data.csv, &data.out)).expect_code(0);
    let files = RunFiles::in_dir(&data.out);
    let journal = std::fs::read_to_string(&files.results).unwrap();
    std::fs::write(&files.results, format!("not a result\n{journal}")).unwrap();
    let mut again = shadow(data.root.path());
    again
        .args(["--resume", p(&files.progress)])
        .env_remove("NO_COLOR");
    let done = run(again);
    done.expect_code(0);
    done.stderr_has("WARN");
    done.stderr_has("skipped");
    assert!(!done.stderr.contains("\x1b["), "{:?}", done.stderr);
}

/// A label holding an escape sequence and a carriage return is printed escaped on
/// the console, and kept as it was in the results.
#[test]
fn labels_with_control_characters_are_escaped_on_the_console() {
    let data = Data::new(2);
    let label = "\x1b[31mred\rx";
    let rows = vec![
        format!("images/digit-0000.png,\"{label}\""),
        "images/digit-0001.png,1".to_string(),
    ];
    write_csv(&data.csv, "image,label", &rows);
    let mut cmd = builtin(&data, &data.csv, &data.out);
    cmd.args(["--mock-accuracy", "1"]);
    let done = run(cmd);
    done.expect_code(0);
    for text in [&done.stdout, &done.stderr] {
        assert!(
            !text.contains('\x1b') && !text.contains('\r'),
            "printed raw: {text:?}"
        );
    }
    done.stdout_has("\\u{1b}[31mred\\rx");
    let results = RunFiles::in_dir(&data.out).results();
    let row0 = results.iter().find(|r| r["row"] == 0).unwrap();
    assert_eq!(row0["label"], label, "{row0}");
}

// ---------------------------------------------------------------------------
// An endpoint that never worked (issue 12, item 3)
// ---------------------------------------------------------------------------

#[test]
fn a_wrong_base_url_stops_the_run_early_and_marks_nothing_failed() {
    // A port nothing listens on: every connection is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let data = Data::new(300);
    let done = openai_into_out(&data, &url, &[]);
    done.expect_code(2);
    done.stderr_has("could not be reached");
    done.stderr_has("--base-url");
    let summary = RunFiles::in_dir(&data.out).summary();
    assert_eq!(summary["abortKind"]["kind"], "endpointUnreachable");
    assert_eq!(stat(&summary, "failed"), 0, "every row is left for resume");
    assert!(
        stat(&summary, "requests") <= 20,
        "{:#}",
        summary["statistics"]
    );
}

// ---------------------------------------------------------------------------
// HTML report (the results explorer, one self-contained file)
// ---------------------------------------------------------------------------

#[test]
fn every_run_writes_its_html_report_and_report_writes_it_again_from_any_run_file() {
    let data = Data::new(12);
    let done = run(builtin(&data, &data.csv, &data.out));
    done.expect_code(0);
    let report = find_file(&data.out, "shadow-mode-batch-report-", ".html").expect("a report");
    done.stdout_has(&format!("Report:   {}", report.display()));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("Content-Security-Policy") && html.contains("default-src 'none'"));
    let first = report_data(&report);
    let files = RunFiles::in_dir(&data.out);
    let summary = files.summary();
    assert_eq!(first["status"], "completed");
    assert_eq!(first["evaluation"], summary["evaluation"]);
    assert_eq!(first["items"]["row"].as_array().unwrap().len(), 12);
    // The report is in --out-dir, the images beside the CSV: linked relatively.
    assert_eq!(first["thumbnails"]["base"], "../data/");

    // From each of the run's files, the same report again.
    for given in [&files.summary, &files.progress, &files.results] {
        std::fs::remove_file(&report).unwrap();
        let mut cmd = shadow(data.root.path());
        cmd.args(["report", p(given), "--images-dir", p(&data.data)]);
        let again = run(cmd);
        again.expect_code(0);
        again.stdout_has(p(&report));
        assert_eq!(report_data(&report), first, "from {}", given.display());
    }

    // Without its summary (a run killed before its end): status interrupted, the
    // evaluation computed from the results, and a note saying so.
    std::fs::remove_file(&files.summary).unwrap();
    let other = data.dir("elsewhere").join("r.html");
    let mut cmd = shadow(data.root.path());
    cmd.args(["report", p(&files.progress), "--out", p(&other)]);
    cmd.arg("--embed-thumbnails");
    run(cmd).expect_code(0);
    let partial = report_data(&other);
    assert_eq!(partial["status"], "interrupted");
    assert_eq!(partial["evaluationSource"], "results");
    assert_eq!(
        partial["evaluation"]["agreements"],
        summary["evaluation"]["agreements"]
    );
    assert!(partial["notes"].to_string().contains("wrote no summary"));
    // The CSV is found through the run's config; 12 images embedded, downscaled.
    assert_eq!(partial["thumbnails"]["base"], "../data/");
    let embedded = partial["thumbnails"]["embedded"].as_object().unwrap();
    assert_eq!(embedded.len(), 12);
    assert!(embedded
        .values()
        .all(|u| u.as_str().unwrap().starts_with("data:image/png;base64,")));
}

#[test]
fn a_report_past_its_row_cap_holds_every_disagreement_and_failure_a_stated_sample_and_the_full_figures(
) {
    // 1,000 rows (the 300 images repeated), 5% of answers a 500 never retried: a
    // run with disagreements and failures.
    let data = Data::new(300);
    let rows: Vec<String> = (0..1000)
        .map(|i| format!("images/digit-{:04}.png,{}", i % 300, (i % 300) % 10))
        .collect();
    let csv = data.data.join("big.csv");
    write_csv(&csv, "image,label", &rows);
    let mut cmd = shadow(data.root.path());
    cmd.args([p(&csv), "50", "0", "0", "--mock-latency-ms", "0"])
        .args(["--mock-error-rate", "0.05", "--out-dir", p(&data.out)]);
    run(cmd).expect_code(1);
    let files = RunFiles::in_dir(&data.out);
    let full = report_data(&find_file(&data.out, "shadow-mode-batch-report-", ".html").unwrap());
    assert_eq!(full["items"]["row"].as_array().unwrap().len(), 1000);
    assert!(full["sample"].is_null());

    let capped_path = data.out.join("capped.html");
    // The report of the results file, capped at 200 rows.
    let capped_report = || {
        let mut cmd = shadow(data.root.path());
        cmd.args(["report", p(&files.results), "--max-rows", "200"])
            .args(["--out", p(&capped_path)]);
        run(cmd).expect_code(0);
        report_data(&capped_path)
    };
    let capped = capped_report();

    // Every figure is the whole run's.
    for field in [
        "evaluation",
        "totals",
        "failureReasons",
        "errorGroups",
        "batches",
        "labels",
        "statistics",
    ] {
        assert_eq!(capped[field], full[field], "{field}");
    }
    // Every disagreement and failure, by the results file, is in the report.
    let results = read_results(&files.results);
    let notable: Vec<u64> = results
        .iter()
        .filter(|r| r["agreement"] != true)
        .map(|r| r["row"].as_u64().unwrap())
        .collect();
    let failed = results.iter().filter(|r| r["status"] == "failed").count();
    assert!(
        failed > 10 && notable.len() > failed + 10,
        "{failed} failed, {} notable",
        notable.len()
    );
    assert!(notable.len() < 180, "{}", notable.len());
    let items = &capped["items"];
    let kept: Vec<u64> = items["row"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    assert_eq!(kept.len(), 200);
    for row in &notable {
        assert!(kept.contains(row), "row {row}");
    }
    // The rest are agreeing rows, as many as the report says.
    let agreeing = (0..kept.len())
        .filter(|&i| items["ok"][i] == true && items["prediction"][i] == items["label"][i])
        .count();
    let sample = &capped["sample"];
    assert_eq!(sample["agreeingShown"], agreeing as u64);
    assert_eq!(agreeing + notable.len(), 200);
    assert_eq!(sample["notable"], notable.len() as u64);
    assert_eq!(sample["rows"], 1000);
    let note = capped["notes"][0].as_str().unwrap();
    assert!(note.contains("shows 200 of the run's 1,000 rows"), "{note}");
    assert!(
        note.contains(&format!(
            "every disagreement and failure ({})",
            notable.len()
        )),
        "{note}"
    );
    assert!(
        note.contains(
            &files
                .results
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        ),
        "{note}"
    );

    // A results file holding a row twice (a resume killed before its rewrite):
    // the last line counts, as a resume reads it.
    let mut text = std::fs::read_to_string(&files.results).unwrap();
    // The first result line (the journal starts with the run's settings line).
    let first: Value = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|line| line.get("row").is_some())
        .unwrap();
    let mut again = first.clone();
    again["status"] = "failed".into();
    again["prediction"] = Value::Null;
    again["agreement"] = Value::Null;
    again["error"] = "HTTP 500: written last".into();
    again["errorKind"] = "http".into();
    text.push_str(&format!("{again}\n"));
    std::fs::write(&files.results, text).unwrap();
    std::fs::remove_file(&files.summary).unwrap();
    let twice = capped_report();
    assert_eq!(twice["totals"]["processed"], 1000);
    assert_eq!(
        twice["totals"]["failed"],
        failed as u64 + u64::from(first["status"] == "success")
    );
    let row = first["row"].as_u64().unwrap();
    let at = twice["items"]["row"]
        .as_array()
        .unwrap()
        .iter()
        .position(|r| r == row)
        .unwrap();
    assert_eq!(twice["items"]["ok"][at], false);
}

#[test]
fn report_refuses_what_is_not_a_run_file_naming_it_and_what_to_do() {
    let data = Data::new(3);
    let mut cmd = shadow(data.root.path());
    cmd.args(["report", p(&data.csv)]);
    let done = run(cmd);
    done.expect_code(2);
    done.stderr_has("labels.csv: not a file of a shadow-batch run")
        .stderr_has("progress, summary or results file");
    // A broken summary is named, with the way out.
    let summary = data
        .out
        .join("shadow-mode-batch-2025-01-24T10-30-00-000Z.json");
    std::fs::write(&summary, "{ not json").unwrap();
    let mut cmd = shadow(data.root.path());
    cmd.args(["report", p(&summary)]);
    let done = run(cmd);
    done.expect_code(2);
    done.stderr_has(p(&summary))
        .stderr_has("not a shadow-batch summary file")
        .stderr_has("another file of the run");
}

// ---------------------------------------------------------------------------
// Tokens per minute (issue 12)
// ---------------------------------------------------------------------------

/// A mock limited to 600,000 tokens a minute (a bucket of 10,000 a second) that
/// charges each request its image (2,833 tokens), its text and its max_tokens at
/// admission: about three images a second, while the request limit is far away.
fn token_limited_run(mock_flags: &[&str], run_flags: &[&str]) -> (Value, Value) {
    let mut args = vec![
        "--tpm",
        "600000",
        "--rpm",
        "100000",
        "--latency-ms",
        "20",
        "--error-rate",
        "0",
    ];
    args.extend_from_slice(mock_flags);
    let mock = Mock::start(&args);
    let rows = 16;
    let data = Data::new(rows);
    let mut flags = vec![p(&data.csv), "--out-dir", p(&data.out)];
    flags.extend_from_slice(run_flags);
    run(openai(&data, &mock.url, "sk-dummy", &flags)).expect_code(0);
    let summary = RunFiles::in_dir(&data.out).summary();
    assert_eq!(stat(&summary, "successful"), rows as u64, "{summary:#}");
    (summary, mock.stats())
}

#[test]
fn default_flags_follow_the_endpoints_token_limit() {
    let (summary, stats) = token_limited_run(&[], &[]);
    // The first requests go out before any answer has named the limit (the
    // in-flight limit starts at 8; the bucket holds three): those may be refused.
    // After that, none is.
    let refused = stats["tokenLimited"].as_u64().unwrap();
    assert!(refused <= 8, "{refused} token 429s: {stats}");
    let pace = &summary["pace"];
    assert_eq!(pace["tokenSource"], "endpointHeaders", "{pace}");
    assert_eq!(pace["tokensPerMinute"], 600_000, "{pace}");
    // What the run charges a request is what the mock charged it: the prompt
    // learned from usage, plus max_tokens.
    let charged = stats["tokensAdmitted"].as_u64().unwrap() / stats["ok"].as_u64().unwrap();
    let estimate = pace["tokensPerRequest"].as_u64().unwrap();
    assert!(
        estimate.abs_diff(charged) * 100 <= charged * 2,
        "charge {estimate} for {charged}"
    );
}

#[test]
fn a_tpm_cap_paces_an_endpoint_that_names_no_limit() {
    let (summary, stats) = token_limited_run(&["--no-ratelimit-headers"], &["--tpm", "600000"]);
    assert_eq!(stats["tokenLimited"], 0, "{stats}");
    assert_eq!(summary["pace"]["tokenSource"], "userCap");
    assert_eq!(summary["config"]["tpm"], 600_000);
}

// ---------------------------------------------------------------------------
// 14. Where data goes, start-up and one process per run (issue 19)
// ---------------------------------------------------------------------------

/// Item 1: killed before its first progress file, a run against a local endpoint,
/// resumed from its results journal alone (no --provider, no --base-url, a key in
/// the environment), goes on at the same local endpoint, never at OpenAI's; a
/// journal that does not name its endpoint (an earlier version's) is refused until
/// the endpoint is named, and nothing is sent meanwhile.
#[test]
#[cfg(unix)]
fn a_run_resumed_from_its_journal_alone_sends_to_the_same_local_endpoint() {
    let mock = Mock::start(&RESUME_MOCK);
    let data = Data::new(RESUME_ROWS);
    let mut victim = Running::spawn(openai(
        &data,
        &mock.url,
        "sk-dummy",
        &resume_args(&data, &data.out, "100"),
    ));
    let seen = wait_until(Duration::from_secs(15), || {
        results_file(&data.out).is_some_and(|r| complete_lines(&r) >= 8)
    });
    assert!(seen, "no results within 15 s");
    victim.guard.child().kill().unwrap();
    victim.finish(Duration::from_secs(5));
    assert!(progress_file(&data.out).is_none(), "killed too late");
    let results = results_file(&data.out).unwrap();
    let header = journal_header(&results).expect("the journal names its run");
    assert!(header.to_string().contains(&mock.url), "{header}");
    assert!(!header.to_string().contains("sk-dummy"), "{header}");
    let done_before = RunFiles::in_dir(&data.out).results().len();
    let sent_before = mock.stats()["requests"].as_u64().unwrap();

    let resume = |extra: &[&str]| {
        let mut cmd = shadow(data.root.path());
        cmd.env("OPENAI_API_KEY", "sk-dummy")
            .args([p(&data.csv), "--resume", p(&results)])
            .args(extra);
        run(cmd)
    };
    // As an earlier version wrote it: no header. Refused; nothing sent.
    let journal = std::fs::read_to_string(&results).unwrap();
    let (first, rest) = journal.split_once('\n').unwrap();
    std::fs::write(&results, rest).unwrap();
    let refused = resume(&[]);
    refused.expect_code(2);
    refused
        .stderr_has("does not say which endpoint")
        .stderr_has("--provider openai --base-url URL");
    assert_lacks(&refused.stdout, "api.openai.com");
    assert_eq!(mock.stats()["requests"].as_u64().unwrap(), sent_before);

    // With its header: resumed at the same endpoint, and finished there.
    std::fs::write(&results, format!("{first}\n{rest}")).unwrap();
    let resumed = resume(&[]);
    resumed.expect_code(0);
    resumed.stdout_has(&format!("Endpoint:     {} (model", mock.url));
    assert_lacks(&resumed.stdout, "api.openai.com");
    let files = RunFiles::in_dir(&data.out);
    assert_each_row_once(&files.results(), RESUME_ROWS);
    let sent = mock.stats()["requests"].as_u64().unwrap() - sent_before;
    assert!(
        sent >= (RESUME_ROWS - done_before) as u64,
        "{sent} requests for {} rows left",
        RESUME_ROWS - done_before
    );
    assert_eq!(stat(&files.summary(), "resumedItems"), done_before as u64);
    assert_eq!(
        journal_header(&files.results).expect("header kept")["provider"],
        header["provider"]
    );
}

/// Item 9: the README's command with OPENAI_API_KEY set spends nothing: the
/// built-in mock answers, and the banner says the key was seen and which flag
/// would send to OpenAI.
#[test]
fn a_key_in_the_environment_alone_runs_the_builtin_mock_and_says_so() {
    let data = Data::new(6);
    let mut cmd = shadow(data.root.path());
    cmd.env("OPENAI_API_KEY", "sk-live-not-to-be-spent").args([
        p(&data.csv),
        "--out-dir",
        p(&data.out),
    ]);
    let done = run(cmd);
    done.expect_code(0);
    done.stdout_has("BUILT-IN MOCK")
        .stdout_has("OPENAI_API_KEY is set but not used: no endpoint was named")
        .stdout_has("--provider openai");
    done.stdout_has("Endpoint:     http://127.0.0.1:");
    let summary = RunFiles::in_dir(&data.out).summary();
    assert_eq!(summary["config"]["providerLabel"], "mock");
}

/// Item 5: Ctrl-C while the run starts (here, its model check against a server
/// that accepts and never answers) ends it at once with 130 and a line saying so.
#[test]
#[cfg(unix)]
fn ctrl_c_during_start_up_exits_130_at_once() {
    let server = HungServer::start();
    let data = Data::new(2);
    let url = format!("http://{}/v1", server.addr);
    let mut running = Running::spawn(openai(
        &data,
        &url,
        "sk-dummy",
        &[p(&data.csv), "--out-dir", p(&data.out)],
    ));
    // The banner is printed just before the model check (which waits up to 3 s).
    let banner = wait_until(Duration::from_secs(10), || {
        running.stdout_now().contains("Endpoint:")
    });
    assert!(banner, "no banner: {}", running.stdout_now());
    let sent = std::time::Instant::now();
    signal(running.pid(), "INT");
    let done = running.finish(Duration::from_secs(10));
    done.expect_code(130);
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "took {:?}",
        sent.elapsed()
    );
    assert!(
        done.stderr
            .contains("interrupted during start-up; no request was sent"),
        "{}",
        done.stderr
    );
    // The journal names the run: it can be resumed from it.
    let results = results_file(&data.out).unwrap();
    assert!(done
        .stdout
        .contains(&format!("--resume {}", results.display())));
    assert!(journal_header(&results).is_some());
}

/// Item 6: a second process on a run that one is running is refused at once,
/// naming the first's pid; the first finishes undisturbed. A lock file left by a
/// process that died blocks nothing.
#[test]
#[cfg(unix)]
fn a_second_process_on_a_running_run_is_refused_naming_the_first() {
    let mock = Mock::start(&["--latency-ms", "150", "--error-rate", "0"]);
    let data = Data::new(24);
    let mut first = Running::spawn(openai(
        &data,
        &mock.url,
        "sk-dummy",
        &[
            p(&data.csv),
            "6",
            "--concurrency",
            "1",
            "--out-dir",
            p(&data.out),
        ],
    ));
    let started = wait_until(Duration::from_secs(15), || {
        results_file(&data.out).is_some_and(|r| complete_lines(&r) >= 2)
    });
    assert!(started, "no results within 15 s");
    let results = results_file(&data.out).unwrap();
    let lock = find_file(&data.out, "shadow-mode-batch-", ".lock").expect("a lock file");
    let mut second = shadow(data.root.path());
    second
        .env("OPENAI_API_KEY", "sk-dummy")
        .args(["--resume", p(&results)]);
    let refused = run(second);
    refused.expect_code(2);
    refused
        .stderr_has(&format!("is in use by process {}", first.pid()))
        .stderr_has("goes when that process ends");
    assert!(first.guard.running(), "the first run was disturbed");
    first.finish(RUN_TIMEOUT).expect_code(0);
    let files = RunFiles::in_dir(&data.out);
    assert_each_row_once(&files.results(), 24);
    assert!(!lock.exists(), "the lock file outlived its run");

    // A lock file whose process is gone: the run resumes (here: nothing is left).
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    std::fs::write(&lock, format!("{dead}\n")).unwrap();
    let mut again = shadow(data.root.path());
    again
        .env("OPENAI_API_KEY", "sk-dummy")
        .args(["--resume", p(&files.progress)]);
    run(again).expect_code(0);
    assert!(!lock.exists());
}

// ---------------------------------------------------------------------------
// Issue 21: drift on a mock whose accuracy falls mid-run
// ---------------------------------------------------------------------------

/// The batches a run of the 300 example images in batches of 10 flags as drift,
/// with the built-in mock at 0.9 and `extra` flags.
fn drifting_batches(extra: &[&str]) -> (Vec<u64>, Value) {
    let data = Data::new(300);
    let mut cmd = builtin(&data, &data.csv, &data.out);
    cmd.args(["10", "--mock-accuracy", "0.9"]).args(extra);
    run(cmd).expect_code(0);
    let summary = RunFiles::in_dir(&data.out).summary();
    let reports = summary["allReports"].as_array().unwrap().clone();
    let drift = reports
        .iter()
        .filter(|r| r["drift"] == true)
        .map(|r| r["batchNumber"].as_u64().unwrap())
        .collect();
    (drift, Value::Array(reports))
}

/// The mock's `--mock-accuracy-drop-at 250:0.2` makes rows 250.. (batch 26 on)
/// agree far less: the drift tests flag batch 26, the first after the change, and
/// nothing before it; the same run without the fault flags nothing. Batches 1 to
/// 20 are not judged (too short a history) and say so by having no `driftCheck`.
#[test]
fn a_mid_run_accuracy_drop_is_flagged_as_drift_and_a_stable_run_is_not() {
    let (stable, reports) = drifting_batches(&[]);
    assert_eq!(stable, Vec::<u64>::new(), "a stationary mock never drifts");
    let judged: Vec<u64> = reports
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("driftCheck").is_some())
        .map(|r| r["batchNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(judged, (21..=30).collect::<Vec<_>>());

    let (dropped, reports) = drifting_batches(&["--mock-accuracy-drop-at", "250:0.2"]);
    assert_eq!(dropped.first(), Some(&26), "{dropped:?}");
    let check = &reports[25]["driftCheck"];
    assert_eq!(check["signal"], "belowLimit", "{check}");
    assert!(check["low"].as_f64().unwrap() > 0.3, "{check}");
}

// ---------------------------------------------------------------------------
// Issue 21: a gate for CI (--require), and images that all lie outside the
// data folder refused at the start
// ---------------------------------------------------------------------------

/// The built-in mock at `accuracy` over 20 example images with `requires`: how
/// the run ended and its files.
fn gated_run(data: &Data, out: &Path, accuracy: &str, requires: &[&str]) -> (Finished, RunFiles) {
    let mut cmd = builtin(data, &data.csv, out);
    cmd.args(["--mock-accuracy", accuracy]);
    for r in requires {
        cmd.args(["--require", r]);
    }
    let done = run(cmd);
    let files = RunFiles::in_dir(out);
    (done, files)
}

/// A mock run that meets its gate ends as it would without one (exit 0) and
/// says so; one that misses a requirement ends with exit status 3, a plain line
/// per requirement, the gate in the summary JSON and in the HTML report (also
/// when `shadow-batch report` writes it again).
#[test]
fn a_run_that_misses_its_gate_exits_3_with_a_line_per_requirement() {
    let data = Data::new(20);
    let pass_out = data.dir("pass");
    let (done, files) = gated_run(
        &data,
        &pass_out,
        "1",
        &[
            "agreement >= 0.90",
            "kappa >= 0.6",
            "failure_share <= 0.02",
            "recall[3].low >= 0.1",
        ],
    );
    done.expect_code(0)
        .stdout_has("\ngate: agreement 1.00 >= 0.90 required: passed\n")
        .stdout_has("\ngate: kappa 1.00 >= 0.6 required: passed\n")
        .stdout_has("\ngate: failure_share 0.00 <= 0.02 required: passed\n")
        .stdout_has("\ngate: passed (4 requirements met)\n");
    let summary = files.summary();
    assert_eq!(summary["gate"]["verdict"], "passed");
    assert_eq!(summary["config"]["gate"][0], "agreement >= 0.90");

    let fail_out = data.dir("fail");
    let (done, files) = gated_run(
        &data,
        &fail_out,
        "0.5",
        &["agreement >= 0.90", "failure_share <= 0.02"],
    );
    done.expect_code(3)
        .stdout_has("required: FAILED\n")
        .stdout_has("\ngate: failure_share 0.00 <= 0.02 required: passed\n")
        .stdout_has("\ngate: FAILED (1 of 2 requirements missed)\n");
    let summary = files.summary();
    let agreement = summary["evaluation"]["agreementRate"].as_f64().unwrap();
    assert!(agreement < 0.9, "{agreement}");
    done.stdout_has(&format!(
        "\ngate: agreement {agreement:.2} < 0.90 required: FAILED\n"
    ));
    let gate = &summary["gate"];
    assert_eq!(gate["verdict"], "failed");
    assert_eq!(gate["requirements"][0]["requirement"], "agreement >= 0.90");
    assert_eq!(gate["requirements"][0]["value"], agreement);
    assert_eq!(gate["requirements"][0]["passed"], false);
    assert_eq!(gate["requirements"][1]["passed"], true);
    let report = find_file(&fail_out, "shadow-mode-batch-report-", ".html").expect("a report");
    assert_eq!(report_data(&report)["gate"], *gate);
    std::fs::remove_file(&report).unwrap();
    let mut cmd = shadow(data.root.path());
    cmd.args(["report", p(&files.summary)]);
    run(cmd).expect_code(0);
    assert_eq!(report_data(&report)["gate"], *gate);

    // Without a gate: no gate anywhere (the summary as before).
    let plain_out = data.dir("plain");
    let (done, files) = gated_run(&data, &plain_out, "0.5", &[]);
    done.expect_code(0);
    assert_lacks(&done.stdout, "gate:");
    assert!(files.summary().get("gate").is_none());
    assert!(files.summary()["config"].get("gate").is_none());
}

/// A bad expression is refused before anything runs (clap names it and the
/// core says what is allowed); a label no row has, once the CSV is read. Both
/// exit 2 and leave no file.
#[test]
fn a_bad_requirement_is_refused_before_anything_runs() {
    let data = Data::new(3);
    for (require, says) in [
        (
            "agrement >= 0.9",
            "unknown measure `agrement`; a requirement is MEASURE OP BOUND",
        ),
        ("agreement => 0.9", "`=>` is not a comparison"),
        ("macro_f1.low >= 0.5", "macro_f1 has no interval"),
        ("agreement >= 2", "outside agreement's range, 0 to 1"),
    ] {
        let mut cmd = builtin(&data, &data.csv, &data.out);
        cmd.args(["--require", require]);
        let done = run(cmd);
        done.expect_code(2)
            .stderr_has(&format!("invalid value '{require}' for '--require <EXPR>'"))
            .stderr_has(says);
    }
    let mut cmd = builtin(&data, &data.csv, &data.out);
    cmd.args(["--require", "recall[cow] >= 0.5"]);
    run(cmd)
        .expect_code(2)
        .stderr_has("--require: no row of the CSV has the label `cow` (in `recall[cow] >= 0.5`); its labels: 0, 1, 2");
    assert_eq!(std::fs::read_dir(&data.out).unwrap().count(), 0);
}

/// An aborted run's verdict is not the data set's: its gate is not judged, and
/// the run ends as aborted (exit 2), saying so.
#[test]
fn an_aborted_runs_gate_is_not_judged() {
    let mock = Mock::start(&["--latency-ms", "0", "--require-key", "sk-right"]);
    let data = Data::new(4);
    let done = run(openai(
        &data,
        &mock.url,
        "sk-wrong",
        &[
            p(&data.csv),
            "--out-dir",
            p(&data.out),
            "--require",
            "agreement >= 0.5",
        ],
    ));
    done.expect_code(2)
        .stdout_has("\ngate: agreement >= 0.5: not judged\n")
        .stdout_has("\ngate: not judged: the run was aborted before every row was final; resume it to judge the gate\n");
    let summary = RunFiles::in_dir(&data.out).summary();
    assert_eq!(summary["gate"]["verdict"], "notJudged");
    assert_eq!(summary["gate"]["requirements"][0]["passed"], Value::Null);
}

/// An `images` folder that is a symlink out of the CSV's folder failed every
/// row ("completed with failures", exit 1, nothing useful sent): refused at the
/// start (exit 2, no file), naming the flag; with the flag the run goes.
#[test]
#[cfg(unix)]
fn an_images_folder_linked_out_of_the_data_folder_is_refused_at_the_start() {
    let data = Data::new(5);
    let elsewhere = data.dir("elsewhere");
    std::fs::rename(data.data.join("images"), elsewhere.join("images")).unwrap();
    symlink(elsewhere.join("images"), data.data.join("images"));
    let done = run(builtin(&data, &data.csv, &data.out));
    done.expect_code(2)
        .stderr_has("the images of all 5 rows resolve outside the CSV's folder")
        .stderr_has("(e.g. images/digit-0000.png resolves to ")
        .stderr_has("Pass --allow-outside-data-dir");
    assert_eq!(std::fs::read_dir(&data.out).unwrap().count(), 0);
    let mut cmd = builtin(&data, &data.csv, &data.out);
    cmd.arg("--allow-outside-data-dir");
    run(cmd).expect_code(0);
}

/// Rows whose images lie outside the data folder, after one that does not (so
/// the run goes), fail as one error group: the paths differ, the template does
/// not. The console names an example, the summary lists each row's paths.
#[test]
#[cfg(unix)]
fn failures_that_differ_only_in_their_paths_are_one_error_group() {
    let data = Data::new(30);
    let elsewhere = data.dir("elsewhere");
    std::fs::create_dir(data.data.join("inside")).unwrap();
    std::fs::rename(
        data.data.join("images/digit-0000.png"),
        data.data.join("inside/digit-0000.png"),
    )
    .unwrap();
    std::fs::rename(data.data.join("images"), elsewhere.join("images")).unwrap();
    symlink(elsewhere.join("images"), data.data.join("images"));
    let mut rows = vec!["inside/digit-0000.png,0".to_string()];
    rows.extend((1..30).map(|i| format!("images/digit-{i:04}.png,{}", i % 10)));
    write_csv(&data.csv, "image,label", &rows);
    let done = run(builtin(&data, &data.csv, &data.out));
    done.expect_code(1)
        .stdout_has("Errors: 29 in 1 group ")
        .stdout_has("   29 x <path> resolves to <path>, outside the data folder ")
        .stdout_has("(lines 3, 4, 5, 6, 7, ...; e.g. images/digit-0001.png, ");
    let groups = RunFiles::in_dir(&data.out).summary()["errorGroups"].clone();
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups:#}");
    assert_eq!(groups[0]["count"], 29);
    let details = groups[0]["details"].as_array().unwrap();
    assert_eq!(details.len(), 20);
    assert!(
        details[0]
            .as_str()
            .unwrap()
            .starts_with("images/digit-0001.png, /"),
        "{details:?}"
    );
}
