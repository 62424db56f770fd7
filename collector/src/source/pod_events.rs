//! `pod_events`: the Kubernetes events of this pod, as `kubectl describe pod` lists them
//! (scheduling, image pulls, failed probes, back-offs, evictions, OOM kills), each a log
//! record of scope `porthole.pod_events`: what a sealed pod's owner would otherwise learn
//! only from the cluster.
//!
//! The events are listed (`GET …/events?fieldSelector=involvedObject.name=<pod>`), then
//! watched from the list's resource version; a watch that ends is started again from the
//! last version seen, and one whose version expired (410) lists again. An event that
//! happens again is the same object with a higher `count`: each count is reported once.
//! What was reported (event uid → count, the newest 512) is saved in
//! `<buffer.dir>/pod_events.json` once the record is in the buffer, so a restart of the
//! collector reports nothing twice.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use porthole_proto::common::{AnyValue, KeyValue, any_value};
use porthole_proto::logs::LogRecord;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::CollectorError;
use crate::resource::string_attribute;
use crate::source::file::now_nanos;
use crate::source::pod_logs::{KubePod, load, save};

const SCOPE: &str = "porthole.pod_events";
/// Events remembered as reported; Kubernetes keeps an event an hour by default.
const REMEMBERED: usize = 512;
const RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// What has been reported: per event uid, the count reported and when that was.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Reported {
    events: BTreeMap<String, (i32, i64)>,
}

/// Reports the pod's events until `stop`.
pub async fn run(pod: Arc<KubePod>, stop: CancellationToken) -> Result<(), CollectorError> {
    let path = pod.buffer_dir.join("pod_events.json");
    let mut reporter = Reporter {
        reported: load(&path),
        path,
        pod: pod.clone(),
    };
    let api: Api<Event> = Api::namespaced(pod.client.clone(), &pod.namespace);
    let selector = format!("involvedObject.name={}", pod.pod);
    let mut version: Option<String> = None;
    let mut wait = RETRY;
    let mut warned: Option<Instant> = None;
    while !stop.is_cancelled() {
        let outcome = match &version {
            None => reporter.list(&api, &selector, &stop).await,
            Some(from) => reporter.watch(&api, &selector, from, &stop).await,
        };
        match outcome {
            // A watch ends after a few minutes, or at once behind some proxies: it is
            // started again a second later, from the version it reached.
            Ok(Some(next)) => {
                version = Some(next);
                wait = RETRY;
            }
            // The version expired: list again.
            Ok(None) => version = None,
            Err(error) => {
                reporter.pod.metrics.pod_log_errors.inc();
                let forbidden =
                    matches!(&error, kube::Error::Api(s) if s.code == 401 || s.code == 403);
                if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    warned = Some(Instant::now());
                    let hint = if forbidden {
                        "the collector's ServiceAccount needs `list` and `watch` on `events` in its namespace"
                    } else {
                        ""
                    };
                    tracing::warn!(%error, hint, "reading the pod's events failed; trying again (logged once a minute)");
                }
                wait = (wait * 2).min(MAX_RETRY);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => {}
        }
    }
    Ok(())
}

struct Reporter {
    reported: Reported,
    path: PathBuf,
    pod: Arc<KubePod>,
}

impl Reporter {
    /// Reports the events there are; the list's version, to watch from.
    async fn list(
        &mut self,
        api: &Api<Event>,
        selector: &str,
        stop: &CancellationToken,
    ) -> Result<Option<String>, kube::Error> {
        let list = api.list(&ListParams::default().fields(selector)).await?;
        let mut events = list.items;
        events.sort_by_key(when);
        for event in events {
            self.report(event, stop).await;
        }
        Ok(Some(list.metadata.resource_version.unwrap_or_default()))
    }

    /// Reports events as they come, until the watch ends: the last version seen, or
    /// `None` when it expired.
    async fn watch(
        &mut self,
        api: &Api<Event>,
        selector: &str,
        from: &str,
        stop: &CancellationToken,
    ) -> Result<Option<String>, kube::Error> {
        let params = WatchParams::default().fields(selector).timeout(290);
        let mut stream = std::pin::pin!(api.watch(&params, from).await?);
        let mut version = from.to_string();
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                () = stop.cancelled() => return Ok(Some(version)),
            };
            match next {
                None => return Ok(Some(version)),
                Some(Err(error)) => return Err(error),
                Some(Ok(WatchEvent::Added(event) | WatchEvent::Modified(event))) => {
                    if let Some(v) = &event.metadata.resource_version {
                        version.clone_from(v);
                    }
                    self.report(event, stop).await;
                }
                Some(Ok(WatchEvent::Deleted(event))) => {
                    if let Some(v) = &event.metadata.resource_version {
                        version.clone_from(v);
                    }
                }
                Some(Ok(WatchEvent::Bookmark(mark))) => version = mark.metadata.resource_version,
                Some(Ok(WatchEvent::Error(status))) if status.code == 410 => return Ok(None),
                Some(Ok(WatchEvent::Error(status))) => {
                    return Err(kube::Error::Api(status));
                }
            }
        }
    }

    /// Sends the event as a record if its count was not reported yet.
    async fn report(&mut self, event: Event, stop: &CancellationToken) {
        let Some(uid) = event.metadata.uid.clone() else {
            return;
        };
        let count = event
            .series
            .as_ref()
            .and_then(|s| s.count)
            .or(event.count)
            .unwrap_or(1);
        if self
            .reported
            .events
            .get(&uid)
            .is_some_and(|(done, _)| *done >= count)
        {
            return;
        }
        let at = when(&event);
        let reason = event.reason.clone().unwrap_or_default();
        let mut body = format!("{reason}: {}", event.message.clone().unwrap_or_default());
        if self.pod.redactor.string(&mut body) {
            self.pod.metrics.redacted.inc();
        }
        let warning = event.type_.as_deref() == Some("Warning");
        let mut attributes = vec![
            string_attribute("k8s.event.reason", &reason),
            string_attribute("k8s.event.uid", &uid),
            KeyValue {
                key: "k8s.event.count".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(i64::from(count))),
                }),
                ..KeyValue::default()
            },
        ];
        if let Some(container) = event
            .involved_object
            .field_path
            .as_deref()
            .and_then(container_of)
        {
            attributes.push(string_attribute("k8s.container.name", container));
        }
        let record = LogRecord {
            time_unix_nano: at.max(0) as u64,
            observed_time_unix_nano: now_nanos(),
            severity_number: if warning { 13 } else { 9 },
            severity_text: if warning { "WARN" } else { "INFO" }.into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body)),
            }),
            attributes,
            ..LogRecord::default()
        };
        if !self.pod.append(SCOPE, vec![record], stop).await {
            return;
        }
        self.reported.events.insert(uid, (count, at));
        if self.reported.events.len() > REMEMBERED {
            let oldest = self
                .reported
                .events
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(uid, _)| uid.clone());
            if let Some(uid) = oldest {
                self.reported.events.remove(&uid);
            }
        }
        if let Err(error) = save(&self.path, &self.reported) {
            self.pod.metrics.disk_write_failed("pod_events", &error);
        }
    }
}

/// When the event last happened, in nanoseconds.
fn when(event: &Event) -> i64 {
    let last = event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0)
        .or_else(|| event.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0));
    last.and_then(|t| i64::try_from(t.as_nanosecond()).ok())
        .unwrap_or(0)
}

/// `spec.containers{app}` → `app`.
fn container_of(field_path: &str) -> Option<&str> {
    let rest = field_path
        .strip_prefix("spec.containers{")
        .or_else(|| field_path.strip_prefix("spec.initContainers{"))?;
    rest.strip_suffix('}')
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use axum::extract::{Query, State};
    use axum::response::{IntoResponse, Response};

    use super::*;

    /// The events API of one namespace: a list, and watches that send what `watched`
    /// holds and end (the first answers 410 once `expire_first_watch` is set).
    #[derive(Default)]
    struct Events {
        listed: Mutex<Vec<serde_json::Value>>,
        watched: Mutex<Vec<serde_json::Value>>,
        expire_first_watch: Mutex<bool>,
        requests: Mutex<Vec<HashMap<String, String>>>,
    }

    async fn events(
        State(api): State<Arc<Events>>,
        Query(query): Query<HashMap<String, String>>,
    ) -> Response {
        api.requests.lock().unwrap().push(query.clone());
        if query.get("watch").is_some_and(|w| w == "true") {
            let expire = std::mem::replace(&mut *api.expire_first_watch.lock().unwrap(), false);
            let lines: String = if expire {
                let gone = serde_json::json!({"type": "ERROR", "object": {"kind": "Status",
                    "apiVersion": "v1", "status": "Failure", "reason": "Expired", "code": 410,
                    "message": "too old resource version"}});
                format!("{gone}\n")
            } else {
                std::mem::take(&mut *api.watched.lock().unwrap())
                    .into_iter()
                    .map(|object| {
                        format!(
                            "{}\n",
                            serde_json::json!({"type": "MODIFIED", "object": object})
                        )
                    })
                    .collect()
            };
            return lines.into_response();
        }
        axum::Json(serde_json::json!({
            "apiVersion": "v1", "kind": "EventList", "metadata": {"resourceVersion": "10"},
            "items": api.listed.lock().unwrap().clone(),
        }))
        .into_response()
    }

    fn event(
        uid: &str,
        kind: &str,
        reason: &str,
        message: &str,
        count: i32,
        at: &str,
    ) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("checkout-0.{uid}"), "namespace": "shop", "uid": uid,
                "resourceVersion": format!("{}", 10 + count)},
            "involvedObject": {"kind": "Pod", "name": "checkout-0", "namespace": "shop",
                "fieldPath": "spec.containers{app}"},
            "type": kind, "reason": reason, "message": message, "count": count,
            "firstTimestamp": "2026-12-07T10:00:00Z", "lastTimestamp": at,
        })
    }

    /// Listed and watched events become records, each count once: across watches that
    /// end, a version that expired (listed again), and a restart of the collector.
    #[tokio::test]
    async fn the_pods_events_are_reported_once_each_time_they_happen() {
        let api = Arc::new(Events::default());
        let probe = "Liveness probe failed: HTTP probe failed with statuscode: 500";
        let scheduled = event(
            "a",
            "Normal",
            "Scheduled",
            "Successfully assigned shop/checkout-0 to node-a",
            1,
            "2026-12-07T10:00:00Z",
        );
        let unhealthy = |count, at| event("b", "Warning", "Unhealthy", probe, count, at);
        let back_off = event(
            "c",
            "Warning",
            "BackOff",
            "Back-off restarting failed container app",
            1,
            "2026-12-07T10:05:20Z",
        );
        let unhealthy_again = unhealthy(3, "2026-12-07T10:05:10Z");
        *api.listed.lock().unwrap() = vec![scheduled.clone(), unhealthy(2, "2026-12-07T10:05:00Z")];
        *api.watched.lock().unwrap() = vec![unhealthy_again.clone(), back_off.clone()];
        *api.expire_first_watch.lock().unwrap() = true;
        let app = axum::Router::new()
            .route("/api/v1/namespaces/shop/events", axum::routing::get(events))
            .with_state(api.clone());
        let dir = tempfile::tempdir().unwrap();
        let pod = crate::source::test_kube_pod(app, dir.path()).await;
        let report = |until: usize, within: Duration| {
            let pod = pod.clone();
            async move {
                let stop = CancellationToken::new();
                let task = tokio::spawn(run(pod.clone(), stop.clone()));
                let mut got = Vec::new();
                let deadline = Instant::now() + within;
                while got.len() < until && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    got.extend(crate::source::take_log_records(&pod.buffer));
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                stop.cancel();
                task.await.unwrap().unwrap();
                got.extend(crate::source::take_log_records(&pod.buffer));
                got
            }
        };
        let got = report(4, Duration::from_secs(20)).await;
        let text = |log: &LogRecord| match log.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(any_value::Value::StringValue(body)) => format!("{} {body}", log.severity_text),
            other => panic!("a string body, not {other:?}"),
        };
        assert_eq!(
            got.iter().map(text).collect::<Vec<_>>(),
            [
                "INFO Scheduled: Successfully assigned shop/checkout-0 to node-a",
                "WARN Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 500",
                "WARN Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 500",
                "WARN BackOff: Back-off restarting failed container app",
            ]
        );
        assert_eq!(
            got[2].time_unix_nano, 1_796_637_910_000_000_000,
            "when it happened again"
        );
        assert!(
            got[3]
                .attributes
                .iter()
                .any(|a| a.key == "k8s.container.name")
        );
        let requests = api.requests.lock().unwrap().clone();
        let lists = requests.iter().filter(|q| !q.contains_key("watch")).count();
        assert_eq!(lists, 2, "listed again after the 410: {requests:?}");
        assert!(requests.iter().all(|q| {
            q.get("fieldSelector")
                .is_some_and(|f| f == "involvedObject.name=checkout-0")
        }));

        // A restart lists the same events again: nothing is reported twice.
        *api.listed.lock().unwrap() = vec![scheduled, unhealthy_again, back_off];
        let got = report(1, Duration::from_secs(3)).await;
        assert!(got.is_empty(), "{got:?}");
    }
}
