//! A results journal fed in chunks of any size, in one pass (two when a row is
//! written twice, its last line counting).

use std::collections::HashMap;

use crate::journal::{JournalScan, JournalScanner};

use super::builder::ExplorerBuilder;
use super::run_file::RunFile;
use super::ExplorerData;
use super::{BuildOptions, RowCap};

/// An [`ExplorerBuilder`] fed a results file in chunks of any size (a host reads
/// the file however it reads files): lines are cut here, checked by a
/// [`JournalScanner`], and each row counted once. A journal that holds a row
/// twice (a resumed run killed before it rewrote its journal) needs a second pass,
/// in which only each row's last line counts, as a resume reads it.
///
/// ```no_run
/// # use shadow_core::explorer::{BuildOptions, ResultsStream};
/// # fn chunks() -> Vec<Vec<u8>> { Vec::new() }
/// let mut stream = ResultsStream::new(None, None, BuildOptions::default());
/// loop {
///     for chunk in chunks() {
///         stream.push(&chunk);
///     }
///     if !stream.end_pass() {
///         break;
///     }
/// }
/// let data = stream.finish();
/// ```
#[derive(Debug)]
pub struct ResultsStream {
    builder: ExplorerBuilder,
    options: BuildOptions,
    scanner: JournalScanner,
    /// The start of a line cut by the end of a chunk.
    carry: Vec<u8>,
    /// Rows seen twice in this pass, by their last line number.
    repeated: HashMap<usize, usize>,
    /// In a second pass: the line that counts for each row written twice.
    last_line: Option<HashMap<usize, usize>>,
    scan: Option<JournalScan>,
}

impl ResultsStream {
    /// A finished (or stopped) run's data, as a report or "Open a finished run"
    /// shows it: at most `row_cap` rows embedded, sampled with the run's seed.
    pub fn of_finished_run(
        summary: Option<RunFile>,
        progress: Option<RunFile>,
        run_id: Option<String>,
        row_cap: usize,
    ) -> ResultsStream {
        let seed = summary
            .as_ref()
            .or(progress.as_ref())
            .and_then(RunFile::seed)
            .unwrap_or(0);
        let options = BuildOptions {
            live: false,
            csv_labels: None,
            row_cap: Some(RowCap {
                rows: row_cap,
                seed,
            }),
            run_id,
        };
        ResultsStream::new(summary, progress, options)
    }

    /// Over the run's summary and progress files, whichever exist.
    pub fn new(
        summary: Option<RunFile>,
        progress: Option<RunFile>,
        options: BuildOptions,
    ) -> ResultsStream {
        ResultsStream {
            builder: ExplorerBuilder::new(summary, progress, options.clone()),
            options,
            scanner: JournalScanner::default(),
            carry: Vec::new(),
            repeated: HashMap::new(),
            last_line: None,
            scan: None,
        }
    }

    /// The next bytes of the results file.
    pub fn push(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(end + 1);
            rest = tail;
            if self.carry.is_empty() {
                self.line(line);
            } else {
                let mut whole = std::mem::take(&mut self.carry);
                whole.extend_from_slice(line);
                self.line(&whole);
            }
        }
        self.carry.extend_from_slice(rest);
    }

    fn line(&mut self, bytes: &[u8]) {
        let Some(line) = self.scanner.line(bytes) else {
            return;
        };
        if line.repeats_row {
            self.repeated.insert(line.result.row, line.number);
        }
        match self
            .last_line
            .as_ref()
            .and_then(|l| l.get(&line.result.row))
        {
            Some(&last) if last != line.number => {}
            _ => self.builder.push(&line.result),
        }
    }

    /// The end of the results file. `true`: feed it once more, from its start.
    pub fn end_pass(&mut self) -> bool {
        let tail = std::mem::take(&mut self.carry);
        if !tail.is_empty() {
            self.line(&tail);
        }
        let sample = self.scanner.header().and_then(|h| h.run.sample.clone());
        let scan = std::mem::take(&mut self.scanner).finish();
        if scan.repeated_rows && self.last_line.is_none() {
            let empty = ExplorerBuilder::new(None, None, BuildOptions::default());
            let (summary, progress) = std::mem::replace(&mut self.builder, empty).into_files();
            self.builder = ExplorerBuilder::new(summary, progress, self.options.clone());
            self.last_line = Some(std::mem::take(&mut self.repeated));
            return true;
        }
        self.builder.set_csv_sample(sample);
        self.scan = Some(scan);
        false
    }

    /// The data: after the last [`end_pass`](Self::end_pass), or at once when the
    /// run has no results file.
    pub fn finish(self) -> ExplorerData {
        self.builder.finish(self.scan.as_ref())
    }
}
