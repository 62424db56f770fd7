//! What the ingest tier reports about itself on `/metrics`. Each event is one method, so
//! every place that accepts, rejects or commits counts it the same way.

use porthole_storage::{AppendReport, Signal};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabel {
    signal: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabel {
    signal: String,
    reason: String,
}

fn signal(signal: Signal) -> SignalLabel {
    SignalLabel {
        signal: signal.table_name().to_string(),
    }
}

pub struct IngestMetrics {
    records_accepted: Family<SignalLabel, Counter>,
    bytes_accepted: Family<SignalLabel, Counter>,
    records_rejected: Family<RejectLabel, Counter>,
    requests_rejected: Family<RejectLabel, Counter>,
    bytes_rejected: Family<RejectLabel, Counter>,
    batch_rows: Family<SignalLabel, Histogram>,
    commit_seconds: Family<SignalLabel, Histogram>,
    files_written: Family<SignalLabel, Counter>,
    bytes_written: Family<SignalLabel, Counter>,
    commits_failed: Family<SignalLabel, Counter>,
    pub buffered_bytes: Gauge,
}

impl IngestMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            records_accepted: Family::default(),
            bytes_accepted: Family::default(),
            records_rejected: Family::default(),
            requests_rejected: Family::default(),
            bytes_rejected: Family::default(),
            batch_rows: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1.0, 4.0, 12))
            }),
            commit_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            files_written: Family::default(),
            bytes_written: Family::default(),
            commits_failed: Family::default(),
            buffered_bytes: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("porthole_ingest");
        r.register(
            "records_accepted",
            "Records made durable and acked",
            metrics.records_accepted.clone(),
        );
        r.register(
            "bytes_accepted",
            "Request bytes of acked exports",
            metrics.bytes_accepted.clone(),
        );
        r.register(
            "records_rejected",
            "Records refused, by reason",
            metrics.records_rejected.clone(),
        );
        r.register(
            "requests_rejected",
            "Export requests refused, by reason",
            metrics.requests_rejected.clone(),
        );
        r.register(
            "bytes_rejected",
            "Request bytes refused, by reason",
            metrics.bytes_rejected.clone(),
        );
        r.register(
            "batch_rows",
            "Rows per committed batch",
            metrics.batch_rows.clone(),
        );
        r.register(
            "commit_seconds",
            "Time to commit a batch to the table log",
            metrics.commit_seconds.clone(),
        );
        r.register(
            "files_written",
            "Data files committed",
            metrics.files_written.clone(),
        );
        r.register(
            "bytes_written",
            "Parquet and index bytes committed",
            metrics.bytes_written.clone(),
        );
        r.register(
            "commits_failed",
            "Batches whose write or commit failed",
            metrics.commits_failed.clone(),
        );
        r.register(
            "buffered_bytes",
            "Bytes waiting in the write buffer",
            metrics.buffered_bytes.clone(),
        );
        metrics
    }

    pub fn export_accepted(&self, s: Signal, records: u64, bytes: u64) {
        self.records_accepted
            .get_or_create(&signal(s))
            .inc_by(records);
        self.bytes_accepted.get_or_create(&signal(s)).inc_by(bytes);
    }

    /// Records refused inside an otherwise accepted export (OTLP partial success).
    pub fn records_refused(&self, s: Signal, records: u64) {
        let label = RejectLabel {
            signal: s.table_name().into(),
            reason: "invalid_record".into(),
        };
        self.records_rejected.get_or_create(&label).inc_by(records);
    }

    pub fn export_rejected(&self, s: Signal, reason: &'static str, records: u64, bytes: u64) {
        let label = RejectLabel {
            signal: s.table_name().into(),
            reason: reason.into(),
        };
        self.requests_rejected.get_or_create(&label).inc();
        self.records_rejected.get_or_create(&label).inc_by(records);
        self.bytes_rejected.get_or_create(&label).inc_by(bytes);
    }

    pub fn batch_committed(&self, s: Signal, report: &AppendReport) {
        self.batch_rows
            .get_or_create(&signal(s))
            .observe(report.rows as f64);
        self.commit_seconds
            .get_or_create(&signal(s))
            .observe(report.commit_latency.as_secs_f64());
        self.files_written
            .get_or_create(&signal(s))
            .inc_by(report.files as u64);
        self.bytes_written
            .get_or_create(&signal(s))
            .inc_by(report.bytes_written);
    }

    pub fn batch_failed(&self, s: Signal) {
        self.commits_failed.get_or_create(&signal(s)).inc();
    }
}
