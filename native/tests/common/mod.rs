//! Helpers for the `shadow-batch` integration tests: temporary data sets built from
//! a few of the example images, the binary run with bounded waits, a standalone
//! mock endpoint, and readers for the run's three files.
//!
//! Every child process is owned by a guard that kills it on drop, every wait has a
//! deadline, and everything is written under temporary folders (never the repo).

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_shadow-batch");

/// Upper bound for any one run of the binary in these tests.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// The example images shipped with the repo (read only; copied before use).
pub fn example_images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../training-data/images")
}

/// A temporary data set: `root/data/labels.csv`, `root/data/images/*.png`, and an
/// output folder `root/out`.
pub struct Data {
    pub root: TempDir,
    pub data: PathBuf,
    pub csv: PathBuf,
    pub out: PathBuf,
}

impl Data {
    /// `n` images (`digit-0000.png`...) with labels `i % 10`, in a fresh temp dir.
    pub fn new(n: usize) -> Data {
        let root = tempfile::tempdir().expect("temp dir");
        let data = root.path().join("data");
        let out = root.path().join("out");
        std::fs::create_dir_all(data.join("images")).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        let mut rows = Vec::new();
        for i in 0..n {
            let name = format!("digit-{i:04}.png");
            copy_image(&name, &data.join("images").join(&name));
            rows.push(format!("images/{name},{}", i % 10));
        }
        let csv = data.join("labels.csv");
        write_csv(&csv, "image,label", &rows);
        Data {
            root,
            data,
            csv,
            out,
        }
    }

    /// Another folder inside the temp root (created).
    pub fn dir(&self, name: &str) -> PathBuf {
        let d = self.root.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

/// Copies example image `name` to `to` (writable copy).
pub fn copy_image(name: &str, to: &Path) {
    let bytes = std::fs::read(example_images().join(name))
        .unwrap_or_else(|e| panic!("cannot read example image {name}: {e}"));
    std::fs::write(to, bytes).unwrap();
}

/// Writes a CSV: the header line then each row, LF-terminated.
pub fn write_csv(path: &Path, header: &str, rows: &[String]) {
    let mut text = String::from(header);
    text.push('\n');
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Polls `f` every 10 ms until it is true or `timeout` passes; says which.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child process killed (and reaped) when dropped.
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(Some(child))
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("child").id()
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child")
    }

    /// Waits for the exit up to `timeout`; kills the child and panics after it.
    pub fn wait_timeout(&mut self, timeout: Duration, what: &str) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child().try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child().kill();
                let _ = self.child().wait();
                panic!("{what}: still running after {timeout:?}; killed");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// True while the child has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child().try_wait(), Ok(None))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends a signal (`INT`, `TERM`, `KILL`) to one process, by id.
#[cfg(unix)]
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// The binary with a clean environment for these tests: no key, no base URL from
/// the developer's shell, working directory `cwd` (so nothing lands in the repo).
pub fn shadow(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// A running `shadow-batch` whose stdout and stderr go to files.
pub struct Running {
    pub guard: ChildGuard,
    pub started: Instant,
    logs: TempDir,
}

/// How a run ended.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Asserts `stream` (a run's stdout or stderr) does not hold `text`, showing
/// it when it does.
pub fn assert_lacks(stream: &str, text: &str) {
    assert!(!stream.contains(text), "{text:?} in:\n{stream}");
}

fn assert_holds(name: &str, stream: &str, text: &str) {
    assert!(stream.contains(text), "{text:?} not in {name}:\n{stream}");
}

impl Finished {
    /// Asserts stdout holds `text`, showing stdout when not.
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert_holds("stdout", &self.stdout, text);
        self
    }

    /// Asserts stderr holds `text`, showing stderr when not.
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert_holds("stderr", &self.stderr, text);
        self
    }

    /// Asserts the exit code, showing the output when it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let logs = tempfile::tempdir().expect("temp dir");
        let out = File::create(logs.path().join("stdout")).unwrap();
        let err = File::create(logs.path().join("stderr")).unwrap();
        let child = cmd
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn shadow-batch");
        Running {
            guard: ChildGuard::new(child),
            started: Instant::now(),
            logs,
        }
    }

    pub fn pid(&self) -> u32 {
        self.guard.id()
    }

    /// Kills the run with SIGKILL and asserts it died of it.
    pub fn kill(&mut self) {
        self.guard.child().kill().unwrap();
        let status = self
            .guard
            .wait_timeout(Duration::from_secs(5), "killed run");
        assert_eq!(status.code(), None, "killed by a signal");
    }

    pub fn stdout_now(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("stdout")).unwrap_or_default()
    }

    /// Waits (bounded) for the exit and collects the output.
    pub fn finish(&mut self, timeout: Duration) -> Finished {
        let status = self.guard.wait_timeout(timeout, "shadow-batch");
        let read = |name: &str| {
            let bytes = std::fs::read(self.logs.path().join(name)).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        Finished {
            code: status.code(),
            stdout: read("stdout"),
            stderr: read("stderr"),
            elapsed: self.started.elapsed(),
        }
    }
}

/// `CSV --concurrency N --out-dir OUT` of `data`: a run's arguments, one
/// request at a time or a few.
pub fn csv_into_out<'a>(data: &'a Data, concurrency: &'a str) -> [&'a str; 5] {
    [
        p(&data.csv),
        "--concurrency",
        concurrency,
        "--out-dir",
        p(&data.out),
    ]
}

/// Runs the command to its end (at most [`RUN_TIMEOUT`]).
pub fn run(cmd: Command) -> Finished {
    Running::spawn(cmd).finish(RUN_TIMEOUT)
}

/// A standalone `shadow-batch mock-server` on 127.0.0.1, killed on drop.
pub struct Mock {
    _guard: ChildGuard,
    /// Base URL up to `/v1`.
    pub url: String,
}

impl Mock {
    /// Starts `shadow-batch mock-server --port 0 ARGS...` and reads its address.
    pub fn start(args: &[&str]) -> Mock {
        let mut cmd = Command::new(BIN);
        cmd.arg("mock-server")
            .arg("--port")
            .arg("0")
            .args(args)
            .env_remove("RUST_LOG")
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut guard = ChildGuard::new(cmd.spawn().expect("spawn mock-server"));
        let stdout = guard.child().stdout.take().expect("mock stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Drain until the mock exits so that it never blocks on a full pipe.
            for _ in lines {}
        });
        let first = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("mock-server printed no address within 10 s");
        let prefix = "shadow-batch mock endpoint listening on ";
        let url = first
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("unexpected first line from mock-server: {first:?}"))
            .trim()
            .to_string();
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with("/v1"),
            "mock URL {url}"
        );
        Mock { _guard: guard, url }
    }

    /// [`Mock::start`] with its flags written as one line.
    pub fn start_with(flags: &str) -> Mock {
        Mock::start(&flags.split_whitespace().collect::<Vec<_>>())
    }

    /// `GET /stats` as JSON.
    pub fn stats(&self) -> Value {
        let hostport = self
            .url
            .strip_prefix("http://")
            .and_then(|s| s.strip_suffix("/v1"))
            .unwrap();
        let mut stream = TcpStream::connect(hostport).expect("connect to mock");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "GET /stats HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read /stats");
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .expect("HTTP answer");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("/stats body {body:?}: {e}"))
    }
}

/// The three files of one run.
#[derive(Clone, Debug)]
pub struct RunFiles {
    pub progress: PathBuf,
    pub summary: PathBuf,
    pub results: PathBuf,
}

impl RunFiles {
    /// The files of the only run in `dir` (its results file must exist).
    pub fn in_dir(dir: &Path) -> RunFiles {
        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let ids: Vec<&str> = names
            .iter()
            .filter_map(|n| {
                n.strip_prefix("shadow-mode-batch-results-")?
                    .strip_suffix(".jsonl")
            })
            .collect();
        assert_eq!(
            ids.len(),
            1,
            "expected the results file of exactly one run in {}: {names:?}",
            dir.display()
        );
        let id = ids[0];
        RunFiles {
            progress: dir.join(format!("shadow-mode-batch-progress-{id}.json")),
            summary: dir.join(format!("shadow-mode-batch-{id}.json")),
            results: dir.join(format!("shadow-mode-batch-results-{id}.jsonl")),
        }
    }

    pub fn progress(&self) -> Value {
        read_json(&self.progress)
    }

    pub fn summary(&self) -> Value {
        read_json(&self.summary)
    }

    pub fn results(&self) -> Vec<Value> {
        read_results(&self.results)
    }
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every complete line of a results journal (or provider journal), parsed; a
/// results journal's header line (`{"run":{...}}`, the run's settings) is left out:
/// see [`journal_header`].
pub fn read_results(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| -> Value {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("bad line {l:?} in {}: {e}", path.display()))
        })
        .filter(|v| !is_journal_header(v))
        .collect()
}

fn is_journal_header(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| o.len() == 1 && o.contains_key("run"))
}

/// The run's settings a results journal names in its first line, if it does.
pub fn journal_header(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    let first: Value = serde_json::from_str(text.lines().next()?).ok()?;
    is_journal_header(&first).then(|| first["run"].clone())
}

/// Complete (newline-terminated) lines in a file so far; 0 if it does not exist.
pub fn complete_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// Asserts that `v` (an object) has every field in `fields`.
pub fn assert_fields(v: &Value, fields: &[&str], what: &str) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {v}"));
    for f in fields {
        assert!(obj.contains_key(*f), "{what} lacks field {f:?}: {v:#}");
    }
}

/// Asserts that the journal holds each row 0..n exactly once.
pub fn assert_each_row_once(results: &[Value], n: usize) {
    let mut rows: Vec<u64> = results
        .iter()
        .map(|r| r["row"].as_u64().expect("row"))
        .collect();
    rows.sort_unstable();
    let expected: Vec<u64> = (0..n as u64).collect();
    assert_eq!(rows, expected, "results rows are not 0..{n} each once");
}

/// Row -> (status, prediction, agreement), for comparing two runs.
pub fn outcomes(results: &[Value]) -> std::collections::BTreeMap<u64, (Value, Value, Value)> {
    results
        .iter()
        .map(|r| {
            (
                r["row"].as_u64().unwrap(),
                (
                    r["status"].clone(),
                    r["prediction"].clone(),
                    r["agreement"].clone(),
                ),
            )
        })
        .collect()
}

/// Every file under `dir` (recursively), as bytes, with its path.
pub fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else if e.file_type().unwrap().is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// A TCP server on 127.0.0.1 that accepts connections and never answers; stopped on drop.
pub struct HungServer {
    pub addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HungServer {
    pub fn start() -> HungServer {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        HungServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HungServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An endpoint that echoes whatever credential it is sent, in any of the four
/// headers, as a careless proxy does: requests 1 to `answers` get a 200 whose every
/// dialect's label (and the http provider's `prediction`) is the echo followed by
/// the request line (so the run records it as an answer outside the
/// labels), the rest a 401 quoting it.
pub struct EchoingEndpoint {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl EchoingEndpoint {
    pub fn start(answers: usize) -> EchoingEndpoint {
        use std::io::{BufRead, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let mut reader = std::io::BufReader::new(&stream);
                let mut head = Vec::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push(line.trim_end().to_string());
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let credential = head
                    .iter()
                    .find_map(|h| {
                        let (name, value) = h.split_once(':')?;
                        let name = name.trim().to_ascii_lowercase();
                        ["authorization", "x-api-key", "x-goog-api-key", "api-key"]
                            .contains(&name.as_str())
                            .then(|| value.trim().to_string())
                    })
                    .unwrap_or_default();
                let echo = format!("{credential} {}", head.first().cloned().unwrap_or_default());
                let label = serde_json::json!({ "label": echo }).to_string();
                let (status, body) = if n < answers {
                    let body = serde_json::json!({
                        "prediction": echo,
                        "choices": [{ "index": 0, "message": { "role": "assistant", "content": label }, "finish_reason": "stop" }],
                        "content": [{ "type": "tool_use", "name": "classify_image", "input": { "label": echo } }],
                        "stop_reason": "tool_use",
                        "candidates": [{ "content": { "parts": [{ "text": label }] }, "finishReason": "STOP" }],
                    });
                    ("200 OK", body.to_string())
                } else {
                    let body = serde_json::json!({ "type": "error", "error": {
                        "type": "authentication_error",
                        "message": format!("Incorrect API key provided: {echo}"),
                        "code": "invalid_api_key",
                    } });
                    ("401 Unauthorized", body.to_string())
                };
                let _ = write!(
                    &stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nx-echo: {echo}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        EchoingEndpoint { url }
    }
}

/// A temporary path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// The first file in `dir` named `prefix...suffix`, if any.
pub fn find_file(dir: &Path, prefix: &str, suffix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir).ok()?.find_map(|e| {
        let e = e.ok()?;
        let name = e.file_name().to_string_lossy().into_owned();
        (name.starts_with(prefix) && name.ends_with(suffix)).then(|| e.path())
    })
}

/// The JSON a report embeds for the explorer.
pub fn report_data(path: &Path) -> Value {
    let html = std::fs::read_to_string(path).unwrap();
    let open = "<script type=\"application/json\" id=\"explorer-data\">";
    let start = html.find(open).expect("embedded data") + open.len();
    let end = html[start..].find("</script>").unwrap() + start;
    serde_json::from_str(&html[start..end]).unwrap()
}

/// A batch-API run's provider journal in `dir`, if it has one.
pub fn provider_file(dir: &Path) -> Option<PathBuf> {
    find_file(dir, "shadow-mode-batch-provider-", ".jsonl")
}

/// The records of the provider journal in `dir` (none without one).
pub fn provider_records(dir: &Path) -> Vec<Value> {
    provider_file(dir).map_or_else(Vec::new, |f| read_results(&f))
}

/// How many of `records` are of `kind` (`uploaded`, `created`...).
pub fn count(records: &[Value], kind: &str) -> usize {
    records.iter().filter(|r| r["record"] == kind).count()
}

/// A counter of the mock's `/stats`.
pub fn stat(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing: {v:#}"))
}

/// Rows of a kill-and-resume scenario of a batch-API run.
pub const KILL_ROWS: usize = 24;

/// How one provider's batch-API runs are started, resumed and cancelled
/// against a mock: its flags and its key, so that the OpenAI and Anthropic
/// versions of a scenario are one function.
pub struct BatchCommands {
    /// `shadow-batch CSV --via batch-api EXTRA...` into the folder.
    pub start: RunInto,
    /// The same run live: `shadow-batch CSV EXTRA...` into the folder.
    pub live: RunInto,
    /// `shadow-batch --resume FILE`.
    pub resume: FromFile,
    /// `shadow-batch cancel FILE`.
    pub cancel: fn(&Data, &Path) -> Command,
}

/// A command on a run's file (`--resume FILE`) against a mock.
pub type FromFile = Box<dyn Fn(&Data, &Mock, &Path) -> Command>;

/// A command running `data` against a mock into a folder, with extra flags.
pub type RunInto = Box<dyn Fn(&Data, &Mock, &Path, &[&str]) -> Command>;

/// A run of 30 rows through the batch API in shards of 12 and the same run
/// live, both priced, against one mock.
pub struct BatchAndLive {
    pub mock: Mock,
    pub data: Data,
    pub batch_out: PathBuf,
    pub batch: Finished,
    /// The batch-API run's summary.
    pub summary: Value,
}

/// Runs [`BatchAndLive`] against a mock with errors (0.15), started with
/// `mock_flags` too, and checks
/// what holds for every provider: the same answers either way at half the
/// price, errored lines re-sent in later shards of at most 12, the report with
/// every row, and no shard file left.
pub fn batch_and_live_at_half_the_price(
    commands: &BatchCommands,
    mock_flags: &[&str],
) -> BatchAndLive {
    let mock = Mock::start(
        &[
            &["--batch-ms", "400", "--latency-ms", "0"][..],
            &["--error-rate", "0.15", "--seed", "7"],
            mock_flags,
        ]
        .concat(),
    );
    let data = Data::new(30);
    let (batch_out, live_out) = (data.dir("batch"), data.dir("live"));
    let price = ["--price-input", "1", "--price-output", "2"];
    let batch = run((commands.start)(
        &data,
        &mock,
        &batch_out,
        &[&["--shard-lines", "12"][..], &price].concat(),
    ));
    batch.expect_code(0);
    run((commands.live)(&data, &mock, &live_out, &price)).expect_code(0);

    let (b, l) = (RunFiles::in_dir(&batch_out), RunFiles::in_dir(&live_out));
    assert_each_row_once(&b.results(), 30);
    assert_eq!(
        outcomes(&b.results()),
        outcomes(&l.results()),
        "the same answers either way"
    );
    let summary = b.summary();
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["config"]["batchApi"]["maxLines"], 12);
    // Half the price given.
    assert_eq!(summary["cost"]["price"]["inputPerMillion"], 0.5);
    assert_eq!(summary["cost"]["price"]["batchApi"], true);
    let live_usd = l.summary()["cost"]["amountUsd"].as_f64().unwrap();
    let batch_usd = summary["cost"]["amountUsd"].as_f64().unwrap();
    assert!(
        live_usd > 0.0 && (batch_usd * 2.0 - live_usd).abs() < 1e-6,
        "{batch_usd} vs {live_usd}"
    );
    // Shards of at most 12 lines; errored lines re-sent in later shards.
    let retries = summary["statistics"]["retries"].as_u64().unwrap();
    assert!(retries > 0, "an error rate of 0.15 re-sends some lines");
    let batches = summary["providerBatches"].as_array().unwrap();
    assert!(batches.len() >= 3, "{batches:#?}");
    assert!(batches.iter().all(|b| b["lines"].as_u64().unwrap() <= 12));
    // The HTML report of a batch-API run is the same file as a live run's, with
    // every row.
    let report = find_file(&batch_out, "shadow-mode-batch-report-", ".html").expect("a report");
    let embedded = report_data(&report);
    assert_eq!(embedded["status"], "completed");
    assert_eq!(embedded["items"]["row"].as_array().unwrap().len(), 30);
    assert_eq!(embedded["evaluation"], summary["evaluation"]);
    // The local shard files are gone.
    for (path, _) in all_files(data.root.path()) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with(".shadow-batch-"), "left behind: {name}");
    }
    BatchAndLive {
        mock,
        data,
        batch_out,
        batch,
        summary,
    }
}

/// What a killed and resumed batch-API run leaves to check further.
pub struct KilledAndResumed {
    pub data: Data,
    pub victim_out: PathBuf,
    pub clean_out: PathBuf,
    /// The counters of the victim's mock and of the clean run's.
    pub victim: Value,
    pub clean: Value,
    pub resumed: Finished,
}

/// A victim run against its own mock, killed with SIGKILL once `ready` holds
/// for its output folder, `after_kill` done to it, resumed, and compared with a
/// clean run against an identical mock: every row once, the same results, and
/// the victim's mock saw no more creates than the clean one's and ran no line
/// twice.
pub fn kill_and_resume_batch(
    commands: &BatchCommands,
    mock_flags: &str,
    extra: &[&str],
    what: &str,
    ready: impl Fn(&Path, &Mock) -> bool,
    after_kill: impl Fn(&Data, &RunFiles),
) -> KilledAndResumed {
    let victim_mock = Mock::start_with(mock_flags);
    let clean_mock = Mock::start_with(mock_flags);
    let data = Data::new(KILL_ROWS);
    let (victim_out, clean_out) = (data.dir("victim"), data.dir("clean"));
    let mut clean = Running::spawn((commands.start)(&data, &clean_mock, &clean_out, extra));
    let mut victim = Running::spawn((commands.start)(&data, &victim_mock, &victim_out, extra));
    let seen = wait_until(Duration::from_secs(20), || {
        ready(&victim_out, &victim_mock) || !victim.guard.running()
    });
    assert!(seen, "no {what} within 20 s");
    assert!(
        victim.guard.running(),
        "the run ended before the kill ({what})"
    );
    victim.kill();
    clean.finish(RUN_TIMEOUT).expect_code(0);

    let files = RunFiles::in_dir(&victim_out);
    assert!(
        files.results().len() < KILL_ROWS,
        "killed after the end ({what})"
    );
    after_kill(&data, &files);
    let resumed = run((commands.resume)(&data, &victim_mock, &files.progress));
    resumed.expect_code(0);
    let reference = RunFiles::in_dir(&clean_out);
    assert_each_row_once(&files.results(), KILL_ROWS);
    assert_eq!(
        outcomes(&files.results()),
        outcomes(&reference.results()),
        "{what}"
    );
    let (s, c) = (files.summary(), reference.summary());
    assert_eq!(s["status"], "completed");
    assert_eq!(
        s["evaluation"]["confusionMatrix"],
        c["evaluation"]["confusionMatrix"]
    );
    let (v, k) = (victim_mock.stats(), clean_mock.stats());
    assert_eq!(
        stat(&v, "batchCreates"),
        stat(&k, "batchCreates"),
        "{what}: no second create"
    );
    assert_eq!(
        stat(&v, "batchLines"),
        stat(&k, "batchLines"),
        "{what}: no line ran twice"
    );
    KilledAndResumed {
        data,
        victim_out,
        clean_out,
        victim: v,
        clean: k,
        resumed,
    }
}

/// A batch-API run of 20 rows detached with Ctrl-C once its one batch runs.
pub struct DetachedRun {
    pub mock: Mock,
    pub data: Data,
    pub files: RunFiles,
    pub detached: Finished,
}

/// Starts a run whose batch takes 4 s, detaches it with Ctrl-C once the batch
/// exists, and checks it said so and cancelled nothing.
pub fn start_and_detach(commands: &BatchCommands) -> DetachedRun {
    let mock = Mock::start(&["--batch-ms", "4000", "--error-rate", "0"]);
    let data = Data::new(20);
    let out = data.dir("out");
    let mut victim = Running::spawn((commands.start)(&data, &mock, &out, &[]));
    let seen = wait_until(Duration::from_secs(15), || {
        count(&provider_records(&out), "created") >= 1
    });
    assert!(seen, "no batch created");
    std::thread::sleep(Duration::from_millis(1500));
    signal(victim.pid(), "INT");
    let detached = victim.finish(Duration::from_secs(10));
    detached.expect_code(130);
    assert!(
        detached
            .stdout
            .contains("Detached: 1 provider batch(es) keep running at the provider ("),
        "{}",
        detached.stdout
    );
    let files = RunFiles::in_dir(&out);
    assert_eq!(files.summary()["status"], "interrupted");
    assert_eq!(mock.stats()["batchCancels"], 0, "detaching cancels nothing");
    DetachedRun {
        mock,
        data,
        files,
        detached,
    }
}

/// A mock started with `flags`, a data folder of `rows` rows, and its `out`
/// folder: what a batch test starts from.
pub fn mock_and_data(flags: &[&str], rows: usize) -> (Mock, Data, PathBuf) {
    let mock = Mock::start(flags);
    let data = Data::new(rows);
    let out = data.dir("out");
    (mock, data, out)
}

/// Ctrl-C, `shadow-batch cancel`, then a resume: [`start_and_detach`], then
/// `detached` checks the detached run, [`DetachedRun::cancel`], `cancelled`
/// checks what the cancel printed and the summary after it, and
/// [`DetachedRun::resume_the_rest`].
pub fn detach_cancel_and_resume(
    commands: &BatchCommands,
    detached: impl FnOnce(&DetachedRun),
    cancelled: impl FnOnce(&Finished, &Value),
) {
    let run = start_and_detach(commands);
    detached(&run);
    let (printed, summary) = run.cancel(commands);
    cancelled(&printed, &summary);
    run.resume_the_rest(commands);
}

impl DetachedRun {
    /// `shadow-batch cancel`: the batch cancelled, what it finished kept, nothing
    /// created; returns what it printed and the summary after it.
    pub fn cancel(&self, commands: &BatchCommands) -> (Finished, Value) {
        let cancelled = run((commands.cancel)(&self.data, &self.files.progress));
        cancelled.expect_code(0);
        assert!(stat(&self.mock.stats(), "batchCancels") >= 1);
        let summary = self.files.summary();
        assert_eq!(summary["status"], "interrupted");
        let done = summary["statistics"]["successful"].as_u64().unwrap();
        assert!(done > 0 && done < 20, "{done} finished before the cancel");
        assert_eq!(summary["statistics"]["failed"], 0);
        assert_eq!(
            self.mock.stats()["batchCreates"],
            1,
            "cancel creates nothing"
        );
        (cancelled, summary)
    }

    /// The resume after the cancel: the rest in one more batch, no row twice.
    pub fn resume_the_rest(&self, commands: &BatchCommands) {
        run((commands.resume)(
            &self.data,
            &self.mock,
            &self.files.progress,
        ))
        .expect_code(0);
        assert_each_row_once(&self.files.results(), 20);
        let stats = self.mock.stats();
        assert_eq!(
            stat(&stats, "batchCreates"),
            2,
            "the rest, in one more batch"
        );
        assert_eq!(stat(&stats, "batchLines"), 20, "no row ran twice");
    }
}

/// `CSV 10 --via batch-api --poll-interval 0.1 --out-dir OUT`: a batch-API
/// run's arguments beside its provider's.
pub fn batch_args<'a>(data: &'a Data, out: &'a Path) -> [&'a str; 8] {
    [
        p(&data.csv),
        "10",
        "--via",
        "batch-api",
        "--poll-interval",
        "0.1",
        "--out-dir",
        p(out),
    ]
}

/// A run of 20 rows whose first batch expires with every other line not run:
/// each row once, ten of them on a second attempt in a second batch of ten.
/// Returns the mock and the run's provider batches.
pub fn expired_batch_re_sends_its_unfinished_rows(commands: &BatchCommands) -> (Mock, Value) {
    let mock = Mock::start_with("--batch-ms 300 --batch-expire 1 --error-rate 0");
    let data = Data::new(20);
    let out = data.dir("out");
    run((commands.start)(&data, &mock, &out, &[])).expect_code(0);
    let files = RunFiles::in_dir(&out);
    let results = files.results();
    assert_each_row_once(&results, 20);
    // Every other line ran in the expired batch; the other half went again.
    let second = results.iter().filter(|r| r["attempts"] == 2).count();
    assert_eq!(second, 10, "{results:#?}");
    let batches = files.summary()["providerBatches"].clone();
    assert_eq!(batches.as_array().unwrap().len(), 2);
    assert_eq!(batches[1]["lines"], 10);
    (mock, batches)
}

/// A run of 12 rows whose first batch fails: aborted with every row left and
/// the way to resume; `between` checks it further; the resume completes with
/// each row once. Returns the mock, and the data with the output folder (gone
/// when the data is dropped).
pub fn failed_batch_aborts_and_the_resume_completes(
    commands: &BatchCommands,
    between: impl Fn(&Finished, &Value, &Mock),
) -> (Mock, Data, PathBuf) {
    let mock = Mock::start_with("--batch-ms 300 --batch-fail 1 --error-rate 0");
    let data = Data::new(12);
    let out = data.dir("out");
    let first = run((commands.start)(&data, &mock, &out, &[]));
    first.expect_code(2);
    first.stderr_has("--resume");
    let files = RunFiles::in_dir(&out);
    let summary = files.summary();
    assert_eq!(summary["status"], "aborted");
    assert_eq!(summary["statistics"]["remaining"], 12);
    between(&first, &summary, &mock);
    run((commands.resume)(&data, &mock, &files.progress)).expect_code(0);
    assert_each_row_once(&files.results(), 12);
    assert_eq!(files.summary()["status"], "completed");
    (mock, data, out)
}

/// Mock flags under which a batch's results download slowly.
pub const SLOW_DOWNLOAD: &str = "--batch-ms 300 --error-rate 0 --batch-download-delay-ms 400";

/// The moment to kill a run once a batch exists: its create journaled.
pub fn batch_created(out: &Path) -> bool {
    count(&provider_records(out), "created") >= 1
}

/// The moment to kill a run mid-download: ten results journaled.
pub fn mid_download(out: &Path) -> bool {
    find_file(out, "shadow-mode-batch-results-", ".jsonl")
        .is_some_and(|results| complete_lines(&results) >= 10)
}

/// The resumed run downloaded the results again (the mock's counters).
pub fn assert_downloaded_again(stats: &Value) {
    assert!(
        stat(stats, "batchDownloads") >= 2,
        "downloaded again after the kill"
    );
}

/// `resume` with `--via live` is refused: a live run would send again the rows
/// the run's provider batches may still hold.
pub fn assert_live_resume_refused(mut resume: Command) {
    resume.args(["--via", "live"]);
    let refused = run(resume);
    refused.expect_code(2);
    refused.stderr_has("Resume it with --via batch-api");
}
