//! Snapshots of what people and programs read: the console box, the final console
//! summary, and the JSON of the progress file and summary.

use shadow_core::RunConfig;

use crate::sim::*;

fn sample_run() -> (Log, Sim) {
    let csv = csv_text("image,label,id\nimages/a.png,cat,a1\nimages/b.png,dog,b1\nimages/c.png,cat,c1\nhttps://example.test/d.jpg,dog,d1\nimages/e.png,,e1\n");
    let script = |item: &shadow_core::input::Item, order: &shadow_core::SendOrder, _| match (
        item.row,
        order.attempt,
    ) {
        (1, 1) => (1_200, status_with(429, &[("retry-after-ms", "2000")])),
        (2, _) => (900, ok("dog")),
        (3, _) => (400, status(400)),
        _ => (1_500, ok(&item.label)),
    };
    let config = RunConfig {
        batch_size: 2,
        concurrency: Some(2),
        ..config()
    };
    let log = Sim::new(config.clone(), csv.clone(), script).finish();
    (log, Sim::new(config, csv, script))
}

#[test]
fn console_batch_report() {
    let (log, _) = sample_run();
    insta::assert_snapshot!(log.reports[0].to_console());
}

#[test]
fn console_summary() {
    let (log, _) = sample_run();
    insta::assert_snapshot!(log.summary.unwrap().to_console(10));
}

#[test]
fn summary_json() {
    let (log, _) = sample_run();
    insta::assert_json_snapshot!(log.summary.unwrap());
}

#[test]
fn journal_lines() {
    let (log, _) = sample_run();
    let lines: String = log.done.iter().map(|d| d.to_json_line()).collect();
    insta::assert_snapshot!(lines);
}

#[test]
fn progress_json_has_the_fields_consumers_read() {
    let (_, sim) = sample_run();
    let mut run = sim.run;
    // Drive by hand to the first report: everything answers at once.
    let now = T0;
    let mut sent = Vec::new();
    while let Some(out) = run.poll(now) {
        if let shadow_core::Output::Send(o) = out {
            sent.push(o);
        }
    }
    for o in sent {
        let body = completion(&run.item(o.item).label.clone());
        run.handle(
            now,
            shadow_core::Input::Response {
                ticket: o.ticket,
                response: shadow_core::http::HttpResponse {
                    status: 200,
                    headers: vec![],
                    body,
                },
            },
        )
        .unwrap();
    }
    while run.poll(now).is_some() {}
    let progress = serde_json::to_value(run.progress(now)).unwrap();
    insta::assert_json_snapshot!(progress);
    use shadow_core::report::contract::*;
    for key in PROGRESS_FIELDS {
        assert!(progress.get(key).is_some(), "{key}");
    }
    for key in OVERALL_PROGRESS_FIELDS {
        assert!(progress["overallProgress"].get(key).is_some(), "{key}");
    }
    for key in BATCH_REPORT_FIELDS {
        assert!(progress["currentBatchReport"].get(key).is_some(), "{key}");
    }
}

/// Labels, image paths and an endpoint's message holding control characters and
/// escape sequences are printed escaped in the console text, and kept as they were
/// in the JSON.
#[test]
fn console_text_escapes_control_characters_from_the_csv_and_the_endpoint() {
    let red = "\x1b[31mred\rx";
    let csv = csv_text(&format!(
        "image,label\n\"a\x1b[2J.png\",\"{red}\"\nb.png,\"\u{202e}god\"\n\"c\x07.png\",\n"
    ));
    let summary = Sim::new(config(), csv.clone(), |item, _, _| (100, ok(&item.label)))
        .finish()
        .summary
        .unwrap();
    let text = summary.to_console(10);
    for raw in ['\x1b', '\r', '\x07', '\u{202e}'] {
        assert!(!text.contains(raw), "{raw:?} printed raw:\n{text}");
    }
    assert!(text.contains("\\u{1b}[31mred\\rx"), "{text}");
    assert!(text.contains("\\u{202e}god"), "{text}");
    assert!(text.contains("(line 4)"), "{text}");
    let json = serde_json::to_string(&summary).unwrap();
    assert!(json.contains("\\u001b[31mred\\rx"), "{json}");

    // A message from the endpoint, in the reason of an abort.
    let body = r#"{"error":{"message":"\u001b[2J\rkey revoked","code":"invalid_api_key"}}"#;
    let summary = Sim::new(config(), csv, move |_, _, _| {
        (100, Reply::Status(401, vec![], body.to_string()))
    })
    .finish()
    .summary
    .unwrap();
    let text = summary.to_console(10);
    assert!(!text.contains('\x1b') && !text.contains('\r'), "{text}");
    assert!(text.contains("\\u{1b}[2J\\rkey revoked"), "{text}");
}
