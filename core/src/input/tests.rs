use super::lines::QuoteScan;
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
            assert_eq!(csv.outline.image_column, *image);
            assert_eq!(csv.outline.label_column, *label);
            assert_eq!(summary(&csv), [(2, "a.png".into(), "cat".into(), false)]);
        }
    }
    for id in ID_COLUMN_NAMES {
        let csv = parse(&format!("{id},image,label\nx1,a.png,cat\n"));
        assert_eq!(csv.outline.id_column.as_deref(), Some(*id));
        assert_eq!(csv.items[0].id.as_deref(), Some("x1"));
    }
}

#[test]
fn headers_are_normalised_and_priority_holds() {
    let csv = parse(" Image Path ,Expected-,CLASS\na.png,x,cat\n");
    assert_eq!(csv.outline.image_column, "Image Path");
    assert_eq!(csv.outline.label_column, "CLASS");
    let csv = parse("Image-URL,url,label\nu1,u2,cat\n");
    assert_eq!(
        csv.outline.image_column, "url",
        "url comes before image_url"
    );
    assert_eq!(csv.items[0].image.as_str(), "u2");
    let csv = parse("category,label,file\na,b,c.png\n");
    assert_eq!(csv.outline.label_column, "label");
    assert_eq!(&*csv.items[0].label, "b");
}

#[test]
fn bom_and_crlf() {
    let text = "\u{feff}image,label\r\na.png,cat\r\n\r\nb.png,dog\r\n";
    let csv = parse(text);
    assert_eq!(csv.outline.image_column, "image");
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
    assert_eq!(csv.outline.image_column, "image");
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
    assert_eq!(csv.outline.image_column, "image");
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
    assert_eq!(csv.outline.image_column, "image");
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
    assert_eq!(csv.outline.defects, 5);
    // "dog" only appears on defect rows before the last one; "caf\xe9" never counts.
    assert_eq!(csv.outline.labels.names(), ["cat", "dog"]);
    let only_defect_label = parse("image,label\n,zebra\na.png,cat\n");
    assert_eq!(only_defect_label.outline.labels.names(), ["cat"]);
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
    assert_eq!(csv.outline.image_column, "photo-file");
    assert_eq!(csv.outline.label_column, "truth");
    assert_eq!(csv.outline.id_column.as_deref(), Some("key"));
    assert_eq!(csv.items[0].id.as_deref(), Some("k1"));
    assert_eq!(csv.items[1].id, None);
    assert_eq!(csv.outline.labels.names(), ["cat", "dog"]);

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
    assert_eq!(csv.outline.labels.len(), 5);
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
        let csv = parse(&text);
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
        prop_assert_eq!(csv.outline.labels, labels);
    }
}

#[test]
fn rows_longer_than_the_header_are_defects_unless_the_extra_cells_are_empty() {
    let csv = parse("image,label\ndata:image/png;base64,AAAA,3\na.png,cat,\nb.png,dog, \n");
    let defect = csv.items[0].defect.as_deref().unwrap();
    assert!(
        defect.starts_with("line 2:") && defect.contains("3 fields, the header 2"),
        "{defect}"
    );
    assert!(csv.items[1].defect.is_none());
    assert!(csv.items[2].defect.is_none());
    // Labels are shared, not copied per row.
    let again = parse("image,label\na.png,cat\nb.png,cat\n");
    assert!(std::sync::Arc::ptr_eq(
        &again.items[0].label,
        &again.items[1].label
    ));
}

/// Every column that is not the image, label or id is kept per row, in file
/// order, for slicing; a missing cell is empty, a nameless header is named by
/// its position.
#[test]
fn other_columns_are_kept_per_row_in_file_order() {
    let csv = parse("site,image,id, ,label\nnorth, a.png ,1,x,cat\nsouth,b.png,2\n");
    assert_eq!(csv.outline.extra_columns, ["site", "column 4"]);
    let extra: Vec<Vec<&str>> = csv
        .items
        .iter()
        .map(|i| i.extra.iter().map(|v| &**v).collect())
        .collect();
    assert_eq!(extra, [vec!["north", "x"], vec!["south", ""]]);
    assert_eq!(csv.outline.rows, 2);
    assert!(parse("image,label\na.png,cat\n")
        .outline
        .extra_columns
        .is_empty());
}
