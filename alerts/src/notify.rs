//! Notifications: to webhook receivers in the JSON Alertmanager sends them (`version: "4"`),
//! and to Alertmanagers' `POST /api/v2/alerts` the way Prometheus does. A bounded queue
//! feeds one sender task; a full queue drops the notification and counts it; each delivery
//! is retried with exponential backoff on connection errors, 429 and 5xx.

use std::collections::BTreeMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::Serialize;
use serde_json::{Value, json};

use crate::AlertMetrics;

/// Notifications waiting to be delivered, at most.
pub const QUEUE: usize = 1_024;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub status: &'static str,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

pub enum Delivery {
    /// One webhook payload per rule evaluation that changed something.
    Webhook {
        alertname: String,
        alerts: Vec<Notice>,
    },
    /// The alerts Prometheus would send to Alertmanager at this evaluation.
    Alertmanager { alerts: Vec<Value> },
}

#[derive(Clone)]
pub struct Notifier {
    queue: tokio::sync::mpsc::Sender<Delivery>,
    metrics: AlertMetrics,
}

impl Notifier {
    pub fn start(
        webhooks: Vec<String>,
        alertmanagers: Vec<String>,
        external_url: String,
        metrics: AlertMetrics,
    ) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<Delivery>(QUEUE);
        let counted = metrics.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client");
            while let Some(delivery) = rx.recv().await {
                let (targets, body) = match delivery {
                    Delivery::Webhook { alertname, alerts } => (
                        &webhooks,
                        webhook_payload(&alertname, alerts, &external_url),
                    ),
                    Delivery::Alertmanager { alerts } => {
                        let urls: Vec<String> = alertmanagers
                            .iter()
                            .map(|u| format!("{}/api/v2/alerts", u.trim_end_matches('/')))
                            .collect();
                        for url in &urls {
                            let outcome = deliver(&http, url, &Value::Array(alerts.clone())).await;
                            count(&counted, "alertmanager", outcome);
                        }
                        continue;
                    }
                };
                for url in targets {
                    let outcome = deliver(&http, url, &body).await;
                    count(&counted, "webhook", outcome);
                }
            }
        });
        Self { queue, metrics }
    }

    pub fn send(&self, delivery: Delivery) {
        if self.queue.try_send(delivery).is_err() {
            count(&self.metrics, "queue", "dropped");
            tracing::warn!("notification queue full: notification dropped");
        }
    }
}

fn count(metrics: &AlertMetrics, receiver: &str, outcome: &str) {
    metrics
        .notifications
        .get_or_create(&metrics.labels([("receiver", receiver), ("outcome", outcome)]))
        .inc();
}

async fn deliver(http: &reqwest::Client, url: &str, body: &Value) -> &'static str {
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_max_times(5)
        .with_jitter()
        .build();
    loop {
        let retry = match http.post(url).json(body).send().await {
            Ok(response) if response.status().is_success() => return "sent",
            Ok(response) => {
                let status = response.status();
                if status.as_u16() != 429 && !status.is_server_error() {
                    tracing::warn!(%url, %status, "notification refused; not retried");
                    return "refused";
                }
                format!("HTTP {status}")
            }
            Err(e) => e.to_string(),
        };
        match backoff.next() {
            Some(delay) => tokio::time::sleep(delay).await,
            None => {
                tracing::warn!(%url, error = %retry, "notification failed after retries");
                return "failed";
            }
        }
    }
}

/// The webhook body Alertmanager sends: one group per alert name.
pub fn webhook_payload(alertname: &str, alerts: Vec<Notice>, external_url: &str) -> Value {
    let common = |pick: fn(&Notice) -> &BTreeMap<String, String>| -> BTreeMap<String, String> {
        let mut iter = alerts.iter();
        let mut common = iter.next().map(|a| pick(a).clone()).unwrap_or_default();
        for a in iter {
            common.retain(|k, v| pick(a).get(k) == Some(v));
        }
        common
    };
    let status = if alerts.iter().any(|a| a.status == "firing") {
        "firing"
    } else {
        "resolved"
    };
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname={alertname:?}}}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "porthole",
        "groupLabels": {"alertname": alertname},
        "commonLabels": common(|a| &a.labels),
        "commonAnnotations": common(|a| &a.annotations),
        "externalURL": external_url,
        "alerts": alerts,
    })
}
