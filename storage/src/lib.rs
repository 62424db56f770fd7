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
mod catalog;
mod datafile;
mod error;
mod index;
mod location;
mod logs;
mod metrics;
mod resource;
mod signal;
mod spans;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::kernels::aggregate::{max, max_string, min, min_string};
use arrow::datatypes::TimestampMicrosecondType;
use bytes::Bytes;
use deltalake::kernel::Add;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

pub use batch::Converted;
pub use catalog::{FileEntry, INDEX_TAG};
pub use error::{Result, StorageError};
pub use index::{NUMERIC_ATTRIBUTES, index_schema, open_packed_index};
pub use location::Location;
pub use logs::convert_logs;
pub use metrics::convert_metrics;
pub use signal::Signal;
pub use spans::convert_spans;

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
        // deltalake brings both rustls crypto providers, so none is chosen automatically;
        // without this, the first TLS client (S3 over https) panics.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut merged = location.storage_options();
        merged.extend(options);
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
        })
    }

    /// Every file this process commits from now on (live tail). Publishing never blocks
    /// an append: a subscriber that lags more than a few dozen files gets `Lagged`.
    pub fn subscribe_commits(&self) -> tokio::sync::broadcast::Receiver<Arc<CommittedFile>> {
        self.commits.subscribe()
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
        let catalog = self.catalog(signal);
        let store = catalog.object_store().await;
        let total_rows = rows.num_rows();
        let mut adds = Vec::new();
        let mut committed_files = Vec::new();
        let mut written: Vec<ObjectPath> = Vec::new();
        let mut bytes_written = 0u64;
        let result: Result<()> = async {
            for (day, day_rows) in datafile::split_by_day(&rows)? {
                let encoded = tokio::task::spawn_blocking(move || encode_file(signal, &day_rows))
                    .await
                    .map_err(|e| StorageError::Io(std::io::Error::other(e)))??;
                let id = uuid::Uuid::new_v4();
                let data_path = format!("day={day}/part-{id}.zstd.parquet");
                let size = encoded.data.len() as i64;
                put(
                    store.as_ref(),
                    &data_path,
                    encoded.data,
                    &mut written,
                    &mut bytes_written,
                )
                .await?;
                let tags = match encoded.index.clone() {
                    Some(index) => {
                        let index_path = format!("_porthole_index/day={day}/part-{id}.idx");
                        put(
                            store.as_ref(),
                            &index_path,
                            index,
                            &mut written,
                            &mut bytes_written,
                        )
                        .await?;
                        Some(HashMap::from([(INDEX_TAG.to_string(), Some(index_path))]))
                    }
                    None => None,
                };
                committed_files.push(CommittedFile {
                    signal,
                    path: data_path.clone(),
                    rows: encoded.rows,
                    index: encoded.index,
                });
                adds.push(Add {
                    path: data_path,
                    partition_values: HashMap::from([("day".to_string(), Some(day))]),
                    size,
                    modification_time: chrono::Utc::now().timestamp_millis(),
                    data_change: true,
                    stats: Some(encoded.stats),
                    tags,
                    ..Default::default()
                });
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
        let store = self.catalog(signal).object_store().await;
        let mut batches = Vec::new();
        for file in self.files(signal).await? {
            let bytes = store
                .get(&ObjectPath::from(file.path.as_str()))
                .await?
                .bytes()
                .await?;
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?
                    .build()?;
            for batch in reader {
                batches.push(batch?);
            }
        }
        Ok(batches)
    }

    /// Reads only the given rows (ordinals in the file, ascending) of one data file: the
    /// page index and a row selection keep the rest of the file unread.
    pub async fn read_rows(&self, signal: Signal, path: &str, rows: &[u64]) -> Result<RecordBatch> {
        use futures::TryStreamExt;
        use parquet::arrow::ParquetRecordBatchStreamBuilder;
        use parquet::arrow::arrow_reader::{ArrowReaderOptions, RowSelection};

        let store = self.catalog(signal).object_store().await;
        // The deprecated reader is the one parquet 59 ships for object_store; its
        // replacement is a hand-written AsyncFileReader doing the same range reads.
        #[allow(deprecated)]
        let reader =
            parquet::arrow::async_reader::ParquetObjectReader::new(store, ObjectPath::from(path));
        let options = ArrowReaderOptions::new()
            .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional);
        let builder = ParquetRecordBatchStreamBuilder::new_with_options(reader, options).await?;
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

/// CPU-heavy part of a write: sort, Parquet-encode, index. The index is built from the
/// sorted rows, so a document's `row` is its row's ordinal in the Parquet file.
fn encode_file(signal: Signal, rows: &RecordBatch) -> Result<EncodedFile> {
    let sorted = datafile::sort_for_storage(rows)?;
    // The index and the Parquet encoding are independent: build them on two cores.
    let (data, index) = std::thread::scope(|scope| {
        let index = scope.spawn(|| index::build_packed_index(signal, &sorted));
        let data = datafile::encode_parquet(&sorted);
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
    let timestamps = batch
        .column_by_name("timestamp")
        .expect("timestamp")
        .as_primitive::<TimestampMicrosecondType>();
    let services = batch
        .column_by_name("service")
        .expect("service")
        .as_string::<i32>();
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
