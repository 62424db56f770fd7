//! PromQL conformance against a real Prometheus (Debian's 2.42): the same samples are
//! backfilled into Prometheus with `promtool tsdb create-blocks-from openmetrics` and sent
//! to Porthole over remote_write; every expression of [`EXPRESSIONS`] is then asked of
//! both HTTP APIs, as instant and as range queries, and the answers must agree (values
//! within 1e-6 relative). Also: a real Prometheus remote-writing what it scrapes into
//! Porthole, the Python SDK's instruments under their Prometheus names, and the errors.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use porthole_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest};
use serde_json::Value;

use crate::harness::{Porthole, PrometheusServer, prometheus_tool, run_python, wait_for};

const STEP_MS: i64 = 15_000;
const SAMPLES: i64 = 480; // 2 hours at 15 s

/// At least 40 expressions covering selectors and matchers, offset, the rate family,
/// `*_over_time`, aggregations, vector matching, comparisons, set operators, histograms,
/// math, labels, absent, subqueries.
const EXPRESSIONS: &[&str] = &[
    "http_requests_total",
    r#"http_requests_total{code="500"}"#,
    r#"http_requests_total{code!="200"}"#,
    r#"http_requests_total{method=~"G.*"}"#,
    r#"http_requests_total{instance!~"i[12]"}"#,
    r#"{__name__=~"node_temp.*", zone="b"}"#,
    "http_requests_total offset 10m",
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "resets(http_requests_total[30m])",
    "delta(node_temperature_celsius[10m])",
    "idelta(node_temperature_celsius[5m])",
    "deriv(node_temperature_celsius[10m])",
    "predict_linear(node_temperature_celsius[30m], 600)",
    "changes(node_temperature_celsius[15m])",
    "avg_over_time(node_temperature_celsius[10m])",
    "min_over_time(node_temperature_celsius[10m])",
    "max_over_time(node_temperature_celsius[10m])",
    "sum_over_time(node_temperature_celsius[10m])",
    "count_over_time(queue_depth[10m])",
    "last_over_time(queue_depth[10m])",
    "stddev_over_time(node_temperature_celsius[10m])",
    "stdvar_over_time(node_temperature_celsius[10m])",
    "quantile_over_time(0.9, node_temperature_celsius[10m])",
    "present_over_time(queue_depth[2m])",
    "queue_depth",
    "sum(rate(http_requests_total[5m]))",
    "sum by (code) (rate(http_requests_total[5m]))",
    "sum without (instance, method) (rate(http_requests_total[5m]))",
    "avg by (zone) (node_temperature_celsius)",
    "min by (zone) (node_temperature_celsius)",
    "max(node_temperature_celsius)",
    "count by (job) (http_requests_total)",
    "group by (code) (http_requests_total)",
    "topk(3, rate(http_requests_total[5m]))",
    "bottomk(2, node_temperature_celsius)",
    "quantile(0.75, node_temperature_celsius)",
    "stddev(node_temperature_celsius)",
    "stdvar by (zone) (node_temperature_celsius)",
    r#"count_values("depth", queue_depth)"#,
    "sum by (code) (rate(http_requests_total[5m])) / ignoring(code) group_left sum(rate(http_requests_total[5m]))",
    r#"rate(http_requests_total{code="500"}[5m]) / on(instance, method) rate(http_requests_total{code="200"}[5m])"#,
    r#"node_temperature_celsius * on(instance) group_left(version) build_info"#,
    r#"build_info * on(instance) group_right(version) node_temperature_celsius"#,
    "http_requests_total > 1000",
    "http_requests_total > bool 1000",
    "1000 < http_requests_total",
    "node_temperature_celsius < 25",
    "node_temperature_celsius != bool 24",
    "2 * node_temperature_celsius + 1",
    "node_temperature_celsius % 7",
    "node_temperature_celsius ^ 2",
    "-node_temperature_celsius",
    r#"http_requests_total{code="500"} and on(instance) (node_temperature_celsius > 24)"#,
    "node_temperature_celsius or queue_depth",
    r#"http_requests_total unless http_requests_total{method="GET"}"#,
    r#"http_requests_total unless on(instance) queue_depth"#,
    "histogram_quantile(0.9, rate(request_duration_seconds_bucket[5m]))",
    "histogram_quantile(0.5, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
    "abs(delta(node_temperature_celsius[5m]))",
    "ceil(node_temperature_celsius)",
    "floor(node_temperature_celsius)",
    "round(node_temperature_celsius)",
    "round(node_temperature_celsius, 0.5)",
    "clamp(node_temperature_celsius, 22, 26)",
    "clamp_min(node_temperature_celsius, 24)",
    "clamp_max(node_temperature_celsius, 24)",
    "sqrt(node_temperature_celsius)",
    "ln(node_temperature_celsius)",
    "exp(node_temperature_celsius / 10)",
    "sgn(delta(node_temperature_celsius[5m]))",
    r#"label_replace(node_temperature_celsius, "host", "h-$1", "instance", "i(.*)")"#,
    r#"label_replace(node_temperature_celsius, "zone", "", "zone", ".*")"#,
    r#"label_join(http_requests_total, "key", "-", "code", "method")"#,
    r#"absent(nonexistent_metric{job="x", env=~"p.*"})"#,
    "absent(node_temperature_celsius)",
    "absent_over_time(queue_depth[1m])",
    "scalar(sum(queue_depth))",
    "vector(1) + 2",
    "time()",
    "timestamp(node_temperature_celsius)",
    "hour(timestamp(node_temperature_celsius))",
    "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    "sum(rate(http_requests_total[5m] offset 5m))",
    "rate(http_requests_total[5m] @ end())",
    "node_temperature_celsius @ start()",
    "max_over_time(node_temperature_celsius[10m:1m] offset 5m)",
    "min_over_time(sum by (zone) (node_temperature_celsius)[20m:])",
    "sum by (instance) (http_requests_total) - on(instance) sum by (instance) (http_requests_total offset 15m)",
];

struct Dataset {
    /// (labels incl. `__name__`, samples (ms, value)).
    series: Vec<(Vec<(String, String)>, Vec<(i64, f64)>)>,
    start_ms: i64,
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Deterministic counters (one with a reset), gauges, a histogram, a series with a gap and
/// an info metric, two hours ending an hour ago, at 15 s (some instances 1 s later).
fn dataset() -> Dataset {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start_ms = (now - 3 * 3_600_000) / 60_000 * 60_000;
    let mut series = Vec::new();
    let times = |shift: i64| (0..SAMPLES).map(move |i| start_ms + i * STEP_MS + shift);
    for (n, instance) in ["i1", "i2", "i3"].iter().enumerate() {
        let shift = n as i64 * 1000;
        for (c, code) in ["200", "500"].iter().enumerate() {
            for (m, method) in ["GET", "POST"].iter().enumerate() {
                let per_step =
                    (1 + n * 3 + c * 7 + m * 2) as f64 * if *code == "500" { 0.25 } else { 1.5 };
                let mut value = 0.0;
                let points: Vec<(i64, f64)> = times(shift)
                    .enumerate()
                    .map(|(i, t)| {
                        // i2/500/POST restarts at the hour: a counter reset.
                        if *instance == "i2" && *code == "500" && *method == "POST" && i == 240 {
                            value = 0.0;
                        }
                        value += per_step * (1.0 + (i % 5) as f64 / 4.0);
                        (i, t, value)
                    })
                    // i3/200/GET misses 4 minutes of scrapes: rate windows over the gap
                    // extrapolate differently.
                    .filter(|(i, _, _)| {
                        !(*instance == "i3"
                            && *code == "200"
                            && *method == "GET"
                            && (100..116).contains(i))
                    })
                    .map(|(_, t, v)| (t, v))
                    .collect();
                series.push((
                    labels(&[
                        ("__name__", "http_requests_total"),
                        ("job", "api"),
                        ("instance", instance),
                        ("code", code),
                        ("method", method),
                    ]),
                    points,
                ));
            }
        }
        let zone = if n == 2 { "b" } else { "a" };
        let temperature: Vec<(i64, f64)> = times(shift)
            .enumerate()
            .map(|(i, t)| {
                let x = i as f64 / 20.0 + n as f64;
                (
                    t,
                    ((24.0 + 3.0 * x.sin() + (i % 7) as f64 * 0.1) * 100.0).round() / 100.0,
                )
            })
            .collect();
        series.push((
            labels(&[
                ("__name__", "node_temperature_celsius"),
                ("job", "node"),
                ("instance", instance),
                ("zone", zone),
            ]),
            temperature,
        ));
        // queue_depth of i3 stops after an hour.
        let depth: Vec<(i64, f64)> = times(shift)
            .enumerate()
            .filter(|(i, _)| n != 2 || *i < 240)
            .map(|(i, t)| (t, ((i * 7 + n * 3) % 5) as f64))
            .collect();
        series.push((
            labels(&[
                ("__name__", "queue_depth"),
                ("job", "worker"),
                ("instance", instance),
            ]),
            depth,
        ));
        series.push((
            labels(&[
                ("__name__", "build_info"),
                ("instance", instance),
                ("version", &format!("v{}", n + 1)),
            ]),
            times(shift).map(|t| (t, 1.0)).collect(),
        ));
    }
    // A histogram per instance: observations spread over the buckets differently.
    let bounds = ["0.1", "0.25", "0.5", "1", "+Inf"];
    for (n, instance) in ["i1", "i2"].iter().enumerate() {
        let mut cumulative = [0.0f64; 5];
        let mut sum = 0.0;
        let mut count = 0.0;
        let mut per_bucket: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 5];
        let mut sums = Vec::new();
        let mut counts = Vec::new();
        for (i, t) in times(0).enumerate() {
            let weights = [
                3.0 + n as f64,
                5.0,
                2.0 + (i % 3) as f64,
                1.0,
                0.5 * n as f64,
            ];
            let mut running = 0.0;
            for (b, w) in weights.iter().enumerate() {
                running += w;
                cumulative[b] += running;
                per_bucket[b].push((t, cumulative[b]));
            }
            count += running;
            sum += running * 0.3;
            sums.push((t, (sum * 1000.0f64).round() / 1000.0));
            counts.push((t, count));
        }
        for (b, le) in bounds.iter().enumerate() {
            series.push((
                labels(&[
                    ("__name__", "request_duration_seconds_bucket"),
                    ("job", "api"),
                    ("instance", instance),
                    ("le", le),
                ]),
                per_bucket[b].clone(),
            ));
        }
        series.push((
            labels(&[
                ("__name__", "request_duration_seconds_sum"),
                ("job", "api"),
                ("instance", instance),
            ]),
            sums,
        ));
        series.push((
            labels(&[
                ("__name__", "request_duration_seconds_count"),
                ("job", "api"),
                ("instance", instance),
            ]),
            counts,
        ));
    }
    Dataset { series, start_ms }
}

fn openmetrics(data: &Dataset) -> String {
    let mut text = String::new();
    for (labels, points) in &data.series {
        let name = &labels.iter().find(|(k, _)| k == "__name__").unwrap().1;
        let rest: Vec<String> = labels
            .iter()
            .filter(|(k, _)| k != "__name__")
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        for (t, v) in points {
            writeln!(text, "{name}{{{}}} {v} {}", rest.join(","), t / 1000).unwrap();
        }
    }
    text.push_str("# EOF\n");
    text
}

async fn remote_write(url: &str, data: &Dataset) {
    let client = reqwest::Client::new();
    for chunk in data.series.chunks(4) {
        let request = WriteRequest {
            timeseries: chunk
                .iter()
                .map(|(labels, points)| TimeSeries {
                    labels: labels
                        .iter()
                        .map(|(k, v)| Label {
                            name: k.clone(),
                            value: v.clone(),
                        })
                        .collect(),
                    samples: points
                        .iter()
                        .map(|(t, v)| Sample {
                            value: *v,
                            timestamp: *t,
                        })
                        .collect(),
                    histograms: Vec::new(),
                })
                .collect(),
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&prost::Message::encode_to_vec(&request))
            .unwrap();
        let response = client
            .post(url)
            .header("content-encoding", "snappy")
            .header("content-type", "application/x-protobuf")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
    }
}

/// A Prometheus whose TSDB holds `data`, backfilled with promtool.
async fn backfilled_prometheus(dir: &std::path::Path, data: &Dataset) -> PrometheusServer {
    let input = dir.join("data.om");
    std::fs::write(&input, openmetrics(data)).unwrap();
    let output = std::process::Command::new(prometheus_tool("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(dir.join("tsdb"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "promtool backfill failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PrometheusServer::start(dir, "global:\n  scrape_interval: 15s\n").await
}

async fn get(url: &str, params: &[(&str, String)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .query(params)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, json)
}

fn number(v: &Value) -> f64 {
    match v.as_str().expect("a sample value is a string") {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-6)
}

/// A result as `labels → [(t, v)]`, whatever its type.
fn normalise(data: &Value) -> (String, BTreeMap<String, Vec<(f64, f64)>>) {
    let kind = data["resultType"].as_str().unwrap().to_string();
    let mut out = BTreeMap::new();
    let pair = |p: &Value| (p[0].as_f64().unwrap(), number(&p[1]));
    match kind.as_str() {
        "scalar" => {
            out.insert("{}".into(), vec![pair(&data["result"])]);
        }
        _ => {
            for s in data["result"].as_array().unwrap() {
                let key = serde_json::to_string(&s["metric"]).unwrap();
                let points = match s.get("values") {
                    Some(values) => values.as_array().unwrap().iter().map(pair).collect(),
                    None => vec![pair(&s["value"])],
                };
                assert!(
                    out.insert(key.clone(), points).is_none(),
                    "duplicate series {key}"
                );
            }
        }
    }
    (kind, out)
}

fn compare(what: &str, prometheus: &Value, porthole: &Value) -> Result<(), String> {
    let (pk, pm) = normalise(prometheus);
    let (ok, om) = normalise(porthole);
    if pk != ok {
        return Err(format!("{what}: result type {ok}, Prometheus says {pk}"));
    }
    let (pkeys, okeys): (Vec<_>, Vec<_>) = (pm.keys().collect(), om.keys().collect());
    if pkeys != okeys {
        return Err(format!(
            "{what}: series differ\n  Prometheus: {pkeys:?}\n  Porthole:   {okeys:?}"
        ));
    }
    for (key, expected) in &pm {
        let got = &om[key];
        if expected.len() != got.len() {
            return Err(format!(
                "{what} {key}: {} points, Prometheus has {}",
                got.len(),
                expected.len()
            ));
        }
        for (e, g) in expected.iter().zip(got) {
            if (e.0 - g.0).abs() > 1e-6 || !close(e.1, g.1) {
                return Err(format!("{what} {key}: {g:?}, Prometheus says {e:?}"));
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn promql_agrees_with_prometheus() {
    assert!(EXPRESSIONS.len() >= 40);
    let dir = tempfile::tempdir().unwrap();
    let data = dataset();
    let prometheus = backfilled_prometheus(dir.path(), &data).await;
    let porthole = Porthole::start("serve", &dir.path().join("porthole"), &[], &[]).await;
    remote_write(&porthole.url("/api/v1/write"), &data).await;

    let t = |offset_ms: i64| format!("{:.3}", (data.start_ms + offset_ms) as f64 / 1000.0);
    // Instants chosen off the sample grid (samples are on whole seconds), so no result
    // depends on which side of a window edge a sample falls.
    let instants = [
        t(30 * 60_000 + 7_321),
        t(62 * 60_000 + 500),
        t(119 * 60_000 + 59_250),
    ];
    let range = [
        ("start", t(10 * 60_000 + 321)),
        ("end", t(115 * 60_000 + 321)),
        ("step", "60".to_string()),
    ];
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut non_empty = 0;
    for expr in EXPRESSIONS {
        let mut asks: Vec<(String, &str, &str, Vec<(&str, String)>)> = instants
            .iter()
            .map(|at| {
                (
                    format!("{expr} @ {at}"),
                    "/api/v1/query",
                    "/api/v1/metrics/query",
                    vec![("query", expr.to_string()), ("time", at.clone())],
                )
            })
            .collect();
        let mut params = vec![("query", expr.to_string())];
        params.extend(range.iter().cloned());
        asks.push((
            format!("{expr} (range)"),
            "/api/v1/query_range",
            "/api/v1/metrics/query_range",
            params,
        ));
        for (what, prom_path, porthole_path, params) in asks {
            let (ps, prom) = get(&prometheus.url(prom_path), &params).await;
            if prom["data"]["result"]
                .as_array()
                .is_none_or(|r| !r.is_empty())
            {
                non_empty += 1;
            }
            assert_eq!(
                ps,
                200,
                "Prometheus refused {what}: {prom}\n{}",
                prometheus.output()
            );
            let (os, ours) = get(&porthole.url(porthole_path), &params).await;
            if os != 200 {
                failures.push(format!("{what}: Porthole answered {os}: {ours}"));
                continue;
            }
            if let Err(e) = compare(&what, &prom["data"], &ours["data"]) {
                failures.push(e);
            }
            compared += 1;
        }
    }
    println!("{compared} answers compared with Prometheus, {non_empty} of them with data");
    // Agreeing on nothing proves nothing: nearly every expression selects data.
    assert!(
        non_empty * 10 >= (compared + failures.len()) * 9,
        "only {non_empty} answers had data"
    );
    assert!(
        failures.is_empty(),
        "{} of {} answers differ from Prometheus:\n{}",
        failures.len(),
        compared + failures.len(),
        failures.join("\n")
    );

    // The metadata endpoints agree too.
    let end = t(119 * 60_000);
    let start = t(0);
    for (path, params) in [
        (
            "/series",
            vec![
                ("match[]", "http_requests_total{code=\"500\"}".to_string()),
                ("start", start.clone()),
                ("end", end.clone()),
            ],
        ),
        (
            "/label/instance/values",
            vec![
                ("match[]", "queue_depth".to_string()),
                ("start", start.clone()),
                ("end", end.clone()),
            ],
        ),
        (
            "/labels",
            vec![
                ("match[]", "request_duration_seconds_bucket".to_string()),
                ("start", start.clone()),
                ("end", end.clone()),
            ],
        ),
    ] {
        let (_, prom) = get(&prometheus.url(&format!("/api/v1{path}")), &params).await;
        let (status, ours) = get(&porthole.url(&format!("/api/v1/metrics{path}")), &params).await;
        assert_eq!(status, 200, "{path}: {ours}");
        let sorted = |v: &Value| {
            let mut items: Vec<String> = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.to_string())
                .collect();
            items.sort();
            items
        };
        assert_eq!(sorted(&ours), sorted(&prom), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_promql_and_limits_answer_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset();
    let porthole = Porthole::start(
        "serve",
        &dir.path().join("porthole"),
        &["--promql-max-series", "8", "--promql-max-samples", "1000"],
        &[],
    )
    .await;
    remote_write(&porthole.url("/api/v1/write"), &data).await;
    let at = format!("{}", (data.start_ms + 3_600_000) / 1000);
    let ask = |query: &str, extra: Vec<(&'static str, String)>| {
        let mut params = vec![("query", query.to_string()), ("time", at.clone())];
        params.extend(extra);
        let url = porthole.url("/api/v1/metrics/query");
        async move { get(&url, &params).await }
    };
    let expect = |(status, body): (u16, Value), want_status: u16, kind: &str, needle: &str| {
        assert_eq!(status, want_status, "{body}");
        assert_eq!(body["status"], "error", "{body}");
        assert_eq!(body["errorType"], kind, "{body}");
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    };
    expect(
        ask("sum(rate(x[5m])", vec![]).await,
        400,
        "bad_data",
        "query",
    );
    expect(
        ask("no_such_function(x)", vec![]).await,
        400,
        "bad_data",
        "no_such_function",
    );
    expect(
        ask("holt_winters(queue_depth[10m], 0.5, 0.5)", vec![]).await,
        400,
        "bad_data",
        "holt_winters",
    );
    // 12 request series: more than the 8 allowed.
    expect(
        ask("http_requests_total", vec![]).await,
        422,
        "execution",
        "series",
    );
    // 6 series, few enough, but an hour of them is 1440 samples: more than the 1000 allowed.
    expect(
        ask(
            "count_over_time({__name__=~\"node_temperature_celsius|build_info\"}[3h])",
            vec![],
        )
        .await,
        422,
        "execution",
        "samples",
    );
    expect(
        ask(
            "max_over_time(rate(queue_depth[5m])[1h:1s])",
            vec![("timeout", "1ms".into())],
        )
        .await,
        422,
        "timeout",
        "timed out",
    );
    // Within the limits the same server answers.
    let (status, ok) = ask("sum(queue_depth)", vec![]).await;
    assert_eq!(status, 200, "{ok}");
    // Every refusal is counted by its kind.
    let metric = "porthole_promql_queries_total";
    assert_eq!(porthole.counter(metric, &["\"bad_data\""]).await, 3.0);
    assert_eq!(porthole.counter(metric, &["\"execution\""]).await, 2.0);
    assert_eq!(porthole.counter(metric, &["\"timeout\""]).await, 1.0);
    assert!(porthole.counter(metric, &["\"ok\""]).await >= 1.0);
    // Prometheus's resolution limit.
    let params = [
        ("query", "queue_depth".to_string()),
        ("start", "0".to_string()),
        ("end", "1000000".to_string()),
        ("step", "1".to_string()),
    ];
    let (status, body) = get(&porthole.url("/api/v1/metrics/query_range"), &params).await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (400, Some("bad_data")),
        "{body}"
    );
    // remote_write refuses what is not snappy protobuf, with a 4xx Prometheus will not retry.
    let response = reqwest::Client::new()
        .post(porthole.url("/api/v1/write"))
        .header("content-encoding", "snappy")
        .body("not snappy")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // Counted with its size (it was counted as 0 bytes).
    assert_eq!(
        porthole
            .counter(
                "porthole_ingest_bytes_rejected_total",
                &["signal=\"metrics\"", "reason=\"invalid\""]
            )
            .await,
        "not snappy".len() as f64
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_remote_writes_what_it_scrapes() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", &dir.path().join("porthole"), &[], &[]).await;
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: porthole\n    static_configs:\n      - targets: ['{}']\nremote_write:\n  - url: {}\n    queue_config:\n      batch_send_deadline: 1s\n",
        porthole.http,
        porthole.url("/api/v1/write")
    );
    let prometheus = PrometheusServer::start(dir.path(), &config).await;
    // Porthole sees Prometheus's own `up` for the scrape of Porthole.
    let query = porthole.url("/api/v1/metrics/query");
    let up = wait_for("up via remote_write", Duration::from_secs(60), || {
        let query = query.clone();
        async move {
            let (status, body) =
                get(&query, &[("query", "up{job=\"porthole\"}".to_string())]).await;
            let result = body["data"]["result"].as_array()?.first()?.clone();
            (status == 200).then_some(result)
        }
    })
    .await;
    assert_eq!(up["value"][1], "1", "{up}");
    assert_eq!(up["metric"]["instance"], porthole.http.to_string());
    // A sample Porthole holds has the value Prometheus holds at that time.
    let (_, stamp) = get(
        &query,
        &[("query", "timestamp(up{job=\"porthole\"})".to_string())],
    )
    .await;
    let at = stamp["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .to_string();
    let q = "scrape_samples_scraped{job=\"porthole\"}";
    let params = [("query", q.to_string()), ("time", at)];
    let (_, ours) = get(&porthole.url("/api/v1/metrics/query"), &params).await;
    let (_, theirs) = get(&prometheus.url("/api/v1/query"), &params).await;
    compare(q, &theirs["data"], &ours["data"]).unwrap();
    assert!(
        !ours["data"]["result"].as_array().unwrap().is_empty(),
        "{ours}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_metrics_answer_to_their_prometheus_names() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", &dir.path().join("porthole"), &[], &[]).await;
    run_python(
        "metrics.py",
        &["--endpoint".into(), porthole.grpc_endpoint()],
        &[],
    );
    let query = porthole.url("/api/v1/metrics/query");
    let value = |q: &'static str| {
        let query = query.clone();
        async move {
            wait_for(q, Duration::from_secs(30), || {
                let query = query.clone();
                async move {
                    let (_, body) = get(&query, &[("query", q.to_string())]).await;
                    let result = body["data"]["result"].as_array()?;
                    (result.len() == 1)
                        .then(|| (result[0]["metric"].clone(), number(&result[0]["value"][1])))
                }
            })
            .await
        }
    };
    let (labels, orders) = value("shop_orders_total{job=\"shop\"}").await;
    assert_eq!(orders, 7.0);
    assert_eq!(labels["region"], "eu");
    assert_eq!(labels["instance"], "shop-1");
    assert_eq!(value("shop_temperature_celsius").await.1, 21.5);
    assert_eq!(
        value("shop_checkout_duration_milliseconds_count").await.1,
        100.0
    );
    assert_eq!(
        value("shop_checkout_duration_milliseconds_sum").await.1,
        50.0 * 3.0 + 50.0 * 30.0
    );
    // 50 observations of 3 ms and 50 of 30 ms in the SDK's default buckets (0, 5, 10, 25, 50, …).
    let (_, median) =
        value("histogram_quantile(0.5, shop_checkout_duration_milliseconds_bucket)").await;
    assert!((median - 5.0).abs() < 1e-9, "{median}");
    let (_, p75) =
        value("histogram_quantile(0.75, shop_checkout_duration_milliseconds_bucket)").await;
    assert!((p75 - 37.5).abs() < 1e-9, "{p75}");
}

/// A scrape target whose second series disappears when `drop_b` is set.
fn scrape_target(drop_b: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let mut body = String::from("demo_items{kind=\"a\"} 1\n");
            if !drop_b.load(std::sync::atomic::Ordering::SeqCst) {
                body.push_str("demo_items{kind=\"b\"} 2\n");
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn staleness_markers_from_prometheus_end_a_series_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", &dir.path().join("porthole"), &[], &[]).await;
    let drop_b = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let target = scrape_target(drop_b.clone());
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{target}']\nremote_write:\n  - url: {}\n    queue_config:\n      batch_send_deadline: 1s\n",
        porthole.url("/api/v1/write")
    );
    let _prometheus = PrometheusServer::start(dir.path(), &config).await;
    let query = porthole.url("/api/v1/metrics/query");
    let count = |query: String| async move {
        let (_, body) = get(&query, &[("query", "count(demo_items)".to_string())]).await;
        body["data"]["result"]
            .as_array()?
            .first()
            .map(|r| number(&r["value"][1]))
    };
    wait_for(
        "both series via remote_write",
        Duration::from_secs(60),
        || {
            let query = query.clone();
            async move { (count(query).await? == 2.0).then_some(()) }
        },
    )
    .await;
    // The target stops exposing kind="b": Prometheus writes a staleness marker and sends
    // it; the series ends within seconds, not after the 5 minute lookback.
    drop_b.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_for("kind=b to go stale", Duration::from_secs(30), || {
        let query = query.clone();
        async move { (count(query).await? == 1.0).then_some(()) }
    })
    .await;
    let (_, body) = get(&query, &[("query", "demo_items".to_string())]).await;
    assert_eq!(body["data"]["result"][0]["metric"]["kind"], "a", "{body}");
}
