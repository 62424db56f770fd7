//! Alert states per label set, computed as Prometheus's alerting rules compute them
//! (rules/alerting.go): a new result is pending, becomes firing once it has held for
//! `for`, stays firing for `keep_firing_for` after its condition stops, and is then
//! inactive (resolved), kept 15 minutes so the resolution is reported.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde::Serialize;

use crate::rules::Rule;

/// How long a resolved alert is kept so its resolution is sent.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Inactive,
    Pending,
    Firing,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Pending => "pending",
            State::Firing => "firing",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: State,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub keep_firing_since: Option<i64>,
    /// Last time sent to Alertmanagers (Prometheus's resend logic).
    pub last_sent_at: Option<i64>,
    /// The state webhooks were last told about.
    pub notified: State,
    /// The firing episode (its `fired_at`) an action decision was made for.
    pub decided_for: Option<i64>,
}

impl Alert {
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }
}

pub fn fingerprint(labels: &BTreeMap<String, String>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    labels.hash(&mut hasher);
    hasher.finish()
}

#[derive(Clone, Debug, Default)]
pub struct RuleState {
    pub alerts: BTreeMap<u64, Alert>,
    pub last_error: Option<String>,
    /// The query failure last written as an audit event, so each is written once.
    pub audited_error: Option<String>,
    pub last_eval_ms: Option<i64>,
    pub eval_seconds: f64,
    /// Whether the last evaluation found any data at all for the rule's selectors or
    /// filters (no data is neither healthy nor broken: no action is taken on it).
    pub has_data: bool,
}

impl RuleState {
    pub fn health(&self) -> &'static str {
        match (&self.last_eval_ms, &self.last_error) {
            (None, _) => "unknown",
            (_, Some(_)) => "err",
            _ => "ok",
        }
    }

    /// The rule's overall state: its most severe active alert.
    pub fn state(&self) -> State {
        let states = self.alerts.values().map(|a| a.state);
        if states.clone().any(|s| s == State::Firing) {
            State::Firing
        } else if states.into_iter().any(|s| s == State::Pending) {
            State::Pending
        } else {
            State::Inactive
        }
    }

    /// One evaluation's result at `ts` (ms): `(labels of the sample, value)` pairs.
    pub fn apply(
        &mut self,
        rule: &Rule,
        samples: Vec<(BTreeMap<String, String>, f64)>,
        ts: i64,
    ) -> Result<(), String> {
        let mut fresh: BTreeMap<u64, Alert> = BTreeMap::new();
        for (metric, value) in samples {
            let mut labels = metric.clone();
            labels.remove("__name__");
            for (name, template) in &rule.labels {
                labels.insert(name.clone(), template.render(&metric, value));
            }
            labels.insert("alertname".into(), rule.name.clone());
            let annotations = rule
                .annotations
                .iter()
                .map(|(name, template)| (name.clone(), template.render(&metric, value)))
                .collect();
            let fp = fingerprint(&labels);
            if fresh.contains_key(&fp) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            fresh.insert(
                fp,
                Alert {
                    labels,
                    annotations,
                    state: State::Pending,
                    value,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    keep_firing_since: None,
                    last_sent_at: None,
                    notified: State::Inactive,
                    decided_for: None,
                },
            );
        }
        let seen: Vec<u64> = fresh.keys().copied().collect();
        for (fp, alert) in fresh {
            match self.alerts.get_mut(&fp) {
                Some(existing) if existing.state != State::Inactive => {
                    existing.value = alert.value;
                    existing.annotations = alert.annotations;
                }
                _ => {
                    self.alerts.insert(fp, alert);
                }
            }
        }
        let hold = rule.hold.as_millis() as i64;
        let keep_for = rule.keep_firing_for.as_millis() as i64;
        let fps: Vec<u64> = self.alerts.keys().copied().collect();
        for fp in fps {
            let alert = self.alerts.get_mut(&fp).expect("listed above");
            if !seen.contains(&fp) {
                let mut keep_firing = false;
                if alert.state == State::Firing && keep_for > 0 {
                    let since = *alert.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_for;
                }
                if alert.state == State::Pending
                    || alert
                        .resolved_at
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    self.alerts.remove(&fp);
                    continue;
                }
                if alert.state != State::Inactive && !keep_firing {
                    alert.state = State::Inactive;
                    alert.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                alert.keep_firing_since = None;
            }
            if alert.state == State::Pending && ts - alert.active_at >= hold {
                alert.state = State::Firing;
                alert.fired_at = Some(ts);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rules::parse_file;

    fn rule(extra: &str) -> Rule {
        let text = format!(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n{extra}"
        );
        parse_file("t.yml", &text, Duration::from_secs(60))
            .unwrap()
            .remove(0)
            .rules
            .remove(0)
    }

    fn one(v: f64) -> Vec<(BTreeMap<String, String>, f64)> {
        vec![(
            BTreeMap::from([("__name__".into(), "up".into()), ("job".into(), "x".into())]),
            v,
        )]
    }

    #[test]
    fn pending_then_firing_then_resolved_then_forgotten() {
        let rule = rule("        for: 1m\n        labels: {severity: '{{ $labels.job }}'}\n");
        let mut st = RuleState::default();
        st.apply(&rule, one(1.0), 0).unwrap();
        assert_eq!(st.state(), State::Pending);
        st.apply(&rule, one(2.0), 30_000).unwrap();
        assert_eq!(st.state(), State::Pending);
        st.apply(&rule, one(3.0), 60_000).unwrap();
        let alert = st.alerts.values().next().unwrap();
        assert_eq!(
            (alert.state, alert.fired_at, alert.value),
            (State::Firing, Some(60_000), 3.0)
        );
        assert_eq!(alert.labels.get("severity").map(String::as_str), Some("x"));
        assert!(!alert.labels.contains_key("__name__"));
        st.apply(&rule, vec![], 90_000).unwrap();
        assert_eq!(st.alerts.values().next().unwrap().state, State::Inactive);
        st.apply(&rule, vec![], 90_000 + RESOLVED_RETENTION_MS + 1)
            .unwrap();
        assert!(st.alerts.is_empty());
    }

    #[test]
    fn pending_alerts_vanish_and_keep_firing_for_holds() {
        let rule_pending = rule("        for: 5m\n");
        let mut st = RuleState::default();
        st.apply(&rule_pending, one(1.0), 0).unwrap();
        st.apply(&rule_pending, vec![], 1).unwrap();
        assert!(st.alerts.is_empty());

        let rule_keep = rule("        keep_firing_for: 1m\n");
        let mut st = RuleState::default();
        st.apply(&rule_keep, one(1.0), 0).unwrap();
        assert_eq!(st.state(), State::Firing, "for: 0 fires at once");
        st.apply(&rule_keep, vec![], 10_000).unwrap();
        assert_eq!(st.state(), State::Firing);
        st.apply(&rule_keep, vec![], 70_000).unwrap();
        assert_eq!(st.state(), State::Inactive);
    }

    #[test]
    fn duplicate_label_sets_are_an_error() {
        let rule = rule("        labels: {job: same}\n");
        let samples = vec![
            (BTreeMap::from([("job".into(), "a".into())]), 1.0),
            (BTreeMap::from([("job".into(), "b".into())]), 1.0),
        ];
        assert!(RuleState::default().apply(&rule, samples, 0).is_err());
    }
}
