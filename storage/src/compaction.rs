//! Compaction and vacuum: small files every second are cheap to write and expensive to
//! read, so runs of them are rewritten as few large files, then deleted once no reader can
//! still need them.
//!
//! A compaction reads the small files of one day partition, oldest first, until their
//! decoded rows reach [`CompactionPolicy::max_group_bytes`], then writes those rows as one
//! file exactly as ingest would (sorted by service then time, page index, bloom filter,
//! its own tantivy index built from the merged rows, so document `row` stays the Parquet
//! ordinal) and swaps it in with ONE Delta commit (`dataChange=false`: the table's content
//! is unchanged). Readers in flight keep their snapshot, whose files stay until
//! [`Storage::vacuum`] removes them after a grace period.
//!
//! Memory is bounded by the group: rows read (≤ `max_group_bytes` plus one file), their
//! sorted copy and the encoders' buffers, about three times `max_group_bytes` at peak.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use arrow::array::RecordBatch;
use deltalake::kernel::Remove;
use deltalake::table::state::DeltaTableState;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;

use crate::catalog::FileEntry;
use crate::{
    Effort, Result, Signal, Storage, StorageError, blocking, encode_file_blocking, index_path_of,
    put_encoded,
};

/// Files no table version lists are deleted only once at least this old (whatever the
/// vacuum grace): younger ones may belong to a commit still in flight.
pub const ORPHAN_MIN_AGE: Duration = Duration::from_secs(3600);

/// When and how much to compact.
#[derive(Clone, Debug)]
pub struct CompactionPolicy {
    /// A day partition is compacted once it holds this many files not yet compacted.
    pub min_files: usize,
    /// Decoded (Arrow) bytes of rows that make one compacted file, at most (plus one input
    /// file). The main bound on the compactor's memory.
    pub max_group_bytes: usize,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self {
            min_files: 8,
            max_group_bytes: 128 * 1024 * 1024,
        }
    }
}

/// What one [`Storage::compact`] pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Compacted files committed.
    pub files_written: usize,
    /// Small files they replaced.
    pub files_replaced: usize,
    pub rows: usize,
    pub bytes_replaced: u64,
    pub bytes_written: u64,
    /// Groups given up because another compactor committed over the same table first.
    pub conflicts: usize,
    /// Data files left out because they cannot be read (missing, damaged): they stay in
    /// the table until `porthole repair` takes them out, and the rest is compacted.
    pub unreadable: usize,
}

impl Storage {
    /// One compaction pass over the signal's table. Two compactors (threads or nodes)
    /// may run at once: each commit names the compaction app id, so of two racing over
    /// the same files only one commits; the other's files are deleted and it reports a
    /// conflict. Appends running meanwhile are never affected.
    pub async fn compact(
        &self,
        signal: Signal,
        policy: &CompactionPolicy,
    ) -> Result<CompactionReport> {
        let _one_here = self.compaction_lock.lock().await;
        let (mut snapshot, files) = self.catalog(signal).plan_snapshot().await?;
        let mut by_day: BTreeMap<String, Vec<FileEntry>> = BTreeMap::new();
        for file in files.into_iter().filter(|f| !f.compacted) {
            by_day
                .entry(file.day.clone().unwrap_or_default())
                .or_default()
                .push(file);
        }
        let mut report = CompactionReport::default();
        for (day, mut small) in by_day {
            if small.len() < policy.min_files.max(2) {
                continue;
            }
            small.sort_by_key(|f| f.time_range_micros.map(|(min, _)| min));
            let mut group: Vec<FileEntry> = Vec::new();
            let mut rows: Vec<RecordBatch> = Vec::new();
            let mut decoded = 0usize;
            let remaining = small.len();
            for (i, file) in small.into_iter().enumerate() {
                match self.read_file(signal, &file.path).await {
                    Ok(batches) => {
                        decoded += batches
                            .iter()
                            .map(|b| b.get_array_memory_size())
                            .sum::<usize>();
                        rows.extend(batches);
                        group.push(file);
                    }
                    // One lost file must not stop the compaction of every day after it.
                    Err(error @ StorageError::UnreadableDataFile { .. }) => {
                        tracing::warn!(%error, "compaction leaves out a data file it cannot read");
                        report.unreadable += 1;
                    }
                    Err(error) => return Err(error),
                }
                let left = remaining - i - 1;
                // A full group is written; so is the last one, when it alone is worth it.
                if decoded >= policy.max_group_bytes
                    || (left == 0 && group.len() >= policy.min_files.max(2))
                {
                    let group = std::mem::take(&mut group);
                    let rows = std::mem::take(&mut rows);
                    decoded = 0;
                    match self
                        .rewrite(signal, &snapshot, &day, group, rows, &mut report)
                        .await?
                    {
                        // The next group commits on top of this one's commit.
                        Some(after) => snapshot = after,
                        // Another compactor is at work on this table: leave it to it.
                        None if report.conflicts > 0 => return Ok(report),
                        None => {}
                    }
                }
            }
        }
        Ok(report)
    }

    /// Writes one group's rows as one file and commits the swap; returns the table state
    /// after that commit (`None`: nothing committed).
    async fn rewrite(
        &self,
        signal: Signal,
        snapshot: &DeltaTableState,
        day: &str,
        group: Vec<FileEntry>,
        rows: Vec<RecordBatch>,
        report: &mut CompactionReport,
    ) -> Result<Option<DeltaTableState>> {
        if group.len() < 2 {
            return Ok(None); // one large file needs no rewrite
        }
        let schema = rows
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| signal.file_schema());
        let merged = blocking(move || crate::sort_for_storage(schema, &rows)).await?;
        let row_count = merged.num_rows();
        let encoded = encode_file_blocking(signal, merged, Effort::Compaction).await?;
        let catalog = self.catalog(signal);
        let store = catalog.object_store().await;
        let mut written = Vec::new();
        let mut bytes_written = 0u64;
        let add = put_encoded(
            store.as_ref(),
            day,
            &encoded,
            false,
            &mut written,
            &mut bytes_written,
        )
        .await?;
        let now = chrono::Utc::now().timestamp_millis();
        let removes = group
            .iter()
            .map(|file| Remove {
                path: file.path.clone(),
                data_change: false,
                deletion_timestamp: Some(now),
                extended_file_metadata: Some(true),
                partition_values: Some(
                    [("day".to_string(), Some(day.to_string()))]
                        .into_iter()
                        .collect(),
                ),
                size: Some(file.size),
                ..Default::default()
            })
            .collect();
        match catalog.commit_compaction(snapshot, add, removes, day).await {
            Ok((version, after)) => {
                tracing::info!(
                    table = signal.table_name(),
                    day,
                    version,
                    files = group.len(),
                    rows = row_count,
                    "compacted"
                );
                for file in &group {
                    self.forget_file(signal, &file.path);
                }
                report.files_written += 1;
                report.files_replaced += group.len();
                report.rows += row_count;
                report.bytes_replaced += group.iter().map(|f| f.size.max(0) as u64).sum::<u64>();
                report.bytes_written += bytes_written;
                Ok(Some(after))
            }
            Err(e) => {
                for path in &written {
                    let _ = store.delete(path).await;
                }
                if is_conflict(&e) {
                    tracing::info!(
                        table = signal.table_name(),
                        day,
                        "another compactor won; skipped"
                    );
                    report.conflicts += 1;
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Retention: removes, in one commit, every file of the day partitions wholly older
    /// than `max_age` (a day goes once its last microsecond is). Their objects are deleted
    /// by [`Storage::vacuum`] after its grace period. Returns the files removed.
    pub async fn expire(&self, signal: Signal, max_age: Duration) -> Result<usize> {
        let _one_here = self.compaction_lock.lock().await;
        let cutoff = chrono::Utc::now().timestamp_micros() - max_age.as_micros() as i64;
        // Days before the cutoff's own day end before the cutoff.
        let before_day = crate::datafile::day_of(cutoff);
        let (snapshot, files) = self.catalog(signal).plan_snapshot().await?;
        let now = chrono::Utc::now().timestamp_millis();
        let removes: Vec<Remove> = files
            .iter()
            .filter(|f| {
                f.day
                    .as_deref()
                    .is_some_and(|day| day < before_day.as_str())
            })
            .map(|file| removed(file, now, true))
            .collect();
        if removes.is_empty() {
            return Ok(0);
        }
        let count = removes.len();
        for remove in &removes {
            self.forget_file(signal, &remove.path);
        }
        let version = self
            .catalog(signal)
            .commit_expiry(&snapshot, removes, &before_day)
            .await?;
        tracing::info!(
            table = signal.table_name(),
            version,
            files = count,
            before_day,
            "expired"
        );
        Ok(count)
    }

    /// Takes the data files the table lists but cannot read out of it, in one commit:
    /// files gone from storage (deleted outside Porthole, a wrong lifecycle rule) and files
    /// whose Parquet footer does not decode. Their rows are lost already; until they are
    /// out, every search whose page holds their rows and SQL over their table fail, and
    /// compaction leaves them out. What is left of them (a damaged file, its index) is deleted by
    /// vacuum after its grace. A damaged page behind an intact footer is found only by a
    /// `deep` check.
    pub async fn repair(&self, signal: Signal, how: Repair) -> Result<RepairReport> {
        let Repair { dry_run, deep } = how;
        let _one_here = self.compaction_lock.lock().await;
        let catalog = self.catalog(signal);
        let (snapshot, files) = catalog.plan_snapshot().await?;
        let missing: HashSet<String> = catalog.missing_files().await?.into_iter().collect();
        let now = chrono::Utc::now().timestamp_millis();
        let mut report = RepairReport::default();
        let mut removes = Vec::new();
        for file in &files {
            let problem = if missing.contains(&file.path) {
                "missing from storage".to_string()
            } else {
                let checked = match deep {
                    true => self.read_file(signal, &file.path).await.map(drop),
                    false => self.footer(signal, &file.path).await.map(drop),
                };
                match checked {
                    Ok(()) => continue,
                    Err(StorageError::UnreadableDataFile { problem, .. }) => problem,
                    Err(error) => return Err(error),
                }
            };
            report.unreadable.push((file.path.clone(), problem));
            removes.push(removed(file, now, true));
        }
        if dry_run || removes.is_empty() {
            return Ok(report);
        }
        for remove in &removes {
            self.forget_file(signal, &remove.path);
        }
        let version = catalog.commit_repair(&snapshot, removes).await?;
        tracing::warn!(table = signal.table_name(), version, files = ?report.unreadable, "unreadable data files taken out of the table");
        report.version = Some(version);
        Ok(report)
    }

    /// Deletes the data files (and their indexes) that compaction removed from the table
    /// more than `grace` ago. A reader holding an older snapshot has until then to finish.
    /// Returns how many objects were deleted.
    pub async fn vacuum(&self, signal: Signal, grace: Duration) -> Result<usize> {
        let cutoff = chrono::Utc::now().timestamp_millis() - grace.as_millis() as i64;
        let catalog = self.catalog(signal);
        // Live files before tombstones: a file removed in between is then in the second
        // list, so the orphan sweep below never takes a file some snapshot still lists.
        let live = self.files(signal).await?;
        let tombstones = catalog.tombstones().await?;
        let store = catalog.object_store().await;
        let mut vacuumed_by_table = self.vacuumed.lock().await;
        let vacuumed = vacuumed_by_table.entry(signal).or_default();
        // Only tombstones still in the log need remembering: the set stays bounded by it.
        let current: HashSet<&String> = tombstones.iter().map(|(path, _)| path).collect();
        vacuumed.retain(|path| current.contains(path));
        let mut deleted = 0;
        for (path, _) in tombstones
            .iter()
            .filter(|(_, at)| at.is_some_and(|at| at < cutoff))
        {
            if vacuumed.contains(path) {
                continue;
            }
            for object in [path.clone(), index_path_of(path)] {
                deleted +=
                    delete_present(store.as_ref(), &ObjectPath::from(object.as_str())).await?;
            }
            vacuumed.insert(path.clone());
        }
        drop(vacuumed_by_table);
        let known = (tombstones.into_iter().map(|(path, _)| path))
            .chain(live.into_iter().map(|f| f.path))
            .collect();
        let orphans = self
            .delete_orphans(signal, grace.max(ORPHAN_MIN_AGE), known)
            .await?;
        Ok(deleted + orphans)
    }

    /// Deletes data and index objects that no table version ever listed and that are
    /// older than `min_age`: what a write or compaction left when its process died between
    /// writing its files and committing them. Young ones may be a commit in flight.
    /// `known`: the paths of every file the table lists or has removed.
    async fn delete_orphans(
        &self,
        signal: Signal,
        min_age: Duration,
        known: HashSet<String>,
    ) -> Result<usize> {
        use futures::TryStreamExt;
        let catalog = self.catalog(signal);
        let store = catalog.object_store().await;
        let objects: Vec<object_store::ObjectMeta> = store.list(None).try_collect().await?;
        let cutoff = chrono::Utc::now() - min_age;
        let mut deleted = 0;
        for object in objects {
            let path = object.location.as_ref();
            let data_path = match path.strip_prefix("_porthole_index/") {
                Some(index) => match index.strip_suffix(".idx") {
                    Some(stem) => format!("{stem}.zstd.parquet"),
                    None => continue,
                },
                None if path.ends_with(".zstd.parquet") && !path.starts_with('_') => {
                    path.to_string()
                }
                None => continue, // the table log, checkpoints, anything not ours
            };
            if known.contains(&data_path) || object.last_modified > cutoff {
                continue;
            }
            deleted += delete_present(store.as_ref(), &object.location).await?;
        }
        if deleted > 0 {
            tracing::info!(
                table = signal.table_name(),
                objects = deleted,
                "deleted orphaned files"
            );
        }
        Ok(deleted)
    }
}

/// How [`Storage::repair`] checks a table.
#[derive(Clone, Copy, Debug, Default)]
pub struct Repair {
    /// Only report what it would take out.
    pub dry_run: bool,
    /// Decode every page of every file, not only each footer: finds damaged pages, at the
    /// cost of reading the whole table.
    pub deep: bool,
}

/// What [`Storage::repair`] found in one table.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// Each unreadable data file (its path in the table) and what is wrong with it.
    pub unreadable: Vec<(String, String)>,
    /// The table version that took them out; `None` for a dry run or nothing to repair.
    pub version: Option<u64>,
}

/// Deletes one object; 1 if it was there, 0 if it was already gone.
async fn delete_present(store: &dyn object_store::ObjectStore, path: &ObjectPath) -> Result<usize> {
    match store.delete(path).await {
        Ok(()) => Ok(1),
        Err(object_store::Error::NotFound { .. }) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// The Remove action that takes `file` out of the table at `now` (unix ms).
fn removed(file: &FileEntry, now: i64, data_change: bool) -> Remove {
    Remove {
        path: file.path.clone(),
        data_change,
        deletion_timestamp: Some(now),
        extended_file_metadata: Some(true),
        partition_values: Some(
            [("day".to_string(), file.day.clone())]
                .into_iter()
                .collect(),
        ),
        size: Some(file.size),
        ..Default::default()
    }
}

/// Whether a commit failed because a concurrent commit conflicts with it (for a
/// compaction: another compaction won the race).
fn is_conflict(error: &StorageError) -> bool {
    use deltalake::DeltaTableError;
    use deltalake::kernel::transaction::TransactionError;
    matches!(
        error,
        StorageError::Delta(DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(_)
        })
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Location, convert_logs};
    use porthole_proto::common::{AnyValue, any_value::Value};
    use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
    use porthole_proto::logs_service::ExportLogsServiceRequest;

    const T0: u64 = 1_764_000_000_000_000_000;

    fn rows(first: u64, n: u64) -> RecordBatch {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: (first..first + n)
                        .map(|i| LogRecord {
                            time_unix_nano: T0 + i,
                            body: Some(AnyValue {
                                value: Some(Value::StringValue(format!("line {i}"))),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        convert_logs(&request, 0).batch
    }

    async fn read(storage: &Storage, files: &[FileEntry]) -> Vec<RecordBatch> {
        let mut batches = Vec::new();
        for file in files {
            batches.extend(storage.read_file(Signal::Logs, &file.path).await.unwrap());
        }
        batches
    }

    async fn row_count(storage: &Storage) -> usize {
        storage
            .read_all(Signal::Logs)
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum()
    }

    /// The race the Delta log must settle: two compactors plan on the same snapshot and
    /// both rewrite the same files. Without the compaction app id both commits succeed
    /// (Delta lets `dataChange=false` removes of one file coexist) and every row doubles.
    #[tokio::test(flavor = "multi_thread")]
    async fn of_two_compactions_planned_on_one_snapshot_only_the_first_commits() {
        let dir = tempfile::tempdir().unwrap();
        let a = Storage::open(Location::Local(dir.path().into()))
            .await
            .unwrap();
        let b = Storage::open(Location::Local(dir.path().into()))
            .await
            .unwrap();
        for i in 0..4 {
            a.append(Signal::Logs, rows(i * 10, 10)).await.unwrap();
        }
        let (snapshot_a, files_a) = a.catalog(Signal::Logs).plan_snapshot().await.unwrap();
        let (snapshot_b, files_b) = b.catalog(Signal::Logs).plan_snapshot().await.unwrap();
        let day = files_a[0].day.clone().unwrap();
        let (rows_a, rows_b) = (read(&a, &files_a).await, read(&b, &files_b).await);
        let mut report_a = CompactionReport::default();
        a.rewrite(
            Signal::Logs,
            &snapshot_a,
            &day,
            files_a,
            rows_a,
            &mut report_a,
        )
        .await
        .unwrap();
        // An append between the two must not be what makes the second fail, nor be lost.
        a.append(Signal::Logs, rows(100, 5)).await.unwrap();
        let mut report_b = CompactionReport::default();
        b.rewrite(
            Signal::Logs,
            &snapshot_b,
            &day,
            files_b,
            rows_b,
            &mut report_b,
        )
        .await
        .unwrap();
        assert_eq!((report_a.files_written, report_a.files_replaced), (1, 4));
        assert_eq!((report_b.files_written, report_b.conflicts), (0, 1));
        assert_eq!(row_count(&a).await, 45);
        assert_eq!(a.files(Signal::Logs).await.unwrap().len(), 2);
        // The loser's rewritten file and index were deleted: only the winner's remain,
        // beside the 4 replaced and the appended one.
        let parquet = walk(dir.path().join("logs"), ".parquet");
        let indexes = walk(dir.path().join("logs"), ".idx");
        assert_eq!((parquet, indexes), (6, 6));
    }

    /// Record ids as a file holds them, by body.
    fn ids_by_body(batches: &[RecordBatch]) -> Vec<(String, i64)> {
        use arrow::array::AsArray;
        batches
            .iter()
            .flat_map(|b| {
                let bodies = b.column_by_name("body").unwrap().as_string::<i32>().clone();
                let ids = b
                    .column_by_name("record_id")
                    .unwrap()
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .clone();
                (0..b.num_rows()).map(move |r| (bodies.value(r).to_string(), ids.value(r)))
            })
            .collect()
    }

    /// A new file's records are numbered in file order from a random base of its own (so
    /// the column and the index's fast field cost next to nothing); compaction keeps the
    /// ids, so a cursor orders ties the same before and after.
    #[tokio::test(flavor = "multi_thread")]
    async fn new_files_number_their_records_in_order_and_compaction_keeps_the_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(Location::Local(dir.path().into()))
            .await
            .unwrap();
        // Rows out of time order: the file's order (service, time) is what is numbered.
        let mut batches = vec![rows(50, 20), rows(0, 20)];
        let both = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        storage.append(Signal::Logs, both).await.unwrap();
        storage.append(Signal::Logs, rows(100, 10)).await.unwrap();
        let files = storage.files(Signal::Logs).await.unwrap();
        let mut before = Vec::new();
        let mut bases = Vec::new();
        for file in &files {
            let ids = ids_by_body(&read(&storage, std::slice::from_ref(file)).await);
            bases.push(ids[0].1);
            for (row, (_, id)) in ids.iter().enumerate() {
                assert_eq!(*id, ids[0].1 + row as i64, "{ids:?}");
            }
            before.extend(ids);
        }
        assert_ne!(bases[0], bases[1], "each file draws its own base");
        batches = read(&storage, &files).await;
        let (snapshot, files) = storage.catalog(Signal::Logs).plan_snapshot().await.unwrap();
        let day = files[0].day.clone().unwrap();
        let mut report = CompactionReport::default();
        storage
            .rewrite(Signal::Logs, &snapshot, &day, files, batches, &mut report)
            .await
            .unwrap();
        assert_eq!(report.files_written, 1);
        let mut after = ids_by_body(&storage.read_all(Signal::Logs).await.unwrap());
        before.sort();
        after.sort();
        assert_eq!(before.len(), 50);
        assert_eq!(after, before);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn large_groups_split_and_vacuum_waits_for_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(Location::Local(dir.path().into()))
            .await
            .unwrap();
        for i in 0..9 {
            storage
                .append(Signal::Logs, rows(i * 1000, 1000))
                .await
                .unwrap();
        }
        let one_file = storage
            .read_file(
                Signal::Logs,
                &storage.files(Signal::Logs).await.unwrap()[0].path,
            )
            .await
            .unwrap()
            .iter()
            .map(|b| b.get_array_memory_size())
            .sum::<usize>();
        // Groups close once they hold 3 files' rows: 9 files → 3 compacted files.
        let policy = CompactionPolicy {
            min_files: 2,
            max_group_bytes: one_file * 5 / 2,
        };
        let report = storage.compact(Signal::Logs, &policy).await.unwrap();
        assert_eq!(
            (report.files_written, report.files_replaced, report.rows),
            (3, 9, 9000)
        );
        let files = storage.files(Signal::Logs).await.unwrap();
        assert!(
            files
                .iter()
                .all(|f| f.compacted && f.num_records == Some(3000))
        );
        // Compacted files are left alone afterwards.
        assert_eq!(
            storage.compact(Signal::Logs, &policy).await.unwrap(),
            CompactionReport::default()
        );
        assert_eq!(row_count(&storage).await, 9000);

        assert_eq!(
            storage
                .vacuum(Signal::Logs, Duration::from_secs(3600))
                .await
                .unwrap(),
            0
        );
        assert_eq!(walk(dir.path().join("logs"), ".parquet"), 12);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            storage.vacuum(Signal::Logs, Duration::ZERO).await.unwrap(),
            18
        );
        assert_eq!(walk(dir.path().join("logs"), ".parquet"), 3);
        assert_eq!(walk(dir.path().join("logs"), ".idx"), 3);
        assert_eq!(
            storage.vacuum(Signal::Logs, Duration::ZERO).await.unwrap(),
            0
        );
        assert_eq!(row_count(&storage).await, 9000);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn retention_removes_whole_old_days_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(Location::Local(dir.path().into()))
            .await
            .unwrap();
        // T0 is 2025-11-24: two old days, then rows of today.
        storage.append(Signal::Logs, rows(0, 10)).await.unwrap();
        storage
            .append(Signal::Logs, rows(86_400_000_000_000, 10))
            .await
            .unwrap();
        let today = chrono::Utc::now().timestamp_nanos_opt().unwrap() as u64 - T0;
        storage.append(Signal::Logs, rows(today, 7)).await.unwrap();
        let version = storage.version(Signal::Logs).await.unwrap();
        // A week keeps today only.
        let week = Duration::from_secs(7 * 86_400);
        assert_eq!(storage.expire(Signal::Logs, week).await.unwrap(), 2);
        assert_eq!(storage.version(Signal::Logs).await.unwrap(), version + 1);
        assert_eq!(row_count(&storage).await, 7);
        assert_eq!(storage.expire(Signal::Logs, week).await.unwrap(), 0);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            storage.vacuum(Signal::Logs, Duration::ZERO).await.unwrap(),
            4
        );
        assert_eq!(walk(dir.path().join("logs"), ".parquet"), 1);
        // Nothing is older than 10 years.
        let decade = Duration::from_secs(3650 * 86_400);
        assert_eq!(storage.expire(Signal::Logs, decade).await.unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn vacuum_deletes_old_orphans_and_spares_young_ones_and_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(Location::Local(dir.path().into()))
            .await
            .unwrap();
        storage.append(Signal::Logs, rows(0, 10)).await.unwrap();
        let table = dir.path().join("logs");
        let orphan = |name: &str, age: Duration| {
            for path in [
                table.join(format!("day=2025-11-24/{name}.zstd.parquet")),
                table.join(format!("_porthole_index/day=2025-11-24/{name}.idx")),
            ] {
                std::fs::write(&path, b"left by a crash").unwrap();
                let file = std::fs::File::options().write(true).open(&path).unwrap();
                file.set_modified(std::time::SystemTime::now() - age)
                    .unwrap();
            }
        };
        orphan("part-old", ORPHAN_MIN_AGE + Duration::from_secs(60));
        orphan("part-young", Duration::from_secs(60));
        assert_eq!(walk(table.clone(), ".parquet"), 3);
        assert_eq!(
            storage.vacuum(Signal::Logs, Duration::ZERO).await.unwrap(),
            2
        );
        assert_eq!(walk(table.clone(), ".parquet"), 2);
        assert_eq!(walk(table.clone(), ".idx"), 2);
        assert!(
            table
                .join("day=2025-11-24/part-young.zstd.parquet")
                .exists()
        );
        assert_eq!(row_count(&storage).await, 10);
    }

    fn walk(dir: std::path::PathBuf, suffix: &str) -> usize {
        let mut n = 0;
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.to_string_lossy().ends_with(suffix) {
                    n += 1;
                }
            }
        }
        n
    }
}
