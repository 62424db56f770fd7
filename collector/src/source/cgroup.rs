//! The pod's own resource usage from cgroup v2 (CPU, throttling, memory, I/O, pids) and
//! the number of processes it can see, every `interval`, as OTLP metrics named after the
//! OpenTelemetry `container.*` conventions.

use std::path::Path;
use std::sync::Arc;

use porthole_proto::common::KeyValue;
use porthole_proto::metrics::{AggregationTemporality, Gauge, Metric, Sum, metric};
use tokio_util::sync::CancellationToken;

use crate::CollectorError;
use crate::buffer::{DiskBuffer, Kind};
use crate::config::CgroupConfig;
use crate::resource::{Identity, string_attribute};
use crate::source::file::now_nanos;
use crate::source::number;
use crate::telemetry::CollectorMetrics;

pub async fn run(
    config: CgroupConfig,
    buffer: Arc<DiskBuffer>,
    identity: Arc<Identity>,
    metrics: Arc<CollectorMetrics>,
    stop: CancellationToken,
) -> Result<(), CollectorError> {
    if !config.root.join("cgroup.controllers").exists() {
        tracing::warn!(root = %config.root.display(), "no cgroup v2 hierarchy here; pod resource metrics are off");
        stop.cancelled().await;
        return Ok(());
    }
    let start = now_nanos();
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.cancelled() => return Ok(()),
        }
        let points = read(&config.root, &config.proc_root, start, now_nanos());
        if points.is_empty() {
            continue;
        }
        let count = points.len() as u64;
        let payload = super::encode_metrics(&identity, "porthole-collector/cgroup", points);
        // Resource samples are periodic: when the buffer is full, skip one rather than wait.
        match buffer.try_append(Kind::Metrics, count as u32, &[], &payload)? {
            Ok(()) => metrics.received("metrics", count),
            Err(_full) => metrics.dropped("buffer_full", count),
        }
    }
}

/// Everything readable under `root` now; files a kernel lacks are left out.
pub fn read(root: &Path, proc_root: &Path, start: u64, now: u64) -> Vec<Metric> {
    let mut out = Vec::new();
    let cpu = keyed(&root.join("cpu.stat"));
    let micros = |key: &str| {
        cpu.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v as f64 / 1e6)
    };
    for (mode, key) in [("user", "user_usec"), ("system", "system_usec")] {
        if let Some(seconds) = micros(key) {
            out.push(sum(
                "container.cpu.time",
                "s",
                seconds,
                vec![string_attribute("cpu.mode", mode)],
                start,
                now,
            ));
        }
    }
    if let Some(seconds) = micros("throttled_usec") {
        out.push(sum(
            "container.cpu.throttled_time",
            "s",
            seconds,
            vec![],
            start,
            now,
        ));
    }
    if let Some((_, periods)) = cpu.iter().find(|(k, _)| k == "nr_throttled") {
        out.push(sum(
            "container.cpu.throttled_periods",
            "{period}",
            *periods as f64,
            vec![],
            start,
            now,
        ));
    }
    if let Some(bytes) = single(&root.join("memory.current")) {
        out.push(gauge(
            "container.memory.usage",
            "By",
            bytes as f64,
            vec![],
            now,
        ));
    }
    if let Some(bytes) = single(&root.join("memory.max")) {
        out.push(gauge(
            "container.memory.limit",
            "By",
            bytes as f64,
            vec![],
            now,
        ));
    }
    let memory = keyed(&root.join("memory.stat"));
    for key in ["anon", "file"] {
        if let Some((_, bytes)) = memory.iter().find(|(k, _)| k == key) {
            out.push(gauge(
                "container.memory.usage.by_type",
                "By",
                *bytes as f64,
                vec![string_attribute("memory.type", key)],
                now,
            ));
        }
    }
    if let Some((_, events)) = keyed(&root.join("memory.events"))
        .iter()
        .find(|(k, _)| k == "oom_kill")
    {
        out.push(sum(
            "container.memory.oom_kills",
            "{kill}",
            *events as f64,
            vec![],
            start,
            now,
        ));
    }
    let (mut read_bytes, mut write_bytes, mut seen_io) = (0u64, 0u64, false);
    if let Ok(text) = std::fs::read_to_string(root.join("io.stat")) {
        for field in text.split_whitespace() {
            if let Some((key, value)) = field.split_once('=') {
                let value: u64 = value.parse().unwrap_or(0);
                match key {
                    "rbytes" => read_bytes += value,
                    "wbytes" => write_bytes += value,
                    _ => continue,
                }
                seen_io = true;
            }
        }
    }
    if seen_io {
        for (direction, bytes) in [("read", read_bytes), ("write", write_bytes)] {
            out.push(sum(
                "container.disk.io",
                "By",
                bytes as f64,
                vec![string_attribute("disk.io.direction", direction)],
                start,
                now,
            ));
        }
    }
    if let Some(pids) = single(&root.join("pids.current")) {
        out.push(gauge(
            "container.pids",
            "{process}",
            pids as f64,
            vec![],
            now,
        ));
    }
    if let Ok(entries) = std::fs::read_dir(proc_root) {
        let processes = entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .count();
        out.push(gauge(
            "process.count",
            "{process}",
            processes as f64,
            vec![],
            now,
        ));
    }
    out
}

fn keyed(path: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// A one-number file; `max` (no limit) reads as absent.
fn single(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn sum(
    name: &str,
    unit: &str,
    value: f64,
    attributes: Vec<KeyValue>,
    start: u64,
    now: u64,
) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![number(value, attributes, start, now)],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Metric::default()
    }
}

fn gauge(name: &str, unit: &str, value: f64, attributes: Vec<KeyValue>, now: u64) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![number(value, attributes, 0, now)],
        })),
        ..Metric::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use porthole_proto::metrics::number_data_point;

    #[test]
    fn cgroup_files_become_container_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("cgroup.controllers"), "cpu memory io pids\n").unwrap();
        std::fs::write(root.join("cpu.stat"), "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\nnr_periods 10\nnr_throttled 4\nthrottled_usec 500000\n").unwrap();
        std::fs::write(root.join("memory.current"), "1048576\n").unwrap();
        std::fs::write(root.join("memory.max"), "max\n").unwrap();
        std::fs::write(
            root.join("io.stat"),
            "8:0 rbytes=100 wbytes=50 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n",
        )
        .unwrap();
        std::fs::write(root.join("pids.current"), "7\n").unwrap();
        let procs = root.join("proc");
        for name in ["1", "42", "self", "sys"] {
            std::fs::create_dir_all(procs.join(name)).unwrap();
        }
        let metrics = read(root, &procs, 1, 2);
        let value = |name: &str, attr: Option<&str>| -> Option<f64> {
            metrics.iter().filter(|m| m.name == name).find_map(|m| {
                let points = match m.data.as_ref()? {
                    metric::Data::Sum(s) => &s.data_points,
                    metric::Data::Gauge(g) => &g.data_points,
                    _ => return None,
                };
                points
                    .iter()
                    .find(|p| {
                        attr.is_none_or(|a| {
                            p.attributes
                                .iter()
                                .any(|kv| format!("{:?}", kv.value).contains(a))
                        })
                    })
                    .and_then(|p| match p.value {
                        Some(number_data_point::Value::AsDouble(v)) => Some(v),
                        _ => None,
                    })
            })
        };
        assert_eq!(value("container.cpu.time", Some("user")), Some(2.0));
        assert_eq!(value("container.cpu.time", Some("system")), Some(1.0));
        assert_eq!(value("container.cpu.throttled_time", None), Some(0.5));
        assert_eq!(value("container.cpu.throttled_periods", None), Some(4.0));
        assert_eq!(value("container.memory.usage", None), Some(1048576.0));
        assert_eq!(
            value("container.memory.limit", None),
            None,
            "no limit is not a number"
        );
        assert_eq!(value("container.disk.io", Some("read")), Some(101.0));
        assert_eq!(value("container.disk.io", Some("write")), Some(52.0));
        assert_eq!(value("container.pids", None), Some(7.0));
        assert_eq!(value("process.count", None), Some(2.0));
    }
}
