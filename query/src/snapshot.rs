//! Snapshots: a point-in-time view of one pod (processes, descriptors, sockets, redacted
//! environments), taken by its collector on request.
//!
//! Collectors long-poll [`ControlService`] on the OTLP gRPC port of the ingest node they
//! ship to; [`Control`] hands a waiting poll a request and waits for the answer. A query
//! node asks its own process's [`Control`] first (in `serve`), then every `--ingest-nodes`
//! node (`Control/Snapshot`), whichever has the pod's collector. With tenants, polls and
//! requests are keyed by tenant too, so a tenant reaches only its own pods. Every snapshot
//! (or failure) is stored under `_porthole/snapshots/` with who asked and when, and
//! logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Uri;
use porthole_proto::control::control_client::ControlClient;
use porthole_proto::control::control_server::{Control as ControlRpc, ControlServer};
use porthole_proto::control::{
    AnswerRequest, AnswerResponse, PollRequest, PollResponse, SnapshotRequest, SnapshotResponse,
};
use porthole_storage::{StateStore, Tenant};
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;
use utoipa::{IntoParams, ToSchema};

use crate::QueryError;
use crate::api::{QueryState, query_params};
use crate::time::{format_nanos, now_micros};

/// Collectors waiting in a poll, at most; more polls are refused (they retry later).
const MAX_POLLERS: usize = 10_000;
/// Requests waiting for their answer, at most.
const MAX_PENDING: usize = 256;
/// Longest poll the server holds open.
const MAX_POLL_WAIT: Duration = Duration::from_secs(25);
/// How long a request waits for the pod's collector to be in a poll (it re-polls at once
/// after every answer, so a polling collector is found within milliseconds).
const FIND_POLLER: Duration = Duration::from_secs(3);
/// How long the collector has to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);
/// Snapshot records listed at most.
const MAX_LISTED: usize = 500;
/// Stored snapshots kept at most (of a tenant, or of the whole store without tenants):
/// they hold the pods' command lines and environments, which should not outlive the
/// incident by years. Their age is bounded by [`SnapshotSource::keep_for`].
const MAX_KEPT: usize = 1000;

type PodKey = (Option<Tenant>, String, String);

/// Where snapshot requests meet the collectors that poll this process.
#[derive(Default)]
pub struct Control {
    waiting: Mutex<HashMap<PodKey, Vec<oneshot::Sender<String>>>>,
    /// When each pod last polled: a request waits for a poller only for pods that poll.
    last_poll: Mutex<HashMap<PodKey, tokio::time::Instant>>,
    answers: Mutex<HashMap<String, oneshot::Sender<Result<String, String>>>>,
    /// Polls and requests refused over the limits.
    pub refused: Counter,
    /// Stored snapshots deleted past their retention or beyond [`MAX_KEPT`].
    pub pruned: Counter,
    /// Cancelled when the server shuts down (see [`Control::new`]).
    closing: tokio_util::sync::CancellationToken,
}

/// What a request got.
pub enum Asked {
    /// No collector of that pod polls here.
    NotHere,
    Answered(Result<String, String>),
    TimedOut,
}

impl Control {
    /// Every poll, and every one to come, ends at once when `closing` is cancelled (the
    /// server shutting down): a poll may wait 25 s, which would hold the gRPC server's
    /// graceful shutdown that long.
    pub fn new(closing: tokio_util::sync::CancellationToken) -> Self {
        Self {
            closing,
            ..Self::default()
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<PodKey, Vec<oneshot::Sender<String>>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn answers(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Result<String, String>>>> {
        self.answers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `wait` for a request for the pod; `None`: none came.
    async fn poll(&self, key: PodKey, wait: Duration) -> Result<Option<String>, tonic::Status> {
        let (tx, rx) = oneshot::channel();
        {
            let mut waiting = self.waiting();
            waiting.retain(|_, senders| {
                senders.retain(|s| !s.is_closed());
                !senders.is_empty()
            });
            if waiting.values().map(Vec::len).sum::<usize>() >= MAX_POLLERS {
                self.refused.inc();
                return Err(tonic::Status::resource_exhausted(
                    "too many collectors polling",
                ));
            }
            waiting.entry(key.clone()).or_default().push(tx);
        }
        {
            let mut last_poll = self.last_poll.lock().unwrap_or_else(|p| p.into_inner());
            let now = tokio::time::Instant::now();
            last_poll.retain(|_, at| now.duration_since(*at) < MAX_POLL_WAIT * 2);
            if last_poll.len() < MAX_POLLERS {
                last_poll.insert(key, now);
            }
        }
        tokio::select! {
            answer = tokio::time::timeout(wait.min(MAX_POLL_WAIT), rx) => match answer {
                Ok(Ok(request_id)) => Ok(Some(request_id)),
                _ => Ok(None),
            },
            _ = self.closing.cancelled() => Ok(None),
        }
    }

    fn answer(&self, request_id: &str, result: Result<String, String>) {
        if let Some(tx) = self.answers().remove(request_id) {
            let _ = tx.send(result);
        }
    }

    /// Asks the pod's collector, if it polls this process, for a snapshot.
    pub async fn ask(&self, key: PodKey) -> Asked {
        let polls_here = self
            .last_poll
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .is_some_and(|at| at.elapsed() < MAX_POLL_WAIT * 2);
        if !polls_here {
            return Asked::NotHere;
        }
        let deadline = tokio::time::Instant::now() + FIND_POLLER;
        loop {
            let poller = self.waiting().get_mut(&key).and_then(|senders| {
                while let Some(sender) = senders.pop() {
                    if !sender.is_closed() {
                        return Some(sender);
                    }
                }
                None
            });
            let Some(poller) = poller else {
                if tokio::time::Instant::now() >= deadline {
                    return Asked::NotHere;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
                continue;
            };
            let id = uuid::Uuid::new_v4().simple().to_string();
            let (tx, rx) = oneshot::channel();
            {
                let mut answers = self.answers();
                answers.retain(|_, s| !s.is_closed());
                if answers.len() >= MAX_PENDING {
                    self.refused.inc();
                    return Asked::Answered(Err("too many snapshots in flight".into()));
                }
                answers.insert(id.clone(), tx);
            }
            if poller.send(id.clone()).is_err() {
                self.answers().remove(&id);
                continue; // that poll just ended; try the next one
            }
            return match tokio::time::timeout(ANSWER_WITHIN, rx).await {
                Ok(Ok(result)) => Asked::Answered(result),
                _ => {
                    self.answers().remove(&id);
                    Asked::TimedOut
                }
            };
        }
    }
}

/// `porthole.control.v1.Control` on the OTLP gRPC port: polls and answers from collectors,
/// snapshot requests from query nodes. The port's admission checks the token and puts the
/// caller's tenant in the request's extensions.
pub struct ControlService {
    control: std::sync::Arc<Control>,
}

impl ControlService {
    pub fn server(control: std::sync::Arc<Control>) -> ControlServer<Self> {
        ControlServer::new(Self { control })
    }
}

fn key_of<T>(request: &tonic::Request<T>, namespace: &str, pod: &str) -> PodKey {
    (
        request.extensions().get::<Tenant>().cloned(),
        namespace.to_string(),
        pod.to_string(),
    )
}

#[tonic::async_trait]
impl ControlRpc for ControlService {
    async fn poll(
        &self,
        request: tonic::Request<PollRequest>,
    ) -> Result<tonic::Response<PollResponse>, tonic::Status> {
        let key = key_of(
            &request,
            &request.get_ref().namespace,
            &request.get_ref().pod,
        );
        if key.2.is_empty() {
            return Err(tonic::Status::invalid_argument("pod is empty"));
        }
        let wait = Duration::from_millis(u64::from(request.get_ref().wait_ms));
        let request_id = self.control.poll(key, wait).await?;
        Ok(tonic::Response::new(PollResponse {
            kind: if request_id.is_some() {
                "snapshot".into()
            } else {
                String::new()
            },
            request_id: request_id.unwrap_or_default(),
        }))
    }

    async fn answer(
        &self,
        request: tonic::Request<AnswerRequest>,
    ) -> Result<tonic::Response<AnswerResponse>, tonic::Status> {
        let answer = request.into_inner();
        let result = if answer.error.is_empty() {
            Ok(answer.json)
        } else {
            Err(answer.error)
        };
        self.control.answer(&answer.request_id, result);
        Ok(tonic::Response::new(AnswerResponse {}))
    }

    async fn snapshot(
        &self,
        request: tonic::Request<SnapshotRequest>,
    ) -> Result<tonic::Response<SnapshotResponse>, tonic::Status> {
        let key = key_of(
            &request,
            &request.get_ref().namespace,
            &request.get_ref().pod,
        );
        let response = match self.control.ask(key).await {
            Asked::NotHere => SnapshotResponse::default(),
            Asked::Answered(Ok(json)) => SnapshotResponse {
                found: true,
                json,
                error: String::new(),
            },
            Asked::Answered(Err(error)) => SnapshotResponse {
                found: true,
                json: String::new(),
                error,
            },
            Asked::TimedOut => {
                return Err(tonic::Status::deadline_exceeded(
                    "the collector did not answer",
                ));
            }
        };
        Ok(tonic::Response::new(response))
    }
}

/// What a query node needs to take snapshots: its process's [`Control`] and the tenant
/// its routes serve.
#[derive(Clone)]
pub struct SnapshotSource {
    pub control: std::sync::Arc<Control>,
    pub tenant: Option<Tenant>,
    /// How long a stored snapshot is kept (`--snapshot-retention`).
    pub keep_for: Duration,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SnapshotAsk {
    /// The pod's namespace (`k8s.namespace.name`); empty when its collector has none.
    #[serde(default)]
    namespace: String,
    pod: String,
    /// Who asks, for the audit record (the CLI sends the local user name).
    #[serde(default)]
    requested_by: Option<String>,
}

/// A stored snapshot: who asked, when, and what the collector answered.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotRecord {
    pub id: String,
    pub namespace: String,
    pub pod: String,
    pub tenant: Option<String>,
    pub requested_by: Option<String>,
    pub requested_at: String,
    pub answered_at: String,
    /// The collector's view: `processes`, `sockets`, `taken_at`; null when it failed.
    #[schema(value_type = Option<Object>)]
    pub snapshot: Option<Value>,
    /// Why the collector could not take it.
    pub error: Option<String>,
}

fn store(state: &QueryState) -> Result<StateStore, QueryError> {
    Ok(StateStore::open(state.storage.location(), "snapshots")?)
}

/// Asks a pod's collector for a snapshot, stores it with who asked, and returns it.
#[utoipa::path(post, path = "/api/v1/snapshots", request_body = SnapshotAsk, responses(
    (status = 200, body = SnapshotRecord),
    (status = 400, body = crate::openapi::ErrorBody),
    (status = 404, description = "No collector of that pod is connected", body = crate::openapi::ErrorBody),
    (status = 504, description = "The collector did not answer in time", body = crate::openapi::ErrorBody),
))]
pub(crate) async fn take(
    State(state): State<QueryState>,
    body: Result<Json<SnapshotAsk>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SnapshotRecord>, QueryError> {
    let Json(ask) = body.map_err(|e| {
        QueryError::BadRequest(format!(
            "body must be {{\"namespace\": \"…\", \"pod\": \"…\"}}: {}",
            e.body_text()
        ))
    })?;
    if ask.pod.trim().is_empty() {
        return Err(QueryError::BadRequest("pod must not be empty".into()));
    }
    // Kubernetes' own limits: a longer name names no pod (and is not echoed back whole).
    for (what, name, most) in [("pod", &ask.pod, 253), ("namespace", &ask.namespace, 63)] {
        if name.len() > most {
            return Err(QueryError::BadRequest(format!(
                "a {what} name is at most {most} characters in Kubernetes; this one has {}",
                name.len()
            )));
        }
    }
    if ask.requested_by.as_ref().is_some_and(|r| r.len() > 256) {
        return Err(QueryError::BadRequest(
            "requested_by is longer than 256 bytes".into(),
        ));
    }
    let asked_micros = now_micros();
    let requested_at = format_nanos(asked_micros * 1000);
    let source = &state.snapshots;
    let key = (
        source.tenant.clone(),
        ask.namespace.clone(),
        ask.pod.clone(),
    );
    let mut asked = source.control.ask(key).await;
    if matches!(asked, Asked::NotHere) {
        asked = ask_ingest_nodes(&state, &ask).await?;
    }
    let (snapshot, error) = match asked {
        Asked::NotHere => {
            return Err(QueryError::NotFound(format!(
                "no collector of pod {:?} in namespace {:?} is connected (is it running, with snapshots enabled?)",
                ask.pod, ask.namespace
            )));
        }
        Asked::TimedOut => {
            return Err(QueryError::Timeout(format!(
                "the collector of pod {:?} did not answer within {ANSWER_WITHIN:?}",
                ask.pod
            )));
        }
        Asked::Answered(Ok(json)) => match serde_json::from_str::<Value>(&json) {
            Ok(value) => (Some(value), None),
            Err(e) => (
                None,
                Some(format!("the collector's answer is not JSON: {e}")),
            ),
        },
        Asked::Answered(Err(error)) => (None, Some(error)),
    };
    let record = SnapshotRecord {
        id: uuid::Uuid::new_v4().simple().to_string(),
        namespace: ask.namespace,
        pod: ask.pod,
        tenant: source.tenant.as_ref().map(|t| t.name().to_string()),
        requested_by: ask.requested_by,
        requested_at,
        answered_at: format_nanos(now_micros() * 1000),
        snapshot,
        error,
    };
    let name = format!("{asked_micros:016}-{}.json", record.id);
    let store = store(&state)?;
    store
        .put(&name, serde_json::to_vec(&record).expect("serializable"))
        .await?;
    let pruned = &source.control.pruned;
    let oldest_kept = asked_micros - source.keep_for.as_micros() as i64;
    if let Err(e) = prune(&store, oldest_kept, MAX_KEPT, pruned).await {
        tracing::warn!(error = %e, "snapshots: deleting old ones failed; the next snapshot retries");
    }
    tracing::info!(
        target: "audit",
        id = record.id,
        namespace = record.namespace,
        pod = record.pod,
        tenant = record.tenant.as_deref().unwrap_or(""),
        requested_by = record.requested_by.as_deref().unwrap_or(""),
        ok = record.error.is_none(),
        "snapshot taken"
    );
    Ok(Json(record))
}

/// The stored snapshots' names, newest first: a name starts with the time taken (16
/// digits), so name order is time order.
async fn newest_first(store: &StateStore) -> Result<Vec<String>, QueryError> {
    let mut names = store.list("").await?;
    names.sort_unstable_by(|a, b| b.cmp(a));
    Ok(names)
}

/// Deletes the stored snapshots taken before `oldest_kept` (µs), and all but the newest
/// `max_kept`.
async fn prune(
    store: &StateStore,
    oldest_kept: i64,
    max_kept: usize,
    pruned: &Counter,
) -> Result<(), QueryError> {
    for (newer, name) in newest_first(store).await?.iter().enumerate() {
        let taken = name
            .split_once('-')
            .and_then(|(t, _)| t.parse::<i64>().ok());
        if newer >= max_kept || taken.is_some_and(|t| t < oldest_kept) {
            store.delete(name).await?;
            pruned.inc();
        }
    }
    Ok(())
}

/// Asks every `--ingest-nodes` node; the first that has the pod's collector answers.
async fn ask_ingest_nodes(state: &QueryState, ask: &SnapshotAsk) -> Result<Asked, QueryError> {
    for node in &state.tail.ingest_nodes {
        let channel = crate::tail::connect(node, state.tail.tls.as_ref()).await?;
        let call = state.tail.ingest_request(SnapshotRequest {
            namespace: ask.namespace.clone(),
            pod: ask.pod.clone(),
        })?;
        match ControlClient::new(channel).snapshot(call).await {
            Ok(response) => {
                let response = response.into_inner();
                if !response.found {
                    continue;
                }
                return Ok(Asked::Answered(if response.error.is_empty() {
                    Ok(response.json)
                } else {
                    Err(response.error)
                }));
            }
            Err(status) if status.code() == tonic::Code::DeadlineExceeded => {
                return Ok(Asked::TimedOut);
            }
            Err(status) => {
                tracing::warn!(node, %status, "snapshot: ingest node failed");
            }
        }
    }
    Ok(Asked::NotHere)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    namespace: Option<String>,
    pod: Option<String>,
    /// At most this many, newest first (default 50, at most 500).
    limit: Option<String>,
}

/// A stored snapshot without its contents.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotSummary {
    pub id: String,
    pub namespace: String,
    pub pod: String,
    pub requested_by: Option<String>,
    pub requested_at: String,
    pub ok: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotList {
    pub snapshots: Vec<SnapshotSummary>,
}

/// The stored snapshots, newest first.
#[utoipa::path(get, path = "/api/v1/snapshots", params(ListParams), responses(
    (status = 200, body = SnapshotList),
    (status = 400, body = crate::openapi::ErrorBody),
))]
pub(crate) async fn list(
    State(state): State<QueryState>,
    uri: Uri,
) -> Result<Json<SnapshotList>, QueryError> {
    let params: ListParams = query_params(&uri)?;
    let limit = match &params.limit {
        None => 50,
        Some(text) => text.parse::<usize>().map_err(|_| {
            QueryError::BadRequest(format!("limit must be a whole number, not {text:?}"))
        })?,
    }
    .clamp(1, MAX_LISTED);
    let store = store(&state)?;
    let mut snapshots = Vec::new();
    for name in newest_first(&store).await?.into_iter().take(MAX_LISTED) {
        if snapshots.len() >= limit {
            break;
        }
        let Some(bytes) = store.get(&name).await? else {
            continue;
        };
        let Ok(record) = serde_json::from_slice::<SnapshotRecord>(&bytes) else {
            continue;
        };
        if params.pod.as_ref().is_some_and(|p| *p != record.pod)
            || params
                .namespace
                .as_ref()
                .is_some_and(|n| *n != record.namespace)
        {
            continue;
        }
        snapshots.push(SnapshotSummary {
            ok: record.error.is_none(),
            id: record.id,
            namespace: record.namespace,
            pod: record.pod,
            requested_by: record.requested_by,
            requested_at: record.requested_at,
        });
    }
    Ok(Json(SnapshotList { snapshots }))
}

/// One stored snapshot.
#[utoipa::path(get, path = "/api/v1/snapshots/{id}", params(("id" = String, Path)), responses(
    (status = 200, body = SnapshotRecord),
    (status = 400, description = "Not a snapshot id (hexadecimal)", body = crate::openapi::ErrorBody),
    (status = 404, body = crate::openapi::ErrorBody),
))]
pub(crate) async fn get(
    State(state): State<QueryState>,
    Path(id): Path<String>,
) -> Result<Json<SnapshotRecord>, QueryError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(QueryError::BadRequest(
            "a snapshot id is hexadecimal".into(),
        ));
    }
    let store = store(&state)?;
    let suffix = format!("-{id}.json");
    let name = store
        .list("")
        .await?
        .into_iter()
        .find(|n| n.ends_with(&suffix));
    let bytes = match name {
        Some(name) => store.get(&name).await?,
        None => None,
    };
    let bytes = bytes.ok_or_else(|| QueryError::NotFound(format!("no snapshot {id}")))?;
    let record = serde_json::from_slice(&bytes)
        .map_err(|e| QueryError::Internal(format!("snapshot {id}: {e}")))?;
    Ok(Json(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn key(pod: &str) -> PodKey {
        (None, "shop".into(), pod.into())
    }

    #[tokio::test]
    async fn snapshots_past_their_age_or_count_are_deleted_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let location = porthole_storage::Location::parse(None, dir.path()).unwrap();
        let store = StateStore::open(&location, "snapshots").unwrap();
        let now = 100 * 86_400_000_000i64;
        let day = 86_400_000_000i64;
        let taken = [now - 31 * day, now - 3 * day, now - 2 * day, now - day];
        for (i, micros) in taken.iter().enumerate() {
            let name = format!("{micros:016}-{i:032x}.json");
            store.put(&name, b"{}".to_vec()).await.unwrap();
        }
        let pruned = Counter::default();
        // Kept 30 days: the 31-day-old one is past its age; the rest fit a cap of three.
        let oldest_kept = now - 30 * day;
        prune(&store, oldest_kept, 3, &pruned).await.unwrap();
        let mut left = store.list("").await.unwrap();
        left.sort();
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(left[0].starts_with(&format!("{:016}", now - 3 * day)));
        assert_eq!(pruned.get(), 1);
        // A cap of one keeps the newest alone.
        prune(&store, oldest_kept, 1, &pruned).await.unwrap();
        let left = store.list("").await.unwrap();
        assert_eq!(left.len(), 1);
        assert!(left[0].starts_with(&format!("{:016}", now - day)));
        assert_eq!(pruned.get(), 3);
    }

    #[tokio::test]
    async fn a_request_reaches_the_polling_collector_of_its_pod_only() {
        let control = Arc::new(Control::default());
        // Nobody polls: not here.
        assert!(matches!(control.ask(key("a")).await, Asked::NotHere));
        let collector = {
            let control = control.clone();
            tokio::spawn(async move {
                let id = control
                    .poll(key("a"), Duration::from_secs(10))
                    .await
                    .unwrap()
                    .unwrap();
                control.answer(&id, Ok("{\"processes\":[]}".into()));
            })
        };
        let other = {
            let control = control.clone();
            tokio::spawn(async move { control.poll(key("b"), Duration::from_millis(300)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await; // both polls are waiting
        match control.ask(key("a")).await {
            Asked::Answered(Ok(json)) => assert_eq!(json, "{\"processes\":[]}"),
            _ => panic!("pod a's collector answers"),
        }
        collector.await.unwrap();
        // Pod b's poll got nothing and ended empty.
        assert_eq!(other.await.unwrap().unwrap(), None);
        // A tenant's request does not reach another tenant's pod of the same name.
        let tenant = Tenant::new("t").unwrap();
        let waiting = {
            let control = control.clone();
            tokio::spawn(async move { control.poll(key("c"), Duration::from_millis(300)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let as_tenant = (Some(tenant), "shop".to_string(), "c".to_string());
        assert!(matches!(control.ask(as_tenant).await, Asked::NotHere));
        assert_eq!(waiting.await.unwrap().unwrap(), None);
    }
}
