//! Compaction on real processes: an ingest node compacting in the background while
//! exports keep arriving, a separate query node that searched the small files before and
//! must answer the same after, and `porthole compact` run as its own process.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use porthole_proto::logs_service::logs_service_client::LogsServiceClient;
use serde_json::Value;

use crate::harness::{Porthole, binary, wait_for};
use crate::load::export_request;

/// Sends `exports` exports of `per_export` records tagged `tag`, one at a time (each acked
/// export is its own small file); returns how many records were acked.
async fn send(porthole: &Porthole, tag: &str, exports: usize, per_export: usize) -> usize {
    let mut client = LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap();
    for e in 0..exports {
        let bodies: Vec<String> = (0..per_export)
            .map(|r| format!("{tag} e{e} r{r}"))
            .collect();
        client.export(export_request(&bodies)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    exports * per_export
}

/// One page of `/api/v1/logs` (from `start`, 97 rows, so pages straddle files): its
/// bodies and the next cursor.
async fn page(
    porthole: &Porthole,
    q: &str,
    start: &str,
    cursor: Option<&str>,
) -> (Vec<String>, Option<String>) {
    let mut params = vec![("q", q), ("limit", "97"), ("start", start)];
    params.extend(cursor.map(|c| ("cursor", c)));
    let response = reqwest::Client::new()
        .get(porthole.url("/api/v1/logs"))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let rows = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["body"].as_str().unwrap().to_string())
        .collect();
    (rows, body["next_cursor"].as_str().map(String::from))
}

/// The rest of the rows from `cursor` on (`None`: nothing left), following cursors.
async fn rest(
    porthole: &Porthole,
    q: &str,
    start: &str,
    mut cursor: Option<String>,
    rows: &mut Vec<String>,
) {
    while let Some(next) = cursor {
        let (more, after) = page(porthole, q, start, Some(&next)).await;
        rows.extend(more);
        cursor = after;
    }
}

/// Every row matching `q` in the last day.
async fn all_rows(porthole: &Porthole, q: &str) -> Vec<String> {
    let (mut rows, cursor) = page(porthole, q, "now-1d", None).await;
    rest(porthole, q, "now-1d", cursor, &mut rows).await;
    rows
}

/// `porthole serve` with its own compaction off, so the test decides when to compact.
async fn serve_without_compaction(dir: &Path) -> Porthole {
    Porthole::start(
        "serve",
        dir,
        &["--batch-window", "20ms", "--compaction-interval", "0s"],
        &[],
    )
    .await
}

/// `porthole compact` as its own process: its report line for the logs table.
fn porthole_compact(dir: &Path, grace: &str) -> Value {
    porthole_compact_with(dir, grace, &[])
}

fn compact_command(dir: &Path, grace: &str, extra: &[&str]) -> std::process::Output {
    Command::new(binary("porthole"))
        .args([
            "compact",
            "--compaction-min-files",
            "2",
            "--vacuum-grace",
            grace,
        ])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .env("PORTHOLE_LOG", "warn,buoyant_kernel=off")
        .output()
        .unwrap()
}

/// `porthole compact --compaction-min-files 2` on `dir`: its JSON line for the logs table.
pub(crate) fn porthole_compact_with(dir: &Path, grace: &str, extra: &[&str]) -> Value {
    let output = compact_command(dir, grace, extra);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["table"] == "logs")
        .expect("a line for the logs table")
}

async fn histogram_total(porthole: &Porthole, q: &str) -> u64 {
    let body: Value = reqwest::Client::new()
        .get(porthole.url("/api/v1/logs/histogram"))
        .query(&[("q", q), ("step", "1h")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum()
}

/// Each row exactly once, and as many as were sent.
fn assert_exactly_once(rows: &[String], expected: usize) {
    let distinct: HashSet<&String> = rows.iter().collect();
    assert_eq!(distinct.len(), rows.len(), "a row came back twice");
    if rows.len() != expected {
        let mut sorted: Vec<&String> = distinct.into_iter().collect();
        sorted.sort();
        panic!("{} rows, not {expected}: {sorted:?}", rows.len());
    }
}

fn data_files(dir: &Path) -> usize {
    let mut n = 0;
    for day in std::fs::read_dir(dir.join("logs")).unwrap().flatten() {
        if day.file_name().to_string_lossy().starts_with("day=") {
            n += std::fs::read_dir(day.path()).unwrap().count();
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_compaction_under_load_keeps_every_row_for_a_separate_query_node() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = Porthole::start(
        "ingest",
        dir.path(),
        &[
            "--batch-window",
            "20ms",
            "--compaction-interval",
            "700ms",
            "--compaction-min-files",
            "5",
            "--vacuum-grace",
            "1s",
        ],
        &[],
    )
    .await;
    let query = Porthole::start("query", dir.path(), &[], &[]).await;

    // The query node opens (and caches) the small files' indexes first.
    let first = send(&ingest, "early", 6, 40).await;
    assert_exactly_once(&all_rows(&query, "early").await, first);

    // Exports keep arriving while the compactor runs.
    let sent = first + send(&ingest, "late", 30, 40).await;
    let replaced = wait_for("compaction", Duration::from_secs(60), || async {
        let replaced = ingest
            .counter("porthole_compaction_files_replaced_total", &["logs"])
            .await;
        (replaced >= 30.0).then_some(replaced)
    })
    .await;
    assert!(replaced >= 30.0);
    let everything = all_rows(&query, "early OR late").await;
    assert_exactly_once(&everything, sent);
    assert_eq!(histogram_total(&query, "early OR late").await, sent as u64);
    assert_exactly_once(&all_rows(&query, "early").await, first);
    // A phrase, through the rebuilt index, finds its one row.
    assert_eq!(all_rows(&query, "\"late e7 r3\"").await, ["late e7 r3"]);

    // Replaced files are deleted after the grace period: once every replaced file's data
    // and index are gone, the directory holds exactly the table's files.
    let (replaced, written) = wait_for("vacuum", Duration::from_secs(60), || async {
        let metrics = ingest.metrics().await;
        let value = |name: &str| -> f64 {
            metrics
                .lines()
                .filter(|l| l.starts_with(name) && l.contains("logs"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let replaced = value("porthole_compaction_files_replaced_total");
        let deleted = value("porthole_vacuum_deleted_objects_total");
        (deleted == 2.0 * replaced)
            .then_some((replaced, value("porthole_compaction_files_written_total")))
    })
    .await;
    assert_eq!(data_files(dir.path()) as f64, 36.0 - replaced + written);
    assert_exactly_once(&all_rows(&query, "early OR late").await, sent);
    assert_eq!(
        ingest
            .counter("porthole_compaction_failures_total", &[])
            .await,
        0.0
    );
    // The query node kept opened indexes between searches.
    assert!(query.counter("porthole_index_cache_hits_total", &[]).await > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn porthole_compact_merges_a_running_servers_files_once() {
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_without_compaction(dir.path()).await;
    let sent = send(&serve, "cli", 7, 25).await;
    assert_eq!(data_files(dir.path()), 7);
    let first = porthole_compact(dir.path(), "1h");
    assert_eq!(
        (
            &first["files_replaced"],
            &first["files_written"],
            &first["rows"]
        ),
        (&Value::from(7), &Value::from(1), &Value::from(sent))
    );
    assert_eq!(first["vacuumed_objects"], 0, "within the grace period");
    assert_exactly_once(&all_rows(&serve, "cli").await, sent);
    // Again: nothing left to merge; with no grace, the 7 files and their indexes go.
    let second = porthole_compact(dir.path(), "0s");
    assert_eq!(
        (&second["files_written"], &second["vacuumed_objects"]),
        (&Value::from(0), &Value::from(14))
    );
    assert_eq!(data_files(dir.path()), 1);
    assert_exactly_once(&all_rows(&serve, "cli").await, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cursor_from_before_a_compaction_pages_on_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_without_compaction(dir.path()).await;
    // Records 1 µs apart in threes: ties of 80 records at every page boundary.
    let mut client = LogsServiceClient::connect(serve.grpc_endpoint())
        .await
        .unwrap();
    for e in 0..6 {
        let bodies: Vec<String> = (0..40).map(|r| format!("tie e{e} r{r}")).collect();
        let mut request = export_request(&bodies);
        for (i, record) in request.resource_logs[0].scope_logs[0]
            .log_records
            .iter_mut()
            .enumerate()
        {
            record.time_unix_nano = 1_700_000_000_000_000_000 + (i as u64 % 3) * 1000;
        }
        client.export(request).await.unwrap();
    }
    let start = "1700000000000000000";
    let (mut rows, cursor) = page(&serve, "tie", start, None).await;
    assert_eq!(porthole_compact(dir.path(), "0s")["files_written"], 1);
    assert_eq!(data_files(dir.path()), 1);
    rest(&serve, "tie", start, cursor, &mut rows).await;
    assert_exactly_once(&rows, 240);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_removes_old_days_and_bad_retention_flags_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_without_compaction(dir.path()).await;
    let mut client = LogsServiceClient::connect(serve.grpc_endpoint())
        .await
        .unwrap();
    let ten_days_ago = std::time::SystemTime::now() - Duration::from_secs(10 * 86_400);
    let mut old = export_request(&["kept e0 r0".to_string()]);
    old.resource_logs[0].scope_logs[0].log_records[0].time_unix_nano = ten_days_ago
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    old.resource_logs[0].scope_logs[0].log_records[0].body =
        export_request(&["aged out".into()]).resource_logs[0].scope_logs[0].log_records[0]
            .body
            .clone();
    client.export(old).await.unwrap();
    client
        .export(export_request(&["kept e0 r0".to_string()]))
        .await
        .unwrap();
    let (rows, _) = page(&serve, "aged OR kept", "now-30d", None).await;
    assert_eq!(rows.len(), 2);

    // Spans and metrics keep everything; logs keep a week.
    let report = porthole_compact_with(dir.path(), "0s", &["--retention", "logs=7d"]);
    assert_eq!(
        (&report["expired_files"], &report["vacuumed_objects"]),
        (&Value::from(1), &Value::from(2))
    );
    let (rows, _) = page(&serve, "aged OR kept", "now-30d", None).await;
    assert_eq!(rows, ["kept e0 r0"]);
    assert_eq!(data_files(dir.path()), 1);

    for (flag, says) in [
        ("logz=7d", "unknown table \"logz\""),
        ("logs", "not TABLE=AGE"),
        ("logs=soon", "logs=soon"),
        ("logs=0s", "zero"),
        ("logs=1d,logs=2d", "given twice"),
    ] {
        let output = compact_command(dir.path(), "0s", &["--retention", flag]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(says),
            "{flag}: {stderr}"
        );
    }
}
