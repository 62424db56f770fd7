//! End-to-end tests: the real `porthole` binary on loopback ports, real OTLP clients (the
//! OpenTelemetry Python SDK and tonic), a real S3-compatible server, independent readers.

mod alerts;
mod auth;
mod bad_input;
mod binaries;
mod collector;
mod compaction;
mod durability;
mod harness;
mod inventory;
mod load;
mod openapi;
mod overload;
mod promql;
mod query_api;
mod roundtrip;
mod s3;
mod snapshot;
mod storage_contract;
mod tail;
mod tenants;
mod tls;
mod traces;
mod versions;
mod web;
