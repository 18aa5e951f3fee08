//! Image files read ahead of their requests. At full speed a run sends thousands of
//! requests a second, and a trip to tokio's blocking pool for each image (a pool
//! thread woken, then the runtime woken back) costs more than reading the file. So
//! the files of the items whose first request comes next (`Run::upcoming`) are read
//! in chunks, one trip per chunk, a window ahead of the requests and within a byte
//! budget. Everything else (retries, items the window has not reached, URL images)
//! loads with its request as before; so does everything once reads turn out slow,
//! because then reading many files at once beats reading them in a row.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shadow_core::input::{ImageRef, Item};
use shadow_core::{Run, SendOrder};
use tokio::sync::mpsc;

use crate::images::ImageLoader;

/// Data URLs held ready, at most (one image more per chunk being read).
const BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// Chunks being read at once.
const MAX_CHUNKS: usize = 2;

/// Past this average per file, reading ahead stops for the rest of the run.
const SLOW_READ: Duration = Duration::from_millis(2);

/// An image as a URL for the request, or why it could not be loaded.
pub type Image = Result<String, String>;

/// What a chunk read: each item's image, or `None` when the budget ran out first.
pub struct Chunk {
    images: Vec<(usize, Option<Image>)>,
    took: Duration,
}

enum Slot {
    /// In a chunk being read; requests already ordered for the item wait here.
    Reading(Vec<SendOrder>),
    Ready(Image),
}

/// What to do with a send order.
pub enum Claim {
    /// Send it with this image.
    Ready(Image),
    /// Its file is being read: the order is kept and comes back from `arrived`.
    Waiting,
    /// Nothing read ahead: load the image with the request.
    NotRead,
}

pub struct ReadAhead {
    loader: ImageLoader,
    chunk_len: usize,
    window: usize,
    slots: HashMap<usize, Slot>,
    /// Bytes of the ready images, shared with the chunks being read.
    held: Arc<AtomicUsize>,
    /// Items before this one were considered already.
    next: usize,
    chunks_reading: usize,
    enabled: bool,
    done: mpsc::UnboundedSender<Chunk>,
    /// Requests that found their image read ahead.
    pub hits: usize,
}

impl ReadAhead {
    /// Reads ahead for `concurrency` requests in flight; chunks arrive on `done`'s
    /// receiver and go to `arrived`.
    pub fn new(
        loader: ImageLoader,
        concurrency: usize,
        done: mpsc::UnboundedSender<Chunk>,
    ) -> ReadAhead {
        let window = (2 * concurrency).clamp(16, 256);
        ReadAhead {
            loader,
            chunk_len: window / 2,
            window,
            slots: HashMap::new(),
            held: Arc::default(),
            next: 0,
            chunks_reading: 0,
            enabled: true,
            done,
            hits: 0,
        }
    }

    /// Where the image of `order`'s item is.
    pub fn claim(&mut self, order: SendOrder) -> Claim {
        match self.slots.remove(&order.item) {
            None => Claim::NotRead,
            Some(Slot::Ready(image)) => {
                self.held.fetch_sub(bytes(&image), Ordering::Relaxed);
                self.hits += 1;
                Claim::Ready(image)
            }
            Some(Slot::Reading(mut waiting)) => {
                waiting.push(order);
                self.slots.insert(order.item, Slot::Reading(waiting));
                Claim::Waiting
            }
        }
    }

    /// Takes in a chunk that was read; returns the orders that waited for it, with
    /// their image (`None`: not read, load it with the request).
    pub fn arrived(&mut self, chunk: Chunk) -> Vec<(SendOrder, Option<Image>)> {
        self.chunks_reading -= 1;
        let read = chunk.images.iter().filter(|(_, i)| i.is_some()).count() as u32;
        if read > 0 && chunk.took / read > SLOW_READ {
            tracing::debug!(
                "image reads average {:?}: no more reading ahead",
                chunk.took / read
            );
            self.enabled = false;
        }
        let mut go = Vec::new();
        for (item, image) in chunk.images {
            let Some(Slot::Reading(waiting)) = self.slots.remove(&item) else {
                continue;
            };
            match (waiting.len(), image) {
                (0, Some(image)) => {
                    self.slots.insert(item, Slot::Ready(image));
                }
                (0, None) => self.next = self.next.min(item),
                (_, image) => {
                    if let Some(image) = &image {
                        self.held.fetch_sub(bytes(image), Ordering::Relaxed);
                        self.hits += 1;
                    }
                    let mut image = image;
                    for order in waiting {
                        // Only the first order can wait: an item has one request at a time.
                        go.push((order, image.take()));
                    }
                }
            }
        }
        go
    }

    /// Starts reading the next files when there is room in the window.
    pub fn refill(&mut self, run: &Run) {
        while self.enabled
            && self.chunks_reading < MAX_CHUNKS
            && self.window - self.slots.len() >= self.chunk_len
            && self.held.load(Ordering::Relaxed) < BUDGET_BYTES
        {
            let mut items: Vec<(usize, Item)> = Vec::with_capacity(self.chunk_len);
            let mut considered = None;
            for i in run.upcoming(self.next) {
                considered = Some(i);
                if self.slots.contains_key(&i) {
                    continue;
                }
                let item = run.item(i);
                if matches!(
                    item.image,
                    ImageRef::RelativePath(_) | ImageRef::AbsolutePath(_)
                ) {
                    items.push((i, item.clone()));
                    if items.len() == self.chunk_len {
                        break;
                    }
                }
            }
            self.next = considered.map_or(usize::MAX, |i| i + 1);
            if items.is_empty() {
                return;
            }
            for (i, _) in &items {
                self.slots.insert(*i, Slot::Reading(Vec::new()));
            }
            self.chunks_reading += 1;
            let (loader, held, done) = (self.loader.clone(), self.held.clone(), self.done.clone());
            tokio::task::spawn_blocking(move || {
                let start = Instant::now();
                let images = items
                    .into_iter()
                    .map(|(i, item)| {
                        if held.load(Ordering::Relaxed) >= BUDGET_BYTES {
                            return (i, None);
                        }
                        let image = loader.load_blocking(&item);
                        held.fetch_add(bytes(&image), Ordering::Relaxed);
                        (i, Some(image))
                    })
                    .collect();
                let _ = done.send(Chunk {
                    images,
                    took: start.elapsed(),
                });
            });
        }
    }
}

fn bytes(image: &Image) -> usize {
    image.as_ref().map_or(0, String::len)
}
