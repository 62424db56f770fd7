//! PromQL functions, as Prometheus 2.x computes them. A function the parser knows but
//! Porthole does not evaluate (native-histogram functions, Holt-Winters, …) is a 400
//! naming it.

use chrono::{Datelike, TimeZone, Timelike};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};

use super::PromError;
use super::eval::{Evaluator, duration_ms, kahan_sum, offset_ms, quantile, variance};
use super::value::{
    Labels, METRIC_NAME, RangeSeries, Sample, Value, label, labels_from, without_name,
};

fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

fn arg(call: &Call, i: usize) -> Result<&Expr, PromError> {
    call.args.args.get(i).map(|b| b.as_ref()).ok_or_else(|| {
        PromError::BadData(format!("{} is missing argument {}", call.func.name, i + 1))
    })
}

fn string_arg(ev: &Evaluator<'_>, call: &Call, i: usize, t: i64) -> Result<String, PromError> {
    match ev.eval(arg(call, i)?, t)? {
        Value::String(s) => Ok(s),
        other => Err(super::eval::type_error("a string argument", &other)),
    }
}

/// `[start, end]` of a range argument (matrix selector or subquery) evaluated at `t`.
fn range_bounds(ev: &Evaluator<'_>, e: &Expr, t: i64) -> Result<(i64, i64), PromError> {
    let (at, offset, range) = match unwrap_parens(e) {
        Expr::MatrixSelector(ms) => (&ms.vs.at, &ms.vs.offset, &ms.range),
        Expr::Subquery(sq) => (&sq.at, &sq.offset, &sq.range),
        _ => {
            return Err(PromError::BadData(
                "expected a range vector argument".into(),
            ));
        }
    };
    let at = match at {
        None => t,
        Some(promql_parser::parser::AtModifier::Start) => ev.start,
        Some(promql_parser::parser::AtModifier::End) => ev.end,
        Some(promql_parser::parser::AtModifier::At(st)) => {
            match st.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => duration_ms(&d),
                Err(e) => -duration_ms(&e.duration()),
            }
        }
    };
    let end = at - offset_ms(offset);
    Ok((end - duration_ms(range), end))
}

fn per_series(
    matrix: Vec<RangeSeries>,
    keep_name: bool,
    f: impl Fn(&[i64], &[f64]) -> Option<f64>,
) -> Vec<Sample> {
    matrix
        .into_iter()
        .filter_map(|s| {
            let v = f(s.points.t(), s.points.v())?;
            let labels = if keep_name {
                s.labels
            } else {
                without_name(&s.labels)
            };
            Some(Sample { labels, v })
        })
        .collect()
}

fn map_vector(samples: Vec<Sample>, f: impl Fn(f64) -> f64) -> Vec<Sample> {
    samples
        .into_iter()
        .map(|s| Sample {
            labels: without_name(&s.labels),
            v: f(s.v),
        })
        .collect()
}

/// Go's math.Max/math.Min: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

pub fn call(ev: &Evaluator<'_>, call: &Call, t: i64) -> Result<Value, PromError> {
    let name = call.func.name;
    let vector = |i: usize| -> Result<Vec<Sample>, PromError> { ev.eval_vector(arg(call, i)?, t) };
    let matrix =
        |i: usize| -> Result<Vec<RangeSeries>, PromError> { ev.eval_matrix(arg(call, i)?, t) };
    let scalar = |i: usize| -> Result<f64, PromError> { ev.eval_scalar(arg(call, i)?, t) };
    let out = match name {
        "rate" | "increase" | "delta" => {
            let (start, end) = range_bounds(ev, arg(call, 0)?, t)?;
            let counter = name != "delta";
            let is_rate = name == "rate";
            per_series(matrix(0)?, false, |ts, vs| {
                extrapolated_rate(ts, vs, start, end, counter, is_rate)
            })
        }
        "irate" | "idelta" => per_series(matrix(0)?, false, |ts, vs| {
            instant_value(ts, vs, name == "irate")
        }),
        "deriv" => per_series(matrix(0)?, false, |ts, vs| {
            (ts.len() >= 2).then(|| linear_regression(ts, vs, ts[0]).0)
        }),
        "predict_linear" => {
            let seconds = scalar(1)?;
            per_series(matrix(0)?, false, |ts, vs| {
                (ts.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(ts, vs, t);
                    slope * seconds + intercept
                })
            })
        }
        "changes" => per_series(matrix(0)?, false, |_, vs| {
            Some(
                vs.windows(2)
                    .filter(|w| !(w[0] == w[1] || (w[0].is_nan() && w[1].is_nan())))
                    .count() as f64,
            )
        }),
        "resets" => per_series(matrix(0)?, false, |_, vs| {
            Some(vs.windows(2).filter(|w| w[1] < w[0]).count() as f64)
        }),
        "avg_over_time" => per_series(matrix(0)?, false, |_, vs| {
            Some(kahan_sum(vs) / vs.len() as f64)
        }),
        "sum_over_time" => per_series(matrix(0)?, false, |_, vs| Some(kahan_sum(vs))),
        "count_over_time" => per_series(matrix(0)?, false, |_, vs| Some(vs.len() as f64)),
        "min_over_time" => per_series(matrix(0)?, false, |_, vs| {
            Some(
                vs.iter()
                    .copied()
                    .fold(f64::NAN, |m, v| if v < m || m.is_nan() { v } else { m }),
            )
        }),
        "max_over_time" => per_series(matrix(0)?, false, |_, vs| {
            Some(
                vs.iter()
                    .copied()
                    .fold(f64::NAN, |m, v| if v > m || m.is_nan() { v } else { m }),
            )
        }),
        "last_over_time" => per_series(matrix(0)?, true, |_, vs| vs.last().copied()),
        "present_over_time" => per_series(matrix(0)?, false, |_, _| Some(1.0)),
        "stddev_over_time" => per_series(matrix(0)?, false, |_, vs| Some(variance(vs).sqrt())),
        "stdvar_over_time" => per_series(matrix(0)?, false, |_, vs| Some(variance(vs))),
        "quantile_over_time" => {
            let q = scalar(0)?;
            let m = ev.eval_matrix(arg(call, 1)?, t)?;
            per_series(m, false, |_, vs| Some(quantile(q, vs.to_vec())))
        }
        "absent_over_time" => {
            let m = matrix(0)?;
            return Ok(Value::Vector(absent(m.is_empty(), arg(call, 0)?)));
        }
        "absent" => {
            let v = vector(0)?;
            return Ok(Value::Vector(absent(v.is_empty(), arg(call, 0)?)));
        }
        "abs" => map_vector(vector(0)?, f64::abs),
        "ceil" => map_vector(vector(0)?, f64::ceil),
        "floor" => map_vector(vector(0)?, f64::floor),
        "exp" => map_vector(vector(0)?, f64::exp),
        "ln" => map_vector(vector(0)?, f64::ln),
        "log2" => map_vector(vector(0)?, f64::log2),
        "log10" => map_vector(vector(0)?, f64::log10),
        "sqrt" => map_vector(vector(0)?, f64::sqrt),
        "sgn" => map_vector(vector(0)?, |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }),
        "sin" => map_vector(vector(0)?, f64::sin),
        "cos" => map_vector(vector(0)?, f64::cos),
        "tan" => map_vector(vector(0)?, f64::tan),
        "asin" => map_vector(vector(0)?, f64::asin),
        "acos" => map_vector(vector(0)?, f64::acos),
        "atan" => map_vector(vector(0)?, f64::atan),
        "sinh" => map_vector(vector(0)?, f64::sinh),
        "cosh" => map_vector(vector(0)?, f64::cosh),
        "tanh" => map_vector(vector(0)?, f64::tanh),
        "asinh" => map_vector(vector(0)?, f64::asinh),
        "acosh" => map_vector(vector(0)?, f64::acosh),
        "atanh" => map_vector(vector(0)?, f64::atanh),
        "deg" => map_vector(vector(0)?, f64::to_degrees),
        "rad" => map_vector(vector(0)?, f64::to_radians),
        "pi" => return Ok(Value::Scalar(std::f64::consts::PI)),
        "round" => {
            let to_nearest = if call.args.args.len() > 1 {
                scalar(1)?
            } else {
                1.0
            };
            let inverse = 1.0 / to_nearest;
            map_vector(vector(0)?, |v| (v * inverse + 0.5).floor() / inverse)
        }
        "clamp" => {
            let (min, max) = (scalar(1)?, scalar(2)?);
            if max < min {
                Vec::new()
            } else {
                map_vector(vector(0)?, |v| go_max(min, go_min(max, v)))
            }
        }
        "clamp_min" => {
            let min = scalar(1)?;
            map_vector(vector(0)?, |v| go_max(min, v))
        }
        "clamp_max" => {
            let max = scalar(1)?;
            map_vector(vector(0)?, |v| go_min(max, v))
        }
        "label_replace" => label_replace(ev, call, t)?,
        "label_join" => label_join(ev, call, t)?,
        "histogram_quantile" => histogram_quantile(scalar(0)?, vector(1)?),
        "time" => return Ok(Value::Scalar(t as f64 / 1000.0)),
        "vector" => vec![Sample {
            labels: labels_from(Vec::new()),
            v: scalar(0)?,
        }],
        "scalar" => {
            let v = vector(0)?;
            return Ok(Value::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }));
        }
        "timestamp" => match unwrap_parens(arg(call, 0)?) {
            Expr::VectorSelector(vs) => ev
                .select_instant(vs, t)
                .into_iter()
                .map(|(labels, ts, _)| Sample {
                    labels: without_name(&labels),
                    v: ts as f64 / 1000.0,
                })
                .collect(),
            _ => map_vector(vector(0)?, |_| t as f64 / 1000.0),
        },
        "sort" | "sort_desc" => {
            let mut v = vector(0)?;
            v.sort_by(|a, b| super::value::nan_last(a.v, b.v, name == "sort"));
            v
        }
        "minute" | "hour" | "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month"
        | "month" | "year" => {
            let samples = if call.args.args.is_empty() {
                vec![Sample {
                    labels: labels_from(Vec::new()),
                    v: t as f64 / 1000.0,
                }]
            } else {
                vector(0)?
            };
            samples
                .into_iter()
                .map(|s| Sample {
                    labels: without_name(&s.labels),
                    v: date_part(name, s.v),
                })
                .collect()
        }
        other => {
            return Err(PromError::BadData(format!(
                "function {other:?} is not supported by Porthole"
            )));
        }
    };
    Ok(Value::Vector(out))
}

fn date_part(name: &str, seconds: f64) -> f64 {
    if !seconds.is_finite() {
        return f64::NAN;
    }
    let Some(dt) = chrono::Utc
        .timestamp_opt(seconds.floor() as i64, 0)
        .single()
    else {
        return f64::NAN;
    };
    match name {
        "minute" => dt.minute() as f64,
        "hour" => dt.hour() as f64,
        "day_of_month" => dt.day() as f64,
        "day_of_week" => dt.weekday().num_days_from_sunday() as f64,
        "day_of_year" => dt.ordinal() as f64,
        "month" => dt.month() as f64,
        "year" => dt.year() as f64,
        _ => {
            // days_in_month
            let (y, m) = (dt.year(), dt.month());
            let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            let first = chrono::NaiveDate::from_ymd_opt(y, m, 1);
            let next = chrono::NaiveDate::from_ymd_opt(next.0, next.1, 1);
            match (first, next) {
                (Some(a), Some(b)) => (b - a).num_days() as f64,
                _ => f64::NAN,
            }
        }
    }
}

/// `absent`/`absent_over_time`: 1 with the selector's equality labels when nothing matched.
fn absent(empty: bool, arg: &Expr) -> Vec<Sample> {
    if !empty {
        return Vec::new();
    }
    let vs = match unwrap_parens(arg) {
        Expr::VectorSelector(vs) => Some(vs),
        Expr::MatrixSelector(ms) => Some(&ms.vs),
        _ => None,
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(vs) = vs {
        let mut conflicting = Vec::new();
        for m in &vs.matchers.matchers {
            if m.name == METRIC_NAME {
                continue;
            }
            if m.op == MatchOp::Equal && !pairs.iter().any(|(n, _)| *n == m.name) {
                pairs.push((m.name.clone(), m.value.clone()));
            } else {
                conflicting.push(m.name.clone());
            }
        }
        pairs.retain(|(n, _)| !conflicting.contains(n));
    }
    vec![Sample {
        labels: labels_from(pairs),
        v: 1.0,
    }]
}

fn label_replace(ev: &Evaluator<'_>, call: &Call, t: i64) -> Result<Vec<Sample>, PromError> {
    let samples = ev.eval_vector(arg(call, 0)?, t)?;
    let dst = string_arg(ev, call, 1, t)?;
    let replacement = string_arg(ev, call, 2, t)?;
    let src = string_arg(ev, call, 3, t)?;
    let pattern = string_arg(ev, call, 4, t)?;
    let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        PromError::BadData(format!(
            "invalid regular expression in label_replace(): {pattern}: {e}"
        ))
    })?;
    if !valid_label(&dst) {
        return Err(PromError::BadData(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    Ok(samples
        .into_iter()
        .map(|s| {
            let value = label(&s.labels, &src).unwrap_or("");
            let labels = match re.captures(value) {
                Some(caps) => {
                    let mut out = String::new();
                    caps.expand(&replacement, &mut out);
                    set_label(&s.labels, &dst, out)
                }
                None => s.labels,
            };
            Sample { labels, v: s.v }
        })
        .collect())
}

fn label_join(ev: &Evaluator<'_>, call: &Call, t: i64) -> Result<Vec<Sample>, PromError> {
    let samples = ev.eval_vector(arg(call, 0)?, t)?;
    let dst = string_arg(ev, call, 1, t)?;
    let sep = string_arg(ev, call, 2, t)?;
    let mut sources = Vec::new();
    for i in 3..call.args.args.len() {
        sources.push(string_arg(ev, call, i, t)?);
    }
    if !valid_label(&dst) {
        return Err(PromError::BadData(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    Ok(samples
        .into_iter()
        .map(|s| {
            let joined: Vec<&str> = sources
                .iter()
                .map(|src| label(&s.labels, src).unwrap_or(""))
                .collect();
            let labels = set_label(&s.labels, &dst, joined.join(&sep));
            Sample { labels, v: s.v }
        })
        .collect())
}

fn valid_label(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn set_label(labels: &Labels, name: &str, value: String) -> Labels {
    let mut pairs: Vec<(String, String)> =
        labels.iter().filter(|(n, _)| n != name).cloned().collect();
    pairs.push((name.to_string(), value));
    labels_from(pairs)
}

/// Prometheus's `extrapolatedRate`: the increase over the samples, extrapolated towards
/// the range's edges (not past a counter's zero), per second for `rate`.
fn extrapolated_rate(
    ts: &[i64],
    vs: &[f64],
    range_start: i64,
    range_end: i64,
    counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if ts.len() < 2 {
        return None;
    }
    let (first_v, last_v) = (vs[0], vs[vs.len() - 1]);
    let mut result = last_v - first_v;
    if counter {
        let mut last = 0.0;
        for &v in vs {
            if v < last {
                result += last;
            }
            last = v;
        }
    }
    let mut duration_to_start = (ts[0] - range_start) as f64 / 1000.0;
    let duration_to_end = (range_end - ts[ts.len() - 1]) as f64 / 1000.0;
    let sampled = (ts[ts.len() - 1] - ts[0]) as f64 / 1000.0;
    let average = sampled / (ts.len() - 1) as f64;
    if counter && result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < duration_to_start {
            duration_to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if duration_to_start < threshold {
        duration_to_start
    } else {
        average / 2.0
    };
    interval += if duration_to_end < threshold {
        duration_to_end
    } else {
        average / 2.0
    };
    result *= interval / sampled;
    if is_rate {
        result /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result)
}

fn instant_value(ts: &[i64], vs: &[f64], is_rate: bool) -> Option<f64> {
    let n = ts.len();
    if n < 2 {
        return None;
    }
    let (last, prev) = (vs[n - 1], vs[n - 2]);
    let mut result = if is_rate && last < prev {
        last
    } else {
        last - prev
    };
    let interval = ts[n - 1] - ts[n - 2];
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and intercept, x in seconds relative to `intercept_time`.
fn linear_regression(ts: &[i64], vs: &[f64], intercept_time: i64) -> (f64, f64) {
    let first = vs[0];
    if vs.iter().all(|v| *v == first) {
        if first.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, first);
    }
    let n = ts.len() as f64;
    let xs: Vec<f64> = ts
        .iter()
        .map(|t| (t - intercept_time) as f64 / 1000.0)
        .collect();
    let sum_x = kahan_sum(&xs);
    let sum_y = kahan_sum(vs);
    let xy: Vec<f64> = xs.iter().zip(vs).map(|(x, y)| x * y).collect();
    let x2: Vec<f64> = xs.iter().map(|x| x * x).collect();
    let (sum_xy, sum_x2) = (kahan_sum(&xy), kahan_sum(&x2));
    let cov = sum_xy - sum_x * sum_y / n;
    let var = sum_x2 - sum_x * sum_x / n;
    let slope = cov / var;
    (slope, sum_y / n - slope * sum_x / n)
}

fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn histogram_quantile(q: f64, samples: Vec<Sample>) -> Vec<Sample> {
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    let mut index: std::collections::HashMap<Labels, usize> = Default::default();
    for s in samples {
        let Some(le) = label(&s.labels, "le").and_then(parse_le) else {
            continue;
        };
        let key: Labels = s
            .labels
            .iter()
            .filter(|(n, _)| n != "le" && n != METRIC_NAME)
            .cloned()
            .collect();
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push((le, s.v));
    }
    groups
        .into_iter()
        .map(|(labels, buckets)| Sample {
            labels,
            v: bucket_quantile(q, buckets),
        })
        .collect()
}

/// Prometheus's `bucketQuantile` over (upper bound, cumulative count) buckets.
fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if !matches!(buckets.last(), Some((le, _)) if *le == f64::INFINITY) {
        return f64::NAN;
    }
    // Coalesce equal bounds, then make the counts monotonic.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for (le, c) in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == le => last.1 += c,
            _ => merged.push((le, c)),
        }
    }
    let mut max = f64::NEG_INFINITY;
    for b in merged.iter_mut() {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    let buckets = merged;
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|(_, c)| *c < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_quantile_interpolates_like_prometheus() {
        let buckets = vec![
            (0.1, 10.0),
            (0.5, 60.0),
            (1.0, 90.0),
            (f64::INFINITY, 100.0),
        ];
        // rank 50 falls in (0.1, 0.5]: 0.1 + 0.4 * (40/50)
        assert!((bucket_quantile(0.5, buckets.clone()) - 0.42).abs() < 1e-12);
        // Past the last finite bucket: its upper bound.
        assert_eq!(bucket_quantile(0.99, buckets.clone()), 1.0);
        assert_eq!(bucket_quantile(1.5, buckets.clone()), f64::INFINITY);
        assert!(
            bucket_quantile(0.5, vec![(1.0, 3.0)]).is_nan(),
            "no +Inf bucket"
        );
    }

    #[test]
    fn rate_extrapolates_to_the_range_edges() {
        // A counter going up 1/s, sampled every 10 s inside a 60 s range.
        let ts: Vec<i64> = (0..6).map(|i| 5_000 + i * 10_000).collect();
        let vs: Vec<f64> = (0..6).map(|i| 100.0 + i as f64 * 10.0).collect();
        let r = extrapolated_rate(&ts, &vs, 0, 60_000, true, true).unwrap();
        assert!((r - 1.0).abs() < 1e-9, "{r}");
        // A reset adds the value before it.
        let vs = [5.0, 10.0, 2.0, 7.0];
        let ts = [0, 10_000, 20_000, 30_000];
        let inc = extrapolated_rate(&ts, &vs, 0, 30_000, true, false).unwrap();
        assert!((inc - 12.0).abs() < 1e-9, "{inc}");
    }
}
