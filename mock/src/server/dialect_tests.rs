//! Each dialect over real HTTP, spoken by the core's own request builders: the
//! answers, the key header, the faults, the rate limits and the refusals each
//! provider's client must understand.

use serde_json::Value;
use shadow_core::input::LabelSet;
use shadow_core::provider::{
    AnthropicConfig, AzureConfig, GeminiConfig, ImageDetail, OpenAiConfig, Provider,
};

use super::*;
use crate::config::OpenAiDialect;
use crate::testing::{cfg, client, image, serve, serve_with, LABELS};

const KEY: &str = "mock-key-7f3a";

fn labels() -> LabelSet {
    LabelSet::from_labels(LABELS)
}

fn openai(srv: &MockServer) -> Provider {
    Provider::OpenAi(OpenAiConfig {
        base_url: srv.base_url(),
        model: "gpt-test".into(),
        detail: ImageDetail::Low,
        prompt: None,
    })
}

fn anthropic(srv: &MockServer) -> Provider {
    Provider::Anthropic(AnthropicConfig {
        base_url: format!("http://{}", srv.addr),
        ..AnthropicConfig::default()
    })
}

fn gemini(srv: &MockServer) -> Provider {
    Provider::Gemini(GeminiConfig {
        base_url: format!("http://{}", srv.addr),
        ..GeminiConfig::default()
    })
}

fn azure(srv: &MockServer, api_version: Option<&str>) -> Provider {
    Provider::Azure(AzureConfig {
        base_url: format!("http://{}", srv.addr),
        deployment: "vision-dep".into(),
        api_version: api_version.map(str::to_owned),
        detail: ImageDetail::Low,
        prompt: None,
    })
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends what `provider` builds for `image`, with `key` in the provider's header.
async fn send(provider: &Provider, image: &str, attempt: u32, key: Option<&str>) -> Answer {
    let request = provider
        .request_template(&labels())
        .build(image, attempt, None);
    send_request(request, key.map(|k| provider.credential_header(k))).await
}

async fn send_request(
    request: shadow_core::http::HttpRequest,
    credential: Option<(&'static str, String)>,
) -> Answer {
    let mut rq = client().post(&request.url).body(request.body);
    for (name, value) in &request.headers {
        rq = rq.header(name, value);
    }
    if let Some((name, value)) = credential {
        rq = rq.header(name, value);
    }
    let r = rq.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Answer {
        status,
        headers,
        json: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}")),
    }
}

/// A mock that wants [`KEY`] in each dialect's header, and allows `rpm`
/// requests a minute.
async fn wanting_the_key(rpm: Option<u32>) -> MockServer {
    serve_with(|m| {
        m.require_key = Some(KEY.into());
        m.rpm = rpm;
    })
    .await
}

/// The label the core reads from an answer.
fn label(provider: &Provider, answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", answer.json);
    let labels = labels();
    let index = provider
        .parse_answer(&answer.json.to_string(), &labels)
        .unwrap_or_else(|e| panic!("{e}: {}", answer.json))
        .label;
    labels.names()[index].clone()
}

#[tokio::test]
async fn every_dialect_answers_the_same_image_with_the_same_label() {
    let srv = serve(cfg()).await;
    let data = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==";
    let providers = [
        openai(&srv),
        anthropic(&srv),
        gemini(&srv),
        azure(&srv, Some("2024-10-21")),
        azure(&srv, None),
    ];
    for i in 0..12 {
        let remote = image(i);
        for img in [data, remote.as_str()] {
            let answers: Vec<String> = futures_labels(&providers, img).await;
            assert!(
                answers.iter().all(|a| a == &answers[0]),
                "{img}: {answers:?}"
            );
        }
    }
    // Usage comes back in each dialect's words, and the core reads it.
    for provider in &providers {
        let answer = send(provider, data, 1, None).await;
        let usage = provider
            .parse_answer(&answer.json.to_string(), &labels())
            .unwrap()
            .usage
            .expect("usage");
        assert!(
            usage.prompt_tokens > 0 && usage.completion_tokens > 0,
            "{provider:?}"
        );
    }
    assert_eq!(srv.stats().ok, 2 * 12 * 5 + 5);
}

async fn futures_labels(providers: &[Provider], img: &str) -> Vec<String> {
    let mut out = Vec::new();
    for p in providers {
        out.push(label(p, &send(p, img, 1, None).await));
    }
    out
}

#[tokio::test]
async fn anthropic_checks_its_headers_and_speaks_its_errors() {
    let srv = wanting_the_key(None).await;
    let p = anthropic(&srv);
    let img = image(1);
    let ok = send(&p, &img, 1, Some(KEY)).await;
    assert_eq!(ok.json["type"], "message");
    assert_eq!(ok.json["stop_reason"], "tool_use");
    assert_eq!(ok.json["content"][0]["type"], "tool_use");
    assert_eq!(ok.json["content"][0]["name"], "classify_image");
    assert!(LABELS.contains(&ok.json["content"][0]["input"]["label"].as_str().unwrap()));
    // The bearer form of the key is not Anthropic's: 401 authentication_error.
    let request = p.request_template(&labels()).build(&img, 1, None);
    let bearer = send_request(
        request.clone(),
        Some(("authorization", format!("Bearer {KEY}"))),
    )
    .await;
    assert_eq!(bearer.status, 401);
    assert_eq!(bearer.json["error"]["type"], "authentication_error");
    assert!(!bearer.json.to_string().contains(KEY));
    // Without anthropic-version: 400 invalid_request_error.
    let mut unversioned = request;
    unversioned
        .headers
        .retain(|(k, _)| k != "anthropic-version");
    let answer = send_request(unversioned, Some(p.credential_header(KEY))).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json["type"], "error");
    assert!(answer.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("anthropic-version"));
}

#[tokio::test]
async fn anthropic_faults_limits_refusals_and_credit() {
    // Injected faults are 529 overloaded_error.
    let srv = serve_with(|m| m.error_rate = 1.0).await;
    let answer = send(&anthropic(&srv), &image(1), 1, None).await;
    assert_eq!(answer.status, 529);
    assert_eq!(answer.json["error"]["type"], "overloaded_error");

    // Over the limit: 429 rate_limit_error with retry-after in seconds, and the
    // anthropic-ratelimit-* headers with RFC 3339 resets on every answer.
    let srv = serve_with(|m| m.rpm = Some(60)).await;
    let p = anthropic(&srv);
    let first = send(&p, &image(1), 1, None).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("anthropic-ratelimit-requests-limit"),
        Some("60")
    );
    assert_eq!(
        first.header("anthropic-ratelimit-requests-remaining"),
        Some("0")
    );
    let reset = first.header("anthropic-ratelimit-requests-reset").unwrap();
    assert!(
        shadow_core::time::parse_iso8601(reset).is_some() && reset.ends_with('Z'),
        "{reset}"
    );
    // No token limit configured: no token headers (a fixed one would pace clients).
    assert!(first.header("anthropic-ratelimit-tokens-limit").is_none());
    assert!(first.header("x-ratelimit-limit-requests").is_none());
    let second = send(&p, &image(2), 1, None).await;
    assert_eq!(second.status, 429);
    assert_eq!(second.json["error"]["type"], "rate_limit_error");
    let wait: u64 = second.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=1).contains(&wait), "{wait}");
    assert!(second.header("retry-after-ms").is_none());

    // Refusals: stop_reason refusal, which the core counts as a refusal.
    let srv = serve_with(|m| m.refusal_rate = 1.0).await;
    let p = anthropic(&srv);
    let answer = send(&p, &image(1), 1, None).await;
    assert_eq!(answer.json["stop_reason"], "refusal");
    assert!(matches!(
        p.parse_answer(&answer.json.to_string(), &labels()),
        Err(shadow_core::provider::AnswerError::Refusal(_))
    ));
    assert_eq!(srv.stats().refused, 1);

    // A used-up quota is Anthropic's 400 about the credit balance.
    let srv = serve_with(|m| m.quota = Some(0)).await;
    let answer = send(&anthropic(&srv), &image(1), 1, None).await;
    assert_eq!(answer.status, 400);
    assert!(answer.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("credit balance"));
}

#[tokio::test]
async fn gemini_key_header_retry_info_faults_and_safety() {
    let srv = wanting_the_key(Some(60)).await;
    let p = gemini(&srv);
    let ok = send(&p, &image(1), 1, Some(KEY)).await;
    assert_eq!(ok.json["candidates"][0]["finishReason"], "STOP");
    assert!(
        ok.json["usageMetadata"]["totalTokenCount"]
            .as_u64()
            .unwrap()
            > 0
    );
    // No rate-limit headers; over the limit, RESOURCE_EXHAUSTED with RetryInfo and
    // no retry-after.
    assert!(ok.header("x-ratelimit-limit-requests").is_none());
    let limited = send(&p, &image(2), 1, Some(KEY)).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(limited.header("retry-after").is_none());
    let details = limited.json["error"]["details"].as_array().unwrap();
    let delay = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .and_then(|d| d["retryDelay"].as_str())
        .unwrap();
    assert!(delay.ends_with('s'), "{delay}");
    // A wrong key: 400 API_KEY_INVALID, as Google answers it.
    let wrong = send(&p, &image(3), 1, Some("nope")).await;
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.json["error"]["details"][0]["reason"],
        "API_KEY_INVALID"
    );
    // A key in the URL is refused.
    let mut request = p.request_template(&labels()).build(&image(3), 1, None);
    request.url.push_str(&format!("?key={KEY}"));
    let in_url = send_request(request, Some(p.credential_header(KEY))).await;
    assert_eq!(in_url.status, 400);
    assert!(in_url.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("x-goog-api-key"));
    assert!(!in_url.json.to_string().contains(KEY));

    let srv = serve_with(|m| m.error_rate = 1.0).await;
    let answer = send(&gemini(&srv), &image(1), 1, None).await;
    assert_eq!(
        (answer.status, answer.json["error"]["status"].as_str()),
        (503, Some("UNAVAILABLE"))
    );

    let srv = serve_with(|m| m.refusal_rate = 1.0).await;
    let answer = send(&gemini(&srv), &image(1), 1, None).await;
    assert_eq!(answer.json["candidates"][0]["finishReason"], "SAFETY");
}

#[tokio::test]
async fn azure_paths_key_and_content_filter() {
    let srv = wanting_the_key(None).await;
    for p in [azure(&srv, Some("2024-10-21")), azure(&srv, None)] {
        let ok = send(&p, &image(1), 1, Some(KEY)).await;
        assert_eq!(ok.status, 200, "{}", ok.json);
        assert_eq!(ok.json["model"], "vision-dep");
        // No limits configured: no rate-limit headers.
        assert!(ok.header("x-ratelimit-remaining-tokens").is_none());
        // A bearer token is not Azure's api-key.
        let request = p.request_template(&labels()).build(&image(1), 1, None);
        let bearer = send_request(request, Some(("authorization", format!("Bearer {KEY}")))).await;
        assert_eq!(bearer.status, 401);
        assert_eq!(bearer.json["error"]["code"], "401");
    }
    // The deployment path without api-version is a 404.
    let p = azure(&srv, Some("2024-10-21"));
    let mut request = p.request_template(&labels()).build(&image(1), 1, None);
    request.url = request.url.split('?').next().unwrap().to_owned();
    let missing = send_request(request, Some(p.credential_header(KEY))).await;
    assert_eq!(missing.status, 404);

    // Refusals are the content filter: a 400 content_filter or a 200 whose
    // finish_reason is content_filter, by content; the core counts both as refusals.
    let srv = serve_with(|m| m.refusal_rate = 1.0).await;
    let p = azure(&srv, None);
    let (mut four_hundreds, mut filtered_200s) = (0, 0);
    for i in 0..16 {
        let answer = send(&p, &image(i), 1, None).await;
        match answer.status {
            400 => {
                assert_eq!(answer.json["error"]["code"], "content_filter");
                four_hundreds += 1;
            }
            200 => {
                assert_eq!(answer.json["choices"][0]["finish_reason"], "content_filter");
                assert!(matches!(
                    p.parse_answer(&answer.json.to_string(), &labels()),
                    Err(shadow_core::provider::AnswerError::Refusal(_))
                ));
                filtered_200s += 1;
            }
            s => panic!("status {s}"),
        }
    }
    assert!(
        four_hundreds > 0 && filtered_200s > 0,
        "{four_hundreds} {filtered_200s}"
    );
}

#[tokio::test]
async fn the_ollama_dialect_refuses_schemas_and_remote_images() {
    let srv = serve_with(|m| m.dialect = OpenAiDialect::Ollama).await;
    let p = openai(&srv);
    let answer = send(&p, "data:image/png;base64,AAAA", 1, None).await;
    assert_eq!(answer.status, 400);
    assert!(answer.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("json_schema"));
    // Without a schema (json_object): a remote URL is refused, a data URL answered
    // with the same label as the OpenAI dialect gives.
    let json_object = |image: &str| {
        let mut body: Value =
            serde_json::from_str(&p.request_template(&labels()).build(image, 1, None).body)
                .unwrap();
        body["response_format"] = serde_json::json!({"type": "json_object"});
        body.to_string()
    };
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/chat/completions", srv.base_url());
    let remote = client
        .post(&url)
        .body(json_object(&image(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(remote.status().as_u16(), 400);
    assert!(remote.text().await.unwrap().contains("remote image"));
    let data = "data:image/png;base64,AAAA";
    let local = client
        .post(&url)
        .body(json_object(data))
        .send()
        .await
        .unwrap();
    assert_eq!(local.status().as_u16(), 200);
    let body = local.text().await.unwrap();
    let standard = serve(cfg()).await;
    let expected = label(
        &openai(&standard),
        &send(&openai(&standard), data, 1, None).await,
    );
    assert_eq!(
        label(
            &p,
            &Answer {
                status: 200,
                headers: Default::default(),
                json: serde_json::from_str(&body).unwrap()
            }
        ),
        expected
    );
}

/// A browser page calls every dialect as the page does: the preflight allows the
/// request's headers, its key header and the headers the core says a page adds;
/// the answer exposes the dialect's rate-limit headers. Anthropic's route, as
/// Anthropic's API, refuses a page's call without the opt-in header.
#[tokio::test]
async fn a_browser_page_may_call_every_dialect() {
    let srv = wanting_the_key(Some(6000)).await;
    let client = client();
    let origin = "http://127.0.0.1:9";
    for provider in [
        openai(&srv),
        anthropic(&srv),
        gemini(&srv),
        azure(&srv, Some("2024-10-21")),
        azure(&srv, None),
    ] {
        let request = provider
            .request_template(&labels())
            .build(&image(2), 1, None);
        let access = provider.browser_access();
        let (key_header, key_value) = provider.credential_header(KEY);
        let mut names: Vec<String> = request.headers.iter().map(|(n, _)| n.clone()).collect();
        names.push(key_header.to_owned());
        names.extend(access.headers.iter().map(|(n, _)| n.clone()));
        let pre = client
            .request(reqwest::Method::OPTIONS, &request.url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", names.join(","))
            .send()
            .await
            .unwrap();
        assert!(pre.status().is_success(), "{provider:?}: {}", pre.status());
        let allowed = pre.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        for name in &names {
            assert!(allowed.contains(name.as_str()), "{name} not in {allowed}");
        }

        let post = |with_access: bool| {
            let mut rq = client
                .post(&request.url)
                .header("origin", origin)
                .header(key_header, &key_value)
                .body(request.body.clone());
            for (name, value) in &request.headers {
                rq = rq.header(name, value);
            }
            if with_access {
                for (name, value) in &access.headers {
                    rq = rq.header(name, value);
                }
            }
            rq.send()
        };
        let r = post(true).await.unwrap();
        assert_eq!(r.status(), 200, "{provider:?}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let exposed = r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(exposed.contains("anthropic-ratelimit-requests-remaining"));
        assert!(exposed.contains("x-ratelimit-remaining-requests"));
        if matches!(provider, Provider::Anthropic(_)) {
            assert!(r
                .headers()
                .contains_key("anthropic-ratelimit-requests-remaining"));
            let refused = post(false).await.unwrap();
            assert_eq!(refused.status(), 401);
            let body: Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
            assert_eq!(body["error"]["type"], "authentication_error");
            assert_eq!(body["error"]["message"], ANTHROPIC_CORS_REFUSAL);
        } else {
            assert!(access.headers.is_empty());
        }
    }
    // The CLI names no origin: no opt-in needed.
    assert_eq!(
        send(&anthropic(&srv), &image(3), 1, Some(KEY)).await.status,
        200
    );
    srv.shutdown().await;
}
