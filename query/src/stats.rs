//! Span statistics for trace alert rules: per group (e.g. per version), how many spans
//! matched a search in its time range, how many of them failed, and their latency
//! quantiles, all from the spans indexes (the status and duration fields), never Parquet.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use porthole_storage::{FileEntry, Signal, Storage};
use tantivy::collector::{Collector, Count, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::query_grammar::UserInputAst;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader, Term};

use crate::QueryError;
use crate::search::{candidate_files, field_values, open_indexes, parse_user_query};
use crate::traces::{TraceSearch, span_query};

/// Spans whose durations one statistics query holds, at most (8 bytes each).
pub const MAX_STATS_SPANS: usize = 2_000_000;

/// What the spans of one group did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanStats {
    pub count: u64,
    pub errors: u64,
    durations_ns: Vec<i64>,
}

impl SpanStats {
    /// Failed spans (status `ERROR`) over all; `None` without spans.
    pub fn error_rate(&self) -> Option<f64> {
        (self.count > 0).then(|| self.errors as f64 / self.count as f64)
    }

    /// The `q` quantile (0 ≤ q ≤ 1) of the durations in nanoseconds, by nearest rank:
    /// the smallest duration at least `q` of the spans do not exceed. `None` without spans.
    pub fn quantile_ns(&mut self, q: f64) -> Option<i64> {
        if self.durations_ns.is_empty() {
            return None;
        }
        let n = self.durations_ns.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        let (_, kth, _) = self.durations_ns.select_nth_unstable(rank - 1);
        Some(*kth)
    }

    fn add(&mut self, errors: u64, durations: Vec<i64>) {
        self.count += durations.len() as u64;
        self.errors += errors;
        self.durations_ns.extend(durations);
    }
}

/// Statistics of the spans matching `search` (its query, service, name and duration
/// bounds, in its time range; its status is ignored: errors are counted apart), one entry
/// per value of `by` (a promoted field; spans without it are left out), or one under `""`.
pub async fn span_stats(
    storage: &Arc<Storage>,
    search: &TraceSearch,
    by: Option<&str>,
) -> Result<BTreeMap<String, SpanStats>, QueryError> {
    let search = TraceSearch {
        status: None,
        ..search.clone()
    };
    let (ast, files) = plan(storage, &search).await?;
    let internal = |e: tantivy::TantivyError| QueryError::Internal(e.to_string());
    let mut stats: BTreeMap<String, SpanStats> = BTreeMap::new();
    let mut held = 0usize;
    let opened = open_indexes(storage, Signal::Spans, files);
    futures::pin_mut!(opened);
    while let Some((file, searcher)) = opened.try_next().await? {
        let query = span_query(&searcher, &search, ast.as_ref(), file.time_range_micros)?;
        let schema = searcher.schema();
        let status = schema.get_field("status_code").map_err(internal)?;
        let mut groups: Vec<(String, Box<dyn Query>)> = Vec::new();
        match by {
            None => groups.push((String::new(), query)),
            Some(name) => {
                let field = schema.get_field(name).map_err(|_| {
                    QueryError::BadRequest(format!("cannot group spans by {name:?}"))
                })?;
                for value in field_values(&searcher, name)? {
                    let term = Term::from_field_text(field, &value);
                    groups.push((value, and(query.box_clone(), term_query(term))));
                }
            }
        }
        for (key, group) in groups {
            let durations = searcher
                .search(
                    &group,
                    &Durations {
                        room: MAX_STATS_SPANS - held,
                    },
                )
                .map_err(internal)?
                .ok_or_else(too_many)?;
            if durations.is_empty() {
                continue;
            }
            held += durations.len();
            let failed = and(group, term_query(Term::from_field_text(status, "ERROR")));
            let errors = searcher.search(&failed, &Count).map_err(internal)? as u64;
            stats.entry(key).or_default().add(errors, durations);
        }
    }
    Ok(stats)
}

/// Whether any span matches `search` in its time range (status and `name` aside): whether
/// a trace rule has data to judge at all.
pub async fn any_spans(storage: &Arc<Storage>, search: &TraceSearch) -> Result<bool, QueryError> {
    let search = TraceSearch {
        status: None,
        name: None,
        ..search.clone()
    };
    let (ast, files) = plan(storage, &search).await?;
    let opened = open_indexes(storage, Signal::Spans, files);
    futures::pin_mut!(opened);
    while let Some((file, searcher)) = opened.try_next().await? {
        let query = span_query(&searcher, &search, ast.as_ref(), file.time_range_micros)?;
        let n = searcher
            .search(&query, &Count)
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        if n > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The checked query, and the spans files whose time range meets the search's.
async fn plan(
    storage: &Storage,
    search: &TraceSearch,
) -> Result<(Option<UserInputAst>, Vec<FileEntry>), QueryError> {
    let ast = parse_user_query(&search.query)?;
    let files = candidate_files(
        storage.files(Signal::Spans).await?,
        search.start_micros,
        search.end_micros,
    );
    Ok((ast, files))
}

fn too_many() -> QueryError {
    QueryError::BadRequest(format!(
        "more than {MAX_STATS_SPANS} spans match; narrow the search or the window"
    ))
}

fn term_query(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

fn and(a: Box<dyn Query>, b: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![(Occur::Must, a), (Occur::Must, b)]))
}

/// The `duration_ns` of every match, or `None` once more than `room` matched.
struct Durations {
    room: usize,
}

struct SegmentDurations {
    column: Column<i64>,
    room: usize,
    values: Option<Vec<i64>>,
}

impl Collector for Durations {
    type Fruit = Option<Vec<i64>>;
    type Child = SegmentDurations;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentDurations> {
        Ok(SegmentDurations {
            column: reader.fast_fields().i64("duration_ns")?,
            room: self.room,
            values: Some(Vec::new()),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Option<Vec<i64>>>) -> tantivy::Result<Option<Vec<i64>>> {
        let mut all = Vec::new();
        for fruit in fruits {
            let Some(values) = fruit else { return Ok(None) };
            all.extend(values);
            if all.len() > self.room {
                return Ok(None);
            }
        }
        Ok(Some(all))
    }
}

impl SegmentCollector for SegmentDurations {
    type Fruit = Option<Vec<i64>>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(values) = &mut self.values else {
            return;
        };
        if values.len() >= self.room {
            self.values = None;
            return;
        }
        if let Some(duration) = self.column.first(doc) {
            values.push(duration);
        }
    }

    fn harvest(self) -> Option<Vec<i64>> {
        self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut stats = SpanStats::default();
        assert_eq!(stats.quantile_ns(0.99), None);
        assert_eq!(stats.error_rate(), None);
        stats.add(1, (1..=100).rev().collect());
        stats.add(1, vec![1000]);
        assert_eq!(stats.count, 101);
        assert_eq!(stats.error_rate(), Some(2.0 / 101.0));
        assert_eq!(stats.quantile_ns(0.5), Some(51));
        assert_eq!(stats.quantile_ns(0.99), Some(100));
        assert_eq!(stats.quantile_ns(1.0), Some(1000));
        assert_eq!(stats.quantile_ns(0.0), Some(1));
    }
}
