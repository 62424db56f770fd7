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
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
