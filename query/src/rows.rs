//! Stored rows as the API's JSON objects.

use arrow::array::RecordBatch;
use serde_json::{Map, Value};

use porthole_storage::{MAX_SAFE_INTEGER, int_value, plain_json as plain};

use crate::QueryError;
use crate::time::format_nanos;

/// The columns of a log row in the API, in order.
const LOG_FIELDS: [&str; 11] = [
    "severity",
    "body",
    "service",
    "namespace",
    "pod",
    "container",
    "version",
    "image_digest",
    "trace_id",
    "span_id",
    "attributes",
];

const SPAN_FIELDS: [&str; 17] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "status_code",
    "status_message",
    "duration_ns",
    "service",
    "namespace",
    "pod",
    "container",
    "version",
    "attributes",
    "resource_attributes",
    "events",
    "links",
];

/// Every row of a batch as a JSON object, via arrow's JSON writer.
pub fn batch_to_json(batch: &RecordBatch) -> Result<Vec<Map<String, Value>>, QueryError> {
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    writer
        .write(batch)
        .map_err(|e| QueryError::Internal(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| QueryError::Internal(e.to_string()))?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<Map<String, Value>> =
        serde_json::from_slice(&bytes).map_err(|e| QueryError::Internal(e.to_string()))?;
    non_finite_as_text(batch, &mut rows);
    Ok(rows)
}

/// arrow's JSON writer writes a NaN or infinite float as `null`, which reads as no value
/// (a summary's quantile over no observations is `NaN`, a gauge of 0/0 too): such floats,
/// in a column or a list column, are written as OTLP/JSON writes them, `"NaN"`,
/// `"Infinity"` and `"-Infinity"`.
fn non_finite_as_text(batch: &RecordBatch, rows: &mut [Map<String, Value>]) {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type};
    let as_text = |floats: &dyn Array| -> Option<Vec<Option<&'static str>>> {
        let floats = arrow::compute::cast(floats, &DataType::Float64).ok()?;
        let texts: Vec<_> = (floats.as_primitive::<Float64Type>().iter())
            .map(|d| d.and_then(porthole_proto::json::special_double))
            .collect();
        texts.iter().any(Option::is_some).then_some(texts)
    };
    let schema = batch.schema();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let name = field.name();
        match column.data_type() {
            DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                let Some(texts) = as_text(column) else {
                    continue;
                };
                for (row, text) in rows.iter_mut().zip(texts) {
                    if let Some(text) = text {
                        row.insert(name.clone(), Value::from(text));
                    }
                }
            }
            DataType::List(item) if item.data_type().is_floating() => {
                let lists = column.as_list::<i32>();
                for (i, row) in rows.iter_mut().enumerate() {
                    let texts = lists
                        .is_valid(i)
                        .then(|| as_text(&lists.value(i)))
                        .flatten();
                    let (Some(texts), Some(Value::Array(items))) = (texts, row.get_mut(name))
                    else {
                        continue;
                    };
                    for (item, text) in items.iter_mut().zip(texts) {
                        if let Some(text) = text {
                            *item = Value::from(text);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Every int in `value` past ±(2^53 − 1), however deep, as the string of its digits
/// ([`int_value`]'s rule): SQL's `time_unix_nano`, `record_id` and any 64-bit sum or id
/// would otherwise reach JavaScript rounded (`1796636066137030912` read as
/// `…030900`). Floats stay numbers.
pub fn big_ints_as_text(value: &mut Value) {
    match value {
        Value::Number(number) if number.is_u64() || number.is_i64() => {
            let big = number
                .as_i64()
                .is_none_or(|int| int.unsigned_abs() > MAX_SAFE_INTEGER);
            if big {
                *value = Value::String(number.to_string());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(big_ints_as_text),
        Value::Object(fields) => fields.values_mut().for_each(big_ints_as_text),
        _ => {}
    }
}

/// `{"key": {"type": "int", "value": "3"}}` → `{"key": 3}`: attributes with their types.
fn typed_attributes(value: Option<&Value>) -> Value {
    let Some(Value::Object(map)) = value else {
        return Value::Object(Map::new());
    };
    let typed = map.iter().map(|(key, v)| {
        let text = v.get("value").and_then(Value::as_str).unwrap_or_default();
        let typed = match v.get("type").and_then(Value::as_str) {
            Some("int") => int_value(text),
            // `NaN` and infinities as OTLP/JSON writes them (files written before
            // 2026-12-07 hold `inf`).
            Some("double") => match text.parse::<f64>() {
                Ok(d) => serde_json::Number::from_f64(d)
                    .map(Value::Number)
                    .or_else(|| porthole_proto::json::special_double(d).map(Value::from))
                    .unwrap_or_else(|| Value::from(text)),
                Err(_) => Value::from(text),
            },
            Some("bool") => Value::Bool(text == "true"),
            Some("array" | "kvlist") => serde_json::from_str(text)
                .map(|any| plain(&any))
                .unwrap_or_else(|_| Value::from(text)),
            Some("empty") => Value::Null,
            _ => Value::from(text),
        };
        (key.clone(), typed)
    });
    Value::Object(typed.collect())
}

fn nanos_field(row: &Map<String, Value>, names: &[&str]) -> Option<i64> {
    names
        .iter()
        .filter_map(|n| row.get(*n)?.as_i64())
        .find(|t| *t > 0)
}

fn pick(row: &Map<String, Value>, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .map(|f| {
            let value = match *f {
                "attributes" | "resource_attributes" => typed_attributes(row.get(*f)),
                "body" => body_text(row),
                "events" | "links" => row
                    .get(*f)
                    .and_then(Value::as_str)
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or(Value::Array(vec![])),
                _ => row.get(*f).cloned().unwrap_or(Value::Null),
            };
            (f.to_string(), value)
        })
        .collect()
}

/// A body that is an array or key-value list, as compact plain JSON text ([`plain`]); any
/// other body as stored.
fn body_text(row: &Map<String, Value>) -> Value {
    let body = row.get("body");
    match (row.get("body_type").and_then(Value::as_str), body) {
        (Some("array" | "kvlist"), Some(Value::String(text))) => serde_json::from_str(text)
            .map(|any| Value::from(plain(&any).to_string()))
            .unwrap_or_else(|_| Value::from(text.as_str())),
        _ => body.cloned().unwrap_or(Value::Null),
    }
}

/// A log row's time is the time it is filed under, the `timestamp` column that searches
/// order, filter and page by: its record's `time_unix_nano`, else its
/// `observed_time_unix_nano`, whichever ingest filed it by (to the nanosecond, where the
/// column holds microseconds), else the column: the time ingest received a record that
/// had neither or only implausible ones (a 1970 time showed as 1970 before, among rows of
/// today).
pub fn log_json(row: &Map<String, Value>) -> Value {
    let filed = row
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|text| crate::time::parse_time(text, 0).ok());
    let nanos = ["time_unix_nano", "observed_time_unix_nano"]
        .iter()
        .filter_map(|name| row.get(*name)?.as_i64())
        .find(|nanos| *nanos > 0 && filed.is_none_or(|micros| nanos.div_euclid(1_000) == micros))
        .or_else(|| filed?.checked_mul(1_000))
        .unwrap_or(0);
    let mut out = Map::new();
    out.insert("timestamp".into(), Value::from(format_nanos(nanos)));
    out.extend(pick(row, &LOG_FIELDS));
    Value::Object(out)
}

pub fn span_json(row: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (name, column) in [
        ("start_time", "start_time_unix_nano"),
        ("end_time", "end_time_unix_nano"),
    ] {
        out.insert(
            name.into(),
            Value::from(format_nanos(nanos_field(row, &[column]).unwrap_or(0))),
        );
    }
    out.extend(pick(row, &SPAN_FIELDS));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, Float32Array, Float64Array, Float64Builder, ListBuilder};
    use arrow::datatypes::{DataType, Field, Schema};
    use serde_json::json;

    use super::*;

    /// A record sent with neither time nor observed time (or only implausible ones) is
    /// stored at the time ingest received it, and searched by that time: the API shows that
    /// time, not 1970.
    #[test]
    fn a_log_record_without_times_shows_the_time_it_was_received() {
        use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
        let received = 1_765_000_000_123_456_000;
        let request = porthole_proto::logs_service::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        LogRecord::default(),
                        LogRecord {
                            observed_time_unix_nano: 1_700_000_000_000_000_001,
                            ..Default::default()
                        },
                        LogRecord {
                            time_unix_nano: 1_600_000_000_000_000_002,
                            observed_time_unix_nano: 1_700_000_000_000_000_001,
                            ..Default::default()
                        },
                        // Milliseconds as nanoseconds (1970): filed, and shown, when received.
                        LogRecord {
                            time_unix_nano: 1_765_000_000_123,
                            ..Default::default()
                        },
                        // ...and with an observed time, by that.
                        LogRecord {
                            time_unix_nano: 1_765_000_000_123,
                            observed_time_unix_nano: 1_700_000_000_000_000_003,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let batch = porthole_storage::convert_logs(&request, received).batch;
        let times: Vec<_> = batch_to_json(&batch)
            .unwrap()
            .iter()
            .map(|row| log_json(row)["timestamp"].clone())
            .collect();
        assert_eq!(
            times,
            [
                json!("2025-12-06T05:46:40.123456000Z"),
                json!("2023-11-14T22:13:20.000000001Z"),
                json!("2020-09-13T12:26:40.000000002Z"),
                json!("2025-12-06T05:46:40.123456000Z"),
                json!("2023-11-14T22:13:20.000000003Z"),
            ]
        );
    }

    /// A map body (a structured logger's, or Python's `logger.info({...})` through the
    /// OTel SDK) and map or array attributes read as plain JSON, not as OTLP/JSON's
    /// `{"kvlistValue": {"values": [{"key": …, "value": {"stringValue": …}}]}}`.
    #[test]
    fn map_and_array_values_read_as_plain_json() {
        use porthole_proto::common::{
            AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value as Any,
        };
        use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
        let any = |value| AnyValue { value: Some(value) };
        let kv = |key: &str, value| KeyValue {
            key: key.into(),
            value: Some(any(value)),
            ..Default::default()
        };
        let map = Any::KvlistValue(KeyValueList {
            values: vec![
                kv("msg", Any::StringValue("card declined".into())),
                kv("order", Any::IntValue(42)),
                kv("id", Any::IntValue(1_234_567_890_123_456_789)),
                kv("ratio", Any::DoubleValue(f64::NAN)),
                kv("ok", Any::BoolValue(false)),
                kv("raw", Any::BytesValue(vec![1, 2])),
                KeyValue {
                    key: "nothing".into(),
                    value: Some(AnyValue { value: None }),
                    ..Default::default()
                },
                kv(
                    "tags",
                    Any::ArrayValue(ArrayValue {
                        values: vec![
                            any(Any::StringValue("a".into())),
                            any(Any::DoubleValue(0.5)),
                        ],
                    }),
                ),
            ],
        });
        let request = porthole_proto::logs_service::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        LogRecord {
                            time_unix_nano: 1,
                            body: Some(any(map.clone())),
                            attributes: vec![kv("request", map)],
                            ..Default::default()
                        },
                        LogRecord {
                            time_unix_nano: 1,
                            body: Some(any(Any::StringValue("{\"kvlistValue\":{}}".into()))),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let batch = porthole_storage::convert_logs(&request, 1);
        let rows: Vec<_> = batch_to_json(&batch.batch)
            .unwrap()
            .iter()
            .map(log_json)
            .collect();
        let expected = json!({
            "msg": "card declined", "order": 42, "id": "1234567890123456789", "ratio": "NaN",
            "ok": false, "raw": "AQI=", "nothing": null, "tags": ["a", 0.5],
        });
        let body: Value = serde_json::from_str(rows[0]["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, expected);
        assert_eq!(rows[0]["attributes"]["request"], expected);
        // A string body that looks like OTLP/JSON is a string, left as it was sent.
        assert_eq!(rows[1]["body"], json!("{\"kvlistValue\":{}}"));
    }

    /// A gauge of 0/0 or a summary's quantile over no observations is `NaN`: the API says
    /// so, where arrow's JSON writer wrote `null`, the same as no value.
    #[test]
    fn nan_and_infinities_are_written_as_otlp_json_writes_them() {
        let doubles = Float64Array::from(vec![
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(1.5),
            None,
        ]);
        let singles = Float32Array::from(vec![Some(f32::NAN), None, Some(0.5), None, None]);
        let mut lists = ListBuilder::new(Float64Builder::new());
        for list in [
            Some(vec![Some(f64::NAN), Some(1.0), None]),
            None,
            Some(vec![]),
            Some(vec![Some(f64::INFINITY)]),
            Some(vec![Some(2.0)]),
        ] {
            match list {
                Some(values) => {
                    lists.values().extend(values);
                    lists.append(true);
                }
                None => lists.append(false),
            }
        }
        let lists = lists.finish();
        let schema = Schema::new(vec![
            Field::new("value_double", DataType::Float64, true),
            Field::new("single", DataType::Float32, true),
            Field::new("quantile_values", lists.data_type().clone(), true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(doubles), Arc::new(singles), Arc::new(lists)],
        )
        .unwrap();
        let rows: Vec<Value> = batch_to_json(&batch)
            .unwrap()
            .into_iter()
            .map(Value::Object)
            .collect();
        assert_eq!(
            rows,
            [
                json!({"value_double": "NaN", "single": "NaN", "quantile_values": ["NaN", 1.0, null]}),
                json!({"value_double": "Infinity"}),
                json!({"value_double": "-Infinity", "single": 0.5, "quantile_values": []}),
                json!({"value_double": 1.5, "quantile_values": ["Infinity"]}),
                json!({"quantile_values": [2.0]}),
            ]
        );
    }

    #[test]
    fn a_double_attribute_that_is_no_json_number_is_written_as_otlp_json_writes_it() {
        let stored = json!({
            "nan": {"type": "double", "value": "NaN"},
            "old": {"type": "double", "value": "inf"},
            "new": {"type": "double", "value": "-Infinity"},
            "half": {"type": "double", "value": "0.5"},
        });
        assert_eq!(
            typed_attributes(Some(&stored)),
            json!({"nan": "NaN", "old": "Infinity", "new": "-Infinity", "half": 0.5})
        );
    }

    #[test]
    fn an_int_attribute_past_what_a_double_holds_exactly_comes_as_its_digits() {
        let stored = json!({
            "small": {"type": "int", "value": "-42"},
            "safe": {"type": "int", "value": "9007199254740991"},
            "id": {"type": "int", "value": "1234567890123456789"},
            "negative": {"type": "int", "value": "-9007199254740993"},
        });
        assert_eq!(
            typed_attributes(Some(&stored)),
            json!({
                "small": -42,
                "safe": 9007199254740991_i64,
                "id": "1234567890123456789",
                "negative": "-9007199254740993",
            })
        );
    }
}
