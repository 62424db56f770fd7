//! One contract, every backend: a local directory, memory, and a real S3 server must all
//! append, list, read back, index and survive reopening the same way.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::AsArray;
use porthole_proto::common::{AnyValue, any_value::Value};
use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::metrics::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data, number_data_point,
};
use porthole_proto::metrics_service::ExportMetricsServiceRequest;
use porthole_proto::trace::{ResourceSpans, ScopeSpans, Span};
use porthole_proto::trace_service::ExportTraceServiceRequest;
use porthole_storage::{
    CompactionPolicy, Location, Signal, Storage, convert_logs, convert_metrics, convert_spans,
    open_packed_index,
};

use crate::harness::S3Server;

const DAY_NS: u64 = 86_400_000_000_000;
const T0: u64 = 1_764_000_000_000_000_000; // 2025-11-24

fn logs(bodies: &[(&str, u64)]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: bodies
                    .iter()
                    .map(|(b, t)| LogRecord {
                        time_unix_nano: *t,
                        body: Some(AnyValue {
                            value: Some(Value::StringValue(b.to_string())),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn contract(
    open: impl Fn() -> futures::future::BoxFuture<'static, Storage>,
    reopenable: bool,
) {
    let storage = Arc::new(open().await);
    storage.check_reachable().await.expect("reachable");

    // Rows on two days: one commit, one file per day, each with an index.
    let batch = convert_logs(
        &logs(&[
            ("disk full on node-3", T0),
            ("all quiet", T0 + 1),
            ("next day", T0 + DAY_NS),
        ]),
        0,
    )
    .batch;
    let report = storage
        .append(Signal::Logs, batch)
        .await
        .expect("append logs");
    assert_eq!((report.files, report.rows), (2, 3));
    let files = storage.files(Signal::Logs).await.unwrap();
    assert_eq!(files.len(), 2);
    let mut days: Vec<_> = files.iter().map(|f| f.day.clone().unwrap()).collect();
    days.sort();
    assert_eq!(days, ["2025-11-24", "2025-11-25"]);
    let mut ranges: Vec<(i64, i64)> = files
        .iter()
        .map(|f| f.time_range_micros.expect("stats"))
        .collect();
    ranges.sort();
    let micros = |ns: u64| (ns / 1_000) as i64;
    assert_eq!(
        ranges,
        [
            (micros(T0), micros(T0 + 1)),
            (micros(T0 + DAY_NS), micros(T0 + DAY_NS))
        ]
    );
    // Reading chosen rows by ordinal returns just those rows.
    let two_rows = files.iter().find(|f| f.num_records == Some(2)).unwrap();
    let picked = storage
        .read_rows(Signal::Logs, &two_rows.path, &[1])
        .await
        .unwrap();
    assert_eq!(picked.num_rows(), 1);
    for file in &files {
        let index_path = file.index_path.as_ref().expect("logs files have an index");
        let packed = storage.read_object(Signal::Logs, index_path).await.unwrap();
        let index = open_packed_index(&packed).unwrap();
        assert_eq!(
            index.reader().unwrap().searcher().num_docs(),
            file.num_records.unwrap() as u64
        );
    }

    let spans = convert_spans(
        &ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![9; 16],
                        span_id: vec![8; 8],
                        name: "GET /".into(),
                        start_time_unix_nano: T0,
                        end_time_unix_nano: T0 + 5,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
        0,
    );
    storage
        .append(Signal::Spans, spans.batch)
        .await
        .expect("append spans");
    let metrics = convert_metrics(
        &ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "up".into(),
                        data: Some(Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint {
                                time_unix_nano: T0,
                                value: Some(number_data_point::Value::AsDouble(1.0)),
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
        0,
    );
    storage
        .append(Signal::Metrics, metrics.batch)
        .await
        .expect("append metrics");
    assert!(
        storage.files(Signal::Metrics).await.unwrap()[0]
            .index_path
            .is_none(),
        "metrics have no text index"
    );

    // Concurrent appends from one node all land.
    let appends: Vec<_> = (0..4)
        .map(|i| {
            let storage = storage.clone();
            tokio::spawn(async move {
                let body = format!("concurrent {i}");
                storage
                    .append(Signal::Logs, convert_logs(&logs(&[(&body, T0)]), 0).batch)
                    .await
            })
        })
        .collect();
    for append in appends {
        append.await.unwrap().expect("concurrent append");
    }

    let check = |storage: Arc<Storage>| async move {
        let batches = storage.read_all(Signal::Logs).await.unwrap();
        let mut bodies: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                b.column_by_name("body")
                    .unwrap()
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        bodies.sort();
        assert_eq!(
            bodies,
            [
                "all quiet",
                "concurrent 0",
                "concurrent 1",
                "concurrent 2",
                "concurrent 3",
                "disk full on node-3",
                "next day"
            ]
        );
        assert_eq!(
            storage.read_all(Signal::Spans).await.unwrap()[0].num_rows(),
            1
        );
        assert_eq!(
            storage.read_all(Signal::Metrics).await.unwrap()[0].num_rows(),
            1
        );
    };
    check(storage.clone()).await;

    // Every file is readable: a repair, footers or every page, finds nothing to take out
    // (on S3 its listing must see the files where the table log says they are).
    for signal in Signal::ALL {
        for deep in [false, true] {
            let how = porthole_storage::Repair {
                dry_run: false,
                deep,
            };
            let report = storage.repair(signal, how).await.expect("repair");
            assert_eq!(report.unreadable, [], "{signal} deep={deep}");
            assert_eq!(report.version, None);
        }
    }

    // Compaction: the first day's 5 small files become one, found by the index at the
    // right rows; after vacuum the replaced files are gone and every row still reads.
    let before = storage.files(Signal::Logs).await.unwrap();
    let policy = CompactionPolicy {
        min_files: 2,
        ..Default::default()
    };
    let report = storage
        .compact(Signal::Logs, &policy)
        .await
        .expect("compact");
    assert_eq!(
        (report.files_written, report.files_replaced, report.rows),
        (1, 5, 6)
    );
    let after = storage.files(Signal::Logs).await.unwrap();
    assert_eq!(after.len(), 2);
    let compacted = after
        .iter()
        .find(|f| f.compacted)
        .expect("a compacted file");
    let searcher = storage
        .open_index(
            Signal::Logs,
            &compacted.path,
            compacted.index_path.as_deref().unwrap(),
        )
        .await
        .unwrap();
    let body = searcher.schema().get_field("body").unwrap();
    // The index brings its own tokenizers: the text column's is not one of tantivy's.
    let parser = tantivy::query::QueryParser::for_index(searcher.index(), vec![body]);
    let docs = searcher
        .search(
            &parser.parse_query("\"disk full\"").unwrap(),
            &tantivy::collector::DocSetCollector,
        )
        .unwrap();
    assert_eq!(docs.len(), 1);
    let address = docs.into_iter().next().unwrap();
    let row = searcher
        .segment_reader(address.segment_ord)
        .fast_fields()
        .u64("row")
        .unwrap()
        .first(address.doc_id)
        .unwrap();
    let found = storage
        .read_rows(Signal::Logs, &compacted.path, &[row])
        .await
        .unwrap();
    assert_eq!(
        found
            .column_by_name("body")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "disk full on node-3"
    );
    check(storage.clone()).await;
    let replaced = before.iter().find(|f| f.day == compacted.day).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(
        storage
            .vacuum(Signal::Logs, std::time::Duration::ZERO)
            .await
            .unwrap(),
        10
    );
    assert!(
        storage
            .read_object(Signal::Logs, &replaced.path)
            .await
            .is_err()
    );
    check(storage.clone()).await;

    if reopenable {
        drop(storage);
        let storage = Arc::new(open().await);
        check(storage.clone()).await;

        // A second node on the same storage sees the first one's commits: it keeps the
        // file list of the version it holds only while no newer commit exists.
        let other = open().await;
        let seen = other.files(Signal::Logs).await.unwrap();
        assert_eq!(other.files(Signal::Logs).await.unwrap().len(), seen.len());
        let more = convert_logs(&logs(&[("one more line", T0 + 2)]), 0).batch;
        storage.append(Signal::Logs, more).await.unwrap();
        let now = other.files(Signal::Logs).await.unwrap();
        assert_eq!(
            now.len(),
            seen.len() + 1,
            "the other node's commit is listed"
        );
        assert_eq!(
            other.version(Signal::Logs).await,
            storage.version(Signal::Logs).await
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn contract_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    contract(
        move || {
            let path = path.clone();
            Box::pin(async move { Storage::open(Location::Local(path)).await.unwrap() })
        },
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn contract_memory() {
    contract(
        || {
            Box::pin(async {
                Storage::open(Location::Memory {
                    prefix: String::new(),
                })
                .await
                .unwrap()
            })
        },
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn contract_s3() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path(), "contract").await;
    let options: HashMap<String, String> = s3
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let location = Location::S3 {
        bucket: "contract".into(),
        prefix: "root".into(),
    };
    contract(
        move || {
            let (location, options) = (location.clone(), options.clone());
            Box::pin(async move { Storage::open_with_options(location, options).await.unwrap() })
        },
        true,
    )
    .await;
}

/// The value of a counter `Storage::register_metrics` registered.
fn storage_counter(storage: &Storage, name: &str) -> f64 {
    let mut registry = prometheus_client::registry::Registry::default();
    storage.register_metrics(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} not in {text}"))
        .parse()
        .unwrap()
}

/// Storage in `dir` whose logs table holds one file of one record for each body.
async fn local_with_files(dir: &std::path::Path, bodies: &[&str]) -> Storage {
    let storage = Storage::open(Location::Local(dir.to_path_buf()))
        .await
        .unwrap();
    for body in bodies {
        let batch = convert_logs(&logs(&[(body, T0)]), 0).batch;
        storage.append(Signal::Logs, batch).await.unwrap();
    }
    storage
}

/// Searches that need the same index at the same moment (a dashboard's panels over one
/// range) read it once, and when it is missing, rebuild it once: before, each of them
/// read the data file and built the whole index again, in parallel.
#[tokio::test(flavor = "multi_thread")]
async fn searches_that_miss_one_index_at_once_open_or_rebuild_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let storage = local_with_files(dir.path(), &["first file", "second file"]).await;
    let files = storage.files(Signal::Logs).await.unwrap();
    let table = dir.path().join(Signal::Logs.table_name());
    std::fs::remove_file(table.join(files[1].index_path.as_deref().unwrap())).unwrap();

    for file in &files {
        let index_path = file.index_path.as_deref().unwrap();
        let opens = (0..8).map(|_| storage.open_index(Signal::Logs, &file.path, index_path));
        for searcher in futures::future::join_all(opens).await {
            assert_eq!(searcher.expect("opened or rebuilt").num_docs(), 1);
        }
    }
    assert_eq!(
        storage_counter(&storage, "porthole_indexes_rebuilt_total"),
        1.0
    );
    assert_eq!(
        storage_counter(&storage, "porthole_index_cache_misses_total"),
        2.0
    );
    assert_eq!(
        storage_counter(&storage, "porthole_index_cache_hits_total"),
        14.0
    );
}

/// A data file with a damaged page but an intact footer (bit rot in the object's first
/// page header): reading its rows says which file and that it is not readable Parquet,
/// whichever reader hits it (before, the whole-file reader's error was a 503 "storage is
/// unavailable"), and compaction leaves it out and merges the rest of its day.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_page_is_named_and_compaction_leaves_its_file_out() {
    let dir = tempfile::tempdir().unwrap();
    let storage = local_with_files(dir.path(), &["first file", "second file", "third file"]).await;
    let files = storage.files(Signal::Logs).await.unwrap();
    let damaged = &files[0].path;
    let on_disk = dir.path().join(Signal::Logs.table_name()).join(damaged);
    let mut bytes = std::fs::read(&on_disk).unwrap();
    bytes[4..24].fill(0xA5);
    std::fs::write(&on_disk, &bytes).unwrap();

    let whole = storage.read_file(Signal::Logs, damaged).await.unwrap_err();
    let one_row = storage
        .read_rows(Signal::Logs, damaged, &[0])
        .await
        .unwrap_err();
    for error in [whole, one_row] {
        match &error {
            porthole_storage::StorageError::UnreadableDataFile { path, problem, .. } => {
                assert_eq!(path, damaged);
                assert!(problem.starts_with("not readable Parquet"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
        assert!(error.to_string().contains("porthole repair"), "{error}");
    }
    // Its footer is intact: only a deep repair finds it, and the message says so.
    let error = storage
        .read_rows(Signal::Logs, damaged, &[0])
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("`porthole repair --deep`"),
        "{error}"
    );
    let check = |deep| porthole_storage::Repair {
        dry_run: true,
        deep,
    };
    let footers = storage.repair(Signal::Logs, check(false)).await.unwrap();
    assert_eq!(footers.unreadable, []);
    let pages = storage.repair(Signal::Logs, check(true)).await.unwrap();
    assert_eq!(pages.unreadable.len(), 1, "{pages:?}");
    assert_eq!(&pages.unreadable[0].0, damaged);

    let policy = CompactionPolicy {
        min_files: 2,
        ..Default::default()
    };
    let report = storage.compact(Signal::Logs, &policy).await.unwrap();
    assert_eq!(
        (report.unreadable, report.files_replaced),
        (1, 2),
        "{report:?}"
    );
}

/// `porthole repair` on a real S3 server: deltalake's filesystem check lists the table's
/// objects under the bucket prefix and finds the one data file deleted behind the table
/// log's back (a wrong lifecycle rule), and only that one.
#[tokio::test(flavor = "multi_thread")]
async fn repair_on_s3_takes_out_only_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path(), "repair").await;
    let options: HashMap<String, String> = (s3.env().into_iter())
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let location = Location::S3 {
        bucket: "repair".into(),
        prefix: "root".into(),
    };
    let storage = Storage::open_with_options(location, options).await.unwrap();
    for body in ["kept", "lost"] {
        let batch = convert_logs(&logs(&[(body, T0)]), 0).batch;
        storage.append(Signal::Logs, batch).await.unwrap();
    }
    let files = storage.files(Signal::Logs).await.unwrap();
    let lost = &files[1].path;
    let object = dir.path().join("repair/root/logs").join(lost);
    std::fs::remove_file(&object).unwrap_or_else(|e| panic!("{}: {e}", object.display()));

    let how = |dry_run| porthole_storage::Repair {
        dry_run,
        deep: false,
    };
    let found = storage.repair(Signal::Logs, how(true)).await.unwrap();
    assert_eq!(
        found.unreadable,
        [(lost.clone(), "missing from storage".to_string())]
    );
    assert_eq!(storage.files(Signal::Logs).await.unwrap().len(), 2);
    let repaired = storage.repair(Signal::Logs, how(false)).await.unwrap();
    assert!(repaired.version.is_some());
    let left = storage.files(Signal::Logs).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(&left[0].path, &files[0].path);
    assert_eq!(
        storage.read_all(Signal::Logs).await.unwrap()[0].num_rows(),
        1
    );
}
