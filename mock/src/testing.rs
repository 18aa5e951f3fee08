//! Test helpers shared by the modules' tests: labels, images and a request body
//! as shadow-batch sends them.

use std::time::Duration;

use serde_json::json;

use crate::config::MockConfig;
use crate::MockServer;

/// A mock on any free port, answering at once and injecting no faults unless a
/// test asks for them (the product default waits 120 ms and fails 2%).
pub fn cfg() -> MockConfig {
    MockConfig {
        port: 0,
        latency_ms: 0,
        error_rate: 0.0,
        ..MockConfig::default()
    }
}

/// A mock with `config` and no web page, on a free port.
pub async fn serve(config: MockConfig) -> MockServer {
    MockServer::spawn(config, None).await.unwrap()
}

/// A mock with [`cfg`] changed by `change`, no web page, on a free port.
pub async fn serve_with(change: impl FnOnce(&mut MockConfig)) -> MockServer {
    let mut config = cfg();
    change(&mut config);
    serve(config).await
}

/// A client as the tests want one: no proxy, a 5 s timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

pub const LABELS: [&str; 4] = ["cat", "dog", "bird", "fish"];

pub fn labels() -> Vec<String> {
    LABELS.iter().map(|s| s.to_string()).collect()
}

pub fn image(i: usize) -> String {
    format!("https://example.test/images/{i:04}.jpg")
}

/// A chat completion request for `image` with [`LABELS`] as the label enum.
pub fn body(image: &str) -> String {
    json!({
        "model": "gpt-test",
        "messages": [
            { "role": "system", "content": "Classify the image." },
            { "role": "user", "content": [
                { "type": "text", "text": "Which label?" },
                { "type": "image_url", "image_url": { "url": image } }
            ]}
        ],
        "response_format": { "type": "json_schema", "json_schema": {
            "name": "classification", "strict": true,
            "schema": { "type": "object", "additionalProperties": false,
                "required": ["label"],
                "properties": { "label": { "type": "string", "enum": LABELS } } }
        }}
    })
    .to_string()
}
