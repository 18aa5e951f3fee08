//! How sure the model is of its answer: each allowed label's probability, read
//! from the log-probabilities of the tokens the endpoint says it chose and their
//! top alternatives.
//!
//! Where they come from: OpenAI-compatible chat completions (`logprobs: true,
//! top_logprobs: N`, answered in `choices[0].logprobs.content[]`) and Gemini
//! (`generationConfig.responseLogprobs`, answered in
//! `candidates[0].logprobsResult`). Anthropic gives none. The dialect parsers turn
//! both into [`TokenStep`]s; [`label_probabilities`] does the rest, the same for
//! every endpoint.
//!
//! # How a label's probability is read
//!
//! The answer's text is `{"label": "cat"}` (or a bare `cat`). The tokens are laid
//! end to end, and the label's value is found in them: after the `"label"` key, or,
//! with no key, where the chosen label's name stands. From the token where the
//! value starts, each allowed label `L` is spelled as the text it would be in the
//! answer (`prefix` + `L` JSON-escaped + the closing `"`, where `prefix` is the part
//! of the first value token before the value, e.g. the opening quote):
//!
//! 1. While the chosen tokens spell `L`'s text, `L` takes their probabilities
//!    (a product: the chosen label gets the probability of its whole spelling).
//! 2. At the first token where the chosen path leaves `L`, `L` takes the
//!    probability of the alternatives at that step that spell the rest of `L`'s
//!    text or its beginning (`top_logprobs`). What comes after that step was not
//!    sampled; it is taken as certain, which is what a schema enumerating the labels
//!    makes it once the label is told apart. An alternative token that begins
//!    several labels (`ca` for `cat` and `car`) has its probability shared equally
//!    between them: the one approximation of this reading.
//! 3. A label no alternative spells gets 0 (it was not among the top tokens).
//!
//! The probabilities are then renormalised over the label set (they sum to 1), so a
//! label's probability is "given that the model answers one of the labels". The
//! more alternatives are asked for (up to 20), the less mass is lost to step 3.
//!
//! What this does not do: it does not ask the endpoint twice, nor read probability
//! from a text answer whose tokens do not spell the label (the row then says
//! [`ConfidenceGap::LabelNotFound`] and keeps its answer).

use serde::{Deserialize, Serialize};

/// Top alternatives asked for at each token (the most OpenAI and Gemini give).
pub const TOP_LOGPROBS: u8 = 20;

/// Other labels a result keeps beside the chosen one's probability.
pub const MAX_ALTERNATIVES: usize = 3;

/// One token of the answer as the endpoint chose it, with its alternatives.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenStep {
    /// The token's text.
    pub token: String,
    /// Its natural log-probability.
    pub logprob: f64,
    /// The most likely tokens at this step (the chosen one may be among them), with
    /// their log-probabilities.
    pub top: Vec<(String, f64)>,
}

/// A label and how likely the model found it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelChance<L> {
    /// The label (an index in the label set inside the engine, its name in a result).
    pub label: L,
    /// Probability in `[0, 1]`, renormalised over the label set.
    pub probability: f64,
}

/// The confidence of one answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Confidence {
    /// The chosen label's probability.
    pub probability: f64,
    /// The other labels with a probability above 0, most likely first, at most
    /// [`MAX_ALTERNATIVES`].
    pub alternatives: Vec<LabelChance<usize>>,
}

/// Why an answer that should have a confidence has none. The answer is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ConfidenceGap {
    /// Log-probabilities were asked for and the answer has none.
    Missing,
    /// The log-probabilities are not in the documented shape (a token without a
    /// number, a list that is not one).
    Malformed,
    /// The tokens do not spell the chosen label (the text and its tokens disagree,
    /// or the tokens stop short).
    LabelNotFound,
}

impl ConfidenceGap {
    /// A few words for people.
    pub fn describe(self) -> &'static str {
        match self {
            ConfidenceGap::Missing => "no log-probabilities in the answer",
            ConfidenceGap::Malformed => "log-probabilities unreadable",
            ConfidenceGap::LabelNotFound => "label's tokens not found in the log-probabilities",
        }
    }
}

/// What an answer says of its confidence.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Scored {
    /// The answer carries no log-probabilities (none asked, or a provider without
    /// them); whether that is a gap is the run's to say.
    #[default]
    Unscored,
    /// Read.
    Given(Confidence),
    /// Log-probabilities came and could not be used.
    Gap(ConfidenceGap),
}

/// Whether a run's answers will carry a confidence, and if not, why not
/// (`RunConfig::confidence_availability`): each host words it in its own
/// vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Availability {
    /// Requests ask for log-probabilities.
    Asked,
    /// The settings say not to ask ([`crate::RunConfig::confidence`]).
    TurnedOff,
    /// The provider's API has none (Anthropic, the generic JSON endpoint).
    ProviderGivesNone,
    /// The model is a reasoning model, which refuses them.
    ReasoningModel,
    /// The endpoint refused them earlier in this run.
    Refused,
    /// The run goes through a provider's batch API, whose requests do not ask.
    BatchApi,
}

/// Reads the confidence of an answer read as label `chosen` (an index into the
/// label set's `labels`) from its tokens (see the module doc for the rule).
pub fn score(steps: &[TokenStep], chosen: usize, labels: &[String]) -> Scored {
    if steps.is_empty() {
        return Scored::Gap(ConfidenceGap::Missing);
    }
    let Some(probs) = label_probabilities(steps, chosen, labels) else {
        return Scored::Gap(ConfidenceGap::LabelNotFound);
    };
    let mut others: Vec<LabelChance<usize>> = probs
        .iter()
        .enumerate()
        .filter(|&(i, &p)| i != chosen && p > 0.0)
        .map(|(label, &probability)| LabelChance { label, probability })
        .collect();
    others.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    others.truncate(MAX_ALTERNATIVES);
    Scored::Given(Confidence {
        probability: probs[chosen],
        alternatives: others,
    })
}

/// Each label's probability, renormalised over the label set, or `None` when the
/// tokens do not spell label `chosen`.
pub fn label_probabilities(
    steps: &[TokenStep],
    chosen: usize,
    names: &[String],
) -> Option<Vec<f64>> {
    let text: String = steps.iter().map(|s| s.token.as_str()).collect();
    let escaped = |name: &str| -> String {
        let quoted = serde_json::to_string(name).expect("a string serializes");
        quoted[1..quoted.len() - 1].to_owned()
    };
    let (value_at, closing) = find_value(&text, &escaped(&names[chosen]))?;
    // The token holding the value's first byte, and where it starts.
    let mut start = 0;
    let mut first = None;
    for (k, step) in steps.iter().enumerate() {
        let end = start + step.token.len();
        if value_at < end {
            first = Some((k, start));
            break;
        }
        start = end;
    }
    let (first, first_start) = first?;
    let prefix = &text[first_start..value_at];
    let spelling = |name: &str| {
        let mut s = String::with_capacity(prefix.len() + name.len() + 1);
        s.push_str(prefix);
        s.push_str(&escaped(name));
        if closing {
            s.push('"');
        }
        s
    };
    // Per label: the log-probability of the chosen tokens it shares, and the step
    // (and offset in its spelling) where it leaves the chosen path, if it does.
    enum Walk {
        Spelled(f64),
        Left { log_p: f64, step: usize, at: usize },
        Lost,
    }
    let walks: Vec<(String, Walk)> = names
        .iter()
        .map(|name| {
            let target = spelling(name);
            let mut log_p = 0.0;
            let mut at = 0;
            for (k, step) in steps.iter().enumerate().skip(first) {
                let rest = &target[at..];
                let token = step.token.as_str();
                if token.starts_with(rest) {
                    return (target, Walk::Spelled(log_p + step.logprob));
                }
                if !rest.starts_with(token) || token.is_empty() {
                    return (target, Walk::Left { log_p, step: k, at });
                }
                log_p += step.logprob;
                at += token.len();
            }
            (target, Walk::Lost)
        })
        .collect();
    let mut probs = vec![0.0; names.len()];
    match &walks[chosen].1 {
        Walk::Spelled(log_p) => probs[chosen] = log_p.exp(),
        _ => return None,
    }
    // Alternatives at each step where labels leave the chosen path, shared among
    // the labels each begins.
    for (i, (_, walk)) in walks.iter().enumerate() {
        let Walk::Left { log_p, step, at } = *walk else {
            continue;
        };
        let chosen_token = steps[step].token.as_str();
        let mut mass = 0.0;
        for (token, logprob) in &steps[step].top {
            if token.is_empty() || token == chosen_token {
                continue;
            }
            let begins = |target: &str| {
                let rest = &target[at.min(target.len())..];
                token.starts_with(rest) || rest.starts_with(token.as_str())
            };
            if !begins(&walks[i].0) {
                continue;
            }
            let sharing = walks
                .iter()
                .filter(|(target, w)| {
                    matches!(w, Walk::Left { step: s, at: a, .. } if *s == step && *a == at)
                        && begins(target)
                })
                .count()
                .max(1);
            mass += logprob.exp() / sharing as f64;
        }
        probs[i] = log_p.exp() * mass;
    }
    let total: f64 = probs.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return None;
    }
    for p in &mut probs {
        *p /= total;
    }
    Some(probs)
}

/// Where the label's value starts in the answer's text, and whether it is a JSON
/// string (closed by `"`): after a `"label"` key, else where `escaped` (the chosen
/// label, JSON-escaped) first stands, ignoring ASCII case.
fn find_value(text: &str, escaped: &str) -> Option<(usize, bool)> {
    if let Some(key) = text.find("\"label\"") {
        let after = key + "\"label\"".len();
        let rest = &text[after..];
        let colon = rest.trim_start();
        let colon = colon.strip_prefix(':')?;
        let value = colon.trim_start();
        let at = text.len() - value.len();
        return match value.strip_prefix('"') {
            Some(_) => Some((at + 1, true)),
            // A number as the value (`{"label": 3}`).
            None => Some((at, false)),
        };
    }
    let lower = text.to_ascii_lowercase();
    let at = lower.find(&escaped.to_ascii_lowercase())?;
    let quoted = at > 0 && text.as_bytes()[at - 1] == b'"';
    Some((at, quoted))
}

#[cfg(test)]
mod tests;
