//! The OTLP receiver the app's own SDK sends to (gRPC and HTTP on localhost). An export
//! is acked to the app once it is stamped with the pod's identity and fsynced in the
//! buffer; when the buffer is full (`block`) the app is told UNAVAILABLE / 503 and its
//! SDK retries, so nothing is acked that is not kept.
//!
//! Its memory is bounded as the servers' is: at most `otlp.max_inflight_requests` exports
//! are read at once (one more is told UNAVAILABLE / 503 before its body is read), a body
//! must arrive within the listener's read timeout, and before an export is decoded its
//! decoded size is estimated from its bytes and reserved from `otlp.max_decode_bytes`.
//! Without that one 3.6 MiB export of 1.9 million empty log records took the sidecar
//! from 20 to 366 MiB, past its 256 MiB limit in the example manifests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use porthole_net::body::{BodyError, Busy, ExportLimits};
use porthole_net::decoding::{
    DecodeBudget, PastBudget, Reserved, decoded_estimate, decoded_estimate_json,
};
use porthole_proto::json::PartialSuccessWarning;
use porthole_proto::logs_service::logs_service_server::{LogsService, LogsServiceServer};
use porthole_proto::logs_service::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use porthole_proto::metrics_service::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use porthole_proto::metrics_service::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use porthole_proto::trace_service::trace_service_server::{TraceService, TraceServiceServer};
use porthole_proto::trace_service::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response as GrpcResponse, Status};

use crate::CollectorError;
use crate::buffer::{DiskBuffer, Kind};
use crate::config::OtlpReceiverConfig;
use crate::redact::Redactor;
use crate::resource::Identity;
use crate::telemetry::CollectorMetrics;

pub type Task = Pin<Box<dyn Future<Output = Result<(), CollectorError>> + Send>>;

/// One OTLP export request type: how to stamp it and count it.
trait Export:
    Message + Default + serde::de::DeserializeOwned + porthole_proto::json::OtlpJson + Send + 'static
{
    const KIND: Kind;
    type Response: Message + serde::Serialize + PartialSuccessWarning + Default + Send + 'static;
    fn enrich(&mut self, identity: &Identity);
    fn records(&self) -> u64;
    /// Applies the `redact` rules; how many values changed.
    fn redact(&mut self, redactor: &Redactor) -> u64;
}

impl Export for ExportLogsServiceRequest {
    const KIND: Kind = Kind::Logs;
    type Response = ExportLogsServiceResponse;
    fn enrich(&mut self, identity: &Identity) {
        for r in &mut self.resource_logs {
            identity.enrich(r.resource.get_or_insert_default());
        }
    }
    fn records(&self) -> u64 {
        self.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len() as u64)
            .sum()
    }
    fn redact(&mut self, redactor: &Redactor) -> u64 {
        let records = self
            .resource_logs
            .iter_mut()
            .flat_map(|r| &mut r.scope_logs)
            .flat_map(|s| &mut s.log_records);
        records
            .map(|record| {
                record.body.as_mut().map_or(0, |body| redactor.value(body))
                    + redactor.attributes(&mut record.attributes)
            })
            .sum()
    }
}

impl Export for ExportTraceServiceRequest {
    const KIND: Kind = Kind::Traces;
    type Response = ExportTraceServiceResponse;
    fn enrich(&mut self, identity: &Identity) {
        for r in &mut self.resource_spans {
            identity.enrich(r.resource.get_or_insert_default());
        }
    }
    fn records(&self) -> u64 {
        self.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum()
    }
    fn redact(&mut self, redactor: &Redactor) -> u64 {
        let spans = self
            .resource_spans
            .iter_mut()
            .flat_map(|r| &mut r.scope_spans)
            .flat_map(|s| &mut s.spans);
        spans
            .map(|span| {
                let status = span
                    .status
                    .as_mut()
                    .map_or(0, |status| u64::from(redactor.string(&mut status.message)));
                let events: u64 = span
                    .events
                    .iter_mut()
                    .map(|event| redactor.attributes(&mut event.attributes))
                    .sum();
                status + events + redactor.attributes(&mut span.attributes)
            })
            .sum()
    }
}

impl Export for ExportMetricsServiceRequest {
    const KIND: Kind = Kind::Metrics;
    type Response = ExportMetricsServiceResponse;
    fn enrich(&mut self, identity: &Identity) {
        for r in &mut self.resource_metrics {
            identity.enrich(r.resource.get_or_insert_default());
        }
    }
    fn records(&self) -> u64 {
        // In data points, as ingest counts them (one row each, `rejected_data_points`).
        self.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| crate::split::data_points(m) as u64)
            .sum()
    }
    /// Metrics are left as they are.
    fn redact(&mut self, _redactor: &Redactor) -> u64 {
        0
    }
}

#[derive(Clone)]
struct Receiver {
    buffer: Arc<DiskBuffer>,
    identity: Arc<Identity>,
    redactor: Arc<Redactor>,
    metrics: Arc<CollectorMetrics>,
    /// `otlp.max_request_bytes`, `max_inflight_requests` and `max_decode_bytes`, and the
    /// listener's read timeout.
    limits: ExportLimits,
}

/// Why an export was refused; each is counted in `otlp_requests_refused_total{reason}`.
enum Refusal {
    /// Every in-flight place is taken.
    Busy,
    /// The buffer is full (`when_full: block`).
    Full,
    /// The buffer cannot be written.
    Broken,
    Invalid(String),
    Unsupported(String),
    TooLarge(String),
    TimedOut(Duration),
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Refusal::Busy => "busy",
            Refusal::Full => "buffer_full",
            Refusal::Broken => "buffer_broken",
            Refusal::Invalid(_) => "invalid",
            Refusal::Unsupported(_) => "unsupported",
            Refusal::TooLarge(_) => "too_large",
            Refusal::TimedOut(_) => "timed_out",
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::Busy => "the collector is reading as many exports at once as \
                              otlp.max_inflight_requests allows, retry later"
                .into(),
            Refusal::Full => "collector buffer is full, retry later".into(),
            Refusal::Broken => "collector buffer is not writable, retry later".into(),
            Refusal::Invalid(why) | Refusal::Unsupported(why) | Refusal::TooLarge(why) => {
                why.clone()
            }
            Refusal::TimedOut(after) => {
                format!("the request body did not arrive within {after:?}")
            }
        }
    }

    /// Whether the sender should keep the export and send it again.
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            Refusal::Busy | Refusal::Full | Refusal::Broken | Refusal::TimedOut(_)
        )
    }

    fn http_status(&self) -> StatusCode {
        match self {
            Refusal::Busy | Refusal::Full | Refusal::Broken => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Invalid(_) => StatusCode::BAD_REQUEST,
            Refusal::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }

    fn grpc_code(&self) -> tonic::Code {
        match self {
            Refusal::Busy | Refusal::Full | Refusal::Broken => tonic::Code::Unavailable,
            Refusal::Invalid(_) | Refusal::Unsupported(_) => tonic::Code::InvalidArgument,
            Refusal::TooLarge(_) => tonic::Code::ResourceExhausted,
            Refusal::TimedOut(_) => tonic::Code::DeadlineExceeded,
        }
    }
}

impl From<BodyError> for Refusal {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge { .. } => Refusal::TooLarge(error.to_string()),
            BodyError::TimedOut { after } => Refusal::TimedOut(after),
            BodyError::Invalid(why) => Refusal::Invalid(why),
            BodyError::Unsupported { .. } => Refusal::Unsupported(error.to_string()),
        }
    }
}

impl From<Busy> for Refusal {
    fn from(_: Busy) -> Self {
        Refusal::Busy
    }
}

impl From<PastBudget> for Refusal {
    fn from(refused: PastBudget) -> Self {
        Refusal::TooLarge(format!("{refused} (otlp.max_decode_bytes)"))
    }
}

impl Receiver {
    /// Counts `refusal` in `otlp_requests_refused_total`.
    fn refused(&self, refusal: Refusal) -> Refusal {
        self.metrics.otlp_refused(refusal.reason());
        refusal
    }

    /// Reads, decodes and accepts one OTLP/HTTP export.
    async fn http<E: Export>(
        &self,
        headers: &HeaderMap,
        body: Body,
        json: bool,
    ) -> Result<Option<String>, Refusal> {
        let limits = &self.limits;
        let _place = limits.place()?;
        let read =
            porthole_net::body::read_http(headers, body, limits.max_bytes, limits.read_timeout);
        let bytes = read.await?;
        let estimate = if json {
            decoded_estimate_json(&bytes)
        } else {
            decoded_estimate(&bytes)
        };
        let _reservation = limits.decoding.reserve(estimate).await?;
        let (request, unknown_keys): (E, _) = if json {
            porthole_proto::json::from_otlp_json_noting(&bytes)
                .map_err(|e| Refusal::Invalid(format!("JSON: {e}")))?
        } else {
            let request = E::decode(bytes.as_slice())
                .map_err(|e| Refusal::Invalid(format!("protobuf: {e}")))?;
            (request, None)
        };
        drop(bytes);
        self.accept(request)?;
        Ok(unknown_keys)
    }

    fn accept<E: Export>(&self, mut request: E) -> Result<(), Refusal> {
        request.enrich(&self.identity);
        if !self.redactor.is_empty() {
            self.metrics.redacted.inc_by(request.redact(&self.redactor));
        }
        let records = request.records();
        if records == 0 {
            return Ok(());
        }
        let payload = request.encode_to_vec();
        match self
            .buffer
            .try_append(E::KIND, records.min(u32::MAX as u64) as u32, &[], &payload)
        {
            Ok(Ok(())) => {
                self.metrics.received(E::KIND.name(), records);
                Ok(())
            }
            Ok(Err(_full)) => Err(Refusal::Full),
            Err(error) => {
                tracing::error!(%error, "cannot write to the buffer");
                Err(Refusal::Broken)
            }
        }
    }

    /// Accepts an export tonic decoded; its decoding reservation is let go after.
    fn grpc<E: Export>(&self, request: Request<E>) -> Result<(), Refusal> {
        let reservation = request.extensions().get::<Reserved>().map(Reserved::take);
        let accepted = self.accept(request.into_inner());
        drop(reservation);
        accepted.map_err(|refusal| self.refused(refusal))
    }

    /// Admission for the gRPC receiver, in front of tonic's decoder, as on the servers: an
    /// export takes an in-flight place before its body is read, its body must arrive
    /// within the read timeout, and its decoded size is reserved before tonic decodes it
    /// (the handler lets the reservation go once the export is in the buffer).
    async fn admit_grpc(
        self,
        request: http::Request<tonic::body::Body>,
        routes: tonic::service::Routes,
    ) -> http::Response<tonic::body::Body> {
        let passed = self.limits.pass::<Refusal>(request, routes).await;
        let (response, codec) = match passed {
            Ok(passed) => passed,
            Err(refusal) => return Status::from(self.refused(refusal)).into_http(),
        };
        if let Some(reason) = codec {
            self.metrics.otlp_refused(reason);
        }
        response
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        Status::new(refusal.grpc_code(), refusal.message())
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<GrpcResponse<ExportLogsServiceResponse>, Status> {
        self.grpc(request)?;
        Ok(GrpcResponse::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<GrpcResponse<ExportTraceServiceResponse>, Status> {
        self.grpc(request)?;
        Ok(GrpcResponse::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<GrpcResponse<ExportMetricsServiceResponse>, Status> {
        self.grpc(request)?;
        Ok(GrpcResponse::new(ExportMetricsServiceResponse::default()))
    }
}

/// Binds the configured listeners (so a taken port fails the start) and returns their
/// server tasks.
pub async fn start(
    config: &OtlpReceiverConfig,
    buffer: Arc<DiskBuffer>,
    identity: Arc<Identity>,
    redactor: Arc<Redactor>,
    metrics: Arc<CollectorMetrics>,
    stop: CancellationToken,
) -> Result<Vec<Task>, CollectorError> {
    let receiver = Receiver {
        buffer,
        identity,
        redactor,
        metrics,
        limits: ExportLimits {
            inflight: Arc::new(Semaphore::new(config.max_inflight_requests)),
            max_bytes: config.max_request_bytes,
            read_timeout: crate::telemetry::collector_limits().header_timeout,
            decoding: DecodeBudget::new(config.max_decode_bytes),
        },
    };
    let mut tasks: Vec<Task> = Vec::new();
    if let Some(addr) = config.grpc_addr {
        let listener =
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| CollectorError::Listen {
                    what: format!("otlp.grpc_addr {addr}"),
                    error,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|error| CollectorError::Listen {
                what: "otlp.grpc_addr".into(),
                error,
            })?;
        tracing::info!(%addr, "OTLP gRPC receiver listening");
        let limit = config.max_request_bytes;
        let gate = porthole_net::Gate::new(
            "otlp_grpc",
            crate::telemetry::collector_limits(),
            &receiver.metrics.connections,
        );
        let admission = porthole_net::body::InterceptLayer({
            let receiver = receiver.clone();
            move |request, routes| receiver.clone().admit_grpc(request, routes)
        });
        let server = porthole_net::grpc_server()
            .layer(admission)
            .add_service(
                LogsServiceServer::new(receiver.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd)
                    .max_decoding_message_size(limit),
            )
            .add_service(
                TraceServiceServer::new(receiver.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd)
                    .max_decoding_message_size(limit),
            )
            .add_service(
                MetricsServiceServer::new(receiver.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd)
                    .max_decoding_message_size(limit),
            );
        let stop = stop.clone();
        tasks.push(Box::pin(async move {
            server
                .serve_with_incoming_shutdown(gate.incoming(listener), stop.cancelled_owned())
                .await
                .map_err(|e| CollectorError::Listen {
                    what: "otlp.grpc_addr".into(),
                    error: std::io::Error::other(e),
                })
        }));
    }
    if let Some(addr) = config.http_addr {
        let listener =
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| CollectorError::Listen {
                    what: format!("otlp.http_addr {addr}"),
                    error,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|error| CollectorError::Listen {
                what: "otlp.http_addr".into(),
                error,
            })?;
        tracing::info!(%addr, "OTLP HTTP receiver listening");
        let app = Router::new()
            .route("/v1/logs", post(http_export::<ExportLogsServiceRequest>))
            .route("/v1/traces", post(http_export::<ExportTraceServiceRequest>))
            .route(
                "/v1/metrics",
                post(http_export::<ExportMetricsServiceRequest>),
            );
        let gate = porthole_net::Gate::new(
            "otlp_http",
            crate::telemetry::collector_limits(),
            &receiver.metrics.connections,
        );
        let app = app.with_state(receiver);
        tasks.push(Box::pin(async move {
            porthole_net::serve(listener, gate, app, stop.cancelled_owned()).await;
            Ok(())
        }));
    }
    Ok(tasks)
}

async fn http_export<E: Export>(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    match receiver.http::<E>(&headers, body, json).await {
        Ok(unknown_keys) => {
            let mut response = E::Response::default();
            if let Some(warning) = unknown_keys {
                response.warn(&warning);
            }
            if json {
                let body = porthole_net::decoding::otlp_json(&response);
                ([(header::CONTENT_TYPE, "application/json")], body).into_response()
            } else {
                let body = response.encode_to_vec();
                ([(header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
            }
        }
        Err(refusal) => {
            let refusal = receiver.refused(refusal);
            let mut response = (refusal.http_status(), refusal.message()).into_response();
            if refusal.is_retryable() {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, "1".parse().expect("valid header"));
            }
            response
        }
    }
}
