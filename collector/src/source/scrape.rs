//! Prometheus text-format scrapes of configured targets, turned into OTLP metrics the way
//! the OpenTelemetry Collector's Prometheus receiver does: counters are cumulative
//! monotonic sums, gauges and untyped samples gauges, histograms explicit-bucket
//! histograms (with their `_sum` and `_count`), summaries summaries. The label `job`
//! is the target's URL so series from two targets stay apart.

use std::collections::HashMap;
use std::sync::Arc;

use porthole_proto::common::KeyValue;
use porthole_proto::metrics::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, Sum, Summary,
    SummaryDataPoint, metric, summary_data_point,
};
use prometheus_parse::{Scrape, Value};
use tokio_util::sync::CancellationToken;

use crate::CollectorError;
use crate::buffer::{DiskBuffer, Kind};
use crate::config::ScrapeTarget;
use crate::resource::{Identity, string_attribute};
use crate::source::file::now_nanos;
use crate::source::number;
use crate::split::{data_points, take_points};
use crate::telemetry::CollectorMetrics;

/// Largest scrape body read; a target answering more is an error, not an OOM.
const MAX_SCRAPE_BYTES: usize = 16 * 1024 * 1024;
/// Data points in one export of a scrape, at most. A whole scrape (up to 16 MiB, tens of
/// thousands of series) made one export, more than ingest takes in one (its decode budget
/// counts ~3.5 KB for a point with a few labels; `--max-request-bytes`), so ingest refused
/// it as too large and it was dropped, every interval. 2 000 points with a dozen labels
/// each estimate ~20 MB and encode to well under 1 MiB.
const MAX_POINTS_PER_EXPORT: usize = 2_000;

pub async fn run(
    target: ScrapeTarget,
    buffer: Arc<DiskBuffer>,
    identity: Arc<Identity>,
    metrics: Arc<CollectorMetrics>,
    stop: CancellationToken,
) -> Result<(), CollectorError> {
    let client = reqwest::Client::builder()
        .timeout(target.timeout)
        .build()
        .map_err(|e| CollectorError::Config(format!("scrape {}: {e}", target.url)))?;
    let start = now_nanos();
    let mut ticker = tokio::time::interval(target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.cancelled() => return Ok(()),
        }
        let text = match fetch(&client, &target.url).await {
            Ok(text) => text,
            Err(error) => {
                metrics.scrape_errors.inc();
                if !failing {
                    tracing::warn!(url = %target.url, %error, "scrape failed");
                }
                failing = true;
                continue;
            }
        };
        failing = false;
        let points = convert(&text, &target.url, start, now_nanos());
        if points.is_empty() {
            continue;
        }
        for export in exports(points, MAX_POINTS_PER_EXPORT) {
            let count = export.iter().map(data_points).sum::<usize>() as u64;
            let payload = super::encode_metrics(&identity, "porthole-collector/scrape", export);
            if !buffer
                .append(Kind::Metrics, count as u32, &[], &payload, &stop)
                .await?
            {
                // Stopping with the buffer full.
                metrics.dropped("buffer_full", count);
                return Ok(());
            }
            metrics.received("metrics", count);
        }
    }
}

/// `metrics` cut into exports of at most `max` data points each; a metric with more is cut
/// into parts that keep its name, description and kind.
fn exports(metrics: Vec<Metric>, max: usize) -> Vec<Vec<Metric>> {
    let (mut exports, mut current, mut room) = (Vec::new(), Vec::new(), max);
    for mut metric in metrics {
        loop {
            let points = data_points(&metric);
            if points <= room {
                room -= points;
                current.push(metric);
                break;
            }
            if let Some(part) = take_points(&mut metric, room) {
                current.push(part);
            }
            exports.push(std::mem::take(&mut current));
            room = max;
        }
    }
    if !current.is_empty() {
        exports.push(current);
    }
    exports
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let mut response = client
        .get(url)
        .header("accept", "text/plain;version=0.0.4")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_SCRAPE_BYTES {
            return Err(format!("body larger than {MAX_SCRAPE_BYTES} bytes"));
        }
    }
    String::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())
}

/// One scrape's text as OTLP metrics, one metric per family.
pub fn convert(text: &str, job: &str, start: u64, now: u64) -> Vec<Metric> {
    let Ok(scrape) = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))) else {
        return Vec::new();
    };
    // OpenMetrics names a counter family `x` and its sample `x_total`; prometheus-parse
    // only matches exact names, so such samples come back untyped.
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let is_counter = |name: &str| {
        name.strip_suffix("_total")
            .is_some_and(|base| counters.contains(base))
    };
    // `_sum` and `_count` of histograms and summaries arrive as their own samples.
    let mut totals: HashMap<(String, String), f64> = HashMap::new();
    for sample in &scrape.samples {
        if matches!(
            sample.value,
            Value::Untyped(_) | Value::Counter(_) | Value::Gauge(_)
        ) && (sample.metric.ends_with("_sum") || sample.metric.ends_with("_count"))
        {
            let value = match sample.value {
                Value::Untyped(v) | Value::Counter(v) | Value::Gauge(v) => v,
                _ => continue,
            };
            totals.insert((sample.metric.clone(), sample.labels.to_string()), value);
        }
    }
    let families: std::collections::HashSet<&str> = scrape
        .samples
        .iter()
        .filter(|s| matches!(s.value, Value::Histogram(_) | Value::Summary(_)))
        .map(|s| s.metric.as_str())
        .collect();
    let mut by_name: Vec<Metric> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for sample in &scrape.samples {
        let is_total = ["_sum", "_count"].iter().any(|suffix| {
            sample
                .metric
                .strip_suffix(suffix)
                .is_some_and(|base| families.contains(base))
        });
        if is_total {
            continue;
        }
        let labels = sample.labels.to_string();
        let mut attributes: Vec<KeyValue> = {
            let mut pairs: Vec<_> = sample.labels.iter().collect();
            pairs.sort();
            pairs
                .into_iter()
                .map(|(k, v)| string_attribute(k, v))
                .collect()
        };
        attributes.push(string_attribute("job", job));
        let total = |suffix: &str| {
            totals
                .get(&(format!("{}{suffix}", sample.metric), labels.clone()))
                .copied()
        };
        let (data, family_doc) = match &sample.value {
            Value::Counter(v) => (
                metric::Data::Sum(Sum {
                    data_points: vec![number(*v, attributes, start, now)],
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                }),
                "counter",
            ),
            Value::Untyped(v) if is_counter(&sample.metric) => (
                metric::Data::Sum(Sum {
                    data_points: vec![number(*v, attributes, start, now)],
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                }),
                "counter",
            ),
            Value::Gauge(v) | Value::Untyped(v) => (
                metric::Data::Gauge(Gauge {
                    data_points: vec![number(*v, attributes, 0, now)],
                }),
                "gauge",
            ),
            Value::Histogram(buckets) => {
                let mut buckets = buckets.clone();
                buckets.sort_by(|a, b| a.less_than.total_cmp(&b.less_than));
                let mut bucket_counts = Vec::with_capacity(buckets.len());
                let mut previous = 0.0;
                for bucket in &buckets {
                    bucket_counts.push((bucket.count - previous).max(0.0) as u64);
                    previous = bucket.count;
                }
                let explicit_bounds = buckets
                    .iter()
                    .map(|b| b.less_than)
                    .filter(|b| b.is_finite())
                    .collect::<Vec<_>>();
                if bucket_counts.len() == explicit_bounds.len() {
                    bucket_counts.push(0); // no +Inf bucket given
                }
                let count = total("_count").unwrap_or(previous) as u64;
                (
                    metric::Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint {
                            attributes,
                            start_time_unix_nano: start,
                            time_unix_nano: now,
                            count,
                            sum: total("_sum"),
                            bucket_counts,
                            explicit_bounds,
                            ..HistogramDataPoint::default()
                        }],
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    }),
                    "histogram",
                )
            }
            Value::Summary(quantiles) => (
                metric::Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint {
                        attributes,
                        start_time_unix_nano: start,
                        time_unix_nano: now,
                        count: total("_count").unwrap_or(0.0) as u64,
                        sum: total("_sum").unwrap_or(0.0),
                        quantile_values: quantiles
                            .iter()
                            .map(|q| summary_data_point::ValueAtQuantile {
                                quantile: q.quantile,
                                value: q.count,
                            })
                            .collect(),
                        ..SummaryDataPoint::default()
                    }],
                }),
                "summary",
            ),
        };
        let key = format!("{}\u{0}{family_doc}", sample.metric);
        match index.get(&key) {
            Some(&at) => merge(&mut by_name[at], data),
            None => {
                index.insert(key, by_name.len());
                by_name.push(Metric {
                    name: sample.metric.clone(),
                    description: scrape.docs.get(&sample.metric).cloned().unwrap_or_default(),
                    data: Some(data),
                    ..Metric::default()
                });
            }
        }
    }
    by_name
}

/// Adds the points of `data` to a metric of the same family and kind.
fn merge(metric: &mut Metric, data: metric::Data) {
    match (metric.data.as_mut(), data) {
        (Some(metric::Data::Sum(a)), metric::Data::Sum(b)) => a.data_points.extend(b.data_points),
        (Some(metric::Data::Gauge(a)), metric::Data::Gauge(b)) => {
            a.data_points.extend(b.data_points)
        }
        (Some(metric::Data::Histogram(a)), metric::Data::Histogram(b)) => {
            a.data_points.extend(b.data_points)
        }
        (Some(metric::Data::Summary(a)), metric::Data::Summary(b)) => {
            a.data_points.extend(b.data_points)
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use porthole_proto::metrics::number_data_point;

    const TEXT: &str = r#"# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{code="200",method="get"} 1027
http_requests_total{code="500",method="get"} 3
# TYPE queue_depth gauge
queue_depth 12.5
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 5
latency_seconds_bucket{le="0.5"} 8
latency_seconds_bucket{le="+Inf"} 10
latency_seconds_sum 2.5
latency_seconds_count 10
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.2
rpc_seconds{quantile="0.99"} 0.9
rpc_seconds_sum 30
rpc_seconds_count 100
# TYPE exports counter
exports_total{signal="logs"} 5
# EOF
"#;

    #[test]
    fn every_prometheus_type_becomes_its_otlp_kind() {
        let metrics = convert(TEXT, "http://app/metrics", 1, 2);
        let find = |name: &str| {
            metrics
                .iter()
                .find(|m| m.name == name)
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        let Some(metric::Data::Sum(requests)) = &find("http_requests_total").data else {
            panic!("sum")
        };
        assert!(requests.is_monotonic);
        assert_eq!(requests.data_points.len(), 2);
        assert_eq!(find("http_requests_total").description, "Requests served.");
        let Some(metric::Data::Gauge(depth)) = &find("queue_depth").data else {
            panic!("gauge")
        };
        assert_eq!(
            depth.data_points[0].value,
            Some(number_data_point::Value::AsDouble(12.5))
        );
        let Some(metric::Data::Histogram(latency)) = &find("latency_seconds").data else {
            panic!("histogram")
        };
        let point = &latency.data_points[0];
        assert_eq!(point.explicit_bounds, vec![0.1, 0.5]);
        assert_eq!(point.bucket_counts, vec![5, 3, 2]);
        assert_eq!((point.count, point.sum), (10, Some(2.5)));
        let Some(metric::Data::Summary(rpc)) = &find("rpc_seconds").data else {
            panic!("summary")
        };
        assert_eq!(
            (rpc.data_points[0].count, rpc.data_points[0].sum),
            (100, 30.0)
        );
        assert_eq!(rpc.data_points[0].quantile_values.len(), 2);
        assert!(
            metrics
                .iter()
                .all(|m| !m.name.ends_with("_sum") && !m.name.ends_with("_count"))
        );
    }

    #[test]
    fn a_large_scrape_is_cut_into_exports_of_at_most_so_many_points_losing_none() {
        let mut text = String::from("# TYPE wide gauge\n");
        for i in 0..4_500 {
            text.push_str(&format!("wide{{pod=\"p{i}\"}} {i}\n"));
        }
        text.push_str(TEXT);
        let metrics = convert(&text, "job", 1, 2);
        let total: usize = metrics.iter().map(data_points).sum();
        let exports = exports(metrics, 2_000);
        let sizes: Vec<usize> = exports
            .iter()
            .map(|e| e.iter().map(data_points).sum())
            .collect();
        assert!(sizes.iter().all(|&n| n <= 2_000), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), total);
        assert_eq!(exports.len(), total.div_ceil(2_000), "{sizes:?}");
        // Every part of `wide` keeps its name and kind, and its points stay in order.
        let values: Vec<f64> = exports
            .iter()
            .flatten()
            .filter(|m| m.name == "wide")
            .flat_map(|m| match &m.data {
                Some(metric::Data::Gauge(g)) => g.data_points.clone(),
                other => panic!("{other:?}"),
            })
            .map(|p| match p.value {
                Some(number_data_point::Value::AsDouble(v)) => v,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(values, (0..4_500).map(f64::from).collect::<Vec<_>>());
        let histogram = exports
            .iter()
            .flatten()
            .find(|m| m.name == "latency_seconds")
            .unwrap();
        assert!(matches!(histogram.data, Some(metric::Data::Histogram(_))));
        assert!(super::exports(Vec::new(), 2_000).is_empty());
    }
}
