//! Target `ratelimit`: the rate-limit header parser (`RateLimitHeaders::parse`) and
//! the value parsers under it (`parse_http_date`, `parse_go_duration`, and
//! `parse_iso8601`, which reads the times of journals and saved runs). A seed is a
//! header block, one `name: value` per line.

use proptest::collection::vec;
use proptest::prelude::*;
use shadow_core::http::HttpResponse;
use shadow_core::ratelimit::RateLimitHeaders;
use shadow_core::time::{parse_go_duration, parse_http_date, parse_iso8601, parse_rfc3339};
use shadow_core::Millis;

use crate::corpus::{self, Bytes};

const TARGET: &str = "ratelimit";

/// 2025-01-24T10:30:00Z, a time the tests of the core use too.
const NOW: Millis = Millis(1_737_714_600_000);

/// A header block as (name, value) pairs: `name: value` per line.
fn headers_of(block: &str) -> Vec<(String, String)> {
    block
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn parse(headers: &[(String, String)], now: Millis) -> RateLimitHeaders {
    let response = HttpResponse {
        status: 429,
        headers: headers.to_vec(),
        body: String::new(),
    };
    RateLimitHeaders::parse(&response, now)
}

/// What must hold for any headers: no panic, and nothing read from a header that
/// was not there.
fn check(headers: &[(String, String)], now: Millis) -> Result<(), TestCaseError> {
    let h = parse(headers, now);
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    prop_assert!(h.retry_after_ms.is_none() || has("retry-after") || has("retry-after-ms"));
    // A window's field is read only from OpenAI's or Anthropic's header for it.
    let from = |window: &str, field: &str| {
        has(&format!("x-ratelimit-{field}-{window}"))
            || has(&format!("anthropic-ratelimit-{window}-{field}"))
    };
    for (window, w) in [
        ("requests", h.requests),
        ("tokens", h.tokens),
        ("input-tokens", h.input_tokens),
        ("output-tokens", h.output_tokens),
    ] {
        prop_assert!(w.limit.is_none() || from(window, "limit"));
        prop_assert!(w.remaining.is_none() || from(window, "remaining"));
        prop_assert!(w.reset_ms.is_none() || from(window, "reset"));
    }
    prop_assert!(h.should_retry.is_none() || has("x-should-retry"));
    let pause = h.exhausted_for_ms();
    prop_assert!(
        pause == 0
            || [h.requests, h.tokens, h.input_tokens, h.output_tokens]
                .iter()
                .any(|w| w.remaining == Some(0) && w.reset_ms == Some(pause))
    );
    for (_, value) in headers {
        parse_http_date(value);
        parse_go_duration(value);
        parse_rfc3339(value);
        if let Some(t) = parse_iso8601(value.trim()) {
            // What it reads, it writes back the same way (to the millisecond).
            prop_assert_eq!(parse_iso8601(&t.to_iso8601()), Some(t));
        }
    }
    Ok(())
}

/// An IMF-fixdate of `t` (whole seconds), built from its ISO form.
fn http_date(t: Millis) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let iso = t.to_iso8601(); // 2025-01-24T10:30:00.000Z
    let month: usize = iso[5..7].parse().unwrap();
    format!(
        "Fri, {} {} {} {} GMT",
        &iso[8..10],
        MONTHS[month - 1],
        &iso[0..4],
        &iso[11..19]
    )
}

/// A value for one of the header names: real forms and their edges.
pub(crate) fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0u64..100_000).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => Just("18446744073709551616".to_owned()),
        1 => "-?[0-9]{0,4}\\.?[0-9]{0,4}(e[+-]?[0-9]{1,3})?",
        1 => prop::sample::select(vec!["NaN", "inf", "-inf", "infinity", "-0", "1e309", "true", "FALSE", " True ", ""]).prop_map(str::to_owned),
        2 => go_duration_text(),
        2 => date_text(),
        1 => "\\PC{0,16}",
    ]
}

/// Go-style durations, well and badly formed.
fn go_duration_text() -> impl Strategy<Value = String> {
    let unit = prop::sample::select(vec![
        "h", "m", "s", "ms", "us", "\u{b5}s", "ns", "", "x", "\u{b5}",
    ]);
    let number = prop_oneof![
        "[0-9]{1,4}",
        "[0-9]{0,3}\\.[0-9]{0,3}",
        "[0-9]{20,400}",
        Just(".".to_owned())
    ];
    vec((number, unit), 1..5)
        .prop_map(|parts| parts.into_iter().map(|(n, u)| format!("{n}{u}")).collect())
}

/// HTTP dates whose fields run from fine to absurd.
fn date_text() -> impl Strategy<Value = String> {
    let int = prop_oneof![
        4 => (0i64..100).prop_map(|n| n.to_string()),
        2 => (1900i64..3000).prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => Just(i64::MAX.to_string()),
        1 => Just(i64::MIN.to_string()),
        1 => Just(u64::MAX.to_string()),
    ];
    let month = prop::sample::select(vec!["Jan", "Feb", "Mar", "Dec", "jan", "Foo"]);
    (
        int.clone(),
        month,
        int.clone(),
        int.clone(),
        int.clone(),
        int,
        any::<bool>(),
    )
        .prop_map(|(day, month, year, h, m, s, gmt)| {
            format!(
                "Sun, {day} {month} {year} {h}:{m}:{s} {}",
                if gmt { "GMT" } else { "UTC" }
            )
        })
}

/// A header name as endpoints spell it: any case, sometimes padded.
pub(crate) fn name() -> impl Strategy<Value = String> {
    (
        prop::sample::select(
            // Every name the parser reads, and one it does not.
            RateLimitHeaders::NAMES
                .iter()
                .copied()
                .chain(["content-type"])
                .collect::<Vec<_>>(),
        ),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(n, upper, pad)| {
            let n = if upper {
                n.to_ascii_uppercase()
            } else {
                n.to_owned()
            };
            if pad {
                format!(" {n}")
            } else {
                n
            }
        })
}

fn header_block() -> impl Strategy<Value = Bytes> {
    vec((name(), " {0,2}", value(), " {0,2}"), 0..8).prop_map(|hs| {
        Bytes(
            hs.into_iter()
                .map(|(n, a, v, b)| format!("{n}:{a}{v}{b}\n"))
                .collect::<String>()
                .into_bytes(),
        )
    })
}

fn now() -> impl Strategy<Value = Millis> {
    prop_oneof![
        4 => Just(NOW),
        1 => Just(Millis(0)),
        1 => Just(Millis(u64::MAX)),
        2 => any::<u64>().prop_map(Millis),
    ]
}

#[test]
fn seeds_as_they_are() {
    for (name, seed) in corpus::seeds(TARGET) {
        if let Err(e) = check(&headers_of(&seed.text()), NOW) {
            panic!("seed {name}: {e}");
        }
    }
}

proptest! {
    #![proptest_config(crate::config(3000))]

    #[test]
    fn any_headers(
        block in prop_oneof![2 => corpus::noise(), 4 => header_block(), 4 => corpus::mutated(TARGET)],
        now in now(),
    ) {
        check(&headers_of(&block.text()), now)?;
    }
}

proptest! {
    #![proptest_config(crate::config(3000))]

    /// Values whose meaning is known are read as meant.
    #[test]
    fn known_values_are_read_as_meant(
        secs in 0u64..1_000_000,
        ms in 0.0f64..1e9,
        date in 0u64..253_402_300_799_000, // up to 9999-12-31
        parts in vec((0u64..100_000, prop::sample::select(vec![("h", 3_600_000_000u64), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1_000), ("us", 1), ("\u{b5}s", 1)])), 1..5),
        remaining in any::<u64>(),
        upper in any::<bool>(),
    ) {
        let case = |n: &str| if upper { n.to_ascii_uppercase() } else { n.to_owned() };
        let one = |n: &str, v: String| parse(&[(case(n), v)], NOW);
        prop_assert_eq!(one("retry-after", secs.to_string()).retry_after_ms, Some(secs * 1000));
        prop_assert_eq!(one("retry-after-ms", format!(" {ms} ")).retry_after_ms, Some(ms.ceil() as u64));
        let at = Millis(date - date % 1000);
        prop_assert_eq!(parse_http_date(&http_date(at)), Some(at));
        prop_assert_eq!(one("retry-after", http_date(at)).retry_after_ms, Some(at.since(NOW)));
        let text: String = parts.iter().map(|(v, (u, _))| format!("{v}{u}")).collect();
        let total_us: u64 = parts.iter().map(|(v, (_, f))| v * f).sum();
        let expected = total_us.div_ceil(1000);
        prop_assert_eq!(parse_go_duration(&text), Some(expected), "{}", text);
        let h = parse(&[
            (case("x-ratelimit-remaining-requests"), remaining.to_string()),
            (case("x-ratelimit-reset-requests"), text.clone()),
            (case("x-should-retry"), case("false")),
        ], NOW);
        prop_assert_eq!(h.requests.remaining, Some(remaining));
        prop_assert_eq!(h.should_retry, Some(false));
        prop_assert_eq!(h.exhausted_for_ms(), if remaining == 0 { expected } else { 0 });
    }
}
