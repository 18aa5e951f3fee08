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
    /// In a chunk being read; the request already ordered for the item (an item
    /// has one at a time) waits here.
    Reading(Option<SendOrder>),
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
    budget: usize,
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
            budget: BUDGET_BYTES,
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
            Some(Slot::Reading(_)) => {
                self.slots.insert(order.item, Slot::Reading(Some(order)));
                Claim::Waiting
            }
        }
    }

    /// Takes in a chunk that was read; returns the orders that waited for it, with
    /// their image (`None`: over the budget, load it with the request).
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
            match (waiting, image) {
                (None, Some(image)) => {
                    self.slots.insert(item, Slot::Ready(image));
                }
                (None, None) => self.next = self.next.min(item),
                (Some(order), image) => {
                    if let Some(image) = &image {
                        self.held.fetch_sub(bytes(image), Ordering::Relaxed);
                        self.hits += 1;
                    }
                    go.push((order, image));
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
            && self.held.load(Ordering::Relaxed) < self.budget
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
            // A streaming run holds rows up to a point: later ones come later.
            self.next = considered.map_or(self.next, |i| i + 1);
            if items.is_empty() {
                return;
            }
            for (i, _) in &items {
                self.slots.insert(*i, Slot::Reading(None));
            }
            self.chunks_reading += 1;
            let (loader, held, done) = (self.loader.clone(), self.held.clone(), self.done.clone());
            let budget = self.budget;
            tokio::task::spawn_blocking(move || {
                let start = Instant::now();
                let images = items
                    .into_iter()
                    .map(|(i, item)| {
                        if held.load(Ordering::Relaxed) >= budget {
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

#[cfg(test)]
mod tests {
    use super::*;
    use shadow_core::input::{parse_labels_csv, ColumnNames};
    use shadow_core::{Input, Millis, Output, RunConfig};

    /// A run over `n` copies of a shipped image (and a missing file as row 2),
    /// one request in flight.
    fn setup(n: usize) -> (tempfile::TempDir, Run, ImageLoader) {
        let dir = tempfile::tempdir().unwrap();
        let image = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../training-data/images/digit-0000.png");
        let mut csv = String::from("image,label\n");
        for i in 0..n {
            if i == 2 {
                csv.push_str("missing.png,0\n");
            } else {
                std::fs::copy(&image, dir.path().join(format!("{i}.png"))).unwrap();
                csv.push_str(&format!("{i}.png,0\n"));
            }
        }
        let csv = parse_labels_csv(&csv, &ColumnNames::default()).unwrap();
        let config = RunConfig {
            concurrency: Some(1),
            ..RunConfig::default()
        };
        let run = Run::new(config, csv, Millis(0)).unwrap();
        let loader = ImageLoader::new(dir.path(), false).unwrap();
        (dir, run, loader)
    }

    fn next_send(run: &mut Run) -> SendOrder {
        std::iter::from_fn(|| run.poll(Millis(0)))
            .find_map(|o| match o {
                Output::Send(order) => Some(order),
                _ => None,
            })
            .expect("a send")
    }

    /// Ends `order`'s attempt, freeing the one slot for the next send.
    fn fail(run: &mut Run, order: SendOrder, at: u64) {
        let message = "x".into();
        let input = Input::ImageFailed {
            ticket: order.ticket,
            message,
        };
        run.handle(Millis(at), input).unwrap();
    }

    /// A read-ahead of one chunk (8 files) at a time, so chunks arrive in a known order.
    fn one_chunk_at_a_time(loader: ImageLoader) -> (ReadAhead, mpsc::UnboundedReceiver<Chunk>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut ahead = ReadAhead::new(loader, 1, tx);
        (ahead.window, ahead.chunk_len) = (8, 8);
        (ahead, rx)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn an_order_for_a_file_being_read_waits_for_its_chunk() {
        let (_dir, mut run, loader) = setup(40);
        runtime().block_on(async {
            let (mut ahead, mut rx) = one_chunk_at_a_time(loader);
            let first = next_send(&mut run);
            assert_eq!(first.item, 0);
            assert!(matches!(ahead.claim(first), Claim::NotRead));
            ahead.refill(&run);
            // Item 1 is the next to go, in the chunk still being read.
            fail(&mut run, first, 1);
            let second = next_send(&mut run);
            assert_eq!(second.item, 1);
            assert!(matches!(ahead.claim(second), Claim::Waiting));
            let go = ahead.arrived(rx.recv().await.unwrap());
            assert_eq!(go.len(), 1);
            let (order, image) = &go[0];
            assert_eq!(order.ticket, second.ticket);
            assert!(image
                .as_ref()
                .unwrap()
                .as_ref()
                .unwrap()
                .starts_with("data:image/png;base64,"));
            // The missing file was read ahead too, as its error.
            fail(&mut run, second, 2);
            let third = next_send(&mut run);
            assert_eq!(third.item, 2);
            match ahead.claim(third) {
                Claim::Ready(Err(e)) => {
                    assert!(e.contains("line 4") && e.contains("no such file"), "{e}")
                }
                _ => panic!("row 2 should be read ahead, as a failure"),
            }
            assert_eq!(ahead.hits, 2);
        });
    }

    #[test]
    fn over_the_budget_files_are_left_to_their_request_and_read_later() {
        let (_dir, mut run, loader) = setup(40);
        runtime().block_on(async {
            let (mut ahead, mut rx) = one_chunk_at_a_time(loader);
            ahead.budget = 1;
            let first = next_send(&mut run);
            ahead.refill(&run);
            assert!(ahead.arrived(rx.recv().await.unwrap()).is_empty());
            // One image fits (the budget is checked before each file); the rest of
            // the chunk was not read and is not held.
            assert_eq!(ahead.slots.len(), 1);
            assert!(matches!(ahead.slots.get(&1), Some(Slot::Ready(Ok(_)))));
            assert_eq!(ahead.next, 2);
            // Full: no more reading until the ready image is taken.
            ahead.refill(&run);
            assert_eq!(ahead.chunks_reading, 0);
            fail(&mut run, first, 1);
            let second = next_send(&mut run);
            assert!(matches!(ahead.claim(second), Claim::Ready(Ok(_))));
            assert_eq!(ahead.held.load(Ordering::Relaxed), 0);
            // Reading resumes where it stopped.
            ahead.refill(&run);
            assert_eq!(ahead.chunks_reading, 1);
            ahead.arrived(rx.recv().await.unwrap());
            assert!(matches!(ahead.slots.get(&2), Some(Slot::Ready(Err(_)))));
        });
    }
}
