//! Ack means durable: kill -9 mid-load, SIGTERM with exports in flight, two writers.

use std::time::Duration;

use porthole_proto::control::PollRequest;
use porthole_proto::control::control_client::ControlClient;
use porthole_proto::logs_service::logs_service_client::LogsServiceClient;

use crate::harness::{Porthole, wait_for};
use crate::load::{Load, assert_all_acked_present, export_request, spawn_export, stored_bodies};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acked_record_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut porthole =
        Porthole::start("serve", dir.path(), &["--batch-window", "100ms"], &[]).await;
    let load = Load::start(&[porthole.grpc_endpoint()], 6, 50, "kill9");
    wait_for("some acked exports", Duration::from_secs(60), || async {
        (load.acked().await >= 2_000).then_some(())
    })
    .await;
    // Exports are in flight and batches half-written when the process dies.
    porthole.kill9();
    let outcome = load.finish().await;
    assert!(outcome.acked.len() >= 2_000);

    // A restart on the same directory comes up and takes writes: no crash loop on leftovers.
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "100ms"], &[]).await;
    let mut client = LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap();
    client
        .export(export_request(&["after-restart".to_string()]))
        .await
        .expect("export after restart");

    let stored = stored_bodies(dir.path().to_str().unwrap(), &[]);
    let duplicates = assert_all_acked_present(&outcome, &stored);
    assert!(stored.contains_key("after-restart"));
    eprintln!(
        "kill -9: {} acked, {} stored, {duplicates} duplicates, failures {:?}",
        outcome.acked.len(),
        stored.len(),
        outcome.failures
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_commits_and_acks_what_is_buffered_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    // A long window: exports wait in the buffer until shutdown forces the write.
    let mut porthole = Porthole::start("serve", dir.path(), &["--batch-window", "60s"], &[]).await;
    let endpoint = porthole.grpc_endpoint();
    let exports: Vec<_> = (0..4)
        .map(|i| spawn_export(&endpoint, vec![format!("buffered-{i}")]))
        .collect();
    // Each export's rows take the same room in the buffer; wait until all four are in.
    let one = porthole_storage::convert_logs(&export_request(&["buffered-0".to_string()]), 0)
        .batch
        .get_array_memory_size();
    porthole.wait_buffered("4 exports buffered", 4 * one).await;
    let status = porthole.terminate();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        porthole.output()
    );
    for export in exports {
        export
            .await
            .unwrap()
            .expect("in-flight export acked during shutdown");
    }
    let stored = stored_bodies(dir.path().to_str().unwrap(), &[]);
    for i in 0..4 {
        assert_eq!(stored.get(&format!("buffered-{i}")), Some(&1), "{stored:?}");
    }
}

/// Open streams do not hold shutdown: with a live tail open on the API and a collector's
/// 25 s control poll waiting on the gRPC port, SIGTERM still commits and acks what is
/// buffered and exits 0 well inside Kubernetes' 30 s grace period; the tail ends with a
/// `dropped` event saying why, and the poll returns empty at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_ends_live_tails_and_collector_polls_and_exits_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let mut porthole = Porthole::start("serve", dir.path(), &["--batch-window", "60s"], &[]).await;
    let tail = reqwest::get(porthole.url("/api/v1/logs/tail?q=anything"))
        .await
        .unwrap();
    assert_eq!(tail.status(), 200);
    let endpoint = porthole.grpc_endpoint();
    let poll = tokio::spawn({
        let endpoint = endpoint.clone();
        async move {
            let mut control = ControlClient::connect(endpoint).await.unwrap();
            control
                .poll(PollRequest {
                    namespace: "shop".into(),
                    pod: "cart-0".into(),
                    wait_ms: 25_000,
                })
                .await
        }
    });
    let export = spawn_export(&endpoint, vec!["buffered-with-streams-open".to_string()]);
    porthole.wait_buffered("the export buffered", 1).await;
    let status = porthole.terminate_within(Duration::from_secs(15));
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        porthole.output()
    );
    export.await.unwrap().expect("the buffered export acked");
    let answer = poll.await.unwrap().expect("the poll answered, not cut off");
    assert_eq!(answer.into_inner().kind, "", "no snapshot was asked for");
    let events = tail.text().await.unwrap();
    assert!(
        events.contains("event: dropped") && events.contains("the server is shutting down"),
        "{events}"
    );
    let stored = stored_bodies(dir.path().to_str().unwrap(), &[]);
    assert_eq!(
        stored.get("buffered-with-streams-open"),
        Some(&1),
        "{stored:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_ingest_processes_on_one_root_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = Porthole::start("ingest", dir.path(), &["--batch-window", "50ms"], &[]).await;
    let b = Porthole::start("ingest", dir.path(), &["--batch-window", "50ms"], &[]).await;
    let load = Load::start(&[a.grpc_endpoint(), b.grpc_endpoint()], 3, 20, "writers");
    wait_for(
        "both writers committing",
        Duration::from_secs(90),
        || async { (load.acked().await >= 3_000).then_some(()) },
    )
    .await;
    let outcome = load.finish().await;
    assert!(
        outcome.failures.is_empty(),
        "failures with both writers up: {:?}",
        outcome.failures
    );

    let stored = stored_bodies(dir.path().to_str().unwrap(), &[]);
    assert_eq!(
        assert_all_acked_present(&outcome, &stored),
        0,
        "no retries were made, so no duplicates"
    );
    // The log is a gap-free sequence of versions, and both processes wrote into it.
    let log = dir.path().join("logs/_delta_log");
    let mut versions: Vec<u64> = std::fs::read_dir(&log)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect();
    versions.sort();
    assert_eq!(
        versions,
        (0..versions.len() as u64).collect::<Vec<_>>(),
        "gaps in the Delta log"
    );
    assert!(
        versions.len() > 4,
        "expected many commits, got {}",
        versions.len()
    );
    let from_a = stored
        .keys()
        .filter(|k| k.starts_with("writers-0-"))
        .count();
    let from_b = stored
        .keys()
        .filter(|k| k.starts_with("writers-1-"))
        .count();
    assert!(
        from_a > 0 && from_b > 0,
        "a wrote {from_a}, b wrote {from_b}"
    );
}
