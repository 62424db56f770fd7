//! The OTLP receiver the app's own SDK sends to (gRPC and HTTP on localhost). An export
//! is acked to the app once it is stamped with the pod's identity and fsynced in the
//! buffer; when the buffer is full (`block`) the app is told UNAVAILABLE / 503 and its
//! SDK retries, so nothing is acked that is not kept.

use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use porthole_proto::logs_service::logs_service_server::{LogsService, LogsServiceServer};
use porthole_proto::logs_service::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use porthole_proto::metrics_service::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use porthole_proto::metrics_service::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use porthole_proto::trace_service::trace_service_server::{TraceService, TraceServiceServer};
use porthole_proto::trace_service::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response as GrpcResponse, Status};

use crate::CollectorError;
use crate::buffer::{DiskBuffer, Kind};
use crate::config::OtlpReceiverConfig;
use crate::resource::Identity;
use crate::telemetry::CollectorMetrics;

pub type Task = Pin<Box<dyn Future<Output = Result<(), CollectorError>> + Send>>;

/// One OTLP export request type: how to stamp it and count it.
trait Export: Message + Default + serde::de::DeserializeOwned + Send + 'static {
    const KIND: Kind;
    type Response: Message + serde::Serialize + Default + Send + 'static;
    fn enrich(&mut self, identity: &Identity);
    fn records(&self) -> u64;
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
        self.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .map(|s| s.metrics.len() as u64)
            .sum()
    }
}

#[derive(Clone)]
struct Receiver {
    buffer: Arc<DiskBuffer>,
    identity: Arc<Identity>,
    metrics: Arc<CollectorMetrics>,
    max_request_bytes: usize,
}

enum Refusal {
    Full,
    Broken,
    Invalid(String),
    TooLarge,
}

impl Receiver {
    fn accept<E: Export>(&self, mut request: E) -> Result<(), Refusal> {
        request.enrich(&self.identity);
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
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        match refusal {
            Refusal::Full => Status::unavailable("collector buffer is full, retry later"),
            Refusal::Broken => Status::unavailable("collector buffer is not writable, retry later"),
            Refusal::Invalid(why) => Status::invalid_argument(why),
            Refusal::TooLarge => Status::resource_exhausted("request too large"),
        }
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<GrpcResponse<ExportLogsServiceResponse>, Status> {
        self.accept(request.into_inner())?;
        Ok(GrpcResponse::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<GrpcResponse<ExportTraceServiceResponse>, Status> {
        self.accept(request.into_inner())?;
        Ok(GrpcResponse::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<GrpcResponse<ExportMetricsServiceResponse>, Status> {
        self.accept(request.into_inner())?;
        Ok(GrpcResponse::new(ExportMetricsServiceResponse::default()))
    }
}

/// Binds the configured listeners (so a taken port fails the start) and returns their
/// server tasks.
pub async fn start(
    config: &OtlpReceiverConfig,
    buffer: Arc<DiskBuffer>,
    identity: Arc<Identity>,
    metrics: Arc<CollectorMetrics>,
    stop: CancellationToken,
) -> Result<Vec<Task>, CollectorError> {
    let receiver = Receiver {
        buffer,
        identity,
        metrics,
        max_request_bytes: config.max_request_bytes,
    };
    let mut tasks: Vec<Task> = Vec::new();
    if let Some(addr) = config.grpc_addr {
        let listener =
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| CollectorError::Listen {
                    what: "otlp.grpc_addr",
                    error,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|error| CollectorError::Listen {
                what: "otlp.grpc_addr",
                error,
            })?;
        tracing::info!(%addr, "OTLP gRPC receiver listening");
        let limit = config.max_request_bytes;
        let gate = porthole_net::Gate::new(
            "otlp_grpc",
            crate::telemetry::collector_limits(),
            &receiver.metrics.connections,
        );
        let server = porthole_net::grpc_server()
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
                    what: "otlp.grpc_addr",
                    error: std::io::Error::other(e),
                })
        }));
    }
    if let Some(addr) = config.http_addr {
        let listener =
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| CollectorError::Listen {
                    what: "otlp.http_addr",
                    error,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|error| CollectorError::Listen {
                what: "otlp.http_addr",
                error,
            })?;
        tracing::info!(%addr, "OTLP HTTP receiver listening");
        let app = Router::new()
            .route("/v1/logs", post(http_export::<ExportLogsServiceRequest>))
            .route("/v1/traces", post(http_export::<ExportTraceServiceRequest>))
            .route(
                "/v1/metrics",
                post(http_export::<ExportMetricsServiceRequest>),
            )
            .layer(axum::extract::DefaultBodyLimit::max(
                config.max_request_bytes,
            ));
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
    body: Bytes,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let result = decode_body::<E>(&headers, &body, json, receiver.max_request_bytes)
        .and_then(|request| receiver.accept(request));
    let (status, message) = match result {
        Ok(()) => {
            let response = E::Response::default();
            return if json {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    serde_json::to_vec(&response).unwrap_or_default(),
                )
                    .into_response()
            } else {
                (
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    response.encode_to_vec(),
                )
                    .into_response()
            };
        }
        Err(Refusal::Full) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "collector buffer is full, retry later".to_string(),
        ),
        Err(Refusal::Broken) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "collector buffer is not writable, retry later".to_string(),
        ),
        Err(Refusal::Invalid(why)) => (StatusCode::BAD_REQUEST, why),
        Err(Refusal::TooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request too large".to_string(),
        ),
    };
    let mut response = (status, message).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, "1".parse().expect("valid header"));
    }
    response
}

fn decode_body<E: Export>(
    headers: &HeaderMap,
    body: &[u8],
    json: bool,
    limit: usize,
) -> Result<E, Refusal> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let unzipped;
    let body = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| Refusal::Invalid(format!("gzip: {e}")))?;
        if out.len() > limit {
            return Err(Refusal::TooLarge);
        }
        unzipped = out;
        unzipped.as_slice()
    } else {
        body
    };
    if json {
        serde_json::from_slice(body).map_err(|e| Refusal::Invalid(format!("JSON: {e}")))
    } else {
        E::decode(body).map_err(|e| Refusal::Invalid(format!("protobuf: {e}")))
    }
}
