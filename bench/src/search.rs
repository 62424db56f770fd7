//! `bench-search`: how fast `porthole logs` finds things in ~1 GB of logs, against `rg` over
//! the same logs as raw files and DuckDB over Porthole's own Parquet files, measured in the
//! same run; and how fast a trace is fetched by id among ~1M spans.
//!
//! Generates container logs with the shared generator (`porthole_bench`), timestamped over
//! the last two hours, and plants a few rare "needle" tokens, each in a few random lines.
//! Every line goes once to a raw CRI log file per service (what a node's `/var/log/pods`
//! holds) and once to `porthole serve` over OTLP/gRPC from concurrent clients, as do traces
//! of 20 spans. Once everything is acked it times, as the median of `--repeat` runs after a
//! warm-up: the `porthole logs` CLI process (and, to show what the process itself costs,
//! the HTTP call alone) for a needle, a common term and a phrase; `rg --fixed-strings` over
//! the raw files; DuckDB's `LIKE` over the table's Parquet files (`search_duckdb.py`); and
//! `GET /api/v1/traces/{id}`. Every answer is checked: a needle must find exactly its lines.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use porthole_bench::{
    Line, ROUTES, SERVICES, compact, cpu_seconds, dir_bytes, export_of, generate_request, hex,
    start_server, string, work_dir,
};
use porthole_proto::common::any_value::Value;
use porthole_proto::logs::LogRecord;
use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::logs_service::logs_service_client::LogsServiceClient;
use porthole_proto::resource::Resource;
use porthole_proto::trace::span::SpanKind;
use porthole_proto::trace::status::StatusCode;
use porthole_proto::trace::{ResourceSpans, ScopeSpans, Span, Status};
use porthole_proto::trace_service::ExportTraceServiceRequest;
use porthole_proto::trace_service::trace_service_client::TraceServiceClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Mutex, mpsc};
use tonic::Code;
use tonic::transport::Channel;

#[derive(Parser)]
struct Args {
    /// The porthole binary to measure (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/porthole")]
    porthole: PathBuf,
    /// Python with duckdb (`.venv/bin/pip install -r bench/requirements.lock`).
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    /// Raw log bytes to generate and ingest, in MB.
    #[arg(long, default_value = "1000")]
    megabytes: u64,
    /// Spans to ingest, as traces of 20 spans.
    #[arg(long, default_value = "1000000")]
    spans: usize,
    /// Keep the generated raw logs and tables in a new folder under this directory (for
    /// profiling afterwards) instead of deleting them.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Every timing is the median of this many runs (after one warm-up run).
    #[arg(long, default_value = "7", value_parser = clap::value_parser!(u64).range(1..))]
    repeat: u64,
    /// Concurrent OTLP/gRPC clients sending the data.
    #[arg(long, default_value = "8", value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,
}

/// Log records per export.
const RECORDS_PER_EXPORT: usize = 2000;
/// Requests are generated round-robin by this many streams, each with its own clock, so
/// that 1 GB of lines spans minutes rather than hours (one stream's clock would run into
/// the future, which a search up to now does not see).
const STREAMS: usize = 16;
/// Logs and spans start this long before now.
const HISTORY_NS: u64 = 2 * 3600 * 1_000_000_000;
/// Rare tokens, each planted at the end of NEEDLE_LINES random lines.
const NEEDLES: [&str; 3] = ["needle7f3a9c2e", "needle0b5d1e94", "needle93c6a07f"];
const NEEDLE_LINES: usize = 3;
/// The common term and the phrase searched besides the timed needle (`NEEDLES[0]`).
const COMMON: &str = "completed";
const PHRASE: &str = "connection failure";
/// Rows a search asks for (the CLI's and DuckDB's `LIMIT`).
const LIMIT: usize = 100;

const SPANS_PER_TRACE: usize = 20;
const TRACES_PER_EXPORT: usize = 100;
/// Traces come from the first TRACE_SERVICES of SERVICES, one operation each.
const TRACE_SERVICES: usize = 5;
const OPERATIONS: [&str; TRACE_SERVICES] = [
    "POST /charge",
    "redis GET cart",
    "grpc payments.Authorize",
    "SELECT items",
    "grpc auth.Verify",
];
/// Root spans start evenly spread over this window, from HISTORY_NS ago.
const TRACE_WINDOW_NS: u64 = 90 * 60 * 1_000_000_000;
/// Each span of a trace starts this long after the previous one.
const SPAN_STEP_NS: u64 = 2_000_000;

enum Export {
    Logs(ExportLogsServiceRequest),
    Spans(ExportTraceServiceRequest),
}

/// What the log generator produced: sizes, its newest timestamp, and the bodies of the
/// lines each needle was planted in.
struct Generated {
    raw_bytes: u64,
    lines: u64,
    newest_ns: u64,
    planted: BTreeMap<&'static str, Vec<String>>,
}

fn body(record: &LogRecord) -> Option<&str> {
    match record.body.as_ref()?.value.as_ref()? {
        Value::StringValue(text) => Some(text),
        _ => None,
    }
}

/// Appends ` needle` to the line's OTLP body and to its raw line.
fn plant(line: &mut Line, needle: &str) {
    if let Some(Value::StringValue(text)) = line.record.body.as_mut().and_then(|b| b.value.as_mut())
    {
        text.push(' ');
        text.push_str(needle);
    }
    line.raw.push(' ');
    line.raw.push_str(needle);
}

/// Generates `target` raw bytes of log lines from STREAMS request streams starting at
/// `start_ns`, writes each raw line to `raw_dir/<service>.log` and sends the records as
/// exports of RECORDS_PER_EXPORT. Each needle goes into the lines holding NEEDLE_LINES
/// random byte offsets of the raw stream.
fn generate_logs(
    target: u64,
    start_ns: u64,
    raw_dir: &Path,
    exports: &mpsc::Sender<Export>,
) -> anyhow::Result<Generated> {
    let mut rng = StdRng::seed_from_u64(11);
    let mut plants: Vec<(u64, &'static str)> = Vec::new();
    for needle in NEEDLES {
        for _ in 0..NEEDLE_LINES {
            plants.push((rng.random_range(0..target), needle));
        }
    }
    plants.sort_unstable_by(|a, b| b.cmp(a)); // the next offset is last
    let mut files = SERVICES
        .iter()
        .map(|name| {
            let path = raw_dir.join(format!("{name}.log"));
            std::fs::File::create(&path)
                .map(BufWriter::new)
                .with_context(|| format!("creating {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (mut raw_bytes, mut lines) = (0, 0);
    let mut planted: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut clocks = [start_ns; STREAMS];
    let mut batch: Vec<Line> = Vec::with_capacity(RECORDS_PER_EXPORT + 8);
    let mut request = 0;
    while raw_bytes < target {
        let clock = &mut clocks[request % STREAMS];
        request += 1;
        for mut line in generate_request(&mut rng, clock) {
            let end = raw_bytes + line.raw.len() as u64 + 1;
            let mut needles = Vec::new();
            while let Some(&(at, needle)) = plants.last()
                && at < end
            {
                plants.pop();
                plant(&mut line, needle);
                needles.push(needle);
            }
            for needle in needles {
                let text = body(&line.record).context("generated body")?.to_string();
                planted.entry(needle).or_default().push(text);
            }
            let file = &mut files[line.service];
            file.write_all(line.raw.as_bytes())?;
            file.write_all(b"\n")?;
            raw_bytes += line.raw.len() as u64 + 1;
            lines += 1;
            batch.push(line);
        }
        if batch.len() >= RECORDS_PER_EXPORT {
            send(exports, Export::Logs(export_of(&batch)))?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        send(exports, Export::Logs(export_of(&batch)))?;
    }
    for mut file in files {
        file.flush()?;
    }
    Ok(Generated {
        raw_bytes,
        lines,
        newest_ns: clocks.into_iter().max().unwrap_or(start_ns),
        planted,
    })
}

fn send(exports: &mpsc::Sender<Export>, export: Export) -> anyhow::Result<()> {
    exports
        .blocking_send(export)
        .ok()
        .context("every OTLP client stopped")
}

/// Generates `count` spans as traces of SPANS_PER_TRACE (a root and descendants across
/// TRACE_SERVICES), sent as exports of TRACES_PER_EXPORT traces. Returns the ids (hex) of
/// `keep` traces spread evenly over them.
fn generate_spans(
    count: usize,
    start_ns: u64,
    keep: usize,
    exports: &mpsc::Sender<Export>,
) -> anyhow::Result<Vec<String>> {
    let mut rng = StdRng::seed_from_u64(13);
    let traces = count / SPANS_PER_TRACE;
    if traces < keep {
        bail!(
            "--spans {count} is too few: at least {keep} traces of {SPANS_PER_TRACE} are looked up"
        );
    }
    let kept_at: Vec<usize> = (0..keep)
        .map(|k| (2 * k + 1) * traces / (2 * keep))
        .collect();
    let step = TRACE_WINDOW_NS / traces as u64;
    let mut kept = Vec::with_capacity(keep);
    let mut batch: Vec<(usize, Span)> = Vec::with_capacity(TRACES_PER_EXPORT * SPANS_PER_TRACE);
    for t in 0..traces {
        let trace_id: [u8; 16] = rng.random();
        if kept_at.contains(&t) {
            kept.push(hex(&trace_id));
        }
        let root_start = start_ns + t as u64 * step;
        let route = ROUTES[rng.random_range(0..ROUTES.len())];
        let mut span_ids: Vec<[u8; 8]> = Vec::with_capacity(SPANS_PER_TRACE);
        for s in 0..SPANS_PER_TRACE {
            let span_id: [u8; 8] = rng.random();
            let start = root_start + s as u64 * SPAN_STEP_NS;
            // The root spans the whole trace; each child starts after the previous span.
            let (service, name, kind, parent, end) = if s == 0 {
                let end = start + (SPANS_PER_TRACE as u64 + 1) * SPAN_STEP_NS;
                (0, format!("GET {route}"), SpanKind::Server, Vec::new(), end)
            } else {
                let service = rng.random_range(0..TRACE_SERVICES);
                let parent = span_ids[rng.random_range(0..s)].to_vec();
                let end = start + rng.random_range(100_000..SPAN_STEP_NS);
                (
                    service,
                    OPERATIONS[service].to_string(),
                    SpanKind::Client,
                    parent,
                    end,
                )
            };
            let (code, message) = if rng.random_bool(0.02) {
                (StatusCode::Error, "upstream reset")
            } else {
                (StatusCode::Ok, "")
            };
            batch.push((
                service,
                Span {
                    trace_id: trace_id.to_vec(),
                    span_id: span_id.to_vec(),
                    parent_span_id: parent,
                    name,
                    kind: kind as i32,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    attributes: vec![string("http.route", route)],
                    status: Some(Status {
                        code: code as i32,
                        message: message.into(),
                    }),
                    ..Default::default()
                },
            ));
            span_ids.push(span_id);
        }
        if batch.len() >= TRACES_PER_EXPORT * SPANS_PER_TRACE || t + 1 == traces {
            send(exports, Export::Spans(trace_export(&batch)))?;
            batch.clear();
        }
    }
    Ok(kept)
}

fn trace_export(spans: &[(usize, Span)]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: SERVICES[..TRACE_SERVICES]
            .iter()
            .enumerate()
            .map(|(i, name)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        string("service.name", name),
                        string("k8s.namespace.name", "shop"),
                        string("service.version", "v1.4.2"),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: spans
                        .iter()
                        .filter(|(service, _)| *service == i)
                        .map(|(_, span)| span.clone())
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// Runs `generate` on a blocking thread while `clients` OTLP/gRPC clients send what it
/// produces; returns its result once every export is acked. UNAVAILABLE is retried with
/// backoff (counted in `retries`); anything else, or a partial success, is an error.
async fn ingest<T: Send + 'static>(
    endpoint: &str,
    clients: u64,
    retries: &Arc<AtomicU64>,
    generate: impl FnOnce(&mpsc::Sender<Export>) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let (sender, receiver) = mpsc::channel(2 * clients as usize);
    let generator = tokio::task::spawn_blocking(move || generate(&sender));
    let receiver = Arc::new(Mutex::new(receiver));
    let mut senders = Vec::new();
    for _ in 0..clients {
        let channel = Channel::from_shared(endpoint.to_string())?
            .connect()
            .await
            .with_context(|| format!("connecting to {endpoint}"))?;
        senders.push(tokio::spawn(send_exports(
            channel,
            receiver.clone(),
            retries.clone(),
        )));
    }
    for sender in senders {
        sender.await??;
    }
    generator.await?
}

async fn send_exports(
    channel: Channel,
    exports: Arc<Mutex<mpsc::Receiver<Export>>>,
    retries: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mut logs = LogsServiceClient::new(channel.clone());
    let mut traces = TraceServiceClient::new(channel);
    loop {
        let next = exports.lock().await.recv().await;
        let Some(export) = next else {
            return Ok(());
        };
        let mut backoff = Duration::from_millis(50);
        loop {
            let answer = match &export {
                Export::Logs(request) => logs.export(request.clone()).await.map(|a| {
                    a.into_inner()
                        .partial_success
                        .map(|p| (p.rejected_log_records, p.error_message))
                }),
                Export::Spans(request) => traces.export(request.clone()).await.map(|a| {
                    a.into_inner()
                        .partial_success
                        .map(|p| (p.rejected_spans, p.error_message))
                }),
            };
            match answer {
                Ok(Some((rejected, message))) if rejected > 0 => {
                    bail!("porthole rejected {rejected} records of an export: {message}")
                }
                Ok(_) => break,
                Err(status) if status.code() == Code::Unavailable => {
                    retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(status) => bail!("export failed: {status}"),
            }
        }
    }
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    let mid = times.len() / 2;
    if times.len().is_multiple_of(2) {
        (times[mid - 1] + times[mid]) / 2.0
    } else {
        times[mid]
    }
}

fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

/// Runs `command` to its end: its stdout, or an error carrying its stderr if it failed.
fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).with_context(|| format!("{command:?} printed non-UTF-8"))
}

/// Runs `command` once to warm up, then `repeat` times: the median wall time (ms) and the
/// warm-up's stdout.
fn time_command(repeat: u64, mut command: Command) -> anyhow::Result<(f64, String)> {
    let stdout = run(&mut command)?;
    let mut times = Vec::new();
    for _ in 0..repeat {
        let started = Instant::now();
        run(&mut command)?;
        times.push(ms_since(started));
    }
    Ok((median(times), stdout))
}

/// Runs `run(0)` to warm up, then `run(1..=repeat)`: the median wall time in ms.
async fn time_async(
    repeat: u64,
    mut run: impl AsyncFnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    run(0).await?;
    let mut times = Vec::new();
    for i in 1..=repeat as usize {
        let started = Instant::now();
        run(i).await?;
        times.push(ms_since(started));
    }
    Ok(median(times))
}

/// The data files of a table, `<table>/day=*/*.parquet` (not the table log's checkpoints).
fn data_files(table: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for day in std::fs::read_dir(table).with_context(|| format!("reading {}", table.display()))? {
        let day = day?;
        if !day.file_name().to_string_lossy().starts_with("day=") {
            continue;
        }
        for file in std::fs::read_dir(day.path())? {
            let path = file?.path();
            if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// A table's data files: how many, their MB, and the MB of their indexes.
fn table_size(table: &Path) -> anyhow::Result<(usize, f64, f64)> {
    let files = data_files(table)?;
    let mut parquet = 0;
    for file in &files {
        parquet += std::fs::metadata(file)?.len();
    }
    Ok((
        files.len(),
        parquet as f64 / 1e6,
        dir_bytes(table, ".idx") as f64 / 1e6,
    ))
}

/// One search, as each tool spells it.
struct Search {
    porthole: String,
    literal: &'static str,
}

/// The timings of one search, in ms.
struct Timings {
    cli: f64,
    api: f64,
    rg: f64,
    duckdb: f64,
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let run_started = Instant::now();
    let args = Args::parse();
    if !args.porthole.exists() {
        bail!(
            "{} not found: run `cargo build --release -p porthole` first",
            args.porthole.display()
        );
    }
    let rg_version = Command::new("rg")
        .arg("--version")
        .output()
        .context("rg (ripgrep) not found: apt-get install ripgrep")?;
    let rg_version = String::from_utf8_lossy(&rg_version.stdout)
        .lines()
        .next()
        .unwrap_or("rg")
        .to_string();
    let duckdb_check = Command::new(&args.python)
        .args(["-c", "import duckdb"])
        .output()
        .with_context(|| format!("running {}", args.python.display()))?;
    if !duckdb_check.status.success() {
        bail!(
            "duckdb is not importable by {}: .venv/bin/pip install -r bench/requirements.lock",
            args.python.display()
        );
    }

    let temporary = tempfile::tempdir()?;
    let work = work_dir(args.keep.as_deref(), "bench-search", temporary.path())?;
    let raw_dir = work.as_path().join("raw");
    std::fs::create_dir(&raw_dir)?;
    let data_dir = work.as_path().join("data");
    let (mut server, otlp, http) = start_server(&args.porthole, &data_dir)?;
    let now_ns = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    let start_ns = now_ns - HISTORY_NS;

    let retries = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_seconds(server.child.id())?;
    let started = Instant::now();
    let target = args.megabytes * 1_000_000;
    let logs = ingest(&otlp, args.clients, &retries, move |exports| {
        generate_logs(target, start_ns, &raw_dir, exports)
    })
    .await
    .context("ingesting logs")?;
    let logs_seconds = started.elapsed().as_secs_f64();
    let logs_cpu = cpu_seconds(server.child.id())? - cpu_before;
    if logs.newest_ns >= now_ns {
        bail!(
            "--megabytes {} of logs from 2 h ago run past now: ask for fewer",
            args.megabytes
        );
    }
    let started = Instant::now();
    let (spans, keep) = (args.spans, args.repeat as usize + 1);
    let trace_ids = ingest(&otlp, args.clients, &retries, move |exports| {
        generate_spans(spans, start_ns, keep, exports)
    })
    .await
    .context("ingesting spans")?;
    let spans_seconds = started.elapsed().as_secs_f64();

    let searches = [
        Search {
            porthole: NEEDLES[0].to_string(),
            literal: NEEDLES[0],
        },
        Search {
            porthole: COMMON.to_string(),
            literal: COMMON,
        },
        Search {
            porthole: format!("\"{PHRASE}\""),
            literal: PHRASE,
        },
    ];
    let limit = LIMIT.to_string();
    let logs_command = |query: &str| {
        let mut command = Command::new(&args.porthole);
        command
            .args(["logs", query, "--since", "1d", "--limit", &limit])
            .args(["--output", "json", "--server", &http]);
        command
    };
    // The needle over the small files ingest wrote, then again once `porthole compact`
    // (a second process, as another node would) merged them.
    let (small_files, small_parquet, small_index) = table_size(&data_dir.join("logs"))?;
    let (small_needle, _) = time_command(args.repeat, logs_command(NEEDLES[0]))?;
    let (compact_wall, compact_cpu, compacted) = compact(&args.porthole, &data_dir)?;
    let logs_compacted = compacted
        .get("logs")
        .context("compact reported no logs table")?;

    // Correctness first: every needle finds exactly the lines it was planted in.
    for needle in NEEDLES {
        let stdout = run(&mut logs_command(needle))?;
        let mut found: Vec<String> = stdout
            .lines()
            .map(|row| {
                let row: serde_json::Value = serde_json::from_str(row)?;
                row["body"]
                    .as_str()
                    .map(str::to_string)
                    .context("a row without a body")
            })
            .collect::<anyhow::Result<_>>()?;
        let mut planted = logs.planted.get(needle).cloned().unwrap_or_default();
        found.sort();
        planted.sort();
        if found != planted {
            bail!(
                "porthole logs {needle} found {} lines, not the {} planted: {found:#?}",
                found.len(),
                planted.len()
            );
        }
    }

    let duckdb_glob = format!("{}/logs/day=*/*.parquet", data_dir.display());
    let duckdb = Command::new(&args.python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("search_duckdb.py"))
        .arg(&duckdb_glob)
        .arg(args.repeat.to_string())
        .args(searches.iter().map(|s| s.literal))
        .output()
        .context("running search_duckdb.py")?;
    if !duckdb.status.success() {
        bail!(
            "search_duckdb.py failed: {}",
            String::from_utf8_lossy(&duckdb.stderr)
        );
    }
    let duckdb: serde_json::Value =
        serde_json::from_slice(&duckdb.stdout).context("search_duckdb.py's output")?;

    let client = reqwest::Client::new();
    let mut timings = Vec::new();
    for (i, search) in searches.iter().enumerate() {
        let (cli, stdout) = time_command(args.repeat, logs_command(&search.porthole))?;
        let rows = stdout.lines().count();
        let expected = if i == 0 {
            logs.planted.get(NEEDLES[0]).map_or(0, Vec::len)
        } else {
            LIMIT
        };
        if rows != expected {
            bail!(
                "porthole logs {} returned {rows} rows, not {expected}",
                search.porthole
            );
        }
        let url = reqwest::Url::parse_with_params(
            &format!("{http}/api/v1/logs"),
            [
                ("q", search.porthole.as_str()),
                ("start", "now-1d"),
                ("limit", limit.as_str()),
            ],
        )?;
        let api = time_async(args.repeat, async |_| {
            client
                .get(url.clone())
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            Ok(())
        })
        .await?;
        let mut rg = Command::new("rg");
        rg.args(["--fixed-strings", "--count-matches", search.literal])
            .arg(work.as_path().join("raw"));
        let (rg, counts) = time_command(args.repeat, rg)?;
        let matches: u64 = counts
            .lines()
            .map(|l| l.rsplit(':').next().unwrap_or_default().parse::<u64>())
            .sum::<Result<_, _>>()
            .context("rg's counts")?;
        if i == 0 && matches != expected as u64 {
            bail!("rg found {matches} {}, not {expected}", search.literal);
        }
        let result = &duckdb["terms"][search.literal];
        if result["rows"].as_u64() != Some(expected as u64) {
            bail!(
                "DuckDB returned {} rows for {}, not {expected}",
                result["rows"],
                search.literal
            );
        }
        let duckdb = result["ms"].as_f64().context("DuckDB's ms")?;
        timings.push(Timings {
            cli,
            api,
            rg,
            duckdb,
        });
    }

    let trace = time_async(args.repeat, async |i| {
        let url = format!("{http}/api/v1/traces/{}", trace_ids[i]);
        let body: serde_json::Value = client
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let spans = body["spans"].as_array().map_or(0, Vec::len);
        if spans != SPANS_PER_TRACE {
            bail!("{url} returned {spans} spans, not {SPANS_PER_TRACE}");
        }
        Ok(())
    })
    .await?;

    let (log_files, log_parquet, log_index) = table_size(&data_dir.join("logs"))?;
    let (span_files, span_parquet, span_index) = table_size(&data_dir.join("spans"))?;
    let status = server.stop()?;
    if !status.success() {
        bail!("porthole exited with {status} on SIGTERM");
    }

    let raw_mb = logs.raw_bytes as f64 / 1e6;
    println!(
        "bench-search: porthole vs {rg_version} vs DuckDB {}",
        duckdb["duckdb"].as_str().unwrap_or("?")
    );
    println!(
        "logs ingest    {raw_mb:.1} MB raw ({} lines, {} planted needles) acked in {logs_seconds:.1} s ({:.1} MB/s, server {:.2} cores)",
        logs.lines,
        NEEDLES.len() * NEEDLE_LINES,
        raw_mb / logs_seconds,
        logs_cpu / logs_seconds
    );
    println!(
        "spans ingest   {spans} spans ({} traces) acked in {spans_seconds:.1} s; {} exports retried after UNAVAILABLE",
        spans / SPANS_PER_TRACE,
        retries.load(Ordering::Relaxed)
    );
    println!(
        "before compact {small_files} log files: Parquet {small_parquet:.1} MB + index {small_index:.1} MB ({:.0}% of raw); needle {small_needle:.1} ms ({:.1}x rg)",
        100.0 * (small_parquet + small_index) / raw_mb,
        timings[0].rg / small_needle
    );
    println!(
        "compaction     {} log files -> {} ({:.1} MB of Parquet) in {compact_wall:.1} s, {compact_cpu:.1} s CPU ({:.1} raw MB/s per core)",
        logs_compacted.files_replaced,
        logs_compacted.files_written,
        logs_compacted.bytes_replaced as f64 / 1e6,
        raw_mb / compact_cpu.max(1e-9)
    );
    println!(
        "stored logs    {log_files} files: Parquet {log_parquet:.1} MB + index {log_index:.1} MB ({:.0}% of raw)",
        100.0 * (log_parquet + log_index) / raw_mb
    );
    println!(
        "stored spans   {span_files} files: Parquet {span_parquet:.1} MB + index {span_index:.1} MB"
    );
    println!();
    println!(
        "wall ms, median of {} runs after a warm-up; porthole = the `porthole logs … --limit {LIMIT}` process, API = its HTTP call alone",
        args.repeat
    );
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>12} {:>16}",
        "query", "porthole", "API", "rg", "DuckDB", "rg/porthole", "DuckDB/porthole"
    );
    for (search, t) in searches.iter().zip(&timings) {
        println!(
            "{:<22} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11.1}x {:>15.1}x",
            search.porthole,
            t.cli,
            t.api,
            t.rg,
            t.duckdb,
            t.rg / t.cli,
            t.duckdb / t.cli
        );
    }
    println!(
        "trace by id    {trace:.1} ms median over {} traces of {SPANS_PER_TRACE} spans among {spans}",
        args.repeat
    );
    println!();
    let needle = &timings[0];
    println!(
        "goal  needle >= 10x faster than rg      {:>6.1}x  {}",
        needle.rg / needle.cli,
        verdict(needle.rg / needle.cli >= 10.0)
    );
    println!(
        "goal  needle >= 3x faster than DuckDB   {:>6.1}x  {}",
        needle.duckdb / needle.cli,
        verdict(needle.duckdb / needle.cli >= 3.0)
    );
    println!(
        "goal  trace by id <= 100 ms             {trace:>6.1} ms {}",
        verdict(trace <= 100.0)
    );
    println!("run took {:.0} s", run_started.elapsed().as_secs_f64());
    Ok(())
}
