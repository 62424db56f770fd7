//! Objects Porthole keeps beside the tables that are not rows (alerting state, audit
//! events, snapshots): under `_porthole/NAME/` in the storage root, which Delta readers
//! skip. Query nodes stay stateless: a restarted or new replica reads all of it back.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::{Location, Result, StorageError};

#[derive(Clone)]
pub struct StateStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateStore({})", self.root)
    }
}

impl StateStore {
    /// The objects under `_porthole/NAME/` of `location`.
    pub fn open(location: &Location, name: &str) -> Result<Self> {
        let url = location.state_url(name)?;
        let (store, root) = object_store::parse_url_opts(&url, location.storage_options())
            .map_err(|e| StorageError::InvalidLocation {
                location: url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            store: Arc::from(store),
            root,
        })
    }

    fn path(&self, relative: &str) -> Path {
        let mut path = self.root.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            path = path.clone().join(part);
        }
        path
    }

    pub async fn put(&self, relative: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.path(relative), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Creates `relative` unless it exists: `Ok(false)` when another writer got there first.
    pub async fn create(&self, relative: &str, bytes: Vec<u8>) -> Result<bool> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.path(relative), PutPayload::from(bytes), options)
            .await
        {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get(&self, relative: &str) -> Result<Option<Bytes>> {
        match self.store.get(&self.path(relative)).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete(&self, relative: &str) -> Result<()> {
        match self.store.delete(&self.path(relative)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Names (relative to `prefix`) of the objects under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let base = self.path(prefix);
        let objects: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&base)).try_collect().await?;
        let base = format!("{base}/");
        Ok(objects
            .into_iter()
            .filter_map(|o| o.location.as_ref().strip_prefix(&base).map(String::from))
            .collect())
    }
}
