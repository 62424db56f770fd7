//! `bench-ingest`: how fast `porthole serve` makes container logs durable, against a bare
//! pyarrow Parquet write of the same rows measured in the same run.
//!
//! Generates realistic container logs with the shared generator (`porthole_bench`: ~10
//! services, JSON and plain text lines of mixed length, attributes), sends them over
//! OTLP/gRPC from concurrent clients for a fixed time, and reports acked raw-log MB/s per
//! CPU core the server used, the pyarrow baseline, their ratio, and stored bytes (Parquet +
//! index + table log) as a fraction of raw bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use porthole_bench::{
    Line, compact, cpu_seconds, dir_bytes, export_of, generate_request, hex, peak_rss_bytes,
    start_server, thread_cpu_seconds, work_dir,
};
use porthole_proto::common::any_value::Value;
use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::logs_service::logs_service_client::LogsServiceClient;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The server's allocator, so the write path's parts cost here what they cost there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Raw megabytes of logs generated before the clock starts (the clients stop early if
    /// they send it all, and say so).
    #[arg(long, default_value = "800")]
    generate_mb: u64,
    /// Keep the tables in a new folder under this directory (for profiling afterwards)
    /// instead of deleting them.
    #[arg(long)]
    keep: Option<PathBuf>,
}

/// One export of at least `records` log records (whole requests): its lines, the export,
/// and its raw bytes (the lines as the node's log file holds them, with newlines).
fn generate_export(
    rng: &mut StdRng,
    clock_ns: &mut u64,
    records: usize,
) -> (Vec<Line>, ExportLogsServiceRequest, u64) {
    let mut lines: Vec<Line> = Vec::with_capacity(records + 8);
    while lines.len() < records {
        lines.extend(generate_request(rng, clock_ns));
    }
    let raw = lines.iter().map(|l| l.raw.len() as u64 + 1).sum();
    let export = export_of(&lines);
    (lines, export, raw)
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
    let now_ns = 1_795_000_000_000_000_000u64;
    // A sample of exports for the baselines (pyarrow writes the same rows; zstd of the raw
    // lines says how much information they hold) and for the write path by part. The
    // clients send other, freshly generated exports, so no line reaches the server twice:
    // repeated lines would sort side by side and compress to nothing, flattering the
    // stored/raw figure.
    let mut rng = StdRng::seed_from_u64(7);
    let mut clock_ns = now_ns;
    let mut raw_file = Vec::new();
    let sample: Vec<(ExportLogsServiceRequest, u64)> = (0..64)
        .map(|_| {
            let (lines, export, raw) = generate_export(&mut rng, &mut clock_ns, args.records);
            for line in &lines {
                raw_file.extend_from_slice(line.raw.as_bytes());
                raw_file.push(b'\n');
            }
            (export, raw)
        })
        .collect();
    // zstd -3 as a fast compressor keeps the lines; -19 with a window over the whole
    // sample, near the least any general-purpose compressor keeps: the floor for a lossless
    // copy, before any index.
    let zstd_fraction = |level: i32, long: bool| -> anyhow::Result<f64> {
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), level)?;
        if long {
            encoder.long_distance_matching(true)?;
            encoder.window_log(27)?;
        }
        encoder.write_all(&raw_file)?;
        Ok(encoder.finish()?.len() as f64 / raw_file.len() as f64)
    };
    let (zstd_3, zstd_19) = (zstd_fraction(3, false)?, zstd_fraction(19, true)?);
    drop(raw_file);

    // The exports the clients send, generated beforehand on every core, so the load
    // generator does not compete with the server it measures. Each generator is its own
    // stream of requests over the same stretch of time, as the pods of a cluster log side
    // by side; none repeats a line.
    let generators = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_generator = args.generate_mb * 1_000_000 / generators as u64;
    let streams: Vec<Vec<(ExportLogsServiceRequest, u64, u64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..generators)
            .map(|g| {
                scope.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(1_000 + g as u64);
                    let (mut clock_ns, mut raw_total) = (now_ns, 0);
                    let mut exports = Vec::new();
                    while raw_total < per_generator {
                        let (lines, export, raw) =
                            generate_export(&mut rng, &mut clock_ns, args.records);
                        raw_total += raw;
                        exports.push((export, raw, lines.len() as u64));
                    }
                    exports
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("generator"))
            .collect()
    });
    let longest = streams.iter().map(Vec::len).max().unwrap_or(0);
    let mut interleaved = Vec::new();
    let mut streams: Vec<_> = streams.into_iter().map(Vec::into_iter).collect();
    for _ in 0..longest {
        interleaved.extend(streams.iter_mut().filter_map(Iterator::next));
    }
    let queue = Arc::new(std::sync::Mutex::new(interleaved.into_iter()));

    let data_dir = work_dir(args.keep.as_deref(), "bench-ingest", work.path())?.join("data");
    let (mut server, endpoint, _) = start_server(&args.porthole, &data_dir)?;
    let acked_raw = Arc::new(AtomicU64::new(0));
    let acked_records = Arc::new(AtomicU64::new(0));
    let ack_seconds = Arc::new(std::sync::Mutex::new(Vec::new()));
    let cpu_before = cpu_seconds(server.child.id())?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        let (endpoint, queue, acked_raw, acked_records, ack_seconds) = (
            endpoint.clone(),
            queue.clone(),
            acked_raw.clone(),
            acked_records.clone(),
            ack_seconds.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut client = LogsServiceClient::connect(endpoint)
                .await?
                .max_decoding_message_size(64 << 20);
            while Instant::now() < deadline {
                let next = queue.lock().expect("queue").next();
                let Some((request, raw, records)) = next else {
                    break;
                };
                let sent = Instant::now();
                if client.export(request).await.is_ok() {
                    let waited = sent.elapsed().as_secs_f64();
                    ack_seconds.lock().expect("latencies").push(waited);
                    acked_raw.fetch_add(raw, Ordering::Relaxed);
                    acked_records.fetch_add(records, Ordering::Relaxed);
                }
            }
            anyhow::Ok(())
        }));
    }
    for client in clients {
        client.await??;
    }
    if Instant::now() < deadline {
        eprintln!(
            "note: all {} MB generated were sent before {} s; raise --generate-mb",
            args.generate_mb, args.seconds
        );
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(server.child.id())? - cpu_before;
    let peak_rss = peak_rss_bytes(server.child.id())?;
    server.stop()?;

    let raw_mb = acked_raw.load(Ordering::Relaxed) as f64 / 1e6;
    let porthole_mb_per_core = raw_mb / cpu.max(1e-9);
    let stored = dir_bytes(&data_dir, "") as f64;
    let parquet = dir_bytes(&data_dir, ".parquet") as f64;
    let index = dir_bytes(&data_dir, ".idx") as f64;
    let parts = index_parts(&data_dir)?;
    let (compact_wall, compact_cpu, compacted) = compact(&args.porthole, &data_dir)?;
    let compacted_stored = dir_bytes(&data_dir, "") as f64;
    let compacted_parquet = dir_bytes(&data_dir, ".parquet") as f64;
    let compacted_index = dir_bytes(&data_dir, ".idx") as f64;
    let compacted_logs = compacted
        .get("logs")
        .context("compact reported no logs table")?;

    // Baseline: the sample's rows written by pyarrow as one zstd file.
    let rows_path = work.path().join("rows.jsonl");
    let mut rows = std::io::BufWriter::new(std::fs::File::create(&rows_path)?);
    let mut baseline_raw = 0u64;
    for (request, raw) in &sample {
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
    println!(
        "server peak RSS       {:.0} MiB (--max-buffer-bytes 256 MiB by default)",
        peak_rss as f64 / (1 << 20) as f64
    );
    let mut waits = ack_seconds.lock().expect("latencies").clone();
    waits.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        waits
            .get(((waits.len() as f64 - 1.0) * q) as usize)
            .copied()
    };
    if let (Some(p50), Some(p99)) = (quantile(0.5), quantile(0.99)) {
        println!(
            "export to ack         p50 {p50:.2} s, p99 {p99:.2} s (batch window 1 s; {} exports)",
            waits.len()
        );
    }
    println!("porthole ingest       {porthole_mb_per_core:.1} MB/s per core (goal >= 30)");
    println!(
        "pyarrow write         {pyarrow_mb_per_core:.1} MB/s per core (same rows, zstd, one file, best of 3)"
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
        "raw file, zstd        {:.1}% of raw at -3, {:.1}% at -19 --long (how compressible the generated logs are)",
        100.0 * zstd_3,
        100.0 * zstd_19
    );
    println!(
        "after compaction      {:.1}% (Parquet {:.1}% + index {:.1}%; {} files -> {} in {compact_wall:.1} s, {:.1} raw MB/s per core)",
        100.0 * compacted_stored / raw,
        100.0 * compacted_parquet / raw,
        100.0 * compacted_index / raw,
        compacted_logs.files_replaced,
        compacted_logs.files_written,
        raw_mb / compact_cpu.max(1e-9)
    );
    let breakdown: Vec<String> = parts
        .iter()
        .map(|(kind, bytes)| format!("{kind} {:.1}%", 100.0 * *bytes as f64 / raw))
        .collect();
    println!(
        "index by part         {} (before compaction)",
        breakdown.join(", ")
    );
    write_path_by_part(&sample, pyarrow_mb_per_core)
}

/// The server's write path step by step, on this thread, over the sample's rows as one
/// batch: what each step costs per raw MB, so the ingest figure above can be read
/// against what its parts allow (the index alone caps it). Best of three of each.
fn write_path_by_part(
    sample: &[(ExportLogsServiceRequest, u64)],
    pyarrow_mb_per_core: f64,
) -> anyhow::Result<()> {
    use porthole_storage::{Effort, Signal};
    use prost::Message;
    let raw_mb = sample.iter().map(|(_, raw)| raw).sum::<u64>() as f64 / 1e6;
    let encoded: Vec<Vec<u8>> = sample.iter().map(|(e, _)| e.encode_to_vec()).collect();
    let best_of_three = |step: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let before = thread_cpu_seconds()?;
            step()?;
            best = best.min(thread_cpu_seconds()? - before);
        }
        Ok(raw_mb / best.max(1e-9))
    };
    let decode = best_of_three(&mut || {
        for bytes in &encoded {
            ExportLogsServiceRequest::decode(bytes.as_slice())?;
        }
        Ok(())
    })?;
    // OTLP/HTTP JSON: Porthole's decoder (the proto3 JSON mapping's enum names and
    // doubles as strings) against the generated types' own serde decoding, the same text.
    let json: Vec<Vec<u8>> = sample
        .iter()
        .map(|(e, _)| serde_json::to_vec(e))
        .collect::<Result<_, _>>()?;
    let json_mapping = best_of_three(&mut || {
        for text in &json {
            porthole_proto::json::from_otlp_json::<ExportLogsServiceRequest>(text)?;
        }
        Ok(())
    })?;
    let json_plain = best_of_three(&mut || {
        for text in &json {
            serde_json::from_slice::<ExportLogsServiceRequest>(text)?;
        }
        Ok(())
    })?;
    // What admission spends estimating each export's decoded size before decoding it.
    let estimate = best_of_three(&mut || {
        for bytes in &encoded {
            std::hint::black_box(porthole_net::decoding::decoded_estimate(bytes));
        }
        Ok(())
    })?;
    let mut batches = Vec::new();
    let convert = best_of_three(&mut || {
        batches = sample
            .iter()
            .map(|(export, _)| porthole_storage::convert_logs(export, 0).batch)
            .collect();
        Ok(())
    })?;
    // The exports' rows straight into one sorted batch, as the server does (one copy).
    let mut sorted = batches[0].clone();
    let sort = best_of_three(&mut || {
        sorted = porthole_storage::sort_for_storage(batches[0].schema(), &batches)?;
        Ok(())
    })?;
    let parquet = best_of_three(&mut || {
        porthole_storage::encode_parquet(&sorted, Effort::Ingest)?;
        Ok(())
    })?;
    let index = best_of_three(&mut || {
        porthole_storage::build_packed_index(Signal::Logs, &sorted)?;
        Ok(())
    })?;
    let all = 1.0
        / [estimate, decode, convert, sort, parquet, index]
            .map(|r| 1.0 / r)
            .iter()
            .sum::<f64>();
    println!(
        "write path by part    raw MB/s per core: decode estimate {estimate:.0}, OTLP decode {decode:.0}, to Arrow {convert:.0}, sort {sort:.0}, Parquet {parquet:.0}, index {index:.0}; all six {all:.1} (one thread, {raw_mb:.0} MB)"
    );
    println!(
        "                      index share of the six {:.0}%; the index alone is {:.2}x of pyarrow",
        100.0 * all / index,
        index / pyarrow_mb_per_core
    );
    println!(
        "OTLP/JSON decode      raw MB/s per core: {json_mapping:.0} by the proto3 JSON mapping, {json_plain:.0} by the generated types' serde ({:.2}x)",
        json_mapping / json_plain
    );
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
