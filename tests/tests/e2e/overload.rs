//! Bounded memory: past the buffer or in-flight limits, exports are refused at once with
//! UNAVAILABLE (gRPC) / 503 + Retry-After (HTTP), counted, and the accepted ones still land.

use std::time::Duration;

use porthole_proto::logs_service::logs_service_client::LogsServiceClient;
use prost::Message;

use crate::harness::Porthole;
use crate::load::{export_request, spawn_export, stored_bodies};

fn bodies(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix}-{i}-{}", "x".repeat(500)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_buffer_refuses_with_unavailable_and_keeps_what_it_took() {
    let dir = tempfile::tempdir().unwrap();
    // The buffer holds two exports' rows (measured the way the server measures), not three.
    let rows = porthole_storage::convert_logs(&export_request(&bodies("size", 250)), 0)
        .batch
        .get_array_memory_size();
    let buffer = format!("{}", rows * 5 / 2);
    let mut porthole = Porthole::start(
        "serve",
        dir.path(),
        &["--batch-window", "30s", "--max-buffer-bytes", &buffer],
        &[],
    )
    .await;
    let endpoint = porthole.grpc_endpoint();
    let waiting: Vec<_> = (0..2)
        .map(|i| spawn_export(&endpoint, bodies(&format!("kept{i}"), 250)))
        .collect();
    porthole
        .wait_buffered("two exports buffered", 2 * rows)
        .await;
    let mut client = LogsServiceClient::connect(endpoint).await.unwrap();
    let status = client
        .export(export_request(&bodies("refused", 250)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let response = reqwest::Client::new()
        .post(porthole.otlp_http_url("/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .body(export_request(&bodies("refused-http", 250)).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        porthole
            .counter(
                "porthole_ingest_requests_rejected_total",
                &["reason=\"overloaded\""]
            )
            .await,
        2.0
    );

    assert!(porthole.terminate().success());
    for export in waiting {
        export
            .await
            .unwrap()
            .expect("buffered exports are acked at shutdown");
    }
    let stored = stored_bodies(dir.path().to_str().unwrap(), &[]);
    assert_eq!(stored.keys().filter(|b| b.starts_with("kept")).count(), 500);
    assert!(!stored.keys().any(|b| b.starts_with("refused")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_past_the_inflight_limit_are_refused_before_their_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start(
        "serve",
        dir.path(),
        &["--batch-window", "30s", "--max-inflight-requests", "2"],
        &[],
    )
    .await;
    let endpoint = porthole.grpc_endpoint();
    let _waiting: Vec<_> = (0..2)
        .map(|i| spawn_export(&endpoint, vec![format!("slot{i}")]))
        .collect();
    porthole.wait_buffered("two exports in flight", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = LogsServiceClient::connect(endpoint)
        .await
        .unwrap()
        .export(export_request(&["third".to_string()]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        porthole
            .counter(
                "porthole_ingest_requests_rejected_total",
                &["reason=\"overloaded\""]
            )
            .await
            >= 1.0
    );
}
