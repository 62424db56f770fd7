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

/// What the server sends on `stream` until it closes it (a reset counts as closed).
async fn until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer));
    match read.await.expect("the server closed the connection") {
        Ok(_) => answer,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => answer,
        Err(e) => panic!("reading: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_listener_caps_its_connections_and_closes_the_ones_that_send_no_request() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let dir = tempfile::tempdir().unwrap();
    let stderr = Porthole::refused("serve", dir.path(), &["--read-timeout", "0s"]);
    assert!(stderr.contains("must be more than 0s"), "{stderr}");
    let porthole = Porthole::start(
        "serve",
        dir.path(),
        &["--max-connections", "3", "--read-timeout", "2s"],
        &[],
    )
    .await;
    let listeners = [
        ("otlp_grpc", porthole.otlp_grpc, &b"PRI * HTTP/2.0\r\n"[..]),
        (
            "otlp_http",
            porthole.otlp_http,
            b"POST /v1/logs HTTP/1.1\r\nHost: x\r\n",
        ),
        (
            "http",
            porthole.http,
            b"GET /api/v1/services HTTP/1.1\r\nHost: x\r\n",
        ),
    ];
    for (listener, addr, opening) in listeners {
        // Three connections fill the listener: two say nothing, one starts a request (the
        // HTTP/2 preface, a request head) and never finishes it.
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        let _ = held[2].write_all(opening).await; // refused instead, in the race below
        let mut fourth = TcpStream::connect(addr).await.unwrap();
        assert!(until_closed(&mut fourth).await.is_empty(), "{listener}");
        // The server closes all three once --read-timeout has passed (an HTTP/2 server
        // sends its settings first, so the gRPC ones may have read those).
        for stream in &mut held {
            until_closed(stream).await;
        }
        let label = format!("listener=\"{listener}\"");
        let refused = porthole
            .counter("porthole_connections_refused_total", &[&label])
            .await;
        let timed_out = porthole
            .counter("porthole_connections_timed_out_total", &[&label])
            .await;
        if listener == "http" {
            // A connection that read /metrics a moment ago may still hold a place here
            // (the server sees it close a moment after the client), so one of the three
            // may have been refused instead: each of the four is one or the other.
            assert!(refused >= 1.0, "{listener}: {refused}");
            assert_eq!(
                refused + timed_out,
                4.0,
                "{listener}: {refused} {timed_out}"
            );
        } else {
            assert_eq!((refused, timed_out), (1.0, 3.0), "{listener}");
        }
    }
    // No connection is left but the one reading /metrics (the server sees the earlier
    // readers' connections close a moment after they do).
    crate::harness::wait_for("one connection open", Duration::from_secs(10), || async {
        (porthole.counter("porthole_connections_open", &[]).await == 1.0).then_some(())
    })
    .await;

    // A request head past 32 KiB gets 431; the listeners serve whole requests as before.
    let response = reqwest::Client::new()
        .get(porthole.url("/api/v1/services"))
        .header("x-padding", "a".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 431);
    let mut client = LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap();
    client
        .export(export_request(&bodies("after-grpc", 3)))
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .post(porthole.otlp_http_url("/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .body(export_request(&bodies("after-http", 3)).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let stored = stored_bodies(dir.path().to_str().unwrap(), &[]);
    assert_eq!(stored.len(), 6, "{stored:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_whose_body_stalls_is_cut_at_the_read_timeout_and_frees_its_slot() {
    use porthole_proto::logs_service::{ExportLogsServiceRequest, ExportLogsServiceResponse};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start(
        "serve",
        dir.path(),
        &["--max-inflight-requests", "2", "--read-timeout", "2s"],
        &[],
    )
    .await;
    // Two exports take both in-flight slots and send a few bytes of their bodies: one over
    // HTTP, one over gRPC (its body never ends).
    let mut http = tokio::net::TcpStream::connect(porthole.otlp_http)
        .await
        .unwrap();
    http.write_all(
        b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
          Content-Length: 1000\r\n\r\n\x0a\x05",
    )
    .await
    .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(porthole.grpc_endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let stalled = tokio::spawn(async move {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        let codec =
            tonic_prost::ProstCodec::<ExportLogsServiceRequest, ExportLogsServiceResponse>::default(
            );
        let path = http::uri::PathAndQuery::from_static(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        );
        let body = futures::stream::pending::<ExportLogsServiceRequest>();
        grpc.client_streaming(tonic::Request::new(body), path, codec)
            .await
            .unwrap_err()
    });
    let export = || async {
        reqwest::Client::new()
            .post(porthole.otlp_http_url("/v1/logs"))
            .header("content-type", "application/x-protobuf")
            .body(export_request(&bodies("prompt", 2)).encode_to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    crate::harness::wait_for("both slots taken", Duration::from_secs(10), || async {
        (export().await == 503).then_some(())
    })
    .await;

    // --read-timeout later both are cut off: 408 over HTTP, DEADLINE_EXCEEDED over gRPC.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut chunk = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match http.read(&mut chunk).await.unwrap() {
                0 => break,
                n => answer.extend_from_slice(&chunk[..n]),
            }
        }
    });
    read.await.expect("the stalled HTTP export is answered");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let status = tokio::time::timeout(Duration::from_secs(30), stalled)
        .await
        .expect("the stalled gRPC export is answered")
        .unwrap();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("did not arrive within 2s"),
        "{status:?}"
    );
    assert_eq!(
        porthole
            .counter(
                "porthole_ingest_requests_rejected_total",
                &["reason=\"timed_out\""]
            )
            .await,
        2.0
    );
    // The slots are free again.
    assert_eq!(export().await, 200);
}

/// Over gRPC, plain and gzip: 100 000 empty records (400 KB on the wire, ~38 MB decoded)
/// are refused RESOURCE_EXHAUSTED with a message naming the budget's setting (`setting`),
/// and 10 000 of them fit.
pub(crate) async fn decode_budget_refuses_the_flood_over_grpc(endpoint: String, setting: &str) {
    let flood = crate::load::empty_log_records(100_000);
    for compression in [None, Some(tonic::codec::CompressionEncoding::Gzip)] {
        let mut client = LogsServiceClient::connect(endpoint.clone()).await.unwrap();
        if let Some(encoding) = compression {
            client = client.send_compressed(encoding);
        }
        let status = client.export(flood.clone()).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains(setting), "{status:?}");
        client
            .export(crate::load::empty_log_records(10_000))
            .await
            .unwrap();
    }
}

/// An export of many tiny messages takes hundreds of times its wire size once decoded: its
/// estimate is reserved from --max-decode-bytes before decoding, and one that alone would
/// pass it is refused on both protocols, compressed or not, before any decoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_that_would_decode_past_the_budget_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start(
        "serve",
        dir.path(),
        &["--max-decode-bytes", "16MiB", "--batch-window", "50ms"],
        &[],
    )
    .await;
    // 100 000 records: 400 KB on the wire, about 38 MB decoded.
    let flood = crate::load::empty_log_records(100_000);
    assert!(flood.encoded_len() < 500_000);
    let response = reqwest::Client::new()
        .post(porthole.otlp_http_url("/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .body(flood.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    decode_budget_refuses_the_flood_over_grpc(porthole.grpc_endpoint(), "--max-decode-bytes").await;
    assert_eq!(
        porthole
            .counter(
                "porthole_ingest_requests_rejected_total",
                &["reason=\"too_large\""]
            )
            .await,
        3.0
    );
    crate::harness::wait_for("20 000 records stored", Duration::from_secs(30), || async {
        let sql = serde_json::json!({"sql": "SELECT count(*) AS n FROM logs"});
        let response = reqwest::Client::new()
            .post(porthole.url("/api/v1/sql"))
            .json(&sql)
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = response.json().await.ok()?;
        (body["rows"][0]["n"] == 20_000).then_some(())
    })
    .await;
    // What was admitted has been converted: none waits for a core now.
    let metrics = porthole.metrics().await;
    assert!(
        metrics.contains("\nporthole_export_work_waiting 0\n")
            && metrics.contains("\nporthole_export_work_wait_seconds_total "),
        "{metrics}"
    );
}
