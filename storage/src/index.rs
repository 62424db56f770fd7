//! The full-text index beside each data file, packed into one object.
//!
//! A tantivy index is a handful of files. Like a Quickwit split, they are concatenated into
//! ONE object with a footer of offsets, so a reader on S3 needs the footer and the ranges it
//! wants, never one GET per index file. Document `row` = the row's ordinal in the data file.
//!
//! Layout: `[file bytes…][footer JSON][footer length: u64 LE][MAGIC]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, MapArray, RecordBatch};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tantivy::directory::{Directory, ManagedDirectory, RamDirectory};
use tantivy::schema::{
    FAST, IndexRecordOption, JsonObjectOptions, OwnedValue, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{Index, IndexSettings, TantivyDocument};

use crate::{Result, Signal, StorageError};

const MAGIC: &[u8; 8] = b"PHIDX001";

/// Index field holding the numeric attributes again, as fast fields, for range queries.
pub const NUMERIC_ATTRIBUTES: &str = "attribute_numbers";
const WRITER_MEMORY_BYTES: usize = 64 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct Footer {
    files: Vec<PackedFile>,
}

#[derive(Serialize, Deserialize)]
struct PackedFile {
    name: String,
    offset: u64,
    len: u64,
}

/// The index schema: the signal's text column, attributes as JSON (typed values), the
/// timestamp, and exact-match fields for the promoted columns queries filter on.
///
/// Every byte here is paid on every row, so the index holds only what search needs:
/// results are ordered by time, never scored, so no field keeps norms; `row` and
/// `timestamp` are fast fields only (ranges and ordering use those, and an inverted index
/// over near-unique values would cost a term per row); only the text column keeps
/// positions, for phrase queries.
pub fn index_schema(signal: Signal) -> Option<Schema> {
    let text = signal.text_column()?;
    let mut schema = Schema::builder();
    schema.add_u64_field("row", FAST);
    // Microseconds, as the `timestamp` column: time ranges and newest-first order are
    // answered by the index, without reading Parquet.
    schema.add_i64_field("timestamp", FAST);
    schema.add_text_field(text, text_options());
    // Attribute values are exact terms, like Quickwit's default for dynamic fields, and
    // dots expand: the attribute `http.status_code` is found as `attributes.http.status_code`.
    let attributes = JsonObjectOptions::default()
        .set_indexing_options(exact_indexing())
        .set_expand_dots_enabled();
    schema.add_json_field("attributes", attributes);
    // tantivy answers range queries on JSON values (`status:>=500`) from fast fields only;
    // numeric attributes alone get one, since fast string columns would double the index.
    let numbers = JsonObjectOptions::from(FAST).set_expand_dots_enabled();
    schema.add_json_field(NUMERIC_ATTRIBUTES, numbers);
    let exact = TextOptions::default().set_indexing_options(exact_indexing());
    for name in [
        "service",
        "namespace",
        "pod",
        "container",
        "version",
        "trace_id",
    ] {
        schema.add_text_field(name, exact.clone());
    }
    match signal {
        Signal::Logs => {
            schema.add_text_field("severity", exact);
            // Ordering ties of one microsecond, identically before and after compaction.
            schema.add_u64_field("record_id", FAST);
        }
        Signal::Spans => {
            // Trace search filters on status and duration without reading Parquet.
            schema.add_text_field("status_code", exact);
            schema.add_i64_field("duration_ns", FAST);
        }
        Signal::Metrics => {}
    }
    Some(schema.build())
}

/// Words of the text column, lowercased, with positions for phrases; no norms.
fn text_options() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions)
            .set_fieldnorms(false),
    )
}

/// One exact term per value: no frequencies, positions or norms.
fn exact_indexing() -> TextFieldIndexing {
    TextFieldIndexing::default()
        .set_tokenizer("raw")
        .set_index_option(IndexRecordOption::Basic)
        .set_fieldnorms(false)
}

/// Builds and packs the index of one data file's rows; `None` for signals without one.
pub fn build_packed_index(signal: Signal, batch: &RecordBatch) -> Result<Option<Bytes>> {
    let Some(schema) = index_schema(signal) else {
        return Ok(None);
    };
    // Built in memory: the pack is made from the files' bytes, never read from disk.
    let index = Index::builder()
        .schema(schema.clone())
        .settings(IndexSettings {
            // No field is stored, yet every document keeps an entry (its offset) in the
            // document store: lz4 leaves those at ~4 bytes a row, zstd at well under one.
            docstore_compression: Compressor::Zstd(ZstdCompressor::default()),
            ..IndexSettings::default()
        })
        .create_in_ram()?;
    let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, WRITER_MEMORY_BYTES)?;
    let attributes = batch
        .column_by_name("attributes")
        .map(|c| AttributeColumns::new(c.as_map()));
    let text_fields: Vec<(tantivy::schema::Field, &arrow::array::StringArray)> = schema
        .fields()
        .filter_map(|(field, entry)| {
            let column = batch.column_by_name(entry.name())?;
            (!matches!(
                entry.name(),
                "attributes" | NUMERIC_ATTRIBUTES | "row" | "duration_ns" | "record_id"
            ))
            .then(|| column.as_string_opt::<i32>().map(|c| (field, c)))
            .flatten()
        })
        .collect();
    let row_field = schema.get_field("row")?;
    let timestamp_field = schema.get_field("timestamp")?;
    let attributes_field = schema.get_field("attributes")?;
    let numbers_field = schema.get_field(NUMERIC_ATTRIBUTES)?;
    let timestamps = batch
        .column_by_name("timestamp")
        .expect("every table has a timestamp column")
        .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    let record_ids = match schema.get_field("record_id") {
        Ok(field) => {
            let column = batch
                .column_by_name("record_id")
                .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>())
                .ok_or_else(|| {
                    StorageError::CorruptIndex("rows without an Int64 record_id column".into())
                })?;
            Some((field, column))
        }
        Err(_) => None,
    };
    let durations = schema.get_field("duration_ns").ok().zip(
        batch
            .column_by_name("duration_ns")
            .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>()),
    );
    for row in 0..batch.num_rows() {
        let mut doc = TantivyDocument::default();
        doc.add_u64(row_field, row as u64);
        doc.add_i64(timestamp_field, timestamps.value(row));
        if let Some((field, column)) = &record_ids {
            doc.add_u64(*field, column.value(row) as u64);
        }
        if let Some((field, column)) = &durations {
            doc.add_i64(*field, column.value(row));
        }
        for (field, column) in &text_fields {
            if column.is_valid(row) {
                doc.add_text(*field, column.value(row));
            }
        }
        if let Some(columns) = &attributes {
            let (object, numbers) = columns.objects(row);
            doc.add_object(attributes_field, object);
            doc.add_object(numbers_field, numbers);
        }
        writer.add_document(doc)?;
    }
    writer.commit()?;
    // Rows beyond the writer's memory budget (compaction's large files) make several
    // segments; one segment per file keeps each search to one term lookup per field.
    let segments = index.searchable_segment_ids()?;
    if segments.len() > 1 {
        writer.merge(&segments).wait()?;
        writer.garbage_collect_files().wait()?;
    }
    writer.wait_merging_threads()?;
    pack_directory(index.directory()).map(Some)
}

/// The attribute column's parts, taken apart once per batch: row `r`'s entries are
/// `offsets[r]..offsets[r + 1]` of the key, type and text columns.
struct AttributeColumns<'a> {
    offsets: &'a [i32],
    keys: &'a arrow::array::StringArray,
    types: &'a arrow::array::StringArray,
    texts: &'a arrow::array::StringArray,
}

impl<'a> AttributeColumns<'a> {
    fn new(map: &'a MapArray) -> Self {
        let values = map.values().as_struct();
        Self {
            offsets: map.value_offsets(),
            keys: map.keys().as_string::<i32>(),
            types: values.column(0).as_string::<i32>(),
            texts: values.column(1).as_string::<i32>(),
        }
    }

    /// Row `row`'s attributes, and its numeric ones again: values keep their OTLP type
    /// in the index, so `status:>=500` is a numeric range.
    fn objects(&self, row: usize) -> (BTreeMap<String, OwnedValue>, BTreeMap<String, OwnedValue>) {
        let (mut all, mut numbers) = (BTreeMap::new(), BTreeMap::new());
        let entries = self.offsets[row] as usize..self.offsets[row + 1] as usize;
        for i in entries.filter(|i| self.texts.is_valid(*i)) {
            let text = self.texts.value(i);
            let value = match self.types.value(i) {
                "int" => text.parse().map(OwnedValue::I64).ok(),
                "double" => text.parse().map(OwnedValue::F64).ok(),
                "bool" => text.parse().map(OwnedValue::Bool).ok(),
                _ => None,
            };
            let key = self.keys.value(i).to_string();
            if let Some(number @ (OwnedValue::I64(_) | OwnedValue::F64(_))) = &value {
                numbers.insert(key.clone(), number.clone());
            }
            all.insert(
                key,
                value.unwrap_or_else(|| OwnedValue::Str(text.to_string())),
            );
        }
        (all, numbers)
    }
}

/// Packs the index's files (`meta.json` and the segment's), in name order.
fn pack_directory(dir: &ManagedDirectory) -> Result<Bytes> {
    let mut names: Vec<PathBuf> = dir.list_managed_files().into_iter().collect();
    names.sort();
    let mut out = BytesMut::new();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let data = dir
            .atomic_read(&name)
            .map_err(|e| StorageError::Io(std::io::Error::other(e)))?;
        files.push(PackedFile {
            name: name.to_string_lossy().into_owned(),
            offset: out.len() as u64,
            len: data.len() as u64,
        });
        out.put_slice(&data);
    }
    let footer = serde_json::to_vec(&Footer { files }).expect("footer serialises");
    out.put_slice(&footer);
    out.put_u64_le(footer.len() as u64);
    out.put_slice(MAGIC);
    Ok(out.freeze())
}

/// Opens a packed index held in memory.
pub fn open_packed_index(packed: &Bytes) -> Result<Index> {
    let corrupt = |why: &str| StorageError::CorruptIndex(why.to_string());
    let tail = packed
        .len()
        .checked_sub(16)
        .ok_or_else(|| corrupt("shorter than its footer"))?;
    if &packed[tail + 8..] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let footer_len =
        u64::from_le_bytes(packed[tail..tail + 8].try_into().expect("8 bytes")) as usize;
    let footer_start = tail
        .checked_sub(footer_len)
        .ok_or_else(|| corrupt("footer length"))?;
    let footer: Footer =
        serde_json::from_slice(&packed[footer_start..tail]).map_err(|e| corrupt(&e.to_string()))?;
    let dir = RamDirectory::create();
    for file in footer.files {
        let (start, end) = (file.offset as usize, (file.offset + file.len) as usize);
        if end > footer_start || start > end {
            return Err(corrupt("file range outside the pack"));
        }
        dir.atomic_write(Path::new(&file.name), &packed[start..end])?;
    }
    Ok(Index::open(dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use porthole_proto::common::{AnyValue, KeyValue, any_value::Value};
    use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
    use tantivy::collector::TopDocs;
    use tantivy::query::QueryParser;

    fn body(text: &str, order: &str, status: i64) -> LogRecord {
        let kv = |key: &str, value: Value| KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        };
        LogRecord {
            time_unix_nano: 1,
            body: Some(AnyValue {
                value: Some(Value::StringValue(text.into())),
            }),
            attributes: vec![
                kv("order", Value::StringValue(order.into())),
                kv("status", Value::IntValue(status)),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn packed_index_finds_rows_by_body_and_attribute() {
        let request = porthole_proto::logs_service::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        body("all good", "1", 200),
                        body("connection refused by upstream", "2", 503),
                        body("fine", "3", 1000),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let batch = crate::logs::convert_logs(&request, 0).batch;
        let packed = build_packed_index(Signal::Logs, &batch).unwrap().unwrap();
        let index = open_packed_index(&packed).unwrap();
        // Nothing is stored, but each document's store entry is zstd-compressed.
        assert!(matches!(
            index.settings().docstore_compression,
            Compressor::Zstd(_)
        ));
        let searcher = index.reader().unwrap().searcher();
        let schema = index.schema();
        let parser = QueryParser::for_index(&index, vec![schema.get_field("body").unwrap()]);
        let row = |query: &str| -> Vec<u64> {
            let mut rows: Vec<u64> = {
                let hits = searcher
                    .search(
                        &parser.parse_query(query).unwrap(),
                        &TopDocs::with_limit(10).order_by_score(),
                    )
                    .unwrap();
                hits.into_iter()
                    .map(|(_, address)| {
                        searcher
                            .segment_reader(address.segment_ord)
                            .fast_fields()
                            .u64("row")
                            .unwrap()
                            .first(address.doc_id)
                            .unwrap()
                    })
                    .collect()
            };
            rows.sort();
            rows
        };
        assert_eq!(row("\"connection refused\""), [1]);
        assert_eq!(row("attributes.order:3"), [2]);

        // Attribute values keep their type: numeric ranges, not string order.
        assert_eq!(row("attribute_numbers.status:>=500"), [1, 2]);
        assert_eq!(
            row("attribute_numbers.status:>=500 AND attribute_numbers.status:<1000"),
            [1]
        );
        assert!(row("missing").is_empty());
    }

    #[test]
    fn corrupt_packs_are_errors_not_panics() {
        for bad in [
            Bytes::new(),
            Bytes::from_static(b"0123456789abcdefPHIDX001"),
            Bytes::from(vec![0u8; 64]),
        ] {
            assert!(open_packed_index(&bad).is_err());
        }
    }
}
