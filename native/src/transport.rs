//! One attempt of one item over HTTP: load the image, build the request with the
//! core's provider, add the key in the header the core names, send, read a capped body, and turn whatever
//! happened into the core's `Input`. The one place the run's HTTP client is built
//! and a capped answer read, for live and batch-API runs alike.

use std::sync::Arc;
use std::time::Duration;

use shadow_core::http::{HttpResponse, TransportErrorKind};
use shadow_core::input::Item;
use shadow_core::provider::RequestTemplate;
use shadow_core::{Input, SendOrder};

use crate::images::ImageLoader;

/// Largest answer read (of an attempt or a batch API's JSON call); beyond it the
/// call fails (and is retried).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What every attempt shares.
pub struct Transport {
    pub client: reqwest::Client,
    /// The provider's requests for this run's labels.
    pub requests: RequestTemplate,
    pub images: ImageLoader,
    /// Sent in the header the provider names (`RequestTemplate::credential_header`);
    /// never logged, never in an error.
    pub api_key: Option<String>,
    pub timeout: Duration,
    /// The provider's endpoint as the template writes it, and parsed once: parsing
    /// a URL per request is not free, and nearly every request goes there.
    pub endpoint: (String, reqwest::Url),
}

impl Transport {
    /// Performs `order` for `item` and says how it went.
    pub async fn attempt(self: Arc<Self>, order: SendOrder, item: Item) -> Input {
        let image = self.images.load(&item).await;
        self.attempt_with(order, item, image).await
    }

    /// `attempt` with the image already loaded (or failed to load).
    pub async fn attempt_with(
        self: Arc<Self>,
        order: SendOrder,
        item: Item,
        image: Result<String, String>,
    ) -> Input {
        let ticket = order.ticket;
        let image_url = match image {
            Ok(url) => url,
            Err(message) => return Input::ImageFailed { ticket, message },
        };
        let request = self.requests.build_for(
            &image_url,
            order.attempt,
            item.id.as_deref(),
            order.format,
            order.confidence,
        );
        drop(image_url);
        let url = if request.url == self.endpoint.0 {
            self.endpoint.1.clone()
        } else {
            match reqwest::Url::parse(&request.url) {
                Ok(url) => url,
                Err(e) => {
                    return Input::TransportFailed {
                        ticket,
                        kind: TransportErrorKind::Connect,
                        message: format!("the request URL is not valid: {e}"),
                    }
                }
            }
        };
        let method =
            reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut builder = self
            .client
            .request(method, url)
            .timeout(self.timeout)
            .body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(key) = &self.api_key {
            let (name, value) = self.requests.credential_header(key);
            // The key was checked at start (printable ASCII only), so this holds.
            let Ok(mut value) = reqwest::header::HeaderValue::from_str(&value) else {
                return Input::TransportFailed {
                    ticket,
                    kind: TransportErrorKind::Connect,
                    message: format!("the API key cannot be sent in the {name} header"),
                };
            };
            value.set_sensitive(true);
            builder = builder.header(name, value);
        }
        let failed = |e: reqwest::Error| Input::TransportFailed {
            ticket,
            kind: classify(&e),
            message: describe(e),
        };
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        match read_capped(response).await {
            Ok(response) => Input::Response { ticket, response },
            Err((kind, message)) => Input::TransportFailed {
                ticket,
                kind,
                message,
            },
        }
    }
}

/// The run's one HTTP client: to the endpoint, the batch API and remote images
/// alike. Each request sets its own timeout; up to `idle_per_host` connections
/// are kept for reuse.
pub fn client(idle_per_host: usize) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("shadow-batch/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(idle_per_host.max(1))
        .connect_timeout(Duration::from_secs(10))
        .build()
}

/// An answer read whole, up to [`MAX_BODY_BYTES`]: a larger one (or a body cut
/// off) is a failure of the kind the core tells apart, in words.
pub async fn read_capped(
    mut response: reqwest::Response,
) -> Result<HttpResponse, (TransportErrorKind, String)> {
    let status = response.status().as_u16();
    let headers = kept_headers(&response);
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err((
                        TransportErrorKind::Body,
                        format!(
                            "the answer is larger than {} MiB",
                            MAX_BODY_BYTES / (1024 * 1024)
                        ),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err((classify(&e), describe(e))),
        }
    }
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    })
}

/// The headers of an answer the core reads (names come lower-case from hyper).
pub fn kept_headers(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
        .iter()
        .filter(|(k, _)| shadow_core::ratelimit::RateLimitHeaders::reads(k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// What kind of transport failure `e` is, as the core tells them apart.
pub fn classify(e: &reqwest::Error) -> TransportErrorKind {
    if e.is_timeout() {
        TransportErrorKind::Timeout
    } else if e.is_connect() {
        TransportErrorKind::Connect
    } else if e.is_body() || e.is_decode() {
        TransportErrorKind::Body
    } else {
        TransportErrorKind::Reset
    }
}

/// The error and its causes, without the URL (a query string could carry a secret).
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
