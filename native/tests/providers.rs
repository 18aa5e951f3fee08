//! End-to-end tests of each provider dialect (issue 13): `shadow-batch` with
//! `--provider anthropic`, `gemini` and `azure` against the mock endpoint speaking
//! that dialect (its answers, faults, rate limits, refusals and key header), the
//! ollama-like dialect of a local server, and a canary key per provider that must
//! appear in no output of a run, even when the endpoint echoes it.
//!
//! Each test builds its own small data set in a temp dir, runs the binary with
//! bounded waits, and talks only to 127.0.0.1.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// `shadow-batch` with a local server's key, against the OpenAI-compatible
/// endpoint at `url` and its `model`.
fn openai_compatible(root: &Path, url: &str, model: &str) -> Command {
    let mut cmd = shadow(root);
    cmd.env("OPENAI_API_KEY", "sk-local").args([
        "--provider",
        "openai",
        "--base-url",
        url,
        "--model",
        model,
    ]);
    cmd
}

fn stat(v: &Value, field: &str) -> u64 {
    v["statistics"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("statistics.{field} missing: {v:#}"))
}

/// A provider of these tests: its `--provider` value, key variable, and the flags
/// that point it at a server whose root is `root` (`http://127.0.0.1:PORT`).
#[derive(Clone, Copy, Debug)]
enum Dialect {
    Anthropic,
    Gemini,
    AzureDeployment,
    AzureV1,
}

const DIALECTS: [Dialect; 4] = [
    Dialect::Anthropic,
    Dialect::Gemini,
    Dialect::AzureDeployment,
    Dialect::AzureV1,
];

impl Dialect {
    fn provider(self) -> &'static str {
        match self {
            Dialect::Anthropic => "anthropic",
            Dialect::Gemini => "gemini",
            Dialect::AzureDeployment | Dialect::AzureV1 => "azure",
        }
    }

    fn key_var(self) -> &'static str {
        match self {
            Dialect::Anthropic => "ANTHROPIC_API_KEY",
            Dialect::Gemini => "GEMINI_API_KEY",
            Dialect::AzureDeployment | Dialect::AzureV1 => "AZURE_OPENAI_API_KEY",
        }
    }

    /// A canary key of this provider's shape, different for each.
    fn canary(self) -> &'static str {
        match self {
            Dialect::Anthropic => "sk-ant-api03-canary-5e1d9c3b7a",
            Dialect::Gemini => "AIzaSyCanary-8b2f6e4d1c9a7",
            Dialect::AzureDeployment => "azdep0canary3c7a9e5f2b",
            Dialect::AzureV1 => "azv1x0canary6d2b8f4a1e",
        }
    }

    /// `shadow-batch` against `root` with `key`, in `data`'s temp dir.
    fn command(self, data: &Data, root: &str, key: &str, args: &[&str]) -> Command {
        let mut cmd = shadow(data.root.path());
        for var in [
            "ANTHROPIC_API_KEY",
            "GEMINI_API_KEY",
            "AZURE_OPENAI_API_KEY",
        ] {
            cmd.env_remove(var);
        }
        cmd.env(self.key_var(), key)
            .args(["--provider", self.provider(), "--base-url", root]);
        match self {
            Dialect::Anthropic => cmd.args(["--model", "claude-mock"]),
            Dialect::Gemini => cmd.args(["--model", "gemini-mock"]),
            Dialect::AzureDeployment => {
                cmd.args(["--deployment", "vision-dep", "--api-version", "2024-10-21"])
            }
            Dialect::AzureV1 => cmd.args(["--deployment", "vision-dep"]),
        };
        cmd.args(args);
        cmd
    }
}

/// The mock's root (`http://127.0.0.1:PORT`), where every dialect has its paths.
fn root(mock: &Mock) -> String {
    mock.url.strip_suffix("/v1").expect("a /v1 URL").to_string()
}

/// Every output of a run: stdout, stderr and every file under `dir`.
fn everything(done: &Finished, dir: &Path) -> String {
    let mut text = format!("{}\n{}", done.stdout, done.stderr);
    for (path, bytes) in all_files(dir) {
        text += &format!(
            "\n--- {}\n{}",
            path.display(),
            String::from_utf8_lossy(&bytes)
        );
    }
    text
}

// ---------------------------------------------------------------------------
// A run in each dialect records its predictions
// ---------------------------------------------------------------------------

/// Against the mock with the true labels (accuracy 1), injected server faults (529
/// for Anthropic, 503 for Gemini, 500 for Azure) and one image in five refused:
/// every fault is retried, every answered row agrees with its label, every refused
/// row is a refusal (not an HTTP failure), and the files name the provider.
#[test]
fn each_provider_runs_against_its_mock_dialect_and_records_predictions() {
    for dialect in DIALECTS {
        let data = Data::new(20);
        let key = dialect.canary();
        let mock = Mock::start(&[
            "--latency-ms",
            "0",
            "--error-rate",
            "0.3",
            "--refusal-rate",
            "0.2",
            "--accuracy",
            "1",
            "--truth",
            p(&data.csv),
            "--require-key",
            key,
        ]);
        let done = run(dialect.command(
            &data,
            &root(&mock),
            key,
            &[p(&data.csv), "50", "0", "10", "--out-dir", p(&data.out)],
        ));
        let files = RunFiles::in_dir(&data.out);
        let summary = files.summary();
        let results = files.results();
        assert_each_row_once(&results, 20);
        let refused = results.iter().filter(|r| r["status"] == "failed").count();
        assert!(
            (1..20).contains(&refused),
            "{dialect:?}: {refused} refused of 20"
        );
        // Some rows refused: exit code 1, the run itself completed.
        done.expect_code(1);
        assert_eq!(summary["status"], "completed", "{dialect:?}");
        for r in &results {
            if r["status"] == "success" {
                assert_eq!(r["prediction"], r["label"], "{dialect:?}: {r}");
                assert_eq!(r["agreement"], true, "{dialect:?}: {r}");
                assert!(
                    r["usage"]["promptTokens"].as_u64() > Some(0),
                    "{dialect:?}: usage read: {r}"
                );
            } else {
                assert_eq!(r["errorKind"], "refused", "{dialect:?}: {r}");
            }
        }
        assert_eq!(stat(&summary, "successful"), 20 - refused as u64);
        assert!(stat(&summary, "retries") > 0, "{dialect:?}: faults retried");
        let stats = mock.stats();
        assert!(stats["serverErrors"].as_u64() > Some(0), "{stats}");
        assert_eq!(
            stats["unauthorized"], 0,
            "{dialect:?}: the key header: {stats}"
        );
        assert_eq!(stats["badRequests"], 0, "{dialect:?}: {stats}");
        // The files name the provider; the banner too.
        assert_eq!(
            summary["config"]["providerLabel"],
            dialect.provider(),
            "{dialect:?}"
        );
        assert_eq!(summary["config"]["provider"]["kind"], dialect.provider());
        assert_eq!(
            files.progress()["config"]["providerLabel"],
            dialect.provider()
        );
        assert!(
            done.stdout.contains(&format!(", {}", dialect.provider())),
            "{dialect:?}: {}",
            done.stdout
        );
        // And the key is in none of it.
        let all = everything(&done, &data.out);
        assert!(!all.contains(key), "{dialect:?}: the key is written out");
    }
}

/// Over the mock's rate limit, each dialect's 429 (Anthropic's retry-after in
/// seconds, Gemini's RetryInfo in the body and no header, Azure's retry-after-ms)
/// is waited out and every row succeeds.
#[test]
fn each_providers_rate_limit_is_waited_out() {
    for dialect in [Dialect::Anthropic, Dialect::Gemini, Dialect::AzureV1] {
        let mock = Mock::start(&["--rpm", "300", "--latency-ms", "10", "--error-rate", "0"]);
        let data = Data::new(12);
        let done = run(dialect.command(&data, &root(&mock), "k", &csv_into_out(&data, "8")));
        done.expect_code(0);
        let summary = RunFiles::in_dir(&data.out).summary();
        assert_eq!(stat(&summary, "successful"), 12, "{dialect:?}");
        assert!(
            stat(&summary, "rateLimitHits") > 0,
            "{dialect:?}: the bucket should have overflowed: {:#}",
            summary["statistics"]
        );
        let stats = mock.stats();
        assert!(stats["rateLimited"].as_u64() > Some(0), "{stats}");
        assert_eq!(stats["ok"], 12, "{dialect:?}: {stats}");
    }
}

// ---------------------------------------------------------------------------
// Run-fatal answers, worded for each provider
// ---------------------------------------------------------------------------

/// A wrong key stops the run at once, and the next step names the provider's key
/// variable: Anthropic's 401, Gemini's 400 API_KEY_INVALID, Azure's 401.
#[test]
fn a_wrong_key_aborts_naming_the_providers_variable() {
    for dialect in [
        Dialect::Anthropic,
        Dialect::Gemini,
        Dialect::AzureDeployment,
    ] {
        let mock = Mock::start(&["--latency-ms", "0", "--require-key", "right-key-123"]);
        let data = Data::new(6);
        let done = run(dialect.command(
            &data,
            &root(&mock),
            dialect.canary(),
            &[p(&data.csv), "--out-dir", p(&data.out)],
        ));
        done.expect_code(2);
        let summary = RunFiles::in_dir(&data.out).summary();
        assert_eq!(summary["status"], "aborted");
        assert_eq!(summary["abortKind"]["kind"], "unauthorized", "{dialect:?}");
        assert!(
            done.stderr
                .contains(&format!("Check {}", dialect.key_var())),
            "{dialect:?}: {}",
            done.stderr
        );
        assert_eq!(stat(&summary, "failed"), 0, "left for resume");
        assert!(!everything(&done, &data.out).contains(dialect.canary()));
    }
}

/// Anthropic's 400 about the credit balance stops the run (resumable), with the
/// endpoint's reason and the CLI's next step.
#[test]
fn anthropic_credit_balance_stops_the_run() {
    let mock = Mock::start(&["--latency-ms", "0", "--error-rate", "0", "--quota", "3"]);
    let data = Data::new(10);
    let done = run(Dialect::Anthropic.command(&data, &root(&mock), "k", &csv_into_out(&data, "1")));
    done.expect_code(2);
    let summary = RunFiles::in_dir(&data.out).summary();
    assert_eq!(summary["abortKind"]["kind"], "quotaExhausted");
    assert_eq!(summary["abortKind"]["status"], 400);
    let reason = summary["abortReason"].as_str().unwrap();
    assert!(reason.contains("credit balance"), "{reason}");
    done.stderr_has("Add credit");
    assert_eq!(stat(&summary, "successful"), 3);
}

/// A local server that refuses JSON-schema output and remote image URLs (the mock's
/// ollama dialect): the run falls back to JSON mode and says so, every local image
/// is answered (right, against the true labels), and a remote image URL fails its
/// row with the server's reason, or, with --inline-images, is downloaded and
/// answered too.
#[test]
fn a_local_server_refusing_json_schema_is_asked_in_json_mode() {
    let data = Data::new(12);
    let files = FileServer::start(&data.data);
    let mock = Mock::start(&[
        "--latency-ms",
        "0",
        "--error-rate",
        "0",
        "--dialect",
        "ollama",
        "--accuracy",
        "1",
        "--truth",
        p(&data.csv),
    ]);
    let local = |csv: &Path, out: &Path, extra: &[&str]| {
        let mut cmd = openai_compatible(data.root.path(), &mock.url, "llava");
        cmd.args([p(csv), "--concurrency", "2", "--out-dir", p(out)])
            .args(extra);
        run(cmd)
    };
    let done = local(&data.csv, &data.out, &[]);
    done.expect_code(0);
    assert!(
        done.stderr
            .contains("refused json_schema output; requests now ask for json_object"),
        "{}",
        done.stderr
    );
    let results = RunFiles::in_dir(&data.out).results();
    assert_each_row_once(&results, 12);
    assert!(
        results.iter().all(|r| r["agreement"] == true),
        "{results:?}"
    );
    let stats = mock.stats();
    assert!(
        stats["badRequests"].as_u64() <= Some(2),
        "one wave refused: {stats}"
    );
    // The form the endpoint needed is in the run's saved settings...
    let first = RunFiles::in_dir(&data.out);
    assert_eq!(
        first.summary()["config"]["formatFallback"]["format"],
        "jsonObject"
    );
    assert_eq!(
        first.progress()["config"]["formatFallback"]["format"],
        "jsonObject"
    );
    // ...so that a resumed run starts with it: its rows run again (failed rows by
    // --retry-failed; here, every row after its lines are dropped) without one
    // refused request, and the banner says which form is asked for.
    std::fs::write(&first.results, "").unwrap();
    let mut cmd = shadow(data.root.path());
    cmd.env("OPENAI_API_KEY", "sk-local")
        .args(["--resume", p(&first.summary)]);
    let resumed = run(cmd);
    resumed.expect_code(0);
    assert_lacks(&resumed.stderr, "refused json_schema");
    resumed.stdout_has("asked for as json_object");
    assert_eq!(
        mock.stats()["badRequests"],
        stats["badRequests"],
        "no request refused again"
    );
    assert_each_row_once(&first.results(), 12);
    assert!(first.results().iter().all(|r| r["agreement"] == true));

    // Remote URLs: refused by the server (the row fails with its reason) unless
    // --inline-images sends them inline.
    let rows: Vec<String> = (0..3)
        .map(|i| format!("{}/images/digit-{i:04}.png,{i}", files.url))
        .collect();
    let remote_csv = data.data.join("remote.csv");
    write_csv(&remote_csv, "image,label", &rows);
    let refused = data.dir("refused");
    local(&remote_csv, &refused, &[]).expect_code(1);
    for r in RunFiles::in_dir(&refused).results() {
        assert_eq!(r["errorKind"], "http", "{r}");
        assert!(r["error"].as_str().unwrap().contains("remote image"), "{r}");
    }
    let inlined = data.dir("inlined");
    local(&remote_csv, &inlined, &["--inline-images"]).expect_code(0);
    assert!(RunFiles::in_dir(&inlined)
        .results()
        .iter()
        .all(|r| r["agreement"] == true));
}

// ---------------------------------------------------------------------------
// Canary keys: an endpoint that echoes the key gets it into no output
// ---------------------------------------------------------------------------

/// For each provider, a canary key sent to an endpoint that echoes it in answers,
/// errors and headers appears in no output: stdout, stderr, the progress, summary,
/// results and report files.
#[test]
fn an_echoed_canary_key_appears_in_no_output_of_any_provider() {
    for dialect in DIALECTS {
        let key = dialect.canary();
        let endpoint = EchoingEndpoint::start(4);
        let data = Data::new(6);
        let done = run(dialect.command(&data, &endpoint.url, key, &csv_into_out(&data, "1")));
        // Four answers outside the label set, then a 401: aborted.
        done.expect_code(2);
        let all = everything(&done, &data.out);
        for probe in [key, &key[..8], &key[key.len() - 10..]] {
            assert!(
                !all.contains(probe),
                "{dialect:?}: {probe} is written out:\n{all}"
            );
        }
        assert!(
            all.contains("[REDACTED]"),
            "{dialect:?}: no echo was seen:\n{all}"
        );
        let results = RunFiles::in_dir(&data.out).results();
        assert!(
            results.iter().any(|r| r["errorKind"] == "outsideLabels"),
            "{dialect:?}: the echo was read as an answer: {results:?}"
        );
        assert!(
            done.stderr.contains(dialect.key_var()),
            "{dialect:?}: {}",
            done.stderr
        );
    }
}

// ---------------------------------------------------------------------------
// Item 4: local servers
// ---------------------------------------------------------------------------

/// A static file server on 127.0.0.1 for `dir` (`GET /NAME`), counting requests;
/// 404 for what is not there. It lives as long as the test process.
struct FileServer {
    url: String,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FileServer {
    fn start(dir: &Path) -> FileServer {
        use std::io::{BufRead, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut reader = std::io::BufReader::new(&stream);
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or("/");
                let file = dir.join(path.trim_start_matches('/'));
                let (status, body) = match std::fs::read(&file) {
                    Ok(bytes) if !path.contains("..") => ("200 OK", bytes),
                    _ => ("404 Not Found", b"not found".to_vec()),
                };
                let _ = write!(
                    &stream,
                    "HTTP/1.1 {status}\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = (&stream).write_all(&body);
            }
        });
        FileServer { url, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// With --inline-images, http(s) images are downloaded and sent as the same data
/// URLs their files would be (the mock, knowing the files' true labels, then
/// answers every one right); a URL that cannot be downloaded fails its row, naming
/// its line, with no request made. Without the flag, the URLs go as they are.
#[test]
fn inline_images_downloads_http_images_and_sends_them_inline() {
    let data = Data::new(6);
    let files = FileServer::start(&data.data);
    let mut rows: Vec<String> = (0..6)
        .map(|i| format!("{}/images/digit-{i:04}.png,{i}", files.url))
        .collect();
    rows.push(format!("{}/images/missing.png,3", files.url));
    let remote_csv = data.data.join("remote.csv");
    write_csv(&remote_csv, "image,label", &rows);
    let mock = Mock::start(&[
        "--latency-ms",
        "0",
        "--error-rate",
        "0",
        "--accuracy",
        "1",
        "--truth",
        p(&data.csv),
    ]);
    let mut cmd = shadow(data.root.path());
    cmd.env("OPENAI_API_KEY", "sk-local")
        .args(["--provider", "openai", "--base-url", &mock.url])
        .args([p(&remote_csv), "--inline-images", "--out-dir", p(&data.out)]);
    let done = run(cmd);
    done.expect_code(1);
    done.stdout_has("--inline-images");
    let results = RunFiles::in_dir(&data.out).results();
    assert_each_row_once(&results, 7);
    for r in &results {
        if r["row"] == 6 {
            assert_eq!(r["errorKind"], "image", "{r}");
            let error = r["error"].as_str().unwrap();
            assert!(
                error.starts_with("line 8: http://") && error.contains("HTTP 404"),
                "{error}"
            );
        } else {
            assert_eq!(r["agreement"], true, "{r}");
        }
    }
    assert_eq!(files.hits(), 7);
    assert_eq!(
        mock.stats()["requests"],
        6,
        "no request for the missing image"
    );

    // Resumed without the flag, the run still inlines: the failed row is
    // downloaded again (and fails again), its URL is never sent to the endpoint.
    let first = RunFiles::in_dir(&data.out);
    assert_eq!(first.summary()["config"]["inlineImages"], true);
    let mut cmd = shadow(data.root.path());
    cmd.env("OPENAI_API_KEY", "sk-local")
        .args(["--resume", p(&first.progress), "--retry-failed"]);
    let resumed = run(cmd);
    resumed.expect_code(1);
    resumed.stdout_has("--inline-images");
    assert_eq!(files.hits(), 8, "downloaded again");
    assert_eq!(mock.stats()["requests"], 6, "the URL was not sent as it is");
    let results = first.results();
    assert_each_row_once(&results, 7);
    assert_eq!(
        results.iter().find(|r| r["row"] == 6).unwrap()["errorKind"],
        "image"
    );

    // Without the flag the URLs go as they are: nothing is downloaded.
    let out = data.dir("plain");
    let mut cmd = shadow(data.root.path());
    cmd.env("OPENAI_API_KEY", "sk-local")
        .args(["--provider", "openai", "--base-url", &mock.url])
        .args([p(&remote_csv), "--out-dir", p(&out)]);
    run(cmd);
    assert_eq!(files.hits(), 8, "the endpoint is sent the URLs");
    assert_eq!(RunFiles::in_dir(&out).results().len(), 7);
}

/// A local server whose model list (`GET /v1/models`, Ollama's form) does not name
/// the model: the run warns before it starts, naming the models listed; a model
/// the list names (by its tag, `llava` for `llava:latest`) gets no warning, nor does
/// the mock (which answers as any model).
#[test]
fn a_model_the_endpoint_does_not_list_is_warned_about_with_the_list() {
    use std::io::{BufRead, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = std::io::BufReader::new(&stream);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let (status, body) = if first.starts_with("GET /v1/models") {
                (
                    "200 OK",
                    r#"{"object":"list","data":[{"id":"llava:latest","object":"model","owned_by":"library"},{"id":"qwen2.5vl:7b","object":"model","owned_by":"library"}]}"#,
                )
            } else {
                (
                    "404 Not Found",
                    r#"{"error":{"message":"model \"gpt-x\" not found, try pulling it first","type":"api_error"}}"#,
                )
            };
            let _ = write!(
                &stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let data = Data::new(6);
    let run_with = |model: &str, out: &Path| {
        let mut cmd = openai_compatible(data.root.path(), &url, model);
        cmd.args([p(&data.csv), "--out-dir", p(out)]);
        run(cmd)
    };
    let done = run_with("gpt-x", &data.out);
    done.stderr_has("warning: the endpoint's model list (http://127.0.0.1:")
        .stderr_has("does not name \"gpt-x\"; it names: llava:latest, qwen2.5vl:7b");
    // The run itself then stops on the server's answers, with its reason.
    done.expect_code(2);
    done.stderr_has("try pulling it first");
    let tagged = run_with("llava", &data.dir("tagged"));
    assert_lacks(&tagged.stderr, "model list");
    // The mock lists one model but answers as any: no warning.
    let mock = Mock::start(&["--latency-ms", "0", "--error-rate", "0"]);
    let mut cmd = openai_compatible(data.root.path(), &mock.url, "gpt-x");
    cmd.args([p(&data.csv), "--out-dir", p(&data.dir("mock"))]);
    let done = run(cmd);
    done.expect_code(0);
    assert_lacks(&done.stderr, "model list");
}
