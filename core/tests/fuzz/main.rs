//! Fuzz targets for every parser that reads outside input: the labels CSV, each
//! provider's answer parser (and error bodies), the rate-limit headers, the results
//! journal fold (with the resume that follows it) and the saved run a resume reads;
//! and the engine fed any endpoint behaviour (`responses`).
//!
//! Property-based (proptest), so they run on the stable toolchain with the rest of
//! the tests: `cargo test -p shadow-core --test fuzz`. Each target draws its input
//! three ways: arbitrary bytes, a structure-aware generator (CSV with quotes, BOMs
//! and CRLFs; JSON near the provider shapes; header values near real ones), and a
//! seed file of `tests/fuzz-corpus/<target>/` mutated byte-wise (flips, inserts,
//! deletes, duplicated runs, dictionary tokens, splices with another seed). Every
//! seed also runs as it is. The properties: no panic; every input is parsed or
//! rejected with a typed error; what comes out is bounded by what went in (rows by
//! lines, error texts by a constant or the input's length).
//!
//! Case counts are sized for CI (the whole binary in well under a minute in a debug
//! build) and the seed is fixed, so the suite is deterministic. `PROPTEST_CASES`
//! and `PROPTEST_RNG_SEED` override both: `scripts/fuzz.sh` runs long, with fresh
//! seeds. A failure is shrunk, printed, and its seed saved under
//! `tests/proptest-regressions/`, where it runs first from then on.

mod answers;
mod corpus;
mod csv;
mod journal;
mod ratelimit;
mod responses;
mod saved_run;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use shadow_core::report::Summary;
use shadow_core::{Input, ItemDone, Millis, Output, Run, SendOrder};

/// The seed of CI runs; `PROPTEST_RNG_SEED` replaces it.
const CI_SEED: u64 = 0x5EED_F022;

/// The proptest settings of a target: `ci_cases` cases and a fixed seed, unless
/// the environment says otherwise.
pub fn config(ci_cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = ci_cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(CI_SEED);
    }
    config
}

/// Drives `run` from `now` to its end, in at most 10 000 steps: each item done
/// goes to `item_done`, the summary to `finished` (then rendered for the console
/// and as JSON), each order is answered by `answer`, the latest first, `step_ms`
/// after the one before, and the clock jumps to the run's next timer when nothing
/// is pending. Fails when the run waits for nothing or does not finish.
pub fn drive_to_end(
    run: &mut Run,
    mut now: Millis,
    step_ms: u64,
    mut item_done: impl FnMut(&Run, ItemDone) -> Result<(), TestCaseError>,
    finished: impl FnOnce(&Summary) -> Result<(), TestCaseError>,
    mut answer: impl FnMut(&Run, SendOrder) -> Input,
) -> Result<(), TestCaseError> {
    let mut pending = Vec::new();
    for _ in 0..10_000 {
        while let Some(output) = run.poll(now) {
            match output {
                Output::Send(order) => pending.push(order),
                Output::NeedRows { .. } => prop_assert!(false, "a whole-CSV run asked for rows"),
                Output::ItemDone(done) => item_done(run, done)?,
                Output::BatchReport { .. } => {
                    serde_json::to_string(&run.progress(now)).unwrap();
                }
                Output::Finished { summary } => {
                    finished(&summary)?;
                    summary.to_console(20);
                    serde_json::to_string(&summary).unwrap();
                    return Ok(());
                }
            }
        }
        if let Some(order) = pending.pop() {
            now = now.plus(step_ms);
            let input = answer(run, order);
            run.handle(now, input).expect("a ticket the run issued");
        } else if let Some(at) = run.poll_timeout() {
            now = now.max(at);
        } else {
            prop_assert!(false, "the run waits for nothing and does not finish");
        }
    }
    prop_assert!(false, "the run did not finish in 10 000 steps");
    Ok(())
}

/// An error's message is bounded by what was read: at most 512 bytes plus
/// `per_byte` for each byte of `input`.
pub fn check_error_size(
    error: &impl std::fmt::Display,
    input: &[u8],
    per_byte: usize,
) -> Result<(), TestCaseError> {
    let msg = error.to_string();
    prop_assert!(
        msg.len() <= 512 + per_byte * input.len(),
        "error message of {} bytes for {} bytes of input",
        msg.len(),
        input.len()
    );
    Ok(())
}
