//! Whole batch-API runs, OpenAI's Batch API and Anthropic's Message Batches:
//! clean runs, expired and failed batches, crashes and resumes, lost answers and
//! lost or mixed-up provider journals. A scenario both APIs go through is one
//! function taking the [`Dialect`]; each API's test runs it, then checks what is
//! that API's own.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Value};
use shadow_core::batch::{BatchApiConfig, BatchInput, BatchRun};
use shadow_core::journal::ItemStatus;
use shadow_core::report::{RunStatus, Summary};
use shadow_core::{AbortReason, Millis, RunConfig, UsageError};

use super::harness::*;

// ---------------------------------------------------------------------------
// What a scenario needs
// ---------------------------------------------------------------------------

/// Where each record of the provider journal stands, by its kind and shard
/// (`created2`).
fn journal_order(sim: &Sim) -> impl Fn(&str) -> usize {
    let kinds: Vec<String> = sim
        .records()
        .iter()
        .map(|r| format!("{}{}", r["record"].as_str().unwrap(), r["shard"]))
        .collect();
    move |k: &str| {
        kinds
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("no {k} record in {kinds:?}"))
    }
}

/// The error the summary gives for `row`.
fn error_of(s: &Summary, row: usize) -> String {
    s.overall_progress
        .errors
        .iter()
        .find(|e| e.row == row)
        .map(|e| e.error.clone())
        .unwrap_or_else(|| panic!("no error for row {row}"))
}

/// Row -> (status, prediction): the outcomes, whatever the attempts they took.
fn predictions(sim: &Sim) -> BTreeMap<usize, (ItemStatus, Option<String>)> {
    sim.outcomes()
        .into_iter()
        .map(|(row, (status, prediction, _))| (row, (status, prediction)))
        .collect()
}

/// A run crashed before its input number `crash`, if it got that far.
fn crashed_before(
    dialect: Dialect,
    (rows, max_lines): (usize, usize),
    script: &Script,
    crash: usize,
) -> Option<Sim> {
    let mut sim = Sim::of(dialect, rows, max_lines, script.clone());
    sim.crash_before = Some(crash);
    sim.run();
    sim.crashed.then_some(sim)
}

/// The first crash (by the input it came before) that leaves the run as
/// `wanted` says.
fn first_crash(
    dialect: Dialect,
    shape: (usize, usize),
    script: &Script,
    wanted: impl Fn(&Sim) -> bool,
) -> Sim {
    (1..400)
        .filter_map(|crash| crashed_before(dialect, shape, script, crash))
        .find(|sim| wanted(sim))
        .expect("a crash that leaves the run as wanted")
}

/// Runs until the provider has created a batch whose id the run has not
/// journaled (the crash came between the create and its answer).
fn crashed_while_creating(dialect: Dialect, script: &Script, rows: usize) -> Sim {
    let sim = first_crash(dialect, (rows, 50), script, |s| {
        s.provider.creates == 1 && !s.journal.contains("\"created\"")
    });
    let intent = format!("\"{}\"", dialect.first_record());
    assert!(sim.journal.contains(&intent), "{}", sim.journal);
    sim
}

/// A run of 8 rows in shards of 4, crashed once both batches exist.
fn crashed_with_two_batches(dialect: Dialect) -> (Sim, Script) {
    let script = Script::taking(3_600_000);
    let sim = first_crash(dialect, (8, 4), &script, |s| {
        s.journal.matches("\"created\"").count() == 2
    });
    (sim, script)
}

/// Checks a resumed run ended `completed`, naming the crash it came back from.
fn assert_completed(sim: &Sim, crash: usize) {
    let s = sim.summary();
    assert_eq!(
        s.status,
        RunStatus::Completed,
        "crash before input {crash}: {:?}\n{}",
        s.abort_reason,
        sim.journal
    );
}

/// The records of a crashed run's journal, as JSON values.
fn journal_values(journal: &str) -> Vec<Value> {
    journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn journal_text(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

/// The indexes of the records of one kind.
fn indexes_of(records: &[Value], kind: &str) -> Vec<usize> {
    (0..records.len())
        .filter(|&i| records[i]["record"] == kind)
        .collect()
}

/// `journal` with the batch ids of its two `created` records swapped, and the
/// indexes of those records.
fn with_batch_ids_swapped(journal: &str) -> (String, Vec<usize>) {
    let mut records = journal_values(journal);
    let created = indexes_of(&records, "created");
    let one = records[created[0]]["batchId"].clone();
    records[created[0]]["batchId"] = records[created[1]]["batchId"].clone();
    records[created[1]]["batchId"] = one;
    (journal_text(&records), created)
}

/// Resumes a crashed run with the progress file's provider batches lost too and
/// `journal` in the provider journal's place: the provider's word on the
/// batches stops the run, sending no row again. Returns why it stopped.
fn stopped_by_the_provider(sim: &mut Sim, script: Script, journal: &str) -> String {
    sim.saved.clear();
    let submitted = sim.provider.submitted.len();
    sim.resume_lost(script, journal).unwrap();
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Aborted);
    assert_eq!(sim.provider.submitted.len(), submitted, "no row sent again");
    s.abort_reason.clone().unwrap()
}

/// A run of `rows` rows in batches of at most `max_bytes` (and 50 lines).
fn ran_within_bytes(
    dialect: Dialect,
    rows: usize,
    max_bytes: u64,
    change: impl FnOnce(&mut RunConfig),
) -> Sim {
    let mut sim = Sim::of(dialect, rows, 50, Script::default());
    let mut config = sim.config(50);
    config.batch_api.as_mut().unwrap().max_bytes = max_bytes;
    change(&mut config);
    sim.batch = BatchRun::new(config, csv(rows), START).unwrap();
    sim.run();
    sim
}

// ---------------------------------------------------------------------------
// Scenarios both APIs go through
// ---------------------------------------------------------------------------

/// 120 rows in shards of 50 through six simulated hours, two answers wrong.
/// Returns the finished run for the API's own checks.
fn a_clean_run(dialect: Dialect) -> Sim {
    let script = Script {
        processing_ms: 6 * 3_600_000,
        wrong: [4, 9].into(),
        ..Script::default()
    };
    let sim = Sim::ran(dialect, 120, 50, script);
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!((s.statistics.successful, s.statistics.failed), (120, 0));
    assert_eq!(s.evaluation.agreements, 118);
    let batches = s.provider_batches.as_ref().unwrap();
    assert_eq!(
        batches.iter().map(|b| b.lines).collect::<Vec<_>>(),
        [50, 50, 20]
    );
    assert!(batches.iter().all(|b| b.status == "done"), "{batches:?}");
    // Every row once, whatever the order of lines.
    let outcomes = sim.outcomes();
    assert_eq!(outcomes.len(), 120);
    assert!(outcomes.values().all(|(_, _, attempts)| *attempts == 1));
    // Polled from 5 s, growing to a minute, never slower.
    let polls = &sim.provider.poll_times;
    assert!(polls[0].since(START) >= 4_000);
    assert!(
        polls.windows(2).all(|w| w[1].since(w[0]) <= 60_000),
        "no wait over poll_max"
    );
    // At the batch price.
    assert!(s.cost.price.as_ref().unwrap().batch_api);
    // The provider journal: each shard's first step, then its batch, then its
    // end, then done.
    let at = journal_order(&sim);
    for shard in 1..=3 {
        let first = format!("{}{shard}", dialect.first_record());
        assert!(at(&first) < at(&format!("created{shard}")));
        assert!(at(&format!("created{shard}")) < at(&format!("ended{shard}")));
        assert!(at(&format!("ended{shard}")) < at(&format!("done{shard}")));
    }
    sim
}

/// The first batch expires having run only its even lines: the odd ones, and
/// only they, go in a second batch as their attempt 2.
fn an_expired_batch(dialect: Dialect) -> Sim {
    let script = Script {
        processing_ms: 24 * 3_600_000,
        expire_first: 1,
        ..Script::default()
    };
    let sim = Sim::ran(dialect, 10, 50, script);
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!(s.statistics.successful, 10);
    assert_eq!(sim.provider.creates, 2);
    let second: Vec<(usize, u32)> = sim
        .provider
        .submitted
        .iter()
        .filter(|(_, _, b)| *b == dialect.batch_id(2))
        .map(|(r, a, _)| (*r, *a))
        .collect();
    assert_eq!(second, [(1, 2), (3, 2), (5, 2), (7, 2), (9, 2)]);
    let outcomes = sim.outcomes();
    assert_eq!(outcomes[&0].2, 1);
    assert_eq!(outcomes[&1].2, 2);
    sim
}

/// Cancelled five hours into a ten-hour batch: what ran is kept, the rest
/// (not failed) waits for a resume, which sends only it.
fn cancelled_half_way(dialect: Dialect) -> Sim {
    let script = Script::taking(10 * 3_600_000);
    let mut sim = Sim::of(dialect, 10, 50, script.clone());
    sim.run_until(|s| s.now.since(START) >= 5 * 3_600_000);
    sim.batch
        .handle(sim.now, BatchInput::CancelBatches)
        .unwrap();
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Interrupted);
    let done = s.statistics.successful;
    assert!((1..10).contains(&done), "{done} done at cancel");
    assert_eq!(s.statistics.failed, 0, "cancelled rows are not failures");
    assert_eq!(s.statistics.remaining, 10 - done);
    assert_eq!(
        s.provider_batches.as_ref().unwrap()[0].status,
        format!("done ({})", dialect.cancelled()).as_str()
    );
    sim.resume(script);
    sim.run();
    assert_eq!(sim.summary().statistics.successful, 10);
    assert_eq!(sim.provider.submitted.len(), 10 + (10 - done));
    sim
}

/// Eight rows whose lines error as `errors` says, row 5 once and row
/// `gives_up` on every attempt: errored lines are sent again, a batch a round,
/// until the retry budget is spent.
fn errored_lines(dialect: Dialect, errors: Script, gives_up: usize) -> Sim {
    let script = Script {
        processing_ms: 60_000,
        ..errors
    };
    let sim = Sim::ran(dialect, 8, 50, script);
    let outcomes = sim.outcomes();
    assert_eq!(
        (outcomes[&gives_up].0, outcomes[&gives_up].2),
        (ItemStatus::Failed, 3),
        "max_retries 2: three attempts"
    );
    let error = error_of(sim.summary(), gives_up);
    assert!(error.contains("gave up after 3 attempts"), "{error}");
    assert_eq!(outcomes[&5], (ItemStatus::Success, Some("owl".into()), 2));
    assert_eq!(
        sim.provider.creates, 3,
        "all 8, then the rows that errored, then row {gives_up}"
    );
    assert_eq!(sim.provider.submitted.len(), 8 + 2 + 1);
    sim
}

/// The first batch is refused: the run stops resumably with every row left
/// (`stopped` checks why), and a resume once the cause is gone finishes it.
fn a_refused_batch_then_a_resume(dialect: Dialect, stopped: impl FnOnce(&Sim, &str)) -> Sim {
    let script = Script {
        processing_ms: 60_000,
        fail_first: 1,
        ..Script::default()
    };
    let mut sim = Sim::ran(dialect, 6, 50, script.clone());
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Aborted);
    assert_eq!(
        s.statistics.remaining, 6,
        "nothing failed: all left for resume"
    );
    stopped(&sim, s.abort_reason.as_deref().unwrap());
    sim.resume(Script {
        fail_first: 0,
        ..script
    });
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!(s.statistics.successful, 6);
    sim
}

/// Four rows whose batch's create goes wrong as `trouble` says: the run still
/// ends, its batch created once.
fn one_create_despite(dialect: Dialect, trouble: Script) -> Sim {
    let script = Script {
        processing_ms: 60_000,
        ..trouble
    };
    let sim = Sim::ran(dialect, 4, 50, script);
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed, "{dialect:?}");
    assert_eq!(s.statistics.successful, 4);
    assert_eq!(sim.provider.creates, 1, "{dialect:?}");
    sim
}

/// Crashes the run before each of its inputs in turn (more than `min_inputs`)
/// and resumes it: it ends with a clean run's outcomes, never submitting a
/// (row, attempt) twice nor creating more batches. `also` checks each resumed
/// run against the clean one, given the provider's lists at the crash.
fn crash_before_each_input(
    dialect: Dialect,
    min_inputs: usize,
    mut also: impl FnMut(usize, &Sim, &Sim, usize),
) {
    let script = Script {
        processing_ms: 2 * 3_600_000,
        expire_first: 1,
        server_errors: [(3, 1)].into(),
        wrong: [1].into(),
        ..Script::default()
    };
    let shape = (9, 4);
    let clean = Sim::ran(dialect, shape.0, shape.1, script.clone());
    assert_eq!(clean.summary().status, RunStatus::Completed);
    let expected = predictions(&clean);
    let inputs = clean.handled;
    assert!(inputs > min_inputs, "{inputs} inputs");
    for crash in 1..=inputs {
        let Some(mut sim) = crashed_before(dialect, shape, &script, crash) else {
            continue;
        };
        let lists = sim.provider.lists;
        sim.resume(script.clone());
        sim.run();
        assert_completed(&sim, crash);
        assert_eq!(predictions(&sim), expected, "crash before input {crash}");
        // Never pays twice: no (row, attempt) is in two batches.
        let mut seen = HashSet::new();
        for (row, attempt, _) in &sim.provider.submitted {
            assert!(
                seen.insert((row, attempt)),
                "crash {crash}: row {row} attempt {attempt} submitted twice\n{}",
                sim.journal
            );
        }
        assert!(
            sim.provider.creates <= clean.provider.creates,
            "crash {crash}: {} creates, clean {}",
            sim.provider.creates,
            clean.provider.creates
        );
        also(crash, &clean, &sim, lists);
    }
}

/// Crashes the run before each of its inputs in turn and resumes it with the
/// provider journal lost (the progress file is not): the journal is rebuilt,
/// the run ends with the clean run's outcomes, no row is sent twice and no
/// more batches are created than a clean run's. `also` checks each resumed
/// run. Returns the clean run.
fn lost_journal_before_each_input(dialect: Dialect, mut also: impl FnMut(usize, &Sim)) -> Sim {
    let script = Script {
        processing_ms: 2 * 3_600_000,
        wrong: [1].into(),
        ..Script::default()
    };
    let shape = (9, 4);
    let clean = Sim::ran(dialect, shape.0, shape.1, script.clone());
    assert_eq!(clean.summary().status, RunStatus::Completed);
    let expected = clean.outcomes();
    let mut rebuilt = 0;
    for crash in 1..=clean.handled {
        let Some(mut sim) = crashed_before(dialect, shape, &script, crash) else {
            continue;
        };
        rebuilt += usize::from(sim.provider.creates > 0);
        sim.resume_lost(script.clone(), "").unwrap();
        sim.run();
        assert_completed(&sim, crash);
        assert_eq!(sim.outcomes(), expected, "crash before input {crash}");
        // Never pays twice: every row in one batch, no more creates than a clean run.
        let mut seen = HashSet::new();
        for (row, _, batch) in &sim.provider.submitted {
            assert!(
                seen.insert(*row),
                "crash {crash}: row {row} sent again (in {batch})\n{}",
                sim.journal
            );
        }
        assert_eq!(
            sim.provider.creates, clean.provider.creates,
            "crash {crash}"
        );
        also(crash, &sim);
    }
    assert!(rebuilt > 5, "{rebuilt} crashes after a create");
    clean
}

// ---------------------------------------------------------------------------
// OpenAI's Batch API
// ---------------------------------------------------------------------------

#[test]
fn a_clean_run_goes_in_shards_matches_lines_out_of_order_and_costs_half() {
    let sim = a_clean_run(Dialect::OpenAi);
    let s = sim.summary();
    // Three shards of 50, 50, 20, each uploaded and created once.
    assert_eq!((sim.provider.uploads, sim.provider.creates), (3, 3));
    let batches = s.provider_batches.as_ref().unwrap();
    assert!(batches
        .iter()
        .all(|b| b.batch_id.is_some() && b.file_id.is_some()));
    // Reports of 50 in order, whatever the order of lines.
    assert_eq!(
        s.all_reports
            .iter()
            .map(|r| r.batch_number)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Six simulated hours, polled from 5 s growing to a minute.
    let elapsed = s.statistics.elapsed_ms;
    assert!(
        (6 * 3_600_000..6 * 3_600_000 + 120_000).contains(&elapsed),
        "{elapsed}"
    );
    let polls = sim.provider.polls;
    assert!((3 * 360..3 * 460).contains(&polls), "{polls} polls");
    // The cost is at the batch price: half of gpt-4o-mini's list price.
    assert_eq!(
        s.cost.price.as_ref().unwrap().price.input_per_million,
        0.075
    );
    assert!(s.pace.is_none(), "a batch run has no pace");
    // The progress file names the provider batches.
    let progress = serde_json::to_value(sim.batch.progress(sim.now)).unwrap();
    assert_eq!(progress["providerBatches"].as_array().unwrap().len(), 3);
    assert!(sim.status_changes > 3);
}

#[test]
fn an_expired_batch_re_sends_only_what_it_did_not_run() {
    let sim = an_expired_batch(Dialect::OpenAi);
    let s = sim.summary();
    assert!(s.statistics.elapsed_ms >= 48 * 3_600_000, "two days");
    let batches = s.provider_batches.as_ref().unwrap();
    assert_eq!(batches[0].status, "done (expired)");
}

#[test]
fn errored_lines_are_re_sent_up_to_the_budget_then_fail() {
    // Row 2 fails on every attempt; row 5 only on its first.
    let errors = Script {
        server_errors: [(2, 1), (2, 2), (2, 3), (5, 1)].into(),
        ..Script::default()
    };
    let sim = errored_lines(Dialect::OpenAi, errors, 2);
    let s = sim.summary();
    assert_eq!((s.statistics.successful, s.statistics.failed), (7, 1));
    assert_eq!(s.statistics.retries, 3);
}

#[test]
fn a_failed_batch_stops_the_run_resumably_and_a_resume_sends_its_rows_again() {
    let sim = a_refused_batch_then_a_resume(Dialect::OpenAi, |sim, reason| {
        assert!(reason.contains("batch_1 failed"), "{reason}");
        assert!(reason.contains("does not support images"), "{reason}");
        assert_eq!(sim.summary().exit_code(), 2);
    });
    assert_eq!((sim.provider.uploads, sim.provider.creates), (2, 2));
}

#[test]
fn a_full_queue_submits_the_same_file_again_later() {
    let script = Script {
        processing_ms: 60_000,
        queue_full_first: 2,
        ..Script::default()
    };
    let sim = Sim::ran(Dialect::OpenAi, 5, 50, script);
    assert_eq!(sim.summary().status, RunStatus::Completed);
    assert_eq!(sim.provider.uploads, 1, "no second upload");
    assert_eq!(sim.provider.creates, 3, "created again from the same file");
}

#[test]
fn the_byte_limit_cuts_shards_and_a_line_too_large_fails_its_row() {
    // A line is ~1.1 kB: three fit in 4 kB.
    let sim = ran_within_bytes(Dialect::OpenAi, 7, 4_000, |_| {});
    let s = sim.summary();
    assert_eq!(s.statistics.successful, 7);
    let batches = s.provider_batches.as_ref().unwrap();
    assert!(batches.len() >= 2, "{batches:?}");
    assert!(batches.iter().all(|b| b.bytes <= 4_000), "{batches:?}");
    assert_eq!(batches.iter().map(|b| b.lines).sum::<usize>(), 7);

    let sim = ran_within_bytes(Dialect::OpenAi, 2, 2_000, |config| {
        if let shadow_core::provider::Provider::OpenAi(openai) = &mut config.provider {
            openai.prompt = Some("Classify. ".repeat(200));
        }
    });
    let s = sim.summary();
    assert_eq!(s.statistics.failed, 2);
    assert!(s.overall_progress.errors[0]
        .error
        .contains("a provider batch may hold at most 2000"));
    assert_eq!(sim.provider.uploads, 0);
}

#[test]
fn provider_calls_are_retried_and_a_refused_upload_stops_the_run() {
    let create_500s = Script {
        create_500s: 3,
        ..Script::default()
    };
    one_create_despite(Dialect::OpenAi, create_500s);

    let refused = |status| Script {
        upload_status: Some(status),
        ..Script::default()
    };
    let sim = Sim::ran(Dialect::OpenAi, 4, 50, refused(401));
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Aborted);
    assert!(matches!(
        s.abort_kind,
        Some(AbortReason::Unauthorized { status: 401, .. })
    ));
    assert_eq!(s.statistics.remaining, 4);
    assert!(sim.files.is_empty(), "the shard file is discarded");

    let sim = Sim::ran(Dialect::OpenAi, 4, 50, refused(404));
    let reason = sim.summary().abort_reason.clone().unwrap();
    assert!(
        reason.contains("batch API refused to upload (HTTP 404)"),
        "{reason}"
    );
}

#[test]
fn detach_leaves_the_batches_running_and_a_resume_collects_them() {
    let script = Script::taking(3_600_000);
    let mut sim = Sim::new(6, 50, script.clone());
    // Run until the batch is created, then detach.
    sim.run_until(|s| s.provider.creates > 0 && s.journal.contains("created"));
    sim.batch.handle(sim.now, BatchInput::Detach).unwrap();
    sim.drain();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Interrupted);
    assert_eq!(s.statistics.remaining, 6);
    assert!(sim.batch.poll_timeout().is_none());
    sim.resume(script);
    sim.run();
    assert_eq!(sim.summary().status, RunStatus::Completed);
    assert_eq!((sim.provider.uploads, sim.provider.creates), (1, 1));
}

#[test]
fn cancel_keeps_what_the_batches_finished_and_leaves_the_rest_for_resume() {
    cancelled_half_way(Dialect::OpenAi);
}

#[test]
fn a_crash_before_any_input_resumes_to_the_same_results_and_never_pays_twice() {
    crash_before_each_input(Dialect::OpenAi, 40, |crash, clean, sim, _| {
        // No file gets two batches.
        let mut per_file: HashMap<&str, usize> = HashMap::new();
        for b in &sim.provider.batches {
            *per_file.entry(&b.input_file).or_default() += 1;
        }
        assert!(
            per_file.values().all(|n| *n == 1),
            "crash {crash}: {per_file:?}"
        );
        // An upload whose id was never journaled may be made again; no more.
        assert!(
            sim.provider.uploads <= clean.provider.uploads + 1,
            "crash {crash}: {} uploads, clean {}\n{}\n{:?}",
            sim.provider.uploads,
            clean.provider.uploads,
            sim.journal,
            sim.provider.submitted
        );
    });
}

#[test]
fn a_resume_finds_a_batch_created_before_the_crash_instead_of_creating_another() {
    let script = Script::taking(3_600_000);
    // Crash right after the provider created the batch, before the answer came.
    let mut sim = crashed_while_creating(Dialect::OpenAi, &script, 3);
    sim.resume(script);
    sim.run();
    assert_eq!(sim.summary().status, RunStatus::Completed);
    assert_eq!(
        sim.provider.creates, 1,
        "found by its file, not created again"
    );
    assert!(sim.journal.contains("\"created\""));
}

#[test]
fn settings_are_checked_and_only_openai_has_a_batch_api() {
    let mut c = config(0);
    assert_eq!(
        BatchRun::new(c.clone(), csv(1), START)
            .unwrap_err()
            .to_string(),
        "batchApi.maxLines is 0; it must be between 1 and 50000"
    );
    c.batch_api = Some(BatchApiConfig {
        poll_min_ms: 10_000,
        poll_max_ms: 5_000,
        ..BatchApiConfig::default()
    });
    assert!(BatchRun::new(c.clone(), csv(1), START).is_err());
    c.batch_api = None;
    c.provider = shadow_core::provider::Provider::HttpJson(shadow_core::provider::HttpJsonConfig {
        url: "http://x.test".into(),
        prediction_field: "p".into(),
    });
    let err = BatchRun::new(c, csv(1), START).unwrap_err().to_string();
    assert!(err.contains("the http provider has no batch API"), "{err}");
}

#[test]
fn a_lost_provider_journal_is_rebuilt_and_no_row_is_sent_twice() {
    let clean = lost_journal_before_each_input(Dialect::OpenAi, |crash, sim| {
        // The rebuilt journal names every batch.
        for b in &sim.provider.batches {
            assert!(
                sim.journal.contains(&b.id),
                "crash {crash}: {} not journaled",
                b.id
            );
        }
        // Nothing is left at the provider: every upload (one the crash left
        // unnamed too) and every result file is deleted.
        for id in sim.provider.names.keys() {
            assert!(
                sim.provider.deleted.contains(id),
                "crash {crash}: {id} left"
            );
        }
        for b in &sim.provider.batches {
            for kind in ["out", "err"] {
                let f = format!("{}-{kind}", b.id);
                assert!(sim.provider.deleted.contains(&f), "crash {crash}: {f} left");
            }
        }
    });
    assert_eq!(clean.provider.creates, 3);
}

#[test]
fn a_journal_where_two_records_claim_the_same_rows_is_refused_naming_them() {
    let (mut sim, script) = crashed_with_two_batches(Dialect::OpenAi);
    let mut records = journal_values(&sim.journal);
    let uploaded = indexes_of(&records, "uploaded");
    // Shard 2's record now claims shard 1's rows (and shard 2's go unclaimed).
    let members = records[uploaded[0]]["members"].clone();
    records[uploaded[1]]["members"] = members;
    let tampered = journal_text(&records);
    sim.saved.clear();
    let err = sim.resume_lost(script, &tampered).unwrap_err();
    let text = err.to_string();
    let (a, b) = (uploaded[0] + 1, uploaded[1] + 1);
    assert!(
        text.contains(&format!("lines {a} and {b} both claim row 0")),
        "{text}"
    );
    assert!(matches!(err, UsageError::ProviderJournal { .. }), "{err:?}");
}

#[test]
fn a_journal_with_swapped_batch_ids_stops_the_run_naming_the_records_and_sends_nothing_again() {
    let (mut sim, script) = crashed_with_two_batches(Dialect::OpenAi);
    let (tampered, created) = with_batch_ids_swapped(&sim.journal);
    // With the progress file: refused before anything, naming the line.
    let err = sim.resume_lost(script.clone(), &tampered).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("line {} gives batch", created[0] + 1))
            || text.contains(&format!("line {} gives batch", created[1] + 1)),
        "{text}"
    );
    assert!(text.contains("progress file lists it as shard"), "{text}");
    // With the journal alone: the provider's word on the batch stops the run.
    let reason = stopped_by_the_provider(&mut sim, script, &tampered);
    assert!(
        reason.contains(&format!("line {} gives batch", created[0] + 1))
            && reason.contains("made from file-in-2"),
        "{reason}"
    );
    assert_eq!(sim.provider.creates, 2);
}

// ---------------------------------------------------------------------------
// Anthropic's Message Batches
// ---------------------------------------------------------------------------

#[test]
fn anthropic_creates_batches_inline_one_at_a_time_and_matches_results_out_of_order_at_half_price() {
    let sim = a_clean_run(Dialect::Anthropic);
    let s = sim.summary();
    // Three batches created with their requests inline: no upload.
    assert_eq!((sim.provider.uploads, sim.provider.creates), (0, 3));
    assert_eq!(sim.outputs_seen, ["submit"; 3]);
    let batches = s.provider_batches.as_ref().unwrap();
    assert!(batches.iter().all(|b| b.file_id.is_none()));
    assert_eq!(batches[0].batch_id.as_deref(), Some("msgbatch_1"));
    // The custom ids name the run: `RUN-r{row}-a{attempt}`.
    let ids: HashSet<String> = sim
        .provider
        .files
        .values()
        .flatten()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["custom_id"].to_string())
        .collect();
    assert!(ids.contains("\"RUN-r0-a1\"") && ids.contains("\"RUN-r119-a1\""));
    assert_eq!(sim.outcomes()[&4].1.as_deref(), Some(LABELS[5 % 3]));
    // Half of Claude Haiku 4.5's list price ($1 / $5 per million).
    let price = &s.cost.price.as_ref().unwrap().price;
    assert_eq!(
        (price.input_per_million, price.output_per_million),
        (0.5, 2.5)
    );
    // A shard's intent only after the one before it has its batch (one create
    // at a time).
    let at = journal_order(&sim);
    assert!(at("created1") < at("submitting2") && at("created2") < at("submitting3"));
    assert!(sim.records().iter().all(|r| r["record"] != "uploaded"));
    let intent = &sim.records()[at("submitting1")];
    assert_eq!(intent["lines"], 50);
    assert_eq!(intent["members"], json!([[0, 50, 1]]));
    // Counts shown as progress.
    let progress = serde_json::to_value(sim.batch.progress(sim.now)).unwrap();
    assert_eq!(progress["providerBatches"][2]["requestCounts"]["total"], 20);
}

#[test]
fn anthropic_expired_lines_and_canceled_lines_are_the_only_ones_sent_again() {
    an_expired_batch(Dialect::Anthropic);
    // Cancelled half-way: what ran is kept, what was canceled waits for a resume.
    let sim = cancelled_half_way(Dialect::Anthropic);
    assert_eq!(sim.provider.creates, 2);
}

#[test]
fn anthropic_errored_lines_an_invalid_request_is_final_an_api_error_is_retried() {
    // Row 2's request is invalid; row 5 meets a server error once, row 6 on
    // every attempt.
    let errors = Script {
        invalid: [(2, 1)].into(),
        server_errors: [(5, 1), (6, 1), (6, 2), (6, 3)].into(),
        ..Script::default()
    };
    let sim = errored_lines(Dialect::Anthropic, errors, 6);
    let s = sim.summary();
    assert_eq!((s.statistics.successful, s.statistics.failed), (6, 2));
    let outcomes = sim.outcomes();
    assert_eq!(outcomes[&2].0, ItemStatus::Failed);
    assert_eq!(outcomes[&2].2, 1, "an invalid request is not sent again");
    let invalid = error_of(s, 2);
    assert!(invalid.contains("bad image"), "{invalid}");
}

#[test]
fn anthropic_a_crash_before_any_input_resumes_to_the_same_results_and_never_creates_twice() {
    let mut finds = 0;
    crash_before_each_input(Dialect::Anthropic, 30, |_, _, sim, lists| {
        finds += usize::from(sim.provider.lists > lists);
    });
    assert!(finds > 0, "some crash left a create to look for");
}

#[test]
fn anthropic_a_resume_finds_the_batch_created_before_the_crash_among_others() {
    let script = Script {
        processing_ms: 3_600_000,
        page: Some(2),
        ..Script::default()
    };
    let mut sim = crashed_while_creating(Dialect::Anthropic, &script, 3);
    let created = sim.provider.batches[0].created_at;
    // Other clients' batches: one as large but from before the run, several in
    // the window but of another size (listed two a page).
    sim.provider.foreign(Millis(created.0 - 3_600_000), 3);
    for _ in 0..4 {
        sim.provider.foreign(sim.now, 4);
    }
    sim.resume(script);
    sim.run();
    let s = sim.summary();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!(s.statistics.successful, 3);
    assert_eq!(sim.provider.creates, 1, "found, not created again");
    assert!(sim.provider.lists >= 3, "paged: {}", sim.provider.lists);
    let created: Vec<Value> = sim
        .records()
        .into_iter()
        .filter(|r| r["record"] == "created")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["batchId"], "msgbatch_1");
}

#[test]
fn anthropic_several_candidates_are_told_apart_by_their_results() {
    let script = Script::taking(3_600_000);
    // Another client's batch of the same size, created half a minute before
    // ours (within the clock's allowance), has ended by the resume; ours runs
    // on. Its results are read: none is the run's, so ours is the one.
    let mut sim = crashed_while_creating(Dialect::Anthropic, &script, 3);
    let ours = sim.provider.batches[0].created_at;
    sim.provider.foreign(Millis(ours.0 - 30_000), 3);
    sim.now = ours.plus(3_600_000 - 15_000);
    sim.resume(script.clone());
    sim.run();
    assert_eq!(sim.summary().status, RunStatus::Completed);
    assert_eq!(sim.summary().statistics.successful, 3);
    assert_eq!(sim.provider.creates, 1);
    let created: Vec<Value> = sim
        .records()
        .into_iter()
        .filter(|r| r["record"] == "created")
        .collect();
    assert_eq!(created.len(), 1, "{}", sim.journal);
    assert_eq!(created[0]["batchId"], "msgbatch_1");
    assert_eq!(sim.provider.downloads, 2, "the other's results, then ours");

    // Ours has ended and the other runs on: ours is read, and it is the one.
    let mut sim = crashed_while_creating(Dialect::Anthropic, &script, 3);
    let ours = sim.provider.batches[0].created_at;
    sim.provider.foreign(ours.plus(10_000), 3);
    sim.now = ours.plus(3_600_000);
    sim.resume(script);
    sim.run();
    assert_eq!(sim.summary().statistics.successful, 3);
    assert_eq!(sim.provider.creates, 1);
    assert!(
        sim.journal.contains("\"batchId\":\"msgbatch_1\""),
        "{}",
        sim.journal
    );
    assert_eq!(
        sim.provider.downloads, 1,
        "read once: the probe was the download"
    );
}

#[test]
fn anthropic_a_refused_create_stops_resumably_and_the_resume_builds_the_requests_again() {
    let sim = a_refused_batch_then_a_resume(Dialect::Anthropic, |sim, reason| {
        assert!(reason.contains("HTTP 400"), "{reason}");
        assert!(reason.contains("does not take images"), "{reason}");
        assert_eq!(sim.provider.creates, 0);
        assert!(sim.files.is_empty(), "the shard's file is discarded");
    });
    assert_eq!(sim.provider.creates, 1);
    assert!(sim.provider.lists >= 1, "looked for a batch first");
    let batches = sim.summary().provider_batches.as_ref().unwrap();
    assert_eq!(batches[0].status, "done (not created)");
    assert_eq!(batches[1].status, "done");
    assert!(
        sim.outcomes().values().all(|o| o.2 == 1),
        "no attempt spent"
    );
}

#[test]
fn anthropic_limits_are_its_own_and_the_body_stays_within_the_bytes() {
    let c = anthropic_config(100_000);
    assert!(BatchRun::new(c.clone(), csv(1), START).is_ok());
    let mut over = c.clone();
    over.batch_api.as_mut().unwrap().max_lines = 100_001;
    let err = BatchRun::new(over, csv(1), START).unwrap_err().to_string();
    assert!(err.contains("between 1 and 100000"), "{err}");
    let mut openai = config(50_001);
    openai.batch_api.as_mut().unwrap().max_lines = 50_001;
    assert!(BatchRun::new(openai, csv(1), START).is_err());
    let mut defaults = c.clone();
    defaults.batch_api = None;
    let run = BatchRun::new(defaults, csv(1), START).unwrap();
    assert_eq!(
        (settings(&run).max_lines, settings(&run).max_bytes),
        (100_000, 256_000_000)
    );

    // A request is ~830 bytes: a body of 2 kB holds two, framing included (the
    // sim checks each body against the limit).
    let sim = ran_within_bytes(Dialect::Anthropic, 7, 2_000, |_| {});
    let s = sim.summary();
    assert_eq!(s.statistics.successful, 7);
    let batches = s.provider_batches.as_ref().unwrap();
    assert_eq!(
        batches.iter().map(|b| b.lines).collect::<Vec<_>>(),
        [2, 2, 2, 1],
        "{batches:?}"
    );
}

#[test]
fn anthropic_swapped_batch_ids_stop_the_run_when_the_results_are_another_shards() {
    let (mut sim, script) = crashed_with_two_batches(Dialect::Anthropic);
    let (tampered, _) = with_batch_ids_swapped(&sim.journal);
    let reason = stopped_by_the_provider(&mut sim, script, &tampered);
    assert!(
        reason.contains("gives batch msgbatch_") && reason.contains("results are of other rows"),
        "{reason}"
    );
    assert_eq!(
        sim.outcomes().len(),
        0,
        "no row judged from another's answers"
    );
}

#[test]
fn anthropic_a_lost_provider_journal_is_rebuilt_and_no_row_is_sent_twice() {
    lost_journal_before_each_input(Dialect::Anthropic, |_, _| {});
}

// ---------------------------------------------------------------------------
// Both
// ---------------------------------------------------------------------------

#[test]
fn cancelling_after_a_crash_while_creating_finds_the_batch_and_cancels_it_too() {
    let script = Script::taking(10 * 3_600_000);
    for dialect in Dialect::BOTH {
        let mut sim = crashed_while_creating(dialect, &script, 6);
        sim.now = sim.now.plus(5 * 3_600_000);
        sim.resume(script.clone());
        // `shadow-batch cancel`: cancel at once.
        sim.batch
            .handle(sim.now, BatchInput::CancelBatches)
            .unwrap();
        sim.run();
        let s = sim.summary();
        assert_eq!(s.status, RunStatus::Interrupted, "{dialect:?}");
        assert!(
            sim.provider.batches[0].cancelled_at.is_some(),
            "{dialect:?}: the batch found was cancelled"
        );
        let done = s.statistics.successful;
        assert!((1..6).contains(&done), "{dialect:?}: {done}");
        assert_eq!(sim.provider.creates, 1, "nothing new submitted");
        // A resume then sends only the rest.
        sim.resume(script.clone());
        sim.run();
        assert_eq!(sim.summary().statistics.successful, 6);
        assert_eq!(sim.provider.submitted.len(), 6 + (6 - done));
    }
}

#[test]
fn a_create_whose_answer_is_lost_is_looked_for_before_it_is_made_again() {
    let lost = Script {
        lost_create_answers: 1,
        ..Script::default()
    };
    for dialect in Dialect::BOTH {
        one_create_despite(dialect, lost.clone());
    }
    // A create answered 500 may have made the batch too.
    let create_500s = Script {
        create_500s: 2,
        ..Script::default()
    };
    let sim = one_create_despite(Dialect::Anthropic, create_500s);
    assert!(sim.provider.lists >= 2);
}
