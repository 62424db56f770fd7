//! Traces sent by the OpenTelemetry Python SDK: a 50-span trace across three services
//! comes back whole by id, and trace search finds it by service, name, status, duration
//! and attribute query, with the right summary; bad parameters are 400s.

use serde_json::Value;

use porthole_proto::common::{AnyValue, KeyValue, any_value};
use porthole_proto::resource::Resource;
use porthole_proto::trace::{ResourceSpans, ScopeSpans, Span};
use porthole_proto::trace_service::ExportTraceServiceRequest;
use porthole_proto::trace_service::trace_service_client::TraceServiceClient;

use crate::harness::{Porthole, binary, run_python};

async fn get(porthole: &Porthole, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(porthole.url(path))
        .query(query)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The trace ids a search returns, newest first.
async fn found(porthole: &Porthole, query: &[(&str, &str)]) -> Vec<String> {
    let (status, body) = get(porthole, "/api/v1/traces", query).await;
    assert_eq!(status, 200, "{query:?}: {body}");
    body["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_50_span_trace_comes_back_whole_and_search_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "50ms"], &[]).await;
    let sent: Value = serde_json::from_str(&run_python(
        "traces.py",
        &["--endpoint".into(), porthole.grpc_endpoint()],
        &[],
    ))
    .unwrap();
    let (big, small) = (
        sent["big"].as_str().unwrap(),
        sent["small"].as_str().unwrap(),
    );

    let (status, trace) = get(&porthole, &format!("/api/v1/traces/{big}"), &[]).await;
    assert_eq!(status, 200, "{trace}");
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 50, "every span of the trace");
    assert_eq!(
        (&trace["span_count"], &trace["truncated"]),
        (&50.into(), &false.into())
    );
    let services: std::collections::BTreeSet<&str> = spans
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["checkout", "frontend", "inventory"].into());
    let ids: std::collections::HashSet<&str> = spans
        .iter()
        .map(|s| s["span_id"].as_str().unwrap())
        .collect();
    let roots: Vec<&Value> = spans
        .iter()
        .filter(|s| {
            s["parent_span_id"]
                .as_str()
                .is_none_or(|p| !ids.contains(p))
        })
        .collect();
    assert_eq!(roots.len(), 1, "one root, every other parent present");
    assert_eq!(roots[0]["name"], "GET /checkout");
    let errors = spans.iter().filter(|s| s["status_code"] == "ERROR").count();
    assert_eq!(errors, 5);

    // Search: the summary of the big trace.
    let (_, body) = get(&porthole, "/api/v1/traces", &[("service", "inventory")]).await;
    let summaries = body["traces"].as_array().unwrap();
    assert_eq!(summaries.len(), 1, "{body}");
    let summary = &summaries[0];
    assert_eq!(summary["trace_id"], big);
    assert_eq!(summary["root_name"], "GET /checkout");
    assert_eq!(summary["root_service"], "frontend");
    assert_eq!(summary["span_count"], 50);
    assert_eq!(summary["error_count"], 5);
    assert_eq!(summary["duration_ns"], 2_000_000_000i64);
    assert_eq!(summary["services"].as_array().unwrap().len(), 3);

    // Each search form picks the right traces.
    let mut both = found(&porthole, &[("service", "frontend")]).await;
    both.sort();
    let mut want = vec![big.to_string(), small.to_string()];
    want.sort();
    assert_eq!(both, want);
    assert_eq!(found(&porthole, &[("name", "GET /healthz")]).await, [small]);
    assert_eq!(found(&porthole, &[("status", "error")]).await, [big]);
    assert_eq!(found(&porthole, &[("min_duration", "1s")]).await, [big]);
    // Durations are per span: the big trace's root takes 2 s, its children 0.5 ms.
    let routed = |route: &'static str| [("max_duration", "2ms"), ("q", route)];
    assert!(
        found(&porthole, &routed("http.route:\"/checkout\""))
            .await
            .is_empty()
    );
    assert_eq!(
        found(&porthole, &routed("http.route:\"/healthz\"")).await,
        [small]
    );
    assert_eq!(
        found(
            &porthole,
            &[("max_duration", "2ms"), ("service", "inventory")]
        )
        .await,
        [big]
    );
    assert_eq!(found(&porthole, &[("q", "step:>=48")]).await, [big]);
    assert_eq!(
        found(&porthole, &[("q", "http.route:\"/healthz\"")]).await,
        [small]
    );
    assert!(found(&porthole, &[("service", "nobody")]).await.is_empty());
    assert_eq!(found(&porthole, &[("limit", "1")]).await.len(), 1);

    for (query, needle) in [
        (("status", "broken"), "status"),
        (("min_duration", "fast"), "min_duration"),
        (("limit", "0"), "limit"),
        (("q", "step:>=48 AND ("), "position"),
        (("colour", "red"), "colour"),
    ] {
        let (status, body) = get(&porthole, "/api/v1/traces", &[query]).await;
        assert_eq!(status, 400, "{query:?}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{query:?}: {message}");
    }
}

/// A trace of 10 050 spans: the API answers with the earliest 10 000 by start time, says
/// how many are stored and that it cut, and `porthole trace` prints those and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trace_past_10000_spans_answers_its_earliest_and_says_it_cut() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "50ms"], &[]).await;
    let trace_id: Vec<u8> = (1..=16).collect();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        - 60_000_000_000;
    // Span i starts i microseconds in; its parent is span (i - 1) / 2.
    let spans = (0u64..10_050)
        .map(|i| Span {
            trace_id: trace_id.clone(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            parent_span_id: if i == 0 {
                vec![]
            } else {
                ((i - 1) / 2 + 1).to_be_bytes().to_vec()
            },
            name: format!("s{i}"),
            start_time_unix_nano: start + i * 1_000,
            end_time_unix_nano: start + i * 1_000 + 500,
            ..Default::default()
        })
        .collect();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("wide".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    TraceServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap()
        .export(request)
        .await
        .unwrap();
    let hex = "0102030405060708090a0b0c0d0e0f10";
    let (status, trace) = get(&porthole, &format!("/api/v1/traces/{hex}"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(trace["span_count"], 10_050);
    assert_eq!(trace["truncated"], true);
    let names: Vec<&str> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..10_000).map(|i| format!("s{i}")).collect();
    assert_eq!(names, want, "the earliest 10 000, by start time");

    let printed = std::process::Command::new(binary("porthole"))
        .args(["trace", hex, "--server"])
        .arg(porthole.url(""))
        .output()
        .unwrap();
    assert!(printed.status.success());
    let stdout = String::from_utf8_lossy(&printed.stdout);
    assert_eq!(stdout.lines().count(), 10_000);
    assert!(stdout.starts_with("s0 [wide]"), "{}", &stdout[..100]);
    assert!(
        String::from_utf8_lossy(&printed.stderr)
            .contains("10050 spans; these are the earliest 10000"),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
}
