use super::*;
use crate::cost::Price;
use crate::input::{parse_labels_csv, ColumnNames};
use crate::provider::{ImageDetail, OpenAiConfig};

/// Rows for a 95% interval, against statsmodels 0.14
/// (`statsmodels.stats.proportion.samplesize_confint_proportion`, which is
/// `z² p (1 - p) / w²` unrounded):
///
/// ```python
/// from statsmodels.stats.proportion import samplesize_confint_proportion as s
/// import math
/// s(0.9, 0.01)  # 3457.3129386247138
/// s(0.9, 0.02)  # 864.3282346561784
/// s(0.5, 0.01)  # 9603.647051735317
/// s(0.9, 0.05)  # 138.29251754498853
/// n0 = s(0.9, 0.01)
/// math.ceil(n0 / (1 + (n0 - 1) / 10_000))     # 2570 (Cochran's correction)
/// math.ceil(n0 / (1 + (n0 - 1) / 1_000_000))  # 3446
/// ```
#[test]
fn rows_for_an_interval_match_statsmodels_and_cochrans_correction() {
    assert_eq!(rows_for_interval(0.9, 0.01, None), 3_458);
    assert_eq!(rows_for_interval(0.9, 0.02, None), 865);
    assert_eq!(rows_for_interval(0.5, 0.01, None), 9_604);
    assert_eq!(rows_for_interval(0.9, 0.05, None), 139);
    assert_eq!(rows_for_interval(0.9, 0.01, Some(10_000)), 2_570);
    assert_eq!(rows_for_interval(0.9, 0.01, Some(1_000_000)), 3_446);
    // A small CSV: math.ceil(s(0.5, 0.01) / (1 + (s(0.5, 0.01) - 1) / 300)) = 291.
    assert_eq!(rows_for_interval(0.5, 0.01, Some(300)), 291);
    assert_eq!(rows_for_interval(0.5, 0.01, Some(1)), 1);
}

fn csv(rows: usize) -> crate::input::LabelsCsv {
    let mut text = String::from("image,label\n");
    for i in 0..rows {
        text.push_str(&format!("images/{i}.png,{}\n", ["cat", "dog"][i % 3 / 2]));
    }
    text.push_str(",cat\n"); // a defect: no image
    parse_labels_csv(&text, &ColumnNames::default()).unwrap()
}

fn default_openai() -> OpenAiConfig {
    match RunConfig::default().provider {
        Provider::OpenAi(openai) => openai,
        other => panic!("the default provider is OpenAI, not {other:?}"),
    }
}

fn config(model: &str, detail: ImageDetail) -> RunConfig {
    RunConfig {
        provider: Provider::OpenAi(OpenAiConfig {
            model: model.into(),
            detail,
            ..default_openai()
        }),
        ..RunConfig::default()
    }
}

/// Every figure of a survey over 3,000 rows of 1024 x 1024 images (one
/// missing, one outside, one URL, one defect) for gpt-4o at high detail,
/// worked out by hand from the published formula (765 tokens an image) and
/// the given price and caps.
#[test]
fn an_estimate_adds_up_from_the_formula_the_price_and_the_caps() {
    let csv = csv(3_000);
    let mut cfg = config("gpt-4o", ImageDetail::High);
    cfg.price = Some(Price {
        input_per_million: 2.0,
        output_per_million: 8.0,
    });
    cfg.rpm = Some(500);
    cfg.tpm = Some(300_000);
    let mut survey = Survey::new(&cfg, &csv.outline);
    let mut asked = 0;
    for item in &csv.items {
        let check = match item.row {
            _ if item.defect.is_some() => None,
            7 => Some(ImageCheck::Missing {
                why: "line 9: images/7.png: no such file".into(),
            }),
            8 => Some(ImageCheck::Outside { why: "x".into() }),
            9 => Some(ImageCheck::Url),
            row => {
                let measured = survey.measures(row);
                asked += usize::from(measured);
                Some(ImageCheck::Found {
                    size: measured.then_some((1024, 1024)),
                })
            }
        };
        survey.record(item, check);
    }
    // A uniform sample of about SIZE_SAMPLE rows (2,000 of 3,000 here).
    assert!((1_850..=2_150).contains(&asked), "{asked}");
    let e = survey.finish();
    assert_eq!((e.rows, e.defects, e.requests), (3_001, 1, 2_998));
    assert_eq!(
        (
            e.images.found,
            e.images.missing,
            e.images.outside,
            e.images.urls
        ),
        (2_997, 1, 1, 1)
    );
    assert_eq!(e.images.measured, asked);
    assert_eq!(
        e.labels[0],
        LabelRows {
            label: "cat".into(),
            rows: 2_000
        }
    );
    assert_eq!(e.labels[1].rows, 1_000);
    let text = cfg.provider.text_tokens(&csv.outline.labels);
    assert_eq!(e.tokens.image, 765.0);
    assert_eq!(e.tokens.prompt, 765.0 + text as f64);
    let max_output = cfg.provider.token_charge(&csv.outline.labels).max_output;
    assert_eq!(e.tokens.max_output, max_output);
    let charge = 765.0 + (text + max_output) as f64;
    assert_eq!(e.tokens.charge, charge);
    // $2 and $8 a million tokens over 2,998 requests (URL rows are sent); half through batches.
    let live = 2_998.0 * ((765 + text) as f64 * 2.0 + max_output as f64 * 8.0) / 1e6;
    let cost = e.cost.as_ref().unwrap();
    assert_eq!(cost.live_usd, (live * 1e6).round() / 1e6);
    assert_eq!(cost.batch_api_usd, (live / 2.0 * 1e6).round() / 1e6);
    // 300,000 tokens a minute over ~900 a request is fewer than 500 requests.
    let t = e.time.as_ref().unwrap();
    assert_eq!(t.limited_by, Limit::TokensPerMinute);
    assert_eq!(t.requests_per_minute, round1(300_000.0 / charge));
    assert_eq!(
        t.minutes,
        (2_998.0 / (300_000.0 / charge) * 1e3).round() / 1e3
    );
    let lines = describe(&e);
    let line = |name: &str| &lines.iter().find(|(n, _)| *n == name).unwrap().1;
    assert!(
        line("Images").contains("1 missing · 1 outside"),
        "{lines:?}"
    );
    assert!(lines
        .iter()
        .any(|(_, v)| v == "e.g. line 9: images/7.png: no such file"));
    assert_eq!(
        line("Image sizes"),
        &format!("1024x1024 (read from {} images)", text::count(asked))
    );
    assert!(
        line("Cost").starts_with(&format!("at most ${live:.2} live")),
        "{lines:?}"
    );
    assert!(
        line("Time").contains("the tokens-per-minute cap"),
        "{lines:?}"
    );
    // ±1 point at 90% over 2,998 rows, with the correction: fewer than 3,458.
    let needed = rows_for_interval(0.9, 0.01, Some(2_998));
    assert!(line("Enough rows").starts_with(&format!(
        "±1 point at 90% agreement needs about {} rows",
        text::count(needed)
    )));
}

/// With no size read, no price and no cap, the estimate says so rather than
/// guess: the seed charge, no money, no time.
#[test]
fn without_sizes_a_price_or_a_cap_the_estimate_says_what_it_does_not_know() {
    let csv = csv(10);
    let cfg = config("my-local-model", ImageDetail::Low);
    let mut survey = Survey::new(&cfg, &csv.outline);
    for item in &csv.items {
        survey.record(item, Some(ImageCheck::Url));
    }
    let e = survey.finish();
    let seed = cfg.provider.token_charge(&csv.outline.labels);
    assert_eq!(e.tokens.prompt, seed.prompt as f64);
    assert_eq!(e.tokens.measured_images, 0);
    assert_eq!((e.cost.clone(), e.time.clone()), (None, None));
    let lines = describe(&e);
    assert!(lines.contains(&("Cost", "no price known for this model".into())));
    assert!(lines
        .iter()
        .any(|(n, v)| *n == "Time" && v.starts_with("no pace known")));
    // The JSON a page reads.
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["tokens"]["measuredImages"], 0);
    assert_eq!(json["rowsForInterval"][0]["halfWidth"], 0.01);
}

/// gpt-4o-mini's list price applies when none is given, and the seed charge is
/// what the pacing uses: the estimate over unmeasured rows equals it.
#[test]
fn the_list_price_applies_and_the_seed_is_the_pacings_charge() {
    let csv = csv(4);
    let cfg = config("gpt-4o-mini", ImageDetail::Low);
    let mut survey = Survey::new(&cfg, &csv.outline);
    for item in &csv.items {
        let check = item.defect.is_none().then_some(ImageCheck::Found {
            size: Some((64, 64)),
        });
        survey.record(item, check);
    }
    let e = survey.finish();
    let seed = cfg.provider.token_charge(&csv.outline.labels);
    assert_eq!(e.tokens.charge, (seed.prompt + seed.max_output) as f64);
    let cost = e.cost.unwrap();
    assert_eq!(cost.price.price.input_per_million, 0.15);
    assert!(matches!(
        cost.price.source,
        crate::cost::PriceSource::ListPrice { .. }
    ));
}

/// A sample's survey counts only the sample's rows (the host records only
/// them) and says it is a sample; `until_interval` adds the likely stop at
/// 50%, 90% and 97% agreement, capped at the rows that would be sent, each
/// priced and timed at the same per-request figures as the whole.
#[test]
fn a_sample_and_an_interval_target_price_what_the_run_would_send() {
    let whole = csv(3_000);
    let mut cfg = config("gpt-4o-mini", ImageDetail::Low);
    cfg.rpm = Some(600);
    cfg.until_interval = Some(0.05);
    let sample = crate::sample::Sample::draw(&whole, 7, 1_000, false, None).unwrap();
    cfg.sample = Some(sample.clone());
    let sampled = sample.take(whole);
    let mut survey = Survey::new(&cfg, &sampled.outline);
    for item in &sampled.items {
        let check = item.defect.is_none().then_some(ImageCheck::Found {
            size: Some((64, 64)),
        });
        survey.record(item, check);
    }
    let e = survey.finish();
    assert_eq!(e.rows, 1_000);
    let defects = sampled.items.iter().filter(|i| i.defect.is_some()).count();
    assert_eq!(e.requests, 1_000 - defects);
    assert_eq!(
        e.sample,
        Some(SampleOf {
            rows: 1_000,
            csv_rows: 3_001,
            seed: 7
        })
    );
    // "Enough rows" counts against the CSV the sample estimates, not the sample.
    for needed in &e.rows_for_interval {
        assert_eq!(
            needed.rows,
            rows_for_interval(needed.agreement, needed.half_width, Some(3_001))
        );
    }
    assert!(e.rows_for_interval.iter().any(|n| n.rows > 1_000));
    let cost = e.cost.clone().unwrap();
    let time = e.time.clone().unwrap();
    let stop = e.until_interval.clone().unwrap();
    assert_eq!(stop.half_width, 0.05);
    let agreements: Vec<f64> = stop.at.iter().map(|s| s.agreement).collect();
    assert_eq!(agreements, [0.5, 0.9, 0.97]);
    for s in &stop.at {
        // The population is the CSV's, as in the run's sequence.
        let expected = stop::rows_at_stop(s.agreement, 0.05, Some(3_001), 50, e.requests);
        assert_eq!(s.rows, expected);
        assert!(s.rows <= e.requests && s.rows > 0);
        let share = s.rows as f64 / e.requests as f64;
        assert!((s.live_usd.unwrap() - cost.live_usd * share).abs() < 1e-6);
        assert!((s.batch_api_usd.unwrap() - cost.batch_api_usd * share).abs() < 1e-6);
        assert!((s.minutes.unwrap() - s.rows as f64 / 600.0).abs() < 1e-3);
    }
    // Fewer rows the higher the agreement (a narrower interval), all below the sample.
    assert!(stop.at[0].rows > stop.at[1].rows && stop.at[1].rows > stop.at[2].rows);
    assert!(!stop.at[0].every_row);
    let lines = describe(&e);
    let line = |name: &str| lines.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    assert!(line("Rows").starts_with("1,000 sampled of 3,001 (seed 7)"));
    let until = line("Until interval");
    assert!(
        until.starts_with(&format!(
            "±5 points after about {} requests at 90% agreement",
            text::count(stop.at[1].rows)
        )),
        "{until}"
    );
    assert!(until.contains(&format!("{} at 50%", text::count(stop.at[0].rows))));
    assert!(time.requests_per_minute == 600.0 && !time.from_endpoint);

    // A target the rows cannot reach: every row, said so.
    cfg.until_interval = Some(0.001);
    let mut survey = Survey::new(&cfg, &sampled.outline);
    for item in &sampled.items {
        survey.record(item, item.defect.is_none().then_some(ImageCheck::Url));
    }
    let e = survey.finish();
    let stop = e.until_interval.clone().unwrap();
    assert!(stop.at.iter().all(|s| s.every_row && s.rows == e.requests));
    assert!(describe(&e)
        .iter()
        .any(|(n, v)| *n == "Until interval" && v.contains("not before every row is sent")));
}

/// Limits the endpoint stated time the run when slower than its caps: an
/// Anthropic input-token limit is divided by the prompt alone, a requests
/// limit is taken as it is, and the slowest binds.
#[test]
fn the_endpoints_stated_limits_time_the_run_when_slower_than_its_caps() {
    let csv = csv(100);
    let mut cfg = config("gpt-4o", ImageDetail::Low);
    cfg.rpm = Some(1_000);
    let run = |limits: EndpointLimits| {
        let mut survey = Survey::new(&cfg, &csv.outline).with_endpoint_limits(limits);
        for item in &csv.items {
            survey.record(item, item.defect.is_none().then_some(ImageCheck::Url));
        }
        survey.finish()
    };
    let e = run(EndpointLimits {
        requests_per_minute: Some(500),
        ..EndpointLimits::default()
    });
    let t = e.time.clone().unwrap();
    assert_eq!((t.requests_per_minute, t.from_endpoint), (500.0, true));
    assert_eq!(t.limited_by, Limit::RequestsPerMinute);
    assert!(describe(&e)
        .iter()
        .any(|(n, v)| *n == "Time" && v.contains("the endpoint's requests-per-minute limit")));
    let e = run(EndpointLimits {
        requests_per_minute: Some(4_000),
        input_tokens_per_minute: Some(20_000),
        read_from: vec!["anthropic-ratelimit-input-tokens-limit: 20000".into()],
        ..EndpointLimits::default()
    });
    let t = e.time.clone().unwrap();
    assert_eq!(t.limited_by, Limit::InputTokensPerMinute);
    assert_eq!(t.requests_per_minute, round1(20_000.0 / e.tokens.prompt));
    let lines = describe(&e);
    assert!(lines.contains(&(
        "Endpoint limits",
        "4,000 requests, 20,000 input tokens a minute (read from anthropic-ratelimit-input-tokens-limit: 20000)".into()
    )));
    // Limits above the cap: the cap binds.
    let e = run(EndpointLimits {
        requests_per_minute: Some(10_000),
        ..EndpointLimits::default()
    });
    assert!(!e.time.unwrap().from_endpoint);
}
