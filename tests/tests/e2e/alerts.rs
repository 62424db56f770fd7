//! Alert rules end to end: a real `porthole serve` with `--rules`, a fake Kubernetes API
//! server (records every request, serves a Deployment with two ReplicaSet revisions and
//! pods), a webhook receiver and a fake Alertmanager, both in this process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::harness::{Porthole, wait_for};

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    content_type: String,
    body: Value,
}

/// The fake cluster and receivers: every request is recorded.
#[derive(Clone, Default)]
struct Fake {
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Fake {
    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn mutations(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.method != "GET" && !r.path.starts_with("/hook") && !r.path.starts_with("/am/")
            })
            .collect()
    }

    fn received(&self, prefix: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .map(|r| r.body)
            .collect()
    }
}

fn template(version: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "checkout", "pod-template-hash": format!("hash-{version}")}},
        "spec": {"containers": [{"name": "app", "image": format!("shop/checkout:{version}")}]}
    })
}

fn deployment() -> Value {
    let mut current = template("v2");
    current["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("pod-template-hash");
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "shop", "uid": "dep-uid",
                     "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {"selector": {"matchLabels": {"app": "checkout"}}, "template": current}
    })
}

fn replica_set(revision: u32, version: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("checkout-{version}"), "namespace": "shop",
                     "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout",
                                          "uid": "dep-uid", "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": "checkout"}}, "template": template(version)}
    })
}

async fn handle(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let path = uri.path().to_string();
    fake.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: uri.to_string(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    match (method.as_str(), path.as_str()) {
        (_, p) if p.starts_with("/hook") || p.starts_with("/am/") => StatusCode::OK.into_response(),
        ("GET" | "PATCH", "/apis/apps/v1/namespaces/shop/deployments/checkout") => Json(deployment()).into_response(),
        ("GET", "/apis/apps/v1/namespaces/shop/replicasets") => Json(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {},
            "items": [replica_set(1, "v1"), replica_set(2, "v2")]
        }))
        .into_response(),
        ("DELETE", p) if p.starts_with("/api/v1/namespaces/shop/pods/") => Json(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p.rsplit('/').next().unwrap(), "namespace": "shop"}
        }))
        .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})),
        )
            .into_response(),
    }
}

type Grant = (String, String, String);

/// (apiGroup, resource, verb) the remediation Role in deploy/ grants.
fn rbac_grants() -> std::collections::BTreeSet<Grant> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/kubernetes/base/rbac.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut grants = std::collections::BTreeSet::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let doc: Value = serde::Deserialize::deserialize(doc).unwrap();
        if doc["kind"] != "Role" {
            continue;
        }
        for rule in doc["rules"].as_array().unwrap() {
            for group in rule["apiGroups"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    for verb in rule["verbs"].as_array().unwrap() {
                        let text = |v: &Value| v.as_str().unwrap().to_string();
                        grants.insert((text(group), text(resource), text(verb)));
                    }
                }
            }
        }
    }
    grants
}

/// What a request to the fake Kubernetes API needs, as an RBAC (group, resource, verb).
fn needed(r: &Recorded) -> Option<Grant> {
    let path = r.path.split('?').next().unwrap();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None, // the webhook and Alertmanager receivers
    };
    let (resource, named) = match rest {
        ["namespaces", _, resource] => (*resource, false),
        ["namespaces", _, resource, _name] => (*resource, true),
        _ => panic!("unexpected Kubernetes API path {path}"),
    };
    let verb = match (r.method.as_str(), named) {
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        (m, _) => panic!("unexpected method {m} {path}"),
    };
    Some((group.to_string(), resource.to_string(), verb.to_string()))
}

/// Every Kubernetes request the actions sent is one the Role allows; returns them.
fn assert_rbac_allows(fake: &Fake) -> std::collections::BTreeSet<Grant> {
    let grants = rbac_grants();
    let used: std::collections::BTreeSet<Grant> =
        fake.requests().iter().filter_map(needed).collect();
    let denied: Vec<&Grant> = used.difference(&grants).collect();
    assert!(denied.is_empty(), "deploy/ RBAC would forbid {denied:?}");
    used
}

async fn start_fake() -> (Fake, SocketAddr) {
    let fake = Fake::default();
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, addr)
}

fn kubeconfig(dir: &Path, addr: SocketAddr) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\nusers:\n- name: test\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: test\ncurrent-context: fake\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// `n` log records from `service` `version` in namespace shop, pod `pod`, sent over
/// OTLP/HTTP JSON, stamped now.
async fn send_logs(
    porthole: &Porthole,
    version: &str,
    pod: &str,
    severity: &str,
    body: &str,
    n: usize,
) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let attr = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    let records: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "timeUnixNano": (now + i as u128).to_string(),
                "severityText": severity,
                "body": {"stringValue": format!("{body} #{i}")},
            })
        })
        .collect();
    let request = json!({"resourceLogs": [{
        "resource": {"attributes": [
            attr("service.name", "checkout"), attr("service.version", version),
            attr("k8s.namespace.name", "shop"), attr("k8s.pod.name", pod),
        ]},
        "scopeLogs": [{"logRecords": records}]
    }]});
    let response = reqwest::Client::new()
        .post(porthole.otlp_http_url("/v1/logs"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn get(porthole: &Porthole, path: &str) -> Value {
    reqwest::get(porthole.url(path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Active alerts of `name` as (labels, state, value).
async fn alerts_of(
    porthole: &Porthole,
    name: &str,
) -> Vec<(BTreeMap<String, String>, String, f64)> {
    let body = get(porthole, "/api/v1/alerts").await;
    body["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == name)
        .map(|a| {
            (
                serde_json::from_value(a["labels"].clone()).unwrap(),
                a["state"].as_str().unwrap().to_string(),
                a["value"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

async fn events(porthole: &Porthole) -> Vec<Value> {
    get(porthole, "/api/v1/alerts/events").await["events"]
        .as_array()
        .unwrap()
        .clone()
}

const RULES: &str = r#"
groups:
  - name: checkout
    interval: 1s
    rules:
      - alert: CheckoutErrorsByVersion
        logs: '"payment failed"'
        filters: {service: checkout, severity: ERROR}
        window: 5m
        by: version
        condition: count > 5
        for: 3s
        labels: {severity: page}
        annotations: {summary: 'checkout {{ $labels.version }} logged {{ $value }} errors'}
        action:
          kind: rollout_restart
          target: {namespace: shop, deployment: checkout}
          cooldown: 10m
          max_per_hour: 3
      - alert: CheckoutRollbackDryRun
        logs: '"payment failed"'
        filters: {service: checkout}
        window: 5m
        condition: count > 5
        action: {kind: rollback, target: {namespace: shop, deployment: checkout}, dry_run: true}
      - alert: BrokenQuery
        expr: 'vector(1) + on() (label_replace(vector(1), "a", "x", "", "") or label_replace(vector(1), "a", "y", "", ""))'
        action: {kind: delete_pod, target: {namespace: shop, pod: whatever}}
      - alert: NoDataIsNotBroken
        logs: 'anything'
        filters: {service: nobody-logs-this}
        window: 1m
        condition: count < 1
        action: {kind: delete_pod, target: {namespace: shop, pod: whatever}}
  - name: burst
    interval: 1s
    rules:
      - alert: CheckoutBurst
        logs: '"payment failed"'
        filters: {service: checkout}
        window: 4s
        condition: count > 5
        annotations: {summary: '{{ $value }} errors'}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_log_rule_fires_after_for_restarts_once_and_every_decision_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, fake_addr) = start_fake().await;
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("checkout.yml"), RULES).unwrap();
    let kubeconfig = kubeconfig(dir.path(), fake_addr);
    let hook = format!("http://{fake_addr}/hook");
    let am = format!("http://{fake_addr}/am");
    // An audit event from 2020, past the 90 days kept: the first decision prunes it.
    let old_day = dir.path().join("data/_porthole/alerts/events/2020-01-01");
    std::fs::create_dir_all(&old_day).unwrap();
    let old_event = old_day.join("1577836800000-old.json");
    std::fs::write(&old_event, "{}").unwrap();
    let porthole = Porthole::start(
        "serve",
        &dir.path().join("data"),
        &[
            "--batch-window",
            "100ms",
            "--rules",
            rules.to_str().unwrap(),
            "--alert-webhook",
            &hook,
            "--alertmanager-url",
            &am,
        ],
        &[("KUBECONFIG", &kubeconfig)],
    )
    .await;

    // v1 is healthy: it logs, nothing fires, nothing is sent to the cluster.
    send_logs(&porthole, "v1", "checkout-v1-a", "INFO", "payment ok", 20).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        alerts_of(&porthole, "CheckoutErrorsByVersion")
            .await
            .is_empty()
    );
    assert!(fake.mutations().is_empty(), "{:?}", fake.mutations());

    // v2 is deployed and fails: pending first, firing once `for` (3 s) has passed.
    send_logs(
        &porthole,
        "v2",
        "checkout-v2-a",
        "ERROR",
        "payment failed: card declined",
        8,
    )
    .await;
    let pending = wait_for("the alert pending", Duration::from_secs(30), || async {
        let alerts = alerts_of(&porthole, "CheckoutErrorsByVersion").await;
        alerts
            .into_iter()
            .find(|a| a.0.get("version").map(String::as_str) == Some("v2"))
    })
    .await;
    assert_eq!(pending.1, "pending", "{pending:?}");
    assert_eq!(pending.2, 8.0);
    assert_eq!(pending.0["severity"], "page");
    let pending_seen = std::time::Instant::now();
    wait_for("the alert firing", Duration::from_secs(30), || async {
        let alerts = alerts_of(&porthole, "CheckoutErrorsByVersion").await;
        alerts.iter().any(|a| a.1 == "firing").then_some(())
    })
    .await;
    assert!(
        pending_seen.elapsed() >= Duration::from_secs(1),
        "fired before `for` had passed"
    );

    // Exactly one PATCH, the one `kubectl rollout restart` sends.
    let patch = wait_for("the restart PATCH", Duration::from_secs(30), || async {
        fake.mutations().into_iter().find(|r| r.method == "PATCH")
    })
    .await;
    assert!(
        patch
            .path
            .starts_with("/apis/apps/v1/namespaces/shop/deployments/checkout?"),
        "{patch:?}"
    );
    assert_eq!(patch.content_type, "application/strategic-merge-patch+json");
    wait_for(
        "the old audit event pruned",
        Duration::from_secs(30),
        || async {
            (!old_event.exists()
                && porthole
                    .counter("porthole_alert_events_pruned_total", &[])
                    .await
                    == 1.0)
                .then_some(())
        },
    )
    .await;
    let restarted = patch.body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .unwrap_or_else(|| panic!("{:?}", patch.body));
    assert!(chrono_like(restarted), "{restarted}");

    // v3 fails too: same rule, same Deployment, inside the cooldown: skipped.
    send_logs(
        &porthole,
        "v3",
        "checkout-v3-a",
        "ERROR",
        "payment failed: timeout",
        7,
    )
    .await;
    let skipped = wait_for("the cooldown decision", Duration::from_secs(30), || async {
        events(&porthole).await.into_iter().find(|e| {
            e["rule"] == "CheckoutErrorsByVersion"
                && e["decision"] == "skipped"
                && e["labels"]["version"] == "v3"
        })
    })
    .await;
    assert!(
        skipped["reason"].as_str().unwrap().starts_with("cooldown"),
        "{skipped}"
    );

    let all = events(&porthole).await;
    let of = |rule: &str, decision: &str| -> Vec<Value> {
        all.iter()
            .filter(|e| e["rule"] == rule && e["decision"] == decision)
            .cloned()
            .collect()
    };
    let acted = of("CheckoutErrorsByVersion", "acted");
    assert_eq!(acted.len(), 1, "{all:#?}");
    assert_eq!(acted[0]["labels"]["version"], "v2");
    assert_eq!(
        acted[0]["target"],
        json!({"namespace": "shop", "deployment": "checkout"})
    );
    // The dry run computed the rollback `kubectl rollout undo` would send, and sent nothing.
    let dry = of("CheckoutRollbackDryRun", "dry_run");
    assert_eq!(dry.len(), 1, "{all:#?}");
    let request = &dry[0]["request"];
    assert_eq!(request["content_type"], "application/json-patch+json");
    assert_eq!(request["to_revision"], 1);
    assert_eq!(request["body"][0]["path"], "/spec/template");
    assert_eq!(
        request["body"][0]["value"]["spec"]["containers"][0]["image"],
        "shop/checkout:v1"
    );
    assert!(
        request["body"][0]["value"]["metadata"]["labels"]
            .get("pod-template-hash")
            .is_none()
    );
    // The broken query and the rule without data decided not to act, and say why.
    let broken = of("BrokenQuery", "skipped");
    assert_eq!(broken.len(), 1, "{all:#?}");
    assert!(
        broken[0]["reason"]
            .as_str()
            .unwrap()
            .contains("query failed"),
        "{}",
        broken[0]
    );
    let no_data = of("NoDataIsNotBroken", "skipped");
    assert_eq!(no_data.len(), 1, "{all:#?}");
    assert!(
        no_data[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("no data"),
        "{}",
        no_data[0]
    );
    // The Role in deploy/ allows every request sent, and grants nothing beyond what the
    // actions send: this test sends all but the pod DELETE, which two_replicas_never_double_act
    // sends (and checks against the Role).
    let used = assert_rbac_allows(&fake);
    let unused: Vec<Grant> = rbac_grants().difference(&used).cloned().collect();
    assert_eq!(
        unused,
        [("".to_string(), "pods".to_string(), "delete".to_string())],
        "least privilege: grants no action needs"
    );
    // One mutating request in all: the restart (no rollback PATCH, no pod DELETE).
    assert_eq!(fake.mutations().len(), 1, "{:#?}", fake.mutations());
    let rules = get(&porthole, "/api/v1/rules").await;
    let broken_rule = &rules["data"]["groups"][0]["rules"][2];
    assert_eq!(broken_rule["health"], "err", "{broken_rule}");

    // The webhook got Alertmanager's payload for firing, then (after the 4 s window of the
    // burst rule) for resolved; Alertmanager got alerts with startsAt/endsAt.
    let resolved = wait_for("a resolved webhook", Duration::from_secs(30), || async {
        fake.received("/hook")
            .into_iter()
            .find(|p| p["groupLabels"]["alertname"] == "CheckoutBurst" && p["status"] == "resolved")
    })
    .await;
    assert_eq!(resolved["version"], "4");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    let firing: Vec<Value> = fake
        .received("/hook")
        .into_iter()
        .filter(|p| {
            p["groupLabels"]["alertname"] == "CheckoutErrorsByVersion" && p["status"] == "firing"
        })
        .collect();
    assert!(!firing.is_empty());
    let alert = &firing[0]["alerts"][0];
    assert_eq!(alert["labels"]["version"], "v2");
    assert_eq!(
        alert["annotations"]["summary"],
        "checkout v2 logged 8 errors"
    );
    assert_eq!(firing[0]["commonLabels"]["severity"], "page");
    let to_am = fake.received("/am/api/v2/alerts");
    assert!(
        to_am
            .iter()
            .flat_map(|b| b.as_array().unwrap().clone())
            .any(|a| a["labels"]["alertname"] == "CheckoutErrorsByVersion"
                && a["endsAt"].is_string()),
        "{to_am:?}"
    );
    // ALERTS is exposed, and decisions are counted.
    let metrics = porthole.metrics().await;
    assert!(
        metrics.lines().any(|l| l.starts_with("ALERTS{")
            && l.contains("alertname=\"CheckoutErrorsByVersion\"")
            && l.contains("alertstate=\"firing\"")),
        "{metrics}"
    );
    assert!(
        porthole
            .counter(
                "porthole_alert_action_decisions_total",
                &["decision=\"acted\""]
            )
            .await
            >= 1.0
    );
}

fn chrono_like(text: &str) -> bool {
    text.len() >= 20 && text.as_bytes()[4] == b'-' && text.contains('T') && text.ends_with('Z')
}

const GOOD: &str = "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Always\n        expr: vector(1)\n";

#[tokio::test(flavor = "multi_thread")]
async fn invalid_rule_files_are_refused_precisely_and_the_previous_rules_keep_running() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let file = rules.join("app.yaml");

    // At startup, an invalid file stops the process with the file, group, rule and field.
    std::fs::write(&file, "groups:\n  - name: g\n    rules:\n      - alert: Slow\n        expr: up\n        for: 5parsecs\n").unwrap();
    let stderr = Porthole::refused(
        "serve",
        &dir.path().join("data"),
        &["--rules", rules.to_str().unwrap()],
    );
    assert!(
        stderr.contains("app.yaml: group \"g\": rule \"Slow\" (#1): for:"),
        "{stderr}"
    );

    std::fs::write(&file, GOOD).unwrap();
    // Audit events kept for less than the guardrails read back: refused, saying why.
    let stderr = Porthole::refused(
        "serve",
        &dir.path().join("data"),
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--alert-events-retention",
            "7d",
        ],
    );
    assert!(
        stderr.contains("--alert-events-retention must be at least 31d"),
        "{stderr}"
    );
    let porthole = Porthole::start(
        "serve",
        &dir.path().join("data"),
        &["--rules", rules.to_str().unwrap()],
        &[],
    )
    .await;
    let fired_at = wait_for("Always firing", Duration::from_secs(30), || async {
        let body = get(&porthole, "/api/v1/alerts").await;
        let alert = body["data"]["alerts"].as_array()?.first()?.clone();
        (alert["state"] == "firing").then(|| alert["activeAt"].clone())
    })
    .await;

    // A broken edit is refused; the running rule and its state stay.
    std::fs::write(
        &file,
        format!("{GOOD}      - alert: Typo\n        exr: up\n"),
    )
    .unwrap();
    let rules_body = wait_for("the refused reload", Duration::from_secs(30), || async {
        let body = get(&porthole, "/api/v1/rules").await;
        (body["data"]["reload"]["ok"] == false).then_some(body)
    })
    .await;
    let errors = rules_body["data"]["reload"]["errors"].to_string();
    assert!(
        errors.contains("app.yaml") && errors.contains("unknown field `exr`"),
        "{errors}"
    );
    assert_eq!(
        rules_body["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        porthole
            .counter("porthole_rule_reloads_total", &["outcome=\"error\""])
            .await
            >= 1.0
    );
    let first =
        get(&porthole, "/api/v1/rules").await["data"]["groups"][0]["rules"][0]["lastEvaluation"]
            .clone();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later =
        get(&porthole, "/api/v1/rules").await["data"]["groups"][0]["rules"][0]["lastEvaluation"]
            .clone();
    assert_ne!(first, later, "the previous rules keep being evaluated");

    // A good edit loads; the unchanged rule keeps its state (same activeAt).
    std::fs::write(
        &file,
        format!("{GOOD}      - alert: Second\n        expr: vector(2)\n"),
    )
    .unwrap();
    wait_for("the new rule", Duration::from_secs(30), || async {
        let body = get(&porthole, "/api/v1/alerts").await;
        let alerts = body["data"]["alerts"].as_array()?.clone();
        (alerts.len() == 2).then_some(())
    })
    .await;
    let body = get(&porthole, "/api/v1/alerts").await;
    let always = body["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "Always")
        .unwrap()
        .clone();
    assert_eq!(always["activeAt"], fired_at, "state kept across the reload");
    assert_eq!(always["value"], "1e+00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_never_double_act() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, fake_addr) = start_fake().await;
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("pods.yml"),
        "groups:\n  - name: pods\n    interval: 1s\n    rules:\n      - alert: CrashingPod\n        logs: panic\n        filters: {service: checkout}\n        window: 5m\n        by: pod\n        condition: count > 2\n        action: {kind: delete_pod, target: {namespace: shop, pod: '{{ $labels.pod }}'}, max_per_hour: 10}\n",
    )
    .unwrap();
    let kubeconfig = kubeconfig(dir.path(), fake_addr);
    let data = dir.path().join("data");
    let flags = [
        "--batch-window",
        "100ms",
        "--rules",
        rules.to_str().unwrap(),
        "--alert-lease-slot",
        "25s",
    ];
    let env = [("KUBECONFIG", kubeconfig.as_str())];
    let serve = Porthole::start("serve", &data, &flags, &env).await;
    let query = Porthole::start("query", &data, &flags, &env).await;
    for pod in ["checkout-a", "checkout-b", "checkout-c"] {
        send_logs(&serve, "v1", pod, "ERROR", "panic: nil map", 4).await;
    }
    // Both replicas see the alerts firing…
    for replica in [&serve, &query] {
        wait_for("three firing alerts", Duration::from_secs(30), || async {
            let alerts = alerts_of(replica, "CrashingPod").await;
            (alerts.iter().filter(|a| a.1 == "firing").count() == 3).then_some(())
        })
        .await;
    }
    // …and exactly one DELETE per pod reaches the cluster.
    wait_for("three deletes", Duration::from_secs(30), || async {
        (fake.mutations().len() >= 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut deleted: Vec<String> = fake
        .mutations()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path.trim_end_matches('?')))
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        ["a", "b", "c"].map(|p| format!("DELETE /api/v1/namespaces/shop/pods/checkout-{p}")),
        "{deleted:?}"
    );
    let acted: Vec<Value> = events(&query)
        .await
        .into_iter()
        .filter(|e| e["decision"] == "acted")
        .collect();
    assert_eq!(acted.len(), 3, "{acted:#?}");
    assert!(assert_rbac_allows(&fake).contains(&("".into(), "pods".into(), "delete".into())));
    let nodes: std::collections::BTreeSet<String> = acted
        .iter()
        .map(|e| e["node"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(nodes.len(), 1, "one actor: {nodes:?}");
}

/// Spans of `service`'s `version`: one per (name, duration in ms, failed), ending now,
/// sent over OTLP/HTTP JSON.
async fn send_spans(porthole: &Porthole, version: &str, spans: &[(&str, u64, bool)]) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let attr = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    let spans: Vec<Value> = spans
        .iter()
        .enumerate()
        .map(|(i, (name, ms, failed))| {
            let end = now - i as u128 * 1_000;
            json!({
                "traceId": format!("{:032x}", 0xabc0_0000_u128 + i as u128 + if version == "v2" { 1 << 40 } else { 0 }),
                "spanId": format!("{:016x}", 0x100 + i),
                "name": name,
                "kind": 2,
                "startTimeUnixNano": (end - *ms as u128 * 1_000_000).to_string(),
                "endTimeUnixNano": end.to_string(),
                "status": {"code": if *failed { 2 } else { 1 }},
            })
        })
        .collect();
    let request = json!({"resourceSpans": [{
        "resource": {"attributes": [
            attr("service.name", "checkout"), attr("service.version", version),
            attr("k8s.namespace.name", "shop"),
        ]},
        "scopeSpans": [{"spans": spans}]
    }]});
    let response = reqwest::Client::new()
        .post(porthole.otlp_http_url("/v1/traces"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

const TRACE_RULES: &str = r#"
groups:
  - name: checkout-traces
    interval: 1s
    rules:
      - alert: CheckoutSpanErrors
        spans: ''
        filters: {service: checkout}
        window: 5m
        by: version
        condition: error_rate > 0.1
        annotations: {summary: '{{ $labels.version }} fails {{ $value }} of its spans'}
      - alert: CheckoutPaySlow
        spans: ''
        filters: {service: checkout, name: 'POST /pay'}
        window: 5m
        by: version
        condition: p90 > 500ms
      - alert: CheckoutRefundsStopped
        spans: ''
        filters: {service: checkout, name: 'POST /refund'}
        window: 5m
        condition: count < 1
      - alert: NobodyTraces
        spans: ''
        filters: {service: nobody}
        window: 5m
        condition: count < 1
        action: {kind: delete_pod, target: {namespace: shop, pod: whatever}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trace_rules_fire_per_version_on_error_rate_latency_and_missing_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, fake_addr) = start_fake().await;
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("traces.yml"), TRACE_RULES).unwrap();
    let kubeconfig = kubeconfig(dir.path(), fake_addr);
    let porthole = Porthole::start(
        "serve",
        &dir.path().join("data"),
        &[
            "--batch-window",
            "100ms",
            "--rules",
            rules.to_str().unwrap(),
        ],
        &[("KUBECONFIG", &kubeconfig)],
    )
    .await;

    // v1: 20 fast spans, one failed (5% < 10%). v2: 10 spans of POST /pay, 4 of them
    // failed and slow (900 ms): 40% errors, p90 0.9 s. One refund span, in v1.
    let mut v1 = vec![("POST /pay", 10, false); 19];
    v1.push(("POST /refund", 10, true));
    send_spans(&porthole, "v1", &v1).await;
    let mut v2 = vec![("POST /pay", 100, false); 6];
    v2.extend([("POST /pay", 900, true); 4]);
    send_spans(&porthole, "v2", &v2).await;

    let errors = wait_for("the error-rate alert", Duration::from_secs(30), || async {
        let alerts = alerts_of(&porthole, "CheckoutSpanErrors").await;
        (!alerts.is_empty()).then_some(alerts)
    })
    .await;
    assert_eq!(errors.len(), 1, "only v2 fails more than 10%: {errors:?}");
    assert_eq!(errors[0].0["version"], "v2");
    assert_eq!(errors[0].1, "firing", "no `for`: firing at once");
    assert_eq!(errors[0].2, 0.4);

    let slow = wait_for("the latency alert", Duration::from_secs(10), || async {
        let alerts = alerts_of(&porthole, "CheckoutPaySlow").await;
        (!alerts.is_empty()).then_some(alerts)
    })
    .await;
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert_eq!(slow[0].0["version"], "v2");
    assert_eq!(slow[0].2, 0.9, "the 9th of 10 durations, in seconds");

    // The refund span exists in the window, so the "stopped" rule is quiet.
    assert!(
        alerts_of(&porthole, "CheckoutRefundsStopped")
            .await
            .is_empty()
    );
    // No spans at all from `nobody`: that is no data, not "zero traffic"; the action is
    // skipped, saying so, and nothing reaches the cluster.
    let skipped = wait_for("the no-data decision", Duration::from_secs(10), || async {
        events(&porthole)
            .await
            .into_iter()
            .find(|e| e["rule"] == "NobodyTraces")
    })
    .await;
    assert_eq!(skipped["decision"], "skipped", "{skipped}");
    assert!(
        skipped["reason"].as_str().unwrap().starts_with("no data"),
        "{skipped}"
    );
    assert!(fake.mutations().is_empty(), "{:?}", fake.mutations());
    let rules_now = get(&porthole, "/api/v1/rules").await;
    let described: Vec<&str> = rules_now["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["query"].as_str().unwrap())
        .collect();
    assert_eq!(
        described[1],
        "spans(\"\", name=\"POST /pay\", service=\"checkout\") over 5m by version: p90 (seconds) > 0.5"
    );

    // The ALERTS metric carries the firing trace alerts too.
    let metrics = porthole.metrics().await;
    assert!(
        metrics.lines().any(|l| l.starts_with("ALERTS{")
            && l.contains("alertname=\"CheckoutPaySlow\"")
            && l.contains("alertstate=\"firing\"")),
        "{metrics}"
    );
}

/// A Prometheus scrape target serving whatever `body` holds now.
fn gauge_target(body: Arc<Mutex<String>>) -> SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let body = body.lock().unwrap().clone();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn queues(depths: &[(&str, u32)]) -> String {
    depths
        .iter()
        .map(|(queue, depth)| format!("demo_queue_depth{{queue=\"{queue}\"}} {depth}\n"))
        .collect()
}

fn firing(alerts: &[Value], name: &str, queue: &str) -> bool {
    alerts.iter().any(|a| {
        a["labels"]["alertname"] == name && a["labels"]["queue"] == queue && a["state"] == "firing"
    })
}

/// Standard Prometheus rules only, so the very same file runs in both.
const STANDARD_RULES: &str = r#"
groups:
  - name: queues
    interval: 1s
    rules:
      - alert: QueueDeep
        expr: demo_queue_depth > 10
        for: 2s
        keep_firing_for: 2s
        labels: {severity: page, owner: 'team-{{ $labels.queue }}'}
        annotations:
          summary: 'queue {{ $labels.queue }} holds {{ $value }} items'
          humanized: '{{ $value | humanize }} on {{ $labels.instance }}'
      - alert: QueuesTotal
        expr: sum by (job) (demo_queue_depth) > 30
      - alert: DeepestQueue
        expr: topk(1, demo_queue_depth) > 0
      - alert: MissingSeries
        expr: absent(demo_never_exported{job="demo"})
"#;

/// Active alerts as Prometheus's `/api/v1/alerts` gives them, without `activeAt` (the
/// two evaluate at different instants), sorted.
async fn active_alerts(url: &str) -> Vec<Value> {
    let body: Value = match reqwest::get(url).await {
        Ok(response) => response.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let mut alerts: Vec<Value> = body["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut a| {
            a.as_object_mut().unwrap().remove("activeAt");
            a
        })
        .collect();
    alerts.sort_by_key(|a| a.to_string());
    alerts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metric_rules_agree_with_prometheus_given_the_same_file_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let rule_file = rules.join("queues.yml");
    std::fs::write(&rule_file, STANDARD_RULES).unwrap();
    let porthole = Porthole::start(
        "serve",
        &dir.path().join("porthole"),
        &[
            "--batch-window",
            "100ms",
            "--rules",
            rules.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let body = Arc::new(Mutex::new(queues(&[("a", 5), ("b", 12), ("c", 20)])));
    let target = gauge_target(body.clone());
    // Prometheus scrapes the target, evaluates the file itself, and remote-writes the
    // samples to Porthole, which evaluates the same file over them.
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{target}']\nremote_write:\n  - url: {}\n    queue_config:\n      batch_send_deadline: 1s\n",
        rule_file.display(),
        porthole.url("/api/v1/write")
    );
    let prometheus = crate::harness::PrometheusServer::start(dir.path(), &config).await;
    let theirs_url = prometheus.url("/api/v1/alerts");
    let ours_url = porthole.url("/api/v1/alerts");

    // Both must settle on the same alerts: the same label sets (series labels, rule
    // labels from templates), states, values as Prometheus prints them, and annotations.
    let agree = |what: &'static str, expect: fn(&[Value]) -> bool| {
        let (theirs_url, ours_url) = (theirs_url.clone(), ours_url.clone());
        let prometheus = &prometheus;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let theirs = active_alerts(&theirs_url).await;
                let ours = active_alerts(&ours_url).await;
                if expect(&theirs) && theirs == ours {
                    return theirs;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{what}: no agreement in 60 s\nPrometheus: {theirs:#?}\nPorthole: {ours:#?}\n{}",
                    prometheus.output()
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };

    // b and c are over 10 for longer than `for`: both firing.
    let first = agree("b and c deep", |alerts| {
        alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == "QueueDeep" && a["state"] == "firing")
            .count()
            == 2
    })
    .await;
    assert!(firing(&first, "QueueDeep", "b") && firing(&first, "QueueDeep", "c"));
    let c = first
        .iter()
        .find(|a| a["labels"]["alertname"] == "QueueDeep" && a["labels"]["queue"] == "c")
        .unwrap();
    assert_eq!(c["labels"]["owner"], "team-c", "{c}");
    assert_eq!(c["value"], "2e+01", "{c}");
    assert_eq!(c["annotations"]["summary"], "queue c holds 20 items", "{c}");
    assert!(
        first
            .iter()
            .any(|a| a["labels"]["alertname"] == "QueuesTotal" && a["value"] == "3.7e+01"),
        "{first:#?}"
    );
    assert!(
        first
            .iter()
            .any(|a| a["labels"]["alertname"] == "MissingSeries" && a["labels"]["job"] == "demo"),
        "{first:#?}"
    );

    // c drains and a fills: c keeps firing for `keep_firing_for` then ends; a goes
    // pending, then firing; the total (29) falls under 30.
    *body.lock().unwrap() = queues(&[("a", 14), ("b", 12), ("c", 3)]);
    let second = agree("a deep, c drained", |alerts| {
        firing(alerts, "QueueDeep", "a")
            && !alerts.iter().any(|a| a["labels"]["queue"] == "c")
            && !alerts
                .iter()
                .any(|a| a["labels"]["alertname"] == "QueuesTotal")
    })
    .await;
    let deepest: Vec<&Value> = second
        .iter()
        .filter(|a| a["labels"]["alertname"] == "DeepestQueue")
        .collect();
    assert_eq!(deepest.len(), 1, "{second:#?}");
    assert_eq!(deepest[0]["labels"]["queue"], "a");
}
