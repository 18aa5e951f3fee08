//! `--ask-endpoint-limits`: the one request an estimate sends when asked, to
//! read the limits the endpoint states in its answer's headers. The core
//! builds the request (`shadow_core::estimate::limits`) and reads the answer
//! (`shadow_core::ratelimit::read_limits`);
//! this host sends it with the key and words what went wrong as a run would.
//! The key is never printed: every text the endpoint sends back is redacted.

use std::time::Duration;

use anyhow::{bail, Result};
use shadow_core::estimate::limits::{limits_request, NotAsked};
use shadow_core::estimate::EndpointLimits;
use shadow_core::http::TransportErrorKind;
use shadow_core::provider::Provider;
use shadow_core::ratelimit::{read_limits, LimitsError};
use shadow_core::redact::{url_for_display, Redactor};
use shadow_core::AbortReason;
use shadow_core::Millis;

use crate::transport::{classify, describe, read_capped};

/// What asking gave.
pub enum Asked {
    /// The limits the answer stated (maybe none).
    Limits(EndpointLimits),
    /// Nothing was sent: the provider states no limits in headers.
    NotAsked(NotAsked),
}

/// Sends the limits request to `provider`'s endpoint with `key` (from
/// `key_var`), waiting at most `timeout`.
pub async fn ask(
    provider: &Provider,
    key: Option<&str>,
    key_var: Option<&str>,
    timeout: Duration,
) -> Result<Asked> {
    let request = match limits_request(provider) {
        Ok(request) => request,
        Err(why) => return Ok(Asked::NotAsked(why)),
    };
    let mut redactor = Redactor::default();
    if let Some(key) = key {
        redactor.add(key);
    }
    redactor.add_url(&request.url);
    let shown = url_for_display(&request.url).into_owned();
    let flag = "--ask-endpoint-limits";
    let url = match reqwest::Url::parse(&request.url) {
        Ok(url) => url,
        Err(e) => bail!(
            "{flag}: the endpoint URL {shown:?} is not a valid URL ({e}): check --base-url / --endpoint / --deployment"
        ),
    };
    let client = crate::transport::client(1)?;
    let mut builder = client.post(url).timeout(timeout).body(request.body);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(key) = key {
        let (name, value) = provider.credential_header(key);
        let Ok(mut value) = reqwest::header::HeaderValue::from_str(&value) else {
            bail!(
                "{flag}: the API key in {} cannot be sent in the {name} header (it holds a character a header cannot)",
                key_var.unwrap_or("the environment")
            );
        };
        value.set_sensitive(true);
        builder = builder.header(name, value);
    }
    let unreachable = |kind: TransportErrorKind, message: String| {
        let message = redactor.redact(&message).into_owned();
        match kind {
            TransportErrorKind::Timeout => anyhow::anyhow!(
                "{flag}: no answer from {shown} within {} s (--timeout): {message}",
                timeout.as_secs_f64()
            ),
            TransportErrorKind::Connect => anyhow::anyhow!(
                "{flag}: cannot connect to {shown}: {message}. Check the endpoint URL (--base-url or --endpoint) and that the server is up"
            ),
            _ => anyhow::anyhow!("{flag}: the answer from {shown} broke off: {message}"),
        }
    };
    let response = match builder.send().await {
        Ok(r) => r,
        Err(e) => return Err(unreachable(classify(&e), describe(e))),
    };
    let response = read_capped(response)
        .await
        .map_err(|(kind, message)| unreachable(kind, message))?;
    match read_limits(provider, &response, Millis(wall_clock_ms())) {
        Ok(limits) => Ok(Asked::Limits(limits)),
        Err(LimitsError::Fatal(reason)) => {
            let said = redactor.redact(&reason.to_string()).into_owned();
            let fix = match reason {
                AbortReason::Unauthorized { .. } => format!(
                    "Check {} (or the key you gave) and that it may use this model and base URL",
                    key_var.unwrap_or("the API key")
                ),
                AbortReason::ModelNotFound { .. } => {
                    "Pass a model the endpoint serves with --model".into()
                }
                _ => "The run would stop on this too".into(),
            };
            bail!("{flag}: {shown}: {said}. {fix}")
        }
        Err(LimitsError::Status(status)) => {
            let said = redactor.redact(&status).into_owned();
            bail!(
                "{flag}: {shown}: the endpoint answered {said}, with no rate-limit header. Check the endpoint URL (--base-url), --provider and --model"
            )
        }
        Err(other) => bail!("{flag}: {shown}: {}", redactor.redact(&other.to_string())),
    }
}

/// Anthropic's resets are RFC 3339 times; only the limits are used, so the
/// wall clock here only turns them into waits nobody reads.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
