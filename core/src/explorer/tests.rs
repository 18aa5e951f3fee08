use std::borrow::Cow;

use super::batches::{percentile, Batches};
use super::*;
use crate::eval::wilson_interval;
use crate::journal::{fold_journal, FailureKind};
use crate::journal::{FoldedJournal, ItemResult, ItemStatus};
use crate::time::Millis;

fn result(row: usize, label: &str, prediction: Option<&str>) -> ItemResult<'static> {
    ItemResult {
        row,
        line: row as u64 + 2,
        id: None,
        image: format!("images/{row}.png").into(),
        label: Cow::Owned(label.into()),
        prediction: prediction.map(|p| Cow::Owned(p.into())),
        agreement: prediction.map(|p| p == label),
        status: if prediction.is_some() {
            ItemStatus::Success
        } else {
            ItemStatus::Failed
        },
        attempts: 1,
        latency_ms: Some(100 + row as u64),
        error: prediction
            .is_none()
            .then_some(Cow::Borrowed("HTTP 500: boom")),
        error_kind: prediction.is_none().then_some(FailureKind::Http),
        http_status: Some(if prediction.is_some() { 200 } else { 500 }),
        usage: None,
        cost_usd: None,
        answer: None,
        confidence: None,
        alternatives: Vec::new(),
        confidence_gap: None,
        finished_at: Millis(1_737_714_600_000),
    }
}

fn batch_points(reports: &[Value]) -> Vec<BatchPoint> {
    let mut batches = Batches::default();
    for r in reports {
        batches.add(r);
    }
    batches.points()
}

fn journal(results: &[ItemResult<'static>]) -> FoldedJournal {
    fold_journal(
        &results
            .iter()
            .map(ItemResult::to_json_line)
            .collect::<String>(),
    )
}

fn known() -> FoldedJournal {
    journal(&[
        result(0, "cat", Some("cat")),
        result(1, "cat", Some("dog")),
        result(2, "dog", Some("dog")),
        result(3, "dog", None),
        result(4, "bird", Some("cat")),
        result(5, "dog", None),
    ])
}

#[test]
fn without_a_summary_the_evaluation_is_computed_from_the_results() {
    let folded = known();
    let data = build(ExplorerInput {
        results: Some(&folded),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(data.status, "interrupted");
    assert_eq!(data.evaluation_source, "results");
    assert!(
        data.notes[0].contains("the 6 finished results"),
        "{:?}",
        data.notes
    );
    let ev = data.evaluation.unwrap();
    assert_eq!(ev["compared"], 4);
    assert_eq!(ev["agreements"], 2);
    assert_eq!(ev["agreementRate"], 0.5);
    assert_eq!(ev["labels"], serde_json::json!(["bird", "cat", "dog"]));
    // Rows: label, prediction; columns: prediction.
    assert_eq!(
        ev["confusionMatrix"],
        serde_json::json!([[0, 1, 0], [0, 1, 1], [0, 0, 1]])
    );
    assert_eq!(
        data.totals,
        Totals {
            total: None,
            processed: 6,
            successful: 4,
            failed: 2,
            remaining: None
        }
    );
    // The label table starts with the evaluation's labels: matrix indices are
    // label indices.
    assert_eq!(data.labels, ["bird", "cat", "dog"]);
    assert_eq!(data.items.label, [1, 1, 2, 2, 0, 2]);
    assert_eq!(
        data.items.prediction,
        [Some(1), Some(2), Some(2), None, Some(1), None]
    );
    // Two identical failures: one error text, one group of two.
    assert_eq!(data.items.error_texts, ["HTTP 500: boom"]);
    assert_eq!(data.items.error, [None, None, None, Some(0), None, Some(0)]);
    assert_eq!(
        data.error_groups,
        [ErrorGroup {
            kind: Some("http".into()),
            message: "HTTP 500: boom".into(),
            count: 2,
            rows: vec![3, 5],
            details: Vec::new(),
        }]
    );
    assert_eq!(data.failure_reasons["http"], 2);
    assert!(data.items.id.is_empty(), "no row has an id");
}

fn summary() -> String {
    serde_json::json!({
        "runId": "2025-01-24T10-30-00-000Z",
        "status": "aborted",
        "abortReason": "the endpoint refused the API key (HTTP 401)",
        "csvPath": "data/labels.csv",
        "statistics": {"total": 10, "processed": 6, "successful": 4, "failed": 2, "remaining": 4},
        "evaluation": {
            "compared": 4, "agreements": 3, "agreementRate": 0.75,
            "agreementInterval": {"low": 0.3, "high": 0.95},
            "labels": ["bird", "cat", "dog", "fish"],
            "confusionMatrix": [[0,1,0,0],[0,1,0,0],[0,0,2,0],[0,0,0,0]],
            "perLabel": [], "topConfusions": [], "futureField": 7
        },
        "failureReasons": {"refused": 1, "http": 1},
        "errorGroups": [{"kind": "http", "message": "m", "count": 2, "rows": [3, 5]}],
        "cost": {"tokensPerImage": 120.5},
        "allReports": [
            {"batchNumber": 1, "batchStartIndex": 0, "batchEndIndex": 2, "batchSize": 3,
             "batchSuccessful": 3, "batchFailed": 0, "agreements": 3, "elapsedMs": 1000,
             "retries": 1, "rateLimitHits": 0},
            {"batchNumber": 2, "batchStartIndex": 3, "batchEndIndex": 5, "batchSize": 3,
             "batchSuccessful": 1, "batchFailed": 2, "agreements": 3, "elapsedMs": 4000,
             "retries": 4, "rateLimitHits": 2, "latencyP50Ms": 7, "latencyP95Ms": 9,
             "drift": false}
        ],
        "config": {"csvPath": "data/labels.csv", "batchSize": 3}
    })
    .to_string()
}

#[test]
fn the_summary_is_the_authority_and_unknown_fields_pass_through() {
    let folded = known();
    let text = summary();
    let data = build(ExplorerInput {
        summary: Some(&text),
        results: Some(&folded),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(data.status, "aborted");
    assert_eq!(
        data.abort_reason.as_deref(),
        Some("the endpoint refused the API key (HTTP 401)")
    );
    assert_eq!(data.evaluation_source, "summary");
    let ev = data.evaluation.as_ref().unwrap();
    assert_eq!(ev["agreements"], 3, "the summary's, not the results'");
    assert_eq!(ev["futureField"], 7);
    assert_eq!(data.totals.total, Some(10));
    assert_eq!(data.totals.remaining, Some(4));
    assert_eq!(data.failure_reasons["refused"], 1);
    assert_eq!(data.error_groups[0].rows, [3, 5]);
    assert_eq!(data.cost.as_ref().unwrap()["tokensPerImage"], 120.5);
    assert_eq!(data.labels, ["bird", "cat", "dog", "fish"]);
    assert!(data.notes.is_empty(), "{:?}", data.notes);

    // Batch 1: derived from the cumulative counts and the rows' latencies.
    let b1 = &data.batches[0];
    assert_eq!(b1.agreement_rate, Some(1.0));
    assert_eq!(b1.agreement_interval, wilson_interval(3, 3));
    assert_eq!(
        (b1.latency_p50_ms, b1.latency_p95_ms),
        (Some(101.0), Some(102.0))
    );
    assert_eq!(b1.throughput_per_sec, Some(3.0));
    assert!(!b1.drift, "[0.44, 1] overlaps [0.3, 0.95]");
    // Batch 2: the report's own figures win; throughput from the elapsed gap.
    let b2 = &data.batches[1];
    assert_eq!(b2.agreement_rate, Some(0.0));
    assert_eq!(
        (b2.latency_p50_ms, b2.latency_p95_ms),
        (Some(7.0), Some(9.0))
    );
    assert_eq!(b2.throughput_per_sec, Some(1.0));
    // Reports in the same millisecond each get a rate, over the time since
    // the session's start until it is a second old, then over a second or more.
    let tied = |n: u64, elapsed: u64| {
        serde_json::json!({"batchNumber": n, "batchStartIndex": (n - 1) * 10,
            "batchEndIndex": n * 10 - 1, "batchSize": 10, "elapsedMs": elapsed})
    };
    let points = batch_points(&[tied(1, 1000), tied(2, 1000), tied(3, 2000)]);
    let rates: Vec<_> = points.iter().map(|p| p.throughput_per_sec).collect();
    assert_eq!(rates, [Some(10.0), Some(20.0), Some(10.0)]);
    assert_eq!((b2.retries, b2.rate_limit_hits), (Some(4), Some(2)));
    assert!(!b2.drift, "the report says no drift");
}

/// Issue 21: reports without a word on drift are judged by the core's drift
/// tests, not by the run's narrowing interval (which flagged nearly every late
/// batch of a long stable run).
#[test]
fn reports_without_a_word_on_drift_are_judged_by_the_drift_tests() {
    let report = |b: u64, agreements: u64| {
        serde_json::json!({
            "batchNumber": b, "batchStartIndex": (b - 1) * 50, "batchEndIndex": b * 50 - 1,
            "batchSize": 50, "batchSuccessful": 50, "agreements": agreements,
            "elapsedMs": b * 1000
        })
    };
    // 40 batches agreeing 50 and 40 of 50 in turn (a batch at 40 of 50 has the
    // interval 0.67 to 0.89, which misses the run's 0.89 to 0.91 at 2,000 rows),
    // then one agreeing 10 of 50.
    let mut reports: Vec<Value> = (1..=40)
        .map(|b| report(b, 45 * b + if b % 2 == 1 { 5 } else { 0 }))
        .collect();
    let points = batch_points(&reports);
    assert!(
        points.iter().all(|p| !p.drift),
        "a stable run does not drift"
    );
    reports.push(report(41, 45 * 40 + 10));
    let points = batch_points(&reports);
    let drifting: Vec<u64> = points
        .iter()
        .filter(|p| p.drift)
        .map(|p| p.batch_number)
        .collect();
    assert_eq!(drifting, [41]);
}

#[test]
fn progress_alone_gives_the_status_and_total() {
    let progress = serde_json::json!({
        "runId": "r1", "csvPath": "x.csv", "status": "running",
        "overallProgress": {"total": 10, "successful": 1, "failed": 0, "errors": []},
        "allReports": [], "config": {"batchSize": 5}
    })
    .to_string();
    let folded = known();
    let live = build(ExplorerInput {
        progress: Some(&progress),
        results: Some(&folded),
        live: true,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(live.status, "running");
    assert!(live.notes.is_empty());
    assert_eq!(live.totals.total, Some(10));
    assert_eq!(live.totals.remaining, Some(4));
    assert_eq!(live.run_id, "r1");
    let csv_labels = ["ant".to_string(), "cat".to_string()];
    let with_csv = build(ExplorerInput {
        progress: Some(&progress),
        results: Some(&folded),
        live: true,
        csv_labels: Some(&csv_labels),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(with_csv.labels, ["ant", "bird", "cat", "dog"]);
    let ended = build(ExplorerInput {
        progress: Some(&progress),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(ended.status, "interrupted");
    assert_eq!(ended.evaluation_source, "none");
    assert!(ended.notes.iter().any(|n| n.contains("No results file")));
}

#[test]
fn files_that_are_not_run_files_are_refused_with_the_reason() {
    let e = build(ExplorerInput {
        summary: Some("{\"runId\": \"x\"}"),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "not a shadow-batch summary file: no `status` field"
    );
    let e = build(ExplorerInput {
        progress: Some("[1, 2]"),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        e.to_string().contains("progress file: not a JSON object"),
        "{e}"
    );
    assert!(matches!(
        build(ExplorerInput {
            progress: Some("<html>"),
            ..Default::default()
        }),
        Err(ExplorerError::NotARunFile {
            what: "progress",
            ..
        })
    ));
    assert_eq!(build(ExplorerInput::default()), Err(ExplorerError::Nothing));
}

/// 1,000 rows over three labels: rows divisible by 37 answered wrong, by 53
/// failed (two messages), the rest right.
fn thousand() -> Vec<ItemResult<'static>> {
    let labels = ["ant", "bee", "cat"];
    (0..1000)
        .map(|row| {
            let label = labels[row % 3];
            if row % 53 == 0 {
                let mut r = result(row, label, None);
                if row % 2 == 0 {
                    r.error = Some(Cow::Borrowed("timed out"));
                    r.error_kind = Some(FailureKind::Transport);
                }
                r
            } else if row % 37 == 0 {
                result(row, label, Some(labels[(row + 1) % 3]))
            } else {
                result(row, label, Some(label))
            }
        })
        .collect()
}

fn reports_of(rows: usize, batch: usize, results: &[ItemResult<'static>]) -> Vec<Value> {
    let mut agreements = 0;
    (0..rows.div_ceil(batch))
        .map(|b| {
            let part = &results[b * batch..((b + 1) * batch).min(rows)];
            let ok = part
                .iter()
                .filter(|r| r.status == ItemStatus::Success)
                .count();
            agreements += part.iter().filter(|r| r.agreement == Some(true)).count();
            serde_json::json!({"batchNumber": b + 1, "batchStartIndex": b * batch,
                "batchEndIndex": b * batch + part.len() - 1, "batchSize": part.len(),
                "batchSuccessful": ok, "batchFailed": part.len() - ok,
                "agreements": agreements, "elapsedMs": 1000 * (b + 1), "retries": 1})
        })
        .collect()
}

fn progress_of(reports: &[Value]) -> String {
    serde_json::json!({"runId": "r1", "csvPath": "x.csv", "config": {"seed": 7},
        "overallProgress": {"total": 1000, "errors": [{"row": 0, "message": "m"}]},
        "allReports": reports})
    .to_string()
}

#[test]
fn past_the_cap_every_disagreement_and_failure_a_seeded_sample_of_agreeing_rows_and_the_same_figures(
) {
    let rows = thousand();
    let notable: Vec<u64> = rows
        .iter()
        .filter(|r| r.agreement != Some(true))
        .map(|r| r.row as u64)
        .collect();
    assert_eq!(notable.len(), 19 + 28 - 1, "row 0 is both: failed");
    let progress = progress_of(&reports_of(1000, 50, &rows));
    let folded = journal(&rows);
    let cap = RowCap { rows: 100, seed: 7 };
    let input = |row_cap| ExplorerInput {
        progress: Some(&progress),
        results: Some(&folded),
        row_cap,
        ..Default::default()
    };
    let full = build(input(None)).unwrap();
    let capped = build(input(Some(cap))).unwrap();

    // The figures are the full run's.
    assert_eq!(capped.evaluation, full.evaluation);
    assert_eq!(capped.evaluation.as_ref().unwrap()["compared"], 981);
    assert_eq!(capped.totals, full.totals);
    assert_eq!(capped.failure_reasons, full.failure_reasons);
    assert_eq!(capped.error_groups, full.error_groups);
    assert_eq!(capped.batches, full.batches);
    assert_eq!(capped.labels, full.labels);
    assert!(full.sample.is_none() && full.items.row.len() == 1000);

    // The rows: every disagreement and failure, and 100 - 46 agreeing rows.
    let items = &capped.items;
    assert_eq!(items.row.len(), 100);
    for row in &notable {
        assert!(
            items.row.contains(row),
            "row {row} is a disagreement or failure"
        );
    }
    let agreeing = (0..items.row.len())
        .filter(|&i| items.ok[i] && items.prediction[i] == Some(items.label[i]))
        .count();
    assert_eq!(agreeing, 54);
    assert!(items.row.windows(2).all(|w| w[0] < w[1]), "sorted by row");
    // Each kept row is the row itself (label indices into the same table).
    for (i, &row) in items.row.iter().enumerate() {
        let j = full.items.row.iter().position(|&r| r == row).unwrap();
        assert_eq!(items.label[i], full.items.label[j]);
        assert_eq!(items.prediction[i], full.items.prediction[j]);
        assert_eq!(items.image[i], full.items.image[j]);
        assert_eq!(
            items.error[i].map(|e| &items.error_texts[e as usize]),
            full.items.error[j].map(|e| &full.items.error_texts[e as usize])
        );
    }
    let sample = capped.sample.as_ref().unwrap();
    assert_eq!(
        (
            sample.rows,
            sample.shown,
            sample.cap,
            sample.notable,
            sample.notable_shown
        ),
        (1000, 100, 100, 46, 46)
    );
    assert_eq!(
        (sample.agreeing, sample.agreeing_shown, sample.seed),
        (954, 54, 7)
    );
    assert_eq!(sample.results_file, "shadow-mode-batch-results-r1.jsonl");
    let note = &capped.notes[0];
    for part in [
        "shows 100 of the run's 1,000 rows",
        "every disagreement and failure (46)",
        "a seeded random sample of 54 of the 954 agreeing rows",
        "computed from all 1,000 rows",
        "shadow-mode-batch-results-r1.jsonl",
        "Open a finished run",
    ] {
        assert!(note.contains(part), "{part:?} in {note}");
    }

    // The same seed gives the same sample whatever the order rows come in;
    // another seed another one.
    let mut reversed = ExplorerBuilder::new(
        None,
        Some(RunFile::progress(&progress).unwrap()),
        BuildOptions {
            row_cap: Some(cap),
            ..Default::default()
        },
    );
    for r in rows.iter().rev() {
        reversed.push(r);
    }
    let reversed = reversed.finish(Some(&JournalScan::default()));
    assert_eq!(reversed.items, capped.items);
    let other = build(input(Some(RowCap { rows: 100, seed: 8 }))).unwrap();
    assert_ne!(other.items.row, capped.items.row);

    // Under the cap: every row, no sample, no note.
    let roomy = build(input(Some(RowCap {
        rows: 1000,
        seed: 7,
    })))
    .unwrap();
    assert_eq!(roomy.items, full.items);
    assert!(roomy.sample.is_none());
    assert_eq!(roomy.notes, full.notes);
}

#[test]
fn when_failures_and_disagreements_pass_the_cap_every_failure_is_kept_and_disagreements_sampled() {
    let rows = thousand();
    let folded = journal(&rows);
    let data = build(ExplorerInput {
        results: Some(&folded),
        row_cap: Some(RowCap { rows: 40, seed: 1 }),
        ..Default::default()
    })
    .unwrap();
    let s = data.sample.as_ref().unwrap();
    assert_eq!((s.notable, s.notable_shown, s.agreeing_shown), (46, 36, 4));
    assert_eq!(
        (s.failed, s.failed_shown, s.disagreeing, s.disagreeing_shown),
        (19, 19, 27, 17)
    );
    assert_eq!(data.items.row.len(), 40);
    // Every failure is kept before any disagreement.
    assert_eq!(data.items.ok.iter().filter(|ok| !**ok).count(), 19);
    assert!(
        data.notes[0].contains(
            "every failure (19), a seeded random sample of 17 of its 27 disagreements (too many"
        ),
        "{}",
        data.notes[0]
    );
    // Computed from the results: the evaluation still counts every row.
    assert_eq!(data.evaluation.as_ref().unwrap()["compared"], 981);
}

#[test]
fn the_builder_holds_at_most_three_times_the_cap_in_rows_however_many_it_is_given() {
    let mut builder = ExplorerBuilder::new(
        None,
        None,
        BuildOptions {
            row_cap: Some(RowCap { rows: 50, seed: 3 }),
            ..Default::default()
        },
    );
    for row in 0..20_000 {
        let wrong = row % 4 == 0;
        builder.push(&result(row, "cat", Some(if wrong { "dog" } else { "cat" })));
        let held = builder.failed.heap.len()
            + builder.disagreeing.heap.len()
            + builder.agreeing.heap.len();
        assert!(held <= 150);
        assert!(builder.all.is_empty());
    }
    let data = builder.finish(Some(&JournalScan::default()));
    assert_eq!(data.items.row.len(), 50);
    assert_eq!(data.totals.processed, 20_000);
}

#[test]
fn a_long_runs_batches_are_gathered_into_a_few_thousand_points_with_their_counts() {
    let batches = 10_000u64;
    let mut agreements = 0;
    let reports: Vec<Value> = (0..batches)
        .map(|b| {
            agreements += 40 + b % 10;
            serde_json::json!({"batchNumber": b + 1, "batchStartIndex": b * 50,
                "batchEndIndex": b * 50 + 49, "batchSize": 50, "batchSuccessful": 50,
                "batchFailed": 0, "agreements": agreements, "elapsedMs": 100 * (b + 1),
                "retries": 1, "latencyP50Ms": 10 + b % 3, "latencyP95Ms": 20 + b % 7,
                "drift": b == 4321})
        })
        .collect();
    let points = batch_points(&reports);
    assert!(points.len() <= 2 * MAX_BATCH_POINTS, "{}", points.len());
    assert!(points.len() >= MAX_BATCH_POINTS);
    assert_eq!(points.iter().map(|p| p.batches).sum::<u64>(), batches);
    assert_eq!(points[0].start, 0);
    assert_eq!(points.last().unwrap().end, batches * 50 - 1);
    assert!(points.windows(2).all(|w| w[0].end + 1 == w[1].start));
    assert_eq!(
        points.iter().map(|p| p.successful.unwrap()).sum::<u64>(),
        batches * 50
    );
    assert_eq!(
        points.iter().map(|p| p.retries.unwrap()).sum::<u64>(),
        batches
    );
    // A point's agreement is its batches' counts together.
    let p = &points[1];
    let first = (p.batch_number - 1) as usize;
    let agreed: u64 = (first..first + p.batches as usize)
        .map(|b| 40 + b as u64 % 10)
        .sum();
    assert_eq!(
        p.agreement_rate,
        Some(agreed as f64 / (50 * p.batches) as f64)
    );
    assert_eq!(
        p.agreement_interval,
        wilson_interval(agreed, 50 * p.batches)
    );
    assert_eq!(p.latency_p95_ms, Some(26.0), "the highest of its batches'");
    // One drifting batch makes its point drift, and only that one.
    assert_eq!(points.iter().filter(|p| p.drift).count(), 1);
    // A summary of this many batches says how its points are drawn.
    let summary = serde_json::json!({"runId": "r", "status": "completed",
        "statistics": {}, "evaluation": {"labels": []}, "allReports": reports})
    .to_string();
    let data = build(ExplorerInput {
        summary: Some(&summary),
        ..Default::default()
    })
    .unwrap();
    assert!(
        data.notes
            .iter()
            .any(|n| n.contains("The charts draw") && n.contains("batches each")),
        "{:?}",
        data.notes
    );
}

#[test]
fn a_results_file_fed_in_chunks_of_any_size_gives_the_data_of_the_folded_journal() {
    let rows = thousand();
    let mut text: String = rows[..200].iter().map(ItemResult::to_json_line).collect();
    text.push_str("not a result\n\n");
    text.push_str(
        &rows[200..300]
            .iter()
            .map(ItemResult::to_json_line)
            .collect::<String>(),
    );
    text.push_str("{\"row\": 5, \"torn");
    let progress = progress_of(&reports_of(300, 50, &rows[..300]));
    let options = || BuildOptions {
        row_cap: Some(RowCap { rows: 60, seed: 7 }),
        ..Default::default()
    };
    let folded = fold_journal(&text);
    let expected = build(ExplorerInput {
        progress: Some(&progress),
        results: Some(&folded),
        row_cap: options().row_cap,
        ..Default::default()
    })
    .unwrap();
    assert!(expected
        .notes
        .iter()
        .any(|n| n.contains("1 line(s) of the results file could not be read")));
    assert!(expected.notes.iter().any(|n| n.contains("cut off")));
    for size in [1, 7, 100, 4096, text.len()] {
        let mut stream =
            ResultsStream::new(None, Some(RunFile::progress(&progress).unwrap()), options());
        for chunk in text.as_bytes().chunks(size) {
            stream.push(chunk);
        }
        assert!(!stream.end_pass(), "each row once: one pass");
        assert_eq!(stream.finish(), expected, "chunks of {size}");
    }
}

#[test]
fn a_row_written_twice_counts_by_its_last_line_after_a_second_pass() {
    let mut rows: Vec<ItemResult<'static>> = thousand()[..100].to_vec();
    // Row 10 failed, then (resumed) succeeded; row 20 succeeded, then failed.
    rows[10] = result(10, rows[10].label.as_ref(), None);
    rows.push(result(10, "bee", Some("bee")));
    rows.push(result(20, "cat", None));
    let text: String = rows.iter().map(ItemResult::to_json_line).collect();
    let folded = fold_journal(&text);
    let expected = build(ExplorerInput {
        results: Some(&folded),
        ..Default::default()
    })
    .unwrap();
    let mut stream = ResultsStream::new(None, None, BuildOptions::default());
    let mut passes = 0;
    loop {
        passes += 1;
        stream.push(text.as_bytes());
        if !stream.end_pass() {
            break;
        }
    }
    assert_eq!(passes, 2);
    let data = stream.finish();
    assert_eq!(data.totals.processed, 100);
    assert_eq!(
        data, expected,
        "the same as a resume's fold: the last line wins"
    );
}

#[test]
fn a_run_file_read_as_a_stream_skips_its_error_list() {
    // A progress file whose error list is longer than anything kept: read from
    // a reader, the list is skipped (serde's IgnoredAny), the reports folded.
    let errors: Vec<Value> = (0..5000)
        .map(|row| serde_json::json!({"row": row, "message": "x".repeat(100)}))
        .collect();
    let text = serde_json::json!({"runId": "r", "overallProgress": {"total": 5, "errors": errors},
        "allReports": [{"batchNumber": 1, "batchStartIndex": 0, "batchEndIndex": 4}]})
    .to_string();
    let file = RunFile::progress_from_reader(text.as_bytes()).unwrap();
    assert_eq!(file.total, Some(5));
    assert_eq!(file.batches.bins.len(), 1);
    let e = RunFile::summary_from_reader("{\"runId\": 1".as_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            ExplorerError::NotARunFile {
                what: "summary",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn hostile_text_is_kept_as_data() {
    let hostile = "<img src=x onerror=alert(1)></script>";
    let mut r = result(0, hostile, Some(hostile));
    r.image = Cow::Borrowed("</script><script>alert(2)</script>.png");
    let folded = journal(&[r]);
    let data = build(ExplorerInput {
        results: Some(&folded),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(data.labels, [hostile]);
    assert_eq!(
        data.items.image[0],
        "</script><script>alert(2)</script>.png"
    );
}

#[test]
fn percentiles_are_nearest_rank() {
    let v: Vec<u64> = (1..=100).collect();
    assert_eq!(percentile(&v, 50), Some(50.0));
    assert_eq!(percentile(&v, 95), Some(95.0));
    assert_eq!(percentile(&[7], 95), Some(7.0));
    assert_eq!(percentile(&[], 50), None);
}

/// The summary's gate is shown as written; a run whose settings hold
/// requirements and that has no summary shows each "not judged"; a run without
/// requirements has no gate.
#[test]
fn the_gate_is_the_summarys_or_not_judged_without_one() {
    let folded = known();
    let mut summary: Value = serde_json::from_str(&summary()).unwrap();
    let gate = serde_json::json!({
        "verdict": "failed",
        "requirements": [{"requirement": "agreement >= 0.9", "value": 0.75, "passed": false,
                          "text": "agreement 0.75 < 0.9 required: FAILED"}]
    });
    summary["gate"] = gate.clone();
    let text = summary.to_string();
    let data = build(ExplorerInput {
        summary: Some(&text),
        results: Some(&folded),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(data.gate, Some(gate));

    let progress = serde_json::json!({
        "overallProgress": {"total": 10, "successful": 4, "failed": 2},
        "allReports": [],
        "config": {"gate": ["agreement >= 0.9", "recall[cat] >= 0.5"]}
    })
    .to_string();
    let data = build(ExplorerInput {
        progress: Some(&progress),
        results: Some(&folded),
        ..Default::default()
    })
    .unwrap();
    let gate = data.gate.unwrap();
    assert_eq!(gate["verdict"], "notJudged");
    assert_eq!(gate["requirements"][1]["requirement"], "recall[cat] >= 0.5");
    assert_eq!(gate["requirements"][1]["passed"], Value::Null);

    let plain = build(ExplorerInput {
        results: Some(&folded),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(plain.gate, None);
    assert!(serde_json::to_value(&plain).unwrap().get("gate").is_none());
}

/// A run with a baseline (`--baseline`, `--baseline-column`): the summary's
/// comparison reaches the explorer as written (its figures: the run's report
/// draws them); a run without one has none, and a comparison that is not an
/// object is left out.
#[test]
fn the_summarys_comparison_is_the_explorers() {
    let folded = known();
    let plain_summary = summary();
    let mut summary: Value = serde_json::from_str(&plain_summary).unwrap();
    let comparison = serde_json::json!({
        "a": {"name": "column decision", "agreementRate": 0.7},
        "b": {"name": "this run (r1)", "agreementRate": 0.75},
        "table": {"bothRight": {"count": 6}, "onlyBRight": {"count": 2}},
        "verdict": "no difference shown at this sample size (p = 0.5): 95% interval -10.0 to +20.0 points"
    });
    summary["comparison"] = comparison.clone();
    let text = summary.to_string();
    let input = |summary: &str| {
        build(ExplorerInput {
            summary: Some(summary),
            results: Some(&folded),
            ..Default::default()
        })
        .unwrap()
    };
    let data = input(&text);
    assert_eq!(data.comparison, Some(comparison));
    assert_eq!(
        serde_json::to_value(&data).unwrap()["comparison"]["table"]["onlyBRight"]["count"],
        2
    );
    summary["comparison"] = Value::Null;
    assert_eq!(input(&summary.to_string()).comparison, None);
    let plain = input(&plain_summary);
    assert_eq!(plain.comparison, None);
    assert!(serde_json::to_value(&plain)
        .unwrap()
        .get("comparison")
        .is_none());
}

/// Without a summary the results' errors are grouped as the summary groups them:
/// by template, without the `line N: ` prefix, the paths as each row's detail.
#[test]
fn errors_from_the_results_are_grouped_by_their_template() {
    let rows: Vec<ItemResult<'static>> = (0..30)
        .rev()
        .map(|row| {
            let mut r = result(row, "cat", None);
            r.error = Some(Cow::Owned(format!(
                "line {}: images/{row}.png resolves to /x/images/{row}.png, outside the data folder /d",
                row + 2
            )));
            r.error_kind = Some(FailureKind::Image);
            r.http_status = None;
            r
        })
        .collect();
    let folded = journal(&rows);
    let data = build(ExplorerInput {
        results: Some(&folded),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(data.error_groups.len(), 1, "{:?}", data.error_groups);
    let g = &data.error_groups[0];
    assert_eq!(g.count, 30);
    assert_eq!(
        g.message,
        "<path> resolves to <path>, outside the data folder /d"
    );
    assert_eq!(g.rows, (0..GROUP_ROWS as u64).collect::<Vec<_>>());
    assert_eq!(g.details.len(), GROUP_ROWS);
    assert_eq!(g.details[3], "images/3.png, /x/images/3.png");
}

/// Rows' confidences become a column, with the probability of each row's own
/// label where the result kept it; a run without them has neither column.
#[test]
fn confidences_are_columns_when_rows_have_them() {
    use crate::confidence::LabelChance;
    let scored = |row, label, prediction, p: f64, alternatives: Vec<(&str, f64)>| ItemResult {
        confidence: Some(p),
        alternatives: alternatives
            .into_iter()
            .map(|(l, probability)| LabelChance {
                label: Cow::Owned(l.to_owned()),
                probability,
            })
            .collect(),
        ..result(row, label, Some(prediction))
    };
    let folded = journal(&[
        scored(0, "cat", "cat", 0.9, vec![("dog", 0.1)]),
        scored(1, "cat", "dog", 0.7, vec![("cat", 0.2)]),
        scored(2, "bird", "dog", 0.6, vec![("cat", 0.3)]),
        result(3, "dog", None),
    ]);
    let data = build(ExplorerInput {
        results: Some(&folded),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        data.items.confidence,
        [Some(0.9), Some(0.7), Some(0.6), None]
    );
    assert_eq!(
        data.items.label_probability,
        [Some(0.9), Some(0.2), None, None]
    );
    let plain = build(ExplorerInput {
        results: Some(&known()),
        ..Default::default()
    })
    .unwrap();
    assert!(plain.items.confidence.is_empty() && plain.items.label_probability.is_empty());
    assert!(plain.confidence.is_none());
}
