//! Whether a page in a browser may call an endpoint (CORS), decided from the
//! provider and the endpoint's host.

use serde::{Deserialize, Serialize};

use super::{is_azure_host, Provider};

/// The host of `url`, lower-case, without userinfo, port or a trailing dot
/// (`https://user@API.example.com.:443/v1` -> `api.example.com`).
pub(crate) fn url_host(url: &str) -> String {
    let url = url.trim();
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or(after_scheme);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if host_port.starts_with('[') {
        // An IPv6 literal: its port follows the `]`.
        host_port.split_inclusive(']').next().unwrap_or(host_port)
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The public APIs' hosts, for [`Provider::browser_access`].
const OPENAI_HOST: &str = "api.openai.com";
const ANTHROPIC_HOST: &str = "api.anthropic.com";

/// Whether `url` is on one of Google's API hosts (`*.googleapis.com`), whose CORS
/// preflight allows only the headers Google's own clients send.
pub(super) fn is_google_host(url: &str) -> bool {
    let host = url_host(url);
    host == "googleapis.com" || host.ends_with(".googleapis.com")
}

/// Whether a page in a browser may call an endpoint itself, as far as is known. A
/// browser sends a cross-origin request only when the endpoint allows it: it answers
/// the CORS preflight (`OPTIONS`) for the request's method and headers with
/// `Access-Control-Allow-*`; otherwise `fetch` fails without an answer, as it does
/// when nothing listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Cors {
    /// The provider's public API answers browser calls with this run's requests
    /// (with [`BrowserAccess::headers`] added): OpenAI's `api.openai.com`,
    /// Anthropic's `api.anthropic.com`, Gemini's `generativelanguage.googleapis.com`.
    Allowed,
    /// The provider's public API does not answer browser calls: Azure OpenAI
    /// resources (`*.openai.azure.com`, `*.cognitiveservices.azure.com`). Run from the
    /// native host, or through a proxy that adds CORS.
    Refused,
    /// Another server (a local server, a proxy, the built-in mock, the generic JSON
    /// endpoint): it answers browser calls only if it allows them itself.
    Unknown,
}

/// What a browser host needs to know before it calls an endpoint
/// ([`Provider::browser_access`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrowserAccess {
    /// Whether the endpoint answers a page's calls.
    pub cors: Cors,
    /// Headers a browser adds to every request, besides the request's own and the
    /// credential: `anthropic-dangerous-direct-browser-access: true` for Anthropic,
    /// whose API refuses a call from a page without it (401 "CORS requests must set
    /// 'anthropic-dangerous-direct-browser-access' header"). A native host sends
    /// none of them.
    pub headers: Vec<(String, String)>,
    /// The endpoint's host, e.g. `api.anthropic.com`, for the host's words.
    pub host: String,
}

impl Provider {
    /// Whether a page in a browser may call this endpoint, and what it must add to
    /// each request ([`BrowserAccess`]). Pure: decided from the provider and the
    /// endpoint's host, as these APIs are known to behave:
    ///
    /// - OpenAI's API answers CORS preflights for `authorization`, `content-type` and
    ///   the `x-stainless-*` headers its own browser SDK sends.
    /// - Anthropic's API answers them when the request carries
    ///   `anthropic-dangerous-direct-browser-access: true`, which its TypeScript SDK
    ///   sends with `dangerouslyAllowBrowser` (beside `x-stainless-retry-count`);
    ///   without it, a call from a page is refused with a 401.
    /// - Gemini's API (`generativelanguage.googleapis.com`) answers them for
    ///   `content-type`, `x-goog-api-key`, `x-goog-api-client` and `authorization`
    ///   only: a request with another header (`api-revision` in googleapis/js-genai
    ///   issue 1723) gets a 403 preflight without `Access-Control-Allow-Origin`. So
    ///   requests to a Google host carry no `x-stainless-retry-count`
    ///   ([`RequestTemplate::build_as`](super::RequestTemplate::build_as)), in every host alike.
    /// - Azure OpenAI resources do not answer them (browser clients report CORS
    ///   errors and route Azure through a server, e.g. lobehub/lobehub issue 2487):
    ///   [`Cors::Refused`].
    ///
    /// Any other host (a local server, a proxy, the mock) is [`Cors::Unknown`]:
    /// the same headers are added, for a proxy that forwards them.
    pub fn browser_access(&self) -> BrowserAccess {
        let url = self.endpoint_url();
        let host = url_host(&url);
        let known = |public: bool, yes: Cors| if public { yes } else { Cors::Unknown };
        let cors = match self {
            Provider::OpenAi(_) => known(host == OPENAI_HOST, Cors::Allowed),
            Provider::Anthropic(_) => known(host == ANTHROPIC_HOST, Cors::Allowed),
            Provider::Gemini(_) => known(is_google_host(&url), Cors::Allowed),
            Provider::Azure(_) => known(is_azure_host(&url), Cors::Refused),
            Provider::HttpJson(_) => Cors::Unknown,
        };
        let headers = match self {
            Provider::Anthropic(_) => vec![(
                "anthropic-dangerous-direct-browser-access".to_owned(),
                "true".to_owned(),
            )],
            _ => Vec::new(),
        };
        BrowserAccess {
            cors,
            headers,
            host,
        }
    }
}
