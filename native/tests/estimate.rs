//! `shadow-batch estimate` and `--dry-run`: the estimate of a run, with nothing
//! sent and no file written.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::*;

/// A CSV of three example images (64 x 64), one missing file, one URL and one
/// row without an image, estimated for gpt-4o at high detail with a price and
/// caps: every figure is on the console, worked out from the published
/// formula (85 + 170 for one 512 px tile); nothing reaches the named endpoint
/// (a listener that counts connections sees none), and no file is written.
#[test]
fn an_estimate_names_what_a_run_would_send_and_sends_nothing() {
    let data = Data::new(3);
    write_csv(
        &data.csv,
        "image,label",
        &[
            "images/digit-0000.png,0".into(),
            "images/digit-0001.png,1".into(),
            "images/digit-0002.png,2".into(),
            "images/gone.png,1".into(),
            "https://example.test/a.png,2".into(),
            ",1".into(),
        ],
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    let before: Vec<_> = std::fs::read_dir(&data.data).unwrap().collect();
    let mut cmd = shadow(data.root.path());
    cmd.args([
        "estimate",
        data.csv.to_str().unwrap(),
        "--provider",
        "openai",
        "--base-url",
        &base_url,
        "--model",
        "gpt-4o",
        "--detail",
        "high",
        "--price-input",
        "2",
        "--price-output",
        "8",
        "--rpm",
        "60",
    ]);
    let done = Running::spawn(cmd).finish(Duration::from_secs(20));
    done.expect_code(0)
        .stdout_has("with OpenAI gpt-4o (nothing sent)")
        .stdout_has("Rows:            6 (1 with a defect: not sent)")
        .stdout_has("3 found · 1 missing · 1 URLs (not fetched)")
        .stdout_has("e.g. line 5: images/gone.png: no such file")
        .stdout_has("64x64 (read from 3 images)")
        .stdout_has("(255 image, by the provider's formula;")
        .stdout_has("Requests:        4")
        .stdout_has("the price given")
        .stdout_has("about 4s at 60 requests a minute (the requests-per-minute cap)");
    assert!(
        listener.accept().is_err(),
        "the estimate connected to the endpoint"
    );
    let after: Vec<_> = std::fs::read_dir(&data.data).unwrap().collect();
    assert_eq!(before.len(), after.len(), "the estimate wrote a file");

    // The same through --dry-run, with no key in the environment: none needed.
    let mut cmd = shadow(data.root.path());
    cmd.args([
        data.csv.to_str().unwrap(),
        "--dry-run",
        "--provider",
        "openai",
    ]);
    cmd.args(["--base-url", &base_url]);
    let done = Running::spawn(cmd).finish(Duration::from_secs(20));
    done.expect_code(0)
        .stdout_has("gpt-4o-mini's list price")
        .stdout_has("--rpm or --tpm (your tier's limits), or --ask-endpoint-limits (one request), give the time");
    assert!(listener.accept().is_err());
}

/// What a run would refuse at the start, the estimate refuses the same way.
#[test]
fn an_estimate_refuses_what_the_run_would() {
    let data = Data::new(2);
    let mut cmd = shadow(data.root.path());
    cmd.args([
        "estimate",
        data.csv.to_str().unwrap(),
        "--require",
        "recall[7] >= 0.5",
    ]);
    let done = Running::spawn(cmd).finish(Duration::from_secs(20));
    done.expect_code(2)
        .stderr_has("--require: no row of the CSV has the label `7`");
}

/// `--ask-endpoint-limits` sends one text-only request to the named endpoint
/// with the run's key, prints the limits its headers state, and times the run
/// at the slowest of them and the caps: here the mock's 250,000 tokens a
/// minute over about 2,938 tokens a request (gpt-4o-mini low detail: 2,833 image
/// tokens, the prompt's text and the answer's cap for these labels, the
/// "Per request" line) is 85.1 requests a minute, slower than its 3,000
/// requests. Without the flag the same estimate sends nothing: the mock's
/// request counter stays 0.
#[test]
fn asked_the_estimate_reads_the_endpoints_limits_and_times_the_run_at_them() {
    let data = Data::new(3);
    let mock = Mock::start(&[
        "--rpm",
        "3000",
        "--tpm",
        "250000",
        "--require-key",
        "right-key",
    ]);
    let estimate = |ask: bool| {
        let mut cmd = shadow(data.root.path());
        cmd.args(["estimate", p(&data.csv), "--provider", "openai"])
            .args(["--base-url", &mock.url, "--model", "gpt-4o-mini"])
            .env("OPENAI_API_KEY", "right-key");
        if ask {
            cmd.arg("--ask-endpoint-limits");
        }
        Running::spawn(cmd).finish(Duration::from_secs(30))
    };
    let done = estimate(false);
    done.expect_code(0).stdout_has("(nothing sent)");
    assert_lacks(&done.stdout, "Endpoint limits");
    assert_eq!(mock.stats()["requests"], 0, "the default sent a request");

    let done = estimate(true);
    done.expect_code(0)
        .stdout_has("(one request sent, for the endpoint's limits)")
        .stdout_has("Endpoint limits: 3,000 requests, 250,000 tokens a minute (read from ")
        .stdout_has("x-ratelimit-limit-requests: 3000")
        .stdout_has("x-ratelimit-limit-tokens: 250000")
        .stdout_has("at 85.1 requests a minute (the endpoint's tokens-per-minute limit)");
    assert_eq!(mock.stats()["requests"], 1);
    assert_eq!(mock.stats()["ok"], 1);
}

/// A refused key is told in the run's words, naming the variable it came
/// from, and the key is printed nowhere, even when the endpoint echoes it; a
/// URL nothing listens on is told as such; Gemini is not asked.
#[test]
fn asking_for_limits_fails_in_the_runs_words_and_never_shows_the_key() {
    let data = Data::new(2);
    let secret = "sk-estimate-secret-4242";
    let echo = EchoingEndpoint::start(0);
    let mut cmd = shadow(data.root.path());
    cmd.args(["estimate", p(&data.csv), "--provider", "openai"])
        .args([
            "--base-url",
            &format!("{}/v1", echo.url),
            "--ask-endpoint-limits",
        ])
        .env("OPENAI_API_KEY", secret);
    let done = Running::spawn(cmd).finish(Duration::from_secs(30));
    done.expect_code(2)
        .stderr_has("--ask-endpoint-limits: ")
        .stderr_has("the endpoint rejected the API key (HTTP 401)")
        .stderr_has("Check OPENAI_API_KEY");
    assert_lacks(&done.stderr, secret);
    assert_lacks(&done.stdout, secret);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let mut cmd = shadow(data.root.path());
    cmd.args(["estimate", p(&data.csv), "--provider", "openai"])
        .args(["--base-url", &url, "--ask-endpoint-limits"])
        .env("OPENAI_API_KEY", secret);
    let done = Running::spawn(cmd).finish(Duration::from_secs(30));
    done.expect_code(2)
        .stderr_has("--ask-endpoint-limits: cannot connect to http://127.0.0.1:")
        .stderr_has("Check the endpoint URL");
    assert_lacks(&done.stderr, secret);

    let mut cmd = shadow(data.root.path());
    cmd.args([
        "estimate",
        p(&data.csv),
        "--provider",
        "gemini",
        "--ask-endpoint-limits",
    ])
    .env("GEMINI_API_KEY", secret);
    let done = Running::spawn(cmd).finish(Duration::from_secs(30));
    done.expect_code(0)
        .stdout_has("(nothing sent)")
        .stdout_has("Endpoint limits: not asked: Gemini's API states its limits in no header");
}
