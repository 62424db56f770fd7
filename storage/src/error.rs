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
         (`{remedy}` takes such files out of the table)"
    )]
    UnreadableDataFile {
        table: &'static str,
        path: String,
        problem: String,
        /// The command that finds this kind of damage.
        remedy: &'static str,
    },
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Where in a data file reading failed: which repair finds that damage.
#[derive(Clone, Copy)]
pub(crate) enum FilePart {
    /// The footer (metadata, page index): every `porthole repair` reads it.
    Footer,
    /// A page: only `porthole repair --deep` decodes them all.
    Pages,
}

impl FilePart {
    /// The command that finds damage in this part.
    fn remedy(self) -> &'static str {
        match self {
            FilePart::Footer => "porthole repair",
            FilePart::Pages => "porthole repair --deep",
        }
    }
}

impl StorageError {
    /// `self`, from reading `part` of the data file at `path`, as
    /// [`StorageError::UnreadableDataFile`] when the file is missing or not readable
    /// Parquet; storage that did not answer stays what it is (retrying may help), and so
    /// does an error already named.
    pub(crate) fn of_data_file(self, signal: crate::Signal, path: &str, part: FilePart) -> Self {
        // None: the file is missing; Some: why it is not readable Parquet.
        let cause = match &self {
            _ if missing_object(&self).is_some() => None,
            StorageError::Parquet(parquet::errors::ParquetError::External(_)) => return self,
            StorageError::Parquet(error) => Some(error.to_string()),
            // A damaged page, as the synchronous reader reports it.
            StorageError::Arrow(arrow::error::ArrowError::ParquetError(error)) => {
                Some(error.clone())
            }
            _ => return self,
        };
        let (problem, remedy) = match cause {
            None => ("missing from storage".to_string(), "porthole repair"),
            Some(cause) => (format!("not readable Parquet ({cause})"), part.remedy()),
        };
        StorageError::UnreadableDataFile {
            table: signal.table_name(),
            path: path.to_string(),
            problem,
            remedy,
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
