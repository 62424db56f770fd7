//! The values PromQL expressions evaluate to.

use std::sync::Arc;

/// A label set, sorted by name; `__name__` is a label like any other.
pub type Labels = Arc<[(String, String)]>;

pub const METRIC_NAME: &str = "__name__";

/// The staleness marker Prometheus writes when a series disappears (a NaN with this
/// exact bit pattern); OTLP's "no recorded value" flag becomes one too.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

pub fn label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .binary_search_by(|(n, _)| n.as_str().cmp(name))
        .ok()
        .map(|i| labels[i].1.as_str())
}

/// Builds a sorted label set, dropping empty values (an empty label is an absent one).
pub fn labels_from(mut pairs: Vec<(String, String)>) -> Labels {
    pairs.retain(|(_, v)| !v.is_empty());
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs.dedup_by(|a, b| a.0 == b.0);
    pairs.into()
}

pub fn without_name(labels: &Labels) -> Labels {
    if label(labels, METRIC_NAME).is_none() {
        return labels.clone();
    }
    labels
        .iter()
        .filter(|(n, _)| n != METRIC_NAME)
        .cloned()
        .collect()
}

/// One stored series: samples in time order, millisecond timestamps.
#[derive(Debug)]
pub struct Series {
    pub labels: Labels,
    pub t: Vec<i64>,
    pub v: Vec<f64>,
    /// Whether any sample is a staleness marker (ranges then need filtering).
    pub has_stale: bool,
}

impl Series {
    /// Index range of the samples with `from <= t <= to`.
    pub fn window(&self, from: i64, to: i64) -> (usize, usize) {
        let lo = self.t.partition_point(|&t| t < from);
        let hi = self.t.partition_point(|&t| t <= to);
        (lo, hi.max(lo))
    }
}

/// One element of an instant vector.
#[derive(Clone, Debug)]
pub struct Sample {
    pub labels: Labels,
    pub v: f64,
}

/// The samples of one series over a range: borrowed from storage where possible.
#[derive(Clone, Debug)]
pub enum Points {
    Slice {
        series: Arc<Series>,
        lo: usize,
        hi: usize,
    },
    Owned {
        t: Vec<i64>,
        v: Vec<f64>,
    },
}

impl Points {
    pub fn t(&self) -> &[i64] {
        match self {
            Points::Slice { series, lo, hi } => &series.t[*lo..*hi],
            Points::Owned { t, .. } => t,
        }
    }
    pub fn v(&self) -> &[f64] {
        match self {
            Points::Slice { series, lo, hi } => &series.v[*lo..*hi],
            Points::Owned { v, .. } => v,
        }
    }
    pub fn len(&self) -> usize {
        self.t().len()
    }
}

#[derive(Clone, Debug)]
pub struct RangeSeries {
    pub labels: Labels,
    pub points: Points,
}

#[derive(Clone, Debug)]
pub enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Sample>),
    Matrix(Vec<RangeSeries>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(_) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Prometheus's float formatting (Go's `strconv.FormatFloat(v, 'f', -1, 64)`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Orders values ascending or descending with NaN last either way, as Prometheus's
/// `sort`, `topk` and `bottomk` do.
pub fn nan_last(a: f64, b: f64, ascending: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if ascending => a.total_cmp(&b),
        _ => b.total_cmp(&a),
    }
}
