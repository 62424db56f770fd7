//! One batch of rows → the Parquet bytes of one data file per day.

use std::collections::BTreeMap;

use arrow::array::{
    Array, AsArray, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow::compute::{filter_record_batch, take_record_batch};
use arrow::datatypes::TimestampMicrosecondType;
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

/// Splits rows by the UTC day of their `timestamp`, the table's partition.
pub fn split_by_day(batch: &RecordBatch) -> Result<BTreeMap<String, RecordBatch>> {
    let timestamps = timestamps(batch);
    // Days since the epoch, compared as numbers; only the distinct ones are formatted.
    let days: Vec<i64> = timestamps
        .values()
        .iter()
        .map(|micros| micros.div_euclid(MICROS_PER_DAY))
        .collect();
    let mut distinct = days.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let name = |day: i64| day_of(day * MICROS_PER_DAY);
    if distinct.len() == 1 {
        return Ok(BTreeMap::from([(name(distinct[0]), batch.clone())]));
    }
    distinct
        .into_iter()
        .map(|day| {
            let mask = BooleanArray::from_iter(days.iter().map(|d| Some(*d == day)));
            Ok((name(day), filter_record_batch(batch, &mask)?))
        })
        .collect()
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

pub fn day_of(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// Orders rows by (service, timestamp), rows without a service last, so a service's rows
/// sit together and row-group statistics prune well. Services are ranked once and rows
/// sorted by (rank, time) as integers, instead of comparing strings in every comparison;
/// equal keys keep their arrival order.
pub fn sort_for_storage(batch: &RecordBatch) -> Result<RecordBatch> {
    let (services, timestamps) = (services(batch), timestamps(batch));
    let mut distinct: Vec<&str> = services.iter().flatten().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let rank = |row: usize| -> u32 {
        if services.is_null(row) {
            return u32::MAX;
        }
        let service = services.value(row);
        distinct.binary_search(&service).expect("ranked above") as u32
    };
    let mut keys: Vec<(u32, i64, u32)> = (0..batch.num_rows())
        .map(|row| (rank(row), timestamps.value(row), row as u32))
        .collect();
    keys.sort_unstable();
    let indices = UInt32Array::from_iter_values(keys.into_iter().map(|(_, _, row)| row));
    Ok(take_record_batch(batch, &indices)?)
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

    #[test]
    fn rows_split_by_day_and_sort_by_service_then_time() {
        let batch = logs(&[("b", 3_000), ("a", DAY + 1_000), ("a", 2_000), ("b", 1_000)]);
        let days = split_by_day(&batch).unwrap();
        assert_eq!(
            days.keys().collect::<Vec<_>>(),
            ["1970-01-01", "1970-01-02"]
        );
        let first = sort_for_storage(&days["1970-01-01"]).unwrap();
        let services: Vec<_> = first
            .column_by_name("service")
            .unwrap()
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(services, ["a", "b", "b"]);
        let times = first
            .column_by_name("time_unix_nano")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(times.values().as_ref(), &[2_000, 1_000, 3_000]);
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
