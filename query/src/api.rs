//! The `/api/v1` routes. Handlers parse and validate parameters, call the domain code, and
//! return JSON; [`QueryError`] becomes `{"error": {"code", "message"}}` with its status.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use porthole_storage::{Signal, Storage};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::openapi::{
    ApiDoc, ErrorBody, ErrorDetail, Histogram, HistogramBucket, LogsPage, Trace, TraceList,
    TraceListItem,
};
use crate::search::{Cursor, FILTER_FIELDS, LogSearch, histogram, search_logs, trace_hits};
use crate::sql::{SqlLimits, SqlResult, run_sql};
use crate::tail::TailSource;
use crate::threads::on_query_threads;
use crate::time::{format_nanos, now_micros, parse_time};
use crate::traces::{TraceSearch, search_traces};
use crate::{QueryError, rows};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 5_000;
const DEFAULT_RANGE_MICROS: i64 = 24 * 3_600 * 1_000_000;

#[derive(Clone)]
pub struct QueryState {
    pub storage: Arc<Storage>,
    pub sql_limits: SqlLimits,
    pub prom_limits: crate::promql::PromLimits,
    pub prom_metrics: crate::promql::PromMetrics,
    pub tail: TailSource,
    pub snapshots: crate::snapshot::SnapshotSource,
    /// How many queries run at once, for the whole process.
    pub slots: crate::admission::QuerySlots,
    /// How long a search, histogram, trace lookup, version or inventory answer may take
    /// (`--query-timeout`); SQL and PromQL have their own limits.
    pub query_timeout: std::time::Duration,
}

pub fn router(state: QueryState) -> Router {
    let metrics = crate::promql::router(
        state.storage.clone(),
        state.prom_limits.clone(),
        state.prom_metrics.clone(),
    );
    // The routes that do this node's work take a query slot; a tail or a snapshot request
    // waits on the world and takes none.
    // SQL and PromQL stop themselves at their own limits (30 s, --promql-timeout), with
    // what they were doing in the message; the rest are stopped at --query-timeout.
    let queries = Router::new()
        .route("/api/v1/logs", get(logs))
        .route("/api/v1/logs/histogram", get(logs_histogram))
        .route("/api/v1/traces", get(traces))
        .route("/api/v1/traces/{trace_id}", get(trace))
        .route("/api/v1/versions", get(crate::versions::versions))
        .route("/api/v1/inventory", get(crate::inventory::inventory))
        .route_layer(axum::middleware::from_fn_with_state(
            state.query_timeout,
            crate::admission::within,
        ))
        .route("/api/v1/sql", post(sql))
        .with_state(state.clone())
        .merge(metrics)
        .route_layer(axum::middleware::from_fn_with_state(
            state.slots.clone(),
            crate::admission::QuerySlots::admit,
        ));
    Router::new()
        .route("/api/v1/logs/tail", get(logs_tail))
        .route(
            "/api/v1/snapshots",
            get(crate::snapshot::list).post(crate::snapshot::take),
        )
        .route("/api/v1/snapshots/{id}", get(crate::snapshot::get))
        .route("/api/v1/openapi.json", get(openapi))
        .with_state(state)
        .merge(queries)
        // A bug in one query answers that query with a 500, never a dropped connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            QueryError::Internal("handler panicked".into()).into_response()
        }))
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            QueryError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            QueryError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            QueryError::Misconfigured(_) | QueryError::UnreadableFile(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            QueryError::Overloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            QueryError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            QueryError::Unavailable(cause) => {
                tracing::warn!(%cause, "query failed: storage unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            QueryError::DataLost(cause) => {
                tracing::error!(%cause, "query failed: data file unreadable");
                (StatusCode::INTERNAL_SERVER_ERROR, "data_lost")
            }
            QueryError::Internal(cause) => {
                tracing::error!(%cause, "query failed: internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, QueryError::Overloaded(_)) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

/// Query-string parameters shared by search and histogram; unknown names are refused so a
/// typo is not silently ignored.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchParams {
    /// Lucene-style query over the body and attributes: terms, `"phrases"`, AND/OR/NOT,
    /// `field:value`, ranges like `status:>=500`, wildcards. Empty matches everything.
    q: Option<String>,
    /// Exact service name.
    service: Option<String>,
    namespace: Option<String>,
    pod: Option<String>,
    container: Option<String>,
    version: Option<String>,
    /// TRACE, DEBUG, INFO, WARN, ERROR or FATAL.
    severity: Option<String>,
    /// RFC 3339, unix nanoseconds, or relative (`now-15m`); default: `end` minus 24 hours.
    start: Option<String>,
    /// Like `start`; default: now.
    end: Option<String>,
    /// Rows per page, 1 to 5000 (default 100).
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Histogram only: bucket width, like `30s` or `5m` (at least 1ms).
    step: Option<String>,
    /// Histogram only: also count each bucket per value of this field (`severity`,
    /// `service`, `namespace`, `pod`, `container` or `version`).
    by: Option<String>,
    /// Search only: `backward` (newest first, the default) or `forward` (oldest first),
    /// as Loki's `direction`. A `next_cursor` goes on in its page's direction.
    direction: Option<String>,
}

/// `start`/`end` (default: the last 24 hours) as microseconds, checked.
pub(crate) fn time_range(
    start: &Option<String>,
    end: &Option<String>,
) -> Result<(i64, i64), QueryError> {
    let now = now_micros();
    let time = |value: &Option<String>, default: i64, name: &str| match value {
        Some(text) => {
            parse_time(text, now).map_err(|e| QueryError::BadRequest(format!("{name}: {e}")))
        }
        None => Ok(default),
    };
    let end = time(end, now + 1, "end")?;
    let start = time(start, end - DEFAULT_RANGE_MICROS, "start")?;
    if start >= end {
        return Err(QueryError::BadRequest(format!(
            "start ({}) must be before end ({})",
            format_nanos(start.saturating_mul(1000)),
            format_nanos(end.saturating_mul(1000))
        )));
    }
    Ok((start, end))
}

fn parse_limit(limit: &Option<String>) -> Result<usize, QueryError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                QueryError::BadRequest(format!(
                    "limit {text:?} must be a number from 1 to {MAX_LIMIT}"
                ))
            }),
    }
}

impl SearchParams {
    fn to_search(&self) -> Result<LogSearch, QueryError> {
        let (start, end) = time_range(&self.start, &self.end)?;
        let limit = parse_limit(&self.limit)?;
        let filters = FILTER_FIELDS
            .iter()
            .zip([
                &self.service,
                &self.namespace,
                &self.pod,
                &self.container,
                &self.version,
                &self.severity,
            ])
            .filter_map(|(name, value)| Some((name.to_string(), value.clone()?)))
            .collect();
        let forward = match self.direction.as_deref() {
            None | Some("backward") => false,
            Some("forward") => true,
            Some(other) => {
                return Err(QueryError::BadRequest(format!(
                    "direction {other:?} must be backward (newest first) or forward (oldest first)"
                )));
            }
        };
        Ok(LogSearch {
            query: self.q.clone().unwrap_or_default(),
            filters,
            start_micros: start,
            end_micros: end,
            limit,
            cursor: self.cursor.as_deref().map(Cursor::decode).transpose()?,
            forward,
        })
    }
}

/// The query-string parameters as `T`. An empty value (`?end=`, as HTML forms send) means
/// the parameter was not given; an unknown name is refused.
pub(crate) fn query_params<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T, QueryError> {
    let given: serde_json::Map<String, Value> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
            .collect();
    serde_json::from_value(Value::Object(given))
        .map_err(|e| QueryError::BadRequest(format!("query string: {e}")))
}

/// Log search, newest first (oldest first with `direction=forward`), a page at a time.
#[utoipa::path(get, path = "/api/v1/logs", params(SearchParams), responses(
        (status = 200, description = "A page of matching records", body = LogsPage),
        (status = 400, description = "The request is wrong; the message says how", body = ErrorBody),
        (status = 401, description = "A token is required and was missing or wrong", body = ErrorBody),
        (status = 503, description = "Storage is unavailable", body = ErrorBody),
        (status = 500, description = "`data_lost`: a data file the table lists is missing or damaged, so its rows cannot be read (the message names it and the `porthole repair` that takes it out); `internal`: a bug", body = ErrorBody),
        (status = 504, description = "Ran past --query-timeout and was stopped", body = ErrorBody),
))]
pub(crate) async fn logs(
    State(state): State<QueryState>,
    uri: Uri,
) -> Result<Json<LogsPage>, QueryError> {
    let params: SearchParams = query_params(&uri)?;
    if params.step.is_some() {
        return Err(QueryError::BadRequest(
            "step is a histogram parameter".into(),
        ));
    }
    if params.by.is_some() {
        return Err(QueryError::BadRequest("by is a histogram parameter".into()));
    }
    let search = params.to_search()?;
    Ok(Json(log_page(&state.storage, &search).await?))
}

/// One page of a log search: its rows, each with its `cursor`, and the cursor to pass for
/// the next page when more match.
pub(crate) async fn log_page(
    storage: &Arc<Storage>,
    search: &LogSearch,
) -> Result<LogsPage, QueryError> {
    let (mut hits, mut more) = search_logs(storage, search).await?;
    more |= crate::search::fit_page(storage, Signal::Logs, &mut hits).await?;
    let by_file = crate::search::rows_by_file(&hits);
    // Each file's rows in one read, the files at once, each decoded on its own task (the
    // query threads share the decompression), aborted if this request is dropped.
    let reads = by_file.into_iter().map(|(file, mut wanted)| {
        let storage = Arc::clone(storage);
        let file = file.to_string();
        on_query_threads(async move {
            wanted.sort_unstable();
            let batch = storage.read_rows(Signal::Logs, &file, &wanted).await?;
            if batch.num_rows() != wanted.len() {
                return Err(QueryError::Internal(format!(
                    "{file} gave {} of the {} rows its index names",
                    batch.num_rows(),
                    wanted.len()
                )));
            }
            let objects = rows::batch_to_json(&batch)?;
            let rows = wanted
                .into_iter()
                .zip(objects)
                .map(|(row, object)| (row, rows::log_json(&object)));
            Ok((file, rows.collect::<Vec<_>>()))
        })
    });
    let mut fetched: BTreeMap<String, BTreeMap<u64, Value>> = BTreeMap::new();
    for (file, rows) in futures::future::try_join_all(reads).await? {
        fetched.insert(file, rows.into_iter().collect());
    }
    let rows: Vec<Value> = hits
        .iter()
        .filter_map(|h| {
            let mut row = fetched.get_mut(h.file.as_str())?.remove(&h.row)?;
            row["cursor"] = Value::from(h.cursor().encode());
            Some(row)
        })
        .collect();
    let next_cursor = more
        .then(|| hits.last())
        .flatten()
        .map(|h| h.cursor().encode());
    Ok(LogsPage { rows, next_cursor })
}

/// Counts of matching records per time bucket, from the indexes alone.
#[utoipa::path(get, path = "/api/v1/logs/histogram", params(SearchParams), responses(
        (status = 200, description = "Counts per bucket", body = Histogram),
        (status = 400, description = "The request is wrong; the message says how", body = ErrorBody),
        (status = 401, description = "A token is required and was missing or wrong", body = ErrorBody),
        (status = 503, description = "Storage is unavailable", body = ErrorBody),
        (status = 500, description = "`data_lost`: a data file the table lists is missing or damaged, so its rows cannot be read (the message names it and the `porthole repair` that takes it out); `internal`: a bug", body = ErrorBody),
        (status = 504, description = "Ran past --query-timeout and was stopped", body = ErrorBody),
))]
pub(crate) async fn logs_histogram(
    State(state): State<QueryState>,
    uri: Uri,
) -> Result<Json<Histogram>, QueryError> {
    let params: SearchParams = query_params(&uri)?;
    if params.direction.is_some() {
        return Err(QueryError::BadRequest(
            "direction is a search parameter; a histogram's buckets are in time order".into(),
        ));
    }
    let search = params.to_search()?;
    let step = match &params.step {
        None => ((search.end_micros - search.start_micros) / 60).max(1_000_000),
        Some(text) => humantime::parse_duration(text)
            .ok()
            .map(|d| d.as_micros() as i64)
            .filter(|micros| *micros >= 1_000)
            .ok_or_else(|| {
                QueryError::BadRequest(format!(
                    "step {text:?} must be a duration of at least 1ms, like 30s or 5m"
                ))
            })?,
    };
    let counts = histogram(&state.storage, &search, step, params.by.as_deref()).await?;
    let total: u64 = counts.buckets.iter().map(|(_, n)| n).sum();
    let buckets = counts
        .buckets
        .into_iter()
        .enumerate()
        .map(|(i, (start, count))| HistogramBucket {
            start: crate::time::format_nanos(start * 1_000),
            count,
            by: params.by.is_some().then(|| {
                counts
                    .by
                    .iter()
                    .filter(|(_, per_bucket)| per_bucket[i] > 0)
                    .map(|(value, per_bucket)| (value.clone(), per_bucket[i]))
                    .collect()
            }),
        })
        .collect();
    Ok(Json(Histogram {
        step_seconds: step as f64 / 1e6,
        total,
        buckets,
    }))
}

/// Query-string parameters of live tail: the search's query and filters, no time range.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TailParams {
    /// The query language of `/api/v1/logs`; empty follows every record.
    q: Option<String>,
    service: Option<String>,
    namespace: Option<String>,
    pod: Option<String>,
    container: Option<String>,
    version: Option<String>,
    severity: Option<String>,
}

/// Live tail: matching records as they are committed, as Server-Sent Events (each a
/// `message` whose data is a log row and whose `id` is its cursor; a `dropped` event ends
/// a subscriber that fell behind, or every one when the server shuts down).
///
/// A client that reconnects with the `Last-Event-ID` header (EventSource does it by
/// itself) first gets the matching records committed after that one while it was away,
/// oldest first, each once; past 10 000 of them a `missed` event says from when to search
/// for the rest.
#[utoipa::path(get, path = "/api/v1/logs/tail", params(TailParams, ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received: resume after it")), responses(
        (status = 200, description = "An endless event stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "The request is wrong; the message says how", body = ErrorBody),
        (status = 401, description = "A token is required and was missing or wrong", body = ErrorBody),
        (status = 503, description = "Storage is unavailable", body = ErrorBody),
        (status = 504, description = "Resuming took longer than --query-timeout", body = ErrorBody),
))]
pub(crate) async fn logs_tail(
    State(state): State<QueryState>,
    headers: axum::http::HeaderMap,
    uri: Uri,
) -> Result<Response, QueryError> {
    let resume_after = headers
        .get("last-event-id")
        .map(|id| {
            let id = id.to_str().unwrap_or_default();
            Cursor::decode(id).map_err(|_| {
                QueryError::BadRequest(format!(
                    "Last-Event-ID {id:?} is not the id of an event this server sent"
                ))
            })
        })
        .transpose()?;
    let params: TailParams = query_params(&uri)?;
    let filters: Vec<(String, String)> = FILTER_FIELDS
        .iter()
        .zip([
            params.service,
            params.namespace,
            params.pod,
            params.container,
            params.version,
            params.severity,
        ])
        .filter_map(|(name, value)| Some((name.to_string(), value?)))
        .collect();
    let query = params.q.unwrap_or_default();
    // Following starts first, so nothing committed while the resuming search runs is lost.
    let subscriber = state.tail.subscribe(&query, filters.clone()).await?;
    let resumed = match resume_after {
        Some(after) => {
            // A search: after a restart every client resumes at once, and each holds up to
            // 10 000 records until its stream starts, so the query slots bound them.
            let _slot = state
                .slots
                .take()
                .await
                .ok_or_else(|| QueryError::Overloaded(crate::admission::REFUSED.to_string()))?;
            let storage = Arc::clone(&state.storage);
            let most = crate::tail::MAX_RESUMED_RECORDS;
            let resuming =
                async move { crate::tail::resume(&storage, &query, filters, after, most).await };
            crate::admission::on_query_threads_within(state.query_timeout, resuming).await?
        }
        None => crate::tail::Resumed::fresh(),
    };
    Ok(crate::tail::sse(resumed, subscriber, state.tail.closing.clone()).into_response())
}

/// Query-string parameters of the trace search.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TraceParams {
    /// The query language of `/api/v1/logs`, over span names and attributes.
    q: Option<String>,
    /// A service one of the trace's matching spans belongs to.
    service: Option<String>,
    /// A span name, matched as a phrase.
    name: Option<String>,
    /// OK, ERROR or UNSET.
    status: Option<String>,
    /// Spans at least this long, like `250ms`.
    min_duration: Option<String>,
    /// Spans at most this long.
    max_duration: Option<String>,
    /// As for `/api/v1/logs`.
    start: Option<String>,
    end: Option<String>,
    /// Traces to return, 1 to 5000 (default 100).
    limit: Option<String>,
}

fn duration_ns(value: &Option<String>, name: &str) -> Result<Option<i64>, QueryError> {
    value
        .as_deref()
        .map(|text| {
            humantime::parse_duration(text)
                .ok()
                .and_then(|d| i64::try_from(d.as_nanos()).ok())
                .ok_or_else(|| {
                    QueryError::BadRequest(format!(
                        "{name} {text:?} must be a duration like 250ms or 2s"
                    ))
                })
        })
        .transpose()
}

/// Trace search: the newest traces with a span that matches, summarised.
#[utoipa::path(get, path = "/api/v1/traces", params(TraceParams), responses(
        (status = 200, description = "Matching traces, newest first", body = TraceList),
        (status = 400, description = "The request is wrong; the message says how", body = ErrorBody),
        (status = 401, description = "A token is required and was missing or wrong", body = ErrorBody),
        (status = 503, description = "Storage is unavailable", body = ErrorBody),
        (status = 500, description = "`data_lost`: a data file the table lists is missing or damaged, so its rows cannot be read (the message names it and the `porthole repair` that takes it out); `internal`: a bug", body = ErrorBody),
        (status = 504, description = "Ran past --query-timeout and was stopped", body = ErrorBody),
))]
pub(crate) async fn traces(
    State(state): State<QueryState>,
    uri: Uri,
) -> Result<Json<TraceList>, QueryError> {
    let params: TraceParams = query_params(&uri)?;
    let (start, end) = time_range(&params.start, &params.end)?;
    let status = params
        .status
        .as_deref()
        .map(|s| match s.to_ascii_uppercase().as_str() {
            status @ ("OK" | "ERROR" | "UNSET") => Ok(status.to_string()),
            _ => Err(QueryError::BadRequest(format!(
                "status {s:?} must be OK, ERROR or UNSET"
            ))),
        })
        .transpose()?;
    let search = TraceSearch {
        query: params.q.unwrap_or_default(),
        service: params.service,
        filters: Vec::new(),
        name: params.name,
        status,
        min_duration_ns: duration_ns(&params.min_duration, "min_duration")?,
        max_duration_ns: duration_ns(&params.max_duration, "max_duration")?,
        start_micros: start,
        end_micros: end,
        limit: parse_limit(&params.limit)?,
    };
    let traces = search_traces(&state.storage, &search)
        .await?
        .into_iter()
        .map(|t| TraceListItem {
            trace_id: t.trace_id,
            root_name: t.root_name,
            root_service: t.root_service,
            start_time: crate::time::format_nanos(t.start_time_unix_nano),
            duration_ns: t.duration_ns,
            span_count: t.span_count,
            error_count: t.error_count,
            services: t.services,
        })
        .collect();
    Ok(Json(TraceList { traces }))
}

/// Every span of one trace.
#[utoipa::path(get, path = "/api/v1/traces/{trace_id}",
    params(("trace_id" = String, Path, description = "32 hex digits")),
    responses(
        (status = 200, description = "The trace's spans by start time (the earliest 10 000, and at most 32 MiB of them)", body = Trace),
        (status = 404, description = "No span of this trace is stored", body = ErrorBody),
        (status = 400, description = "The request is wrong; the message says how", body = ErrorBody),
        (status = 401, description = "A token is required and was missing or wrong", body = ErrorBody),
        (status = 503, description = "Storage is unavailable", body = ErrorBody),
        (status = 500, description = "`data_lost`: a data file the table lists is missing or damaged, so its rows cannot be read (the message names it and the `porthole repair` that takes it out); `internal`: a bug", body = ErrorBody),
        (status = 504, description = "Ran past --query-timeout and was stopped", body = ErrorBody),
))]
pub(crate) async fn trace(
    State(state): State<QueryState>,
    Path(trace_id): Path<String>,
) -> Result<Json<Trace>, QueryError> {
    let trace_id = trace_id.to_ascii_lowercase();
    if trace_id.len() != 32 || !trace_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(QueryError::BadRequest(format!(
            "trace id {trace_id:?} must be 32 hex digits"
        )));
    }
    let mut hits = trace_hits(&state.storage, &trace_id).await?;
    if hits.is_empty() {
        return Err(QueryError::NotFound(format!(
            "no spans of trace {trace_id}"
        )));
    }
    let span_count = hits.len() as u64;
    hits.truncate(crate::search::MAX_TRACE_SPANS);
    crate::search::fit_page(&state.storage, Signal::Spans, &mut hits).await?;
    let mut spans = Vec::with_capacity(hits.len());
    for (file, mut wanted) in crate::search::rows_by_file(&hits) {
        wanted.sort_unstable();
        let batch = state
            .storage
            .read_rows(Signal::Spans, file, &wanted)
            .await?;
        spans.extend(rows::batch_to_json(&batch)?.iter().map(rows::span_json));
    }
    spans.sort_by(|a, b| a["start_time"].as_str().cmp(&b["start_time"].as_str()));
    let truncated = (spans.len() as u64) < span_count;
    Ok(Json(Trace {
        trace_id,
        spans,
        span_count,
        truncated,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SqlRequest {
    /// One read-only query over the tables `logs`, `spans` and `metrics`.
    sql: String,
}

/// Read-only SQL (DataFusion) over the Delta tables, bounded in time, memory and rows.
#[utoipa::path(post, path = "/api/v1/sql", request_body = SqlRequest, responses(
        (status = 200, description = "The result rows", body = SqlResult),
        (status = 400, description = "The request is wrong; the message says how", body = ErrorBody),
        (status = 401, description = "A token is required and was missing or wrong", body = ErrorBody),
        (status = 503, description = "Storage is unavailable", body = ErrorBody),
        (status = 500, description = "`data_lost`: a data file the table lists is missing or damaged, so its rows cannot be read (the message names it and the `porthole repair` that takes it out); `internal`: a bug", body = ErrorBody),
))]
pub(crate) async fn sql(
    State(state): State<QueryState>,
    body: Result<Json<SqlRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SqlResult>, QueryError> {
    let Json(request) = body.map_err(|e| {
        QueryError::BadRequest(format!(
            "body must be {{\"sql\": \"…\"}}: {}",
            e.body_text()
        ))
    })?;
    let result = run_sql(&state.storage, &request.sql, &state.sql_limits).await?;
    Ok(Json(result))
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
