//! Where the query tier's CPU-bound work runs, apart from the server's runtime. Its few
//! threads (one per core) also serve health probes, ingest's acks and every other request:
//! a search, a SQL query or a page of rows decoded on them held all of those up for as
//! long (measured on 2 cores: /healthz after 1.4–2.8 s during a few such queries).
//!
//! - Index work (tantivy's search, sync code) goes to tokio's blocking pool, one file at a
//!   time ([`off_runtime`]); between files the search is back on the
//!   runtime, where `--query-timeout` can stop it.
//! - Async work that decodes as it goes (DataFusion's plans, Parquet row reads and their
//!   JSON) runs on the query threads ([`on_query_threads`]): a runtime of their own, where
//!   the OS shares the cores fairly with the server's.

use std::future::Future;
use std::sync::OnceLock;

use tokio_util::task::AbortOnDropHandle;

use crate::QueryError;

/// Runs one file's index work (tantivy's search and fast-field reads: CPU-bound, seconds on
/// a large file for a wildcard) on tokio's blocking pool.
pub(crate) async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, QueryError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| QueryError::Internal(format!("an index search failed: {e}")))?
}

/// Runs `work` on the query threads. When the returned future is dropped (a timeout, or
/// the client gone), `work` is aborted at its next await instead of running on for nobody.
pub(crate) async fn on_query_threads<T: Send + 'static>(
    work: impl Future<Output = Result<T, QueryError>> + Send + 'static,
) -> Result<T, QueryError> {
    let task = AbortOnDropHandle::new(query_threads()?.spawn(work));
    task.await
        .map_err(|e| QueryError::Internal(format!("a query task failed: {e}")))?
}

/// The query threads' runtime, started at first use and never dropped.
fn query_threads() -> Result<tokio::runtime::Handle, QueryError> {
    static THREADS: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    let built = THREADS.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
            .thread_name("porthole-query")
            // Parsers and planners recurse per level of a query's nesting, bounded for this.
            .thread_stack_size(crate::THREAD_STACK_BYTES)
            .enable_all()
            .build()
    });
    match built {
        Ok(runtime) => Ok(runtime.handle().clone()),
        Err(e) => Err(QueryError::Internal(format!(
            "cannot start the threads queries run on: {e}"
        ))),
    }
}
