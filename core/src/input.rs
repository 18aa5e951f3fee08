//! The labels CSV: parsing it into [`Item`]s and the [`LabelSet`].
//!
//! The CSV must have a header row. The image and label columns are found by common
//! names (see [`IMAGE_COLUMN_NAMES`], [`LABEL_COLUMN_NAMES`], [`ID_COLUMN_NAMES`]) or
//! named explicitly in [`ColumnNames`]. UTF-8 with or without a byte-order mark, CRLF
//! or LF line ends, quoted fields (with commas, quotes and line breaks inside), blank
//! lines and surrounding whitespace are all accepted.
//!
//! A data row that cannot be used (missing image or label, bytes that are not UTF-8)
//! becomes an [`Item`] with a [`defect`](Item::defect) naming its line, so the run
//! reports it as an item failure. A file without a usable header, without any row,
//! or with a quoted field that is never closed (csv itself would read the rest of
//! the file into that field without a word), or a read error, is a whole-file
//! [`CsvError`].
//!
//! Line numbers are 1-based and name the line where a record *starts* (the header is
//! line 1 unless blank lines precede it); they are exact for LF and CRLF files, blank
//! lines and quoted fields spanning several lines.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Where an item's image is, as the CSV wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "camelCase")]
#[non_exhaustive]
pub enum ImageRef {
    /// An `http://` or `https://` URL, passed to the endpoint as it is.
    Url(Box<str>),
    /// A `data:` URL, passed to the endpoint as it is.
    DataUrl(Box<str>),
    /// A path relative to the CSV's folder (or the uploaded images folder).
    RelativePath(Box<str>),
    /// An absolute file-system path.
    AbsolutePath(Box<str>),
}

impl ImageRef {
    /// Classifies a CSV cell (trimmed first):
    ///
    /// - `http://` or `https://` (scheme in any case) -> [`ImageRef::Url`];
    /// - `data:` (any case) -> [`ImageRef::DataUrl`];
    /// - starts with `/` or `\`, or a Windows drive (`C:\`, `C:/`) ->
    ///   [`ImageRef::AbsolutePath`];
    /// - anything else -> [`ImageRef::RelativePath`] (check it with
    ///   [`check_relative_path`] before resolving it).
    pub fn parse(cell: &str) -> ImageRef {
        let s = cell.trim();
        if starts_with_ignore_case(s, "http://") || starts_with_ignore_case(s, "https://") {
            ImageRef::Url(s.into())
        } else if starts_with_ignore_case(s, "data:") {
            ImageRef::DataUrl(s.into())
        } else if s.starts_with('/') || s.starts_with('\\') || has_drive_root(s) {
            ImageRef::AbsolutePath(s.into())
        } else {
            ImageRef::RelativePath(s.into())
        }
    }

    /// The reference as the CSV wrote it (trimmed).
    pub fn as_str(&self) -> &str {
        match self {
            ImageRef::Url(s)
            | ImageRef::DataUrl(s)
            | ImageRef::RelativePath(s)
            | ImageRef::AbsolutePath(s) => s,
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `s` starts with `prefix`, ignoring ASCII case.
fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// `s` starts with a Windows drive root: `C:\` or `C:/`.
fn has_drive_root(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

/// One data row of the labels CSV. Kept small, as a run holds one per row: text is
/// boxed (no spare capacity) and each distinct label is stored once, shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// 0-based index among the data rows (the header and blank lines are not rows).
    pub row: usize,
    /// 1-based line number in the file where the row starts (the header is line 1).
    pub line: u64,
    /// The id column's value, when there is an id column and the cell is not empty
    /// (bytes that are not UTF-8 are replaced by `U+FFFD`: the id only identifies).
    pub id: Option<Box<str>>,
    /// The image reference. On a defect row it is what the row had, or an empty
    /// `RelativePath("")` when the cell is missing, empty or not UTF-8.
    pub image: ImageRef,
    /// The human label, trimmed. On a defect row it is what the row had, or empty.
    pub label: Arc<str>,
    /// Why this row cannot be sent (missing field, bad UTF-8, ...), naming its line.
    /// Such a row becomes an item failure, never a crash.
    pub defect: Option<Box<str>>,
}

/// The distinct labels of the CSV, sorted and de-duplicated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelSet {
    names: Vec<String>,
}

impl LabelSet {
    /// The set of the given labels, sorted (byte order) and de-duplicated. Labels are
    /// taken as they are (the CSV parser trims them before).
    pub fn from_labels<I: IntoIterator<Item = S>, S: Into<String>>(labels: I) -> LabelSet {
        let mut names: Vec<String> = labels.into_iter().map(Into::into).collect();
        names.sort_unstable();
        names.dedup();
        LabelSet { names }
    }

    /// The labels, sorted; a label's index here is its index everywhere else.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of distinct labels.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// `true` when there is no label.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Index of the label equal to `exact` (binary search, no normalisation).
    pub fn index_of(&self, exact: &str) -> Option<usize> {
        self.names.binary_search_by(|n| n.as_str().cmp(exact)).ok()
    }

    /// Index of the label a model's `answer` names, trying in turn: the answer as it
    /// is; trimmed; trimmed without one pair of surrounding quotes (`"`, `'`, `` ` ``,
    /// `“ ”`, `‘ ’`); and that last form ignoring case. `None` when nothing matches,
    /// or when the case-insensitive step matches more than one label (e.g. the set
    /// has both `Cat` and `cat` and the answer is `CAT`).
    pub fn match_answer(&self, answer: &str) -> Option<usize> {
        if let Some(i) = self.index_of(answer) {
            return Some(i);
        }
        let trimmed = answer.trim();
        if let Some(i) = self.index_of(trimmed) {
            return Some(i);
        }
        let unquoted = strip_quotes(trimmed).trim();
        if let Some(i) = self.index_of(unquoted) {
            return Some(i);
        }
        let mut found = None;
        for (i, name) in self.names.iter().enumerate() {
            if eq_ignore_case(name, unquoted) {
                if found.is_some() {
                    return None;
                }
                found = Some(i);
            }
        }
        found
    }
}

/// `s` without one pair of matching surrounding quotes, if it has them.
fn strip_quotes(s: &str) -> &str {
    const PAIRS: [(char, char); 5] = [
        ('"', '"'),
        ('\'', '\''),
        ('`', '`'),
        ('\u{201C}', '\u{201D}'),
        ('\u{2018}', '\u{2019}'),
    ];
    for (open, close) in PAIRS {
        if let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
            return inner;
        }
    }
    s
}

/// Unicode case-insensitive equality (simple lowercase mapping), without allocating.
fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
}

/// Header names tried, in this order, for the image column (after normalising the
/// header: trimmed, lowercase, spaces and hyphens turned into `_`).
pub const IMAGE_COLUMN_NAMES: &[&str] = &[
    "image",
    "image_path",
    "path",
    "file",
    "filename",
    "url",
    "image_url",
];

/// Header names tried, in this order, for the label column.
pub const LABEL_COLUMN_NAMES: &[&str] = &["label", "class", "category", "expected"];

/// Header names tried, in this order, for the optional id column.
pub const ID_COLUMN_NAMES: &[&str] = &["id", "image_id", "uid"];

/// Columns named explicitly by the user (the CLI's `--image-column` and kin);
/// `None` means "find it by its common names". Names are matched like headers:
/// ignoring case, surrounding spaces, and spaces versus `-` versus `_`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ColumnNames {
    /// The image column (path or URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The label column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The id column (optional even when auto-detected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl ColumnNames {
    /// True when every column is found by its common names.
    pub fn is_default(&self) -> bool {
        *self == ColumnNames::default()
    }
}

/// A parsed labels CSV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelsCsv {
    /// Every data row, in file order (`items[i].row == i`), defect rows included.
    pub items: Vec<Item>,
    /// The distinct labels of the rows without defect.
    pub labels: LabelSet,
    /// The image column's header, as the file wrote it (trimmed).
    pub image_column: String,
    /// The label column's header, as the file wrote it (trimmed).
    pub label_column: String,
    /// The id column's header, when there is one.
    pub id_column: Option<String>,
}

impl LabelsCsv {
    /// Number of rows with a defect.
    pub fn defect_count(&self) -> usize {
        self.items.iter().filter(|i| i.defect.is_some()).count()
    }
}

/// Why a labels CSV could not be read at all. A bad *row* is not an error: it becomes
/// an [`Item`] with a defect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// The file is empty, or holds only blank lines.
    #[error(
        "the CSV file is empty (no header row); its first line must name the columns, \
         e.g. `image,label`"
    )]
    Empty,
    /// No header matches a known image column name.
    #[error(
        "no image column in the CSV header (columns found: {}; names tried: {}); \
         name the column that holds the image path or URL",
        list(.found),
        list_static(IMAGE_COLUMN_NAMES)
    )]
    NoImageColumn {
        /// The header's column names, as written.
        found: Vec<String>,
    },
    /// No header matches a known label column name.
    #[error(
        "no label column in the CSV header (columns found: {}; names tried: {}); \
         name the column that holds the human label",
        list(.found),
        list_static(LABEL_COLUMN_NAMES)
    )]
    NoLabelColumn {
        /// The header's column names, as written.
        found: Vec<String>,
    },
    /// A column named in [`ColumnNames`] is not in the header.
    #[error(
        "the CSV has no column {name:?} (named as the {role} column); columns found: {}",
        list(.found)
    )]
    ColumnNotFound {
        /// Which column the name was given for.
        role: ColumnRole,
        /// The name given.
        name: String,
        /// The header's column names, as written.
        found: Vec<String>,
    },
    /// A quoted field opens and is never closed: read as CSV, everything after the
    /// quote to the end of the file would be one field, and the rows there lost.
    #[error(
        "line {line}: a quoted field opens here and is never closed, so {} would be \
         read as one field; close the quote (a quote inside a quoted field is written \
         twice: \"\")",
        swallowed(*.line, *.last_line)
    )]
    UnterminatedQuote {
        /// The 1-based line where the quote opens.
        line: u64,
        /// The file's last line (1-based; a final line end starts no line).
        last_line: u64,
    },
    /// The file has a header but no data row (only blank lines after it, if any).
    #[error(
        "the CSV has a header but no rows: nothing to run; add one row per image \
         below the header (line {header_line})"
    )]
    NoRows {
        /// The 1-based line of the header.
        header_line: u64,
    },
    /// Reading the file failed.
    #[error("could not read the CSV file: {0}; check that the file exists and is readable")]
    Io(#[from] io::Error),
}

/// What an unterminated quote takes with it.
fn swallowed(line: u64, last_line: u64) -> String {
    if last_line > line {
        format!("lines {line} to {last_line} (the end of the file)")
    } else {
        "the rest of the file".to_owned()
    }
}

/// Which of the CSV's columns a name was given for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ColumnRole {
    /// The image path or URL.
    Image,
    /// The human label.
    Label,
    /// The optional row id.
    Id,
}

impl std::fmt::Display for ColumnRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ColumnRole::Image => "image",
            ColumnRole::Label => "label",
            ColumnRole::Id => "id",
        })
    }
}

/// `a, b, c` with each name quoted, or `(none)`.
fn list<S: AsRef<str>>(names: &[S]) -> String {
    if names.is_empty() {
        return "(none)".to_owned();
    }
    let mut out = String::new();
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!("{:?}", n.as_ref()));
    }
    out
}

fn list_static(names: &[&str]) -> String {
    list(names)
}

/// Parses a labels CSV held in memory. See [`read_labels_csv`].
pub fn parse_labels_csv(text: &str, columns: &ColumnNames) -> Result<LabelsCsv, CsvError> {
    read_labels_csv(text.as_bytes(), columns)
}

/// Buffer size of the CSV reader; the line tap keeps at least this many recent bytes.
const BUFFER: usize = 64 * 1024;

/// Reads a labels CSV from `reader`, streaming (memory: the items, plus a fixed buffer).
///
/// The first non-blank record is the header. Records whose cells are all empty or
/// whitespace (blank lines, `,,`) are skipped and are not rows. Rows may be shorter
/// or longer than the header. Cells are trimmed.
///
/// # Errors
///
/// [`CsvError`] when there is no header, no image or label column, a named column is
/// missing, no row, a quoted field never closed, or reading fails. Bad rows are
/// never errors.
pub fn read_labels_csv<R: io::Read>(
    reader: R,
    columns: &ColumnNames,
) -> Result<LabelsCsv, CsvError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(BUFFER)
        .from_reader(LineTap::new(reader));
    let mut record = csv::ByteRecord::new();

    // The header: the first record with a non-blank cell.
    let mut tracker = LineTracker::default();
    tracker.start(&rdr);
    let header_line = loop {
        if !read_record(&mut rdr, &mut record)? {
            rdr.get_ref().check_quotes()?;
            return Err(CsvError::Empty);
        }
        let line = tracker.record_read(&rdr);
        if !is_blank(&record) {
            break line;
        }
    };
    // A header that took the whole file in is an unclosed quote, not a bad header.
    rdr.get_ref().check_quotes()?;
    let headers: Vec<String> = record
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let text = String::from_utf8_lossy(cell);
            let text = if i == 0 {
                // csv strips a BOM itself, unless the reader hands it over in pieces.
                text.trim_start_matches('\u{feff}')
            } else {
                &text
            };
            text.trim().to_owned()
        })
        .collect();
    let normalized: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();

    let image_col = resolve_column(
        &headers,
        &normalized,
        columns.image.as_deref(),
        ColumnRole::Image,
        IMAGE_COLUMN_NAMES,
    )?
    .ok_or_else(|| CsvError::NoImageColumn {
        found: headers.clone(),
    })?;
    let label_col = resolve_column(
        &headers,
        &normalized,
        columns.label.as_deref(),
        ColumnRole::Label,
        LABEL_COLUMN_NAMES,
    )?
    .ok_or_else(|| CsvError::NoLabelColumn {
        found: headers.clone(),
    })?;
    let id_col = resolve_column(
        &headers,
        &normalized,
        columns.id.as_deref(),
        ColumnRole::Id,
        ID_COLUMN_NAMES,
    )?;

    let cols = Columns {
        image: image_col,
        label: label_col,
        id: id_col,
        image_name: &headers[image_col],
        label_name: &headers[label_col],
        header_len: headers.len(),
    };
    let mut items = Vec::new();
    // Every distinct label once (defect rows' too), and those of usable rows.
    let mut interned: HashSet<Arc<str>> = HashSet::new();
    let mut seen: HashSet<Arc<str>> = HashSet::new();
    loop {
        tracker.start(&rdr);
        if !read_record(&mut rdr, &mut record)? {
            break;
        }
        let line = tracker.record_read(&rdr);
        if is_blank(&record) {
            continue;
        }
        let item = cols.item(&record, items.len(), line, &mut interned);
        if item.defect.is_none() && !seen.contains(&*item.label) {
            seen.insert(item.label.clone());
        }
        items.push(item);
    }
    rdr.get_ref().check_quotes()?;
    if items.is_empty() {
        return Err(CsvError::NoRows { header_line });
    }

    Ok(LabelsCsv {
        items,
        labels: LabelSet::from_labels(seen.iter().map(|l| l.to_string())),
        image_column: headers[image_col].clone(),
        label_column: headers[label_col].clone(),
        id_column: id_col.map(|i| headers[i].clone()),
    })
}

/// Reads one record, turning csv's errors into [`CsvError::Io`].
fn read_record<R: io::Read>(
    rdr: &mut csv::Reader<LineTap<R>>,
    record: &mut csv::ByteRecord,
) -> Result<bool, CsvError> {
    rdr.read_byte_record(record)
        .map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(io) => CsvError::Io(io),
            // Not produced when reading flexible byte records; kept as an I/O error.
            other => CsvError::Io(io::Error::other(format!("{other:?}"))),
        })
}

/// A record whose cells are all empty or whitespace (blank line, `,,`, `  `).
fn is_blank(record: &csv::ByteRecord) -> bool {
    record.iter().all(|cell| cell.trim_ascii().is_empty())
}

/// Header normalisation: trimmed, lowercase, spaces and hyphens turned into `_`.
fn normalize_header(h: &str) -> String {
    h.trim()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The column named `explicit` (error if absent) or the first of `candidates` found.
fn resolve_column(
    headers: &[String],
    normalized: &[String],
    explicit: Option<&str>,
    role: ColumnRole,
    candidates: &[&str],
) -> Result<Option<usize>, CsvError> {
    if let Some(name) = explicit {
        let wanted = normalize_header(name);
        return match normalized.iter().position(|n| *n == wanted) {
            Some(i) => Ok(Some(i)),
            None => Err(CsvError::ColumnNotFound {
                role,
                name: name.to_owned(),
                found: headers.to_vec(),
            }),
        };
    }
    Ok(candidates
        .iter()
        .find_map(|c| normalized.iter().position(|n| n == c)))
}

/// The resolved columns, and the item builder.
struct Columns<'h> {
    image: usize,
    label: usize,
    id: Option<usize>,
    image_name: &'h str,
    label_name: &'h str,
    header_len: usize,
}

/// A cell's state.
enum Cell<'a> {
    Ok(&'a str),
    Missing,
    NotUtf8,
}

impl Columns<'_> {
    fn cell<'a>(record: &'a csv::ByteRecord, col: usize) -> Cell<'a> {
        match record.get(col) {
            None => Cell::Missing,
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(s) if s.trim().is_empty() => Cell::Missing,
                Ok(s) => Cell::Ok(s.trim()),
                Err(_) => Cell::NotUtf8,
            },
        }
    }

    fn item(
        &self,
        record: &csv::ByteRecord,
        row: usize,
        line: u64,
        interned: &mut HashSet<Arc<str>>,
    ) -> Item {
        let image = Self::cell(record, self.image);
        let label = Self::cell(record, self.label);
        let id = self.id.and_then(|col| {
            let bytes = record.get(col)?.trim_ascii();
            (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).trim().into())
        });

        let mut problems: Vec<String> = Vec::new();
        for (cell, what, name) in [
            (&image, "image", self.image_name),
            (&label, "label", self.label_name),
        ] {
            match cell {
                Cell::Ok(_) => {}
                Cell::Missing => problems.push(format!("missing {what} (column {name:?})")),
                Cell::NotUtf8 => problems.push(format!(
                    "{what} is not valid UTF-8 (column {name:?}); save the CSV as UTF-8"
                )),
            }
        }
        let extra = record
            .iter()
            .skip(self.header_len)
            .filter(|c| !c.trim_ascii().is_empty())
            .count();
        if extra > 0 {
            problems.push(format!(
                "the row has {} fields, the header {} (a comma in a field that is not quoted?)",
                record.len(),
                self.header_len
            ));
        }
        let defect = if problems.is_empty() {
            None
        } else {
            let mut msg = format!("line {line}: {}", problems.join(", "));
            let needed = self.image.max(self.label) + 1;
            if record.len() < needed {
                msg.push_str(&format!(
                    " (the row has {} field{}, the header more)",
                    record.len(),
                    if record.len() == 1 { "" } else { "s" }
                ));
            }
            Some(msg.into())
        };
        Item {
            row,
            line,
            id,
            image: match image {
                Cell::Ok(s) => ImageRef::parse(s),
                _ => ImageRef::RelativePath("".into()),
            },
            label: intern(interned, if let Cell::Ok(s) = label { s } else { "" }),
            defect,
        }
    }
}

/// The shared copy of `label`.
fn intern(set: &mut HashSet<Arc<str>>, label: &str) -> Arc<str> {
    if let Some(shared) = set.get(label) {
        return shared.clone();
    }
    let shared: Arc<str> = label.into();
    set.insert(shared.clone());
    shared
}

/// Computes the line where each record starts.
///
/// `csv::Position::line` is the line *before* skipped blank lines and, for CRLF
/// files, before the `\n` of the previous record's terminator; so the start line is
/// taken as the line after the previous record plus the `\n`s the parser skipped
/// before this record, which the [`LineTap`] counts.
#[derive(Default)]
struct LineTracker {
    base_line: u64,
}

impl LineTracker {
    /// Before reading a record.
    fn start<R: io::Read>(&mut self, rdr: &csv::Reader<LineTap<R>>) {
        let pos = rdr.position();
        self.base_line = pos.line();
        rdr.get_ref().begin_run(pos.byte());
    }

    /// After a record was read: the line where it starts.
    fn record_read<R: io::Read>(&self, rdr: &csv::Reader<LineTap<R>>) -> u64 {
        self.base_line + rdr.get_ref().take_run()
    }
}

/// A reader wrapper that keeps the most recent bytes it handed to the CSV reader and
/// counts the `\n`s in the run of `\r`/`\n` (and a leading BOM) starting at a given
/// offset: the bytes the CSV parser skips before a record.
struct LineTap<R> {
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
    fn new(inner: R) -> Self {
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
    fn check_quotes(&self) -> Result<(), CsvError> {
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
    fn scan(&mut self) {
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
struct QuoteScan {
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
    fn feed(&mut self, bytes: &[u8], first_read: bool) {
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
    fn unclosed(&self) -> Option<(u64, u64)> {
        (self.state == QuoteState::Quoted).then(|| {
            let last_line = self.newlines + u64::from(!self.at_line_start);
            (self.open_line, last_line.max(self.open_line))
        })
    }
}

/// Why an image path was refused by [`check_relative_path`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is empty (or names the data folder itself, like `a/..`).
    #[error("the image path is empty; put a file name in the image column")]
    Empty,
    /// The path climbs above the data folder with `..`.
    #[error(
        "image path {path:?} points outside the data folder; \
         such paths are refused unless outside paths are allowed"
    )]
    EscapesDataDir {
        /// The path as the CSV wrote it.
        path: String,
    },
    /// The path is absolute (`/x`, `\x`, `C:\x`, `C:x`), not relative to the data
    /// folder.
    #[error(
        "image path {path:?} is absolute, not relative to the data folder; \
         such paths are refused unless outside paths are allowed"
    )]
    Absolute {
        /// The path as the CSV wrote it.
        path: String,
    },
}

/// Lexically checks a [`ImageRef::RelativePath`] and returns it normalised: `\` turned
/// into `/`, empty and `.` components dropped, `..` resolved.
///
/// `images/./a/../b.png` gives `images/b.png`. Symbolic links are not looked at
/// (that is the host's job, which has the file system).
///
/// # Errors
///
/// [`PathError::Empty`] when nothing is left, [`PathError::EscapesDataDir`] when a `..`
/// would climb above the data folder, [`PathError::Absolute`] for a path starting
/// with `/` or `\` or a drive letter (`C:`).
pub fn check_relative_path(path: &str) -> Result<String, PathError> {
    let b = path.as_bytes();
    if path.starts_with('/')
        || path.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
    {
        return Err(PathError::Absolute {
            path: path.to_owned(),
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::EscapesDataDir {
                        path: path.to_owned(),
                    });
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(PathError::Empty);
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> LabelsCsv {
        parse_labels_csv(text, &ColumnNames::default()).expect("parses")
    }

    fn rel(s: &str) -> ImageRef {
        ImageRef::RelativePath(s.into())
    }

    /// (line, image, label, defect?) of each item.
    fn summary(csv: &LabelsCsv) -> Vec<(u64, String, String, bool)> {
        csv.items
            .iter()
            .map(|i| {
                (
                    i.line,
                    i.image.as_str().to_owned(),
                    i.label.to_string(),
                    i.defect.is_some(),
                )
            })
            .collect()
    }

    #[test]
    fn image_ref_classification() {
        assert_eq!(
            ImageRef::parse("https://x/a.png"),
            ImageRef::Url("https://x/a.png".into())
        );
        assert_eq!(
            ImageRef::parse(" HTTP://x/a.png "),
            ImageRef::Url("HTTP://x/a.png".into())
        );
        assert_eq!(
            ImageRef::parse("HtTpS://x"),
            ImageRef::Url("HtTpS://x".into())
        );
        assert_eq!(
            ImageRef::parse("data:image/png;base64,AAAA"),
            ImageRef::DataUrl("data:image/png;base64,AAAA".into())
        );
        assert_eq!(
            ImageRef::parse("/abs/a.png"),
            ImageRef::AbsolutePath("/abs/a.png".into())
        );
        assert_eq!(
            ImageRef::parse("\\\\server\\a.png"),
            ImageRef::AbsolutePath("\\\\server\\a.png".into())
        );
        assert_eq!(
            ImageRef::parse("C:\\x\\a.png"),
            ImageRef::AbsolutePath("C:\\x\\a.png".into())
        );
        assert_eq!(
            ImageRef::parse("d:/x/a.png"),
            ImageRef::AbsolutePath("d:/x/a.png".into())
        );
        assert_eq!(ImageRef::parse("images/a.png"), rel("images/a.png"));
        assert_eq!(ImageRef::parse("httpfoo.png"), rel("httpfoo.png"));
        assert_eq!(ImageRef::parse("C:x.png"), rel("C:x.png"));
        assert_eq!(ImageRef::parse(""), rel(""));
        assert_eq!(ImageRef::parse("  a b.png\t").as_str(), "a b.png");
    }

    #[test]
    fn label_set_sorted_dedup_and_lookup() {
        let set = LabelSet::from_labels(["dog", "cat", "dog", "bird", "cat"]);
        assert_eq!(set.names(), ["bird", "cat", "dog"]);
        assert_eq!(set.len(), 3);
        assert!(!set.is_empty());
        assert!(LabelSet::default().is_empty());
        assert_eq!(set.index_of("cat"), Some(1));
        assert_eq!(set.index_of("Cat"), None);
        assert_eq!(set.index_of("zebra"), None);
    }

    #[test]
    fn match_answer_steps() {
        let set = LabelSet::from_labels(["Éclair", "dog", "Cat"]);
        assert_eq!(set.names(), ["Cat", "dog", "Éclair"], "byte order");
        assert_eq!(set.match_answer("dog"), Some(1));
        assert_eq!(set.match_answer("  dog\n"), Some(1));
        assert_eq!(set.match_answer("\"dog\""), Some(1));
        assert_eq!(set.match_answer(" 'dog' "), Some(1));
        assert_eq!(set.match_answer("“Cat”"), Some(0));
        assert_eq!(set.match_answer("DOG"), Some(1));
        assert_eq!(set.match_answer(" \"cAt\" "), Some(0));
        assert_eq!(set.match_answer("éCLAIR"), Some(2));
        assert_eq!(set.match_answer("fox"), None);
        assert_eq!(set.match_answer(""), None);
        let ambiguous = LabelSet::from_labels(["Cat", "cat"]);
        assert_eq!(ambiguous.match_answer("cat"), Some(1));
        assert_eq!(ambiguous.match_answer("CAT"), None);
    }

    #[test]
    fn every_header_alias_is_found() {
        for image in IMAGE_COLUMN_NAMES {
            for label in LABEL_COLUMN_NAMES {
                let text = format!("{image},{label}\na.png,cat\n");
                let csv = parse(&text);
                assert_eq!(csv.image_column, *image);
                assert_eq!(csv.label_column, *label);
                assert_eq!(summary(&csv), [(2, "a.png".into(), "cat".into(), false)]);
            }
        }
        for id in ID_COLUMN_NAMES {
            let csv = parse(&format!("{id},image,label\nx1,a.png,cat\n"));
            assert_eq!(csv.id_column.as_deref(), Some(*id));
            assert_eq!(csv.items[0].id.as_deref(), Some("x1"));
        }
    }

    #[test]
    fn headers_are_normalised_and_priority_holds() {
        let csv = parse(" Image Path ,Expected-,CLASS\na.png,x,cat\n");
        assert_eq!(csv.image_column, "Image Path");
        assert_eq!(csv.label_column, "CLASS");
        let csv = parse("Image-URL,url,label\nu1,u2,cat\n");
        assert_eq!(csv.image_column, "url", "url comes before image_url");
        assert_eq!(csv.items[0].image.as_str(), "u2");
        let csv = parse("category,label,file\na,b,c.png\n");
        assert_eq!(csv.label_column, "label");
        assert_eq!(&*csv.items[0].label, "b");
    }

    #[test]
    fn bom_and_crlf() {
        let text = "\u{feff}image,label\r\na.png,cat\r\n\r\nb.png,dog\r\n";
        let csv = parse(text);
        assert_eq!(csv.image_column, "image");
        assert_eq!(
            summary(&csv),
            [
                (2, "a.png".into(), "cat".into(), false),
                (4, "b.png".into(), "dog".into(), false),
            ]
        );
    }

    /// A reader that hands over one byte per call, so csv never sees a whole BOM.
    struct OneByte<'a>(&'a [u8]);

    impl io::Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn bom_split_across_reads_and_line_numbers_with_tiny_reads() {
        let text = "\u{feff}image,label\r\n\r\n\"a\r\n.png\",cat\r\nb.png,dog";
        let csv = read_labels_csv(OneByte(text.as_bytes()), &ColumnNames::default()).unwrap();
        assert_eq!(csv.image_column, "image");
        assert_eq!(
            summary(&csv),
            [
                (3, "a\r\n.png".into(), "cat".into(), false),
                (5, "b.png".into(), "dog".into(), false),
            ]
        );
    }

    /// A reader that hands over the given pieces, one per call.
    struct Pieces(Vec<&'static [u8]>);

    impl io::Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let piece = self.0.remove(0);
            buf[..piece.len()].copy_from_slice(piece);
            Ok(piece.len())
        }
    }

    /// Found by the `csv` fuzz target: when the first read returned exactly the
    /// three BOM bytes, csv-core stripped them, saw no input, and the whole file
    /// read as empty (`CsvError::Empty`).
    #[test]
    fn bom_alone_in_the_first_read_is_not_the_end_of_the_file() {
        let pieces = Pieces(vec![b"\xEF\xBB\xBF", b"image,label\n", b"a.png,cat\n"]);
        let csv = read_labels_csv(pieces, &ColumnNames::default()).unwrap();
        assert_eq!(csv.image_column, "image");
        assert_eq!(summary(&csv), [(2, "a.png".into(), "cat".into(), false)]);
        // A file that is only a BOM is still empty.
        let err = read_labels_csv(Pieces(vec![b"\xEF\xBB\xBF"]), &ColumnNames::default());
        assert!(matches!(err, Err(CsvError::Empty)));
    }

    #[test]
    fn quoted_commas_quotes_and_newlines_keep_line_numbers() {
        let text = "image,label\n\
                    \"a,1.png\",\"cat, big\"\n\
                    \"b\"\"q\"\".png\",dog\n\
                    \"multi\nline\n.png\",\"bird\"\n\
                    \n\
                    last.png,  fox  \n";
        let csv = parse(text);
        assert_eq!(
            summary(&csv),
            [
                (2, "a,1.png".into(), "cat, big".into(), false),
                (3, "b\"q\".png".into(), "dog".into(), false),
                (4, "multi\nline\n.png".into(), "bird".into(), false),
                (8, "last.png".into(), "fox".into(), false),
            ]
        );
        assert_eq!(
            csv.items.iter().map(|i| i.row).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn blank_lines_whitespace_and_empty_rows_are_skipped() {
        let text = "\n\n  image , label  \n\n   \n,,\n a.png , cat \n\n";
        let csv = parse(text);
        assert_eq!(csv.image_column, "image");
        assert_eq!(summary(&csv), [(7, "a.png".into(), "cat".into(), false)]);
    }

    #[test]
    fn defect_rows() {
        let text = b"image,label\n\
                     ok.png,cat\n\
                     nolabel.png,\n\
                     ,dog\n\
                     short.png\n\
                     bad\xff.png,cat\n\
                     fine.png,caf\xe9\n\
                     last.png,dog\n";
        let csv = read_labels_csv(&text[..], &ColumnNames::default()).unwrap();
        let d: Vec<_> = csv.items.iter().map(|i| i.defect.clone()).collect();
        assert_eq!(d[0], None);
        assert_eq!(
            d[1].as_deref(),
            Some("line 3: missing label (column \"label\")")
        );
        assert_eq!(
            d[2].as_deref(),
            Some("line 4: missing image (column \"image\")")
        );
        assert_eq!(
            d[3].as_deref(),
            Some("line 5: missing label (column \"label\") (the row has 1 field, the header more)")
        );
        let bad = d[4].as_deref().unwrap();
        assert!(bad.starts_with("line 6: image is not valid UTF-8"), "{bad}");
        assert!(d[5]
            .as_deref()
            .unwrap()
            .starts_with("line 7: label is not valid UTF-8"));
        assert_eq!(d[6], None);
        assert_eq!(csv.items[1].image, rel("nolabel.png"));
        assert_eq!(&*csv.items[2].label, "dog");
        assert_eq!(csv.items[4].image, rel(""));
        assert_eq!(&*csv.items[4].label, "cat");
        assert_eq!(csv.items.len(), 7);
        assert_eq!(csv.defect_count(), 5);
        // "dog" only appears on defect rows before the last one; "caf\xe9" never counts.
        assert_eq!(csv.labels.names(), ["cat", "dog"]);
        let only_defect_label = parse("image,label\n,zebra\na.png,cat\n");
        assert_eq!(only_defect_label.labels.names(), ["cat"]);
    }

    #[test]
    fn explicit_columns_and_id() {
        let cols = ColumnNames {
            image: Some("Photo File".into()),
            label: Some("truth".into()),
            id: Some("KEY".into()),
        };
        let text = "key,photo-file,truth,label\nk1,a.png,cat,ignored\n,b.png,dog,x\n";
        let csv = parse_labels_csv(text, &cols).unwrap();
        assert_eq!(csv.image_column, "photo-file");
        assert_eq!(csv.label_column, "truth");
        assert_eq!(csv.id_column.as_deref(), Some("key"));
        assert_eq!(csv.items[0].id.as_deref(), Some("k1"));
        assert_eq!(csv.items[1].id, None);
        assert_eq!(csv.labels.names(), ["cat", "dog"]);

        let missing = ColumnNames {
            label: Some("truth".into()),
            ..ColumnNames::default()
        };
        let err = parse_labels_csv("image,label\na,b\n", &missing).unwrap_err();
        assert!(matches!(
            err,
            CsvError::ColumnNotFound {
                role: ColumnRole::Label,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("\"truth\"") && msg.contains("\"image\", \"label\""),
            "{msg}"
        );
        assert!(msg.contains("label column") && !msg.contains("--"), "{msg}");
    }

    #[test]
    fn whole_file_errors() {
        for empty in ["", "\n\n", "\u{feff}", " , \r\n"] {
            let err = parse_labels_csv(empty, &ColumnNames::default()).unwrap_err();
            assert!(matches!(err, CsvError::Empty), "{empty:?}: {err}");
            assert!(err.to_string().contains("header"));
        }
        let err = parse_labels_csv("name,label\na,b\n", &ColumnNames::default()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CsvError::NoImageColumn { .. }));
        assert!(msg.contains("\"name\", \"label\""), "{msg}");
        assert!(
            msg.contains("\"image_path\"") && !msg.contains("--"),
            "{msg}"
        );

        let err = parse_labels_csv("image,Tag\na,b\n", &ColumnNames::default()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CsvError::NoLabelColumn { .. }));
        assert!(msg.contains("\"image\", \"Tag\""), "{msg}");
        assert!(msg.contains("\"category\"") && !msg.contains("--"), "{msg}");

        // A header-only file (blank lines after it included) has nothing to run.
        for header_only in ["image,label\n", "\nimage,label", "image,label\n\n , \n"] {
            let err = parse_labels_csv(header_only, &ColumnNames::default()).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, CsvError::NoRows { .. }),
                "{header_only:?}: {msg}"
            );
            assert!(msg.contains("no rows"), "{msg}");
        }
        let err = parse_labels_csv("\n\nimage,label\n", &ColumnNames::default()).unwrap_err();
        assert!(matches!(err, CsvError::NoRows { header_line: 3 }), "{err}");
    }

    #[test]
    fn an_unclosed_quote_refuses_the_file_naming_the_line_it_opens() {
        let text = "image,label\na.png,cat\nb.png,\"dog\nc.png,cat\nd.png,dog\n";
        let err = parse_labels_csv(text, &ColumnNames::default()).unwrap_err();
        assert!(
            matches!(
                err,
                CsvError::UnterminatedQuote {
                    line: 3,
                    last_line: 5
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "line 3: a quoted field opens here and is never closed, so lines 3 to 5 \
             (the end of the file) would be read as one field; close the quote (a quote \
             inside a quoted field is written twice: \"\")"
        );
        let unclosed = |text: &str| match parse_labels_csv(text, &ColumnNames::default()) {
            Err(CsvError::UnterminatedQuote { line, last_line }) => Some((line, last_line)),
            Err(e) => panic!("{text:?}: {e}"),
            Ok(_) => None,
        };
        // CRLF, a BOM, the quote on the last line, in a multi-line record, in the header.
        assert_eq!(
            unclosed("\u{feff}image,label\r\na.png,cat\r\n\"b.png,dog\r\nc.png,x\r\n"),
            Some((3, 4))
        );
        assert_eq!(unclosed("image,label\na.png,\"cat"), Some((2, 2)));
        assert_eq!(unclosed("image,label\na.png,\"cat\n"), Some((2, 2)));
        assert_eq!(
            unclosed("image,label\n\"a\n.png\",\"c\"\"at\nb.png,dog\n"),
            Some((3, 4))
        );
        assert_eq!(unclosed("\"image,label\na.png,cat\n"), Some((1, 2)));
        assert_eq!(unclosed("\"\n"), Some((1, 1)));
        // Closed quotes, `""`, text after a closing quote, and quotes that do not
        // open a field (plain text) are fine.
        for fine in [
            "image,label\n\"a\n.png\",\"cat\"\n",
            "image,label\na.png,\"say \"\"hi\"\"\"\n",
            "image,label\na.png,\"big\" cat\n",
            "image,label\na.png,5\" screen\nb.png, \"x\n",
            "image,label\na.png,\"\"\n",
        ] {
            assert_eq!(unclosed(fine), None, "{fine:?}");
        }
        // The same verdict when the reader hands over one byte at a time.
        let err = read_labels_csv(OneByte(text.as_bytes()), &ColumnNames::default()).unwrap_err();
        assert!(
            matches!(err, CsvError::UnterminatedQuote { line: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn io_error_is_reported() {
        struct Failing;
        impl io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::PermissionDenied, "nope"))
            }
        }
        let err = read_labels_csv(Failing, &ColumnNames::default()).unwrap_err();
        assert!(matches!(err, CsvError::Io(_)));
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn large_input_crosses_buffer_boundaries() {
        let mut text = String::from("image,label\r\n");
        for i in 0..20_000 {
            if i % 7 == 0 {
                text.push_str("\r\n");
            }
            text.push_str(&format!("\"img\n{i}.png\",l{}\r\n", i % 5));
        }
        let csv = parse(&text);
        assert_eq!(csv.items.len(), 20_000);
        // Recompute the start lines independently.
        let mut line = 2;
        for (i, item) in csv.items.iter().enumerate() {
            if i % 7 == 0 {
                line += 1;
            }
            assert_eq!(item.line, line, "row {i}");
            line += 2;
        }
        assert_eq!(csv.labels.len(), 5);
    }

    #[test]
    fn relative_path_checks() {
        assert_eq!(
            check_relative_path("images/./a/../b.png").unwrap(),
            "images/b.png"
        );
        assert_eq!(check_relative_path("./a").unwrap(), "a");
        assert_eq!(check_relative_path("a\\b\\c.png").unwrap(), "a/b/c.png");
        assert_eq!(check_relative_path("a//b/").unwrap(), "a/b");
        assert_eq!(check_relative_path("a/../b/../c").unwrap(), "c");
        assert_eq!(check_relative_path("..a/b..").unwrap(), "..a/b..");
        let err = check_relative_path("a/../../x").unwrap_err();
        assert_eq!(
            err,
            PathError::EscapesDataDir {
                path: "a/../../x".into()
            }
        );
        assert_eq!(
            check_relative_path("../x.png").unwrap_err().to_string(),
            "image path \"../x.png\" points outside the data folder; \
             such paths are refused unless outside paths are allowed"
        );
        assert!(matches!(
            check_relative_path("..\\x"),
            Err(PathError::EscapesDataDir { .. })
        ));
        assert_eq!(check_relative_path(""), Err(PathError::Empty));
        assert_eq!(check_relative_path("./"), Err(PathError::Empty));
        assert_eq!(check_relative_path("a/.."), Err(PathError::Empty));
        for abs in ["C:\\x", "c:/x", "C:x", "/etc/passwd", "\\\\server\\share"] {
            assert!(
                matches!(check_relative_path(abs), Err(PathError::Absolute { .. })),
                "{abs}"
            );
        }
    }

    proptest! {
        /// The quote scan says "unclosed" exactly when csv reads what follows the
        /// text into a quoted field: a sentinel record appended after a line end
        /// then never starts a record of its own.
        #[test]
        fn the_quote_scan_agrees_with_csv(text in "(\u{feff})?[ab\",\r\n]{0,40}") {
            let mut scan = QuoteScan::default();
            scan.feed(text.as_bytes(), true);
            let with_sentinel = format!("{text}\nSENTINEL,z\n");
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(with_sentinel.as_bytes());
            let sentinel_read = rdr
                .byte_records()
                .any(|r| r.unwrap().get(0) == Some(&b"SENTINEL"[..]));
            prop_assert_eq!(scan.unclosed().is_some(), !sentinel_read);
        }

        #[test]
        fn written_rows_parse_back(
            rows in proptest::collection::vec(
                ("[ -~\n\r\"',é]{0,12}[a-z0-9]", "[ -~\n\"',é]{0,8}[a-z]"),
                1..40,
            ),
            crlf in any::<bool>(),
        ) {
            let mut w = csv::WriterBuilder::new()
                .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
                .from_writer(Vec::new());
            w.write_record(["image", "label"]).unwrap();
            for (image, label) in &rows {
                w.write_record([image, label]).unwrap();
            }
            let bytes = w.into_inner().unwrap();
            let text = String::from_utf8(bytes).unwrap();
            let csv = parse_labels_csv(&text, &ColumnNames::default()).unwrap();
            prop_assert_eq!(csv.items.len(), rows.len());
            // Start lines: count the newlines before each record in the written text.
            let mut expected_line = 2u64;
            for (i, ((image, label), item)) in rows.iter().zip(&csv.items).enumerate() {
                prop_assert_eq!(item.row, i);
                prop_assert_eq!(item.line, expected_line);
                prop_assert_eq!(item.image.as_str(), image.trim());
                prop_assert_eq!(&*item.label, label.trim());
                prop_assert_eq!(&item.defect, &None);
                expected_line += 1 + (image.matches('\n').count() + label.matches('\n').count()) as u64;
            }
            let labels = LabelSet::from_labels(rows.iter().map(|(_, l)| l.trim()));
            prop_assert_eq!(csv.labels, labels);
        }
    }

    #[test]
    fn rows_longer_than_the_header_are_defects_unless_the_extra_cells_are_empty() {
        let csv = parse_labels_csv(
            "image,label\ndata:image/png;base64,AAAA,3\na.png,cat,\nb.png,dog, \n",
            &ColumnNames::default(),
        )
        .unwrap();
        let defect = csv.items[0].defect.as_deref().unwrap();
        assert!(
            defect.starts_with("line 2:") && defect.contains("3 fields, the header 2"),
            "{defect}"
        );
        assert!(csv.items[1].defect.is_none());
        assert!(csv.items[2].defect.is_none());
        // Labels are shared, not copied per row.
        let again = parse_labels_csv(
            "image,label\na.png,cat\nb.png,cat\n",
            &ColumnNames::default(),
        )
        .unwrap();
        assert!(std::sync::Arc::ptr_eq(
            &again.items[0].label,
            &again.items[1].label
        ));
    }
}
