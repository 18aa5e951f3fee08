//! The console text of the confidence views: on how many rows they stand,
//! calibration, and what the model could take over at the target agreement.

use std::fmt::Write as _;

use crate::eval::calibration::ConfidenceReport;

use super::escape_for_terminal;

/// The confidence lines of the final summary (after a thin rule).
pub(super) fn write_confidence(s: &mut String, c: &ConfidenceReport) {
    let _ = writeln!(
        s,
        "   Confidence:       on {} of {} answered rows{}",
        c.scored_rows,
        c.answered_rows,
        gaps_words(c)
    );
    if let (Some(ece), Some(brier)) = (c.ece, c.brier) {
        let _ = writeln!(
            s,
            "   Calibration:      ECE {ece:.3} (15 bins; 0 = confidence matches agreement), Brier {brier:.3} (top label)"
        );
    }
    if let Some(t) = &c.at_target {
        match (t.threshold, t.agreement, t.interval) {
            (Some(threshold), Some(agreement), Some(i)) => {
                let _ = writeln!(
                    s,
                    "   At {:.1}% target: at confidence >= {threshold:.2} the model agrees with the labels on {:.1}% of rows ({:.1}-{:.1}%) and takes {:.0}% of them ({} rows)",
                    t.target * 100.0,
                    agreement * 100.0,
                    i.low * 100.0,
                    i.high * 100.0,
                    t.coverage * 100.0,
                    t.rows
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "   At {:.1}% target: no confidence threshold reaches it",
                    t.target * 100.0
                );
            }
        }
    }
    write_label_errors(s, c);
}

/// Rows listed under "labels to re-check" (the summary JSON lists more).
const ISSUES_SHOWN: usize = 5;

fn write_label_errors(s: &mut String, c: &ConfidenceReport) {
    let Some(found) = &c.label_errors else {
        return;
    };
    let _ = writeln!(
        s,
        "   Labels to re-check: {} of {} (confident learning; the model is confidently of another label){}",
        found.flagged,
        if found.rows < c.scored_rows {
            format!("the first {} of {} scored rows", found.rows, c.scored_rows)
        } else {
            format!("{} scored rows", found.rows)
        },
        if found.flagged > 0 { ":" } else { "" }
    );
    let name = |i: usize| {
        c.labels
            .get(i)
            .map_or_else(|| i.to_string(), |l| escape_for_terminal(l).into_owned())
    };
    for issue in found.issues.iter().take(ISSUES_SHOWN) {
        // The CSV line names the row to a person (in a sampled run the row
        // number is its position in the sample); an older summary has none.
        let at = match issue.line {
            Some(line) => format!("line {line:>6}"),
            None => format!("row {:>7}", issue.row),
        };
        let _ = writeln!(
            s,
            "     {at}: labelled {} (p {:.3}), model says {} at {:.3}",
            name(issue.given),
            issue.given_probability,
            name(issue.predicted),
            issue.confidence
        );
    }
    if found.flagged as usize > ISSUES_SHOWN {
        let _ = writeln!(
            s,
            "     ... and {} more (all in the summary JSON, up to 1,000)",
            found.flagged as usize - ISSUES_SHOWN
        );
    }
}

fn gaps_words(c: &ConfidenceReport) -> String {
    let g = c.gaps;
    let mut parts = Vec::new();
    for (n, what) in [
        (g.missing, "without log-probabilities"),
        (g.malformed, "with unreadable log-probabilities"),
        (g.label_not_found, "whose tokens did not spell the label"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; no confidence: {}", parts.join(", "))
    }
}
