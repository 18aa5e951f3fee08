//! `shadow-batch compare A B`, and the baseline of a run (`--baseline FILE`,
//! `--baseline-column NAME`): the runs' files read as streams into the core's
//! comparison (`shadow_core::compare`), which decides everything.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use shadow_core::compare::{
    Baseline, JournalRows, PairedRuns, RowCaps, RowDetails, RunInfo, RunRows,
};
use shadow_core::explorer::html::{write_comparison_html, ComparisonReport};
use shadow_core::input::CsvOutline;
use shadow_core::report::comparison_to_console;
use shadow_core::run_files::compare_file_name;

use crate::cli::{CompareArgs, RunArgs};
use crate::files::{write_atomic_with, RunFiles};
use crate::report::{find_data_dir, relative_base, run_files_for};

/// Rows listed per cell of the paired table in the JSON.
const CELL_ROWS: usize = 1_000;

/// Feeds `path` to `push`, 1 MiB at a time.
fn stream(path: &Path, mut push: impl FnMut(&[u8])) -> Result<()> {
    let mut feed = || -> std::io::Result<()> {
        let mut file = File::open(path)?;
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            push(&chunk[..n]);
        }
    };
    feed().with_context(|| format!("cannot read {}", path.display()))
}

/// What a run's summary and progress files say of it (whichever exist).
fn run_info(files: &RunFiles) -> Result<RunInfo> {
    let read = |path: &Path,
                parse: fn(BufReader<File>) -> Result<RunInfo, _>|
     -> Result<Option<RunInfo>> {
        match File::open(path) {
            Ok(f) => parse(BufReader::with_capacity(1 << 16, f))
                .map(Some)
                .with_context(|| format!("{}: cannot compare this run", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    };
    let summary = read(&files.summary, RunInfo::from_summary)?;
    let progress = read(&files.progress, RunInfo::from_progress)?;
    Ok(match (summary, progress) {
        (Some(s), Some(p)) => s.or(p),
        (Some(info), None) | (None, Some(info)) => info,
        (None, None) => RunInfo::default(),
    })
}

/// A run's facts and rows, from the run file `file` names.
fn read_run(file: &Path, taker: &str) -> Result<(RunFiles, RunInfo, RunRows)> {
    let files = run_files_for(file, taker)?;
    let info = run_info(&files)?;
    if !files.results.is_file() {
        bail!(
            "{}: run {} has no results file ({}): there are no rows to compare",
            file.display(),
            files.run_id,
            files.results.display()
        );
    }
    let mut journal = JournalRows::new();
    stream(&files.results, |chunk| journal.push(chunk))?;
    Ok((files, info, journal.finish()))
}

/// `shadow-batch compare A B`: prints the comparison and writes its JSON;
/// refuses (exit 2) runs that do not look like runs over the same CSV unless
/// `--allow-partial`.
pub fn compare_runs(args: &CompareArgs) -> Result<u8> {
    let (files_a, info_a, rows_a) = read_run(&args.a, "`shadow-batch compare`")?;
    let (files_b, info_b, rows_b) = read_run(&args.b, "`shadow-batch compare`")?;
    let caps = RowCaps {
        per_cell: CELL_ROWS,
        table: args.max_rows,
    };
    let paired = PairedRuns::pair(&rows_a, info_a, &rows_b, info_b, caps);
    drop((rows_a, rows_b));
    if let Some(why) = paired.mismatch() {
        if !args.allow_partial {
            bail!(
                "{why}. Nothing was written: give --allow-partial to compare the {} matching rows",
                paired.matching().matched
            );
        }
    }
    let mut details: RowDetails = paired.details();
    if details.wants_rows() {
        stream(&files_a.results, |chunk| details.push(chunk))?;
    }
    let comparison = paired.finish(details, args.allow_partial);
    print!("{}", comparison_to_console(&comparison));
    let dir = match &args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create --out-dir {}", dir.display()))?;
            dir.clone()
        }
        None => match files_a.results.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
    };
    let out = dir.join(compare_file_name(&files_a.run_id, &files_b.run_id));
    write_atomic_with(&out, |w| Ok(serde_json::to_writer_pretty(w, &comparison)?))?;
    println!("Comparison: {}", out.display());
    let html = out.with_extension("html");
    let mut report = ComparisonReport::new(&comparison);
    report.thumbnails.base = thumbnail_base(&files_a, comparison.a.csv_path.as_deref(), &dir);
    write_atomic_with(&html, |w| write_comparison_html(&report, w))?;
    println!("Report:     {}", html.display());
    Ok(0)
}

/// The images' URL prefix relative to the report's folder `out_dir`: A's CSV's
/// folder (where the rows' image paths start), as the run's own report finds it;
/// `None` (no thumbnails) when it is not found.
fn thumbnail_base(files_a: &RunFiles, csv_path: Option<&str>, out_dir: &Path) -> Option<String> {
    let run_dir = files_a.results.parent().unwrap_or(Path::new("."));
    let data_dir = find_data_dir(run_dir, csv_path?)?.canonicalize().ok()?;
    relative_base(&out_dir.canonicalize().ok()?, &data_dir)
}

/// The baseline a run's flags name, if any, with its run id when it is a run:
/// an earlier run read from its files, or a column of the CSV `outline`
/// describes (refused when the CSV has no such column).
pub fn baseline_of(
    args: &RunArgs,
    outline: &CsvOutline,
) -> Result<Option<(Baseline, Option<String>)>> {
    if let Some(column) = &args.baseline_column {
        if !outline.extra_columns.contains(column) {
            bail!(
                "--baseline-column {column:?}: the CSV has no such column (its columns besides image, label and id: {})",
                if outline.extra_columns.is_empty() {
                    "none".to_string()
                } else {
                    outline.extra_columns.join(", ")
                }
            );
        }
        return Ok(Some((Baseline::Column(column.clone()), None)));
    }
    let Some(file) = &args.baseline else {
        return Ok(None);
    };
    let (files, info, rows) = read_run(file, "--baseline")?;
    Ok(Some((Baseline::Run { rows, info }, Some(files.run_id))))
}
