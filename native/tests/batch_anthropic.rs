//! End-to-end tests of `--via batch-api --provider anthropic` (issue 14, the
//! Anthropic part) against `shadow-batch mock-server`'s Message Batches: the
//! same results as a live Anthropic run at half the price, the HTML report of
//! the run, expired batches, a refused create, kill -9 while creating (the
//! batch exists, its id was never received), after the create and in the middle
//! of a download (each resumed to the results of an uninterrupted run, the
//! mock's counters showing no second create and no request run twice), Ctrl-C
//! detaching then `shadow-batch cancel`, and a canary key found in no output.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const KEY: &str = "sk-ant-api03-batch-canary-7f3e9a1c5b";

/// The mock's root (`http://127.0.0.1:PORT`), Anthropic's base URL.
fn root(mock: &Mock) -> String {
    mock.url.strip_suffix("/v1").expect("a /v1 URL").to_string()
}

/// `shadow-batch CSV 10 --provider anthropic --via batch-api` against `mock`.
fn batch_cmd(data: &Data, mock: &Mock, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = shadow(data.root.path());
    cmd.env_remove("OPENAI_API_KEY")
        .env("ANTHROPIC_API_KEY", KEY)
        .args(["--provider", "anthropic", "--base-url", &root(mock)])
        .args(["--model", "claude-mock"])
        .args(batch_args(data, out))
        .args(extra);
    cmd
}

fn resume_cmd(data: &Data, file: &Path) -> Command {
    let mut cmd = shadow(data.root.path());
    cmd.env_remove("OPENAI_API_KEY")
        .env("ANTHROPIC_API_KEY", KEY)
        .args(["--resume", p(file)]);
    cmd
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
fn an_anthropic_batch_run_ends_with_the_results_of_a_live_run_at_half_the_price() {
    let run = batch_and_live_at_half_the_price(&anthropic_batch(), &["--require-key", KEY]);
    let summary = &run.summary;
    assert_eq!(summary["config"]["batchApi"]["maxBytes"], 256_000_000u64);
    let batches = summary["providerBatches"].as_array().unwrap();
    assert!(
        batches.iter().all(|b| b["status"] == "done"
            && b["batchId"].as_str().unwrap().starts_with("msgbatch_")
            && b.get("fileId").is_none()),
        "{batches:#?}"
    );
    // One create per batch, nothing uploaded; the journal says so.
    let stats = run.mock.stats();
    let recs = provider_records(&run.batch_out);
    assert_eq!(stat(&stats, "batchUploads"), 0);
    assert_eq!(
        stat(&stats, "batchCreates") as usize,
        count(&recs, "created")
    );
    assert_eq!(count(&recs, "submitting"), count(&recs, "created"));
    assert_eq!(stat(&stats, "unauthorized"), 0, "the key went as x-api-key");
    run.batch.stdout_has("msgbatch_mock000001: in_progress");
    // The key is nowhere.
    assert_no_key(&run.batch, run.data.root.path());
}

#[test]
fn an_expired_anthropic_batch_re_sends_only_its_unfinished_rows() {
    let (mock, batches) = expired_batch_re_sends_its_unfinished_rows(&anthropic_batch());
    assert_eq!(batches[0]["requestCounts"]["notRun"], 10);
    let stats = mock.stats();
    assert_eq!(stat(&stats, "batchCreates"), 2);
    assert_eq!(stat(&stats, "batchLines"), 20);
}

#[test]
fn a_refused_anthropic_create_aborts_resumably_and_the_resume_completes() {
    let (mock, _data, out) =
        failed_batch_aborts_and_the_resume_completes(&anthropic_batch(), |first, _, mock| {
            first.stderr_has("HTTP 400").stderr_has("--batch-fail");
            assert_eq!(mock.stats()["batchCreates"], 0);
        });
    let stats = mock.stats();
    assert_eq!(stat(&stats, "batchCreates"), 1);
    assert!(stat(&stats, "batchLists") >= 1, "looked for a batch first");
    let recs = provider_records(&out);
    assert_eq!(count(&recs, "submitting"), 2, "{recs:#?}");
}

/// Anthropic's batch-API runs against the mock.
fn anthropic_batch() -> BatchCommands {
    BatchCommands {
        start: Box::new(batch_cmd),
        live: Box::new(|data, mock, out, extra| {
            let mut live = shadow(data.root.path());
            live.env_remove("OPENAI_API_KEY")
                .env("ANTHROPIC_API_KEY", KEY)
                .args(["--provider", "anthropic", "--base-url", &root(mock)])
                .args(["--model", "claude-mock"])
                .args([p(&data.csv), "10", "--out-dir", p(out)])
                .args(extra);
            live
        }),
        resume: Box::new(|data, _, file| resume_cmd(data, file)),
        cancel: |data, file| {
            let mut cancel = shadow(data.root.path());
            cancel
                .env("ANTHROPIC_API_KEY", KEY)
                .args(["cancel", p(file)]);
            cancel
        },
    }
}

/// [`kill_and_resume_batch`] of an Anthropic run; the key is in no output and
/// no file. Returns the victim's mock's counters.
fn kill_and_resume(
    mock_flags: &str,
    what: &str,
    ready: impl Fn(&Path, &Mock) -> bool,
    before_resume: impl Fn(&Data, &RunFiles),
) -> Value {
    let done = kill_and_resume_batch(
        &anthropic_batch(),
        mock_flags,
        &[],
        what,
        ready,
        before_resume,
    );
    assert_no_key(&done.resumed, done.data.root.path());
    done.victim
}

/// [`kill_and_resume`] of a batch that runs 3 s, killed once it exists.
fn killed_once_created(what: &str, before_resume: impl Fn(&Data, &RunFiles)) -> Value {
    kill_and_resume(
        "--batch-ms 3000 --error-rate 0",
        what,
        |out, _| batch_created(out),
        before_resume,
    )
}

#[test]
#[cfg(unix)]
fn killed_while_creating_an_anthropic_batch_resumes_by_finding_it() {
    // The create is answered 3 s late: the kill lands after the batch exists at
    // the provider but before its id is known. The journal holds the intent;
    // the resume finds the batch by its request count and creation time.
    let stats = kill_and_resume(
        "--batch-ms 500 --error-rate 0 --batch-create-delay-ms 3000",
        "create in flight",
        |out, mock| {
            // The mock has made the batch and holds its answer back.
            let recs = provider_records(out);
            count(&recs, "submitting") >= 1
                && count(&recs, "created") == 0
                && mock.stats()["batchCreates"] == 1
        },
        |data, files| {
            // Resumed live, the rows of a batch that may exist would go again:
            // refused.
            assert_live_resume_refused(resume_cmd(data, &files.progress));
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
fn a_resume_says_it_looks_for_a_batch_an_interrupted_create_may_have_made() {
    let mock = Mock::start_with("--batch-ms 300 --error-rate 0 --batch-create-delay-ms 3000");
    let data = Data::new(4);
    let out = data.dir("out");
    let mut victim = Running::spawn(batch_cmd(&data, &mock, &out, &[]));
    let seen = wait_until(Duration::from_secs(15), || {
        mock.stats()["batchCreates"] == 1
    });
    assert!(seen, "no create");
    victim.kill();
    let files = RunFiles::in_dir(&out);
    let resumed = run(resume_cmd(&data, &files.progress));
    resumed.expect_code(0);
    resumed.stdout_has("1 create(s) of the last session may have made a batch");
    assert_each_row_once(&files.results(), 4);
    assert_eq!(mock.stats()["batchCreates"], 1);
}

#[test]
#[cfg(unix)]
fn killed_after_the_anthropic_create_resumes_by_polling_the_same_batch() {
    let stats = killed_once_created("create", |_, _| {});
    assert_eq!(stat(&stats, "batchLists"), 0, "nothing to look for");
}

#[test]
#[cfg(unix)]
fn killed_mid_download_of_anthropic_results_resumes_to_the_same_results() {
    let stats = kill_and_resume(
        SLOW_DOWNLOAD,
        "download",
        |out, _| mid_download(out),
        |_, _| {},
    );
    assert_downloaded_again(&stats);
}

#[test]
#[cfg(unix)]
fn ctrl_c_detaches_an_anthropic_run_then_cancel_keeps_what_finished() {
    detach_cancel_and_resume(
        &anthropic_batch(),
        |detached| {
            detached.detached.stdout_has(
                "Detached: 1 provider batch(es) keep running at the provider (msgbatch_",
            );
        },
        |_, summary| {
            assert_eq!(
                summary["providerBatches"][0]["status"], "done (canceled)",
                "{summary:#}"
            );
        },
    );
}

#[test]
fn a_refused_key_stops_an_anthropic_batch_run_and_the_key_is_in_no_output() {
    let (mock, data, out) = mock_and_data(
        &["--require-key", "sk-ant-the-right-one", "--error-rate", "0"],
        3,
    );
    let done = run(batch_cmd(&data, &mock, &out, &[]));
    done.expect_code(2);
    done.stderr_has("401");
    assert!(stat(&mock.stats(), "unauthorized") >= 1);
    assert_eq!(mock.stats()["batchCreates"], 0);
    assert_no_key(&done, data.root.path());
    // And a run whose every call is answered: the key went in each request, and
    // nowhere else.
    let mock = Mock::start(&["--require-key", KEY, "--batch-ms", "200"]);
    let done = run(batch_cmd(&data, &mock, &data.dir("ok"), &[]));
    done.expect_code(0);
    assert_eq!(mock.stats()["unauthorized"], 0);
    assert_no_key(&done, data.root.path());
}

#[test]
#[cfg(unix)]
fn killed_with_its_provider_journal_lost_an_anthropic_run_resumes_without_creating_again() {
    // The batch runs 3 s; killed once it exists, its provider journal deleted:
    // the resume takes the batch from the progress file, reads its rows from
    // its results once it ends, and creates nothing.
    let stats = killed_once_created("lost journal", |_, files| {
        let journal = provider_file(files.results.parent().unwrap()).expect("a journal");
        std::fs::remove_file(journal).unwrap();
    });
    assert_eq!(stat(&stats, "batchCreates"), 1);
}
