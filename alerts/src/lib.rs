//! Alert rules that watch logs and metrics and, where a rule says so, replace broken pods:
//! Prometheus rule files plus log rules ([`rules`]), states as Prometheus computes them
//! ([`state`]), notifications to webhooks and Alertmanagers ([`notify`]), and actions
//! against the Kubernetes API ([`actions`]) behind guardrails (cooldown, actions per hour,
//! no action on failed queries or missing data, a kill switch), every decision an audit
//! event in storage ([`audit`]), taken by one replica at a time ([`store::Lease`]).

pub mod actions;
pub mod audit;
mod engine;
pub mod notify;
pub mod rules;
pub mod state;
pub mod store;
pub mod template;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

pub use engine::{ActionsMode, AlertMetrics, AlertsConfig, Engine};

use crate::engine::{keyed, rfc3339};
use crate::state::State;

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("invalid rule files:\n  {}", .0.join("\n  "))]
    Rules(Vec<String>),
    #[error("alerting state storage: {0}")]
    Storage(String),
}

impl From<porthole_storage::StorageError> for AlertsError {
    fn from(e: porthole_storage::StorageError) -> Self {
        AlertsError::Storage(e.to_string())
    }
}

/// `/api/v1/alerts` (Prometheus's shape), `/api/v1/rules`, `/api/v1/alerts/events` and
/// `/api/v1/alerts/actions` (the kill switch).
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts/events", get(events))
        .route("/api/v1/alerts/actions", get(actions).put(set_actions))
        .with_state(engine)
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn alert_json(a: &state::Alert) -> Value {
    json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state.name(),
        "activeAt": rfc3339(a.active_at),
        "value": go_exp(a.value),
    })
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)` (shortest digits that round-trip), how
/// Prometheus shows an alert's value: `1.2e+01`, `2e+01`.
fn go_exp(v: f64) -> String {
    if !v.is_finite() {
        return template::go_float(v);
    }
    let text = format!("{v:e}");
    let (mantissa, exp) = text.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is a number");
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

async fn alerts(AxumState(engine): AxumState<Arc<Engine>>) -> Response {
    let states = engine.states.lock().expect("lock");
    let alerts: Vec<Value> = states
        .values()
        .flat_map(|st| st.alerts.values())
        .filter(|a| a.state != State::Inactive)
        .map(alert_json)
        .collect();
    Json(json!({"status": "success", "data": {"alerts": alerts}})).into_response()
}

async fn rules(AxumState(engine): AxumState<Arc<Engine>>) -> Response {
    let groups = engine.rules.read().expect("lock").groups.clone();
    let states = engine.states.lock().expect("lock");
    let reload = engine.reload.lock().expect("lock").clone();
    let groups: Vec<Value> = groups
        .iter()
        .map(|group| {
            let rules: Vec<Value> = keyed(group)
                .into_iter()
                .map(|(key, rule)| {
                    let st = states.get(&key).cloned().unwrap_or_default();
                    let labels: BTreeMap<&str, String> = rule
                        .labels
                        .iter()
                        .map(|(k, t)| (k.as_str(), t.render(&BTreeMap::new(), 0.0)))
                        .collect();
                    json!({
                        "type": "alerting",
                        "name": rule.name,
                        "query": rule.kind.describe(),
                        "duration": rule.hold.as_secs_f64(),
                        "keepFiringFor": rule.keep_firing_for.as_secs_f64(),
                        "labels": labels,
                        "state": st.state().name(),
                        "alerts": st.alerts.values().filter(|a| a.state != State::Inactive).map(alert_json).collect::<Vec<_>>(),
                        "health": st.health(),
                        "lastError": st.last_error.clone().unwrap_or_default(),
                        "lastEvaluation": st.last_eval_ms.map(rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                        "evaluationTime": st.eval_seconds,
                        "action": rule.action.as_ref().map(|a| json!({"kind": a.kind, "dry_run": a.dry_run})),
                    })
                })
                .collect();
            json!({
                "name": group.name,
                "file": group.file,
                "interval": group.interval.as_secs_f64(),
                "rules": rules,
            })
        })
        .collect();
    Json(json!({"status": "success", "data": {"groups": groups, "reload": reload}})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventParams {
    start: Option<String>,
    end: Option<String>,
    limit: Option<usize>,
    rule: Option<String>,
}

/// Events listed at most per request.
const MAX_EVENTS: usize = 1_000;

fn parse_ms(text: &Option<String>, default: i64, name: &str) -> Result<i64, Response> {
    let now = porthole_query::now_micros();
    match text {
        None => Ok(default),
        Some(t) => porthole_query::parse_time(t, now)
            .map(|micros| micros / 1000)
            .map_err(|e| {
                error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("{name}: {e}"),
                )
            }),
    }
}

async fn events(
    AxumState(engine): AxumState<Arc<Engine>>,
    params: Result<Query<EventParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.body_text()),
    };
    let now = porthole_query::now_micros() / 1000;
    let end = match parse_ms(&params.end, now + 1, "end") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let start = match parse_ms(&params.start, end - 7 * 86_400_000, "start") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let limit = params.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_EVENTS {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("limit must be 1 to {MAX_EVENTS}"),
        );
    }
    // A rule filter reads more, then filters; bounded by MAX_EVENTS all the same.
    let read = if params.rule.is_some() {
        MAX_EVENTS
    } else {
        limit
    };
    match audit::list(&engine.store, start, end, read).await {
        Ok(mut events) => {
            if let Some(rule) = &params.rule {
                events.retain(|e| &e.rule == rule);
            }
            events.truncate(limit);
            Json(json!({"events": events})).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "audit events unreadable");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "storage is unavailable".into(),
            )
        }
    }
}

async fn actions(AxumState(engine): AxumState<Arc<Engine>>) -> Response {
    match engine.store.actions_disabled().await {
        Ok(switch) => Json(json!({
            "mode": engine.config.actions.name(),
            "enabled": switch.is_none() && engine.config.actions != ActionsMode::Off,
            "kill_switch": switch,
        }))
        .into_response(),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is unavailable".into(),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetActions {
    enabled: bool,
    #[serde(default)]
    reason: String,
}

/// The kill switch, for every replica at once: `{"enabled": false, "reason": "…"}` stops
/// all actions until `{"enabled": true}`.
async fn set_actions(
    AxumState(engine): AxumState<Arc<Engine>>,
    body: Result<Json<SetActions>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.body_text()),
    };
    let switch = (!body.enabled).then(|| store::KillSwitch {
        reason: if body.reason.is_empty() {
            "set through the API".into()
        } else {
            body.reason
        },
        since: rfc3339(porthole_query::now_micros() / 1000),
    });
    match engine.store.set_actions_disabled(switch.as_ref()).await {
        Ok(()) => {
            tracing::warn!(enabled = body.enabled, "alert actions kill switch changed");
            actions(AxumState(engine)).await
        }
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is unavailable".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn alert_values_print_as_prometheus_prints_them() {
        for (v, text) in [
            (12.0, "1.2e+01"),
            (20.0, "2e+01"),
            (1.0, "1e+00"),
            (0.4, "4e-01"),
            (0.123456789, "1.23456789e-01"),
            (0.0, "0e+00"),
            (-3.5e120, "-3.5e+120"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(super::go_exp(v), text);
        }
    }
}
