//! `POST /api/v1/sql`: DataFusion over the Delta tables, read-only and bounded in time,
//! memory and rows.

use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use deltalake::datafusion::physical_plan::execute_stream;
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::datafusion::sql::parser::{DFParser, Statement};
use deltalake::datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::TryStreamExt;
use porthole_storage::Storage;
use serde_json::{Map, Value};

use crate::QueryError;
use crate::threads::on_sql_threads;

#[derive(Clone, Debug)]
pub struct SqlLimits {
    pub timeout: Duration,
    pub max_rows: usize,
    /// Bytes of result rows (as Arrow holds them) one answer may carry; past them the
    /// answer is cut like one past `max_rows`. DataFusion's memory pool counts what its
    /// operators hold, not the batches a plain scan hands back.
    pub max_result_bytes: usize,
    /// One memory pool of `memory_bytes` that every SQL query made with these limits (or
    /// their clones) shares, so queries running together hold that much at most, not that
    /// much each.
    pub(crate) memory_bytes: usize,
    pub(crate) runtime: Arc<RuntimeEnv>,
}

impl SqlLimits {
    pub fn new(memory_bytes: usize) -> Self {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(memory_bytes, 1.0)
            .build_arc()
            .expect("a memory-limited runtime needs nothing that can fail");
        Self {
            timeout: Duration::from_secs(30),
            max_rows: 10_000,
            max_result_bytes: 64 * 1024 * 1024,
            memory_bytes,
            runtime,
        }
    }
}

impl Default for SqlLimits {
    /// 512 MiB for all the queries that share these limits.
    fn default() -> Self {
        Self::new(512 * 1024 * 1024)
    }
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SqlResult {
    pub columns: Vec<String>,
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Map<String, Value>>,
    /// True when the result had more than the row limit and was cut.
    pub truncated: bool,
}

/// Refuses anything but one query: no DDL, DML, COPY or SET.
fn ensure_read_only(sql: &str) -> Result<(), QueryError> {
    let bad = |e: String| QueryError::BadRequest(format!("SQL: {e}"));
    crate::nesting::check_sql_text(sql).map_err(bad)?;
    let statements = DFParser::parse_sql(sql).map_err(|e| bad(e.to_string()))?;
    match statements.len() {
        0 => return Err(QueryError::BadRequest("SQL: empty statement".into())),
        1 => {}
        n => {
            return Err(QueryError::BadRequest(format!(
                "SQL: {n} statements; send one query"
            )));
        }
    }
    match &statements[0] {
        Statement::Statement(statement) if matches!(statement.as_ref(), SqlStatement::Query(_)) => {
            crate::nesting::check_sql(statement).map_err(bad)
        }
        _ => Err(QueryError::BadRequest(
            "SQL: only a query (SELECT …) is allowed; the tables are read-only".into(),
        )),
    }
}

pub async fn run_sql(
    storage: &Arc<Storage>,
    sql: &str,
    limits: &SqlLimits,
) -> Result<SqlResult, QueryError> {
    ensure_read_only(sql)?;
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), limits.runtime.clone());
    crate::sql_bounds::bound_functions(&ctx);
    storage.register_tables(&ctx).await?;
    let (sql, limits) = (sql.to_string(), limits.clone());
    let timeout = limits.timeout;
    // On the SQL threads, not the server's runtime nor the query threads; stopped at its
    // next batch when this future is dropped (the timeout below, or the client gone).
    let run = on_sql_threads(async move {
        let shared = limits.memory_bytes;
        let (columns, batches, cut) = collect(&ctx, &sql, &limits)
            .await
            .map_err(|e| sql_error(e, shared))?;
        let mut rows = Vec::new();
        for batch in &batches {
            rows.extend(crate::rows::batch_to_json(batch)?);
        }
        for row in &mut rows {
            row.values_mut().for_each(crate::rows::big_ints_as_text);
        }
        let truncated = cut || rows.len() > limits.max_rows;
        rows.truncate(limits.max_rows);
        Ok(SqlResult {
            columns,
            rows,
            truncated,
        })
    });
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or_else(|_| {
            Err(QueryError::BadRequest(format!(
                "SQL: the query ran longer than {timeout:?} and was stopped"
            )))
        })
}

/// The query's column names and its result batches, cut at `max_rows` + 1 rows or
/// `max_result_bytes` (the third value says whether the bytes cut it).
async fn collect(
    ctx: &SessionContext,
    sql: &str,
    limits: &SqlLimits,
) -> Result<(Vec<String>, Vec<RecordBatch>, bool), DataFusionError> {
    let frame = ctx.sql(sql).await?;
    crate::sql_bounds::check_growing_calls(frame.logical_plan())?;
    let columns: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let plan = frame
        .limit(0, Some(limits.max_rows + 1))?
        .create_physical_plan()
        .await?;
    let plan = crate::sql_bounds::account_windows(plan)?;
    let mut stream = execute_stream(plan, ctx.task_ctx())?;
    let (mut batches, mut bytes, mut cut) = (Vec::new(), 0, false);
    while let Some(batch) = stream.try_next().await? {
        let size = batch.get_array_memory_size();
        if bytes + size > limits.max_result_bytes {
            // The batch's rows that fit, at its average row size.
            let room = (limits.max_result_bytes - bytes) as u128;
            let fit = (batch.num_rows() as u128 * room / size as u128) as usize;
            batches.push(batch.slice(0, fit));
            cut = true;
            break;
        }
        bytes += size;
        batches.push(batch);
    }
    Ok((columns, batches, cut))
}

/// Planning errors are the user's (400, with DataFusion's message); resource limits too;
/// anything else is ours.
fn sql_error(error: DataFusionError, shared: usize) -> QueryError {
    match error.find_root() {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => {
            QueryError::BadRequest(format!("SQL: {}", error.find_root()))
        }
        DataFusionError::ResourcesExhausted(message) => QueryError::BadRequest(format!(
            "SQL: the query needs more memory than is free of the {} MiB that this node's \
             SQL queries share: {message}",
            shared >> 20
        )),
        // A file that is gone or damaged for good, or storage that did not answer.
        _ => match unreadable_file(&error) {
            Some(Unreadable::Lost { path, problem }) => QueryError::DataLost(format!(
                "SQL: the data file {path} is {problem}: its rows cannot be read \
                 (`porthole repair` takes such files out of the table)"
            )),
            Some(Unreadable::DamagedPage(cause)) => QueryError::DataLost(format!(
                "SQL: a data file has a page that is not readable Parquet ({cause}): its \
                 rows cannot be read (`porthole repair --deep --dry-run` names the file, \
                 `porthole repair --deep` takes it out of the table)"
            )),
            Some(Unreadable::NotAnswered) => {
                tracing::warn!(%error, "SQL: a data file could not be read");
                QueryError::UnreadableFile(
                    "SQL: a data file could not be read (the server log says which and why); \
                     if `porthole repair --dry-run` lists it as missing or damaged, \
                     `porthole repair` takes it out of the table"
                        .into(),
                )
            }
            None if users_mistake(error.find_root()) => {
                QueryError::BadRequest(format!("SQL: {}", error.find_root()))
            }
            None => QueryError::Internal(error.to_string()),
        },
    }
}

/// Errors of evaluating what the query asked for (a cast that cannot be made, a regular
/// expression that does not compile, a division by zero, a value too large to build),
/// not of reading the tables.
fn users_mistake(root: &DataFusionError) -> bool {
    use arrow::error::ArrowError;
    match root {
        DataFusionError::Execution(_) => true,
        DataFusionError::ArrowError(error, _) => matches!(
            error.as_ref(),
            ArrowError::CastError(_)
                | ArrowError::ParseError(_)
                | ArrowError::ComputeError(_)
                | ArrowError::InvalidArgumentError(_)
                | ArrowError::DivideByZero
                | ArrowError::ArithmeticOverflow(_)
                | ArrowError::OffsetOverflowError(_)
                | ArrowError::DictionaryKeyOverflowError
        ),
        _ => false,
    }
}

/// Why DataFusion could not read a data file.
#[derive(Debug)]
enum Unreadable {
    /// Gone from storage, or not readable Parquet: retrying does not help.
    Lost { path: String, problem: String },
    /// A page of a file whose footer was read is not readable Parquet (DataFusion does
    /// not say which file): retrying does not help.
    DamagedPage(String),
    /// Storage did not answer as asked (or answered in a way not known to be lasting).
    NotAnswered,
}

/// Whether `error` (or one it wraps) is DataFusion's failure to read a data file, and
/// why: the object store's own not-found error where DataFusion keeps it, or else read
/// from the text DataFusion keeps of a footer's failure: "Failed to fetch metadata
/// for file {path}: {cause}", where the cause is an object store's error ("Object Store
/// error: Object at location … not found: …" for a missing file) or Parquet's (the
/// file's bytes are no Parquet footer; Parquet's "External:" errors are storage's).
/// A page that does not decode comes as Arrow's Parquet error, from decoding bytes
/// already fetched, as the storage crate's own reader reports it.
fn unreadable_file(error: &DataFusionError) -> Option<Unreadable> {
    if let Some(path) = porthole_storage::missing_object(error) {
        return Some(Unreadable::Lost {
            path: path.to_owned(),
            problem: "missing from storage".into(),
        });
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(arrow::error::ArrowError::ParquetError(cause)) = error.downcast_ref() {
            return Some(Unreadable::DamagedPage(cause.clone()));
        }
        if let Some(parquet::errors::ParquetError::General(message)) = error.downcast_ref()
            && let Some(failure) = message.strip_prefix("Failed to fetch metadata for file ")
        {
            let Some((path, cause)) = failure.split_once(": ") else {
                return Some(Unreadable::NotAnswered);
            };
            let path = path.to_owned();
            return Some(
                if let Some(store) = cause.strip_prefix("Object Store error: ")
                    && store.starts_with("Object at location ")
                    && store.contains(" not found: ")
                {
                    Unreadable::Lost {
                        path,
                        problem: "missing from storage".into(),
                    }
                } else if let Some(parquet) = cause.strip_prefix("Parquet error: ")
                    && !parquet.starts_with("External: ")
                {
                    Unreadable::Lost {
                        path,
                        problem: format!("not readable Parquet ({parquet})"),
                    }
                } else {
                    Unreadable::NotAnswered
                },
            );
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Storage with empty tables in `dir`: the queries below read only `range()`.
    async fn empty_storage(dir: &std::path::Path) -> Arc<Storage> {
        let location = porthole_storage::Location::parse(None, dir).unwrap();
        Arc::new(Storage::open(location).await.unwrap())
    }

    /// Storage with one logs file of 2000 records in `dir`; the file's path.
    async fn storage_with_a_logs_file(dir: &std::path::Path) -> (Arc<Storage>, std::path::PathBuf) {
        use porthole_proto::common::{AnyValue, any_value::Value as Any};
        use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
        let storage = empty_storage(dir).await;
        let record = |i: u64| LogRecord {
            time_unix_nano: 1_765_000_000_000_000_000 + i,
            body: Some(AnyValue {
                value: Some(Any::StringValue(format!(
                    "request {i} failed: {}",
                    "x".repeat(i as usize % 97)
                ))),
            }),
            ..Default::default()
        };
        let request = porthole_proto::logs_service::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: (0..2000).map(record).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let batch = porthole_storage::convert_logs(&request, 0).batch;
        storage
            .append(porthole_storage::Signal::Logs, batch)
            .await
            .unwrap();
        let files: Vec<_> = walkdir(dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        (storage, files[0].clone())
    }

    fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(walkdir(&path));
            } else {
                found.push(path);
            }
        }
        found
    }

    /// A data file that is gone, or whose footer or a page is not Parquet, is lost data
    /// (500 `data_lost`, retrying does not help), named where DataFusion says which:
    /// neither storage that did not answer (503) nor our bug (500 `internal`).
    #[tokio::test]
    async fn a_missing_or_damaged_data_file_is_lost_data_and_named() {
        let query = "SELECT count(*) AS n FROM logs WHERE body LIKE '%failed%'";
        for (case, expected) in [
            (
                "missing",
                "is missing from storage: its rows cannot be read",
            ),
            (
                "footer",
                "is not readable Parquet (Parquet error: Invalid Parquet file. Corrupt footer)",
            ),
            (
                "page",
                "a data file has a page that is not readable Parquet",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (storage, file) = storage_with_a_logs_file(dir.path()).await;
            let limits = SqlLimits::default();
            let bytes = std::fs::read(&file).unwrap();
            match case {
                "missing" => std::fs::remove_file(&file).unwrap(),
                "footer" => std::fs::write(&file, vec![b'x'; bytes.len()]).unwrap(),
                _ => {
                    // Read once: DataFusion keeps the footer, so only the pages are read again.
                    let rows = run_sql(&storage, query, &limits).await.unwrap().rows;
                    assert_eq!(rows[0]["n"], 2000);
                    let mut damaged = bytes.clone();
                    damaged[4..bytes.len() / 2].fill(b'x');
                    std::fs::write(&file, damaged).unwrap();
                }
            }
            let error = run_sql(&storage, query, &limits).await.unwrap_err();
            let QueryError::DataLost(message) = &error else {
                panic!("{case}: {error:?}");
            };
            assert!(message.contains(expected), "{case}: {message}");
            let named = file.file_name().unwrap().to_str().unwrap();
            assert_eq!(message.contains(named), case != "page", "{case}: {message}");
            assert!(message.contains("`porthole repair"), "{case}: {message}");
        }
    }

    #[tokio::test]
    async fn every_query_with_the_same_limits_draws_on_one_memory_pool() {
        use deltalake::datafusion::execution::memory_pool::MemoryConsumer;
        let dir = tempfile::tempdir().unwrap();
        let storage = empty_storage(dir.path()).await;
        let limits = SqlLimits::new(16 << 20);
        let sql = "SELECT v % 100000 AS k, count(*) AS n FROM range(300000) AS t(v) \
                   GROUP BY k ORDER BY n DESC, k LIMIT 1";
        let alone = run_sql(&storage, sql, &limits.clone()).await.unwrap();
        assert_eq!(alone.rows[0]["n"], 3);
        // Another query holds all but 1 MiB of the pool: this one no longer fits.
        let other = MemoryConsumer::new("another query").register(&limits.runtime.memory_pool);
        other.try_grow(15 << 20).unwrap();
        let error = run_sql(&storage, sql, &limits.clone()).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("16 MiB that this node's SQL queries share"),
            "{error}"
        );
        drop(other);
        assert_eq!(
            run_sql(&storage, sql, &limits).await.unwrap().rows,
            alone.rows
        );
    }

    /// A query stopped at its timeout is stopped for real: its task on the query threads is
    /// aborted, so it neither runs on for nobody nor keeps its share of the shared pool.
    #[tokio::test]
    async fn a_query_stopped_at_its_timeout_gives_its_memory_back_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = empty_storage(dir.path()).await;
        let limits = SqlLimits {
            timeout: Duration::from_millis(300),
            ..SqlLimits::new(256 << 20)
        };
        // Tens of seconds of grouping in a debug build: far past the timeout.
        let sql = "SELECT v % 200000 AS k, count(*) AS n FROM range(1000000000) AS t(v) GROUP BY k";
        let error = run_sql(&storage, sql, &limits).await.unwrap_err();
        assert!(
            error.to_string().contains("ran longer than 300ms"),
            "{error}"
        );
        let pool = &limits.runtime.memory_pool;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.reserved() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the stopped query still holds {} bytes of the pool",
                pool.reserved()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Ints past what a double holds exactly come as strings of their digits, at any depth
    /// (JavaScript would round them); those within it, and floats, stay numbers.
    #[tokio::test]
    async fn ints_past_2_to_the_53_come_as_their_digits() {
        let dir = tempfile::tempdir().unwrap();
        let storage = empty_storage(dir.path()).await;
        let sql = "SELECT 9007199254740993 AS big, 9007199254740991 AS edge, \
                   -9007199254740993 AS negative, CAST(1 AS BIGINT) AS small, \
                   CAST(18446744073709551615 AS BIGINT UNSIGNED) AS unsigned, \
                   [9007199254740993, 7] AS list, named_struct('id', 9007199254740992) AS s, \
                   CAST(1e17 AS DOUBLE) AS float, count(*) AS n";
        let rows = run_sql(&storage, sql, &SqlLimits::default())
            .await
            .unwrap()
            .rows;
        let want = serde_json::json!({
            "big": "9007199254740993",
            "edge": 9007199254740991_i64,
            "negative": "-9007199254740993",
            "small": 1,
            "unsigned": "18446744073709551615",
            "list": ["9007199254740993", 7],
            "s": {"id": "9007199254740992"},
            "float": 1e17,
            "n": 1,
        });
        assert_eq!(serde_json::Value::Object(rows[0].clone()), want);
    }

    /// The message of the 400 that `sql` gets.
    async fn refused(storage: &Arc<Storage>, sql: &str, limits: &SqlLimits) -> String {
        match run_sql(storage, sql, limits).await {
            Err(QueryError::BadRequest(message)) => message,
            other => panic!("{sql}: {:?}", other.map(|r| r.rows)),
        }
    }

    /// Functions whose result can be far larger than their arguments are stopped before
    /// they build it: each of these asked for 1–2 GB in one call, and `array_repeat(1,
    /// 1000000000)` (8 GB) got `porthole serve` killed by the kernel.
    #[tokio::test]
    async fn functions_that_build_long_values_are_stopped_before_they_take_the_memory() {
        let dir = tempfile::tempdir().unwrap();
        let storage = empty_storage(dir.path()).await;
        for sql in [
            "SELECT array_repeat(1, 200000000)",
            "SELECT list_repeat('x', 100000000)",
            "SELECT length(repeat('x', 1000000000))",
            "SELECT length(lpad('', 300000000))",
            "SELECT length(rpad('a', 300000000, 'b'))",
            "SELECT cardinality(range(1, 200000000))",
            "SELECT cardinality(generate_series(DATE '2000-01-01', DATE '2100-01-01', INTERVAL '1 second'))",
            "SELECT cardinality(generate_series(TIMESTAMP '2026-01-01T00:00:00', TIMESTAMP '2026-01-02T00:00:00', INTERVAL '1 millisecond'))",
            "SELECT cardinality(array_resize([1], 200000000))",
            "SELECT length(replace(repeat('ab', 1000000), '', repeat('x', 1000)))",
            "SELECT length(regexp_replace(repeat('ab', 1000000), '', repeat('x', 1000), 'g'))",
            "SELECT length(regexp_replace(repeat('ab', 1000000), 'b', '$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0', 'g'))",
        ] {
            let error = refused(&storage, sql, &SqlLimits::default()).await;
            assert!(
                error.contains("would build") && error.contains("64 MiB"),
                "{sql}: {error}"
            );
        }
    }

    /// The bounded functions still give what the function gives: over rows in slices
    /// (oldest rows first, none lost or moved), and up to the bound.
    #[tokio::test]
    async fn bounded_functions_answer_as_before_over_many_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, _) = storage_with_a_logs_file(dir.path()).await;
        let limits = SqlLimits::default();
        // ~7 MB of repeats: built in two slices.
        let sql = "SELECT bool_and(substr(repeat(body, 50), 1 + 49 * length(body)) = body \
                   AND length(repeat(body, 50)) = 50 * length(body)) AS same, \
                   sum(length(lpad(body, 40, '·'))) AS padded, \
                   max(replace(body, 'failed', 'ok')) AS replaced, \
                   max(regexp_replace(body, '([0-9]+)', '<$1>')) AS tagged, \
                   sum(cardinality(range(length(body)))) AS ranged, count(*) AS n FROM logs";
        let rows = run_sql(&storage, sql, &limits).await.unwrap().rows;
        let row = &rows[0];
        assert_eq!(row["same"], true, "{row:?}");
        assert_eq!(row["padded"], 40 * 2000, "{row:?}");
        assert_eq!(row["n"], 2000);
        assert!(
            row["replaced"].as_str().unwrap().contains(" ok: "),
            "{row:?}"
        );
        assert!(
            row["tagged"].as_str().unwrap().starts_with("request <"),
            "{row:?}"
        );
        assert!(row["ranged"].as_i64().unwrap() > 2000 * 14, "{row:?}");
        // Each row is small, but together they are more than one call may build.
        let sql = "SELECT max(length(repeat(body, 2000))) FROM logs";
        let error = refused(&storage, sql, &limits).await;
        assert!(error.contains("repeat would build"), "{error}");
    }

    #[tokio::test]
    async fn a_query_makes_at_most_so_many_calls_of_functions_that_build_long_values() {
        let dir = tempfile::tempdir().unwrap();
        let storage = empty_storage(dir.path()).await;
        let calls = |n: usize| {
            let calls: Vec<String> = (0..n).map(|i| format!("repeat('a', {i})")).collect();
            format!("SELECT concat({})", calls.join(", "))
        };
        let sql = calls(crate::sql_bounds::MAX_GROWING_CALLS);
        assert!(run_sql(&storage, &sql, &SqlLimits::default()).await.is_ok());
        let sql = format!(
            "WITH t AS ({}) SELECT lpad('a', 3) FROM t",
            calls(crate::sql_bounds::MAX_GROWING_CALLS)
        );
        let error = refused(&storage, &sql, &SqlLimits::default()).await;
        assert!(
            error.contains("9 times") && error.contains("at most 8"),
            "{error}"
        );
    }

    /// A window without bounds holds all of its input; that input now counts against the
    /// pool, so a window over more rows than the pool holds is refused like a sort would be
    /// (`sum(value) OVER ()` over 10^8 rows took 2.4 GB outside the pool).
    #[tokio::test]
    async fn an_unbounded_window_draws_on_the_memory_pool() {
        let dir = tempfile::tempdir().unwrap();
        let storage = empty_storage(dir.path()).await;
        let limits = SqlLimits::new(16 << 20);
        let sql = "SELECT max(s) AS s FROM (SELECT sum(value) OVER () AS s \
                   FROM generate_series(1, 3000000))";
        let error = run_sql(&storage, sql, &limits).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("16 MiB that this node's SQL queries share"),
            "{error}"
        );
        let sql = "SELECT max(s) AS s FROM (SELECT sum(value) OVER () AS s \
                   FROM generate_series(1, 1000))";
        let rows = run_sql(&storage, sql, &limits).await.unwrap().rows;
        assert_eq!(rows[0]["s"], 500500);
        assert_eq!(limits.runtime.memory_pool.reserved(), 0);
    }

    /// Mistakes in what a query computes are the user's: 400 with DataFusion's words, not
    /// 500 "internal error".
    #[tokio::test]
    async fn errors_of_evaluating_the_query_are_bad_requests() {
        let dir = tempfile::tempdir().unwrap();
        let storage = empty_storage(dir.path()).await;
        for (sql, says) in [
            ("SELECT 1 LIMIT 18446744073709551615", "Can't cast value"),
            ("SELECT regexp_match('a', '(')", "unclosed group"),
            ("SELECT CAST('x' AS INT)", "Cannot cast string 'x'"),
            ("SELECT 1 / 0", "Divide by zero"),
        ] {
            let error = refused(&storage, sql, &SqlLimits::default()).await;
            assert!(error.contains(says), "{sql}: {error}");
        }
    }

    /// While SQL queries hold every SQL thread with a batch that cannot be stopped (a
    /// `levenshtein` of two long strings: seconds), work on the query threads (a log
    /// search, an alert's count) still runs. It waited for them when SQL shared its threads.
    #[tokio::test(flavor = "multi_thread")]
    async fn sql_that_holds_its_threads_does_not_hold_up_the_query_threads() {
        let dir = tempfile::tempdir().unwrap();
        let storage = empty_storage(dir.path()).await;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let running: Vec<_> = (0..threads)
            .map(|_| {
                let storage = storage.clone();
                tokio::spawn(async move {
                    let sql = "SELECT levenshtein(repeat('a', 15000), repeat('b', 15000)) AS d";
                    run_sql(&storage, sql, &SqlLimits::default()).await
                })
            })
            .collect();
        // Tables opened, planned and computing (the call is folded into a constant as the
        // plan is made); the call takes several seconds more.
        tokio::time::sleep(Duration::from_secs(3)).await;
        crate::threads::on_query_threads(async { Ok(()) })
            .await
            .unwrap();
        assert!(
            running.iter().all(|sql| !sql.is_finished()),
            "the query threads waited for the SQL queries"
        );
        for sql in running {
            assert_eq!(sql.await.unwrap().unwrap().rows[0]["d"], 15000);
        }
    }

    #[test]
    fn only_single_queries_pass() {
        assert!(ensure_read_only("SELECT count(*) FROM logs").is_ok());
        assert!(ensure_read_only("WITH x AS (SELECT 1) SELECT * FROM x").is_ok());
        for bad in [
            "DELETE FROM logs",
            "DROP TABLE logs",
            "CREATE TABLE t AS SELECT 1",
            "INSERT INTO logs VALUES (1)",
            "SELECT 1; SELECT 2",
            "",
            "SELEKT 1",
        ] {
            assert!(
                matches!(ensure_read_only(bad), Err(QueryError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
