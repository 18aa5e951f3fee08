//! Anthropic's Message Batches, as the mock serves them: `POST
//! /v1/messages/batches` (the requests inline), `GET /v1/messages/batches`
//! (newest first, `limit`, `after_id`, `before_id`), `GET
//! /v1/messages/batches/{id}`, `POST /v1/messages/batches/{id}/cancel`, `GET
//! /v1/messages/batches/{id}/results`. Every call needs the `x-api-key` the mock
//! requires (if any) and `anthropic-version`.
//!
//! A batch is `in_progress` for [`batch_ms`](MockConfig::batch_ms) (its
//! `request_counts` moving from `processing` to `succeeded`), then `ended`. Each
//! request is answered by the same pure function as a live `POST /v1/messages`
//! ([`decide`]), the attempt read from a `custom_id` ending in `-a{attempt}`, so
//! a batch run and a live run of the same CSV get the same answers: an injected
//! server fault becomes an `errored` result carrying the live route's
//! `overloaded_error`, a request the mock cannot read an `errored`
//! `invalid_request_error`. Results come out of request order.
//!
//! Faults, as for the OpenAI Batch API: [`batch_expire`](MockConfig::batch_expire)
//! makes the first batches end with every other request `expired`;
//! [`batch_fail`](MockConfig::batch_fail) refuses the next create calls with a
//! 400 `invalid_request_error` (Anthropic has no batch status `failed`: a batch
//! whose requests do not validate is refused when it is created), creating
//! nothing; a cancelled batch is `canceling` for a moment, then `ended` with the
//! requests its time did not reach `canceled`.
//! [`batch_create_delay_ms`](MockConfig::batch_create_delay_ms) answers a create
//! late (the batch exists from the start of the wait) and
//! [`batch_download_delay_ms`](MockConfig::batch_download_delay_ms) serves the
//! results 10 lines at a time. Times are the wall clock's, in RFC 3339, as a
//! client finding its batch by creation time needs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::anthropic::{error_body, forced_tool, message_body, parse_request};
use crate::batch::{decide_batched, stream_lines};
use crate::batch_api::{json_response, key_refusal, BatchApi, BatchCall, StoredBatch};
use crate::dialect::Dialect;
use crate::server::MockState;
use crate::stats::Counters;

/// How long cancelling takes.
const CANCELLING: Duration = Duration::from_millis(200);

/// The message batches the mock holds.
#[derive(Default)]
pub(crate) struct MessageBatchStore {
    batches: Vec<MessageBatch>,
    /// Create calls answered so far (refused ones included): the faults count
    /// them.
    create_calls: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Complete,
    Expire,
}

pub(crate) struct MessageBatch {
    id: String,
    created: Instant,
    /// Wall clock, ms since the Unix epoch.
    created_at: u64,
    fate: Fate,
    cancelled: Option<(Instant, u64)>,
    /// (custom_id, params) of each request, in order.
    requests: Arc<Vec<(String, Vec<u8>)>>,
    /// Once ended: the results file, and the counts by type.
    results: Option<(Arc<Vec<u8>>, Counts)>,
}

impl StoredBatch for MessageBatch {
    fn id(&self) -> &str {
        &self.id
    }

    fn cancel(&mut self) {
        if self.results.is_none() {
            self.cancelled
                .get_or_insert_with(|| (Instant::now(), wall_ms()));
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Counts {
    succeeded: u64,
    errored: u64,
    canceled: u64,
    expired: u64,
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn rfc3339(ms: u64) -> String {
    shadow_core::Millis(ms).to_iso8601()
}

fn invalid(message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &error_body("invalid_request_error", message),
    )
}

fn not_found(id: &str) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &error_body(
            "not_found_error",
            &format!("No message batch with id {id:?}"),
        ),
    )
}

/// Anthropic's Message Batches under `/v1/messages/batches`.
pub(crate) struct MessageBatches;

impl BatchApi for MessageBatches {
    type Store = MessageBatchStore;
    type Batch = MessageBatch;

    fn store(state: &MockState) -> &Mutex<MessageBatchStore> {
        &state.inner.messages
    }

    /// The key and the version header, as every Message Batches call needs them.
    fn refusal(state: &MockState, headers: &HeaderMap) -> Option<Response> {
        key_refusal(state, headers, Dialect::Anthropic, || {
            Dialect::Anthropic.unauthorized()
        })
        .or_else(|| {
            (!headers.contains_key("anthropic-version"))
                .then(|| invalid("anthropic-version: header is required"))
        })
    }

    fn not_found(id: &str) -> Response {
        not_found(id)
    }

    fn batches(store: &mut MessageBatchStore) -> &mut [MessageBatch] {
        &mut store.batches
    }

    fn object(call: &BatchCall<Self>, store: &mut MessageBatchStore, id: &str) -> Value {
        batch_object(&call.state, store, id, &call.headers)
    }
}

/// Whether a custom id is as Anthropic takes them: 1 to 64 of `[A-Za-z0-9_-]`.
fn valid_custom_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `POST /v1/messages/batches`.
pub(crate) async fn create(call: BatchCall<MessageBatches>, body: Bytes) -> Response {
    let (state, headers) = (&call.state, &call.headers);
    #[derive(Deserialize)]
    struct Request {
        custom_id: String,
        params: Box<serde_json::value::RawValue>,
    }
    #[derive(Deserialize)]
    struct Body {
        requests: Vec<Request>,
    }
    let parsed: Body = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return invalid(&format!(
                "There was an issue with the JSON body of your request: {e}"
            ))
        }
    };
    if parsed.requests.is_empty() || parsed.requests.len() > 100_000 {
        return invalid("requests: a batch holds from 1 to 100,000 requests");
    }
    let mut seen = std::collections::HashSet::new();
    for r in &parsed.requests {
        if !valid_custom_id(&r.custom_id) {
            return invalid(&format!(
                "requests: custom_id {:?} must be 1 to 64 letters, digits, '-' or '_'",
                r.custom_id
            ));
        }
        if !seen.insert(r.custom_id.as_str()) {
            return invalid(&format!(
                "requests: custom_id {:?} is not unique",
                r.custom_id
            ));
        }
    }
    let inner = &state.inner;
    let cfg = &inner.cfg;
    let id = {
        let mut store = call.store();
        store.create_calls += 1;
        let n = store.create_calls;
        if n > cfg.batch_expire && n <= cfg.batch_expire + cfg.batch_fail {
            return invalid(
                "requests.0.params: the mock was told to refuse this batch's requests \
                 (--batch-fail)",
            );
        }
        let fate = if n <= cfg.batch_expire {
            Fate::Expire
        } else {
            Fate::Complete
        };
        Counters::bump(&inner.counters.batch_creates);
        let id = format!("msgbatch_mock{:06}", store.batches.len() + 1);
        let requests = parsed
            .requests
            .into_iter()
            .map(|r| (r.custom_id, r.params.get().as_bytes().to_vec()))
            .collect();
        store.batches.push(MessageBatch {
            id: id.clone(),
            created: Instant::now(),
            created_at: wall_ms(),
            fate,
            cancelled: None,
            requests: Arc::new(requests),
            results: None,
        });
        id
    };
    let delay = cfg.batch_create_delay_ms;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let mut store = call.store();
    let object = batch_object(state, &mut store, &id, headers);
    json_response(StatusCode::OK, &object)
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<usize>,
    after_id: Option<String>,
    before_id: Option<String>,
}

/// `GET /v1/messages/batches`: newest first.
pub(crate) async fn list(call: BatchCall<MessageBatches>, Query(q): Query<ListQuery>) -> Response {
    let (state, headers) = (&call.state, &call.headers);
    Counters::bump(&state.inner.counters.batch_lists);
    let mut store = call.store();
    let ids: Vec<String> = store.batches.iter().rev().map(|b| b.id.clone()).collect();
    let limit = q.limit.unwrap_or(20).clamp(1, 1000);
    let position = |id: &str| ids.iter().position(|i| i == id);
    let (start, end) = match (&q.after_id, &q.before_id) {
        (Some(after), _) => {
            let start = position(after).map_or(ids.len(), |p| p + 1);
            (start, (start + limit).min(ids.len()))
        }
        (None, Some(before)) => {
            let end = position(before).unwrap_or(0);
            (end.saturating_sub(limit), end)
        }
        (None, None) => (0, limit.min(ids.len())),
    };
    let page: Vec<String> = ids[start..end].to_vec();
    let has_more = if q.before_id.is_some() && q.after_id.is_none() {
        start > 0
    } else {
        end < ids.len()
    };
    let data: Vec<Value> = page
        .iter()
        .map(|id| batch_object(state, &mut store, id, headers))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "data": data, "has_more": has_more,
            "first_id": page.first(), "last_id": page.last(),
        }),
    )
}

/// `GET /v1/messages/batches/{id}/results`: JSONL, once the batch has ended.
pub(crate) async fn results(call: BatchCall<MessageBatches>, Path(id): Path<String>) -> Response {
    let (state, headers) = (&call.state, &call.headers);
    let content = {
        let mut store = call.store();
        if !store.batches.iter().any(|b| b.id == id) {
            return not_found(&id);
        }
        // Brings its status up to now (and writes its results when it has ended).
        let object = batch_object(state, &mut store, &id, headers);
        let b = store.batches.iter().find(|b| b.id == id).expect("found");
        match &b.results {
            Some((content, _)) => content.clone(),
            None => {
                return invalid(&format!(
                    "Message batch {id} has not ended: its processing_status is {}",
                    object["processing_status"]
                ))
            }
        }
    };
    Counters::bump(&state.inner.counters.batch_downloads);
    stream_lines(content, state.inner.cfg.batch_download_delay_ms)
}

/// The batch object of `id` now; writes its results when it has ended.
fn batch_object(
    state: &MockState,
    store: &mut MessageBatchStore,
    id: &str,
    headers: &HeaderMap,
) -> Value {
    let total = Duration::from_millis(state.inner.cfg.batch_ms);
    let i = store
        .batches
        .iter()
        .position(|b| b.id == id)
        .expect("a known batch");
    let (elapsed, cancelled, lines) = {
        let b = &store.batches[i];
        (b.created.elapsed(), b.cancelled, b.requests.len() as u64)
    };
    let ended = match cancelled {
        Some((at, _)) => at.elapsed() >= CANCELLING || elapsed >= total,
        None => elapsed >= total,
    };
    if ended && store.batches[i].results.is_none() {
        let share = match cancelled {
            Some((at, _)) => {
                let ran = at.duration_since(store.batches[i].created);
                ran.as_secs_f64() / total.as_secs_f64().max(1e-9)
            }
            None => 1.0,
        };
        let results = write_results(state, &store.batches[i], share);
        store.batches[i].results = Some(results);
    }
    let b = &store.batches[i];
    let status = match (&b.results, cancelled) {
        (Some(_), _) => "ended",
        (None, Some(_)) => "canceling",
        (None, None) => "in_progress",
    };
    let counts = match &b.results {
        Some((_, c)) => json!({"processing": 0, "succeeded": c.succeeded, "errored": c.errored,
            "canceled": c.canceled, "expired": c.expired}),
        None => {
            let done =
                ((lines as f64) * elapsed.as_secs_f64() / total.as_secs_f64().max(1e-9)) as u64;
            let done = done.min(lines);
            json!({"processing": lines - done, "succeeded": done, "errored": 0,
                "canceled": 0, "expired": 0})
        }
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let ended_at = b
        .results
        .as_ref()
        .map(|_| rfc3339(b.created_at + elapsed.min(total).as_millis() as u64));
    json!({
        "id": b.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": counts,
        "ended_at": ended_at,
        "created_at": rfc3339(b.created_at),
        "expires_at": rfc3339(b.created_at + 86_400_000),
        "archived_at": null,
        "cancel_initiated_at": b.cancelled.map(|(_, at)| rfc3339(at)),
        "results_url": b.results.as_ref().map(|_| format!(
            "http://{host}/v1/messages/batches/{}/results", b.id
        )),
    })
}

/// Answers every request of `b` (those within `share` of it when it was cut
/// short) into a results file, out of order.
fn write_results(state: &MockState, b: &MessageBatch, share: f64) -> (Arc<Vec<u8>>, Counts) {
    let inner = &state.inner;
    let cfg = &inner.cfg;
    let ran_until = ((b.requests.len() as f64) * share.clamp(0.0, 1.0)).round() as usize;
    let mut counts = Counts::default();
    let mut lines: Vec<(u64, String)> = Vec::new();
    for (n, (custom_id, params)) in b.requests.iter().enumerate() {
        let ran = match b.fate {
            Fate::Expire => n % 2 == 0,
            Fate::Complete => n < ran_until,
        };
        let result = if !ran {
            if b.fate == Fate::Expire {
                counts.expired += 1;
                json!({"type": "expired"})
            } else {
                counts.canceled += 1;
                json!({"type": "canceled"})
            }
        } else {
            Counters::bump(&inner.counters.batch_lines);
            match parse_request(params) {
                Ok(req) => {
                    let d = decide_batched(inner, &req, custom_id);
                    if d.server_error {
                        counts.errored += 1;
                        json!({"type": "errored", "error": Dialect::Anthropic.server_error().1})
                    } else {
                        counts.succeeded += 1;
                        json!({"type": "succeeded",
                            "message": message_body(cfg, &req, &d, &forced_tool(params))})
                    }
                }
                Err(message) => {
                    Counters::bump(&inner.counters.bad_requests);
                    counts.errored += 1;
                    json!({"type": "errored",
                        "error": error_body("invalid_request_error", &message)})
                }
            }
        };
        let order = crate::answers::order_key(cfg.seed, custom_id);
        lines.push((
            order,
            json!({"custom_id": custom_id, "result": result}).to_string(),
        ));
    }
    lines.sort_unstable_by_key(|(order, _)| *order);
    let mut content = Vec::new();
    for (_, l) in lines {
        content.extend_from_slice(l.as_bytes());
        content.push(b'\n');
    }
    (Arc::new(content), counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{image, LABELS};
    use crate::{MockConfig, MockServer};
    use shadow_core::input::LabelSet;
    use shadow_core::provider::{AnthropicConfig, Provider};

    fn cfg() -> MockConfig {
        MockConfig {
            port: 0,
            latency_ms: 0,
            error_rate: 0.3,
            batch_ms: 300,
            ..MockConfig::default()
        }
    }

    /// The Messages body shadow-batch sends for image `i`.
    fn params(i: usize, attempt: u32) -> String {
        let provider = Provider::Anthropic(AnthropicConfig {
            base_url: "http://x".into(),
            model: "claude-mock".into(),
            prompt: None,
        });
        provider
            .request_template(&LabelSet::from_labels(LABELS))
            .build(&image(i), attempt, None)
            .body
    }

    fn create_body(n: usize) -> String {
        let requests: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"custom_id":"RUN-r{i}-a1","params":{}}}"#, params(i, 1)))
            .collect();
        format!(r#"{{"requests":[{}]}}"#, requests.join(",\n"))
    }

    struct Client {
        http: reqwest::Client,
        root: String,
        key: Option<&'static str>,
    }

    impl Client {
        fn new(srv: &MockServer) -> Client {
            Client {
                http: reqwest::Client::builder().no_proxy().build().unwrap(),
                root: format!("http://{}", srv.addr),
                key: None,
            }
        }

        async fn call(&self, method: &str, path: &str, body: Option<String>) -> (u16, String) {
            let url = format!("{}{path}", self.root);
            let mut rq = match method {
                "POST" => self.http.post(url),
                _ => self.http.get(url),
            }
            .header("anthropic-version", "2023-06-01");
            if let Some(key) = self.key {
                rq = rq.header("x-api-key", key);
            }
            if let Some(body) = body {
                rq = rq.header("content-type", "application/json").body(body);
            }
            let r = rq.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }

        async fn json(&self, method: &str, path: &str, body: Option<String>) -> Value {
            let (status, text) = self.call(method, path, body).await;
            assert_eq!(status, 200, "{text}");
            serde_json::from_str(&text).unwrap()
        }

        /// Polls until the batch has ended.
        async fn ended(&self, id: &str) -> Value {
            for _ in 0..100 {
                let b = self
                    .json("GET", &format!("/v1/messages/batches/{id}"), None)
                    .await;
                if b["processing_status"] == "ended" {
                    return b;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("batch {id} did not end");
        }
    }

    #[tokio::test]
    async fn a_batch_answers_each_request_as_the_live_route_does_out_of_order() {
        let srv = MockServer::spawn(cfg(), None).await.unwrap();
        let c = Client::new(&srv);
        let created = c
            .json("POST", "/v1/messages/batches", Some(create_body(20)))
            .await;
        let id = created["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("msgbatch_"));
        assert_eq!(created["type"], "message_batch");
        assert_eq!(created["processing_status"], "in_progress");
        assert_eq!(created["request_counts"]["processing"], 20);
        assert!(
            shadow_core::time::parse_rfc3339(created["created_at"].as_str().unwrap()).is_some()
        );
        // Results before the end: refused.
        let (status, _) = c
            .call("GET", &format!("/v1/messages/batches/{id}/results"), None)
            .await;
        assert_eq!(status, 400);
        let ended = c.ended(&id).await;
        let counts = &ended["request_counts"];
        assert_eq!(
            counts["succeeded"].as_u64().unwrap() + counts["errored"].as_u64().unwrap(),
            20
        );
        assert!(
            counts["errored"].as_u64().unwrap() > 0,
            "an error rate of 0.3"
        );
        let url = ended["results_url"].as_str().unwrap();
        assert!(url.ends_with(&format!("/v1/messages/batches/{id}/results")));
        let (status, text) = c
            .call("GET", &format!("/v1/messages/batches/{id}/results"), None)
            .await;
        assert_eq!(status, 200);
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 20);
        let order: Vec<&str> = lines
            .iter()
            .map(|l| l["custom_id"].as_str().unwrap())
            .collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|id| id[5..id.len() - 3].parse::<usize>().unwrap());
        assert_ne!(order, sorted, "out of request order");
        // Each result is what the live route answers to the same request.
        for line in &lines {
            let custom_id = line["custom_id"].as_str().unwrap();
            let i: usize = custom_id[5..custom_id.len() - 3].parse().unwrap();
            let live = c
                .http
                .post(format!("{}/v1/messages", c.root))
                .header("anthropic-version", "2023-06-01")
                .header("x-stainless-retry-count", "0")
                .body(params(i, 1))
                .send()
                .await
                .unwrap();
            let status = live.status().as_u16();
            let body: Value = serde_json::from_str(&live.text().await.unwrap()).unwrap();
            match line["result"]["type"].as_str().unwrap() {
                "succeeded" => {
                    assert_eq!(status, 200);
                    assert_eq!(line["result"]["message"], body, "{custom_id}");
                }
                "errored" => {
                    assert_eq!(status, 529);
                    assert_eq!(line["result"]["error"], body, "{custom_id}");
                }
                other => panic!("{other}"),
            }
        }
        let stats = srv.stats();
        assert_eq!((stats.batch_creates, stats.batch_lines), (1, 20));
        assert_eq!(stats.batch_downloads, 1);
    }

    #[tokio::test]
    async fn faults_keys_versions_lists_and_cancel() {
        let key = "sk-ant-mock-key";
        let srv = MockServer::spawn(
            MockConfig {
                batch_expire: 1,
                batch_fail: 1,
                batch_ms: 1_000,
                error_rate: 0.0,
                require_key: Some(key.into()),
                ..cfg()
            },
            None,
        )
        .await
        .unwrap();
        let mut c = Client::new(&srv);
        let (status, text) = c
            .call("POST", "/v1/messages/batches", Some(create_body(4)))
            .await;
        assert_eq!(status, 401, "{text}");
        assert!(!text.contains(key));
        c.key = Some(key);
        let no_version = c
            .http
            .get(format!("{}/v1/messages/batches", c.root))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(no_version.status().as_u16(), 400);
        // The first batch expires (every other request), the next create is
        // refused and creates nothing, the third runs.
        let first = c
            .json("POST", "/v1/messages/batches", Some(create_body(4)))
            .await;
        let (status, text) = c
            .call("POST", "/v1/messages/batches", Some(create_body(4)))
            .await;
        assert_eq!(status, 400);
        assert!(text.contains("invalid_request_error") && text.contains("--batch-fail"));
        let third = c
            .json("POST", "/v1/messages/batches", Some(create_body(4)))
            .await;
        assert_eq!(srv.stats().batch_creates, 2);
        // Cancel the third: canceling, then ended with what it had not run canceled.
        let id = third["id"].as_str().unwrap();
        let cancelling = c
            .json("POST", &format!("/v1/messages/batches/{id}/cancel"), None)
            .await;
        assert_eq!(cancelling["processing_status"], "canceling");
        assert!(cancelling["cancel_initiated_at"].is_string());
        let ended = c.ended(first["id"].as_str().unwrap()).await;
        assert_eq!(ended["request_counts"]["expired"], 2);
        let ended = c.ended(id).await;
        assert!(ended["request_counts"]["canceled"].as_u64().unwrap() >= 1);
        // Lists: newest first, paged both ways.
        let more = c
            .json("POST", "/v1/messages/batches", Some(create_body(1)))
            .await;
        let page = c.json("GET", "/v1/messages/batches?limit=2", None).await;
        let ids = |v: &Value| -> Vec<String> {
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(&page), [more["id"].as_str().unwrap(), id]);
        assert_eq!(page["has_more"], true);
        let list = |query: String| {
            let c = &c;
            async move {
                c.json("GET", &format!("/v1/messages/batches?{query}"), None)
                    .await
            }
        };
        let after = page["last_id"].as_str().unwrap();
        let next = list(format!("limit=2&after_id={after}")).await;
        assert_eq!(ids(&next), [first["id"].as_str().unwrap()]);
        assert_eq!(next["has_more"], false);
        let before = first["id"].as_str().unwrap();
        let back = list(format!("limit=5&before_id={before}")).await;
        assert_eq!(ids(&back), ids(&page));
        let (status, _) = c
            .call("GET", "/v1/messages/batches/msgbatch_nope", None)
            .await;
        assert_eq!(status, 404);
        assert_eq!(srv.stats().batch_lists, 3);
    }

    #[test]
    fn custom_ids_are_checked_as_anthropic_does() {
        assert!(valid_custom_id("2026-12-01T05-45-13-000Z-r12-a1"));
        assert!(!valid_custom_id(""));
        assert!(!valid_custom_id("a b"));
        assert!(!valid_custom_id(&"x".repeat(65)));
    }
}
