//! The OpenTelemetry Python SDK sends logs, spans and metrics; the Python `deltalake`
//! reader finds every record intact.

use crate::harness::{Porthole, run_python};

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_roundtrip_over_grpc_and_http() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "200ms"], &[]).await;
    let root = dir.path().to_str().unwrap().to_string();
    for (protocol, endpoint) in [
        ("grpc", porthole.grpc_endpoint()),
        ("http", format!("http://{}", porthole.otlp_http)),
    ] {
        let args = [
            "--protocol",
            protocol,
            "--endpoint",
            &endpoint,
            "--table-root",
            &root,
        ]
        .map(String::from);
        let out = run_python("roundtrip.py", &args, &[]);
        assert!(out.contains("\"ok\": true"), "{out}");
    }
    let accepted = porthole
        .counter(
            "porthole_ingest_records_accepted_total",
            &["signal=\"logs\""],
        )
        .await;
    assert_eq!(accepted, 40.0, "20 log records per protocol");
    assert!(
        porthole
            .counter("porthole_ingest_files_written_total", &["signal=\"spans\""])
            .await
            >= 2.0
    );
}
