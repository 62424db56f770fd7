//! Router-level tests with `tower::ServiceExt::oneshot` over a real local table: whatever
//! a client puts in the query string, the API answers with a 2xx or a 4xx, never a 5xx.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use porthole_proto::common::{AnyValue, KeyValue, any_value::Value};
use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_storage::{Location, Signal, Storage, convert_logs};
use proptest::prelude::*;
use tower::ServiceExt;

use crate::{QueryState, TailSource, router};

async fn router_over_some_logs(dir: &std::path::Path) -> axum::Router {
    let storage = Arc::new(
        Storage::open(Location::parse(None, dir).unwrap())
            .await
            .unwrap(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let record = |i: u64, body: &str| LogRecord {
        time_unix_nano: now - i * 1_000_000,
        severity_number: 9 + (i % 3) as i32 * 4,
        body: Some(AnyValue {
            value: Some(Value::StringValue(body.into())),
        }),
        attributes: vec![KeyValue {
            key: "status".into(),
            value: Some(AnyValue {
                value: Some(Value::IntValue(200 + i as i64)),
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: (0..50)
                    .map(|i| record(i, &format!("request {i} failed: connection refused")))
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    storage
        .append(Signal::Logs, convert_logs(&request, 0).batch)
        .await
        .unwrap();
    router(QueryState {
        storage: storage.clone(),
        sql_limits: Default::default(),
        prom_limits: Default::default(),
        prom_metrics: Default::default(),
        tail: TailSource {
            storage,
            ingest_nodes: Vec::new(),
            authorization: None,
            local_commits: true,
            dropped: Default::default(),
            tls: None,
            closing: Default::default(),
            slots: crate::TailSlots::new(256, &mut Default::default()),
        },
        snapshots: crate::SnapshotSource {
            control: Default::default(),
            tenant: None,
            keep_for: std::time::Duration::from_secs(30 * 86_400),
        },
        slots: crate::QuerySlots::new(8, 64, &mut Default::default()),
        query_timeout: std::time::Duration::from_secs(60),
    })
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Rows a search returns (at most 100).
async fn count(app: &axum::Router, query: &str) -> usize {
    let uri = format!("/api/v1/logs?limit=100&q={}", encode(query));
    let response = app
        .clone()
        .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{query}");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["rows"].as_array().unwrap().len()
}

#[test]
fn exclusions_read_as_lucene_reads_them() {
    let (runtime, app) = shared();
    runtime.block_on(async {
        assert_eq!(count(app, "request").await, 50);
        for query in [
            "request AND NOT 7",
            "request NOT 7",
            "request -7",
            "request AND -7",
            "NOT 7",
            "-7",
            "(request AND NOT 7)",
        ] {
            assert_eq!(count(app, query).await, 49, "{query}");
        }
        assert_eq!(count(app, "NOT 7 AND NOT 8").await, 48);
        assert_eq!(count(app, "request AND NOT (7 OR 8)").await, 48);
        assert_eq!(count(app, "NOT request").await, 0);
    });
}

/// Query strings built from the characters the query grammar gives meaning to.
fn query_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "error",
        "AND",
        "OR",
        "NOT",
        "\"",
        "(",
        ")",
        ":",
        "*",
        "?",
        "-",
        "+",
        "!",
        "^",
        "~",
        "[",
        "]",
        "{",
        "}",
        "/",
        "\\",
        " ",
        ">=",
        "<",
        "status",
        "service:",
        "attributes.",
        "status:>=500",
        "\u{e9}",
        "\u{1F600}",
        "TO",
        "1e999",
        "-9223372036854775809",
        ".",
        "IN",
        "$",
        "'",
    ]);
    prop::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
}

fn param_value() -> impl Strategy<Value = String> {
    prop_oneof![
        query_text(),
        Just("now-15m".to_string()),
        Just("2026-13-40T99:00:00Z".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999999".to_string()),
        "[ -~]{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_query_string_gets_a_5xx(
        path in prop::sample::select(vec![
            "/api/v1/logs", "/api/v1/logs/histogram", "/api/v1/traces",
        ]),
        params in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "q", "start", "end", "limit", "cursor", "step", "service", "severity",
                    "min_duration", "status", "bogus",
                ]),
                param_value(),
            ),
            0..4,
        ),
    ) {
        let (runtime, app) = shared();
        let status = runtime.block_on(async {
            let query: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect();
            let uri = format!("{path}?{}", query.join("&"));
            let response = app
                .clone()
                .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            response.status()
        });
        prop_assert!(!status.is_server_error(), "{path} {params:?} answered {status}");
    }
}

/// One runtime, table and router for every case.
fn shared() -> &'static (tokio::runtime::Runtime, axum::Router) {
    static SHARED: std::sync::OnceLock<(tokio::runtime::Runtime, axum::Router)> =
        std::sync::OnceLock::new();
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let app = runtime.block_on(router_over_some_logs(dir.path()));
        (runtime, app)
    })
}
