//! What the user should do next, in this CLI's words (its flags, its files). The
//! core says what happened; only the host knows how the user fixes it.

use std::path::Path;

use shadow_core::input::{ColumnRole, CsvError};
use shadow_core::{AbortReason, ConfigError};

fn column_flag(role: ColumnRole) -> &'static str {
    match role {
        ColumnRole::Image => "--image-column",
        ColumnRole::Label => "--label-column",
        ColumnRole::Id => "--id-column",
    }
}

/// The flag that fixes a CSV the core could not read, as a sentence to append.
pub fn for_csv(e: &CsvError) -> String {
    match e {
        CsvError::NoImageColumn { .. } => {
            "; pass --image-column NAME to say which column holds the image path or URL".into()
        }
        CsvError::NoLabelColumn { .. } => {
            "; pass --label-column NAME to say which column holds the human label".into()
        }
        CsvError::ColumnNotFound { role, .. } => {
            format!("; pass one of the columns found to {}", column_flag(*role))
        }
        _ => String::new(),
    }
}

/// A setting out of its range, in this CLI's words: the flag and its unit.
pub fn for_setting(e: &ConfigError) -> String {
    let ConfigError::OutOfRange { setting, value, .. } = e else {
        // The price: only flags set it.
        return format!("--price-input / --price-output: {e}");
    };
    match crate::cli::setting_flag(*setting) {
        Some(flag) => {
            let given = if flag.seconds {
                (*value as f64 / 1000.0).to_string()
            } else {
                value.to_string()
            };
            let range = crate::cli::range_text(*setting, &flag);
            format!("{} {given} is out of range: give {range}", flag.shown)
        }
        None => {
            format!("the saved run's setting {e}; edit it in the progress file or start a new run")
        }
    }
}

/// How to fix the cause of an aborted run and continue it. `key_var` is the
/// environment variable the run's key came from.
pub fn after_abort(reason: &AbortReason, progress: &Path, key_var: Option<&str>) -> String {
    let resume = format!("shadow-batch --resume {}", progress.display());
    match reason {
        AbortReason::Unauthorized { .. } => format!(
            "Check {} (or the key you gave) and that it may use this model and base URL, then continue with: {resume}",
            key_var.unwrap_or("the API key")
        ),
        AbortReason::QuotaExhausted { .. } => {
            format!("Add credit or raise the account's limit, then continue with: {resume}")
        }
        AbortReason::ModelNotFound { .. } => {
            format!("Pass a model the endpoint serves, then continue with: {resume} --model NAME")
        }
        AbortReason::EndpointUnreachable { .. } => format!(
            "Check the endpoint URL (--base-url or --endpoint) and that the server is up, then continue with: {resume}"
        ),
        AbortReason::EndpointRefuses { .. } => format!(
            "Check the endpoint URL, --model and --provider against what the endpoint serves, then continue with: {resume} --retry-failed"
        ),
        AbortReason::EndpointFailing { .. } => format!(
            "Check that the endpoint is up and answering (see the last error above), then continue with: {resume}"
        ),
        AbortReason::BatchFailed { .. } => format!(
            "Check that the model and endpoint accept batches of these requests (the provider's reason is above), then continue with: {resume}"
        ),
        AbortReason::BatchRefused {
            status: 404, step, ..
        } if step != "upload" && step != "create" => format!(
            "The endpoint does not know a batch (or file) the run created: either {} now holds another key (of another account, project or organization) than the one that created it, or --base-url points at another server than the one that ran it. Set the key and --base-url the run was started with, then continue with: {resume}",
            key_var.unwrap_or("the API key")
        ),
        AbortReason::BatchRefused { .. } => format!(
            "Check the key, --base-url (an OpenAI-compatible server needs /v1/files and /v1/batches) and --model, then continue with: {resume}"
        ),
        AbortReason::JournalMismatch { .. } => {
            let journal = progress
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(shadow_core::run_files::run_id_of_file_name)
                .map(|run| {
                    progress
                        .with_file_name(shadow_core::run_files::provider_file_name(run))
                        .display()
                        .to_string()
                })
                .unwrap_or_else(|| "the provider journal".into());
            format!(
                "Restore {journal} from a backup, or move it away: a resume then rebuilds it from the progress file and the provider. Then continue with: {resume}"
            )
        }
        _ => format!("Continue with: {resume}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_abort_names_the_resume_command_and_its_fix() {
        let progress = Path::new("out/shadow-mode-batch-progress-X.json");
        let cases = [
            (
                AbortReason::Unauthorized {
                    status: 401,
                    detail: None,
                },
                "OPENAI_API_KEY",
            ),
            (
                AbortReason::QuotaExhausted {
                    status: 429,
                    detail: None,
                },
                "credit",
            ),
            (
                AbortReason::ModelNotFound {
                    model: Some("gpt-x".into()),
                    detail: None,
                },
                "--model",
            ),
            (
                AbortReason::EndpointFailing {
                    for_ms: 600_000,
                    attempts: 20,
                    last_error: "HTTP 503".into(),
                },
                "endpoint is up",
            ),
        ];
        for (reason, fix) in cases {
            let step = after_abort(&reason, progress, Some("OPENAI_API_KEY"));
            assert!(step.contains(fix), "{step}");
            assert!(
                step.contains("--resume out/shadow-mode-batch-progress-X.json"),
                "{step}"
            );
        }
        let unauthorized = AbortReason::Unauthorized {
            status: 401,
            detail: None,
        };
        let step = after_abort(&unauthorized, progress, Some("ANTHROPIC_API_KEY"));
        assert!(step.starts_with("Check ANTHROPIC_API_KEY"), "{step}");
        // A batch the endpoint does not know: another key, or another server.
        let unknown = AbortReason::BatchRefused {
            step: "poll".into(),
            status: 404,
            detail: Some("No such batch: 'batch_1'".into()),
        };
        let step = after_abort(&unknown, progress, Some("OPENAI_API_KEY"));
        assert!(
            step.contains("OPENAI_API_KEY now holds another key")
                && step.contains("--base-url points at another server"),
            "{step}"
        );
        let mixed = AbortReason::JournalMismatch {
            detail: "line 3 gives batch b to shard 1".into(),
        };
        let step = after_abort(&mixed, progress, None);
        assert!(
            step.contains("Restore out/shadow-mode-batch-provider-X.jsonl"),
            "{step}"
        );
    }
}
