//! The results journal: one JSON line per finished item, and the fold that turns a
//! journal back into known results for resume.

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

/// How an item ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ItemStatus {
    /// The model answered with a label from the label set.
    Success,
    /// No usable answer (see `error`).
    Failed,
}

/// Why an item failed, in broad classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum FailureKind {
    /// The CSV row itself is unusable (missing image or label).
    Input,
    /// The host could not load the image (missing, too large, unknown type, escaping path).
    Image,
    /// The endpoint answered with an HTTP error status (not retried, or retries exhausted).
    Http,
    /// No answer: timeout, connection refused or reset (retries exhausted).
    Transport,
    /// A 2xx answer the provider could not use: malformed, refusal, label outside the set.
    Answer,
    /// The run stopped (interrupt or run-fatal error) before this item could finish.
    NotRun,
}

/// One line of `shadow-mode-batch-results-{run}.jsonl`: the record of a finished item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemResult {
    /// 0-based data row index.
    pub row: usize,
    /// CSV line number where the row starts.
    pub line: u64,
    /// The id column's value, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The image reference as the CSV wrote it.
    pub image: String,
    /// The human label.
    pub label: String,
    /// The model's label, on success.
    pub prediction: Option<String>,
    /// `prediction == label`, on success.
    pub agreement: Option<bool>,
    /// `success` or `failed`.
    pub status: ItemStatus,
    /// Requests made for this item (0 if it never reached the endpoint).
    pub attempts: u32,
    /// Time from dispatch to answer of the last attempt, in ms.
    pub latency_ms: Option<u64>,
    /// Human-readable reason, on failure. Never contains a secret.
    pub error: Option<String>,
    /// Class of failure, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<FailureKind>,
    /// HTTP status of the last answer, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Token usage of the successful request, when the endpoint reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// ISO-8601 time the item finished.
    pub finished_at: String,
}
