//! Which line of the CSV file each record starts on, for errors that name it:
//! the csv crate's positions miss skipped blank lines and CRLF terminators, so a
//! tap on the reader counts them.

use std::cell::RefCell;
use std::io;

use super::{CsvError, BUFFER};

/// Computes the line where each record starts.
///
/// `csv::Position::line` is the line *before* skipped blank lines and, for CRLF
/// files, before the `\n` of the previous record's terminator; so the start line is
/// taken as the line after the previous record plus the `\n`s the parser skipped
/// before this record, which the [`LineTap`] counts.
#[derive(Default)]
pub(super) struct LineTracker {
    base_line: u64,
}

impl LineTracker {
    /// Before reading a record.
    pub(super) fn start<R: io::Read>(&mut self, rdr: &csv::Reader<LineTap<R>>) {
        let pos = rdr.position();
        self.base_line = pos.line();
        rdr.get_ref().begin_run(pos.byte());
    }

    /// After a record was read: the line where it starts.
    pub(super) fn record_read<R: io::Read>(&self, rdr: &csv::Reader<LineTap<R>>) -> u64 {
        self.base_line + rdr.get_ref().take_run()
    }
}

/// A reader wrapper that keeps the most recent bytes it handed to the CSV reader and
/// counts the `\n`s in the run of `\r`/`\n` (and a leading BOM) starting at a given
/// offset: the bytes the CSV parser skips before a record.
pub(super) struct LineTap<R> {
    inner: R,
    state: RefCell<TapState>,
}

struct TapState {
    /// Bytes `[window_start, delivered)` (at least the last `BUFFER` of them).
    window: Vec<u8>,
    window_start: u64,
    delivered: u64,
    run: Run,
    quotes: QuoteScan,
    /// The inner reader has said end of file.
    eof: bool,
}

enum Run {
    Idle,
    Scanning { next: u64, newlines: u64 },
    Done { newlines: u64 },
}

impl<R> LineTap<R> {
    pub(super) fn new(inner: R) -> Self {
        LineTap {
            inner,
            state: RefCell::new(TapState {
                window: Vec::with_capacity(2 * BUFFER),
                window_start: 0,
                delivered: 0,
                run: Run::Idle,
                quotes: QuoteScan::default(),
                eof: false,
            }),
        }
    }

    /// [`CsvError::UnterminatedQuote`] when the whole input has been read and it
    /// ended inside a quoted field.
    pub(super) fn check_quotes(&self) -> Result<(), CsvError> {
        let st = self.state.borrow();
        match st.quotes.unclosed() {
            Some((line, last_line)) if st.eof => {
                Err(CsvError::UnterminatedQuote { line, last_line })
            }
            _ => Ok(()),
        }
    }

    /// Starts counting at byte `at` (already delivered or the next to be).
    fn begin_run(&self, at: u64) {
        let mut st = self.state.borrow_mut();
        st.run = Run::Scanning {
            next: at,
            newlines: 0,
        };
        st.scan();
    }

    /// The count of the run begun last (0 if none).
    fn take_run(&self) -> u64 {
        let mut st = self.state.borrow_mut();
        match std::mem::replace(&mut st.run, Run::Idle) {
            Run::Idle => 0,
            Run::Scanning { newlines, .. } | Run::Done { newlines } => newlines,
        }
    }
}

impl TapState {
    pub(super) fn scan(&mut self) {
        const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
        let Run::Scanning {
            mut next,
            mut newlines,
        } = self.run
        else {
            return;
        };
        if next < self.window_start {
            // Cannot happen: the window covers every byte the parser has not consumed.
            self.run = Run::Done { newlines: 0 };
            return;
        }
        while next < self.delivered {
            let b = self.window[(next - self.window_start) as usize];
            match b {
                b'\n' => newlines += 1,
                b'\r' => {}
                _ if next < 3 && b == BOM[next as usize] => {}
                _ => {
                    self.run = Run::Done { newlines };
                    return;
                }
            }
            next += 1;
        }
        self.run = Run::Scanning { next, newlines };
    }
}

impl<R: io::Read> io::Read for LineTap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = self.inner.read(buf)?;
        if self.state.get_mut().delivered == 0 {
            // csv-core strips a BOM from its first input and takes what is left
            // for the whole file: a first read of exactly the BOM (a pipe whose
            // writer sent it alone) would read as an empty file. Hand over more.
            while n > 0 && n < 4 && n < buf.len() {
                match self.inner.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(more) => n += more,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let st = self.state.get_mut();
        if n == 0 && !buf.is_empty() {
            st.eof = true;
        }
        st.quotes.feed(&buf[..n], st.delivered == 0);
        st.window.extend_from_slice(&buf[..n]);
        st.delivered += n as u64;
        st.scan();
        if st.window.len() > 2 * BUFFER {
            let drop = st.window.len() - BUFFER;
            st.window.drain(..drop);
            st.window_start += drop as u64;
        }
        Ok(n)
    }
}

/// Follows csv's quoting over every byte handed to the parser, to learn whether the
/// input ends inside a quoted field: csv accepts that without a word, and the rest
/// of the file becomes one field. The grammar is csv-core's with this reader's
/// settings: a `"` opens a quoted field only at the start of a field; inside one,
/// `""` is a quote and a lone `"` ends the quoting (what follows, up to the next `,`
/// or line end, is plain text); `,` ends a field and `\r` or `\n` a record. csv
/// skips a byte-order mark when its first read starts with one: so does this.
#[derive(Default)]
pub(super) struct QuoteScan {
    state: QuoteState,
    /// `\n`s seen: the current line is this plus one.
    newlines: u64,
    /// The last byte seen was a `\n`.
    at_line_start: bool,
    /// The line where the current quoted field opened.
    open_line: u64,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum QuoteState {
    #[default]
    FieldStart,
    Plain,
    Quoted,
    /// A `"` inside a quoted field: a closing quote, or the first of `""`.
    QuoteInQuoted,
}

impl QuoteScan {
    pub(super) fn feed(&mut self, bytes: &[u8], first_read: bool) {
        const BOM: &[u8] = b"\xef\xbb\xbf";
        let bytes = match bytes.strip_prefix(BOM) {
            Some(rest) if first_read => rest,
            _ => bytes,
        };
        let Some(&last) = bytes.last() else {
            return;
        };
        let mut state = self.state;
        for &b in bytes {
            state = match (state, b) {
                (QuoteState::Quoted, b'"') => QuoteState::QuoteInQuoted,
                (QuoteState::Quoted, b'\n') => {
                    self.newlines += 1;
                    QuoteState::Quoted
                }
                (QuoteState::Quoted, _) => QuoteState::Quoted,
                (QuoteState::QuoteInQuoted, b'"') => QuoteState::Quoted,
                (QuoteState::FieldStart, b'"') => {
                    self.open_line = self.newlines + 1;
                    QuoteState::Quoted
                }
                (_, b'\n') => {
                    self.newlines += 1;
                    QuoteState::FieldStart
                }
                (_, b',' | b'\r') => QuoteState::FieldStart,
                _ => QuoteState::Plain,
            };
        }
        self.state = state;
        self.at_line_start = last == b'\n';
    }

    /// `(line where the quote opened, last line)` when a quoted field is open.
    pub(super) fn unclosed(&self) -> Option<(u64, u64)> {
        (self.state == QuoteState::Quoted).then(|| {
            let last_line = self.newlines + u64::from(!self.at_line_start);
            (self.open_line, last_line.max(self.open_line))
        })
    }
}
