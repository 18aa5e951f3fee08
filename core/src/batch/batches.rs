//! A provider batch's life: created, read, its result lines matched to their
//! rows, finished; and a batch that turns out to be another shard's.

use crate::engine::{Input, Ticket};
use crate::http::HttpResponse;
use crate::stop::AbortReason;
use crate::time::Millis;
use std::collections::VecDeque;

use super::{
    BatchObject, BatchOutput, BatchRecord, BatchRun, LineOutcome, Mode, Phase, ProviderStatus,
};

/// A provider batch's life: created, read, its results matched, finished.
impl BatchRun {
    /// A batch exists for the shard (created now, or found from its file).
    pub(super) fn on_created(&mut self, now: Millis, s: usize, batch: BatchObject) {
        self.claimed.insert(batch.id.clone());
        let shard = &mut self.shards[s];
        shard.batch_id = Some(batch.id.clone());
        shard.phase = Phase::Running;
        shard.need_find = false;
        shard.candidates.clear();
        shard.polls = 0;
        shard.ended_status = None;
        shard.cancel = self.mode == Mode::Cancelling;
        self.urgent
            .push_back(BatchOutput::Record(BatchRecord::Created {
                shard: shard.number,
                batch_id: batch.id.clone(),
                at: now,
            }));
        if shard.file && (self.dialect.inline() || shard.inline) {
            // The requests are at the provider: the local copy can go.
            shard.file = false;
            self.urgent.push_back(BatchOutput::DiscardFile {
                shard: shard.number,
            });
        }
        self.on_batch(now, s, batch);
    }

    /// What a read of the shard's batch says.
    pub(super) fn on_batch(&mut self, now: Millis, s: usize, batch: BatchObject) {
        if self.mismatched(now, s, &batch) {
            return;
        }
        let next_poll = self.next_poll(s);
        let shard = &mut self.shards[s];
        if shard.file_id.is_none() && !self.dialect.inline() {
            shard.file_id.clone_from(&batch.input_file_id);
        }
        // A batch adopted from the provider says how its requests went.
        shard.inline |= batch.inline_input;
        if shard.status_text.as_deref() != Some(batch.status_text.as_str())
            || shard.counts != batch.counts
        {
            self.changed = true;
        }
        shard.status_text = Some(batch.status_text.clone());
        shard.counts = batch.counts.or(shard.counts);
        match batch.status {
            ProviderStatus::Validating
            | ProviderStatus::InProgress
            | ProviderStatus::Finalizing
            | ProviderStatus::Cancelling
            | ProviderStatus::Unknown => {
                shard.phase = Phase::Running;
                shard.due = now.plus(next_poll);
                shard.polls += 1;
            }
            ProviderStatus::Completed | ProviderStatus::Expired | ProviderStatus::Cancelled => {
                shard.phase = Phase::Downloading;
                shard.result_files = batch
                    .output_file_id
                    .iter()
                    .chain(&batch.error_file_id)
                    .cloned()
                    .collect();
                shard.ended_status = Some(batch.status_text.clone());
                // Inline results are read from the batch itself (Gemini's
                // finished operation, read again: a resume reads it the same).
                shard.downloads = if self.dialect.inline() || shard.inline {
                    VecDeque::from([batch.id.clone()])
                } else {
                    batch
                        .output_file_id
                        .iter()
                        .chain(&batch.error_file_id)
                        .cloned()
                        .collect()
                };
                shard.due = now;
                self.urgent
                    .push_back(BatchOutput::Record(BatchRecord::Ended {
                        shard: shard.number,
                        batch_id: batch.id,
                        status: batch.status_text,
                        output_file_id: batch.output_file_id,
                        error_file_id: batch.error_file_id,
                        at: now,
                    }));
            }
            ProviderStatus::Failed => {
                let detail = if batch.errors.is_empty() {
                    "the provider gave no reason".to_string()
                } else {
                    batch
                        .errors
                        .iter()
                        .map(|(code, message)| format!("{code}: {message}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                let mut detail = detail;
                self.run.redact(&mut detail);
                let shard = &mut self.shards[s];
                shard.error = Some(detail.clone());
                self.urgent
                    .push_back(BatchOutput::Record(BatchRecord::Ended {
                        shard: shard.number,
                        batch_id: batch.id.clone(),
                        status: batch.status_text,
                        output_file_id: None,
                        error_file_id: None,
                        at: now,
                    }));
                let transient = !batch.errors.is_empty()
                    && batch
                        .errors
                        .iter()
                        .all(|(code, _)| code == "token_limit_exceeded");
                if transient && shard.recreates < self.max_retries && self.mode == Mode::Running {
                    // The provider's queue is full: the same file, later.
                    shard.recreates += 1;
                    shard.failures = shard.recreates;
                    shard.phase = Phase::Uploaded;
                    shard.batch_id = None;
                    let wait = self.call_backoff(s).max(self.cfg.poll_max_ms);
                    self.shards[s].due = now.plus(wait);
                    return;
                }
                shard.phase = Phase::Failed;
                let tickets: Vec<Ticket> = shard.waiting.drain().map(|(_, t)| t).collect();
                self.clear_files(s);
                self.run.abort(
                    now,
                    AbortReason::BatchFailed {
                        batch_id: batch.id,
                        detail,
                    },
                );
                for ticket in tickets {
                    self.run.give_back(now, ticket);
                }
            }
        }
    }

    /// One line of an output or error file.
    pub(super) fn on_result_line(&mut self, now: Millis, s: usize, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let shard = &mut self.shards[s];
        let (id, outcome) = match self.dialect.parse_line(line) {
            Ok(parsed) => parsed,
            Err(e) => {
                shard.bad_lines += 1;
                shard.error = Some(format!("a result line is unreadable: {e}"));
                return;
            }
        };
        let Some(ticket) = shard.waiting.remove(&id) else {
            // A line of a request answered already (a download read again), or
            // not of this shard: of this run but of rows it does not hold, its
            // batch is another shard's (a mixed-up journal).
            let stranger = self
                .dialect
                .row_attempt(&id)
                .is_some_and(|pair| !shard.members.contains(&pair));
            if stranger && !shard.learned && shard.probe.is_none() {
                shard.strangers += 1;
            }
            return;
        };
        if shard.probe.is_some() {
            shard.probe_hit = true;
        }
        match outcome {
            LineOutcome::Answered { status, body } => {
                let response = HttpResponse {
                    status,
                    headers: Vec::new(),
                    body,
                };
                // The ticket is in flight: it came from this shard's table.
                let _ = self.run.handle(now, Input::Response { ticket, response });
            }
            LineOutcome::NotRun { why } => self.run.not_run(now, ticket, &why),
        }
    }

    /// Every file of an ended batch is read: what did not come back did not run.
    pub(super) fn finish_shard(&mut self, now: Millis, s: usize) {
        if self.shards[s].strangers > 0 {
            let shard = &self.shards[s];
            let detail = format!(
                "line {} gives batch {} to shard {} (its rows at line {}), but {} of the batch's results are of other rows of this run",
                shard.batch_line,
                shard.batch_id.as_deref().unwrap_or("?"),
                shard.number,
                shard.members_line,
                shard.strangers
            );
            self.stop_mismatched(now, s, detail);
            return;
        }
        let shard = &mut self.shards[s];
        let why = match shard.ended_status.as_deref() {
            Some("expired") => "the provider batch expired before running it".to_string(),
            Some("cancelled" | "canceled") => {
                "the provider batch was cancelled before running it".into()
            }
            _ => "its provider batch ended without an answer for it".to_string(),
        };
        let why = match &shard.batch_id {
            Some(id) => format!("{why} ({id})"),
            None => why,
        };
        let tickets: Vec<Ticket> = shard.waiting.drain().map(|(_, t)| t).collect();
        shard.phase = Phase::Done;
        let number = shard.number;
        for ticket in tickets {
            self.run.not_run(now, ticket, &why);
        }
        self.drain_run(now);
        self.outputs
            .push_back(BatchOutput::Record(BatchRecord::Done {
                shard: number,
                at: now,
            }));
        self.clear_files(s);
        self.changed = true;
    }

    /// Whether the provider's word on the shard's batch contradicts the
    /// journal (OpenAI: the batch was made from another file, or names
    /// another shard); if so the run stops.
    fn mismatched(&mut self, now: Millis, s: usize, batch: &BatchObject) -> bool {
        let shard = &self.shards[s];
        let other_file = match (&shard.file_id, &batch.input_file_id) {
            (Some(mine), Some(theirs)) if mine != theirs => Some(theirs.clone()),
            _ => None,
        };
        let other_shard = batch
            .shard
            .filter(|n| *n != shard.number && batch.run.as_deref() == Some(self.run_id.as_str()));
        if other_file.is_none() && other_shard.is_none() {
            return false;
        }
        let mut detail = format!(
            "line {} gives batch {} to shard {}, whose file is {} (line {}), but the provider says it was made from {}",
            shard.batch_line,
            batch.id,
            shard.number,
            shard.file_id.as_deref().unwrap_or("unknown"),
            shard.members_line,
            batch.input_file_id.as_deref().unwrap_or("another file"),
        );
        if let Some(n) = other_shard {
            detail.push_str(&format!(" for shard {n}"));
        }
        let owner = other_file.as_deref().and_then(|f| {
            self.shards
                .iter()
                .find(|o| o.file_id.as_deref() == Some(f))
                .map(|o| (o.number, o.members_line))
        });
        if let Some((n, line)) = owner {
            detail.push_str(&format!(", shard {n}'s file (line {line})"));
        }
        self.stop_mismatched(now, s, detail);
        true
    }

    /// The journal and the provider disagree about shard `s`: the run stops,
    /// its rows left for a resume, nothing sent again.
    fn stop_mismatched(&mut self, now: Millis, s: usize, detail: String) {
        let shard = &mut self.shards[s];
        shard.phase = Phase::Parked;
        shard.error = Some(detail.clone());
        let tickets: Vec<Ticket> = shard.waiting.drain().map(|(_, t)| t).collect();
        self.run.abort(now, AbortReason::JournalMismatch { detail });
        for ticket in tickets {
            self.run.give_back(now, ticket);
        }
        self.park_unsubmitted(now);
        self.changed = true;
    }
}
