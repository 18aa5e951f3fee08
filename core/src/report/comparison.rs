//! The console text of a comparison: both sides' figures side by side, the
//! paired table, the labels that moved most, and the verdict.

use std::fmt::Write as _;

use crate::compare::{Comparison, MatchedBy, ScoreDelta, Side};

use super::console::RULE;
use super::escape_for_terminal;

/// Labels listed on the console (the JSON has them all).
const LABELS_SHOWN: usize = 10;

/// `shadow-batch compare`'s output: the comparison in a box, then the verdict
/// on a line of its own (`verdict: ...`), for a log to show and grep.
pub fn comparison_to_console(c: &Comparison) -> String {
    let mut s = String::with_capacity(2048);
    let _ = writeln!(s, "{RULE}");
    let _ = writeln!(s, "⚖  COMPARISON: is B better than A?");
    let _ = writeln!(s, "{RULE}");
    write_comparison(&mut s, c);
    let _ = writeln!(s, "{RULE}");
    let _ = writeln!(s, "verdict: {}", escape_for_terminal(&c.verdict));
    s
}

fn side_name(side: &Side) -> String {
    let mut name = escape_for_terminal(&side.name).into_owned();
    if let Some(model) = &side.model {
        let _ = write!(name, " ({})", escape_for_terminal(model));
    }
    name
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or("—".into(), |r| format!("{:.2}%", r * 100.0))
}

fn fixed4(x: Option<f64>) -> String {
    x.map_or("—".into(), |x| format!("{x:.4}"))
}

fn signed4(x: Option<f64>) -> String {
    x.map_or("—".into(), |x| format!("{:+.4}", x + 0.0))
}

/// The comparison's lines, indented as the summary's: the sides, the table,
/// the labels whose F1 moved most, the partial and notes, and the verdict.
pub(super) fn write_comparison(s: &mut String, c: &Comparison) {
    let (a, b) = (&c.a, &c.b);
    let _ = writeln!(s, "   A:  {}", side_name(a));
    let _ = writeln!(s, "   B:  {}", side_name(b));
    let m = &c.matching;
    let by = match m.by {
        MatchedBy::Id => "by id",
        MatchedBy::LineAndImage => "by CSV line and image",
        MatchedBy::Row => "row by row",
    };
    let _ = writeln!(
        s,
        "   Rows:             {} paired {by} ({} differ, {} only in A, {} only in B)",
        m.matched, m.differing, m.only_in_a, m.only_in_b
    );
    let row = |s: &mut String, name: &str, a: String, b: String| {
        let _ = writeln!(s, "   {name:<18}{a:<28}{b}");
    };
    row(s, "", "A".into(), "B".into());
    let agreement = |side: &Side| {
        let sc = &side.scores;
        match sc.agreement_interval {
            Some(i) => format!(
                "{} ({:.1}–{:.1}%)",
                percent(sc.agreement_rate),
                i.low * 100.0,
                i.high * 100.0
            ),
            None => percent(sc.agreement_rate),
        }
    };
    row(s, "Agreement:", agreement(a), agreement(b));
    row(
        s,
        "Kappa:",
        fixed4(a.scores.kappa.map(|k| k.value)),
        fixed4(b.scores.kappa.map(|k| k.value)),
    );
    row(
        s,
        "Macro F1:",
        fixed4(a.scores.macro_f1),
        fixed4(b.scores.macro_f1),
    );
    row(
        s,
        "Failed:",
        a.scores.failed.to_string(),
        b.scores.failed.to_string(),
    );
    let cost = |side: &Side| {
        side.cost_per_image_usd
            .map_or("—".into(), |c| format!("${c:.6}"))
    };
    row(s, "Cost per image:", cost(a), cost(b));
    let latency = |side: &Side| match (side.latency_p50_ms, side.latency_p95_ms) {
        (Some(p50), Some(p95)) => format!("{p50} / {p95} ms"),
        _ => "—".into(),
    };
    row(s, "Latency p50/p95:", latency(a), latency(b));
    let t = &c.table;
    let _ = writeln!(
        s,
        "   Paired:           both right {} · only A right {} · only B right {} · both wrong {}",
        t.both_right.count, t.only_a_right.count, t.only_b_right.count, t.both_wrong.count
    );
    let failed = t.only_a_failed.count + t.only_b_failed.count + t.both_failed.count;
    if failed > 0 {
        let _ = writeln!(
            s,
            "   Failed, apart:    only A failed {} · only B failed {} · both failed {}",
            t.only_a_failed.count, t.only_b_failed.count, t.both_failed.count
        );
    }
    if let Some(k) = c.kappa_between {
        let _ = writeln!(
            s,
            "   A vs B kappa:     {:.4} (how often their answers agree, beyond chance)",
            k.value
        );
    }
    let mut moved: Vec<_> = c
        .per_label
        .iter()
        .filter(|l| l.scores.f1.delta.is_some_and(|d| d != 0.0))
        .collect();
    moved.sort_by(|x, y| {
        let size = |d: &ScoreDelta| d.delta.unwrap_or(0.0).abs();
        size(&y.scores.f1)
            .total_cmp(&size(&x.scores.f1))
            .then_with(|| x.label.cmp(&y.label))
    });
    if !moved.is_empty() {
        let _ = writeln!(
            s,
            "   F1 by label, B − A (95% paired bootstrap interval), largest first{}:",
            if moved.len() > LABELS_SHOWN {
                format!(" ({LABELS_SHOWN} of {}; all in the JSON)", moved.len())
            } else {
                String::new()
            }
        );
        for l in moved.iter().take(LABELS_SHOWN) {
            let f1 = &l.scores.f1;
            let interval = f1.interval.map_or(String::new(), |i| {
                format!(" ({} to {})", signed4(Some(i.low)), signed4(Some(i.high)))
            });
            let _ = writeln!(
                s,
                "     {:<20} {}{interval}  ({} → {}, {} rows)",
                escape_for_terminal(&l.label),
                signed4(f1.delta),
                fixed4(f1.a),
                fixed4(f1.b),
                l.support
            );
        }
    }
    if let Some(partial) = &c.partial {
        let _ = writeln!(s, "   Partial:          {}", escape_for_terminal(partial));
    }
    for note in &c.notes {
        let _ = writeln!(s, "   Note:             {}", escape_for_terminal(note));
    }
    let _ = writeln!(
        s,
        "   Verdict:          {}",
        escape_for_terminal(&c.verdict)
    );
}
