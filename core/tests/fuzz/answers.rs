//! Target `answers`: every provider's answer parser (`Provider::parse_answer` for
//! OpenAI chat completions, Anthropic messages, Gemini `generateContent` and a
//! generic JSON endpoint with a dotted field path) and the error-body reader (`parse_api_error`, which the engine also uses
//! on non-2xx bodies). Each body, whatever its source, goes through all three.
//! An answer is a label of the set or a typed error whose text stays under a
//! fixed size, however large the body.

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Value};
use shadow_core::input::LabelSet;
use shadow_core::provider::{
    parse_api_error, AnswerError, AnthropicConfig, ApiError, GeminiConfig, HttpJsonConfig,
    ImageDetail, OpenAiConfig, Provider,
};

use crate::corpus::{self, Bytes};

const TARGET: &str = "answers";

/// Longest error text a parser may produce, whatever the body: reports and logs
/// quote it, so it must not grow with the body.
pub(crate) const MAX_ERROR_BYTES: usize = 4096;

fn openai() -> Provider {
    Provider::OpenAi(OpenAiConfig {
        base_url: "http://127.0.0.1:1/v1".into(),
        model: "m".into(),
        detail: ImageDetail::Low,
        prompt: None,
    })
}

fn http(path: &str) -> Provider {
    Provider::HttpJson(HttpJsonConfig {
        url: "http://127.0.0.1:1/predict".into(),
        prediction_field: path.into(),
    })
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn check_api_error(api: &ApiError) -> Result<(), TestCaseError> {
    // 300 characters and an ellipsis at most, each.
    prop_assert!(chars(&api.message) <= 301, "{:?}", api);
    prop_assert!(api.kind.as_deref().map_or(0, chars) <= 301, "{:?}", api);
    prop_assert!(api.code.as_deref().map_or(0, chars) <= 301, "{:?}", api);
    Ok(())
}

/// What must hold of any answer: a label of the set, or a bounded typed error.
fn check_answer(
    result: &Result<shadow_core::provider::Answer, AnswerError>,
    labels: &LabelSet,
) -> Result<(), TestCaseError> {
    match result {
        Ok(answer) => prop_assert!(answer.label < labels.len(), "{:?}", answer),
        Err(e) => {
            let text = e.to_string();
            prop_assert!(
                text.len() <= MAX_ERROR_BYTES,
                "error of {} bytes",
                text.len()
            );
            match e {
                AnswerError::Refusal(s) => prop_assert!(chars(s) <= 201, "{:?}", e),
                AnswerError::Malformed { detail } => prop_assert!(chars(detail) <= 201, "{:?}", e),
                AnswerError::OutsideLabelSet { answer } => {
                    prop_assert!(chars(answer) <= 101, "{:?}", e)
                }
                AnswerError::ErrorBody(api) => check_api_error(api)?,
                _ => {}
            }
        }
    }
    Ok(())
}

/// Runs every parser on `body`; `expect`, when known, is the label index the
/// OpenAI parser must find.
fn check_body(
    body: &str,
    labels: &LabelSet,
    paths: &[String],
    expect_openai: Option<usize>,
) -> Result<(), TestCaseError> {
    check_body_expecting(body, labels, paths, expect_openai, None)
}

/// [`check_body`], and `expect_http`: the label index the generic parser must
/// find at the first path.
fn check_body_expecting(
    body: &str,
    labels: &LabelSet,
    paths: &[String],
    expect_openai: Option<usize>,
    expect_http: Option<usize>,
) -> Result<(), TestCaseError> {
    let answer = openai().parse_answer(body, labels);
    check_answer(&answer, labels)?;
    if let Some(label) = expect_openai {
        prop_assert_eq!(answer.map(|a| a.label), Ok(label));
    }
    // The other dialects' parsers take every body too.
    for provider in [
        Provider::Anthropic(AnthropicConfig::default()),
        Provider::Gemini(GeminiConfig::default()),
    ] {
        check_answer(&provider.parse_answer(body, labels), labels)?;
    }
    for (i, path) in paths.iter().enumerate() {
        let answer = http(path).parse_answer(body, labels);
        check_answer(&answer, labels)?;
        if let Some(label) = expect_http.filter(|_| i == 0) {
            prop_assert_eq!(answer.map(|a| a.label), Ok(label), "at {:?}", path);
        }
    }
    if let Some(api) = parse_api_error(body) {
        check_api_error(&api)?;
        prop_assert!(api.to_string().len() <= MAX_ERROR_BYTES);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------

fn labels() -> impl Strategy<Value = LabelSet> {
    let pool = vec![
        "cat",
        "dog",
        "Cat",
        "3",
        "0",
        "bird flying",
        "\u{c9}clair",
        "\"q\"",
        "a.b",
        "null",
    ];
    (
        vec(prop::sample::select(pool), 0..5),
        vec("[a-zA-Z0-9 \u{e9}]{1,8}", 0..3),
    )
        .prop_map(|(a, b)| {
            LabelSet::from_labels(
                a.into_iter()
                    .map(str::to_owned)
                    .chain(b)
                    .filter(|l| !l.trim().is_empty() && l.trim() == l),
            )
        })
}

/// A string of every kind an endpoint sends: short, long, odd, escaped.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 ]{0,12}",
        1 => "\\PC{0,20}",
        1 => (1usize..20_000).prop_map(|n| "x\u{e9}\n".repeat(n)),
        1 => Just(String::new()),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(1.5e300)),
        Just(json!(-0.0)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep.
fn any_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec(("[a-z_]{1,8}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// `Some(v)` to set a field to `v`, `None` to leave it out; mostly `proper`.
fn field(proper: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => proper.prop_map(Some),
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => any_value().prop_map(Some),
    ]
}

/// What the model says, given a label it means (maybe outside the set).
fn content(label: String) -> impl Strategy<Value = String> {
    let l = label.clone();
    prop_oneof![
        3 => Just(json!({ "label": l }).to_string()),
        2 => Just(label.clone()),
        1 => Just(format!("  \"{}\" ", label.to_uppercase())),
        1 => Just(format!("```json\n{}\n```", json!({ "label": label }))),
        1 => Just(format!("```json {}```", json!({ "label": label }))),
        1 => Just(json!(label).to_string()),
        1 => Just(format!("{{\"label\": \"{label}")),
        1 => Just(format!("{{\"label\": {label}}}")),
        1 => text(),
    ]
}

fn usage() -> impl Strategy<Value = Value> {
    (field(number()), field(number()), field(number())).prop_map(|(p, c, t)| {
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("prompt_tokens", p),
            ("completion_tokens", c),
            ("total_tokens", t),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        Value::Object(m)
    })
}

/// An error body in one of the shapes endpoints use, and whether
/// `parse_api_error` must read it (it needs some text to show).
pub(crate) fn error_body() -> BoxedStrategy<(Value, bool)> {
    let code = prop_oneof![
        Just(json!("insufficient_quota")),
        Just(json!("model_not_found")),
        Just(json!("invalid_api_key")),
        number(),
        any_value(),
    ];
    let string = || text().prop_map(Value::String);
    prop_oneof![
        (field(string()), field(string()), field(code)).prop_map(|(m, t, c)| {
            let mut e = serde_json::Map::new();
            for (k, v) in [("message", m), ("type", t), ("code", c)] {
                if let Some(v) = v {
                    e.insert(k.into(), v);
                }
            }
            (json!({ "error": e }), true)
        }),
        text().prop_map(|m| (json!({ "error": m }), !m.is_empty())),
        (text(), text())
            .prop_map(|(m, c)| (json!({ "object": "error", "message": m, "code": c }), true)),
        text().prop_map(|m| (json!({ "detail": m }), !m.is_empty())),
        vec((text(), text()), 0..3).prop_map(|items| {
            let readable = items.first().is_some_and(|(m, _)| !m.is_empty());
            let detail: Vec<Value> = items
                .into_iter()
                .map(|(m, t)| json!({ "msg": m, "type": t }))
                .collect();
            (json!({ "detail": detail }), readable)
        }),
    ]
    .boxed()
}

/// A chat completion near the real shape, and the label index a correct parser
/// must find when the body is well formed and names a label of the set.
pub(crate) fn openai_body(labels: LabelSet) -> impl Strategy<Value = (String, Option<usize>)> {
    let mut said: Vec<String> = labels.names().to_vec();
    said.extend(["fox".to_owned(), "CAT".to_owned(), String::new()]);
    (prop::sample::select(said), any::<bool>()).prop_flat_map(move |(label, clean)| {
        let labels = labels.clone();
        let expect = labels.index_of(&label);
        let proper_content = json!({ "label": label }).to_string();
        (
            content(label).boxed(),
            field(Just(json!("stop"))).boxed(),
            field(prop_oneof![3 => Just(json!(null)), 1 => Just(json!("")), 1 => text().prop_map(Value::String)]).boxed(),
            field(usage()).boxed(),
            vec(any_value(), 0..3).boxed(),
            prop::option::weighted(0.1, error_body().prop_map(|(e, _)| e)).boxed(),
        )
            .prop_map(move |(content, finish, refusal, usage, more, error)| {
                if clean && expect.is_some() {
                    // Well formed: the parser must find exactly this label.
                    let body = json!({
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "choices": [{ "index": 0, "message": { "role": "assistant", "content": proper_content, "refusal": null }, "finish_reason": "stop" }],
                        "usage": { "prompt_tokens": 1, "completion_tokens": 2 }
                    });
                    return (body.to_string(), expect);
                }
                let mut message = serde_json::Map::new();
                message.insert("role".into(), json!("assistant"));
                message.insert("content".into(), json!(content));
                if let Some(r) = refusal {
                    message.insert("refusal".into(), r);
                }
                let mut choice = serde_json::Map::new();
                choice.insert("message".into(), Value::Object(message));
                if let Some(f) = finish {
                    choice.insert("finish_reason".into(), f);
                }
                let mut choices = vec![Value::Object(choice)];
                choices.extend(more);
                let mut body = serde_json::Map::new();
                body.insert("choices".into(), Value::Array(choices));
                if let Some(u) = usage {
                    body.insert("usage".into(), u);
                }
                if let Some(Value::Object(e)) = error {
                    body.extend(e);
                }
                (Value::Object(body).to_string(), None)
            })
    })
}

/// A generic endpoint's answer with the prediction at a dotted path, the path,
/// and the label index a correct parser must find there, when it must.
fn http_body(labels: LabelSet) -> impl Strategy<Value = (String, String, Option<usize>)> {
    let mut said: Vec<String> = labels.names().to_vec();
    said.extend(["fox".to_owned(), " cat ".to_owned()]);
    let leaf = prop_oneof![
        3 => prop::sample::select(said).prop_map(Value::String),
        1 => any_value(),
    ];
    let segment = prop_oneof![
        3 => "[a-z]{1,6}",
        1 => (0usize..3).prop_map(|i| i.to_string()),
        1 => Just("99999999999999999999999".to_owned()),
        1 => Just(String::new()),
    ];
    (vec(segment, 0..4), leaf, any::<bool>()).prop_map(move |(path, leaf, wrap_arrays)| {
        // A path of one empty segment reads as no path: the whole answer.
        let reachable = !(path.len() == 1 && path[0].is_empty());
        let expect = match &leaf {
            Value::String(s) if reachable => labels.index_of(s),
            _ => None,
        };
        let mut value = leaf;
        for seg in path.iter().rev() {
            value = match seg.parse::<usize>() {
                Ok(i) if wrap_arrays && i < 3 => {
                    let mut items = vec![Value::Null; i + 1];
                    items[i] = value;
                    Value::Array(items)
                }
                _ => json!({ seg.clone(): value }),
            };
        }
        (value.to_string(), path.join("."), expect)
    })
}

/// Deeply nested JSON: must be refused (recursion limit), not overflow the stack.
fn deep() -> impl Strategy<Value = String> {
    (
        1usize..20_000,
        prop::sample::select(vec!["[", "{\"a\":", "{\"choices\":"]),
    )
        .prop_map(|(n, open)| open.repeat(n))
}

fn paths() -> Vec<String> {
    [
        "prediction",
        "label",
        "",
        "result.label",
        "choices.0.label",
        "choices.0.message.content",
        "error.message",
        "a..b",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn seeds_as_they_are() {
    let labels = LabelSet::from_labels(["cat", "dog", "3"]);
    for (name, seed) in corpus::seeds(TARGET) {
        if let Err(e) = check_body(&seed.text(), &labels, &paths(), None) {
            panic!("seed {name}: {e}");
        }
    }
}

#[test]
fn well_formed_answers_are_read() {
    // The generators' oracles rest on these; if the parsers stopped reading good
    // answers, the fuzz targets would say so too.
    let labels = LabelSet::from_labels(["cat", "dog"]);
    let body = json!({"choices": [{"message": {"content": "{\"label\":\"dog\"}"}}]}).to_string();
    assert_eq!(openai().parse_answer(&body, &labels).unwrap().label, 1);
    let body = json!({"content": [{"type": "tool_use", "input": {"label": "dog"}}]}).to_string();
    let anthropic = Provider::Anthropic(AnthropicConfig::default());
    assert_eq!(anthropic.parse_answer(&body, &labels).unwrap().label, 1);
    let body = json!({"candidates": [{"content": {"parts": [{"text": "{\"label\":\"cat\"}"}]}}]})
        .to_string();
    let gemini = Provider::Gemini(GeminiConfig::default());
    assert_eq!(gemini.parse_answer(&body, &labels).unwrap().label, 0);
    let body = json!({"result": [{"label": "cat"}]}).to_string();
    assert_eq!(
        http("result.0.label")
            .parse_answer(&body, &labels)
            .unwrap()
            .label,
        0
    );
}

proptest! {
    #![proptest_config(crate::config(1500))]

    #[test]
    fn openai_answers(case in labels().prop_flat_map(|l| (openai_body(l.clone()), Just(l)))) {
        let ((body, expect), labels) = case;
        check_body(&body, &labels, &[], expect)?;
    }
}

proptest! {
    #![proptest_config(crate::config(3000))]

    #[test]
    fn http_json_answers(case in labels().prop_flat_map(|l| (http_body(l.clone()), Just(l)))) {
        let ((body, path, expect), labels) = case;
        check_body_expecting(&body, &labels, &[path], None, expect)?;
    }
}

proptest! {
    #![proptest_config(crate::config(500))]

    #[test]
    fn error_bodies((body, readable) in error_body(), labels in labels()) {
        let body = body.to_string();
        prop_assert_eq!(parse_api_error(&body).is_some(), readable, "{}", body);
        check_body(&body, &labels, &paths(), None)?;
    }
}

proptest! {
    #![proptest_config(crate::config(2000))]

    #[test]
    fn any_body(
        body in prop_oneof![
            3 => corpus::noise(),
            6 => corpus::mutated(TARGET),
            1 => deep().prop_map(|s| Bytes(s.into_bytes())),
        ],
        labels in labels(),
    ) {
        check_body(&body.text(), &labels, &paths(), None)?;
    }
}
