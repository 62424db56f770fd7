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

const DAY_MS: i64 = 86_400_000;

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

/// Days of events the guardrails and the API read at most (see [`list`]): a retention
/// shorter than this would forget decisions they still count.
pub const MIN_KEEP_DAYS: i64 = 31;

/// Deletes the events of the days wholly before `now_ms - keep_days` days; how many.
pub async fn prune(store: &StateStore, now_ms: i64, keep_days: i64) -> Result<u64, AlertsError> {
    // Day folders are `YYYY-MM-DD`: text order is time order.
    let oldest_kept = day_of((now_ms.div_euclid(DAY_MS) - keep_days) * DAY_MS);
    let mut deleted = 0;
    for name in store.list("events").await? {
        if name
            .split('/')
            .next()
            .is_some_and(|day| day < oldest_kept.as_str())
        {
            store.delete(&format!("events/{name}")).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Events in `[start_ms, end_ms)`, newest first, at most `limit`.
pub async fn list(
    store: &StateStore,
    start_ms: i64,
    end_ms: i64,
    limit: usize,
) -> Result<Vec<Event>, AlertsError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time_ms: i64) -> Event {
        Event {
            time: String::new(),
            time_ms,
            rule: "R".into(),
            group: "g".into(),
            labels: BTreeMap::new(),
            action: None,
            target: None,
            decision: Decision::Skipped,
            reason: String::new(),
            request: None,
            node: "n".into(),
        }
    }

    #[tokio::test]
    async fn events_of_days_past_the_retention_are_deleted_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let location = porthole_storage::Location::parse(None, dir.path()).unwrap();
        let store = StateStore::open(&location).unwrap();
        let now = 20_000 * DAY_MS + 3_600_000; // 1 h into a day
        // Two events 100 days back, one 90 days back (kept: a whole day is kept), one now.
        for days in [100, 100, 90, 0] {
            record(&store, &event(now - days * DAY_MS)).await.unwrap();
        }
        assert_eq!(prune(&store, now, 90).await.unwrap(), 2);
        let kept: Vec<i64> = list(&store, now - 120 * DAY_MS, now + 1, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| (now - e.time_ms) / DAY_MS)
            .collect();
        assert_eq!(kept, [0], "list reads 31 days back at most");
        assert_eq!(
            store.list("events").await.unwrap().len(),
            2,
            "the 90-day-old and today's"
        );
        assert_eq!(
            prune(&store, now, 90).await.unwrap(),
            0,
            "nothing left to delete"
        );
    }
}
