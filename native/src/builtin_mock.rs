//! The built-in mock endpoint as the CLI uses it: started beside a run (its answer
//! key built from the run's own images), and served alone by `shadow-batch
//! mock-server` and `shadow-batch web`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::sync::Arc;

use shadow_core::input::{ColumnNames, Item};
use shadow_mock::{MockConfig, MockServer, Truth};

use crate::cli::RunArgs;
use crate::csv_rows::CsvRows;
use crate::images::ImageLoader;

/// Starts the mock a run sends to, answering with the CSV's labels.
pub async fn start(
    args: &RunArgs,
    rows: &CsvRows,
    columns: &ColumnNames,
    images: &ImageLoader,
) -> Result<MockServer> {
    for (name, share) in [
        ("--mock-accuracy", args.mock_accuracy),
        ("--mock-error-rate", args.mock_error_rate),
    ] {
        if !(0.0..=1.0).contains(&share) {
            bail!("{name} must be between 0 and 1");
        }
    }
    let truth = build_truth(rows.each_row(columns)?, images).await;
    MockServer::spawn(args.builtin_mock(), Some(truth))
        .await
        .context("cannot start the built-in mock endpoint on 127.0.0.1")
}

/// The mock's answer key: each image as the host will send it, with its label.
/// An image named again with the same label as lately is not read again (a CSV
/// of millions of rows often repeats a few images), so the row the key gives
/// such an image is the first of them.
async fn build_truth(rows: impl Iterator<Item = Item>, images: &ImageLoader) -> Truth {
    /// Images remembered at once: bounded, as the CSV may be millions of rows.
    const RECENT: usize = 4096;
    let mut truth = Truth::from_pairs(std::iter::empty());
    let mut recent: HashMap<Box<str>, Arc<str>> = HashMap::new();
    for item in rows.filter(|i| i.defect.is_none()) {
        if recent.get(item.image.as_str()) == Some(&item.label) {
            continue;
        }
        if let Ok(url) = images.load(&item).await {
            truth.insert_row(&url, item.label.to_string(), item.row);
        }
        if recent.len() == RECENT {
            recent.clear();
        }
        recent.insert(item.image.as_str().into(), item.label.clone());
    }
    truth
}

/// Serves the mock endpoint; with `web_dir`, the browser page too, on the same origin.
pub async fn serve(mut cfg: MockConfig, web_dir: Option<PathBuf>) -> Result<()> {
    if let Some(dir) = &web_dir {
        if !dir.join("pkg/shadow_wasm.js").exists() {
            bail!(
                "{} has no pkg/shadow_wasm.js: build the page first with `bash web/build.sh`",
                dir.display()
            );
        }
    }
    let truth = match cfg.truth.take() {
        Some(path) => {
            let csv = CsvRows::open(&path, &ColumnNames::default(), false)?;
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let images = ImageLoader::new(dir, false)?;
            let truth = build_truth(csv.each_row(&ColumnNames::default())?, &images).await;
            if truth.is_empty() {
                eprintln!(
                    "warning: no image of {} could be loaded: answers will not follow its labels",
                    path.display()
                );
            } else {
                eprintln!("truth: {} images from {}", truth.len(), path.display());
            }
            cfg.truth = Some(path);
            Some(truth)
        }
        None => None,
    };
    let server = MockServer::spawn_with_files(cfg.clone(), truth, web_dir.clone())
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", cfg.port))?;
    if web_dir.is_some() {
        println!(
            "shadow-batch page at http://{}/ (mock endpoint at {})",
            server.addr,
            server.base_url()
        );
    } else {
        println!(
            "shadow-batch mock endpoint listening on {}",
            server.base_url()
        );
    }
    println!("(OpenAI-compatible; simulated predictions; Ctrl-C to stop)");
    let root = format!("http://{}", server.addr);
    println!("Other dialects on the same address (the key in each one's header):");
    println!("  --provider anthropic --base-url {root}");
    println!("  --provider gemini --base-url {root}");
    println!("  --provider azure --base-url {root} --deployment NAME [--api-version 2024-10-21]");
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    Ok(())
}
