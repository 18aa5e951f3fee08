//! The wasm face under wasm-bindgen-test (node): plain JS objects in and out, core
//! errors as JS errors.

#![cfg(target_arch = "wasm32")]

use serde::Serialize;
use serde_json::{json, Value};
use shadow_core::RunConfig;
use shadow_wasm::{
    browser_access, check_relative_path, default_config, default_provider, file_stamp,
    format_duration, image_data_url, inspect_csv, mock_model, percent, prepare_journal,
    progress_file_name, report_file_name, report_html, results_file_name, summary_file_name,
    ShadowRun,
};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

const T0: f64 = 1_737_714_600_000.0;

fn js(v: &Value) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .unwrap()
}

fn value(v: JsValue) -> Value {
    serde_wasm_bindgen::from_value(v).unwrap()
}

/// Every output the run has at `now`, until it has none.
fn outputs(run: &mut ShadowRun, now: f64) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let out = run.poll(now).unwrap();
        if out.is_null() {
            return all;
        }
        all.push(value(out));
    }
}

fn config() -> Value {
    json!({
        "runId": "2025-01-24T10-30-00-000Z",
        "csvPath": "labels.csv",
        "batchSize": 2,
        "concurrency": 4,
        "provider": { "kind": "openai", "baseUrl": "http://127.0.0.1:8787/v1", "model": "m", "detail": "low" },
        "providerLabel": "mock"
    })
}

fn completion(label: &str) -> String {
    json!({"choices":[{"message":{"role":"assistant","content": json!({"label": label}).to_string(),"refusal":null}}]}).to_string()
}

#[wasm_bindgen_test]
fn a_run_goes_from_csv_to_summary_through_plain_objects() {
    let csv = "image,label\nhttps://x.test/a.png,cat\nhttps://x.test/b.png,dog\nhttps://x.test/c.png,cat\n";
    let mut run = ShadowRun::new(csv, js(&config()), T0).unwrap();
    assert_eq!(run.item_count(), 3);
    let sends = outputs(&mut run, T0);
    assert!(sends.iter().all(|out| out["type"] == "send"), "{sends:?}");
    assert_eq!(sends.len(), 3);
    assert_eq!(
        sends[0]["image"],
        json!({"kind": "url", "value": "https://x.test/a.png"})
    );
    let request = value(
        run.request(0, 1, "https://x.test/a.png", None, None)
            .unwrap(),
    );
    assert_eq!(request["url"], "http://127.0.0.1:8787/v1/chat/completions");
    let body: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"],
        json!(["cat", "dog"])
    );
    assert!(!request["headers"]
        .to_string()
        .to_lowercase()
        .contains("authorization"));

    let mut answered = Vec::new();
    for s in &sends {
        // The model says "cat" every time: right for a and c, wrong for b.
        let label = "cat";
        let input = json!({"type": "response", "ticket": s["ticket"], "response": {"status": 200,
            "headers": [["x-ratelimit-limit-requests", "600"]], "body": completion(label)}});
        run.handle(T0 + 100.0, js(&input)).unwrap();
        answered.extend(outputs(&mut run, T0 + 100.0));
    }
    let kinds: Vec<&str> = answered
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "itemDone",
            "itemDone",
            "batchReport",
            "itemDone",
            "batchReport",
            "finished"
        ]
    );
    let line = answered[0]["jsonLine"].as_str().unwrap();
    assert!(
        line.ends_with('\n') && line.contains("\"prediction\":\"cat\""),
        "{line}"
    );
    assert!(answered[2]["console"]
        .as_str()
        .unwrap()
        .contains("📊 BATCH 1/2 COMPLETE"));
    let finished = &answered[5];
    assert_eq!(finished["exitCode"], 0);
    assert_eq!(finished["summary"]["statistics"]["successful"], 3);
    assert_eq!(finished["summary"]["evaluation"]["agreements"], 2);
    assert!(run.poll_timeout().is_none());
    let answer = value(run.parse_answer(&completion("dog")).unwrap());
    assert_eq!(answer["label"], "dog");
    let err = run.parse_answer(&completion("zebra")).err().unwrap();
    let message = String::from(js_sys::Error::from(JsValue::from(err)).message());
    assert!(message.contains("zebra"), "{message}");
}

#[wasm_bindgen_test]
fn resume_takes_the_journal_and_sends_only_the_rest() {
    let csv = "image,label\nhttps://x.test/a.png,cat\nhttps://x.test/b.png,dog\n";
    let line = json!({"row":0,"line":2,"image":"https://x.test/a.png","label":"cat","prediction":"cat","agreement":true,
        "status":"success","attempts":1,"latencyMs":5,"error":null,"finishedAt":"2025-01-24T10:30:00.000Z"});
    let mut run = ShadowRun::new(csv, js(&config()), T0).unwrap();
    // The torn half line at the end is ignored.
    let journal = format!("{line}\n{{\"row\":1,\"li");
    assert_eq!(run.restore(&journal, false).unwrap(), 1);
    let sends = outputs(&mut run, T0)
        .iter()
        .filter(|out| out["type"] == "send")
        .count();
    assert_eq!(sends, 1);
}

#[wasm_bindgen_test]
fn errors_reach_js_with_the_core_message() {
    let err = ShadowRun::new("foo,bar\n1,2\n", js(&config()), T0)
        .err()
        .unwrap();
    let message = js_sys::Error::from(JsValue::from(err)).message();
    let message = String::from(message);
    assert!(
        message.contains("image column") && message.contains("foo"),
        "{message}"
    );
    let bad_config = json!({"batchSize": 0, "provider": config()["provider"]});
    let err = ShadowRun::new("image,label\na.png,x\n", js(&bad_config), T0)
        .err()
        .unwrap();
    let message = String::from(js_sys::Error::from(JsValue::from(err)).message());
    assert!(message.contains("batchSize is 0"), "{message}");
    assert!(check_relative_path("../x.png").is_err());
    assert_eq!(
        check_relative_path("images/./a.png").unwrap(),
        "images/a.png"
    );
}

#[wasm_bindgen_test]
fn image_bytes_become_data_urls_by_their_magic() {
    let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
    assert!(image_data_url(&png)
        .unwrap()
        .starts_with("data:image/png;base64,"));
    assert!(image_data_url(b"not an image").is_err());
}

#[wasm_bindgen_test]
fn default_config_is_the_cores_default_as_the_page_reads_it() {
    let js_config = default_config().unwrap();
    // The page reads camelCase fields and sends the object back as a RunConfig.
    let back: RunConfig = serde_wasm_bindgen::from_value(js_config.clone()).unwrap();
    assert_eq!(back, RunConfig::default());
    let fields = value(js_config);
    let defaults = RunConfig::default();
    assert_eq!(fields["batchSize"], defaults.batch_size);
    assert_eq!(fields["requestTimeoutMs"], defaults.request_timeout_ms);
    assert_eq!(fields["provider"]["kind"], "openai");
    assert!(fields["provider"]["baseUrl"].is_string());
}

#[wasm_bindgen_test]
fn constants_are_the_cores() {
    let id = "2025-01-24T10-30-00-123Z";
    assert_eq!(file_stamp(1_737_714_600_123.0), id);
    assert_eq!(file_stamp(f64::NAN), "1970-01-01T00-00-00-000Z");
    assert_eq!(
        progress_file_name(id),
        shadow_core::run_files::progress_file_name(id)
    );
    assert_eq!(
        summary_file_name(id),
        shadow_core::run_files::summary_file_name(id)
    );
    assert_eq!(
        results_file_name(id),
        shadow_core::run_files::results_file_name(id)
    );
    assert_eq!(
        report_file_name(id),
        shadow_core::run_files::report_file_name(id)
    );
    assert_eq!(format_duration(3_903_999.7), "1h 5m 3s");
    assert_eq!(format_duration(-5.0), "0s");
    assert_eq!(percent(48, 50), "96.00%");
    assert_eq!(percent(0, 0), "0.00%");
    assert_eq!(mock_model(), shadow_core::provider::MOCK_MODEL);
}

#[wasm_bindgen_test]
fn a_key_the_endpoint_echoes_is_redacted_from_every_output() {
    const KEY: &str = "sk-canary-page-4b1e9f";
    let csv = "image,label\nhttps://x.test/a.png,cat\nhttps://x.test/b.png,dog\n";
    let mut run = ShadowRun::new(csv, js(&config()), T0).unwrap();
    run.hide_secret(KEY);
    let sends = outputs(&mut run, T0);
    let bodies = [
        completion(KEY),
        json!({"error": {"message": format!("Incorrect API key provided: Bearer {KEY}")}})
            .to_string(),
    ];
    let mut everything = String::new();
    for (s, (status, body)) in sends.iter().zip([(200, &bodies[0]), (401, &bodies[1])]) {
        let input = json!({"type": "response", "ticket": s["ticket"],
            "response": {"status": status, "headers": [], "body": body}});
        run.handle(T0 + 100.0, js(&input)).unwrap();
        for out in outputs(&mut run, T0 + 100.0) {
            everything += &out.to_string();
        }
    }
    assert!(everything.contains("finished"), "{everything}");
    assert!(everything.contains("[REDACTED]"), "{everything}");
    assert!(!everything.contains(&KEY[..8]), "{everything}");
}

#[wasm_bindgen_test]
fn counts_and_pace_say_retries_429s_and_the_rate_followed() {
    let csv = "image,label\nhttps://x.test/a.png,cat\nhttps://x.test/b.png,dog\n";
    let mut run = ShadowRun::new(csv, js(&config()), T0).unwrap();
    let pace = value(run.pace(T0).unwrap());
    assert_eq!(pace["source"], Value::Null);
    assert_eq!(pace["inFlightLimit"], 4);
    let sends = outputs(&mut run, T0);
    let limited = json!({"type": "response", "ticket": sends[0]["ticket"], "response": {"status": 429,
        "headers": [["retry-after-ms", "300"], ["x-ratelimit-limit-requests", "120"]], "body": "{}"}});
    run.handle(T0 + 10.0, js(&limited)).unwrap();
    while !run.poll(T0 + 10.0).unwrap().is_null() {}
    let pace = value(run.pace(T0 + 10.0).unwrap());
    assert_eq!(pace["source"], "endpointHeaders");
    assert_eq!(pace["requestsPerMinute"], 120);
    assert_eq!(pace["coolingDownUntil"], T0 as u64 + 310);
    // The page's live line: the core's words, as the CLI's progress bar has them.
    let line = run.describe_pace(T0 + 10.0);
    assert!(
        line.starts_with("pace: 120/min from the endpoint, up to "),
        "{line}"
    );
    // The retry goes out once the cool-down is over.
    let retry = loop {
        let out = value(run.poll(T0 + 1_000.0).unwrap());
        if out["type"] == "send" {
            break out;
        }
    };
    assert_eq!(retry["attempt"], 2);
    let counts = value(run.counts().unwrap());
    assert_eq!(
        (counts["retries"].clone(), counts["rateLimitHits"].clone()),
        (json!(1), json!(1))
    );
}

#[wasm_bindgen_test]
fn a_journal_is_folded_for_resume_and_failed_rows_dropped_for_a_retry() {
    let line = |row: usize, status: &str| {
        let mut v = json!({"row": row, "line": row + 2, "image": format!("https://x.test/{row}.png"), "label": "cat",
            "status": status, "attempts": 1, "finishedAt": "2025-01-24T10:30:00.000Z"});
        if status == "success" {
            v["prediction"] = json!("cat");
            v["agreement"] = json!(true);
        } else {
            v["error"] = json!("HTTP 500");
        }
        format!("{v}\n")
    };
    // Row 1 failed, then succeeded in a later session; row 2 failed; a torn tail.
    let journal = [
        line(0, "success"),
        line(1, "failed"),
        line(2, "failed"),
        line(1, "success"),
    ]
    .concat()
        + "{\"row\":3";
    let rows = |text: &str| -> Vec<(u64, String)> {
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| {
                (
                    v["row"].as_u64().unwrap(),
                    v["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let kept = prepare_journal(&journal, false);
    assert_eq!(
        rows(&kept),
        [
            (0, "success".into()),
            (1, "success".into()),
            (2, "failed".into())
        ]
    );
    assert!(kept.ends_with('\n'));
    let retry = prepare_journal(&journal, true);
    assert_eq!(rows(&retry), [(0, "success".into()), (1, "success".into())]);
}

#[wasm_bindgen_test]
fn a_csv_is_inspected_for_the_check_before_a_run() {
    let csv = "image,label\nimages/a.png,cat\nhttps://x.test/b.png,dog\n/abs/c.png,cat\n,dog\nimages/d.png,dog\n";
    let seen = value(inspect_csv(csv, JsValue::UNDEFINED, JsValue::UNDEFINED).unwrap());
    assert_eq!(seen["rows"], 5);
    assert_eq!(seen["labels"], json!(["cat", "dog"]));
    assert_eq!(seen["urls"], 1);
    assert_eq!(seen["absolute"], 1);
    assert_eq!(seen["defective"], 1);
    assert_eq!(
        seen["relative"],
        json!([[0, "images/a.png"], [4, "images/d.png"]])
    );
    let named = js(&json!({"imageColumn": "pic", "labelColumn": "truth"}));
    let seen = value(inspect_csv("truth,pic\ncat,a.png\n", named, JsValue::UNDEFINED).unwrap());
    assert_eq!(seen["relative"], json!([[0, "a.png"]]));
    let err = inspect_csv("foo,bar\n1,2\n", JsValue::UNDEFINED, JsValue::UNDEFINED)
        .err()
        .unwrap();
    let message = String::from(js_sys::Error::from(JsValue::from(err)).message());
    assert!(message.contains("image column"), "{message}");
}

#[wasm_bindgen_test]
fn the_key_goes_in_the_header_the_provider_names() {
    let csv = "image,label\nhttps://x.test/a.png,cat\nhttps://x.test/b.png,dog\n";
    for (provider, header, sent) in [
        (
            json!({ "kind": "openai", "baseUrl": "http://127.0.0.1:8787/v1", "model": "m", "detail": "low" }),
            "authorization",
            "Bearer k-1",
        ),
        (
            json!({ "kind": "anthropic", "baseUrl": "http://127.0.0.1:8787", "model": "claude-x" }),
            "x-api-key",
            "k-1",
        ),
        (
            json!({ "kind": "gemini", "baseUrl": "http://127.0.0.1:8787/v1beta", "model": "gemini-x" }),
            "x-goog-api-key",
            "k-1",
        ),
        (
            json!({ "kind": "azure", "baseUrl": "https://r.openai.azure.com", "deployment": "d", "detail": "low" }),
            "api-key",
            "k-1",
        ),
    ] {
        let mut cfg = config();
        cfg["provider"] = provider.clone();
        cfg["providerLabel"] = provider["kind"].clone();
        let run = ShadowRun::new(csv, js(&cfg), T0).unwrap();
        assert_eq!(
            value(run.credential_header("k-1").unwrap()),
            json!([header, sent]),
            "{provider}"
        );
        let request = value(
            run.request(0, 1, "data:image/png;base64,AAAA", None, None)
                .unwrap(),
        );
        let headers = request["headers"].as_array().unwrap();
        assert!(
            headers
                .iter()
                .all(|h| h[0] != header && !h[1].as_str().unwrap().contains("k-1")),
            "{provider}: the request carries no key"
        );
    }
}

#[wasm_bindgen_test]
fn a_send_order_names_the_answers_form_and_the_request_follows_it() {
    let csv = "image,label\nhttps://x.test/a.png,cat\nhttps://x.test/b.png,dog\n";
    let mut run = ShadowRun::new(csv, js(&config()), T0).unwrap();
    let order = value(run.poll(T0).unwrap());
    assert_eq!(order["type"], "send");
    assert_eq!(order["format"], "jsonSchema");
    let body = |format: Option<&str>| -> Value {
        let request = value(
            run.request(
                0,
                1,
                "https://x.test/a.png",
                format.map(str::to_owned),
                None,
            )
            .unwrap(),
        );
        serde_json::from_str(request["body"].as_str().unwrap()).unwrap()
    };
    assert_eq!(body(None)["response_format"]["type"], "json_schema");
    assert_eq!(
        body(Some("jsonObject"))["response_format"]["type"],
        "json_object"
    );
    assert!(body(Some("text")).get("response_format").is_none());
    assert!(run
        .request(0, 1, "https://x.test/a.png", Some("yaml".into()), None)
        .is_err());
}

#[wasm_bindgen_test]
fn each_providers_defaults_and_browser_access_come_from_the_core() {
    use shadow_core::provider::defaults;
    let openai = value(default_provider("openai").unwrap());
    assert_eq!(
        openai,
        serde_json::to_value(RunConfig::default().provider).unwrap()
    );
    let anthropic = value(default_provider("anthropic").unwrap());
    assert_eq!(anthropic["kind"], "anthropic");
    assert_eq!(anthropic["baseUrl"], defaults::ANTHROPIC_BASE_URL);
    assert_eq!(anthropic["model"], defaults::ANTHROPIC_MODEL);
    let gemini = value(default_provider("gemini").unwrap());
    assert_eq!(gemini["baseUrl"], defaults::GEMINI_BASE_URL);
    assert_eq!(gemini["model"], defaults::GEMINI_MODEL);
    let azure = value(default_provider("azure").unwrap());
    assert_eq!(
        (&azure["baseUrl"], &azure["deployment"]),
        (&json!(""), &json!(""))
    );
    assert!(default_provider("mock").unwrap().is_undefined());
    assert!(default_provider("bogus").is_err());

    // The public APIs: allowed (Anthropic with its opt-in header), Azure refused.
    let access = |provider: &Value| value(browser_access(js(provider)).unwrap());
    assert_eq!(access(&openai)["cors"], "allowed");
    assert_eq!(
        access(&anthropic),
        json!({"cors": "allowed", "host": "api.anthropic.com",
               "headers": [["anthropic-dangerous-direct-browser-access", "true"]]})
    );
    assert_eq!(access(&gemini)["cors"], "allowed");
    let mut resource = azure.clone();
    resource["baseUrl"] = json!("https://res.openai.azure.com");
    assert_eq!(access(&resource)["cors"], "refused");
    resource["baseUrl"] = json!("http://127.0.0.1:8787");
    assert_eq!(access(&resource)["cors"], "unknown");

    // A run says the same of its endpoint, and where its requests go.
    let csv = "image,label\nhttps://x.test/a.png,cat\nhttps://x.test/b.png,dog\n";
    let mut cfg = config();
    cfg["provider"] = anthropic.clone();
    cfg["providerLabel"] = json!("anthropic");
    let run = ShadowRun::new(csv, js(&cfg), T0).unwrap();
    assert_eq!(value(run.browser_access().unwrap()), access(&anthropic));
    assert_eq!(run.endpoint_url(), "https://api.anthropic.com/v1/messages");
    // Requests to Google's API carry no header its CORS preflight refuses.
    cfg["provider"] = gemini.clone();
    cfg["providerLabel"] = json!("gemini");
    let run = ShadowRun::new(csv, js(&cfg), T0).unwrap();
    let request = value(
        run.request(0, 2, "https://x.test/a.png", None, None)
            .unwrap(),
    );
    assert_eq!(
        request["headers"],
        json!([["content-type", "application/json"]])
    );
}

/// A batch-API run's settings never start a run in the page: driven live, the
/// rows its provider batches may still hold would be sent (and paid) again.
#[wasm_bindgen_test]
fn a_batch_api_runs_settings_are_refused() {
    let csv = "image,label\nhttps://x.test/a.png,cat\n";
    let mut settings = config();
    settings["batchApi"] =
        json!({"maxLines": 100, "maxBytes": 100000, "pollMinMs": 100, "pollMaxMs": 100});
    let Err(e) = ShadowRun::new(csv, js(&settings), T0) else {
        panic!("a batch-API run was taken");
    };
    let message = String::from(js_sys::Error::from(JsValue::from(e)).message());
    assert!(
        message.contains("batch API") && message.contains("--resume"),
        "{message}"
    );
    assert!(ShadowRun::new(csv, js(&config()), T0).is_ok());
}

#[wasm_bindgen_test]
fn the_html_report_is_the_cores_of_the_files_the_page_holds() {
    let line = json!({"row": 0, "line": 2, "image": "images/0.png", "label": "cat",
        "prediction": "dog", "agreement": false, "status": "success", "attempts": 1,
        "latencyMs": 5, "finishedAt": "2025-01-24T10:30:00.000Z"})
    .to_string()
        + "\n";
    let html = report_html(None, None, Some(line.clone()), Some("r1".into())).unwrap();
    let want = shadow_core::explorer::html::page_report(
        None,
        None,
        Some(line.as_bytes()),
        Some("r1".into()),
    )
    .unwrap();
    assert_eq!(html, want);
    assert!(html.contains("<title>shadow-batch report — run r1</title>"));
    assert!(report_html(Some("not json".into()), None, None, None).is_err());
}

/// A results journal of `answers` over labels `i % 2` (`cat`, `dog`).
fn compare_journal(answers: &[Option<&str>]) -> String {
    answers
        .iter()
        .enumerate()
        .map(|(row, answer)| {
            let label = ["cat", "dog"][row % 2];
            json!({"row": row, "line": row + 2, "image": format!("images/{row}.png"), "label": label,
                "prediction": answer, "agreement": answer.map(|a| a == label),
                "status": if answer.is_some() { "success" } else { "failed" }, "attempts": 1,
                "latencyMs": 5, "error": if answer.is_some() { None } else { Some("HTTP 500") },
                "finishedAt": "2025-01-24T10:30:00.000Z"})
            .to_string()
                + "\n"
        })
        .collect()
}

/// `CompareRuns`: two runs' results pushed in chunks, paired, their rows read
/// again, the core's comparison out as a plain object; a mismatch said with
/// the counts and refused unless allowed; a run without rows refused.
#[wasm_bindgen_test]
fn two_runs_are_compared_through_plain_objects() {
    use shadow_wasm::CompareRuns;
    let a = compare_journal(&[Some("cat"), Some("cat"), Some("dog"), None]);
    let b = compare_journal(&[Some("cat"), Some("dog"), Some("cat"), Some("dog")]);
    let mut c = CompareRuns::new(None, None, None, None).unwrap();
    for chunk in a.as_bytes().chunks(7) {
        c.push_a(chunk);
    }
    c.push_b(b.as_bytes());
    assert_eq!(c.pair().unwrap(), None);
    assert!(c.wants_rows());
    c.push_rows(a.as_bytes());
    let v = value(c.finish(false).unwrap());
    // Labels cat, dog, cat, dog: row 0 both right, rows 1 and 2 only B right,
    // row 3 only A failed.
    assert_eq!(v["table"]["bothRight"]["count"], 1);
    assert_eq!(v["table"]["onlyBRight"]["rows"], json!([1, 2]));
    assert_eq!(v["table"]["bothWrong"]["count"], 0);
    assert_eq!(v["table"]["onlyAFailed"]["count"], 1);
    let row1 = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["row"] == 1)
        .unwrap();
    assert_eq!(
        (&row1["a"], &row1["b"], &row1["cell"]),
        (&json!("cat"), &json!("dog"), &json!("onlyBRight"))
    );

    // B over a CSV of two rows fewer.
    let short = compare_journal(&[Some("cat"), Some("dog")]);
    let total =
        |n: u64| Some(json!({"overallProgress": {"total": n}, "allReports": []}).to_string());
    let paired = |allow: bool| {
        let mut c = CompareRuns::new(None, total(4), None, total(2)).unwrap();
        c.push_a(a.as_bytes());
        c.push_b(short.as_bytes());
        let why = c.pair().unwrap().unwrap();
        (why, c.finish(allow).map(value))
    };
    let (why, refused) = paired(false);
    assert!(why.contains("2 rows match"), "{why}");
    assert!(refused.is_err());
    let (_, allowed) = paired(true);
    assert_eq!(allowed.ok().unwrap()["matching"]["onlyInA"], 2);

    let mut empty = CompareRuns::new(None, None, None, None).unwrap();
    empty.push_a(a.as_bytes());
    assert!(empty.pair().is_err(), "B has no rows");
    assert!(CompareRuns::new(Some("[]".into()), None, None, None).is_err());
}
