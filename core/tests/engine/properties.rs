//! Property tests over random settings and random endpoint behaviour. The
//! harness itself asserts the per-event invariants (never more than
//! `concurrency` in flight, no start before a retry-after or within `delay_ms`
//! or an rpm gap, each row final once, reports in order); these tests add the
//! end-of-run ones.

use proptest::prelude::*;
use shadow_core::http::TransportErrorKind;
use shadow_core::report::RunStatus;
use shadow_core::{Millis, RunConfig};

use crate::sim::*;

fn mix(seed: u64, row: usize, attempt: u32) -> u64 {
    let mut z = seed ^ (row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(attempt) << 40;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A random but reproducible endpoint: latency and reply drawn per (row, attempt).
fn chaos(
    seed: u64,
) -> impl FnMut(&shadow_core::input::Item, &shadow_core::SendOrder, Millis) -> (u64, Reply) {
    move |item, order, _| {
        let h = mix(seed, item.row, order.attempt);
        let latency = h % 3_000;
        let reply = match (h >> 16) % 20 {
            0 => status_with(429, &[("retry-after-ms", &((h >> 24) % 5_000).to_string())]),
            1 => status_with(429, &[("retry-after", &((h >> 24) % 4).to_string())]),
            2 => status(429),
            3 => status(500),
            4 => status(400),
            5 => Reply::Transport(TransportErrorKind::Reset),
            6 => Reply::Hang,
            7 => Reply::Body("not json".into()),
            8 => Reply::Status(
                200,
                vec![
                    ("x-ratelimit-remaining-requests", "0".into()),
                    (
                        "x-ratelimit-reset-requests",
                        format!("{}ms", (h >> 24) % 900),
                    ),
                    ("x-ratelimit-limit-requests", "600".into()),
                ],
                completion(&item.label),
            ),
            9 => ok(if h % 2 == 0 { "a" } else { "b" }),
            _ => ok(&item.label),
        };
        (latency, reply)
    }
}

fn any_config() -> impl Strategy<Value = RunConfig> {
    (
        1usize..20,
        1usize..8,
        0u64..400,
        0u32..4,
        prop::option::of(30u32..3000),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(batch_size, concurrency, delay_ms, max_retries, rpm, adaptive, seed)| RunConfig {
                batch_size,
                concurrency: (seed % 2 == 0).then_some(concurrency),
                max_concurrency: concurrency,
                delay_ms,
                max_retries,
                rpm,
                adaptive_concurrency: adaptive,
                seed,
                request_timeout_ms: 10_000,
                ..config()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_item_ends_exactly_once_and_counts_add_up(
        config in any_config(), n in 0usize..120, seed in any::<u64>()
    ) {
        let log = Sim::new(config, csv_of(n, &["a", "b", "c"]), chaos(seed)).finish();
        check_consistency(&log, n);
        let s = log.summary.as_ref().unwrap();
        prop_assert_eq!(s.status, RunStatus::Completed);
        prop_assert_eq!(log.done.len(), n);
        prop_assert_eq!(s.statistics.requests as usize, log.sends.len());
        // Attempts recorded per item match the sends for it.
        for d in &log.done {
            let sent = log.sends.iter().filter(|(_, o)| o.item == d.row).count() as u32;
            prop_assert_eq!(d.attempts, sent);
        }
    }

    #[test]
    fn interrupted_then_resumed_covers_every_row_once(
        config in any_config(), n in 1usize..80, seed in any::<u64>(), cut in 0u64..20_000, grace in 0u64..5_000
    ) {
        let first = Sim::new(RunConfig { cancel_grace_ms: grace, ..config.clone() }, csv_of(n, &["a", "b"]), chaos(seed))
            .cancel_at(Millis(T0.0 + cut))
            .finish();
        check_consistency(&first, n);
        let mut second = Sim::new(config, csv_of(n, &["a", "b"]), chaos(seed ^ 1));
        second.run.restore(first.done.clone()).unwrap();
        let second = second.finish();
        let mut rows: Vec<usize> = first.done.iter().chain(&second.done).map(|d| d.row).collect();
        rows.sort_unstable();
        prop_assert_eq!(rows, (0..n).collect::<Vec<_>>());
        let s = second.summary.unwrap();
        prop_assert_eq!(s.status, RunStatus::Completed);
        prop_assert_eq!(s.statistics.processed, n);
        prop_assert_eq!(s.all_reports.len(), s.total_batches);
    }
}
