//! Ships buffer records to ingest over OTLP gRPC, in order, one at a time, and
//! acknowledges each in the buffer only when ingest has acked it (ingest acks only what
//! is durable). Retryable failures (UNAVAILABLE, transport errors, RESOURCE_EXHAUSTED
//! with retry info, …) are retried with exponential backoff and jitter for as long as it
//! takes; INVALID_ARGUMENT and the like are counted, logged and dropped, since sending
//! the same bytes again cannot succeed.
//!
//! It also notices lines lost to buffer corruption: each file's records arrive with
//! increasing byte ranges, so a range that starts past the furthest one seen means the
//! bytes between were in a record that failed its checksum; the tailer is asked to read
//! them again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use porthole_proto::logs_service::ExportLogsServiceResponse;
use porthole_proto::metrics_service::ExportMetricsServiceResponse;
use porthole_proto::trace_service::ExportTraceServiceResponse;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_prost::ProstCodec;
use tonic_types::StatusExt;

use crate::CollectorError;
use crate::buffer::{DiskBuffer, Kind, Record, SourceRange};
use crate::config::{Compression, Config};
use crate::telemetry::CollectorMetrics;

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Source files remembered for gap detection; beyond this the oldest are forgotten.
const MAX_LEDGER_FILES: usize = 4096;

pub struct Shipper {
    buffer: Arc<DiskBuffer>,
    metrics: Arc<CollectorMetrics>,
    exporter: Exporter,
    max_in_flight: usize,
    /// Per file fingerprint: the end of the furthest range read from the buffer.
    ledger: HashMap<u64, u64>,
    drops_seen: u64,
    rereads: mpsc::Sender<SourceRange>,
    /// The connection to ingest, shared with the control poller (snapshot requests).
    channel: Channel,
}

/// What one export attempt needs; cheap to clone (the gRPC client shares one channel).
#[derive(Clone)]
struct Exporter {
    metrics: Arc<CollectorMetrics>,
    grpc: tonic::client::Grpc<Channel>,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
}

/// A buffer record's payload, already an encoded export request: sent as it is, so the
/// shipper never decodes (and holds) the records themselves.
#[derive(Clone, Debug, Default)]
struct Encoded(Bytes);

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        buf.put_slice(&self.0);
    }
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }
    fn encoded_len(&self) -> usize {
        self.0.len()
    }
    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

enum Failure {
    Retry(&'static str, Option<Duration>),
    Drop(&'static str),
}

impl Shipper {
    pub fn new(
        config: &Config,
        buffer: Arc<DiskBuffer>,
        metrics: Arc<CollectorMetrics>,
        rereads: mpsc::Sender<SourceRange>,
    ) -> Result<Shipper, CollectorError> {
        let channel = channel(config)?;
        let token = match &config.token_file {
            Some(path) => {
                let token = std::fs::read_to_string(path).map_err(|e| {
                    CollectorError::Config(format!("token_file {}: {e}", path.display()))
                })?;
                let value = format!("Bearer {}", token.trim());
                Some(value.parse().map_err(|_| {
                    CollectorError::Config(
                        "token_file: the token has characters a header cannot carry".into(),
                    )
                })?)
            }
            None => None,
        };
        let encoding = match config.compression {
            Compression::Gzip => Some(CompressionEncoding::Gzip),
            Compression::Zstd => Some(CompressionEncoding::Zstd),
            Compression::None => None,
        };
        let mut grpc =
            tonic::client::Grpc::new(channel.clone()).max_encoding_message_size(MAX_MESSAGE_BYTES);
        if let Some(encoding) = encoding {
            grpc = grpc.send_compressed(encoding);
        }
        let ledger = buffer.ledger();
        let drops_seen = buffer.drops();
        Ok(Shipper {
            exporter: Exporter {
                metrics: metrics.clone(),
                grpc,
                token,
            },
            buffer,
            metrics,
            max_in_flight: config.max_in_flight_exports,
            ledger,
            drops_seen,
            rereads,
            channel,
        })
    }

    /// The connection to ingest and the `authorization` its requests carry, for the
    /// control poller: it pulls requests over this same connection.
    pub fn connection(&self) -> (Channel, Option<MetadataValue<tonic::metadata::Ascii>>) {
        (self.channel.clone(), self.exporter.token.clone())
    }

    /// Ships until `stop`; records in flight then stay in the buffer for next time.
    ///
    /// Up to `max_in_flight_exports` records are sent at once (ingest commits the exports
    /// of one window together, so one at a time would be one commit per record), and
    /// acknowledged in buffer order as the oldest completes.
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), CollectorError> {
        let mut in_flight = futures::stream::FuturesOrdered::new();
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return Ok(()),
                Some((next, ledger)) = futures::StreamExt::next(&mut in_flight), if !in_flight.is_empty() => {
                    self.buffer.ack(next, 1, &ledger)?;
                }
                record = self.buffer.next(), if in_flight.len() < self.max_in_flight => {
                    let record = record?;
                    self.note_ranges(&record);
                    // The ledger as of this record is saved when this record is acked.
                    let ledger = self.ledger.clone();
                    let exporter = self.exporter.clone();
                    in_flight.push_back(async move {
                        // Delivered or refused for good: either way this record is done.
                        exporter.deliver(&record).await;
                        (record.next, ledger)
                    });
                }
            }
        }
    }

    /// Finds gaps in each file's ranges and asks for them to be read again.
    fn note_ranges(&mut self, record: &Record) {
        let drops = self.buffer.drops();
        if drops != self.drops_seen {
            // Gaps left by `drop_oldest` are the policy at work, not corruption.
            self.drops_seen = drops;
            self.ledger.clear();
        }
        for range in &record.ranges {
            let furthest = self.ledger.entry(range.fingerprint).or_insert(range.start);
            if range.start > *furthest {
                let gap = SourceRange {
                    fingerprint: range.fingerprint,
                    start: *furthest,
                    end: range.start,
                };
                if self.rereads.try_send(gap).is_err() {
                    self.metrics.dropped("buffer_corrupt", 1);
                    tracing::warn!(
                        start = gap.start,
                        end = gap.end,
                        "too many re-reads queued; lines of a corrupt buffer record are lost"
                    );
                }
            }
            *furthest = (*furthest).max(range.end);
        }
        if self.ledger.len() > MAX_LEDGER_FILES {
            let smallest = self
                .ledger
                .iter()
                .min_by_key(|(_, end)| **end)
                .map(|(k, _)| *k);
            if let Some(key) = smallest {
                self.ledger.remove(&key);
            }
        }
    }
}

impl Exporter {
    /// Sends one record until ingest acks it or refuses it for good.
    async fn deliver(&self, record: &Record) {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(30))
            .with_jitter()
            .without_max_times()
            .build();
        let mut failures = 0u32;
        loop {
            match self.send(record).await {
                Ok(rejected) => {
                    let records = u64::from(record.records);
                    if rejected > 0 {
                        self.metrics.dropped("rejected_by_ingest", rejected);
                    }
                    self.metrics.shipped(
                        record.kind.name(),
                        records.saturating_sub(rejected),
                        record.payload.len() as u64,
                    );
                    if failures > 0 {
                        tracing::info!(failures, "ingest reachable again");
                    }
                    self.metrics.ingest_reachable.set(1);
                    return;
                }
                Err(Failure::Drop(reason)) => {
                    let records = u64::from(record.records);
                    self.metrics.dropped(reason, records);
                    tracing::error!(
                        signal = record.kind.name(),
                        records,
                        reason,
                        "ingest refused an export for good; dropped"
                    );
                    return;
                }
                Err(Failure::Retry(reason, server_delay)) => {
                    failures += 1;
                    self.metrics.retried(reason);
                    self.metrics.ingest_reachable.set(0);
                    let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                    let delay = server_delay.map_or(delay, |d| d.max(delay));
                    // One line when the trouble starts, then every tenth attempt.
                    if failures == 1 || failures.is_multiple_of(10) {
                        tracing::warn!(reason, failures, retry_in = ?delay, "export failed; retrying");
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One attempt; Ok(records ingest refused in a partial success).
    async fn send(&self, record: &Record) -> Result<u64, Failure> {
        let mut grpc = self.grpc.clone();
        grpc.ready()
            .await
            .map_err(|_| Failure::Retry("connect", None))?;
        let request = self.request(Encoded(record.payload.clone()));
        match record.kind {
            Kind::Logs => {
                let path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
                export(&mut grpc, request, path, |r: ExportLogsServiceResponse| {
                    r.partial_success.map_or(0, |p| p.rejected_log_records)
                })
                .await
            }
            Kind::Traces => {
                let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
                export(&mut grpc, request, path, |r: ExportTraceServiceResponse| {
                    r.partial_success.map_or(0, |p| p.rejected_spans)
                })
                .await
            }
            Kind::Metrics => {
                let path = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
                export(
                    &mut grpc,
                    request,
                    path,
                    |r: ExportMetricsServiceResponse| {
                        r.partial_success.map_or(0, |p| p.rejected_data_points)
                    },
                )
                .await
            }
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = authorized(&self.token, message);
        request.set_timeout(ATTEMPT_TIMEOUT);
        request
    }
}

/// A request to ingest carrying the collector's `authorization`, when it has a token.
pub fn authorized<T>(
    token: &Option<MetadataValue<tonic::metadata::Ascii>>,
    message: T,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", token.clone());
    }
    request
}

/// One unary OTLP export of an encoded request to `path`; Ok(records refused, as the
/// response's partial success counts them).
async fn export<R: prost::Message + Default + Send + 'static>(
    grpc: &mut tonic::client::Grpc<Channel>,
    request: tonic::Request<Encoded>,
    path: &'static str,
    rejected: impl FnOnce(R) -> i64,
) -> Result<u64, Failure> {
    let path = http::uri::PathAndQuery::from_static(path);
    let response = grpc
        .unary(request, path, ProstCodec::<Encoded, R>::default())
        .await
        .map_err(classify)?;
    Ok(rejected(response.into_inner()).max(0) as u64)
}

/// OTLP's retry rules: what may succeed later is retried; what cannot is dropped.
/// A missing or wrong token is retried too: it is a config error that will be fixed,
/// and dropping the data meanwhile would lose it.
fn classify(status: tonic::Status) -> Failure {
    use tonic::Code;
    let server_delay = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay);
    match status.code() {
        Code::InvalidArgument => Failure::Drop("invalid_argument"),
        Code::Unimplemented => Failure::Drop("unimplemented"),
        Code::ResourceExhausted if server_delay.is_none() => Failure::Drop("too_large"),
        Code::ResourceExhausted => Failure::Retry("resource_exhausted", server_delay),
        Code::Unavailable => Failure::Retry("unavailable", server_delay),
        Code::DeadlineExceeded => Failure::Retry("deadline_exceeded", server_delay),
        Code::Unauthenticated | Code::PermissionDenied => {
            Failure::Retry("unauthenticated", server_delay)
        }
        _ => Failure::Retry("other", server_delay),
    }
}

fn channel(config: &Config) -> Result<Channel, CollectorError> {
    let bad = |e: tonic::transport::Error| {
        CollectorError::Config(format!("endpoint {}: {e}", config.endpoint))
    };
    let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
        .map_err(bad)?
        .connect_timeout(Duration::from_secs(5))
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .http2_keep_alive_interval(Duration::from_secs(30));
    if config.endpoint.starts_with("https://") {
        let read = |path: &std::path::Path, field: &str| {
            std::fs::read(path)
                .map_err(|e| CollectorError::Config(format!("tls.{field} {}: {e}", path.display())))
        };
        let mut tls = ClientTlsConfig::new();
        tls = match &config.tls.ca_file {
            Some(path) => tls.ca_certificate(Certificate::from_pem(read(path, "ca_file")?)),
            None => tls.with_webpki_roots(),
        };
        if let (Some(cert), Some(key)) = (&config.tls.cert_file, &config.tls.key_file) {
            tls = tls.identity(Identity::from_pem(
                read(cert, "cert_file")?,
                read(key, "key_file")?,
            ));
        }
        if let Some(name) = &config.tls.server_name {
            tls = tls.domain_name(name.clone());
        }
        endpoint = endpoint.tls_config(tls).map_err(bad)?;
    }
    Ok(endpoint.connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn only_what_can_succeed_later_is_retried() {
        let retried = |status: tonic::Status| matches!(classify(status), Failure::Retry(..));
        assert!(!retried(tonic::Status::invalid_argument("bad")));
        assert!(!retried(tonic::Status::unimplemented("no")));
        assert!(!retried(tonic::Status::resource_exhausted("too large")));
        assert!(retried(tonic::Status::unavailable("down")));
        assert!(retried(tonic::Status::deadline_exceeded("slow")));
        assert!(retried(tonic::Status::unauthenticated("token")));
        let busy = tonic::Status::with_error_details(
            tonic::Code::ResourceExhausted,
            "busy",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(2))),
        );
        match classify(busy) {
            Failure::Retry(_, delay) => assert_eq!(delay, Some(Duration::from_secs(2))),
            Failure::Drop(_) => panic!("RESOURCE_EXHAUSTED with retry info is retried"),
        }
    }
}
