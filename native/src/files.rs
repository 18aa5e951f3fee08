//! The run's files: their names, the atomically replaced progress file, and the
//! append-only results journal.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use shadow_core::journal::ItemResult;
use shadow_core::run_files::{
    progress_file_name, provider_file_name, report_file_name, results_file_name,
    run_id_of_file_name, summary_file_name, PREFIX,
};

/// Where one run's files live.
#[derive(Clone, Debug)]
pub struct RunFiles {
    pub run_id: String,
    pub progress: PathBuf,
    pub summary: PathBuf,
    pub results: PathBuf,
    /// The self-contained HTML report.
    pub report: PathBuf,
    /// The provider journal of a batch-API run.
    pub provider: PathBuf,
}

impl RunFiles {
    pub fn new(dir: &Path, run_id: &str) -> RunFiles {
        RunFiles {
            run_id: run_id.to_string(),
            progress: dir.join(progress_file_name(run_id)),
            summary: dir.join(summary_file_name(run_id)),
            results: dir.join(results_file_name(run_id)),
            report: dir.join(report_file_name(run_id)),
            provider: dir.join(provider_file_name(run_id)),
        }
    }

    /// The files of the run that `file` (any of its three) belongs to.
    pub fn of_existing(file: &Path) -> Result<RunFiles> {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: not a file name", file.display()))?;
        let run_id = run_id_of_file_name(name);
        let Some(run_id) = run_id else {
            bail!(
                "{}: --resume takes a file of an earlier run, named {PREFIX}progress-RUN.json, {PREFIX}results-RUN.jsonl or {PREFIX}RUN.json",
                file.display()
            );
        };
        let dir = file.parent().unwrap_or(Path::new("."));
        Ok(RunFiles::new(dir, run_id))
    }
}

/// Replaces `path` with `bytes` so that a reader (or a crash) sees the old file or
/// the new one, never half of one: write a temporary file, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// As [`write_atomic`], the content written by `write` through a buffer, so that a
/// large file (a summary of 200,000 batches, a report) is never held whole.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let all = || -> std::io::Result<()> {
        let mut f = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        write(&mut f)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            // Make the rename itself durable; not every platform can open a folder.
            if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    };
    all().with_context(|| format!("could not write {}", path.display()))
}

/// The results journal, opened for appending.
pub struct Journal {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Journal {
    /// Opens (creating) `path` for appending, first cutting it to `keep` bytes: a
    /// torn last line from a crash must not glue onto the next one.
    pub fn open(path: &Path, keep: Option<u64>) -> Result<Journal> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("could not open the results journal {}", path.display()))?;
        if let Some(len) = keep {
            file.set_len(len)
                .with_context(|| format!("could not trim {}", path.display()))?;
        }
        Ok(Journal {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 * 1024, file),
        })
    }

    pub fn append(&mut self, result: &ItemResult<'_>) -> Result<()> {
        serde_json::to_writer(&mut self.out, result)?;
        self.out
            .write_all(b"\n")
            .with_context(|| format!("could not write {}", self.path.display()))
    }

    /// Appends a line as it is (it ends in `\n`).
    pub fn append_line(&mut self, line: &str) -> Result<()> {
        self.out
            .write_all(line.as_bytes())
            .with_context(|| format!("could not write {}", self.path.display()))
    }

    /// Hands buffered lines to the OS: they survive the process being killed.
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("could not write {}", self.path.display()))
    }

    /// Flushes and fsyncs: the lines survive a power cut too.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.out
            .get_ref()
            .sync_data()
            .with_context(|| format!("could not sync {}", self.path.display()))
    }
}
