//! Wire types for Porthole: the OpenTelemetry protocol (OTLP) messages and gRPC services,
//! re-exported from `opentelemetry-proto` so every crate speaks the same generated types.
//!
//! Porthole's own services (live tail, collector control) will be added here as `.proto`
//! files compiled without `protoc` when they exist.

pub use opentelemetry_proto::tonic::collector::logs::v1 as logs_service;
pub use opentelemetry_proto::tonic::collector::metrics::v1 as metrics_service;
pub use opentelemetry_proto::tonic::collector::trace::v1 as trace_service;
pub use opentelemetry_proto::tonic::common::v1 as common;
pub use opentelemetry_proto::tonic::logs::v1 as logs;
pub use opentelemetry_proto::tonic::metrics::v1 as metrics;
pub use opentelemetry_proto::tonic::resource::v1 as resource;
pub use opentelemetry_proto::tonic::trace::v1 as trace;
