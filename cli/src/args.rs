//! Command-line arguments. Every flag also reads `PORTHOLE_<FLAG>` from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "porthole",
    version,
    about = "Observability for sealed containers: OTLP in, Parquet + Delta Lake out"
)]
pub struct Cli {
    /// Log output: `text` for people, `json` for log pipelines.
    #[arg(long, env = "PORTHOLE_LOG_FORMAT", default_value = "text", global = true, value_parser = ["text", "json"])]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// All in one: OTLP ingest and the operations endpoints, on a local directory by default.
    Serve(ServeArgs),
    /// The ingest tier alone, pointed at shared storage.
    Ingest(ServeArgs),
    /// The query API alone, over the storage the ingest tier writes.
    Query(ServeArgs),
    // logs, tail, sql, metrics, trace, snapshot: the commands that ask a running Porthole
    // (the small `porthole` binary runs them itself, without starting this one).
    #[command(flatten)]
    Client(crate::client_args::ClientCommand),
    /// Merge small files into large ones and delete replaced files, once, then exit.
    Compact(CompactArgs),
    /// Take data files the tables list but cannot read (deleted outside Porthole, damaged)
    /// out of the tables, so searches and SQL over their days work again. Their
    /// rows are lost already. A JSON line per table says what was found.
    Repair(RepairArgs),
    /// Porthole plus a synthetic shop whose pods run real collectors; checkout v2 rolls
    /// out and fails, a pod's config drifts, a rule fires (dry run). Open the UI.
    Demo(DemoArgs),
}

#[derive(Args, Clone)]
pub struct DemoArgs {
    /// Where the demo keeps its data, pods and logs (cleared by the next demo).
    #[arg(long, default_value = "porthole-demo")]
    pub dir: PathBuf,
    /// The UI and API address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// When checkout v2.0.0 starts rolling out.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub rollout_after: std::time::Duration,
    /// The `porthole-collector` binary (default: beside this one).
    #[arg(long)]
    pub collector_bin: Option<PathBuf>,
    /// Serve the UI from this directory instead of the embedded build (as `serve`).
    #[arg(long)]
    pub web_dir: Option<PathBuf>,
}

/// Where the tables are.
#[derive(Args, Clone)]
pub struct StorageArgs {
    /// Local directory for the tables when --storage is not given.
    #[arg(long, env = "PORTHOLE_DATA_DIR", default_value = "./porthole-data")]
    pub data_dir: PathBuf,
    /// Object storage root, e.g. `s3://bucket/prefix` (credentials from the AWS_* variables).
    #[arg(long, env = "PORTHOLE_STORAGE")]
    pub storage: Option<String>,
    /// Multi-tenancy: a YAML file of tenants, their tokens and limits (see the README).
    /// Each tenant gets its own tables under `tenants/NAME/`; every export and API call
    /// must carry one of its tokens and sees only its data.
    #[arg(long, env = "PORTHOLE_TENANTS")]
    pub tenants: Option<PathBuf>,
}

/// How small files are merged and removed files deleted.
#[derive(Args, Clone)]
pub struct CompactionArgs {
    /// A day partition is compacted once it holds this many files not yet compacted.
    #[arg(long, env = "PORTHOLE_COMPACTION_MIN_FILES", default_value = "8", value_parser = clap::value_parser!(u32).range(2..))]
    pub compaction_min_files: u32,
    /// Decoded rows per compacted file, at most; the compactor needs about three times this
    /// in memory.
    #[arg(
        long,
        env = "PORTHOLE_COMPACTION_GROUP_BYTES",
        default_value = "128MiB"
    )]
    pub compaction_group_bytes: ByteSize,
    /// Files compaction replaced are deleted this long after (queries in flight finish).
    #[arg(long, env = "PORTHOLE_VACUUM_GRACE", default_value = "10m")]
    pub vacuum_grace: humantime::Duration,
    /// How long each table keeps data, e.g. `logs=7d,spans=3d,metrics=30d`: day partitions
    /// wholly older are removed in one commit, then vacuumed. A table not named keeps all.
    #[arg(long, env = "PORTHOLE_RETENTION", default_value = "")]
    pub retention: Retention,
}

/// Per-table retention ages, from `logs=7d,spans=3d`.
#[derive(Clone, Debug, Default)]
pub struct Retention(pub std::collections::BTreeMap<porthole_storage::Signal, std::time::Duration>);

impl FromStr for Retention {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use porthole_storage::Signal;
        let mut ages = std::collections::BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (table, age) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not TABLE=AGE, e.g. logs=7d"))?;
            let signal = Signal::from_table_name(table.trim()).ok_or_else(|| {
                format!("unknown table {table:?}; the tables are logs, spans and metrics")
            })?;
            let age: std::time::Duration = age
                .trim()
                .parse::<humantime::Duration>()
                .map_err(|e| format!("{table}={age}: {e}"))?
                .into();
            if age.is_zero() {
                return Err(format!(
                    "{part:?}: a retention of zero would remove everything"
                ));
            }
            if ages.insert(signal, age).is_some() {
                return Err(format!("{table:?} is given twice"));
            }
        }
        Ok(Self(ages))
    }
}

impl CompactionArgs {
    pub fn maintenance(&self) -> crate::compactor::Maintenance {
        crate::compactor::Maintenance {
            policy: porthole_storage::CompactionPolicy {
                min_files: self.compaction_min_files as usize,
                max_group_bytes: self.compaction_group_bytes.0,
            },
            retention: self.retention.0.clone(),
            grace: self.vacuum_grace.into(),
        }
    }
}

/// `porthole compact`: one compaction and vacuum pass over every table, then exit.
#[derive(Args, Clone)]
pub struct CompactArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub compaction: CompactionArgs,
}

/// `porthole repair`: one check of every table, then exit.
#[derive(Args, Clone)]
pub struct RepairArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Only report the unreadable files; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Decode every page of every data file, not only its footer: finds damaged pages
    /// behind an intact footer, at the cost of reading the whole of every table.
    #[arg(long)]
    pub deep: bool,
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// On ingest nodes: how often compaction and vacuum run (`0s`: never).
    #[arg(long, env = "PORTHOLE_COMPACTION_INTERVAL", default_value = "5m")]
    pub compaction_interval: humantime::Duration,
    #[command(flatten)]
    pub compaction: CompactionArgs,
    /// Packed full-text index bytes kept open between searches (least recently used go).
    #[arg(long, env = "PORTHOLE_INDEX_CACHE_BYTES", default_value = "512MiB")]
    pub index_cache_bytes: ByteSize,
    /// OTLP/gRPC listen address.
    #[arg(long, env = "PORTHOLE_OTLP_GRPC_ADDR", default_value = "0.0.0.0:4317")]
    pub otlp_grpc_addr: SocketAddr,
    /// OTLP/HTTP listen address.
    #[arg(long, env = "PORTHOLE_OTLP_HTTP_ADDR", default_value = "0.0.0.0:4318")]
    pub otlp_http_addr: SocketAddr,
    /// Listen address of /healthz, /readyz and /metrics (and the API when it exists).
    #[arg(long, env = "PORTHOLE_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Largest accepted export, after decompression (e.g. `8MiB`).
    #[arg(long, env = "PORTHOLE_MAX_REQUEST_BYTES", default_value = "8MiB")]
    pub max_request_bytes: ByteSize,
    /// Export requests being read or awaiting their commit, at most; beyond it exports get
    /// UNAVAILABLE. Bounds decoding memory to about this times --max-request-bytes.
    #[arg(long, env = "PORTHOLE_MAX_INFLIGHT_REQUESTS", default_value = "256", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_inflight_requests: u32,
    /// Open connections per listener (OTLP gRPC, OTLP HTTP, API), at most; past it new
    /// connections are closed at once, counted in porthole_connections_refused_total.
    /// Every collector holds one gRPC connection to an ingest node.
    #[arg(long, env = "PORTHOLE_MAX_CONNECTIONS", default_value = "4096", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// A connection must send each request's head (request line and headers) within this
    /// long, or be closed, and an export its body within as long again (past it: 408 /
    /// DEADLINE_EXCEEDED); an idle HTTP/1 keep-alive connection is closed after as long.
    #[arg(long, env = "PORTHOLE_READ_TIMEOUT", default_value = "30s", value_parser = nonzero_duration)]
    pub read_timeout: humantime::Duration,
    /// API queries (searches, traces, SQL, PromQL) running at once on this node, at most;
    /// more wait for a slot (see --max-queued-queries). Each has its own memory bound, so
    /// this bounds what they hold together. Live tails and snapshot requests are not counted.
    #[arg(long, env = "PORTHOLE_MAX_CONCURRENT_QUERIES", default_value = "8", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_queries: u32,
    /// How long a log search, histogram, trace search or lookup, version or inventory
    /// answer may run; past it, it is stopped and answered 504 (SQL stops at 30 s, PromQL
    /// at --promql-timeout).
    #[arg(long, env = "PORTHOLE_QUERY_TIMEOUT", default_value = "1m", value_parser = nonzero_duration)]
    pub query_timeout: humantime::Duration,
    /// Queries waiting for a slot, at most; past it a query gets 503 + Retry-After at once
    /// (porthole_api_queries_refused_total).
    #[arg(long, env = "PORTHOLE_MAX_QUEUED_QUERIES", default_value = "64")]
    pub max_queued_queries: u32,
    /// Live tails open at once on this node (the UI's Live mode, `porthole tail`, and on
    /// an ingest node the query nodes' streams), at most; one more gets 503 (counted in
    /// porthole_tails_refused_total). Each matches every committed file on its own.
    #[arg(long, env = "PORTHOLE_MAX_TAILS", default_value = "256", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tails: u32,
    /// Memory that exports being decoded and converted to rows may take together. Each
    /// export's share is estimated from its bytes before it is decoded (tiny messages take
    /// hundreds of times their wire size); exports wait for room, and one that alone would
    /// take more is refused (413 / RESOURCE_EXHAUSTED).
    #[arg(long, env = "PORTHOLE_MAX_DECODE_BYTES", default_value = "512MiB")]
    pub max_decode_bytes: ByteSize,
    /// Rows waiting to be written, at most; beyond it exports get UNAVAILABLE.
    #[arg(long, env = "PORTHOLE_MAX_BUFFER_BYTES", default_value = "256MiB")]
    pub max_buffer_bytes: ByteSize,
    /// Exports arriving within this window are written as one file per signal.
    #[arg(long, env = "PORTHOLE_BATCH_WINDOW", default_value = "1s")]
    pub batch_window: humantime::Duration,
    /// A batch is written early once it holds this many bytes of rows.
    #[arg(long, env = "PORTHOLE_MAX_BATCH_BYTES", default_value = "64MiB")]
    pub max_batch_bytes: ByteSize,
    /// A file holding one token; with it, every OTLP export and API call (and /metrics)
    /// must send `Authorization: Bearer TOKEN`. /healthz and /readyz stay open. With
    /// --tenants it is the operator's token, which reads /metrics and no tenant's data.
    #[arg(long, env = "PORTHOLE_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// On `porthole query`: the OTLP gRPC URLs of the ingest nodes (comma-separated, e.g.
    /// `http://ingest-0:4317`), which live tail subscribes to.
    #[arg(long, env = "PORTHOLE_INGEST_NODES", value_delimiter = ',')]
    pub ingest_nodes: Vec<String>,
    /// CA (PEM) that signed the ingest nodes' certificates, for `https://` --ingest-nodes
    /// (default: the web's roots).
    #[arg(long, env = "PORTHOLE_INGEST_CA_FILE")]
    pub ingest_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) this node presents to ingest nodes that require one
    /// (their --tls-client-ca); with --ingest-client-key.
    #[arg(
        long,
        env = "PORTHOLE_INGEST_CLIENT_CERT",
        requires = "ingest_client_key"
    )]
    pub ingest_client_cert: Option<PathBuf>,
    #[arg(
        long,
        env = "PORTHOLE_INGEST_CLIENT_KEY",
        requires = "ingest_client_cert"
    )]
    pub ingest_client_key: Option<PathBuf>,
    /// A batch whose write and commit take longer fails with UNAVAILABLE (senders retry).
    #[arg(long, env = "PORTHOLE_WRITE_TIMEOUT", default_value = "30s")]
    pub write_timeout: humantime::Duration,
    /// PromQL: series one query may load; more is a 422.
    #[arg(long, env = "PORTHOLE_PROMQL_MAX_SERIES", default_value = "100000")]
    pub promql_max_series: usize,
    /// PromQL: samples one query may load into memory (16 bytes each); more is a 422.
    #[arg(long, env = "PORTHOLE_PROMQL_MAX_SAMPLES", default_value = "50000000")]
    pub promql_max_samples: usize,
    /// PromQL: time one query may take (a request's `timeout` can only shorten it).
    #[arg(long, env = "PORTHOLE_PROMQL_TIMEOUT", default_value = "2m")]
    pub promql_timeout: humantime::Duration,
    /// On query nodes: a directory of alert rule files (`*.yml`/`*.yaml`, Prometheus format
    /// plus log rules and actions), reloaded on SIGHUP or when the files change.
    #[arg(long, env = "PORTHOLE_RULES")]
    pub rules: Option<PathBuf>,
    /// Evaluation interval of rule groups without their own `interval`.
    #[arg(long, env = "PORTHOLE_RULES_INTERVAL", default_value = "1m")]
    pub rules_interval: humantime::Duration,
    /// Webhook receivers for alerts, sent the JSON Alertmanager sends (repeatable).
    #[arg(
        long = "alert-webhook",
        env = "PORTHOLE_ALERT_WEBHOOKS",
        value_delimiter = ','
    )]
    pub alert_webhooks: Vec<String>,
    /// Alertmanagers to send alerts to (`POST /api/v2/alerts`), like Prometheus does.
    #[arg(
        long = "alertmanager-url",
        env = "PORTHOLE_ALERTMANAGER_URLS",
        value_delimiter = ','
    )]
    pub alertmanager_urls: Vec<String>,
    /// Rule actions: `live`, `dry-run` (decide and record, send nothing) or `off`.
    #[arg(long, env = "PORTHOLE_ALERT_ACTIONS", default_value = "live")]
    pub alert_actions: porthole_alerts::ActionsMode,
    /// Actions of all rules together per hour, at most (each rule also has max_per_hour).
    #[arg(
        long,
        env = "PORTHOLE_ALERT_MAX_ACTIONS_PER_HOUR",
        default_value = "10"
    )]
    pub alert_max_actions_per_hour: u32,
    /// How this node is reached from outside, for notifications' links (default: the
    /// --http-addr).
    #[arg(long, env = "PORTHOLE_EXTERNAL_URL")]
    pub external_url: Option<String>,
    /// Length of one slot of the alerting lease: how long failover to another replica takes
    /// at most.
    #[arg(long, env = "PORTHOLE_ALERT_LEASE_SLOT", default_value = "30s")]
    pub alert_lease_slot: humantime::Duration,
    /// How long the audit events of action decisions are kept (whole days, at least 31:
    /// guardrails and `/api/v1/alerts/events` read up to 31 days back).
    #[arg(long, env = "PORTHOLE_ALERT_EVENTS_RETENTION", default_value = "90d")]
    pub alert_events_retention: humantime::Duration,
    /// How long stored snapshots (pods' process lists and redacted environments) are kept;
    /// the newest 1000 of a tenant at most either way.
    #[arg(long, env = "PORTHOLE_SNAPSHOT_RETENTION", default_value = "30d")]
    pub snapshot_retention: humantime::Duration,
    /// TLS certificate chain (PEM) for every listener (OTLP gRPC, OTLP/HTTP, the API and
    /// UI); with --tls-key.
    #[arg(long, env = "PORTHOLE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The TLS private key (PEM); with --tls-cert.
    #[arg(long, env = "PORTHOLE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// CA (PEM) whose client certificates the OTLP ports require: mutual TLS for
    /// collector → ingest. The API and UI port asks for none.
    #[arg(long, env = "PORTHOLE_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// Serve the web UI from this directory (a `web/dist`, for UI development) instead of
    /// the copy built into the binary.
    #[arg(long, env = "PORTHOLE_WEB_DIR")]
    pub web_dir: Option<std::path::PathBuf>,
}

/// A byte count: `1048576`, `512KiB`, `8MiB`, `1GiB` (also KB/MB/GB as powers of 1000).
#[derive(Clone, Copy, Debug)]
pub struct ByteSize(pub usize);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let number: usize = number
            .parse()
            .map_err(|_| format!("{s:?} is not a size like 8MiB"))?;
        let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" | "k" => 1 << 10,
            "mib" | "m" => 1 << 20,
            "gib" | "g" => 1 << 30,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            other => {
                return Err(format!(
                    "unknown size unit {other:?}; use B, KiB, MiB or GiB"
                ));
            }
        };
        number
            .checked_mul(multiplier)
            .filter(|n| *n > 0)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is out of range"))
    }
}

/// deltalake's kernel logs every snapshot at info, and an error when it probes a table that
/// does not exist yet (every first start); their failures reach us as errors anyway.
const DEFAULT_LOG_FILTER: &str = "info,deltalake=warn,deltalake_core=warn,buoyant_kernel=off";

pub fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTHOLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM (what Kubernetes sends) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

fn nonzero_duration(text: &str) -> Result<humantime::Duration, String> {
    let duration: humantime::Duration = text.parse().map_err(|e| format!("{e}"))?;
    if std::time::Duration::from(duration).is_zero() {
        return Err("must be more than 0s".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_reject_nonsense() {
        assert_eq!("8MiB".parse::<ByteSize>().unwrap().0, 8 << 20);
        assert_eq!("1024".parse::<ByteSize>().unwrap().0, 1024);
        assert_eq!("2 GiB".parse::<ByteSize>().unwrap().0, 2 << 30);
        assert!("eight".parse::<ByteSize>().is_err());
        assert!("8XB".parse::<ByteSize>().is_err());
        assert!("0".parse::<ByteSize>().is_err());
    }
}
