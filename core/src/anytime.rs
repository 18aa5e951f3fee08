//! An anytime-valid confidence sequence for a rate (the agreement), for a run
//! that looks at its interval after every batch and stops once it is narrow
//! enough.
//!
//! Checking a fixed-n interval (Wilson's) after every batch and stopping when
//! it suits is optional stopping: the chance that it misses the true rate at
//! some check is far above its nominal 5% (the simulation below measures it).
//! A confidence sequence holds at every n at once, so it stays valid at any
//! stopping time the data choose.
//!
//! This one is the predictable-plug-in empirical-Bernstein confidence sequence
//! of Waudby-Smith and Ramdas, "Estimating means of bounded random variables by
//! betting", JRSS-B 86(1), 2024 (arXiv 2010.09686), Theorem 2, with its
//! sampling-without-replacement form (Section 6) when the population (the
//! CSV's rows) is known: a closed form updated in O(1) per row, which adapts
//! to the variance (narrower at 90% agreement than at 50%). Each side runs at
//! level alpha/2; the bets are their `lambda_predmix_eb` (truncated at 1/2), or,
//! for a run that stops at a target width, `w / σ²` (the bet that makes the
//! bound narrowest where it reaches ±w; see [`ConfidenceSequence::aiming_at`]);
//! the interval kept is the running intersection (still valid: every member
//! holds at once). It is checked against the authors' own implementation,
//! the `confseq` package (`predmix_empbern_cs`).
//!
//! What it does not do: the betting (hedged capital) confidence sequence of the
//! same paper, which is narrower still but needs a grid of candidate means.

use crate::eval::wilson_interval;

/// One side's running sums, for observations `y` (the rate itself for the
/// lower bound, its complement for the upper).
#[derive(Clone, Copy, Debug, Default)]
struct Side {
    /// Observations so far.
    t: u64,
    /// Their sum.
    sum: f64,
    /// Sum of squares around the regularized running mean (the variance seed).
    sum_sq: f64,
    /// Sum of bet x (observation + without-replacement shift).
    weighted: f64,
    /// Sum of bet x (1 + without-replacement weight).
    bets: f64,
    /// Sum of the empirical-Bernstein penalties.
    penalty: f64,
}

impl Side {
    fn push(&mut self, y: f64, log_inv_alpha: f64, population: Option<u64>, aim: Option<f64>) {
        let t = (self.t + 1) as f64;
        let variance = (0.25 + self.sum_sq) / t;
        let bet = match aim {
            // The bet that makes the bound narrowest at the row where it
            // reaches ±w, about 2 ln(2/α) σ² / w² rows: sqrt(2 ln(2/α) / (n σ²))
            // there is w / σ², with σ² the variance seen so far (predictable, so
            // the sequence stays valid at every n).
            Some(w) => w / variance,
            None => (2.0 * log_inv_alpha / (t * (1.0 + t).ln() * variance)).sqrt(),
        }
        .min(0.5);
        let mean_before = if self.t == 0 {
            0.0
        } else {
            self.sum / self.t as f64
        };
        let (shift, weight) = match population {
            Some(n) => {
                let left = (n as f64 - t + 1.0).max(1.0);
                (self.sum / left, (t - 1.0) / left)
            }
            None => (0.0, 0.0),
        };
        self.weighted += bet * (y + shift);
        self.bets += bet * (1.0 + weight);
        self.penalty += (y - mean_before).powi(2) * (-(1.0 - bet).ln() - bet);
        self.sum += y;
        self.t += 1;
        let regularized = ((0.5 + self.sum) / (t + 1.0)).min(1.0);
        self.sum_sq += (y - regularized).powi(2);
    }

    /// The lower bound on this side's mean (may be below 0 early on).
    fn lower(&self, log_inv_alpha: f64) -> f64 {
        if self.bets == 0.0 {
            return f64::NEG_INFINITY;
        }
        ((self.weighted - log_inv_alpha - self.penalty) / self.bets).min(1.0)
    }
}

/// The confidence sequence of a rate, fed one 0/1 (or [0, 1]) observation at
/// a time in a uniformly random order.
#[derive(Clone, Debug)]
pub struct ConfidenceSequence {
    log_inv_alpha: f64,
    population: Option<u64>,
    /// The half-width the bets are tuned to reach soonest (`None`: confseq's
    /// default bets, good at every n and best at none).
    aim: Option<f64>,
    low: Side,
    high: Side,
    /// The running intersection.
    bounds: (f64, f64),
    successes: u64,
}

impl ConfidenceSequence {
    /// A sequence at level `1 - alpha` (0.05: 95%) for a rate over `population`
    /// items sampled without replacement (`None`: an endless supply).
    pub fn new(alpha: f64, population: Option<u64>) -> ConfidenceSequence {
        ConfidenceSequence {
            log_inv_alpha: (2.0 / alpha).ln(),
            population,
            aim: None,
            low: Side::default(),
            high: Side::default(),
            bounds: (0.0, 1.0),
            successes: 0,
        }
    }

    /// The same sequence with its bets tuned to reach a half-width of `w` in as
    /// few rows as they can (about twice the rows a fixed-n interval of ±w
    /// needs, instead of five to seven times with the untuned bets). Any
    /// predictable bets keep the guarantee; these only move where the
    /// sequence is narrowest.
    pub fn aiming_at(self, w: f64) -> ConfidenceSequence {
        ConfidenceSequence {
            aim: Some(w),
            ..self
        }
    }

    /// The next observation (clamped into [0, 1]).
    pub fn push(&mut self, x: f64) {
        let x = x.clamp(0.0, 1.0);
        self.low
            .push(x, self.log_inv_alpha, self.population, self.aim);
        self.high
            .push(1.0 - x, self.log_inv_alpha, self.population, self.aim);
        self.successes += u64::from(x >= 0.5);
        let (lo, hi) = self.raw();
        self.bounds = (self.bounds.0.max(lo), self.bounds.1.min(hi));
    }

    /// Observations so far.
    pub fn n(&self) -> u64 {
        self.low.t
    }

    /// This step's interval alone, not clamped (for the reference test).
    fn raw(&self) -> (f64, f64) {
        (
            self.low.lower(self.log_inv_alpha),
            1.0 - self.high.lower(self.log_inv_alpha),
        )
    }

    /// The interval: the intersection of every step's, within [0, 1].
    pub fn interval(&self) -> (f64, f64) {
        let (lo, hi) = self.bounds;
        if lo > hi {
            // Only when the rate moved under a non-stationary stream: the
            // last step's alone says more than an empty set.
            let (lo, hi) = self.raw();
            return (lo.clamp(0.0, 1.0), hi.clamp(0.0, 1.0));
        }
        (lo.clamp(0.0, 1.0), hi.clamp(0.0, 1.0))
    }

    /// Half the interval's width.
    pub fn half_width(&self) -> f64 {
        let (lo, hi) = self.interval();
        (hi - lo) / 2.0
    }

    /// Wilson's 95% interval of the same observations counted as 0/1 (valid at
    /// a fixed n only), for reading beside the sequence.
    pub fn wilson(&self) -> Option<(f64, f64)> {
        wilson_interval(self.successes, self.n()).map(|i| (i.low, i.high))
    }
}

/// What the summary of an `--until-interval` run says of its stop.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrecisionReport {
    /// The half-width asked (`--until-interval`).
    pub target_half_width: f64,
    /// `precision reached` when the run stopped because the interval was
    /// narrow enough; absent when it ended otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Rows compared that fed the sequence.
    pub rows: u64,
    /// The anytime-valid 95% interval of the agreement (valid at the stop).
    pub anytime_interval: crate::eval::Interval,
    /// Its half-width.
    pub half_width: f64,
    /// Wilson's 95% interval of the same rows, for reading (too optimistic
    /// at a data-chosen stop).
    pub wilson_interval: Option<crate::eval::Interval>,
    /// The method, in words.
    pub method: String,
}

impl PrecisionReport {
    /// The report of `sequence`, aimed at `target`; `reached` when the run
    /// stopped on it.
    pub fn of(sequence: &ConfidenceSequence, target: f64, reached: bool) -> PrecisionReport {
        let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
        let (low, high) = sequence.interval();
        PrecisionReport {
            target_half_width: target,
            stop_reason: reached.then(|| "precision reached".to_string()),
            rows: sequence.n(),
            anytime_interval: crate::eval::Interval {
                low: round(low),
                high: round(high),
            },
            half_width: round(sequence.half_width()),
            wilson_interval: wilson_interval(sequence.successes, sequence.n()),
            method: "Waudby-Smith & Ramdas predictable plug-in empirical-Bernstein \
                     confidence sequence, without replacement over the CSV's rows, 95%"
                .into(),
        }
    }
}

/// A stop's half-width as given (`--until-interval W`, the page's field): a
/// number in `(0, 0.5)`, `0.01` being ±1 point. The error says what is wrong
/// in the words both hosts show.
pub fn parse_half_width(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number (e.g. 0.01 for ±1 point)"))?;
    check_half_width(v).map_err(|_| {
        format!("`{text}` is not a half-width between 0 and 0.5 (e.g. 0.01 for ±1 point)")
    })
}

/// `w` when it is a half-width in `(0, 0.5)`; else why not.
pub fn check_half_width(w: f64) -> Result<f64, String> {
    if w > 0.0 && w < 0.5 {
        Ok(w)
    } else {
        Err(format!(
            "{w} is not a half-width between 0 and 0.5 (e.g. 0.01 for ±1 point)"
        ))
    }
}

#[cfg(test)]
mod tests;
