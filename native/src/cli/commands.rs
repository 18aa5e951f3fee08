//! The arguments of the commands beside a run: `cancel`, `compare`, `report`
//! and `web`.

use std::path::PathBuf;

use clap::Args;

use super::MockArgs;

#[derive(Args, Debug)]
pub struct CancelArgs {
    /// Any file of the run: its progress, summary, results or provider file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Run A (the incumbent, the earlier run): any of its files, progress, summary
    /// or results (its other files are found beside it).
    #[arg(value_name = "A")]
    pub a: PathBuf,

    /// Run B (the candidate): any of its files.
    #[arg(value_name = "B")]
    pub b: PathBuf,

    /// Where to write the comparison's JSON and HTML [default: A's folder].
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// Compare the matching rows of runs that do not look like runs over the same
    /// CSV (rows that differ, or another number of rows), instead of stopping.
    #[arg(long)]
    pub allow_partial: bool,

    /// Most rows the JSON (and the HTML) lists with both answers (1 to 10,000,000): first those
    /// where A and B differ or both are wrong, then those both got right; every
    /// figure still counts all rows.
    #[arg(long, value_name = "N", default_value_t = shadow_core::explorer::DEFAULT_ROW_CAP,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    pub max_rows: usize,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Any file of the run: shadow-mode-batch-progress-RUN.json,
    /// shadow-mode-batch-RUN.json or shadow-mode-batch-results-RUN.jsonl (its other
    /// files are found beside it).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Where to write the report [default: shadow-mode-batch-report-RUN.html beside
    /// FILE].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,

    /// The folder the CSV's image paths start from, for the thumbnails [default:
    /// FILE's folder when the CSV is there, else the CSV's folder as the run named
    /// it].
    #[arg(long, value_name = "DIR")]
    pub images_dir: Option<PathBuf>,

    /// Embed downscaled copies of the images (96 px a side, 8 MiB in all) instead of
    /// linking them by relative path, so that the report shows them anywhere.
    #[arg(long)]
    pub embed_thumbnails: bool,

    /// Most rows the report embeds (1 to 10,000,000). A run with more rows gets
    /// every failure and disagreement (up to nine tenths of N: failures first) and
    /// a seeded random sample of its agreeing rows, and says so at the top; every
    /// figure still counts all rows, and the results file keeps them all.
    #[arg(long, value_name = "N", default_value_t = shadow_core::explorer::DEFAULT_ROW_CAP,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    pub max_rows: usize,
}

#[derive(Args, Debug)]
pub struct WebArgs {
    /// Folder holding index.html and pkg/ [default: the web/ folder of this source tree].
    #[arg(long, value_name = "DIR")]
    pub web_dir: Option<PathBuf>,

    #[command(flatten)]
    pub mock: MockArgs,
}
