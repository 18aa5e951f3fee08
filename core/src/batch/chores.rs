//! Chores: provider calls that belong to no one shard (finding the run's
//! batches and files a lost journal no longer names, deleting files), one at a
//! time; and the names uploads go by.

use crate::http::HttpResponse;
use crate::ratelimit::{backoff_ms, unit_hash};
use crate::stop::AbortReason;
use crate::time::Millis;
use serde::Deserialize;
use std::collections::HashMap;

use super::{
    journal, BatchObject, BatchOutput, BatchRecord, BatchRun, CallId, Chore, Mode, Phase, Shard,
    CHORE_TRIES, MAX_LIST_PAGES,
};

/// Chores: provider calls that belong to no one shard, one at a time.
impl BatchRun {
    pub(super) fn add_chore(&mut self, chore: Chore) {
        let queued = self.chores.contains(&chore)
            || self.chore_call.as_ref().is_some_and(|(_, c)| *c == chore);
        if !queued && !self.dialect.inline() {
            self.chores.push_back(chore);
        }
    }

    pub(super) fn chore_pending(&self, what: impl Fn(&Chore) -> bool) -> bool {
        self.chores.iter().any(&what) || self.chore_call.as_ref().is_some_and(|(_, c)| what(c))
    }

    pub(super) fn is_chore(&self, call: CallId) -> bool {
        self.chore_call.as_ref().is_some_and(|(c, _)| *c == call)
    }

    /// A done shard's files at the provider are deleted (unless kept): its
    /// input file, and its output and error files (read by now).
    pub(super) fn clear_files(&mut self, s: usize) {
        let shard = &mut self.shards[s];
        if shard.files_cleared || self.dialect.inline() {
            return;
        }
        shard.files_cleared = true;
        if self.keep_files {
            return;
        }
        let files = shard.file_id.iter().chain(&shard.result_files).cloned();
        let files = files.collect();
        // Deleted once the progress file says the shard is done: a resume
        // that lost the provider journal must not take it for one to read.
        self.delete(files);
    }

    /// Queues `files` to be deleted at the provider.
    fn delete(&mut self, files: Vec<String>) {
        self.deletes.extend(files);
        self.changed = true;
    }

    pub(super) fn advance_chores(&mut self, now: Millis) {
        if self.chore_call.is_some() || self.chore_due > now || self.mode == Mode::Detached {
            return;
        }
        let Some(chore) = self.chores.pop_front() else {
            return;
        };
        let request = match &chore {
            Chore::FindRunBatches { after, .. } => self.dialect.list_request(after.as_deref()),
            Chore::FindRunFiles { after, .. } => self.dialect.files_request(after.as_deref()),
            Chore::Delete(file) => self.dialect.delete_file_request(file),
        };
        let call = CallId(self.next_call);
        self.next_call += 1;
        self.chore_call = Some((call, chore));
        self.outputs.push_back(BatchOutput::Call {
            call,
            request,
            lines: false,
        });
    }

    pub(super) fn on_chore_answer(&mut self, now: Millis, answer: Result<HttpResponse, String>) {
        let Some((_, chore)) = self.chore_call.take() else {
            return;
        };
        let body = match answer {
            Ok(r) if (200..300).contains(&r.status) => Ok(r.body),
            // Deleted already.
            Ok(r) if r.status == 404 && matches!(chore, Chore::Delete(_)) => Ok(String::new()),
            Ok(mut r) => {
                self.run.redact(&mut r.body);
                let retry = matches!(r.status, 408 | 409 | 429) || r.status >= 500;
                Err((retry, Some(r)))
            }
            Err(_) => Err((true, None)),
        };
        let body = match body {
            Ok(body) => {
                self.chore_failures = 0;
                body
            }
            Err((retry, response)) => {
                self.chore_failures += 1;
                let tries = if matches!(chore, Chore::Delete(_)) {
                    2
                } else {
                    CHORE_TRIES
                };
                if retry && self.chore_failures < tries {
                    let jitter = unit_hash(self.seed ^ 0xC0DE, 0, self.chore_failures);
                    let wait = backoff_ms(
                        self.cfg.poll_min_ms.min(1_000),
                        self.cfg.poll_max_ms,
                        self.chore_failures,
                        jitter,
                    );
                    self.chore_due = now.plus(wait);
                    self.chores.push_front(chore);
                    return;
                }
                self.chore_failures = 0;
                self.give_up_chore(now, chore, response);
                return;
            }
        };
        match chore {
            Chore::Delete(_) => {}
            Chore::FindRunBatches { pages, .. } => match self.dialect.parse_list(&body) {
                Ok((batches, after)) => {
                    for b in batches {
                        self.adopt_found(now, b);
                    }
                    match after.filter(|_| pages + 1 < MAX_LIST_PAGES) {
                        Some(after) => self.chores.push_front(Chore::FindRunBatches {
                            after: Some(after),
                            pages: pages + 1,
                        }),
                        None => self.found_run_batches(now),
                    }
                }
                Err(_) => {
                    self.give_up_chore(now, Chore::FindRunBatches { after: None, pages }, None)
                }
            },
            Chore::FindRunFiles { pages, .. } => match self.dialect.parse_files(&body) {
                Ok((files, after)) => {
                    for (id, name, bytes) in files {
                        self.on_run_file(now, id, &name, bytes);
                    }
                    match after.filter(|_| pages + 1 < MAX_LIST_PAGES) {
                        Some(after) => self.chores.push_front(Chore::FindRunFiles {
                            after: Some(after),
                            pages: pages + 1,
                        }),
                        None => self.found_run_files(now),
                    }
                }
                Err(_) => self.found_run_files(now),
            },
        }
    }

    /// A chore that cannot succeed. A batch search that cannot be made stops
    /// the run (creating without it could pay twice); a file search is given
    /// up (an upload it would have found is made again); a delete is left.
    fn give_up_chore(&mut self, now: Millis, chore: Chore, response: Option<HttpResponse>) {
        match chore {
            // The endpoint fails: the other deletes are left too (a resume
            // makes them again) rather than holding the end of the run.
            Chore::Delete(_) => self.chores.retain(|c| !matches!(c, Chore::Delete(_))),
            Chore::FindRunFiles { .. } => self.found_run_files(now),
            Chore::FindRunBatches { .. } => {
                let (status, detail) = response.map_or((0, None), |r| {
                    (
                        r.status,
                        crate::provider::parse_api_error(&r.body).map(|e| e.message),
                    )
                });
                self.chores.clear();
                self.run.abort(
                    now,
                    AbortReason::BatchRefused {
                        step: "list".to_string(),
                        status,
                        detail,
                    },
                );
                self.park_unsubmitted(now);
            }
        }
    }

    /// A batch the account listed: this run's (by its metadata) and not on
    /// record is adopted, its rows to be read from its input file.
    fn adopt_found(&mut self, now: Millis, b: BatchObject) {
        if b.run.as_deref() != Some(self.run_id.as_str()) {
            return;
        }
        let done = self
            .shards
            .iter()
            .position(|s| s.phase == Phase::Done && s.batch_id.as_deref() == Some(b.id.as_str()));
        if let Some(s) = done {
            // Done, and saved without its result files: they go too.
            if self.shards[s].result_files.is_empty() && !self.keep_files {
                let files: Vec<String> = b
                    .output_file_id
                    .into_iter()
                    .chain(b.error_file_id)
                    .collect();
                self.shards[s].result_files.clone_from(&files);
                self.delete(files);
            }
            return;
        }
        if self.claimed.contains(&b.id) {
            return;
        }
        let Some(number) = b.shard else { return };
        let s = match self.shards.iter().position(|s| s.number == number) {
            Some(s) => {
                let shard = &self.shards[s];
                let open = matches!(shard.phase, Phase::Uploaded) && shard.batch_id.is_none();
                if !open {
                    // Another batch of a shard on record (one made again
                    // after a full queue, say): its rows are another's now.
                    return;
                }
                s
            }
            None => {
                let mut shard = Shard::new(number, Phase::Uploaded, now);
                shard.learn = Some(Vec::new());
                shard.lines = b.counts.map_or(0, |c| c.total as usize);
                self.next_shard = self.next_shard.max(number.saturating_add(1));
                self.shards.push(shard);
                self.shards.len() - 1
            }
        };
        let shard = &mut self.shards[s];
        if shard.file_id.is_none() {
            shard.file_id.clone_from(&b.input_file_id);
        }
        shard.find_file = false;
        self.on_created(now, s, b);
    }

    /// Every page of the batch list is read: shards rebuilt from a saved file
    /// whose batch did not show made none; their files go.
    fn found_run_batches(&mut self, now: Millis) {
        for s in 0..self.shards.len() {
            let shard = &self.shards[s];
            if shard.learn.is_some() && shard.phase == Phase::Uploaded && shard.call.is_none() {
                self.drop_unknown(now, s);
            }
        }
        self.changed = true;
    }

    /// A rebuilt shard that no batch came from: nothing of it ran, its rows
    /// are sent as any others.
    pub(super) fn drop_unknown(&mut self, now: Millis, s: usize) {
        let shard = &mut self.shards[s];
        shard.learn = None;
        shard.need_find = false;
        shard.phase = Phase::Done;
        shard.ended_status = Some("not created".to_string());
        self.outputs
            .push_back(BatchOutput::Record(BatchRecord::Done {
                shard: shard.number,
                at: now,
            }));
        self.clear_files(s);
        self.resolve_learned(now);
    }

    /// A file the account holds: an upload of this run's whose answer never
    /// came is used; one that no shard uses is deleted.
    fn on_run_file(&mut self, now: Millis, id: String, name: &str, bytes: u64) {
        let Some(number) = shard_of_upload_name(&self.run_id, name) else {
            return;
        };
        let used = self
            .shards
            .iter()
            .any(|s| s.file_id.as_deref() == Some(id.as_str()));
        if used {
            return;
        }
        let waiting = self.shards.iter().position(|s| {
            s.number == number && s.find_file && s.file_id.is_none() && s.bytes == bytes
        });
        match waiting {
            Some(s) => {
                let shard = &mut self.shards[s];
                shard.file_id = Some(id.clone());
                shard.find_file = false;
                shard.due = now;
                self.urgent
                    .push_back(BatchOutput::Record(BatchRecord::Uploaded {
                        shard: number,
                        file_id: id,
                        lines: shard.lines,
                        bytes: shard.bytes,
                        members: journal::encode_members(&shard.members),
                        at: now,
                    }));
            }
            None => self.add_chore(Chore::Delete(id)),
        }
    }

    /// Every file is listed: an upload not found made nothing; its rows are
    /// built again.
    fn found_run_files(&mut self, now: Millis) {
        for s in 0..self.shards.len() {
            if self.shards[s].find_file && self.shards[s].phase == Phase::Uploaded {
                self.shards[s].find_file = false;
                self.resubmit(now, s);
            }
        }
        self.changed = true;
    }

    /// A line of a rebuilt shard's input file or results: the request it names.
    pub(super) fn on_learn_line(&mut self, s: usize, line: &str) {
        #[derive(Deserialize)]
        struct Named {
            // Gemini's lines name their request by `key`.
            #[serde(alias = "key")]
            custom_id: String,
        }
        let Ok(named) = serde_json::from_str::<Named>(line) else {
            return;
        };
        if let Some(pair) = self.dialect.row_attempt(&named.custom_id) {
            if pair.0 < self.run.row_count() {
                if let Some(learn) = &mut self.shards[s].learn {
                    learn.push(pair);
                }
            }
        }
    }

    /// When every rebuilt shard's rows are read: each row is taken back as in
    /// flight in the shard holding its latest attempt (an earlier attempt
    /// was answered, and superseded).
    pub(super) fn resolve_learned(&mut self, now: Millis) {
        let unread = self
            .shards
            .iter()
            .any(|s| s.learn.is_some() && !s.learn_read);
        if unread || !self.shards.iter().any(|s| s.learn.is_some()) {
            return;
        }
        let mut latest: HashMap<usize, u32> = HashMap::new();
        for shard in &self.shards {
            let pairs = shard.learn.as_deref().unwrap_or(&shard.members);
            for &(row, attempt) in pairs {
                let seen = latest.entry(row).or_default();
                *seen = (*seen).max(attempt);
            }
        }
        for s in 0..self.shards.len() {
            let Some(mut learned) = self.shards[s].learn.take() else {
                continue;
            };
            learned.sort_unstable();
            learned.dedup();
            let mut members = Vec::new();
            for (row, attempt) in learned {
                if latest.get(&row) != Some(&attempt) {
                    continue;
                }
                members.push((row, attempt));
                if let Some(order) = self.run.adopt(now, row, attempt) {
                    let id = self.dialect.custom_id(row, attempt);
                    self.shards[s].waiting.insert(id, order.ticket);
                }
            }
            let shard = &mut self.shards[s];
            shard.learn_read = false;
            shard.learned = true;
            shard.members = members;
            shard.due = now;
            // The journal gets its rows back.
            let encoded = journal::encode_members(&shard.members);
            let record = match &shard.file_id {
                Some(file_id) if !self.dialect.inline() => BatchRecord::Uploaded {
                    shard: shard.number,
                    file_id: file_id.clone(),
                    lines: shard.lines,
                    bytes: shard.bytes,
                    members: encoded,
                    at: now,
                },
                _ => BatchRecord::Submitting {
                    shard: shard.number,
                    lines: shard.lines,
                    bytes: shard.bytes,
                    members: encoded,
                    at: shard.intent_at.filter(|t| t.0 > 0).unwrap_or(now),
                },
            };
            self.urgent.push_back(BatchOutput::Record(record));
        }
        self.changed = true;
    }
}

/// The name a shard's input file is uploaded under: `shadow-batch-{run}-{shard}.jsonl`.
pub(super) fn upload_name(run_id: &str, shard: u32) -> String {
    format!("shadow-batch-{run_id}-{shard}.jsonl")
}

/// The shard an uploaded file of run `run_id` is, by its name.
fn shard_of_upload_name(run_id: &str, name: &str) -> Option<u32> {
    name.strip_prefix("shadow-batch-")?
        .strip_prefix(run_id)?
        .strip_prefix('-')?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()
}
