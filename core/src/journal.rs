//! The results journal: a first line naming the run's settings ([`JournalHeader`]),
//! then one JSON line per finished item; and the fold that turns a journal back into
//! known results for resume.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
// Usage lives with the money it is priced into; journal lines carry it.
pub use crate::cost::Usage;
use crate::time::Millis;

/// The first line of a results journal: the settings of the run writing it, as its
/// reports save them (the endpoint's URL without credentials; never a key). With it,
/// the endpoint, provider and model are part of the run from the journal's first
/// byte, so a resume from the journal alone sends where the run sent. Journals
/// written before this line existed start with a result, and fold as before.
///
/// The line is `{"run":{...}}`: no result line has a `run` field, and every result
/// line has a `row`, which this has not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalHeader {
    /// The run's settings (its [`RunConfig::csv_path`] included).
    pub run: RunConfig,
}

impl JournalHeader {
    /// The header as the journal's first line: compact JSON ending in `\n`.
    pub fn to_json_line(&self) -> String {
        // Serialising settings cannot fail: plain fields, string keys only.
        let mut line = serde_json::to_string(self).expect("JournalHeader serialises to JSON");
        line.push('\n');
        line
    }
}

/// How an item ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ItemStatus {
    /// The model answered with a label from the label set.
    Success,
    /// No usable answer (see `error`).
    Failed,
}

/// Why an item failed, in broad classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum FailureKind {
    /// The CSV row itself is unusable (missing image or label).
    Input,
    /// The host could not load the image (missing, too large, unknown type, escaping path).
    Image,
    /// The endpoint answered with an HTTP error status (not retried, or retries exhausted).
    Http,
    /// No answer: timeout, connection refused or reset (retries exhausted).
    Transport,
    /// The model declined to classify the image.
    Refused,
    /// The model answered something that is not one of the CSV's labels.
    OutsideLabels,
    /// A 2xx answer that could not be read (not JSON, no label field...).
    Malformed,
    /// A 2xx answer the provider could not use, in a journal written before refusals,
    /// answers outside the labels and malformed answers were told apart.
    Answer,
}

impl FailureKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [FailureKind; 8] = [
        FailureKind::Refused,
        FailureKind::OutsideLabels,
        FailureKind::Malformed,
        FailureKind::Answer,
        FailureKind::Http,
        FailureKind::Transport,
        FailureKind::Image,
        FailureKind::Input,
    ];

    /// A few words for people: `refused`, `answer outside the labels`...
    pub fn describe(self) -> &'static str {
        match self {
            FailureKind::Input => "unusable CSV row",
            FailureKind::Image => "image error",
            FailureKind::Http => "HTTP error",
            FailureKind::Transport => "transport error",
            FailureKind::Refused => "refused",
            FailureKind::OutsideLabels => "answer outside the labels",
            FailureKind::Malformed => "malformed answer",
            FailureKind::Answer => "unusable answer",
        }
    }
}

/// One line of `shadow-mode-batch-results-{run}.jsonl`: the record of a finished item.
///
/// The engine hands out results that borrow its item text ([`crate::Run::result`]),
/// so writing the journal copies nothing; results read back from a journal are
/// `ItemResult<'static>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemResult<'a> {
    /// 0-based data row index.
    pub row: usize,
    /// CSV line number where the row starts.
    pub line: u64,
    /// The id column's value, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Cow<'a, str>>,
    /// The image reference as the CSV wrote it.
    pub image: Cow<'a, str>,
    /// The human label.
    pub label: Cow<'a, str>,
    /// The model's label, on success.
    pub prediction: Option<Cow<'a, str>>,
    /// `prediction == label`, on success.
    pub agreement: Option<bool>,
    /// `success` or `failed`.
    pub status: ItemStatus,
    /// Requests made for this item (0 if it never reached the endpoint).
    pub attempts: u32,
    /// Time from dispatch to answer of the last attempt, in ms.
    pub latency_ms: Option<u64>,
    /// Human-readable reason, on failure. Never contains a secret.
    pub error: Option<Cow<'a, str>>,
    /// Class of failure, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<FailureKind>,
    /// HTTP status of the last answer, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Token usage of the successful request, when the endpoint reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// What `usage` cost at the run's price (`--price`, else the model's list
    /// price), when both are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// What the model said, as it said it (at most
    /// [`crate::provider::MAX_RAW_ANSWER_CHARS`] characters, secrets redacted),
    /// on success: the row's evidence beside the label it was read as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Cow<'a, str>>,
    /// The predicted label's probability, renormalised over the label set, when
    /// the answer carried log-probabilities ([`crate::confidence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The other labels the model found likeliest, most likely first (at most
    /// [`crate::confidence::MAX_ALTERNATIVES`]), beside `confidence`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<crate::confidence::LabelChance<Cow<'a, str>>>,
    /// Why the confidence asked for is missing (the answer is kept):
    /// `missing`, `malformed` or `labelNotFound`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_gap: Option<crate::confidence::ConfidenceGap>,
    /// When the item finished; ISO-8601 in the JSON.
    #[serde(with = "crate::time::iso8601")]
    pub finished_at: Millis,
}

impl ItemResult<'_> {
    /// The result as one journal line: compact JSON (camelCase fields) ending in `\n`.
    pub fn to_json_line(&self) -> String {
        // Serialising this struct cannot fail: plain fields, string keys only.
        let mut line = serde_json::to_string(self).expect("ItemResult serialises to JSON");
        line.push('\n');
        line
    }

    /// The same result, owning its text.
    pub fn into_owned(self) -> ItemResult<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        ItemResult {
            id: self.id.map(own),
            image: own(self.image),
            label: own(self.label),
            prediction: self.prediction.map(own),
            error: self.error.map(own),
            answer: self.answer.map(own),
            confidence: self.confidence,
            alternatives: self
                .alternatives
                .into_iter()
                .map(|a| crate::confidence::LabelChance {
                    label: own(a.label),
                    probability: a.probability,
                })
                .collect(),
            confidence_gap: self.confidence_gap,
            cost_usd: self.cost_usd,
            row: self.row,
            line: self.line,
            agreement: self.agreement,
            status: self.status,
            attempts: self.attempts,
            latency_ms: self.latency_ms,
            error_kind: self.error_kind,
            http_status: self.http_status,
            usage: self.usage,
            finished_at: self.finished_at,
        }
    }
}

/// A journal folded back into results, for resume.
///
/// A line is a result only if it is complete: newline-terminated and a valid
/// [`ItemResult`]. The last line written before a crash may be cut anywhere; it is
/// ignored and reported in [`torn_tail`](Self::torn_tail). Before appending to the
/// journal again, the host truncates the file to [`complete_len`](Self::complete_len)
/// so that the next line does not get glued to the torn one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FoldedJournal {
    /// The journal's first line, when it names the run's settings (journals written
    /// before that line existed have none).
    pub header: Option<JournalHeader>,
    /// The known results, sorted by row, one per row: the last line for a row wins.
    pub results: Vec<ItemResult<'static>>,
    /// Lines read (blank ones and a torn tail included).
    pub lines_read: usize,
    /// The last non-blank line was incomplete (no trailing newline, or not a valid
    /// result) and was ignored.
    pub torn_tail: bool,
    /// Lines before the last that are not valid results: (1-based line number,
    /// reason). Whether that is fatal is the caller's decision.
    pub bad_lines: Vec<(usize, String)>,
    /// Length in bytes of the journal's sound part: up to the torn tail when there is
    /// one, else up to the last newline. Truncate the file to this before appending.
    pub complete_len: usize,
}

impl FoldedJournal {
    /// Readies the results for a resumed run ([`crate::Run::restore`]): with
    /// `retry_failed`, failed results are dropped so that those rows run again.
    /// Returns whether the journal must be rewritten with one line per kept result
    /// before anything is appended: when results were dropped, a row appeared more
    /// than once, or lines were unusable.
    pub fn prepare_resume(&mut self, retry_failed: bool) -> bool {
        let rows = self.results.len();
        if retry_failed {
            self.results.retain(|r| r.status != ItemStatus::Failed);
        }
        let kept_lines = rows + usize::from(self.torn_tail) + usize::from(self.header.is_some());
        let duplicates = self.lines_read > kept_lines;
        self.results.len() != rows || duplicates || !self.bad_lines.is_empty()
    }

    /// The journal as [`prepare_resume`](Self::prepare_resume) asks it rewritten:
    /// its header line (if it has one), then one line per kept result.
    pub fn to_journal_text(&self) -> String {
        let header = self.header.as_ref().map(JournalHeader::to_json_line);
        header
            .into_iter()
            .chain(self.results.iter().map(ItemResult::to_json_line))
            .collect()
    }
}

/// Folds a journal held in memory. See [`FoldedJournal`].
///
/// Blank lines are skipped. A first non-blank line that is a [`JournalHeader`] is
/// the journal's header, not a result. An unusable line that is the last non-blank one (with or
/// without a newline) is the torn tail; an unusable line before it goes to
/// `bad_lines`. A last line without a newline is torn even if it parses.
pub fn fold_journal(text: &str) -> FoldedJournal {
    let mut folder = Folder::default();
    for chunk in text.as_bytes().split_inclusive(|&b| b == b'\n') {
        folder.line(chunk);
    }
    folder.finish()
}

/// Reads a journal one line at a time without keeping its results: each complete
/// result is handed back as its line is read, so a host can fold a journal of any
/// size in memory of its own choosing (the HTML report of a 10,000,000-row run).
/// Same rules as [`fold_journal`], except that a row written twice is handed back
/// twice: [`JournalScan::repeated_rows`] says whether that happened.
#[derive(Debug, Default)]
pub struct JournalScanner {
    lines: LineRules,
    /// Rows below [`BITSET_ROWS`] seen, one bit each (1.25 MB for 10,000,000 rows).
    seen: Vec<u64>,
    /// Rows above it (only a tampered journal has such row numbers).
    seen_far: std::collections::HashSet<usize>,
    repeated: bool,
}

/// Rows told apart by a bit each: at most 16 MiB of bits.
const BITSET_ROWS: usize = 1 << 27;

/// A complete result line found by a [`JournalScanner`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScannedLine {
    /// Its 1-based line number.
    pub number: usize,
    /// The result.
    pub result: ItemResult<'static>,
    /// An earlier line had the same row.
    pub repeats_row: bool,
}

/// What a [`JournalScanner`] found besides the results.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalScan {
    /// As [`FoldedJournal::lines_read`].
    pub lines_read: usize,
    /// As [`FoldedJournal::torn_tail`].
    pub torn_tail: bool,
    /// As [`FoldedJournal::bad_lines`].
    pub bad_lines: Vec<(usize, String)>,
    /// As [`FoldedJournal::complete_len`].
    pub complete_len: usize,
    /// Some row has more than one complete line (a resumed run killed before it
    /// rewrote its journal): the last line for a row is the one that counts.
    pub repeated_rows: bool,
}

impl JournalScanner {
    /// One line, with its `\n` if it has one (only the very last line may lack
    /// it). Returns the result the line holds, if it is a complete one.
    pub fn line(&mut self, chunk: &[u8]) -> Option<ScannedLine> {
        let result = self.lines.line(chunk)?;
        let row = result.row;
        let repeats_row = if row < BITSET_ROWS {
            let (word, bit) = (row / 64, 1u64 << (row % 64));
            if word >= self.seen.len() {
                self.seen.resize(word + 1, 0);
            }
            let seen = self.seen[word] & bit != 0;
            self.seen[word] |= bit;
            seen
        } else {
            !self.seen_far.insert(row)
        };
        self.repeated |= repeats_row;
        Some(ScannedLine {
            number: self.lines.lines_read,
            result,
            repeats_row,
        })
    }

    /// The journal's first line, once read, when it names the run's settings.
    pub fn header(&self) -> Option<&JournalHeader> {
        self.lines.header.as_ref()
    }

    /// The end of the journal.
    pub fn finish(self) -> JournalScan {
        let (torn_start, lines) = self.lines.finish();
        JournalScan {
            lines_read: lines.lines_read,
            torn_tail: torn_start.is_some(),
            bad_lines: lines.bad_lines,
            complete_len: torn_start.unwrap_or(lines.last_newline_end),
            repeated_rows: self.repeated,
        }
    }
}

/// Folds a journal read line by line from `r`. Same rules as [`fold_journal`]; a line
/// that is not UTF-8 is an unusable line, not an error.
///
/// # Errors
///
/// Only the reader's own errors.
pub fn fold_journal_reader<R: BufRead>(mut r: R) -> std::io::Result<FoldedJournal> {
    let mut folder = Folder::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        folder.line(&buf);
    }
    Ok(folder.finish())
}

/// The state of a fold: the results by row, the last line for a row winning.
#[derive(Default)]
struct Folder {
    by_row: BTreeMap<usize, ItemResult<'static>>,
    lines: LineRules,
}

impl Folder {
    fn line(&mut self, chunk: &[u8]) {
        if let Some(result) = self.lines.line(chunk) {
            self.by_row.insert(result.row, result);
        }
    }

    fn finish(self) -> FoldedJournal {
        let (torn_start, lines) = self.lines.finish();
        FoldedJournal {
            header: lines.header,
            results: self.by_row.into_values().collect(),
            lines_read: lines.lines_read,
            torn_tail: torn_start.is_some(),
            bad_lines: lines.bad_lines,
            complete_len: torn_start.unwrap_or(lines.last_newline_end),
        }
    }
}

/// Which lines are results, which are bad and which is a torn tail.
#[derive(Debug, Default)]
struct LineRules {
    /// The journal's first line, when it names the run's settings.
    header: Option<JournalHeader>,
    /// A non-blank line was seen: a header can only be the first.
    seen_line: bool,
    lines_read: usize,
    bad_lines: Vec<(usize, String)>,
    /// An unusable newline-terminated line: bad if another non-blank line follows,
    /// else the torn tail. (line number, reason, start offset)
    pending: Option<(usize, String, usize)>,
    /// Start offset of an unterminated last line.
    unterminated: Option<usize>,
    offset: usize,
    last_newline_end: usize,
}

impl LineRules {
    /// One line, with its `\n` if it has one; the result it holds, if complete.
    fn line(&mut self, chunk: &[u8]) -> Option<ItemResult<'static>> {
        self.lines_read += 1;
        let number = self.lines_read;
        let start = self.offset;
        self.offset += chunk.len();
        let (body, terminated) = match chunk.strip_suffix(b"\n") {
            Some(body) => (body, true),
            None => (chunk, false),
        };
        if terminated {
            self.last_newline_end = self.offset;
        }
        if body.trim_ascii().is_empty() {
            return None;
        }
        if let Some((line, reason, _)) = self.pending.take() {
            self.bad_lines.push((line, reason));
        }
        let first = !std::mem::replace(&mut self.seen_line, true);
        if !terminated {
            // Only the very last chunk can lack a newline.
            self.unterminated = Some(start);
            return None;
        }
        match serde_json::from_slice::<ItemResult<'static>>(body) {
            Ok(result) => Some(result),
            Err(e) => {
                match serde_json::from_slice::<JournalHeader>(body) {
                    Ok(header) if first => self.header = Some(header),
                    _ => self.pending = Some((number, format!("not a result line: {e}"), start)),
                }
                None
            }
        }
    }

    /// The start offset of the torn tail, if any, and the rules' counts.
    fn finish(mut self) -> (Option<usize>, LineRules) {
        let torn_start = self
            .unterminated
            .or(self.pending.take().map(|(_, _, start)| start));
        (torn_start, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> ItemResult<'static> {
        ItemResult {
            row: 7,
            line: 9,
            id: Some("img-7".into()),
            image: "images/chat noir.png".into(),
            label: "chat".into(),
            prediction: Some("chien".into()),
            agreement: Some(false),
            status: ItemStatus::Failed,
            attempts: 3,
            latency_ms: Some(1234),
            error: Some("HTTP 500: \"boom\"\nline two".into()),
            error_kind: Some(FailureKind::Http),
            http_status: Some(500),
            usage: Some(Usage {
                prompt_tokens: 100,
                completion_tokens: 5,
                total_tokens: 105,
            }),
            cost_usd: Some(0.000_018),
            answer: Some("{\"label\": \"chien\"} \u{202e}".into()),
            confidence: None,
            alternatives: Vec::new(),
            confidence_gap: None,
            finished_at: Millis(1_737_714_600_000),
        }
    }

    fn ok(row: usize, label: &str) -> ItemResult<'static> {
        ItemResult {
            row,
            line: row as u64 + 2,
            id: None,
            image: format!("{row}.png").into(),
            label: label.to_string().into(),
            prediction: Some(label.to_string().into()),
            agreement: Some(true),
            status: ItemStatus::Success,
            attempts: 1,
            latency_ms: Some(10),
            error: None,
            error_kind: None,
            http_status: Some(200),
            usage: None,
            cost_usd: None,
            answer: None,
            confidence: None,
            alternatives: Vec::new(),
            confidence_gap: None,
            finished_at: Millis(1_737_714_600_000),
        }
    }

    #[test]
    fn json_line_round_trip_and_field_names() {
        let r = full();
        let line = r.to_json_line();
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "one line: {line}");
        for name in [
            "\"latencyMs\"",
            "\"finishedAt\"",
            "\"errorKind\":\"http\"",
            "\"httpStatus\"",
            "\"promptTokens\"",
            "\"status\":\"failed\"",
        ] {
            assert!(line.contains(name), "{name} in {line}");
        }
        let back: ItemResult = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
        let minimal = ok(0, "cat");
        let line = minimal.to_json_line();
        assert!(
            !line.contains("errorKind") && !line.contains("\"id\""),
            "{line}"
        );
        assert_eq!(serde_json::from_str::<ItemResult>(&line).unwrap(), minimal);
    }

    #[test]
    fn fold_plain_and_blank_lines() {
        let text = format!(
            "{}\n{}\r\n\n",
            ok(1, "a").to_json_line(),
            ok(0, "b").to_json_line().trim_end()
        );
        let f = fold_journal(&text);
        assert_eq!(f.results, [ok(0, "b"), ok(1, "a")]);
        assert_eq!(f.lines_read, 4);
        assert!(!f.torn_tail);
        assert!(f.bad_lines.is_empty());
        assert_eq!(f.complete_len, text.len());
        assert_eq!(fold_journal(""), FoldedJournal::default());
    }

    #[test]
    fn last_line_wins_for_duplicate_rows() {
        let mut failed = ok(2, "a");
        failed.status = ItemStatus::Failed;
        let text = [ok(2, "a"), ok(0, "x"), failed.clone(), ok(1, "y")]
            .iter()
            .map(ItemResult::to_json_line)
            .collect::<String>();
        let f = fold_journal(&text);
        assert_eq!(f.results, [ok(0, "x"), ok(1, "y"), failed]);
        assert_eq!(f.lines_read, 4);
    }

    #[test]
    fn torn_tail_at_every_offset() {
        let (a, b) = (ok(0, "a").to_json_line(), ok(1, "b").to_json_line());
        let head = format!("{a}{b}\n");
        let mut last = full();
        last.label = "étiquette".into();
        let last = last.to_json_line();
        let whole = format!("{head}{last}");
        for cut in head.len() + 1..whole.len() {
            let bytes = &whole.as_bytes()[..cut];
            let f = fold_journal_reader(bytes).unwrap();
            assert_eq!(f.results, [ok(0, "a"), ok(1, "b")], "cut {cut}");
            assert!(f.torn_tail, "cut {cut}");
            assert!(f.bad_lines.is_empty(), "cut {cut}");
            assert_eq!(f.lines_read, 4, "cut {cut}");
            assert_eq!(f.complete_len, head.len(), "cut {cut}");
            if whole.is_char_boundary(cut) {
                assert_eq!(fold_journal(&whole[..cut]), f, "cut {cut}");
            }
        }
        // Cut at the line start: nothing torn; the whole line: a third result.
        let f = fold_journal(&head);
        assert!(!f.torn_tail && f.results.len() == 2);
        let f = fold_journal(&whole);
        assert!(!f.torn_tail && f.results.len() == 3);
        assert_eq!(f.complete_len, whole.len());
    }

    #[test]
    fn unparsable_last_line_with_newline_is_torn() {
        let text = format!("{}{{\"row\":1,\"li\n\n  \n", ok(0, "a").to_json_line());
        let f = fold_journal(&text);
        assert!(f.torn_tail);
        assert!(f.bad_lines.is_empty());
        assert_eq!(f.results, [ok(0, "a")]);
        assert_eq!(f.complete_len, ok(0, "a").to_json_line().len());
    }

    #[test]
    fn bad_middle_line_is_reported() {
        let (a, b) = (ok(0, "a").to_json_line(), ok(1, "b").to_json_line());
        let text = format!("{a}garbage\n\n{{\"row\":5}}\n{b}");
        let f = fold_journal(&text);
        assert_eq!(f.results, [ok(0, "a"), ok(1, "b")]);
        assert!(!f.torn_tail);
        let lines: Vec<usize> = f.bad_lines.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 4]);
        assert!(
            f.bad_lines[1].1.contains("missing field"),
            "{:?}",
            f.bad_lines
        );
        // Bytes that are not UTF-8 make a bad line, not an error.
        let mut bytes = b"\xff\xfe\n".to_vec();
        bytes.extend_from_slice(ok(0, "a").to_json_line().as_bytes());
        let f = fold_journal_reader(&bytes[..]).unwrap();
        assert_eq!(f.bad_lines.len(), 1);
        assert_eq!(f.results, [ok(0, "a")]);
    }

    fn header() -> JournalHeader {
        let mut run = RunConfig {
            run_id: "2025-01-24T10-30-00-000Z".into(),
            csv_path: "data/labels.csv".into(),
            ..RunConfig::default()
        };
        if let crate::provider::Provider::OpenAi(openai) = &mut run.provider {
            openai.base_url = "http://127.0.0.1:11434/v1".into();
        }
        JournalHeader { run }
    }

    #[test]
    fn a_header_line_names_the_run_and_is_not_a_result() {
        let text = format!(
            "{}{}{}",
            header().to_json_line(),
            ok(0, "a").to_json_line(),
            ok(1, "b").to_json_line()
        );
        assert!(text.starts_with("{\"run\":{"), "{text}");
        let mut f = fold_journal(&text);
        assert_eq!(f.header, Some(header()));
        assert_eq!(f.results, [ok(0, "a"), ok(1, "b")]);
        assert!(f.bad_lines.is_empty() && !f.torn_tail);
        assert_eq!(f.complete_len, text.len());
        // A clean journal with a header needs no rewrite on resume; a rewrite keeps
        // the header first.
        assert!(!f.prepare_resume(false));
        assert_eq!(f.to_journal_text(), text);
        // A header alone (killed before the first result) is a sound journal.
        let alone = fold_journal(&header().to_json_line());
        assert_eq!(alone.header, Some(header()));
        assert!(alone.results.is_empty() && !alone.torn_tail);
        // A journal of an earlier version has no header, and folds as before.
        let old = fold_journal(&ok(0, "a").to_json_line());
        assert_eq!(old.header, None);
        assert_eq!(old.to_journal_text(), ok(0, "a").to_json_line());
        // A header anywhere but first is an unusable line.
        let late = format!(
            "{}{}{}",
            ok(0, "a").to_json_line(),
            header().to_json_line(),
            ok(1, "b").to_json_line()
        );
        let f = fold_journal(&late);
        assert_eq!(f.header, None);
        assert_eq!(f.bad_lines.len(), 1);
        assert_eq!(f.bad_lines[0].0, 2);
    }
}
