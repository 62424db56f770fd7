//! `porthole demo`: Porthole plus a synthetic shop, so a new user sees real data in the UI
//! within a minute. Four services (frontend, cart, checkout, payments) run as pods, each a
//! real `porthole-collector` sidecar process that tails the pod's log file, receives the
//! pod's OTLP traces, logs and metrics, and reports its inventory; the "apps" themselves
//! are simulated here. After `--rollout-after`, checkout v2.0.0 rolls out pod by pod and
//! fails a third of its payments; one cart pod's config file is changed while it runs (drift);
//! the example rule `CheckoutErrors` fires and its rollout restart is recorded as a dry run
//! (no cluster is needed; a rollback would read the cluster's ReplicaSets even when dry).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use porthole_proto::common::{AnyValue, KeyValue, any_value};
use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::logs_service::logs_service_client::LogsServiceClient;
use porthole_proto::metrics::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use porthole_proto::metrics_service::ExportMetricsServiceRequest;
use porthole_proto::metrics_service::metrics_service_client::MetricsServiceClient;
use porthole_proto::trace::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use porthole_proto::trace_service::ExportTraceServiceRequest;
use porthole_proto::trace_service::trace_service_client::TraceServiceClient;
use rand::Rng;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::args::DemoArgs;

/// Marks a directory as the demo's, so a re-run may clear it.
const MARKER: &str = ".porthole-demo";

const RULES: &str = r#"groups:
  - name: shop
    interval: 5s
    rules:
      - alert: CheckoutErrors
        logs: 'severity:ERROR'
        filters: {service: checkout}
        window: 1m
        condition: count > 5
        labels: {severity: page}
        annotations: {summary: 'checkout logged {{ $value }} errors in the last minute'}
        action:
          kind: rollout_restart
          target: {namespace: shop, deployment: checkout}
          dry_run: true
      - alert: CheckoutSlow
        spans: ''
        filters: {service: checkout}
        window: 1m
        condition: p99 > 1
        annotations: {summary: 'checkout p99 is {{ $value }}s'}
"#;

/// One simulated pod: its collector process and the clients of its OTLP receiver.
struct Pod {
    service: &'static str,
    version: &'static str,
    dir: PathBuf,
    collector: Child,
    traces: TraceServiceClient<tonic::transport::Channel>,
    logs: LogsServiceClient<tonic::transport::Channel>,
    metrics: MetricsServiceClient<tonic::transport::Channel>,
    requests: BTreeMap<&'static str, u64>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.dir)?;
    prepare(&dir)?;
    let collector_bin = match &args.collector_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("porthole-collector"),
    };
    if !collector_bin.exists() {
        bail!(
            "the demo runs real collectors: {} is missing (build it with `cargo build --release -p porthole -p porthole-collector`, or give --collector-bin)",
            collector_bin.display()
        );
    }
    std::fs::create_dir_all(dir.join("rules"))?;
    std::fs::write(dir.join("rules/shop.yml"), RULES)?;

    let (mut server, grpc, http) = start_server(&dir, &args).await?;
    println!(
        "{}",
        serde_json::json!({"event": "demo", "http": http, "otlp_grpc": grpc, "dir": dir})
    );
    println!(
        "Porthole demo: open http://{http}/ — checkout v2.0.0 rolls out in {}.",
        humantime::format_duration(args.rollout_after)
    );
    let _ = std::io::stdout().flush();

    let layout: [(&'static str, &'static str, usize); 4] = [
        ("frontend", "v1.4.0", 2),
        ("cart", "v2.1.0", 3),
        ("checkout", "v1.0.0", 2),
        ("payments", "v3.2.1", 1),
    ];
    let mut pods = Vec::new();
    for (service, version, count) in layout {
        for i in 0..count {
            let name = format!("{service}-{}", pod_suffix(version, i));
            pods.push(start_pod(&dir, &collector_bin, &grpc, service, version, &name).await?);
        }
    }
    let pods = Arc::new(Mutex::new(pods));
    let traffic = tokio::spawn(traffic(pods.clone()));
    let started = tokio::time::Instant::now();
    let rollout = {
        let pods = pods.clone();
        let (dir, bin, grpc) = (dir.clone(), collector_bin.clone(), grpc.clone());
        let after = args.rollout_after;
        tokio::spawn(async move {
            // A cart pod's config is changed while it runs: drift against its siblings.
            tokio::time::sleep_until(started + (after / 2).max(Duration::from_secs(1))).await;
            let changed = {
                let pods = pods.lock().await;
                pods.iter()
                    .find(|p| p.service == "cart")
                    .map(|p| p.dir.join("etc/cart.yaml"))
            };
            if let Some(path) = changed {
                let _ = std::fs::write(path, "cache_ttl_seconds: 5\nretries: 3\n");
            }
            tokio::time::sleep_until(started + after).await;
            for i in 0..2 {
                let name = format!("checkout-{}", pod_suffix("v2.0.0", i));
                match start_pod(&dir, &bin, &grpc, "checkout", "v2.0.0", &name).await {
                    Ok(pod) => pods.lock().await.push(pod),
                    Err(e) => eprintln!("demo: could not start {name}: {e:#}"),
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
                let old = {
                    let mut pods = pods.lock().await;
                    let at = pods
                        .iter()
                        .position(|p| p.service == "checkout" && p.version == "v1.0.0");
                    at.map(|i| pods.remove(i))
                };
                if let Some(mut old) = old {
                    stop(&mut old.collector).await;
                }
            }
            println!(
                "demo: checkout v2.0.0 is out; see /versions?service=checkout, /inventory and /alerts"
            );
        })
    };

    tokio::select! {
        _ = crate::args::shutdown_signal() => {}
        status = server.wait() => bail!("porthole serve exited: {status:?} (see {}/porthole.log)", dir.display()),
    }
    traffic.abort();
    rollout.abort();
    // All collectors at once: each flushes its buffer to the server still running.
    let mut pods = pods.lock().await;
    futures::future::join_all(pods.iter_mut().map(|p| stop(&mut p.collector))).await;
    stop(&mut server).await;
    Ok(())
}

/// A deterministic pod-name suffix, like a ReplicaSet's.
fn pod_suffix(version: &str, i: usize) -> String {
    let hash: u32 = version
        .bytes()
        .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    format!("{:05x}-{i}", hash & 0xfffff)
}

/// Clears a previous demo's directory, never anything else.
fn prepare(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!(
                "{} exists and is not a demo directory; give another --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(MARKER),
        "porthole demo; cleared by the next `porthole demo`\n",
    )?;
    Ok(())
}

async fn start_server(dir: &Path, args: &DemoArgs) -> anyhow::Result<(Child, String, String)> {
    let log = std::fs::File::create(dir.join("porthole.log"))?;
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("serve");
    if let Some(web) = &args.web_dir {
        command.arg("--web-dir").arg(std::path::absolute(web)?);
    }
    let mut server = command
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--http-addr", &args.http_addr.to_string()])
        .args([
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
        ])
        .arg("--rules")
        .arg(dir.join("rules"))
        .args(["--alert-actions", "dry-run", "--batch-window", "500ms"])
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting porthole serve")?;
    let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();
    let listening = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["event"] == "listening"
            {
                return anyhow::Ok(event);
            }
        }
        bail!(
            "porthole serve exited before listening (see {}/porthole.log)",
            dir.display()
        )
    })
    .await
    .context("porthole serve did not start within 60 s")??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let field = |k: &str| listening[k].as_str().unwrap_or_default().to_string();
    Ok((
        server,
        format!("http://{}", field("otlp_grpc")),
        field("http"),
    ))
}

async fn start_pod(
    dir: &Path,
    bin: &Path,
    grpc: &str,
    service: &'static str,
    version: &'static str,
    name: &str,
) -> anyhow::Result<Pod> {
    let pod_dir = dir.join("pods").join(name);
    std::fs::create_dir_all(pod_dir.join("etc"))?;
    std::fs::write(
        pod_dir.join(format!("etc/{service}.yaml")),
        "cache_ttl_seconds: 30\nretries: 3\n",
    )?;
    std::fs::write(pod_dir.join("app.log"), "")?;
    std::fs::write(
        pod_dir.join("collector.yaml"),
        format!(
            "endpoint: {grpc}\n\
             http_addr: 127.0.0.1:0\n\
             otlp: {{grpc_addr: 127.0.0.1:0, http_addr: null}}\n\
             files: [{{include: ['app.log']}}]\n\
             buffer: {{dir: buffer, max_bytes: 67108864, segment_bytes: 1048576}}\n\
             cgroup: {{enabled: false}}\n\
             batch: {{timeout: 500ms}}\n\
             shutdown_timeout: 5s\n\
             inventory: {{interval: 15s, check_interval: 2s, watch_files: ['etc/*.yaml'], env: ['SHOP_*']}}\n"
        ),
    )?;
    let node = if name.ends_with('0') {
        "node-a"
    } else {
        "node-b"
    };
    let image = format!("registry.example/shop/{service}:{version}");
    let log = std::fs::File::create(pod_dir.join("collector.log"))?;
    let mut collector = Command::new(bin)
        .arg("--config")
        .arg("collector.yaml")
        .current_dir(&pod_dir)
        .envs([
            ("SERVICE_NAME", service),
            ("SERVICE_VERSION", version),
            ("POD_NAMESPACE", "shop"),
            ("POD_NAME", name),
            ("NODE_NAME", node),
            ("CONTAINER_NAME", service),
            ("CONTAINER_IMAGE", &image),
            ("SHOP_REGION", "eu-west-1"),
            ("SHOP_PAYMENT_API_KEY", "demo-secret-never-shown"),
            ("NO_COLOR", "1"),
            ("RUST_LOG", "info"),
        ])
        .stdout(log.try_clone()?)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the collector of {name}"))?;
    let mut lines = BufReader::new(collector.stderr.take().expect("piped")).lines();
    let mut log = log;
    let receiver = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            let _ = writeln!(log, "{line}");
            if line.contains("OTLP gRPC receiver listening")
                && let Some(addr) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("addr="))
            {
                return anyhow::Ok(addr.to_string());
            }
        }
        bail!("the collector of {name} exited (see its collector.log)")
    })
    .await
    .with_context(|| format!("the collector of {name} did not start"))??;
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = writeln!(log, "{line}");
        }
    });
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{receiver}"))?.connect_lazy();
    Ok(Pod {
        service,
        version,
        dir: pod_dir,
        collector,
        traces: TraceServiceClient::new(channel.clone()),
        logs: LogsServiceClient::new(channel.clone()),
        metrics: MetricsServiceClient::new(channel),
        requests: BTreeMap::new(),
    })
}

async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

/// A request every ~150 ms through frontend → cart → checkout → payments; each service's
/// span, logs and file line go to the pod that served it.
async fn traffic(pods: Arc<Mutex<Vec<Pod>>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(150));
    let mut metrics_tick = tokio::time::interval(Duration::from_secs(10));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = metrics_tick.tick() => {
                for pod in pods.lock().await.iter_mut() {
                    send_metrics(pod).await;
                }
                continue;
            }
        }
        n += 1;
        let mut pods = pods.lock().await;
        // Which pod of each service serves this request, and how each step goes; the
        // request stops at the first failure.
        let mut chain: Vec<(usize, bool, u64)> = Vec::new();
        for service in ["frontend", "cart", "checkout", "payments"] {
            let candidates: Vec<usize> = pods
                .iter()
                .enumerate()
                .filter(|(_, p)| p.service == service)
                .map(|(i, _)| i)
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let at = candidates[(n as usize) % candidates.len()];
            let (ok, millis) = outcome(&pods[at]);
            chain.push((at, ok, millis));
            if !ok {
                break;
            }
        }
        // Spans nest: each starts a millisecond after its parent and ends after its child.
        let trace_id: [u8; 16] = rand::rng().random();
        let mut start = now_nanos();
        let mut parent: Option<[u8; 8]> = None;
        for (i, (at, ok, millis)) in chain.iter().enumerate() {
            let below: u64 = chain[i + 1..].iter().map(|(_, _, m)| m + 1).sum();
            let end = start + (millis + below) * 1_000_000;
            let call = Call {
                trace_id,
                parent,
                start,
                end,
                ok: *ok,
                millis: *millis,
            };
            parent = Some(serve_one(&mut pods[*at], &call).await);
            start += 1_000_000;
        }
    }
}

/// One service's part of one request.
struct Call {
    trace_id: [u8; 16],
    parent: Option<[u8; 8]>,
    start: u64,
    end: u64,
    ok: bool,
    /// Its own time, without its callee's.
    millis: u64,
}

/// Whether a pod serves a request well, and how long it takes itself: checkout v2.0.0
/// fails a third of its payments with 2-second timeouts; everyone else rarely fails.
fn outcome(pod: &Pod) -> (bool, u64) {
    let failing = pod.service == "checkout" && pod.version == "v2.0.0";
    let mut rng = rand::rng();
    let ok = if failing {
        rng.random_bool(0.65)
    } else {
        rng.random_bool(0.995)
    };
    let millis = match (failing, ok) {
        (true, false) => rng.random_range(1800..2400),
        (true, true) => rng.random_range(150..600),
        _ => rng.random_range(5..60),
    };
    (ok, millis)
}

/// What a service logs when its step fails.
fn failure(pod: &Pod, call: &Call) -> String {
    match (pod.service, pod.version) {
        ("checkout", "v2.0.0") => format!(
            "payment authorization failed: upstream timeout after {}ms (order {})",
            call.millis,
            hex::encode(&call.trace_id[..4])
        ),
        ("checkout", _) => "stock reservation failed: version conflict, retry".into(),
        ("frontend", _) => "rendering the page failed: template cache miss storm".into(),
        ("cart", _) => "reading the cart failed: connection reset by peer".into(),
        _ => "card network did not answer in time".into(),
    }
}

/// Sends one service's span (and its error log when it failed) to the pod's collector and
/// appends its access-log line; returns the span's id.
async fn serve_one(pod: &mut Pod, call: &Call) -> [u8; 8] {
    let (ok, millis, trace_id) = (call.ok, call.millis, &call.trace_id);
    let span_id: [u8; 8] = rand::rng().random();
    let route = match pod.service {
        "frontend" => "GET /",
        "cart" => "GET /cart",
        "checkout" => "POST /checkout",
        _ => "POST /pay",
    };
    let span = Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: call.parent.map(|p| p.to_vec()).unwrap_or_default(),
        name: route.into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: call.start,
        end_time_unix_nano: call.end,
        attributes: vec![text("http.route", route)],
        status: Some(Status {
            code: if ok {
                status::StatusCode::Ok
            } else {
                status::StatusCode::Error
            } as i32,
            message: if ok {
                String::new()
            } else {
                failure(pod, call)
            },
        }),
        ..Span::default()
    };
    let _ = pod
        .traces
        .export(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        })
        .await;
    if !ok {
        let body = failure(pod, call);
        let record = LogRecord {
            time_unix_nano: call.end,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body)),
            }),
            attributes: vec![text("http.route", route), text("error.type", "timeout")],
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            ..LogRecord::default()
        };
        let _ = pod
            .logs
            .export(ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![record],
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                }],
            })
            .await;
    }
    // The access log line, tailed from the pod's file by its collector.
    let line = format!(
        "{} {} {route} status={} duration_ms={millis} trace_id={}\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        if ok { "INFO" } else { "WARN" },
        if ok { 200 } else { 504 },
        hex::encode(trace_id)
    );
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .append(true)
        .open(pod.dir.join("app.log"))
    {
        let _ = file.write_all(line.as_bytes());
    }
    *pod.requests
        .entry(if ok { "ok" } else { "error" })
        .or_default() += 1;
    span_id
}

async fn send_metrics(pod: &mut Pod) {
    let now = now_nanos();
    let points = pod
        .requests
        .iter()
        .map(|(status, count)| NumberDataPoint {
            attributes: vec![text("status", status)],
            time_unix_nano: now,
            value: Some(number_data_point::Value::AsInt(*count as i64)),
            ..NumberDataPoint::default()
        })
        .collect();
    let metric = Metric {
        name: "shop_requests_total".into(),
        description: "Requests served, by outcome".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Metric::default()
    };
    let _ = pod
        .metrics
        .export(ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![metric],
                    ..ScopeMetrics::default()
                }],
                ..ResourceMetrics::default()
            }],
        })
        .await;
}
