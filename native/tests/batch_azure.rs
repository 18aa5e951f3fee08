//! End-to-end tests of `--via batch-api --provider azure` (issue 25, the Azure
//! part) against `shadow-batch mock-server`'s Azure OpenAI global batch
//! (`/openai/v1/files`, `/openai/v1/batches`, and the older `/openai/...`
//! with `?api-version=`): the same results as a live Azure run at half the
//! price, the key sent as `api-key` and found in no output, an expired batch
//! re-sending only its rows, a failed batch, kill -9 while creating (the
//! batch exists, its id was never received), after the create and in the
//! middle of a download (each resumed to the results of an uninterrupted run,
//! the mock's counters showing no second upload or create and no line run
//! twice), Ctrl-C detaching then `shadow-batch cancel`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

const KEY: &str = "azure-batch-canary-4c1d9e7a2b";
/// The global-batch deployment every line names as its model.
const DEPLOYMENT: &str = "gpt-4o-mini-batch";

/// The mock's root (`http://127.0.0.1:PORT`): the Azure resource.
fn resource(mock: &Mock) -> String {
    mock.url.strip_suffix("/v1").expect("a /v1 URL").to_string()
}

/// `--provider azure` at the mock's resource and the deployment.
fn azure_args(cmd: &mut Command, mock: &Mock) {
    cmd.env_remove("OPENAI_API_KEY")
        .env("AZURE_OPENAI_API_KEY", KEY)
        .args(["--provider", "azure", "--base-url", &resource(mock)])
        .args(["--deployment", DEPLOYMENT]);
}

/// `shadow-batch CSV 10 --provider azure --via batch-api` against `mock`.
fn batch_cmd(data: &Data, mock: &Mock, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = shadow(data.root.path());
    azure_args(&mut cmd, mock);
    cmd.args(batch_args(data, out)).args(extra);
    cmd
}

fn resume_cmd(data: &Data, file: &Path) -> Command {
    let mut cmd = shadow(data.root.path());
    cmd.env_remove("OPENAI_API_KEY")
        .env("AZURE_OPENAI_API_KEY", KEY)
        .args(["--resume", p(file)]);
    cmd
}

/// Azure's batch-API runs against the mock.
fn azure_batch() -> BatchCommands {
    BatchCommands {
        start: Box::new(batch_cmd),
        live: Box::new(|data, mock, out, extra| {
            let mut live = shadow(data.root.path());
            azure_args(&mut live, mock);
            live.args([p(&data.csv), "10", "--out-dir", p(out)])
                .args(extra);
            live
        }),
        resume: Box::new(|data, _, file| resume_cmd(data, file)),
        cancel: |data, file| {
            let mut cancel = shadow(data.root.path());
            cancel
                .env_remove("OPENAI_API_KEY")
                .env("AZURE_OPENAI_API_KEY", KEY)
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
fn an_azure_batch_run_ends_with_the_results_of_a_live_run_at_half_the_price() {
    let run = batch_and_live_at_half_the_price(&azure_batch(), &["--require-key", KEY]);
    let summary = &run.summary;
    assert_eq!(summary["config"]["batchApi"]["maxBytes"], 200_000_000u64);
    assert_eq!(summary["config"]["provider"]["kind"], "azure");
    let batches = summary["providerBatches"].as_array().unwrap();
    assert!(
        batches.iter().all(|b| b["status"] == "done"
            && b["batchId"].as_str().unwrap().starts_with("batch_mock")
            && b["fileId"].as_str().unwrap().starts_with("file-mock")),
        "{batches:#?}"
    );
    // Every shard was uploaded and created once, the key sent as `api-key`
    // (the mock requires it there), and the journal says so.
    let stats = run.mock.stats();
    let recs = provider_records(&run.batch_out);
    assert_eq!(stat(&stats, "unauthorized"), 0, "the key went as api-key");
    assert_eq!(
        stat(&stats, "batchUploads") as usize,
        count(&recs, "uploaded")
    );
    assert_eq!(
        stat(&stats, "batchCreates") as usize,
        count(&recs, "created")
    );
    // Each batch had an error file, empty when none of its lines failed: all
    // read, all deleted with the inputs and outputs.
    assert!(stat(&stats, "batchDownloads") >= 2 * batches.len() as u64);
    assert_eq!(stat(&stats, "batchFilesLive"), 0, "{stats:#}");
    // Azure's samples' capitalised first status was understood.
    run.batch.stdout_has("batch_mock000001: validating");
    assert_no_key(&run.batch, run.data.root.path());
}

#[test]
fn an_expired_azure_batch_at_a_versioned_path_re_sends_only_its_unfinished_rows() {
    // The older form: /openai/files and /openai/batches with ?api-version=
    // (the mock answers 404 without it).
    let commands = BatchCommands {
        start: Box::new(|data, mock, out, extra| {
            let mut cmd = batch_cmd(data, mock, out, extra);
            cmd.args(["--api-version", "2024-10-21"]);
            cmd
        }),
        ..azure_batch()
    };
    let (mock, batches) = expired_batch_re_sends_its_unfinished_rows(&commands);
    assert_eq!(batches[0]["status"], "done (expired)");
    let stats = mock.stats();
    assert_eq!(
        (stat(&stats, "batchUploads"), stat(&stats, "batchCreates")),
        (2, 2)
    );
    assert_eq!(stat(&stats, "batchLines"), 20);
}

#[test]
fn a_failed_azure_batch_aborts_resumably_and_the_resume_completes() {
    let (mock, ..) =
        failed_batch_aborts_and_the_resume_completes(&azure_batch(), |first, summary, _| {
            first.stderr_has("failed, so none of its requests ran");
            assert_eq!(summary["abortKind"]["kind"], "batchFailed");
        });
    let stats = mock.stats();
    assert_eq!(
        (stat(&stats, "batchUploads"), stat(&stats, "batchCreates")),
        (2, 2)
    );
}

/// [`kill_and_resume_batch`] of an Azure run: no more uploads than the clean
/// run's, nothing left at the provider, the key in no output. Returns the
/// victim's mock's counters.
fn kill_and_resume(mock_flags: &str, what: &str, ready: impl Fn(&Path, &Mock) -> bool) -> Value {
    let done = kill_and_resume_batch(&azure_batch(), mock_flags, &[], what, ready, |_, _| {});
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
fn killed_while_creating_an_azure_batch_resumes_by_finding_it_from_its_file() {
    // The create is answered 3 s late: the kill lands after the batch exists
    // but before its id is known; the resume finds it by its input file.
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
fn killed_after_the_azure_create_resumes_by_polling_the_same_batch() {
    let stats = kill_and_resume("--batch-ms 3000 --error-rate 0", "create", |out, _| {
        batch_created(out)
    });
    assert_eq!(stat(&stats, "batchLists"), 0, "nothing to look for");
}

#[test]
#[cfg(unix)]
fn killed_mid_download_of_azure_results_resumes_to_the_same_results() {
    let stats = kill_and_resume(SLOW_DOWNLOAD, "download", |out, _| mid_download(out));
    assert_downloaded_again(&stats);
}

#[test]
#[cfg(unix)]
fn ctrl_c_detaches_an_azure_run_then_cancel_keeps_what_finished() {
    detach_cancel_and_resume(
        &azure_batch(),
        |detached| {
            detached.detached.stdout_has(
                "Detached: 1 provider batch(es) keep running at the provider (batch_mock",
            );
            assert_live_resume_refused(resume_cmd(&detached.data, &detached.files.progress));
        },
        |cancelled, summary| {
            cancelled.stdout_has("Cancelled");
            assert_eq!(
                summary["providerBatches"][0]["status"], "done (cancelled)",
                "{summary:#}"
            );
        },
    );
}

#[test]
fn a_refused_key_stops_an_azure_batch_run_and_the_key_is_in_no_output() {
    let (mock, data, out) = mock_and_data(
        &["--require-key", "the-right-azure-key", "--error-rate", "0"],
        3,
    );
    let done = run(batch_cmd(&data, &mock, &out, &[]));
    done.expect_code(2);
    done.stderr_has("401");
    assert!(stat(&mock.stats(), "unauthorized") >= 1);
    assert_eq!(mock.stats()["batchUploads"], 0);
    assert_no_key(&done, data.root.path());
}
