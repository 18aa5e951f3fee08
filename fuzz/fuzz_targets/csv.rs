//! The labels CSV reader (seeds: core/tests/fuzz-corpus/csv). The properties are
//! those of core/tests/fuzz/csv.rs, cut to what is cheap.
#![no_main]

use std::io;

use libfuzzer_sys::fuzz_target;
use shadow_core::input::{read_labels_csv, ColumnNames, CsvError};

/// Hands the bytes over in pieces of 1 to 7 bytes, as a pipe might.
struct Pieces<'a>(&'a [u8], usize);

impl io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 = self.1 % 7 + 1;
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let columns = ColumnNames::default();
    let whole = read_labels_csv(data, &columns);
    let pieces = read_labels_csv(Pieces(data, 0), &columns);
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("whole: {whole:?}, in pieces: {pieces:?}"),
    }
    match whole {
        Ok(csv) => {
            let line_ends = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
            assert!(csv.items.len() <= line_ends);
            for (i, item) in csv.items.iter().enumerate() {
                assert_eq!(item.row, i);
                if let Some(defect) = &item.defect {
                    assert!(defect.starts_with(&format!("line {}: ", item.line)));
                }
            }
        }
        Err(e) => assert!(!matches!(e, CsvError::Io(_)), "{e}"),
    }
});
