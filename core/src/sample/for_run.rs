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
         a new run (give the CSV without --resume)"
    )]
    WholeRunResumed,
    /// A sample stratified by label with a stop at an interval's width.
    #[error(
        "--until-interval with a sample stratified by label (--stratify) is refused: its \
         anytime-valid interval holds only for rows in uniform random order, and a \
         stratified order is not (use --sample N --stratify for a fixed size, or \
         --until-interval without --stratify)"
    )]
    StratifiedStop,
    /// `--stratify` with no sample size (and no saved sample).
    #[error("--stratify draws a sample by label: give a sample size (--sample N or a share)")]
    StratifyWithoutSample,
}

impl Sample {
    /// The sample of a run over `csv` and the CSV cut down to it
    /// ([`Sample::take`]): `asked` rows (or a share), else the saved run's
    /// size, else every row (a random order of the whole CSV, as
    /// `--until-interval` alone asks), by label when `stratify` (a saved
    /// stratified sample stays stratified). `resumed`: the run continues a
    /// saved one, whose sample is `saved` (`None`: it went over the whole CSV).
    /// `until_interval`: the run stops at an interval's width, which a
    /// stratified sample cannot (its order is not uniform).
    pub fn for_run(
        csv: LabelsCsv,
        asked: Option<SampleSize>,
        stratify: bool,
        seed: u64,
        resumed: bool,
        saved: Option<&Sample>,
        until_interval: bool,
    ) -> Result<(LabelsCsv, Sample), RunSampleError> {
        if resumed && saved.is_none() {
            return Err(RunSampleError::WholeRunResumed);
        }
        if stratify && asked.is_none() && saved.is_none() {
            return Err(RunSampleError::StratifyWithoutSample);
        }
        let rows = match asked {
            Some(size) => size.rows_of(csv.items.len())?,
            None => saved.map_or(csv.items.len(), |s| s.rows),
        };
        let sample = Sample::draw(&csv, seed, rows, stratify, saved)?;
        if sample.strata.is_some() && until_interval {
            return Err(RunSampleError::StratifiedStop);
        }
        Ok((sample.take(csv), sample))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{parse_labels_csv, ColumnNames};

    fn csv(rows: usize) -> LabelsCsv {
        let mut text = String::from("image,label\n");
        for i in 0..rows {
            text.push_str(&format!("img{i}.png,{}\n", ["cat", "dog"][i % 2]));
        }
        parse_labels_csv(&text, &ColumnNames::default()).unwrap()
    }

    fn lines(csv: &LabelsCsv) -> Vec<u64> {
        csv.items.iter().map(|i| i.line).collect()
    }

    #[test]
    fn a_runs_rows_are_the_draw_of_the_size_asked_or_saved_or_every_row() {
        let drawn = Sample::draw(&csv(30), 5, 10, false, None).unwrap();
        let (rows, sample) = Sample::for_run(
            csv(30),
            Some(SampleSize::Rows(10)),
            false,
            5,
            false,
            None,
            false,
        )
        .unwrap();
        assert_eq!(sample, drawn);
        assert_eq!(lines(&rows), lines(&drawn.take(csv(30))));
        // A share: rounded up to whole rows.
        let (_, share) = Sample::for_run(
            csv(30),
            Some(SampleSize::Share(0.25)),
            false,
            5,
            false,
            None,
            false,
        )
        .unwrap();
        assert_eq!(share.rows, 8);
        // Nothing asked: the saved run's size, and its seed whatever is given now.
        let (again, resumed) =
            Sample::for_run(csv(30), None, false, 99, true, Some(&drawn), false).unwrap();
        assert_eq!((resumed.rows, resumed.seed), (10, 5));
        assert_eq!(lines(&again), lines(&rows));
        // Nothing asked nor saved (a stop alone): every row, in a random order.
        let (all, whole) = Sample::for_run(csv(30), None, false, 5, false, None, false).unwrap();
        assert_eq!(whole.rows, 30);
        assert_eq!(lines(&all)[..10], lines(&rows)[..]);
    }

    #[test]
    fn a_whole_run_resumed_or_a_size_the_csv_lacks_is_refused() {
        assert_eq!(
            Sample::for_run(
                csv(30),
                Some(SampleSize::Rows(10)),
                false,
                5,
                true,
                None,
                false
            )
            .unwrap_err(),
            RunSampleError::WholeRunResumed
        );
        let err = Sample::for_run(
            csv(30),
            Some(SampleSize::Rows(31)),
            false,
            5,
            false,
            None,
            false,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "--sample 31: the CSV has only 30 rows");
    }

    /// By label needs a size; a stratified sample cannot stop at a width (the
    /// sequence needs uniform random order), asked now or saved before.
    #[test]
    fn a_stratified_sample_needs_a_size_and_refuses_a_stop() {
        assert_eq!(
            Sample::for_run(csv(30), None, true, 5, false, None, false).unwrap_err(),
            RunSampleError::StratifyWithoutSample
        );
        let ten = Some(SampleSize::Rows(10));
        assert_eq!(
            Sample::for_run(csv(30), ten, true, 5, false, None, true).unwrap_err(),
            RunSampleError::StratifiedStop
        );
        let (_, stratified) = Sample::for_run(csv(30), ten, true, 5, false, None, false).unwrap();
        assert!(stratified.strata.is_some());
        assert_eq!(
            Sample::for_run(csv(30), None, false, 5, true, Some(&stratified), true).unwrap_err(),
            RunSampleError::StratifiedStop
        );
    }
}
