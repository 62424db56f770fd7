//! What the collector reports about itself on `/metrics`, and its `/healthz`. Every
//! counter has a bounded label set (signals and fixed reasons, never file names).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FileLabel {
    file: String,
}

/// How often a file's failing writes are logged at most.
const DISK_WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabel {
    signal: String,
}

pub struct CollectorMetrics {
    registry: Registry,
    pub lines_read: Counter,
    pub bytes_read: Counter,
    pub lines_truncated: Counter,
    pub lines_unended: Counter,
    pub redacted: Counter,
    records_received: Family<SignalLabel, Counter>,
    records_shipped: Family<SignalLabel, Counter>,
    pub bytes_shipped: Counter,
    retries: Family<Reason, Counter>,
    dropped: Family<Reason, Counter>,
    otlp_refused: Family<Reason, Counter>,
    pub buffer_bytes: Gauge,
    pub buffer_records: Gauge,
    pub buffer_full: Counter,
    pub buffer_corrupt_records: Counter,
    pub buffer_read_errors: Counter,
    pub pod_log_errors: Counter,
    pub buffer_segments_skipped: Counter,
    disk_write_errors: Family<FileLabel, Counter>,
    /// When each file's failing write was last logged.
    disk_warned: std::sync::Mutex<std::collections::HashMap<&'static str, std::time::Instant>>,
    pub reread_ranges: Counter,
    pub checkpoint_lag_bytes: Gauge,
    pub files_open: Gauge,
    pub files_skipped: Counter,
    pub scrape_errors: Counter,
    /// 0 while the last attempt to reach ingest failed, else 1; `/healthz` stays 200
    /// (a restart would not help), but the state is visible here.
    pub ingest_reachable: Gauge,
    /// The OTLP receivers' and this port's connections.
    pub connections: porthole_net::ConnectionMetrics,
}

impl CollectorMetrics {
    pub fn new() -> Arc<CollectorMetrics> {
        let mut registry = Registry::with_prefix("porthole_collector");
        let metrics = CollectorMetrics {
            connections: porthole_net::ConnectionMetrics::default(),
            lines_read: Counter::default(),
            bytes_read: Counter::default(),
            lines_truncated: Counter::default(),
            lines_unended: Counter::default(),
            redacted: Counter::default(),
            records_received: Family::default(),
            records_shipped: Family::default(),
            bytes_shipped: Counter::default(),
            retries: Family::default(),
            dropped: Family::default(),
            otlp_refused: Family::default(),
            buffer_bytes: Gauge::default(),
            buffer_records: Gauge::default(),
            buffer_full: Counter::default(),
            buffer_corrupt_records: Counter::default(),
            buffer_read_errors: Counter::default(),
            pod_log_errors: Counter::default(),
            buffer_segments_skipped: Counter::default(),
            disk_write_errors: Family::default(),
            disk_warned: Default::default(),
            reread_ranges: Counter::default(),
            checkpoint_lag_bytes: Gauge::default(),
            files_open: Gauge::default(),
            files_skipped: Counter::default(),
            scrape_errors: Counter::default(),
            ingest_reachable: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "lines_read",
            "Lines read from files",
            metrics.lines_read.clone(),
        );
        r.register(
            "bytes_read",
            "Bytes read from files",
            metrics.bytes_read.clone(),
        );
        r.register(
            "lines_truncated",
            "Lines longer than max_line_bytes, cut to that length",
            metrics.lines_truncated.clone(),
        );
        r.register(
            "lines_unended",
            "Last lines of a file sent without their newline: the file was quiet for 5 s, \
             rotated away, or the collector stopping",
            metrics.lines_unended.clone(),
        );
        r.register(
            "redacted",
            "Values (a file's lines, log bodies, attributes, status messages) a redact rule changed",
            metrics.redacted.clone(),
        );
        r.register(
            "records_received",
            "Records taken in (files, OTLP receiver, scrapes), by signal",
            metrics.records_received.clone(),
        );
        r.register(
            "records_shipped",
            "Records acknowledged by ingest, by signal",
            metrics.records_shipped.clone(),
        );
        r.register(
            "bytes_shipped",
            "Encoded export bytes acknowledged by ingest",
            metrics.bytes_shipped.clone(),
        );
        r.register(
            "retries",
            "Export attempts retried, by reason",
            metrics.retries.clone(),
        );
        r.register(
            "dropped_records",
            "Records given up on, by reason",
            metrics.dropped.clone(),
        );
        r.register(
            "otlp_requests_refused",
            "OTLP exports the receiver refused (the sender was told why), by reason",
            metrics.otlp_refused.clone(),
        );
        r.register(
            "buffer_bytes",
            "Bytes in the disk buffer",
            metrics.buffer_bytes.clone(),
        );
        r.register(
            "buffer_records",
            "Records in the disk buffer not yet acknowledged",
            metrics.buffer_records.clone(),
        );
        r.register(
            "buffer_full",
            "Appends that found the buffer full (when_full: block)",
            metrics.buffer_full.clone(),
        );
        r.register(
            "buffer_corrupt_records",
            "Corrupt stretches of the buffer skipped (records failing their checksum)",
            metrics.buffer_corrupt_records.clone(),
        );
        r.register(
            "buffer_read_errors",
            "Reads of the buffer the disk failed (tried again each second)",
            metrics.buffer_read_errors.clone(),
        );
        r.register(
            "pod_log_errors",
            "Failed or refused requests to the Kubernetes API (pod_logs, pod_events), tried again",
            metrics.pod_log_errors.clone(),
        );
        r.register(
            "buffer_segments_skipped",
            "Buffer segments, or their rest, skipped because the disk could not read them \
             (after 10 failed reads, or at once when the segment is gone)",
            metrics.buffer_segments_skipped.clone(),
        );
        r.register(
            "disk_write_errors",
            "Writes the disk refused (no space, I/O error), by file: segment (the record \
             waits, is refused or skipped as when the buffer is full), ack, checkpoints \
             (saved again with the next)",
            metrics.disk_write_errors.clone(),
        );
        r.register(
            "reread_ranges",
            "File byte ranges read again because their buffer record was corrupt",
            metrics.reread_ranges.clone(),
        );
        r.register(
            "checkpoint_lag_bytes",
            "Bytes of tailed files written but not yet in the buffer",
            metrics.checkpoint_lag_bytes.clone(),
        );
        r.register(
            "files_open",
            "Files being tailed",
            metrics.files_open.clone(),
        );
        r.register(
            "files_skipped",
            "Matching files not tailed because max_open_files was reached",
            metrics.files_skipped.clone(),
        );
        r.register(
            "scrape_errors",
            "Failed Prometheus scrapes",
            metrics.scrape_errors.clone(),
        );
        metrics.ingest_reachable.set(1);
        r.register(
            "ingest_reachable",
            "1 unless the last attempt to reach ingest failed (it is being retried)",
            metrics.ingest_reachable.clone(),
        );
        let connections = porthole_net::ConnectionMetrics::register(r);
        porthole_net::body::register_cpu_work_metrics(r);
        Arc::new(CollectorMetrics {
            registry,
            connections,
            ..metrics
        })
    }

    pub fn received(&self, signal: &str, records: u64) {
        self.records_received
            .get_or_create(&SignalLabel {
                signal: signal.into(),
            })
            .inc_by(records);
    }

    pub fn shipped(&self, signal: &str, records: u64, bytes: u64) {
        self.records_shipped
            .get_or_create(&SignalLabel {
                signal: signal.into(),
            })
            .inc_by(records);
        self.bytes_shipped.inc_by(bytes);
    }

    pub fn shipped_count(&self, signal: &str) -> u64 {
        self.records_shipped
            .get_or_create(&SignalLabel {
                signal: signal.into(),
            })
            .get()
    }

    pub fn retried(&self, reason: &'static str) {
        self.retries
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .inc();
    }

    /// Counts a write to `file` (`segment`, `ack`, `checkpoints`) the disk refused, and
    /// logs it at most once a minute per file: a full disk refuses every write.
    pub fn disk_write_failed(&self, file: &'static str, error: &dyn std::fmt::Display) {
        self.disk_write_errors
            .get_or_create(&FileLabel { file: file.into() })
            .inc();
        let now = std::time::Instant::now();
        let mut warned = self.disk_warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned
            .get(file)
            .is_none_or(|last| now.duration_since(*last) >= DISK_WARN_EVERY)
        {
            warned.insert(file, now);
            tracing::warn!(file, %error, "the disk refused a write; trying again (logged once a minute)");
        }
    }

    pub fn disk_write_errors(&self, file: &str) -> u64 {
        self.disk_write_errors
            .get_or_create(&FileLabel { file: file.into() })
            .get()
    }

    pub fn dropped(&self, reason: &'static str, records: u64) {
        self.dropped
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .inc_by(records);
    }

    pub fn otlp_refused(&self, reason: &'static str) {
        self.otlp_refused
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .inc();
    }

    pub fn dropped_count(&self, reason: &str) -> u64 {
        self.dropped
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .get()
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[derive(Clone)]
struct HttpState {
    metrics: Arc<CollectorMetrics>,
    ready: Arc<AtomicBool>,
}

/// `/healthz` (alive), `/readyz` (sources started) and `/metrics`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<CollectorMetrics>,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let gate = porthole_net::Gate::new("http", collector_limits(), &metrics.connections);
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HttpState { metrics, ready });
    porthole_net::serve(listener, gate, app, shutdown.cancelled_owned()).await;
}

/// Each of the collector's listeners: its pod's containers, kubelet probes and a
/// Prometheus scraper connect to it, never thousands.
pub fn collector_limits() -> porthole_net::Limits {
    porthole_net::Limits {
        max_connections: 256,
        header_timeout: std::time::Duration::from_secs(30),
    }
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

async fn metrics_text(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
