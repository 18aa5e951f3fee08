//! A run fed its rows as it goes (`Run::streaming`) does exactly what a run made
//! from the whole CSV does, holding only the rows in play.

use shadow_core::http::TransportErrorKind;
use shadow_core::input::{Item, LabelsCsv};
use shadow_core::report::RunStatus;
use shadow_core::{Millis, Output, Run, RunConfig, SendOrder, UsageError};

use crate::sim::*;

/// Rows asked for at once (the core's `engine::rows::CHUNK`).
const CHUNK: usize = 4096;

/// `n` rows, every 997th without a label (a defect: fails without a request).
fn csv_with_defects(n: usize) -> LabelsCsv {
    let mut text = String::from("image,label\n");
    for i in 0..n {
        let label = if i % 997 == 500 {
            ""
        } else {
            ["cat", "dog", "bird"][i % 3]
        };
        text.push_str(&format!("img-{i}.png,{label}\n"));
    }
    csv_text(&text)
}

/// A flaky, rate-limited endpoint: 429s with retry-after, 500s, resets, bad
/// answers and wrong labels, each a function of the row and the attempt.
fn flaky(item: &Item, order: &SendOrder, _: Millis) -> (u64, Reply) {
    let r = item.row;
    let latency = 20 + (r as u64 * 37) % 300;
    let reply = match (r % 101, order.attempt) {
        (7, 1) => status_with(429, &[("retry-after-ms", "700")]),
        (13, 1 | 2) => status(500),
        (29, 1) => Reply::Transport(TransportErrorKind::Reset),
        (31, _) => Reply::Body("not json".into()),
        (41, _) => ok(if &*item.label == "cat" { "dog" } else { "cat" }),
        _ => ok(&item.label),
    };
    (latency, reply)
}

fn config_of(batch_size: usize) -> RunConfig {
    RunConfig {
        batch_size,
        concurrency: Some(64),
        ..config()
    }
}

/// Both runs' outputs as JSON, for an exact comparison.
fn as_json(log: &Log) -> serde_json::Value {
    serde_json::json!({
        "sends": log.sends,
        "done": log.done,
        "reports": log.reports,
        "summary": log.summary,
    })
}

#[test]
fn a_streaming_run_does_what_a_whole_csv_run_does_holding_only_the_rows_in_play() {
    let rows = 5 * CHUNK + 123;
    let whole = Sim::new(config_of(50), csv_with_defects(rows), flaky).finish();
    let streamed = Sim::streaming(config_of(50), csv_with_defects(rows), flaky).finish();
    check_consistency(&streamed, rows);
    let s = streamed.summary.as_ref().unwrap();
    assert_eq!(s.status, RunStatus::Completed);
    assert!(s.overall_progress.failed > 0 && s.statistics.retries > 0);
    assert_eq!(as_json(&streamed), as_json(&whole));
    assert_eq!(whole.max_rows_held, rows);
    // Up to two chunks read ahead, plus those in flight or waiting for a retry.
    assert!(
        streamed.max_rows_held <= 2 * CHUNK + 256,
        "held {} rows at once",
        streamed.max_rows_held
    );
}

#[test]
fn a_cancelled_streaming_run_stops_like_a_whole_csv_run() {
    let rows = 3 * CHUNK;
    let cancel = Millis(T0.0 + 30_000);
    let whole = Sim::new(config_of(100), csv_with_defects(rows), flaky)
        .cancel_at(cancel)
        .finish();
    let streamed = Sim::streaming(config_of(100), csv_with_defects(rows), flaky)
        .cancel_at(cancel)
        .finish();
    assert_eq!(
        streamed.summary.as_ref().unwrap().status,
        RunStatus::Interrupted
    );
    assert_eq!(as_json(&streamed), as_json(&whole));
}

#[test]
fn rows_out_of_order_and_restores_are_refused() {
    let csv = csv_of(10, &["cat"]);
    let mut run = Run::streaming(config(), &csv.outline, T0).unwrap();
    assert_eq!(run.poll(T0), Some(Output::NeedRows { from: 0, count: 10 }));
    let mut rows = csv.items.clone();
    let skipped = rows.remove(0);
    assert!(matches!(
        run.push_rows(rows),
        Err(UsageError::RowOutOfOrder(_))
    ));
    run.push_rows([skipped]).unwrap();
    assert!(matches!(run.poll(T0), Some(Output::Send(o)) if o.item == 0));

    let mut fresh = Run::streaming(config(), &csv.outline, T0).unwrap();
    assert!(matches!(
        fresh.restore(std::iter::empty()),
        Err(UsageError::RowOutOfOrder(_))
    ));
    let mut whole = Run::new(config(), csv.clone(), T0).unwrap();
    assert!(matches!(
        whole.push_rows(csv.items),
        Err(UsageError::RowOutOfOrder(_))
    ));
}
