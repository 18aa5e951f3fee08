//! The lost-create search: a create whose answer never came may have made a
//! batch; it is looked for (by the list of batches, then by a candidate's
//! results) before the create is made again.

use crate::time::Millis;

use super::{
    anthropic, BatchObject, BatchRun, ProviderStatus, CLOCK_SKEW_MS, MAX_LIST_PAGES, MAX_SETTLE_MS,
};

/// The lost-create search.
impl BatchRun {
    /// A page of the batch list, for a shard of an inline dialect whose create
    /// may have made a batch: see the module docs.
    pub(super) fn on_listed_inline(
        &mut self,
        now: Millis,
        s: usize,
        batches: Vec<BatchObject>,
        after: Option<String>,
    ) {
        let settle = self.cfg.poll_max_ms.min(MAX_SETTLE_MS);
        let shard = &mut self.shards[s];
        // No intent on record (cannot be: a shard is journaled with one): the
        // whole list is searched.
        let intent = shard.intent_at.unwrap_or(Millis(0));
        let older = batches
            .iter()
            .any(|b| anthropic::too_old(b, intent, CLOCK_SKEW_MS));
        for b in batches {
            let mine = !self.claimed.contains(&b.id) && !shard.ruled_out.contains(&b.id);
            if mine && anthropic::may_be(&b, shard.lines, intent, CLOCK_SKEW_MS) {
                shard.candidates.push(b);
            }
        }
        shard.find_pages += 1;
        shard.due = now;
        match after.filter(|_| !older && shard.find_pages < MAX_LIST_PAGES) {
            Some(after) => {
                shard.find_after = Some(after);
                return;
            }
            None => {
                shard.find_after = None;
                shard.find_pages = 0;
            }
        }
        let mut candidates = std::mem::take(&mut shard.candidates);
        match candidates.len() {
            0 if now.since(intent) < settle => {
                // A create still on its way may not show yet: list again later.
                shard.due = intent.plus(settle);
            }
            0 => {
                // The create made nothing: make it (again).
                shard.need_find = false;
                if !shard.file {
                    self.resubmit(now, s);
                }
            }
            1 => {
                let found = candidates.remove(0);
                self.on_created(now, s, found);
            }
            _ => {
                // Several: the first that has ended is read; if none has, the
                // list is read again later.
                let ended = candidates.iter().position(|b| {
                    matches!(
                        b.status,
                        ProviderStatus::Completed | ProviderStatus::Cancelled
                    )
                });
                match ended {
                    Some(i) => {
                        shard.probe = Some(candidates.swap_remove(i));
                        shard.probe_hit = false;
                    }
                    None => {
                        shard.polls += 1;
                        let wait = self.next_poll(s);
                        self.shards[s].due = now.plus(wait);
                    }
                }
                self.changed = true;
            }
        }
    }

    /// A candidate's results are all read: the shard's batch if a line was one
    /// of its requests, else ruled out.
    pub(super) fn on_probed(&mut self, now: Millis, s: usize) {
        let shard = &mut self.shards[s];
        shard.due = now;
        let Some(probe) = shard.probe.take() else {
            return;
        };
        if shard.probe_hit {
            self.on_created(now, s, probe);
            // Its results were just read: what they did not answer did not run.
            self.shards[s].downloads.clear();
        } else {
            shard.ruled_out.insert(probe.id);
        }
    }
}
