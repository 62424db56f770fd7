//! Stored rows as the API's JSON objects.

use arrow::array::RecordBatch;
use serde_json::{Map, Value};

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
    serde_json::from_slice(&bytes).map_err(|e| QueryError::Internal(e.to_string()))
}

/// `{"key": {"type": "int", "value": "3"}}` → `{"key": 3}`: attributes with their types.
fn typed_attributes(value: Option<&Value>) -> Value {
    let Some(Value::Object(map)) = value else {
        return Value::Object(Map::new());
    };
    let typed = map.iter().map(|(key, v)| {
        let text = v.get("value").and_then(Value::as_str).unwrap_or_default();
        let typed = match v.get("type").and_then(Value::as_str) {
            Some("int") => text
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(text)),
            Some("double") => text
                .parse::<f64>()
                .ok()
                .and_then(|d| serde_json::Number::from_f64(d).map(Value::Number))
                .unwrap_or_else(|| Value::from(text)),
            Some("bool") => Value::Bool(text == "true"),
            Some("array" | "kvlist") => {
                serde_json::from_str(text).unwrap_or_else(|_| Value::from(text))
            }
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

pub fn log_json(row: &Map<String, Value>) -> Value {
    let nanos = nanos_field(row, &["time_unix_nano", "observed_time_unix_nano"]).unwrap_or(0);
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
