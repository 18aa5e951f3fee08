//! What a request is charged against a tokens-per-minute limit before its answer
//! says what it cost: published image formulas and the answer's token budget.

use crate::input::LabelSet;

use super::{anthropic, azure, ImageDetail, Provider, DEFAULT_PROMPT};

/// What one request is charged against a tokens-per-minute limit when the endpoint
/// admits it, before any answer says what it really cost: the prompt (text and
/// image) and the most the answer may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenCharge {
    /// Prompt tokens of one request, from the provider's published image formula;
    /// the run replaces it with what answers' `usage` report.
    pub prompt: u64,
    /// The `max_tokens` the request sends (0 when it sends none).
    pub max_output: u64,
}

/// Published image charges at low detail and at high detail for a 768×768 image
/// (four 512 px tiles, the size of a typical photo after OpenAI's scaling): the
/// engine does not see image sizes, and answers' `usage` corrects the seed.
fn image_tokens(model: &str, detail: ImageDetail) -> u64 {
    let model = model.to_ascii_lowercase();
    // gpt-4o-mini bills ~33x the tiles of gpt-4o, so that an image costs the same.
    let (low, tile) = if model.contains("gpt-4o-mini") {
        (2_833, 5_667)
    } else {
        (85, 170)
    };
    match detail {
        ImageDetail::Low => low,
        ImageDetail::High | ImageDetail::Auto => low + 4 * tile,
    }
}

/// o1, o3, o4-mini, gpt-5...: they reject `max_tokens`, and their reasoning tokens
/// count within `max_completion_tokens`.
pub(crate) fn is_reasoning_model(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or(&m);
    m.starts_with("gpt-5")
        || (m.starts_with('o') && m[1..].starts_with(|c: char| c.is_ascii_digit()))
}

/// The output tokens an answer naming one label may take: the JSON around the
/// label and the label itself at one token per byte (no tokenizer does worse), and
/// for a reasoning model room to think. Small, because endpoints count it against
/// the tokens-per-minute limit when they admit a request.
pub(crate) fn answer_token_budget(labels: &LabelSet, model: &str) -> u32 {
    let longest = labels.names().iter().map(String::len).max().unwrap_or(0);
    let answer = 16 + u32::try_from(longest).unwrap_or(u32::MAX).min(4_096);
    if is_reasoning_model(model) {
        answer + 2_048
    } else {
        answer
    }
}

impl Provider {
    /// Prompt tokens besides the image's: the instructions and the label list at
    /// about four characters a token, the message framing, and for Anthropic the
    /// forced tool's definition and system prompt.
    pub fn text_tokens(&self, labels: &LabelSet) -> u64 {
        let list: usize = labels.names().iter().map(|l| l.len() + 3).sum();
        let text = |prompt: Option<&str>| {
            ((prompt.unwrap_or(DEFAULT_PROMPT).len() + list + 60) / 4 + 20) as u64
        };
        match self {
            Provider::OpenAi(cfg) => text(cfg.prompt.as_deref()),
            Provider::Azure(cfg) => text(cfg.prompt.as_deref()),
            Provider::Anthropic(cfg) => text(cfg.prompt.as_deref()) + 350,
            Provider::Gemini(cfg) => text(cfg.prompt.as_deref()),
            Provider::HttpJson(_) => 0,
        }
    }

    /// The provider's published charge for one image of `(width, height)`
    /// pixels (see [`crate::provider::image_tokens`]); `None` for a service of
    /// the user's own.
    pub fn image_tokens(&self, size: (u32, u32)) -> Option<u64> {
        use crate::provider::image_tokens::{
            anthropic_image_tokens, gemini_image_tokens, openai_image_tokens,
        };
        Some(match self {
            Provider::OpenAi(cfg) => openai_image_tokens(&cfg.model, cfg.detail, size),
            Provider::Azure(cfg) => {
                openai_image_tokens(&azure::as_openai(cfg).model, cfg.detail, size)
            }
            Provider::Anthropic(_) => anthropic_image_tokens(size),
            Provider::Gemini(_) => gemini_image_tokens(size),
            Provider::HttpJson(_) => return None,
        })
    }

    /// What one request is charged at admission against a token limit.
    pub fn token_charge(&self, labels: &LabelSet) -> TokenCharge {
        let text = self.text_tokens(labels);
        match self {
            Provider::OpenAi(cfg) => TokenCharge {
                prompt: text + image_tokens(&cfg.model, cfg.detail),
                max_output: u64::from(answer_token_budget(labels, &cfg.model)),
            },
            Provider::Azure(cfg) => {
                // The body is OpenAI's, for a model the deployment's name may tell.
                let openai = azure::as_openai(cfg);
                TokenCharge {
                    prompt: text + image_tokens(&openai.model, cfg.detail),
                    max_output: u64::from(answer_token_budget(labels, &openai.model)),
                }
            }
            // (width × height) / 750 per image, up to ~1,600 for the largest
            // Claude takes.
            Provider::Anthropic(_) => TokenCharge {
                prompt: text + 1_600,
                max_output: u64::from(anthropic::max_tokens(labels)),
            },
            // 258 tokens per 768 px tile: four for a photo.
            Provider::Gemini(_) => TokenCharge {
                prompt: text + 4 * 258,
                max_output: 0,
            },
            // Its own service: nothing known until its answers or headers say so.
            Provider::HttpJson(_) => TokenCharge {
                prompt: 0,
                max_output: 0,
            },
        }
    }
}
