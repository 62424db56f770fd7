//! OTLP attributes as Arrow columns.
//!
//! Attributes become `Map<Utf8, Struct{type, value}>`: the key, the OTLP value type
//! (`string`, `int`, `double`, `bool`, `bytes`, `array`, `kvlist`, `empty`) and the value
//! rendered as text. Scalars render as themselves; arrays and key-value lists render as
//! their OTLP/JSON encoding, so nothing the sender said is lost and any reader can get the
//! typed value back.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{ArrayRef, MapBuilder, MapFieldNames, StringBuilder, StructBuilder};
use arrow::datatypes::{DataType, Field, Fields};
use porthole_proto::common::{AnyValue, KeyValue, any_value::Value};
use serde_json::Value as Json;

/// The text form and type name of one OTLP value; strings are borrowed, not copied.
pub fn render_value(value: Option<&AnyValue>) -> (&'static str, Option<Cow<'_, str>>) {
    let owned = |text: String| Some(Cow::Owned(text));
    match value.and_then(|v| v.value.as_ref()) {
        None => ("empty", None),
        Some(Value::StringValue(s)) => ("string", Some(Cow::Borrowed(s.as_str()))),
        Some(Value::StringValueStrindex(i)) => ("string_index", owned(i.to_string())),
        Some(Value::BoolValue(b)) => ("bool", owned(b.to_string())),
        Some(Value::IntValue(i)) => ("int", owned(i.to_string())),
        // Infinities as the proto3 JSON mapping writes them (Rust writes `inf`, which
        // Java's `Double.parseDouble`, say, does not take).
        Some(Value::DoubleValue(d)) => match porthole_proto::json::special_double(*d) {
            Some(text) => ("double", Some(Cow::Borrowed(text))),
            None => ("double", owned(d.to_string())),
        },
        Some(Value::BytesValue(b)) => ("bytes", owned(hex::encode(b))),
        Some(v @ Value::ArrayValue(_)) => ("array", owned(otlp_json(v))),
        Some(v @ Value::KvlistValue(_)) => ("kvlist", owned(otlp_json(v))),
    }
}

/// OTLP/JSON text, non-finite doubles as the mapping's strings (`"NaN"`), not `null`.
fn otlp_json(value: &Value) -> String {
    let any = AnyValue {
        value: Some(value.clone()),
    };
    porthole_proto::json::to_otlp_json(&any)
}

/// The largest integer a double holds exactly, with all below it: JavaScript's
/// `Number.MAX_SAFE_INTEGER`.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// An int's decimal text as a JSON number, or as that text past ±(2^53 − 1): there a JSON
/// number is not exact in JavaScript (the UI) or in any reader that parses numbers as
/// doubles (RFC 7493), so such an int (a 64-bit id) comes as the string of its digits, as
/// OTLP/JSON writes every int64.
pub fn int_value(text: &str) -> Json {
    match text.parse::<i64>() {
        Ok(int) if int.unsigned_abs() <= MAX_SAFE_INTEGER => Json::from(int),
        _ => Json::from(text),
    }
}

/// An array or key-value list, stored as OTLP/JSON text (`{"kvlistValue": {"values":
/// [{"key": "msg", "value": {"stringValue": "hi"}}]}}`), as plain JSON (`{"msg": "hi"}`),
/// as a JSON log line or Loki's OTLP ingestion shows a map body. Ints past what a double
/// holds exactly stay strings of their digits, doubles that are no JSON number the
/// mapping's strings (`"NaN"`), bytes OTLP/JSON's base64. Anything else is left as it is.
pub fn plain_json(any: &Json) -> Json {
    if any.as_object().is_some_and(serde_json::Map::is_empty) {
        return Json::Null;
    }
    let Some((kind, inner)) = any
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return any.clone();
    };
    let items = || {
        inner
            .get("values")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
    };
    match (kind.as_str(), inner) {
        ("stringValue" | "bytesValue" | "boolValue", _) => inner.clone(),
        ("intValue", Json::String(digits)) => int_value(digits),
        ("intValue" | "doubleValue", _) => inner.clone(),
        ("arrayValue", Json::Object(_)) => Json::Array(items().map(plain_json).collect()),
        ("kvlistValue", Json::Object(_)) => Json::Object(
            items()
                .map(|kv| {
                    let key = kv.get("key").and_then(Json::as_str).unwrap_or_default();
                    let value = kv.get("value").map_or(Json::Null, plain_json);
                    (key.to_owned(), value)
                })
                .collect(),
        ),
        _ => any.clone(),
    }
}

/// A string attribute by key, the way resource attributes are looked up for promotion.
pub fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        }
    })
}

fn value_fields() -> Fields {
    Fields::from(vec![
        Field::new("type", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
    ])
}

/// Builds one attribute-map column.
pub struct AttributeMapBuilder {
    inner: MapBuilder<StringBuilder, StructBuilder>,
}

impl Default for AttributeMapBuilder {
    fn default() -> Self {
        let names = MapFieldNames {
            entry: "key_value".into(),
            key: "key".into(),
            value: "value".into(),
        };
        let values = StructBuilder::from_fields(value_fields(), 0);
        let value_field = Field::new("value", DataType::Struct(value_fields()), false);
        Self {
            inner: MapBuilder::new(Some(names), StringBuilder::new(), values)
                .with_values_field(Arc::new(value_field)),
        }
    }
}

impl AttributeMapBuilder {
    /// Appends one row holding `attributes`.
    pub fn append(&mut self, attributes: &[KeyValue]) {
        for kv in attributes {
            let (kind, text) = render_value(kv.value.as_ref());
            self.inner.keys().append_value(&kv.key);
            let values = self.inner.values();
            values
                .field_builder::<StringBuilder>(0)
                .expect("type column")
                .append_value(kind);
            values
                .field_builder::<StringBuilder>(1)
                .expect("value column")
                .append_option(text);
            values.append(true);
        }
        self.inner
            .append(true)
            .expect("keys and values stay in step");
    }

    pub fn finish(&mut self) -> ArrayRef {
        Arc::new(self.inner.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, MapArray, StructArray};
    use porthole_proto::common::{ArrayValue, KeyValueList};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn every_value_type_keeps_its_type_and_text() {
        let nested = Value::KvlistValue(KeyValueList {
            values: vec![kv("inner", Value::IntValue(7))],
        });
        let attrs = vec![
            kv("s", Value::StringValue("hello".into())),
            kv("i", Value::IntValue(-42)),
            kv("d", Value::DoubleValue(0.1)),
            kv("b", Value::BoolValue(true)),
            kv("x", Value::BytesValue(vec![0xde, 0xad])),
            kv(
                "a",
                Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::StringValue("v".into())),
                    }],
                }),
            ),
            kv("k", nested),
        ];
        let mut builder = AttributeMapBuilder::default();
        builder.append(&attrs);
        builder.append(&[]);
        let array = builder.finish();
        let map = array.as_any().downcast_ref::<MapArray>().unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map.value_length(1), 0);
        let entries: StructArray = map.value(0);
        let types = entries
            .column(1)
            .as_any()
            .downcast_ref::<StructArray>()
            .unwrap();
        let kinds = arrow::array::as_string_array(types.column(0));
        let texts = arrow::array::as_string_array(types.column(1));
        let got: Vec<(&str, &str)> = (0..kinds.len())
            .map(|i| (kinds.value(i), texts.value(i)))
            .collect();
        assert_eq!(
            &got[..5],
            &[
                ("string", "hello"),
                ("int", "-42"),
                ("double", "0.1"),
                ("bool", "true"),
                ("bytes", "dead")
            ]
        );
        assert_eq!(
            got[5],
            (
                "array",
                r#"{"arrayValue":{"values":[{"stringValue":"v"}]}}"#
            )
        );
        assert_eq!(got[6].0, "kvlist");
        let back: AnyValue = serde_json::from_str(got[6].1).unwrap();
        assert_eq!(
            back.value,
            Some(attrs[6].value.clone().unwrap().value.unwrap())
        );
    }

    /// serde_json writes a non-finite double as `null`: an array's `NaN` would be lost.
    /// Alone, infinities were Rust's `inf`, which many readers do not take.
    #[test]
    fn non_finite_doubles_keep_their_value_as_the_json_mapping_writes_it() {
        let doubles = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.5];
        let array = Value::ArrayValue(ArrayValue {
            values: doubles
                .iter()
                .map(|&d| AnyValue {
                    value: Some(Value::DoubleValue(d)),
                })
                .collect(),
        });
        for (double, text) in [(f64::NAN, "NaN"), (f64::NEG_INFINITY, "-Infinity")] {
            let value = AnyValue {
                value: Some(Value::DoubleValue(double)),
            };
            assert_eq!(render_value(Some(&value)), ("double", Some(text.into())));
        }
        let array = AnyValue { value: Some(array) };
        let (kind, text) = render_value(Some(&array));
        assert_eq!(
            (kind, text.as_deref()),
            (
                "array",
                Some(
                    r#"{"arrayValue":{"values":[{"doubleValue":"NaN"},{"doubleValue":"Infinity"},{"doubleValue":"-Infinity"},{"doubleValue":0.5}]}}"#
                )
            )
        );
    }

    #[test]
    fn promoted_lookup_ignores_non_strings_and_empties() {
        let attrs = vec![
            kv("n", Value::IntValue(1)),
            kv("e", Value::StringValue(String::new())),
            kv("s", Value::StringValue("x".into())),
        ];
        assert_eq!(string_attribute(&attrs, "n"), None);
        assert_eq!(string_attribute(&attrs, "e"), None);
        assert_eq!(string_attribute(&attrs, "s"), Some("x"));
        assert_eq!(string_attribute(&attrs, "missing"), None);
    }
}
