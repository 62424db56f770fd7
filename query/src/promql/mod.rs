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

pub use api::{InstantAnswer, instant_vector, router};

/// Parses a PromQL query once [`crate::nesting`] has bounded its nesting; the error is
/// promql-parser's message, or the limit passed.
pub fn parse(text: &str) -> Result<promql_parser::parser::Expr, String> {
    crate::nesting::check_promql(text)?;
    promql_parser::parser::parse(text)
}
pub use value::{Labels, Sample};

/// PromQL queries answered, by outcome (`ok` or the Prometheus `errorType`): refusals for
/// limits and timeouts are counted here.
#[derive(Clone, Default)]
pub struct PromMetrics {
    queries: prometheus_client::metrics::family::Family<
        Vec<(String, String)>,
        prometheus_client::metrics::counter::Counter,
    >,
}

impl PromMetrics {
    pub fn register(registry: &mut prometheus_client::registry::Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "porthole_promql_queries",
            "PromQL and series queries answered, by outcome (ok, bad_data, execution, timeout, unavailable, internal)",
            metrics.queries.clone(),
        );
        metrics
    }

    fn count(&self, outcome: &str) {
        self.queries
            .get_or_create(&vec![("outcome".to_string(), outcome.to_string())])
            .inc();
    }
}

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

impl PromError {
    /// A storage failure: unreadable data files are named (`execution`, shown), storage
    /// that did not answer is `unavailable` (logged).
    pub(crate) fn of_storage(error: porthole_storage::StorageError) -> Self {
        match error {
            porthole_storage::StorageError::UnreadableDataFile { .. } => {
                PromError::Execution(error.to_string())
            }
            error => PromError::Unavailable(error),
        }
    }

    /// The Prometheus `errorType`.
    pub fn kind(&self) -> &'static str {
        match self {
            PromError::BadData(_) => "bad_data",
            PromError::Execution(_) => "execution",
            PromError::Timeout(_) => "timeout",
            PromError::Unavailable(_) => "unavailable",
            PromError::Internal(_) => "internal",
        }
    }
}
