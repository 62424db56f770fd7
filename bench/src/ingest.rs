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

/// One generated line: its service, the OTLP record, and the raw line as a file would hold it.
struct Line {
    service: usize,
    record: LogRecord,
    raw: String,
}

fn generate_line(rng: &mut StdRng, now_ns: u64) -> Line {
    let service = rng.random_range(0..SERVICES.len());
    let status = [200, 200, 200, 201, 204, 301, 404, 500, 503][rng.random_range(0..9)];
    let latency = rng.random_range(1..2_000);
    let user = rng.random_range(1..50_000);
    let path = [
        "/api/cart",
        "/api/checkout",
        "/healthz",
        "/api/search?q=shoes",
        "/api/items/42",
    ][rng.random_range(0..5)];
    let (severity, text) = if status >= 500 {
        (
            17,
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
        )
    } else if status >= 400 {
        (13, "resource not found")
    } else {
        (9, "request completed")
    };
    let raw = if rng.random_bool(0.5) {
        format!(
            r#"{{"level":"{}","ts":"2026-11-25T10:00:00.{:06}Z","msg":"{text}","method":"GET","path":"{path}","status":{status},"latency_ms":{latency},"user_id":{user},"request_id":"{:016x}"}}"#,
            ["info", "warn", "error"][(severity as usize - 9) / 4],
            rng.random_range(0..1_000_000),
            rng.random::<u64>()
        )
    } else {
        let mut line = format!(
            "{} GET {path} {status} {latency}ms user={user} - {text}",
            SERVICES[service]
        );
        for _ in 0..rng.random_range(0..4) {
            line.push_str(&format!(" trace_ctx={:032x}", rng.random::<u128>()));
        }
        line
    };
    let record = LogRecord {
        time_unix_nano: now_ns + rng.random_range(0..1_000_000_000),
        severity_number: severity,
        body: Some(AnyValue {
            value: Some(Value::StringValue(raw.clone())),
        }),
        attributes: vec![
            string("http.method", "GET"),
            int("http.status_code", status),
            string("http.route", path),
        ],
        trace_id: rng.random::<[u8; 16]>().to_vec(),
        span_id: rng.random::<[u8; 8]>().to_vec(),
        ..Default::default()
    };
    Line {
        service,
        record,
        raw,
    }
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
    // A pool of distinct exports, cycled by the clients.
    let pool: Vec<(ExportLogsServiceRequest, u64)> = (0..64)
        .map(|_| {
            let lines: Vec<Line> = (0..args.records)
                .map(|_| generate_line(&mut rng, now_ns))
                .collect();
            let raw = lines.iter().map(|l| l.raw.len() as u64 + 1).sum();
            (export_of(&lines), raw)
        })
        .collect();
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
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
