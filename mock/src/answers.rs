//! The seeded answer and fault model: what the mock answers to a request, as a
//! pure function of (seed, request content, attempt), and the true labels it
//! answers from.
//!
//! Every roll hashes the request content (FNV-1a, then the core's splitmix64
//! finalizer) together with the seed, a salt naming the roll, and the attempt (or
//! [`PER_CONTENT`] for rolls a retry must not change).

use std::collections::HashMap;

use shadow_core::hash::{splitmix64, unit_interval};

use crate::config::MockConfig;
use crate::dialect::Parsed;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Streaming FNV-1a, 64 bits.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(FNV_OFFSET)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
}

/// A stable 64-bit hash: FNV-1a then splitmix64. The same on every platform and
/// every run (unlike std's `RandomState`).
fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = Fnv::new();
    h.write(bytes);
    splitmix64(h.0)
}

/// The key of an image in [`Truth`]: the stable hash of the image URL string
/// exactly as sent in the request (data URL or http URL).
fn url_key(url: &str) -> u64 {
    stable_hash(url.as_bytes())
}

/// Hash of the request content: the image URL then every label, in order. 0xFF
/// never occurs in UTF-8, so it separates the fields unambiguously.
fn content_hash(url: &str, labels: &[String]) -> u64 {
    let mut h = Fnv::new();
    h.write(url.as_bytes());
    for label in labels {
        h.write(&[0xFF]);
        h.write(label.as_bytes());
    }
    splitmix64(h.0)
}

const SALT_ERROR: u64 = 0x4552_524f_5221;
const SALT_MALFORMED: u64 = 0x4d41_4c46_4f52;
const SALT_CORRECT: u64 = 0x434f_5252_4543;
const SALT_WRONG: u64 = 0x5752_4f4e_4721;
const SALT_PICK: u64 = 0x5049_434b_2121;
const SALT_SLOW: u64 = 0x534c_4f57_2121;
const SALT_ID: u64 = 0x4944_2121_2121;
const SALT_CREATED: u64 = 0x4352_4541_5445;
const SALT_REFUSE: u64 = 0x5245_4655_5345;
const SALT_CONFIDENCE: u64 = 0x434f_4e46_4944;
/// The "attempt" used by rolls that must not depend on the attempt.
const PER_CONTENT: u64 = u64::MAX;

/// A 64-bit value derived from (seed, content, salt, attempt).
fn mix(seed: u64, content: u64, salt: u64, attempt: u64) -> u64 {
    let mut h = splitmix64(seed);
    h = splitmix64(h ^ content);
    h = splitmix64(h ^ salt);
    splitmix64(h ^ attempt)
}

/// A uniform number in [0, 1) derived from (seed, content, salt, attempt).
fn roll(seed: u64, content: u64, salt: u64, attempt: u64) -> f64 {
    unit_interval(mix(seed, content, salt, attempt))
}

/// `floor(u * n)` clamped to `n - 1` (for `n > 0`).
fn pick(u: f64, n: usize) -> usize {
    ((u * n as f64) as usize).min(n.saturating_sub(1))
}

/// The number in the `id` of a chat completion: one per (seed, content).
pub(crate) fn completion_id(seed: u64, content: u64) -> u64 {
    mix(seed, content, SALT_ID, PER_CONTENT)
}

/// The number in the `x-request-id` header: one per (seed, content, attempt).
pub(crate) fn request_id(seed: u64, content: u64, attempt: u64) -> u64 {
    mix(seed, content, SALT_ID, attempt)
}

const SALT_ORDER: u64 = 0x4f52_4445_5221;

/// Where a batch line goes in its result file: lines come out of input order,
/// the same way for the same seed.
pub(crate) fn order_key(seed: u64, custom_id: &str) -> u64 {
    mix(seed, stable_hash(custom_id.as_bytes()), SALT_ORDER, 0)
}

/// The `created` time of every chat completion of a seed (a fixed fake time).
pub(crate) fn created(seed: u64) -> u64 {
    1_700_000_000 + mix(seed, 0, SALT_CREATED, 0) % 100_000_000
}

/// The true labels the mock knows: a map from a stable hash of the image URL
/// string exactly as sent in the request (data URL or http URL) to the label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Truth {
    labels: HashMap<u64, String>,
    /// The data row of each image, for [`MockConfig::accuracy_drop`].
    rows: HashMap<u64, usize>,
}

impl Truth {
    /// Builds the map from (image URL as sent, true label) pairs. A later pair for
    /// the same URL replaces an earlier one.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Truth {
        let mut truth = Truth::default();
        for (row, (url, label)) in pairs.into_iter().enumerate() {
            truth.insert_row(&url, label, row);
        }
        truth
    }

    /// Adds or replaces the true label of the image URL of data row `row`.
    pub fn insert_row(&mut self, url: &str, label: String, row: usize) {
        self.labels.insert(url_key(url), label);
        self.rows.insert(url_key(url), row);
    }

    /// The data row an image URL was given for, if known.
    pub fn row(&self, url: &str) -> Option<usize> {
        self.rows.get(&url_key(url)).copied()
    }

    /// Adds or replaces the true label of one image URL.
    pub fn insert(&mut self, url: &str, label: String) {
        self.labels.insert(url_key(url), label);
    }

    /// The true label of an image URL, if known.
    pub fn get(&self, url: &str) -> Option<&str> {
        self.labels.get(&url_key(url)).map(String::as_str)
    }

    /// Number of images known.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when no image is known.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Everything about one answer that does not depend on time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Decision {
    /// [`content_hash`] of the request.
    pub content: u64,
    pub server_error: bool,
    pub malformed: bool,
    pub label: String,
    pub slow: bool,
    /// The model declines this image (per content: a retry is refused again).
    pub refused: bool,
    /// Index of the true label (or the one the mock took as true) in the labels.
    pub truth: usize,
    /// The chance this row's answer agrees with the true label.
    pub accuracy: f64,
    /// A uniform roll for the answer's confidence (per content).
    pub confidence_roll: f64,
}

/// The answer and the faults for one request: a pure function of
/// (config, truth, request content, attempt).
pub(crate) fn decide(
    cfg: &MockConfig,
    truth: Option<&Truth>,
    req: &Parsed,
    attempt: u64,
) -> Decision {
    let seed = cfg.seed;
    let content = content_hash(&req.image, &req.labels);
    let n = req.labels.len();
    let correct = truth
        .and_then(|t| t.get(&req.image))
        .and_then(|l| req.labels.iter().position(|x| x == l))
        .unwrap_or_else(|| pick(roll(seed, content, SALT_PICK, PER_CONTENT), n));
    let accuracy = match (cfg.accuracy_drop, truth.and_then(|t| t.row(&req.image))) {
        (Some(drop), Some(row)) if row >= drop.from_row => drop.accuracy,
        _ => cfg.accuracy,
    };
    let is_correct = roll(seed, content, SALT_CORRECT, PER_CONTENT) < accuracy;
    let accuracy = accuracy.clamp(0.0, 1.0);
    let index = if is_correct || n < 2 {
        correct
    } else {
        let w = pick(roll(seed, content, SALT_WRONG, PER_CONTENT), n - 1);
        if w >= correct {
            w + 1
        } else {
            w
        }
    };
    Decision {
        content,
        server_error: roll(seed, content, SALT_ERROR, attempt) < cfg.error_rate,
        malformed: roll(seed, content, SALT_MALFORMED, attempt) < cfg.malformed_rate,
        label: req.labels[index].clone(),
        slow: cfg.slow_every > 0
            && mix(seed, content, SALT_SLOW, PER_CONTENT) % cfg.slow_every == 0,
        refused: roll(seed, content, SALT_REFUSE, PER_CONTENT) < cfg.refusal_rate,
        truth: correct,
        accuracy,
        confidence_roll: roll(seed, content, SALT_CONFIDENCE, PER_CONTENT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::completion_body;
    use crate::testing::{image, labels, LABELS};

    fn cfg() -> MockConfig {
        MockConfig {
            port: 0,
            ..MockConfig::default()
        }
    }

    fn request(i: usize) -> Parsed {
        Parsed {
            model: "m".into(),
            labels: labels(),
            image: image(i),
            images: 1,
            text_chars: 0,
            max_tokens: None,
            format: crate::dialect::AnswerFormat::Json,
            logprobs: None,
        }
    }

    #[test]
    fn fnv_and_hash_are_stable() {
        // Published FNV-1a 64 test vectors.
        let fnv = |s: &str| {
            let mut h = Fnv::new();
            h.write(s.as_bytes());
            h.0
        };
        assert_eq!(fnv(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv("foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(url_key("x"), url_key("x"));
        assert_ne!(url_key("x"), url_key("y"));
        // Field separation: ("ab", ["c"]) differs from ("a", ["bc"]).
        assert_ne!(
            content_hash("ab", &["c".into()]),
            content_hash("a", &["bc".into()])
        );
    }

    /// Every answer, fault, id and timestamp of 2 seeds x 2000 images x 3 attempts,
    /// folded into one hash. The expected value was taken from the mock before it
    /// moved into this crate (when it had its own splitmix64): a change here
    /// changes what every client measures against the mock.
    #[test]
    fn answers_are_unchanged() {
        let truth = Truth::from_pairs((0..1000).map(|i| (image(i), LABELS[i % 4].to_string())));
        let mut h = Fnv::new();
        for seed in [42u64, 7] {
            let cfg = MockConfig {
                seed,
                error_rate: 0.3,
                malformed_rate: 0.1,
                accuracy: 0.7,
                slow_every: 10,
                ..MockConfig::default()
            };
            for i in 0..2000 {
                let req = request(i);
                for attempt in 0..3 {
                    let d = decide(&cfg, Some(&truth), &req, attempt);
                    let body = completion_body(&cfg, &req, &d, false);
                    let line = format!(
                        "{}|{}|{}|{}|{}|{}|{}|{:016x}\n",
                        d.content,
                        d.server_error,
                        d.malformed,
                        d.label,
                        d.slow,
                        body["id"],
                        body["created"],
                        request_id(cfg.seed, d.content, attempt)
                    );
                    h.write(line.as_bytes());
                }
            }
        }
        assert_eq!(h.0, 0x8bb2_2053_d209_2a86);
    }

    #[test]
    fn decisions_are_pure_and_rates_hold() {
        let cfg = MockConfig {
            error_rate: 0.3,
            malformed_rate: 0.1,
            accuracy: 0.7,
            ..cfg()
        };
        let truth = Truth::from_pairs((0..2000).map(|i| (image(i), LABELS[i % 4].to_string())));
        let (mut errors, mut malformed, mut correct, mut retry_differs) = (0, 0, 0, 0);
        for i in 0..2000 {
            let req = request(i);
            let d0 = decide(&cfg, Some(&truth), &req, 0);
            assert_eq!(d0, decide(&cfg, Some(&truth), &req, 0));
            let d1 = decide(&cfg, Some(&truth), &req, 1);
            // Accuracy is per content: the retry answers the same label.
            assert_eq!(d0.label, d1.label);
            retry_differs += usize::from(d0.server_error != d1.server_error);
            errors += usize::from(d0.server_error);
            malformed += usize::from(d0.malformed);
            correct += usize::from(d0.label == LABELS[i % 4]);
        }
        assert!((500..700).contains(&errors), "errors {errors}");
        assert!((140..260).contains(&malformed), "malformed {malformed}");
        assert!((1300..1500).contains(&correct), "correct {correct}");
        assert!(
            retry_differs > 100,
            "fault rolls must depend on the attempt"
        );

        // Another seed gives other answers.
        let other = MockConfig {
            seed: 7,
            ..cfg.clone()
        };
        let differ = (0..200)
            .filter(|&i| {
                let req = request(i);
                decide(&cfg, None, &req, 0).label != decide(&other, None, &req, 0).label
            })
            .count();
        assert!(differ > 50, "seed must matter ({differ})");
    }

    /// How many of the first `n` requests (first attempts) a config changed by
    /// `change` decides `pick` for.
    fn how_many(
        change: impl FnOnce(&mut MockConfig),
        n: usize,
        pick: impl Fn(&MockConfig, usize, &Decision) -> bool,
    ) -> usize {
        let mut cfg = cfg();
        change(&mut cfg);
        (0..n)
            .filter(|&i| pick(&cfg, i, &decide(&cfg, None, &request(i), 0)))
            .count()
    }

    #[test]
    fn refusals_are_per_content_and_near_their_rate() {
        let refused = how_many(
            |c| c.refusal_rate = 0.25,
            2000,
            |cfg, i, d| {
                assert_eq!(d.refused, decide(cfg, None, &request(i), 3).refused);
                d.refused
            },
        );
        assert!((400..600).contains(&refused), "refused {refused}");
        assert!((0..200).all(|i| !decide(&MockConfig::default(), None, &request(i), 0).refused));
    }

    #[test]
    fn slow_every_picks_about_one_in_n() {
        let slow = how_many(|c| c.slow_every = 10, 1000, |_, _, d| d.slow);
        assert!((60..140).contains(&slow), "slow {slow}");
    }

    #[test]
    fn truth_is_keyed_by_the_url_as_sent() {
        let mut truth = Truth::from_pairs([("a.png".to_string(), "cat".to_string())]);
        assert_eq!(truth.get("a.png"), Some("cat"));
        assert_eq!(truth.get("./a.png"), None);
        truth.insert("a.png", "dog".into());
        assert_eq!((truth.get("a.png"), truth.len()), (Some("dog"), 1));
        assert!(!truth.is_empty() && Truth::default().is_empty());
    }
}
