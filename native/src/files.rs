//! The run's files: their names, the atomically replaced progress file, the
//! append-only results journal and its header, and the lock that keeps a second
//! process off a run.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use shadow_core::journal::{ItemResult, JournalHeader};
use shadow_core::report::Summary;
use shadow_core::run_files::{
    lock_file_name, progress_file_name, provider_file_name, report_file_name, results_file_name,
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
    /// The lock of the process running the run ([`RunLock`]).
    pub lock: PathBuf,
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
            lock: dir.join(lock_file_name(run_id)),
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
    replace_via(path, &path.with_extension("json.tmp"), write)
}

/// Writes the summary file again with the run's gate beside its fields
/// ([`Summary::with_gate`]), when the run has a gate: the drivers write the
/// summary as the run gives it, as soon as it ends. Nothing to do without one.
pub fn add_gate_to_summary(files: &RunFiles, summary: &Summary) -> Result<()> {
    if summary.config.gate.is_empty() {
        return Ok(());
    }
    write_atomic_with(&files.summary, |w| {
        Ok(serde_json::to_writer_pretty(w, &summary.with_gate())?)
    })
}

/// Writes `tmp` with `write`, syncs it and renames it to `path`: a crash leaves
/// either the old file or the new one, never half of one.
fn replace_via(
    path: &Path,
    tmp: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let all = || -> std::io::Result<()> {
        let mut f = BufWriter::with_capacity(1 << 20, File::create(tmp)?);
        write(&mut f)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(tmp, path)?;
        sync_folder_of(path);
        Ok(())
    };
    all().with_context(|| format!("could not write {}", path.display()))
}

/// Makes a rename into `path`'s folder durable; not every platform can open a folder.
fn sync_folder_of(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Makes `header` the first line of the results journal at `path`, durably, before
/// anything is sent: creates the journal with it, or rewrites a journal that starts
/// otherwise (with no header: written by an earlier version; with another: the run
/// is resumed with other settings) with `header` in place of the old one and every
/// other line kept as it is. A journal that already starts with `header` is left
/// untouched.
pub fn stamp_journal(path: &Path, header: &JournalHeader) -> Result<()> {
    let line = header.to_json_line();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return write_atomic(path, line.as_bytes())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut first = Vec::new();
    // A header is one line of settings: no need to read further to tell.
    (&mut reader)
        .take(1 << 20)
        .read_until(b'\n', &mut first)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if first == line.as_bytes() {
        return Ok(());
    }
    let old_header = first.ends_with(b"\n")
        && serde_json::from_slice::<JournalHeader>(first.trim_ascii()).is_ok();
    replace_via(path, &path.with_extension("jsonl.tmp"), |out| {
        out.write_all(line.as_bytes())?;
        if !old_header {
            out.write_all(&first)?;
        }
        std::io::copy(&mut reader, out)?;
        Ok(())
    })
}

/// The header of the results journal at `path`: `None` when the journal is missing
/// or starts otherwise (written by an earlier version, or empty).
pub fn read_journal_header(path: &Path) -> Result<Option<JournalHeader>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut first = Vec::new();
    BufReader::new(file)
        .take(1 << 20)
        .read_until(b'\n', &mut first)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !first.ends_with(b"\n") {
        return Ok(None);
    }
    Ok(serde_json::from_slice(first.trim_ascii()).ok())
}

/// The run's lock: an advisory lock on `shadow-mode-batch-{run}.lock` beside the
/// run's files, held while this process runs the run, holding its pid for the
/// message a second process shows. The operating system releases the lock when the
/// process ends however it ends, so the file of a process that died blocks nothing;
/// it is removed when the run ends normally.
pub struct RunLock {
    path: PathBuf,
    /// Holds the lock while open.
    _file: File,
}

impl RunLock {
    /// Takes the lock of the run whose files are `files`, or says which process holds it.
    pub fn take(files: &RunFiles) -> Result<RunLock> {
        let path = &files.lock;
        // Another process may remove the file between our open and our lock: the lock
        // must be on the file the path names once it is taken, else try again.
        for _ in 0..10 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .with_context(|| format!("cannot create the run's lock file {}", path.display()))?;
            match try_lock(&file) {
                Ok(true) => {}
                Ok(false) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    let holder = match text.trim().parse::<u32>() {
                        Ok(pid) => format!("process {pid}"),
                        Err(_) => "another process".to_string(),
                    };
                    bail!(
                        "the run {} is in use by {holder} (a shadow-batch running or resuming it): two processes would write its files at once. \
                         Its lock ({}) goes when that process ends: wait for it, or stop it (Ctrl-C), then resume the run",
                        files.run_id,
                        path.display()
                    );
                }
                Err(e) => {
                    // A file system (or platform) without locks: run unguarded rather than not at all.
                    tracing::warn!(
                        "cannot lock {} ({e}): do not run or resume this run from two processes at once",
                        path.display()
                    );
                }
            }
            if !same_file(&file, path) {
                continue;
            }
            let mut write = || -> std::io::Result<()> {
                file.set_len(0)?;
                file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
                file.flush()
            };
            write()
                .with_context(|| format!("cannot write the run's lock file {}", path.display()))?;
            return Ok(RunLock {
                path: path.clone(),
                _file: file,
            });
        }
        bail!(
            "cannot lock the run {}: its lock file {} keeps being replaced",
            files.run_id,
            path.display()
        )
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still held (the lock goes when `file` closes, next), so that
        // no other process takes a lock on a file that is gone.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes an exclusive advisory lock on `file` without waiting; `Ok(false)` when
/// another process holds it. (`flock`, released by the OS when the process ends,
/// however it ends. std's `File::try_lock` is the same from Rust 1.89, above
/// this workspace's rust-version.)
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> std::io::Result<bool> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "runs are locked on Unix only",
    ))
}

/// Whether `file` is the file `path` names now.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
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

#[cfg(test)]
mod tests {
    use super::*;
    use shadow_core::RunConfig;

    fn header(model: &str) -> JournalHeader {
        let mut run = RunConfig::default();
        if let shadow_core::provider::Provider::OpenAi(openai) = &mut run.provider {
            openai.model = model.into();
        }
        JournalHeader { run }
    }

    #[test]
    fn stamping_puts_the_header_first_and_keeps_every_result_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shadow-mode-batch-results-R.jsonl");
        let results = "{\"row\":0}\n{\"row\":1}\n{\"row\":2";
        // An earlier version's journal: the header goes in front.
        std::fs::write(&path, results).unwrap();
        stamp_journal(&path, &header("a")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}{results}", header("a").to_json_line()));
        assert_eq!(read_journal_header(&path).unwrap(), Some(header("a")));
        // Another run line: replaced, not stacked.
        stamp_journal(&path, &header("b")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}{results}", header("b").to_json_line()));
        // The same: the file is not written again.
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        stamp_journal(&path, &header("b")).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        // No journal yet: the header alone.
        let new = dir.path().join("new.jsonl");
        stamp_journal(&new, &header("c")).unwrap();
        assert_eq!(
            std::fs::read_to_string(&new).unwrap(),
            header("c").to_json_line()
        );
        assert_eq!(read_journal_header(&dir.path().join("none")).unwrap(), None);
    }

    #[test]
    #[cfg(unix)]
    fn a_run_is_locked_once_and_its_lock_file_goes_with_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path(), "R");
        let lock = RunLock::take(&files).unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(std::fs::read_to_string(&files.lock).unwrap().trim(), pid);
        let err = RunLock::take(&files).err().unwrap().to_string();
        assert!(err.contains(&format!("in use by process {pid}")), "{err}");
        drop(lock);
        assert!(!files.lock.exists());
        // A lock file nobody holds (its process died) blocks nothing.
        std::fs::write(&files.lock, "999999\n").unwrap();
        let again = RunLock::take(&files).unwrap();
        assert_eq!(std::fs::read_to_string(&files.lock).unwrap().trim(), pid);
        drop(again);
    }
}
