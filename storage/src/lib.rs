//! Porthole's storage: how telemetry becomes durable, queryable files.
//!
//! An OTLP export is converted to Arrow rows ([`convert_logs`], [`convert_spans`],
//! [`convert_metrics`]); the ingest tier batches those rows and calls [`Storage::append`],
//! which writes one Parquet file per day (zstd, sorted by service then time, page index,
//! bloom filter on `trace_id`) and, for logs and spans, one packed tantivy index beside it,
//! then commits them to the signal's Delta Lake table in ONE commit. The files are
//! invisible until that commit succeeds, so a failure leaves nothing half-visible.
//!
//! The tables live wherever a [`Location`] says: a local directory, S3, or memory.

mod attributes;
mod batch;
mod cache;
mod catalog;
mod compaction;
mod datafile;
mod error;
mod index;
mod location;
mod logfmt;
mod logs;
mod metrics;
mod resource;
mod signal;
mod spans;
mod state;
mod tenancy;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch};
use arrow::compute::kernels::aggregate::{max, max_string, min, min_string};
use bytes::Bytes;
use deltalake::kernel::Add;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

pub use attributes::{MAX_SAFE_INTEGER, int_value, plain_json};
pub use batch::Converted;
pub use catalog::{COMPACTED_TAG, FileEntry, INDEX_TAG};
pub use compaction::{CompactionPolicy, CompactionReport, Repair, RepairReport};
/// The write path's steps, public for `bench-ingest`'s cost of each part.
pub use datafile::{Effort, encode_parquet, sort_for_storage};
pub use error::{Result, StorageError, missing_object};
pub use index::{
    NUMERIC_ATTRIBUTES, SPAN_STATUS_MESSAGE, build_packed_index, index_schema, open_packed_index,
};
pub use location::Location;
pub use logs::convert_logs;
pub use metrics::convert_metrics;
pub use signal::Signal;
pub use spans::convert_spans;
pub use state::StateStore;
pub use tenancy::{Stores, Tenant};

use catalog::Catalog;

/// What one [`Storage::append`] made durable.
#[derive(Clone, Debug)]
pub struct AppendReport {
    /// The table version that made the rows visible.
    pub version: u64,
    pub files: usize,
    pub rows: usize,
    /// Parquet and index bytes written.
    pub bytes_written: u64,
    pub commit_latency: Duration,
}

/// One data file a commit just made visible, as [`Storage::subscribe_commits`] delivers
/// it: the rows in file order (row `i` is the index's document `row = i`) and its index.
#[derive(Debug)]
pub struct CommittedFile {
    pub signal: Signal,
    pub path: String,
    pub rows: RecordBatch,
    pub index: Option<Bytes>,
}

/// Files held for slow commit subscribers, at most; one that falls further behind is
/// told so (`RecvError::Lagged`) and must catch up or leave. Appends never wait.
const COMMIT_FEED_FILES: usize = 64;

/// The three tables under one storage root.
pub struct Storage {
    location: Location,
    catalogs: BTreeMap<Signal, Catalog>,
    commits: tokio::sync::broadcast::Sender<Arc<CommittedFile>>,
    /// One compaction at a time in this process (across processes: the Delta log).
    compaction_lock: tokio::sync::Mutex<()>,
    /// Removed files [`Storage::vacuum`] already deleted, while their tombstones last.
    vacuumed: tokio::sync::Mutex<BTreeMap<Signal, std::collections::HashSet<String>>>,
    /// Shared with the tenants' storages opened from this one ([`Storage::open_tenant`]),
    /// whose keys start with their own [`Storage::cache_scope`].
    index_cache: Arc<cache::Cache<tantivy::Searcher>>,
    parquet_footers: Arc<cache::Cache<parquet::arrow::arrow_reader::ArrowReaderMetadata>>,
    /// Indexes found missing or corrupt and rebuilt from their data files (shared with the
    /// tenants' storages, as the caches).
    indexes_rebuilt: prometheus_client::metrics::counter::Counter,
    /// The object-store options it was opened with, for its tenants' storages.
    options: HashMap<String, String>,
    /// Prefix of this storage's cache keys: empty at the root, `tenants/NAME/` for a tenant.
    cache_scope: String,
}

/// Packed index bytes kept open by default (see [`Storage::with_index_cache_bytes`]).
pub const DEFAULT_INDEX_CACHE_BYTES: usize = 512 * 1024 * 1024;
/// Decoded Parquet footers (with page indexes) kept, in bytes.
const PARQUET_FOOTER_CACHE_BYTES: usize = 64 * 1024 * 1024;

fn index_cache(bytes: usize) -> Arc<cache::Cache<tantivy::Searcher>> {
    Arc::new(cache::Cache::new(
        "porthole_index_cache",
        "opened full-text index",
        bytes,
    ))
}

impl Storage {
    /// Opens (creating when absent) the `logs`, `spans` and `metrics` tables.
    pub async fn open(location: Location) -> Result<Self> {
        Self::open_with_options(location, HashMap::new()).await
    }

    /// Like [`Storage::open`], with object-store options (e.g. `AWS_ENDPOINT_URL`) that take
    /// precedence over the environment.
    pub async fn open_with_options(
        location: Location,
        options: HashMap<String, String>,
    ) -> Result<Self> {
        let footers = Arc::new(cache::Cache::new(
            "porthole_parquet_footer_cache",
            "decoded Parquet footer",
            PARQUET_FOOTER_CACHE_BYTES,
        ));
        let caches = (
            index_cache(DEFAULT_INDEX_CACHE_BYTES),
            footers,
            Default::default(),
            String::new(),
        );
        Self::open_sharing(location, options, caches).await
    }

    /// One tenant's tables under this root ([`Location::tenant`]), sharing this storage's
    /// caches and object-store options.
    pub async fn open_tenant(&self, tenant: &Tenant) -> Result<Self> {
        let location = self.location.tenant(tenant);
        let scope = format!("tenants/{}/", tenant.name());
        let caches = (
            self.index_cache.clone(),
            self.parquet_footers.clone(),
            self.indexes_rebuilt.clone(),
            scope,
        );
        Self::open_sharing(location, self.options.clone(), caches).await
    }

    async fn open_sharing(
        location: Location,
        options: HashMap<String, String>,
        (index_cache, parquet_footers, indexes_rebuilt, cache_scope): (
            Arc<cache::Cache<tantivy::Searcher>>,
            Arc<cache::Cache<parquet::arrow::arrow_reader::ArrowReaderMetadata>>,
            prometheus_client::metrics::counter::Counter,
            String,
        ),
    ) -> Result<Self> {
        // deltalake brings both rustls crypto providers, so none is chosen automatically;
        // without this, the first TLS client (S3 over https) panics.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut merged = location.storage_options();
        merged.extend(options.clone());
        let mut catalogs = BTreeMap::new();
        for signal in Signal::ALL {
            let catalog =
                Catalog::open(signal, location.table_url(signal)?, merged.clone()).await?;
            catalogs.insert(signal, catalog);
        }
        let (commits, _) = tokio::sync::broadcast::channel(COMMIT_FEED_FILES);
        Ok(Self {
            location,
            catalogs,
            commits,
            compaction_lock: Default::default(),
            vacuumed: Default::default(),
            options,
            index_cache,
            parquet_footers,
            indexes_rebuilt,
            cache_scope,
        })
    }

    /// Every file this process commits from now on (live tail). Publishing never blocks
    /// an append: a subscriber that lags more than a few dozen files gets `Lagged`.
    pub fn subscribe_commits(&self) -> tokio::sync::broadcast::Receiver<Arc<CommittedFile>> {
        self.commits.subscribe()
    }

    /// Bounds the opened indexes kept between searches to `bytes` of packed index.
    pub fn with_index_cache_bytes(mut self, bytes: usize) -> Self {
        self.index_cache = index_cache(bytes);
        self
    }

    /// Registers the storage's own counters (its caches') for `/metrics`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.index_cache.register(registry);
        self.parquet_footers.register(registry);
        registry.register(
            "porthole_indexes_rebuilt",
            "Full-text indexes found missing or corrupt and rebuilt from their data files",
            self.indexes_rebuilt.clone(),
        );
    }

    /// Drops what the caches hold for a data file that left the table.
    pub(crate) fn forget_file(&self, signal: Signal, data_path: &str) {
        self.index_cache
            .remove(&self.cache_key(signal, &index_path_of(data_path)));
        self.parquet_footers
            .remove(&self.cache_key(signal, data_path));
    }

    /// A file's key in the shared caches: unique across tenants and tables.
    fn cache_key(&self, signal: Signal, path: &str) -> String {
        format!("{}{}/{path}", self.cache_scope, signal.table_name())
    }

    /// The searcher of a data file's packed index (`index_path`, relative to the table
    /// root), from the cache when it was opened before.
    ///
    /// An index that is missing or corrupt is rebuilt from its data file (`data_path`):
    /// it is derived data, and one bad object must not fail every search of its time
    /// range while the rows are intact. The rebuilt index is written back in its place
    /// (best effort: a query node with read-only credentials keeps it in its cache only),
    /// logged, and counted in `porthole_indexes_rebuilt_total`.
    pub async fn open_index(
        &self,
        signal: Signal,
        data_path: &str,
        index_path: &str,
    ) -> Result<tantivy::Searcher> {
        let key = self.cache_key(signal, index_path);
        if let Some(searcher) = self.index_cache.lookup(&key) {
            return Ok(searcher);
        }
        // Searches that miss the same index at once (a dashboard's panels, a damaged
        // index every search of its range finds) read or rebuild it once.
        let alone = self.index_cache.load_alone(&key).await;
        if let Some(searcher) = self.index_cache.lookup(&key) {
            return Ok(searcher);
        }
        self.index_cache.missed();
        let opened = async {
            let packed = self.read_object(signal, index_path).await?;
            let bytes = packed.len();
            Ok((blocking(move || open_searcher(&packed)).await?, bytes))
        };
        match opened.await {
            Ok((searcher, bytes)) => {
                self.index_cache.insert(key, searcher.clone(), bytes);
                Ok(searcher)
            }
            // The rebuild keeps what it built in the cache itself, and holds `alone`
            // until then, even if this search is stopped before.
            Err(error) if unreadable_index(&error) => {
                self.rebuild_index(signal, data_path, index_path, &error, alone)
                    .await
            }
            Err(error) => Err(error),
        }
    }

    /// A new index of `data_path`'s rows, in place of the unreadable one at `index_path`.
    /// Once the rows are read, the index is built, kept in the cache
    /// and written back on the blocking pool, which finishes even if the search that asked
    /// is stopped (its `--query-timeout`, a client gone): a large file's rebuild is not
    /// started over by every search that times out waiting for it.
    async fn rebuild_index(
        &self,
        signal: Signal,
        data_path: &str,
        index_path: &str,
        why: &StorageError,
        alone: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<tantivy::Searcher> {
        tracing::warn!(%signal, index = index_path, file = data_path, error = %why, "full-text index unreadable; rebuilding it from its data file");
        let batches = self.read_file(signal, data_path).await?;
        let store = self.catalog(signal).object_store().await;
        let (cache, rebuilt) = (self.index_cache.clone(), self.indexes_rebuilt.clone());
        let key = self.cache_key(signal, index_path);
        let path = ObjectPath::from(index_path);
        blocking(move || {
            let schema = batches
                .first()
                .map(|b| b.schema())
                .ok_or_else(|| StorageError::CorruptIndex("its data file has no rows".into()))?;
            let rows = arrow::compute::concat_batches(&schema, &batches)?;
            let packed = index::build_packed_index(signal, &rows)?.ok_or_else(|| {
                StorageError::CorruptIndex(format!("{signal} files have no index"))
            })?;
            let searcher = open_searcher(&packed)?;
            cache.insert(key, searcher.clone(), packed.len());
            drop(alone);
            rebuilt.inc();
            let put = store.put(&path, PutPayload::from_bytes(packed));
            if let Err(error) = tokio::runtime::Handle::current().block_on(put) {
                tracing::warn!(index = %path, %error, "could not write the rebuilt index back; it is kept in memory only");
            }
            Ok(searcher)
        })
        .await
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    fn catalog(&self, signal: Signal) -> &Catalog {
        &self.catalogs[&signal]
    }

    /// Writes the rows as data files (+ indexes) and commits them in one table version.
    /// On error nothing was committed; files already written are removed on a best-effort
    /// basis (they are invisible either way).
    pub async fn append(&self, signal: Signal, rows: RecordBatch) -> Result<AppendReport> {
        self.append_parts(signal, &[rows]).await
    }

    /// [`Storage::append`] of the rows of several batches (the exports of one ingest batch,
    /// of one schema), each row copied once into its file: never concatenated first.
    pub async fn append_parts(
        &self,
        signal: Signal,
        parts: &[RecordBatch],
    ) -> Result<AppendReport> {
        let catalog = self.catalog(signal);
        let store = catalog.object_store().await;
        let total_rows = parts.iter().map(RecordBatch::num_rows).sum();
        let mut adds = Vec::new();
        let mut committed_files = Vec::new();
        let mut written: Vec<ObjectPath> = Vec::new();
        let mut bytes_written = 0u64;
        let result: Result<()> = async {
            let parts = parts.to_vec();
            let days = blocking(move || datafile::days_for_storage(&parts)).await?;
            for (day, day_rows) in days {
                let encoded = encode_file_blocking(signal, day_rows, Effort::Ingest).await?;
                let add = put_encoded(
                    store.as_ref(),
                    &day,
                    &encoded,
                    true,
                    &mut written,
                    &mut bytes_written,
                )
                .await?;
                committed_files.push(CommittedFile {
                    signal,
                    path: add.path.clone(),
                    rows: encoded.rows,
                    index: encoded.index,
                });
                adds.push(add);
            }
            Ok(())
        }
        .await;
        let files = adds.len();
        let started = Instant::now();
        let committed = match result {
            Ok(()) => catalog.commit_adds(adds).await,
            Err(e) => Err(e),
        };
        match committed {
            Ok(version) => {
                let commit_latency = started.elapsed();
                if self.commits.receiver_count() > 0 {
                    for file in committed_files {
                        let _ = self.commits.send(Arc::new(file));
                    }
                }
                Ok(AppendReport {
                    version,
                    files,
                    rows: total_rows,
                    bytes_written,
                    commit_latency,
                })
            }
            Err(e) => {
                for path in written {
                    let _ = store.delete(&path).await;
                }
                Err(e)
            }
        }
    }

    /// The signal's files at the latest table version.
    pub async fn files(&self, signal: Signal) -> Result<Vec<FileEntry>> {
        self.catalog(signal).files().await
    }

    /// Registers the latest versions of `logs`, `spans` and `metrics` with a DataFusion
    /// session, for SQL over the tables.
    pub async fn register_tables(
        &self,
        ctx: &deltalake::datafusion::prelude::SessionContext,
    ) -> Result<()> {
        for (signal, catalog) in &self.catalogs {
            catalog.register_with(ctx, signal.table_name()).await?;
        }
        Ok(())
    }

    /// The table version this node last saw.
    pub async fn version(&self, signal: Signal) -> Option<u64> {
        self.catalog(signal).version().await
    }

    /// Reads every row of the latest table version (tests and small tables; the query tier
    /// reads selectively).
    pub async fn read_all(&self, signal: Signal) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        for file in self.files(signal).await? {
            batches.extend(self.read_file(signal, &file.path).await?);
        }
        Ok(batches)
    }

    /// Every row of one data file, decoded on the blocking pool (a compaction's input file
    /// of 64 MiB takes a second or more, which on the runtime would hold up every request).
    pub async fn read_file(&self, signal: Signal, path: &str) -> Result<Vec<RecordBatch>> {
        use error::FilePart;
        let bytes = (self.read_object(signal, path).await)
            .map_err(|e| e.of_data_file(signal, path, FilePart::Footer))?;
        let path = path.to_string();
        blocking(move || {
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .and_then(|builder| builder.build())
                    .map_err(|e| {
                        StorageError::from(e).of_data_file(signal, &path, FilePart::Footer)
                    })?;
            reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StorageError::from(e).of_data_file(signal, &path, FilePart::Pages))
        })
        .await
    }

    /// Reads only the given rows (ordinals in the file, ascending) of one data file: the
    /// page index and a row selection keep the rest of the file unread.
    pub async fn read_rows(&self, signal: Signal, path: &str, rows: &[u64]) -> Result<RecordBatch> {
        self.read_rows_of(signal, path, rows)
            .await
            .map_err(|e| e.of_data_file(signal, path, error::FilePart::Pages))
    }

    async fn read_rows_of(&self, signal: Signal, path: &str, rows: &[u64]) -> Result<RecordBatch> {
        use futures::TryStreamExt;
        use parquet::arrow::ParquetRecordBatchStreamBuilder;
        use parquet::arrow::arrow_reader::RowSelection;

        let (reader, metadata) = self.footer(signal, path).await?;
        let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, metadata);
        let total = builder.metadata().file_metadata().num_rows() as usize;
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        for row in rows.iter().map(|r| *r as usize).filter(|r| *r < total) {
            match ranges.last_mut() {
                Some(last) if last.end == row => last.end += 1,
                Some(last) if last.end > row => {}
                _ => ranges.push(row..row + 1),
            }
        }
        let schema = builder.schema().clone();
        let selection = RowSelection::from_consecutive_ranges(ranges.into_iter(), total);
        let batches: Vec<RecordBatch> = builder
            .with_row_selection(selection)
            .build()?
            .try_collect()
            .await?;
        Ok(arrow::compute::concat_batches(&schema, &batches)?)
    }

    /// About how many bytes each of the given rows of a data file takes decoded: its row
    /// group's uncompressed size over its row count. Only the footer is read (and kept), so
    /// a caller can size a read before making it; a row past the file's end is 0.
    pub async fn row_size_estimates(
        &self,
        signal: Signal,
        path: &str,
        rows: &[u64],
    ) -> Result<Vec<u64>> {
        let (_, metadata) = self.footer(signal, path).await?;
        let mut groups = Vec::new(); // (first row of the group, bytes a row)
        let mut first = 0u64;
        for group in metadata.metadata().row_groups() {
            let count = group.num_rows().max(0) as u64;
            let bytes = group.total_byte_size().max(0) as u64;
            groups.push((first, bytes / count.max(1)));
            first += count;
        }
        Ok(rows
            .iter()
            .map(
                |&row| match groups.partition_point(|(start, _)| *start <= row) {
                    0 => 0,
                    _ if row >= first => 0,
                    after => groups[after - 1].1,
                },
            )
            .collect())
    }

    /// A data file's reader and its footer (with the page index), kept in the footer cache:
    /// files never change once committed.
    #[allow(deprecated)]
    async fn footer(
        &self,
        signal: Signal,
        path: &str,
    ) -> Result<(
        parquet::arrow::async_reader::ParquetObjectReader,
        parquet::arrow::arrow_reader::ArrowReaderMetadata,
    )> {
        use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

        let store = self.catalog(signal).object_store().await;
        // The deprecated reader is the one parquet 59 ships for object_store; its
        // replacement is a hand-written AsyncFileReader doing the same range reads.
        let mut reader =
            parquet::arrow::async_reader::ParquetObjectReader::new(store, ObjectPath::from(path));
        let key = self.cache_key(signal, path);
        let metadata = match self.parquet_footers.get(&key) {
            Some(metadata) => metadata,
            None => {
                let options = ArrowReaderOptions::new()
                    .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional);
                let metadata = ArrowReaderMetadata::load_async(&mut reader, options)
                    .await
                    .map_err(|e| {
                        StorageError::from(e).of_data_file(signal, path, error::FilePart::Footer)
                    })?;
                let bytes = metadata.metadata().memory_size();
                self.parquet_footers.insert(key, metadata.clone(), bytes);
                metadata
            }
        };
        Ok((reader, metadata))
    }

    /// Reads one object relative to the signal's table root (an index, a data file).
    pub async fn read_object(&self, signal: Signal, path: &str) -> Result<Bytes> {
        let store = self.catalog(signal).object_store().await;
        Ok(store.get(&ObjectPath::from(path)).await?.bytes().await?)
    }

    /// Whether the storage answers: a listing of the logs table's log folder.
    pub async fn check_reachable(&self) -> Result<()> {
        let store = self.catalog(Signal::Logs).object_store().await;
        store
            .list_with_delimiter(Some(&ObjectPath::from("_delta_log")))
            .await?;
        Ok(())
    }
}

/// A packed index opened for searching.
fn open_searcher(packed: &Bytes) -> Result<tantivy::Searcher> {
    Ok(open_packed_index(packed)?.reader()?.searcher())
}

/// Whether `error` says the index object itself is bad (missing, or not an index), as
/// opposed to storage that did not answer: only then is rebuilding it the remedy.
fn unreadable_index(error: &StorageError) -> bool {
    matches!(
        error,
        StorageError::CorruptIndex(_)
            | StorageError::ObjectStore(object_store::Error::NotFound { .. })
            | StorageError::Index(tantivy::TantivyError::DataCorruption(_))
    )
}

/// Where a data file's packed index lives: beside the table's data, under a folder Delta
/// readers skip (it starts with `_`), with the same name stem.
pub(crate) fn index_path_of(data_path: &str) -> String {
    let stem = data_path.strip_suffix(".zstd.parquet").unwrap_or(data_path);
    format!("_porthole_index/{stem}.idx")
}

async fn encode_file_blocking(
    signal: Signal,
    rows: RecordBatch,
    effort: Effort,
) -> Result<EncodedFile> {
    blocking(move || encode_file(signal, rows, effort)).await
}

/// Runs CPU-bound work (sorting, encoding) on tokio's blocking pool, off the runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
}

/// Writes one encoded data file and its index (not yet visible) and returns the Add
/// action that will make them so. `data_change: false` marks a compaction's rewrite.
async fn put_encoded(
    store: &dyn ObjectStore,
    day: &str,
    encoded: &EncodedFile,
    data_change: bool,
    written: &mut Vec<ObjectPath>,
    bytes_written: &mut u64,
) -> Result<Add> {
    let id = uuid::Uuid::new_v4();
    let data_path = format!("day={day}/part-{id}.zstd.parquet");
    let size = encoded.data.len() as i64;
    put(
        store,
        &data_path,
        encoded.data.clone(),
        written,
        bytes_written,
    )
    .await?;
    let mut tags = HashMap::new();
    if let Some(index) = &encoded.index {
        let index_path = index_path_of(&data_path);
        put(store, &index_path, index.clone(), written, bytes_written).await?;
        tags.insert(INDEX_TAG.to_string(), Some(index_path));
    }
    if !data_change {
        tags.insert(catalog::COMPACTED_TAG.to_string(), Some("1".to_string()));
    }
    Ok(Add {
        path: data_path,
        partition_values: HashMap::from([("day".to_string(), Some(day.to_string()))]),
        size,
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change,
        stats: Some(encoded.stats.clone()),
        tags: (!tags.is_empty()).then_some(tags),
        ..Default::default()
    })
}

async fn put(
    store: &dyn ObjectStore,
    path: &str,
    data: Bytes,
    written: &mut Vec<ObjectPath>,
    bytes_written: &mut u64,
) -> Result<()> {
    let path = ObjectPath::from(path);
    let len = data.len() as u64;
    store.put(&path, PutPayload::from_bytes(data)).await?;
    written.push(path);
    *bytes_written += len;
    Ok(())
}

struct EncodedFile {
    /// The rows in file order.
    rows: RecordBatch,
    data: Bytes,
    index: Option<Bytes>,
    stats: String,
}

/// CPU-heavy part of a write: Parquet-encode and index one day's rows, already in storage
/// order (`days_for_storage`, `sort_for_storage`). The index is built from those rows, so
/// a document's `row` is its row's ordinal in the Parquet file.
///
/// New log records get their ids here, in file order: one random base per file plus the
/// row's ordinal, so ids stay unique across files and nodes (short of two 62-bit bases
/// falling within a file's length of each other) and cost next to nothing in the Parquet
/// file (delta-encoded) and the index (a linear fast field). Compaction keeps them: a
/// cursor orders ties the same before and after.
fn encode_file(signal: Signal, mut sorted: RecordBatch, effort: Effort) -> Result<EncodedFile> {
    if effort == Effort::Ingest {
        sorted = logs::number_records(sorted)?;
    }
    // The index and the Parquet encoding are independent: build them on two cores.
    let (data, index) = std::thread::scope(|scope| {
        let index = scope.spawn(|| index::build_packed_index(signal, &sorted));
        let data = datafile::encode_parquet(&sorted, effort);
        (data, index.join())
    });
    let index =
        index.map_err(|_| StorageError::Io(std::io::Error::other("index builder panicked")))??;
    Ok(EncodedFile {
        data: data?,
        index,
        stats: file_stats(&sorted),
        rows: sorted,
    })
}

/// Delta `stats` for pruning by time and service: numRecords, min/max, null counts.
fn file_stats(batch: &RecordBatch) -> String {
    let (timestamps, services) = (datafile::timestamps(batch), datafile::services(batch));
    let iso = |micros: Option<i64>| {
        micros
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    };
    serde_json::json!({
        "numRecords": batch.num_rows(),
        "minValues": { "timestamp": iso(min(timestamps)), "service": min_string(services) },
        "maxValues": { "timestamp": iso(max(timestamps)), "service": max_string(services) },
        "nullCount": { "timestamp": 0, "service": services.null_count() },
    })
    .to_string()
}
