//! The naive client the benchmark compares shadow-batch with: a faithful imitation
//! of the loop of the TypeScript script shadow-batch replaces
//! (`scripts/run-shadow-mode-batch.ts`). Rows one at a time, in CSV order; each
//! image sent as the same request shadow-batch sends (built by the core's
//! provider, so the payload is identical); on 429 it sleeps for `retry-after`
//! seconds (1 s when absent) and sends the same row again; on a 5xx or a broken
//! connection it backs off 1 s, 2 s, 4 s, ...; between two rows it sleeps a fixed
//! delay (by default 60000 / rpm ms, the delay a careful user picks for the limit).
//!
//! ```sh
//! OPENAI_API_KEY=... cargo run --release -p shadow-native --example naive -- \
//!     CSV --base-url http://127.0.0.1:8787/v1 --rpm 6000 [--limit 300]
//! ```
//!
//! Prints one JSON line: images, successful, failed, requests, rateLimited,
//! serverErrors, elapsedMs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use shadow_core::image::to_data_url;
use shadow_core::input::{read_labels_csv, ColumnNames, ImageRef};
use shadow_core::provider::{ImageDetail, OpenAiConfig, Provider};

/// One request at a time, fixed delay, sleep on 429.
#[derive(Parser, Debug)]
struct Args {
    /// The labels CSV (image paths relative to its folder, or URLs).
    csv: PathBuf,
    /// Base URL of the OpenAI-compatible API, up to /v1.
    #[arg(long)]
    base_url: String,
    /// The endpoint's requests-per-minute limit; the delay between rows is
    /// 60000 / rpm ms unless --delay-ms is given.
    #[arg(long)]
    rpm: Option<u32>,
    /// Fixed delay between two rows, in ms [default: 60000 / rpm, else 1000].
    #[arg(long)]
    delay_ms: Option<u64>,
    /// Retries per row after the first attempt.
    #[arg(long, default_value_t = 5)]
    max_retries: u32,
    /// Only the first N rows.
    #[arg(long)]
    limit: Option<usize>,
    /// Model name sent.
    #[arg(long, default_value = "gpt-4o-mini")]
    model: String,
    /// Per-request timeout, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

#[derive(Default)]
struct Tally {
    images: u64,
    successful: u64,
    failed: u64,
    requests: u64,
    rate_limited: u64,
    server_errors: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let delay = Duration::from_millis(
        args.delay_ms
            .unwrap_or_else(|| args.rpm.map_or(1000, |rpm| 60_000 / u64::from(rpm.max(1)))),
    );
    let text =
        std::fs::read(&args.csv).with_context(|| format!("cannot read {}", args.csv.display()))?;
    let csv = read_labels_csv(&text[..], &ColumnNames::default())?;
    let dir = args.csv.parent().unwrap_or(Path::new(".")).to_path_buf();
    let provider = Provider::OpenAi(OpenAiConfig {
        base_url: args.base_url.clone(),
        model: args.model.clone(),
        detail: ImageDetail::Low,
        prompt: None,
    });
    let key = std::env::var("OPENAI_API_KEY").unwrap_or_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .build()?;
    let rows = args.limit.unwrap_or(usize::MAX).min(csv.items.len());

    let mut t = Tally::default();
    let start = Instant::now();
    for (i, item) in csv.items.iter().take(rows).enumerate() {
        t.images += 1;
        let image = match &item.image {
            ImageRef::Url(u) | ImageRef::DataUrl(u) => u.to_string(),
            ImageRef::RelativePath(p) => {
                let bytes = tokio::fs::read(dir.join(&**p)).await?;
                to_data_url(&bytes)?
            }
            ImageRef::AbsolutePath(p) => to_data_url(&tokio::fs::read(&**p).await?)?,
            other => bail!("line {}: unsupported image {other:?}", item.line),
        };
        let mut attempt = 1u32;
        let ok = loop {
            let request = provider.request_template(&csv.outline.labels).build(
                &image,
                attempt,
                item.id.as_deref(),
            );
            let mut builder = client.post(&request.url).body(request.body);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            if !key.is_empty() {
                builder = builder.bearer_auth(&key);
            }
            t.requests += 1;
            let wait = match builder.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    let body = resp.text().await.unwrap_or_default();
                    match status {
                        200..=299 => {
                            break provider.parse_answer(&body, &csv.outline.labels).is_ok()
                        }
                        429 => {
                            t.rate_limited += 1;
                            Duration::from_secs(retry_after.unwrap_or(1))
                        }
                        500..=599 => {
                            t.server_errors += 1;
                            Duration::from_secs(1 << (attempt - 1).min(5))
                        }
                        _ => break false,
                    }
                }
                Err(_) => Duration::from_secs(1 << (attempt - 1).min(5)),
            };
            if attempt > args.max_retries {
                break false;
            }
            attempt += 1;
            tokio::time::sleep(wait).await;
        };
        if ok {
            t.successful += 1;
        } else {
            t.failed += 1;
        }
        if i + 1 < rows {
            tokio::time::sleep(delay).await;
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{}",
        serde_json::json!({
            "images": t.images,
            "successful": t.successful,
            "failed": t.failed,
            "requests": t.requests,
            "rateLimited": t.rate_limited,
            "serverErrors": t.server_errors,
            "delayMs": delay.as_millis() as u64,
            "elapsedMs": elapsed.as_millis() as u64,
        })
    );
    Ok(())
}
