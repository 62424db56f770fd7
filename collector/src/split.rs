//! Halving an export ingest refused as too large. What the collector acked must reach
//! storage, but ingest's limits (`--max-request-bytes`, `--max-decode-bytes`) are its own
//! and may be lower than what the collector took from an app; so an export refused as too
//! large is cut in two by its records, each half under the same resource and scope, and
//! each half is sent (and cut again if need be). Only a single record too large for ingest
//! is dropped.

use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::metrics_service::ExportMetricsServiceRequest;
use porthole_proto::trace_service::ExportTraceServiceRequest;
use prost::Message;

use crate::buffer::{Kind, Packer, Record, unpack};

/// The two halves of `record`'s export, stored as it was (same compression); none when it
/// holds a single record or cannot be read back.
pub fn halves(record: &Record) -> Option<[Record; 2]> {
    if record.records < 2 {
        return None;
    }
    let payload = unpack(record.encoding, &record.payload).ok()?;
    let [(first, n), (second, m)] = match record.kind {
        Kind::Logs => {
            let request = ExportLogsServiceRequest::decode(payload.as_slice()).ok()?;
            let [a, b] = halve(
                request.resource_logs,
                |r| &mut r.scope_logs,
                |s| &mut s.log_records,
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

/// `resources` cut where half their records have been seen, each side keeping the
/// resource and scope its records were under; with the records on each side.
fn halve<R: Clone, S: Clone, T>(
    mut resources: Vec<R>,
    scopes: fn(&mut R) -> &mut Vec<S>,
    records: fn(&mut S) -> &mut Vec<T>,
) -> [(Vec<R>, usize); 2] {
    let total: usize = resources
        .iter_mut()
        .map(|r| {
            scopes(r)
                .iter_mut()
                .map(|s| records(s).len())
                .sum::<usize>()
        })
        .sum();
    let mut room = total / 2;
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for mut resource in resources {
        let all = std::mem::take(scopes(&mut resource));
        let (mut before, mut after) = (resource.clone(), resource);
        for mut scope in all {
            let mut rows = std::mem::take(records(&mut scope));
            let cut = rows.len().min(room);
            room -= cut;
            let rest = rows.split_off(cut);
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
    let half = total / 2;
    [(first, half), (second, total - half)]
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
}
