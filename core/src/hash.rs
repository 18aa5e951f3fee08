//! Stable mixing functions: the same on every platform and every run (unlike std's
//! `RandomState`). The core's backoff jitter and the mock endpoint's seeded answers
//! and faults both draw from these, so they live once.

/// The splitmix64 finalizer alone: a bijection that spreads every input bit over
/// the output.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64: the golden-ratio increment, then [`mix64`].
pub fn splitmix64(x: u64) -> u64 {
    mix64(x.wrapping_add(0x9e37_79b9_7f4a_7c15))
}

/// The top 53 bits of `x` as a uniform number in `[0, 1)`.
pub fn unit_interval(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // Vigna's splitmix64 with state 0: the first output of the generator.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_ne!(mix64(1), mix64(2));
        assert!(unit_interval(u64::MAX) < 1.0);
    }
}
