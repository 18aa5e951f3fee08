//! Target `journal`: the results journal fold (`fold_journal`,
//! `fold_journal_reader`) and what a resume does with it next
//! (`FoldedJournal::prepare_resume`, `Run::restore`, then running the rest to the
//! end). Seeds are journals of the CSV [`seed_csv`] writes.

use std::collections::BTreeMap;
use std::io::BufReader;

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::json;
use shadow_core::http::HttpResponse;
use shadow_core::input::{parse_labels_csv, ColumnNames, LabelsCsv};
use shadow_core::journal::{
    fold_journal, fold_journal_reader, FailureKind, FoldedJournal, ItemResult, ItemStatus, Usage,
};
use shadow_core::report::RunStatus;
use shadow_core::{Input, Millis, Run, RunConfig};

use crate::corpus::{self, Bytes};
use crate::drive_to_end;

const TARGET: &str = "journal";

const LABELS: [&str; 3] = ["cat", "dog", "bird"];

/// Latest time a journal line can hold: the ISO form has four year digits.
const YEAR_9999: u64 = 253_402_300_799_999;

/// `n` rows `{i}.png` with labels cycling through [`LABELS`]; the seeds were
/// written against `seed_csv(8)`.
fn seed_csv(n: usize) -> LabelsCsv {
    let mut text = String::from("image,label\n");
    for i in 0..n {
        text.push_str(&format!("{i}.png,{}\n", LABELS[i % LABELS.len()]));
    }
    parse_labels_csv(&text, &ColumnNames::default()).unwrap()
}

fn fold(input: &[u8], capacity: usize) -> Result<FoldedJournal, TestCaseError> {
    match fold_journal_reader(BufReader::with_capacity(capacity, input)) {
        Ok(folded) => Ok(folded),
        Err(e) => Err(TestCaseError::fail(format!(
            "an in-memory reader cannot fail: {e}"
        ))),
    }
}

/// The fold's own promises, for any input.
fn check_fold(input: &[u8], capacity: usize) -> Result<FoldedJournal, TestCaseError> {
    let folded = fold(input, capacity)?;
    // The buffer size changes nothing; nor does reading from text.
    prop_assert_eq!(&folded, &fold(input, 1)?);
    if let Ok(text) = std::str::from_utf8(input) {
        prop_assert_eq!(&folded, &fold_journal(text));
    }
    let chunks: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    prop_assert_eq!(folded.lines_read, chunks.len());
    // The sound part ends at a line end, and is all of the input up to the last
    // line end when there is no torn tail.
    let end = folded.complete_len;
    prop_assert!(end <= input.len());
    prop_assert!(end == 0 || input[end - 1] == b'\n', "complete_len {}", end);
    let last_newline_end = input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if !folded.torn_tail {
        prop_assert_eq!(end, last_newline_end);
    }
    // The torn tail is the last non-blank line when it is unterminated or unusable.
    let last = chunks
        .iter()
        .rev()
        .find(|c| !c.trim_ascii().is_empty())
        .copied();
    let usable =
        |c: &[u8]| c.ends_with(b"\n") && serde_json::from_slice::<ItemResult<'static>>(c).is_ok();
    prop_assert_eq!(folded.torn_tail, last.is_some_and(|c| !usable(c)));
    // The results: of every complete line, the last one for each row, by row.
    let mut expected = BTreeMap::new();
    let mut expected_bad = Vec::new();
    let last_number = chunks.iter().rposition(|c| !c.trim_ascii().is_empty());
    for (i, c) in chunks.iter().enumerate() {
        if usable(c) {
            let r: ItemResult<'static> = serde_json::from_slice(c).unwrap();
            expected.insert(r.row, r);
        } else if !c.trim_ascii().is_empty() && Some(i) != last_number {
            expected_bad.push(i + 1);
        }
    }
    prop_assert_eq!(&folded.results, &expected.into_values().collect::<Vec<_>>());
    let bad: Vec<usize> = folded.bad_lines.iter().map(|(n, _)| *n).collect();
    prop_assert_eq!(bad, expected_bad);
    // Each result survives being written and read again.
    for r in &folded.results {
        let again = fold_journal(&r.to_json_line());
        prop_assert_eq!(&again.results, &vec![r.clone()]);
    }
    // Reasons for bad lines do not grow faster than the input.
    let reasons: usize = folded.bad_lines.iter().map(|(_, r)| r.len()).sum();
    prop_assert!(
        reasons <= 256 * folded.bad_lines.len() + 4 * input.len(),
        "{} bytes of reasons for {} bytes of journal",
        reasons,
        input.len()
    );
    Ok(folded)
}

/// A chat completion naming `label`, with `usage`.
fn completion(label: &str, usage: Option<Usage>) -> String {
    let mut body = json!({
        "choices": [{ "message": { "content": json!({ "label": label }).to_string() }, "finish_reason": "stop" }],
    });
    if let Some(u) = usage {
        body["usage"] = json!({
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens,
        });
    }
    body.to_string()
}

/// Resumes a run of `csv` from `folded` and runs what is left to the end against
/// an endpoint that answers every item with its label (and `usage`).
fn check_resume(
    csv: LabelsCsv,
    mut folded: FoldedJournal,
    retry_failed: bool,
    usage: Option<Usage>,
) -> Result<(), TestCaseError> {
    let rows = csv.items.len();
    let config = RunConfig {
        run_id: "fuzz".into(),
        ..RunConfig::default()
    };
    let now = Millis(1_737_714_600_000);
    let mut run = Run::new(config, csv, now).expect("the default settings are valid");
    let before = folded.results.len();
    let rewrite = folded.prepare_resume(retry_failed);
    if retry_failed {
        prop_assert!(folded
            .results
            .iter()
            .all(|r| r.status != ItemStatus::Failed));
    }
    if folded.results.len() != before || !folded.bad_lines.is_empty() {
        prop_assert!(rewrite);
    }
    let taken = match run.restore(folded.results.iter().cloned()) {
        Ok(taken) => taken,
        // A journal of another CSV: refused, which is fine.
        Err(e) => {
            prop_assert!(e.to_string().contains("does not match the CSV"), "{}", e);
            return Ok(());
        }
    };
    prop_assert_eq!(taken, folded.results.len());
    prop_assert_eq!(run.counts().resumed, taken);

    drive_to_end(
        &mut run,
        now,
        7,
        |run, done| {
            let line = run.result(&done).to_json_line();
            prop_assert_eq!(fold_journal(&line).results.len(), 1, "{}", line);
            Ok(())
        },
        |summary| {
            let s = &summary.statistics;
            prop_assert_eq!(summary.status, RunStatus::Completed);
            prop_assert_eq!(s.processed, rows);
            prop_assert_eq!(s.successful + s.failed, rows);
            prop_assert_eq!(s.resumed_items, taken);
            Ok(())
        },
        |run, order| {
            let label = run.item(order.item).label.to_string();
            Input::Response {
                ticket: order.ticket,
                response: HttpResponse {
                    status: 200,
                    headers: vec![],
                    body: completion(&label, usage),
                },
            }
        },
    )
}

fn check(
    input: &[u8],
    csv: LabelsCsv,
    capacity: usize,
    retry_failed: bool,
    usage: Option<Usage>,
) -> Result<(), TestCaseError> {
    let folded = check_fold(input, capacity)?;
    check_resume(csv, folded, retry_failed, usage)
}

// ---------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------

fn big() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..1000,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX / 2 + 1),
        1 => any::<u64>(),
    ]
}

fn usage() -> impl Strategy<Value = Option<Usage>> {
    prop::option::of((big(), big(), big()).prop_map(|(p, c, t)| Usage {
        prompt_tokens: p,
        completion_tokens: c,
        total_tokens: t,
    }))
}

/// A journal line for a CSV of `n` rows: mostly true to it, sometimes not.
fn result_line(n: usize) -> impl Strategy<Value = String> {
    let row = prop_oneof![
        8 => 0..n.max(1),
        1 => Just(n),
        1 => any::<usize>(),
    ];
    (
        row,
        prop::sample::select(vec!["", "cat", "dog", "bird", "fox", "Cat"]),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(1u32), 0u32..10, any::<u32>()],
        prop::option::of(big()),
        usage(),
        prop::option::of(any::<u16>()),
        0..=YEAR_9999,
        prop::option::of("\\PC{0,30}"),
        any::<bool>(),
    )
        .prop_map(
            move |(
                row,
                predicted,
                success,
                true_image,
                attempts,
                latency,
                usage,
                status,
                at,
                error,
                id,
            )| {
                let label = LABELS[row % LABELS.len()];
                let image = if true_image {
                    format!("{row}.png")
                } else {
                    format!("{row}.jpg")
                };
                let prediction: Option<std::borrow::Cow<'static, str>> =
                    (success && !predicted.is_empty()).then(|| predicted.into());
                ItemResult {
                    row,
                    line: row as u64 + 2,
                    id: id.then(|| format!("id-{row}").into()),
                    image: image.into(),
                    label: label.into(),
                    agreement: prediction.as_deref().map(|p| p == label),
                    prediction,
                    status: if success {
                        ItemStatus::Success
                    } else {
                        ItemStatus::Failed
                    },
                    attempts,
                    latency_ms: latency,
                    error: if success { None } else { error.map(Into::into) },
                    error_kind: (!success).then_some(FailureKind::Http),
                    http_status: status,
                    usage: if success { usage } else { None },
                    cost_usd: usage
                        .filter(|_| success)
                        .map(|u| u.total_tokens as f64 / 1e6),
                    answer: success.then(|| format!("{{\"label\": {predicted:?}}}").into()),
                    confidence: None,
                    alternatives: Vec::new(),
                    confidence_gap: None,
                    finished_at: Millis(at),
                }
                .to_json_line()
            },
        )
}

/// A journal of a CSV of `n` rows: lines as an engine writes them, with the
/// damage a crash or an editor does (repeats, blank lines, garbage, a torn end).
fn structured() -> impl Strategy<Value = (usize, Bytes)> {
    (1usize..12).prop_flat_map(|n| {
        let line = prop_oneof![
            10 => result_line(n),
            1 => Just("\n".to_owned()),
            1 => Just("  \r\n".to_owned()),
            1 => "\\PC{0,40}\n",
            1 => Just("{\"row\":0}\n".to_owned()),
        ];
        (vec(line, 0..(2 * n + 2)), any::<usize>(), 0usize..4).prop_map(move |(lines, cut, how)| {
            let mut bytes = lines.concat().into_bytes();
            match how {
                // A torn last write.
                0 if !bytes.is_empty() => bytes.truncate(cut % bytes.len()),
                1 => bytes.extend_from_slice(b"{\"row\":1,\"li"),
                _ => {}
            }
            (n, Bytes(bytes))
        })
    })
}

fn input() -> impl Strategy<Value = (usize, Bytes)> {
    prop_oneof![
        2 => corpus::noise().prop_map(|b| (8, b)),
        4 => structured(),
        4 => corpus::mutated(TARGET).prop_map(|b| (8, b)),
    ]
}

#[test]
fn seeds_as_they_are() {
    for (name, seed) in corpus::seeds(TARGET) {
        for retry_failed in [false, true] {
            if let Err(e) = check(&seed.0, seed_csv(8), 64, retry_failed, None) {
                panic!("seed {name}: {e}");
            }
        }
    }
}

proptest! {
    #![proptest_config(crate::config(1500))]

    #[test]
    fn any_journal_folds_and_resumes(
        (rows, input) in input(),
        capacity in 1usize..200,
        retry_failed in any::<bool>(),
        usage in usage(),
    ) {
        check(&input.0, seed_csv(rows), capacity, retry_failed, usage)?;
    }
}
