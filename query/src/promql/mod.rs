//! Prometheus-compatible metrics queries: PromQL (parsed by `promql-parser`) evaluated
//! over the `metrics` table, behind the Prometheus HTTP API's parameters and JSON shapes.

mod api;
mod eval;
mod functions;
mod names;
mod store;
mod value;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use api::router;

/// Bounds on one PromQL query; exceeding any is a 422 naming the limit.
#[derive(Clone, Debug)]
pub struct PromLimits {
    /// Series one query may load.
    pub max_series: usize,
    /// Samples one query may load into memory.
    pub max_samples: usize,
    /// Wall time for loading and evaluating.
    pub timeout: Duration,
}

impl Default for PromLimits {
    fn default() -> Self {
        Self {
            max_series: 100_000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Errors as the Prometheus API reports them (`errorType` and status).
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    /// A bad query or parameter: 400 `bad_data`.
    #[error("{0}")]
    BadData(String),
    /// A limit was hit or the query cannot be evaluated on this data: 422 `execution`.
    #[error("{0}")]
    Execution(String),
    /// The query ran out of time: 422 `timeout`.
    #[error("{0}")]
    Timeout(String),
    /// Storage could not be read; the cause is logged, not shown: 503 `unavailable`.
    #[error("storage is unavailable")]
    Unavailable(porthole_storage::StorageError),
    /// A bug; logged, not shown: 500 `internal`.
    #[error("internal error")]
    Internal(String),
}
