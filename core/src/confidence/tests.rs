//! Label probabilities from token log-probabilities, and the dialects' readers on
//! the documented response shapes.
//!
//! Expected values were computed by hand with Python's `math.exp`:
//!
//! ```python
//! import math; e = math.exp
//! a = [e(-0.1), e(-2.5), e(-4.0)]; s = sum(a); print([x / s for x in a])
//! # [0.9001225262429595, 0.08165727329045679, 0.018220200466583722]
//! cp = e(-0.05 - 0.2 - 0.01 - 0.02); ct = e(-0.05) * (e(-1.7) + e(-3.5)); dg = e(-3.0)
//! s = cp + ct + dg; print(cp / s, ct / s, dg / s)
//! # 0.7497338444730469 0.20087762263712805 0.04938853288982496
//! d = e(-0.3); car = (e(-1.4) + e(-5)) / 2; s = d + 2 * car; print(d / s, car / s)
//! # 0.7451751617708414 0.12741241911457926
//! ```

use super::*;
use crate::input::LabelSet;
use crate::provider::{GeminiConfig, ImageDetail, OpenAiConfig, Provider};

fn step(token: &str, logprob: f64, top: &[(&str, f64)]) -> TokenStep {
    TokenStep {
        token: token.to_owned(),
        logprob,
        top: top.iter().map(|(t, l)| ((*t).to_owned(), *l)).collect(),
    }
}

/// The index of label `name` (a label set keeps its labels sorted).
fn at(labels: &LabelSet, name: &str) -> usize {
    labels.index_of(name).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// `{"label":"cat"}` in OpenAI's usual tokens; the value is one token.
fn single_token_steps() -> Vec<TokenStep> {
    vec![
        step("{\"", 0.0, &[]),
        step("label", 0.0, &[]),
        step("\":\"", 0.0, &[]),
        step("cat", -0.1, &[("cat", -0.1), ("dog", -2.5), ("bird", -4.0)]),
        step("\"}", 0.0, &[("\"}", 0.0)]),
    ]
}

#[test]
fn single_token_labels_are_their_alternatives_renormalised() {
    let labels = LabelSet::from_labels(["cat", "dog", "bird"]);
    let [cat, dog, bird] = ["cat", "dog", "bird"].map(|l| at(&labels, l));
    let p = label_probabilities(&single_token_steps(), cat, labels.names()).unwrap();
    assert!(close(p[cat], 0.9001225262429595), "{p:?}");
    assert!(close(p[dog], 0.08165727329045679), "{p:?}");
    assert!(close(p[bird], 0.018220200466583722), "{p:?}");
    let Scored::Given(c) = score(&single_token_steps(), cat, labels.names()) else {
        panic!("scored");
    };
    assert!(close(c.probability, p[cat]));
    assert_eq!(
        c.alternatives.iter().map(|a| a.label).collect::<Vec<_>>(),
        [dog, bird]
    );
}

/// `caterpillar` spelled `cat` `er` `pill` `ar"}`: the chosen label takes the
/// product of its tokens; `cat` leaves the path at `er`, where `"}` and `"` close
/// it; `dog` leaves at the first token.
#[test]
fn multi_token_labels_follow_the_chosen_path() {
    let labels = LabelSet::from_labels(["caterpillar", "cat", "dog"]);
    let [caterpillar, cat, dog] = ["caterpillar", "cat", "dog"].map(|l| at(&labels, l));
    let steps = vec![
        step("{\"label\":\"", 0.0, &[]),
        step("cat", -0.05, &[("cat", -0.05), ("dog", -3.0)]),
        step("er", -0.2, &[("er", -0.2), ("\"}", -1.7), ("\"", -3.5)]),
        step("pill", -0.01, &[]),
        step("ar\"}", -0.02, &[]),
    ];
    let p = label_probabilities(&steps, caterpillar, labels.names()).unwrap();
    assert!(close(p[caterpillar], 0.7497338444730469), "{p:?}");
    assert!(close(p[cat], 0.20087762263712805), "{p:?}");
    assert!(close(p[dog], 0.04938853288982496), "{p:?}");
}

/// An alternative that begins two labels is shared between them.
#[test]
fn a_token_beginning_several_labels_is_shared() {
    let labels = LabelSet::from_labels(["car", "cat", "dog"]);
    let [car, cat, dog] = ["car", "cat", "dog"].map(|l| at(&labels, l));
    let steps = vec![
        step("{\"label\": \"", 0.0, &[]),
        step(
            "dog",
            -0.3,
            &[("dog", -0.3), ("ca", -1.4), ("c", -5.0), ("x", -6.0)],
        ),
        step("\"}", 0.0, &[]),
    ];
    let p = label_probabilities(&steps, dog, labels.names()).unwrap();
    assert!(close(p[dog], 0.7451751617708414), "{p:?}");
    assert!(close(p[car], 0.12741241911457926), "{p:?}");
    assert!(close(p[cat], p[car]));
}

#[test]
fn tokens_that_do_not_spell_the_label_are_said() {
    let labels = LabelSet::from_labels(["cat", "dog", "bird"]);
    let [cat, dog] = ["cat", "dog"].map(|l| at(&labels, l));
    // Read as dog, spelled cat.
    assert_eq!(
        score(&single_token_steps(), dog, labels.names()),
        Scored::Gap(ConfidenceGap::LabelNotFound)
    );
    // The tokens stop short of the label.
    let short = &single_token_steps()[..3];
    assert_eq!(
        score(short, cat, labels.names()),
        Scored::Gap(ConfidenceGap::LabelNotFound)
    );
    assert_eq!(
        score(&[], cat, labels.names()),
        Scored::Gap(ConfidenceGap::Missing)
    );
}

#[test]
fn a_bare_label_answer_is_read_too() {
    let labels = LabelSet::from_labels(["cat", "dog"]);
    let [cat, dog] = ["cat", "dog"].map(|l| at(&labels, l));
    let steps = vec![step("dog", -0.5, &[("dog", -0.5), ("cat", -1.0)])];
    let p = label_probabilities(&steps, dog, labels.names()).unwrap();
    let (d, c) = ((-0.5f64).exp(), (-1.0f64).exp());
    assert!(
        close(p[dog], d / (d + c)) && close(p[cat], c / (d + c)),
        "{p:?}"
    );
}

fn openai() -> Provider {
    Provider::OpenAi(OpenAiConfig {
        base_url: "https://api.openai.com/v1".into(),
        model: "gpt-4o-mini".into(),
        detail: ImageDetail::Low,
        prompt: None,
    })
}

/// A chat completion in the shape OpenAI's API reference documents for
/// `logprobs` ("The chat completion object": `choices[].logprobs.content[]` of
/// `{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}`,
/// <https://platform.openai.com/docs/api-reference/chat/object>), answering
/// `{"label":"cat"}` under a JSON schema.
const OPENAI_BODY: &str = r#"{
  "id": "chatcmpl-123", "object": "chat.completion", "created": 1702685778,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [{
    "index": 0,
    "message": {"role": "assistant", "content": "{\"label\":\"cat\"}", "refusal": null},
    "logprobs": {
      "content": [
        {"token": "{\"", "logprob": 0.0, "bytes": [123, 34], "top_logprobs": [{"token": "{\"", "logprob": 0.0, "bytes": [123, 34]}]},
        {"token": "label", "logprob": 0.0, "bytes": [108, 97, 98, 101, 108], "top_logprobs": []},
        {"token": "\":\"", "logprob": -1.9e-7, "bytes": [34, 58, 34], "top_logprobs": []},
        {"token": "cat", "logprob": -0.1, "bytes": [99, 97, 116], "top_logprobs": [
          {"token": "cat", "logprob": -0.1, "bytes": [99, 97, 116]},
          {"token": "dog", "logprob": -2.5, "bytes": [100, 111, 103]},
          {"token": "bird", "logprob": -4.0, "bytes": [98, 105, 114, 100]}
        ]},
        {"token": "\"}", "logprob": 0.0, "bytes": [34, 125], "top_logprobs": []}
      ],
      "refusal": null
    },
    "finish_reason": "stop"
  }],
  "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}
}"#;

#[test]
fn openai_documented_logprobs_give_the_confidence() {
    let labels = LabelSet::from_labels(["cat", "dog", "bird"]);
    let answer = openai().parse_answer(OPENAI_BODY, &labels).unwrap();
    assert_eq!(answer.label, at(&labels, "cat"));
    let Scored::Given(c) = answer.confidence else {
        panic!("{:?}", answer.confidence);
    };
    // -1.9e-7 on the ":" token lowers nothing the value depends on.
    assert!((c.probability - 0.9001225262429595).abs() < 1e-9, "{c:?}");
    assert_eq!(c.alternatives[0].label, at(&labels, "dog"));
    assert!((c.alternatives[0].probability - 0.08165727329045679).abs() < 1e-9);
    // Without logprobs (not asked): unscored, the answer the same.
    let plain = r#"{"choices":[{"message":{"content":"{\"label\":\"cat\"}"},"logprobs":null,"finish_reason":"stop"}]}"#;
    let answer = openai().parse_answer(plain, &labels).unwrap();
    assert_eq!(
        (answer.label, answer.confidence),
        (at(&labels, "cat"), Scored::Unscored)
    );
}

#[test]
fn malformed_logprobs_keep_the_answer_and_drop_the_confidence() {
    let labels = LabelSet::from_labels(["cat", "dog", "bird"]);
    for broken in [
        OPENAI_BODY.replacen("\"logprob\": -0.1,", "\"logprob\": \"high\",", 1),
        OPENAI_BODY.replacen("\"logprob\": -0.1,", "\"logprob\": 3.0,", 1),
        OPENAI_BODY
            .replacen("\"content\": [", "\"content\": {\"x\": [", 1)
            .replacen(
                "      ],\n      \"refusal\"",
                "      ]},\n      \"refusal\"",
                1,
            ),
    ] {
        let answer = openai().parse_answer(&broken, &labels).unwrap();
        assert_eq!(answer.label, at(&labels, "cat"), "{broken}");
        assert_eq!(answer.confidence, Scored::Gap(ConfidenceGap::Malformed));
    }
    // Tokens of another answer than the content: said.
    let other = OPENAI_BODY.replacen(
        r#""content": "{\"label\":\"cat\"}""#,
        r#""content": "{\"label\":\"dog\"}""#,
        1,
    );
    let answer = openai().parse_answer(&other, &labels).unwrap();
    assert_eq!(
        (answer.label, answer.confidence),
        (
            at(&labels, "dog"),
            Scored::Gap(ConfidenceGap::LabelNotFound)
        )
    );
}

/// A `generateContent` answer in the shape Gemini's API reference documents for
/// `responseLogprobs` (`Candidate.logprobsResult` with `chosenCandidates[]` and
/// `topCandidates[].candidates[]` of `{token, tokenId, logProbability}`,
/// <https://ai.google.dev/api/generate-content#LogprobsResult>); a zero
/// `logProbability` is left out, as proto3 JSON does.
const GEMINI_BODY: &str = r#"{
  "candidates": [{
    "content": {"parts": [{"text": "{\"label\": \"dog\"}"}], "role": "model"},
    "finishReason": "STOP",
    "avgLogprobs": -0.05,
    "logprobsResult": {
      "topCandidates": [
        {"candidates": [{"token": "{\"label\": \"", "tokenId": 1}]},
        {"candidates": [
          {"token": "dog", "tokenId": 2, "logProbability": -0.1},
          {"token": "cat", "tokenId": 3, "logProbability": -2.5},
          {"token": "bird", "tokenId": 4, "logProbability": -4.0}
        ]},
        {"candidates": [{"token": "\"}", "tokenId": 5}]}
      ],
      "chosenCandidates": [
        {"token": "{\"label\": \"", "tokenId": 1},
        {"token": "dog", "tokenId": 2, "logProbability": -0.1},
        {"token": "\"}", "tokenId": 5}
      ]
    }
  }],
  "usageMetadata": {"promptTokenCount": 300, "candidatesTokenCount": 5, "totalTokenCount": 305}
}"#;

#[test]
fn gemini_documented_logprobs_give_the_confidence() {
    let labels = LabelSet::from_labels(["cat", "dog", "bird"]);
    let gemini = Provider::Gemini(GeminiConfig::default());
    let answer = gemini.parse_answer(GEMINI_BODY, &labels).unwrap();
    assert_eq!(answer.label, at(&labels, "dog"));
    let Scored::Given(c) = answer.confidence else {
        panic!("{:?}", answer.confidence);
    };
    assert!((c.probability - 0.9001225262429595).abs() < 1e-9, "{c:?}");
    assert_eq!(c.alternatives[0].label, at(&labels, "cat"));
    let broken = GEMINI_BODY.replacen("\"logProbability\": -0.1", "\"logProbability\": []", 2);
    let answer = gemini.parse_answer(&broken, &labels).unwrap();
    assert_eq!(answer.confidence, Scored::Gap(ConfidenceGap::Malformed));
}

/// The request asks for log-probabilities where the model gives them: OpenAI's
/// non-reasoning models and Gemini; not reasoning models, not Anthropic.
#[test]
fn requests_ask_where_the_model_gives_them() {
    let labels = LabelSet::from_labels(["cat", "dog"]);
    let body = |p: &Provider| -> serde_json::Value {
        let t = p.request_template_scored(&labels, true);
        let format = crate::provider::OutputFormat::JsonSchema;
        let request = t.build_for("https://x.test/a.png", 1, None, format, true);
        serde_json::from_str(&request.body).unwrap()
    };
    let b = body(&openai());
    assert_eq!(
        (b["logprobs"].clone(), b["top_logprobs"].clone()),
        (true.into(), 20.into())
    );
    let reasoning = Provider::OpenAi(OpenAiConfig {
        model: "o4-mini".into(),
        ..match openai() {
            Provider::OpenAi(c) => c,
            _ => unreachable!(),
        }
    });
    assert!(body(&reasoning).get("logprobs").is_none());
    let g = body(&Provider::Gemini(GeminiConfig::default()));
    assert_eq!(g["generationConfig"]["responseLogprobs"], true);
    assert_eq!(g["generationConfig"]["logprobs"], 20);
    let a = body(&Provider::Anthropic(Default::default()));
    assert!(!a.to_string().contains("logprob"));
}
