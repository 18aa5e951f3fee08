//! The rows a run holds. A run made from a whole CSV holds every row for its
//! whole life. A run fed its rows as it goes ([`crate::Run::streaming`]) holds
//! only the rows it asked for and has not finished with: those read ahead of
//! its dispatch cursor, those in flight or waiting for a retry, and the one
//! whose [`crate::Output::ItemDone`] the host is turning into a journal line.
//! Its memory then follows the rows in play, not the CSV's length.

use std::collections::HashMap;

use crate::input::Item;

use super::schedule::SequenceHasher;

/// How many rows a streaming run asks for at once, and how few rows ahead of
/// its cursor make it ask again: between one and two chunks are held ahead, far
/// more than requests in flight plus images read ahead.
pub(super) const CHUNK: usize = 4096;

#[derive(Debug)]
pub(super) enum Rows {
    /// Every row of the CSV; row `i` at index `i`.
    Whole(Vec<Item>),
    Streamed(Window),
}

#[derive(Debug)]
pub(super) struct Window {
    total: usize,
    held: HashMap<usize, Item, SequenceHasher>,
    /// Rows before it have been fed.
    fed_to: usize,
    /// Rows before it have been asked for (`fed_to` once the host answered).
    asked_to: usize,
}

/// Rows the host is asked to feed with [`crate::Run::push_rows`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Ask {
    pub(super) from: usize,
    pub(super) count: usize,
}

impl Rows {
    pub(super) fn streamed(total: usize) -> Rows {
        Rows::Streamed(Window {
            total,
            held: HashMap::with_capacity_and_hasher(2 * CHUNK, SequenceHasher::default()),
            fed_to: 0,
            asked_to: 0,
        })
    }

    /// Rows in the CSV.
    pub(super) fn total(&self) -> usize {
        match self {
            Rows::Whole(items) => items.len(),
            Rows::Streamed(w) => w.total,
        }
    }

    /// Row `row`, if held.
    pub(super) fn get(&self, row: usize) -> Option<&Item> {
        match self {
            Rows::Whole(items) => items.get(row),
            Rows::Streamed(w) => w.held.get(&row),
        }
    }

    /// Rows before it can be dispatched (every row of a whole CSV).
    pub(super) fn fed_to(&self) -> usize {
        match self {
            Rows::Whole(items) => items.len(),
            Rows::Streamed(w) => w.fed_to,
        }
    }

    /// More rows to ask for, once fewer than a chunk are fed ahead of `cursor`
    /// and none are asked for already.
    pub(super) fn ask(&mut self, cursor: usize) -> Option<Ask> {
        let Rows::Streamed(w) = self else {
            return None;
        };
        if w.asked_to > w.fed_to || w.fed_to >= w.total || w.fed_to > cursor + CHUNK {
            return None;
        }
        let count = CHUNK.min(w.total - w.fed_to);
        w.asked_to = w.fed_to + count;
        Some(Ask {
            from: w.fed_to,
            count,
        })
    }

    /// Takes `item` as the next row; the reason when it is not the one expected.
    pub(super) fn push(&mut self, item: Item) -> Result<(), String> {
        let Rows::Streamed(w) = self else {
            return Err("this run holds its whole CSV already".into());
        };
        if item.row != w.fed_to || w.fed_to >= w.total {
            return Err(format!(
                "row {} given where row {} of {} was expected",
                item.row, w.fed_to, w.total
            ));
        }
        w.held.insert(item.row, item);
        w.fed_to += 1;
        w.asked_to = w.asked_to.max(w.fed_to);
        Ok(())
    }

    /// Lets go of a row the run is done with (final, its result handed out).
    pub(super) fn release(&mut self, row: usize) {
        if let Rows::Streamed(w) = self {
            w.held.remove(&row);
        }
    }

    /// Rows held now.
    pub(super) fn held(&self) -> usize {
        match self {
            Rows::Whole(items) => items.len(),
            Rows::Streamed(w) => w.held.len(),
        }
    }
}
