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
        .stdout_has("--rpm or --tpm (your tier's limits) give the time");
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
