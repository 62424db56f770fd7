//! OTLP/JSON decoding by the proto3 JSON mapping, which the generated types only half
//! follow.
//!
//! - **Enum values by name.** The OTLP specification has senders write enums as
//!   integers (`"severityNumber": 9`), but the standard protobuf JSON printers (Go's
//!   `protojson`, Java's `JsonFormat`) write their names (`"SEVERITY_NUMBER_INFO"`), and
//!   the mapping has parsers take both, as the OpenTelemetry Collector does.
//! - **Doubles as strings.** The mapping writes the values no JSON number can hold as
//!   `"NaN"`, `"Infinity"` and `"-Infinity"` (a gauge of a ratio of nothing to nothing, a
//!   histogram's `max` before the first value), and lets any double be a string
//!   (`"1.5"`).
//! - **`null` is the field's default** (`"attributes": null`, `"traceId": null`), where
//!   the generated types refuse it for anything but a message; in a oneof it leaves the
//!   oneof unset.
//! - **Integers as strings** (`"flags": "1"`, `"scale": "-3"`): the generated types
//!   take them only for their 64-bit fields.
//! - **No value of the wrong type dropped.** A point's `asInt`/`asDouble` that is no
//!   number (`true`, `{}`, `1.5` as an integer) is an error naming the field; a metric
//!   whose data is no object, of two kinds, or does not decode, is an error naming the
//!   metric.
//!
//! The generated types take only numbers for the first two. Worse, where the value sits in
//! a oneof that serde flattens (a point's `asDouble`, an attribute's `doubleValue`, a
//! metric's `sum`/`gauge`/…), a string there is not even an error: serde drops the whole
//! oneof, and the point, attribute or metric arrives with no value. So the messages are
//! decoded through [`Lenient`], a deserializer around serde_json's that knows each map
//! key it reads and what type is asked of each value: under the keys of these fields it
//! turns such strings into the numbers the generated types expect (a string there that
//! is neither is an error naming the field, never a dropped value), and a `null` into
//! the default of the type asked for.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    Unexpected, Visitor,
};

use crate::{logs, metrics, trace};

/// Decodes an OTLP/JSON message by the proto3 JSON mapping (see the module's text).
pub fn from_otlp_json<M: DeserializeOwned + OtlpJson>(json: &[u8]) -> Result<M, serde_json::Error> {
    from_otlp_json_noting(json).map(|(message, _)| message)
}

/// [`from_otlp_json`], and a warning when the JSON had keys that are no OTLP field's name
/// (`"logRecord"`, `"stringvalue"`): receivers ignore unknown fields, as OTLP has them do,
/// so a misspelt field is data left out without an error. The warning names them, for
/// the response's partial success (`rejected` 0 and the message: OTLP's way to warn).
pub fn from_otlp_json_noting<M: DeserializeOwned + OtlpJson>(
    json: &[u8],
) -> Result<(M, Option<String>), serde_json::Error> {
    METRIC_DATA_READ.set(0);
    UNKNOWN_KEYS.with_borrow_mut(UnknownKeys::clear);
    let mut reader = serde_json::Deserializer::from_slice(json);
    let message = M::deserialize(Lenient {
        inner: &mut reader,
        field: Field::Other,
    })?;
    reader.end()?;
    if message.metrics_with_data() < METRIC_DATA_READ.get() {
        return Err(why_metric_data_was_dropped(json, &message));
    }
    Ok((message, UNKNOWN_KEYS.with_borrow(UnknownKeys::warning)))
}

/// Keys of a message being decoded that are no OTLP field's name: the first few, and how
/// many in all.
#[derive(Default)]
struct UnknownKeys {
    first: Vec<String>,
    count: usize,
}

impl UnknownKeys {
    const NAMED: usize = 3;

    fn clear(&mut self) {
        *self = Self::default();
    }

    fn note(&mut self, key: &str) {
        self.count += 1;
        if self.first.len() < Self::NAMED && !self.first.iter().any(|k| k == key) {
            self.first.push(key.chars().take(64).collect());
        }
    }

    fn warning(&self) -> Option<String> {
        if self.count == 0 {
            return None;
        }
        let names: Vec<String> = self.first.iter().map(|k| format!("{k:?}")).collect();
        Some(format!(
            "{} key(s) that are no OTLP field were ignored, with their values: {}{}; OTLP/JSON \
             names fields in lowerCamelCase (\"logRecords\") or by their proto names \
             (\"log_records\")",
            self.count,
            names.join(", "),
            if self.count > names.len() {
                ", …"
            } else {
                ""
            },
        ))
    }
}

/// The JSON names of the fields of OTLP's logs, traces and metrics export requests and
/// responses (with the members of their oneofs); any other key of an export is unknown.
pub fn is_field_name(key: &str) -> bool {
    matches!(
        key,
        "aggregationTemporality"
            | "arrayValue"
            | "asDouble"
            | "asInt"
            | "attributes"
            | "body"
            | "boolValue"
            | "bucketCounts"
            | "bytesValue"
            | "code"
            | "count"
            | "dataPoints"
            | "description"
            | "descriptionKeys"
            | "doubleValue"
            | "droppedAttributesCount"
            | "droppedEventsCount"
            | "droppedLinksCount"
            | "endTimeUnixNano"
            | "entityRefs"
            | "errorMessage"
            | "eventName"
            | "events"
            | "exemplars"
            | "explicitBounds"
            | "exponentialHistogram"
            | "filteredAttributes"
            | "flags"
            | "gauge"
            | "histogram"
            | "idKeys"
            | "intValue"
            | "isMonotonic"
            | "key"
            | "keyStrindex"
            | "kind"
            | "kvlistValue"
            | "links"
            | "logRecords"
            | "max"
            | "message"
            | "metadata"
            | "metrics"
            | "min"
            | "name"
            | "negative"
            | "observedTimeUnixNano"
            | "offset"
            | "parentSpanId"
            | "partialSuccess"
            | "positive"
            | "quantile"
            | "quantileValues"
            | "rejectedDataPoints"
            | "rejectedLogRecords"
            | "rejectedSpans"
            | "resource"
            | "resourceLogs"
            | "resourceMetrics"
            | "resourceSpans"
            | "scale"
            | "schemaUrl"
            | "scope"
            | "scopeLogs"
            | "scopeMetrics"
            | "scopeSpans"
            | "severityNumber"
            | "severityText"
            | "spanId"
            | "spans"
            | "startTimeUnixNano"
            | "status"
            | "stringValue"
            | "sum"
            | "summary"
            | "timeUnixNano"
            | "traceId"
            | "traceState"
            | "type"
            | "unit"
            | "value"
            | "values"
            | "version"
            | "zeroCount"
            | "zeroThreshold"
    )
}

/// A response that can carry a warning in its partial success, as OTLP has a server warn
/// a client whose export it took whole (`rejected` 0, the message set).
pub trait PartialSuccessWarning {
    /// Adds `warning` to the partial success's message (after any reason for rejections).
    fn warn(&mut self, warning: &str);
}

/// The three export responses, whose partial successes differ only in their count's name.
macro_rules! partial_success_warning {
    ($($response:ty),*) => {$(
        impl PartialSuccessWarning for $response {
            fn warn(&mut self, warning: &str) {
                let message = &mut self.partial_success.get_or_insert_default().error_message;
                if !message.is_empty() {
                    message.push_str("; ");
                }
                message.push_str(warning);
            }
        }
    )*};
}

partial_success_warning!(
    crate::logs_service::ExportLogsServiceResponse,
    crate::trace_service::ExportTraceServiceResponse,
    crate::metrics_service::ExportMetricsServiceResponse
);

/// `value` as OTLP/JSON text, as the generated types write it but for the doubles no JSON
/// number can hold: `"NaN"`, `"Infinity"` and `"-Infinity"`, as the proto3 JSON mapping
/// writes them, where serde_json writes `null` (an attribute array's `NaN`, an exemplar's
/// or a span event's would be lost). [`from_otlp_json`] reads them back.
pub fn to_otlp_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(&Specials(value)).unwrap_or_default()
}

/// The proto3 JSON mapping's text of a double no JSON number holds: `"NaN"`,
/// `"Infinity"` or `"-Infinity"`.
pub fn special_double(double: f64) -> Option<&'static str> {
    match double {
        d if d.is_nan() => Some("NaN"),
        f64::INFINITY => Some("Infinity"),
        f64::NEG_INFINITY => Some("-Infinity"),
        _ => None,
    }
}

/// A value serialized with its non-finite doubles as the mapping's strings
/// ([`to_otlp_json`]).
struct Specials<'a, T: ?Sized>(&'a T);

impl<T: serde::Serialize + ?Sized> serde::Serialize for Specials<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(SpecialsSerializer(serializer))
    }
}

/// A serializer that hands its inner one the mapping's strings for non-finite doubles,
/// and every value it holds wrapped again ([`Specials`]).
struct SpecialsSerializer<S>(S);

/// Serializer methods passed through as they are.
macro_rules! serialize_as_is {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.0.$method($($arg),*)
        }
    )*};
}

/// Compound serializers: the compound of the inner serializer, wrapped.
macro_rules! serialize_compound {
    ($($method:ident($($arg:ident: $ty:ty),*) -> $compound:ident),* $(,)?) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<Self::$compound, S::Error> {
            self.0.$method($($arg),*).map(SpecialsSerializer)
        }
    )*};
}

impl<S: serde::Serializer> serde::Serializer for SpecialsSerializer<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = SpecialsSerializer<S::SerializeSeq>;
    type SerializeTuple = SpecialsSerializer<S::SerializeTuple>;
    type SerializeTupleStruct = SpecialsSerializer<S::SerializeTupleStruct>;
    type SerializeTupleVariant = SpecialsSerializer<S::SerializeTupleVariant>;
    type SerializeMap = SpecialsSerializer<S::SerializeMap>;
    type SerializeStruct = SpecialsSerializer<S::SerializeStruct>;
    type SerializeStructVariant = SpecialsSerializer<S::SerializeStructVariant>;

    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        match special_double(v) {
            Some(text) => self.0.serialize_str(text),
            None => self.0.serialize_f64(v),
        }
    }

    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        match special_double(v.into()) {
            Some(text) => self.0.serialize_str(text),
            None => self.0.serialize_f32(v),
        }
    }

    serialize_as_is!(
        serialize_bool(v: bool),
        serialize_i8(v: i8),
        serialize_i16(v: i16),
        serialize_i32(v: i32),
        serialize_i64(v: i64),
        serialize_i128(v: i128),
        serialize_u8(v: u8),
        serialize_u16(v: u16),
        serialize_u32(v: u32),
        serialize_u64(v: u64),
        serialize_u128(v: u128),
        serialize_char(v: char),
        serialize_str(v: &str),
        serialize_bytes(v: &[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(name: &'static str),
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str),
    );

    serialize_compound!(
        serialize_seq(len: Option<usize>) -> SerializeSeq,
        serialize_tuple(len: usize) -> SerializeTuple,
        serialize_tuple_struct(name: &'static str, len: usize) -> SerializeTupleStruct,
        serialize_tuple_variant(
            name: &'static str,
            index: u32,
            variant: &'static str,
            len: usize
        ) -> SerializeTupleVariant,
        serialize_map(len: Option<usize>) -> SerializeMap,
        serialize_struct(name: &'static str, len: usize) -> SerializeStruct,
        serialize_struct_variant(
            name: &'static str,
            index: u32,
            variant: &'static str,
            len: usize
        ) -> SerializeStructVariant,
    );

    fn serialize_some<T: serde::Serialize + ?Sized>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Specials(v))
    }

    fn serialize_newtype_struct<T: serde::Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Specials(v))
    }

    fn serialize_newtype_variant<T: serde::Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Specials(v))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// The compound serializers: each element, field, key or value wrapped.
macro_rules! compound {
    ($($trait:ident { $($method:ident($($arg:ident: $ty:ty),*)),* }),* $(,)?) => {$(
        impl<C: serde::ser::$trait> serde::ser::$trait for SpecialsSerializer<C> {
            type Ok = C::Ok;
            type Error = C::Error;
            $(
                fn $method<T: serde::Serialize + ?Sized>(
                    &mut self,
                    $($arg: $ty,)*
                    v: &T,
                ) -> Result<(), C::Error> {
                    self.0.$method($($arg,)* &Specials(v))
                }
            )*
            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    )*};
}

compound!(
    SerializeSeq { serialize_element() },
    SerializeTuple { serialize_element() },
    SerializeTupleStruct { serialize_field() },
    SerializeTupleVariant { serialize_field() },
    SerializeMap { serialize_key(), serialize_value() },
    SerializeStruct { serialize_field(key: &'static str) },
    SerializeStructVariant { serialize_field(key: &'static str) },
);

/// The OTLP export requests, for what [`from_otlp_json`] checks after decoding.
pub trait OtlpJson {
    /// How many metrics decoded with their data (none but in metrics exports).
    fn metrics_with_data(&self) -> usize {
        0
    }

    /// Whether metric `m` of scope `s` of resource `r` decoded with its data.
    fn metric_has_data(&self, _at: [usize; 3]) -> bool {
        false
    }
}

impl OtlpJson for crate::logs_service::ExportLogsServiceRequest {}

impl OtlpJson for crate::trace_service::ExportTraceServiceRequest {}

impl OtlpJson for crate::metrics_service::ExportMetricsServiceRequest {
    fn metrics_with_data(&self) -> usize {
        self.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .filter(|m| m.data.is_some())
            .count()
    }

    fn metric_has_data(&self, [r, s, m]: [usize; 3]) -> bool {
        let metric = self.resource_metrics.get(r).and_then(|resource| {
            let scope = resource.scope_metrics.get(s)?;
            scope.metrics.get(m)
        });
        metric.is_some_and(|metric| metric.data.is_some())
    }
}

thread_local! {
    /// Metric data (`gauge`, `sum`, … but `null`) read by this thread's [`from_otlp_json`].
    static METRIC_DATA_READ: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Keys that are no OTLP field's name, met by this thread's [`from_otlp_json_noting`].
    static UNKNOWN_KEYS: std::cell::RefCell<UnknownKeys> = std::cell::RefCell::default();
}

/// The keys of a metric's data, one of which a metric holds.
const METRIC_DATA_KEYS: [&str; 5] = [
    "gauge",
    "sum",
    "histogram",
    "exponentialHistogram",
    "summary",
];

/// A metric's data is read as any value first and into its type later, and serde drops
/// the data of a metric whose data does not decode, without an error. When fewer metrics
/// decoded with data than had it, this finds the first metric of the JSON that had data
/// and lost it, and says why: its data does not decode on its own, or it has more than
/// one kind of data.
fn why_metric_data_was_dropped(json: &[u8], decoded: &impl OtlpJson) -> serde_json::Error {
    use de::Error;
    use serde_json::Value;
    fn list<'v>(value: &'v Value, key: &str) -> &'v [Value] {
        value
            .get(key)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }
    /// Keys by their JSON names, as the decoder reads them.
    fn json_names(value: Value) -> Value {
        match value {
            Value::Object(fields) => Value::Object(
                fields
                    .into_iter()
                    .map(|(key, value)| {
                        (
                            lower_camel_case(Cow::Owned(key)).into_owned(),
                            json_names(value),
                        )
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(json_names).collect()),
            other => other,
        }
    }
    let Ok(export) = serde_json::from_slice::<Value>(json).map(json_names) else {
        return serde_json::Error::custom("a metric's data does not decode");
    };
    for (r, resource) in list(&export, "resourceMetrics").iter().enumerate() {
        for (s, scope) in list(resource, "scopeMetrics").iter().enumerate() {
            for (m, metric) in list(scope, "metrics").iter().enumerate() {
                // A `null` is no data (`Entries` skips it).
                let data: Vec<(&str, &Value)> = METRIC_DATA_KEYS
                    .iter()
                    .filter_map(|&key| Some((key, metric.get(key).filter(|d| !d.is_null())?)))
                    .collect();
                if data.is_empty() || data.len() == 1 && decoded.metric_has_data([r, s, m]) {
                    continue;
                }
                let name = metric.get("name").and_then(Value::as_str);
                let at = format!(
                    "resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}] ({:?})",
                    name.unwrap_or_default()
                );
                if let [_, _, ..] = data.as_slice() {
                    let keys: Vec<String> =
                        data.iter().map(|(key, _)| format!("`{key}`")).collect();
                    return serde_json::Error::custom(format!(
                        "{at}: a metric holds one of `gauge`, `sum`, `histogram`, \
                         `exponentialHistogram` or `summary`; this one has {}",
                        keys.join(" and ")
                    ));
                }
                let (key, data) = data[0];
                // Read from text, as the message is (`Entries` reads a oneof's member
                // ahead, as text).
                let text = data.to_string();
                let mut reader = serde_json::Deserializer::from_str(&text);
                let inner = Lenient {
                    inner: &mut reader,
                    field: Field::Other,
                };
                let decoded = match key {
                    "gauge" => metrics::Gauge::deserialize(inner).map(drop),
                    "sum" => metrics::Sum::deserialize(inner).map(drop),
                    "histogram" => metrics::Histogram::deserialize(inner).map(drop),
                    "exponentialHistogram" => {
                        metrics::ExponentialHistogram::deserialize(inner).map(drop)
                    }
                    _ => metrics::Summary::deserialize(inner).map(drop),
                };
                let why = decoded
                    .err()
                    .map_or("does not decode".to_owned(), |e| e.to_string());
                return serde_json::Error::custom(format!("{at}: `{key}`: {why}"));
            }
        }
    }
    serde_json::Error::custom("a metric's data does not decode")
}

/// What the value under a map key is, for the strings and nulls the generated types do
/// not take. Known by the key, this holds inside a flattened oneof as well (a metric's
/// `gauge`/`sum`/…, which serde reads as any value first and into its type later, so the
/// type asked for is not known there, and an error there would drop the metric's data
/// without a word).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Field {
    Other,
    /// An enum field (its JSON key): a name, or a number in a string, becomes the number.
    Enum(&'static str),
    /// A double field (its JSON key): `"NaN"`, `"Infinity"`, `"-Infinity"` and decimal
    /// strings become the double.
    Double(&'static str),
    /// A list of doubles (`explicitBounds`): its items are doubles, a `null` is an empty
    /// list.
    Doubles(&'static str),
    /// An integer field (its JSON key): a decimal string becomes the number, a `null` 0.
    Integer(&'static str),
    /// An integer in a oneof (`asInt`, `intValue`): a decimal string becomes the number,
    /// a `null` leaves the oneof unset.
    IntegerInOneof(&'static str),
    /// A list (`attributes`, `dataPoints`…): a `null` is an empty one.
    List,
    /// A string field (`name`, `description`…): a `null` is an empty one.
    Text,
    /// A trace or span id (its JSON key), hex: a `null` is an empty one, and a string
    /// that is no hex an error that names the key.
    Id(&'static str),
    /// `isMonotonic`: a `null` is false.
    Bool,
    /// A scope's `metrics`: a list whose items are [`Field::Metric`]s.
    Metrics,
    /// A metric: an object whose `gauge`, `sum`, `histogram`… are [`Field::MetricData`].
    Metric,
    /// A metric's data (`gauge`, `sum`, `histogram`…): counted as it is read, whatever
    /// its JSON type, unless it is a `null` (no data), so a metric whose data is no
    /// object (`"gauge": 5`) is found as well as one whose object does not decode.
    MetricData,
}

impl Field {
    /// The field under `key` in an object of kind `parent`.
    fn of_key(key: &str, parent: Field) -> Field {
        match key {
            key if parent == Field::Metric && METRIC_DATA_KEYS.contains(&key) => Field::MetricData,
            "severityNumber" => Field::Enum("severityNumber"),
            "kind" => Field::Enum("kind"),
            "code" => Field::Enum("code"),
            "aggregationTemporality" => Field::Enum("aggregationTemporality"),
            "asDouble" => Field::Double("asDouble"),
            "doubleValue" => Field::Double("doubleValue"),
            "sum" => Field::Double("sum"),
            "min" => Field::Double("min"),
            "max" => Field::Double("max"),
            "explicitBounds" => Field::Doubles("explicitBounds"),
            "zeroThreshold" => Field::Double("zeroThreshold"),
            "asInt" => Field::IntegerInOneof("asInt"),
            "intValue" => Field::IntegerInOneof("intValue"),
            "timeUnixNano" => Field::Integer("timeUnixNano"),
            "observedTimeUnixNano" => Field::Integer("observedTimeUnixNano"),
            "startTimeUnixNano" => Field::Integer("startTimeUnixNano"),
            "endTimeUnixNano" => Field::Integer("endTimeUnixNano"),
            "count" => Field::Integer("count"),
            "zeroCount" => Field::Integer("zeroCount"),
            "flags" => Field::Integer("flags"),
            "droppedAttributesCount" => Field::Integer("droppedAttributesCount"),
            "droppedEventsCount" => Field::Integer("droppedEventsCount"),
            "droppedLinksCount" => Field::Integer("droppedLinksCount"),
            "scale" => Field::Integer("scale"),
            "offset" => Field::Integer("offset"),
            "resourceLogs" | "scopeLogs" | "logRecords" | "resourceSpans" | "scopeSpans"
            | "spans" | "events" | "links" | "resourceMetrics" | "scopeMetrics" | "dataPoints"
            | "attributes" | "filteredAttributes" | "exemplars" | "bucketCounts"
            | "quantileValues" | "values" | "metadata" => Field::List,
            "schemaUrl" | "name" | "version" | "description" | "unit" | "severityText"
            | "eventName" | "traceState" | "message" | "key" => Field::Text,
            "traceId" => Field::Id("traceId"),
            "spanId" => Field::Id("spanId"),
            "parentSpanId" => Field::Id("parentSpanId"),
            "isMonotonic" => Field::Bool,
            "metrics" => Field::Metrics,
            _ => Field::Other,
        }
    }

    /// An error reading the string `text` in this field, naming the field where the
    /// generated code's message would not (a trace id's "odd number of digits").
    fn named<E: de::Error>(self, text: &str, error: E) -> E {
        match self {
            Field::Id(key) => E::custom(format!("`{key}`: {text:?} is not an id in hex ({error})")),
            _ => error,
        }
    }

    /// A member of a oneof, whose `null` is skipped with its key (see `Entries`).
    fn is_oneof_member(self) -> bool {
        matches!(
            self,
            Field::MetricData | Field::IntegerInOneof("asInt") | Field::Double("asDouble")
        )
    }

    /// The number a string stands for in this field; `None` when the field takes no
    /// string as a number.
    fn number<E: de::Error>(self, text: &str) -> Option<Result<Number, E>> {
        match self {
            Field::Other
            | Field::List
            | Field::Doubles(_)
            | Field::Text
            | Field::Id(_)
            | Field::Bool
            | Field::Metrics
            | Field::Metric
            | Field::MetricData => None,
            Field::IntegerInOneof(key) => Some(
                text.parse::<i64>()
                    .map(Number::Int)
                    .map_err(|_| {
                        E::custom(format!("`{key}`: \"{text}\" is not a 64-bit signed integer"))
                    }),
            ),
            Field::Integer(key) => Some(
                integer_of(text)
                    .ok_or_else(|| E::custom(format!("`{key}`: \"{text}\" is not an integer"))),
            ),
            Field::Enum(key) => Some(
                enum_number(key, text)
                    .or_else(|| text.parse::<i32>().ok().map(i64::from))
                    .map(Number::Int)
                    .ok_or_else(|| E::custom(format!("`{key}`: unknown value name \"{text}\""))),
            ),
            Field::Double(key) => Some(
                double_of(text)
                    .map(Number::Double)
                .ok_or_else(|| {
                    E::custom(format!(
                        "`{key}`: \"{text}\" is not a double (a number, \"NaN\", \"Infinity\" or \"-Infinity\")"
                    ))
                }),
            ),
        }
    }
}

/// The integer a decimal string stands for.
fn integer_of(text: &str) -> Option<Number> {
    (text.parse::<i64>().map(Number::Int))
        .or_else(|_| text.parse::<u64>().map(Number::UInt))
        .ok()
}

/// The double a string stands for in the proto3 JSON mapping: a decimal number, `"NaN"`,
/// `"Infinity"` or `"-Infinity"`.
fn double_of(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        decimal => decimal
            .parse::<f64>()
            .ok()
            .filter(|d| d.is_finite() && !decimal.starts_with(['+', '.'])),
    }
}

enum Number {
    Int(i64),
    UInt(u64),
    Double(f64),
}

/// The number of enum value `name` of the OTLP/JSON field `key`.
fn enum_number(key: &str, name: &str) -> Option<i64> {
    let number = match key {
        "severityNumber" => logs::SeverityNumber::from_str_name(name)? as i32,
        "kind" => trace::span::SpanKind::from_str_name(name)? as i32,
        "code" => trace::status::StatusCode::from_str_name(name)? as i32,
        "aggregationTemporality" => metrics::AggregationTemporality::from_str_name(name)? as i32,
        _ => return None,
    };
    Some(number.into())
}

/// serde_json's deserializer, reading a value that sits under a key of kind `field`.
struct Lenient<D> {
    inner: D,
    field: Field,
}

/// The visitor a [`Lenient`] hands serde_json: turns the field's strings into numbers,
/// a `null` into the field's default, and wraps what it is given to read further (maps,
/// arrays, optional values).
struct Visit<V> {
    visitor: V,
    field: Field,
    asked: Asked,
}

/// What type the generated code asked a value to be, where that matters to the proto3
/// JSON mapping: a `null` is that type's default (a sender that writes
/// `"attributes": null` or `"traceId": null` means none), where the generated types
/// refuse it for anything but a message; and a number may be written as a string
/// (`"flags": "1"`).
#[derive(Clone, Copy)]
enum Asked {
    /// Any value (an optional one, a flattened oneof's): a `null` stays a `null`.
    Any,
    Integer,
    Float,
    Bool,
    Text,
    Items,
    Entries,
}

/// Deserializer methods passed through with the visitor wrapped.
macro_rules! pass_through {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method($($arg,)* Visit { visitor, field: self.field, asked: Asked::Any })
        }
    )*};
}

/// Methods of the types the mapping lets a `null` or a string stand in for: read as any
/// value, so the `null` or the string reaches [`Visit`] with what was asked, where
/// serde_json's own methods would refuse it. For a JSON value of the right type,
/// serde_json's `deserialize_any` visits what these would.
macro_rules! asked {
    ($($method:ident($($arg:ident: $ty:ty),*) => $asked:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            $(let _ = $arg;)*
            self.inner.deserialize_any(Visit { visitor, field: self.field, asked: Asked::$asked })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Lenient<D> {
    type Error = D::Error;

    asked!(
        deserialize_bool() => Bool,
        deserialize_i8() => Integer,
        deserialize_i16() => Integer,
        deserialize_i32() => Integer,
        deserialize_i64() => Integer,
        deserialize_u8() => Integer,
        deserialize_u16() => Integer,
        deserialize_u32() => Integer,
        deserialize_u64() => Integer,
        deserialize_f32() => Float,
        deserialize_f64() => Float,
        deserialize_str() => Text,
        deserialize_string() => Text,
        deserialize_seq() => Items,
        deserialize_map() => Entries,
        deserialize_struct(name: &'static str, fields: &'static [&'static str]) => Entries,
    );

    pass_through!(
        deserialize_any(),
        deserialize_i128(),
        deserialize_u128(),
        deserialize_char(),
        deserialize_bytes(),
        deserialize_byte_buf(),
        deserialize_option(),
        deserialize_unit(),
        deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str),
        deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(),
        deserialize_ignored_any(),
    );

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Visitor methods passed through as they are.
macro_rules! visit_as_is {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.visitor.$method(v)
        }
    )*};
}

impl<V> Visit<V> {
    /// The number a string stands for here: by the field's key, or else by the type
    /// asked for; `None` when a string is taken as it is.
    fn number<E: de::Error>(&self, text: &str) -> Option<Result<Number, E>> {
        self.field.number(text).or_else(|| match self.asked {
            Asked::Integer => integer_of(text).map(Ok),
            Asked::Float => double_of(text).map(Number::Double).map(Ok),
            _ => None,
        })
    }

    /// An error when a number field is given a JSON value that is no number (a string
    /// reaches [`Visit::number`] instead). A point's `asInt` and `asDouble` sit in a oneof
    /// that serde flattens, where serde would drop a value of the wrong type without a
    /// word: the point would arrive with no value.
    fn refuse<E: de::Error>(&self, found: Unexpected) -> Result<(), E> {
        let (key, what) = match (self.field, found) {
            (
                Field::Double(_),
                Unexpected::Float(_) | Unexpected::Signed(_) | Unexpected::Unsigned(_),
            )
            | (Field::IntegerInOneof(_), Unexpected::Signed(_)) => return Ok(()),
            (Field::IntegerInOneof(_), Unexpected::Unsigned(u)) if i64::try_from(u).is_ok() => {
                return Ok(());
            }
            (Field::Double(key), _) => (key, "a double"),
            (Field::IntegerInOneof(key), Unexpected::Unsigned(_)) => {
                (key, "a 64-bit signed integer")
            }
            (Field::IntegerInOneof(key), _) => (key, "an integer"),
            _ => return Ok(()),
        };
        Err(E::custom(format!("`{key}`: {found} is not {what}")))
    }
}

/// Hands `visitor` the number a string stood for.
fn give<'de, V: Visitor<'de>, E: de::Error>(
    visitor: V,
    number: Result<Number, E>,
) -> Result<V::Value, E> {
    match number? {
        Number::Int(int) => visitor.visit_i64(int),
        Number::UInt(uint) => visitor.visit_u64(uint),
        Number::Double(double) => visitor.visit_f64(double),
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Visit<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        self.visitor.expecting(f)
    }

    visit_as_is!(
        visit_i64(i64),
        visit_i128(i128),
        visit_u128(u128),
        visit_char(char),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<V::Value, E> {
        self.refuse(Unexpected::Bool(v))?;
        self.visitor.visit_bool(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<V::Value, E> {
        self.refuse(Unexpected::Unsigned(v))?;
        self.visitor.visit_u64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<V::Value, E> {
        self.refuse(Unexpected::Float(v))?;
        self.visitor.visit_f64(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        let field = self.field;
        match self.number(v) {
            None => self.visitor.visit_str(v).map_err(|e| field.named(v, e)),
            Some(number) => give(self.visitor, number),
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        let field = self.field;
        match self.number(v) {
            None => self
                .visitor
                .visit_borrowed_str(v)
                .map_err(|e| field.named(v, e)),
            Some(number) => give(self.visitor, number),
        }
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        let field = self.field;
        match self.number(&v) {
            None => {
                let text = matches!(field, Field::Id(_)).then(|| v.clone());
                self.visitor
                    .visit_string(v)
                    .map_err(|e| field.named(text.as_deref().unwrap_or_default(), e))
            }
            Some(number) => give(self.visitor, number),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        use serde::de::value::{MapDeserializer, SeqDeserializer};
        // Under a known key, a null read as any value (inside a flattened oneof) stands
        // for what the key's type would have asked.
        let asked = match (self.asked, self.field) {
            (Asked::Any, Field::Integer(_) | Field::Enum(_)) => Asked::Integer,
            (Asked::Any, Field::Double("zeroThreshold")) => Asked::Float,
            (Asked::Any, Field::List | Field::Metrics | Field::Doubles(_)) => Asked::Items,
            (Asked::Any, Field::Text | Field::Id(_)) => Asked::Text,
            (Asked::Any, Field::Bool) => Asked::Bool,
            (asked, _) => asked,
        };
        match asked {
            Asked::Any => self.visitor.visit_unit(),
            Asked::Integer => self.visitor.visit_u64(0),
            Asked::Float => self.visitor.visit_f64(0.0),
            Asked::Bool => self.visitor.visit_bool(false),
            Asked::Text => self.visitor.visit_borrowed_str(""),
            Asked::Items => self
                .visitor
                .visit_seq(SeqDeserializer::<_, E>::new(std::iter::empty::<()>())),
            Asked::Entries => self
                .visitor
                .visit_map(MapDeserializer::<_, E>::new(std::iter::empty::<((), ())>())),
        }
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_some(Lenient {
            inner,
            field: self.field,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_newtype_struct(Lenient {
            inner,
            field: self.field,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, items: A) -> Result<V::Value, A::Error> {
        // serde's derived structs also take their fields in order from an array, which
        // the proto3 JSON mapping never writes: `[{"resourceLogs": …}]` (exports batched
        // in an array) read its object as the first field and failed saying "expected a
        // sequence", and `[[…]]` or `[]` was taken as an export.
        if let Asked::Entries = self.asked {
            return Err(de::Error::invalid_type(Unexpected::Seq, &self.visitor));
        }
        self.refuse(Unexpected::Seq)?;
        let field = match self.field {
            Field::Doubles(key) => Field::Double(key),
            Field::Metrics => Field::Metric,
            Field::MetricData => Field::Other,
            field => field,
        };
        self.visitor.visit_seq(Items {
            inner: items,
            field,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, entries: A) -> Result<V::Value, A::Error> {
        self.refuse(Unexpected::Map)?;
        self.visitor.visit_map(Entries {
            inner: entries,
            object: self.field,
            field: Field::Other,
            read: None,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_enum(data)
    }
}

/// A seed whose deserializer is wrapped in a [`Lenient`] for `field`.
struct Seed<S> {
    seed: S,
    field: Field,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Lenient {
            inner,
            field: self.field,
        })
    }
}

/// An array's items: each is of the array's field, or a double in `explicitBounds`.
struct Items<A> {
    inner: A,
    field: Field,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Items<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let field = self.field;
        self.inner.next_element_seed(Seed { seed, field })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// An object's entries: each value is of the field its key names.
struct Entries<'de, A> {
    inner: A,
    /// The field the object sits in.
    object: Field,
    /// The field of the last key read.
    field: Field,
    /// The value of the last key read, when it was read with its key (a oneof's member).
    read: Option<&'de serde_json::value::RawValue>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Entries<'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
        let key = loop {
            let Some(key) = self.inner.next_key_seed(KeyText)? else {
                return Ok(None);
            };
            let key = lower_camel_case(key);
            self.field = Field::of_key(&key, self.object);
            // Every key `of_key` knows is a field's; the others are looked up.
            if self.field == Field::Other && !is_field_name(&key) {
                UNKNOWN_KEYS.with_borrow_mut(|unknown| unknown.note(&key));
            }
            if !self.field.is_oneof_member() {
                break key;
            }
            // A member of a oneof that is `null` is not there, as the mapping has it: serde
            // flattens a oneof and takes the first of its keys it meets, so `"gauge": null`
            // before `"sum": {…}` (a serializer that writes every field) refused the
            // metric, and `"asInt": null` before `"asDouble": 1` took the point without a
            // value. Its value is read here to see, and handed on in `next_value_seed`.
            let value: &'de serde_json::value::RawValue = self.inner.next_value()?;
            if value.get() != "null" {
                self.read = Some(value);
                break key;
            }
        };
        match key {
            Cow::Borrowed(key) => seed.deserialize(BorrowedStrDeserializer::new(key)),
            Cow::Owned(key) => seed.deserialize(StringDeserializer::new(key)),
        }
        .map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let field = std::mem::replace(&mut self.field, Field::Other);
        if field == Field::MetricData {
            METRIC_DATA_READ.set(METRIC_DATA_READ.get() + 1);
        }
        let Some(value) = self.read.take() else {
            return self.inner.next_value_seed(Seed { seed, field });
        };
        let mut read = serde_json::Deserializer::from_str(value.get());
        Seed { seed, field }
            .deserialize(&mut read)
            .map_err(|error| {
                // Where in the value it failed is not where in the message: the message's
                // own deserializer adds that.
                let text = error.to_string();
                let text = match text.rfind(" at line ") {
                    Some(at) if error.line() != 0 => &text[..at],
                    _ => &text,
                };
                de::Error::custom(text)
            })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// A field's JSON name from its proto name (`time_unix_nano` → `timeUnixNano`): the
/// mapping has parsers take both, and OTLP has no map fields, so every key of an export
/// is a field's name. A sender writing proto names (Python's `MessageToJson` with
/// `preserving_proto_field_name`) had every field taken as unknown and ignored: an export
/// answered 200 and stored nothing.
fn lower_camel_case(key: Cow<'_, str>) -> Cow<'_, str> {
    if !key.contains('_') {
        return key;
    }
    let mut camel = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                camel.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => camel.push(c),
        }
    }
    Cow::Owned(camel)
}

/// A key's text: borrowed from the JSON unless it holds escapes.
struct KeyText;

impl<'de> DeserializeSeed<'de> for KeyText {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, key: D) -> Result<Cow<'de, str>, D::Error> {
        key.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyText {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(key.to_owned()))
    }

    fn visit_string<E: de::Error>(self, key: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs_service::ExportLogsServiceRequest;
    use crate::metrics_service::ExportMetricsServiceRequest;
    use crate::trace_service::ExportTraceServiceRequest;

    #[test]
    fn enum_fields_take_names_as_well_as_numbers() {
        let logs: ExportLogsServiceRequest = from_otlp_json(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
                {"severityNumber" : "SEVERITY_NUMBER_WARN",
                 "body":{"stringValue":"SEVERITY_NUMBER_ERROR \"kind\": \"SPAN_KIND_SERVER\""},
                 "attributes":[{"key":"kind","value":{"stringValue":"SPAN_KIND_CLIENT"}}]},
                {"severityNumber":17}]}]}]}"#,
        )
        .unwrap();
        let records = &logs.resource_logs[0].scope_logs[0].log_records;
        assert_eq!(records[0].severity_number, 13);
        assert_eq!(records[1].severity_number, 17);
        let body = format!("{:?}", records[0].body);
        assert!(
            body.contains(r#"SEVERITY_NUMBER_ERROR \"kind\": \"SPAN_KIND_SERVER\""#),
            "{body}"
        );
        let attribute = format!("{:?}", records[0].attributes[0].value);
        assert!(attribute.contains("SPAN_KIND_CLIENT"), "{attribute}");

        let spans: ExportTraceServiceRequest = from_otlp_json(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"GET /","kind":"SPAN_KIND_SERVER",
                "status":{"code":"STATUS_CODE_ERROR","message":"boom"}}]}]}]}"#,
        )
        .unwrap();
        let span = &spans.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!((span.kind, span.status.as_ref().unwrap().code), (2, 2));

        let metrics: ExportMetricsServiceRequest = from_otlp_json(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"requests",
                "sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","isMonotonic":true,
                "dataPoints":[{"asInt":"3"}]}}]}]}]}"#,
        )
        .unwrap();
        let metric = &metrics.resource_metrics[0].scope_metrics[0].metrics[0];
        match &metric.data {
            Some(crate::metrics::metric::Data::Sum(sum)) => {
                assert_eq!((sum.aggregation_temporality, sum.data_points.len()), (2, 1));
            }
            data => panic!("the sum was dropped: {data:?}"),
        }
    }

    #[test]
    fn unknown_names_and_broken_json_are_errors() {
        let unknown_name = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
            {"severityNumber":"SEVERITY_NUMBER_LOUD"}]}]}]}"#;
        let error = from_otlp_json::<ExportLogsServiceRequest>(unknown_name).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(r#"`severityNumber`: unknown value name "SEVERITY_NUMBER_LOUD""#),
            "{error}"
        );
        let numbered: ExportLogsServiceRequest = from_otlp_json(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"17"}]}]}]}"#,
        )
        .unwrap();
        let record = &numbered.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(record.severity_number, 17);
        let broken = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_INFO","#;
        assert!(from_otlp_json::<ExportLogsServiceRequest>(broken).is_err());
    }

    fn gauge_values(export: &ExportMetricsServiceRequest) -> Vec<Option<f64>> {
        let metric = &export.resource_metrics[0].scope_metrics[0].metrics[0];
        let Some(crate::metrics::metric::Data::Gauge(gauge)) = &metric.data else {
            panic!("the gauge was dropped: {metric:?}");
        };
        let value = |point: &crate::metrics::NumberDataPoint| match point.value {
            Some(crate::metrics::number_data_point::Value::AsDouble(double)) => Some(double),
            Some(crate::metrics::number_data_point::Value::AsInt(int)) => Some(int as f64),
            None => None,
        };
        gauge.data_points.iter().map(value).collect()
    }

    #[test]
    fn doubles_may_be_strings_as_the_json_mapping_writes_them() {
        let export: ExportMetricsServiceRequest = from_otlp_json(
            br#"{"resourceMetrics":[{"resource":{"attributes":[
                    {"key":"ratio","value":{"doubleValue":"NaN"}},
                    {"key":"sum","value":{"stringValue":"Infinity"}}]},
                "scopeMetrics":[{"metrics":[
                {"name":"ratio","gauge":{"dataPoints":[
                    {"asDouble":"NaN"},{"asDouble":"Infinity"},{"asDouble":"-Infinity"},
                    {"asDouble":"1.5"},{"asDouble":2.5},{"asInt":"3"},
                    {"asDouble":"-2e3","exemplars":[{"asDouble":"NaN"}]}]}},
                {"name":"latency","histogram":{"dataPoints":[{"count":"2","sum":"Infinity",
                    "min":"-Infinity","max":"NaN","explicitBounds":["0.5",1,"Infinity"],
                    "bucketCounts":["1","1","0","0"]}]}},
                {"name":"size","exponentialHistogram":{"dataPoints":[{"zeroThreshold":"1e-9",
                    "sum":"4.5"}]}},
                {"name":"rtt","summary":{"dataPoints":[{"sum":"NaN",
                    "quantileValues":[{"quantile":0.5,"value":"Infinity"}]}]}}]}]}]}"#,
        )
        .unwrap();
        let values = gauge_values(&export);
        assert!(values[0].unwrap().is_nan(), "{values:?}");
        assert_eq!(
            values[1..],
            [
                Some(f64::INFINITY),
                Some(f64::NEG_INFINITY),
                Some(1.5),
                Some(2.5),
                Some(3.0),
                Some(-2000.0)
            ]
        );
        let resource = export.resource_metrics[0].resource.as_ref().unwrap();
        let attributes = format!("{:?}", resource.attributes);
        assert!(attributes.contains("DoubleValue(NaN)"), "{attributes}");
        assert!(
            attributes.contains(r#"StringValue("Infinity")"#),
            "{attributes}"
        );
        let metrics = &export.resource_metrics[0].scope_metrics[0].metrics;
        let exemplar = format!("{:?}", metrics[0].data);
        assert!(exemplar.contains("exemplars: [Exemplar { filtered_attributes: [], time_unix_nano: 0, span_id: [], trace_id: [], value: Some(AsDouble(NaN))"), "{exemplar}");
        let Some(crate::metrics::metric::Data::Histogram(histogram)) = &metrics[1].data else {
            panic!("the histogram was dropped: {:?}", metrics[1]);
        };
        let point = &histogram.data_points[0];
        assert_eq!(
            (point.sum, point.min),
            (Some(f64::INFINITY), Some(f64::NEG_INFINITY))
        );
        assert!(point.max.unwrap().is_nan());
        assert_eq!(point.explicit_bounds, [0.5, 1.0, f64::INFINITY]);
        let Some(crate::metrics::metric::Data::ExponentialHistogram(exponential)) =
            &metrics[2].data
        else {
            panic!("the exponential histogram was dropped: {:?}", metrics[2]);
        };
        let point = &exponential.data_points[0];
        assert_eq!((point.zero_threshold, point.sum), (1e-9, Some(4.5)));
        let Some(crate::metrics::metric::Data::Summary(summary)) = &metrics[3].data else {
            panic!("the summary was dropped: {:?}", metrics[3]);
        };
        let point = &summary.data_points[0];
        assert!(point.sum.is_nan());
        assert_eq!(point.quantile_values[0].value, f64::INFINITY);
    }

    #[test]
    fn a_string_in_a_double_field_that_is_no_double_is_an_error_not_a_lost_value() {
        for (field, json) in [
            (
                "asDouble",
                r#"{"name":"g","gauge":{"dataPoints":[{"asDouble":"fast"}]}}"#,
            ),
            (
                "asDouble",
                r#"{"name":"g","gauge":{"dataPoints":[{"asDouble":""}]}}"#,
            ),
            (
                "max",
                r#"{"name":"h","histogram":{"dataPoints":[{"max":"inf"}]}}"#,
            ),
            (
                "explicitBounds",
                r#"{"name":"h","histogram":{"dataPoints":[{"explicitBounds":[1,"two"]}]}}"#,
            ),
            (
                "doubleValue",
                r#"{"name":"g","gauge":{"dataPoints":[{"asInt":"1",
                    "attributes":[{"key":"k","value":{"doubleValue":"1,5"}}]}]}}"#,
            ),
        ] {
            let export =
                format!(r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{json}]}}]}}]}}"#);
            let error = from_otlp_json::<ExportMetricsServiceRequest>(export.as_bytes())
                .expect_err(json)
                .to_string();
            assert!(
                error.contains(&format!("`{field}`: \"")) && error.contains("is not a double"),
                "{json}: {error}"
            );
        }
    }

    #[test]
    fn null_is_the_fields_default() {
        let logs: ExportLogsServiceRequest = from_otlp_json(
            br#"{"resourceLogs":[{"resource":null,"scopeLogs":[{"scope":null,"logRecords":[
                {"timeUnixNano":null,"observedTimeUnixNano":"5","severityNumber":null,
                 "severityText":null,"body":{"stringValue":"kept"},"attributes":null,
                 "droppedAttributesCount":null,"flags":null,"traceId":null,"spanId":null,
                 "eventName":null}]}]}]}"#,
        )
        .unwrap();
        let record = &logs.resource_logs[0].scope_logs[0].log_records[0];
        let expected = crate::logs::LogRecord {
            observed_time_unix_nano: 5,
            body: Some(crate::common::AnyValue {
                value: Some(crate::common::any_value::Value::StringValue("kept".into())),
            }),
            ..Default::default()
        };
        assert_eq!(record, &expected);

        let spans: ExportTraceServiceRequest = from_otlp_json(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"GET /","kind":null,
                "startTimeUnixNano":null,"endTimeUnixNano":"9","events":null,"links":null,
                "status":{"code":null,"message":null},"parentSpanId":null}]}]}]}"#,
        )
        .unwrap();
        let span = &spans.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            (span.name.as_str(), span.kind, span.end_time_unix_nano),
            ("GET /", 0, 9)
        );
        assert_eq!(span.status, Some(Default::default()));

        // Inside a metric's data (read as any value first, where an error used to drop the
        // data without a word), the keys say what a null stands for.
        let metrics: ExportMetricsServiceRequest = from_otlp_json(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"requests",
                "description":null,"unit":null,"sum":{"isMonotonic":null,
                "aggregationTemporality":null,"dataPoints":[{"asInt":"4","attributes":null,
                "exemplars":null,"flags":null,"startTimeUnixNano":null}]}},
                {"name":"latency","histogram":{"dataPoints":[{"count":"1","bucketCounts":null,
                "explicitBounds":null,"attributes":[{"key":"k","value":{"stringValue":null}}]}]}}
                ]}]}]}"#,
        )
        .unwrap();
        let metrics = &metrics.resource_metrics[0].scope_metrics[0].metrics;
        let Some(crate::metrics::metric::Data::Sum(sum)) = &metrics[0].data else {
            panic!("the sum was dropped: {:?}", metrics[0]);
        };
        assert_eq!((sum.is_monotonic, sum.aggregation_temporality), (false, 0));
        assert_eq!(
            sum.data_points[0].value,
            Some(crate::metrics::number_data_point::Value::AsInt(4))
        );
        let Some(crate::metrics::metric::Data::Histogram(histogram)) = &metrics[1].data else {
            panic!("the histogram was dropped: {:?}", metrics[1]);
        };
        let point = &histogram.data_points[0];
        assert_eq!((point.count, point.bucket_counts.len()), (1, 0));
        assert_eq!(point.attributes[0].key, "k");

        // In a oneof, a null leaves the oneof unset.
        let metrics: ExportMetricsServiceRequest = from_otlp_json(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","gauge":{
                "dataPoints":[{"asInt":null,"timeUnixNano":null},{"asDouble":2}]}}]}]}]}"#,
        )
        .unwrap();
        assert_eq!(gauge_values(&metrics), [None, Some(2.0)]);
    }

    #[test]
    fn integers_may_be_strings() {
        let logs: ExportLogsServiceRequest = from_otlp_json(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
                {"flags":"1","droppedAttributesCount":"2","timeUnixNano":"3"}]}]}]}"#,
        )
        .unwrap();
        let record = &logs.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(
            (
                record.flags,
                record.dropped_attributes_count,
                record.time_unix_nano
            ),
            (1, 2, 3)
        );
        let metrics: ExportMetricsServiceRequest = from_otlp_json(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"size",
                "exponentialHistogram":{"dataPoints":[{"scale":"-3",
                "positive":{"offset":"-4","bucketCounts":["1"]}}]}}]}]}]}"#,
        )
        .unwrap();
        let metric = &metrics.resource_metrics[0].scope_metrics[0].metrics[0];
        let Some(crate::metrics::metric::Data::ExponentialHistogram(exponential)) = &metric.data
        else {
            panic!("the exponential histogram was dropped: {metric:?}");
        };
        let point = &exponential.data_points[0];
        assert_eq!(
            (point.scale, point.positive.as_ref().unwrap().offset),
            (-3, -4)
        );
        // Inside a metric's data a bad value used to drop the data without a word.
        let error = from_otlp_json::<ExportMetricsServiceRequest>(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"size",
                "exponentialHistogram":{"dataPoints":[{"scale":"x"}]}}]}]}]}"#,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains(r#"`scale`: "x" is not an integer"#),
            "{error}"
        );

        for bad in [r#""flags":"one""#, r#""flags":"-1""#, r#""flags":"1.5""#] {
            let json =
                format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{{bad}}}]}}]}}]}}"#);
            let error = from_otlp_json::<ExportLogsServiceRequest>(json.as_bytes());
            assert!(error.is_err(), "{bad} was taken: {error:?}");
        }
    }

    #[test]
    fn a_metric_whose_data_does_not_decode_is_an_error_that_names_it() {
        let error = from_otlp_json::<ExportMetricsServiceRequest>(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
                {"name":"fine","gauge":{"dataPoints":[{"asInt":"1"}]}},
                {"name":"requests","sum":{"isMonotonic":"yes","dataPoints":[{"asInt":"1"}]}}
                ]}]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with(
                r#"resourceMetrics[0].scopeMetrics[0].metrics[1] ("requests"): `sum`: invalid type: string "yes", expected a boolean"#
            ),
            "{error}"
        );
        // A metric without data, and a point's `sum`, are no metric data.
        let export: ExportMetricsServiceRequest = from_otlp_json(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"empty"},
                {"name":"latency","histogram":{"dataPoints":[{"sum":2.5,"count":"1"}]}}]}]}]}"#,
        )
        .unwrap();
        assert_eq!(export.metrics_with_data(), 1);
    }

    #[test]
    fn metric_data_that_is_no_object_or_of_two_kinds_is_an_error_not_a_dropped_metric() {
        let metric = |data: &str| {
            let json = format!(
                r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[
                    {{"name":"fine","gauge":{{"dataPoints":[{{"asInt":"1"}}]}}}},
                    {{"name":"m",{data}}}]}}]}}]}}"#
            );
            from_otlp_json::<ExportMetricsServiceRequest>(json.as_bytes())
        };
        let at = r#"resourceMetrics[0].scopeMetrics[0].metrics[1] ("m")"#;
        for (data, why) in [
            (
                r#""gauge":5"#,
                "`gauge`: invalid type: integer `5`, expected struct Gauge",
            ),
            (
                r#""sum":2.5"#,
                "`sum`: invalid type: floating point `2.5`, expected struct Sum",
            ),
            (
                r#""sum":"1""#,
                r#"`sum`: invalid type: string "1", expected struct Sum"#,
            ),
            (
                r#""summary":true"#,
                "`summary`: invalid type: boolean `true`, expected struct Summary",
            ),
            (
                r#""gauge":{"dataPoints":[]},"sum":{"dataPoints":[]}"#,
                "a metric holds one of `gauge`, `sum`, `histogram`, `exponentialHistogram` or \
                 `summary`; this one has `gauge` and `sum`",
            ),
            (
                r#""sum":null,"gauge":{"dataPoints":[]},"histogram":{"dataPoints":[]}"#,
                "this one has `gauge` and `histogram`",
            ),
        ] {
            let error = metric(data).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("{at}: ")) && error.contains(why),
                "{data}: {error}"
            );
        }
        // A null is no data, and a metric may have none.
        let export = metric(r#""gauge":null"#).unwrap();
        assert_eq!(export.metrics_with_data(), 1);
        let export = metric(r#""gauge":{"dataPoints":[{"asInt":"2"}]},"sum":null"#).unwrap();
        assert_eq!(export.metrics_with_data(), 2);
        // Before the data too, as a serializer that writes every field writes it (serde
        // took the first key, the null, and refused the metric as of two kinds).
        let export = metric(
            r#""gauge":null,"sum":{"isMonotonic":true,"dataPoints":[{"asInt":"3"}]},
                "histogram":null,"exponentialHistogram":null,"summary":null"#,
        )
        .unwrap();
        let data = &export.resource_metrics[0].scope_metrics[0].metrics[1].data;
        let Some(metrics::metric::Data::Sum(sum)) = data else {
            panic!("{data:?}");
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.data_points[0].value,
            Some(metrics::number_data_point::Value::AsInt(3))
        );
    }

    /// The mapping's parsers take a field's proto name as well as its JSON name; a
    /// sender that writes proto names had its export answered 200 and nothing stored.
    #[test]
    fn fields_may_be_named_by_their_proto_names() {
        let json = br#"{"resource_logs":[{"resource":{"attributes":[{"key":"service.name",
            "value":{"string_value":"cart"}}],"dropped_attributes_count":0},"scope_logs":[{
            "log_records":[{"time_unix_nano":"5","severity_number":"SEVERITY_NUMBER_WARN",
            "severity_text":"WARN","body":{"kvlist_value":{"values":[{"key":"a_b",
            "value":{"int_value":"7"}}]}},"trace_id":"5b8efff798038103d269b633813fc60c",
            "span_id":"eee19b7ec3c1b174"}]}],"schema_url":"s"}]}"#;
        let export = from_otlp_json::<ExportLogsServiceRequest>(json).unwrap();
        let resource = &export.resource_logs[0];
        assert_eq!(resource.schema_url, "s");
        let record = &resource.scope_logs[0].log_records[0];
        assert_eq!(record.time_unix_nano, 5);
        assert_eq!(record.severity_number, 13);
        assert_eq!(record.severity_text, "WARN");
        assert_eq!(record.trace_id.len(), 16);
        assert_eq!(record.span_id.len(), 8);
        // Attribute keys are values, not field names: left as they are.
        let text = to_otlp_json(record.body.as_ref().unwrap());
        assert_eq!(
            text,
            r#"{"kvlistValue":{"values":[{"key":"a_b","value":{"intValue":"7"}}]}}"#
        );
        let metrics = br#"{"resource_metrics":[{"scope_metrics":[{"metrics":[{"name":"m",
            "exponential_histogram":{"aggregation_temporality":2,"data_points":[{
            "time_unix_nano":"1","zero_count":"1","positive":{"bucket_counts":["1"]}}]}},
            {"name":"n","sum":{"is_monotonic":true,"data_points":[{"as_int":"3"}]}}]}]}]}"#;
        let export = from_otlp_json::<ExportMetricsServiceRequest>(metrics).unwrap();
        assert_eq!(export.metrics_with_data(), 2);
        // A metric whose data does not decode is named by its proto names too.
        let error = from_otlp_json::<ExportMetricsServiceRequest>(
            br#"{"resource_metrics":[{"scope_metrics":[{"metrics":[{"name":"m","gauge":5}]}]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with(r#"resourceMetrics[0].scopeMetrics[0].metrics[0] ("m"): `gauge`"#),
            "{error}"
        );
    }

    /// Keys that are no OTLP field's name are ignored, as OTLP has receivers do, and
    /// named in a warning: a misspelt field (`logRecord`) was data left out without a word.
    #[test]
    fn keys_that_are_no_field_are_ignored_and_named() {
        let json = br#"{"resourceLogs":[{"scopeLogs":[{"logRecord":[{}],"logRecords":[{
            "body":{"stringvalue":"x"},"Severity":"WARN"},{"foo":1},{"foo":2},{"bar":3}]}]}]}"#;
        let (export, warning) = from_otlp_json_noting::<ExportLogsServiceRequest>(json).unwrap();
        assert_eq!(export.resource_logs[0].scope_logs[0].log_records.len(), 4);
        assert_eq!(
            warning.as_deref(),
            Some(
                "6 key(s) that are no OTLP field were ignored, with their values: \"logRecord\", \
                 \"stringvalue\", \"Severity\", …; OTLP/JSON names fields in lowerCamelCase \
                 (\"logRecords\") or by their proto names (\"log_records\")"
            )
        );
        // In objects whose oneof serde flattens as well (a point's value, a metric's data).
        let json = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m",
            "gauge":{"dataPoints":[{"timeUnixNano":"1","asint":"3"}]}},{"name":"n","gauges":{}}]}]}]}"#;
        let (_, warning) = from_otlp_json_noting::<ExportMetricsServiceRequest>(json).unwrap();
        let warning = warning.unwrap_or_default();
        assert!(
            warning.contains(r#"ignored, with their values: "asint", "gauges";"#),
            "{warning}"
        );
        // Each decoding starts afresh, and proto names are field names.
        let (_, warning) = from_otlp_json_noting::<ExportLogsServiceRequest>(
            br#"{"resource_logs":[{"scope_logs":[{"log_records":[{"time_unix_nano":"1"}]}]}]}"#,
        )
        .unwrap();
        assert_eq!(warning, None);
        let mut response = crate::logs_service::ExportLogsServiceResponse::default();
        response.warn("w");
        assert_eq!(
            to_otlp_json(&response),
            r#"{"partialSuccess":{"rejectedLogRecords":0,"errorMessage":"w"}}"#
        );
    }

    /// A trace or span id that is no hex names its field; the generated code said only
    /// "odd number of digits" or "invalid character".
    #[test]
    fn an_id_that_is_no_hex_is_an_error_that_names_it() {
        let cases = [
            (
                r#"{"traceId":"xyz"}"#,
                r#"`traceId`: "xyz" is not an id in hex"#,
            ),
            (
                r#"{"spanId":"zz"}"#,
                r#"`spanId`: "zz" is not an id in hex"#,
            ),
            (
                r#"{"traceId":"xy"}"#,
                r#"`traceId`: "xy" is not an id in hex"#,
            ),
        ];
        for (record, expected) in cases {
            let json =
                format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{record}]}}]}}]}}"#);
            let error = from_otlp_json::<ExportLogsServiceRequest>(json.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(expected), "{record}: {error}");
        }
        let span = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"parentSpanId":"0g"}]}]}]}"#;
        let error = from_otlp_json::<ExportTraceServiceRequest>(span)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(r#"`parentSpanId`: "0g" is not an id in hex"#),
            "{error}"
        );
        // Hex of any case, and null, are taken.
        let json = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":null}]}]}]}"#;
        let export = from_otlp_json::<ExportLogsServiceRequest>(json).unwrap();
        assert_eq!(
            export.resource_logs[0].scope_logs[0].log_records[0]
                .trace_id
                .len(),
            16
        );
    }

    /// serde's derived structs also read an array as their fields in order; OTLP/JSON
    /// writes every message as an object, so an array where one belongs is an error
    /// that says so, at the top (exports batched in an array) or inside.
    #[test]
    fn an_array_where_a_message_belongs_is_an_error_not_its_fields_in_order() {
        for json in [
            r#"[{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"a"}}]}]}]}]"#,
            r#"[[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"a"}}]}]}]]"#,
            "[]",
            r#"{"resourceLogs":[["resource"]]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[[1, 2]]}]}]}"#,
            r#"{"resourceLogs":[{"resource":[],"scopeLogs":[]}]}"#,
        ] {
            let error = from_otlp_json::<ExportLogsServiceRequest>(json.as_bytes())
                .expect_err(json)
                .to_string();
            assert!(
                error.contains("invalid type: sequence, expected struct"),
                "{json}: {error}"
            );
        }
        let error = from_otlp_json::<ExportLogsServiceRequest>(b"[]")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("invalid type: sequence, expected struct ExportLogsServiceRequest"),
            "{error}"
        );
        // Lists stay lists.
        let export = from_otlp_json::<ExportLogsServiceRequest>(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"k",
                "value":{"arrayValue":{"values":[{"intValue":"1"}]}}}]}]}]}]}"#,
        )
        .unwrap();
        assert_eq!(export.resource_logs[0].scope_logs[0].log_records.len(), 1);
    }

    #[test]
    fn an_attribute_value_of_the_wrong_type_is_an_error_not_a_value_left_out() {
        let attribute = |value: &str| {
            let json = format!(
                r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"attributes":[
                    {{"key":"k","value":{value}}}]}}]}}]}}]}}"#
            );
            from_otlp_json::<ExportLogsServiceRequest>(json.as_bytes())
        };
        for value in [
            r#"{"intValue":true}"#,
            r#"{"intValue":1.5}"#,
            r#"{"intValue":"x"}"#,
            r#"{"boolValue":"yes"}"#,
            r#"{"stringValue":5}"#,
            r#"{"doubleValue":true}"#,
            r#"{"bytesValue":"!!"}"#,
            r#"{"arrayValue":5}"#,
            r#"{"arrayValue":{"values":[{"intValue":true}]}}"#,
            r#"{"kvlistValue":{"values":[{"key":"a","value":{"boolValue":1}}]}}"#,
        ] {
            assert!(attribute(value).is_err(), "{value} was taken");
        }
        for (value, int) in [(r#"{"intValue":"-5"}"#, -5), (r#"{"intValue":7}"#, 7)] {
            let export = attribute(value).unwrap();
            let record = &export.resource_logs[0].scope_logs[0].log_records[0];
            let value = record.attributes[0].value.as_ref().unwrap().value.clone();
            assert_eq!(value, Some(crate::common::any_value::Value::IntValue(int)));
        }
        // A null leaves the value unset, as an empty object does.
        for value in [r#"{"stringValue":null}"#, "{}"] {
            let export = attribute(value).unwrap();
            let record = &export.resource_logs[0].scope_logs[0].log_records[0];
            assert_eq!(
                record.attributes[0].value.as_ref().unwrap().value,
                None,
                "{value}"
            );
        }
    }

    #[test]
    fn a_points_value_of_the_wrong_type_is_an_error_not_a_point_without_value() {
        let point = |value: &str| {
            let json = format!(
                r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"m",
                    "gauge":{{"dataPoints":[{{{value}}}]}}}}]}}]}}]}}"#
            );
            from_otlp_json::<ExportMetricsServiceRequest>(json.as_bytes())
        };
        for (value, why) in [
            (
                r#""asInt":true"#,
                "`asInt`: boolean `true` is not an integer",
            ),
            (
                r#""asInt":1.5"#,
                "`asInt`: floating point `1.5` is not an integer",
            ),
            (
                r#""asInt":"x""#,
                r#"`asInt`: "x" is not a 64-bit signed integer"#,
            ),
            (
                r#""asInt":18446744073709551615"#,
                "`asInt`: integer `18446744073709551615` is not a 64-bit signed integer",
            ),
            (r#""asInt":{}"#, "`asInt`: map is not an integer"),
            (
                r#""asDouble":true"#,
                "`asDouble`: boolean `true` is not a double",
            ),
            (r#""asDouble":[1]"#, "`asDouble`: sequence is not a double"),
            (
                r#""asDouble":1,"exemplars":[{"asInt":false}]"#,
                "`asInt`: boolean `false` is not an integer",
            ),
        ] {
            let error = point(value).unwrap_err().to_string();
            assert!(error.contains(why), "{value}: {error}");
        }
        for (value, expected) in [
            (r#""asInt":"-7""#, Some(-7.0)),
            (r#""asInt":9"#, Some(9.0)),
            (r#""asDouble":3"#, Some(3.0)),
            (r#""asInt":null"#, None),
            // A null member of the oneof is not there: serde took the first key, the
            // null, and the point came without its value.
            (r#""asInt":null,"asDouble":1.5"#, Some(1.5)),
            (r#""asDouble":null,"asInt":"4""#, Some(4.0)),
            (r#""asInt":"5","asDouble":null"#, Some(5.0)),
        ] {
            assert_eq!(gauge_values(&point(value).unwrap()), [expected], "{value}");
        }
        // An attribute's integer says as much.
        let error = from_otlp_json::<ExportLogsServiceRequest>(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[
                {"key":"k","value":{"intValue":true}}]}]}]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("`intValue`: boolean `true` is not an integer"),
            "{error}"
        );
    }
}
