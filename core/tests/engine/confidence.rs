//! Answer confidences through the engine: asked for, read, journaled, restored,
//! given up once when the endpoint refuses them, and summed up in the summary.

use shadow_core::confidence::ConfidenceGap;
use shadow_core::report::RunStatus;
use shadow_core::RunConfig;

use crate::sim::*;

const LABELS: &[&str] = &["cat", "dog"];

/// A chat completion answering `label` with probability `p` (the other label
/// `1 - p`), in OpenAI's logprobs shape.
fn scored(label: &str, p: f64) -> Reply {
    let other = if label == "cat" { "dog" } else { "cat" };
    let content = serde_json::json!({ "label": label }).to_string();
    let token = |t: &str, l: f64| serde_json::json!({"token": t, "logprob": l, "bytes": []});
    let mut value = token(label, p.ln());
    value["top_logprobs"] = serde_json::json!([token(label, p.ln()), token(other, (1.0 - p).ln())]);
    Reply::Body(
        serde_json::json!({
            "choices": [{
                "message": { "content": content },
                "logprobs": { "content": [token("{\"label\":\"", 0.0), value, token("\"}", 0.0)] },
                "finish_reason": "stop"
            }]
        })
        .to_string(),
    )
}

/// Rows `3k` get unreadable log-probabilities; the rest are scored, right at
/// confidence 0.9 except row 1 (wrong at 0.95).
#[test]
fn confidences_are_asked_read_journaled_and_summed_up() {
    let log = Sim::new(config(), csv_of(12, LABELS), |item, order, _| {
        assert!(order.confidence, "asked by default for gpt-4o-mini");
        let reply = if item.row % 3 == 0 {
            let body = format!(
                r#"{{"choices":[{{"message":{{"content":"{{\"label\":\"{}\"}}"}},"logprobs":{{"content":"x"}},"finish_reason":"stop"}}]}}"#,
                item.label
            );
            Reply::Body(body)
        } else if item.row == 1 {
            scored("cat", 0.95)
        } else {
            scored(&item.label, 0.9)
        };
        (5, reply)
    })
    .finish();
    check_consistency(&log, 12);
    let s = log.summary.as_ref().unwrap();
    assert_eq!((s.statistics.successful, s.statistics.failed), (12, 0));
    for d in &log.done {
        if d.row % 3 == 0 {
            assert_eq!(
                (d.confidence, d.confidence_gap),
                (None, Some(ConfidenceGap::Malformed))
            );
        } else {
            let want = if d.row == 1 { 0.95 } else { 0.9 };
            assert!((d.confidence.unwrap() - want).abs() < 1e-9, "{d:?}");
            assert_eq!(d.alternatives.len(), 1);
            assert!((d.alternatives[0].probability - (1.0 - want)).abs() < 1e-9);
        }
    }
    let c = s.confidence.as_ref().expect("the summary has the views");
    assert_eq!(
        (c.answered_rows, c.scored_rows, c.gaps.malformed),
        (12, 8, 4)
    );
    // 7 rows right at 0.9, 1 wrong at 0.95: Brier (7 x 0.01 + 0.9025) / 8.
    assert_eq!(c.brier, Some(0.1216));
    let text = s.to_console(10);
    assert!(text.contains("Confidence:       on 8 of 12 answered rows; no confidence: 4 with unreadable log-probabilities"), "{text}");
    // Row 1 (labelled dog, answered cat at 0.95, above cat's threshold 0.9) is
    // the one label to re-check.
    let found = c.label_errors.as_ref().unwrap();
    assert_eq!(found.issues.iter().map(|i| i.row).collect::<Vec<_>>(), [1]);
}

/// An endpoint that refuses log-probabilities: the first refusal turns them off
/// for the run (said in the settings the summary carries), the refused item goes
/// again without, nothing fails; a resumed run does not ask again.
#[test]
fn a_model_refusing_logprobs_is_asked_once() {
    let refusal = r#"{"error": {"message": "This model does not support the 'logprobs' parameter.", "type": "invalid_request_error", "code": "unsupported_parameter"}}"#;
    let script = move |item: &shadow_core::input::Item, order: &shadow_core::SendOrder, _| {
        if order.confidence {
            (10, Reply::Status(400, vec![], refusal.to_owned()))
        } else {
            (10, ok(&item.label))
        }
    };
    let config = RunConfig {
        max_retries: 0,
        concurrency: Some(4),
        ..config()
    };
    let log = Sim::new(config.clone(), csv_of(20, LABELS), script).finish();
    check_consistency(&log, 20);
    let s = log.summary.as_ref().unwrap();
    assert_eq!(s.status, RunStatus::Completed);
    assert_eq!((s.statistics.successful, s.statistics.failed), (20, 0));
    let asked: Vec<bool> = log.sends.iter().map(|(_, o)| o.confidence).collect();
    let last_asked = asked.iter().rposition(|a| *a).unwrap();
    assert!(last_asked < 4, "{asked:?}");
    assert!(log
        .done
        .iter()
        .all(|d| d.attempts <= 2 && d.confidence_gap.is_none()));
    assert_eq!(
        s.config.confidence_refused_by.as_deref(),
        Some(s.config.provider.endpoint_url().as_str())
    );
    // Resumed with the saved settings: never asked.
    let resumed = Sim::new(s.config.clone(), csv_of(3, LABELS), script).finish();
    assert!(resumed.sends.iter().all(|(_, o)| !o.confidence));
    // Turned off by the settings: never asked either, and no views.
    let off = RunConfig {
        confidence: false,
        ..config
    };
    let log = Sim::new(off, csv_of(3, LABELS), script).finish();
    assert!(log.sends.iter().all(|(_, o)| !o.confidence));
    assert!(log.summary.unwrap().confidence.is_none());
}

/// Rows restored from a journal keep their confidence and count in the views;
/// rows journaled without one are said as unscored.
#[test]
fn restored_rows_keep_their_confidence() {
    let first = Sim::new(config(), csv_of(6, LABELS), |item, _, _| {
        (5, scored(&item.label, 0.7))
    })
    .finish();
    let mut done = first.done.clone();
    // An earlier version's lines: no confidence.
    for d in done.iter_mut().filter(|d| d.row >= 4) {
        d.confidence = None;
        d.alternatives.clear();
    }
    let mut second = Sim::new(config(), csv_of(8, LABELS), |item, _, _| {
        (5, scored(&item.label, 0.95))
    });
    assert_eq!(second.run.restore(done).unwrap(), 6);
    let second = second.finish();
    let c = second.summary.unwrap().confidence.unwrap();
    assert_eq!((c.answered_rows, c.scored_rows), (8, 6));
    let bins: Vec<u64> = c.bins.iter().map(|b| b.rows).collect();
    // 0.7 is in bin 10 ((10/15, 11/15]), 0.95 in bin 14.
    assert_eq!((bins[10], bins[14]), (4, 2));
}

/// In a sampled run a row's number is its position in the sample, not its
/// place in the CSV: a label to re-check is named by its CSV line, in the
/// summary and on the console.
#[test]
fn labels_to_recheck_name_the_csv_line_in_a_sampled_run() {
    let csv = csv_of(12, LABELS);
    let sample = shadow_core::sample::Sample::draw(&csv, 3, 12, false, None).unwrap();
    let config = RunConfig {
        sample: Some(sample.clone()),
        seed: 3,
        ..config()
    };
    // CSV line 3 is img-1.png, labelled dog: the model says cat at 0.95.
    let log = Sim::new(config, sample.take(csv), |item, _, _| {
        if item.line == 3 {
            (5, scored("cat", 0.95))
        } else {
            (5, scored(&item.label, 0.9))
        }
    })
    .finish();
    let s = log.summary.as_ref().unwrap();
    let found = s
        .confidence
        .as_ref()
        .unwrap()
        .label_errors
        .as_ref()
        .unwrap();
    assert_eq!(found.issues.len(), 1);
    let issue = &found.issues[0];
    assert_eq!(issue.line, Some(3));
    // The permutation moved it: its row number is not what a person looks for.
    let row = log.done.iter().find(|d| d.line == 3).unwrap().row;
    assert_eq!(issue.row, row);
    assert_ne!(
        row as u64 + 2,
        3,
        "seed 3 leaves the row in place: pick another"
    );
    let text = s.to_console(10);
    assert!(
        text.contains("     line      3: labelled dog (p 0.050), model says cat at 0.950"),
        "{text}"
    );
}
