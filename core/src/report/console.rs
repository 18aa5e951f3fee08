//! The reports as console text: the box after each batch and the final summary.
//! Text from the CSV or an endpoint is escaped for the terminal
//! ([`escape_for_terminal`]); the JSON files keep it as it was.

use std::fmt::Write as _;

use crate::cost::PriceSource;
use crate::journal::FailureKind;
use crate::time::{format_duration, format_seconds};

use super::{percent, BatchReport, RunStatus, Summary};

pub(super) const RULE: &str =
    "================================================================================";
const THIN_RULE: &str =
    "--------------------------------------------------------------------------------";

/// `$12.34`, or `$0.000153` under a dollar: enough digits for a per-image price.
fn format_usd(x: f64) -> String {
    if x >= 1.0 {
        format!("${x:.2}")
    } else {
        format!("${x:.6}")
    }
}

impl BatchReport {
    /// The console box printed after each batch.
    pub fn to_console(&self) -> String {
        let first = self.batch_start_index + 1;
        let last = self.batch_end_index + 1;
        let overall_pct = if self.total_items == 0 {
            100.0
        } else {
            self.processed as f64 * 100.0 / self.total_items as f64
        };
        let mut s = String::with_capacity(1024);
        let _ = writeln!(s, "{RULE}");
        let _ = writeln!(
            s,
            "📊 BATCH {}/{} COMPLETE",
            self.batch_number, self.total_batches
        );
        let _ = writeln!(s, "{RULE}");
        let _ = writeln!(
            s,
            "   Batch Range:      {first} - {last} ({} images)",
            self.batch_size
        );
        let _ = writeln!(
            s,
            "   Overall Progress: {}/{} ({overall_pct:.1}%)",
            self.processed, self.total_items
        );
        let _ = writeln!(s, "   Successful:       {}", self.successful);
        let _ = writeln!(s, "   Failed:           {}", self.failed);
        let _ = writeln!(s, "   Success Rate:     {}", self.success_rate);
        let _ = writeln!(
            s,
            "   Elapsed Time:     {}",
            format_duration(self.elapsed_ms)
        );
        let _ = writeln!(
            s,
            "   Avg Time/Image:   {}",
            format_seconds(self.average_time_per_image)
        );
        let _ = writeln!(
            s,
            "   Est. Remaining:   {}",
            format_duration(self.estimated_time_remaining)
        );
        let _ = writeln!(
            s,
            "   This Batch:       {} ok, {} failed, {} retries, {} rate-limited",
            self.batch_successful, self.batch_failed, self.retries, self.rate_limit_hits
        );
        let _ = writeln!(
            s,
            "   Agreement:        {} ({}/{} predictions match the label)",
            percent(self.agreements, self.successful),
            self.agreements,
            self.successful
        );
        if let (true, Some(rate), Some(check)) =
            (self.drift, self.batch_agreement_rate, self.drift_check)
        {
            let why = match check.signal {
                Some(crate::drift::DriftSignal::SustainedFall) => {
                    "agreement has been falling over recent batches (CUSUM)".to_string()
                }
                _ => format!(
                    "outside the control limits {:.2}% to {:.2}%",
                    check.low * 100.0,
                    check.high * 100.0
                ),
            };
            let _ = writeln!(
                s,
                "   DRIFT:            this batch agrees {:.2}% against the run's {:.2}% so far: {why}",
                rate * 100.0,
                check.centre * 100.0,
            );
        }
        let _ = writeln!(s, "{RULE}");
        s
    }
}

/// `text` made safe to print to a terminal: control characters (a CSV label or an
/// endpoint's message may hold `ESC [ 2 J`, a `\r` that rewrites the line, a bell)
/// and the invisible characters that reorder text (bidirectional overrides,
/// isolates and marks; line and paragraph separators) are written as escapes,
/// `\n`, `\r`, `\t` or `\u{1b}`, the way Rust's `escape_debug` writes them. Any
/// other character is kept, backslashes included. Borrowed when there is nothing
/// to escape. For console text only: the JSON files keep the text as it was (JSON
/// escapes control characters itself).
pub fn escape_for_terminal(text: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(
                c,
                '\u{061c}'
                    | '\u{200e}'
                    | '\u{200f}'
                    | '\u{2028}'..='\u{202e}'
                    | '\u{2066}'..='\u{2069}'
            )
    }
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                _ => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
            }
        } else {
            out.push(c);
        }
    }
    out.into()
}

impl Summary {
    /// The worst slices of each column the CSV has beside image, label and id:
    /// the three most below the run, when below it.
    fn write_slices(&self, s: &mut String) {
        const SHOWN: usize = 3;
        for column in &self.slices {
            if column.too_many_values {
                let _ = writeln!(
                    s,
                    "   By {}: not sliced (more than {} distinct values)",
                    escape_for_terminal(&column.column),
                    crate::eval::slices::MAX_VALUES
                );
                continue;
            }
            let below: Vec<_> = column
                .values
                .iter()
                .filter(|v| v.gap.is_some_and(|g| g < 0.0))
                .take(SHOWN)
                .collect();
            if below.is_empty() {
                continue;
            }
            let _ = writeln!(
                s,
                "   By {} (worst of {} values; all in the summary JSON):",
                escape_for_terminal(&column.column),
                column.values.len()
            );
            for v in below {
                let _ = writeln!(
                    s,
                    "     {:<20} {:>6.2}% agreement ({:.1} points below the run; 95% interval {}), {} rows, {} failed",
                    escape_for_terminal(&v.value),
                    v.agreement_rate.unwrap_or(0.0) * 100.0,
                    -v.gap.unwrap_or(0.0) * 100.0,
                    v.agreement_interval.map_or_else(
                        || "-".to_string(),
                        |i| format!("{:.1}-{:.1}%", i.low * 100.0, i.high * 100.0)
                    ),
                    v.rows,
                    v.failed
                );
            }
        }
    }

    /// The final console summary, listing at most `max_errors` errors (the JSON
    /// has them all; [`ERRORS_SHOWN`] unless the user asks otherwise).
    pub fn to_console(&self, max_errors: usize) -> String {
        let st = &self.statistics;
        let ev = &self.evaluation;
        let mut s = String::with_capacity(4096);
        let title = match self.status {
            RunStatus::Completed => "🏁 SHADOW RUN COMPLETE".to_string(),
            RunStatus::Interrupted => {
                "⏸  SHADOW RUN INTERRUPTED (the rest can be resumed)".to_string()
            }
            RunStatus::Aborted => "⛔ SHADOW RUN ABORTED".to_string(),
            RunStatus::Running => "SHADOW RUN".to_string(),
        };
        let _ = writeln!(s, "{RULE}");
        let _ = writeln!(s, "{title}");
        if let Some(reason) = &self.abort_reason {
            let _ = writeln!(s, "   Reason: {}", escape_for_terminal(reason));
        }
        let _ = writeln!(s, "{RULE}");
        if let Some(sample) = &self.sample {
            let _ = writeln!(
                s,
                "   Sample:           {} (seed {}): every figure is {}",
                sample.rows,
                sample.seed,
                sample.words()
            );
        }
        let _ = writeln!(s, "   Total Images:     {}", st.total);
        let _ = writeln!(s, "   Processed:        {}", st.processed);
        let _ = writeln!(s, "   Successful:       {}", st.successful);
        let _ = writeln!(s, "   Failed:           {}", st.failed);
        if st.remaining > 0 {
            let _ = writeln!(s, "   Not Yet Run:      {}", st.remaining);
        }
        let _ = writeln!(s, "   Success Rate:     {}", st.success_rate);
        let _ = writeln!(
            s,
            "   Agreement:        {} ({}/{} predictions match the label)",
            percent(ev.agreements as usize, ev.compared as usize),
            ev.agreements,
            ev.compared
        );
        if let Some(i) = ev.agreement_interval {
            let _ = writeln!(
                s,
                "   95% Interval:     {:.2}% to {:.2}% (Wilson)",
                i.low * 100.0,
                i.high * 100.0
            );
        }
        if let Some(sample) = &self.sample {
            if let Some(line) = whole_csv_line(sample) {
                let _ = writeln!(s, "   Whole CSV:        {line}");
            }
        }
        if let Some(p) = &self.precision {
            let _ = writeln!(
                s,
                "   Anytime-valid:    {:.2}% to {:.2}% (±{:.2} points over {} rows; asked ±{:.2}){}",
                p.anytime_interval.low * 100.0,
                p.anytime_interval.high * 100.0,
                p.half_width * 100.0,
                p.rows,
                p.target_half_width * 100.0,
                if p.stop_reason.is_some() {
                    ": precision reached, the run stopped (--resume with a smaller --until-interval goes further)"
                } else {
                    ""
                }
            );
        }
        if let Some(k) = ev.kappa {
            let _ = writeln!(
                s,
                "   Cohen's Kappa:    {:.3} ± {:.3} (agreement beyond chance; 1 = perfect)",
                k.value,
                1.96 * k.standard_error
            );
        }
        let _ = writeln!(s, "   Total Time:       {}", format_duration(st.elapsed_ms));
        let _ = writeln!(
            s,
            "   Avg Time/Image:   {}",
            format_seconds(st.average_time_per_image)
        );
        let _ = writeln!(
            s,
            "   Requests:         {} ({} retries, {} rate-limited)",
            st.requests, st.retries, st.rate_limit_hits
        );
        if st.latency_ms.count > 0 {
            let l = st.latency_ms;
            let _ = writeln!(
                s,
                "   Latency:          p50 {}, p95 {}, max {}",
                format_seconds(l.p50),
                format_seconds(l.p95),
                format_seconds(l.max)
            );
        }
        if st.usage.total_tokens > 0 {
            let _ = writeln!(
                s,
                "   Tokens:           {} (prompt {}, completion {})",
                st.usage.total_tokens, st.usage.prompt_tokens, st.usage.completion_tokens
            );
        }
        if let Some(tokens) = self.cost.tokens_per_image {
            let money = match (&self.cost.price, self.cost.amount_usd) {
                (Some(p), Some(amount)) => {
                    let source = match &p.source {
                        PriceSource::Given => "at the price given".to_string(),
                        PriceSource::ListPrice { model, checked } => {
                            format!("at {model}'s list price as of {checked}")
                        }
                    };
                    let source = if p.batch_api {
                        format!("{source}, halved for the batch API")
                    } else {
                        source
                    };
                    format!(
                        "{} ({} per image, {source}: ${:.2} in, ${:.2} out per 1M tokens)",
                        format_usd(amount),
                        format_usd(self.cost.usd_per_image.unwrap_or(0.0)),
                        p.price.input_per_million,
                        p.price.output_per_million
                    )
                }
                _ => "no price known for this model".to_string(),
            };
            let _ = writeln!(s, "   Cost:             {money}; {tokens} tokens per image");
        }
        if st.resumed_items > 0 {
            let _ = writeln!(
                s,
                "   Resumed:          {} items taken from the journal",
                st.resumed_items
            );
        }
        if ev.compared > 0 {
            let _ = writeln!(s, "{THIN_RULE}");
            let width = ev
                .labels
                .iter()
                .map(|l| escape_for_terminal(l).chars().count())
                .max()
                .unwrap_or(0)
                .clamp("weighted avg".len(), 24);
            let _ = writeln!(
                s,
                "   {:<width$}  precision  recall     f1  support",
                "label"
            );
            let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            for l in ev
                .per_label
                .iter()
                .filter(|l| l.support > 0 || l.predicted > 0)
            {
                let name: String = escape_for_terminal(&l.label).chars().take(width).collect();
                let _ = writeln!(
                    s,
                    "   {name:<width$}  {:>9}  {:>6}  {:>5}  {:>7}",
                    fmt(l.precision),
                    fmt(l.recall),
                    fmt(l.f1),
                    l.support
                );
            }
            for (name, p, r, f1) in [
                (
                    "macro avg",
                    ev.macro_precision,
                    ev.macro_recall,
                    ev.macro_f1,
                ),
                (
                    "weighted avg",
                    ev.weighted_precision,
                    ev.weighted_recall,
                    ev.weighted_f1,
                ),
            ] {
                let _ = writeln!(
                    s,
                    "   {name:<width$}  {:>9}  {:>6}  {:>5}  {:>7}",
                    fmt(p),
                    fmt(r),
                    fmt(f1),
                    ev.compared
                );
            }
        }
        self.write_slices(&mut s);
        if let Some(c) = &self.confidence {
            let _ = writeln!(s, "{THIN_RULE}");
            super::confidence::write_confidence(&mut s, c);
        }
        if let Some(c) = &self.comparison {
            let _ = writeln!(s, "{THIN_RULE}");
            let _ = writeln!(
                s,
                "   COMPARED WITH THE BASELINE (A: the baseline, B: this run)"
            );
            super::comparison::write_comparison(&mut s, c);
        }
        let errors = &self.overall_progress.errors;
        if !errors.is_empty() {
            let _ = writeln!(s, "{THIN_RULE}");
            let reasons: Vec<String> = FailureKind::ALL
                .iter()
                .filter_map(|&k| {
                    let n = self.failure_reasons.count(k);
                    (n > 0).then(|| format!("{n} {}", k.describe()))
                })
                .collect();
            let _ = writeln!(s, "   Failures:         {}", reasons.join(", "));
            let groups = &self.error_groups;
            let shown = groups.len().min(max_errors);
            let _ = writeln!(
                s,
                "   Errors: {} in {} group{} (first {shown} shown; every error is in the summary JSON)",
                errors.len(),
                groups.len(),
                if groups.len() == 1 { "" } else { "s" }
            );
            for g in &groups[..shown] {
                let mut lines: Vec<String> = g.lines.iter().take(5).map(u64::to_string).collect();
                if g.count > lines.len() {
                    lines.push("...".into());
                }
                let example = match g.details.first() {
                    Some(d) => format!("; e.g. {}", escape_for_terminal(d)),
                    None => String::new(),
                };
                let _ = writeln!(
                    s,
                    "     {:>5} x {} (line{} {}{example})",
                    g.count,
                    escape_for_terminal(&g.message),
                    if g.count == 1 { "" } else { "s" },
                    lines.join(", ")
                );
            }
            if groups.len() > shown {
                let rest: usize = groups[shown..].iter().map(|g| g.count).sum();
                let _ = writeln!(
                    s,
                    "     ... and {rest} more in {} more groups",
                    groups.len() - shown
                );
            }
        }
        let _ = writeln!(s, "{RULE}");
        // After the box, unindented: one plain line per requirement, then the
        // verdict, for a CI log to show (and grep) as they are.
        if let Some(gate) = self.gate() {
            for judged in &gate.requirements {
                let _ = writeln!(s, "gate: {}", escape_for_terminal(&judged.text));
            }
            let _ = writeln!(s, "gate: {}", escape_for_terminal(&gate.headline()));
        }
        s
    }
}

/// The "Whole CSV" line of a sampled run: the interval for the whole CSV, and
/// for a stratified sample the reweighted agreement first.
fn whole_csv_line(sample: &crate::sample::SampleReport) -> Option<String> {
    let i = sample.agreement_interval_for_csv?;
    let (low, high) = (i.low * 100.0, i.high * 100.0);
    Some(match (sample.stratified, sample.stratified_agreement) {
        (false, _) => format!("{low:.2}% to {high:.2}% (95%, finite-population corrected)"),
        (true, Some(p)) => format!(
            "{:.2}% reweighted to the CSV's labels, 95% {low:.2}% to {high:.2}% \
             (stratified, finite-population corrected)",
            p * 100.0
        ),
        (true, None) => format!(
            "{low:.2}% to {high:.2}% (95%, reweighted to the CSV's labels; a label has no \
             compared row yet, so the interval holds any agreement of it)"
        ),
    })
}
