//! The query API over data the OpenTelemetry Python SDK sent: search in each query form,
//! filters, pagination, histogram, traces, SQL, the error cases, a query-only process,
//! and the CLI client.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use porthole_proto::logs_service::logs_service_client::LogsServiceClient;
use serde_json::Value;

use crate::harness::{Porthole, binary, run_python, wait_for};
use crate::load::export_request;

async fn get(porthole: &Porthole, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(porthole.url(path))
        .query(query)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The rows of a `GET /api/v1/logs` that must answer 200.
pub(crate) async fn search(porthole: &Porthole, query: &[(&str, &str)]) -> Vec<Value> {
    let (status, body) = get(porthole, "/api/v1/logs", query).await;
    assert_eq!(status, 200, "{query:?}: {body}");
    body["rows"].as_array().unwrap().clone()
}

async fn sql(porthole: &Porthole, sql: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(porthole.url("/api/v1/sql"))
        .json(&serde_json::json!({"sql": sql}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Sends the round-trip data set (20 error logs, a 2-span trace, metrics) for `tag`.
fn send(porthole: &Porthole, root: &str, tag: &str) {
    let args = [
        "--protocol",
        "grpc",
        "--endpoint",
        &porthole.grpc_endpoint(),
        "--table-root",
        root,
        "--tag",
        tag,
    ]
    .map(String::from);
    run_python("roundtrip.py", &args, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_filters_pages_histograms_traces_and_sql() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "100ms"], &[]).await;
    send(&porthole, &root, "alpha");
    send(&porthole, &root, "beta");
    let alpha = [("service", "checkout-alpha")];

    // Phrase, newest first, with typed attributes and the promoted columns.
    let rows = search(&porthole, &[("q", "\"payment failed\""), alpha[0]]).await;
    assert_eq!(rows.len(), 20);
    let times: Vec<&str> = rows
        .iter()
        .map(|r| r["timestamp"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    assert_eq!(rows[0]["attributes"]["order.id"], 19);
    assert_eq!(rows[0]["attributes"]["ratio"], 0.5);
    assert_eq!(rows[0]["severity"], "ERROR");
    assert_eq!(rows[0]["version"], "v2.3.1");
    assert_eq!(rows[0]["trace_id"].as_str().unwrap().len(), 32);

    // Each query form.
    let count = |rows: Vec<Value>| rows.len();
    assert_eq!(
        count(search(&porthole, &[("q", "alpha AND refused")]).await),
        20,
        "terms with AND"
    );
    assert_eq!(
        count(search(&porthole, &[("q", "alpha OR beta")]).await),
        40,
        "OR"
    );
    assert_eq!(
        count(search(&porthole, &[("q", "payment NOT alpha")]).await),
        20,
        "NOT"
    );
    assert_eq!(
        count(search(&porthole, &[("q", "order.id:>=15"), alpha[0]]).await),
        5,
        "numeric range on an attribute"
    );
    assert_eq!(
        count(search(&porthole, &[("q", "tag:beta")]).await),
        20,
        "field:value on an attribute"
    );
    assert_eq!(
        count(search(&porthole, &[("q", "service:checkout-beta")]).await),
        20,
        "field:value on a promoted column"
    );
    assert_eq!(
        count(search(&porthole, &[("q", "alph*")]).await),
        20,
        "wildcard"
    );
    assert_eq!(
        count(search(&porthole, &[("q", "needle-that-is-nowhere")]).await),
        0
    );
    assert_eq!(
        count(search(&porthole, &[("severity", "error"), alpha[0]]).await),
        20
    );
    assert_eq!(
        count(search(&porthole, &[("severity", "INFO"), alpha[0]]).await),
        0
    );
    assert_eq!(
        count(
            search(
                &porthole,
                &[("namespace", "shop"), ("pod", "checkout-beta-7d9f")]
            )
            .await
        ),
        20
    );
    assert_eq!(
        count(search(&porthole, &[("start", "now-1s"), ("end", "now"), alpha[0]]).await),
        0,
        "time range excludes"
    );
    assert_eq!(
        count(search(&porthole, &[("start", "2000-01-01T00:00:00Z"), alpha[0]]).await),
        20,
        "RFC 3339"
    );

    // Pagination: every record exactly once, newest first and (`direction=forward`)
    // oldest first, in opposite orders.
    let mut orders = Vec::new();
    for direction in ["backward", "forward"] {
        let (mut seen, mut order) = (HashSet::new(), Vec::new());
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut query = vec![
                ("limit", "7".to_string()),
                ("q", "payment".to_string()),
                ("direction", direction.to_string()),
            ];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body) = get(&porthole, "/api/v1/logs", &query).await;
            assert_eq!(status, 200, "{body}");
            for row in body["rows"].as_array().unwrap() {
                let body = row["body"].as_str().unwrap().to_string();
                assert!(seen.insert(body.clone()), "repeated {row}");
                order.push((row["timestamp"].as_str().unwrap().to_string(), body));
            }
            pages += 1;
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!((seen.len(), pages), (40, 6), "{direction}");
        orders.push(order);
    }
    let (backward, mut forward) = (orders[0].clone(), orders[1].clone());
    assert!(
        backward.windows(2).all(|w| w[0].0 >= w[1].0),
        "{backward:?}"
    );
    forward.reverse();
    assert_eq!(forward, backward);
    // Each row's own cursor pages on from that row either way: its context.
    let page = search(&porthole, &[("q", "payment"), ("limit", "5")]).await;
    let cursor = page[3]["cursor"].as_str().unwrap();
    let bodies =
        |rows: Vec<Value>| -> Vec<Value> { rows.iter().map(|r| r["body"].clone()).collect() };
    let from_row = |direction: &'static str, limit: &'static str| {
        let query = [
            ("q", "payment"),
            ("limit", limit),
            ("direction", direction),
            ("cursor", cursor),
        ];
        let porthole = &porthole;
        async move { bodies(search(porthole, &query).await) }
    };
    assert_eq!(
        from_row("forward", "2").await,
        [page[2]["body"].clone(), page[1]["body"].clone()]
    );
    assert_eq!(from_row("backward", "1").await, [page[4]["body"].clone()]);

    // Histogram totals equal what was sent.
    let (status, body) = get(
        &porthole,
        "/api/v1/logs/histogram",
        &[("q", "payment"), ("step", "1m"), ("start", "now-1h")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 40);
    assert_eq!(
        body["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum::<u64>(),
        40
    );

    // By severity: each bucket's counts per severity add up to what a search finds.
    let (status, body) = get(
        &porthole,
        "/api/v1/logs/histogram",
        &[
            ("q", "payment"),
            ("step", "1m"),
            ("start", "now-1h"),
            ("by", "severity"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut by_severity = std::collections::BTreeMap::<String, u64>::new();
    for bucket in body["buckets"].as_array().unwrap() {
        for (severity, n) in bucket["by"].as_object().unwrap() {
            *by_severity.entry(severity.clone()).or_default() += n.as_u64().unwrap();
        }
    }
    assert!(!by_severity.is_empty(), "{body}");
    for (severity, n) in &by_severity {
        let found = search(
            &porthole,
            &[("q", "payment"), ("severity", severity), ("limit", "1000")],
        )
        .await;
        assert_eq!(found.len() as u64, *n, "{severity}");
    }
    let (status, body) = get(&porthole, "/api/v1/logs", &[("by", "severity")]).await;
    assert_eq!(status, 400, "{body}");

    // The trace comes back whole, with its parent link.
    let trace_id = rows[0]["trace_id"].as_str().unwrap().to_string();
    let (status, body) = get(&porthole, &format!("/api/v1/traces/{trace_id}"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let spans = body["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2);
    let parent = spans.iter().find(|s| s["name"] == "checkout").unwrap();
    let child = spans.iter().find(|s| s["name"] == "charge card").unwrap();
    assert_eq!(child["parent_span_id"], parent["span_id"]);
    assert_eq!(parent["events"][0]["name"], "cart loaded");

    // SQL aggregates match what was sent.
    let (status, body) = sql(
        &porthole,
        "SELECT service, count(*) AS n FROM logs GROUP BY service ORDER BY service",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["rows"],
        serde_json::json!([{"service": "checkout-alpha", "n": 20}, {"service": "checkout-beta", "n": 20}])
    );
    let (_, body) = sql(
        &porthole,
        // A cumulative counter: each export repeats the running total (5 per service).
        "SELECT service, max(value_int) AS total FROM metrics WHERE metric_name = 'orders_total' GROUP BY service ORDER BY service",
    )
    .await;
    assert_eq!(
        body["rows"],
        serde_json::json!([{"service": "checkout-alpha", "total": 5}, {"service": "checkout-beta", "total": 5}])
    );

    // The CLI client prints the same data.
    let server = format!("http://{}", porthole.http);
    let run = |args: &[&str]| {
        let out = Command::new(binary("porthole"))
            .args(args)
            .args(["--server", &server])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let cli = |args: &[&str]| String::from_utf8(run(args).stdout).unwrap();
    let text = cli(&[
        "logs",
        "\"payment failed\"",
        "--service",
        "checkout-beta",
        "--since",
        "1h",
        "--limit",
        "5",
    ]);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.lines().all(|l| l.contains("ERROR")
            && l.contains("checkout-beta")
            && l.contains("payment failed")),
        "{text}"
    );
    // Every filter the API takes, severities in any case, and an absolute time range.
    let filtered = |extra: &[&str]| {
        let mut args = vec!["logs", "\"payment failed\"", "--limit", "100"];
        args.extend(extra);
        cli(&args).lines().count()
    };
    let beta = [
        "-n",
        "shop",
        "--pod",
        "checkout-beta-7d9f",
        "-c",
        "app",
        "--version",
        "v2.3.1",
        "--severity",
        "error",
    ];
    assert_eq!(filtered(&beta), 20);
    assert_eq!(filtered(&["--pod", "checkout-alpha-7d9f"]), 20);
    assert_eq!(
        filtered(&["--pod", "checkout-alpha-7d9f", "--service", "checkout-beta"]),
        0
    );
    assert_eq!(filtered(&["--namespace", "other"]), 0);
    // Nothing found is said on stderr (a pipe reads nothing), and is no failure.
    for (args, says) in [
        (
            &["logs", "nothing-is-called-this", "--since", "2h"][..],
            Some("no records match, searching from the last 2h"),
        ),
        (
            &["logs", "x", "--from", "now-2h", "--to", "now-1h"][..],
            Some("no records match, searching from now-2h up to now-1h"),
        ),
        (
            &["metrics", "nothing_is_called_this"][..],
            Some("no series match nothing_is_called_this"),
        ),
        (
            &["logs", "nothing-is-called-this", "--output", "json"][..],
            None,
        ),
    ] {
        let out = run(args);
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        match says {
            Some(says) => assert!(stderr.contains(says), "{args:?}: {stderr}"),
            None => assert!(stderr.is_empty(), "{args:?}: {stderr}"),
        }
    }
    assert_eq!(filtered(&["--from", "now-1h"]), 40);
    assert_eq!(filtered(&["--from", "now-2h", "--to", "now-1h"]), 0);
    let oldest_first = cli(&[
        "logs",
        "payment",
        "--forward",
        "--limit",
        "40",
        "--output",
        "json",
    ]);
    let newest_first = cli(&["logs", "payment", "--limit", "40", "--output", "json"]);
    let mut reversed: Vec<&str> = newest_first.lines().collect();
    reversed.reverse();
    assert_eq!(oldest_first.lines().collect::<Vec<_>>(), reversed);
    let table = cli(&["sql", "SELECT count(*) AS n FROM spans"]);
    assert_eq!(
        table.lines().map(str::trim).collect::<Vec<_>>(),
        ["n", "-", "4"],
        "{table}"
    );
    let tree = cli(&["trace", &trace_id]);
    let lines: Vec<&str> = tree.lines().collect();
    assert!(lines[0].starts_with("checkout [checkout-"), "{tree}");
    assert!(lines[1].starts_with("  charge card ["), "{tree}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_queries_are_400s_that_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "50ms"], &[]).await;
    let mut client = LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap();
    client
        .export(export_request(&["something".to_string()]))
        .await
        .unwrap();
    let cases: [(&str, &[(&str, &str)], u16, &str); 12] = [
        (
            "/api/v1/logs",
            &[("q", "status:>=500 AND (")],
            400,
            "position",
        ),
        ("/api/v1/logs", &[("start", "yesterday")], 400, "start"),
        (
            "/api/v1/logs",
            &[("start", "now"), ("end", "now-1h")],
            400,
            "before",
        ),
        (
            "/api/v1/logs",
            &[
                ("start", "2026-01-02T00:00:00Z"),
                ("end", "1767225600000000000"),
            ],
            400,
            "start (2026-01-02T00:00:00.000000000Z) must be before end (2026-01-01T00:00:00.000000000Z)",
        ),
        ("/api/v1/logs", &[("limit", "0")], 400, "limit"),
        ("/api/v1/logs", &[("servce", "x")], 400, "servce"),
        ("/api/v1/logs", &[("cursor", "garbage")], 400, "cursor"),
        ("/api/v1/logs", &[("direction", "up")], 400, "backward"),
        ("/api/v1/logs/histogram", &[("step", "0s")], 400, "step"),
        (
            "/api/v1/logs/histogram",
            &[("direction", "forward")],
            400,
            "search parameter",
        ),
        (
            "/api/v1/traces/0123456789abcdef0123456789abcdef",
            &[],
            404,
            "no spans",
        ),
        ("/api/v1/traces/not-a-trace", &[], 400, "32 hex"),
    ];
    for (path, query, want, needle) in cases {
        let (status, body) = get(&porthole, path, query).await;
        assert_eq!(status, want, "{path} {query:?}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{path} {query:?}: {message}");
    }
    for (statement, needle) in [
        ("DELETE FROM logs", "read-only"),
        ("SELECT nope FROM logs", "nope"),
        ("SELEKT 1", "SQL"),
    ] {
        let (status, body) = sql(&porthole, statement).await;
        assert_eq!(status, 400, "{statement}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(needle),
            "{statement}: {body}"
        );
    }
}

/// What a request or a commit logs carries its span: with JSON logs at debug level, the
/// commit of an export logs `batch committed` inside a `commit` span naming the signal and
/// the number of exports, and a search logs `request answered` inside a `request` span
/// naming the route pattern, with the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_and_commits_log_inside_their_spans() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start(
        "serve",
        dir.path(),
        &["--batch-window", "50ms", "--log-format", "json"],
        &[(
            "PORTHOLE_LOG",
            "info,porthole_ingest=debug,porthole_query=debug",
        )],
    )
    .await;
    LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap()
        .export(export_request(&["spanned".to_string()]))
        .await
        .unwrap();
    let (status, _) = get(
        &porthole,
        "/api/v1/traces/0123456789abcdef0123456789abcdef",
        &[],
    )
    .await;
    assert_eq!(status, 404);
    let events = |message: &str| -> Vec<Value> {
        porthole
            .output()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["fields"]["message"] == message)
            .collect()
    };
    let commits = wait_for("the commit's event", Duration::from_secs(10), || async {
        let found = events("batch committed");
        (!found.is_empty()).then_some(found)
    })
    .await;
    assert_eq!(commits[0]["span"]["name"], "commit", "{}", commits[0]);
    assert_eq!(commits[0]["span"]["signal"], "logs", "{}", commits[0]);
    assert_eq!(commits[0]["span"]["exports"], 1, "{}", commits[0]);
    let answered = wait_for("the request's event", Duration::from_secs(10), || async {
        let found = events("request answered");
        (!found.is_empty()).then_some(found)
    })
    .await;
    let request = &answered[0];
    assert_eq!(request["span"]["name"], "request", "{request}");
    assert_eq!(
        request["span"]["route"], "/api/v1/traces/{trace_id}",
        "{request}"
    );
    assert_eq!(request["span"]["method"], "GET", "{request}");
    assert_eq!(request["fields"]["status"], 404, "{request}");
}

/// Records of a megabyte each: a page stops at 32 MiB of rows, however large its `limit`,
/// and its cursor goes on from there; paging returns every record once, newest first, and
/// `porthole logs --limit` follows the cursor to print them all. A SQL answer stops at
/// 64 MiB and says it was cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_of_megabyte_records_stops_at_its_byte_cap_and_pages_on() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "50ms"], &[]).await;
    let mut client = LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap()
        .max_encoding_message_size(usize::MAX);
    // A word, then a megabyte of one letter (too long to be a term: the index stays small).
    let body = |i: usize| format!("huge-{i} {}", "x".repeat(1 << 20));
    for exports in (0..48).collect::<Vec<_>>().chunks(6) {
        let bodies: Vec<String> = exports.iter().map(|&i| body(i)).collect();
        client.export(export_request(&bodies)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("q", "huge".to_string()), ("limit", "5000".to_string())];
        query.extend(cursor.take().map(|c| ("cursor", c)));
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, page) = get(&porthole, "/api/v1/logs", &query).await;
        assert_eq!(status, 200);
        let rows = page["rows"].as_array().unwrap();
        let bytes: usize = rows.iter().map(|r| r["body"].as_str().unwrap().len()).sum();
        assert!(
            !rows.is_empty() && bytes <= 32 << 20,
            "{} rows, {bytes} bytes",
            rows.len()
        );
        seen.extend(rows.iter().map(|r| {
            let body = r["body"].as_str().unwrap();
            body[..body.find(' ').unwrap()].to_string()
        }));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert!(pages >= 2, "48 MiB of rows came in {pages} page");
    // Every record once, newest export first (records of one export may share a
    // microsecond, whose order is the record id's).
    let numbers: Vec<usize> = seen
        .iter()
        .map(|s| s["huge-".len()..].parse().unwrap())
        .collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..48).collect::<Vec<_>>(), "{seen:?}");
    assert!(
        numbers.windows(2).all(|w| w[0] / 6 >= w[1] / 6),
        "{numbers:?}"
    );

    // SQL cuts its answer at 64 MiB of rows the same way (96 MiB of them here).
    let (status, body) = sql(
        &porthole,
        "SELECT concat(body, body) AS doubled FROM logs WHERE body LIKE 'huge-%'",
    )
    .await;
    assert_eq!(status, 200, "{}", &body.to_string()[..200]);
    let rows = body["rows"].as_array().unwrap();
    let bytes: usize = rows
        .iter()
        .map(|r| r["doubled"].as_str().unwrap().len())
        .sum();
    assert_eq!(body["truncated"], true);
    assert!(
        !rows.is_empty() && bytes <= 64 << 20,
        "{} rows, {bytes} bytes",
        rows.len()
    );

    let printed = Command::new(binary("porthole"))
        .args([
            "logs", "huge", "--limit", "1000", "--output", "json", "--server",
        ])
        .arg(porthole.url(""))
        .output()
        .unwrap();
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&printed.stdout).lines().count(), 48);
}

/// A query nested thousands deep used to overflow a thread's stack, which aborts the whole
/// process (ingest included). Each language refuses such a query with a 400 that names its
/// limit, the deepest query each allows still runs (on this debug build, whose stack frames
/// are larger than a release build's), and the server answers on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queries_nested_past_the_limits_are_400s_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "50ms"], &[]).await;
    LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap()
        .export(export_request(&["deep needle".to_string()]))
        .await
        .unwrap();
    let nested = |open: &str, inner: &str, close: &str, n: usize| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    // The deepest search allowed: 32 parentheses around 64 NOTs.
    let deepest_search = nested(
        "(",
        &format!("needle AND {}nothing", "NOT ".repeat(64)),
        ")",
        32,
    );
    let too_deep = [
        (nested("(", "needle", ")", 1000), "parentheses 1000 deep"),
        (format!("{}needle", "NOT ".repeat(5000)), "5000 NOTs"),
    ];
    for path in ["/api/v1/logs", "/api/v1/logs/histogram", "/api/v1/traces"] {
        for (q, needle) in &too_deep {
            let (status, body) = get(&porthole, path, &[("q", q)]).await;
            assert_eq!(status, 400, "{path}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(needle), "{path}: {message}");
        }
        let (status, body) = get(&porthole, path, &[("q", &deepest_search)]).await;
        assert_eq!(status, 200, "{path}: {body}");
    }

    // PromQL: 64 levels around 512 operators runs; past either, bad_data naming it.
    let vectors = |n: usize| vec!["vector(1)"; n].join(" + ");
    let deepest_promql = nested("(", &vectors(513), ")", 63);
    let (status, body) = get(
        &porthole,
        "/api/v1/metrics/query",
        &[("query", &deepest_promql)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"][0]["value"][1], "513", "{body}");
    for (query, needle) in [
        (nested("abs(", "up", ")", 1000), "1000 deep"),
        (nested("(", "1", ")", 5000), "5000 deep"),
        (vec!["1"; 5000].join("+"), "4999 operators"),
    ] {
        let (status, body) = get(&porthole, "/api/v1/metrics/query", &[("query", &query)]).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errorType"], "bad_data", "{body}");
        assert!(body["error"].as_str().unwrap().contains(needle), "{body}");
    }

    // SQL: 511 operators plan and run; the longest text allowed, a chain of 1+1+…, is
    // parsed and refused for its operators; longer text is refused unread.
    let (status, body) = sql(
        &porthole,
        &format!(
            "SELECT count(*) AS n FROM logs WHERE {}",
            vec!["body = 'deep needle'"; 256].join(" OR ")
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"][0]["n"], 1, "{body}");
    let longest = format!("SELECT {}1", "1+".repeat((64 * 1024 - 8) / 2));
    for (statement, needle) in [
        (longest.clone(), "operators"),
        (format!("{longest}+1+1"), "65540 bytes"),
    ] {
        let (status, body) = sql(&porthole, &statement).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(needle),
            "{body}"
        );
    }

    // Still up, and still ingesting.
    let (status, _) = get(&porthole, "/api/v1/logs", &[("q", "needle")]).await;
    assert_eq!(status, 200);
    // Every answer above is on /metrics, by route pattern and status, and timed.
    let metrics = reqwest::get(porthole.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (series, count) in [
        (
            r#"porthole_api_requests_total{route="/api/v1/logs",status="400"}"#,
            2,
        ),
        (
            r#"porthole_api_requests_total{route="/api/v1/logs",status="200"}"#,
            2,
        ),
        (
            r#"porthole_api_requests_total{route="/api/v1/metrics/query",status="400"}"#,
            3,
        ),
        (
            r#"porthole_api_requests_total{route="/api/v1/sql",status="400"}"#,
            2,
        ),
        (
            r#"porthole_api_requests_total{route="/api/v1/sql",status="200"}"#,
            1,
        ),
        (
            r#"porthole_api_request_duration_seconds_count{route="/api/v1/logs"}"#,
            4,
        ),
    ] {
        let line = metrics.lines().find(|l| l.starts_with(series));
        assert_eq!(
            line,
            Some(format!("{series} {count}").as_str()),
            "{metrics}"
        );
    }
    LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap()
        .export(export_request(&["after the deep queries".to_string()]))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_query_process_apart_from_ingest_sees_the_same_data_and_pages_through_ties() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = Porthole::start("ingest", dir.path(), &["--batch-window", "50ms"], &[]).await;
    let query = Porthole::start("query", dir.path(), &[], &[]).await;
    // Records without any time get the receive time: 30 rows share one timestamp.
    let mut request = export_request(&(0..30).map(|i| format!("tied-{i}")).collect::<Vec<_>>());
    for record in &mut request.resource_logs[0].scope_logs[0].log_records {
        record.time_unix_nano = 0;
    }
    LogsServiceClient::connect(ingest.grpc_endpoint())
        .await
        .unwrap()
        .export(request)
        .await
        .unwrap();
    // Read-after-ack: the query node sees the acked export at once.
    let mut seen = HashSet::new();
    let mut cursor = String::new();
    loop {
        let mut params = vec![("q", "tied*"), ("limit", "7")];
        if !cursor.is_empty() {
            params.push(("cursor", &cursor));
        }
        let (status, body) = get(&query, "/api/v1/logs", &params).await;
        assert_eq!(status, 200, "{body}");
        for row in body["rows"].as_array().unwrap() {
            assert!(
                seen.insert(row["body"].as_str().unwrap().to_string()),
                "repeated {row}"
            );
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30);
    assert_eq!(
        get(&ingest, "/api/v1/logs", &[]).await.0,
        404,
        "ingest-only nodes serve no API"
    );
}

/// At most --max-concurrent-queries run and --max-queued-queries wait; past them a query
/// gets 503 at once, in each API's error shape. A live tail takes no slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queries_past_the_running_and_queued_limits_get_503_and_tails_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start(
        "serve",
        dir.path(),
        &["--max-concurrent-queries", "1", "--max-queued-queries", "0"],
        &[],
    )
    .await;
    // One query that runs for seconds takes the only slot.
    let long = tokio::spawn({
        let url = porthole.url("/api/v1/sql");
        async move {
            let sql = "SELECT count(*) AS n FROM range(200000000)";
            let response = reqwest::Client::new()
                .post(url)
                .json(&serde_json::json!({ "sql": sql }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    });
    wait_for("the long query runs", Duration::from_secs(30), || async {
        (porthole.counter("porthole_api_queries_running", &[]).await == 1.0).then_some(())
    })
    .await;

    let (status, body) = sql(&porthole, "SELECT 1 AS one").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &Value::from("overloaded"))
    );
    let (status, body) = get(&porthole, "/api/v1/metrics/query", &[("query", "up")]).await;
    assert_eq!(
        (status, &body["errorType"]),
        (503, &Value::from("unavailable"))
    );
    let (status, _) = get(&porthole, "/api/v1/logs", &[("q", "x")]).await;
    assert_eq!(status, 503);
    let tail = reqwest::get(porthole.url("/api/v1/logs/tail?q=x"))
        .await
        .unwrap();
    assert_eq!(tail.status().as_u16(), 200, "a tail takes no query slot");
    drop(tail);
    // Resuming one searches: that takes a slot, and is refused with the queries.
    let resuming = reqwest::Client::new()
        .get(porthole.url("/api/v1/logs/tail?q=x"))
        .header("Last-Event-ID", "1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(resuming.status().as_u16(), 503);
    assert_eq!(
        porthole
            .counter("porthole_api_queries_refused_total", &[])
            .await,
        4.0
    );

    let (status, body) = long.await.unwrap();
    assert_eq!(
        (status, &body["rows"][0]["n"]),
        (200, &Value::from(200_000_000))
    );
    let (status, body) = sql(&porthole, "SELECT 1 AS one").await;
    assert_eq!(
        (status, &body["rows"][0]["one"]),
        (200, &Value::from(1)),
        "{body}"
    );
}

/// 600 records, "payment F-I declined", committed as 30 files (one export each, the batch
/// window short).
async fn thirty_files_of_declines(porthole: &Porthole) {
    let mut client = LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap();
    for file in 0..30 {
        let bodies: Vec<String> = (0..20)
            .map(|i| format!("payment {file}-{i} declined"))
            .collect();
        client.export(export_request(&bodies)).await.unwrap();
    }
}

/// A search still running at `--query-timeout` is stopped and answered 504 with a message
/// that names the flag, and frees its query slot; SQL keeps its own limit. (1 ms: opening
/// thirty files' indexes takes longer than that.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn searches_past_the_query_timeout_are_stopped_with_504() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start(
        "serve",
        dir.path(),
        &["--query-timeout", "1ms", "--batch-window", "20ms"],
        &[],
    )
    .await;
    thirty_files_of_declines(&porthole).await;
    for path in ["/api/v1/logs", "/api/v1/logs/histogram"] {
        let (status, body) = get(&porthole, path, &[("q", "declined")]).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (504, &Value::from("timeout")),
            "{path}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("--query-timeout (1ms)"), "{message}");
    }
    let (status, body) = sql(&porthole, "SELECT count(*) AS n FROM logs").await;
    assert_eq!(
        (status, &body["rows"][0]["n"]),
        (200, &Value::from(600)),
        "{body}"
    );
    assert_eq!(
        porthole.counter("porthole_api_queries_running", &[]).await,
        0.0,
        "stopped searches gave their slots back"
    );
    assert!(Porthole::refused("serve", dir.path(), &["--query-timeout", "0s"]).contains("0s"));
}

/// The `.idx` objects under the logs table, by path.
fn index_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    files_under(&root.join("logs").join("_porthole_index"), "idx")
}

/// The files under `folder` whose names end in `.extension`, by path; folders starting
/// with `_` (the table log, the indexes) are not entered.
fn files_under(folder: &std::path::Path, extension: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![folder.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.file_name().unwrap().to_string_lossy().starts_with('_') {
                    folders.push(path);
                }
            } else if path.extension().is_some_and(|e| e == extension) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// An index is derived data: one that was deleted or damaged (a truncated upload, bit rot,
/// a wrong lifecycle rule) is rebuilt from its data file, searches find every record, and
/// the rebuilt index is written back. Before, every search over its time range failed with
/// "storage is unavailable" while SQL still read the rows.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_corrupt_index_is_rebuilt_from_its_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "50ms"], &[]).await;
    let mut client = LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap();
    for word in ["first", "second", "third"] {
        let body = format!("needle {word}");
        client.export(export_request(&[body])).await.unwrap();
    }
    // Acked means committed: three files, three indexes, none opened yet.
    let indexes = index_files(dir.path());
    assert_eq!(indexes.len(), 3, "{indexes:?}");
    let truncated = std::fs::read(&indexes[0]).unwrap();
    std::fs::write(&indexes[0], &truncated[..truncated.len() / 2]).unwrap();
    std::fs::remove_file(&indexes[1]).unwrap();

    let rows = search(&porthole, &[("q", "needle")]).await;
    let mut bodies: Vec<&str> = rows.iter().map(|r| r["body"].as_str().unwrap()).collect();
    bodies.sort();
    assert_eq!(bodies, ["needle first", "needle second", "needle third"]);
    assert_eq!(
        porthole
            .counter("porthole_indexes_rebuilt_total", &[])
            .await,
        2.0
    );
    for path in &indexes {
        let packed = bytes::Bytes::from(std::fs::read(path).unwrap());
        let index = porthole_storage::open_packed_index(&packed).unwrap();
        assert_eq!(index.reader().unwrap().searcher().num_docs(), 1, "{path:?}");
    }
    assert!(
        porthole
            .output()
            .contains("rebuilding it from its data file"),
        "{}",
        porthole.output()
    );
}

/// `porthole repair` with `args` on `dir`: its JSON line for the logs table.
fn repair_logs(dir: &std::path::Path, args: &[&str]) -> Value {
    let output = std::process::Command::new(crate::harness::binary("porthole"))
        .arg("repair")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("PORTHOLE_LOG", "warn,buoyant_kernel=off")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "a line per table: {lines:?}");
    lines.into_iter().find(|l| l["table"] == "logs").unwrap()
}

/// A data file deleted outside Porthole (a wrong lifecycle rule) or damaged loses its
/// rows; the rest must stay usable. A search or SQL query that needs such a file says
/// which file and what to do (it said "storage is unavailable" with a 503, as if a
/// retry could help); compaction leaves them out and merges the rest of their day (one
/// stopped the compaction of its whole table); and `porthole repair` takes them out of
/// the table, after which searches and SQL work again.
#[tokio::test(flavor = "multi_thread")]
async fn unreadable_data_files_are_named_and_porthole_repair_takes_them_out() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "50ms"], &[]).await;
    let mut client = LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap();
    for word in ["first", "second", "third", "fourth"] {
        let body = format!("needle {word}");
        client.export(export_request(&[body])).await.unwrap();
    }
    let data = files_under(&dir.path().join("logs"), "parquet");
    assert_eq!(data.len(), 4, "{data:?}");
    let in_table = |path: &std::path::Path| {
        let relative = path.strip_prefix(dir.path().join("logs")).unwrap();
        relative.to_string_lossy().into_owned()
    };
    let broken = [in_table(&data[0]), in_table(&data[1])];

    // Only the first file is gone: the search and SQL name it.
    std::fs::remove_file(&data[0]).unwrap();
    let (status, body) = get(&porthole, "/api/v1/logs", &[("q", "needle")]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (500, Some("data_lost")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&broken[0])
            && message.contains("missing from storage")
            && message.contains("porthole repair"),
        "{message}"
    );
    for query in [
        "SELECT body FROM logs",
        "SELECT count(*) FROM logs WHERE body LIKE '%needle%'",
    ] {
        let (status, body) = sql(&porthole, query).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (500, Some("data_lost")),
            "{body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&broken[0])
                && message.contains("missing from storage")
                && message.contains("porthole repair"),
            "{message}"
        );
    }
    // The second is damaged too.
    let damaged = std::fs::read(&data[1]).unwrap();
    std::fs::write(&data[1], &damaged[..damaged.len() / 2]).unwrap();
    let (status, body) = get(&porthole, "/api/v1/logs", &[("q", "needle")]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (500, Some("data_lost")),
        "{body}"
    );

    // Compaction merges the day's readable files and leaves the broken ones for repair.
    let compacted = crate::compaction::porthole_compact_with(dir.path(), "10m", &[]);
    assert_eq!(
        (&compacted["files_replaced"], &compacted["unreadable_files"]),
        (&serde_json::json!(2), &serde_json::json!(2)),
        "{compacted}"
    );
    assert_eq!(
        get(&porthole, "/api/v1/logs", &[("q", "needle")]).await.0,
        500
    );

    // A dry run names both files and changes nothing.
    let report = repair_logs(dir.path(), &["--dry-run"]);
    let mut found: Vec<(String, String)> = report["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().into(),
                f["problem"].as_str().unwrap().into(),
            )
        })
        .collect();
    found.sort();
    let mut expected = [
        (broken[0].clone(), "missing from storage"),
        (broken[1].clone(), "not readable Parquet"),
    ];
    expected.sort();
    assert_eq!(found.len(), 2, "{report}");
    for ((path, problem), (want_path, want_problem)) in found.iter().zip(&expected) {
        assert_eq!(path, want_path);
        assert!(problem.starts_with(want_problem), "{problem}");
    }
    assert_eq!(
        (report["removed"].as_u64(), report["version"].as_u64()),
        (Some(0), None)
    );
    assert_eq!(
        get(&porthole, "/api/v1/logs", &[("q", "needle")]).await.0,
        500
    );

    let report = repair_logs(dir.path(), &[]);
    assert_eq!(report["removed"], 2, "{report}");
    assert!(report["version"].is_u64(), "{report}");
    let rows = search(&porthole, &[("q", "needle")]).await;
    let mut bodies: Vec<&str> = rows.iter().map(|r| r["body"].as_str().unwrap()).collect();
    bodies.sort();
    let mut kept = vec![
        "needle first",
        "needle second",
        "needle third",
        "needle fourth",
    ];
    let (status, body) = sql(&porthole, "SELECT body FROM logs ORDER BY body").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"].as_array().unwrap().len(), 2, "{body}");
    kept.retain(|b| bodies.contains(b));
    assert_eq!(
        kept.len(),
        2,
        "two of the four records are left: {bodies:?}"
    );
    assert_eq!(bodies.len(), 2, "{bodies:?}");

    // Nothing left to repair, nor to compact.
    assert_eq!(
        repair_logs(dir.path(), &[])["unreadable"],
        serde_json::json!([])
    );
    let compacted = crate::compaction::porthole_compact_with(dir.path(), "10m", &[]);
    assert_eq!(compacted["unreadable_files"], 0, "{compacted}");
    assert_eq!(search(&porthole, &[("q", "needle")]).await.len(), 2);
}

/// `logger.exception(...)` through the Python SDK sends the message as the body and the
/// exception (type, message, stack trace) as attributes. A search for the exception's type
/// or a frame of its stack finds the record, and `porthole logs` prints the stack trace
/// below it, as the lines of a log file would have. The span the exception failed is found
/// by trace search through its status message and recorded exception, and `porthole
/// trace` prints it with them. A dict logged after it (a map body) is found by its fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logged_exception_is_found_by_its_stack_trace_and_printed_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "100ms"], &[]).await;
    let args = ["--endpoint".to_string(), porthole.grpc_endpoint()];
    let sent: Value = serde_json::from_str(&run_python("exception.py", &args, &[])).unwrap();

    for query in [
        "ZeroDivisionError",
        "\"division by zero\"",
        "settle AND ledger",
        "aborted AND exception.type:ZeroDivisionError",
    ] {
        let rows = search(&porthole, &[("q", query)]).await;
        assert_eq!(rows.len(), 1, "{query}: {rows:?}");
        assert_eq!(rows[0]["body"], "settlement run aborted", "{query}");
    }
    // A phrase does not run from the message into the stack trace.
    assert!(
        search(&porthole, &[("q", "\"aborted traceback\"")])
            .await
            .is_empty()
    );
    // The fields of a map body are searched as attributes are.
    let rows = search(
        &porthole,
        &[("q", "event:retry AND attempt:>=2 AND gateway.name:adyen")],
    )
    .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0]["body"],
        r#"{"attempt":3,"event":"retry","gateway":{"name":"adyen"}}"#
    );

    let printed = Command::new(binary("porthole"))
        .args(["logs", "ZeroDivisionError", "--server"])
        .arg(porthole.url(""))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].ends_with("ERROR billing settlement run aborted"),
        "{text}"
    );
    assert_eq!(lines[1], "    Traceback (most recent call last):", "{text}");
    assert!(lines.iter().any(|l| l.contains("in settle")), "{text}");
    assert_eq!(
        lines.last(),
        Some(&"    ZeroDivisionError: division by zero"),
        "{text}"
    );

    // Trace search finds the span by its status message and recorded exception, and the
    // name filter still matches names alone.
    let trace_id = sent["trace_id"].as_str().unwrap();
    for query in [
        ("q", "ZeroDivisionError"),
        ("q", "\"division by zero\""),
        ("q", "zerodiv*"),
        ("q", "status_message:zero AND settle"),
        ("name", "settle"),
    ] {
        let (status, body) = get(&porthole, "/api/v1/traces", &[query]).await;
        assert_eq!(status, 200, "{query:?}: {body}");
        assert_eq!(body["traces"][0]["trace_id"], trace_id, "{query:?}: {body}");
    }
    let (_, body) = get(&porthole, "/api/v1/traces", &[("name", "division")]).await;
    assert_eq!(body["traces"], serde_json::json!([]), "{body}");

    // The span the exception failed: `porthole trace` says why, not ERROR alone.
    let printed = Command::new(binary("porthole"))
        .args(["trace", sent["trace_id"].as_str().unwrap(), "--server"])
        .arg(porthole.url(""))
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let lines: Vec<&str> = tree.lines().collect();
    assert!(lines[0].starts_with("settle [billing] "), "{tree}");
    assert!(
        lines[0].ends_with(" ms ERROR: ZeroDivisionError: division by zero"),
        "{tree}"
    );
    assert_eq!(
        lines[1..],
        ["  ! ZeroDivisionError: division by zero"],
        "{tree}"
    );
}

/// Text that arrived in the data reaches a terminal escaped: a log line, a service name, a
/// span's name and status, a SQL value and an error message that quotes a value, each with
/// an escape sequence (a terminal title, a line erase), a carriage return, a bell and a NUL,
/// are printed by `porthole logs`, `trace` and `sql` with every control character but a
/// body's own newlines and tabs written as `\u{..}`, `\r`, `\t`. `--output json` keeps the
/// text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_from_the_data_reaches_the_terminal_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "100ms"], &[]).await;
    let hostile = "pwned \u{1b}]0;owned\u{7} hidden\r\u{1b}[2Kfake\u{0}";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let attr = |k: &str, v: &str| serde_json::json!({"key": k, "value": {"stringValue": v}});
    let http = reqwest::Client::new();
    let logs = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [attr("service.name", "svc\u{1b}[31m")]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": now.to_string(),
            "severityText": "ERROR",
            "body": {"stringValue": format!("{hostile}\n\tat Trace.line(Trace.java:1)")},
        }]}]
    }]});
    let trace_id = "5b8efff798038103d269b633813fc60c";
    let spans = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", "svc")]},
        "scopeSpans": [{"spans": [{
            "traceId": trace_id,
            "spanId": "eee19b7ec3c1b174",
            "name": hostile,
            "kind": 2,
            "startTimeUnixNano": (now - 1_000_000).to_string(),
            "endTimeUnixNano": now.to_string(),
            "status": {"code": 2, "message": hostile},
        }]}]
    }]});
    for (path, body) in [("/v1/logs", logs), ("/v1/traces", spans)] {
        let response = http
            .post(porthole.otlp_http_url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }

    let run = |args: &[&str]| {
        let out = Command::new(binary("porthole"))
            .args(args)
            .args(["--server", &porthole.url("")])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let no_control = |text: &str| {
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{text:?}"
        );
    };
    let (ok, logs, _) = run(&["logs", "pwned"]);
    assert!(ok);
    no_control(&logs);
    assert!(
        logs.contains(
            "ERROR svc\\u{1b}[31m pwned \\u{1b}]0;owned\\u{7} hidden\\r\\u{1b}[2Kfake\\u{0}\n\tat Trace.line"
        ),
        "{logs:?}"
    );
    let (ok, json, _) = run(&["logs", "pwned", "--output", "json"]);
    assert!(ok);
    let row: Value = serde_json::from_str(json.trim()).unwrap();
    assert!(row["body"].as_str().unwrap().starts_with(hostile), "{row}");

    let (ok, trace, _) = run(&["trace", trace_id]);
    assert!(ok);
    no_control(&trace);
    assert!(trace.starts_with("pwned \\u{1b}]0;owned"), "{trace:?}");
    assert!(trace.contains("ERROR: pwned \\u{1b}]0;owned"), "{trace:?}");

    let (ok, table, _) = run(&["sql", "SELECT service, body FROM logs"]);
    assert!(ok);
    no_control(&table);
    assert!(table.contains("svc\\u{1b}[31m"), "{table:?}");
    assert!(table.contains("\\u{0}\\n\\tat Trace.line"), "{table:?}");

    // An error that quotes a stored value.
    let (ok, _, error) = run(&["sql", "SELECT CAST(body AS INT) FROM logs"]);
    assert!(!ok);
    no_control(&error);
    assert!(error.contains("\\u{1b}"), "{error:?}");
}
