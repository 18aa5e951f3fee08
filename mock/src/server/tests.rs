//! The mock over real HTTP on 127.0.0.1: answers, faults, rate limits, CORS,
//! counters and shutdown.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::testing::{body, cfg, client, image, serve, serve_with, LABELS};
use crate::MOCK_MODEL;

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
    /// A header that holds a number, as that number.
    fn number(&self, name: &str) -> u64 {
        let value = self.header(name).unwrap_or_else(|| panic!("no {name}"));
        value
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {value}: {e}"))
    }
    /// Whether no `x-ratelimit-*` header came with the answer.
    fn has_no_ratelimit_headers(&self) -> bool {
        self.headers
            .keys()
            .all(|k| !k.as_str().starts_with("x-ratelimit-"))
    }
    /// The label of a 200 answer.
    fn label(&self) -> String {
        assert_eq!(self.status, 200, "{}", self.text);
        let content = self.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        let inner: Value = serde_json::from_str(&content).unwrap();
        inner["label"].as_str().unwrap().to_owned()
    }
}

async fn send_raw(
    c: &reqwest::Client,
    srv: &MockServer,
    body: String,
    attempt: Option<u64>,
    key: Option<&str>,
) -> Answer {
    let mut rq = c
        .post(format!("{}/chat/completions", srv.base_url()))
        .header("content-type", "application/json")
        .body(body);
    if let Some(a) = attempt {
        rq = rq.header("x-stainless-retry-count", a.to_string());
    }
    if let Some(k) = key {
        rq = rq.bearer_auth(k);
    }
    let r = rq.send().await.unwrap();
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().await.unwrap(),
    }
}

async fn send(c: &reqwest::Client, srv: &MockServer, img: &str, attempt: u64) -> Answer {
    send_raw(c, srv, body(img), Some(attempt), None).await
}

#[tokio::test]
async fn answer_is_a_chat_completion_with_an_enum_label() {
    let srv = serve(cfg()).await;
    let c = client();
    let a = send(&c, &srv, &image(1), 0).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let v = a.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-test");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
    assert_eq!(v["choices"][0]["index"], 0);
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert!(v["choices"][0]["message"]["refusal"].is_null());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // One image at 2,833 tokens plus 31 characters of text; the answer
    // `{"label":"<4 or 3 letters>"}` is 15 or 16 characters.
    assert_eq!(v["usage"]["prompt_tokens"], 2833 + 8);
    assert_eq!(v["usage"]["completion_tokens"], 4);
    assert_eq!(v["usage"]["total_tokens"], 2833 + 8 + 4);
    assert!(LABELS.contains(&a.label().as_str()));
    assert!(a.header("x-request-id").unwrap().starts_with("req_"));
    assert_eq!(a.header("content-type"), Some("application/json"));
    // No rpm, no tpm: no rate-limit headers at all (an announced token limit
    // would be followed by clients that pace by it).
    assert!(a.has_no_ratelimit_headers(), "{:?}", a.headers);
    srv.shutdown().await;
}

#[tokio::test]
async fn same_request_same_body_across_time_and_servers() {
    let cfg = MockConfig {
        accuracy: 0.5,
        ..cfg()
    };
    let (a, b) = (serve(cfg.clone()).await, serve(cfg).await);
    let c = client();
    let mut labels_seen = std::collections::HashSet::new();
    for i in 0..20 {
        let first = send(&c, &a, &image(i), 0).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        let again = send(&c, &a, &image(i), 0).await;
        let other = send(&c, &b, &image(i), 0).await;
        assert_eq!(first.text, again.text);
        assert_eq!(first.text, other.text);
        assert_eq!(first.header("x-request-id"), other.header("x-request-id"));
        labels_seen.insert(first.label());
    }
    assert!(labels_seen.len() > 1, "answers should vary by image");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn accuracy_one_and_zero_against_truth() {
    let truth = Truth::from_pairs((0..40).map(|i| (image(i), LABELS[i % 4].to_string())));
    let right = MockServer::spawn(
        MockConfig {
            accuracy: 1.0,
            ..cfg()
        },
        Some(truth.clone()),
    )
    .await
    .unwrap();
    let wrong = MockServer::spawn(
        MockConfig {
            accuracy: 0.0,
            ..cfg()
        },
        Some(truth),
    )
    .await
    .unwrap();
    let c = client();
    let mut wrong_labels = std::collections::HashSet::new();
    for i in 0..40 {
        assert_eq!(send(&c, &right, &image(i), 0).await.label(), LABELS[i % 4]);
        let w = send(&c, &wrong, &image(i), 0).await.label();
        assert_ne!(w, LABELS[i % 4]);
        assert!(LABELS.contains(&w.as_str()));
        // A retry answers the same wrong label.
        assert_eq!(send(&c, &wrong, &image(i), 3).await.label(), w);
        wrong_labels.insert(w);
    }
    assert!(wrong_labels.len() > 2, "wrong answers should spread");
    right.shutdown().await;
    wrong.shutdown().await;
}

#[tokio::test]
async fn injected_server_errors() {
    let always = serve_with(|m| m.error_rate = 1.0).await;
    let c = client();
    for i in 0..5 {
        let a = send(&c, &always, &image(i), i as u64).await;
        assert_eq!(a.status, 500);
        let v = a.json();
        assert_eq!(v["error"]["type"], "server_error");
        assert!(v["error"]["code"].is_null());
        assert_eq!(
            v["error"]["message"],
            "The server had an error while processing your request."
        );
    }
    assert_eq!(always.stats().server_errors, 5);
    always.shutdown().await;

    let some = serve_with(|m| m.error_rate = 0.3).await;
    let mut failed = Vec::new();
    for i in 0..200 {
        let a = send(&c, &some, &image(i), 0).await;
        match a.status {
            200 => {}
            500 => failed.push(i),
            s => panic!("unexpected status {s}"),
        }
    }
    assert!(
        (40..=80).contains(&failed.len()),
        "{} of 200 failed",
        failed.len()
    );
    // Retrying a failed item (attempt + 1, + 2, ...) eventually succeeds, and
    // the same attempt fails again.
    let i = failed[0];
    assert_eq!(send(&c, &some, &image(i), 0).await.status, 500);
    let mut recovered = false;
    for attempt in 1..10 {
        if send(&c, &some, &image(i), attempt).await.status == 200 {
            recovered = true;
            break;
        }
    }
    assert!(recovered);
    let retried_ok = {
        let mut n = 0;
        for &i in &failed {
            n += usize::from(send(&c, &some, &image(i), 1).await.status == 200);
        }
        n
    };
    assert!(
        retried_ok * 2 > failed.len(),
        "{retried_ok}/{}",
        failed.len()
    );
    some.shutdown().await;
}

#[tokio::test]
async fn malformed_answers() {
    let srv = serve_with(|m| m.malformed_rate = 1.0).await;
    let a = send(&client(), &srv, &image(1), 0).await;
    assert_eq!(a.status, 200);
    let content = a.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        serde_json::from_str::<Value>(&content).is_err(),
        "{content}"
    );
    let s = srv.stats();
    assert_eq!((s.ok, s.malformed), (1, 1));
    srv.shutdown().await;
}

#[tokio::test]
async fn rate_limit_gives_429_with_headers() {
    // 600 rpm = 10 per second, bucket capacity 10; fire 20 at once.
    let srv = serve_with(|m| m.rpm = Some(600)).await;
    let c = client();
    let images: Vec<String> = (0..20).map(image).collect();
    let answers = futures_join_all(images.iter().map(|img| send(&c, &srv, img, 0)).collect()).await;
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    let ok: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert!(!limited.is_empty(), "no 429 out of 20");
    assert!(ok.len() >= 10, "only {} ok", ok.len());
    assert_eq!(limited.len() + ok.len(), 20);
    for a in &limited {
        let ms = a.number("retry-after-ms");
        assert!((1..=100).contains(&ms), "retry-after-ms {ms}");
        assert_eq!(a.header("retry-after"), Some("1"));
        assert_eq!(a.header("x-ratelimit-remaining-requests"), Some("0"));
        assert_eq!(a.header("x-ratelimit-limit-requests"), Some("600"));
        let v = a.json();
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        assert_eq!(v["error"]["type"], "requests");
        assert_eq!(
            v["error"]["message"],
            format!(
                "Rate limit reached for gpt-test in organization org-mock on requests per min \
                 (RPM): Limit 600, Used 600, Requested 1. Please try again in {ms}ms."
            )
        );
        assert!(v["error"]["param"].is_null());
    }
    for a in &ok {
        assert_eq!(a.header("x-ratelimit-limit-requests"), Some("600"));
        let rem = a.number("x-ratelimit-remaining-requests");
        assert!(rem < 10);
        let reset = a.header("x-ratelimit-reset-requests").unwrap();
        assert!(reset.ends_with('s'), "{reset}");
    }
    assert_eq!(srv.stats().rate_limited as usize, limited.len());
    // After waiting out retry-after-ms the bucket lets requests in again.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(send(&c, &srv, &image(0), 1).await.status, 200);
    srv.shutdown().await;
}

/// `join_all` without the futures crate: polls all the futures together and
/// returns their outputs in order.
async fn futures_join_all<F>(futs: Vec<F>) -> Vec<Answer>
where
    F: std::future::Future<Output = Answer>,
{
    let mut pinned: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<Answer>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(a) => out[i] = Some(a),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

/// Two requests to a mock limited as `limit` sets, with no rate-limit headers:
/// the first is answered and the second limited, neither with an
/// `x-ratelimit-*` header, the 429 still with its `retry-after-ms`. Returns the
/// 429.
async fn limited_without_ratelimit_headers(limit: impl FnOnce(&mut MockConfig)) -> Answer {
    let srv = serve_with(|m| {
        limit(m);
        m.no_ratelimit_headers = true;
    })
    .await;
    let c = client();
    let first = send(&c, &srv, &image(1), 0).await;
    let second = send(&c, &srv, &image(2), 0).await;
    assert_eq!((first.status, second.status), (200, 429));
    for a in [&first, &second] {
        assert!(a.has_no_ratelimit_headers(), "{:?}", a.headers);
    }
    assert!(second.header("retry-after-ms").is_some());
    srv.shutdown().await;
    second
}

#[tokio::test]
async fn no_ratelimit_headers_hides_them() {
    let limited = limited_without_ratelimit_headers(|m| m.rpm = Some(60)).await;
    assert!(limited.header("retry-after").is_some());
}

#[tokio::test]
async fn require_key() {
    let srv = serve_with(|m| m.require_key = Some("sk-right-key".into())).await;
    let c = client();
    let wrong_key = "sk-WRONG-9f8e7d6c";
    let a = send_raw(&c, &srv, body(&image(1)), None, Some(wrong_key)).await;
    assert_eq!(a.status, 401);
    let v = a.json();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let everything = format!("{:?}{}", a.headers, a.text);
    assert!(!everything.contains(wrong_key));
    assert!(!everything.contains("9f8e7d6c"));
    assert!(!everything.contains("sk-right-key"));
    let none = send_raw(&c, &srv, body(&image(1)), None, None).await;
    assert_eq!(none.status, 401);
    let ok = send_raw(&c, &srv, body(&image(1)), None, Some("sk-right-key")).await;
    assert_eq!(ok.status, 200);
    let s = srv.stats();
    assert_eq!((s.unauthorized, s.ok), (2, 1));
    assert!(!format!("{srv:?}").contains("sk-right-key"));
    srv.shutdown().await;
}

#[tokio::test]
async fn quota_runs_out() {
    let srv = serve_with(|m| m.quota = Some(3)).await;
    let c = client();
    for i in 0..3 {
        assert_eq!(send(&c, &srv, &image(i), 0).await.status, 200);
    }
    for i in 3..6 {
        let a = send(&c, &srv, &image(i), 0).await;
        assert_eq!(a.status, 429);
        let v = a.json();
        assert_eq!(v["error"]["code"], "insufficient_quota");
        assert_eq!(v["error"]["type"], "insufficient_quota");
        assert!(a.header("retry-after").is_none());
        assert!(a.header("retry-after-ms").is_none());
    }
    let s = srv.stats();
    assert_eq!((s.ok, s.quota_exceeded, s.requests), (3, 3, 6));
    srv.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_400() {
    let srv = serve(cfg()).await;
    let c = client();
    let a = send_raw(&c, &srv, "{oops".into(), None, None).await;
    assert_eq!(a.status, 400);
    let v = a.json();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["code"].is_null());
    let no_labels = json!({ "model": "m", "messages": [] }).to_string();
    assert_eq!(send_raw(&c, &srv, no_labels, None, None).await.status, 400);
    assert_eq!(srv.stats().bad_requests, 2);
    srv.shutdown().await;
}

#[tokio::test]
async fn slow_requests_wait_longer() {
    let srv = serve_with(|m| {
        m.slow_every = 1;
        m.slow_ms = 300;
    })
    .await;
    let t = std::time::Instant::now();
    assert_eq!(send(&client(), &srv, &image(1), 0).await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    srv.shutdown().await;
}

#[tokio::test]
async fn cors_preflight_and_exposed_headers() {
    let srv = serve_with(|m| m.rpm = Some(6000)).await;
    let c = client();
    let url = format!("{}/chat/completions", srv.base_url());
    let pre = c
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-stainless-retry-count",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    let h = pre.headers();
    let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_ascii_lowercase());
    assert_eq!(get("access-control-allow-origin").as_deref(), Some("*"));
    let methods = get("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("post") && methods.contains("get"),
        "{methods}"
    );
    let allowed = get("access-control-allow-headers").unwrap();
    for want in ["authorization", "content-type", "x-stainless-retry-count"] {
        assert!(allowed.contains(want), "{allowed}");
    }
    // The actual response exposes the rate-limit and retry headers.
    let r = c
        .post(&url)
        .header("origin", "http://localhost:5173")
        .body(body(&image(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("access-control-allow-origin").unwrap(), "*");
    let exposed = r
        .headers()
        .get("access-control-expose-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for want in EXPOSED_HEADERS {
        assert!(exposed.contains(want), "{want} not in {exposed}");
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn models_and_stats_endpoints() {
    let srv = serve_with(|m| m.error_rate = 0.5).await;
    let c = client();
    let models: Value = c
        .get(format!("{}/models", srv.base_url()))
        .send()
        .await
        .unwrap()
        .json_text()
        .await;
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], MOCK_MODEL);
    assert_eq!(models["data"].as_array().unwrap().len(), 1);

    for i in 0..10 {
        send(&c, &srv, &image(i), 0).await;
    }
    let stats_url = format!("http://{}/stats", srv.addr);
    let raw: Value = c.get(&stats_url).send().await.unwrap().json_text().await;
    for key in [
        "requests",
        "ok",
        "rateLimited",
        "tokenLimited",
        "tokensAdmitted",
        "tooLarge",
        "serverErrors",
        "unauthorized",
        "malformed",
        "quotaExceeded",
        "byStatus",
    ] {
        assert!(raw.get(key).is_some(), "{key} missing in {raw}");
    }
    let s: MockStats = serde_json::from_value(raw).unwrap();
    assert_eq!(s, srv.stats());
    assert_eq!(s.requests, 10);
    assert_eq!(s.ok + s.server_errors, 10);
    assert!(s.ok > 0 && s.server_errors > 0);
    assert_eq!(s.by_status.get(&200).copied().unwrap_or(0), s.ok);
    assert_eq!(s.by_status.get(&500).copied().unwrap_or(0), s.server_errors);
    srv.shutdown().await;
}

trait JsonText {
    async fn json_text(self) -> Value;
}

impl JsonText for reqwest::Response {
    async fn json_text(self) -> Value {
        assert!(self.status().is_success(), "{}", self.status());
        serde_json::from_str(&self.text().await.unwrap()).unwrap()
    }
}

#[tokio::test]
async fn latency_applies_and_shutdown_is_graceful() {
    let srv = serve_with(|m| m.latency_ms = 200).await;
    let c = client();
    let url = format!("{}/chat/completions", srv.base_url());
    let t = std::time::Instant::now();
    let in_flight = tokio::spawn({
        let c = c.clone();
        async move {
            c.post(url)
                .body(body(&image(1)))
                .send()
                .await
                .map(|r| r.status())
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let addr = srv.addr;
    srv.shutdown().await;
    // The request in flight finished with its answer, after the latency.
    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    // And the port no longer answers.
    let after = c.get(format!("http://{addr}/v1/models")).send().await;
    assert!(after.is_err());
}

/// The charge of [`body`]'s request with the default image charge: 2,833 for the
/// image, 8 for 31 characters of text, 1,000 for the unset `max_tokens`.
const CHARGE: u64 = 2833 + 8 + 1000;

#[tokio::test]
async fn tpm_limit_gives_token_429s_in_openais_shape() {
    // 360,000 tpm: a bucket of 6,000 tokens, refilled at 6,000 per second. The
    // first request (3,841 tokens) fits, the second does not until 1,682 more
    // tokens came in (280 ms).
    let srv = serve_with(|m| m.tpm = Some(360_000)).await;
    let c = client();
    let first = send(&c, &srv, &image(1), 0).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.header("x-ratelimit-limit-tokens"), Some("360000"));
    let remaining = first.number("x-ratelimit-remaining-tokens");
    // 2,159 tokens left, as a share of the minute: 129,540 (plus a few ms' refill).
    assert!((129_540..140_000).contains(&remaining), "{remaining}");
    let reset = first.header("x-ratelimit-reset-tokens").unwrap();
    assert!(reset.ends_with("ms"), "{reset}");
    // No --rpm: no request headers.
    assert!(first.header("x-ratelimit-limit-requests").is_none());
    let v = first.json();
    assert_eq!(v["usage"]["prompt_tokens"], 2833 + 8);

    let second = send(&c, &srv, &image(2), 0).await;
    assert_eq!(second.status, 429, "{}", second.text);
    let ms = second.number("retry-after-ms");
    assert!((200..=280).contains(&ms), "retry-after-ms {ms}");
    assert_eq!(second.header("retry-after"), Some("1"));
    let remaining = second.number("x-ratelimit-remaining-tokens");
    assert_eq!(
        second.json(),
        json!({ "error": {
            "message": format!(
                "Rate limit reached for gpt-test in organization org-mock on tokens per min \
                 (TPM): Limit 360000, Used {}, Requested {CHARGE}. Please try again in {ms}ms.",
                360_000 - remaining
            ),
            "type": "tokens",
            "param": null,
            "code": "rate_limit_exceeded",
        }})
    );
    let s = srv.stats();
    assert_eq!((s.rate_limited, s.token_limited, s.ok), (1, 1, 1));
    assert_eq!(s.tokens_admitted, CHARGE);
    // After the wait, the same request is admitted.
    tokio::time::sleep(Duration::from_millis(ms + 20)).await;
    assert_eq!(send(&c, &srv, &image(2), 1).await.status, 200);
    assert_eq!(srv.stats().tokens_admitted, 2 * CHARGE);
    srv.shutdown().await;
}

#[tokio::test]
async fn max_tokens_and_image_charge_set_the_token_charge() {
    // A bucket of 2,000 tokens: the unset max_tokens (1,000) plus a 1,500-token
    // image does not fit; max_tokens 16 does, and so does a cheaper image.
    let srv = serve_with(|m| {
        m.tpm = Some(120_000);
        m.image_tokens = 1_500;
    })
    .await;
    let c = client();
    let with_max = |n: u64| {
        let mut v: Value = serde_json::from_str(&body(&image(1))).unwrap();
        v["max_tokens"] = json!(n);
        v.to_string()
    };
    let unset = send(&c, &srv, &image(1), 0).await;
    assert_eq!(unset.status, 400, "{}", unset.text);
    let capped = send_raw(&c, &srv, with_max(16), None, None).await;
    assert_eq!(capped.status, 200, "{}", capped.text);
    let v = capped.json();
    assert_eq!(v["usage"]["prompt_tokens"], 1_508);
    assert_eq!(v["usage"]["total_tokens"], 1_508 + 4);
    assert_eq!(srv.stats().tokens_admitted, 1_508 + 16);
    srv.shutdown().await;
}

#[tokio::test]
async fn a_request_larger_than_the_token_bucket_gets_400_not_429() {
    // 180,000 tpm: a bucket of 3,000 tokens, less than the request's 3,841.
    let srv = serve_with(|m| {
        m.tpm = Some(180_000);
        m.rpm = Some(600);
    })
    .await;
    let c = client();
    for attempt in 0..3 {
        let a = send(&c, &srv, &image(1), attempt).await;
        assert_eq!(a.status, 400, "{}", a.text);
        assert_eq!(a.header("x-should-retry"), Some("false"));
        assert!(a.header("retry-after").is_none());
        assert!(a.header("retry-after-ms").is_none());
        // Not charged: the buckets stay full.
        assert_eq!(a.header("x-ratelimit-remaining-tokens"), Some("180000"));
        assert_eq!(a.header("x-ratelimit-remaining-requests"), Some("10"));
        assert_eq!(
            a.json(),
            json!({ "error": {
                "message": format!(
                    "Request too large for gpt-test in organization org-mock on tokens per \
                     min (TPM): Limit 180000, Requested {CHARGE}. The mock admits at most 3000 \
                     tokens at once (one second of the limit). The input or output tokens \
                     must be reduced in order to run successfully."
                ),
                "type": "tokens",
                "param": null,
                "code": "rate_limit_exceeded",
            }})
        );
    }
    let s = srv.stats();
    assert_eq!((s.too_large, s.bad_requests, s.rate_limited), (3, 0, 0));
    assert_eq!(s.tokens_admitted, 0);
    assert_eq!(s.by_status.get(&400), Some(&3));
    srv.shutdown().await;
}

#[tokio::test]
async fn tpm_without_ratelimit_headers() {
    let limited = limited_without_ratelimit_headers(|m| m.tpm = Some(360_000)).await;
    assert_eq!(limited.json()["error"]["type"], "tokens");
}

#[tokio::test]
async fn answers_do_not_depend_on_the_token_limit() {
    // The token limit decides only admission: an admitted answer is the same
    // body with or without it.
    let with_tpm = |tpm: Option<u64>| {
        serve_with(move |m| {
            m.tpm = tpm;
            m.accuracy = 0.5;
        })
    };
    let (limited, free) = (with_tpm(Some(60_000_000)).await, with_tpm(None).await);
    let c = client();
    for i in 0..10 {
        let a = send(&c, &limited, &image(i), 0).await;
        let b = send(&c, &free, &image(i), 0).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.text, b.text);
    }
    limited.shutdown().await;
    free.shutdown().await;
}
