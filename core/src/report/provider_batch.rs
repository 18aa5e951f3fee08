//! The record of one shard of a batch-API run and its provider batch, as the
//! progress file, the summary and a live display show it; and where it is
//! ([`BatchPhase`]), written as the words a reader sees.

use serde::{Deserialize, Serialize};

/// A provider batch's request counts, as the provider gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestCounts {
    /// Requests in the batch.
    pub total: u64,
    /// Requests done.
    pub completed: u64,
    /// Requests failed.
    pub failed: u64,
    /// Requests that did not run (Anthropic's `canceled` and `expired`).
    #[serde(default, skip_serializing_if = "super::is_zero")]
    pub not_run: u64,
}

/// One shard of a batch-API run and its provider batch, for the progress file,
/// the summary and a live display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderBatch {
    /// The shard's number, from 1.
    pub shard: u32,
    /// Lines (requests) in it.
    pub lines: usize,
    /// Bytes of its input file.
    pub bytes: u64,
    /// Where it is ([`BatchPhase`]; in JSON its words: `building`, `uploading`,
    /// `uploaded`, `creating`, the provider's own status while its batch runs
    /// (`validating`, `in_progress`, `finalizing`, `cancelling`...),
    /// `downloading`, `done`, `failed`, `parked` (left for a resume)).
    pub status: BatchPhase,
    /// The provider's id of its input file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// The provider's id of its batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// The provider's counts, from the last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_counts: Option<RequestCounts>,
    /// The last thing that went wrong with it, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ProviderBatch {
    /// One line for a console: `shard 2 (50000 lines) batch_abc: in_progress 1200/50000`.
    pub fn describe(&self) -> String {
        let mut s = format!("shard {} ({} lines)", self.shard, self.lines);
        if let Some(id) = &self.batch_id {
            s.push(' ');
            s.push_str(id);
        }
        s.push_str(": ");
        s.push_str(&self.status.to_string());
        if let Some(c) = self.request_counts.filter(|c| c.total > 0) {
            s.push_str(&format!(
                " {}/{}",
                c.completed + c.failed + c.not_run,
                c.total
            ));
            let mut notes = Vec::new();
            if c.failed > 0 {
                notes.push(format!("{} failed", c.failed));
            }
            if c.not_run > 0 {
                notes.push(format!("{} not run", c.not_run));
            }
            if !notes.is_empty() {
                s.push_str(&format!(" ({})", notes.join(", ")));
            }
        }
        s
    }
}

/// Where a shard of a batch-API run is. In JSON (and `Display`) it is the words
/// a reader sees, so progress and summary files keep their strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
#[non_exhaustive]
pub enum BatchPhase {
    /// Its lines are being built: `building`.
    Building,
    /// Built; its requests go in the create call (Anthropic): `waiting to create`.
    WaitingToCreate,
    /// Built; its file is being uploaded: `uploading`.
    Uploading,
    /// Uploaded, no batch yet: `uploaded`.
    Uploaded,
    /// Its batch is being created: `creating`.
    Creating,
    /// An upload whose answer was lost is looked for: `looking for its uploaded file`.
    FindingFile,
    /// A create whose answer was lost is looked for: `looking for its batch`.
    FindingBatch,
    /// Its rows are read back from the provider because the provider journal lost
    /// them: `reading its requests (the provider journal lost it)`.
    Relearning,
    /// Its batch exists; no status read yet: `created`.
    Created,
    /// Its batch runs; the provider's own status (`validating`, `in_progress`...).
    AtProvider(String),
    /// Its results are being read: `downloading`.
    Downloading,
    /// Every result is in: `done`, or `done (expired)` with the provider's end
    /// status when it was not a plain completion.
    Done(Option<String>),
    /// Its batch failed as a whole: `failed`.
    Failed,
    /// Left for a resume: `parked`.
    Parked,
    /// It had no lines: `empty`.
    Empty,
}

impl BatchPhase {
    /// Whether the shard is still under way: its requests may be at the provider,
    /// on their way there, or coming back. Done, failed, parked and empty shards
    /// (and one still being built, which nothing has sent) are not.
    pub fn is_open(&self) -> bool {
        !matches!(
            self,
            BatchPhase::Building
                | BatchPhase::Done(_)
                | BatchPhase::Failed
                | BatchPhase::Parked
                | BatchPhase::Empty
        )
    }
}

impl BatchPhase {
    /// The words a reader sees (and JSON holds).
    fn words(&self) -> std::borrow::Cow<'_, str> {
        let words = match self {
            BatchPhase::Building => "building",
            BatchPhase::WaitingToCreate => "waiting to create",
            BatchPhase::Uploading => "uploading",
            BatchPhase::Uploaded => "uploaded",
            BatchPhase::Creating => "creating",
            BatchPhase::FindingFile => "looking for its uploaded file",
            BatchPhase::FindingBatch => "looking for its batch",
            BatchPhase::Relearning => "reading its requests (the provider journal lost it)",
            BatchPhase::Created => "created",
            BatchPhase::AtProvider(status) => status,
            BatchPhase::Downloading => "downloading",
            BatchPhase::Done(None) => "done",
            BatchPhase::Done(Some(end)) => return format!("done ({end})").into(),
            BatchPhase::Failed => "failed",
            BatchPhase::Parked => "parked",
            BatchPhase::Empty => "empty",
        };
        words.into()
    }
}

impl std::fmt::Display for BatchPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.words())
    }
}

impl From<BatchPhase> for String {
    fn from(phase: BatchPhase) -> String {
        phase.to_string()
    }
}

impl From<String> for BatchPhase {
    /// Reads the words back; any other word is the provider's own status.
    fn from(words: String) -> BatchPhase {
        match words.as_str() {
            "building" => BatchPhase::Building,
            "waiting to create" => BatchPhase::WaitingToCreate,
            "uploading" => BatchPhase::Uploading,
            "uploaded" => BatchPhase::Uploaded,
            "creating" => BatchPhase::Creating,
            "looking for its uploaded file" => BatchPhase::FindingFile,
            "looking for its batch" => BatchPhase::FindingBatch,
            "reading its requests (the provider journal lost it)" => BatchPhase::Relearning,
            "created" => BatchPhase::Created,
            "downloading" => BatchPhase::Downloading,
            "done" => BatchPhase::Done(None),
            "failed" => BatchPhase::Failed,
            "parked" => BatchPhase::Parked,
            "empty" => BatchPhase::Empty,
            _ => match words
                .strip_prefix("done (")
                .and_then(|w| w.strip_suffix(')'))
            {
                Some(end) => BatchPhase::Done(Some(end.to_string())),
                None => BatchPhase::AtProvider(words),
            },
        }
    }
}

impl PartialEq<&str> for BatchPhase {
    fn eq(&self, words: &&str) -> bool {
        self.words() == *words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_phases_keep_their_words_in_json() {
        let phases = [
            (BatchPhase::Building, "building", false),
            (BatchPhase::WaitingToCreate, "waiting to create", true),
            (BatchPhase::Uploading, "uploading", true),
            (BatchPhase::Uploaded, "uploaded", true),
            (BatchPhase::Creating, "creating", true),
            (
                BatchPhase::FindingFile,
                "looking for its uploaded file",
                true,
            ),
            (BatchPhase::FindingBatch, "looking for its batch", true),
            (
                BatchPhase::Relearning,
                "reading its requests (the provider journal lost it)",
                true,
            ),
            (BatchPhase::Created, "created", true),
            (
                BatchPhase::AtProvider("in_progress".into()),
                "in_progress",
                true,
            ),
            (BatchPhase::Downloading, "downloading", true),
            (BatchPhase::Done(None), "done", false),
            (
                BatchPhase::Done(Some("expired".into())),
                "done (expired)",
                false,
            ),
            (BatchPhase::Failed, "failed", false),
            (BatchPhase::Parked, "parked", false),
            (BatchPhase::Empty, "empty", false),
        ];
        for (phase, words, open) in phases {
            let json = serde_json::to_string(&phase).unwrap();
            assert_eq!(json, format!("{words:?}"));
            assert_eq!(serde_json::from_str::<BatchPhase>(&json).unwrap(), phase);
            assert_eq!(phase.is_open(), open, "{words}");
        }
    }
}
