//! PromQL evaluation at one timestamp, with Prometheus 2.x semantics: closed lookback and
//! range windows, 5 minute staleness, metric names dropped where Prometheus drops them.
//! A range query evaluates the expression at every step.

use std::collections::{HashMap, HashSet};
use std::time::{Instant, SystemTime};

use promql_parser::label::METRIC_NAME as NAME;
use promql_parser::parser::{
    AggregateExpr, AtModifier, BinaryExpr, Expr, LabelModifier, Offset, SubqueryExpr,
    VectorMatchCardinality, VectorSelector,
};

use super::PromError;
use super::store::{Loaded, Selection};
use super::value::{
    Labels, METRIC_NAME, Points, RangeSeries, Sample, Value, format_value, is_stale, label,
    labels_from, without_name,
};

pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;
/// The resolution of a subquery that names none (Prometheus's default evaluation interval).
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60 * 1000;

/// Times and durations are clamped to ±2^55 ms (~1.1 million years), so sums of a few of
/// them never overflow.
pub const MAX_MS: i64 = 1 << 55;

pub fn duration_ms(d: &std::time::Duration) -> i64 {
    (d.as_millis().min(MAX_MS as u128)) as i64
}

pub fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}

/// The identity of a selector node in the parsed expression (it is not moved while a query runs).
pub fn selector_id(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

/// What one query evaluates against.
pub struct Evaluator<'a> {
    pub loaded: &'a Loaded,
    /// The query's start and end (ms), for `@ start()` and `@ end()`.
    pub start: i64,
    pub end: i64,
    pub deadline: Instant,
    pub timeout: std::time::Duration,
    /// Set when no one waits for the answer any more (the client went away, the request
    /// timed out): evaluation stops at its next step instead of running on to the deadline.
    pub stopped: &'a tokio_util::sync::CancellationToken,
    /// Points a subquery may produce (the samples limit applies to them too).
    pub max_points: usize,
}

impl Evaluator<'_> {
    fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        at.as_ref().map(|at| match at {
            AtModifier::Start => self.start,
            AtModifier::End => self.end,
            AtModifier::At(t) => system_time_ms(t),
        })
    }

    fn check_deadline(&self) -> Result<(), PromError> {
        if self.stopped.is_cancelled() {
            return Err(PromError::Timeout(
                "query stopped: no one waits for its answer any more".into(),
            ));
        }
        if Instant::now() > self.deadline {
            return Err(PromError::Timeout(format!(
                "query timed out in expression evaluation (after {:?}, --promql-timeout)",
                self.timeout
            )));
        }
        Ok(())
    }

    pub fn eval(&self, expr: &Expr, t: i64) -> Result<Value, PromError> {
        self.check_deadline()?;
        Ok(match expr {
            Expr::NumberLiteral(n) => Value::Scalar(n.val),
            Expr::StringLiteral(s) => Value::String(s.val.clone()),
            Expr::Paren(p) => self.eval(&p.expr, t)?,
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Value::Scalar(-v),
                Value::Vector(samples) => Value::Vector(
                    samples
                        .into_iter()
                        .map(|s| Sample {
                            labels: without_name(&s.labels),
                            v: -s.v,
                        })
                        .collect(),
                ),
                other => return Err(type_error("unary minus", &other)),
            },
            Expr::VectorSelector(vs) => Value::Vector(
                self.select_instant(vs, t)
                    .into_iter()
                    .map(|(labels, _, v)| Sample { labels, v })
                    .collect(),
            ),
            Expr::MatrixSelector(ms) => {
                let end = self.at_ms(&ms.vs.at).unwrap_or(t) - offset_ms(&ms.vs.offset);
                Value::Matrix(self.select_range(&ms.vs, end - duration_ms(&ms.range), end))
            }
            Expr::Subquery(sq) => Value::Matrix(self.subquery(sq, t)?),
            Expr::Aggregate(a) => self.aggregate(a, t)?,
            Expr::Binary(b) => self.binary(b, t)?,
            Expr::Call(call) => super::functions::call(self, call, t)?,
            Expr::Extension(_) => {
                return Err(PromError::BadData(
                    "extension expressions are not supported".into(),
                ));
            }
        })
    }

    /// The latest sample at or before the selector's time, within the lookback window and
    /// not a staleness marker: (labels, sample time, value).
    pub fn select_instant(&self, vs: &VectorSelector, t: i64) -> Vec<(Labels, i64, f64)> {
        let at = self.at_ms(&vs.at).unwrap_or(t) - offset_ms(&vs.offset);
        let Some(series) = self.loaded.get(&selector_id(vs)) else {
            return Vec::new();
        };
        series
            .iter()
            .filter_map(|s| {
                let i = s.t.partition_point(|&ts| ts <= at);
                if i == 0 {
                    return None;
                }
                let (ts, v) = (s.t[i - 1], s.v[i - 1]);
                (ts >= at - LOOKBACK_MS && !is_stale(v)).then(|| (s.labels.clone(), ts, v))
            })
            .collect()
    }

    /// Every series' samples with `from <= t <= to`, staleness markers left out.
    fn select_range(&self, vs: &VectorSelector, from: i64, to: i64) -> Vec<RangeSeries> {
        let Some(series) = self.loaded.get(&selector_id(vs)) else {
            return Vec::new();
        };
        series
            .iter()
            .filter_map(|s| {
                let (lo, hi) = s.window(from, to);
                let points = if s.has_stale {
                    let (t, v): (Vec<i64>, Vec<f64>) = (lo..hi)
                        .filter(|&i| !is_stale(s.v[i]))
                        .map(|i| (s.t[i], s.v[i]))
                        .unzip();
                    Points::Owned { t, v }
                } else {
                    Points::Slice {
                        series: s.clone(),
                        lo,
                        hi,
                    }
                };
                (points.len() > 0).then(|| RangeSeries {
                    labels: s.labels.clone(),
                    points,
                })
            })
            .collect()
    }

    fn subquery(&self, sq: &SubqueryExpr, t: i64) -> Result<Vec<RangeSeries>, PromError> {
        let end = self.at_ms(&sq.at).unwrap_or(t) - offset_ms(&sq.offset);
        let step = sq
            .step
            .as_ref()
            .map(duration_ms)
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
        let start = end - duration_ms(&sq.range);
        let mut ts = start.div_euclid(step) * step;
        if ts < start {
            ts += step;
        }
        let too_many = || {
            PromError::Execution(format!(
                "query processing would load too many samples into memory: a subquery of more than {} points (--promql-max-samples)",
                self.max_points
            ))
        };
        if (end.saturating_sub(ts) / step) as u64 >= self.max_points as u64 {
            return Err(too_many());
        }
        let mut by_labels: HashMap<Labels, (Vec<i64>, Vec<f64>)> = HashMap::new();
        let mut order = Vec::new();
        let mut points = 0usize;
        while ts <= end {
            let samples = match self.eval(&sq.expr, ts)? {
                Value::Vector(samples) => samples,
                Value::Scalar(v) => vec![Sample {
                    labels: labels_from(Vec::new()),
                    v,
                }],
                other => return Err(type_error("subquery", &other)),
            };
            points += samples.len();
            if points > self.max_points {
                return Err(too_many());
            }
            for s in samples {
                let entry = by_labels.entry(s.labels.clone()).or_insert_with(|| {
                    order.push(s.labels.clone());
                    Default::default()
                });
                entry.0.push(ts);
                entry.1.push(s.v);
            }
            let Some(next) = ts.checked_add(step) else {
                break;
            };
            ts = next;
        }
        Ok(order
            .into_iter()
            .map(|labels| {
                let (t, v) = by_labels.remove(&labels).unwrap_or_default();
                RangeSeries {
                    labels,
                    points: Points::Owned { t, v },
                }
            })
            .collect())
    }

    pub fn eval_vector(&self, expr: &Expr, t: i64) -> Result<Vec<Sample>, PromError> {
        match self.eval(expr, t)? {
            Value::Vector(v) => Ok(v),
            other => Err(type_error("an instant vector argument", &other)),
        }
    }

    pub fn eval_scalar(&self, expr: &Expr, t: i64) -> Result<f64, PromError> {
        match self.eval(expr, t)? {
            Value::Scalar(v) => Ok(v),
            other => Err(type_error("a scalar argument", &other)),
        }
    }

    pub fn eval_matrix(&self, expr: &Expr, t: i64) -> Result<Vec<RangeSeries>, PromError> {
        match self.eval(expr, t)? {
            Value::Matrix(m) => Ok(m),
            other => Err(type_error("a range vector argument", &other)),
        }
    }

    fn aggregate(&self, a: &AggregateExpr, t: i64) -> Result<Value, PromError> {
        let op = a.op.to_string().to_ascii_lowercase();
        let input = self.eval_vector(&a.expr, t)?;
        let param = match &a.param {
            Some(p) => Some(self.eval(p, t)?),
            None => None,
        };
        let group_labels = |labels: &Labels| -> Labels {
            match &a.modifier {
                None => labels_from(Vec::new()),
                Some(LabelModifier::Include(by)) => labels
                    .iter()
                    .filter(|(n, _)| by.labels.iter().any(|b| b == n))
                    .cloned()
                    .collect(),
                Some(LabelModifier::Exclude(without)) => labels
                    .iter()
                    .filter(|(n, _)| n != METRIC_NAME && !without.labels.iter().any(|w| w == n))
                    .cloned()
                    .collect(),
            }
        };
        let mut groups: Vec<(Labels, Vec<Sample>)> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut count_values_label = None;
        if op == "count_values" {
            let Some(Value::String(name)) = &param else {
                return Err(PromError::BadData(
                    "count_values needs a label name string".into(),
                ));
            };
            if !valid_label_name(name) {
                return Err(PromError::BadData(format!("invalid label name {name:?}")));
            }
            count_values_label = Some(name.clone());
        }
        for s in input {
            let mut key = group_labels(&s.labels);
            if let Some(name) = &count_values_label {
                let mut pairs: Vec<(String, String)> =
                    key.iter().filter(|(n, _)| n != name).cloned().collect();
                pairs.push((name.clone(), format_value(s.v)));
                key = labels_from(pairs);
            }
            let i = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(s);
        }
        let scalar_param = || match &param {
            Some(Value::Scalar(v)) => Ok(*v),
            _ => Err(PromError::BadData(format!("{op} needs a scalar parameter"))),
        };
        let mut out = Vec::new();
        match op.as_str() {
            "topk" | "bottomk" => {
                let k = scalar_param()?;
                if k.is_nan() {
                    return Err(PromError::BadData(format!(
                        "parameter value is NaN for {op}"
                    )));
                }
                let k = if k >= 1.0 {
                    k.min(usize::MAX as f64) as usize
                } else {
                    0
                };
                for (_, mut members) in groups {
                    members.sort_by(|x, y| super::value::nan_last(x.v, y.v, op == "bottomk"));
                    out.extend(members.into_iter().take(k));
                }
            }
            _ => {
                let q = if op == "quantile" {
                    Some(scalar_param()?)
                } else {
                    None
                };
                for (labels, members) in groups {
                    let values: Vec<f64> = members.iter().map(|s| s.v).collect();
                    let v = match op.as_str() {
                        "sum" => kahan_sum(&values),
                        "avg" => kahan_sum(&values) / values.len() as f64,
                        "count" | "count_values" => values.len() as f64,
                        "group" => 1.0,
                        "min" => values
                            .iter()
                            .copied()
                            .fold(f64::NAN, |m, v| if m > v || m.is_nan() { v } else { m }),
                        "max" => values
                            .iter()
                            .copied()
                            .fold(f64::NAN, |m, v| if m < v || m.is_nan() { v } else { m }),
                        "stddev" => variance(&values).sqrt(),
                        "stdvar" => variance(&values),
                        "quantile" => quantile(q.unwrap_or(f64::NAN), values),
                        other => {
                            return Err(PromError::BadData(format!(
                                "aggregation {other} is not supported by Porthole"
                            )));
                        }
                    };
                    out.push(Sample { labels, v });
                }
            }
        }
        Ok(Value::Vector(out))
    }

    fn binary(&self, b: &BinaryExpr, t: i64) -> Result<Value, PromError> {
        let op = b.op.to_string().to_ascii_lowercase();
        let return_bool = b.return_bool();
        if let Some(m) = &b.modifier
            && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
        {
            return Err(PromError::BadData(
                "fill modifiers are not supported by Porthole".into(),
            ));
        }
        let lhs = self.eval(&b.lhs, t)?;
        let rhs = self.eval(&b.rhs, t)?;
        let comparison = b.op.is_comparison_operator();
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => {
                let (v, keep) = binop(&op, l, r)?;
                Ok(Value::Scalar(if comparison {
                    if keep { 1.0 } else { 0.0 }
                } else {
                    v
                }))
            }
            (Value::Vector(l), Value::Scalar(r)) => Ok(Value::Vector(vector_scalar(
                &op,
                l,
                r,
                false,
                return_bool,
                comparison,
            )?)),
            (Value::Scalar(l), Value::Vector(r)) => Ok(Value::Vector(vector_scalar(
                &op,
                r,
                l,
                true,
                return_bool,
                comparison,
            )?)),
            (Value::Vector(l), Value::Vector(r)) => {
                let matching = b.modifier.as_ref().and_then(|m| m.matching.clone());
                let card = b
                    .modifier
                    .as_ref()
                    .map(|m| m.card.clone())
                    .unwrap_or(VectorMatchCardinality::OneToOne);
                if b.op.is_set_operator() {
                    Ok(Value::Vector(set_op(&op, l, r, matching.as_ref())))
                } else {
                    Ok(Value::Vector(vector_vector(
                        &op,
                        l,
                        r,
                        matching.as_ref(),
                        &card,
                        return_bool,
                    )?))
                }
            }
            (l, r) => Err(PromError::BadData(format!(
                "binary operator {op} between {} and {} is not allowed",
                l.type_name(),
                r.type_name()
            ))),
        }
    }
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn type_error(what: &str, got: &Value) -> PromError {
    PromError::BadData(format!("expected {what}, got {}", got.type_name()))
}

fn drops_name(op: &str) -> bool {
    matches!(op, "+" | "-" | "*" | "/" | "%" | "^")
}

/// `(value, keep)`: arithmetic gives the value; a comparison keeps the left value when true.
fn binop(op: &str, l: f64, r: f64) -> Result<(f64, bool), PromError> {
    Ok(match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "%" => (l % r, true),
        "^" => (l.powf(r), true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        other => {
            return Err(PromError::BadData(format!(
                "operator {other} is not supported here"
            )));
        }
    })
}

fn vector_scalar(
    op: &str,
    vector: Vec<Sample>,
    scalar: f64,
    scalar_left: bool,
    return_bool: bool,
    comparison: bool,
) -> Result<Vec<Sample>, PromError> {
    let mut out = Vec::with_capacity(vector.len());
    for s in vector {
        let (l, r) = if scalar_left {
            (scalar, s.v)
        } else {
            (s.v, scalar)
        };
        let (mut v, keep) = binop(op, l, r)?;
        // A comparison keeps the vector's value, whichever side it is on.
        if comparison && scalar_left {
            v = s.v;
        }
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let labels = if drops_name(op) || return_bool {
            without_name(&s.labels)
        } else {
            s.labels
        };
        out.push(Sample { labels, v });
    }
    Ok(out)
}

/// The labels two vectors' elements are matched on.
fn signature(labels: &Labels, matching: Option<&LabelModifier>) -> Vec<(String, String)> {
    match matching {
        Some(LabelModifier::Include(on)) => {
            let mut sig: Vec<(String, String)> = on
                .labels
                .iter()
                .map(|n| (n.clone(), label(labels, n).unwrap_or("").to_string()))
                .collect();
            sig.sort();
            sig.dedup();
            sig
        }
        Some(LabelModifier::Exclude(ignoring)) => labels
            .iter()
            .filter(|(n, _)| n != NAME && !ignoring.labels.iter().any(|i| i == n))
            .cloned()
            .collect(),
        None => labels.iter().filter(|(n, _)| n != NAME).cloned().collect(),
    }
}

fn set_op(
    op: &str,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    matching: Option<&LabelModifier>,
) -> Vec<Sample> {
    match op {
        "and" => {
            let right: HashSet<_> = rhs.iter().map(|s| signature(&s.labels, matching)).collect();
            lhs.into_iter()
                .filter(|s| right.contains(&signature(&s.labels, matching)))
                .collect()
        }
        "unless" => {
            let right: HashSet<_> = rhs.iter().map(|s| signature(&s.labels, matching)).collect();
            lhs.into_iter()
                .filter(|s| !right.contains(&signature(&s.labels, matching)))
                .collect()
        }
        _ => {
            let left: HashSet<_> = lhs.iter().map(|s| signature(&s.labels, matching)).collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|s| !left.contains(&signature(&s.labels, matching))),
            );
            out
        }
    }
}

fn render(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn vector_vector(
    op: &str,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    matching: Option<&LabelModifier>,
    card: &VectorMatchCardinality,
    return_bool: bool,
) -> Result<Vec<Sample>, PromError> {
    // The "many" side is always on the left here; group_right swaps the operands.
    let swapped = matches!(card, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let mut one_by_sig: HashMap<Vec<(String, String)>, Sample> = HashMap::new();
    for s in one {
        let sig = signature(&s.labels, matching);
        if let Some(dup) = one_by_sig.get(&sig) {
            return Err(PromError::Execution(format!(
                "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                render(&sig),
                if swapped { "left" } else { "right" },
                render(&dup.labels),
                render(&s.labels)
            )));
        }
        one_by_sig.insert(sig, s);
    }
    let include: &[String] = card.labels().map(|l| l.labels.as_slice()).unwrap_or(&[]);
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let mut matched: HashSet<Vec<(String, String)>> = HashSet::new();
    let mut inserted: HashSet<Labels> = HashSet::new();
    let mut out = Vec::new();
    for s in many {
        let sig = signature(&s.labels, matching);
        let Some(o) = one_by_sig.get(&sig) else {
            continue;
        };
        let (l, r) = if swapped { (o.v, s.v) } else { (s.v, o.v) };
        let (mut v, keep) = binop(op, l, r)?;
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        // The result's labels: the "many" side's, less the name for arithmetic, reduced to
        // the matching labels for one-to-one, plus group_x's labels from the "one" side.
        let mut pairs: Vec<(String, String)> = s.labels.to_vec();
        if drops_name(op) || return_bool {
            pairs.retain(|(n, _)| n != NAME);
        }
        if one_to_one {
            match matching {
                Some(LabelModifier::Include(on)) => {
                    pairs.retain(|(n, _)| on.labels.iter().any(|o| o == n))
                }
                Some(LabelModifier::Exclude(ignoring)) => {
                    pairs.retain(|(n, _)| !ignoring.labels.iter().any(|i| i == n))
                }
                None => {}
            }
        }
        for name in include {
            pairs.retain(|(n, _)| n != name);
            if let Some(value) = label(&o.labels, name) {
                pairs.push((name.clone(), value.to_string()));
            }
        }
        let labels = labels_from(pairs);
        if one_to_one {
            if !matched.insert(sig.clone()) {
                return Err(PromError::Execution(format!(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right); match group {}",
                    render(&sig)
                )));
            }
        } else if !inserted.insert(labels.clone()) {
            return Err(PromError::Execution(format!(
                "multiple matches for labels: grouping labels must ensure unique matches; result {}",
                render(&labels)
            )));
        }
        out.push(Sample { labels, v });
    }
    Ok(out)
}

/// Neumaier-compensated sum, as Prometheus sums.
pub fn kahan_sum(values: &[f64]) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for &v in values {
        let t = sum + v;
        if t.is_infinite() {
            c = 0.0;
        } else if sum.abs() >= v.abs() {
            c += (sum - t) + v;
        } else {
            c += (v - t) + sum;
        }
        sum = t;
    }
    if sum.is_infinite() { sum } else { sum + c }
}

/// Population variance (Welford), as `stdvar` and `stdvar_over_time`.
pub fn variance(values: &[f64]) -> f64 {
    let (mut count, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
    for &v in values {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        m2 += delta * (v - mean);
    }
    m2 / count
}

/// Prometheus's `quantile`: linear interpolation between the closest ranks.
pub fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Every selector in `expr` and the time span it reads when `expr` is evaluated at every
/// time in `[from, to]`.
pub fn selections(expr: &Expr, from: i64, to: i64, query: (i64, i64), out: &mut Vec<Selection>) {
    let at = |at: &Option<AtModifier>, from: i64, to: i64| match at {
        None => (from, to),
        Some(AtModifier::Start) => (query.0, query.0),
        Some(AtModifier::End) => (query.1, query.1),
        Some(AtModifier::At(t)) => (system_time_ms(t), system_time_ms(t)),
    };
    let mut select = |vs: &VectorSelector, back: i64| {
        let (f, t) = at(&vs.at, from, to);
        let off = offset_ms(&vs.offset);
        out.push(Selection {
            id: selector_id(vs),
            name: vs.name.clone(),
            matchers: vs.matchers.clone(),
            from_ms: f - off - back,
            to_ms: t - off,
        });
    };
    match expr {
        Expr::VectorSelector(vs) => select(vs, LOOKBACK_MS),
        Expr::MatrixSelector(ms) => select(&ms.vs, duration_ms(&ms.range)),
        Expr::Subquery(sq) => {
            let (f, t) = at(&sq.at, from, to);
            let off = offset_ms(&sq.offset);
            selections(
                &sq.expr,
                f - off - duration_ms(&sq.range),
                t - off,
                query,
                out,
            );
        }
        Expr::Aggregate(a) => {
            selections(&a.expr, from, to, query, out);
            if let Some(p) = &a.param {
                selections(p, from, to, query, out);
            }
        }
        Expr::Unary(u) => selections(&u.expr, from, to, query, out),
        Expr::Binary(b) => {
            selections(&b.lhs, from, to, query, out);
            selections(&b.rhs, from, to, query, out);
        }
        Expr::Paren(p) => selections(&p.expr, from, to, query, out),
        Expr::Call(c) => {
            for arg in &c.args.args {
                selections(arg, from, to, query, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}
