//! The evaluation loop: each group at its interval, each rule's query, the state
//! machine, then (on the one replica holding the lease) notifications and actions.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use porthole_query::promql::PromLimits;
use porthole_query::{LogSearch, SpanStats, TraceSearch};
use porthole_storage::Storage;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::actions::{Kube, Outcome};
use crate::audit::{self, Decision, Event, Target};
use crate::notify::{Delivery, Notice, Notifier};
use crate::rules::{Group, Rule, RuleKind, RuleSet, SpanMeasure};
use crate::state::{RuleState, State};
use crate::store::{Lease, StateStore};

/// Alertmanager resend delay, as Prometheus's `--rules.alert.resend-delay` default.
const RESEND_DELAY_MS: i64 = 60_000;
/// How often the rules directory is checked for changes (SIGHUP reloads at once).
const RELOAD_CHECK: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionsMode {
    Live,
    DryRun,
    Off,
}

impl std::str::FromStr for ActionsMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "live" => Ok(Self::Live),
            "dry-run" => Ok(Self::DryRun),
            "off" => Ok(Self::Off),
            other => Err(format!("{other:?}: use live, dry-run or off")),
        }
    }
}

impl ActionsMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::DryRun => "dry-run",
            Self::Off => "off",
        }
    }
}

#[derive(Clone, Debug)]
pub struct AlertsConfig {
    pub rules_dir: PathBuf,
    /// Used by groups without `interval`.
    pub default_interval: Duration,
    pub webhooks: Vec<String>,
    pub alertmanagers: Vec<String>,
    pub actions: ActionsMode,
    /// Actions (and dry runs) across all rules per hour, at most.
    pub max_actions_per_hour: u32,
    /// Base of `generatorURL` in notifications.
    pub external_url: String,
    /// Length of one lease slot (see [`Lease`]).
    pub lease_slot: Duration,
    /// Days audit events are kept (at least [`audit::MIN_KEEP_DAYS`]).
    pub events_keep_days: i64,
}

#[derive(Clone, Default)]
pub struct AlertMetrics {
    pub alerts: Family<Vec<(String, String)>, Gauge>,
    pub evaluations: Family<Vec<(String, String)>, Counter>,
    pub decisions: Family<Vec<(String, String)>, Counter>,
    pub notifications: Family<Vec<(String, String)>, Counter>,
    pub reloads: Family<Vec<(String, String)>, Counter>,
    pub events_pruned: Family<Vec<(String, String)>, Counter>,
    /// The tenant whose rules are counted: every tenant's engine shares these families,
    /// and each series carries a `tenant` label so the same rule in two tenants is two
    /// series, not one that both overwrite.
    tenant: Option<String>,
}

impl AlertMetrics {
    pub fn register(registry: &mut prometheus_client::registry::Registry) -> Self {
        let m = Self::default();
        registry.register(
            "ALERTS",
            "Active alerts (pending or firing), as Prometheus exposes them",
            m.alerts.clone(),
        );
        registry.register(
            "porthole_rule_evaluations",
            "Rule evaluations, by outcome (ok, error)",
            m.evaluations.clone(),
        );
        registry.register(
            "porthole_alert_action_decisions",
            "Action decisions, by decision (acted, dry_run, skipped, failed)",
            m.decisions.clone(),
        );
        registry.register(
            "porthole_alert_notifications",
            "Notifications, by receiver and outcome (sent, refused, failed, dropped)",
            m.notifications.clone(),
        );
        registry.register(
            "porthole_rule_reloads",
            "Rule file loads, by outcome (ok, error: the previous rules stay)",
            m.reloads.clone(),
        );
        registry.register(
            "porthole_alert_events_pruned",
            "Audit events deleted past --alert-events-retention",
            m.events_pruned.clone(),
        );
        m
    }

    /// The same families, for the engine of `tenant` (`None`: no tenants).
    pub fn for_tenant(&self, tenant: Option<&str>) -> Self {
        Self {
            tenant: tenant.map(String::from),
            ..self.clone()
        }
    }

    /// A series' labels: `pairs`, with the tenant's.
    pub(crate) fn labels<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<(String, String)> {
        self.tenant_labelled(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// `labels` plus `tenant`, sorted. An alert's own `tenant` label is renamed as
    /// Prometheus renames a scraped label that clashes with a target's: `exported_tenant`,
    /// or `exported_exported_tenant` if that is taken too, and so on.
    fn tenant_labelled(&self, mut labels: Vec<(String, String)>) -> Vec<(String, String)> {
        if let Some(tenant) = &self.tenant {
            if let Some(own) = labels.iter().position(|(key, _)| key == "tenant") {
                let mut name = "tenant".to_string();
                while labels.iter().any(|(key, _)| *key == name) {
                    name = format!("exported_{name}");
                }
                labels[own].0 = name;
            }
            labels.push(("tenant".into(), tenant.clone()));
        }
        labels.sort();
        labels
    }
}

type RuleKey = (String, String, String, usize);

/// The outcome of the last load of the rules directory.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReloadStatus {
    pub ok: bool,
    pub errors: Vec<String>,
}

pub struct Engine {
    pub(crate) storage: Arc<Storage>,
    pub(crate) limits: PromLimits,
    pub(crate) config: AlertsConfig,
    pub(crate) rules: RwLock<RuleSet>,
    pub(crate) states: Mutex<HashMap<RuleKey, RuleState>>,
    pub(crate) reload: Mutex<ReloadStatus>,
    pub(crate) store: StateStore,
    lease: Lease,
    notifier: Notifier,
    kube: Kube,
    metrics: AlertMetrics,
    /// ALERTS label sets set per rule, to remove the ones that ended.
    exposed: Mutex<HashMap<RuleKey, Vec<LabelPairs>>>,
    /// When old audit events were last pruned (at most hourly, after a decision).
    pruned_at: Mutex<Option<Instant>>,
}

type LabelPairs = Vec<(String, String)>;

/// A trace rule's measure of one group's spans: latencies in seconds; `None` when
/// undefined (a rate or quantile of no spans).
fn measure_of(measure: SpanMeasure, mut stats: SpanStats) -> Option<f64> {
    match measure {
        SpanMeasure::Count => Some(stats.count as f64),
        SpanMeasure::Errors => Some(stats.errors as f64),
        SpanMeasure::ErrorRate => stats.error_rate(),
        SpanMeasure::Quantile(q) => stats.quantile_ns(q).map(|ns| ns as f64 / 1e9),
    }
}

fn key(group: &Group, rule: &Rule, index: usize) -> RuleKey {
    (
        group.file.clone(),
        group.name.clone(),
        rule.name.clone(),
        index,
    )
}

/// Rules of a group with their state keys (a name repeated in a group gets an index).
pub(crate) fn keyed(group: &Group) -> Vec<(RuleKey, &Rule)> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    group
        .rules
        .iter()
        .map(|rule| {
            let n = seen.entry(rule.name.as_str()).or_insert(0);
            *n += 1;
            (key(group, rule, *n), rule)
        })
        .collect()
}

pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn now_ms() -> i64 {
    porthole_query::now_micros() / 1000
}

impl Engine {
    /// Loads the rules (an error here stops startup: there are no previous rules to keep).
    pub fn new(
        storage: Arc<Storage>,
        limits: PromLimits,
        config: AlertsConfig,
        metrics: AlertMetrics,
    ) -> Result<Arc<Self>, crate::AlertsError> {
        let rules = crate::rules::load_dir(&config.rules_dir, config.default_interval)
            .map_err(crate::AlertsError::Rules)?;
        metrics
            .reloads
            .get_or_create(&metrics.labels([("outcome", "ok")]))
            .inc();
        let store = StateStore::open(storage.location())?;
        let node = format!(
            "{}-{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "porthole".into()),
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let notifier = Notifier::start(
            config.webhooks.clone(),
            config.alertmanagers.clone(),
            config.external_url.clone(),
            metrics.clone(),
        );
        Ok(Arc::new(Self {
            storage,
            limits,
            lease: Lease::new(store.clone(), node, config.lease_slot),
            config,
            rules: RwLock::new(rules),
            states: Mutex::new(HashMap::new()),
            reload: Mutex::new(ReloadStatus {
                ok: true,
                errors: vec![],
            }),
            store,
            notifier,
            kube: Kube::default(),
            metrics,
            exposed: Mutex::new(HashMap::new()),
            pruned_at: Mutex::new(None),
        }))
    }

    /// Loads the rules directory again; on any error the running rules stay.
    pub fn reload(&self) {
        match crate::rules::load_dir(&self.config.rules_dir, self.config.default_interval) {
            Ok(rules) => {
                let keep: std::collections::HashSet<RuleKey> = rules
                    .groups
                    .iter()
                    .flat_map(|g| keyed(g).into_iter().map(|(k, _)| k))
                    .collect();
                self.states
                    .lock()
                    .expect("lock")
                    .retain(|k, _| keep.contains(k));
                let gone: Vec<RuleKey> = self
                    .exposed
                    .lock()
                    .expect("lock")
                    .keys()
                    .filter(|k| !keep.contains(*k))
                    .cloned()
                    .collect();
                for k in gone {
                    self.expose(&k, &RuleState::default());
                }
                *self.rules.write().expect("lock") = rules;
                *self.reload.lock().expect("lock") = ReloadStatus {
                    ok: true,
                    errors: vec![],
                };
                self.metrics
                    .reloads
                    .get_or_create(&self.metrics.labels([("outcome", "ok")]))
                    .inc();
                tracing::info!(dir = %self.config.rules_dir.display(), "rules reloaded");
            }
            Err(errors) => {
                for error in &errors {
                    tracing::error!(%error, "rule files invalid; the previous rules keep running");
                }
                *self.reload.lock().expect("lock") = ReloadStatus { ok: false, errors };
                self.metrics
                    .reloads
                    .get_or_create(&self.metrics.labels([("outcome", "error")]))
                    .inc();
            }
        }
    }

    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut fingerprint = crate::rules::dir_fingerprint(&self.config.rules_dir);
        let mut last_check = Instant::now();
        let mut next: HashMap<(String, String), Instant> = HashMap::new();
        loop {
            let hup = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = hup => {
                    self.reload();
                    fingerprint = crate::rules::dir_fingerprint(&self.config.rules_dir);
                }
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            if last_check.elapsed() >= RELOAD_CHECK {
                last_check = Instant::now();
                let now = crate::rules::dir_fingerprint(&self.config.rules_dir);
                if now != fingerprint {
                    fingerprint = now;
                    self.reload();
                }
            }
            let groups = self.rules.read().expect("lock").groups.clone();
            for group in groups {
                let id = (group.file.clone(), group.name.clone());
                let due = next.get(&id).is_none_or(|at| *at <= Instant::now());
                if due {
                    next.insert(id, Instant::now() + group.interval);
                    self.eval_group(&group, now_ms()).await;
                }
            }
        }
    }

    pub(crate) async fn eval_group(&self, group: &Group, ts: i64) {
        let actor = match self.lease.is_actor(ts).await {
            Ok(actor) => actor,
            Err(e) => {
                tracing::warn!(error = %e, "alerting lease unreadable: not acting this round");
                false
            }
        };
        for (key, rule) in keyed(group) {
            let started = Instant::now();
            let result = self.query(rule, ts).await;
            let (failed, audit_failure, deliveries, decisions, snapshot) = {
                let mut states = self.states.lock().expect("lock");
                let st = states.entry(key.clone()).or_default();
                st.last_eval_ms = Some(ts);
                let outcome = match result {
                    Ok((samples, has_data)) => {
                        st.has_data = has_data;
                        st.apply(rule, samples, ts)
                    }
                    Err(e) => Err(e),
                };
                st.eval_seconds = started.elapsed().as_secs_f64();
                let failed = outcome.err();
                st.last_error = failed.clone();
                // A failure is audited once per distinct error, by the actor: a replica
                // that becomes the actor while a query is failing still records it.
                let acting = actor && rule.action.is_some();
                let audit_failure = acting && failed.is_some() && st.audited_error != failed;
                if acting {
                    st.audited_error = failed.clone();
                }
                let (deliveries, decisions) = if failed.is_none() && actor {
                    (
                        self.notices(group, rule, st, ts),
                        pending_decisions(rule, st),
                    )
                } else {
                    (vec![], vec![])
                };
                (failed, audit_failure, deliveries, decisions, st.clone())
            };
            self.metrics
                .evaluations
                .get_or_create(
                    &self
                        .metrics
                        .labels([("outcome", if failed.is_some() { "error" } else { "ok" })]),
                )
                .inc();
            if let Some(error) = &failed {
                tracing::warn!(rule = %rule.name, group = %group.name, %error, "rule evaluation failed");
            }
            self.expose(&key, &snapshot);
            for d in deliveries {
                self.notifier.send(d);
            }
            if !actor || rule.action.is_none() {
                continue;
            }
            if let Some(error) = failed {
                if audit_failure {
                    let reason = format!("query failed, so no action is taken: {error}");
                    self.record(
                        group,
                        rule,
                        &BTreeMap::new(),
                        None,
                        Decision::Skipped,
                        reason,
                        None,
                        ts,
                    )
                    .await;
                }
                continue;
            }
            for labels in decisions {
                self.decide(group, rule, &labels, snapshot.has_data, ts)
                    .await;
            }
        }
    }

    /// Samples of the rule's condition at `ts`, and whether there was any data to judge.
    async fn query(
        &self,
        rule: &Rule,
        ts: i64,
    ) -> Result<(Vec<(BTreeMap<String, String>, f64)>, bool), String> {
        match &rule.kind {
            RuleKind::Metric { expr, .. } => {
                let answer = porthole_query::promql::instant_vector(
                    &self.storage,
                    &self.limits,
                    expr.clone(),
                    ts,
                )
                .await
                .map_err(|e| e.to_string())?;
                let samples = answer
                    .samples
                    .into_iter()
                    .map(|s| (s.labels.iter().cloned().collect(), s.v))
                    .collect();
                Ok((samples, answer.series_seen > 0))
            }
            RuleKind::Logs {
                query,
                filters,
                window,
                by,
                op,
                threshold,
            } => {
                let end = ts * 1000 + 1;
                let search = LogSearch {
                    query: query.clone(),
                    filters: filters.clone(),
                    start_micros: end - window.as_micros() as i64,
                    end_micros: end,
                    limit: 0,
                    cursor: None,
                    forward: false,
                };
                let everything = LogSearch {
                    query: String::new(),
                    ..search.clone()
                };
                let (storage, group_by) = (Arc::clone(&self.storage), by.clone());
                // On the query threads, as the API's searches: not the server's runtime.
                let counting = porthole_query::on_query_threads(async move {
                    let counts =
                        porthole_query::count_logs(&storage, &search, group_by.as_deref()).await?;
                    let any = porthole_query::count_logs(&storage, &everything, None).await?;
                    Ok((counts, any.values().sum::<u64>() > 0))
                });
                let (counts, has_data) = tokio::time::timeout(self.limits.timeout, counting)
                    .await
                    .map_err(|_| format!("log count timed out after {:?}", self.limits.timeout))?
                    .map_err(|e| e.to_string())?;
                let mut samples = Vec::new();
                match by {
                    None => {
                        let n = counts.values().sum::<u64>() as f64;
                        if op.holds(n, *threshold) {
                            samples.push((BTreeMap::new(), n));
                        }
                    }
                    Some(field) => {
                        for (value, n) in counts {
                            if op.holds(n as f64, *threshold) {
                                samples.push((BTreeMap::from([(field.clone(), value)]), n as f64));
                            }
                        }
                    }
                }
                Ok((samples, has_data))
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
                let end = ts * 1000 + 1;
                let mut search = TraceSearch {
                    query: query.clone(),
                    start_micros: end - window.as_micros() as i64,
                    end_micros: end,
                    ..TraceSearch::default()
                };
                for (field, value) in filters {
                    match field.as_str() {
                        "service" => search.service = Some(value.clone()),
                        "name" => search.name = Some(value.clone()),
                        _ => search.filters.push((field.clone(), value.clone())),
                    }
                }
                let everything = TraceSearch {
                    query: String::new(),
                    ..search.clone()
                };
                let (storage, group_by) = (Arc::clone(&self.storage), by.clone());
                let measuring = porthole_query::on_query_threads(async move {
                    let stats =
                        porthole_query::span_stats(&storage, &search, group_by.as_deref()).await?;
                    let any = !stats.is_empty()
                        || porthole_query::any_spans(&storage, &everything).await?;
                    Ok((stats, any))
                });
                let (stats, has_data) = tokio::time::timeout(self.limits.timeout, measuring)
                    .await
                    .map_err(|_| {
                        format!("span statistics timed out after {:?}", self.limits.timeout)
                    })?
                    .map_err(|e| e.to_string())?;
                let mut samples = Vec::new();
                let mut judge = |labels: BTreeMap<String, String>, stats: SpanStats| {
                    if let Some(v) = measure_of(*measure, stats)
                        && op.holds(v, *threshold)
                    {
                        samples.push((labels, v));
                    }
                };
                match by {
                    // No spans at all still has a count (0) and no errors.
                    None => judge(
                        BTreeMap::new(),
                        stats.into_values().next().unwrap_or_default(),
                    ),
                    Some(field) => {
                        for (value, group) in stats {
                            judge(BTreeMap::from([(field.clone(), value)]), group);
                        }
                    }
                }
                Ok((samples, has_data))
            }
        }
    }

    /// What this evaluation sends: webhook payloads on changes, Alertmanager resends.
    fn notices(&self, group: &Group, rule: &Rule, st: &mut RuleState, ts: i64) -> Vec<Delivery> {
        let generator = format!(
            "{}/api/v1/rules#{}",
            self.config.external_url.trim_end_matches('/'),
            rule.name
        );
        let valid_ms = 4 * (group.interval.as_millis() as i64).max(RESEND_DELAY_MS);
        let mut changed = false;
        let mut webhook = Vec::new();
        let mut manager = Vec::new();
        for alert in st.alerts.values_mut() {
            let notice = |status: &'static str, a: &crate::state::Alert| Notice {
                status,
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: rfc3339(a.fired_at.unwrap_or(a.active_at)),
                ends_at: a
                    .resolved_at
                    .map(rfc3339)
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                generator_url: generator.clone(),
                fingerprint: format!("{:016x}", a.fingerprint()),
            };
            match (alert.state, alert.notified) {
                (State::Firing, State::Firing) => webhook.push(notice("firing", alert)),
                (State::Firing, _) => {
                    changed = true;
                    alert.notified = State::Firing;
                    webhook.push(notice("firing", alert));
                }
                (State::Inactive, State::Firing) => {
                    changed = true;
                    alert.notified = State::Inactive;
                    webhook.push(notice("resolved", alert));
                }
                _ => {}
            }
            if alert.state == State::Pending {
                continue;
            }
            let resend = match alert.last_sent_at {
                None => true,
                Some(sent) => {
                    alert.resolved_at.is_some_and(|r| r > sent) || sent + RESEND_DELAY_MS < ts
                }
            };
            if resend {
                alert.last_sent_at = Some(ts);
                manager.push(json!({
                    "labels": alert.labels,
                    "annotations": alert.annotations,
                    "startsAt": rfc3339(alert.fired_at.unwrap_or(alert.active_at)),
                    "endsAt": rfc3339(alert.resolved_at.unwrap_or(ts + valid_ms)),
                    "generatorURL": generator,
                }));
            }
        }
        let mut out = Vec::new();
        if changed && !self.config.webhooks.is_empty() {
            out.push(Delivery::Webhook {
                alertname: rule.name.clone(),
                alerts: webhook,
            });
        }
        if !manager.is_empty() && !self.config.alertmanagers.is_empty() {
            out.push(Delivery::Alertmanager { alerts: manager });
        }
        out
    }

    fn expose(&self, key: &RuleKey, st: &RuleState) {
        let mut exposed = self.exposed.lock().expect("lock");
        let now: Vec<Vec<(String, String)>> = st
            .alerts
            .values()
            .filter(|a| a.state != State::Inactive)
            .map(|a| {
                let mut labels: Vec<(String, String)> = a.labels.clone().into_iter().collect();
                labels.push(("alertstate".into(), a.state.name().into()));
                self.metrics.tenant_labelled(labels)
            })
            .collect();
        for old in exposed.remove(key).unwrap_or_default() {
            if !now.contains(&old) {
                self.metrics.alerts.remove(&old);
            }
        }
        for labels in &now {
            self.metrics.alerts.get_or_create(labels).set(1);
        }
        if !now.is_empty() {
            exposed.insert(key.clone(), now);
        }
    }

    /// One action decision for a firing alert, recorded as an audit event.
    async fn decide(
        &self,
        group: &Group,
        rule: &Rule,
        labels: &BTreeMap<String, String>,
        has_data: bool,
        ts: i64,
    ) {
        let action = rule
            .action
            .as_ref()
            .expect("only rules with an action decide");
        let target = Target {
            namespace: action.namespace.render(labels, 0.0),
            deployment: action.deployment.as_ref().map(|t| t.render(labels, 0.0)),
            pod: action.pod.as_ref().map(|t| t.render(labels, 0.0)),
        };
        let (decision, reason, request) = self.judge(rule, &target, has_data, ts).await;
        self.record(
            group,
            rule,
            labels,
            Some(target),
            decision,
            reason,
            request,
            ts,
        )
        .await;
    }

    async fn judge(
        &self,
        rule: &Rule,
        target: &Target,
        has_data: bool,
        ts: i64,
    ) -> (Decision, String, Option<serde_json::Value>) {
        let action = rule
            .action
            .as_ref()
            .expect("only rules with an action decide");
        let skip = |reason: String| (Decision::Skipped, reason, None);
        if self.config.actions == ActionsMode::Off {
            return skip("actions are off on this node (--alert-actions off)".into());
        }
        match self.store.actions_disabled().await {
            Ok(None) => {}
            Ok(Some(switch)) => {
                return skip(format!(
                    "kill switch is set since {}: {}",
                    switch.since, switch.reason
                ));
            }
            Err(e) => return skip(format!("kill switch unreadable, so not acting: {e}")),
        }
        if !has_data {
            return skip("no data: the rule's selectors or filters matched nothing, which is neither healthy nor broken".into());
        }
        let empty = [
            ("namespace", Some(&target.namespace)),
            ("deployment", target.deployment.as_ref()),
            ("pod", target.pod.as_ref()),
        ]
        .into_iter()
        .find(|(_, v)| v.is_some_and(|v| v.is_empty()));
        if let Some((field, _)) = empty {
            return (
                Decision::Failed,
                format!("target {field} is empty for this alert's labels"),
                None,
            );
        }
        let window = action.cooldown.max(Duration::from_secs(3600));
        let events =
            match audit::list(&self.store, ts - window.as_millis() as i64, ts + 1, 100_000).await {
                Ok(events) => events,
                Err(e) => {
                    return skip(format!(
                        "audit log unreadable, so guardrails cannot be checked: {e}"
                    ));
                }
            };
        let acted: Vec<&Event> = events.iter().filter(|e| e.counts_as_action()).collect();
        let cooldown_from = ts - action.cooldown.as_millis() as i64;
        if let Some(last) = acted.iter().find(|e| {
            e.rule == rule.name && e.target.as_ref() == Some(target) && e.time_ms > cooldown_from
        }) {
            return skip(format!(
                "cooldown: acted on this target at {} (cooldown {})",
                last.time,
                humantime::format_duration(action.cooldown)
            ));
        }
        let hour_ago = ts - 3_600_000;
        let this_rule = acted
            .iter()
            .filter(|e| e.rule == rule.name && e.time_ms > hour_ago)
            .count();
        if this_rule >= action.max_per_hour as usize {
            return skip(format!(
                "max_per_hour: {this_rule} actions of this rule in the last hour"
            ));
        }
        let all = acted.iter().filter(|e| e.time_ms > hour_ago).count();
        if all >= self.config.max_actions_per_hour as usize {
            return skip(format!(
                "--alert-max-actions-per-hour: {all} actions of all rules in the last hour"
            ));
        }
        let dry_run = action.dry_run || self.config.actions == ActionsMode::DryRun;
        match self.kube.run(action.kind, target, dry_run).await {
            Ok(Outcome::Sent { request }) if dry_run => (
                Decision::DryRun,
                "dry run: this request was not sent".into(),
                Some(request),
            ),
            Ok(Outcome::Sent { request }) => (Decision::Acted, "sent".into(), Some(request)),
            Ok(Outcome::Nothing { reason }) => skip(reason),
            Err(e) => (Decision::Failed, e, None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        group: &Group,
        rule: &Rule,
        labels: &BTreeMap<String, String>,
        target: Option<Target>,
        decision: Decision,
        reason: String,
        request: Option<serde_json::Value>,
        ts: i64,
    ) {
        let event = Event {
            time: rfc3339(ts),
            time_ms: ts,
            rule: rule.name.clone(),
            group: group.name.clone(),
            labels: labels.clone(),
            action: rule.action.as_ref().map(|a| a.kind),
            target,
            decision,
            reason,
            request,
            node: self.lease.node().to_string(),
        };
        tracing::info!(rule = %event.rule, decision = ?event.decision, reason = %event.reason, "alert action decision");
        let name = serde_json::to_value(decision)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        self.metrics
            .decisions
            .get_or_create(&self.metrics.labels([("decision", name.as_str())]))
            .inc();
        if let Err(e) = audit::record(&self.store, &event).await {
            tracing::error!(error = %e, "audit event could not be stored");
        }
        self.prune_events(ts).await;
    }

    /// Deletes audit events past their retention, at most once an hour (the actor records
    /// every decision, so the actor prunes). A failure is logged and tried again next time.
    async fn prune_events(&self, now_ms: i64) {
        {
            let mut pruned_at = self.pruned_at.lock().expect("lock");
            if pruned_at.is_some_and(|at| at.elapsed() < Duration::from_secs(3600)) {
                return;
            }
            *pruned_at = Some(Instant::now());
        }
        match audit::prune(&self.store, now_ms, self.config.events_keep_days).await {
            Ok(deleted) => {
                self.metrics
                    .events_pruned
                    .get_or_create(&self.metrics.labels([]))
                    .inc_by(deleted);
            }
            Err(e) => tracing::warn!(error = %e, "old audit events could not be pruned"),
        }
    }
}

/// Firing alerts of a rule with an action whose episode has no decision yet; marks them.
fn pending_decisions(rule: &Rule, st: &mut RuleState) -> Vec<BTreeMap<String, String>> {
    if rule.action.is_none() {
        return vec![];
    }
    let mut out = Vec::new();
    for alert in st.alerts.values_mut() {
        if alert.state == State::Firing && alert.decided_for != alert.fired_at {
            alert.decided_for = alert.fired_at;
            out.push(alert.labels.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenants_label_is_added_and_an_alerts_own_is_kept_renamed() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let metrics = AlertMetrics::default();
        // Without tenants, labels pass (sorted).
        assert_eq!(
            metrics.tenant_labelled(pairs(&[("tenant", "x"), ("a", "1")])),
            pairs(&[("a", "1"), ("tenant", "x")])
        );
        let team = metrics.for_tenant(Some("team-a"));
        assert_eq!(
            team.labels([("outcome", "ok")]),
            pairs(&[("outcome", "ok"), ("tenant", "team-a")])
        );
        assert_eq!(
            team.tenant_labelled(pairs(&[("tenant", "x"), ("exported_tenant", "y")])),
            pairs(&[
                ("exported_exported_tenant", "x"),
                ("exported_tenant", "y"),
                ("tenant", "team-a"),
            ])
        );
    }
}
