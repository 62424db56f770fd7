//! The full-text index beside each data file, packed into one object.
//!
//! A tantivy index is a handful of files. Like a Quickwit split, they are concatenated into
//! ONE object with a footer of offsets, so a reader on S3 needs the footer and the ranges it
//! wants, never one GET per index file. Document `row` = the row's ordinal in the data file.
//!
//! Layout: `[file bytes…][footer JSON][footer length: u64 LE][MAGIC]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, MapArray, RecordBatch, StringArray};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tantivy::directory::{Directory, ManagedDirectory, RamDirectory};
use tantivy::schema::document::{Document, ReferenceValue, ReferenceValueLeaf, Value};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, JsonObjectOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::tokenizer::{TextAnalyzer, Token, TokenStream, Tokenizer, TokenizerManager};
use tantivy::{Index, IndexSettings};

use crate::{Result, Signal, StorageError};

const MAGIC: &[u8; 8] = b"PHIDX001";

/// Index field holding the numeric attributes again, as fast fields, for range queries.
pub const NUMERIC_ATTRIBUTES: &str = "attribute_numbers";
/// Sizes the single-segment writer's initial term table (tantivy caps it at 512K entries
/// and grows it as needed); it does not split a file's index into segments.
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
            // Why a span failed, searched with its name: the status message and the
            // exceptions it recorded ([`EXCEPTION_ATTRIBUTES`] of its `exception` events).
            schema.add_text_field(SPAN_STATUS_MESSAGE, text_options());
        }
        Signal::Metrics => {}
    }
    Some(schema.build())
}

/// Words of the text column, lowercased, with positions for phrases; no norms.
fn text_options() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TEXT_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions)
            .set_fieldnorms(false),
    )
}

/// The tokenizer of the text column (indexes written before it use tantivy's `default`):
/// `default` (words split at anything not alphanumeric, over 40 bytes dropped, lowercased)
/// without the fractional seconds of clock times. In `10:15:30.123456789Z` those digits
/// are a new term on nearly every line (a term dictionary entry, a posting list and a
/// position each) that nobody searches for: time is the `timestamp` field's job. The
/// same tokenizer reads the query, so a timestamp typed into a search matches to the
/// second.
const TEXT_TOKENIZER: &str = "words";

/// The tokenizers an index is written and read with.
fn tokenizers() -> TokenizerManager {
    let manager = TokenizerManager::default();
    manager.register(TEXT_TOKENIZER, TextAnalyzer::from(Words));
    manager
}

/// Words longer than this many bytes are not terms (tantivy's `RemoveLongFilter`, as in
/// its `default` tokenizer): base64 blobs and the like, never searched for a word.
const MAX_WORD_BYTES: usize = 40;

/// The `words` tokenizer in one pass. It yields exactly the tokens (text, position and
/// offsets) of tantivy's `SimpleTokenizer` → skip [`is_fractional_seconds`] →
/// `RemoveLongFilter::limit(40)` → `LowerCaser`, the chain indexes were first written
/// with, but scans ASCII bytewise and copies only the words it keeps, where the chain
/// decoded every character and copied every word before its filters looked at it.
#[derive(Clone)]
struct Words;

impl Tokenizer for Words {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        WordStream {
            text,
            next: 0,
            token: Token::default(),
        }
    }
}

struct WordStream<'a> {
    text: &'a str,
    /// Byte offset where the search for the next word starts.
    next: usize,
    token: Token,
}

impl WordStream<'_> {
    /// The next run of alphanumeric characters (`char::is_alphanumeric`, as
    /// `SimpleTokenizer`), from `self.next` on.
    fn next_word(&mut self) -> Option<(usize, usize)> {
        let text = self.text;
        let alphanumeric_at = |at: usize| -> (bool, usize) {
            let byte = text.as_bytes()[at];
            if byte.is_ascii() {
                (byte.is_ascii_alphanumeric(), 1)
            } else {
                let c = text[at..].chars().next().expect("at a char boundary");
                (c.is_alphanumeric(), c.len_utf8())
            }
        };
        let mut at = self.next;
        let start = loop {
            if at >= text.len() {
                self.next = at;
                return None;
            }
            let (word, len) = alphanumeric_at(at);
            if word {
                break at;
            }
            at += len;
        };
        let mut end = start;
        while end < text.len() {
            let (word, len) = alphanumeric_at(end);
            if !word {
                break;
            }
            end += len;
        }
        self.next = end;
        Some((start, end))
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        while let Some((start, end)) = self.next_word() {
            // Every word counts for positions, also those not kept, as in the chain.
            self.token.position = self.token.position.wrapping_add(1);
            if end - start >= MAX_WORD_BYTES || is_fractional_seconds(self.text, start, end) {
                continue;
            }
            let word = &self.text[start..end];
            self.token.offset_from = start;
            self.token.offset_to = end;
            self.token.text.clear();
            if word.is_ascii() {
                self.token.text.push_str(word);
                self.token.text.make_ascii_lowercase();
            } else {
                // Character by character, as `LowerCaser` (no final-sigma rule).
                for c in word.chars() {
                    self.token.text.extend(c.to_lowercase());
                }
            }
            return true;
        }
        false
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

/// Whether the word `text[start..end]` is the fraction of a second of a clock time:
/// digits (and the zone letter `Z`) right after `:SS.` or `:SS,` (`10:15:30.123Z`,
/// `10:15:30,123`).
fn is_fractional_seconds(text: &str, start: usize, end: usize) -> bool {
    let word = &text[start..end];
    let digits = word.strip_suffix(['Z', 'z']).unwrap_or(word);
    let before = start
        .checked_sub(4)
        .and_then(|from| text.as_bytes().get(from..start));
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(before, Some([b':', tens, ones, b'.' | b','])
            if tens.is_ascii_digit() && ones.is_ascii_digit())
}

/// One exact term per value: no frequencies, positions or norms.
fn exact_indexing() -> TextFieldIndexing {
    TextFieldIndexing::default()
        .set_tokenizer("raw")
        .set_index_option(IndexRecordOption::Basic)
        .set_fieldnorms(false)
}

/// Builds and packs the index of one data file's rows; `None` for signals without one.
///
/// One segment, written in the calling thread: each document is a view of one Arrow row
/// ([`RowDocument`]), so no text is copied into a document before tantivy tokenizes it,
/// and no segment merge follows, however many rows the file holds.
pub fn build_packed_index(signal: Signal, batch: &RecordBatch) -> Result<Option<Bytes>> {
    let Some(schema) = index_schema(signal) else {
        return Ok(None);
    };
    let rows = Arc::new(IndexedRows::new(&schema, batch)?);
    let mut writer = Index::builder()
        .schema(schema)
        .settings(IndexSettings {
            // No field is stored, yet every document keeps an entry (its offset) in the
            // document store: lz4 leaves those at ~4 bytes a row, zstd at well under one.
            docstore_compression: Compressor::Zstd(ZstdCompressor::default()),
            ..IndexSettings::default()
        })
        .tokenizers(tokenizers())
        .single_segment_index_writer(RamDirectory::create(), WRITER_MEMORY_BYTES)?;
    for row in 0..batch.num_rows() {
        writer.add_document(RowDocument::new(rows.clone(), row))?;
    }
    let index = writer.finalize()?;
    pack_directory(index.directory()).map(Some)
}

/// OpenTelemetry's exception attributes, whose text is searched with a log's body and a
/// span's name. A logger that logs an exception (Python's `log.exception`, a Java
/// appender) sends the message it was given as the body and the exception as these
/// attributes; a span records it as an `exception` event holding them. Without them
/// `ZeroDivisionError` or a frame of the stack trace finds nothing, where every other log
/// tool (the line of a container's log holds the trace) finds it. They are indexed as more
/// values of the body (of the span's [`SPAN_STATUS_MESSAGE`] field); phrases do not run
/// from one value into the next.
const EXCEPTION_ATTRIBUTES: [&str; 3] = [
    "exception.type",
    "exception.message",
    "exception.stacktrace",
];

/// The spans index field of the status message and recorded exceptions' text.
pub const SPAN_STATUS_MESSAGE: &str = "status_message";

/// Where each indexed field's values come from: the batch's columns, taken apart once.
struct IndexedRows {
    columns: Vec<(Field, Source)>,
    /// The attribute map, indexed twice: every value (typed) and the numeric ones alone.
    attributes: Option<(Field, Field, AttributeColumns)>,
    /// The field that holds a row's exceptions' text ([`EXCEPTION_ATTRIBUTES`]): a log's
    /// body, a span's [`SPAN_STATUS_MESSAGE`].
    exception_text: Option<Field>,
    /// Spans: the `events` column, where their exceptions are ([`recorded_exceptions`]).
    events: Option<StringArray>,
    /// Logs: the `body` and `body_type` columns, for [`structured_body`].
    bodies: Option<(StringArray, StringArray)>,
}

/// A log body that is structured: a JSON log line, or a map or array body.
struct StructuredBody {
    /// Its plain JSON text, for the body's words, where its stored text is OTLP/JSON's
    /// nesting (whose `kvlistValue`, `stringValue`… would be words of every map body).
    text: Option<String>,
    /// Its fields, when it is an object: searched as attributes are.
    object: Option<serde_json::Value>,
}

/// The longest body whose JSON fields are indexed: a JSON log line is a few KiB at most
/// (the collector cuts lines at 64 KiB); a larger body is a payload, searched by its words.
const MAX_STRUCTURED_BODY_BYTES: usize = 64 * 1024;

/// A log row's body as JSON, when it is structured: a string body that is a JSON object
/// (a JSON log line, as half of all containers write them), the `key=value` pairs of a plain
/// text line ([`crate::logfmt`]), or a map or array body (Python's
/// `logger.info({...})` through the OTel SDK) as plain JSON. The fields of an object are
/// indexed as attributes are, so `user:u1` or `status:>=500` find a JSON log line whose
/// `user` or `status` says so, as Quickwit and OpenObserve find them and Loki's `| json`
/// does at query time; and a map body's words are those of its plain JSON. Parsed for one
/// document at a time, so a file's bodies are never all held parsed at once (several times
/// their text).
fn structured_body(
    bodies: &StringArray,
    types: &StringArray,
    row: usize,
) -> Option<StructuredBody> {
    if !bodies.is_valid(row) || bodies.value(row).len() > MAX_STRUCTURED_BODY_BYTES {
        return None;
    }
    let text = bodies.value(row);
    match types.value(row) {
        "string" if text.trim_start().starts_with('{') => {
            let object = serde_json::from_str::<serde_json::Value>(text).ok()?;
            object.is_object().then_some(StructuredBody {
                text: None,
                object: Some(object),
            })
        }
        "string" => Some(StructuredBody {
            text: None,
            object: Some(serde_json::Value::Object(crate::logfmt::fields(text)?)),
        }),
        "kvlist" | "array" => {
            let plain = crate::attributes::plain_json(&serde_json::from_str(text).ok()?);
            Some(StructuredBody {
                text: Some(plain.to_string()),
                object: plain.is_object().then_some(plain),
            })
        }
        _ => None,
    }
}

/// The text of a log's [`EXCEPTION_ATTRIBUTES`].
fn logged_exceptions(attributes: &AttributeColumns, row: usize) -> Vec<String> {
    attributes
        .entries(row)
        .filter(|&i| {
            let key = attributes.keys.value(i);
            key.starts_with("exception.")
                && EXCEPTION_ATTRIBUTES.contains(&key)
                && attributes.texts.is_valid(i)
        })
        .map(|i| attributes.texts.value(i).to_owned())
        .collect()
}

/// The text of the [`EXCEPTION_ATTRIBUTES`] of each `exception` event in a span's `events`
/// (OTLP/JSON text), which is parsed only when it names one.
fn recorded_exceptions(events: &StringArray, row: usize) -> Vec<String> {
    if !events.is_valid(row) || !events.value(row).contains("\"exception") {
        return Vec::new();
    }
    let Ok(serde_json::Value::Array(events)) = serde_json::from_str(events.value(row)) else {
        return Vec::new();
    };
    let exceptions = events.iter().filter(|e| e["name"] == "exception");
    let attributes = exceptions.flat_map(|e| e["attributes"].as_array().into_iter().flatten());
    attributes
        .filter(|kv| {
            kv["key"]
                .as_str()
                .is_some_and(|key| EXCEPTION_ATTRIBUTES.contains(&key))
        })
        .filter_map(|kv| kv["value"]["stringValue"].as_str().map(str::to_owned))
        .collect()
}

enum Source {
    /// The row's ordinal in the data file.
    Row,
    I64(ScalarBuffer<i64>),
    /// An Int64 column indexed as u64 (`record_id`, never negative).
    U64(ScalarBuffer<i64>),
    Text(StringArray),
    /// A log's body: its text, or the plain JSON text of a structured one.
    Body(StringArray),
}

impl IndexedRows {
    fn new(schema: &Schema, batch: &RecordBatch) -> Result<Self> {
        let mut columns = Vec::new();
        let mut attributes = None;
        for (field, entry) in schema.fields() {
            let name = entry.name();
            if name == NUMERIC_ATTRIBUTES {
                continue;
            }
            if name == "row" {
                columns.push((field, Source::Row));
                continue;
            }
            let Some(column) = batch.column_by_name(name) else {
                continue;
            };
            if name == "attributes" {
                let numbers = schema.get_field(NUMERIC_ATTRIBUTES)?;
                attributes = Some((field, numbers, AttributeColumns::new(column.as_map())));
                continue;
            }
            let source = match column.data_type() {
                DataType::Utf8 if name == "body" => Source::Body(column.as_string::<i32>().clone()),
                DataType::Utf8 => Source::Text(column.as_string::<i32>().clone()),
                DataType::Timestamp(TimeUnit::Microsecond, _) => Source::I64(
                    column
                        .as_primitive::<TimestampMicrosecondType>()
                        .values()
                        .clone(),
                ),
                DataType::Int64 => {
                    let values = column.as_primitive::<Int64Type>().values().clone();
                    match entry.field_type().value_type() {
                        tantivy::schema::Type::U64 => Source::U64(values),
                        _ => Source::I64(values),
                    }
                }
                other => {
                    return Err(StorageError::CorruptIndex(format!(
                        "cannot index column {name:?} of type {other}"
                    )));
                }
            };
            columns.push((field, source));
        }
        if let Some(required) = ["timestamp", "record_id", "duration_ns"]
            .into_iter()
            .find(|name| schema.get_field(name).is_ok() && batch.column_by_name(name).is_none())
        {
            return Err(StorageError::CorruptIndex(format!(
                "rows without a {required:?} column"
            )));
        }
        Ok(Self {
            columns,
            attributes,
            exception_text: (schema.get_field("body"))
                .or_else(|_| schema.get_field(SPAN_STATUS_MESSAGE))
                .ok(),
            events: schema
                .get_field(SPAN_STATUS_MESSAGE)
                .ok()
                .and(batch.column_by_name("events"))
                .map(|events| events.as_string::<i32>().clone()),
            bodies: batch
                .column_by_name("body")
                .zip(batch.column_by_name("body_type"))
                .map(|(bodies, types)| {
                    let text = |column: &arrow::array::ArrayRef| column.as_string::<i32>().clone();
                    (text(bodies), text(types))
                }),
        })
    }
}

/// One row of an [`IndexedRows`] as a tantivy document; its values borrow the columns,
/// and what this row's body or events parse to, held while the document is indexed.
struct RowDocument {
    rows: Arc<IndexedRows>,
    row: usize,
    /// A log's body, when it is structured.
    structured: Option<StructuredBody>,
    /// The text of the exceptions a log carries or a span recorded.
    exceptions: Vec<String>,
}

impl RowDocument {
    fn new(rows: Arc<IndexedRows>, row: usize) -> Self {
        let structured = (rows.bodies.as_ref()).and_then(|(b, t)| structured_body(b, t, row));
        let exceptions = match (&rows.events, &rows.attributes) {
            (Some(events), _) => recorded_exceptions(events, row),
            (None, Some((_, _, attributes))) => logged_exceptions(attributes, row),
            _ => Vec::new(),
        };
        Self {
            rows,
            row,
            structured,
            exceptions,
        }
    }
}

impl Document for RowDocument {
    type Value<'a> = RowValue<'a>;
    type FieldsValuesIter<'a> = RowFields<'a>;

    fn iter_fields_and_values(&self) -> RowFields<'_> {
        RowFields {
            doc: self,
            next: 0,
            exceptions: 0,
        }
    }
}

/// The fields of one row: its columns' values (nulls skipped), its exceptions' text, then
/// its attributes and its structured body's fields.
struct RowFields<'a> {
    doc: &'a RowDocument,
    next: usize,
    /// How many of the row's exceptions' texts were given.
    exceptions: usize,
}

impl<'a> Iterator for RowFields<'a> {
    type Item = (Field, RowValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let (rows, row): (&'a IndexedRows, usize) = (&self.doc.rows, self.doc.row);
        while let Some((field, source)) = rows.columns.get(self.next) {
            self.next += 1;
            let leaf = match source {
                Source::Row => ReferenceValueLeaf::U64(row as u64),
                Source::I64(values) => ReferenceValueLeaf::I64(values[row]),
                Source::U64(values) => ReferenceValueLeaf::U64(values[row] as u64),
                Source::Text(texts) | Source::Body(texts) if !texts.is_valid(row) => continue,
                Source::Text(texts) => ReferenceValueLeaf::Str(texts.value(row)),
                Source::Body(texts) => {
                    let plain = self.doc.structured.as_ref().and_then(|b| b.text.as_deref());
                    ReferenceValueLeaf::Str(plain.unwrap_or(texts.value(row)))
                }
            };
            return Some((*field, RowValue::Leaf(leaf)));
        }
        if let Some(field) = rows.exception_text
            && let Some(text) = self.doc.exceptions.get(self.exceptions)
        {
            self.exceptions += 1;
            return Some((field, RowValue::Leaf(ReferenceValueLeaf::Str(text))));
        }
        let (all, numbers, columns) = rows.attributes.as_ref()?;
        let attribute = |numbers_only| RowValue::Attributes {
            columns,
            row,
            numbers_only,
        };
        let extra = self.next - rows.columns.len();
        self.next += 1;
        // Then the fields of a structured body, into the same two fields.
        let body = || self.doc.structured.as_ref()?.object.as_ref();
        match extra {
            0 => Some((*all, attribute(false))),
            1 => Some((*numbers, attribute(true))),
            2 => Some((*all, RowValue::json(body()?, false))),
            3 => Some((*numbers, RowValue::json(body()?, true))),
            _ => None,
        }
    }
}

/// A value tantivy indexes: a column's leaf, a row's attributes as a JSON object, or a
/// structured body's JSON.
#[derive(Clone, Debug)]
enum RowValue<'a> {
    Leaf(ReferenceValueLeaf<'a>),
    Attributes {
        columns: &'a AttributeColumns,
        row: usize,
        /// Only the numeric values: the fast-field copy for range queries.
        numbers_only: bool,
    },
    Json {
        value: &'a serde_json::Value,
        /// Only numbers, and the objects and arrays holding them.
        numbers_only: bool,
    },
}

impl<'a> RowValue<'a> {
    fn json(value: &'a serde_json::Value, numbers_only: bool) -> Self {
        RowValue::Json {
            value,
            numbers_only,
        }
    }
}

/// Whether a JSON string is a date and time (`2026-12-07T10:00:00.123Z`, `2026-12-07
/// 10:00:00,123`): a body's `ts` or `time` field, unique on nearly every line (a term each)
/// and never searched for by its exact value; the `timestamp` field is what time ranges
/// use.
fn is_clock_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 16
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
}

/// Whether a JSON value of a structured body is indexed: all but the strings that are
/// clock times ([`is_clock_time`]); in the numbers-only copy, numbers and what may hold
/// them.
fn is_indexed(value: &serde_json::Value, numbers_only: bool) -> bool {
    use serde_json::Value::{Array, Number, Object, String};
    match value {
        Number(_) | Object(_) | Array(_) => true,
        String(text) => !numbers_only && !is_clock_time(text),
        _ => !numbers_only,
    }
}

impl<'a> Value<'a> for RowValue<'a> {
    type ArrayIter = JsonItems<'a>;
    type ObjectIter = ObjectEntries<'a>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        use serde_json::Value as Json;
        match self {
            RowValue::Leaf(leaf) => ReferenceValue::Leaf(leaf.clone()),
            RowValue::Attributes {
                columns,
                row,
                numbers_only,
            } => ReferenceValue::Object(ObjectEntries::Attributes(AttributeEntries {
                columns,
                entries: columns.entries(*row),
                numbers_only: *numbers_only,
            })),
            // Strings stay text (tantivy's own JSON would make RFC 3339 ones dates, which
            // an attribute's exact value is not).
            RowValue::Json {
                value,
                numbers_only,
            } => match value {
                Json::Null => ReferenceValue::Leaf(ReferenceValueLeaf::Null),
                Json::Bool(b) => ReferenceValue::Leaf(ReferenceValueLeaf::Bool(*b)),
                Json::Number(n) => ReferenceValue::Leaf(match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => ReferenceValueLeaf::I64(i),
                    (None, Some(u)) => ReferenceValueLeaf::U64(u),
                    _ => ReferenceValueLeaf::F64(n.as_f64().unwrap_or(f64::NAN)),
                }),
                Json::String(text) => ReferenceValue::Leaf(ReferenceValueLeaf::Str(text)),
                Json::Array(items) => ReferenceValue::Array(JsonItems {
                    items: items.iter(),
                    numbers_only: *numbers_only,
                }),
                Json::Object(fields) => ReferenceValue::Object(ObjectEntries::Json {
                    fields: fields.iter(),
                    numbers_only: *numbers_only,
                }),
            },
        }
    }
}

/// The items of a JSON array that are indexed ([`is_indexed`]).
#[derive(Clone, Debug)]
struct JsonItems<'a> {
    items: std::slice::Iter<'a, serde_json::Value>,
    numbers_only: bool,
}

impl<'a> Iterator for JsonItems<'a> {
    type Item = RowValue<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let numbers_only = self.numbers_only;
        let value = self
            .items
            .by_ref()
            .find(|value| is_indexed(value, numbers_only))?;
        Some(RowValue::json(value, numbers_only))
    }
}

/// The entries of an object: a row's attributes, or a JSON object's fields.
enum ObjectEntries<'a> {
    Attributes(AttributeEntries<'a>),
    Json {
        fields: serde_json::map::Iter<'a>,
        numbers_only: bool,
    },
}

impl<'a> Iterator for ObjectEntries<'a> {
    type Item = (&'a str, RowValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ObjectEntries::Attributes(entries) => entries.next(),
            ObjectEntries::Json {
                fields,
                numbers_only,
            } => {
                let numbers_only = *numbers_only;
                let (key, value) = fields
                    .by_ref()
                    .find(|(_, value)| is_indexed(value, numbers_only))?;
                Some((key.as_str(), RowValue::json(value, numbers_only)))
            }
        }
    }
}

/// The attribute column's parts, taken apart once per batch: row `r`'s entries are
/// `offsets[r]..offsets[r + 1]` of the key, type and text columns.
#[derive(Debug)]
struct AttributeColumns {
    offsets: ScalarBuffer<i32>,
    keys: StringArray,
    types: StringArray,
    texts: StringArray,
}

impl AttributeColumns {
    fn new(map: &MapArray) -> Self {
        let values = map.values().as_struct();
        Self {
            offsets: map.offsets().inner().clone(),
            keys: map.keys().as_string::<i32>().clone(),
            types: values.column(0).as_string::<i32>().clone(),
            texts: values.column(1).as_string::<i32>().clone(),
        }
    }

    /// Row `row`'s entries.
    fn entries(&self, row: usize) -> std::ops::Range<usize> {
        self.offsets[row] as usize..self.offsets[row + 1] as usize
    }

    /// Entry `i`'s value with its OTLP type, so `status:>=500` is a numeric range; values
    /// of other types (and numbers that do not parse) are text.
    fn value(&self, i: usize) -> ReferenceValueLeaf<'_> {
        let text = self.texts.value(i);
        let typed = match self.types.value(i) {
            "int" => text.parse().ok().map(ReferenceValueLeaf::I64),
            "double" => text.parse().ok().map(ReferenceValueLeaf::F64),
            "bool" => text.parse().ok().map(ReferenceValueLeaf::Bool),
            _ => None,
        };
        typed.unwrap_or(ReferenceValueLeaf::Str(text))
    }
}

/// One row's attributes as the entries of a JSON object.
struct AttributeEntries<'a> {
    columns: &'a AttributeColumns,
    entries: std::ops::Range<usize>,
    numbers_only: bool,
}

impl<'a> Iterator for AttributeEntries<'a> {
    type Item = (&'a str, RowValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        for i in self.entries.by_ref() {
            if !self.columns.texts.is_valid(i) {
                continue;
            }
            let value = self.columns.value(i);
            if self.numbers_only
                && !matches!(
                    value,
                    ReferenceValueLeaf::I64(_) | ReferenceValueLeaf::F64(_)
                )
            {
                continue;
            }
            return Some((self.columns.keys.value(i), RowValue::Leaf(value)));
        }
        None
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
    let mut index = Index::open(dir)?;
    index.set_tokenizers(tokenizers());
    Ok(index)
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

    /// The packed index of `records`, as a reader opens it.
    fn index_of(records: Vec<LogRecord>) -> Index {
        let request = porthole_proto::logs_service::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let batch = crate::logs::convert_logs(&request, 0).batch;
        let packed = build_packed_index(Signal::Logs, &batch).unwrap().unwrap();
        open_packed_index(&packed).unwrap()
    }

    /// The rows (data file ordinals) `query` matches, in order.
    fn rows_matching(index: &Index, query: &str) -> Vec<u64> {
        rows_matching_in(index, &["body"], query)
    }

    /// The rows `query` matches, its unqualified words searching `fields`, in order.
    fn rows_matching_in(index: &Index, fields: &[&str], query: &str) -> Vec<u64> {
        let searcher = index.reader().unwrap().searcher();
        let fields = fields.iter().map(|f| index.schema().get_field(f).unwrap());
        let parser = QueryParser::for_index(index, fields.collect());
        let hits = searcher
            .search(
                &parser.parse_query(query).unwrap(),
                &TopDocs::with_limit(10).order_by_score(),
            )
            .unwrap();
        let mut rows: Vec<u64> = hits
            .into_iter()
            .map(|(_, address)| {
                searcher
                    .segment_reader(address.segment_ord)
                    .fast_fields()
                    .u64("row")
                    .unwrap()
                    .first(address.doc_id)
                    .unwrap()
            })
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn packed_index_finds_rows_by_body_and_attribute() {
        let index = index_of(vec![
            body("all good", "1", 200),
            body("connection refused by upstream", "2", 503),
            body("fine", "3", 1000),
        ]);
        // Nothing is stored, but each document's store entry is zstd-compressed.
        assert!(matches!(
            index.settings().docstore_compression,
            Compressor::Zstd(_)
        ));
        assert_eq!(index.searchable_segment_ids().unwrap().len(), 1);
        let row = |query: &str| rows_matching(&index, query);
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

    /// `log.exception("unhandled error in worker")` through the OTel SDK: the body is the
    /// message, the exception is in attributes. Its words are found as the body's.
    #[test]
    fn an_exceptions_type_message_and_stack_trace_are_searched_with_the_body() {
        let text = |key: &str, text: &str| KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(text.into())),
            }),
            ..Default::default()
        };
        let mut failed = body("unhandled error in worker", "1", 500);
        failed.attributes.extend([
            text("exception.type", "ZeroDivisionError"),
            text("exception.message", "division by zero"),
            text(
                "exception.stacktrace",
                "Traceback (most recent call last):\n  File \"/app/worker.py\", line 12, in run\n    1/0\nZeroDivisionError: division by zero\n",
            ),
        ]);
        let mut other = body("all good", "2", 200);
        other
            .attributes
            .push(text("note", "ZeroDivisionError traceback"));
        let index = index_of(vec![other, failed]);
        let row = |query: &str| rows_matching(&index, query);
        assert_eq!(row("zerodivisionerror"), [1]);
        assert_eq!(row("\"division by zero\""), [1]);
        assert_eq!(row("worker AND traceback"), [1]);
        assert_eq!(row("\"worker.py\""), [1]);
        assert_eq!(row("\"unhandled error in worker\""), [1]);
        // A phrase does not run from the body into the stack trace...
        assert!(row("\"worker traceback\"").is_empty());
        // ...other attributes are still exact values, not words of the body...
        assert!(row("note").is_empty());
        // ...and the exception's attributes are still found as attributes.
        assert_eq!(row("attributes.exception.type:ZeroDivisionError"), [1]);
    }

    /// A JSON log line's fields, and a map body's, are found as attributes are: exact
    /// values, numeric ranges, nested objects by dotted path, array items. A map body's
    /// words are those of its plain JSON, not OTLP/JSON's nesting.
    #[test]
    fn the_fields_of_a_json_log_line_or_a_map_body_are_found_as_attributes() {
        use porthole_proto::common::{KeyValueList, any_value::Value as Any};
        let json_line = body(
            r#"{"level":"error","msg":"payment failed","user":"u1","status":503,"latency_ms":12.5,"tags":["eu","retry"],"http":{"route":"/pay","code":502},"at":"2026-12-07T10:00:00Z"}"#,
            "1",
            200,
        );
        let not_json = body("{not json at all", "2", 200);
        let array_line = body("[1, 2, 3]", "3", 200);
        let mut map_body = body("", "4", 200);
        let kv = |key: &str, value: Any| KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        };
        map_body.body = Some(AnyValue {
            value: Some(Any::KvlistValue(KeyValueList {
                values: vec![
                    kv("event", Any::StringValue("checkout".into())),
                    kv("items", Any::IntValue(42)),
                ],
            })),
        });
        let index = index_of(vec![json_line, not_json, array_line, map_body]);
        let row = |query: &str| rows_matching(&index, query);
        assert_eq!(row("attributes.user:u1"), [0]);
        assert_eq!(row("attributes.level:error"), [0]);
        assert_eq!(row("attributes.msg:\"payment failed\""), [0]);
        assert_eq!(row("attribute_numbers.status:>=500"), [0]);
        assert_eq!(row("attribute_numbers.status:[200 TO 200]"), [0, 1, 2, 3]);
        assert_eq!(row("attribute_numbers.latency_ms:[10 TO 20]"), [0]);
        assert_eq!(row("attributes.http.route:\"/pay\""), [0]);
        assert_eq!(row("attribute_numbers.http.code:>=500"), [0]);
        assert_eq!(row("attributes.tags:retry"), [0]);
        // A clock time is no field value (a term per line, never searched exactly), but
        // its words are the line's.
        assert!(row("attributes.at:\"2026-12-07T10:00:00Z\"").is_empty());
        assert_eq!(row("\"2026-12-07T10:00:00Z\""), [0]);
        assert!(is_clock_time("2026-12-07 10:00:00,123") && !is_clock_time("2026-12-07"));
        // The record's own attributes are still there beside the body's fields.
        assert_eq!(row("attributes.order:1"), [0]);
        // Words of the line as before; a body that is no JSON object has no fields.
        assert_eq!(row("payment AND u1"), [0]);
        assert_eq!(row("\"not json\""), [1]);
        assert_eq!(row("attributes.event:checkout"), [3]);
        assert_eq!(row("attribute_numbers.items:>=40"), [3]);
        assert_eq!(row("\"event checkout\""), [3]);
        assert!(row("stringvalue OR kvlistvalue").is_empty());

        // Keys and values of any shape are indexed without harm.
        let odd = [
            r#"{"": 1, "a\u0001b": "x", "\u0000": null, "deep": {"a": {"b": {"c": [1, "y", {"z": true}]}}}}"#,
            r#"{"big": 18446744073709551615, "neg": -9223372036854775808, "f": 1e308, "dup": 1, "dup": "two"}"#,
            r#"{"trailing": 1} and more"#,
            "{}",
        ];
        let index = index_of(odd.iter().map(|text| body(text, "5", 200)).collect());
        assert_eq!(rows_matching(&index, "attributes.deep.a.b.c:y"), [0]);
        assert_eq!(rows_matching(&index, "attributes.dup:two"), [1]);
    }

    /// The `key=value` pairs of a plain text line are its fields, as a JSON line's are:
    /// numbers for ranges, text exact, a clock time left out; its words are unchanged.
    #[test]
    fn the_pairs_of_a_logfmt_line_are_found_as_attributes() {
        let lines = [
            "2026-12-07T10:00:00Z INFO POST /pay status=503 duration_ms=1840 user=u1 http.route=/pay",
            r#"time=2026-12-07T10:00:01Z level=ERROR msg="payment failed" attempt=2 ok=true"#,
            "GET /search?status=503 took 12 ms",
        ];
        let index = index_of(lines.iter().map(|text| body(text, "1", 200)).collect());
        let row = |query: &str| rows_matching(&index, query);
        assert_eq!(row("attribute_numbers.status:>=500"), [0]);
        assert_eq!(row("attributes.status:503"), [0]);
        assert_eq!(row("attribute_numbers.duration_ms:>1000"), [0]);
        assert_eq!(row("attributes.user:u1"), [0]);
        assert_eq!(row("attributes.http.route:\"/pay\""), [0]);
        assert_eq!(row("attributes.msg:\"payment failed\""), [1]);
        assert_eq!(
            row("attributes.level:ERROR AND attribute_numbers.attempt:>=2"),
            [1]
        );
        assert_eq!(row("attributes.ok:true"), [1]);
        assert!(row("attributes.time:\"2026-12-07T10:00:01Z\"").is_empty());
        assert_eq!(row("status AND 503"), [0, 2]);
        assert_eq!(row("\"payment failed\""), [1]);
    }

    /// A span's status message and the exceptions it recorded are words of the
    /// `status_message` field (searched with the name by default), never of `name`.
    #[test]
    fn a_spans_status_message_and_recorded_exceptions_are_words_beside_its_name() {
        use porthole_proto::trace::{ResourceSpans, ScopeSpans, Span, Status, span::Event};
        let text = |key: &str, text: &str| KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(text.into())),
            }),
            ..Default::default()
        };
        let span = |i: u8, name: &str, message: &str, events: Vec<Event>| Span {
            trace_id: vec![i; 16],
            span_id: vec![i; 8],
            name: name.into(),
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 2_000,
            status: Some(Status {
                code: 2,
                message: message.into(),
            }),
            events,
            ..Default::default()
        };
        let exception = Event {
            name: "exception".into(),
            time_unix_nano: 1_500,
            attributes: vec![
                text("exception.type", "java.net.SocketTimeoutException"),
                text("exception.message", "Read timed out"),
                text("exception.escaped", "nothing to search"),
            ],
            ..Default::default()
        };
        let not_an_exception = Event {
            name: "retry".into(),
            attributes: vec![text("exception.message", "upstream busy")],
            ..Default::default()
        };
        let request = porthole_proto::trace_service::ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        span(1, "POST /pay", "card declined", vec![]),
                        span(2, "GET /stock", "", vec![not_an_exception, exception]),
                        span(3, "declined cards report", "", vec![]),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let batch = crate::spans::convert_spans(&request, 0).batch;
        let packed = build_packed_index(Signal::Spans, &batch).unwrap().unwrap();
        let index = open_packed_index(&packed).unwrap();
        let names = |query: &str| -> Vec<String> {
            let names = batch.column_by_name("name").unwrap().as_string::<i32>();
            let mut names: Vec<String> =
                rows_matching_in(&index, &["name", "status_message"], query)
                    .into_iter()
                    .map(|row| names.value(row as usize).to_owned())
                    .collect();
            names.sort();
            names
        };
        assert_eq!(names("\"card declined\""), ["POST /pay"]);
        assert_eq!(names("declined"), ["POST /pay", "declined cards report"]);
        assert_eq!(names("sockettimeoutexception"), ["GET /stock"]);
        assert_eq!(names("\"read timed out\""), ["GET /stock"]);
        assert_eq!(names("status_message:declined"), ["POST /pay"]);
        assert_eq!(names("name:declined"), ["declined cards report"]);
        // Only `exception` events, only their exception attributes.
        assert!(names("busy").is_empty());
        assert!(names("escaped").is_empty());
    }

    #[test]
    fn fractions_of_a_second_are_not_terms_and_a_timestamp_matches_to_the_second() {
        let index = index_of(vec![
            body("2026-11-18T10:15:30.123456789Z GET /cart", "1", 200),
            body("2026-11-18 10:15:30,987 GET /cart", "2", 200),
            body("2026-11-18T10:15:31.5Z took 0.125s in v1.2", "3", 200),
        ]);
        let row = |query: &str| rows_matching(&index, query);
        // The fraction is no term, on its own or with the zone letter...
        assert!(row("123456789z").is_empty());
        assert!(row("123456789").is_empty());
        assert!(row("987").is_empty());
        // ...while the rest of the timestamp is, and a timestamp typed whole matches to
        // the second.
        assert_eq!(row("\"2026-11-18T10:15:30.123456789Z\""), [0]);
        assert_eq!(row("\"2026-11-18T10:15:30.5Z\""), [0]);
        assert_eq!(row("\"10:15:30.5\""), [1]);
        assert_eq!(row("2026 AND cart"), [0, 1]);
        // Decimals that are not clock times stay words.
        assert_eq!(row("\"0.125s\""), [2]);
        assert_eq!(row("\"v1.2\""), [2]);
        assert_eq!(row("125s"), [2]);
    }

    /// Indexes written before the one-pass [`Words`] were tokenized by tantivy's chain,
    /// and queries against them are tokenized by `Words` now: both must give the same
    /// tokens, positions (phrases) and offsets on any text.
    #[test]
    fn words_tokenizes_exactly_as_the_chain_indexes_were_first_written_with() {
        use tantivy::tokenizer::{
            LowerCaser, RemoveLongFilter, SimpleTokenizer, TokenFilter, TokenStream,
        };

        #[derive(Clone)]
        struct SkipFractions;
        #[derive(Clone)]
        struct SkipFractionsTokenizer<T>(T);
        struct SkipFractionsStream<'a, S>(&'a str, S);
        impl TokenFilter for SkipFractions {
            type Tokenizer<T: Tokenizer> = SkipFractionsTokenizer<T>;
            fn transform<T: Tokenizer>(self, tokenizer: T) -> Self::Tokenizer<T> {
                SkipFractionsTokenizer(tokenizer)
            }
        }
        impl<T: Tokenizer> Tokenizer for SkipFractionsTokenizer<T> {
            type TokenStream<'a> = SkipFractionsStream<'a, T::TokenStream<'a>>;
            fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
                SkipFractionsStream(text, self.0.token_stream(text))
            }
        }
        impl<S: TokenStream> TokenStream for SkipFractionsStream<'_, S> {
            fn advance(&mut self) -> bool {
                while self.1.advance() {
                    let token = self.1.token();
                    if !is_fractional_seconds(self.0, token.offset_from, token.offset_to) {
                        return true;
                    }
                }
                false
            }
            fn token(&self) -> &Token {
                self.1.token()
            }
            fn token_mut(&mut self) -> &mut Token {
                self.1.token_mut()
            }
        }

        let mut chain = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(SkipFractions)
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .build();
        let mut words = TextAnalyzer::from(Words);
        let tokens = |analyzer: &mut TextAnalyzer, text: &str| {
            let mut stream = analyzer.token_stream(text);
            let mut tokens = Vec::new();
            stream.process(&mut |t: &Token| {
                tokens.push((t.text.clone(), t.position, t.offset_from, t.offset_to));
            });
            tokens
        };
        let mut texts: Vec<String> = [
            "",
            "   ",
            "--==--",
            "2026-11-18T10:15:30.123456789Z GET /cart?id=42 took 0.125s",
            "2026-11-18 10:15:30,987 ERROR [checkout] request_id=9f86d081884c7d65 user=17",
            r#"{"level":"info","ts":"2026-12-06T04:56:57.123Z","msg":"db query table=orders"}"#,
            "ÉCOLE Straße İstanbul ΣΊΣΥΦΟΣ naïve 東京タワー ٣٤٥ ⅫⅪ x²",
            "a 0123456789012345678901234567890123456789 b 012345678901234567890123456789012345678 c",
            "ÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉÉ and ééééééééééééééééééé9 end",
            "emoji 🚀launch🚀 tab\tsep\nline 12:00:00.5 12:00:0.5 1:00:00.5Z :00.5 x:00.",
            "trailing word",
            "ends in a fraction 10:15:30.123Z",
        ]
        .map(String::from)
        .to_vec();
        // And lines of the benchmark's kind, with every byte class mixed in.
        let alphabet: Vec<char> = "aZ09 .,:-_/\"{}=Éß東😀\tİΣ".chars().collect();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..2000 {
            let len = (seed % 120) as usize;
            let line: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            texts.push(line);
        }
        for text in &texts {
            assert_eq!(
                tokens(&mut words, text),
                tokens(&mut chain, text),
                "{text:?}"
            );
        }
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
