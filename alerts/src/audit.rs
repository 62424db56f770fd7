//! Audit events: every action decision (acted, dry_run, skipped and why, failed) is one
//! JSON object under `events/<day>/<unix ms>-<id>.json`. The guardrails (cooldown, actions
//! per hour) are computed from these records, so a restarted replica or a new actor
//! honours what the previous one did.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::AlertsError;
use crate::rules::ActionKind;
use crate::store::StateStore;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Acted,
    DryRun,
    Skipped,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339.
    pub time: String,
    pub time_ms: i64,
    pub rule: String,
    pub group: String,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    pub decision: Decision,
    pub reason: String,
    /// What was (or, for a dry run, would have been) sent to the Kubernetes API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<serde_json::Value>,
    /// The replica that decided.
    pub node: String,
}

impl Event {
    /// Whether this event spent a guardrail budget (a dry run counts as the live action
    /// would have, so dry runs show what live mode will do).
    pub fn counts_as_action(&self) -> bool {
        matches!(self.decision, Decision::Acted | Decision::DryRun)
    }
}

fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

pub async fn record(store: &StateStore, event: &Event) -> Result<(), AlertsError> {
    let name = format!(
        "events/{}/{:013}-{}.json",
        day_of(event.time_ms),
        event.time_ms.max(0),
        uuid::Uuid::new_v4().simple()
    );
    Ok(store
        .put(&name, serde_json::to_vec(event).expect("serializable"))
        .await?)
}

/// Events in `[start_ms, end_ms)`, newest first, at most `limit`.
pub async fn list(
    store: &StateStore,
    start_ms: i64,
    end_ms: i64,
    limit: usize,
) -> Result<Vec<Event>, AlertsError> {
    const DAY_MS: i64 = 86_400_000;
    let mut names = Vec::new();
    let mut day = end_ms.div_euclid(DAY_MS);
    // Bounded: at most 31 day folders per listing.
    while day >= start_ms.div_euclid(DAY_MS)
        && names.len() < limit
        && day > end_ms.div_euclid(DAY_MS) - 31
    {
        let folder = format!("events/{}", day_of(day * DAY_MS));
        let mut in_day: Vec<String> = store
            .list(&folder)
            .await?
            .into_iter()
            .filter(|name| {
                name.split('-')
                    .next()
                    .and_then(|ms| ms.parse::<i64>().ok())
                    .is_some_and(|ms| ms >= start_ms && ms < end_ms)
            })
            .map(|name| format!("{folder}/{name}"))
            .collect();
        in_day.sort_unstable_by(|a, b| b.cmp(a));
        names.extend(in_day);
        day -= 1;
    }
    names.truncate(limit);
    let mut events = Vec::with_capacity(names.len());
    for name in names {
        if let Some(bytes) = store.get(&name).await? {
            match serde_json::from_slice::<Event>(&bytes) {
                Ok(event) => events.push(event),
                Err(e) => tracing::warn!(%name, error = %e, "unreadable audit event skipped"),
            }
        }
    }
    Ok(events)
}
