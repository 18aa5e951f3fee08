//! The HTTP exchange as plain data: what the host must send, and what came back.

/// A request for the host to perform. The API key is *not* here: the host adds it at
/// the last moment, in the header
/// [`crate::provider::RequestTemplate::credential_header`] names, so the key is never
/// kept by the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// Always `POST` today; kept as data so hosts never assume.
    pub method: &'static str,
    /// Absolute URL.
    pub url: String,
    /// Headers to set, lower-case names (`content-type`, `x-stainless-retry-count`, ...).
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: String,
}

/// What the endpoint answered (any status). Hosts pass every header they got, or at
/// least `retry-after`, `retry-after-ms`, `x-should-retry` and `x-ratelimit-*`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Header (name, value) pairs; names are matched case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The body, decoded as UTF-8 (lossily) and possibly capped by the host.
    pub body: String,
}

impl HttpResponse {
    /// First value of header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// Why no HTTP answer came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The request took longer than the configured timeout.
    Timeout,
    /// The connection could not be made (refused, DNS, TLS).
    Connect,
    /// The connection broke while sending or receiving.
    Reset,
    /// The response body could not be read (too large, cut short, not text).
    Body,
}
