//! End-to-end tests of `--via batch-api` (issue 14) against `shadow-batch
//! mock-server`'s Batch API: the same results as a live run, expired and failed
//! batches, errored lines re-sent, kill -9 after the upload, after the create and
//! in the middle of a download (each resumed to the results of an uninterrupted
//! run, with the mock's counters showing no second upload or create), Ctrl-C
//! detaching, `shadow-batch cancel`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// `shadow-batch CSV --via batch-api` against the mock at `url`, into `out`.
fn batch_cmd(data: &Data, url: &str, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = shadow(data.root.path());
    cmd.env("OPENAI_API_KEY", "sk-batch-dummy")
        .args(["--provider", "openai", "--base-url", url])
        .args(batch_args(data, out))
        .args(extra);
    cmd
}

/// The same, resuming from `file`.
fn resume_cmd(data: &Data, url: &str, file: &Path) -> Command {
    let mut cmd = shadow(data.root.path());
    cmd.env("OPENAI_API_KEY", "sk-batch-dummy")
        .args(["--resume", p(file)]);
    let _ = url;
    cmd
}

#[test]
fn a_batch_api_run_ends_with_the_same_results_as_a_live_run_at_half_the_price() {
    let BatchAndLive {
        mock,
        data,
        batch_out,
        batch,
        summary,
    } = batch_and_live_at_half_the_price(&openai(), &[]);
    let batches = summary["providerBatches"].as_array().unwrap();
    assert!(
        batches.iter().all(|b| b["status"] == "done"),
        "{batches:#?}"
    );
    // The progress file: reports of 10 in order, and the provider batches.
    let progress = RunFiles::in_dir(&batch_out).progress();
    assert_eq!(progress["batchNumber"], 3);
    assert!(progress["providerBatches"].as_array().unwrap().len() >= 3);
    // Every shard was uploaded and created once; the journal says so.
    let stats = mock.stats();
    let recs = provider_records(&batch_out);
    assert_eq!(
        stat(&stats, "batchUploads") as usize,
        count(&recs, "uploaded")
    );
    assert_eq!(
        stat(&stats, "batchCreates") as usize,
        count(&recs, "created")
    );
    assert_eq!(count(&recs, "done"), batches.len());
    batch.stdout_has("provider batch shard 1");
    // No key anywhere.
    for (path, bytes) in all_files(data.root.path()) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("sk-batch-dummy"),
            "key in {}",
            path.display()
        );
    }
}

/// The batch files the mock took and the batches it created.
fn uploads_and_creates(mock: &Mock) -> (u64, u64) {
    let stats = mock.stats();
    (stat(&stats, "batchUploads"), stat(&stats, "batchCreates"))
}

#[test]
fn an_expired_batch_re_sends_only_its_unfinished_rows() {
    let (mock, batches) = expired_batch_re_sends_its_unfinished_rows(&openai());
    assert_eq!(batches[0]["status"], "done (expired)");
    assert_eq!(uploads_and_creates(&mock), (2, 2));
}

#[test]
fn a_failed_batch_aborts_resumably_and_the_resume_completes() {
    let (mock, ..) =
        failed_batch_aborts_and_the_resume_completes(&openai(), |first, summary, _| {
            first.stderr_has("failed, so none of its requests ran");
            assert_eq!(summary["abortKind"]["kind"], "batchFailed");
        });
    assert_eq!(uploads_and_creates(&mock), (2, 2));
}

#[test]
fn batch_api_needs_a_provider_with_one() {
    let data = Data::new(1);
    let mut cmd = shadow(data.root.path());
    cmd.args([
        p(&data.csv),
        "--via",
        "batch-api",
        "--provider",
        "http",
        "--endpoint",
        "http://127.0.0.1:9/x",
    ]);
    let out = run(cmd);
    out.expect_code(2);
    out.stderr_has("the http provider has none")
        .stderr_has("anthropic (Message Batches)")
        .stderr_has("gemini (Batch Mode)");
}

/// OpenAI's runs against the mock.
fn openai() -> BatchCommands {
    BatchCommands {
        start: Box::new(|data, mock, out, extra| batch_cmd(data, &mock.url, out, extra)),
        live: Box::new(|data, mock, out, extra| {
            let mut live = shadow(data.root.path());
            live.env("OPENAI_API_KEY", "sk-batch-dummy")
                .args(["--provider", "openai", "--base-url", &mock.url])
                .args([p(&data.csv), "10", "--out-dir", p(out)])
                .args(extra);
            live
        }),
        resume: Box::new(|data, mock, file| resume_cmd(data, &mock.url, file)),
        cancel: |data, file| {
            let mut cancel = shadow(data.root.path());
            cancel
                .env("OPENAI_API_KEY", "sk-batch-dummy")
                .args(["cancel", p(file)]);
            cancel
        },
    }
}

/// [`kill_and_resume_batch`] of an OpenAI run, `after_kill` done to the
/// victim's output folder, and nothing left behind: the victim's mock saw no
/// more uploads than the clean one's, and neither left a file at the provider
/// or a shard file here. Returns the victim's and the clean mock's counters.
fn kill_tamper_and_resume(
    mock_flags: &str,
    extra: &[&str],
    what: &str,
    ready: impl Fn(&Path) -> bool,
    after_kill: impl Fn(&Path),
) -> (Value, Value) {
    let done = kill_and_resume_batch(
        &openai(),
        mock_flags,
        extra,
        what,
        |out, _| ready(out),
        |_, files| after_kill(files.results.parent().unwrap()),
    );
    let (v, k) = (done.victim, done.clean);
    for (stats, out) in [(&v, &done.victim_out), (&k, &done.clean_out)] {
        assert_eq!(
            stat(stats, "batchFilesLive"),
            0,
            "{what}: files left at the provider"
        );
        assert_eq!(
            find_file(out, ".shadow-batch-", ".jsonl"),
            None,
            "{what}: a shard file left"
        );
    }
    (v, k)
}

/// As [`kill_tamper_and_resume`] with nothing done before the resume; the
/// victim's mock also saw no second upload.
fn kill_and_resume(mock_flags: &str, what: &str, ready: impl Fn(&Path) -> bool) -> Value {
    let (v, k) = kill_tamper_and_resume(mock_flags, &[], what, ready, |_| {});
    assert_eq!(
        stat(&v, "batchUploads"),
        stat(&k, "batchUploads"),
        "{what}: batchUploads"
    );
    v
}

#[test]
#[cfg(unix)]
fn killed_after_the_upload_while_creating_resumes_without_a_second_upload_or_create() {
    // The create is answered 3 s late: the kill lands after the batch exists at
    // the provider but before its id is known; the resume finds it by its file.
    let stats = kill_and_resume(
        "--batch-ms 500 --error-rate 0 --batch-create-delay-ms 3000",
        "upload",
        |out| count(&provider_records(out), "uploaded") >= 1,
    );
    assert!(
        stat(&stats, "batchLists") >= 1,
        "the resume looked for the batch"
    );
}

#[test]
#[cfg(unix)]
fn killed_after_the_create_resumes_by_polling_the_same_batch() {
    kill_and_resume("--batch-ms 3000 --error-rate 0", "create", batch_created);
}

#[test]
#[cfg(unix)]
fn killed_mid_download_resumes_to_the_same_results() {
    let stats = kill_and_resume(SLOW_DOWNLOAD, "download", mid_download);
    assert_downloaded_again(&stats);
}

#[test]
#[cfg(unix)]
fn ctrl_c_detaches_then_cancel_keeps_what_finished_and_resume_sends_the_rest() {
    detach_cancel_and_resume(
        &openai(),
        |run_| {
            run_.detached.stdout_has("shadow-batch cancel");
            // Resuming it live would send the batch's rows again: refused.
            assert_live_resume_refused(resume_cmd(
                &run_.data,
                &run_.mock.url,
                &run_.files.progress,
            ));
        },
        |cancelled, _| {
            cancelled.stdout_has("Cancelled");
        },
    );
}

#[test]
#[cfg(unix)]
fn killed_with_its_provider_journal_lost_resumes_without_creating_a_batch_again() {
    // Six shards of four; killed once three batches exist, and the provider
    // journal deleted: the resume rebuilds it from the progress file and the
    // batches' metadata, and creates only the three that were never made.
    let (v, _) = kill_tamper_and_resume(
        "--batch-ms 3000 --error-rate 0",
        &["--shard-lines", "4"],
        "lost journal",
        |out| count(&provider_records(out), "created") >= 3,
        |out| {
            let journal = provider_file(out).expect("a provider journal");
            std::fs::remove_file(journal).unwrap();
        },
    );
    assert!(stat(&v, "batchLists") >= 1, "the resume listed the batches");
}

#[test]
#[cfg(unix)]
fn killed_during_an_upload_leaves_no_file_behind_and_uses_the_upload_it_finds() {
    // Each upload is answered 2 s late (the file exists meanwhile): the kill
    // lands with a file at the provider no journal names and the shard file in
    // the output folder; the resume finds the upload by its name and uses it.
    let (v, k) = kill_tamper_and_resume(
        "--batch-ms 300 --error-rate 0 --batch-upload-delay-ms 2000",
        &["--shard-lines", "12"],
        "upload",
        |out| {
            let records = provider_records(out);
            count(&records, "uploading") >= 1
                && count(&records, "uploaded") == 0
                && find_file(out, ".shadow-batch-", ".jsonl").is_some()
        },
        |out| {
            assert!(
                find_file(out, ".shadow-batch-", ".jsonl").is_some(),
                "the kill left the shard file"
            );
        },
    );
    assert_eq!(
        stat(&v, "batchUploads"),
        stat(&k, "batchUploads"),
        "the upload the kill cut short was found and used, not made again"
    );
}

#[test]
fn a_finished_runs_files_are_deleted_at_the_provider_unless_kept() {
    let data = Data::new(12);
    for keep in [false, true] {
        let mock = Mock::start(&["--batch-ms", "300", "--error-rate", "0"]);
        let out = data.dir(if keep { "kept" } else { "deleted" });
        let extra: &[&str] = if keep {
            &["--shard-lines", "6", "--keep-provider-files"]
        } else {
            &["--shard-lines", "6"]
        };
        run(batch_cmd(&data, &mock.url, &out, extra)).expect_code(0);
        let stats = mock.stats();
        assert_eq!(stat(&stats, "batchCreates"), 2);
        // Two input files and two output files (no errors, so no error file).
        if keep {
            assert_eq!(stat(&stats, "batchFilesLive"), 4, "{stats:#}");
            assert_eq!(stat(&stats, "batchFileDeletes"), 0);
            let summary = RunFiles::in_dir(&out).summary();
            assert_eq!(summary["config"]["batchApi"]["keepFiles"], true);
        } else {
            assert_eq!(stat(&stats, "batchFilesLive"), 0, "{stats:#}");
            assert_eq!(stat(&stats, "batchFileDeletes"), 4);
        }
    }
}

/// A run of `rows` against a mock whose batches take 4 s, killed once
/// `batches` of them exist: the mock, the data and the output folder.
fn killed_once_created(rows: usize, extra: &[&str], batches: usize) -> (Mock, Data, PathBuf) {
    let (mock, data, out) = mock_and_data(&["--batch-ms", "4000", "--error-rate", "0"], rows);
    let mut victim = Running::spawn(batch_cmd(&data, &mock.url, &out, extra));
    let seen = wait_until(Duration::from_secs(15), || {
        count(&provider_records(&out), "created") >= batches
    });
    assert!(seen, "no {batches} batch(es) created");
    victim.kill();
    (mock, data, out)
}

#[test]
#[cfg(unix)]
fn a_journal_with_swapped_batch_ids_is_refused_naming_its_lines() {
    let (mock, data, out) = killed_once_created(8, &["--shard-lines", "4"], 2);
    let journal = provider_file(&out).unwrap();
    let text = std::fs::read_to_string(&journal).unwrap();
    let swapped = text
        .replace("batch_mock000001", "SWAP")
        .replace("batch_mock000002", "batch_mock000001")
        .replace("SWAP", "batch_mock000002");
    std::fs::write(&journal, swapped).unwrap();
    let files = RunFiles::in_dir(&out);
    let refused = run(resume_cmd(&data, &mock.url, &files.progress));
    refused.expect_code(2);
    let name = journal.file_name().unwrap().to_string_lossy().into_owned();
    refused
        .stderr_has(&name)
        .stderr_has("gives batch batch_mock00000")
        .stderr_has("line ");
    assert_eq!(
        stat(&mock.stats(), "batchCreates"),
        2,
        "nothing created again"
    );
}

#[test]
fn cancel_says_what_there_is_to_cancel() {
    let (mock, data, out) = mock_and_data(&["--batch-ms", "200", "--error-rate", "0"], 4);
    run(batch_cmd(&data, &mock.url, &out, &[])).expect_code(0);
    let files = RunFiles::in_dir(&out);
    let before = std::fs::read(&files.summary).unwrap();
    let mut cancel = shadow(data.root.path());
    cancel
        .env("OPENAI_API_KEY", "sk-batch-dummy")
        .args(["cancel", p(&files.progress)]);
    let finished = run(cancel);
    finished.expect_code(0);
    finished
        .stdout_has("Nothing to cancel")
        .stdout_has("has finished (all 4 rows have results)");
    assert_lacks(&finished.stdout, "To send the rest");
    assert_eq!(
        std::fs::read(&files.summary).unwrap(),
        before,
        "nothing rewritten"
    );
    assert_eq!(stat(&mock.stats(), "batchCancels"), 0);

    let mut cancel = shadow(data.root.path());
    cancel.args(["cancel", p(&data.csv)]);
    let not_a_run = run(cancel);
    not_a_run.expect_code(2);
    not_a_run.stderr_has("shadow-batch cancel takes a file of a batch-API run: its progress file shadow-mode-batch-progress-RUN.json");
    assert_lacks(&not_a_run.stderr, "--resume takes");
}

#[test]
#[cfg(unix)]
fn a_batch_the_endpoint_does_not_know_says_both_ways_it_can_be() {
    let (_mock, data, out) = killed_once_created(4, &[], 1);
    // Resumed against another server, which never saw the batch.
    let other = Mock::start(&["--batch-ms", "4000", "--error-rate", "0"]);
    let files = RunFiles::in_dir(&out);
    let mut resume = resume_cmd(&data, &other.url, &files.progress);
    resume.args(["--base-url", &other.url]);
    let refused = run(resume);
    refused.expect_code(2);
    refused
        .stderr_has("(HTTP 404)")
        .stderr_has("OPENAI_API_KEY now holds another key")
        .stderr_has("--base-url points at another server");
    assert_lacks(&refused.stderr, "Check the key,");
    assert_eq!(
        stat(&other.stats(), "batchCreates"),
        0,
        "nothing created there"
    );
}

#[test]
#[cfg(unix)]
fn a_journal_where_two_records_claim_the_same_rows_is_refused_naming_file_and_lines() {
    let (mock, data, out) = killed_once_created(8, &["--shard-lines", "4"], 2);
    let journal = provider_file(&out).unwrap();
    let records = provider_records(&out);
    let uploaded: Vec<usize> = (0..records.len())
        .filter(|&i| records[i]["record"] == "uploaded")
        .collect();
    let mut edited = records.clone();
    edited[uploaded[1]]["members"] = records[uploaded[0]]["members"].clone();
    let text: String = edited.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&journal, text).unwrap();
    let files = RunFiles::in_dir(&out);
    let refused = run(resume_cmd(&data, &mock.url, &files.progress));
    refused.expect_code(2);
    let name = journal.file_name().unwrap().to_string_lossy().into_owned();
    let first_row = records[uploaded[0]]["members"][0][0].as_u64().unwrap();
    let lines = format!(
        "lines {} and {} both claim row {first_row} (attempt 1)",
        uploaded[0] + 1,
        uploaded[1] + 1
    );
    refused
        .stderr_has(&format!("cannot resume from {}", journal.display()))
        .stderr_has(&name)
        .stderr_has(&lines);
    assert_eq!(
        stat(&mock.stats(), "batchCreates"),
        2,
        "nothing created again"
    );
}

/// A batch-API run is judged by its gate as a live run is: exit 3 when it
/// misses a requirement, the gate in its summary file.
#[test]
fn a_batch_api_run_that_misses_its_gate_exits_3() {
    let mock = Mock::start_with("--batch-ms 200 --error-rate 0 --latency-ms 0");
    let data = Data::new(10);
    let out = data.dir("out");
    let done = run(batch_cmd(
        &data,
        &mock.url,
        &out,
        &[
            "--require",
            "failure_share <= 0",
            "--require",
            "failure_share < 0",
        ],
    ));
    done.expect_code(3)
        .stdout_has("\ngate: failure_share 0.00 <= 0 required: passed\n")
        .stdout_has("\ngate: failure_share 0.00 >= 0 required: FAILED\n")
        .stdout_has("\ngate: FAILED (1 of 2 requirements missed)\n");
    let summary = RunFiles::in_dir(&out).summary();
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["gate"]["verdict"], "failed");
    assert_eq!(summary["gate"]["requirements"][1]["passed"], false);
}
