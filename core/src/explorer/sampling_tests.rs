//! The explorer's data of a run over a seeded sample of the CSV (`--sample`,
//! `--until-interval`): the summary's `sample` and `precision` blocks carried
//! to the renderer, and, for a run without a summary, the sample its journal's
//! header names with the agreement counted from the results.

use serde_json::json;

use super::*;
use crate::journal::{fold_journal, JournalHeader};
use crate::sample::{finite_population_interval, Sample};
use crate::RunConfig;

fn sample() -> Sample {
    Sample {
        seed: 7,
        rows: 4,
        csv_rows: 10,
        csv_fingerprint: "0123456789abcdef".into(),
        strata: None,
    }
}

/// Four results: three agree, one disagrees, one failed (not compared).
fn lines() -> String {
    let row = |row: usize, label: &str, prediction: Option<&str>| {
        let mut r = json!({"row": row, "line": row * 3 + 2, "image": format!("images/{row}.png"),
            "label": label, "status": if prediction.is_some() { "success" } else { "failed" },
            "attempts": 1, "latencyMs": 5, "finishedAt": "2025-01-24T10:30:00.000Z"});
        if let Some(p) = prediction {
            r["prediction"] = json!(p);
            r["agreement"] = json!(p == label);
        } else {
            r["error"] = json!("HTTP 500: boom");
            r["errorKind"] = json!("http");
        }
        r.to_string() + "\n"
    };
    [
        row(0, "cat", Some("cat")),
        row(1, "dog", Some("dog")),
        row(2, "cat", Some("dog")),
        row(3, "dog", Some("dog")),
        row(4, "cat", None),
    ]
    .concat()
}

fn header() -> String {
    JournalHeader {
        run: RunConfig {
            sample: Some(sample()),
            ..RunConfig::default()
        },
    }
    .to_json_line()
}

#[test]
fn a_summarys_sample_and_precision_blocks_reach_the_renderer_as_written() {
    let sample = json!({"rows": 4, "csvRows": 10, "compared": 4, "seed": 7,
        "agreementIntervalForCsv": {"low": 0.41, "high": 0.93}, "method": "Wilson, FPC"});
    let precision = json!({"targetHalfWidth": 0.3, "stopReason": "precision reached", "rows": 4,
        "anytimeInterval": {"low": 0.45, "high": 0.99}, "halfWidth": 0.27,
        "wilsonInterval": {"low": 0.3, "high": 0.95}, "method": "WSR"});
    let summary = json!({"runId": "r1", "status": "completed",
        "statistics": {"total": 4, "processed": 4, "successful": 4, "failed": 0, "remaining": 0},
        "evaluation": {"compared": 4, "agreements": 3, "agreementRate": 0.75, "labels": ["cat", "dog"]},
        "sample": sample, "precision": precision, "allReports": []})
    .to_string();
    let folded = fold_journal(&lines());
    let data = build(ExplorerInput {
        summary: Some(&summary),
        results: Some(&folded),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(data.csv_sample, Some(sample));
    assert_eq!(data.precision, Some(precision));

    // A run over the whole CSV has neither, and its JSON no such keys.
    let whole = json!({"runId": "r2", "status": "completed", "statistics": {},
        "evaluation": {"compared": 0}, "allReports": []})
    .to_string();
    let data = build(ExplorerInput {
        summary: Some(&whole),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        (data.csv_sample.as_ref(), data.precision.as_ref()),
        (None, None)
    );
    let json = serde_json::to_value(&data).unwrap();
    assert!(json.get("csvSample").is_none() && json.get("precision").is_none());
}

#[test]
fn without_a_summary_the_headers_sample_is_reported_from_the_rows_compared() {
    let text = header() + &lines();
    // Three of the four compared rows agree; the failed row is not compared.
    let want = json!({"rows": 4, "csvRows": 10, "compared": 4, "seed": 7,
        "agreementIntervalForCsv": finite_population_interval(3, 4, 10),
        "method": crate::sample::SampleReport::of_counts(&sample(), 3, 4, |_| (0, 0)).method});

    let folded = fold_journal(&text);
    let built = build(ExplorerInput {
        results: Some(&folded),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(built.csv_sample, Some(want.clone()));
    assert_eq!(built.precision, None);

    // The same from the results file streamed in small chunks (the CLI's report).
    let mut stream = ResultsStream::of_finished_run(None, None, Some("r".into()), 100);
    for chunk in text.as_bytes().chunks(7) {
        stream.push(chunk);
    }
    assert!(!stream.end_pass());
    assert_eq!(stream.finish().csv_sample, Some(want));

    // A journal without the header's sample: a run over the whole CSV.
    let folded = fold_journal(&lines());
    let data = build(ExplorerInput {
        results: Some(&folded),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(data.csv_sample, None);
}
