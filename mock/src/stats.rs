//! What the mock has answered so far: lock-free counters, and their snapshot
//! served at `GET /stats`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// A snapshot of the mock's counters (`GET /stats`). Those not named `batch*`
/// count model requests only (chat completions, messages, generateContent, in
/// every dialect).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MockStats {
    /// Model requests received.
    pub requests: u64,
    /// 200 answers (malformed ones included).
    pub ok: u64,
    /// 429 `rate_limit_exceeded` answers, for either limit (requests or tokens).
    pub rate_limited: u64,
    /// Of [`rate_limited`](MockStats::rate_limited), those refused by the
    /// tokens-per-minute limit (`type: "tokens"`); the rest were refused by the
    /// requests-per-minute limit.
    #[serde(default)]
    pub token_limited: u64,
    /// Tokens charged to admitted requests (prompt tokens plus the output
    /// allowance, as the tokens-per-minute limit counts them; counted with or
    /// without `--tpm`). Over a run's wall time, against tpm / 60 per second, it
    /// gives how much of the token limit a client used.
    #[serde(default)]
    pub tokens_admitted: u64,
    /// 400 answers to requests whose token charge is more than the
    /// tokens-per-minute bucket holds (not counted in `bad_requests`).
    #[serde(default)]
    pub too_large: u64,
    /// Injected server errors (500; 529 for Anthropic, 503 for Gemini).
    pub server_errors: u64,
    /// Answers to a wrong or missing key (401; Gemini's 400 `API_KEY_INVALID`).
    pub unauthorized: u64,
    /// Refusals (in a 200, or Azure's 400 `content_filter`).
    pub refused: u64,
    /// 200 answers whose content is deliberately not JSON.
    pub malformed: u64,
    /// Answers saying the quota or credit is used up.
    pub quota_exceeded: u64,
    /// 400 answers (bad body, or a request the dialect refuses).
    pub bad_requests: u64,
    /// Answers by HTTP status (only statuses that occurred).
    pub by_status: BTreeMap<u16, u64>,
    /// Batch API: files uploaded (`POST /v1/files`).
    #[serde(default)]
    pub batch_uploads: u64,
    /// Batch API: batches created (`POST /v1/batches`, `POST
    /// /v1/messages/batches`).
    #[serde(default)]
    pub batch_creates: u64,
    /// Batch API: reads of a batch (`GET /v1/batches/{id}`, `GET
    /// /v1/messages/batches/{id}`).
    #[serde(default)]
    pub batch_polls: u64,
    /// Batch API: lists of batches (`GET /v1/batches`, `GET /v1/messages/batches`).
    #[serde(default)]
    pub batch_lists: u64,
    /// Batch API: file downloads (`GET /v1/files/{id}/content`), results
    /// downloads (`GET /v1/messages/batches/{id}/results`).
    #[serde(default)]
    pub batch_downloads: u64,
    /// Batch API: cancels (`POST /v1/batches/{id}/cancel`, `POST
    /// /v1/messages/batches/{id}/cancel`).
    #[serde(default)]
    pub batch_cancels: u64,
    /// Batch API: request lines answered (in output and error files; results
    /// of requests that ran).
    #[serde(default)]
    pub batch_lines: u64,
    /// Batch API: files deleted (`DELETE /v1/files/{id}`).
    #[serde(default)]
    pub batch_file_deletes: u64,
    /// Batch API: files the mock holds now (uploaded input files, and the
    /// output and error files it wrote), not deleted: what a client left behind.
    #[serde(default)]
    pub batch_files_live: u64,
}

const STATUSES: [u16; 8] = [200, 400, 401, 404, 429, 500, 503, 529];

/// The live counters behind [`MockStats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub ok: AtomicU64,
    pub rate_limited: AtomicU64,
    pub token_limited: AtomicU64,
    pub tokens_admitted: AtomicU64,
    pub too_large: AtomicU64,
    pub server_errors: AtomicU64,
    pub unauthorized: AtomicU64,
    pub refused: AtomicU64,
    pub malformed: AtomicU64,
    pub quota_exceeded: AtomicU64,
    pub bad_requests: AtomicU64,
    pub batch_uploads: AtomicU64,
    pub batch_creates: AtomicU64,
    pub batch_polls: AtomicU64,
    pub batch_lists: AtomicU64,
    pub batch_downloads: AtomicU64,
    pub batch_cancels: AtomicU64,
    pub batch_lines: AtomicU64,
    pub batch_file_deletes: AtomicU64,
    by_status: [AtomicU64; STATUSES.len()],
}

impl Counters {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts an answer by its status.
    pub fn status(&self, status: StatusCode) {
        if let Some(i) = STATUSES.iter().position(|&s| s == status.as_u16()) {
            Self::bump(&self.by_status[i]);
        }
    }

    pub fn snapshot(&self) -> MockStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MockStats {
            requests: load(&self.requests),
            ok: load(&self.ok),
            rate_limited: load(&self.rate_limited),
            token_limited: load(&self.token_limited),
            tokens_admitted: load(&self.tokens_admitted),
            too_large: load(&self.too_large),
            server_errors: load(&self.server_errors),
            unauthorized: load(&self.unauthorized),
            refused: load(&self.refused),
            malformed: load(&self.malformed),
            quota_exceeded: load(&self.quota_exceeded),
            bad_requests: load(&self.bad_requests),
            by_status: STATUSES
                .iter()
                .zip(&self.by_status)
                .map(|(&s, c)| (s, load(c)))
                .filter(|&(_, n)| n > 0)
                .collect(),
            batch_uploads: load(&self.batch_uploads),
            batch_creates: load(&self.batch_creates),
            batch_polls: load(&self.batch_polls),
            batch_lists: load(&self.batch_lists),
            batch_downloads: load(&self.batch_downloads),
            batch_cancels: load(&self.batch_cancels),
            batch_lines: load(&self.batch_lines),
            batch_file_deletes: load(&self.batch_file_deletes),
            batch_files_live: 0,
        }
    }
}
