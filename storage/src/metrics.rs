//! OTLP metrics → Arrow rows of the `metrics` table, one row per data point. Gauges, sums,
//! histograms, exponential histograms and summaries share one table: the columns a point
//! type does not use are null, and `metric_type` says which kind it is.

use std::sync::Arc;

use arrow::array::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field};
use porthole_proto::common::{InstrumentationScope, KeyValue};
use porthole_proto::metrics::{Exemplar, Metric, metric::Data, number_data_point};
use porthole_proto::metrics_service::ExportMetricsServiceRequest;

use crate::attributes::AttributeMapBuilder;
use crate::batch::{Converted, Rejections, assemble, column, micros, nanos, refused_time};
use crate::resource::{ResourceColumns, ResourceContext, non_empty};

/// Converts an export received at `received_at_nanos` (0: unknown).
pub fn convert_metrics(request: &ExportMetricsServiceRequest, received_at_nanos: i64) -> Converted {
    let mut b = MetricColumns::default();
    let mut rejections = Rejections::default();
    for resource_metrics in &request.resource_metrics {
        let resource = ResourceContext::new(
            resource_metrics.resource.as_ref(),
            &resource_metrics.schema_url,
        );
        for scope_metrics in &resource_metrics.scope_metrics {
            for metric in &scope_metrics.metrics {
                if metric.name.is_empty() {
                    rejections.reject(|| "a metric has no name".to_string());
                    continue;
                }
                let mut row = |point: PointCommon<'_>| {
                    // OTLP requires a point's time. Without one it would be stored at
                    // 1970-01-01, outside every query's range and the first thing
                    // retention deletes: taken and then never seen. Prometheus refuses
                    // such a sample as out of bounds; so does this, saying why.
                    // A time that cannot be right (1970 for milliseconds written as
                    // nanoseconds) is refused too.
                    let time = nanos(point.time);
                    if let Some(refused) = refused_time("time_unix_nano", time, received_at_nanos) {
                        rejections.reject(|| {
                            format!("a data point of metric {:?} {refused}", metric.name)
                        });
                        return;
                    }
                    b.append_common(metric, &point, &resource, scope_metrics.scope.as_ref())
                };
                match &metric.data {
                    None => rejections.reject(|| format!("metric {:?} has no data", metric.name)),
                    Some(Data::Gauge(gauge)) => {
                        for p in &gauge.data_points {
                            row(PointCommon::number("gauge", p, None, None));
                        }
                    }
                    Some(Data::Sum(sum)) => {
                        for p in &sum.data_points {
                            row(PointCommon::number(
                                "sum",
                                p,
                                Some(sum.aggregation_temporality),
                                Some(sum.is_monotonic),
                            ));
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        for p in &h.data_points {
                            let mut c = PointCommon::new(
                                "histogram",
                                &p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                p.flags,
                                &p.exemplars,
                            );
                            c.temporality = Some(h.aggregation_temporality);
                            c.count = Some(p.count);
                            c.sum = p.sum;
                            c.min = p.min;
                            c.max = p.max;
                            c.bucket_counts = Some(&p.bucket_counts);
                            c.explicit_bounds = Some(&p.explicit_bounds);
                            row(c);
                        }
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        for p in &h.data_points {
                            let mut c = PointCommon::new(
                                "exponential_histogram",
                                &p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                p.flags,
                                &p.exemplars,
                            );
                            c.temporality = Some(h.aggregation_temporality);
                            c.count = Some(p.count);
                            c.sum = p.sum;
                            c.min = p.min;
                            c.max = p.max;
                            c.exponential = Some(Exponential {
                                scale: p.scale,
                                zero_count: p.zero_count,
                                zero_threshold: p.zero_threshold,
                                positive: p
                                    .positive
                                    .as_ref()
                                    .map(|b| (b.offset, b.bucket_counts.as_slice())),
                                negative: p
                                    .negative
                                    .as_ref()
                                    .map(|b| (b.offset, b.bucket_counts.as_slice())),
                            });
                            row(c);
                        }
                    }
                    Some(Data::Summary(s)) => {
                        for p in &s.data_points {
                            let mut c = PointCommon::new(
                                "summary",
                                &p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                p.flags,
                                &[],
                            );
                            c.count = Some(p.count);
                            c.sum = Some(p.sum);
                            c.quantiles = Some(
                                p.quantile_values
                                    .iter()
                                    .map(|q| (q.quantile, q.value))
                                    .collect(),
                            );
                            row(c);
                        }
                    }
                }
            }
        }
    }
    rejections.into_converted(b.finish())
}

struct Exponential<'a> {
    scale: i32,
    zero_count: u64,
    zero_threshold: f64,
    positive: Option<(i32, &'a [u64])>,
    negative: Option<(i32, &'a [u64])>,
}

/// What one data point contributes, whatever its kind.
struct PointCommon<'a> {
    metric_type: &'static str,
    attributes: &'a [KeyValue],
    start_time: u64,
    time: u64,
    flags: u32,
    exemplars: &'a [Exemplar],
    temporality: Option<i32>,
    is_monotonic: Option<bool>,
    value_double: Option<f64>,
    value_int: Option<i64>,
    count: Option<u64>,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    bucket_counts: Option<&'a [u64]>,
    explicit_bounds: Option<&'a [f64]>,
    exponential: Option<Exponential<'a>>,
    quantiles: Option<Vec<(f64, f64)>>,
}

impl<'a> PointCommon<'a> {
    fn new(
        metric_type: &'static str,
        attributes: &'a [KeyValue],
        start_time: u64,
        time: u64,
        flags: u32,
        exemplars: &'a [Exemplar],
    ) -> Self {
        Self {
            metric_type,
            attributes,
            start_time,
            time,
            flags,
            exemplars,
            temporality: None,
            is_monotonic: None,
            value_double: None,
            value_int: None,
            count: None,
            sum: None,
            min: None,
            max: None,
            bucket_counts: None,
            explicit_bounds: None,
            exponential: None,
            quantiles: None,
        }
    }

    fn number(
        metric_type: &'static str,
        p: &'a porthole_proto::metrics::NumberDataPoint,
        temporality: Option<i32>,
        is_monotonic: Option<bool>,
    ) -> Self {
        let mut c = Self::new(
            metric_type,
            &p.attributes,
            p.start_time_unix_nano,
            p.time_unix_nano,
            p.flags,
            &p.exemplars,
        );
        c.temporality = temporality;
        c.is_monotonic = is_monotonic;
        match p.value {
            Some(number_data_point::Value::AsDouble(v)) => c.value_double = Some(v),
            Some(number_data_point::Value::AsInt(v)) => {
                c.value_int = Some(v);
                c.value_double = Some(v as f64);
            }
            None => {}
        }
        c
    }
}

fn counts(values: &[u64]) -> impl Iterator<Item = Option<i64>> + '_ {
    values
        .iter()
        .map(|v| Some(i64::try_from(*v).unwrap_or(i64::MAX)))
}

#[derive(Default)]
struct MetricColumns {
    timestamp: TimestampMicrosecondBuilder,
    time_unix_nano: Int64Builder,
    start_time_unix_nano: Int64Builder,
    metric_name: StringBuilder,
    metric_description: StringBuilder,
    metric_unit: StringBuilder,
    metric_metadata: AttributeMapBuilder,
    metric_type: StringBuilder,
    aggregation_temporality: Int32Builder,
    is_monotonic: BooleanBuilder,
    attributes: AttributeMapBuilder,
    flags: Int64Builder,
    value_double: Float64Builder,
    value_int: Int64Builder,
    count: Int64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    bucket_counts: ListBuilder<Int64Builder>,
    explicit_bounds: ListBuilder<Float64Builder>,
    scale: Int32Builder,
    zero_count: Int64Builder,
    zero_threshold: Float64Builder,
    positive_offset: Int32Builder,
    positive_bucket_counts: ListBuilder<Int64Builder>,
    negative_offset: Int32Builder,
    negative_bucket_counts: ListBuilder<Int64Builder>,
    quantiles: ListBuilder<Float64Builder>,
    quantile_values: ListBuilder<Float64Builder>,
    exemplars: StringBuilder,
    resource: ResourceColumns,
}

impl MetricColumns {
    fn append_common(
        &mut self,
        metric: &Metric,
        p: &PointCommon<'_>,
        resource: &ResourceContext<'_>,
        scope: Option<&InstrumentationScope>,
    ) {
        let time = nanos(p.time);
        self.timestamp.append_value(micros(time));
        self.time_unix_nano.append_value(time);
        self.start_time_unix_nano.append_value(nanos(p.start_time));
        self.metric_name.append_value(&metric.name);
        self.metric_description
            .append_option(non_empty(&metric.description));
        self.metric_unit.append_option(non_empty(&metric.unit));
        self.metric_metadata.append(&metric.metadata);
        self.metric_type.append_value(p.metric_type);
        self.aggregation_temporality.append_option(p.temporality);
        self.is_monotonic.append_option(p.is_monotonic);
        self.attributes.append(p.attributes);
        self.flags.append_value(i64::from(p.flags));
        self.value_double.append_option(p.value_double);
        self.value_int.append_option(p.value_int);
        self.count
            .append_option(p.count.map(|c| i64::try_from(c).unwrap_or(i64::MAX)));
        self.sum.append_option(p.sum);
        self.min.append_option(p.min);
        self.max.append_option(p.max);
        self.bucket_counts
            .append_option(p.bucket_counts.map(counts));
        self.explicit_bounds
            .append_option(p.explicit_bounds.map(|b| b.iter().copied().map(Some)));
        let e = p.exponential.as_ref();
        self.scale.append_option(e.map(|e| e.scale));
        self.zero_count
            .append_option(e.map(|e| i64::try_from(e.zero_count).unwrap_or(i64::MAX)));
        self.zero_threshold
            .append_option(e.map(|e| e.zero_threshold));
        self.positive_offset
            .append_option(e.and_then(|e| e.positive).map(|b| b.0));
        self.positive_bucket_counts
            .append_option(e.and_then(|e| e.positive).map(|b| counts(b.1)));
        self.negative_offset
            .append_option(e.and_then(|e| e.negative).map(|b| b.0));
        self.negative_bucket_counts
            .append_option(e.and_then(|e| e.negative).map(|b| counts(b.1)));
        self.quantiles.append_option(
            p.quantiles
                .as_ref()
                .map(|q| q.iter().map(|(q, _)| Some(*q)).collect::<Vec<_>>()),
        );
        self.quantile_values.append_option(
            p.quantiles
                .as_ref()
                .map(|q| q.iter().map(|(_, v)| Some(*v)).collect::<Vec<_>>()),
        );
        self.exemplars.append_option(
            (!p.exemplars.is_empty()).then(|| porthole_proto::json::to_otlp_json(p.exemplars)),
        );
        self.resource.append(resource, scope);
    }

    fn finish(mut self) -> arrow::array::RecordBatch {
        let mut columns = vec![
            column(
                "timestamp",
                Arc::new(self.timestamp.finish().with_timezone("UTC")),
                false,
            ),
            column(
                "time_unix_nano",
                Arc::new(self.time_unix_nano.finish()),
                false,
            ),
            column(
                "start_time_unix_nano",
                Arc::new(self.start_time_unix_nano.finish()),
                false,
            ),
            column("metric_name", Arc::new(self.metric_name.finish()), false),
            column(
                "metric_description",
                Arc::new(self.metric_description.finish()),
                true,
            ),
            column("metric_unit", Arc::new(self.metric_unit.finish()), true),
            column("metric_metadata", self.metric_metadata.finish(), true),
            column("metric_type", Arc::new(self.metric_type.finish()), false),
            column(
                "aggregation_temporality",
                Arc::new(self.aggregation_temporality.finish()),
                true,
            ),
            column("is_monotonic", Arc::new(self.is_monotonic.finish()), true),
            column("attributes", self.attributes.finish(), true),
            column("flags", Arc::new(self.flags.finish()), false),
            column("value_double", Arc::new(self.value_double.finish()), true),
            column("value_int", Arc::new(self.value_int.finish()), true),
            column("count", Arc::new(self.count.finish()), true),
            column("sum", Arc::new(self.sum.finish()), true),
            column("min", Arc::new(self.min.finish()), true),
            column("max", Arc::new(self.max.finish()), true),
            column("bucket_counts", list(self.bucket_counts.finish()), true),
            column("explicit_bounds", list(self.explicit_bounds.finish()), true),
            column("scale", Arc::new(self.scale.finish()), true),
            column("zero_count", Arc::new(self.zero_count.finish()), true),
            column(
                "zero_threshold",
                Arc::new(self.zero_threshold.finish()),
                true,
            ),
            column(
                "positive_offset",
                Arc::new(self.positive_offset.finish()),
                true,
            ),
            column(
                "positive_bucket_counts",
                list(self.positive_bucket_counts.finish()),
                true,
            ),
            column(
                "negative_offset",
                Arc::new(self.negative_offset.finish()),
                true,
            ),
            column(
                "negative_bucket_counts",
                list(self.negative_bucket_counts.finish()),
                true,
            ),
            column("quantiles", list(self.quantiles.finish()), true),
            column("quantile_values", list(self.quantile_values.finish()), true),
            column("exemplars", Arc::new(self.exemplars.finish()), true),
        ];
        columns.extend(self.resource.finish());
        assemble(columns)
    }
}

/// Renames a list's item field to `element`, the name Delta Lake readers expect.
fn list(array: arrow::array::ListArray) -> arrow::array::ArrayRef {
    let (field, offsets, values, nulls) = array.into_parts();
    let element = Field::new("element", field.data_type().clone(), true);
    debug_assert!(matches!(
        field.data_type(),
        DataType::Int64 | DataType::Float64
    ));
    Arc::new(arrow::array::ListArray::new(
        Arc::new(element),
        offsets,
        values,
        nulls,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use porthole_proto::metrics::{
        ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
        exponential_histogram_data_point::Buckets, summary_data_point::ValueAtQuantile,
    };

    /// An export of `metrics`, under one resource and scope.
    fn export(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn metric(name: &str, data: Data) -> Metric {
        Metric {
            name: name.into(),
            data: Some(data),
            ..Default::default()
        }
    }

    #[test]
    fn every_point_kind_becomes_a_row() {
        let number = |v| NumberDataPoint {
            time_unix_nano: 10,
            value: Some(v),
            ..Default::default()
        };
        let metrics = vec![
            metric(
                "g",
                Data::Gauge(Gauge {
                    data_points: vec![number(number_data_point::Value::AsDouble(1.5))],
                }),
            ),
            metric(
                "s",
                Data::Sum(Sum {
                    data_points: vec![number(number_data_point::Value::AsInt(7))],
                    aggregation_temporality: 2,
                    is_monotonic: true,
                }),
            ),
            metric(
                "h",
                Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        time_unix_nano: 10,
                        count: 3,
                        sum: Some(6.0),
                        bucket_counts: vec![1, 2],
                        explicit_bounds: vec![5.0],
                        ..Default::default()
                    }],
                    aggregation_temporality: 1,
                }),
            ),
            metric(
                "e",
                Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint {
                        time_unix_nano: 10,
                        scale: 3,
                        count: 4,
                        positive: Some(Buckets {
                            offset: -2,
                            bucket_counts: vec![1, 3],
                        }),
                        ..Default::default()
                    }],
                    aggregation_temporality: 2,
                }),
            ),
            metric(
                "q",
                Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint {
                        time_unix_nano: 10,
                        count: 2,
                        sum: 3.0,
                        quantile_values: vec![ValueAtQuantile {
                            quantile: 0.99,
                            value: 2.5,
                        }],
                        ..Default::default()
                    }],
                }),
            ),
            Metric {
                name: "empty".into(),
                ..Default::default()
            },
        ];
        let converted = convert_metrics(&export(metrics), 0);
        assert_eq!(converted.rejected, 1);
        let batch = converted.batch;
        assert_eq!(batch.num_rows(), 5);
        let types = batch
            .column_by_name("metric_type")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(
            types.iter().flatten().collect::<Vec<_>>(),
            [
                "gauge",
                "sum",
                "histogram",
                "exponential_histogram",
                "summary"
            ]
        );
        let ints = batch
            .column_by_name("value_int")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(ints.value(1), 7);
        assert!(ints.is_null(0));
        let buckets = batch
            .column_by_name("bucket_counts")
            .unwrap()
            .as_list::<i32>();
        assert_eq!(
            buckets
                .value(2)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values(),
            &[1, 2]
        );
        let positive = batch
            .column_by_name("positive_bucket_counts")
            .unwrap()
            .as_list::<i32>();
        assert_eq!(
            positive
                .value(3)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values(),
            &[1, 3]
        );
        let quantiles = batch
            .column_by_name("quantile_values")
            .unwrap()
            .as_list::<i32>();
        assert_eq!(
            quantiles
                .value(4)
                .as_primitive::<arrow::datatypes::Float64Type>()
                .values(),
            &[2.5]
        );
    }

    /// A point without a time would be stored at 1970-01-01, where no query looks and
    /// retention deletes first: it is refused, counted and said why, whatever its kind;
    /// the points beside it are taken.
    #[test]
    fn a_point_without_a_time_is_refused_saying_why() {
        let timed = NumberDataPoint {
            time_unix_nano: 10,
            value: Some(number_data_point::Value::AsInt(1)),
            ..Default::default()
        };
        let untimed = NumberDataPoint {
            time_unix_nano: 0,
            start_time_unix_nano: 5,
            ..timed.clone()
        };
        let metrics = vec![
            metric(
                "requests",
                Data::Gauge(Gauge {
                    data_points: vec![timed.clone(), untimed, timed],
                }),
            ),
            metric(
                "latency",
                Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint::default()],
                    aggregation_temporality: 2,
                }),
            ),
            metric(
                "rtt",
                Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint::default()],
                }),
            ),
        ];
        let converted = convert_metrics(&export(metrics), 0);
        assert_eq!(converted.batch.num_rows(), 2);
        assert_eq!(converted.rejected, 3);
        assert_eq!(
            converted.rejection_reason.as_deref(),
            Some("a data point of metric \"requests\" has no time_unix_nano (OTLP requires it)")
        );
    }

    /// Beside the time it was received, a point's time before 2000 (milliseconds written
    /// as nanoseconds) or more than a day ahead is refused as one without a time.
    #[test]
    fn a_point_at_an_implausible_time_is_refused_saying_why() {
        let received: i64 = 1_796_636_780_000_000_000;
        let at = |time: i64| NumberDataPoint {
            time_unix_nano: time as u64,
            value: Some(number_data_point::Value::AsInt(1)),
            ..Default::default()
        };
        let day = 24 * 3600 * 1_000_000_000;
        let gauge = |points| {
            metric(
                "queue",
                Data::Gauge(Gauge {
                    data_points: points,
                }),
            )
        };
        let converted = convert_metrics(
            &export(vec![gauge(vec![
                at(received / 1_000_000),
                at(received - 1_000),
                at(received + 2 * day),
            ])]),
            received,
        );
        assert_eq!(converted.batch.num_rows(), 1);
        assert_eq!(converted.rejected, 2);
        assert_eq!(
            converted.rejection_reason.as_deref(),
            Some(
                "a data point of metric \"queue\" has time_unix_nano 1796636780000, which is before 2000 (milliseconds or seconds written as nanoseconds?)"
            )
        );
    }
}
