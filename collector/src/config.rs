//! The collector's configuration: one YAML file (`--config`), with the common options also
//! settable by flags. Unknown fields are errors naming the field; `validate` checks the rest.
//! The doc comment on each field is its reference (collector/README.md repeats them).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::CollectorError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The ingest endpoint, OTLP gRPC: `http://porthole-ingest:4317` or `https://…` for TLS.
    pub endpoint: String,
    /// A file holding the bearer token sent as `authorization: Bearer …` (never logged).
    pub token_file: Option<PathBuf>,
    /// Compression of exports to ingest: `zstd` (cheapest per byte), `gzip` or `none`.
    pub compression: Compression,
    /// TLS towards ingest (used when `endpoint` is `https://`).
    pub tls: TlsConfig,
    /// The on-disk buffer between the sources and the shipper.
    pub buffer: BufferConfig,
    /// Files to tail.
    pub files: Vec<FileSource>,
    /// Where file offsets are saved; default `<buffer.dir>/checkpoints.json`.
    pub checkpoint_file: Option<PathBuf>,
    /// Longest line kept; longer lines are cut to this length and counted.
    pub max_line_bytes: usize,
    /// Where to start in a file seen for the first time: `beginning` or `end`.
    pub read_from: ReadFrom,
    /// How often globs are re-evaluated for new, rotated or truncated files.
    #[serde(with = "humantime_serde")]
    pub glob_interval: Duration,
    /// Most files read at once; more matches are skipped and counted.
    pub max_open_files: usize,
    /// How records are grouped before they enter the buffer.
    pub batch: BatchConfig,
    /// Exports sent to ingest at once (acknowledged in order).
    pub max_in_flight_exports: usize,
    /// The OTLP receiver for the application's own SDK.
    pub otlp: OtlpReceiverConfig,
    /// Prometheus text-format endpoints to scrape.
    pub scrape: Vec<ScrapeTarget>,
    /// The pod's own resource usage from cgroup v2.
    pub cgroup: CgroupConfig,
    /// The pod's identity and configuration fingerprints, for `/api/v1/inventory`.
    pub inventory: InventoryConfig,
    /// Point-in-time views of the pod (processes, descriptors, sockets) on request.
    pub snapshots: SnapshotConfig,
    /// Identity stamped on every record, on top of what the downward API gives.
    pub resource: ResourceConfig,
    /// The collector's own `/healthz` and `/metrics`.
    pub http_addr: SocketAddr,
    /// On SIGTERM: how long to keep shipping the buffer before exiting.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Patterns replaced in logs and spans before they enter the buffer (passwords,
    /// tokens an app logged), in order.
    pub redact: Vec<crate::redact::RedactRule>,
    pub pod_logs: PodLogsConfig,
    /// Report this pod's Kubernetes events (failed probes, back-offs, image pulls, OOM
    /// kills, evictions) as log records; needs `list` and `watch` on `events`.
    pub pod_events: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: "http://127.0.0.1:4317".into(),
            token_file: None,
            compression: Compression::Zstd,
            tls: TlsConfig::default(),
            buffer: BufferConfig::default(),
            files: Vec::new(),
            checkpoint_file: None,
            max_line_bytes: 64 * 1024,
            read_from: ReadFrom::Beginning,
            glob_interval: Duration::from_secs(1),
            max_open_files: 256,
            batch: BatchConfig::default(),
            max_in_flight_exports: 16,
            otlp: OtlpReceiverConfig::default(),
            scrape: Vec::new(),
            cgroup: CgroupConfig::default(),
            inventory: InventoryConfig::default(),
            snapshots: SnapshotConfig::default(),
            resource: ResourceConfig::default(),
            http_addr: "0.0.0.0:8686".parse().expect("valid address"),
            shutdown_timeout: Duration::from_secs(20),
            redact: Vec::new(),
            pod_logs: PodLogsConfig::default(),
            pod_events: false,
        }
    }
}

/// Containers of this pod whose stdout and stderr the collector follows through the
/// Kubernetes API (`GET …/pods/<pod>/log?follow=true&timestamps=true`), as `kubectl logs
/// -f` does: a sidecar cannot read the kubelet's files of them (on the node, root only).
/// Needs the pod's name and namespace (`K8S_POD_NAME`, `K8S_NAMESPACE`) and a
/// ServiceAccount token that may `get` `pods/log` in that namespace.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PodLogsConfig {
    pub containers: Vec<String>,
    /// Join stack traces into the line before them (as `multiline.stack_traces`).
    pub stack_traces: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    Beginning,
    End,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// CA bundle (PEM) that signs ingest's certificate; default: the system's web roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    pub key_file: Option<PathBuf>,
    /// Server name to verify, when it differs from the endpoint's host.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Directory of the buffer's segment files (an `emptyDir` in Kubernetes).
    pub dir: PathBuf,
    /// Most bytes on disk; see `when_full`.
    pub max_bytes: u64,
    /// `block`: stop reading files (they wait on disk) and answer the OTLP receiver
    /// UNAVAILABLE; `drop_oldest`: delete the oldest segment, counting its records.
    pub when_full: WhenFull,
    /// Size at which a segment file is closed and a new one begun.
    pub segment_bytes: u64,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            dir: PathBuf::from("/var/lib/porthole-collector"),
            max_bytes: 256 * 1024 * 1024,
            when_full: WhenFull::Block,
            segment_bytes: 8 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    Block,
    DropOldest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// Glob patterns of files to read, e.g. `/var/log/app/*.log*` (include rotated names
    /// such as `app.log.1` so lines not yet read when a file is rotated are still read).
    pub include: Vec<String>,
    /// Glob patterns to leave out, e.g. `*.gz`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `plain` lines, `docker` JSON lines, `cri` (containerd/CRI-O), or `auto` per line.
    #[serde(default)]
    pub format: Format,
    /// Joins lines into one record, e.g. stack traces.
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
    /// Attributes added to every record of these files.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Auto,
    Plain,
    Docker,
    Cri,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// A regex matching the first line of a record; other lines join the record before.
    #[serde(default)]
    pub start: Option<String>,
    /// Join the stack traces of Java/JVM, Python, Go, Node.js, .NET and Ruby programs to
    /// the line before them, without a `start` pattern (see `source::file::stack`).
    #[serde(default)]
    pub stack_traces: bool,
    /// Most lines in one record; the rest begin a new record.
    #[serde(default = "default_multiline_max_lines")]
    pub max_lines: usize,
    /// A record with no new line for this long is sent as it is.
    #[serde(default = "default_multiline_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for MultilineConfig {
    fn default() -> Self {
        Self {
            start: None,
            stack_traces: false,
            max_lines: default_multiline_max_lines(),
            timeout: default_multiline_timeout(),
        }
    }
}

fn default_multiline_max_lines() -> usize {
    500
}

fn default_multiline_timeout() -> Duration {
    Duration::from_secs(1)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Most records in one export.
    pub max_records: usize,
    /// Most body bytes in one export.
    pub max_bytes: usize,
    /// Longest a record waits for its batch to fill.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_records: 8192,
            max_bytes: 256 * 1024,
            timeout: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiverConfig {
    /// OTLP gRPC for the app's SDK; `null` turns it off.
    pub grpc_addr: Option<SocketAddr>,
    /// OTLP HTTP (`/v1/logs`, `/v1/traces`, `/v1/metrics`); `null` turns it off.
    pub http_addr: Option<SocketAddr>,
    /// Largest request accepted (after decompression).
    pub max_request_bytes: usize,
    /// Exports read and decoded at once, both protocols together; one more is told
    /// UNAVAILABLE / 503 before its body is read (its sender retries).
    pub max_inflight_requests: usize,
    /// Memory all exports being decoded share, estimated from their bytes before they
    /// are decoded (an empty log record is 2 bytes on the wire and ~180 in memory). One
    /// that alone would take more is refused as too large (413 / RESOURCE_EXHAUSTED);
    /// others wait. Keep it at most ingest's `--max-decode-bytes`, which judges the same
    /// exports the same way.
    pub max_decode_bytes: usize,
}

impl Default for OtlpReceiverConfig {
    fn default() -> Self {
        OtlpReceiverConfig {
            grpc_addr: Some("127.0.0.1:4317".parse().expect("valid address")),
            http_addr: Some("127.0.0.1:4318".parse().expect("valid address")),
            max_request_bytes: 4 * 1024 * 1024,
            max_inflight_requests: 8,
            max_decode_bytes: 192 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTarget {
    /// A Prometheus text-format endpoint, e.g. `http://127.0.0.1:9090/metrics`.
    pub url: String,
    #[serde(default = "default_scrape_interval", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "default_scrape_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_scrape_interval() -> Duration {
    Duration::from_secs(15)
}

fn default_scrape_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CgroupConfig {
    pub enabled: bool,
    /// The pod's cgroup v2 directory as mounted in the collector's container.
    pub root: PathBuf,
    /// Where process directories are counted (`/proc`; with `shareProcessNamespace: true`
    /// it sees every container of the pod).
    pub proc_root: PathBuf,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for CgroupConfig {
    fn default() -> Self {
        CgroupConfig {
            enabled: true,
            root: PathBuf::from("/sys/fs/cgroup"),
            proc_root: PathBuf::from("/proc"),
            interval: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    pub enabled: bool,
    /// A report at least this often (a change is reported at once); a pod whose reports
    /// stop for three intervals is no longer listed as running.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How often the watched files and the environment are fingerprinted again.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// Configuration files to fingerprint (globs, e.g. `/etc/app/*.yaml`): their SHA-256,
    /// never their contents.
    pub watch_files: Vec<String>,
    /// Environment variables to fingerprint (name globs, e.g. `APP_*`; none by default):
    /// their names and keyed hashes of their values, never the values. The sidecar sees
    /// its own environment, so give it the app's `envFrom` too.
    pub env: Vec<String>,
    /// Variables left out because they differ per pod by design.
    pub env_ignore: Vec<String>,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            enabled: true,
            interval: Duration::from_secs(60),
            check_interval: Duration::from_secs(10),
            watch_files: Vec::new(),
            env: Vec::new(),
            env_ignore: [
                "HOSTNAME",
                "HOME",
                "PWD",
                "SHLVL",
                "_",
                "POD_*",
                "K8S_POD_*",
                "K8S_NODE_NAME",
                "NODE_NAME",
                "*_SERVICE_HOST",
                "*_SERVICE_PORT*",
                "*_PORT_*",
                "*_PORT",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotConfig {
    /// Answer snapshot requests (pulled over the connection to ingest; nothing listens).
    pub enabled: bool,
    /// Where processes are read (`/proc`; with `shareProcessNamespace: true` it shows every
    /// container of the pod).
    pub proc_root: PathBuf,
    /// Processes listed per snapshot, at most.
    pub max_processes: usize,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            enabled: true,
            proc_root: PathBuf::from("/proc"),
            max_processes: 512,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceConfig {
    /// `service.name`, when neither the records nor `SERVICE_NAME` give one.
    pub service: Option<String>,
    /// `service.version`, default `SERVICE_VERSION`.
    pub version: Option<String>,
    /// Static resource attributes, e.g. `deployment.environment: prod`.
    pub attributes: BTreeMap<String, String>,
    /// A downward-API labels file (`key="value"` lines); each becomes `k8s.pod.label.<key>`.
    pub labels_file: Option<PathBuf>,
}

impl Config {
    pub fn from_yaml_file(path: &Path) -> Result<Config, CollectorError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CollectorError::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::from_yaml(&text)
            .map_err(|e| CollectorError::Config(format!("{}: {e}", path.display())))
    }

    pub fn from_yaml(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_norway::from_str(text).map_err(|e| e.to_string())
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.checkpoint_file
            .clone()
            .unwrap_or_else(|| self.buffer.dir.join("checkpoints.json"))
    }

    /// Checks what the types cannot; every error names the field.
    pub fn validate(&self) -> Result<(), CollectorError> {
        let fail =
            |field: &str, why: String| Err(CollectorError::Config(format!("{field}: {why}")));
        let endpoint = match url::Url::parse(&self.endpoint) {
            Ok(url) => url,
            Err(e) => return fail("endpoint", format!("{:?} is not a URL: {e}", self.endpoint)),
        };
        if !matches!(endpoint.scheme(), "http" | "https") {
            return fail("endpoint", "must be http:// or https://".into());
        }
        if self.buffer.max_bytes < 1024 * 1024 {
            return fail("buffer.max_bytes", "must be at least 1 MiB".into());
        }
        if self.buffer.segment_bytes < 64 * 1024
            || self.buffer.segment_bytes.saturating_mul(4) > self.buffer.max_bytes
        {
            return fail(
                "buffer.segment_bytes",
                "must be at least 64 KiB and at most a quarter of buffer.max_bytes".into(),
            );
        }
        if self.inventory.check_interval.is_zero()
            || self.inventory.interval < self.inventory.check_interval
        {
            return fail(
                "inventory",
                "check_interval must be positive and at most interval".into(),
            );
        }
        for pattern in self.inventory.env.iter().chain(&self.inventory.env_ignore) {
            if let Err(e) = glob::Pattern::new(pattern) {
                return fail("inventory.env", format!("{pattern:?}: {e}"));
            }
        }
        for pattern in &self.inventory.watch_files {
            if let Err(e) = glob::Pattern::new(pattern) {
                return fail("inventory.watch_files", format!("{pattern:?}: {e}"));
            }
        }
        if self.max_line_bytes < 256 {
            return fail("max_line_bytes", "must be at least 256".into());
        }
        for (i, name) in self.pod_logs.containers.iter().enumerate() {
            // A container's name is a DNS label; it also names the checkpoint file.
            let label = !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !name.starts_with('-')
                && !name.ends_with('-');
            if !label {
                return fail(
                    &format!("pod_logs.containers[{i}]"),
                    format!(
                        "{name:?} is no container name (lowercase letters, digits and '-', at most 63)"
                    ),
                );
            }
        }
        if self.batch.max_records == 0 || self.batch.max_bytes < self.max_line_bytes {
            return fail(
                "batch",
                "max_records must be positive and max_bytes at least max_line_bytes".into(),
            );
        }
        if self.max_in_flight_exports == 0 || self.max_in_flight_exports > 256 {
            return fail("max_in_flight_exports", "must be between 1 and 256".into());
        }
        if self.max_open_files == 0 {
            return fail("max_open_files", "must be positive".into());
        }
        if self.otlp.max_inflight_requests == 0 || self.otlp.max_inflight_requests > 256 {
            return fail(
                "otlp.max_inflight_requests",
                "must be between 1 and 256".into(),
            );
        }
        if self.otlp.max_decode_bytes < 1024 * 1024 {
            return fail("otlp.max_decode_bytes", "must be at least 1 MiB".into());
        }
        for (i, source) in self.files.iter().enumerate() {
            if source.include.is_empty() {
                return fail(
                    &format!("files[{i}].include"),
                    "needs at least one glob".into(),
                );
            }
            for pattern in source.include.iter().chain(&source.exclude) {
                if let Err(e) = glob::Pattern::new(pattern) {
                    return fail(&format!("files[{i}]"), format!("bad glob {pattern:?}: {e}"));
                }
            }
            if let Some(multiline) = &source.multiline {
                match (&multiline.start, multiline.stack_traces) {
                    (Some(start), false) => {
                        if let Err(e) = regex::Regex::new(start) {
                            return fail(&format!("files[{i}].multiline.start"), e.to_string());
                        }
                    }
                    (None, true) => {}
                    (start, _) => {
                        return fail(
                            &format!("files[{i}].multiline"),
                            format!(
                                "needs `start` (a regex) or `stack_traces: true`, not {}",
                                if start.is_some() { "both" } else { "neither" }
                            ),
                        );
                    }
                }
                if multiline.max_lines == 0 {
                    return fail(
                        &format!("files[{i}].multiline.max_lines"),
                        "must be positive".into(),
                    );
                }
            }
        }
        crate::redact::Redactor::new(&self.redact)?;
        for (i, target) in self.scrape.iter().enumerate() {
            match url::Url::parse(&target.url) {
                Ok(url) if url.scheme() == "http" => {}
                Ok(_) => {
                    return fail(
                        &format!("scrape[{i}].url"),
                        "only http:// (targets are the pod's own containers on localhost)".into(),
                    );
                }
                Err(_) => {
                    return fail(
                        &format!("scrape[{i}].url"),
                        format!("{:?} is not a URL", target.url),
                    );
                }
            }
            if target.interval.is_zero() || target.timeout.is_zero() {
                return fail(
                    &format!("scrape[{i}]"),
                    "interval and timeout must be positive".into(),
                );
            }
        }
        if self.cgroup.interval.is_zero() {
            return fail("cgroup.interval", "must be positive".into());
        }
        if let (Some(_), None) | (None, Some(_)) = (&self.tls.cert_file, &self.tls.key_file) {
            return fail("tls", "cert_file and key_file go together".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_errors_that_name_the_field() {
        let error = Config::from_yaml("endpoint: http://x:4317\nbufer: {}\n").unwrap_err();
        assert!(error.contains("bufer"), "{error}");
        let error = Config::from_yaml("buffer: {max_bytez: 5}\n").unwrap_err();
        assert!(error.contains("max_bytez"), "{error}");
    }

    #[test]
    fn a_full_file_parses_and_validates() {
        let config = Config::from_yaml(
            r#"
endpoint: https://ingest:4317
compression: zstd
buffer: {dir: /tmp/b, max_bytes: 67108864, when_full: drop_oldest}
files:
  - include: ["/var/log/app/*.log*"]
    exclude: ["*.gz"]
    format: cri
    multiline: {start: '^\d{4}-', timeout: 500ms}
    attributes: {team: payments}
scrape: [{url: "http://127.0.0.1:9100/metrics", interval: 10s}]
resource: {service: checkout, attributes: {deployment.environment: prod}}
shutdown_timeout: 25s
"#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.buffer.when_full, WhenFull::DropOldest);
        assert_eq!(
            config.files[0].multiline.as_ref().unwrap().timeout,
            Duration::from_millis(500)
        );
        assert_eq!(config.scrape[0].interval, Duration::from_secs(10));
    }

    /// `multiline` takes a `start` pattern or `stack_traces: true`, one of the two.
    #[test]
    fn multiline_is_a_start_pattern_or_the_built_in_stack_traces() {
        let multiline = |yaml: &str| {
            let config = Config::from_yaml(&format!(
                "files: [{{include: ['/x/*.log'], multiline: {yaml}}}]"
            ))
            .unwrap();
            config.validate().map_err(|e| e.to_string())
        };
        assert!(multiline("{stack_traces: true}").is_ok());
        assert!(multiline("{start: '^\\d'}").is_ok());
        let neither = multiline("{max_lines: 9}").unwrap_err();
        assert!(
            neither.contains("files[0].multiline") && neither.contains("neither"),
            "{neither}"
        );
        let both = multiline("{start: '^x', stack_traces: true}").unwrap_err();
        assert!(both.contains("not both"), "{both}");
    }

    /// `pod_logs.containers` are container names, which also name checkpoint files: a
    /// path or an empty name is refused at start, naming the entry.
    #[test]
    fn pod_logs_takes_container_names_only() {
        let check = |yaml: &str| {
            Config::from_yaml(yaml)
                .unwrap()
                .validate()
                .map_err(|e| e.to_string())
        };
        assert!(check("pod_logs: {containers: [app, side-car-2], stack_traces: true}").is_ok());
        for bad in ["'../etc'", "''", "App", "'-x'"] {
            let error = check(&format!("pod_logs: {{containers: [app, {bad}]}}")).unwrap_err();
            assert!(error.contains("pod_logs.containers[1]"), "{bad}: {error}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let mut config = Config::default();
        config.files.push(FileSource {
            include: vec!["/x/*.log".into()],
            exclude: vec![],
            format: Format::Auto,
            multiline: Some(MultilineConfig {
                start: Some("([".into()),
                stack_traces: false,
                max_lines: 5,
                timeout: Duration::from_secs(1),
            }),
            attributes: BTreeMap::new(),
        });
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("files[0].multiline.start"), "{error}");
        let config = Config {
            endpoint: "ftp://x".into(),
            ..Config::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("endpoint")
        );
    }
}
