//! Trace search (`GET /api/v1/traces`): find the newest spans that match, through the spans
//! indexes (query, service, name, status, duration, time), then summarise each of their
//! traces from all of its spans: root span, duration, span and error counts, services.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use porthole_storage::{Signal, Storage};
use serde_json::{Map, Value};
use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{Order, Searcher, Term};

use crate::QueryError;
use crate::search::{
    LogSearch, candidate_files, file_query, open_index, parse_user_query, rows_of,
};

/// Spans read to find the traces of one search, at most; the newest win.
const MAX_MATCHED_SPANS: usize = 5_000;
/// Spans read to summarise the traces found, at most.
const MAX_SUMMARISED_SPANS: usize = 100_000;

#[derive(Clone, Debug, Default)]
pub struct TraceSearch {
    /// Lucene-style query over span names and attributes.
    pub query: String,
    pub service: Option<String>,
    /// More equality filters on promoted fields (namespace, pod, container, version).
    pub filters: Vec<(String, String)>,
    /// The span name, matched as a phrase.
    pub name: Option<String>,
    /// `OK`, `ERROR` or `UNSET`.
    pub status: Option<String>,
    pub min_duration_ns: Option<i64>,
    pub max_duration_ns: Option<i64>,
    pub start_micros: i64,
    pub end_micros: i64,
    pub limit: usize,
}

/// One trace found: what a list of traces shows.
#[derive(Debug, serde::Serialize)]
pub struct TraceSummary {
    pub trace_id: String,
    pub root_name: Option<String>,
    pub root_service: Option<String>,
    pub start_time_unix_nano: i64,
    pub duration_ns: i64,
    pub span_count: usize,
    pub error_count: usize,
    pub services: BTreeSet<String>,
}

fn internal(e: impl std::fmt::Display) -> QueryError {
    QueryError::Internal(e.to_string())
}

/// The spans query of one file: the log-search query with the span-only conditions.
pub(crate) fn span_query(
    searcher: &Searcher,
    search: &TraceSearch,
    ast: Option<&tantivy::query_grammar::UserInputAst>,
    file_time: Option<(i64, i64)>,
) -> Result<Box<dyn Query>, QueryError> {
    let index = searcher.index();
    let schema = index.schema();
    let mut filters = search.filters.clone();
    filters.extend(search.service.clone().map(|s| ("service".to_string(), s)));
    filters.extend(
        search
            .status
            .clone()
            .map(|s| ("status_code".to_string(), s)),
    );
    let base = LogSearch {
        query: search.query.clone(),
        filters,
        start_micros: search.start_micros,
        end_micros: search.end_micros,
        limit: search.limit,
        cursor: None,
        forward: false,
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> =
        vec![(Occur::Must, file_query(index, &base, ast, file_time)?)];
    if let Some(name) = &search.name {
        let field = schema.get_field("name").map_err(internal)?;
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        let phrase = QueryParser::for_index(index, vec![field])
            .parse_query(&format!("\"{escaped}\""))
            .map_err(|e| QueryError::BadRequest(format!("name {name:?}: {e}")))?;
        clauses.push((Occur::Must, phrase));
    }
    if search.min_duration_ns.is_some() || search.max_duration_ns.is_some() {
        let field = schema.get_field("duration_ns").map_err(internal)?;
        let bound = |v: Option<i64>| match v {
            Some(v) => Bound::Included(Term::from_field_i64(field, v)),
            None => Bound::Unbounded,
        };
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(
                bound(search.min_duration_ns),
                bound(search.max_duration_ns),
            )),
        ));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

/// Reads `rows` of `file` as JSON objects keyed by row ordinal.
async fn read_rows(
    storage: &Storage,
    file: &str,
    rows: &[u64],
) -> Result<BTreeMap<u64, Map<String, Value>>, QueryError> {
    let mut wanted = rows.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let batch = storage.read_rows(Signal::Spans, file, &wanted).await?;
    Ok(wanted
        .into_iter()
        .zip(crate::rows::batch_to_json(&batch)?)
        .collect())
}

/// The newest traces with a span matching `search`, summarised, newest first.
pub async fn search_traces(
    storage: &Arc<Storage>,
    search: &TraceSearch,
) -> Result<Vec<TraceSummary>, QueryError> {
    let ast = parse_user_query(&search.query)?;
    let all_files = storage.files(Signal::Spans).await?;
    let files = candidate_files(all_files.clone(), search.start_micros, search.end_micros);

    // The traces of the newest matching spans, newest first.
    let mut found: Vec<(i64, String)> = Vec::new();
    let mut seen = HashSet::new();
    let mut budget = MAX_MATCHED_SPANS;
    for file in &files {
        if seen.len() >= search.limit || budget == 0 {
            break;
        }
        let searcher = open_index(storage, Signal::Spans, file).await?;
        let query = span_query(&searcher, search, ast.as_ref(), file.time_range_micros)?;
        let top = searcher
            .search(
                &query,
                &TopDocs::with_limit(budget).order_by_fast_field::<i64>("timestamp", Order::Desc),
            )
            .map_err(internal)?;
        if top.is_empty() {
            continue;
        }
        budget -= top.len();
        let addresses: Vec<_> = top.iter().map(|(_, a)| *a).collect();
        let rows = rows_of(&searcher, &addresses)?;
        let spans = read_rows(storage, &file.path, &rows).await?;
        for ((timestamp, _), row) in top.iter().zip(&rows) {
            let trace = spans
                .get(row)
                .and_then(|s| s.get("trace_id")?.as_str().map(String::from));
            if let Some(trace) = trace
                && seen.insert(trace.clone())
            {
                found.push((timestamp.unwrap_or_default(), trace));
            }
        }
    }
    found.sort_by_key(|(timestamp, _)| std::cmp::Reverse(*timestamp));
    found.truncate(search.limit);
    if found.is_empty() {
        return Ok(Vec::new());
    }

    // Every span of those traces, wherever it was written.
    let mut spans_of: BTreeMap<String, Vec<Map<String, Value>>> = BTreeMap::new();
    let mut budget = MAX_SUMMARISED_SPANS;
    for file in all_files.iter().filter(|f| f.index_path.is_some()) {
        let searcher = open_index(storage, Signal::Spans, file).await?;
        let field = searcher.schema().get_field("trace_id").map_err(internal)?;
        let any_trace = BooleanQuery::new(
            found
                .iter()
                .map(|(_, trace)| {
                    let term: Box<dyn Query> = Box::new(TermQuery::new(
                        Term::from_field_text(field, trace),
                        IndexRecordOption::Basic,
                    ));
                    (Occur::Should, term)
                })
                .collect(),
        );
        let docs: Vec<_> = searcher
            .search(&any_trace, &DocSetCollector)
            .map_err(internal)?
            .into_iter()
            .take(budget)
            .collect();
        if docs.is_empty() {
            continue;
        }
        budget -= docs.len();
        let rows = rows_of(&searcher, &docs)?;
        for (_, span) in read_rows(storage, &file.path, &rows).await? {
            if let Some(trace) = span.get("trace_id").and_then(Value::as_str) {
                spans_of.entry(trace.to_string()).or_default().push(span);
            }
        }
        if budget == 0 {
            break;
        }
    }
    Ok(found
        .into_iter()
        .filter_map(|(_, trace)| {
            let spans = spans_of.remove(&trace)?;
            Some(summarise(trace, &spans))
        })
        .collect())
}

fn summarise(trace_id: String, spans: &[Map<String, Value>]) -> TraceSummary {
    let int = |span: &Map<String, Value>, key: &str| span.get(key).and_then(Value::as_i64);
    let text = |span: &Map<String, Value>, key: &str| {
        span.get(key).and_then(Value::as_str).map(String::from)
    };
    let ids: HashSet<String> = spans.iter().filter_map(|s| text(s, "span_id")).collect();
    // The root has no parent in the trace; with several (a partial trace), the earliest.
    let root = spans
        .iter()
        .filter(|s| text(s, "parent_span_id").is_none_or(|p| !ids.contains(&p)))
        .min_by_key(|s| int(s, "start_time_unix_nano").unwrap_or(i64::MAX));
    let start = spans
        .iter()
        .filter_map(|s| int(s, "start_time_unix_nano"))
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .filter_map(|s| int(s, "end_time_unix_nano"))
        .max()
        .unwrap_or(start);
    TraceSummary {
        trace_id,
        root_name: root.and_then(|r| text(r, "name")),
        root_service: root.and_then(|r| text(r, "service")),
        start_time_unix_nano: start,
        duration_ns: (end - start).max(0),
        span_count: spans.len(),
        error_count: spans
            .iter()
            .filter(|s| text(s, "status_code").as_deref() == Some("ERROR"))
            .count(),
        services: spans.iter().filter_map(|s| text(s, "service")).collect(),
    }
}
