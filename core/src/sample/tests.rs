use super::*;
use crate::input::{parse_labels_csv, ColumnNames};

fn csv(rows: usize) -> LabelsCsv {
    let mut text = String::from("image,label\n");
    for i in 0..rows {
        text.push_str(&format!("img{i}.png,{}\n", ["cat", "dog", "fox"][i % 3]));
    }
    parse_labels_csv(&text, &ColumnNames::default()).unwrap()
}

#[test]
fn the_order_is_a_permutation_fixed_by_the_seed() {
    let a = order(300, 7);
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..300).collect::<Vec<_>>());
    assert_eq!(a, order(300, 7));
    assert_ne!(a, order(300, 8));
    assert_ne!(a, (0..300).collect::<Vec<_>>());
}

#[test]
fn each_row_is_equally_likely_at_the_front() {
    // 30,000 seeds, 10 rows: each row first ~3,000 times; a 5-sigma band.
    let mut first = [0u32; 10];
    for seed in 0..30_000 {
        first[order(10, seed)[0]] += 1;
    }
    for count in first {
        assert!((2_740..=3_260).contains(&count), "{first:?}");
    }
}

#[test]
fn a_sample_keeps_csv_lines_and_a_larger_one_only_adds_rows() {
    let whole = csv(300);
    let small = Sample::draw(&whole, 42, 100, false, None).unwrap();
    let taken = small.take(whole.clone());
    assert_eq!(taken.items.len(), 100);
    assert_eq!(taken.outline.rows, 100);
    let permutation = order(300, 42);
    for (i, item) in taken.items.iter().enumerate() {
        assert_eq!(item.row, i);
        // Line 1 is the header: row r is on line r + 2.
        assert_eq!(item.line as usize, permutation[i] + 2);
        assert_eq!(item.image.as_str(), format!("img{}.png", permutation[i]));
    }
    let larger = Sample::draw(&whole, 99, 150, false, Some(&small)).unwrap();
    assert_eq!(larger.seed, 42, "a resumed sample keeps its seed");
    let more = larger.take(whole.clone());
    assert_eq!(more.items[..100], taken.items[..]);
    assert_eq!(
        Sample::draw(&whole, 42, 50, false, Some(&small)),
        Err(SampleError::Smaller {
            asked: 50,
            saved: 100
        })
    );
}

#[test]
fn a_changed_csv_or_a_size_too_large_is_refused() {
    let whole = csv(300);
    let saved = Sample::draw(&whole, 1, 10, false, None).unwrap();
    assert!(matches!(
        Sample::draw(&csv(301), 1, 10, false, Some(&saved)),
        Err(SampleError::RowCountChanged {
            saved: 300,
            now: 301
        })
    ));
    let mut edited = whole.clone();
    edited.items[5].label = "dog".into();
    let err = Sample::draw(&edited, 1, 10, false, Some(&saved)).unwrap_err();
    assert!(
        matches!(err, SampleError::ContentChanged { rows: 300, .. }),
        "{err}"
    );
    assert_eq!(
        SampleSize::Rows(301).rows_of(300),
        Err(SampleError::LargerThanCsv {
            asked: 301,
            csv_rows: 300
        })
    );
    assert_eq!(SampleSize::Share(0.1).rows_of(300), Ok(30));
    assert_eq!(SampleSize::Share(0.001).rows_of(300), Ok(1));
    for bad in ["0", "0.0", "1.5", "-3", "abc", "2.5"] {
        assert!(SampleSize::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(SampleSize::parse("5000"), Ok(SampleSize::Rows(5000)));
    assert_eq!(SampleSize::parse("0.1"), Ok(SampleSize::Share(0.1)));
    assert_eq!(SampleSize::parse("1.0"), Ok(SampleSize::Share(1.0)));
}

/// Against statsmodels 0.14, the script in [`finite_population_interval`]'s doc:
/// (90, 100, 300) -> [0.8415, 0.9385]; (900, 1000, 1e6) -> [0.8799, 0.9171];
/// (45, 50, 60) -> [0.8605, 0.9293].
#[test]
fn the_finite_population_interval_matches_statsmodels() {
    let at = |k, n, big| finite_population_interval(k, n, big).unwrap();
    let i = at(90, 100, 300);
    assert_eq!((i.low, i.high), (0.8415, 0.9385));
    let i = at(900, 1000, 1_000_000);
    assert_eq!((i.low, i.high), (0.8799, 0.9171));
    let i = at(45, 50, 60);
    assert_eq!((i.low, i.high), (0.8605, 0.9293));
    let i = at(45, 50, 50);
    assert_eq!((i.low, i.high), (0.9, 0.9));
    assert_eq!(finite_population_interval(0, 0, 10), None);
}
