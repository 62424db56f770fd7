use thiserror::Error;

/// Everything that can go wrong between a converted batch and a committed table version.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("invalid storage location {location:?}: {reason}")]
    InvalidLocation { location: String, reason: String },
    #[error("object storage: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("table log: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("full-text index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("packed index is corrupt: {0}")]
    CorruptIndex(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("query engine: {0}")]
    DataFusion(#[from] deltalake::datafusion::error::DataFusionError),
    /// A data file the table lists cannot be read: gone from storage, or not Parquet.
    /// Retrying does not help; `porthole repair` takes such files out of the table.
    #[error(
        "the {table} table's data file {path} is {problem}: its rows cannot be read \
         (`porthole repair` takes such files out of the table)"
    )]
    UnreadableDataFile {
        table: &'static str,
        path: String,
        problem: String,
    },
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// `self`, from reading the data file at `path`, as [`StorageError::UnreadableDataFile`]
    /// when the file is missing or not readable Parquet; storage that did not answer
    /// stays what it is (retrying may help).
    pub(crate) fn of_data_file(self, signal: crate::Signal, path: &str) -> StorageError {
        let problem = if missing_object(&self).is_some() {
            "missing from storage".to_string()
        } else if let StorageError::Parquet(error) = &self
            && !matches!(error, parquet::errors::ParquetError::External(_))
        {
            format!("not readable Parquet ({error})")
        } else if let StorageError::Arrow(arrow::error::ArrowError::ParquetError(error)) = &self {
            // A damaged page, as the synchronous reader reports it.
            format!("not readable Parquet ({error})")
        } else {
            return self;
        };
        StorageError::UnreadableDataFile {
            table: signal.table_name(),
            path: path.to_string(),
            problem,
        }
    }
}

/// The object `error` (or an error it wraps: Parquet's, DataFusion's) says is not in
/// storage.
pub fn missing_object<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a str> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(object_store::Error::NotFound { path, .. }) = error.downcast_ref() {
            return Some(path);
        }
        current = error.source();
    }
    None
}
