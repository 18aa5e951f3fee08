//! What is refused once the CSV is read and before anything is started or sent
//! (as the page's preflight does): a gate naming a label no row has, and a CSV
//! whose images all lie outside its folder, which would fail every row before
//! any request and end "completed with failures" having sent nothing useful.

use anyhow::{bail, Result};
use shadow_core::input::ColumnNames;
use shadow_core::report::escape_for_terminal;
use shadow_core::RunConfig;

use crate::csv_rows::CsvRows;
use crate::images::ImageLoader;

/// Rows whose image files are checked: when all of them resolve outside the data
/// folder, the run is refused. A bounded prefix, so that a run of millions of
/// rows starts at once (each check costs a system call or two, no image read).
pub const OUTSIDE_PREFIX: usize = 100;

/// Refuses the run when its gate names a label the CSV lacks, or when the first
/// [`OUTSIDE_PREFIX`] rows with an image (every such row, in a smaller CSV) all
/// have one that resolves outside the data folder.
pub fn check(
    config: &RunConfig,
    csv: &CsvRows,
    columns: &ColumnNames,
    images: &ImageLoader,
) -> Result<()> {
    let outline = csv.outline();
    if let Some(why) = shadow_core::gate::unknown_labels(&config.gate, outline.labels.names()) {
        bail!("--require: {}", escape_for_terminal(&why));
    }
    let usable = csv.each_row(columns)?.filter(|i| i.defect.is_none());
    let mut outside = Vec::new();
    for item in usable.take(OUTSIDE_PREFIX) {
        match images.outside(&item) {
            Some(why) => outside.push(why),
            None => return Ok(()),
        }
    }
    let Some(example) = outside.first() else {
        return Ok(());
    };
    let n = outside.len();
    let rows = match (n == outline.rows - outline.defects, n) {
        (true, 1) => "the image of the CSV's one row resolves".to_string(),
        (true, _) => format!("the images of all {n} rows resolve"),
        (false, _) => format!("the images of the first {n} rows resolve"),
    };
    bail!(
        "{rows} outside the CSV's folder {} (e.g. {}), where images are read only when allowed: every row would fail before any request. Pass --allow-outside-data-dir to read them there, or put the images themselves (not a link to them) in the CSV's folder",
        escape_for_terminal(&images.data_folder().display().to_string()),
        escape_for_terminal(example)
    )
}

#[cfg(all(test, unix))]
mod tests {
    use std::path::Path;

    use shadow_core::input::{parse_labels_csv, ColumnNames};

    use super::*;

    fn check_csv(dir: &Path, allow: bool, gate: &[&str], csv: &str) -> Result<()> {
        let csv = CsvRows::Whole(parse_labels_csv(csv, &ColumnNames::default()).unwrap());
        let config = RunConfig {
            gate: gate.iter().map(|r| r.parse().unwrap()).collect(),
            ..RunConfig::default()
        };
        let columns = ColumnNames::default();
        check(
            &config,
            &csv,
            &columns,
            &ImageLoader::new(dir, allow).unwrap(),
        )
    }

    fn rows(n: usize, image: impl Fn(usize) -> String) -> String {
        let mut csv = String::from("image,label\n");
        for i in 0..n {
            csv.push_str(&format!("{},cat\n", image(i)));
        }
        csv
    }

    /// An `images` folder that is a symlink out of the CSV's folder fails every
    /// row: refused at the start, naming the flag; with the flag, or with one row
    /// whose image lies inside among the first hundred, the run goes on.
    #[test]
    fn images_that_all_resolve_outside_the_data_folder_are_refused_at_the_start() {
        let elsewhere = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir(elsewhere.path().join("images")).unwrap();
        std::fs::create_dir(data.path().join("inside")).unwrap();
        for i in 0..150 {
            std::fs::write(elsewhere.path().join(format!("images/{i}.png")), b"x").unwrap();
        }
        std::fs::write(data.path().join("inside/0.png"), b"x").unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("images"), data.path().join("images"))
            .unwrap();

        let check = |allow: bool, csv: String| check_csv(data.path(), allow, &[], &csv);
        let refusal = |csv: String| check(false, csv).unwrap_err().to_string();
        let err = refusal(rows(150, |i| format!("images/{i}.png")));
        assert!(
            err.starts_with("the images of the first 100 rows resolve outside the CSV's folder"),
            "{err}"
        );
        assert!(err.contains("--allow-outside-data-dir"), "{err}");
        assert!(err.contains("(e.g. images/0.png resolves to "), "{err}");
        let err = refusal(rows(3, |i| format!("images/{i}.png")));
        assert!(
            err.starts_with("the images of all 3 rows resolve outside"),
            "{err}"
        );
        // `..` and absolute paths elsewhere fail the same way.
        let out = elsewhere.path().display().to_string();
        let err = refusal(rows(2, |i| format!("../x/{i}.png")));
        assert!(err.contains("--allow-outside-data-dir"), "{err}");
        assert!(check(false, rows(2, |i| format!("{out}/images/{i}.png"))).is_err());

        // Allowed, or one image inside among the first hundred: not refused.
        assert!(check(true, rows(150, |i| format!("images/{i}.png"))).is_ok());
        let mixed = rows(150, |i| {
            if i == 99 {
                "inside/0.png".into()
            } else {
                format!("images/{i}.png")
            }
        });
        assert!(check(false, mixed).is_ok());
        // A URL, or a missing file (which fails its row in its own words): not
        // counted as outside.
        let url = rows(3, |i| {
            if i == 2 {
                "https://x.test/a.png".into()
            } else {
                format!("images/{i}.png")
            }
        });
        assert!(check(false, url).is_ok());
        assert!(check(false, rows(3, |i| format!("missing/{i}.png"))).is_ok());
    }

    #[test]
    fn a_gate_naming_a_label_no_row_has_is_refused_at_the_start() {
        let data = tempfile::tempdir().unwrap();
        let csv = "image,label\nhttps://x.test/a.png,cat\nhttps://x.test/b.png,dog\n";
        assert!(check_csv(data.path(), false, &["recall[cat] >= 0.5"], csv).is_ok());
        let err = check_csv(data.path(), false, &["recall[cow] >= 0.5"], csv)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--require: no row of the CSV has the label `cow` (in `recall[cow] >= 0.5`); its labels: cat, dog"
        );
    }
}
