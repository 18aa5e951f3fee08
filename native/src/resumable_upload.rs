//! Google's resumable upload protocol, as Gemini Batch Mode's input files take
//! it: a `start` call (the file's size and type in `x-goog-upload-header-*`,
//! its display name in the body) whose answer names, in `x-goog-upload-url`,
//! where to send the bytes; then one `upload, finalize` call with the whole
//! file, streamed from disk. The key goes to the upload URL only when it is on
//! the host the run was pointed at (scheme, host and port of the `start`
//! call's URL): an answer naming another host stops the upload.

use std::time::Duration;

use shadow_core::batch::{BatchInput, CallId};
use shadow_core::http::HttpResponse;

/// The origin (`scheme://host:port`) of `url`, for comparing two URLs' hosts.
fn origin(url: &reqwest::Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_string(),
        url.host_str().map(str::to_ascii_lowercase),
        url.port_or_known_default(),
    )
}

/// Whether the upload URL the provider answered is on the `start` call's host.
pub fn same_origin(start: &str, upload: &str) -> bool {
    match (reqwest::Url::parse(start), reqwest::Url::parse(upload)) {
        (Ok(a), Ok(b)) => origin(&a) == origin(&b),
        _ => false,
    }
}

/// Performs the upload of the file at `path` (`bytes` long): the answer to the
/// `finalize` call (or to a refused `start`), or why there is none.
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    client: &reqwest::Client,
    auth: Option<&super::batch_driver::Auth>,
    call: CallId,
    url: &str,
    start_headers: &[(String, String)],
    start_body: &str,
    file: tokio::fs::File,
    bytes: u64,
) -> BatchInput {
    let mut start = super::batch_driver::with_key(client.post(url), auth)
        .timeout(Duration::from_secs(120))
        .body(start_body.to_string());
    for (name, value) in start_headers {
        start = start.header(name, value);
    }
    let started = match start.send().await {
        Ok(r) => r,
        Err(e) => return super::batch_driver::failed(call, e),
    };
    if !started.status().is_success() {
        return super::batch_driver::read_body(call, started).await;
    }
    let target = started
        .headers()
        .get("x-goog-upload-url")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(target) = target.filter(|t| same_origin(url, t)) else {
        // Not where the key may go: the upload is refused here, as the
        // provider would refuse a bad one.
        let message = "the upload's start answer named no upload URL on the host the run was pointed at; the key is not sent elsewhere";
        return BatchInput::Answer {
            call,
            response: HttpResponse {
                status: 400,
                headers: Vec::new(),
                body: serde_json::json!({"error": {"code": 400, "message": message}}).to_string(),
            },
        };
    };
    let stream = super::batch_driver::file_chunks(file);
    let finalize = super::batch_driver::with_key(client.post(target), auth)
        .timeout(Duration::from_secs(3_600))
        .header("x-goog-upload-command", "upload, finalize")
        .header("x-goog-upload-offset", "0")
        .header(reqwest::header::CONTENT_LENGTH, bytes)
        .body(reqwest::Body::wrap_stream(stream));
    match finalize.send().await {
        Ok(r) => super::batch_driver::read_body(call, r).await,
        Err(e) => super::batch_driver::failed(call, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_goes_only_to_the_start_calls_host() {
        let start = "https://generativelanguage.googleapis.com/upload/v1beta/files";
        assert!(same_origin(
            start,
            "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=x&upload_protocol=resumable"
        ));
        assert!(same_origin(
            "http://127.0.0.1:8787/upload/v1beta/files",
            "http://127.0.0.1:8787/upload/v1beta/files?upload_id=1"
        ));
        for other in [
            "https://evil.test/upload?upload_id=x",
            "http://generativelanguage.googleapis.com/upload/v1beta/files",
            "https://generativelanguage.googleapis.com:8443/upload",
            "not a url",
        ] {
            assert!(!same_origin(start, other), "{other}");
        }
    }
}
