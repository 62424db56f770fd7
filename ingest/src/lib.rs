//! Porthole's ingest tier: OTLP receivers whose acks mean "durable".
//!
//! Both receivers ([`grpc`] on 4317, [`http`] on 4318) decode an export and hand it to the
//! [`pipeline`], which converts it to Arrow rows and submits them to the [`batcher`]. The
//! batcher writes the exports of a short window as one file per signal through
//! `porthole-storage` and only then answers every export in it. Failures map to OTLP
//! status codes in one place ([`IngestError`]); everything is counted in [`telemetry`].

mod auth;
mod batcher;
mod error;
mod export;
mod grpc;
mod http;
mod ops;
mod pipeline;
pub mod remote_write;
mod telemetry;
pub mod tenants;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use porthole_storage::Stores;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use auth::{Access, BearerAuth, require_bearer, unauthorized};
pub use batcher::BatchConfig;
pub use error::IngestError;
pub use ops::ops_routers;

/// Where to listen and how much to accept.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    /// Largest accepted request, after decompression.
    pub max_request_bytes: usize,
    /// Requests (both protocols) being read or waiting for their commit, at most; beyond
    /// it exports get UNAVAILABLE. With `max_request_bytes` it bounds decoding memory.
    pub max_inflight_requests: usize,
    pub batch: BatchConfig,
    /// Who may export: anyone, one token's holders, or tenants (each to its own tables).
    pub access: Access,
    /// When set, both receivers speak TLS only (and ask for client certificates when it
    /// has a client CA).
    pub tls: Option<tls::Tls>,
    /// Each receiver's open connections and request-head deadline.
    pub connections: porthole_net::Limits,
    /// Memory that exports being decoded may take together, estimated from their wire
    /// bytes before they are decoded (see [`porthole_net::decoding`]).
    pub max_decode_bytes: usize,
    /// Where the receivers count their connections (registered by the caller, who counts
    /// the API's there too).
    pub connection_metrics: porthole_net::ConnectionMetrics,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            otlp_grpc_addr: ([0, 0, 0, 0], 4317).into(),
            otlp_http_addr: ([0, 0, 0, 0], 4318).into(),
            max_request_bytes: 8 * 1024 * 1024,
            max_inflight_requests: 256,
            batch: BatchConfig::default(),
            access: Access::Open,
            tls: None,
            connections: porthole_net::Limits {
                max_connections: 4096,
                header_timeout: std::time::Duration::from_secs(30),
            },
            connection_metrics: porthole_net::ConnectionMetrics::default(),
            max_decode_bytes: 512 * 1024 * 1024,
        }
    }
}

/// A running ingest tier.
pub struct Ingest {
    otlp_grpc_addr: SocketAddr,
    otlp_http_addr: SocketAddr,
    stop_accepting: CancellationToken,
    servers: Vec<JoinHandle<()>>,
    batcher: Arc<batcher::Batcher>,
    http_state: http::HttpState,
}

/// How long shutdown waits for a server's open connections to finish (the OTLP servers'
/// here, the API's in `porthole serve`); Kubernetes kills a pod 30 s after SIGTERM by
/// default.
pub const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Ingest {
    /// Binds both receivers and starts serving; `extra_grpc` (e.g. the live-tail service)
    /// is served on the OTLP gRPC port beside the OTLP services.
    pub async fn start(
        config: IngestConfig,
        stores: Arc<Stores>,
        registry: &mut Registry,
        extra_grpc: tonic::service::RoutesBuilder,
    ) -> std::io::Result<Self> {
        let metrics = Arc::new(telemetry::IngestMetrics::register(registry));
        porthole_net::body::register_cpu_work_metrics(
            registry.sub_registry_with_prefix("porthole"),
        );
        let gate = |listener| {
            porthole_net::Gate::new(listener, config.connections, &config.connection_metrics)
        };
        let (grpc_gate, http_gate) = (gate("otlp_grpc"), gate("otlp_http"));
        let batcher = batcher::Batcher::start(config.batch.clone(), stores, metrics.clone());
        let pipeline = pipeline::Pipeline {
            batcher: batcher.clone(),
            metrics: metrics.clone(),
            tenants: config.access.tenants().cloned(),
        };
        // Both receivers' exports share one set of in-flight places and one decode budget.
        let limits = porthole_net::body::ExportLimits {
            inflight: Arc::new(tokio::sync::Semaphore::new(config.max_inflight_requests)),
            max_bytes: config.max_request_bytes,
            // A body gets as long after its head as the head had.
            read_timeout: config.connections.header_timeout,
            decoding: porthole_net::decoding::DecodeBudget::new(config.max_decode_bytes),
        };
        // An error names the flag and address that could not be bound.
        let bind = |flag: &'static str, addr: std::net::SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("binding --{flag} {addr}: {e}")))
        };
        let grpc_listener = bind("otlp-grpc-addr", config.otlp_grpc_addr).await?;
        let http_listener = bind("otlp-http-addr", config.otlp_http_addr).await?;
        let otlp_grpc_addr = grpc_listener.local_addr()?;
        let otlp_http_addr = http_listener.local_addr()?;
        let stop_accepting = CancellationToken::new();

        let grpc_access = config.access.clone();
        let grpc_routes = grpc::router(pipeline.clone(), config.max_request_bytes, extra_grpc);
        let stop = stop_accepting.clone();
        let mut builder = porthole_net::grpc_server();
        if let Some(tls) = &config.tls {
            builder = builder
                .tls_config(tls.grpc_config())
                .map_err(|e| std::io::Error::other(format!("TLS on the OTLP gRPC port: {e}")))?;
        }
        let admission = grpc::Admission {
            metrics,
            limits: limits.clone(),
            access: grpc_access,
        };
        let grpc_server = tokio::spawn(async move {
            let served = builder
                .layer(porthole_net::body::InterceptLayer(
                    move |request, routes| admission.clone().admit(request, routes),
                ))
                .add_routes(grpc_routes)
                .serve_with_incoming_shutdown(
                    grpc_gate.incoming(grpc_listener),
                    stop.cancelled_owned(),
                )
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "OTLP gRPC server stopped");
            }
        });

        let http_state = http::HttpState {
            pipeline,
            limits,
            access: config.access.clone(),
        };
        let http_routes = http::router(http_state.clone());
        let stop = stop_accepting.clone();
        let (plain_listener, tls_listener) = match &config.tls {
            Some(tls) => (None, Some(tls.otlp_listener(http_listener)?)),
            None => (Some(http_listener), None),
        };
        let http_server = tokio::spawn(async move {
            let stopped = stop.cancelled_owned();
            match (plain_listener, tls_listener) {
                (_, Some(listener)) => {
                    porthole_net::serve(listener, http_gate, http_routes, stopped).await
                }
                (Some(listener), None) => {
                    porthole_net::serve(listener, http_gate, http_routes, stopped).await
                }
                (None, None) => unreachable!("one listener is made above"),
            }
        });

        tracing::info!(%otlp_grpc_addr, %otlp_http_addr, "OTLP receivers listening");
        Ok(Self {
            otlp_grpc_addr,
            otlp_http_addr,
            stop_accepting,
            servers: vec![grpc_server, http_server],
            batcher,
            http_state,
        })
    }

    pub fn otlp_grpc_addr(&self) -> SocketAddr {
        self.otlp_grpc_addr
    }

    pub fn otlp_http_addr(&self) -> SocketAddr {
        self.otlp_http_addr
    }

    /// `POST /api/v1/write` (Prometheus remote_write), for the API port too: it is also
    /// served on the OTLP/HTTP port.
    pub fn remote_write_router(&self) -> axum::Router {
        axum::Router::new()
            .route("/api/v1/write", axum::routing::post(remote_write::write))
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(self.http_state.clone())
    }

    /// Stops accepting connections, lets in-flight exports finish (their batches are
    /// written, committed and acked), then flushes anything still queued.
    pub async fn shutdown(self) {
        self.stop_accepting.cancel();
        self.batcher.drain();
        // Requests in flight finish first; a connection that lingers past the wait does
        // not keep what is buffered from being committed.
        let servers = futures::future::join_all(self.servers);
        if tokio::time::timeout(SHUTDOWN_WAIT, servers).await.is_err() {
            tracing::warn!(
                "OTLP connections did not close within {SHUTDOWN_WAIT:?}; committing anyway"
            );
        }
        self.batcher.shutdown().await;
    }
}
