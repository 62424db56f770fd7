//! Any export written as OTLP/JSON (`to_otlp_json`: the generated types' text, with
//! non-finite doubles as the mapping's strings), and the same text in the other forms the
//! proto3 JSON mapping allows (integers as strings, enums by name, `null` for an empty
//! list), decodes through `from_otlp_json` to the very message that was written: the
//! mapping's leniency must never change a value it was not asked to. Messages are
//! compared by their protobuf encoding, where a `NaN` equals itself.

use porthole_proto::common::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use porthole_proto::json::{from_otlp_json_noting, to_otlp_json};
use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::metrics::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint, exemplar, exponential_histogram_data_point::Buckets, metric,
    number_data_point, summary_data_point::ValueAtQuantile,
};
use porthole_proto::metrics_service::ExportMetricsServiceRequest;
use porthole_proto::resource::Resource;
use porthole_proto::trace::{ResourceSpans, ScopeSpans, Span, Status, span};
use porthole_proto::trace_service::ExportTraceServiceRequest;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_json::Value;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z._]{0,8}",
        "\\PC{0,6}",
        Just("NaN".to_string()),
        Just("1".to_string())
    ]
}

/// Any double: finite ones as JSON numbers, which hold them exactly (serde_json's
/// `float_roundtrip`), the others as the mapping's strings.
fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>().prop_filter("finite", |d| d.is_finite()),
        4 => -3.0..3.0f64,
        1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
    ]
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        text().prop_map(any_value::Value::StringValue),
        any::<bool>().prop_map(any_value::Value::BoolValue),
        any::<i64>().prop_map(any_value::Value::IntValue),
        double().prop_map(any_value::Value::DoubleValue),
        vec(any::<u8>(), 0..6).prop_map(any_value::Value::BytesValue),
    ];
    let value = leaf.prop_recursive(2, 8, 3, |inner| {
        let values = vec(
            inner.clone().prop_map(|v| AnyValue { value: Some(v) }),
            0..3,
        );
        prop_oneof![
            values.prop_map(|values| any_value::Value::ArrayValue(ArrayValue { values })),
            vec((text(), inner), 0..3).prop_map(|pairs| {
                let values = pairs
                    .into_iter()
                    .map(|(key, v)| KeyValue {
                        key,
                        value: Some(AnyValue { value: Some(v) }),
                        ..Default::default()
                    })
                    .collect();
                any_value::Value::KvlistValue(KeyValueList { values })
            }),
        ]
    });
    option::of(value).prop_map(|value| AnyValue { value })
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    vec(
        (text(), any_value()).prop_map(|(key, value)| KeyValue {
            key,
            value: Some(value),
            ..Default::default()
        }),
        0..3,
    )
}

fn id(bytes: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(Vec::new()), vec(any::<u8>(), bytes)]
}

fn resource() -> impl Strategy<Value = Option<Resource>> {
    option::of(
        (attributes(), any::<u32>()).prop_map(|(attributes, dropped)| Resource {
            attributes,
            dropped_attributes_count: dropped,
            ..Default::default()
        }),
    )
}

fn scope() -> impl Strategy<Value = Option<InstrumentationScope>> {
    option::of(
        (text(), text(), attributes()).prop_map(|(name, version, attributes)| {
            InstrumentationScope {
                name,
                version,
                attributes,
                dropped_attributes_count: 0,
            }
        }),
    )
}

fn exemplars() -> impl Strategy<Value = Vec<Exemplar>> {
    let value = option::of(prop_oneof![
        any::<i64>().prop_map(exemplar::Value::AsInt),
        double().prop_map(exemplar::Value::AsDouble),
    ]);
    vec(
        (attributes(), any::<u64>(), id(8), id(16), value).prop_map(
            |(filtered_attributes, time_unix_nano, span_id, trace_id, value)| Exemplar {
                filtered_attributes,
                time_unix_nano,
                span_id,
                trace_id,
                value,
            },
        ),
        0..2,
    )
}

fn number_points() -> impl Strategy<Value = Vec<NumberDataPoint>> {
    let value = option::of(prop_oneof![
        any::<i64>().prop_map(number_data_point::Value::AsInt),
        double().prop_map(number_data_point::Value::AsDouble),
    ]);
    vec(
        (
            attributes(),
            any::<(u64, u64)>(),
            exemplars(),
            any::<u32>(),
            value,
        )
            .prop_map(
                |(attributes, (start_time_unix_nano, time_unix_nano), exemplars, flags, value)| {
                    NumberDataPoint {
                        attributes,
                        start_time_unix_nano,
                        time_unix_nano,
                        exemplars,
                        flags,
                        value,
                    }
                },
            ),
        0..3,
    )
}

fn histogram_point() -> impl Strategy<Value = HistogramDataPoint> {
    let shape = (any::<u64>(), option::of(double()), vec(any::<u64>(), 0..4));
    let bounds = (
        vec(double(), 0..3),
        option::of(double()),
        option::of(double()),
    );
    (
        attributes(),
        any::<u64>(),
        shape,
        bounds,
        exemplars(),
        any::<u32>(),
    )
        .prop_map(
            |(attributes, time, (count, sum, buckets), (bounds, min, max), exemplars, flags)| {
                HistogramDataPoint {
                    attributes,
                    start_time_unix_nano: time / 2,
                    time_unix_nano: time,
                    count,
                    sum,
                    bucket_counts: buckets,
                    explicit_bounds: bounds,
                    exemplars,
                    flags,
                    min,
                    max,
                }
            },
        )
}

fn exponential_point() -> impl Strategy<Value = ExponentialHistogramDataPoint> {
    let buckets = || {
        option::of(
            (any::<i32>(), vec(any::<u64>(), 0..3)).prop_map(|(offset, bucket_counts)| Buckets {
                offset,
                bucket_counts,
            }),
        )
    };
    let counts = (
        any::<u64>(),
        option::of(double()),
        any::<i32>(),
        any::<u64>(),
    );
    (
        attributes(),
        counts,
        buckets(),
        buckets(),
        option::of(double()),
        double(),
    )
        .prop_map(
            |(attributes, (count, sum, scale, zero_count), positive, negative, min, zero)| {
                ExponentialHistogramDataPoint {
                    attributes,
                    count,
                    sum,
                    scale,
                    zero_count,
                    positive,
                    negative,
                    min,
                    max: min,
                    zero_threshold: zero,
                    ..Default::default()
                }
            },
        )
}

fn summary_point() -> impl Strategy<Value = SummaryDataPoint> {
    let quantiles = vec(
        (double(), double()).prop_map(|(quantile, value)| ValueAtQuantile { quantile, value }),
        0..3,
    );
    (
        attributes(),
        any::<u64>(),
        double(),
        quantiles,
        any::<u32>(),
    )
        .prop_map(
            |(attributes, count, sum, quantile_values, flags)| SummaryDataPoint {
                attributes,
                count,
                sum,
                quantile_values,
                flags,
                ..Default::default()
            },
        )
}

fn metric_data() -> impl Strategy<Value = Option<metric::Data>> {
    let temporality = 0..3i32;
    option::of(prop_oneof![
        number_points().prop_map(|data_points| metric::Data::Gauge(Gauge { data_points })),
        (number_points(), temporality.clone(), any::<bool>()).prop_map(|(points, t, mono)| {
            metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: t,
                is_monotonic: mono,
            })
        }),
        (vec(histogram_point(), 0..2), temporality.clone()).prop_map(|(data_points, t)| {
            metric::Data::Histogram(Histogram {
                data_points,
                aggregation_temporality: t,
            })
        }),
        (vec(exponential_point(), 0..2), temporality).prop_map(|(data_points, t)| {
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points,
                aggregation_temporality: t,
            })
        }),
        vec(summary_point(), 0..2)
            .prop_map(|data_points| metric::Data::Summary(Summary { data_points })),
    ])
}

fn metrics_export() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let metric = (text(), text(), text(), attributes(), metric_data()).prop_map(
        |(name, description, unit, metadata, data)| Metric {
            name,
            description,
            unit,
            metadata,
            data,
        },
    );
    let scope_metrics =
        (scope(), vec(metric, 0..4), text()).prop_map(|(scope, metrics, schema_url)| {
            ScopeMetrics {
                scope,
                metrics,
                schema_url,
            }
        });
    vec(
        (resource(), vec(scope_metrics, 0..2)).prop_map(|(resource, scope_metrics)| {
            ResourceMetrics {
                resource,
                scope_metrics,
                schema_url: String::new(),
            }
        }),
        0..2,
    )
    .prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}

fn logs_export() -> impl Strategy<Value = ExportLogsServiceRequest> {
    let times = any::<(u64, u64)>();
    let ids = (id(16), id(8), any::<u32>());
    let record = (
        times,
        0..25i32,
        text(),
        option::of(any_value()),
        attributes(),
        ids,
        text(),
    )
        .prop_map(
            |((time, observed), severity, severity_text, body, attributes, ids, event_name)| {
                LogRecord {
                    time_unix_nano: time,
                    observed_time_unix_nano: observed,
                    severity_number: severity,
                    severity_text,
                    body,
                    attributes,
                    trace_id: ids.0,
                    span_id: ids.1,
                    flags: ids.2,
                    event_name,
                    ..Default::default()
                }
            },
        );
    let scope_logs = (scope(), vec(record, 0..4)).prop_map(|(scope, log_records)| ScopeLogs {
        scope,
        log_records,
        schema_url: String::new(),
    });
    vec(
        (resource(), vec(scope_logs, 0..2)).prop_map(|(resource, scope_logs)| ResourceLogs {
            resource,
            scope_logs,
            schema_url: String::new(),
        }),
        0..2,
    )
    .prop_map(|resource_logs| ExportLogsServiceRequest { resource_logs })
}

fn trace_export() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let event =
        (any::<u64>(), text(), attributes()).prop_map(|(time, name, attributes)| span::Event {
            time_unix_nano: time,
            name,
            attributes,
            dropped_attributes_count: 0,
        });
    let link = (id(16), id(8), text(), attributes()).prop_map(|(trace_id, span_id, state, a)| {
        span::Link {
            trace_id,
            span_id,
            trace_state: state,
            attributes: a,
            ..Default::default()
        }
    });
    let status = option::of((text(), 0..3i32).prop_map(|(message, code)| Status { message, code }));
    let ids = (id(16), id(8), id(8), text());
    let shape = (text(), 0..6i32, any::<(u64, u64)>(), attributes());
    let span = (ids, shape, vec(event, 0..2), vec(link, 0..2), status).prop_map(
        |(
            (trace_id, span_id, parent, state),
            (name, kind, (start, end), attributes),
            events,
            links,
            status,
        )| {
            Span {
                trace_id,
                span_id,
                parent_span_id: parent,
                trace_state: state,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                events,
                links,
                status,
                ..Default::default()
            }
        },
    );
    let scope_spans = (scope(), vec(span, 0..3)).prop_map(|(scope, spans)| ScopeSpans {
        scope,
        spans,
        schema_url: String::new(),
    });
    vec(
        (resource(), vec(scope_spans, 0..2)).prop_map(|(resource, scope_spans)| ResourceSpans {
            resource,
            scope_spans,
            schema_url: String::new(),
        }),
        0..2,
    )
    .prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

/// The JSON as other writers of the mapping may put it, by `choices` (one bit a chance):
/// integers as decimal strings, enums by name, `null` for an empty list, and fields by
/// their proto names (`timeUnixNano` as `time_unix_nano`).
fn rewrite(json: &mut Value, choices: &mut impl Iterator<Item = bool>) {
    const INTEGERS: [&str; 6] = [
        "flags",
        "scale",
        "offset",
        "droppedAttributesCount",
        "count",
        "zeroCount",
    ];
    match json {
        Value::Object(fields) => {
            for (key, value) in fields.iter_mut() {
                let choose = choices.next().unwrap_or(false);
                match value {
                    Value::Number(n) if choose && INTEGERS.contains(&key.as_str()) => {
                        *value = Value::String(n.to_string());
                    }
                    Value::Number(n) if choose => {
                        let name = n.as_i64().and_then(|n| enum_name(key, n as i32));
                        if let Some(name) = name {
                            *value = Value::String(name.into());
                        }
                    }
                    Value::Array(items) if choose && items.is_empty() => *value = Value::Null,
                    _ => rewrite(value, choices),
                }
            }
            let renamed = std::mem::take(fields).into_iter().map(|(key, value)| {
                let snake = choices.next().unwrap_or(false);
                (if snake { proto_name(&key) } else { key }, value)
            });
            *fields = renamed.collect();
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite(item, choices)),
        _ => {}
    }
}

/// `timeUnixNano` → `time_unix_nano`.
fn proto_name(json_name: &str) -> String {
    let mut name = String::with_capacity(json_name.len() + 4);
    for c in json_name.chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
            name.push(c.to_ascii_lowercase());
        } else {
            name.push(c);
        }
    }
    name
}

fn enum_name(key: &str, number: i32) -> Option<&'static str> {
    Some(match key {
        "severityNumber" => SeverityNumber::try_from(number).ok()?.as_str_name(),
        "kind" => span::SpanKind::try_from(number).ok()?.as_str_name(),
        "code" => porthole_proto::trace::status::StatusCode::try_from(number)
            .ok()?
            .as_str_name(),
        "aggregationTemporality" => AggregationTemporality::try_from(number).ok()?.as_str_name(),
        _ => return None,
    })
}

/// `export` written by the generated types, then in the other forms `seed` picks, decodes
/// to `export` each time.
fn decodes_as_written<M>(export: &M, seed: u64) -> Result<(), TestCaseError>
where
    M: serde::Serialize
        + serde::de::DeserializeOwned
        + porthole_proto::json::OtlpJson
        + prost::Message,
{
    let written = export.encode_to_vec();
    let as_written = to_otlp_json(export);
    // Every key written is a field's name: nothing is warned of as unknown.
    let decoded = from_otlp_json_noting::<M>(as_written.as_bytes())
        .map(|(m, unknown)| (m.encode_to_vec(), unknown));
    prop_assert_eq!(
        decoded.as_ref().ok(),
        Some(&(written.clone(), None)),
        "{}",
        as_written
    );
    let mut json: Value = serde_json::from_str(&as_written).unwrap();
    let mut choices = (0..64).cycle().map(move |bit| seed >> bit & 1 == 1);
    rewrite(&mut json, &mut choices);
    let rewritten = serde_json::to_vec(&json).unwrap();
    let decoded =
        from_otlp_json_noting::<M>(&rewritten).map(|(m, unknown)| (m.encode_to_vec(), unknown));
    prop_assert_eq!(
        decoded.as_ref().ok(),
        Some(&(written, None)),
        "{}",
        String::from_utf8_lossy(&rewritten)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn metrics_decode_as_written(export in metrics_export(), seed in any::<u64>()) {
        decodes_as_written(&export, seed)?;
    }

    #[test]
    fn logs_decode_as_written(export in logs_export(), seed in any::<u64>()) {
        decodes_as_written(&export, seed)?;
    }

    #[test]
    fn traces_decode_as_written(export in trace_export(), seed in any::<u64>()) {
        decodes_as_written(&export, seed)?;
    }
}
