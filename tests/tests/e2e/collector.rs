//! `porthole-collector` against the real `porthole serve`, with real files: a writer
//! appends numbered lines at a steady rate while the test rotates the file both ways,
//! SIGKILLs the collector, takes ingest away for 30 s and corrupts the buffer. Every line
//! must then be in storage, once, or at most twice for a batch in flight at a SIGKILL.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Collector, Porthole, run_python, wait_for};

pub(crate) async fn sql(porthole: &Porthole, sql: &str) -> Vec<Value> {
    let response = reqwest::Client::new()
        .post(porthole.url("/api/v1/sql"))
        .json(&serde_json::json!({ "sql": sql }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{sql}: {body}");
    body["rows"].as_array().unwrap().clone()
}

/// Appends `seq N` lines to `dir/app.log`; `rotate` runs under the same lock, as an
/// application that reopens its log on SIGHUP would see it.
struct Writer {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
    written: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(dir: &Path, lines_per_second: u64) -> Writer {
        let path = dir.join("app.log");
        let lock = Arc::new(Mutex::new(()));
        let written = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (path, lock, written, stop) =
                (path.clone(), lock.clone(), written.clone(), stop.clone());
            std::thread::spawn(move || {
                let pause = Duration::from_micros(1_000_000 / lines_per_second);
                while !stop.load(Ordering::Relaxed) {
                    {
                        let _guard = lock.lock().unwrap();
                        let n = written.load(Ordering::Relaxed);
                        let mut file = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&path)
                            .unwrap();
                        writeln!(
                            file,
                            "{} INFO seq {n} payment processed for order {}",
                            n,
                            n * 7
                        )
                        .unwrap();
                        written.store(n + 1, Ordering::Relaxed);
                    }
                    std::thread::sleep(pause);
                }
            })
        };
        Writer {
            path,
            lock,
            written,
            stop,
            thread: Some(thread),
        }
    }

    fn rotate_by_rename(&self, to: &str) {
        let _guard = self.lock.lock().unwrap();
        std::fs::rename(&self.path, self.path.with_file_name(to)).unwrap();
    }

    fn rotate_by_copytruncate(&self, to: &str) {
        let _guard = self.lock.lock().unwrap();
        std::fs::copy(&self.path, self.path.with_file_name(to)).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.written.load(Ordering::Relaxed)
    }
}

/// A collector config on loopback port 0; `extra` adds fields (an `otlp:` in it replaces
/// the default gRPC-only receiver; without an `inventory:` the inventory reports are off,
/// so the tests of other features see only their own records).
pub(crate) fn write_config(dir: &Path, endpoint: &str, extra: &str) -> PathBuf {
    let config = dir.join("collector.yaml");
    let otlp = if extra.contains("otlp:") {
        ""
    } else {
        "otlp: {grpc_addr: 127.0.0.1:0, http_addr: null}\n"
    };
    let inventory = if extra.contains("inventory:") {
        ""
    } else {
        "inventory: {enabled: false}\n"
    };
    std::fs::write(
        &config,
        format!(
            "endpoint: {endpoint}\n\
             http_addr: 127.0.0.1:0\n\
             {otlp}\
             {inventory}\
             cgroup: {{enabled: false}}\n\
             glob_interval: 200ms\n\
             batch: {{timeout: 1s}}\n\
             shutdown_timeout: 5s\n\
             buffer: {{dir: {buffer}, max_bytes: 67108864, segment_bytes: 1048576}}\n\
             {extra}",
            buffer = dir.join("buffer").display(),
        ),
    )
    .unwrap();
    config
}

/// Flips a byte inside one record of the newest buffer segment that holds several, so its
/// checksum fails; returns the segment.
fn corrupt_a_buffer_record(buffer: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(buffer)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    for segment in segments.iter().rev() {
        let mut bytes = std::fs::read(segment).unwrap();
        let starts: Vec<usize> = bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| w == b"PHB1")
            .map(|(i, _)| i)
            .collect();
        if starts.len() >= 4 {
            let victim = starts[starts.len() / 2];
            bytes[victim + 40] ^= 0x5a;
            std::fs::write(segment, bytes).unwrap();
            return segment.clone();
        }
    }
    panic!(
        "no buffer segment with several records in {}",
        buffer.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_loses_no_line_through_rotation_sigkill_outage_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut porthole = Porthole::start("serve", &data, &[], &[]).await;
    let grpc = porthole.otlp_grpc;
    let config = write_config(
        dir.path(),
        &porthole.grpc_endpoint(),
        &format!(
            "files: [{{include: ['{}/app.log*']}}]\nresource: {{service: collector-e2e}}\n",
            logs.display()
        ),
    );
    let mut collector = Collector::start(&config, &[]).await;
    let writer = Writer::start(&logs, 200);
    let pause = |seconds: u64| tokio::time::sleep(Duration::from_secs(seconds));

    pause(2).await;
    writer.rotate_by_rename("app.log.1");
    pause(2).await;
    writer.rotate_by_copytruncate("app.log.2");
    pause(2).await;

    // (b) SIGKILL mid-stream, restart on the same buffer and checkpoints.
    collector.kill9();
    pause(1).await;
    let mut collector = Collector::start(&config, &[]).await;
    pause(2).await;

    // (c) ingest away for 30 s: the collector buffers, then delivers.
    porthole.kill9();
    pause(15).await;
    assert!(
        collector
            .metric("porthole_collector_buffer_records", "")
            .await
            > 0.0,
        "records wait in the buffer while ingest is away"
    );
    // (d) a corrupt buffer record, found by the collector after a restart.
    collector.kill9();
    let segment = corrupt_a_buffer_record(&dir.path().join("buffer"));
    let collector = Collector::start(&config, &[]).await;
    pause(15).await;
    let grpc_addr = grpc.to_string();
    let porthole = Porthole::start("serve", &data, &["--otlp-grpc-addr", &grpc_addr], &[]).await;
    pause(2).await;
    let written = writer.finish();

    let counts: HashMap<u64, u64> = wait_for("every line in storage", Duration::from_secs(90), || {
        let porthole = &porthole;
        async move {
            let rows = sql(porthole, "SELECT body, count(*) AS n FROM logs WHERE service = 'collector-e2e' GROUP BY body").await;
            let counts: HashMap<u64, u64> = rows
                .iter()
                .filter_map(|row| {
                    let body = row["body"].as_str()?;
                    let seq = body.split(" seq ").nth(1)?.split(' ').next()?.parse().ok()?;
                    Some((seq, row["n"].as_u64()?))
                })
                .collect();
            (0..written as u64).all(|n| counts.contains_key(&n)).then_some(counts)
        }
    })
    .await;
    let lost = (0..written as u64)
        .filter(|n| !counts.contains_key(n))
        .count();
    let duplicated = counts.values().filter(|&&n| n == 2).count();
    let more = counts.values().filter(|&&n| n > 2).count();
    let corrupt = collector
        .metric("porthole_collector_buffer_corrupt_records_total", "")
        .await;
    let reread = collector
        .metric("porthole_collector_reread_ranges_total", "")
        .await;
    println!(
        "collector e2e: {written} lines written, {lost} lost, {duplicated} twice, {more} more than twice; \
         corrupt buffer stretches {corrupt} (in {}), re-read ranges {reread}",
        segment.display()
    );
    assert_eq!(lost, 0);
    assert_eq!(more, 0, "no line more than twice");
    assert!(corrupt >= 1.0, "the corrupted record was noticed");
    assert!(reread >= 1.0, "and its lines read again from the file");
    let severities = sql(
        &porthole,
        "SELECT DISTINCT severity FROM logs WHERE service = 'collector-e2e'",
    )
    .await;
    assert_eq!(severities, vec![serde_json::json!({"severity": "INFO"})]);
}

/// A temporary directory holding an empty `logs/` for the collector to tail, and a
/// `porthole serve` on its `data/`.
async fn serve_with_logs_dir() -> (tempfile::TempDir, PathBuf, Porthole) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let porthole = Porthole::start("serve", &dir.path().join("data"), &[], &[]).await;
    (dir, logs, porthole)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_partial_lines_and_stack_traces_arrive_as_single_records_with_a_pattern_or_built_in() {
    let (dir, logs, porthole) = serve_with_logs_dir().await;
    let config = write_config(
        dir.path(),
        &porthole.grpc_endpoint(),
        &format!(
            "files:\n\
             \x20 - {{include: ['{logs}/cri.log'], format: cri, attributes: {{case: cri}}}}\n\
             \x20 - {{include: ['{logs}/java.log'], multiline: {{start: '^\\d{{4}}-'}}, attributes: {{case: java}}}}\n\
             \x20 - {{include: ['{logs}/python.log'], format: cri, multiline: {{stack_traces: true}}}}\n\
             resource: {{service: shapes}}\n",
            logs = logs.display()
        ),
    );
    let _collector = Collector::start(&config, &[("K8S_POD_NAME", "shapes-1")]).await;
    std::fs::write(
        logs.join("cri.log"),
        "2024-06-01T10:00:00.000000001Z stdout P a very long line that the runtime \n\
         2024-06-01T10:00:00.000000002Z stdout P split into three \n\
         2024-06-01T10:00:00.000000003Z stdout F pieces\n\
         2024-06-01T10:00:01.000000000Z stderr F ERROR short one\n",
    )
    .unwrap();
    std::fs::write(
        logs.join("java.log"),
        "2024-06-01 10:00:00 ERROR checkout failed\n\
         java.lang.IllegalStateException: no stock\n\
         \tat shop.Checkout.reserve(Checkout.java:42)\n\
         \tat shop.Checkout.run(Checkout.java:7)\n\
         2024-06-01 10:00:01 INFO next request\n",
    )
    .unwrap();
    // A Python traceback on stderr, as the kubelet writes it: joined to the line that
    // logged it without a start pattern, its trailing blank line cut.
    std::fs::write(
        logs.join("python.log"),
        "2024-06-01T10:00:02.000000000Z stderr F settle ERROR run aborted\n\
         2024-06-01T10:00:02.000000001Z stderr F Traceback (most recent call last):\n\
         2024-06-01T10:00:02.000000002Z stderr F   File \"/app/settle.py\", line 12, in run\n\
         2024-06-01T10:00:02.000000003Z stderr F     total = amount / count\n\
         2024-06-01T10:00:02.000000004Z stderr F ZeroDivisionError: division by zero\n\
         2024-06-01T10:00:02.000000005Z stderr F \n\
         2024-06-01T10:00:03.000000000Z stdout F settle INFO next run in 60s\n",
    )
    .unwrap();
    wait_for("6 records", Duration::from_secs(30), || {
        let porthole = &porthole;
        async move {
            let rows = sql(porthole, "SELECT body, severity, pod, attributes FROM logs WHERE service = 'shapes' ORDER BY timestamp, body").await;
            (rows.len() >= 6).then_some(())
        }
    })
    .await;
    // The multiline group's last record is sent after its timeout; give it that long.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows = sql(
        &porthole,
        "SELECT body, severity, pod FROM logs WHERE service = 'shapes' ORDER BY body",
    )
    .await;
    let bodies: Vec<&str> = rows.iter().map(|r| r["body"].as_str().unwrap()).collect();
    assert_eq!(
        bodies,
        vec![
            "2024-06-01 10:00:00 ERROR checkout failed\njava.lang.IllegalStateException: no stock\n\tat shop.Checkout.reserve(Checkout.java:42)\n\tat shop.Checkout.run(Checkout.java:7)",
            "2024-06-01 10:00:01 INFO next request",
            "ERROR short one",
            "a very long line that the runtime split into three pieces",
            "settle ERROR run aborted\nTraceback (most recent call last):\n  File \"/app/settle.py\", line 12, in run\n    total = amount / count\nZeroDivisionError: division by zero",
            "settle INFO next run in 60s",
        ],
        "{rows:?}"
    );
    assert_eq!(rows[0]["severity"], "ERROR");
    assert_eq!(rows[2]["severity"], "ERROR");
    assert!(rows.iter().all(|r| r["pod"] == "shapes-1"), "{rows:?}");
    drop(rows);
    let _ = rows_attributes_have_stream(&porthole).await;
}

async fn rows_attributes_have_stream(porthole: &Porthole) {
    let response: Value = reqwest::get(
        porthole.url("/api/v1/logs?q=pieces&service=shapes&start=2024-06-01T00:00:00Z"),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let row = &response["rows"][0];
    assert_eq!(row["attributes"]["log.iostream"], "stdout", "{response}");
    assert_eq!(row["attributes"]["case"], "cri", "{response}");
    assert_eq!(
        row["timestamp"], "2024-06-01T10:00:00.000000001Z",
        "the runtime's time of the first piece"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_traces_through_the_collector_carry_the_pods_identity() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", &dir.path().join("data"), &[], &[]).await;
    let config = write_config(dir.path(), &porthole.grpc_endpoint(), "");
    let mut collector = Collector::start(
        &config,
        &[
            ("K8S_POD_NAME", "checkout-7d9f-x2x"),
            ("K8S_NAMESPACE", "ignored-sdk-says-shop"),
            ("K8S_NODE_NAME", "node-3"),
            ("CONTAINER_IMAGE", "registry.local/shop/checkout:v2.0.1"),
        ],
    )
    .await;
    let endpoint = format!("http://{}", collector.otlp_grpc.expect("receiver on"));
    let ids: Value =
        serde_json::from_str(run_python("traces.py", &["--endpoint".into(), endpoint], &[]).trim())
            .unwrap();
    let big = ids["big"].as_str().unwrap().to_string();
    let trace: Value = wait_for(
        "the trace via the collector",
        Duration::from_secs(30),
        || {
            let url = porthole.url(&format!("/api/v1/traces/{big}"));
            async move {
                let response = reqwest::get(url).await.ok()?;
                if !response.status().is_success() {
                    return None;
                }
                let body: Value = response.json().await.ok()?;
                (body["spans"].as_array()?.len() == 50).then_some(body)
            }
        },
    )
    .await;
    let spans = trace["spans"].as_array().unwrap();
    assert!(
        spans.iter().all(|s| s["pod"] == "checkout-7d9f-x2x"),
        "{:?}",
        spans[0]
    );
    assert!(
        spans.iter().all(|s| s["namespace"] == "shop"),
        "the SDK's own value wins"
    );
    assert!(
        spans.iter().all(|s| s["version"] == "v2.0.1"),
        "{:?}",
        spans[0]
    );
    // Ingest commits (and the query sees the spans) a moment before the
    // collector reads the ack and counts the records as shipped.
    let shipped = wait_for(
        "the collector to count the acked spans",
        Duration::from_secs(10),
        || {
            let collector = &collector;
            async move {
                let n = collector
                    .metric("porthole_collector_records_shipped_total", "traces")
                    .await;
                (n >= 51.0).then_some(n)
            }
        },
    )
    .await;
    assert_eq!(shipped, 51.0);
    // The receiver's decompression and unframing took turns for a core, and say so.
    let waited = collector
        .metric("porthole_collector_export_work_wait_seconds_total", "")
        .await;
    assert!(waited > 0.0, "{waited}");
    // SIGTERM: flushes and exits cleanly well within a pod's grace period.
    assert!(collector.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_takes_otlp_http_and_sends_ingest_its_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-collector-token\n").unwrap();
    let porthole = Porthole::start(
        "serve",
        &dir.path().join("data"),
        &["--auth-token-file", token_file.to_str().unwrap()],
        &[],
    )
    .await;
    // Without the token: ingest refuses, the collector keeps the data and retries.
    let without = dir.path().join("without");
    std::fs::create_dir_all(&without).unwrap();
    let config = write_config(
        &without,
        &porthole.grpc_endpoint(),
        "otlp: {grpc_addr: null, http_addr: 127.0.0.1:0}\n",
    );
    let collector = Collector::start(&config, &[("K8S_POD_NAME", "web-1")]).await;
    let body = serde_json::json!({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeLogs": [{"logRecords": [{"body": {"stringValue": "hello over otlp http"}}]}]}]});
    let post = |addr: std::net::SocketAddr| {
        let body = body.clone();
        async move {
            reqwest::Client::new()
                .post(format!("http://{addr}/v1/logs"))
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        post(collector.otlp_http.expect("HTTP receiver on"))
            .await
            .status(),
        200
    );
    wait_for(
        "retries on UNAUTHENTICATED",
        Duration::from_secs(20),
        || {
            let collector = &collector;
            async move {
                (collector
                    .metric("porthole_collector_retries_total", "unauthenticated")
                    .await
                    > 0.0)
                    .then_some(())
            }
        },
    )
    .await;
    assert_eq!(
        collector
            .metric("porthole_collector_dropped_records_total", "")
            .await,
        0.0,
        "nothing dropped"
    );
    drop(collector);

    // With it (the first collector's buffer is taken over, so its record arrives too).
    let config = write_config(
        &without,
        &porthole.grpc_endpoint(),
        &format!(
            "otlp: {{grpc_addr: null, http_addr: 127.0.0.1:0}}\ntoken_file: {}\n",
            token_file.display()
        ),
    );
    let collector = Collector::start(&config, &[("K8S_POD_NAME", "web-1")]).await;
    let response = post(collector.otlp_http.unwrap()).await;
    assert_eq!(response.status(), 200);
    // A full success leaves partialSuccess unset (it was `null`).
    assert_eq!(response.text().await.unwrap(), "{}");
    // A key that is no OTLP field is ignored, as OTLP has it, and the sender is warned
    // (rejected 0, the message), where the misspelt field's data went without a word.
    let misspelt = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecord": [
        {"body": {"stringValue": "never sent on"}}]}]}]});
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/logs", collector.otlp_http.unwrap()))
        .json(&misspelt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let warning = answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(
        warning.starts_with(
            r#"1 key(s) that are no OTLP field were ignored, with their values: "logRecord""#
        ),
        "{answer}"
    );
    let rows = wait_for("both records stored", Duration::from_secs(30), || {
        let url = porthole.url("/api/v1/sql");
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth("s3cret-collector-token")
                .json(
                    &serde_json::json!({"sql": "SELECT body, pod FROM logs WHERE service = 'web'"}),
                )
                .send()
                .await
                .ok()?;
            let body: Value = response.json().await.ok()?;
            let rows = body["rows"].as_array()?.clone();
            (rows.len() == 2).then_some(rows)
        }
    })
    .await;
    assert!(
        rows.iter()
            .all(|r| r["body"] == "hello over otlp http" && r["pod"] == "web-1"),
        "{rows:?}"
    );
    assert!(
        !collector.output().contains("s3cret"),
        "the token is never logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_scrapes_a_prometheus_endpoint_into_the_metrics_table() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", &dir.path().join("data"), &[], &[]).await;
    // Porthole's own /metrics is a real Prometheus text endpoint with counters, gauges and
    // histograms.
    let config = write_config(
        dir.path(),
        &porthole.grpc_endpoint(),
        &format!(
            "scrape: [{{url: '{}', interval: 1s}}]\nresource: {{service: scraped}}\n",
            porthole.url("/metrics")
        ),
    );
    let _collector = Collector::start(&config, &[]).await;
    let rows = wait_for("scraped metrics", Duration::from_secs(30), || {
        let porthole = &porthole;
        async move {
            let rows = sql(
                porthole,
                "SELECT metric_type, count(*) AS n FROM metrics WHERE service = 'scraped' \
                 GROUP BY metric_type ORDER BY metric_type",
            )
            .await;
            let kinds: Vec<&str> = rows
                .iter()
                .filter_map(|r| r["metric_type"].as_str())
                .collect();
            (kinds.contains(&"histogram") && kinds.contains(&"sum") && kinds.contains(&"gauge"))
                .then_some(rows)
        }
    })
    .await;
    println!("scraped: {rows:?}");
    // The ingest counters exist once the first scrape was accepted: a later scrape has them.
    let accepted = wait_for(
        "the ingest counter scraped",
        Duration::from_secs(30),
        || {
            let porthole = &porthole;
            async move {
                let rows = sql(
                    porthole,
                    "SELECT metric_type, is_monotonic FROM metrics WHERE service = 'scraped' \
                 AND metric_name = 'porthole_ingest_records_accepted_total' LIMIT 1",
                )
                .await;
                (!rows.is_empty()).then_some(rows)
            }
        },
    )
    .await;
    assert_eq!(accepted[0]["metric_type"], "sum", "{accepted:?}");
    assert_eq!(accepted[0]["is_monotonic"], true);
}

/// The sidecar's listeners are bounded too: a container that opens connections without
/// end gets the 257th closed (counted), and the receiver serves again once they go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collectors_receiver_caps_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        "otlp: {grpc_addr: 127.0.0.1:0, http_addr: 127.0.0.1:0}\n",
    );
    let collector = Collector::start(&config, &[]).await;
    for (listener, addr) in [
        ("otlp_http", collector.otlp_http.unwrap()),
        ("otlp_grpc", collector.otlp_grpc.unwrap()),
    ] {
        let mut held = Vec::new();
        for _ in 0..256 {
            held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let mut refused = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::io::AsyncReadExt::read_to_end(&mut refused, &mut answer);
        let closed = tokio::time::timeout(Duration::from_secs(20), read).await;
        assert!(
            closed.is_ok(),
            "{listener}: the 257th connection stays open"
        );
        let label = format!("listener=\"{listener}\"");
        assert_eq!(
            collector
                .metric("porthole_collector_connections_refused_total", &label)
                .await,
            1.0,
            "{listener}"
        );
        drop(held);
    }
    let body = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": "after the flood"}}]}]}]});
    let url = format!("http://{}/v1/logs", collector.otlp_http.unwrap());
    wait_for("the receiver serves again", Duration::from_secs(20), || {
        let (url, body) = (url.clone(), body.clone());
        async move {
            let response = reqwest::Client::new().post(url).json(&body).send().await;
            (response.ok()?.status() == 200).then_some(())
        }
    })
    .await;
}

/// The sidecar's OTLP receiver bounds its memory as ingest's does. An export of many
/// tiny messages (small on the wire, hundreds of times that decoded) is refused before
/// it is decoded, on both protocols, plain and gzip, with a message that names the
/// budget; an unknown content-encoding gets 415; exports past
/// `otlp.max_inflight_requests` get 503 before their body is read;
/// an undecodable gRPC export is INVALID_ARGUMENT (not tonic's INTERNAL); every refusal
/// is counted, and the exports that fit are all buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collectors_receiver_refuses_exports_that_would_decode_past_its_budget() {
    use prost::Message;
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        "otlp: {grpc_addr: 127.0.0.1:0, http_addr: 127.0.0.1:0, \
         max_decode_bytes: 16777216, max_inflight_requests: 2}\n",
    );
    let collector = Collector::start(&config, &[]).await;
    // 100 000 records: 400 KB on the wire, about 38 MB estimated decoded.
    let flood = crate::load::empty_log_records(100_000);
    assert!(flood.encoded_len() < 500_000);
    let http_url = format!("http://{}/v1/logs", collector.otlp_http.unwrap());
    let response = reqwest::Client::new()
        .post(&http_url)
        .header("content-type", "application/x-protobuf")
        .body(flood.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let message = response.text().await.unwrap();
    assert!(message.contains("otlp.max_decode_bytes"), "{message}");
    // A compression it cannot read is refused as such, not decoded as protobuf.
    let response = reqwest::Client::new()
        .post(&http_url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "br")
        .body(crate::load::empty_log_records(10).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    let message = response.text().await.unwrap();
    assert!(message.contains("content-encoding"), "{message}");
    let endpoint = format!("http://{}", collector.otlp_grpc.unwrap());
    crate::overload::decode_budget_refuses_the_flood_over_grpc(
        endpoint.clone(),
        "otlp.max_decode_bytes",
    )
    .await;
    let status = crate::bad_input::raw_grpc(&endpoint, b"\xff\xff\xff\xff garbage".to_vec())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    for (reason, count) in [("too_large", 3.0), ("invalid", 1.0), ("unsupported", 1.0)] {
        let label = format!("reason=\"{reason}\"");
        assert_eq!(
            collector
                .metric("porthole_collector_otlp_requests_refused_total", &label)
                .await,
            count,
            "{reason}"
        );
    }

    // Two exports whose bodies never finish hold both in-flight places; a third is told
    // to come back before its body is read, and once they go, exports are served again.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(collector.otlp_http.unwrap())
            .await
            .unwrap();
        stream
            .write_all(
                b"POST /v1/logs HTTP/1.1\r\nhost: x\r\n\
                  content-type: application/x-protobuf\r\ncontent-length: 100000\r\n\r\n\x0a",
            )
            .await
            .unwrap();
        stalled.push(stream);
    }
    let small = crate::load::empty_log_records(10).encode_to_vec();
    let post = |body: Vec<u8>| {
        let url = http_url.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
                .ok()
        }
    };
    let refused = wait_for("an export refused as busy", Duration::from_secs(20), || {
        let post = post(small.clone());
        async move {
            let response = post.await?;
            (response.status() == 503).then_some(response)
        }
    })
    .await;
    assert_eq!(
        refused.headers().get("retry-after").unwrap(),
        "1",
        "the sender is told when to come back"
    );
    let message = refused.text().await.unwrap();
    assert!(message.contains("otlp.max_inflight_requests"), "{message}");
    drop(stalled);
    wait_for("exports served again", Duration::from_secs(20), || {
        let post = post(small.clone());
        async move { (post.await?.status() == 200).then_some(()) }
    })
    .await;

    // The two bodies cut off midway count as invalid too.
    assert_eq!(
        collector
            .metric(
                "porthole_collector_otlp_requests_refused_total",
                "reason=\"invalid\""
            )
            .await,
        3.0
    );
    assert!(
        collector
            .metric(
                "porthole_collector_otlp_requests_refused_total",
                "reason=\"busy\""
            )
            .await
            >= 1.0
    );
    // The 20 000 that fit, the small ones that got through while the places were
    // being taken, and the last one: each accepted export is in the buffer.
    let received = collector
        .metric(
            "porthole_collector_records_received_total",
            "signal=\"logs\"",
        )
        .await;
    assert!(
        received >= 20_010.0 && (received - 20_000.0) % 10.0 == 0.0,
        "{received}"
    );
}

/// A `porthole serve` whose decode budget (`--max-decode-bytes`) is `budget`, committing
/// every 200 ms, with its data under `dir/data`.
async fn ingest_with_decode_budget(dir: &Path, budget: &str) -> Porthole {
    let args = ["--max-decode-bytes", budget, "--batch-window", "200ms"];
    Porthole::start("serve", &dir.join("data"), &args, &[]).await
}

/// A `porthole serve` with an 8 MiB decode budget, and a collector with an OTLP/HTTP
/// receiver (and the default 192 MiB budget) shipping to it.
async fn collector_before_a_smaller_ingest(dir: &Path) -> (Porthole, Collector) {
    let porthole = ingest_with_decode_budget(dir, "8MiB").await;
    let config = write_config(
        dir,
        &porthole.grpc_endpoint(),
        "otlp: {grpc_addr: null, http_addr: 127.0.0.1:0}\n",
    );
    (porthole, Collector::start(&config, &[]).await)
}

/// POSTs an OTLP/protobuf export to the collector's HTTP receiver; its status.
async fn post_protobuf(collector: &Collector, path: &str, export: Vec<u8>) -> u16 {
    let response = reqwest::Client::new()
        .post(format!("http://{}{path}", collector.otlp_http.unwrap()))
        .header("content-type", "application/x-protobuf")
        .body(export)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

async fn assert_nothing_dropped(collector: &Collector) {
    let dropped = collector
        .metric("porthole_collector_dropped_records_total", "")
        .await;
    assert_eq!(dropped, 0.0, "{}", collector.output());
}

/// A large scrape reaches ingest whole. 30 000 series in one scrape made one export that
/// ingest's decode budget (here 64 MiB; ~3.5 KB a point with its labels) refused as too
/// large, and the collector dropped it, every interval; cut into exports of at most
/// 2 000 points, every series is stored and nothing is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_of_thirty_thousand_series_is_stored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = ingest_with_decode_budget(dir.path(), "64MiB").await;
    let mut text = String::from("# HELP big_gauge One series a pod.\n# TYPE big_gauge gauge\n");
    for i in 0..30_000 {
        text.push_str(&format!(
            "big_gauge{{pod=\"checkout-{i}\",zone=\"z{}\",shard=\"{}\"}} {i}\n",
            i % 3,
            i % 16
        ));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/metrics", listener.local_addr().unwrap());
    let app =
        axum::Router::new().route("/metrics", axum::routing::get(move || async move { text }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = write_config(
        dir.path(),
        &porthole.grpc_endpoint(),
        &format!("scrape: [{{url: '{target}', interval: 1h}}]\nresource: {{service: scraped}}\n"),
    );
    let collector = Collector::start(&config, &[]).await;
    wait_for("all 30 000 series stored", Duration::from_secs(60), || {
        let porthole = &porthole;
        async move {
            let rows = sql(
                porthole,
                "SELECT count(*) AS n, count(DISTINCT value_double) AS pods FROM metrics \
                 WHERE metric_name = 'big_gauge'",
            )
            .await;
            (rows[0]["n"] == 30_000 && rows[0]["pods"] == 30_000).then_some(())
        }
    })
    .await;
    assert_nothing_dropped(&collector).await;
}

/// What the collector acked reaches storage even when ingest's limits are lower than its
/// own: an app's export of 60 000 records, accepted by the collector, is refused by an
/// ingest with `--max-decode-bytes 8MiB`; the collector sends it again in halves (cut
/// again while still too large), and every record is stored, none dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_ingest_refuses_as_too_large_is_sent_in_halves_and_stored_whole() {
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let (porthole, collector) = collector_before_a_smaller_ingest(dir.path()).await;
    // ~23 MB estimated decoded: within the collector's 192 MiB, past ingest's 8 MiB.
    let export = crate::load::empty_log_records(60_000).encode_to_vec();
    assert_eq!(post_protobuf(&collector, "/v1/logs", export).await, 200);
    wait_for("all 60 000 records stored", Duration::from_secs(60), || {
        let porthole = &porthole;
        async move {
            let rows = sql(porthole, "SELECT count(*) AS n FROM logs").await;
            (rows[0]["n"] == 60_000).then_some(())
        }
    })
    .await;
    assert_nothing_dropped(&collector).await;
    // 60 000 → 2 × 30 000 (still too large) → 4 × 15 000: three cuts.
    assert_eq!(
        collector
            .metric(
                "porthole_collector_retries_total",
                "reason=\"too_large_halved\""
            )
            .await,
        3.0,
        "{}",
        collector.output()
    );
}

/// One metric an app sends with more data points than ingest takes in one export (here
/// 60 000 points of one gauge, past `--max-decode-bytes 8MiB`) is cut by its points into
/// gauges of the same name and unit, and every point is stored. Halving by whole metrics
/// left it as one record that could not be cut, and the collector dropped what it acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_metric_too_large_for_ingest_is_cut_by_its_points_and_stored_whole() {
    use porthole_proto::common::{AnyValue, KeyValue, any_value::Value as Any};
    use porthole_proto::metrics::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
    };
    use porthole_proto::metrics_service::ExportMetricsServiceRequest;
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let (porthole, collector) = collector_before_a_smaller_ingest(dir.path()).await;
    let points = 60_000;
    let attribute = |key: &str, value: String| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Any::StringValue(value)),
        }),
        ..Default::default()
    };
    let gauge = Metric {
        name: "queue_depth".into(),
        unit: "{message}".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: (0..points)
                .map(|i| NumberDataPoint {
                    attributes: vec![
                        attribute("queue", format!("queue-{i}")),
                        attribute("zone", format!("z{}", i % 3)),
                    ],
                    time_unix_nano: 1_700_000_000_000_000_000,
                    value: Some(number_data_point::Value::AsInt(i)),
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    };
    let export = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let status = post_protobuf(&collector, "/v1/metrics", export.encode_to_vec()).await;
    assert_eq!(status, 200);
    let row = wait_for("all 60 000 points stored", Duration::from_secs(60), || {
        let porthole = &porthole;
        async move {
            let rows = sql(
                porthole,
                "SELECT count(*) AS n, count(DISTINCT value_int) AS values, \
                 min(metric_unit) AS unit, max(metric_unit) AS unit_max, \
                 min(metric_type) AS kind, max(metric_type) AS kind_max FROM metrics \
                 WHERE metric_name = 'queue_depth'",
            )
            .await;
            let row = &rows[0];
            (row["n"] == points && row["values"] == points).then(|| row.clone())
        }
    })
    .await;
    // Every part kept the metric's unit and kind.
    assert_eq!(
        (&row["unit"], &row["unit_max"]),
        (&"{message}".into(), &"{message}".into())
    );
    assert_eq!(row["kind"], row["kind_max"], "{row}");
    assert_nothing_dropped(&collector).await;
    let halved = collector
        .metric(
            "porthole_collector_retries_total",
            "reason=\"too_large_halved\"",
        )
        .await;
    assert!(halved >= 1.0, "{}", collector.output());
    let received = collector
        .metric(
            "porthole_collector_records_received_total",
            "signal=\"metrics\"",
        )
        .await;
    assert_eq!(received, points as f64, "counted in data points");
}

/// `redact` rules replace what they match before it enters the buffer: a password in a
/// file's line, a card number in an OTLP log's body, a token in its attribute and in a
/// span's attribute, event and status message. None of it reaches ingest, the rest of the
/// text does, and each changed value is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redact_rules_keep_secrets_in_the_pod() {
    let (dir, logs, porthole) = serve_with_logs_dir().await;
    let config = write_config(
        dir.path(),
        &porthole.grpc_endpoint(),
        &format!(
            "files: [{{include: ['{logs}/*.log']}}]\n\
             otlp: {{grpc_addr: null, http_addr: 127.0.0.1:0}}\n\
             resource: {{service: vault}}\n\
             redact:\n\
             \x20 - {{pattern: '(?i)(password|token)=[^\\s&]+', replacement: '$1=[REDACTED]'}}\n\
             \x20 - {{pattern: '\\b\\d{{4}}-\\d{{4}}-\\d{{4}}-\\d{{4}}\\b'}}\n",
            logs = logs.display()
        ),
    );
    let collector = Collector::start(&config, &[("K8S_POD_NAME", "vault-1")]).await;
    std::fs::write(logs.join("app.log"), "login user=ann password=hunter2 ok\n").unwrap();
    let http = reqwest::Client::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let attr = |k: &str, v: &str| serde_json::json!({"key": k, "value": {"stringValue": v}});
    let log = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "timeUnixNano": now.to_string(),
        "body": {"stringValue": "charged 4111-1111-1111-1111"},
        "attributes": [attr("http.url", "/pay?token=abc123&x=1")],
    }]}]}]});
    let span = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "GET /pay",
        "startTimeUnixNano": (now - 1_000_000).to_string(),
        "endTimeUnixNano": now.to_string(),
        "attributes": [attr("http.url", "/pay?token=abc123")],
        "events": [{"name": "retry", "attributes": [attr("note", "password=hunter2")]}],
        "status": {"code": 2, "message": "token=abc123 refused"},
    }]}]}]});
    for (path, body) in [("/v1/logs", log), ("/v1/traces", span)] {
        let response = http
            .post(format!("http://{}{path}", collector.otlp_http.unwrap()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let stored = wait_for("the records stored", Duration::from_secs(30), || {
        let (logs, trace) = (
            porthole.url("/api/v1/logs?service=vault"),
            porthole.url("/api/v1/traces/5b8efff798038103d269b633813fc60c"),
        );
        async move {
            let logs: Value = reqwest::get(logs).await.ok()?.json().await.ok()?;
            let trace: Value = reqwest::get(trace).await.ok()?.json().await.ok()?;
            let rows = logs["rows"].as_array()?;
            (rows.len() == 2 && trace["spans"].as_array()?.len() == 1)
                .then(|| format!("{logs} {trace}"))
        }
    })
    .await;
    for secret in ["hunter2", "abc123", "4111"] {
        assert!(!stored.contains(secret), "{secret}: {stored}");
    }
    for kept in [
        "login user=ann password=[REDACTED] ok",
        "charged [REDACTED]",
        "/pay?token=[REDACTED]&x=1",
        "token=[REDACTED] refused",
        "password=[REDACTED]",
    ] {
        assert!(stored.contains(kept), "{kept}: {stored}");
    }
    assert_eq!(
        collector
            .metric("porthole_collector_redacted_total", "")
            .await,
        6.0
    );
}

/// A sealed container's stdout and stderr reach storage through `pod_logs`: the collector
/// finds the API through `KUBECONFIG` (in a pod, its ServiceAccount), asks for the app
/// container's log as `kubectl logs -f --timestamps` does, and each line is stored once
/// with the kubelet's time, the Go panic as one record. The API here is a stand-in that
/// answers as the kubelet does (no previous container: 400) and ends each stream after a
/// moment, so the collector asks again from the last second it has. Why the container last
/// ended (an OOM kill, in the pod's status) is a record of its own, once, and so is the
/// failed probe the pod's events tell (`pod_events`); the inventory lists the pod with
/// that last exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_logs_and_events_come_through_the_kubernetes_api() {
    let (dir, _logs, porthole) = serve_with_logs_dir().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stamp = |offset: u64, nanos: u32, text: &str| {
        let time = chrono::DateTime::from_timestamp((now - 60 + offset) as i64, nanos).unwrap();
        format!(
            "{} {text}",
            time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        )
    };
    let lines = vec![
        stamp(0, 5, "INFO payments starting"),
        stamp(
            1,
            0,
            "panic: runtime error: index out of range [5] with length 3",
        ),
        stamp(1, 1, ""),
        stamp(1, 2, "goroutine 1 [running]:"),
        stamp(1, 3, "main.main()"),
        stamp(1, 4, "\t/app/main.go:13 +0x1d"),
        stamp(2, 7, "INFO payments restarted"),
    ];
    let requests = Arc::new(Mutex::new(Vec::<String>::new()));
    // The pod's status: running again since before the collector asked, after an OOM kill.
    let ended = chrono::DateTime::from_timestamp((now - 59) as i64, 500).unwrap();
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "payments-7f9c", "namespace": "shop"},
        "status": {"containerStatuses": [{
            "name": "payments", "image": "payments:3", "imageID": "", "ready": true,
            "restartCount": 1,
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                "finishedAt": ended.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)}},
        }]},
    });
    let app = axum::Router::new().route(
        "/api/v1/namespaces/shop/pods/payments-7f9c",
        axum::routing::get(move || async move { axum::Json(pod) }),
    );
    // Its events: one failed probe (a watch sends nothing more and ends).
    let probe = serde_json::json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "payments-7f9c.1", "namespace": "shop", "uid": "e1", "resourceVersion": "11"},
        "involvedObject": {"kind": "Pod", "name": "payments-7f9c", "namespace": "shop",
            "fieldPath": "spec.containers{payments}"},
        "type": "Warning", "reason": "Unhealthy", "count": 1,
        "message": "Liveness probe failed: HTTP probe failed with statuscode: 500",
        "lastTimestamp": chrono::DateTime::from_timestamp((now - 58) as i64, 0).unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    let app = app.route(
        "/api/v1/namespaces/shop/events",
        axum::routing::get(move |uri: http::Uri| {
            let probe = probe.clone();
            async move {
                if uri.query().unwrap_or_default().contains("watch=true") {
                    return String::new().into_response();
                }
                axum::Json(serde_json::json!({"apiVersion": "v1", "kind": "EventList",
                    "metadata": {"resourceVersion": "11"}, "items": [probe]}))
                .into_response()
            }
        }),
    );
    let app = app.route(
        "/api/v1/namespaces/shop/pods/payments-7f9c/log",
        axum::routing::get({
            let requests = requests.clone();
            move |uri: http::Uri| {
                let (requests, lines) = (requests.clone(), lines.clone());
                async move {
                    let query = uri.query().unwrap_or_default().to_string();
                    requests.lock().unwrap().push(query.clone());
                    if query.contains("previous=true") {
                        let status = serde_json::json!({"kind": "Status", "apiVersion": "v1",
                                "status": "Failure", "reason": "BadRequest", "code": 400,
                                "message": "previous terminated container \"payments\" not found"});
                        return (http::StatusCode::BAD_REQUEST, axum::Json(status)).into_response();
                    }
                    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
                    text.into_response()
                }
            }
        }),
    );
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
             clusters: [{{name: test, cluster: {{server: '{api}'}}}}]\n\
             users: [{{name: test, user: {{token: not-logged}}}}]\n\
             contexts: [{{name: test, context: {{cluster: test, user: test, namespace: shop}}}}]\n"
        ),
    )
    .unwrap();
    let config = write_config(
        dir.path(),
        &porthole.grpc_endpoint(),
        "pod_logs: {containers: [payments], stack_traces: true}\n\
         pod_events: true\n\
         inventory: {enabled: true}\n\
         resource: {service: payments}\n",
    );
    let _collector = Collector::start(
        &config,
        &[
            ("K8S_POD_NAME", "payments-7f9c"),
            ("K8S_NAMESPACE", "shop"),
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
        ],
    )
    .await;
    let rows = wait_for("the pod's log stored", Duration::from_secs(30), || {
        let porthole = &porthole;
        async move {
            let rows = sql(
                porthole,
                "SELECT time_unix_nano, body, pod, attributes FROM logs \
                 WHERE service = 'payments' AND scope_name <> 'porthole.inventory' \
                 ORDER BY time_unix_nano",
            )
            .await;
            (rows.len() >= 5).then_some(rows)
        }
    })
    .await;
    // Asked again (each stream ends at once here): still each line once.
    wait_for("three more requests", Duration::from_secs(20), || {
        let requests = requests.clone();
        async move { (requests.lock().unwrap().len() >= 8).then_some(()) }
    })
    .await;
    let again = sql(
        &porthole,
        "SELECT count(*) AS n FROM logs \
         WHERE service = 'payments' AND scope_name <> 'porthole.inventory'",
    )
    .await;
    assert_eq!(again[0]["n"], 5, "{rows:?}");
    let bodies: Vec<&str> = rows.iter().map(|r| r["body"].as_str().unwrap()).collect();
    assert_eq!(bodies[0], "INFO payments starting");
    assert_eq!(
        bodies[1],
        "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:13 +0x1d"
    );
    // Why the container ended, from the pod's status, at the time it ended; then the
    // failed probe the pod's events tell.
    assert_eq!(
        bodies[2],
        "container payments ended: OOMKilled, exit code 137"
    );
    assert_eq!(
        rows[2]["attributes"]["process.exit.code"]["value"], "137",
        "{rows:?}"
    );
    assert_eq!(
        bodies[3],
        "Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 500"
    );
    assert_eq!(bodies[4], "INFO payments restarted");
    // Past 2^53, the API gives it as its digits.
    let first = rows[0]["time_unix_nano"]
        .as_str()
        .and_then(|t| t.parse::<u64>().ok());
    assert_eq!(
        first,
        Some((now - 60) * 1_000_000_000 + 5),
        "the kubelet's time: {rows:?}"
    );
    assert_eq!(rows[0]["pod"], "payments-7f9c");
    // A search (and so a log alert rule) finds OOM kills by their reason.
    let found: Value =
        reqwest::get(porthole.url(
            "/api/v1/logs?q=k8s.container.status.last_terminated_reason:OOMKilled&start=now-2h",
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let found = found["rows"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["severity"], "ERROR");
    // The inventory lists the pod with why its container last ended.
    let listed: Value = reqwest::get(porthole.url("/api/v1/inventory?start=now-2h"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let exit = &listed["services"][0]["versions"][0]["pods"][0]["last_exit"];
    assert_eq!(exit["reason"], "OOMKilled", "{listed}");
    assert_eq!(exit["exit_code"], 137, "{listed}");
    assert_eq!(exit["container"], "payments", "{listed}");
    assert_eq!(exit["restart_count"], 1, "{listed}");
    let requests = requests.lock().unwrap();
    assert!(requests[0].contains("previous=true"), "{requests:?}");
    assert!(
        requests.iter().any(|q| q.contains("follow=true")
            && q.contains("timestamps=true")
            && q.contains("container=payments")
            && q.contains("sinceTime=")),
        "{requests:?}"
    );
}
