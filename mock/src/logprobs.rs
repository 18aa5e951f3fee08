//! The log-probabilities the mock gives when a request asks: seeded, and as well
//! calibrated as [`MockConfig::overconfidence`] says.
//!
//! A calibrated confidence for an answer that agrees with the true label with
//! chance `r` (the row's accuracy): confidences take `K` = 20 levels `c_k`
//! spread evenly over `[2r - 1, 1]` (over `[0, 2r]` when `r < 0.5`), whose mean is
//! `r`. An answer that agrees draws level `k` with chance `c_k / sum(c)`, one that
//! disagrees with chance `(1 - c_k) / sum(1 - c)`. Then, by Bayes, of the answers
//! at level `c_k` a share `c_k` agree: calibrated, whatever the answers the mock
//! already chose (the draw does not change them). The reported confidence is
//! `c + x (1 - c)` for overconfidence `x`.
//!
//! The rest, `1 - c`, goes to the other labels: 70% of it to the true label when
//! the answer is wrong (the rest shared by the others), shared evenly when right.
//! Each label is one token; the answer is `{"label":"<label>"}` in five tokens.

use serde_json::{json, Value};

use crate::answers::Decision;
use crate::config::MockConfig;
use crate::dialect::{AnswerFormat, Parsed};

/// Levels a confidence takes.
const LEVELS: usize = 20;
/// Smallest probability given (so that every log-probability is finite).
const FLOOR: f64 = 1e-9;

/// The calibrated confidence of the answer `d` (before overconfidence).
pub(crate) fn calibrated(d: &Decision, agrees: bool) -> f64 {
    let r = d.accuracy;
    let (lo, hi) = if r >= 0.5 {
        (2.0 * r - 1.0, 1.0)
    } else {
        (0.0, 2.0 * r)
    };
    let level = |k: usize| lo + (hi - lo) * (k as f64 + 0.5) / LEVELS as f64;
    let weight = |k: usize| {
        if agrees {
            level(k)
        } else {
            1.0 - level(k)
        }
    };
    let total: f64 = (0..LEVELS).map(weight).sum();
    let mut target = d.confidence_roll * total;
    for k in 0..LEVELS {
        target -= weight(k);
        if target < 0.0 {
            return level(k);
        }
    }
    level(LEVELS - 1)
}

/// Each label's probability for the answer `d`.
pub(crate) fn label_probabilities(cfg: &MockConfig, req: &Parsed, d: &Decision) -> Vec<f64> {
    let n = req.labels.len();
    let chosen = req.labels.iter().position(|l| *l == d.label).unwrap_or(0);
    let agrees = chosen == d.truth;
    let c = calibrated(d, agrees);
    let c = (c + cfg.overconfidence.clamp(0.0, 1.0) * (1.0 - c)).clamp(FLOOR, 1.0);
    let mut p = vec![0.0; n];
    p[chosen] = c;
    let rest = 1.0 - c;
    let others = n.saturating_sub(1);
    if others > 0 {
        if agrees || others == 1 {
            for (i, v) in p.iter_mut().enumerate() {
                if i != chosen {
                    *v = rest / others as f64;
                }
            }
        } else {
            for (i, v) in p.iter_mut().enumerate() {
                if i == d.truth {
                    *v = 0.7 * rest;
                } else if i != chosen {
                    *v = 0.3 * rest / (others - 1) as f64;
                }
            }
        }
    }
    p.iter().map(|v| v.max(FLOOR)).collect()
}

/// The label's tokens: the label as it stands in the answer's JSON string.
fn label_token(label: &str) -> String {
    let quoted = serde_json::to_string(label).expect("a string serializes");
    quoted[1..quoted.len() - 1].to_owned()
}

/// A token, its log-probability and the alternatives at its step.
type Step = (String, f64, Vec<(String, f64)>);

/// The answer's tokens and log-probabilities, and at the label's token the `top`
/// likeliest labels (at least the chosen one).
fn tokens(cfg: &MockConfig, req: &Parsed, d: &Decision, top: usize) -> Vec<Step> {
    let p = label_probabilities(cfg, req, d);
    let chosen = req.labels.iter().position(|l| *l == d.label).unwrap_or(0);
    let mut ranked: Vec<usize> = (0..p.len()).collect();
    ranked.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    ranked.truncate(top.max(1));
    let alternatives = ranked
        .iter()
        .map(|&i| (label_token(&req.labels[i]), p[i].ln()))
        .collect();
    let label = (label_token(&d.label), p[chosen].ln(), alternatives);
    let fixed = |t: &str| (t.to_owned(), 0.0, Vec::new());
    match req.format {
        AnswerFormat::Json => vec![
            fixed("{\""),
            fixed("label"),
            fixed("\":\""),
            label,
            fixed("\"}"),
        ],
        AnswerFormat::Text => vec![label],
    }
}

/// OpenAI's `choices[0].logprobs`: `{"content": [{token, logprob, bytes,
/// top_logprobs}], "refusal": null}`.
pub(crate) fn openai_logprobs(cfg: &MockConfig, req: &Parsed, d: &Decision, top: usize) -> Value {
    let entry = |t: &str, l: f64| json!({ "token": t, "logprob": l, "bytes": t.as_bytes() });
    let content: Vec<Value> = tokens(cfg, req, d, top)
        .into_iter()
        .map(|(token, logprob, alts)| {
            let mut e = entry(&token, logprob);
            e["top_logprobs"] = alts.iter().map(|(t, l)| entry(t, *l)).collect();
            e
        })
        .collect();
    json!({ "content": content, "refusal": null })
}

/// Gemini's `candidates[0].logprobsResult`: `chosenCandidates` and
/// `topCandidates`, a zero log-probability left out as proto3 JSON does.
pub(crate) fn gemini_result(cfg: &MockConfig, req: &Parsed, d: &Decision, top: usize) -> Value {
    let entry = |t: &str, l: f64| {
        let mut e = json!({ "token": t, "tokenId": t.len() });
        if l != 0.0 {
            e["logProbability"] = json!(l);
        }
        e
    };
    let steps = tokens(cfg, req, d, top);
    let chosen: Vec<Value> = steps.iter().map(|(t, l, _)| entry(t, *l)).collect();
    let top: Vec<Value> = steps
        .iter()
        .map(|(t, l, alts)| {
            let candidates: Vec<Value> = if alts.is_empty() {
                vec![entry(t, *l)]
            } else {
                alts.iter().map(|(t, l)| entry(t, *l)).collect()
            };
            json!({ "candidates": candidates })
        })
        .collect();
    json!({ "topCandidates": top, "chosenCandidates": chosen })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answers::decide;
    use crate::testing::{image, labels, LABELS};
    use crate::Truth;

    fn request(i: usize) -> Parsed {
        Parsed {
            model: "m".into(),
            labels: labels(),
            image: image(i),
            images: 1,
            text_chars: 0,
            max_tokens: None,
            format: AnswerFormat::Json,
            logprobs: Some(20),
        }
    }

    /// Of 20,000 answers at accuracy 0.8, those given confidence near c agree
    /// near a share c of the time (calibrated); with overconfidence 0.5 the mean
    /// confidence is well above the agreement. Bins of 0.1, each within 0.03 of
    /// its mean confidence (binomial sd at n >= 1000 is under 0.016).
    #[test]
    fn calibrated_means_confidence_matches_agreement() {
        let truth = Truth::from_pairs((0..20_000).map(|i| (image(i), LABELS[i % 4].to_string())));
        for (over, calibrated) in [(0.0, true), (0.5, false)] {
            let cfg = MockConfig {
                accuracy: 0.8,
                overconfidence: over,
                ..MockConfig::default()
            };
            let mut bins = [(0.0f64, 0usize, 0usize); 10];
            let (mut sum_c, mut agreed) = (0.0, 0usize);
            for i in 0..20_000 {
                let req = request(i);
                let d = decide(&cfg, Some(&truth), &req, 0);
                let p = label_probabilities(&cfg, &req, &d);
                let chosen = req.labels.iter().position(|l| *l == d.label).unwrap();
                let c = p[chosen];
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{p:?}");
                let agree = d.label == LABELS[i % 4];
                let b = ((c * 10.0) as usize).min(9);
                bins[b].0 += c;
                bins[b].1 += 1;
                bins[b].2 += usize::from(agree);
                sum_c += c;
                agreed += usize::from(agree);
            }
            let gap = sum_c / 20_000.0 - agreed as f64 / 20_000.0;
            if calibrated {
                assert!(gap.abs() < 0.01, "mean confidence vs agreement {gap}");
                for (sum, n, a) in bins.iter().filter(|b| b.1 >= 1000) {
                    let (mean, rate) = (sum / *n as f64, *a as f64 / *n as f64);
                    assert!(
                        (mean - rate).abs() < 0.03,
                        "bin mean {mean} agrees {rate} ({n})"
                    );
                }
            } else {
                assert!(gap > 0.05, "overconfident by only {gap}");
            }
        }
    }

    /// The body the core reads back gives the probabilities the mock meant.
    #[test]
    fn the_core_reads_the_mocks_logprobs() {
        let cfg = MockConfig::default();
        let set = shadow_core::input::LabelSet::from_labels(labels());
        let openai = shadow_core::provider::Provider::OpenAi(shadow_core::provider::OpenAiConfig {
            base_url: "http://x/v1".into(),
            model: "m".into(),
            detail: shadow_core::provider::ImageDetail::Low,
            prompt: None,
        });
        let gemini = shadow_core::provider::Provider::Gemini(Default::default());
        for i in 0..50 {
            let req = request(i);
            let d = decide(&cfg, None, &req, 0);
            let p = label_probabilities(&cfg, &req, &d);
            let bodies = [
                (
                    &openai,
                    crate::openai::completion_body(&cfg, &req, &d, false),
                ),
                (&gemini, crate::gemini::answer_body(&cfg, &req, &d)),
            ];
            for (provider, body) in bodies {
                let answer = provider.parse_answer(&body.to_string(), &set).unwrap();
                let shadow_core::confidence::Scored::Given(c) = answer.confidence else {
                    panic!("{:?}", answer.confidence);
                };
                let total: f64 = p.iter().sum();
                let name = &set.names()[answer.label];
                let i = req.labels.iter().position(|l| l == name).unwrap();
                assert!((c.probability - p[i] / total).abs() < 1e-9);
            }
        }
    }

    /// `--refuse-logprobs`: a request that asks gets a 400 the core reads as a
    /// refusal of log-probabilities (OpenAI, Azure, Gemini words); one that does
    /// not ask is answered.
    #[test]
    fn refusing_logprobs_is_a_400_the_core_recognises() {
        use crate::dialect::Dialect;
        let cfg = MockConfig {
            refuse_logprobs: true,
            ..MockConfig::default()
        };
        for dialect in [Dialect::OpenAi, Dialect::Azure, Dialect::Gemini] {
            let req = request(0);
            let d = decide(&cfg, None, &req, 0);
            let (status, body) = dialect.answer(&cfg, &req, &d, b"{}");
            assert_eq!(status.as_u16(), 400);
            let response = shadow_core::http::HttpResponse {
                status: 400,
                headers: Vec::new(),
                body: body.to_string(),
            };
            assert!(shadow_core::provider::rejects_logprobs(&response), "{body}");
            let plain = Parsed {
                logprobs: None,
                ..request(0)
            };
            let (status, _) = dialect.answer(&cfg, &plain, &d, b"{}");
            assert_eq!(status.as_u16(), 200);
        }
    }
}
