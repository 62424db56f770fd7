//! `GET /api/v1/versions?service=`: what each version of a service did in a time range,
//! side by side, so "v2 broke it at 14:02" is one look: the pods that ran it, when it was
//! first and last seen, its logs and error logs (and their rate), its spans, span error
//! rate and p99 latency. Counts come from the indexes; pods and first/last seen from one
//! SQL query over the promoted columns of the logs and spans tables.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::api::{QueryState, query_params, time_range};
use crate::search::{LogSearch, count_logs};
use crate::stats::span_stats;
use crate::traces::TraceSearch;
use crate::{QueryError, SqlLimits};

/// Severities counted as error logs.
const ERROR_SEVERITIES: [&str; 2] = ["ERROR", "FATAL"];

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct VersionsParams {
    /// The service (`service.name`) whose versions to compare.
    service: String,
    /// Start of the range (RFC 3339, unix ns or `now-24h`); default one hour before `end`.
    start: Option<String>,
    /// End of the range; default now.
    end: Option<String>,
}

/// One version of the service in the range.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct VersionSummary {
    pub version: String,
    /// Distinct pods that logged or traced with this version.
    pub pods: u64,
    /// First and last record (log or span) of this version in the range, RFC 3339.
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub logs: u64,
    /// Logs at ERROR or FATAL.
    pub error_logs: u64,
    /// Error logs per second over the range.
    pub error_log_rate: f64,
    pub spans: u64,
    pub span_errors: u64,
    /// Failed spans over all; null without spans.
    pub span_error_rate: Option<f64>,
    /// 99th percentile span duration in seconds; null without spans.
    pub p99_latency_seconds: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Versions {
    pub service: String,
    pub start: String,
    pub end: String,
    /// Oldest first (by first seen).
    pub versions: Vec<VersionSummary>,
}

/// Versions of a service side by side: pods, first/last seen, error logs, span errors, p99.
#[utoipa::path(get, path = "/api/v1/versions", params(VersionsParams), responses(
    (status = 200, body = Versions),
    (status = 400, body = crate::openapi::ErrorBody),
    (status = 504, description = "Ran past --query-timeout and was stopped", body = crate::openapi::ErrorBody),
))]
pub(crate) async fn versions(
    State(state): State<QueryState>,
    uri: Uri,
) -> Result<Json<Versions>, QueryError> {
    let params: VersionsParams = query_params(&uri)?;
    if params.service.trim().is_empty() {
        return Err(QueryError::BadRequest("service must not be empty".into()));
    }
    let (start, end) = time_range(&params.start, &params.end)?;
    let storage = &state.storage;
    let service = params.service.clone();
    let mut by: BTreeMap<String, VersionSummary> = BTreeMap::new();
    let logs = LogSearch {
        filters: vec![("service".into(), service.clone())],
        start_micros: start,
        end_micros: end,
        ..LogSearch::default()
    };
    for (version, n) in count_logs(storage, &logs, Some("version")).await? {
        of(&mut by, &version).logs += n;
    }
    for severity in ERROR_SEVERITIES {
        let mut errors = logs.clone();
        errors.filters.push(("severity".into(), severity.into()));
        for (version, n) in count_logs(storage, &errors, Some("version")).await? {
            of(&mut by, &version).error_logs += n;
        }
    }
    let spans = TraceSearch {
        service: Some(service.clone()),
        start_micros: start,
        end_micros: end,
        ..TraceSearch::default()
    };
    for (version, mut stats) in span_stats(storage, &spans, Some("version")).await? {
        let p99 = stats.quantile_ns(0.99).map(|ns| ns as f64 / 1e9);
        let v = of(&mut by, &version);
        v.spans = stats.count;
        v.span_errors = stats.errors;
        v.span_error_rate = stats.error_rate();
        v.p99_latency_seconds = p99;
    }
    let seen = seen_by_version(&state, &service, start, end).await?;
    for (version, (pods, first, last)) in seen {
        let v = of(&mut by, &version);
        v.pods = pods;
        v.first_seen = first;
        v.last_seen = last;
    }
    let seconds = (end - start) as f64 / 1e6;
    let mut versions: Vec<VersionSummary> = by
        .into_values()
        .map(|mut v| {
            v.error_log_rate = v.error_logs as f64 / seconds;
            v
        })
        .collect();
    versions.sort_by(|a, b| {
        a.first_seen
            .cmp(&b.first_seen)
            .then(a.version.cmp(&b.version))
    });
    Ok(Json(Versions {
        service,
        start: crate::time::format_nanos(start * 1000),
        end: crate::time::format_nanos(end * 1000),
        versions,
    }))
}

fn of<'a>(by: &'a mut BTreeMap<String, VersionSummary>, version: &str) -> &'a mut VersionSummary {
    by.entry(version.to_string())
        .or_insert_with(|| VersionSummary {
            version: version.to_string(),
            ..VersionSummary::default()
        })
}

/// Per version: distinct pods, first and last record, over both tables' promoted columns.
async fn seen_by_version(
    state: &QueryState,
    service: &str,
    start: i64,
    end: i64,
) -> Result<BTreeMap<String, (u64, Option<String>, Option<String>)>, QueryError> {
    let quoted = format!("'{}'", service.replace('\'', "''"));
    let from = crate::time::format_nanos(start * 1000);
    let to = crate::time::format_nanos(end * 1000);
    let part = |table: &str| {
        format!(
            "SELECT version, pod, timestamp FROM {table} WHERE service = {quoted} \
             AND timestamp >= '{from}' AND timestamp < '{to}' AND version IS NOT NULL"
        )
    };
    let sql = format!(
        "SELECT version, count(DISTINCT pod) AS pods, min(timestamp) AS first_seen, \
         max(timestamp) AS last_seen FROM ({} UNION ALL {}) GROUP BY version",
        part("logs"),
        part("spans")
    );
    let limits = SqlLimits {
        max_rows: crate::MAX_COUNT_GROUPS,
        ..state.sql_limits.clone()
    };
    let result = crate::sql::run_sql(&state.storage, &sql, &limits).await?;
    let text = |row: &serde_json::Map<String, Value>, key: &str| {
        row.get(key).and_then(Value::as_str).map(String::from)
    };
    let time = |row: &serde_json::Map<String, Value>, key: &str| {
        text(row, key).map(crate::time::normalize)
    };
    Ok(result
        .rows
        .iter()
        .filter_map(|row| {
            let version = text(row, "version")?;
            let pods = row.get("pods").and_then(Value::as_u64).unwrap_or(0);
            Some((
                version,
                (pods, time(row, "first_seen"), time(row, "last_seen")),
            ))
        })
        .collect())
}
