//! The self-contained HTML report, `shadow-mode-batch-report-{run}.html`, as bytes:
//! the results explorer (`web/explorer/`, inlined at build time) with the run's
//! [`ExplorerData`] embedded as JSON. One file; it opens from disk with no server
//! and no network (its Content-Security-Policy allows no connection at all, and
//! images only from files, data URLs and blobs).
//!
//! Both hosts write it with [`write_html`]: the CLI into a file at the end of a run
//! and for `shadow-batch report` (after filling the data's thumbnails from the
//! disk), the browser page as a download ([`page_report`], from the run's files it
//! holds in memory). Writing into any [`Write`] is the host's choice of I/O; this
//! module does none.

use std::io::Write;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use serde::Serialize;

use super::{ExplorerData, ExplorerError, ResultsStream, RunFile, Thumbnails, DEFAULT_ROW_CAP};
use crate::compare::Comparison;

/// The explorer's modules, in dependency order, inlined into one script.
pub const MODULES: &[(&str, &str)] = &[
    ("dom.js", include_str!("../../../web/explorer/dom.js")),
    ("charts.js", include_str!("../../../web/explorer/charts.js")),
    ("csv.js", include_str!("../../../web/explorer/csv.js")),
    ("table.js", include_str!("../../../web/explorer/table.js")),
    (
        "viewstate.js",
        include_str!("../../../web/explorer/viewstate.js"),
    ),
    (
        "rowview.js",
        include_str!("../../../web/explorer/rowview.js"),
    ),
    (
        "comparerows.js",
        include_str!("../../../web/explorer/comparerows.js"),
    ),
    (
        "compare.js",
        include_str!("../../../web/explorer/compare.js"),
    ),
    ("slices.js", include_str!("../../../web/explorer/slices.js")),
    (
        "calibration.js",
        include_str!("../../../web/explorer/calibration.js"),
    ),
    (
        "sampling.js",
        include_str!("../../../web/explorer/sampling.js"),
    ),
    (
        "explorer.js",
        include_str!("../../../web/explorer/explorer.js"),
    ),
    ("report.js", include_str!("../../../web/explorer/report.js")),
];
const CSS: &str = include_str!("../../../web/explorer/explorer.css");

const REPORT_CSS: &str = "body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 78rem; padding: 1rem; background: #fbfbfc; }\n\
.report-top { color: #5b6068; font-size: .85rem; margin: 0 0 .6rem; }\n";

/// The explorer modules as one classic-module script: each module's `import` lines
/// dropped and its `export` keywords removed (they import only one another, and
/// the order of [`MODULES`] puts every module after those it uses).
pub fn inline_script() -> String {
    let mut out = String::with_capacity(96 * 1024);
    for (name, source) in MODULES {
        out.push_str("// ---- web/explorer/");
        out.push_str(name);
        out.push('\n');
        for line in source.lines() {
            if line.starts_with("import ") {
                continue;
            }
            out.push_str(line.strip_prefix("export ").unwrap_or(line));
            out.push('\n');
        }
    }
    out
}

/// Text for an HTML text or attribute context.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Writes JSON that no data can break out of inside `<script
/// type="application/json">`: `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026`
/// (the same string to `JSON.parse`, so no `</script>` and no `<!--` can appear),
/// and U+2028 / U+2029 escaped too. Bytes pass straight through to `inner`.
struct ScriptSafe<W: Write> {
    inner: W,
    /// The start of a U+2028 / U+2029 (`E2 80`) cut by the end of a write.
    held: Vec<u8>,
}

impl<W: Write> ScriptSafe<W> {
    fn new(inner: W) -> Self {
        ScriptSafe {
            inner,
            held: Vec::new(),
        }
    }

    fn finish(mut self) -> std::io::Result<W> {
        let held = std::mem::take(&mut self.held);
        self.inner.write_all(&held)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ScriptSafe<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = std::mem::take(&mut self.held);
        bytes.extend_from_slice(buf);
        let mut plain = 0;
        let mut i = 0;
        while i < bytes.len() {
            let escape: Option<(&[u8], usize)> = match bytes[i] {
                b'<' => Some((b"\\u003c", 1)),
                b'>' => Some((b"\\u003e", 1)),
                b'&' => Some((b"\\u0026", 1)),
                0xE2 => match bytes.get(i + 1..i + 3) {
                    Some([0x80, 0xA8]) => Some((b"\\u2028", 3)),
                    Some([0x80, 0xA9]) => Some((b"\\u2029", 3)),
                    Some(_) => None,
                    // Cut by the end of this write: decide with the next.
                    None if bytes[i + 1..].iter().all(|&b| b == 0x80) => {
                        self.inner.write_all(&bytes[plain..i])?;
                        self.held = bytes[i..].to_vec();
                        return Ok(buf.len());
                    }
                    None => None,
                },
                _ => None,
            };
            match escape {
                Some((text, len)) => {
                    self.inner.write_all(&bytes[plain..i])?;
                    self.inner.write_all(text)?;
                    i += len;
                    plain = i;
                }
                None => i += 1,
            }
        }
        self.inner.write_all(&bytes[plain..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The SHA-256 of `text`, in base64: a script's hash as a CSP names it.
fn sha256_base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// Writes the report's HTML for `data` to `out`, its data serialised straight into
/// it (never held as one string).
///
/// # Errors
///
/// What `out` returns.
pub fn write_html<W: Write>(data: &ExplorerData, out: W) -> std::io::Result<()> {
    let title = format!("shadow-batch report — run {}", data.run_id);
    write_page(&title, "results explorer", data, out)
}

/// The data of a comparison's report (`shadow-mode-batch-compare-{A}-vs-{B}.html`):
/// the explorer draws it in its compare mode (`kind` is `comparison`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComparisonReport<'a> {
    /// [`super::FORMAT`].
    pub format: u32,
    /// `comparison`: what tells the explorer's start-up to draw its compare mode.
    pub kind: &'static str,
    /// The comparison, with its row lists.
    pub comparison: &'a Comparison,
    /// Where the rows' images are found, relative to the report (A's CSV's folder).
    pub thumbnails: Thumbnails,
}

impl<'a> ComparisonReport<'a> {
    /// The report of `comparison`, without thumbnails until the host finds them.
    pub fn new(comparison: &'a Comparison) -> ComparisonReport<'a> {
        ComparisonReport {
            format: super::FORMAT,
            kind: "comparison",
            comparison,
            thumbnails: Thumbnails::default(),
        }
    }
}

/// Writes the HTML of a comparison's report to `out`: the explorer in its compare
/// mode, as self-contained as a run's report.
///
/// # Errors
///
/// What `out` returns.
pub fn write_comparison_html<W: Write>(
    report: &ComparisonReport<'_>,
    out: W,
) -> std::io::Result<()> {
    let c = report.comparison;
    let side = |s: &crate::compare::Side| s.run_id.clone().unwrap_or_else(|| s.name.clone());
    let title = format!("shadow-batch comparison — {} vs {}", side(&c.a), side(&c.b));
    write_page(&title, "comparison of two runs", report, out)
}

/// The comparison's report as one string.
pub fn render_comparison_html(report: &ComparisonReport<'_>) -> String {
    let mut html = Vec::new();
    write_comparison_html(report, &mut html).expect("writing to a Vec cannot fail");
    String::from_utf8(html).expect("the report is UTF-8")
}

/// The page around the explorer: `data` embedded as script-safe JSON, the
/// explorer's modules inlined, a CSP that allows no connection.
fn write_page<W: Write, T: Serialize>(
    title: &str,
    what: &str,
    data: &T,
    mut out: W,
) -> std::io::Result<()> {
    let script = inline_script();
    // No connection of any kind; script only this one (by hash); images only from
    // files, data URLs and blobs.
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'unsafe-inline'; img-src file: data: blob:; base-uri 'none'; form-action 'none'",
        sha256_base64(&script)
    );
    let title = escape_html(title);
    out.write_all(b"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")?;
    writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">"
    )?;
    out.write_all(b"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")?;
    out.write_all(b"<meta name=\"referrer\" content=\"no-referrer\">\n")?;
    write!(out, "<title>{title}</title>\n<style>\n")?;
    out.write_all(REPORT_CSS.as_bytes())?;
    out.write_all(CSS.as_bytes())?;
    out.write_all(b"</style>\n</head>\n<body>\n<main>\n")?;
    writeln!(
        out,
        "<p class=\"report-top\">shadow-batch {} · {what} · a self-contained report: it loads nothing from the network</p>",
        env!("CARGO_PKG_VERSION")
    )?;
    out.write_all(b"<div id=\"explorer\"><noscript>This report needs JavaScript to draw its tables and charts.</noscript></div>\n</main>\n")?;
    out.write_all(b"<script type=\"application/json\" id=\"explorer-data\">")?;
    let mut safe = ScriptSafe::new(&mut out);
    serde_json::to_writer(&mut safe, data)?;
    safe.finish()?;
    out.write_all(b"</script>\n<script type=\"module\">")?;
    out.write_all(script.as_bytes())?;
    out.write_all(b"</script>\n</body>\n</html>\n")?;
    Ok(())
}

/// The report's HTML for `data`, as one string.
pub fn render_html(data: &ExplorerData) -> String {
    let mut html = Vec::new();
    write_html(data, &mut html).expect("writing to a Vec cannot fail");
    String::from_utf8(html).expect("the report is UTF-8")
}

/// What the page's report says of its thumbnails: it cannot know where the file
/// will be saved, so it looks for the images beside it.
pub const PAGE_THUMBNAILS_NOTE: &str = "Written by the browser page: thumbnails show when this file is saved in the labels CSV's folder (the images are read by their paths relative to it).";

/// The report of a run whose files a host holds in memory (the browser page): the
/// same data as the CLI's report of those files (at most [`DEFAULT_ROW_CAP`] rows,
/// sampled with the run's seed past it), thumbnails by their paths relative to the
/// report's folder, with [`PAGE_THUMBNAILS_NOTE`].
///
/// # Errors
///
/// A summary or progress text that is not such a file; no file at all.
pub fn page_report(
    summary: Option<&str>,
    progress: Option<&str>,
    results: Option<&[u8]>,
    run_id: Option<String>,
) -> Result<String, ExplorerError> {
    if summary.is_none() && progress.is_none() && results.is_none() {
        return Err(ExplorerError::Nothing);
    }
    let summary = summary.map(RunFile::summary).transpose()?;
    let progress = progress.map(RunFile::progress).transpose()?;
    let mut stream = ResultsStream::of_finished_run(summary, progress, run_id, DEFAULT_ROW_CAP);
    if let Some(results) = results {
        loop {
            stream.push(results);
            if !stream.end_pass() {
                break;
            }
        }
    }
    let mut data = stream.finish();
    data.thumbnails.base = Some(String::new());
    data.notes.push(PAGE_THUMBNAILS_NOTE.to_owned());
    Ok(render_html(&data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explorer::{build, ExplorerInput};
    use crate::journal::fold_journal;

    const HOSTILE: &str = "<img src=x onerror=alert(1)></script><!--";

    fn hostile_data() -> ExplorerData {
        let line = serde_json::json!({
            "row": 0, "line": 2, "image": format!("{HOSTILE}.png"), "label": HOSTILE,
            "prediction": HOSTILE, "agreement": true, "status": "success", "attempts": 1,
            "latencyMs": 5, "error": null, "finishedAt": "2025-01-24T10:30:00.000Z"
        })
        .to_string()
            + "\n";
        let folded = fold_journal(&line);
        let progress = serde_json::json!({
            "runId": format!("r{HOSTILE}"), "csvPath": "x.csv", "overallProgress": {"total": 1},
            "allReports": []
        })
        .to_string();
        build(ExplorerInput {
            progress: Some(&progress),
            results: Some(&folded),
            ..Default::default()
        })
        .unwrap()
    }

    fn embedded_json(html: &str) -> &str {
        let start = html.find("<script type=\"application/json\"").unwrap();
        let body_start = html[start..].find('>').unwrap() + start + 1;
        let end = html[body_start..].find("</script>").unwrap() + body_start;
        &html[body_start..end]
    }

    #[test]
    fn no_data_can_close_the_script_or_open_a_tag() {
        let html = render_html(&hostile_data());
        let json = embedded_json(&html);
        assert!(!json.contains('<') && !json.contains('>'), "{json}");
        // The escaped JSON is the same data.
        let back: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back["labels"][0], HOSTILE);
        assert_eq!(back["items"]["image"][0], format!("{HOSTILE}.png"));
        // The run id in the title is escaped too.
        assert!(html.contains("<title>shadow-batch report — run r&lt;img src=x"));
        assert_eq!(html.matches("<script").count(), 2, "only the two scripts");
        assert_eq!(html.matches("<img").count(), 0);
    }

    /// Two runs of three rows whose label and answers are markup, compared.
    fn hostile_comparison() -> Comparison {
        use crate::compare::{JournalRows, PairedRuns, RowCaps, RunInfo};
        let journal = |answers: [Option<&str>; 3]| -> String {
            answers
                .iter()
                .enumerate()
                .map(|(row, answer)| {
                    serde_json::json!({
                        "row": row, "line": row + 2, "image": format!("{HOSTILE}{row}.png"), "label": HOSTILE,
                        "prediction": answer, "agreement": answer.map(|a| a == HOSTILE),
                        "status": if answer.is_some() { "success" } else { "failed" }, "attempts": 1,
                        "latencyMs": 5, "error": if answer.is_some() { None } else { Some("HTTP 500") },
                        "finishedAt": "2025-01-24T10:30:00.000Z"
                    })
                    .to_string()
                        + "\n"
                })
                .collect()
        };
        let a = journal([Some(HOSTILE), Some("</script>"), None]);
        let b = journal([Some(HOSTILE), Some(HOSTILE), Some("<!--")]);
        let rows = |text: &str| {
            let mut j = JournalRows::new();
            j.push(text.as_bytes());
            j.finish()
        };
        let info = |id: &str| RunInfo {
            run_id: Some(id.into()),
            status: Some("completed".into()),
            total_rows: Some(3),
            from_summary: true,
            ..RunInfo::default()
        };
        let caps = RowCaps {
            per_cell: 10,
            table: 10,
        };
        let paired = PairedRuns::pair(
            &rows(&a),
            info(&format!("A{HOSTILE}")),
            &rows(&b),
            info("B1"),
            caps,
        );
        let mut details = paired.details();
        details.push(a.as_bytes());
        paired.finish(details, false)
    }

    #[test]
    fn a_comparisons_report_embeds_it_for_the_compare_view_and_no_data_can_close_the_script() {
        let comparison = hostile_comparison();
        assert_eq!(comparison.table.only_b_right.count, 1, "{comparison:?}");
        assert_eq!(comparison.rows.len(), 3);
        let mut report = ComparisonReport::new(&comparison);
        report.thumbnails.base = Some("../data/".into());
        let html = render_comparison_html(&report);
        let json = embedded_json(&html);
        assert!(!json.contains('<') && !json.contains('>'), "{json}");
        let back: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back["kind"], "comparison");
        assert_eq!(back["format"], super::super::FORMAT);
        assert_eq!(back["thumbnails"]["base"], "../data/");
        // The whole comparison, rows and all, as the JSON file holds it.
        assert_eq!(
            back["comparison"],
            serde_json::to_value(&comparison).unwrap()
        );
        assert_eq!(back["comparison"]["rows"][1]["a"], "</script>");
        assert_eq!(back["comparison"]["rows"][1]["cell"], "onlyBRight");
        assert!(html.contains("<title>shadow-batch comparison — A&lt;img src=x"));
        assert!(html.contains("comparison of two runs"));
        assert_eq!(html.matches("<script").count(), 2, "only the two scripts");
        assert_eq!(html.matches("<img").count(), 0);
        // The same script (and CSP hash) as a run's report: one explorer, two modes.
        let script = inline_script();
        assert!(script.contains("function renderComparison("));
        assert!(html.contains(&format!("<script type=\"module\">{script}</script>")));
        assert!(html.contains(&format!("script-src 'sha256-{}'", sha256_base64(&script))));
    }

    #[test]
    fn the_script_safe_writer_escapes_across_the_ends_of_writes() {
        let text = "a<b>&c\u{2028}d\u{2029}é\u{20ac}\u{2020}</script>";
        let want = "a\\u003cb\\u003e\\u0026c\\u2028d\\u2029é\u{20ac}\u{2020}\\u003c/script\\u003e";
        for size in 1..=text.len() {
            let mut safe = ScriptSafe::new(Vec::new());
            for piece in text.as_bytes().chunks(size) {
                safe.write_all(piece).unwrap();
            }
            let out = String::from_utf8(safe.finish().unwrap()).unwrap();
            assert_eq!(out, want, "writes of {size} bytes");
        }
    }

    /// The digest of "abc" from FIPS 180-2, appendix B.1, in base64
    /// (`printf abc | openssl dgst -sha256 -binary | base64`).
    #[test]
    fn the_csp_hash_is_sha256_in_base64() {
        assert_eq!(
            sha256_base64("abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    /// The modules share one scope once inlined: a top-level name declared
    /// twice is a SyntaxError that leaves the report blank.
    #[test]
    fn no_two_inlined_modules_declare_the_same_top_level_name() {
        let mut seen = std::collections::HashMap::new();
        for (module, source) in MODULES {
            for line in source.lines() {
                let line = line.strip_prefix("export ").unwrap_or(line);
                let rest = ["const ", "let ", "function ", "class "]
                    .iter()
                    .find_map(|k| line.strip_prefix(k));
                let Some(rest) = rest else { continue };
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                    .collect();
                if let Some(other) = seen.insert(name.clone(), *module) {
                    panic!("`{name}` is declared at the top of both {other} and {module}");
                }
            }
        }
    }

    #[test]
    fn the_script_is_the_explorer_modules_without_imports_and_its_hash_is_in_the_csp() {
        let script = inline_script();
        assert!(!script.lines().any(|l| l.starts_with("import ")));
        assert!(!script.lines().any(|l| l.starts_with("export ")));
        assert!(script.contains("function renderExplorer("));
        assert!(script.contains("class ResultsTable"));
        assert!(
            !script.contains("</script"),
            "the script cannot close itself"
        );
        // Every module's imports name modules inlined before it.
        let mut seen = Vec::new();
        for (name, source) in MODULES {
            for line in source.lines().filter(|l| l.starts_with("import ")) {
                let from = line.rsplit("from '").next().unwrap().trim_end_matches("';");
                let from = from.trim_start_matches("./");
                assert!(
                    seen.contains(&from),
                    "{name} imports {from} before it is inlined"
                );
            }
            seen.push(*name);
        }
        let html = render_html(&hostile_data());
        let hash = sha256_base64(&script);
        assert!(html.contains(&format!("script-src 'sha256-{hash}'")));
        assert!(html.contains("default-src 'none'"));
        assert!(html.contains(&format!("<script type=\"module\">{script}</script>")));
    }

    #[test]
    fn the_pages_report_is_the_runs_data_with_thumbnails_beside_it() {
        let summary = serde_json::json!({"runId": "r1", "status": "completed", "csvPath": "labels.csv",
            "statistics": {"total": 2, "processed": 2, "successful": 2, "failed": 0, "remaining": 0},
            "evaluation": {"compared": 2, "agreements": 1, "agreementRate": 0.5, "labels": ["cat", "dog"],
                "confusionMatrix": [[1, 1], [0, 0]], "perLabel": []},
            "allReports": []})
        .to_string();
        let lines: String = (0..2)
            .map(|row| {
                serde_json::json!({"row": row, "line": row + 2, "image": format!("images/{row}.png"),
                    "label": "cat", "prediction": if row == 0 { "cat" } else { "dog" },
                    "agreement": row == 0, "status": "success", "attempts": 1, "latencyMs": 5,
                    "finishedAt": "2025-01-24T10:30:00.000Z"})
                .to_string()
                    + "\n"
            })
            .collect();
        let html = page_report(Some(&summary), None, Some(lines.as_bytes()), None).unwrap();
        let data: serde_json::Value = serde_json::from_str(embedded_json(&html)).unwrap();
        assert_eq!(data["runId"], "r1");
        assert_eq!(data["status"], "completed");
        assert_eq!(data["items"]["row"], serde_json::json!([0, 1]));
        assert_eq!(data["thumbnails"]["base"], "");
        assert_eq!(data["notes"][0], PAGE_THUMBNAILS_NOTE);
        assert!(html.starts_with("<!doctype html>"));
        assert_eq!(
            page_report(None, None, None, None).unwrap_err(),
            ExplorerError::Nothing
        );
        assert!(page_report(Some("[]"), None, None, None).is_err());
    }
}
