//! Shared by the benchmarks: a generator of realistic container logs (~10 services, JSON
//! and plain text lines of mixed length, attributes, trace context), each line both as an
//! OTLP record and as the raw line a node's log file holds; plus the OTLP attribute, hex,
//! CPU-time and directory-size helpers the benchmarks share.

use std::path::Path;

use anyhow::Context;
use porthole_proto::common::{AnyValue, KeyValue, any_value::Value};
use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::resource::Resource;
use rand::Rng;
use rand::rngs::StdRng;

pub const SERVICES: [&str; 10] = [
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

pub fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

pub fn int(key: &str, value: i64) -> KeyValue {
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
pub struct Line {
    pub service: usize,
    pub record: LogRecord,
    pub raw: String,
}

/// Services 0..JSON_SERVICES log JSON lines, the rest plain text; only the first
/// TRACED_SERVICES are instrumented with OpenTelemetry and carry trace context.
pub const JSON_SERVICES: usize = 5;
pub const TRACED_SERVICES: usize = 7;

pub const ROUTES: [&str; 8] = [
    "/api/cart",
    "/api/checkout",
    "/healthz",
    "/api/search",
    "/api/items/{id}",
    "/api/orders/{id}",
    "/api/users/{id}/profile",
    "/metrics",
];

pub const STACK: &str = "java.net.ConnectException: Connection refused
\tat java.base/sun.nio.ch.Net.connect0(Native Method)
\tat java.base/sun.nio.ch.Net.connect(Net.java:579)
\tat java.base/sun.nio.ch.NioSocketImpl.connect(NioSocketImpl.java:583)
\tat okhttp3.internal.connection.RealConnection.connectSocket(RealConnection.kt:295)
\tat okhttp3.internal.connection.RealConnection.connect(RealConnection.kt:207)
\tat com.shop.payments.GatewayClient.charge(GatewayClient.java:118)
\tat com.shop.payments.ChargeHandler.handle(ChargeHandler.java:64)";

/// The lines one request leaves behind: a start, some work, an end, sharing the
/// request's id and (in traced services) its trace and span, at increasing times.
pub fn generate_request(rng: &mut StdRng, clock_ns: &mut u64) -> Vec<Line> {
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
pub fn chrono_like(ns: u64) -> String {
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

pub fn export_of(lines: &[Line]) -> ExportLogsServiceRequest {
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

/// Where a benchmark works: a new folder `<bench>-<pid>` under `keep` (kept afterwards, for
/// profiling), else `temporary`.
pub fn work_dir(
    keep: Option<&Path>,
    bench: &str,
    temporary: &Path,
) -> anyhow::Result<std::path::PathBuf> {
    let Some(dir) = keep else {
        return Ok(temporary.to_path_buf());
    };
    let kept = dir.join(format!("{bench}-{}", std::process::id()));
    std::fs::create_dir_all(&kept)?;
    eprintln!("keeping {bench}'s data in {}", kept.display());
    Ok(kept)
}

/// CPU seconds (user + system) process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// The most resident memory process `pid` has held (`VmHWM`), in bytes.
pub fn peak_rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .context("no VmHWM in /proc status")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()?;
    Ok(kib * 1024)
}

/// CPU seconds the calling thread has used (user + system).
pub fn thread_cpu_seconds() -> anyhow::Result<f64> {
    stat_cpu_seconds("/proc/thread-self/stat")
}

/// utime + stime of a /proc `stat` file, in seconds.
fn stat_cpu_seconds(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path)?;
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
pub fn dir_bytes(path: &Path, suffix: &str) -> u64 {
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

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `porthole serve`, stopped with SIGTERM when dropped (so also on an error path).
pub struct Server {
    pub child: std::process::Child,
}

impl Server {
    pub fn stop(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("sending SIGTERM to porthole")?;
        self.child.wait().context("waiting for porthole to exit")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.stop();
        }
    }
}

/// Starts `porthole serve` on loopback ports over `data_dir`, its own compaction off (the
/// benchmarks run `porthole compact` when they mean to); returns it with its OTLP/gRPC and
/// HTTP addresses.
pub fn start_server(porthole: &Path, data_dir: &Path) -> anyhow::Result<(Server, String, String)> {
    start_server_with(porthole, data_dir, &[])
}

/// [`start_server`] with more `serve` flags.
pub fn start_server_with(
    porthole: &Path,
    data_dir: &Path,
    extra: &[&str],
) -> anyhow::Result<(Server, String, String)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(porthole)
        .args([
            "serve",
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--compaction-interval",
            "0s",
            "--index-cache-bytes",
            "1GiB",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(extra)
        .env("PORTHOLE_LOG", "warn,buoyant_kernel=off")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", porthole.display()))?;
    let stdout = child.stdout.take().context("porthole's stdout")?;
    let server = Server { child };
    let mut first_line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first_line)
        .context("reading porthole's listening line")?;
    let listening: serde_json::Value =
        serde_json::from_str(&first_line).context("porthole's listening line")?;
    let address = |key: &str| {
        listening[key]
            .as_str()
            .map(|a| format!("http://{a}"))
            .with_context(|| format!("no {key:?} in the listening line {first_line:?}"))
    };
    Ok((server, address("otlp_grpc")?, address("http")?))
}

/// What `porthole compact` did to one table.
pub struct Compacted {
    pub files_replaced: u64,
    pub files_written: u64,
    pub bytes_replaced: u64,
}

/// Runs `porthole compact` over `data_dir` (as a second process beside a running server,
/// the way a second node would), deleting what it replaced at once; returns its wall and
/// CPU seconds and, per table, what it did.
pub fn compact(
    porthole: &Path,
    data_dir: &Path,
) -> anyhow::Result<(f64, f64, std::collections::BTreeMap<String, Compacted>)> {
    let started = std::time::Instant::now();
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"TIMEFORMAT='%U %S'; { time "$0" compact --compaction-min-files 2 --vacuum-grace 0s --data-dir "$1" 2>/dev/null; } 2>&1"#)
        .arg(porthole)
        .arg(data_dir)
        .env("PORTHOLE_LOG", "warn,buoyant_kernel=off")
        .output()
        .context("running porthole compact")?;
    let wall = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        anyhow::bail!("porthole compact failed: {stdout}");
    }
    let mut tables = std::collections::BTreeMap::new();
    let mut cpu = 0.0;
    for line in stdout.lines() {
        if let Ok(report) = serde_json::from_str::<serde_json::Value>(line) {
            let n = |key: &str| report[key].as_u64().unwrap_or_default();
            tables.insert(
                report["table"].as_str().unwrap_or_default().to_string(),
                Compacted {
                    files_replaced: n("files_replaced"),
                    files_written: n("files_written"),
                    bytes_replaced: n("bytes_replaced"),
                },
            );
        } else if let Some((user, system)) = line.split_once(' ') {
            cpu =
                user.parse::<f64>().unwrap_or_default() + system.parse::<f64>().unwrap_or_default();
        }
    }
    Ok((wall, cpu, tables))
}
