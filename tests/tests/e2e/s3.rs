//! The same promises on a real S3-compatible server (s3s-fs): the SDK round trip, and an
//! outage mid-load that senders see as UNAVAILABLE and that loses nothing acked.

use std::time::Duration;

use crate::harness::{Porthole, S3Server, run_python, wait_for};
use crate::load::{Load, assert_all_acked_present, stored_bodies};

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_roundtrip_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&dir.path().join("s3"), "telemetry").await;
    let env = s3.env();
    let porthole = Porthole::start(
        "serve",
        &dir.path().join("unused"),
        &[
            "--storage",
            "s3://telemetry/prod",
            "--batch-window",
            "200ms",
        ],
        &env_refs(&env),
    )
    .await;
    let args = [
        "--protocol",
        "grpc",
        "--endpoint",
        &porthole.grpc_endpoint(),
        "--table-root",
        "s3://telemetry/prod",
    ]
    .map(String::from);
    let out = run_python("roundtrip.py", &args, &env);
    assert!(out.contains("\"ok\": true"), "{out}");
    assert!(
        dir.path()
            .join("s3/telemetry/prod/logs/_delta_log")
            .exists(),
        "tables are in the bucket"
    );
    assert!(
        !dir.path().join("unused/logs").exists(),
        "nothing went to the local data dir"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_outage_gives_unavailable_and_loses_nothing_acked() {
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = S3Server::start(&dir.path().join("s3"), "telemetry").await;
    let env = s3.env();
    let porthole = Porthole::start(
        "serve",
        &dir.path().join("unused"),
        &[
            "--storage",
            "s3://telemetry/outage",
            "--batch-window",
            "100ms",
            "--write-timeout",
            "5s",
        ],
        &env_refs(&env),
    )
    .await;
    let load = Load::start(&[porthole.grpc_endpoint()], 4, 20, "outage");
    wait_for(
        "acks before the outage",
        Duration::from_secs(60),
        || async { (load.acked().await >= 500).then_some(()) },
    )
    .await;
    s3.stop();
    wait_for(
        "UNAVAILABLE during the outage",
        Duration::from_secs(60),
        || async { (load.failures("Unavailable").await >= 3).then_some(()) },
    )
    .await;
    let not_ready = reqwest::get(porthole.url("/readyz"))
        .await
        .unwrap()
        .status();
    assert_eq!(not_ready.as_u16(), 503, "readyz reports the outage");
    let acked_during_outage = load.acked().await;
    s3.resume().await;
    wait_for("acks after the outage", Duration::from_secs(90), || async {
        (load.acked().await >= acked_during_outage + 500).then_some(())
    })
    .await;
    let outcome = load.finish().await;
    assert!(
        porthole
            .counter(
                "porthole_ingest_requests_rejected_total",
                &["reason=\"storage_unavailable\""]
            )
            .await
            >= 3.0
    );
    let stored = stored_bodies("s3://telemetry/outage", &env);
    assert_all_acked_present(&outcome, &stored);
    eprintln!(
        "outage: {} acked, failures {:?}",
        outcome.acked.len(),
        outcome.failures
    );
}
