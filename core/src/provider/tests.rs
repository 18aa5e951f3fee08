use super::template::{TemplateBody, DATA_MARK, IMAGE_MARK};
use super::*;
use crate::http::HttpRequest;
use serde_json::{json, Value};

fn labels() -> LabelSet {
    LabelSet::from_labels(["dog", "cat"])
}

fn openai_config() -> OpenAiConfig {
    match openai(ImageDetail::Low, None) {
        Provider::OpenAi(cfg) => cfg,
        _ => unreachable!(),
    }
}

fn openai(detail: ImageDetail, prompt: Option<&str>) -> Provider {
    Provider::OpenAi(OpenAiConfig {
        base_url: "https://api.openai.com/v1/".to_owned(),
        model: "gpt-4o-mini".to_owned(),
        detail,
        prompt: prompt.map(str::to_owned),
    })
}

fn anthropic(prompt: Option<&str>) -> Provider {
    Provider::Anthropic(AnthropicConfig {
        model: "claude-sonnet-4-5".to_owned(),
        prompt: prompt.map(str::to_owned),
        ..AnthropicConfig::default()
    })
}

fn gemini(prompt: Option<&str>) -> Provider {
    Provider::Gemini(GeminiConfig {
        prompt: prompt.map(str::to_owned),
        ..GeminiConfig::default()
    })
}

fn azure(api_version: Option<&str>) -> Provider {
    Provider::Azure(AzureConfig {
        base_url: "https://res.openai.azure.com".to_owned(),
        deployment: "vision-prod".to_owned(),
        api_version: api_version.map(str::to_owned),
        detail: ImageDetail::Low,
        prompt: None,
    })
}

fn http(field: &str) -> Provider {
    Provider::HttpJson(HttpJsonConfig {
        url: "http://localhost:8080/predict".to_owned(),
        prediction_field: field.to_owned(),
    })
}

/// Requests in these tests come from the one builder hosts use: the template.
trait BuildOne {
    fn build_request(&self, input: &RequestInput) -> HttpRequest;
}

impl BuildOne for Provider {
    fn build_request(&self, input: &RequestInput) -> HttpRequest {
        self.request_template(input.labels)
            .build(input.image_url, input.attempt, input.item_id)
    }
}

fn input<'a>(labels: &'a LabelSet, attempt: u32, id: Option<&'a str>) -> RequestInput<'a> {
    RequestInput {
        image_url: "https://example.com/a.png",
        labels,
        attempt,
        item_id: id,
    }
}

#[test]
fn a_template_builds_what_serializing_the_whole_request_builds() {
    let odd_labels = LabelSet::from_labels(["a \"quoted\" label", "tab\there", "ünï"]);
    let marked_prompt = format!("Look for {IMAGE_MARK} and {DATA_MARK} please");
    let providers = [
        openai(ImageDetail::Low, None),
        openai(ImageDetail::High, Some("Say \"cat\" or \\dog\\")),
        openai(ImageDetail::Auto, Some(&marked_prompt)),
        http("label"),
        anthropic(None),
        anthropic(Some(&marked_prompt)),
        gemini(None),
        gemini(Some("Say \"cat\"")),
        azure(Some("2024-10-21")),
        azure(None),
    ];
    let urls = [
        "data:image/png;base64,iVBORw0KGgo=",
        "data:image/svg+xml,%3Csvg%2F%3E",
        "https://example.com/a \"b\"\\c\u{1}\n.png",
        "",
    ];
    for provider in &providers {
        for labels in [labels(), odd_labels.clone()] {
            let template = provider.request_template_scored(&labels, true);
            assert_eq!(template.asks_confidence(), provider.gives_logprobs());
            assert!(
                matches!(template.bodies[0], TemplateBody::Spliced { .. })
                    != matches!(provider, Provider::HttpJson(_)),
                "{provider:?} is not spliced"
            );
            for url in urls {
                for (attempt, id) in [(1, None), (3, Some("row-7"))] {
                    let input = RequestInput {
                        image_url: url,
                        labels: &labels,
                        attempt,
                        item_id: id,
                    };
                    let whole = provider.whole_body(&input, false);
                    let built = template.build(url, attempt, id);
                    assert_eq!(built.body, whole, "{provider:?} {url:?}");
                    for format in OutputFormat::ALL {
                        assert_eq!(
                            template.build_as(url, attempt, id, format).body,
                            provider.whole_body_as(&input, format, false),
                            "{provider:?} {url:?} {format:?}"
                        );
                        for confidence in [false, true] {
                            let scored = confidence && provider.gives_logprobs();
                            assert_eq!(
                                template
                                    .build_for(url, attempt, id, format, confidence)
                                    .body,
                                provider.whole_body_as(&input, format, scored),
                                "{provider:?} {url:?} {format:?} {confidence}"
                            );
                        }
                    }
                    serde_json::from_str::<Value>(&built.body).expect("the body is JSON");
                    assert_eq!(built.url, provider.endpoint_url());
                    // Not to Google's hosts, whose CORS preflight refuses it.
                    let google = matches!(provider, Provider::Gemini(_));
                    assert_eq!(
                        header(&built, "x-stainless-retry-count"),
                        (!google).then(|| (attempt - 1).to_string()).as_deref()
                    );
                }
            }
        }
    }
    // The mark inside a longer string does not match; a label that is exactly
    // a mark is served the slow way rather than split at the wrong place.
    for provider in [&providers[2], &providers[5]] {
        assert!(matches!(
            provider.request_template(&labels()).bodies[0],
            TemplateBody::Spliced { .. }
        ));
    }
    let marked_labels = LabelSet::from_labels(["cat", IMAGE_MARK]);
    let template = providers[0].request_template(&marked_labels);
    assert!(matches!(template.bodies[0], TemplateBody::Whole { .. }));
    let Provider::OpenAi(cfg) = &providers[0] else {
        unreachable!()
    };
    assert_eq!(
        template.build("x.png", 1, None).body,
        openai::build_body(cfg, &input(&marked_labels, 1, None), false)
            .replace("https://example.com/a.png", "x.png")
    );
    let data_label = LabelSet::from_labels(["cat", DATA_MARK]);
    let template = providers[4].request_template(&data_label);
    assert!(matches!(template.bodies[0], TemplateBody::Whole { .. }));
    let url = "data:image/png;base64,AAAA";
    assert_eq!(
        template.build(url, 1, None).body,
        providers[4].whole_body(
            &RequestInput {
                image_url: url,
                labels: &data_label,
                attempt: 1,
                item_id: None
            },
            false
        )
    );
}

fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn chat(content: &str) -> String {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 120, "completion_tokens": 7, "total_tokens": 127,
                  "prompt_tokens_details": {"cached_tokens": 0}}
    })
    .to_string()
}

/// The answer `label` with this usage, as `parse_answer` returns it.
pub(super) fn answered(
    label: usize,
    p: u64,
    c: u64,
    t: u64,
    text: &str,
) -> Result<Answer, AnswerError> {
    Ok(Answer {
        label,
        usage: usage(p, c, t),
        text: text.into(),
        confidence: crate::confidence::Scored::Unscored,
    })
}

fn usage(p: u64, c: u64, t: u64) -> Option<Usage> {
    Some(Usage {
        prompt_tokens: p,
        completion_tokens: c,
        total_tokens: t,
    })
}

// ------------------------------------------------------------------ requests

#[test]
fn openai_endpoint_url() {
    assert_eq!(
        openai(ImageDetail::Auto, None).endpoint_url(),
        "https://api.openai.com/v1/chat/completions"
    );
    let mut p = openai(ImageDetail::Auto, None);
    if let Provider::OpenAi(cfg) = &mut p {
        cfg.base_url = "http://127.0.0.1:9/v1/chat/completions/".to_owned();
    }
    assert_eq!(p.endpoint_url(), "http://127.0.0.1:9/v1/chat/completions");
    assert_eq!(http("x").endpoint_url(), "http://localhost:8080/predict");
}

#[test]
fn openai_request_shape() {
    let labels = labels();
    let req = openai(ImageDetail::Low, None).build_request(&input(&labels, 1, Some("id-7")));
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, "https://api.openai.com/v1/chat/completions");
    assert_eq!(header(&req, "content-type"), Some("application/json"));
    assert_eq!(header(&req, "x-stainless-retry-count"), Some("0"));
    assert_eq!(header(&req, "authorization"), None);
    assert_eq!(req.headers.len(), 2);

    let body: Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["temperature"], 0);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[0]["content"], DEFAULT_PROMPT);
    assert_eq!(messages[1]["role"], "user");
    let parts = messages[1]["content"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["type"], "text");
    assert!(parts[0]["text"]
        .as_str()
        .unwrap()
        .contains(r#"["cat","dog"]"#));
    assert_eq!(parts[1]["type"], "image_url");
    assert_eq!(
        parts[1]["image_url"],
        json!({"url": "https://example.com/a.png", "detail": "low"})
    );
    assert_eq!(
        body["response_format"],
        json!({
            "type": "json_schema",
            "json_schema": {
                "name": "classification",
                "strict": true,
                "schema": {
                    "type": "object",
                    "properties": {"label": {"type": "string", "enum": ["cat", "dog"]}},
                    "required": ["label"],
                    "additionalProperties": false
                }
            }
        })
    );
    // The item id is not sent to OpenAI.
    assert!(!req.body.contains("id-7"));
    // Exactly these top-level keys.
    let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "max_tokens",
            "messages",
            "model",
            "response_format",
            "temperature"
        ]
    );
}

#[test]
fn openai_detail_values_and_prompt_override() {
    let labels = labels();
    for (detail, text) in [
        (ImageDetail::Auto, "auto"),
        (ImageDetail::Low, "low"),
        (ImageDetail::High, "high"),
    ] {
        let req = openai(detail, Some("Is it a pet?")).build_request(&input(&labels, 1, None));
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(
            body["messages"][1]["content"][1]["image_url"]["detail"],
            text
        );
        assert_eq!(body["messages"][0]["content"], "Is it a pet?");
    }
}

#[test]
fn retry_count_header_is_attempt_minus_one() {
    let labels = labels();
    for provider in [openai(ImageDetail::Auto, None), http("p")] {
        for (attempt, expected) in [(1, "0"), (2, "1"), (6, "5"), (0, "0")] {
            let req = provider.build_request(&input(&labels, attempt, None));
            assert_eq!(header(&req, "x-stainless-retry-count"), Some(expected));
            assert_eq!(header(&req, "authorization"), None);
        }
    }
}

#[test]
fn labels_and_urls_are_escaped() {
    let labels = LabelSet::from_labels(["say \"hi\"", "two\nlines", "back\\slash", "</script>"]);
    let data_url = "data:image/png;base64,iVBORw0KGgo=";
    let mut inp = input(&labels, 1, Some("a\"b"));
    inp.image_url = data_url;
    let expected: Vec<String> = labels.names().to_vec();
    assert_eq!(expected.len(), 4);

    let req = openai(ImageDetail::Auto, Some("quote \" and\nnewline")).build_request(&inp);
    let body: Value = serde_json::from_str(&req.body).expect("valid JSON");
    let schema_enum =
        &body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"];
    assert_eq!(schema_enum, &json!(expected));
    assert_eq!(body["messages"][0]["content"], "quote \" and\nnewline");
    assert_eq!(
        body["messages"][1]["content"][1]["image_url"]["url"],
        data_url
    );
    // The label list in the text part is itself a parseable JSON array.
    let text = body["messages"][1]["content"][0]["text"].as_str().unwrap();
    let list: Vec<String> = serde_json::from_str(&text[text.find('[').unwrap()..]).unwrap();
    assert_eq!(list, expected);

    let req = http("p").build_request(&inp);
    let body: Value = serde_json::from_str(&req.body).expect("valid JSON");
    assert_eq!(body["labels"], json!(expected));
    assert_eq!(body["id"], "a\"b");
    assert_eq!(body["image"], data_url);
}

#[test]
fn http_json_request_shape() {
    let labels = labels();
    let req = http("prediction").build_request(&input(&labels, 3, Some("row-1")));
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, "http://localhost:8080/predict");
    assert_eq!(header(&req, "content-type"), Some("application/json"));
    assert_eq!(header(&req, "x-stainless-retry-count"), Some("2"));
    let body: Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(
        body,
        json!({"image": "https://example.com/a.png", "labels": ["cat", "dog"],
               "id": "row-1", "attempt": 3})
    );
    // No id: the key is left out, not null.
    let req = http("prediction").build_request(&input(&labels, 1, None));
    let body: Value = serde_json::from_str(&req.body).unwrap();
    assert!(body.get("id").is_none(), "{body}");
    assert_eq!(body["attempt"], 1);
}

// ------------------------------------------------------------------ OpenAI answers

#[test]
fn openai_parses_label_and_usage() {
    let labels = labels();
    let p = openai(ImageDetail::Auto, None);
    assert_eq!(
        p.parse_answer(&chat(r#"{"label":"dog"}"#), &labels),
        answered(1, 120, 7, 127, r#"{"label":"dog"}"#)
    );
    let answer = p
        .parse_answer(&chat(r#"{"label": "cat"}"#), &labels)
        .unwrap();
    assert_eq!(answer.label, 0);
}

#[test]
fn openai_usage_variants() {
    let labels = labels();
    let p = openai(ImageDetail::Auto, None);
    let msg = r#"{"message":{"content":"{\"label\":\"cat\"}"}}"#;
    let no_usage = format!(r#"{{"choices":[{msg}]}}"#);
    assert_eq!(p.parse_answer(&no_usage, &labels).unwrap().usage, None);
    let null_usage = format!(r#"{{"choices":[{msg}],"usage":null}}"#);
    assert_eq!(p.parse_answer(&null_usage, &labels).unwrap().usage, None);
    let no_total =
        format!(r#"{{"choices":[{msg}],"usage":{{"prompt_tokens":10,"completion_tokens":2}}}}"#);
    assert_eq!(
        p.parse_answer(&no_total, &labels).unwrap().usage,
        usage(10, 2, 12)
    );
    let empty = format!(r#"{{"choices":[{msg}],"usage":{{}}}}"#);
    assert_eq!(p.parse_answer(&empty, &labels).unwrap().usage, None);
}

#[test]
fn openai_tolerates_fences_whitespace_and_bare_labels() {
    let labels = labels();
    let p = openai(ImageDetail::Auto, None);
    for (content, label) in [
        ("  {\"label\": \"dog\"}\n", 1),
        ("```json\n{\"label\": \"cat\"}\n```", 0),
        ("```\n{\"label\": \"dog\"}\n```", 1),
        ("\n```JSON\n{\"label\":\"dog\"}```\n", 1),
        ("```json {\"label\": \"cat\"}```", 0),
        ("dog", 1),
        ("  Cat ", 0),
        ("\"dog\"", 1),
        ("```\ncat\n```", 0),
        ("{\"label\": \" DOG \"}", 1),
        ("{\"label\": \"cat\", \"confidence\": 0.9}", 0),
    ] {
        let answer = p
            .parse_answer(&chat(content), &labels)
            .unwrap_or_else(|e| panic!("{content:?}: {e}"));
        assert_eq!(answer.label, label, "{content:?}");
    }
}

#[test]
fn openai_numeric_labels() {
    let labels = LabelSet::from_labels(["0", "1", "2", "3"]);
    let p = openai(ImageDetail::Auto, None);
    assert_eq!(
        p.parse_answer(&chat(r#"{"label":"3"}"#), &labels)
            .unwrap()
            .label,
        3
    );
    assert_eq!(
        p.parse_answer(&chat(r#"{"label":2}"#), &labels)
            .unwrap()
            .label,
        2
    );
    assert_eq!(p.parse_answer(&chat("1"), &labels).unwrap().label, 1);
    assert_eq!(
        p.parse_answer(&chat("7"), &labels),
        Err(AnswerError::OutsideLabelSet {
            answer: "7".to_owned()
        })
    );
}

#[test]
fn openai_outside_label_set() {
    let labels = labels();
    let p = openai(ImageDetail::Auto, None);
    let err = p
        .parse_answer(&chat(r#"{"label":"zebra"}"#), &labels)
        .unwrap_err();
    assert_eq!(
        err,
        AnswerError::OutsideLabelSet {
            answer: "zebra".to_owned()
        }
    );
    let text = err.to_string();
    assert!(text.contains("\"zebra\""), "{text}");
    assert!(text.contains("not one of the labels"), "{text}");
    // Free text is echoed, capped at 100 characters.
    let long = "I think this is a picture of a very fluffy animal. ".repeat(10);
    match p.parse_answer(&chat(&long), &labels).unwrap_err() {
        AnswerError::OutsideLabelSet { answer } => {
            assert_eq!(answer.chars().count(), 101);
            assert!(answer.ends_with('…'));
            assert!(long.starts_with(answer.trim_end_matches('…')));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn openai_refusal() {
    let labels = labels();
    let p = openai(ImageDetail::Auto, None);
    let body = json!({"choices": [{"message": {"role": "assistant", "content": null,
        "refusal": "I'm sorry, I can't help with that."}, "finish_reason": "stop"}]})
    .to_string();
    let err = p.parse_answer(&body, &labels).unwrap_err();
    assert_eq!(
        err,
        AnswerError::Refusal("I'm sorry, I can't help with that.".to_owned())
    );
    assert!(err.to_string().contains("refused"));
    // Refusal wins even when content is also set.
    let body = json!({"choices": [{"message": {"content": "{\"label\":\"cat\"}",
        "refusal": "no"}}]})
    .to_string();
    assert_eq!(
        p.parse_answer(&body, &labels),
        Err(AnswerError::Refusal("no".to_owned()))
    );
}

/// The detail of a Malformed result; panics on any other.
pub(super) fn malformed(result: Result<Answer, AnswerError>) -> String {
    match result {
        Err(AnswerError::Malformed { detail }) => detail,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn openai_malformed_bodies() {
    let labels = labels();
    let p = openai(ImageDetail::Auto, None);
    let detail = malformed(p.parse_answer("<html>502 Bad Gateway</html>", &labels));
    assert!(detail.starts_with("not JSON"), "{detail}");
    assert!(detail.contains("<html>502"), "{detail}");
    assert!(malformed(p.parse_answer("", &labels)).starts_with("not JSON"));
    assert!(malformed(p.parse_answer(r#"{"choices": [{"mess"#, &labels)).contains("not JSON"));
    assert!(malformed(p.parse_answer("{}", &labels)).contains("no choices"));
    assert!(malformed(p.parse_answer(r#"{"choices": []}"#, &labels)).contains("no choices"));
    assert!(malformed(p.parse_answer(r#"{"choices": null}"#, &labels)).contains("no choices"));
    assert!(malformed(p.parse_answer(r#"{"choices": [{}]}"#, &labels)).contains("no message"));
    assert!(
        malformed(p.parse_answer(r#"{"choices": 5}"#, &labels)).contains("not a chat completion")
    );
    let detail = malformed(p.parse_answer(
        r#"{"choices": [{"message": {"content": null}, "finish_reason": "tool_calls"}]}"#,
        &labels,
    ));
    assert!(
        detail.contains("no content") && detail.contains("tool_calls"),
        "{detail}"
    );
    assert!(malformed(p.parse_answer(&chat("   "), &labels)).contains("empty"));
    let detail = malformed(p.parse_answer(&chat(r#"{"answer": "cat"}"#), &labels));
    assert!(detail.contains("not {\"label\": ...} JSON"), "{detail}");
    assert!(detail.contains("missing field `label`"), "{detail}");
    // A cut-short answer says so.
    let body = json!({"choices": [{"message": {"content": "{\"label\": \"ca"},
        "finish_reason": "length"}]})
    .to_string();
    assert!(malformed(p.parse_answer(&body, &labels)).contains("cut short"));
}

#[test]
fn malformed_detail_never_echoes_a_whole_body() {
    let labels = labels();
    let p = openai(ImageDetail::Auto, None);
    let huge = format!("<html>{}</html>", "x".repeat(100_000));
    let detail = malformed(p.parse_answer(&huge, &labels));
    assert!(
        detail.chars().count() <= MAX_DETAIL_CHARS + 1,
        "{}",
        detail.len()
    );
    let huge_content = format!("{{\"label\": \"{}", "y".repeat(10_000));
    let detail = malformed(p.parse_answer(&chat(&huge_content), &labels));
    assert!(
        detail.chars().count() <= MAX_DETAIL_CHARS + 1,
        "{}",
        detail.len()
    );
    let detail = malformed(http("p").parse_answer(&huge, &labels));
    assert!(
        detail.chars().count() <= MAX_DETAIL_CHARS + 1,
        "{}",
        detail.len()
    );
}

#[test]
fn openai_error_body() {
    let labels = labels();
    let p = openai(ImageDetail::Auto, None);
    let body = r#"{"error": {"message": "You exceeded your current quota.",
        "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}"#;
    let err = p.parse_answer(body, &labels).unwrap_err();
    assert_eq!(
        err,
        AnswerError::ErrorBody(ApiError {
            message: "You exceeded your current quota.".to_owned(),
            kind: Some("insufficient_quota".to_owned()),
            code: Some("insufficient_quota".to_owned()),
        })
    );
    assert_eq!(
        err.to_string(),
        "the endpoint answered with an error: You exceeded your current quota. \
         (type insufficient_quota, code insufficient_quota)"
    );
    // An error next to (null) choices is still an error.
    let body = r#"{"choices": null, "error": {"message": "overloaded", "code": 503}}"#;
    assert!(matches!(
        p.parse_answer(body, &labels),
        Err(AnswerError::ErrorBody(ApiError { code: Some(c), .. })) if c == "503"
    ));
    // An error whose shape breaks the typed parse is still recognised.
    let body = r#"{"choices": "nope", "error": "server exploded"}"#;
    assert!(matches!(
        p.parse_answer(body, &labels),
        Err(AnswerError::ErrorBody(ApiError { message, .. })) if message == "server exploded"
    ));
    // `"error": null` is not an error.
    let body = r#"{"error": null, "choices": [{"message": {"content": "cat"}}]}"#;
    assert_eq!(p.parse_answer(body, &labels).unwrap().label, 0);
}

#[test]
fn openai_takes_first_of_several_choices() {
    let labels = labels();
    let p = openai(ImageDetail::Auto, None);
    let body = r#"{"choices": [{"message": {"content": "dog"}},
        {"message": {"content": "cat"}}, {"weird": [1, {"a": null}]}]}"#;
    assert_eq!(p.parse_answer(body, &labels).unwrap().label, 1);
}

// ------------------------------------------------------------------ API errors

#[test]
fn api_error_code_string_number_null() {
    let e = parse_api_error(
        r#"{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}"#,
    )
    .unwrap();
    assert_eq!(e.message, "Rate limit reached");
    assert_eq!(e.kind.as_deref(), Some("requests"));
    assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));

    let e = parse_api_error(r#"{"error": {"message": "Bad gateway", "code": 502}}"#).unwrap();
    assert_eq!(e.code.as_deref(), Some("502"));
    assert_eq!(e.kind, None);
    assert_eq!(e.to_string(), "Bad gateway (code 502)");

    let e = parse_api_error(
        r#"{"error": {"message": "Invalid image", "type": "invalid_request_error", "code": null}}"#,
    )
    .unwrap();
    assert_eq!(e.code, None);
    assert_eq!(e.to_string(), "Invalid image (type invalid_request_error)");
}

#[test]
fn api_error_other_shapes() {
    assert_eq!(
        parse_api_error(r#"{"error": "Unauthorized"}"#),
        Some(ApiError {
            message: "Unauthorized".to_owned(),
            kind: None,
            code: None
        })
    );
    let e = parse_api_error(
        r#"{"object": "error", "message": "model not found", "type": "NotFoundError", "code": 404}"#,
    )
    .unwrap();
    assert_eq!(e.message, "model not found");
    assert_eq!(e.kind.as_deref(), Some("NotFoundError"));
    assert_eq!(e.code.as_deref(), Some("404"));
    assert_eq!(
        parse_api_error(r#"{"detail": "Not authenticated"}"#)
            .unwrap()
            .message,
        "Not authenticated"
    );
    let e = parse_api_error(
        r#"{"detail": [{"loc": ["body", "image"], "msg": "field required", "type": "value_error.missing"}]}"#,
    )
    .unwrap();
    assert_eq!(e.message, "field required");
    assert_eq!(e.kind.as_deref(), Some("value_error.missing"));
    // No message: fall back to the code.
    let e = parse_api_error(r#"{"error": {"code": "insufficient_quota"}}"#).unwrap();
    assert_eq!(e.message, "insufficient_quota");
    assert_eq!(e.code.as_deref(), Some("insufficient_quota"));
    assert_eq!(
        parse_api_error(r#"{"error": {}}"#).unwrap().message,
        "(no message)"
    );
    for not_error in [
        "",
        "not json",
        "[]",
        "{}",
        r#"{"error": null}"#,
        r#"{"error": 3}"#,
        r#"{"choices": []}"#,
    ] {
        assert_eq!(parse_api_error(not_error), None, "{not_error}");
    }
}

#[test]
fn api_error_message_is_capped() {
    let body = json!({"error": {"message": "é".repeat(5000), "code": "x"}}).to_string();
    let e = parse_api_error(&body).unwrap();
    assert_eq!(e.message.chars().count(), MAX_API_MESSAGE_CHARS + 1);
    assert!(e.message.ends_with('…'));
}

// ------------------------------------------------------------------ generic JSON answers

#[test]
fn http_json_top_level_field() {
    let labels = labels();
    let answer = http("prediction")
        .parse_answer(r#"{"prediction": "dog", "score": 0.93}"#, &labels)
        .unwrap();
    assert_eq!(
        answer,
        Answer {
            label: 1,
            usage: None,
            text: "dog".into(),
            confidence: crate::confidence::Scored::Unscored,
        }
    );
}

#[test]
fn http_json_dotted_path_with_array_index() {
    let labels = labels();
    let body = r#"{"result": {"top": [{"label": "cat", "p": 0.6}, {"label": "dog", "p": 0.4}]}}"#;
    assert_eq!(
        http("result.top.0.label")
            .parse_answer(body, &labels)
            .unwrap()
            .label,
        0
    );
    assert_eq!(
        http("result.top.1.label")
            .parse_answer(body, &labels)
            .unwrap()
            .label,
        1
    );
    let detail = malformed(http("result.top.2.label").parse_answer(body, &labels));
    assert!(detail.contains("result.top.2.label"), "{detail}");
    assert!(detail.contains("array of 2 elements"), "{detail}");
    let detail = malformed(http("result.best").parse_answer(body, &labels));
    assert!(
        detail.contains("`result.best`") && detail.contains("no field `best`"),
        "{detail}"
    );
    let detail = malformed(http("result.top.x").parse_answer(body, &labels));
    assert!(detail.contains("`x` is not an index"), "{detail}");
    // Objects with numeric keys are looked up by key.
    let body = r#"{"by": {"0": "dog"}}"#;
    assert_eq!(http("by.0").parse_answer(body, &labels).unwrap().label, 1);
    // Top-level arrays and an empty path.
    assert_eq!(
        http("0").parse_answer(r#"["cat"]"#, &labels).unwrap().label,
        0
    );
    assert_eq!(http("").parse_answer(r#""dog""#, &labels).unwrap().label, 1);
}

#[test]
fn http_json_numbers_and_wrong_types() {
    let digits = LabelSet::from_labels(["0", "1", "7"]);
    assert_eq!(
        http("p")
            .parse_answer(r#"{"p": 7}"#, &digits)
            .unwrap()
            .label,
        2
    );
    assert_eq!(
        http("p")
            .parse_answer(r#"{"p": "1"}"#, &digits)
            .unwrap()
            .label,
        1
    );
    assert_eq!(
        http("p").parse_answer(r#"{"p": 9}"#, &digits),
        Err(AnswerError::OutsideLabelSet {
            answer: "9".to_owned()
        })
    );
    assert_eq!(
        http("p").parse_answer(r#"{"p": "zebra"}"#, &labels()),
        Err(AnswerError::OutsideLabelSet {
            answer: "zebra".to_owned()
        })
    );
    for (body, kind) in [
        (r#"{"p": null}"#, "null"),
        (r#"{"p": true}"#, "a boolean"),
        (r#"{"p": ["cat"]}"#, "an array"),
        (r#"{"p": {"label": "cat"}}"#, "an object"),
    ] {
        let detail = malformed(http("p").parse_answer(body, &labels()));
        assert!(detail.contains(kind) && detail.contains("`p`"), "{detail}");
    }
    assert!(malformed(http("p").parse_answer("oops", &labels())).starts_with("not JSON"));
}

#[test]
fn http_json_usage_and_error_body() {
    let labels = labels();
    let body = r#"{"label": "cat", "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}"#;
    assert_eq!(
        http("label").parse_answer(body, &labels).unwrap().usage,
        usage(5, 1, 6)
    );
    // A usage of the wrong shape is ignored, not an error.
    let body = r#"{"label": "cat", "usage": "lots"}"#;
    assert_eq!(
        http("label").parse_answer(body, &labels).unwrap().usage,
        None
    );
    let body = r#"{"error": {"message": "model not loaded", "code": 503}}"#;
    assert_eq!(
        http("label").parse_answer(body, &labels),
        Err(AnswerError::ErrorBody(ApiError {
            message: "model not loaded".to_owned(),
            kind: None,
            code: Some("503".to_owned()),
        }))
    );
    let body = r#"{"label": null, "detail": "queue full"}"#;
    assert!(matches!(
        http("label").parse_answer(body, &labels),
        Err(AnswerError::ErrorBody(ApiError { message, .. })) if message == "queue full"
    ));
}

// ------------------------------------------------------------------ messages

#[test]
fn error_messages_are_actionable() {
    assert_eq!(
        AnswerError::Malformed {
            detail: "the answer has no choices".to_owned()
        }
        .to_string(),
        "the endpoint's answer could not be read: the answer has no choices"
    );
    let text = AnswerError::OutsideLabelSet {
        answer: "a \"b\"\nc".to_owned(),
    }
    .to_string();
    assert!(
        text.starts_with(r#"the model answered "a \"b\"\nc", which"#),
        "{text}"
    );
    assert!(!text.contains('\n'));
    assert_eq!(
        AnswerError::Refusal("no".to_owned()).to_string(),
        "the model refused to classify the image: \"no\""
    );
}

#[test]
fn truncate_is_char_safe() {
    assert_eq!(truncate("abc", 3), "abc");
    assert_eq!(truncate("abcd", 3), "abc…");
    assert_eq!(truncate("ééé", 2), "éé…");
    assert_eq!(truncate("", 0), "");
    assert_eq!(truncate("🐱🐶", 1), "🐱…");
}

#[test]
fn openai_compatible_requests_fall_back_to_json_object_then_text() {
    let labels = labels();
    for provider in [openai(ImageDetail::Low, None), azure(None)] {
        assert!(provider.falls_back());
        let template = provider.request_template(&labels);
        let body = |format| -> Value {
            serde_json::from_str(
                &template
                    .build_as("https://x.test/a.png", 1, None, format)
                    .body,
            )
            .unwrap()
        };
        assert_eq!(
            body(OutputFormat::JsonSchema)["response_format"]["type"],
            "json_schema"
        );
        let object = body(OutputFormat::JsonObject);
        assert_eq!(object["response_format"], json!({"type": "json_object"}));
        let text = body(OutputFormat::Text);
        assert!(text.get("response_format").is_none(), "{text}");
        // Everything else is the same request.
        for b in [&object, &text] {
            assert_eq!(b["messages"], body(OutputFormat::JsonSchema)["messages"]);
            assert_eq!(b["model"], body(OutputFormat::JsonSchema)["model"]);
        }
    }
    // The other providers have their own constraint and ask the same way always.
    for provider in [anthropic(None), gemini(None), http("label")] {
        assert!(!provider.falls_back());
        let template = provider.request_template(&labels);
        assert_eq!(
            template
                .build_as("https://x.test/a.png", 1, None, OutputFormat::Text)
                .body,
            template.build("https://x.test/a.png", 1, None).body
        );
    }
    assert_eq!(
        OutputFormat::JsonSchema.next(),
        Some(OutputFormat::JsonObject)
    );
    assert_eq!(OutputFormat::JsonObject.next(), Some(OutputFormat::Text));
    assert_eq!(OutputFormat::Text.next(), None);
}

#[test]
fn refusals_of_the_response_format_are_recognised() {
    let answer = |status, body: &str| crate::http::HttpResponse {
        status,
        headers: Vec::new(),
        body: body.to_owned(),
    };
    // llama.cpp's server, an old vLLM, Azure before 2024-08-01, the mock's
    // ollama dialect.
    for body in [
        r#"{"error": {"code": 400, "message": "response_format type json_schema is not supported", "type": "invalid_request_error"}}"#,
        r#"{"object": "error", "message": "Unsupported response_format: json_schema", "type": "BadRequestError", "code": 400}"#,
        r#"{"error": {"message": "response_format value as json_schema is enabled only for api versions 2024-08-01-preview and later", "type": "invalid_request_error", "param": null, "code": "BadRequest"}}"#,
        "Structured output is not supported by this model",
    ] {
        assert!(
            rejects_format(&answer(400, body), OutputFormat::JsonSchema),
            "{body}"
        );
    }
    assert!(rejects_format(
        &answer(
            422,
            r#"{"detail": "json_object response format is not supported"}"#
        ),
        OutputFormat::JsonObject
    ));
    // Not about the format, not a client error, or no fallback left.
    let other = r#"{"error": {"message": "Invalid image input", "type": "invalid_request_error"}}"#;
    assert!(!rejects_format(
        &answer(400, other),
        OutputFormat::JsonSchema
    ));
    let schema = r#"{"error": {"message": "json_schema unsupported"}}"#;
    assert!(!rejects_format(
        &answer(500, schema),
        OutputFormat::JsonSchema
    ));
    assert!(!rejects_format(
        &answer(429, schema),
        OutputFormat::JsonSchema
    ));
    assert!(!rejects_format(
        &answer(400, schema),
        OutputFormat::JsonObject
    ));
    assert!(!rejects_format(&answer(400, schema), OutputFormat::Text));
}

#[test]
fn prose_answers_name_a_label_by_the_one_whole_word_they_hold() {
    let labels = LabelSet::from_labels(["cat", "dog", "wild cat", "7", "Sea Lion"]);
    let p = openai(ImageDetail::Auto, None);
    let label = |text: &str| {
        p.parse_answer(&chat(text), &labels)
            .map(|a| labels.names()[a.label].clone())
    };
    assert_eq!(label("It is a cat.").unwrap(), "cat");
    assert_eq!(label("The image shows a DOG").unwrap(), "dog");
    assert_eq!(label("A wild cat, I think").unwrap(), "wild cat");
    assert_eq!(label("The digit is 7").unwrap(), "7");
    assert_eq!(label("Looks like a sea lion!").unwrap(), "Sea Lion");
    // Inside a longer word, several labels, none, or too long: outside the set.
    for text in [
        "A category of animal",
        "Either a cat or a dog",
        "The number 17",
        "No idea",
    ] {
        assert!(
            matches!(label(text), Err(AnswerError::OutsideLabelSet { .. })),
            "{text}: {:?}",
            label(text)
        );
    }
    let long = format!("It is a cat. {}", "Really. ".repeat(50));
    assert!(matches!(
        label(&long),
        Err(AnswerError::OutsideLabelSet { .. })
    ));
}

#[test]
fn model_lists_say_whether_the_model_is_served() {
    assert_eq!(
        openai(ImageDetail::Low, None).models_url().as_deref(),
        Some("https://api.openai.com/v1/models")
    );
    assert_eq!(anthropic(None).models_url(), None);
    assert_eq!(azure(None).models_url(), None);
    // OpenAI's list, as documented.
    let openai_list = r#"{"object": "list", "data": [
        {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
        {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"}]}"#;
    assert_eq!(
        check_model_listing(openai_list, "gpt-4o"),
        ModelListing::Listed
    );
    assert_eq!(
        check_model_listing(openai_list, "gpt-5"),
        ModelListing::NotListed {
            listed: vec!["gpt-4o-mini".into(), "gpt-4o".into()]
        }
    );
    // Ollama's OpenAI-compatible list and its own: tags.
    let ollama = r#"{"object": "list", "data": [{"id": "llava:latest", "object": "model", "owned_by": "library"}]}"#;
    assert_eq!(check_model_listing(ollama, "llava"), ModelListing::Listed);
    let native = r#"{"models": [{"name": "qwen2.5vl:7b", "model": "qwen2.5vl:7b"}]}"#;
    assert_eq!(
        check_model_listing(native, "qwen2.5vl:7b"),
        ModelListing::Listed
    );
    assert!(matches!(
        check_model_listing(native, "qwen2.5vl"),
        ModelListing::NotListed { .. }
    ));
    // The mock answers as any model.
    let mock =
        r#"{"object": "list", "data": [{"id": "shadow-mock-1", "owned_by": "shadow-batch"}]}"#;
    assert_eq!(
        check_model_listing(mock, "gpt-4o-mini"),
        ModelListing::Listed
    );
    for nothing in [
        "",
        "<html>",
        r#"{"data": []}"#,
        r#"{"error": {"message": "no"}}"#,
        r#"{"data": [{"x": 1}]}"#,
    ] {
        assert_eq!(
            check_model_listing(nothing, "m"),
            ModelListing::Unknown,
            "{nothing}"
        );
    }
}

#[test]
fn provider_config_still_round_trips() {
    let p = openai(ImageDetail::High, Some("x"));
    let text = serde_json::to_string(&p).unwrap();
    assert!(text.contains(r#""kind":"openai""#), "{text}");
    assert_eq!(serde_json::from_str::<Provider>(&text).unwrap(), p);
}

#[test]
fn requests_ask_for_no_more_tokens_than_a_label_needs() {
    let labels = LabelSet::from_labels(["dog", "a rather long label"]);
    let body = |model: &str| {
        let provider = Provider::OpenAi(OpenAiConfig {
            model: model.to_owned(),
            ..openai_config()
        });
        let request = provider
            .request_template(&labels)
            .build("https://x/i.png", 1, None);
        serde_json::from_str::<serde_json::Value>(&request.body).unwrap()
    };
    let plain = body("gpt-4o-mini");
    assert_eq!(plain["max_tokens"], 16 + 19);
    assert!(plain.get("max_completion_tokens").is_none());
    for reasoning in ["o4-mini", "o1", "gpt-5-mini", "openai/o3"] {
        let b = body(reasoning);
        assert!(b.get("max_tokens").is_none(), "{reasoning}");
        assert_eq!(b["max_completion_tokens"], 16 + 19 + 2_048, "{reasoning}");
    }
    assert!(!is_reasoning_model("omni-vision"));
}

#[test]
fn token_charge_is_seeded_from_the_published_image_formula() {
    let labels = labels();
    let charge = |model: &str, detail| {
        Provider::OpenAi(OpenAiConfig {
            model: model.to_owned(),
            detail,
            ..openai_config()
        })
        .token_charge(&labels)
    };
    let mini = charge("gpt-4o-mini", ImageDetail::Low);
    let text = mini.prompt - 2_833;
    assert!((40..200).contains(&text), "{text}");
    assert_eq!(mini.max_output, 16 + 3);
    assert_eq!(charge("gpt-4o", ImageDetail::Low).prompt, text + 85);
    assert_eq!(charge("gpt-4o", ImageDetail::High).prompt, text + 765);
    assert_eq!(
        charge("gpt-4o-mini", ImageDetail::Auto).prompt,
        text + 2_833 + 4 * 5_667
    );
}

#[test]
fn url_host_takes_the_host_alone() {
    for (url, host) in [
        ("https://API.Example.com./v1", "api.example.com"),
        (
            "https://user:pw@api.example.com:8443/v1?x=1",
            "api.example.com",
        ),
        ("http://127.0.0.1:8787", "127.0.0.1"),
        ("http://[::1]:8787/v1", "[::1]"),
        ("api.example.com/v1", "api.example.com"),
        ("", ""),
    ] {
        assert_eq!(url_host(url), host, "{url}");
    }
}

#[test]
fn browser_access_is_known_for_the_public_apis_and_unknown_elsewhere() {
    let at = |mut provider: Provider, base: &str| -> Provider {
        if let Provider::OpenAi(OpenAiConfig { base_url, .. })
        | Provider::Anthropic(AnthropicConfig { base_url, .. })
        | Provider::Gemini(GeminiConfig { base_url, .. })
        | Provider::Azure(AzureConfig { base_url, .. }) = &mut provider
        {
            *base_url = base.to_owned();
        }
        provider
    };
    let mock = "http://127.0.0.1:8787";
    let cases = [
        (
            openai(ImageDetail::Low, None),
            Cors::Allowed,
            "api.openai.com",
        ),
        (
            at(openai(ImageDetail::Low, None), &format!("{mock}/v1")),
            Cors::Unknown,
            "127.0.0.1",
        ),
        (anthropic(None), Cors::Allowed, "api.anthropic.com"),
        (at(anthropic(None), mock), Cors::Unknown, "127.0.0.1"),
        (
            gemini(None),
            Cors::Allowed,
            "generativelanguage.googleapis.com",
        ),
        (
            at(gemini(None), &format!("{mock}/v1beta")),
            Cors::Unknown,
            "127.0.0.1",
        ),
        (azure(None), Cors::Refused, "res.openai.azure.com"),
        (
            at(azure(None), "https://res.cognitiveservices.azure.com"),
            Cors::Refused,
            "res.cognitiveservices.azure.com",
        ),
        (
            at(azure(None), "https://proxy.example.com"),
            Cors::Unknown,
            "proxy.example.com",
        ),
        (http("label"), Cors::Unknown, "localhost"),
    ];
    for (provider, cors, host) in cases {
        let access = provider.browser_access();
        assert_eq!(access.cors, cors, "{provider:?}");
        assert_eq!(access.host, host, "{provider:?}");
        let anthropic = matches!(provider, Provider::Anthropic(_));
        let want: Vec<(String, String)> = if anthropic {
            vec![(
                "anthropic-dangerous-direct-browser-access".into(),
                "true".into(),
            )]
        } else {
            Vec::new()
        };
        assert_eq!(access.headers, want, "{provider:?}");
        // Requests to Google's hosts carry no header its CORS preflight refuses.
        let request = provider
            .request_template(&labels())
            .build("https://e.x/a.png", 2, None);
        let google = matches!(provider, Provider::Gemini(_)) && host.ends_with("googleapis.com");
        assert_eq!(
            header(&request, "x-stainless-retry-count").is_none(),
            google,
            "{provider:?}"
        );
        if google {
            let names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["content-type"], "only CORS-safe headers to Google");
            assert_eq!(provider.credential_header("k").0, "x-goog-api-key");
        }
    }
    let json = serde_json::to_value(anthropic(None).browser_access()).unwrap();
    assert_eq!(
        json,
        json!({
            "cors": "allowed",
            "headers": [["anthropic-dangerous-direct-browser-access", "true"]],
            "host": "api.anthropic.com"
        })
    );
}
