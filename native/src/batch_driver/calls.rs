//! The batch API's calls on the wire: a shard file sent as an upload (multipart,
//! or Google's resumable protocol) or streamed as a create body, and every other
//! JSON call performed, its answer (a download read line by line) handed back to
//! the loop as `BatchInput`.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use shadow_core::batch::{BatchInput, CallId, SubmitOrder, UploadOrder, UploadProtocol};
use shadow_core::http::{HttpRequest, HttpResponse, TransportErrorKind};
use tokio::sync::mpsc;

use super::{failed, read_body, with_key, Auth, Event};

/// Lines of a download handed to the core at a time.
const LINES_PER_INPUT: usize = 500;

/// A shard's file, open for sending, and its length when known; a failed call
/// when it cannot be read.
async fn open_shard(
    call: CallId,
    path: &Path,
) -> Result<(tokio::fs::File, Option<u64>), BatchInput> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| BatchInput::CallFailed {
            call,
            kind: TransportErrorKind::Body,
            message: format!("cannot read the shard file {}: {e}", path.display()),
        })?;
    let len = file.metadata().await.map(|m| m.len()).ok();
    Ok((file, len))
}

/// A shard's file to send: uploaded to the Files API (OpenAI), or the body of a
/// create call that takes the requests inline (Anthropic's Message Batches).
pub(super) enum ShardSend {
    Upload(UploadOrder),
    Submit(SubmitOrder),
}

impl ShardSend {
    pub(super) fn shard(&self) -> u32 {
        match self {
            ShardSend::Upload(order) => order.shard,
            ShardSend::Submit(order) => order.shard,
        }
    }

    fn call(&self) -> CallId {
        match self {
            ShardSend::Upload(order) => order.call,
            ShardSend::Submit(order) => order.call,
        }
    }

    fn url(&self) -> &str {
        match self {
            ShardSend::Upload(order) => &order.url,
            ShardSend::Submit(order) => &order.url,
        }
    }
}

/// Sends a shard's file, streamed from disk, with an hour to do it in.
pub(super) async fn send_shard_file(
    client: &reqwest::Client,
    auth: Option<&Auth>,
    send: ShardSend,
    path: &Path,
) -> BatchInput {
    let call = send.call();
    let (file, len) = match open_shard(call, path).await {
        Ok(opened) => opened,
        Err(failed) => return failed,
    };
    if let ShardSend::Upload(UploadOrder {
        protocol:
            UploadProtocol::Resumable {
                start_headers,
                start_body,
            },
        url,
        bytes,
        ..
    }) = &send
    {
        return crate::resumable_upload::upload(
            client,
            auth,
            call,
            url,
            start_headers,
            start_body,
            file,
            len.unwrap_or(*bytes),
        )
        .await;
    }
    let request = with_key(client.post(send.url()), auth).timeout(Duration::from_secs(3_600));
    let request = match send {
        ShardSend::Upload(order) => upload(request, order, file, len),
        ShardSend::Submit(order) => submit(request, order, file, len, path),
    };
    let sent = match request {
        Ok(request) => request.send().await,
        Err(failed) => return failed,
    };
    match sent {
        Ok(response) => read_body(call, response).await,
        Err(e) => failed(call, e),
    }
}

/// The upload of a shard's file (`len` bytes, when known) as
/// `multipart/form-data`.
/// A file read as a stream of 256 kB chunks, for a request body.
pub(crate) fn file_chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
    futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    })
}

fn upload(
    request: reqwest::RequestBuilder,
    order: UploadOrder,
    file: tokio::fs::File,
    len: Option<u64>,
) -> Result<reqwest::RequestBuilder, BatchInput> {
    let stream = file_chunks(file);
    let len = len.unwrap_or(order.bytes);
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
            .file_name(order.file_name.clone());
    let part = part
        .mime_str("application/jsonl")
        .map_err(|e| failed(order.call, e))?;
    let form = reqwest::multipart::Form::new()
        .text("purpose", "batch")
        .part("file", part);
    Ok(request.multipart(form))
}

/// The create call of a batch API that takes the requests inline: the shard's
/// file (`len` bytes, when known, from `path`) as the body, framed as the order
/// says (`{"requests":[` line `,` line ... `]}`).
fn submit(
    request: reqwest::RequestBuilder,
    order: SubmitOrder,
    file: tokio::fs::File,
    len: Option<u64>,
    path: &Path,
) -> Result<reqwest::RequestBuilder, BatchInput> {
    let file_len = len.unwrap_or(0);
    if file_len != order.bytes {
        return Err(BatchInput::CallFailed {
            call: order.call,
            kind: TransportErrorKind::Body,
            message: format!(
                "the shard file {} holds {file_len} bytes, not {}",
                path.display(),
                order.bytes
            ),
        });
    }
    let mut request = request.header(reqwest::header::CONTENT_LENGTH, order.body_len());
    for (name, value) in &order.headers {
        request = request.header(name, value);
    }
    if order.rekeyed {
        // Each line is rewritten (Gemini's inline requests): the shard is
        // small (the core sends only one under 20 MB so), read whole.
        drop(file);
        let body = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| order.body(&text))
            .map_err(|message| BatchInput::CallFailed {
                call: order.call,
                kind: TransportErrorKind::Body,
                message: format!("{}: {message}", path.display()),
            })?;
        return Ok(request.body(body));
    }
    let body = framed_stream(file, file_len, order.prefix, order.separator, order.suffix);
    Ok(request.body(reqwest::Body::wrap_stream(body)))
}

/// `prefix`, the `len` bytes of `file` with `separator` after every `\n` but
/// the last, then `suffix`.
fn framed_stream(
    file: tokio::fs::File,
    len: u64,
    prefix: String,
    separator: &'static str,
    suffix: &'static str,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
    enum Part {
        Prefix,
        Lines,
        End,
    }
    futures_util::stream::unfold((file, len, Part::Prefix), move |(mut file, left, part)| {
        let prefix = prefix.clone();
        async move {
            use tokio::io::AsyncReadExt;
            match part {
                Part::Prefix => Some((Ok(prefix.as_bytes().to_vec()), (file, left, Part::Lines))),
                Part::Lines if left == 0 => {
                    Some((Ok(suffix.as_bytes().to_vec()), (file, 0, Part::End)))
                }
                Part::Lines => {
                    let mut buf = vec![0u8; 256 * 1024];
                    match file.read(&mut buf).await {
                        Ok(0) => Some((
                            Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "the shard file ended early",
                            )),
                            (file, 0, Part::End),
                        )),
                        Ok(n) => {
                            let n = n.min(usize::try_from(left).unwrap_or(usize::MAX));
                            let left = left - n as u64;
                            let mut out = Vec::with_capacity(n + n / 64);
                            for (i, &b) in buf[..n].iter().enumerate() {
                                out.push(b);
                                if b == b'\n' && !(left == 0 && i + 1 == n) {
                                    out.extend_from_slice(separator.as_bytes());
                                }
                            }
                            Some((Ok(out), (file, left, Part::Lines)))
                        }
                        Err(e) => Some((Err(e), (file, 0, Part::End))),
                    }
                }
                Part::End => None,
            }
        }
    })
}

/// Performs a JSON call; a download's 2xx body goes back line by line.
pub(super) async fn perform_call(
    client: &reqwest::Client,
    auth: Option<&Auth>,
    call: CallId,
    request: HttpRequest,
    lines: bool,
    tx: &mpsc::UnboundedSender<Event>,
) {
    let send = |input: BatchInput| {
        let _ = tx.send(Event::Input(input));
    };
    let url = match reqwest::Url::parse(&request.url) {
        Ok(url) => url,
        Err(e) => {
            return send(BatchInput::CallFailed {
                call,
                kind: TransportErrorKind::Connect,
                message: format!("the batch API URL is not valid: {e}"),
            })
        }
    };
    let method =
        reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut builder = with_key(client.request(method, url), auth);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if !request.body.is_empty() || request.method == "POST" {
        builder = builder.body(request.body);
    }
    // A download may be large; a JSON call should be quick.
    builder = builder.timeout(Duration::from_secs(if lines { 3_600 } else { 120 }));
    let mut response = match builder.send().await {
        Ok(r) => r,
        Err(e) => return send(failed(call, e)),
    };
    if !lines || !response.status().is_success() {
        return send(read_body(call, response).await);
    }
    let status = response.status().as_u16();
    let mut pending: Vec<u8> = Vec::new();
    let mut batch: Vec<String> = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                pending.extend_from_slice(&chunk);
                let mut start = 0;
                while let Some(p) = pending[start..].iter().position(|&b| b == b'\n') {
                    let line = &pending[start..start + p];
                    batch.push(String::from_utf8_lossy(line).into_owned());
                    start += p + 1;
                }
                pending.drain(..start);
                if !batch.is_empty() {
                    // Lines reach the core as they arrive: a kill mid-download
                    // keeps the results already journaled.
                    for lines in batch.chunks(LINES_PER_INPUT) {
                        send(BatchInput::Lines {
                            call,
                            lines: lines.to_vec(),
                        });
                    }
                    batch.clear();
                }
            }
            Ok(None) => break,
            Err(e) => return send(failed(call, e)),
        }
    }
    if !pending.is_empty() {
        send(BatchInput::Lines {
            call,
            lines: vec![String::from_utf8_lossy(&pending).into_owned()],
        });
    }
    send(BatchInput::Answer {
        call,
        response: HttpResponse {
            status,
            headers: Vec::new(),
            body: String::new(),
        },
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// The create body of a shard is its lines joined into one JSON array,
    /// however the file is cut into reads, and as long as the order says.
    #[tokio::test]
    async fn a_shard_file_streams_as_a_framed_json_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard.jsonl");
        let lines: Vec<String> = (0..3000)
            .map(|n| {
                format!(
                    "{{\"custom_id\":\"R-r{n}-a1\",\"params\":{{\"x\":\"{}\"}}}}\n",
                    "y".repeat(n % 300)
                )
            })
            .collect();
        let text = lines.concat();
        std::fs::write(&path, &text).unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        let chunks: Vec<Vec<u8>> =
            framed_stream(file, text.len() as u64, "{\"requests\":[".into(), ",", "]}")
                .map(|c| c.unwrap())
                .collect()
                .await;
        assert!(chunks.len() > 3, "streamed in pieces");
        let body: Vec<u8> = chunks.concat();
        let order = SubmitOrder {
            call: CallId(0),
            shard: 1,
            url: String::new(),
            headers: Vec::new(),
            prefix: "{\"requests\":[".to_string(),
            separator: ",",
            suffix: "]}",
            lines: lines.len(),
            bytes: text.len() as u64,
            rekeyed: false,
        };
        assert_eq!(order.body(&text).unwrap().into_bytes(), body);
        assert_eq!(body.len() as u64, order.body_len());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let requests = v["requests"].as_array().unwrap();
        assert_eq!(requests.len(), 3000);
        assert_eq!(requests[2999]["custom_id"], "R-r2999-a1");

        // A file shorter than said is an error, not a short body.
        let file = tokio::fs::File::open(&path).await.unwrap();
        let results: Vec<std::io::Result<Vec<u8>>> =
            framed_stream(file, text.len() as u64 + 10, "[".into(), ",", "]")
                .collect()
                .await;
        assert!(results.last().unwrap().is_err());
    }
}
