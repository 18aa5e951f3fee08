//! Shards: a run's rows cut into provider batches, their phases, and building
//! them line by line.

use crate::engine::{Input, Ticket, UsageError};
use crate::report::{BatchPhase, ProviderBatch, RequestCounts};
use crate::time::Millis;
use std::collections::{HashMap, HashSet, VecDeque};

use super::{BatchObject, BatchOutput, BatchRun, CallId, LineOrder, Mode};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Lines are being added.
    Building,
    /// Sealed: to upload.
    Sealed,
    /// Uploaded (OpenAI), or its intent journaled (Anthropic): to create, after
    /// looking for the batch an earlier call may have created (`need_find`).
    Uploaded,
    /// A batch runs at the provider.
    Running,
    /// Ended: its files are being downloaded.
    Downloading,
    /// All its results are in.
    Done,
    /// Failed as a whole; its rows were given up.
    Failed,
    /// Given up before a batch existed (the run stopped); its rows wait for a
    /// resume.
    Parked,
    /// Every line went to other shards; never uploaded.
    Empty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CallKind {
    Upload,
    List,
    Create,
    Poll,
    Cancel,
    Download,
    /// A download of a candidate's results, to tell whether it is the shard's.
    Probe,
    /// A download of a shard's input file (OpenAI) or results (Anthropic)
    /// whose rows no journal names: its `custom_id`s say them.
    Learn,
}

impl CallKind {
    pub(super) fn step(self) -> &'static str {
        match self {
            CallKind::Upload => "upload",
            CallKind::List => "list",
            CallKind::Create => "create",
            CallKind::Poll => "poll",
            CallKind::Cancel => "cancel",
            CallKind::Download | CallKind::Probe | CallKind::Learn => "download",
        }
    }

    /// A download: its 2xx body comes as lines.
    pub(super) fn lines(self) -> bool {
        matches!(self, CallKind::Download | CallKind::Probe | CallKind::Learn)
    }
}

#[derive(Debug)]
pub(super) struct Shard {
    pub(super) number: u32,
    pub(super) phase: Phase,
    /// `custom_id` -> ticket, for lines not answered yet.
    pub(super) waiting: HashMap<String, Ticket>,
    /// (row, attempt) of each line, in file order.
    pub(super) members: Vec<(usize, u32)>,
    /// Lines ordered for it and not built yet.
    pub(super) pending_builds: usize,
    /// Takes no more lines.
    pub(super) full: bool,
    pub(super) lines: usize,
    pub(super) bytes: u64,
    pub(super) file_id: Option<String>,
    pub(super) batch_id: Option<String>,
    pub(super) status_text: Option<String>,
    pub(super) counts: Option<RequestCounts>,
    /// Files still to download, in order.
    pub(super) downloads: VecDeque<String>,
    pub(super) ended_status: Option<String>,
    /// The call in flight, if any.
    pub(super) call: Option<CallId>,
    /// No call before this.
    pub(super) due: Millis,
    pub(super) polls: u32,
    /// Failed calls in a row.
    pub(super) failures: u32,
    /// Batches created again after a transient failure.
    pub(super) recreates: u32,
    /// Look for a batch created from its file (or its intent) before creating
    /// one.
    pub(super) need_find: bool,
    pub(super) find_after: Option<String>,
    pub(super) find_pages: u32,
    /// When its create was first about to be sent (journaled).
    pub(super) intent_at: Option<Millis>,
    /// Batches that may be its, gathered over the pages of a list.
    pub(super) candidates: Vec<BatchObject>,
    /// Batches whose results showed they are not its.
    pub(super) ruled_out: HashSet<String>,
    /// The candidate whose results are being read, and whether a line was its.
    pub(super) probe: Option<BatchObject>,
    pub(super) probe_hit: bool,
    /// Its local file exists (built in this session, not yet given to the
    /// provider).
    pub(super) file: bool,
    pub(super) cancel: bool,
    pub(super) error: Option<String>,
    pub(super) bad_lines: usize,
    /// Rebuilt after the provider journal lost it: its rows are not known
    /// yet; the `(row, attempt)`s its lines name, as they are read.
    pub(super) learn: Option<Vec<(usize, u32)>>,
    /// Those lines are all read.
    pub(super) learn_read: bool,
    /// Its rows were learned (a line of a lower attempt of one of them is no
    /// sign of a mixed-up journal).
    pub(super) learned: bool,
    /// Its upload's intent is journaled but not its file id: the file is
    /// looked for by its name before anything else.
    pub(super) find_file: bool,
    /// The journal's lines of the records that gave its rows and its batch.
    pub(super) members_line: usize,
    pub(super) batch_line: usize,
    /// Result lines of this run naming rows the shard does not hold.
    pub(super) strangers: usize,
    /// Its batch's output and error files.
    pub(super) result_files: Vec<String>,
    /// Its files at the provider are deleted (or kept), never twice.
    pub(super) files_cleared: bool,
    /// Gemini: its requests go (or went) inline in the create call, the shard
    /// being small enough; its results are read from the finished batch.
    pub(super) inline: bool,
}

impl Shard {
    pub(super) fn new(number: u32, phase: Phase, now: Millis) -> Shard {
        Shard {
            number,
            phase,
            waiting: HashMap::new(),
            members: Vec::new(),
            pending_builds: 0,
            full: false,
            lines: 0,
            bytes: 0,
            file_id: None,
            batch_id: None,
            status_text: None,
            counts: None,
            downloads: VecDeque::new(),
            ended_status: None,
            call: None,
            due: now,
            polls: 0,
            failures: 0,
            recreates: 0,
            need_find: false,
            find_after: None,
            find_pages: 0,
            intent_at: None,
            candidates: Vec::new(),
            ruled_out: HashSet::new(),
            probe: None,
            probe_hit: false,
            file: false,
            cancel: false,
            error: None,
            bad_lines: 0,
            learn: None,
            learn_read: false,
            learned: false,
            find_file: false,
            members_line: 0,
            batch_line: 0,
            strangers: 0,
            result_files: Vec::new(),
            files_cleared: false,
            inline: false,
        }
    }

    /// `inline`: the dialect takes the requests in the create call.
    pub(super) fn status(&self, inline: bool) -> ProviderBatch {
        let inline = inline || self.inline;
        let status = match self.phase {
            _ if self.learn.is_some() => BatchPhase::Relearning,
            Phase::Building => BatchPhase::Building,
            Phase::Sealed if inline => BatchPhase::WaitingToCreate,
            Phase::Sealed => BatchPhase::Uploading,
            Phase::Uploaded if self.find_file => BatchPhase::FindingFile,
            Phase::Uploaded if self.need_find || self.probe.is_some() => BatchPhase::FindingBatch,
            Phase::Uploaded if self.call.is_some() || inline => BatchPhase::Creating,
            Phase::Uploaded => BatchPhase::Uploaded,
            Phase::Running => match &self.status_text {
                Some(text) => BatchPhase::AtProvider(text.clone()),
                None => BatchPhase::Created,
            },
            Phase::Downloading => BatchPhase::Downloading,
            Phase::Done => match self.ended_status.as_deref() {
                Some("completed" | "ended" | "succeeded") | None => BatchPhase::Done(None),
                Some(s) => BatchPhase::Done(Some(s.to_string())),
            },
            Phase::Failed => BatchPhase::Failed,
            Phase::Parked => BatchPhase::Parked,
            Phase::Empty => BatchPhase::Empty,
        };
        ProviderBatch {
            shard: self.number,
            lines: self.lines,
            bytes: self.bytes,
            status,
            file_id: self.file_id.clone(),
            batch_id: self.batch_id.clone(),
            request_counts: self.counts,
            error: self.error.clone(),
        }
    }
}

/// Building shards.
impl BatchRun {
    /// Orders lines for the open shard while there is room and something is due.
    pub(super) fn fill(&mut self, now: Millis) {
        if self.mode != Mode::Running || self.run.is_stopping() || self.recovering() {
            return;
        }
        self.drained = false;
        loop {
            let Some(order) = self.run.take_send(now) else {
                self.drained = true;
                return;
            };
            self.order_line(now, order.ticket, order.item, order.attempt);
        }
    }

    /// Orders the line of a request for the open shard.
    pub(super) fn order_line(&mut self, now: Millis, ticket: Ticket, item: usize, attempt: u32) {
        let s = self.open_shard(now);
        let shard = &mut self.shards[s];
        shard.pending_builds += 1;
        if shard.lines + shard.pending_builds >= self.cfg.max_lines {
            shard.full = true;
        }
        self.building.insert(ticket, (s, item, attempt));
        self.outputs.push_back(BatchOutput::BuildLine(LineOrder {
            ticket,
            item,
            attempt,
            custom_id: self.dialect.custom_id(item, attempt),
        }));
    }

    /// The shard taking lines, opened if there is none.
    fn open_shard(&mut self, now: Millis) -> usize {
        if let Some(s) = self
            .shards
            .iter()
            .position(|s| s.phase == Phase::Building && !s.full)
        {
            return s;
        }
        let number = self.next_shard;
        self.next_shard += 1;
        let mut shard = Shard::new(number, Phase::Building, now);
        shard.file = true;
        self.shards.push(shard);
        self.changed = true;
        self.shards.len() - 1
    }

    pub(super) fn on_line_built(
        &mut self,
        now: Millis,
        ticket: Ticket,
        bytes: u64,
    ) -> Result<(), UsageError> {
        let (s, item, attempt) = self
            .building
            .remove(&ticket)
            .ok_or(UsageError::UnknownTicket(ticket))?;
        self.shards[s].pending_builds -= 1;
        if self.mode != Mode::Running || self.run.is_stopping() {
            self.run.give_back(now, ticket);
            return Ok(());
        }
        if self.dialect.body_bytes(1, bytes) > self.cfg.max_bytes {
            let message = format!(
                "its request is {bytes} bytes; a provider batch may hold at most {}",
                self.cfg.max_bytes
            );
            return self.run.handle(now, Input::ImageFailed { ticket, message });
        }
        let (max_lines, max_bytes) = (self.cfg.max_lines, self.cfg.max_bytes);
        let dialect = self.dialect.clone();
        let fits = move |shard: &Shard| {
            shard.phase == Phase::Building
                && shard.lines < max_lines
                && dialect.body_bytes(shard.lines + 1, shard.bytes + bytes) <= max_bytes
        };
        let target = if fits(&self.shards[s]) {
            s
        } else {
            self.shards[s].full = true;
            let open = self.open_shard(now);
            if fits(&self.shards[open]) {
                open
            } else {
                self.shards[open].full = true;
                self.open_shard(now)
            }
        };
        let shard = &mut self.shards[target];
        shard.lines += 1;
        shard.bytes += bytes;
        if shard.lines >= self.cfg.max_lines
            || self.dialect.body_bytes(shard.lines, shard.bytes) >= self.cfg.max_bytes
        {
            shard.full = true;
        }
        shard.members.push((item, attempt));
        shard
            .waiting
            .insert(self.dialect.custom_id(item, attempt), ticket);
        self.outputs.push_back(BatchOutput::AppendLine {
            shard: shard.number,
            ticket,
        });
        Ok(())
    }

    /// Seals the shards that take no more lines and have all theirs.
    pub(super) fn seal(&mut self, now: Millis) {
        let nothing_coming = self.drained && self.building.is_empty();
        let mut s = 0;
        let count = self.shards.len();
        while s < count {
            let shard = &mut self.shards[s];
            let closing = shard.full || nothing_coming || self.mode != Mode::Running;
            if shard.phase == Phase::Building && shard.pending_builds == 0 && closing {
                if shard.lines == 0 {
                    // Never journaled. The last shard goes (its number can be used
                    // again); another stays, empty (indices name shards).
                    if s + 1 == count {
                        self.next_shard = shard.number;
                        self.shards.pop();
                        break;
                    }
                    shard.phase = Phase::Empty;
                    s += 1;
                    continue;
                }
                if self.mode == Mode::Running && !self.run.is_stopping() {
                    shard.phase = Phase::Sealed;
                    shard.due = now;
                    self.changed = true;
                }
            }
            s += 1;
        }
    }

    /// Stops every shard that has no provider batch yet and no create call in
    /// flight: its rows are given back (left for resume), its file discarded.
    pub(super) fn park_unsubmitted(&mut self, now: Millis) {
        for s in 0..self.shards.len() {
            let shard = &self.shards[s];
            let creating = shard.call.is_some_and(|c| {
                matches!(
                    self.calls.get(&c),
                    Some((_, CallKind::Create | CallKind::List | CallKind::Probe))
                )
            });
            let before_batch = matches!(
                shard.phase,
                Phase::Building | Phase::Sealed | Phase::Uploaded
            );
            // Cancelling: a batch an earlier call may have created is looked
            // for first, to be cancelled too.
            let finding = self.finds_while_stopping(shard);
            if !before_batch || creating || finding || shard.pending_builds > 0 {
                continue;
            }
            let shard = &mut self.shards[s];
            if shard.file {
                shard.file = false;
                self.outputs.push_back(BatchOutput::DiscardFile {
                    shard: shard.number,
                });
            }
            shard.phase = Phase::Parked;
            if let Some(c) = shard.call.take() {
                self.calls.remove(&c);
            }
            let tickets: Vec<Ticket> = shard.waiting.drain().map(|(_, t)| t).collect();
            for ticket in tickets {
                self.run.give_back(now, ticket);
            }
            self.changed = true;
        }
    }
}
