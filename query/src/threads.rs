//! The query threads: a tokio runtime of their own (one thread per core) where the query
//! tier's CPU-bound work runs, apart from the server's runtime. The server's few threads
//! also serve health probes, ingest's acks and every other request; a search, a SQL query
//! or a page of rows decoded on them held all of those up for as long (measured on 2
//! cores: /healthz after 1.4-2.8 s during a few such queries). On threads of their own the
//! OS shares the cores fairly among all of them.
//!
//! What runs here: every request under `--query-timeout` (log search, histogram, traces,
//! versions, inventory: [`crate::admission::within`]), the rows a page reads, and the
//! alert engine's log and trace rules. SQL runs on threads of its own
//! ([`on_sql_threads`]). Tantivy's search is sync code, run inline between
//! awaits; every file's index open yields first, so a search can be stopped between files.

use std::future::Future;
use std::sync::OnceLock;

use tokio_util::task::AbortOnDropHandle;

use crate::QueryError;

/// Runs `work` on the query threads. When the returned future is dropped (a timeout, or
/// the client gone), `work` is aborted at its next await instead of running on for nobody.
pub async fn on_query_threads<T: Send + 'static>(
    work: impl Future<Output = Result<T, QueryError>> + Send + 'static,
) -> Result<T, QueryError> {
    static THREADS: Threads = OnceLock::new();
    on_threads(&THREADS, "porthole-query", work).await
}

/// Runs a SQL query's `work` on threads of its own, as [`on_query_threads`] does. SQL
/// computes whatever its text asks, and one batch of rows cannot be stopped halfway: a
/// `levenshtein` of two long strings held a query thread for half a minute past the
/// timeout, and two such queries held every one of them, so log searches and the alert
/// engine's log rules waited (an alert's count timed out). Apart, SQL can only hold up
/// SQL; the OS still shares the cores among all threads.
pub async fn on_sql_threads<T: Send + 'static>(
    work: impl Future<Output = Result<T, QueryError>> + Send + 'static,
) -> Result<T, QueryError> {
    static THREADS: Threads = OnceLock::new();
    on_threads(&THREADS, "porthole-sql", work).await
}

type Threads = OnceLock<std::io::Result<tokio::runtime::Runtime>>;

async fn on_threads<T: Send + 'static>(
    threads: &'static Threads,
    name: &'static str,
    work: impl Future<Output = Result<T, QueryError>> + Send + 'static,
) -> Result<T, QueryError> {
    let task = AbortOnDropHandle::new(runtime(threads, name)?.spawn(work));
    task.await
        .map_err(|e| QueryError::Internal(format!("a query task failed: {e}")))?
}

/// A runtime of one thread per core, started at first use and never dropped.
fn runtime(
    threads: &'static Threads,
    name: &'static str,
) -> Result<tokio::runtime::Handle, QueryError> {
    let built = threads.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
            .thread_name(name)
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
