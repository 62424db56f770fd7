//! `bench-ingest`: how fast `porthole serve` makes container logs durable, against a bare
//! pyarrow Parquet write of the same rows measured in the same run.
//!
//! Generates realistic container logs (~10 services, JSON and plain text lines of mixed
//! length, attributes), sends them over OTLP/gRPC from concurrent clients for a fixed time,
//! and reports acked raw-log MB/s per CPU core the server used, the pyarrow baseline, their
//! ratio, and stored bytes (Parquet + index + table log) as a fraction of raw bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use porthole_proto::common::{AnyValue, KeyValue, any_value::Value};
use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::logs_service::logs_service_client::LogsServiceClient;
use porthole_proto::resource::Resource;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Parser)]
struct Args {
    /// The porthole binary to measure (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/porthole")]
    porthole: PathBuf,
    /// Python with pyarrow, for the baseline.
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    #[arg(long, default_value = "20")]
    seconds: u64,
    #[arg(long, default_value = "8")]
    clients: usize,
    /// Log records per export.
    #[arg(long, default_value = "1000")]
    records: usize,
}

/// Clients step through the export pool with a stride coprime to its size so they spread out.
const POOL_STRIDE: usize = 7;

const SERVICES: [&str; 10] = [
    "checkout",
    "cart",
    "payments",
    "search",
    "auth",
    "inventory",
    "shipping",
    "email",
    "frontend",
    "recommendations",
];

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

/// One generated line: its service, the OTLP record, and the raw line as the node's log
/// file holds it (the kubelet's CRI format: `<RFC 3339 time> stdout F <line>`).
struct Line {
    service: usize,
    record: LogRecord,
    raw: String,
}

/// Services 0..JSON_SERVICES log JSON lines, the rest plain text; only the first
/// TRACED_SERVICES are instrumented with OpenTelemetry and carry trace context.
const JSON_SERVICES: usize = 5;
const TRACED_SERVICES: usize = 7;

const ROUTES: [&str; 8] = [
    "/api/cart",
    "/api/checkout",
    "/healthz",
    "/api/search",
    "/api/items/{id}",
    "/api/orders/{id}",
    "/api/users/{id}/profile",
    "/metrics",
];

const STACK: &str = "java.net.ConnectException: Connection refused
\tat java.base/sun.nio.ch.Net.connect0(Native Method)
\tat java.base/sun.nio.ch.Net.connect(Net.java:579)
\tat java.base/sun.nio.ch.NioSocketImpl.connect(NioSocketImpl.java:583)
\tat okhttp3.internal.connection.RealConnection.connectSocket(RealConnection.kt:295)
\tat okhttp3.internal.connection.RealConnection.connect(RealConnection.kt:207)
\tat com.shop.payments.GatewayClient.charge(GatewayClient.java:118)
\tat com.shop.payments.ChargeHandler.handle(ChargeHandler.java:64)";

/// The lines one request leaves behind: a start, some work, an end, sharing the
/// request's id and (in traced services) its trace and span, at increasing times.
fn generate_request(rng: &mut StdRng, clock_ns: &mut u64) -> Vec<Line> {
    let service = rng.random_range(0..SERVICES.len());
    let name = SERVICES[service];
    let route = ROUTES[rng.random_range(0..ROUTES.len())];
    let status = [200, 200, 200, 200, 200, 201, 204, 304, 404, 500, 503][rng.random_range(0..11)];
    let request_id = format!("{:016x}", rng.random::<u64>());
    let traced = service < TRACED_SERVICES;
    let trace_id: [u8; 16] = rng.random();
    let span_id: [u8; 8] = rng.random();
    let user = (rng.random_range(1.0f64..8.0).exp() as u64).min(2_980); // heavy-tailed ids
    let mut messages: Vec<(i32, String, Vec<KeyValue>)> = vec![(
        9,
        format!("request started method=GET route={route}"),
        vec![string("http.route", route)],
    )];
    for _ in 0..rng.random_range(0..4) {
        let table = ["orders", "carts", "items", "users"][rng.random_range(0..4)];
        let ms = rng.random_range(1..40);
        messages.push(match rng.random_range(0..3) {
            0 => (
                5,
                format!(
                    "db query table={table} rows={} took={ms}ms",
                    rng.random_range(0..50)
                ),
                vec![string("db.system", "postgresql")],
            ),
            1 => (
                5,
                format!("cache miss key={table}:{user}"),
                vec![string("cache", "redis")],
            ),
            _ => (
                9,
                format!(
                    "calling upstream service={} timeout=2s",
                    SERVICES[rng.random_range(0..SERVICES.len())]
                ),
                vec![],
            ),
        });
    }
    if status >= 500 {
        let text = if rng.random_bool(0.3) {
            format!("payment gateway call failed\n{STACK}")
        } else {
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure".to_string()
        };
        messages.push((17, text, vec![string("error.type", "ConnectException")]));
    } else if status == 404 {
        messages.push((13, "resource not found".to_string(), vec![]));
    }
    let latency = rng.random_range(1..900);
    messages.push((
        if status >= 500 { 17 } else { 9 },
        format!("request completed status={status} latency_ms={latency}"),
        vec![
            string("http.method", "GET"),
            int("http.status_code", status),
            string("http.route", route),
        ],
    ));
    messages
        .into_iter()
        .map(|(severity, message, attributes)| {
            *clock_ns += rng.random_range(10_000..3_000_000);
            let level = match severity {
                17 => "error",
                13 => "warn",
                5 => "debug",
                _ => "info",
            };
            let ts = chrono_like(*clock_ns);
            let context = if traced {
                format!(" trace_id={} span_id={}", hex(&trace_id), hex(&span_id))
            } else {
                String::new()
            };
            let line = if service < JSON_SERVICES {
                let trace = if traced {
                    format!(r#","trace_id":"{}","span_id":"{}""#, hex(&trace_id), hex(&span_id))
                } else {
                    String::new()
                };
                format!(
                    r#"{{"level":"{level}","ts":"{ts}","logger":"{name}.http","msg":{},"request_id":"{request_id}","user_id":{user}{trace}}}"#,
                    serde_json::Value::String(message)
                )
            } else {
                format!("{ts} {} [{name}] {message} request_id={request_id} user={user}{context}", level.to_uppercase())
            };
            let raw = format!("{ts} stdout F {line}");
            Line {
                service,
                record: LogRecord {
                    time_unix_nano: *clock_ns,
                    severity_number: severity,
                    body: Some(AnyValue {
                        value: Some(Value::StringValue(line)),
                    }),
                    attributes,
                    trace_id: if traced { trace_id.to_vec() } else { vec![] },
                    span_id: if traced { span_id.to_vec() } else { vec![] },
                    ..Default::default()
                },
                raw,
            }
        })
        .collect()
}

/// RFC 3339 with nanoseconds, UTC, without a date library.
fn chrono_like(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ns % 1_000_000_000
    )
}

fn export_of(lines: &[Line]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: SERVICES
            .iter()
            .enumerate()
            .map(|(i, name)| ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        string("service.name", name),
                        string("k8s.namespace.name", "shop"),
                        string("k8s.pod.name", &format!("{name}-6c9f8d7b5-x2x7q")),
                        string("k8s.container.name", "app"),
                        string("service.version", "v1.4.2"),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: lines
                        .iter()
                        .filter(|l| l.service == i)
                        .map(|l| l.record.clone())
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("stat format")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// Bytes under `path` of files whose name ends with `suffix` ("" for all).
fn dir_bytes(path: &Path, suffix: &str) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_bytes(&e.path(), suffix),
                    _ if e.file_name().to_string_lossy().ends_with(suffix) => {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                    _ => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.porthole.exists() {
        bail!(
            "{} not found: run `cargo build --release -p porthole` first",
            args.porthole.display()
        );
    }
    let work = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(7);
    let now_ns = 1_795_000_000_000_000_000u64;
    // A pool of distinct exports, cycled by the clients; a request's lines stay together.
    let mut clock_ns = now_ns;
    let mut raw_file = Vec::new();
    let pool: Vec<(ExportLogsServiceRequest, u64)> = (0..64)
        .map(|_| {
            let mut lines: Vec<Line> = Vec::with_capacity(args.records + 8);
            while lines.len() < args.records {
                lines.extend(generate_request(&mut rng, &mut clock_ns));
            }
            let raw = lines.iter().map(|l| l.raw.len() as u64 + 1).sum();
            for line in &lines {
                raw_file.extend_from_slice(line.raw.as_bytes());
                raw_file.push(b'\n');
            }
            (export_of(&lines), raw)
        })
        .collect();
    // Second baseline: the raw log file itself, compressed with zstd (level 3), as a
    // measure of how much information the generated logs hold.
    let zstd_fraction =
        zstd::encode_all(raw_file.as_slice(), 3)?.len() as f64 / raw_file.len() as f64;
    drop(raw_file);
    let pool = Arc::new(pool);

    let data_dir = work.path().join("data");
    let mut server = Command::new(&args.porthole)
        .args([
            "serve",
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data_dir)
        .env("PORTHOLE_LOG", "warn,buoyant_kernel=off")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut first_line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().context("stdout")?),
        &mut first_line,
    )?;
    let listening: serde_json::Value =
        serde_json::from_str(&first_line).context("listening line")?;
    let endpoint = format!(
        "http://{}",
        listening["otlp_grpc"].as_str().context("otlp_grpc")?
    );

    let acked_raw = Arc::new(AtomicU64::new(0));
    let acked_records = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_seconds(server.id())?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let (pool, endpoint, acked_raw, acked_records) = (
            pool.clone(),
            endpoint.clone(),
            acked_raw.clone(),
            acked_records.clone(),
        );
        let records = args.records as u64;
        clients.push(tokio::spawn(async move {
            let mut client = LogsServiceClient::connect(endpoint)
                .await?
                .max_decoding_message_size(64 << 20);
            let mut i = c;
            while Instant::now() < deadline {
                let (request, raw) = &pool[i % pool.len()];
                i += POOL_STRIDE;
                if client.export(request.clone()).await.is_ok() {
                    acked_raw.fetch_add(*raw, Ordering::Relaxed);
                    acked_records.fetch_add(records, Ordering::Relaxed);
                }
            }
            anyhow::Ok(())
        }));
    }
    for client in clients {
        client.await??;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(server.id())? - cpu_before;
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()?;
    server.wait()?;

    let raw_mb = acked_raw.load(Ordering::Relaxed) as f64 / 1e6;
    let porthole_mb_per_core = raw_mb / cpu.max(1e-9);
    let stored = dir_bytes(&data_dir, "") as f64;
    let parquet = dir_bytes(&data_dir, ".parquet") as f64;
    let index = dir_bytes(&data_dir, ".idx") as f64;

    // Baseline: the same rows (one pass over the pool) written by pyarrow as one zstd file.
    let rows_path = work.path().join("rows.jsonl");
    let mut rows = std::io::BufWriter::new(std::fs::File::create(&rows_path)?);
    let mut baseline_raw = 0u64;
    for (request, raw) in pool.iter() {
        baseline_raw += raw;
        for resource in &request.resource_logs {
            let service = resource
                .resource
                .as_ref()
                .and_then(|r| r.attributes.first())
                .and_then(|a| a.value.clone())
                .and_then(|v| v.value);
            let Some(Value::StringValue(service)) = service else {
                continue;
            };
            for record in &resource.scope_logs[0].log_records {
                let Some(Value::StringValue(body)) =
                    record.body.as_ref().and_then(|b| b.value.clone())
                else {
                    continue;
                };
                serde_json::to_writer(
                    &mut rows,
                    &serde_json::json!({
                        "time_unix_nano": record.time_unix_nano, "service": service, "severity_number": record.severity_number, "body": body,
                        "trace_id": hex(&record.trace_id), "span_id": hex(&record.span_id),
                        "attributes": record.attributes.iter().map(|a| (a.key.clone(), format!("{:?}", a.value))).collect::<Vec<_>>(),
                    }),
                )?;
                rows.write_all(b"\n")?;
            }
        }
    }
    rows.flush()?;
    drop(rows);
    let baseline = Command::new(&args.python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("pyarrow_baseline.py"))
        .arg(&rows_path)
        .arg(work.path().join("baseline.parquet"))
        .output()
        .context("running the pyarrow baseline (create .venv with tests/run.sh)")?;
    if !baseline.status.success() {
        bail!(
            "pyarrow baseline failed: {}",
            String::from_utf8_lossy(&baseline.stderr)
        );
    }
    let result: serde_json::Value = serde_json::from_slice(&baseline.stdout)?;
    let pyarrow_mb_per_core =
        baseline_raw as f64 / 1e6 / result["cpu_seconds"].as_f64().context("cpu_seconds")?;

    println!(
        "acked raw log bytes   {raw_mb:.1} MB in {wall:.1} s ({} records, {} clients)",
        acked_records.load(Ordering::Relaxed),
        args.clients
    );
    println!("server CPU            {cpu:.1} s ({:.2} cores)", cpu / wall);
    println!("porthole ingest       {porthole_mb_per_core:.1} MB/s per core (goal >= 30)");
    println!(
        "pyarrow write         {pyarrow_mb_per_core:.1} MB/s per core (same rows, zstd, one file)"
    );
    println!(
        "ratio                 {:.2}x of pyarrow (goal >= 0.5)",
        porthole_mb_per_core / pyarrow_mb_per_core
    );
    let raw = raw_mb * 1e6;
    println!(
        "stored / raw          {:.1}% (Parquet {:.1}% + index {:.1}% + table log {:.1}%; goal <= 10%)",
        100.0 * stored / raw,
        100.0 * parquet / raw,
        100.0 * index / raw,
        100.0 * (stored - parquet - index) / raw
    );
    println!(
        "raw file, zstd -3     {:.1}% of raw (how compressible the generated logs are)",
        100.0 * zstd_fraction
    );
    let parts = index_parts(&data_dir)?;
    let breakdown: Vec<String> = parts
        .iter()
        .map(|(kind, bytes)| format!("{kind} {:.1}%", 100.0 * *bytes as f64 / raw))
        .collect();
    println!("index by part         {}", breakdown.join(", "));
    Ok(())
}

/// Bytes of the packed indexes under `dir` by tantivy file kind (postings, positions,
/// term dictionary, fast fields…), read from each pack's footer.
fn index_parts(dir: &Path) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    let mut parts = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
                continue;
            }
            if !entry.file_name().to_string_lossy().ends_with(".idx") {
                continue;
            }
            let pack = std::fs::read(entry.path())?;
            let tail = pack
                .len()
                .checked_sub(16)
                .context("index shorter than its footer")?;
            let footer_len = u64::from_le_bytes(pack[tail..tail + 8].try_into()?) as usize;
            let footer: serde_json::Value = serde_json::from_slice(&pack[tail - footer_len..tail])?;
            for file in footer["files"].as_array().context("footer files")? {
                let name = file["name"].as_str().unwrap_or_default();
                let kind = name.rsplit('.').next().unwrap_or(name).to_string();
                *parts.entry(kind).or_default() += file["len"].as_u64().unwrap_or(0);
            }
        }
    }
    Ok(parts)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
