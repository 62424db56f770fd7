//! Halving an export ingest refused as too large. What the collector acked must reach
//! storage, but ingest's limits (`--max-request-bytes`, `--max-decode-bytes`) are its own
//! and may be lower than what the collector took from an app; so an export refused as too
//! large is cut in two by its records, each half under the same resource and scope, and
//! each half is sent (and cut again if need be). Metrics are counted and cut in data
//! points, so one metric with more points than ingest takes is cut too (each part keeps
//! its name, unit and kind). Only a single log record, span or data point too large for
//! ingest is dropped.

use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::metrics::{
    ExponentialHistogram, Gauge, Histogram, Metric, Sum, Summary, metric,
};
use porthole_proto::metrics_service::ExportMetricsServiceRequest;
use porthole_proto::trace_service::ExportTraceServiceRequest;
use prost::Message;

use crate::buffer::{Kind, Packer, Record, unpack};

/// The two halves of `record`'s export, stored as it was (same compression); none when it
/// holds a single record or cannot be read back. The payload is read rather than trusting
/// `record.records`: buffers written before metrics were counted in points count metrics.
pub fn halves(record: &Record) -> Option<[Record; 2]> {
    let payload = unpack(record.encoding, &record.payload).ok()?;
    let [(first, n), (second, m)] = match record.kind {
        Kind::Logs => {
            let request = ExportLogsServiceRequest::decode(payload.as_slice()).ok()?;
            let [a, b] = halve(
                request.resource_logs,
                |r| &mut r.scope_logs,
                |s| &mut s.log_records,
                |_| 1,
                |_, _| None,
            );
            [a, b].map(|(resource_logs, n)| {
                (
                    ExportLogsServiceRequest { resource_logs }.encode_to_vec(),
                    n,
                )
            })
        }
        Kind::Traces => {
            let request = ExportTraceServiceRequest::decode(payload.as_slice()).ok()?;
            let [a, b] = halve(
                request.resource_spans,
                |r| &mut r.scope_spans,
                |s| &mut s.spans,
                |_| 1,
                |_, _| None,
            );
            [a, b].map(|(resource_spans, n)| {
                (
                    ExportTraceServiceRequest { resource_spans }.encode_to_vec(),
                    n,
                )
            })
        }
        Kind::Metrics => {
            let request = ExportMetricsServiceRequest::decode(payload.as_slice()).ok()?;
            let [a, b] = halve(
                request.resource_metrics,
                |r| &mut r.scope_metrics,
                |s| &mut s.metrics,
                data_points,
                take_points,
            );
            [a, b].map(|(resource_metrics, n)| {
                (
                    ExportMetricsServiceRequest { resource_metrics }.encode_to_vec(),
                    n,
                )
            })
        }
    };
    if n == 0 || m == 0 {
        return None;
    }
    let mut packer = Packer::new(record.encoding).ok()?;
    let mut half = |payload: &[u8], records: usize| -> Option<Record> {
        Some(Record {
            kind: record.kind,
            records: records as u32,
            ranges: Vec::new(),
            payload: bytes::Bytes::copy_from_slice(packer.pack(payload).ok()?),
            encoding: record.encoding,
            next: record.next,
        })
    };
    Some([half(&first, n)?, half(&second, m)?])
}

/// `resources` cut where half their records' weight (1 a log record or span, a metric's
/// data points) has been seen, each side keeping the resource and scope its records were
/// under; with the weight on each side. A record straddling the cut is cut by `cut` (its
/// first so much weight, the record keeping the rest) when it can be.
fn halve<R: Clone, S: Clone, T>(
    mut resources: Vec<R>,
    scopes: fn(&mut R) -> &mut Vec<S>,
    records: fn(&mut S) -> &mut Vec<T>,
    weight: fn(&T) -> usize,
    cut: fn(&mut T, usize) -> Option<T>,
) -> [(Vec<R>, usize); 2] {
    let total: usize = resources
        .iter_mut()
        .flat_map(|r| scopes(r).iter_mut())
        .flat_map(|s| records(s).iter())
        .map(weight)
        .sum();
    let (mut room, mut moved, mut cut_made) = (total / 2, 0, false);
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for mut resource in resources {
        let all = std::mem::take(scopes(&mut resource));
        let (mut before, mut after) = (resource.clone(), resource);
        for mut scope in all {
            let (mut rows, mut rest) = (Vec::new(), Vec::new());
            for mut row in std::mem::take(records(&mut scope)) {
                let w = weight(&row);
                if !cut_made && w <= room {
                    room -= w;
                    moved += w;
                    rows.push(row);
                    continue;
                }
                if !cut_made
                    && room > 0
                    && let Some(part) = cut(&mut row, room)
                {
                    moved += weight(&part);
                    rows.push(part);
                }
                cut_made = true;
                rest.push(row);
            }
            if !rows.is_empty() {
                let mut part = scope.clone();
                *records(&mut part) = rows;
                scopes(&mut before).push(part);
            }
            if !rest.is_empty() {
                *records(&mut scope) = rest;
                scopes(&mut after).push(scope);
            }
        }
        if !scopes(&mut before).is_empty() {
            first.push(before);
        }
        if !scopes(&mut after).is_empty() {
            second.push(after);
        }
    }
    [(first, moved), (second, total - moved)]
}

/// A metric's data points: what the collector and ingest count metrics in.
pub fn data_points(metric: &Metric) -> usize {
    match &metric.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        None => 0,
    }
}

/// The first `n` data points of `metric` as a metric of their own (`metric` keeps the
/// rest); none when `n` is 0.
pub fn take_points(metric: &mut Metric, n: usize) -> Option<Metric> {
    fn first<T>(points: &mut Vec<T>, n: usize) -> Vec<T> {
        points.drain(..n.min(points.len())).collect()
    }
    if n == 0 {
        return None;
    }
    let data = match metric.data.as_mut()? {
        metric::Data::Gauge(g) => metric::Data::Gauge(Gauge {
            data_points: first(&mut g.data_points, n),
        }),
        metric::Data::Sum(s) => metric::Data::Sum(Sum {
            data_points: first(&mut s.data_points, n),
            ..*s
        }),
        metric::Data::Histogram(h) => metric::Data::Histogram(Histogram {
            data_points: first(&mut h.data_points, n),
            ..*h
        }),
        metric::Data::Summary(s) => metric::Data::Summary(Summary {
            data_points: first(&mut s.data_points, n),
        }),
        metric::Data::ExponentialHistogram(h) => {
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: first(&mut h.data_points, n),
                ..*h
            })
        }
    };
    Some(Metric {
        name: metric.name.clone(),
        description: metric.description.clone(),
        unit: metric.unit.clone(),
        metadata: metric.metadata.clone(),
        data: Some(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Compression;
    use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
    use porthole_proto::resource::Resource;

    fn request(scopes: &[usize]) -> ExportLogsServiceRequest {
        let mut n = 0;
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    dropped_attributes_count: 7,
                    ..Default::default()
                }),
                scope_logs: scopes
                    .iter()
                    .map(|&records| ScopeLogs {
                        schema_url: format!("scope-{records}"),
                        log_records: (0..records)
                            .map(|_| {
                                n += 1;
                                LogRecord {
                                    time_unix_nano: n,
                                    ..Default::default()
                                }
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
        }
    }

    fn times(request: &ExportLogsServiceRequest) -> Vec<u64> {
        request
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
            .map(|r| r.time_unix_nano)
            .collect()
    }

    #[test]
    fn an_export_is_halved_by_records_under_the_same_resource_and_scopes_in_every_compression() {
        for encoding in [Compression::None, Compression::Zstd, Compression::Gzip] {
            let original = request(&[3, 4]);
            let payload = Packer::new(encoding)
                .unwrap()
                .pack(&original.encode_to_vec())
                .unwrap()
                .to_vec();
            let record = Record {
                kind: Kind::Logs,
                records: 7,
                ranges: Vec::new(),
                payload: payload.into(),
                encoding,
                next: Default::default(),
            };
            let [a, b] = halves(&record).unwrap();
            assert_eq!((a.records, b.records), (3, 4));
            let decode = |r: &Record| {
                ExportLogsServiceRequest::decode(unpack(encoding, &r.payload).unwrap().as_slice())
                    .unwrap()
            };
            let (a, b) = (decode(&a), decode(&b));
            assert_eq!(times(&a), [1, 2, 3]);
            assert_eq!(times(&b), [4, 5, 6, 7]);
            for half in [&a, &b] {
                assert_eq!(
                    half.resource_logs[0]
                        .resource
                        .as_ref()
                        .unwrap()
                        .dropped_attributes_count,
                    7
                );
            }
            assert_eq!(b.resource_logs[0].scope_logs[0].schema_url, "scope-4");
        }
    }

    #[test]
    fn a_cut_inside_a_scope_keeps_the_scope_on_both_sides_and_one_record_is_not_cut() {
        let [(first, n), (second, m)] = halve(
            request(&[5]).resource_logs,
            |r| &mut r.scope_logs,
            |s| &mut s.log_records,
            |_| 1,
            |_, _| None,
        );
        assert_eq!((n, m), (2, 3));
        let a = ExportLogsServiceRequest {
            resource_logs: first,
        };
        let b = ExportLogsServiceRequest {
            resource_logs: second,
        };
        assert_eq!((times(&a), times(&b)), (vec![1, 2], vec![3, 4, 5]));
        assert_eq!(a.resource_logs[0].scope_logs[0].schema_url, "scope-5");
        assert_eq!(b.resource_logs[0].scope_logs[0].schema_url, "scope-5");
        let one = Record {
            kind: Kind::Logs,
            records: 1,
            ranges: Vec::new(),
            payload: request(&[1]).encode_to_vec().into(),
            encoding: Compression::None,
            next: Default::default(),
        };
        assert!(halves(&one).is_none());
    }

    fn sum_points(name: &str, values: std::ops::Range<u64>) -> Metric {
        use porthole_proto::metrics::NumberDataPoint;
        Metric {
            name: name.into(),
            unit: "By".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: values
                    .map(|v| NumberDataPoint {
                        time_unix_nano: v,
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        }
    }

    fn metrics_record(metrics: Vec<Metric>) -> Record {
        use porthole_proto::metrics::{ResourceMetrics, ScopeMetrics};
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        Record {
            kind: Kind::Metrics,
            records: 1,
            ranges: Vec::new(),
            payload: request.encode_to_vec().into(),
            encoding: Compression::None,
            next: Default::default(),
        }
    }

    /// (name, unit, point times) of each metric in `record`.
    fn metric_points(record: &Record) -> Vec<(String, String, Vec<u64>)> {
        let request = ExportMetricsServiceRequest::decode(record.payload.as_ref()).unwrap();
        request
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| {
                let Some(metric::Data::Sum(sum)) = &m.data else {
                    panic!("{m:?}")
                };
                assert!(
                    sum.is_monotonic && sum.aggregation_temporality == 2,
                    "{m:?}"
                );
                let times = sum.data_points.iter().map(|p| p.time_unix_nano).collect();
                (m.name.clone(), m.unit.clone(), times)
            })
            .collect()
    }

    /// Metrics are halved by data points: a metric straddling the cut is cut into two
    /// metrics of the same name, unit and kind. A single metric of many points (one an app
    /// sent with more points than ingest takes) is cut too; a single point is not.
    #[test]
    fn metrics_are_halved_by_data_points_cutting_the_metric_across_the_middle() {
        let record = metrics_record(vec![
            sum_points("a", 0..1),
            sum_points("b", 1..6),
            sum_points("c", 6..8),
        ]);
        let [first, second] = halves(&record).unwrap();
        assert_eq!((first.records, second.records), (4, 4));
        let s = |name: &str| name.to_string();
        let by = || s("By");
        assert_eq!(
            metric_points(&first),
            [(s("a"), by(), vec![0]), (s("b"), by(), vec![1, 2, 3])]
        );
        assert_eq!(
            metric_points(&second),
            [(s("b"), by(), vec![4, 5]), (s("c"), by(), vec![6, 7])]
        );
        let [first, second] = halves(&metrics_record(vec![sum_points("one", 0..5)])).unwrap();
        assert_eq!((first.records, second.records), (2, 3));
        assert_eq!(metric_points(&first), [(s("one"), by(), vec![0, 1])]);
        assert_eq!(metric_points(&second), [(s("one"), by(), vec![2, 3, 4])]);
        assert!(halves(&metrics_record(vec![sum_points("one", 0..1)])).is_none());
    }
}
