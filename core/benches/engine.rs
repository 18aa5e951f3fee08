//! Engine overhead: one million items with instant answers through `handle` /
//! `poll`, and the memory the engine holds per item. Prints figures; asserts none.
//!
//! cargo bench -p shadow-core --bench engine [-- ITEMS]

// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]
// The benchmark is a host: it may read the clock the core may not.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use shadow_core::http::HttpResponse;
use shadow_core::input::{parse_labels_csv, ColumnNames};
use shadow_core::{Input, Millis, Output, Run, RunConfig};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !COUNTING.load(Relaxed) {
            return unsafe { System.alloc(layout) };
        }
        let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(live, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !COUNTING.load(Relaxed) {
            return unsafe { System.dealloc(ptr, layout) };
        }
        LIVE.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    parse_only(n);
    println!("-- pass 1: speed (allocation counting off)");
    bench(n);
    println!("-- pass 2: memory (allocation counting on, so slower)");
    COUNTING.store(true, Relaxed);
    bench(n);
}

fn bench(n: usize) {
    let labels = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    let mut text = String::with_capacity(n * 48);
    text.push_str("image,label\n");
    for i in 0..n {
        text.push_str(&format!(
            "https://images.example/digit-{i:07}.png,{}\n",
            labels[i % 10]
        ));
    }
    let csv = parse_labels_csv(&text, &ColumnNames::default()).unwrap();
    drop(text);
    // The item's own text: its image reference and id (labels are shared, one copy
    // per distinct label).
    let item_text: usize = csv
        .items
        .iter()
        .map(|it| it.image.as_str().len() + it.id.as_deref().map_or(0, str::len))
        .sum();
    let before_run = LIVE.load(Relaxed);
    // Parsing held the CSV text and the items at once; measure the run alone.
    PEAK.store(before_run, Relaxed);
    let item_structs = n * std::mem::size_of::<shadow_core::input::Item>();

    let bodies: Vec<String> = labels
        .iter()
        .map(|l| {
            format!(
                r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1737714600,"model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":"{{\"label\":\"{l}\"}}","refusal":null}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":120,"completion_tokens":6,"total_tokens":126}}}}"#
            )
        })
        .collect();
    let config = RunConfig {
        concurrency: Some(64),
        ..RunConfig::default()
    };
    let start = Instant::now();
    let mut run = Run::new(config, csv, Millis(0)).unwrap();
    let after_new = LIVE.load(Relaxed);
    let mut now = Millis(0);
    let mut pending = Vec::with_capacity(64);
    let (mut done, mut reports) = (0usize, 0usize);
    loop {
        while let Some(out) = run.poll(now) {
            match out {
                Output::Send(order) => pending.push(order),
                Output::NeedRows { .. } => unreachable!("a whole-CSV run never asks for rows"),
                Output::ItemDone(d) => {
                    done += 1;
                    std::hint::black_box(run.result(&d));
                }
                Output::BatchReport { .. } => reports += 1,
                Output::Finished { summary: s } => {
                    let secs = start.elapsed().as_secs_f64();
                    let peak = PEAK.load(Relaxed) - before_run;
                    println!("items:                 {n}");
                    println!(
                        "finished items:        {done} ({} successful)",
                        s.statistics.successful
                    );
                    println!("batch reports:         {reports}");
                    println!("wall time:             {secs:.3} s");
                    println!("throughput:            {:.0} items/s", n as f64 / secs);
                    println!(
                        "item text (heap):      {:.1} bytes/item",
                        item_text as f64 / n as f64
                    );
                    println!(
                        "Item structs:          {:.1} bytes/item",
                        item_structs as f64 / n as f64
                    );
                    println!(
                        "engine state at start: {:.1} bytes/item beyond the items",
                        (after_new - before_run) as f64 / n as f64
                    );
                    println!(
                        "engine extra at peak:  {:.1} bytes/item (state, tallies, reports, latencies)",
                        peak as f64 / n as f64
                    );
                    println!(
                        "held per item beyond its text: {:.1} bytes (Item struct + engine extra)",
                        (item_structs + peak) as f64 / n as f64
                    );
                    return;
                }
            }
        }
        now = now.plus(1);
        for order in pending.drain(..) {
            let label = run.item(order.item).label.as_bytes()[0] - b'0';
            let response = HttpResponse {
                status: 200,
                headers: Vec::new(),
                body: bodies[label as usize].clone(),
            };
            run.handle(
                now,
                Input::Response {
                    ticket: order.ticket,
                    response,
                },
            )
            .unwrap();
        }
    }
}

/// The provider's answer parser alone, for comparison with the whole engine.
fn parse_only(n: usize) {
    let labels = shadow_core::input::LabelSet::from_labels((0..10).map(|d| d.to_string()));
    let body = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1737714600,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"{\"label\":\"7\"}","refusal":null},"finish_reason":"stop"}],"usage":{"prompt_tokens":120,"completion_tokens":6,"total_tokens":126}}"#;
    let provider = RunConfig::default().provider;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(
            provider
                .parse_answer(std::hint::black_box(body), &labels)
                .unwrap(),
        );
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "-- answer parsing alone: {:.0} answers/s ({:.0} ns each)",
        n as f64 / secs,
        secs * 1e9 / n as f64
    );
}
