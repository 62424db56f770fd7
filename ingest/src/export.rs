//! The three OTLP export requests behind one trait, so each receiver is written once and
//! works for logs, traces and metrics alike.

use porthole_proto::logs_service::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use porthole_proto::metrics_service::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use porthole_proto::trace_service::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use porthole_storage::{Converted, Signal, convert_logs, convert_metrics, convert_spans};

pub trait OtlpExport:
    prost::Message
    + Default
    + serde::de::DeserializeOwned
    + porthole_proto::json::OtlpJson
    + Send
    + Sync
    + 'static
{
    const SIGNAL: Signal;
    type Response: prost::Message
        + serde::Serialize
        + porthole_proto::json::PartialSuccessWarning
        + Default
        + Send
        + 'static;

    fn convert(&self, received_at_nanos: i64) -> Converted;

    /// The response, carrying OTLP partial success when some records were refused.
    fn response(rejected: u64, reason: Option<String>) -> Self::Response;
}

impl OtlpExport for ExportLogsServiceRequest {
    const SIGNAL: Signal = Signal::Logs;
    type Response = ExportLogsServiceResponse;

    fn convert(&self, received_at_nanos: i64) -> Converted {
        convert_logs(self, received_at_nanos)
    }

    fn response(rejected: u64, reason: Option<String>) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected as i64,
                error_message: reason.unwrap_or_default(),
            }),
        }
    }
}

impl OtlpExport for ExportTraceServiceRequest {
    const SIGNAL: Signal = Signal::Spans;
    type Response = ExportTraceServiceResponse;

    fn convert(&self, received_at_nanos: i64) -> Converted {
        convert_spans(self, received_at_nanos)
    }

    fn response(rejected: u64, reason: Option<String>) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected as i64,
                error_message: reason.unwrap_or_default(),
            }),
        }
    }
}

impl OtlpExport for ExportMetricsServiceRequest {
    const SIGNAL: Signal = Signal::Metrics;
    type Response = ExportMetricsServiceResponse;

    fn convert(&self, received_at_nanos: i64) -> Converted {
        convert_metrics(self, received_at_nanos)
    }

    fn response(rejected: u64, reason: Option<String>) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejected as i64,
                error_message: reason.unwrap_or_default(),
            }),
        }
    }
}
