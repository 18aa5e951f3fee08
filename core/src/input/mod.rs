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
    /// The row's other columns (not image, label or id), trimmed, in the order of
    /// [`LabelsCsv::extra_columns`]; a missing cell is empty. What a run is
    /// sliced by ([`crate::eval::slices`]).
    pub extra: Box<[Box<str>]>,
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
    /// Its counts, labels and columns.
    pub outline: CsvOutline,
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

/// Reads a labels CSV from `reader` whole (memory: the items, plus a fixed buffer).
/// [`LabelsReader`] reads it a row at a time instead.
///
/// # Errors
///
/// As [`LabelsReader::open`] and [`LabelsReader::next_item`], and
/// [`CsvError::NoRows`] when the file has a header and no row.
pub fn read_labels_csv<R: io::Read>(
    reader: R,
    columns: &ColumnNames,
) -> Result<LabelsCsv, CsvError> {
    let mut rows = LabelsReader::open(reader, columns)?;
    let mut items = Vec::new();
    while let Some(item) = rows.next_item()? {
        items.push(item);
    }
    let outline = rows.finish()?;
    Ok(LabelsCsv { items, outline })
}

/// Reads a labels CSV through once without keeping its rows: how many there are,
/// their labels, the columns. A run fed its rows as it goes
/// ([`crate::Run::streaming`]) starts from it, then reads the file again with a
/// [`LabelsReader`].
///
/// # Errors
///
/// As [`read_labels_csv`].
pub fn outline_labels_csv<R: io::Read>(
    reader: R,
    columns: &ColumnNames,
) -> Result<CsvOutline, CsvError> {
    let mut rows = LabelsReader::open(reader, columns)?;
    while rows.next_item()?.is_some() {}
    rows.finish()
}

/// What a labels CSV holds, without its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOutline {
    /// Number of data rows, defect rows included.
    pub rows: usize,
    /// Rows with a defect.
    pub defects: usize,
    /// The distinct labels of the rows without defect.
    pub labels: LabelSet,
    /// The image column's header, as the file wrote it (trimmed).
    pub image_column: String,
    /// The label column's header, as the file wrote it (trimmed).
    pub label_column: String,
    /// The id column's header, when there is one.
    pub id_column: Option<String>,
    /// The other columns' headers, in file order.
    pub extra_columns: Vec<String>,
}

/// A labels CSV read one row at a time, streaming (memory: a fixed buffer and the
/// distinct labels).
///
/// The first non-blank record is the header. Records whose cells are all empty or
/// whitespace (blank lines, `,,`) are skipped and are not rows. Rows may be shorter
/// or longer than the header. Cells are trimmed.
pub struct LabelsReader<R: io::Read> {
    rdr: csv::Reader<LineTap<R>>,
    record: csv::ByteRecord,
    tracker: LineTracker,
    cols: Columns,
    header_line: u64,
    rows: usize,
    defects: usize,
    /// Every distinct label once (defect rows' too), and those of usable rows.
    interned: HashSet<Arc<str>>,
    seen: HashSet<Arc<str>>,
}

impl<R: io::Read> LabelsReader<R> {
    /// Reads the header and finds the columns.
    ///
    /// # Errors
    ///
    /// [`CsvError`] when there is no header, no image or label column, a named
    /// column is missing, a quoted field is never closed, or reading fails.
    pub fn open(reader: R, columns: &ColumnNames) -> Result<LabelsReader<R>, CsvError> {
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

        let resolve = |explicit: &Option<String>, role, candidates: &[&str]| {
            resolve_column(&headers, &normalized, explicit.as_deref(), role, candidates)
        };
        let found = || headers.clone();
        let image = resolve(&columns.image, ColumnRole::Image, IMAGE_COLUMN_NAMES)?
            .ok_or_else(|| CsvError::NoImageColumn { found: found() })?;
        let label = resolve(&columns.label, ColumnRole::Label, LABEL_COLUMN_NAMES)?
            .ok_or_else(|| CsvError::NoLabelColumn { found: found() })?;
        let id = resolve(&columns.id, ColumnRole::Id, ID_COLUMN_NAMES)?;
        let extra: Vec<usize> = (0..headers.len())
            .filter(|&c| c != image && c != label && Some(c) != id)
            .collect();
        let cols = Columns {
            extra_names: extra
                .iter()
                .map(|&c| match headers[c].as_str() {
                    "" => format!("column {}", c + 1),
                    name => name.to_owned(),
                })
                .collect(),
            extra,
            image,
            label,
            id,
            image_name: headers[image].clone(),
            label_name: headers[label].clone(),
            id_name: id.map(|i| headers[i].clone()),
            header_len: headers.len(),
        };
        Ok(LabelsReader {
            rdr,
            record,
            tracker,
            cols,
            header_line,
            rows: 0,
            defects: 0,
            interned: HashSet::new(),
            seen: HashSet::new(),
        })
    }

    /// The next data row, `None` at the end of the file. A bad row is an item with
    /// a defect, never an error.
    ///
    /// # Errors
    ///
    /// [`CsvError`] when a quoted field is never closed, or reading fails.
    pub fn next_item(&mut self) -> Result<Option<Item>, CsvError> {
        loop {
            self.tracker.start(&self.rdr);
            if !read_record(&mut self.rdr, &mut self.record)? {
                self.rdr.get_ref().check_quotes()?;
                return Ok(None);
            }
            let line = self.tracker.record_read(&self.rdr);
            if is_blank(&self.record) {
                continue;
            }
            let item = self
                .cols
                .item(&self.record, self.rows, line, &mut self.interned);
            self.rows += 1;
            if item.defect.is_some() {
                self.defects += 1;
            } else if !self.seen.contains(&*item.label) {
                self.seen.insert(item.label.clone());
            }
            return Ok(Some(item));
        }
    }

    /// What the rows read so far held; call it after [`Self::next_item`] gave `None`.
    ///
    /// # Errors
    ///
    /// [`CsvError::NoRows`] when no row was read.
    pub fn finish(self) -> Result<CsvOutline, CsvError> {
        if self.rows == 0 {
            return Err(CsvError::NoRows {
                header_line: self.header_line,
            });
        }
        Ok(CsvOutline {
            rows: self.rows,
            defects: self.defects,
            labels: LabelSet::from_labels(self.seen.iter().map(|l| l.to_string())),
            image_column: self.cols.image_name,
            label_column: self.cols.label_name,
            id_column: self.cols.id_name,
            extra_columns: self.cols.extra_names,
        })
    }
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
struct Columns {
    image: usize,
    label: usize,
    id: Option<usize>,
    image_name: String,
    label_name: String,
    id_name: Option<String>,
    /// The other columns, and their names.
    extra: Vec<usize>,
    extra_names: Vec<String>,
    header_len: usize,
}

/// A cell's state.
enum Cell<'a> {
    Ok(&'a str),
    Missing,
    NotUtf8,
}

impl Columns {
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
            (&image, "image", self.image_name.as_str()),
            (&label, "label", self.label_name.as_str()),
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
            extra: self
                .extra
                .iter()
                .map(|&c| {
                    let bytes = record.get(c).unwrap_or_default().trim_ascii();
                    String::from_utf8_lossy(bytes).trim().into()
                })
                .collect(),
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

mod lines;
mod path;
use lines::{LineTap, LineTracker};
pub use path::{check_relative_path, PathError};

#[cfg(test)]
mod tests;
