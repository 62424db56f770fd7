//! `porthole-collector`: the sidecar that makes "no SSH" possible. It tails the pod's log
//! files, receives the app's own OTLP, scrapes Prometheus endpoints and reads the pod's
//! cgroup, stamps everything with the pod's identity ([`resource`]), and ships it to
//! Porthole's ingest tier without losing a line.
//!
//! The one rule everything follows: a source's position (a file checkpoint, an OTLP ack
//! to the app) moves on only once the data is fsynced in the disk [`buffer`]; the
//! [`shipper`] removes it from the buffer only once ingest has acked it, and ingest acks
//! only what is durable. So a SIGKILL anywhere loses nothing (a batch in flight may be sent
//! twice), an ingest outage fills the bounded buffer (then `block` stops reading, or
//! `drop_oldest` drops and counts), and a corrupt buffer record is skipped, counted and its
//! lines read again from their file.

mod buffer;
pub mod config;
mod control;
mod redact;
mod resource;
mod severity;
mod shipper;
mod source;
mod split;
mod telemetry;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use telemetry::CollectorMetrics;

use crate::buffer::DiskBuffer;
use crate::resource::Identity;
use crate::shipper::Shipper;
use crate::source::file::Tailer;

#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("config: {0}")]
    Config(String),
    #[error("buffer: {0}")]
    Buffer(String),
    #[error("{what}: {error}")]
    Listen {
        /// The setting, with the address where one could not be bound.
        what: String,
        error: std::io::Error,
    },
}

/// Re-reads of corrupt ranges waiting for the tailer.
const MAX_QUEUED_REREADS: usize = 64;

/// Runs the collector until `shutdown` resolves (SIGTERM), then stops the sources, flushes
/// what they hold into the buffer, and ships for up to `shutdown_timeout` more.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), CollectorError> {
    config.validate()?;
    let metrics = CollectorMetrics::new();
    let identity = Arc::new(Identity::build(&config.resource, |name| {
        std::env::var(name).ok()
    })?);
    let buffer = DiskBuffer::open(&config.buffer, config.compression, metrics.clone())?;
    let ready = Arc::new(AtomicBool::new(false));
    let stop_sources = CancellationToken::new();
    let stop_shipping = CancellationToken::new();
    let stop_http = CancellationToken::new();

    let http = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|error| CollectorError::Listen {
            what: format!("http_addr {}", config.http_addr),
            error,
        })?;
    let addr = http.local_addr().map_err(|error| CollectorError::Listen {
        what: "http_addr".into(),
        error,
    })?;
    tracing::info!(%addr, "health and metrics listening");
    let http_task = tokio::spawn(telemetry::serve(
        http,
        metrics.clone(),
        ready.clone(),
        stop_http.clone(),
    ));

    let (reread_tx, reread_rx) = mpsc::channel(MAX_QUEUED_REREADS);
    let shipper = Shipper::new(&config, buffer.clone(), metrics.clone(), reread_tx)?;
    let connection = shipper.connection();
    let mut shipper_task = tokio::spawn(shipper.run(stop_shipping.clone()));

    let mut sources = tokio::task::JoinSet::new();
    // Compiled once, for the files and the OTLP receiver.
    let redactor = Arc::new(redact::Redactor::new(&config.redact)?);
    let tailer = Tailer::new(
        &config,
        buffer.clone(),
        identity.clone(),
        redactor.clone(),
        metrics.clone(),
    );
    sources.spawn(tailer.run(reread_rx, stop_sources.clone()));
    for task in source::otlp::start(
        &config.otlp,
        buffer.clone(),
        identity.clone(),
        redactor.clone(),
        metrics.clone(),
        stop_sources.clone(),
    )
    .await?
    {
        sources.spawn(task);
    }
    if config.pod_events || !config.pod_logs.containers.is_empty() {
        let (client, namespace, name) = kube_target(&identity).await?;
        let pod = Arc::new(source::pod_logs::KubePod {
            client,
            namespace,
            pod: name,
            buffer: buffer.clone(),
            buffer_dir: config.buffer.dir.clone(),
            identity: identity.clone(),
            redactor: redactor.clone(),
            metrics: metrics.clone(),
        });
        if config.pod_events {
            sources.spawn(source::pod_events::run(pod.clone(), stop_sources.clone()));
        }
        for container in &config.pod_logs.containers {
            sources.spawn(source::pod_logs::run(
                pod.clone(),
                container.clone(),
                config.pod_logs.stack_traces,
                config.max_line_bytes,
                stop_sources.clone(),
            ));
        }
    }
    for target in &config.scrape {
        sources.spawn(source::scrape::run(
            target.clone(),
            buffer.clone(),
            identity.clone(),
            metrics.clone(),
            stop_sources.clone(),
        ));
    }
    if config.cgroup.enabled {
        sources.spawn(source::cgroup::run(
            config.cgroup.clone(),
            buffer.clone(),
            identity.clone(),
            metrics.clone(),
            stop_sources.clone(),
        ));
    }
    if config.inventory.enabled {
        // The token (as the shipper already read it) keys the environment hashes; every
        // pod of a deployment shares it.
        let key = connection
            .1
            .as_ref()
            .map(|token| token.as_bytes().to_vec())
            .unwrap_or_default();
        sources.spawn(source::inventory::run(
            source::inventory::Inventory::new(config.inventory.clone(), key),
            buffer.clone(),
            identity.clone(),
            metrics.clone(),
            stop_sources.clone(),
        ));
    }
    if config.snapshots.enabled {
        let (channel, token) = connection;
        sources.spawn(control::run(
            config.snapshots.clone(),
            identity.clone(),
            channel,
            token,
            stop_sources.clone(),
        ));
    }
    ready.store(true, Ordering::Relaxed);
    tracing::info!(endpoint = %config.endpoint, files = config.files.len(), "collector running");

    let mut failure = None;
    let mut shipping = true;
    tokio::select! {
        () = shutdown => tracing::info!("shutting down: flushing sources into the buffer"),
        Some(result) = sources.join_next() => failure = source_failure(result),
        // It returns only when told to stop: an end before then is a panic. Reading on
        // into a buffer nobody sends would look healthy and ship nothing; exiting gets
        // the collector restarted, and the buffer sent.
        result = &mut shipper_task => {
            shipping = false;
            failure = Some(CollectorError::Buffer(match result {
                Err(panic) => format!("the shipper failed: {panic}"),
                Ok(()) => "the shipper stopped".into(),
            }));
        }
    }
    stop_sources.cancel();
    while let Some(result) = sources.join_next().await {
        failure = failure.or(source_failure(result));
    }
    let deadline = Instant::now() + config.shutdown_timeout;
    while shipping && !buffer.is_drained() && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let left = buffer.pending_records();
    if left > 0 {
        tracing::warn!(
            records = left,
            "shutdown timeout: records stay in the buffer and are sent on the next start"
        );
    }
    stop_shipping.cancel();
    if shipping && let Err(panic) = shipper_task.await {
        failure = failure.or(Some(CollectorError::Buffer(format!(
            "the shipper failed: {panic}"
        ))));
    }
    stop_http.cancel();
    let _ = http_task.await;
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The API (in-cluster, else `KUBECONFIG`), this pod's namespace and name, for `pod_logs`
/// and `pod_events`.
async fn kube_target(
    identity: &Identity,
) -> Result<(kube::Client, String, String), CollectorError> {
    let named = |key: &str, env: &str| {
        identity.get(key).map(str::to_string).ok_or_else(|| {
            CollectorError::Config(format!(
                "pod_logs, pod_events: the pod's {key} is not known; set {env} from the downward API"
            ))
        })
    };
    let namespace = named("k8s.namespace.name", "K8S_NAMESPACE")?;
    let pod = named("k8s.pod.name", "K8S_POD_NAME")?;
    // kube speaks TLS through rustls, which needs its crypto chosen once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let no_api = |e: &dyn std::fmt::Display| {
        CollectorError::Config(format!(
            "pod_logs, pod_events: no Kubernetes API to ask (no in-cluster ServiceAccount token, no KUBECONFIG): {e}"
        ))
    };
    let mut config = kube::Config::infer().await.map_err(|e| no_api(&e))?;
    // kube waits for ever by default: a connection that died without a word (a node
    // gone, a network partition) would hold a log stream open with nothing coming.
    // Quiet apps' streams are then asked for again every few minutes, which costs a line
    // or two of the last second, skipped.
    config.read_timeout = Some(std::time::Duration::from_secs(330));
    let client = kube::Client::try_from(config).map_err(|e| no_api(&e))?;
    Ok((client, namespace, pod))
}

fn source_failure(
    result: Result<Result<(), CollectorError>, tokio::task::JoinError>,
) -> Option<CollectorError> {
    match result {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error),
        Err(panic) => Some(CollectorError::Buffer(format!(
            "a source task failed: {panic}"
        ))),
    }
}
