//! `pod_logs`: the stdout and stderr of this pod's containers, followed through the
//! Kubernetes API as `kubectl logs -f --timestamps` does.
//!
//! The kubelet keeps those streams in files on the node, readable by root alone, so a
//! non-root sidecar cannot tail them; the API serves them to a ServiceAccount that may
//! `get` `pods/log`. Each line comes with the kubelet's timestamp (nanoseconds), which is
//! the record's time and the checkpoint: `(time, lines seen at that time)`, saved in
//! `<buffer.dir>/pod_logs.<container>.json` once the lines before it are in the buffer.
//! On every (re)connection the stream is asked for from that second on (`sinceTime`,
//! which the API takes in whole seconds) and what the checkpoint covers is skipped, so a
//! line is sent once across reconnections and restarts of the collector. Before following
//! the running container, the previous one's log (`previous=true`) is read from the
//! checkpoint on too: the end of a container that crashed while the collector was away
//! is not lost. A line is cut at `max_line_bytes` as a file's is, and stack traces are
//! joined when asked.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::AsyncBufReadExt;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use kube::api::{Api, LogParams};
use porthole_proto::common::{AnyValue, any_value};
use porthole_proto::logs::LogRecord;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::CollectorError;
use crate::buffer::{DiskBuffer, Kind};
use crate::config::{Format, MultilineConfig};
use crate::redact::Redactor;
use crate::resource::{Identity, string_attribute};
use crate::severity;
use crate::source::file::format::{Assembled, Assembler};
use crate::source::file::now_nanos;
use crate::telemetry::CollectorMetrics;

/// Lines read and none more for this long: what is held goes to the buffer.
const QUIET: Duration = Duration::from_millis(200);
/// Wait before asking again after the stream ended or failed.
const RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Looks at the pod's status after a stream ends, a second apart.
const EXIT_LOOKS: u32 = 3;
/// How long a stream is read on once the collector is told to stop.
const DRAIN: Duration = Duration::from_secs(2);
/// Records or body bytes that make a batch go to the buffer at once.
const BATCH_RECORDS: usize = 2048;
const BATCH_BYTES: usize = 1 << 20;
const SCOPE: &str = "porthole.pod_logs";
/// The scope of records of why a container ended (the inventory lists the latest).
const STATUS_SCOPE: &str = "porthole.pod_status";

/// How far a container's log has been taken: every line before `time_unix_nano`, and the
/// first `lines_at_time` lines stamped with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub time_unix_nano: i64,
    pub lines_at_time: u64,
}

impl Checkpoint {
    /// The checkpoint after a line stamped `time` is taken.
    fn after(self, time: i64) -> Checkpoint {
        if time == self.time_unix_nano {
            Checkpoint {
                lines_at_time: self.lines_at_time + 1,
                ..self
            }
        } else {
            Checkpoint {
                time_unix_nano: time,
                lines_at_time: 1,
            }
        }
    }
}

/// What the sources that ask the Kubernetes API about this pod (`pod_logs`,
/// `pod_events`) share: the API and the pod, and where their records and checkpoints go.
pub struct KubePod {
    pub client: kube::Client,
    pub namespace: String,
    pub pod: String,
    pub buffer: Arc<DiskBuffer>,
    pub buffer_dir: PathBuf,
    pub identity: Arc<Identity>,
    pub redactor: Arc<Redactor>,
    pub metrics: Arc<CollectorMetrics>,
}

impl KubePod {
    /// Appends `records` of `scope` to the buffer, waiting for room while the buffer is
    /// full; false if stopped first (or the buffer failed): they are read again after a
    /// restart, from the saved checkpoint.
    pub(crate) async fn append(
        &self,
        scope: &str,
        records: Vec<LogRecord>,
        stop: &CancellationToken,
    ) -> bool {
        let count = records.len();
        let payload = super::encode_logs(&self.identity, scope, records);
        match self
            .buffer
            .append(Kind::Logs, count as u32, &[], &payload, stop)
            .await
        {
            Ok(true) => {
                self.metrics.received("logs", count as u64);
                true
            }
            Ok(false) => false,
            Err(error) => {
                tracing::error!(%error, "records from the Kubernetes API could not be buffered; they are read again after a restart");
                false
            }
        }
    }
}

/// Follows `container`'s log until `stop`.
pub async fn run(
    pod: Arc<KubePod>,
    container: String,
    stack_traces: bool,
    max_line_bytes: usize,
    stop: CancellationToken,
) -> Result<(), CollectorError> {
    let multiline = MultilineConfig {
        stack_traces: true,
        ..MultilineConfig::default()
    };
    let path = pod.buffer_dir.join(format!("pod_logs.{container}.json"));
    let saved: Checkpoint = load(&path);
    let exits_path = pod.buffer_dir.join(format!("pod_exits.{container}.json"));
    let exit_reported: i64 = load(&exits_path);
    let mut follower = Follower {
        lines: Lines::new(saved, max_line_bytes),
        assembler: Assembler::new(
            Format::Plain,
            stack_traces.then_some(&multiline),
            max_line_bytes,
        ),
        batch: Vec::new(),
        batch_bytes: 0,
        batch_end: saved,
        saved,
        path,
        exit_reported,
        exits_path,
        container,
        pod: pod.clone(),
    };
    let api: Api<Pod> = Api::namespaced(pod.client.clone(), &pod.namespace);
    let mut wait = RETRY;
    let mut warned: Option<Instant> = None;
    while !stop.is_cancelled() {
        let mut failed = None;
        for previous in [true, false] {
            match follower.read(&api, &pod.pod, previous, &stop).await {
                // The previous container's log is whole: its last record goes now,
                // not joined to the running one's first line.
                Ok(_) if previous => {
                    if !follower.flush(true, &stop).await {
                        return Ok(());
                    }
                }
                Ok(false) => {}
                // The kubelet ended the running container's stream: it has exited,
                // or is about to be replaced.
                Ok(true) => {
                    if !stop.is_cancelled() {
                        follower.report_exit(&api, &pod.pod, &stop).await;
                    }
                }
                // No container before this one, or not started yet: nothing to read.
                Err(Failure::Api(code, _)) if previous && code == 400 => {}
                Err(failure) => {
                    failed = Some(failure);
                    break;
                }
            }
        }
        if !follower.flush(stop.is_cancelled(), &stop).await {
            return Ok(());
        }
        match failed {
            None => wait = RETRY,
            Some(failure) => {
                follower.pod.metrics.pod_log_errors.inc();
                // A container that has not started yet is the normal start of a pod; a
                // name the pod has no container of is the same 400, and is said.
                let starting = matches!(&failure, Failure::Api(400, message)
                    if message.contains("waiting to start") || message.contains("PodInitializing"));
                if !starting && warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    warned = Some(Instant::now());
                    tracing::warn!(container = %follower.container, error = %failure, hint = failure.hint(), "following the container's log failed; trying again (logged once a minute)");
                }
                wait = if starting {
                    RETRY
                } else {
                    (wait * 2).min(MAX_RETRY)
                };
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => {}
        }
    }
    follower.flush(true, &stop).await;
    Ok(())
}

#[derive(Debug)]
enum Failure {
    Api(u16, String),
    Other(String),
}

impl Failure {
    fn hint(&self) -> &'static str {
        match self {
            Failure::Api(401 | 403, _) => {
                "the collector's ServiceAccount needs `get` on `pods/log` in its namespace (a Role and RoleBinding) and its token mounted"
            }
            _ => "",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Api(code, message) => write!(f, "the API answered {code}: {message}"),
            Failure::Other(message) => f.write_str(message),
        }
    }
}

struct Follower {
    lines: Lines,
    assembler: Assembler,
    /// Finished records not yet in the buffer, and the checkpoint after the last.
    batch: Vec<LogRecord>,
    batch_bytes: usize,
    batch_end: Checkpoint,
    /// What the checkpoint file says.
    saved: Checkpoint,
    path: PathBuf,
    /// When the last termination reported ended, and where that is saved.
    exit_reported: i64,
    exits_path: PathBuf,
    container: String,
    pod: Arc<KubePod>,
}

impl Follower {
    /// Reads the previous container's log (to its end) or follows the running one's,
    /// from the checkpoint on.
    async fn read(
        &mut self,
        api: &Api<Pod>,
        pod: &str,
        previous: bool,
        stop: &CancellationToken,
    ) -> Result<bool, Failure> {
        let since = self.lines.resume();
        let params = LogParams {
            container: Some(self.container.clone()),
            follow: !previous,
            previous,
            timestamps: true,
            // Whole seconds, rounded down (kube rounds to the nearest, which could skip
            // lines): what is before the checkpoint is skipped as it arrives.
            since_time: (since.time_unix_nano > 0).then(|| {
                jiff::Timestamp::from_second(since.time_unix_nano.div_euclid(1_000_000_000))
                    .expect("a time the API stamped")
            }),
            ..LogParams::default()
        };
        let reader = api
            .log_stream(pod, &params)
            .await
            .map_err(|error| match error {
                kube::Error::Api(status) => Failure::Api(status.code, status.message),
                other => Failure::Other(other.to_string()),
            })?;
        let mut reader = std::pin::pin!(reader);
        // Once told to stop, the stream is read on to its end for a moment: a native
        // sidecar is stopped after the app has exited, when what is left of its log is
        // the end of the stream, and the pod is about to go with it.
        let mut draining: Option<tokio::time::Instant> = None;
        loop {
            let quiet = tokio::time::sleep(QUIET);
            let data = tokio::select! {
                read = reader.fill_buf() => match read {
                    Ok([]) => return Ok(true),
                    Ok(data) => data.to_vec(),
                    // A stream cut (the client's read timeout on a quiet app, the API
                    // server restarting) is asked for again, from where it was.
                    Err(error) => {
                        tracing::debug!(container = %self.container, %error, "the log stream broke; asking again");
                        return Ok(false);
                    }
                },
                () = quiet, if draining.is_none() => {
                    if !self.flush(false, stop).await {
                        return Ok(false);
                    }
                    continue;
                }
                () = stop.cancelled(), if draining.is_none() => {
                    draining = Some(tokio::time::Instant::now() + DRAIN);
                    continue;
                }
                () = tokio::time::sleep_until(draining.unwrap_or_else(tokio::time::Instant::now)), if draining.is_some() => return Ok(false),
            };
            futures::AsyncBufRead::consume(reader.as_mut(), data.len());
            let now = Instant::now();
            let mut out = Vec::new();
            for line in self.lines.feed(&data) {
                self.pod.metrics.lines_read.inc();
                self.pod
                    .metrics
                    .bytes_read
                    .inc_by(line.text.len() as u64 + 1);
                let cut = self
                    .assembler
                    .push(&line.text, line.cut, line.seq, line.seq, now, &mut out);
                if cut || line.cut {
                    self.pod.metrics.lines_truncated.inc();
                }
            }
            self.add(out);
            if (self.batch.len() >= BATCH_RECORDS || self.batch_bytes >= BATCH_BYTES)
                && !self.flush(false, stop).await
            {
                return Ok(false);
            }
        }
    }

    /// Reports why the container last ended (OOMKilled, an exit code), once: the kubelet
    /// keeps it in the pod's status, which no log line says. Asked when the kubelet ends
    /// the container's log stream (it exited; a stream cut by the client or the network
    /// is not asked about), so a running pod costs the API nothing. The record goes to
    /// the buffer before it is marked reported.
    async fn report_exit(&mut self, api: &Api<Pod>, pod: &str, stop: &CancellationToken) {
        // The kubelet ends the stream before it updates the pod's status: look again.
        for attempt in 0..EXIT_LOOKS {
            if attempt > 0 {
                tokio::select! {
                    () = tokio::time::sleep(RETRY) => {}
                    () = stop.cancelled() => return,
                }
            }
            if let Some((at, terminated, restarts)) = self.ended(api, pod).await {
                self.report(at, terminated, restarts, stop).await;
                return;
            }
        }
    }

    /// The container's latest termination if not reported yet, and its restart count.
    async fn ended(
        &self,
        api: &Api<Pod>,
        pod: &str,
    ) -> Option<(i64, ContainerStateTerminated, i32)> {
        let status = match api.get(pod).await {
            Ok(pod) => pod
                .status
                .and_then(|s| s.container_statuses)
                .and_then(|all| all.into_iter().find(|c| c.name == self.container)),
            Err(error) => {
                self.pod.metrics.pod_log_errors.inc();
                tracing::debug!(%error, "reading the pod's status failed");
                return None;
            }
        };
        let status = status?;
        let latest = [status.state, status.last_state]
            .into_iter()
            .flatten()
            .filter_map(|state| state.terminated)
            .filter_map(|t| {
                let at = i64::try_from(t.finished_at.as_ref()?.0.as_nanosecond()).ok()?;
                Some((at, t))
            })
            .max_by_key(|(at, _)| *at);
        let (at, terminated) = latest.filter(|(at, _)| *at > self.exit_reported)?;
        Some((at, terminated, status.restart_count))
    }

    async fn report(
        &mut self,
        at: i64,
        terminated: ContainerStateTerminated,
        restarts: i32,
        stop: &CancellationToken,
    ) {
        if !self.flush(true, stop).await {
            return;
        }
        let reason = terminated.reason.as_deref().unwrap_or("Terminated");
        let mut body = format!(
            "container {} ended: {reason}, exit code {}",
            self.container, terminated.exit_code
        );
        if let Some(signal) = terminated.signal {
            body.push_str(&format!(", signal {signal}"));
        }
        if let Some(message) = terminated.message.as_deref().filter(|m| !m.is_empty()) {
            body.push_str(&format!(": {message}"));
        }
        let failed = terminated.exit_code != 0;
        let int = |key: &str, value: i64| porthole_proto::common::KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(value)),
            }),
            ..Default::default()
        };
        let record = LogRecord {
            time_unix_nano: at.max(0) as u64,
            observed_time_unix_nano: now_nanos(),
            severity_number: if failed { 17 } else { 9 },
            severity_text: if failed { "ERROR" } else { "INFO" }.into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body)),
            }),
            attributes: vec![
                string_attribute("k8s.container.name", &self.container),
                string_attribute("k8s.container.status.last_terminated_reason", reason),
                int("process.exit.code", i64::from(terminated.exit_code)),
                int("k8s.container.restart_count", i64::from(restarts)),
            ],
            ..LogRecord::default()
        };
        if self.pod.append(STATUS_SCOPE, vec![record], stop).await {
            self.exit_reported = at;
            if let Err(error) = save(&self.exits_path, at) {
                self.pod.metrics.disk_write_failed("pod_logs", &error);
            }
        }
    }

    /// Turns finished records into log records of the batch.
    fn add(&mut self, out: Vec<Assembled>) {
        let observed = now_nanos();
        for mut record in out {
            let (time, end) = self.lines.taken(record.end);
            if self.pod.redactor.string(&mut record.body) {
                self.pod.metrics.redacted.inc();
            }
            let (severity_number, severity_text) = severity::parse(&record.body).unwrap_or((0, ""));
            let mut attributes = vec![string_attribute("k8s.container.name", &self.container)];
            if record.truncated {
                attributes.push(crate::source::file::truncated_attribute());
            }
            self.batch_bytes += record.body.len();
            self.batch.push(LogRecord {
                time_unix_nano: time.max(0) as u64,
                observed_time_unix_nano: observed,
                severity_number,
                severity_text: severity_text.into(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(record.body)),
                }),
                attributes,
                ..LogRecord::default()
            });
            self.batch_end = end;
        }
    }

    /// Sends records waiting for more lines (all of them when `force`: the stream ended
    /// or the collector stops), then the batch. False if stopped while the buffer was
    /// full: what was not appended is read again after a restart, from the saved
    /// checkpoint.
    async fn flush(&mut self, force: bool, stop: &CancellationToken) -> bool {
        let mut out = Vec::new();
        self.assembler.flush_idle(Instant::now(), force, &mut out);
        self.add(out);
        if self.batch.is_empty() {
            return true;
        }
        let records = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        if !self.pod.append(SCOPE, records, stop).await {
            return false;
        }
        if self.batch_end != self.saved {
            self.saved = self.batch_end;
            if let Err(error) = save(&self.path, self.saved) {
                self.pod.metrics.disk_write_failed("pod_logs", &error);
            }
        }
        true
    }
}

/// One line of the stream, its timestamp taken off.
struct Line {
    text: Vec<u8>,
    cut: bool,
    seq: u64,
}

/// Splits the stream into lines, skips what the checkpoint covers, and remembers each
/// line's time and the checkpoint after it until its record is finished.
struct Lines {
    /// Lines already taken (sent or waiting in a record); where a new stream resumes.
    taken: Checkpoint,
    /// Of the stream being read: what it resumed from, and lines at that time skipped.
    resumed: Checkpoint,
    skipped_at_time: u64,
    partial: Vec<u8>,
    partial_cut: bool,
    seq: u64,
    /// `(seq, time, checkpoint after)` of lines whose records are not finished.
    pending: VecDeque<(u64, i64, Checkpoint)>,
    max_line_bytes: usize,
}

impl Lines {
    fn new(from: Checkpoint, max_line_bytes: usize) -> Lines {
        Lines {
            taken: from,
            resumed: from,
            skipped_at_time: 0,
            partial: Vec::new(),
            partial_cut: false,
            seq: 0,
            pending: VecDeque::new(),
            max_line_bytes,
        }
    }

    /// A new stream starts: from what is taken so far.
    fn resume(&mut self) -> Checkpoint {
        self.resumed = self.taken;
        self.skipped_at_time = 0;
        self.partial.clear();
        self.partial_cut = false;
        self.taken
    }

    /// The whole lines `data` ends, past the checkpoint.
    fn feed(&mut self, data: &[u8]) -> Vec<Line> {
        let mut lines = Vec::new();
        let mut rest = data;
        while let Some(at) = memchr::memchr(b'\n', rest) {
            self.append(&rest[..at]);
            rest = &rest[at + 1..];
            let raw = std::mem::take(&mut self.partial);
            let cut = std::mem::replace(&mut self.partial_cut, false);
            if let Some(line) = self.line(&raw, cut) {
                lines.push(line);
            }
        }
        self.append(rest);
        lines
    }

    fn append(&mut self, bytes: &[u8]) {
        // Room for the timestamp (at most 35 bytes) and a space beyond the line's own.
        let room = (self.max_line_bytes + 36).saturating_sub(self.partial.len());
        if bytes.len() > room {
            self.partial_cut = true;
        }
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn line(&mut self, raw: &[u8], mut cut: bool) -> Option<Line> {
        let (time, text) = split_time(raw)?;
        if time < self.resumed.time_unix_nano {
            return None;
        }
        if time == self.resumed.time_unix_nano && self.skipped_at_time < self.resumed.lines_at_time
        {
            self.skipped_at_time += 1;
            return None;
        }
        self.taken = self.taken.after(time);
        self.seq += 1;
        self.pending.push_back((self.seq, time, self.taken));
        let mut text = text.to_vec();
        if text.len() > self.max_line_bytes {
            text.truncate(self.max_line_bytes);
            cut = true;
        }
        Some(Line {
            text,
            cut,
            seq: self.seq,
        })
    }

    /// A record ending with line `end` is finished: the time of its first line and the
    /// checkpoint after its last.
    fn taken(&mut self, end: u64) -> (i64, Checkpoint) {
        let mut first = None;
        let mut last = self.taken;
        while let Some(&(seq, time, after)) = self.pending.front() {
            if seq > end {
                break;
            }
            self.pending.pop_front();
            first.get_or_insert(time);
            last = after;
        }
        (first.unwrap_or(last.time_unix_nano), last)
    }
}

/// `2026-12-07T23:15:42.123456789Z text` → (nanoseconds, text).
fn split_time(raw: &[u8]) -> Option<(i64, &[u8])> {
    let space = memchr::memchr(b' ', raw)?;
    let stamp = std::str::from_utf8(&raw[..space]).ok()?;
    let time: jiff::Timestamp = stamp.parse().ok()?;
    let nanos = i64::try_from(time.as_nanosecond()).ok()?;
    Some((nanos, &raw[space + 1..]))
}

/// A saved checkpoint; a missing or unreadable file is the default (from the start of
/// the container's log; nothing reported yet).
pub(super) fn load<T: serde::de::DeserializeOwned + Default>(path: &Path) -> T {
    std::fs::read(path)
        .ok()
        .and_then(|text| serde_json::from_slice(&text).ok())
        .unwrap_or_default()
}

pub(super) fn save(path: &Path, value: impl Serialize) -> std::io::Result<()> {
    crate::buffer::replace_file(path, &serde_json::to_vec(&value).expect("serializable"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use axum::extract::{Query, State};
    use axum::response::{IntoResponse, Response};

    use super::*;

    /// A Kubernetes API that serves one pod's log as the kubelet does: lines stamped with
    /// their time, from `sinceTime` (whole seconds) on, the previous container's on
    /// `previous=true` (400 when there is none), the running one's on `follow=true`, and
    /// that ends every stream after a moment, as a dropped connection does.
    #[derive(Default)]
    struct Kubelet {
        previous: Mutex<Option<Vec<String>>>,
        current: Mutex<Vec<String>>,
        /// Sent by a follow stream 1.5 s after the rest, as the app's last words.
        late: Mutex<Vec<String>>,
        /// The pod's `status.containerStatuses`, and what it becomes at each next look.
        statuses: Mutex<serde_json::Value>,
        status_script: Mutex<VecDeque<serde_json::Value>>,
        /// Follow streams from this many on stay open 30 s.
        hold_from: Mutex<Option<usize>>,
        follows: Mutex<usize>,
        requests: Mutex<Vec<HashMap<String, String>>>,
    }

    async fn log(
        State(kubelet): State<Arc<Kubelet>>,
        Query(query): Query<HashMap<String, String>>,
    ) -> Response {
        kubelet.requests.lock().unwrap().push(query.clone());
        let lines = if query.get("previous").is_some_and(|v| v == "true") {
            match kubelet.previous.lock().unwrap().clone() {
                Some(lines) => lines,
                None => {
                    let status = serde_json::json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure", "reason": "BadRequest", "code": 400,
                        "message": "previous terminated container \"app\" in pod \"checkout-0\" not found",
                    });
                    return (http::StatusCode::BAD_REQUEST, axum::Json(status)).into_response();
                }
            }
        } else {
            kubelet.current.lock().unwrap().clone()
        };
        let since: i64 = query.get("sinceTime").map_or(0, |t| {
            let time: jiff::Timestamp = t.parse().expect("an RFC 3339 sinceTime");
            assert_eq!(time.subsec_nanosecond(), 0, "whole seconds: {t}");
            time.as_second()
        });
        let text: String = lines
            .iter()
            .filter(|line| split_time(line.as_bytes()).unwrap().0 / 1_000_000_000 >= since)
            .map(|line| format!("{line}\n"))
            .collect();
        let follow = query.get("follow").is_some_and(|v| v == "true");
        let held = follow && {
            let mut follows = kubelet.follows.lock().unwrap();
            *follows += 1;
            kubelet
                .hold_from
                .lock()
                .unwrap()
                .is_some_and(|from| *follows > from)
        };
        let late: String = kubelet
            .late
            .lock()
            .unwrap()
            .iter()
            .map(|line| format!("{line}\n"))
            .collect();
        let body = futures::stream::once(async move { Ok::<_, std::io::Error>(text) }).chain(
            futures::stream::once(async move {
                if !follow {
                    return Ok(String::new());
                }
                if held {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                } else if late.is_empty() {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                } else {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                }
                Ok(late)
            }),
        );
        axum::body::Body::from_stream(body).into_response()
    }

    use futures::StreamExt;

    async fn pod(State(kubelet): State<Arc<Kubelet>>) -> axum::Json<serde_json::Value> {
        if let Some(next) = kubelet.status_script.lock().unwrap().pop_front() {
            *kubelet.statuses.lock().unwrap() = next;
        }
        axum::Json(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "checkout-0", "namespace": "shop"},
            "status": {"containerStatuses": kubelet.statuses.lock().unwrap().clone()},
        }))
    }

    /// The stand-in API's routes.
    fn routes(kubelet: Arc<Kubelet>) -> axum::Router {
        // Running since long before any stream: a stream that ends was cut.
        *kubelet.statuses.lock().unwrap() = serde_json::json!([{
            "name": "app", "image": "app:1", "imageID": "", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
        }]);
        axum::Router::new()
            .route(
                "/api/v1/namespaces/shop/pods/checkout-0",
                axum::routing::get(pod),
            )
            .route(
                "/api/v1/namespaces/shop/pods/checkout-0/log",
                axum::routing::get(log),
            )
            .with_state(kubelet)
    }

    fn stamp(second: i64, nanos: i64, text: &str) -> String {
        let time = jiff::Timestamp::from_nanosecond(
            i128::from(1_796_000_000 + second) * 1_000_000_000 + i128::from(nanos),
        )
        .unwrap();
        format!("{time} {text}")
    }

    /// `(time, body)` of every record in the buffer, acknowledged as read.
    fn drain(buffer: &DiskBuffer) -> Vec<(u64, String)> {
        let records = crate::source::take_log_records(buffer);
        records
            .into_iter()
            .map(|log| {
                assert!(log.attributes.iter().any(|a| a.key == "k8s.container.name"));
                match log.body.and_then(|b| b.value) {
                    Some(any_value::Value::StringValue(body)) => (log.time_unix_nano, body),
                    other => panic!("a string body, not {other:?}"),
                }
            })
            .collect()
    }

    struct Rig {
        kubelet: Arc<Kubelet>,
        pod: Arc<KubePod>,
        _dir: tempfile::TempDir,
    }

    impl Rig {
        async fn new() -> Rig {
            let kubelet = Arc::new(Kubelet::default());
            let dir = tempfile::tempdir().unwrap();
            let pod = crate::source::test_kube_pod(routes(kubelet.clone()), dir.path()).await;
            Rig {
                kubelet,
                pod,
                _dir: dir,
            }
        }

        /// Follows the log until `until` holds of what reached the buffer (or 20 s), then
        /// stops the follower and takes what it sent until it returned.
        async fn follow(&self, until: impl Fn(&[(u64, String)]) -> bool) -> Vec<(u64, String)> {
            let stop = CancellationToken::new();
            let task = tokio::spawn(run(
                self.pod.clone(),
                "app".into(),
                true,
                1024,
                stop.clone(),
            ));
            let mut got = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            while !until(&got) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                got.extend(drain(&self.pod.buffer));
            }
            stop.cancel();
            task.await.unwrap().unwrap();
            got.extend(drain(&self.pod.buffer));
            got
        }
    }

    fn bodies(records: &[(u64, String)]) -> Vec<&str> {
        records.iter().map(|(_, body)| body.as_str()).collect()
    }

    /// Every line once, in order, with the kubelet's time: across streams that end and
    /// are asked for again from the same second (lines at one nanosecond too), a
    /// collector restart, and a container that crashed while the collector was away,
    /// whose last lines are read from its previous log. A stack trace is one record.
    #[tokio::test]
    async fn a_containers_log_is_sent_once_across_reconnections_restarts_and_a_crash() {
        let rig = Rig::new().await;
        *rig.kubelet.current.lock().unwrap() = vec![
            stamp(0, 100, "INFO starting"),
            stamp(0, 200, "INFO same nanosecond"),
            stamp(0, 200, "INFO same nanosecond"),
            stamp(1, 0, "ERROR settle failed"),
            stamp(1, 1, "Traceback (most recent call last):"),
            stamp(1, 2, "  File \"a.py\", line 1, in <module>"),
            stamp(1, 3, "ValueError: bad"),
            stamp(1, 500, "INFO ready"),
        ];
        let got = rig.follow(|got| got.len() >= 5).await;
        assert_eq!(
            bodies(&got),
            [
                "INFO starting",
                "INFO same nanosecond",
                "INFO same nanosecond",
                "ERROR settle failed\nTraceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nValueError: bad",
                "INFO ready",
            ]
        );
        let second = |s: i64, n: i64| ((1_796_000_000 + s) * 1_000_000_000 + n) as u64;
        assert_eq!(got[0].0, second(0, 100));
        assert_eq!(
            got[3].0,
            second(1, 0),
            "a joined record has its first line's time"
        );

        // More lines while the stream is asked for again and again from second 1.
        rig.kubelet.current.lock().unwrap().extend([
            stamp(1, 500, "INFO same time as ready"),
            stamp(2, 0, "INFO order 1"),
        ]);
        let got = rig.follow(|got| got.len() >= 2).await;
        assert_eq!(bodies(&got), ["INFO same time as ready", "INFO order 1"]);

        // The container crashed while the collector was away, after one more line; the
        // next one has logged since.
        let mut crashed = rig.kubelet.current.lock().unwrap().clone();
        crashed.extend([stamp(3, 0, "INFO order 2"), stamp(3, 9, "panic: boom")]);
        *rig.kubelet.previous.lock().unwrap() = Some(crashed);
        *rig.kubelet.current.lock().unwrap() = vec![stamp(9, 0, "INFO starting again")];
        // Why it ended is in the pod's status, not in its log: reported once, though
        // every stream that ends asks again.
        let finished = jiff::Timestamp::from_second(1_796_000_004).unwrap();
        *rig.kubelet.statuses.lock().unwrap() = serde_json::json!([{
            "name": "app", "image": "app:1", "imageID": "", "ready": true, "restartCount": 1,
            "state": {"running": {"startedAt": "2026-12-07T00:00:09Z"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                "finishedAt": finished.to_string()}},
        }]);
        let asked = rig.kubelet.requests.lock().unwrap().len();
        let got = rig
            .follow(|got| got.len() >= 4 && rig.kubelet.requests.lock().unwrap().len() > asked + 6)
            .await;
        assert_eq!(
            bodies(&got),
            [
                "INFO order 2",
                "panic: boom",
                "INFO starting again",
                "container app ended: OOMKilled, exit code 137",
            ]
        );
        assert_eq!(got[3].0, 1_796_000_004_000_000_000, "when it ended");
        let asked = rig.kubelet.requests.lock().unwrap().len();
        let got = rig
            .follow(|_| rig.kubelet.requests.lock().unwrap().len() > asked + 4)
            .await;
        assert!(
            got.is_empty(),
            "reported once, across a restart too: {got:?}"
        );
        let requests = rig.kubelet.requests.lock().unwrap();
        assert!(
            requests
                .iter()
                .all(|q| q.get("timestamps").is_some_and(|v| v == "true"))
        );
        assert!(
            requests
                .iter()
                .all(|q| q.get("container").is_some_and(|v| v == "app"))
        );
        assert_eq!(rig.pod.metrics.lines_read.get(), 13, "each line taken once");
        assert_eq!(rig.pod.metrics.pod_log_errors.get(), 0);
    }

    /// The kubelet ends a container's stream before the pod's status says why it ended:
    /// the follower looks again, a second later, and reports it then, not only once the
    /// next container's stream ends (which may be days away).
    #[tokio::test]
    async fn an_exit_the_status_shows_only_after_the_stream_ended_is_reported() {
        let rig = Rig::new().await;
        *rig.kubelet.current.lock().unwrap() = vec![stamp(0, 0, "INFO up")];
        let before = rig.kubelet.statuses.lock().unwrap().clone();
        let after = serde_json::json!([{
            "name": "app", "image": "app:1", "imageID": "", "ready": true, "restartCount": 1,
            "state": {"running": {"startedAt": "2026-12-07T00:00:09Z"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                "message": "config missing", "finishedAt": "2026-12-07T00:00:08Z"}},
        }]);
        *rig.kubelet.status_script.lock().unwrap() = VecDeque::from([before, after]);
        *rig.kubelet.hold_from.lock().unwrap() = Some(1);
        let got = rig.follow(|got| got.len() >= 2).await;
        assert_eq!(
            bodies(&got),
            [
                "INFO up",
                "container app ended: Error, exit code 1: config missing"
            ]
        );
    }

    /// Told to stop, the follower reads the stream on to its end for a moment: a native
    /// sidecar is stopped once the app has exited, and the app's last words are still on
    /// their way. Before, they were lost with the pod.
    #[tokio::test]
    async fn a_stopping_follower_reads_the_app_s_last_words() {
        let rig = Rig::new().await;
        *rig.kubelet.current.lock().unwrap() = vec![stamp(0, 0, "INFO working")];
        *rig.kubelet.late.lock().unwrap() = vec![stamp(0, 1, "FATAL out of memory, exiting")];
        let got = rig.follow(|got| !got.is_empty()).await;
        assert_eq!(
            bodies(&got),
            ["INFO working", "FATAL out of memory, exiting"]
        );
    }
}
