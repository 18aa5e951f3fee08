//! The names of a run's files, the same for every host: the CLI writes them to
//! disk, the page offers them as downloads.

/// What every file of a run starts with.
pub const PREFIX: &str = "shadow-mode-batch-";

/// The progress report, replaced after every batch: `shadow-mode-batch-progress-{run}.json`.
pub fn progress_file_name(run_id: &str) -> String {
    format!("{PREFIX}progress-{run_id}.json")
}

/// The final summary: `shadow-mode-batch-{run}.json`.
pub fn summary_file_name(run_id: &str) -> String {
    format!("{PREFIX}{run_id}.json")
}

/// The results journal, one line per finished row: `shadow-mode-batch-results-{run}.jsonl`.
pub fn results_file_name(run_id: &str) -> String {
    format!("{PREFIX}results-{run_id}.jsonl")
}

/// The self-contained HTML report: `shadow-mode-batch-report-{run}.html`.
pub fn report_file_name(run_id: &str) -> String {
    format!("{PREFIX}report-{run_id}.html")
}

/// The provider journal of a batch-API run (every file and batch id the provider
/// gave): `shadow-mode-batch-provider-{run}.jsonl`.
pub fn provider_file_name(run_id: &str) -> String {
    format!("{PREFIX}provider-{run_id}.jsonl")
}

/// The lock held by the process running (or resuming) the run, so that a second
/// process cannot write the run's files at the same time:
/// `shadow-mode-batch-{run}.lock`. Not a file `--resume` takes.
pub fn lock_file_name(run_id: &str) -> String {
    format!("{PREFIX}{run_id}.lock")
}

/// The comparison of run `a` with run `b` (`shadow-batch compare`):
/// `shadow-mode-batch-compare-{a}-vs-{b}.json`.
pub fn compare_file_name(a: &str, b: &str) -> String {
    format!("{PREFIX}compare-{a}-vs-{b}.json")
}

/// The run id in the name of any of a run's files, or `None` if the name is not
/// one of them (a comparison's file is not a run's).
pub fn run_id_of_file_name(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PREFIX)?;
    rest.strip_prefix("progress-")
        .and_then(|r| r.strip_suffix(".json"))
        .or_else(|| {
            rest.strip_prefix("results-")
                .and_then(|r| r.strip_suffix(".jsonl"))
        })
        .or_else(|| {
            rest.strip_prefix("report-")
                .and_then(|r| r.strip_suffix(".html"))
        })
        .or_else(|| {
            rest.strip_prefix("provider-")
                .and_then(|r| r.strip_suffix(".jsonl"))
        })
        .or_else(|| rest.strip_suffix(".json"))
        .filter(|id| !id.is_empty() && !id.starts_with("compare-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_name_gives_back_its_run_id() {
        let id = "2025-01-24T10-30-00-000Z";
        for name in [
            progress_file_name(id),
            summary_file_name(id),
            results_file_name(id),
            report_file_name(id),
            provider_file_name(id),
        ] {
            assert_eq!(run_id_of_file_name(&name), Some(id), "{name}");
        }
        assert_eq!(run_id_of_file_name("shadow-mode-batch-.json"), None);
        assert_eq!(run_id_of_file_name("labels.csv"), None);
        assert_eq!(run_id_of_file_name(&lock_file_name(id)), None);
        assert_eq!(run_id_of_file_name(&compare_file_name(id, id)), None);
    }
}
