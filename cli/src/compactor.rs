//! The background compaction of ingest nodes, and `porthole compact`.
//!
//! Every interval, each table is compacted ([`Storage::compact`]) and vacuumed
//! ([`Storage::vacuum`]). Several ingest nodes may all run it: the Delta log lets one
//! compaction of the same files win and the others count a conflict.

use std::sync::Arc;
use std::time::Duration;

use porthole_storage::{CompactionPolicy, CompactionReport, Signal, Storage};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

type ByTable = Family<Vec<(String, String)>, Counter>;

#[derive(Clone, Default)]
pub struct CompactionMetrics {
    files_replaced: ByTable,
    files_written: ByTable,
    conflicts: ByTable,
    failures: ByTable,
    vacuumed: ByTable,
}

impl CompactionMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        for (name, help, family) in [
            (
                "porthole_compaction_files_replaced",
                "Small files merged away by compaction",
                &metrics.files_replaced,
            ),
            (
                "porthole_compaction_files_written",
                "Compacted files committed",
                &metrics.files_written,
            ),
            (
                "porthole_compaction_conflicts",
                "Compactions given up because another compactor committed first",
                &metrics.conflicts,
            ),
            (
                "porthole_compaction_failures",
                "Compaction or vacuum passes that failed (retried next interval)",
                &metrics.failures,
            ),
            (
                "porthole_vacuum_deleted_objects",
                "Replaced data and index files deleted after the grace period",
                &metrics.vacuumed,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        metrics
    }

    fn record(&self, signal: Signal, report: &CompactionReport, vacuumed: usize) {
        let table = vec![("table".to_string(), signal.table_name().to_string())];
        self.files_replaced
            .get_or_create(&table)
            .inc_by(report.files_replaced as u64);
        self.files_written
            .get_or_create(&table)
            .inc_by(report.files_written as u64);
        self.conflicts
            .get_or_create(&table)
            .inc_by(report.conflicts as u64);
        self.vacuumed.get_or_create(&table).inc_by(vacuumed as u64);
    }
}

/// One compaction and vacuum pass over every table.
pub async fn pass(
    storage: &Storage,
    policy: &CompactionPolicy,
    grace: Duration,
    metrics: &CompactionMetrics,
) -> anyhow::Result<Vec<(Signal, CompactionReport, usize)>> {
    let mut done = Vec::new();
    for signal in Signal::ALL {
        let outcome = async {
            let report = storage.compact(signal, policy).await?;
            let vacuumed = storage.vacuum(signal, grace).await?;
            anyhow::Ok((report, vacuumed))
        }
        .await;
        match outcome {
            Ok((report, vacuumed)) => {
                metrics.record(signal, &report, vacuumed);
                done.push((signal, report, vacuumed));
            }
            Err(e) => {
                let table = vec![("table".to_string(), signal.table_name().to_string())];
                metrics.failures.get_or_create(&table).inc();
                return Err(e.context(format!("compacting the {} table", signal.table_name())));
            }
        }
    }
    Ok(done)
}

/// Runs [`pass`] every `interval` until `stop`. A pass cut short by `stop` leaves only
/// invisible, uncommitted files behind.
pub fn spawn(
    storage: Arc<Storage>,
    policy: CompactionPolicy,
    interval: Duration,
    grace: Duration,
    metrics: CompactionMetrics,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate; start one interval in
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                result = pass(&storage, &policy, grace, &metrics) => {
                    if let Err(e) = result {
                        tracing::warn!("{e:#}; retrying next interval");
                    }
                }
            }
        }
    })
}
