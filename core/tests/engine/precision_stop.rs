//! `until_interval` through the engine: a sampled run whose answers come back
//! out of order stops once the agreement's anytime-valid interval is as narrow
//! as asked, its confidence sequence fed in row (permutation) order, not in
//! the order answers came; and a resumed run with a narrower target continues
//! from where it stopped.

use std::collections::HashSet;

use shadow_core::anytime::ConfidenceSequence;
use shadow_core::input::{Item, LabelsCsv};
use shadow_core::journal::ItemResult;
use shadow_core::report::{RunStatus, Summary};
use shadow_core::sample::Sample;
use shadow_core::{Millis, RunConfig, SendOrder};

use crate::sim::*;

const CSV_ROWS: usize = 20_000;
const LABELS: &[&str] = &["cat", "dog"];
const SEED: u64 = 7;
const CONCURRENCY: usize = 8;

/// Whether the simulated model answers the row on CSV line `line` with its
/// label: a hash of the line, below 85 of 100 (so a known share of the CSV).
fn agrees(line: u64) -> bool {
    (line.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 100 < 85
}

/// The share of the CSV's rows the model agrees on: what the interval must hold.
fn true_rate(csv: &LabelsCsv) -> f64 {
    let agreeing = csv.items.iter().filter(|i| agrees(i.line)).count();
    agreeing as f64 / csv.items.len() as f64
}

/// Answers out of order: agreeing rows in 10 to 22 ms, disagreeing ones in
/// 300 ms (hard rows come late); one line in 61 fails its first attempt with a
/// 500 (retried after the backoff, 3 s), one in 211 is refused with a 400 every
/// time (a failure, passed over by the sequence).
fn script(item: &Item, order: &SendOrder, _: Millis) -> (u64, Reply) {
    let other = if &*item.label == "cat" { "dog" } else { "cat" };
    match item.line {
        line if line % 211 == 0 => (15, status(400)),
        line if line % 61 == 0 && order.attempt == 1 => (20, status(500)),
        line if agrees(line) => (10 + line % 13, ok(&item.label)),
        _ => (300, ok(other)),
    }
}

/// The whole CSV, and the run's seeded sample of all its rows with its config.
fn sampled(until_interval: f64) -> (LabelsCsv, LabelsCsv, RunConfig) {
    let csv = csv_of(CSV_ROWS, LABELS);
    let sample = Sample::draw(&csv, SEED, CSV_ROWS, false, None).unwrap();
    let config = RunConfig {
        batch_size: 50,
        concurrency: Some(CONCURRENCY),
        // A failed row waits 3 s for its retry: rows answered meanwhile run
        // far ahead of the rows in order unless the send window holds them.
        backoff_initial_ms: 3_000,
        seed: SEED,
        sample: Some(sample.clone()),
        until_interval: Some(until_interval),
        ..config()
    };
    (csv.clone(), sample.take(csv), config)
}

/// The rows `0..k` that are final, `k` the first row that is not.
fn final_prefix(done: &[&ItemResult<'_>]) -> usize {
    let rows: HashSet<usize> = done.iter().map(|d| d.row).collect();
    (0..).find(|r| !rows.contains(r)).unwrap()
}

/// The reference sequence fed the compared rows of `done` before `prefix`, in
/// the order given.
fn fed(done: &[&ItemResult<'_>], prefix: usize, target: f64) -> ConfidenceSequence {
    let mut s = ConfidenceSequence::new(0.05, Some(CSV_ROWS as u64)).aiming_at(target);
    for d in done.iter().filter(|d| d.row < prefix) {
        if let Some(agreed) = d.agreement {
            s.push(if agreed { 1.0 } else { 0.0 });
        }
    }
    s
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Asserts the summary stopped on precision, holds the true rate, and that its
/// sequence is the reference fed `done`'s rows in row order (not in the order
/// given, which is the order they became final); returns the prefix fed.
fn check_stop(summary: &Summary, done: &[&ItemResult<'_>], target: f64, truth: f64) -> usize {
    assert_eq!(summary.status, RunStatus::Completed);
    let p = summary.precision.as_ref().expect("the precision block");
    assert_eq!(p.stop_reason.as_deref(), Some("precision reached"));
    assert!(p.half_width <= target, "{p:?}");
    assert!(
        p.anytime_interval.low <= truth && truth <= p.anytime_interval.high,
        "true rate {truth} outside {p:?}"
    );
    let processed = summary.statistics.processed;
    assert!(processed < CSV_ROWS / 2, "stopped after {processed} rows");

    let prefix = final_prefix(done);
    let mut in_row_order = done.to_vec();
    in_row_order.sort_by_key(|d| d.row);
    let want = fed(&in_row_order, prefix, target);
    assert_eq!(p.rows, want.n());
    let (low, high) = want.interval();
    assert_eq!(
        (p.anytime_interval.low, p.anytime_interval.high),
        (round(low), round(high))
    );
    // The same rows fed in the order their answers came give another interval:
    // the check above tells the two apart.
    let (low, high) = fed(done, prefix, target).interval();
    assert_ne!(
        (p.anytime_interval.low, p.anytime_interval.high),
        (round(low), round(high)),
        "answer order and row order agree here: the test proves nothing"
    );
    prefix
}

/// Each row's first request went at most `send_limit` past the first row not
/// yet final at the time (4 x the in-flight limit, or a tenth of the rows
/// before it): rows `restored` are final from the start, `done` as they came.
fn check_sent_within_window(
    sends: &[(Millis, SendOrder)],
    restored: &[ItemResult<'_>],
    done: &[ItemResult<'_>],
) {
    let mut final_rows: HashSet<usize> = restored.iter().map(|d| d.row).collect();
    let (mut prefix, mut next_done, mut widest) = (0, 0, 0);
    for (at, order) in sends.iter().filter(|(_, o)| o.attempt == 1) {
        while done.get(next_done).is_some_and(|d| d.finished_at <= *at) {
            final_rows.insert(done[next_done].row);
            next_done += 1;
        }
        while final_rows.contains(&prefix) {
            prefix += 1;
        }
        let window = (4 * CONCURRENCY).max(prefix / 10);
        assert!(
            order.item < prefix + window,
            "row {} sent at {at:?} while row {prefix} was not final (window {window})",
            order.item
        );
        widest = widest.max(order.item - prefix);
    }
    // The window was used: a run whose sends stay this close would not need one.
    assert!(widest >= 4 * CONCURRENCY - 1, "{widest}");
}

#[test]
fn a_sampled_run_stops_when_precise_enough_feeding_rows_in_row_order() {
    let (whole, csv, config) = sampled(0.03);
    let truth = true_rate(&whole);
    assert!((truth - 0.85).abs() < 0.01, "{truth}");

    let first = Sim::new(config, csv.clone(), script).finish();
    let summary = first.summary.as_ref().unwrap();
    let done: Vec<&ItemResult<'_>> = first.done.iter().collect();
    // Answers did come out of order, and some rows failed.
    assert!(done.windows(2).any(|w| w[0].row > w[1].row));
    assert!(summary.statistics.failed > 0, "{:?}", summary.statistics);
    let prefix = check_stop(summary, &done, 0.03, truth);
    check_sent_within_window(&first.sends, &[], &first.done);
    // Every batch reported is whole, in row order, and ends within the prefix.
    let last = first.reports.last().unwrap();
    assert!(last.batch_end_index < prefix);

    // Resumed with a narrower target: the rows already final are restored,
    // not sent again; the run goes on from the first row not final.
    let resumed_config = RunConfig {
        until_interval: Some(0.02),
        ..summary.config.clone()
    };
    let mut second = Sim::new(resumed_config, csv, script);
    assert_eq!(second.run.restore(first.done.clone()).unwrap(), done.len());
    let second = second.finish();
    let restored: HashSet<usize> = done.iter().map(|d| d.row).collect();
    assert!(second
        .sends
        .iter()
        .all(|(_, o)| !restored.contains(&o.item)));
    assert_eq!(second.sends[0].1.item, prefix);
    let s2 = second.summary.as_ref().unwrap();
    // Restored rows in journal (answer) order, then the new rows.
    let all: Vec<&ItemResult<'_>> = first.done.iter().chain(&second.done).collect();
    let prefix2 = check_stop(s2, &all, 0.02, truth);
    assert!(prefix2 > prefix);
    assert!(s2.precision.as_ref().unwrap().rows > summary.precision.as_ref().unwrap().rows);
    check_sent_within_window(&second.sends, &first.done, &second.done);
}
