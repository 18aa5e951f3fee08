//! Azure OpenAI: OpenAI's chat-completions body and answer, at Azure's paths, with
//! the key in an `api-key` header (added by the host) instead of a bearer token.
//!
//! Two paths: with an API version, the deployment path
//! `{resource}/openai/deployments/{deployment}/chat/completions?api-version={v}`;
//! without one, the newer version-less v1 path `{resource}/openai/v1/chat/completions`,
//! where the deployment is named by the body's `model`. The body names the
//! deployment as its `model` on both (the deployment path ignores it).
//!
//! Azure's content filter is told apart from failures: `finish_reason:
//! "content_filter"` in an answer and a 400 whose error code is `content_filter` are
//! refusals (see the OpenAI parser and `ratelimit::classify_status`).

use super::image_part::encode_path;
use super::{AzureConfig, OpenAiConfig};

/// The host names of Azure OpenAI resources end in one of these.
const AZURE_HOST_SUFFIXES: [&str; 2] = [".openai.azure.com", ".cognitiveservices.azure.com"];

/// Whether `url`'s host is an Azure OpenAI resource (`*.openai.azure.com`, or the
/// `*.cognitiveservices.azure.com` of Azure AI Foundry resources): hosts use it to
/// pick this provider when none is named.
pub fn is_azure_host(url: &str) -> bool {
    let host = super::url_host(url);
    AZURE_HOST_SUFFIXES.iter().any(|s| host.ends_with(s))
}

/// The URL requests are POSTed to (see the module docs). The base is the resource
/// root (`https://RES.openai.azure.com`); a trailing `/openai` or `/openai/v1` is
/// taken off first, and a base that already ends in `/chat/completions` is used as it
/// is.
pub(super) fn endpoint_url(cfg: &AzureConfig) -> String {
    let base = cfg.base_url.trim().trim_end_matches('/');
    if base
        .split('?')
        .next()
        .unwrap_or(base)
        .ends_with("/chat/completions")
    {
        return base.to_owned();
    }
    let root = base
        .strip_suffix("/openai/v1")
        .or_else(|| base.strip_suffix("/openai"))
        .unwrap_or(base)
        .trim_end_matches('/');
    match cfg.api_version.as_deref().map(str::trim) {
        Some(version) if !version.is_empty() => format!(
            "{root}/openai/deployments/{}/chat/completions?api-version={}",
            encode_path(cfg.deployment.trim(), false),
            encode_path(version, false)
        ),
        _ => format!("{root}/openai/v1/chat/completions"),
    }
}

/// The OpenAI settings whose body Azure is sent: the deployment as the model.
pub(super) fn as_openai(cfg: &AzureConfig) -> OpenAiConfig {
    OpenAiConfig {
        base_url: cfg.base_url.clone(),
        model: cfg.deployment.clone(),
        detail: cfg.detail,
        prompt: cfg.prompt.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ImageDetail;

    fn cfg(base: &str, version: Option<&str>) -> AzureConfig {
        AzureConfig {
            base_url: base.to_owned(),
            deployment: "my-gpt4o".to_owned(),
            api_version: version.map(str::to_owned),
            detail: ImageDetail::Low,
            prompt: None,
        }
    }

    #[test]
    fn deployment_and_v1_paths() {
        assert_eq!(
            endpoint_url(&cfg("https://res.openai.azure.com", Some("2024-10-21"))),
            "https://res.openai.azure.com/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            endpoint_url(&cfg("https://res.openai.azure.com/openai/", Some(" 2025-01-01-preview "))),
            "https://res.openai.azure.com/openai/deployments/my-gpt4o/chat/completions?api-version=2025-01-01-preview"
        );
        for base in [
            "https://res.openai.azure.com",
            "https://res.openai.azure.com/",
            "https://res.openai.azure.com/openai/v1/",
        ] {
            assert_eq!(
                endpoint_url(&cfg(base, None)),
                "https://res.openai.azure.com/openai/v1/chat/completions",
                "{base}"
            );
        }
        assert_eq!(
            endpoint_url(&cfg("https://res.openai.azure.com", Some(""))),
            "https://res.openai.azure.com/openai/v1/chat/completions"
        );
        let full =
            "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=x";
        assert_eq!(endpoint_url(&cfg(full, Some("y"))), full);
        let mut odd = cfg("http://127.0.0.1:9", Some("2024-10-21"));
        odd.deployment = "a b/c".to_owned();
        assert_eq!(
            endpoint_url(&odd),
            "http://127.0.0.1:9/openai/deployments/a%20b%2Fc/chat/completions?api-version=2024-10-21"
        );
    }

    /// The request of the Azure docs' chat completions example: the deployment path,
    /// OpenAI's body with the deployment as the model, no key in it.
    #[test]
    fn requests_are_openai_bodies_at_azure_paths() {
        use crate::input::LabelSet;
        use crate::provider::Provider;
        let labels = LabelSet::from_labels(["cat", "dog"]);
        let provider = Provider::Azure(cfg("https://res.openai.azure.com", Some("2024-10-21")));
        let req = provider
            .request_template(&labels)
            .build("https://example.test/cat.png", 1, None);
        assert_eq!(
            req.url,
            "https://res.openai.azure.com/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
        );
        let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(body["model"], "my-gpt4o");
        assert_eq!(
            body["messages"][1]["content"][1]["image_url"],
            serde_json::json!({"url": "https://example.test/cat.png", "detail": "low"})
        );
        assert_eq!(
            body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"],
            serde_json::json!(["cat", "dog"])
        );
        assert!(req
            .headers
            .iter()
            .all(|(k, _)| k != "api-key" && k != "authorization"));
        assert_eq!(
            provider.credential_header("k-123"),
            ("api-key", "k-123".to_owned())
        );
    }

    /// Azure's documented answers: a normal one, and one whose output the content
    /// filter withheld (a refusal, not a broken answer).
    #[test]
    fn content_filtered_answers_are_refusals() {
        use crate::input::LabelSet;
        use crate::provider::{AnswerError, Provider};
        let labels = LabelSet::from_labels(["cat", "dog"]);
        let provider = Provider::Azure(cfg("https://res.openai.azure.com", None));
        let ok = r#"{"id": "chatcmpl-7R1nGnsXO8n4oi9UPz2f3UHdgAYMn", "object": "chat.completion",
            "created": 1686676106, "model": "gpt-4o-2024-08-06",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {
                "hate": {"filtered": false, "severity": "safe"}}}],
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "{\"label\":\"dog\"}"},
                "content_filter_results": {"hate": {"filtered": false, "severity": "safe"}}}],
            "usage": {"completion_tokens": 6, "prompt_tokens": 300, "total_tokens": 306}}"#;
        let answer = provider.parse_answer(ok, &labels).unwrap();
        assert_eq!(answer.label, 1);
        assert_eq!(answer.usage.unwrap().total_tokens, 306);
        let filtered = r#"{"id": "chatcmpl-x", "object": "chat.completion", "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "content_filter",
                "message": {"role": "assistant", "content": null},
                "content_filter_results": {"sexual": {"filtered": true, "severity": "high"}}}]}"#;
        assert!(matches!(
            provider.parse_answer(filtered, &labels),
            Err(AnswerError::Refusal(t)) if t.contains("content_filter")
        ));
    }

    #[test]
    fn azure_hosts_are_recognised() {
        for yes in [
            "https://res.openai.azure.com",
            "https://RES.OpenAI.Azure.com/openai/v1",
            "https://user@res.openai.azure.com:443/x",
            "res.openai.azure.com",
            "https://res.cognitiveservices.azure.com/",
        ] {
            assert!(is_azure_host(yes), "{yes}");
        }
        for no in [
            "https://api.openai.com/v1",
            "https://openai.azure.com.evil.test/",
            "https://evil.test/?x=.openai.azure.com",
            "http://127.0.0.1:8787/v1",
            "",
        ] {
            assert!(!is_azure_host(no), "{no}");
        }
    }
}
