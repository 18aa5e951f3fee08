//! A gate for CI: requirements a run's verdict must meet, such as
//! `agreement >= 0.90`, `kappa >= 0.6`, `recall[cat] >= 0.7`,
//! `failure_share <= 0.02` or, on the 95% interval's lower end,
//! `agreement.low >= 0.88`. Each is parsed from its text ([`Requirement`]'s
//! `FromStr`), kept in the run's settings ([`crate::RunConfig::gate`]) and judged
//! against what the run measured ([`judge`]) once every row is final; a host ends
//! a run whose verdict misses one with a signal of its own.
//!
//! A measure the run could not compute (no row compared, a label never seen) does
//! not meet its requirement: a gate fails closed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::eval::{wilson_interval, Evaluation};

/// What a requirement is written as, for error messages.
pub const GRAMMAR: &str = "a requirement is MEASURE OP BOUND: MEASURE is agreement, kappa, \
macro_f1, weighted_f1, failure_share, recall[LABEL], precision[LABEL] or f1[LABEL], \
with .low or .high after it for an end of its 95% interval (agreement, kappa, \
failure_share, recall and precision have one); OP is >=, >, <= or <; BOUND is a number \
such as 0.9 or 90% (e.g. \"agreement >= 0.90\", \"recall[cat].low >= 0.7\", \
\"failure_share <= 0.02\")";

/// What a requirement measures.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Measure {
    /// Share of compared rows whose prediction equals the label.
    Agreement,
    /// Cohen's kappa: agreement beyond chance.
    Kappa,
    /// Unweighted mean of the per-label F1 scores.
    MacroF1,
    /// Mean of the per-label F1 scores weighted by support.
    WeightedF1,
    /// Share of processed rows without a usable prediction.
    FailureShare,
    /// Recall of one label: its rows the model labelled right.
    Recall(String),
    /// Precision of one label: the model's uses of it that were right.
    Precision(String),
    /// F1 of one label.
    F1(String),
}

impl Measure {
    /// The label a per-label measure names.
    pub fn label(&self) -> Option<&str> {
        match self {
            Measure::Recall(l) | Measure::Precision(l) | Measure::F1(l) => Some(l),
            _ => None,
        }
    }

    /// Whether the summary gives this measure a 95% interval.
    fn has_interval(&self) -> bool {
        !matches!(
            self,
            Measure::MacroF1 | Measure::WeightedF1 | Measure::F1(_)
        )
    }

    /// The smallest and largest value the measure can take.
    fn range(&self) -> (f64, f64) {
        match self {
            Measure::Kappa => (-1.0, 1.0),
            _ => (0.0, 1.0),
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Measure::Agreement => f.write_str("agreement"),
            Measure::Kappa => f.write_str("kappa"),
            Measure::MacroF1 => f.write_str("macro_f1"),
            Measure::WeightedF1 => f.write_str("weighted_f1"),
            Measure::FailureShare => f.write_str("failure_share"),
            Measure::Recall(l) => write!(f, "recall[{l}]"),
            Measure::Precision(l) => write!(f, "precision[{l}]"),
            Measure::F1(l) => write!(f, "f1[{l}]"),
        }
    }
}

/// Which figure of a measure is compared: the measure itself or an end of its 95%
/// interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// The measure.
    Value,
    /// The interval's lower end (`.low`).
    Low,
    /// The interval's upper end (`.high`).
    High,
}

/// How the figure must compare with the bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Comparison {
    /// `>=`
    AtLeast,
    /// `>`
    Above,
    /// `<=`
    AtMost,
    /// `<`
    Below,
}

impl Comparison {
    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Comparison::AtLeast => value >= bound,
            Comparison::Above => value > bound,
            Comparison::AtMost => value <= bound,
            Comparison::Below => value < bound,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Comparison::AtLeast => ">=",
            Comparison::Above => ">",
            Comparison::AtMost => "<=",
            Comparison::Below => "<",
        }
    }

    /// The symbol that holds when this one does not.
    fn negated(self) -> Comparison {
        match self {
            Comparison::AtLeast => Comparison::Below,
            Comparison::Above => Comparison::AtMost,
            Comparison::AtMost => Comparison::Above,
            Comparison::Below => Comparison::AtLeast,
        }
    }
}

/// One requirement: `MEASURE[.low|.high] OP BOUND`. Kept (and serialized) as its
/// text; the bound keeps the digits it was written with, which is how it is shown.
#[derive(Clone, Debug, PartialEq)]
pub struct Requirement {
    /// What is measured.
    pub measure: Measure,
    /// The measure or an end of its interval.
    pub end: End,
    /// How it must compare with the bound.
    pub comparison: Comparison,
    /// The bound, as a fraction (`90%` is 0.9).
    pub bound: f64,
    /// The bound as written (`0.90`, `90%`).
    bound_text: String,
}

/// Why a requirement's text could not be read. Its message says what is wrong and
/// then how a requirement is written ([`GRAMMAR`]); hosts add the text itself.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RequirementError {
    /// Nothing was written.
    #[error("the requirement is empty; {GRAMMAR}")]
    Empty,
    /// No `>=`, `>`, `<=` or `<`.
    #[error("no comparison (>=, >, <= or <); {GRAMMAR}")]
    NoComparison,
    /// `=>`, `==`, `=<` and the like.
    #[error("`{0}` is not a comparison: write >=, >, <= or <; {GRAMMAR}")]
    BadComparison(String),
    /// The bound is not a number.
    #[error("the bound `{0}` is not a number; {GRAMMAR}")]
    BadBound(String),
    /// The bound lies outside what the measure can take.
    #[error("the bound {bound} is outside {measure}'s range, {low} to {high}")]
    BoundOutOfRange {
        /// The measure.
        measure: String,
        /// The bound as written.
        bound: String,
        /// Smallest value of the measure.
        low: f64,
        /// Largest value of the measure.
        high: f64,
    },
    /// A measure this gate does not know.
    #[error("unknown measure `{0}`; {GRAMMAR}")]
    UnknownMeasure(String),
    /// A per-label measure without its label, or a label on another measure.
    #[error("`{0}`: {1}; {GRAMMAR}")]
    BadLabel(String, &'static str),
    /// `.low` or `.high` on a measure the summary gives no interval.
    #[error("{0} has no interval, so no .low or .high; agreement, kappa, failure_share, recall[LABEL] and precision[LABEL] have one")]
    NoInterval(String),
}

impl FromStr for Requirement {
    type Err = RequirementError;

    fn from_str(text: &str) -> Result<Requirement, RequirementError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(RequirementError::Empty);
        }
        // From the right: a label may hold any character, the bound holds neither
        // `<` nor `>`.
        let at = text
            .rfind(['<', '>'])
            .ok_or(RequirementError::NoComparison)?;
        let (left, right) = (&text[..at], &text[at + 1..]);
        let greater = text.as_bytes()[at] == b'>';
        let (comparison, bound) = match (greater, right.strip_prefix('=')) {
            (true, Some(b)) => (Comparison::AtLeast, b),
            (true, None) => (Comparison::Above, right),
            (false, Some(b)) => (Comparison::AtMost, b),
            (false, None) => (Comparison::Below, right),
        };
        // `=>`, `==>`, `<>`, `><`: the measure would end in a comparison sign.
        let left = left.trim_end();
        if let Some(sign) = left
            .chars()
            .last()
            .filter(|c| matches!(c, '=' | '<' | '>' | '!'))
        {
            let op = &text[left.len() - sign.len_utf8()..=at];
            let op: String = op.chars().filter(|c| !c.is_whitespace()).collect();
            let op = if bound.starts_with('=') {
                format!("{op}=")
            } else {
                op
            };
            return Err(RequirementError::BadComparison(op));
        }
        if bound.trim_start().starts_with(['=', '<', '>']) {
            return Err(RequirementError::BadComparison(
                text[at..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ));
        }
        let bound_text = bound.trim().to_string();
        let (number, percent) = match bound_text.strip_suffix('%') {
            Some(n) => (n.trim_end(), true),
            None => (bound_text.as_str(), false),
        };
        let bound = number
            .parse::<f64>()
            .ok()
            .filter(|b| b.is_finite())
            .ok_or_else(|| RequirementError::BadBound(bound_text.clone()))?;
        let bound = if percent { bound / 100.0 } else { bound };
        let (measure, end) = parse_measure(left)?;
        if end != End::Value && !measure.has_interval() {
            return Err(RequirementError::NoInterval(measure.to_string()));
        }
        let (low, high) = measure.range();
        if !(low..=high).contains(&bound) {
            return Err(RequirementError::BoundOutOfRange {
                measure: measure.to_string(),
                bound: bound_text,
                low,
                high,
            });
        }
        Ok(Requirement {
            measure,
            end,
            comparison,
            bound,
            bound_text,
        })
    }
}

/// `agreement`, `recall[cat].low`, ...
fn parse_measure(left: &str) -> Result<(Measure, End), RequirementError> {
    let left = left.trim();
    // The end is after the label's `]`, if any: `recall[a.low].high`.
    let after_label = left.rfind(']').map_or(0, |i| i + 1);
    let (name, end) = match left[after_label..].rfind('.') {
        Some(dot) => {
            let dot = after_label + dot;
            let end = match left[dot + 1..].trim() {
                "low" => End::Low,
                "high" => End::High,
                _ => return Err(RequirementError::UnknownMeasure(left.to_string())),
            };
            (left[..dot].trim_end(), end)
        }
        None => (left, End::Value),
    };
    let (base, label) = match name.find('[') {
        Some(open) => {
            let Some(inner) = name[open + 1..].strip_suffix(']') else {
                return Err(RequirementError::BadLabel(
                    name.to_string(),
                    "a label is written in brackets, recall[LABEL], with nothing after the `]` but .low or .high",
                ));
            };
            (name[..open].trim_end(), Some(inner.trim()))
        }
        None => (name, None),
    };
    let per_label = |make: fn(String) -> Measure| match label {
        Some("") | None => Err(RequirementError::BadLabel(
            name.to_string(),
            "name the label in brackets, e.g. recall[cat]",
        )),
        Some(l) => Ok(make(l.to_string())),
    };
    let measure = match base.to_ascii_lowercase().as_str() {
        "recall" => per_label(Measure::Recall)?,
        "precision" => per_label(Measure::Precision)?,
        "f1" => per_label(Measure::F1)?,
        other => {
            let measure = match other {
                "agreement" => Measure::Agreement,
                "kappa" => Measure::Kappa,
                "macro_f1" => Measure::MacroF1,
                "weighted_f1" => Measure::WeightedF1,
                "failure_share" => Measure::FailureShare,
                _ => return Err(RequirementError::UnknownMeasure(base.to_string())),
            };
            if label.is_some() {
                return Err(RequirementError::BadLabel(
                    name.to_string(),
                    "only recall, precision and f1 take a label",
                ));
            }
            measure
        }
    };
    Ok((measure, end))
}

impl fmt::Display for Requirement {
    /// The requirement as it is read back: `recall[cat].low >= 0.7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.figure_name(),
            self.comparison.symbol(),
            self.bound_text
        )
    }
}

impl Serialize for Requirement {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Requirement {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Requirement, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|e| serde::de::Error::custom(format!("requirement `{text}`: {e}")))
    }
}

/// What a run measured, for judging its requirements.
#[derive(Clone, Copy, Debug)]
pub struct Measured<'a> {
    /// Prediction against label.
    pub evaluation: &'a Evaluation,
    /// Rows final (successful and failed).
    pub processed: u64,
    /// Rows without a usable prediction.
    pub failed: u64,
}

impl Requirement {
    /// `agreement`, `recall[cat].low`.
    fn figure_name(&self) -> String {
        match self.end {
            End::Value => self.measure.to_string(),
            End::Low => format!("{}.low", self.measure),
            End::High => format!("{}.high", self.measure),
        }
    }

    /// The figure this requirement compares, or why there is none.
    pub fn figure(&self, m: &Measured<'_>) -> Result<f64, &'static str> {
        let ev = m.evaluation;
        let label = |l: &str| ev.per_label.iter().find(|s| s.label == l);
        let no_rows = "no row was compared";
        let pick = |value: Option<f64>, interval: Option<crate::eval::Interval>| match self.end {
            End::Value => value,
            End::Low => interval.map(|i| i.low),
            End::High => interval.map(|i| i.high),
        };
        match &self.measure {
            Measure::Agreement => pick(ev.agreement_rate, ev.agreement_interval).ok_or(no_rows),
            Measure::Kappa => {
                let k = ev
                    .kappa
                    .ok_or("kappa is undefined: no row compared, or one label only")?;
                let half = 1.96 * k.standard_error;
                Ok(match self.end {
                    End::Value => k.value,
                    End::Low => (k.value - half).max(-1.0),
                    End::High => (k.value + half).min(1.0),
                })
            }
            Measure::MacroF1 => ev.macro_f1.ok_or(no_rows),
            Measure::WeightedF1 => ev.weighted_f1.ok_or(no_rows),
            Measure::FailureShare => {
                if m.processed == 0 {
                    return Err("no row was processed");
                }
                let share = m.failed as f64 / m.processed as f64;
                pick(Some(share), wilson_interval(m.failed, m.processed))
                    .ok_or("no row was processed")
            }
            Measure::Recall(l) => label(l)
                .and_then(|s| pick(s.recall, s.recall_interval))
                .ok_or("no compared row has this label"),
            Measure::Precision(l) => label(l)
                .and_then(|s| pick(s.precision, s.precision_interval))
                .ok_or("the model never gave this label"),
            Measure::F1(l) => label(l)
                .and_then(|s| s.f1)
                .ok_or("no compared row has this label, or the model never gave it"),
        }
    }

    /// This requirement judged against `m`.
    pub fn judge(&self, m: &Measured<'_>) -> Judged {
        let (value, passed, text) = match self.figure(m) {
            Ok(value) => {
                let passed = self.comparison.holds(value, self.bound);
                let shown = if passed {
                    self.comparison
                } else {
                    self.comparison.negated()
                };
                let text = format!(
                    "{} {} {} {} required: {}",
                    self.figure_name(),
                    self.show(value),
                    shown.symbol(),
                    self.bound_text,
                    if passed { "passed" } else { "FAILED" }
                );
                (Some(value), passed, text)
            }
            Err(why) => {
                let text = format!(
                    "{} not measured ({why}); {} {} required: FAILED",
                    self.figure_name(),
                    self.comparison.symbol(),
                    self.bound_text
                );
                (None, false, text)
            }
        };
        Judged {
            requirement: self.to_string(),
            value,
            passed: Some(passed),
            text,
        }
    }

    /// `value` in the bound's unit (a fraction, or a percentage when the bound was
    /// written as one), with the bound's decimals (at least two), and more when
    /// that many would show a value that misses the bound as equal to it.
    fn show(&self, value: f64) -> String {
        let percent = self.bound_text.ends_with('%');
        let number = self.bound_text.trim_end_matches('%').trim_end();
        let decimals = number.split_once('.').map_or(0, |(_, d)| d.len());
        let (scale, bound) = if percent {
            (100.0, self.bound * 100.0)
        } else {
            (1.0, self.bound)
        };
        let mut digits = decimals.max(if percent { 1 } else { 2 });
        let scaled = value * scale;
        while digits < 6
            && scaled != bound
            && format!("{scaled:.digits$}") == format!("{bound:.digits$}")
        {
            digits += 1;
        }
        format!("{scaled:.digits$}{}", if percent { "%" } else { "" })
    }
}

/// The gate's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Verdict {
    /// Every requirement is met.
    Passed,
    /// At least one requirement is missed.
    Failed,
    /// The run did not end with every row final (interrupted, aborted): there is
    /// no verdict to judge.
    NotJudged,
}

impl Verdict {
    /// `passed`, `FAILED`, `not judged`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "FAILED",
            Verdict::NotJudged => "not judged",
        }
    }
}

/// One requirement and how the run did against it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Judged {
    /// The requirement (`agreement >= 0.90`).
    pub requirement: String,
    /// The figure the run measured; null when it could not be measured or the gate
    /// was not judged.
    pub value: Option<f64>,
    /// Whether the requirement is met; null when the gate was not judged.
    pub passed: Option<bool>,
    /// In words: `agreement 0.87 < 0.90 required: FAILED`.
    pub text: String,
}

/// The gate of a run: each requirement and the verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateReport {
    /// Passed, failed, or not judged.
    pub verdict: Verdict,
    /// Why the gate was not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Each requirement, in the order given.
    pub requirements: Vec<Judged>,
}

/// `requirements` judged against `m`.
pub fn judge(requirements: &[Requirement], m: &Measured<'_>) -> GateReport {
    let requirements: Vec<Judged> = requirements.iter().map(|r| r.judge(m)).collect();
    let verdict = if requirements.iter().all(|j| j.passed == Some(true)) {
        Verdict::Passed
    } else {
        Verdict::Failed
    };
    GateReport {
        verdict,
        note: None,
        requirements,
    }
}

impl GateReport {
    /// The gate of a run that did not end with every row final; `why` says so.
    pub fn not_judged(requirements: &[Requirement], why: &str) -> GateReport {
        GateReport {
            verdict: Verdict::NotJudged,
            note: Some(why.to_string()),
            requirements: requirements
                .iter()
                .map(|r| Judged {
                    requirement: r.to_string(),
                    value: None,
                    passed: None,
                    text: format!("{r}: not judged"),
                })
                .collect(),
        }
    }

    /// The verdict in one line: `passed (3 requirements met)`, `FAILED (1 of 3
    /// requirements missed)`, `not judged: WHY`.
    pub fn headline(&self) -> String {
        let n = self.requirements.len();
        let plural = |k: usize| {
            if k == 1 {
                "requirement"
            } else {
                "requirements"
            }
        };
        match self.verdict {
            Verdict::Passed => format!("passed ({n} {} met)", plural(n)),
            Verdict::Failed => {
                let missed = self
                    .requirements
                    .iter()
                    .filter(|j| j.passed != Some(true))
                    .count();
                format!("FAILED ({missed} of {n} {} missed)", plural(n))
            }
            _ => format!(
                "not judged: {}",
                self.note.as_deref().unwrap_or("the run did not finish")
            ),
        }
    }
}

/// Requirements naming a label the run does not have, in words (`None` when every
/// label named is in `labels`). Checked when the CSV is read, before any request.
pub fn unknown_labels(requirements: &[Requirement], labels: &[String]) -> Option<String> {
    let unknown: Vec<String> = requirements
        .iter()
        .filter_map(|r| {
            let label = r.measure.label()?;
            (!labels.iter().any(|k| k == label)).then(|| format!("`{label}` (in `{r}`)"))
        })
        .collect();
    if unknown.is_empty() {
        return None;
    }
    const SHOWN: usize = 20;
    let mut known: Vec<&str> = labels.iter().take(SHOWN).map(String::as_str).collect();
    if labels.len() > SHOWN {
        known.push("...");
    }
    Some(format!(
        "no row of the CSV has the label{} {}; its labels: {}",
        if unknown.len() == 1 { "" } else { "s" },
        unknown.join(", "),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests;
