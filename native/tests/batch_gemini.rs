//! End-to-end tests of `--via batch-api --provider gemini` (issue 25, the
//! Gemini part) against `shadow-batch mock-server`'s Gemini Batch Mode: the
//! same results as a live Gemini run at half the price (per-line errors inside
//! SUCCEEDED batches re-sent as a live run retries them), the key sent as
//! `x-goog-api-key` and found in no output, an expired batch (no results)
//! re-sending only its rows, a failed batch, kill -9 while creating (the batch
//! exists, its name was never received: found by its display name), after
//! the create and in the middle of a download (each resumed to the results of
//! an uninterrupted run, the mock's counters showing no second upload or
//! create and no line run twice), Ctrl-C detaching then `shadow-batch cancel`.
//!
//! Each runs twice where the two input forms differ: by file (the inline
//! limit set to 0), and inline (the default limit: the tests' shards are far
//! under it), where nothing is uploaded, the results come from the finished
//! operation, and a shard one byte past the limit goes by file.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

const KEY: &str = "AIza-gemini-batch-canary-91d3c5e7";

/// The mock's root (`http://127.0.0.1:PORT`): Gemini's base URL (`/v1beta`
/// is added).
fn root(mock: &Mock) -> String {
    mock.url.strip_suffix("/v1").expect("a /v1 URL").to_string()
}

fn gemini_args(cmd: &mut Command, mock: &Mock) {
    cmd.env_remove("OPENAI_API_KEY")
        .env("GEMINI_API_KEY", KEY)
        .args(["--provider", "gemini", "--base-url", &root(mock)])
        .args(["--model", "gemini-mock"]);
}

/// The (undocumented) setting of Gemini's inline limit, in bytes of a
/// create body: `0` sends every shard as an uploaded file.
const INLINE_LIMIT: &str = "SHADOW_BATCH_GEMINI_INLINE_MAX_BYTES";

/// How the shards of a test's runs go: `Some(limit)` sets the inline limit
/// (`"0"`: always a file), `None` leaves shadow-batch's default (19 MB: the
/// tests' small shards go inline).
type Limit = Option<&'static str>;

fn with_limit(cmd: &mut Command, limit: Limit) {
    match limit {
        Some(bytes) => cmd.env(INLINE_LIMIT, bytes),
        None => cmd.env_remove(INLINE_LIMIT),
    };
}

/// `shadow-batch CSV 10 --provider gemini --via batch-api` against `mock`,
/// every shard an uploaded file.
fn batch_cmd(data: &Data, mock: &Mock, out: &Path, extra: &[&str]) -> Command {
    batch_cmd_limited(data, mock, out, extra, FILE)
}

fn batch_cmd_limited(
    data: &Data,
    mock: &Mock,
    out: &Path,
    extra: &[&str],
    limit: Limit,
) -> Command {
    let mut cmd = shadow(data.root.path());
    gemini_args(&mut cmd, mock);
    with_limit(&mut cmd, limit);
    cmd.args(batch_args(data, out)).args(extra);
    cmd
}

fn resume_cmd(data: &Data, file: &Path) -> Command {
    resume_cmd_limited(data, file, FILE)
}

fn resume_cmd_limited(data: &Data, file: &Path, limit: Limit) -> Command {
    let mut cmd = shadow(data.root.path());
    with_limit(&mut cmd, limit);
    cmd.env_remove("OPENAI_API_KEY")
        .env("GEMINI_API_KEY", KEY)
        .args(["--resume", p(file)]);
    cmd
}

/// Every shard by file.
const FILE: Limit = Some("0");
/// The default limit: the tests' shards go inline.
const INLINE: Limit = None;

/// Gemini's batch-API runs against the mock, every shard an uploaded file.
fn gemini_batch() -> BatchCommands {
    gemini_batch_limited(FILE)
}

/// Gemini's batch-API runs against the mock with the inline limit `limit`.
fn gemini_batch_limited(limit: Limit) -> BatchCommands {
    BatchCommands {
        start: Box::new(move |data, mock, out, extra| {
            batch_cmd_limited(data, mock, out, extra, limit)
        }),
        live: Box::new(|data, mock, out, extra| {
            let mut live = shadow(data.root.path());
            gemini_args(&mut live, mock);
            live.args([p(&data.csv), "10", "--out-dir", p(out)])
                .args(extra);
            live
        }),
        resume: Box::new(move |data, _, file| resume_cmd_limited(data, file, limit)),
        cancel: |data, file| {
            let mut cancel = shadow(data.root.path());
            cancel
                .env_remove("OPENAI_API_KEY")
                .env("GEMINI_API_KEY", KEY)
                .args(["cancel", p(file)]);
            cancel
        },
    }
}

/// No file under `dir`, and neither stream, holds the key.
fn assert_no_key(done: &Finished, dir: &Path) {
    assert!(!done.stdout.contains(KEY), "key on stdout");
    assert!(!done.stderr.contains(KEY), "key on stderr");
    for (path, bytes) in all_files(dir) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(KEY),
            "key in {}",
            path.display()
        );
    }
}

#[test]
fn a_gemini_batch_run_ends_with_the_results_of_a_live_run_at_half_the_price() {
    let run = batch_and_live_at_half_the_price(&gemini_batch(), &["--require-key", KEY]);
    let summary = &run.summary;
    assert_eq!(summary["config"]["provider"]["kind"], "gemini");
    assert_eq!(summary["config"]["batchApi"]["maxBytes"], 2_000_000_000u64);
    let batches = summary["providerBatches"].as_array().unwrap();
    assert!(
        batches.iter().all(|b| b["status"] == "done"
            && b["batchId"].as_str().unwrap().starts_with("batches/mock")
            && b["fileId"].as_str().unwrap().starts_with("files/mock")),
        "{batches:#?}"
    );
    let stats = run.mock.stats();
    let recs = provider_records(&run.batch_out);
    assert_eq!(
        stat(&stats, "unauthorized"),
        0,
        "the key went as x-goog-api-key"
    );
    assert_eq!(
        stat(&stats, "batchUploads") as usize,
        count(&recs, "uploaded")
    );
    assert_eq!(
        stat(&stats, "batchCreates") as usize,
        count(&recs, "created")
    );
    // Inputs and results deleted at the end.
    assert_eq!(stat(&stats, "batchFilesLive"), 0, "{stats:#}");
    run.batch.stdout_has(": pending");
    assert_no_key(&run.batch, run.data.root.path());
}

#[test]
fn an_expired_gemini_batch_re_sends_only_its_rows() {
    // Google's expired batches carry no results: all twenty rows go again,
    // once, in a second batch; nothing of the expired one was answered.
    let mock = Mock::start_with("--batch-ms 300 --batch-expire 1 --error-rate 0");
    let data = Data::new(20);
    let out = data.dir("out");
    run(batch_cmd(&data, &mock, &out, &[])).expect_code(0);
    let files = RunFiles::in_dir(&out);
    let results = files.results();
    assert_each_row_once(&results, 20);
    assert!(results.iter().all(|r| r["attempts"] == 2), "{results:#?}");
    let batches = files.summary()["providerBatches"].clone();
    assert_eq!(batches.as_array().unwrap().len(), 2);
    assert_eq!(batches[0]["status"], "done (expired)");
    assert_eq!(batches[1]["lines"], 20);
    let stats = mock.stats();
    assert_eq!(stat(&stats, "batchCreates"), 2);
    assert_eq!(stat(&stats, "batchLines"), 20);
}

#[test]
fn a_failed_gemini_batch_aborts_resumably_and_the_resume_completes() {
    let (mock, ..) =
        failed_batch_aborts_and_the_resume_completes(&gemini_batch(), |first, summary, _| {
            first.stderr_has("failed, so none of its requests ran");
            assert_eq!(summary["abortKind"]["kind"], "batchFailed");
        });
    let stats = mock.stats();
    assert_eq!(
        (stat(&stats, "batchUploads"), stat(&stats, "batchCreates")),
        (2, 2)
    );
}

/// [`kill_and_resume_batch`] of a Gemini run: no more uploads than the clean
/// run's, nothing left at the provider, the key in no output. Returns the
/// victim's mock's counters.
fn kill_and_resume(mock_flags: &str, what: &str, ready: impl Fn(&Path, &Mock) -> bool) -> Value {
    let done = kill_and_resume_batch(&gemini_batch(), mock_flags, &[], what, ready, |_, _| {});
    let (v, k) = (&done.victim, &done.clean);
    assert_eq!(
        stat(v, "batchUploads"),
        stat(k, "batchUploads"),
        "{what}: no second upload"
    );
    assert_eq!(stat(v, "batchFilesLive"), 0, "{what}: files left");
    assert_no_key(&done.resumed, done.data.root.path());
    done.victim
}

#[test]
#[cfg(unix)]
fn killed_while_creating_a_gemini_batch_resumes_by_finding_it_by_its_name() {
    // The create is answered 3 s late: the kill lands after the batch exists
    // but before its name is known; the resume lists the batches and finds it
    // by its display name (the run and the shard).
    let stats = kill_and_resume(
        "--batch-ms 500 --error-rate 0 --batch-create-delay-ms 3000",
        "create in flight",
        |out, mock| {
            count(&provider_records(out), "uploaded") >= 1 && mock.stats()["batchCreates"] == 1
        },
    );
    assert!(
        stat(&stats, "batchLists") >= 1,
        "the resume looked for the batch"
    );
    assert_eq!(stat(&stats, "batchCreates"), 1);
}

#[test]
#[cfg(unix)]
fn killed_after_the_gemini_create_resumes_by_polling_the_same_batch() {
    let stats = kill_and_resume("--batch-ms 3000 --error-rate 0", "create", |out, _| {
        batch_created(out)
    });
    assert_eq!(stat(&stats, "batchLists"), 0, "nothing to look for");
}

#[test]
#[cfg(unix)]
fn killed_mid_download_of_gemini_results_resumes_to_the_same_results() {
    let stats = kill_and_resume(SLOW_DOWNLOAD, "download", |out, _| mid_download(out));
    assert_downloaded_again(&stats);
}

#[test]
#[cfg(unix)]
fn ctrl_c_detaches_a_gemini_run_then_cancel_keeps_what_finished() {
    detach_cancel_and_resume(
        &gemini_batch(),
        |detached| {
            detached.detached.stdout_has(
                "Detached: 1 provider batch(es) keep running at the provider (batches/mock",
            );
            assert_live_resume_refused(resume_cmd(&detached.data, &detached.files.progress));
        },
        |_, summary| {
            assert_eq!(
                summary["providerBatches"][0]["status"], "done (cancelled)",
                "{summary:#}"
            );
        },
    );
}

#[test]
fn a_refused_key_stops_a_gemini_batch_run_and_the_key_is_in_no_output() {
    let (mock, data, out) = mock_and_data(
        &["--require-key", "AIza-the-right-one", "--error-rate", "0"],
        3,
    );
    let done = run(batch_cmd(&data, &mock, &out, &[]));
    done.expect_code(2);
    done.stderr_has("API key not valid");
    assert!(stat(&mock.stats(), "unauthorized") >= 1);
    assert_eq!(mock.stats()["batchUploads"], 0);
    assert_no_key(&done, data.root.path());
}

#[test]
#[cfg(unix)]
fn killed_with_its_provider_journal_lost_a_gemini_run_resumes_without_creating_again() {
    // Killed once its batch exists (it runs 3 s), the provider journal deleted:
    // the resume finds the batch by its display name (the progress file lists
    // it too), learns its rows from its results file once it ends, and creates
    // nothing.
    let done = kill_and_resume_batch(
        &gemini_batch(),
        "--batch-ms 3000 --error-rate 0",
        &[],
        "lost journal",
        |out, _| batch_created(out),
        |_, files| {
            let journal = provider_file(files.results.parent().unwrap()).expect("a journal");
            std::fs::remove_file(journal).unwrap();
        },
    );
    assert_eq!(stat(&done.victim, "batchCreates"), 1);
    assert_eq!(stat(&done.victim, "batchUploads"), 1);
}

/// Google's "Batch Mode" guide: requests go inline in the create call when
/// the whole create request is under 20 MB, else in an uploaded file. The
/// tests' shards are small: with shadow-batch's default limit (19,000,000
/// bytes) they go inline, nothing uploaded or downloaded, and the run ends
/// with a live run's results at half the price, per-line errors inside a
/// SUCCEEDED batch re-sent as a live run retries them.
#[test]
fn a_small_gemini_batch_run_goes_inline_with_the_results_of_a_live_run() {
    let run =
        batch_and_live_at_half_the_price(&gemini_batch_limited(INLINE), &["--require-key", KEY]);
    let batches = run.summary["providerBatches"].as_array().unwrap();
    assert!(
        batches.iter().all(|b| b["status"] == "done"
            && b["batchId"].as_str().unwrap().starts_with("batches/mock")
            && b["fileId"].is_null()),
        "{batches:#?}"
    );
    let stats = run.mock.stats();
    let recs = provider_records(&run.batch_out);
    assert_eq!(stat(&stats, "batchUploads"), 0, "no upload: {stats:#}");
    assert_eq!(count(&recs, "uploading") + count(&recs, "uploaded"), 0);
    // The choice is journaled: each create's intent, with its rows, no file.
    assert_eq!(count(&recs, "submitting"), count(&recs, "created"));
    assert_eq!(
        stat(&stats, "batchCreates") as usize,
        count(&recs, "created")
    );
    assert_eq!(
        stat(&stats, "batchDownloads"),
        0,
        "results read from the operation"
    );
    assert_eq!(stat(&stats, "batchFilesLive"), 0, "{stats:#}");
    assert_eq!(stat(&stats, "unauthorized"), 0);
    run.batch
        .stdout_has("at most 19000000 bytes goes inline in it (no upload)");
    assert_no_key(&run.batch, run.data.root.path());
}

/// The bytes of the inline create body of a finished run's only shard, from
/// its summary (`runId`, the shard's number, lines and file bytes): `{"batch":
/// {"displayName": "shadow-batch-RUN-N", "inputConfig": {"requests":
/// {"requests": [` + each line rewritten (12 bytes longer than with its
/// newline) joined by commas + `]}}}}`.
fn inline_body_len(summary: &Value) -> u64 {
    let shard = &summary["providerBatches"][0];
    let prefix = format!(
        "{{\"batch\":{{\"displayName\":\"shadow-batch-{}-{}\",\"inputConfig\":{{\"requests\":{{\"requests\":[",
        summary["runId"].as_str().expect("a run id"),
        shard["shard"]
    );
    let lines = shard["lines"].as_u64().unwrap();
    let bytes = shard["bytes"].as_u64().unwrap();
    prefix.len() as u64 + bytes + 12 * lines + (lines - 1) + "]}}}}".len() as u64
}

/// A shard goes inline when its create body is at most the limit, by file
/// when it is one byte more (the limit set by the environment for the test).
#[test]
fn a_gemini_shard_goes_inline_up_to_the_limit_and_by_file_past_it() {
    let data = Data::new(10);
    let go = |limit: Limit, dir: &str| {
        let mock = Mock::start_with("--batch-ms 200 --error-rate 0");
        let out = data.dir(dir);
        run(batch_cmd_limited(&data, &mock, &out, &[], limit)).expect_code(0);
        let summary = RunFiles::in_dir(&out).summary();
        assert_eq!(summary["status"], "completed");
        assert_eq!(summary["providerBatches"].as_array().unwrap().len(), 1);
        (summary, mock.stats())
    };
    let (first, stats) = go(INLINE, "first");
    assert_eq!(stat(&stats, "batchUploads"), 0);
    let body = inline_body_len(&first);
    assert!(body > 1_000, "{body}");
    let exact = body.to_string().leak();
    let (at, stats) = go(Some(exact), "at-the-limit");
    assert_eq!(inline_body_len(&at), body, "the same lines");
    assert_eq!(stat(&stats, "batchUploads"), 0, "{body} bytes fit {exact}");
    assert!(at["providerBatches"][0]["fileId"].is_null());
    let under = (body - 1).to_string().leak();
    let (past, stats) = go(Some(under), "past-the-limit");
    assert_eq!(
        stat(&stats, "batchUploads"),
        1,
        "{body} bytes exceed {under}"
    );
    assert_eq!(stat(&stats, "batchCreates"), 1);
    assert!(past["providerBatches"][0]["fileId"]
        .as_str()
        .unwrap()
        .starts_with("files/mock"));
    let results = |s: &str| RunFiles::in_dir(&data.root.path().join(s)).results();
    assert_eq!(
        outcomes(&results("at-the-limit")),
        outcomes(&results("past-the-limit"))
    );
}

#[test]
#[cfg(unix)]
fn killed_after_an_inline_gemini_create_resumes_without_creating_again() {
    let done = kill_and_resume_batch(
        &gemini_batch_limited(INLINE),
        "--batch-ms 3000 --error-rate 0",
        &[],
        "inline create",
        |out, _| batch_created(out),
        |_, _| {},
    );
    let (v, k) = (&done.victim, &done.clean);
    assert_eq!(stat(v, "batchCreates"), 1, "no second create");
    assert_eq!(stat(k, "batchCreates"), 1);
    assert_eq!(stat(v, "batchUploads"), 0, "nothing uploaded");
    assert_eq!(stat(v, "batchLists"), 0, "nothing to look for");
    assert_eq!(
        count(&provider_records(&done.victim_out), "submitting"),
        1,
        "one intent"
    );
    assert_no_key(&done.resumed, done.data.root.path());
}

#[test]
#[cfg(unix)]
fn killed_while_creating_an_inline_gemini_batch_resumes_by_finding_it_by_its_name() {
    // The create is answered 3 s late: the kill lands after the batch exists
    // but before its name is known; the resume lists the batches, finds it by
    // its display name, and neither uploads nor creates.
    let done = kill_and_resume_batch(
        &gemini_batch_limited(INLINE),
        "--batch-ms 500 --error-rate 0 --batch-create-delay-ms 3000",
        &[],
        "inline create in flight",
        |out, mock| {
            count(&provider_records(out), "submitting") >= 1 && mock.stats()["batchCreates"] == 1
        },
        |_, _| {},
    );
    let v = &done.victim;
    assert_eq!(stat(v, "batchCreates"), 1);
    assert!(
        stat(v, "batchLists") >= 1,
        "the resume looked for the batch"
    );
    assert_eq!(stat(v, "batchUploads"), 0);
    assert_no_key(&done.resumed, done.data.root.path());
}

#[test]
fn an_expired_inline_gemini_batch_re_sends_only_its_rows() {
    // As by file: the expired batch answers nothing, all twenty rows go again
    // once, inline again, nothing uploaded.
    let mock = Mock::start_with("--batch-ms 300 --batch-expire 1 --error-rate 0");
    let data = Data::new(20);
    let out = data.dir("out");
    run(batch_cmd_limited(&data, &mock, &out, &[], INLINE)).expect_code(0);
    let files = RunFiles::in_dir(&out);
    let results = files.results();
    assert_each_row_once(&results, 20);
    assert!(results.iter().all(|r| r["attempts"] == 2), "{results:#?}");
    let batches = files.summary()["providerBatches"].clone();
    assert_eq!(batches[0]["status"], "done (expired)");
    assert_eq!(batches[1]["lines"], 20);
    let stats = mock.stats();
    assert_eq!(stat(&stats, "batchCreates"), 2);
    assert_eq!(stat(&stats, "batchLines"), 20);
    assert_eq!(stat(&stats, "batchUploads"), 0);
}

#[test]
fn a_failed_inline_gemini_batch_aborts_resumably_and_the_resume_completes() {
    let (mock, ..) = failed_batch_aborts_and_the_resume_completes(
        &gemini_batch_limited(INLINE),
        |first, summary, _| {
            first.stderr_has("failed, so none of its requests ran");
            assert_eq!(summary["abortKind"]["kind"], "batchFailed");
        },
    );
    let stats = mock.stats();
    assert_eq!(
        (stat(&stats, "batchUploads"), stat(&stats, "batchCreates")),
        (0, 2)
    );
}

#[test]
#[cfg(unix)]
fn ctrl_c_detaches_an_inline_gemini_run_then_cancel_keeps_what_finished() {
    detach_cancel_and_resume(
        &gemini_batch_limited(INLINE),
        |detached| {
            detached.detached.stdout_has(
                "Detached: 1 provider batch(es) keep running at the provider (batches/mock",
            );
            assert_eq!(stat(&detached.mock.stats(), "batchUploads"), 0);
        },
        |_, summary| {
            assert_eq!(
                summary["providerBatches"][0]["status"], "done (cancelled)",
                "{summary:#}"
            );
        },
    );
}

#[test]
#[cfg(unix)]
fn killed_with_its_provider_journal_lost_an_inline_gemini_run_resumes_without_creating_again() {
    // The batch found by its display name, its rows learned from the inline
    // results in its finished operation.
    let done = kill_and_resume_batch(
        &gemini_batch_limited(INLINE),
        "--batch-ms 3000 --error-rate 0",
        &[],
        "lost journal, inline",
        |out, _| batch_created(out),
        |_, files| {
            let journal = provider_file(files.results.parent().unwrap()).expect("a journal");
            std::fs::remove_file(journal).unwrap();
        },
    );
    assert_eq!(stat(&done.victim, "batchCreates"), 1);
    assert_eq!(stat(&done.victim, "batchUploads"), 0);
}
