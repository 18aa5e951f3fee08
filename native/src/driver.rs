//! The tokio loop around the core's `Run`: drain `poll`, perform what it asks,
//! sleep until an answer or `poll_timeout`, feed answers back. It decides no
//! policy: pacing, retries and report content are the core's.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shadow_core::provider::OutputFormat;
use shadow_core::report::Summary;
use shadow_core::{Input, Millis, Output, Run, SendOrder};
use tokio::sync::mpsc;

use crate::csv_rows::RowFeed;
use crate::files::{write_atomic_with, Journal, RunFiles};
use crate::read_ahead::{Claim, Image, ReadAhead};
use crate::transport::Transport;

/// Writing the progress file costs time in proportion to the run's size (it holds
/// every batch report). After each batch it is rewritten, unless the last write was
/// so recent that writing again would make report writing more than 1/100 of the
/// run's time: then the write waits (the loop wakes at least every 250 ms to do it).
/// The final write always happens.
const REPORT_TIME_SHARE: u32 = 100;

/// Wall-clock milliseconds from one `SystemTime` reading plus a monotonic `Instant`,
/// so that time never runs backwards during a run.
#[derive(Clone, Copy)]
pub struct Clock {
    epoch_ms: u64,
    origin: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Clock {
            epoch_ms,
            origin: Instant::now(),
        }
    }

    pub fn now(&self) -> Millis {
        Millis(self.epoch_ms + self.origin.elapsed().as_millis() as u64)
    }

    pub(crate) fn instant_of(&self, t: Millis) -> tokio::time::Instant {
        let offset = Duration::from_millis(t.0.saturating_sub(self.epoch_ms));
        tokio::time::Instant::from_std(self.origin + offset)
    }
}

/// How the loop ended.
pub enum Ended {
    /// The engine finished (completed, interrupted or aborted).
    Finished(Box<Summary>),
    /// A second Ctrl-C: left at once; the journal was flushed.
    ExitedAtOnce,
}

pub struct Driver {
    pub run: Run,
    /// The CSV's rows, when the run is fed them as it goes.
    pub feed: Option<RowFeed>,
    pub clock: Clock,
    pub transport: Arc<Transport>,
    pub journal: Journal,
    pub files: RunFiles,
    pub errors_shown: usize,
}

impl Driver {
    /// Runs to the end. `interrupts` were caught since start-up.
    pub async fn drive(mut self, mut interrupts: Interrupts) -> Result<Ended> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
        let (chunks_tx, mut chunks) = mpsc::unbounded_channel();
        let mut read_ahead = ReadAhead::new(
            self.transport.images.clone(),
            self.run.config().in_flight_cap(),
            chunks_tx,
        );
        let bar = progress_bar(&self.run);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut reports = ReportWriter::default();
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut format = self.run.output_format();
        let mut confidence = self.run.asks_confidence();
        let mut rows_held_max = self.run.rows_held();
        loop {
            if confidence && !self.run.asks_confidence() {
                confidence = false;
                bar.suspend(|| {
                    eprintln!(
                        "note: the endpoint refused log-probabilities; requests no longer ask for them (answers have no confidence from here on, also when resumed)"
                    )
                });
            }
            if self.run.output_format() != format {
                let refused = format;
                format = self.run.output_format();
                bar.suspend(|| {
                    eprintln!(
                        "note: the endpoint refused {} output; requests now ask for {}{}",
                        refused.as_str(),
                        format.as_str(),
                        if format == OutputFormat::Text {
                            " (the answer's text is matched to a label: see the README)"
                        } else {
                            ""
                        }
                    )
                });
            }
            let now = self.clock.now();
            let mut progress_due = false;
            while let Some(output) = self.run.poll(now) {
                match output {
                    Output::NeedRows { from, count } => {
                        let feed = self.feed.as_mut().context(
                            "shadow-batch's engine asked for rows of a CSV it holds whole (a bug)",
                        )?;
                        let rows = feed.read(from, count)?;
                        self.run
                            .push_rows(rows)
                            .context("shadow-batch fed its engine rows out of order (a bug)")?;
                        rows_held_max = rows_held_max.max(self.run.rows_held());
                    }
                    Output::Send(order) => match read_ahead.claim(order) {
                        Claim::Ready(image) => self.send(&tx, order, Some(image)),
                        Claim::NotRead => self.send(&tx, order, None),
                        Claim::Waiting => {}
                    },
                    Output::ItemDone(done) => self.journal.append(&self.run.result(&done))?,
                    Output::BatchReport { report } => {
                        progress_due = true;
                        if !report.resumed {
                            bar.suspend(|| print_now(&report.to_console()));
                        }
                    }
                    Output::Finished { summary } => {
                        tracing::debug!(
                            "{} requests found their image read ahead",
                            read_ahead.hits
                        );
                        self.journal.sync()?;
                        bar.finish_and_clear();
                        reports.write_progress(&self.run, &self.files, now)?;
                        reports.timed(|| {
                            write_atomic_with(&self.files.summary, |w| {
                                Ok(serde_json::to_writer_pretty(w, &summary.with_gate())?)
                            })
                        })?;
                        if std::env::var_os("SHADOW_BATCH_TIMINGS").is_some() {
                            eprintln!("report-write-ms: {}", reports.spent.as_millis());
                            eprintln!("progress-writes: {}", reports.writes);
                            eprintln!("rows-held-max: {rows_held_max}");
                        }
                        print_now(&summary.to_console(self.errors_shown));
                        return Ok(Ended::Finished(summary));
                    }
                }
            }
            read_ahead.refill(&self.run);
            // Lines reach the OS as soon as their items are final; a kill loses none.
            self.journal.flush()?;
            if progress_due {
                self.journal.sync()?;
                reports.pending = true;
            }
            if reports.pending && Instant::now() >= reports.next_allowed {
                reports.write_progress(&self.run, &self.files, now)?;
            }

            let deadline = self.run.poll_timeout().map(|t| self.clock.instant_of(t));
            tokio::select! {
                Some(input) = rx.recv() => {
                    self.feed(input)?;
                    // Take every answer already waiting before polling again.
                    while let Ok(input) = rx.try_recv() {
                        self.feed(input)?;
                    }
                }
                Some(chunk) = chunks.recv() => {
                    for (order, image) in read_ahead.arrived(chunk) {
                        self.send(&tx, order, image);
                    }
                }
                _ = sleep_until(deadline) => {}
                // Wakes the loop to redraw the bar, and to write a deferred progress file.
                _ = tick.tick(), if !bar.is_hidden() || reports.pending => {
                    let counts = self.run.counts();
                    bar.set_position((counts.successful + counts.failed) as u64);
                    bar.set_message(format!(
                        "{} ok, {} failed, {} in flight · {}",
                        counts.successful,
                        counts.failed,
                        counts.in_flight,
                        self.run.pace(self.clock.now()).describe()
                    ));
                }
                _ = interrupts.recv() => {
                    if interrupts.count > 1 {
                        self.journal.sync()?;
                        bar.abandon();
                        eprintln!("\nshadow-batch: stopped at once; finished results are in {}", self.files.results.display());
                        return Ok(Ended::ExitedAtOnce);
                    }
                    let in_flight = self.run.counts().in_flight;
                    let grace = self.run.config().cancel_grace_ms as f64 / 1000.0;
                    bar.suspend(|| eprintln!(
                        "\nshadow-batch: interrupted; waiting up to {grace}s for {in_flight} request(s) in flight, then writing the reports (Ctrl-C again to quit now)"
                    ));
                    // The core abandons what is still in flight when the grace ends.
                    self.feed(Input::Cancel)?;
                }
            }
        }
    }

    /// Performs `order` on its own task; the answer comes back on `tx`.
    fn send(&self, tx: &mpsc::UnboundedSender<Input>, order: SendOrder, image: Option<Image>) {
        let item = self.run.item(order.item).clone();
        let (tx, transport) = (tx.clone(), self.transport.clone());
        tokio::spawn(async move {
            let input = match image {
                Some(image) => transport.attempt_with(order, item, image).await,
                None => transport.attempt(order, item).await,
            };
            let _ = tx.send(input);
        });
    }

    /// An answer to an abandoned request is taken and ignored by the core; any
    /// other refusal is a bug of this host, and stops the run loudly.
    fn feed(&mut self, input: Input) -> Result<()> {
        self.run
            .handle(self.clock.now(), input)
            .context("shadow-batch fed its engine an answer it never asked for (a bug)")
    }
}

/// Writes the progress file, keeping the time spent on it a small share of the run.
struct ReportWriter {
    pending: bool,
    next_allowed: Instant,
    spent: Duration,
    writes: u64,
}

impl Default for ReportWriter {
    fn default() -> Self {
        ReportWriter {
            pending: false,
            next_allowed: Instant::now(),
            spent: Duration::ZERO,
            writes: 0,
        }
    }
}

impl ReportWriter {
    fn timed(&mut self, write: impl FnOnce() -> Result<()>) -> Result<Duration> {
        let start = Instant::now();
        write()?;
        let took = start.elapsed();
        self.spent += took;
        Ok(took)
    }

    fn write_progress(&mut self, run: &Run, files: &RunFiles, now: Millis) -> Result<()> {
        let took = self.timed(|| {
            // Streamed: at 10,000,000 rows the file holds 200,000 batch reports.
            write_atomic_with(&files.progress, |w| {
                Ok(serde_json::to_writer_pretty(w, &run.progress(now))?)
            })
        })?;
        self.writes += 1;
        self.pending = false;
        self.next_allowed = Instant::now() + took * REPORT_TIME_SHARE;
        Ok(())
    }
}

pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn print_now(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A live bar on stderr when it is a terminal; nothing otherwise (the batch
/// reports on stdout are the plain-text progress).
fn progress_bar(run: &Run) -> ProgressBar {
    let total = run.row_count() as u64;
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let bar = if color {
        "{bar:40.cyan/blue}"
    } else {
        "{bar:40}"
    };
    let style = ProgressStyle::with_template(&format!(
        "{{spinner}} {{elapsed_precise}} {bar} {{pos}}/{{len}} ({{per_sec}}, ETA {{eta}}) {{msg}}"
    ))
    .expect("valid template")
    .progress_chars("=> ");
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    pb.set_style(style);
    pb
}

/// Ctrl-C and SIGTERM, counted. Held as streams, so that a signal arriving while
/// the loop is busy elsewhere is not lost.
pub(crate) struct Interrupts {
    pub(crate) count: u32,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Interrupts {
    pub(crate) fn new() -> Result<Interrupts> {
        #[cfg(unix)]
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Interrupts {
            count: 0,
            #[cfg(unix)]
            int: signal(SignalKind::interrupt())?,
            #[cfg(unix)]
            term: signal(SignalKind::terminate())?,
        })
    }

    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        self.count += 1;
    }
}
