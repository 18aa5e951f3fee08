//! What a run would send, cost and take, worked out before anything is sent.
//!
//! The host walks the CSV once and tells a [`Survey`] what it found for each
//! row: the image file there (and, for a seeded sample of rows the survey
//! asks for, the image's width and height from its header), missing, outside
//! the data folder, or a URL it does not fetch. [`Survey::finish`] turns that
//! into an [`Estimate`]:
//!
//! - tokens per request: the provider's published image formula for the
//!   measured sizes ([`crate::provider::image_tokens`]) plus the prompt's text, and the answer's
//!   `max_tokens`: the same charge the run's token pacing starts from
//!   ([`Provider::token_charge`]), with the image priced at its real size;
//! - cost at the given price or the model's list price, live and through the
//!   provider's batch API (half);
//! - time at the requests- and tokens-per-minute limits the run would be paced
//!   by: the run's own caps, and the limits the endpoint states when the host
//!   was asked to read them ([`limits`]; by default nothing is sent);
//! - how many rows an interval of a given width needs ([`rows_for_interval`]);
//! - for a seeded sample (`config.sample`, the host surveying the sample's rows
//!   only), every figure is the sample's; for a run that stops when its
//!   interval is narrow enough (`config.until_interval`), the rows, cost and
//!   time to the likely stop at a few agreements ([`stop`]).
//!
//! What it does not do: fetch URL images (their rows are charged the seed
//! estimate), count the tokens of the exact prompt with the model's tokenizer
//! (four characters a token), or foresee retries and refusals.

pub mod image_size;
pub mod limits;
pub mod stop;
mod text;
pub use limits::EndpointLimits;
pub use stop::{StopAt, StopEstimate};
pub use text::describe;

use serde::{Deserialize, Serialize};

use crate::cost::{Cost, PriceUsed, Usage};
use crate::hash::{splitmix64, unit_interval};
use crate::input::{CsvOutline, Item, LabelSet};
use crate::provider::Provider;
use crate::RunConfig;

/// Rows whose image size is read, at most: the mean of a uniform sample this
/// large is within a few percent of the whole CSV's for any realistic mix of
/// sizes, and reading it costs a second or two.
pub const SIZE_SAMPLE: usize = 2_000;

/// Normal quantile of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// What the host found of one row's image.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageCheck {
    /// The file is there; its size when the survey asked for it and the header
    /// could be read.
    Found {
        /// Width and height in pixels.
        size: Option<(u32, u32)>,
    },
    /// No such file (or it cannot be opened): the row would fail, unsent.
    Missing {
        /// Why, as the run would say it (the line and the path).
        why: String,
    },
    /// The image resolves outside the data folder where that is not allowed.
    Outside {
        /// Why, as the run would say it.
        why: String,
    },
    /// An http(s) or data: URL: sent as it is, its size not looked up.
    Url,
}

/// The estimate being gathered, row by row.
#[derive(Clone, Debug)]
pub struct Survey {
    provider: Provider,
    charge: crate::provider::TokenCharge,
    config: RunConfig,
    labels: LabelSet,
    label_rows: Vec<usize>,
    rows: usize,
    defects: usize,
    images: ImageCounts,
    image_token_sum: u64,
    size_share: f64,
    endpoint_limits: Option<EndpointLimits>,
}

impl Survey {
    /// A survey of the CSV `outline` describes, for a run of `config`.
    pub fn new(config: &RunConfig, outline: &CsvOutline) -> Survey {
        let usable = outline.rows.saturating_sub(outline.defects).max(1);
        Survey {
            provider: config.provider.clone(),
            charge: config.provider.token_charge(&outline.labels),
            config: config.clone(),
            labels: outline.labels.clone(),
            label_rows: vec![0; outline.labels.len()],
            rows: 0,
            defects: 0,
            images: ImageCounts::default(),
            image_token_sum: 0,
            size_share: (SIZE_SAMPLE as f64 / usable as f64).min(1.0),
            endpoint_limits: None,
        }
    }

    /// The same survey, timed also at the limits the endpoint stated (the
    /// slowest of those and the run's caps sets the pace, as in the run).
    pub fn with_endpoint_limits(self, limits: EndpointLimits) -> Survey {
        Survey {
            endpoint_limits: Some(limits),
            ..self
        }
    }

    /// Whether the host should read the image size of `row`: a uniform sample of
    /// about [`SIZE_SAMPLE`] rows, drawn from the run's seed.
    pub fn measures(&self, row: usize) -> bool {
        unit_interval(splitmix64(self.config.seed ^ splitmix64(row as u64))) < self.size_share
    }

    /// What the host found of `item`'s image (`None` for a row with a defect,
    /// whose image is not looked at).
    pub fn record(&mut self, item: &Item, check: Option<ImageCheck>) {
        self.rows += 1;
        if item.defect.is_some() {
            self.defects += 1;
            return;
        }
        if let Some(i) = self.labels.index_of(&item.label) {
            self.label_rows[i] += 1;
        }
        let examples = &mut self.images.examples;
        let mut example = |why: String| {
            if examples.len() < EXAMPLES {
                examples.push(why);
            }
        };
        match check {
            Some(ImageCheck::Found { size }) => {
                self.images.found += 1;
                if let Some(size) = size {
                    if let Some(tokens) = self.provider.image_tokens(size) {
                        self.images.measured += 1;
                        self.image_token_sum += tokens;
                    }
                    let (lo, hi) = (&mut self.images.smallest, &mut self.images.largest);
                    let pixels = |s: (u32, u32)| u64::from(s.0) * u64::from(s.1);
                    if lo.is_none_or(|s| pixels(size) < pixels(s)) {
                        *lo = Some(size);
                    }
                    if hi.is_none_or(|s| pixels(size) > pixels(s)) {
                        *hi = Some(size);
                    }
                }
            }
            Some(ImageCheck::Missing { why }) => {
                self.images.missing += 1;
                example(why);
            }
            Some(ImageCheck::Outside { why }) => {
                self.images.outside += 1;
                example(why);
            }
            Some(ImageCheck::Url) | None => self.images.urls += 1,
        }
    }

    /// The estimate.
    pub fn finish(self) -> Estimate {
        let requests = self.rows - self.defects - self.images.missing - self.images.outside;
        let text = self.provider.text_tokens(&self.labels);
        let seed_image = self.charge.prompt.saturating_sub(text);
        let image = if self.images.measured > 0 {
            self.image_token_sum as f64 / self.images.measured as f64
        } else {
            seed_image as f64
        };
        let prompt = text as f64 + image;
        let tokens = RequestTokens {
            image: round1(image),
            text,
            prompt: round1(prompt),
            max_output: self.charge.max_output,
            charge: round1(prompt + self.charge.max_output as f64),
            measured_images: self.images.measured,
        };
        let model = self.provider.model();
        let usage = |output: u64| Usage {
            prompt_tokens: (prompt * requests as f64).round() as u64,
            completion_tokens: output * requests as u64,
            total_tokens: 0,
        };
        let live = Cost::of(Usage::default(), 0, self.config.price, model).price;
        let batch = Cost::of_batch(Usage::default(), 0, self.config.price, model).price;
        let cost = match (live, batch) {
            (Some(live), Some(batch)) => {
                // A provider sent no cap (Gemini): an answer's JSON and label.
                let longest = self
                    .labels
                    .names()
                    .iter()
                    .map(String::len)
                    .max()
                    .unwrap_or(0);
                let output = if self.charge.max_output > 0 {
                    self.charge.max_output
                } else {
                    16 + longest as u64
                };
                let max = usage(output);
                Some(CostEstimate {
                    live_usd: round_usd(live.price.usd(max)),
                    batch_api_usd: round_usd(batch.price.usd(max)),
                    output_tokens: output,
                    price: live,
                })
            }
            _ => None,
        };
        let time = pace(&self.config, self.endpoint_limits.as_ref(), &tokens).map(
            |(per_minute, limited_by, from_endpoint)| TimeEstimate {
                requests_per_minute: round1(per_minute),
                limited_by,
                from_endpoint,
                minutes: round_minutes(requests as f64 / per_minute),
            },
        );
        let sample = self.config.sample.as_ref().map(|s| SampleOf {
            rows: self.rows,
            csv_rows: s.csv_rows,
            seed: s.seed,
        });
        // The sequence runs over the whole CSV's rows, as the run's does.
        let population = sample.as_ref().map_or(self.rows, |s| s.csv_rows) as u64;
        let until_interval = self.config.until_interval.map(|half_width| StopEstimate {
            half_width,
            at: stop::ASSUMED_AGREEMENTS
                .iter()
                .map(|&agreement| {
                    let rows = stop::rows_at_stop(
                        agreement,
                        half_width,
                        Some(population),
                        self.config.batch_size,
                        requests,
                    );
                    let share =
                        |total: f64| round_usd(total * rows as f64 / requests.max(1) as f64);
                    StopAt {
                        agreement,
                        rows,
                        every_row: rows >= requests,
                        live_usd: cost.as_ref().map(|c| share(c.live_usd)),
                        batch_api_usd: cost.as_ref().map(|c| share(c.batch_api_usd)),
                        minutes: time
                            .as_ref()
                            .map(|t| round_minutes(rows as f64 / t.requests_per_minute)),
                    }
                })
                .collect(),
        });
        // The rows sent, unless a sample's: then the whole CSV it is drawn
        // from and whose agreement it estimates.
        let enough_of = sample.as_ref().map_or(requests, |s| s.csv_rows);
        let mut needed = Vec::new();
        for agreement in [0.9, 0.5] {
            for half_width in [0.01, 0.02, 0.05] {
                needed.push(RowsNeeded {
                    half_width,
                    agreement,
                    rows: rows_for_interval(agreement, half_width, Some(enough_of)),
                });
            }
        }
        Estimate {
            rows: self.rows,
            defects: self.defects,
            labels: self
                .labels
                .names()
                .iter()
                .cloned()
                .zip(self.label_rows)
                .map(|(label, rows)| LabelRows { label, rows })
                .collect(),
            images: self.images,
            requests,
            tokens,
            cost,
            time,
            via_batch_api: self.config.batch_api.is_some(),
            rows_for_interval: needed,
            sample,
            until_interval,
            endpoint_limits: self.endpoint_limits,
        }
    }
}

/// Examples of missing or outside images kept for the report.
const EXAMPLES: usize = 3;

/// The requests a minute the run's caps and the endpoint's stated limits
/// allow, which binds and whether it is the endpoint's; `None` when none is
/// known. A tokens-per-minute limit is divided by a request's charge (prompt
/// and `max_tokens`, as the pacing charges it); Anthropic's input- and
/// output-token limits by the prompt and the answer alone.
fn pace(
    config: &RunConfig,
    endpoint: Option<&EndpointLimits>,
    tokens: &RequestTokens,
) -> Option<(f64, Limit, bool)> {
    let per = |limit: u64, tokens: f64| limit as f64 / tokens.max(1.0);
    let mut candidates = vec![
        config
            .rpm
            .map(|r| (f64::from(r), Limit::RequestsPerMinute, false)),
        config
            .tpm
            .map(|t| (per(t, tokens.charge), Limit::TokensPerMinute, false)),
    ];
    if let Some(e) = endpoint {
        candidates.extend([
            e.requests_per_minute
                .map(|r| (r as f64, Limit::RequestsPerMinute, true)),
            e.tokens_per_minute
                .map(|t| (per(t, tokens.charge), Limit::TokensPerMinute, true)),
            e.input_tokens_per_minute
                .map(|t| (per(t, tokens.prompt), Limit::InputTokensPerMinute, true)),
            e.output_tokens_per_minute
                .filter(|_| tokens.max_output > 0)
                .map(|t| {
                    (
                        per(t, tokens.max_output as f64),
                        Limit::OutputTokensPerMinute,
                        true,
                    )
                }),
        ]);
    }
    candidates
        .into_iter()
        .flatten()
        .filter(|c| c.0 > 0.0)
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

fn round_minutes(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}

/// Rows a 95% interval of `half_width` around an agreement of `agreement`
/// needs (the normal approximation, `z² p (1 - p) / w²`), with the
/// finite-population correction `n / (1 + (n - 1) / N)` when the rows are
/// drawn from `population` rows without replacement (Cochran, *Sampling
/// Techniques*, 3rd ed., 1977, eqs. 4.1-4.2). At least 1, at most `population`.
pub fn rows_for_interval(agreement: f64, half_width: f64, population: Option<usize>) -> usize {
    let p = agreement.clamp(0.0, 1.0);
    let n0 = Z95 * Z95 * p * (1.0 - p) / (half_width * half_width);
    let n = match population {
        Some(big_n) if big_n > 0 => n0 / (1.0 + (n0 - 1.0) / big_n as f64),
        _ => n0,
    };
    let n = n.ceil().max(1.0) as usize;
    population
        .filter(|&big_n| big_n > 0)
        .map_or(n, |big_n| n.min(big_n))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round_usd(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// What a run of the CSV would send, cost and take.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// Data rows of the CSV (of the sample, when one is drawn).
    pub rows: usize,
    /// Rows with a defect (no image or no label): they fail unsent.
    pub defects: usize,
    /// Rows per label, in the CSV's label order.
    pub labels: Vec<LabelRows>,
    /// What was found of the images.
    pub images: ImageCounts,
    /// Rows that would be sent: all but defects and missing or outside images.
    pub requests: usize,
    /// Tokens of one request.
    pub tokens: RequestTokens,
    /// The money, when a price is known (given, or the model's list price).
    pub cost: Option<CostEstimate>,
    /// The time at the run's requests- or tokens-per-minute cap, when one is set.
    pub time: Option<TimeEstimate>,
    /// The run goes through the provider's batch API (its own pace: no time).
    pub via_batch_api: bool,
    /// Rows a 95% interval of the agreement needs, for a few widths.
    pub rows_for_interval: Vec<RowsNeeded>,
    /// The seeded sample the run is made of (`rows` and every figure are then
    /// the sample's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<SampleOf>,
    /// Where a run that stops at a target interval will likely stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_interval: Option<StopEstimate>,
    /// The limits the endpoint stated, when the host was asked to read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_limits: Option<EndpointLimits>,
}

/// A sample of the CSV's rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SampleOf {
    /// Rows sampled.
    pub rows: usize,
    /// Rows of the CSV.
    pub csv_rows: usize,
    /// The permutation's seed.
    pub seed: u64,
}

/// One label's row count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelRows {
    /// The label.
    pub label: String,
    /// Rows with it.
    pub rows: usize,
}

/// What the checks found of the rows' images.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageCounts {
    /// Image files found.
    pub found: usize,
    /// Image files missing (their rows would fail unsent).
    pub missing: usize,
    /// Images resolving outside the data folder (refused).
    pub outside: usize,
    /// URL images (sent as they are, size not looked up).
    pub urls: usize,
    /// Images whose size was read for the token estimate.
    pub measured: usize,
    /// The smallest and largest measured size, in pixels.
    pub smallest: Option<(u32, u32)>,
    /// The largest measured size.
    pub largest: Option<(u32, u32)>,
    /// Up to three reasons for missing or outside images, with their lines.
    pub examples: Vec<String>,
}

/// The tokens of one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestTokens {
    /// Image tokens: the mean of the published formula over the measured
    /// images, else the seed (a typical photo).
    pub image: f64,
    /// The prompt's text, at four characters a token.
    pub text: u64,
    /// `image + text`.
    pub prompt: f64,
    /// The answer's `max_tokens`.
    pub max_output: u64,
    /// `prompt + maxOutput`: what a tokens-per-minute limit is charged.
    pub charge: f64,
    /// How many images `image` is the mean of (0: the seed).
    pub measured_images: usize,
}

/// The money for the rows that would be sent, with every answer taking its
/// whole `max_tokens` (an upper bound: a label's answer is usually shorter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostEstimate {
    /// US dollars, live.
    pub live_usd: f64,
    /// US dollars through the provider's batch API (half the live price).
    pub batch_api_usd: f64,
    /// Output tokens counted per answer: its `maxTokens`, or, for a provider
    /// that sends none, the JSON around the longest label.
    pub output_tokens: u64,
    /// The live price used and where it came from.
    pub price: PriceUsed,
}

/// Which cap sets the pace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Limit {
    /// The requests-per-minute cap.
    RequestsPerMinute,
    /// The tokens-per-minute cap, divided by the tokens of one request.
    TokensPerMinute,
    /// An input-tokens-per-minute limit (Anthropic), divided by the prompt.
    InputTokensPerMinute,
    /// An output-tokens-per-minute limit (Anthropic), divided by `max_tokens`.
    OutputTokensPerMinute,
}

/// The time the requests take at the binding cap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeEstimate {
    /// Requests a minute the cap allows.
    pub requests_per_minute: f64,
    /// Which cap.
    pub limited_by: Limit,
    /// Whether it is a limit the endpoint stated (else the run's own cap).
    #[serde(default)]
    pub from_endpoint: bool,
    /// Minutes for every request.
    pub minutes: f64,
}

/// Rows a 95% interval of a width needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowsNeeded {
    /// Half the interval's width (0.01 = ±1 point).
    pub half_width: f64,
    /// The agreement it is worked out at.
    pub agreement: f64,
    /// Rows, drawn at random from this CSV's.
    pub rows: usize,
}

#[cfg(test)]
mod tests;
