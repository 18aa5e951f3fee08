//! The rows a sampled run is made of, as a host hands them to [`crate::Run`]:
//! the CSV read whole, the size asked, the run's seed and the saved run's
//! sample. The page's wasm face draws its sample here, and so reaches the rows
//! the CLI's `--sample` draws (the same seed gives the same rows).

use super::{Sample, SampleError, SampleSize};
use crate::input::LabelsCsv;

/// Why a run's rows cannot be drawn.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunSampleError {
    /// The sample itself ([`SampleError`]).
    #[error(transparent)]
    Sample(#[from] SampleError),
    /// A resumed run that went over the whole CSV in file order asked for a
    /// sample or a random order: its results number the rows in file order.
    #[error(
        "this run went over the whole CSV in file order; a sample or a random order is \
         a new run (start one instead of resuming)"
    )]
    WholeRunResumed,
}

impl Sample {
    /// The sample of a run over `csv` and the CSV cut down to it
    /// ([`Sample::take`]): `asked` rows (or a share), else the saved run's
    /// size, else every row (a random order of the whole CSV, as
    /// `--until-interval` alone asks). `resumed`: the run continues a saved
    /// one, whose sample is `saved` (`None`: it went over the whole CSV).
    pub fn for_run(
        csv: LabelsCsv,
        asked: Option<SampleSize>,
        seed: u64,
        resumed: bool,
        saved: Option<&Sample>,
    ) -> Result<(LabelsCsv, Sample), RunSampleError> {
        if resumed && saved.is_none() {
            return Err(RunSampleError::WholeRunResumed);
        }
        let rows = match asked {
            Some(size) => size.rows_of(csv.items.len())?,
            None => saved.map_or(csv.items.len(), |s| s.rows),
        };
        let sample = Sample::draw(&csv, seed, rows, saved)?;
        Ok((sample.take(csv), sample))
    }
}
