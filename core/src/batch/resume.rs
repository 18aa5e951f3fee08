//! Resuming a batch run: taking back the journals of an earlier session
//! ([`BatchRun::restore`]) and recovering what a lost or partial provider journal
//! no longer says ([`BatchRun::recover`]).

use crate::engine::UsageError;
use crate::journal::ItemResult;
use crate::report::{BatchPhase, ProviderBatch};
use crate::time::Millis;
use std::collections::{HashMap, VecDeque};

use super::{
    journal, BatchOutput, BatchRecord, BatchRun, Chore, Dialect, FoldedBatches, Phase, Shard,
    ShardRecord,
};

impl BatchRun {
    /// Takes the results journal (as [`Run::restore`](crate::Run::restore)) and the provider journal of
    /// an earlier session: rows of shards submitted then are taken back as in
    /// flight (their batches polled, their files downloaded, never submitted
    /// again); the rest is sent in new shards, each row's attempts counted on
    /// from the provider journal (so its retry budget holds across sessions),
    /// except the rows in `fresh`, which start a new budget (the failed rows a
    /// user asked to run again). An upload whose intent is journaled but not its
    /// file id is looked for at the provider by its file name first. Only before
    /// the first `poll`; then [`BatchRun::recover`]. Returns how many results
    /// were taken.
    ///
    /// # Errors
    ///
    /// As [`Run::restore`](crate::Run::restore); a shard naming a row the CSV does not have is a
    /// [`UsageError::RestoreMismatch`]; two records claiming the same request,
    /// or one batch given to two shards, is a [`UsageError::ProviderJournal`]
    /// naming their lines.
    pub fn restore<'r, I>(
        &mut self,
        now: Millis,
        results: I,
        batches: &FoldedBatches,
        fresh: &[usize],
    ) -> Result<usize, UsageError>
    where
        I: IntoIterator<Item = ItemResult<'r>>,
    {
        // The rounds read the restored rows as the run takes them; the rows
        // an earlier session released are those it finished or submitted.
        let mut rounds = self.rounds.take();
        let mut released = 0;
        let taken = self.run.restore(results.into_iter().inspect(|r| {
            if let Some(rounds) = &mut rounds {
                rounds.row_final(r.row, super::rounds::restored_agreement(r));
            }
            released = released.max(r.row + 1);
        }));
        self.rounds = rounds;
        let taken = taken?;
        let rows = self.run.row_count();
        self.next_line = batches.complete_lines + 1;
        self.journaled = batches.shards.clone();
        let mut attempts: HashMap<usize, u32> = HashMap::new();
        for record in &batches.shards {
            for (row, attempt) in journal::decode_members(&record.members, rows).unwrap_or_default()
            {
                let seen = attempts.entry(row).or_default();
                *seen = (*seen).max(attempt);
            }
        }
        released = attempts
            .keys()
            .fold(released, |most, &row| most.max(row + 1));
        self.resume_rounds(released);
        for row in fresh {
            attempts.remove(row);
        }
        check_claims(batches, rows)?;
        for record in &batches.shards {
            self.next_shard = self.next_shard.max(record.shard.saturating_add(1));
            if let Some(id) = &record.batch_id {
                self.claimed.insert(id.clone());
            }
            let failed = matches!(&record.ended, Some((s, ..)) if s == "failed");
            if record.done || failed {
                // Its files may outlive a crash before their delete.
                let mut shard = Shard::new(record.shard, Phase::Done, now);
                shard.file_id.clone_from(&record.file_id);
                shard.batch_id.clone_from(&record.batch_id);
                shard.ended_status = record.ended.as_ref().map(|(s, ..)| s.clone());
                if let Some((_, output, error)) = &record.ended {
                    shard.result_files = output.iter().chain(error).cloned().collect();
                }
                shard.phase = if failed { Phase::Failed } else { Phase::Done };
                shard.lines = record.lines;
                self.shards.push(shard);
                let s = self.shards.len() - 1;
                self.clear_files(s);
                continue;
            }
            let submitted = record.file_id.is_some()
                || record.submitted_at.is_some()
                || record.uploading.is_some();
            if !submitted {
                continue;
            }
            let members = journal::decode_members(&record.members, rows).ok_or_else(|| {
                UsageError::RestoreMismatch {
                    row: rows,
                    reason: format!(
                        "the provider journal's shard {} names rows the CSV does not have",
                        record.shard
                    ),
                }
            })?;
            if let Some(&(row, _)) = members.iter().find(|(row, _)| *row >= rows) {
                return Err(UsageError::RestoreMismatch {
                    row,
                    reason: format!(
                        "the provider journal's shard {} names row {row}; the CSV has {rows} rows",
                        record.shard
                    ),
                });
            }
            let mut shard = Shard::new(record.shard, Phase::Uploaded, now);
            shard.file_id.clone_from(&record.file_id);
            shard.lines = record.lines;
            shard.bytes = record.bytes;
            shard.batch_id.clone_from(&record.batch_id);
            shard.intent_at = record.submitted_at;
            shard.members_line = record.members_line;
            shard.batch_line = record.batch_line;
            // Its requests went in the create call (no file): Gemini's choice
            // for a small shard, journaled as the create's intent.
            shard.inline = matches!(self.dialect, Dialect::Gemini { .. })
                && record.file_id.is_none()
                && record.uploading.is_none()
                && record.submitted_at.is_some();
            for &(row, attempt) in &members {
                if let Some(order) = self.run.adopt(now, row, attempt) {
                    let id = self.dialect.custom_id(row, attempt);
                    shard.waiting.insert(id, order.ticket);
                }
            }
            shard.members = members;
            match (&record.batch_id, &record.ended) {
                (None, _) if record.file_id.is_none() && record.uploading.is_some() => {
                    // The upload's answer never came: its file is looked for
                    // by name.
                    shard.find_file = true;
                    self.add_chore(Chore::FindRunFiles {
                        after: None,
                        pages: 0,
                    });
                }
                (None, _) => shard.need_find = true,
                (Some(_), None) => shard.phase = Phase::Running,
                (Some(id), Some((status, output, error))) => {
                    shard.phase = Phase::Downloading;
                    shard.ended_status = Some(status.clone());
                    shard.status_text = Some(status.clone());
                    shard.result_files = output.iter().chain(error).cloned().collect();
                    shard.downloads = if self.dialect.inline() || shard.inline {
                        VecDeque::from([id.clone()])
                    } else {
                        shard.result_files.iter().cloned().collect()
                    };
                }
            }
            self.shards.push(shard);
            let s = self.shards.len() - 1;
            if self.shards[s].waiting.is_empty() {
                // Every row is in the results journal already.
                self.shards[s].phase = Phase::Done;
                self.outputs
                    .push_back(BatchOutput::Record(BatchRecord::Done {
                        shard: record.shard,
                        at: now,
                    }));
                self.clear_files(s);
            }
        }
        for (row, attempt) in attempts {
            self.run.count_requests(row, attempt);
        }
        self.changed = true;
        self.refresh();
        Ok(taken)
    }

    /// After [`BatchRun::restore`], before the first `poll`: rebuilds what the
    /// provider journal lost from the provider batches the run's progress or
    /// summary file listed (`saved`), and, when the journal was `lost` or is
    /// missing some of them, from the provider itself (OpenAI's batches name
    /// the run in their metadata: the account's are listed and this run's
    /// adopted). A batch found so has rows no journal names: they are read from
    /// its input file (OpenAI) or its results once it ends (Anthropic), and
    /// nothing new is created until they are known, so that no row of it is
    /// sent again.
    ///
    /// # Errors
    ///
    /// [`UsageError::ProviderJournal`] when the saved file gives a batch to
    /// another shard than the journal does.
    pub fn recover(
        &mut self,
        now: Millis,
        saved: &[ProviderBatch],
        lost: bool,
    ) -> Result<(), UsageError> {
        let mut rebuilt = lost;
        for p in saved {
            self.next_shard = self.next_shard.max(p.shard.saturating_add(1));
            if let Some(id) = &p.batch_id {
                if let Some(other) = self
                    .journaled
                    .iter()
                    .find(|r| r.batch_id.as_deref() == Some(id.as_str()) && r.shard != p.shard)
                {
                    return Err(UsageError::ProviderJournal {
                        detail: format!(
                            "line {} gives batch {id} to shard {}, but the run's progress file lists it as shard {}'s; the journal was edited or mixed up (restore it, or delete it and resume: the run rebuilds it from the progress file and the provider)",
                            other.batch_line, other.shard, p.shard
                        ),
                    });
                }
            }
            if let Some(s) = self.shards.iter().position(|s| s.number == p.shard) {
                // Journaled; a batch the journal lost is taken from the file.
                let shard = &mut self.shards[s];
                if let (Phase::Uploaded, None, Some(id)) =
                    (shard.phase, &shard.batch_id, &p.batch_id)
                {
                    shard.batch_id = Some(id.clone());
                    shard.phase = Phase::Running;
                    shard.need_find = false;
                    shard.find_file = false;
                    self.claimed.insert(id.clone());
                    rebuilt = true;
                }
                continue;
            }
            if self.journaled.iter().any(|r| r.shard == p.shard) {
                continue;
            }
            if !p.status.is_open() || p.lines == 0 {
                if let Some(id) = &p.batch_id {
                    // Its rows are all in: its batch is no one's to adopt,
                    // and its files may outlive a crash before their delete.
                    self.claimed.insert(id.clone());
                    let mut shard = Shard::new(p.shard, Phase::Done, now);
                    shard.batch_id = Some(id.clone());
                    shard.file_id.clone_from(&p.file_id);
                    shard.lines = p.lines;
                    shard.ended_status = match &p.status {
                        BatchPhase::Done(end) => end.clone(),
                        _ => None,
                    };
                    self.shards.push(shard);
                    let s = self.shards.len() - 1;
                    self.clear_files(s);
                    // The journal gets it back, done.
                    for record in [
                        BatchRecord::Created {
                            shard: p.shard,
                            batch_id: id.clone(),
                            at: now,
                        },
                        BatchRecord::Done {
                            shard: p.shard,
                            at: now,
                        },
                    ] {
                        self.urgent.push_back(BatchOutput::Record(record));
                    }
                }
                continue;
            }
            let mut shard = Shard::new(p.shard, Phase::Uploaded, now);
            shard.lines = p.lines;
            shard.bytes = p.bytes;
            shard.file_id.clone_from(&p.file_id);
            shard.learn = Some(Vec::new());
            match (&p.batch_id, &p.file_id) {
                (Some(id), _) => {
                    shard.batch_id = Some(id.clone());
                    shard.phase = Phase::Running;
                    self.claimed.insert(id.clone());
                    self.urgent
                        .push_back(BatchOutput::Record(BatchRecord::Created {
                            shard: p.shard,
                            batch_id: id.clone(),
                            at: now,
                        }));
                }
                // Uploaded: a batch made from its file is looked for.
                (None, Some(_)) => shard.need_find = true,
                // Its create may have made a batch: looked for by its count
                // (Anthropic's batches name no run), in the whole list.
                (None, None) if self.dialect.inline() => {
                    let sent = matches!(
                        p.status,
                        BatchPhase::WaitingToCreate
                            | BatchPhase::Creating
                            | BatchPhase::FindingBatch
                    );
                    if !sent {
                        continue;
                    }
                    shard.need_find = true;
                    shard.intent_at = Some(Millis(0));
                }
                // Its upload may have left a file: found by its name below.
                (None, None) => {
                    rebuilt = true;
                    continue;
                }
            }
            rebuilt = true;
            self.shards.push(shard);
        }
        if rebuilt && !self.dialect.inline() {
            self.add_chore(Chore::FindRunBatches {
                after: None,
                pages: 0,
            });
            self.add_chore(Chore::FindRunFiles {
                after: None,
                pages: 0,
            });
        }
        self.changed = true;
        self.refresh();
        Ok(())
    }

    /// Whether what the provider journal lost is still being rebuilt: nothing
    /// new is created meanwhile.
    pub fn recovering(&self) -> bool {
        self.shards.iter().any(|s| s.learn.is_some())
            || self.chore_pending(|c| matches!(c, Chore::FindRunBatches { .. }))
    }
}

/// Two records of shards still open that claim the same request (row and
/// attempt), or one batch given to two shards: the journal was edited or mixed
/// up, and a resume from it could send rows again.
fn check_claims(batches: &FoldedBatches, rows: usize) -> Result<(), UsageError> {
    let mut claims: HashMap<(usize, u32), &ShardRecord> = HashMap::new();
    let mut batch_of: HashMap<&str, &ShardRecord> = HashMap::new();
    let fix = "the journal was edited or mixed up; restore it, or delete it and resume (the run rebuilds it from the progress file and the provider)";
    for record in &batches.shards {
        if let Some(id) = &record.batch_id {
            if let Some(other) = batch_of.insert(id, record) {
                return Err(UsageError::ProviderJournal {
                    detail: format!(
                        "lines {} and {} give the same batch {id} to shards {} and {}; {fix}",
                        other.batch_line, record.batch_line, other.shard, record.shard
                    ),
                });
            }
        }
        let failed = matches!(&record.ended, Some((s, ..)) if s == "failed");
        if record.done || failed {
            continue;
        }
        for pair in journal::decode_members(&record.members, rows).unwrap_or_default() {
            if let Some(other) = claims
                .insert(pair, record)
                .filter(|o| o.shard != record.shard)
            {
                let (a, b) = if other.members_line <= record.members_line {
                    (other, record)
                } else {
                    (record, other)
                };
                return Err(UsageError::ProviderJournal {
                    detail: format!(
                        "lines {} and {} both claim row {} (attempt {}), for shards {} and {}; {fix}",
                        a.members_line, b.members_line, pair.0, pair.1, a.shard, b.shard
                    ),
                });
            }
        }
    }
    Ok(())
}
