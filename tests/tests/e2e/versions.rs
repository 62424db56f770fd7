//! `GET /api/v1/versions`: each version of a service side by side, from logs and spans
//! sent over OTLP/HTTP.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Porthole, wait_for};

fn resource(version: &str, pod: &str) -> Value {
    let attr = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    json!({"attributes": [
        attr("service.name", "shop-api"), attr("service.version", version),
        attr("k8s.pod.name", pod), attr("k8s.namespace.name", "shop"),
    ]})
}

/// `severities` log records and one span per (duration ms, failed) from `version` on `pod`,
/// stamped `at` (unix ns) onwards.
async fn send(
    porthole: &Porthole,
    version: &str,
    pod: &str,
    at: u128,
    severities: &[&str],
    spans: &[(u64, bool)],
) {
    let client = reqwest::Client::new();
    let logs: Vec<Value> = severities
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"timeUnixNano": (at + i as u128).to_string(), "severityText": s, "body": {"stringValue": format!("{version} line {i}")}}))
        .collect();
    let body = json!({"resourceLogs": [{"resource": resource(version, pod), "scopeLogs": [{"logRecords": logs}]}]});
    let r = client
        .post(porthole.otlp_http_url("/v1/logs"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let spans: Vec<Value> = spans
        .iter()
        .enumerate()
        .map(|(i, (ms, failed))| {
            let start = at + i as u128 * 1000;
            json!({
                "traceId": format!("{:032x}", at + i as u128), "spanId": format!("{:016x}", i + 1),
                "name": "GET /cart", "kind": 2,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + *ms as u128 * 1_000_000).to_string(),
                "status": {"code": if *failed { 2 } else { 1 }},
            })
        })
        .collect();
    let body = json!({"resourceSpans": [{"resource": resource(version, pod), "scopeSpans": [{"spans": spans}]}]});
    let r = client
        .post(porthole.otlp_http_url("/v1/traces"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_of_a_service_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "100ms"], &[]).await;
    let t0: u128 = 1_750_000_000_000_000_000; // 2025-06-15T15:06:40Z
    let minute = 60_000_000_000u128;
    // v1 on two pods: quiet and fast. v2, deployed a minute later on one pod: 5 of its 10
    // lines are ERROR/FATAL and half its spans fail, the slowest taking 1 s.
    send(
        &porthole,
        "v1",
        "shop-api-a",
        t0,
        &["INFO"; 6],
        &[(10, false); 5],
    )
    .await;
    send(
        &porthole,
        "v1",
        "shop-api-b",
        t0 + 1000,
        &["INFO"; 4],
        &[(10, false); 5],
    )
    .await;
    let v2_logs = [
        "INFO", "ERROR", "INFO", "ERROR", "FATAL", "INFO", "ERROR", "INFO", "ERROR", "WARN",
    ];
    let v2_spans: Vec<(u64, bool)> = (1..=10).map(|i| (i * 100, i % 2 == 0)).collect();
    send(
        &porthole,
        "v2",
        "shop-api-c",
        t0 + minute,
        &v2_logs,
        &v2_spans,
    )
    .await;

    let url = porthole.url(
        "/api/v1/versions?service=shop-api&start=2025-06-15T15:00:00Z&end=2025-06-15T16:00:00Z",
    );
    let body: Value = wait_for(
        "both versions with their spans",
        Duration::from_secs(30),
        || {
            let url = url.clone();
            async move {
                let body: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
                let versions = body["versions"].as_array()?;
                (versions.len() == 2
                    && versions.iter().all(|v| v["spans"] == 10 && v["logs"] == 10))
                .then_some(body)
            }
        },
    )
    .await;
    let v = &body["versions"];
    assert_eq!(v[0]["version"], "v1", "oldest first: {body}");
    assert_eq!(v[0]["pods"], 2);
    assert_eq!(v[0]["error_logs"], 0);
    assert_eq!(v[0]["span_error_rate"], 0.0);
    assert_eq!(v[0]["p99_latency_seconds"], 0.01);
    assert_eq!(v[0]["first_seen"], "2025-06-15T15:06:40.000000000Z");
    assert_eq!(v[1]["version"], "v2");
    assert_eq!(v[1]["pods"], 1);
    assert_eq!(v[1]["error_logs"], 5, "ERROR and FATAL, not WARN");
    assert_eq!(v[1]["error_log_rate"], 5.0 / 3600.0);
    assert_eq!(v[1]["span_errors"], 5);
    assert_eq!(v[1]["span_error_rate"], 0.5);
    assert_eq!(v[1]["p99_latency_seconds"], 1.0);
    assert_eq!(v[1]["first_seen"], "2025-06-15T15:07:40.000000000Z");

    // Another service's name (quotes and all) finds nothing; no service is a 400.
    let other: Value = reqwest::get(porthole.url(
        "/api/v1/versions?service=o'brien&start=2025-06-15T15:00:00Z&end=2025-06-15T16:00:00Z",
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(other["versions"], json!([]), "{other}");
    let missing = reqwest::get(porthole.url("/api/v1/versions"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let text = missing.text().await.unwrap();
    assert!(text.contains("service"), "{text}");
}
