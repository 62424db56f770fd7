//! Groups the exports that arrive within a short window into one write per signal, and
//! acks each export only after the write's commit.
//!
//! Memory is bounded by one byte budget shared by all signals: an export takes its size
//! from the budget before it is queued and gives it back when its batch is done. When the
//! budget is spent, new exports are refused at once with UNAVAILABLE (the sender keeps the
//! data and retries) rather than queued without limit.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use porthole_storage::{AppendReport, Signal, Stores, Tenant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::IngestError;
use crate::telemetry::IngestMetrics;

/// How the batcher groups and bounds writes.
#[derive(Clone, Debug)]
pub struct BatchConfig {
    /// A batch is written this long after its first export arrived…
    pub window: Duration,
    /// …or as soon as it holds this many bytes of rows.
    pub max_batch_bytes: usize,
    /// Rows of all signals waiting to be written, at most.
    pub max_buffer_bytes: usize,
    /// A write + commit that takes longer fails its batch with UNAVAILABLE.
    pub write_timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(1),
            max_batch_bytes: 64 * 1024 * 1024,
            max_buffer_bytes: 256 * 1024 * 1024,
            write_timeout: Duration::from_secs(30),
        }
    }
}

struct Pending {
    rows: RecordBatch,
    bytes: usize,
    /// Whose tables the rows go to (None: the root's, single-tenant).
    tenant: Option<Tenant>,
    _budget: OwnedSemaphorePermit,
    ack: oneshot::Sender<Result<AppendReport, IngestError>>,
}

type SignalQueue = (Signal, mpsc::UnboundedSender<Pending>);

pub struct Batcher {
    /// Each signal's queue to its worker; `None` once closed for shutdown.
    queues: std::sync::Mutex<Option<Vec<SignalQueue>>>,
    budget: Arc<Semaphore>,
    max_buffer_bytes: usize,
    metrics: Arc<IngestMetrics>,
    workers: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Once cancelled, batches are written at once instead of waiting out the window.
    draining: CancellationToken,
}

impl Batcher {
    pub fn start(
        config: BatchConfig,
        stores: Arc<Stores>,
        metrics: Arc<IngestMetrics>,
    ) -> Arc<Self> {
        let budget = Arc::new(Semaphore::new(config.max_buffer_bytes));
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        let draining = CancellationToken::new();
        for signal in Signal::ALL {
            let (tx, rx) = mpsc::unbounded_channel();
            queues.push((signal, tx));
            let worker = Worker {
                signal,
                config: config.clone(),
                stores: stores.clone(),
                metrics: metrics.clone(),
                budget: budget.clone(),
                max_buffer_bytes: config.max_buffer_bytes,
                draining: draining.clone(),
            };
            workers.push(tokio::spawn(worker.run(rx)));
        }
        Arc::new(Self {
            queues: std::sync::Mutex::new(Some(queues)),
            budget,
            max_buffer_bytes: config.max_buffer_bytes,
            metrics,
            workers: std::sync::Mutex::new(workers),
            draining,
        })
    }

    /// Queues the rows for `tenant`'s table and waits until they are committed (or the
    /// batch failed).
    pub async fn submit(
        &self,
        signal: Signal,
        rows: RecordBatch,
        tenant: Option<Tenant>,
    ) -> Result<AppendReport, IngestError> {
        let bytes = rows.get_array_memory_size().max(1);
        let permits = u32::try_from(bytes).map_err(|_| IngestError::TooLarge {
            limit: u32::MAX as usize,
        })?;
        if bytes > self.max_buffer_bytes {
            return Err(IngestError::TooLarge {
                limit: self.max_buffer_bytes,
            });
        }
        let budget = self
            .budget
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| IngestError::Overloaded)?;
        self.metrics
            .buffered_bytes
            .set(self.buffered_bytes() as i64);
        let (ack, acked) = oneshot::channel();
        let pending = Pending {
            rows,
            bytes,
            tenant,
            _budget: budget,
            ack,
        };
        {
            let queues = self.queues.lock().expect("queue lock");
            let queue = queues
                .as_ref()
                .and_then(|q| q.iter().find(|(s, _)| *s == signal))
                .map(|(_, tx)| tx);
            match queue {
                Some(tx) if tx.send(pending).is_ok() => {}
                _ => return Err(IngestError::ShuttingDown),
            }
        }
        acked.await.unwrap_or(Err(IngestError::ShuttingDown))
    }

    pub fn buffered_bytes(&self) -> usize {
        self.max_buffer_bytes - self.budget.available_permits()
    }

    /// Writes what is queued now rather than at the end of its window, and every later
    /// batch too: the first step of a shutdown, so in-flight exports are answered quickly.
    pub fn drain(&self) {
        self.draining.cancel();
    }

    /// Stops taking exports, writes and commits everything queued, acks it, and returns
    /// when every worker is done.
    pub async fn shutdown(&self) {
        self.drain();
        self.queues.lock().expect("queue lock").take();
        let workers: Vec<_> = self
            .workers
            .lock()
            .expect("worker lock")
            .drain(..)
            .collect();
        for worker in workers {
            let _ = worker.await;
        }
    }
}

struct Worker {
    signal: Signal,
    config: BatchConfig,
    stores: Arc<Stores>,
    metrics: Arc<IngestMetrics>,
    budget: Arc<Semaphore>,
    max_buffer_bytes: usize,
    draining: CancellationToken,
}

impl Worker {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Pending>) {
        while let Some(first) = rx.recv().await {
            let deadline = Instant::now() + self.config.window;
            let mut bytes = first.bytes;
            let mut batch = vec![first];
            while bytes < self.config.max_batch_bytes {
                let next = if self.draining.is_cancelled() {
                    // Shutting down: take what is already queued, wait for nothing.
                    match rx.try_recv() {
                        Ok(p) => Some(p),
                        Err(_) => break,
                    }
                } else {
                    tokio::select! {
                        next = rx.recv() => match next {
                            Some(p) => Some(p),
                            None => break,
                        },
                        _ = tokio::time::sleep_until(deadline) => break,
                        _ = self.draining.cancelled() => None,
                    }
                };
                if let Some(p) = next {
                    bytes += p.bytes;
                    batch.push(p);
                }
            }
            self.commit_batch(batch).await;
            self.metrics
                .buffered_bytes
                .set((self.max_buffer_bytes - self.budget.available_permits()) as i64);
        }
    }

    /// One commit per tenant in the batch: each tenant's rows go to its own table, and a
    /// failure fails only that tenant's exports.
    async fn commit_batch(&self, batch: Vec<Pending>) {
        let mut by_tenant: std::collections::BTreeMap<Option<Tenant>, Vec<Pending>> =
            Default::default();
        for pending in batch {
            by_tenant
                .entry(pending.tenant.clone())
                .or_default()
                .push(pending);
        }
        for (tenant, batch) in by_tenant {
            self.commit_tenant_batch(tenant.as_ref(), batch).await;
        }
    }

    /// In a `commit` span (signal, tenant, exports), so what the write logs says which
    /// batch it was about.
    async fn commit_tenant_batch(&self, tenant: Option<&Tenant>, batch: Vec<Pending>) {
        let span = tracing::info_span!(
            "commit",
            signal = %self.signal,
            tenant = tenant.map_or("-", |t| t.name()),
            exports = batch.len()
        );
        self.write_and_ack(tenant, batch).instrument(span).await
    }

    async fn write_and_ack(&self, tenant: Option<&Tenant>, batch: Vec<Pending>) {
        let parts: Vec<RecordBatch> = batch.iter().map(|p| p.rows.clone()).collect();
        let result = match self.stores.scoped(tenant) {
            Some(storage) => {
                let append = storage.append_parts(self.signal, &parts);
                match timeout(self.config.write_timeout, append).await {
                    Ok(Ok(report)) => Ok(report),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!(
                        "write and commit took longer than {:?}",
                        self.config.write_timeout
                    )),
                }
            }
            None => Err(format!("no tables for tenant {tenant:?}")),
        };
        match &result {
            Ok(report) => {
                self.metrics.batch_committed(self.signal, report);
                tracing::debug!(signal = %self.signal, version = report.version, rows = report.rows, exports = batch.len(), "batch committed");
            }
            Err(cause) => {
                self.metrics.batch_failed(self.signal);
                tracing::warn!(signal = %self.signal, exports = batch.len(), %cause, "batch write failed; every export in it is refused with UNAVAILABLE");
            }
        }
        for pending in batch {
            let reply = result.clone().map_err(|_| IngestError::StorageUnavailable);
            let _ = pending.ack.send(reply);
        }
    }
}
