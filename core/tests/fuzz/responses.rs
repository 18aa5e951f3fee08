//! Target `responses`: whatever an endpoint answers, through the engine. The
//! answer parsers and the header parser are fuzzed on their own in `answers` and
//! `ratelimit`; here any status, headers and body go through everything that
//! reads them in a run: the status policy and the error-body reader of non-2xx
//! answers, the provider's parser of 2xx ones, the rate-limit headers and what
//! pacing and retries make of them. A run must end, every row once, and the
//! texts it reports must stay bounded, whatever the endpoint says.

use proptest::collection::vec;
use proptest::prelude::*;
use shadow_core::http::{HttpResponse, TransportErrorKind};
use shadow_core::input::{parse_labels_csv, ColumnNames, LabelSet};
use shadow_core::report::RunStatus;
use shadow_core::{Input, Millis, Run, RunConfig};

use crate::answers::{error_body, openai_body, MAX_ERROR_BYTES};
use crate::corpus::{self, Bytes};
use crate::drive_to_end;
use crate::ratelimit;

const NOW: Millis = Millis(1_737_714_600_000);

/// What the endpoint does with one request.
#[derive(Clone, Debug)]
enum Reply {
    Answer(HttpResponse),
    Transport(TransportErrorKind),
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        6 => Just(200u16),
        2 => Just(429u16),
        3 => prop::sample::select(vec![400u16, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503]),
        1 => any::<u16>(),
    ]
}

fn body() -> impl Strategy<Value = String> {
    let labels = LabelSet::from_labels(["cat", "dog"]);
    prop_oneof![
        4 => openai_body(labels).prop_map(|(body, _)| body),
        2 => error_body().prop_map(|(body, _)| body.to_string()),
        2 => corpus::mutated("answers").prop_map(|b| b.text()),
        1 => corpus::noise().prop_map(|b: Bytes| b.text()),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    let headers = vec((ratelimit::name(), ratelimit::value()), 0..4);
    prop_oneof![
        8 => (status(), headers, body()).prop_map(|(status, headers, body)| {
            Reply::Answer(HttpResponse { status, headers, body })
        }),
        1 => prop::sample::select(vec![
            TransportErrorKind::Timeout,
            TransportErrorKind::Connect,
            TransportErrorKind::Reset,
            TransportErrorKind::Body,
        ])
        .prop_map(Reply::Transport),
    ]
}

/// Small settings, so that runs end in a few steps: few retries, short backoff.
fn config() -> impl Strategy<Value = RunConfig> {
    (
        1usize..4,
        0u32..3,
        0u32..4,
        1usize..4,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(batch_size, max_retries, max_rate_limit_retries, concurrency, adaptive, seed)| {
                RunConfig {
                    run_id: "fuzz".into(),
                    batch_size,
                    max_retries,
                    max_rate_limit_retries,
                    concurrency: (seed % 2 == 0).then_some(concurrency),
                    max_concurrency: concurrency,
                    adaptive_concurrency: adaptive,
                    backoff_initial_ms: 10,
                    backoff_max_ms: 1_000,
                    seed,
                    ..RunConfig::default()
                }
            },
        )
}

fn check(config: RunConfig, rows: usize, replies: &[Reply]) -> Result<(), TestCaseError> {
    let mut text = String::from("image,label\n");
    for i in 0..rows {
        text.push_str(&format!(
            "https://x.test/{i}.png,{}\n",
            ["cat", "dog"][i % 2]
        ));
    }
    let csv = parse_labels_csv(&text, &ColumnNames::default()).unwrap();
    let mut run = Run::new(config, csv, NOW).unwrap();
    let mut sent = 0;
    // Counted by one closure and read by the other.
    let done = vec![std::cell::Cell::new(0u32); rows];
    drive_to_end(
        &mut run,
        NOW,
        5,
        |run, d| {
            done[d.row].set(done[d.row].get() + 1);
            let line = run.result(&d).to_json_line();
            if let Some((_, message)) = &d.failure {
                prop_assert!(message.len() <= MAX_ERROR_BYTES + 64, "{}", message);
            }
            prop_assert!(line.len() <= 2 * MAX_ERROR_BYTES, "{}", line);
            Ok(())
        },
        |summary| {
            prop_assert!(done.iter().all(|n| n.get() <= 1), "{:?}", done);
            let s = &summary.statistics;
            prop_assert_eq!(
                s.successful + s.failed,
                done.iter().map(std::cell::Cell::get).sum::<u32>() as usize
            );
            match summary.status {
                RunStatus::Completed => prop_assert!(done.iter().all(|n| n.get() == 1)),
                RunStatus::Aborted => {
                    let reason = summary.abort_reason.as_deref().unwrap_or("");
                    prop_assert!(!reason.is_empty());
                    prop_assert!(reason.len() <= MAX_ERROR_BYTES, "{}", reason);
                }
                other => prop_assert!(false, "status {:?}", other),
            }
            Ok(())
        },
        |_, order| {
            let input = match &replies[sent % replies.len()] {
                Reply::Answer(response) => Input::Response {
                    ticket: order.ticket,
                    response: response.clone(),
                },
                Reply::Transport(kind) => Input::TransportFailed {
                    ticket: order.ticket,
                    kind: *kind,
                    message: "fuzz".into(),
                },
            };
            sent += 1;
            input
        },
    )
}

proptest! {
    #![proptest_config(crate::config(500))]

    #[test]
    fn any_endpoint_behaviour_ends_the_run(
        config in config(),
        rows in 1usize..6,
        replies in vec(reply(), 1..6),
    ) {
        check(config, rows, &replies)?;
    }
}
