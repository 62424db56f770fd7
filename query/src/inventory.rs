//! `GET /api/v1/inventory`: what is running now, from the collectors' inventory reports
//! (log records of scope `porthole.inventory`, one per pod every minute and on change),
//! grouped by service and version, each pod with its health (error logs, last log) and its
//! configuration drift: a watched file or environment variable whose fingerprint differs
//! from the majority of pods of the same service and version, or a file changed since the
//! pod started. Only names and hashes are ever reported, never contents or values.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::api::{QueryState, query_params, time_range};
use crate::time::{format_nanos, now_micros, parse_time};
use crate::{QueryError, SqlLimits};

/// The scope of the collectors' inventory reports.
pub const INVENTORY_SCOPE: &str = "porthole.inventory";
/// The scope of the collector's records of why a container ended (`pod_logs`).
pub const POD_STATUS_SCOPE: &str = "porthole.pod_status";
/// Reports read at most (latest per pod); beyond it the answer says it was cut.
const MAX_PODS: usize = 10_000;
/// A pod whose last report is older than this many of its intervals is `stale`.
const STALE_INTERVALS: f64 = 3.0;
const DEFAULT_RANGE_MICROS: i64 = 15 * 60 * 1_000_000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct InventoryParams {
    /// Only this service.
    service: Option<String>,
    /// `running` (default): pods reporting now; `all`: also pods that stopped or went
    /// silent in the range.
    status: Option<String>,
    /// Reports and health since (RFC 3339, unix ns or `now-1h`); default 15 minutes
    /// before `end`.
    start: Option<String>,
    /// Default now.
    end: Option<String>,
}

/// A watched file or environment variable that sets a pod apart.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Drift {
    /// `file` or `env`.
    pub kind: String,
    /// The file's path or the variable's name.
    pub name: String,
    /// `differs` (from the majority of its pods), `missing` (the majority has it),
    /// `extra` (the majority has not), `no_majority` (its pods disagree with no majority),
    /// or `changed_since_start` (the file changed inside the running container).
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Container {
    pub name: Option<String>,
    pub image: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pod {
    pub namespace: Option<String>,
    pub pod: String,
    pub node: Option<String>,
    pub containers: Vec<Container>,
    /// When its collector started (about when the pod did), RFC 3339.
    pub started_at: Option<String>,
    /// Its latest inventory report.
    pub last_report: String,
    /// `running`, `stopped` (its collector said so on shutdown) or `stale` (no report for
    /// three intervals).
    pub status: String,
    /// Log records in the range, and those at ERROR or FATAL.
    pub logs: u64,
    pub error_logs: u64,
    /// Error logs per second over the range.
    pub error_log_rate: f64,
    /// Its newest log record in the range.
    pub last_log: Option<String>,
    /// Why one of its containers last ended in the range (an OOM kill, an exit code), as
    /// its collector read it from the pod's status (`pod_logs`).
    pub last_exit: Option<LastExit>,
    pub drift: Vec<Drift>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LastExit {
    pub container: Option<String>,
    /// The kubelet's reason: `OOMKilled`, `Error`, `Completed`…
    pub reason: Option<String>,
    pub exit_code: Option<i64>,
    pub restart_count: Option<i64>,
    /// When it ended, RFC 3339.
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionPods {
    pub version: String,
    /// The earliest `started_at` of its pods.
    pub first_seen: Option<String>,
    pub pods: Vec<Pod>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceInventory {
    pub service: String,
    pub versions: Vec<VersionPods>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Inventory {
    pub start: String,
    pub end: String,
    pub services: Vec<ServiceInventory>,
    /// Pods listed with at least one drift.
    pub drifted_pods: usize,
    /// True when there were more pods than the API lists.
    pub truncated: bool,
}

/// One pod's latest report, parsed.
struct Report {
    service: String,
    version: String,
    namespace: Option<String>,
    pod: String,
    time_micros: i64,
    body: Map<String, Value>,
}

/// What is running now, by service and version, with each pod's health and drift.
#[utoipa::path(get, path = "/api/v1/inventory", params(InventoryParams), responses(
    (status = 200, body = Inventory),
    (status = 400, body = crate::openapi::ErrorBody),
    (status = 504, description = "Ran past --query-timeout and was stopped", body = crate::openapi::ErrorBody),
))]
pub(crate) async fn inventory(
    State(state): State<QueryState>,
    uri: Uri,
) -> Result<Json<Inventory>, QueryError> {
    let params: InventoryParams = query_params(&uri)?;
    let all = match params.status.as_deref() {
        None | Some("running") => false,
        Some("all") => true,
        Some(other) => {
            return Err(QueryError::BadRequest(format!(
                "status must be `running` or `all`, not {other:?}"
            )));
        }
    };
    let (start, end) = match &params.start {
        Some(_) => time_range(&params.start, &params.end)?,
        None => {
            let (_, end) = time_range(&None, &params.end)?;
            (end - DEFAULT_RANGE_MICROS, end)
        }
    };
    let (reports, truncated) =
        latest_reports(&state, params.service.as_deref(), start, end).await?;
    let health = pod_health(&state, start, end).await?;
    let exits = last_exits(&state, start, end).await?;
    let now = now_micros().min(end);
    let seconds = ((end - start) as f64 / 1e6).max(1e-6);

    let mut grouped: BTreeMap<(String, String), Vec<(Report, Pod)>> = BTreeMap::new();
    for report in reports {
        let status = status_of(&report, now);
        if !all && status != "running" {
            continue;
        }
        let (logs, error_logs, last_log) = health
            .get(&(report.namespace.clone(), report.pod.clone()))
            .cloned()
            .unwrap_or_default();
        let pod = Pod {
            namespace: report.namespace.clone(),
            pod: report.pod.clone(),
            node: text(&report.body, "node"),
            containers: containers(&report.body),
            started_at: text(&report.body, "started_at"),
            last_report: format_nanos(report.time_micros * 1000),
            status: status.to_string(),
            logs,
            error_logs,
            error_log_rate: error_logs as f64 / seconds,
            last_log,
            last_exit: exits
                .get(&(report.namespace.clone(), report.pod.clone()))
                .cloned(),
            drift: Vec::new(),
        };
        grouped
            .entry((report.service.clone(), report.version.clone()))
            .or_default()
            .push((report, pod));
    }

    let mut services: BTreeMap<String, Vec<VersionPods>> = BTreeMap::new();
    let mut drifted_pods = 0;
    for ((service, version), mut members) in grouped {
        find_drift(&mut members);
        let pods: Vec<Pod> = members.into_iter().map(|(_, pod)| pod).collect();
        drifted_pods += pods.iter().filter(|p| !p.drift.is_empty()).count();
        let first_seen = pods.iter().filter_map(|p| p.started_at.clone()).min();
        services.entry(service).or_default().push(VersionPods {
            version,
            first_seen,
            pods,
        });
    }
    Ok(Json(Inventory {
        start: format_nanos(start * 1000),
        end: format_nanos(end * 1000),
        services: services
            .into_iter()
            .map(|(service, mut versions)| {
                versions.sort_by(|a, b| {
                    a.first_seen
                        .cmp(&b.first_seen)
                        .then(a.version.cmp(&b.version))
                });
                ServiceInventory { service, versions }
            })
            .collect(),
        drifted_pods,
        truncated,
    }))
}

fn status_of(report: &Report, now_micros: i64) -> &'static str {
    if report.body.get("state").and_then(Value::as_str) == Some("stopped") {
        return "stopped";
    }
    let interval = report
        .body
        .get("interval_seconds")
        .and_then(Value::as_f64)
        .unwrap_or(60.0);
    let silent_for = (now_micros - report.time_micros) as f64 / 1e6;
    if silent_for > interval * STALE_INTERVALS {
        "stale"
    } else {
        "running"
    }
}

fn text(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(String::from)
}

fn containers(body: &Map<String, Value>) -> Vec<Container> {
    let Some(list) = body.get("containers").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(Value::as_object)
        .map(|c| Container {
            name: text(c, "name"),
            image: text(c, "image"),
            tag: text(c, "tag"),
            digest: text(c, "digest"),
        })
        .collect()
}

/// Fingerprints of one kind (`files` or `env`) in a report: name → hash.
fn fingerprints<'a>(body: &'a Map<String, Value>, kind: &str) -> BTreeMap<&'a str, &'a str> {
    body.get(kind)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Marks, in each pod, the fingerprints that differ from the majority of its group, and
/// the files its collector saw change since the pod started.
fn find_drift(members: &mut [(Report, Pod)]) {
    let n = members.len();
    for (kind, field) in [("file", "files"), ("env", "env")] {
        let prints: Vec<BTreeMap<&str, &str>> = members
            .iter()
            .map(|(r, _)| fingerprints(&r.body, field))
            .collect();
        let names: std::collections::BTreeSet<&str> =
            prints.iter().flat_map(|p| p.keys().copied()).collect();
        let mut found: Vec<Vec<Drift>> = vec![Vec::new(); n];
        for name in names {
            // Each pod's hash, None when it lacks the name; the majority is held by more
            // than half of the pods.
            let values: Vec<Option<&str>> = prints.iter().map(|p| p.get(name).copied()).collect();
            let mut counts: BTreeMap<Option<&str>, usize> = BTreeMap::new();
            for v in &values {
                *counts.entry(*v).or_default() += 1;
            }
            if counts.len() < 2 {
                continue;
            }
            let majority = counts.iter().find(|(_, c)| **c * 2 > n).map(|(v, _)| *v);
            for (i, value) in values.iter().enumerate() {
                let reason = match (majority, value) {
                    (Some(m), v) if m == *v => continue,
                    (None, _) => "no_majority",
                    (Some(None), Some(_)) => "extra",
                    (Some(Some(_)), None) => "missing",
                    (Some(_), _) => "differs",
                };
                found[i].push(Drift {
                    kind: kind.into(),
                    name: name.into(),
                    reason: reason.into(),
                });
            }
        }
        for (i, drift) in found.into_iter().enumerate() {
            members[i].1.drift.extend(drift);
        }
    }
    for (report, pod) in members.iter_mut() {
        let changed = report
            .body
            .get("changed_since_start")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for path in changed {
            pod.drift.push(Drift {
                kind: "file".into(),
                name: path.into(),
                reason: "changed_since_start".into(),
            });
        }
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn range_sql(start: i64, end: i64) -> String {
    format!(
        "timestamp >= '{}' AND timestamp < '{}'",
        format_nanos(start * 1000),
        format_nanos(end * 1000)
    )
}

/// The latest inventory report of every pod in the range.
async fn latest_reports(
    state: &QueryState,
    service: Option<&str>,
    start: i64,
    end: i64,
) -> Result<(Vec<Report>, bool), QueryError> {
    let service_filter = service
        .map(|s| format!(" AND service = {}", quote(s)))
        .unwrap_or_default();
    let sql = format!(
        "SELECT service, version, namespace, pod, timestamp, body FROM (\
           SELECT service, version, namespace, pod, timestamp, body, row_number() OVER \
             (PARTITION BY namespace, pod ORDER BY timestamp DESC) AS newest \
           FROM logs WHERE scope_name = {} AND pod IS NOT NULL AND {}{service_filter}\
         ) WHERE newest = 1",
        quote(INVENTORY_SCOPE),
        range_sql(start, end),
    );
    let limits = SqlLimits {
        max_rows: MAX_PODS,
        ..state.sql_limits.clone()
    };
    let result = crate::sql::run_sql(&state.storage, &sql, &limits).await?;
    let reports = result
        .rows
        .iter()
        .filter_map(|row| {
            let body = row.get("body").and_then(Value::as_str)?;
            let Ok(Value::Object(body)) = serde_json::from_str(body) else {
                return None;
            };
            Some(Report {
                service: text(row, "service").unwrap_or_else(|| "unknown".into()),
                version: text(row, "version").unwrap_or_else(|| "unknown".into()),
                namespace: text(row, "namespace"),
                pod: text(row, "pod")?,
                time_micros: parse_time(&text(row, "timestamp")?, 0).ok()?,
                body,
            })
        })
        .collect();
    Ok((reports, result.truncated))
}

type Health = BTreeMap<(Option<String>, String), (u64, u64, Option<String>)>;

/// Per pod in the range: log records, error logs, and the newest log's time (inventory
/// reports left out).
/// Each pod's latest record of a container ending, in the range.
async fn last_exits(
    state: &QueryState,
    start: i64,
    end: i64,
) -> Result<HashMap<(Option<String>, String), LastExit>, QueryError> {
    let attribute = |key: &str| format!("attributes[{}]['value']", quote(key));
    let sql = format!(
        "SELECT namespace, pod, timestamp, container, reason, exit_code, restarts FROM (\
           SELECT namespace, pod, timestamp, {} AS container, {} AS reason, \
             {} AS exit_code, {} AS restarts, row_number() OVER \
             (PARTITION BY namespace, pod ORDER BY timestamp DESC) AS newest \
           FROM logs WHERE scope_name = {} AND pod IS NOT NULL AND {}\
         ) WHERE newest = 1",
        attribute("k8s.container.name"),
        attribute("k8s.container.status.last_terminated_reason"),
        attribute("process.exit.code"),
        attribute("k8s.container.restart_count"),
        quote(POD_STATUS_SCOPE),
        range_sql(start, end),
    );
    let limits = SqlLimits {
        max_rows: MAX_PODS,
        ..state.sql_limits.clone()
    };
    let result = crate::sql::run_sql(&state.storage, &sql, &limits).await?;
    let number = |row: &Map<String, Value>, key: &str| text(row, key)?.parse().ok();
    Ok(result
        .rows
        .iter()
        .filter_map(|row| {
            let exit = LastExit {
                container: text(row, "container"),
                reason: text(row, "reason"),
                exit_code: number(row, "exit_code"),
                restart_count: number(row, "restarts"),
                at: crate::time::normalize(text(row, "timestamp")?),
            };
            Some(((text(row, "namespace"), text(row, "pod")?), exit))
        })
        .collect())
}

async fn pod_health(state: &QueryState, start: i64, end: i64) -> Result<Health, QueryError> {
    let sql = format!(
        "SELECT namespace, pod, count(*) AS logs, \
           sum(CASE WHEN severity IN ('ERROR', 'FATAL') THEN 1 ELSE 0 END) AS error_logs, \
           max(timestamp) AS last_log \
         FROM logs WHERE pod IS NOT NULL AND {} \
           AND (scope_name IS NULL OR scope_name <> {}) \
         GROUP BY namespace, pod",
        range_sql(start, end),
        quote(INVENTORY_SCOPE),
    );
    let limits = SqlLimits {
        max_rows: MAX_PODS,
        ..state.sql_limits.clone()
    };
    let result = crate::sql::run_sql(&state.storage, &sql, &limits).await?;
    Ok(result
        .rows
        .iter()
        .filter_map(|row| {
            let last = text(row, "last_log").map(crate::time::normalize);
            Some((
                (text(row, "namespace"), text(row, "pod")?),
                (
                    row.get("logs").and_then(Value::as_u64).unwrap_or(0),
                    row.get("error_logs").and_then(Value::as_u64).unwrap_or(0),
                    last,
                ),
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn member(pod: &str, body: Value) -> (Report, Pod) {
        let Value::Object(body) = body else { panic!() };
        let report = Report {
            service: "cart".into(),
            version: "v1".into(),
            namespace: Some("shop".into()),
            pod: pod.into(),
            time_micros: 0,
            body,
        };
        let pod = Pod {
            namespace: report.namespace.clone(),
            pod: pod.into(),
            node: None,
            containers: vec![],
            started_at: None,
            last_report: String::new(),
            status: "running".into(),
            logs: 0,
            error_logs: 0,
            error_log_rate: 0.0,
            last_log: None,
            last_exit: None,
            drift: vec![],
        };
        (report, pod)
    }

    fn drift(members: &[(Report, Pod)]) -> Vec<Vec<(String, String, String)>> {
        members
            .iter()
            .map(|(_, p)| {
                p.drift
                    .iter()
                    .map(|d| (d.kind.clone(), d.name.clone(), d.reason.clone()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_pod_that_differs_from_the_majority_is_flagged_by_name() {
        let same = json!({"files": {"/etc/app.yaml": "sha256:aa"}, "env": {"MODE": "h:1"}});
        let mut members = vec![
            member("a", same.clone()),
            member(
                "b",
                json!({"files": {"/etc/app.yaml": "sha256:bb"}, "env": {"MODE": "h:1", "DEBUG": "h:2"},
                               "changed_since_start": ["/etc/app.yaml"]}),
            ),
            member("c", same.clone()),
            member("d", json!({"files": {}, "env": {"MODE": "h:1"}})),
            member("e", same),
        ];
        find_drift(&mut members);
        let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(
            drift(&members),
            vec![
                vec![],
                vec![
                    s("file", "/etc/app.yaml", "differs"),
                    s("env", "DEBUG", "extra"),
                    s("file", "/etc/app.yaml", "changed_since_start"),
                ],
                vec![],
                vec![s("file", "/etc/app.yaml", "missing")],
                vec![],
            ]
        );
    }

    #[test]
    fn without_a_majority_every_differing_pod_is_flagged_and_alone_none_is() {
        let mut two = vec![
            member("a", json!({"files": {"/f": "sha256:aa"}})),
            member("b", json!({"files": {"/f": "sha256:bb"}})),
        ];
        find_drift(&mut two);
        assert!(
            drift(&two)
                .iter()
                .all(|d| d.len() == 1 && d[0].2 == "no_majority")
        );
        let mut one = vec![member("a", json!({"files": {"/f": "sha256:aa"}}))];
        find_drift(&mut one);
        assert_eq!(drift(&one), vec![Vec::<(String, String, String)>::new()]);
    }

    #[test]
    fn a_pod_is_running_until_it_stops_or_goes_silent() {
        let (mut report, _) = member("a", json!({"state": "running", "interval_seconds": 10.0}));
        report.time_micros = 100_000_000;
        assert_eq!(status_of(&report, 120_000_000), "running");
        assert_eq!(status_of(&report, 131_000_000), "stale");
        report.body.insert("state".into(), json!("stopped"));
        assert_eq!(status_of(&report, 100_000_000), "stopped");
    }
}
