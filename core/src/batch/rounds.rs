//! Rounds of a batch-API run that stops at a target precision
//! (`until_interval`): the sample goes to the provider in growing shards, and
//! the anytime-valid confidence sequence of the agreement decides, between two
//! rounds, whether to stop or how many rows the next round takes.
//!
//! A provider batch takes minutes to a day, so a round trip is costly, while a
//! row too many costs half the list price: rounds are few and sized
//! generously.
//!
//! - The first round is the rows a fixed-n (Wilson) interval of ±w needs at
//!   50% agreement, `z² / (4 w²)` (385 at ±0.05): the sequence, its bets aimed
//!   at ±w, takes 1.6 to 3.5 times a fixed-n interval's rows at the same
//!   agreement, which is at most this many from about 90% agreement up, so a
//!   model good enough to consider is usually settled in one round, a worse
//!   one in two, and the rows sent beyond need are at most that one fixed-n
//!   sample (measured: the table in `docs/batch-api.md`).
//! - When every shard of a round has ended and its results are in, the
//!   sequence is fed the round's rows in the sample's order (the seeded
//!   permutation: row 0, 1, 2...), never in the order the answers came. A row
//!   waiting for a retry (which goes with the next round, not in a provider
//!   batch of its own) is deferred to the first round's end that finds it
//!   final, so that one retry does not hold back the rows after it: the order
//!   then depends on which requests failed, not on what was answered. At ±w
//!   or narrower the run stops, `completed`, reason precision reached, as a
//!   live run does.
//! - Otherwise the next round takes the run up to the rows the sequence needs
//!   at the rate observed so far ([`rows_needed`]), times [`MARGIN`] and scaled
//!   up for the rows that end without a comparison (failures), at least
//!   [`MIN_GROWTH`] times the rows released so far (rounds grow, so their
//!   number stays logarithmic however wrong a projection is), and never past
//!   the run's rows (the CSV, or its `--sample`).
//!
//! What it does not do: stop inside a round (the results of a provider batch
//! come all at once, and checking between its lines buys nothing), or cancel a
//! round's batches once the sequence is narrow (there is none running then).

use crate::anytime::{ConfidenceSequence, PrecisionReport};
use crate::engine::ItemDone;
use crate::journal::{ItemResult, ItemStatus};
use crate::time::Millis;

use super::shard::Phase;
use super::{BatchRun, Mode};

/// The 95% normal quantile, of the fixed-n interval the first round is sized by.
const Z: f64 = 1.959_963_984_540_054;
/// The sequence's level: 95%, each side at α/2 (as the live run's).
const ALPHA: f64 = 0.05;
/// How much more than the projection the next round takes: the rows the
/// sequence takes vary from one order of the rows to another (their 90th
/// percentile is up to a third above the median), the rate is estimated, and
/// one round too few costs a round trip while a row too many costs half its
/// price.
pub const MARGIN: f64 = 1.25;
/// Each round takes the run to at least this many times the rows released so
/// far.
pub const MIN_GROWTH: f64 = 1.5;

/// The first round's rows for a target half-width `w`: a fixed-n Wilson
/// interval's rows at 50% agreement, `ceil(z² / (4 w²))`, at most `cap`.
pub fn first_round_rows(w: f64, cap: usize) -> usize {
    ((Z * Z / (4.0 * w * w)).ceil() as usize).clamp(cap.min(1), cap)
}

/// The compared rows the sequence aimed at `w` needs to reach ±w at an
/// agreement `rate`: `2 ln(2/α) σ² / w²` with `σ² = rate (1 - rate)` (where its
/// bets `w / σ²` make the bound narrowest; see [`crate::anytime`]), plus
/// `ln(2/α) / w`, the lower-order term that the bets' cap and the variance
/// seed add (fitted to the rows the sequence takes: within 0.79-1.08 of their
/// median from 50% to 98% agreement at ±0.05, ±0.02 and ±0.01; the table in
/// `docs/batch-api.md`), with the finite-population correction
/// `n N / (n + N)` when the rows are drawn without replacement from
/// `population`.
pub fn rows_needed(rate: f64, w: f64, population: Option<usize>) -> f64 {
    let variance = (rate * (1.0 - rate)).max(0.0);
    let log_inv_alpha = (2.0 / ALPHA).ln();
    let endless = 2.0 * log_inv_alpha * variance / (w * w) + log_inv_alpha / w;
    match population {
        Some(n) if n > 0 => endless * n as f64 / (endless + n as f64),
        _ => endless,
    }
}

/// What the run does between two rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The interval is at most ±w: stop, precision reached.
    Stop,
    /// Send rows up to (not including) this one.
    Release(usize),
    /// Every row is released already: finish them.
    Finish,
}

/// A row's end, as the sequence reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowEnd {
    Open,
    /// Final without a comparison (failed, or no label).
    Uncompared,
    Agreed,
    Disagreed,
}

/// The rounds of one run: rows released, each row's end, and the sequence.
#[derive(Clone, Debug)]
pub struct Rounds {
    target: f64,
    population: Option<usize>,
    ends: Vec<RowEnd>,
    /// Rows `0..released` may be sent.
    released: usize,
    /// Rows `0..fed` were read: in the sequence, final without a comparison,
    /// or deferred.
    fed: usize,
    /// Rows read while still open (waiting for a retry), in row order: fed at
    /// the first round's end that finds them final.
    deferred: Vec<usize>,
    /// Final rows fed, compared or not (for the share that is compared).
    agreements: u64,
    sequence: ConfidenceSequence,
    rounds: u32,
    reached: bool,
    /// The round's rows (and retries) are being taken into shards: from a
    /// release (or a resume) until a take finds nothing more due; for good
    /// once every row is released.
    taking: bool,
}

impl Rounds {
    /// The rounds of a run of `rows` rows aimed at ±`target`; `population`
    /// is the CSV's row count the rows are drawn from without replacement
    /// (`None`: treated as endless).
    pub fn new(target: f64, rows: usize, population: Option<usize>) -> Rounds {
        Rounds {
            target,
            population,
            ends: vec![RowEnd::Open; rows],
            released: 0,
            fed: 0,
            deferred: Vec::new(),
            agreements: 0,
            sequence: ConfidenceSequence::new(ALPHA, population.map(|n| n as u64))
                .aiming_at(target),
            rounds: 0,
            reached: false,
            taking: false,
        }
    }

    /// Row `row` is final: `Some(agreed)` when compared with its label, `None`
    /// when it failed. Only its first end counts (a journal restores a row
    /// once).
    pub fn row_final(&mut self, row: usize, agreed: Option<bool>) {
        if let Some(end @ RowEnd::Open) = self.ends.get_mut(row) {
            *end = match agreed {
                Some(true) => RowEnd::Agreed,
                Some(false) => RowEnd::Disagreed,
                None => RowEnd::Uncompared,
            };
        }
    }

    /// After the rows of an earlier session are in ([`Rounds::row_final`]):
    /// replays the rounds it decided, up to the one it was in when it
    /// stopped (the first that reaches `touched`: the rows it submitted or
    /// finished). Each round is decided again from the rows final when the
    /// one before it ended, so the resumed run sends the same rows as an
    /// uninterrupted one; every row below `touched` is released either way
    /// (a row waiting for a retry at a round's end, now final, can make a
    /// replayed round differ from the original in size only).
    pub fn resume_from(&mut self, touched: usize) {
        let touched = touched.min(self.ends.len());
        while self.released < touched {
            if !matches!(self.decide(), Decision::Release(_)) {
                break;
            }
        }
        self.reached = false;
        self.released = self.released.max(touched);
        self.taking = true;
    }

    /// Rows that may be sent.
    pub fn released(&self) -> usize {
        self.released
    }

    /// Rounds decided so far (releases and the stop).
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// At a round's end: feeds the sequence the rows deferred by earlier
    /// rounds that are now final, then the released rows not read yet, each
    /// in row order (whatever order their results came in); a row still open
    /// (its retry goes with the next round) is deferred, so that one retry
    /// does not hold back the rows after it.
    fn feed(&mut self) {
        for row in std::mem::take(&mut self.deferred) {
            self.read(row);
        }
        while self.fed < self.released {
            self.read(self.fed);
            self.fed += 1;
        }
    }

    fn read(&mut self, row: usize) {
        match self.ends[row] {
            RowEnd::Open => self.deferred.push(row),
            RowEnd::Uncompared => {}
            RowEnd::Agreed => {
                self.agreements += 1;
                self.sequence.push(1.0);
            }
            RowEnd::Disagreed => self.sequence.push(0.0),
        }
    }

    /// Feeds what the last round's end left (the run ended with every row
    /// final): before the last report.
    pub fn settle(&mut self) {
        self.feed();
    }

    /// What to do now that no shard is out: stop, release more rows, or
    /// finish those released.
    pub fn decide(&mut self) -> Decision {
        self.feed();
        if self.sequence.n() > 0 && self.sequence.half_width() <= self.target {
            self.reached = true;
            self.taking = false;
            self.rounds += 1;
            return Decision::Stop;
        }
        let cap = self.ends.len();
        self.taking = true;
        if self.released >= cap {
            return Decision::Finish;
        }
        let next = if self.released == 0 {
            first_round_rows(self.target, cap)
        } else {
            self.projected()
                .max((self.released as f64 * MIN_GROWTH).ceil() as usize)
        };
        self.released = next.clamp(self.released + 1, cap);
        self.rounds += 1;
        Decision::Release(self.released)
    }

    /// The rows the run needs at the rate and the share compared seen so far,
    /// with the margin.
    fn projected(&self) -> usize {
        let compared = self.sequence.n();
        if compared == 0 {
            return 0;
        }
        // Regularized as the sequence's own variance seed, so that a round of
        // all agreements still projects more rows than it has.
        let rate = (self.agreements as f64 + 0.5) / (compared as f64 + 1.0);
        let read = (self.fed - self.deferred.len()).max(1);
        let share = compared as f64 / read as f64;
        (rows_needed(rate, self.target, self.population) * MARGIN / share).ceil() as usize
    }

    /// The summary's precision block: the sequence as of the last round's end
    /// (or [`Rounds::settle`]), `precision reached` when the run stopped on
    /// it.
    pub fn report(&self) -> PrecisionReport {
        PrecisionReport::of(&self.sequence, self.target, self.reached)
    }
}

/// How a row restored from the results journal reads in the sequence:
/// `Some(agreed)` when it was compared with its label.
pub(super) fn restored_agreement(result: &ItemResult<'_>) -> Option<bool> {
    match (&result.status, &result.prediction) {
        (ItemStatus::Success, Some(p)) => Some(**p == *result.label),
        _ => None,
    }
}

/// The rounds, as the batch run plays them.
impl BatchRun {
    /// Between rounds (no shard building or out at the provider, nothing being
    /// rebuilt): stops the run once the sequence is narrow enough, or releases
    /// the next round's rows (taken into shards by `fill`).
    pub(super) fn plan_round(&mut self, now: Millis) {
        loop {
            if self.rounds.is_none() {
                return;
            }
            let out = |phase: Phase| {
                matches!(
                    phase,
                    Phase::Building
                        | Phase::Sealed
                        | Phase::Uploaded
                        | Phase::Running
                        | Phase::Downloading
                )
            };
            if self.mode != Mode::Running
                || self.run.is_stopping()
                || self.run.is_finished()
                || !self.building.is_empty()
                || self.shards.iter().any(|s| out(s.phase))
                || self.recovering()
            {
                return;
            }
            let Some(decision) = self.rounds.as_mut().map(Rounds::decide) else {
                return;
            };
            match decision {
                Decision::Stop => {
                    self.run.precision_reached(now);
                    self.changed = true;
                    return;
                }
                Decision::Finish => return,
                Decision::Release(rows) => {
                    self.run.release_rows(rows);
                    self.changed = true;
                    self.fill_round(now);
                    // Rows that end without a request (defective) end here.
                    self.drain_run(now);
                    if !self.building.is_empty() {
                        return;
                    }
                    // Every released row was final already (a resume): the
                    // next decision comes at once.
                }
            }
        }
    }

    /// Takes what is due into shards: at any time without rounds; with them,
    /// only the rows of a round just released (and the retries due then), so
    /// that a retry waits for the next round instead of making a provider
    /// batch of its own. Once every row is released, retries go when due.
    pub(super) fn fill_round(&mut self, now: Millis) {
        let taking = self.rounds.as_ref().is_none_or(|r| r.taking);
        if !taking {
            return;
        }
        self.fill(now);
        if let Some(rounds) = &mut self.rounds {
            if self.drained && rounds.released < rounds.ends.len() {
                rounds.taking = false;
            }
        }
    }

    /// A row became final in this session.
    pub(super) fn row_final(&mut self, done: &ItemDone) {
        if let Some(rounds) = &mut self.rounds {
            let label = self.run.labels().index_of(&self.run.item(done.row).label);
            let agreed = match (done.prediction, label) {
                (Some(p), Some(l)) => Some(p == l),
                _ => None,
            };
            rounds.row_final(done.row, agreed);
        }
    }

    /// After a restore: the rows an earlier session released (those it sent
    /// or finished, below `rows`) are this session's first round.
    pub(super) fn resume_rounds(&mut self, rows: usize) {
        if let Some(rounds) = &mut self.rounds {
            rounds.resume_from(rows);
            self.run.release_rows(rounds.released());
        }
    }

    /// The rounds, for the host's console: `(rounds decided, rows released)`.
    pub fn rounds(&self) -> Option<(u32, usize)> {
        self.rounds.as_ref().map(|r| (r.rounds(), r.released()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded stream of 0/1 with mean `p` (splitmix64), as rows in a random
    /// order.
    fn draws(p: f64, seed: u64) -> impl Iterator<Item = bool> {
        let mut state = seed;
        std::iter::from_fn(move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let x = crate::hash::mix64(state);
            Some(((x >> 11) as f64 / (1u64 << 53) as f64) < p)
        })
    }

    /// Rows the sequence aimed at ±w takes to reach it at rate p (one stream).
    fn rows_to_reach(p: f64, w: f64, seed: u64) -> u64 {
        let mut s = ConfidenceSequence::new(ALPHA, None).aiming_at(w);
        for agreed in draws(p, seed) {
            s.push(if agreed { 1.0 } else { 0.0 });
            if s.half_width() <= w {
                return s.n();
            }
        }
        unreachable!()
    }

    #[test]
    fn the_first_round_is_the_fixed_n_rows_at_half_agreement() {
        // 1.96² / (4 · 0.05²) = 384.1: Wilson's ±0.05 at 50% needs 385 rows.
        assert_eq!(first_round_rows(0.05, 100_000), 385);
        assert_eq!(first_round_rows(0.01, 100_000), 9_604);
        assert_eq!(first_round_rows(0.05, 100), 100, "at most the run's rows");
    }

    /// The projection follows the rows the sequence takes (checked after every
    /// row; median of 21 seeded streams) from 50% to 98% agreement at ±0.05 and
    /// ±0.02: never more than the margin below them, nor a quarter above.
    #[test]
    fn the_projection_follows_the_rows_the_sequence_takes() {
        for w in [0.05, 0.02] {
            for p in [0.5, 0.7, 0.9, 0.98] {
                let mut taken: Vec<u64> = (0..21).map(|s| rows_to_reach(p, w, s)).collect();
                taken.sort_unstable();
                let median = taken[10] as f64;
                let projected = rows_needed(p, w, None);
                assert!(
                    projected * 0.75 <= median && median <= projected * MARGIN,
                    "±{w} at {p}: projected {projected:.0}, taken {median}"
                );
            }
        }
    }

    /// The rounds over one seeded stream of `cap` rows: the rows released
    /// at each decision, and how it ended.
    fn play(
        p: f64,
        w: f64,
        (cap, population): (usize, usize),
        seed: u64,
    ) -> (Vec<usize>, Decision, PrecisionReport) {
        let mut rounds = Rounds::new(w, cap, Some(population));
        let outcomes: Vec<bool> = draws(p, seed).take(cap).collect();
        let mut released = Vec::new();
        let mut done = 0;
        loop {
            match rounds.decide() {
                Decision::Release(to) => {
                    released.push(to);
                    // The round's results come in reverse order: the
                    // sequence still reads them in row order.
                    for row in (done..to).rev() {
                        rounds.row_final(row, Some(outcomes[row]));
                    }
                    done = to;
                }
                end => return (released, end, rounds.report()),
            }
        }
    }

    #[test]
    fn rounds_grow_stop_once_narrow_and_never_pass_the_cap() {
        // A good model: settled by the first round.
        let (released, end, report) = play(0.92, 0.05, (20_000, 20_000), 1);
        assert_eq!((released.as_slice(), end), (&[385][..], Decision::Stop));
        assert!(report.half_width <= 0.05);
        assert_eq!(report.stop_reason.as_deref(), Some("precision reached"));

        // A coin: more rounds, each larger, stopped well before the cap.
        let (released, end, report) = play(0.5, 0.05, (20_000, 20_000), 2);
        assert_eq!(end, Decision::Stop);
        assert!(released.len() >= 2, "{released:?}");
        assert!(
            released
                .windows(2)
                .all(|w| w[1] as f64 >= w[0] as f64 * MIN_GROWTH),
            "{released:?}"
        );
        assert!(*released.last().unwrap() < 2_000, "{released:?}");
        assert!(report.half_width <= 0.05 && report.rows <= 2_000);

        // A sample too small for ±0.01 (3,000 of 300,000 rows): the rounds
        // end at the cap, not narrow.
        let (released, end, report) = play(0.5, 0.01, (3_000, 300_000), 3);
        assert_eq!(end, Decision::Finish);
        assert_eq!(*released.last().unwrap(), 3_000);
        assert!(released.iter().all(|&r| r <= 3_000));
        assert_eq!(report.stop_reason, None);
        assert_eq!(report.rows, 3_000);
    }

    #[test]
    fn an_open_row_is_deferred_to_a_later_round_and_failures_are_skipped() {
        let mut rounds = Rounds::new(0.05, 10_000, None);
        assert_eq!(rounds.decide(), Decision::Release(385));
        // Row 0 waits for a retry; row 1 failed; the rest alternate.
        rounds.row_final(1, None);
        for row in 2..385 {
            rounds.row_final(row, Some(row % 2 == 0));
        }
        let Decision::Release(next) = rounds.decide() else {
            panic!("a coin is not settled in 383 rows")
        };
        assert!(next >= 578, "at least half as many again: {next}");
        assert_eq!(rounds.report().rows, 383, "row 0 deferred, row 1 failed");
        rounds.row_final(0, Some(true));
        rounds.settle();
        assert_eq!(rounds.report().rows, 384, "row 0 fed once it is final");
    }

    /// The rounds and rows of runs over 1,000,000 rows (51 seeded streams
    /// each), beside the rows the sequence takes checked after every row: the
    /// table in `docs/batch-api.md`. `cargo test --release -p shadow-core --lib
    /// batch::rounds::tests::rounds_table -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement: prints the table of docs/batch-api.md"]
    fn rounds_table() {
        println!("| ±w | agreement | rounds (median, most) | rows sent (median) | rows the sequence takes (median) | sent / taken |");
        println!("|---|---|---|---|---|---|");
        for w in [0.05, 0.02, 0.01] {
            for p in [0.5, 0.7, 0.8, 0.9, 0.95, 0.98] {
                let mut rounds = Vec::new();
                let mut sent = Vec::new();
                let mut taken = Vec::new();
                for seed in 0..51 {
                    let (released, end, _) = play(p, w, (1_000_000, 1_000_000), seed);
                    assert_eq!(end, Decision::Stop);
                    rounds.push(released.len());
                    sent.push(*released.last().unwrap());
                    taken.push(rows_to_reach(p, w, seed) as usize);
                }
                let median = |v: &mut Vec<usize>| {
                    v.sort_unstable();
                    v[v.len() / 2]
                };
                let most = *rounds.iter().max().unwrap();
                let (r, s, t) = (median(&mut rounds), median(&mut sent), median(&mut taken));
                println!(
                    "| {w} | {p} | {r}, {most} | {s} | {t} | {:.2} |",
                    s as f64 / t as f64
                );
            }
        }
    }
}
