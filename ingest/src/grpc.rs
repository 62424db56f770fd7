//! OTLP over gRPC: the Logs, Trace and Metrics services on one port.

use porthole_proto::logs_service::logs_service_server::{LogsService, LogsServiceServer};
use porthole_proto::logs_service::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use porthole_proto::metrics_service::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use porthole_proto::metrics_service::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use porthole_proto::trace_service::trace_service_server::{TraceService, TraceServiceServer};
use porthole_proto::trace_service::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use std::sync::Arc;

use porthole_storage::{Signal, Tenant};

use crate::IngestError;
use crate::auth::Access;
use crate::export::OtlpExport;
use crate::pipeline::Pipeline;
use crate::telemetry::IngestMetrics;
use porthole_net::decoding::Reserved;

#[derive(Clone)]
pub struct OtlpGrpc {
    pipeline: Pipeline,
}

impl OtlpGrpc {
    /// With the caller's tenant and the decoding memory admission reserved for it.
    async fn export<E: OtlpExport>(
        &self,
        request: Request<E>,
    ) -> Result<Response<E::Response>, Status> {
        let tenant = request.extensions().get::<Tenant>().cloned();
        let reservation = request
            .extensions()
            .get::<Reserved>()
            .map(Reserved::take)
            .unwrap_or_default();
        let request = request.into_inner();
        let size = request.encoded_len();
        let response = self
            .pipeline
            .export(request, size, tenant, reservation)
            .await?;
        Ok(Response::new(response))
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.export(request).await
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.export(request).await
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.export(request).await
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
pub struct Admission {
    pub metrics: Arc<IngestMetrics>,
    /// `--max-inflight-requests`, `--max-request-bytes`, `--read-timeout` and
    /// `--max-decode-bytes`.
    pub limits: porthole_net::body::ExportLimits,
    /// Exports without a valid token are refused UNAUTHENTICATED; with tenants, the
    /// caller's [`Tenant`] goes into the request's extensions.
    pub access: Access,
}

impl Admission {
    /// Answers a request itself, or passes it to `routes` (a layer through
    /// [`porthole_net::body::InterceptLayer`]).
    pub async fn admit(
        self,
        mut request: http::Request<tonic::body::Body>,
        routes: tonic::service::Routes,
    ) -> http::Response<tonic::body::Body> {
        let signal = signal_of_path(request.uri().path());
        let refuse = |error: IngestError| {
            if let Some(signal) = signal {
                self.metrics.export_rejected(signal, error.reason(), 0, 0);
            }
            tonic::Status::from(error).into_http()
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
        let Some(signal) = signal else {
            let Ok(response) = tower::ServiceExt::oneshot(routes, request).await;
            return response;
        };
        let (response, codec) = match self.limits.pass::<IngestError>(request, routes).await {
            Ok(passed) => passed,
            Err(error) => return refuse(error),
        };
        let Some(reason) = codec else {
            return response;
        };
        self.metrics.export_rejected(signal, reason, 0, 0);
        let message = response
            .headers()
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .unwrap_or("");
        tracing::warn!(%signal, reason, message, "export refused by the gRPC codec");
        response
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
