//! The table log: one Delta Lake table per signal, partitioned by day.
//!
//! A file becomes visible only when its Add action is committed. Writers on other nodes may
//! commit between our reads; Delta's optimistic concurrency retries appends on top of
//! theirs, which never conflict with ours.

use std::collections::HashMap;

use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, DataType, Remove, StructField, StructType, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::state::DeltaTableState;
use deltalake::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use tokio::sync::Mutex;
use url::Url;

use crate::{Result, Signal, StorageError};

/// Commits retry this often when other writers keep winning the race for the next version.
const MAX_COMMIT_RETRIES: usize = 100;

/// Tag on an Add action naming the file's packed full-text index.
pub const INDEX_TAG: &str = "porthole.index";

/// Tag on an Add action written by compaction; such files are not compacted again.
pub const COMPACTED_TAG: &str = "porthole.compacted";

/// Application id every compaction commit carries in a `txn` action. Delta's conflict
/// checker fails a commit whose app id a concurrent winner also wrote, so two compactors
/// racing on one table cannot both swap files in (its remove/remove check ignores
/// `dataChange=false` removes and would let both commit duplicates).
const COMPACTION_APP_ID: &str = "porthole.compaction";

/// A data file as the table log lists it.
#[derive(Clone, Debug)]
pub struct FileEntry {
    /// Path relative to the table root.
    pub path: String,
    pub size: i64,
    pub num_records: Option<usize>,
    pub day: Option<String>,
    /// Path of the packed index relative to the table root, for logs and spans.
    pub index_path: Option<String>,
    /// The file's first and last `timestamp`, from its statistics, for pruning.
    pub time_range_micros: Option<(i64, i64)>,
    /// Written by compaction (so already large; never compacted again).
    pub compacted: bool,
}

/// The `timestamp` min and max of an Add action's `stats` JSON.
fn time_range_of_stats(stats: &str) -> Option<(i64, i64)> {
    let stats: serde_json::Value = serde_json::from_str(stats).ok()?;
    let micros = |bound: &str| {
        let text = stats.get(bound)?.get("timestamp")?.as_str()?;
        Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()?
                .timestamp_micros(),
        )
    };
    Some((micros("minValues")?, micros("maxValues")?))
}

pub struct Catalog {
    table: Mutex<DeltaTable>,
    /// The file list of the version the table was at when it was last listed. A search
    /// asks for the files every time; while no newer commit exists (one HEAD of the next
    /// version's commit file, which Delta writers create in order) the list is this one,
    /// without the log listing and replay a table update costs (3-4 ms locally).
    listed: std::sync::Mutex<Option<(deltalake::kernel::Version, Vec<FileEntry>)>>,
}

impl Catalog {
    /// Opens the signal's table, creating it when absent. Two nodes creating it at once is
    /// fine: the loser of the race for version 0 opens the winner's table.
    pub async fn open(signal: Signal, url: Url, options: HashMap<String, String>) -> Result<Self> {
        for _attempt in 0..5 {
            let table =
                DeltaTable::try_from_url_with_storage_options(url.clone(), options.clone()).await?;
            if table.version().is_some() {
                return Ok(Self::of(table));
            }
            match table
                .create()
                .with_table_name(signal.table_name())
                .with_columns(delta_schema(signal)?.fields().cloned())
                .with_partition_columns(["day"])
                .with_save_mode(SaveMode::Ignore)
                .await
            {
                Ok(table) => return Ok(Self::of(table)),
                Err(DeltaTableError::VersionAlreadyExists(_)) => continue,
                Err(e) if e.to_string().contains("already exists") => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StorageError::InvalidLocation {
            location: url.to_string(),
            reason: "the table could neither be created nor opened".into(),
        })
    }

    fn of(table: DeltaTable) -> Self {
        Self {
            table: Mutex::new(table),
            listed: std::sync::Mutex::new(None),
        }
    }

    pub async fn object_store(&self) -> std::sync::Arc<dyn object_store::ObjectStore> {
        self.table.lock().await.object_store()
    }

    /// Commits the files as one table version; returns that version.
    pub async fn commit_adds(&self, adds: Vec<Add>) -> Result<u64> {
        let mut table = self.table.lock().await;
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(vec!["day".to_string()]),
            predicate: None,
        };
        let actions = adds.into_iter().map(Action::Add).collect();
        let finalized =
            CommitBuilder::from(CommitProperties::default().with_max_retries(MAX_COMMIT_RETRIES))
                .with_actions(actions)
                .build(Some(table.snapshot()?), table.log_store(), operation)
                .await?;
        table.state = Some(finalized.snapshot());
        Ok(finalized.version())
    }

    /// The files in the latest committed version, after catching up with other writers.
    pub async fn files(&self) -> Result<Vec<FileEntry>> {
        let mut table = self.table.lock().await;
        if let Some(version) = table.version() {
            let listed = self
                .listed
                .lock()
                .expect("file list lock")
                .as_ref()
                .filter(|(at, _)| *at == version)
                .map(|(_, files)| files.clone());
            if let Some(files) = listed
                && !commit_exists(&table, version + 1).await?
            {
                return Ok(files);
            }
        }
        let files = latest_files(&mut table).await?;
        if let Some(version) = table.version() {
            *self.listed.lock().expect("file list lock") = Some((version, files.clone()));
        }
        Ok(files)
    }

    /// The table as of now, to plan a compaction against: its files and the snapshot the
    /// compaction must later commit on top of (so conflicts with commits made since are seen).
    /// Both under one lock: a snapshot newer than the list could hide another node's
    /// compaction of listed files from the conflict check.
    pub async fn plan_snapshot(&self) -> Result<(DeltaTableState, Vec<FileEntry>)> {
        let mut table = self.table.lock().await;
        let files = latest_files(&mut table).await?;
        Ok((table.snapshot()?.clone(), files))
    }

    /// Swaps compacted files in: `removes` out, `add` in, in one commit with
    /// `dataChange=false`, on top of `read` (the snapshot the compaction was planned on).
    /// Fails with a conflict when another compaction committed since `read`.
    pub async fn commit_compaction(
        &self,
        read: &DeltaTableState,
        add: Add,
        removes: Vec<Remove>,
        day: &str,
    ) -> Result<(u64, DeltaTableState)> {
        let mut table = self.table.lock().await;
        let now = chrono::Utc::now().timestamp_millis();
        let operation = DeltaOperation::Optimize {
            predicate: Some(format!("day = '{day}'")),
            target_size: add.size,
        };
        let mut actions = vec![
            Action::Txn(Transaction {
                app_id: COMPACTION_APP_ID.into(),
                version: now,
                last_updated: Some(now),
            }),
            Action::Add(add),
        ];
        actions.extend(removes.into_iter().map(Action::Remove));
        commit_over(&mut table, read, actions, operation).await
    }

    /// Removes whole day partitions in one commit (retention): `removes` are every file of
    /// the days before `before_day`, as of `read`.
    pub async fn commit_expiry(
        &self,
        read: &DeltaTableState,
        removes: Vec<Remove>,
        before_day: &str,
    ) -> Result<u64> {
        let mut table = self.table.lock().await;
        let operation = DeltaOperation::Delete {
            predicate: Some(format!("day < '{before_day}'")),
        };
        let actions = removes.into_iter().map(Action::Remove).collect();
        let (version, _) = commit_over(&mut table, read, actions, operation).await?;
        Ok(version)
    }

    /// The files the table lists that its storage does not hold (Delta's filesystem
    /// check, which lists the table's objects once).
    pub async fn missing_files(&self) -> Result<Vec<String>> {
        let table = {
            let mut table = self.table.lock().await;
            table.update_incremental(None).await?;
            table.clone()
        };
        let (_, found) = table.filesystem_check().with_dry_run(true).await?;
        Ok(found.files_removed)
    }

    /// Takes unreadable files out of the table in one commit, on top of `read` (the
    /// snapshot they were found in).
    pub async fn commit_repair(&self, read: &DeltaTableState, removes: Vec<Remove>) -> Result<u64> {
        let mut table = self.table.lock().await;
        let actions = removes.into_iter().map(Action::Remove).collect();
        let operation = DeltaOperation::FileSystemCheck {};
        let (version, _) = commit_over(&mut table, read, actions, operation).await?;
        Ok(version)
    }

    /// Every file removed from the table whose tombstone the log still holds, with when
    /// it was removed (unix ms).
    pub async fn tombstones(&self) -> Result<Vec<(String, Option<i64>)>> {
        let mut table = self.table.lock().await;
        table.update_incremental(None).await?;
        let log_store = table.log_store();
        let tombstones: Vec<_> = table
            .snapshot()?
            .all_tombstones(log_store.as_ref())
            .try_collect()
            .await?;
        Ok(tombstones
            .into_iter()
            .map(|t| (t.path().into_owned(), t.deletion_timestamp()))
            .collect())
    }

    /// Registers the latest version of the table with a DataFusion session under `name`.
    pub async fn register_with(
        &self,
        ctx: &deltalake::datafusion::prelude::SessionContext,
        name: &str,
    ) -> Result<()> {
        let mut table = self.table.lock().await;
        table.update_incremental(None).await?;
        table.update_datafusion_session(&ctx.state())?;
        let provider = table.table_provider().await?;
        ctx.register_table(name, provider)?;
        Ok(())
    }

    pub async fn version(&self) -> Option<u64> {
        self.table.lock().await.version()
    }
}

/// Whether the table log holds `version`'s commit. Writers create commit files in
/// version order and only log cleanup removes them (the oldest), so the absence of the one
/// after the version a node holds means that node is up to date.
async fn commit_exists(table: &DeltaTable, version: deltalake::kernel::Version) -> Result<bool> {
    let path = deltalake::logstore::commit_uri_from_version(Some(version));
    match table.object_store().head(&path).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The files of the table's latest version, after catching up with other writers.
async fn latest_files(table: &mut DeltaTable) -> Result<Vec<FileEntry>> {
    table.update_incremental(None).await?;
    let views: Vec<_> = table
        .get_active_add_actions_by_partitions(&[])
        .try_collect()
        .await?;
    Ok(views
        .into_iter()
        .map(|view| {
            #[allow(deprecated)] // the only public way to read an Add's tags
            let add = view.add_action();
            FileEntry {
                path: add.path.clone(),
                size: add.size,
                num_records: view.num_records(),
                day: add.partition_values.get("day").cloned().flatten(),
                index_path: add
                    .tags
                    .as_ref()
                    .and_then(|t| t.get(INDEX_TAG).cloned().flatten()),
                time_range_micros: add.stats.as_deref().and_then(time_range_of_stats),
                compacted: add
                    .tags
                    .as_ref()
                    .is_some_and(|t| t.contains_key(COMPACTED_TAG)),
            }
        })
        .collect())
}

/// Commits `actions` on top of `read` (a snapshot taken earlier, so the conflict check
/// covers every commit since) and moves `table` to the result when that is newer than
/// what it holds. Returns the new version and the table state after it.
async fn commit_over(
    table: &mut DeltaTable,
    read: &DeltaTableState,
    actions: Vec<Action>,
    operation: DeltaOperation,
) -> Result<(u64, DeltaTableState)> {
    let finalized =
        CommitBuilder::from(CommitProperties::default().with_max_retries(MAX_COMMIT_RETRIES))
            .with_actions(actions)
            .build(Some(read), table.log_store(), operation)
            .await?;
    let after = finalized.snapshot();
    if table.version().is_none_or(|v| v < finalized.version()) {
        table.state = Some(after.clone());
    }
    Ok((finalized.version(), after))
}

/// The Delta schema: the data file's columns plus the `day` partition column.
fn delta_schema(signal: Signal) -> Result<StructType> {
    let file_schema: StructType = signal.file_schema().as_ref().try_into_kernel()?;
    let mut fields: Vec<StructField> = file_schema.fields().cloned().collect();
    fields.push(StructField::new("day", DataType::STRING, false));
    Ok(StructType::try_new(fields).map_err(DeltaTableError::from)?)
}
