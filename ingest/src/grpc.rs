//! OTLP over gRPC: the Logs, Trace and Metrics services on one port.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use porthole_proto::logs_service::logs_service_server::{LogsService, LogsServiceServer};
use porthole_proto::logs_service::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use porthole_proto::metrics_service::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use porthole_proto::metrics_service::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use porthole_proto::trace_service::trace_service_server::{TraceService, TraceServiceServer};
use porthole_proto::trace_service::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use std::sync::Arc;

use tokio::sync::Semaphore;

use porthole_storage::{Signal, Tenant};

use crate::IngestError;
use crate::auth::Access;
use crate::pipeline::Pipeline;
use crate::telemetry::IngestMetrics;

#[derive(Clone)]
pub struct OtlpGrpc {
    pipeline: Pipeline,
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let tenant = request.extensions().get::<Tenant>().cloned();
        let request = request.into_inner();
        let size = request.encoded_len();
        Ok(Response::new(
            self.pipeline.export(request, size, tenant).await?,
        ))
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let tenant = request.extensions().get::<Tenant>().cloned();
        let request = request.into_inner();
        let size = request.encoded_len();
        Ok(Response::new(
            self.pipeline.export(request, size, tenant).await?,
        ))
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let tenant = request.extensions().get::<Tenant>().cloned();
        let request = request.into_inner();
        let size = request.encoded_len();
        Ok(Response::new(
            self.pipeline.export(request, size, tenant).await?,
        ))
    }
}

/// The gRPC router: `routes` (other services of this port) plus the three OTLP services,
/// gzip/zstd accepted, and the request-size limit.
pub fn router(
    pipeline: Pipeline,
    max_request_bytes: usize,
    mut routes: tonic::service::RoutesBuilder,
) -> tonic::service::Routes {
    let service = OtlpGrpc { pipeline };
    routes
        .add_service(
            LogsServiceServer::new(service.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(max_request_bytes),
        )
        .add_service(
            TraceServiceServer::new(service.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(max_request_bytes),
        )
        .add_service(
            MetricsServiceServer::new(service)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(max_request_bytes),
        );
    routes.routes()
}

/// Admission for gRPC exports, in front of tonic's decoder.
///
/// Requests beyond `--max-inflight-requests` are refused with UNAVAILABLE before their body
/// is read, so decoding memory stays bounded however many clients connect. And the status
/// codes tonic's codec gives bad requests are rewritten into the ones OTLP senders act
/// on: an undecodable body is INVALID_ARGUMENT (drop, don't retry), not INTERNAL; an
/// over-limit one is RESOURCE_EXHAUSTED, not OUT_OF_RANGE. Porthole's own handlers never
/// answer INTERNAL or OUT_OF_RANGE, so every such status here came from the codec; the
/// handlers never saw these requests, so they are counted here. An export's body must
/// arrive within `read_timeout` (DEADLINE_EXCEEDED past it), so a sender that trickles
/// one holds its in-flight slot no longer.
#[derive(Clone)]
pub struct AdmissionLayer {
    pub metrics: Arc<IngestMetrics>,
    pub inflight: Arc<Semaphore>,
    pub read_timeout: Duration,
    /// Exports without a valid token are refused UNAUTHENTICATED; with tenants, the
    /// caller's [`Tenant`] goes into the request's extensions.
    pub access: Access,
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Admission {
            inner,
            metrics: self.metrics.clone(),
            inflight: self.inflight.clone(),
            read_timeout: self.read_timeout,
            access: self.access.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    metrics: Arc<IngestMetrics>,
    inflight: Arc<Semaphore>,
    read_timeout: Duration,
    access: Access,
}

impl<S, ResBody> tower::Service<http::Request<tonic::body::Body>> for Admission<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let signal = signal_of_path(request.uri().path());
        let metrics = self.metrics.clone();
        let refuse = |error: IngestError| -> Self::Future {
            if let Some(signal) = signal {
                metrics.export_rejected(signal, error.reason(), 0, 0);
            }
            Box::pin(std::future::ready(Ok(
                tonic::Status::from(error).into_http()
            )))
        };
        match self.access.admit(request.headers()) {
            Ok(Some(tenant)) => {
                request.extensions_mut().insert(tenant);
            }
            Ok(None) => {}
            Err(error) => return refuse(error),
        }
        // Only exports take a slot: a collector's long poll for snapshot requests (or a
        // live-tail stream) must not crowd out exports.
        let permit = match signal {
            Some(_) => match self.inflight.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return refuse(IngestError::Overloaded),
            },
            None => None,
        };
        if signal.is_some() {
            let after = self.read_timeout;
            request = request.map(|body| tonic::body::Body::new(Deadline::new(body, after)));
        }
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            drop(permit);
            let headers = response.headers_mut();
            let (replacement, error) = match headers.get("grpc-status").map(|v| v.as_bytes()) {
                Some(b"13") => (
                    tonic::Code::InvalidArgument,
                    IngestError::InvalidRequest("undecodable protobuf".into()),
                ),
                Some(b"11") => (
                    tonic::Code::ResourceExhausted,
                    IngestError::TooLarge { limit: 0 },
                ),
                // Only [`Deadline`] answers this.
                Some(b"4") => (
                    tonic::Code::DeadlineExceeded,
                    IngestError::TimedOut {
                        after: Duration::ZERO,
                    },
                ),
                _ => return Ok(response),
            };
            headers.insert("grpc-status", http::HeaderValue::from(replacement as i32));
            if let Some(signal) = signal {
                metrics.export_rejected(signal, error.reason(), 0, 0);
                let message = headers
                    .get("grpc-message")
                    .and_then(|m| m.to_str().ok())
                    .unwrap_or("");
                tracing::warn!(%signal, reason = error.reason(), message, "export refused by the gRPC codec");
            }
            Ok(response)
        })
    }
}

/// A request body that fails with DEADLINE_EXCEEDED once `after` has passed before its
/// end.
struct Deadline {
    body: tonic::body::Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    after: Duration,
    expired: bool,
}

impl Deadline {
    fn new(body: tonic::body::Body, after: Duration) -> Self {
        Self {
            body,
            deadline: Box::pin(tokio::time::sleep(after)),
            after,
            expired: false,
        }
    }
}

impl http_body::Body for Deadline {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Pending if this.deadline.as_mut().poll(cx).is_ready() => {
                this.expired = true;
                let error = IngestError::TimedOut { after: this.after };
                Poll::Ready(Some(Err(Status::from(error))))
            }
            polled => polled,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

fn signal_of_path(path: &str) -> Option<Signal> {
    [
        ("collector.logs.", Signal::Logs),
        ("collector.trace.", Signal::Spans),
        ("collector.metrics.", Signal::Metrics),
    ]
    .into_iter()
    .find(|(marker, _)| path.contains(marker))
    .map(|(_, signal)| signal)
}
