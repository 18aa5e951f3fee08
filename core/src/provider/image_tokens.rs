//! The providers' published formulas for the prompt tokens of one image of a
//! known size. Each is the provider's own documentation, applied as written;
//! where a provider documents no formula for a model (an OpenAI model missing
//! from the tables below, a local server), the gpt-4o tile formula is used and
//! the answers' `usage` says what the run really cost.
//!
//! - OpenAI, tile models ("Images and vision" guide, "Calculating costs"):
//!   `detail: low` costs the base tokens; `high` scales the image to fit in
//!   2048 x 2048, then so that its shortest side is 768 px (never up), counts
//!   512 px tiles and costs base + tiles x tile tokens. `auto` is charged as
//!   `high` (the upper bound: the endpoint picks per image).
//! - OpenAI, patch models (gpt-4.1-mini/nano, gpt-5-mini/nano, o4-mini): 32 px
//!   patches, scaled down to at most 1,536 patches, times the model's
//!   multiplier; `detail` does not change the count.
//! - Anthropic ("Vision", "Calculate image costs"): width x height / 750 after
//!   scaling the long edge to at most 1,568 px, and at most ~1,600 tokens.
//! - Gemini ("Understand and count tokens", Gemini 2.0 and later): 258 tokens
//!   when both sides are at most 384 px, else 258 per 768 x 768 tile.

use crate::provider::ImageDetail;

/// How an OpenAI-compatible model charges an image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OpenAiImagePricing {
    /// `base` tokens, plus `tile` per 512 px tile at high detail.
    Tiles {
        /// Tokens of any image (all of a low-detail one).
        base: u64,
        /// Tokens per 512 px tile at high detail.
        tile: u64,
    },
    /// One token per 32 px patch (at most 1,536), times `multiplier`.
    Patches {
        /// The model's multiplier on the patch count.
        multiplier: f64,
    },
}

/// The pricing of `model` by the name's family (a dated snapshot takes its
/// family's). Unknown names take gpt-4o's tiles.
pub fn openai_pricing(model: &str) -> OpenAiImagePricing {
    let m = model.to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or(&m);
    const PATCHES: [(&str, f64); 5] = [
        ("gpt-5-mini", 1.62),
        ("gpt-5-nano", 2.46),
        ("gpt-4.1-mini", 1.62),
        ("gpt-4.1-nano", 2.46),
        ("o4-mini", 1.72),
    ];
    const TILES: [(&str, u64, u64); 5] = [
        ("gpt-4o-mini", 2_833, 5_667),
        // The built-in mock reports gpt-4o-mini's low-detail charge.
        (crate::provider::MOCK_MODEL, 2_833, 5_667),
        ("gpt-5", 70, 140),
        ("o1", 75, 150),
        ("o3", 75, 150),
    ];
    if let Some((_, multiplier)) = PATCHES.iter().find(|(name, _)| m.starts_with(name)) {
        return OpenAiImagePricing::Patches {
            multiplier: *multiplier,
        };
    }
    match TILES.iter().find(|(name, ..)| m.starts_with(name)) {
        Some(&(_, base, tile)) => OpenAiImagePricing::Tiles { base, tile },
        // gpt-4o, gpt-4.1, gpt-4.5 and anything unknown.
        None => OpenAiImagePricing::Tiles {
            base: 85,
            tile: 170,
        },
    }
}

/// OpenAI's charge for one `width` x `height` image at `detail`.
pub fn openai_image_tokens(model: &str, detail: ImageDetail, (width, height): (u32, u32)) -> u64 {
    match openai_pricing(model) {
        OpenAiImagePricing::Tiles { base, tile } => match detail {
            ImageDetail::Low => base,
            ImageDetail::High | ImageDetail::Auto => base + tile * tiles_512(width, height),
        },
        OpenAiImagePricing::Patches { multiplier } => {
            (patches_32(width, height) as f64 * multiplier).ceil() as u64
        }
    }
}

/// 512 px tiles after fitting in 2048 x 2048, then the shortest side to 768.
fn tiles_512(width: u32, height: u32) -> u64 {
    let (mut w, mut h) = (f64::from(width), f64::from(height));
    let longest = w.max(h);
    if longest > 2048.0 {
        (w, h) = (w * 2048.0 / longest, h * 2048.0 / longest);
    }
    let shortest = w.min(h);
    if shortest > 768.0 {
        (w, h) = (w * 768.0 / shortest, h * 768.0 / shortest);
    }
    (ceil(w / 512.0) * ceil(h / 512.0)) as u64
}

/// 32 px patches, scaled down to at most 1,536 with a whole number of patches
/// across the width or height (OpenAI's steps A to C).
fn patches_32(width: u32, height: u32) -> u64 {
    const CAP: f64 = 1_536.0;
    let (w, h) = (f64::from(width), f64::from(height));
    let raw = ceil(w / 32.0) * ceil(h / 32.0);
    if raw <= CAP {
        return raw as u64;
    }
    let shrink = (32.0 * 32.0 * CAP / (w * h)).sqrt();
    let (ws, hs) = (w * shrink / 32.0, h * shrink / 32.0);
    let shrink = shrink * (ws.floor() / ws).min(hs.floor() / hs);
    (ceil(w * shrink / 32.0) * ceil(h * shrink / 32.0)).min(CAP) as u64
}

/// Anthropic's charge: the long edge scaled to at most 1,568 px, then
/// width x height / 750, at most 1,600 (the size it scales larger images to).
pub fn anthropic_image_tokens((width, height): (u32, u32)) -> u64 {
    let (mut w, mut h) = (f64::from(width), f64::from(height));
    let longest = w.max(h);
    if longest > 1_568.0 {
        (w, h) = (w * 1_568.0 / longest, h * 1_568.0 / longest);
    }
    ceil(w * h / 750.0).min(1_600.0) as u64
}

/// Gemini's charge: one 258-token tile up to 384 px a side, else 258 per
/// 768 x 768 tile.
pub fn gemini_image_tokens((width, height): (u32, u32)) -> u64 {
    const PER_TILE: u64 = 258;
    if width <= 384 && height <= 384 {
        return PER_TILE;
    }
    PER_TILE * u64::from(width.div_ceil(768)) * u64::from(height.div_ceil(768))
}

/// `x.ceil()`, forgiving the rounding error of a scaled side that should be
/// whole (1408.0000000002 is 1408).
fn ceil(x: f64) -> f64 {
    (x - 1e-9).ceil()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenAI's "Images and vision" guide, "Calculating costs", worked examples
    /// (gpt-4o): a 1024 x 1024 image at high detail is 765 tokens (768 x 768,
    /// 4 tiles); 2048 x 4096 at high detail is 1,105 (1024 x 2048, then
    /// 768 x 1536, 6 tiles); 4096 x 8192 at low detail is 85. The same guide's
    /// table gives gpt-4o-mini 2,833 base and 5,667 a tile.
    #[test]
    fn openai_tiles_match_the_guides_worked_examples() {
        assert_eq!(
            openai_image_tokens("gpt-4o", ImageDetail::High, (1024, 1024)),
            765
        );
        assert_eq!(
            openai_image_tokens("gpt-4o", ImageDetail::High, (2048, 4096)),
            1_105
        );
        assert_eq!(
            openai_image_tokens("gpt-4o", ImageDetail::Low, (4096, 8192)),
            85
        );
        // `auto` is charged as high, the upper bound.
        assert_eq!(
            openai_image_tokens("gpt-4o-2024-08-06", ImageDetail::Auto, (1024, 1024)),
            765
        );
        // gpt-4o-mini bills 33x the tiles: the same 768 x 768, 4 tiles.
        assert_eq!(
            openai_image_tokens("gpt-4o-mini", ImageDetail::High, (1024, 1024)),
            2_833 + 4 * 5_667
        );
        assert_eq!(
            openai_image_tokens("gpt-4o-mini", ImageDetail::Low, (64, 64)),
            2_833
        );
        // Small images are not scaled up: one tile.
        assert_eq!(
            openai_image_tokens("gpt-4o", ImageDetail::High, (64, 64)),
            255
        );
    }

    /// The same guide's patch examples: 1024 x 1024 is 32 x 32 = 1,024 patches;
    /// 1800 x 2400 is 4,219 raw, shrunk by sqrt(1024 x 1536 / (1800 x 2400)) =
    /// 0.603, then to 33 whole patches across (1056 x 1408): 33 x 44 = 1,452;
    /// gpt-4.1-mini multiplies by 1.62.
    #[test]
    fn openai_patches_match_the_guides_worked_examples() {
        assert_eq!(patches_32(1024, 1024), 1_024);
        assert_eq!(patches_32(1800, 2400), 1_452);
        assert_eq!(
            openai_image_tokens("gpt-4.1-mini", ImageDetail::Low, (1024, 1024)),
            (1_024.0f64 * 1.62).ceil() as u64
        );
        assert!(
            matches!(openai_pricing("gpt-5-nano-2025-08-07"), OpenAiImagePricing::Patches { multiplier } if multiplier == 2.46)
        );
        assert_eq!(
            openai_pricing("gpt-5"),
            OpenAiImagePricing::Tiles {
                base: 70,
                tile: 140
            }
        );
        assert_eq!(
            openai_pricing("my-local-model"),
            OpenAiImagePricing::Tiles {
                base: 85,
                tile: 170
            }
        );
        assert_eq!(
            openai_pricing(crate::provider::MOCK_MODEL),
            openai_pricing("gpt-4o-mini")
        );
    }

    /// Anthropic's "Vision" guide, "Calculate image costs" table: 200 x 200 is
    /// ~54 tokens, 1000 x 1000 ~1,334, 1092 x 1092 ~1,590 (the largest square
    /// sent unscaled); larger images are scaled to about 1,600.
    #[test]
    fn anthropic_matches_the_guides_table() {
        assert_eq!(anthropic_image_tokens((200, 200)), 54);
        assert_eq!(anthropic_image_tokens((1000, 1000)), 1_334);
        assert_eq!(anthropic_image_tokens((1092, 1092)), 1_590);
        assert_eq!(anthropic_image_tokens((4000, 3000)), 1_600);
        // The long edge is capped at 1,568 first: 1568 x 392 = 820 tokens.
        assert_eq!(anthropic_image_tokens((3136, 784)), 820);
    }

    /// Gemini's "Understand and count tokens": both sides at most 384 px is 258
    /// tokens; larger images are 768 x 768 tiles of 258 each (600 x 400 is one
    /// tile, as the "Gemini by Example" worked example computes; 1600 x 900 is
    /// 3 x 2 tiles).
    #[test]
    fn gemini_matches_the_published_rule() {
        assert_eq!(gemini_image_tokens((384, 384)), 258);
        assert_eq!(gemini_image_tokens((600, 400)), 258);
        assert_eq!(gemini_image_tokens((1600, 900)), 6 * 258);
        assert_eq!(gemini_image_tokens((385, 10)), 258);
        assert_eq!(gemini_image_tokens((769, 769)), 4 * 258);
    }
}
