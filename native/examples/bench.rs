//! The benchmark harness of shadow-batch: the figures users care about, side by
//! side in one run. It prints one table (and writes it as markdown, with the exact
//! commands it ran, to `target/bench-report.md`); it asserts nothing.
//!
//! Run everything with `bash scripts/bench.sh` (builds the CLI, this harness, the
//! naive client and the engine benchmark natively and for wasm32-wasip1, installs
//! `wrk` when missing, then runs this). By hand, after those builds:
//!
//! ```sh
//! target/release/examples/bench [SCENARIO...]   # 1..7, default all
//! ```
//!
//! with `SHADOW_BENCH_ENGINE` / `SHADOW_BENCH_ENGINE_WASM` naming the built engine
//! benchmark (native executable / `.wasm`) for scenario 3.
//!
//! Scenarios (all traffic on 127.0.0.1, against `shadow-batch mock-server`). The
//! pacing scenarios (1, 5, 6, 7) run shadow-batch with its default flags, as a
//! user would, and put a "tuned" figure (the best flags for the case) beside each
//! default one:
//! 1. Rate-limit efficiency (RPM): mock `--rpm 6000 --latency-ms 100` (3,000
//!    images) and `--rpm 3000 --latency-ms 300` (1,500 images), each with and
//!    without `x-ratelimit-*` headers (`--no-ratelimit-headers`), `--error-rate
//!    0.01`: throughput over the limit (ideal N / (rpm/60)) and the share of
//!    requests answered 429; tuned: `--concurrency 32`. Also the naive
//!    one-at-a-time client (`examples/naive.rs`, on 150 images) at 6,000 rpm.
//! 2. Pipeline ceiling: mock with no latency and no limit; images/s through the
//!    whole CLI next to `wrk` POSTing the same body, taking turns over 3 rounds,
//!    once sharing both cores with the mock and once pinned (`taskset`: the mock
//!    on core 0, the client on core 1).
//! 3. Engine overhead: `core/benches/engine.rs`, natively and as wasm under node.
//! 4. Memory and report cost: 1,000,000 URL rows against the fastest mock: peak RSS
//!    (and its growth per row, from a 100,000-row run) and the share of wall time
//!    spent writing reports (`SHADOW_BATCH_TIMINGS=1`, `report-write-ms:`).
//! 5. Stragglers: one image made to take 30 s by the mock; time until the other
//!    1,999 images are done, with and without it, at default flags; tuned:
//!    `--concurrency 32`.
//! 6. Tokens-per-minute limit (TPM): mock `--tpm 2000000 --rpm 6000 --latency-ms
//!    300 --error-rate 0.01` (each request charged 2,833 tokens for its image, its
//!    text / 4 and its `max_tokens`, 1,000 when unset, at admission), the 300
//!    shipped images: admitted tokens per second (the mock's `tokensAdmitted` over
//!    the wall time) over tpm / 60, and the share answered 429; tuned:
//!    shadow-batch `--tpm 2000000` (skipped when its `--help` has no `--tpm`).
//! 7. Latency-bound, no limit: mock `--latency-ms 500 --error-rate 0`, 2,000
//!    images: wall time against 2,000 × 0.5 s / C, C the default in-flight limit
//!    (`--max-concurrency`'s default when `--help` shows it, else
//!    `--concurrency`'s); tuned: `--concurrency 256`.

// The harness is a host: it reads the clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use shadow_core::image::to_data_url;
use shadow_core::input::{read_labels_csv, ColumnNames, Item};
use shadow_core::provider::{ImageDetail, OpenAiConfig, Provider};
use shadow_core::time::parse_iso8601;

/// Scenario 1: the rate-limit cases, (rpm, mock latency in ms, images): about
/// 30 s each at the limit.
const S1_CASES: [(u32, u64, usize); 2] = [(6000, 100, 3000), (3000, 300, 1500)];
const S1_ERROR_RATE: &str = "0.01";

/// The mock's flags for a scenario-1 endpoint of `rpm` and `latency` ms.
fn s1_mock_flags<'a>(rpm: &'a str, latency: &'a str) -> [&'a str; 6] {
    [
        "--rpm",
        rpm,
        "--latency-ms",
        latency,
        "--error-rate",
        S1_ERROR_RATE,
    ]
}
/// The tuned figure beside each default one: enough in flight for 100 requests/s
/// at 300 ms; pacing still from the endpoint's own headers (no --rpm).
const TUNED_CONCURRENCY: &str = "32";
/// The fastest mock: no latency, no injected errors, no limit (the product default
/// mock waits 120 ms and fails 2%).
const FASTEST_MOCK: [&str; 4] = ["--latency-ms", "0", "--error-rate", "0"];
/// The naive client is slow by design: a twentieth of the images keeps the harness
/// short; its ratio does not depend on N. It runs against the first case.
const S1_NAIVE_IMAGES: usize = 150;

/// Scenario 2.
const S2_IMAGES: usize = 40_000;
const S2_CONCURRENCY: [usize; 2] = [16, 32];
const S2_WRK_SECS: u32 = 4;
const S2_ROUNDS: usize = 3;
/// Cores of the pinned runs: the endpoint on one, the client (shadow-batch or wrk)
/// on the other, as when the endpoint is another machine; sharing both cores
/// instead measures how much CPU a client leaves the mock as much as its own speed.
const MOCK_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

/// Scenario 3: runs of the engine bench per build (the best is the figure).
const ENGINE_RUNS: usize = 5;

/// Scenario 4.
const S4_ROWS: usize = 1_000_000;
const S4_SMALL_ROWS: usize = 100_000;

/// Scenario 5.
const S5_IMAGES: usize = 2000;
const S5_SLOW_MS: u64 = 30_000;
const S5_LATENCY: &str = "50";
/// In-flight limit of the tuned straggler runs (`SHADOW_BENCH_S5_CONCURRENCY`
/// overrides it). A straggler holds one of the slots for its whole 30 s, so with a
/// fixed limit the others lose about 1/concurrency of the capacity: 12.5% at 8,
/// 3% at 32.
const S5_CONCURRENCY: &str = TUNED_CONCURRENCY;
/// The straggler's row: in the first batch, where it could hold the most back.
const S5_SLOW_ROW: usize = 25;

/// Scenario 6: a limit of 2,000,000 tokens per minute (33,333 per second): about
/// 11 images per second at the ~2,925 tokens a request is charged with the
/// max_tokens shadow-batch sends (8.5 at ~3,900 without); the request limit, 100
/// per second, never binds. The 300 shipped images once: 27-35 s.
const S6_TPM: u64 = 2_000_000;
const S6_RPM: u32 = 6000;
const S6_LATENCY: &str = "300";
const S6_IMAGES: usize = 300;

/// Scenario 7.
const S7_IMAGES: usize = 2000;
const S7_LATENCY_MS: u64 = 500;
/// The tuned in-flight limit: the coming default maximum.
const S7_TUNED_CONCURRENCY: usize = 256;

fn main() -> Result<()> {
    let wanted: Vec<u32> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .ok()
                .filter(|n| (1..=7).contains(n))
                .ok_or_else(|| anyhow!("usage: bench [1-7 ...] (got {a:?})"))
        })
        .collect::<Result<_>>()?;
    let run = |n: u32| wanted.is_empty() || wanted.contains(&n);
    let mut b = Bench::new()?;
    let started = Instant::now();
    note(&format!("temp dir {}", b.tmp.path().display()));
    let scenarios: [(u32, Scenario); 7] = [
        (1, Bench::rate_limit),
        (2, Bench::ceiling),
        (3, Bench::engine),
        (4, Bench::memory),
        (5, Bench::stragglers),
        (6, Bench::token_limit),
        (7, Bench::latency_bound),
    ];
    for (n, scenario) in scenarios {
        if run(n) {
            let t = Instant::now();
            let load = load_average();
            b.say(
                n,
                &format!("load average at the start of the scenario: {load}"),
            );
            if let Err(e) = scenario(&mut b) {
                note(&format!("scenario {n} failed: {e:#}"));
                b.fig(n, "scenario failed", "—", &format!("{e:#}"), None);
            }
            note(&format!(
                "scenario {n} took {:.0} s",
                t.elapsed().as_secs_f64()
            ));
        }
    }
    let report = b.report(started.elapsed());
    println!("{report}");
    let path = b.root.join("target/bench-report.md");
    fs::write(&path, &report).with_context(|| format!("cannot write {}", path.display()))?;
    note(&format!("written to {}", path.display()));
    Ok(())
}

/// One scenario: runs, and adds its figures to the table.
type Scenario = fn(&mut Bench) -> Result<()>;

fn note(text: &str) {
    eprintln!("[bench] {text}");
}

/// One line of the figures table.
struct Figure {
    scenario: u32,
    name: String,
    target: String,
    measured: String,
    pass: Option<bool>,
}

struct Bench {
    root: PathBuf,
    bin: PathBuf,
    naive: PathBuf,
    tmp: tempfile::TempDir,
    data: PathBuf,
    /// (image path relative to `data`, label) of the 300 shipped images.
    images: Vec<(String, String)>,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    use_time: bool,
    figures: Vec<Figure>,
    notes: Vec<String>,
    commands: Vec<String>,
    seq: usize,
    /// Whether processes run pinned to a core (MOCK_CPU, CLIENT_CPU).
    pin: bool,
    /// `shadow-batch --help`: which pacing flags the binary under test has, and
    /// their defaults.
    help: String,
}

impl Bench {
    fn new() -> Result<Bench> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .canonicalize()?;
        let exe = std::env::current_exe()?;
        let release = exe
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| anyhow!("cannot place {}", exe.display()))?
            .to_path_buf();
        let bin = release.join("shadow-batch");
        let naive = release.join("examples/naive");
        for p in [&bin, &naive] {
            if !p.exists() {
                bail!(
                    "{} is missing: build with `cargo build --release -p shadow-native --bins --examples` (or run bash scripts/bench.sh)",
                    p.display()
                );
            }
        }
        let tmp = tempfile::Builder::new().prefix("shadow-bench-").tempdir()?;
        let data = tmp.path().join("data");
        fs::create_dir_all(data.join("images"))?;
        // The shipped example, copied so that the CLI loads real files.
        let labels = root.join("training-data/labels.csv");
        let csv = read_labels_csv(
            BufReader::new(fs::File::open(&labels)?),
            &ColumnNames::default(),
        )
        .with_context(|| format!("{}", labels.display()))?;
        let mut images = Vec::new();
        for item in &csv.items {
            let rel = item.image.as_str().to_owned();
            fs::copy(root.join("training-data").join(&rel), data.join(&rel))
                .with_context(|| format!("cannot copy {rel}"))?;
            images.push((rel, item.label.to_string()));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let help = Command::new(&bin).arg("--help").output()?;
        if !help.status.success() {
            bail!("{} --help exited with {}", bin.display(), help.status);
        }
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        Ok(Bench {
            root,
            bin,
            naive,
            tmp,
            data,
            images,
            rt,
            http: reqwest::Client::new(),
            use_time: Path::new("/usr/bin/time").exists(),
            figures: Vec::new(),
            notes: Vec::new(),
            commands: Vec::new(),
            seq: 0,
            pin: false,
            help,
        })
    }

    fn fig(&mut self, scenario: u32, name: &str, target: &str, measured: &str, pass: Option<bool>) {
        note(&format!("  {name}: {measured}"));
        self.figures.push(Figure {
            scenario,
            name: name.into(),
            target: target.into(),
            measured: measured.into(),
            pass,
        });
    }

    /// A figure with no target and no verdict: tuned flags, or a tool that is
    /// not installed.
    fn untargeted_fig(&mut self, scenario: u32, name: &str, measured: &str) {
        self.fig(scenario, name, "—", measured, None);
    }

    /// A fresh number, for run folders.
    fn tmp_seq(&mut self) -> usize {
        self.seq += 1;
        self.seq
    }

    fn say(&mut self, scenario: u32, text: &str) {
        note(&format!("  {text}"));
        self.notes.push(format!("{scenario}. {text}"));
    }

    /// A command line as run, temp paths shortened to `$TMP`.
    fn record(&mut self, cmd: &Command) {
        let mut line = String::new();
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                let _ = write!(line, "{}={} ", k.to_string_lossy(), v.to_string_lossy());
            }
        }
        line.push_str(&cmd.get_program().to_string_lossy());
        for a in cmd.get_args() {
            line.push(' ');
            line.push_str(&a.to_string_lossy());
        }
        let mut line = line
            .replace(&self.tmp.path().display().to_string(), "$TMP")
            .replace(&format!("{}/", self.root.display()), "");
        // Mock ports differ from run to run.
        let host = "http://127.0.0.1:";
        let mut from = 0;
        while let Some(at) = line[from..].find(host) {
            let digits = from + at + host.len();
            let end = line[digits..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(line.len(), |e| digits + e);
            line.replace_range(digits..end, "PORT");
            from = digits;
        }
        if !self.commands.contains(&line) {
            self.commands.push(line);
        }
    }

    // -----------------------------------------------------------------------
    // Data
    // -----------------------------------------------------------------------

    /// A CSV of `n` rows cycling over the shipped images (path images).
    fn path_csv(&self, name: &str, n: usize) -> Result<PathBuf> {
        self.path_csv_with(name, n, |i| &self.images[i % self.images.len()])
    }

    fn path_csv_with<'a>(
        &self,
        name: &str,
        n: usize,
        row: impl Fn(usize) -> &'a (String, String),
    ) -> Result<PathBuf> {
        let path = self.data.join(name);
        let mut w = BufWriter::new(fs::File::create(&path)?);
        writeln!(w, "image,label")?;
        for i in 0..n {
            let (image, label) = row(i);
            writeln!(w, "{image},{label}")?;
        }
        w.flush()?;
        Ok(path)
    }

    /// A CSV of `n` rows with https URL images (the mock never fetches them).
    fn url_csv(&self, name: &str, n: usize) -> Result<PathBuf> {
        let path = self.data.join(name);
        let mut w = BufWriter::new(fs::File::create(&path)?);
        writeln!(w, "image,label")?;
        for i in 0..n {
            writeln!(w, "https://images.example/digit-{i:07}.png,{}", i % 10)?;
        }
        w.flush()?;
        Ok(path)
    }

    // -----------------------------------------------------------------------
    // Processes
    // -----------------------------------------------------------------------

    /// `program`, started on core `cpu` (with taskset) when runs are pinned.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>, cpu: usize) -> Command {
        if !self.pin {
            return Command::new(program);
        }
        let mut cmd = Command::new("taskset");
        cmd.arg("-c").arg(cpu.to_string()).arg(program);
        cmd
    }

    fn mock(&mut self, flags: &[&str]) -> Result<Mock> {
        let mut cmd = self.command(&self.bin, MOCK_CPU);
        cmd.args(["mock-server", "--port", "0"]).args(flags);
        self.record(&cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut proc = Proc::spawn(cmd, "mock-server")?;
        let stdout = proc
            .child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout);
        let mut first = String::new();
        lines.read_line(&mut first)?;
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .ok_or_else(|| anyhow!("the mock said {first:?}"))?
            .trim_end_matches('/')
            .to_owned();
        // Keep its stdout drained so that it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
        let base = url
            .strip_suffix("/v1")
            .ok_or_else(|| anyhow!("unexpected mock URL {url}"))?
            .to_owned();
        Ok(Mock { proc, base })
    }

    fn stats(&self, mock: &Mock) -> Result<Value> {
        let url = format!("{}/stats", mock.base);
        self.rt.block_on(async {
            let text = self
                .http
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .text()
                .await?;
            Ok(serde_json::from_str(&text)?)
        })
    }

    /// Runs shadow-batch on `csv` against `mock` and reads what it left.
    fn cli(&mut self, name: &str, csv: &Path, mock: &Mock, flags: &[&str]) -> Result<CliRun> {
        let out = self.tmp.path().join("runs").join(name);
        fs::create_dir_all(&out)?;
        let time_file = out.join("time.txt");
        let mut cmd = if self.use_time {
            let mut c = self.command("/usr/bin/time", CLIENT_CPU);
            c.arg("-f").arg("maxrss_kb=%M").arg("-o").arg(&time_file);
            c.arg(&self.bin);
            c
        } else {
            self.command(&self.bin, CLIENT_CPU)
        };
        cmd.arg(csv)
            .args(["--provider", "openai", "--base-url"])
            .arg(format!("{}/v1", mock.base))
            .arg("--out-dir")
            .arg(&out)
            .args(flags)
            .env("OPENAI_API_KEY", "dummy")
            .env("SHADOW_BATCH_TIMINGS", "1");
        self.record(&cmd);
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(out.join("stdout.txt"))?)
            .stderr(fs::File::create(out.join("stderr.txt"))?);
        let start = Instant::now();
        let mut proc = Proc::spawn(cmd, name)?;
        let mut hwm_kb = None;
        let status = loop {
            if let Some(status) = proc.child.try_wait()? {
                break status;
            }
            if !self.use_time {
                hwm_kb = vm_hwm_kb(proc.child.id()).or(hwm_kb);
            }
            if start.elapsed() > Duration::from_secs(300) {
                proc.kill();
                bail!("{name}: shadow-batch still running after 300 s; killed");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let wall = start.elapsed();
        drop(proc);
        let stderr = fs::read_to_string(out.join("stderr.txt")).unwrap_or_default();
        let after = |key: &str| -> Option<u64> {
            stderr
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
        };
        let report_write_ms = after("report-write-ms:");
        let progress_writes = after("progress-writes:");
        let max_rss_kb = if self.use_time {
            fs::read_to_string(&time_file).ok().and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("maxrss_kb=")?.trim().parse().ok())
            })
        } else {
            hwm_kb
        };
        if !matches!(status.code(), Some(0 | 1)) {
            bail!(
                "{name}: shadow-batch exited with {status}: {}",
                stderr.lines().rev().take(5).collect::<Vec<_>>().join(" / ")
            );
        }
        let mut summary = None;
        let mut results = None;
        for entry in fs::read_dir(&out)? {
            let path = entry?.path();
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            if file.starts_with("shadow-mode-batch-results-") {
                results = Some(path.clone());
            } else if file.starts_with("shadow-mode-batch-")
                && !file.starts_with("shadow-mode-batch-progress-")
                && file.ends_with(".json")
            {
                summary = Some(path.clone());
            }
        }
        let summary_path = summary.ok_or_else(|| anyhow!("{name}: no summary file"))?;
        let summary: Value = serde_json::from_slice(&fs::read(&summary_path)?)?;
        Ok(CliRun {
            wall,
            summary,
            results: results.ok_or_else(|| anyhow!("{name}: no results file"))?,
            max_rss_kb,
            report_write_ms,
            progress_writes,
        })
    }

    // -----------------------------------------------------------------------
    // 1. Rate-limit efficiency
    // -----------------------------------------------------------------------

    fn rate_limit(&mut self) -> Result<()> {
        note("1. rate-limit efficiency (RPM)");
        let tuned = ["--concurrency", TUNED_CONCURRENCY];
        for (rpm, latency, images) in S1_CASES {
            let csv = self.path_csv(&format!("s1-{rpm}.csv"), images)?;
            let ideal = images as f64 / (f64::from(rpm) / 60.0);
            let (rpm_s, latency_s) = (rpm.to_string(), latency.to_string());
            for headers in [true, false] {
                let mut flags = s1_mock_flags(&rpm_s, &latency_s).to_vec();
                if !headers {
                    flags.push("--no-ratelimit-headers");
                }
                let case = format!(
                    "{} rpm, {latency} ms, {}",
                    thousands(f64::from(rpm)),
                    if headers { "headers" } else { "no headers" }
                );
                for cli in [&[][..], &tuned[..]] {
                    let default = cli.is_empty();
                    let mock = self.mock(&flags)?;
                    let name = format!(
                        "s1-{rpm}-{}-{}",
                        if headers { "headers" } else { "no-headers" },
                        if default { "default" } else { "tuned" }
                    );
                    let run = self.cli(&name, &csv, &mock, cli)?;
                    let stats = self.stats(&mock)?;
                    drop(mock);
                    let ratio = ideal / run.wall.as_secs_f64();
                    let share = limited_share(&stats);
                    self.say(
                        1,
                        &format!(
                            "{case}, shadow-batch {}: {}/{images} images in {:.1} s (ideal {ideal:.1} s), {} requests, {} answered 429, {} retries, engine elapsed {:.1} s",
                            flags_text(cli),
                            run.stat("successful") + run.stat("failed"),
                            run.wall.as_secs_f64(),
                            stats["requests"],
                            stats["rateLimited"],
                            run.stat("retries"),
                            run.stat("elapsedMs") as f64 / 1000.0,
                        ),
                    );
                    let measured = format!("{ratio:.3}, {} answered 429", pct(share));
                    match (default, headers) {
                        (true, true) => self.fig(
                            1,
                            &format!("{case}: throughput / limit, share 429 (default flags)"),
                            "≥ 0.95, ≤ 1%",
                            &measured,
                            Some(ratio >= 0.95 && share <= 0.01),
                        ),
                        (true, false) => self.fig(
                            1,
                            &format!("{case}: throughput / limit, share 429 (default flags)"),
                            "≥ 0.90",
                            &measured,
                            Some(ratio >= 0.90),
                        ),
                        (false, _) => self.untargeted_fig(
                            1,
                            &format!("{case}: the same, tuned ({})", flags_text(cli)),
                            &measured,
                        ),
                    }
                }
            }
        }

        // The naive strategy, on the first case's endpoint.
        let (rpm, latency, images) = S1_CASES[0];
        let csv = self.path_csv(&format!("s1-{rpm}.csv"), images)?;
        let ideal = |n: usize| n as f64 / (f64::from(rpm) / 60.0);
        let (rpm_s, latency_s) = (rpm.to_string(), latency.to_string());
        let mock = self.mock(&s1_mock_flags(&rpm_s, &latency_s))?;
        let mut cmd = Command::new(&self.naive);
        cmd.arg(&csv)
            .arg("--base-url")
            .arg(format!("{}/v1", mock.base))
            .args(["--rpm", &rpm_s, "--limit", &S1_NAIVE_IMAGES.to_string()])
            .env("OPENAI_API_KEY", "dummy");
        self.record(&cmd);
        let start = Instant::now();
        let output = cmd.stderr(Stdio::inherit()).output()?;
        let wall = start.elapsed();
        if !output.status.success() {
            bail!("the naive client exited with {}", output.status);
        }
        let naive: Value = serde_json::from_slice(&output.stdout)?;
        let stats = self.stats(&mock)?;
        drop(mock);
        let ratio = ideal(S1_NAIVE_IMAGES) / wall.as_secs_f64();
        let share = limited_share(&stats);
        self.say(
            1,
            &format!(
                "naive client (one request at a time, {} ms between rows, sleep retry-after on 429), on {S1_NAIVE_IMAGES} of the {images} images at {rpm} rpm, {latency} ms: {} ok in {:.1} s (ideal {:.1} s), {} requests, {} answered 429, {} answered 500; at that rate {images} images take {:.0} s",
                naive["delayMs"],
                naive["successful"],
                wall.as_secs_f64(),
                ideal(S1_NAIVE_IMAGES),
                stats["requests"],
                stats["rateLimited"],
                stats["serverErrors"],
                wall.as_secs_f64() * (images as f64 / S1_NAIVE_IMAGES as f64),
            ),
        );
        self.fig(
            1,
            &format!(
                "naive script, throughput / limit, share 429 ({S1_NAIVE_IMAGES} images, {} rpm, headers)",
                thousands(f64::from(rpm))
            ),
            "— (baseline)",
            &format!("{ratio:.3}, {} answered 429", pct(share)),
            None,
        );
        Ok(())
    }

    // -----------------------------------------------------------------------
    // 2. Pipeline ceiling
    // -----------------------------------------------------------------------

    fn ceiling(&mut self) -> Result<()> {
        note("2. pipeline ceiling");
        let csv = self.path_csv("s2.csv", S2_IMAGES)?;

        // wrk on the same endpoint with the body the CLI sends for one of the images.
        let body = self.data.join("s2-body.json");
        let (image, _) = &self.images[0];
        let url = to_data_url(&fs::read(self.data.join(image))?)?;
        let labels =
            shadow_core::input::LabelSet::from_labels(self.images.iter().map(|(_, l)| l.clone()));
        let provider = Provider::OpenAi(OpenAiConfig {
            base_url: "http://127.0.0.1/v1".into(),
            model: "gpt-4o-mini".into(),
            detail: ImageDetail::Low,
            prompt: None,
        });
        let request = provider.request_template(&labels).build(&url, 1, None);
        fs::write(&body, &request.body)?;
        let lua = self.data.join("s2-post.lua");
        fs::write(
            &lua,
            format!(
                "wrk.method = \"POST\"\n\
                 wrk.headers[\"content-type\"] = \"application/json\"\n\
                 wrk.headers[\"x-stainless-retry-count\"] = \"0\"\n\
                 wrk.headers[\"authorization\"] = \"Bearer dummy\"\n\
                 local f = assert(io.open([[{}]], \"rb\"))\n\
                 wrk.body = f:read(\"*a\")\n\
                 f:close()\n",
                body.display()
            ),
        )?;
        let have_wrk = Command::new("wrk").arg("--version").output().is_ok();
        let have_taskset = Command::new("taskset").arg("-V").output().is_ok();
        if !have_wrk {
            self.untargeted_fig(2, "wrk requests/s", "n/a (wrk not installed)");
        }
        for pinned in [false, true] {
            if pinned && !have_taskset {
                self.untargeted_fig(2, "pinned runs", "n/a (taskset not installed)");
                continue;
            }
            self.pin = pinned;
            let result = self.ceiling_rounds(&csv, &lua, request.body.len(), have_wrk);
            self.pin = false;
            result?;
        }
        Ok(())
    }

    /// Rounds of the CLI and wrk taking turns (the VM's speed drifts over a minute,
    /// so each CLI figure is compared with wrk's from the same round), both at each
    /// in-flight limit; a round's figure is the best of its limits.
    fn ceiling_rounds(&mut self, csv: &Path, lua: &Path, body_len: usize, wrk: bool) -> Result<()> {
        let place = if self.pin {
            "pinned: mock on core 0, client on core 1"
        } else {
            "shared: mock and client on both cores"
        };
        let mut rounds = Vec::new();
        for round in 1..=S2_ROUNDS {
            let (mut best_cli, mut best_wrk) = (0.0f64, 0.0f64);
            for c in S2_CONCURRENCY {
                let mock = self.mock(&FASTEST_MOCK)?;
                let name = format!("s2-c{c}-{}", self.tmp_seq());
                let run = self.cli(&name, csv, &mock, &["--concurrency", &c.to_string()])?;
                drop(mock);
                if run.stat("successful") != S2_IMAGES as u64 {
                    bail!("shadow-batch -c {c}: {} successful", run.stat("successful"));
                }
                let rate = S2_IMAGES as f64 / run.wall.as_secs_f64();
                self.say(
                    2,
                    &format!(
                        "{place}, round {round}: shadow-batch --concurrency {c}: {S2_IMAGES} images in {:.2} s = {rate:.0} images/s (engine elapsed {:.2} s)",
                        run.wall.as_secs_f64(),
                        run.stat("elapsedMs") as f64 / 1000.0
                    ),
                );
                best_cli = best_cli.max(rate);
                if !wrk {
                    continue;
                }
                let mock = self.mock(&FASTEST_MOCK)?;
                let threads = if self.pin { "1" } else { "2" };
                let mut cmd = self.command("wrk", CLIENT_CPU);
                cmd.args(["-t", threads, "-c", &c.to_string()])
                    .arg("-d")
                    .arg(format!("{S2_WRK_SECS}s"))
                    .arg("-s")
                    .arg(lua)
                    .arg(format!("{}/v1/chat/completions", mock.base));
                self.record(&cmd);
                let output = cmd.stderr(Stdio::inherit()).output()?;
                let stats = self.stats(&mock)?;
                drop(mock);
                let text = String::from_utf8_lossy(&output.stdout);
                let rate: f64 = text
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| anyhow!("no Requests/sec in wrk's output: {text}"))?;
                let ok = stats["ok"].as_u64().unwrap_or(0);
                let requests = stats["requests"].as_u64().unwrap_or(0);
                self.say(
                    2,
                    &format!(
                        "{place}, round {round}: wrk -t {threads} -c {c} -d {S2_WRK_SECS}s (same {body_len} byte body): {rate:.0} requests/s; the mock answered {ok} of {requests} with 200"
                    ),
                );
                best_wrk = best_wrk.max(rate);
            }
            rounds.push((best_cli, best_wrk));
        }
        let short = if self.pin { "pinned" } else { "shared cores" };
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let cli = median(rounds.iter().map(|r| r.0).collect());
        self.fig(
            2,
            &format!("{short}: shadow-batch images/s (median of {S2_ROUNDS} rounds)"),
            "—",
            &format!("{cli:.0}"),
            None,
        );
        if !wrk {
            return Ok(());
        }
        let wrk_rate = median(rounds.iter().map(|r| r.1).collect());
        self.fig(
            2,
            &format!("{short}: wrk requests/s (median of {S2_ROUNDS} rounds)"),
            "—",
            &format!("{wrk_rate:.0}"),
            None,
        );
        let ratios: Vec<f64> = rounds.iter().map(|(c, w)| c / w).collect();
        let listed = ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        let ratio = median(ratios);
        self.fig(
            2,
            &format!("{short}: shadow-batch / wrk, median of rounds ({listed})"),
            "≥ 0.50",
            &format!("{ratio:.2}"),
            Some(ratio >= 0.5),
        );
        Ok(())
    }

    // -----------------------------------------------------------------------
    // 3. Engine overhead
    // -----------------------------------------------------------------------

    fn engine(&mut self) -> Result<()> {
        note("3. engine overhead");
        let items = "1000000";
        let native = std::env::var_os("SHADOW_BENCH_ENGINE").map(|path| {
            move || {
                let mut cmd = Command::new(&path);
                cmd.arg(items);
                cmd
            }
        });
        let runner = self.root.join("scripts/wasi-run.mjs");
        let wasm = std::env::var_os("SHADOW_BENCH_ENGINE_WASM").map(|path| {
            move || {
                let mut cmd = Command::new("node");
                cmd.arg("--no-warnings").arg(&runner).arg(&path).arg(items);
                cmd
            }
        });
        // Native and wasm take turns, so that both meet the same moods of the VM.
        let (mut native_runs, mut wasm_runs) = (Vec::new(), Vec::new());
        for _ in 0..ENGINE_RUNS {
            if let Some(make) = &native {
                native_runs.push(self.engine_run(make(), "native")?);
            }
            if let Some(make) = &wasm {
                wasm_runs.push(self.engine_run(make(), "wasm")?);
            }
        }
        let native = self.engine_figures("native", native_runs);
        let wasm = self.engine_figures("wasm32-wasip1 under node", wasm_runs);
        match native {
            Some(n) => self.fig(
                3,
                &format!("engine items/s, native (best of {ENGINE_RUNS})"),
                "≥ 1,000,000",
                &thousands(n),
                Some(n >= 1e6),
            ),
            None => self.fig(
                3,
                "engine items/s, native",
                "≥ 1,000,000",
                "n/a (SHADOW_BENCH_ENGINE not set)",
                None,
            ),
        }
        match (wasm, native) {
            (Some(w), n) => {
                self.fig(
                    3,
                    &format!("engine items/s, wasm32-wasip1 under node (best of {ENGINE_RUNS})"),
                    "—",
                    &thousands(w),
                    None,
                );
                if let Some(n) = n {
                    self.fig(
                        3,
                        "engine wasm / native (best of each)",
                        "≥ 0.30",
                        &format!("{:.2}", w / n),
                        Some(w / n >= 0.3),
                    );
                }
            }
            (None, _) => self.fig(
                3,
                "engine items/s, wasm",
                "≥ 0.30 × native",
                "n/a (SHADOW_BENCH_ENGINE_WASM not set)",
                None,
            ),
        }
        Ok(())
    }

    /// The engine's own bytes per item at its peak (beyond the items), from the
    /// engine benchmark's allocation-counting pass; `None` without the benchmark.
    fn engine_bytes_per_item(&mut self) -> Result<Option<f64>> {
        let Some(path) = std::env::var_os("SHADOW_BENCH_ENGINE") else {
            return Ok(None);
        };
        let mut cmd = Command::new(path);
        cmd.arg("1000000");
        self.record(&cmd);
        let output = cmd.stderr(Stdio::inherit()).output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(text
            .lines()
            .filter_map(|l| l.strip_prefix("engine extra at peak:"))
            .next_back()
            .and_then(|v| v.split_whitespace().next()?.parse().ok()))
    }

    /// One run of the engine bench: pass 1's throughput, and its answer-parsing figure.
    fn engine_run(&mut self, mut cmd: Command, what: &str) -> Result<(f64, String)> {
        self.record(&cmd);
        let output = cmd.stderr(Stdio::inherit()).output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "engine bench ({what}) exited with {}: {text}",
                output.status
            );
        }
        // The first "throughput:" line is pass 1 (speed; pass 2 counts allocations).
        let rate = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("throughput:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .ok_or_else(|| anyhow!("no throughput line in the engine bench output: {text}"))?;
        let parse = text
            .lines()
            .find_map(|l| l.strip_prefix("-- answer parsing alone:"))
            .and_then(|p| p.split_whitespace().next())
            .unwrap_or("?")
            .to_owned();
        Ok((rate, parse))
    }

    /// Says every run's figures; returns the best. This VM's speed swings by half
    /// within minutes (neighbours take the CPU), which only ever slows a run down:
    /// the best run is the figure of the code, the others of the neighbours.
    fn engine_figures(&mut self, what: &str, runs: Vec<(f64, String)>) -> Option<f64> {
        if runs.is_empty() {
            return None;
        }
        let mut rates: Vec<f64> = runs.iter().map(|r| r.0).collect();
        let all = rates
            .iter()
            .map(|r| thousands(*r))
            .collect::<Vec<_>>()
            .join(" / ");
        let parse = runs
            .iter()
            .map(|r| r.1.as_str())
            .collect::<Vec<_>>()
            .join(" / ");
        rates.sort_by(f64::total_cmp);
        let (median, best) = (rates[rates.len() / 2], rates[rates.len() - 1]);
        self.say(
            3,
            &format!(
                "engine bench ({what}), 1,000,000 items, pass 1, {} runs: {all} items/s (median {}, best {}); answer parsing alone: {parse} answers/s",
                runs.len(),
                thousands(median),
                thousands(best),
            ),
        );
        Some(best)
    }

    // -----------------------------------------------------------------------
    // 4. Memory and report cost
    // -----------------------------------------------------------------------

    fn memory(&mut self) -> Result<()> {
        note("4. memory and report cost at scale");
        let flags = ["--concurrency", "32"];
        let mut runs = Vec::new();
        for rows in [S4_SMALL_ROWS, S4_ROWS] {
            let csv = self.url_csv(&format!("s4-{rows}.csv"), rows)?;
            let mock = self.mock(&FASTEST_MOCK)?;
            let run = self.cli(&format!("s4-{rows}"), &csv, &mock, &flags)?;
            drop(mock);
            fs::remove_file(&csv)?;
            let wall_ms = run.wall.as_secs_f64() * 1000.0;
            let share = run.report_write_ms.map(|ms| ms as f64 / wall_ms);
            self.say(
                4,
                &format!(
                    "{} URL rows, --concurrency 32, batch size 50 (default): {:.1} s = {:.0} rows/s, peak RSS {}, reports written in {} ms over {} progress writes ({}), {} successful",
                    thousands(rows as f64),
                    run.wall.as_secs_f64(),
                    rows as f64 / run.wall.as_secs_f64(),
                    run.max_rss_kb.map_or("n/a".into(), |kb| format!("{:.1} MB", kb as f64 / 1000.0)),
                    run.report_write_ms.map_or("n/a".into(), |v| v.to_string()),
                    run.progress_writes.map_or("n/a".into(), |v| v.to_string()),
                    share.map_or("n/a".into(), pct),
                    run.stat("successful"),
                ),
            );
            fs::remove_file(&run.results).ok();
            runs.push((rows, run.max_rss_kb, share));
        }
        let (small, big) = (&runs[0], &runs[1]);
        match big.1 {
            Some(kb) => self.fig(
                4,
                "peak RSS, 1,000,000 rows",
                "< 200 MB",
                &format!("{:.1} MB", kb as f64 / 1000.0),
                Some((kb as f64) * 1024.0 < 200e6),
            ),
            None => self.fig(4, "peak RSS, 1,000,000 rows", "< 200 MB", "n/a", None),
        }
        if let (Some(a), Some(b)) = (small.1, big.1) {
            let per_row = (b as f64 - a as f64) * 1024.0 / (big.0 - small.0) as f64;
            let items = item_list_bytes_per_row();
            self.say(
                4,
                &format!(
                    "item list estimate: Item struct {} B + URL text ({} B, a {} B malloc chunk; labels are shared) = {items:.0} B/row, {:.0} MB for 1,000,000 rows",
                    std::mem::size_of::<Item>(),
                    SAMPLE_URL.len(),
                    malloc_chunk(SAMPLE_URL.len()),
                    items * S4_ROWS as f64 / 1e6
                ),
            );
            // The engine keeps some state per row too (phase, attempts, latency):
            // its own benchmark counts it with its allocator.
            match self.engine_bytes_per_item()? {
                Some(engine) => {
                    let held = items + engine;
                    self.say(
                        4,
                        &format!("the engine's state at its peak, counted by the engine benchmark's allocator: {engine:.1} B/row; with the item list {held:.0} B/row"),
                    );
                    self.fig(
                        4,
                        "RSS growth per row (100k → 1M rows)",
                        &format!("≈ item list + engine state ({held:.0} B/row)"),
                        &format!("{per_row:.0} B/row"),
                        // Vec<Item> grows by doubling, and RSS counts whole pages.
                        Some(per_row <= held * 1.1),
                    );
                }
                None => self.fig(
                    4,
                    "RSS growth per row (100k → 1M rows)",
                    &format!("≈ item list ({items:.0} B/row) + engine state"),
                    &format!("{per_row:.0} B/row"),
                    Some(per_row <= items * 1.25),
                ),
            }
        }
        match big.2 {
            Some(share) => self.fig(
                4,
                "share of wall time writing reports, 1M rows",
                "< 2%",
                &pct(share),
                Some(share < 0.02),
            ),
            None => self.fig(
                4,
                "share of wall time writing reports, 1M rows",
                "< 2%",
                "n/a (no report-write-ms line)",
                None,
            ),
        }
        Ok(())
    }

    // -----------------------------------------------------------------------
    // 5. Stragglers
    // -----------------------------------------------------------------------

    fn stragglers(&mut self) -> Result<()> {
        note("5. stragglers");
        // The mock picks stragglers by a seeded hash of the request content, one
        // image in --slow-every. Find an N that makes at least one of the 300
        // images slow (by running them once with a short --slow-ms), then build a
        // CSV where one such image occurs once and only unaffected images fill the
        // other rows.
        let probe_csv = self.path_csv("s5-probe.csv", self.images.len())?;
        let mut found = None;
        for every in [300u64, 150, 600, 100, 1000, 50] {
            let every_s = every.to_string();
            let mut flags = FASTEST_MOCK.to_vec();
            flags.extend(["--slow-every", &every_s, "--slow-ms", "2000"]);
            let mock = self.mock(&flags)?;
            let run = self.cli(
                &format!("s5-probe-{every}"),
                &probe_csv,
                &mock,
                &["--concurrency", "64"],
            )?;
            drop(mock);
            let slow: Vec<usize> = read_results(&run.results)?
                .iter()
                .filter(|r| r.latency_ms >= 1500)
                .map(|r| r.row)
                .collect();
            if !slow.is_empty() {
                found = Some((every, slow));
                break;
            }
        }
        let (every, slow) =
            found.ok_or_else(|| anyhow!("no --slow-every value made an image slow"))?;
        let straggler = self.images[slow[0]].clone();
        let others: Vec<&(String, String)> = self
            .images
            .iter()
            .enumerate()
            .filter(|(i, _)| !slow.contains(i))
            .map(|(_, x)| x)
            .collect();
        let csv = self.path_csv_with("s5.csv", S5_IMAGES, |i| {
            if i == S5_SLOW_ROW {
                &straggler
            } else {
                others[i % others.len()]
            }
        })?;
        self.say(
            5,
            &format!(
                "mock --slow-every {every} makes {} of the 300 images slow; {} is row {} of {S5_IMAGES} (batch 1), the other rows use only the unaffected images",
                slow.len(),
                straggler.0,
                S5_SLOW_ROW + 1
            ),
        );

        let slow_ms = S5_SLOW_MS.to_string();
        let every_s = every.to_string();
        let tuned =
            std::env::var("SHADOW_BENCH_S5_CONCURRENCY").unwrap_or_else(|_| S5_CONCURRENCY.into());
        let default_in_flight = self.default_in_flight();
        for concurrency in [None, Some(tuned.as_str())] {
            let cli: Vec<&str> = concurrency
                .map(|c| vec!["--concurrency", c])
                .unwrap_or_default();
            let setting = if cli.is_empty() {
                "default flags".to_owned()
            } else {
                format!("tuned ({})", flags_text(&cli))
            };
            let mut others_ms = Vec::new();
            for with in [false, true] {
                let mut flags = vec!["--latency-ms", S5_LATENCY, "--error-rate", "0"];
                if with {
                    flags.extend([
                        "--slow-ms",
                        slow_ms.as_str(),
                        "--slow-every",
                        every_s.as_str(),
                    ]);
                }
                let mock = self.mock(&flags)?;
                let name = format!(
                    "s5-{}-{}",
                    if with { "with" } else { "without" },
                    if cli.is_empty() { "default" } else { "tuned" }
                );
                let run = self.cli(&name, &csv, &mock, &cli)?;
                drop(mock);
                let start = run
                    .summary
                    .get("startedAt")
                    .and_then(Value::as_str)
                    .and_then(parse_iso8601)
                    .ok_or_else(|| anyhow!("{name}: no startedAt in the summary"))?;
                let results = read_results(&run.results)?;
                let others_done = results
                    .iter()
                    .filter(|r| r.row != S5_SLOW_ROW)
                    .map(|r| r.finished_at)
                    .max()
                    .ok_or_else(|| anyhow!("{name}: no results"))?
                    .since(start);
                let straggler_done = results
                    .iter()
                    .find(|r| r.row == S5_SLOW_ROW)
                    .map(|r| r.finished_at.since(start));
                let slow_rows = results.iter().filter(|r| r.latency_ms >= 10_000).count();
                self.say(
                    5,
                    &format!(
                        "{name}: {} rows, {setting}, mock latency {S5_LATENCY} ms: the other {} images done {:.2} s after the start, the straggler row at {}, wall {:.1} s, {slow_rows} row(s) over 10 s",
                        results.len(),
                        S5_IMAGES - 1,
                        others_done as f64 / 1000.0,
                        straggler_done.map_or("?".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
                        run.wall.as_secs_f64(),
                    ),
                );
                if with && slow_rows != 1 {
                    bail!("{slow_rows} rows were slow, not 1");
                }
                others_ms.push(others_done as f64);
            }
            let loss = 1.0 - others_ms[0] / others_ms[1];
            let slots: Option<f64> = match concurrency {
                Some(c) => c.parse().ok(),
                None => default_in_flight
                    .as_ref()
                    .and_then(|d| d.value.parse().ok()),
            };
            if let Some(slots) = slots {
                self.say(
                    5,
                    &format!(
                        "{setting}: a straggler that holds one of {slots} fixed in-flight slots for the whole run leaves the others {:.0}% of the capacity: an expected loss of 1/{slots} = {} (less when the in-flight limit grows beyond {slots})",
                        100.0 * (slots - 1.0) / slots,
                        pct(1.0 / slots)
                    ),
                );
            }
            self.fig(
                5,
                &format!(
                    "{setting}: time until the 1,999 others are done, without → with straggler"
                ),
                "—",
                &format!(
                    "{:.2} s → {:.2} s",
                    others_ms[0] / 1000.0,
                    others_ms[1] / 1000.0
                ),
                None,
            );
            if cli.is_empty() {
                self.fig(
                    5,
                    "throughput loss of the others from one 30 s straggler (default flags)",
                    "< 5%",
                    &pct(loss),
                    Some(loss < 0.05),
                );
            } else {
                self.fig(5, &format!("the same, {setting}"), "—", &pct(loss), None);
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------
    // 6. Tokens-per-minute limit
    // -----------------------------------------------------------------------

    fn token_limit(&mut self) -> Result<()> {
        note("6. tokens-per-minute limit (TPM)");
        let csv = self.path_csv("s6.csv", S6_IMAGES)?;
        let (tpm_s, rpm_s) = (S6_TPM.to_string(), S6_RPM.to_string());
        let flags = [
            "--tpm",
            &tpm_s,
            "--rpm",
            &rpm_s,
            "--latency-ms",
            S6_LATENCY,
            "--error-rate",
            S1_ERROR_RATE,
        ];
        let per_sec = S6_TPM as f64 / 60.0;
        let has_tpm = self.has_flag("--tpm");
        let tuned = ["--tpm", tpm_s.as_str()];
        for cli in [&[][..], &tuned[..]] {
            let default = cli.is_empty();
            if !default && !has_tpm {
                self.untargeted_fig(
                    6,
                    "the same, tuned (--tpm 2000000)",
                    "n/a (this shadow-batch has no --tpm)",
                );
                continue;
            }
            let mock = self.mock(&flags)?;
            let name = format!("s6-{}", if default { "default" } else { "tuned" });
            let run = self.cli(&name, &csv, &mock, cli)?;
            let stats = self.stats(&mock)?;
            drop(mock);
            let get = |k: &str| stats[k].as_u64().unwrap_or(0);
            let wall = run.wall.as_secs_f64();
            let tokens = get("tokensAdmitted");
            let admitted = get("requests") - get("rateLimited") - get("tooLarge");
            // Admitted tokens per second over the limit's rate, as scenario 1's
            // images per second over rpm/60. Both can exceed 1 by up to 1 / wall:
            // the endpoint's bucket is full (one second's worth) at the start.
            // The strict figure counts that burst in what the limit admits.
            let ratio = tokens as f64 / wall / per_sec;
            let strict = tokens as f64 / (per_sec * (wall + 1.0));
            let share = limited_share(&stats);
            self.say(
                6,
                &format!(
                    "{} rpm / {} tpm, {S6_LATENCY} ms, shadow-batch {}: {}/{S6_IMAGES} images in {wall:.1} s, {} requests, {} answered 429 ({} by the token limit), {} too large (400), {} retries; {} tokens admitted = {:.0} tokens/s of the {per_sec:.0} allowed ({ratio:.3} of the rate; {strict:.3} of the {per_sec:.0} × (wall + 1 s) the limit admits counting its initial one-second burst), {:.0} tokens per admitted request, {:.2} requests/s admitted",
                    thousands(f64::from(S6_RPM)),
                    thousands(S6_TPM as f64),
                    flags_text(cli),
                    run.stat("successful") + run.stat("failed"),
                    get("requests"),
                    get("rateLimited"),
                    get("tokenLimited"),
                    get("tooLarge"),
                    run.stat("retries"),
                    thousands(tokens as f64),
                    tokens as f64 / wall,
                    tokens as f64 / admitted.max(1) as f64,
                    admitted as f64 / wall,
                ),
            );
            let measured = format!("{ratio:.3}, {} answered 429", pct(share));
            if default {
                self.fig(
                    6,
                    "2,000,000 tpm, 300 ms, token headers: admitted tokens/s / (tpm/60), share 429 (default flags)",
                    "≥ 0.95, ≤ 1%",
                    &measured,
                    Some(ratio >= 0.95 && share <= 0.01),
                );
            } else {
                self.untargeted_fig(
                    6,
                    &format!("the same, tuned ({})", flags_text(cli)),
                    &measured,
                );
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------
    // 7. Latency-bound, no limit
    // -----------------------------------------------------------------------

    fn latency_bound(&mut self) -> Result<()> {
        note("7. latency-bound, no limit");
        let csv = self.path_csv("s7.csv", S7_IMAGES)?;
        let latency_s = S7_LATENCY_MS.to_string();
        let flags = ["--latency-ms", latency_s.as_str(), "--error-rate", "0"];
        let latency = S7_LATENCY_MS as f64 / 1000.0;
        let default = self
            .default_in_flight()
            .ok_or_else(|| anyhow!("no in-flight default in shadow-batch --help"))?;
        let slots: f64 = default.value.parse().map_err(|_| {
            anyhow!(
                "{} default {:?} is not a number",
                default.flag,
                default.value
            )
        })?;
        self.say(
            7,
            &format!(
                "default in-flight limit: {} (shadow-batch --help, {} default){}",
                default.value,
                default.flag,
                if default.flag == "--concurrency" {
                    "; no --max-concurrency yet, so the ideal is today's"
                } else {
                    ""
                }
            ),
        );
        let tuned_c = S7_TUNED_CONCURRENCY.to_string();
        let tuned = ["--concurrency", tuned_c.as_str()];
        for cli in [&[][..], &tuned[..]] {
            let in_flight = if cli.is_empty() {
                slots
            } else {
                S7_TUNED_CONCURRENCY as f64
            };
            let ideal = S7_IMAGES as f64 * latency / in_flight;
            let mock = self.mock(&flags)?;
            let name = format!("s7-{}", if cli.is_empty() { "default" } else { "tuned" });
            let run = self.cli(&name, &csv, &mock, cli)?;
            let stats = self.stats(&mock)?;
            drop(mock);
            let wall = run.wall.as_secs_f64();
            let ratio = ideal / wall;
            self.say(
                7,
                &format!(
                    "{} images, mock {S7_LATENCY_MS} ms and no limit, shadow-batch {}: {}/{} successful in {wall:.2} s = {:.0} images/s (engine elapsed {:.2} s), {} requests; ideal {S7_IMAGES} × {latency} s / {in_flight} = {ideal:.2} s",
                    thousands(S7_IMAGES as f64),
                    flags_text(cli),
                    run.stat("successful"),
                    S7_IMAGES,
                    S7_IMAGES as f64 / wall,
                    run.stat("elapsedMs") as f64 / 1000.0,
                    stats["requests"],
                ),
            );
            let measured = format!(
                "{wall:.2} s, {:.0} images/s, {ratio:.3} of ideal",
                S7_IMAGES as f64 / wall
            );
            if cli.is_empty() {
                self.untargeted_fig(7, &format!(
                        "2,000 × 500 ms, no limit: wall, throughput / ideal 2000 × 0.5 / {in_flight} = {ideal:.2} s (default flags)"
                    ), &measured);
            } else {
                self.untargeted_fig(
                    7,
                    &format!("the same, tuned ({}), ideal {ideal:.2} s", flags_text(cli)),
                    &measured,
                );
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------
    // What the binary under test offers
    // -----------------------------------------------------------------------

    /// Whether `shadow-batch --help` lists `flag`.
    fn has_flag(&self, flag: &str) -> bool {
        flag_help(&self.help, flag).is_some()
    }

    /// The default in-flight limit: `--max-concurrency`'s default when the binary
    /// has that flag, else `--concurrency`'s.
    fn default_in_flight(&self) -> Option<FlagDefault> {
        ["--max-concurrency", "--concurrency"]
            .into_iter()
            .find_map(|flag| {
                let value = flag_default(&self.help, flag)?;
                Some(FlagDefault { flag, value })
            })
    }

    // -----------------------------------------------------------------------
    // Report
    // -----------------------------------------------------------------------

    fn report(&self, took: Duration) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# shadow-batch benchmark figures\n");
        let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let _ = writeln!(
            s,
            "Harness run took {:.0} s; load average at the end: {}.\n",
            took.as_secs_f64(),
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
        let _ = writeln!(s, "| # | figure | target | measured | verdict |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        for f in &self.figures {
            let verdict = match f.pass {
                Some(true) => "pass",
                Some(false) => "MISS",
                None => "—",
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                f.scenario, f.name, f.target, f.measured, verdict
            );
        }
        let _ = writeln!(s, "\n## Details\n");
        for n in &self.notes {
            let _ = writeln!(s, "- {n}");
        }
        let _ = writeln!(s, "\n## Commands run ($TMP is the harness's temp dir)\n");
        let _ = writeln!(s, "```");
        for c in &self.commands {
            let _ = writeln!(s, "{c}");
        }
        let _ = writeln!(s, "```");
        s
    }
}

/// A child process that is killed (and reaped) when dropped, with its children
/// (`/usr/bin/time` runs shadow-batch as its child).
struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    fn spawn(mut cmd: Command, name: &str) -> Result<Proc> {
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", cmd.get_program()))?;
        Ok(Proc {
            child,
            name: name.into(),
        })
    }

    fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            for pid in children_of(self.child.id()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            if self.child.kill().is_err() {
                note(&format!("could not kill {}", self.name));
            }
        }
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let child: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let ppid: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        (ppid == pid).then_some(child)
    })
    .collect()
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

struct Mock {
    proc: Proc,
    base: String,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.proc.kill();
    }
}

struct CliRun {
    wall: Duration,
    summary: Value,
    results: PathBuf,
    max_rss_kb: Option<u64>,
    report_write_ms: Option<u64>,
    progress_writes: Option<u64>,
}

impl CliRun {
    fn stat(&self, field: &str) -> u64 {
        self.summary["statistics"][field].as_u64().unwrap_or(0)
    }
}

struct ResultLine {
    row: usize,
    latency_ms: u64,
    finished_at: shadow_core::Millis,
}

fn read_results(path: &Path) -> Result<Vec<ResultLine>> {
    let mut out = Vec::new();
    for line in BufReader::new(fs::File::open(path)?).lines() {
        let v: Value = serde_json::from_str(&line?)?;
        out.push(ResultLine {
            row: v["row"].as_u64().unwrap_or(u64::MAX) as usize,
            latency_ms: v["latencyMs"].as_u64().unwrap_or(0),
            finished_at: v["finishedAt"]
                .as_str()
                .and_then(parse_iso8601)
                .ok_or_else(|| anyhow!("a result line without finishedAt"))?,
        });
    }
    Ok(out)
}

fn limited_share(stats: &Value) -> f64 {
    let requests = stats["requests"].as_u64().unwrap_or(0);
    let limited = stats["rateLimited"].as_u64().unwrap_or(0);
    limited as f64 / requests.max(1) as f64
}

/// Bytes one URL row of scenario 4 holds in the item list: the `Item` struct
/// plus its two heap strings as glibc malloc rounds them (8 bytes of header,
/// 16-byte steps, 32 at least).
/// The item list's share of a row: the `Item` and its image text (labels are shared,
/// one copy per distinct label).
fn item_list_bytes_per_row() -> f64 {
    (std::mem::size_of::<Item>() + malloc_chunk(SAMPLE_URL.len())) as f64
}

/// A URL of scenario 4's CSV (they all have this length).
const SAMPLE_URL: &str = "https://images.example/digit-0000000.png";

/// Bytes glibc malloc takes for a `len`-byte allocation.
fn malloc_chunk(len: usize) -> usize {
    (len + 8).div_ceil(16).max(2) * 16
}

fn pct(share: f64) -> String {
    format!("{:.2}%", share * 100.0)
}

fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A flag's default as `--help` states it.
struct FlagDefault {
    flag: &'static str,
    value: String,
}

/// The help text of `flag` in clap's `--help` output: its line and the indented
/// lines under it, up to the next flag or heading; `None` when it is not there.
fn flag_help(help: &str, flag: &str) -> Option<String> {
    // clap indents flag lines by 2 or 6 spaces and their descriptions by 10.
    let is_flag_line = |line: &str| {
        let t = line.trim_start();
        t.starts_with('-') && line.len() - t.len() < 8
    };
    let names_flag = |line: &str| {
        is_flag_line(line)
            && line
                .trim_start()
                .split([',', ' ', '='])
                .take_while(|w| w.starts_with('-') || w.is_empty())
                .any(|w| w == flag)
    };
    let mut lines = help.lines();
    let first = lines.by_ref().find(|l| names_flag(l))?;
    let mut text = format!("{} ", first.trim());
    for line in lines {
        if is_flag_line(line) || (!line.is_empty() && !line.starts_with(' ')) {
            break;
        }
        text.push_str(line.trim());
        text.push(' ');
    }
    Some(text)
}

/// The `[default: X]` of `flag` in `--help` output.
fn flag_default(help: &str, flag: &str) -> Option<String> {
    let text = flag_help(help, flag)?;
    let rest = &text[text.find("[default: ")? + "[default: ".len()..];
    Some(rest[..rest.find(']')?].trim().to_owned())
}

/// CLI flags as a user would type them ("default flags" when there are none).
fn flags_text(flags: &[&str]) -> String {
    if flags.is_empty() {
        "default flags".to_owned()
    } else {
        flags.join(" ")
    }
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELP: &str = "\
Usage: shadow-batch [OPTIONS] [CSV]

Pacing:
      --concurrency <CONCURRENCY>
          Most requests in flight at once [range: 1 to 1024]
          
          [default: 8]

      --no-adaptive
          Keep the in-flight limit fixed

      --rpm <N>
          Cap on requests per minute [default: none; the endpoint's
          x-ratelimit-limit-requests is followed] [range: 1 to 1000000]

  -b, --batch-size <N>  Rows per batch [default: 50]
";

    #[test]
    fn flags_and_defaults_from_help() {
        assert_eq!(flag_default(HELP, "--concurrency").as_deref(), Some("8"));
        assert_eq!(flag_default(HELP, "--no-adaptive"), None);
        assert!(flag_help(HELP, "--no-adaptive").is_some());
        assert_eq!(
            flag_default(HELP, "--rpm").as_deref(),
            Some("none; the endpoint's x-ratelimit-limit-requests is followed")
        );
        assert_eq!(flag_default(HELP, "--batch-size").as_deref(), Some("50"));
        assert!(flag_help(HELP, "--tpm").is_none());
        assert!(flag_help(HELP, "--max-concurrency").is_none());
    }
}
