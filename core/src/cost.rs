//! What a run cost: tokens per image and, when a price is known, money.
//!
//! A price comes from the user (the run's `price`), else from a small table of
//! well-known models whose list prices were checked on [`PRICES_CHECKED`]; a
//! model in neither gets no money figure, never a guess.

use serde::{Deserialize, Serialize};

/// Token usage an endpoint reported for one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Tokens in the prompt (text and image).
    pub prompt_tokens: u64,
    /// Tokens in the answer.
    pub completion_tokens: u64,
    /// As reported, usually the sum of the two.
    pub total_tokens: u64,
}

/// US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    /// Per million prompt (input) tokens, image tokens included.
    pub input_per_million: f64,
    /// Per million completion (output) tokens.
    pub output_per_million: f64,
}

impl Price {
    /// Whether both figures are finite and between 0 and 10,000.
    pub fn is_valid(&self) -> bool {
        [self.input_per_million, self.output_per_million]
            .iter()
            .all(|p| p.is_finite() && (0.0..=10_000.0).contains(p))
    }
}

/// When the table's prices were checked.
pub const PRICES_CHECKED: &str = "2026-12-01";

/// Standard (not batch, not cached) list prices of a few models, USD per million
/// tokens (this machine cannot reach the pricing pages themselves):
///
/// - OpenAI's, as OpenAI's pricing page gave them according to two copies of it
///   dated March and May 2026;
/// - Anthropic's, as the table of Anthropic's pricing page
///   (<https://platform.claude.com/docs/en/about-claude/pricing>, "Model
///   pricing": base input tokens and output tokens) gave them in a copy read on
///   2026-12-01 through the docs search; Anthropic states the Message Batches
///   price as 50% of these. Models whose price that copy and the newer model
///   pages disagree on (the Claude 5 generation) are left out.
///
/// Dated snapshots (`gpt-4o-mini-2024-07-18`, `claude-haiku-4-5-20251001`) take
/// their family's price.
const KNOWN_PRICES: [(&str, f64, f64); 19] = [
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-5-mini", 0.25, 2.00),
    ("gpt-5", 1.25, 10.00),
    ("o4-mini", 1.10, 4.40),
    ("claude-opus-4-6", 5.00, 25.00),
    ("claude-opus-4-5", 5.00, 25.00),
    ("claude-opus-4-1", 15.00, 75.00),
    ("claude-opus-4", 15.00, 75.00),
    ("claude-sonnet-4-6", 3.00, 15.00),
    ("claude-sonnet-4-5", 3.00, 15.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-haiku-4-5", 1.00, 5.00),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-3-haiku", 0.25, 1.25),
];

/// The table's price of `model`: the longest known name it is, or it starts
/// with followed by a snapshot's date (`-20251001`, `-2024-07-18`) or `-latest`
/// (so `gpt-4o-mini-2024-07-18` is `gpt-4o-mini`, not `gpt-4o`, and
/// `claude-opus-4-7` is no model of the table rather than `claude-opus-4`).
pub fn list_price(model: &str) -> Option<Price> {
    fn snapshot(rest: &str) -> bool {
        let Some(tail) = rest.strip_prefix('-') else {
            return rest.is_empty();
        };
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let dashed = tail.split('-').collect::<Vec<_>>();
        tail == "latest"
            || digits(tail, 8)
            || (dashed.len() == 3
                && digits(dashed[0], 4)
                && digits(dashed[1], 2)
                && digits(dashed[2], 2))
    }
    KNOWN_PRICES
        .iter()
        .filter(|(name, ..)| model.strip_prefix(name).is_some_and(snapshot))
        .max_by_key(|(name, ..)| name.len())
        .map(|&(_, input, output)| Price {
            input_per_million: input,
            output_per_million: output,
        })
}

/// Where the price of a cost figure came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "source")]
pub enum PriceSource {
    /// Given with the run's settings.
    Given,
    /// The built-in table of list prices, checked on `checked`.
    ListPrice {
        /// The model the price is for.
        model: String,
        /// When the table was checked.
        checked: String,
    },
}

/// The price a cost figure used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceUsed {
    /// The price.
    #[serde(flatten)]
    pub price: Price,
    /// Where it came from.
    #[serde(flatten)]
    pub source: PriceSource,
    /// The run went through the provider's batch API, which charges half the
    /// live price: `price` is already halved (from the price given or listed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch_api: bool,
}

/// What the run's answered items cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// Items whose answer reported its token usage.
    pub items_with_usage: usize,
    /// Mean tokens (prompt + completion) per such item.
    pub tokens_per_image: Option<f64>,
    /// The price used; null when none is known for the model.
    pub price: Option<PriceUsed>,
    /// US dollars for the tokens counted, at `price`.
    pub amount_usd: Option<f64>,
    /// `amountUsd` per item with usage.
    pub usd_per_image: Option<f64>,
}

impl Cost {
    /// The cost of `usage` over `items` answered items, at the `given` price or else
    /// the list price of `model`.
    pub fn of(usage: Usage, items: usize, given: Option<Price>, model: Option<&str>) -> Cost {
        let price = match (given, model.and_then(|m| list_price(m).map(|p| (m, p)))) {
            (Some(price), _) => Some(PriceUsed {
                price,
                source: PriceSource::Given,
                batch_api: false,
            }),
            (None, Some((model, price))) => Some(PriceUsed {
                price,
                source: PriceSource::ListPrice {
                    model: model.to_owned(),
                    checked: PRICES_CHECKED.to_owned(),
                },
                batch_api: false,
            }),
            (None, None) => None,
        };
        Cost::at(usage, items, price)
    }

    /// The cost of a run that went through the provider's batch API: half the
    /// price `of` would use, as OpenAI and Anthropic charge for batches.
    pub fn of_batch(usage: Usage, items: usize, given: Option<Price>, model: Option<&str>) -> Cost {
        let price = Cost::of(Usage::default(), 0, given, model)
            .price
            .map(|used| PriceUsed {
                price: Price {
                    input_per_million: used.price.input_per_million / 2.0,
                    output_per_million: used.price.output_per_million / 2.0,
                },
                batch_api: true,
                ..used
            });
        Cost::at(usage, items, price)
    }

    fn at(usage: Usage, items: usize, price: Option<PriceUsed>) -> Cost {
        let amount = price.as_ref().map(|p| p.price.usd(usage));
        let per_item = |x: f64| (items > 0).then(|| x / items as f64);
        Cost {
            items_with_usage: items,
            tokens_per_image: per_item(usage.total_tokens as f64)
                .map(|t| (t * 10.0).round() / 10.0),
            price,
            amount_usd: amount.map(round_usd),
            usd_per_image: amount.and_then(per_item).map(round_usd),
        }
    }
}

impl Price {
    /// What `usage` costs at this price, in dollars (not rounded).
    pub fn usd(&self, usage: Usage) -> f64 {
        (usage.prompt_tokens as f64 * self.input_per_million
            + usage.completion_tokens as f64 * self.output_per_million)
            / 1e6
    }
}

impl PriceUsed {
    /// What one row's `usage` cost, rounded to a millionth of a dollar.
    pub fn row_usd(&self, usage: Usage) -> f64 {
        round_usd(self.price.usd(usage))
    }
}

/// Rounded to a millionth of a dollar: enough for a per-image figure.
fn round_usd(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: u64, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        }
    }

    #[test]
    fn dated_snapshots_take_their_familys_price_and_unknown_models_none() {
        let mini = list_price("gpt-4o-mini-2024-07-18").unwrap();
        assert_eq!(
            (mini.input_per_million, mini.output_per_million),
            (0.15, 0.60)
        );
        assert_eq!(list_price("gpt-4o").unwrap().input_per_million, 2.50);
        assert_eq!(list_price("gpt-4.1-mini").unwrap().input_per_million, 0.40);
        assert_eq!(list_price("gpt-4oops"), None);
        // Claude: the family, its dated snapshots and alias; no guess for a
        // version the table does not have.
        let haiku = list_price("claude-haiku-4-5").unwrap();
        assert_eq!(
            (haiku.input_per_million, haiku.output_per_million),
            (1.00, 5.00)
        );
        assert_eq!(list_price("claude-haiku-4-5-20251001"), Some(haiku));
        assert_eq!(
            list_price("claude-opus-4-20250514")
                .unwrap()
                .input_per_million,
            15.00
        );
        assert_eq!(
            list_price("claude-opus-4-5").unwrap().input_per_million,
            5.00
        );
        assert_eq!(
            list_price("claude-3-5-haiku-latest")
                .unwrap()
                .output_per_million,
            4.00
        );
        assert_eq!(list_price("claude-opus-4-7"), None);
        assert_eq!(list_price("claude-haiku-5-5"), None);
        assert_eq!(list_price("gpt-4o-audio-preview"), None);
        assert_eq!(list_price("claude-mock"), None);
        assert_eq!(list_price("shadow-mock-1"), None);
        assert_eq!(list_price(""), None);
    }

    #[test]
    fn cost_uses_the_given_price_then_the_list_price_and_never_guesses() {
        // 300 images at 1000 prompt + 5 completion tokens.
        let used = usage(300_000, 1_500);
        let listed = Cost::of(used, 300, None, Some("gpt-4o-mini"));
        // 0.3 M x $0.15 + 0.0015 M x $0.60 = $0.045 + $0.0009.
        assert_eq!(listed.amount_usd, Some(0.0459));
        assert_eq!(listed.usd_per_image, Some(0.000153));
        assert_eq!(listed.tokens_per_image, Some(1005.0));
        let source = &listed.price.as_ref().unwrap().source;
        assert!(
            matches!(source, PriceSource::ListPrice { checked, .. } if checked == PRICES_CHECKED)
        );
        let given = Price {
            input_per_million: 1.0,
            output_per_million: 2.0,
        };
        let paid = Cost::of(used, 300, Some(given), Some("gpt-4o-mini"));
        assert_eq!(paid.amount_usd, Some(0.303));
        assert_eq!(paid.price.unwrap().source, PriceSource::Given);
        let batch = Cost::of_batch(used, 300, None, Some("gpt-4o-mini"));
        assert_eq!(batch.amount_usd, Some(0.02295), "half of the live cost");
        let batch_price = batch.price.as_ref().unwrap();
        assert!(batch_price.batch_api);
        assert_eq!(batch_price.price.input_per_million, 0.075);
        assert_eq!(
            serde_json::to_value(&batch).unwrap()["price"]["batchApi"],
            true
        );
        assert_eq!(
            Cost::of_batch(used, 300, Some(given), None).amount_usd,
            Some(0.1515)
        );
        assert!(serde_json::to_value(&listed).unwrap()["price"]
            .get("batchApi")
            .is_none());
        let unknown = Cost::of(used, 300, None, Some("my-model"));
        assert_eq!((unknown.price, unknown.amount_usd), (None, None));
        assert_eq!(unknown.tokens_per_image, Some(1005.0));
        let json = serde_json::to_value(&listed).unwrap();
        assert_eq!(json["price"]["source"], "listPrice");
        assert_eq!(json["price"]["inputPerMillion"], 0.15);
        assert_eq!(
            Cost::of(Usage::default(), 0, None, None).tokens_per_image,
            None
        );
    }
}
