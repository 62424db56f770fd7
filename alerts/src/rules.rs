//! Rule files: Prometheus's format (`groups:` → `name`, `interval`, `rules:` → `alert`,
//! `expr`, `for`, `keep_firing_for`, `labels`, `annotations`) plus Porthole's log and
//! trace rules (`logs` or `spans`, with `filters`, `window`, `condition`, `by`) and
//! `action`. Everything is checked
//! when the files load; an error names the file, group, rule and field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use promql_parser::parser::Expr;
use serde::Deserialize;

use crate::template::Template;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    groups: Vec<GroupSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    name: String,
    interval: Option<String>,
    rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    alert: Option<String>,
    record: Option<String>,
    expr: Option<String>,
    logs: Option<String>,
    spans: Option<String>,
    #[serde(default)]
    filters: BTreeMap<String, String>,
    window: Option<String>,
    condition: Option<String>,
    by: Option<String>,
    #[serde(rename = "for")]
    hold: Option<String>,
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    action: Option<ActionSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionSpec {
    kind: String,
    target: TargetSpec,
    cooldown: Option<String>,
    max_per_hour: Option<u32>,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetSpec {
    namespace: String,
    deployment: Option<String>,
    pod: Option<String>,
}

/// Every loaded group, in file then group order.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub groups: Vec<Arc<Group>>,
}

#[derive(Debug)]
pub struct Group {
    pub file: String,
    pub name: String,
    pub interval: Duration,
    pub rules: Vec<Rule>,
}

#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub kind: RuleKind,
    /// `for`: how long a condition must hold before the alert fires.
    pub hold: Duration,
    pub keep_firing_for: Duration,
    pub labels: Vec<(String, Template)>,
    pub annotations: Vec<(String, Template)>,
    pub action: Option<Action>,
}

#[derive(Debug)]
pub enum RuleKind {
    Metric {
        expr: Arc<Expr>,
        text: String,
    },
    Logs {
        query: String,
        filters: Vec<(String, String)>,
        window: Duration,
        by: Option<String>,
        op: CmpOp,
        threshold: f64,
    },
    /// Over the spans of a window: their count, errors, error rate or a latency quantile.
    Spans {
        query: String,
        /// Promoted fields and `name` (the span name, as a phrase).
        filters: Vec<(String, String)>,
        window: Duration,
        by: Option<String>,
        measure: SpanMeasure,
        op: CmpOp,
        /// In the measure's unit; latencies in seconds, as Prometheus keeps them.
        threshold: f64,
    },
}

/// What a trace rule compares: `count`, `errors`, `error_rate` or `p<N>` (e.g. `p99`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SpanMeasure {
    Count,
    Errors,
    ErrorRate,
    /// A latency quantile, 0 < q ≤ 1.
    Quantile(f64),
}

impl SpanMeasure {
    fn parse(word: &str) -> Option<Self> {
        match word {
            "count" => Some(Self::Count),
            "errors" => Some(Self::Errors),
            "error_rate" => Some(Self::ErrorRate),
            _ => {
                let percent: f64 = word.strip_prefix('p')?.parse().ok()?;
                (percent > 0.0 && percent <= 100.0).then_some(Self::Quantile(percent / 100.0))
            }
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Count => "count".into(),
            Self::Errors => "errors".into(),
            Self::ErrorRate => "error_rate".into(),
            Self::Quantile(q) => format!("p{} (seconds)", q * 100.0),
        }
    }
}

/// The promoted fields a trace rule may filter and group on (beside `name`, filter only).
pub const SPAN_FIELDS: [&str; 5] = ["service", "namespace", "pod", "container", "version"];

impl RuleKind {
    /// The rule's query as `/api/v1/rules` shows it.
    pub fn describe(&self) -> String {
        match self {
            RuleKind::Metric { text, .. } => text.clone(),
            RuleKind::Logs {
                query,
                filters,
                window,
                by,
                op,
                threshold,
            } => {
                let head = search_head("logs", query, filters, *window, by);
                format!("{head}: count {} {threshold}", op.symbol())
            }
            RuleKind::Spans {
                query,
                filters,
                window,
                by,
                measure,
                op,
                threshold,
            } => {
                let head = search_head("spans", query, filters, *window, by);
                format!("{head}: {} {} {threshold}", measure.describe(), op.symbol())
            }
        }
    }
}

fn search_head(
    signal: &str,
    query: &str,
    filters: &[(String, String)],
    window: Duration,
    by: &Option<String>,
) -> String {
    let filters: Vec<String> = filters.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    let by = by.as_ref().map(|b| format!(" by {b}")).unwrap_or_default();
    format!(
        "{signal}({query:?}{}{}) over {}{by}",
        if filters.is_empty() { "" } else { ", " },
        filters.join(", "),
        humantime::format_duration(window),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl CmpOp {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    RolloutRestart,
    Rollback,
    DeletePod,
}

#[derive(Debug)]
pub struct Action {
    pub kind: ActionKind,
    pub namespace: Template,
    pub deployment: Option<Template>,
    pub pod: Option<Template>,
    pub cooldown: Duration,
    pub max_per_hour: u32,
    pub dry_run: bool,
}

pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(600);
pub const DEFAULT_MAX_PER_HOUR: u32 = 3;

/// Loads every `*.yml`/`*.yaml` file in `dir` (sorted by name). All errors are returned
/// together; on any error nothing is loaded.
pub fn load_dir(dir: &Path, default_interval: Duration) -> Result<RuleSet, Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![format!(
            "{}: cannot read the rules directory: {e}",
            dir.display()
        )]
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    let mut set = RuleSet::default();
    let mut errors = Vec::new();
    for path in files {
        let name = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse_file(&name, &text, default_interval) {
                Ok(groups) => set.groups.extend(groups.into_iter().map(Arc::new)),
                Err(mut e) => errors.append(&mut e),
            },
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// Fingerprint of the rule files' names and contents, to notice changes cheaply.
pub fn dir_fingerprint(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            path.hash(&mut hasher);
            if let Ok(bytes) = std::fs::read(&path) {
                bytes.hash(&mut hasher);
            }
        }
    }
    hasher.finish()
}

pub fn parse_file(
    file: &str,
    text: &str,
    default_interval: Duration,
) -> Result<Vec<Group>, Vec<String>> {
    let spec: FileSpec = serde_norway::from_str(text).map_err(|e| vec![format!("{file}: {e}")])?;
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut names = BTreeSet::new();
    for (gi, g) in spec.groups.into_iter().enumerate() {
        let at = |field: &str, message: String| {
            format!(
                "{file}: group {:?} (#{}): {field}: {message}",
                g.name,
                gi + 1
            )
        };
        if g.name.trim().is_empty() {
            errors.push(at("name", "must not be empty".into()));
        }
        if !names.insert(g.name.clone()) {
            errors.push(at("name", "repeated in the same file".into()));
        }
        let interval = match &g.interval {
            None => default_interval,
            Some(text) => match positive_duration(text) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(at("interval", e));
                    default_interval
                }
            },
        };
        let mut rules = Vec::new();
        for (ri, r) in g.rules.into_iter().enumerate() {
            let label = r.alert.clone().or(r.record.clone()).unwrap_or_default();
            let at = |field: &str, message: String| {
                format!(
                    "{file}: group {:?}: rule {label:?} (#{}): {field}: {message}",
                    g.name,
                    ri + 1
                )
            };
            match parse_rule(r) {
                Ok(rule) => rules.push(rule),
                Err(problems) => errors.extend(problems.into_iter().map(|(f, m)| at(f, m))),
            }
        }
        groups.push(Group {
            file: file.to_string(),
            name: g.name,
            interval,
            rules,
        });
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

type Problems = Vec<(&'static str, String)>;

fn parse_rule(r: RuleSpec) -> Result<Rule, Problems> {
    let mut problems: Problems = Vec::new();
    if r.record.is_some() {
        problems.push((
            "record",
            "recording rules are not supported; use `alert`".into(),
        ));
    }
    let name = match r.alert {
        Some(name) if !name.trim().is_empty() => name,
        Some(_) => {
            problems.push(("alert", "must not be empty".into()));
            String::new()
        }
        None => {
            if r.record.is_none() {
                problems.push(("alert", "missing".into()));
            }
            String::new()
        }
    };
    let log_fields =
        r.window.is_some() || r.condition.is_some() || r.by.is_some() || !r.filters.is_empty();
    let given = [r.expr.is_some(), r.logs.is_some(), r.spans.is_some()];
    let kind = match (r.expr, r.logs, r.spans) {
        _ if given.iter().filter(|g| **g).count() > 1 => {
            problems.push((
                "expr",
                "give one of `expr` (PromQL), `logs` or `spans` (a search), not several".into(),
            ));
            None
        }
        (None, None, None) => {
            problems.push((
                "expr",
                "missing: give `expr` (PromQL), `logs` or `spans` (a search)".into(),
            ));
            None
        }
        (Some(text), _, _) => {
            if log_fields {
                problems.push((
                    "expr",
                    "`filters`, `window`, `condition` and `by` belong to log and trace rules \
                     (`logs:`, `spans:`)"
                        .into(),
                ));
            }
            match porthole_query::promql::parse(&text) {
                Ok(expr) => Some(RuleKind::Metric {
                    expr: Arc::new(expr),
                    text,
                }),
                Err(e) => {
                    problems.push(("expr", format!("{text:?}: {e}")));
                    None
                }
            }
        }
        (None, Some(query), _) => {
            let search = SearchSpec::new(query, r.filters, r.window, r.condition, r.by);
            parse_log_rule(search, &mut problems)
        }
        (None, None, Some(query)) => {
            let search = SearchSpec::new(query, r.filters, r.window, r.condition, r.by);
            parse_span_rule(search, &mut problems)
        }
    };
    let hold = optional_duration(&r.hold, "for", &mut problems);
    let keep_firing_for = optional_duration(&r.keep_firing_for, "keep_firing_for", &mut problems);
    let labels = templates(r.labels, "labels", true, &mut problems);
    let annotations = templates(r.annotations, "annotations", false, &mut problems);
    let action = r.action.and_then(|a| parse_action(a, &mut problems));
    match kind {
        Some(kind) if problems.is_empty() => Ok(Rule {
            name,
            kind,
            hold,
            keep_firing_for,
            labels,
            annotations,
            action,
        }),
        _ => Err(problems),
    }
}

/// The fields log and trace rules share, as written.
struct SearchSpec {
    query: String,
    filters: BTreeMap<String, String>,
    window: Option<String>,
    condition: Option<String>,
    by: Option<String>,
}

impl SearchSpec {
    fn new(
        query: String,
        filters: BTreeMap<String, String>,
        window: Option<String>,
        condition: Option<String>,
        by: Option<String>,
    ) -> Self {
        Self {
            query,
            filters,
            window,
            condition,
            by,
        }
    }

    /// Checks the query, filters, `by` and window: `filterable` and `groupable` name the
    /// fields allowed. The condition is left to the caller.
    fn check(
        &self,
        field: &'static str,
        filterable: &[&str],
        groupable: &[&str],
        problems: &mut Problems,
    ) -> Duration {
        if let Err(e) = porthole_query::parse_user_query(&self.query) {
            problems.push((field, e.to_string()));
        }
        for name in self.filters.keys() {
            if !filterable.contains(&name.as_str()) {
                problems.push((
                    "filters",
                    format!("cannot filter on {name:?}; use one of {filterable:?}"),
                ));
            }
        }
        if let Some(by) = &self.by
            && !groupable.contains(&by.as_str())
        {
            problems.push((
                "by",
                format!("cannot count by {by:?}; use one of {groupable:?}"),
            ));
        }
        match &self.window {
            None => {
                problems.push((
                    "window",
                    "missing: these rules look at a window, like `5m`".into(),
                ));
                Duration::ZERO
            }
            Some(text) => positive_duration(text).unwrap_or_else(|e| {
                problems.push(("window", e));
                Duration::ZERO
            }),
        }
    }
}

fn parse_log_rule(spec: SearchSpec, problems: &mut Problems) -> Option<RuleKind> {
    let before = problems.len();
    let fields = &porthole_query::FILTER_FIELDS;
    let window = spec.check("logs", fields, fields, problems);
    let condition = spec.condition.as_deref().map(|text| {
        let bad = || format!("{text:?} is not `count <op> <number>` (op one of > >= < <= == !=)");
        match split_condition(text) {
            Some(("count", op, number)) => parse_number(number).map(|n| (op, n)).ok_or_else(bad),
            _ => Err(bad()),
        }
    });
    let (op, threshold) =
        condition_or_problem(condition, "`count > 5`", (CmpOp::Gt, 0.0), problems);
    (problems.len() == before).then(|| RuleKind::Logs {
        query: spec.query,
        filters: spec.filters.into_iter().collect(),
        window,
        by: spec.by,
        op,
        threshold,
    })
}

fn parse_span_rule(spec: SearchSpec, problems: &mut Problems) -> Option<RuleKind> {
    let before = problems.len();
    let mut filterable = SPAN_FIELDS.to_vec();
    filterable.push("name");
    let window = spec.check("spans", &filterable, &SPAN_FIELDS, problems);
    let condition = spec.condition.as_deref().map(|text| {
        let bad = || {
            format!(
                "{text:?} is not `<measure> <op> <value>`: measure count, errors, error_rate \
                 or p<N> (like p99, compared with a duration like 500ms), op one of \
                 > >= < <= == !="
            )
        };
        let (word, op, value) = split_condition(text).ok_or_else(bad)?;
        let measure = SpanMeasure::parse(word).ok_or_else(bad)?;
        let threshold = match measure {
            SpanMeasure::Quantile(_) => parse_number(value)
                .or_else(|| {
                    promql_parser::util::parse_duration(value.trim())
                        .ok()
                        .map(|d| d.as_secs_f64())
                })
                .ok_or_else(bad)?,
            _ => parse_number(value).ok_or_else(bad)?,
        };
        Ok((measure, op, threshold))
    });
    let (measure, op, threshold) = condition_or_problem(
        condition,
        "`error_rate > 0.05` or `p99 > 500ms`",
        (SpanMeasure::Count, CmpOp::Gt, 0.0),
        problems,
    );
    (problems.len() == before).then(|| RuleKind::Spans {
        query: spec.query,
        filters: spec.filters.into_iter().collect(),
        window,
        by: spec.by,
        measure,
        op,
        threshold,
    })
}

/// The parsed condition, or `placeholder` with the problem recorded (missing or bad).
fn condition_or_problem<T>(
    condition: Option<Result<T, String>>,
    example: &str,
    placeholder: T,
    problems: &mut Problems,
) -> T {
    match condition {
        None => {
            problems.push(("condition", format!("missing: like {example}")));
            placeholder
        }
        Some(Err(e)) => {
            problems.push(("condition", e));
            placeholder
        }
        Some(Ok(c)) => c,
    }
}

/// `<word> <op> <value>`, with op one of `> >= < <= == !=`.
fn split_condition(text: &str) -> Option<(&str, CmpOp, &str)> {
    let text = text.trim();
    let at = text.find(['>', '<', '=', '!'])?;
    let (word, rest) = text.split_at(at);
    let (op, value) = [
        (">=", CmpOp::Ge),
        ("<=", CmpOp::Le),
        ("==", CmpOp::Eq),
        ("!=", CmpOp::Ne),
        (">", CmpOp::Gt),
        ("<", CmpOp::Lt),
    ]
    .into_iter()
    .find_map(|(symbol, op)| rest.strip_prefix(symbol).map(|v| (op, v)))?;
    Some((word.trim(), op, value.trim()))
}

fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn parse_action(a: ActionSpec, problems: &mut Problems) -> Option<Action> {
    let before = problems.len();
    let kind = match a.kind.as_str() {
        "rollout_restart" => Some(ActionKind::RolloutRestart),
        "rollback" => Some(ActionKind::Rollback),
        "delete_pod" => Some(ActionKind::DeletePod),
        other => {
            problems.push((
                "action.kind",
                format!("{other:?}: use rollout_restart, rollback or delete_pod"),
            ));
            None
        }
    };
    let template =
        |text: &str, field: &'static str, problems: &mut Problems| match Template::parse(text) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push((field, e));
                None
            }
        };
    let namespace = template(&a.target.namespace, "action.target.namespace", problems);
    let deployment = a
        .target
        .deployment
        .as_deref()
        .and_then(|d| template(d, "action.target.deployment", problems));
    let pod = a
        .target
        .pod
        .as_deref()
        .and_then(|p| template(p, "action.target.pod", problems));
    match kind {
        Some(ActionKind::RolloutRestart | ActionKind::Rollback)
            if a.target.deployment.is_none() =>
        {
            problems.push((
                "action.target.deployment",
                format!("missing: {} acts on a Deployment", a.kind),
            ));
        }
        Some(ActionKind::DeletePod) if a.target.pod.is_none() => {
            problems.push((
                "action.target.pod",
                "missing: delete_pod needs the pod, e.g. '{{ $labels.pod }}'".into(),
            ));
        }
        _ => {}
    }
    let cooldown = match &a.cooldown {
        None => DEFAULT_COOLDOWN,
        Some(text) => positive_duration(text).unwrap_or_else(|e| {
            problems.push(("action.cooldown", e));
            DEFAULT_COOLDOWN
        }),
    };
    let max_per_hour = a.max_per_hour.unwrap_or(DEFAULT_MAX_PER_HOUR);
    if max_per_hour == 0 {
        problems.push((
            "action.max_per_hour",
            "must be at least 1 (use dry_run: true to never act)".into(),
        ));
    }
    if problems.len() != before {
        return None;
    }
    Some(Action {
        kind: kind?,
        namespace: namespace?,
        deployment,
        pod,
        cooldown,
        max_per_hour,
        dry_run: a.dry_run,
    })
}

fn templates(
    map: BTreeMap<String, String>,
    field: &'static str,
    check_names: bool,
    problems: &mut Problems,
) -> Vec<(String, Template)> {
    let mut out = Vec::new();
    for (name, text) in map {
        if check_names && !is_label_name(&name) {
            problems.push((field, format!("{name:?} is not a valid label name")));
            continue;
        }
        match Template::parse(&text) {
            Ok(t) => out.push((name, t)),
            Err(e) => problems.push((field, format!("{name}: {e}"))),
        }
    }
    out
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn optional_duration(
    text: &Option<String>,
    field: &'static str,
    problems: &mut Problems,
) -> Duration {
    match text {
        None => Duration::ZERO,
        Some(text) => promql_parser::util::parse_duration(text).unwrap_or_else(|e| {
            problems.push((field, format!("{text:?}: {e}")));
            Duration::ZERO
        }),
    }
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match promql_parser::util::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("{text:?}: must be more than zero")),
        Err(e) => Err(format!("{text:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_full_file_loads() {
        let text = r#"
groups:
  - name: checkout
    interval: 15s
    rules:
      - alert: CheckoutErrors
        logs: 'severity:ERROR AND "payment failed"'
        filters: {service: checkout}
        window: 1m
        condition: count > 5
        by: version
        for: 30s
        labels: {severity: page}
        annotations: {summary: 'checkout logged {{ $value }} errors in 1m'}
        action:
          kind: rollout_restart
          target: {namespace: shop, deployment: checkout}
          cooldown: 10m
          max_per_hour: 3
      - alert: HighRate
        expr: sum(rate(http_requests_total[5m])) > 10
        keep_firing_for: 5m
"#;
        let groups = parse_file("a.yml", text, MINUTE).unwrap();
        assert_eq!(groups[0].interval, Duration::from_secs(15));
        let rule = &groups[0].rules[0];
        assert_eq!(rule.hold, Duration::from_secs(30));
        assert!(
            matches!(rule.kind, RuleKind::Logs { op: CmpOp::Gt, threshold, .. } if threshold == 5.0)
        );
        assert_eq!(
            rule.action.as_ref().unwrap().kind,
            ActionKind::RolloutRestart
        );
        assert_eq!(groups[0].rules[1].keep_firing_for, Duration::from_secs(300));
    }

    #[test]
    fn errors_name_file_group_rule_and_field() {
        let cases = [
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: 'sum(('\n",
                "rule \"A\" (#1): expr:",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5x\n",
                "rule \"A\" (#1): for:",
            ),
            (
                "groups:\n  - name: g\n    interval: 0s\n    rules: []\n",
                "group \"g\" (#1): interval:",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        logs: error\n        window: 1m\n        condition: count ~ 3\n",
                "rule \"A\" (#1): condition:",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        logs: error\n        window: 1m\n        condition: count > 3\n        filters: {colour: red}\n",
                "rule \"A\" (#1): filters:",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        action: {kind: reboot, target: {namespace: x}}\n",
                "rule \"A\" (#1): action.kind:",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        action: {kind: rollback, target: {namespace: x}}\n",
                "rule \"A\" (#1): action.target.deployment:",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        labels: {'bad-name': x}\n",
                "rule \"A\" (#1): labels:",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations: {s: '{{ $labels }}'}\n",
                "rule \"A\" (#1): annotations:",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: up\n",
                "rule \"r\" (#1): record:",
            ),
            (
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        exr: up\n",
                "unknown field `exr`",
            ),
        ];
        for (text, expected) in cases {
            let errors = parse_file("rules/x.yml", text, MINUTE).unwrap_err();
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with("rules/x.yml: ") && e.contains(expected)),
                "{text}\n→ {errors:?}"
            );
        }
    }

    fn log_condition(text: &str) -> Result<(CmpOp, f64), Vec<String>> {
        let file = format!(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        logs: error\n        window: 1m\n        condition: '{text}'\n"
        );
        let groups = parse_file("x.yml", &file, MINUTE)?;
        match groups[0].rules[0].kind {
            RuleKind::Logs { op, threshold, .. } => Ok((op, threshold)),
            _ => unreachable!("a log rule"),
        }
    }

    fn span_condition(text: &str) -> Result<(SpanMeasure, CmpOp, f64), Vec<String>> {
        let file = format!(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        spans: ''\n        filters: {{service: checkout, name: 'POST /pay'}}\n        window: 5m\n        by: version\n        condition: '{text}'\n"
        );
        let groups = parse_file("x.yml", &file, MINUTE)?;
        match groups[0].rules[0].kind {
            RuleKind::Spans {
                measure,
                op,
                threshold,
                ..
            } => Ok((measure, op, threshold)),
            _ => unreachable!("a span rule"),
        }
    }

    #[test]
    fn conditions_parse() {
        assert_eq!(log_condition("count >= 2.5").unwrap(), (CmpOp::Ge, 2.5));
        assert_eq!(log_condition("count<1").unwrap(), (CmpOp::Lt, 1.0));
        assert!(log_condition("sum > 1").is_err());
        assert!(log_condition("count > NaN").is_err());
        assert!(
            log_condition("error_rate > 0.1").is_err(),
            "log rules count"
        );
        assert_eq!(
            span_condition("error_rate > 0.05").unwrap(),
            (SpanMeasure::ErrorRate, CmpOp::Gt, 0.05)
        );
        assert_eq!(
            span_condition("p99 >= 500ms").unwrap(),
            (SpanMeasure::Quantile(0.99), CmpOp::Ge, 0.5)
        );
        assert_eq!(
            span_condition("p50 < 2").unwrap(),
            (SpanMeasure::Quantile(0.5), CmpOp::Lt, 2.0)
        );
        assert_eq!(
            span_condition("errors != 0").unwrap(),
            (SpanMeasure::Errors, CmpOp::Ne, 0.0)
        );
        for bad in [
            "p0 > 1s",
            "p101 > 1s",
            "latency > 1s",
            "count > 5ms",
            "p99 > soon",
        ] {
            let errors = span_condition(bad).unwrap_err();
            assert!(
                errors.iter().any(|e| e.contains("condition:")),
                "{bad}: {errors:?}"
            );
        }
    }

    #[test]
    fn span_rules_check_their_fields() {
        let rule = |extra: &str| {
            format!(
                "groups:\n  - name: g\n    rules:\n      - alert: A\n        spans: ''\n        window: 5m\n        condition: error_rate > 0.1\n{extra}"
            )
        };
        let errors = parse_file(
            "x.yml",
            &rule("        filters: {severity: ERROR}\n"),
            MINUTE,
        )
        .unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("filters: cannot filter on \"severity\"")),
            "{errors:?}"
        );
        let errors = parse_file("x.yml", &rule("        by: name\n"), MINUTE).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("by: cannot count by \"name\"")),
            "{errors:?}"
        );
        let errors = parse_file("x.yml", &rule("        logs: error\n"), MINUTE).unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains("not several")),
            "{errors:?}"
        );
        assert!(parse_file("x.yml", &rule(""), MINUTE).is_ok());
    }
}
