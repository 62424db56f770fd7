//! What an action sends to the Kubernetes API (in-cluster config, else KUBECONFIG):
//! - `rollout_restart`: what `kubectl rollout restart` sends, a strategic-merge PATCH of
//!   the Deployment setting the pod template annotation `kubectl.kubernetes.io/restartedAt`
//!   (kube-rs's `Api::restart` writes a different key, so the patch is built here);
//! - `rollback`: what `kubectl rollout undo` sends, a JSON PATCH replacing the pod
//!   template with the one of the previous revision's ReplicaSet (without its
//!   `pod-template-hash` label) and the annotations as kubectl computes them;
//! - `delete_pod`: a DELETE of the pod (its controller replaces it).
//!
//! A dry run makes the same reads and sends nothing that changes the cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::audit::Target;
use crate::rules::ActionKind;

const FIELD_MANAGER: &str = "porthole";
const REVISION: &str = "deployment.kubernetes.io/revision";
/// Deployment annotations `kubectl rollout undo` keeps from the Deployment rather than
/// taking from the ReplicaSet.
const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// What happened when an action ran.
pub enum Outcome {
    /// The mutating request (sent, or for a dry run the one that would have been).
    Sent { request: Value },
    /// Nothing to do, and why (e.g. no earlier revision to roll back to).
    Nothing { reason: String },
}

/// The Kubernetes client, made on first use (most rules never act).
#[derive(Default)]
pub struct Kube {
    client: tokio::sync::OnceCell<kube::Client>,
}

impl Kube {
    async fn client(&self) -> Result<&kube::Client, String> {
        self.client
            .get_or_try_init(|| async {
                let mut config = kube::Config::infer()
                    .await
                    .map_err(|e| format!("no Kubernetes access (in-cluster or KUBECONFIG): {e}"))?;
                config.connect_timeout = Some(Duration::from_secs(3));
                config.read_timeout = Some(Duration::from_secs(5));
                config.write_timeout = Some(Duration::from_secs(5));
                kube::Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))
            })
            .await
    }

    pub async fn run(
        &self,
        kind: ActionKind,
        target: &Target,
        dry_run: bool,
    ) -> Result<Outcome, String> {
        // A dry run of a restart or delete needs no cluster: the request is known. A
        // rollback reads the Deployment and its ReplicaSets even when dry.
        let ns = &target.namespace;
        match kind {
            ActionKind::RolloutRestart => {
                let name = target
                    .deployment
                    .as_deref()
                    .ok_or("no deployment in the target")?;
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let patch = json!({"spec": {"template": {"metadata": {"annotations": {
                    "kubectl.kubernetes.io/restartedAt": now
                }}}}});
                let request = json!({
                    "method": "PATCH",
                    "path": format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
                    "content_type": "application/strategic-merge-patch+json",
                    "body": patch,
                });
                if !dry_run {
                    let api: Api<Deployment> = Api::namespaced(self.client().await?.clone(), ns);
                    let params = PatchParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    };
                    api.patch(name, &params, &Patch::Strategic(&patch))
                        .await
                        .map_err(|e| format!("PATCH deployment {ns}/{name}: {e}"))?;
                }
                Ok(Outcome::Sent { request })
            }
            ActionKind::Rollback => {
                let name = target
                    .deployment
                    .as_deref()
                    .ok_or("no deployment in the target")?;
                rollback(self.client().await?.clone(), ns, name, dry_run).await
            }
            ActionKind::DeletePod => {
                let name = target.pod.as_deref().ok_or("no pod in the target")?;
                let request = json!({
                    "method": "DELETE",
                    "path": format!("/api/v1/namespaces/{ns}/pods/{name}"),
                });
                if !dry_run {
                    let api: Api<Pod> = Api::namespaced(self.client().await?.clone(), ns);
                    api.delete(name, &DeleteParams::default())
                        .await
                        .map_err(|e| format!("DELETE pod {ns}/{name}: {e}"))?;
                }
                Ok(Outcome::Sent { request })
            }
        }
    }
}

async fn rollback(
    client: kube::Client,
    ns: &str,
    name: &str,
    dry_run: bool,
) -> Result<Outcome, String> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let deployment = deployments
        .get(name)
        .await
        .map_err(|e| format!("GET deployment {ns}/{name}: {e}"))?;
    let spec = deployment
        .spec
        .as_ref()
        .ok_or("the deployment has no spec")?;
    if spec.paused == Some(true) {
        return Ok(Outcome::Nothing {
            reason: format!(
                "deployment {ns}/{name} is paused; kubectl refuses to roll back a paused deployment"
            ),
        });
    }
    let selector = spec
        .selector
        .match_labels
        .as_ref()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let uid = deployment.metadata.uid.clone().unwrap_or_default();
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let owned: Vec<(u64, ReplicaSet)> = sets
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| format!("LIST replicasets in {ns}: {e}"))?
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .filter_map(|rs| {
            let revision = rs
                .metadata
                .annotations
                .as_ref()?
                .get(REVISION)?
                .parse()
                .ok()?;
            Some((revision, rs))
        })
        .collect();
    let current = owned.iter().map(|(r, _)| *r).max().unwrap_or(0);
    let Some((revision, previous)) = owned
        .into_iter()
        .filter(|(r, _)| *r < current)
        .max_by_key(|(r, _)| *r)
    else {
        return Ok(Outcome::Nothing {
            reason: format!("deployment {ns}/{name} has no earlier revision to roll back to"),
        });
    };
    let template = without_hash(
        previous
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .ok_or("the previous ReplicaSet has no pod template")?,
    );
    if without_hash(spec.template.clone()) == template {
        return Ok(Outcome::Nothing {
            reason: format!(
                "deployment {ns}/{name} already runs the template of revision {revision}"
            ),
        });
    }
    let mut annotations = BTreeMap::new();
    let deployment_annotations = deployment.metadata.annotations.clone().unwrap_or_default();
    for key in ANNOTATIONS_TO_SKIP {
        if let Some(v) = deployment_annotations.get(key) {
            annotations.insert(key.to_string(), v.clone());
        }
    }
    for (k, v) in previous.metadata.annotations.clone().unwrap_or_default() {
        if !ANNOTATIONS_TO_SKIP.contains(&k.as_str()) {
            annotations.insert(k, v);
        }
    }
    let body = json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]);
    let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}");
    let request = json!({
        "method": "PATCH",
        "path": path,
        "content_type": "application/json-patch+json",
        "body": body,
        "to_revision": revision,
    });
    if !dry_run {
        let http_request = http::Request::patch(format!("{path}?fieldManager={FIELD_MANAGER}"))
            .header(http::header::CONTENT_TYPE, "application/json-patch+json")
            .body(serde_json::to_vec(&body).expect("serializable"))
            .map_err(|e| e.to_string())?;
        client
            .request::<Deployment>(http_request)
            .await
            .map_err(|e| format!("PATCH deployment {ns}/{name}: {e}"))?;
    }
    Ok(Outcome::Sent { request })
}

fn without_hash(mut template: PodTemplateSpec) -> PodTemplateSpec {
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove("pod-template-hash");
    }
    template
}
