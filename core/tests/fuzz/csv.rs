//! Target `csv`: the labels CSV reader (`read_labels_csv`, `parse_labels_csv`).

use std::io;

use proptest::collection::vec;
use proptest::prelude::*;
use shadow_core::input::{
    parse_labels_csv, read_labels_csv, ColumnNames, CsvError, LabelsCsv, ID_COLUMN_NAMES,
    IMAGE_COLUMN_NAMES, LABEL_COLUMN_NAMES,
};

use crate::corpus::{self, Bytes};

const TARGET: &str = "csv";

/// A reader that hands the bytes over in pieces of the given sizes (cycled), as a
/// pipe or a slow disk would.
struct Pieces<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    next: usize,
}

impl io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Checks everything that must hold of one input, whatever it is.
fn check(input: &[u8], columns: &ColumnNames, sizes: &[usize]) -> Result<(), TestCaseError> {
    let whole = read_labels_csv(input, columns);
    let pieces = read_labels_csv(
        Pieces {
            data: input,
            sizes,
            next: 0,
        },
        columns,
    );
    // The way the bytes arrive changes nothing.
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
        _ => prop_assert!(false, "whole: {:?}, in pieces: {:?}", whole, pieces),
    }
    if let Ok(text) = std::str::from_utf8(input) {
        let parsed = parse_labels_csv(text, columns);
        prop_assert_eq!(
            format!("{whole:?}"),
            format!("{parsed:?}"),
            "read and parse differ"
        );
    }
    match whole {
        Ok(csv) => check_parsed(input, &csv)?,
        Err(e) => {
            // An in-memory reader never fails, so no error may claim it did.
            prop_assert!(!matches!(e, CsvError::Io(_)), "{}", e);
            crate::check_error_size(&e, input, 12)?;
        }
    }
    Ok(())
}

fn check_parsed(input: &[u8], csv: &LabelsCsv) -> Result<(), TestCaseError> {
    // A record after the header starts after a line end: `\n`, `\r` or both.
    let line_ends = input.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
    prop_assert!(
        csv.items.len() <= line_ends,
        "{} rows from {} line ends",
        csv.items.len(),
        line_ends
    );
    // Lines are counted by `\n`: a file whose lines end in a lone `\r` (old Mac
    // style) has its rows numbered by the `\n`s only, so they may share a number.
    let lone_cr = input
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\r' && input.get(i + 1) != Some(&b'\n'));
    let mut text_bytes = 0;
    let mut last_line = 1;
    for (i, item) in csv.items.iter().enumerate() {
        prop_assert_eq!(item.row, i);
        let after = if lone_cr {
            item.line >= last_line
        } else {
            item.line > last_line
        };
        prop_assert!(
            after && item.line <= line_ends as u64 + 1,
            "row {} starts on line {} after line {}",
            i,
            item.line,
            last_line
        );
        last_line = item.line;
        text_bytes +=
            item.image.as_str().len() + item.label.len() + item.id.as_deref().map_or(0, str::len);
        match &item.defect {
            None => {
                let (image, label) = (item.image.as_str(), &*item.label);
                prop_assert!(!image.is_empty() && image.trim() == image, "{:?}", item);
                prop_assert!(!label.is_empty() && label.trim() == label, "{:?}", item);
                prop_assert!(csv.outline.labels.index_of(label).is_some(), "{:?}", item);
            }
            Some(defect) => {
                let prefix = format!("line {}: ", item.line);
                prop_assert!(defect.starts_with(&prefix), "{:?}", defect);
                let names = csv.outline.image_column.len() + csv.outline.label_column.len();
                prop_assert!(
                    defect.len() <= 512 + 12 * names,
                    "defect message of {} bytes",
                    defect.len()
                );
            }
        }
    }
    // Cells are pieces of the input (U+FFFD for a bad byte of an id: 3 bytes for 1).
    prop_assert!(
        text_bytes <= 3 * input.len(),
        "{} bytes of cell text from {} bytes",
        text_bytes,
        input.len()
    );
    // The label set: sorted, distinct, and exactly the labels of usable rows.
    let names = csv.outline.labels.names();
    prop_assert!(names.windows(2).all(|w| w[0] < w[1]), "{:?}", names);
    for name in names {
        prop_assert!(
            csv.items
                .iter()
                .any(|i| i.defect.is_none() && &*i.label == name),
            "label {:?} of no usable row",
            name
        );
    }
    Ok(())
}

/// One of `names` as a header may spell it: as is, or in capitals with spaces,
/// or with hyphens, padded.
fn spelled(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(names).prop_map(str::to_owned),
        1 => (prop::sample::select(names), " {0,2}", " {0,2}", any::<bool>()).prop_map(
            |(name, before, after, upper)| {
                let name = name.replace('_', if upper { " " } else { "-" });
                let name = if upper { name.to_uppercase() } else { name };
                format!("{before}{name}{after}")
            }
        ),
    ]
}

/// A header: an image and a label column (each missing now and then) among
/// other columns, an id column maybe.
fn header() -> impl Strategy<Value = Vec<String>> {
    let other = prop_oneof![
        2 => spelled(ID_COLUMN_NAMES),
        1 => spelled(IMAGE_COLUMN_NAMES),
        1 => spelled(LABEL_COLUMN_NAMES),
        2 => "[a-zA-Z _-]{0,10}",
    ];
    (
        spelled(IMAGE_COLUMN_NAMES),
        spelled(LABEL_COLUMN_NAMES),
        vec(other, 0..3),
        any::<usize>(),
        any::<usize>(),
        0u8..16,
    )
        .prop_map(|(image, label, mut header, i, j, drop)| {
            if drop != 0 {
                header.insert(i % (header.len() + 1), image);
            }
            if drop != 1 {
                header.insert(j % (header.len() + 1), label);
            }
            header
        })
}

/// A data cell, as it appears in the file (quoted or not).
fn cell() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => "[a-z0-9./_-]{1,12}".prop_map(String::into_bytes),
        2 => Just(Vec::new()),
        1 => " {1,3}".prop_map(String::into_bytes),
        // Quoted, with separators, quotes (doubled) and line breaks inside.
        3 => "[a-z ,\"\r\n]{0,12}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\"")).into_bytes()),
        1 => "https?://[a-z.]{1,8}/[a-z]{1,6}\\.png".prop_map(String::into_bytes),
        1 => "data:image/png;base64,[A-Za-z0-9+/]{0,16}".prop_map(String::into_bytes),
        1 => "(\\.\\./|/|[A-Z]:\\\\)[a-z]{1,6}".prop_map(String::into_bytes),
        // Not UTF-8.
        1 => vec(any::<u8>(), 1..6),
        // A stray quote inside an unquoted cell, or one that is never closed.
        1 => "[a-z]{0,3}\"[a-z]{0,3}".prop_map(String::into_bytes),
        1 => "\"[a-z,\n]{0,8}".prop_map(String::into_bytes),
        // Control characters and escape sequences a console would interpret.
        1 => "[a-z]{0,3}[\u{0}-\u{1f}\u{7f}\u{1b}][a-z\\[0-9;m]{0,4}".prop_map(String::into_bytes),
    ]
}

fn line_end() -> impl Strategy<Value = &'static [u8]> {
    prop::sample::select(vec![&b"\n"[..], b"\r\n", b"\r", b"\n\n", b"\r\n   \r\n"])
}

/// A file shaped like a labels CSV: optional BOM and blank lines, a header, rows of
/// varying width, varied line ends, and sometimes no final line end.
fn structured() -> impl Strategy<Value = Bytes> {
    (
        any::<bool>(),
        vec(line_end(), 0..2),
        header(),
        vec((vec(cell(), 0..6), line_end()), 0..24),
        any::<bool>(),
        line_end(),
    )
        .prop_map(|(bom, blank, header, rows, final_end, header_end)| {
            let mut out = Vec::new();
            if bom {
                out.extend_from_slice("\u{feff}".as_bytes());
            }
            for end in blank {
                out.extend_from_slice(end);
            }
            out.extend_from_slice(header.join(",").as_bytes());
            out.extend_from_slice(header_end);
            let last = rows.len();
            for (i, (cells, end)) in rows.into_iter().enumerate() {
                out.extend_from_slice(&cells.join(&b","[..]));
                if i + 1 < last || final_end {
                    out.extend_from_slice(end);
                }
            }
            Bytes(out)
        })
}

fn input() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        2 => corpus::noise(),
        4 => structured(),
        4 => corpus::mutated(TARGET),
    ]
}

/// Mostly the common names; sometimes a column named explicitly (maybe absent).
fn columns() -> impl Strategy<Value = ColumnNames> {
    let name = prop::option::of(prop_oneof![
        Just("image".to_owned()),
        Just("Label".to_owned()),
        Just(" file name ".to_owned()),
        Just("id".to_owned()),
        "[a-z]{1,6}",
    ]);
    prop_oneof![
        4 => Just(ColumnNames::default()),
        1 => (name.clone(), name.clone(), name).prop_map(|(image, label, id)| ColumnNames { image, label, id }),
    ]
}

fn read_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(1usize..100, 1..6)
}

#[test]
fn seeds_as_they_are() {
    for (name, seed) in corpus::seeds(TARGET) {
        for sizes in [&[1][..], &[7, 1, 64 * 1024]] {
            if let Err(e) = check(&seed.0, &ColumnNames::default(), sizes) {
                panic!("seed {name}: {e}");
            }
        }
    }
}

proptest! {
    #![proptest_config(crate::config(2000))]

    #[test]
    fn any_input_is_read_or_refused(input in input(), columns in columns(), sizes in read_sizes()) {
        check(&input.0, &columns, &sizes)?;
    }
}
