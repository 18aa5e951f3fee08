//! The provider journal of a batch-API run, `shadow-mode-batch-provider-{run}.jsonl`:
//! one JSON line for every id the provider gives (an uploaded file, a created
//! batch), every upload about to be made, every create about to be sent
//! without a file (Anthropic's), every
//! batch that ended and every shard whose results are all in the results
//! journal, each written (and synced) before the step that follows it.
//! A resume folds it back into the state of each shard, so that it polls a batch
//! it created instead of creating it again.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use crate::report::BatchPhase;
use crate::time::Millis;

/// One line of the provider journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "record",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum BatchRecord {
    /// A shard's input file is about to be uploaded under `file_name`: which
    /// rows, and when. Written before the upload, so that a resume can find a
    /// file the upload may have left at the provider (by its name) and use or
    /// delete it.
    Uploading {
        /// The shard's number in the run, from 1.
        shard: u32,
        /// The name the file is uploaded under.
        file_name: String,
        /// Lines in the file.
        lines: usize,
        /// Bytes in the file.
        bytes: u64,
        /// The lines' rows and attempts, as in [`BatchRecord::Uploaded`].
        members: Vec<[u64; 3]>,
        /// When.
        #[serde(with = "crate::time::iso8601")]
        at: Millis,
    },
    /// A shard's input file was uploaded: the provider's file id, and which rows
    /// (at which attempt) its lines are.
    Uploaded {
        /// The shard's number in the run, from 1.
        shard: u32,
        /// The provider's id of the file.
        file_id: String,
        /// Lines in the file.
        lines: usize,
        /// Bytes in the file.
        bytes: u64,
        /// The lines' rows and attempts, as runs `[first row, count, attempt]` of
        /// consecutive rows with the same attempt.
        members: Vec<[u64; 3]>,
        /// When.
        #[serde(with = "crate::time::iso8601")]
        at: Millis,
    },
    /// A shard's requests are about to be sent inline in a create call
    /// (Anthropic's Message Batches, which have no input file): which rows, and
    /// when. Written before the call, so that a resume can look for the batch
    /// the call may have created (as many requests, created after `at`).
    Submitting {
        /// The shard's number in the run, from 1.
        shard: u32,
        /// Requests in the call.
        lines: usize,
        /// Bytes of its lines.
        bytes: u64,
        /// The requests' rows and attempts, as in [`BatchRecord::Uploaded`].
        members: Vec<[u64; 3]>,
        /// When the call was about to be made.
        #[serde(with = "crate::time::iso8601")]
        at: Millis,
    },
    /// A provider batch was created for the shard (or found, after a crash,
    /// created from its file or its intent).
    Created {
        /// The shard.
        shard: u32,
        /// The provider's id of the batch.
        batch_id: String,
        /// When.
        #[serde(with = "crate::time::iso8601")]
        at: Millis,
    },
    /// The shard's batch reached a final status.
    Ended {
        /// The shard.
        shard: u32,
        /// The provider's id of the batch.
        batch_id: String,
        /// The provider's status: `completed`, `expired`, `cancelled`, `failed`.
        status: String,
        /// Where its answers are.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output_file_id: Option<String>,
        /// Where its failed requests are.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_file_id: Option<String>,
        /// When.
        #[serde(with = "crate::time::iso8601")]
        at: Millis,
    },
    /// Every line of the shard's results is in the results journal (or the
    /// shard's rows were given up for resume): nothing more to fetch.
    Done {
        /// The shard.
        shard: u32,
        /// When.
        #[serde(with = "crate::time::iso8601")]
        at: Millis,
    },
}

impl BatchRecord {
    /// The record as one journal line, ending in `\n`.
    pub fn to_json_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("a record serializes to JSON");
        line.push('\n');
        line
    }

    /// The shard it is about.
    pub fn shard(&self) -> u32 {
        match self {
            BatchRecord::Uploading { shard, .. }
            | BatchRecord::Uploaded { shard, .. }
            | BatchRecord::Submitting { shard, .. }
            | BatchRecord::Created { shard, .. }
            | BatchRecord::Ended { shard, .. }
            | BatchRecord::Done { shard, .. } => *shard,
        }
    }
}

/// Runs `[first row, count, attempt]` of `(row, attempt)` pairs, in order.
pub(super) fn encode_members(members: &[(usize, u32)]) -> Vec<[u64; 3]> {
    let mut runs: Vec<[u64; 3]> = Vec::new();
    for &(row, attempt) in members {
        let (row, attempt) = (row as u64, u64::from(attempt));
        match runs.last_mut() {
            Some(run) if run[0] + run[1] == row && run[2] == attempt => run[1] += 1,
            _ => runs.push([row, 1, attempt]),
        }
    }
    runs
}

/// The `(row, attempt)` pairs of runs; `None` when a run is absurd (a count
/// or attempt that cannot be, or more than `max_rows` pairs in all).
pub(super) fn decode_members(runs: &[[u64; 3]], max_rows: usize) -> Option<Vec<(usize, u32)>> {
    let mut out = Vec::new();
    for &[first, count, attempt] in runs {
        let attempt = u32::try_from(attempt).ok().filter(|a| *a >= 1)?;
        if count as usize > max_rows.saturating_sub(out.len()) {
            return None;
        }
        for row in first..first.checked_add(count)? {
            out.push((usize::try_from(row).ok()?, attempt));
        }
    }
    Some(out)
}

/// What the provider journal says about one shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardRecord {
    /// The shard's number, from 1.
    pub shard: u32,
    /// The rows and attempts of its lines (runs, as in [`BatchRecord::Uploaded`]).
    pub members: Vec<[u64; 3]>,
    /// Lines of its input file.
    pub lines: usize,
    /// Bytes of its input file.
    pub bytes: u64,
    /// Its uploaded input file.
    pub file_id: Option<String>,
    /// When its requests were about to be sent inline (no file).
    pub submitted_at: Option<Millis>,
    /// Its batch, the latest created.
    pub batch_id: Option<String>,
    /// How the latest batch ended: status, output file, error file.
    pub ended: Option<(String, Option<String>, Option<String>)>,
    /// Every result is journaled.
    pub done: bool,
    /// The name its file was about to be uploaded under (an upload whose file
    /// id may never have come back when `file_id` is `None`).
    pub uploading: Option<String>,
    /// The journal's line (from 1) of the record that gave its rows.
    pub members_line: usize,
    /// The journal's line of the record that gave its latest batch.
    pub batch_line: usize,
}

impl ShardRecord {
    /// Where the journal leaves the shard. Its rows may be at the provider
    /// ([`BatchPhase::is_open`]) once it was uploaded or its create was about to
    /// be sent, until its batch failed or its results are all in.
    pub fn phase(&self) -> BatchPhase {
        let ended = self.ended.as_ref().map(|(status, ..)| status.as_str());
        if self.done {
            return BatchPhase::Done(
                ended
                    .filter(|s| !matches!(*s, "completed" | "ended" | "succeeded"))
                    .map(str::to_string),
            );
        }
        if ended == Some("failed") {
            return BatchPhase::Failed;
        }
        match (
            &self.batch_id,
            self.file_id.is_some() || self.submitted_at.is_some(),
        ) {
            // Nothing sent as far as the journal knows: an upload without a file
            // id made no batch.
            (_, false) => BatchPhase::Building,
            (Some(_), true) if ended.is_some() => BatchPhase::Downloading,
            (Some(_), true) => BatchPhase::Created,
            (None, true) if self.file_id.is_some() => BatchPhase::Uploaded,
            (None, true) => BatchPhase::Creating,
        }
    }
}

/// A provider journal folded back into the state of each shard.
///
/// Lines follow the results journal's rules: a last line cut short by a crash
/// is ignored ([`torn_tail`](Self::torn_tail)); the host truncates the file to
/// [`complete_len`](Self::complete_len) before appending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FoldedBatches {
    /// The shards, by number.
    pub shards: Vec<ShardRecord>,
    /// The last line was incomplete and was ignored.
    pub torn_tail: bool,
    /// Lines before the last that are not records: (1-based line, reason).
    pub bad_lines: Vec<(usize, String)>,
    /// Length in bytes of the journal's sound part.
    pub complete_len: usize,
    /// Lines in the journal's sound part: the next record appended is line
    /// `complete_lines + 1`.
    pub complete_lines: usize,
}

/// Folds a provider journal read from `r`.
///
/// # Errors
///
/// Only the reader's own.
pub fn fold_batch_journal<R: BufRead>(mut r: R) -> std::io::Result<FoldedBatches> {
    let mut shards: BTreeMap<u32, ShardRecord> = BTreeMap::new();
    let mut bad_lines = Vec::new();
    let mut pending: Option<(usize, String, usize)> = None;
    let (mut offset, mut number, mut last_newline_end) = (0usize, 0usize, 0usize);
    let mut lines_at_newline = 0usize;
    // (offset, lines before it) of the first line not taken.
    let mut torn_at: Option<(usize, usize)> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        number += 1;
        let start = offset;
        offset += n;
        let (body, terminated) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, true),
            None => (&buf[..], false),
        };
        if terminated {
            last_newline_end = offset;
            lines_at_newline = number;
        }
        if body.trim_ascii().is_empty() {
            continue;
        }
        if let Some((line, reason, _)) = pending.take() {
            bad_lines.push((line, reason));
        }
        if !terminated {
            torn_at = Some((start, number - 1));
            continue;
        }
        match serde_json::from_slice::<BatchRecord>(body) {
            Ok(mut record) => {
                let s = shards.entry(record.shard()).or_insert_with(|| ShardRecord {
                    shard: record.shard(),
                    ..ShardRecord::default()
                });
                // The three records that give a shard's rows give them alike.
                if let BatchRecord::Uploading {
                    lines,
                    bytes,
                    members,
                    ..
                }
                | BatchRecord::Uploaded {
                    lines,
                    bytes,
                    members,
                    ..
                }
                | BatchRecord::Submitting {
                    lines,
                    bytes,
                    members,
                    ..
                } = &mut record
                {
                    s.lines = *lines;
                    s.bytes = *bytes;
                    s.members = std::mem::take(members);
                    s.members_line = number;
                }
                match record {
                    BatchRecord::Uploading { file_name, .. } => s.uploading = Some(file_name),
                    BatchRecord::Uploaded { file_id, .. } => s.file_id = Some(file_id),
                    BatchRecord::Submitting { at, .. } => s.submitted_at = Some(at),
                    BatchRecord::Created { batch_id, .. } => {
                        s.batch_id = Some(batch_id);
                        s.ended = None;
                        s.batch_line = number;
                    }
                    BatchRecord::Ended {
                        status,
                        output_file_id,
                        error_file_id,
                        ..
                    } => s.ended = Some((status, output_file_id, error_file_id)),
                    BatchRecord::Done { .. } => s.done = true,
                }
            }
            Err(e) => pending = Some((number, format!("not a provider record: {e}"), start)),
        }
    }
    if let Some((line, _, start)) = pending {
        torn_at = Some((start, line - 1));
    }
    Ok(FoldedBatches {
        shards: shards.into_values().collect(),
        torn_tail: torn_at.is_some(),
        bad_lines,
        complete_len: torn_at.map_or(last_newline_end, |(start, _)| start),
        complete_lines: torn_at.map_or(lines_at_newline, |(_, lines)| lines),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule the CLI had for "may still hold rows" before the phase named it.
    #[test]
    fn a_shard_is_open_from_its_upload_or_create_until_it_fails_or_is_done() {
        let base = ShardRecord {
            shard: 1,
            members: Vec::new(),
            lines: 2,
            bytes: 10,
            file_id: None,
            submitted_at: None,
            batch_id: None,
            ended: None,
            done: false,
            uploading: None,
            members_line: 1,
            batch_line: 0,
        };
        let ended = |s: &str| Some((s.to_string(), None, None));
        // A batch created from an uploaded file, then ended as `status`.
        let created = ShardRecord {
            file_id: Some("file-1".into()),
            batch_id: Some("batch-1".into()),
            ..base.clone()
        };
        let ended_as = |status: &str, done: bool| ShardRecord {
            ended: ended(status),
            done,
            ..created.clone()
        };
        let cases = [
            (
                ShardRecord {
                    uploading: Some("f.jsonl".into()),
                    ..base.clone()
                },
                false,
            ),
            (
                ShardRecord {
                    file_id: Some("file-1".into()),
                    ..base.clone()
                },
                true,
            ),
            (
                ShardRecord {
                    submitted_at: Some(Millis(5)),
                    ..base.clone()
                },
                true,
            ),
            (created.clone(), true),
            (ended_as("expired", false), true),
            (ended_as("failed", false), false),
            (ended_as("completed", true), false),
        ];
        for (record, open) in cases {
            assert_eq!(record.phase().is_open(), open, "{record:?}");
        }
    }

    #[test]
    fn members_round_trip_as_runs() {
        let members = [(0, 1), (1, 1), (2, 1), (5, 2), (6, 2), (7, 1), (3, 1)];
        let runs = encode_members(&members);
        assert_eq!(runs, [[0, 3, 1], [5, 2, 2], [7, 1, 1], [3, 1, 1]]);
        assert_eq!(decode_members(&runs, 100).unwrap(), members);
        assert_eq!(
            decode_members(&[[0, 10, 1]], 5),
            None,
            "more rows than allowed"
        );
        assert_eq!(decode_members(&[[0, 1, 0]], 5), None, "attempt 0");
        assert_eq!(decode_members(&[[u64::MAX, 2, 1]], 5), None, "overflow");
    }

    #[test]
    fn a_journal_folds_to_the_latest_state_of_each_shard_and_ignores_a_torn_tail() {
        let at = Millis(1_737_714_600_000);
        let records = [
            BatchRecord::Uploaded {
                shard: 1,
                file_id: "file-1".into(),
                lines: 3,
                bytes: 300,
                members: vec![[0, 3, 1]],
                at,
            },
            BatchRecord::Created {
                shard: 1,
                batch_id: "batch_1".into(),
                at,
            },
            BatchRecord::Uploaded {
                shard: 2,
                file_id: "file-2".into(),
                lines: 1,
                bytes: 100,
                members: vec![[3, 1, 1]],
                at,
            },
            BatchRecord::Ended {
                shard: 1,
                batch_id: "batch_1".into(),
                status: "expired".into(),
                output_file_id: Some("file-o".into()),
                error_file_id: None,
                at,
            },
        ];
        let mut text: String = records.iter().map(BatchRecord::to_json_line).collect();
        let sound = text.len();
        assert!(text.contains(r#""record":"uploaded""#), "{text}");
        assert!(text.contains(r#""fileId":"file-1""#), "{text}");
        text.push_str(r#"{"record":"done","sha"#);
        let f = fold_batch_journal(text.as_bytes()).unwrap();
        assert!(f.torn_tail);
        assert_eq!(f.complete_len, sound);
        assert_eq!(f.complete_lines, 4, "the next record is line 5");
        assert_eq!((f.shards[0].members_line, f.shards[0].batch_line), (1, 2));
        assert!(f.bad_lines.is_empty());
        assert_eq!(f.shards.len(), 2);
        let one = &f.shards[0];
        assert_eq!(one.batch_id.as_deref(), Some("batch_1"));
        assert_eq!(
            one.ended,
            Some(("expired".into(), Some("file-o".into()), None))
        );
        assert!(!one.done);
        let two = &f.shards[1];
        assert_eq!(
            (two.file_id.as_deref(), two.batch_id.as_deref()),
            (Some("file-2"), None)
        );
        // A create without a file: its intent, then its batch.
        let submitted = [
            BatchRecord::Submitting {
                shard: 3,
                lines: 2,
                bytes: 90,
                members: vec![[4, 2, 1]],
                at,
            },
            BatchRecord::Created {
                shard: 3,
                batch_id: "msgbatch_3".into(),
                at,
            },
        ];
        let text: String = submitted.iter().map(BatchRecord::to_json_line).collect();
        assert!(text.contains(r#""record":"submitting""#), "{text}");
        let f =
            fold_batch_journal(format!("{}\n", text.lines().next().unwrap()).as_bytes()).unwrap();
        assert_eq!(f.shards[0].submitted_at, Some(at));
        assert_eq!(
            (f.shards[0].lines, f.shards[0].file_id.as_deref()),
            (2, None)
        );
        assert_eq!(f.shards[0].batch_id, None);
        let f = fold_batch_journal(text.as_bytes()).unwrap();
        assert_eq!(f.shards[0].batch_id.as_deref(), Some("msgbatch_3"));
        assert_eq!(
            decode_members(&f.shards[0].members, 10).unwrap(),
            [(4, 1), (5, 1)]
        );

        let bad = format!("garbage\n{}", records[1].to_json_line());
        let f = fold_batch_journal(bad.as_bytes()).unwrap();
        assert_eq!(f.bad_lines.len(), 1);
        assert_eq!(f.shards[0].batch_id.as_deref(), Some("batch_1"));
    }
}
