//! Ships buffer records to ingest over OTLP gRPC, in order, one at a time, and
//! acknowledges each in the buffer only when ingest has acked it (ingest acks only what
//! is durable). Retryable failures (UNAVAILABLE, transport errors, RESOURCE_EXHAUSTED
//! with retry info, …) are retried with exponential backoff and jitter for as long as it
//! takes; an export refused as too large is sent again in halves ([`crate::split`]);
//! INVALID_ARGUMENT and the like are counted, logged and dropped, since sending the same
//! bytes again cannot succeed.
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
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_types::StatusExt;

use crate::CollectorError;
use crate::buffer::{DiskBuffer, Kind, Record, SourceRange};
use crate::config::{Compression, Config};
use crate::telemetry::CollectorMetrics;

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// An export's response is a partial-success count and a message; more is not ingest.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
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

/// What one export attempt needs; cheap to clone (one channel, shared).
#[derive(Clone)]
struct Exporter {
    metrics: Arc<CollectorMetrics>,
    channel: Channel,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
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
        let ledger = buffer.ledger();
        let drops_seen = buffer.drops();
        Ok(Shipper {
            exporter: Exporter {
                metrics: metrics.clone(),
                channel: channel.clone(),
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
    pub async fn run(mut self, stop: CancellationToken) {
        let mut in_flight = futures::stream::FuturesOrdered::new();
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                Some((next, ledger)) = futures::StreamExt::next(&mut in_flight), if !in_flight.is_empty() => {
                    self.buffer.ack(next, 1, &ledger);
                }
                record = self.buffer.next(), if in_flight.len() < self.max_in_flight => {
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
                Err(Failure::Drop("too_large")) => {
                    // Ingest's limits may be lower than what was acked here: send it in
                    // halves, each cut again if need be, down to single records or data
                    // points (which `halves` does not cut: those are dropped).
                    if let Some([first, second]) = crate::split::halves(record) {
                        self.metrics.retried("too_large_halved");
                        tracing::warn!(
                            signal = record.kind.name(),
                            records = record.records,
                            "ingest refused an export as too large; sending it in halves"
                        );
                        Box::pin(self.deliver(&first)).await;
                        Box::pin(self.deliver(&second)).await;
                        return;
                    }
                    self.give_up(record, "too_large");
                    return;
                }
                Err(Failure::Drop(reason)) => {
                    self.give_up(record, reason);
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

    /// Counts and logs an export ingest refused for good.
    fn give_up(&self, record: &Record, reason: &'static str) {
        let records = u64::from(record.records);
        self.metrics.dropped(reason, records);
        tracing::error!(
            signal = record.kind.name(),
            records,
            reason,
            "ingest refused an export for good; dropped"
        );
    }

    /// One attempt; Ok(records ingest refused in a partial success).
    async fn send(&self, record: &Record) -> Result<u64, Failure> {
        let attempt = async {
            match record.kind {
                Kind::Logs => {
                    let path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
                    let response: ExportLogsServiceResponse = self.unary(path, record).await?;
                    Ok(response
                        .partial_success
                        .map_or(0, |p| p.rejected_log_records))
                }
                Kind::Traces => {
                    let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
                    let response: ExportTraceServiceResponse = self.unary(path, record).await?;
                    Ok(response.partial_success.map_or(0, |p| p.rejected_spans))
                }
                Kind::Metrics => {
                    let path = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
                    let response: ExportMetricsServiceResponse = self.unary(path, record).await?;
                    Ok(response
                        .partial_success
                        .map_or(0, |p| p.rejected_data_points))
                }
            }
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
            Ok(rejected) => rejected.map(|n: i64| n.max(0) as u64),
            Err(_) => Err(Failure::Retry("deadline_exceeded", None)),
        }
    }

    /// One unary gRPC call whose request message is the record's payload as the buffer
    /// holds it: already compressed (flag and `grpc-encoding` say so), so an attempt costs
    /// no compression and no second copy. tonic's client would compress every attempt
    /// again, with a fresh multi-MiB zstd context each time.
    async fn unary<R: prost::Message + Default>(
        &self,
        path: &'static str,
        record: &Record,
    ) -> Result<R, Failure> {
        use http_body_util::BodyExt;
        let mut prefix = Vec::with_capacity(5);
        prefix.push(u8::from(record.encoding != Compression::None));
        prefix.extend_from_slice(&(record.payload.len() as u32).to_be_bytes());
        let frames = [Bytes::from(prefix), record.payload.clone()]
            .map(|chunk| Ok::<_, tonic::Status>(http_body::Frame::data(chunk)));
        let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
        let mut request = http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .header("grpc-timeout", format!("{}S", ATTEMPT_TIMEOUT.as_secs()));
        if let Some(encoding) = grpc_encoding(record.encoding) {
            request = request.header("grpc-encoding", encoding);
        }
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, token.as_bytes());
        }
        let request = request
            .body(tonic::body::Body::new(body))
            .map_err(|_| Failure::Drop("bad_request"))?;
        let response = tower::ServiceExt::oneshot(self.channel.clone(), request)
            .await
            .map_err(|_| Failure::Retry("connect", None))?;
        let (parts, body) = response.into_parts();
        // A trailers-only response (every refusal) has the status in its headers.
        if let Some(status) = tonic::Status::from_header_map(&parts.headers)
            && status.code() != tonic::Code::Ok
        {
            return Err(classify(status));
        }
        if parts.status != http::StatusCode::OK {
            return Err(classify(http_status(parts.status)));
        }
        let collected = http_body_util::Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| classify(tonic::Status::from_error(e)))?;
        let status = collected
            .trailers()
            .and_then(tonic::Status::from_header_map)
            .unwrap_or_else(|| tonic::Status::unknown("the response has no grpc-status"));
        if status.code() != tonic::Code::Ok {
            return Err(classify(status));
        }
        let data = collected.to_bytes();
        // Acked either way: an answer we cannot read only loses the partial-success count.
        Ok(message(&data).unwrap_or_else(|| {
            tracing::warn!("ingest acked an export with a response that does not decode");
            R::default()
        }))
    }
}

/// The `grpc-encoding` of a record compressed with `compression`.
fn grpc_encoding(compression: Compression) -> Option<&'static str> {
    match compression {
        Compression::None => None,
        Compression::Zstd => Some("zstd"),
        Compression::Gzip => Some("gzip"),
    }
}

/// The one uncompressed message of a unary response body.
fn message<R: prost::Message + Default>(data: &[u8]) -> Option<R> {
    let (&flag, rest) = data.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    if flag != 0 {
        return None;
    }
    R::decode(rest.get(4..4 + len)?).ok()
}

/// gRPC's mapping of an HTTP status without a grpc-status (a proxy's answer).
fn http_status(status: http::StatusCode) -> tonic::Status {
    use http::StatusCode;
    let message = format!("HTTP {status} without a gRPC status");
    match status {
        StatusCode::UNAUTHORIZED => tonic::Status::unauthenticated(message),
        StatusCode::FORBIDDEN => tonic::Status::permission_denied(message),
        StatusCode::NOT_FOUND => tonic::Status::unimplemented(message),
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => tonic::Status::unavailable(message),
        _ => tonic::Status::unknown(message),
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
    use porthole_proto::logs_service::ExportLogsPartialSuccess;
    use porthole_proto::logs_service::ExportLogsServiceRequest;
    use porthole_proto::logs_service::logs_service_server::{LogsService, LogsServiceServer};
    use std::sync::Mutex;
    use tonic::codec::CompressionEncoding;
    use tonic_types::{ErrorDetails, StatusExt};

    type Answer = Result<ExportLogsServiceResponse, tonic::Status>;
    /// Each request ingest got, with its `authorization`.
    type Seen = Vec<(ExportLogsServiceRequest, Option<String>)>;

    /// Ingest as a script: answers in turn, remembering each request and its token.
    #[derive(Clone, Default)]
    struct Scripted {
        answers: Arc<Mutex<Vec<Answer>>>,
        seen: Arc<Mutex<Seen>>,
    }

    #[tonic::async_trait]
    impl LogsService for Scripted {
        async fn export(
            &self,
            request: tonic::Request<ExportLogsServiceRequest>,
        ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
            let token = request
                .metadata()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string());
            self.seen
                .lock()
                .unwrap()
                .push((request.into_inner(), token));
            self.answers
                .lock()
                .unwrap()
                .remove(0)
                .map(tonic::Response::new)
        }
    }

    #[tokio::test]
    async fn an_export_goes_as_the_buffer_stores_it_and_every_answer_is_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ingest = Scripted::default();
        let server = tonic::transport::Server::builder()
            .add_service(
                LogsServiceServer::new(ingest.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd),
            )
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        tokio::spawn(server);
        let metrics = CollectorMetrics::new();
        let exporter = Exporter {
            metrics: metrics.clone(),
            channel: Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect_lazy(),
            token: Some("Bearer s3cret".parse().unwrap()),
        };
        let request = ExportLogsServiceRequest {
            resource_logs: vec![porthole_proto::logs::ResourceLogs {
                scope_logs: vec![porthole_proto::logs::ScopeLogs {
                    log_records: (0..50)
                        .map(|n| porthole_proto::logs::LogRecord {
                            time_unix_nano: n,
                            body: Some(porthole_proto::common::AnyValue {
                                value: Some(porthole_proto::common::any_value::Value::StringValue(
                                    format!("GET /checkout 200 in {n} ms"),
                                )),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let payload = prost::Message::encode_to_vec(&request);
        let dir = tempfile::tempdir().unwrap();
        let partial = |rejected| ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: "two had no body".into(),
            }),
        };
        let busy = tonic::Status::with_error_details(
            tonic::Code::Unavailable,
            "buffer full",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(3))),
        );
        *ingest.answers.lock().unwrap() = vec![
            Ok(partial(2)),
            Ok(ExportLogsServiceResponse::default()),
            Ok(partial(0)),
            Err(tonic::Status::invalid_argument("not OTLP")),
            Err(busy),
            Err(tonic::Status::unauthenticated("who are you")),
        ];
        let mut outcomes = Vec::new();
        for (n, compression) in [
            Compression::Zstd,
            Compression::Gzip,
            Compression::None,
            Compression::Zstd,
            Compression::Zstd,
            Compression::Zstd,
        ]
        .into_iter()
        .enumerate()
        {
            let config = crate::config::BufferConfig {
                dir: dir.path().join(n.to_string()),
                ..Default::default()
            };
            let buffer = DiskBuffer::open(&config, compression, metrics.clone()).unwrap();
            buffer
                .try_append(Kind::Logs, 50, &[], &payload)
                .unwrap()
                .unwrap();
            let record = buffer.try_next().unwrap().unwrap();
            outcomes.push(match exporter.send(&record).await {
                Ok(rejected) => format!("acked, {rejected} rejected"),
                Err(Failure::Drop(reason)) => format!("dropped: {reason}"),
                Err(Failure::Retry(reason, delay)) => format!("retry: {reason} {delay:?}"),
            });
        }
        assert_eq!(
            outcomes,
            [
                "acked, 2 rejected",
                "acked, 0 rejected",
                "acked, 0 rejected",
                "dropped: invalid_argument",
                "retry: unavailable Some(3s)",
                "retry: unauthenticated None",
            ]
        );
        let seen = std::mem::take(&mut *ingest.seen.lock().unwrap());
        assert_eq!(seen.len(), 6);
        for (received, token) in &seen {
            assert_eq!(
                received, &request,
                "ingest decodes what the sources appended"
            );
            assert_eq!(token.as_deref(), Some("Bearer s3cret"));
        }

        // Nobody listening: a connection failure, retried.
        let closed = Exporter {
            channel: Endpoint::from_static("http://127.0.0.1:9").connect_lazy(),
            ..exporter
        };
        let config = crate::config::BufferConfig {
            dir: dir.path().join("closed"),
            ..Default::default()
        };
        let buffer = DiskBuffer::open(&config, Compression::Zstd, metrics).unwrap();
        buffer
            .try_append(Kind::Logs, 50, &[], &payload)
            .unwrap()
            .unwrap();
        let record = buffer.try_next().unwrap().unwrap();
        assert!(matches!(
            closed.send(&record).await,
            Err(Failure::Retry("connect", None))
        ));
    }

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
