//! Evaluation over hand-made series (the conformance test against a real Prometheus is
//! in tests/tests/e2e/promql.rs).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use promql_parser::parser;

use super::PromError;
use super::eval::{Evaluator, selections};
use super::store::Loaded;
use super::value::{STALE_NAN_BITS, Series, Value, labels_from};

fn series(labels: &[(&str, &str)], points: &[(i64, f64)]) -> Series {
    let labels = labels_from(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    Series {
        labels,
        t: points.iter().map(|p| p.0).collect(),
        v: points.iter().map(|p| p.1).collect(),
        has_stale: points.iter().any(|p| p.1.to_bits() == STALE_NAN_BITS),
    }
}

/// Evaluates `query` at `t` over `data`, every selector seeing the series it matches.
fn eval(query: &str, t: i64, data: &[Series]) -> Result<Value, PromError> {
    let expr = parser::parse(query).map_err(PromError::BadData)?;
    let mut wanted = Vec::new();
    selections(&expr, t, t, (t, t), &mut wanted);
    let all: Vec<Arc<Series>> = data
        .iter()
        .map(|s| {
            Arc::new(Series {
                labels: s.labels.clone(),
                t: s.t.clone(),
                v: s.v.clone(),
                has_stale: s.has_stale,
            })
        })
        .collect();
    let mut loaded: Loaded = HashMap::new();
    for sel in &wanted {
        loaded.insert(
            sel.id,
            all.iter()
                .filter(|s| sel.matches(&s.labels))
                .cloned()
                .collect(),
        );
    }
    let ev = Evaluator {
        loaded: &loaded,
        start: t,
        end: t,
        deadline: Instant::now() + Duration::from_secs(10),
        timeout: Duration::from_secs(10),
        max_points: 1_000_000,
        stopped: &tokio_util::sync::CancellationToken::new(),
    };
    ev.eval(&expr, t)
}

fn values(v: Value) -> Vec<(String, f64)> {
    let Value::Vector(samples) = v else {
        panic!("not a vector: {v:?}")
    };
    let mut out: Vec<(String, f64)> = samples
        .into_iter()
        .map(|s| {
            (
                s.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
                s.v,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn counters() -> Vec<Series> {
    let a: Vec<(i64, f64)> = (0..=40).map(|i| (i * 15_000, i as f64 * 15.0)).collect();
    let b: Vec<(i64, f64)> = (0..=40).map(|i| (i * 15_000, i as f64 * 30.0)).collect();
    vec![
        series(
            &[("__name__", "req_total"), ("job", "api"), ("code", "200")],
            &a,
        ),
        series(
            &[("__name__", "req_total"), ("job", "api"), ("code", "500")],
            &b,
        ),
    ]
}

#[test]
fn staleness_and_lookback() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let data = vec![
        series(
            &[("__name__", "up"), ("i", "a")],
            &[(0, 1.0), (60_000, 1.0), (120_000, stale)],
        ),
        series(&[("__name__", "up"), ("i", "b")], &[(0, 1.0)]),
    ];
    // At 90 s both are present (b's sample is 90 s old, inside the 5 min lookback).
    assert_eq!(values(eval("up", 90_000, &data).unwrap()).len(), 2);
    // After a's staleness marker only b remains; after 5 min b is gone too.
    assert_eq!(
        values(eval("up", 130_000, &data).unwrap()),
        vec![("__name__=up,i=b".into(), 1.0)]
    );
    assert!(values(eval("up", 301_000, &data).unwrap()).is_empty());
    // The marker is not a sample of a range.
    assert_eq!(
        values(eval("count_over_time(up[10m])", 130_000, &data).unwrap())[0].1,
        2.0
    );
}

#[test]
fn rate_sum_by_and_matching() {
    let data = counters();
    let got = values(eval("sum by (job) (rate(req_total[5m]))", 600_000, &data).unwrap());
    assert_eq!(got.len(), 1);
    assert!((got[0].1 - 3.0).abs() < 1e-9, "{got:?}");
    let ratio = values(
        eval(
            r#"rate(req_total{code="500"}[5m]) / ignoring(code) rate(req_total{code="200"}[5m])"#,
            600_000,
            &data,
        )
        .unwrap(),
    );
    assert_eq!(ratio, vec![("job=api".into(), 2.0)]);
    let err = eval("req_total + on(job) req_total", 600_000, &data).unwrap_err();
    assert!(
        matches!(err, PromError::Execution(ref m) if m.contains("many-to-many")),
        "{err:?}"
    );
    let grouped = values(
        eval(
            r#"req_total / on(job) group_left sum by (job) (req_total)"#,
            600_000,
            &data,
        )
        .unwrap(),
    );
    assert_eq!(grouped.len(), 2);
    assert!((grouped[0].1 + grouped[1].1 - 1.0).abs() < 1e-9);
}

#[test]
fn comparisons_filter_or_return_bool() {
    let data = counters();
    assert_eq!(
        values(eval("req_total > 700", 600_000, &data).unwrap()).len(),
        1
    );
    let b = values(eval("req_total > bool 700", 600_000, &data).unwrap());
    assert_eq!(b.iter().map(|x| x.1).collect::<Vec<_>>(), vec![0.0, 1.0]);
    assert!(!b[0].0.contains("__name__"), "bool drops the name");
}

#[test]
fn absent_and_label_replace() {
    let data = counters();
    assert_eq!(
        values(eval(r#"absent(nope{job="x", a=~"y"})"#, 600_000, &data).unwrap()),
        vec![("job=x".into(), 1.0)]
    );
    assert!(values(eval("absent(req_total)", 600_000, &data).unwrap()).is_empty());
    let replaced = values(
        eval(
            r#"label_replace(req_total, "class", "${1}xx", "code", "(.).*")"#,
            600_000,
            &data,
        )
        .unwrap(),
    );
    assert!(replaced[0].0.contains("class=2xx"), "{replaced:?}");
}

#[test]
fn unsupported_functions_are_named() {
    let err = eval(
        "holt_winters(req_total[5m], 0.5, 0.5)",
        600_000,
        &counters(),
    )
    .unwrap_err();
    assert!(
        matches!(err, PromError::BadData(ref m) if m.contains("holt_winters")),
        "{err:?}"
    );
}

#[test]
fn subqueries_step_on_absolute_multiples() {
    let data = counters();
    // max over 5 min of a 1 min-resolution rate: the rate is constant, so it is that rate.
    let got = values(eval("max_over_time(rate(req_total[1m])[5m:1m])", 600_000, &data).unwrap());
    assert!(
        (got[0].1 - 1.0).abs() < 1e-9 && (got[1].1 - 2.0).abs() < 1e-9,
        "{got:?}"
    );
}

#[test]
fn extreme_times_and_offsets_do_not_overflow() {
    let data = counters();
    for q in [
        "req_total offset 100000000y",
        "req_total offset -100000000y",
        "max_over_time(req_total[100000000y:1h])",
        "rate(req_total[5m] @ 9999999999999)",
    ] {
        // An answer (probably empty) or a clear error, never a panic or a runaway.
        for t in [super::eval::MAX_MS, -super::eval::MAX_MS, 600_000] {
            if let Err(e) = eval(q, t, &data) {
                assert!(matches!(e, PromError::Execution(_)), "{q}: {e:?}");
            }
        }
    }
}

mod fuzz {
    use proptest::prelude::*;

    fn leaf() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "req_total",
            r#"req_total{code="500"}"#,
            r#"req_total{code=~"5.."}"#,
            r#"{__name__=~"req.*"}"#,
            "nope",
            "1",
            "-2.5",
            "0",
            "NaN",
            "Inf",
            "time()",
            r#""s""#,
            "req_total offset 1m",
            "req_total @ 300",
        ])
        .prop_map(String::from)
    }

    fn expr() -> impl Strategy<Value = String> {
        leaf().prop_recursive(4, 32, 3, |inner| {
            let range = prop::sample::select(vec!["[1m]", "[5m]", "[0s]", "[5m:1m]", "[10m:]"]);
            let func = prop::sample::select(vec![
                "rate",
                "irate",
                "increase",
                "delta",
                "deriv",
                "changes",
                "resets",
                "avg_over_time",
                "stddev_over_time",
                "last_over_time",
                "absent_over_time",
                "abs",
                "ln",
                "sqrt",
                "round",
                "absent",
                "scalar",
                "vector",
                "timestamp",
                "sort",
                "histogram_quantile",
                "quantile_over_time",
                "clamp",
                "label_replace",
                "predict_linear",
                "day_of_week",
            ]);
            let op = prop::sample::select(vec![
                "+",
                "-",
                "*",
                "/",
                "%",
                "^",
                "==",
                "!=",
                ">",
                "<=",
                "> bool",
                "and",
                "or",
                "unless",
                "/ on(job)",
                "* ignoring(code) group_left",
                "+ on(job) group_right",
            ]);
            let agg = prop::sample::select(vec![
                "sum",
                "avg",
                "min",
                "max",
                "count",
                "stddev",
                "group",
                "topk(2,",
                "bottomk(0,",
                "quantile(0.9,",
                "count_values(\"v\",",
            ]);
            prop_oneof![
                (inner.clone(), range.clone()).prop_map(|(e, r)| format!("({e}){r}")),
                (inner.clone(), range).prop_map(|(e, r)| format!("{e}{r}")),
                (func.clone(), inner.clone()).prop_map(|(f, e)| format!("{f}({e})")),
                (func, inner.clone(), inner.clone()).prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
                (inner.clone(), op, inner.clone()).prop_map(|(a, o, b)| format!("({a}) {o} ({b})")),
                (agg, inner).prop_map(|(g, e)| if g.ends_with(',') {
                    format!("{g} {e}) by (job)")
                } else {
                    format!("{g} without (code) ({e})")
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]
        /// Whatever parses evaluates to a value or an error, never a panic.
        #[test]
        fn any_parsed_expression_evaluates_without_panicking(q in expr(), t in 0i64..1_000_000) {
            if promql_parser::parser::parse(&q).is_ok() {
                let _ = super::eval(&q, t, &super::counters());
            }
        }
    }
}
