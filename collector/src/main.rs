//! `porthole-collector`: parses flags and the config file, then runs the collector until
//! SIGTERM or Ctrl-C. Every flag also reads `PORTHOLE_COLLECTOR_<FLAG>` from the env.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use porthole_collector::Config;
use porthole_collector::config::{FileSource, MultilineConfig};

#[derive(Parser)]
#[command(
    name = "porthole-collector",
    version,
    about = "Porthole's sidecar: tails files, receives OTLP, ships to ingest without losing a line"
)]
struct Args {
    /// The YAML config (collector/README.md); flags override what it says.
    #[arg(long, env = "PORTHOLE_COLLECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// Ingest's OTLP gRPC endpoint, e.g. `http://porthole-ingest:4317`.
    #[arg(long, env = "PORTHOLE_COLLECTOR_ENDPOINT")]
    endpoint: Option<String>,
    /// Files to tail (glob, repeatable), e.g. `/var/log/app/*.log*`.
    #[arg(
        long = "files",
        env = "PORTHOLE_COLLECTOR_FILES",
        value_delimiter = ','
    )]
    files: Vec<String>,
    /// Join stack traces (Java/JVM, Python, Go, Node.js, .NET, Ruby) in `--files` to the
    /// line before them, as `multiline: {stack_traces: true}` does in the config file.
    #[arg(long, env = "PORTHOLE_COLLECTOR_STACK_TRACES")]
    stack_traces: bool,
    /// Containers of this pod whose stdout and stderr to follow through the Kubernetes
    /// API (`pod_logs.containers`); `--stack-traces` joins their traces too.
    #[arg(
        long = "pod-logs",
        env = "PORTHOLE_COLLECTOR_POD_LOGS",
        value_delimiter = ','
    )]
    pod_logs: Vec<String>,
    /// Report this pod's Kubernetes events (`pod_events: true`).
    #[arg(long, env = "PORTHOLE_COLLECTOR_POD_EVENTS")]
    pod_events: bool,
    /// The disk buffer's directory.
    #[arg(long, env = "PORTHOLE_COLLECTOR_BUFFER_DIR")]
    buffer_dir: Option<PathBuf>,
    /// Most bytes the disk buffer may hold.
    #[arg(long, env = "PORTHOLE_COLLECTOR_MAX_BUFFER_BYTES")]
    max_buffer_bytes: Option<u64>,
    /// `service.name` for records that do not say.
    #[arg(long, env = "PORTHOLE_COLLECTOR_SERVICE")]
    service: Option<String>,
    /// File with the bearer token for ingest.
    #[arg(long, env = "PORTHOLE_COLLECTOR_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// OTLP gRPC receiver for the app's SDK (`off` to disable).
    #[arg(long, env = "PORTHOLE_COLLECTOR_OTLP_GRPC_ADDR")]
    otlp_grpc_addr: Option<String>,
    /// OTLP HTTP receiver for the app's SDK (`off` to disable).
    #[arg(long, env = "PORTHOLE_COLLECTOR_OTLP_HTTP_ADDR")]
    otlp_http_addr: Option<String>,
    /// Address of the collector's own /healthz and /metrics.
    #[arg(long, env = "PORTHOLE_COLLECTOR_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// `text` or `json` log lines.
    #[arg(long, env = "PORTHOLE_COLLECTOR_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let config = match build_config(args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("porthole-collector: {error}");
            return ExitCode::from(2);
        }
    };
    // One thread: the sidecar must stay small (one allocator arena, no idle workers); an
    // fsync or a file read briefly holds up the receivers, which is fine at a pod's rates.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(porthole_collector::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "collector stopped");
            eprintln!("porthole-collector: {error}");
            ExitCode::FAILURE
        }
    }
}

fn build_config(args: Args) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::from_yaml_file(path)?,
        None => Config::default(),
    };
    if let Some(endpoint) = args.endpoint {
        config.endpoint = endpoint;
    }
    if !args.files.is_empty() {
        config.files.push(FileSource {
            include: args.files,
            exclude: Vec::new(),
            format: Default::default(),
            multiline: args.stack_traces.then(|| MultilineConfig {
                stack_traces: true,
                ..MultilineConfig::default()
            }),
            attributes: Default::default(),
        });
    }
    if !args.pod_logs.is_empty() {
        config.pod_logs.containers.extend(args.pod_logs);
        config.pod_logs.stack_traces |= args.stack_traces;
    }
    config.pod_events |= args.pod_events;
    if let Some(dir) = args.buffer_dir {
        config.buffer.dir = dir;
    }
    if let Some(max) = args.max_buffer_bytes {
        config.buffer.max_bytes = max;
    }
    if let Some(service) = args.service {
        config.resource.service = Some(service);
    }
    if let Some(path) = args.token_file {
        config.token_file = Some(path);
    }
    if let Some(addr) = args.otlp_grpc_addr {
        config.otlp.grpc_addr = parse_addr(&addr, "--otlp-grpc-addr")?;
    }
    if let Some(addr) = args.otlp_http_addr {
        config.otlp.http_addr = parse_addr(&addr, "--otlp-http-addr")?;
    }
    if let Some(addr) = args.http_addr {
        config.http_addr = addr;
    }
    config.validate()?;
    Ok(config)
}

fn parse_addr(value: &str, flag: &str) -> anyhow::Result<Option<SocketAddr>> {
    if value == "off" {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{flag} {value:?}: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
