//! Provider calls of a shard: which one is due, making it, reading its answer,
//! and what a refused or failed call does.

use crate::engine::Ticket;
use crate::http::{HttpResponse, TransportErrorKind};
use crate::ratelimit::{backoff_ms, classify_status, unit_hash, RateLimitHeaders, StatusVerdict};
use crate::stop::AbortReason;
use crate::time::Millis;

use super::chores::upload_name;
use super::{
    anthropic, gemini, journal, BatchOutput, BatchRecord, BatchRun, CallId, CallKind, Chore,
    Dialect, Mode, Phase, Shard, SubmitOrder, UploadOrder, HOUR_MS, MAX_LIST_PAGES,
};

/// Provider calls.
impl BatchRun {
    pub(super) fn base(&self) -> &str {
        self.dialect.base()
    }

    /// A shard that may have a batch at the provider already (an earlier create
    /// call's), looked for while the run cancels its batches.
    pub(super) fn finds_while_stopping(&self, shard: &Shard) -> bool {
        self.mode == Mode::Cancelling
            && shard.phase == Phase::Uploaded
            && (shard.need_find || shard.probe.is_some())
    }

    /// A shard of an inline dialect between the intent of its create and its
    /// batch id: while there is one, no other shard is created.
    fn unresolved(&self) -> bool {
        self.dialect.inline() && self.shards.iter().any(|s| s.phase == Phase::Uploaded)
    }

    /// Whether the shard has a call to make (when due).
    pub(super) fn wants_call(&self, shard: &Shard) -> bool {
        let stopping = self.mode != Mode::Running || self.run.is_stopping();
        match shard.phase {
            // A file of the run's at the provider may be deleted as nobody's
            // while the files are looked through: no upload meanwhile.
            Phase::Sealed => {
                !stopping
                    && !self.unresolved()
                    && !self.chore_pending(|c| matches!(c, Chore::FindRunFiles { .. }))
            }
            Phase::Uploaded if shard.find_file => false,
            // A rebuilt shard's batch is looked for, never created.
            Phase::Uploaded
                if shard.learn.is_some() && !shard.need_find && shard.probe.is_none() =>
            {
                false
            }
            Phase::Uploaded => !stopping || self.finds_while_stopping(shard),
            // Its rows are learned from its results, all shards' at once.
            Phase::Downloading if shard.learn_read => false,
            Phase::Running | Phase::Downloading => true,
            _ => false,
        }
    }

    fn new_call(&mut self, s: usize, kind: CallKind) -> CallId {
        let call = CallId(self.next_call);
        self.next_call += 1;
        self.calls.insert(call, (s, kind));
        self.shards[s].call = Some(call);
        call
    }

    /// Makes the shard's next call, if it has one due.
    pub(super) fn advance(&mut self, now: Millis, s: usize) {
        let shard = &self.shards[s];
        if shard.call.is_some() || shard.due > now || !self.wants_call(shard) {
            return;
        }
        let inline = self.dialect.inline() || self.shards[s].inline;
        let shard = &self.shards[s];
        let (kind, request) = match shard.phase {
            Phase::Sealed if inline || self.goes_inline(s) => {
                // The intent goes to the journal before the create call: a
                // resume looks for the batch the call may have made.
                // Gemini's choice, journaled with it: the record names no
                // file, so a resume neither uploads nor creates it again.
                let shard = &mut self.shards[s];
                shard.inline = !self.dialect.inline();
                shard.phase = Phase::Uploaded;
                shard.intent_at = Some(now);
                self.urgent
                    .push_back(BatchOutput::Record(BatchRecord::Submitting {
                        shard: shard.number,
                        lines: shard.lines,
                        bytes: shard.bytes,
                        members: journal::encode_members(&shard.members),
                        at: now,
                    }));
                self.submit(s);
                return;
            }
            Phase::Sealed => {
                let (number, lines, bytes) = (shard.number, shard.lines, shard.bytes);
                let file_name = upload_name(&self.run_id, number);
                if shard.failures == 0 {
                    // The intent first: a resume finds a file the upload left
                    // at the provider by its name.
                    self.urgent
                        .push_back(BatchOutput::Record(BatchRecord::Uploading {
                            shard: number,
                            file_name: file_name.clone(),
                            lines,
                            bytes,
                            members: journal::encode_members(&shard.members),
                            at: now,
                        }));
                }
                let call = self.new_call(s, CallKind::Upload);
                self.outputs.push_back(BatchOutput::Upload(UploadOrder {
                    call,
                    shard: number,
                    url: self.dialect.upload_url(),
                    protocol: self.dialect.upload_protocol(&file_name, bytes),
                    file_name,
                    lines,
                    bytes,
                }));
                self.changed = true;
                return;
            }
            Phase::Uploaded if shard.probe.is_some() => {
                let id = shard
                    .probe
                    .as_ref()
                    .map(|b| b.id.clone())
                    .unwrap_or_default();
                (CallKind::Probe, self.dialect.download_request(&id))
            }
            Phase::Uploaded if shard.need_find => (
                CallKind::List,
                self.dialect.list_request(shard.find_after.as_deref()),
            ),
            Phase::Uploaded if inline && !shard.file => {
                // Restored: its lines are built again, in a new shard.
                self.resubmit(now, s);
                return;
            }
            Phase::Uploaded if inline => {
                self.submit(s);
                return;
            }
            Phase::Uploaded => {
                let file = shard.file_id.as_deref().unwrap_or_default();
                (
                    CallKind::Create,
                    self.dialect
                        .create_request(file, &self.run_id, shard.number),
                )
            }
            Phase::Running => {
                let id = shard.batch_id.as_deref().unwrap_or_default();
                match (&shard.file_id, shard.learn.is_some() && !shard.learn_read) {
                    _ if shard.cancel => (CallKind::Cancel, self.dialect.cancel_request(id)),
                    // Its rows, from its input file, before anything else.
                    (Some(file), true) if self.dialect.learns_from_input() => {
                        (CallKind::Learn, self.dialect.download_request(file))
                    }
                    _ => (CallKind::Poll, self.dialect.poll_request(id)),
                }
            }
            // Gemini's inline results are in the finished batch: read it.
            Phase::Downloading if shard.inline && shard.downloads.front().is_some() => {
                let kind = if shard.learn.is_some() {
                    CallKind::Learn
                } else {
                    CallKind::Download
                };
                let id = shard.downloads.front().cloned().unwrap_or_default();
                let call = self.new_call(s, kind);
                self.outputs.push_back(BatchOutput::Call {
                    call,
                    request: self.dialect.poll_request(&id),
                    lines: false,
                });
                return;
            }
            Phase::Downloading if shard.learn.is_some() => {
                let from = match &shard.file_id {
                    Some(file) if self.dialect.learns_from_input() => Some(file.clone()),
                    // Gemini: from its results file (an expired batch has none).
                    _ if matches!(self.dialect, Dialect::Gemini { .. }) => {
                        shard.downloads.front().cloned()
                    }
                    _ => shard.batch_id.clone(),
                };
                let Some(from) = from else {
                    let shard = &mut self.shards[s];
                    shard.learn_read = true;
                    shard.due = now;
                    self.resolve_learned(now);
                    return;
                };
                (CallKind::Learn, self.dialect.download_request(&from))
            }
            Phase::Downloading => match shard.downloads.front() {
                Some(what) => (CallKind::Download, self.dialect.download_request(what)),
                None => {
                    self.finish_shard(now, s);
                    return;
                }
            },
            _ => return,
        };
        let call = self.new_call(s, kind);
        self.outputs.push_back(BatchOutput::Call {
            call,
            request,
            lines: kind.lines(),
        });
    }

    /// Whether a sealed shard's requests go inline in its create call rather
    /// than in an uploaded file: Gemini's, when that create's body is at most
    /// [`crate::config::BatchApiConfig::inline_max_bytes`].
    fn goes_inline(&self, s: usize) -> bool {
        matches!(self.dialect, Dialect::Gemini { .. })
            && self.submit_order(CallId(0), s).body_len() <= self.cfg.inline_max_bytes
    }

    /// The create call of shard `s` with its requests inline.
    fn submit_order(&self, call: CallId, s: usize) -> SubmitOrder {
        let shard = &self.shards[s];
        match &self.dialect {
            Dialect::Gemini { api } => SubmitOrder {
                call,
                shard: shard.number,
                url: gemini::create_url(api),
                headers: vec![("content-type".into(), "application/json".into())],
                prefix: gemini::inline_prefix(&gemini::display_name(&self.run_id, shard.number)),
                separator: gemini::INLINE_SEPARATOR,
                suffix: gemini::INLINE_SUFFIX,
                lines: shard.lines,
                bytes: shard.bytes,
                rekeyed: true,
            },
            _ => SubmitOrder {
                call,
                shard: shard.number,
                url: anthropic::batches_url(self.base()),
                headers: anthropic::create_headers(),
                prefix: anthropic::BODY_PREFIX.to_string(),
                separator: anthropic::BODY_SEPARATOR,
                suffix: anthropic::BODY_SUFFIX,
                lines: shard.lines,
                bytes: shard.bytes,
                rekeyed: false,
            },
        }
    }

    /// The create call of a shard whose requests go inline: the shard's file
    /// is its body.
    fn submit(&mut self, s: usize) {
        let call = self.new_call(s, CallKind::Create);
        let order = self.submit_order(call, s);
        self.outputs.push_back(BatchOutput::Submit(order));
        // The progress file says "creating" before the call can be made: a
        // resume that lost the provider journal looks for its batch.
        self.refresh();
        self.urgent.push_back(BatchOutput::StatusChanged);
    }

    /// A shard restored from the journal whose create made no batch: it is
    /// over (journaled done), and its requests are built again into a new
    /// shard, same rows and attempts (none was sent), unless the run is
    /// stopping (then they wait for a resume).
    pub(super) fn resubmit(&mut self, now: Millis, s: usize) {
        if self.shards[s].learn.is_some() {
            // Rebuilt, its rows unknown: it made nothing, they go as any others.
            self.drop_unknown(now, s);
            return;
        }
        let stopping = self.mode != Mode::Running || self.run.is_stopping();
        let shard = &mut self.shards[s];
        let number = shard.number;
        let members = shard.members.clone();
        let mut waiting = std::mem::take(&mut shard.waiting);
        shard.phase = Phase::Done;
        shard.need_find = false;
        shard.ended_status = Some("not created".to_string());
        self.outputs
            .push_back(BatchOutput::Record(BatchRecord::Done {
                shard: number,
                at: now,
            }));
        self.changed = true;
        for (row, attempt) in members {
            let Some(ticket) = waiting.remove(&self.dialect.custom_id(row, attempt)) else {
                continue;
            };
            if stopping {
                self.run.give_back(now, ticket);
            } else {
                self.order_line(now, ticket, row, attempt);
            }
        }
    }

    /// When to read a running batch next: `poll_min_ms` growing by half per read
    /// up to `poll_max_ms`, less up to a fifth by the seed.
    pub(super) fn next_poll(&self, s: usize) -> u64 {
        let shard = &self.shards[s];
        let grown = (self.cfg.poll_min_ms as f64) * 1.5f64.powi(shard.polls.min(64) as i32);
        let wait = grown.min(self.cfg.poll_max_ms as f64);
        let jitter = unit_hash(self.seed, shard.number as usize, shard.polls);
        (wait * (1.0 - 0.2 * jitter)).max(1.0) as u64
    }

    /// Backoff before calling again after `failures` failed calls.
    pub(super) fn call_backoff(&self, s: usize) -> u64 {
        let shard = &self.shards[s];
        let jitter = unit_hash(self.seed ^ 0xBAC0, shard.number as usize, shard.failures);
        backoff_ms(
            self.cfg.poll_min_ms.min(1_000),
            self.cfg.poll_max_ms,
            shard.failures,
            jitter,
        )
    }

    pub(super) fn on_success(&mut self, now: Millis, s: usize, kind: CallKind, body: &str) {
        let parsed = match kind {
            CallKind::Upload => self.dialect.parse_file_id(body).map(|file_id| {
                let shard = &mut self.shards[s];
                shard.file_id = Some(file_id.clone());
                shard.phase = Phase::Uploaded;
                shard.due = now;
                self.urgent
                    .push_back(BatchOutput::Record(BatchRecord::Uploaded {
                        shard: shard.number,
                        file_id,
                        lines: shard.lines,
                        bytes: shard.bytes,
                        members: journal::encode_members(&shard.members),
                        at: now,
                    }));
                shard.file = false;
                self.urgent.push_back(BatchOutput::DiscardFile {
                    shard: shard.number,
                });
            }),
            CallKind::List if self.dialect.inline() => self
                .dialect
                .parse_list(body)
                .map(|(batches, after)| self.on_listed_inline(now, s, batches, after)),
            CallKind::List => self.dialect.parse_list(body).map(|(batches, after)| {
                let file = self.shards[s].file_id.clone();
                let number = self.shards[s].number;
                // Gemini's batches name the run and shard in their display name.
                let by_name = matches!(self.dialect, Dialect::Gemini { .. });
                let found = batches.into_iter().find(|b| {
                    (b.input_file_id.is_some() && b.input_file_id == file)
                        || (by_name
                            && b.run.as_deref() == Some(self.run_id.as_str())
                            && b.shard == Some(number)
                            && !self.claimed.contains(&b.id))
                });
                match found {
                    Some(found) => self.on_created(now, s, found),
                    None => {
                        let shard = &mut self.shards[s];
                        shard.find_pages += 1;
                        shard.due = now;
                        match after.filter(|_| shard.find_pages < MAX_LIST_PAGES) {
                            Some(after) => shard.find_after = Some(after),
                            None if shard.learn.is_some() => self.drop_unknown(now, s),
                            None => shard.need_find = false,
                        }
                    }
                }
            }),
            CallKind::Create => self
                .dialect
                .parse_batch(body)
                .map(|batch| self.on_created(now, s, batch)),
            CallKind::Cancel if !self.dialect.cancel_answers_batch() => {
                // Gemini answers an empty object: the batch is read next.
                let shard = &mut self.shards[s];
                shard.cancel = false;
                shard.due = now;
                Ok(())
            }
            CallKind::Poll | CallKind::Cancel => self.dialect.parse_batch(body).map(|batch| {
                if kind == CallKind::Cancel {
                    self.shards[s].cancel = false;
                }
                self.on_batch(now, s, batch);
            }),
            CallKind::Download if self.shards[s].inline => {
                self.dialect.parse_batch(body).map(|batch| {
                    for line in batch.inline_lines.unwrap_or_default() {
                        self.on_result_line(now, s, &line);
                    }
                    self.shards[s].downloads.pop_front();
                    self.shards[s].due = now;
                })
            }
            CallKind::Download => {
                self.shards[s].downloads.pop_front();
                self.shards[s].due = now;
                Ok(())
            }
            CallKind::Learn if self.shards[s].inline => {
                self.dialect.parse_batch(body).map(|batch| {
                    for line in batch.inline_lines.unwrap_or_default() {
                        self.on_learn_line(s, &line);
                    }
                    let shard = &mut self.shards[s];
                    shard.learn_read = true;
                    shard.due = now;
                    self.resolve_learned(now);
                })
            }
            CallKind::Probe => {
                self.on_probed(now, s);
                Ok(())
            }
            CallKind::Learn => {
                let shard = &mut self.shards[s];
                shard.learn_read = true;
                shard.due = now;
                self.resolve_learned(now);
                Ok(())
            }
        };
        if let Err(e) = parsed {
            // A 2xx answer the run cannot read: the call is tried again (a create
            // after looking for the batch it may have made).
            self.shards[s].error = Some(format!("{} answer unreadable: {e}", kind.step()));
            if kind == CallKind::Create {
                self.shards[s].need_find = true;
            }
            self.retry_call(now, s, kind, e.to_string());
        }
    }
}

/// Provider calls that failed.
impl BatchRun {
    /// A call answered with an error status.
    pub(super) fn on_refused(
        &mut self,
        now: Millis,
        s: usize,
        kind: CallKind,
        response: HttpResponse,
    ) {
        let mut response = response;
        self.run.redact(&mut response.body);
        let headers = RateLimitHeaders::parse(&response, now);
        let detail = crate::provider::parse_api_error(&response.body).map(|e| e.message);
        let described = crate::ratelimit::describe_status(&response);
        self.shards[s].error = Some(format!("{}: {described}", kind.step()));
        match classify_status(&response, &headers, self.run.config().provider.model()) {
            StatusVerdict::Retry { .. } => {
                if kind == CallKind::Create && (response.status >= 500 || response.status == 408) {
                    // The provider may have made the batch before failing.
                    self.shards[s].need_find = true;
                }
                let wait = headers.retry_after_ms;
                self.retry_call(now, s, kind, described);
                if let Some(ms) = wait {
                    let shard = &mut self.shards[s];
                    shard.due = shard.due.max(now.plus(ms.min(HOUR_MS)));
                }
            }
            StatusVerdict::Fatal(reason) => self.stop_for(now, s, kind, reason),
            // A call to the batch API is not a model's answer: a content filter's
            // word on it is a refusal of the call.
            StatusVerdict::Fail | StatusVerdict::Refused => {
                let reason = AbortReason::BatchRefused {
                    step: kind.step().to_string(),
                    status: response.status,
                    detail,
                };
                self.stop_for(now, s, kind, reason);
            }
        }
    }

    /// A call that cannot succeed: the run stops, resumable. A refused upload or
    /// create leaves the shard's rows for resume.
    fn stop_for(&mut self, now: Millis, s: usize, kind: CallKind, reason: AbortReason) {
        self.run.abort(now, reason);
        match kind {
            CallKind::Upload | CallKind::Create | CallKind::List | CallKind::Probe => {}
            // The batch runs on at the provider; a resume reads it again.
            CallKind::Poll | CallKind::Cancel | CallKind::Download | CallKind::Learn => {
                let shard = &mut self.shards[s];
                shard.phase = Phase::Parked;
                let tickets: Vec<Ticket> = shard.waiting.drain().map(|(_, t)| t).collect();
                for ticket in tickets {
                    self.run.give_back(now, ticket);
                }
            }
        }
        self.park_unsubmitted(now);
    }

    pub(super) fn on_call_failed(
        &mut self,
        now: Millis,
        s: usize,
        kind: CallKind,
        error: TransportErrorKind,
        message: String,
    ) {
        let what = match error {
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Connect => "could not connect",
            TransportErrorKind::Reset => "connection broke",
            TransportErrorKind::Body => "answer unreadable",
        };
        let message = if message.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {message}")
        };
        self.shards[s].error = Some(format!("{}: {message}", kind.step()));
        if kind == CallKind::Create && error != TransportErrorKind::Connect {
            // The call may have reached the provider: look for its batch first.
            self.shards[s].need_find = true;
        }
        if error == TransportErrorKind::Connect {
            if let Some(reason) = self.breaker.on_connect_failure(&message) {
                self.stop_for(now, s, kind, reason);
                return;
            }
        }
        self.retry_call(now, s, kind, message);
    }

    /// A call to make again after a backoff; after `abort_after_failing_ms` of
    /// nothing but failed calls, the run stops.
    fn retry_call(&mut self, now: Millis, s: usize, kind: CallKind, last_error: String) {
        match kind {
            // It may have reached the provider: its file is looked for at the end.
            CallKind::Upload => self.upload_doubt = true,
            // Read again from the start.
            CallKind::Learn => {
                if let Some(learn) = &mut self.shards[s].learn {
                    learn.clear();
                }
            }
            _ => {}
        }
        let limit = self.abort_after_failing_ms;
        if let Some(reason) = self.breaker.on_failure(now, limit, &last_error) {
            self.stop_for(now, s, kind, reason);
            return;
        }
        self.shards[s].failures += 1;
        let wait = self.call_backoff(s);
        self.shards[s].due = now.plus(wait);
    }
}
