//! The labels CSV as a run reads it. A fresh live run streams it: one pass at
//! start counts its rows and labels, a second reads it a chunk at a time as the
//! run asks ([`shadow_core::Output::NeedRows`]), so that the run's memory does
//! not grow with the file. A resumed or batch-API run reads it whole: its
//! journals are checked against every row before anything is sent.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use shadow_core::input::{
    outline_labels_csv, read_labels_csv, ColumnNames, CsvError, CsvOutline, Item, LabelsCsv,
    LabelsReader,
};
use shadow_core::{Millis, Run, RunConfig};

type FileReader = LabelsReader<BufReader<File>>;

pub enum CsvRows {
    Whole(LabelsCsv),
    /// Boxed: the reader's buffers are large.
    Streamed(Box<RowFeed>),
}

/// A CSV read again as the run goes.
pub struct RowFeed {
    path: PathBuf,
    outline: CsvOutline,
    reader: FileReader,
}

impl CsvRows {
    /// Reads the CSV at `path` whole, or outlines it for streaming.
    pub fn open(path: &Path, columns: &ColumnNames, whole: bool) -> Result<CsvRows> {
        if whole {
            return read_csv(path, columns).map(CsvRows::Whole);
        }
        let outline = outline_labels_csv(open(path)?, columns).map_err(|e| csv_error(path, e))?;
        let reader = rows_of(path, columns)?;
        Ok(CsvRows::Streamed(Box::new(RowFeed {
            path: path.to_path_buf(),
            outline,
            reader,
        })))
    }

    /// Its counts and labels.
    pub fn outline(&self) -> CsvOutline {
        match self {
            CsvRows::Whole(csv) => csv.outline.clone(),
            CsvRows::Streamed(feed) => feed.outline.clone(),
        }
    }

    /// Every row, read again for a streamed CSV (for the built-in mock's answer
    /// key). A read error ends the rows: the run's own reading reports it.
    pub fn each_row(&self, columns: &ColumnNames) -> Result<Box<dyn Iterator<Item = Item> + '_>> {
        Ok(match self {
            CsvRows::Whole(csv) => Box::new(csv.items.iter().cloned()),
            CsvRows::Streamed(feed) => {
                let mut reader = rows_of(&feed.path, columns)?;
                Box::new(std::iter::from_fn(move || {
                    reader.next_item().ok().flatten()
                }))
            }
        })
    }

    /// The run over these rows, and what feeds it when it streams.
    pub fn into_run(self, config: RunConfig, now: Millis) -> Result<(Run, Option<RowFeed>)> {
        Ok(match self {
            CsvRows::Whole(csv) => (Run::new(config, csv, now)?, None),
            CsvRows::Streamed(feed) => (Run::streaming(config, &feed.outline, now)?, Some(*feed)),
        })
    }
}

impl RowFeed {
    /// Rows `from..from + count`, as the run asked. The file must still hold what
    /// the first pass found.
    pub fn read(&mut self, from: usize, count: usize) -> Result<Vec<Item>> {
        let mut rows = Vec::with_capacity(count);
        while rows.len() < count {
            let item = self
                .reader
                .next_item()
                .map_err(|e| csv_error(&self.path, e))?;
            let Some(item) = item else {
                bail!(self.changed(format!(
                    "it ended after {} rows, not {}",
                    from + rows.len(),
                    self.outline.rows
                )));
            };
            if item.defect.is_none() && self.outline.labels.index_of(&item.label).is_none() {
                bail!(self.changed(format!(
                    "line {} has the label {:?}, which it had not at start",
                    item.line, &*item.label
                )));
            }
            rows.push(item);
        }
        Ok(rows)
    }

    fn changed(&self, how: String) -> String {
        format!(
            "{} changed while the run read it ({how}); the results so far are kept: resume the run with --resume once the file is as it was",
            self.path.display()
        )
    }
}

/// The seeded sample of the CSV the run is made of (`--sample`, or the saved
/// run's), drawn from its rows read whole; kept in `config` for the journal
/// header. A resumed run over the whole CSV cannot become a sample: its journal
/// numbers the rows in file order.
pub fn sampled(
    rows: CsvRows,
    path: &Path,
    args: &crate::cli::RunArgs,
    config: &mut RunConfig,
    saved: Option<&crate::plan::SavedRun>,
) -> Result<CsvRows> {
    let CsvRows::Whole(csv) = rows else {
        bail!("a sample is drawn from the CSV read whole");
    };
    let saved_sample = saved.and_then(|s| s.config.sample.as_ref());
    let (csv, sample) = shadow_core::sample::Sample::for_run(
        csv,
        args.sample,
        args.stratify,
        config.seed,
        saved.is_some(),
        saved_sample,
        config.until_interval.is_some(),
    )
    .map_err(|e| match e {
        shadow_core::sample::RunSampleError::WholeRunResumed => {
            anyhow::anyhow!("--sample and --until-interval: {e}")
        }
        e => anyhow::anyhow!("{}: {e}", path.display()),
    })?;
    config.seed = sample.seed;
    config.sample = Some(sample);
    Ok(CsvRows::Whole(csv))
}

/// Reads the CSV at `path` whole.
pub fn read_csv(path: &Path, columns: &ColumnNames) -> Result<LabelsCsv> {
    read_labels_csv(open(path)?, columns).map_err(|e| csv_error(path, e))
}

fn rows_of(path: &Path, columns: &ColumnNames) -> Result<FileReader> {
    LabelsReader::open(open(path)?, columns).map_err(|e| csv_error(path, e))
}

fn open(path: &Path) -> Result<BufReader<File>> {
    let file =
        File::open(path).with_context(|| format!("cannot open the CSV {}", path.display()))?;
    Ok(BufReader::with_capacity(1 << 20, file))
}

fn csv_error(path: &Path, e: CsvError) -> anyhow::Error {
    let step = crate::next_step::for_csv(&e);
    anyhow::Error::new(e).context(format!("{}{step}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(text: &str) -> (tempfile::TempDir, PathBuf, RowFeed) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.csv");
        std::fs::write(&path, text).unwrap();
        let CsvRows::Streamed(feed) = CsvRows::open(&path, &ColumnNames::default(), false).unwrap()
        else {
            panic!("a fresh run streams")
        };
        (dir, path, *feed)
    }

    #[test]
    fn rows_come_in_order_with_their_lines() {
        let (_dir, _, mut feed) = streamed("image,label\na.png,cat\n\nb.png,dog\nc.png,cat\n");
        assert_eq!(feed.outline.rows, 3);
        let first = feed.read(0, 2).unwrap();
        assert_eq!(
            first.iter().map(|i| (i.row, i.line)).collect::<Vec<_>>(),
            [(0, 2), (1, 4)]
        );
        assert_eq!(feed.read(2, 1).unwrap()[0].image.as_str(), "c.png");
    }

    /// The file is read twice: cut short or given a new label in between (past
    /// what the reader holds in its buffers), the run stops with an error naming
    /// the file and what changed, not a run that waits for rows forever or
    /// judges a label it never offered the model.
    #[test]
    fn a_csv_that_changes_while_the_run_reads_it_is_an_error_naming_it() {
        const ROWS: usize = 150_000; // 2.7 MB: more than the buffers
        let text = |bird_at: Option<usize>, rows: usize| {
            let mut t = String::from("image,label\n");
            for i in 0..rows {
                let label = if Some(i) == bird_at { "bird" } else { "cat" };
                t.push_str(&format!("image-{i:06}.png,{label}\n"));
            }
            t
        };
        let (_dir, path, mut feed) = streamed(&text(None, ROWS));
        std::fs::write(&path, text(None, 1_000)).unwrap();
        let err = feed.read(0, ROWS).unwrap_err().to_string();
        assert!(
            err.contains("labels.csv changed while the run read it"),
            "{err}"
        );
        assert!(err.contains(&format!("rows, not {ROWS}")), "{err}");

        let (_dir, path, mut feed) = streamed(&text(None, ROWS));
        std::fs::write(&path, text(Some(ROWS - 10), ROWS)).unwrap();
        let err = feed.read(0, ROWS).unwrap_err().to_string();
        let line = ROWS - 10 + 2;
        assert!(
            err.contains(&format!("line {line} has the label \"bird\"")),
            "{err}"
        );
    }
}
