//! An estimate in words, the same for every host (no host's flag names: a host
//! adds its own hints after these lines).

use crate::cost::PriceSource;
use crate::time::format_duration;

use super::{Estimate, Limit};

/// Labels named on the labels line before "and N more".
const LABELS_SHOWN: usize = 8;

/// The estimate as `(name, value)` lines, in the order a reader wants them.
pub fn describe(e: &Estimate) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    let defects = match e.defects {
        0 => String::new(),
        n => format!(" ({} with a defect: not sent)", count(n)),
    };
    match &e.sample {
        Some(sample) => lines.push((
            "Rows",
            format!(
                "{} sampled of {} (seed {}){defects}: the figures below are the sample's",
                count(sample.rows),
                count(sample.csv_rows),
                sample.seed
            ),
        )),
        None => lines.push(("Rows", format!("{}{defects}", count(e.rows)))),
    }
    let mut labels = e
        .labels
        .iter()
        .take(LABELS_SHOWN)
        .map(|l| format!("{} ({})", l.label, count(l.rows)))
        .collect::<Vec<_>>()
        .join(" · ");
    if e.labels.len() > LABELS_SHOWN {
        labels += &format!(" and {} more", e.labels.len() - LABELS_SHOWN);
    }
    lines.push(("Labels", format!("{}: {labels}", e.labels.len())));
    let i = &e.images;
    let mut images = format!("{} found", count(i.found));
    for (n, what) in [
        (i.missing, "missing"),
        (i.outside, "outside the CSV's folder"),
        (i.urls, "URLs (not fetched)"),
    ] {
        if n > 0 {
            images += &format!(" · {} {what}", count(n));
        }
    }
    lines.push(("Images", images));
    for example in &i.examples {
        lines.push(("", format!("e.g. {example}")));
    }
    if let (Some(lo), Some(hi)) = (i.smallest, i.largest) {
        let range = if lo == hi {
            format!("{}x{}", lo.0, lo.1)
        } else {
            format!("{}x{} to {}x{}", lo.0, lo.1, hi.0, hi.1)
        };
        lines.push((
            "Image sizes",
            format!("{range} (read from {} images)", count(i.measured)),
        ));
    }
    let t = &e.tokens;
    let image = if t.measured_images > 0 {
        "image, by the provider's formula"
    } else {
        "image, a typical photo's: sizes unknown"
    };
    lines.push((
        "Per request",
        format!(
            "{} prompt tokens ({} {image}; {} text){}",
            count(t.prompt.round() as usize),
            count(t.image.round() as usize),
            count(t.text as usize),
            match t.max_output {
                0 => " + the answer (no cap sent)".to_string(),
                n => format!(" + at most {} answer tokens", count(n as usize)),
            }
        ),
    ));
    lines.push(("Requests", count(e.requests)));
    lines.push(("Cost", cost(e)));
    if let Some(limits) = &e.endpoint_limits {
        lines.push(("Endpoint limits", endpoint_limits(limits)));
    }
    lines.push(("Time", time(e)));
    if let Some(stop) = &e.until_interval {
        lines.push(("Until interval", until(e, stop)));
    }
    lines.push(("Enough rows", enough_rows(e)));
    lines
}

fn cost(e: &Estimate) -> String {
    let Some(c) = &e.cost else {
        return "no price known for this model".into();
    };
    let p = &c.price;
    let source = match &p.source {
        PriceSource::Given => "the price given".to_string(),
        PriceSource::ListPrice { model, checked } => {
            format!("{model}'s list price, checked {checked}")
        }
    };
    let (first, second) = if e.via_batch_api {
        (
            format!("{} through the provider's batch API", usd(c.batch_api_usd)),
            format!("{} live", usd(c.live_usd)),
        )
    } else {
        (
            format!("{} live", usd(c.live_usd)),
            format!("{} through the provider's batch API", usd(c.batch_api_usd)),
        )
    };
    format!(
        "at most {first} ({second}), at ${}/${} per million input/output tokens ({source})",
        p.price.input_per_million, p.price.output_per_million
    )
}

fn time(e: &Estimate) -> String {
    if e.via_batch_api {
        return "the provider's batch engine sets the pace (results within its 24-hour window)"
            .into();
    }
    let Some(t) = &e.time else {
        return "no pace known: the endpoint's own limits will set it".into();
    };
    let what = match t.limited_by {
        Limit::RequestsPerMinute => "requests-per-minute",
        Limit::TokensPerMinute => "tokens-per-minute",
        Limit::InputTokensPerMinute => "input-tokens-per-minute",
        Limit::OutputTokensPerMinute => "output-tokens-per-minute",
    };
    let cap = if t.from_endpoint {
        format!("the endpoint's {what} limit")
    } else {
        format!("the {what} cap")
    };
    format!(
        "about {} at {} requests a minute ({cap})",
        format_duration((t.minutes * 60_000.0).round() as u64),
        trim(t.requests_per_minute)
    )
}

fn endpoint_limits(limits: &super::EndpointLimits) -> String {
    let stated: Vec<String> = [
        (limits.requests_per_minute, "requests"),
        (limits.tokens_per_minute, "tokens"),
        (limits.input_tokens_per_minute, "input tokens"),
        (limits.output_tokens_per_minute, "output tokens"),
    ]
    .iter()
    .filter_map(|(n, what)| n.map(|n| format!("{} {what}", count(n as usize))))
    .collect();
    if stated.is_empty() {
        return "the endpoint's answer stated no limit (no x-ratelimit-limit-* or anthropic-ratelimit-*-limit header; Azure sends remaining counts only)".into();
    }
    format!(
        "{} a minute (read from {})",
        stated.join(", "),
        limits.read_from.join(", ")
    )
}

/// Where a run that stops at a target interval will likely stop: the rows at a
/// few agreements, and the cost and time over that range.
fn until(e: &Estimate, stop: &super::StopEstimate) -> String {
    let points = stop.half_width * 100.0;
    let width = format!(
        "±{} point{}",
        trim(points),
        if points == 1.0 { "" } else { "s" }
    );
    let mut text = if stop.at.iter().all(|s| s.every_row) {
        format!(
            "{width}: not before every row is sent ({}), at any of {} agreement",
            count(stop.rows_range().1),
            stop.at
                .iter()
                .map(|s| format!("{}%", trim(s.agreement * 100.0)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        let rows_at = |s: &super::StopAt| {
            if s.every_row {
                format!("every row, {}", count(s.rows))
            } else {
                count(s.rows)
            }
        };
        let others = stop
            .at
            .iter()
            .filter(|s| s.agreement != 0.9)
            .map(|s| format!("{} at {}%", rows_at(s), trim(s.agreement * 100.0)))
            .collect::<Vec<_>>()
            .join(", ");
        match stop.at(0.9) {
            Some(s) => format!(
                "{width} after about {} requests at 90% agreement ({others})",
                rows_at(s)
            ),
            None => format!("{width} after about {others}"),
        }
    };
    let range = |values: &[f64]| {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    };
    let span = |(lo, hi): (f64, f64), show: &dyn Fn(f64) -> String| {
        if show(lo) == show(hi) {
            show(lo)
        } else {
            format!("{} to {}", show(lo), show(hi))
        }
    };
    let costs: Option<Vec<f64>> = stop
        .at
        .iter()
        .map(|s| {
            if e.via_batch_api {
                s.batch_api_usd
            } else {
                s.live_usd
            }
        })
        .collect();
    if let Some(costs) = costs.filter(|c| !c.is_empty()) {
        let how = if e.via_batch_api {
            "through the provider's batch API"
        } else {
            "live"
        };
        text += &format!("; at most {} {how}", span(range(&costs), &usd));
    }
    let minutes: Option<Vec<f64>> = stop.at.iter().map(|s| s.minutes).collect();
    if let Some(minutes) = minutes.filter(|m| !m.is_empty() && !e.via_batch_api) {
        let show = |m: f64| format_duration((m * 60_000.0).round() as u64);
        text += &format!(", {}", span(range(&minutes), &show));
    }
    text
}

fn enough_rows(e: &Estimate) -> String {
    let at = |agreement: f64| {
        e.rows_for_interval
            .iter()
            .filter(|r| r.agreement == agreement)
            .collect::<Vec<_>>()
    };
    let phrase = |rows: &[&super::RowsNeeded]| {
        rows.iter()
            .map(|r| format!("±{}: {}", trim(r.half_width * 100.0), count(r.rows)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let at90 = at(0.9);
    let Some((first, rest)) = at90.split_first() else {
        return String::new();
    };
    format!(
        "±{} point at 90% agreement needs about {} rows in random order; {} (at 50% agreement {})",
        trim(first.half_width * 100.0),
        count(first.rows),
        phrase(rest),
        phrase(&at(0.5))
    )
}

/// `1234567` as `1,234,567`.
pub(crate) fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Dollars: whole above $100, cents above $1, four decimals below.
fn usd(x: f64) -> String {
    if x >= 100.0 {
        format!("${}", count(x.round() as usize))
    } else if x >= 1.0 {
        format!("${x:.2}")
    } else {
        format!("${x:.4}")
    }
}

/// A number without a needless `.0`.
fn trim(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}
