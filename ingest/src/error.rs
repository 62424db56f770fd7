//! One mapping from ingest failures to gRPC codes and HTTP statuses, used by both
//! receivers, so the same failure looks the same on either protocol.

use std::time::Duration;

use http::StatusCode;
use thiserror::Error;
use tonic::Code;

/// How long senders are told to wait before retrying a refused export.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Error)]
pub enum IngestError {
    /// The payload could not be decoded; retrying the same bytes cannot help.
    #[error("malformed request: {0}")]
    InvalidRequest(String),
    #[error("request is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    /// Small on the wire, but its many tiny messages would take more memory decoded than
    /// `--max-decode-bytes` allows all exports together.
    #[error(
        "request would take about {estimate} bytes decoded, more than the {limit} bytes \
         (--max-decode-bytes) all exports being decoded share; send smaller exports"
    )]
    DecodesTooLarge { estimate: usize, limit: usize },
    #[error("unsupported {what}: {value:?}")]
    Unsupported { what: &'static str, value: String },
    /// The write buffer is full; the sender keeps the data and retries.
    #[error("ingest buffer is full, retry later")]
    Overloaded,
    /// Writing or committing failed; the cause is logged, not sent to the client.
    #[error("storage is unavailable, retry later")]
    StorageUnavailable,
    #[error("server is shutting down, retry on another node")]
    ShuttingDown,
    /// The body did not arrive within `--read-timeout` after the head: a sender that
    /// trickles an export would hold an in-flight slot.
    #[error("the request body did not arrive within {after:?}")]
    TimedOut { after: Duration },
    /// No bearer token, or the wrong one (`--auth-token-file`, `--tenants`).
    #[error("missing or wrong bearer token")]
    Unauthenticated,
    /// The tenant sends faster than its `ingest_bytes_per_second`; the sender keeps the
    /// data and retries after the pause it is told.
    #[error("tenant {tenant} is over its ingest rate of {bytes_per_second} bytes/s, retry later")]
    RateLimited {
        tenant: String,
        bytes_per_second: u32,
    },
}

impl From<porthole_net::body::BodyError> for IngestError {
    fn from(error: porthole_net::body::BodyError) -> Self {
        use porthole_net::body::BodyError;
        match error {
            BodyError::TooLarge { limit } => IngestError::TooLarge { limit },
            BodyError::TimedOut { after } => IngestError::TimedOut { after },
            BodyError::Invalid(why) => IngestError::InvalidRequest(why),
            BodyError::Unsupported { what, value } => IngestError::Unsupported { what, value },
        }
    }
}

impl From<porthole_net::body::Busy> for IngestError {
    fn from(_: porthole_net::body::Busy) -> Self {
        IngestError::Overloaded
    }
}

impl From<porthole_net::decoding::PastBudget> for IngestError {
    fn from(refused: porthole_net::decoding::PastBudget) -> Self {
        IngestError::DecodesTooLarge {
            estimate: refused.estimate,
            limit: refused.limit,
        }
    }
}

impl IngestError {
    pub fn grpc_code(&self) -> Code {
        match self {
            IngestError::InvalidRequest(_) | IngestError::Unsupported { .. } => {
                Code::InvalidArgument
            }
            IngestError::TooLarge { .. }
            | IngestError::DecodesTooLarge { .. }
            | IngestError::RateLimited { .. } => Code::ResourceExhausted,
            IngestError::Unauthenticated => Code::Unauthenticated,
            IngestError::TimedOut { .. } => Code::DeadlineExceeded,
            IngestError::Overloaded
            | IngestError::StorageUnavailable
            | IngestError::ShuttingDown => Code::Unavailable,
        }
    }

    pub fn http_status(&self) -> StatusCode {
        match self {
            IngestError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            IngestError::Unsupported { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::TooLarge { .. } | IngestError::DecodesTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            IngestError::Unauthenticated => StatusCode::UNAUTHORIZED,
            IngestError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            IngestError::TimedOut { .. } => StatusCode::REQUEST_TIMEOUT,
            IngestError::Overloaded
            | IngestError::StorageUnavailable
            | IngestError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Whether the sender should keep the data and retry (after [`RETRY_AFTER`]): OTLP
    /// senders retry UNAVAILABLE, and RESOURCE_EXHAUSTED only when it carries RetryInfo,
    /// which a rate limit's does.
    pub fn is_retryable(&self) -> bool {
        self.grpc_code() == Code::Unavailable || matches!(self, IngestError::RateLimited { .. })
    }

    /// The label this rejection is counted under on `/metrics`.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::InvalidRequest(_) => "invalid",
            IngestError::Unsupported { .. } => "unsupported",
            IngestError::TooLarge { .. } | IngestError::DecodesTooLarge { .. } => "too_large",
            IngestError::Overloaded => "overloaded",
            IngestError::StorageUnavailable => "storage_unavailable",
            IngestError::ShuttingDown => "shutting_down",
            IngestError::Unauthenticated => "unauthenticated",
            IngestError::RateLimited { .. } => "rate_limited",
            IngestError::TimedOut { .. } => "timed_out",
        }
    }
}

impl From<IngestError> for tonic::Status {
    fn from(error: IngestError) -> Self {
        use tonic_types::{ErrorDetails, StatusExt};
        if error.is_retryable() {
            tonic::Status::with_error_details(
                error.grpc_code(),
                error.to_string(),
                ErrorDetails::with_retry_info(Some(RETRY_AFTER)),
            )
        } else {
            tonic::Status::new(error.grpc_code(), error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_failure_maps_the_same_way_on_both_protocols() {
        let cases = [
            (
                IngestError::InvalidRequest("x".into()),
                Code::InvalidArgument,
                400,
            ),
            (
                IngestError::TooLarge { limit: 1 },
                Code::ResourceExhausted,
                413,
            ),
            (IngestError::Overloaded, Code::Unavailable, 503),
            (IngestError::StorageUnavailable, Code::Unavailable, 503),
            (IngestError::Unauthenticated, Code::Unauthenticated, 401),
            (
                IngestError::TimedOut {
                    after: Duration::from_secs(1),
                },
                Code::DeadlineExceeded,
                408,
            ),
            (
                IngestError::RateLimited {
                    tenant: "a".into(),
                    bytes_per_second: 1,
                },
                Code::ResourceExhausted,
                429,
            ),
        ];
        for (error, code, status) in cases {
            assert_eq!(error.grpc_code(), code);
            assert_eq!(error.http_status().as_u16(), status);
        }
        let status: tonic::Status = IngestError::Overloaded.into();
        use tonic_types::StatusExt;
        assert_eq!(
            status.get_details_retry_info().unwrap().retry_delay,
            Some(RETRY_AFTER)
        );
        // RESOURCE_EXHAUSTED is retried by OTLP senders only with RetryInfo: a rate limit
        // has it, an oversized request (which can never pass) does not.
        let limited: tonic::Status = IngestError::RateLimited {
            tenant: "a".into(),
            bytes_per_second: 1,
        }
        .into();
        assert!(limited.get_details_retry_info().is_some());
        let too_large: tonic::Status = IngestError::TooLarge { limit: 1 }.into();
        assert!(too_large.get_details_retry_info().is_none());
    }
}
