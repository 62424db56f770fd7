//! OTLP metric names and attributes as Prometheus names and labels, following the
//! OpenTelemetry specification's "Prometheus and OpenMetrics compatibility" rules:
//! invalid characters become `_`, the unit becomes a suffix (`ms` → `_milliseconds`,
//! `By` → `_bytes`, `1` on a gauge → `_ratio`), monotonic cumulative sums get `_total`,
//! histograms become `_bucket{le=…}`, `_sum` and `_count`, summaries `{quantile=…}`,
//! `_sum` and `_count`. A name that is already a valid Prometheus name with its suffixes
//! (everything remote_write sends) maps to itself.

/// What kind of OTLP metric a row holds, as far as naming is concerned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetricKind {
    pub name: String,
    pub metric_type: String,
    pub unit: String,
    pub monotonic: bool,
    /// OTLP `AggregationTemporality`: 1 delta, 2 cumulative, 0 unspecified.
    pub temporality: i32,
}

/// Which part of an OTLP point a Prometheus series takes its samples from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The number of a gauge or sum.
    Value,
    /// The cumulative count of every histogram bucket, one series per `le`.
    Bucket,
    Sum,
    Count,
    /// A summary's quantiles, one series per `quantile`.
    Quantile,
}

/// The Prometheus series families one OTLP metric appears as.
pub fn families(kind: &MetricKind) -> Vec<(String, Part)> {
    let base = base_name(kind);
    match kind.metric_type.as_str() {
        "gauge" | "sum" => vec![(base, Part::Value)],
        "histogram" => vec![
            (format!("{base}_bucket"), Part::Bucket),
            (format!("{base}_sum"), Part::Sum),
            (format!("{base}_count"), Part::Count),
        ],
        "summary" => vec![
            (format!("{base}_sum"), Part::Sum),
            (format!("{base}_count"), Part::Count),
            (base, Part::Quantile),
        ],
        // Exponential histograms are Prometheus native histograms, which PromQL here does
        // not evaluate; they stay readable through SQL.
        _ => Vec::new(),
    }
}

/// The metric name before any `_bucket`/`_sum`/`_count` suffix.
pub fn base_name(kind: &MetricKind) -> String {
    let mut name = sanitize_metric_name(&kind.name);
    let counter = kind.metric_type == "sum" && kind.monotonic && kind.temporality != 1;
    let unit = unit_suffix(&kind.unit, kind.metric_type == "gauge");
    if let Some(unit) = unit {
        // Not twice: `http.duration_seconds` with unit `s` stays as it is.
        let already = name.split('_').any(|w| w == unit)
            || name.ends_with(&format!("_{unit}"))
            || (counter && name.ends_with(&format!("_{unit}_total")));
        if !already {
            if counter && name.ends_with("_total") {
                name.truncate(name.len() - "_total".len());
            }
            name.push('_');
            name.push_str(&unit);
        }
    }
    if counter && !name.ends_with("_total") {
        name.push_str("_total");
    }
    name
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`: anything else becomes `_`, a leading digit gets a `_`.
pub fn sanitize_metric_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`: anything else becomes `_`; a leading digit gets `key_`.
pub fn sanitize_label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    }
    out
}

/// The name suffix for a UCUM unit, or None when the unit adds none.
fn unit_suffix(unit: &str, gauge: bool) -> Option<String> {
    // Annotations in braces (`{request}`) are not units.
    let unit: String = {
        let mut out = String::new();
        let mut depth = 0;
        for c in unit.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth > 0 => depth -= 1,
                _ if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out.trim().to_string()
    };
    if unit.is_empty() {
        return None;
    }
    if unit == "1" {
        return gauge.then(|| "ratio".to_string());
    }
    let (main, per) = match unit.split_once('/') {
        Some((main, per)) => (main.trim(), Some(per.trim())),
        None => (unit.as_str(), None),
    };
    let main = main_unit(main);
    let per = per.filter(|p| !p.is_empty()).map(per_unit);
    let suffix = match (main.is_empty(), per) {
        (false, Some(per)) => format!("{main}_per_{per}"),
        (true, Some(per)) => format!("per_{per}"),
        (false, None) => main,
        (true, None) => return None,
    };
    let suffix = sanitize_label_name(&suffix).trim_matches('_').to_string();
    (!suffix.is_empty()).then_some(suffix)
}

fn main_unit(unit: &str) -> String {
    let word = match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        "1" => "",
        other => other,
    };
    word.to_string()
}

fn per_unit(unit: &str) -> String {
    let word = match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    };
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str, metric_type: &str, unit: &str, monotonic: bool) -> MetricKind {
        MetricKind {
            name: name.into(),
            metric_type: metric_type.into(),
            unit: unit.into(),
            monotonic,
            temporality: 2,
        }
    }

    #[test]
    fn names_follow_the_otel_prometheus_rules() {
        assert_eq!(
            base_name(&kind("http.server.requests", "sum", "{request}", true)),
            "http_server_requests_total"
        );
        assert_eq!(
            base_name(&kind("http.server.duration", "histogram", "ms", false)),
            "http_server_duration_milliseconds"
        );
        assert_eq!(
            base_name(&kind("process.memory", "gauge", "By", false)),
            "process_memory_bytes"
        );
        assert_eq!(
            base_name(&kind("cpu.utilization", "gauge", "1", false)),
            "cpu_utilization_ratio"
        );
        assert_eq!(
            base_name(&kind("jobs.done", "sum", "1", true)),
            "jobs_done_total"
        );
        assert_eq!(
            base_name(&kind("throughput", "gauge", "By/s", false)),
            "throughput_bytes_per_second"
        );
        assert_eq!(
            base_name(&kind("queue.size", "sum", "", false)),
            "queue_size"
        );
        assert_eq!(base_name(&kind("9lives", "gauge", "", false)), "_9lives");
        // Already-suffixed names are left alone: what remote_write and scrapes send.
        assert_eq!(
            base_name(&kind("http_requests_total", "sum", "", true)),
            "http_requests_total"
        );
        assert_eq!(
            base_name(&kind("latency_seconds", "gauge", "s", false)),
            "latency_seconds"
        );
        assert_eq!(
            base_name(&kind("bytes_sent_total", "sum", "By", true)),
            "bytes_sent_total"
        );
        assert_eq!(
            base_name(&kind("node_cpu_seconds_total", "gauge", "", false)),
            "node_cpu_seconds_total"
        );
        // Delta sums are not Prometheus counters.
        let mut delta = kind("hits", "sum", "", true);
        delta.temporality = 1;
        assert_eq!(base_name(&delta), "hits");
    }

    #[test]
    fn histogram_and_summary_families() {
        let names: Vec<String> = families(&kind("rpc.latency", "histogram", "s", false))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "rpc_latency_seconds_bucket",
                "rpc_latency_seconds_sum",
                "rpc_latency_seconds_count"
            ]
        );
        assert_eq!(families(&kind("gc", "summary", "", false)).len(), 3);
        assert!(families(&kind("x", "exponential_histogram", "", false)).is_empty());
    }

    #[test]
    fn label_names_are_sanitized() {
        assert_eq!(sanitize_label_name("http.method"), "http_method");
        assert_eq!(sanitize_label_name("2xx"), "key_2xx");
        assert_eq!(sanitize_label_name("job"), "job");
    }
}
