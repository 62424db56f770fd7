//! Where the collector's data comes from: tailed files, the app's own OTLP SDK, Prometheus
//! scrapes, the pod's cgroup and its inventory (identity and configuration fingerprints). Every source hands encoded OTLP exports to the disk
//! buffer and nothing else; the shipper takes it from there.

pub mod cgroup;
pub mod file;
pub mod inventory;
pub mod otlp;
pub mod pod_events;
pub mod pod_logs;
pub mod scrape;

use porthole_proto::common::{InstrumentationScope, KeyValue};
use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::metrics::{
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, number_data_point,
};
use porthole_proto::metrics_service::ExportMetricsServiceRequest;
use prost::Message;

use crate::resource::Identity;

/// Serves `app` on loopback as the Kubernetes API of pod `shop/checkout-0`, whose records
/// go to a 16 MiB buffer in `dir`: what `pod_logs` and `pod_events` are given.
#[cfg(test)]
pub(crate) async fn test_kube_pod(
    app: axum::Router,
    dir: &std::path::Path,
) -> std::sync::Arc<pod_logs::KubePod> {
    use std::sync::Arc;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // As `kube_target` does in the collector (a workspace build links two providers).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client =
        kube::Client::try_from(kube::Config::new(format!("http://{addr}").parse().unwrap()))
            .unwrap();
    let metrics = crate::telemetry::CollectorMetrics::new();
    let config = crate::config::BufferConfig {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 24,
        when_full: crate::config::WhenFull::Block,
        segment_bytes: 1 << 20,
    };
    Arc::new(pod_logs::KubePod {
        client,
        namespace: "shop".into(),
        pod: "checkout-0".into(),
        buffer: crate::buffer::DiskBuffer::open(
            &config,
            crate::config::Compression::None,
            metrics.clone(),
        )
        .unwrap(),
        buffer_dir: dir.to_path_buf(),
        identity: Arc::new(
            Identity::build(&crate::config::ResourceConfig::default(), |_| None).unwrap(),
        ),
        redactor: Arc::new(crate::redact::Redactor::new(&[]).unwrap()),
        metrics,
    })
}

/// The log records of every buffer record not yet taken, each acknowledged as read.
#[cfg(test)]
pub(crate) fn take_log_records(buffer: &crate::buffer::DiskBuffer) -> Vec<LogRecord> {
    let mut out = Vec::new();
    while let Some(record) = buffer.try_next().unwrap() {
        let payload = crate::buffer::unpack(record.encoding, &record.payload).unwrap();
        let request = ExportLogsServiceRequest::decode(&payload[..]).unwrap();
        out.extend(
            request
                .resource_logs
                .into_iter()
                .flat_map(|r| r.scope_logs)
                .flat_map(|s| s.log_records),
        );
        buffer.ack(record.next, 1, &std::collections::HashMap::new());
    }
    out
}

/// One export of log records the collector made itself, under the pod's resource.
fn encode_logs(identity: &Identity, scope: &str, log_records: Vec<LogRecord>) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(identity.resource()),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: scope.to_string(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..InstrumentationScope::default()
                }),
                log_records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

/// One export of metrics the collector made itself, under the pod's resource.
fn encode_metrics(identity: &Identity, scope: &str, metrics: Vec<Metric>) -> Vec<u8> {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(identity.resource()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: scope.to_string(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..InstrumentationScope::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

/// A double-valued point, as scrapes and cgroup readings make them.
fn number(value: f64, attributes: Vec<KeyValue>, start: u64, now: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..NumberDataPoint::default()
    }
}
