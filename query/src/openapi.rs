//! The API's response types and its OpenAPI document (`GET /api/v1/openapi.json`),
//! generated with `utoipa` from the handlers' parameter and response types, so the
//! document cannot drift from what the handlers do (schemathesis checks it against the
//! live server in the test command).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// `{"error": {"code", "message"}}`: every error of the API.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `bad_request`, `not_found`, `unauthorized`, `overloaded`, `timeout`, `unavailable`, `data_lost` (a data file the table lists is missing or damaged: the message names it, or for a damaged page in SQL how to find it) or `internal`.
    pub code: String,
    /// What went wrong, for people; never internals.
    pub message: String,
}

/// One log record as the API shows it.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // documents the rows built as JSON from stored columns
pub struct LogRow {
    /// RFC 3339 with nanoseconds, UTC.
    pub timestamp: String,
    pub severity: Option<String>,
    pub body: Option<String>,
    pub service: Option<String>,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
    pub version: Option<String>,
    pub image_digest: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    /// Record attributes with their OTLP types (numbers stay numbers).
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// This record's place in the order, as a `cursor`: a search with it goes on from just
    /// after this record, newest or oldest first (its context). Live-tail rows carry it too.
    pub cursor: Option<String>,
}

/// A page of log records, newest first: `limit` of them, or fewer when they would pass
/// 32 MiB (records of megabytes each); `next_cursor` says whether more follow.
#[derive(Serialize, ToSchema)]
pub struct LogsPage {
    #[schema(value_type = Vec<LogRow>)]
    pub rows: Vec<Value>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HistogramBucket {
    /// Start of the bucket, RFC 3339.
    pub start: String,
    pub count: u64,
    /// With `by`: the bucket's count per value of that field (values with none left out;
    /// records without a value are in `count` alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<std::collections::BTreeMap<String, u64>>,
}

/// Matching records per time bucket.
#[derive(Serialize, ToSchema)]
pub struct Histogram {
    pub step_seconds: f64,
    pub total: u64,
    pub buckets: Vec<HistogramBucket>,
}

/// One trace found by a search.
#[derive(Serialize, ToSchema)]
pub struct TraceListItem {
    pub trace_id: String,
    pub root_name: Option<String>,
    pub root_service: Option<String>,
    /// Start of the earliest span, RFC 3339.
    pub start_time: String,
    pub duration_ns: i64,
    pub span_count: usize,
    pub error_count: usize,
    pub services: BTreeSet<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TraceList {
    pub traces: Vec<TraceListItem>,
}

/// The spans of one trace, by start time.
#[derive(Serialize, ToSchema)]
pub struct Trace {
    pub trace_id: String,
    /// Spans with parent ids, timing, status, events, links and attributes, by start
    /// time: the earliest 10 000 at most, and no more than 32 MiB of them.
    #[schema(value_type = Vec<Object>)]
    pub spans: Vec<Value>,
    /// Spans of the trace stored, whether or not all are in `spans`.
    pub span_count: u64,
    /// True when `spans` holds only the earliest of them.
    pub truncated: bool,
}

/// Declares the bearer token (`--auth-token-file`) as the API's security scheme.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Porthole API",
        description = "Search, tail, traces and SQL over what Porthole's sidecars shipped. \
            With --auth-token-file every call needs `Authorization: Bearer TOKEN`."
    ),
    paths(
        crate::api::logs,
        crate::api::logs_histogram,
        crate::api::logs_tail,
        crate::api::traces,
        crate::api::trace,
        crate::api::sql,
        crate::versions::versions,
        crate::inventory::inventory,
        crate::snapshot::take,
        crate::snapshot::list,
        crate::snapshot::get,
    ),
    modifiers(&BearerToken),
    security(("bearer" = []), ())
)]
pub struct ApiDoc;
