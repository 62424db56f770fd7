//! `bench-metrics`: PromQL over a day of counters, Porthole against a real Prometheus in
//! the same run. The same samples (by default 10k series × 1 day at 15 s) are backfilled
//! into Prometheus with `promtool tsdb create-blocks-from openmetrics` and remote-written
//! into `porthole serve` (then compacted, as the background job would); then
//! `sum by (group) (rate(bench_requests_total[5m]))` over the whole day (step 60 s) is
//! timed on both, after one warm-up, median of three. Prints both times and their
//! ratio, and checks both answers agree.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use porthole_bench::{compact, start_server_with};
use porthole_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "target/release/porthole")]
    porthole: PathBuf,
    #[arg(long, default_value = "/usr/bin/prometheus")]
    prometheus: PathBuf,
    #[arg(long, default_value = "/usr/bin/promtool")]
    promtool: PathBuf,
    #[arg(long, default_value = "10000")]
    series: usize,
    #[arg(long, default_value = "24")]
    hours: i64,
    /// Values of the `group` label the query sums by.
    #[arg(long, default_value = "10")]
    groups: usize,
    #[arg(long, default_value = "60")]
    step: i64,
}

const INTERVAL_MS: i64 = 15_000;
const QUERY: &str = "sum by (group) (rate(bench_requests_total[5m]))";

fn value(series: usize, i: i64) -> f64 {
    // A counter growing 1..=7 per scrape, varying by series and time.
    let per = 1 + ((series as i64 * 31 + i * 17) % 7);
    (i * 4 + per) as f64 * (1 + series % 3) as f64
}

fn labels(series: usize, groups: usize) -> [(String, String); 3] {
    [
        ("__name__".into(), "bench_requests_total".into()),
        ("group".into(), format!("g{}", series % groups)),
        ("series".into(), series.to_string()),
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let now = chrono_now_ms();
    let start_ms = (now - (args.hours + 1) * 3_600_000) / 3_600_000 * 3_600_000;
    let points = args.hours * 3_600_000 / INTERVAL_MS;
    let samples = points as usize * args.series;
    println!(
        "data: {} series x {} samples = {samples} samples",
        args.series, points
    );

    // Prometheus: backfill.
    let started = Instant::now();
    let om = dir.path().join("data.om");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&om)?);
        for s in 0..args.series {
            let l = labels(s, args.groups);
            for i in 0..points {
                writeln!(
                    out,
                    "bench_requests_total{{group=\"{}\",series=\"{}\"}} {} {}",
                    l[1].1,
                    l[2].1,
                    value(s, i),
                    (start_ms + i * INTERVAL_MS) / 1000
                )?;
            }
        }
        writeln!(out, "# EOF")?;
    }
    let tsdb = dir.path().join("tsdb");
    let status = Command::new(&args.promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&tsdb)
        .stdout(Stdio::null())
        .status()
        .context("running promtool")?;
    if !status.success() {
        bail!("promtool backfill failed");
    }
    std::fs::remove_file(&om)?;
    println!(
        "prometheus: backfilled in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n")?;
    let prom_addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut prometheus = Command::new(&args.prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address={prom_addr}"))
        .arg("--storage.tsdb.retention.time=30d")
        .arg("--query.max-samples=1000000000")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting prometheus")?;
    let prom_url = format!("http://{prom_addr}");

    // Porthole: remote_write, then compaction.
    let data_dir = dir.path().join("porthole");
    let (mut server, _, http) = start_server_with(
        &args.porthole,
        &data_dir,
        &[
            "--promql-max-samples",
            "2000000000",
            "--promql-max-series",
            "10000000",
            "--promql-timeout",
            "30m",
        ],
    )?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let per_request = (200_000 / points.max(1) as usize).max(1);
    let chunks: Vec<std::ops::Range<usize>> = (0..args.series)
        .step_by(per_request)
        .map(|s| s..(s + per_request).min(args.series))
        .collect();
    let write_url = format!("{http}/api/v1/write");
    let mut writes = futures::stream::iter(chunks)
        .map(|range| {
            let client = client.clone();
            let url = write_url.clone();
            let groups = args.groups;
            async move {
                let request = WriteRequest {
                    timeseries: range
                        .map(|s| TimeSeries {
                            labels: labels(s, groups)
                                .into_iter()
                                .map(|(name, value)| Label { name, value })
                                .collect(),
                            samples: (0..points)
                                .map(|i| Sample {
                                    value: value(s, i),
                                    timestamp: start_ms + i * INTERVAL_MS,
                                })
                                .collect(),
                            histograms: Vec::new(),
                        })
                        .collect(),
                };
                let body = snap::raw::Encoder::new()
                    .compress_vec(&prost::Message::encode_to_vec(&request))?;
                // As Prometheus does: a 5xx (ingest's buffer is full) is retried after a pause.
                loop {
                    let response = client
                        .post(&url)
                        .header("content-encoding", "snappy")
                        .header("content-type", "application/x-protobuf")
                        .body(body.clone())
                        .send()
                        .await?;
                    match response.status().as_u16() {
                        204 => return Ok(()),
                        500..=599 => tokio::time::sleep(Duration::from_millis(250)).await,
                        _ => bail!(
                            "remote_write answered {}: {}",
                            response.status(),
                            response.text().await?
                        ),
                    }
                }
            }
        })
        .buffer_unordered(4);
    while let Some(result) = writes.next().await {
        result?;
    }
    let written = started.elapsed().as_secs_f64();
    println!(
        "porthole: remote_write of {samples} samples in {written:.1}s ({:.0} samples/s)",
        samples as f64 / written
    );
    let (wall, _, tables) = compact(&args.porthole, &data_dir)?;
    if let Some(m) = tables.get("metrics") {
        println!(
            "porthole: compacted {} files into {} in {wall:.1}s",
            m.files_replaced, m.files_written
        );
    }

    // The query, on both.
    let params = [
        ("query", QUERY.to_string()),
        ("start", (start_ms / 1000).to_string()),
        (
            "end",
            ((start_ms + args.hours * 3_600_000) / 1000).to_string(),
        ),
        ("step", args.step.to_string()),
    ];
    let time = |url: String| {
        let client = client.clone();
        let params = params.clone();
        async move {
            let mut times = Vec::new();
            let mut last = serde_json::Value::Null;
            for run in 0..4 {
                let started = Instant::now();
                let response = client
                    .get(&url)
                    .query(&params)
                    .timeout(Duration::from_secs(3600))
                    .send()
                    .await?;
                let status = response.status();
                let body: serde_json::Value = response.json().await?;
                if status != 200 {
                    bail!("{url} answered {status}: {body}");
                }
                if run > 0 {
                    times.push(started.elapsed().as_secs_f64());
                }
                last = body;
            }
            times.sort_by(|a, b| a.total_cmp(b));
            Ok::<_, anyhow::Error>((times[1], last))
        }
    };
    // Prometheus loads its blocks at startup; wait until it answers.
    let deadline = Instant::now() + Duration::from_secs(120);
    while client
        .get(format!("{prom_url}/-/ready"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        if Instant::now() > deadline {
            bail!("prometheus did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (prom_s, prom_body) = time(format!("{prom_url}/api/v1/query_range")).await?;
    let (ours_s, ours_body) = time(format!("{http}/api/v1/metrics/query_range")).await?;
    let summary = |b: &serde_json::Value| -> (usize, f64) {
        let result = b["data"]["result"].as_array().cloned().unwrap_or_default();
        let total: f64 = result
            .iter()
            .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p[1].as_str().and_then(|v| v.parse::<f64>().ok()))
            .sum();
        (result.len(), total)
    };
    let (ps, pt) = summary(&prom_body);
    let (os, ot) = summary(&ours_body);
    let agree = ps == os && (pt - ot).abs() <= 1e-6 * pt.abs().max(1.0);
    println!("query: {QUERY} over {}h, step {}s", args.hours, args.step);
    println!("prometheus: {prom_s:.3}s ({ps} series, sum of points {pt:.6e})");
    println!("porthole:   {ours_s:.3}s ({os} series, sum of points {ot:.6e})");
    println!(
        "ratio porthole/prometheus: {:.2}x (answers agree: {agree})",
        ours_s / prom_s
    );
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    server.stop()?;
    if !agree {
        bail!("the answers differ");
    }
    Ok(())
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
