//! Every provider's answer parser and the error-body reader (seeds:
//! core/tests/fuzz-corpus/answers): a label of the set or a typed error of
//! bounded size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shadow_core::input::LabelSet;
use shadow_core::provider::{parse_api_error, HttpJsonConfig, ImageDetail, OpenAiConfig, Provider};

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data);
    let labels = LabelSet::from_labels(["cat", "dog", "3"]);
    let mut providers = vec![Provider::OpenAi(OpenAiConfig {
        base_url: "http://127.0.0.1:1/v1".into(),
        model: "m".into(),
        detail: ImageDetail::Low,
        prompt: None,
    })];
    for path in [
        "prediction",
        "",
        "result.label",
        "choices.0.label",
        "error.message",
    ] {
        providers.push(Provider::HttpJson(HttpJsonConfig {
            url: "http://127.0.0.1:1/predict".into(),
            prediction_field: path.into(),
        }));
    }
    for provider in &providers {
        match provider.parse_answer(&body, &labels) {
            Ok(answer) => assert!(answer.label < labels.len()),
            Err(e) => assert!(e.to_string().len() <= 4096, "{e}"),
        }
    }
    if let Some(api) = parse_api_error(&body) {
        assert!(api.to_string().len() <= 4096);
    }
});
