//! `bench-collector`: what the sidecar costs in a pod. A writer appends generated
//! container log lines (CRI format, the shared generator) to a file at a steady rate;
//! `porthole-collector` tails it and ships to a real `porthole serve`, while `tail -F` of
//! the same file to /dev/null runs beside it as the floor: the cost of merely reading the
//! lines. Reports each one's CPU (% of one core) and peak RSS from /proc, their ratio, and
//! then the most lines per second one core of the collector handles (a backlog read
//! flat out, CPU-seconds per line, shipping included).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use porthole_bench::{cpu_seconds, generate_request, start_server};
use rand::SeedableRng;
use rand::rngs::StdRng;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "target/release/porthole-collector")]
    collector: PathBuf,
    /// The ingest the collector ships to.
    #[arg(long, default_value = "target/release/porthole")]
    porthole: PathBuf,
    /// Lines per second written during the steady phase.
    #[arg(long, default_value = "10000")]
    rate: u64,
    #[arg(long, default_value = "60")]
    seconds: u64,
    /// Lines of the backlog read flat out in the throughput phase.
    #[arg(long, default_value = "1000000")]
    backlog: usize,
    /// More collector config (YAML lines), e.g. `batch: {max_bytes: 262144}`.
    #[arg(long, default_value = "")]
    config: String,
}

struct Proc {
    child: Child,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn cpu(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.pid())
    }
    /// Peak resident set size, MiB (VmHWM).
    fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .context("VmHWM")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kib / 1024.0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(count: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut clock = 1_795_000_000_000_000_000u64;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        for line in generate_request(&mut rng, &mut clock) {
            // One line per record: the generator's multi-line stack traces are kept on one.
            out.push(line.raw.replace('\n', " "));
        }
    }
    out.truncate(count);
    out
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_collector(
    binary: &Path,
    work: &Path,
    name: &str,
    file: &Path,
    endpoint: &str,
    extra: &str,
) -> anyhow::Result<(Proc, String)> {
    let port = free_port()?;
    let config = work.join(format!("{name}.yaml"));
    std::fs::write(
        &config,
        format!(
            "endpoint: {endpoint}\nhttp_addr: 127.0.0.1:{port}\notlp: {{grpc_addr: null, http_addr: null}}\n\
             buffer: {{dir: {}}}\nfiles: [{{include: ['{}'], format: cri}}]\nresource: {{service: bench-{name}}}\n{extra}\n",
            work.join(format!("{name}-buffer")).display(),
            file.display()
        ),
    )?;
    let child = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(&metrics).is_err() {
        if Instant::now() > deadline {
            bail!("the collector did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((Proc { child }, metrics))
}

fn http_get(url: &str) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async { Ok(reqwest::get(url).await?.error_for_status()?.text().await?) })
}

fn metric(url: &str, name: &str) -> anyhow::Result<f64> {
    Ok(http_get(url)?
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

fn wait_shipped(url: &str, want: f64, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let shipped = metric(url, "porthole_collector_records_shipped_total")?;
        if shipped >= want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {shipped} of {want} records shipped in {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for binary in [&args.collector, &args.porthole] {
        if !binary.exists() {
            bail!(
                "{} not found: run `cargo build --release --workspace --bins` first",
                binary.display()
            );
        }
    }
    let work = tempfile::tempdir()?;
    let (_server, grpc, _http) = start_server(&args.porthole, &work.path().join("data"))?;

    // Steady phase: collector and `tail -F` on one file, the writer at `rate`.
    let total = (args.rate * args.seconds) as usize;
    let pool = lines(total.min(200_000), 1);
    let bytes_per_line = pool.iter().map(|l| l.len() + 1).sum::<usize>() as f64 / pool.len() as f64;
    let file = work.path().join("steady.log");
    std::fs::File::create(&file)?;
    let (collector, metrics_url) = start_collector(
        &args.collector,
        work.path(),
        "steady",
        &file,
        &grpc,
        &args.config,
    )?;
    let tail = Proc {
        child: Command::new("tail")
            .args(["-F", "-n", "0"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting tail -F")?,
    };
    std::thread::sleep(Duration::from_millis(500));
    let idle_cpu0 = collector.cpu()?;
    std::thread::sleep(Duration::from_secs(10));
    let idle_core = (collector.cpu()? - idle_cpu0) / 10.0 * 100.0;
    let (collector_cpu0, tail_cpu0) = (collector.cpu()?, tail.cpu()?);
    let started = Instant::now();
    let mut out = std::fs::OpenOptions::new().append(true).open(&file)?;
    let tick = Duration::from_millis(10);
    let per_tick = (args.rate as usize / 100).max(1);
    let mut written = 0usize;
    let mut chunk = String::new();
    while written < total {
        let due = started + tick * (written / per_tick) as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        chunk.clear();
        for n in written..(written + per_tick).min(total) {
            chunk.push_str(&pool[n % pool.len()]);
            chunk.push('\n');
        }
        out.write_all(chunk.as_bytes())?;
        written += per_tick.min(total - written);
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let both readers catch up with the last lines before the clock stops.
    std::thread::sleep(Duration::from_secs(1));
    let window = elapsed + 1.0;
    let collector_core = (collector.cpu()? - collector_cpu0) / window * 100.0;
    let tail_core = (tail.cpu()? - tail_cpu0) / window * 100.0;
    let (collector_rss, tail_rss) = (collector.peak_rss_mib()?, tail.peak_rss_mib()?);
    // Did shipping keep up? Records still waiting in the buffer when writing stopped.
    let waiting = metric(&metrics_url, "porthole_collector_buffer_records")?;
    let drain_started = Instant::now();
    wait_shipped(&metrics_url, written as f64, Duration::from_secs(120))?;
    let drained = drain_started.elapsed().as_secs_f64();
    let rate = written as f64 / elapsed;
    println!(
        "steady: {written} lines ({:.1} MB/s, {rate:.0} lines/s, {bytes_per_line:.0} B/line) for {elapsed:.0} s; \
         {waiting} buffer records waiting when writing stopped, all shipped {drained:.1} s later",
        rate * bytes_per_line / 1e6
    );
    println!(
        "  porthole-collector: {collector_core:.2}% of a core, peak RSS {collector_rss:.1} MiB (idle before: {idle_core:.2}% of a core)"
    );
    println!("  tail -F (floor):    {tail_core:.2}% of a core, peak RSS {tail_rss:.1} MiB");
    println!(
        "  ratio: collector CPU = {:.1}x tail -F; goal <= 5% of a core: {}; goal <= 10 MiB RSS: {}",
        collector_core / tail_core.max(0.01),
        if collector_core <= 5.0 {
            "met"
        } else {
            "NOT met"
        },
        if collector_rss <= 10.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    drop(collector);
    drop(tail);

    // Throughput phase: a backlog written first, then read, buffered and shipped flat out.
    let backlog = work.path().join("backlog.log");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&backlog)?);
    for n in 0..args.backlog {
        writeln!(out, "{}", pool[n % pool.len()])?;
    }
    out.flush()?;
    drop(out);
    let started = Instant::now();
    let (collector, metrics_url) = start_collector(
        &args.collector,
        work.path(),
        "backlog",
        &backlog,
        &grpc,
        &args.config,
    )?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while metric(&metrics_url, "porthole_collector_records_received_total")? < args.backlog as f64 {
        if Instant::now() > deadline {
            bail!("the backlog was not read in 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let read_seconds = started.elapsed().as_secs_f64();
    let read_cpu = collector.cpu()?;
    wait_shipped(&metrics_url, args.backlog as f64, Duration::from_secs(600))?;
    let ship_seconds = started.elapsed().as_secs_f64();
    let cpu = collector.cpu()?;
    println!(
        "backlog: {} lines read into the buffer in {read_seconds:.1} s ({:.0} lines/s, {read_cpu:.1} CPU-s), shipped in {ship_seconds:.1} s",
        args.backlog,
        args.backlog as f64 / read_seconds
    );
    println!(
        "  max lines/s on one core (read + buffer + ship): {:.0}; peak RSS {:.1} MiB",
        args.backlog as f64 / cpu,
        collector.peak_rss_mib()?
    );
    Ok(())
}
