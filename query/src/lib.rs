//! Porthole's query tier: the `/api/v1` HTTP API over the tables `porthole-storage` writes.
//!
//! [`search`] answers log searches and histograms from the per-file tantivy indexes, then
//! reads only the matching rows; trace lookups use the spans indexes' `trace_id` field and
//! [`traces`] searches spans by service, name, status and duration the same way;
//! [`sql`] runs read-only DataFusion queries over the Delta tables. [`api`] maps all of it,
//! and every error, onto HTTP in one place.

mod api;
mod rows;
mod search;
mod sql;
mod time;
mod traces;

pub use api::{QueryState, router};
pub use sql::SqlLimits;

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
    Unavailable(#[from] porthole_storage::StorageError),
    /// A bug or an impossible state; the cause is logged, not shown.
    #[error("internal error")]
    Internal(String),
}
