//! Azure OpenAI global batch: OpenAI's Batch API under an Azure resource. The
//! run speaks it through the OpenAI dialect ([`super::openai`]); this file says
//! only where Azure differs:
//!
//! - where: `{resource}/openai/v1/files` and `/openai/v1/batches` (the
//!   version-less v1 path), or, when the run names an `api-version`, the older
//!   `{resource}/openai/files` and `/openai/batches` with `?api-version=V` on
//!   every call;
//! - the key goes in an `api-key` header (the host asks the provider, as for a
//!   live run);
//! - the endpoint the batch and its lines target is `/chat/completions`, and
//!   every line's `body.model` is the global-batch deployment's name (the live
//!   request's body already names the deployment as its model, so the lines
//!   are the live bodies, unchanged, all with the same model);
//! - statuses may be capitalised (Microsoft's samples print `Validating`) and
//!   times may be ISO 8601 rather than Unix seconds: the OpenAI reader takes
//!   both, for either provider;
//! - a finished batch's `error_file_id` may name an empty file: it is read as
//!   no lines, like any other;
//! - limits: 100,000 requests and 200 MB per input file
//!   ([`crate::provider::BatchLimits::AZURE`]); a resource may hold only so many
//!   files (500, or 10,000 with an expiry), and the queued tokens per model
//!   have a quota: a batch refused for it fails with `token_limit_exceeded`,
//!   which the run treats as OpenAI's (the same file again, later).
//!
//! Sources: Microsoft Learn, "Getting started with Azure OpenAI batch
//! deployments" (how-to/batch) and its REST tab, and "Global batch limits",
//! as collected in `shared/reference/provider-apis.md`.

use crate::http::HttpRequest;
use crate::provider::AzureConfig;

use super::openai::path_segment;

/// What an Azure resource's batch calls add to OpenAI's: its `api-version`, if
/// the run names one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Resource {
    pub(super) api_version: Option<String>,
}

/// The endpoint an Azure batch and each of its lines target.
pub(super) const ENDPOINT: &str = "/chat/completions";

/// The batch API's root for the resource `cfg` names: `{resource}/openai/v1`,
/// or `{resource}/openai` when the run names an API version. The resource is
/// the base URL up to `/openai` (a base given as a deployment's whole
/// chat-completions URL works too).
pub(super) fn api_base(cfg: &AzureConfig) -> String {
    let base = cfg.base_url.trim();
    let base = base.split('?').next().unwrap_or(base).trim_end_matches('/');
    let root = match base.find("/openai") {
        Some(i) if base[i..] == *"/openai" || base[i..].starts_with("/openai/") => &base[..i],
        _ => base,
    };
    match api_version(cfg) {
        Some(_) => format!("{root}/openai"),
        None => format!("{root}/openai/v1"),
    }
}

/// The run's `api-version`, when it names one (blank is none).
pub(super) fn api_version(cfg: &AzureConfig) -> Option<String> {
    cfg.api_version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// `request` with `api-version=V` added to its query, when there is a version.
pub(super) fn versioned(mut request: HttpRequest, version: Option<&str>) -> HttpRequest {
    if let Some(version) = version {
        request
            .url
            .push(if request.url.contains('?') { '&' } else { '?' });
        request.url.push_str("api-version=");
        request.url.push_str(&path_segment(version));
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ImageDetail;

    fn cfg(base: &str, version: Option<&str>) -> AzureConfig {
        AzureConfig {
            base_url: base.to_owned(),
            deployment: "gpt-4o-batch".to_owned(),
            api_version: version.map(str::to_owned),
            detail: ImageDetail::Low,
            prompt: None,
        }
    }

    #[test]
    fn the_batch_api_is_under_the_resource_v1_or_versioned() {
        for base in [
            "https://res.openai.azure.com",
            "https://res.openai.azure.com/",
            "https://res.openai.azure.com/openai/v1/",
            "https://res.openai.azure.com/openai/v1/chat/completions",
        ] {
            assert_eq!(
                api_base(&cfg(base, None)),
                "https://res.openai.azure.com/openai/v1",
                "{base}"
            );
        }
        let full = "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21";
        assert_eq!(
            api_base(&cfg(full, Some("2024-10-21"))),
            "https://res.openai.azure.com/openai"
        );
        assert_eq!(api_version(&cfg(full, Some(" "))), None);
        // A host that merely contains "openai" is not cut.
        assert_eq!(
            api_base(&cfg("http://127.0.0.1:9/openaix", None)),
            "http://127.0.0.1:9/openaix/openai/v1"
        );
        let get = |url: &str| HttpRequest {
            method: "GET",
            url: url.to_string(),
            headers: Vec::new(),
            body: String::new(),
        };
        assert_eq!(
            versioned(get("b/batches?limit=100"), Some("2024-10-21")).url,
            "b/batches?limit=100&api-version=2024-10-21"
        );
        assert_eq!(
            versioned(get("b/batches/x"), Some("2025-04-01-preview")).url,
            "b/batches/x?api-version=2025-04-01-preview"
        );
        assert_eq!(versioned(get("b/files"), None).url, "b/files");
    }

    /// A run at an Azure resource with an API version: its lines target
    /// `/chat/completions` and name the deployment as their model; its upload,
    /// create and poll go to the resource's versioned paths with
    /// `?api-version=`; the create's endpoint is Azure's.
    #[test]
    fn an_azure_run_uploads_creates_and_polls_at_the_resource() {
        use crate::batch::{BatchInput, BatchOutput, BatchRun};
        use crate::http::HttpResponse;
        use crate::input::{parse_labels_csv, ColumnNames};
        use crate::provider::Provider;
        use crate::time::Millis;
        use crate::RunConfig;
        use serde_json::Value;

        let config = RunConfig {
            run_id: "RUN".into(),
            provider: Provider::Azure(cfg("https://res.openai.azure.com/", Some("2024-10-21"))),
            batch_api: None,
            ..RunConfig::default()
        };
        let csv = parse_labels_csv(
            "image,label\nhttps://x.test/0.png,cat\nhttps://x.test/1.png,dog\n",
            &ColumnNames::default(),
        )
        .unwrap();
        let now = Millis(1_700_000_000_000);
        let mut run = BatchRun::new(config, csv, now).unwrap();
        assert_eq!(
            run.run().config().batch_api.as_ref().unwrap().max_lines,
            100_000,
            "Azure's limit"
        );
        let builder = run.line_builder();
        let mut upload = None;
        for _ in 0..50 {
            let mut built = Vec::new();
            while let Some(output) = run.poll(now) {
                match output {
                    BatchOutput::BuildLine(order) => {
                        let line = builder.line(&order, "https://x.test/i.png", None);
                        let v: Value = serde_json::from_str(&line).unwrap();
                        assert_eq!(v["url"], "/chat/completions", "{line}");
                        assert_eq!(v["body"]["model"], "gpt-4o-batch", "{line}");
                        built.push((order.ticket, line.len() as u64));
                    }
                    BatchOutput::Upload(order) => upload = Some(order),
                    _ => {}
                }
            }
            for (ticket, bytes) in built {
                run.handle(now, BatchInput::LineBuilt { ticket, bytes })
                    .unwrap();
            }
            if upload.is_some() {
                break;
            }
        }
        let upload = upload.expect("an upload");
        assert_eq!(
            upload.url,
            "https://res.openai.azure.com/openai/files?api-version=2024-10-21"
        );
        let answer = |body: &str| HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: body.to_string(),
        };
        run.handle(
            now,
            BatchInput::Answer {
                call: upload.call,
                response: answer(r#"{"id":"file-1","object":"file"}"#),
            },
        )
        .unwrap();
        let create = std::iter::from_fn(|| run.poll(now))
            .find_map(|o| match o {
                BatchOutput::Call { call, request, .. } => Some((call, request)),
                _ => None,
            })
            .expect("a create");
        assert_eq!(
            create.1.url,
            "https://res.openai.azure.com/openai/batches?api-version=2024-10-21"
        );
        let body: Value = serde_json::from_str(&create.1.body).unwrap();
        assert_eq!(body["endpoint"], "/chat/completions");
        assert_eq!(body["input_file_id"], "file-1");
        assert_eq!(body["completion_window"], "24h");
        // Azure's sample answer: a capitalised status.
        run.handle(
            now,
            BatchInput::Answer {
                call: create.0,
                response: answer(
                    r#"{"id":"batch_1","status":"Validating","input_file_id":"file-1","created_at":1720000000}"#,
                ),
            },
        )
        .unwrap();
        let later = Millis(now.0 + 3_600_000);
        let poll = std::iter::from_fn(|| run.poll(later))
            .find_map(|o| match o {
                BatchOutput::Call { request, .. } => Some(request),
                _ => None,
            })
            .expect("a poll");
        assert_eq!(poll.method, "GET");
        assert_eq!(
            poll.url,
            "https://res.openai.azure.com/openai/batches/batch_1?api-version=2024-10-21"
        );
        assert_eq!(run.provider_batches()[0].status.to_string(), "validating");
    }
}
