//! Drift: does this batch's agreement differ from the run's more than chance allows?
//!
//! Two tests from statistical process control, run on each batch in order, both
//! against `p̄`, the run's agreement over the *earlier* batches (the batch under test
//! is left out so that a changed batch does not pull the centre toward itself):
//!
//! 1. **p-chart** (Montgomery, *Introduction to Statistical Quality Control*, §7.2):
//!    the batch's count of agreements is flagged when it lies in a tail of
//!    Binomial(n, p̄) holding at most 0.135% (each side; the two tails together
//!    hold at most 0.27%, the share beyond 3 sigma of a normal). The limits are the
//!    exact binomial quantiles for the batch's own size `n` rather than
//!    `p̄ ± 3·sqrt(p̄(1-p̄)/n)`: at n = 50 and p̄ = 0.99 the normal limits flag a
//!    stable batch 1.4% of the time, the exact ones at most 0.135%.
//! 2. **Lower CUSUM** for a slow fall (Montgomery §9.1, the tabular CUSUM on
//!    standardised batch scores, here the variance-stabilised
//!    `z = 2·sqrt(n)·(asin(sqrt(x/n)) - asin(sqrt(p̄)))`, about N(0, 1) for a
//!    stable batch and far less skewed than `(x - n·p̄) / sqrt(n·p̄(1-p̄))` near 0.99):
//!    `S = max(0, S - z - k)`, flagged when `S > h`, then `S` starts again from 0.
//!    `k = 0.5` (tuned to a fall of one batch standard deviation), `h = 5`: for
//!    normal scores its in-control average run length is about 930 batches one-sided
//!    (Montgomery Table 9.3 gives 465 for the two-sided chart; Siegmund's
//!    approximation gives 938 one-sided), a false alarm on about 0.11% of batches.
//!    Only a fall is watched: a model getting better is not a risk to act on.
//!
//! Multiple testing: a batch drifts when either test flags it, so its false-alarm
//! probability is at most the sum (Bonferroni), 0.27% + 0.11% ≈ 0.4%; the stated
//! bound is [`FALSE_ALARM_SHARE`] (0.5%) of the batches of a stationary run. This is
//! a per-batch rate, as in a control chart: a stationary run of 2,000 batches is
//! expected to show a few flagged batches, not none. The simulation tests below
//! measure it at true rates 0.5, 0.9 and 0.99 and the delay to flag a fall from 0.9
//! to 0.8.
//!
//! Small batches and short histories: the exact tails make any batch size valid
//! (a batch of 3 can never reach a 0.135% tail unless p̄ is extreme, and then it is
//! rarely flagged — the test is conservative, never liberal). `p̄` is itself an
//! estimate, so no batch is judged before the earlier batches hold
//! [`MIN_HISTORY`] times this batch's compared rows (Montgomery's rule of 20 to 25
//! preliminary samples for trial limits); the estimate's error then widens the
//! spread by at most 2.5%. A 300-row run of batches of 50 is therefore never judged.
//! `p̄` is `(agreements + 1/2) / (compared + 1)` so that a history of all agreements
//! does not make a single disagreement infinitely unlikely.

use serde::{Deserialize, Serialize};

/// Two-sided tail probability of the p-chart (3 sigma of a normal: 0.27%).
pub const P_CHART_ALPHA: f64 = 0.0027;
/// CUSUM reference value, in batch standard deviations.
pub const CUSUM_K: f64 = 0.5;
/// CUSUM decision interval, in batch standard deviations.
pub const CUSUM_H: f64 = 5.0;
/// The earlier batches must hold this many times the batch's compared rows.
pub const MIN_HISTORY: u64 = 20;
/// The stated bound on the share of a stationary run's batches flagged.
pub const FALSE_ALARM_SHARE: f64 = 0.005;
/// The rule in words, for reports and pages.
pub const RULE: &str = "p-chart: a batch's agreement outside the exact binomial 3-sigma limits \
(0.27%) around the run's agreement over earlier batches; or a lower CUSUM (k = 0.5, h = 5, \
in-control run length about 930 batches) showing a sustained fall; judged once earlier \
batches hold 20 times the batch's rows; at most 0.5% of a stable run's batches are flagged";

/// Which test flagged a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum DriftSignal {
    /// Below the p-chart's lower limit.
    BelowLimit,
    /// Above the p-chart's upper limit.
    AboveLimit,
    /// The lower CUSUM passed `h`: agreement has been falling over several batches.
    SustainedFall,
}

/// What the drift tests found for one batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftCheck {
    /// `p̄`: the run's agreement over the earlier batches.
    pub centre: f64,
    /// Lowest agreement rate of this batch's size inside the p-chart's limits.
    pub low: f64,
    /// Highest agreement rate of this batch's size inside the p-chart's limits.
    pub high: f64,
    /// The lower CUSUM after this batch (0 again after a signal), in batch
    /// standard deviations; a signal when it passes 5.
    pub cusum: f64,
    /// Why the batch drifts; `None` when it does not.
    pub signal: Option<DriftSignal>,
}

/// The drift tests' state over a run's batches, fed in batch order.
#[derive(Clone, Debug, Default)]
pub struct DriftMonitor {
    agreements: u64,
    compared: u64,
    cusum: f64,
}

impl DriftMonitor {
    /// Judges one batch (`agreements` of `compared` predictions equal to the label)
    /// and adds it to the history. `None` when the batch is not judged: nothing
    /// compared, or too short a history.
    pub fn check(&mut self, agreements: u64, compared: u64) -> Option<DriftCheck> {
        if compared == 0 {
            return None;
        }
        let judged = self.compared >= MIN_HISTORY * compared;
        let centre = (self.agreements as f64 + 0.5) / (self.compared as f64 + 1.0);
        self.agreements += agreements;
        self.compared += compared;
        if !judged {
            return None;
        }
        let (low, high) = p_chart_limits(compared, centre);
        let n = compared as f64;
        // The arcsine transform makes a binomial rate's spread 1/(2 sqrt(n)) whatever
        // p̄ is, and its skew small: the plain z-score of a batch at p̄ = 0.99 is so
        // skewed that the CUSUM alarms twice as often as on normal scores.
        let z = 2.0 * n.sqrt() * ((agreements as f64 / n).sqrt().asin() - centre.sqrt().asin());
        self.cusum = (self.cusum - z - CUSUM_K).max(0.0);
        let signal = if agreements < low {
            Some(DriftSignal::BelowLimit)
        } else if agreements > high {
            Some(DriftSignal::AboveLimit)
        } else if self.cusum > CUSUM_H {
            Some(DriftSignal::SustainedFall)
        } else {
            None
        };
        let cusum = self.cusum;
        if signal.is_some() {
            self.cusum = 0.0;
        }
        Some(DriftCheck {
            centre: round4(centre),
            low: round4(low as f64 / n),
            high: round4(high as f64 / n),
            cusum: round4(cusum),
            signal,
        })
    }
}

/// The p-chart's limits for a batch of `n` at rate `p`, as counts: the smallest
/// count whose lower tail `P(X <= x)` exceeds 0.135% and the largest whose upper
/// tail `P(X >= x)` does (scipy's `binom.ppf(0.00135, n, p)` and
/// `binom.isf(0.00135, n, p)`). Counts outside `[low, high]` are flagged.
pub fn p_chart_limits(n: u64, p: f64) -> (u64, u64) {
    let tail = P_CHART_ALPHA / 2.0;
    let pmf = binomial_pmf(n, p);
    let mut low = 0;
    let mut below = 0.0;
    for (x, mass) in pmf.iter().enumerate() {
        below += mass;
        if below > tail {
            low = x as u64;
            break;
        }
    }
    let mut high = n;
    let mut above = 0.0;
    for (x, mass) in pmf.iter().enumerate().rev() {
        above += mass;
        if above > tail {
            high = x as u64;
            break;
        }
    }
    (low, high)
}

/// `P(X = x)` for `x` in `0..=n`, X ~ Binomial(n, p), by the ratio of neighbours in
/// log space (no factorials, no underflow before the terms are negligible).
fn binomial_pmf(n: u64, p: f64) -> Vec<f64> {
    let (ln_p, ln_q) = (p.ln(), (1.0 - p).ln());
    let mut ln_choose = 0.0;
    (0..=n)
        .map(|x| {
            if x > 0 {
                ln_choose += ((n - x + 1) as f64).ln() - (x as f64).ln();
            }
            (ln_choose + x as f64 * ln_p + (n - x) as f64 * ln_q).exp()
        })
        .collect()
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{splitmix64, unit_interval};

    /// A seeded stream of uniforms.
    struct Uniforms(u64);
    impl Uniforms {
        fn next(&mut self) -> f64 {
            self.0 = splitmix64(self.0);
            unit_interval(self.0)
        }
        fn binomial(&mut self, n: u64, p: f64) -> u64 {
            (0..n).filter(|_| self.next() < p).count() as u64
        }
        /// Box-Muller.
        fn normal(&mut self) -> f64 {
            let (u, v) = (1.0 - self.next(), self.next());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    /// The flagged batches of a run of `batches` batches of `size` whose true
    /// agreement is `rate(b)` for 0-based batch `b`.
    fn flagged(seed: u64, batches: usize, size: u64, rate: impl Fn(usize) -> f64) -> Vec<usize> {
        let mut draw = Uniforms(seed);
        let mut monitor = DriftMonitor::default();
        (0..batches)
            .filter(|&b| {
                let agreed = draw.binomial(size, rate(b));
                monitor
                    .check(agreed, size)
                    .is_some_and(|c| c.signal.is_some())
            })
            .collect()
    }

    /// Reference values from scipy 1.x (`pip install scipy`):
    /// ```text
    /// from scipy.stats import binom
    /// for n, p in [(50, .9), (50, .99), (50, .5), (200, .2313), (1000, .9), (50, .2313)]:
    ///     print(n, p, binom.ppf(0.00135, n, p), binom.isf(0.00135, n, p))
    /// ```
    /// prints `50 0.9 38 50`, `50 0.99 46 50`, `50 0.5 15 35`, `200 0.2313 29 65`,
    /// `1000 0.9 871 927`, `50 0.2313 4 21`. (Montgomery's Example 7.1, n = 50, p̄ = 0.2313, has the
    /// normal limits 0.0524 and 0.4102, i.e. counts 3 to 20; the exact quantiles at
    /// n = 50 are 4 and 21: the exact tails are the narrower test at a skewed p̄.)
    #[test]
    fn p_chart_limits_are_scipys_binomial_quantiles() {
        for (n, p, want) in [
            (50, 0.9, (38, 50)),
            (50, 0.99, (46, 50)),
            (50, 0.5, (15, 35)),
            (200, 0.2313, (29, 65)),
            (1000, 0.9, (871, 927)),
            (50, 0.2313, (4, 21)),
        ] {
            assert_eq!(p_chart_limits(n, p), want, "n = {n}, p = {p}");
        }
    }

    /// The CUSUM's in-control average run length on standard normal scores, by
    /// simulation, against the published figure: Montgomery Table 9.3 (k = 1/2,
    /// h = 5) gives 465 for the two-sided tabular CUSUM, so 930 for one side;
    /// Siegmund's approximation `(exp(2kb) - 2kb - 1) / (2k²)` with `b = h + 1.166`
    /// gives 938.
    #[test]
    fn lower_cusum_in_control_run_length_matches_montgomery() {
        let mut draw = Uniforms(7);
        let runs = 1_000;
        let mut total = 0u64;
        for _ in 0..runs {
            let mut s = 0.0f64;
            let mut t = 0u64;
            loop {
                t += 1;
                s = (s - draw.normal() - CUSUM_K).max(0.0);
                if s > CUSUM_H {
                    break;
                }
            }
            total += t;
        }
        let arl = total as f64 / runs as f64;
        // Run lengths are roughly geometric: the mean of 1,000 has a standard
        // error near 930 / sqrt(1000) ≈ 30.
        assert!((840.0..1_030.0).contains(&arl), "ARL0 = {arl}");
    }

    /// Ten seeded runs of 2,000 batches of 50 at each true rate: no run flags more
    /// than the stated share. `cargo test -p shadow-core --lib drift -- --nocapture`
    /// prints the measured shares (quoted in BENCHMARKS.md).
    #[test]
    fn a_stationary_run_of_2000_batches_flags_at_most_the_stated_share() {
        for rate in [0.5, 0.9, 0.99] {
            let mut total = 0;
            let mut worst = 0;
            for seed in 0..10 {
                let flags = flagged(seed * 31 + 1, 2_000, 50, |_| rate).len();
                assert!(
                    flags as f64 / 2_000.0 <= FALSE_ALARM_SHARE,
                    "rate {rate}, seed {seed}: {flags} of 2,000 batches flagged"
                );
                total += flags;
                worst = worst.max(flags);
            }
            eprintln!(
                "rate {rate}: {total} of 20,000 batches flagged ({:.2}%), at most {worst} of 2,000 in one run",
                total as f64 / 200.0
            );
        }
    }

    /// The old rule (the batch's rate outside the run's 95% interval) flagged almost
    /// every late batch of a long stationary run; the new one must not.
    #[test]
    fn the_run_growing_does_not_make_a_stable_batch_drift() {
        let late = flagged(11, 2_000, 50, |_| 0.9)
            .into_iter()
            .filter(|&b| b >= 1_000)
            .count();
        assert!(late <= 5, "{late} of the last 1,000 batches flagged");
    }

    #[test]
    fn a_fall_from_90_to_80_percent_is_flagged_within_a_few_batches() {
        let mut delays = Vec::new();
        for seed in 100..140 {
            let flags = flagged(seed, 2_000, 50, |b| if b < 1_000 { 0.9 } else { 0.8 });
            let first = flags
                .iter()
                .find(|&&b| b >= 1_000)
                .expect("the fall is flagged");
            delays.push(first - 1_000 + 1);
        }
        delays.sort_unstable();
        eprintln!("batches to flag a fall 0.9 -> 0.8 (40 runs): {delays:?}");
        assert!(delays[delays.len() - 1] <= 10, "{delays:?}");
        assert!(delays[delays.len() / 2] <= 4, "{delays:?}");
    }

    #[test]
    fn a_short_history_is_not_judged() {
        let mut monitor = DriftMonitor::default();
        for _ in 0..20 {
            assert_eq!(monitor.check(45, 50), None);
        }
        let check = monitor.check(10, 50).expect("judged from the 21st batch");
        assert_eq!(check.signal, Some(DriftSignal::BelowLimit));
        assert_eq!(monitor.check(0, 0), None, "a batch with nothing compared");
    }
}
