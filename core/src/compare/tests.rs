use std::borrow::Cow;

use super::*;
use crate::journal::{FailureKind, ItemResult, ItemStatus, JournalHeader};
use crate::time::Millis;
use crate::RunConfig;

const LABELS: [&str; 3] = ["cat", "dog", "fox"];

/// A journal row: (row, id, image, label, answer), at CSV line `row + 2`.
struct Line {
    row: usize,
    id: Option<String>,
    image: String,
    label: String,
    answer: Option<String>,
    latency_ms: u64,
}

fn line(row: usize, label: &str, answer: Option<&str>) -> Line {
    Line {
        row,
        id: Some(format!("id{row}")),
        image: format!("img/{row}.png"),
        label: label.into(),
        answer: answer.map(Into::into),
        latency_ms: 10 + row as u64 % 7,
    }
}

fn journal_text(run_id: &str, lines: &[Line]) -> String {
    let header = JournalHeader {
        run: RunConfig {
            run_id: run_id.into(),
            csv_path: "labels.csv".into(),
            ..RunConfig::default()
        },
    };
    let mut text = header.to_json_line();
    for l in lines {
        let r = ItemResult {
            row: l.row,
            line: l.row as u64 + 2,
            id: l.id.as_deref().map(Cow::Borrowed),
            image: Cow::Borrowed(&l.image),
            label: Cow::Borrowed(&l.label),
            prediction: l.answer.as_deref().map(Cow::Borrowed),
            agreement: l.answer.as_deref().map(|a| a == l.label),
            status: if l.answer.is_some() {
                ItemStatus::Success
            } else {
                ItemStatus::Failed
            },
            attempts: 1,
            latency_ms: Some(l.latency_ms),
            error: l.answer.is_none().then_some(Cow::Borrowed("HTTP 500")),
            error_kind: l.answer.is_none().then_some(FailureKind::Http),
            http_status: Some(if l.answer.is_some() { 200 } else { 500 }),
            usage: None,
            cost_usd: None,
            answer: None,
            confidence: None,
            alternatives: Vec::new(),
            confidence_gap: None,
            finished_at: Millis(1_737_714_600_000),
        };
        text.push_str(&r.to_json_line());
    }
    text
}

/// The journal fed in chunks of `chunk` bytes.
fn rows_of(text: &str, chunk: usize) -> RunRows {
    let mut j = JournalRows::new();
    for part in text.as_bytes().chunks(chunk) {
        j.push(part);
    }
    j.finish()
}

fn completed(run_id: &str, total: u64) -> RunInfo {
    RunInfo {
        run_id: Some(run_id.into()),
        status: Some("completed".into()),
        total_rows: Some(total),
        from_summary: true,
        ..RunInfo::default()
    }
}

/// The reference rows: 300 rows over 3 labels; A wrong on every 4th row and
/// failing every 37th, B wrong on every 6th and failing every 41st.
fn reference_sides() -> (Vec<Line>, Vec<Line>) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..300 {
        let l = i % 3;
        let answer_a = (i % 37 != 0).then(|| LABELS[if i % 4 == 0 { (l + 1) % 3 } else { l }]);
        let answer_b = (i % 41 != 0).then(|| LABELS[if i % 6 == 0 { (l + 2) % 3 } else { l }]);
        a.push(line(i, LABELS[l], answer_a));
        b.push(line(i, LABELS[l], answer_b));
    }
    (a, b)
}

fn compare(a: &str, b: &str, caps: RowCaps) -> Comparison {
    let (ra, rb) = (rows_of(a, 1 << 16), rows_of(b, 1 << 16));
    let (ta, tb) = (ra.len() as u64, rb.len() as u64);
    let paired = PairedRuns::pair(&ra, completed("A1", ta), &rb, completed("B1", tb), caps);
    let mut details = paired.details();
    details.push(a.as_bytes());
    paired.finish(details, false)
}

/// Every figure of the reference rows, checked against scikit-learn 1.9.1 and
/// statsmodels 0.15.0 on the same rows:
///
/// ```python
/// from sklearn.metrics import cohen_kappa_score, f1_score
/// from statsmodels.stats.contingency_tables import mcnemar
/// from statsmodels.stats.proportion import proportion_confint
/// L = ["cat", "dog", "fox"]; rows = []
/// for i in range(300):
///     l = i % 3
///     a = None if i % 37 == 0 else ((l + 1) % 3 if i % 4 == 0 else l)
///     b = None if i % 41 == 0 else ((l + 2) % 3 if i % 6 == 0 else l)
///     rows.append((l, a, b))
/// for side in (1, 2):    # each side over the rows it answered
///     ans = [(r[0], r[side]) for r in rows if r[side] is not None]
///     y = [L[x[0]] for x in ans]; p = [L[x[1]] for x in ans]
///     k = sum(1 for x in ans if x[0] == x[1])
///     print(len(ans), k, proportion_confint(k, len(ans), method="wilson"),
///           cohen_kappa_score(y, p), f1_score(y, p, average="macro"))
/// # A: 291 answered, 219 agree, Wilson 0.6999-0.7987, kappa 0.6289, macro F1 0.7526
/// # B: 292 answered, 244 agree, Wilson 0.7888-0.8737, kappa 0.7534, macro F1 0.8243
/// both = [r for r in rows if r[1] is not None and r[2] is not None]
/// # table: both right 190, only A 23, only B 47, both wrong 24;
/// # A failed only 8, B failed only 7, both 1
/// print(mcnemar([[190, 23], [47, 24]], exact=True).pvalue)          # 0.0055827
/// print(cohen_kappa_score([L[r[1]] for r in both], [L[r[2]] for r in both]))  # 0.5031
/// # B - A = (47 - 23) / 284 = 0.0845; Newcombe method 10 (stats.rs's script):
/// # 0.026954512663592 to 0.14188895784481512
/// ```
#[test]
fn two_runs_figures_match_scikit_learn_and_statsmodels() {
    let (a, b) = reference_sides();
    let c = compare(
        &journal_text("A1", &a),
        &journal_text("B1", &b),
        RowCaps::default(),
    );
    assert_eq!(c.matching.by, MatchedBy::Id);
    assert_eq!(
        (
            c.matching.matched,
            c.matching.differing,
            c.matching.only_in_a,
            c.matching.only_in_b
        ),
        (300, 0, 0, 0)
    );
    let near = |got: f64, want: f64| assert!((got - want).abs() <= 5e-5, "{got} != {want}");
    let sa = &c.a.scores;
    assert_eq!(
        (sa.rows, sa.answered, sa.failed, sa.agreements),
        (300, 291, 9, 219)
    );
    near(sa.agreement_interval.unwrap().low, 0.6999);
    near(sa.agreement_interval.unwrap().high, 0.7987);
    near(sa.kappa.unwrap().value, 0.6289);
    near(sa.macro_f1.unwrap(), 0.7526);
    let sb = &c.b.scores;
    assert_eq!((sb.answered, sb.failed, sb.agreements), (292, 8, 244));
    near(sb.agreement_interval.unwrap().low, 0.7888);
    near(sb.agreement_interval.unwrap().high, 0.8737);
    near(sb.kappa.unwrap().value, 0.7534);
    near(sb.macro_f1.unwrap(), 0.8243);
    let t = &c.table;
    assert_eq!(
        [
            t.both_right.count,
            t.only_a_right.count,
            t.only_b_right.count,
            t.both_wrong.count,
            t.only_a_failed.count,
            t.only_b_failed.count,
            t.both_failed.count
        ],
        [190, 23, 47, 24, 8, 7, 1]
    );
    assert_eq!(c.mcnemar.discordant, 70);
    assert!((c.mcnemar.p_value - 0.005_582_667_351_023_373).abs() < 1e-12);
    near(c.kappa_between.unwrap().value, 0.5031);
    near(c.difference.unwrap(), 0.0845);
    let i = c.difference_interval.unwrap();
    near(i.low, 0.027);
    near(i.high, 0.1419);
    assert_eq!(
        c.verdict,
        "B agrees with the labels more often than A: +8.5 points (95% interval +2.7 to +14.2), McNemar exact p = 0.006 on 70 rows where they differ"
    );
    assert_eq!(c.partial, None);
    // Latency and cost come from the rows when the summary has none.
    assert_eq!(c.a.timing_from, Some(TimingFrom::Rows));
    assert_eq!(c.a.latency_p50_ms, Some(13));
    assert_eq!(c.a.run_id.as_deref(), Some("A1"));
    let labels: Vec<&str> = c.per_label.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(labels, LABELS);
}

#[test]
fn each_cell_lists_its_first_rows_and_the_table_shows_them_with_their_text() {
    let (a, b) = reference_sides();
    let caps = RowCaps {
        per_cell: 5,
        table: 10,
    };
    let c = compare(&journal_text("A1", &a), &journal_text("B1", &b), caps);
    // Only A right: rows where B is wrong (every 6th) and A right.
    assert_eq!(c.table.only_a_right.rows, [6, 18, 30, 42, 54]);
    assert_eq!(c.table.only_a_right.count, 23);
    assert_eq!(c.table.both_failed.rows, [0]);
    for (kind, cell) in [
        (CellKind::OnlyARight, &c.table.only_a_right),
        (CellKind::OnlyBRight, &c.table.only_b_right),
        (CellKind::BothRight, &c.table.both_right),
    ] {
        for row in &cell.rows {
            let shown = c
                .rows
                .iter()
                .find(|r| r.row == *row)
                .expect("listed rows are shown");
            assert_eq!(shown.cell, kind);
            assert_eq!(shown.image, format!("img/{row}.png"));
            assert_eq!(shown.id.as_deref(), Some(format!("id{row}").as_str()));
            assert_eq!(shown.line, row + 2);
        }
    }
    let only_b = c
        .rows
        .iter()
        .find(|r| r.cell == CellKind::OnlyBRight)
        .unwrap();
    assert_eq!(only_b.b.as_deref(), Some(only_b.label.as_str()));
    assert_ne!(only_b.a.as_deref(), Some(only_b.label.as_str()));
    let failed = c
        .rows
        .iter()
        .find(|r| r.cell == CellKind::OnlyAFailed)
        .unwrap();
    assert_eq!(failed.a, None);
    // The first 10 rows that are not "both right", the cells' rows, no more.
    let interesting = c
        .rows
        .iter()
        .filter(|r| r.cell != CellKind::BothRight)
        .count();
    assert!(
        interesting >= 10 && c.rows.len() <= 10 + 7 * 5,
        "{}",
        c.rows.len()
    );
    assert!(c.rows.windows(2).all(|w| w[0].row < w[1].row));
    // The summary's copy keeps no row.
    let lean = c.clone().without_rows();
    assert!(lean.rows.is_empty() && lean.table.only_a_right.rows.is_empty());
    assert_eq!(lean.table.only_a_right.count, 23);
    let json = serde_json::to_string(&lean).unwrap();
    assert!(!json.contains("\"rows\":["), "{json}");
}

/// A journal read one byte at a time gives what it gives whole; a row written
/// twice counts by its last line; a torn last line is left out.
#[test]
fn journals_read_in_any_chunks_with_the_last_line_of_a_row_counting() {
    let (a, _) = reference_sides();
    let mut text = journal_text("A1", &a);
    let whole = rows_of(&text, text.len());
    let bytewise = rows_of(&text, 1);
    assert_eq!(whole.len(), 300);
    assert_eq!(bytewise.len(), 300);
    assert_eq!(whole.header().unwrap().run.run_id, "A1");
    // Row 5 again, now failed (a resumed run that retried it), and a torn tail.
    let again = journal_text("A1", &[line(5, "fox", None)]);
    text.push_str(again.lines().nth(1).unwrap());
    text.push('\n');
    text.push_str("{\"row\":7,\"li");
    let rows = rows_of(&text, 7);
    assert_eq!(rows.len(), 300);
    assert!(rows.scan().torn_tail);
    let (b, _) = reference_sides();
    let c = compare(&text, &journal_text("B1", &b), RowCaps::default());
    assert_eq!(c.a.scores.failed, 10, "row 5 failed on its last line");
}

#[test]
fn rows_are_matched_by_id_across_orders_else_by_line_and_image() {
    let (a, b) = reference_sides();
    // B's CSV in another order: rows renumbered, ids kept.
    let moved: Vec<Line> = b
        .into_iter()
        .map(|mut l| {
            l.row = 299 - l.row;
            l
        })
        .collect();
    let c = compare(
        &journal_text("A1", &a),
        &journal_text("B1", &moved),
        RowCaps::default(),
    );
    assert_eq!(c.matching.by, MatchedBy::Id);
    assert_eq!(c.matching.matched, 300);
    assert_eq!(c.table.only_b_right.count, 47);
    let shown = &c.rows[0];
    assert_eq!(shown.row_b, Some(299 - shown.row));
    // Without ids: by line and image, and the moved rows no longer match.
    let (a, b) = reference_sides();
    let strip = |lines: Vec<Line>| -> Vec<Line> {
        lines
            .into_iter()
            .map(|mut l| {
                l.id = None;
                l
            })
            .collect()
    };
    let (a, b) = (strip(a), strip(b));
    let c = compare(
        &journal_text("A1", &a),
        &journal_text("B1", &b),
        RowCaps::default(),
    );
    assert_eq!(c.matching.by, MatchedBy::LineAndImage);
    assert_eq!(c.matching.matched, 300);
}

/// Rows that differ (same id, another label or image) and rows on one side
/// only are counted and never paired; such runs are said not to be over the
/// same CSV.
#[test]
fn rows_that_differ_or_are_on_one_side_only_are_counted_not_paired() {
    let (a, mut b) = reference_sides();
    b[3].label = "dog".into(); // row 3: cat in A
    b[4].image = "img/other.png".into();
    b.truncate(290);
    b.push(line(400, "cat", Some("cat")));
    let (ra, rb) = (
        rows_of(&journal_text("A1", &a), 4096),
        rows_of(&journal_text("B1", &b), 4096),
    );
    let paired = PairedRuns::pair(
        &ra,
        completed("A1", 300),
        &rb,
        completed("B1", 291),
        RowCaps::default(),
    );
    let m = paired.matching();
    assert_eq!(
        (m.matched, m.differing, m.only_in_a, m.only_in_b),
        (288, 2, 10, 1)
    );
    assert_eq!(m.differing_rows[0].row_a, 3);
    assert_eq!(
        (
            m.differing_rows[0].label_a.as_str(),
            m.differing_rows[0].label_b.as_str()
        ),
        ("cat", "dog")
    );
    assert!(m.differing_rows[0].same_image);
    assert!(!m.differing_rows[1].same_image);
    let why = paired.mismatch().expect("not the same CSV");
    assert!(
        why.contains("288 rows match (by id)") && why.contains("2 have the same id"),
        "{why}"
    );
    assert!(why.contains("A's CSV has 300 rows, B's 291"), "{why}");
    let details = paired.details();
    let c = paired.finish(details, true);
    assert_eq!(c.a.scores.rows, 288);
    assert!(
        c.notes[0].starts_with("A and B do not look like runs over the same CSV"),
        "{:?}",
        c.notes
    );
}

/// A run still going is compared on what it has, said partial; its missing
/// rows are not a sign of another CSV.
#[test]
fn a_run_in_progress_is_compared_on_what_exists_and_marked_partial() {
    let (a, mut b) = reference_sides();
    b.truncate(120);
    let (ra, rb) = (
        rows_of(&journal_text("A1", &a), 4096),
        rows_of(&journal_text("B1", &b), 4096),
    );
    let running = RunInfo {
        status: Some("running".into()),
        total_rows: Some(300),
        ..RunInfo::default()
    };
    let paired = PairedRuns::pair(&ra, completed("A1", 300), &rb, running, RowCaps::NONE);
    assert_eq!(paired.mismatch(), None);
    assert_eq!(paired.matching().only_in_a, 180);
    let details = paired.details();
    assert!(!details.wants_rows());
    let c = paired.finish(details, false);
    assert_eq!(
        c.partial.as_deref(),
        Some("B has no summary yet (still running, or stopped before it wrote one): 120 of 300 rows have results")
    );
    // Its name comes from its journal's first line.
    assert_eq!(c.b.name, "run B1");
    assert_eq!(c.a.scores.rows, 120);
}

#[test]
fn the_verdict_says_which_side_is_better_or_that_no_difference_is_shown() {
    let m = |discordant, p_value| McNemar {
        discordant,
        p_value,
    };
    assert_eq!(
        verdict(Some(0.031), Some((0.012, 0.05)), &m(412, 0.002)),
        "B agrees with the labels more often than A: +3.1 points (95% interval +1.2 to +5.0), McNemar exact p = 0.002 on 412 rows where they differ"
    );
    assert_eq!(
        verdict(Some(-0.031), Some((-0.05, -0.012)), &m(412, 0.0004)),
        "A agrees with the labels more often than B: +3.1 points (95% interval +1.2 to +5.0), McNemar exact p < 0.001 on 412 rows where they differ"
    );
    assert_eq!(
        verdict(Some(0.006), Some((-0.01, 0.023)), &m(40, 0.41)),
        "no difference shown at this sample size (p = 0.41): 95% interval -1.0 to +2.3 points"
    );
    assert_eq!(
        verdict(Some(0.0), Some((-0.0001, 0.0001)), &m(0, 1.0)),
        "no difference shown at this sample size (p = 1): 95% interval +0.0 to +0.0 points"
    );
    assert_eq!(
        verdict(None, None, &m(0, 1.0)),
        "nothing to compare: no row has an answer from both sides"
    );
}

#[test]
fn a_file_that_is_not_a_summary_is_refused_with_the_reason() {
    let err = RunInfo::from_summary(&b"[1, 2]"[..]).unwrap_err();
    assert!(
        matches!(
            err,
            CompareError::NotARunFile {
                what: "summary",
                ..
            }
        ),
        "{err}"
    );
    let err = RunInfo::from_summary(&br#"{"runId": "x"}"#[..]).unwrap_err();
    assert!(err.to_string().contains("`status`"), "{err}");
    let info = RunInfo::from_summary(
        &br#"{"runId": "r", "status": "completed", "csvPath": "l.csv",
              "overallProgress": {"total": 5, "errors": [{"row": 1}]},
              "statistics": {"latencyMs": {"count": 5, "p50": 20, "p95": 40, "max": 41}},
              "evaluation": {}, "cost": {"usdPerImage": 0.0002},
              "config": {"provider": {"kind": "openai", "baseUrl": "http://x.test/v1", "model": "gpt-x", "detail": "low", "prompt": null}}}"#[..],
    )
    .unwrap();
    assert_eq!(info.total_rows, Some(5));
    assert_eq!(info.latency, Some((20, 40)));
    assert_eq!(info.cost_per_image_usd, Some(0.0002));
    assert_eq!(info.model.as_deref(), Some("gpt-x"));
    assert!(info.from_summary);
    let progress = RunInfo::from_progress(
        &br#"{"overallProgress": {"total": 9}, "allReports": [], "status": "running"}"#[..],
    )
    .unwrap();
    assert_eq!(
        (progress.total_rows, progress.from_summary),
        (Some(9), false)
    );
    assert!(RunInfo::from_progress(&br#"{"overallProgress": {}}"#[..]).is_err());
}
