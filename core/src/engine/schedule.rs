//! Which item goes next, and when: each item's phase, the cursor over fresh items,
//! the queue of retries waiting for their time, the tickets in flight, and the
//! pacer that gates every start.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use crate::config::RunConfig;
use crate::pacing::Pacer;
use crate::provider::{OutputFormat, TokenCharge};
use crate::time::Millis;

use super::contract::{SendOrder, Ticket};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Pending,
    InFlight,
    Waiting,
    Succeeded,
    Failed,
}

#[derive(Clone, Copy, Debug)]
struct ItemState {
    phase: Phase,
    /// Requests made for the item (an attempt whose image could not be loaded
    /// made none).
    requests: u16,
    /// Of the requests, how many the endpoint answered 429 (a separate budget).
    rate_limited: u16,
}

/// One request the host is performing.
#[derive(Clone, Copy, Debug)]
pub(super) struct InFlight {
    pub(super) item: usize,
    pub(super) attempt: u32,
    pub(super) sent_at: Millis,
    /// The answer's form the request asked for.
    pub(super) format: OutputFormat,
    /// Whether the request asked for log-probabilities.
    pub(super) confidence: bool,
}

/// Tickets and rows are sequential numbers: hashing them with SipHash buys nothing.
#[derive(Default)]
pub(super) struct SequenceHash(u64);

/// Builds [`SequenceHash`]ers, for maps keyed by tickets and rows.
pub(super) type SequenceHasher = BuildHasherDefault<SequenceHash>;

impl Hasher for SequenceHash {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

type TicketMap = HashMap<Ticket, InFlight, SequenceHasher>;

/// What an answer's ticket refers to.
pub(super) enum Claimed {
    /// A request in flight, now taken out of flight.
    Request(InFlight),
    /// A request the run abandoned: the answer is ignored.
    Abandoned,
    /// Nothing this run issued and still waits for.
    Unknown,
}

#[derive(Debug)]
pub(super) struct Schedule {
    states: Vec<ItemState>,
    /// Items before it have had their first request (or need none).
    cursor: usize,
    /// Items before it are held by the run and can be dispatched.
    fed: usize,
    retries: BinaryHeap<Reverse<(Millis, usize)>>,
    in_flight: TicketMap,
    /// Tickets given up by `abandon`, so that late answers are told from bugs.
    abandoned: Vec<Ticket>,
    next_ticket: u64,
    pub(super) pacer: Pacer,
}

impl Schedule {
    pub(super) fn new(items: usize, config: &RunConfig, charge: TokenCharge) -> Schedule {
        Schedule {
            states: vec![
                ItemState {
                    phase: Phase::Pending,
                    requests: 0,
                    rate_limited: 0,
                };
                items
            ],
            cursor: 0,
            fed: items,
            retries: BinaryHeap::new(),
            in_flight: TicketMap::with_capacity_and_hasher(
                config.in_flight_cap().min(4096) * 2,
                Default::default(),
            ),
            abandoned: Vec::new(),
            next_ticket: 0,
            pacer: Pacer::new(config, charge),
        }
    }

    pub(super) fn phase(&self, item: usize) -> Phase {
        self.states[item].phase
    }

    pub(super) fn is_final(&self, item: usize) -> bool {
        matches!(self.phase(item), Phase::Succeeded | Phase::Failed)
    }

    /// Requests made for `item` so far.
    pub(super) fn requests(&self, item: usize) -> u32 {
        u32::from(self.states[item].requests)
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The next item that has had no request yet and is not final, moving the
    /// cursor past final (restored) ones. It stays the next until `take_fresh`.
    pub(super) fn next_fresh(&mut self) -> Option<usize> {
        while self.cursor < self.fed && self.phase(self.cursor) != Phase::Pending {
            self.cursor += 1;
        }
        (self.cursor < self.fed).then_some(self.cursor)
    }

    /// Items before `fed` can be dispatched (a streaming run's rows arrive as it goes).
    pub(super) fn feed_to(&mut self, fed: usize) {
        self.fed = fed.min(self.states.len());
    }

    /// Items before it have had their first request (or need none).
    pub(super) fn cursor(&self) -> usize {
        self.cursor
    }

    /// Moves the cursor past the item `next_fresh` gave.
    pub(super) fn take_fresh(&mut self) {
        self.cursor += 1;
    }

    /// The items from `from` on whose first request is still to come.
    pub(super) fn fresh_from(&self, from: usize) -> impl Iterator<Item = usize> + '_ {
        (from.max(self.cursor)..self.fed).filter(|&i| self.states[i].phase == Phase::Pending)
    }

    /// A retry whose time has come, else the next fresh item.
    pub(super) fn next_due(&mut self, now: Millis) -> Option<usize> {
        if let Some(Reverse((at, item))) = self.retries.peek().copied() {
            if at <= now {
                self.retries.pop();
                return Some(item);
            }
        }
        let item = self.next_fresh()?;
        self.take_fresh();
        Some(item)
    }

    /// When something could be sent, pacing aside: now for a fresh item, else the
    /// earliest retry. `None` when nothing is waiting.
    pub(super) fn earliest_due(&self) -> Option<Millis> {
        if self.cursor < self.fed {
            // Possibly only restored items are left: the next poll moves past them.
            return Some(Millis(0));
        }
        self.retries.peek().map(|Reverse((at, _))| *at)
    }

    /// Puts the next attempt of `item` in flight.
    pub(super) fn start(
        &mut self,
        now: Millis,
        item: usize,
        format: OutputFormat,
        confidence: bool,
    ) -> SendOrder {
        let state = &mut self.states[item];
        state.phase = Phase::InFlight;
        let attempt = u32::from(state.requests) + 1;
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.in_flight.insert(
            ticket,
            InFlight {
                item,
                attempt,
                sent_at: now,
                format,
                confidence,
            },
        );
        self.pacer.on_start(now);
        SendOrder {
            ticket,
            item,
            attempt,
            format,
            confidence,
        }
    }

    /// Takes the request `ticket` names out of flight.
    pub(super) fn claim(&mut self, ticket: Ticket) -> Claimed {
        match self.in_flight.remove(&ticket) {
            Some(f) => {
                self.pacer.on_finish();
                Claimed::Request(f)
            }
            None if self.abandoned.contains(&ticket) => Claimed::Abandoned,
            None => Claimed::Unknown,
        }
    }

    /// The request of `f` was made (an answer or a transport failure came back).
    /// Returns how many of the item's requests the endpoint answered 429.
    pub(super) fn request_made(&mut self, f: &InFlight, rate_limited: bool) -> u32 {
        let state = &mut self.states[f.item];
        state.requests = f.attempt.min(u32::from(u16::MAX)) as u16;
        if rate_limited {
            state.rate_limited += 1;
        }
        u32::from(state.rate_limited)
    }

    /// Sets the requests made for `item` (a row taken back by a resumed batch run).
    pub(super) fn set_requests(&mut self, item: usize, requests: u32) {
        self.states[item].requests = requests.min(u32::from(u16::MAX)) as u16;
    }

    /// `item` waits for its retry until `at`.
    pub(super) fn retry_at(&mut self, item: usize, at: Millis) {
        self.states[item].phase = Phase::Waiting;
        self.retries.push(Reverse((at, item)));
    }

    /// `item` goes back to waiting for its first request of a later session.
    pub(super) fn leave_for_resume(&mut self, item: usize) {
        self.states[item].phase = Phase::Pending;
    }

    /// `item` is final.
    pub(super) fn finish(&mut self, item: usize, succeeded: bool) {
        self.states[item].phase = if succeeded {
            Phase::Succeeded
        } else {
            Phase::Failed
        };
    }

    /// `item` is final with `requests` made (results of an earlier session).
    pub(super) fn restore(&mut self, item: usize, requests: u32, succeeded: bool) {
        self.states[item].requests = requests.min(u32::from(u16::MAX)) as u16;
        self.finish(item, succeeded);
    }

    /// Gives up every request in flight; their items are left for resume.
    pub(super) fn abandon(&mut self) {
        for (ticket, f) in self.in_flight.drain() {
            self.states[f.item].phase = Phase::Pending;
            self.abandoned.push(ticket);
            self.pacer.on_finish();
        }
    }
}
