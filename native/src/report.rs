//! The self-contained HTML report, `shadow-mode-batch-report-{run}.html`, on disk:
//! the run's files read into the explorer's data, thumbnails found (or embedded),
//! and the file written. Its HTML (the explorer inlined, the data embedded, the
//! Content-Security-Policy) is the core's (`shadow_core::explorer::html`), which
//! the browser page's download writes too.
//!
//! Written at the end of every run and by `shadow-batch report FILE` for any earlier
//! run, from whichever of its files exist (see `shadow_core::explorer`).
//! Thumbnails are the images themselves, by their path relative to the report's
//! folder; with `--embed-thumbnails`, downscaled copies (at most
//! [`THUMB_SIDE`] pixels a side, [`EMBED_CAP`] bytes in all) are embedded instead.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use shadow_core::explorer::html::write_html;
use shadow_core::explorer::{ExplorerData, ResultsStream, RunFile, DEFAULT_ROW_CAP};
use shadow_core::run_files::{run_id_of_file_name, PREFIX};

use crate::files::{write_atomic_with, RunFiles};

/// Longest side of an embedded thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 96;
/// Most bytes of embedded thumbnails (as data URLs) in one report; past it, the
/// rest are shown by relative path.
pub const EMBED_CAP: usize = 8 * 1024 * 1024;
/// Largest image file read for a thumbnail.
const MAX_SOURCE: u64 = 20 * 1024 * 1024;

/// How the report is made.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// The folder the CSV's relative image paths start from, when known.
    pub data_dir: Option<PathBuf>,
    /// Embed downscaled thumbnails.
    pub embed_thumbnails: bool,
    /// Where to write it [default: beside the run's other files].
    pub out: Option<PathBuf>,
}

/// `text` percent-encoded as one path segment (as JavaScript's `encodeURIComponent`).
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The relative URL prefix from folder `from` to folder `to` (both absolute):
/// `""`, `"images/"`, `"../data/"`; `None` when no relative path joins them (another
/// drive).
pub fn relative_base(from: &Path, to: &Path) -> Option<String> {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    if from.first() != to.first() {
        return None;
    }
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); from.len() - common];
    for c in &to[common..] {
        match c {
            Component::Normal(name) => parts.push(encode_segment(&name.to_string_lossy())),
            _ => return None,
        }
    }
    Some(parts.iter().map(|p| format!("{p}/")).collect())
}

fn absolute(path: &Path) -> Option<PathBuf> {
    path.canonicalize().ok()
}

/// The folder the CSV's image paths start from, for a run whose files are in
/// `run_dir`: the run's own folder when the CSV is there (the default), else the
/// CSV's folder as the run named it (relative to here).
pub fn find_data_dir(run_dir: &Path, csv_path: &str) -> Option<PathBuf> {
    let csv = Path::new(csv_path);
    if let Some(name) = csv.file_name() {
        if run_dir.join(name).is_file() {
            return Some(run_dir.to_path_buf());
        }
    }
    if csv.is_file() {
        return Some(match csv.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        });
    }
    None
}

/// The run files `file` belongs to, for `shadow-batch report`.
pub fn run_files_of(file: &Path) -> Result<RunFiles> {
    run_files_for(file, "`shadow-batch report`")
}

/// The run files `file` belongs to, for `taker` (a command or a flag, as the
/// errors name it).
pub fn run_files_for(file: &Path, taker: &str) -> Result<RunFiles> {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some(run_id) = run_id_of_file_name(name) else {
        bail!(
            "{}: not a file of a shadow-batch run; {taker} takes a run's progress, summary or results file ({PREFIX}progress-RUN.json, {PREFIX}RUN.json or {PREFIX}results-RUN.jsonl)",
            file.display()
        );
    };
    if !file.exists() {
        bail!(
            "{}: no such file; give {taker} a file a run wrote",
            file.display()
        );
    }
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok(RunFiles::new(dir, run_id))
}

/// A summary or progress file, parsed as it is read; `None` when it does not exist.
fn read_run_file(
    path: &Path,
    parse: fn(BufReader<File>) -> Result<RunFile, shadow_core::explorer::ExplorerError>,
) -> Result<Option<RunFile>> {
    match File::open(path) {
        Ok(f) => parse(BufReader::with_capacity(1 << 16, f))
            .map(Some)
            .with_context(|| {
                format!(
                    "{}: cannot make a report from it; move the file away or give `shadow-batch report` another file of the run",
                    path.display()
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Feeds the results journal to `stream`, 1 MiB at a time (twice when a row is
/// written twice).
fn stream_results(path: &Path, stream: &mut ResultsStream) -> Result<()> {
    let mut feed = || -> std::io::Result<()> {
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            let mut file = File::open(path)?;
            loop {
                let n = file.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                stream.push(&chunk[..n]);
            }
            if !stream.end_pass() {
                return Ok(());
            }
        }
    };
    feed().with_context(|| format!("cannot read {}", path.display()))
}

/// The explorer's data for the run of `files`, from whichever of its files exist,
/// each read as a stream: memory stays within the row cap (and the label set, the
/// distinct error messages and a few thousand batch points) whatever the run's size.
pub fn explorer_data(files: &RunFiles, row_cap: Option<usize>) -> Result<ExplorerData> {
    let summary = read_run_file(&files.summary, RunFile::summary_from_reader)?;
    let progress = read_run_file(&files.progress, RunFile::progress_from_reader)?;
    let has_results = files.results.exists();
    if summary.is_none() && progress.is_none() && !has_results {
        bail!(
            "no file of run {} found beside {}",
            files.run_id,
            files.results.display()
        );
    }
    let mut stream = ResultsStream::of_finished_run(
        summary,
        progress,
        Some(files.run_id.clone()),
        row_cap.unwrap_or(DEFAULT_ROW_CAP),
    );
    if has_results {
        stream_results(&files.results, &mut stream)?;
    }
    Ok(stream.finish())
}

/// The report a run writes at its end, beside its other files. A view of the
/// files just written: failing to write it costs the run nothing, and
/// `shadow-batch report` can write it again.
pub fn write_at_end(
    files: &RunFiles,
    data_dir: PathBuf,
    embed_thumbnails: bool,
) -> Result<PathBuf> {
    write_report(
        files,
        &ReportOptions {
            data_dir: Some(data_dir),
            embed_thumbnails,
            out: None,
        },
    )
}

/// Writes the report of the run of `files`, at most [`DEFAULT_ROW_CAP`] rows
/// embedded; returns its path.
pub fn write_report(files: &RunFiles, options: &ReportOptions) -> Result<PathBuf> {
    write_report_capped(files, options, None)
}

/// As [`write_report`], embedding at most `row_cap` rows (`None`: the default):
/// past it, every disagreement and failure and a seeded sample of the agreeing
/// rows, the first note saying so.
pub fn write_report_capped(
    files: &RunFiles,
    options: &ReportOptions,
    row_cap: Option<usize>,
) -> Result<PathBuf> {
    let mut data = explorer_data(files, row_cap)?;
    let out = options.out.clone().unwrap_or_else(|| files.report.clone());
    let out_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let data_dir = options.data_dir.clone().or_else(|| {
        let run_dir = files.results.parent().unwrap_or(Path::new("."));
        find_data_dir(run_dir, &data.csv_path)
    });
    match data_dir.as_deref().and_then(absolute) {
        Some(data_dir) => {
            data.thumbnails.base = absolute(&out_dir).and_then(|o| relative_base(&o, &data_dir));
            if data.thumbnails.base.is_none() {
                data.notes.push("The images folder cannot be reached by a relative path from the report's folder: no thumbnails.".into());
            }
            if options.embed_thumbnails {
                embed_thumbnails(&mut data, &data_dir);
            }
        }
        None if !data.items.image.is_empty() => data.notes.push(format!(
            "The CSV's folder ({}) was not found: no thumbnails. Write the report with the images folder named to see them.",
            data.csv_path
        )),
        None => {}
    }
    write_atomic_with(&out, |w| write_html(&data, w))?;
    Ok(out)
}

/// A relative image path of the CSV, resolved inside `data_dir`; `None` for URLs
/// and paths that leave it.
fn local_image(data_dir: &Path, image: &str) -> Option<PathBuf> {
    if image.contains("://") || image.starts_with("data:") {
        return None;
    }
    if Path::new(image).is_absolute() {
        let p = absolute(Path::new(image))?;
        return p.starts_with(data_dir).then_some(p);
    }
    let clean = shadow_core::input::check_relative_path(image).ok()?;
    let p = absolute(&data_dir.join(clean))?;
    p.starts_with(data_dir).then_some(p)
}

fn thumbnail_data_url(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_SOURCE {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let img = image::load_from_memory(&bytes).ok()?;
    let small = if img.width() > THUMB_SIDE || img.height() > THUMB_SIDE {
        img.thumbnail(THUMB_SIDE, THUMB_SIDE)
    } else {
        img
    };
    let mut png = Vec::new();
    small
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .ok()?;
    Some(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&png)
    ))
}

/// Downscaled copies of the rows' images, up to [`EMBED_CAP`] bytes.
fn embed_thumbnails(data: &mut ExplorerData, data_dir: &Path) {
    let mut used = 0usize;
    let (mut embedded, mut skipped, mut over_cap) = (0usize, 0usize, false);
    let mut images: Vec<&String> = data.items.image.iter().collect();
    images.sort_unstable();
    images.dedup();
    let mut out = std::collections::BTreeMap::new();
    for image in images {
        let Some(url) = local_image(data_dir, image).and_then(|p| thumbnail_data_url(&p)) else {
            skipped += 1;
            continue;
        };
        if used + url.len() > EMBED_CAP {
            over_cap = true;
            break;
        }
        used += url.len();
        embedded += 1;
        out.insert(image.clone(), url);
    }
    data.thumbnails.embedded = out;
    let mut note = format!(
        "{embedded} thumbnails embedded ({} KiB, at most {THUMB_SIDE} px a side)",
        used / 1024
    );
    if skipped > 0 {
        note.push_str(&format!(
            "; {skipped} images could not be read as images here"
        ));
    }
    if over_cap {
        note.push_str(&format!(
            "; the embedding cap of {} MiB was reached: the other images are shown by relative path",
            EMBED_CAP / (1024 * 1024)
        ));
    }
    note.push('.');
    data.notes.push(note);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_bases() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(relative_base(&p("/a/b"), &p("/a/b")).as_deref(), Some(""));
        assert_eq!(
            relative_base(&p("/a/b"), &p("/a/b/images")).as_deref(),
            Some("images/")
        );
        assert_eq!(
            relative_base(&p("/a/out"), &p("/a/data set")).as_deref(),
            Some("../data%20set/")
        );
        assert_eq!(
            relative_base(&p("/a/b/c"), &p("/x/#y")).as_deref(),
            Some("../../../x/%23y/")
        );
        assert_eq!(encode_segment("é?%"), "%C3%A9%3F%25");
    }

    #[test]
    fn the_data_folder_is_the_runs_when_the_csv_is_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("labels.csv"), "image,label\n").unwrap();
        assert_eq!(
            find_data_dir(dir.path(), "somewhere/else/labels.csv").as_deref(),
            Some(dir.path())
        );
        let other = tempfile::tempdir().unwrap();
        assert_eq!(find_data_dir(other.path(), "nowhere/labels.csv"), None);
        let csv = dir.path().join("labels.csv");
        assert_eq!(
            find_data_dir(other.path(), &csv.display().to_string()).as_deref(),
            Some(dir.path())
        );
    }

    #[test]
    fn report_refuses_files_that_are_not_run_files() {
        let e = run_files_of(Path::new("/tmp/labels.csv")).unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("/tmp/labels.csv: not a file of a shadow-batch run"),
            "{text}"
        );
        assert!(text.contains("shadow-batch report"), "{text}");
        let e = run_files_of(Path::new("/nonexistent/shadow-mode-batch-r1.json")).unwrap_err();
        assert!(format!("{e:#}").contains("no such file"), "{e:#}");
    }

    fn write_run(dir: &Path, summary: bool, progress: bool) -> RunFiles {
        let files = RunFiles::new(dir, "2025-01-24T10-30-00-000Z");
        let lines: String = (0..4)
            .map(|row| {
                serde_json::json!({
                    "row": row, "line": row + 2, "image": format!("images/{row}.png"), "label": "cat",
                    "prediction": if row == 3 { "dog" } else { "cat" }, "agreement": row != 3,
                    "status": "success", "attempts": 1, "latencyMs": 5,
                    "finishedAt": "2025-01-24T10:30:00.000Z"
                })
                .to_string()
                    + "\n"
            })
            .collect();
        std::fs::write(&files.results, lines).unwrap();
        if progress {
            let p = serde_json::json!({"runId": files.run_id, "csvPath": "labels.csv", "status": "running",
                "overallProgress": {"total": 10, "successful": 4, "failed": 0, "errors": []}, "allReports": []});
            std::fs::write(&files.progress, p.to_string()).unwrap();
        }
        if summary {
            let s = serde_json::json!({"runId": files.run_id, "status": "completed", "csvPath": "labels.csv",
                "statistics": {"total": 4, "processed": 4, "successful": 4, "failed": 0, "remaining": 0},
                "evaluation": {"compared": 4, "agreements": 3, "agreementRate": 0.75, "labels": ["cat", "dog"],
                    "confusionMatrix": [[3, 1], [0, 0]], "perLabel": []},
                "allReports": []});
            std::fs::write(&files.summary, s.to_string()).unwrap();
        }
        files
    }

    fn embedded_json(html: &str) -> serde_json::Value {
        let start = html.find("id=\"explorer-data\">").unwrap() + "id=\"explorer-data\">".len();
        let end = html[start..].find("</script>").unwrap() + start;
        serde_json::from_str(&html[start..end]).unwrap()
    }

    #[test]
    fn a_report_from_a_summary_a_progress_or_a_results_file_alone() {
        for (summary, progress, status, agreements) in [
            (true, true, "completed", 3),
            (false, true, "interrupted", 3),
            (false, false, "interrupted", 3),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let files = write_run(dir.path(), summary, progress);
            let given = if summary {
                &files.summary
            } else if progress {
                &files.progress
            } else {
                &files.results
            };
            let found = run_files_of(given).unwrap();
            let out = write_report(&found, &ReportOptions::default()).unwrap();
            assert_eq!(
                out.file_name().unwrap().to_str().unwrap(),
                "shadow-mode-batch-report-2025-01-24T10-30-00-000Z.html"
            );
            let data = embedded_json(&std::fs::read_to_string(&out).unwrap());
            assert_eq!(data["status"], status);
            assert_eq!(data["evaluation"]["agreements"], agreements);
            assert_eq!(data["items"]["row"].as_array().unwrap().len(), 4);
            assert_eq!(data["sources"]["summary"], summary);
            // No CSV beside the files or here: no thumbnails, and a note saying so.
            assert!(data["thumbnails"]["base"].is_null());
            assert!(
                data["notes"].to_string().contains("was not found"),
                "{}",
                data["notes"]
            );
        }
    }

    #[test]
    fn thumbnails_by_relative_path_from_an_out_dir_and_embedded_on_request() {
        let root = tempfile::tempdir().unwrap();
        let data_dir = root.path().join("data");
        std::fs::create_dir_all(data_dir.join("images")).unwrap();
        std::fs::write(data_dir.join("labels.csv"), "image,label\n").unwrap();
        // A 200x100 PNG: embedded at most THUMB_SIDE wide.
        let img = image::RgbImage::from_pixel(200, 100, image::Rgb([200, 30, 30]));
        img.save(data_dir.join("images/0.png")).unwrap();
        let out_dir = root.path().join("out");
        std::fs::create_dir_all(&out_dir).unwrap();
        let files = write_run(&out_dir, true, false);
        let out = write_report(
            &files,
            &ReportOptions {
                data_dir: Some(data_dir.clone()),
                embed_thumbnails: true,
                out: None,
            },
        )
        .unwrap();
        let data = embedded_json(&std::fs::read_to_string(out).unwrap());
        assert_eq!(data["thumbnails"]["base"], "../data/");
        let embedded = data["thumbnails"]["embedded"].as_object().unwrap();
        assert_eq!(embedded.len(), 1, "only images/0.png exists");
        let url = embedded["images/0.png"].as_str().unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(url.strip_prefix("data:image/png;base64,").unwrap())
            .unwrap();
        let thumb = image::load_from_memory(&png).unwrap();
        assert_eq!(
            (thumb.width(), thumb.height()),
            (THUMB_SIDE, THUMB_SIDE / 2)
        );
        assert!(data["notes"].to_string().contains("1 thumbnails embedded"));
        assert!(data["notes"]
            .to_string()
            .contains("3 images could not be read"));
    }

    #[test]
    fn embedding_stays_inside_the_data_folder() {
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("data");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(root.path().join("secret.png"), b"x").unwrap();
        let inside = inside.canonicalize().unwrap();
        assert_eq!(local_image(&inside, "../secret.png"), None);
        assert_eq!(
            local_image(
                &inside,
                &root.path().join("secret.png").display().to_string()
            ),
            None
        );
        assert_eq!(local_image(&inside, "https://x.test/a.png"), None);
    }
}
