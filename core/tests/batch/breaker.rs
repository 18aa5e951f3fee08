//! The batch run's breaker: the live run's breaker, with the batch run's
//! thresholds (fewer calls, and time counted from the first failure, since a
//! batch run's calls can be hours apart).

use serde_json::json;
use shadow_core::batch::{BatchInput, BatchOutput, BatchRun};
use shadow_core::http::{HttpResponse, TransportErrorKind};
use shadow_core::report::{RunStatus, Summary};
use shadow_core::{AbortReason, Millis, RunConfig};

use super::harness::{config, csv, ok, status, START};

/// Drives `run`, answering each provider call (named `upload` or `METHOD url`)
/// with `answer`, until it finishes. Returns its summary and when calls failed.
fn drive(
    mut run: BatchRun,
    mut answer: impl FnMut(Millis, &str) -> Result<HttpResponse, TransportErrorKind>,
) -> (Summary, Vec<Millis>) {
    let mut now = START;
    let mut failed_at = Vec::new();
    loop {
        while let Some(output) = run.poll(now) {
            let (call, what) = match output {
                BatchOutput::BuildLine(order) => {
                    let line = run
                        .line_builder()
                        .line(&order, "https://x.test/a.png", None);
                    let bytes = line.len() as u64;
                    run.handle(
                        now,
                        BatchInput::LineBuilt {
                            ticket: order.ticket,
                            bytes,
                        },
                    )
                    .unwrap();
                    continue;
                }
                BatchOutput::Upload(order) => (order.call, "upload".to_string()),
                BatchOutput::Call { call, request, .. } => {
                    (call, format!("{} {}", request.method, request.url))
                }
                BatchOutput::Finished { summary } => return (*summary, failed_at),
                _ => continue,
            };
            let input = match answer(now, &what) {
                Ok(response) => {
                    if !(200..300).contains(&response.status) {
                        failed_at.push(now);
                    }
                    BatchInput::Answer { call, response }
                }
                Err(kind) => {
                    failed_at.push(now);
                    BatchInput::CallFailed {
                        call,
                        kind,
                        message: "connection refused".into(),
                    }
                }
            };
            run.handle(now, input).unwrap();
        }
        now = run
            .poll_timeout()
            .expect("a deadline while the run is not finished");
    }
}

#[test]
fn a_provider_never_reached_stops_the_batch_run_after_five_connect_failures() {
    let run = BatchRun::new(config(50), csv(3), START).unwrap();
    let (summary, failed_at) = drive(run, |_, _| Err(TransportErrorKind::Connect));
    assert_eq!(summary.status, RunStatus::Aborted);
    assert!(
        matches!(
            summary.abort_kind,
            Some(AbortReason::EndpointUnreachable { attempts: 5, .. })
        ),
        "{:?}",
        summary.abort_kind
    );
    assert!(failed_at.len() >= 5);
}

#[test]
fn a_batch_run_gives_up_on_failing_calls_counting_from_the_first_failure() {
    let limit = 600_000;
    let config = RunConfig {
        abort_after_failing_ms: limit,
        ..config(50)
    };
    // Uploaded and created at once; polled fine for three hours; then every
    // call fails with a 500.
    let broken_from = Millis(START.0 + 3 * 3_600_000);
    let batch = json!({"id": "batch-1", "object": "batch", "status": "in_progress",
        "input_file_id": "file-1", "request_counts": {"total": 3, "completed": 0, "failed": 0}});
    let run = BatchRun::new(config, csv(3), START).unwrap();
    let (summary, failed_at) = drive(run, |now, what| {
        Ok(if now >= broken_from {
            status(500, "the server had an error")
        } else if what == "upload" {
            ok(json!({"id": "file-1", "object": "file"}))
        } else {
            ok(batch.clone())
        })
    });
    assert_eq!(summary.status, RunStatus::Aborted);
    let Some(AbortReason::EndpointFailing {
        for_ms, attempts, ..
    }) = summary.abort_kind
    else {
        panic!("{:?}", summary.abort_kind);
    };
    assert!(attempts >= 10, "{attempts}");
    assert!(for_ms >= limit, "{for_ms}");
    // From the first failed call, not from the last good answer before it (a
    // poll a minute earlier), nor the start hours ago.
    let first = failed_at[0];
    assert!(first >= broken_from);
    let aborted_at = failed_at[attempts as usize - 1];
    assert_eq!(for_ms, aborted_at.since(first));
}
