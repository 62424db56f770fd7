//! Loads the series a PromQL query selects from the `metrics` table.
//!
//! Files are pruned by their time statistics; in each file a row filter on the metric
//! name and time decodes only the rows some selector can want, then each row becomes the
//! Prometheus series its kind maps to (see [`names`](super::names)). What is loaded is
//! bounded: more series or samples than the limits stop the load with an error before
//! memory grows further.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, ListArray, MapArray,
    RecordBatch, StringArray,
};
use arrow::datatypes::{Float64Type, Int64Type};
use bytes::Bytes;
use futures::StreamExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowPredicateFn, ParquetRecordBatchReaderBuilder, RowFilter};
use porthole_storage::{Signal, Storage};
use promql_parser::label::Matchers;

use super::PromError;
use super::names::{MetricKind, Part, families, sanitize_label_name};
use super::value::{Labels, METRIC_NAME, STALE_NAN_BITS, Series, labels_from};

/// One vector or matrix selector of the query and the time span it reads.
#[derive(Clone, Debug)]
pub struct Selection {
    pub id: usize,
    pub name: Option<String>,
    pub matchers: Matchers,
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Selection {
    pub fn matches(&self, labels: &[(String, String)]) -> bool {
        let get = |name: &str| super::value::label(labels, name).unwrap_or("");
        if let Some(name) = &self.name
            && get(METRIC_NAME) != name
        {
            return false;
        }
        let all =
            |ms: &[promql_parser::label::Matcher]| ms.iter().all(|m| m.is_match(get(&m.name)));
        if self.matchers.or_matchers.is_empty() {
            all(&self.matchers.matchers)
        } else {
            self.matchers.or_matchers.iter().any(|group| all(group))
        }
    }

    /// Whether a series of this Prometheus name could match (only `__name__` matchers).
    fn may_match_name(&self, prom_name: &str) -> bool {
        if let Some(name) = &self.name
            && name != prom_name
        {
            return false;
        }
        let names_ok = |ms: &[promql_parser::label::Matcher]| {
            ms.iter()
                .filter(|m| m.name == METRIC_NAME)
                .all(|m| m.is_match(prom_name))
        };
        if self.matchers.or_matchers.is_empty() {
            names_ok(&self.matchers.matchers)
        } else {
            self.matchers.or_matchers.iter().any(|g| names_ok(g))
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct LoadLimits {
    pub max_series: usize,
    pub max_samples: usize,
}

/// The series of each selection, by [`Selection::id`].
pub type Loaded = HashMap<usize, Vec<Arc<Series>>>;

pub async fn load(
    storage: &Arc<Storage>,
    selections: Vec<Selection>,
    limits: LoadLimits,
) -> Result<Loaded, PromError> {
    let mut loaded: Loaded = selections.iter().map(|s| (s.id, Vec::new())).collect();
    if selections.is_empty() {
        return Ok(loaded);
    }
    let from_ms = selections.iter().map(|s| s.from_ms).min().unwrap_or(0);
    let to_ms = selections.iter().map(|s| s.to_ms).max().unwrap_or(0);
    let (from_us, to_us) = (from_ms.saturating_mul(1000), to_ms.saturating_mul(1000));
    let files: Vec<_> = storage
        .files(Signal::Metrics)
        .await
        .map_err(PromError::of_storage)?
        .into_iter()
        .filter(|f| match f.time_range_micros {
            Some((lo, hi)) => hi >= from_us && lo <= to_us,
            None => true,
        })
        .collect();
    let selections = Arc::new(selections);
    let mut decoded = futures::stream::iter(files)
        .map(|file| {
            let storage = storage.clone();
            let selections = selections.clone();
            async move {
                let bytes = storage
                    .read_object(Signal::Metrics, &file.path)
                    .await
                    .map_err(PromError::of_storage)?;
                tokio::task::spawn_blocking(move || {
                    decode_file(bytes, &selections, from_ms, to_ms, limits)
                })
                .await
                .map_err(|e| PromError::Internal(format!("decoding a metrics file: {e}")))?
            }
        })
        .buffered(2);

    let mut all: HashMap<Labels, (Vec<i64>, Vec<f64>)> = HashMap::new();
    let mut samples = 0usize;
    while let Some(partial) = decoded.next().await {
        for (labels, (t, v)) in partial? {
            samples += t.len();
            let entry = all.entry(labels).or_default();
            entry.0.extend(t);
            entry.1.extend(v);
        }
        check_limits(all.len(), samples, limits)?;
    }
    for (labels, (t, v)) in all {
        let series = Arc::new(finish_series(labels, t, v));
        for s in selections.iter() {
            if s.matches(&series.labels) {
                loaded.entry(s.id).or_default().push(series.clone());
            }
        }
    }
    Ok(loaded)
}

fn check_limits(series: usize, samples: usize, limits: LoadLimits) -> Result<(), PromError> {
    if series > limits.max_series {
        return Err(PromError::Execution(format!(
            "query selects more than {} series (the limit, --promql-max-series); narrow the selectors",
            limits.max_series
        )));
    }
    if samples > limits.max_samples {
        return Err(PromError::Execution(format!(
            "query processing would load too many samples into memory (more than {}, --promql-max-samples); narrow the selectors or the time range",
            limits.max_samples
        )));
    }
    Ok(())
}

fn finish_series(labels: Labels, t: Vec<i64>, v: Vec<f64>) -> Series {
    let mut order: Vec<usize> = (0..t.len()).collect();
    order.sort_by_key(|&i| t[i]);
    let mut ts = Vec::with_capacity(t.len());
    let mut vs = Vec::with_capacity(t.len());
    for i in order {
        // Two samples at one timestamp: the later-written one wins, as a re-sent sample.
        if ts.last() == Some(&t[i]) {
            *vs.last_mut().expect("parallel vectors") = v[i];
        } else {
            ts.push(t[i]);
            vs.push(v[i]);
        }
    }
    let has_stale = vs.iter().any(|v| super::value::is_stale(*v));
    Series {
        labels,
        t: ts,
        v: vs,
        has_stale,
    }
}

const KIND_COLUMNS: [&str; 6] = [
    "metric_name",
    "metric_type",
    "metric_unit",
    "is_monotonic",
    "aggregation_temporality",
    "time_unix_nano",
];
const VALUE_COLUMNS: [&str; 11] = [
    "flags",
    "value_double",
    "value_int",
    "count",
    "sum",
    "bucket_counts",
    "explicit_bounds",
    "quantiles",
    "quantile_values",
    "attributes",
    "resource_attributes",
];

/// The Prometheus series families (name, part) of one OTLP metric some selection may want.
type Families = Vec<(String, Part)>;

/// Which families of each OTLP metric some selection may want, by OTLP name.
#[derive(Default)]
struct Wanted {
    by_name: HashMap<String, Vec<(MetricKind, Families)>>,
}

impl Wanted {
    fn parts(&self, kind: KindRef<'_>) -> Option<&[(String, Part)]> {
        self.by_name.get(kind.name)?.iter().find_map(|(k, parts)| {
            (k.metric_type == kind.metric_type
                && k.unit == kind.unit
                && k.monotonic == kind.monotonic
                && k.temporality == kind.temporality)
                .then_some(parts.as_slice())
        })
    }
}

#[derive(Clone, Copy)]
struct KindRef<'a> {
    name: &'a str,
    metric_type: &'a str,
    unit: &'a str,
    monotonic: bool,
    temporality: i32,
}

struct KindColumns<'a> {
    name: &'a StringArray,
    metric_type: &'a StringArray,
    unit: &'a StringArray,
    monotonic: &'a BooleanArray,
    temporality: &'a Int32Array,
    time: &'a Int64Array,
}

impl<'a> KindColumns<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Self, arrow::error::ArrowError> {
        Ok(Self {
            name: string_column(batch, "metric_name")?,
            metric_type: string_column(batch, "metric_type")?,
            unit: string_column(batch, "metric_unit")?,
            monotonic: typed_column(batch, "is_monotonic")?,
            temporality: typed_column(batch, "aggregation_temporality")?,
            time: typed_column(batch, "time_unix_nano")?,
        })
    }

    fn kind(&self, row: usize) -> KindRef<'a> {
        KindRef {
            name: self.name.value(row),
            metric_type: self.metric_type.value(row),
            unit: if self.unit.is_null(row) {
                ""
            } else {
                self.unit.value(row)
            },
            monotonic: !self.monotonic.is_null(row) && self.monotonic.value(row),
            temporality: if self.temporality.is_null(row) {
                0
            } else {
                self.temporality.value(row)
            },
        }
    }
}

fn column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a dyn Array, arrow::error::ArrowError> {
    batch
        .column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| {
            arrow::error::ArrowError::SchemaError(format!("metrics file has no column {name}"))
        })
}

fn string_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a StringArray, arrow::error::ArrowError> {
    column(batch, name)?.as_any().downcast_ref().ok_or_else(|| {
        arrow::error::ArrowError::SchemaError(format!("column {name} is not a string"))
    })
}

fn typed_column<'a, T: 'static>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a T, arrow::error::ArrowError> {
    column(batch, name)?
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| {
            arrow::error::ArrowError::SchemaError(format!("column {name} has an unexpected type"))
        })
}

type Partial = HashMap<Labels, (Vec<i64>, Vec<f64>)>;

/// Series of one file while it is decoded, keyed by a hash of the raw strings they come
/// from (metric, attributes, the resource keys labels use, part), so a row's labels are
/// built once per series rather than once per row. Keys that differ but give the same
/// labels (attribute keys that sanitize alike) are merged afterwards.
type Keyed = HashMap<u64, (Labels, Vec<i64>, Vec<f64>)>;

fn decode_file(
    bytes: Bytes,
    selections: &[Selection],
    from_ms: i64,
    to_ms: i64,
    limits: LoadLimits,
) -> Result<Partial, PromError> {
    let corrupt =
        |e: &dyn std::fmt::Display| PromError::Internal(format!("reading a metrics file: {e}"));
    let (from_ns, to_ns) = (
        from_ms.saturating_mul(1_000_000),
        to_ms.saturating_mul(1_000_000).saturating_add(999_999),
    );

    // Pass 1: the distinct metric kinds of the file, from its (dictionary-encoded) kind
    // columns, and which of their families any selection may want.
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| corrupt(&e))?;
    let schema = builder.parquet_schema().clone();
    let arrow_schema = builder.schema().clone();
    let roots = |names: &mut dyn Iterator<Item = &&str>| -> Result<ProjectionMask, PromError> {
        let indices = names
            .map(|n| {
                arrow_schema
                    .index_of(n)
                    .map_err(|_| PromError::Internal(format!("metrics file has no column {n}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProjectionMask::roots(&schema, indices))
    };
    let kind_mask = roots(&mut KIND_COLUMNS.iter())?;
    let reader = builder
        .with_projection(kind_mask.clone())
        .build()
        .map_err(|e| corrupt(&e))?;
    let mut seen: HashSet<MetricKind> = HashSet::new();
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(&e))?;
        let cols = KindColumns::of(&batch).map_err(|e| corrupt(&e))?;
        let mut last: Option<KindRef<'_>> = None;
        for row in 0..batch.num_rows() {
            let k = cols.kind(row);
            if let Some(l) = last
                && l.name == k.name
                && l.metric_type == k.metric_type
                && l.unit == k.unit
                && l.monotonic == k.monotonic
                && l.temporality == k.temporality
            {
                continue;
            }
            last = Some(k);
            seen.insert(MetricKind {
                name: k.name.to_string(),
                metric_type: k.metric_type.to_string(),
                unit: k.unit.to_string(),
                monotonic: k.monotonic,
                temporality: k.temporality,
            });
        }
    }
    let mut wanted = Wanted::default();
    for kind in seen {
        let parts: Families = families(&kind)
            .into_iter()
            .filter(|(prom, _)| selections.iter().any(|s| s.may_match_name(prom)))
            .collect();
        if !parts.is_empty() {
            wanted
                .by_name
                .entry(kind.name.clone())
                .or_default()
                .push((kind, parts));
        }
    }
    if wanted.by_name.is_empty() {
        return Ok(Partial::new());
    }

    // Pass 2: only the rows of wanted metrics inside the time span.
    let wanted = Arc::new(wanted);
    let filter_wanted = wanted.clone();
    let predicate = ArrowPredicateFn::new(kind_mask, move |batch: RecordBatch| {
        let cols = KindColumns::of(&batch)?;
        let keep: BooleanArray = (0..batch.num_rows())
            .map(|row| {
                let t = cols.time.value(row);
                Some(t >= from_ns && t <= to_ns && filter_wanted.parts(cols.kind(row)).is_some())
            })
            .collect();
        Ok(keep)
    });
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| corrupt(&e))?;
    let mask = roots(&mut KIND_COLUMNS.iter().chain(VALUE_COLUMNS.iter()))?;
    let reader = builder
        .with_projection(mask)
        .with_row_filter(RowFilter::new(vec![Box::new(predicate)]))
        .build()
        .map_err(|e| corrupt(&e))?;

    let mut keyed = Keyed::new();
    let mut samples = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(&e))?;
        samples += add_rows(&batch, &wanted, &mut keyed).map_err(|e| corrupt(&e))?;
        check_limits(keyed.len(), samples, limits)?;
    }
    let mut out = Partial::new();
    for (_, (labels, t, v)) in keyed {
        // Series no selection wants (other labels than the name matchers asked for).
        if !selections.iter().any(|s| s.matches(&labels)) {
            continue;
        }
        let entry = out.entry(labels).or_default();
        entry.0.extend(t);
        entry.1.extend(v);
    }
    Ok(out)
}

/// Labels taken from the resource when a point does not carry them itself: `job` and
/// `instance` as the OpenTelemetry specification derives them, and the Kubernetes
/// identity and version people filter by.
const RESOURCE_LABELS: [(&str, &str); 5] = [
    ("k8s.namespace.name", "k8s_namespace_name"),
    ("k8s.pod.name", "k8s_pod_name"),
    ("k8s.container.name", "k8s_container_name"),
    ("k8s.node.name", "k8s_node_name"),
    ("service.version", "service_version"),
];

fn map_entries<'a>(
    map: &'a MapArray,
    row: usize,
) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
    let offsets = map.value_offsets();
    let (lo, hi) = if map.is_null(row) {
        (0, 0)
    } else {
        (offsets[row] as usize, offsets[row + 1] as usize)
    };
    let keys = map.keys().as_string::<i32>();
    let values = map
        .values()
        .as_struct()
        .column_by_name("value")
        .map(|c| c.as_string::<i32>());
    (lo..hi).map(move |i| {
        let value = values.and_then(|v| (!v.is_null(i)).then(|| v.value(i)));
        (keys.value(i), value)
    })
}

fn base_labels(attributes: &MapArray, resource: &MapArray, row: usize) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = Vec::new();
    for (key, value) in map_entries(attributes, row) {
        let name = sanitize_label_name(key);
        let value = value.unwrap_or("");
        // Two keys that sanitize alike: values joined with `;`, as the specification says.
        if let Some(existing) = labels.iter_mut().find(|(n, _)| *n == name) {
            existing.1.push(';');
            existing.1.push_str(value);
        } else {
            labels.push((name, value.to_string()));
        }
    }
    let has = |labels: &[(String, String)], name: &str| labels.iter().any(|(n, _)| n == name);
    let mut service_name = None;
    let mut service_namespace = None;
    let mut instance = None;
    let mut extra = Vec::new();
    for (key, value) in map_entries(resource, row) {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        match key {
            "service.name" => service_name = Some(value),
            "service.namespace" => service_namespace = Some(value),
            "service.instance.id" => instance = Some(value),
            _ => {}
        }
        if let Some((_, label)) = RESOURCE_LABELS.iter().find(|(k, _)| *k == key) {
            extra.push((label.to_string(), value.to_string()));
        }
    }
    if !has(&labels, "job")
        && let Some(service) = service_name
    {
        let job = match service_namespace {
            Some(ns) => format!("{ns}/{service}"),
            None => service.to_string(),
        };
        labels.push(("job".into(), job));
    }
    if !has(&labels, "instance")
        && let Some(instance) = instance
    {
        labels.push(("instance".into(), instance.to_string()));
    }
    for (name, value) in extra {
        if !has(&labels, &name) {
            labels.push((name, value));
        }
    }
    labels
}

fn with_labels(base: &[(String, String)], name: &str, extra: Option<(&str, String)>) -> Labels {
    let mut pairs = Vec::with_capacity(base.len() + 2);
    pairs.extend(
        base.iter()
            .filter(|(n, _)| n != METRIC_NAME && Some(n.as_str()) != extra.as_ref().map(|e| e.0))
            .cloned(),
    );
    pairs.push((METRIC_NAME.to_string(), name.to_string()));
    if let Some((n, v)) = extra {
        pairs.push((n.to_string(), v));
    }
    labels_from(pairs)
}

fn push(out: &mut Keyed, key: u64, labels: impl FnOnce() -> Labels, t: i64, v: f64) {
    let entry = out
        .entry(key)
        .or_insert_with(|| (labels(), Vec::new(), Vec::new()));
    entry.1.push(t);
    entry.2.push(v);
}

/// The resource keys [`base_labels`] reads.
fn labels_resource_key(key: &str) -> bool {
    matches!(
        key,
        "service.name" | "service.namespace" | "service.instance.id"
    ) || RESOURCE_LABELS.iter().any(|(k, _)| *k == key)
}

fn row_hash(attributes: &MapArray, resource: &MapArray, row: usize) -> std::hash::DefaultHasher {
    use std::hash::Hash;
    let mut h = std::hash::DefaultHasher::new();
    for (k, v) in map_entries(attributes, row) {
        (k, v).hash(&mut h);
    }
    0xffu8.hash(&mut h);
    for (k, v) in map_entries(resource, row).filter(|(k, _)| labels_resource_key(k)) {
        (k, v).hash(&mut h);
    }
    h
}

fn part_key(row: &std::hash::DefaultHasher, name: &str, extra: Option<u64>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = row.clone();
    (name, extra).hash(&mut h);
    h.finish()
}

/// Turns each row into its samples; returns how many samples it added.
fn add_rows(
    batch: &RecordBatch,
    wanted: &Wanted,
    out: &mut Keyed,
) -> Result<usize, arrow::error::ArrowError> {
    let kinds = KindColumns::of(batch)?;
    let flags: &Int64Array = typed_column(batch, "flags")?;
    let value_double: &Float64Array = typed_column(batch, "value_double")?;
    let value_int: &Int64Array = typed_column(batch, "value_int")?;
    let count: &Int64Array = typed_column(batch, "count")?;
    let sum: &Float64Array = typed_column(batch, "sum")?;
    let bucket_counts: &ListArray = typed_column(batch, "bucket_counts")?;
    let explicit_bounds: &ListArray = typed_column(batch, "explicit_bounds")?;
    let quantiles: &ListArray = typed_column(batch, "quantiles")?;
    let quantile_values: &ListArray = typed_column(batch, "quantile_values")?;
    let attributes: &MapArray = typed_column(batch, "attributes")?;
    let resource: &MapArray = typed_column(batch, "resource_attributes")?;
    let stale = f64::from_bits(STALE_NAN_BITS);
    let mut added = 0;
    for row in 0..batch.num_rows() {
        let Some(parts) = wanted.parts(kinds.kind(row)) else {
            continue;
        };
        let t = kinds.time.value(row).div_euclid(1_000_000);
        // OTLP's "no recorded value" flag is Prometheus's staleness marker.
        let no_value = flags.value(row) & 1 == 1;
        let row_key = row_hash(attributes, resource, row);
        let mut base: Option<Vec<(String, String)>> = None;
        let mut base = || {
            base.get_or_insert_with(|| base_labels(attributes, resource, row))
                .clone()
        };
        for (name, part) in parts {
            match part {
                Part::Value => {
                    let v = if no_value {
                        stale
                    } else if !value_double.is_null(row) {
                        value_double.value(row)
                    } else if !value_int.is_null(row) {
                        value_int.value(row) as f64
                    } else {
                        continue;
                    };
                    push(
                        out,
                        part_key(&row_key, name, None),
                        || with_labels(&base(), name, None),
                        t,
                        v,
                    );
                    added += 1;
                }
                Part::Sum | Part::Count => {
                    let v = if no_value {
                        stale
                    } else if *part == Part::Sum {
                        if sum.is_null(row) {
                            continue;
                        }
                        sum.value(row)
                    } else {
                        if count.is_null(row) {
                            continue;
                        }
                        count.value(row) as f64
                    };
                    push(
                        out,
                        part_key(&row_key, name, None),
                        || with_labels(&base(), name, None),
                        t,
                        v,
                    );
                    added += 1;
                }
                Part::Bucket => {
                    if bucket_counts.is_null(row) {
                        continue;
                    }
                    let counts = bucket_counts.value(row);
                    let counts = counts.as_primitive::<Int64Type>();
                    let bounds = if explicit_bounds.is_null(row) {
                        None
                    } else {
                        Some(explicit_bounds.value(row))
                    };
                    let bounds = bounds.as_ref().map(|b| b.as_primitive::<Float64Type>());
                    let mut cumulative = 0f64;
                    for i in 0..counts.len() {
                        cumulative += counts.value(i) as f64;
                        let bound = match bounds {
                            Some(b) if i < b.len() => b.value(i),
                            _ => f64::INFINITY,
                        };
                        let v = if no_value { stale } else { cumulative };
                        let key = part_key(&row_key, name, Some(bound.to_bits()));
                        let le = || ("le", super::value::format_value(bound));
                        push(out, key, || with_labels(&base(), name, Some(le())), t, v);
                        added += 1;
                    }
                }
                Part::Quantile => {
                    if quantiles.is_null(row) || quantile_values.is_null(row) {
                        continue;
                    }
                    let qs = quantiles.value(row);
                    let qs = qs.as_primitive::<Float64Type>();
                    let vs = quantile_values.value(row);
                    let vs = vs.as_primitive::<Float64Type>();
                    for i in 0..qs.len().min(vs.len()) {
                        let q = qs.value(i);
                        let v = if no_value { stale } else { vs.value(i) };
                        let key = part_key(&row_key, name, Some(q.to_bits()));
                        let quantile = || ("quantile", super::value::format_value(q));
                        push(
                            out,
                            key,
                            || with_labels(&base(), name, Some(quantile())),
                            t,
                            v,
                        );
                        added += 1;
                    }
                }
            }
        }
    }
    Ok(added)
}
