//! `until_interval` through the batch API: the rows go in growing rounds of
//! shards, and the run stops between two rounds once the agreement's
//! confidence sequence is narrow enough. Simulated hours against the fake
//! provider.

use std::collections::{BTreeSet, HashSet};

use shadow_core::report::RunStatus;
use shadow_core::Millis;

use super::harness::*;

const HOURS_2: u64 = 2 * 3_600_000;

/// About `share` of `rows` rows, picked by a seeded hash (a random set, so
/// that the rows in order are a random sample of the agreement).
fn wrong_rows(rows: usize, share: f64, seed: u64) -> HashSet<usize> {
    (0..rows)
        .filter(|&r| {
            let mut x = (r as u64 ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            x ^= x >> 31;
            x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x ^= x >> 29;
            ((x >> 11) as f64 / (1u64 << 53) as f64) < share
        })
        .collect()
}

/// The rows submitted for their first attempt, and the times of the creates
/// (one wave per round).
fn first_attempts(sim: &Sim) -> BTreeSet<usize> {
    sim.provider
        .submitted
        .iter()
        .filter(|(_, attempt, _)| *attempt == 1)
        .map(|(row, ..)| *row)
        .collect()
}

fn waves(sim: &Sim) -> Vec<Millis> {
    let mut times: Vec<Millis> = sim.provider.batches.iter().map(|b| b.created_at).collect();
    times.sort();
    // Shards of one round are created within minutes of each other; rounds
    // are a batch's processing time apart.
    times.dedup_by(|later, earlier| later.since(*earlier) < HOURS_2 / 2);
    times
}

#[test]
fn rounds_grow_until_the_interval_is_narrow_then_the_run_stops_completed() {
    let rows = 20_000;
    let wrong = wrong_rows(rows, 0.3, 7);
    let truth = 1.0 - wrong.len() as f64 / rows as f64;
    let script = Script {
        processing_ms: HOURS_2,
        wrong,
        ..Script::default()
    };
    let mut sim = Sim::until_interval(rows, 500, 0.05, script);
    sim.run();
    let summary = sim.summary();
    assert_eq!(
        summary.status,
        RunStatus::Completed,
        "{:?}",
        summary.abort_reason
    );
    let precision = summary.precision.as_ref().expect("a precision block");
    assert_eq!(precision.stop_reason.as_deref(), Some("precision reached"));
    assert!(precision.half_width <= 0.05, "{precision:?}");
    let interval = &precision.anytime_interval;
    assert!(
        interval.low <= truth && truth <= interval.high,
        "{truth} outside {interval:?}"
    );

    // The rows went in order, a prefix of the sample, each once; more than
    // the first round, far fewer than the CSV.
    let sent = first_attempts(&sim);
    let released = sent.len();
    assert_eq!(sent, (0..released).collect(), "a prefix of the rows");
    assert_eq!(sim.provider.submitted.len(), released, "each row once");
    assert!(released > 385 && released < 4_000, "{released} rows sent");
    assert_eq!(
        sim.batch.rounds(),
        Some((3, released)),
        "two rounds, then the stop"
    );
    assert_eq!(
        precision.rows as usize, released,
        "every row sent was compared"
    );

    // Round one is the fixed-n rows at 50% (385, in shards of 500: one); the
    // second is created once the first has ended, two hours later.
    let waves = waves(&sim);
    assert_eq!(waves.len(), 2, "{waves:?}");
    assert!(waves[1].since(waves[0]) >= HOURS_2);
    let first_wave: usize = sim
        .provider
        .batches
        .iter()
        .filter(|b| b.created_at == waves[0])
        .map(|b| sim.provider.files[&b.input_file].len())
        .sum();
    assert_eq!(first_wave, 385);
    assert_eq!(
        sim.outcomes().len(),
        released,
        "the rest of the CSV never went"
    );
}

#[test]
fn a_sample_too_small_for_the_target_is_sent_whole_and_ends_without_the_reason() {
    let rows = 600;
    let script = Script {
        processing_ms: HOURS_2,
        wrong: wrong_rows(rows, 0.3, 3),
        ..Script::default()
    };
    let mut sim = Sim::until_interval(rows, 50_000, 0.02, script);
    sim.run();
    let summary = sim.summary();
    assert_eq!(summary.status, RunStatus::Completed);
    let precision = summary.precision.as_ref().unwrap();
    assert_eq!(precision.stop_reason, None, "{precision:?}");
    assert!(precision.half_width > 0.02);
    assert_eq!(precision.rows, 600);
    assert_eq!(sim.provider.submitted.len(), 600, "every row once, no more");
    assert_eq!(sim.provider.creates, 1);
}

/// A round's row that needs a retry rides in the next round's shard: it is
/// sent again once, and the sequence reads it in its place.
#[test]
fn a_retried_row_goes_with_the_next_round() {
    let rows = 20_000;
    let script = Script {
        processing_ms: HOURS_2,
        wrong: wrong_rows(rows, 0.3, 11),
        server_errors: [(5, 1)].into(),
        ..Script::default()
    };
    let mut sim = Sim::until_interval(rows, 50_000, 0.05, script);
    sim.run();
    let summary = sim.summary();
    assert_eq!(summary.status, RunStatus::Completed);
    let row5: Vec<_> = sim
        .provider
        .submitted
        .iter()
        .filter(|(row, ..)| *row == 5)
        .map(|(_, attempt, batch)| (*attempt, batch.clone()))
        .collect();
    assert_eq!(row5.len(), 2, "{row5:?}");
    assert_eq!(row5[1].1, "batch_2", "the retry went with round two");
    let shapes: Vec<_> = sim
        .provider
        .batches
        .iter()
        .map(|b| {
            (
                b.created_at.since(START),
                sim.provider.files[&b.input_file].len(),
            )
        })
        .collect();
    assert_eq!(waves(&sim).len(), 2, "no round of its own: {shapes:?}");
    let precision = summary.precision.as_ref().unwrap();
    assert_eq!(precision.stop_reason.as_deref(), Some("precision reached"));
    assert_eq!(precision.rows as usize, first_attempts(&sim).len());
}

/// A crash before any input of a precision run (every few inputs, through
/// both rounds) resumes to the same rows and stop as an uninterrupted run,
/// never submitting a row twice nor creating more batches.
#[test]
fn a_crash_in_any_round_resumes_to_the_same_rows_without_sending_twice() {
    let rows = 3_000;
    let script = Script {
        processing_ms: HOURS_2,
        wrong: wrong_rows(rows, 0.3, 5),
        ..Script::default()
    };
    let shape = (rows, 100);
    let mut clean = Sim::until_interval(shape.0, shape.1, 0.1, script.clone());
    clean.run();
    let expected = clean.outcomes();
    let clean_precision = clean.summary().precision.clone().unwrap();
    assert_eq!(
        clean_precision.stop_reason.as_deref(),
        Some("precision reached")
    );
    assert!(waves(&clean).len() >= 2, "more than one round");
    let inputs = clean.handled;
    let mut crashes = 0;
    for crash in (1..=inputs).step_by((inputs / 80).max(1)) {
        let mut sim = Sim::until_interval(shape.0, shape.1, 0.1, script.clone());
        sim.crash_before = Some(crash);
        sim.run();
        if !sim.crashed {
            continue;
        }
        crashes += 1;
        sim.resume(script.clone());
        sim.run();
        let summary = sim.summary();
        assert_eq!(summary.status, RunStatus::Completed, "crash {crash}");
        assert_eq!(
            summary.precision.as_ref(),
            Some(&clean_precision),
            "crash {crash}"
        );
        assert_eq!(sim.outcomes(), expected, "crash {crash}");
        let mut seen = HashSet::new();
        for (row, attempt, _) in &sim.provider.submitted {
            assert!(
                seen.insert((row, attempt)),
                "crash {crash}: row {row} twice"
            );
        }
        assert!(
            sim.provider.creates <= clean.provider.creates,
            "crash {crash}"
        );
    }
    assert!(crashes > 60, "{crashes} crashes");
}

/// A resume with a narrower target continues with more rounds from the rows
/// already in.
#[test]
fn a_resume_with_a_narrower_target_sends_more_rounds() {
    let rows = 20_000;
    let script = Script {
        processing_ms: HOURS_2,
        wrong: wrong_rows(rows, 0.3, 9),
        ..Script::default()
    };
    let mut sim = Sim::until_interval(rows, 50_000, 0.1, script.clone());
    sim.run();
    let before = first_attempts(&sim).len();
    assert_eq!(
        sim.summary()
            .precision
            .as_ref()
            .unwrap()
            .stop_reason
            .as_deref(),
        Some("precision reached")
    );
    sim.until_interval = Some(0.05);
    sim.resume(script);
    sim.run();
    let after = first_attempts(&sim).len();
    let precision = sim.summary().precision.clone().unwrap();
    assert_eq!(precision.stop_reason.as_deref(), Some("precision reached"));
    assert!(precision.half_width <= 0.05);
    assert!(after > before, "{before} then {after}");
    assert_eq!(sim.provider.submitted.len(), after, "no row sent twice");
    assert_eq!(precision.rows as usize, after);
}
