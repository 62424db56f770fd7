//! A load generator: concurrent OTLP/gRPC log exports with unique bodies, recording which
//! exports were acked, so a test can check that every acked record is in the table.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use porthole_proto::common::{AnyValue, KeyValue, any_value::Value};
use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::logs_service::logs_service_client::LogsServiceClient;
use porthole_proto::resource::Resource;
use tokio::sync::Mutex;

pub const LOAD_SERVICE: &str = "load";

#[derive(Default, Debug)]
pub struct LoadOutcome {
    pub acked: HashSet<String>,
    /// Failed exports by gRPC code name.
    pub failures: BTreeMap<String, u64>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    outcome: Arc<Mutex<LoadOutcome>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// `n` log records with nothing but a severity: 4 bytes each on the wire, hundreds
/// decoded, for the decoding budgets.
pub fn empty_log_records(n: usize) -> ExportLogsServiceRequest {
    let record = LogRecord {
        severity_number: 9,
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record; n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn export_request(bodies: &[String]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(LOAD_SERVICE.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: bodies
                    .iter()
                    .map(|b| LogRecord {
                        time_unix_nano: std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_nanos() as u64,
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(Value::StringValue(b.clone())),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

impl Load {
    /// `workers` concurrent senders to each endpoint, `records` log records per export.
    pub fn start(endpoints: &[String], workers: usize, records: usize, label: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let outcome = Arc::new(Mutex::new(LoadOutcome::default()));
        let mut handles = Vec::new();
        for (e, endpoint) in endpoints.iter().enumerate() {
            for w in 0..workers {
                let (stop, outcome, endpoint) = (stop.clone(), outcome.clone(), endpoint.clone());
                let prefix = format!("{label}-{e}-{w}");
                handles.push(tokio::spawn(async move {
                    let mut client = None;
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        if client.is_none() {
                            client = LogsServiceClient::connect(endpoint.clone()).await.ok();
                            if client.is_none() {
                                outcome
                                    .lock()
                                    .await
                                    .failures
                                    .entry("connect".into())
                                    .and_modify(|n| *n += 1)
                                    .or_insert(1);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                continue;
                            }
                        }
                        let bodies: Vec<String> = (0..records)
                            .map(|i| format!("{prefix}-{seq}-{i}"))
                            .collect();
                        seq += 1;
                        let call = client.as_mut().unwrap().export(export_request(&bodies));
                        match tokio::time::timeout(Duration::from_secs(30), call).await {
                            Ok(Ok(_)) => outcome.lock().await.acked.extend(bodies),
                            Ok(Err(status)) => {
                                *outcome
                                    .lock()
                                    .await
                                    .failures
                                    .entry(format!("{:?}", status.code()))
                                    .or_default() += 1;
                                if status.code() == tonic::Code::Unavailable
                                    && status.message().contains("transport")
                                {
                                    client = None;
                                }
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            Err(_) => {
                                *outcome
                                    .lock()
                                    .await
                                    .failures
                                    .entry("timeout".into())
                                    .or_default() += 1;
                                client = None;
                            }
                        }
                    }
                }));
            }
        }
        Self {
            stop,
            outcome,
            workers: handles,
        }
    }

    pub async fn acked(&self) -> usize {
        self.outcome.lock().await.acked.len()
    }

    pub async fn failures(&self, code: &str) -> u64 {
        self.outcome
            .lock()
            .await
            .failures
            .get(code)
            .copied()
            .unwrap_or(0)
    }

    pub async fn finish(self) -> LoadOutcome {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            let _ = worker.await;
        }
        Arc::try_unwrap(self.outcome)
            .expect("workers done")
            .into_inner()
    }
}

/// The `load` bodies in the logs table at `table_root`, read by the Python `deltalake`
/// package (an independent reader), with how often each occurs.
pub fn stored_bodies(table_root: &str, env: &[(&str, String)]) -> BTreeMap<String, u64> {
    let out = crate::harness::run_python(
        "bodies.py",
        &[
            "--table-root".into(),
            table_root.into(),
            "--service".into(),
            LOAD_SERVICE.into(),
        ],
        env,
    );
    serde_json::from_str(out.trim()).expect("bodies.py prints a JSON object")
}

/// Asserts every acked body is stored; returns the number of duplicates (unacked retries
/// and re-sends are allowed to leave some).
pub fn assert_all_acked_present(outcome: &LoadOutcome, stored: &BTreeMap<String, u64>) -> u64 {
    let missing: Vec<&String> = outcome
        .acked
        .iter()
        .filter(|b| !stored.contains_key(*b))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acked records are missing, e.g. {:?}",
        missing.len(),
        outcome.acked.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    stored.values().map(|n| n - 1).sum()
}

/// Sends one export on its own connection in the background; the handle yields its answer.
pub fn spawn_export(
    endpoint: &str,
    bodies: Vec<String>,
) -> tokio::task::JoinHandle<
    Result<tonic::Response<porthole_proto::logs_service::ExportLogsServiceResponse>, tonic::Status>,
> {
    let endpoint = endpoint.to_string();
    tokio::spawn(async move {
        let mut client = LogsServiceClient::connect(endpoint).await.expect("connect");
        client.export(export_request(&bodies)).await
    })
}
