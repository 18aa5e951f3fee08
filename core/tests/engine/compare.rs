//! A run compared with its baseline as its rows become final (`--baseline`,
//! `--baseline-column`): the summary's comparison is the one two finished
//! runs' files give, whatever order the rows finish in, whole CSV or streamed.

use shadow_core::compare::{
    Baseline, CompareError, Comparison, JournalRows, MatchedBy, PairedRuns, RowCaps, RunInfo,
};
use shadow_core::journal::{ItemResult, JournalHeader};
use shadow_core::{Millis, RunConfig};

use crate::sim::*;

const LABELS: [&str; 3] = ["cat", "dog", "fox"];

/// `n` rows with an id, labels cycling, and a `decision` column: the
/// incumbent's answer, wrong on every 4th row.
fn csv_with_decisions(n: usize) -> String {
    let mut text = String::from("id,image,label,decision,site\n");
    for i in 0..n {
        let label = LABELS[i % 3];
        let decision = if i % 4 == 0 {
            LABELS[(i + 1) % 3]
        } else {
            label
        };
        text.push_str(&format!("r{i},img-{i}.png,{label},{decision},s{}\n", i % 2));
    }
    text
}

/// The model: wrong on every 6th row, failing every 23rd; latency varies so
/// rows finish out of order.
fn model(item: &shadow_core::input::Item) -> (u64, Reply) {
    let latency = 50 + (item.row as u64 * 7_919) % 900;
    if item.row % 23 == 0 {
        return (latency, status(400));
    }
    let i = LABELS.iter().position(|l| **l == *item.label).unwrap();
    let answer = if item.row % 6 == 0 {
        LABELS[(i + 2) % 3]
    } else {
        LABELS[i]
    };
    (latency, ok(answer))
}

fn journal_text(run_id: &str, done: &[ItemResult<'static>]) -> String {
    let header = JournalHeader {
        run: RunConfig {
            run_id: run_id.into(),
            ..RunConfig::default()
        },
    };
    let mut text = header.to_json_line();
    for r in done {
        text.push_str(&r.to_json_line());
    }
    text
}

fn rows_of(text: &str) -> shadow_core::compare::RunRows {
    let mut j = JournalRows::new();
    j.push(text.as_bytes());
    j.finish()
}

fn completed(total: usize) -> RunInfo {
    RunInfo {
        status: Some("completed".into()),
        total_rows: Some(total as u64),
        from_summary: true,
        ..RunInfo::default()
    }
}

/// Everything but the sides' names, run ids and timing (the live side takes
/// its own statistics, the files' side its rows).
fn assert_same_figures(live: &Comparison, files: &Comparison) {
    assert_eq!(live.a.scores, files.a.scores);
    assert_eq!(live.b.scores, files.b.scores);
    assert_eq!(live.table, files.table);
    assert_eq!(live.difference, files.difference);
    assert_eq!(live.difference_interval, files.difference_interval);
    assert_eq!(live.mcnemar, files.mcnemar);
    assert_eq!(live.kappa_between, files.kappa_between);
    assert_eq!(live.per_label, files.per_label);
    assert_eq!(live.verdict, files.verdict);
}

#[test]
fn a_baseline_run_is_compared_as_rows_finish_as_its_files_would_be() {
    let csv = csv_with_decisions(240);
    // The baseline: answers the `decision` column's value.
    let baseline = Sim::new(config(), csv_text(&csv), |item, _, _| {
        (100 + (item.row as u64 * 31) % 300, ok(&item.extra[0]))
    })
    .finish();
    let baseline_journal = journal_text("base", &baseline.done);
    let mut sim = Sim::new(config(), csv_text(&csv), |item, _, _| model(item));
    sim.run
        .compare_with(Baseline::Run {
            rows: rows_of(&baseline_journal),
            info: completed(240),
        })
        .unwrap();
    let log = sim.finish();
    let summary = log.summary.unwrap();
    let live = summary
        .comparison
        .clone()
        .expect("the summary holds the comparison");
    assert_eq!(live.matching.by, MatchedBy::Id);
    assert_eq!(live.matching.matched, 240);
    assert_eq!(live.a.run_id.as_deref(), Some("base"));
    assert_eq!(live.b.run_id.as_deref(), Some(summary.run_id.as_str()));
    assert_eq!(
        live.b.latency_p50_ms,
        Some(summary.statistics.latency_ms.p50)
    );
    assert!(live.rows.is_empty() && live.table.both_right.rows.is_empty());
    assert_eq!(live.partial, None);
    // The same two runs compared from their journals.
    let run_journal = journal_text("run", &log.done);
    let (a, b) = (rows_of(&baseline_journal), rows_of(&run_journal));
    let paired = PairedRuns::pair(&a, completed(240), &b, completed(240), RowCaps::NONE);
    let details = paired.details();
    let files = paired.finish(details, false);
    assert_same_figures(&live, &files);
    // B is better: A is wrong on a quarter of the rows, B on a sixth.
    assert!(
        live.verdict
            .starts_with("B agrees with the labels more often than A"),
        "{}",
        live.verdict
    );
    assert!(summary.to_console(5).contains("COMPARED WITH THE BASELINE"));
}

#[test]
fn a_baseline_column_is_compared_with_the_model_each_against_the_label() {
    let csv = csv_with_decisions(240);
    let mut sim = Sim::new(config(), csv_text(&csv), |item, _, _| model(item));
    sim.run
        .compare_with(Baseline::Column("decision".into()))
        .unwrap();
    let log = sim.finish();
    let live = log.summary.unwrap().comparison.unwrap();
    assert_eq!(live.matching.by, MatchedBy::Row);
    assert_eq!(live.a.name, "column decision");
    assert_eq!(live.a.scores.failed, 0);
    assert_eq!(live.a.scores.agreements, 180, "wrong on every 4th row");
    // The same as a run that had answered the column's values.
    let column_run: Vec<ItemResult<'static>> = log
        .done
        .iter()
        .map(|r| {
            let decision = csv_text(&csv).items[r.row].extra[0].to_string();
            let mut r = r.clone();
            r.agreement = Some(decision == *r.label);
            r.prediction = Some(decision.into());
            r.status = shadow_core::journal::ItemStatus::Success;
            r
        })
        .collect();
    let (a, b) = (
        rows_of(&journal_text("column", &column_run)),
        rows_of(&journal_text("run", &log.done)),
    );
    let paired = PairedRuns::pair(&a, completed(240), &b, completed(240), RowCaps::NONE);
    let details = paired.details();
    assert_same_figures(&live, &paired.finish(details, false));
}

/// A streamed CSV (rows fed as the run asks for them) gives the same
/// comparison: each row is paired as it becomes final.
#[test]
fn a_streaming_run_compares_as_a_whole_one() {
    let csv = csv_with_decisions(300);
    let compare = |mut sim: Sim| {
        sim.run
            .compare_with(Baseline::Column("decision".into()))
            .unwrap();
        sim.finish().summary.unwrap().comparison.unwrap()
    };
    let whole = compare(Sim::new(config(), csv_text(&csv), |item, _, _| model(item)));
    let streamed = compare(Sim::streaming(config(), csv_text(&csv), |item, _, _| {
        model(item)
    }));
    assert_eq!(whole, streamed);
}

/// Values outside the label set are answers of their own, never right, and
/// said; an empty cell is no decision (A failed).
#[test]
fn baseline_values_outside_the_labels_are_their_own_answers_and_said() {
    let mut text = String::from("image,label,decision\n");
    for i in 0..60 {
        let label = LABELS[i % 3];
        let decision = match i % 10 {
            0 => "unknown",
            1 => "",
            _ => label,
        };
        text.push_str(&format!("img-{i}.png,{label},{decision}\n"));
    }
    let mut sim = Sim::new(config(), csv_text(&text), |item, _, _| {
        (100, ok(&item.label))
    });
    sim.run
        .compare_with(Baseline::Column("decision".into()))
        .unwrap();
    let c = sim.finish().summary.unwrap().comparison.unwrap();
    assert_eq!(c.a.scores.failed, 6, "the empty cells");
    assert_eq!(c.a.scores.answered, 54);
    assert_eq!(c.a.scores.agreements, 48);
    assert_eq!(c.table.only_b_right.count, 6);
    assert_eq!(c.table.only_a_failed.count, 6);
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("\"unknown\" (6 rows)") && n.contains("outside the label set")),
        "{:?}",
        c.notes
    );
    assert!(
        c.notes.iter().any(|n| n.contains("6 rows have no value")),
        "{:?}",
        c.notes
    );
    // "unknown" is an answer, not a label: no per-label line for it.
    assert!(c.per_label.iter().all(|l| l.label != "unknown"));
}

#[test]
fn a_missing_column_or_a_late_baseline_is_refused() {
    let csv = csv_with_decisions(10);
    let mut sim = Sim::new(config(), csv_text(&csv), |item, _, _| model(item));
    let err = sim
        .run
        .compare_with(Baseline::Column("verdict".into()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the CSV has no column \"verdict\" to compare with (its other columns: decision, site)"
    );
    sim.run.poll(Millis(T0.0));
    let err = sim
        .run
        .compare_with(Baseline::Column("decision".into()))
        .unwrap_err();
    assert_eq!(err, CompareError::TooLate);
}

/// A resumed run compares its restored rows too: interrupted, then resumed
/// with the same baseline, it ends with the comparison of a run that was never
/// interrupted, and the interrupted session's summary says it is partial.
#[test]
fn a_resumed_run_compares_its_restored_rows_too() {
    let csv = csv_with_decisions(120);
    let config = || RunConfig {
        concurrency: Some(2),
        ..config()
    };
    let with_baseline = |mut sim: Sim| {
        sim.run
            .compare_with(Baseline::Column("decision".into()))
            .unwrap();
        sim
    };
    let clean = with_baseline(Sim::new(config(), csv_text(&csv), |item, _, _| model(item)))
        .finish()
        .summary
        .unwrap()
        .comparison
        .unwrap();
    let first = with_baseline(
        Sim::new(
            RunConfig {
                cancel_grace_ms: 10,
                ..config()
            },
            csv_text(&csv),
            |item, _, _| model(item),
        )
        .cancel_at(Millis(T0.0 + 3_000)),
    )
    .finish();
    let partial = first.summary.unwrap().comparison.unwrap();
    assert!(
        partial
            .partial
            .as_deref()
            .is_some_and(|p| p.starts_with("B (this run) is interrupted:")),
        "{:?}",
        partial.partial
    );
    assert!(partial.matching.matched < 120 && !first.done.is_empty());
    let mut second = with_baseline(Sim::new(config(), csv_text(&csv), |item, _, _| model(item)));
    second.run.restore(first.done.clone()).unwrap();
    let resumed = second.finish().summary.unwrap().comparison.unwrap();
    assert_eq!(resumed.matching.matched, 120);
    assert_same_figures(&resumed, &clean);
}
