//! The Prometheus HTTP API under `/api/v1/metrics`: `query`, `query_range`, `series`,
//! `labels`, `label/{name}/values`, GET or form POST, same parameters and JSON as
//! Prometheus. The same routes are also served under `/api/v1/metrics/api/v1/…`, so a
//! Grafana Prometheus data source whose URL is `…/api/v1/metrics` works unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use porthole_storage::Storage;
use promql_parser::parser::Expr;
use serde_json::{Value as Json, json};
use tokio_util::sync::CancellationToken;

use super::eval::{Evaluator, selections};
use super::store::{LoadLimits, Loaded, Selection, load};
use super::value::{Labels, Value, format_value};
use super::{PromError, PromLimits, PromMetrics};

/// Points one series of a range query may have, as Prometheus limits it.
const MAX_POINTS_PER_SERIES: i64 = 11_000;
/// Series and label look-ups without `start` cover this far back.
const DEFAULT_METADATA_RANGE_MS: i64 = 24 * 3_600 * 1000;

#[derive(Clone)]
struct PromState {
    storage: Arc<Storage>,
    limits: PromLimits,
    metrics: PromMetrics,
}

pub fn router(storage: Arc<Storage>, limits: PromLimits, metrics: PromMetrics) -> Router {
    let routes = Router::new()
        .route("/query", get(query).post(query))
        .route("/query_range", get(query_range).post(query_range))
        .route("/series", get(series).post(series))
        .route("/labels", get(labels).post(labels))
        .route("/label/{name}/values", get(label_values))
        .route("/metadata", get(metadata))
        .route("/status/buildinfo", get(buildinfo))
        .with_state(PromState {
            storage,
            limits,
            metrics,
        });
    Router::new()
        .nest("/api/v1/metrics", routes.clone())
        .nest("/api/v1/metrics/api/v1", routes)
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        let status = match &self {
            PromError::BadData(_) => StatusCode::BAD_REQUEST,
            PromError::Execution(_) | PromError::Timeout(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PromError::Unavailable(e) => {
                tracing::warn!(error = %e, "metrics query: storage unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            PromError::Internal(e) => {
                tracing::error!(error = %e, "metrics query failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let body = json!({"status": "error", "errorType": kind, "error": self.to_string()});
        (status, axum::Json(body)).into_response()
    }
}

fn success(data: Json) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

/// The response for a query's result, counted by outcome.
fn answer(state: &PromState, result: Result<Json, PromError>) -> Response {
    match result {
        Ok(data) => {
            state.metrics.count("ok");
            success(data)
        }
        Err(e) => {
            state.metrics.count(e.kind());
            e.into_response()
        }
    }
}

/// Query-string and form-body parameters together, repeated keys kept.
struct Params(Vec<(String, String)>);

impl Params {
    fn from(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form {
            pairs.extend(url::form_urlencoded::parse(body).into_owned());
        }
        Params(pairs)
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Unix seconds (fractions allowed) or RFC 3339, as Prometheus accepts them.
fn parse_time(value: &str, name: &str) -> Result<i64, PromError> {
    if let Ok(seconds) = value.parse::<f64>()
        && seconds.is_finite()
    {
        return Ok(
            ((seconds * 1000.0).round() as i64).clamp(-super::eval::MAX_MS, super::eval::MAX_MS)
        );
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            PromError::BadData(format!(
                "invalid parameter \"{name}\": cannot parse \"{value}\" to a valid timestamp"
            ))
        })
}

/// Seconds (fractions allowed) or a Prometheus duration (`15s`, `1h30m`).
fn parse_duration_ms(value: &str, name: &str) -> Result<i64, PromError> {
    if let Ok(seconds) = value.parse::<f64>()
        && seconds.is_finite()
    {
        return Ok((seconds * 1000.0).round() as i64);
    }
    promql_parser::util::parse_duration(value)
        .map(|d| d.as_millis() as i64)
        .map_err(|_| {
            PromError::BadData(format!(
                "invalid parameter \"{name}\": cannot parse \"{value}\" to a valid duration"
            ))
        })
}

fn parse_query(text: Option<&str>) -> Result<Arc<Expr>, PromError> {
    let text = text.ok_or_else(|| {
        PromError::BadData("invalid parameter \"query\": query is required".into())
    })?;
    super::parse(text)
        .map(Arc::new)
        .map_err(|e| PromError::BadData(format!("invalid parameter \"query\": {e}")))
}

/// The query's own `timeout` parameter may shorten the configured limit, never extend it.
fn timeout(params: &Params, limits: &PromLimits) -> Result<std::time::Duration, PromError> {
    match params.get("timeout") {
        None => Ok(limits.timeout),
        Some(t) => {
            let ms = parse_duration_ms(t, "timeout")?;
            Ok(std::time::Duration::from_millis(ms.max(0) as u64).min(limits.timeout))
        }
    }
}

async fn load_for(
    storage: &Arc<Storage>,
    limits: &PromLimits,
    selections: Vec<Selection>,
    deadline: Instant,
    timeout: std::time::Duration,
) -> Result<Loaded, PromError> {
    let limits = LoadLimits {
        max_series: limits.max_series,
        max_samples: limits.max_samples,
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(remaining, load(storage, selections, limits)).await {
        Ok(result) => result,
        Err(_) => Err(PromError::Timeout(format!(
            "query timed out while loading series (after {timeout:?}, --promql-timeout)"
        ))),
    }
}

/// Loads what `expr` selects for evaluation at every time of `[start, end]`, then runs
/// `evaluate` on a blocking thread (evaluation is CPU work).
async fn run<T: Send + 'static>(
    state: &PromState,
    params: &Params,
    expr: Arc<Expr>,
    range: (i64, i64),
    evaluate: impl FnOnce(&Evaluator<'_>, &Expr) -> Result<T, PromError> + Send + 'static,
) -> Result<T, PromError> {
    let timeout = timeout(params, &state.limits)?;
    run_with(
        &state.storage,
        &state.limits,
        timeout,
        expr,
        range,
        evaluate,
    )
    .await
}

async fn run_with<T: Send + 'static>(
    storage: &Arc<Storage>,
    limits: &PromLimits,
    timeout: std::time::Duration,
    expr: Arc<Expr>,
    (start, end): (i64, i64),
    evaluate: impl FnOnce(&Evaluator<'_>, &Expr) -> Result<T, PromError> + Send + 'static,
) -> Result<T, PromError> {
    let deadline = Instant::now() + timeout;
    let mut wanted = Vec::new();
    selections(&expr, start, end, (start, end), &mut wanted);
    let loaded = load_for(storage, limits, wanted, deadline, timeout).await?;
    let max_points = limits.max_samples;
    // A blocking task cannot be aborted: when this future is dropped (the client gone, the
    // request timed out), the token is cancelled and the evaluation stops at its next
    // step. Before, it ran on to --promql-timeout (2 minutes) holding its series, while the
    // query slot it had taken was free again: a client that asked and hung up, again and
    // again, left a thread burning a core for each time.
    let stopped = CancellationToken::new();
    let _stop_when_dropped = stopped.clone().drop_guard();
    tokio::task::spawn_blocking(move || {
        let evaluator = Evaluator {
            loaded: &loaded,
            start,
            end,
            deadline,
            timeout,
            max_points,
            stopped: &stopped,
        };
        evaluate(&evaluator, &expr)
    })
    .await
    .map_err(|e| PromError::Internal(format!("evaluation task: {e}")))?
}

/// What an instant query at `t` (ms) answered, as alerting rules read it: a scalar is one
/// sample without labels; a string or range vector is an error.
#[derive(Clone, Debug)]
pub struct InstantAnswer {
    pub samples: Vec<super::value::Sample>,
    /// Series the query's selectors found in storage (before any filtering by the
    /// expression): zero means there was no data to judge, not that all is well.
    pub series_seen: usize,
}

/// Evaluates `expr` at `t` (unix ms) with `limits`, as `/query` does.
pub async fn instant_vector(
    storage: &Arc<Storage>,
    limits: &PromLimits,
    expr: Arc<Expr>,
    t: i64,
) -> Result<InstantAnswer, PromError> {
    run_with(
        storage,
        limits,
        limits.timeout,
        expr,
        (t, t),
        move |ev, expr| {
            let series_seen = ev.loaded.values().map(Vec::len).sum();
            let samples = match ev.eval(expr, t)? {
                Value::Scalar(v) => vec![super::value::Sample {
                    labels: Arc::from(Vec::new()),
                    v,
                }],
                Value::Vector(samples) => {
                    check_unique(&samples)?;
                    samples
                }
                other => {
                    return Err(PromError::BadData(format!(
                        "expression gives a {}, not an instant vector or scalar",
                        other.type_name()
                    )));
                }
            };
            Ok(InstantAnswer {
                samples,
                series_seen,
            })
        },
    )
    .await
}

fn labels_json(labels: &Labels) -> Json {
    Json::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect(),
    )
}

fn point(t: i64, v: f64) -> Json {
    json!([t as f64 / 1000.0, format_value(v)])
}

fn check_unique(samples: &[super::value::Sample]) -> Result<(), PromError> {
    let mut seen = std::collections::HashSet::with_capacity(samples.len());
    for s in samples {
        if !seen.insert(&s.labels) {
            return Err(PromError::Execution(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(())
}

async fn query(
    State(state): State<PromState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::from(&uri, &headers, &body);
    answer(&state, instant_query(&state, &params).await)
}

async fn instant_query(state: &PromState, params: &Params) -> Result<Json, PromError> {
    let expr = parse_query(params.get("query"))?;
    let t = match params.get("time") {
        Some(t) => parse_time(t, "time")?,
        None => now_ms(),
    };
    run(state, params, expr, (t, t), move |ev, expr| {
        Ok(match ev.eval(expr, t)? {
            Value::Scalar(v) => json!({"resultType": "scalar", "result": point(t, v)}),
            Value::String(s) => json!({"resultType": "string", "result": [t as f64 / 1000.0, s]}),
            Value::Vector(samples) => {
                check_unique(&samples)?;
                let result: Vec<Json> = samples
                    .iter()
                    .map(|s| json!({"metric": labels_json(&s.labels), "value": point(t, s.v)}))
                    .collect();
                json!({"resultType": "vector", "result": result})
            }
            Value::Matrix(series) => {
                let result: Vec<Json> = series
                    .iter()
                    .map(|s| {
                        let values: Vec<Json> = s
                            .points
                            .t()
                            .iter()
                            .zip(s.points.v())
                            .map(|(t, v)| point(*t, *v))
                            .collect();
                        json!({"metric": labels_json(&s.labels), "values": values})
                    })
                    .collect();
                json!({"resultType": "matrix", "result": result})
            }
        })
    })
    .await
}

async fn query_range(
    State(state): State<PromState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::from(&uri, &headers, &body);
    answer(&state, range_query(&state, &params).await)
}

async fn range_query(state: &PromState, params: &Params) -> Result<Json, PromError> {
    let expr = parse_query(params.get("query"))?;
    let required = |name: &str| {
        params.get(name).ok_or_else(|| {
            PromError::BadData(format!(
                "invalid parameter \"{name}\": parameter is required"
            ))
        })
    };
    let start = parse_time(required("start")?, "start")?;
    let end = parse_time(required("end")?, "end")?;
    let step = parse_duration_ms(required("step")?, "step")?;
    if end < start {
        return Err(PromError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    if step <= 0 {
        return Err(PromError::BadData(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    if end.saturating_sub(start) / step > MAX_POINTS_PER_SERIES {
        return Err(PromError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    run(state, params, expr, (start, end), move |ev, expr| {
        let mut series: BTreeMap<Labels, Vec<Json>> = BTreeMap::new();
        let mut t = start;
        while t <= end {
            match ev.eval(expr, t)? {
                Value::Scalar(v) => series.entry(super::value::labels_from(Vec::new())).or_default().push(point(t, v)),
                Value::Vector(samples) => {
                    check_unique(&samples)?;
                    for s in samples {
                        series.entry(s.labels).or_default().push(point(t, s.v));
                    }
                }
                other => {
                    return Err(PromError::BadData(format!(
                        "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                        if matches!(other, Value::Matrix(_)) { "range vector" } else { other.type_name() }
                    )));
                }
            }
            let Some(next) = t.checked_add(step) else { break };
            t = next;
        }
        let result: Vec<Json> = series
            .into_iter()
            .map(|(labels, values)| json!({"metric": labels_json(&labels), "values": values}))
            .collect();
        Ok(json!({"resultType": "matrix", "result": result}))
    })
    .await
}

/// The selectors of `match[]`, each of which must be a plain series selector.
fn match_selections(
    params: &Params,
    required: bool,
) -> Result<(Vec<Selection>, i64, i64), PromError> {
    let end = match params.get("end") {
        Some(t) => parse_time(t, "end")?,
        None => now_ms(),
    };
    let start = match params.get("start") {
        Some(t) => parse_time(t, "start")?,
        None => end - DEFAULT_METADATA_RANGE_MS,
    };
    let matches = params.all("match[]");
    if matches.is_empty() && required {
        return Err(PromError::BadData("no match[] parameter provided".into()));
    }
    let mut out = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        let expr = super::parse(m)
            .map_err(|e| PromError::BadData(format!("invalid parameter \"match[]\": {e}")))?;
        let Expr::VectorSelector(vs) = expr else {
            return Err(PromError::BadData(format!(
                "invalid parameter \"match[]\": {m} is not a series selector"
            )));
        };
        out.push(Selection {
            id: i,
            name: vs.name.clone(),
            matchers: vs.matchers.clone(),
            from_ms: start,
            to_ms: end,
        });
    }
    if out.is_empty() {
        out.push(Selection {
            id: 0,
            name: None,
            matchers: promql_parser::label::Matchers::empty(),
            from_ms: start,
            to_ms: end,
        });
    }
    Ok((out, start, end))
}

async fn matching_series(
    state: &PromState,
    params: &Params,
    required: bool,
) -> Result<Vec<Labels>, PromError> {
    let (wanted, _, _) = match_selections(params, required)?;
    let timeout = timeout(params, &state.limits)?;
    let loaded = load_for(
        &state.storage,
        &state.limits,
        wanted,
        Instant::now() + timeout,
        timeout,
    )
    .await?;
    let unique: BTreeSet<Labels> = loaded
        .into_values()
        .flatten()
        .map(|s| s.labels.clone())
        .collect();
    Ok(unique.into_iter().collect())
}

async fn series(
    State(state): State<PromState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::from(&uri, &headers, &body);
    let result = matching_series(&state, &params, true).await;
    answer(
        &state,
        result.map(|series| Json::Array(series.iter().map(labels_json).collect())),
    )
}

async fn labels(
    State(state): State<PromState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::from(&uri, &headers, &body);
    let result = matching_series(&state, &params, false).await.map(|series| {
        let names: BTreeSet<&str> = series
            .iter()
            .flat_map(|l| l.iter().map(|(n, _)| n.as_str()))
            .collect();
        json!(names)
    });
    answer(&state, result)
}

async fn label_values(
    State(state): State<PromState>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let params = Params::from(&uri, &headers, &[]);
    let result = matching_series(&state, &params, false).await.map(|series| {
        let values: BTreeSet<&str> = series
            .iter()
            .filter_map(|l| super::value::label(l, &name))
            .collect();
        json!(values)
    });
    answer(&state, result)
}

/// Porthole keeps no Prometheus metric metadata (types live in `metric_type`): empty.
async fn metadata() -> Response {
    success(json!({}))
}

/// Grafana reads the version to pick features; this is the Prometheus API level the
/// endpoints implement, the revision says what actually answers.
async fn buildinfo() -> Response {
    success(json!({
        "version": "2.42.0",
        "revision": concat!("porthole-", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An evaluation whose caller goes away stops at its next step; it ran on to the
    /// deadline (2 minutes by default) on a blocking thread no one could stop.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_evaluation_stops_when_no_one_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let location = porthole_storage::Location::parse(None, dir.path()).unwrap();
        let storage = Arc::new(Storage::open(location).await.unwrap());
        let expr = Arc::new(promql_parser::parser::parse("vector(1)").unwrap());
        let (ended, mut how) = tokio::sync::mpsc::unbounded_channel();
        let timeout = std::time::Duration::from_secs(30);
        let query = tokio::spawn(async move {
            run_with(
                &storage,
                &PromLimits::default(),
                timeout,
                expr,
                (0, 0),
                move |evaluator, expr| {
                    // Steps until the evaluator says to stop.
                    let error = loop {
                        if let Err(error) = evaluator.eval(expr, 0) {
                            break error;
                        }
                    };
                    ended.send(error.to_string()).unwrap();
                    Err::<(), _>(error)
                },
            )
            .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!query.is_finished());
        query.abort();
        let error = how.recv().await.unwrap();
        assert!(
            error.contains("no one waits for its answer"),
            "the evaluation ran on until: {error}"
        );
    }
}
