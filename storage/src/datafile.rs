//! A batch's rows → the Parquet bytes of one data file per day.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::Result;

/// The `timestamp` column every table has.
pub(crate) fn timestamps(batch: &RecordBatch) -> &TimestampMicrosecondArray {
    batch
        .column_by_name("timestamp")
        .expect("every table has a timestamp column")
        .as_primitive::<TimestampMicrosecondType>()
}

/// The `service` column every table has.
pub(crate) fn services(batch: &RecordBatch) -> &StringArray {
    batch
        .column_by_name("service")
        .expect("every table has a service column")
        .as_string::<i32>()
}

/// The rows of `parts` (batches of one schema, in arrival order) by the UTC day of their
/// `timestamp`, the table's partition, each day's rows in storage order (see
/// [`storage_order`]). Each row is copied once, from its part straight into its day's
/// batch: the exports of a batch are never concatenated first.
pub fn days_for_storage(parts: &[RecordBatch]) -> Result<BTreeMap<String, RecordBatch>> {
    storage_order(parts, true)
        .into_iter()
        .map(|(day, rows)| Ok((day_of(day * MICROS_PER_DAY), interleaved(parts, &rows)?)))
        .collect()
}

/// All rows of `parts` as one batch in storage order, each copied once (compaction's
/// merge of one day's files).
pub fn sort_for_storage(schema: SchemaRef, parts: &[RecordBatch]) -> Result<RecordBatch> {
    match storage_order(parts, false).pop() {
        Some((_, rows)) => interleaved(parts, &rows),
        None => Ok(RecordBatch::new_empty(schema)),
    }
}

/// The rows of `parts` as (part, row) pairs, ordered by (service, timestamp), rows without
/// a service last, so a service's rows sit together and row-group statistics prune well;
/// equal keys keep their arrival order. With `by_day`, grouped by UTC day (days since the
/// epoch) first; without, one group (day 0). Services are ranked once and rows sorted by
/// integers, instead of comparing strings in every comparison.
fn storage_order(parts: &[RecordBatch], by_day: bool) -> Vec<(i64, Vec<(usize, usize)>)> {
    let mut distinct: Vec<&str> = parts
        .iter()
        .flat_map(|part| services(part).iter().flatten())
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    let total = parts.iter().map(RecordBatch::num_rows).sum();
    let mut keys: Vec<(i64, u32, i64, u32, u32)> = Vec::with_capacity(total);
    for (index, part) in parts.iter().enumerate() {
        let (services, timestamps) = (services(part), timestamps(part));
        for row in 0..part.num_rows() {
            let rank = if services.is_null(row) {
                u32::MAX
            } else {
                let service = services.value(row);
                distinct.binary_search(&service).expect("ranked above") as u32
            };
            let time = timestamps.value(row);
            let day = if by_day {
                time.div_euclid(MICROS_PER_DAY)
            } else {
                0
            };
            keys.push((day, rank, time, index as u32, row as u32));
        }
    }
    keys.sort_unstable();
    keys.chunk_by(|a, b| a.0 == b.0)
        .map(|run| {
            let rows = run
                .iter()
                .map(|&(_, _, _, part, row)| (part as usize, row as usize))
                .collect();
            (run[0].0, rows)
        })
        .collect()
}

fn interleaved(parts: &[RecordBatch], rows: &[(usize, usize)]) -> Result<RecordBatch> {
    let parts: Vec<&RecordBatch> = parts.iter().collect();
    Ok(interleave_record_batch(&parts, rows)?)
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

pub fn day_of(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// Columns whose values are (nearly) all distinct. A dictionary of them fills its page
/// limit within a few thousand rows and falls back to plain pages, so it saves nothing, yet
/// fetching any one row must decode that 64 KiB dictionary page: they are written plain.
const DISTINCT_COLUMNS: [&str; 11] = [
    "timestamp",
    "record_id",
    "time_unix_nano",
    "observed_time_unix_nano",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "duration_ns",
    "body",
    "trace_id",
    "span_id",
    "parent_span_id",
];

/// Integer columns stored as deltas: record ids (steps of one in a new file) and times
/// (rows are sorted by time within a service, so neighbours differ by little). Plain pages
/// of them cost zstd 3-4 bytes a row; deltas of a few thousand microseconds, about two.
const DELTA_COLUMNS: [&str; 6] = [
    "record_id",
    "timestamp",
    "time_unix_nano",
    "observed_time_unix_nano",
    "start_time_unix_nano",
    "end_time_unix_nano",
];

/// How hard a data file is compressed: files written on the ingest path, while exports
/// wait for their ack, at zstd level 1 (at these page sizes as small as level 3, and
/// faster); compaction, which runs in the background and writes the files kept for
/// long, at level 9 (the body column ~17% smaller than level 3, at ~230 MB/s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effort {
    Ingest,
    Compaction,
}

impl Effort {
    fn zstd_level(self) -> i32 {
        match self {
            Effort::Ingest => 1,
            Effort::Compaction => 9,
        }
    }
}

/// Zstd, page-level statistics (the page index), and a bloom filter on `trace_id` when the
/// table has one. Ids and times are delta-encoded ([`DELTA_COLUMNS`]). Pages are small (64 KiB,
/// at most 4096 rows): fetching one matching row decompresses one page per column, and its dictionary page if it has one (those are
/// kept small too, a column whose dictionary outgrows that falls back to plain pages; the
/// [`DISTINCT_COLUMNS`] have none), so a needle search's cost is set by the page size.
pub fn encode_parquet(batch: &RecordBatch, effort: Effort) -> Result<Bytes> {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(effort.zstd_level())?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_data_page_size_limit(64 * 1024)
        .set_data_page_row_count_limit(4096)
        .set_dictionary_page_size_limit(64 * 1024);
    let schema = batch.schema();
    if schema.column_with_name("trace_id").is_some() {
        props = props.set_column_bloom_filter_enabled("trace_id".into(), true);
    }
    for name in DISTINCT_COLUMNS {
        if schema.column_with_name(name).is_some() {
            props = props.set_column_dictionary_enabled(name.into(), false);
        }
    }
    for name in DELTA_COLUMNS {
        if schema.column_with_name(name).is_some() {
            props = props.set_column_encoding(name.into(), Encoding::DELTA_BINARY_PACKED);
        }
    }
    // The smallest and largest log line of a page prune nothing (text search is the
    // index's job), yet every line was compared to find them.
    if schema.column_with_name("body").is_some() {
        props = props.set_column_statistics_enabled("body".into(), EnabledStatistics::None);
    }
    let mut buffer = Vec::with_capacity(batch.get_array_memory_size() / 4);
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(props.build()))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(Bytes::from(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::FileReader;

    fn logs(rows: &[(&str, i64)]) -> RecordBatch {
        use porthole_proto::common::{AnyValue, KeyValue, any_value::Value};
        use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
        let request = porthole_proto::logs_service::ExportLogsServiceRequest {
            resource_logs: rows
                .iter()
                .map(|(service, nanos)| ResourceLogs {
                    resource: Some(porthole_proto::resource::Resource {
                        attributes: vec![KeyValue {
                            key: "service.name".into(),
                            value: Some(AnyValue {
                                value: Some(Value::StringValue(service.to_string())),
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![LogRecord {
                            time_unix_nano: *nanos as u64,
                            trace_id: vec![7; 16],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        };
        crate::logs::convert_logs(&request, 0).batch
    }

    const DAY: i64 = 86_400_000_000_000;

    fn column(batch: &RecordBatch) -> (Vec<&str>, Vec<i64>) {
        let services = batch
            .column_by_name("service")
            .unwrap()
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        let times = batch
            .column_by_name("time_unix_nano")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec();
        (services, times)
    }

    #[test]
    fn rows_of_several_exports_split_by_day_and_sort_by_service_then_time() {
        // 1_500 and 1_000 ns are the same microsecond: a tie, kept in arrival order.
        let first = logs(&[("b", 3_000), ("a", DAY + 1_000), ("b", 1_500)]);
        let second = logs(&[("a", 2_000), ("b", 1_000)]);
        let parts = [first, second];
        let days = days_for_storage(&parts).unwrap();
        assert_eq!(
            days.keys().collect::<Vec<_>>(),
            ["1970-01-01", "1970-01-02"]
        );
        assert_eq!(
            column(&days["1970-01-01"]),
            (vec!["a", "b", "b", "b"], vec![2_000, 1_500, 1_000, 3_000])
        );
        assert_eq!(column(&days["1970-01-02"]), (vec!["a"], vec![DAY + 1_000]));

        let schema = parts[0].schema();
        let merged = sort_for_storage(schema.clone(), &parts).unwrap();
        assert_eq!(
            column(&merged),
            (
                vec!["a", "a", "b", "b", "b"],
                vec![2_000, DAY + 1_000, 1_500, 1_000, 3_000]
            )
        );
        assert_eq!(merged.num_columns(), parts[0].num_columns());
        assert_eq!(sort_for_storage(schema, &[]).unwrap().num_rows(), 0);
        assert!(days_for_storage(&[]).unwrap().is_empty());
    }

    #[test]
    fn compaction_compresses_harder_than_ingest() {
        use porthole_proto::common::{AnyValue, any_value::Value};
        use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
        let log_records = (0..4_000u64)
            .map(|i| LogRecord {
                time_unix_nano: i * 1_000,
                body: Some(AnyValue {
                    value: Some(Value::StringValue(format!(
                        "request {i:x} served route=/api/items/{} status={} in {}ms",
                        i * 7 % 113,
                        [200, 404, 500][i as usize % 3],
                        i * 31 % 997
                    ))),
                }),
                ..Default::default()
            })
            .collect();
        let request = porthole_proto::logs_service::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let rows = crate::logs::convert_logs(&request, 0).batch;
        let ingest = encode_parquet(&rows, Effort::Ingest).unwrap();
        let compaction = encode_parquet(&rows, Effort::Compaction).unwrap();
        assert!(
            compaction.len() < ingest.len(),
            "compaction {} bytes, ingest {} bytes",
            compaction.len(),
            ingest.len()
        );
    }

    #[test]
    fn parquet_has_zstd_page_index_and_trace_bloom_filter() {
        let bytes = encode_parquet(&logs(&[("a", 1)]), Effort::Ingest).unwrap();
        let reader = parquet::file::serialized_reader::SerializedFileReader::new_with_options(
            bytes.clone(),
            parquet::file::serialized_reader::ReadOptionsBuilder::new()
                .with_page_index()
                .build(),
        )
        .unwrap();
        let meta = reader.metadata();
        let row_group = meta.row_group(0);
        let trace = row_group
            .columns()
            .iter()
            .find(|c| c.column_path().string() == "trace_id")
            .unwrap();
        assert!(
            matches!(trace.compression(), Compression::ZSTD(_)),
            "{:?}",
            trace.compression()
        );
        assert!(trace.bloom_filter_offset().is_some());
        let column = |name: &str| {
            row_group
                .columns()
                .iter()
                .find(|c| c.column_path().string() == name)
                .unwrap()
        };
        for delta in ["record_id", "timestamp", "time_unix_nano"] {
            let encodings: Vec<Encoding> = column(delta).encodings().collect();
            assert!(
                encodings.contains(&Encoding::DELTA_BINARY_PACKED),
                "{delta}: {encodings:?}"
            );
        }
        for distinct in ["trace_id", "timestamp", "body", "record_id"] {
            assert!(
                column(distinct).dictionary_page_offset().is_none(),
                "{distinct} has a dictionary"
            );
        }
        assert!(column("service").dictionary_page_offset().is_some());
        assert!(column("body").statistics().is_none(), "body has statistics");
        assert!(column("timestamp").statistics().is_some());
        assert!(meta.column_index().is_some());
        let back = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(back.num_rows(), 1);
    }
}
