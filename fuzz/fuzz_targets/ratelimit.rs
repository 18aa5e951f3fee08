//! The rate-limit header parser and the date and duration parsers under it
//! (seeds: core/tests/fuzz-corpus/ratelimit, one `name: value` per line).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shadow_core::http::HttpResponse;
use shadow_core::ratelimit::RateLimitHeaders;
use shadow_core::time::{parse_go_duration, parse_http_date, parse_iso8601};
use shadow_core::Millis;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let headers: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (_, v) in &headers {
        parse_http_date(v);
        parse_go_duration(v);
        if let Some(t) = parse_iso8601(v.trim()) {
            assert_eq!(parse_iso8601(&t.to_iso8601()), Some(t));
        }
    }
    let response = HttpResponse {
        status: 429,
        headers,
        body: String::new(),
    };
    for now in [Millis(1_737_714_600_000), Millis(0), Millis(u64::MAX)] {
        RateLimitHeaders::parse(&response, now).exhausted_for_ms();
    }
});
