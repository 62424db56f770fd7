//! Porthole's query tier: the `/api/v1` HTTP API over the tables `porthole-storage` writes.
//!
//! [`search`] answers log searches and histograms from the per-file tantivy indexes, then
//! reads only the matching rows; trace lookups use the spans indexes' `trace_id` field and
//! [`traces`] searches spans by service, name, status and duration the same way;
//! [`tail`] streams newly committed records that match a search; [`sql`] runs read-only
//! DataFusion queries over the Delta tables. [`api`] maps all of it,
//! and every error, onto HTTP in one place. [`nesting`] bounds how deeply any query may
//! nest before a parser sees it.

mod admission;
mod api;
mod inventory;
mod nesting;
mod openapi;
pub mod promql;
mod requests;
mod rows;
mod search;
mod snapshot;
mod sql;
mod sql_bounds;
mod stats;
mod tail;
mod threads;
mod time;
mod traces;
mod versions;

#[cfg(test)]
mod tests;

pub use admission::QuerySlots;
pub use api::{QueryState, router};
pub use nesting::THREAD_STACK_BYTES;
pub use requests::RequestMetrics;
pub use search::{FILTER_FIELDS, LogSearch, MAX_COUNT_GROUPS, count_logs, parse_user_query};
pub use snapshot::{Control, ControlService, SnapshotSource};
pub use sql::SqlLimits;
pub use stats::{MAX_STATS_SPANS, SpanStats, any_spans, span_stats};
pub use tail::{TailService, TailSlots, TailSource};
pub use threads::on_query_threads;
pub use time::{now_micros, parse_time};
pub use traces::TraceSearch;

impl From<porthole_storage::StorageError> for QueryError {
    fn from(error: porthole_storage::StorageError) -> Self {
        match error {
            porthole_storage::StorageError::UnreadableDataFile { .. } => {
                QueryError::DataLost(error.to_string())
            }
            error => QueryError::Unavailable(error),
        }
    }
}

/// Everything a query can fail with; [`api`] turns each into one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The request is wrong; the message says how (shown to the client).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// Storage could not be read; the cause is logged, not shown.
    #[error("storage is unavailable")]
    Unavailable(porthole_storage::StorageError),
    /// Rows the table lists cannot be read (a data file deleted outside Porthole, or
    /// damaged): the message names the file and the remedy. Retrying does not help.
    #[error("{0}")]
    DataLost(String),
    /// A data file could not be read, for a cause not known to be lasting; the message
    /// says how to find out. 503.
    #[error("{0}")]
    UnreadableFile(String),
    /// This node cannot answer as configured (e.g. live tail without `--ingest-nodes`);
    /// the message says what is missing.
    #[error("{0}")]
    Misconfigured(String),
    /// This node has its limit of this kind of work running (queries, live tails); the
    /// message says which. 503 with `Retry-After`.
    #[error("{0}")]
    Overloaded(String),
    /// Something outside did not answer in time (a collector asked for a snapshot), or a
    /// search ran past `--query-timeout`. 504.
    #[error("{0}")]
    Timeout(String),
    /// A bug or an impossible state; the cause is logged, not shown.
    #[error("internal error")]
    Internal(String),
}
