//! Wire types for Porthole: the OpenTelemetry protocol (OTLP) messages and gRPC services,
//! re-exported from `opentelemetry-proto` so every crate speaks the same generated types,
//! and Porthole's own services ([`tail`]: live tail from ingest nodes to query nodes;
//! [`control`]: snapshot requests pulled by collectors),
//! compiled from `porthole/**.proto` by `build.rs` without `protoc`.

pub use opentelemetry_proto::tonic::collector::logs::v1 as logs_service;
pub use opentelemetry_proto::tonic::collector::metrics::v1 as metrics_service;
pub use opentelemetry_proto::tonic::collector::trace::v1 as trace_service;
pub use opentelemetry_proto::tonic::common::v1 as common;
pub use opentelemetry_proto::tonic::logs::v1 as logs;
pub use opentelemetry_proto::tonic::metrics::v1 as metrics;
pub use opentelemetry_proto::tonic::resource::v1 as resource;
pub use opentelemetry_proto::tonic::trace::v1 as trace;

pub mod json;

/// `porthole.tail.v1`: live tail between the tiers.
pub mod tail {
    tonic::include_proto!("porthole.tail.v1");
}

/// `porthole.control.v1`: snapshot requests to collectors, pulled over their connection.
pub mod control {
    tonic::include_proto!("porthole.control.v1");
}
