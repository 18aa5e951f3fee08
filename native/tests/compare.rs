//! End-to-end tests of the comparison (issue 22): `shadow-batch compare A B` of
//! two built-in-mock runs, the refusal of runs over different CSVs, a run in
//! progress, and a run compared as it goes with `--baseline` and
//! `--baseline-column`.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// `n` distinct images (each example image with its row number appended after
/// the PNG's end, so that no two rows share an image and the mock's answers
/// are independent row to row) labelled `i % 10`, with `extra` columns per
/// row; in `root/data`.
fn distinct_rows(n: usize, header_extra: &str, extra: impl Fn(usize) -> String) -> Data {
    let data = Data::new(0);
    let mut rows = Vec::new();
    for i in 0..n {
        let name = format!("img-{i:05}.png");
        let mut bytes =
            std::fs::read(example_images().join(format!("digit-{:04}.png", i % 300))).unwrap();
        bytes.extend_from_slice(format!("row {i}").as_bytes());
        std::fs::write(data.data.join("images").join(&name), bytes).unwrap();
        rows.push(format!("images/{name},{}{}", i % 10, extra(i)));
    }
    write_csv(&data.csv, &format!("image,label{header_extra}"), &rows);
    data
}

/// A run of the built-in mock over `csv` into `out`, with `flags`; its files.
fn mock_run(data: &Data, csv: &Path, out: &Path, flags: &[&str]) -> (RunFiles, Finished) {
    let mut cmd = shadow(data.root.path());
    cmd.arg(csv)
        .args([
            "--mock-latency-ms",
            "0",
            "--mock-error-rate",
            "0",
            "--concurrency",
            "32",
            "--out-dir",
            p(out),
        ])
        .args(flags);
    let done = run(cmd);
    (RunFiles::in_dir(out), done)
}

fn compare(data: &Data, a: &Path, b: &Path, flags: &[&str]) -> Finished {
    let mut cmd = shadow(data.root.path());
    cmd.arg("compare").arg(a).arg(b).args(flags);
    run(cmd)
}

fn run_id(files: &RunFiles) -> String {
    let name = files
        .results
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    name.strip_prefix("shadow-mode-batch-results-")
        .and_then(|n| n.strip_suffix(".jsonl"))
        .unwrap()
        .to_string()
}

fn comparison_file(a: &RunFiles, b: &RunFiles, dir: &Path) -> PathBuf {
    dir.join(format!(
        "shadow-mode-batch-compare-{}-vs-{}.json",
        run_id(a),
        run_id(b)
    ))
}

/// Two mock runs over 2,000 rows, 85% against 92% accurate: B is found better,
/// with McNemar's p < 0.05, and the JSON beside A holds the figures and rows.
#[test]
fn compare_finds_the_more_accurate_mock_run_better() {
    let data = distinct_rows(2_000, "", |_| String::new());
    let (a, done) = mock_run(
        &data,
        &data.csv,
        &data.dir("a"),
        &["--mock-accuracy", "0.85"],
    );
    done.expect_code(0);
    let (b, done) = mock_run(
        &data,
        &data.csv,
        &data.dir("b"),
        &["--mock-accuracy", "0.92"],
    );
    done.expect_code(0);
    // A by its summary, B by its progress file: any file of a run will do.
    let done = compare(&data, &a.summary, &b.progress, &[]);
    done.expect_code(0);
    done.stdout_has("COMPARISON");
    done.stdout_has("verdict: B agrees with the labels more often than A: +");
    let json = read_json(&comparison_file(&a, &b, a.results.parent().unwrap()));
    assert!(
        json["mcnemar"]["pValue"].as_f64().unwrap() < 0.05,
        "{}",
        json["mcnemar"]
    );
    assert_eq!(json["matching"]["matched"], 2_000);
    assert_eq!(json["matching"]["by"], "lineAndImage");
    let difference = json["difference"].as_f64().unwrap();
    assert!((0.03..0.11).contains(&difference), "{difference}");
    assert!(json["differenceInterval"]["low"].as_f64().unwrap() > 0.0);
    assert_eq!(json["a"]["answered"], 2_000);
    let agreement = |side: &str| json[side]["agreementRate"].as_f64().unwrap();
    assert!((0.82..0.88).contains(&agreement("a")) && (0.89..0.95).contains(&agreement("b")));
    // The cells list their rows; the table shows them with both answers.
    let only_b = json["table"]["onlyBRight"]["rows"].as_array().unwrap();
    assert!(!only_b.is_empty());
    let rows = json["rows"].as_array().unwrap();
    let first = rows.iter().find(|r| r["row"] == only_b[0]).unwrap();
    assert_eq!(first["cell"], "onlyBRight");
    assert_eq!(first["b"], first["label"]);
    assert_ne!(first["a"], first["label"]);
    assert!(first["image"].as_str().unwrap().starts_with("images/img-"));
    assert_eq!(json["perLabel"].as_array().unwrap().len(), 10);
    assert!(json["perLabel"][0]["f1"]["interval"]["low"].is_number());

    // Beside the JSON, its view: one self-contained HTML file embedding the same
    // comparison for the explorer's compare mode, the images found from A's CSV.
    let html_path = comparison_file(&a, &b, a.results.parent().unwrap()).with_extension("html");
    done.stdout_has(&format!("Report:     {}", html_path.display()));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("default-src 'none'"), "no network");
    let embedded = embedded_json(&html);
    assert_eq!(embedded["kind"], "comparison");
    assert_eq!(
        embedded["comparison"], json,
        "the JSON file's comparison, whole"
    );
    assert_eq!(
        embedded["thumbnails"]["base"], "../data/",
        "A's CSV is in data/, beside a/"
    );
    assert!(html.contains("function renderComparison("));
}

/// The JSON a report embeds in its `explorer-data` script.
fn embedded_json(html: &str) -> Value {
    let start = html.find("id=\"explorer-data\">").unwrap() + "id=\"explorer-data\">".len();
    let end = html[start..].find("</script>").unwrap() + start;
    serde_json::from_str(&html[start..end]).unwrap()
}

/// Two runs of the same accuracy with different seeds: different answers on
/// some rows, but no difference shown.
#[test]
fn compare_shows_no_difference_between_equally_accurate_runs() {
    let data = distinct_rows(2_000, "", |_| String::new());
    let flags = |seed| ["--mock-accuracy", "0.85", "--seed", seed];
    let (a, _) = mock_run(&data, &data.csv, &data.dir("a"), &flags("1"));
    let (b, _) = mock_run(&data, &data.csv, &data.dir("b"), &flags("2"));
    let out = data.dir("comparisons");
    let done = compare(&data, &a.results, &b.results, &["--out-dir", p(&out)]);
    done.expect_code(0);
    done.stdout_has("verdict: no difference shown at this sample size (p = ");
    let json = read_json(&comparison_file(&a, &b, &out));
    assert!(json["mcnemar"]["pValue"].as_f64().unwrap() >= 0.05);
    assert!(
        json["mcnemar"]["discordant"].as_u64().unwrap() > 200,
        "the seeds answer differently"
    );
    let interval = &json["differenceInterval"];
    assert!(interval["low"].as_f64().unwrap() < 0.0 && interval["high"].as_f64().unwrap() > 0.0);
}

/// Runs over different CSVs: how many rows match is said and nothing is
/// written (exit 2), unless --allow-partial.
#[test]
fn runs_over_different_csvs_are_refused_unless_allow_partial() {
    let data = distinct_rows(200, "", |_| String::new());
    let (a, _) = mock_run(&data, &data.csv, &data.dir("a"), &[]);
    // Another CSV: the same images, 20 labels changed, 10 rows fewer.
    let text = std::fs::read_to_string(&data.csv).unwrap();
    let other: Vec<String> = text
        .lines()
        .skip(1)
        .take(190)
        .enumerate()
        .map(|(i, line)| {
            if i % 10 == 3 {
                let (image, label) = line.split_once(',').unwrap();
                format!("{image},{}", (label.parse::<u32>().unwrap() + 1) % 10)
            } else {
                line.to_string()
            }
        })
        .collect();
    let other_csv = data.data.join("other.csv");
    write_csv(&other_csv, "image,label", &other);
    let (b, _) = mock_run(&data, &other_csv, &data.dir("b"), &[]);
    let done = compare(&data, &a.results, &b.results, &[]);
    done.expect_code(2);
    done.stderr_has("do not look like runs over the same CSV: 171 rows match");
    done.stderr_has("19 have the same CSV line and image but another label");
    done.stderr_has("A's CSV has 200 rows, B's 190");
    done.stderr_has("--allow-partial");
    let file = comparison_file(&a, &b, a.results.parent().unwrap());
    assert!(!file.exists(), "nothing written");
    let done = compare(&data, &a.results, &b.results, &["--allow-partial"]);
    done.expect_code(0);
    let json = read_json(&file);
    assert_eq!(json["a"]["rows"], 171);
    assert!(json["notes"][0]
        .as_str()
        .unwrap()
        .contains("Only the 171 matching rows are compared"));
}

/// A run still going (no summary yet, some rows done): compared on what
/// exists, and said partial.
#[test]
fn a_run_in_progress_is_compared_on_what_exists_and_marked_partial() {
    let data = distinct_rows(300, "", |_| String::new());
    let (a, _) = mock_run(&data, &data.csv, &data.dir("a"), &[]);
    let (b, _) = mock_run(
        &data,
        &data.csv,
        &data.dir("b"),
        &["--mock-accuracy", "0.5"],
    );
    // B as it was midway: 120 rows in its journal, no summary yet.
    let text = std::fs::read_to_string(&b.results).unwrap();
    let kept: String = text.lines().take(121).map(|l| format!("{l}\n")).collect();
    std::fs::write(&b.results, kept).unwrap();
    std::fs::remove_file(&b.summary).unwrap();
    let done = compare(&data, &a.summary, &b.results, &[]);
    done.expect_code(0);
    done.stdout_has("Partial:");
    let json = read_json(&comparison_file(&a, &b, a.results.parent().unwrap()));
    assert!(
        json["partial"]
            .as_str()
            .unwrap()
            .starts_with("B has no summary yet"),
        "{}",
        json["partial"]
    );
    assert_eq!(json["matching"]["matched"], 120);
    assert_eq!(json["matching"]["onlyInA"], 180);
}

/// `--baseline-column`: the CSV's incumbent decisions compared with the
/// model's answers, each against the label; values outside the labels and
/// empty cells are said. A column the CSV lacks stops the run before any file
/// is made.
#[test]
fn a_baseline_column_is_compared_end_to_end() {
    let data = distinct_rows(400, ",decision", |i| {
        let decision = match i % 20 {
            0 => "review".to_string(),
            1 => String::new(),
            2..=7 => ((i + 3) % 10).to_string(),
            _ => (i % 10).to_string(),
        };
        format!(",{decision}")
    });
    let out = data.dir("run");
    let (files, done) = mock_run(&data, &data.csv, &out, &["--baseline-column", "decision"]);
    done.expect_code(0);
    done.stdout_has("COMPARED WITH THE BASELINE");
    done.stdout_has("A:  column decision");
    done.stdout_has("Verdict:          B agrees with the labels more often than A");
    let summary = files.summary();
    let c = &summary["comparison"];
    assert_eq!(c["matching"]["by"], "row");
    assert_eq!(c["a"]["failed"], 20, "the empty cells");
    assert_eq!(c["a"]["agreements"], 400 - 20 - 20 - 120);
    assert_eq!(
        c["table"]["onlyAFailed"]["count"].as_u64().unwrap()
            + c["table"]["bothFailed"]["count"].as_u64().unwrap(),
        20
    );
    let notes = c["notes"].to_string();
    assert!(notes.contains("\\\"review\\\" (20 rows)"), "{notes}");
    assert!(notes.contains("20 rows have no value"), "{notes}");
    assert!(c.get("rows").is_none(), "the summary keeps no rows");
    assert!(c["mcnemar"]["pValue"].as_f64().unwrap() < 0.05);
    // The run's HTML report carries the summary's comparison for its explorer
    // to draw (figures, no row lists).
    let report = files
        .results
        .to_string_lossy()
        .replace("-results-", "-report-")
        .replace(".jsonl", ".html");
    let report = std::fs::read_to_string(report).unwrap();
    assert_eq!(embedded_json(&report)["comparison"], *c);

    let missing = data.dir("missing");
    let mut cmd = shadow(data.root.path());
    cmd.arg(&data.csv)
        .args(["--baseline-column", "verdict", "--out-dir", p(&missing)]);
    let done = run(cmd);
    done.expect_code(2);
    done.stderr_has("--baseline-column \"verdict\": the CSV has no such column (its columns besides image, label and id: decision)");
    assert!(
        all_files(&missing).is_empty(),
        "no file of the run was made"
    );
}

/// `--baseline FILE`: the run's summary holds the comparison with the earlier
/// run, the same as `shadow-batch compare` of the two finds.
#[test]
fn a_baseline_run_is_compared_as_the_run_finishes() {
    let data = distinct_rows(600, "", |_| String::new());
    let (a, _) = mock_run(
        &data,
        &data.csv,
        &data.dir("a"),
        &["--mock-accuracy", "0.7"],
    );
    let (b, done) = mock_run(
        &data,
        &data.csv,
        &data.dir("b"),
        &["--mock-accuracy", "0.9", "--baseline", p(&a.progress)],
    );
    done.expect_code(0);
    done.stdout_has("COMPARED WITH THE BASELINE");
    let live = b.summary()["comparison"].clone();
    assert_eq!(live["a"]["runId"], run_id(&a));
    let done = compare(&data, &a.results, &b.results, &[]);
    done.expect_code(0);
    let files: Value = read_json(&comparison_file(&a, &b, a.results.parent().unwrap()));
    for field in [
        "table",
        "difference",
        "differenceInterval",
        "mcnemar",
        "kappaBetween",
        "perLabel",
        "verdict",
    ] {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(cells) = v.as_object_mut() {
                for cell in cells.values_mut() {
                    if let Some(c) = cell.as_object_mut() {
                        c.remove("rows");
                    }
                }
            }
            v
        };
        assert_eq!(strip(&live[field]), strip(&files[field]), "{field}");
    }
    assert!(live["verdict"].as_str().unwrap().starts_with("B agrees"));
}
