//! The background compaction of ingest nodes, and `porthole compact`.
//!
//! Every interval, each table has its old days removed ([`Storage::expire`], when it has
//! a retention), is compacted ([`Storage::compact`]) and vacuumed ([`Storage::vacuum`]). Several ingest nodes may all run it: the Delta log lets one
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
    unreadable: ByTable,
    vacuumed: ByTable,
    expired: ByTable,
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
                "porthole_compaction_unreadable_files",
                "Data files compaction left out because they cannot be read (missing or \
                 damaged; `porthole repair` takes them out of the table)",
                &metrics.unreadable,
            ),
            (
                "porthole_retention_files_removed",
                "Files removed from a table for being older than its --retention",
                &metrics.expired,
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

    fn record(&self, signal: Signal, pass: &Pass) {
        let table = vec![("table".to_string(), signal.table_name().to_string())];
        let report = &pass.compaction;
        for (family, count) in [
            (&self.expired, pass.expired),
            (&self.files_replaced, report.files_replaced),
            (&self.files_written, report.files_written),
            (&self.conflicts, report.conflicts),
            (&self.unreadable, report.unreadable),
            (&self.vacuumed, pass.vacuumed),
        ] {
            family.get_or_create(&table).inc_by(count as u64);
        }
    }
}

/// What one maintenance pass did to one table.
pub struct Pass {
    pub expired: usize,
    pub compaction: CompactionReport,
    pub vacuumed: usize,
}

/// How maintenance runs: compaction policy, retention, vacuum grace.
#[derive(Clone)]
pub struct Maintenance {
    pub policy: CompactionPolicy,
    pub retention: std::collections::BTreeMap<Signal, Duration>,
    pub grace: Duration,
}

/// One pass over every table: retention, then compaction, then vacuum.
pub async fn pass(
    storage: &Storage,
    maintenance: &Maintenance,
    metrics: &CompactionMetrics,
) -> anyhow::Result<Vec<(Signal, Pass)>> {
    let mut done = Vec::new();
    for signal in Signal::ALL {
        let outcome = async {
            let expired = match maintenance.retention.get(&signal) {
                Some(age) => storage.expire(signal, *age).await?,
                None => 0,
            };
            let compaction = storage.compact(signal, &maintenance.policy).await?;
            let vacuumed = storage.vacuum(signal, maintenance.grace).await?;
            anyhow::Ok(Pass {
                expired,
                compaction,
                vacuumed,
            })
        }
        .await;
        match outcome {
            Ok(pass) => {
                metrics.record(signal, &pass);
                done.push((signal, pass));
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
    maintenance: Maintenance,
    interval: Duration,
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
                result = pass(&storage, &maintenance, &metrics) => {
                    if let Err(e) = result {
                        tracing::warn!("{e:#}; retrying next interval");
                    }
                }
            }
        }
    })
}
